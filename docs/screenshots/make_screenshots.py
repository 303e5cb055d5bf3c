"""Make the README's screenshots of the gallery and of a published site from a real study, in one command.

    python docs/screenshots/make_screenshots.py    # from a clone, with the [dev] extra and taef2's weights

Each step is skipped when its result is already there, so running it again (after a change to a page) only
retakes the screenshots, in about a minute:

1. the study's photographs (``examples/study/make_images.py``: public domain and CC0 pictures that ship with
   scikit-image and matplotlib);
2. the sweep ``docs/screenshots/photos.toml`` (five photographs, 50 copies at 256²: taef2 with and without
   ``colour:lab``, WebP and the JPEG control; 20 chains) with ``driftloop sweep``, into the workspace
   (``build/screenshots-workspace``, not committed); about 13 minutes on two cores;
3. ``driftloop bias photos`` (once), then ``driftloop publish photos --out WORKSPACE/site --frames every:5``
   (written again every time);
4. ``driftloop serve`` on 127.0.0.1 and headless Chromium (``/usr/bin/chromium`` through Playwright; it
   never downloads a browser) taking the pages the README shows, saved as WebP of at most 250 KB each in
   ``docs/screenshots/``.

``--only chains bundles`` retakes some of them; ``--workspace`` and ``--out`` move the two folders.
"""

from __future__ import annotations

import argparse
import io
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image
from playwright.sync_api import Page, sync_playwright

from driftloop import api

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SPEC = HERE / "photos.toml"
SWEEP = "photos"
CHROMIUM = "/usr/bin/chromium"
MAX_BYTES = 250_000
STEP = 37  # the copy the deep links point at
PICTURE = "astronaut.png"  # the chain shown in the chain and compare views
WIDTH = 1280


