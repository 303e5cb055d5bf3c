"""A local stand-in for Black Forest Labs' API (submit, poll, signed result URL), for tests.

``BFL_BASE_URL=<fake.url>`` points the bfl replicator at it. It speaks BFL's shapes:

- ``POST /v1/<model>`` (header ``x-key``): JSON ``prompt``, ``input_image`` (base64), ``width``/``height``
  (FLUX.2) or ``aspect_ratio`` (Kontext), ``seed``, ...; answers ``{"id", "polling_url", "cost",
  "input_mp", "output_mp"}`` and bills ``cost`` credits (FLUX.2: first MP + further output MP + input MP at
  the model's rate; Kontext: per image).
- ``GET /v1/get_result?id=`` (header ``x-key``): ``{"id", "status", "result": {"sample", "seed"}}``.
- ``GET /results/<id>.png?sig=<n>`` (no key): the image; an expired signature answers 403.

By default a task is ``Pending`` for one poll, then ``Ready`` with the input image at the requested size
(red + 1). Tests script the next submits with :meth:`FakeBFL.script` (a :class:`Reply` answers the submit
itself; a :class:`Task` shapes what the accepted task does).
"""

from __future__ import annotations

import base64
import io
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np
from fake_image_api import FakeServer, Reply, ReplyHandler, altered
from PIL import Image

# credits: (first MP, each further MP) for FLUX.2; (per image, None) for Kontext
RATES = {
    "flux-2-pro": (3.0, 1.5),
    "flux-2-max": (7.0, 3.0),
    "flux-2-flex": (5.0, 5.0),
    "flux-2-klein-4b": (1.4, 0.1),
    "flux-2-klein-9b": (1.5, 0.2),
    "flux-kontext-pro": (4.0, None),
    "flux-kontext-max": (8.0, None),
}


@dataclass
class Task:
    """What an accepted task does: ``pending`` polls, then ``final`` (``Ready``, ``Content Moderated``,
    ``Request Moderated``, ``Error``, ``Task not found``, or ``never``: pending forever). ``expire_first``:
    the first signed URL is already stale. ``body``: a raw Ready answer (malformed cases). ``image_bytes``:
    what the result URL serves instead of the PNG. ``report_cost``: whether the submit answer says it."""

    pending: int = 1
    final: str = "Ready"
    expire_first: bool = False
    body: dict[str, Any] | None = None
    image_bytes: bytes | None = None
    report_cost: bool = True
    # filled in by the fake
    id: str = ""
    image: np.ndarray | None = None
    polls: int = 0
    sig: int = 0
    downloads: int = 0
    credits: float = 0.0


@dataclass
class Submitted:
    """One submit as the fake saw it."""

    model: str
    headers: dict[str, str]
    body: dict[str, Any]
    image: np.ndarray | None = None
    started: float = 0.0
    problems: list[str] = field(default_factory=list)


def bfl_error(status: int, message: str, headers: dict[str, str] | None = None, **extra: Any) -> Reply:
    return Reply(status, {"detail": message, **extra}, headers or {})


def rate_limited(retry_after: str | None = "1") -> Reply:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return Reply(
        429,
        {"error": "rate_limit_exceeded", "message": "Too many concurrent requests", "retry_after": 0.2},
        headers,
    )


def credits_for(model: str, width: int, height: int, in_w: int, in_h: int) -> float:
    first, extra = RATES[model]
    if extra is None:
        return first
    out_mp, in_mp = width * height / 1e6, in_w * in_h / 1e6
    return first + max(0.0, out_mp - 1.0) * extra + in_mp * extra


