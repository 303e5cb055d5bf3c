"""The bfl replicator (FLUX.2, FLUX.1 Kontext through Black Forest Labs' API) against a local fake of it.

Submit, pending, ready, moderated, error, lost tasks, an expired result URL, 429 with and without
Retry-After, 5xx, timeouts, malformed answers, 402 (out of credits) part-way through a batch; the money
stored with each copy equals the credits the fake billed (1 credit = $0.01).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fake_bfl_api import FakeBFL, Task, bfl_error, rate_limited
from fake_image_api import Reply
from PIL import Image

import driftloop
from driftloop.errors import SpecError
from driftloop.replicators import registry
from driftloop.replicators.base import BatchAborted, Copy, Failure, Refusal
from driftloop.replicators.hosted import bfl
from driftloop.replicators.hosted.replicator import PROMPT, HostedAuthError, MissingAPIKeyError
from driftloop.replicators.spec import parse_config

KEY = "bfl-test-SECRET-0123456789"
FAST = "backoff=0.02,poll=0.01,poll_max=0.05"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch):
    with FakeBFL(key=KEY) as api:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        monkeypatch.setenv("BFL_API_KEY", KEY)
        monkeypatch.setenv("BFL_BASE_URL", api.url)
        yield api


def build(spec: str = f"bfl:flux-2-pro,{FAST}") -> bfl.BFLReplicator:
    backend = bfl.backends()[0]
    return backend.build(parse_config(spec, backend.config_type, backend.positional))


def frame(h: int = 48, w: int = 64, seed: int = 0) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    red = 90 + 2 * xx + 30 * np.sin(2 * np.pi * yy / 24 + seed)
    green = 40 + 3 * yy + 10 * seed
    blue = 100 + xx + yy
    return np.clip(np.stack([red, green, blue], axis=-1), 0, 255).round().astype(np.uint8)


def usd(fake: FakeBFL) -> float:
    return fake.billed * 0.01


def test_copy_request_shape_price_and_no_key_to_storage(fake: FakeBFL) -> None:
    rep = build()
    f = frame(64, 96)
    (out,) = rep.replicate([f], [5])
    assert isinstance(out, Copy), out
    assert out.frame.shape == f.shape
    diff = out.frame.astype(int) - f.astype(int)
    unsaturated = f[..., 0] < 255
    assert (diff[..., 0][unsaturated] == 1).all() and np.abs(diff[..., 1:]).max() == 0  # exact: no resampling
    (req,) = fake.submitted
    assert req.model == "flux-2-pro" and req.headers["x-key"] == KEY and not req.problems
    assert req.body["prompt"] == PROMPT and req.body["seed"] == 5
    # the frame goes at its own size: 96×64 is a multiple of 16 and within 4 MP, no padding or resize
    assert (req.body["width"], req.body["height"]) == (96, 64)
    assert req.image is not None and np.array_equal(req.image, f)
    assert req.body["prompt_upsampling"] is False and req.body["output_format"] == "png"
    info = out.info
    assert info["task_id"] == "task-1" and info["request_id"] == "task-1" and info["polls"] == 2
    assert info["box"] == [0, 0, 96, 64] and info["canvas"] == [96, 64]
    assert info["usd"] == pytest.approx(usd(fake))  # what the fake billed
    assert "credits" in info["usd_source"]
    json.dumps(info)


def test_price_from_megapixels_when_the_answer_reports_no_cost(fake: FakeBFL) -> None:
    fake.script(Task(report_cost=False))
    (out,) = build().replicate([frame(512, 512)], [0])
    assert isinstance(out, Copy)
    assert out.info["usd"] == pytest.approx(usd(fake))  # the catalogue's rule gives the fake's bill
    assert "MP" in out.info["usd_source"]
    assert fake.submitted[0].body["width"] == 512


def test_kontext_sends_an_aspect_ratio_and_reads_the_answer_back(fake: FakeBFL) -> None:
    (out,) = build(f"bfl:flux-kontext-pro,{FAST}").replicate([frame(48, 64)], [0])
    assert isinstance(out, Copy), out
    assert fake.submitted[0].model == "flux-kontext-pro"
    assert fake.submitted[0].body["aspect_ratio"] == "4:3" and "width" not in fake.submitted[0].body
    assert out.frame.shape == (48, 64, 3) and out.info["returned_size"] != [64, 48]
    assert out.info["usd"] == pytest.approx(0.04) == pytest.approx(usd(fake))


def test_429_with_and_without_retry_after_5xx_and_timeout_resubmit(fake: FakeBFL) -> None:
    fake.script(
        rate_limited("0.3"),
        rate_limited(None),  # no header: the body's retry_after (0.2 s)
        bfl_error(503, "overloaded"),
        Reply(200, {"id": "late"}, delay=2.0),  # past the timeout
    )
    rep = build(f"bfl:flux-2-klein-4b,{FAST},timeout=0.5")
    started = time.monotonic()
    (out,) = rep.replicate([frame()], [0])
    assert isinstance(out, Copy), out
    assert out.info["attempts"] == 5 and len(fake.submitted) == 5
    assert fake.submitted[1].started - fake.submitted[0].started >= 0.3
    assert fake.submitted[2].started - fake.submitted[1].started >= 0.2
    errors = out.info["errors"]
    assert "429" in errors[0] and "429" in errors[1] and "503" in errors[2] and "timed out" in errors[3]
    assert time.monotonic() - started < 4
    assert len(fake.tasks) == 1 and out.info["usd"] == pytest.approx(usd(fake))  # billed once


@pytest.mark.parametrize("status", ["Content Moderated", "Request Moderated"])
def test_moderation_is_a_refusal(fake: FakeBFL, status: str) -> None:
    fake.script(Task(final=status))
    (out,) = build().replicate([frame()], [0])
    assert isinstance(out, Refusal), out
    assert status in out.reason and out.info["code"] == status
    assert len(fake.submitted) == 1


def test_error_lost_task_and_deadline_are_failures_never_resubmitted(fake: FakeBFL) -> None:
    fake.script(Task(final="Error"), Task(final="Task not found", pending=0), Task(final="never"))
    rep = build(f"bfl:flux-2-pro,{FAST},deadline=0.5,concurrency=1")
    error, lost, slow = rep.replicate([frame(seed=i) for i in range(3)], [0, 1, 2])
    assert isinstance(error, Failure) and "internal generation error" in error.message
    assert isinstance(lost, Failure) and "Task not found" in lost.message
    assert isinstance(slow, Failure) and "deadline=0.5" in slow.message and "Pending" in slow.message
    assert len(fake.submitted) == 3  # a billed submit is never sent again by itself


def test_expired_result_url_is_fetched_again_once(fake: FakeBFL) -> None:
    fake.script(Task(expire_first=True))
    (out,) = build().replicate([frame()], [0])
    assert isinstance(out, Copy), out
    (task,) = fake.tasks.values()
    assert task.downloads == 2 and task.sig == 2 and out.info["result_url_expired"] is True


def test_result_url_that_stays_expired_is_a_failure(fake: FakeBFL, monkeypatch: pytest.MonkeyPatch) -> None:
    fake.script(Task(expire_first=True))
    monkeypatch.setattr(fake, "result", lambda path, query: Reply(403, b"<Error>expired</Error>"))
    (out,) = build().replicate([frame()], [0])
    assert isinstance(out, Failure) and "403" in out.message and "expired" in out.message


@pytest.mark.parametrize(
    "task, words",
    [
        (Task(body={"status": "Ready", "result": {}}), "without result.sample"),
        (Task(image_bytes=b"not a png"), "not a readable image"),
    ],
)
def test_malformed_answers_are_failures(fake: FakeBFL, task: Task, words: str) -> None:
    fake.script(task)
    (out,) = build().replicate([frame()], [0])
    assert isinstance(out, Failure) and "malformed" in out.message and words in out.message


def test_submit_without_a_task_id_is_malformed(fake: FakeBFL) -> None:
    fake.script(Reply(200, {"status": "ok"}))
    (out,) = build().replicate([frame()], [0])
    assert isinstance(out, Failure) and "no task id" in out.message and len(fake.submitted) == 1


def test_422_is_a_failure_of_that_frame(fake: FakeBFL) -> None:
    fake.script(Reply(422, {"detail": [{"msg": "width must be a multiple of 16"}]}))
    (out,) = build().replicate([frame()], [0])
    assert isinstance(out, Failure) and "422" in out.message and len(fake.submitted) == 1


def test_out_of_credits_mid_batch_keeps_the_copies_made(fake: FakeBFL) -> None:
    fake.script(Task(), bfl_error(402, "Insufficient credits"))
    rep = build(f"bfl:flux-2-pro,{FAST},concurrency=1")
    with pytest.raises(BatchAborted) as info:
        rep.replicate([frame(seed=i) for i in range(3)], [0, 1, 2])
    assert isinstance(info.value.cause, HostedAuthError) and "402" in str(info.value.cause)
    made = info.value.outcomes
    assert isinstance(made[0], Copy) and made[1:] == [None, None] and len(fake.submitted) == 2


def test_retired_or_unknown_model_and_bad_key_stop_the_batch(fake: FakeBFL) -> None:
    with pytest.raises(HostedAuthError, match="not found"):
        build(f"bfl:flux-9-imaginary,{FAST}").replicate([frame()], [0])
    fake.key = "another"
    with pytest.raises(HostedAuthError, match="BFL_API_KEY") as info:
        build().replicate([frame()], [0])
    assert KEY not in str(info.value)


def test_the_module_imports_httpx_lazily() -> None:
    code = (
        "import sys, driftloop.replicators.hosted.bfl as b; b.backends(); "
        "assert 'httpx' not in sys.modules, 'httpx imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_key_and_spec_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BFL_API_KEY", raising=False)
    with pytest.raises(MissingAPIKeyError, match="BFL_API_KEY"):
        build()
    backend = bfl.backends()[0]
    with pytest.raises(SpecError, match="safety_tolerance"):
        parse_config("bfl:flux-2-pro,safety_tolerance=9", backend.config_type, backend.positional)


def _image(path: Path) -> Path:
    array = np.zeros((64, 64, 3), np.uint8)
    array[...] = (200, 120, 40)
    array[16:48, 16:48] = (30, 90, 210)
    Image.fromarray(array).save(path)
    return path


def test_run_end_to_end_budget_and_resume(fake: FakeBFL, tmp_path: Path) -> None:
    """Through the engine: a quota error after one copy, then a resume buys only what is missing; the run's
    recorded spend equals the fake's bill."""
    assert "bfl" in registry.backends()
    ws = tmp_path / "ws"
    fake.script(Task(), bfl_error(402, "Insufficient credits"))
    kwargs: dict[str, Any] = {"n": 3, "size": 64, "workspace": ws, "render": False, "metrics": False}
    spec = f"bfl:flux-2-klein-9b,{FAST},concurrency=1"
    with pytest.raises(HostedAuthError):
        driftloop.run(_image(tmp_path / "in.png"), model=spec, **kwargs)
    (summary,) = driftloop.runs(ws)
    resumed = driftloop.resume(summary.id, workspace=ws, render=False)
    assert resumed.status == "done" and len(fake.tasks) == 3
    _, total = resumed.cost_totals()
    assert total.usd == pytest.approx(usd(fake))
    for path in ws.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
