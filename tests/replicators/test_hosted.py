"""Hosted replicators (OpenAI image edit, Gemini) through their real clients against a local fake API.

Faults are scripted per request (see tests/replicators/fake_image_api.py): 429 with Retry-After, 5xx, hangs
past the timeout, refusals, malformed bodies. Timings are kept small with ``backoff=0.05`` and
``timeout=0.5``.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fake_image_api import (
    FakeImageAPI,
    Received,
    Reply,
    hang,
    malformed,
    openai_error,
    png_b64,
    rate_limited,
    refusal,
    server_error,
)
from PIL import Image

import driftloop
from driftloop.chain import BudgetReached
from driftloop.errors import DriftloopError, SpecError
from driftloop.replicators import registry
from driftloop.replicators.base import BatchAborted, Copy, Failure, Refusal
from driftloop.replicators.hosted import gemini, openai_images
from driftloop.replicators.hosted.canvas import Placement, closest_canvas, place, unplace
from driftloop.replicators.hosted.messages import Redactor
from driftloop.replicators.hosted.pacing import RateLimiter, backoff_delay, parse_retry_after
from driftloop.replicators.hosted.replicator import (
    PROMPT,
    HostedAuthError,
    HostedConfigError,
    MissingAPIKeyError,
)
from driftloop.replicators.spec import parse_config

OPENAI_KEY = "sk-test-SECRET-0123456789abcdef"
GEMINI_KEY = "AIzaTEST-SECRET-fedcba9876543210"
REPO = Path(__file__).resolve().parents[2]
GEMINI_USD = 1302 * 0.30e-6 + 1290 * 30e-6  # the fake's usage × the table's token rates


def gpt_image_1_usd(output_tokens: int) -> float:
    """gpt-image-1's price of one of the fake's answers: 64 text + 259 image input tokens, then the output."""
    return 64 * 5e-6 + 259 * 10e-6 + output_tokens * 40e-6


# -------------------------------------------------------------------------------------------- fixtures


@pytest.fixture
def fake():
    with FakeImageAPI(openai_key=OPENAI_KEY, gemini_key=GEMINI_KEY) as api:
        yield api


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, fake: FakeImageAPI) -> FakeImageAPI:
    """Both clients pointed at the fake, with keys only in the environment."""
    for name in (
        "OPENAI_ORG_ID",
        "OPENAI_PROJECT_ID",
        "OPENAI_ADMIN_KEY",
        "OPENAI_CUSTOM_HEADERS",
        "GOOGLE_API_KEY",
        "GOOGLE_GENAI_USE_VERTEXAI",
        "GOOGLE_GENAI_USE_ENTERPRISE",
        "GOOGLE_CLOUD_PROJECT",
        "GOOGLE_CLOUD_LOCATION",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", fake.openai_base)
    monkeypatch.setenv("GEMINI_API_KEY", GEMINI_KEY)
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", fake.url)
    return fake


def build_openai(spec: str = "openai:gpt-image-1") -> openai_images.OpenAIImageReplicator:
    backend = openai_images.backends()[0]
    return backend.build(parse_config(spec, backend.config_type, backend.positional))


def build_gemini(spec: str = "gemini:gemini-2.5-flash-image") -> gemini.GeminiImageReplicator:
    backend = gemini.backends()[0]
    return backend.build(parse_config(spec, backend.config_type, backend.positional))


def frame_64x48(seed: int = 0) -> np.ndarray:
    """A 48-row × 64-column frame of smooth ramps and waves that differ along each axis (so a shift or a
    stretch would show) and between seeds."""
    yy, xx = np.mgrid[0:48, 0:64].astype(float)
    red = 90 + 2 * xx + 30 * np.sin(2 * np.pi * yy / 24 + seed)
    green = 40 + 3 * yy + 10 * seed
    blue = 100 + xx + yy + 20 * np.cos(2 * np.pi * xx / 32)
    return np.clip(np.stack([red, green, blue], axis=-1), 0, 255).round().astype(np.uint8)


def blocky_frame() -> np.ndarray:
    out = np.zeros((48, 64, 3), np.uint8)
    out[8:24, 8:28] = (200, 40, 60)
    out[28:44, 36:60] = (30, 180, 90)
    return out


def assert_close_copy(copy: np.ndarray, frame: np.ndarray) -> None:
    """The fake's copy: the frame with red + 1, through a 16× up/down resampling round trip."""
    assert copy.shape == frame.shape and copy.dtype == np.uint8
    diff = copy.astype(int) - frame.astype(int)
    assert abs(diff[..., 0].mean() - 1.0) < 0.3, diff[..., 0].mean()
    assert np.abs(diff[..., 1:]).mean() < 0.3
    assert np.abs(diff).max() <= 3


