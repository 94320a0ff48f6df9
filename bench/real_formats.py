"""Benchmark: the published Hyperliquid layouts (misc events ingest rate; reconstruction with funding and
ledger events).

Run by hand (not a test):

    .venv/bin/python bench/real_formats.py misc --deltas 250000 --ledger 40000 --work /tmp/liqf-bench-misc
    .venv/bin/python bench/real_formats.py reconstruct --scale full --work /tmp/liqf-bench-real

``misc``: writes one generated ``misc_events_by_block`` hour (one Funding block of ``--deltas`` deltas, the
real Oct-10 order of size, plus ``--ledger`` LedgerUpdate events over ~44k blocks, a quarter of them empty,
lz4), then ingests it in a fresh subprocess: records/s, decompressed MB/s, peak RSS.

``reconstruct``: simulates a ``formats="real"`` scenario at ``--scale`` (reused when present), ingests it
through the CLI's runner (exact JSONL snapshot, per-minute archive marks, misc events), then in fresh
subprocesses times ``build_steps_and_pools`` without and with the cash events (building them included) and
compares both with truth.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

VAULT = "0x2e3d94f0562703b25c83308a05046ddaf9a8dd14"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_misc_hour(path: Path, deltas: int, ledger: int, seed: int = 1) -> dict:
    import lz4.frame
    import numpy as np
    import orjson

    rng = np.random.default_rng(seed)
    users = ["0x" + rng.bytes(20).hex() for _ in range(max(1000, deltas // 2))]
    coins = [f"C{k}" for k in range(150)]
    t0 = 1_760_130_000_000_000_000
    n_blocks = 44_000
    ledger_at = np.sort(rng.integers(1, n_blocks, ledger))
    per_block = np.bincount(ledger_at, minlength=n_blocks)
    comp = lz4.frame.LZ4FrameCompressor()
    raw = 0
    with path.open("wb") as fh:
        fh.write(comp.begin())
        for b in range(n_blocks):
            t = t0 + b * 81_000_000
            iso = f"2025-10-10T21:{(b * 81 // 1000) // 60 % 60:02d}:{(b * 81 // 1000) % 60:02d}.{t % 10**9:09d}"
            events = []
            if b == 0:
                events.append(
                    {
                        "time": iso,
                        "hash": "0x" + "0" * 64,
                        "inner": {
                            "Funding": {
                                "deltas": [
                                    {
                                        "user": users[int(rng.integers(len(users)))],
                                        "coin": coins[k % 150],
                                        "funding_amount": f"{rng.normal(0, 5):.6f}",
                                        "szi": f"{rng.normal(0, 100):.4f}",
                                        "funding_rate": "0.0000125",
                                    }
                                    for k in range(deltas)
                                ]
                            }
                        },
                    }
                )
            for _ in range(int(per_block[b])):
                u = users[int(rng.integers(len(users)))]
                kind = int(rng.integers(4))
                delta = [
                    {"type": "deposit", "usdc": f"{rng.uniform(5, 5000):.2f}"},
                    {"type": "withdraw", "usdc": f"{rng.uniform(5, 5000):.2f}", "nonce": 1, "fee": "1.0"},
                    {"type": "accountClassTransfer", "usdc": f"{rng.uniform(5, 5000):.2f}", "toPerp": True},
                    {
                        "type": "liquidation",
                        "liquidatedNtlPos": "1000.5",
                        "accountValue": "10.25",
                        "leverageType": "Cross",
                        "liquidatedPositions": [{"coin": "BTC", "szi": "0.1"}],
                    },
                ][kind]
                events.append(
                    {
                        "time": iso,
                        "hash": "0x" + rng.bytes(32).hex(),
                        "inner": {"LedgerUpdate": {"users": [u], "delta": delta}},
                    }
                )
            if not events and rng.random() < 0.25:
                continue
            line = (
                orjson.dumps({"local_time": iso, "block_time": iso, "block_number": 758_000_000 + b, "events": events})
                + b"\n"
            )
            raw += len(line)
            fh.write(comp.compress(line))
        fh.write(comp.flush())
    return {
        "raw_mb": round(raw / 2**20, 1),
        "lz4_mb": round(path.stat().st_size / 2**20, 1),
        "records": deltas + ledger,
    }


def misc_child(path: str, lake: str) -> None:
    from pipelines.ingest.hyperliquid.misc import ingest_misc_events
    from pipelines.lake import Lake

    t = time.perf_counter()
    r = ingest_misc_events(Lake(Path(lake)), Path(path))
    dt = time.perf_counter() - t
    print(
        json.dumps(
            {
                "seconds": round(dt, 2),
                "records": r.records_read,
                "records_per_s": round(r.records_read / dt),
                "tables": r.rows_by_table,
                "peak_rss_mb": round(_rss_mb()),
            }
        )
    )


def prepare(work: Path, scale: str, seed: int) -> dict:
    from rich.console import Console

    from forensics.simulate import generate
    from pipelines.ingest.runner import run_file_ingest
    from pipelines.lake import Lake

    scen, lake_dir, info = work / "scenario", work / "lake", {}
    if not (scen / "scenario.json").exists():
        t = time.perf_counter()
        generate(scen, scale=scale, policy="hl_index", exempt=5, seed=seed, formats="real")
        info["simulate_s"] = round(time.perf_counter() - t, 1)
    if not lake_dir.exists():
        t = time.perf_counter()
        run_file_ingest(
            Lake(lake_dir),
            node_fills=[scen / "node_fills_by_block"],
            misc_events=[scen / "misc_events_by_block"],
            snapshot=[scen / "snapshots" / "clearinghouse_state.jsonl"],
            asset_ctxs=scen / "asset_ctxs" / "20251010.csv.lz4",
            console=Console(quiet=True),
        )
        info["ingest_s"] = round(time.perf_counter() - t, 1)
    meta = json.loads((scen / "scenario.json").read_text())
    info["counts"], info["misc_events"] = meta["counts"], meta.get("misc_events")
    return info


def reconstruct_child(work: str, with_cash: bool) -> None:
    from forensics.reconstruct import build_steps_and_pools, compare_to_truth
    from forensics.reconstruct.cash import cash_events
    from pipelines.analysis.inputs import archive_mark_age, load_inputs
    from pipelines.lake import Lake

    t = time.perf_counter()
    i = load_inputs(Lake(Path(work) / "lake"))
    t_load = time.perf_counter() - t
    t = time.perf_counter()
    cash = cash_events(i.ledger, i.funding)[0] if with_cash else None
    steps, pools = build_steps_and_pools(
        i.fills,
        i.positions,
        i.accounts,
        i.asset_ctxs,
        vault=VAULT,
        cash=cash,
        max_mark_age_ms=archive_mark_age(i.asset_ctxs),
    )
    t_build = time.perf_counter() - t
    r = compare_to_truth(steps, pools, Path(work) / "scenario" / "truth.json")
    print(
        json.dumps(
            {
                "with_cash": with_cash,
                "cash_events": 0 if cash is None else cash.height,
                "load_s": round(t_load, 2),
                "reconstruct_s": round(t_build, 2),
                "peak_rss_mb": round(_rss_mb()),
                "steps": steps.height,
                "pool_rows": pools.height,
                "pools_equal": f"{r['pools_equal']}/{r['steps_truth']}",
                "candidates_missing": r["candidates_missing"],
                "candidates_extra": r["candidates_extra"],
                "account_value_median_rel": r["features"]["account_value"]["median_rel"],
            }
        )
    )


def _child(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["misc", "reconstruct", "_misc", "_reconstruct"])
    ap.add_argument("--work", type=Path, default=Path("/tmp/liqf-bench-real"))
    ap.add_argument("--deltas", type=int, default=250_000)
    ap.add_argument("--ledger", type=int, default=40_000)
    ap.add_argument("--scale", default="medium")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--cash", type=int, default=1)
    ap.add_argument("--lake")
    ap.add_argument("--file")
    a = ap.parse_args()
    if a.mode == "_misc":
        return misc_child(a.file, a.lake)
    if a.mode == "_reconstruct":
        return reconstruct_child(str(a.work), bool(a.cash))
    a.work.mkdir(parents=True, exist_ok=True)
    if a.mode == "misc":
        path = a.work / "21.lz4"
        made = write_misc_hour(path, a.deltas, a.ledger)
        res = _child("_misc", "--file", str(path), "--lake", str(a.work / "lake"))
        res["mb_per_s"] = round(made["raw_mb"] / res["seconds"], 1)
        print(json.dumps({"input": made, "ingest": res}, indent=1))
    else:
        info = prepare(a.work, a.scale, a.seed)
        runs = [_child("_reconstruct", "--work", str(a.work), "--cash", str(c)) for c in (0, 1)]
        print(json.dumps({"scale": a.scale, **info, "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
