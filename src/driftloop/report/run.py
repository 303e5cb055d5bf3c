"""A run's report: the self-contained ``report.html`` and ``summary.json``, from the run's stored rows."""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from driftloop._fs import json_safe, write_text_atomic
from driftloop.analysis.chains import ChainSummary, run_overview, summarize_run
from driftloop.analysis.columns import chain_columns
from driftloop.analysis.text import sentences
from driftloop.config import arm_label, made_by
from driftloop.cost import (
    COST_BY_HEADERS,
    Totals,
    cost_rows_by,
    cost_rows_for_report,
    run_totals,
    turn_costs,
)
from driftloop.provenance import host, versions
from driftloop.render.run import (
    PREVIEW,
    animated_chains,
    chain_label,
    preview_size,
    render_run,
    sheet_chains,
    write_preview,
)
from driftloop.replicators.spec import spec_label
from driftloop.report.html import ReportContext, html_table, write_report
from driftloop.store import ChainRow, RunView

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


def turn_cost_table(run: RunView) -> str | None:
    """A conversation's cost curve: what a copy costs as its thread grows, turn by turn (None otherwise)."""
    rows = [
        [turn, copies, f"${usd:.4f}", f"{tokens:,.0f}", f"${spent:.2f}"]
        for turn, copies, usd, tokens, spent in turn_costs(run)
    ]
    if not rows:
        return None
    table = html_table(["turn", "copies", "USD per copy", "input tokens per copy", "spent by then"], rows)
    hint = (
        '<p class="hint">Each copy is a turn of its chain\'s conversation, priced from the usage the answer '
        "reported; the input tokens rise as the thread does (a window stops growing after K+1 turns).</p>"
    )
    return table + hint


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
    data = {"run_id": run.id, "model": run.row.model, "made_by": made_by(run.config),
            "chains": [s.to_dict() for s in summaries], "overview": overview}  # fmt: skip
    return write_text_atomic(
        run.path / "summary.json", json.dumps(json_safe(data), indent=1, allow_nan=False) + "\n"
    )


def write_outputs(run: RunView, render: bool, log: Callable[[str], None] | None = None) -> Path:
    """The end of every run (made, resumed, imported, or one of a sweep): with ``render`` the animations
    and contact sheet, then the report and ``summary.json``; each step says what it is doing first, since
    at 512² they take seconds. Returns the report's path."""
    say = log or (lambda _msg: None)
    if render:
        chains = run.chains()
        n, shown, moving = len(chains), len(sheet_chains(chains)), len(animated_chains(chains))
        sheet = "the contact sheet" if shown == n else f"a contact sheet of {shown} of them"
        which = (
            f"{n} chain{'s' if n != 1 else ''}"
            if moving == n
            else f"the first {moving} of {n} chains (any other: driftloop render {run.id} --animations)"
        )
        say(f"rendering: a GIF and an MP4 of {which} and {sheet} …")
        render_run(run)
    say("writing report.html and summary.json …")
    return write_run_report(run)


def rendered(run: RunView) -> bool:
    """Whether the run was rendered (``--render``): the report then shows chain 0's animation too."""
    return any((run.path / name).is_file() for name in (PREVIEW, "chain000.mp4", "chain000.gif"))


def _model_line(run: RunView) -> str:
    """The run's model, with the model a user named for an imported chain: "imported:x (GPT-5 in ChatGPT)"."""
    model = spec_label(arm_label(run.row.model, run.config.get("stabilize")))  # as people read it
    maker = made_by(run.config)
    return f"{model} (made by {maker})" if maker and maker not in model else model


def write_run_report(run: RunView, path: Path | None = None) -> Path:
    """The self-contained HTML report (and ``summary.json``): animation, contact sheet, charts drawn in the
    browser from the metric rows, plain-words summary, tables (static figures: ``driftloop plots``).

    The page stays light whatever the run: the animation of chain 0 only, as the compact MP4 the render
    wrote for it (:data:`~driftloop.render.run.PREVIEW`, ~1.2 MB for 101 steps at 512², where the GIF is
    14 MB; made here for a run rendered before there was one), stills as WebP, and a contact sheet of at
    most :data:`~driftloop.render.run.MAX_SHEET_CHAINS` chains."""
    with tempfile.TemporaryDirectory(prefix="driftloop-report-") as tmp:
        video: Path | None = run.path / PREVIEW
        if not video.is_file():
            video = write_preview(run, 0, Path(tmp) / PREVIEW) if rendered(run) else None
        return _write_run_report(run, path, video)


def _write_run_report(run: RunView, path: Path | None, video: Path | None) -> Path:
    df = run.dataframe()
    summaries = summarize(run, df)
    write_summary_json(run, summaries)
    run.store.set_chain_summaries(run.id, chain_columns(df, summaries))  # the gallery's table reads these
    chains = run.chains()
    model = _model_line(run)
    first = run.path / "contact_sheet.png"
    last_chain = chains[0] if chains else None
    noted = ("import", "metrics-skipped", "metrics", "error")
    notes = [e["message"] for e in run.events() if e["kind"] in noted]
    notes += [f"chain {e['chain']}, step {e['step']}: {e['message']}" for e in run.events()
              if e["kind"] == "thread_restart"]  # fmt: skip
    per_chain, total = run_totals(run)
    extra = [("Cost", cost_table(total))]
    turns = turn_cost_table(run)
    if turns:
        extra.append(("Cost per turn", turns))
    if len(per_chain) > 1:
        labels = {c.chain: f"chain {c.chain}: {chain_label(c.input_path, c.seed)}" for c in chains}
        extra.append(("Cost per chain", cost_by_table({labels[k]: t for k, t in per_chain.items()})))
    captions = _captions_section(run)
    if captions:
        extra.append(("Captions", captions))
    ctx = ReportContext(
        title=f"driftloop · {model} · {len(chains)} chain(s)",
        run_id=run.id,
        model=model,
        created=run.row.created_at,
        config=run.config,
        versions=run.row.versions or versions(),
        host=run.row.host or host(),
        sentences=sentences(summaries, df),
        summaries=summaries,
        df=df,
        animation=video,
        animation_caption=_animation_caption(chains),
        animation_size=_frame_size(run.frame_path(0, 0)) if video and last_chain else None,
        contact_sheet=first if first.is_file() else None,
        contact_sheet_caption=_sheet_caption(chains),
        first_frame=run.frame_path(0, 0) if last_chain else None,
        last_frame=run.frame_path(0, last_chain.last_step) if last_chain else None,
        notes=notes,
        extra_sections=extra,
    )
    return write_report(path or run.path / "report.html", ctx)


def _animation_caption(chains: Sequence[ChainRow]) -> str:
    text = "Every copy in order, looping"
    if len(chains) > 1:
        text += f" (chain 0 of {len(chains)}; every chain's GIF and MP4 are in the run folder)"
    return text


def _sheet_caption(chains: Sequence[ChainRow]) -> str:
    shown = len(sheet_chains(chains))
    if shown < len(chains):
        return f"{shown} of {len(chains)} chains, evenly spaced, as rows; chosen steps as columns"
    return "Chains as rows, chosen steps as columns"


def _frame_size(frame: Path) -> tuple[int, int] | None:
    """The preview's pixel size, from the size of the chain's frame 0 (its header only)."""
    try:
        with Image.open(frame) as im:
            return preview_size(*im.size)
    except OSError:
        return None