def secret_free(*things: Any) -> None:
    for thing in things:
        text = thing if isinstance(thing, str) else json.dumps(thing, default=str)
        assert OPENAI_KEY not in text and GEMINI_KEY not in text, text


# ----------------------------------------------------------------------------------------- size mapping


def test_place_and_unplace_round_trip_without_distortion() -> None:
    frame = frame_64x48()
    canvas, placement = place(frame, (1024, 1024))
    assert canvas.shape == (1024, 1024, 3)
    assert placement == Placement((1024, 1024), (0, 128, 1024, 768), (48, 64))
    # the pad rows repeat the frame's edge rows
    assert np.array_equal(canvas[:128], np.repeat(canvas[128:129], 128, axis=0))
    assert np.array_equal(canvas[896:], np.repeat(canvas[895:896], 128, axis=0))
    back = unplace(canvas, placement)
    assert back.shape == (48, 64, 3)
    assert np.abs(back.astype(int) - frame).max() <= 1
    # whatever the API paints in the padding is discarded
    painted = canvas.copy()
    painted[:128] = painted[896:] = (255, 0, 255)
    assert np.array_equal(unplace(painted, placement), back)
    # an answer at another resolution is read from the same relative box
    half = np.asarray(Image.fromarray(canvas).resize((512, 512), Image.Resampling.LANCZOS))
    assert np.abs(unplace(half, placement).astype(int) - frame).max() <= 2
    # a one-pixel shift of the content would show: the mapping is exact enough to tell
    shifted = np.roll(canvas, 16, axis=1)
    assert np.abs(unplace(shifted, placement).astype(int) - frame).mean() > 0.5


def test_nearest_resampling_is_an_exact_round_trip() -> None:
    for frame in (
        blocky_frame(),
        frame_64x48(),
        np.random.default_rng(0).integers(0, 256, (37, 53, 3), np.uint8),
    ):
        for canvas in ((1024, 1024), (1536, 1024), (1184, 864)):
            array, placement = place(frame, canvas, resample="nearest")
            assert np.array_equal(unplace(array, placement, resample="nearest"), frame)


def test_place_exact_size_is_identity_and_grey_pad() -> None:
    frame = np.random.default_rng(1).integers(0, 256, (1024, 1024, 3), dtype=np.uint8)
    canvas, placement = place(frame, (1024, 1024))
    assert np.array_equal(canvas, frame) and np.array_equal(unplace(canvas, placement), frame)
    tall = np.full((100, 50, 3), 7, np.uint8)
    canvas, placement = place(tall, (1024, 1024), pad="grey")
    assert placement.box == (256, 0, 512, 1024)
    assert (canvas[:, :256] == 128).all() and (canvas[:, 768:] == 128).all()


def test_closest_canvas() -> None:
    sizes = list(openai_images.SIZES.values())
    assert closest_canvas(64, 64, sizes) == (1024, 1024)
    assert closest_canvas(48, 64, sizes) == (1536, 1024)
    assert closest_canvas(64, 48, sizes) == (1024, 1536)
    canvases = list(gemini.CANVASES.values())
    assert closest_canvas(48, 64, canvases) == gemini.CANVASES["4:3"]
    assert closest_canvas(90, 160, canvases) == gemini.CANVASES["16:9"]


def test_backoff_retry_after_and_limiter_units() -> None:
    import random

    rng = random.Random(0)
    delays = [backoff_delay(a, 1.0, 60.0, None, rng) for a in (1, 2, 3, 4)]
    for attempt, d in zip((1, 2, 3, 4), delays, strict=True):
        assert 0.5 * 2 ** (attempt - 1) <= d <= 2 ** (attempt - 1)
    assert backoff_delay(10, 1.0, 5.0, None, rng) <= 5.0
    assert 2.0 <= backoff_delay(1, 0.05, 60.0, 2.0, rng) <= 2.2  # Retry-After wins over the base
    assert 100.0 <= backoff_delay(1, 0.05, 3.0, 100.0, rng) <= 110.0  # ... and max_wait does not cut it
    assert parse_retry_after({"retry-after": "1"}) == 1.0
    assert parse_retry_after({"retry-after": "0.25"}) == 0.25
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert parse_retry_after({}) is None
    now = [0.0]
    limiter = RateLimiter(120, clock=lambda: now[0])
    assert limiter.interval == 0.5
    assert RateLimiter(0).acquire() == 0.0


def test_redactor() -> None:
    r = Redactor([OPENAI_KEY, None, ""])
    assert r.text(f"bad key {OPENAI_KEY}!") == "bad key ***!"
    assert r.data({"a": [OPENAI_KEY, 1], OPENAI_KEY: {"b": OPENAI_KEY}}) == {
        "a": ["***", 1],
        "***": {"b": "***"},
    }


# ----------------------------------------------------------------------------------------------- OpenAI


