"""The fast path for ``node_fills_by_block`` lines: a compiled scan of the raw bytes straight into columns.

One pass over a batch of lines (numba, no Python object per fill) checks each line against strict JSON and
the plain form of a block (every event ``[address, fill]``, every field of the type and text form the
general path accepts without a reason) and records where each field's value lies. Lines that pass become
Arrow columns here; every other line (malformed, unusual or bad) is left to the general path in
:mod:`.node_fills`, which works out reasons. A line passes only if the general path would land the same
values, so which path a line takes never changes a row:

* only ASCII strings without escapes; a line with any other byte or a backslash is not plain;
* integers (``time``, ``oid``, ``tid``, ``twapId``, ``block_number``) as JSON integers in range;
* decimals as strings ``-?[0-9]{1,28}(.[0-9]{1,10})?`` (``px``, ``sz`` positive); timestamps as
  ``YYYY-MM-DDTHH:MM:SS[.f{1,9}]`` of a real date between 1970 and 2199;
* no repeated key among the ones read (the general path keeps the first, JSON readers differ).

Numbers of fields that are not read are checked against the JSON grammar and skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from forensics.compiled import njit
from forensics.tables import FILLS

from .constants import HYPERLIQUID_DIRS, LIQUIDATION_METHODS, VENUE

# the fields read, in the order of the scan's output columns
_STRING_FIELDS = (
    "coin",
    "px",
    "sz",
    "side",
    "startPosition",
    "dir",
    "closedPnl",
    "hash",
    "fee",
    "feeToken",
    "builderFee",
    "cloid",
)
_INT_FIELDS = ("time", "oid", "tid", "twapId")
_FILL_KEYS = _STRING_FIELDS + _INT_FIELDS + ("crossed", "liquidation")
_LIQ_KEYS = ("liquidatedUser", "markPx", "method")
_BLOCK_KEYS = ("block_number", "block_time", "local_time", "events")

# string column slots: the fill's strings, then the liquidation's
S_COIN, S_PX, S_SZ, S_SIDE, S_START, S_DIR, S_PNL, S_HASH, S_FEE, S_FEE_TOKEN, S_BUILDER_FEE, S_CLOID = range(12)
S_LIQ_USER, S_LIQ_MARK, S_LIQ_METHOD = 12, 13, 14
N_STRINGS = 15
I_TIME, I_OID, I_TID, I_TWAP = range(4)
# event flags: the four integers' presence (same order), crossed (-1 absent), liquidation present, dir index
F_CROSSED, F_LIQUIDATION, F_DIR = 4, 5, 6
N_FLAGS = 7
K_CROSSED, K_LIQUIDATION = 16, 17
_DECIMAL_SLOTS = (S_PX, S_SZ, S_START, S_PNL, S_FEE, S_BUILDER_FEE, S_LIQ_MARK)
_DIRS = tuple(sorted(HYPERLIQUID_DIRS))
_METHODS = tuple(sorted(LIQUIDATION_METHODS))


def _names(names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Names for matching in compiled code: their bytes, offsets, and a table (length, first byte) -> the
    one name of that length and first byte (-1: none; -2: several, searched in turn)."""
    encoded = [n.encode() for n in names]
    offsets = np.cumsum([0] + [len(n) for n in encoded]).astype(np.int64)
    table = np.full((max(len(n) for n in encoded) + 1, 256), -1, dtype=np.int64)
    for k, n in enumerate(encoded):
        table[len(n), n[0]] = k if table[len(n), n[0]] == -1 else -2
    return np.frombuffer(b"".join(encoded), dtype=np.uint8).copy(), offsets, table


#: bytes that end the fast reading of a string: the quote, and what sends a line to the general path
#: (backslash escapes, control characters, non-ASCII)
_STRING_STOP = np.array([c == 34 or c == 92 or c < 32 or c >= 128 for c in range(256)], dtype=np.bool_)
_HEX = np.array([chr(c) in "0123456789abcdefABCDEF" for c in range(256)], dtype=np.bool_)
_WHITESPACE = np.array([c in (32, 9, 13, 10) for c in range(256)], dtype=np.bool_)


_FILL_NAMES = _names(_FILL_KEYS)
_LIQ_NAMES = _names(_LIQ_KEYS)
_BLOCK_NAMES = _names(_BLOCK_KEYS)
_DIR_NAMES = _names(_DIRS)
_METHOD_NAMES = _names(_METHODS)
_LIQUIDATED_DIRS = np.array([d.startswith("Liquidated") for d in _DIRS], dtype=np.bool_)
_ADL_DIR = _DIRS.index("Auto-Deleveraging")

#: a line's outcome in the scan
PLAIN, NOT_PLAIN, BLANK = 0, 1, 2
_FAIL = -1
_MAX_DEPTH = 256


