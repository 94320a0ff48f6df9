"""s3:// inputs and `liqf fetch` against moto behind a requester-pays proxy (all on 127.0.0.1)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from forensics.simulate.hourly import write_hours
from pipelines.ingest.hyperliquid import fetch
from tests.integration.test_storage_lake import TABLES, digest
from tests.s3_servers import CREDENTIALS, RequesterPaysProxy, aws_env, moto  # noqa: F401

pytestmark = pytest.mark.usefixtures("aws_env")
BUCKET = "hl-mainnet-node-data"


def ctx_lines() -> str:
    meta = {
        "universe": [
            {"name": "BTC", "szDecimals": 5, "maxLeverage": 40},
            {"name": "ETH", "szDecimals": 4, "maxLeverage": 25},
        ]
    }
    ctx = {
        "markPx": "100.5",
        "oraclePx": "100.4",
        "midPx": "100.45",
        "funding": "0.0000125",
        "premium": "0.0001",
        "openInterest": "10.0",
        "dayNtlVlm": "1000.0",
        "prevDayPx": "99.0",
        "impactPxs": ["100.4", "100.6"],
    }
    return "".join(json.dumps({"time": 1760119200000 + i * 60000, "ctxs": [meta, [ctx, ctx]]}) + "\n" for i in range(5))


@pytest.fixture(scope="module")
def published(moto, tmp_path_factory):
    """Three hours of node fills and an asset-context file in the bucket's layout, behind the proxy."""
    root = tmp_path_factory.mktemp("published")
    files = write_hours(root, dt.datetime(2025, 10, 10, 20), 3, blocks_per_hour=2000)
    ctxs = root / "asset_ctxs" / "20251010.jsonl"
    ctxs.parent.mkdir()
    ctxs.write_text(ctx_lines())
    c = moto.client()
    moto.bucket(BUCKET)
    for f in [*files, ctxs]:
        c.upload_file(str(f), BUCKET, f.relative_to(root).as_posix())
    proxy = RequesterPaysProxy(moto.port)
    yield root, files, ctxs, proxy
    proxy.stop()


def liqf(tmp: Path, *args: str, name: str = "x", env: dict | None = None) -> subprocess.CompletedProcess:
    base = ["--lake", str(tmp / f"lake-{name}"), "--db", str(tmp / f"{name}.duckdb")]
    return subprocess.run(
        [str(Path(sys.executable).parent / "liqf"), *base, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=180,
        stdin=subprocess.DEVNULL,
    )


def digests(db: Path) -> dict:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {v: digest(con, v) for v in (*TABLES, "asset_ctxs")}
    finally:
        con.close()


def test_direct_s3_inputs_equal_local_files(published, tmp_path):
    root, files, ctxs, proxy = published
    local = liqf(
        tmp_path,
        "ingest",
        "hyperliquid",
        "--node-fills",
        str(root / "node_fills_by_block"),
        "--asset-ctxs",
        str(ctxs),
        name="local",
    )
    assert local.returncode == 0, local.stderr
    remote = liqf(
        tmp_path,
        "ingest",
        "hyperliquid",
        "--node-fills",
        f"s3://{BUCKET}/node_fills_by_block/hourly/20251010/",
        "--asset-ctxs",
        f"s3://{BUCKET}/asset_ctxs/20251010.jsonl",
        "--endpoint-url",
        proxy.endpoint,
        name="s3",
    )
    assert remote.returncode == 0, remote.stderr
    assert proxy.forwarded > 0
    a, b = digests(tmp_path / "local.duckdb"), digests(tmp_path / "s3.duckdb")
    assert a == b and a["fills"][0] > 0 and a["asset_ctxs"][0] == 10
    assert CREDENTIALS["AWS_SECRET_ACCESS_KEY"] not in remote.stdout + remote.stderr


def test_without_requester_pays_the_403_says_what_to_set(published, tmp_path):
    _, _, _, proxy = published
    r = liqf(
        tmp_path,
        "ingest",
        "hyperliquid",
        "--node-fills",
        f"s3://{BUCKET}/node_fills_by_block/hourly/20251010/20.lz4",
        "--endpoint-url",
        proxy.endpoint,
        "--no-requester-pays",
    )
    assert r.returncode == 2
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "403" in lines[0] and "requester" in lines[0] and "AWS_ACCESS_KEY_ID" in lines[0], (
        r.stderr
    )


def test_fetch_plans_next_hour_prices_and_resumes(published, tmp_path):
    root, files, _, proxy = published
    args = [
        "fetch",
        "hyperliquid",
        "--from",
        "2025-10-10T20",
        "--to",
        "2025-10-10T21",
        "--endpoint-url",
        proxy.endpoint,
    ]
    refused = liqf(tmp_path, *args, name="f")
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert "s3://hl-mainnet-node-data/node_fills_by_block/hourly/20251010/22.lz4" in refused.stderr  # the next hour
    assert "requester-pays estimate $" in refused.stderr
    proxy.cuts = 20  # every GET breaks off half way, more often than the client retries
    broken = liqf(tmp_path, *args, "--yes", name="f")
    assert broken.returncode == 2 and "run the same command again" in broken.stderr, broken.stderr
    partial = list((tmp_path / "lake-f").rglob("*.part"))
    assert len(partial) == 1 and 0 < partial[0].stat().st_size < files[0].stat().st_size
    kept = partial[0].stat().st_size
    proxy.cuts, proxy.ranges = 0, []
    done = liqf(tmp_path, *args, "--yes", "--ingest", name="f")
    assert f"bytes={kept}-" in " ".join(proxy.ranges)  # resumed where it stopped
    assert done.returncode == 0, done.stderr
    got = sorted((tmp_path / "lake-f").rglob("node_fills_by_block/hourly/20251010/*.lz4"))
    assert [p.name for p in got] == ["20.lz4", "21.lz4", "22.lz4"]
    assert all(g.read_bytes() == f.read_bytes() for g, f in zip(got, files))
    assert not list((tmp_path / "lake-f").rglob("*.part"))
    assert "3 input(s)" in done.stderr


def test_window_hours_take_the_next_hour():
    hours = fetch.window_hours(dt.datetime(2025, 10, 10, 23), dt.datetime(2025, 10, 10, 23))
    assert hours == [dt.datetime(2025, 10, 10, 23), dt.datetime(2025, 10, 11, 0)]
    with pytest.raises(fetch.FetchError):
        fetch.parse_hour("yesterday", "--from")
