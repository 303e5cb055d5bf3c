"""A run's shareable outputs: per-chain GIF and MP4 with a step counter, a contact sheet, the HTML report.

Glue between the store (which frames exist) and :mod:`driftloop.render` (pure drawing functions).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from driftloop._fs import json_safe, write_text_atomic
from driftloop.errors import DriftloopError
from driftloop.images import read_frame
from driftloop.render import DEFAULT_SHEET_STEPS, contact_sheet, pick_steps, write_gif, write_mp4

if TYPE_CHECKING:
    import pandas as pd

    from driftloop.analysis.chains import ChainSummary
    from driftloop.api import RunHandle
    from driftloop.cost import Totals


def chain_label(input_path: str, seed: int) -> str:
    return f"{Path(input_path).name} · seed {seed}"


def render_run(
    run: RunHandle,
    fps: float = 10.0,
    steps: Sequence[int] = DEFAULT_SHEET_STEPS,
    gif: bool = True,
    mp4: bool = True,
    sheet: bool = True,
    report: bool = True,
) -> dict[str, Path]:
    """Write the animations and the contact sheet into the run folder; return what was written."""
    written: dict[str, Path] = {}
    rows = []
    total = run.row.n_steps
    for chain in run.chains():
        records = run.frame_rows(chain.chain)
        if not records:
            continue
        frames = [(r.step, read_frame(run.path / r.path)) for r in records]
        if gif:
            written[f"gif/{chain.chain}"] = write_gif(
                frames, run.path / f"chain{chain.chain:03d}.gif", fps=fps, total=total
            )
        if mp4:
            written[f"mp4/{chain.chain}"] = write_mp4(
                frames, run.path / f"chain{chain.chain:03d}.mp4", fps=fps, total=total
            )
        chosen = set(pick_steps([s for s, _ in frames], steps))
        rows.append((chain_label(chain.input_path, chain.seed), [(s, f) for s, f in frames if s in chosen]))
    if sheet and rows:
        title = f"{run.id} · {run.row.model}"
        written["contact_sheet"] = contact_sheet(rows, run.path / "contact_sheet.png", title=title)
    if report:
        written["report"] = write_run_report(run)
    return written


def _cost_table(total: Totals) -> str:
    from driftloop.cost import cost_rows_for_report
    from driftloop.render.report import html_table

    rows = [[label, value, provenance] for label, value, provenance in cost_rows_for_report(total)]
    return html_table(["", "value", "measured or estimated, and from what"], rows, text_columns=(0, 2))


def _cost_by(groups: dict[str, Totals]) -> str:
    from driftloop.cost import COST_BY_HEADERS, cost_rows_by
    from driftloop.render.report import html_table

    return html_table(COST_BY_HEADERS, cost_rows_by(groups), text_columns=(0, len(COST_BY_HEADERS) - 1))


def _captions_section(run: RunHandle) -> str | None:
    from driftloop.render.report import html_table

    rows = [[r.chain, r.step, r.info["caption"]] for r in run.frame_rows() if r.info and "caption" in r.info]
    return html_table(["chain", "step", "caption"], rows) if rows else None


def write_summary_json(run: RunHandle, summaries: Sequence[ChainSummary]) -> Path:
    """RUN/summary.json: every chain's summary (half-life, fixed point, drift at steps, rates with CIs, face
    loss) and the overview across chains, for people who want the numbers without the page."""
    from driftloop.analysis.chains import run_overview

    chains = [s for s in summaries if s.n_frames]
    overview = run_overview(chains) if chains else {}
    if overview:
        overview["rates"] = {m: dataclasses.asdict(r) for m, r in overview["rates"].items()}
    data = {"run_id": run.id, "model": run.row.model, "chains": [s.to_dict() for s in summaries],
            "overview": overview}  # fmt: skip
    return write_text_atomic(
        run.path / "summary.json", json.dumps(json_safe(data), indent=1, allow_nan=False) + "\n"
    )


def write_run_report(run: RunHandle, path: Path | None = None) -> Path:
    """The self-contained HTML report: animation, contact sheet, plots, plain-words summary, tables."""
    from driftloop.analysis.text import sentences
    from driftloop.api import host, versions
    from driftloop.render.plots import plot_run
    from driftloop.render.report import ReportContext, write_report

    df = run.dataframe()
    summaries = run.summary(df)
    write_summary_json(run, summaries)
    plots = [p for pair in plot_run(df, run.path / "plots") for p in pair] if len(df) else []
    chains = run.chains()
    first = run.path / "contact_sheet.png"
    last_chain = chains[0] if chains else None
    notes = [e["message"] for e in run.events() if e["kind"] in ("metrics-skipped", "metrics", "error")]
    per_chain, total = run.cost_totals()
    extra = [("Cost", _cost_table(total))]
    if len(per_chain) > 1:
        labels = {c.chain: f"chain {c.chain}: {chain_label(c.input_path, c.seed)}" for c in chains}
        extra.append(("Cost per chain", _cost_by({labels[k]: t for k, t in per_chain.items()})))
    captions = _captions_section(run)
    if captions:
        extra.append(("Captions", captions))
    ctx = ReportContext(
        title=f"driftloop · {run.row.model} · {len(chains)} chain(s)",
        run_id=run.id,
        model=run.row.model,
        created=run.row.created_at,
        config=run.config,
        versions=run.row.versions or versions(),
        host=run.row.host or host(),
        sentences=sentences(summaries, df),
        summaries=summaries,
        df=df,
        animation=(run.path / "chain000.gif") if (run.path / "chain000.gif").is_file() else None,
        contact_sheet=first if first.is_file() else None,
        first_frame=run.frame_path(0, 0) if last_chain else None,
        last_frame=run.frame_path(0, last_chain.last_step) if last_chain else None,
        plots=plots,
        notes=notes,
        extra_sections=extra,
    )
    return write_report(path or run.path / "report.html", ctx)


def _sweep_table(runs: list[RunHandle], chains: Mapping[str, set[int]] | None = None) -> pd.DataFrame:
    """The chains of several runs in one table (``chains``: only these, per run id), with the columns the
    bias card reads; ``image`` is the input file's sha256, what identifies a picture across runs."""
    import pandas as pd

    parts = []
    for run in runs:
        df = run.dataframe()
        if chains is not None:
            df = df[df["chain"].isin(chains.get(run.id, set()))]
        if df.empty:
            continue
        sha = {c.chain: c.input_sha256 or c.input_path for c in run.chains()}
        df = df.copy()
        df.insert(0, "model", run.row.model)
        df["image"] = df["chain"].map(sha)
        df["chain"] = df["run_id"] + "/" + df["chain"].astype(str)
        parts.append(df)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def write_bias_card_for(
    runs: list[RunHandle],
    folder: Path,
    title: str,
    control: str | None,
    chains: Mapping[str, set[int]] | None = None,
) -> tuple[Path, Path]:
    """The bias card of a set of runs (a sweep): statistics, verdicts, attractors, cost; HTML and JSON.

    ``chains`` limits it to some chains of each run (a sweep's own); default: every chain.
    """
    from driftloop.analysis.attractors import find_attractors
    from driftloop.analysis.bias import bias_card
    from driftloop.analysis.chains import fixed_point_step
    from driftloop.cost import combine
    from driftloop.render.bias_card import write_bias_card

    df = _sweep_table(runs, chains)
    if df.empty:
        raise DriftloopError(f"{title}: no stored frames to make a bias card from")
    card = bias_card(df, control=control)
    patience = {run.id: int(run.config.get("patience", 3)) for run in runs}
    fixed = {  # from the frames' hashes, whether or not the run stopped at the fixed point
        key: fixed_point_step(rows, patience[rows["run_id"].iloc[0]]) for key, rows in df.groupby("chain")
    }
    last, sources = {}, {}
    for run in runs:
        for chain in run.chains():
            key = f"{run.id}/{chain.chain}"
            if key in fixed and chain.last_step >= 0:
                last[key] = run.frame(chain.chain, chain.last_step)
                sources[key] = chain.input_sha256 or chain.input_path
    attractors = find_attractors(last, fixed, sources=sources)
    by_model: dict[str, list[Totals]] = {}
    for run in runs:
        per_chain, _ = run.cost_totals()
        wanted = (
            per_chain
            if chains is None
            else {k: t for k, t in per_chain.items() if k in chains.get(run.id, ())}
        )
        by_model.setdefault(run.row.model, []).extend(wanted.values())
    model_totals = {m: combine(parts) for m, parts in by_model.items() if parts}
    total = combine(model_totals.values())
    sections = [("Cost", _cost_table(total)), ("Cost per model", _cost_by(model_totals))]
    cost_json = {"total": total.to_dict(), "by_model": {m: t.to_dict() for m, t in model_totals.items()}}
    folder.mkdir(parents=True, exist_ok=True)
    html, js = write_bias_card(
        folder / "bias_card.html", folder / "bias_card.json", card, attractors, title=title,
        extra_sections=sections, run_id=title,
        config={"runs": [r.id for r in runs], "control": control}, versions=runs[0].row.versions,
        host=runs[0].row.host, extra_json={"cost": json_safe(cost_json)},
    )  # fmt: skip
    assert js is not None
    return html, js
