"""The same ledger event from the info API and from a node misc file is stored once (issue 21, item 8).

A LedgerUpdate for two accounts in a misc_events_by_block file and the info API's
userNonFundingLedgerUpdates items for the same accounts (the API's shape: each account sees the delta,
time in ms, no block fields) get the same ``event_id``; the catalog view and the analysis reader keep one
row per event, the node's copy (it knows the block) even when the API pull was ingested later, and events
that differ in any part stay apart. Parts written before the column existed get the same id from the readers.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.parquet as pq

from forensics.formats import hyperliquid as hl
from forensics.formats.hyperliquid.misc_events import MiscBatch, normalize_misc_line
from forensics.tables import LEDGER_EVENTS
from pipelines import catalog
from pipelines.analysis.reconstruct import load_inputs
from pipelines.ingest.hyperliquid.misc import ingest_misc_events
from pipelines.ingest.report import IngestReport, record_run
from pipelines.lake import Lake, source_key

A, B = "0x" + "a" * 40, "0x" + "b" * 40
HASH = "0x" + "3" * 64
NODE_TIME = "2025-10-10T21:00:01.500123456"  # the node's ns time; the API says 1760130001500 ms
DELTAS = [
    {"type": "internalTransfer", "usdc": "125.5", "user": A, "destination": B, "fee": "1.0"},
    {"type": "deposit", "usdc": "10.0"},
]


def misc_line(number: int, events: list) -> str:
    return json.dumps({"local_time": NODE_TIME, "block_time": NODE_TIME, "block_number": number, "events": events})


def node_event(delta: dict, users: list[str]) -> dict:
    return {"time": NODE_TIME, "hash": HASH, "inner": {"LedgerUpdate": {"users": users, "delta": delta}}}


def api_item(delta: dict, time_ms: int = 1760130001500) -> dict:
    return {"time": time_ms, "hash": HASH, "delta": delta}


def test_one_event_has_one_identity_in_both_sources():
    out = MiscBatch()
    normalize_misc_line(1, misc_line(7, [node_event(DELTAS[0], [A, B])]), out)
    node = {r["user"]: r["event_id"] for r in out.ledger}
    assert node[A] != node[B]  # one event, two accounts: two rows, each with its own identity
    assert hl.ledger_rows(A, api_item(DELTAS[0]))["event_id"] == node[A]
    assert hl.ledger_rows(B, api_item(DELTAS[0]))["event_id"] == node[B]
    # a different time, hash or delta is another event
    assert hl.ledger_rows(A, api_item(DELTAS[0], 1760130001501))["event_id"] != node[A]
    assert hl.ledger_rows(A, {**api_item(DELTAS[0]), "hash": "0x" + "4" * 64})["event_id"] != node[A]
    assert hl.ledger_rows(A, api_item({**DELTAS[0], "usdc": "125.6"}))["event_id"] != node[A]


def _api_pull(lake: Lake, items: list[dict], ingested_at: dt.datetime, user: str = A) -> None:
    """A's info-API ledger as pipelines.ingest.hyperliquid.api writes it: rows, then the input's ledger row."""
    key = source_key("api", "userNonFundingLedgerUpdates", "test", ingested_at.isoformat())
    rows = [hl.ledger_rows(user, i) for i in items]
    lineage = dict(venue="hyperliquid", source="api:userNonFundingLedgerUpdates", source_key=key)
    lake.replace_source(LEDGER_EVENTS, "hyperliquid", key, hl.rows_to_arrow(LEDGER_EVENTS, rows, **lineage))
    report = IngestReport("hyperliquid", lineage["source"], "test pull", key, records_read=len(rows))
    report.records_written = len(rows)
    record_run(lake, report, ingested_at)


def _through_sql_and_analysis(lake: Lake, tmp_path: Path) -> tuple[list[tuple], pl.DataFrame]:
    catalog.refresh(lake, tmp_path / "c.duckdb")
    con = duckdb.connect(str(tmp_path / "c.duckdb"), read_only=True)
    try:
        seen = con.sql('select "user", type, block_number, event_id from ledger_events order by all').fetchall()
    finally:
        con.close()
    ledger = load_inputs(lake).ledger
    assert ledger is not None
    return seen, ledger


def test_node_and_api_copies_are_stored_once(lake, tmp_path: Path):
    path = tmp_path / "20251010" / "21"
    path.parent.mkdir()
    path.write_text(misc_line(7, [node_event(DELTAS[0], [A, B]), node_event(DELTAS[1], [A])]) + "\n")
    ingest_misc_events(lake, path)
    # A's info-API pull, ingested after the node file (the latest ingest), plus one event only it has: the node
    # copy still wins (the rule: node files first, then the latest ingest), the API-only event is kept
    items = [api_item(DELTAS[0]), api_item(DELTAS[1]), api_item({"type": "withdraw", "usdc": "3.0", "fee": "1.0"})]
    _api_pull(lake, items, dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(hours=1))
    stored = duckdb.sql(f"select count(*) from read_parquet('{lake.glob('ledger_events')}')").fetchone()[0]
    assert stored == 3 + 3  # node: A, B, A; API: A x3
    seen, ledger = _through_sql_and_analysis(lake, tmp_path)
    assert [r[:3] for r in seen] == [
        (A, "deposit", 7),
        (A, "internalTransfer", 7),
        (A, "withdraw", None),
        (B, "internalTransfer", 7),
    ]
    assert ledger.height == 4 and ledger["event_id"].n_unique() == 4
    assert sorted(ledger["event_id"].to_list()) == sorted(r[3] for r in seen)  # the same rows both ways
    assert sorted(ledger.filter(pl.col("type") != "withdraw")["block_number"].to_list()) == [7, 7, 7]


def test_parts_written_before_event_id_get_the_same_identity(lake, tmp_path: Path):
    """A lake ingested before the column existed: readers compute the id (LEDGER_EVENT_ID_SQL) for its parts,
    equal to the one the normalizers give, so its rows and a new pull's copies of the same events are one row."""
    path = tmp_path / "20251010" / "21"
    path.parent.mkdir()
    path.write_text(misc_line(7, [node_event(DELTAS[0], [A, B]), node_event(DELTAS[1], [A])]) + "\n")
    ingest_misc_events(lake, path)
    expected = sorted(pl.read_parquet(lake.parts("ledger_events"))["event_id"].to_list())
    for part in lake.parts("ledger_events"):  # rewrite the node parts as an older version wrote them
        pq.write_table(pq.read_table(part).drop_columns(["event_id"]), part)
    assert all("event_id" not in pq.read_schema(p).names for p in lake.parts("ledger_events"))
    seen, ledger = _through_sql_and_analysis(lake, tmp_path)
    assert sorted(r[3] for r in seen) == sorted(ledger["event_id"].to_list()) == expected
    # a later API pull of the same events (new parts carry the id): still one row per event, the node's
    _api_pull(lake, [api_item(DELTAS[0]), api_item(DELTAS[1])], dt.datetime.now(dt.UTC).replace(tzinfo=None))
    seen, ledger = _through_sql_and_analysis(lake, tmp_path)
    assert len(seen) == ledger.height == 3 and {r[2] for r in seen} == {7}
    assert sorted(r[3] for r in seen) == sorted(ledger["event_id"].to_list()) == expected
