"""The HTML report of a run: one self-contained file that opens anywhere, offline, and can be mailed around.

Everything is inside the file: images as ``data:`` URIs (GIF, PNG, JPEG, WebP, SVG), CSS inline, no
scripts, no web fonts, no links out. A Content-Security-Policy meta tag (``default-src 'none'``) makes
the browser refuse any network fetch, so a report can never phone home even if an extra section tried.
Every piece of text from the run (title, config, sentences, notes, captions) is HTML-escaped; only the
bodies of ``extra_sections`` are inserted as given, so callers build them with :func:`html_table`,
:func:`img_tag` and ``html.escape``.

Sections, in order: summary in plain words (+ notes), original vs last frame, animation, contact sheet,
plots, chain summary tables, metrics at selected steps per chain, the caller's extra sections (cost,
captions, ...), configuration / versions / host.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image

from driftloop._fs import atomic_write
from driftloop.analysis.chains import MEASURE_INFO, ChainSummary, run_overview
from driftloop.analysis.text import fmt_interval, fmt_signed
from driftloop.measures import PLOT_LABELS

__all__ = [
    "REPORT_STEPS",
    "ReportContext",
    "data_uri",
    "html_table",
    "img_tag",
    "render_report",
    "write_report",
]

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

_MIME = {
    ".png": "image/png",
    ".gif": "image/gif",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
}
_SMALL_FRAME = 256  # frames narrower than this are scaled up with crisp (pixelated) rendering

_CSS = """
:root { --fg: #1d2327; --muted: #5f6b73; --line: #dde3e8; --bg: #ffffff; --soft: #f5f7f9;
        --accent: #2f6f9f; --note-bg: #fff8e1; --note-line: #f0c36d; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; background: var(--bg); color: var(--fg); line-height: 1.5;
       font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header, main, footer { max-width: 1120px; margin: 0 auto; padding: 0 20px; }
header { padding-top: 28px; padding-bottom: 8px; border-bottom: 1px solid var(--line); }
h1 { font-size: 1.7rem; margin: 0 0 6px; line-height: 1.25; }
h2 { font-size: 1.25rem; margin: 0 0 12px; padding-top: 8px; }
h3 { font-size: 1.02rem; margin: 18px 0 8px; }
.meta { color: var(--muted); margin: 0 0 10px; }
.meta span + span::before { content: " · "; color: #b0b8be; }
nav { margin: 8px 0 4px; font-size: 0.92rem; }
nav a { color: var(--accent); text-decoration: none; margin-right: 14px; white-space: nowrap; }
nav a:hover { text-decoration: underline; }
section { padding: 18px 0 22px; border-bottom: 1px solid var(--line); }
section:last-child { border-bottom: 0; }
ul.findings { margin: 0; padding-left: 1.2em; }
ul.findings li { margin: 3px 0; }
.hint { color: var(--muted); font-size: 0.88rem; margin: 10px 0 0; }
.notes { background: var(--note-bg); border-left: 4px solid var(--note-line); padding: 8px 14px;
         margin-top: 14px; border-radius: 4px; }
.notes h3 { margin: 2px 0 4px; font-size: 0.95rem; }
.notes ul { margin: 0; padding-left: 1.2em; }
figure { margin: 0; }
figcaption { color: var(--muted); font-size: 0.88rem; margin-top: 4px; }
img { max-width: 100%; height: auto; display: block; }
img.pixel { image-rendering: pixelated; }
.pair { display: grid; grid-template-columns: repeat(auto-fit, minmax(260px, 1fr)); gap: 16px; }
.pair img { width: 100%; border: 1px solid var(--line); border-radius: 4px; }
.animation img { width: min(100%, 560px); border: 1px solid var(--line); border-radius: 4px; }
.sheet img { border: 1px solid var(--line); border-radius: 4px; }
.plots { display: grid; grid-template-columns: repeat(auto-fit, minmax(380px, 1fr)); gap: 18px; }
.plots figure.wide { grid-column: 1 / -1; }
.plots img { width: 100%; border: 1px solid var(--line); border-radius: 4px; background: #fff; }
.table-wrap { overflow-x: auto; margin: 6px 0 4px; }
table { border-collapse: collapse; font-size: 0.88rem; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
th { background: var(--soft); font-weight: 600; position: sticky; top: 0; }
th:first-child, td:first-child { text-align: left; }
td.text, th.text { text-align: left; white-space: normal; }
tbody tr:nth-child(even) { background: #fafbfc; }
details { margin: 6px 0; border: 1px solid var(--line); border-radius: 4px; padding: 4px 10px; }
details[open] { padding-bottom: 10px; }
summary { cursor: pointer; font-weight: 600; padding: 4px 0; }
pre { background: var(--soft); border: 1px solid var(--line); border-radius: 4px; padding: 10px 12px;
      overflow-x: auto; font-size: 0.84rem; line-height: 1.4; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace; }
.kv { display: grid; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); gap: 16px; }
.missing { color: #9a3b3b; font-style: italic; }
footer { color: var(--muted); font-size: 0.84rem; padding-top: 14px; padding-bottom: 28px; }
"""

_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


@dataclass(kw_only=True)
class ReportContext:
    """Everything a report shows. Paths must exist when :func:`write_report` runs (missing ones show a
    visible placeholder, never a broken image). ``plots`` lists PNG or SVG files; when both exist for one
    stem the SVG is embedded. ``extra_sections`` are ``(title, html_body)`` pairs inserted as given (the
    body is NOT escaped; build it with :func:`html_table`, :func:`img_tag`, ``html.escape``).
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
    animation: Path | None = None
    contact_sheet: Path | None = None
    first_frame: Path | None = None
    last_frame: Path | None = None
    plots: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extra_sections: list[tuple[str, str]] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------- helpers


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _mime(path: Path, data: bytes) -> str:
    mime = _MIME.get(path.suffix.lower())
    if mime:
        return mime
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if b"<svg" in data[:2000]:
        return "image/svg+xml"
    raise ValueError(f"{path}: not an image type a report can embed (png, gif, jpeg, webp, svg)")


def data_uri(path: Path | str) -> str:
    """The file as a base64 ``data:`` URI, its MIME type from the suffix (or the first bytes)."""
    path = Path(path)
    data = path.read_bytes()
    return f"data:{_mime(path, data)};base64,{base64.b64encode(data).decode('ascii')}"


def _size(path: Path) -> tuple[int, int] | None:
    """Pixel size of a raster image, or the width/height (viewBox) of an SVG; None if unknown."""
    try:
        if path.suffix.lower() == ".svg":
            head = path.read_text(encoding="utf-8", errors="replace")[:4000]
            box = re.search(r'viewBox="\s*[-\d.]+[\s,]+[-\d.]+[\s,]+([\d.]+)[\s,]+([\d.]+)\s*"', head)
            if box:
                return round(float(box.group(1))), round(float(box.group(2)))
            return None
        with Image.open(path) as im:
            return im.size
    except (OSError, ValueError):
        return None


def img_tag(path: Path | str, alt: str, css_class: str = "") -> str:
    """An ``<img>`` with the file embedded as a data URI (and its intrinsic size), or a visible placeholder
    when the file is missing."""
    path = Path(path)
    if not path.is_file():
        return f'<p class="missing">{_esc(alt)}: file not found ({_esc(path)})</p>'
    size = _size(path)
    classes = css_class
    if size and size[0] < _SMALL_FRAME and path.suffix.lower() != ".svg":
        classes = f"{classes} pixel".strip()
    attrs = f' width="{size[0]}" height="{size[1]}"' if size else ""
    cls = f' class="{_esc(classes)}"' if classes else ""
    return f'<img src="{data_uri(path)}" alt="{_esc(alt)}"{attrs}{cls} loading="eager">'


def html_table(
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    text_columns: Iterable[int] = (0,),
    caption: str = "",
) -> str:
    """A simple escaped table in a horizontally scrolling wrapper; cells are str()-ed and escaped.

    Columns in ``text_columns`` are left-aligned (others are numbers, right-aligned).
    """
    text = set(text_columns)

    def cls(i: int) -> str:
        return ' class="text"' if i in text else ""

    head = "".join(f"<th{cls(i)}>{_esc(h)}</th>" for i, h in enumerate(headers))
    body = "\n".join(
        "<tr>" + "".join(f"<td{cls(i)}>{_esc(c)}</td>" for i, c in enumerate(row)) + "</tr>" for row in rows
    )
    cap = f"<caption>{_esc(caption)}</caption>" if caption else ""
    return (
        f'<div class="table-wrap"><table>{cap}<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>'
        "</table></div>"
    )


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


def _created(value: str | float | datetime | None) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, int | float):
        value = datetime.fromtimestamp(float(value), tz=UTC)
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return str(value)


def _num(value: Any, decimals: int) -> str:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return "–"
    if math.isnan(x):
        return "–"
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    return f"{x:.{decimals}f}".replace("-", "−")


def _sentence(text: str) -> str:
    """Capitalise a sentence, unless it starts with a symbol or a name whose case matters (``a*``)."""
    text = text.strip()
    first = re.split(r"[\s:,(]", text, maxsplit=1)[0]
    if first.isalpha() and first.islower():
        return text[:1].upper() + text[1:]
    return text


def _plot_caption(path: Path) -> str:
    stem = path.stem
    if stem == "fidelity_log":
        return "Fidelity to the original: SSIM and PSNR against the step, log step axis"
    if stem == "ab_trajectory":
        return "Mean colour of each chain in the CIELAB a*–b* plane; circle = start, square = last step"
    if stem.startswith("metric_"):
        column = stem[len("metric_") :]
        title = PLOT_LABELS.get(column, (column, ""))[0]
        return (
            f"{title}: every chain and their mean; the 95% band (across source images, each image's chains "
            "averaged first) where at least 3 images have a value"
        )
    if stem == "all_metrics":
        return "Every measured metric against the step (chains, their mean and band as above)"
    return stem.replace("_", " ")


def _pick_plots(plots: Sequence[Path]) -> list[Path]:
    """One file per stem (SVG preferred over PNG), in the given order."""
    chosen: dict[Path, Path] = {}
    for p in map(Path, plots):
        key = p.with_suffix("")
        if key not in chosen or (p.suffix.lower() == ".svg" and chosen[key].suffix.lower() != ".svg"):
            chosen[key] = p
    return list(chosen.values())


# --------------------------------------------------------------------------------------------- sections


def _section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{_esc(anchor)}">\n<h2>{_esc(title)}</h2>\n{body}\n</section>'


def _summary_section(ctx: ReportContext) -> str:
    items = "\n".join(f"<li>{_esc(_sentence(s))}</li>" for s in ctx.sentences) or "<li>No summary.</li>"
    body = f'<ul class="findings">\n{items}\n</ul>'
    body += (
        '<p class="hint">Numbers in brackets are 95% confidence intervals; a drift rate is the least-squares '
        "slope of a measure against the step. CIELAB: L* lightness, a* green (−) to red (+), "
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


def _frames_section(ctx: ReportContext) -> str:
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


def _image_section(anchor: str, title: str, path: Path | None, caption: str, css: str) -> str:
    if path is None:
        return ""
    body = f'<figure class="{css}">{img_tag(path, title)}<figcaption>{_esc(caption)}</figcaption></figure>'
    return _section(anchor, title, body)


def _plots_section(ctx: ReportContext) -> str:
    plots = _pick_plots(ctx.plots)
    if not plots:
        return ""
    figures = []
    for p in plots:
        size = _size(p) if p.is_file() else None
        wide = " wide" if size and size[1] and size[0] / size[1] >= 2 else ""
        caption = _plot_caption(p)
        image = img_tag(p, caption)
        figures.append(f'<figure class="plot{wide}">{image}<figcaption>{_esc(caption)}</figcaption></figure>')
    return _section("plots", "Plots", f'<div class="plots">\n{chr(10).join(figures)}\n</div>')


def _reading(measure: str, rate: Any) -> str:
    info = MEASURE_INFO.get(measure)
    if not rate.has_ci:
        return "too few points"
    if not rate.clear:
        return "no clear change"
    if info is None:
        return "rises" if rate.slope > 0 else "falls"
    return info.up_word if rate.slope > 0 else info.down_word


def _face_cell(s: ChainSummary) -> str:
    if s.face_at_start is None:
        return "–"
    if not s.face_at_start:
        return "no face at step 0"
    return "kept" if s.face_lost_step is None else f"step {s.face_lost_step}"


def _chains_section(ctx: ReportContext) -> str:
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
        row += [fmt_signed(end[m], 0 if m == "cct_kelvin" else 2) if m in end else "–" for m in drift_cols]
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
                    row.append(f"{fmt_signed(r.slope, d)} {fmt_interval(r, d)}")
                else:
                    row.append(fmt_signed(r.slope, d))
            rows.append(row)
        body += "<h3>Drift rate per step, per chain (95% CI of the chain's own fit)</h3>"
        body += html_table(["Chain", *[MEASURE_INFO[m].symbol for m in rate_cols]], rows)

    overview = run_overview(chains)
    rates = overview["rates"]
    if rates:
        rows = []
        for m, r in rates.items():
            info = MEASURE_INFO.get(m)
            unit = info.unit.strip() if info else ""
            d = 0 if m == "cct_kelvin" else 3
            ci = fmt_interval(r, d) if r.has_ci else "–"
            name = info.name if info else m
            if unit:
                name = f"{name[:-1]}, {unit})" if name.endswith(")") else f"{name} ({unit})"
            rows.append(
                [name, fmt_signed(r.slope, d), ci, f"0–{r.max_step}", r.chains, r.images, _reading(m, r)]
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
                row.append(fmt_signed(cells[m]["mean"], d) if m in cells else "–")
            row.append(max((c["n"] for c in cells.values()), default=0))
            rows.append(row)
        title = "Change from the original" + (" (mean of chains)" if len(chains) > 1 else "")
        body += f"<h3>{_esc(title)}</h3>"
        body += html_table(["Step", *[MEASURE_INFO[m].symbol for m in measures], "Chains"], rows)
    return _section("chains", "Chain summaries", body)


def _metrics_section(ctx: ReportContext) -> str:
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
    for i, chain in enumerate(sorted(int(c) for c in chain_col.dropna().unique())):
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
    return _section("metrics", "Metrics at selected steps", "\n".join(blocks))


def _kv_table(title: str, data: dict[str, Any]) -> str:
    if not data:
        return ""
    rows = [
        [k, v if isinstance(v, str) else json.dumps(v, default=str, ensure_ascii=False)]
        for k, v in data.items()
    ]
    return f"<div><h3>{_esc(title)}</h3>{html_table(['Name', 'Value'], rows, text_columns=(0, 1))}</div>"


def _config_section(ctx: ReportContext) -> str:
    config = json.dumps(ctx.config, indent=2, ensure_ascii=False, default=str) if ctx.config else "{}"
    body = f"<h3>Configuration</h3>\n<pre>{_esc(config)}</pre>"
    kv = _kv_table("Versions", ctx.versions) + _kv_table("Host", ctx.host)
    if kv:
        body += f'<div class="kv">{kv}</div>'
    return _section("config", "Configuration and versions", body)


def _extra_sections(ctx: ReportContext, taken: set[str]) -> list[tuple[str, str, str]]:
    out = []
    for title, body in ctx.extra_sections:
        anchor = base = _slug(title)
        n = 2
        while anchor in taken:
            anchor, n = f"{base}-{n}", n + 1
        taken.add(anchor)
        out.append((anchor, title, _section(anchor, title, body)))
    return out


# ----------------------------------------------------------------------------------------------- report


def render_report(ctx: ReportContext) -> str:
    """The report as an HTML string (what :func:`write_report` writes)."""
    parts: list[tuple[str, str, str]] = [("summary", "Summary", _summary_section(ctx))]
    parts.append(("frames", "Original and last", _frames_section(ctx)))
    parts.append(
        (
            "animation",
            "Animation",
            _image_section(
                "animation", "Animation", ctx.animation, "Every copy in order, looping", "animation"
            ),
        )
    )
    parts.append(
        (
            "contact-sheet",
            "Contact sheet",
            _image_section(
                "contact-sheet",
                "Contact sheet",
                ctx.contact_sheet,
                "Chains as rows, chosen steps as columns",
                "sheet",
            ),
        )
    )
    parts.append(("plots", "Plots", _plots_section(ctx)))
    parts.append(("chains", "Chain summaries", _chains_section(ctx)))
    parts.append(("metrics", "Metrics", _metrics_section(ctx)))
    taken = {anchor for anchor, _, _ in parts} | {"config"}
    parts += _extra_sections(ctx, taken)
    parts.append(("config", "Configuration", _config_section(ctx)))
    parts = [p for p in parts if p[2]]

    nav = "".join(f'<a href="#{_esc(anchor)}">{_esc(label)}</a>' for anchor, label, _ in parts)
    meta = [f"run <code>{_esc(ctx.run_id)}</code>", f"model <code>{_esc(ctx.model)}</code>"]
    created = _created(ctx.created)
    if created:
        meta.append(_esc(created))
    chains = [s for s in ctx.summaries if s.n_frames]
    if chains:
        last = max(s.last_step for s in chains)
        meta.append(f"{len(chains)} chain{'s' if len(chains) != 1 else ''}, up to step {last}")
    meta_html = "".join(f"<span>{m}</span>" for m in meta)
    version = ctx.versions.get("driftloop", "")
    footer = (
        "Made by driftloop"
        + (f" {version}" if version else "")
        + "; a self-contained file, viewable offline."
    )
    body = "\n".join(p[2] for p in parts)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<meta name="generator" content="driftloop">
<title>{_esc(ctx.title)}</title>
<style>{_CSS}</style>
</head>
<body>
<header>
<h1>{_esc(ctx.title)}</h1>
<p class="meta">{meta_html}</p>
<nav>{nav}</nav>
</header>
<main>
{body}
</main>
<footer>{_esc(footer)}</footer>
</body>
</html>
"""


def write_report(path: Path | str, ctx: ReportContext) -> Path:
    """Write the report to ``path`` atomically (temp file in the same folder, then rename); return it."""
    path = Path(path)
    text = render_report(ctx)
    with atomic_write(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
