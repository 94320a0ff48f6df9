"""Benchmark: the whole audit (ingest + liqf analyze) vs the plain dictionary replay, on the same files.

Run by hand (not a test):

    .venv/bin/python bench/audit.py --scenario DIR [--scenario DIR ...] [--work /tmp/liqf-bench-audit]
    .venv/bin/python bench/audit.py --scale medium|full --work /tmp/liqf-bench-full   # our simulator

``--scenario`` takes a scenario in the node layout (an independent generator's: ``snapshot.jsonl``,
``asset_ctxs.jsonl``; or ours: ``snapshots/clearinghouse_state.jsonl``, ``asset_ctxs/asset_ctxs.jsonl``);
``--scale`` simulates one with ``bench/reconstruct.py``'s preparation (reused when ``--work`` has it).
For each, in fresh subprocesses (so neither warms the other's caches):

1. product: ingest the files into a new lake (parse, validate, write Parquet), then ``liqf analyze``'s
   core (``pipelines.analysis.audit.run``: load, replay, marks, integrity, the pass, identification, diagnostics,
   writes), with its per-phase timings; "beyond loading" = everything after reading the lake inputs;
2. baseline: ``bench/audit_baseline.py``, a per-event dictionary replay that reads the same files and
   counts per ADL action, per rule, the accounts ranked above the lowest selected one but not selected.

Prints one JSON line per scenario: timings, the ratio, and both answers (rule, flags) against truth.json.

The compiled kernels (numba) are compiled once per version of the sources and cached on disk; the first run
after an install or a change pays it. A warm-up run on the ``tiny`` preset comes first and its time is printed
as ``compile_warmup_s`` (``--cold`` skips it: then the first product run includes the compilation).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]


def inputs(scenario: Path) -> dict[str, Path]:
    """The scenario's files, in either layout."""
    snap = scenario / "snapshot.jsonl"
    ctxs = scenario / "asset_ctxs.jsonl"
    if not snap.exists():
        snap = scenario / "snapshots" / "clearinghouse_state.jsonl"
        ctxs = scenario / "asset_ctxs" / "asset_ctxs.jsonl"
    return {"fills": scenario / "node_fills_by_block", "snapshot": snap, "asset_ctxs": ctxs}


def child_product(scenario: Path, work: Path) -> dict:
    from pipelines.analysis import audit
    from pipelines.ingest.hyperliquid import files
    from pipelines.lake import Lake

    lake_dir = work / "lake"
    shutil.rmtree(lake_dir, ignore_errors=True)
    lake = Lake(lake_dir)
    paths = inputs(scenario)
    t0 = time.perf_counter()
    for path in files.expand_inputs([paths["fills"]]):
        files.ingest_node_fills(lake, path)
    files.ingest_snapshot(lake, paths["snapshot"])
    files.ingest_asset_ctxs(lake, paths["asset_ctxs"])
    t1 = time.perf_counter()
    result = audit.run(lake)
    t2 = time.perf_counter()
    out = result.as_json()
    secs = {k: v for k, v in out["seconds"].items() if k != "total"}
    return {
        "ingest_s": round(t1 - t0, 2),
        "analyze_s": round(t2 - t1, 2),
        "phases_s": secs,
        "analyze_beyond_loading_s": round(sum(v for k, v in secs.items() if k != "load"), 2),
        "best_rule": out["best_rule"],
        "flagged": sorted(f["user"] for f in out["flagged"]),
        "actions": out["steps"],
        "pool_rows": out["pools"],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def child_baseline(scenario: Path) -> dict:
    import audit_baseline

    paths = inputs(scenario)
    t0 = time.perf_counter()
    out = audit_baseline.run(scenario, snapshot=paths["snapshot"], asset_ctxs=paths["asset_ctxs"])
    return {
        "seconds": round(time.perf_counter() - t0, 2),
        "best_rule": out["best_rule"],
        "flagged": out["flagged"],
        "actions": out["actions"],
        "pool_rows": out["pool_rows"],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def _child(kind: str, scenario: Path, work: Path) -> dict:
    r = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--scenario", str(scenario), "--work", str(work)],
        capture_output=True,
        text=True,
        check=False,
    )
    if r.returncode != 0:
        raise SystemExit(f"{kind} child failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def _score(flagged: list[str], truth: dict | None) -> dict:
    if truth is None:
        return {}
    planted = set(truth.get("exempt_users") or truth.get("exempt") or [])
    tp = len(set(flagged) & planted)
    return {"true_flags": tp, "false_flags": len(flagged) - tp, "planted": len(planted)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", type=Path, action="append", default=[])
    ap.add_argument("--scale", choices=["tiny", "small", "medium", "full"])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--work", type=Path, default=Path("/tmp/liqf-bench-audit"))
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--cold", action="store_true", help="no warm-up run (the first run compiles the kernels)")
    ap.add_argument("--child", choices=["product", "baseline"])
    args = ap.parse_args()
    if args.child:
        scenario = args.scenario[0]
        out = child_product(scenario, args.work) if args.child == "product" else child_baseline(scenario)
        print(json.dumps(out))
        return
    scenarios = list(args.scenario)
    if not args.cold:
        from reconstruct import prepare

        warm = args.work / "warmup"
        prepare(warm, "tiny", args.seed)
        t = time.perf_counter()
        _child("product", warm / "scenario", warm)
        print(json.dumps({"compile_warmup_s": round(time.perf_counter() - t, 2)}), flush=True)
    if args.scale:
        from reconstruct import prepare

        prepare(args.work, args.scale, args.seed)
        scenarios.append(args.work / "scenario")
    for scenario in scenarios:
        work = args.work / f"audit-{scenario.name}"
        work.mkdir(parents=True, exist_ok=True)
        truth_path = scenario / "truth.json"
        truth = json.loads(truth_path.read_text()) if truth_path.exists() else None
        product = _child("product", scenario, work)
        row = {
            "scenario": str(scenario),
            **{f"product_{k}": v for k, v in product.items() if k != "flagged"},
            **{f"product_{k}": v for k, v in _score(product["flagged"], truth).items()},
        }
        if not args.skip_baseline:
            base = _child("baseline", scenario, work)
            row.update({f"baseline_{k}": v for k, v in base.items() if k != "flagged"})
            row.update({f"baseline_{k}": v for k, v in _score(base["flagged"], truth).items()})
            total = product["ingest_s"] + product["analyze_s"]
            row["speedup_with_ingest"] = round(base["seconds"] / total, 2)
            row["speedup_beyond_loading"] = round(base["seconds"] / max(product["analyze_beyond_loading_s"], 1e-9), 2)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
