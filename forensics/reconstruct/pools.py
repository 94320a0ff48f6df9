"""ADL steps and their eligible candidate pools, in the ``adl_steps`` / ``adl_pools`` layouts.

Step = the ADL legs (``is_adl``, the winners' legs) of one (block, coin, liquidated account, side of
the liquidated position), ordered by tid. Waves: consecutive steps closer than ``gap_seconds`` share a
wave (same rule as the simulator and Chitra et al.).

Pool of a step = every account with an open position in the coin on the side opposite to the
liquidated position at the instant just before the step's first leg in replay order (so after the
earlier steps of the same block), excluding every liquidator vault (:func:`liquidator_vaults`: an
account that takes over positions by backstop liquidation or is deleveraged against), and excluding
accounts whose account value at mark is not positive (as the simulator and Hyperliquid do: an account
below zero is itself being liquidated). Interval join: every position state ``[ord, next_ord)`` covers
the steps with ``ord < K <= next_ord``, found with one ``searchsorted`` over the steps sorted by (coin,
side, K); a candidate's other positions and its wallet at the step are ``searchsorted`` lookups in the
events sorted by (pair, ord), issued in ascending key order. Names are joined through their categorical
codes (integer tables, no string hashing). No Python loop per event or per row, and fills after the last
ADL block are never replayed.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from forensics.tables import ADL_POOLS, ADL_STEPS

from .arrays import codes, gather_or_null, position_in, run_firsts, stable_argsort
from .marks import mark_observations, marks_at
from .replay import build_state, perp_fills


def _lazy_df(df: pl.DataFrame | pl.LazyFrame | None) -> pl.DataFrame | None:
    if df is None:
        return None
    return df.collect() if isinstance(df, pl.LazyFrame) else df


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


def _sort_key(group: np.ndarray, ord_: np.ndarray) -> np.ndarray:
    """One int64 per row ordering by (group, ord); ord >= -1 and below 2**31."""
    return (group.astype(np.int64, copy=False) << 32) | (ord_.astype(np.int64, copy=False) + 1)


def _latest_before(keys: np.ndarray, group: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Per query, the row of ``keys`` (sorted ``_sort_key``) of the same group with the largest ord < K;
    -1 where there is none."""
    if len(keys) == 0:
        return np.full(len(group), -1, dtype=np.int64)
    idx = np.searchsorted(keys, _sort_key(group, K), side="left") - 1
    # keys are non-negative, so a group of -1 (no such group) never matches
    ok = (idx >= 0) & ((keys[np.maximum(idx, 0)] >> 32) == group)
    return np.where(ok, idx, -1)


def _interval_join(steps: pl.DataFrame, ev: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(step_id, event row) where the event's position state ``[ord, next_ord)`` holds just before the step
    (``ord < K <= next_ord``) on the step's ADL side: one ``searchsorted`` over the steps sorted by
    (coin, side, K), each state's steps being a contiguous slice of them."""
    st_group = codes(steps["coin"]) * 2 + (steps["adl_side"] == "long").to_numpy()
    st_key = _sort_key(st_group, steps["K"].to_numpy())
    by_key = np.argsort(st_key, kind="stable")
    st_key, st_id = st_key[by_key], steps["step_id"].to_numpy()[by_key]
    size = ev["size"].to_numpy()
    rows = np.flatnonzero(size != 0)
    group = codes(ev["coin"])[rows] * 2 + (size[rows] > 0)
    # next_ord is BIG_ORD for a pair's last state: beyond every K
    last = np.minimum(ev["next_ord"].to_numpy()[rows], 2**31)
    lo = np.searchsorted(st_key, _sort_key(group, ev["ord"].to_numpy()[rows]), side="right")
    n = np.searchsorted(st_key, _sort_key(group, last), side="right") - lo
    keep = n > 0
    lo, n, rows = lo[keep], n[keep], rows[keep]
    return st_id[np.repeat(lo, n) + _ranges(n)], np.repeat(rows, n)


def _ranges(n: np.ndarray) -> np.ndarray:
    """0, 1, ..., n[0]-1, 0, 1, ..., n[1]-1, ...: offsets inside groups of sizes ``n``."""
    return np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)


