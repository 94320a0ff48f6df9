"""Benchmark: hourly backfill partitions per minute on Celery with 1 and 2 workers, and the cost of one
partition broken down into read (download of the hour file from S3), parse (normalize, validate,
de-duplicate, stage Parquet) and write (upload the parts and commit the manifest).

Run by hand (not a test):  .venv/bin/python bench/distributed_backfill.py [--hours 8] [--blocks 3000]

Everything runs on 127.0.0.1: moto's S3 server (the node-data bucket and the lake bucket), a
redis-server broker, and the Celery workers this script starts. Prints a JSON summary on stdout.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from forensics.simulate.hourly import write_hours  # noqa: E402
from tests.s3_servers import CREDENTIALS, MotoServer, free_port, wait_port  # noqa: E402

LIQF = str(Path(sys.executable).parent / "liqf")
START = dt.datetime(2025, 10, 10, 0)


def per_partition_costs(moto: MotoServer, node: Path, work: Path) -> dict:
    """One hour: read from S3, parse into a local lake, and the extra of writing to an S3 lake."""
    from pipelines.defs.hyperliquid.resources import HyperliquidNodeDataResource
    from pipelines.ingest.hyperliquid.files import ingest_node_fills
    from pipelines.lake import Lake
    from pipelines.lake import remote as commit

    key = START.strftime("%Y-%m-%d-%H:00")
    res = HyperliquidNodeDataResource(root="s3://bench-node", endpoint=moto.endpoint)
    local = Lake(work / "cost-local")
    t0 = time.perf_counter()
    path = res.hour_file(key, local)
    read = time.perf_counter() - t0
    t0 = time.perf_counter()
    report = ingest_node_fills(local, path)
    parse = time.perf_counter() - t0
    moto.bucket("bench-cost")
    remote = Lake.open("s3://bench-cost/lake", endpoint=moto.endpoint, cache=work / "cost-cache")
    spent = {"write": 0.0}
    original_commit, original_raw = commit.RemoteLake.commit, commit.RemoteLake.put_raw

    def timed(fn):
        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent["write"] += time.perf_counter() - t

        return wrapper

    commit.RemoteLake.commit, commit.RemoteLake.put_raw = timed(original_commit), timed(original_raw)
    try:
        t0 = time.perf_counter()
        ingest_node_fills(remote, path)
        total_s3 = time.perf_counter() - t0
    finally:
        commit.RemoteLake.commit, commit.RemoteLake.put_raw = original_commit, original_raw
    return {
        "fills": report.records_written,
        "bytes": report.bytes,
        "read_s": round(read, 3),
        "parse_s": round(total_s3 - spent["write"], 3),
        "parse_local_lake_s": round(parse, 3),
        "write_s": round(spent["write"], 3),
    }


def backfill(moto: MotoServer, broker: str, workers: int, hours: int, work: Path) -> dict:
    bucket = moto.bucket(f"bench-lake-{workers}")
    home = work / f"dagster-{workers}"
    home.mkdir()
    env = {
        **os.environ,
        **CREDENTIALS,
        "DAGSTER_HOME": str(home),
        "LIQF_CELERY_BROKER": broker,
        "LIQF_LAKE_CACHE": str(work / f"cache-{workers}"),
    }
    procs = [
        subprocess.Popen(
            [LIQF, "worker", "--name", f"b{i}@bench"],
            stdout=open(work / f"w{workers}-{i}.log", "w"),
            stderr=subprocess.STDOUT,
            env=env,
        )
        for i in range(workers)
    ]
    try:
        while not all("ready." in (work / f"w{workers}-{i}.log").read_text() for i in range(workers)):
            time.sleep(0.3)
        end = START + dt.timedelta(hours=hours - 1)
        t0 = time.perf_counter()
        r = subprocess.run(
            [
                LIQF,
                "--lake",
                f"s3://{bucket}/lake",
                "--lake-endpoint",
                moto.endpoint,
                "--db",
                str(work / f"bench-{workers}.duckdb"),
                "backfill",
                "hyperliquid",
                "--from",
                START.strftime("%Y-%m-%dT%H"),
                "--to",
                end.strftime("%Y-%m-%dT%H"),
                "--executor",
                "celery",
                "--node-data",
                "s3://bench-node",
                "--node-data-endpoint",
                moto.endpoint,
            ],
            capture_output=True,
            text=True,
            env=env,
        )
        wall = time.perf_counter() - t0
        if r.returncode:
            raise RuntimeError(r.stderr[-2000:])
        line = next(line for line in r.stderr.splitlines() if "partition(s) done" in line)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(20)
    return {
        "workers": workers,
        "partitions": hours,
        "wall_s": round(wall, 1),
        "partitions_per_minute": round(hours / wall * 60, 2),
        "summary": line.strip(),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hours", type=int, default=8)
    ap.add_argument("--blocks", type=int, default=3000, help="blocks per hour file (8 fills each)")
    args = ap.parse_args()
    redis = shutil.which("redis-server")
    if not redis:
        sys.exit("redis-server is not installed: apt-get install -y redis-server")
    os.environ.update(CREDENTIALS)
    work = Path(tempfile.mkdtemp(prefix="liqf-bench-backfill-"))
    node = work / "node"
    files = write_hours(node, START, args.hours, blocks_per_hour=args.blocks)
    moto = MotoServer()
    port = free_port()
    broker_proc = subprocess.Popen(
        [redis, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    wait_port(port)
    try:
        client = moto.client()
        moto.bucket("bench-node")
        for f in files:
            client.upload_file(str(f), "bench-node", f.relative_to(node).as_posix())
        out = {
            "hour_file_bytes": sum(f.stat().st_size for f in files) // len(files),
            "cost": per_partition_costs(moto, node, work),
        }
        out["runs"] = [backfill(moto, f"redis://127.0.0.1:{port}/0", n, args.hours, work) for n in (1, 2)]
        print(json.dumps(out, indent=1))
    finally:
        broker_proc.terminate()
        moto.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
