"""Catalog views and the liqf CLI, run as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb

from pipelines import catalog
from pipelines.ingest.hyperliquid.files import ingest_node_fills
from tests.unit.pipelines.test_ingest_node_fills import USER_A, USER_B, block, fill, write_lines

VAULT = "0x2e3d94f0562703b25c83308a05046ddaf9a8dd14"


def liqf(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines.cli",
            "--lake",
            str(tmp_path / "lake"),
            "--db",
            str(tmp_path / "c.duckdb"),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _cascade_file(tmp_path: Path) -> Path:
    liq = {"liquidatedUser": USER_A, "markPx": "99", "method": "market"}
    adl = {"liquidatedUser": VAULT, "markPx": "98", "method": "backstop"}
    return write_lines(
        tmp_path / "c.lz4",
        [
            block(
                0,
                [
                    fill(USER_A, 1, side="A", dir="Close Long", startPosition="0.1", liquidation=liq),
                    fill(USER_B, 1, side="B", liquidation=liq),
                ],
            ),
            block(
                1,
                [
                    fill(USER_B, 2, side="A", dir="Auto-Deleveraging", startPosition="0.3", liquidation=adl),
                    fill(VAULT, 2, side="B", dir="Close Short", startPosition="-0.1", liquidation=adl),
                ],
            ),
        ],
    )


def test_views_derive_liquidations_and_adl(lake, tmp_path):
    ingest_node_fills(lake, _cascade_file(tmp_path))
    result = catalog.refresh(lake, tmp_path / "c.duckdb")
    assert result.views["fills"] == 4
    assert result.views["liquidations"] == 1  # the vault's ADL leg is not a liquidation
    assert result.views["adl_fills"] == 1
    con = catalog.connect_read_only(tmp_path / "c.duckdb")
    liq = con.sql(
        "select liquidated_user, counterparty, liquidated_position_side, notional_usd from liquidations"
    ).fetchone()
    assert liq[0] == USER_A and liq[1] == USER_B and liq[2] == "long" and float(liq[3]) == 10.05
    adl = con.sql("select user, liquidated_user, adl_position_side, is_partial from adl_fills").fetchone()
    assert adl == (USER_B, VAULT, "long", True)
    # typed empty views when nothing was ingested yet
    assert con.sql("select count(*) from position_snapshots").fetchone()[0] == 0
    con.close()


def test_plain_duckdb_opens_catalog_from_elsewhere(lake, tmp_path, monkeypatch):
    ingest_node_fills(lake, _cascade_file(tmp_path))
    catalog.refresh(lake, tmp_path / "c.duckdb")
    monkeypatch.chdir("/")
    con = duckdb.connect(str(tmp_path / "c.duckdb"), read_only=True)
    assert con.sql("select count(*) from fills").fetchone()[0] == 4


def test_cli_ingest_sql_and_errors(tmp_path):
    path = _cascade_file(tmp_path)
    r = liqf(tmp_path, "ingest", "hyperliquid", "--node-fills", str(path))
    assert r.returncode == 0, r.stderr
    assert "read 4 = written 4 + quarantined 0" in r.stderr
    r = liqf(tmp_path, "sql", "select coin, count(*) n from fills group by 1", "--format", "json")
    assert r.returncode == 0 and json.loads(r.stdout) == [{"coin": "BTC", "n": 4}]
    r = liqf(tmp_path, "sql", "select user, tid from adl_fills", "--format", "csv")
    assert r.stdout.splitlines()[0] == "user,tid"
    r = liqf(tmp_path, "sql", "select * from nope")
    assert r.returncode == 2 and "query failed" in r.stderr
    r = liqf(tmp_path, "ingest", "hyperliquid", "--node-fills", str(tmp_path / "missing"))
    assert r.returncode == 2 and "no such file or directory" in r.stderr and "Traceback" not in r.stderr
    r = liqf(tmp_path, "ingest", "hyperliquid")
    assert r.returncode == 2 and "nothing to ingest" in r.stderr


def test_cli_schema_documents_every_table(tmp_path):
    r = liqf(tmp_path, "schema")
    assert r.returncode == 0
    for table in ("fills", "liquidations", "adl_fills", "position_snapshots", "asset_ctxs", "quarantine"):
        assert f"`{table}`" in r.stdout
