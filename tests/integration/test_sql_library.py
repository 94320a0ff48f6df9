"""Every named query in sql/queries runs, with bound parameters, on a simulated and analysed lake."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from forensics import simulate
from pipelines import catalog, sql_library
from pipelines.analysis import accounting, audit, reconstruct
from pipelines.ingest.hyperliquid import files
from pipelines.lake import Lake
from tests.conftest import REALDATA

QUERIES = sql_library.list_queries()


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    root = tmp_path_factory.mktemp("sqllib")
    scenario = root / "scenario"
    simulate.generate(scenario, scale="tiny", policy="hl_index", exempt=3, seed=3)
    lake = Lake(root / "lake")
    for path in files.expand_inputs([scenario / "node_fills_by_block"]):
        files.ingest_node_fills(lake, path)
    files.ingest_snapshot(lake, scenario / "snapshots" / "clearinghouse_state.jsonl")
    files.ingest_asset_ctxs(lake, scenario / "asset_ctxs" / "asset_ctxs.jsonl")
    result = audit.run(lake)
    reconstruct.run(lake)  # the whole pools, for the queries that read adl_pools
    accounting.run(lake)
    catalog.refresh(lake, root / "c.duckdb")
    return root, result


def test_every_query_is_documented():
    assert len(QUERIES) >= 10
    for q in QUERIES:
        assert q.description and q.grain, f"{q.name}: header needs what it answers and a 'Grain:' line"
        assert set(q.example) == set(q.params), f"{q.name}: '-- Example:' must bind every parameter"
        text = q.sql
        for p in q.params:
            assert f"${p}" in text


@pytest.mark.parametrize("query", QUERIES, ids=[q.name for q in QUERIES])
def test_query_runs_with_bound_parameters(analysed, query):
    root, result = analysed
    given = dict(query.example)
    for k, v in given.items():
        if v.startswith("@realdata/"):
            path = REALDATA / v.removeprefix("@realdata/")
            if not path.exists():
                pytest.skip(f"real data not available: ../shared/realdata/{v.removeprefix('@realdata/')}")
            given[k] = str(path)
    con = catalog.connect_read_only(root / "c.duckdb", [v for v in given.values() if Path(str(v)).is_file()])
    if "user" in given:  # an account deleveraged in step 0, so every per-account query has rows
        given["user"] = con.sql('select min("user") from adl_pools where step_id = 0 and selected').fetchone()[0]
    rows = con.execute(query.sql, sql_library.bind(query, given)).fetchall()
    if query.name in {
        "top_adl_accounts",
        "adl_notional_by_coin_wave",
        "adl_pool_of_step",
        "liquidation_to_adl_delay",
        "account_exemption_evidence",
        "account_fills_around_step",
        "accounting_hmadl_top_coins",
    }:
        assert rows, f"{query.name} returned nothing on a scenario with ADL"


def test_parameters_are_bound_not_interpolated(analysed):
    root, _ = analysed
    q = sql_library.get("top_adl_accounts")
    hostile = "hyperliquid' OR 1=1 --"
    con = catalog.connect_read_only(root / "c.duckdb")
    assert con.execute(q.sql, sql_library.bind(q, {"venue": hostile, "limit": "5"})).fetchall() == []


def test_cli_named_query(analysed):
    root, _ = analysed
    base = [sys.executable, "-m", "pipelines.cli", "--lake", str(root / "lake"), "--db", str(root / "c.duckdb"), "sql"]
    r = subprocess.run(
        base + ["--query", "top_adl_accounts", "--param", "venue=hyperliquid", "--param", "limit=2", "--format", "csv"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].startswith("user,adl_legs") and len(r.stdout.splitlines()) == 3
    r = subprocess.run(base + ["--query", "nope"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "no named query" in r.stderr
    r = subprocess.run(base + ["--list"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "top_adl_accounts" in r.stdout
