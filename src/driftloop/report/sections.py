"""The sections of a run report, in page order: summary in plain words (+ notes), original vs last frame,
animation, contact sheet, charts (drawn in the browser from the metric rows), chain summary tables, metrics
at selected steps per chain, the caller's extra sections (cost, captions, ...), configuration / versions /
host. Each returns its HTML (empty when it has nothing to show).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from driftloop import fmt
from driftloop.analysis.chains import MEASURE_INFO, ChainSummary, run_overview
from driftloop.analysis.colour_reading import read_colour
from driftloop.analysis.text import rate_word
from driftloop.report.blocks import html_table, img_tag, slug, video_tag
from driftloop.report.blocks import num as _num
from driftloop.report.blocks import sentence as _sentence
from driftloop.report.shell import esc as _esc
from driftloop.report.shell import section as _section

__all__ = [
    "REPORT_STEPS",
    "ReportContext",
    "animation_section",
    "chains_section",
    "charts_section",
    "config_section",
    "extra_sections",
    "frames_section",
    "image_section",
    "metrics_section",
    "summary_section",
]

# Most chains given their own metrics table (the summary tables above list every chain; all the numbers
# are in summary.json and `driftloop export`), so the page does not grow with the number of chains.
MAX_METRIC_TABLES = 12
# Steps shown in the per-chain metrics tables (those a chain has, plus its last step).
REPORT_STEPS: tuple[int, ...] = (0, 1, 2, 5, 10, 25, 50, 75, 100)

# Metric columns of the per-chain tables, in order: (column, header, decimals).
_TABLE_METRICS: tuple[tuple[str, str, int], ...] = (
    ("ssim_to_origin", "SSIM to orig.", 3),
    ("psnr_to_origin", "PSNR to orig. (dB)", 1),
    ("lpips_to_origin", "LPIPS to orig.", 3),
    ("clip_cosine_to_origin", "CLIP cos. to orig.", 3),
    ("dino_cosine_to_origin", "DINO cos. to orig.", 3),
    ("phash_to_origin", "pHash dist. (bits)", 0),
    ("mae_to_origin", "MAE to orig.", 2),
    ("lab_delta_e", "ΔE*ab", 2),
    ("ssim_to_prev", "SSIM to prev.", 3),
    ("lab_l_mean", "L*", 1),
    ("lab_a_mean", "a*", 2),
    ("lab_b_mean", "b*", 2),
    ("lab_chroma_mean", "C*", 1),
    ("white_cast", "White cast", 1),
    ("cct_kelvin", "CCT (K)", 0),
    ("sharpness", "Sharpness", 1),
    ("entropy_bits", "Entropy (bits)", 2),
)
# Similarity metrics shown "at end" in the chain summary table.
_FINAL_COLUMNS = (
    "ssim_to_origin",
    "psnr_to_origin",
    "lpips_to_origin",
    "clip_cosine_to_origin",
    "dino_cosine_to_origin",
)
# Colour measures shown as columns of the chain summary table (change by the last step).
_SUMMARY_DRIFT = ("lab_l_mean", "lab_a_mean", "lab_b_mean", "lab_chroma_mean", "white_cast", "cct_kelvin")


@dataclass(kw_only=True)
class ReportContext:
    """Everything a report shows. Paths must exist when :func:`write_report` runs (missing ones show a
    visible placeholder, never a broken image). ``charts``: draw the metric rows of ``df`` as charts in
    the page (with the inlined chart module). ``extra_sections`` are ``(title, html_body)`` pairs inserted
    as given (the body is NOT escaped; build it with :func:`html_table`, :func:`img_tag`, ``html.escape``).
    """

    title: str
    run_id: str
    model: str
    created: str | float | datetime | None = None
    config: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, Any] = field(default_factory=dict)
    host: dict[str, Any] = field(default_factory=dict)
    sentences: list[str] = field(default_factory=list)
    summaries: list[ChainSummary] = field(default_factory=list)
    df: pd.DataFrame | None = None
    animation: Path | None = None  # an MP4 (embedded as a <video>) or an animated GIF/WebP
    animation_caption: str = "Every copy in order, looping"
    animation_size: tuple[int, int] | None = None  # the video's pixel size, when known
    contact_sheet: Path | None = None
    contact_sheet_caption: str = "Chains as rows, chosen steps as columns"
    first_frame: Path | None = None
    last_frame: Path | None = None
    charts: bool = True
    notes: list[str] = field(default_factory=list)
    extra_sections: list[tuple[str, str]] = field(default_factory=list)


def summary_section(ctx: ReportContext) -> str:
    items = "\n".join(f"<li>{_esc(_sentence(s))}</li>" for s in ctx.sentences) or "<li>No summary.</li>"
    body = f'<ul class="findings">\n{items}\n</ul>'
    body += (
        '<p class="hint">Numbers in brackets are 95% confidence intervals; a drift rate is the average '
        "change per step of a measure (its interval allows for each copy adding its error to the last; none "
        "for fewer than 100 steps). CIELAB: L* lightness, a* green (−) to red (+), "
        "b* blue (−) to yellow (+).</p>"
    )
    if ctx.notes:
        notes = "\n".join(f"<li>{_esc(n)}</li>" for n in ctx.notes)
        body += f'<div class="notes"><h3>Notes</h3><ul>\n{notes}\n</ul></div>'
    return _section("summary", "Summary", body)


def _last_step(ctx: ReportContext) -> str:
    steps = [s.last_step for s in ctx.summaries if s.n_frames]
    if steps:
        return f"step {max(steps)}" if min(steps) == max(steps) else "last step"
    return "last step"


def frames_section(ctx: ReportContext) -> str:
    if ctx.first_frame is None and ctx.last_frame is None:
        return ""
    figures = []
    for path, caption in (
        (ctx.first_frame, "Original (step 0)"),
        (ctx.last_frame, f"Last copy ({_last_step(ctx)})"),
    ):
        if path is None:
            continue
        figures.append(f"<figure>{img_tag(path, caption)}<figcaption>{_esc(caption)}</figcaption></figure>")
    return _section("frames", "Original and last copy", f'<div class="pair">\n{"".join(figures)}\n</div>')


def image_section(anchor: str, title: str, path: Path | None, caption: str, css: str) -> str:
    if path is None:
        return ""
    body = f'<figure class="{css}">{img_tag(path, title)}<figcaption>{_esc(caption)}</figcaption></figure>'
    return _section(anchor, title, body)


def animation_section(ctx: ReportContext) -> str:
    """The animation: an MP4 as a looping muted ``<video>`` (a tenth of a GIF's bytes), else an image."""
    if ctx.animation is None:
        return ""
    if ctx.animation.suffix.lower() in (".mp4", ".webm"):
        media = video_tag(ctx.animation, "Animation", ctx.animation_size)
    else:
        media = img_tag(ctx.animation, "Animation")
    body = f'<figure class="animation">{media}<figcaption>{_esc(ctx.animation_caption)}</figcaption></figure>'
    return _section("animation", "Animation", body)


def charts_section(charts: dict[str, Any]) -> str:
    """Where the charts are drawn (by the inlined chart module, from the chart data in the page)."""
    if not charts.get("charts"):
        return ""
    body = (
        '<div id="charts" class="charts"></div>\n'
        '<noscript><p class="hint">The charts are drawn by the page\'s own script; with scripts off, '
        "<code>driftloop plots RUN</code> writes them as PNG and SVG files.</p></noscript>"
    )
    return _section("plots", "Plots", body)


def _face_cell(s: ChainSummary) -> str:
    if s.face_at_start is None:
        return "–"
    if not s.face_at_start:
        return "no face at step 0"
    return "kept" if s.face_lost_step is None else f"step {s.face_lost_step}"


def chains_section(ctx: ReportContext) -> str:
    chains = [s for s in ctx.summaries if s.n_frames]
    if not chains:
        return ""
    drift_cols = [m for m in _SUMMARY_DRIFT if any(m in s.drift.get(s.last_step, {}) for s in chains)]
    headers = ["Chain", "Last step", "Half-life", "Fixed point"]
    headers += [MEASURE_INFO[m].symbol for m in drift_cols]
    finals = [
        (m, h, d) for m, h, d in _TABLE_METRICS if m in _FINAL_COLUMNS and any(m in s.final for s in chains)
    ]
    headers += [h.replace(" to orig.", " at end") for _, h, _ in finals]
    faces = any(s.face_at_start is not None for s in chains)
    if faces:
        headers.append("Face lost")
    rows = []
    for s in chains:
        if not s.fixed_point_checked:
            fixed = "unknown"
        elif s.fixed_point_step is None:
            fixed = "none"
        else:
            fixed = f"step {s.fixed_point_step}"
        row: list[Any] = [s.chain, s.last_step, "not reached" if s.half_life is None else s.half_life, fixed]
        end = s.drift.get(s.last_step, {})
        row += [fmt.signed(end[m], 0 if m == "cct_kelvin" else 2) if m in end else "–" for m in drift_cols]
        row += [_num(s.final.get(m), d) for m, _, d in finals]
        if faces:
            row.append(_face_cell(s))
        rows.append(row)
    k = chains[0].fixed_point_k
    body = html_table(headers, rows)
    body += (
        f'<p class="hint">Half-life: first step whose SSIM to the original is below 0.5. Fixed point: first '
        f"step after which no pixel changes for {k} steps. Δ: change from the original by the chain's last "
        "step; “at end”: at the chain's last step.</p>"
    )

    rate_cols = [m for m in _SUMMARY_DRIFT if any(m in s.rates for s in chains)]
    if rate_cols and len(chains) > 1:
        rows = []
        for s in chains:
            row = [s.chain]
            for m in rate_cols:
                r = s.rates.get(m)
                d = 0 if m == "cct_kelvin" else 3
                if r is None:
                    row.append("–")
                elif r.has_ci:
                    row.append(f"{fmt.signed(r.slope, d)} {fmt.interval(r.ci_low, r.ci_high, d)}")
                else:
                    row.append(fmt.signed(r.slope, d))
            rows.append(row)
        body += (
            "<h3>Drift rate per step, per chain (average change per step; 95% CI from the chain's own "
            "steps)</h3>"
        )
        body += html_table(["Chain", *[MEASURE_INFO[m].symbol for m in rate_cols]], rows)

    overview = run_overview(chains)
    reading = read_colour(chains)
    rates = overview["rates"]
    if rates:
        rows = []
        for m, r in rates.items():
            info = MEASURE_INFO.get(m)
            unit = info.unit.strip() if info else ""
            d = 0 if m == "cct_kelvin" else 3
            ci = fmt.interval(r.ci_low, r.ci_high, d) if r.has_ci else "–"
            name = info.name if info else m
            if unit:
                name = f"{name[:-1]}, {unit})" if name.endswith(")") else f"{name} ({unit})"
            rows.append(
                [
                    name,
                    fmt.signed(r.slope, d),
                    ci,
                    f"0–{r.max_step}",
                    r.chains,
                    r.images,
                    rate_word(m, r, reading),
                ]
            )
        title = "Drift rate per step" + (
            " (mean of chains; CI across source images, each image's chains averaged first)"
            if len(chains) > 1
            else ""
        )
        body += f"<h3>{_esc(title)}</h3>"
        body += html_table(
            ["Measure", "Per step", "95% CI", "Steps", "Chains", "Images", "Reading"],
            rows,
            text_columns=(0, 6),
        )

    drift = overview["drift"]
    if drift:
        measures = [m for m in _SUMMARY_DRIFT if any(m in d for d in drift.values())]
        rows = []
        for step, cells in drift.items():
            row: list[Any] = [step]
            for m in measures:
                d = 0 if m == "cct_kelvin" else 2
                row.append(fmt.signed(cells[m]["mean"], d) if m in cells else "–")
            row.append(max((c["n"] for c in cells.values()), default=0))
            rows.append(row)
        title = "Change from the original" + (" (mean of chains)" if len(chains) > 1 else "")
        body += f"<h3>{_esc(title)}</h3>"
        body += html_table(["Step", *[MEASURE_INFO[m].symbol for m in measures], "Chains"], rows)
    return _section("chains", "Chain summaries", body)


def metrics_section(ctx: ReportContext) -> str:
    df = ctx.df
    if df is None or df.empty or "step" not in df.columns:
        return ""
    columns = [(c, h, d) for c, h, d in _TABLE_METRICS if c in df.columns]
    if not columns:
        return ""
    chain_col = (
        pd.to_numeric(df["chain"], errors="coerce") if "chain" in df.columns else pd.Series(0, df.index)
    )
    steps_col = pd.to_numeric(df["step"], errors="coerce")
    blocks = []
    all_chains = sorted(int(c) for c in chain_col.dropna().unique())
    for i, chain in enumerate(all_chains[:MAX_METRIC_TABLES]):
        rows_df = (
            df.loc[chain_col == chain].assign(_step=steps_col[chain_col == chain]).dropna(subset=["_step"])
        )
        rows_df = rows_df.sort_values("_step", kind="stable").drop_duplicates("_step", keep="last")
        have = [int(s) for s in rows_df["_step"]]
        if not have:
            continue
        wanted = sorted({s for s in REPORT_STEPS if s in set(have)} | {max(have)})
        picked = rows_df.set_index(rows_df["_step"].astype(int)).loc[wanted]
        rows = [[step, *[_num(picked.at[step, c], d) for c, _, d in columns]] for step in wanted]
        table = html_table(["Step", *[h for _, h, _ in columns]], rows)
        open_attr = " open" if i == 0 else ""
        label = f"Chain {chain} ({len(have)} frames, last step {max(have)})"
        blocks.append(f"<details{open_attr}><summary>{_esc(label)}</summary>{table}</details>")
    if not blocks:
        return ""
    if len(all_chains) > MAX_METRIC_TABLES:
        rest = len(all_chains) - MAX_METRIC_TABLES
        blocks.append(
            f'<p class="hint">The first {MAX_METRIC_TABLES} chains of {len(all_chains)}; the other {rest} '
            "are in <code>summary.json</code> and <code>driftloop export RUN</code>.</p>"
        )
    return _section("metrics", "Metrics at selected steps", "\n".join(blocks))


def _kv_table(title: str, data: dict[str, Any]) -> str:
    if not data:
        return ""
    rows = [
        [k, v if isinstance(v, str) else json.dumps(v, default=str, ensure_ascii=False)]
        for k, v in data.items()
    ]
    return f"<div><h3>{_esc(title)}</h3>{html_table(['Name', 'Value'], rows, text_columns=(0, 1))}</div>"


def _setting(value: Any) -> str:
    """A configuration value as a table cell: a quantity as "value unit", a list of plain values joined, an
    input as "path (sha256 prefix)", anything else as compact JSON."""
    if isinstance(value, dict) and "value" in value and "unit" in value:
        return f"{value['value']} {value['unit']}"
    if isinstance(value, dict) and "path" in value and "sha256" in value:
        return f"{value['path']} (sha256 {str(value['sha256'])[:12]}…)"
    if isinstance(value, list) and all(isinstance(v, dict) and "path" in v for v in value):
        return "; ".join(_setting(v) for v in value)
    if isinstance(value, list) and all(not isinstance(v, dict | list) for v in value):
        return ", ".join(str(v) for v in value) or "none"
    if value is None:
        return "none"
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, ensure_ascii=False)


