"""Per-wave haircut and overshoot accounting from fills (Chitra et al. definitions, adl-methods.md §2).

Inputs are normalized ``fills`` rows (``forensics.tables`` ``fills`` columns; Decimal or float).

* **Waves**: ADL legs (``is_adl``, the winners' legs) sorted by time; a new wave starts after a gap
  > ``gap_seconds`` (default 5 s), as Chitra's ``cluster_global_time`` and the simulator.
* **Needed budget** ``B_t = sum_k |markPx_k - px_k| |sz_k|`` over the wave's ADL legs (Chitra's
  bankruptcy-gap proxy; zero when ADL executes at mark).
* **Production haircut** ``H_t(h) = sum_i (e_i^noADL - e_i^ADL)_+`` at evaluation time ``t_end + h``.
  Two passes over the same fills with the price path held fixed, the second without the wave's ADL
  legs. With Chitra's replay state (cash moved by the recorded ``closedPnl - fee``, size moved by the
  fill, positions marked at the last traded price ``P``), the two passes differ only by the ADL legs,
  so per account ``e^noADL - e^ADL = sum_k (fee_k - closedPnl_k - d_k (P - entry))``; for an ADL leg
  (which always reduces a position) ``closedPnl_k = -d_k (px_k - entry)``, hence
  ``e^noADL - e^ADL = sum_k (fee_k - d_k (P_c(t_end + h) - px_k))`` (``d`` = signed size, + buy).
  :func:`two_pass_replay` runs the two passes literally; :func:`wave_accounting` uses the closed form.
  ``price="mark"`` evaluates every leg at its own ``markPx`` instead (then ``H = B`` whenever every gap
  is against the winner: the identity the tests check).
* **Loser deficit** ``D_t``: from ``loser_equity`` (user, time_ms, equity) when given, Chitra's rule
  (per liquidated user the minimum equity seen in the wave, ``sum (-min)_+``); otherwise from fills,
  the bankruptcy gap of the liquidated legs of non-ADL trades in ``[t_start - gap, t_end]``:
  per (liquidated user, block) ``(sum_k d_k (markPx_k - px_k))_+`` (exact for a backstop transfer at
  the bankruptcy price, as in the simulator; zero when the venue transfers at mark).
* **Payout ratio** of the deleveraged positions: realized ``sum closedPnl`` over the profit they had at
  mark, ``sum (closedPnl + d (px - markPx))`` ("paid $80 of $100").
* **Under-coverage** ``V_t = (B_t - H_t)_+``; overshoot ``O_t = H_t - B_t`` (signed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

HORIZONS_S: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0, 5.0)
GAP_SWEEP_S: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0)
_EPS = 1e-9


def _f(name: str) -> pl.Expr:
    return pl.col(name).cast(pl.Float64)


def prepare_fills(fills: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """Float working copy in replay order, with signed size ``d`` and ``trade_is_adl``."""
    lf = fills.lazy() if isinstance(fills, pl.DataFrame) else fills
    names = lf.collect_schema().names()
    defaults = {
        "block_number": pl.Int64,
        "event_index": pl.Int64,
        "liquidated_user": pl.Utf8,
        "liquidation_mark_px": pl.Float64,
        "liquidation_method": pl.Utf8,
        "is_adl": pl.Boolean,
        "is_liquidated_leg": pl.Boolean,
        "is_liquidation": pl.Boolean,
        "fee": pl.Float64,
        "closed_pnl": pl.Float64,
        "tid": pl.Int64,
    }
    for c, dt in defaults.items():
        if c not in names:
            lf = lf.with_columns(pl.lit(None, dtype=dt).alias(c))
    df = lf.select(
        "user",
        "coin",
        pl.col("time_ms").cast(pl.Int64),
        pl.col("block_number").cast(pl.Int64),
        pl.col("event_index").cast(pl.Int64),
        pl.col("tid").cast(pl.Int64),
        "side",
        _f("px").alias("px"),
        _f("sz").alias("sz"),
        _f("closed_pnl").fill_null(0.0).alias("closed_pnl"),
        _f("fee").fill_null(0.0).alias("fee"),
        _f("liquidation_mark_px").alias("mark_px"),
        pl.col("liquidated_user"),
        pl.col("liquidation_method"),
        pl.col("is_adl").fill_null(False),
        pl.col("is_liquidated_leg").fill_null(False),
        pl.col("is_liquidation").fill_null(False),
    ).collect()
    df = df.sort(["time_ms", "block_number", "event_index", "tid"], nulls_last=True)
    df = df.with_columns(
        pl.when(pl.col("side") == "B").then(pl.col("sz")).otherwise(-pl.col("sz")).alias("d"),
        pl.col("is_adl").any().over(["coin", "tid"]).alias("trade_is_adl"),
        pl.int_range(pl.len(), dtype=pl.Int64).alias("ord"),
    )
    return df


def cluster_waves(times_ms: np.ndarray, gap_ms: float) -> np.ndarray:
    """0-based wave index per (sorted) time: a new wave after an inter-event gap > ``gap_ms``."""
    t = np.asarray(times_ms, dtype=np.int64)
    if t.size == 0:
        return np.zeros(0, dtype=np.int64)
    cut = np.zeros(t.size, dtype=np.int64)
    cut[1:] = (np.diff(t) > gap_ms).astype(np.int64)
    return np.cumsum(cut)


def adl_legs(f: pl.DataFrame, gap_seconds: float = 5.0) -> pl.DataFrame:
    """The ADL legs with ``wave``, ``needed_usd`` and the profit-at-mark ``owed_usd`` per leg."""
    legs = f.filter(pl.col("is_adl")).sort("ord")
    waves = cluster_waves(legs["time_ms"].to_numpy(), gap_seconds * 1000.0)
    legs = legs.with_columns(pl.Series("wave", waves, dtype=pl.Int64))
    m = pl.col("mark_px").fill_null(pl.col("px"))
    return legs.with_columns(
        ((m - pl.col("px")).abs() * pl.col("sz").abs()).alias("needed_usd"),
        (pl.col("closed_pnl") + pl.col("d") * (pl.col("px") - m)).alias("owed_usd"),
        (pl.col("px") * pl.col("sz").abs()).alias("notional_usd"),
    )


def price_path(f: pl.DataFrame) -> pl.DataFrame:
    """Last traded price per (coin, time_ms): the realized price path both passes share."""
    return (
        f.group_by(["coin", "time_ms"])
        .agg(pl.col("px").sort_by("ord").last().alias("p_eval"))
        .sort(["coin", "time_ms"])
    )


def _eval_prices(legs: pl.DataFrame, path: pl.DataFrame, bounds: pl.DataFrame, horizon_ms: int) -> pl.DataFrame:
    q = (
        legs.select("wave", "coin")
        .unique()
        .join(bounds.select("wave", "end_ms"), on="wave")
        .with_columns((pl.col("end_ms") + horizon_ms).alias("t_eval"))
        .sort(["coin", "t_eval"])
    )
    return q.join_asof(
        path.rename({"time_ms": "t_eval"}), on="t_eval", by="coin", strategy="backward", check_sortedness=False
    ).select("wave", "coin", "p_eval")


def production_haircuts(
    legs: pl.DataFrame, f: pl.DataFrame, bounds: pl.DataFrame, horizon_ms: int = 0, price: str = "last_trade"
) -> pl.DataFrame:
    """Per (wave, user): ``haircut_usd = (sum_k fee_k - d_k (P - px_k))_+`` (two passes, closed form).

    ``price``: ``"last_trade"`` (Chitra: last print of any fill, ADL prints included), ``"market"`` (last
    print of a non-ADL trade) or ``"mark"`` (each leg's own ``markPx``)."""
    if price == "mark":
        lp = legs.with_columns(pl.col("mark_px").fill_null(pl.col("px")).alias("p_eval"))
    else:
        path = price_path(f if price == "last_trade" else f.filter(~pl.col("trade_is_adl")))
        lp = legs.join(_eval_prices(legs, path, bounds, horizon_ms), on=["wave", "coin"], how="left")
        lp = lp.with_columns(pl.col("p_eval").fill_null(pl.col("px")))
    lp = lp.with_columns((pl.col("fee") - pl.col("d") * (pl.col("p_eval") - pl.col("px"))).alias("delta"))
    return (
        lp.group_by(["wave", "user"])
        .agg(pl.col("delta").sum().alias("equity_delta_usd"))
        .with_columns(pl.col("equity_delta_usd").clip(lower_bound=0.0).alias("haircut_usd"))
    )


def two_pass_replay(
    f: pl.DataFrame,
    users: list[str],
    t_start_ms: int,
    t_end_ms: int,
    t_eval_ms: int,
    entry0: dict[tuple[str, str], float] | None = None,
    size0: dict[tuple[str, str], float] | None = None,
) -> dict[str, tuple[float, float]]:
    """Literal two-pass replay over ``[t_start, t_end]`` for ``users`` (Chitra's state: cash moved by
    ``closedPnl - fee``, size by the fill, entry fixed at the wave start, positions marked at the last
    traded price at ``t_eval``). Returns user -> (equity change with ADL, without ADL). The difference
    equals :func:`production_haircuts`'s ``equity_delta_usd`` (before the ``(.)_+``)."""
    entry0 = entry0 or {}
    size0 = dict(size0 or {})
    path = f.filter(pl.col("time_ms") <= t_eval_ms)
    last = dict(path.group_by("coin").agg(pl.col("px").sort_by("ord").last()).iter_rows())
    win = f.filter((pl.col("time_ms") >= t_start_ms) & (pl.col("time_ms") <= t_end_ms) & pl.col("user").is_in(users))
    out = {}
    rows: dict[str, list[dict]] = {u: [] for u in users}
    entry: dict[str, dict[str, float]] = {u: {k[1]: v for k, v in entry0.items() if k[0] == u} for u in users}
    for r in win.sort("ord").iter_rows(named=True):
        rows[r["user"]].append(r)
        # entry fixed at the wave start (Chitra): from the first fill seen; a reducing ADL leg implies
        # entry = px + closedPnl / d
        entry[r["user"]].setdefault(r["coin"], r["px"] + r["closed_pnl"] / r["d"] if r["is_adl"] else r["px"])
    for u in users:
        res = []
        for skip_adl in (False, True):
            cash, size = 0.0, {k[1]: v for k, v in size0.items() if k[0] == u}
            for r in rows[u]:
                if skip_adl and r["is_adl"]:
                    continue
                cash += r["closed_pnl"] - r["fee"]
                size[r["coin"]] = size.get(r["coin"], 0.0) + r["d"]
            res.append(cash + sum(s * (last[c] - entry[u].get(c, last[c])) for c, s in size.items()))
        out[u] = (res[0], res[1])
    return out


def loser_deficits(
    f: pl.DataFrame, bounds: pl.DataFrame, gap_ms: float, loser_equity: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Per wave: ``deficit_usd`` (D_t), ``max_loss_usd`` (largest single loser shortfall), ``losers``."""
    b = bounds.select("wave", "start_ms", "end_ms").sort("start_ms")
    if loser_equity is not None:
        le = loser_equity.select("user", pl.col("time_ms").cast(pl.Int64), pl.col("equity").cast(pl.Float64))
        le = le.sort("time_ms").join_asof(
            b, left_on="time_ms", right_on="start_ms", strategy="backward", check_sortedness=False
        )
        le = le.filter(pl.col("time_ms") <= pl.col("end_ms"))
        per = le.group_by(["wave", "user"]).agg(pl.col("equity").min().neg().clip(lower_bound=0).alias("loss"))
    else:
        liq = f.filter(pl.col("is_liquidated_leg") & ~pl.col("trade_is_adl") & pl.col("mark_px").is_not_null())
        liq = liq.with_columns((pl.col("d") * (pl.col("mark_px") - pl.col("px"))).alias("g"))
        per_blk = liq.group_by(["user", "block_number", "time_ms"]).agg(pl.col("g").sum())
        per_blk = per_blk.with_columns(pl.col("g").clip(lower_bound=0.0).alias("loss")).sort("time_ms")
        # attach to the first wave whose [start - gap, end] covers the block
        bb = b.with_columns((pl.col("start_ms") - int(gap_ms)).alias("lo"))
        per_blk = per_blk.join_asof(
            bb.sort("lo"), left_on="time_ms", right_on="lo", strategy="forward", check_sortedness=False
        )
        # forward finds the next wave opening after the block; keep blocks inside [lo, end]
        per_blk = per_blk.join_asof(
            bb.sort("lo").rename({"wave": "wave_b", "lo": "lo_b", "start_ms": "s_b", "end_ms": "end_b"}),
            left_on="time_ms",
            right_on="lo_b",
            strategy="backward",
            check_sortedness=False,
        )
        per_blk = per_blk.with_columns(
            pl.when(pl.col("time_ms") <= pl.col("end_b")).then(pl.col("wave_b")).otherwise(None).alias("wave")
        )
        per = per_blk.filter(pl.col("wave").is_not_null()).group_by(["wave", "user"]).agg(pl.col("loss").sum())
    return per.group_by("wave").agg(
        pl.col("loss").sum().alias("deficit_usd"),
        pl.col("loss").max().alias("max_loss_usd"),
        (pl.col("loss") > 0).sum().cast(pl.Int64).alias("losers"),
    )


@dataclass
class WaveAccounting:
    """Output of :func:`wave_accounting`."""

    waves: pl.DataFrame  # one row per wave (see forensics.tables.ADL_WAVES)
    haircuts: pl.DataFrame  # one row per (wave, user) (forensics.tables.ADL_HAIRCUTS)
    legs: pl.DataFrame  # the ADL legs with wave, needed_usd, owed_usd
    totals: dict


def gini(x: np.ndarray) -> float:
    x = np.sort(np.asarray(x, dtype=float))
    x = x[x > 0]
    if x.size == 0:
        return 0.0
    n = x.size
    return float((2 * np.arange(1, n + 1) - n - 1).dot(x) / (n * x.sum()))


def top_share(x: np.ndarray, frac: float = 0.01) -> float:
    """Share of the total held by the top ``frac`` of the (positive) entries (at least one entry)."""
    x = np.sort(np.asarray(x, dtype=float))[::-1]
    x = x[x > 0]
    if x.size == 0:
        return 0.0
    k = max(1, int(np.ceil(frac * x.size)))
    return float(x[:k].sum() / x.sum())


def wave_accounting(
    fills: pl.DataFrame | pl.LazyFrame,
    *,
    gap_seconds: float = 5.0,
    horizons_s: tuple[float, ...] = HORIZONS_S,
    price: str = "last_trade",
    loser_equity: pl.DataFrame | None = None,
    capacity: pl.DataFrame | None = None,
    from_ms: int | None = None,
    to_ms: int | None = None,
) -> WaveAccounting:
    """Accounting per wave. ``capacity`` (optional): per (wave, user) ``capacity_usd`` (positive PnL)
    and ``equity_usd`` from the reconstructed pools (:func:`forensics.accounting.policies.candidates`);
    without it the capacity is the profit at mark of the deleveraged positions (``owed_usd``)."""
    horizons_s = tuple(sorted(set(horizons_s) | {0.0}))  # horizon 0 is the headline
    f = prepare_fills(fills)
    gap_ms = gap_seconds * 1000.0
    legs = adl_legs(f, gap_seconds)
    if from_ms is not None:
        legs = legs.filter(pl.col("time_ms") >= from_ms)
    if to_ms is not None:
        legs = legs.filter(pl.col("time_ms") <= to_ms)
    if legs.height:  # renumber after windowing
        legs = legs.with_columns(pl.col("wave").rank("dense").cast(pl.Int64).sub(1))
    bounds = (
        legs.group_by("wave")
        .agg(
            pl.col("time_ms").min().alias("start_ms"),
            pl.col("time_ms").max().alias("end_ms"),
            pl.len().cast(pl.Int64).alias("adl_legs"),
            pl.col("user").n_unique().cast(pl.Int64).alias("winners"),
            pl.col("coin").n_unique().cast(pl.Int64).alias("coins"),
            pl.col("notional_usd").sum().alias("adl_notional_usd"),
            pl.col("needed_usd").sum().alias("needed_usd"),
            pl.col("closed_pnl").sum().alias("realized_pnl_usd"),
            pl.col("owed_usd").sum().alias("owed_usd"),
        )
        .sort("wave")
    )
    w = bounds
    hc = None
    for h in horizons_s:
        hm = int(round(h * 1000))
        ph = production_haircuts(legs, f, bounds, hm, price)
        tag = f"{hm}ms"
        per_w = ph.group_by("wave").agg(pl.col("haircut_usd").sum().alias(f"production_{tag}"))
        w = w.join(per_w, on="wave", how="left")
        ph = ph.select(
            "wave",
            "user",
            pl.col("haircut_usd").alias(f"haircut_{tag}"),
            pl.col("equity_delta_usd").alias(f"equity_delta_{tag}"),
        )
        hc = ph if hc is None else hc.join(ph, on=["wave", "user"], how="full", coalesce=True)
    d = loser_deficits(f, bounds, gap_ms, loser_equity)
    w = w.join(d, on="wave", how="left").with_columns(
        pl.col("deficit_usd").fill_null(0.0), pl.col("max_loss_usd").fill_null(0.0), pl.col("losers").fill_null(0)
    )
    per_user = legs.group_by(["wave", "user"]).agg(
        pl.len().cast(pl.Int64).alias("legs"),
        pl.col("coin").unique().sort().str.join(",").alias("coins"),
        pl.col("notional_usd").sum().alias("closed_notional_usd"),
        pl.col("needed_usd").sum().alias("needed_usd"),
        pl.col("closed_pnl").sum().alias("realized_pnl_usd"),
        pl.col("owed_usd").sum().alias("owed_usd"),
    )
    hc = per_user.join(hc, on=["wave", "user"], how="left")
    if capacity is not None:
        hc = hc.join(capacity.select("wave", "user", "capacity_usd", "equity_usd"), on=["wave", "user"], how="left")
    else:
        hc = hc.with_columns(
            pl.lit(None, pl.Float64).alias("capacity_usd"), pl.lit(None, pl.Float64).alias("equity_usd")
        )
    hc = hc.with_columns(pl.coalesce("capacity_usd", pl.col("owed_usd").clip(lower_bound=0.0)).alias("capacity_usd"))
    hc = hc.with_columns(
        pl.when(pl.col("owed_usd").abs() > _EPS)
        .then(pl.col("realized_pnl_usd") / pl.col("owed_usd"))
        .otherwise(None)
        .alias("payout_ratio"),
        pl.when(pl.col("equity_usd") > _EPS)
        .then(pl.col("haircut_0ms") / pl.col("equity_usd"))
        .otherwise(None)
        .alias("haircut_share_of_equity"),
    ).sort(["wave", "user"])
    # capacity of the whole eligible pool per wave when given, else of the winners
    cap_w = (
        capacity.group_by("wave").agg(pl.col("capacity_usd").sum().alias("capacity_usd"))
        if capacity is not None
        else hc.group_by("wave").agg(pl.col("capacity_usd").sum())
    )
    w = w.join(cap_w, on="wave", how="left")
    # concentration, PTSR / PMR of production at horizon 0
    conc = []
    for (wid,), g in hc.partition_by("wave", as_dict=True).items():
        h0 = g["haircut_0ms"].fill_null(0.0).to_numpy()
        cap = g["capacity_usd"].fill_null(0.0).to_numpy()
        surv = float(np.max(np.clip(cap - h0, 0, None))) if len(cap) else 0.0
        conc.append(
            {
                "wave": wid,
                "accounts_touched": int((h0 > _EPS).sum()),
                "gini": gini(h0),
                "top1pct_share": top_share(h0),
                "largest_haircut_usd": float(h0.max()) if len(h0) else 0.0,
                "top_surviving_endowment_usd": surv,
            }
        )
    w = w.join(
        pl.DataFrame(
            conc,
            schema={
                "wave": pl.Int64,
                "accounts_touched": pl.Int64,
                "gini": pl.Float64,
                "top1pct_share": pl.Float64,
                "largest_haircut_usd": pl.Float64,
                "top_surviving_endowment_usd": pl.Float64,
            },
        ),
        on="wave",
        how="left",
    )
    w = w.with_columns(
        (pl.col("production_0ms") - pl.col("needed_usd")).alias("overshoot_usd"),
        (pl.col("needed_usd") - pl.col("production_0ms")).clip(lower_bound=0.0).alias("under_coverage_usd"),
        pl.min_horizontal("deficit_usd", "capacity_usd").alias("needed_shortfall_usd"),
        pl.when(pl.col("owed_usd").abs() > _EPS)
        .then(pl.col("realized_pnl_usd") / pl.col("owed_usd"))
        .otherwise(None)
        .alias("payout_ratio"),
        pl.when(pl.col("production_0ms") > _EPS)
        .then(pl.col("top_surviving_endowment_usd") / pl.col("production_0ms"))
        .otherwise(None)
        .alias("ptsr"),
        pl.when(pl.col("max_loss_usd") > _EPS)
        .then(pl.col("top_surviving_endowment_usd") / pl.col("max_loss_usd"))
        .otherwise(None)
        .alias("pmr"),
    )
    for h in horizons_s:
        tag = f"{int(round(h * 1000))}ms"
        w = w.with_columns((pl.col(f"production_{tag}") - pl.col("needed_usd")).alias(f"overshoot_{tag}"))
    totals = summarize(w, horizons_s)
    return WaveAccounting(w.sort("wave"), hc, legs, totals)


def summarize(w: pl.DataFrame, horizons_s: tuple[float, ...] = HORIZONS_S) -> dict:
    """Totals over waves: deficit, needed, production and overshoot at horizon 0, band over horizons."""
    tags = [f"{int(round(h * 1000))}ms" for h in horizons_s]
    over = {t: float(w[f"overshoot_{t}"].sum()) for t in tags}
    vals = list(over.values())
    return {
        "waves": int(w.height),
        "deficit": float(w["deficit_usd"].sum()),
        "needed": float(w["needed_usd"].sum()),
        "production": float(w["production_0ms"].sum()) if "production_0ms" in w.columns else None,
        "overshoot": over.get("0ms"),
        "overshoot_by_horizon": over,
        "overshoot_band": [min(vals), max(vals)] if vals else [None, None],
        "under_coverage": float(w["under_coverage_usd"].sum()),
        "adl_legs": int(w["adl_legs"].sum()),
        "adl_notional": float(w["adl_notional_usd"].sum()),
        "payout_ratio": (
            float(w["realized_pnl_usd"].sum() / w["owed_usd"].sum()) if abs(float(w["owed_usd"].sum())) > _EPS else None
        ),
    }


def gap_sweep(
    fills: pl.DataFrame | pl.LazyFrame,
    gaps_s: tuple[float, ...] = GAP_SWEEP_S,
    horizons_s: tuple[float, ...] = (0.0,),
    **kw,
) -> pl.DataFrame:
    """Totals per wave-gap threshold (0.25-10 s by default): waves, deficit, needed, production, overshoot."""
    rows = []
    for g in gaps_s:
        t = wave_accounting(fills, gap_seconds=g, horizons_s=horizons_s, **kw).totals
        rows.append(
            {
                "gap_s": g,
                "waves": t["waves"],
                "deficit": t["deficit"],
                "needed": t["needed"],
                "production": t["production"],
                "overshoot": t["overshoot"],
            }
        )
    return pl.DataFrame(rows)
