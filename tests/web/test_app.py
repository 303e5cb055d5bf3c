"""The gallery over HTTP: every route, its safety (token, host, CSRF, traversal) and its caching."""

from __future__ import annotations

import html
import re
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient

from conftest import child_signals
from driftloop import api, fmt
from driftloop.errors import DriftloopError
from driftloop.store import Store
from driftloop.store.locks import run_lock
from driftloop.web import INSTALL_HINT, serve
from driftloop.web.app import create_app
from driftloop.web.data import GalleryData, clean_settings


def client_for(ws: Path, **kw) -> TestClient:
    return TestClient(create_app(ws, extra_hosts=("testserver",), **kw), follow_redirects=False)


@pytest.fixture
def client(gallery_ws: Path) -> TestClient:
    return client_for(gallery_ws)


def newest(ws: Path) -> api.RunHandle:
    return api.open_run(api.runs(ws)[0].id, ws)  # runs are listed newest first


def csrf(client: TestClient) -> str:
    return client.app.state.guard.csrf


# ---- pages ------------------------------------------------------------------------------------------
def test_runs_page_lists_every_run_newest_first_with_thumbnails(client: TestClient, gallery_ws: Path) -> None:
    ids = [r.id for r in api.runs(gallery_ws)]
    assert ids == sorted(ids, reverse=True)  # the API lists newest first too (ids start with the time)
    page = client.get("/")
    assert page.status_code == 200
    positions = [page.text.index(i) for i in ids]
    assert positions == sorted(positions)  # newest first, as the API lists them
    first = newest(gallery_ws).frame_rows(0)
    assert f"/thumbs/{ids[0]}/{first[0].sha256}/128.webp" in page.text
    assert f"/thumbs/{ids[0]}/{first[-1].sha256}/128.webp" in page.text
    assert "/sweeps/tiny" in page.text


def test_runs_page_filters_by_model_sweep_and_status(client: TestClient, gallery_ws: Path) -> None:
    runs = {r.model: r.id for r in api.runs(gallery_ws)}
    only = client.get("/", params={"model": "jpeg:quality=70"}).text
    assert runs["jpeg:quality=70"] in only and runs["jpeg:quality=50"] not in only
    swept = client.get("/", params={"sweep": "tiny"}).text
    assert runs["jpeg:quality=50"] in swept and runs["jpeg:quality=90"] in swept
    assert runs["jpeg:quality=70"] not in swept
    assert "no runs match" in client.get("/", params={"status": "running"}).text
    partial = client.get("/", params={"status": "done"}, headers={"HX-Request": "true"})
    assert "<html" not in partial.text and runs["jpeg:quality=70"] in partial.text


def test_listing_pages(gallery_ws: Path) -> None:
    data = GalleryData(gallery_ws)
    first, second = data.runs(per_page=2, page=1), data.runs(per_page=2, page=2)
    assert (first.total, first.pages, len(first.items), len(second.items)) == (3, 2, 2, 1)
    assert second.items[0].id == api.runs(gallery_ws)[-1].id  # the oldest comes last, as in the API


def test_run_and_chain_pages(client: TestClient, gallery_ws: Path) -> None:
    run = newest(gallery_ws)
    page = client.get(f"/runs/{run.id}")
    assert page.status_code == 200 and "chain 1" in page.text and "done" in page.text
    chain = client.get(f"/runs/{run.id}/chains/1", params={"step": 3})
    assert chain.status_code == 200 and 'data-step="3"' in chain.text
    assert client.get(f"/runs/{run.id}/chains/7").status_code == 404
    assert client.get("/runs/no-such-run").status_code == 404


