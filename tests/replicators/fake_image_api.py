"""A local stand-in for the OpenAI image edit and Gemini generateContent endpoints, for tests.

Real clients (``openai``, ``google-genai``) are pointed at it (``OPENAI_BASE_URL=<fake.openai_base>``,
``GOOGLE_GEMINI_BASE_URL=<fake.url>``). It speaks the endpoints' request and response shapes:

- ``POST /v1/images/edits``: multipart form (``image`` file part, ``prompt``, ``model``, ``size``,
  ``quality``, ``output_format``, ...), ``Authorization: Bearer <key>``; answers ``{"created",
  "data": [{"b64_json"}], "usage", "size", "quality", "output_format"}`` with an ``x-request-id`` header.
- ``POST /{v1,v1beta}/models/{model}:generateContent`` (google-genai 3.x calls ``v1``): JSON
  ``contents[].parts[]`` (``inlineData``/``inline_data`` with standard or URL-safe base64, ``text``),
  ``generationConfig.imageConfig.aspectRatio``, header ``x-goog-api-key``; answers
  ``candidates[0].content.parts[].inlineData {mimeType, data}``, ``finishReason``, ``usageMetadata``.

By default a request gets its input image back at the requested size (OpenAI ``size``; Gemini: the 1K canvas
of the requested aspect ratio) with red raised by 1. A wrong key gets a 401 that echoes the key it was
given (as real APIs echo part of it). Missing fields get a 400. Tests script faults per request with
:meth:`FakeImageAPI.script` (a queue shared by all requests, consumed in arrival order): :class:`Reply`
objects or callables ``(Received) -> Reply | ndarray | None``.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

import numpy as np
from PIL import Image

GEMINI_RATIOS = {"9:21", "1:4", "4:1", "1:8", "8:1"}  # gemini-3.1-flash-image's extra ratios
GEMINI_TIER_TOKENS = {"512": 747, "1K": 1120, "2K": 1680, "4K": 2520}  # output tokens the fake bills per tier
GEMINI_CANVASES = {
    "1:1": (1024, 1024),
    "2:3": (832, 1248),
    "3:2": (1248, 832),
    "3:4": (864, 1184),
    "4:3": (1184, 864),
    "4:5": (896, 1152),
    "5:4": (1152, 896),
    "9:16": (768, 1344),
    "16:9": (1344, 768),
    "21:9": (1536, 672),
}
OPENAI_SIZES = {"1024x1024", "1536x1024", "1024x1536", "auto"}
OPENAI_QUALITIES = {"low", "medium", "high", "auto"}
OPENAI_QUALITIES_2X = OPENAI_QUALITIES | {"xhigh", "max"}  # the gpt-image-2.5 / 2.6 models


@dataclass
class Received:
    """One request as the fake saw it."""

    provider: str
    path: str
    headers: dict[str, str]
    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)  # name -> (filename, type)
    image: np.ndarray | None = None
    body: Any = None
    started: float = 0.0
    auth_ok: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def requested_size(self) -> tuple[int, int] | None:
        """(width, height) the client asked for, if any."""
        if self.provider == "openai":
            size = self.fields.get("size", "auto")
            if size != "auto" and "x" in size:
                w, h = size.split("x")
                return int(w), int(h)
            return None
        ratio = self.fields.get("aspect_ratio")
        return GEMINI_CANVASES.get(ratio) if ratio else None


@dataclass
class Reply:
    """A scripted answer: status, JSON (dict) or raw bytes body, headers, and a delay before answering."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    image: np.ndarray | None = None  # with status 200 and no body: answer this image


Action = Reply | Callable[[Received], "Reply | np.ndarray | None"]


# gpt-image-1's output tokens per image (its docs: 272 / 1056 / 4160 at 1024², 408 / 1584 / 6240 otherwise)
OUTPUT_TOKENS = {"low": (272, 408), "medium": (1056, 1584), "high": (4160, 6240)}


