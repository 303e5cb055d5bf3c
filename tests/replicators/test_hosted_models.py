"""Today's hosted models: the dated catalogue, gpt-image-2-class sizes, Gemini 3 image models, retired-model
warnings and errors, and ``--dry-run``; OpenAI and Gemini through their official clients against the local
fake (tests/replicators/fake_image_api.py). The money stored with a copy equals what the fake billed: its
reported usage at the provider's published rates.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import test_hosted
from fake_image_api import (
    GEMINI_TIER_TOKENS,
    FakeImageAPI,
    Received,
    gemini_error,
    gpt_image_2_tokens,
    hang,
    malformed,
    rate_limited,
    refusal,
    server_error,
)
from PIL import Image
from test_hosted import build_gemini, build_openai

import driftloop
from driftloop.cost import catalogue, default_factors, load_factors
from driftloop.errors import SpecError
from driftloop.replicators import registry
from driftloop.replicators.base import BatchAborted, Copy, Failure, Refusal
from driftloop.replicators.hosted import bfl, gemini, openai_images
from driftloop.replicators.hosted.canvas import native_canvas
from driftloop.replicators.hosted.replicator import HostedAuthError, offline
from driftloop.replicators.spec import parse_config

fake, env = test_hosted.fake, test_hosted.env  # the fixtures: the local fake, and the clients pointed at it
REPO = Path(__file__).resolve().parents[2]
READ = dt.date(2026, 12, 1)
THREADS_READ = dt.date(2026, 12, 4)  # the conversation backends' entries
# the providers' published rates (USD per 1M tokens), as the fake's bill is reckoned
GPT_IMAGE_2 = {"text": 5.0, "image": 8.0, "output": 30.0}
GEMINI_3_PRO = {"text": 2.0, "image": 2.0, "output": 120.0}
SPEC = re.compile(r"\b(openai|gemini|bfl):([A-Za-z0-9][A-Za-z0-9._-]*)")


def billed_openai(usage: dict) -> float:
    d = usage["input_tokens_details"]
    return (
        d["text_tokens"] * GPT_IMAGE_2["text"]
        + d["image_tokens"] * GPT_IMAGE_2["image"]
        + usage["output_tokens"] * GPT_IMAGE_2["output"]
    ) / 1e6


def square(side: int, seed: int = 0) -> np.ndarray:
    """Smooth ramps (a small PNG, quick to send), different for each seed."""
    yy, xx = np.mgrid[0:side, 0:side] * (200 / side)
    rgb = np.stack([20 + xx + seed, 30 + yy, 250 - (xx + yy) / 2], axis=-1)
    return np.clip(rgb, 0, 254).astype(np.uint8)


# ------------------------------------------------------------------------------------------- catalogue


def test_catalogue_dates_parse_and_every_entry_has_a_source_and_read_date() -> None:
    raw = tomllib.loads(resources.files("driftloop").joinpath("hosted_models.toml").read_text("utf-8"))
    assert raw["meta"]["read"] == THREADS_READ
    for key, model in raw["models"].items():
        for name in ("released", "announced", "shutdown", "read"):
            if name in model:
                assert type(model[name]) is dt.date, (key, name)  # a TOML date, not a string
        assert (
            model["read"] <= (THREADS_READ if "-thread:" in key else READ) and "https://" in model["source"]
        )
        assert model["status"] in catalogue.STATUSES, key
        if "price" in model:
            assert type(model["price"]["read"]) is dt.date and "https://" in model["price"]["source"], key
    entries = catalogue.entries()
    assert {e.provider for e in entries} == {"openai", "gemini", "bfl", "openai-thread", "gemini-thread"}
    for e in entries:
        if e.status == "retired":
            assert e.shutdown is not None and e.shutdown <= e.read, e.key
        if e.replacement:  # a replacement is a model the catalogue knows, and it is current
            assert catalogue.lookup(e.provider, e.replacement).status == "current", e.key


def test_catalogue_is_the_one_home_of_prices() -> None:
    text = resources.files("driftloop").joinpath("cost_factors.toml").read_text("utf-8")
    assert "[prices" not in text.replace('[prices."openai:gpt-image-2"] with', "")
    f = default_factors()
    price = f.price("openai:gpt-image-2", "medium", "1024x1024")
    assert price is not None and price.usd == 0.053 and price.as_of == "2026-12-01"
    assert "secondary" in price.source and "developers.openai.com/api/docs/pricing" in price.source
    assert "https://" not in price.source  # it travels into self-contained reports
    assert f.price("gemini:gemini-3-pro-image", "4K").usd == 0.24
    mp = f.megapixel_price("bfl:flux-2-pro", 1.0, 1.0)
    assert mp is not None and mp.usd == pytest.approx(0.045)
    assert f.megapixel_price("bfl:flux-kontext-pro", 1.0, 1.0) is None  # priced per image
    assert set(catalogue.price_tables()) == {e.key for e in catalogue.entries() if e.price}


def test_a_price_override_still_works_key_by_key(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text('[prices."openai:gpt-image-2"]\n"tokens:output" = 40.0\n')
    f = load_factors(path)
    rates = f.prices["openai:gpt-image-2"]
    assert rates["tokens:output"].usd == 40.0 and rates["tokens:output"].source == f"set in {path}"
    assert rates["tokens:input_image"].usd == 8.0  # the rest from the catalogue


def test_every_hosted_model_the_readme_and_example_name_is_current() -> None:
    text = (REPO / "README.md").read_text("utf-8") + (REPO / "examples" / "hosted.toml").read_text("utf-8")
    named = {(p, m.rstrip(".,")) for p, m in SPEC.findall(text)}
    assert {p for p, _ in named} == {"openai", "gemini", "bfl"}, named
    for provider, model in named:
        entry = catalogue.lookup(provider, model)
        assert entry is not None, f"{provider}:{model} is not in the catalogue"
        assert entry.status == "current", f"the README names {provider}:{model}, which is {entry.status}"


def test_defaults_are_current_models() -> None:
    for backend in (*openai_images.backends(), *gemini.backends(), *bfl.backends()):
        entry = catalogue.lookup(backend.name, backend.config_type().model)
        assert entry is not None and entry.status == "current" and entry.confidence != "unconfirmed"


def test_the_gemini_conflict_is_recorded_with_both_sources() -> None:
    entry = catalogue.lookup("gemini", "gemini-3.1-flash-image")
    assert entry.confidence == "unconfirmed" and "ai.google.dev" in entry.source
    assert "litellm" in entry.conflict and "2026-10-29" in entry.conflict


def test_models_listing_shows_status_and_list_price_per_image() -> None:
    rows = {r.spec: r for r in registry.hosted_listing()}
    assert rows["openai:gpt-image-1"].status.startswith("retired 2026-10-23 → gpt-image-2")
    assert rows["openai:gpt-image-2"].status == "current"
    assert rows["openai:gpt-image-2"].usd_per_image == pytest.approx(0.053)  # medium, 1024², as listed
    assert rows["bfl:flux-2-pro"].usd_per_image == pytest.approx(0.045)  # 1 MP in, 1 MP out
    assert rows["gemini:gemini-3.1-flash-lite-image"].usd_per_image is None


# ---------------------------------------------------------------------------------------- gpt-image-2


def test_native_canvas_rules() -> None:
    rule = {
        "multiple_of": 16,
        "min_pixels": 655360,
        "max_pixels": 8294400,
        "max_edge": 3840,
        "max_aspect": 3.0,
    }
    assert native_canvas(1024, 1024, **rule) == (1024, 1024)  # fits: its own size
    assert native_canvas(1080, 1920, **rule) == (1920, 1088)  # rounded up to 16, padded by 8 rows
    assert native_canvas(512, 512, **rule) == (1024, 1024)  # below the minimum: ×2
    assert native_canvas(256, 256, **rule) == (1024, 1024)  # ×4
    assert native_canvas(4000, 4000, **rule) == (2880, 2880)  # above the maximum: reduced
    assert native_canvas(100, 500, **rule)[0] / native_canvas(100, 500, **rule)[1] <= 3.0


def test_gpt_image_2_sends_a_fitting_frame_at_its_own_size(env: FakeImageAPI) -> None:
    rep = build_openai("openai:gpt-image-2,quality=low")
    frame = square(1024)
    (out,) = rep.replicate([frame], [0])
    assert isinstance(out, Copy), out
    (req,) = env.received
    assert req.fields["size"] == "1024x1024" and req.fields["model"] == "gpt-image-2"
    assert np.array_equal(req.image, frame)  # no padding, no resize
    assert out.info["box"] == [0, 0, 1024, 1024]
    diff = out.frame.astype(int) - frame
    assert np.abs(diff[..., 1:]).max() == 0  # no crop-back or resampling of the answer
    assert out.info["usd"] == pytest.approx(billed_openai(out.info["usage"]))
    assert out.info["usage"]["output_tokens"] == gpt_image_2_tokens("low", 1024, 1024) == 196


def test_gpt_image_2_enlarges_a_small_frame_by_a_whole_factor(env: FakeImageAPI) -> None:
    rep = build_openai("openai:gpt-image-2,quality=medium,resample=nearest")
    frame = square(512, 1)
    (out,) = rep.replicate([frame], [0])
    assert isinstance(out, Copy), out
    req = env.received[0]
    assert req.fields["size"] == "1024x1024" and req.image.shape == (1024, 1024, 3)
    assert np.array_equal(req.image[::2, ::2], frame)  # pixel replication, ×2
    back = out.frame.astype(int) - frame
    assert np.abs(back[..., 1:]).max() == 0 and out.frame.shape == frame.shape
    assert out.info["usd"] == pytest.approx(billed_openai(out.info["usage"]))


def test_gpt_image_2_6_takes_xhigh_and_gpt_image_2_does_not(env: FakeImageAPI) -> None:
    (out,) = build_openai("openai:gpt-image-2.6-sunburst,quality=xhigh").replicate([square(1024)], [0])
    assert isinstance(out, Copy), out
    assert env.received[0].fields["quality"] == "xhigh"
    assert out.info["usd"] == pytest.approx(billed_openai(out.info["usage"]))
    backend = openai_images.backends()[0]
    with pytest.raises(SpecError, match="takes quality low, medium, high, auto"):
        parse_config("openai:gpt-image-2,quality=xhigh", backend.config_type, backend.positional)
    with pytest.raises(SpecError, match="outside gpt-image-2's limits"):
        parse_config("openai:gpt-image-2,size=512x512", backend.config_type, backend.positional)
    with pytest.raises(SpecError, match="size=1000x1000"):
        parse_config("openai:gpt-image-1,size=1000x1000", backend.config_type, backend.positional)
    config = parse_config("openai:gpt-image-2,size=2048x1152", backend.config_type, backend.positional)
    assert config.size == "2048x1152"


def test_gpt_image_2_faults(env: FakeImageAPI) -> None:
    """429 with and without Retry-After, 5xx and a timeout are retried; the copy is billed once."""
    env.script(
        rate_limited("openai", retry_after="0.3"), rate_limited("openai", retry_after=None),
        server_error("openai", 502), hang(6.0),
    )  # fmt: skip
    rep = build_openai("openai:gpt-image-2,quality=low,backoff=0.05,timeout=2")
    (out,) = rep.replicate([square(1024)], [0])
    assert isinstance(out, Copy), out
    assert out.info["attempts"] == 5 and env.received[1].started - env.received[0].started >= 0.3
    assert out.info["usd"] == pytest.approx(billed_openai(out.info["usage"]))
    env.script(refusal("openai"), malformed("openai", "garbage_b64"))
    refused, broken = build_openai("openai:gpt-image-2,concurrency=1").replicate([square(1024)] * 2, [0, 1])
    assert isinstance(refused, Refusal) and isinstance(broken, Failure) and "malformed" in broken.message


def test_retired_openai_model_error_names_the_replacement(env: FakeImageAPI) -> None:
    env.retired = {"gpt-image-1"}
    rep = build_openai("openai:gpt-image-1,backoff=0.01")
    assert (
        rep.notices and "retired on 2026-10-23" in rep.notices[0] and "openai:gpt-image-2" in rep.notices[0]
    )
    assert "OPENAI_BASE_URL" in rep.notices[0]
    with pytest.raises(HostedAuthError) as info:
        rep.replicate([square(64)], [0])
    message = str(info.value)
    assert "model_not_found" in message and "retired 2026-10-23; use openai:gpt-image-2" in message
    assert len(env.received) == 1  # not retried


def test_quota_error_mid_batch_keeps_the_copies_made(env: FakeImageAPI) -> None:
    quota = gemini_error(
        429, "Quota exceeded for metric generate_content_requests, limit: 250", "RESOURCE_EXHAUSTED",
        [{"@type": "type.googleapis.com/google.rpc.QuotaFailure",
          "violations": [{"quotaId": "GenerateRequestsPerDayPerProjectPerModel"}]}],
    )  # fmt: skip
    env.script(lambda req: None, quota)
    rep = build_gemini("gemini:gemini-3-pro-image,concurrency=1,backoff=0.01")
    with pytest.raises(BatchAborted) as info:
        rep.replicate([square(64, i) for i in range(3)], [0, 1, 2])
    assert "quota exhausted" in str(info.value.cause)
    assert isinstance(info.value.outcomes[0], Copy) and info.value.outcomes[1:] == [None, None]
    assert len(env.received) == 2


# ---------------------------------------------------------------------------------------------- Gemini


def test_gemini_3_pro_image_size_and_aspect_ratio(env: FakeImageAPI) -> None:
    rep = build_gemini("gemini:gemini-3-pro-image,image_size=2K,aspect_ratio=16:9")
    (out,) = rep.replicate([square(64)], [0])
    assert isinstance(out, Copy), out
    req = env.received[0]
    assert req.body["generationConfig"]["imageConfig"] == {"aspectRatio": "16:9", "imageSize": "2K"}
    assert req.path.endswith("/models/gemini-3-pro-image:generateContent")
    usage = out.info["usage"]
    assert usage["candidates_token_count"] == GEMINI_TIER_TOKENS["2K"]
    billed = (20 * GEMINI_3_PRO["text"] + 1120 * GEMINI_3_PRO["image"] + 1680 * GEMINI_3_PRO["output"]) / 1e6
    assert out.info["usd"] == pytest.approx(billed)
    backend = gemini.backends()[0]
    with pytest.raises(SpecError, match="image_size=512"):
        parse_config("gemini:gemini-3-pro-image,image_size=512", backend.config_type, backend.positional)
    with pytest.raises(SpecError, match="aspect_ratio=1:8"):
        parse_config("gemini:gemini-3-pro-image,aspect_ratio=1:8", backend.config_type, backend.positional)
    assert parse_config("gemini:gemini-3.1-flash-image,aspect_ratio=1:8", backend.config_type, "model")


def test_gemini_3_1_flash_picks_among_its_own_ratios(env: FakeImageAPI) -> None:
    tall = np.zeros((400, 100, 3), np.uint8)
    (out,) = build_gemini("gemini:gemini-3.1-flash-image").replicate([tall], [0])
    assert isinstance(out, Copy), out
    assert env.received[0].fields["aspect_ratio"] == "1:4" and out.frame.shape == tall.shape
    build_gemini("gemini:gemini-2.5-flash-image").replicate([tall], [0])
    assert env.received[1].fields["aspect_ratio"] == "9:16"  # the older model has no 1:4


@pytest.mark.parametrize("reason", ["IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION"])
def test_gemini_image_finish_reasons_are_refusals(env: FakeImageAPI, reason: str) -> None:
    def refuse(req: Received):
        from fake_image_api import Reply

        candidate = {"content": {"role": "model"}, "finishReason": reason, "index": 0}
        return Reply(200, {"candidates": [candidate], "responseId": "r"})

    env.script(refuse)
    (out,) = build_gemini("gemini:gemini-3-pro-image").replicate([square(64)], [0])
    assert isinstance(out, Refusal) and reason in out.reason


def test_retired_gemini_model_error_names_the_replacement(env: FakeImageAPI) -> None:
    env.retired = {"gemini-2.5-flash-image"}
    rep = build_gemini("gemini:gemini-2.5-flash-image,backoff=0.01")
    with pytest.raises(HostedAuthError, match=r"retired 2026-10-02; use gemini:gemini-3.1-flash-image"):
        rep.replicate([square(64)], [0])


# --------------------------------------------------------------------------- warnings and --dry-run


def _image(path: Path) -> Path:
    Image.fromarray(square(64, 3)).save(path)
    return path


def test_a_retired_model_is_a_warning_logged_and_stored(env: FakeImageAPI, tmp_path: Path) -> None:
    said: list[str] = []
    run = driftloop.run(_image(tmp_path / "in.png"), model="openai:gpt-image-1,quality=low", n=1, size=64,
                        workspace=tmp_path / "ws", render=False, metrics=False, log=said.append)  # fmt: skip
    assert run.status == "done"
    assert any(s.startswith("warning: openai:gpt-image-1 was retired on 2026-10-23") for s in said), said
    (event,) = [e for e in run.events() if e["kind"] == "warning"]
    assert "openai:gpt-image-2" in event["message"]
    assert run.row.model_info["catalogue"]["status"] == "retired"


def test_dry_run_calls_nothing_writes_nothing_needs_no_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("OPENAI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "BFL_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9")  # anything sent would fail loudly
    image, ws = _image(tmp_path / "in.png"), tmp_path / "ws"
    d = driftloop.api.estimate([image], model="openai:gpt-image-2,quality=medium,rpm=1", n=5, seeds=[1, 2],
                               size=512, workspace=ws)  # fmt: skip
    assert not ws.exists()
    assert d.calls == 10 and d.chains == 2 and d.steps == 5
    counts = 23 * 5 + openai_images.input_image_tokens(1024, 1024) * 8 + 1756 * 30
    assert d.usd_per_call == pytest.approx(counts / 1e6) and d.usd == pytest.approx(10 * counts / 1e6)
    assert d.seconds == pytest.approx(600.0)  # 10 calls at 1 per minute (slower than 5 waves of 45 s)
    assert "at most 1 calls per minute" in d.seconds_detail
    b = driftloop.api.estimate(image, model="bfl:flux-2-pro", n=3, size=512, workspace=ws)
    assert b.usd == pytest.approx(3 * (0.03 + 0.262144 * 0.015)) and not ws.exists()
    with offline():
        rep = registry.build("gemini:gemini-3-pro-image")
    with pytest.raises(Exception, match="estimate only"):
        rep.replicate([square(64)], [0])


def test_budget_counts_the_input_tokens_of_gpt_image_2(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    with pytest.raises(driftloop.errors.DriftloopError, match="more than --max-cost"):
        driftloop.run(_image(tmp_path / "in.png"), model="openai:gpt-image-2,quality=low", n=10, size=512,
                      workspace=tmp_path / "ws", max_cost=0.1, render=False)  # fmt: skip
    assert not (tmp_path / "ws").exists()


def test_cli_dry_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from driftloop.cli import app

    monkeypatch.delenv("BFL_API_KEY", raising=False)
    image = _image(tmp_path / "in.png")
    result = CliRunner().invoke(
        app,
        [
            "run",
            str(image),
            "--model",
            "bfl:flux-2-klein-4b",
            "-n",
            "4",
            "--dry-run",
            "-w",
            str(tmp_path / "w"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "4 calls" in result.output and "nothing was called or written" in result.output
    assert not (tmp_path / "w").exists()


def test_gemini_3_faults_with_retry_after_and_malformed(env: FakeImageAPI) -> None:
    env.script(rate_limited("gemini", retry_after="0.3"), server_error("gemini", 503), hang(6.0))
    rep = build_gemini("gemini:gemini-3-pro-image,image_size=1K,backoff=0.05,timeout=2")
    (out,) = rep.replicate([square(64)], [0])
    assert isinstance(out, Copy), out
    assert out.info["attempts"] == 4 and env.received[1].started - env.received[0].started >= 0.3
    assert "429" in out.info["errors"][0] and "timed out" in out.info["errors"][2]
    billed = (20 * GEMINI_3_PRO["text"] + 1120 * GEMINI_3_PRO["image"] + 1120 * GEMINI_3_PRO["output"]) / 1e6
    assert out.info["usd"] == pytest.approx(billed)  # billed once
    env.script(malformed("gemini", "not_image"))
    (bad,) = build_gemini("gemini:gemini-3-pro-image").replicate([square(64)], [0])
    assert isinstance(bad, Failure) and "malformed" in bad.message
