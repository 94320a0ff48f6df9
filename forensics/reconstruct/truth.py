"""Compare reconstructed steps and pools with a simulator's ``truth.json`` (accuracy metrics for docs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

#: (our column, truth key) of the features compared; truth ``size`` is signed, ours is |size|
FEATURES = (
    ("size", "size"),
    ("entry_px", "entry"),
    ("mark_px", "mark"),
    ("notional_usd", "notional"),
    ("upnl_usd", "upnl"),
    ("account_value_usd", "account_value"),
    ("leverage", "leverage"),
    ("closed_size", "closed_size"),
)


def truth_frames(truth: dict[str, Any] | str | Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(steps, pool rows) of a truth.json as frames."""
    if not isinstance(truth, dict):
        truth = json.loads(Path(truth).read_text())
    steps = pl.DataFrame(
        [
            {
                k: st[k]
                for k in (
                    "step",
                    "block_number",
                    "time",
                    "coin",
                    "liquidated_user",
                    "liquidated_side",
                    "pool_size",
                    "pool_truncated",
                )
            }
            for st in truth["steps"]
        ],
        schema={
            "step": pl.Int64,
            "block_number": pl.Int64,
            "time": pl.Int64,
            "coin": pl.Utf8,
            "liquidated_user": pl.Utf8,
            "liquidated_side": pl.Utf8,
            "pool_size": pl.Int64,
            "pool_truncated": pl.Boolean,
        },
    )
    rows = [
        {
            "step": st["step"],
            **{
                k: r[k]
                for k in (
                    "user",
                    "size",
                    "entry",
                    "mark",
                    "notional",
                    "upnl",
                    "account_value",
                    "leverage",
                    "selected",
                    "fill_order",
                    "closed_size",
                    "partial",
                    "exempt",
                )
            },
        }
        for st in truth["steps"]
        for r in st["pool"]
    ]
    pool = pl.DataFrame(
        rows,
        schema={
            "step": pl.Int64,
            "user": pl.Utf8,
            "size": pl.Float64,
            "entry": pl.Float64,
            "mark": pl.Float64,
            "notional": pl.Float64,
            "upnl": pl.Float64,
            "account_value": pl.Float64,
            "leverage": pl.Float64,
            "selected": pl.Boolean,
            "fill_order": pl.Int64,
            "closed_size": pl.Float64,
            "partial": pl.Boolean,
            "exempt": pl.Boolean,
        },
    )
    return steps, pool.with_columns(pl.col("size").abs())


def compare_to_truth(steps: pl.DataFrame, pools: pl.DataFrame, truth: dict[str, Any] | str | Path) -> dict[str, Any]:
    """Accuracy of a reconstruction against planted truth.

    Steps are matched on (block_number, coin, liquidated_side). Per matched step the candidate sets are
    compared (truncated truth pools: truth must be a subset and the pool sizes equal). Feature errors
    are relative (|ours - truth| / max(|truth|, 1e-12)) over candidates present in both.
    """
    tsteps, tpool = truth_frames(truth)
    m = tsteps.join(
        steps.select("step_id", "block_number", "coin", "liquidated_side", pl.col("pool_size").alias("our_pool_size")),
        on=["block_number", "coin", "liquidated_side"],
        how="left",
    )
    matched = m.filter(pl.col("step_id").is_not_null())
    ours = pools.join(matched.select("step", "step_id"), on="step_id")
    both = tpool.join(ours, on=["step", "user"], how="full", coalesce=True, suffix="_o")
    both = both.with_columns(pl.col("entry").is_not_null().alias("_t"), pl.col("entry_px").is_not_null().alias("_o"))
    both = both.join(matched.select("step", "pool_truncated"), on="step", how="left")
    missing = both.filter(pl.col("_t") & ~pl.col("_o")).height
    extra = both.filter(~pl.col("_t") & pl.col("_o") & ~pl.col("pool_truncated").fill_null(False)).height
    per_step = both.group_by("step").agg(
        (pl.col("_t") & pl.col("_o")).sum().alias("inter"),
        (pl.col("_t") | pl.col("_o")).sum().alias("union"),
        (pl.col("_t") & ~pl.col("_o")).sum().alias("miss"),
        (~pl.col("_t") & pl.col("_o")).sum().alias("extra"),
        pl.col("pool_truncated").first(),
    )
    per_step = per_step.join(matched.select("step", "pool_size", "our_pool_size"), on="step")
    eq = per_step.with_columns(
        pl.when(pl.col("pool_truncated"))
        .then((pl.col("miss") == 0) & (pl.col("pool_size") == pl.col("our_pool_size")))
        .otherwise((pl.col("miss") == 0) & (pl.col("extra") == 0))
        .alias("equal"),
        (pl.col("inter") / pl.col("union")).alias("jaccard"),
    )
    common = both.filter(pl.col("_t") & pl.col("_o"))
    feats: dict[str, dict[str, float]] = {}
    for ours_c, t_c in FEATURES:
        o = common[ours_c if ours_c != t_c else ours_c + "_o"].to_numpy().astype(float)
        t = common[t_c].to_numpy().astype(float)
        ok = np.isfinite(o) & np.isfinite(t)
        rel = np.abs(o[ok] - t[ok]) / np.maximum(np.abs(t[ok]), 1e-12)
        feats[t_c] = {
            "max_rel": float(rel.max()) if rel.size else 0.0,
            "median_rel": float(np.median(rel)) if rel.size else 0.0,
            "p99_rel": float(np.quantile(rel, 0.99)) if rel.size else 0.0,
            "n": int(ok.sum()),
            "missing_values": int((~ok).sum()),
        }
    sel_agree = common.filter(pl.col("selected") == pl.col("selected_o")).height
    order_agree = common.filter(pl.col("selected")).filter((pl.col("fill_order") + 1) == pl.col("fill_order_o")).height
    n_sel = common.filter(pl.col("selected")).height
    return {
        "steps_truth": tsteps.height,
        "steps_ours": steps.height,
        "steps_matched": matched.height,
        "pools_equal": int(eq["equal"].sum()) if eq.height else 0,
        "pools_equal_fraction": float(eq["equal"].mean()) if eq.height else 0.0,
        "mean_jaccard": float(eq["jaccard"].mean()) if eq.height else 0.0,
        "candidates_truth": tpool.height,
        "candidates_missing": missing,
        "candidates_extra": extra,
        "selected_agreement": sel_agree / common.height if common.height else 0.0,
        "fill_order_agreement": order_agree / n_sel if n_sel else 0.0,
        "features": feats,
    }