def output_tokens(quality: str, shape: tuple[int, ...], model: str = "gpt-image-1") -> int:
    if model.startswith("gpt-image-2"):
        return gpt_image_2_tokens("medium" if quality == "auto" else quality, shape[1], shape[0])
    square, oblong = OUTPUT_TOKENS["medium" if quality == "auto" else quality]
    return square if shape[0] == shape[1] else oblong


def gpt_image_2_tokens(quality: str, width: int, height: int) -> int:
    """What the fake bills a gpt-image-2 output as: OpenAI's calculator (196 / 1756 / 7024 at 1024²)."""
    f = {"low": 16, "medium": 48, "high": 96, "xhigh": 192, "max": 384}[quality]
    big, small = max(width, height), min(width, height)
    s = (2 * f * small + big) // (2 * big)
    return -(-f * s * (2_000_000 + width * height) // 4_000_000)


def flexible_size_problem(size: str) -> str | None:
    """gpt-image-2's size rule: WxH, multiples of 16, 655,360 to 8,294,400 pixels, edges ≤ 3840, ≤ 3:1."""
    w, x, h = size.partition("x")
    if not (x and w.isdigit() and h.isdigit()):
        return f"invalid size {size!r}"
    wi, hi = int(w), int(h)
    if wi % 16 or hi % 16 or not 655_360 <= wi * hi <= 8_294_400 or max(wi, hi) > 3840:
        return f"invalid size {size!r}: outside the model's pixel limits"
    if max(wi, hi) / min(wi, hi) > 3:
        return f"invalid size {size!r}: aspect ratio beyond 3:1"
    return None


def fake_vision_tokens(width: int, height: int) -> int:
    """What the fake bills the mainline model for one image in context (85 + 170 per 512-px tile of the
    image reduced to a 768-px short side; a little off driftloop's estimate, as a real bill would be)."""
    short = min(width, height)
    scale = min(1.0, 768 / short)
    tiles = -(-round(width * scale) // 512) * -(-round(height * scale) // 512)
    return 85 + 170 * tiles + 10


def _json(raw: bytes, problems: list[str]) -> Any:
    """A request's JSON body; None (and a problem noted) when it is not JSON."""
    try:
        return json.loads(raw)
    except ValueError:
        problems.append("body is not JSON")
        return None


def _unb64(text: str) -> bytes:
    """Standard or URL-safe base64, padded or not (proto3 JSON bytes)."""
    data = str(text).replace("-", "+").replace("_", "/")
    return base64.b64decode(data + "=" * (-len(data) % 4))


def _tiles(width: int, height: int) -> int:
    """512-px tiles of an image whose short side is scaled to 512 (gpt-image-1's input image rule)."""
    short = min(width, height)
    return -(-round(width * 512 / short) // 512) * -(-round(height * 512 / short) // 512)


def png_b64(image: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(image, "RGB").save(buf, "PNG", compress_level=1)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def altered(image: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """The default "copy": resized to ``size`` (w, h) when given, red + 1."""
    out = image
    if size is not None and (image.shape[1], image.shape[0]) != size:
        out = np.asarray(Image.fromarray(image, "RGB").resize(size, Image.Resampling.BICUBIC))
    out = out.copy()
    out[..., 0] = np.minimum(out[..., 0].astype(np.int16) + 1, 255).astype(np.uint8)
    return out


# ------------------------------------------------------------------------------------------ scripted faults


def openai_error(
    status: int,
    message: str,
    code: str | None = None,
    headers: dict | None = None,
    type_: str = "invalid_request_error",
) -> Reply:
    body = {"error": {"message": message, "type": type_, "param": None, "code": code}}
    return Reply(status, body, headers or {})


def gemini_error(
    status: int, message: str, status_name: str, details: list | None = None, headers: dict | None = None
) -> Reply:
    body = {"error": {"code": status, "message": message, "status": status_name, "details": details or []}}
    return Reply(status, body, headers or {})


def rate_limited(provider: str, retry_after: str | None = "1", retry_delay: str | None = None) -> Reply:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    if provider == "openai":
        return openai_error(
            429, "Rate limit reached for images per min", "rate_limit_exceeded", headers, "requests"
        )
    details = []
    if retry_delay is not None:
        details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay}]
    return gemini_error(
        429, "Resource has been exhausted (e.g. check quota).", "RESOURCE_EXHAUSTED", details, headers
    )


def server_error(provider: str, status: int = 500, message: str = "The server had an error") -> Reply:
    if provider == "openai":
        return openai_error(status, message, None, type_="server_error")
    return gemini_error(status, message, "INTERNAL")


def hang(seconds: float) -> Callable[[Received], Reply]:
    """Answer normally, but only after ``seconds`` (past the client's timeout: a hang)."""
    return lambda req: Reply(200, None, {}, seconds, altered(req.image, req.requested_size))  # type: ignore[arg-type]


def refusal(provider: str, kind: str = "finish") -> Reply:
    """A content-policy refusal as each API gives it. Gemini ``kind``: ``finish`` (candidate finishReason
    IMAGE_SAFETY, no image) or ``prompt`` (promptFeedback.blockReason, no candidates)."""
    if provider == "openai":
        return openai_error(
            400,
            "Your request was rejected by the safety system. If you believe this is an error, contact us "
            "at help.openai.com and include the request ID req_fake.",
            "moderation_blocked",
            type_="image_generation_user_error",
        )
    if kind == "prompt":
        return Reply(
            200, {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "responseId": "fake-blocked"}
        )
    return Reply(
        200,
        {
            "candidates": [{"content": {"role": "model"}, "finishReason": "IMAGE_SAFETY", "index": 0}],
            "responseId": "fake-refused",
        },
    )


def malformed(provider: str, kind: str) -> Reply:
    """``no_data``, ``no_b64``, ``garbage_b64``, ``not_image``, ``not_json`` (and Gemini ``text_only``)."""
    if kind == "not_json":
        return Reply(200, b"<html>gateway says hello</html>", {"Content-Type": "application/json"})
    bad = {"garbage_b64": "!!!not base64@@@", "not_image": base64.b64encode(b"hello, not a png").decode()}
    if provider == "openai":
        if kind == "no_data":
            return Reply(200, {"created": int(time.time())})
        if kind == "no_b64":
            return Reply(200, {"created": int(time.time()), "data": [{}]})
        return Reply(200, {"created": int(time.time()), "data": [{"b64_json": bad[kind]}]})
    if kind == "no_data":
        return Reply(200, {"responseId": "fake-empty"})
    if kind in ("no_b64", "text_only"):
        parts = [{"text": "I made a lovely copy but forgot to attach it."}]
        return Reply(
            200, {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP"}]}
        )
    part = {"inlineData": {"mimeType": "image/png", "data": bad[kind]}}
    return Reply(
        200, {"candidates": [{"content": {"role": "model", "parts": [part]}, "finishReason": "STOP"}]}
    )


# ----------------------------------------------------------------------------------------------- the server


class FakeServer:
    """What every fake API shares: a threaded HTTP server on 127.0.0.1 with its handler class bound to the
    fake, ``url``, ``start``/``stop`` and ``with``. ``handler``: the fake's :class:`ReplyHandler`."""

    handler: type[ReplyHandler]
    thread_name = "fake-api"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Self:
        handler = type("Handler", (self.handler,), {"api": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=self.thread_name,
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._closing.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ReplyHandler(BaseHTTPRequestHandler):
    """A fake's request handler: quiet, keep-alive, and :meth:`_send` to answer with a :class:`Reply`."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(self, reply: Reply) -> None:
        if isinstance(reply.body, bytes):
            data = reply.body
            ctype = reply.headers.get("Content-Type", "application/octet-stream")
        else:
            data = json.dumps(reply.body if reply.body is not None else {}).encode()
            ctype = "application/json"
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            for k, v in reply.headers.items():
                if k.lower() not in ("content-type", "content-length"):
                    self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


class _Handler(ReplyHandler):
    api: FakeImageAPI

    def do_POST(self) -> None:
        started = time.monotonic()
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        path = self.path.split("?", 1)[0]
        if path.endswith("/images/edits"):
            req = self._openai(path, headers, raw)
        elif path.endswith("/responses"):
            req = self._responses(path, headers, raw)
        elif ":generateContent" in path:
            req = self._gemini(path, headers, raw)
        else:
            self._send(
                Reply(404, {"error": {"message": f"no route {path}", "code": 404, "status": "NOT_FOUND"}})
            )
            return
        req.started = started
        with self.api._lock:
            self.api.received.append(req)
        reply = self.api.answer(req)
        wait = max(self.api.delay, reply.delay)
        if wait and self.api._closing.wait(wait):
            return
        self._send(reply)

    def _openai(self, path: str, headers: dict[str, str], raw: bytes) -> Received:
        req = Received("openai", path, headers)
        req.auth_ok = headers.get("authorization") == f"Bearer {self.api.openai_key}"
        ctype = headers.get("content-type", "")
        if not ctype.startswith("multipart/form-data"):
            req.problems.append(f"expected multipart/form-data, got {ctype!r}")
            return req
        msg = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + raw)
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True) or b""
            filename = part.get_filename()
            if filename is not None:
                req.files[name] = (filename, part.get_content_type())
                if name in ("image", "image[]") and req.image is None:
                    req.image = _decode(payload, req.problems)
            else:
                req.fields[name] = payload.decode("utf-8")
        for needed in ("prompt", "model"):
            if not req.fields.get(needed):
                req.problems.append(f"missing required parameter {needed!r}")
        if req.image is None:
            req.problems.append("missing required file 'image'")
        flexible = req.fields.get("model", "").startswith("gpt-image-2")
        size = req.fields.get("size", "auto")
        if flexible and size != "auto":
            problem = flexible_size_problem(size)
            if problem:
                req.problems.append(problem)
        elif size not in OPENAI_SIZES:
            req.problems.append(f"invalid size {req.fields['size']!r}")
        if req.fields.get("model", "").startswith(("gpt-image-2.5", "gpt-image-2.6")):
            if req.fields.get("quality", "auto") not in OPENAI_QUALITIES_2X:
                req.problems.append(f"invalid quality {req.fields['quality']!r}")
        elif req.fields.get("quality", "auto") not in OPENAI_QUALITIES:
            req.problems.append(f"invalid quality {req.fields['quality']!r}")
        return req

    def _responses(self, path: str, headers: dict[str, str], raw: bytes) -> Received:
        """The Responses API with the image_generation tool: the image to copy is the last one of the
        conversation (this input's, else the output of the response it continues)."""
        req = Received("openai", path, headers)
        req.auth_ok = headers.get("authorization") == f"Bearer {self.api.openai_key}"
        body = req.body = _json(raw, req.problems)
        if body is None:
            return req
        tools = [t for t in body.get("tools") or [] if t.get("type") == "image_generation"]
        if not body.get("model"):
            req.problems.append("missing required parameter 'model'")
        if not tools:
            req.problems.append("no image_generation tool")
            return req
        tool = tools[0]
        req.fields.update(
            model=str(tool.get("model", "gpt-image-2.6-sunburst")),
            mainline=str(body.get("model")),
            size=str(tool.get("size", "auto")),
            quality=str(tool.get("quality", "auto")),
            action=str(tool.get("action", "auto")),
        )
        images: list[np.ndarray] = []
        prompts = 0
        for item in body.get("input") or []:
            if item.get("type") == "image_generation_call":
                images.append(_decode(base64.b64decode(item.get("result", "")), req.problems))
                continue
            for part in item.get("content") or []:
                if part.get("type") == "input_image":
                    url = str(part.get("image_url", ""))
                    images.append(_decode(base64.b64decode(url.split(",", 1)[-1]), req.problems))
                elif part.get("type") == "input_text":
                    prompts += 1
                    req.fields["prompt"] = part.get("text", "")
        req.fields["images_in_input"] = str(len(images))
        previous = body.get("previous_response_id")
        context = {"images": 0, "prompts": 0, "answers": 0, "last": None}
        if previous:
            req.fields["previous_response_id"] = previous
            found = self.api.threads.get(previous)
            if found is None:
                req.fields["thread_lost"] = previous
                return req
            context = dict(found)
        context["images"] += len(images)
        context["prompts"] += prompts
        req.fields["context_images"] = str(context["images"] + (1 if previous else 0))
        req.fields["_context"] = json.dumps({k: v for k, v in context.items() if k != "last"})
        req.image = images[-1] if images else context["last"]
        if req.image is None:
            req.problems.append("no image in the conversation")
        size = req.fields["size"]
        if size != "auto" and flexible_size_problem(size):
            req.problems.append(flexible_size_problem(size))  # type: ignore[arg-type]
        return req

    def _gemini(self, path: str, headers: dict[str, str], raw: bytes) -> Received:
        req = Received("gemini", path, headers)
        req.auth_ok = headers.get("x-goog-api-key") == self.api.gemini_key
        req.fields["model"] = path.rsplit("/", 1)[-1].split(":", 1)[0]
        body = req.body = _json(raw, req.problems)
        if body is None:
            return req
        images = texts = 0
        for content in body.get("contents", []):
            for part in content.get("parts", []):
                blob = part.get("inlineData") or part.get("inline_data")
                images += blob is not None
                texts += "text" in part
                if content.get("role") == "model" and blob is not None:
                    signature = part.get("thoughtSignature") or part.get("thought_signature")
                    if signature is None or _unb64(signature) not in self.api.signatures:
                        req.problems.append("a model image part has no valid thought_signature")
                if blob is not None:
                    req.fields["image_field"] = "inlineData" if "inlineData" in part else "inline_data"
                    req.fields["mime_type"] = blob.get("mimeType") or blob.get("mime_type") or ""
                    # proto3 JSON bytes: standard or URL-safe base64 (google-genai sends URL-safe)
                    data = str(blob.get("data", "")).replace("-", "+").replace("_", "/")
                    req.fields["b64_alphabet"] = "urlsafe" if data != blob.get("data", "") else "standard"
                    req.image = _decode(base64.b64decode(data + "=" * (-len(data) % 4)), req.problems)
                if "text" in part:
                    req.fields["prompt"] = part["text"]
        config = body.get("generationConfig") or body.get("generation_config") or {}
        image_config = config.get("imageConfig") or config.get("image_config") or {}
        if image_config.get("imageSize"):
            req.fields["image_size"] = image_config["imageSize"]
            if image_config["imageSize"] not in GEMINI_TIER_TOKENS:
                req.problems.append(f"unsupported image size {image_config['imageSize']!r}")
        if image_config.get("aspectRatio"):
            req.fields["aspect_ratio"] = image_config["aspectRatio"]
            if image_config["aspectRatio"] not in GEMINI_CANVASES | dict.fromkeys(GEMINI_RATIOS):
                req.problems.append(f"unsupported aspect ratio {image_config['aspectRatio']!r}")
        modalities = config.get("responseModalities") or []
        req.fields["modalities"] = ",".join(modalities)
        if "seed" in config:
            req.fields["seed"] = str(config["seed"])
        req.fields["context_images"] = str(images)
        req.fields["text_parts"] = str(texts)
        if req.image is None:
            req.problems.append("no inline image in contents")
        if not req.fields.get("prompt"):
            req.problems.append("no text prompt in contents")
        return req


class FakeImageAPI(FakeServer):
    """``with FakeImageAPI(openai_key=..., gemini_key=...) as fake: ...``; ``fake.received``: requests."""

    handler = _Handler
    thread_name = "fake-image-api"

    def __init__(self, openai_key: str = "sk-fake", gemini_key: str = "gm-fake", delay: float = 0.0) -> None:
        super().__init__()
        self.openai_key = openai_key
        self.gemini_key = gemini_key
        self.delay = delay
        self.received: list[Received] = []
        self.refuse_when: Callable[[Received], bool] | None = None
        self.retired: set[str] = set()  # models the fake answers as retired (model_not_found / NOT_FOUND)
        self.threads: dict[str, dict[str, Any]] = {}  # Responses API: response id -> its conversation
        self.signatures: set[bytes] = set()  # Gemini: thought signatures the fake has issued
        self.billed: list[float] = []  # Responses API: what each answer costs at the catalogue's rates
        self.inflate = 1.0  # Responses API: bill the tool's input image tokens this many times over
        self._queue: deque[Action] = deque()
        self._count = 0

    # ------------------------------------------------------------------ control

    @property
    def openai_base(self) -> str:
        return f"{self.url}/v1"

    def script(self, *actions: Action) -> None:
        with self._lock:
            self._queue.extend(actions)

    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    # ------------------------------------------------------------------ behaviour

    def _next(self) -> tuple[int, Action | None]:
        with self._lock:
            self._count += 1
            return self._count, (self._queue.popleft() if self._queue else None)

    def answer(self, req: Received) -> Reply:
        n, action = self._next()
        key = self.openai_key if req.provider == "openai" else self.gemini_key
        if not req.auth_ok:
            given = req.headers.get("authorization", "").removeprefix("Bearer ") or req.headers.get(
                "x-goog-api-key", ""
            )
            if req.provider == "openai":
                return openai_error(401, f"Incorrect API key provided: {given}.", "invalid_api_key")
            return gemini_error(
                400,
                f"API key not valid: {given}. Please pass a valid API key.",
                "INVALID_ARGUMENT",
                [{"reason": "API_KEY_INVALID"}],
            )
        del key
        model = req.fields.get("model", "")
        if model in self.retired:
            if req.provider == "openai":
                message = f"The model `{model}` does not exist or you do not have access to it."
                return openai_error(404, message, "model_not_found")
            message = f"models/{model} is not found for API version v1beta, or is not supported."
            return gemini_error(404, message, "NOT_FOUND")
        if req.fields.get("thread_lost"):
            message = f"Previous response with id '{req.fields['thread_lost']}' not found."
            return openai_error(404, message, "previous_response_not_found")
        if req.problems:
            message = "; ".join(req.problems)
            if req.provider == "openai":
                return openai_error(400, message, "invalid_value")
            return gemini_error(400, message, "INVALID_ARGUMENT")
        reply: Reply | None = None
        if action is not None:
            result = action(req) if callable(action) else action
            if isinstance(result, Reply):
                reply = result
            elif isinstance(result, np.ndarray):
                reply = Reply(200, None, {}, 0.0, result)
        if reply is None and self.refuse_when is not None and self.refuse_when(req):
            reply = refusal(req.provider)
        if reply is None:
            assert req.image is not None
            reply = Reply(200, None, {}, 0.0, altered(req.image, req.requested_size))
        reply.headers = {**reply.headers}
        if req.provider == "openai":
            reply.headers.setdefault("x-request-id", f"req_fake_{n}")
        if reply.status == 200 and reply.body is None and reply.image is not None:
            reply.body = self._success(req, reply.image, n)
        return reply

    def _success(self, req: Received, image: np.ndarray, n: int) -> dict[str, Any]:
        data = png_b64(image)
        if req.path.endswith("/responses"):
            return self._response(req, image, data, n)
        if req.provider == "openai":
            quality = req.fields.get("quality", "auto")
            model = req.fields.get("model", "")
            out = output_tokens(quality, image.shape, model)
            image_tokens = 259 if not model.startswith("gpt-image-2") else 4100 + req.image.size // 3000
            return {
                "created": int(time.time()),
                "data": [{"b64_json": data}],
                "background": "opaque",
                "output_format": req.fields.get("output_format", "png"),
                "quality": "medium" if quality == "auto" else quality,
                "size": f"{image.shape[1]}x{image.shape[0]}",
                "usage": {
                    "input_tokens": 64 + image_tokens,
                    "input_tokens_details": {"image_tokens": image_tokens, "text_tokens": 64},
                    "output_tokens": out,
                    "total_tokens": 64 + image_tokens + out,
                },
            }
        return {
            "candidates": [
                {
                    "content": {
                        "role": "model",
                        "parts": [
                            {"text": "Here is the copy."},
                            {
                                "inlineData": {"mimeType": "image/png", "data": data},
                                "thoughtSignature": self._signature(n),
                            },
                        ],
                    },
                    "finishReason": "STOP",
                    "index": 0,
                }
            ],
            "usageMetadata": self._gemini_usage(req),
            "modelVersion": req.fields.get("model", "?"),
            "responseId": f"fake-{n}",
        }

    def _signature(self, n: int) -> str:
        signature = f"fake-signature-{n}".encode()
        with self._lock:
            self.signatures.add(signature)
        return base64.b64encode(signature).decode("ascii")

    def _response(self, req: Received, image: np.ndarray, data: str, n: int) -> dict[str, Any]:
        """A Responses API answer: one image_generation_call, the mainline's usage (it reads every image
        and turn of the thread) and the tool's usage; the conversation is kept under the response id."""
        context = json.loads(req.fields["_context"])
        h, w = image.shape[:2]
        images = int(req.fields["context_images"])
        quality = req.fields["quality"]
        out = gpt_image_2_tokens("medium" if quality == "auto" else quality, w, h)
        image_tokens = round(self.inflate * (4160 + 65 + 129 * _tiles(w, h) + 37))
        mainline_in = 180 + 20 * context["prompts"] + 50 * context["answers"]
        mainline_in += images * fake_vision_tokens(w, h)
        response_id = f"resp_fake_{n}"
        with self._lock:
            self.threads[response_id] = {
                "images": images, "prompts": context["prompts"], "answers": context["answers"] + 1,
                "last": image,
            }  # fmt: skip
            self.billed.append(
                mainline_in * 0.75e-6 + 40 * 4.5e-6 + 60 * 5e-6 + image_tokens * 8e-6 + out * 30e-6
            )
        return {
            "id": response_id,
            "object": "response",
            "created_at": time.time(),
            "status": "completed",
            "model": req.fields["mainline"],
            "previous_response_id": req.fields.get("previous_response_id"),
            "output": [
                {
                    "type": "image_generation_call",
                    "id": f"ig_fake_{n}",
                    "status": "completed",
                    "result": data,
                    "revised_prompt": f"An exact replica of the image (turn {context['answers'] + 1}).",
                    "size": f"{w}x{h}",
                    "quality": "medium" if quality == "auto" else quality,
                    "action": "edit",
                }
            ],
            "parallel_tool_calls": True,
            "tool_choice": {"type": "image_generation"},
            "tools": [],
            "usage": {
                "input_tokens": mainline_in,
                "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                "output_tokens": 40,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": mainline_in + 40,
            },
            "tool_usage": {
                "image_gen": {
                    "input_tokens": 60 + image_tokens,
                    "input_tokens_details": {"image_tokens": image_tokens, "text_tokens": 60},
                    "output_tokens": out,
                    "total_tokens": 60 + image_tokens + out,
                },
                "web_search": {"num_requests": 0},
            },
        }

    @staticmethod
    def _gemini_usage(req: Received) -> dict[str, Any]:
        tier = req.fields.get("image_size")
        if tier is None:  # the older models: a flat count, no modality split
            return {"promptTokenCount": 1302, "candidatesTokenCount": 1290, "totalTokenCount": 2592}
        out = GEMINI_TIER_TOKENS[tier]
        images, texts = int(req.fields.get("context_images", 1)), int(req.fields.get("text_parts", 1))
        prompt = 1120 * images + 20 * texts
        return {
            "promptTokenCount": prompt,
            "promptTokensDetails": [
                {"modality": "TEXT", "tokenCount": 20 * texts},
                {"modality": "IMAGE", "tokenCount": 1120 * images},
            ],
            "candidatesTokenCount": out,
            "totalTokenCount": prompt + out,
        }


def _decode(data: bytes, problems: list[str]) -> np.ndarray | None:
    try:
        with Image.open(io.BytesIO(data)) as img:
            return np.asarray(img.convert("RGB")).copy()
    except Exception as exc:
        problems.append(f"the image is not readable: {exc}")
        return None