def test_chain_data_is_the_stored_frames_and_metrics(client: TestClient, gallery_ws: Path) -> None:
    run = newest(gallery_ws)
    got = client.get(f"/runs/{run.id}/chains/1/data.json").json()
    rows = run.frame_rows(1)
    assert [f["sha256"] for f in got["frames"]] == [r.sha256 for r in rows]
    assert got["metrics"]["step"] == [r.step for r in rows]
    df = run.dataframe()
    want = df[df["chain"] == 1].sort_values("step")["ssim_to_origin"].tolist()
    assert got["metrics"]["ssim_to_origin"] == pytest.approx(want)
    assert set(got["markers"]) == {"half_life", "fixed_point", "face_lost", "thread_restart"}
    assert got["markers"]["thread_restart"] is None


def test_a_thread_restart_is_marked_on_its_chain(client: TestClient, gallery_ws: Path) -> None:
    run = newest(gallery_ws)
    Store(gallery_ws).add_event(run.id, "thread_restart", "a new thread begins from frame 1", chain=1, step=2)
    assert client.get(f"/runs/{run.id}/chains/1/data.json").json()["markers"]["thread_restart"] == 2
    assert client.get(f"/runs/{run.id}/chains/0/data.json").json()["markers"]["thread_restart"] is None


def test_compare_view(client: TestClient, gallery_ws: Path) -> None:
    a, b = api.runs(gallery_ws)[0].id, api.runs(gallery_ws)[-1].id
    page = client.get("/compare", params=[("c", f"{a}:0"), ("c", f"{a}:1"), ("c", f"{b}:0")])
    assert page.status_code == 200 and page.text.count('class="panel"') == 3
    assert "cols-3" in page.text
    assert '<option value="lab_b_delta">Δb* from the original</option>' in page.text  # the measures' words
    assert client.get("/compare").status_code == 200  # the picker
    assert client.get("/compare", params={"c": f"{a}:9"}).status_code == 404
    assert client.get("/compare", params={"c": "nonsense"}).status_code == 404


def test_sweep_view_shows_the_card_attractors_and_links_to_chains(
    client: TestClient, gallery_ws: Path
) -> None:
    page = client.get("/sweeps/tiny")
    assert page.status_code == 200
    assert 'src="/sweeps/tiny/bias_card.html"' in page.text and "Attractors" in page.text
    q50 = next(r.id for r in api.runs(gallery_ws) if r.model == "jpeg:quality=50")
    assert f"/runs/{q50}/chains/0" in page.text and f"/runs/{q50}/chains/1" in page.text
    card = client.get("/sweeps/tiny/bias_card.html")
    assert card.status_code == 200 and "sandbox" in card.headers["content-security-policy"]
    assert client.get("/sweeps/tiny/bias_card.json").json()["attractors"]["n_chains"] == 4
    assert client.get("/sweeps/nope").status_code == 404


def test_live_new_and_static_pages(client: TestClient) -> None:
    assert "Nothing is running" in client.get("/live").text
    new = client.get("/new").text
    assert "taef2 — ready" in new and "chelsea.jpg" in new  # a model with weights; an earlier input
    js = client.get("/assets/vendor/uplot-1.6.32/uPlot.iife.min.js")
    assert js.status_code == 200 and "uPlot" in js.text
    charts = client.get("/assets/charts.js")  # the one chart module, the one report.html inlines
    assert charts.status_code == 200 and "DriftCharts" in charts.text
    assert client.get("/assets/shell.css").status_code == 200
    assert client.get("/assets/../html.py").status_code == 404


def test_downloads(client: TestClient, gallery_ws: Path) -> None:
    run = newest(gallery_ws)
    csv = client.get(f"/runs/{run.id}/download/csv")
    assert csv.status_code == 200 and csv.text.startswith("run_id,chain")
    assert (run.path / "frames.csv").is_file()
    # made with --no-render: a chain's animation is made when asked for, and kept
    gif = client.get(f"/runs/{run.id}/download/gif", params={"chain": 1})
    assert gif.status_code == 200 and gif.content.startswith(b"GIF8")
    assert (run.path / "chain001.gif").is_file() and not (run.path / "chain001.mp4").exists()
    assert f"/runs/{run.id}/download/mp4?chain=0" in client.get(f"/runs/{run.id}").text  # offered before made
    store = Store(gallery_ws)
    store.set_run_status(run.id, "running")
    with run_lock(run.path, run.id):  # a run a process advances: its chains still grow, nothing is made
        assert client.get(f"/runs/{run.id}/download/mp4", params={"chain": 0}).status_code == 404
    store.set_run_status(run.id, "done")
    store.close()
    assert not (run.path / "chain000.mp4").exists()
    assert client.get(f"/runs/{run.id}/download/passwd").status_code == 404


