"""The bias card as HTML sections and as a self-contained page, plus its JSON.

:func:`bias_card_sections` gives ``(title, body)`` pairs for :class:`~driftloop.report.html.ReportContext`
``extra_sections`` (a run or sweep report shows them like its own sections); :func:`bias_card_html` gives the
same as finished ``<section>`` elements; :func:`write_bias_card` writes a page of its own through
:func:`~driftloop.report.html.write_report` (same CSS, Content-Security-Policy and escaping rules) and the
JSON beside it. Everything from the data is HTML-escaped; exemplar thumbnails are PNG ``data:`` URIs made
in memory.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from driftloop import fmt
from driftloop._fs import atomic_write, json_safe
from driftloop.analysis.arms import ArmComparison, context_arms, stabilizer_arms
from driftloop.analysis.attractors import AttractorReport, find_attractors
from driftloop.analysis.bias import bias_card
from driftloop.analysis.card import BIAS_MEASURES, LAST, RATE, BiasCard, Comparison
from driftloop.analysis.chains import fixed_point_steps
from driftloop.analysis.intervals import Interval
from driftloop.analysis.sources import source_images
from driftloop.config import IMPORTED_PREFIX, config_arm
from driftloop.cost import Totals, combine, run_totals
from driftloop.errors import DriftloopError
from driftloop.frames import read_frame
from driftloop.replicators.spec import spec_label
from driftloop.report.html import ReportContext, html_table, write_report
from driftloop.report.run import cost_by_table, cost_table
from driftloop.store import RunView

__all__ = [
    "arms_html",
    "bias_card_html",
    "bias_card_json",
    "bias_card_sections",
    "frame_data_uri",
    "write_bias_card",
]

THUMB_WIDTH = 128  # CSS pixels for an exemplar thumbnail


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def frame_data_uri(frame: np.ndarray) -> str:
    """An RGB uint8 frame as a PNG ``data:`` URI (encoded in memory)."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(frame, dtype=np.uint8)).save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _thumb(frame: np.ndarray, alt: str, width: int = THUMB_WIDTH) -> str:
    h, w = frame.shape[:2]
    height = max(1, round(width * h / max(w, 1)))
    pixel = ' class="pixel"' if w < width * 2 else ""
    return (
        f'<img src="{frame_data_uri(frame)}" alt="{_esc(alt)}" width="{width}" height="{height}"{pixel} '
        'style="border: 1px solid var(--line); border-radius: 4px;">'
    )


def _measure_name(m: str) -> str:
    info = BIAS_MEASURES.get(m)
    if info is None:
        return m
    return f"{info.symbol}{' (' + info.unit.strip() + ')' if info.unit else ''}"


def _est(e: Interval | None, reading: bool = False, measure: str = "", drains: bool = False) -> str:
    if e is None:
        return "–"
    d = fmt.interval_decimals(e.mean, e.ci_low, e.ci_high)
    text = fmt.signed(e.mean, d)
    text += f" {fmt.interval(e.ci_low, e.ci_high, d)}" if e.has_ci else " (no CI)"  # type: ignore[arg-type]
    if reading and e.excludes_zero and measure in BIAS_MEASURES:
        info = BIAS_MEASURES[measure]
        text += " toward grey" if drains else f" {info.up_word if e.mean > 0 else info.down_word}"
    return text


def _cmp(c: Comparison | None) -> str:
    if c is None:
        return "–"
    d = fmt.interval_decimals(c.difference, c.ci_low, c.ci_high)
    text = fmt.signed(c.difference, d)
    if c.ci_low is not None and c.ci_high is not None:
        text += f" {fmt.interval(c.ci_low, c.ci_high, d)}"
    g = "g n/a" if c.hedges_g is None else f"g {fmt.signed(c.hedges_g, 2)}"
    return f"{text}; {g}; {c.p_text}"


def _step_label(key: str, card: BiasCard) -> str:
    if key != LAST:
        return f"Step {key}"
    lasts = {(m.last_step_min, m.last_step_max) for m in card.models}
    if len(lasts) == 1:
        lo, hi = next(iter(lasts))
        return f"Last (step {lo})" if lo == hi else f"Last (steps {lo}–{hi})"
    return "Last step"


