"""``misc_events_by_block``: Funding deltas, LedgerUpdate deltas, staking and system events.

One line per block: ``{local_time, block_time, block_number, events: [{time, hash, inner: {<Variant>: {...}}}]}``
(reference ``hyperliquid-node-data.md`` §6). Lines are small except the hourly Funding block, so each line
is parsed once with orjson and normalized in Python with exact ``Decimal`` amounts.

Records (what reconciles): one per Funding delta, one per other event, one per line that is not a block.
A LedgerUpdate becomes one ``ledger_events`` row per address in its ``users`` (the API's shape: each
account sees the delta); a ``liquidation`` delta also becomes a ``liquidation_events`` row. Unknown
variants and delta types are quarantined with their raw JSON, never zeroed.

Times are naive ISO strings in UTC (0-9 fraction digits), parsed as UTC by
:func:`forensics.formats.records.node_time_ms`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ijson
import orjson

from forensics.formats.records import RAW_TEXT_LIMIT, RecordError, address, coin_name, dec, node_time_ms

from .ledger import (
    LEDGER_TYPES,
    STAKING_VARIANTS,
    SYSTEM_USER,
    SYSTEM_VARIANTS,
    category,
    ledger_fields,
    with_event_id,
)

RAW_LIMIT = RAW_TEXT_LIMIT


@dataclass
class MiscBatch:
    """Rows of some misc lines per table, plus rejects ``(line_no, event_index, reason, raw)``."""

    funding: list[dict[str, Any]] = field(default_factory=list)
    ledger: list[dict[str, Any]] = field(default_factory=list)
    liquidations: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[tuple[int, int | None, str, str]] = field(default_factory=list)
    records_read: int = 0
    records_written: int = 0
    blocks: list[int] = field(default_factory=list)


def _raw(obj: Any) -> str:
    try:
        return orjson.dumps(obj).decode()[:RAW_LIMIT]
    except TypeError:
        return str(obj)[:RAW_LIMIT]


def normalize_misc_line(line_no: int, text: str, out: MiscBatch) -> None:
    """Normalize one block line into ``out`` (rows or rejects; every record lands in one of them)."""
    try:
        block = orjson.loads(text)
    except orjson.JSONDecodeError:
        out.records_read += 1
        out.rejects.append((line_no, None, "malformed JSON line", text[:RAW_LIMIT]))
        return
    header = _block_header(line_no, block, text, out)
    if header is None:
        return
    number, block_ms = header
    for index, event in enumerate(block["events"], start=1):
        _event(line_no, number, block_ms, index, event, out)


def _block_header(line_no: int, block: Any, text: str | bytes, out: MiscBatch) -> tuple[int, int] | None:
    """(block_number, block time ms) of a block line, or None after rejecting the line with its reason."""
    events: Any = block.get("events") if isinstance(block, dict) else None
    number: Any = block.get("block_number") if isinstance(block, dict) else None
    reason = None
    block_ms = 0
    if not isinstance(block, dict):
        reason = "block line is not a JSON object"
    elif not isinstance(events, list):
        reason = "block has no events list"
    elif isinstance(number, bool) or not isinstance(number, int) or number < 0:
        reason = "missing or non-integer block_number"
    else:
        try:
            block_ms = node_time_ms(block.get("block_time"), "block_time")
        except RecordError as exc:
            reason = str(exc)
    if reason:
        out.records_read += 1
        raw = text[:RAW_LIMIT]
        out.rejects.append((line_no, None, reason, raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw))
        return None
    out.blocks.append(number)
    return number, block_ms


#: a block line longer than this is streamed (:func:`normalize_large_misc_line`) instead of parsed whole
LARGE_LINE = 8 << 20
_DELTAS = "events.item.inner.Funding.deltas"
_DELTA = _DELTAS + ".item"


def normalize_large_misc_line(
    line_no: int, data: bytes, out: MiscBatch, flush: Callable[[MiscBatch], None], chunk: int = 50_000
) -> None:
    """:func:`normalize_misc_line` for a line too large to hold parsed: the hourly Funding block (an
    Oct-10-sized hour has 250,000 deltas, ~50 MB on one line). Two streaming passes over the line's bytes:
    the block without its Funding deltas (counted per event), then the deltas, ``chunk`` at a time, each
    chunk's rows handed to ``flush(out)`` so no more than one chunk of rows is held. Same rows, rejects and
    counts as the whole-line parse."""
    try:
        block, counts = _skeleton(data)
    except ijson.JSONError:
        out.records_read += 1
        out.rejects.append((line_no, None, "malformed JSON line", data[:RAW_LIMIT].decode("utf-8", "replace")))
        return
    header = _block_header(line_no, block, data, out)
    if header is None:
        return
    number, block_ms = header
    deltas = ijson.items(data, _DELTA, use_float=True)
    funding_events = iter(counts)
    for index, event in enumerate(block["events"], start=1):
        body = (
            event.get("inner", {}).get("Funding")
            if isinstance(event, dict) and isinstance(event.get("inner"), dict)
            else None
        )
        if not (isinstance(body, dict) and isinstance(body.get("deltas"), list) and len(event["inner"]) == 1):
            _event(line_no, number, block_ms, index, event, out)
            continue
        n = next(funding_events)
        head = _funding_event(line_no, block_ms, index, event, body, out)
        first = 1
        while first <= n:
            part = [d for _, d in zip(range(min(chunk, n - first + 1)), deltas)]
            if not part:  # cannot happen: both passes read the same bytes
                break
            if head is not None:
                _funding_deltas(line_no, number, index, *head, part, out, first=first)
                flush(out)
            first += len(part)


def _skeleton(data: bytes) -> tuple[Any, list[int]]:
    """The parsed line with every Funding ``deltas`` list left empty, and each such list's length in order."""
    builder = ijson.ObjectBuilder()
    counts: list[int] = []
    for prefix, event, value in ijson.parse(data, use_float=True):
        if prefix == _DELTA or prefix.startswith(_DELTA + "."):
            if prefix == _DELTA and event not in ("end_map", "end_array", "map_key"):  # an item starts
                counts[-1] += 1
            continue
        if prefix == _DELTAS and event == "start_array":
            counts.append(0)
        builder.event(event, value)
    return builder.value, counts


