"""The same ledger event from the info API and from a node misc file is stored once (issue 21, item 8).

A LedgerUpdate for two accounts in a misc_events_by_block file and the info API's
userNonFundingLedgerUpdates items for the same accounts (the API's shape: each account sees the delta,
time in ms, no block fields) get the same ``event_id``; the catalog view and the analysis reader keep one
row per event, the node's copy (it knows the block), and events that differ in any part stay apart.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from forensics.formats.hyperliquid import fills as hl
from forensics.formats.hyperliquid.misc_events import MiscBatch, normalize_misc_line
from forensics.schema import LEDGER_EVENTS
from pipelines import catalog
from pipelines.analysis.reconstruct import load_inputs
from pipelines.ingest.hyperliquid_misc import ingest_misc_events
from pipelines.lake import source_key

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


def test_node_and_api_copies_are_stored_once(lake, tmp_path: Path):
    path = tmp_path / "20251010" / "21"
    path.parent.mkdir()
    path.write_text(misc_line(7, [node_event(DELTAS[0], [A, B]), node_event(DELTAS[1], [A])]) + "\n")
    ingest_misc_events(lake, path)
    # the info-API pull of A's ledger (what pipelines.ingest.hyperliquid_api writes), plus one event only it has
    items = [api_item(DELTAS[0]), api_item(DELTAS[1]), api_item({"type": "withdraw", "usdc": "3.0", "fee": "1.0"})]
    key = source_key("api", "userNonFundingLedgerUpdates", "test")
    rows = [hl.ledger_rows(A, i) for i in items]
    lake.replace_source(LEDGER_EVENTS, "hyperliquid", key,
                        hl.rows_to_arrow(LEDGER_EVENTS, rows, venue="hyperliquid", source="api:userNonFundingLedgerUpdates",
                                         source_key=key))
    stored = duckdb.sql(f"select count(*) from read_parquet('{lake.glob('ledger_events')}')").fetchone()[0]
    assert stored == 3 + 3  # node: A, B, A; API: A x3
    catalog.refresh(lake, tmp_path / "c.duckdb")
    con = duckdb.connect(str(tmp_path / "c.duckdb"), read_only=True)
    seen = con.sql('select "user", type, block_number from ledger_events order by all').fetchall()
    assert seen == [(A, "deposit", 7), (A, "internalTransfer", 7), (A, "withdraw", None), (B, "internalTransfer", 7)]
    ledger = load_inputs(lake)["ledger"]
    assert ledger.height == 4 and ledger["event_id"].n_unique() == 4
