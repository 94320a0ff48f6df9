"""The lake on object storage (moto's S3 server on 127.0.0.1): same tables as a local lake, committed
parts only, reruns replace and clean, s3:// inputs (requester pays), fetch with resume, one-line errors."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from forensics.simulate.hourly import write_hours
from pipelines import catalog
from pipelines.ingest.hyperliquid.files import ingest_node_fills
from pipelines.lake import Lake
from pipelines.lake.remote import MANIFESTS
from pipelines.storage import StorageError, StoreSettings
from tests.s3_servers import CREDENTIALS, RequesterPaysProxy, aws_env, free_port, moto  # noqa: F401

pytestmark = pytest.mark.usefixtures("aws_env")
START = dt.datetime(2025, 10, 10, 18)
TABLES = ("fills", "quarantine", "ingest_runs")
#: columns that record when and from where, not what (differ between two runs, or between the same bytes read
#: from a local file and from object storage)
VOLATILE = {"ingested_at", "origin"}


def digest(con: duckdb.DuckDBPyConnection, view: str) -> tuple[int, int]:
    """Row count and an order-independent content hash of a catalog view."""
    cols = [r[0] for r in con.execute(f'DESCRIBE "{view}"').fetchall() if r[0] not in VOLATILE]
    select = ", ".join(f'"{c}"' for c in cols)
    return con.execute(
        f'SELECT count(*), coalesce(sum(hash(t)::HUGEINT), 0) FROM (SELECT {select} FROM "{view}") t'
    ).fetchone()


@pytest.fixture(scope="module")
def hours(tmp_path_factory) -> list[Path]:
    return write_hours(tmp_path_factory.mktemp("node"), START, 3, blocks_per_hour=40)


def s3_lake(moto, tmp_path: Path, bucket: str) -> Lake:
    moto.bucket(bucket)
    return Lake.open(f"s3://{bucket}/research/lake", endpoint=moto.endpoint, cache=tmp_path / "cache")


def test_s3_lake_tables_equal_local_lake(moto, hours, tmp_path):
    local, remote = Lake(tmp_path / "local"), s3_lake(moto, tmp_path, "lake-equal")
    for f in hours:
        ingest_node_fills(local, f)
        ingest_node_fills(remote, f)
    keys = moto.keys("lake-equal", "research/lake/")
    assert any(k.startswith("research/lake/normalized/fills/venue=hyperliquid/date=2025-10-10/part-") for k in keys)
    assert any(k.startswith(f"research/lake/{MANIFESTS}/fills/") for k in keys)
    assert any(k.startswith("research/lake/raw/venue=hyperliquid/source=node_fills_by_block/") for k in keys)
    a = catalog.refresh(local, tmp_path / "local.duckdb")
    b = catalog.refresh(remote, tmp_path / "remote.duckdb")
    assert a.views == b.views and b.views["fills"] == sum(1 for _ in []) + b.views["fills"] > 0
    ca, cb = catalog.connect_read_only(a.db_path), catalog.connect_read_only(b.db_path)
    for view in TABLES:
        assert digest(ca, view) == digest(cb, view), view
    # the views really read s3:// (through httpfs), not the working copy
    plan = cb.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'fills'").fetchone()[0]
    assert "s3://lake-equal/research/lake/normalized/fills/" in plan


def test_rerun_replaces_and_killed_writer_leaves_nothing_visible(moto, hours, tmp_path):
    lake = s3_lake(moto, tmp_path, "lake-rerun")
    first = ingest_node_fills(lake, hours[1])
    prefix = "research/lake/normalized/fills/venue=hyperliquid/date=2025-10-10/"
    parts = [k for k in moto.keys("lake-rerun", prefix) if f"part-{first.source_key}-" in k]
    assert len(parts) == 1
    # a writer killed after uploading its part but before its manifest: an uncommitted part
    orphan = f"{prefix}part-{first.source_key}-deadbeef0000.parquet"
    moto.client().copy_object(Bucket="lake-rerun", Key=orphan, CopySource={"Bucket": "lake-rerun", "Key": parts[0]})
    result = catalog.refresh(lake, tmp_path / "c.duckdb")
    assert result.views["fills"] == first.records_written  # the orphan is not read
    again = ingest_node_fills(lake, hours[1])
    assert again.records_written == first.records_written
    after = [k for k in moto.keys("lake-rerun", prefix) if f"part-{first.source_key}-" in k]
    assert len(after) == 1 and after[0] not in (parts[0], orphan)  # replaced, orphan cleaned
    assert catalog.refresh(lake, tmp_path / "c.duckdb").views["fills"] == first.records_written


def test_working_copy_pull_sees_only_committed_parts(moto, hours, tmp_path):
    writer = s3_lake(moto, tmp_path / "w", "lake-pull")
    report = ingest_node_fills(writer, hours[0])
    reader = Lake.open("s3://lake-pull/research/lake", endpoint=moto.endpoint, cache=tmp_path / "reader-cache")
    assert reader.pull(["fills"]) == 1 and reader.pull(["fills"]) == 0
    import polars as pl

    got = pl.read_parquet(list(reader.table_dir("fills").rglob("*.parquet")))
    assert got.height == report.records_written


def run_cli(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).parent / "liqf"), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=120,
    )


def test_cli_catalog_and_sql_on_an_s3_lake(moto, hours, tmp_path):
    lake = s3_lake(moto, tmp_path, "lake-cli")
    ingest_node_fills(lake, hours[0])
    common = [
        "--lake",
        "s3://lake-cli/research/lake",
        "--lake-endpoint",
        moto.endpoint,
        "--db",
        str(tmp_path / "x.duckdb"),
    ]
    env = {"LIQF_LAKE_CACHE": str(tmp_path / "cli-cache")}
    r = run_cli(*common, "catalog", "refresh", env=env)
    assert r.returncode == 0, r.stderr
    r = run_cli(*common, "sql", "select count(*) n from fills", "--format", "csv", env=env)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout.splitlines()[1]) > 0
    assert CREDENTIALS["AWS_SECRET_ACCESS_KEY"] not in r.stdout + r.stderr


@pytest.mark.parametrize("case", ["unreachable", "no_credentials", "no_bucket"])
def test_bad_configuration_is_one_line(moto, tmp_path, case, monkeypatch):
    endpoint = f"http://127.0.0.1:{free_port()}" if case == "unreachable" else moto.endpoint
    env = {"LIQF_LAKE_CACHE": str(tmp_path / "cache")}
    if case == "no_credentials":
        env.update(AWS_ACCESS_KEY_ID="", AWS_SECRET_ACCESS_KEY="")
    bucket = "lake-absent" if case == "no_bucket" else moto.bucket("lake-bad")
    r = run_cli(
        "--lake",
        f"s3://{bucket}/p",
        "--lake-endpoint",
        endpoint,
        "--db",
        str(tmp_path / "d.duckdb"),
        "catalog",
        "refresh",
        env=env,
    )
    assert r.returncode == 2, r.stdout + r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    expected = {
        "unreachable": ("cannot reach",),
        "no_credentials": ("no AWS credentials",),
        # S3 answers a missing bucket with 404, or with 403 where it will not say whether it exists (moto did so
        # in about one run in three here): either way one line that names the bucket
        "no_bucket": ("does not exist", "access denied on s3://lake-absent"),
    }[case]
    assert any(e in lines[0] for e in expected), lines[0]
    assert CREDENTIALS["AWS_SECRET_ACCESS_KEY"] not in r.stderr


def test_storage_errors_are_typed(moto, tmp_path, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    with pytest.raises(StorageError, match="no AWS credentials"):
        Lake.open("s3://whatever/p", endpoint=moto.endpoint, cache=tmp_path).remote.check()
    assert StoreSettings(endpoint=None).resolved_endpoint() is None