def _event(line_no: int, block: int, block_ms: int, index: int, event: Any, out: MiscBatch) -> None:
    inner = event.get("inner") if isinstance(event, dict) else None
    if not isinstance(inner, dict) or len(inner) != 1:
        out.records_read += 1
        out.rejects.append((line_no, index, "event is not {time, hash, inner: {Variant: {...}}}", _raw(event)))
        return
    ((variant, body),) = inner.items()
    if variant == "Funding":
        _funding(line_no, block, block_ms, index, event, body, out)
        return
    out.records_read += 1
    try:
        time_ms = node_time_ms(event.get("time"), "event time") if "time" in event else block_ms
        hash_ = event.get("hash") if isinstance(event.get("hash"), str) else None
        common = {"time_ms": time_ms, "block_number": block, "event_index": index, "hash": hash_}
        if variant == "LedgerUpdate":
            rows = _ledger_update(body, common, out)
        elif variant in STAKING_VARIANTS or variant in SYSTEM_VARIANTS:
            rows = _staking_or_system(variant, body, common)
        else:
            raise RecordError(f"unknown misc event variant {variant[:64]!r}")
    except RecordError as exc:
        out.rejects.append((line_no, index, str(exc), _raw(event)))
        return
    out.ledger.extend(with_event_id(rows))
    out.records_written += 1


def _ledger_update(body: Any, common: dict[str, Any], out: MiscBatch) -> list[dict[str, Any]]:
    if not isinstance(body, dict):
        raise RecordError("LedgerUpdate is not an object")
    delta, users = body.get("delta"), body.get("users")
    if not isinstance(delta, dict) or not isinstance(delta.get("type"), str) or not delta["type"]:
        raise RecordError("LedgerUpdate delta has no type")
    if delta["type"] not in LEDGER_TYPES:
        raise RecordError(f"unknown LedgerUpdate delta type {delta['type'][:64]!r}")
    if not isinstance(users, list) or not users:
        raise RecordError("LedgerUpdate users is not a non-empty list")
    accounts = list(dict.fromkeys(address(u, "users") for u in users))
    fields = ledger_fields(delta)
    if delta["type"] == "liquidation":
        out.liquidations.append(_liquidation(delta, accounts[0], common))
    return [{**common, **fields, "user": u} for u in accounts]


