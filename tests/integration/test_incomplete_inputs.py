"""A truncated or shortened input never replaces complete data, and analytics say when their inputs changed.

Issue 21 item 2, through the CLI (a subprocess) on a tiny simulator scenario in the published layout:
the first half of ``20251010/21.lz4`` saved under its own name (an interrupted download) is an error for
that file (exit 2, one line) and changes nothing in the lake; ``--partial`` ingests its complete lines
into an empty lake but never over the complete file; a plain hour file cut at a line boundary (a strict
prefix) is refused too; after an input really changes, the catalog and the ingest summary call the ADL
audit stale until ``liqf analyze`` runs again. A window without ADL is a message, not a crash. The archive's
asset-context CSV and the snapshot export are refused the same way when cut short, before their raw copy is kept.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import duckdb
import lz4.frame
import pytest

from forensics.simulate import generate
from tests.integration.test_killed_runs import liqf
from tests.lake_hashes import leftovers, table_hashes


@pytest.fixture(scope="module")
def scenario(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cutsim")
    generate(out, scale="tiny", policy="hl_index", exempt=2, seed=5, formats="real")
    return out


def hour_file(s: Path) -> Path:
    return s / "node_fills_by_block" / "hourly" / "20251010" / "21.lz4"


def count(work: Path, view: str) -> int:
    con = duckdb.connect(str(work / "c.duckdb"), read_only=True)
    try:
        return con.sql(f"select count(*) from {view}").fetchone()[0]
    finally:
        con.close()


def ledger(work: Path) -> list[tuple]:
    con = duckdb.connect(str(work / "c.duckdb"), read_only=True)
    try:
        return con.sql("select source_name, sha256, bytes, rows_written from ingest_runs order by all").fetchall()
    finally:
        con.close()


def ingest(work: Path, fills: Path, *extra: str):
    return liqf(work, "ingest", "hyperliquid", "--node-fills", str(fills), *extra)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_truncated_hour_file_is_an_error_and_keeps_the_complete_data(scenario, tmp_path):
    full = hour_file(scenario)
    cut = tmp_path / "download" / "20251010" / "21.lz4"  # same name as the complete file: same input key
    cut.parent.mkdir(parents=True)
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    work = tmp_path / "w"
    assert ingest(work, full, "--misc-events", str(scenario / "misc_events_by_block")).returncode == 0
    fills, liquidations, runs = count(work, "fills"), count(work, "liquidations"), ledger(work)
    before = table_hashes(work / "lake")
    raw_before = sorted((work / "lake" / "raw").rglob("*"))

    for extra in ((), ("--partial",)):  # asking for partial data does not make a shorter copy replace it
        r = ingest(work, cut, *extra)
        assert r.returncode == 2 and "Traceback" not in r.stderr
        assert len(error_lines(r.stderr)) == 1 and "strict prefix" in r.stderr
        assert table_hashes(work / "lake") == before and ledger(work) == runs
        assert sorted((work / "lake" / "raw").rglob("*")) == raw_before and leftovers(work / "lake") == []
    assert (count(work, "fills"), count(work, "liquidations")) == (fills, liquidations)

    # into a lake that does not hold the complete file: a truncated frame is an error for that file...
    other = tmp_path / "partial"
    r = ingest(other, cut)
    assert r.returncode == 2 and len(error_lines(r.stderr)) == 1
    assert "truncated lz4 frame" in r.stderr and "--partial" in r.stderr
    assert not list((other / "lake").rglob("part-*.parquet")) and leftovers(other / "lake") == []
    # ...unless partial data is asked for: the complete lines are kept, the cut line quarantined
    r = ingest(other, cut, "--partial")
    assert r.returncode == 0, r.stderr
    assert "quarantined 1" in r.stderr and "truncated lz4 frame" in r.stderr
    assert 0 < count(other, "fills") < fills


def test_plain_file_cut_at_a_line_boundary_is_refused(scenario, tmp_path):
    text = lz4.frame.decompress(hour_file(scenario).read_bytes())
    full = tmp_path / "full" / "20251010" / "21"
    prefix = tmp_path / "prefix" / "20251010" / "21"
    for path, body in ((full, text), (prefix, text[: text.rindex(b"\n", 0, len(text) * 2 // 3) + 1])):
        path.parent.mkdir(parents=True)
        path.write_bytes(body)
    work = tmp_path / "w"
    assert ingest(work, full).returncode == 0
    before, fills = table_hashes(work / "lake"), count(work, "fills")
    r = ingest(work, prefix)
    assert r.returncode == 2 and "strict prefix" in r.stderr and len(error_lines(r.stderr)) == 1
    assert table_hashes(work / "lake") == before and count(work, "fills") == fills


def test_analytics_say_when_their_inputs_changed(scenario, tmp_path):
    work = tmp_path / "w"
    args = [
        "--misc-events",
        str(scenario / "misc_events_by_block"),
        "--snapshot",
        str(scenario / "snapshots" / "clearinghouse_state.jsonl"),
        "--asset-ctxs",
        str(scenario / "asset_ctxs" / "20251010.csv.lz4"),
    ]
    assert ingest(work, hour_file(scenario), *args).returncode == 0
    assert liqf(work, "analyze").returncode == 0
    r = liqf(work, "catalog", "refresh")
    assert r.returncode == 0 and "STALE" not in r.stdout
    assert count(work, "analytics_freshness where not stale") == 1

    # the same hour file again, without one block in the middle (a corrected file, not a prefix)
    lines = lz4.frame.decompress(hour_file(scenario).read_bytes()).splitlines(keepends=True)
    fills_line = max(range(len(lines) // 3, len(lines)), key=lambda i: lines[i].count(b'"tid"'))
    changed = tmp_path / "fixed" / "20251010" / "21.lz4"
    changed.parent.mkdir(parents=True)
    changed.write_bytes(lz4.frame.compress(b"".join(lines[:fills_line] + lines[fills_line + 1 :])))
    r = ingest(work, changed)
    assert r.returncode == 0, r.stderr
    assert "adl_audit: STALE" in r.stderr and "fills: 1 input(s) changed" in r.stderr
    assert count(work, "analytics_freshness where stale") == 1

    r = liqf(work, "analyze")
    assert r.returncode == 0, r.stderr
    assert count(work, "analytics_freshness where not stale") == 1
    audit_tables = ("analytics/adl_steps", "analytics/adl_rule_fits", "analytics/exemption_flags")
    rerun = {t: table_hashes(work / "lake")[t] for t in audit_tables}
    # the same as analysing the changed input from scratch
    fresh = tmp_path / "fresh"
    assert ingest(fresh, changed, *args).returncode == 0 and liqf(fresh, "analyze").returncode == 0
    assert {t: table_hashes(fresh / "lake")[t] for t in audit_tables} == rerun
    shutil.rmtree(fresh)


def test_a_window_without_adl_is_a_message(scenario, tmp_path):
    work = tmp_path / "w"
    assert ingest(work, hour_file(scenario)).returncode == 0
    r = liqf(work, "analyze", "--from", "2025-10-12", "--to", "2025-10-13")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert "no ADL actions in the window" in r.stdout
    assert count(work, "adl_steps") == 0


def parts_and_raw(work: Path) -> list[Path]:
    """Every committed part and raw file of the lake (nothing written = an empty list)."""
    lake = work / "lake"
    return sorted(lake.rglob("part-*.parquet")) + sorted(p for p in (lake / "raw").rglob("*") if p.is_file())


def archive_csv(path: Path, minutes: int = 1440) -> int:
    """A day of the archive's per-minute asset_ctxs CSV (four coins), lz4-framed in 64 KB blocks as published;
    returns its rows."""
    header = "time,coin,funding,open_interest,prev_day_px,day_ntl_vlm,premium,oracle_px,mark_px,mid_px,"
    header += "impact_bid_px,impact_ask_px"
    rows = [
        f"2025-10-10T{m // 60:02d}:{m % 60:02d}:00Z,{coin},0.0000125,1000.5,{px},0.0,-0.0003,{px},{px},{px},{px},{px}"
        for m in range(minutes)
        for coin, px in (("BTC", "117250.0"), ("ETH", "4321.5"), ("SOL", "212.4"), ("HYPE", "41.25"))
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        lz4.frame.compress("\n".join([header, *rows, ""]).encode(), block_size=lz4.frame.BLOCKSIZE_MAX64KB)
    )
    return len(rows)


def test_truncated_archive_csv_is_refused_before_its_raw_copy(tmp_path):
    rows = archive_csv(tmp_path / "archive" / "20251010.csv.lz4")
    data = (tmp_path / "archive" / "20251010.csv.lz4").read_bytes()
    cut = tmp_path / "download" / "20251010.csv.lz4"
    cut.parent.mkdir()
    cut.write_bytes(data[: len(data) * 6 // 10])
    work = tmp_path / "w"
    r = liqf(work, "ingest", "hyperliquid", "--asset-ctxs", str(cut))
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(error_lines(r.stderr)) == 1
    assert "truncated lz4 frame" in r.stderr and "--partial" in r.stderr
    assert parts_and_raw(work) == [] and leftovers(work / "lake") == []  # no rows, no raw copy
    r = liqf(work, "ingest", "hyperliquid", "--asset-ctxs", str(cut), "--partial")
    assert r.returncode == 0, r.stderr
    assert "quarantined 1" in r.stderr and 0 < count(work, "asset_ctxs") < rows
    assert any(p.name.startswith(hashlib.sha256(cut.read_bytes()).hexdigest()) for p in parts_and_raw(work))


def test_truncated_snapshot_export_is_refused_before_its_raw_copy(scenario, tmp_path):
    complete = scenario / "snapshot"
    positions = next(complete.glob("perp_positions_by_market_*.json"))
    cut = tmp_path / "download" / "snapshot"  # the complete export's folder and names: the same input keys
    cut.mkdir(parents=True)
    shutil.copy(next(complete.glob("account_value_snapshot_*.json")), cut)
    text = positions.read_bytes()
    (cut / positions.name).write_bytes(text[: len(text) * 6 // 10])  # an interrupted copy, cut inside a market

    work = tmp_path / "w"
    r = liqf(work, "ingest", "hyperliquid", "--snapshot", str(cut))
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(error_lines(r.stderr)) == 1
    assert "truncated export: the file ends inside item" in r.stderr and "--partial" in r.stderr
    assert parts_and_raw(work) == [] and leftovers(work / "lake") == []  # no rows, no raw copy

    full = tmp_path / "full"
    assert liqf(full, "ingest", "hyperliquid", "--snapshot", str(complete)).returncode == 0
    # asked for: the complete markets and every account are kept, the cut market is one quarantined record
    r = liqf(work, "ingest", "hyperliquid", "--snapshot", str(cut), "--partial")
    assert r.returncode == 0, r.stderr
    assert "truncated export" in r.stderr and "quarantined 1" in r.stderr
    assert 0 < count(work, "position_snapshots") < count(full, "position_snapshots")
    assert count(work, "account_snapshots") == count(full, "account_snapshots")

    # over the complete export the cut copy is refused even with --partial (a strict prefix of what it holds)
    before = table_hashes(full / "lake")
    r = liqf(full, "ingest", "hyperliquid", "--snapshot", str(cut), "--partial")
    assert r.returncode == 2 and "strict prefix" in r.stderr and table_hashes(full / "lake") == before
