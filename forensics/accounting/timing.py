"""Cascade timing and backstop coverage from fills (and, when present, vault_equity / account snapshots).

* :func:`cascade_timeline`: per coin and overall, first liquidation, first ADL and the delay; per block
  (or ms when no block) bursts of liquidated legs and ADL legs; liquidation -> ADL matching per
  (block, coin) (ADL quantity vs liquidated quantity, whether every liquidation precedes every ADL in
  the block's event order); per-asset isolation (ADL coins of a block that had no liquidation of the
  same coin in that block or earlier).
* :func:`backstop_coverage`: the backstop vault over time from its own fills (position notional at
  the last price, realized PnL, cash flow), ``vault_equity`` points when ingested, and the coverage
  ratio ``vault equity / cumulative loser deficit`` (``R_t = (D_t - IF_t)_+`` is the breach series).
"""

from __future__ import annotations

import polars as pl

from .core import prepare_fills


def cascade_timeline(fills: pl.DataFrame | pl.LazyFrame, *, vault: str | None = None) -> dict:
    f = prepare_fills(fills)
    blk = pl.coalesce(pl.col("block_number"), pl.col("time_ms"))
    liq = f.filter(pl.col("is_liquidated_leg") & ~pl.col("trade_is_adl")).with_columns(blk.alias("blk"))
    adl = f.filter(pl.col("is_adl")).with_columns(blk.alias("blk"))
    out: dict = {"liquidated_legs": liq.height, "adl_legs": adl.height}
    out["first_liquidation_ms"] = int(liq["time_ms"].min()) if liq.height else None
    out["first_adl_ms"] = int(adl["time_ms"].min()) if adl.height else None
    out["delay_s"] = (
        (out["first_adl_ms"] - out["first_liquidation_ms"]) / 1000.0
        if out["first_adl_ms"] is not None and out["first_liquidation_ms"] is not None
        else None
    )
    out["liquidations_before_first_adl"] = (
        int((liq["time_ms"] < out["first_adl_ms"]).sum()) if out["first_adl_ms"] is not None else liq.height
    )
    per_coin = (
        liq.group_by("coin")
        .agg(pl.col("time_ms").min().alias("first_liquidation_ms"))
        .join(
            adl.group_by("coin").agg(pl.col("time_ms").min().alias("first_adl_ms")),
            on="coin",
            how="full",
            coalesce=True,
        )
        .with_columns(((pl.col("first_adl_ms") - pl.col("first_liquidation_ms")) / 1000.0).alias("delay_s"))
        .sort("coin")
    )
    lb = liq.group_by(["blk", "coin"]).agg(
        pl.len().alias("liq_legs"),
        pl.col("sz").abs().sum().alias("liq_size"),
        pl.col("ord").max().alias("liq_last_ord"),
        pl.col("time_ms").min(),
    )
    ab = adl.group_by(["blk", "coin"]).agg(
        pl.len().alias("adl_legs"),
        pl.col("sz").abs().sum().alias("adl_size"),
        pl.col("ord").min().alias("adl_first_ord"),
        pl.col("time_ms").min().alias("adl_time_ms"),
    )
    bc = (
        lb.join(ab, on=["blk", "coin"], how="full", coalesce=True)
        .with_columns(
            pl.coalesce("time_ms", "adl_time_ms").alias("time_ms"),
            pl.col("liq_legs").fill_null(0),
            pl.col("adl_legs").fill_null(0),
            pl.col("liq_size").fill_null(0.0),
            pl.col("adl_size").fill_null(0.0),
        )
        .drop("adl_time_ms")
    )
    both = bc.filter((pl.col("liq_legs") > 0) & (pl.col("adl_legs") > 0))
    out["shared_block_coins"] = both.height
    out["liquidations_precede_adl"] = int((both["liq_last_ord"] < both["adl_first_ord"]).sum()) if both.height else 0
    # isolation: ADL in a coin with no liquidation of that coin in the same block or earlier
    first_liq = liq.group_by("coin").agg(pl.col("blk").min().alias("first_liq_blk"))
    iso = ab.join(first_liq, on="coin", how="left")
    out["adl_block_coins"] = ab.height
    out["cross_asset_cases"] = int(
        iso.filter(pl.col("first_liq_blk").is_null() | (pl.col("first_liq_blk") > pl.col("blk"))).height
    )
    bursts = (
        bc.group_by("blk")
        .agg(
            pl.col("time_ms").min(),
            pl.col("liq_legs").sum(),
            pl.col("adl_legs").sum(),
            pl.col("coin").n_unique().alias("coins"),
        )
        .sort("blk")
    )
    big = bursts.sort(["adl_legs", "liq_legs"], descending=True).head(1)
    out["largest_burst"] = big.to_dicts()[0] if big.height else None
    out["per_coin"] = per_coin
    out["block_coin"] = bc.sort(["blk", "coin"])
    out["bursts"] = bursts
    return out


