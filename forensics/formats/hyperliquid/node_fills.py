"""Hyperliquid fills (``node_fills_by_block`` lines and info-API fills) into the ``fills`` table.

This is the general path: set-wise in DuckDB over Arrow batches of raw JSON text, every check with its
reason. Node files' plain lines (nearly all) take the compiled fast path of :mod:`.node_scan` first.

Every record either becomes a row or a quarantine entry with a reason; callers reconcile
``records_read == rows + quarantined``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from forensics.formats.records import RAW_TEXT_LIMIT
from forensics.tables import DECIMAL, FILLS

from .constants import HYPERLIQUID_DIRS, LIQUIDATION_METHODS, VENUE

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

_BAD_LINE_COLUMNS = f"""line_no,
       CAST(NULL AS INTEGER) AS event_index,
       CASE WHEN NOT json_valid(line) THEN 'malformed JSON line'
            WHEN json_type(line::JSON) <> 'OBJECT' THEN 'block line is not a JSON object'
            WHEN json_type(line::JSON, '$.events') IS NULL THEN 'block has no events field'
            WHEN json_type(line::JSON, '$.events') <> 'ARRAY'
                THEN 'block events is not a list (got ' || json_type(line::JSON, '$.events') || ')'
            ELSE 'block events has an item that is not a list'
       END AS reason,
       left(line, {RAW_TEXT_LIMIT}) AS raw"""

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
           {_dec("f.px")} AS px_d,
           {_dec("f.sz")} AS sz_d,
           {_dec("f.startPosition")} AS start_d,
           {_dec("f.closedPnl")} AS pnl_d,
           {_dec("f.fee")} AS fee_d,
           {_dec("f.builderFee")} AS builder_fee_d,
           {_dec("f.liquidation.markPx")} AS mark_d,
           {_INTEGER_FIELDS},
           {_block_fields("block_number_raw", "block_time_raw", "local_time_raw")}
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
    coalesce(CAST(tid_u AS VARCHAR),
             'legacy:' || md5(concat_ws('|', f.hash, f.oid, f.time, f.px, f.sz, f.startPosition))) AS fill_id,
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

QUARANTINE_FILLS_SQL = f"""
SELECT r.line_no, r.event_index, r.reason, left('[' || array_to_string(e.ev, ', ') || ']', {RAW_TEXT_LIMIT}) AS raw
FROM hl_fill_rows r JOIN hl_events e ON r.line_no = e.line_no AND r.event_index IS NOT DISTINCT FROM e.event_index
WHERE r.reason IS NOT NULL
ORDER BY r.line_no, r.event_index
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


def normalize_node_lines(con: duckdb.DuckDBPyConnection, lines: pa.Table, *, source: str, source_key: str) -> FillBatch:
    """Normalize a batch of ``node_fills_by_block`` lines (Arrow table ``line_no: int64, line: string``) by the
    general path: every check with its reason. (The ingest's fast path, :mod:`.node_scan`, takes the plain
    lines first and leaves the rest to this.)

    Returned fills are in the ``fills`` schema plus a ``line_no`` column (input line, for ordering and
    de-duplication).
    """
    con.register("hl_lines", lines)
    try:
        con.execute(NODE_BLOCKS_SQL)
    finally:
        con.unregister("hl_lines")
    bad_lines = con.execute(NODE_BAD_LINES_SQL).fetch_arrow_table()
    con.execute(NODE_EVENTS_SQL)
    con.execute("DROP TABLE hl_blocks")
    return _node_events_to_fills(con, bad_lines, source=source, source_key=source_key)


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
        table = pa.table(
            {
                "line_no": pa.repeat(pa.scalar(line_no, pa.int64()), n),
                "event_index": pa.array(range(start + 1, start + n + 1), pa.int32()),
                "block_number_raw": pa.repeat(pa.scalar(number, pa.string()), n),
                "block_time_raw": pa.repeat(pa.scalar(block_time, pa.string()), n),
                "local_time_raw": pa.repeat(pa.scalar(local_time, pa.string()), n),
                "from_node": pa.repeat(pa.scalar(True), n),
                # an item that is not a list is a NULL event there too (then quarantined as malformed)
                "ev": pa.array(
                    [[_json_text(x) for x in e] if isinstance(e, list) else None for e in chunk], pa.list_(pa.string())
                ),
            }
        )
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


def _events_to_fills(con: duckdb.DuckDBPyConnection, bad_lines: pa.Table, *, source: str, source_key: str) -> FillBatch:
    con.execute(FILL_ROWS_SQL)
    fills = con.execute(FILLS_SELECT_SQL, [source, source_key]).fetch_arrow_table()
    rejects = con.execute(QUARANTINE_FILLS_SQL).fetch_arrow_table()
    counted = con.execute("SELECT count(*) FROM hl_fill_rows").fetchone()
    events = counted[0] if counted else 0
    con.execute("DROP TABLE IF EXISTS hl_fill_rows; DROP TABLE IF EXISTS hl_events")
    rejects = pa.concat_tables([bad_lines.cast(rejects.schema), rejects])
    return FillBatch(fills=fills, rejects=rejects, records_read=int(events) + bad_lines.num_rows)
