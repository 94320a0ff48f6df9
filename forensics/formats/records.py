"""What every normalizer shares: the quarantine error, exact decimals, addresses, coins, epoch-ms checks,
and the one ISO-8601/nanosecond time parser of the project.

Pure functions (no I/O, standard library only). Each raises :class:`RecordError` with a short reason, which the
ingest stores in ``quarantine`` (or the CLI prints as its one-line error).
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, overload

#: ``quarantine.raw`` keeps at most this much of a rejected record's text
RAW_TEXT_LIMIT = 8192


class RecordError(ValueError):
    """A record that cannot be normalized; the message is the quarantine reason."""


# --- times ------------------------------------------------------------------------------------------------

_ISO = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)"  # date
    r"(?:[T ](\d\d)(?::(\d\d)(?::(\d\d)(?:[.,](\d{1,9}))?)?)?)?"  # [hour[:minute[:second[.fraction]]]]
    r"(Z|[+-]\d\d:?\d\d)?"  # UTC when absent
)
_NS = 1_000_000_000


def iso_ns(value: Any, field: str = "time") -> int:
    """ISO-8601 -> epoch nanoseconds, exactly (0-9 fraction digits; no offset means UTC, never the machine's
    zone). The one parser behind every time the project reads: node timestamps (``2025-10-10T21:03:24.851959855``),
    venue strings (``2025-07-25T05:11:09.800Z``), CLI options and scenario files."""
    if not isinstance(value, str) or len(value) > 40:
        raise RecordError(f"{field} is not an ISO-8601 time")
    m = _ISO.fullmatch(value.strip())
    if not m:
        raise RecordError(f"unparsable {field}")
    y, mo, d = int(m[1]), int(m[2]), int(m[3])
    h, mi, s = (int(x) if x else 0 for x in (m[4], m[5], m[6]))
    try:
        dt.date(y, mo, d)
        if not (h < 24 and mi < 60 and s < 61):  # 60: a leap second, as the node may write it
            raise ValueError
    except ValueError:
        raise RecordError(f"unparsable {field}") from None
    seconds = calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))
    offset = m[8]
    if offset and offset != "Z":
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        seconds -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return seconds * _NS + int((m[7] or "").ljust(9, "0"))


_NODE_FORM = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?Z?")


def node_time_ms(value: Any, field: str = "time") -> int:
    """A node timestamp, exactly as the node writes it (``2025-10-10T21:03:24.851959855``: naive UTC, ``T``,
    seconds, 0-9 fraction digits, optional ``Z``) -> epoch ms (floor). Any other form is a format change."""
    if not isinstance(value, str) or not _NODE_FORM.fullmatch(value):
        raise RecordError(f"unparsable {field}")
    return iso_ms(value, field)


def iso_ms(value: Any, field: str = "time") -> int:
    """ISO-8601 -> epoch milliseconds (floor of :func:`iso_ns`)."""
    return iso_ns(value, field) // 1_000_000


def parse_time_ms(text: str, what: str) -> int:
    """A user's time (an option, a scenario value): epoch ms digits, or ISO-8601 (UTC when no offset)."""
    if text.isdigit():
        return int(text)
    try:
        return iso_ms(text, what)
    except RecordError:
        raise RecordError(f"{what} {text!r} is not ISO-8601 (e.g. 2025-10-10T21:00:00Z)") from None


def ms_to_iso(ms: int | None) -> str | None:
    """Epoch ms -> ``YYYY-MM-DDTHH:MM:SSZ`` (seconds precision), None stays None."""
    return None if ms is None else dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ms(value: Any, field: str = "time") -> int:
    """An epoch-milliseconds integer as the venue sent it (13 digits)."""
    if isinstance(value, bool) or not isinstance(value, int) or not (10**12 <= value < 10**13):
        raise RecordError(f"{field} is not epoch milliseconds")
    return value


# --- numbers, addresses, names ------------------------------------------------------------------------

_SCALE = Decimal(1).scaleb(-10)


@overload
def dec(value: Any, field: str, *, required: Literal[True] = ...) -> Decimal: ...
@overload
def dec(value: Any, field: str, *, required: bool) -> Decimal | None: ...
def dec(value: Any, field: str, *, required: bool = True) -> Decimal | None:
    """Parse a venue decimal (string or number) exactly, at the lake scale of 10 decimals."""
    if value is None:
        if required:
            raise RecordError(f"missing {field}")
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise RecordError(f"non-numeric {field}")
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        raise RecordError(f"non-numeric {field}") from None
    if not d.is_finite() or abs(d) >= Decimal(10) ** 20:
        raise RecordError(f"{field} out of range")
    return d.quantize(_SCALE)


def small_int(value: Any, field: str) -> int | None:
    """An integer field given as a number or its exact text (None stays None)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise RecordError(f"non-integer {field}")
    try:
        i = int(value)
    except (TypeError, ValueError):
        raise RecordError(f"non-integer {field}") from None
    if str(i) != str(value).strip() and not isinstance(value, int):
        raise RecordError(f"non-integer {field}")
    return i


def address(value: Any, field: str = "user") -> str:
    """A 0x EVM address, lower-cased."""
    if not isinstance(value, str) or len(value) != 42 or not value.startswith("0x"):
        raise RecordError(f"invalid {field} address")
    try:
        int(value[2:], 16)
    except ValueError:
        raise RecordError(f"invalid {field} address") from None
    return value.lower()


def coin_name(value: Any) -> str:
    """A venue symbol as given (non-empty, at most 64 characters)."""
    if not isinstance(value, str) or not value or len(value) > 64:
        raise RecordError("missing or invalid coin")
    return value