def driftloop(*args: str) -> None:
    """Run the command line as a user would (``python -m driftloop`` of this interpreter)."""
    print("$ driftloop " + " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "driftloop", *args], check=True)


def make_study(ws: Path) -> None:
    images = ROOT / "examples" / "study" / "images"
    if not (images / PICTURE).is_file():
        subprocess.run([sys.executable, str(ROOT / "examples" / "study" / "make_images.py")], check=True)
    driftloop("sweep", str(SPEC), "-w", str(ws))  # only what is missing: nothing once the study is made
    if not (ws / "sweeps" / SWEEP / "bias_card.html").is_file():
        driftloop("bias", SWEEP, "-w", str(ws))  # the card the sweep page and the site show


def publish(ws: Path) -> Path:
    site = ws / "site"
    shutil.rmtree(site, ignore_errors=True)  # the script's own output, made again from the workspace
    driftloop("publish", SWEEP, "--out", str(site), "--frames", "every:5", "-w", str(ws))
    return site


def arms(ws: Path) -> dict[str, tuple[str, int]]:
    """Each arm of the sweep (``taef2 + stabilize=colour:lab``, ...) → (run id, chain) of PICTURE."""
    found = {}
    for summary in api.runs(ws):
        if summary.sweep != SWEEP:
            continue
        for chain in api.open_run(summary.id, ws).chains():
            if Path(chain.input_path).name == PICTURE:
                found.setdefault(summary.arm, (summary.id, chain.chain))
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(ws: Path) -> Iterator[str]:
    """``driftloop serve`` in a process of its own, stopped (by its pid) when the screenshots are taken."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    print(f"$ driftloop serve -w {ws} --port {port}", flush=True)
    proc = subprocess.Popen([sys.executable, "-m", "driftloop", "serve", "-w", str(ws), "--port", str(port)])
    try:
        end = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/", timeout=5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > end:
                    raise SystemExit("driftloop serve did not start") from None
                time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        proc.wait(20)


def settle(tab: Page, ready: str | None = None) -> None:
    """Wait until the page's images are decoded and its plots drawn."""
    tab.wait_for_load_state("networkidle")
    if ready:
        tab.wait_for_function(ready, timeout=60_000)
    tab.wait_for_function("() => Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
    tab.wait_for_timeout(400)  # a last animation frame for the charts


def save(png: bytes, path: Path) -> None:
    """As WebP (GitHub shows it), at the best quality that keeps it under MAX_BYTES."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    for quality in (85, 75, 65, 55, 45):
        buffer = io.BytesIO()
        image.save(buffer, "WEBP", quality=quality, method=6)
        if buffer.tell() <= MAX_BYTES:
            break
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    print(f"  {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {image.width}×{image.height}, "
          f"{buffer.tell() / 1000:.0f} kB (WebP q{quality})")  # fmt: skip


def shots(base: str, site: Path, ws: Path) -> dict[str, Callable[[Page], bytes]]:
    """Name → how to take it: the pages of the README's gallery and publish sections."""
    arm = arms(ws)
    plain, stable = arm["taef2"], arm["taef2 + stabilize=colour:lab"]
    control = arm["jpeg:quality=90"]
    warmest = "/chains?sweep=photos&col=lab_b_mean.change&sort=-lab_b_mean.change&per_page=25"

    def chain(tab: Page) -> bytes:
        tab.goto(f"{base}/runs/{plain[0]}/chains/{plain[1]}?step={STEP}")
        settle(tab, f"() => window.driftloopChain && window.driftloopChain.step === {STEP}")
        return tab.screenshot(full_page=True)

    def compare(tab: Page) -> bytes:
        picked = "&".join(f"c={run}:{c}" for run, c in (plain, stable, control))
        tab.goto(f"{base}/compare?{picked}&step={STEP}")
        settle(tab, "() => window.driftloopCompare && window.driftloopCompare.chains.length === 3")
        tab.select_option("#metric", "lab_b_delta")  # the colour drift the stabilizer removes
        tab.wait_for_timeout(400)
        return tab.screenshot(full_page=True)

    def chains(tab: Page) -> bytes:
        tab.goto(base + warmest)
        settle(tab)
        return tab.screenshot(full_page=True)

    def bundles(tab: Page) -> bytes:
        tab.goto(f"{base}/bundles?sweep={SWEEP}&model=taef2&measure=lab_b_mean&by=stabilizer")
        settle(tab, "() => window.driftloopBundle && window.driftloopBundle.drawn")
        return tab.screenshot(full_page=True)

    def bundles_marked(tab: Page) -> bytes:
        """The table's "these chains as bundles of curves", its marks cut to the warmest five."""
        tab.goto(base + warmest)
        link = tab.get_attribute("#as-bundle", "href") or ""
        path, _, query = link.partition("?")
        pairs = urllib.parse.parse_qsl(query)
        marks = [p for p in pairs if p[0] == "mark"][:5]
        tab.goto(base + path + "?" + urllib.parse.urlencode([p for p in pairs if p[0] != "mark"] + marks))
        settle(tab, "() => window.driftloopBundle && window.driftloopBundle.drawn")
        return tab.screenshot(full_page=True)

    def site_index(tab: Page) -> bytes:
        tab.goto((site / "index.html").resolve().as_uri())
        settle(tab)
        return tab.screenshot(full_page=True, clip={"x": 0, "y": 0, "width": WIDTH, "height": 1000})

    def poster(tab: Page) -> bytes:
        return (site / "posters" / f"{plain[0]}-{plain[1]}.jpg").read_bytes()

    return {
        "chain": chain,
        "compare": compare,
        "chains": chains,
        "bundles": bundles,
        "bundles-marked": bundles_marked,
        "site": site_index,
        "poster": poster,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--workspace", type=Path, default=ROOT / "build" / "screenshots-workspace")
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--only", nargs="*", help="names of the screenshots to take (default: all)")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).is_file():
        raise SystemExit(f"{CHROMIUM} not found: apt-get install chromium")
    started = time.monotonic()
    make_study(args.workspace)
    site = publish(args.workspace)
    with serve(args.workspace) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        tab = browser.new_page(viewport={"width": WIDTH, "height": 900})
        for name, take in shots(base, site, args.workspace).items():
            if not args.only or name in args.only:
                save(take(tab), args.out / f"{name}.webp")
        browser.close()
    print(f"done in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
