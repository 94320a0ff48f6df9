"""ADL actions read off the ordered fills: their segmentation into actions (steps), waves and legs, the
liquidator vaults that are never candidates, where the replay can stop, and each coin's leverage limit and
lot. The pools themselves are computed by the pass over the replay (:mod:`forensics.reconstruct.stream`).
"""

from __future__ import annotations

import polars as pl


def segment_steps(f: pl.DataFrame, gap_seconds: float = 5.0) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(steps, legs) from ordered fills (``order_fills`` output); one step per ADL *action*.

    An action is a run of consecutive ADL legs (replay order) of one transaction (``hash``) against one
    liquidated account, in one coin and side; where the data carry no hash (API fills, the zero hash) a
    run against one liquidated account, coin and side is one action. A vault that offloads several
    taken-over positions in one block and coin performs several actions, each ranked on the pool left by
    the ones before it. Hashes count only where several ADL legs share one (a source that hashes every
    trade apart names no action). ``step_group`` keeps the coarser (block, coin, liquidated account, side) grouping.

    ``steps``: step_id, step_group, wave_id, blk, block_number, time_ms, coin, liquidated_user,
    liquidated_side, adl_side, action_hash, legs, closed_size, notional_usd, mark_px, first_tid, K (replay
    ord of the first leg), adl_px (price of the first leg). ``legs``: step_id, user, ord, tid, sz, px.
    """
    keys = ["blk", "coin", "liquidated_user", "liquidated_side"]
    adl = (
        f.filter(pl.col("is_adl"))
        .sort("ord")
        .with_columns(
            pl.when(pl.col("side") == "B").then(pl.lit("short")).otherwise(pl.lit("long")).alias("adl_side"),
            pl.col("liquidated_user").fill_null("unknown"),
            pl.col("sz").cast(pl.Float64).alias("sz_f"),
        )
        .with_columns(
            pl.when(pl.col("adl_side") == "short")
            .then(pl.lit("long"))
            .otherwise(pl.lit("short"))
            .alias("liquidated_side")
        )
    )
    # a hash names a transaction only where several ADL legs share one; a source that gives every trade its
    # own hash (or none) says nothing about actions, and runs against one liquidated account are the actions
    hashed = adl.filter(pl.col("adl_hash").is_not_null())
    hash_names_actions = hashed.height > hashed["adl_hash"].n_unique()
    if not hash_names_actions:
        adl = adl.with_columns(pl.lit(None, adl["adl_hash"].dtype).alias("adl_hash"))
    changed = [pl.col(c).to_physical().ne_missing(pl.col(c).to_physical().shift(1)) for c in keys + ["adl_hash"]]
    adl = adl.with_columns(pl.any_horizontal(changed).cum_sum().alias("action"))
    steps = adl.group_by("action", maintain_order=True).agg(
        *[pl.col(c).first() for c in keys],
        pl.col("block_number").first(),
        pl.col("time_ms").first(),
        pl.col("adl_side").first(),
        pl.col("adl_hash").first().cast(pl.Utf8).alias("action_hash"),
        pl.len().cast(pl.Int64).alias("legs"),
        pl.col("sz_f").sum().alias("closed_size"),
        (pl.col("px_f") * pl.col("sz_f")).sum().alias("notional_usd"),
        pl.col("liq_mark_f").first().alias("mark_px"),
        pl.col("tid").first().alias("first_tid"),
        pl.col("ord").first().alias("K"),
        pl.col("px_f").first().alias("adl_px"),
    )
    # counter legs of the liquidated account (the vault) whose winner leg is missing from the data: the
    # actions of that block, coin and vault are incomplete (a dropped fill), and someone looks "skipped"
    # who was in fact deleveraged
    counter = f.filter(
        ~pl.col("is_adl")
        & (pl.col("liquidation_method") == "backstop")
        & (pl.col("user") == pl.col("liquidated_user"))
        & pl.col("tid").is_in(adl["tid"].implode()).not_()
    ).with_columns(
        pl.when(pl.col("side") == "A").then(pl.lit("long")).otherwise(pl.lit("short")).alias("liquidated_side")
    )
    # only counter legs of trades marked as ADL elsewhere in the block (a winner leg of the same block/coin);
    # a counter leg's transaction hash names its action, without one every action of the group is suspect
    counter = counter.join(steps.select(keys).unique(), on=keys, how="semi")
    if not hash_names_actions:
        counter = counter.with_columns(pl.lit(None, counter["adl_hash"].dtype).alias("adl_hash"))
    by_hash = (
        counter.filter(pl.col("adl_hash").is_not_null())
        .group_by(keys + ["adl_hash"])
        .agg(pl.len().cast(pl.Int64).alias("_by_hash"))
        .with_columns(pl.col("adl_hash").cast(pl.Utf8).alias("action_hash"))
    )
    by_group = (
        counter.filter(pl.col("adl_hash").is_null()).group_by(keys).agg(pl.len().cast(pl.Int64).alias("_by_group"))
    )
    steps = (
        steps.join(by_hash.drop("adl_hash"), on=keys + ["action_hash"], how="left", maintain_order="left")
        .join(by_group, on=keys, how="left", maintain_order="left")
        .with_columns(
            (pl.col("_by_hash").fill_null(0) + pl.col("_by_group").fill_null(0)).alias("unmatched_counter_legs"),
        )
        .drop("_by_hash", "_by_group")
        .with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias("step_id"))
    )
    # a group is named by its first action
    steps = steps.with_columns(pl.col("step_id").min().over(keys).alias("step_group"))
    steps = steps.with_columns(
        ((pl.col("time_ms") - pl.col("time_ms").shift(1)) > gap_seconds * 1000)
        .fill_null(False)
        .cast(pl.Int64)
        .cum_sum()
        .alias("wave_id")
    )
    legs = adl.join(steps.select("action", "step_id"), on="action", maintain_order="left").select(
        "step_id", "user", "ord", "tid", pl.col("sz_f").alias("sz"), "px_f"
    )
    return steps.drop("action"), legs


def liquidator_vaults(f: pl.DataFrame) -> pl.Series:
    """Accounts that act as the venue's liquidator (never ADL candidates): the liquidated side of every ADL
    leg (the vault offloading what it took over) and the taker of every backstop liquidation."""
    liq = pl.col("liquidated_user")
    backstop = (pl.col("liquidation_method") == "backstop") & liq.is_not_null() & (pl.col("user") != liq)
    return pl.concat(
        [
            f.filter(pl.col("is_adl") & liq.is_not_null())["liquidated_user"],
            f.filter(backstop & ~pl.col("is_adl"))["user"].cast(f["liquidated_user"].dtype),
        ]
    ).unique()


def through_last_adl(fills: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
    """The fills up to the last ADL leg's block (its time when blocks are missing): no later fill can
    change a pool, and the replay is most of the cost."""
    lf = fills.lazy()
    if "is_adl" not in lf.collect_schema().names():
        return lf
    last = (
        lf.filter(pl.col("is_adl"))
        .select(
            pl.col("block_number").max(),
            pl.col("time_ms").max(),
            pl.col("block_number").is_null().any().alias("no_block"),
        )
        .collect()
    )
    if last["time_ms"][0] is None:
        return lf
    no_block = last["no_block"][0] or lf.select(pl.col("block_number").is_null().any()).collect().item()
    if no_block:
        return lf.filter(pl.col("time_ms") <= last["time_ms"][0])
    return lf.filter(pl.col("block_number") <= last["block_number"][0])


def coin_meta(asset_ctxs: pl.DataFrame | None, positions: pl.DataFrame) -> pl.DataFrame:
    """(coin, max_lev, sz_decimals) from the latest asset context, else the snapshot's maxLeverage."""
    parts = []
    if asset_ctxs is not None and asset_ctxs.height:
        parts.append(
            asset_ctxs.sort("time_ms")
            .group_by("coin")
            .last()
            .select(
                "coin",
                pl.col("max_leverage").cast(pl.Float64).alias("max_lev"),
                pl.col("sz_decimals").cast(pl.Int64).alias("sz_decimals"),
            )
        )
    snap = positions.group_by("coin").agg(pl.col("max_lev").max().alias("max_lev_s"))
    if parts:
        return (
            parts[0]
            .join(snap, on="coin", how="full", coalesce=True)
            .with_columns(pl.coalesce("max_lev", "max_lev_s").alias("max_lev"))
            .drop("max_lev_s")
        )
    return snap.rename({"max_lev_s": "max_lev"}).with_columns(pl.lit(None, pl.Int64).alias("sz_decimals"))