def _by_step_and_name(step_id: np.ndarray, user: pl.Series) -> np.ndarray:
    """Row order by (step_id, user name), the names compared as text (as a categorical sort does) by
    ranking the distinct names only. (step_id, user) must be unique."""
    uniq, first_row, inverse = np.unique(codes(user), return_index=True, return_inverse=True)
    rank = np.empty(len(uniq), dtype=np.int64)
    rank[user.gather(first_row).cast(pl.Utf8).arg_sort().to_numpy()] = np.arange(len(uniq))
    return np.argsort(step_id * len(uniq) + rank[inverse])


def _holdings(
    ev: pl.DataFrame, pool_user: np.ndarray, K: np.ndarray, by_user: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(candidate row, event row): for every pair of each candidate's user with an event before the
    candidate's step (``K``), the pair's latest such event. Pair-major: each candidate meets its pairs in
    pair order, the order its sums have always taken their terms in.

    Events are grouped by pair in user-code order, so a user's pairs are one slice of them. Each pair meets its
    user's candidates in K order (``by_user``: by user code, then K), which makes the searched keys ascending:
    searchsorted then walks the events once instead of jumping around them."""
    pair_id = ev["pair_id"].to_numpy()
    pair_user = codes(ev["user"])[np.flatnonzero(run_firsts(pair_id))]
    rows_per_user = np.bincount(pool_user, minlength=int(pair_user.max(initial=0)) + 1)
    first_of_user = np.cumsum(rows_per_user) - rows_per_user
    n = rows_per_user[pair_user]
    cand = by_user[np.repeat(first_of_user[pair_user], n) + _ranges(n)]
    at = _latest_before(_sort_key(pair_id, ev["ord"].to_numpy()), np.repeat(np.arange(len(pair_user)), n), K[cand])
    # a pair without any event before the step is not held (and its mode is unknown)
    return cand[at >= 0], at[at >= 0]


def _step_coin_marks(
    step_id: np.ndarray,
    ev_row: np.ndarray,
    ev: pl.DataFrame,
    steps: pl.DataFrame,
    obs: pl.DataFrame,
    f: pl.DataFrame,
    max_mark_age_ms: int | None,
) -> tuple[pl.DataFrame, np.ndarray]:
    """Marks at each distinct (step, coin of the event row) of the given rows: (``marks_at`` rows, one per
    distinct (step, coin), and each given row's index in them)."""
    coin_code = codes(ev["coin"])
    key = step_id * (int(coin_code.max(initial=0)) + 1) + coin_code[ev_row]
    mark_of = pl.Series(key).rank("dense").cast(pl.Int64).to_numpy() - 1  # distinct keys, ascending
    one = np.zeros(int(mark_of.max(initial=-1)) + 1, dtype=np.int64)
    one[mark_of] = np.arange(len(key))  # a row of each distinct key
    inst_step = step_id[one]
    inst = pl.DataFrame(
        {
            "step_id": inst_step,
            "coin": ev["coin"].gather(ev_row[one]),
            "t_ms": steps["time_ms"].gather(inst_step),
            "ord": steps["K"].gather(inst_step),
            "_m": np.arange(len(one)),
        }
    )
    # marks_at returns its rows in an order of its own
    return marks_at(inst, obs, f, max_mark_age_ms=max_mark_age_ms).sort("_m"), mark_of


def _coin_meta(asset_ctxs: pl.DataFrame | None, positions: pl.DataFrame) -> pl.DataFrame:
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


def build_steps_and_pools(
    fills: pl.DataFrame | pl.LazyFrame,
    positions: pl.DataFrame | None,
    accounts: pl.DataFrame | None,
    asset_ctxs: pl.DataFrame | None,
    *,
    vault: str | None = None,
    gap_seconds: float = 5.0,
    venue: str = "hyperliquid",
    min_account_value: float | None = 0.0,
    max_mark_age_ms: int | None = None,
    cash: pl.DataFrame | None = None,
    misc_before_fills: bool = True,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Reconstruct every ADL step and its eligible pool with ranking features and outcomes.

    ``fills``/``positions``/``accounts``/``asset_ctxs`` are frames in the lake's ``fills``,
    ``position_snapshots``, ``account_snapshots`` and ``asset_ctxs`` layouts (decimals or floats).
    ``vault``: an account never eligible (besides each step's liquidated account).
    ``min_account_value``: candidates need an account value strictly above it (``None``: keep all).
    ``max_mark_age_ms``: see :func:`forensics.reconstruct.marks.marks_at` (default: venue marks never stale).
    ``cash``: funding and ledger cash events (:func:`forensics.reconstruct.cash.cash_events`), applied in
    block order between the fills (``misc_before_fills``: a block's events before its fills).
    Returns ``(steps, pools)`` with exactly the ``ADL_STEPS`` / ``ADL_POOLS`` columns.
    """
    positions = _lazy_df(positions)
    accounts = _lazy_df(accounts)
    asset_ctxs = _lazy_df(asset_ctxs)
    if asset_ctxs is not None:
        asset_ctxs = asset_ctxs.with_columns(pl.col("coin").cast(pl.Categorical))  # joins with the replay's codes
    state = build_state(
        through_last_adl(perp_fills(fills)), positions, accounts, cash, misc_before_fills=misc_before_fills
    )
    f, ev, wallets = state["fills"], state["events"], state["wallets"]
    ambiguous_order = f.height > 0 and f["block_number"].null_count() > 0
    steps, legs = segment_steps(f, gap_seconds)
    if steps.height == 0:
        return _empty(ADL_STEPS), _empty(ADL_POOLS)

    # --- candidates: interval join of position states to steps, in the output's (step_id, user) order -------
    step_id, row = _interval_join(steps, ev)
    user = ev["user"].gather(row)
    keep = (user != steps["liquidated_user"].gather(step_id)).to_numpy()
    vaults = liquidator_vaults(f)
    if vault:
        vaults = vaults.extend(pl.Series([vault.lower()]).cast(vaults.dtype))
    keep &= ~user.is_in(vaults.implode()).to_numpy()
    step_id, row = step_id[keep], row[keep]
    order = _by_step_and_name(step_id, user.filter(pl.Series(keep)))
    step_id, row = step_id[order], row[order]
    pool = ev.select("user", "coin", "size", "entry", "seg_start_ms", "seg_start_blk", "mode", "lev", "iso_wallet")[row]
    pool = pool.with_columns(
        pl.Series("step_id", step_id),
        *steps.select(pl.col("blk").alias("step_blk"), pl.col("time_ms").alias("t_ms"), "K", "adl_px")[step_id],
        pl.when(pl.col("size") > 0).then(pl.lit("long")).otherwise(pl.lit("short")).alias("side"),
    )

    # --- every position each candidate holds, as of the step ---------------------------------------------
    pool_user, K = codes(pool["user"]), pool["K"].to_numpy()
    by_user = stable_argsort((pool_user << 32) | K)
    cand, at = _holdings(ev, pool_user, K, by_user)
    h_size = ev["size"].to_numpy()[at]
    nonzero = np.flatnonzero(h_size != 0)
    # marks at (step, coin) for every coin held with a non-zero size, and for each candidate's own position
    mk, mark_of = _step_coin_marks(
        np.concatenate([step_id[cand[nonzero]], step_id]),
        np.concatenate([at[nonzero], row]),
        ev,
        steps,
        mark_observations(f, asset_ctxs),
        f,
        max_mark_age_ms,
    )
    held_mark = np.full(len(at), -1, dtype=np.int64)
    held_mark[nonzero] = mark_of[: len(nonzero)]
    pool_mark = mark_of[len(nonzero) :]
    meta = _coin_meta(asset_ctxs, state["snapshot_positions"])
    held = pl.DataFrame({"_p": cand, "h_size": h_size}).with_columns(
        ev["entry"].gather(at).alias("h_entry"),
        ev["iso_wallet"].gather(at).alias("h_iso"),
        (ev["mode"] == "isolated").gather(at).alias("h_isolated"),
        gather_or_null(mk["mark"], held_mark).alias("mark"),
        ev["coin"].gather(at).alias("coin"),
    )
    held = held.join(meta.select("coin", "max_lev"), on="coin", how="left", maintain_order="left").with_columns(
        pl.when(pl.col("h_size").fill_null(0.0) != 0)
        .then(pl.col("h_size") * (pl.col("mark") - pl.col("h_entry")))
        .otherwise(0.0)
        .alias("h_upnl"),
        # every position's maintenance margin, |size| x mark / (2 x max leverage), for the account's total
        (pl.col("h_size").abs() * pl.col("mark") / (2.0 * pl.col("max_lev"))).alias("h_mm"),
    )
    # per candidate, hashed on its row (a sorted-runs group-by would sum in another order: other last bits)
    acct = held.group_by("_p").agg(
        pl.col("h_upnl").filter(~pl.col("h_isolated")).sum().alias("cross_upnl"),
        pl.col("h_iso").filter(pl.col("h_isolated")).sum().alias("iso_wallets"),
        pl.col("h_upnl").filter(~pl.col("h_isolated")).is_nan().any().alias("upnl_unknown"),
        pl.col("h_mm").sum().alias("account_mm"),
    )
    acct_row = position_in(acct["_p"].to_numpy(), np.arange(pool.height))
    # wallets are grouped by user in user-code order too; user_code is the group's rank
    w_code = wallets["user_code"].to_numpy()
    user_code = position_in(codes(wallets["user"])[np.flatnonzero(run_firsts(w_code))], pool_user)
    w_at = np.empty(pool.height, dtype=np.int64)  # looked up in (user, K) order: ascending keys again
    w_at[by_user] = _latest_before(_sort_key(w_code, wallets["ord"].to_numpy()), user_code[by_user], K[by_user])
    pool = pool.with_columns(
        gather_or_null(wallets["wallet"], w_at).alias("wallet"),
        *[gather_or_null(acct[c], acct_row) for c in ("cross_upnl", "iso_wallets", "upnl_unknown", "account_mm")],
        mk["mark"].gather(pool_mark).alias("mark_px"),
        mk["mark_source"].gather(pool_mark).alias("m_src"),
    )
    pool = pool.join(meta, on="coin", how="left", maintain_order="left")

    sgn = pl.when(pl.col("side") == "long").then(1.0).otherwise(-1.0)
    size = pl.col("size").abs()
    pool = pool.with_columns(
        size.alias("abs_size"),
        (size * pl.col("mark_px")).alias("notional_usd"),
        (sgn * size * (pl.col("mark_px") - pl.col("entry"))).alias("upnl_usd"),
        (pl.col("wallet") - pl.col("iso_wallets").fill_null(0.0)).alias("cross_wallet"),
    ).with_columns(
        pl.when(pl.col("mode") == "isolated")
        .then(pl.col("iso_wallet") + pl.col("upnl_usd"))
        .otherwise(pl.when(pl.col("upnl_unknown")).then(None).otherwise(pl.col("cross_wallet") + pl.col("cross_upnl")))
        .alias("account_value_usd"),
    )
    if min_account_value is not None:
        pool = pool.filter(pl.col("account_value_usd").is_null() | (pl.col("account_value_usd") > min_account_value))

    # --- outcomes -------------------------------------------------------------------------------------------
    # fill order is replay order: trade ids are not monotonic on Hyperliquid
    out = legs.group_by("step_id", "user", maintain_order=True).agg(
        pl.col("sz").sum().alias("closed_size"), pl.col("ord").min().alias("_ford")
    )
    out = out.with_columns(pl.col("_ford").rank("ordinal").over("step_id").cast(pl.Int32).alias("fill_order")).drop(
        "_ford"
    )
    pool = pool.join(out, on=["step_id", "user"], how="left", maintain_order="left")

    lot = pl.lit(10.0) ** (-pl.col("sz_decimals").cast(pl.Float64))
    iso_after = pl.col("iso_wallet") + sgn * size * (pl.col("adl_px") - pl.col("entry"))
    skip = (
        pl.when(pl.col("sz_decimals").is_not_null() & (size < lot * (1 - 1e-9)))
        .then(pl.lit("below_min_size"))
        .when((pl.col("mode") == "isolated") & (iso_after <= 0))
        .then(pl.lit("isolated_no_overlap"))
    )
    if ambiguous_order:
        skip = skip.when(pl.col("seg_start_blk") == pl.col("step_blk")).then(pl.lit("opened_same_block"))
    skip = skip.otherwise(None)
    selected = pl.col("closed_size").is_not_null()
    pool = pool.with_columns(
        selected.alias("selected"),
        pl.col("closed_size").fill_null(0.0),
        (selected & (pl.col("closed_size") < size * (1 - 1e-12))).alias("partial"),
        pl.when(selected).then(None).otherwise(skip).alias("skip_reason"),
        pl.when(sgn > 0)
        .then(pl.col("mark_px") / pl.col("entry") - 1)
        .otherwise(1 - pl.col("mark_px") / pl.col("entry"))
        .alias("pnl_pct_price"),
        (pl.col("upnl_usd") / (size * pl.col("entry") / pl.col("lev"))).alias("pnl_pct_margin"),
        (pl.col("notional_usd") / pl.col("account_value_usd")).alias("leverage"),
        # BitMEX |mv| / (mv - bv): the bankruptcy price moves the position's equity (account value, or the
        # isolated margin) to zero, so mv - bv equals that equity
        (pl.col("notional_usd") / pl.col("account_value_usd")).alias("effective_leverage"),
        (pl.col("notional_usd") / (2.0 * pl.col("max_lev"))).alias("maintenance_margin_usd"),
        (pl.col("t_ms") - pl.col("seg_start_ms")).alias("position_age_ms"),
    )
    pools = pool.select(
        pl.lit(venue).alias("venue"),
        "step_id",
        "coin",
        "user",
        "side",
        pl.col("abs_size").alias("size"),
        "entry_px" if "entry_px" in pool.columns else pl.col("entry").alias("entry_px"),
        "mark_px",
        pl.col("m_src").fill_null("last_trade").alias("mark_source"),
        "notional_usd",
        "upnl_usd",
        "pnl_pct_price",
        "pnl_pct_margin",
        "account_value_usd",
        pl.col("wallet").alias("wallet_balance_usd"),
        "leverage",
        pl.col("lev").alias("margin_leverage"),
        "effective_leverage",
        pl.col("mode").alias("margin_mode"),
        "maintenance_margin_usd",
        "position_age_ms",
        "selected",
        "fill_order",
        "closed_size",
        "partial",
        "skip_reason",
        lot.alias("lot_size"),
        pl.col("account_mm").alias("account_maintenance_margin_usd"),
    )
    sizes = pools.group_by("step_id").agg(pl.len().cast(pl.Int64).alias("pool_size"))
    steps_out = (
        steps.join(sizes, on="step_id", how="left")
        .with_columns(pl.col("pool_size").fill_null(0))
        .select(
            pl.lit(venue).alias("venue"),
            "step_id",
            "step_group",
            "wave_id",
            "block_number",
            "time_ms",
            "coin",
            "liquidated_user",
            "liquidated_side",
            "adl_side",
            "action_hash",
            "legs",
            "closed_size",
            "notional_usd",
            "mark_px",
            pl.col("first_tid").cast(pl.UInt64),
            "pool_size",
            "unmatched_counter_legs",
        )
        .sort("step_id")
    )
    return _conform(ADL_STEPS, steps_out), _conform(ADL_POOLS, pools)


_PL_TYPES = {
    "VARCHAR": pl.Utf8,
    "BIGINT": pl.Int64,
    "UBIGINT": pl.UInt64,
    "INTEGER": pl.Int32,
    "BOOLEAN": pl.Boolean,
    "DOUBLE": pl.Float64,
}


def _empty(table) -> pl.DataFrame:
    return pl.DataFrame(schema={c.name: _PL_TYPES[c.type] for c in table.columns})


def _conform(table, df: pl.DataFrame) -> pl.DataFrame:
    return df.select([pl.col(c.name).cast(_PL_TYPES[c.type]) for c in table.columns])