# --- JSON pieces: each returns the index after what it read, or _FAIL ---------------------------------------
@njit(cache=True, nogil=True)
def _ws(buf: np.ndarray, i: int, end: int) -> int:
    while i < end and _WHITESPACE[buf[i]]:
        i += 1
    return i


@njit(cache=True, nogil=True)
def _string(buf: np.ndarray, i: int, end: int) -> int:
    """``buf[i]`` is a quote: the index after the closing quote; escapes, controls and non-ASCII fail."""
    i += 1
    while i < end and not _STRING_STOP[buf[i]]:
        i += 1
    if i < end and buf[i] == 34:
        return i + 1
    return _FAIL


@njit(cache=True, nogil=True)
def _digits(buf: np.ndarray, i: int, end: int) -> int:
    j = i
    while j < end and 48 <= buf[j] <= 57:
        j += 1
    return j


@njit(cache=True, nogil=True)
def _number(buf: np.ndarray, i: int, end: int) -> int:
    """A JSON number by the grammar: the index after it, or _FAIL."""
    if i < end and buf[i] == 45:
        i += 1
    if i >= end:
        return _FAIL
    if buf[i] == 48:
        i += 1
    elif 49 <= buf[i] <= 57:
        i = _digits(buf, i, end)
    else:
        return _FAIL
    if i < end and buf[i] == 46:
        j = _digits(buf, i + 1, end)
        if j == i + 1:
            return _FAIL
        i = j
    if i < end and (buf[i] == 101 or buf[i] == 69):
        i += 1
        if i < end and (buf[i] == 43 or buf[i] == 45):
            i += 1
        j = _digits(buf, i, end)
        if j == i:
            return _FAIL
        i = j
    return i


@njit(cache=True, nogil=True)
def _literal(buf: np.ndarray, i: int, end: int, word: np.ndarray) -> int:
    n = len(word)
    if i + n > end:
        return _FAIL
    for k in range(n):
        if buf[i + k] != word[k]:
            return _FAIL
    return i + n


_TRUE = np.frombuffer(b"true", dtype=np.uint8).copy()
_FALSE = np.frombuffer(b"false", dtype=np.uint8).copy()
_NULL = np.frombuffer(b"null", dtype=np.uint8).copy()


@njit(cache=True, nogil=True)
def _skip(buf: np.ndarray, i: int, end: int, true_: np.ndarray, false_: np.ndarray, null_: np.ndarray) -> int:
    """Any JSON value (checked, not kept): the index after it, or _FAIL. Nesting on an explicit stack."""
    stack = np.empty(_MAX_DEPTH, dtype=np.uint8)  # 1 = in an object, 2 = in an array
    depth = 0
    while True:
        i = _ws(buf, i, end)
        if i >= end:
            return _FAIL
        c = buf[i]
        if c == 123 or c == 91:  # { or [
            if depth == _MAX_DEPTH:
                return _FAIL
            stack[depth] = 1 if c == 123 else 2
            depth += 1
            i = _ws(buf, i + 1, end)
            if i < end and buf[i] == (125 if c == 123 else 93):
                depth -= 1
                i += 1
            elif c == 123:
                if i >= end or buf[i] != 34:
                    return _FAIL
                i = _string(buf, i, end)
                if i == _FAIL:
                    return _FAIL
                i = _ws(buf, i, end)
                if i >= end or buf[i] != 58:
                    return _FAIL
                i += 1
                continue
            else:
                continue
        elif c == 34:
            i = _string(buf, i, end)
        elif c == 116:
            i = _literal(buf, i, end, true_)
        elif c == 102:
            i = _literal(buf, i, end, false_)
        elif c == 110:
            i = _literal(buf, i, end, null_)
        else:
            i = _number(buf, i, end)
        if i == _FAIL:
            return _FAIL
        # after a value: close containers or take the next member / item
        while True:
            if depth == 0:
                return i
            i = _ws(buf, i, end)
            if i >= end:
                return _FAIL
            c = buf[i]
            if c == 44:  # ,
                i += 1
                if stack[depth - 1] == 1:
                    i = _ws(buf, i, end)
                    if i >= end or buf[i] != 34:
                        return _FAIL
                    i = _string(buf, i, end)
                    if i == _FAIL:
                        return _FAIL
                    i = _ws(buf, i, end)
                    if i >= end or buf[i] != 58:
                        return _FAIL
                    i += 1
                break
            if c == (125 if stack[depth - 1] == 1 else 93):
                depth -= 1
                i += 1
                continue
            return _FAIL


