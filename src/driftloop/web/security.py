"""Who may talk to the gallery: the host check, the access token, and the cross-site request guard.

Bound to 127.0.0.1 (the default) the gallery answers only requests addressed to a loopback name, which
also stops DNS-rebinding pages. Bound anywhere else it needs a token on *every* request, frames and
event streams included: in an ``Authorization: Bearer`` or ``X-Driftloop-Token`` header, in the cookie
set by visiting any page once with ``?token=...``, or in the ``token`` query parameter. State-changing
requests are POSTs that must carry the page's CSRF token and, when the browser says where they come
from (``Origin`` / ``Referer``), come from the gallery itself.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
TOKEN_COOKIE = "driftloop_token"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # not no-referrer: with it, browsers send "Origin: null" on POSTs
    "X-Frame-Options": "SAMEORIGIN",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; connect-src 'self'; frame-src 'self'; media-src 'self'; "
        "form-action 'self'; frame-ancestors 'self'; base-uri 'none'"
    ),
}


def is_local(host: str) -> bool:
    return host.strip("[]") in LOCAL_HOSTS


def new_token() -> str:
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class Guard:
    """The gallery's secrets. ``token`` None: local-only mode (loopback names in Host accepted only)."""

    token: str | None = None
    csrf: str = field(default_factory=new_token)
    extra_hosts: frozenset[str] = frozenset()

    def host_ok(self, host_header: str) -> bool:
        """A request addressed to a loopback name (or anywhere, once a token is required)."""
        if self.token is not None:
            return True
        name = urlsplit(f"//{host_header}").hostname or ""
        return is_local(name) or name in self.extra_hosts

    def presented(
        self, headers: dict[str, str], cookies: dict[str, str], query: dict[str, str]
    ) -> str | None:
        """The token a request carries, wherever it carries it."""
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        return headers.get("x-driftloop-token") or cookies.get(TOKEN_COOKIE) or query.get("token")

    def token_ok(self, given: str | None) -> bool:
        if self.token is None:
            return True
        return given is not None and secrets.compare_digest(given.encode(), self.token.encode())

    def csrf_ok(self, given: str | None) -> bool:
        return given is not None and secrets.compare_digest(given.encode(), self.csrf.encode())

    def same_origin(self, origin: str | None, referer: str | None, host_header: str) -> bool:
        """A POST from a page of this gallery (a missing Origin and Referer is left to the CSRF token)."""
        source = origin if origin and origin != "null" else referer
        if origin == "null":
            return False
        if not source:
            return True
        return urlsplit(source).netloc == host_header


def without_token(path: str, query: list[tuple[str, str]]) -> str:
    """The URL a ``?token=`` login redirects to: the same page, token removed from the address bar."""
    rest = [(k, v) for k, v in query if k != "token"]
    return path + ("?" + urlencode(rest) if rest else "")
