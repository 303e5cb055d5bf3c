"""The HTML report of a run: one self-contained file that opens anywhere, offline, and can be mailed around.

Everything is inside the file: images as ``data:`` URIs (GIF, PNG, JPEG, WebP, SVG), CSS inline, the chart
module and its library (uPlot) inline with the metric rows as JSON, no web fonts, no links out. The
Content-Security-Policy (``default-src 'none'``; scripts allowed only by their sha256) makes the browser
refuse any network fetch, so a report can never phone home even if an extra section tried. Every piece of
text from the run (title, config, sentences, notes, captions) is HTML-escaped; only the bodies of
``extra_sections`` are inserted as given, so callers build them with :func:`html_table`, :func:`img_tag`
and ``html.escape``. The sections are in :mod:`driftloop.report.sections`, the page shell (stylesheet,
skeleton, CSP) in :mod:`driftloop.report.shell`.
"""

from __future__ import annotations

import json
from pathlib import Path

from driftloop._fs import atomic_write
from driftloop.report.blocks import created_text, data_uri, html_table, img_tag
from driftloop.report.charts import CHARTS_JS, UPLOT_CSS, UPLOT_JS, asset_text, chart_data
from driftloop.report.sections import (
    REPORT_STEPS,
    ReportContext,
    animation_section,
    chains_section,
    charts_section,
    config_section,
    extra_sections,
    frames_section,
    image_section,
    metrics_section,
    summary_section,
)
from driftloop.report.shell import esc, page

__all__ = [
    "REPORT_STEPS",
    "ReportContext",
    "data_uri",
    "html_table",
    "img_tag",
    "render_report",
    "write_report",
]

# Draws every chart of the page from its chart data (a JSON block, which the CSP does not run).
_DRAW = 'DriftCharts.renderAll(document.getElementById("charts"), ' \
    'JSON.parse(document.getElementById("chart-data").textContent));'  # fmt: skip


def _chart_data_block(charts: dict) -> str:
    """The chart data as a JSON block; ``<`` escaped so no value can close the element."""
    text = json.dumps(charts, ensure_ascii=False, allow_nan=False, separators=(",", ":")).replace(
        "<", "\\u003c"
    )
    return f'<script type="application/json" id="chart-data">{text}</script>'


def render_report(ctx: ReportContext) -> str:
    """The report as an HTML string (what :func:`write_report` writes)."""
    charts = chart_data(ctx.df) if ctx.charts else {"charts": []}
    parts: list[tuple[str, str, str]] = [("summary", "Summary", summary_section(ctx))]
    parts.append(("frames", "Original and last", frames_section(ctx)))
    parts.append(("animation", "Animation", animation_section(ctx)))
    sheet = image_section("contact-sheet", "Contact sheet", ctx.contact_sheet, ctx.contact_sheet_caption,
                          "sheet")  # fmt: skip
    parts.append(("contact-sheet", "Contact sheet", sheet))
    parts.append(("plots", "Plots", charts_section(charts)))
    parts.append(("chains", "Chain summaries", chains_section(ctx)))
    parts.append(("metrics", "Metrics", metrics_section(ctx)))
    taken = {anchor for anchor, _, _ in parts} | {"config"}
    parts += extra_sections(ctx, taken)
    parts.append(("config", "Configuration", config_section(ctx)))
    parts = [p for p in parts if p[2]]

    meta = [f"run <code>{esc(ctx.run_id)}</code>", f"model <code>{esc(ctx.model)}</code>"]
    created = created_text(ctx.created)
    if created:
        meta.append(esc(created))
    chains = [s for s in ctx.summaries if s.n_frames]
    if chains:
        last = max(s.last_step for s in chains)
        meta.append(f"{len(chains)} chain{'s' if len(chains) != 1 else ''}, up to step {last}")
    version = ctx.versions.get("driftloop", "")
    footer = (
        "Made by driftloop"
        + (f" {version}" if version else "")
        + "; a self-contained file, viewable offline."
    )
    body = "\n".join(p[2] for p in parts)
    styles: list[str] = []
    scripts: list[str] = []
    if charts["charts"]:
        body += "\n" + _chart_data_block(charts)
        styles = [asset_text(UPLOT_CSS)]
        scripts = [asset_text(UPLOT_JS), asset_text(CHARTS_JS), _DRAW]
    return page(
        ctx.title,
        "".join(f"<span>{m}</span>" for m in meta),
        [(anchor, label) for anchor, label, _ in parts],
        body,
        footer,
        styles,
        scripts,
    )


def write_report(path: Path | str, ctx: ReportContext) -> Path:
    """Write the report to ``path`` atomically (temp file in the same folder, then rename); return it."""
    path = Path(path)
    text = render_report(ctx)
    with atomic_write(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
