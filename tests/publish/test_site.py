"""``driftloop publish``: a static site of runs and sweeps, its size said before it is written, frames and
animations thinned with every:N, bundles of curves that are the gallery's, posters whose numbers are the
stored summaries, and every link of every page resolving inside the site."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PIL import Image

from conftest import run_cli
from driftloop import api
from driftloop.errors import DriftloopError
from driftloop.publish import Site, build_site, parse_every, write_site
from driftloop.publish import site as publishing
from driftloop.report.bundles import build_bundle
from driftloop.store import Store
from driftloop.store.chain_table import ChainTableRow


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, sample_images: dict[str, Path]) -> tuple[Path, str]:
    ws = tmp_path_factory.mktemp("publish") / "ws"
    run = api.run(sample_images["astronaut.png"], model="jpeg:quality=40", n=7, seeds=(0, 1), size=64,
                  workspace=ws, render=False)  # fmt: skip
    return ws, run.id


def test_a_run_as_a_site(workspace: tuple[Path, str], tmp_path: Path) -> None:
    ws, run_id = workspace
    progress: list[tuple[int, int]] = []
    site = build_site(ws, [run_id, run_id], every=3, progress=lambda done, n: progress.append((done, n)))
    assert site.chains == 2 and site.frames == 2 * 4  # steps 0, 3, 6 and the last (7)
    assert progress == [(1, 2), (2, 2)]  # each chain once, however often it is named
    assert sorted(p for p in site.files if p.startswith(f"frames/{run_id}-1/")) == [
        f"frames/{run_id}-1/{s:04d}.webp" for s in (0, 3, 6, 7)
    ]
    out = write_site(site, tmp_path / "site")
    assert sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) == site.size
    index = (out / "index.html").read_text()
    assert f'href="chains/{run_id}-0.html"' in index and "http" not in index  # relative links only
    assert f'src="animations/{run_id}-1.webp"' in index and 'href="bundles.html"' in index
    page = (out / "chains" / f"{run_id}-0.html").read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert f'src="../animations/{run_id}-0.webp"' in page
    with Image.open(out / "animations" / f"{run_id}-0.webp") as animation:
        assert animation.format == "WEBP" and animation.n_frames == 4  # the kept steps: 0, 3, 6, 7
    for kind, size in (("", (1200, 630)), ("-square", (1080, 1080))):
        with Image.open(out / "posters" / f"{run_id}-0{kind}.jpg") as shown:
            assert shown.format == "JPEG" and shown.size == size
    assert_links_resolve(site)


def assert_links_resolve(site: Site) -> None:
    """Every src and href of every page names a file of the site (or a query of a page of it)."""
    for name, data in site.files.items():
        if not name.endswith(".html") or name.startswith("cards/"):
            continue
        folder = Path(name).parent
        for link in re.findall(r"""(?:src|href)=["']([^"'#]+)""", data.decode()):
            target = (folder / link.split("?")[0]).as_posix()
            resolved = Path(*[p for p in target.split("/") if p != "."])
            parts: list[str] = []
            for part in resolved.parts:
                parts = parts[:-1] if part == ".." else [*parts, part]
            assert "/".join(parts) in site.files, f"{name} links to {link}, not in the site"


def test_the_numbers_are_the_stored_summaries(workspace: tuple[Path, str]) -> None:
    ws, run_id = workspace
    run = api.open_run(run_id, ws)
    stored = run.store.chain_summaries(run_id)[1]
    page = build_site(ws, [run_id]).files[f"chains/{run_id}-1.html"].decode()
    assert f"after 7 copies: {stored['ssim_to_origin.final']:.3f}" in page
    assert f"{stored['lab_b_mean.change']:+.2f}".replace("-", "−") in page


def test_the_posters_numbers_are_the_stored_summaries(
    workspace: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, run_id = workspace
    drawn: list[tuple[str, list[str], str]] = []
    real = publishing.poster

    def spy(frames: list, title: str, lines: list[str], kind: str) -> bytes:
        drawn.append((title, lines, kind))
        return real(frames, title, lines, kind)

    monkeypatch.setattr(publishing, "poster", spy)
    build_site(ws, [run_id], every=2)
    stored = api.open_run(run_id, ws).store.chain_summaries(run_id)
    assert [kind for _t, _l, kind in drawn] == ["wide", "square"] * 2
    for chain, (_title, lines, _kind) in zip((0, 0, 1, 1), drawn, strict=True):
        assert lines[0].endswith(f"after 7 copies: {stored[chain]['ssim_to_origin.final']:.3f}")
        assert lines[2].endswith(f"{stored[chain]['lab_b_mean.change']:+.2f}".replace("-", "−"))


def test_posters_only_on_request(workspace: tuple[Path, str], tmp_path: Path) -> None:
    ws, run_id = workspace
    bare = build_site(ws, [run_id], posters=False)
    assert not any(p.startswith("posters/") for p in bare.files) and bare.size < build_site(ws, [run_id]).size
    assert "poster" not in bare.files[f"chains/{run_id}-0.html"].decode()
    assert_links_resolve(bare)
    done = run_cli("publish", run_id, "--out", str(tmp_path / "bare"), "--no-posters", "-w", str(ws))
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "bare" / "posters").exists() and (tmp_path / "bare" / "animations").is_dir()


def bundle_data(site: Site, measure: str) -> dict:
    text = site.files[f"bundles/{measure}.js"].decode()
    assert text.startswith("(window.driftloopBundleData = window.driftloopBundleData || {})")
    return json.loads(text.split("] = ", 1)[1].rstrip().rstrip(";"))


def test_bundles_are_the_gallery_bundles(sample_images: dict[str, Path], tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    third = tmp_path / "flipped.png"
    Image.open(sample_images["astronaut.png"]).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(third)
    images = [sample_images["astronaut.png"], sample_images["chelsea.jpg"], third]
    run = api.run(images, model="jpeg:quality=30", n=3, seeds=(0,), size=32, workspace=ws, render=False)
    built = build_site(ws, [run.id], every=2)
    assert_links_resolve(built)
    page = built.files["bundles.html"].decode()
    assert 'data-files="bundles/"' in page and '<option value="image">' in page
    assert '<option value="stabilizer">' not in page  # one stabilizer: nothing to group by
    assert '<option value="ssim_to_origin" selected>' in page
    got = bundle_data(built, "ssim_to_origin")
    values = run.store.metric_values("ssim_to_origin", [run.id])
    rows = [ChainTableRow(run.id, c.chain, run.row.model, c.status, c.input_path, c.seed, run.row.created_at)
            for c in run.chains()]  # fmt: skip
    assert got["steps"] == [0, 1, 2, 3] and got["chains"] == [f"{run.id}:{c}" for c in range(3)]
    stored = {(c, s): v for _r, c, s, v in values}
    assert got["values"] == [[pytest.approx(stored[(c, s)], rel=1e-4) for s in range(4)] for c in range(3)]
    for by in ("model", "image"):
        want = build_bundle(rows, values, by, {})["groups"]
        assert [g["name"] for g in got["by"][by]] == [g["name"] for g in want]
        for mine, theirs in zip(got["by"][by], want, strict=True):
            assert [got["chains"][i] for i in mine["members"]] == theirs["chains"]
            assert [mine[k] for k in ("mean", "low", "high")] == [theirs[k] for k in ("mean", "low", "high")]
    assert got["by"]["model"][0]["low"][1] is not None  # three images: a band


def test_the_size_is_said_before_anything_is_written(workspace: tuple[Path, str], tmp_path: Path) -> None:
    ws, run_id = workspace
    said: list[str] = []
    assert api.publish([run_id], tmp_path / "dry", ws, dry_run=True, log=said.append) is None
    assert not (tmp_path / "dry").exists() and re.match(
        r"site: 2 chain\(s\), 16 frame\(s\), \d+ files, [\d.]+ MB \(animations [\d.]+, .*posters [\d.]+\)",
        said[0],
    )
    done = run_cli("publish", run_id, "--out", str(tmp_path / "cli"), "--frames", "every:2", "-w", str(ws))
    assert done.returncode == 0, done.stderr
    assert "site: 2 chain(s), 10 frame(s)" in done.stderr and (tmp_path / "cli" / "index.html").is_file()


def test_bad_arguments_are_clear(workspace: tuple[Path, str], tmp_path: Path) -> None:
    ws, run_id = workspace
    with pytest.raises(DriftloopError, match="every:N"):
        parse_every("every:0")
    with pytest.raises(DriftloopError):
        build_site(ws, ["no-such-run"])
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "thesis.tex").write_text("mine")
    with pytest.raises(DriftloopError, match="not a published site"):
        write_site(build_site(ws, [run_id], every=7), busy)
    assert (busy / "thesis.tex").read_text() == "mine"
    done = run_cli("publish", run_id, "--out", str(tmp_path / "x"), "--frames", "often", "-w", str(ws))
    assert done.returncode != 0 and "every:N" in done.stderr and not (tmp_path / "x").exists()


def test_publishing_nothing_is_an_error_naming_it(workspace: tuple[Path, str], tmp_path: Path) -> None:
    """A sweep that made no run (it failed before), a name that is neither a sweep nor a run, a workspace
    that is not there: an error that names it, a non-zero exit, nothing written."""
    ws, _run_id = workspace
    store = Store(ws)
    store.save_sweep("failed", {"models": ["jpeg"], "inputs": [], "seeds": [0], "steps": 3, "size": 32})
    store.close()
    for target, said in (("failed", "sweep 'failed' has no chains to publish"),
                         ("example", "no sweep or run 'example'")):  # fmt: skip
        out = tmp_path / f"site-{target}"
        done = run_cli("publish", target, "--out", str(out), "-w", str(ws))
        assert done.returncode != 0 and said in " ".join(done.stderr.split()), done.stderr
        assert not out.exists() and not list(tmp_path.glob(f".site-{target}*"))
    nowhere = tmp_path / "no-workspace"
    done = run_cli("publish", "example", "--out", str(tmp_path / "site"), "-w", str(nowhere))
    assert done.returncode != 0 and "no workspace" in done.stderr and not nowhere.exists()
    assert not (tmp_path / "site").exists()


def test_a_stabilized_arm_is_named_on_the_site(sample_images: dict[str, Path], tmp_path: Path) -> None:
    """The index, the chain pages and the bundles name a stabilized run by its arm and a codec by its full
    spec; grouped by model, the plain and the stabilized arm are two groups."""
    ws = tmp_path / "ws"
    plain = api.run(sample_images["astronaut.png"], model="jpeg", n=2, size=32, workspace=ws, render=False)
    lab = api.run(sample_images["astronaut.png"], model="jpeg", n=2, size=32, workspace=ws, render=False,
                  stabilize="colour:lab")  # fmt: skip
    site = build_site(ws, [plain.id, lab.id], posters=False)
    index = site.files["index.html"].decode()
    assert "jpeg:quality=75 + stabilize=colour:lab · astronaut.png" in index
    assert "jpeg:quality=75 · astronaut.png" in index
    assert "stabilize=colour:lab" in site.files[f"chains/{lab.id}-0.html"].decode()
    got = bundle_data(site, "ssim_to_origin")
    groups = {g["name"]: [got["chains"][i] for i in g["members"]] for g in got["by"]["model"]}
    assert groups == {
        "jpeg:quality=75": [f"{plain.id}:0"],
        "jpeg:quality=75 + stabilize=colour:lab": [f"{lab.id}:0"],
    }