def _measures(card: BiasCard) -> list[str]:
    seen: dict[str, None] = {}
    for model in card.models:
        for m in model.measures:
            seen.setdefault(m, None)
    order = list(BIAS_MEASURES)
    return sorted(seen, key=lambda m: order.index(m) if m in order else len(order))


def _overview(card: BiasCard) -> str:
    items = "\n".join(f"<li>{_esc(v)}</li>" for v in card.verdicts) or "<li>No verdicts.</li>"
    body = f'<ul class="findings">\n{items}\n</ul>'
    rows = []
    for m in card.models:
        steps = f"0–{m.last_step_max}" if m.last_step_min == m.last_step_max else (
            f"0–{m.last_step_min}…{m.last_step_max}"
        )  # fmt: skip
        rows.append([m.model, "control" if m.is_control else "", m.n_chains, m.n_images, m.n_seeds, steps,
                     f"0–{m.rate_max_step}"])  # fmt: skip
    body += "<h3>Models</h3>" + html_table(
        ["Model", "Role", "Chains", "Source images", "Seeds", "Steps", "Rate over steps"],
        rows,
        text_columns=(0, 1),
    )
    control = (
        f"Each model is compared with the control <code>{_esc(card.control)}</code>. "
        if card.control
        else "No control model: no comparisons. "
    )
    body += (
        f'<p class="hint">{control}A rate is the average change per step of a measure, per chain, then '
        "averaged over each source image's chains and over images. Brackets are 95% confidence "
        "intervals: Student's t on the per-image means (two-way image × seed when shared seeds matter), "
        "because chains of one image are not independent; differences are paired at the image level. "
        "A model with one source image has rate intervals about that image only (the chains' own, as in "
        "the run report; none below 100 steps). "
        "A change is reliable when its interval excludes 0; p-values come from a paired permutation test "
        "that flips the sign of each shared source image's difference "
        f"(up to {card.n_perm} relabellings, exact when there are fewer). Seed {card.seed}.</p>"
    )
    if card.notes:
        notes = "\n".join(f"<li>{_esc(n)}</li>" for n in card.notes)
        body += f'<div class="notes"><h3>Notes</h3><ul>\n{notes}\n</ul></div>'
    return body


def _rates(card: BiasCard) -> str:
    measures = _measures(card)
    if not measures:
        return ""
    rows = []
    for m in measures:
        row = [_measure_name(m)]
        for model in card.models:
            r = model.measures.get(m)
            row.append(_est(r.rate if r else None, reading=True, measure=m, drains=bool(r and r.drains)))
        rows.append(row)
    headers = ["Measure", *[f"{m.model}{' (control)' if m.is_control else ''}" for m in card.models]]
    body = html_table(headers, rows)
    body += (
        '<p class="hint">Mean per-step rate over chains [95% CI]; a word follows when the interval excludes '
        "0. CIELAB: L* lightness, a* green (−) to red (+), b* blue (−) to yellow (+); C* chroma; CCT in "
        "kelvin (higher = bluer light).</p>"
    )
    return body


