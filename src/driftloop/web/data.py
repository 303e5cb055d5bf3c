"""What the gallery reads from a workspace, as small plain records: the gallery's read model.

Everything else in :mod:`driftloop.web` reads the workspace through :class:`GalleryData`, never through
the store, so pointing the gallery at another read model touches only this file. It is read-only: runs
are started, stopped and resumed by worker processes (:mod:`driftloop.web.jobs`), which write through the
ordinary run machinery. Files are found *by id* (a run id and a frame's sha256, a download's kind), never
from a path given by a browser.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from driftloop.config import IMPORTED_PREFIX, arm_label, made_by
from driftloop.cost import run_totals
from driftloop.engines.workers import read_workers
from driftloop.errors import DriftloopError
from driftloop.measures import TABLE_ORDER
from driftloop.render.run import ANIMATION_KINDS, render_chain
from driftloop.replicators import registry
from driftloop.report.export import export
from driftloop.report.run import summarize
from driftloop.store import DB_NAME, RunSummary, RunView, Store, is_live, unlocked_status
from driftloop.store.chain_table import ChainQuery, ChainTablePage, query_chains, summary_sums
from driftloop.store.listing import live, summaries, usd_spent
from driftloop.sweep import sweep_chains, sweep_runs
from driftloop.web.cells import HEADLINE, SweepCells, sweep_cells

RUN_STATUSES = ("running", "done", "stopped", "error")
_STATUS_GROUP = {  # the store's words for how a run ended, as the gallery groups them
    "running": "running",
    "created": "running",
    "done": "done",
    "interrupted": "stopped",
    "budget": "stopped",
    "failed": "error",
}
STATUS_WORDS = {g: tuple(raw for raw, x in _STATUS_GROUP.items() if x == g) for g in RUN_STATUSES}
_SECRET_WORDS = ("key", "token", "secret", "password", "authorization")
SWEEP_CACHE_SIZE = 16  # sweeps kept while the database is unchanged (their cells are summed in SQL)
DONE_CACHE_SIZE = 1024  # listing lines, chain data and markers of finished runs (they cannot change)
DOWNLOADS = {  # kind -> (file name in the run folder; per chain)
    "gif": ("chain{chain:03d}.gif", True),
    "mp4": ("chain{chain:03d}.mp4", True),
    "sheet": ("contact_sheet.png", False),
    "report": ("report.html", False),
    "csv": ("frames.csv", False),
}


@dataclass(frozen=True)
class FrameRef:
    """One stored frame, named by what identifies it: its run, chain, step and pixel sha256."""

    run_id: str
    chain: int
    step: int
    sha256: str


@dataclass(frozen=True)
class RunCard:
    """One line of the runs page."""

    id: str
    model: str  # the arm: the model, with its stabilizer if any
    chains: int
    steps_done: int
    steps_most: int
    n_steps: int
    status: str  # running / done / stopped / error
    created_at: float
    sweep: str | None = None
    first: FrameRef | None = None
    last: FrameRef | None = None
    usd: float | None = None
    energy_wh: float | None = None
    cost_unknown: bool = False  # imported: the copies were made elsewhere
    made_by: str | None = None  # imported: the model the user named


@dataclass(frozen=True)
class RunPage:
    """A page of the runs listing, newest first, and what the filters can choose from."""

    items: list[RunCard]
    total: int
    page: int
    pages: int
    models: list[str]
    sweeps: list[str]


@dataclass(frozen=True)
class ChainData:
    """What the chain view plots: the frames in step order and one metric column per measure."""

    frames: list[FrameRef]
    metrics: dict[str, list[float | None]]


@dataclass(frozen=True)
class ChainInfo:
    """A chain of a run: where it started and how far it got."""

    chain: int
    input_name: str
    seed: int
    status: str
    stop_reason: str | None
    last_step: int

    @property
    def label(self) -> str:
        return f"{self.input_name} · seed {self.seed}"


@dataclass(frozen=True)
class RunDetail:
    """A run with its chains, its settings (secrets removed) and what it cost."""

    id: str
    model: str  # the arm: the model, with its stabilizer if any (``taef2 + stabilize=colour:lab``)
    status: str
    n_steps: int
    size: int
    created_at: float
    error: str | None
    chains: list[ChainInfo]
    settings: dict[str, Any]
    usd: float | None  # None: unknown (imported copies, made elsewhere)
    energy_wh: float | None
    made_by: str | None = None
    downloads: dict[str, bool] = field(default_factory=dict)  # kind -> file present (chain 0 for per-chain)
    chain_downloads: dict[int, list[str]] = field(default_factory=dict)  # chain -> per-chain kinds present


@dataclass(frozen=True)
class Progress:
    """How far a run is, for the live view: frames so far, seconds per step, time left."""

    run_id: str
    status: str
    n_steps: int
    steps_done: int
    s_per_step: float | None
    eta_s: float | None
    latest: list[FrameRef]
    workers: list[dict[str, Any]] = field(default_factory=list)  # a Ray run's workers (engines.workers)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "n_steps": self.n_steps,
            "steps_done": self.steps_done,
            "s_per_step": self.s_per_step,
            "eta_s": self.eta_s,
            "latest": [{"chain": f.chain, "step": f.step, "sha256": f.sha256} for f in self.latest],
            "workers": self.workers,
        }


@dataclass(frozen=True)
class SweepInfo:
    """A sweep: its runs, the chains its bias card reads, and the card if it was written."""

    name: str
    runs: list[str]
    chains: dict[str, list[int]]
    control: str | None
    card: dict[str, Any] | None
    card_html: Path | None
    last_frames: dict[str, FrameRef] = field(default_factory=dict)  # "RUN/CHAIN" -> last frame (exemplars)
    cells: SweepCells = field(default_factory=lambda: SweepCells([], [], {}))  # one row per arm


@dataclass(frozen=True)
class ModelChoice:
    """A model the start-a-run form offers, with whether this machine can run it now."""

    name: str
    summary: str
    ready: bool
    where: str


def clean_settings(value: Any) -> Any:
    """A run's settings without anything that looks like a credential (never sent to a browser)."""
    if isinstance(value, dict):
        return {
            k: ("(hidden)" if any(w in str(k).lower() for w in _SECRET_WORDS) else clean_settings(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [clean_settings(v) for v in value]
    return value


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


class GalleryData:
    """The gallery's view of one workspace folder (thread-safe; caches only what cannot change)."""

    def __init__(self, workspace: str | Path) -> None:
        self.root = Path(workspace).expanduser().resolve()
        self._lock = threading.RLock()  # reentrant: the listing, read under it, opens the connection
        self._listing: tuple[tuple[int, ...], list[RunSummary], dict[str, str]] = ((), [], {})
        self._reader: Store | None = None  # one connection kept open: its data_version is the change signal
        self._frames: dict[str, dict[str, str]] = {}  # finished runs: sha256 -> relative path
        self._done: dict[tuple[str, str, int], Any] = {}  # finished runs: (what, run, chain) -> value
        self._sweeps: dict[str, tuple[tuple[Any, ...], SweepInfo]] = {}  # name -> (db and card stamp, sweep)
        self._render_lock = threading.Lock()  # animations made on request: one at a time

    def warm_up(self) -> None:
        """Import what the chain view needs ahead of its first request (pandas, SciPy: about 2 s)."""
        import pandas  # heavy: imported here, off the first request

        del pandas

    def _store(self) -> Store:
        """The gallery's own connection to the workspace (opened once the database exists)."""
        with self._lock:
            if self._reader is None:
                self._reader = Store(self.root)
            return self._reader

    def _signature(self) -> tuple[int, ...]:
        """Changes whenever another process commits to the database (SQLite's data_version, one cheap
        PRAGMA on the gallery's connection; the gallery itself never writes), or the file is replaced."""
        try:
            st = (self.root / DB_NAME).stat()
        except FileNotFoundError:
            return (0, 0, 0)
        return (self._store().data_version(), st.st_ino, st.st_dev)

    # ---- listing -----------------------------------------------------------------------------------
    def exists(self) -> bool:
        return (self.root / DB_NAME).is_file()

    def _summaries(self) -> tuple[list[RunSummary], dict[str, str]]:
        """Every run, newest first (and the sweep each was made for), read again only when the database
        changed; a running run whose process has died since reads 'interrupted' without waiting for that."""
        signature = self._signature()
        with self._lock:
            known, rows, tags = self._listing
            if signature != known or not rows:
                rows = summaries(self._store(), live_status=False)  # two queries, no JSON parsed in Python
                tags = {r.id: r.sweep for r in rows if r.sweep}
                self._listing = (signature, rows, tags)
        if any(r.status == "running" for r in rows):
            rows = live(self._store(), rows)
        return rows, tags

    def _handle(self, run_id: str) -> RunView | None:
        """The run with exactly this id (a prefix is not an id here), or None."""
        if not self.exists():
            return None
        try:
            handle = RunView(self._store(), run_id)
        except DriftloopError:
            return None
        return handle if handle.id == run_id else None

    def sweeps(self) -> list[str]:
        """Names of the sweeps of the workspace: those with a card folder and those runs are tagged with."""
        names = {p.name for p in (self.root / "sweeps").glob("*") if p.is_dir()}
        names |= set(self._summaries()[1].values()) if self.exists() else set()
        return sorted(names)

    def table_choices(self) -> tuple[list[str], list[str]]:
        """The models and sweeps the chains table's filters offer, from the runs' rows alone: not the run
        listing, which reads every chain's progress (most of a table page's time after a change, at
        100,000 chains)."""
        if not self.exists():
            return [], []
        rows = self._store().run_list()
        folders = {p.name for p in (self.root / "sweeps").glob("*") if p.is_dir()}
        return sorted({r.model for r in rows}), sorted(folders | {r.sweep for r in rows if r.sweep})

    def runs(
        self,
        model: str | None = None,
        sweep: str | None = None,
        status: str | None = None,
        page: int = 1,
        per_page: int = 50,
    ) -> RunPage:
        """A page of runs, newest first, filtered by model, sweep and status; thumbnails only for the page."""
        summaries, tagged = self._summaries() if self.exists() else ([], {})
        members = set(sweep_runs(self.root, sweep)) if sweep and self.exists() else None
        chosen = [
            s
            for s in summaries
            if (not model or s.model == model)
            and (members is None or s.id in members)
            and (not status or _STATUS_GROUP.get(s.status, s.status) == status)
        ]
        per_page = max(1, per_page)
        pages = max(1, math.ceil(len(chosen) / per_page))
        page = min(max(1, page), pages)
        items = [self._card(s, tagged.get(s.id)) for s in chosen[(page - 1) * per_page : page * per_page]]
        return RunPage(items, len(chosen), page, pages, sorted({s.model for s in summaries}), self.sweeps())

    def _card(self, s: RunSummary, sweep: str | None) -> RunCard:
        """A listing line; the thumbnails' frames and the cost of a finished run are read once."""
        ends = self._done.get(("card", s.id, 0))
        if ends is None:
            ends = self._ends(s.id)
            if s.status == "done":
                self._keep(("card", s.id, 0), ends)
        first, last, usd, energy, unknown, maker = ends
        status = _STATUS_GROUP.get(s.status, s.status)
        return RunCard(s.id, s.arm, s.chains, s.steps_done, s.steps_most, s.n_steps, status, s.created_at,
                       sweep, first, last, usd, energy, unknown, maker)  # fmt: skip

    def _ends(self, run_id: str) -> tuple[Any, ...]:
        """First and last frame of chain 0, the run's money and energy so far, whether its cost is unknown
        (imported) and the model a user named for it."""
        handle = self._handle(run_id)
        if handle is None:
            return None, None, None, None, False, None
        rows = handle.frame_rows(0)
        first = FrameRef(run_id, 0, rows[0].step, rows[0].sha256) if rows else None
        last = FrameRef(run_id, 0, rows[-1].step, rows[-1].sha256) if rows else None
        _, total = run_totals(handle)
        unknown = total.unknown and total.frames == 0
        usd, energy = (None, None) if unknown else (total.usd, total.energy_wh)
        return first, last, usd, energy, unknown, made_by(handle.config)

    def chain_table(self, query: ChainQuery) -> ChainTablePage:
        """A page of the chains table (numbers from the stored summaries, in SQL); statuses in the page's
        words, a 'running' run whose process died reading 'stopped'."""
        if not self.exists():
            return ChainTablePage([], 0, 1, 1)
        store = self._store()
        found = query_chains(store, query)
        rows = [
            replace(r, status=_STATUS_GROUP.get(unlocked_status(store.run_dir(r.run_id), r.status), r.status))
            for r in found.rows
        ]
        return replace(found, rows=rows)

    def metric_values(self, name: str, run_ids: list[str]) -> list[tuple[str, int, int, float | None]]:
        """(run, chain, step, value) of one metric over some runs: the curves of a bundle."""
        return self._store().metric_values(name, run_ids) if self.exists() and run_ids else []

    # ---- one run -----------------------------------------------------------------------------------
    def run(self, run_id: str) -> RunDetail | None:
        handle = self._handle(run_id)
        if handle is None:
            return None
        chains = [
            ChainInfo(c.chain, Path(c.input_path).name, c.seed, c.status, c.stop_reason, c.last_step)
            for c in handle.chains()
        ]
        _, total = run_totals(handle)
        unknown = total.unknown and total.frames == 0
        running = self.status(run_id) == "running"
        made = {c.chain: c.last_step >= 0 and not running for c in chains}  # animations made on request
        row = handle.row
        arm = arm_label(row.model, row.config.get("stabilize"))  # a stabilized run: another arm
        return RunDetail(
            id=row.id, model=arm, status=self.status(run_id) or row.status, n_steps=row.n_steps,
            size=int(row.config.get("size", 0)), created_at=row.created_at, error=row.error, chains=chains,
            settings=clean_settings(row.config), usd=None if unknown else total.usd,
            energy_wh=None if unknown else total.energy_wh, made_by=made_by(row.config),
            downloads={k: self.download(run_id, k, 0) is not None or (per and made.get(0, False))
                       for k, (_, per) in DOWNLOADS.items()},
            chain_downloads={c.chain: [k for k, (_, per) in DOWNLOADS.items() if per and (
                                 made[c.chain] or self.download(run_id, k, c.chain))] for c in chains},
        )  # fmt: skip

    def status(self, run_id: str) -> str | None:
        """running / done / stopped / error (a 'running' run whose process died reads 'stopped')."""
        handle = self._handle(run_id)
        if handle is None:
            return None
        raw = handle.status  # the read model already tells a dead process's run from a live one
        return _STATUS_GROUP.get(raw, raw)

    def live_pid(self, run_id: str) -> int | None:
        """The process advancing the run right now (it holds the run's lock), if any."""
        handle = self._handle(run_id)
        if handle is None or not is_live(handle.path):
            return None
        return handle.row.pid

    def frames(self, run_id: str, chain: int) -> list[FrameRef]:
        handle = self._handle(run_id)
        if handle is None:
            return []
        return [FrameRef(run_id, r.chain, r.step, r.sha256) for r in handle.frame_rows(chain)]

    def frame_file(self, run_id: str, sha256: str) -> Path | None:
        """The stored file of the frame with this sha256 in this run, or None (finished runs indexed once)."""
        index = self._frames.get(run_id)
        if index is None or sha256 not in index:
            handle = self._handle(run_id)
            if handle is None:
                return None
            index = {r.sha256: r.path for r in handle.frame_rows()}
            if handle.status == "done":
                self._frames[run_id] = index
        rel = index.get(sha256)
        if rel is None:
            return None
        run_dir = (self.root / "runs" / run_id).resolve()
        path = (run_dir / rel).resolve()
        return path if path.is_relative_to(run_dir) and path.is_file() else None

    def chain_data(self, run_id: str, chain: int) -> ChainData | None:
        """A chain's frames and its metric rows as columns (``step`` first; NaN and infinity as None), from
        one read, so a run being written never shows metrics of a frame the list does not have."""
        cached = self._done.get(("chain", run_id, chain))
        if cached is not None:
            return cached
        handle = self._handle(run_id)
        if handle is None:
            return None
        done = handle.status == "done"  # read before the frames: a run done then is done after
        df = handle.dataframe()
        if df.empty:
            return ChainData([], {"step": []})
        df = df[df["chain"] == chain].sort_values("step")
        frames = [
            FrameRef(run_id, chain, int(st), sha) for st, sha in zip(df["step"], df["sha256"], strict=True)
        ]
        columns = ["step", "model_seconds", *[c for c in TABLE_ORDER if c in df.columns]]
        data = ChainData(frames, {c: [_finite(v) for v in df[c].tolist()] for c in columns})
        if done:
            self._keep(("chain", run_id, chain), data)
        return data

    def _keep(self, key: tuple[str, str, int], value: Any) -> None:
        with self._lock:
            if len(self._done) >= DONE_CACHE_SIZE:
                self._done.pop(next(iter(self._done)))
            self._done[key] = value

    def markers(self, run_id: str, chain: int) -> dict[str, int | None]:
        """Steps worth marking on a chain's slider: half-life, first fixed point, face lost, and where a
        conversation model began a new thread (``resume --restart-thread``)."""
        cached = self._done.get(("markers", run_id, chain))
        if cached is not None:
            return cached
        handle = self._handle(run_id)
        found = {"half_life": None, "fixed_point": None, "face_lost": None, "thread_restart": None}
        if handle is None:
            return found
        done = handle.status == "done"
        for s in summarize(handle):
            if s.chain == chain:
                found.update(
                    half_life=s.half_life, fixed_point=s.fixed_point_step, face_lost=s.face_lost_step
                )
        restarts = [
            e["step"] for e in handle.events() if e["kind"] == "thread_restart" and e["chain"] == chain
        ]
        found["thread_restart"] = min(restarts) if restarts else None  # a conversation began a new thread
        if done:
            self._keep(("markers", run_id, chain), found)
        return found

    def events(self, run_id: str) -> list[dict[str, Any]]:
        handle = self._handle(run_id)
        if handle is None:
            return []
        keep = ("chain", "step", "kind", "message", "created_at")
        return [{k: e.get(k) for k in keep} for e in handle.events()]

    def progress(self, run_id: str) -> Progress | None:
        """Steps done, seconds per step over the frames made so far, and the time left at that pace."""
        handle = self._handle(run_id)
        if handle is None:
            return None
        rows = handle.frame_rows()
        last: dict[int, Any] = {}
        for r in rows:
            last[r.chain] = r
        done = min((r.step for r in last.values()), default=0)
        made = sorted(r.created_at for r in rows if r.step > 0)
        pace = None
        if len(made) >= 2:
            steps = max(1, max(r.step for r in rows) - min(r.step for r in rows if r.step > 0))
            pace = (made[-1] - made[0]) / steps if steps else None
        status = self.status(run_id) or "error"
        n = handle.row.n_steps
        eta = pace * (n - done) if pace is not None and status == "running" else None
        latest = [FrameRef(run_id, r.chain, r.step, r.sha256) for r in last.values()]
        return Progress(run_id, status, n, done, pace, eta, latest, read_workers(handle.path))

    def download(self, run_id: str, kind: str, chain: int = 0) -> Path | None:
        """The file of a download kind (gif, mp4, sheet, report, csv) if the run folder has it."""
        if kind not in DOWNLOADS or self._handle(run_id) is None:
            return None
        name, _per_chain = DOWNLOADS[kind]
        path = self.root / "runs" / run_id / name.format(chain=chain)
        return path if path.is_file() else None

    def animation(self, run_id: str, kind: str, chain: int) -> Path | None:
        """A chain's GIF or MP4: the rendered file, else made now and kept in the run folder (a render
        animates only a run's first chains); None while the run is running (its chains still grow) or when
        the chain has no frames. One at a time: a second request for the same file waits and finds it."""
        if kind not in ANIMATION_KINDS:
            return None
        with self._render_lock:
            found = self.download(run_id, kind, chain)
            handle = self._handle(run_id)
            if found is not None or handle is None or self.status(run_id) == "running":
                return found
            try:
                return render_chain(handle, chain, [kind])[kind]
            except DriftloopError:
                return None  # no such chain, or no frames in it

    def write_csv(self, run_id: str) -> Path | None:
        """Write the run's table as CSV into its folder (quick; the other downloads come from render)."""
        handle = self._handle(run_id)
        return export(handle, "csv") if handle is not None else None

    # ---- sweeps ------------------------------------------------------------------------------------
    def sweep(self, name: str) -> SweepInfo | None:
        """A sweep with one row per cell (arm): a few queries for the whole sweep (its chains, their stored
        numbers and its runs' money summed in SQL) and one per run (its chains). Kept until another
        process commits to the database or the card is written again (summing 100,000 chains' numbers
        takes about a second), unless one of its runs is running."""
        if name not in self.sweeps():
            return None
        folder = self.root / "sweeps" / name
        signature = (*self._signature(), self._card_mtime(folder))
        kept = self._sweeps.get(name)
        if kept is not None and kept[0] == signature:  # nothing committed, the same card: the same sweep
            return kept[1]
        chains, control = sweep_chains(self.root, name)
        card = None
        if (folder / "bias_card.json").is_file():
            card = json.loads((folder / "bias_card.json").read_text(encoding="utf-8"))
        html = folder / "bias_card.html"
        listed = {s.id: s for s in self._summaries()[0]}
        runs = [r for r in chains if r in listed]
        arms = {r: listed[r].arm for r in runs}
        statuses = {r: _STATUS_GROUP.get(listed[r].status, listed[r].status) for r in runs}
        spent = usd_spent(self._store(), runs)  # one query, not every frame's cost record read in Python
        costs = {r: None if listed[r].model.startswith(IMPORTED_PREFIX) else spent[r] for r in runs}
        picked = {r: None if len(chains[r]) == listed[r].chains else sorted(chains[r]) for r in runs}
        sums = summary_sums(self._store(), picked, tuple(HEADLINE))  # in SQL: no row per chain in Python
        cells = sweep_cells(arms, {r: chains[r] for r in runs}, statuses, costs, sums, control)
        exemplars = [c["exemplar"] for c in ((card or {}).get("attractors") or {}).get("clusters", [])]
        last = {}
        for key in exemplars:  # only the frames the page shows: the clusters' exemplars
            run_id, _, chain = str(key).partition("/")
            frames = self.frames(run_id, int(chain)) if chain.isdigit() else []
            if frames:
                last[key] = frames[-1]
        info = SweepInfo(name, sweep_runs(self.root, name), {k: sorted(v) for k, v in chains.items()},
                         control, card, html if html.is_file() else None, last, cells)  # fmt: skip
        if all(c.status != "running" for c in cells.cells):  # a running run's status is read live
            with self._lock:
                if len(self._sweeps) >= SWEEP_CACHE_SIZE:
                    self._sweeps.pop(next(iter(self._sweeps)))
                self._sweeps[name] = (signature, info)
        return info

    @staticmethod
    def _card_mtime(folder: Path) -> float | None:
        """When the sweep's card was written (``driftloop bias`` writes it, not the database)."""
        try:
            return (folder / "bias_card.json").stat().st_mtime
        except FileNotFoundError:
            return None

    # ---- starting runs -----------------------------------------------------------------------------
    def models(self) -> list[ModelChoice]:
        """Every model the machine knows, and whether it can run here now (weights present)."""
        return [
            ModelChoice(m.name, m.summary, m.weights.present, m.weights.where) for m in registry.listing()
        ]

    def input_images(self) -> dict[str, Path]:
        """Images a run can start from without an upload, by the id the form sends back: earlier uploads
        (by file name) and earlier runs' inputs that still exist (by their file's sha256)."""
        found: dict[str, Path] = {}
        for path in sorted((self.root / "uploads").glob("*")):
            if path.is_file() and not path.name.startswith("."):
                found[path.name] = path
        if self.exists():
            for row in self._store().runs():
                for item in row.config.get("inputs", []):
                    path = Path(item.get("path", ""))
                    new = item.get("sha256") and item["sha256"] not in found and path not in found.values()
                    if new and path.is_file():
                        found[item["sha256"]] = path
        return found

    def new_run_from(self, known: frozenset[str], image: Path) -> str | None:
        """The newest run not in ``known`` that starts from ``image`` (a run a worker just created)."""
        if not self.exists():
            return None
        target = str(Path(image).resolve())
        for row in self._store().runs():  # newest first
            if row.id in known:
                continue
            paths = {str(Path(i.get("path", "")).resolve()) for i in row.config.get("inputs", [])}
            if target in paths:
                return row.id
        return None