def _settings(data: dict[str, Any], prefix: str = "", depth: int = 0) -> list[list[str]]:
    """(name, value) rows: nested settings as dotted names (``metrics.faces``), two levels deep."""
    rows: list[list[str]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        plain = not isinstance(value, dict) or ("value" in value and "unit" in value)
        if plain or depth >= 2 or not value:
            rows.append([name, _setting(value)])
        else:
            rows += _settings(value, f"{name}.", depth + 1)
    return rows


def config_section(ctx: ReportContext) -> str:
    """The run's settings as a table, folded: the cost factors (long, with their sources) in a table of
    their own, and the stored JSON one more click away for whoever wants it verbatim."""
    config = dict(ctx.config)
    cost = config.pop("cost", None)
    body = ""
    if config or cost:
        rows = _settings(config)
        table = html_table(["Setting", "Value"], rows, text_columns=(0, 1))
        if isinstance(cost, dict) and cost:
            factors = html_table(["Factor", "Value"], _settings(cost), text_columns=(0, 1))
            table += f"<details><summary>Cost factors the run was made with</summary>{factors}</details>"
        raw = json.dumps(ctx.config, indent=2, ensure_ascii=False, default=str)
        table += f"<details><summary>As stored (JSON)</summary><pre>{_esc(raw)}</pre></details>"
        body = (
            f'<details class="config"><summary>Configuration ({len(rows)} settings)</summary>{table}'
            "</details>"
        )
    kv = _kv_table("Versions", ctx.versions) + _kv_table("Host", ctx.host)
    if kv:
        body += f'<div class="kv">{kv}</div>'
    return _section("config", "Configuration and versions", body)


def extra_sections(ctx: ReportContext, taken: set[str]) -> list[tuple[str, str, str]]:
    out = []
    for title, body in ctx.extra_sections:
        anchor = base = slug(title)
        n = 2
        while anchor in taken:
            anchor, n = f"{base}-{n}", n + 1
        taken.add(anchor)
        out.append((anchor, title, _section(anchor, title, body)))
    return out