def timeline_rows(t: dict, venue: str, waves: pl.DataFrame | None = None) -> pl.DataFrame:
    """``cascade_timeline`` layout rows: one per (block, coin) with liquidation/ADL legs and the wave."""
    bc = t["block_coin"]
    if bc.height == 0:
        return pl.DataFrame()
    rows = bc.with_columns(
        pl.lit(venue).alias("venue"),
        ((pl.col("time_ms") - (t["first_liquidation_ms"] or 0)) / 1000.0).alias("since_first_liquidation_s"),
        (pl.col("liq_last_ord") < pl.col("adl_first_ord")).alias("liquidations_first"),
        pl.col("blk").cast(pl.Int64).alias("block"),
    )
    if waves is not None and waves.height:
        wv = waves.select("wave", "start_ms", "end_ms").sort("start_ms")
        rows = rows.sort("time_ms").join_asof(
            wv, left_on="time_ms", right_on="start_ms", strategy="backward", check_sortedness=False
        )
        rows = rows.with_columns(
            pl.when(pl.col("time_ms") <= pl.col("end_ms")).then(pl.col("wave")).otherwise(None).alias("wave")
        )
    else:
        rows = rows.with_columns(pl.lit(None, pl.Int64).alias("wave"))
    return rows.select(
        "venue",
        "block",
        "time_ms",
        "coin",
        "liq_legs",
        "liq_size",
        "adl_legs",
        "adl_size",
        "liquidations_first",
        "since_first_liquidation_s",
        pl.col("wave").cast(pl.Int64),
    ).sort(["time_ms", "coin"])


