"""Numbers as the reports print them: fixed decimals with thousands separators, compact dollars for axes and
bar labels, plain tick labels. One home, so a table, a sentence and a chart never disagree on a value."""

from __future__ import annotations

import math
from typing import Any

DASH = "–"
_UNITS = ((1e9, "B"), (1e6, "M"), (1e3, "k"))


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def fmt(value: Any, digits: int = 3) -> str:
    """``value`` with ``digits`` decimals and thousands separators; "–" for missing or non-finite values. A value
    that rounds to zero prints as 0, never "-0"."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return DASH
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    text = f"{value:,.{digits}f}"
    return text[1:] if text.startswith("-") and float(text[1:].replace(",", "")) == 0 else text


def usd(value: Any, digits: int = 0) -> str:
    """Dollars in full: ``$1,234,567``, ``-$18,016``; "–" when missing."""
    text = fmt(value, digits)
    if text == DASH or not _finite(value):
        return text
    return f"-${text[1:]}" if text.startswith("-") else f"${text}"


def usd_compact(value: Any) -> str:
    """Dollars for axes and bar labels: ``$30.4M``, ``$2.7k``, ``$890``, ``$0``, ``-$18.0k``."""
    if not _finite(value):
        return DASH
    sign, v = ("-" if value < 0 else ""), abs(float(value))
    for scale, unit in _UNITS:
        if v >= scale * 0.9995:
            x = v / scale
            text = f"{x:.0f}" if x >= 100 else f"{x:.1f}".removesuffix(".0")
            return f"{sign}${text}{unit}"
    text = f"{v:.0f}" if v >= 1 or v == 0 else f"{v:.2g}"
    return "$0" if text == "0" else f"{sign}${text}"


def plain(value: float) -> str:
    """A tick label without exponents: 1, 10, 1,000, 0.5, 0.01."""
    if not _finite(value):
        return ""
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:.6g}"
