"""A package's names loaded on first use (PEP 562), so importing one light module of a package does not
load all of it: ``driftloop runs`` reads the run list without NumPy and Pillow (which the frame reader
needs), ``driftloop models`` reads the price tables without the run store."""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib import import_module
from typing import Any


def lazy_names(package: str, where: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that imports each name of ``where`` (name → module) when it
    is first asked for, and keeps it on the package so the next lookup is a plain attribute."""

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
