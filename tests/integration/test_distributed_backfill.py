"""Distributed backfill on real parts over loopback: redis-server, two Celery workers (started here),
moto's S3 server. Six hourly partitions into an S3 lake equal the in-process run into a local lake;
a worker killed with SIGKILL mid-partition is retried on the other without duplicate, missing or
orphan parts; a broker that is down is one line."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from forensics.simulate.hourly import write_hours
from pipelines.lake.remote import MANIFESTS
from tests.integration.test_storage_lake import TABLES, digest
from tests.s3_servers import CREDENTIALS, aws_env, free_port, have_redis, moto, wait_port  # noqa: F401

pytestmark = [pytest.mark.usefixtures("aws_env"), pytest.mark.timeout(240)]
LIQF = str(Path(sys.executable).parent / "liqf")
WINDOW = ("--from", "2025-10-10T18", "--to", "2025-10-10T23")


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    exe = have_redis()
    if not exe:
        pytest.skip("redis-server is not installed (.ci/run installs the Debian package redis-server)")
    port = free_port()
    proc = subprocess.Popen(
        [
            exe,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path_factory.mktemp("redis")),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_port(port)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="module")
def node_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("node")
    write_hours(root, dt.datetime(2025, 10, 10, 18), 6, blocks_per_hour=50)
    return root


def liqf(*args: str, env: dict, timeout: float = 200) -> subprocess.CompletedProcess:
    return subprocess.run(
        [LIQF, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def digests(db: Path) -> dict:
    con = duckdb.connect(str(db), read_only=True)
    try:
        from pipelines.catalog import connect_read_only

        con.close()
        con = connect_read_only(db)  # loads httpfs and the S3 secret when the lake is on S3
        return {v: digest(con, v) for v in TABLES}
    finally:
        con.close()


@pytest.fixture(scope="module")
def reference(node_data, tmp_path_factory) -> dict:
    """The in-process run into a local lake."""
    tmp = tmp_path_factory.mktemp("ref")
    r = liqf(
        "--lake",
        str(tmp / "lake"),
        "--db",
        str(tmp / "ref.duckdb"),
        "backfill",
        "hyperliquid",
        *WINDOW,
        "--node-data",
        str(node_data),
        env={},
    )
    assert r.returncode == 0, r.stderr
    assert "6/6 partition(s) done, 0 failed" in r.stderr
    got = digests(tmp / "ref.duckdb")
    assert got["fills"][0] > 0
    return got


class Workers:
    def __init__(self, tmp: Path, broker: str, env: dict, n: int = 2) -> None:
        self.logs = [tmp / f"worker{i}.log" for i in range(n)]
        self.procs = [
            subprocess.Popen(
                [LIQF, "worker", "--broker", broker, "--name", f"w{i}@liqf-test"],
                stdout=open(self.logs[i], "w"),
                stderr=subprocess.STDOUT,
                env={**os.environ, **env},
            )
            for i in range(n)
        ]
        deadline = time.monotonic() + 60
        while not all("ready." in log.read_text() for log in self.logs):
            if time.monotonic() > deadline:
                raise RuntimeError(
                    "celery workers did not start: " + " | ".join(log.read_text()[-500:] for log in self.logs)
                )
            time.sleep(0.3)

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()


def s3_env(moto, tmp: Path, bucket: str) -> tuple[list[str], dict]:
    moto.bucket(bucket)
    args = ["--lake", f"s3://{bucket}/lake", "--lake-endpoint", moto.endpoint, "--db", str(tmp / "s3.duckdb")]
    return args, {"LIQF_LAKE_CACHE": str(tmp / "cache"), "DAGSTER_HOME": str(tmp / "dagster")}


def committed_and_present(moto, bucket: str) -> tuple[set[str], set[str]]:
    import json

    c = moto.client()
    keys = moto.keys(bucket, "lake/")
    committed = set()
    for k in keys:
        if k.startswith(f"lake/{MANIFESTS}/"):
            committed |= {
                "lake/" + p["path"] for p in json.loads(c.get_object(Bucket=bucket, Key=k)["Body"].read())["parts"]
            }
    parts = {k for k in keys if k.startswith(("lake/normalized/", "lake/meta/"))}
    return committed, parts


def test_celery_backfill_into_s3_equals_in_process_local(moto, redis_url, node_data, reference, tmp_path):
    args, env = s3_env(moto, tmp_path, "bf-equal")
    (tmp_path / "dagster").mkdir()
    init_instance(tmp_path / "dagster")
    env_w = {**env, "LIQF_CELERY_BROKER": redis_url}
    workers = Workers(tmp_path, redis_url, env_w)
    try:
        r = liqf(
            *args,
            "backfill",
            "hyperliquid",
            *WINDOW,
            "--node-data",
            str(node_data),
            "--executor",
            "celery",
            "--broker",
            redis_url,
            env=env_w,
        )
    finally:
        workers.stop()
    assert r.returncode == 0, r.stderr
    assert "6/6 partition(s) done, 0 failed" in r.stderr, r.stderr
    assert digests(tmp_path / "s3.duckdb") == reference
    # both workers took partitions
    assert all("Task execute_plan[" in log.read_text() for log in workers.logs)
    committed, parts = committed_and_present(moto, "bf-equal")
    assert parts == committed


def init_instance(home: Path) -> None:
    """Create the instance's storage once, so two processes never migrate it at the same time."""
    import dagster as dg

    prev = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        dg.DagsterInstance.get().get_runs(limit=1)
    finally:
        if prev is None:
            os.environ.pop("DAGSTER_HOME")
        else:
            os.environ["DAGSTER_HOME"] = prev


