"""The gallery's web application: pages, frames, event streams and the start/stop/resume actions.

Every read goes through :class:`driftloop.web.data.GalleryData`; every file sent is found by an id (a
run id, a frame's sha256, a download kind), never by a path from the URL, so a traversal attempt is just
an id that does not exist: 404.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from dataclasses import replace
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import StreamingResponse

from driftloop import fmt
from driftloop.analysis.columns import column_choices
from driftloop.cost.accounting import fmt_energy
from driftloop.errors import DriftloopError
from driftloop.images import DEFAULT_MAX_PIXELS
from driftloop.measures import MEASURES, TABLE_ORDER
from driftloop.render.run import ANIMATION_KINDS
from driftloop.replicators.params import params_of
from driftloop.replicators.spec import spec_label
from driftloop.report.bundles import DEFAULT_MEASURE, GROUPINGS, MAX_CHAINS, build_bundle
from driftloop.stabilizers import CHOICES as STABILIZERS
from driftloop.store.chain_table import ChainQuery
from driftloop.web.cells import HEADLINE, SIGNED, short_id
from driftloop.web.data import DOWNLOADS, RUN_STATUSES, STATUS_WORDS, GalleryData
from driftloop.web.estimate import form_estimate, form_values, model_spec
from driftloop.web.jobs import Jobs
from driftloop.web.security import (
    CSRF_FIELD,
    CSRF_HEADER,
    SAFE_METHODS,
    SECURITY_HEADERS,
    TOKEN_COOKIE,
    Guard,
    without_token,
)
from driftloop.web.table import PER_PAGE_CHOICES, TableView, read_marks, read_view
from driftloop.web.thumbs import THUMB_SIZES, thumbnail
from driftloop.web.uploads import save_upload

RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._ -]{0,127}")
SHA = re.compile(r"[0-9a-f]{64}")
IMMUTABLE = "public, max-age=31536000, immutable"
EVENT_POLL_S = 0.5
MAX_COMPARE = 4
PER_PAGE = 50
CARD_CSP = "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'"  # a static page, no script
Csrf = Annotated[str | None, Form(alias=CSRF_FIELD)]
PLOTS = ("ssim_to_origin", "lab_delta_e", "lab_b_delta", "psnr_to_origin", "mae_to_prev", "white_cast")
# What the pages call a metric: the vocabulary's plot titles (the report's words too), and the model's time.
LABELS = {c: m.title for c, m in MEASURES.items() if m.title} | {"model_seconds": "Seconds per copy"}

_HERE = files("driftloop.web")
_ASSETS = files("driftloop.report") / "assets"


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def _signed(value: Any) -> str:
    """A change on the bias card as the page shows it (:func:`driftloop.fmt.signed`), ``–`` if none."""
    return "–" if value is None else fmt.signed(float(value))


def _templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(_HERE / "templates"))
    templates.env.filters.update(when=_when, usd=fmt.usd, wh=fmt_energy, seconds=fmt.duration, signed=_signed,
                                 spec=spec_label, short_id=short_id,
                                 num=lambda v: "–" if v is None else fmt.significant(v, 3))  # fmt: skip
    return templates


def _check_run_id(run_id: str) -> str:
    if not RUN_ID.fullmatch(run_id):
        raise HTTPException(404, "no such run")
    return run_id


def _immutable_file(request: Request, path: Path, etag: str, media_type: str) -> Response:
    """A content-addressed file: strong ETag, cached for a year, 304 when the browser has it."""
    tag = f'"{etag}"'
    headers = {"ETag": tag, "Cache-Control": IMMUTABLE}
    wanted = request.headers.get("if-none-match", "")
    if tag in [t.strip() for t in wanted.split(",")] or wanted.strip() == "*":
        return Response(status_code=304, headers=headers)
    return FileResponse(path, media_type=media_type, headers=headers)


def create_app(
    workspace: str | Path,
    token: str | None = None,
    extra_hosts: tuple[str, ...] = (),
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> FastAPI:
    """The gallery over ``workspace``. ``token``: required on every request (for a non-loopback bind);
    ``extra_hosts``: Host names accepted besides the loopback ones in local mode."""
    data = GalleryData(workspace)
    guard = Guard(token=token, extra_hosts=frozenset(extra_hosts))
    jobs = Jobs(data)
    templates = _templates()
    # Not a daemon: an exit during the import waits for it (~2 s at most) rather than ending the thread inside
    # a C++ module's initialisation, which aborts the process.
    threading.Thread(target=data.warm_up, name="gallery-warm-up").start()
    app = FastAPI(title="driftloop gallery", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.data, app.state.guard, app.state.jobs = data, guard, jobs
    app.mount("/static", StaticFiles(directory=str(_HERE / "static")), name="static")
    # the page stylesheet, the chart module and uPlot: the same files report.html inlines
    app.mount("/assets", StaticFiles(directory=str(_ASSETS)), name="assets")

    @app.middleware("http")
    async def protect(request: Request, call_next: Any) -> Response:
        host = request.headers.get("host", "")
        if not guard.host_ok(host):
            return Response("unknown host: open the gallery at http://127.0.0.1", status_code=421)
        given = guard.presented(dict(request.headers), dict(request.cookies), dict(request.query_params))
        if not guard.token_ok(given):
            return HTMLResponse(
                "<h1>401</h1><p>This gallery needs its access token: open the address printed by "
                "<code>driftloop serve</code> (it ends in <code>?token=...</code>).</p>",
                status_code=401,
            )
        if request.method not in SAFE_METHODS and not guard.same_origin(
            request.headers.get("origin"), request.headers.get("referer"), host
        ):
            return Response("cross-site request refused", status_code=403)
        if guard.token and request.method == "GET" and request.query_params.get("token"):
            target = without_token(request.url.path, request.query_params.multi_items())
            response: Response = RedirectResponse(target, status_code=303)
            response.set_cookie(TOKEN_COOKIE, guard.token, httponly=True, samesite="strict")
            return response
        response = await call_next(request)
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        return response

    def page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        context.update(csrf=guard.csrf, csrf_field=CSRF_FIELD, statuses=RUN_STATUSES)
        return templates.TemplateResponse(request, name, context, status_code=status_code)

    def check_csrf(request: Request, form_value: str | None) -> None:
        if not guard.csrf_ok(form_value or request.headers.get(CSRF_HEADER)):
            raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")

    def detail_or_404(run_id: str):
        run = data.run(_check_run_id(run_id))
        if run is None:
            raise HTTPException(404, "no such run")
        return run

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        path = request.url.path
        if path.startswith(("/frames/", "/thumbs/", "/static/", "/assets/")) or path.endswith(".json"):
            return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
        return page(request, "error.html", exc.status_code, message=exc.detail, code=exc.status_code)

    # ---- pages -------------------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse)
    def runs_page(
        request: Request,
        model: str = "",
        sweep: str = "",
        status: str = "",
        page_no: int = Query(1, alias="page"),
    ) -> HTMLResponse:
        listing = data.runs(model or None, sweep or None, status or None, page_no, PER_PAGE)
        filters = {"model": model, "sweep": sweep, "status": status}
        name = "_runs_table.html" if request.headers.get("hx-request") else "runs.html"
        return page(request, name, listing=listing, filters=filters)

    def selection(
        col: list[str] | None = Query(None),
        sort: str = "-created",
        model: str = "",
        sweep: str = "",
        status: str = "",
        where: list[str] | None = Query(None),
        page_no: int = Query(1, alias="page"),
        per_page: int = PER_PAGE_CHOICES[1],
    ) -> tuple[TableView, ChainQuery]:
        """The chains table's view and store query of a request (its query parameters); a bad one is a 400
        that names it. The table, the bundles and their data read the same parameters through it."""
        try:
            return read_view(col or [], sort, model, sweep, status, where or [], page_no, per_page,
                             STATUS_WORDS)  # fmt: skip
        except DriftloopError as exc:
            raise HTTPException(400, str(exc)) from None

    @app.get("/chains", response_class=HTMLResponse)
    def chains_page(request: Request, picked: tuple = Depends(selection)) -> Response:
        """Every chain as a table: number columns of the vocabulary, sorted and filtered in the store."""
        view, query = picked
        if any(value == "" for _, value in request.query_params.multi_items()):
            return RedirectResponse(view.link(), 303)  # the form's empty fields: the address to bookmark
        models, sweeps = data.table_choices()  # what the filters offer
        table = data.chain_table(query)
        marked = [f"{r.run_id}:{r.chain}" for r in table.rows]  # the page's rows, marked in their bundle
        return page(request, "chains.html", view=view, table=table, choices=column_choices(), models=models,
                    sweeps=sweeps, per_page_choices=PER_PAGE_CHOICES,
                    bundle_link=view.bundle_link(marked))  # fmt: skip

    def bundle_query(query: ChainQuery, measure: str, by: str) -> ChainQuery:
        """The chains table's selection (its filters; every match, not a page) for a bundle."""
        if measure not in MEASURES or by not in GROUPINGS:
            raise HTTPException(400, f"bundle of {measure!r} by {by!r}: a measure of the vocabulary, "
                                     f"grouped by {', '.join(GROUPINGS)}")  # fmt: skip
        return replace(query, columns=(), sort="run", page=1, per_page=MAX_CHAINS)

    def marks(mark: list[str] | None = Query(None)) -> tuple[str, ...]:
        """The chains a bundle marks (``mark=RUN:CHAIN``, repeated: a table's page); a bad one is a 400."""
        try:
            return read_marks(mark or [])
        except DriftloopError as exc:
            raise HTTPException(400, str(exc)) from None

    @app.get("/bundles", response_class=HTMLResponse)
    def bundles_page(
        request: Request,
        picked: tuple = Depends(selection),
        marked: tuple = Depends(marks),
        measure: str = DEFAULT_MEASURE,
        by: str = "model",
    ) -> HTMLResponse:
        """Every selected chain's curve of a measure, grouped, with each group's mean and band, and the
        marked chains (a table's page) on top."""
        view, query = picked
        bundle_query(query, measure, by)
        measures = {m: LABELS.get(m, m) for m in TABLE_ORDER}
        return page(request, "bundles.html", view=view, measure=measure, by=by, measures=measures,
                    groupings=GROUPINGS, labels=LABELS, max_chains=MAX_CHAINS, marked=marked)  # fmt: skip

    @app.get("/bundles.json")
    def bundles_data(
        picked: tuple = Depends(selection),
        marked: tuple = Depends(marks),
        measure: str = DEFAULT_MEASURE,
        by: str = "model",
    ) -> JSONResponse:
        table = data.chain_table(bundle_query(picked[1], measure, by))
        runs = list(dict.fromkeys(r.run_id for r in table.rows))
        bundle = build_bundle(table.rows, data.metric_values(measure, runs), by, {}, marked)
        bundle.update(measure=measure, label=LABELS.get(measure, measure), by=by, total=table.total)
        return JSONResponse(bundle)

    @app.get("/runs/{run_id}", response_class=HTMLResponse)
    def run_page(request: Request, run_id: str) -> HTMLResponse:
        run = detail_or_404(run_id)
        ends = {c.chain: data.frames(run.id, c.chain) for c in run.chains}
        return page(request, "run.html", run=run, ends=ends, events=data.events(run.id)[-50:],
                    downloads=DOWNLOADS)  # fmt: skip

    @app.get("/runs/{run_id}/chains/{chain}", response_class=HTMLResponse)
    def chain_page(request: Request, run_id: str, chain: int, step: int | None = None) -> HTMLResponse:
        run = detail_or_404(run_id)
        info = next((c for c in run.chains if c.chain == chain), None)
        if info is None:
            raise HTTPException(404, "no such chain")
        frames = data.frames(run.id, chain)
        shown = next((f for f in frames if f.step == step), frames[-1] if frames else None)
        listed = [{"step": f.step, "sha256": f.sha256} for f in frames]
        return page(request, "chain.html", run=run, chain=info, step=step, plots=PLOTS, frames=listed,
                    shown=shown, first=frames[0] if frames else None, labels=LABELS)  # fmt: skip

    @app.get("/runs/{run_id}/chains/{chain}/data.json")
    def chain_data(run_id: str, chain: int) -> JSONResponse:
        run = detail_or_404(run_id)
        if chain not in {c.chain for c in run.chains}:
            raise HTTPException(404, "no such chain")
        got = data.chain_data(run.id, chain)
        frames = got.frames if got else []
        return JSONResponse(
            {
                "run_id": run.id,
                "chain": chain,
                "model": run.model,
                "status": run.status,
                "n_steps": run.n_steps,
                "frames": [{"step": f.step, "sha256": f.sha256} for f in frames],
                "metrics": got.metrics if got else {"step": []},
                "markers": data.markers(run.id, chain) if frames else {},
            }
        )

    @app.get("/compare", response_class=HTMLResponse)
    def compare_page(
        request: Request, c: list[str] | None = Query(None), step: int | None = None
    ) -> HTMLResponse:
        picked = []
        for item in (c or [])[:MAX_COMPARE]:
            run_id, _, chain = item.rpartition(":")
            if not chain.isdigit():
                raise HTTPException(404, f"not a chain: {item!r} (expected RUN_ID:CHAIN)")
            run = detail_or_404(run_id)
            info = next((x for x in run.chains if x.chain == int(chain)), None)
            if info is None:
                raise HTTPException(404, "no such chain")
            picked.append((run, info))
        recent = data.runs(page=1, per_page=20).items
        return page(request, "compare.html", picked=picked, recent=recent, plots=PLOTS, labels=LABELS,
                    step=step)  # fmt: skip

    @app.get("/sweeps/{name}", response_class=HTMLResponse)
    def sweep_page(request: Request, name: str) -> HTMLResponse:
        info = data.sweep(name) if NAME.fullmatch(name) else None
        if info is None:
            raise HTTPException(404, "no such sweep")
        by_arm = {c.arm: c.link_model for c in info.cells.cells}  # the card's models -> their chains filter
        return page(request, "sweep.html", sweep=info, headline=HEADLINE, signed=SIGNED,
                    choices=column_choices(), cells_by_arm=by_arm)  # fmt: skip

    @app.get("/sweeps/{name}/bias_card.html")
    def sweep_card(name: str) -> Response:
        info = data.sweep(name) if NAME.fullmatch(name) else None
        if info is None or info.card_html is None:
            raise HTTPException(404, "this sweep has no bias card yet: run `driftloop bias NAME`")
        return FileResponse(
            info.card_html, media_type="text/html", headers={"Content-Security-Policy": CARD_CSP}
        )

    @app.get("/sweeps/{name}/bias_card.json")
    def sweep_card_json(name: str) -> JSONResponse:
        info = data.sweep(name) if NAME.fullmatch(name) else None
        if info is None or info.card is None:
            raise HTTPException(404, "this sweep has no bias card yet")
        return JSONResponse(info.card)

    @app.get("/live", response_class=HTMLResponse)
    def live_page(request: Request) -> HTMLResponse:
        listed = data.runs(status="running", per_page=100).items
        running = [r for r in listed if data.live_pid(r.id) is not None]  # a process advances it now
        return page(request, "live.html", running=running)

    # ---- frames and files --------------------------------------------------------------------------
    @app.get("/favicon.ico")
    def favicon() -> Response:
        return Response(status_code=204)  # pages say they have none; this quiets a plain-text page's ask

    @app.get("/frames/{run_id}/{sha256}.png")
    def frame(request: Request, run_id: str, sha256: str) -> Response:
        path = data.frame_file(_check_run_id(run_id), sha256) if SHA.fullmatch(sha256) else None
        if path is None:
            raise HTTPException(404, "no such frame")
        return _immutable_file(request, path, sha256, "image/png")

    @app.get("/thumbs/{run_id}/{sha256}/{size}.webp")
    def thumb(request: Request, run_id: str, sha256: str, size: int) -> Response:
        if size not in THUMB_SIZES or not SHA.fullmatch(sha256):
            raise HTTPException(404, "no such thumbnail")
        source = data.frame_file(_check_run_id(run_id), sha256)
        if source is None:
            raise HTTPException(404, "no such frame")
        path = thumbnail(data.root / ".thumbs", source, sha256, size)
        return _immutable_file(request, path, f"{sha256}-{size}", "image/webp")

    @app.get("/runs/{run_id}/download/{kind}")
    def download(run_id: str, kind: str, chain: int = 0) -> Response:
        run = detail_or_404(run_id)
        if chain not in {c.chain for c in run.chains}:
            raise HTTPException(404, "no such chain")
        path = data.download(run.id, kind, chain)
        if path is None and kind == "csv":
            path = data.write_csv(run.id)
        if path is None and kind in ANIMATION_KINDS:  # a chain the render left out: made now, and kept
            path = data.animation(run.id, kind, chain)
            if path is None:
                raise HTTPException(404, f"no {kind} of chain {chain} yet: its run runs, or it has no frames")
        if path is None:
            raise HTTPException(404, f"no {kind} for this run yet: press 'render outputs' on the run page")
        return FileResponse(path, filename=f"{run.id}-{path.name}")

    # ---- live progress -----------------------------------------------------------------------------
    @app.get("/runs/{run_id}/progress.json")
    def progress(run_id: str) -> JSONResponse:
        snap = data.progress(_check_run_id(run_id))
        if snap is None:
            raise HTTPException(404, "no such run")
        return JSONResponse(snap.to_dict())

    @app.get("/runs/{run_id}/events")
    async def events(request: Request, run_id: str) -> StreamingResponse:
        if data.progress(_check_run_id(run_id)) is None:
            raise HTTPException(404, "no such run")

        async def stream():
            last = None
            while not await request.is_disconnected():
                snap = await asyncio.to_thread(data.progress, run_id)
                if snap is None:
                    return
                body = json.dumps(snap.to_dict())
                if body != last:
                    yield f"event: progress\ndata: {body}\n\n"
                    last = body
                if snap.status != "running":
                    yield f"event: end\ndata: {body}\n\n"
                    return
                await asyncio.sleep(EVENT_POLL_S)

        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)

    # ---- actions -----------------------------------------------------------------------------------
    def new_form(request: Request, status_code: int = 200, error: str | None = None, model: str = "taef2",
                 values: dict[str, str] | None = None, extra: str = "") -> HTMLResponse:  # fmt: skip
        """The start-a-run form, with ``model`` chosen and its parameters at ``values`` (else defaults)."""
        return page(request, "new.html", status_code, models=data.models(), images=data.input_images(),
                    error=error, stabilizers=STABILIZERS, chosen=model, model=model, params=params_of(model),
                    values=values or {}, extra=extra)  # fmt: skip

    @app.get("/new", response_class=HTMLResponse)
    def new_page(request: Request, model: str = "taef2") -> HTMLResponse:
        return new_form(request, model=model if model in {m.name for m in data.models()} else "taef2")

    @app.get("/new/params", response_class=HTMLResponse)
    def new_params(request: Request, model: str = "taef2") -> HTMLResponse:
        """The chosen model's parameters (a static description: no backend is imported), swapped into the
        form; the estimate is asked again once they are in (``params-ready``)."""
        if model not in {m.name for m in data.models()}:
            raise HTTPException(404, f"model {model!r} is not one this machine knows")
        answer = page(request, "_params.html", model=model, params=params_of(model), values={}, extra="")
        answer.headers["HX-Trigger-After-Settle"] = "params-ready"
        return answer

    @app.post("/new/estimate", response_class=HTMLResponse)
    async def new_estimate(
        request: Request,
        model: str = Form("taef2"),
        steps: int = Form(101),
        seeds: str = Form("0"),
        size: int = Form(512),
        stabilize: str = Form("none"),
        picked: str = Form(""),
        csrf: str | None = Form(None, alias=CSRF_FIELD),
    ) -> HTMLResponse:
        """The dry run of the form's settings (calls, cost, time), shown before the run is started."""
        check_csrf(request, csrf)
        image = data.input_images().get(picked)
        values, extra = form_values((await request.form()).multi_items(), model)
        if model.split(":", 1)[0] not in {m.name for m in data.models()}:
            found, spec = None, model
        else:
            try:
                spec = await asyncio.to_thread(model_spec, model, values, extra)
            except DriftloopError as exc:
                return page(request, "_estimate.html", estimate=None, model=model, error=str(exc))
            found = await asyncio.to_thread(form_estimate, data.root, image, spec, steps, seeds, size,
                                            stabilize, max_pixels)  # fmt: skip
        return page(request, "_estimate.html", estimate=found, model=model, spec=spec, error=None)

    @app.post("/new")
    async def new_run(
        request: Request,
        model: str = Form("taef2"),
        steps: int = Form(101),
        seeds: str = Form("0"),
        size: int = Form(512),
        stabilize: str = Form("none"),
        picked: str = Form(""),
        render: bool = Form(False),
        image: UploadFile | None = File(None),
        csrf: str | None = Form(None, alias=CSRF_FIELD),
    ) -> Response:
        check_csrf(request, csrf)
        values, extra = form_values((await request.form()).multi_items(), model)
        known = {m.name for m in data.models()}
        try:
            if not (1 <= steps <= 10_000 and 8 <= size <= 4096):
                raise DriftloopError("steps must be 1..10000 and size 8..4096 pixels")
            if not re.fullmatch(r"[0-9,\- ]{1,200}", seeds):
                raise DriftloopError(f"seeds {seeds!r}: expected whole numbers like 1,2,3 or a range 0-4")
            if stabilize not in STABILIZERS:
                raise DriftloopError(f"stabilizer {stabilize!r}: choose one of {', '.join(STABILIZERS)}")
            if model.split(":", 1)[0] not in known:
                raise DriftloopError(f"model {model!r} is not one this machine knows")
            spec = await asyncio.to_thread(model_spec, model, values, extra)
            upload = await image.read() if image is not None and image.filename else b""
            if upload or (image is not None and image.filename):
                path, _notes = await asyncio.to_thread(
                    save_upload, upload, image.filename or "upload", data.root / "uploads", max_pixels
                )
            elif picked in data.input_images():
                path = data.input_images()[picked]
            else:
                raise DriftloopError("choose an image: upload one or pick one already in the workspace")
        except DriftloopError as exc:
            chosen = model if model in known else "taef2"
            return new_form(request, 400, str(exc), chosen, values if chosen == model else {}, extra)
        job = jobs.start_run(path, spec, steps, seeds.replace(" ", ""), size, render, stabilize)
        return RedirectResponse(f"/jobs/{job.id}", status_code=303)

    @app.post("/runs/{run_id}/stop")
    async def stop(request: Request, run_id: str, csrf: Csrf = None) -> Response:
        check_csrf(request, csrf)
        run = detail_or_404(run_id)
        if not jobs.stop(run.id):
            raise HTTPException(409, "this run is not running")
        return RedirectResponse(f"/runs/{run.id}", status_code=303)

    @app.post("/runs/{run_id}/resume")
    async def resume(request: Request, run_id: str, csrf: Csrf = None) -> Response:
        check_csrf(request, csrf)
        run = detail_or_404(run_id)
        if run.status in ("running", "done"):
            raise HTTPException(409, f"this run is {run.status}; only a stopped run can be resumed")
        job = jobs.resume(run.id)
        return RedirectResponse(f"/jobs/{job.id}", status_code=303)

    @app.post("/runs/{run_id}/render")
    async def render(request: Request, run_id: str, csrf: Csrf = None) -> Response:
        check_csrf(request, csrf)
        run = detail_or_404(run_id)
        job = jobs.render(run.id)
        return RedirectResponse(f"/jobs/{job.id}", status_code=303)

    @app.get("/jobs/{job_id}.json")
    def job_state(job_id: str) -> JSONResponse:
        job = jobs.get(job_id)
        if job is None:
            raise HTTPException(404, "no such job")
        code = job.returncode
        return JSONResponse({"id": job.id, "kind": job.kind, "run_id": jobs.run_of(job), "returncode": code,
                             "log": job.tail() if code not in (None, 0) else ""})  # fmt: skip

    @app.get("/jobs/{job_id}", response_class=HTMLResponse)
    def job_page(request: Request, job_id: str) -> HTMLResponse:
        job = jobs.get(job_id)
        if job is None:
            raise HTTPException(404, "no such job (jobs are remembered while the server runs)")
        return page(request, "job.html", job=job, run_id=jobs.run_of(job))

    return app
