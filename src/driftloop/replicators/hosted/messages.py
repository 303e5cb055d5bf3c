"""What hosted replicators say: secrets redacted from every text, one-line messages, HTTP error bodies."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

MAX_MESSAGE = 500


class Redactor:
    """Replaces every secret (API keys) with ``***`` in strings and, recursively, in dicts and lists."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def text(self, value: object) -> str:
        out = str(value)
        for secret in self._secrets:
            out = out.replace(secret, "***")
        return out

    def data(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(k) if isinstance(k, str) else k: self.data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        return value


def short(text: object, limit: int = MAX_MESSAGE) -> str:
    """One line, at most ``limit`` characters."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def status_line(status: int | None, code: str | None, message: str) -> str:
    """``HTTP 429 (rate_limit_exceeded): message``."""
    head = f"HTTP {status}" if status is not None else "error"
    if code:
        head += f" ({code})"
    return f"{head}: {message}" if message else head


def body_message(body: Any) -> tuple[str, str | None]:
    """(message, code) from a JSON error body (``{"error": {"message", "code"}}`` or flat)."""
    if isinstance(body, bytes | str):
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        try:
            body = json.loads(text)
        except ValueError:
            return short(text), None
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            code = err.get("code") or err.get("type")
            return short(err.get("message") or json.dumps(err)[:MAX_MESSAGE]), (str(code) if code else None)
        return short(str(err)), None
    return short(str(body)) if body is not None else "", None
