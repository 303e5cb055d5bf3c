"""A run's report: the self-contained ``report.html`` and ``summary.json``, from the run's stored rows."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from driftloop._fs import json_safe, write_text_atomic
from driftloop.analysis.chains import ChainSummary, run_overview, summarize_run
from driftloop.analysis.columns import chain_columns
from driftloop.analysis.text import sentences
from driftloop.cost import COST_BY_HEADERS, Totals, cost_rows_by, cost_rows_for_report, run_totals
from driftloop.provenance import host, versions
from driftloop.render.run import chain_label
from driftloop.report.html import ReportContext, html_table, write_report
from driftloop.store import RunView

if TYPE_CHECKING:
    import pandas as pd


def summarize(run: RunView, df: pd.DataFrame | None = None) -> list[ChainSummary]:
    """One summary per chain: half-life, first fixed point (over the run's ``patience``), colour drift
    at steps 1, 10, 25, 50, 100 and the last, drift rates with 95% CIs, face loss. ``df``: the run's
    :meth:`~driftloop.store.RunView.dataframe`, if already at hand."""
    df = run.dataframe() if df is None else df
    return summarize_run(df, fixed_point_k=run.run_config.patience) if len(df) else []


def cost_table(total: Totals) -> str:

    rows = [[label, value, provenance] for label, value, provenance in cost_rows_for_report(total)]
    return html_table(["", "value", "measured or estimated, and from what"], rows, text_columns=(0, 2))


def cost_by_table(groups: dict[str, Totals]) -> str:

    return html_table(COST_BY_HEADERS, cost_rows_by(groups), text_columns=(0, len(COST_BY_HEADERS) - 1))


def _captions_section(run: RunView) -> str | None:

    rows = [[r.chain, r.step, r.info["caption"]] for r in run.frame_rows() if r.info and "caption" in r.info]
    return html_table(["chain", "step", "caption"], rows) if rows else None


def write_summary_json(run: RunView, summaries: Sequence[ChainSummary]) -> Path:
    """RUN/summary.json: every chain's summary (half-life, fixed point, drift at steps, rates with CIs, face
    loss) and the overview across chains, for people who want the numbers without the page."""
    chains = [s for s in summaries if s.n_frames]
    overview = run_overview(chains) if chains else {}
    if overview:
        overview["rates"] = {m: dataclasses.asdict(r) for m, r in overview["rates"].items()}
    data = {"run_id": run.id, "model": run.row.model, "chains": [s.to_dict() for s in summaries],
            "overview": overview}  # fmt: skip
    return write_text_atomic(
        run.path / "summary.json", json.dumps(json_safe(data), indent=1, allow_nan=False) + "\n"
    )


def write_run_report(run: RunView, path: Path | None = None) -> Path:
    """The self-contained HTML report (and ``summary.json``): animation, contact sheet, charts drawn in the
    browser from the metric rows, plain-words summary, tables (static figures: ``driftloop plots``)."""
    df = run.dataframe()
    summaries = summarize(run, df)
    write_summary_json(run, summaries)
    run.store.set_chain_summaries(run.id, chain_columns(df, summaries))  # the gallery's table reads these
    chains = run.chains()
    first = run.path / "contact_sheet.png"
    last_chain = chains[0] if chains else None
    notes = [e["message"] for e in run.events() if e["kind"] in ("metrics-skipped", "metrics", "error")]
    per_chain, total = run_totals(run)
    extra = [("Cost", cost_table(total))]
    if len(per_chain) > 1:
        labels = {c.chain: f"chain {c.chain}: {chain_label(c.input_path, c.seed)}" for c in chains}
        extra.append(("Cost per chain", cost_by_table({labels[k]: t for k, t in per_chain.items()})))
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
        notes=notes,
        extra_sections=extra,
    )
    return write_report(path or run.path / "report.html", ctx)