def test_openai_copy_request_shape_and_info(env: FakeImageAPI) -> None:
    rep = build_openai("openai:gpt-image-1,size=1024x1024,quality=high,input_fidelity=high")
    frame = frame_64x48()
    (out,) = rep.replicate([frame], [7])
    assert isinstance(out, Copy), out
    assert_close_copy(out.frame, frame)
    (req,) = env.received
    assert req.auth_ok and not req.problems
    assert req.path == "/v1/images/edits"
    assert req.files["image"][1] == "image/png"
    assert req.image is not None and req.image.shape == (1024, 1024, 3)
    assert req.fields["prompt"] == PROMPT
    assert req.fields["model"] == "gpt-image-1"
    assert req.fields["size"] == "1024x1024" and req.fields["quality"] == "high"
    assert req.fields["input_fidelity"] == "high" and req.fields["output_format"] == "png"
    info = out.info
    assert info["attempts"] == 1 and info["retries"] == 0
    assert info["request_id"] == "req_fake_1"
    assert info["usd"] == pytest.approx(gpt_image_1_usd(4160))  # priced from the answer's tokens
    assert "64 input text, 259 input image, 4,160 output tokens" in info["usd_source"]
    assert info["size"] == "1024x1024" and info["quality"] == "high" and info["model"] == "gpt-image-1"
    assert info["box"] == [0, 128, 1024, 768] and info["returned_size"] == [1024, 1024]
    assert info["usage"]["output_tokens"] == 4160
    assert rep.requirements.device == "api" and rep.requirements.deterministic is False
    assert rep.requirements.cost_per_image_usd == pytest.approx(0.167)
    assert rep.estimate_usd_per_image() == pytest.approx(0.167)
    assert rep.spec == "openai:gpt-image-1,size=1024x1024,quality=high,input_fidelity=high"
    json.dumps(info)  # stored as JSON


def test_openai_auto_size_and_quality_priced_from_the_answer(env: FakeImageAPI) -> None:
    rep = build_openai("openai:gpt-image-1-mini")
    assert rep.spec == "openai:gpt-image-1-mini"
    assert rep.estimate_usd_per_image() == pytest.approx(0.052)  # the dearest option: high, 1536 wide
    frame = frame_64x48()
    (out,) = rep.replicate([frame], [0])
    assert isinstance(out, Copy)
    assert env.received[0].fields["size"] == "1536x1024"  # what a 4:3 frame fills best
    assert "input_fidelity" not in env.received[0].fields
    assert out.info["reported_quality"] == "medium"
    assert out.info["usd"] == pytest.approx(64 * 2e-6 + 259 * 2.5e-6 + 1584 * 8e-6)  # mini, medium, 1536 wide
    assert_close_copy(out.frame, frame)
    from driftloop.cost import load_factors

    estimate = rep.hosted_estimate(load_factors())
    assert estimate.model == "openai:gpt-image-1-mini" and estimate.wh_per_image.value > 0


def test_openai_retry_after_is_honoured(env: FakeImageAPI) -> None:
    env.script(rate_limited("openai", retry_after="1"))
    rep = build_openai("openai:gpt-image-1,backoff=0.01")
    started = time.monotonic()
    (out,) = rep.replicate([frame_64x48()], [0])
    assert isinstance(out, Copy), out
    assert len(env.received) == 2
    assert env.received[1].started - env.received[0].started >= 0.95
    assert time.monotonic() - started >= 0.95
    assert out.info["attempts"] == 2 and out.info["retries"] == 1
    assert "429" in out.info["errors"][0]


def test_openai_5xx_and_timeout_are_retried(env: FakeImageAPI) -> None:
    env.script(server_error("openai", 503), hang(3.0))
    rep = build_openai("openai:gpt-image-1,backoff=0.05,timeout=0.5")
    started = time.monotonic()
    (out,) = rep.replicate([frame_64x48()], [0])
    assert isinstance(out, Copy), out
    assert time.monotonic() - started < 2.5
    assert out.info["attempts"] == 3 and out.info["retries"] == 2
    assert "503" in out.info["errors"][0] and "timed out" in out.info["errors"][1]


def test_openai_retries_are_bounded(env: FakeImageAPI) -> None:
    env.script(*[server_error("openai", 500) for _ in range(3)])
    rep = build_openai("openai:gpt-image-1,backoff=0.02,retries=2")
    (out,) = rep.replicate([frame_64x48()], [0])
    assert isinstance(out, Failure)
    assert "after 2 retries" in out.message and "HTTP 500" in out.message
    assert out.info["attempts"] == 3 and len(env.received) == 3


def test_openai_refusal(env: FakeImageAPI) -> None:
    env.script(refusal("openai"))
    (out,) = build_openai("openai:gpt-image-1,backoff=0.02").replicate([frame_64x48()], [0])
    assert isinstance(out, Refusal), out
    assert "moderation_blocked" in out.reason and "safety system" in out.reason
    assert out.info["attempts"] == 1 and out.info["status"] == 400
    assert len(env.received) == 1  # a refusal is not retried here: the engine decides


