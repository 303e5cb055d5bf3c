"""How driftloop writes a number: one function per rule, named after the rule (``fmt.signed``, ``fmt.usd``),
used everywhere a number is shown (the CLI, the reports, the bias card, the gallery, the cost lines).

- :func:`significant`: a quantity with N significant figures, no exponent (``0.0028``, ``2.6``, ``1,234``).
- :func:`fixed`: a value at a fixed number of decimals (``0.83``, ``31.2``).
- :func:`signed`: a change, always with its sign (``+0.24``, ``−0.24``; 2 significant figures by default).
- :func:`interval`: a 95% interval of changes (``[−0.27, −0.21]``).
- :func:`decimals_for` / :func:`interval_decimals`: how many decimals a value (with its interval) needs.
- :func:`p_value` / :func:`probability`: a test's p (``p=0.012``, ``p<0.001``, ``p≤0.005``) and its number.
- :func:`step` / :func:`step_range`: a step, a mean or a range of steps (``12``, ``12.5``, ``9–14``).
- :func:`usd`: money (``$0.00``, ``$0.40``, ``$0.053``, ``$1,234.56``).
- :func:`duration`: a time (``0.0049 s``, ``12 s``, ``3.4 min``, ``2.1 h``).

Negative numbers carry a real minus sign (U+2212), which lines up with ``+`` in tables; a value that is not
finite reads ``∞``, ``−∞`` or ``n/a``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

MINUS = "\N{MINUS SIGN}"


def _not_finite(value: float) -> str:
    return "∞" if value > 0 else (f"{MINUS}∞" if value < 0 else "n/a")


def significant(value: float, digits: int = 2) -> str:
    """``digits`` significant figures without an exponent: ``0.0028``, ``0.38``, ``2.6``, ``12``, and a
    thousands separator from ``10**digits`` up (``1,234``)."""
    if value == 0:
        return "0"
    if not math.isfinite(value):
        return _not_finite(value)
    if abs(value) >= 10**digits:
        return f"{round(value):,}".replace("-", MINUS)
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return f"{value:.{decimals}f}".replace("-", MINUS)


def fixed(value: float, decimals: int) -> str:
    """``value`` at ``decimals`` decimals: ``0.83`` (SSIM at 2), ``31.2`` (PSNR at 1)."""
    if not math.isfinite(value):
        return _not_finite(value)
    return f"{value:.{decimals}f}".replace("-", MINUS)


def decimals_for(*values: float | None, digits: int = 2, fallback: int = 2) -> int:
    """Decimals that show the largest of ``values`` with ``digits`` significant figures (0..4); ``fallback``
    when no value is finite and non-zero."""
    finite = [abs(v) for v in values if v is not None and math.isfinite(v) and v != 0]
    if not finite:
        return fallback
    return int(min(4, max(0, digits - 1 - math.floor(math.log10(max(finite))))))


def interval_decimals(value: float, low: float | None, high: float | None) -> int:
    """Decimals for a value with its interval: 2 significant figures of the largest, and enough to show the
    interval's width with at least 1 (at most 4 decimals)."""
    d = decimals_for(value, low, high)
    if low is not None and high is not None and high > low:
        d = max(d, decimals_for(high - low, digits=1))
    return min(d, 4)


def signed(value: float, decimals: int | None = None, unit: str = "") -> str:
    """A change: ``+0.24`` / ``−0.24``, ``0`` for zero; decimals for 2 significant figures unless given.

    ``0.00`` (no sign) for a value that rounds to zero; ``∞`` / ``−∞`` / ``n/a`` for non-finite values."""
    if not math.isfinite(value):
        return _not_finite(value)
    d = decimals_for(value, fallback=0) if decimals is None else decimals
    text = f"{value:+.{d}f}"
    if float(text) == 0:
        text = f"{0:.{d}f}"
    return text.replace("-", MINUS) + unit


def interval(low: float, high: float, decimals: int) -> str:
    """A 95% interval of changes: ``[−0.27, −0.21]``."""
    return f"[{signed(low, decimals)}, {signed(high, decimals)}]"


def probability(p: float) -> str:
    """A probability with 2 significant figures and no exponent: ``0.012``, ``0.25``, ``1``."""
    text = f"{p:.2g}"
    return f"{p:.4f}" if "e" in text else text


def p_value(p: float | None, at_floor: bool = False) -> str:
    """``p<0.001`` below 0.001; ``p≤0.005`` when no random relabelling reached the observed statistic (p is
    then the smallest value the number of permutations can give); else ``p=0.012`` (:func:`probability`)."""
    if p is None or not math.isfinite(p):
        return "p n/a"
    if p < 0.001:
        return "p<0.001"
    return f"p≤{probability(p)}" if at_floor else f"p={probability(p)}"


def step(value: float) -> str:
    """A step (or a mean of steps): ``12``, or ``12.5`` when not whole."""
    return str(round(value)) if abs(value - round(value)) < 0.05 else f"{value:.1f}"


def step_range(spread: Mapping[str, float]) -> str:
    """The min–max of a spread of steps: ``12`` or ``9–14``."""
    lo, hi = spread["min"], spread["max"]
    return step(lo) if lo == hi else f"{step(lo)}–{step(hi)}"


def usd(value: float) -> str:
    """Money: ``$0.00`` for nothing, ``$1,234.56`` from a dollar up, and below a dollar three decimals with
    a zero third one dropped: ``$0.053`` and ``$0.246`` (per-copy prices), ``$0.40`` (a budget)."""
    if value == 0:
        return "$0.00"
    if abs(value) >= 1:
        return f"${value:,.2f}"
    text = f"{value:.3f}"
    return f"${text[:-1] if text.endswith('0') else text}"


def duration(seconds: float) -> str:
    """A time, in the unit that reads best: ``0.0049 s``, ``12 s`` (below 90 s), ``3.4 min`` (below 90 min),
    ``2.1 h``; 2 significant figures."""
    if seconds < 90:
        return f"{significant(seconds)} s"
    if seconds < 5400:
        return f"{significant(seconds / 60)} min"
    return f"{significant(seconds / 3600)} h"
