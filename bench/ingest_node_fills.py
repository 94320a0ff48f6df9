"""Benchmark: ingest a generated hour of node_fills_by_block (lz4) and compare with a bare parse.

Run by hand (not a test):  .venv/bin/python bench/ingest_node_fills.py [--fills 3000000] [--threads 1]

Reports fills/second of the full ingest (normalize, validate, de-duplicate, write Parquet), peak RSS
of the ingest process, and the ratio to a bare ``orjson.loads`` of the same decompressed lines.
``--parsers`` also times JSON-to-columns parsers alone on the same lines, one thread each, with no
validation or writes: DuckDB's JSON transform as the ingest uses it (block, then each fill) and polars'
NDJSON reader (which reads each ``[user, fill]`` pair as strings, re-serializing the fill) followed by
``str.json_decode`` of the fills. They bound what any ingest built on them can reach.
Each measurement runs in a fresh subprocess so peak RSS is its own. Wall-clock rates suffer when other
jobs share the cores, so each run also reports its CPU seconds (user + system) and fills per CPU second.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lz4.frame

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

COINS = ["BTC", "ETH", "SOL", "HYPE", "XPL", "@107", "PURR/USDC"] + [f"C{i}" for i in range(140)]
DIRS = ["Open Long", "Open Short", "Close Long", "Close Short"]


def generate(path: Path, n_fills: int, seed: int = 1) -> None:
    """An hour of blocks (about 20 fills each, both legs of each trade), lz4-frame compressed."""
    rng = random.Random(seed)
    users = ["0x%040x" % rng.getrandbits(160) for _ in range(50_000)]
    t0 = 1760130000000
    tid = 10**14
    block = 758800000
    written = 0
    with lz4.frame.open(path, "wb", compression_level=0) as out:
        while written < n_fills:
            block += 1
            ms = t0 + (written * 3_600_000) // n_fills
            events = []
            for _ in range(10):
                tid += 1
                coin = rng.choice(COINS)
                px = f"{rng.uniform(1, 50000):.2f}"
                sz = f"{rng.uniform(0.001, 100):.3f}"
                buyer, seller = rng.sample(users, 2)
                for user, side in ((buyer, "B"), (seller, "A")):
                    events.append(
                        '["%s",{"coin":"%s","px":"%s","sz":"%s","side":"%s","time":%d,"startPosition":"%s",'
                        '"dir":"%s","closedPnl":"0.0","hash":"0x%064x","oid":%d,"crossed":%s,"fee":"0.0123",'
                        '"tid":%d,"feeToken":"USDC","twapId":null}]'
                        % (
                            user,
                            coin,
                            px,
                            sz,
                            side,
                            ms,
                            f"{rng.uniform(-10, 10):.3f}",
                            rng.choice(DIRS),
                            rng.getrandbits(256),
                            tid * 2 + (side == "A"),
                            "true" if side == "A" else "false",
                            tid,
                        )
                    )
            line = (
                '{"local_time":"2025-10-10T21:00:00.000000000","block_time":"2025-10-10T21:00:00.000000000",'
                '"block_number":%d,"events":[%s]}\n' % (block, ",".join(events))
            )
            out.write(line.encode())
            written += len(events)


def _child(mode: str, path: str, lake: str, threads: int) -> None:
    # every mode imports the same modules before its clock starts: imports are not part of any rate
    import orjson
    import polars  # noqa: F401

    from pipelines.ingest.hyperliquid import files as hyperliquid_files
    from pipelines.lake import Lake

    start = time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_start = usage.ru_utime + usage.ru_stime
    if mode == "parse":
        n = 0
        with lz4.frame.open(path, "rb") as fh:
            for line in fh:
                n += len(orjson.loads(line)["events"])
    elif mode == "duckdb_parse":
        n = _duckdb_parse(Path(path))
    elif mode == "polars_parse":
        n = _polars_parse(Path(path))
    else:
        orig = hyperliquid_files._ingest_con

        def con_with_threads(tmp):
            con = orig(tmp)
            con.execute(f"SET threads = {threads}")
            return con

        hyperliquid_files._ingest_con = con_with_threads
        report = hyperliquid_files.ingest_node_fills(Lake(Path(lake)), Path(path))
        n = report.records_written
        assert report.quarantined == 0
    elapsed = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - cpu_start
    rss_mb = usage.ru_maxrss / 1024
    print(json.dumps({"mode": mode, "fills": n, "seconds": elapsed, "cpu_seconds": cpu, "peak_rss_mb": rss_mb}))


def _duckdb_parse(path: Path) -> int:
    import duckdb

    from forensics.formats.hyperliquid import _BLOCK_STRUCT, _FILL_STRUCT
    from pipelines.ingest.streams import StreamState, iter_line_batches

    con = duckdb.connect(config={"threads": 1})
    n = 0
    for batch in iter_line_batches(path, StreamState()):
        con.register("hl_lines", batch.lines)
        n += (
            con.execute(
                f"SELECT ev[1] AS user, json_transform(ev[2], '{_FILL_STRUCT}') AS f FROM "
                f"(SELECT unnest(json_transform(line, '{_BLOCK_STRUCT}').events) AS ev FROM hl_lines)"
            )
            .fetch_arrow_table()
            .num_rows
        )
        con.unregister("hl_lines")
    return n


def _polars_parse(path: Path) -> int:
    import io

    import polars as pl

    fill = pl.Struct(
        {
            k: pl.Int64 if k in ("time", "oid", "tid") else pl.Boolean if k == "crossed" else pl.Utf8
            for k in (
                "coin",
                "px",
                "sz",
                "side",
                "time",
                "startPosition",
                "dir",
                "closedPnl",
                "hash",
                "oid",
                "crossed",
                "fee",
                "tid",
                "feeToken",
            )
        }
    )
    blocks = pl.read_ndjson(
        io.BytesIO(lz4.frame.decompress(path.read_bytes())),
        schema={"block_number": pl.Int64, "events": pl.List(pl.List(pl.Utf8))},
    )
    events = blocks.explode("events").select(
        pl.col("events").list.get(0).alias("user"), pl.col("events").list.get(1).str.json_decode(fill).alias("f")
    )
    return events.height


def run(mode: str, path: Path, lake: Path, threads: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(path), str(lake), str(threads)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "POLARS_MAX_THREADS": str(threads)},  # polars reads its pool size at import
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fills", type=int, default=3_000_000)
    ap.add_argument("--threads", type=int, default=1, help="DuckDB threads for the ingest (1 = one core)")
    ap.add_argument("--parsers", action="store_true", help="also time the JSON-to-columns parsers alone")
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args.child[0], args.child[1], args.child[2], int(args.child[3]))
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "21.lz4"
        t = time.perf_counter()
        generate(path, args.fills)
        print(
            f"generated {args.fills:,} fills in {time.perf_counter() - t:.1f}s ({path.stat().st_size / 1e6:.0f} MB lz4)"
        )
        parse = run("parse", path, Path(tmp) / "lake", args.threads)
        ingest = run("ingest", path, Path(tmp) / "lake", args.threads)
        parsers = (
            [run(m, path, Path(tmp) / "lake", 1) for m in ("duckdb_parse", "polars_parse")] if args.parsers else []
        )
    rate = ingest["fills"] / ingest["seconds"]
    print(json.dumps({"parse": parse, "ingest": ingest, "parsers": parsers}, indent=1))
    print(
        f"ingest: {rate:,.0f} fills/s with {args.threads} DuckDB thread(s); bare orjson parse "
        f"{parse['fills'] / parse['seconds']:,.0f} fills/s; ratio {ingest['seconds'] / parse['seconds']:.2f}x; "
        f"peak RSS {ingest['peak_rss_mb']:,.0f} MB"
    )
    cpu_rate = ingest["fills"] / ingest["cpu_seconds"]
    print(
        f"per CPU second: ingest {cpu_rate:,.0f} fills; bare parse {parse['fills'] / parse['cpu_seconds']:,.0f} "
        f"fills; ratio {ingest['cpu_seconds'] / parse['cpu_seconds']:.2f}x"
    )
    for p in parsers:
        print(
            f"{p['mode']}: {p['fills'] / p['cpu_seconds']:,.0f} fills per CPU second (parse only, no checks or writes)"
        )


if __name__ == "__main__":
    main()
