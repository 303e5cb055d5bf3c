"""Conversation replicators (one thread per chain) through the official clients against the local fake.

The fake keeps each Responses API conversation under its response id and records what every turn carried,
so these tests fail if context is dropped (a turn without the previous response id, a window short of an
image) or duplicated (the picture sent again inside a thread, an extra image in a window).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import test_hosted
from fake_image_api import (
    FakeImageAPI,
    Received,
    gemini_error,
    malformed,
    openai_error,
    rate_limited,
    refusal,
    server_error,
)
from PIL import Image

import driftloop
from driftloop import api
from driftloop.chain import BudgetReached
from driftloop.cost import turn_costs
from driftloop.errors import SpecError
from driftloop.replicators import registry
from driftloop.replicators.hosted.outcomes import HostedAuthError, ThreadLostError
from driftloop.replicators.hosted.replicator import offline

env = test_hosted.env  # the fixtures: both official clients pointed at the fake, keys only in the environment
fake = test_hosted.fake
SPEC = "openai-thread:gpt-image-2,quality=low,backoff=0.01,timeout=5"
RUN: dict[str, Any] = {"size": 48, "render": False, "metrics": False}


def _image(path: Path, colour: tuple[int, int, int]) -> Path:
    array = np.zeros((48, 48, 3), np.uint8)
    array[...] = colour
    array[12:36, 12:36] = (255 - colour[0], 255 - colour[1], 255 - colour[2])
    Image.fromarray(array).save(path)
    return path


def _turns(fake: FakeImageAPI) -> list[Received]:
    return [r for r in fake.received if r.path.endswith("/responses")]


def _infos(run: Any, chain: int = 0) -> list[dict[str, Any]]:
    return [r["info"] for r in run.records() if r["step"] > 0 and r["chain"] == chain]


# ------------------------------------------------------------------------------------------------ the thread


def test_a_thread_chains_every_turn_on_the_previous_response(env: FakeImageAPI, tmp_path: Path) -> None:
    image = _image(tmp_path / "rock.png", (200, 120, 40))
    run = driftloop.run(image, model=SPEC, n=4, workspace=tmp_path / "ws", **RUN)
    assert [c.status for c in run.chains()] == ["done"]
    turns = _turns(env)
    assert len(turns) == 4
    bodies = [t.body for t in turns]
    # the first turn carries the picture and the prompt; each later one the prompt alone, on the last answer
    assert turns[0].fields["images_in_input"] == "1" and "previous_response_id" not in bodies[0]
    assert [t.fields["images_in_input"] for t in turns[1:]] == ["0", "0", "0"]
    infos = _infos(run)
    for k in range(1, 4):
        assert bodies[k]["previous_response_id"] == infos[k - 1]["response_id"]
    assert [t.fields["context_images"] for t in turns] == ["1", "2", "3", "4"]
    tool = bodies[0]["tools"][0]
    assert tool["type"] == "image_generation" and tool["model"] == "gpt-image-2" and tool["action"] == "edit"
    assert bodies[0]["model"] == "gpt-5.4-mini" and bodies[0]["tool_choice"] == {"type": "image_generation"}
    # per frame: response id, the thread, the turn's usage and the revised prompt
    assert [i["thread"]["turn"] for i in infos] == [1, 2, 3, 4]
    assert {i["thread"]["id"] for i in infos} == {infos[0]["response_id"]}
    assert all(i["revised_prompt"].startswith("An exact replica") for i in infos)
    assert all(i["usage"]["input_tokens"] > 0 and i["tool_usage"]["output_tokens"] > 0 for i in infos)
    inputs = [i["usage"]["input_tokens"] for i in infos]
    assert inputs == sorted(inputs) and inputs[-1] > inputs[0]  # the thread grows
    # every turn is priced from its usage, as the fake billed it
    assert [i["usd"] for i in infos] == pytest.approx(env.billed)
    _, total = run.cost_totals()
    assert total.usd == pytest.approx(sum(env.billed))
    # the report's cost curve: every turn's price, as the thread grows
    curve = turn_costs(run)
    assert [t for t, *_ in curve] == [1, 2, 4] and [c for _, c, *_ in curve] == [1, 1, 1]
    assert [u for _, _, u, _, _ in curve] == pytest.approx([env.billed[0], env.billed[1], env.billed[3]])
    assert curve[-1][4] == pytest.approx(sum(env.billed)) and curve[-1][3] > curve[0][3]
    assert "Cost per turn" in (run.path / "report.html").read_text()


@pytest.mark.parametrize("window", [0, 2])
def test_a_window_resends_exactly_k_earlier_images(env: FakeImageAPI, tmp_path: Path, window: int) -> None:
    image = _image(tmp_path / "rock.png", (200, 120, 40))
    run = driftloop.run(image, model=f"{SPEC},window={window}", n=5, workspace=tmp_path / "ws", **RUN)
    assert run.chains()[0].status == "done"
    turns = _turns(env)
    assert all("previous_response_id" not in t.body for t in turns)
    assert [int(t.fields["images_in_input"]) for t in turns] == [min(k, window) + 1 for k in range(5)]
    # the image to copy is the chain's last frame, not an older one
    infos = _infos(run)
    assert {i["thread"]["mode"] for i in infos} == {"fresh" if window == 0 else f"window={window}"}
    if window:
        items = turns[-1].body["input"]
        last_call_ids = [item["id"] for item in items if item.get("type") == "image_generation_call"]
        assert last_call_ids == [infos[2]["image_call_id"], infos[3]["image_call_id"]]


def test_context_mode_is_part_of_the_spec() -> None:
    with offline():
        thread = registry.build("openai-thread:gpt-image-2")
        window = registry.build("openai-thread:gpt-image-2,window=4")
    assert thread.spec == "openai-thread:gpt-image-2" and window.spec == "openai-thread:gpt-image-2,window=4"
    assert thread.requirements.memory == 1 and window.requirements.memory == 5
    with pytest.raises(SpecError, match="window must be 0"):
        registry.build("openai-thread:gpt-image-2,window=-1")


# ------------------------------------------------------------------------------------------------ the cost


def test_dry_run_models_the_growth_within_5_percent_of_the_bill(env: FakeImageAPI, tmp_path: Path) -> None:
    image = _image(tmp_path / "rock.png", (200, 120, 40))
    n = 12
    estimate = api.estimate(image, model=SPEC, n=n, size=48, workspace=tmp_path / "ws")
    assert [t for t, _ in estimate.turns] == [1, n]
    first, last = (u for _, u in estimate.turns)
    assert last > first  # the thread's input grows turn by turn
    driftloop.run(image, model=SPEC, n=n, workspace=tmp_path / "ws", **RUN)
    bill = sum(env.billed)
    assert estimate.usd == pytest.approx(bill, rel=0.05)
    assert first == pytest.approx(env.billed[0], rel=0.05) and last == pytest.approx(env.billed[-1], rel=0.05)


def test_max_cost_stops_before_the_turn_that_would_cross_it(env: FakeImageAPI, tmp_path: Path) -> None:
    """The answers bill 30% more than the model expects: the budget stops the run before the turn whose
    price (the last turn's, plus its growth) would pass it, not after."""
    image = _image(tmp_path / "rock.png", (200, 120, 40))
    env.inflate = 1.3
    driftloop.run(image, model=SPEC, n=3, workspace=tmp_path / "free", **RUN)
    b1, b2, b3 = env.billed
    budget = b1 + b2 + 0.5 * b3  # above the up-front estimate (every turn 30% cheaper), below the bill
    ws = tmp_path / "ws"
    with pytest.raises(BudgetReached):
        driftloop.run(image, model=SPEC, n=3, workspace=ws, max_cost=budget, **RUN)
    (summary,) = driftloop.runs(ws)
    assert summary.status == "budget"
    rows = [r for r in driftloop.open_run(summary.id, ws).frame_rows() if r.step > 0]
    paid = sum(r.cost["usd"] for r in rows)
    assert len(rows) == 2 and paid == pytest.approx(b1 + b2) and paid <= budget < paid + b3
    assert len(env.billed) == 3 + 2  # the third turn was never asked for


def test_next_turn_price_follows_the_bill(env: FakeImageAPI) -> None:
    with offline():
        replicator = registry.build(SPEC)
    replicator.call_estimate(48, 48)
    from driftloop.replicators.hosted.thread import Conversation

    conv = Conversation([], turn=2, usd=[1.0, 1.5])
    replicator.conversations[0] = conv
    assert replicator.next_call_usd([0], 3) == pytest.approx(2.0)  # 1.5 + its growth of 0.5
    conv.usd = [0.001, 0.001]
    assert replicator.next_call_usd([0], 3) == pytest.approx(replicator.turn_usd(3))  # the model's, when more


# ------------------------------------------------------------------------------------------------ resume


def test_resume_continues_the_thread_and_restart_begins_a_new_one(env: FakeImageAPI, tmp_path: Path) -> None:
    image = _image(tmp_path / "rock.png", (200, 120, 40))
    ws = tmp_path / "ws"
    env.script(None, None, openai_error(429, "You exceeded your current quota", "insufficient_quota"))
    with pytest.raises(HostedAuthError, match="insufficient_quota"):
        driftloop.run(image, model=SPEC, n=5, workspace=ws, **RUN)
    (summary,) = driftloop.runs(ws)
    handle = driftloop.open_run(summary.id, ws)
    assert [r.step for r in handle.frame_rows()] == [0, 1, 2]  # every frame bought is kept
    last_id = _infos(handle)[-1]["response_id"]
    resumed = driftloop.resume(summary.id, workspace=ws, render=False)
    assert resumed.status == "done"
    turns = _turns(env)
    assert turns[3].body["previous_response_id"] == last_id  # the thread goes on where it stopped
    assert [i["thread"]["turn"] for i in _infos(resumed)] == [1, 2, 3, 4, 5]
    assert len(turns) == 3 + 3  # turns 3 (asked again after the quota error), 4 and 5: none paid twice


def test_a_lost_thread_stops_with_one_message_and_restart_thread_goes_on(
    env: FakeImageAPI, tmp_path: Path
) -> None:
    image = _image(tmp_path / "rock.png", (200, 120, 40))
    ws = tmp_path / "ws"
    gone = openai_error(404, "Previous response with id 'resp_x' not found.", "previous_response_not_found")
    env.script(None, None, gone)
    with pytest.raises(ThreadLostError, match="--restart-thread") as lost:
        driftloop.run(image, model=SPEC, n=4, workspace=ws, **RUN)
    assert lost.value.exit_code == 6 and len(str(lost.value).splitlines()) == 1
    (summary,) = driftloop.runs(ws)
    assert [r.step for r in driftloop.open_run(summary.id, ws).frame_rows()] == [0, 1, 2]
    env.threads.clear()  # the provider no longer has it: a plain resume says so again
    with pytest.raises(ThreadLostError):
        driftloop.resume(summary.id, workspace=ws, render=False)
    again = driftloop.resume(summary.id, workspace=ws, render=False, restart_thread=True)
    assert again.status == "done"
    infos = _infos(again)
    assert [i["thread"]["turn"] for i in infos] == [1, 2, 1, 2]
    assert infos[2]["thread"].get("restarted") is True and "restarted" not in infos[3]["thread"]
    assert infos[2]["thread"]["id"] != infos[0]["thread"]["id"]
    events = [e for e in again.events() if e["kind"] == "thread_restart"]
    assert len(events) == 1 and events[0]["step"] == 3 and events[0]["chain"] == 0
    assert "chain 0, step 3: a new thread begins from frame 2" in (again.path / "report.html").read_text()
    restarted = _turns(env)[-2]
    assert restarted.fields["images_in_input"] == "1" and "previous_response_id" not in restarted.body


# ------------------------------------------------------------------------------------------------ faults


def test_faults_mid_thread_pay_nothing_twice(env: FakeImageAPI, tmp_path: Path) -> None:
    """429 with Retry-After, a 5xx and a malformed answer are asked again on the same thread; a refusal is
    asked again; no turn is chained on an answer that gave no copy."""
    image = _image(tmp_path / "rock.png", (200, 120, 40))
    env.script(
        None,
        rate_limited("openai", retry_after="0"),
        server_error("openai", 502),
        None,
        refusal("openai"),
        None,
    )
    run = driftloop.run(image, model=SPEC, n=3, workspace=tmp_path / "ws", refusal_retries=1, **RUN)
    assert run.chains()[0].status == "done"
    infos = _infos(run)
    turns = _turns(env)
    assert len(turns) == 6 and len(env.billed) == 3  # three copies bought, each once
    # the retries of turn 2 and the repeat after the refusal all continue from the last copy made
    assert [t.body.get("previous_response_id") for t in turns[1:4]] == [infos[0]["response_id"]] * 3
    assert [t.body.get("previous_response_id") for t in turns[4:]] == [infos[1]["response_id"]] * 2
    assert [e["kind"] for e in run.events() if e["kind"] == "refusal"] == ["refusal"]
    assert sum(i["usd"] for i in infos) == pytest.approx(sum(env.billed))


def test_malformed_answer_is_a_lost_frame_and_the_chain_stops(env: FakeImageAPI, tmp_path: Path) -> None:
    image = _image(tmp_path / "rock.png", (200, 120, 40))
    env.script(None, malformed("openai", "not_json"))
    spec = SPEC.replace("backoff=0.01", "retries=0")
    run = driftloop.run(image, model=spec, n=3, workspace=tmp_path / "ws", **RUN)
    assert run.chains()[0].status == "error"
    assert [r["step"] for r in run.records()] == [0, 1]


# ------------------------------------------------------------------------------------------------ Gemini

GEMINI = "gemini-thread:gemini-3-pro-image,image_size=1K,backoff=0.01,timeout=5"


def _gemini_turns(fake: FakeImageAPI) -> list[Received]:
    return [r for r in fake.received if ":generateContent" in r.path]


def _gemini_usd(images: int, texts: int) -> float:
    """The fake's bill for a turn at gemini-3-pro-image's rates: 1120 tokens per image and 20 per text part
    in, 1120 out (1K)."""
    return (1120 * images * 2.0 + 20 * texts * 2.0 + 1120 * 120.0) / 1e6


def test_gemini_thread_resends_the_whole_history_with_signatures(env: FakeImageAPI, tmp_path: Path) -> None:
    image = _image(tmp_path / "rock.png", (200, 120, 40))
    run = driftloop.run(image, model=GEMINI, n=4, workspace=tmp_path / "ws", **RUN)
    assert run.chains()[0].status == "done"  # the fake refuses a model turn without its thought signature
    turns = _gemini_turns(env)
    assert [t.fields["context_images"] for t in turns] == ["1", "2", "3", "4"]
    roles = [[c["role"] for c in t.body["contents"]] for t in turns]
    assert roles[2] == ["user", "model", "user", "model", "user"]
    infos = _infos(run)
    assert [i["thread"]["turn"] for i in infos] == [1, 2, 3, 4]
    assert all(i["model_turn"]["image_signature"] for i in infos)
    # usage grows with the history and each turn is priced from it
    texts = [int(t.fields["text_parts"]) for t in turns]
    expected = [_gemini_usd(k + 1, texts[k]) for k in range(4)]
    assert [i["usd"] for i in infos] == pytest.approx(expected)
    assert expected[-1] > expected[0]


def test_gemini_window_and_resume_rebuild_the_history(env: FakeImageAPI, tmp_path: Path) -> None:
    image = _image(tmp_path / "rock.png", (200, 120, 40))
    run = driftloop.run(image, model=f"{GEMINI},window=1", n=3, workspace=tmp_path / "w", **RUN)
    assert [t.fields["context_images"] for t in _gemini_turns(env)] == ["1", "2", "2"]
    assert run.chains()[0].status == "done"
    env.received.clear()
    ws = tmp_path / "ws"
    daily = gemini_error(
        429, "Quota exceeded for quota metric 'GenerateRequestsPerDay'", "RESOURCE_EXHAUSTED"
    )
    env.script(None, None, daily)
    with pytest.raises(HostedAuthError, match="quota"):
        driftloop.run(image, model=GEMINI, n=4, workspace=ws, **RUN)
    (summary,) = driftloop.runs(ws)
    resumed = driftloop.resume(summary.id, workspace=ws, render=False)
    assert resumed.status == "done"
    turns = _gemini_turns(env)
    # after the resume the history is rebuilt from the stored frames, signatures included (else: a 400)
    assert [t.fields["context_images"] for t in turns] == ["1", "2", "3", "3", "4"]
    assert [i["thread"]["turn"] for i in _infos(resumed)] == [1, 2, 3, 4]


# ------------------------------------------------------------------------------------------------ the CLI


def test_cli_dry_run_models_and_the_lost_thread_message(
    env: FakeImageAPI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from typer.testing import CliRunner

    from driftloop.cli import app

    image = _image(tmp_path / "rock.png", (200, 120, 40))
    ws = tmp_path / "ws"
    runner = CliRunner()
    dry = runner.invoke(app, ["run", str(image), "--model", SPEC, "-n", "101", "--dry-run", "-w", str(ws)])
    assert dry.exit_code == 0, dry.output
    assert "101 calls" in dry.output and "turn 1 $" in dry.output and "turn 50 $" in dry.output
    assert "turn 101 $" in dry.output and not ws.exists()
    models = runner.invoke(app, ["models"])
    assert models.exit_code == 0 and "openai-thread" in models.output and "gemini-thread" in models.output
    thread_rows = [line for line in models.output.splitlines() if "openai-thread:gpt-image-2 " in line]
    assert thread_rows and "$" in thread_rows[0]  # listed with its price per image

    gone = openai_error(404, "Previous response with id 'resp_x' not found.", "previous_response_not_found")
    env.script(None, gone)
    common = ["--no-render", "-w", str(ws), "--quiet"]
    assert _exit(["run", str(image), "--model", SPEC, "-n", "3", "--size", "48", *common]) == 6
    (summary,) = driftloop.runs(ws)
    env.threads.clear()
    capsys.readouterr()
    assert _exit(["resume", summary.id, *common]) == 6
    said = " ".join(capsys.readouterr().err.split())
    assert said.startswith("error: OpenAI no longer has this chain's thread") and "--restart-thread" in said
    assert _exit(["resume", summary.id, "--restart-thread", *common]) == 0
    assert [r["step"] for r in driftloop.open_run(summary.id, ws).records()] == [0, 1, 2, 3]


def _exit(argv: list[str]) -> int:
    """The exit code of ``driftloop ARGV`` (the entry point that turns errors into one line and a code)."""
    from driftloop.cli.shell import main

    try:
        main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


# ------------------------------------------------------------------------------------------------ the card


def test_a_context_sweep_puts_thread_minus_fresh_on_the_card(env: FakeImageAPI, tmp_path: Path) -> None:
    from driftloop.sweep import SweepSpecError, load_sweep, run_sweep

    folder = tmp_path / "study"
    folder.mkdir()
    _image(folder / "a.png", (200, 120, 40))
    _image(folder / "b.png", (40, 120, 200))
    spec = folder / "context.toml"
    spec.write_text(
        'name = "context"\nimages = ["*.png"]\nseeds = [1]\nsteps = 3\nsize = 32\ncontrol = "jpeg"\n'
        '[[models]]\nspec = "openai-thread:gpt-image-2,quality=low,backoff=0.01"\n'
        'grid = { context = ["thread", "window=1", "fresh"] }\n'
    )
    sweep = load_sweep(spec)
    base = "openai-thread:gpt-image-2,quality=low,backoff=0.01"
    assert sweep.models == [base, f"{base.replace(',quality', ',window=1,quality')}",
                            f"{base.replace(',quality', ',window=0,quality')}", "jpeg"]  # fmt: skip
    ws = tmp_path / "ws"
    run_sweep(sweep, ws, render=False)
    assert len(_turns(env)) == 3 * 2 * 3  # three arms, two images, three turns
    html, js = api.bias("context", ws)
    card = json.loads(js.read_text())
    arms = {a["stabilizer"]: a for a in card["context_arms"]}
    assert set(arms) == {"thread", "window=1"}
    thread = arms["thread"]
    assert thread["axis"] == "context" and thread["model"] == sweep.models[2] and thread["n_images"] == 2
    measures = {m["measure"]: m for m in thread["measures"]}
    assert {"lab_delta_e", "ssim_to_origin"} <= set(measures)
    assert measures["ssim_to_origin"]["difference"]["method"] == "t over images"
    assert "Context: conversation − fresh" in html.read_text()
    with pytest.raises(SweepSpecError, match="context: 'sometimes' is not thread, fresh or window=K"):
        spec.write_text(spec.read_text().replace('"window=1"', '"sometimes"'))
        load_sweep(spec)


def test_the_example_context_sweep_parses() -> None:
    from driftloop.sweep import load_sweep

    sweep = load_sweep(Path(__file__).resolve().parents[2] / "examples" / "context.toml")
    assert sweep.models == [
        "openai-thread:gpt-image-2,quality=medium",
        "openai-thread:gpt-image-2,window=4,quality=medium",
        "openai-thread:gpt-image-2,window=0,quality=medium",
        "jpeg:quality=90",
    ]
