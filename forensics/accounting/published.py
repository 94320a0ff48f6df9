"""Published Oct-10 figures recomputed from the authors' own per-wave and per-coin files.

* Chitra et al. (pluriholonomic/autodeleveraging-analysis, ``out/``): the per-horizon wave tables
  ``eval_horizon_sweep/gap_ms=<g>/horizon_ms=<h>/two_pass_equity_delta_by_wave.csv`` give, per wave,
  the loser deficit ``D_t``, the needed budget ``B_t^needed`` and the production haircut
  ``H_t^prod(h)``. :func:`overshoot_from_waves` recomputes ``O(h) = sum_t (H_t^prod(h) - B_t^needed)``,
  the horizon band, the half-life-discounted overshoot and the under-coverage from those inputs only;
  :func:`reproduce_chitra` compares with ``headlines.json``, ``overshoot_robustness.json`` and the
  sweep CSV.
* ConejoCapital/HyperMultiAssetedADL (``canonical/``, ``history/``): event aggregates and the top-coin
  table through the named queries ``sql/queries/accounting_hmadl_*.sql`` (DuckDB over the CSVs).

Nothing here copies the data: every function takes the directory of the files.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

QUERIES = Path(__file__).resolve().parents[2] / "sql" / "queries"

CHITRA_HORIZONS_MS = (0, 500, 1000, 2000, 5000)
HALF_LIVES_MS = (500, 1000, 2000, 5000)

#: caveats to state with any Oct-10 HyperMultiAssetedADL figure (real-data.md §5)
HMADL_CAVEATS = (
    "The 63,637 liquidations / $5.51B include the liquidated-side legs of the 34,983 ADL trades "
    "(in every ticker liquidation counts and notional are >= the ADL ones, some tickers are identical), "
    "so the $7.61B 'total impact' double counts about $2.10B.",
    "'302 negative-equity accounts' are 302 ADL events of 165 distinct users (the coin file sums events, "
    "the user file flags users).",
    "Version drift: HyperReplay (Nov 13) and the history/ files give other negative-equity, leverage and "
    "profitability figures; trust ms epochs, not the shifted time strings of the summary JSON.",
)


def wave_csv(out_dir: Path, horizon_ms: int, gap_ms: int = 5000) -> Path:
    return (
        Path(out_dir)
        / "eval_horizon_sweep"
        / f"gap_ms={gap_ms}"
        / f"horizon_ms={horizon_ms}"
        / "two_pass_equity_delta_by_wave.csv"
    )


def load_chitra_waves(
    out_dir: Path, gap_ms: int = 5000, horizons_ms: tuple[int, ...] | None = None
) -> dict[int, pl.DataFrame]:
    """Per-horizon wave tables: horizon_ms -> frame with wave, t_start_ms, t_end_ms, deficit_usd,
    budget_needed_usd, budget_prod_usd (and the file's other columns). Horizons default to every
    ``horizon_ms=*`` directory present."""
    base = Path(out_dir) / "eval_horizon_sweep" / f"gap_ms={gap_ms}"
    if horizons_ms is None:
        horizons_ms = tuple(sorted(int(p.name.split("=", 1)[1]) for p in base.glob("horizon_ms=*")))
    if not horizons_ms:
        raise FileNotFoundError(f"no horizon_ms=* directories under {base}")
    return {h: pl.read_csv(wave_csv(out_dir, h, gap_ms)) for h in horizons_ms}


def _trapz(y: np.ndarray, x: np.ndarray) -> float:
    return float(np.trapezoid(y, x)) if hasattr(np, "trapezoid") else float(np.trapz(y, x))


def overshoot_from_waves(
    waves_by_horizon: dict[int, pl.DataFrame],
    *,
    band_max_ms: int = 10_000,
    half_lives_ms: tuple[int, ...] = HALF_LIVES_MS,
) -> dict:
    """Totals, overshoot per horizon, band and discounted overshoot from per-wave inputs.

    Per horizon ``h``: ``deficit = sum D_t``, ``needed = sum B_t``, ``production = sum H_t(h)``,
    ``overshoot = sum_t (H_t(h) - B_t)`` (signed: waves where production fell short count negative),
    ``under_coverage = sum_t (B_t - H_t(h))_+``, ``excess = sum_t (H_t(h) - B_t)_+``.
    Band: [min, max] of ``overshoot`` over horizons in ``[0, band_max_ms]``. Discounted overshoot for
    half-life ``tau``: the exponential-weighted average of ``O(h)`` over the sampled horizons with
    weights ``lam exp(-lam h)``, ``lam = ln 2 / tau``, trapezoid rule (Chitra's ``overshoot_robustness``).
    """
    per_h = []
    for h in sorted(waves_by_horizon):
        w = waves_by_horizon[h]
        B = w["budget_needed_usd"].cast(pl.Float64).to_numpy()
        H = w["budget_prod_usd"].cast(pl.Float64).to_numpy()
        D = w["deficit_usd"].cast(pl.Float64).to_numpy()
        diff = H - B
        per_h.append(
            {
                "horizon_ms": int(h),
                "waves": int(w.height),
                "deficit": float(D.sum()),
                "needed": float(B.sum()),
                "production": float(H.sum()),
                "overshoot": float(diff.sum()),
                "under_coverage": float(np.clip(-diff, 0, None).sum()),
                "excess": float(np.clip(diff, 0, None).sum()),
                "waves_over": int((diff > 0).sum()),
                "waves_under": int((diff < 0).sum()),
            }
        )
    hs = np.array([r["horizon_ms"] for r in per_h], dtype=float)
    os_ = np.array([r["overshoot"] for r in per_h], dtype=float)
    o0 = float(os_[hs == 0][0]) if (hs == 0).any() else math.nan
    mask = (hs >= 0) & (hs <= band_max_ms)
    disc = {}
    for tau in half_lives_ms:
        lam = math.log(2.0) / float(tau)
        wts = lam * np.exp(-lam * hs)
        norm = _trapz(wts, hs)
        od = _trapz(os_ * wts, hs) / norm if norm > 0 else math.nan
        disc[int(tau)] = {"O_disc": od, "DeltaO_disc": od - o0}
    return {
        "per_horizon": per_h,
        "O0": o0,
        "band": [float(os_[mask].min()), float(os_[mask].max())] if mask.any() else [math.nan, math.nan],
        "band_argmax_ms": int(hs[mask][np.argmax(os_[mask])]) if mask.any() else None,
        "band_max_ms": int(band_max_ms),
        "discounted": disc,
    }


def reproduce_chitra(out_dir: Path, gap_ms: int = 5000) -> dict:
    """Recompute Chitra et al.'s published overshoot figures from their per-wave inputs and compare.

    Returns ``ours`` (:func:`overshoot_from_waves`), ``published`` (the numbers read from
    ``headlines.json``, ``overshoot_robustness.json``, the sweep CSV and ``bad_debt_loser_waves.csv``)
    and ``abs_diff`` per headline figure (USD).
    """
    out_dir = Path(out_dir)
    ours = overshoot_from_waves(load_chitra_waves(out_dir, gap_ms))
    head = json.loads((out_dir / "headlines.json").read_text())
    rob = json.loads((out_dir / "overshoot_robustness.json").read_text())
    sweep = pl.read_csv(out_dir / f"eval_horizon_sweep_gap_ms={gap_ms}.csv").sort("eval_horizon_ms")
    losers = pl.read_csv(out_dir / "bad_debt_loser_waves.csv")
    s0 = sweep.filter(pl.col("eval_horizon_ms") == 0).row(0, named=True)
    published = {
        "waves": int(s0["num_waves"]),
        "deficit": float(s0["total_deficit_usd"]),
        "deficit_loser_waves": float(losers["deficit_usd"].sum()),
        "needed": float(s0["total_budget_needed_usd"]),
        "production": float(s0["total_H_prod_usd"]),
        "O0": float(head["headline"]["prod_overshoot_vs_needed_usd"]),
        "O0_robustness": float(rob["O0"]),
        "band": [float(rob["O_min_band"]), float(rob["O_max_band"])],
        "overshoot_by_horizon": {
            int(r["eval_horizon_ms"]): float(r["total_overshoot_prod_minus_needed_usd"])
            for r in sweep.iter_rows(named=True)
        },
        "production_by_horizon": {
            int(r["eval_horizon_ms"]): float(r["total_H_prod_usd"]) for r in sweep.iter_rows(named=True)
        },
        "discounted": {int(k): float(v["O_disc"]) for k, v in rob.get("discounted", {}).items()},
        "queue_total_overshoot_usd": float(head["headline"]["queue_total_overshoot_usd"]),
    }
    h0 = next(r for r in ours["per_horizon"] if r["horizon_ms"] == 0)
    diffs = {
        "waves": abs(h0["waves"] - published["waves"]),
        "deficit": abs(h0["deficit"] - published["deficit"]),
        "deficit_loser_waves": abs(h0["deficit"] - published["deficit_loser_waves"]),
        "needed": abs(h0["needed"] - published["needed"]),
        "production": abs(h0["production"] - published["production"]),
        "O0": abs(ours["O0"] - published["O0"]),
        "band_lo": abs(ours["band"][0] - published["band"][0]),
        "band_hi": abs(ours["band"][1] - published["band"][1]),
    }
    for r in ours["per_horizon"]:
        h = r["horizon_ms"]
        if h in published["overshoot_by_horizon"]:
            diffs[f"overshoot_{h}ms"] = abs(r["overshoot"] - published["overshoot_by_horizon"][h])
            diffs[f"production_{h}ms"] = abs(r["production"] - published["production_by_horizon"][h])
    for tau, v in ours["discounted"].items():
        if tau in published["discounted"]:
            diffs[f"O_disc_{tau}ms"] = abs(v["O_disc"] - published["discounted"][tau])
    # real-data.md §5.6: one loser's equity stock re-counted across waves
    ml = losers["max_loss_usd"].round(2)
    mode = ml.mode().sort()[-1]
    repeated = {
        "max_loss_usd": float(mode),
        "waves": int((ml == mode).sum()),
        "deficit_if_counted_once": float(h0["deficit"] - mode * max(int((ml == mode).sum()) - 1, 0)),
    }
    return {
        "ours": ours,
        "published": published,
        "abs_diff": diffs,
        "max_abs_diff": max(diffs.values()),
        "repeated_max_loss": repeated,
    }


def run_named_query(name: str, params: dict, con: duckdb.DuckDBPyConnection | None = None) -> pl.DataFrame:
    """Run ``sql/queries/<name>.sql`` with DuckDB named parameters (never interpolated)."""
    sql = (QUERIES / f"{name}.sql").read_text()
    own = con is None
    con = con or duckdb.connect()
    try:
        return con.execute(sql, params).pl()
    finally:
        if own:
            con.close()


def hmadl_aggregates(root: Path, top: int = 5) -> dict:
    """HyperMultiAssetedADL event aggregates and top-coin table (``root`` = the repository copy)."""
    root = Path(root)
    agg = run_named_query(
        "accounting_hmadl_event_aggregates",
        {
            "coin_csv": str(root / "canonical" / "adl_by_coin_REALTIME.csv"),
            "user_csv": str(root / "canonical" / "adl_by_user_REALTIME.csv"),
            "combined_csv": str(root / "history" / "combined_impact_by_ticker.csv"),
        },
    ).row(0, named=True)
    topc = run_named_query(
        "accounting_hmadl_top_coins",
        {"net_volume_csv": str(root / "canonical" / "adl_net_volume_full_12min.csv"), "top": int(top)},
    )
    return {"aggregates": agg, "top_coins": topc.to_dicts(), "caveats": list(HMADL_CAVEATS)}
