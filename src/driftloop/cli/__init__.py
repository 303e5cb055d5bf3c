"""The ``driftloop`` command line: a thin shell over :mod:`driftloop.api`.

Each verb parses its options, makes one call into the library and prints. The library is imported inside
the verbs, so ``driftloop --help`` answers without loading it. :mod:`~driftloop.cli.shell` holds the app
and the entry point; the verbs register themselves on import, in the order ``--help`` lists them.
"""

from __future__ import annotations

from driftloop.cli import making, planning, reading, sharing  # noqa: F401  (registers the verbs)
from driftloop.cli.making import parse_crop
from driftloop.cli.shell import app, main

__all__ = ["app", "main", "parse_crop"]
