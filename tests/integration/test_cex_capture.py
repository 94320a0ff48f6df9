"""Streaming capture over real WebSockets against the local venue server: hourly raw files, reconnects,
gaps recorded in ``capture_gaps``, and normalization of closed hours into ``cex_liquidations``."""

from __future__ import annotations

import duckdb
import pytest

from pipelines.ingest import capture
from pipelines.lake import Lake
from pipelines.sandbox.venue_server import Scenario, serve
from pipelines.sandbox.venue_server.cex import cex_routes, generate

START = 1_760_000_000_000


@pytest.fixture()
def server(tmp_path):
    data = generate(START, 1)
    data.binance_ws.append(
        {
            "e": "forceOrder",
            "E": 1,
            "o": {
                "s": "../x",
                "S": "SELL",
                "q": "1",
                "p": "1",
                "ap": "1",
                "X": "FILLED",
                "l": "1",
                "z": "1",
                "T": START,
            },
        }
    )
    with serve(Scenario(root=tmp_path / "hl"), routes=cex_routes(data), rate_limit_per_minute=None) as srv:
        srv.cex_data = data  # type: ignore[attr-defined]
        yield srv


def ws_url(srv, path: str) -> str:
    return srv.base_url.replace("http://", "ws://") + path


def test_binance_capture_reconnects_and_records_gaps(server, tmp_path):
    server.cex_data.ws_drop_after = 15
    lake = Lake(tmp_path / "lake")
    stats = capture.run_capture(
        lake,
        "binance",
        url=ws_url(server, "/ws/!forceOrder@arr"),
        max_messages=41,
        duration_s=20,
        heartbeat_s=2,
        backoff_s=0.01,
    )
    assert stats.messages == 41 and stats.connects >= 3
    assert len(stats.gaps) >= 2 and all(g["reason"].startswith("disconnect") for g in stats.gaps)
    files = capture.closed_hours(lake, "binance")
    assert files and not list(lake.root.rglob(".tmp-*"))
    reports = [capture.normalize_hour(lake, "binance", f) for f in files]
    assert sum(r.records_read for r in reports) == 41
    assert sum(r.quarantined for r in reports) == 1  # the hostile symbol
    con = duckdb.connect()
    gaps = con.execute(f"select count(*), min(reconnects) from read_parquet('{lake.glob('capture_gaps')}')").fetchone()
    assert gaps[0] == len(stats.gaps)
    sides = dict(
        con.execute(
            f"select liquidated_position_side, count(*) from read_parquet('{lake.glob('cex_liquidations')}') group by 1"
        ).fetchall()
    )
    assert sides["long"] > sides["short"] > 0


def test_bybit_capture_subscribes_and_keeps_position_side(server, tmp_path):
    lake = Lake(tmp_path / "lake")
    stats = capture.run_capture(
        lake,
        "bybit",
        url=ws_url(server, "/v5/public/linear"),
        symbols=["BTCUSDT"],
        max_messages=30,
        duration_s=20,
        heartbeat_s=2,
    )
    assert stats.messages == 30 and stats.gaps == []
    (f,) = capture.closed_hours(lake, "bybit")
    r = capture.normalize_hour(lake, "bybit", f)
    assert r.records_read == r.records_written == 30
    con = duckdb.connect()
    rows = con.execute(
        f"select raw_side, liquidated_position_side from read_parquet('{lake.glob('cex_liquidations')}')"
    ).fetchall()
    assert all((s == "Buy") == (p == "long") for s, p in rows)


def test_connect_failure_is_a_gap(tmp_path):
    lake = Lake(tmp_path / "lake")
    calls = []

    def refuse(url: str):
        calls.append(url)
        raise ConnectionError("refused")

    t = iter(range(0, 10_000))
    stats = capture.run_capture(
        lake,
        "binance",
        url="ws://127.0.0.1:9/x",
        duration_s=5,
        connector=refuse,
        clock=lambda: next(t),
        sleep=lambda s: None,
    )
    assert stats.messages == 0 and len(stats.gaps) == 1 and stats.gaps[0]["gap_end_ms"] is None
    assert stats.gaps[0]["reconnects"] >= 2 and "connect_failed" in stats.gaps[0]["reason"]
    with pytest.raises(capture.CaptureError):
        capture.run_capture(lake, "okx")
    with pytest.raises(capture.CaptureError):
        capture.run_capture(lake, "bybit", url="http://x", symbols=["BTCUSDT"])