def _versus(card: BiasCard) -> str:
    others = [m for m in card.models if not m.is_control]
    if card.control is None or not others:
        return ""
    measures = _measures(card)
    rows = []
    for m in measures:
        row = [_measure_name(m)]
        for model in others:
            r = model.measures.get(m)
            row.append(_cmp(r.vs_control.get(RATE) if r else None))
        rows.append(row)
    body = html_table(["Measure", *[m.model for m in others]], rows)
    tests = {c.test for m in others for r in m.measures.values() for c in r.vs_control.values()}
    remarks: dict[str, None] = {}
    for model in others:
        for r in model.measures.values():
            c = r.vs_control.get(RATE)
            for part in c.notes if c else ():
                remarks.setdefault(f"{model.model}: {part}", None)
    if remarks:
        items = "\n".join(f"<li>{_esc(t)}</li>" for t in remarks)
        body += f'<div class="notes"><h3>About these tests</h3><ul>\n{items}\n</ul></div>'

    body += (
        f'<p class="hint">Per-step rate of the model minus that of <code>{_esc(card.control)}</code> [95% '
        "t interval, paired by image]; Hedges' g (difference over the pooled SD of per-chain rates); "
        f"two-sided permutation p ({_esc(', '.join(sorted(tests)) or 'none')}).</p>"
    )
    steps = [k for k in card.steps if k != LAST]
    blocks = []
    for model in others:
        rows = []
        for m in measures:
            r = model.measures.get(m)
            rows.append([_measure_name(m), *[_cmp(r.vs_control.get(k) if r else None) for k in steps]])
        if steps:
            table = html_table(["Measure", *[f"Δ at step {k}" for k in steps]], rows)
            blocks.append(f"<details><summary>{_esc(model.model)}: change at each step vs control</summary>"
                          f"{table}</details>")  # fmt: skip
    return body + "\n".join(blocks)


def _changes(card: BiasCard) -> str:
    measures = _measures(card)
    if not measures:
        return ""
    blocks = []
    for i, model in enumerate(card.models):
        rows = []
        for m in measures:
            r = model.measures.get(m)
            rows.append([_measure_name(m), *[_est(r.change.get(k) if r else None) for k in card.steps]])
        table = html_table(["Measure", *[_step_label(k, card) for k in card.steps]], rows)
        label = f"{model.model}{' (control)' if model.is_control else ''}: {model.n_chains} chains"
        blocks.append(
            f"<details{' open' if i == 0 else ''}><summary>{_esc(label)}</summary>{table}</details>"
        )
    hint = (
        '<p class="hint">Mean over chains of value(step) − value(step 0) [95% CI]; a chain counts at the '
        "steps it reached; “Last” is each chain's own last step.</p>"
    )
    return "\n".join(blocks) + hint


def _attractors(report: AttractorReport, thumb_width: int) -> str:
    body = f'<ul class="findings"><li>{_esc(report.summary()[:1].upper() + report.summary()[1:])}</li></ul>'
    figures = []
    for c in report.clusters:
        members = ", ".join(c.members)
        kind = ""
        if c.attractor is True:
            kind = f"; {c.n_sources} source images: an attractor"
        elif c.attractor is False:
            kind = "; one source image"
        caption = f"Cluster {c.label}: {len(c.members)} chain{'s' if len(c.members) != 1 else ''}{kind}"
        alt = f"Cluster {c.label} exemplar (chain {c.exemplar})"
        figures.append(
            f"<figure>{_thumb(c.exemplar_frame, alt, thumb_width)}<figcaption><strong>{_esc(caption)}"
            f"</strong><br>exemplar {_esc(c.exemplar)}; spread {fmt.fixed(c.spread, 3)}<br>"
            f"<details><summary>members</summary>{_esc(members)}</details></figcaption></figure>"
        )
    if figures:
        body += (
            '<div style="display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); '
            f'gap: 16px;">\n{"".join(figures)}\n</div>'
        )
    if report.silhouettes:
        rows = [[k, fmt.fixed(v, 3)] for k, v in sorted(report.silhouettes.items())]
        body += "<h3>Choosing the number of clusters</h3>" + html_table(["k", "Silhouette"], rows)
    if report.fixed_points:
        rows = []
        for chain, step in report.fixed_points.items():
            cluster = next((c.label for c in report.clusters if chain in c.members), "–")
            rows.append([chain, step, cluster])
        body += "<h3>Chains at a fixed point</h3>" + html_table(["Chain", "Fixed from step", "Cluster"], rows)
    else:
        body += '<p class="hint">No chain reached a fixed point (or none was given).</p>'
    if report.notes:
        notes = "\n".join(f"<li>{_esc(n)}</li>" for n in report.notes)
        body += f'<div class="notes"><h3>Notes</h3><ul>\n{notes}\n</ul></div>'
    body += (
        '<p class="hint">Last frames clustered by a 16×16 thumbnail and RGB histograms (k-means, k by '
        "silhouette score); the exemplar is the member nearest its cluster's centre. Spread: RMS feature "
        "distance from the centre (≈ RMS pixel difference, 0..1). A cluster is an attractor when its "
        "chains started from different source images.</p>"
    )
    return body


