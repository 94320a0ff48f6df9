"""Decimal-string formatting in Hyperliquid's style (no exponent, trimmed, at least one decimal)."""

from __future__ import annotations

import datetime as _dt
import math


def trim(s: str) -> str:
    if "." in s:
        s = s.rstrip("0")
        if s.endswith("."):
            s += "0"
    else:
        s += ".0"
    if s == "-0.0":
        s = "0.0"
    return s


def dec(x: float, places: int) -> str:
    """``x`` with at most ``places`` decimals, trailing zeros trimmed: 22.075, -28.53, 0.0."""
    return trim(f"{x:.{places}f}")


def usd(x: float) -> str:
    return dec(x, 6)


def px(x: float, szd: int) -> str:
    return dec(x, max(0, 6 - szd))


def lots(n: int, szd: int) -> str:
    """Exact decimal string of ``n`` lots of ``10**-szd`` coin."""
    neg = n < 0
    n = -n if neg else n
    if szd == 0:
        s = f"{n}.0"
    else:
        q, r = divmod(n, 10**szd)
        frac = f"{r:0{szd}d}".rstrip("0") or "0"
        s = f"{q}.{frac}"
    if neg and s != "0.0":
        s = "-" + s
    return s


def sig(x: float, digits: int = 6) -> str:
    """``digits`` significant figures, never exponent notation."""
    if x == 0 or not math.isfinite(x):
        return "0.0"
    mag = int(math.floor(math.log10(abs(x))))
    return dec(x, max(0, digits - 1 - mag))


def iso_ns(t_ns: int) -> str:
    """ISO-8601 UTC without timezone, nanosecond digits: 2025-10-10T21:16:04.831874687."""
    sec, ns = divmod(int(t_ns), 1_000_000_000)
    d = _dt.datetime.fromtimestamp(sec, tz=_dt.UTC)
    return d.strftime("%Y-%m-%dT%H:%M:%S") + f".{ns:09d}"
