"""Running a sweep: resume what it can, start the missing runs, import its imported arms once; and reading
back exactly its chains for the bias card."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from driftloop.config import IMPORTED_PREFIX, RunConfig, arm_label, split_arm
from driftloop.engines.start import LOCAL, Engine, continue_run, prepare, rebuild, start, storage_guard
from driftloop.errors import InputError
from driftloop.metrics.recorder import recompute
from driftloop.report.run import write_outputs, write_run_report
from driftloop.store import RunView, Store
from driftloop.sweep.plan import coverage, missing_runs, same_chains
from driftloop.sweep.spec import ImportedArm, Importer, Sweep, input_hashes, spec_error, sweep_record


def run_sweep(
    sweep: Sweep,
    workspace: str | Path,
    progress_for: Callable[[str], Any] | None = None,
    log: Callable[[str], None] | None = None,
    render: bool = True,
    models: list[str] | None = None,
    retry_failed: bool = False,
    importer: Importer | None = None,
    engine: Engine = LOCAL,
) -> list[str]:
    """Run (or finish) the sweep's chains for ``models`` (default: all); return the ids of the runs that
    hold them, in spec order. ``retry_failed``: also ask again for chains that ended error/refused.

    Imported arms are found (a ``run`` id, or an earlier import of the same ``path`` and ``label``) or, for
    a source not yet imported, imported with ``importer`` (the API's ``import_chain``); their run ids come
    first (only when ``models`` is not given: a caller running models one by one gets them once, from
    its first call's record). ``engine``: where chains advance (this process, or Ray); a sweep started on
    one continues on either."""
    say = log or (lambda _msg: None)
    hashes = input_hashes(sweep)
    missing = [p for p in sweep.images if p not in hashes]
    if missing:
        raise InputError(f"{missing[0]}: no such file (listed by the sweep {sweep.path})")
    store = Store(workspace)
    imported = imported_runs(store, sweep, importer, say)  # cheap once imported: found, not imported again
    labels = {store.get_run(e.run).id: e.label for e in sweep.imported if e.run is not None and e.label}
    store.save_sweep(sweep.name, sweep_record(sweep, hashes, imported, labels))
    if sweep.options.get("faces"):
        _with_faces(store, imported, say)
    ids: list[str] = []
    for run_id in imported:
        store.add_sweep_run(sweep.name, run_id)
        if models is None:
            ids.append(run_id)
    for model in models or sweep.models:
        progress = progress_for(model) if progress_for else None
        cov = coverage(store, sweep, model, hashes)
        for run_id in cov.runs:
            store.add_sweep_run(sweep.name, run_id)
            retry = retry_failed and run_id in cov.failed
            if run_id in cov.unfinished or retry:
                say(f"{model}: resuming run {run_id}")
                replicator = rebuild(store, run_id, None, None, say, engine)
                continue_run(store, run_id, replicator, progress, say, retry_failed=retry, engine=engine)
                finish(RunView(store, run_id), render, say)
            ids.append(run_id)
        if cov.runs and not cov.unfinished:
            say(f"{model}: {len(cov.chains)} chain(s) already done in {', '.join(cov.runs)}")
        for images, seeds in missing_runs(sweep, hashes, cov.chains):
            base, stabilize = split_arm(model)
            prepared = prepare(
                images, base, sweep.steps, seeds, sweep.size, workspace, sweep=sweep.name, log=log,
                stabilize=stabilize, engine=engine, **sweep.options,
            )  # fmt: skip
            run_id = start(prepared, store, progress, log, engine=engine)
            finish(RunView(store, run_id), render, say)
            store.add_sweep_run(sweep.name, run_id)
            ids.append(run_id)
    return ids


def imported_runs(
    store: Store, sweep: Sweep, importer: Importer | None, say: Callable[[str], None]
) -> list[str]:
    """The run ids of a sweep's imported arms: as given, found from an earlier import, or imported now."""
    ids: list[str] = []
    for entry in sweep.imported:
        if entry.run is not None:
            row = store.get_run(entry.run)  # a clear RunNotFoundError for a wrong id
            if not str(row.model).startswith(IMPORTED_PREFIX):
                raise spec_error(
                    sweep.path, f"imported: run {row.id} is a {row.model} run, not an imported one"
                )
            ids.append(row.id)
            continue
        found = _earlier_import(store, entry)
        if found is None:
            if importer is None:
                hint = f"driftloop import {entry.sources[0]} --label {entry.label!r}"
                raise spec_error(sweep.path, f"imported: {entry.sources[0]} is not imported yet; run {hint}")
            say(f"{entry.arm}: importing {', '.join(str(p) for p in entry.sources)}")
            found = importer(entry)
        else:
            say(f"{entry.arm}: already imported as run {found}")
        ids.append(found)
    return list(dict.fromkeys(ids))


def _with_faces(store: Store, run_ids: list[str], say: Callable[[str], None]) -> None:
    """``faces = true`` holds for imported arms too: one imported without face measures is measured again
    with them (once: afterwards its rows have them)."""
    for run_id in run_ids:
        view = RunView(store, run_id)
        rows = view.metric_rows()
        if rows and not any("face_found" in row for row in rows.values()):
            say(f"{view.row.model}: measuring faces on run {run_id} (faces = true)")
            recompute(view, faces=True)
            write_run_report(view)


def _earlier_import(store: Store, entry: ImportedArm) -> str | None:
    """The newest finished run importing the same sources under the same label."""
    roots = [p.resolve() for p in entry.sources]
    for row in reversed(store.runs()):
        files = (row.config.get("import") or {}).get("files") or []
        if row.model != entry.arm or row.status != "done" or not files:
            continue
        paths = [Path(f["path"]).resolve() for f in files]
        if all(any(p == r or r in p.parents for r in roots) for p in paths):
            return row.id
    return None


def finish(run: RunView, render: bool, log: Callable[[str], None] | None = None) -> None:
    """A sweep run's outputs, as after ``driftloop run``: the report and ``summary.json`` always; with
    ``render`` the animations and contact sheet first (the report embeds them)."""
    with storage_guard(run.store, run.id):
        write_outputs(run, render, log)


def sweep_labels(workspace: str | Path, name: str) -> dict[str, str]:
    """The labels a sweep gives imported runs it names by id (run id → label), for the card's arms."""
    if not Store.exists(workspace):
        return {}
    record = Store(workspace).get_sweep(name)
    return dict((record or {}).get("labels") or {})


def sweep_runs(workspace: str | Path, name: str) -> list[str]:
    """Ids of the runs holding a sweep's chains, oldest first (runs tagged by older versions included)."""
    store = Store(workspace)
    ids = store.sweep_run_ids(name)
    tagged = [r.id for r in reversed(store.runs()) if r.config.get("sweep") == name and r.id not in ids]
    return ids + tagged


def sweep_chains(workspace: str | Path, name: str) -> tuple[dict[str, set[int]], str | None]:
    """The chains that make up sweep ``name`` (run id → chain numbers) and its control.

    Exactly the (model, image, seed) chains its spec asks for, each once (the one with most steps when
    several runs hold the same chain); for a sweep the workspace has no record of, every chain of its runs.
    """
    if not Store.exists(workspace):
        return {}, None
    store = Store(workspace)
    record = store.get_sweep(name)
    ids = sweep_runs(workspace, name)
    if record is None:
        return {i: {c.chain for c in store.chains(i)} for i in ids}, None
    models = set(record["models"])
    wanted = {(i["sha256"], seed) for i in record["inputs"] for seed in record["seeds"]}
    best: dict[tuple[str, str, int], tuple[int, str, int]] = {}
    chosen: dict[str, set[int]] = {}
    for run_id in record.get("imported", []):  # an imported arm: its whole chain
        if run_id in ids:
            chosen[run_id] = {c.chain for c in store.chains(run_id)}
    for run_id in ids:
        run = store.get_run(run_id)
        config = RunConfig.from_dict(run.config)
        model = arm_label(config.model, config.stabilize)
        if model not in models or not same_chains(
            config, model, record["steps"], record["size"], record.get("options", {})
        ):
            continue  # made for an earlier version of the spec (other steps or size)
        for c in store.chains(run_id):
            key = (model, c.input_sha256, c.seed)
            if (c.input_sha256, c.seed) in wanted and c.last_step > best.get(key, (-1, "", 0))[0]:
                best[key] = (c.last_step, run_id, c.chain)
    for _, run_id, chain in best.values():
        chosen.setdefault(run_id, set()).add(chain)
    return chosen, record.get("control")