@njit(cache=True, nogil=True)
def _same(buf: np.ndarray, s: int, e: int, names: np.ndarray, offsets: np.ndarray, k: int) -> bool:
    a = offsets[k]
    if offsets[k + 1] - a != e - s:
        return False
    for j in range(e - s):
        if buf[s + j] != names[a + j]:
            return False
    return True


@njit(cache=True, nogil=True)
def _match(buf: np.ndarray, s: int, e: int, names: np.ndarray, offsets: np.ndarray, table: np.ndarray) -> int:
    """Index of ``buf[s:e]`` among the names, or -1."""
    n = e - s
    if n <= 0 or n >= table.shape[0]:
        return -1
    k = table[n, buf[s]]
    if k >= 0:
        return k if _same(buf, s, e, names, offsets, k) else -1
    if k == -2:
        for k in range(len(offsets) - 1):
            if _same(buf, s, e, names, offsets, k):
                return k
    return -1


@njit(cache=True, nogil=True)
def _uint(buf: np.ndarray, s: int, e: int, negative_ok: bool) -> tuple[bool, int | np.int64, bool]:
    """A JSON integer token as (ok, value as int64 bits, negative); uint64 range, or int64 when negative."""
    neg = False
    if s < e and buf[s] == 45:
        if not negative_ok:
            return False, 0, False
        neg = True
        s += 1
    n = e - s
    if n < 1 or n > 20 or (buf[s] == 48 and n > 1) or (neg and buf[s] == 48):
        return False, 0, False
    v = np.uint64(0)
    limit = np.uint64(1844674407370955161)  # (2**64 - 1) // 10
    for j in range(s, e):
        d = buf[j] - 48
        if d < 0 or d > 9:
            return False, 0, False
        if v > limit or (v == limit and d > 5):
            return False, 0, False
        v = v * np.uint64(10) + np.uint64(d)
    if neg:
        if v > np.uint64(9223372036854775808):
            return False, 0, False
        return True, -np.int64(v - np.uint64(1)) - 1, True
    return True, np.int64(v), False


@njit(cache=True, nogil=True)
def _plain_decimal(buf: np.ndarray, s: int, e: int) -> tuple[bool, bool, bool]:
    """``-?[0-9]{1,28}(.[0-9]{1,10})?``: (ok, has a nonzero digit, negative)."""
    neg = s < e and buf[s] == 45
    if neg:
        s += 1
    j = _digits(buf, s, e)
    if j == s or j - s > 28:
        return False, False, neg
    nonzero = False
    for k in range(s, j):
        if buf[k] != 48:
            nonzero = True
    if j < e:
        if buf[j] != 46:
            return False, False, neg
        f = _digits(buf, j + 1, e)
        if f != e or f == j + 1 or f - j - 1 > 10:
            return False, False, neg
        for k in range(j + 1, f):
            if buf[k] != 48:
                nonzero = True
    return True, nonzero, neg


@njit(cache=True, nogil=True)
def _address(buf: np.ndarray, s: int, e: int) -> bool:
    if e - s != 42 or buf[s] != 48 or buf[s + 1] != 120:
        return False
    for j in range(s + 2, e):
        if not _HEX[buf[j]]:
            return False
    return True


@njit(cache=True, nogil=True)
def _two(buf: np.ndarray, s: int) -> int:
    a, b = buf[s] - 48, buf[s + 1] - 48
    if a < 0 or a > 9 or b < 0 or b > 9:
        return -1
    return a * 10 + b


