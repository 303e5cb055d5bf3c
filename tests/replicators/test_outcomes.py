"""Refusals, failures and budgets: chains that end early while the others go on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import driftloop
from driftloop.chain import BudgetReached
from driftloop.errors import DriftloopError
from driftloop.replicators.base import Copy, Failure, Refusal, Requirements


class Scripted:
    """A pretend hosted model: per chain seed, a script of outcomes by call number; each copy costs $0.04."""

    requirements = Requirements(device="api", deterministic=False, cost_per_image_usd=0.04)
    spec = "scripted"

    def __init__(self, script: dict[int, dict[int, str]] | None = None) -> None:
        self.script = script or {}
        self.calls: dict[int, int] = {}

    def replicate(self, frames, seeds):
        out = []
        for frame, seed in zip(frames, seeds, strict=True):
            tag = seed % 1000  # which chain asked: see _seed_tag
            n = self.calls[tag] = self.calls.get(tag, 0) + 1
            what = self.script.get(tag, {}).get(n, "ok")
            if what == "refuse":
                out.append(Refusal("content policy (test)"))
            elif what == "fail":
                out.append(Failure("malformed response: no image"))
            else:
                out.append(Copy((frame // 2 + 1).astype(np.uint8), {"usd": 0.04}))
        return out

    def describe(self):
        return {}


@pytest.fixture(autouse=True)
def _seed_tag(monkeypatch):
    """Make each step seed end in its chain seed, so the script can tell chains apart."""
    monkeypatch.setattr("driftloop.chain.step_seed", lambda chain_seed, step: step * 1000 + chain_seed)


def _run(image: Path, ws: Path, model: Scripted, **kw):
    return driftloop.run(image, model=model, n=4, seeds=[1, 2, 3], size=16, workspace=ws, render=False,
                         metrics=False, **kw)  # fmt: skip


def test_refusal_retried_then_success(sample_images, tmp_path: Path) -> None:
    model = Scripted({1: {2: "refuse"}})  # chain seed 1: its 2nd request is refused, the retry succeeds
    run = _run(sample_images["astronaut.png"], tmp_path / "ws", model)
    assert [c.status for c in run.chains()] == ["done"] * 3
    events = [e for e in run.events() if e["kind"] == "refusal"]
    assert [(e["chain"], e["step"]) for e in events] == [(0, 2)]
    assert "attempt 1" in events[0]["message"]


def test_refusals_exhausted_end_only_that_chain(sample_images, tmp_path: Path) -> None:
    model = Scripted({2: {2: "refuse", 3: "refuse", 4: "refuse"}})
    run = _run(sample_images["astronaut.png"], tmp_path / "ws", model, refusal_retries=2)
    chains = run.chains()
    assert [c.status for c in chains] == ["done", "refused", "done"]
    assert chains[1].last_step == 1 and "refused at step 2" in chains[1].stop_reason
    assert [c.last_step for c in chains] == [4, 1, 4]
    (summary,) = driftloop.runs(tmp_path / "ws")
    assert (summary.steps_done, summary.steps_most) == (1, 4)  # `driftloop runs` shows "1–4/4"
    kinds = [e["message"].split(":")[0] for e in run.events() if e["kind"] == "refusal" and e["chain"] == 1]
    assert kinds == ["attempt 1", "attempt 2", "final"]
    assert run.status == "done"


def test_failure_ends_chain_as_error(sample_images, tmp_path: Path) -> None:
    run = _run(sample_images["astronaut.png"], tmp_path / "ws", Scripted({3: {3: "fail"}}))
    chains = run.chains()
    assert [c.status for c in chains] == ["done", "done", "error"]
    assert chains[2].last_step == 2
    assert any(e["kind"] == "error" and "malformed" in e["message"] for e in run.events())


def test_money_is_recorded_per_frame(sample_images, tmp_path: Path) -> None:
    run = _run(sample_images["astronaut.png"], tmp_path / "ws", Scripted())
    _, total = run.cost_totals()
    assert total.frames == 12 and total.usd == pytest.approx(12 * 0.04)


def test_max_cost_refuses_a_run_estimated_above_it(sample_images, tmp_path: Path) -> None:
    with pytest.raises(DriftloopError, match=r"about \$0\.48 .* more than --max-cost \$0\.40"):
        _run(sample_images["astronaut.png"], tmp_path / "ws", Scripted(), max_cost=0.40)
    assert not (tmp_path / "ws").exists()


def test_max_cost_stops_cleanly_and_resume_never_pays_twice(sample_images, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    # one chain is refused for good, so the estimate ($0.48) passes a $0.48 budget, but a flaky model
    # makes the others cost more than estimated: the budget check stops before the call that would pass it.
    model = Scripted()
    model.requirements = Requirements(device="api", deterministic=False, cost_per_image_usd=0.04)
    expensive = Scripted()
    expensive.replicate = lambda frames, seeds: [Copy(f // 2, {"usd": 0.10}) for f in frames]  # type: ignore[method-assign]
    with pytest.raises(BudgetReached, match="would pass --max-cost"):
        _run(sample_images["astronaut.png"], ws, expensive, max_cost=0.48)
    (summary,) = driftloop.runs(ws)
    assert summary.status == "budget"
    handle = driftloop.open_run(summary.id, ws)
    paid = [r.cost["usd"] for r in handle.frame_rows() if r.step > 0]
    assert sum(paid) <= 0.48 + 1e-9 and len(paid) == 3  # one step of three chains at $0.10
    resumed = driftloop.resume(summary.id, workspace=ws, model=model, max_cost=10.0, render=False)
    rows = [r for r in resumed.frame_rows() if r.step > 0]
    assert len(rows) == 12 and [r.cost["usd"] for r in rows if r.step == 1] == paid  # step 1 not bought again
    assert resumed.status == "done"


def test_aborted_batch_stores_what_was_made_and_resume_asks_only_for_the_rest(
    sample_images, tmp_path: Path
) -> None:
    """Ctrl-C while a hosted batch is in flight: the copies already made (paid for) are stored before the
    run ends ``interrupted``; the resume asks for each missing (chain, step) once."""
    from driftloop.errors import RunInterrupted
    from driftloop.replicators.base import BatchAborted

    asked: list[tuple[int, int]] = []

    class Interrupted(Scripted):
        def replicate(self, frames, seeds):
            keys = [(s % 1000, s // 1000) for s in seeds]  # (chain seed, step), see _seed_tag
            asked.extend(keys)
            out = [Copy((f // 2 + 1).astype(np.uint8), {"usd": 0.04}) for f in frames]
            if len(asked) == 6:  # step 2: chain seed 1 came back, then Ctrl-C
                raise BatchAborted(KeyboardInterrupt(), [out[0], None, None])
            return out

    ws = tmp_path / "ws"
    with pytest.raises(RunInterrupted):
        _run(sample_images["astronaut.png"], ws, Interrupted())
    (summary,) = driftloop.runs(ws)
    assert summary.status == "interrupted"
    handle = driftloop.open_run(summary.id, ws)
    assert sorted((r.chain, r.step) for r in handle.frame_rows() if r.step > 0) == [
        (0, 1),
        (0, 2),
        (1, 1),
        (2, 1),
    ]
    before = len(asked)
    again = Scripted()
    resumed = driftloop.resume(summary.id, workspace=ws, model=again, render=False)
    assert resumed.status == "done"
    assert again.calls == {1: 2, 2: 3, 3: 3}  # chain seed 1 had step 2; the others restart at step 2
    rows = [r for r in resumed.frame_rows() if r.step > 0]
    assert len(rows) == 12 and before == 6
    _, total = resumed.cost_totals()
    assert total.usd == pytest.approx(12 * 0.04)  # every copy paid once


def test_interrupt_during_a_refusal_retry_keeps_the_first_calls_copies(sample_images, tmp_path: Path) -> None:
    from driftloop.errors import RunInterrupted

    class InterruptedRetry(Scripted):
        def replicate(self, frames, seeds):
            if len(frames) == 1:  # the retry of chain seed 2's refusal
                raise KeyboardInterrupt
            return super().replicate(frames, seeds)

    ws = tmp_path / "ws"
    with pytest.raises(RunInterrupted):
        _run(sample_images["astronaut.png"], ws, InterruptedRetry({2: {1: "refuse"}}))
    (summary,) = driftloop.runs(ws)
    handle = driftloop.open_run(summary.id, ws)
    assert sorted((r.chain, r.step) for r in handle.frame_rows() if r.step > 0) == [(0, 1), (2, 1)]
    assert [c.status for c in handle.chains()] == ["running"] * 3  # the refused chain is not final
    again = Scripted()
    resumed = driftloop.resume(summary.id, workspace=ws, model=again, render=False)
    assert resumed.status == "done" and again.calls == {1: 3, 2: 4, 3: 3}


def test_a_refusal_that_would_repeat_is_not_asked_again(sample_images, tmp_path: Path) -> None:
    class Checker(Scripted):
        def replicate(self, frames, seeds):
            out = super().replicate(frames, seeds)
            flagged = Refusal("flagged", retryable=False)
            return [flagged if s % 1000 == 3 else o for s, o in zip(seeds, out, strict=True)]

    model = Checker()
    run = _run(sample_images["astronaut.png"], tmp_path / "ws", model, refusal_retries=2)
    assert [c.status for c in run.chains()] == ["done", "done", "refused"]
    assert model.calls[3] == 1  # refused at its first request, not asked twice more
    assert [e["message"] for e in run.events() if e["kind"] == "refusal"] == ["final: flagged"]