def backstop_coverage(
    fills: pl.DataFrame | pl.LazyFrame,
    vault: str,
    *,
    deficits: pl.DataFrame | None = None,
    vault_equity: pl.DataFrame | None = None,
    vault_cash0: float | None = None,
    bucket_ms: int = 1000,
) -> pl.DataFrame:
    """Per time bucket: the vault's position notional at last price, cumulative realized PnL minus fees,
    unrealized PnL vs its replayed entry (average cost), equity estimate ``cash0 + realized + uPnL`` when
    ``vault_cash0`` is known, the latest ``vault_equity`` point, cumulative deficit and coverage ratio."""
    f = prepare_fills(fills)
    v = f.filter(pl.col("user") == vault).sort("ord")
    if v.height == 0:
        return pl.DataFrame()
    v = v.with_columns((pl.col("time_ms") // bucket_ms * bucket_ms).alias("t"))
    v = v.with_columns(
        pl.col("d").cum_sum().over("coin").alias("pos"),
        (pl.col("closed_pnl") - pl.col("fee")).cum_sum().alias("realized"),
        (-(pl.col("d") * pl.col("px"))).cum_sum().over("coin").alias("cash_flow_coin"),
    )
    # per coin at the end of each bucket: position and cash flow; value = cash_flow + pos x last px
    path = f.group_by(["coin", "time_ms"]).agg(pl.col("px").sort_by("ord").last()).sort(["coin", "time_ms"])
    ts = v.select("t").unique().sort("t")
    per = v.group_by(["coin", "t"]).agg(pl.col("pos").last(), pl.col("cash_flow_coin").last()).sort("t")
    grid = ts.join(v.select("coin").unique(), how="cross").sort("t")
    grid = grid.join_asof(
        per.rename({"t": "t_k"}).sort("t_k"),
        left_on="t",
        right_on="t_k",
        by="coin",
        strategy="backward",
        check_sortedness=False,
    )
    grid = grid.with_columns((pl.col("t") + bucket_ms - 1).alias("t_end")).sort("t_end")
    grid = grid.join_asof(
        path.rename({"time_ms": "t_end"}), on="t_end", by="coin", strategy="backward", check_sortedness=False
    )
    grid = grid.with_columns(pl.col("pos").fill_null(0.0), pl.col("cash_flow_coin").fill_null(0.0))
    agg = grid.group_by("t").agg(
        (pl.col("pos").abs() * pl.col("px")).sum().alias("position_notional_usd"),
        (pl.col("cash_flow_coin") + pl.col("pos") * pl.col("px")).sum().alias("trading_pnl_usd"),
    )
    real = v.group_by("t").agg(pl.col("realized").last().alias("realized_pnl_usd"), pl.len().alias("fills"))
    out = agg.join(real, on="t", how="left").sort("t").with_columns(pl.col("fills").fill_null(0))
    out = out.with_columns(pl.col("realized_pnl_usd").forward_fill())
    out = out.with_columns(
        (
            pl.lit(vault_cash0) + pl.col("trading_pnl_usd") if vault_cash0 is not None else pl.lit(None, pl.Float64)
        ).alias("equity_est_usd")
    )
    if vault_equity is not None and vault_equity.height:
        ve = (
            vault_equity.filter(pl.col("vault") == vault)
            .select(
                pl.col("time_ms").cast(pl.Int64).alias("t"),
                pl.col("account_value").cast(pl.Float64).alias("vault_equity_usd"),
            )
            .sort("t")
        )
        out = out.join_asof(ve, on="t", strategy="backward", check_sortedness=False)
    else:
        out = out.with_columns(pl.lit(None, pl.Float64).alias("vault_equity_usd"))
    if deficits is not None and deficits.height:
        dd = deficits.select(pl.col("end_ms").cast(pl.Int64).alias("t"), pl.col("deficit_usd")).sort("t")
        dd = dd.with_columns(pl.col("deficit_usd").cum_sum().alias("cumulative_deficit_usd")).drop("deficit_usd")
        out = out.join_asof(dd, on="t", strategy="backward", check_sortedness=False).with_columns(
            pl.col("cumulative_deficit_usd").fill_null(0.0)
        )
    else:
        out = out.with_columns(pl.lit(0.0).alias("cumulative_deficit_usd"))
    eq = pl.coalesce("vault_equity_usd", "equity_est_usd")
    return (
        out.with_columns(
            pl.when(pl.col("cumulative_deficit_usd") > 0)
            .then(eq / pl.col("cumulative_deficit_usd"))
            .otherwise(None)
            .alias("coverage_ratio"),
            (pl.col("cumulative_deficit_usd") - eq.fill_null(0.0))
            .clip(lower_bound=0.0)
            .alias("residual_shortfall_usd"),
        )
        .rename({"t": "time_ms"})
        .sort("time_ms")
    )


def hlp_snapshot_identity(csv_path) -> dict:
    """lzjackm/hlp-cascade-handoff ``vault_pnl_snapshots.csv``: max |account_value - flow_cum -
    pnl_since_inception| over the ``scope = 'all'`` rows (the ``perp`` scope excludes spot and does not close)."""
    df = pl.read_csv(csv_path).filter(pl.col("scope") == "all")
    r = (df["account_value"] - df["flow_cum"] - df["pnl_since_inception"]).abs()
    return {"rows": df.height, "vaults": df["vault_name"].n_unique(), "max_abs_residual_usd": float(r.max())}