def wait_for_step_on(home: Path, worker: str, deadline: float) -> str:
    """The hour partition that ``worker`` started executing (from the Dagster event log)."""
    import dagster as dg

    from pipelines.distributed.backfill import HOUR_STEP

    prev = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        instance = dg.DagsterInstance.get()
        while time.monotonic() < deadline:
            for run in instance.get_runs(limit=1):
                for rec in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
                    ev = rec.dagster_event
                    data = (
                        {k: v.value for k, v in ev.engine_event_data.metadata.items()} if ev.engine_event_data else {}
                    )
                    if (ev.step_key or "").startswith(HOUR_STEP) and data.get("Celery worker") == worker:
                        key = ev.step_key.split("[h", 1)[1].rstrip("]")
                        return f"{key[:4]}-{key[4:6]}-{key[6:8]}-{key[8:10]}:00"
            time.sleep(0.2)
    finally:
        if prev is None:
            os.environ.pop("DAGSTER_HOME")
        else:
            os.environ["DAGSTER_HOME"] = prev
    raise AssertionError(f"{worker} never started a partition")


def test_sigkill_of_a_worker_mid_partition_is_retried_on_the_other(moto, redis_url, node_data, reference, tmp_path):
    args, env = s3_env(moto, tmp_path, "bf-kill")
    (tmp_path / "dagster").mkdir()
    init_instance(tmp_path / "dagster")  # before the CLI starts: the test reads the same storage
    # a short redelivery timeout for the killed worker's task, and a pause between a partition's part
    # uploads and its manifest: the window in which the kill lands
    env_w = {
        **env,
        "LIQF_CELERY_BROKER": redis_url,
        "LIQF_CELERY_VISIBILITY_TIMEOUT": "8",
        "LIQF_FAULT_PAUSE_BEFORE_COMMIT_S": "0.8",
    }
    workers = Workers(tmp_path, redis_url, env_w)
    try:
        run = subprocess.Popen(
            [
                LIQF,
                *args,
                "backfill",
                "hyperliquid",
                *WINDOW,
                "--node-data",
                str(node_data),
                "--executor",
                "celery",
                "--broker",
                redis_url,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **env_w},
        )
        victim = workers.procs[0]
        step = wait_for_step_on(tmp_path / "dagster", "w0@liqf-test", deadline=time.monotonic() + 120)
        time.sleep(0.5)  # inside the partition: reading, ingesting, or paused between its uploads and its commit
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        out, err = run.communicate(timeout=200)
    finally:
        workers.stop()
    assert run.returncode == 0, err
    assert "6/6 partition(s) done, 0 failed" in err and "1 retried" in err, err
    assert f"retried: {step}" in err
    assert digests(tmp_path / "s3.duckdb") == reference  # no duplicate, no missing row
    committed, parts = committed_and_present(moto, "bf-kill")
    assert parts == committed  # the killed writer's uploads were cleaned by the retry


def test_broker_down_is_one_line(node_data, tmp_path):
    broker = f"redis://127.0.0.1:{free_port()}/0"
    r = liqf(
        "--lake",
        str(tmp_path / "lake"),
        "backfill",
        "hyperliquid",
        *WINDOW,
        "--node-data",
        str(node_data),
        "--executor",
        "celery",
        "--broker",
        broker,
        env={"DAGSTER_HOME": str(tmp_path)},
        timeout=60,
    )
    assert r.returncode == 2
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "cannot reach the Celery broker" in lines[0], r.stderr


def test_hourly_asset_partition_from_s3_node_data_into_s3_lake(moto, node_data, tmp_path):
    """The asset a Dagster UI backfill runs: one hour, node data and lake both on S3, checks passing."""
    import dagster as dg

    from pipelines.defs.hyperliquid.assets import hyperliquid_node_fills_hourly
    from pipelines.defs.hyperliquid.resources import HyperliquidNodeDataResource
    from pipelines.defs.lake.resources import LakeResource

    c = moto.client()
    moto.bucket("node-src")
    for f in sorted((node_data / "node_fills_by_block").rglob("*.lz4")):
        c.upload_file(str(f), "node-src", "hl/" + f.relative_to(node_data).as_posix())
    moto.bucket("asset-lake")
    os.environ["LIQF_LAKE_CACHE"] = str(tmp_path / "cache")
    try:
        result = dg.materialize(
            [hyperliquid_node_fills_hourly],
            partition_key="2025-10-10-20:00",
            resources={
                "lake": LakeResource(
                    lake_root="s3://asset-lake/lake", lake_endpoint=moto.endpoint, db_path=str(tmp_path / "a.duckdb")
                ),
                "hyperliquid_node_data": HyperliquidNodeDataResource(root="s3://node-src/hl", endpoint=moto.endpoint),
            },
        )
    finally:
        os.environ.pop("LIQF_LAKE_CACHE")
    assert result.success
    assert all(c.passed for c in result.get_asset_check_evaluations())
    mat = result.asset_materializations_for_node("hyperliquid_node_fills_hourly")[0]
    assert mat.metadata["records_written"].value > 0
    assert any("/_manifests/fills/" in "/" + k for k in moto.keys("asset-lake", "lake/"))
    # an hour without a file is an empty partition, not a failure
    empty = dg.materialize(
        [hyperliquid_node_fills_hourly],
        partition_key="2025-10-11-05:00",
        resources={
            "lake": LakeResource(lake_root=str(tmp_path / "lake"), db_path=str(tmp_path / "b.duckdb")),
            "hyperliquid_node_data": HyperliquidNodeDataResource(root=str(node_data)),
        },
    )
    assert empty.success
