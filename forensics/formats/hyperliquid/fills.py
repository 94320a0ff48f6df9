"""Hyperliquid wire shapes and their normalization into the canonical tables.

Fills (the large volume) are normalized set-wise in DuckDB over Arrow batches of raw JSON text, so
millions of fills never pass through a per-fill Python loop. Snapshots and asset contexts are small
and are normalized in Python with exact ``Decimal`` parsing.

Every record either becomes a row or a quarantine entry with a reason; callers reconcile
``records_read == rows + quarantined``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, NotRequired, TypedDict

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from forensics.schema import (
    DECIMAL,
    ACCOUNT_SNAPSHOTS,
    ASSET_CTXS,
    FILLS,
    HYPERLIQUID_DIRS,
    LIQUIDATION_METHODS,
    POSITION_SNAPSHOTS,
    Table,
)

VENUE = "hyperliquid"
RAW_TEXT_LIMIT = 8192


# --- wire shapes (exact JSON; prices and sizes are decimal strings, times epoch ms) -----------------


class WireLiquidation(TypedDict):
    liquidatedUser: NotRequired[str]
    markPx: str
    method: Literal["market", "backstop"]


class WireFill(TypedDict):
    coin: str
    px: str
    sz: str
    side: Literal["B", "A"]
    time: int
    startPosition: str
    dir: str
    closedPnl: str
    hash: str
    oid: int
    crossed: bool
    fee: str
    tid: int
    feeToken: str
    builderFee: NotRequired[str]
    cloid: NotRequired[str]
    twapId: NotRequired[int | None]
    liquidation: NotRequired[WireLiquidation]


class WireNodeFillsBlock(TypedDict):
    """One line of ``node_fills_by_block/hourly/YYYYMMDD/H.lz4``; events are ``[user, fill]`` pairs."""

    local_time: str
    block_time: str
    block_number: int
    events: list[tuple[str, WireFill]]


class WireLeverage(TypedDict):
    type: Literal["cross", "isolated"]
    value: int
    rawUsd: NotRequired[str]


class WirePosition(TypedDict):
    coin: str
    szi: str
    leverage: WireLeverage
    entryPx: str
    positionValue: str
    unrealizedPnl: str
    returnOnEquity: str
    liquidationPx: str | None
    marginUsed: str
    maxLeverage: int
    cumFunding: dict[str, str]


class WireMarginSummary(TypedDict):
    accountValue: str
    totalNtlPos: str
    totalRawUsd: str
    totalMarginUsed: str


class WireClearinghouseState(TypedDict):
    marginSummary: WireMarginSummary
    crossMarginSummary: WireMarginSummary
    crossMaintenanceMarginUsed: str
    withdrawable: str
    assetPositions: list[dict[str, Any]]
    time: int


class WireSnapshotLine(TypedDict):
    """One line of a position snapshot file."""

    time: int
    user: str
    state: WireClearinghouseState


class WireAssetCtxLine(TypedDict):
    """One line of an asset-context file: ``ctxs`` is the ``metaAndAssetCtxs`` response pair."""

    time: int
    ctxs: list[Any]


# --- fills, set-wise in DuckDB ------------------------------------------------------------------------

_FILL_STRUCT = (
    '{"coin":"VARCHAR","px":"VARCHAR","sz":"VARCHAR","side":"VARCHAR","time":"VARCHAR",'
    '"startPosition":"VARCHAR","dir":"VARCHAR","closedPnl":"VARCHAR","hash":"VARCHAR","oid":"VARCHAR",'
    '"crossed":"VARCHAR","fee":"VARCHAR","tid":"VARCHAR","feeToken":"VARCHAR","builderFee":"VARCHAR",'
    '"cloid":"VARCHAR","twapId":"VARCHAR",'
    '"liquidation":{"liquidatedUser":"VARCHAR","markPx":"VARCHAR","method":"VARCHAR"}}'
)


def _dec(expr: str) -> str:
    """Exact decimal parse of a JSON string field. DuckDB's VARCHAR -> DECIMAL(38,x) cast costs ~8 us a
    value; DECIMAL(18,8) is ~200x faster and exact when the text has <= 8 fractional digits and fits,
    which covers Hyperliquid's prices, sizes and fees; anything else takes the slow exact cast."""
    return (
        f"CASE WHEN {expr} IS NULL THEN NULL "
        f"WHEN length({expr}) <= 19 AND NOT contains(lower({expr}), 'e') "
        f"AND (instr({expr}, '.') = 0 OR length({expr}) - instr({expr}, '.') <= 8) "
        f"AND TRY_CAST({expr} AS DECIMAL(18,8)) IS NOT NULL "
        f"THEN CAST(TRY_CAST({expr} AS DECIMAL(18,8)) AS {DECIMAL}) "
        f"ELSE TRY_CAST({expr} AS {DECIMAL}) END"
    )


