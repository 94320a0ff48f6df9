"""Benchmark: ingest hour files of node_fills_by_block (lz4) against a bare parse of the same files.

Run by hand (not a test):
    .venv/bin/python bench/ingest_node_fills.py [--hours 2 --fills 1500000]   # generated hour files
    .venv/bin/python bench/ingest_node_fills.py --files DIR_OR_FILE...        # real-sized ones (e.g. a scenario)

Bare parse = decompress each file and ``orjson.loads`` each line, nothing else, on both cores: one process per
file, two at a time. Ingest = what ``liqf ingest hyperliquid --node-fills`` runs (:func:`run_file_ingest`:
validation, quarantine, de-duplication, Parquet, raw copy, reconciliation), in one process as the CLI does.
Each runs in a fresh subprocess; the report gives wall time, CPU seconds (user + system, the process and its
children), peak RSS (the largest process) and fills/s. Wall-clock rates suffer when other jobs share the
cores, so compare CPU seconds too. ``--parsers`` also times DuckDB's JSON transform and polars' NDJSON reader
alone (one thread, no checks or writes): the floors of readers built on them.
"""

from __future__ import annotations

import argparse
import concurrent.futures
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


def _bare_parse(path: str) -> int:
    import orjson

    n = 0
    with lz4.frame.open(path, "rb") as fh:
        for line in fh:
            n += len(orjson.loads(line)["events"])
    return n


def _child(mode: str, paths: list[Path], lake: str) -> None:
    # every mode imports the same modules before its clock starts: imports are not part of any rate
    import orjson  # noqa: F401
    import polars  # noqa: F401
    from rich.console import Console

    from pipelines.ingest.runner import run_file_ingest
    from pipelines.lake import Lake

    start, cpu_start = time.perf_counter(), _cpu()
    if mode == "parse":
        with concurrent.futures.ProcessPoolExecutor(2) as pool:  # one process per file, both cores
            n = sum(pool.map(_bare_parse, [str(p) for p in paths]))
    elif mode == "duckdb_parse":
        n = sum(_duckdb_parse(p) for p in paths)
    elif mode == "polars_parse":
        n = sum(_polars_parse(p) for p in paths)
    else:
        reports = run_file_ingest(
            Lake(Path(lake)), node_fills=paths, snapshot=None, asset_ctxs=None, console=Console(), listener=_quiet
        )
        n = sum(r.records_written for r in reports)
        assert all(r.records_read == r.records_written + r.quarantined for r in reports)
    elapsed = time.perf_counter() - start
    cpu = _cpu() - cpu_start
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    rss_mb = max(own.ru_maxrss, children.ru_maxrss) / 1024
    print(json.dumps({"mode": mode, "fills": n, "seconds": elapsed, "cpu_seconds": cpu, "peak_rss_mb": rss_mb}))


def _cpu() -> float:
    """CPU seconds (user + system) of this process and its finished children."""
    usages = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usages)


def _quiet(name: str, done: int, total: int) -> None:
    pass


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


def run(mode: str, paths: list[Path], lake: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(lake), *map(str, paths)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "POLARS_MAX_THREADS": "1"},  # polars reads its pool size at import
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", nargs="+", type=Path, help="hour files or directories (default: generated ones)")
    ap.add_argument("--hours", type=int, default=2, help="generated hour files")
    ap.add_argument("--fills", type=int, default=1_500_000, help="fills per generated hour")
    ap.add_argument("--parsers", action="store_true", help="also time the JSON-to-columns parsers alone")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args.child[0], [Path(p) for p in args.child[2:]], args.child[1])
        return
    from pipelines.ingest.hyperliquid.files import expand_inputs

    with tempfile.TemporaryDirectory() as tmp:
        if args.files:
            paths = expand_inputs(args.files)
        else:
            paths = [Path(tmp) / f"{h:02d}.lz4" for h in range(args.hours)]
            t = time.perf_counter()
            for h, path in enumerate(paths):
                generate(path, args.fills, seed=h + 1)
            print(f"generated {len(paths)} x {args.fills:,} fills in {time.perf_counter() - t:.1f}s")
        size = sum(p.stat().st_size for p in paths)
        print(f"{len(paths)} file(s), {size / 1e6:,.0f} MB lz4")
        parse = run("parse", paths, Path(tmp) / "lake")
        ingest = run("ingest", paths, Path(tmp) / "lake")
        parsers = [run(m, paths, Path(tmp) / "lake") for m in ("duckdb_parse", "polars_parse")] if args.parsers else []
    print(json.dumps({"parse": parse, "ingest": ingest, "parsers": parsers}, indent=1))
    for name, r in (("bare parse", parse), ("ingest", ingest)):
        print(
            f"{name:>10}: {r['seconds']:6.1f} s wall, {r['cpu_seconds']:6.1f} s CPU, "
            f"{r['fills'] / r['seconds']:>9,.0f} fills/s, {r['fills'] / r['cpu_seconds']:>9,.0f} fills per CPU s, "
            f"peak RSS {r['peak_rss_mb']:,.0f} MB"
        )
    print(
        f"ingest / bare parse: {ingest['seconds'] / parse['seconds']:.2f}x wall, "
        f"{ingest['cpu_seconds'] / parse['cpu_seconds']:.2f}x CPU"
    )
    for p in parsers:
        print(
            f"{p['mode']}: {p['fills'] / p['cpu_seconds']:,.0f} fills per CPU second (parse only, no checks or writes)"
        )


if __name__ == "__main__":
    main()
