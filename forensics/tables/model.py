"""The table model: ``Column`` and ``Table``, and the conventions every lake table follows.

Conventions, for every table:

* Times are UTC. ``*_ms`` columns are epoch milliseconds (BIGINT); ``TIMESTAMP`` columns are naive
  UTC (DuckDB/Dagster partition slicing breaks on ``TIMESTAMPTZ``, dagster #30171).
* Money, prices and sizes are exact ``DECIMAL(38,10)`` (products such as px x sz stay in range) parsed from
  the venue's decimal strings; never floats in the lake. Analysis code casts to float where it needs speed.
* Sizes are in base-coin units and signed where the name says so (``start_position``, ``szi``).
* USD means the venue's quote collateral (USDC on Hyperliquid).
* Every normalized table is hive-partitioned by ``venue=`` and ``date=`` (UTC day of the row's
  event time); neither is ever taken from a free-text field of the data.

The same ``Table`` objects generate the Arrow schemas the writers enforce, the typed empty views the
catalog falls back to, and the column documentation (``liqf schema``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

DECIMAL = "DECIMAL(38,10)"

_ARROW_TYPES: dict[str, pa.DataType] = {
    "VARCHAR": pa.string(),
    "BIGINT": pa.int64(),
    "UBIGINT": pa.uint64(),
    "INTEGER": pa.int32(),
    "BOOLEAN": pa.bool_(),
    "DOUBLE": pa.float64(),
    "DATE": pa.date32(),
    "TIMESTAMP": pa.timestamp("us"),
    "TIMESTAMP_NS": pa.timestamp("ns"),
    DECIMAL: pa.decimal128(38, 10),
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    doc: str
    nullable: bool = True
    #: SQL over the table's other columns that gives this column's value in rows of parts written before the
    #: column existed (readers apply it; None: such rows read NULL)
    derive_sql: str | None = None

    @property
    def arrow_type(self) -> pa.DataType:
        return _ARROW_TYPES[self.type]


@dataclass(frozen=True)
class Dedup:
    """The one rule for a key that several rows share: keep the first row in ``order`` and say ``why``.

    ``order`` holds SQL ``ORDER BY`` terms over the table's columns and ``ingested_at`` (when the row's
    input was last ingested, from ``ingest_runs``). Every reader applies it: ``Lake.read`` (the analysis,
    the accounting, the stress test) and the catalog views (``liqf sql``), from the same generated SQL.
    An empty ``order`` means the key is unique by construction and nothing is chosen.
    """

    order: tuple[str, ...]
    why: str

    @property
    def needs_ingest_time(self) -> bool:
        return any("ingested_at" in term for term in self.order)


#: ties after the rule's own terms: the input ingested last wins, then the highest source_key (deterministic)
LATEST_INGEST = ("ingested_at DESC NULLS LAST", "source_key DESC")

#: a re-pulled or overlapping input carries the same record again: the newest view of the venue wins
REPULLED = Dedup(
    LATEST_INGEST,
    "the same record from several inputs (re-pulled or overlapping windows, one file under two names) is the "
    "same fact seen twice: the input ingested last wins (the newest view of the venue), then the highest "
    "source_key so the choice never depends on file order",
)

#: rows are written once per key (one input, or one analysis run per venue and window, replaces its own files)
UNIQUE = Dedup((), "unique by construction: one writer per key replaces its own files, so a key never repeats")


@dataclass(frozen=True)
class Table:
    name: str
    doc: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    # "normalized": written by ingest; "derived": a catalog view over normalized tables
    layer: str = "normalized"
    #: which row of a repeated key every reader keeps (None: the table has no key, e.g. quarantine)
    dedup: Dedup | None = None

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def arrow_schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.arrow_type, nullable=c.nullable) for c in self.columns])

    def empty_select_sql(self) -> str:
        """A typed, empty SELECT with this table's columns (catalog fallback when no file exists yet)."""
        cols = ", ".join(f"CAST(NULL AS {c.type}) AS {quote_ident(c.name)}" for c in self.columns)
        return f"SELECT {cols} WHERE false"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def rows_to_arrow(table: Table, rows: list[dict[str, Any]], **constant: Any) -> pa.Table:
    """Build an Arrow table in ``table``'s schema from row dicts; ``time``/``date`` derive from ``time_ms``."""
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


# column groups shared by the normalized tables
PARTITION = (
    Column("venue", "VARCHAR", "Venue id from the pipeline (e.g. 'hyperliquid'); hive partition key.", False),
    Column("date", "DATE", "UTC day of the row's event time; hive partition key.", False),
)
LINEAGE = (
    Column(
        "source", "VARCHAR", "Input kind: 'node_fills_by_block', 'api:userFills', 'api:userFillsByTime', ...", False
    ),
    Column("source_key", "VARCHAR", "Stable id of the input (file or API request) the row came from.", False),
)