def bias_card_sections(
    card: BiasCard | None, attractors: AttractorReport | None = None, thumb_width: int = THUMB_WIDTH
) -> list[tuple[str, str]]:
    """``(title, body_html)`` pairs for ``ReportContext.extra_sections`` (bodies are already escaped)."""
    out: list[tuple[str, str]] = []
    if card is not None:
        out.append(("Bias card", _overview(card)))
        for title, body in (
            ("Drift rates by model", _rates(card)),
            (f"Against the control ({card.control})", _versus(card)),
            ("Change from the original by model", _changes(card)),
        ):
            if body:
                out.append((title, body))
    if attractors is not None:
        out.append(("Attractors", _attractors(attractors, thumb_width)))
    return out


def bias_card_html(
    card: BiasCard | None, attractors: AttractorReport | None = None, thumb_width: int = THUMB_WIDTH
) -> str:
    """The same content as finished ``<section>`` elements, to paste into any page using the report CSS."""
    parts = []
    for title, body in bias_card_sections(card, attractors, thumb_width):
        anchor = "-".join("".join(ch if ch.isalnum() else " " for ch in title.lower()).split()) or "section"
        parts.append(f'<section id="{_esc(anchor)}">\n<h2>{_esc(title)}</h2>\n{body}\n</section>')
    return "\n".join(parts)


def bias_card_json(card: BiasCard | None, attractors: AttractorReport | None = None) -> dict[str, Any]:
    """One strict-JSON document: the card's :meth:`BiasCard.to_dict` plus ``attractors``."""
    out: dict[str, Any] = card.to_dict() if card is not None else {"schema": "driftloop.bias_card/1"}
    out["attractors"] = attractors.to_dict() if attractors is not None else None
    return out


def write_bias_card(
    path_html: Path | str,
    path_json: Path | str | None,
    card: BiasCard | None,
    attractors: AttractorReport | None = None,
    title: str = "Bias card",
    extra_sections: Sequence[tuple[str, str]] = (),
    run_id: str = "sweep",
    config: dict[str, Any] | None = None,
    versions: dict[str, Any] | None = None,
    host: dict[str, Any] | None = None,
    notes: Iterable[str] = (),
    thumb_width: int = THUMB_WIDTH,
    extra_json: dict[str, Any] | None = None,
) -> tuple[Path, Path | None]:
    """Write the card as a self-contained HTML page (via :func:`write_report`) and as JSON; both atomic.

    ``extra_sections`` (``(title, html_body)``, bodies inserted as given) follow the card's sections;
    ``extra_json`` adds top-level keys to the JSON (e.g. the cost). Returns (html path, json path or None).
    """
    models = [m.model for m in card.models] if card is not None else []
    n_chains = sum(m.n_chains for m in card.models) if card is not None else 0
    images = max((m.n_images for m in card.models), default=0) if card is not None else 0
    lead = (
        f"{len(models)} model{'s' if len(models) != 1 else ''}, {n_chains} chains, up to {images} source "
        f"images per model; control: {card.control or 'none'}"
        if card is not None
        else "attractors only"
    )
    settings = {} if card is None else bias_card_json(card)["settings"]
    ctx = ReportContext(
        title=title,
        run_id=run_id,
        model=", ".join(models) or "–",
        config={"bias_card": settings, **(config or {})},
        versions=dict(versions or {}),
        host=dict(host or {}),
        sentences=[lead],
        notes=list(notes),
        extra_sections=[*bias_card_sections(card, attractors, thumb_width), *extra_sections],
    )
    html_path = write_report(path_html, ctx)
    json_path = None
    if path_json is not None:
        json_path = Path(path_json)
        data = {**bias_card_json(card, attractors), **(extra_json or {})}
        text = json.dumps(data, indent=1, ensure_ascii=False, allow_nan=False)
        with atomic_write(json_path) as tmp:
            tmp.write_text(text + "\n", encoding="utf-8")
    return html_path, json_path