def _liquidation(delta: dict[str, Any], user: str, common: dict[str, Any]) -> dict[str, Any]:
    positions = delta.get("liquidatedPositions")
    if not isinstance(positions, list):
        raise RecordError("liquidation liquidatedPositions is not a list")
    exact = []
    for p in positions:
        if not isinstance(p, dict):
            raise RecordError("liquidatedPositions item is not an object")
        dec(p.get("szi"), "liquidatedPositions.szi")
        exact.append({"coin": coin_name(p.get("coin")), "szi": str(p.get("szi"))})
    return {
        **common,
        "user": user,
        "account_value": dec(delta.get("accountValue"), "accountValue"),
        "liquidated_ntl_pos": dec(delta.get("liquidatedNtlPos"), "liquidatedNtlPos", required=False),
        "leverage_type": delta.get("leverageType") if isinstance(delta.get("leverageType"), str) else None,
        "position_count": len(exact),
        "liquidated_positions": orjson.dumps(exact).decode(),
    }


def _staking_or_system(variant: str, body: Any, common: dict[str, Any]) -> list[dict[str, Any]]:
    """Staking and system events are recorded with their JSON; they never move perp cash."""
    if not isinstance(body, dict):
        raise RecordError(f"{variant} is not an object")
    base = {
        **common,
        "type": variant,
        "category": category(variant),
        "delta_json": orjson.dumps(body, option=orjson.OPT_SORT_KEYS).decode(),
    }
    if variant == "ValidatorRewards":
        rewards = body.get("validator_to_reward")
        if not isinstance(rewards, list):
            raise RecordError("ValidatorRewards validator_to_reward is not a list")
        rows = []
        for item in rewards:
            if not isinstance(item, list) or len(item) != 2:
                raise RecordError("validator_to_reward item is not [validator, amount]")
            rows.append({**base, "user": address(item[0], "validator"), "amount": dec(item[1], "amount")})
        return rows
    if variant in SYSTEM_VARIANTS:
        return [{**base, "user": SYSTEM_USER}]
    row = {**base, "user": address(body.get("user")), "amount": dec(body.get("amount"), "amount")}
    if variant == "Delegation":
        row["destination"] = address(body.get("validator"), "validator")
    return [row]


def _funding(
    line_no: int, block: int, block_ms: int, index: int, event: dict[str, Any], body: Any, out: MiscBatch
) -> None:
    head = _funding_event(line_no, block_ms, index, event, body, out)
    if head is not None:
        _funding_deltas(line_no, block, index, *head, body["deltas"], out)


def _funding_event(
    line_no: int, block_ms: int, index: int, event: dict[str, Any], body: Any, out: MiscBatch
) -> tuple[int, str | None] | None:
    """(time ms, hash) of a Funding event, or None after rejecting it (one record) with the reason."""
    deltas = body.get("deltas") if isinstance(body, dict) else None
    try:
        time_ms = node_time_ms(event.get("time"), "event time") if "time" in event else block_ms
        if not isinstance(deltas, list):
            raise RecordError("Funding deltas is not a list")
    except RecordError as exc:
        out.records_read += 1
        out.rejects.append((line_no, index, str(exc), _raw(event)))
        return None
    return time_ms, event.get("hash") if isinstance(event.get("hash"), str) else None


def _funding_deltas(
    line_no: int,
    block: int,
    index: int,
    time_ms: int,
    hash_: str | None,
    deltas: list[Any],
    out: MiscBatch,
    first: int = 1,
) -> None:
    """One record per delta (``first``: the 1-based index of ``deltas[0]`` in its event)."""
    for k, d in enumerate(deltas, start=first):
        out.records_read += 1
        try:
            if not isinstance(d, dict):
                raise RecordError("Funding delta is not an object")
            row = {
                "user": address(d.get("user")),
                "coin": coin_name(d.get("coin")),
                "time_ms": time_ms,
                "block_number": block,
                "event_index": index,
                "delta_index": k,
                "hash": hash_,
                "funding_amount": dec(d.get("funding_amount"), "funding_amount"),
                "szi": dec(d.get("szi"), "szi", required=False),
                "funding_rate": dec(d.get("funding_rate"), "funding_rate", required=False),
            }
        except RecordError as exc:
            out.rejects.append((line_no, index, f"funding delta {k}: {exc}", _raw(d)))
            continue
        out.funding.append(row)
        out.records_written += 1


def is_misc_block(obj: Any) -> bool:
    """A parsed line that looks like a misc block: an events list whose items are ``{inner: ...}`` objects."""
    events = obj.get("events") if isinstance(obj, dict) else None
    return isinstance(events, list) and bool(events) and isinstance(events[0], dict) and "inner" in events[0]
