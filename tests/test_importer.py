"""Importing chains made by other tools as ordinary runs: same store path, same metrics, nothing half-made."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import driftloop.store.writer
from driftloop import api
from driftloop.errors import InputError, SpecError
from driftloop.frames import frame_sha256
from driftloop.importer import import_chain
from driftloop.metrics import FrameFeatures, frame_metrics
from driftloop.store import Store
from sequence_fixtures import (
    N_COPIES,
    SIZE,
    generation_loss,
    held,
    palette_frames,
    write_gif,
    write_mp4,
    write_pngs,
)

# How far the metrics of an H.264 import (yuv420p, crf 18, 256 px) may be from the source frames' metrics.
# Measured worst cases on this chain: SSIM to origin 0.008, ΔE 0.11, Lab means 0.46, MAE 0.48, PSNR 0.8 dB.
MP4_TOLERANCE = {
    "ssim_to_origin": 0.02,
    "lab_delta_e": 0.5,
    "lab_l_mean": 1.0,
    "lab_a_mean": 1.0,
    "lab_b_mean": 1.0,
    "mae_to_origin": 1.0,
    "psnr_to_origin": 1.5,
}


@pytest.fixture(scope="module")
def chain() -> list[np.ndarray]:
    return generation_loss()


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory, chain: list[np.ndarray]) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("made")
    return {
        "folder": write_pngs(root / "copies", chain)[0].parent,
        "gif": write_gif(root / "chain.gif", chain),
        "mp4": write_mp4(root / "chain.mp4", held(chain, 5)),
    }


def source_metrics(frames: list[np.ndarray]) -> list[dict[str, float]]:
    """The metrics driftloop computes for a chain, computed straight from the source frames."""
    feats = [FrameFeatures.of(f) for f in frames]
    return [frame_metrics(feats[k], feats[0], feats[k - 1] if k else None) for k in range(len(frames))]


def stored_metrics(workspace: Path, run_id: str) -> list[dict[str, float]]:
    rows = Store(workspace).metrics(run_id)
    return [rows[(0, k)] for k in range(len(rows))]


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None or math.isnan(a) or math.isnan(b):
        return (a is None or math.isnan(a)) and (b is None or math.isnan(b))
    return a == b


def test_folder_import_is_an_ordinary_run_with_exact_metrics(made, chain, workspace: Path) -> None:
    notes: list[str] = []
    run_id = import_chain(made["folder"], workspace, model="pillow-jpeg-webp", log=notes.append)
    run = api.open_run(run_id, workspace)
    assert run.row.model == "imported:pillow-jpeg-webp" and run.status == "done"
    assert run.row.n_steps == N_COPIES - 1 and run.row.model_info["made_by"] == "pillow-jpeg-webp"
    (c,) = run.chains()
    assert (c.status, c.last_step, Path(c.input_path).name) == ("done", N_COPIES - 1, "1.png")
    # frames went through the engine's writer: PNG on disk, row with its sha256 and where it came from
    for row, source in zip(run.frame_rows(), chain, strict=True):
        assert np.array_equal(run.frame(0, row.step), source)
        assert row.sha256 == frame_sha256(source) and row.seed is None
        assert Path(row.info["source"]).name == f"{row.step + 1}.png"
    expected = source_metrics(chain)
    got = stored_metrics(workspace, run_id)
    assert got[0].keys() == expected[0].keys()
    for k in range(N_COPIES):
        assert all(_same(got[k][key], expected[k][key]) for key in expected[k]), k
    # ...and it gets what every run gets: summary, animations, contact sheet, report, listing
    assert run.summary()[0].final["ssim_to_origin"] == pytest.approx(expected[-1]["ssim_to_origin"])
    for name in ("chain000.gif", "chain000.mp4", "contact_sheet.png", "report.html"):
        assert (run.path / name).is_file(), name
    assert [r.model for r in api.runs(workspace)] == ["imported:pillow-jpeg-webp"]
    assert any(run_id in n for n in notes)


def test_gif_import_metrics_match_the_gif_frames_exactly(made, chain, workspace: Path) -> None:
    run_id = import_chain(made["gif"], workspace, label="my gif", render=False)
    assert api.open_run(run_id, workspace).row.model == "imported:my gif"
    expected = source_metrics(palette_frames(chain))
    got = stored_metrics(workspace, run_id)
    for k in range(N_COPIES):
        assert all(_same(got[k][key], expected[k][key]) for key in expected[k]), k
    run = api.open_run(run_id, workspace)
    assert [r.info["duration_ms"] for r in run.frame_rows()] == [500] * N_COPIES


def test_mp4_import_metrics_match_within_tolerance(made, chain, workspace: Path) -> None:
    run_id = import_chain(made["mp4"], workspace, render=False)
    run = api.open_run(run_id, workspace)
    assert run.row.model == "imported:chain" and run.row.n_steps == N_COPIES - 1
    assert run.config["import"]["kind"] == "video" and run.config["import"]["fps"] == 10.0
    expected = source_metrics(chain)
    got = stored_metrics(workspace, run_id)
    for k in range(1, N_COPIES):
        for key, tolerance in MP4_TOLERANCE.items():
            assert abs(got[k][key] - expected[k][key]) <= tolerance, (k, key, got[k][key], expected[k][key])


def test_frames_of_another_size_are_brought_to_frame_0s_size_without_stretch(chain, tmp_path: Path) -> None:
    folder = tmp_path / "sizes"
    write_pngs(folder, chain[:4])
    big = Image.fromarray(chain[1]).resize((2 * SIZE, 2 * SIZE), Image.Resampling.LANCZOS)
    big.save(folder / "2.png")  # a copy come back twice as large
    letterbox = np.full((SIZE + 64, SIZE, 3), 0, np.uint8)  # a copy come back with black bars
    letterbox[32 : 32 + SIZE] = chain[2]
    Image.fromarray(letterbox).save(folder / "3.png")
    workspace = tmp_path / "ws"
    run = api.open_run(import_chain(folder, workspace, render=False), workspace)
    rows = run.frame_rows()
    assert all(run.frame(0, r.step).shape == (SIZE, SIZE, 3) for r in rows)
    assert [("resized" in r.info) for r in rows] == [False, True, True, False]
    assert rows[1].info["resized"]["from"] == [2 * SIZE, 2 * SIZE]
    assert rows[2].info["resized"]["box"] == [0, 32, SIZE, SIZE]  # the bars are cut, nothing stretched
    assert np.array_equal(run.frame(0, 2), chain[2])
    assert np.mean(np.abs(run.frame(0, 1).astype(np.int16) - chain[1])) < 1.0


def test_size_makes_every_frame_square(made, workspace: Path) -> None:
    run = api.open_run(import_chain(made["folder"], workspace, size=128, render=False), workspace)
    assert all(run.frame(0, r.step).shape == (128, 128, 3) for r in run.frame_rows())
    with pytest.raises(SpecError, match="--size"):
        import_chain(made["folder"], workspace, size=4)


def _nothing_written(workspace: Path) -> bool:
    runs_dir = workspace / "runs"
    return not api.runs(workspace) and (not runs_dir.exists() or not any(runs_dir.iterdir()))


def test_bad_member_writes_nothing(chain, tmp_path: Path) -> None:
    paths = write_pngs(tmp_path / "broken", chain)
    paths[6].write_bytes(paths[6].read_bytes()[:200])
    workspace = tmp_path / "ws"
    with pytest.raises(InputError, match=r"7\.png \(image 7 of 12\): file is truncated"):
        import_chain(tmp_path / "broken", workspace)
    assert not (workspace / "driftloop.db").exists()


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_failure_while_writing_deletes_the_run(made, workspace, monkeypatch, failure) -> None:
    import_chain(made["folder"], workspace, label="kept", render=False)  # another run stays untouched
    real = driftloop.store.writer.write_png_atomic
    calls = {"n": 0}

    def failing(path, frame, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise failure
        return real(path, frame, *args, **kwargs)

    monkeypatch.setattr(driftloop.store.writer, "write_png_atomic", failing)
    with pytest.raises(type(failure)):
        import_chain(made["folder"], workspace, label="broken", allow_duplicate=True, render=False)
    assert [r.model for r in api.runs(workspace)] == ["imported:kept"]
    assert [p.name for p in (workspace / "runs").iterdir()] == [api.runs(workspace)[0].id]
    store = Store(workspace)
    assert store.metrics(api.runs(workspace)[0].id)  # the kept run's rows are all there


def test_bad_label(made, workspace: Path) -> None:
    with pytest.raises(SpecError, match="--label"):
        import_chain(made["folder"], workspace, label="   ")
    assert _nothing_written(workspace)


# ------------------------------------------------------------------------------------------ real steps


def _ramp(steps: list[int]) -> list[np.ndarray]:
    """Grey frames 4 levels brighter per step, plus a fixed pattern: a drift that is linear in the step."""
    pattern = (np.indices((48, 48)).sum(axis=0) % 16).astype(np.int16)[..., None]
    return [np.clip(60 + 4 * s + pattern, 0, 255).astype(np.uint8).repeat(3, axis=2) for s in steps]


def test_a_folder_with_gaps_keeps_its_real_steps_and_says_so(tmp_path: Path) -> None:
    steps = [0, 1, 2, 3, 10]
    folder = tmp_path / "posted"
    write_pngs(folder, _ramp(steps), name=lambda i: f"copy_{steps[i - 1]:03d}.png")
    said: list[str] = []
    run_id = import_chain(folder, tmp_path / "ws", render=False, log=said.append)
    run = api.open_run(run_id, tmp_path / "ws")
    assert [r.step for r in run.frame_rows()] == steps and run.row.n_steps == 10
    assert run.config["import"]["missing_steps"] == [[4, 9]]
    assert any("a chain with gaps (6 step(s) missing: 4–9)" in s for s in said)
    assert any("a chain with gaps" in e["message"] for e in run.events() if e["kind"] == "import")
    (summary,) = run.summary()
    assert summary.last_step == 10
    # the lightness rate is per real step: the file-position rate would be about 2.2 times larger
    per_file = api.open_run(import_chain(folder, tmp_path / "ws2", steps=[0, 1, 2, 3, 4], render=False),
                            tmp_path / "ws2").summary()[0]  # fmt: skip
    ratio = per_file.rates["lab_l_mean"].slope / summary.rates["lab_l_mean"].slope
    assert 1.8 < ratio < 2.8


def test_step_numbers_from_names_and_from_steps(tmp_path: Path) -> None:
    frames = _ramp([0, 1, 2, 3])
    write_pngs(
        tmp_path / "a",
        frames,
        name=lambda i: ["original.png", "copy_1.png", "copy_2.png", "copy_10.png"][i - 1],
    )
    write_pngs(tmp_path / "b", frames)  # 1.png ... 4.png: steps 0..3, as numbered from 1
    write_pngs(tmp_path / "c", frames, name=lambda i: ["a.png", "b.png", "c.png", "d.png"][i - 1])
    ws = tmp_path / "ws"
    steps_of = lambda run_id: [r.step for r in api.open_run(run_id, ws).frame_rows()]  # noqa: E731
    assert steps_of(import_chain(tmp_path / "a", ws, render=False)) == [0, 1, 2, 10]
    assert steps_of(import_chain(tmp_path / "b", ws, render=False)) == [0, 1, 2, 3]
    assert steps_of(import_chain(tmp_path / "c", ws, allow_duplicate=True, render=False)) == [0, 1, 2, 3]
    again = import_chain(tmp_path / "c", ws, steps=[0, 2, 4, 8], allow_duplicate=True, render=False)
    assert steps_of(again) == [0, 2, 4, 8]
    for bad, match in (([0, 1, 2], "3 step"), ([1, 2, 3, 4], "start at 0"), ([0, 2, 2, 3], "rise")):
        with pytest.raises(SpecError, match=match):
            import_chain(tmp_path / "c", ws, steps=bad, render=False)


# ------------------------------------------------------------------------------------------ duplicates


def test_the_same_chain_imported_twice_is_refused_with_the_run_id(tmp_path: Path) -> None:
    chain = generation_loss(n=6, size=64)
    write_pngs(tmp_path / "pngs", chain)
    gif = write_gif(tmp_path / "chain.gif", chain)
    mp4 = write_mp4(tmp_path / "chain.mp4", held(chain, 6), fps=10, crf=23)
    ws = tmp_path / "ws"
    first = import_chain(tmp_path / "pngs", ws, render=False)
    for again in (gif, mp4):  # the GIF's palette, the video's codec: the same pictures
        with pytest.raises(InputError, match=f"already stored as run {first} .*--allow-duplicate"):
            import_chain(again, ws, render=False)
    assert len(Store(ws).runs()) == 1
    other = generation_loss(n=6, size=64)[:1] + [np.ascontiguousarray(f[:, ::-1]) for f in chain[1:]]
    write_pngs(tmp_path / "other", other)  # the same original, other copies: another chain
    import_chain(tmp_path / "other", ws, render=False)
    again = import_chain(gif, ws, allow_duplicate=True, render=False)
    assert api.open_run(again, ws).config["import"]["duplicate_of"] == first


def test_the_card_counts_one_source_image_and_one_chain_once(tmp_path: Path) -> None:
    from driftloop.report.bias_card import _sweep_table  # the table the card is computed from

    chain = generation_loss(n=5, size=64)
    other = chain[:1] + [np.ascontiguousarray(f[::-1]) for f in chain[1:]]  # same original, other copies
    write_pngs(tmp_path / "a", chain)
    write_pngs(tmp_path / "b", other)
    gif = write_gif(tmp_path / "a.gif", chain)
    ws = tmp_path / "ws"
    ids = [
        import_chain(tmp_path / "a", ws, label="chat", render=False),
        import_chain(gif, ws, label="chat", allow_duplicate=True, render=False),
        import_chain(tmp_path / "b", ws, label="chat", render=False),
    ]
    runs = [api.open_run(i, ws) for i in ids]
    table = _sweep_table(runs)
    assert sorted(table["run_id"].unique()) == sorted([ids[0], ids[2]])  # the duplicate counted once
    assert table["image"].nunique() == 1  # two files, one source image


# ------------------------------------------------------------------------------------- unknown cost, label


def test_an_imported_chains_cost_is_unknown_and_its_model_is_shown(tmp_path: Path) -> None:
    import json

    from driftloop.cost import chain_cost_line, cost_rows_by, cost_rows_for_report, summary_lines
    from driftloop.web.data import GalleryData

    write_pngs(tmp_path / "copies", generation_loss(n=4, size=48))
    ws = tmp_path / "ws"
    run_id = import_chain(tmp_path / "copies", ws, label="posted", model="GPT-5 in ChatGPT", render=False)
    run = api.open_run(run_id, ws)
    per_chain, total = run.cost_totals()
    assert total.unknown and total.elsewhere == 3 and total.frames == 0
    said = " ".join(summary_lines(total))
    assert "3 copies were made elsewhere" in said and "unknown" in said and "no cost to report" not in said
    assert chain_cost_line(per_chain[0]) == "3 copies made elsewhere: cost unknown"
    assert {v for label, v, _ in cost_rows_for_report(total) if label != "Copies"} == {"unknown"}
    assert cost_rows_by({"x": total})[0][2:6] == ["unknown"] * 4
    as_json = total.to_dict()
    assert as_json["cost"] == "unknown" and as_json["energy_wh"] is None and as_json["usd"] is None
    html = (run.path / "report.html").read_text()
    assert "imported:posted (made by GPT-5 in ChatGPT)" in html
    # no cost of zero anywhere (the folded cost factors, "12.0 Wh per smartphone charge", are not a cost)
    assert not re.search(r"(?<![\d.])0(\.0+)? Wh", html)
    summary = json.loads((run.path / "summary.json").read_text())
    assert summary["made_by"] == "GPT-5 in ChatGPT"
    gallery = GalleryData(ws)
    (card,) = gallery.runs().items
    assert card.cost_unknown and card.usd is None and card.made_by == "GPT-5 in ChatGPT"
    detail = gallery.run(run.id)
    assert detail.usd is None and detail.made_by == "GPT-5 in ChatGPT"


# ------------------------------------------------------------------------------------------------ faces


def _loss_chain(picture: np.ndarray, n: int = 4, size: int = 128) -> list[np.ndarray]:
    """``picture`` at ``size`` and ``n - 1`` JPEG re-saves of it, each from the one before."""
    import io

    frames = [np.asarray(Image.fromarray(picture).resize((size, size)))]
    for _ in range(n - 1):
        buf = io.BytesIO()
        Image.fromarray(frames[-1]).save(buf, "JPEG", quality=40)
        frames.append(np.asarray(Image.open(buf).convert("RGB")).copy())
    return frames


def test_faces_on_imports_and_no_face_in_a_cat(tmp_path: Path) -> None:
    from skimage import data

    from driftloop.metrics.face import available

    ok, why = available()
    if not ok:
        pytest.skip(f"MediaPipe's face mesh is not installed here: {why}")
    write_pngs(tmp_path / "person", _loss_chain(data.astronaut()))
    write_pngs(tmp_path / "cat", _loss_chain(data.chelsea()))
    ws = tmp_path / "ws"
    person = api.open_run(import_chain(tmp_path / "person", ws, faces=True, render=False), ws)
    assert person.config["metrics"]["faces"] is True
    assert all(row.get("face_found") == 1.0 for row in person.metric_rows().values())
    assert "face_eyebrow_thickness" in person.metric_rows()[(0, 3)]
    cat = api.open_run(import_chain(tmp_path / "cat", ws, faces=True, render=False), ws)
    (summary,) = cat.summary()
    assert summary.face_at_start is False
    assert "no face in the original" in (cat.path / "report.html").read_text().lower()
    plain = api.open_run(import_chain(tmp_path / "person", tmp_path / "ws2", render=False), tmp_path / "ws2")
    assert "face_found" not in plain.metric_rows()[(0, 1)]
    plain.recompute_metrics(faces=True)  # metrics --recompute --faces
    assert plain.metric_rows()[(0, 1)]["face_found"] == 1.0