def test_progress_and_event_stream_of_a_finished_run(client: TestClient, gallery_ws: Path) -> None:
    run = newest(gallery_ws)
    snap = client.get(f"/runs/{run.id}/progress.json").json()
    assert (snap["status"], snap["steps_done"], snap["n_steps"]) == ("done", 10, 10)
    assert {f["chain"] for f in snap["latest"]} == {0, 1}
    with client.stream("GET", f"/runs/{run.id}/events") as stream:
        body = "".join(stream.iter_text())
    assert "event: progress" in body and "event: end" in body and '"steps_done": 10' in body


# ---- frames: by id, cached -------------------------------------------------------------------------
def test_frames_have_strong_etags_and_304(client: TestClient, gallery_ws: Path) -> None:
    run = newest(gallery_ws)
    row = run.frame_rows(0)[4]
    got = client.get(f"/frames/{run.id}/{row.sha256}.png")
    assert got.status_code == 200 and got.content == (run.path / row.path).read_bytes()
    assert got.headers["etag"] == f'"{row.sha256}"'
    assert got.headers["cache-control"] == "public, max-age=31536000, immutable"
    again = client.get(f"/frames/{run.id}/{row.sha256}.png", headers={"If-None-Match": f'"{row.sha256}"'})
    assert again.status_code == 304 and again.content == b""
    other = client.get(f"/frames/{run.id}/{row.sha256}.png", headers={"If-None-Match": '"abc"'})
    assert other.status_code == 200


def test_thumbnails_are_made_once_and_kept_in_the_workspace(client: TestClient, gallery_ws: Path) -> None:
    run = newest(gallery_ws)
    sha = run.frame_rows(0)[-1].sha256
    first = client.get(f"/thumbs/{run.id}/{sha}/128.webp")
    assert first.status_code == 200 and first.content[8:12] == b"WEBP"
    cached = gallery_ws / ".thumbs" / f"{sha}-128.webp"
    stamp = cached.stat().st_mtime_ns
    assert client.get(f"/thumbs/{run.id}/{sha}/128.webp").content == first.content
    assert cached.stat().st_mtime_ns == stamp
    assert client.get(f"/thumbs/{run.id}/{sha}/100.webp").status_code == 404
    assert not list((gallery_ws / ".thumbs").glob(".*"))  # no temp file left


@pytest.mark.parametrize(
    "url",
    [
        "/frames/{run}/..%2F..%2Fdriftloop.db",
        "/frames/{run}/..%2F..%2F..%2Fdriftloop.db.png",
        "/frames/..%2F{run}/{sha}.png",
        "/frames/%2e%2e/{sha}.png",
        "/frames/{run}/{other}.png",  # a frame of another run, asked under this one
        "/thumbs/{run}/..%2F..%2Fdriftloop.db/128.webp",
        "/runs/..%2F..%2Fetc/chains/0",
        "/runs/{run}/download/..%2F..%2Fdriftloop.db",
        "/runs/{run}/download/%2e%2e",
        "/sweeps/..%2F..%2Fruns/bias_card.html",
        "/sweeps/%2e%2e/bias_card.json",
        "/static/..%2F..%2Fdata.py",
        "/static/%2e%2e/app.py",
    ],
)
def test_traversal_attempts_are_404(client: TestClient, gallery_ws: Path, url: str) -> None:
    run = newest(gallery_ws)
    other = api.open_run(api.runs(gallery_ws)[-1].id, gallery_ws).frame_rows(0)[-1].sha256
    got = client.get(url.format(run=run.id, sha=run.frame_rows(0)[0].sha256, other=other))
    assert got.status_code == 404
    assert b"SQLite" not in got.content and b"import" not in got.content


