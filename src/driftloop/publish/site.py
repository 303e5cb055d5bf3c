"""``driftloop publish``: runs and sweeps as a static site that opens from a folder, offline, with no server.

The site is built in memory first (:func:`build_site`), so its size is known and stated before anything is
written; :func:`write_site` then writes it into a fresh folder beside the target and renames it into place,
so an interrupted publish leaves no half-written site. Every link and image is relative and every script
is inline: the pages make no request outside their folder.

Layout: ``index.html`` (every chain with its last frame and its stored numbers), ``chains/RUN-C.html`` (the
chain's frames, thinned with ``every``, on a slider), ``frames/RUN-C/SSSS.webp``, ``posters/RUN-C.png``
(1200×630) and ``RUN-C-square.png`` (1080×1080), and a sweep's ``bias_card.html`` when it has one.
"""

from __future__ import annotations

import html
import io
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from driftloop import fmt
from driftloop.cost import run_totals
from driftloop.cost.accounting import fmt_water
from driftloop.errors import DriftloopError
from driftloop.publish.poster import poster
from driftloop.store import RunView, Store
from driftloop.sweep import sweep_chains

FRAME_SIDE = 256  # frames of the site: WebP at most this wide
FRAME_QUALITY = 80
POSTER_STEPS = 3
INDEX_COLUMNS = (
    "last copy",
    "chain",
    "SSIM to the original, last",
    "half-life",
    "Δb* (last − original)",
    "cost",
)  # steps between the original and the last copy on a poster


@dataclass
class Site:
    """A site in memory: relative path -> bytes, and what it shows."""

    files: dict[str, bytes] = field(default_factory=dict)
    chains: int = 0
    frames: int = 0

    @property
    def size(self) -> int:
        return sum(len(b) for b in self.files.values())


def parse_every(text: str) -> int:
    """``every:N`` (keep every N-th step, the first and the last always) as N."""
    match = re.fullmatch(r"every:(\d+)", text.strip())
    if not match or int(match[1]) < 1:
        raise DriftloopError(f"--frames {text!r}: expected every:N with N ≥ 1, e.g. every:5")
    return int(match[1])


def _chains_of(store: Store, target: str) -> tuple[list[tuple[str, int]], Path | None]:
    """The (run, chain)s a target names (a sweep's chains, or every chain of a run) and a sweep's card."""
    if store.get_sweep(target) is not None or store.sweep_run_ids(target):
        chains, _control = sweep_chains(store.root, target)
        card = store.root / "sweeps" / target / "bias_card.html"
        return [(r, c) for r in sorted(chains) for c in sorted(chains[r])], card if card.is_file() else None
    run = RunView(store, target)  # an unknown id is an error naming it
    return [(run.id, c.chain) for c in run.chains()], None


def _webp(frame) -> bytes:
    image = Image.fromarray(frame)
    if image.width > FRAME_SIDE:
        image = image.resize(
            (FRAME_SIDE, round(image.height * FRAME_SIDE / image.width)), Image.Resampling.LANCZOS
        )
    out = io.BytesIO()
    image.save(out, format="WEBP", quality=FRAME_QUALITY, method=4)
    return out.getvalue()


def _number(value: float | None, fmt: str = "{:.3f}") -> str:
    return "–" if value is None else fmt.format(value).replace("-", "−")


PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
<style>body{{font:15px/1.4 system-ui,sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;color:#222}}
table{{border-collapse:collapse}}td,th{{padding:.3em .6em;border-bottom:1px solid #ddd;text-align:left}}
img{{image-rendering:auto}}.frames img{{width:256px;height:auto}}.muted{{color:#777}}</style></head>
<body>{body}</body></html>"""


def _chain_page(key: str, label: str, steps: list[int], numbers: list[str]) -> str:
    frames = json.dumps([f"../frames/{key}/{s:04d}.webp" for s in steps])
    body = f"""<p><a href="../index.html">← all chains</a></p><h1>{html.escape(label)}</h1>
<div class="frames"><figure><img src="../frames/{key}/{steps[0]:04d}.webp" alt="original"><figcaption>original
</figcaption></figure><figure><img id="frame" src="../frames/{key}/{steps[-1]:04d}.webp" alt="copy">
<figcaption>copy <output id="step">{steps[-1]}</output></figcaption></figure></div>
<input id="slider" type="range" min="0" max="{len(steps) - 1}" value="{len(steps) - 1}" aria-label="step"
style="width:512px">
<ul>{"".join(f"<li>{html.escape(n)}</li>" for n in numbers)}</ul>
<p><a href="../posters/{key}.png">poster</a> · <a href="../posters/{key}-square.png">square poster</a></p>
<script>"use strict";(function(){{const f={frames},s={json.dumps(steps)};
const sl=document.getElementById("slider");
sl.addEventListener("input",()=>{{const i=Number(sl.value);document.getElementById("frame").src=f[i];
document.getElementById("step").textContent=s[i];}});}})();</script>"""
    return PAGE.format(title=html.escape(label), body=body)


def build_site(workspace: str | Path, targets: list[str], every: int = 1) -> Site:
    """Every chain of ``targets`` (run ids or sweep names) as a static site, in memory."""
    store = Store(workspace)
    site = Site()
    rows, cards = [], []
    seen: set[tuple[str, int]] = set()
    for target in targets:
        chains, card = _chains_of(store, target)
        if card is not None:
            cards.append((target, card))
        for run_id, chain in chains:
            if (run_id, chain) in seen:
                continue
            seen.add((run_id, chain))
            rows.append(_add_chain(site, store, RunView(store, run_id), chain, every))
    for name, card in cards:
        site.files[f"cards/{name}.html"] = card.read_bytes()
    table = "".join(
        f'<tr><td><a href="chains/{k}.html"><img src="frames/{k}/{last:04d}.webp" width="64" alt="last copy">'
        f'</a></td><td><a href="chains/{k}.html">{html.escape(label)}</a></td>'
        + "".join(f"<td>{html.escape(n)}</td>" for n in numbers)
        + "</tr>"
        for k, label, last, numbers in rows
    )
    links = "".join(
        f'<li><a href="cards/{html.escape(n)}.html">bias card of {html.escape(n)}</a></li>' for n, _ in cards
    )
    head = "".join(f"<th>{h}</th>" for h in INDEX_COLUMNS)
    body = (
        f"<h1>{html.escape(', '.join(targets))}</h1>"
        f"<p class=muted>{len(rows)} chain(s), made with driftloop</p><ul>{links}</ul>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{table}</tbody></table>"
    )
    site.files["index.html"] = PAGE.format(
        title="driftloop · " + html.escape(", ".join(targets)), body=body
    ).encode()
    site.chains = len(rows)
    store.close()
    return site


def _add_chain(
    site: Site, store: Store, run: RunView, chain: int, every: int
) -> tuple[str, str, int, list[str]]:
    key = f"{run.id}-{chain}"
    frames = run.frame_rows(chain)
    if not frames:
        raise DriftloopError(f"run {run.id} chain {chain} has no frames to publish")
    last = frames[-1].step
    steps = [r.step for r in frames if r.step % every == 0 or r.step == last]
    for step in steps:
        site.files[f"frames/{key}/{step:04d}.webp"] = _webp(run.frame(chain, step))
    site.frames += len(steps)
    summary = store.chain_summaries(run.id).get(chain, {})
    per_chain, _total = run_totals(run)
    cost = per_chain.get(chain)
    info = next(c for c in run.chains() if c.chain == chain)
    label = f"{run.row.model} · {Path(info.input_path).name} · seed {info.seed}"
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
    picks = sorted({steps[round(i * (len(steps) - 1) / (POSTER_STEPS + 1))] for i in range(POSTER_STEPS + 2)})
    shown = [(s, run.frame(chain, s)) for s in picks]
    site.files[f"posters/{key}.png"] = poster(shown, label, words, "wide")
    site.files[f"posters/{key}-square.png"] = poster(shown, label, words, "square")
    site.files[f"chains/{key}.html"] = _chain_page(key, label, steps, words).encode()
    return key, label, last, numbers


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
