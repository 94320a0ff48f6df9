"""Mark prices at given instants: as-of joins over the venue's own marks, last trade as the fallback.

Observations per coin: ``asset_ctxs.mark_px`` (source ``asset_ctxs``) and ``liquidation.markPx`` of
liquidation / ADL legs (source ``adl_mark``). The latest observation at or before the instant wins;
at equal times the asset context wins. Coins with no mark observation up to the instant use the last
trade price before it (``last_trade``).
"""

from __future__ import annotations

import polars as pl

_PRIORITY = {"asset_ctxs": 0, "adl_mark": 1}


def mark_observations(fills: pl.DataFrame, asset_ctxs: pl.DataFrame | None) -> pl.DataFrame:
    """(coin, t_ms, mark, mark_source, prio) sorted by (t_ms, prio)."""
    parts = []
    if asset_ctxs is not None and asset_ctxs.height:
        parts.append(
            asset_ctxs.select(
                pl.col("coin").cast(pl.Categorical),
                pl.col("time_ms").alias("t_ms"),
                pl.col("mark_px").cast(pl.Float64).alias("mark"),
            )
            .filter(pl.col("mark").is_not_null() & (pl.col("mark") > 0))
            .with_columns(pl.lit("asset_ctxs").alias("mark_source"), pl.lit(0).alias("prio"))
        )
    lm = (
        fills.filter(pl.col("liq_mark_f").is_not_null() & (pl.col("liq_mark_f") > 0))
        .group_by("coin", "time_ms")
        .agg(pl.col("liq_mark_f").sort_by("ord").last().alias("mark"))
        .select(pl.col("coin").cast(pl.Categorical), pl.col("time_ms").alias("t_ms"), "mark")
        .with_columns(pl.lit("adl_mark").alias("mark_source"), pl.lit(1).alias("prio"))
    )
    parts.append(lm)
    obs = pl.concat(parts, how="vertical_relaxed")
    # one observation per (coin, t): the highest priority
    obs = obs.sort(["coin", "t_ms", "prio"]).unique(["coin", "t_ms"], keep="first", maintain_order=True)
    return obs.sort("t_ms")


def marks_at(
    instants: pl.DataFrame, obs: pl.DataFrame, fills: pl.DataFrame, *, max_mark_age_ms: int | None = None
) -> pl.DataFrame:
    """``instants``: (coin, t_ms, ord) rows; returns them with ``mark`` and ``mark_source``.

    ``ord`` bounds the last-trade fallback to fills strictly before the instant in replay order.
    ``max_mark_age_ms``: a mark observation older than this is replaced by a later last trade, when
    there is one (``None``: marks never go stale, the last trade is used only where no mark exists)."""
    inst = instants.with_columns(pl.col("t_ms").cast(pl.Int64)).sort("t_ms")
    o = obs.select("coin", "t_ms", pl.col("t_ms").alias("obs_ms"), "mark", "mark_source")
    out = inst.join_asof(o, on="t_ms", by="coin", strategy="backward", check_sortedness=False)
    trades = fills.select("coin", "ord", pl.col("px_f").alias("trade_px"), pl.col("time_ms").alias("trade_ms")).sort(
        "ord"
    )
    out = out.sort("ord").join_asof(
        trades, on="ord", by="coin", strategy="backward", allow_exact_matches=False, check_sortedness=False
    )
    use_trade = pl.col("mark").is_null() & pl.col("trade_px").is_not_null()
    if max_mark_age_ms is not None:
        use_trade = use_trade | (
            pl.col("trade_px").is_not_null()
            & ((pl.col("t_ms") - pl.col("obs_ms")) > max_mark_age_ms)
            & (pl.col("trade_ms") > pl.col("obs_ms"))
        )
    return out.with_columns(
        pl.when(use_trade).then(pl.col("trade_px")).otherwise(pl.col("mark")).alias("mark"),
        pl.when(use_trade).then(pl.lit("last_trade")).otherwise(pl.col("mark_source")).alias("mark_source"),
    ).drop("trade_px", "trade_ms", "obs_ms")