CONTEXT_HINT = (
    '<p class="hint">Change = value at each chain\'s last step − value at step 0, averaged per source image '
    "and then over the images both arms ran. Difference = conversation − fresh requests per image (the same "
    "model, the same images and seeds; fresh = window=0); 95% t interval over images; p from a paired "
    "image-level permutation (sign-flip) test. A change the thread removes is drift that seeing the earlier "
    "copies slows; one it grows, drift the conversation speeds up.</p>"
)


def arms_html(arms: Sequence[ArmComparison], hint: str | None = None) -> str:
    """The "Stabilizer arms" section (or, with ``hint``, the context arms): per arm, its summary and one
    row per measure."""
    blocks = []
    for a in arms:
        items = "\n".join(f"<li>{_esc(line)}</li>" for line in a.summary())
        rows = []
        for m in a.measures:
            d = m.difference
            digits = fmt.interval_decimals(d.mean, d.ci_low, d.ci_high)
            diff = fmt.signed(d.mean, digits)
            if d.has_ci:
                diff += f" {fmt.interval(d.ci_low, d.ci_high, digits)}"  # type: ignore[arg-type]
            p = fmt.p_value(m.p_value, m.test.at_floor) if m.test is not None else "–"
            rows.append([m.group, _measure_name(m.measure), fmt.signed(m.plain), fmt.signed(m.arm), diff, p,
                         m.reading])  # fmt: skip
        table = html_table(
            ["Question", "Measure", f"{a.model}: change", f"{a.arm}: change", "Difference [95% CI]", "p",
             "Reading"],
            rows,
            text_columns=(0, 1, 6),
        )  # fmt: skip
        notes = "".join(f"<li>{_esc(n)}</li>" for n in a.notes)
        blocks.append(
            f"<h3>{_esc(a.arm)} against {_esc(a.model)}</h3>"
            f"<p>{a.n_images} shared source images; {a.n_chains_arm} and {a.n_chains_plain} chains.</p>"
            f'<ul class="findings">{items}</ul>{table}'
            + (f'<div class="notes"><ul>{notes}</ul></div>' if notes else "")
        )
    hint = hint or (
        '<p class="hint">Change = value at each chain\'s last step − value at step 0, averaged per source '
        "image and then over the images both arms ran. Difference = stabilized − plain per image; 95% t "
        "interval over images; p from a paired image-level permutation (sign-flip) test. A stabilizer that "
        "matches colours to frame 0 should remove colour drift (ΔE, Δb*) by construction; what it cannot "
        "remove shows in structure (SSIM, pHash, sharpness) and faces; posterisation shows as lower "
        "entropy and more histogram gaps.</p>"
    )
    return "\n".join(blocks) + hint


def _arm(run: RunView, labels: Mapping[str, str] | None) -> str:
    """A run's arm on the card: ``imported:LABEL`` when the sweep labels it, else the model's full spec
    (``webp:quality=80``) and its stabilizer."""
    return (
        IMPORTED_PREFIX + labels[run.id]
        if labels and run.id in labels
        else spec_label(config_arm(run.config))
    )


