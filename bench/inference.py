"""Benchmark: rule inference + exemption test (>= 1,000 Monte-Carlo draws) beyond reconstruction.

Run by hand (not a test):

    .venv/bin/python bench/inference.py --work /tmp/liqf-bench-reconstruct [--draws 1000]

Uses the lake that ``bench/reconstruct.py`` built in ``--work`` (run that first), reconstructs once,
then times what ``liqf analyze`` runs beyond reconstruction (``pipelines.analysis.inference.run``:
reading pools and fills, the lost-fill integrity check, rule inference over every documented rule,
exemption test with set-aside re-fits, conditional logit, rule-change test, writing the tables), and
separately its two largest parts (``forensics.audit.audit`` and the conditional logit) on the same pools.
Reports wall times, pool size, the verdict against the scenario's truth.json and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/liqf-bench-reconstruct"))
    ap.add_argument("--draws", type=int, default=1000)
    args = ap.parse_args()

    import polars as pl

    from forensics.audit import audit
    from forensics.inference import conditional_logit
    from pipelines.analysis import inference, reconstruct
    from pipelines.lake import Lake

    lake = Lake(args.work / "lake")
    if not lake.has_files("fills"):
        sys.exit(f"no lake in {args.work}: run bench/reconstruct.py --work {args.work} first")
    t = time.perf_counter()
    reconstruct.run(lake)
    t_recon = time.perf_counter() - t
    t = time.perf_counter()
    out = inference.run(lake, draws=args.draws, reconstruct_if_missing=False)
    t_analyze = time.perf_counter() - t
    pools = pl.read_parquet(list(lake.table_dir("adl_pools").rglob("*.parquet")))
    t = time.perf_counter()
    audit(pools, draws=args.draws)
    t_audit = time.perf_counter() - t
    t = time.perf_counter()
    conditional_logit(pools)
    t_logit = time.perf_counter() - t
    truth_path = args.work / "scenario" / "truth.json"
    planted = set(json.loads(truth_path.read_text())["exempt"]) if truth_path.exists() else None
    flagged = {f["user"] for f in out["flagged"]}
    print(json.dumps({
        "pool_rows": pools.height, "steps": int(pools["step_id"].n_unique()), "draws": args.draws,
        "reconstruction_s": round(t_recon, 2), "analyze_beyond_reconstruction_s": round(t_analyze, 2),
        "of_which_audit_s": round(t_audit, 2), "of_which_conditional_logit_s": round(t_logit, 2),
        "best_rule": out["best_rule"], "flagged": len(flagged),
        "planted_flagged": None if planted is None else len(flagged & planted),
        "false_flags": None if planted is None else len(flagged - planted),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }))

if __name__ == "__main__":
    main()