@pytest.mark.parametrize("kind", ["no_data", "no_b64", "garbage_b64", "not_image", "not_json"])
def test_openai_malformed_is_a_failure(env: FakeImageAPI, kind: str) -> None:
    env.script(malformed("openai", kind))
    (out,) = build_openai("openai:gpt-image-1,backoff=0.02").replicate([frame_64x48()], [0])
    assert isinstance(out, Failure), out
    assert "malformed" in out.message
    assert len(env.received) == 1


def test_openai_batch_is_concurrent_and_ordered(env: FakeImageAPI) -> None:
    """4 frames, concurrency 4, the server sleeping 0.3 s per request: the sleeps overlap.

    Measured against the same batch without the sleep, so a busy machine's CPU time does not count: sent one
    by one the sleeps would add 1.2 s, sent together they add about 0.3 s.
    """
    rep = build_openai("openai:gpt-image-1,size=1024x1024,concurrency=4")
    frames = [frame_64x48(i) for i in range(4)]
    rep.replicate(frames, [0, 1, 2, 3])  # warm up: connection pool, imports
    started = time.monotonic()
    rep.replicate(frames, [0, 1, 2, 3])
    baseline = time.monotonic() - started
    env.delay = 0.3
    started = time.monotonic()
    outs = rep.replicate(frames, [0, 1, 2, 3])
    elapsed = time.monotonic() - started
    assert elapsed - baseline < 0.6, (elapsed, baseline)
    assert elapsed < 0.9 or baseline > 0.4, (elapsed, baseline)  # the brief's bound, on an idle machine
    for out, frame in zip(outs, frames, strict=True):
        assert isinstance(out, Copy)
        assert_close_copy(out.frame, frame)


def test_openai_rpm_limit_spaces_requests(env: FakeImageAPI) -> None:
    env.script(server_error("openai", 502))  # a retry also waits for its turn
    rep = build_openai("openai:gpt-image-1,size=1024x1024,concurrency=4,rpm=120,backoff=0.01")
    started = time.monotonic()
    outs = rep.replicate([frame_64x48(i) for i in range(3)], [0, 1, 2])
    elapsed = time.monotonic() - started
    assert all(isinstance(o, Copy) for o in outs)
    starts = sorted(r.started for r in env.received)
    assert len(starts) == 4
    assert elapsed >= 1.45, elapsed
    assert min(b - a for a, b in itertools.pairwise(starts)) >= 0.4  # 0.5 s slots, arrival jitter


def test_openai_account_errors_stop_the_batch(env: FakeImageAPI) -> None:
    quota = openai_error(429, "You exceeded your current quota", "insufficient_quota", {"Retry-After": "0"})
    env.script(*[quota] * 4)
    rep = build_openai("openai:gpt-image-1,backoff=0.01,concurrency=2")
    with pytest.raises(HostedAuthError, match="insufficient_quota") as info:
        rep.replicate([frame_64x48(i) for i in range(4)], [0, 1, 2, 3])
    assert info.value.exit_code == 2
    assert len(env.received) <= 2  # not retried, and no new requests once one failed this way


def test_openai_missing_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(MissingAPIKeyError, match="OPENAI_API_KEY") as info:
        build_openai()
    assert isinstance(info.value, DriftloopError) and info.value.exit_code == 2
    status = openai_images.backends()[0].weights_status(openai_images.OpenAIConfig())
    assert not status.present and "OPENAI_API_KEY" in status.where


def test_openai_without_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setitem(sys.modules, "openai", None)
    with pytest.raises(HostedConfigError, match=r"driftloop\[hosted\]"):
        build_openai()