def _sweep_table(
    runs: list[RunView],
    chains: Mapping[str, set[int]] | None = None,
    labels: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """The chains of several runs in one table (``chains``: only these, per run id), with the columns the
    bias card reads; ``image`` is the input file's sha256, what identifies a picture across runs (an
    imported chain's is the stored input it shows: :func:`~driftloop.analysis.sources.source_images`).
    A run imported again with ``--allow-duplicate`` beside its first import is left out."""
    ids = {run.id for run in runs}
    imported = {run.id for run in runs if run.config.get("import")}
    runs = [r for r in runs if (r.config.get("import") or {}).get("duplicate_of") not in ids]
    keys = source_images(runs, imported)
    parts = []
    for run in runs:
        df = run.dataframe()
        if chains is not None:
            df = df[df["chain"].isin(chains.get(run.id, set()))]
        if df.empty:
            continue
        sha = {c.chain: keys[(run.id, c.chain)] for c in run.chains()}
        df = df.copy()
        df.insert(0, "model", _arm(run, labels))  # a stabilized run is its own arm
        df["image"] = df["chain"].map(sha)
        df["chain"] = df["run_id"] + "/" + df["chain"].astype(str)
        parts.append(df)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


class _FramesOnDisk(Mapping[str, np.ndarray]):
    """Chains' last frames, read from their files when asked for: a card of 100,000 chains holds their
    features, not their pixels."""

    def __init__(self) -> None:
        self.paths: dict[str, Path] = {}

    def __getitem__(self, key: str) -> np.ndarray:
        return read_frame(self.paths[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self.paths)

    def __len__(self) -> int:
        return len(self.paths)


def write_bias_card_for(
    runs: list[RunView],
    folder: Path,
    title: str,
    control: str | bool | None,
    chains: Mapping[str, set[int]] | None = None,
    labels: Mapping[str, str] | None = None,
) -> tuple[Path, Path]:
    """The bias card of a set of runs (a sweep): statistics, verdicts, attractors, cost; HTML and JSON.

    ``chains`` limits it to some chains of each run (a sweep's own); default: every chain. ``control``
    False: no comparisons; ``labels``: arms of imported runs named by the sweep (run id → label).
    """
    df = _sweep_table(runs, chains, labels)
    if df.empty:
        raise DriftloopError(f"{title}: no stored frames to make a bias card from")
    card = bias_card(df, control=spec_label(control) if isinstance(control, str) else control)
    patience = {run.id: run.run_config.patience for run in runs}
    owners = df[["chain", "run_id"]].drop_duplicates("chain")
    k = {c: patience[r] for c, r in zip(owners["chain"], owners["run_id"], strict=True)}
    fixed = fixed_point_steps(df, k)  # from the frames' hashes, whether or not the run stopped there
    last, sources = _FramesOnDisk(), {}
    for run in runs:
        run_dir = run.path  # once per run: the property builds a new Path each time
        for chain in run.chains():
            key = f"{run.id}/{chain.chain}"
            if key in fixed and chain.last_step >= 0:
                last.paths[key] = run_dir / run.store.frame_relpath(chain.chain, chain.last_step)
                sources[key] = chain.input_sha256 or chain.input_path
    attractors = find_attractors(last, fixed, sources=sources)
    by_model: dict[str, list[Totals]] = {}
    for run in runs:
        per_chain, _ = run_totals(run)
        wanted = (
            per_chain
            if chains is None
            else {k: t for k, t in per_chain.items() if k in chains.get(run.id, ())}
        )
        by_model.setdefault(_arm(run, labels), []).extend(wanted.values())
    model_totals = {m: combine(parts) for m, parts in by_model.items() if parts}
    total = combine(model_totals.values())
    arms = stabilizer_arms(df)
    sections = [("Stabilizer arms", arms_html(arms))] if arms else []
    context = context_arms(df)
    sections += [("Context: conversation − fresh", arms_html(context, CONTEXT_HINT))] if context else []
    sections += [("Cost", cost_table(total)), ("Cost per model", cost_by_table(model_totals))]
    cost_json = {"total": total.to_dict(), "by_model": {m: t.to_dict() for m, t in model_totals.items()}}
    arms_json = {"arms": json_safe([a.to_dict() for a in arms])} if arms else {}
    if context:
        arms_json["context_arms"] = json_safe([a.to_dict() for a in context])
    folder.mkdir(parents=True, exist_ok=True)
    html, js = write_bias_card(
        folder / "bias_card.html", folder / "bias_card.json", card, attractors, title=title,
        extra_sections=sections, run_id=title,
        config={"runs": [r.id for r in runs], "control": control}, versions=runs[0].row.versions,
        host=runs[0].row.host, extra_json={**arms_json, "cost": json_safe(cost_json)},
    )  # fmt: skip
    assert js is not None
    return html, js