def _sql_list(values: frozenset[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in sorted(values))


# Stage A: block lines -> one row per event (node files). Each line is parsed once into its block
# fields and its events as [user, fill-JSON-text] string lists; lines that are not objects with an
# events array become one quarantine row each (their reason is worked out only for those rows).
_BLOCK_STRUCT = '{"block_number":"VARCHAR","block_time":"VARCHAR","local_time":"VARCHAR","events":[["VARCHAR"]]}'

NODE_BLOCKS_SQL = f"""
CREATE OR REPLACE TEMP TABLE hl_blocks AS
SELECT line_no, line, TRY(json_transform(line, '{_BLOCK_STRUCT}')) AS b FROM hl_lines
"""

_BAD_LINE_COLUMNS = """line_no,
       CAST(NULL AS INTEGER) AS event_index,
       CASE WHEN NOT json_valid(line) THEN 'malformed JSON line'
            WHEN json_type(line::JSON) <> 'OBJECT' THEN 'block line is not a JSON object'
            WHEN json_type(line::JSON, '$.events') IS NULL THEN 'block has no events field'
            WHEN json_type(line::JSON, '$.events') <> 'ARRAY'
                THEN 'block events is not a list (got ' || json_type(line::JSON, '$.events') || ')'
            ELSE 'block events has an item that is not a list'
       END AS reason,
       left(line, {limit}) AS raw""".format(limit=RAW_TEXT_LIMIT)

NODE_BAD_LINES_SQL = f"SELECT {_BAD_LINE_COLUMNS} FROM hl_blocks WHERE b IS NULL OR b.events IS NULL"

NODE_EVENTS_SQL = """
CREATE OR REPLACE TEMP TABLE hl_events AS
SELECT line_no,
       CAST(generate_subscripts(b.events, 1) AS INTEGER) AS event_index,
       b.block_number AS block_number_raw,
       b.block_time AS block_time_raw,
       b.local_time AS local_time_raw,
       TRUE AS from_node,
       unnest(b.events) AS ev
FROM hl_blocks
WHERE b.events IS NOT NULL
"""

# Stage A for the info API: one row per response item, the owner known from the request.
API_ITEMS_SQL = """
CREATE OR REPLACE TEMP TABLE hl_events AS
SELECT line_no,
       CAST(NULL AS INTEGER) AS event_index,
       CAST(NULL AS VARCHAR) AS block_number_raw,
       CAST(NULL AS VARCHAR) AS block_time_raw,
       CAST(NULL AS VARCHAR) AS local_time_raw,
       FALSE AS from_node,
       [owner, item] AS ev
FROM hl_items
"""

_ADDRESS = "0x[0-9a-fA-F]{40}"

# Integer and block fields are read by the same text rules on both paths (general and plain).
_INTEGER_FIELDS = """CASE WHEN regexp_full_match(f.tid, '[0-9]{1,20}') THEN TRY_CAST(f.tid AS UBIGINT) END AS tid_u,
           CASE WHEN regexp_full_match(f.oid, '[0-9]{1,20}') THEN TRY_CAST(f.oid AS UBIGINT) END AS oid_u,
           CASE WHEN regexp_full_match(f.time, '[0-9]{1,15}') THEN TRY_CAST(f.time AS BIGINT) END AS time_i,
           CASE WHEN regexp_full_match(f.twapId, '-?[0-9]{1,19}') THEN TRY_CAST(f.twapId AS BIGINT) END AS twap_i"""


def _block_fields(number: str, block_time: str, local_time: str) -> str:
    return (
        f"TRY_CAST({number} AS BIGINT) AS block_number_i, TRY_CAST({block_time} AS TIMESTAMP_NS) AS block_time_ts, "
        f"TRY_CAST({local_time} AS TIMESTAMP_NS) AS local_time_ts"
    )

# Stage B: events -> validated, typed fill rows; `reason` is NULL for good rows. The JSON work is
# materialized once, so the validation below reads plain columns.
FILL_ROWS_SQL = f"""
CREATE OR REPLACE TEMP TABLE hl_fill_rows AS
WITH typed AS MATERIALIZED (
    SELECT line_no, event_index, block_number_raw, block_time_raw, local_time_raw, from_node,
           ev[1] AS user_raw,
           CASE WHEN len(ev) = 2 AND starts_with(ev[2], '{{')
                THEN TRY(json_transform(ev[2], '{_FILL_STRUCT}')) END AS f
    FROM hl_events
), cast_ AS MATERIALIZED (
    SELECT *,
           f.liquidation AS l,
           {_dec('f.px')} AS px_d,
           {_dec('f.sz')} AS sz_d,
           {_dec('f.startPosition')} AS start_d,
           {_dec('f.closedPnl')} AS pnl_d,
           {_dec('f.fee')} AS fee_d,
           {_dec('f.builderFee')} AS builder_fee_d,
           {_dec('f.liquidation.markPx')} AS mark_d,
           {_INTEGER_FIELDS},
           {_block_fields('block_number_raw', 'block_time_raw', 'local_time_raw')}
    FROM typed
)
SELECT *,
    CASE
        WHEN f IS NULL THEN 'malformed event: expected [user address, fill object]'
        WHEN user_raw IS NULL OR NOT regexp_full_match(user_raw, '{_ADDRESS}') THEN 'invalid user address'
        WHEN f.coin IS NULL OR length(f.coin) = 0 THEN 'missing coin'
        WHEN length(f.coin) > 64 THEN 'coin name longer than 64 characters'
        WHEN f.tid IS NULL AND from_node THEN 'missing tid'
        WHEN f.tid IS NOT NULL AND tid_u IS NULL THEN 'non-integer tid'
        WHEN time_i IS NULL THEN 'missing or non-integer time'
        WHEN time_i < 1000000000000 OR time_i > 9999999999999 THEN 'time is not epoch milliseconds'
        WHEN f.px IS NULL THEN 'missing px'
        WHEN px_d IS NULL THEN 'non-numeric px'
        WHEN px_d <= 0 THEN 'px is not positive'
        WHEN f.sz IS NULL THEN 'missing sz'
        WHEN sz_d IS NULL THEN 'non-numeric sz'
        WHEN sz_d <= 0 THEN 'sz is not positive'
        WHEN f.side IS NULL OR f.side NOT IN ('A', 'B') THEN 'unknown side value'
        WHEN f.dir IS NULL THEN 'missing dir'
        WHEN f.dir NOT IN ({_sql_list(HYPERLIQUID_DIRS)}) THEN 'unknown dir value'
        WHEN f.startPosition IS NOT NULL AND start_d IS NULL THEN 'non-numeric startPosition'
        WHEN f.closedPnl IS NOT NULL AND pnl_d IS NULL THEN 'non-numeric closedPnl'
        WHEN f.fee IS NOT NULL AND fee_d IS NULL THEN 'non-numeric fee'
        WHEN f.oid IS NOT NULL AND oid_u IS NULL THEN 'non-integer oid'
        WHEN l IS NOT NULL AND (l.method IS NULL OR l.method NOT IN ({_sql_list(LIQUIDATION_METHODS)}))
            THEN 'liquidation is not an object with a known method'
        WHEN l IS NOT NULL AND l.markPx IS NOT NULL AND mark_d IS NULL THEN 'non-numeric liquidation markPx'
        WHEN l IS NOT NULL AND l.liquidatedUser IS NOT NULL
             AND NOT regexp_full_match(l.liquidatedUser, '{_ADDRESS}') THEN 'invalid liquidatedUser address'
        WHEN block_number_raw IS NOT NULL AND block_number_i IS NULL THEN 'non-integer block_number'
        WHEN block_time_raw IS NOT NULL AND block_time_ts IS NULL THEN 'unparsable block_time'
        ELSE NULL
    END AS reason
FROM cast_
"""

_FILL_COLUMNS = f"""
    '{VENUE}' AS venue,
    CAST(epoch_ms(time_i) AS DATE) AS date,
    f.coin AS coin,
    lower(user_raw) AS "user",
    epoch_ms(time_i) AS time,
    time_i AS time_ms,
    block_number_i AS block_number,
    block_time_ts AS block_time,
    local_time_ts AS local_time,
    event_index,
    tid_u AS tid,
    coalesce(CAST(tid_u AS VARCHAR), 'legacy:' || md5(concat_ws('|', f.hash, f.oid, f.time, f.px, f.sz, f.startPosition))) AS fill_id,
    oid_u AS oid,
    f.hash AS hash,
    f.side AS side,
    px_d AS px,
    sz_d AS sz,
    start_d AS start_position,
    f.dir AS dir,
    pnl_d AS closed_pnl,
    fee_d AS fee,
    f.feeToken AS fee_token,
    builder_fee_d AS builder_fee,
    f.crossed = 'true' AS crossed,
    f.cloid AS cloid,
    twap_i AS twap_id,
    (l IS NOT NULL OR starts_with(f.dir, 'Liquidated')) AS is_liquidation,
    (lower(l.liquidatedUser) = lower(user_raw) OR starts_with(f.dir, 'Liquidated')) IS TRUE AS is_liquidated_leg,
    lower(l.liquidatedUser) AS liquidated_user,
    mark_d AS liquidation_mark_px,
    l.method AS liquidation_method,
    f.dir = 'Auto-Deleveraging' AS is_adl,
    ? AS source,
    ? AS source_key,
    line_no"""

FILLS_SELECT_SQL = f"SELECT {_FILL_COLUMNS} FROM hl_fill_rows WHERE reason IS NULL"

QUARANTINE_FILLS_SQL = """
SELECT r.line_no, r.event_index, r.reason, left('[' || array_to_string(e.ev, ', ') || ']', {limit}) AS raw
FROM hl_fill_rows r JOIN hl_events e ON r.line_no = e.line_no AND r.event_index IS NOT DISTINCT FROM e.event_index
WHERE r.reason IS NOT NULL
ORDER BY r.line_no, r.event_index
""".format(limit=RAW_TEXT_LIMIT)


# Fast path for node lines: the same parse in one streaming query, with a yes/no check instead of a reason
# per row. A row passes only in its plain form (every check of FILL_ROWS_SQL passes and every decimal is a
# plain decimal string), for which the values below equal the general path's; a batch with any other row
# goes through the general path, which works out the reasons.
_PLAIN_DECIMAL = r"-?[0-9]{1,28}(\.[0-9]{1,10})?"
_DECIMAL_FIELDS = {
    "px_d": "f.px", "sz_d": "f.sz", "start_d": "f.startPosition", "pnl_d": "f.closedPnl", "fee_d": "f.fee",
    "builder_fee_d": "f.builderFee", "mark_d": "f.liquidation.markPx",
}


def _plain(expr: str) -> str:
    return f"regexp_full_match({expr}, '{_PLAIN_DECIMAL}')"


def _plain_or_null(expr: str) -> str:
    return f"({expr} IS NULL OR {_plain(expr)})"


def _positive(expr: str) -> str:
    # a plain decimal string is > 0 exactly when its double is (no plain value rounds to zero)
    return f"({_plain(expr)} AND TRY_CAST({expr} AS DOUBLE) > 0)"


PLAIN_NODE_FILLS_SQL = f"""
WITH blocks AS (
    SELECT line_no, TRY(json_transform(line, '{_BLOCK_STRUCT}')) AS b FROM hl_lines
), events AS (
    -- a line that is not a block with an events list yields one NULL event, which fails the check
    SELECT line_no, block_number_i, block_time_ts, local_time_ts,
           b.block_number AS block_number_raw, b.block_time AS block_time_raw,
           CAST(generate_subscripts(coalesce(b.events, [NULL]), 1) AS INTEGER) AS event_index,
           unnest(coalesce(b.events, [NULL])) AS ev
    FROM (SELECT *, {_block_fields('b.block_number', 'b.block_time', 'b.local_time')} FROM blocks)
), fills AS (
    SELECT * EXCLUDE (ev), ev[1] AS user_raw,
           CASE WHEN len(ev) = 2 AND starts_with(ev[2], '{{') THEN TRY(json_transform(ev[2], '{_FILL_STRUCT}')) END AS f
    FROM events
), typed AS (
    SELECT *, f.liquidation AS l, {_INTEGER_FIELDS},
           {", ".join(f"{expr} AS {name}" for name, expr in _DECIMAL_FIELDS.items())}
    FROM fills
)
SELECT * EXCLUDE (venue, source, source_key) FROM (SELECT {_FILL_COLUMNS},
    coalesce(
        f IS NOT NULL AND regexp_full_match(user_raw, '{_ADDRESS}') AND length(f.coin) BETWEEN 1 AND 64
        AND tid_u IS NOT NULL AND time_i BETWEEN 1000000000000 AND 9999999999999
        AND {_positive('f.px')} AND {_positive('f.sz')} AND f.side IN ('A', 'B')
        AND f.dir IN ({_sql_list(HYPERLIQUID_DIRS)})
        AND {_plain_or_null('f.startPosition')} AND {_plain_or_null('f.closedPnl')} AND {_plain_or_null('f.fee')}
        AND {_plain_or_null('f.builderFee')} AND (f.oid IS NULL OR oid_u IS NOT NULL)
        AND (f.twapId IS NULL OR twap_i IS NOT NULL)
        AND (l IS NULL OR (l.method IN ({_sql_list(LIQUIDATION_METHODS)}) AND {_plain_or_null('l.markPx')}
             AND (l.liquidatedUser IS NULL OR regexp_full_match(l.liquidatedUser, '{_ADDRESS}'))))
        AND (block_number_raw IS NULL OR block_number_i IS NOT NULL)
        AND (block_time_raw IS NULL OR block_time_ts IS NOT NULL),
        false) AS plain
FROM typed)
"""

_OUTPUT = FILLS.arrow_schema().append(pa.field("line_no", pa.int64()))
_NO_REJECTS = pa.table(
    {
        "line_no": pa.array([], pa.int64()),
        "event_index": pa.array([], pa.int32()),
        "reason": pa.array([], pa.string()),
        "raw": pa.array([], pa.string()),
    }
)


@dataclass
class FillBatch:
    """Normalized fills of one batch plus its rejects (``line_no, event_index, reason, raw``)."""

    fills: pa.Table
    rejects: pa.Table
    records_read: int


def normalize_node_lines(
    con: duckdb.DuckDBPyConnection, lines: pa.Table, *, source: str, source_key: str
) -> FillBatch:
    """Normalize a batch of ``node_fills_by_block`` lines (Arrow table ``line_no: int64, line: string``).

    Returned fills are in the ``fills`` schema plus a ``line_no`` column (input line, for ordering and
    de-duplication). A batch whose rows are all plain takes a fast path; any other takes the general one.
    """
    plain = _plain_node_fills(con, lines, source=source, source_key=source_key)
    if plain is not None:
        return FillBatch(fills=plain, rejects=_NO_REJECTS, records_read=plain.num_rows)
    con.register("hl_lines", lines)
    try:
        con.execute(NODE_BLOCKS_SQL)
    finally:
        con.unregister("hl_lines")
    bad_lines = con.execute(NODE_BAD_LINES_SQL).fetch_arrow_table()
    con.execute(NODE_EVENTS_SQL)
    con.execute("DROP TABLE hl_blocks")
    return _node_events_to_fills(con, bad_lines, source=source, source_key=source_key)


def _plain_node_fills(
    con: duckdb.DuckDBPyConnection, lines: pa.Table, *, source: str, source_key: str
) -> pa.Table | None:
    """Fills of a batch whose rows are all plain, in ``fills`` schema plus ``line_no``; else None."""
    con.register("hl_lines", lines)
    try:
        rows = con.execute(PLAIN_NODE_FILLS_SQL, [source, source_key]).fetch_arrow_table()
    finally:
        con.unregister("hl_lines")
    if not pc.all(rows["plain"]).as_py():
        return None
    # constants are cheaper to build here than to fetch; plain decimal strings cast exactly (Arrow raises
    # rather than round), where DuckDB's VARCHAR -> DECIMAL(38,10) cast is slow
    constants = {"venue": VENUE, "source": source, "source_key": source_key}
    decimals = {c.name for c in FILLS.columns if c.type == DECIMAL}

    def column(name: str) -> pa.Array | pa.ChunkedArray:
        if name in constants:
            return pa.repeat(pa.scalar(constants[name], pa.string()), rows.num_rows)
        return pc.cast(rows[name], pa.decimal128(38, 10)) if name in decimals else rows[name]

    return pa.Table.from_arrays([column(n) for n in _OUTPUT.names], schema=_OUTPUT)


def normalize_api_fills(
    con: duckdb.DuckDBPyConnection,
    owners: list[str],
    items: list[str],
    *,
    source: str,
    source_key: str,
    first_line: int = 1,
) -> FillBatch:
    """Normalize ``userFills``/``userFillsByTime`` items (JSON text of one fill each; ``owners[i]`` owns
    ``items[i]``), all users of a pull in one set-wise pass."""
    if len(owners) != len(items):
        raise ValueError("owners and items must have the same length")
    table = pa.table(
        {
            "line_no": pa.array(range(first_line, first_line + len(items)), pa.int64()),
            "owner": pa.array(owners, pa.string()),
            "item": pa.array(items, pa.string()),
        }
    )
    con.register("hl_items", table)
    try:
        con.execute(API_ITEMS_SQL)
    finally:
        con.unregister("hl_items")
    return _events_to_fills(con, _NO_REJECTS, source=source, source_key=source_key)


#: Lines longer than this are parsed in Python and normalized in chunks of events: DuckDB's JSON
#: transform wants about four times a line's size in one allocation (a 124 MB block of 261k fills did not
#: fit the ingest's 512 MB budget). Memory then grows with the largest block, not with the file.
LARGE_LINE_BYTES = 16 << 20
LARGE_BLOCK_CHUNK = 50_000


def split_large_lines(lines: pa.Table) -> tuple[pa.Table, list[tuple[int, str]]]:
    """(the batch without its oversized lines, those lines as (line_no, text))."""
    large = pc.greater(pc.binary_length(lines["line"]), LARGE_LINE_BYTES)
    if not pc.any(large).as_py():
        return lines, []
    big = lines.filter(large)
    return lines.filter(pc.invert(large)), list(zip(big["line_no"].to_pylist(), big["line"].to_pylist()))


def _json_text(value: Any) -> str | None:
    """A JSON value as DuckDB's transform to VARCHAR gives it: strings as they are, the rest as JSON."""
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def normalize_large_block(
    con: duckdb.DuckDBPyConnection, line_no: int, line: str, *, source: str, source_key: str
) -> Iterator[FillBatch]:
    """Normalize one oversized block line in chunks of events, with the same rules, reasons and
    ``event_index`` (1-based) as :func:`normalize_node_lines`."""
    try:
        block = orjson.loads(line)
    except orjson.JSONDecodeError:
        block = None
    events = block.get("events") if isinstance(block, dict) else None
    if not isinstance(events, list):
        con.register("hl_lines", pa.table({"line_no": [line_no], "line": [line]}))
        try:
            bad = con.execute(f"SELECT {_BAD_LINE_COLUMNS} FROM hl_lines").fetch_arrow_table()
        finally:
            con.unregister("hl_lines")
        yield FillBatch(fills=_OUTPUT.empty_table(), rejects=bad.cast(_NO_REJECTS.schema), records_read=1)
        return
    number, block_time, local_time = (_json_text(block.get(k)) for k in ("block_number", "block_time", "local_time"))
    del block, line
    start = 0
    while events:
        chunk = events[:LARGE_BLOCK_CHUNK]
        del events[:LARGE_BLOCK_CHUNK]  # parsed events are freed as they are normalized
        n = len(chunk)
        table = pa.table({
            "line_no": pa.repeat(pa.scalar(line_no, pa.int64()), n),
            "event_index": pa.array(range(start + 1, start + n + 1), pa.int32()),
            "block_number_raw": pa.repeat(pa.scalar(number, pa.string()), n),
            "block_time_raw": pa.repeat(pa.scalar(block_time, pa.string()), n),
            "local_time_raw": pa.repeat(pa.scalar(local_time, pa.string()), n),
            "from_node": pa.repeat(pa.scalar(True), n),
            # an item that is not a list is a NULL event there too (then quarantined as malformed)
            "ev": pa.array([[_json_text(x) for x in e] if isinstance(e, list) else None for e in chunk],
                           pa.list_(pa.string())),
        })
        con.register("hl_events_chunk", table)
        try:
            con.execute("CREATE OR REPLACE TEMP TABLE hl_events AS SELECT * FROM hl_events_chunk")
        finally:
            con.unregister("hl_events_chunk")
        del chunk, table
        start += n
        yield _node_events_to_fills(con, _NO_REJECTS, source=source, source_key=source_key)


def _node_events_to_fills(
    con: duckdb.DuckDBPyConnection, bad_lines: pa.Table, *, source: str, source_key: str
) -> FillBatch:
    """:func:`_events_to_fills` with the node output layout (``fills`` schema plus ``line_no``), as the fast path's."""
    batch = _events_to_fills(con, bad_lines, source=source, source_key=source_key)
    batch.fills = batch.fills.select(_OUTPUT.names).cast(_OUTPUT)
    return batch


def _events_to_fills(
    con: duckdb.DuckDBPyConnection, bad_lines: pa.Table, *, source: str, source_key: str
) -> FillBatch:
    con.execute(FILL_ROWS_SQL)
    fills = con.execute(FILLS_SELECT_SQL, [source, source_key]).fetch_arrow_table()
    rejects = con.execute(QUARANTINE_FILLS_SQL).fetch_arrow_table()
    events = con.execute("SELECT count(*) FROM hl_fill_rows").fetchone()[0]
    con.execute("DROP TABLE IF EXISTS hl_fill_rows; DROP TABLE IF EXISTS hl_events")
    rejects = pa.concat_tables([bad_lines.cast(rejects.schema), rejects])
    return FillBatch(fills=fills, rejects=rejects, records_read=int(events) + bad_lines.num_rows)


# --- snapshots and asset contexts (small; exact Decimal parsing in Python) -------------------------


class RecordError(ValueError):
    """A record that cannot be normalized; the message is the quarantine reason."""


_SCALE = Decimal(1).scaleb(-10)


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


def ms(value: Any, field: str = "time") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not (10**12 <= value < 10**13):
        raise RecordError(f"{field} is not epoch milliseconds")
    return value


def address(value: Any, field: str = "user") -> str:
    if not isinstance(value, str) or len(value) != 42 or not value.startswith("0x"):
        raise RecordError(f"invalid {field} address")
    try:
        int(value[2:], 16)
    except ValueError:
        raise RecordError(f"invalid {field} address") from None
    return value.lower()


def coin_name(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > 64:
        raise RecordError("missing or invalid coin")
    return value


def _small_int(value: Any, field: str) -> int | None:
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


def snapshot_rows(line: WireSnapshotLine | Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One snapshot line -> (account row, position rows). Raises RecordError with the reason."""
    if not isinstance(line, dict):
        raise RecordError("snapshot line is not a JSON object")
    time_ms = ms(line.get("time"))
    user = address(line.get("user"))
    state = line.get("state")
    if not isinstance(state, dict):
        raise RecordError("snapshot state is not an object")
    summary = state.get("marginSummary")
    cross = state.get("crossMarginSummary") or {}
    if not isinstance(summary, dict) or not isinstance(cross, dict):
        raise RecordError("marginSummary is not an object")
    positions = state.get("assetPositions")
    if not isinstance(positions, list):
        raise RecordError("assetPositions is not a list")
    rows: list[dict[str, Any]] = []
    for item in positions:
        pos = item.get("position") if isinstance(item, dict) else None
        if not isinstance(pos, dict):
            raise RecordError("assetPositions item has no position object")
        lev = pos.get("leverage")
        if not isinstance(lev, dict) or lev.get("type") not in ("cross", "isolated"):
            raise RecordError("unknown leverage type")
        funding = pos.get("cumFunding") if isinstance(pos.get("cumFunding"), dict) else {}
        rows.append(
            {
                "coin": coin_name(pos.get("coin")),
                "szi": dec(pos.get("szi"), "szi"),
                "entry_px": dec(pos.get("entryPx"), "entryPx", required=False),
                "position_value": dec(pos.get("positionValue"), "positionValue", required=False),
                "unrealized_pnl": dec(pos.get("unrealizedPnl"), "unrealizedPnl", required=False),
                "return_on_equity": dec(pos.get("returnOnEquity"), "returnOnEquity", required=False),
                "liquidation_px": dec(pos.get("liquidationPx"), "liquidationPx", required=False),
                "margin_used": dec(pos.get("marginUsed"), "marginUsed", required=False),
                "leverage_type": lev["type"],
                "leverage": _small_int(lev.get("value"), "leverage"),
                "isolated_raw_usd": dec(lev.get("rawUsd"), "rawUsd", required=False),
                "max_leverage": _small_int(pos.get("maxLeverage"), "maxLeverage"),
                "cum_funding_all_time": dec(funding.get("allTime"), "cumFunding.allTime", required=False),
                "cum_funding_since_open": dec(funding.get("sinceOpen"), "cumFunding.sinceOpen", required=False),
            }
        )
    account = {
        "account_value": dec(summary.get("accountValue"), "accountValue"),
        "total_ntl_pos": dec(summary.get("totalNtlPos"), "totalNtlPos", required=False),
        "total_raw_usd": dec(summary.get("totalRawUsd"), "totalRawUsd", required=False),
        "total_margin_used": dec(summary.get("totalMarginUsed"), "totalMarginUsed", required=False),
        "cross_account_value": dec(cross.get("accountValue"), "crossMarginSummary.accountValue", required=False),
        "cross_maintenance_margin_used": dec(
            state.get("crossMaintenanceMarginUsed"), "crossMaintenanceMarginUsed", required=False
        ),
        "withdrawable": dec(state.get("withdrawable"), "withdrawable", required=False),
        "positions": len(rows),
    }
    common = {"user": user, "time_ms": time_ms}
    return {**common, **account}, [{**common, **r} for r in rows]


def asset_ctx_rows(line: WireAssetCtxLine | Any) -> list[dict[str, Any]]:
    """One asset-context line -> one row per coin. Raises RecordError with the reason."""
    if not isinstance(line, dict):
        raise RecordError("asset-context line is not a JSON object")
    return meta_and_asset_ctxs_rows(line.get("ctxs"), ms(line.get("time")))


def meta_and_asset_ctxs_rows(response: Any, time_ms: int) -> list[dict[str, Any]]:
    """A ``metaAndAssetCtxs`` response (``[meta, ctxs]``) observed at ``time_ms`` -> rows per coin."""
    if not isinstance(response, list) or len(response) != 2:
        raise RecordError("metaAndAssetCtxs is not a [meta, ctxs] pair")
    meta, ctxs = response
    universe = meta.get("universe") if isinstance(meta, dict) else None
    if not isinstance(universe, list) or not isinstance(ctxs, list):
        raise RecordError("meta.universe or ctxs is not a list")
    if len(universe) != len(ctxs):
        raise RecordError(f"universe has {len(universe)} coins but ctxs has {len(ctxs)}")
    rows = []
    for spec, ctx in zip(universe, ctxs):
        if not isinstance(spec, dict) or not isinstance(ctx, dict):
            raise RecordError("universe or ctx item is not an object")
        impact = ctx.get("impactPxs") if isinstance(ctx.get("impactPxs"), list) else [None, None]
        rows.append(
            {
                "coin": coin_name(spec.get("name")),
                "time_ms": time_ms,
                "mark_px": dec(ctx.get("markPx"), "markPx"),
                "oracle_px": dec(ctx.get("oraclePx"), "oraclePx", required=False),
                "mid_px": dec(ctx.get("midPx"), "midPx", required=False),
                "funding": dec(ctx.get("funding"), "funding", required=False),
                "premium": dec(ctx.get("premium"), "premium", required=False),
                "open_interest": dec(ctx.get("openInterest"), "openInterest", required=False),
                "prev_day_px": dec(ctx.get("prevDayPx"), "prevDayPx", required=False),
                "day_ntl_vlm": dec(ctx.get("dayNtlVlm"), "dayNtlVlm", required=False),
                "day_base_vlm": dec(ctx.get("dayBaseVlm"), "dayBaseVlm", required=False),
                "impact_bid_px": dec(impact[0] if len(impact) > 0 else None, "impactPxs", required=False),
                "impact_ask_px": dec(impact[1] if len(impact) > 1 else None, "impactPxs", required=False),
                "sz_decimals": _small_int(spec.get("szDecimals"), "szDecimals"),
                "max_leverage": _small_int(spec.get("maxLeverage"), "maxLeverage"),
                "only_isolated": bool(spec.get("onlyIsolated", False)),
            }
        )
    return rows


def ledger_rows(user: str, item: Any) -> dict[str, Any]:
    """One ``userNonFundingLedgerUpdates`` item ``{time, hash, delta: {type, ...}}`` -> a ledger row
    (the same columns as a node LedgerUpdate row; block fields NULL)."""
    from .misc_events import ledger_event_id, ledger_fields

    if not isinstance(item, dict):
        raise RecordError("ledger item is not an object")
    delta = item.get("delta")
    if not isinstance(delta, dict) or not isinstance(delta.get("type"), str) or not delta["type"]:
        raise RecordError("ledger delta has no type")
    hash_ = item.get("hash")
    fields = ledger_fields(delta)
    row = {
        **fields,
        "user": address(user),
        "time_ms": ms(item.get("time")),
        "hash": hash_ if isinstance(hash_, str) else None,
        "type": delta["type"][:64],
    }
    row["event_id"] = ledger_event_id(row)  # the same id the node's copy of this event gets
    return row


def rows_to_arrow(table: Table, rows: list[dict[str, Any]], **constant: Any) -> pa.Table:
    """Build an Arrow table in ``table``'s schema from row dicts; ``time``/``date`` derive from ``time_ms``."""
    import datetime as dt

    schema = table.arrow_schema()
    columns: dict[str, list[Any]] = {name: [] for name in schema.names}
    for row in rows:
        full = {**constant, **row}
        if "time_ms" in full:
            t = dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=full["time_ms"])
            full.setdefault("time", t)
            full.setdefault("date", t.date())
        for name in schema.names:
            columns[name].append(full.get(name))
    return pa.table({name: pa.array(columns[name], schema.field(name).type) for name in schema.names}, schema=schema)


__all__ = [
    "ACCOUNT_SNAPSHOTS",
    "ASSET_CTXS",
    "FILLS",
    "POSITION_SNAPSHOTS",
    "FillBatch",
    "RecordError",
    "asset_ctx_rows",
    "ledger_rows",
    "meta_and_asset_ctxs_rows",
    "normalize_api_fills",
    "normalize_node_lines",
    "rows_to_arrow",
    "snapshot_rows",
]
