"""``driftloop publish``: runs and sweeps as a static site that opens from a folder, offline, with no server.

The site is built in memory first (:func:`build_site`), so its size is known and stated before anything is
written; :func:`write_site` then writes it into a fresh folder beside the target and renames it into place,
so an interrupted publish leaves no half-written site. Every link and image is relative and every script
is the site's own: the pages make no request outside their folder.

Layout: ``index.html`` (every chain with its animation and its stored numbers), ``chains/RUN-C.html`` (the
chain's frames, thinned with ``every``, on a slider; ``?step=`` opens a step), ``frames/RUN-C/SSSS.webp``,
``animations/RUN-C.webp`` (the kept steps as a looping animated WebP), ``bundles.html`` with
``bundles/MEASURE.js`` (every chain's curves, grouped, with each group's mean and band, drawn by the
gallery's chart module from ``assets/``), ``posters/RUN-C.jpg`` (1200×630) and ``RUN-C-square.jpg``
(1080×1080) unless ``posters=False``, and a sweep's ``cards/SWEEP.html`` when it has a bias card.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from driftloop import fmt
from driftloop.config import arm_label
from driftloop.cost import Totals, run_totals
from driftloop.cost.accounting import fmt_water
from driftloop.errors import DriftloopError, RunNotFoundError
from driftloop.measures import PLOT_LABELS, TABLE_ORDER
from driftloop.publish.pages import bundles_page, chain_page, index_page
from driftloop.publish.poster import poster
from driftloop.render.animation import webp_animation
from driftloop.replicators.spec import spec_label
from driftloop.report.bundles import BUNDLES_JS, GROUPINGS, MAX_CHAINS, group_of, shared_bundle, stabilizer_of
from driftloop.report.charts import CHARTS_JS, UPLOT_CSS, UPLOT_JS, asset_text
from driftloop.store import ChainRow, RunView, Store
from driftloop.store.chain_table import ChainTableRow
from driftloop.sweep import sweep_chains

FRAME_SIDE = 256  # frames of the site: WebP at most this wide
FRAME_QUALITY = 80
POSTER_STEPS = 3  # steps between the original and the last copy on a poster
ASSETS = {  # the chart module and uPlot (with its licence), as the site's own files
    "assets/uPlot.iife.min.js": UPLOT_JS,
    "assets/uPlot.min.css": UPLOT_CSS,
    "assets/uPlot-LICENSE.txt": "vendor/uplot-1.6.32/LICENSE",
    "assets/charts.js": CHARTS_JS,
    "assets/bundles.js": BUNDLES_JS,
}
INDEX_COLUMNS = (
    "animation",
    "chain",
    "SSIM to the original, last",
    "half-life",
    "Δb* (last − original)",
    "cost",
)


@dataclass
class Site:
    """A site in memory: relative path -> bytes, and what it shows."""

    files: dict[str, bytes] = field(default_factory=dict)
    chains: int = 0
    frames: int = 0

    @property
    def size(self) -> int:
        return sum(len(b) for b in self.files.values())

    def sizes(self) -> dict[str, int]:
        """Bytes per top folder (``frames``, ``animations``, ``posters``...; the top's pages: ``pages``)."""
        out: dict[str, int] = {}
        for path, data in self.files.items():
            part = path.split("/", 1)[0] if "/" in path else "pages"
            out[part] = out.get(part, 0) + len(data)
        return out


def parse_every(text: str) -> int:
    """``every:N`` (keep every N-th step, the first and the last always) as N."""
    match = re.fullmatch(r"every:(\d+)", text.strip())
    if not match or int(match[1]) < 1:
        raise DriftloopError(f"--frames {text!r}: expected every:N with N ≥ 1, e.g. every:5")
    return int(match[1])


def _chains_of(store: Store, target: str) -> tuple[list[tuple[str, int]], Path | None]:
    """The (run, chain)s a target names (a sweep's chains, or every chain of a run) and a sweep's card; a
    target with no chains (a sweep that made no run, an unknown name) is an error naming it."""
    if store.get_sweep(target) is not None or store.sweep_run_ids(target):
        chains, _control = sweep_chains(store.root, target)
        if not any(chains.values()):
            raise RunNotFoundError(f"sweep {target!r} has no chains to publish in {store.root} "
                                   f"(none of its runs made a chain: see `driftloop runs`)")  # fmt: skip
        card = store.root / "sweeps" / target / "bias_card.html"
        return [(r, c) for r in sorted(chains) for c in sorted(chains[r])], card if card.is_file() else None
    try:
        run = RunView(store, target)
    except RunNotFoundError as exc:
        if not str(exc).startswith("no run "):  # an ambiguous prefix, an empty name: said as it is
            raise
        raise RunNotFoundError(f"no sweep or run {target!r} in {store.root}: nothing to publish") from None
    found = [(run.id, c.chain) for c in run.chains()]
    if not found:
        raise RunNotFoundError(f"run {run.id} has no chains to publish")
    return found, None


def _small(frame: np.ndarray) -> np.ndarray:
    """A frame as the site shows it: at most :data:`FRAME_SIDE` wide."""
    image = Image.fromarray(frame)
    if image.width <= FRAME_SIDE:
        return frame
    size = (FRAME_SIDE, round(image.height * FRAME_SIDE / image.width))
    return np.asarray(image.resize(size, Image.Resampling.LANCZOS))


def _webp(frame: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(frame).save(out, format="WEBP", quality=FRAME_QUALITY, method=4)
    return out.getvalue()


def _number(value: float | None, fmt: str = "{:.3f}") -> str:
    return "–" if value is None else fmt.format(value).replace("-", "−")


def build_site(
    workspace: str | Path,
    targets: list[str],
    every: int = 1,
    posters: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> Site:
    """Every chain of ``targets`` (run ids or sweep names) as a static site, in memory; ``every``: keep
    every N-th step (the first and the last always); ``posters``: with two posters per chain;
    ``progress(chains done, chains)`` after each chain."""
    if not Store.exists(workspace):  # never create a workspace to publish nothing from
        raise RunNotFoundError(f"no workspace at {workspace}: nothing to publish (name it with -w)")
    store = Store(workspace)
    site = Site()
    rows, cards, chains = [], [], []
    picked: dict[tuple[str, int], None] = {}  # every chain once, in the targets' order
    for target in targets:
        found, card = _chains_of(store, target)
        if card is not None:
            cards.append((target, card))
        picked.update(dict.fromkeys(found))
    runs: dict[str, _Run] = {}
    for done, (run_id, chain) in enumerate(picked, 1):
        if run_id not in runs:
            runs[run_id] = _Run.read(store, run_id)
        run = runs[run_id]
        rows.append(_add_chain(site, run, chain, every, posters))
        info = run.chains[chain]
        chains.append(ChainTableRow(run.view.id, chain, run.view.row.model, info.status, info.input_path,
                                    info.seed, run.view.row.created_at, stabilize=run.stabilize))  # fmt: skip
        if progress is not None:
            progress(done, len(picked))
    for name, card in cards:
        site.files[f"cards/{name}.html"] = card.read_bytes()
    bundles = _add_bundles(site, store, chains)
    names = [n for n, _ in cards]
    site.files["index.html"] = index_page(", ".join(targets), INDEX_COLUMNS, rows, names, bundles)
    site.chains = len(rows)
    store.close()
    return site


def _add_bundles(site: Site, store: Store, chains: list[ChainTableRow]) -> str:
    """``bundles.html`` and a data file per measure the chains have values of; returns the index's line
    about it (a link, or why there is none)."""
    if len(chains) > MAX_CHAINS:
        return f"no bundles of curves: more than {MAX_CHAINS} chains (publish fewer)"
    runs = list(dict.fromkeys(c.run_id for c in chains))
    stabilizers: dict[str, str] = {}  # each row carries its run's stabilizer
    published = {(c.run_id, c.chain) for c in chains}
    offered = ["model"] + [  # a grouping that splits the chains
        g for g in GROUPINGS if g != "model" and len({group_of(c, g, stabilizers) for c in chains}) > 1
    ]
    measures = {}
    for measure in TABLE_ORDER:
        values = [v for v in store.metric_values(measure, runs) if (v[0], v[1]) in published]
        if not values:
            continue
        data = shared_bundle(chains, values, offered, stabilizers)
        text = json.dumps(data, separators=(",", ":"))
        into = f"(window.driftloopBundleData = window.driftloopBundleData || {{}})[{json.dumps(measure)}]"
        site.files[f"bundles/{measure}.js"] = f"{into} = {text};\n".encode()
        measures[measure] = PLOT_LABELS[measure][0] if measure in PLOT_LABELS else measure
    if not measures:
        return "no bundles of curves: these chains have no measures stored (driftloop metrics)"
    for path, asset in ASSETS.items():
        site.files[path] = asset_text(asset).encode()
    site.files["bundles.html"] = bundles_page(measures, offered, len(chains))
    by = ", ".join(GROUPINGS[g] for g in offered)
    return f'<a href="bundles.html">bundles of curves</a>: every chain\'s curve of a measure, by {by}'


@dataclass
class _Run:
    """What the site shows of a run, read once for all its chains: its chains, summaries and costs."""

    view: RunView
    chains: dict[int, ChainRow]
    summaries: dict[int, dict[str, float | None]]
    costs: dict[int, Totals]

    @classmethod
    def read(cls, store: Store, run_id: str) -> _Run:
        view = RunView(store, run_id)  # an unknown id is an error naming it
        per_chain, _total = run_totals(view)
        return cls(view, {c.chain: c for c in view.chains()}, store.chain_summaries(view.id), per_chain)

    @property
    def stabilize(self) -> str:
        return stabilizer_of(self.view.row.config)

    @property
    def arm(self) -> str:
        """The run's arm as people read it (``taef2 + stabilize=colour:lab``, ``webp:quality=80``)."""
        return spec_label(arm_label(self.view.row.model, self.stabilize))


def _add_chain(site: Site, facts: _Run, chain: int, every: int, posters: bool) -> tuple[str, str, list[str]]:
    run = facts.view
    key = f"{run.id}-{chain}"
    frames = run.frame_rows(chain)
    if not frames:
        raise DriftloopError(f"run {run.id} chain {chain} has no frames to publish")
    last = frames[-1].step
    steps = [r.step for r in frames if r.step % every == 0 or r.step == last]
    picks = sorted({steps[round(i * (len(steps) - 1) / (POSTER_STEPS + 1))] for i in range(POSTER_STEPS + 2)})
    shown, full = [], {}
    for step in steps:
        frame = run.frame(chain, step)
        small = _small(frame)
        site.files[f"frames/{key}/{step:04d}.webp"] = _webp(small)
        shown.append((step, small))
        if posters and step in picks:
            full[step] = frame
    site.frames += len(steps)
    site.files[f"animations/{key}.webp"] = webp_animation(shown, total=last)
    summary = facts.summaries.get(chain, {})
    cost = facts.costs.get(chain)
    info = facts.chains[chain]
    label = f"{facts.arm} · {Path(info.input_path).name} · seed {info.seed}"
    half = summary.get("half_life")
    numbers = [
        _number(summary.get("ssim_to_origin.final")),
        "never" if half is None else f"step {half:.0f}",
        _number(summary.get("lab_b_mean.change"), "{:+.2f}"),
        "–"
        if cost is None
        else "unknown"
        if cost.unknown
        else f"{fmt.usd(cost.usd)} · {fmt_water(cost.water_ml)} water",
    ]
    words = [f"SSIM to the original after {last} copies: {numbers[0]}",
             f"half-life (SSIM below 0.5): {numbers[1]}", f"b* drift (+ yellower, − bluer): {numbers[2]}",
             f"cost: {numbers[3]}"]  # fmt: skip
    if posters:
        on_poster = [(s, full[s]) for s in picks]
        site.files[f"posters/{key}.jpg"] = poster(on_poster, label, words, "wide")
        site.files[f"posters/{key}-square.jpg"] = poster(on_poster, label, words, "square")
    site.files[f"chains/{key}.html"] = chain_page(key, label, steps, words, posters)
    return key, label, numbers


def write_site(site: Site, out: str | Path) -> Path:
    """Write the site into ``out`` (a new or empty folder, or one an earlier publish wrote), atomically."""
    target = Path(out)
    if target.exists() and any(target.iterdir()) and not (target / "index.html").is_file():
        raise DriftloopError(f"{target} exists and is not a published site: choose an empty or new folder")
    staging = target.with_name(f".{target.name}.publishing")
    shutil.rmtree(staging, ignore_errors=True)
    for rel, data in site.files.items():
        path = staging / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    if target.exists():
        shutil.rmtree(target)
    os.replace(staging, target)
    return target