# ---- who may ask -----------------------------------------------------------------------------------
def test_a_token_is_checked_on_every_request(gallery_ws: Path) -> None:
    client = TestClient(create_app(gallery_ws, token="s3cret"), follow_redirects=False)
    run = newest(gallery_ws)
    sha = run.frame_rows(0)[0].sha256
    urls = ["/", f"/frames/{run.id}/{sha}.png", f"/runs/{run.id}/events", "/static/gallery.css",
            f"/thumbs/{run.id}/{sha}/64.webp", "/sweeps/tiny/bias_card.html"]  # fmt: skip
    for url in urls:
        assert client.get(url).status_code == 401, url
        assert client.get(url, headers={"X-Driftloop-Token": "wrong"}).status_code == 401, url
    assert client.get("/", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert client.get(f"/frames/{run.id}/{sha}.png", params={"token": "s3cret"}).status_code == 303
    login = client.get("/live", params={"token": "s3cret", "x": "1"})
    assert login.status_code == 303 and login.headers["location"] == "/live?x=1"
    assert (
        "driftloop_token" in login.headers["set-cookie"] and "httponly" in login.headers["set-cookie"].lower()
    )
    assert client.get(f"/frames/{run.id}/{sha}.png").status_code == 200  # the cookie now
    assert client.get("/", headers={"Host": "203.0.113.9:8765"}).status_code == 200  # any host, with token


def test_local_mode_answers_only_loopback_host_names(gallery_ws: Path) -> None:
    client = TestClient(create_app(gallery_ws), base_url="http://127.0.0.1:8765")
    assert client.get("/").status_code == 200
    assert client.get("/", headers={"Host": "localhost:8765"}).status_code == 200
    assert client.get("/", headers={"Host": "evil.example:8765"}).status_code == 421  # DNS rebinding


def test_posts_need_the_csrf_token_and_a_same_origin(client: TestClient, gallery_ws: Path) -> None:
    run = newest(gallery_ws)
    assert client.post(f"/runs/{run.id}/stop").status_code == 403
    assert client.post(f"/runs/{run.id}/stop", data={"csrf": "guess"}).status_code == 403
    evil = {"Origin": "http://evil.example"}
    assert client.post(f"/runs/{run.id}/stop", data={"csrf": csrf(client)}, headers=evil).status_code == 403
    null = {"Origin": "null"}
    assert client.post(f"/runs/{run.id}/stop", data={"csrf": csrf(client)}, headers=null).status_code == 403
    ok = client.post(
        f"/runs/{run.id}/stop", data={"csrf": csrf(client)}, headers={"Origin": "http://testserver"}
    )
    assert ok.status_code == 409  # allowed through, and the run is not running
    by_header = client.post(f"/runs/{run.id}/resume", headers={"X-CSRF-Token": csrf(client)})
    assert by_header.status_code == 409  # a finished run is not resumed
    assert client.get("/new").text.count(csrf(client)) >= 2  # the page carries it (meta + form)


def test_api_keys_never_reach_the_browser(
    client: TestClient, gallery_ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-do-not-leak")
    run = newest(gallery_ws)
    for url in ("/", f"/runs/{run.id}", "/new", f"/runs/{run.id}/chains/0/data.json", "/sweeps/tiny"):
        assert "sk-test-do-not-leak" not in client.get(url).text
    cleaned = clean_settings({"model": "openai", "params": {"api_key": "sk-1", "Authorization": "x"}, "n": 3})
    assert cleaned == {
        "model": "openai",
        "params": {"api_key": "(hidden)", "Authorization": "(hidden)"},
        "n": 3,
    }


# ---- uploads ---------------------------------------------------------------------------------------
def _post_new(client: TestClient, files=None, **fields) -> object:
    form = {"csrf": csrf(client), "model": "jpeg", "steps": "3", "seeds": "0", "size": "64", **fields}
    return client.post("/new", data=form, files=files or {})


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header says it is width × height (a decompression bomb's header)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 16))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("notes.png", b"this is not an image at all", "not an image"),
        ("empty.png", b"", "empty"),
        ("bomb.png", _png_claiming(100_000, 100_000), "pixels"),
    ],
)
def test_bad_uploads_are_refused_in_the_page_and_leave_nothing(
    client: TestClient, gallery_ws: Path, name: str, content: bytes, words: str
) -> None:
    got = _post_new(client, files={"image": (name, content, "image/png")})
    assert got.status_code == 400
    assert words in got.text.lower() and name in got.text and 'id="form-error"' in got.text
    uploads = gallery_ws / "uploads"
    assert not uploads.exists() or not any(uploads.iterdir())
    assert client.app.state.jobs._jobs == {}  # no worker started


def test_a_run_needs_an_image_and_a_known_model(client: TestClient) -> None:
    assert "choose an image" in _post_new(client).text
    assert "not one this machine knows" in _post_new(client, model="nope", picked="x").text
    assert _post_new(client, steps="0").status_code == 400


# ---- runs started, stopped and resumed from the page -------------------------------------------------
def _wait(predicate, timeout: float = 120.0, what: str = "condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_start_stop_and_resume_a_run_from_the_page(
    client: TestClient, gallery_ws: Path, sample_images: dict[str, Path]
) -> None:
    jobs = client.app.state.jobs
    try:
        image = sample_images["astronaut.png"]
        started = _post_new(client, files={"image": ("astro.png", image.read_bytes(), "image/png")},
                            steps="4000", size="128")  # fmt: skip
        assert started.status_code == 303 and started.headers["location"].startswith("/jobs/")
        job_id = started.headers["location"].rsplit("/", 1)[1]
        kept = list((gallery_ws / "uploads").iterdir())
        assert (
            len(kept) == 1
            and kept[0].name.endswith("-astro.png")
            and kept[0].read_bytes() == image.read_bytes()
        )

        def run_with_frames() -> str | None:
            state = client.get(f"/jobs/{job_id}.json").json()
            assert state["returncode"] in (None, 0), state["log"]
            if (
                state["run_id"]
                and client.get(f"/runs/{state['run_id']}/progress.json").json()["steps_done"] > 2
            ):
                return state["run_id"]
            return None

        run_id = _wait(run_with_frames, what="the worker's first frames")
        assert client.get("/live").text.count(run_id) >= 1
        assert client.get(f"/runs/{run_id}").text.count('id="stop"') == 1
        assert client.post(f"/runs/{run_id}/stop", data={"csrf": csrf(client)}).status_code == 303
        _wait(
            lambda: client.get(f"/runs/{run_id}/progress.json").json()["status"] == "stopped", 60, "the stop"
        )
        stopped_at = client.get(f"/runs/{run_id}/progress.json").json()["steps_done"]
        assert 0 < stopped_at < 4000

        resumed = client.post(f"/runs/{run_id}/resume", data={"csrf": csrf(client)})
        assert resumed.status_code == 303
        _wait(lambda: client.get(f"/runs/{run_id}/progress.json").json()["steps_done"] > stopped_at + 2,
              60, "the resumed run to advance")  # fmt: skip
        assert client.post(f"/runs/{run_id}/stop", data={"csrf": csrf(client)}).status_code == 303
        _wait(
            lambda: client.get(f"/runs/{run_id}/progress.json").json()["status"] == "stopped", 60, "the stop"
        )
        run = api.open_run(run_id, gallery_ws)
        assert run.row.config["inputs"][0]["path"] == str(kept[0])
        assert all(c.last_step > stopped_at for c in run.chains())
    finally:
        jobs.close()


def test_the_gallery_reads_a_run_while_it_is_written(
    gallery_ws: Path, sample_images: dict[str, Path]
) -> None:
    client = client_for(gallery_ws)
    writer = subprocess.Popen(
        [sys.executable, "-m", "driftloop", "run", str(sample_images["chelsea.jpg"]), "-m", "jpeg:quality=60",
         "-n", "150", "--size", "128", "--seeds", "0,1", "--no-render", "-q", "-w", str(gallery_ws)],
        preexec_fn=child_signals,
    )  # fmt: skip
    try:
        known = {r.id for r in api.runs(gallery_ws)}
        data = GalleryData(gallery_ws)

        def new_id():
            fresh = [r.id for r in api.runs(gallery_ws) if r.id not in known]
            return fresh[0] if fresh else None

        run_id = _wait(new_id, 60, "the run to appear")
        seen, served = set(), 0
        while writer.poll() is None or not seen:
            assert client.get("/").status_code == 200
            assert client.get(f"/runs/{run_id}").status_code == 200
            got = client.get(f"/runs/{run_id}/chains/0/data.json").json()
            assert got["metrics"]["step"] == [f["step"] for f in got["frames"]]  # one consistent read
            for f in got["frames"][-3:]:
                frame = client.get(f"/frames/{run_id}/{f['sha256']}.png")
                assert frame.status_code == 200, f  # a listed frame is always there, whole
                served += 1
                seen.add(f["step"])
            snap = client.get(f"/runs/{run_id}/progress.json").json()
            assert snap["status"] in ("running", "done")
        assert writer.wait(120) == 0
        assert data.progress(run_id).status == "done" and served > 3
        assert len(seen) > 1  # read at several points of the run
    finally:
        if writer.poll() is None:
            writer.kill()


def test_serve_without_the_web_extra_says_how_to_install_it(
    gallery_ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    with pytest.raises(DriftloopError, match=r"pip install 'driftloop\[web\]'"):
        serve(gallery_ws)
    assert "driftloop[web]" in INSTALL_HINT


def test_sweep_numbers_link_to_the_chains_behind_them(client: TestClient, gallery_ws: Path) -> None:
    page = client.get("/sweeps/tiny").text
    table = page.split('id="card-numbers"')[1].split("</table>")[0]
    card = client.get("/sweeps/tiny/bias_card.json").json()
    for model in card["models"]:
        rate = model["measures"]["lab_b_mean"]["rate"]["mean"]
        shown = fmt.signed(rate)  # the one rule for a change
        # the number is in a link to the chains table filtered to the model's chains of the sweep
        link = "/chains?" + urlencode({"sweep": "tiny", "model": model["model"]})
        assert f'<a href="{html.escape(link)}" title="mean over' in table and shown in table
        listed = re.findall(r'data-chain="([^"]+)"', client.get(link).text)
        assert len(listed) == model["n_chains"] == 2
        for run_id in {c.rsplit(":", 1)[0] for c in listed}:
            assert model["model"] in client.get(f"/runs/{run_id}").text


def test_progress_shows_a_ray_runs_workers(client: TestClient, gallery_ws: Path) -> None:
    from driftloop.engines.workers import WorkerBoard

    run = newest(gallery_ws)
    assert client.get(f"/runs/{run.id}/progress.json").json()["workers"] == []  # a local run
    board = WorkerBoard(run.path)
    board.started(0, f"driftloop:{run.id}:w0")
    board.ready(0, {"node": "n1", "host": "gpu-box", "device": "cuda:0"})
    board.close()
    (worker,) = client.get(f"/runs/{run.id}/progress.json").json()["workers"]
    assert (worker["node"], worker["device"], worker["copies"], worker["restarts"]) == ("n1", "cuda:0", 0, 0)
