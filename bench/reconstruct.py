"""Benchmark: position reconstruction + ADL pools vs a straightforward per-event Python replay.

Run by hand (not a test):

    .venv/bin/python bench/reconstruct.py --scale medium --work /tmp/liqf-bench [--skip-baseline] [--check]

1. Simulates a scenario at ``--scale`` (reused when ``--work`` already holds one) and ingests it into a lake.
2. In a fresh subprocess (so peak RSS is its own): loads the lake inputs and runs
   ``build_steps_and_pools``; reports wall time (load and reconstruction) and peak RSS, and saves its
   tables for step 3.
3. In another fresh subprocess: the baseline (``bench/replay_baseline.py``), a per-event Python loop with
   dicts that does the same job and returns the same two tables; the run reports whether they agree
   with the product's (every column, floats to 1e-9 relative). Same inputs; both put the fills in replay
   order inside the timing and both stop at the last ADL block.
4. In a third: the "lean" loop below, a minimal per-event replay: sizes, entries and wallets
   in floats and, at each step, the account value of each candidate, but no re-anchoring on startPosition,
   no other feature, no outcome and no output rows.
5. Prints the results and both speed ratios; ``--check`` also compares the product's pools with truth.json.
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
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

VAULT = "0x2e3d94f0562703b25c83308a05046ddaf9a8dd14"


def prepare(work: Path, scale: str, seed: int) -> dict:
    from forensics.simulate import generate
    from pipelines.ingest.hyperliquid.files import ingest_asset_ctxs, ingest_node_fills, ingest_snapshot
    from pipelines.lake import Lake

    scen_dir, lake_dir = work / "scenario", work / "lake"
    info = {}
    if not (scen_dir / "scenario.json").exists():
        t = time.perf_counter()
        generate(scen_dir, scale=scale, policy="hl_index", exempt=5, seed=seed)
        info["simulate_s"] = round(time.perf_counter() - t, 1)
    if not lake_dir.exists():
        t = time.perf_counter()
        lake = Lake(lake_dir)
        for f in sorted((scen_dir / "node_fills_by_block").rglob("*.lz4")):
            ingest_node_fills(lake, f)
        ingest_snapshot(lake, scen_dir / "snapshots" / "clearinghouse_state.jsonl")
        ingest_asset_ctxs(lake, scen_dir / "asset_ctxs" / "asset_ctxs.jsonl")
        info["ingest_s"] = round(time.perf_counter() - t, 1)
    info["counts"] = json.loads((scen_dir / "scenario.json").read_text())["counts"]
    return info


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_vectorised(work: Path, check: bool) -> dict:
    from forensics.reconstruct import build_steps_and_pools, compare_to_truth
    from pipelines.analysis.inputs import load_inputs
    from pipelines.lake import Lake

    t0 = time.perf_counter()
    i = load_inputs(Lake(work / "lake"))
    t1 = time.perf_counter()
    steps, pools = build_steps_and_pools(i.fills, i.positions, i.accounts, i.asset_ctxs, vault=VAULT)
    t2 = time.perf_counter()
    steps.write_parquet(work / "product_steps.parquet")
    pools.write_parquet(work / "product_pools.parquet")
    out = {
        "load_s": round(t1 - t0, 2),
        "reconstruct_s": round(t2 - t1, 2),
        "steps": steps.height,
        "pool_rows": pools.height,
        "fills": i.fills.height,
        "peak_rss_mb": round(_peak_rss_mb()),
    }
    if check:
        m = compare_to_truth(steps, pools, work / "scenario" / "truth.json")
        out["truth"] = {
            k: m[k]
            for k in (
                "steps_truth",
                "steps_matched",
                "pools_equal_fraction",
                "candidates_missing",
                "candidates_extra",
                "selected_agreement",
            )
        }
        out["truth"]["entry_max_rel"] = m["features"]["entry"]["max_rel"]
    return out


def child_baseline(work: Path) -> dict:
    """The straightforward per-event replay of ``replay_baseline``: same job, same tables."""
    import polars as pl
    from replay_baseline import compare, steps_and_pools

    from pipelines.analysis.inputs import load_inputs
    from pipelines.lake import Lake

    i = load_inputs(Lake(work / "lake"))
    t0 = time.perf_counter()
    steps, pools = steps_and_pools(i.fills, i.positions, i.accounts, i.asset_ctxs, vault=VAULT)
    t1 = time.perf_counter()
    differ = {
        **{f"steps.{k}": v for k, v in compare(pl.read_parquet(work / "product_steps.parquet"), steps).items()},
        **{f"pools.{k}": v for k, v in compare(pl.read_parquet(work / "product_pools.parquet"), pools).items()},
    }
    return {
        "baseline_s": round(t1 - t0, 2),
        "pool_rows": pools.height,
        "same_tables_as_product": not differ,
        "differing_rows": differ,
        "peak_rss_mb": round(_peak_rss_mb()),
    }


def child_lean(work: Path) -> dict:
    """Lean per-event loop: sizes, entries, wallets and each candidate's account value; nothing else."""
    import polars as pl

    from forensics.reconstruct.actions import through_last_adl
    from forensics.reconstruct.marks import mark_observations
    from forensics.reconstruct.replay import order_fills, perp_fills
    from pipelines.analysis.inputs import load_inputs
    from pipelines.lake import Lake

    i = load_inputs(Lake(work / "lake"))
    t0 = time.perf_counter()  # like the vectorised run, the timing includes putting fills in replay order
    f = order_fills(through_last_adl(perp_fills(i.fills)))  # and, like it, stops at the last ADL block
    obs = mark_observations(f, i.asset_ctxs).sort("t_ms")
    pos: dict[tuple[str, str], list[float]] = {}  # (user, coin) -> [size, entry]
    by_coin: dict[str, dict[str, list[float]]] = {}  # coin -> user -> state (same list objects)
    by_user: dict[str, dict[str, list[float]]] = {}
    wallet: dict[str, float] = {}
    snap_ms = {}
    for r in i.accounts.select("user", "time_ms", pl.col("account_value").cast(pl.Float64)).iter_rows():
        wallet[r[0]] = r[2]
        snap_ms[r[0]] = r[1]
    for u, c, szi, e, up in i.positions.select(
        "user",
        "coin",
        pl.col("szi").cast(pl.Float64),
        pl.col("entry_px").cast(pl.Float64),
        pl.col("unrealized_pnl").cast(pl.Float64),
    ).iter_rows():
        st = [szi, e]
        pos[(u, c)] = st
        by_coin.setdefault(c, {})[u] = st
        by_user.setdefault(u, {})[c] = st
        wallet[u] -= up
    marks: dict[str, float] = {}
    obs_rows = obs.select("t_ms", "coin", "mark").rows()
    oi = 0
    rows = f.select(
        "user",
        "coin",
        "time_ms",
        "evt_ms",
        "side",
        "px_f",
        pl.col("sz").cast(pl.Float64),
        pl.col("cash").cast(pl.Float64),
        "is_adl",
        "liquidated_user",
        "blk",
        "tid",
    ).rows()
    pool_rows = 0
    cur_step = None
    for u, c, t, evt, side, px, sz, cash, is_adl, liq, blk, tid in rows:
        if u in snap_ms and evt < snap_ms[u]:
            continue
        while oi < len(obs_rows) and obs_rows[oi][0] <= t:
            marks[obs_rows[oi][1]] = obs_rows[oi][2]
            oi += 1
        if is_adl:
            key = (blk, c, liq, side)
            if key != cur_step:
                cur_step = key
                m = marks.get(c, px)
                want = 1.0 if side == "A" else -1.0  # winners' side
                for cu, st in by_coin.get(c, {}).items():
                    if st[0] * want <= 0 or cu == VAULT or cu == liq:
                        continue
                    av = wallet.get(cu, 0.0)
                    for cc, s2 in by_user[cu].items():
                        if s2[0]:
                            av += s2[0] * (marks.get(cc, s2[1]) - s2[1])
                    if av <= 0:
                        continue
                    notional = abs(st[0]) * m
                    _feat = (notional, st[0] * (m - st[1]), av, notional / av, m / st[1])
                    pool_rows += 1
        st = pos.get((u, c))
        if st is None:
            st = pos[(u, c)] = [0.0, 0.0]
            by_coin.setdefault(c, {})[u] = st
            by_user.setdefault(u, {})[c] = st
        d = sz if side == "B" else -sz
        s0, e0 = st
        new = s0 + d
        if s0 == 0 or (s0 > 0) == (d > 0):
            st[1] = px if s0 == 0 else (e0 * abs(s0) + px * abs(d)) / (abs(s0) + abs(d))
        elif abs(d) > abs(s0):
            st[1] = px
        st[0] = 0.0 if abs(new) < 1e-12 else new
        wallet[u] = wallet.get(u, 0.0) + cash
    t1 = time.perf_counter()
    return {
        "baseline_s": round(t1 - t0, 2),
        "pool_rows": pool_rows,
        "fills": len(rows),
        "peak_rss_mb": round(_peak_rss_mb()),
    }


def _child(mode: str, work: Path, check: bool) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, "--work", str(work)] + (["--check"] if check else [])
    p = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", default="medium")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--work", type=Path, default=Path("/tmp/liqf-bench-reconstruct"))
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--child", choices=["vectorised", "baseline", "lean"])
    a = ap.parse_args()
    if a.child:
        children = {
            "vectorised": lambda: child_vectorised(a.work, a.check),
            "baseline": lambda: child_baseline(a.work),
            "lean": lambda: child_lean(a.work),
        }
        print(json.dumps(children[a.child]()))
        return
    a.work.mkdir(parents=True, exist_ok=True)
    info = prepare(a.work, a.scale, a.seed)
    res = {"scale": a.scale, **info, "vectorised": _child("vectorised", a.work, a.check)}
    if not a.skip_baseline:
        took = max(res["vectorised"]["reconstruct_s"], 1e-9)
        res["baseline"] = _child("baseline", a.work, False)
        res["speedup"] = round(res["baseline"]["baseline_s"] / took, 1)
        res["lean"] = _child("lean", a.work, False)
        res["speedup_vs_lean"] = round(res["lean"]["baseline_s"] / took, 1)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
