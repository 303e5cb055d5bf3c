"""The pages of a published site: the index, a chain's page and the bundles page, as HTML text.

Every link and image is relative to the page and every script is the site's own (``assets/``) or inline, so
a page makes no request outside its folder; data a page draws is in a ``<script>`` (``file://`` forbids
``fetch``).
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence

from driftloop.analysis.curves import MIN_BAND_CHAINS
from driftloop.report.bundles import GROUPINGS

FIRST_MEASURE = "ssim_to_origin"
PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>{head}
<style>body{{font:15px/1.4 system-ui,sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;color:#222}}
table{{border-collapse:collapse}}td,th{{padding:.3em .6em;border-bottom:1px solid #ddd;text-align:left}}
.frames{{display:flex;flex-wrap:wrap;gap:1em}}.frames figure{{margin:0}}.frames img{{width:256px;height:auto}}
.muted{{color:#777}}.bundle{{min-height:460px}}.bundle .u-over{{cursor:pointer}}
.bundle-legend{{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:.4em 1.4em}}
.bundle-legend .swatch{{display:inline-block;width:1.4em;height:.7em;margin-right:.4em;vertical-align:middle}}
</style></head><body>{body}</body></html>"""


def page(title: str, body: str, head: str = "") -> bytes:
    """A page of the site: ``title`` (plain text), ``body`` and ``head`` (HTML)."""
    return PAGE.format(title=html.escape(title), head=head, body=body).encode()


def chain_page(key: str, label: str, steps: Sequence[int], lines: Sequence[str], posters: bool) -> bytes:
    """A chain's page: the original, the copy at the slider's step (kept steps only; ``?step=`` opens the
    kept step nearest it, so a bundle's click lands at that moment) and the chain's animation."""
    frames = json.dumps([f"../frames/{key}/{s:04d}.webp" for s in steps])
    shares = (
        f'<p><a href="../posters/{key}.jpg">poster (1200×630)</a> · '
        f'<a href="../posters/{key}-square.jpg">square poster (1080×1080)</a></p>'
        if posters
        else ""
    )
    body = f"""<p><a href="../index.html">← all chains</a> · <a href="../bundles.html">bundles of curves</a>
</p><h1>{html.escape(label)}</h1>
<div class="frames"><figure><img src="../frames/{key}/{steps[0]:04d}.webp" alt="original"><figcaption>original
</figcaption></figure><figure><img id="frame" src="../frames/{key}/{steps[-1]:04d}.webp" alt="copy">
<figcaption>copy <output id="step">{steps[-1]}</output></figcaption></figure>
<figure><img id="animation" src="../animations/{key}.webp" alt="the chain as an animation">
<figcaption>every kept step, looping</figcaption></figure></div>
<input id="slider" type="range" min="0" max="{len(steps) - 1}" value="{len(steps) - 1}" aria-label="step"
style="width:512px">
<ul>{"".join(f"<li>{html.escape(n)}</li>" for n in lines)}</ul>{shares}
<script>"use strict";(function(){{const f={frames},s={json.dumps(list(steps))};
const sl=document.getElementById("slider");
function show(i){{sl.value=i;document.getElementById("frame").src=f[i];
document.getElementById("step").textContent=s[i];}}
sl.addEventListener("input",()=>show(Number(sl.value)));
const want=Number(new URLSearchParams(location.search).get("step"));
if(location.search.includes("step=")&&Number.isFinite(want)){{let best=0;
s.forEach((v,i)=>{{if(Math.abs(v-want)<Math.abs(s[best]-want))best=i;}});show(best);}}}})();</script>"""
    return page(label, body)


def index_page(
    title: str,
    head: Sequence[str],
    rows: Sequence[tuple[str, str, Sequence[str]]],
    cards: Sequence[str],
    bundles: str,
) -> bytes:
    """The index: the bundles (``bundles``: its link, or why there is none), each sweep's card, and every
    chain (key, label, numbers) with its animation as thumbnail."""
    table = "".join(
        f'<tr><td><a href="chains/{k}.html"><img src="animations/{k}.webp" width="96" loading="lazy" '
        f'alt="the chain as an animation"></a></td>'
        f'<td><a href="chains/{k}.html">{html.escape(label)}</a></td>'
        + "".join(f"<td>{html.escape(n)}</td>" for n in numbers)
        + "</tr>"
        for k, label, numbers in rows
    )
    links = "".join(
        f'<li><a href="cards/{html.escape(n)}.html">bias card of {html.escape(n)}</a></li>' for n in cards
    )
    columns = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = (
        f"<h1>{html.escape(title)}</h1><p class=muted>{len(rows)} chain(s), made with driftloop</p>"
        f"<ul><li>{bundles}</li>{links}</ul>"
        f"<table><thead><tr>{columns}</tr></thead><tbody>{table}</tbody></table>"
    )
    return page("driftloop · " + title, body)


def bundles_page(measures: Mapping[str, str], groupings: Sequence[str], n_chains: int) -> bytes:
    """Every published chain's curve of a measure, grouped, with each group's mean and band: the chart
    module's ``bundles.js`` drawing ``bundles/MEASURE.js`` (the measure and grouping from ``?measure=&by=``,
    chosen among ``measures`` (name -> title) and ``groupings``)."""
    options = "".join(  # SSIM to the original first shown, as in the gallery
        f'<option value="{html.escape(m)}"{" selected" * (m == FIRST_MEASURE)}>{html.escape(t)}</option>'
        for m, t in measures.items()
    )
    by = "".join(f'<option value="{g}">{html.escape(GROUPINGS[g])}</option>' for g in groupings)
    labels = json.dumps(dict(measures)).replace("<", "\\u003c")  # no "</script>" can end it early
    head = """<link rel="stylesheet" href="assets/uPlot.min.css">
<script src="assets/uPlot.iife.min.js" defer></script><script src="assets/charts.js" defer></script>
<script src="assets/bundles.js" defer></script>"""
    body = f"""<p><a href="index.html">← all chains</a></p><h1>Bundles of curves</h1>
<form class="filters" method="get" action="bundles.html" id="bundle-form">
<label>measure <select name="measure">{options}</select></label>
<label>grouped by <select name="by">{by}</select></label><noscript><button>show</button></noscript></form>
<p class="muted">{n_chains} chain(s)</p>
<div id="bundle" class="bundle" data-files="bundles/"
 data-link="chains/{{run}}-{{chain}}.html?step={{step}}"></div>
<p id="bundle-tip" class="bundle-tip muted">hover a curve to name its chain; click to open it at that step</p>
<ul id="bundle-legend" class="bundle-legend"></ul>
<p class="muted">Each group's thick line is its mean over source images (the chains of one picture averaged
first); the shaded band is the 95% interval of that mean at each step (Student's t over the source images'
means), drawn only where the group has at least {MIN_BAND_CHAINS} source images.</p>
<script type="application/json" id="measure-labels">{labels}</script>"""
    return page("driftloop · bundles of curves", body, head)
