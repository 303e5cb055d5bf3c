"""The page shell every driftloop page shares: the stylesheet, the document skeleton, the CSP.

The run report and the bias card are written through :func:`page`, with the stylesheet inlined; the gallery's
``web/templates/base.html`` links the same stylesheet (served from ``/assets/shell.css``) and the same chart
module, and lays its pages out with the same header / main / footer skeleton. One home for how a driftloop
page looks.

A static page may run only the scripts it was written with: the Content-Security-Policy lists each inline
script by its sha256 (no nonce to guess, no ``'unsafe-inline'`` for scripts), and ``default-src 'none'``
keeps every fetch off the network.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Sequence
from typing import Any

from driftloop.report.charts import asset_text

__all__ = ["SHELL_CSS", "csp", "esc", "page", "section"]

SHELL_CSS = "shell.css"  # the stylesheet, in the report's package data (assets/)
_CSP = "default-src 'none'; img-src data:; media-src data:; style-src 'unsafe-inline'"


def esc(value: Any) -> str:
    """Text from a run, safe in HTML text and attribute values."""
    return html.escape(str(value), quote=True)


def csp(scripts: Sequence[str] = ()) -> str:
    """The page's Content-Security-Policy: no network at all, inline styles, and exactly these scripts."""
    if not scripts:
        return _CSP
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(s.encode('utf-8')).digest()).decode('ascii')}'"
        for s in scripts
    )
    return f"{_CSP}; script-src {hashes}"


def section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{esc(anchor)}">\n<h2>{esc(title)}</h2>\n{body}\n</section>'


def page(
    title: str,
    meta_html: str,
    nav: Sequence[tuple[str, str]],
    body: str,
    footer: str,
    styles: Sequence[str] = (),
    scripts: Sequence[str] = (),
) -> str:
    """A whole self-contained page: the shell stylesheet (and ``styles``) inlined, the header with its
    title, meta line and in-page navigation (``(anchor, label)``), ``body`` in ``<main>``, then the
    ``scripts`` inlined at the end, each allowed by its hash. ``meta_html`` and ``body`` are inserted as
    given; the title, navigation and footer are escaped."""
    nav_html = "".join(f'<a href="#{esc(anchor)}">{esc(label)}</a>' for anchor, label in nav)
    css = "\n".join([asset_text(SHELL_CSS), *styles])
    tail = "".join(f"<script>{s}</script>\n" for s in scripts)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{csp(scripts)}">
<meta name="generator" content="driftloop">
<title>{esc(title)}</title>
<style>{css}</style>
</head>
<body>
<header>
<h1>{esc(title)}</h1>
<p class="meta">{meta_html}</p>
<nav>{nav_html}</nav>
</header>
<main>
{body}
</main>
<footer>{esc(footer)}</footer>
{tail}</body>
</html>
"""