def test_modules_import_the_clients_lazily() -> None:
    code = (
        "import sys, driftloop.replicators.hosted.openai_images as o, "
        "driftloop.replicators.hosted.gemini as g, driftloop.replicators.hosted; o.backends(); g.backends(); "
        "assert 'openai' not in sys.modules and 'google.genai' not in sys.modules, sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_spec_validation() -> None:
    backend = openai_images.backends()[0]
    with pytest.raises(SpecError, match="quality"):
        parse_config("openai:gpt-image-1,quality=ultra", backend.config_type, backend.positional)
    with pytest.raises(SpecError, match="concurrency"):
        parse_config("openai:gpt-image-1,concurrency=0", backend.config_type, backend.positional)
    with pytest.raises(SpecError, match="unknown parameter 'api_key'"):
        parse_config("openai:gpt-image-1,api_key=sk-x", backend.config_type, backend.positional)


# ------------------------------------------------------------------------------------------------ secrets


def test_key_never_leaks_into_outcomes_describe_or_errors(env: FakeImageAPI) -> None:
    leak = f"upstream rejected the request made with key {OPENAI_KEY}"
    env.script(
        openai_error(500, leak),
        openai_error(500, leak),
        openai_error(
            400, f"Your request was rejected by the safety system ({OPENAI_KEY})", "moderation_blocked"
        ),
        openai_error(400, f"bad image for key {OPENAI_KEY}", "invalid_image"),
    )
    rep = build_openai("openai:gpt-image-1,backoff=0.01,retries=1,concurrency=1")
    failed, refused, bad = rep.replicate([frame_64x48(i) for i in range(3)], [0, 1, 2])
    assert isinstance(failed, Failure) and isinstance(refused, Refusal) and isinstance(bad, Failure)
    assert "***" in failed.message and "***" in refused.reason and "***" in bad.message
    secret_free(
        failed.message, failed.info, refused.reason, refused.info, bad.message, bad.info, rep.describe()
    )
    secret_free(rep.spec)

    env.openai_key = "sk-some-other-key"  # now the fake rejects ours, echoing it back in a 401
    with pytest.raises(HostedAuthError) as info:
        rep.replicate([frame_64x48()], [0])
    assert "OPENAI_API_KEY" in str(info.value) and "401" in str(info.value)
    secret_free(str(info.value), repr(info.value), str(info.value.__cause__), str(info.value.__context__))


def test_gemini_key_never_leaks(env: FakeImageAPI) -> None:
    env.gemini_key = "another-key"
    rep = build_gemini("gemini:gemini-2.5-flash-image,backoff=0.01")
    with pytest.raises(HostedAuthError) as info:
        rep.replicate([frame_64x48()], [0])
    assert "GEMINI_API_KEY" in str(info.value)
    secret_free(str(info.value), rep.describe(), rep.spec)


# ------------------------------------------------------------------------------------------------ Gemini


def test_gemini_copy_request_shape_and_info(env: FakeImageAPI) -> None:
    rep = build_gemini()
    frame = frame_64x48()
    (out,) = rep.replicate([frame], [3])
    assert isinstance(out, Copy), out
    assert_close_copy(out.frame, frame)
    (req,) = env.received
    assert req.auth_ok and not req.problems
    assert req.path.endswith("/models/gemini-2.5-flash-image:generateContent")
    assert req.fields["prompt"] == PROMPT and req.fields["mime_type"] == "image/png"
    assert req.fields["aspect_ratio"] == "4:3" and req.fields["modalities"] == "IMAGE"
    assert req.image is not None and req.image.shape == (864, 1184, 3)
    assert "seed" not in req.fields
    info = out.info
    assert info["attempts"] == 1 and info["request_id"] == "fake-1"
    assert info["usd"] == pytest.approx(GEMINI_USD) and info["finish_reason"] == "STOP"
    assert info["usage"]["candidates_token_count"] == 1290
    assert rep.requirements.cost_per_image_usd == pytest.approx(0.039)
    assert rep.spec == "gemini:gemini-2.5-flash-image"


def test_gemini_answer_at_another_size_and_seed(env: FakeImageAPI) -> None:
    def smaller(req: Received) -> np.ndarray:
        assert req.image is not None
        return np.asarray(Image.fromarray(req.image).resize((592, 432), Image.Resampling.LANCZOS))

    env.script(smaller)
    rep = build_gemini("gemini:gemini-2.5-flash-image,seed=true,aspect=1:1")
    frame = frame_64x48()
    (out,) = rep.replicate([frame], [2**40 + 5])
    assert isinstance(out, Copy), out
    assert out.frame.shape == frame.shape
    assert np.abs(out.frame.astype(int) - frame).mean() < 3
    assert env.received[0].fields["seed"] == str((2**40 + 5) % 2**31)
    assert env.received[0].fields["aspect_ratio"] == "1:1"


@pytest.mark.parametrize("kind", ["finish", "prompt"])
def test_gemini_refusals(env: FakeImageAPI, kind: str) -> None:
    env.script(refusal("gemini", kind))
    (out,) = build_gemini().replicate([frame_64x48()], [0])
    assert isinstance(out, Refusal), out
    assert ("IMAGE_SAFETY" if kind == "finish" else "PROHIBITED_CONTENT") in out.reason


@pytest.mark.parametrize("kind", ["no_data", "text_only", "garbage_b64", "not_image", "not_json"])
def test_gemini_malformed_is_a_failure(env: FakeImageAPI, kind: str) -> None:
    env.script(malformed("gemini", kind))
    (out,) = build_gemini("gemini:gemini-2.5-flash-image,backoff=0.01").replicate([frame_64x48()], [0])
    assert isinstance(out, Failure), out
    assert "malformed" in out.message
    if kind == "text_only":
        assert "forgot to attach" in out.message


def test_gemini_retry_info_5xx_and_timeout(env: FakeImageAPI) -> None:
    env.script(
        rate_limited("gemini", retry_after=None, retry_delay="0.3s"), server_error("gemini"), hang(3.0)
    )
    rep = build_gemini("gemini:gemini-2.5-flash-image,backoff=0.02,timeout=0.5")
    started = time.monotonic()
    (out,) = rep.replicate([frame_64x48()], [0])
    assert isinstance(out, Copy), out
    assert out.info["attempts"] == 4 and out.info["retries"] == 3
    assert env.received[1].started - env.received[0].started >= 0.3
    assert "429" in out.info["errors"][0] and "timed out" in out.info["errors"][2]
    assert time.monotonic() - started < 3.0


def test_gemini_missing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    with pytest.raises(MissingAPIKeyError, match="GEMINI_API_KEY"):
        build_gemini()


# -------------------------------------------------------------------------------------------- end to end


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hosted backends in the registry (a no-op once registry.py lists them itself)."""
    original = registry.backends
    table = original()
    if "openai" in table and "gemini" in table:
        return
    extra = {b.name: b for b in (*openai_images.backends(), *gemini.backends())}
    monkeypatch.setattr(registry, "backends", lambda: {**original(), **extra})


def _image(path: Path, colour: tuple[int, int, int]) -> Path:
    array = np.zeros((64, 64, 3), np.uint8)
    array[...] = colour
    array[16:48, 16:48] = (255 - colour[0], 255 - colour[1], 255 - colour[2])
    Image.fromarray(array).save(path)
    return path


def _scan_for_keys(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert OPENAI_KEY.encode() not in data and GEMINI_KEY.encode() not in data, path


def test_run_end_to_end_through_the_fake(env: FakeImageAPI, registered: None, tmp_path: Path) -> None:
    env.script(rate_limited("openai", retry_after="0"))
    image = _image(tmp_path / "in.png", (200, 120, 40))
    ws = tmp_path / "ws"
    run = driftloop.run(
        image,
        model="openai:gpt-image-1,backoff=0.05,quality=low",
        n=3,
        size=64,
        workspace=ws,
        render=False,
        metrics=False,
    )
    assert [c.status for c in run.chains()] == ["done"]
    assert len(env.received) == 4 and all(r.fields["quality"] == "low" for r in env.received)
    made = [r for r in run.records() if r["step"] > 0]
    assert len(made) == 3
    infos = [r["info"] for r in made]
    assert [i["attempts"] for i in infos] == [2, 1, 1] and infos[0]["retries"] == 1
    assert all(i["usd"] == pytest.approx(gpt_image_1_usd(272)) and i["size"] == "1024x1024" for i in infos)
    assert infos[0]["request_id"] == "req_fake_2"
    frame = run.frame(chain=0, step=3)
    assert frame.shape == (64, 64, 3)
    assert int(frame[..., 0].astype(int).sum() - run.frame(chain=0, step=0)[..., 0].astype(int).sum()) > 0
    _, total = run.cost_totals()
    assert total.usd == pytest.approx(3 * gpt_image_1_usd(272))
    _scan_for_keys(ws)


def test_run_refusal_ends_only_its_chain(env: FakeImageAPI, registered: None, tmp_path: Path) -> None:
    env.refuse_when = lambda req: (
        req.image is not None and req.image[..., 0].mean() > req.image[..., 2].mean()
    )
    red = _image(tmp_path / "red.png", (220, 30, 30))
    blue = _image(tmp_path / "blue.png", (30, 30, 220))
    run = driftloop.run(
        [red, blue],
        model="openai:gpt-image-1,backoff=0.02",
        n=2,
        size=32,
        workspace=tmp_path / "ws",
        render=False,
        metrics=False,
        refusal_retries=1,
    )
    statuses = {Path(c.input_path).name: c.status for c in run.chains()}
    assert statuses == {"red.png": "refused", "blue.png": "done"}, statuses
    assert [r["step"] for r in run.records() if Path(r["input"]).name == "red.png"] == [0]
    events = [e for e in run.events() if e["kind"] == "refusal"]
    assert len(events) == 2  # the first answer and one retry
    assert all("moderation_blocked" in e["message"] for e in events), events
    _scan_for_keys(tmp_path / "ws")


def _quota() -> Any:
    return openai_error(429, "You exceeded your current quota", "insufficient_quota", {"Retry-After": "0"})


def test_run_account_error_keeps_paid_copies_and_resume_buys_each_once(
    env: FakeImageAPI, registered: None, tmp_path: Path
) -> None:
    """A quota error part-way through a batch: the copies already bought are stored, and a resume asks only
    for what is missing, so no (chain, step) is paid twice."""
    ws = tmp_path / "ws"
    images = [_image(tmp_path / "a.png", (200, 120, 40)), _image(tmp_path / "b.png", (40, 120, 200))]
    ok = lambda req: None  # noqa: E731 - the default copy
    env.script(ok, ok, ok, _quota())  # step 1 of both chains, step 2 of chain 0, then the quota runs out
    spec = "openai:gpt-image-1,backoff=0.01,concurrency=1,quality=low"
    kwargs: dict[str, Any] = {"n": 3, "size": 32, "workspace": ws, "render": False, "metrics": False}
    with pytest.raises(HostedAuthError, match="insufficient_quota"):
        driftloop.run(images, model=spec, **kwargs)
    (summary,) = driftloop.runs(ws)
    assert summary.status == "failed"
    handle = driftloop.open_run(summary.id, ws)
    assert sorted((r.chain, r.step) for r in handle.frame_rows() if r.step > 0) == [(0, 1), (0, 2), (1, 1)]
    assert len(env.received) == 4
    resumed = driftloop.resume(summary.id, workspace=ws, render=False)
    assert resumed.status == "done" and [c.status for c in resumed.chains()] == ["done", "done"]
    assert len(env.received) == 4 + 3  # chain 1 step 2, then step 3 of both: nothing bought twice
    rows = [r for r in resumed.frame_rows() if r.step > 0]
    assert len(rows) == 6
    _, total = resumed.cost_totals()
    assert total.usd == pytest.approx(6 * gpt_image_1_usd(272))
    _scan_for_keys(ws)


def test_run_max_cost_uses_the_runs_price_table(env: FakeImageAPI, registered: None, tmp_path: Path) -> None:
    prices = tmp_path / "prices.toml"
    low = "\n".join(f'"low:{size}" = 1.0' for size in ("1024x1024", "1536x1024", "1024x1536"))
    prices.write_text(f'[prices."openai:gpt-image-1"]\nas_of = "2026-11"\nsource = "test"\n{low}\n')
    image = _image(tmp_path / "in.png", (200, 120, 40))
    ws = tmp_path / "ws"
    with pytest.raises(DriftloopError, match=r"about \$3\.00 .* more than --max-cost \$0\.50"):
        driftloop.run(image, model="openai:gpt-image-1,quality=low,size=1024x1024", n=3, size=32,
                      workspace=ws,
                      cost_factors=prices, max_cost=0.5, render=False)  # fmt: skip
    assert env.received == [] and not (ws / "driftloop.db").exists()


def test_run_max_cost_needs_a_price(env: FakeImageAPI, registered: None, tmp_path: Path) -> None:
    image = _image(tmp_path / "in.png", (200, 120, 40))
    unpriced: dict[str, Any] = {"model": "openai:gpt-image-9", "size": 32, "workspace": tmp_path / "ws"}
    with pytest.raises(SpecError, match=r'--max-cost needs a price.*\[prices\."openai:gpt-image-9"\]'):
        driftloop.run(image, n=3, max_cost=0.5, render=False, **unpriced)
    assert env.received == []
    run = driftloop.run(image, n=1, render=False, metrics=False, **unpriced)  # no budget: it runs, unpriced
    assert run.status == "done" and len(env.received) == 1


def test_run_error_chain_is_asked_again_with_retry_failed(
    env: FakeImageAPI, registered: None, tmp_path: Path
) -> None:
    ws = tmp_path / "ws"
    image = _image(tmp_path / "in.png", (200, 120, 40))
    env.script(lambda req: None, malformed("openai", "not_json"))
    run = driftloop.run(image, model="openai:gpt-image-1,backoff=0.01", n=3, size=32, workspace=ws,
                        render=False, metrics=False)  # fmt: skip
    assert [(c.status, c.last_step) for c in run.chains()] == [("error", 1)]
    again = driftloop.resume(run.id, workspace=ws, render=False)
    assert [(c.status, c.last_step) for c in again.chains()] == [("error", 1)]  # final unless asked
    assert len(env.received) == 2
    again = driftloop.resume(run.id, workspace=ws, render=False, retry_failed=True)
    assert [(c.status, c.last_step) for c in again.chains()] == [("done", 3)]
    assert len(env.received) == 4 and again.status == "done"
    assert any(e["kind"] == "retry" for e in again.events())


def test_gemini_run_end_to_end_through_the_fake(env: FakeImageAPI, registered: None, tmp_path: Path) -> None:
    env.script(server_error("gemini", 503, "The model is overloaded"))
    ws = tmp_path / "ws"
    image = _image(tmp_path / "in.png", (30, 160, 90))
    run = driftloop.run(image, model="gemini:gemini-2.5-flash-image,backoff=0.02", n=2, seeds=[1, 2],
                        size=32, workspace=ws, render=False, metrics=False)  # fmt: skip
    assert [c.status for c in run.chains()] == ["done", "done"]
    assert len(env.received) == 5 and all(r.provider == "gemini" for r in env.received)
    infos = [r["info"] for r in run.records() if r["step"] > 0]
    assert sum(i["retries"] for i in infos) == 1
    assert all(i["usd"] == pytest.approx(GEMINI_USD) for i in infos)
    assert run.frame(chain=1, step=2).shape == (32, 32, 3)
    _, total = run.cost_totals()
    assert total.usd == pytest.approx(4 * GEMINI_USD)
    _scan_for_keys(ws)


def test_per_image_price_when_the_answer_reports_no_tokens(env: FakeImageAPI) -> None:
    image = np.full((1024, 1024, 3), 90, np.uint8)
    body = {"created": 1, "data": [{"b64_json": png_b64(image)}], "quality": "low", "size": "1024x1024"}
    env.script(Reply(200, body))
    (out,) = build_openai("openai:gpt-image-1,quality=low").replicate([frame_64x48()], [0])
    assert isinstance(out, Copy) and out.info["usd"] == pytest.approx(0.011)  # low:1024x1024
    assert "per image" in out.info["usd_source"]


def test_token_prices_need_a_rate_for_every_kind_counted() -> None:
    from driftloop.cost import load_factors

    factors = load_factors()
    price = factors.token_price("openai:gpt-image-1", {"input_text": 1000, "input_image": 0, "output": 2000})
    assert price is not None and price.usd == pytest.approx(1000 * 5e-6 + 2000 * 40e-6)
    assert factors.token_price("openai:gpt-image-1", {"input_audio": 10, "output": 2000}) is None
    assert factors.token_price("openai:no-such-model", {"output": 2000}) is None


def test_run_budget_stops_when_tokens_cost_more_than_listed(
    env: FakeImageAPI, registered: None, tmp_path: Path
) -> None:
    """Listed at $0.011 a copy, each answer really costs ~$0.0138 (its input image is billed too): a $0.035
    budget admits the 3-copy estimate ($0.033), then stops before the copy that would pass it; a resume with a
    higher budget buys only that copy."""
    ws = tmp_path / "ws"
    image = _image(tmp_path / "in.png", (200, 120, 40))
    with pytest.raises(BudgetReached, match="would pass --max-cost"):
        driftloop.run(image, model="openai:gpt-image-1,quality=low,size=1024x1024", n=3, size=32,
                      workspace=ws,
                      max_cost=0.035, render=False, metrics=False)  # fmt: skip
    (summary,) = driftloop.runs(ws)
    assert summary.status == "budget" and summary.steps_done == 2 and len(env.received) == 2
    resumed = driftloop.resume(summary.id, workspace=ws, max_cost=1.0, render=False)
    assert resumed.status == "done" and len(env.received) == 3
    assert resumed.cost_totals()[1].usd == pytest.approx(3 * gpt_image_1_usd(272))


def test_openai_retry_after_past_the_limit_ends_the_frame(env: FakeImageAPI) -> None:
    env.script(rate_limited("openai", retry_after="3600"))
    started = time.monotonic()
    (out,) = build_openai("openai:gpt-image-1,backoff=0.01").replicate([frame_64x48()], [0])
    assert isinstance(out, Failure) and "retry after 3600 s" in out.message
    assert time.monotonic() - started < 5 and len(env.received) == 1


def test_account_error_after_some_copies_carries_them(env: FakeImageAPI) -> None:
    ok = lambda req: None  # noqa: E731 - the default copy
    env.script(ok, _quota())
    rep = build_openai("openai:gpt-image-1,backoff=0.01,concurrency=1")
    with pytest.raises(BatchAborted) as info:
        rep.replicate([frame_64x48(i) for i in range(3)], [0, 1, 2])
    cause, outcomes = info.value.cause, info.value.outcomes
    assert isinstance(cause, HostedAuthError) and "insufficient_quota" in str(cause)
    assert isinstance(outcomes[0], Copy) and outcomes[1:] == [None, None] and len(env.received) == 2


def test_ctrl_c_in_a_one_worker_batch_keeps_the_copies_made(env: FakeImageAPI, monkeypatch) -> None:
    rep = build_openai("openai:gpt-image-1,concurrency=1")
    real = rep._send
    sent: list[int] = []

    def send(job):
        sent.append(job.index)
        if job.index == 1:
            raise KeyboardInterrupt  # Ctrl-C while the second request is in flight (main thread)
        return real(job)

    monkeypatch.setattr(rep, "_send", send)
    with pytest.raises(BatchAborted) as info:
        rep.replicate([frame_64x48(i) for i in range(3)], [0, 1, 2])
    assert isinstance(info.value.cause, KeyboardInterrupt) and sent == [0, 1]
    made = info.value.outcomes
    assert isinstance(made[0], Copy) and made[1:] == [None, None]


def test_token_price_needs_counts() -> None:
    from driftloop.cost import load_factors

    zeros = {"input_text": 0, "input_image": 0, "output": 0}
    assert load_factors().token_price("openai:gpt-image-1", zeros) is None  # falls back to the list price