@njit(cache=True, nogil=True)
def _timestamp_ns(buf: np.ndarray, s: int, e: int) -> tuple[bool, int]:
    """``YYYY-MM-DDTHH:MM:SS[.f{1,9}]`` as epoch nanoseconds: (ok, value)."""
    n = e - s
    if n < 19 or buf[s + 4] != 45 or buf[s + 7] != 45 or buf[s + 10] != 84 or buf[s + 13] != 58 or buf[s + 16] != 58:
        return False, 0
    hi, lo = _two(buf, s), _two(buf, s + 2)
    month, day = _two(buf, s + 5), _two(buf, s + 8)
    hour, minute, sec = _two(buf, s + 11), _two(buf, s + 14), _two(buf, s + 17)
    if min(hi, lo, month, day, hour, minute, sec) < 0:
        return False, 0
    year = hi * 100 + lo
    if year < 1970 or year > 2199 or month < 1 or month > 12 or hour > 23 or minute > 59 or sec > 59:
        return False, 0
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    mdays = 31
    if month == 2:
        mdays = 29 if leap else 28
    elif month == 4 or month == 6 or month == 9 or month == 11:
        mdays = 30
    if day < 1 or day > mdays:
        return False, 0
    frac = 0
    if n > 19:
        if buf[s + 19] != 46 or n == 20 or n > 29:
            return False, 0
        scale = 100_000_000
        for j in range(s + 20, e):
            d = buf[j] - 48
            if d < 0 or d > 9:
                return False, 0
            frac += d * scale
            scale //= 10
    # days from the civil date (Howard Hinnant's algorithm)
    y = year - 1 if month <= 2 else year
    era = y // 400
    yoe = y - era * 400
    mp = month + 9 if month <= 2 else month - 3
    doy = (153 * mp + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days = era * 146097 + doe - 719468
    return True, ((days * 24 + hour) * 60 + minute) * 60 * 1_000_000_000 + sec * 1_000_000_000 + frac


@njit(cache=True, nogil=True)
def _grow1(a: np.ndarray) -> np.ndarray:
    out = np.empty(2 * a.shape[0], dtype=a.dtype)
    out[: a.shape[0]] = a
    return out


@njit(cache=True, nogil=True)
def _grow2(a: np.ndarray) -> np.ndarray:
    out = np.empty((2 * a.shape[0], a.shape[1]), dtype=a.dtype)
    out[: a.shape[0]] = a
    return out


# --- the scan ----------------------------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def _scan(
    buf: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    fill_names: np.ndarray,
    fill_offsets: np.ndarray,
    fill_table: np.ndarray,
    liq_names: np.ndarray,
    liq_offsets: np.ndarray,
    liq_table: np.ndarray,
    block_names: np.ndarray,
    block_offsets: np.ndarray,
    block_table: np.ndarray,
    dir_names: np.ndarray,
    dir_offsets: np.ndarray,
    dir_table: np.ndarray,
    method_names: np.ndarray,
    method_offsets: np.ndarray,
    method_table: np.ndarray,
    true_: np.ndarray,
    false_: np.ndarray,
    null_: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """Scan lines ``buf[starts[k]:ends[k]]``. Returns the line outcomes, per-line block fields and, per event
    of a plain line, its line, index, user position, string positions (start, end; -1 when absent), integers,
    flags (value present per integer, crossed, liquidation present) and dir index."""
    n_lines = len(starts)
    outcome = np.full(n_lines, NOT_PLAIN, dtype=np.uint8)
    block_ints = np.zeros((n_lines, 3), dtype=np.int64)  # block_number, block_time ns, local_time ns
    block_has = np.zeros((n_lines, 3), dtype=np.bool_)
    cap = 1024
    ev_line = np.empty(cap, dtype=np.int64)
    ev_index = np.empty(cap, dtype=np.int32)
    ev_user = np.empty(cap, dtype=np.int64)
    ev_str = np.empty((cap, 2 * N_STRINGS), dtype=np.int64)  # start, end per string slot
    ev_int = np.empty((cap, 4), dtype=np.int64)
    ev_flag = np.empty((cap, N_FLAGS), dtype=np.int8)
    n = 0
    seen = np.zeros(len(fill_offsets), dtype=np.bool_)
    seen_liq = np.zeros(len(liq_offsets), dtype=np.bool_)
    seen_block = np.zeros(len(block_offsets), dtype=np.bool_)
    for li in range(n_lines):
        end = ends[li]
        i = _ws(buf, starts[li], end)
        if i == end:
            outcome[li] = BLANK
            continue
        first = n
        ok = buf[i] == 123
        i += 1
        seen_block[:] = False
        closed = False
        members = 0
        while ok:
            i = _ws(buf, i, end)
            if members == 0 and i < end and buf[i] == 125:
                closed = True
                i += 1
                break
            members += 1
            if i >= end or buf[i] != 34:
                ok = False
                break
            ks = i + 1
            i = _string(buf, i, end)
            if i == _FAIL:
                ok = False
                break
            key = _match(buf, ks, i - 1, block_names, block_offsets, block_table)
            i = _ws(buf, i, end)
            if i >= end or buf[i] != 58:
                ok = False
                break
            i = _ws(buf, i + 1, end)
            if i >= end:
                ok = False
                break
            if key >= 0:
                if seen_block[key]:
                    ok = False
                    break
                seen_block[key] = True
            if key == 0:  # block_number
                if buf[i] == 110:
                    i = _literal(buf, i, end, null_)
                else:
                    j = _number(buf, i, end)
                    if j == _FAIL:
                        ok = False
                        break
                    good, v, neg = _uint(buf, i, j, True)
                    if not good or (not neg and v < 0):
                        ok = False
                        break
                    block_ints[li, 0] = v
                    block_has[li, 0] = True
                    i = j
            elif key == 1 or key == 2:  # block_time, local_time
                if buf[i] == 110:
                    i = _literal(buf, i, end, null_)
                elif buf[i] == 34:
                    j = _string(buf, i, end)
                    if j == _FAIL:
                        ok = False
                        break
                    good, ts = _timestamp_ns(buf, i + 1, j - 1)
                    if not good:
                        ok = False
                        break
                    block_ints[li, key] = ts
                    block_has[li, key] = True
                    i = j
                else:
                    ok = False
                    break
            elif key == 3:  # events
                if buf[i] != 91:
                    ok = False
                    break
                i = _ws(buf, i + 1, end)
                if i < end and buf[i] == 93:
                    i += 1
                else:
                    index = 0
                    while True:
                        # one event: [ "address" , { fill } ]
                        if i >= end or buf[i] != 91:
                            ok = False
                            break
                        i = _ws(buf, i + 1, end)
                        if i >= end or buf[i] != 34:
                            ok = False
                            break
                        us = i + 1
                        i = _string(buf, i, end)
                        if i == _FAIL or not _address(buf, us, i - 1):
                            ok = False
                            break
                        i = _ws(buf, i, end)
                        if i >= end or buf[i] != 44:
                            ok = False
                            break
                        i = _ws(buf, i + 1, end)
                        if i >= end or buf[i] != 123:
                            ok = False
                            break
                        if n == ev_line.shape[0]:
                            ev_line = _grow1(ev_line)
                            ev_index = _grow1(ev_index)
                            ev_user = _grow1(ev_user)
                            ev_str = _grow2(ev_str)
                            ev_int = _grow2(ev_int)
                            ev_flag = _grow2(ev_flag)
                        index += 1
                        ev_line[n] = li
                        ev_index[n] = index
                        ev_user[n] = us
                        ev_str[n, :] = -1
                        ev_flag[n, :] = 0
                        ev_flag[n, F_CROSSED] = -1
                        seen[:] = False
                        i = _fill(
                            buf,
                            i,
                            end,
                            n,
                            ev_str,
                            ev_int,
                            ev_flag,
                            seen,
                            seen_liq,
                            fill_names,
                            fill_offsets,
                            fill_table,
                            liq_names,
                            liq_offsets,
                            liq_table,
                            true_,
                            false_,
                            null_,
                        )
                        if i == _FAIL or not _fill_ok(
                            buf,
                            n,
                            ev_str,
                            ev_int,
                            ev_flag,
                            dir_names,
                            dir_offsets,
                            dir_table,
                            method_names,
                            method_offsets,
                            method_table,
                        ):
                            ok = False
                            break
                        n += 1
                        i = _ws(buf, i, end)
                        if i >= end or buf[i] != 93:
                            ok = False
                            break
                        i = _ws(buf, i + 1, end)
                        if i < end and buf[i] == 44:
                            i = _ws(buf, i + 1, end)
                            continue
                        if i < end and buf[i] == 93:
                            i += 1
                            break
                        ok = False
                        break
                    if not ok:
                        break
            else:
                i = _skip(buf, i, end, true_, false_, null_)
            if i == _FAIL:
                ok = False
                break
            i = _ws(buf, i, end)
            if i < end and buf[i] == 44:
                i += 1
                continue
            if i < end and buf[i] == 125:
                closed = True
                i += 1
                break
            ok = False
        if ok and closed and seen_block[3] and _ws(buf, i, end) == end:
            outcome[li] = PLAIN
        else:
            n = first  # nothing of a line that is not plain is kept
            block_has[li, :] = False
    return outcome, block_ints, block_has, ev_line[:n], ev_index[:n], ev_user[:n], ev_str[:n], ev_int[:n], ev_flag[:n]


@njit(cache=True, nogil=True)
def _fill(
    buf: np.ndarray,
    i: int,
    end: int,
    n: int,
    ev_str: np.ndarray,
    ev_int: np.ndarray,
    ev_flag: np.ndarray,
    seen: np.ndarray,
    seen_liq: np.ndarray,
    fill_names: np.ndarray,
    fill_offsets: np.ndarray,
    fill_table: np.ndarray,
    liq_names: np.ndarray,
    liq_offsets: np.ndarray,
    liq_table: np.ndarray,
    true_: np.ndarray,
    false_: np.ndarray,
    null_: np.ndarray,
) -> int:
    """The fill object at ``buf[i] == '{'`` into event row ``n``: the index after it, or _FAIL."""
    i = _ws(buf, i + 1, end)
    if i < end and buf[i] == 125:
        return i + 1
    while True:
        if i >= end or buf[i] != 34:
            return _FAIL
        ks = i + 1
        i = _string(buf, i, end)
        if i == _FAIL:
            return _FAIL
        key = _match(buf, ks, i - 1, fill_names, fill_offsets, fill_table)
        i = _ws(buf, i, end)
        if i >= end or buf[i] != 58:
            return _FAIL
        i = _ws(buf, i + 1, end)
        if i >= end:
            return _FAIL
        if key >= 0:
            if seen[key]:
                return _FAIL
            seen[key] = True
        c = buf[i]
        if key < 0:
            i = _skip(buf, i, end, true_, false_, null_)
        elif c == 110:  # null: absent (and still seen: a repeat after it is a repeat)
            i = _literal(buf, i, end, null_)
        elif key < 12:  # string fields
            if c != 34:
                return _FAIL
            j = _string(buf, i, end)
            if j == _FAIL:
                return _FAIL
            ev_str[n, 2 * key] = i + 1
            ev_str[n, 2 * key + 1] = j - 1
            i = j
        elif key < 16:  # time, oid, tid, twapId
            j = _number(buf, i, end)
            if j == _FAIL:
                return _FAIL
            good, v, neg = _uint(buf, i, j, key == 15)
            if not good or (key == 15 and not neg and v < 0):  # twapId is an int64
                return _FAIL
            ev_int[n, key - 12] = v
            ev_flag[n, key - 12] = 1
            i = j
        elif key == K_CROSSED:
            if c == 116:
                i = _literal(buf, i, end, true_)
                ev_flag[n, F_CROSSED] = 1
            elif c == 102:
                i = _literal(buf, i, end, false_)
                ev_flag[n, F_CROSSED] = 0
            else:
                return _FAIL
        else:  # liquidation
            if c != 123:
                return _FAIL
            ev_flag[n, F_LIQUIDATION] = 1
            seen_liq[:] = False
            i = _ws(buf, i + 1, end)
            if i < end and buf[i] == 125:
                i += 1
            else:
                while True:
                    if i >= end or buf[i] != 34:
                        return _FAIL
                    ks = i + 1
                    i = _string(buf, i, end)
                    if i == _FAIL:
                        return _FAIL
                    lk = _match(buf, ks, i - 1, liq_names, liq_offsets, liq_table)
                    i = _ws(buf, i, end)
                    if i >= end or buf[i] != 58:
                        return _FAIL
                    i = _ws(buf, i + 1, end)
                    if i >= end:
                        return _FAIL
                    if lk >= 0:
                        if seen_liq[lk]:
                            return _FAIL
                        seen_liq[lk] = True
                    if lk < 0:
                        i = _skip(buf, i, end, true_, false_, null_)
                    elif buf[i] == 110:
                        i = _literal(buf, i, end, null_)
                    elif buf[i] == 34:
                        j = _string(buf, i, end)
                        if j == _FAIL:
                            return _FAIL
                        ev_str[n, 2 * (12 + lk)] = i + 1
                        ev_str[n, 2 * (12 + lk) + 1] = j - 1
                        i = j
                    else:
                        return _FAIL
                    if i == _FAIL:
                        return _FAIL
                    i = _ws(buf, i, end)
                    if i < end and buf[i] == 44:
                        i = _ws(buf, i + 1, end)
                        continue
                    if i < end and buf[i] == 125:
                        i += 1
                        break
                    return _FAIL
        if i == _FAIL:
            return _FAIL
        i = _ws(buf, i, end)
        if i < end and buf[i] == 44:
            i = _ws(buf, i + 1, end)
            continue
        if i < end and buf[i] == 125:
            return i + 1
        return _FAIL


@njit(cache=True, nogil=True)
def _fill_ok(
    buf: np.ndarray,
    n: int,
    ev_str: np.ndarray,
    ev_int: np.ndarray,
    ev_flag: np.ndarray,
    dir_names: np.ndarray,
    dir_offsets: np.ndarray,
    dir_table: np.ndarray,
    method_names: np.ndarray,
    method_offsets: np.ndarray,
    method_table: np.ndarray,
) -> bool:
    """The checks of the general path, all passing (else the line is not plain); sets the dir index."""
    s = ev_str[n]
    if s[2 * S_COIN] < 0 or not 1 <= s[2 * S_COIN + 1] - s[2 * S_COIN] <= 64:
        return False
    if not ev_flag[n, I_TID] or not ev_flag[n, I_TIME]:  # both required
        return False
    t = ev_int[n, I_TIME]
    if t < 1_000_000_000_000 or t > 9_999_999_999_999:
        return False
    for slot in (S_PX, S_SZ):
        if s[2 * slot] < 0:
            return False
        good, nonzero, neg = _plain_decimal(buf, s[2 * slot], s[2 * slot + 1])
        if not good or not nonzero or neg:
            return False
    for slot in (S_START, S_PNL, S_FEE, S_BUILDER_FEE, S_LIQ_MARK):
        if s[2 * slot] >= 0:
            good, nonzero, neg = _plain_decimal(buf, s[2 * slot], s[2 * slot + 1])
            if not good:
                return False
    a = s[2 * S_SIDE]
    if a < 0 or s[2 * S_SIDE + 1] - a != 1 or (buf[a] != 65 and buf[a] != 66):
        return False
    if s[2 * S_DIR] < 0:
        return False
    d = _match(buf, s[2 * S_DIR], s[2 * S_DIR + 1], dir_names, dir_offsets, dir_table)
    if d < 0:
        return False
    ev_flag[n, F_DIR] = d
    if ev_flag[n, F_LIQUIDATION]:
        m = s[2 * S_LIQ_METHOD]
        if m < 0 or _match(buf, m, s[2 * S_LIQ_METHOD + 1], method_names, method_offsets, method_table) < 0:
            return False
        u = s[2 * S_LIQ_USER]
        if u >= 0 and not _address(buf, u, s[2 * S_LIQ_USER + 1]):
            return False
    else:
        s[2 * S_LIQ_USER :] = -1
    return True


@njit(cache=True, nogil=True)
def _gather(
    buf: np.ndarray, pos: np.ndarray, lower: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Strings ``buf[pos[k, 2j]:pos[k, 2j + 1]]`` of each slot ``j`` (absent when the start is < 0; lowercased
    where ``lower[j]``) as Arrow pieces: offsets ``(m + 1, slots)`` within each slot's bytes, the bytes of all
    slots one after another (slot ``j`` from ``base[j]``) and validity ``(m, slots)``. Row by row, so each
    fill's bytes are read once while in cache."""
    m, slots = pos.shape[0], lower.shape[0]
    offsets = np.empty((m + 1, slots), dtype=np.int64)
    valid = np.empty((m, slots), dtype=np.bool_)
    running = np.zeros(slots, dtype=np.int64)
    for k in range(m):
        for j in range(slots):
            offsets[k, j] = running[j]
            a = pos[k, 2 * j]
            valid[k, j] = a >= 0
            if a >= 0:
                running[j] += pos[k, 2 * j + 1] - a
    offsets[m, :] = running
    base = np.zeros(slots + 1, dtype=np.int64)
    base[1:] = np.cumsum(running)
    data = np.empty(base[slots], dtype=np.uint8)
    for k in range(m):
        for j in range(slots):
            a = pos[k, 2 * j]
            if a < 0:
                continue
            o = base[j] + offsets[k, j]
            b = pos[k, 2 * j + 1]
            if lower[j]:
                for t in range(a, b):
                    c = buf[t]
                    data[o + t - a] = c + 32 if 65 <= c <= 90 else c
            else:
                data[o : o + b - a] = buf[a:b]
    return offsets, data, valid, base


@njit(cache=True, nogil=True)
def _liquidated_leg(buf: np.ndarray, ev_user: np.ndarray, liq_pos: np.ndarray) -> np.ndarray:
    """``lower(liquidatedUser) = lower(user)`` per event (False when there is none)."""
    m = len(ev_user)
    out = np.zeros(m, dtype=np.bool_)
    for k in range(m):
        s = liq_pos[k, 0]
        if s < 0 or liq_pos[k, 1] - s != 42:
            continue
        same = True
        for j in range(42):
            a, b = buf[s + j], buf[ev_user[k] + j]
            if 65 <= a <= 90:
                a += 32
            if 65 <= b <= 90:
                b += 32
            if a != b:
                same = False
                break
        out[k] = same
    return out


def _string_arrays(buf: np.ndarray, pos: np.ndarray, lower: np.ndarray) -> list[pa.Array]:
    """One string array per slot of :func:`_gather`."""
    offsets, data, valid, base = _gather(buf, pos, lower)
    arrays = []
    for j in range(len(lower)):
        n, bytes_ = len(valid), pa.py_buffer(data[base[j] : base[j + 1]])
        nulls = None if valid[:, j].all() else pa.py_buffer(np.packbits(valid[:, j], bitorder="little"))
        if offsets[-1, j] < 2**31:
            arrays.append(pa.StringArray.from_buffers(n, pa.py_buffer(offsets[:, j].astype(np.int32)), bytes_, nulls))
        else:
            large = pa.LargeStringArray.from_buffers(
                n, pa.py_buffer(np.ascontiguousarray(offsets[:, j])), bytes_, nulls
            )
            arrays.append(large.cast(pa.string()))
    return arrays


def _masked(values: np.ndarray, present: np.ndarray, type_: pa.DataType) -> pa.Array:
    return pa.array(values, type_, mask=~present)


@dataclass
class ScannedLines:
    """A batch after the scan: ``fills`` (``fills`` schema plus ``line_no``) of its plain lines, in input
    order, and which lines were neither plain nor blank (``line_no`` of each): the general path's work."""

    fills: pa.Table
    other_lines: np.ndarray
    blank_lines: int


_OUTPUT = FILLS.arrow_schema().append(pa.field("line_no", pa.int64()))
_DIR_ARRAY = pa.array(_DIRS, pa.string())


def scan_node_lines(
    buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, line_nos: np.ndarray, *, source: str, source_key: str
) -> ScannedLines:
    """Fills of the plain ``node_fills_by_block`` lines among ``buf[starts[k]:ends[k]]`` (numbered
    ``line_nos[k]``), set-wise; the rest are named for the general path. Releases the GIL while scanning."""
    outcome, block_ints, block_has, ev_line, ev_index, ev_user, ev_str, ev_int, ev_flag = _scan(
        buf, starts, ends, *_FILL_NAMES, *_LIQ_NAMES, *_BLOCK_NAMES, *_DIR_NAMES, *_METHOD_NAMES, _TRUE, _FALSE, _NULL
    )
    other = line_nos[outcome == NOT_PLAIN]
    blank = int((outcome == BLANK).sum())
    m = len(ev_line)
    if m == 0:
        return ScannedLines(_OUTPUT.empty_table(), other, blank)
    time_ms = ev_int[:, I_TIME]
    dir_index = ev_flag[:, F_DIR].astype(np.int64)
    liquidated_dir = _LIQUIDATED_DIRS[dir_index]
    has_liq = ev_flag[:, F_LIQUIDATION].astype(bool)
    liq_user = ev_str[:, 2 * S_LIQ_USER : 2 * S_LIQ_USER + 2]
    # the fill's strings as they are, the liquidated user lowercased, then the user (lowercased) as slot N_STRINGS
    lower = np.zeros(N_STRINGS + 1, dtype=np.bool_)
    lower[[S_LIQ_USER, N_STRINGS]] = True
    strings = dict(enumerate(_string_arrays(buf, np.column_stack([ev_str, ev_user, ev_user + 42]), lower)))
    decimals = {slot: pc.cast(strings[slot], pa.decimal128(38, 10)) for slot in _DECIMAL_SLOTS}
    tid = ev_int[:, I_TID].view(np.uint64)
    crossed = ev_flag[:, F_CROSSED]
    columns = {
        "venue": pa.repeat(pa.scalar(VENUE, pa.string()), m),
        "date": pa.array((time_ms // 86_400_000).astype(np.int32), pa.date32()),
        "coin": strings[S_COIN],
        "user": strings[N_STRINGS],
        "time": pa.array(time_ms * 1000, pa.timestamp("us")),
        "time_ms": pa.array(time_ms, pa.int64()),
        "block_number": _masked(block_ints[ev_line, 0], block_has[ev_line, 0], pa.int64()),
        "block_time": _masked(block_ints[ev_line, 1], block_has[ev_line, 1], pa.timestamp("ns")),
        "local_time": _masked(block_ints[ev_line, 2], block_has[ev_line, 2], pa.timestamp("ns")),
        "event_index": pa.array(ev_index, pa.int32()),
        "tid": pa.array(tid, pa.uint64()),
        "fill_id": pc.cast(pa.array(tid, pa.uint64()), pa.string()),
        "oid": _masked(ev_int[:, I_OID].view(np.uint64), ev_flag[:, I_OID] == 1, pa.uint64()),
        "hash": strings[S_HASH],
        "side": strings[S_SIDE],
        "px": decimals[S_PX],
        "sz": decimals[S_SZ],
        "start_position": decimals[S_START],
        "dir": strings[S_DIR],
        "closed_pnl": decimals[S_PNL],
        "fee": decimals[S_FEE],
        "fee_token": strings[S_FEE_TOKEN],
        "builder_fee": decimals[S_BUILDER_FEE],
        "crossed": _masked(crossed == 1, crossed >= 0, pa.bool_()),
        "cloid": strings[S_CLOID],
        "twap_id": _masked(ev_int[:, I_TWAP], ev_flag[:, I_TWAP] == 1, pa.int64()),
        "is_liquidation": pa.array(has_liq | liquidated_dir, pa.bool_()),
        "is_liquidated_leg": pa.array(_liquidated_leg(buf, ev_user, liq_user) | liquidated_dir),
        "liquidated_user": strings[S_LIQ_USER],
        "liquidation_mark_px": decimals[S_LIQ_MARK],
        "liquidation_method": strings[S_LIQ_METHOD],
        "is_adl": pa.array(dir_index == _ADL_DIR, pa.bool_()),
        "source": pa.repeat(pa.scalar(source, pa.string()), m),
        "source_key": pa.repeat(pa.scalar(source_key, pa.string()), m),
        "line_no": pa.array(line_nos[ev_line], pa.int64()),
    }
    return ScannedLines(pa.Table.from_arrays([columns[n] for n in _OUTPUT.names], schema=_OUTPUT), other, blank)
