"""``driftloop serve``: a local web gallery over a workspace, to watch chains drift, scrub and compare them,
open a sweep's bias card, and start, stop and resume runs.

Needs the ``web`` extra (FastAPI, uvicorn, Jinja2): ``pip install 'driftloop[web]'``.
"""

from __future__ import annotations

import socket
import webbrowser
from pathlib import Path

from driftloop.errors import DriftloopError
from driftloop.web.security import is_local, new_token

__all__ = ["INSTALL_HINT", "serve"]

INSTALL_HINT = "the gallery needs the web extra: pip install 'driftloop[web]'"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def serve(
    workspace: str | Path,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    token: str | None = None,
    open_browser: bool = False,
    say=print,
) -> None:
    """Serve the gallery of ``workspace`` until Ctrl-C.

    On 127.0.0.1 (the default) no token is needed and only loopback Host names are answered. Any other
    host needs a token: ``token`` if given, else a new random one; the address to open, token included,
    is printed (``say``).
    """
    try:  # an optional dependency: the core package runs without it
        import uvicorn  # the web extra: optional

        from driftloop.web.app import create_app  # needs fastapi, the web extra
    except ImportError as exc:
        raise DriftloopError(f"{INSTALL_HINT} ({exc.name} is missing)") from None
    if not Path(workspace).is_dir():
        raise DriftloopError(f"no workspace folder at {workspace}; check --workspace")
    if not is_local(host) and not token:
        token = new_token()
    app = create_app(workspace, token=token)
    shown = socket.gethostname() if host in ("0.0.0.0", "::") else host  # every address: name one
    url = f"http://{'[' + shown + ']' if ':' in shown else shown}:{port}/"
    if token:
        url += f"?token={token}"
    say(f"driftloop gallery of {Path(workspace).resolve()} at {url}")
    if token:
        say("anyone with this address can start and stop runs: share it only with people you trust")
    if open_browser:
        webbrowser.open(url)
    uvicorn.run(app, host=host, port=port, log_level="warning")
