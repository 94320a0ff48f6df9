"""One dedup rule per table: a key repeated across inputs reads as the same row through `liqf sql` (the
catalog views) and through the analysis' reader (`Lake.read` behind `load_inputs`).

Two inputs write the same snapshot, asset-context and ledger key with different values. The input ingested
last has the *lower* source key, so the rule (latest ingest wins) differs from both old answers (the
catalog's highest source_key, the analysis' lowest source_key only when it was ingested first).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from forensics.formats.hyperliquid.ledger import ledger_event_id
from forensics.tables import ALL_TABLES, ASSET_CTXS, INGEST_RUNS, LEDGER_EVENTS, POSITION_SNAPSHOTS, Table
from pipelines import catalog
from pipelines.analysis.inputs import load_inputs
from pipelines.lake import Lake

USER = "0x00000000000000000000000000000000000000a1"
T_MS = 1_760_130_000_000
DAY = dt.date(2025, 10, 10)
OLD_KEY, NEW_KEY = "ffffffffffffffffffffffff", "000000000000000000000001"  # the later input sorts first


def _row(table: Table, key: str, **values: object) -> dict[str, object]:
    base: dict[str, object] = {c.name: None for c in table.columns}
    base.update(
        venue="hyperliquid",
        date=DAY,
        time=dt.datetime(2025, 10, 10, 21),
        time_ms=T_MS,
        source=f"test:{table.name}",
        source_key=key,
    )
    base.update(values)
    return base


def _write(lake: Lake, table: Table, key: str, **values: object) -> None:
    data = pa.Table.from_pylist([_row(table, key, **values)], schema=table.arrow_schema())
    lake.replace_source(table, "hyperliquid", key, data)


def _ingested(lake: Lake, key: str, at: dt.datetime) -> None:
    row = {
        "venue": "hyperliquid",
        "source": "test",
        "source_key": key,
        "source_name": key,
        "sha256": key,
        "bytes": 1,
        "records_read": 3,
        "rows_written": 3,
        "rows_quarantined": 0,
        "tables_json": "{}",
        "ingested_at": at,
        "code_version": "test",
    }
    lake.replace_source(INGEST_RUNS, "hyperliquid", key, pa.Table.from_pylist([row], schema=INGEST_RUNS.arrow_schema()))


def _input(lake: Lake, key: str, value: str, at: dt.datetime) -> None:
    v = Decimal(value)
    _write(lake, POSITION_SNAPSHOTS, key, user=USER, coin="BTC", szi=v, leverage_type="cross")
    _write(lake, ASSET_CTXS, key, coin="BTC", mark_px=v)
    ledger = dict(user=USER, hash="0xabc", type="deposit", time_ms=T_MS, delta_json='{"type":"deposit"}')
    _write(
        lake,
        LEDGER_EVENTS,
        key,
        **ledger,
        usdc=v,
        block_number=7,
        event_index=1,
        category="perp_cash",
        event_id=ledger_event_id(ledger),  # one event, so one id: the rule picks between the two inputs
    )
    _ingested(lake, key, at)


def _sql(tmp_path: Path, query: str) -> list[dict[str, object]]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines.cli",
            "--lake",
            str(tmp_path / "lake"),
            "--db",
            str(tmp_path / "c.duckdb"),
            "sql",
            query,
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


CHECKS = (  # (table, value column, key of load_inputs)
    ("position_snapshots", "szi", "positions"),
    ("asset_ctxs", "mark_px", "asset_ctxs"),
    ("ledger_events", "usdc", "ledger"),
)


@pytest.mark.parametrize("newer_first", [False, True], ids=["later-input-sorts-first", "later-input-sorts-last"])
def test_repeated_key_reads_the_same_row_through_sql_and_the_analysis(tmp_path, newer_first):
    lake = Lake(tmp_path / "lake")
    old, new = (NEW_KEY, OLD_KEY) if newer_first else (OLD_KEY, NEW_KEY)
    t0 = dt.datetime(2026, 1, 1, 12)
    _input(lake, old, "1.5", t0)
    _input(lake, new, "2.5", t0 + dt.timedelta(minutes=5))  # ingested later: the newest view of the venue
    catalog.refresh(lake, tmp_path / "c.duckdb")
    query = " union all ".join(
        f"select '{table}' as t, {column}::VARCHAR as v from {table}" for table, column, _ in CHECKS
    )
    via_sql: dict[str, list[Decimal]] = {}
    for row in _sql(tmp_path, query):
        via_sql.setdefault(str(row["t"]), []).append(Decimal(str(row["v"])))
    inputs = load_inputs(lake, "hyperliquid")
    for table, column, name in CHECKS:
        rule = ALL_TABLES[table].dedup
        assert rule is not None and rule.needs_ingest_time
        via_analysis = getattr(inputs, name)
        assert via_analysis is not None and via_analysis.height == 1, table
        assert via_sql[table] == [Decimal(str(via_analysis[column][0]))] == [Decimal("2.5")], table
        # the rows as written still hold both (the rule chooses at read time, never deletes)
        both = lake.read(table, "hyperliquid", dedup=False)
        assert both is not None and both.height == 2


def test_fills_prefer_node_files_over_a_later_api_pull(tmp_path):
    from forensics.tables import FILLS

    lake = Lake(tmp_path / "lake")
    common = dict(
        coin="BTC",
        user=USER,
        fill_id="42",
        side="B",
        px=Decimal(100),
        dir="Open Long",
        is_liquidation=False,
        is_liquidated_leg=False,
        is_adl=False,
    )
    _write(lake, FILLS, OLD_KEY, source="node_fills_by_block", sz=Decimal("1"), block_number=9, **common)
    _ingested(lake, OLD_KEY, dt.datetime(2026, 1, 1))
    _write(lake, FILLS, NEW_KEY, source="api:userFillsByTime", sz=Decimal("3"), **common)
    _ingested(lake, NEW_KEY, dt.datetime(2026, 1, 2))
    catalog.refresh(lake, tmp_path / "c.duckdb")
    via_sql = _sql(tmp_path, "select sz, block_number from fills")
    via_read = lake.read(FILLS, "hyperliquid")
    assert via_read is not None and len(via_sql) == via_read.height == 1
    assert via_sql[0]["block_number"] == via_read["block_number"][0] == 9


def test_every_keyed_table_states_its_rule():
    for name, table in ALL_TABLES.items():
        if table.key:
            assert table.dedup is not None, f"{name} states no dedup rule"
            assert table.dedup.why, name
            assert all(c in table.column_names for c in table.key), name