class _Handler(ReplyHandler):
    api: FakeBFL

    def do_POST(self) -> None:
        started = time.monotonic()
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        model = urlparse(self.path).path.removeprefix("/v1/")
        req = Submitted(model, headers, {}, started=started)
        try:
            req.body = json.loads(raw)
        except ValueError:
            req.problems.append("body is not JSON")
        body = req.body
        if not body.get("prompt"):
            req.problems.append("prompt is required")
        try:
            data = base64.b64decode(body.get("input_image", ""), validate=True)
            with Image.open(io.BytesIO(data)) as img:
                req.image = np.asarray(img.convert("RGB")).copy()
        except Exception as exc:
            req.problems.append(f"input_image is not a base64 image: {exc}")
        if "width" in body:
            w, h = int(body["width"]), int(body["height"])
            if w % 16 or h % 16 or w < 64 or h < 64 or w * h > 4_000_000:
                req.problems.append(f"width/height {w}x{h} out of range")
        elif model.startswith("flux-kontext") and "aspect_ratio" not in body:
            req.problems.append("aspect_ratio is required")
        with self.api._lock:
            self.api.submitted.append(req)
        reply = self.api.submit(req)
        if reply.delay and self.api._closing.wait(reply.delay):
            return
        self._send(reply)

    def do_GET(self) -> None:
        parsed = urlparse(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        query = parse_qs(parsed.query)
        if parsed.path == "/v1/get_result":
            self._send(self.api.poll(headers, query))
        elif parsed.path.startswith("/results/"):
            self._send(self.api.result(parsed.path, query))
        else:
            self._send(Reply(404, {"detail": "Not Found"}))


class FakeBFL(FakeServer):
    """``with FakeBFL(key=...) as fake: ...``; ``fake.submitted``, ``fake.tasks``, ``fake.billed``."""

    handler = _Handler
    thread_name = "fake-bfl"

    def __init__(self, key: str = "bfl-fake") -> None:
        super().__init__()
        self.key = key
        self.submitted: list[Submitted] = []
        self.tasks: dict[str, Task] = {}
        self.billed = 0.0  # credits
        self.polls = 0
        self._queue: deque[Reply | Task] = deque()

    def script(self, *actions: Reply | Task) -> None:
        with self._lock:
            self._queue.extend(actions)

    # ------------------------------------------------------------------ behaviour

    def submit(self, req: Submitted) -> Reply:
        if req.headers.get("x-key") != self.key:
            return bfl_error(401, f"Invalid key {req.headers.get('x-key', '')}")
        if req.model not in RATES:
            return bfl_error(404, "Not Found")
        if req.problems:
            return Reply(422, {"detail": [{"msg": p} for p in req.problems]})
        with self._lock:
            action = self._queue.popleft() if self._queue else Task()
            n = len(self.tasks) + 1
        if isinstance(action, Reply):
            return action
        task = action
        task.id = f"task-{n}"
        assert req.image is not None
        if "width" in req.body:
            size = (int(req.body["width"]), int(req.body["height"]))
        else:  # Kontext: about one megapixel at the ratio asked for
            a, b = (int(x) for x in str(req.body["aspect_ratio"]).split(":"))
            height = round((1_000_000 * b / a) ** 0.5 / 16) * 16
            size = (round(height * a / b / 16) * 16, height)
        task.image = altered(req.image, size)
        task.credits = credits_for(req.model, *size, req.image.shape[1], req.image.shape[0])
        with self._lock:
            self.tasks[task.id] = task
            self.billed += task.credits
        body: dict[str, Any] = {"id": task.id, "polling_url": f"{self.url}/v1/get_result?id={task.id}"}
        if task.report_cost:
            in_mp, out_mp = req.image.size / 3 / 1e6, size[0] * size[1] / 1e6
            body.update(cost=task.credits, input_mp=in_mp, output_mp=out_mp)
        return Reply(200, body)

    def poll(self, headers: dict[str, str], query: dict[str, list[str]]) -> Reply:
        if headers.get("x-key") != self.key:
            return bfl_error(401, "Invalid key")
        task = self.tasks.get((query.get("id") or [""])[0])
        with self._lock:
            self.polls += 1
        if task is None:
            return Reply(200, {"id": None, "status": "Task not found"})
        task.polls += 1
        if task.final == "never" or task.polls <= task.pending:
            return Reply(200, {"id": task.id, "status": "Pending", "progress": 0.5})
        if task.body is not None:
            return Reply(200, task.body)
        if task.final != "Ready":
            extra: dict[str, Any] = {}
            if "Moderated" in task.final:
                extra = {"details": {"moderation": ["Derivative Works Filter"]}}
            if task.final == "Error":
                extra = {"error": "internal generation error"}
            return Reply(200, {"id": task.id, "status": task.final, "result": None, **extra})
        task.sig += 1
        sample = f"{self.url}/results/{task.id}.png?sig={task.sig}"
        return Reply(200, {"id": task.id, "status": "Ready", "result": {"sample": sample, "seed": 42}})

    def result(self, path: str, query: dict[str, list[str]]) -> Reply:
        task = self.tasks.get(path.rsplit("/", 1)[-1].removesuffix(".png"))
        if task is None:
            missing = b"<Error><Code>BlobNotFound</Code></Error>"
            return Reply(404, missing, {"Content-Type": "application/xml"})
        task.downloads += 1
        sig = int((query.get("sig") or ["0"])[0])
        if task.expire_first and sig == 1:
            body = b"<Error><Code>AuthenticationFailed</Code><Message>Signature expired</Message></Error>"
            return Reply(403, body, {"Content-Type": "application/xml"})
        if task.image_bytes is not None:
            return Reply(200, task.image_bytes, {"Content-Type": "image/png"})
        assert task.image is not None
        buf = io.BytesIO()
        Image.fromarray(task.image, "RGB").save(buf, "PNG", compress_level=1)
        return Reply(200, buf.getvalue(), {"Content-Type": "image/png"})
