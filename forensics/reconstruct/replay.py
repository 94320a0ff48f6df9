"""Event-sourced position replay, vectorised in polars.

State per (user, coin) after every event: signed size (exact decimal cumulative sum), average entry
price with Hyperliquid semantics, realized PnL, the isolated-margin wallet of the position, margin
mode and configured leverage. State per user: wallet balance (cash without unrealized PnL).

The snapshot is turned into one synthetic "open" event per position (``ord = -1``, size = ``szi``,
price = ``entryPx``); users that have no snapshot at all are anchored on the ``startPosition`` of
their first fill in each coin (entry unknown until the position next opens from zero or flips).

No per-event loop and no per-group hashing: user and coin become integer codes, events are sorted
once by (user, coin) and every running quantity is a global running sum minus its value at the start
of the run (exact, on decimals). Average entry: inside a *segment* (from an open-from-zero or a flip to
the next one) an increase re-averages ``e_k = a_k e_{k-1} + b_k`` with ``a_k = |S_before|/|S_after|``
and ``b_k = px |d| / |S_after|``, a partial close keeps ``e`` (``a = 1, b = 0``) and the segment start
sets ``e = px`` (``a = 0``). That first-order linear recurrence is solved for all events at once by
prefix doubling (log2 of the longest segment passes, each over the still-open rows only).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import polars as pl

from forensics.formats.hyperliquid.snapshot_export import DERIVED_ACCOUNT

from .arrays import codes, gather_or_null, last_index, rows_of, run_firsts, run_starts, run_sum, stable_argsort

DEC = pl.Decimal(38, 10)
BIG_ORD = 2**62

KIND = pl.Enum(["snapshot", "anchor", "fill", "cash"])
ZERO_HASH = "0x" + "0" * 64
CODED = ("user", "coin", "side", "liquidated_user", "liquidation_method")


def _lexical_order(df: pl.DataFrame, cols: list[str]) -> np.ndarray:
    """Row order sorting by ``cols`` ascending, NULLs last (numpy lexsort over integer keys)."""
    last = np.iinfo(np.int64).max
    keys = [df[c].cast(pl.Int64).fill_null(last).to_numpy() for c in reversed(cols)]
    return np.lexsort(keys)


def _lazy(df: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
    return df.lazy() if isinstance(df, pl.DataFrame) else df


def order_fills(fills: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """Fills in replay order with ``ord`` (global 0-based rank) and ``blk`` (block, or time when no block).

    Node fills replay by (block_number, event_index, tid); when any fill lacks a block (info-API pulls)
    the whole set replays by (time_ms, tid) and ``blk`` is the fill time. Returns the replay's columns
    only: user, coin, side, liquidated_user, liquidation_method (categorical codes), time_ms, evt_ms
    (block time, else fill time), block_number, event_index, tid, blk, ord, is_adl, sz, d (signed size),
    start_position, closed_pnl, cash (closedPnl - fee) as exact decimals, px_f and liq_mark_f (floats),
    adl_hash (the transaction hash of ADL legs and of the liquidated account's own legs, NULL for other
    fills and for the zero hash).
    """
    lf = _lazy(fills)
    names = lf.collect_schema().names()
    for c, dt in (
        ("block_number", pl.Int64),
        ("event_index", pl.Int64),
        ("liquidated_user", pl.Utf8),
        ("liquidation_mark_px", DEC),
        ("start_position", DEC),
        ("is_adl", pl.Boolean),
        ("liquidation_method", pl.Utf8),
        ("closed_pnl", DEC),
        ("fee", DEC),
        ("px", pl.Float64),
        ("hash", pl.Utf8),
    ):
        if c not in names:
            lf = lf.with_columns(pl.lit(None, dtype=dt).alias(c))
    block_ms = (
        pl.col("block_time").cast(pl.Int64).floordiv(1_000_000).fill_null(pl.col("time_ms"))
        if "block_time" in names
        else pl.col("time_ms")
    )
    df = lf.select(
        # strings become integer codes: sorting, joins and grouping never move the text
        *[pl.col(c).cast(pl.Categorical) for c in CODED],
        pl.col("time_ms").cast(pl.Int64),
        block_ms.cast(pl.Int64).alias("evt_ms"),
        pl.col("block_number").cast(pl.Int64),
        pl.col("event_index").cast(pl.Int64),
        pl.col("tid").cast(pl.Int64),
        pl.col("is_adl").fill_null(False),
        # the transaction of an ADL leg names its action; only ADL legs and the liquidated account's own
        # legs keep it (a zero hash names nothing)
        pl.when(
            (pl.col("is_adl").fill_null(False) | (pl.col("user") == pl.col("liquidated_user")))
            & (pl.col("hash") != ZERO_HASH)
        )
        .then(pl.col("hash"))
        .cast(pl.Categorical)
        .alias("adl_hash"),
        pl.col("sz").cast(DEC),
        pl.col("start_position").cast(DEC),
        pl.col("closed_pnl").cast(DEC).fill_null(0),
        (pl.col("closed_pnl").cast(DEC).fill_null(0) - pl.col("fee").cast(DEC).fill_null(0)).cast(DEC).alias("cash"),
        pl.col("px").cast(pl.Float64).alias("px_f"),
        pl.col("liquidation_mark_px").cast(pl.Float64).alias("liq_mark_f"),
    ).collect()
    by_block = df.height > 0 and df["block_number"].null_count() == 0
    order = _lexical_order(df, ["block_number", "event_index", "tid"] if by_block else ["time_ms", "tid"])
    if not np.array_equal(order, np.arange(df.height)):
        df = df.rechunk()[order]  # a gather from many chunks (row groups) costs several times one from one chunk
    return df.with_columns(
        (pl.col("block_number") if by_block else pl.col("time_ms")).alias("blk"),
        # event time: the block's time in block order, else the fill's own
        (pl.col("evt_ms") if by_block else pl.col("time_ms")).alias("evt_ms"),
        pl.int_range(pl.len(), dtype=pl.Int64).alias("ord"),
        pl.when(pl.col("side") == "B").then(pl.col("sz")).otherwise(-pl.col("sz")).cast(DEC).alias("d"),
    )


def snapshot_frames(
    positions: pl.DataFrame | None, accounts: pl.DataFrame | None, start_ms: int | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(positions: user, coin, snap_ms, szi, entry, mode, lev, max_lev, iso_wallet0),
    (accounts: user, snap_ms, wallet0). Per user, the latest snapshot taken at or before ``start_ms``
    (the replay's first fill): a later one (say an API pull at the end of the window) describes the
    state *after* fills the replay is about to apply, so it cannot start the replay.

    Names become categorical codes first, so every grouping and join below hashes integers, not text."""
    if start_ms is not None:
        if accounts is not None:
            accounts = accounts.filter(pl.col("time_ms") <= start_ms)
        if positions is not None:
            positions = positions.filter(pl.col("time_ms") <= start_ms)
    pos_schema = {
        "user": pl.Categorical,
        "coin": pl.Categorical,
        "snap_ms": pl.Int64,
        "szi": DEC,
        "entry": pl.Float64,
        "mode": pl.Utf8,
        "lev": pl.Float64,
        "max_lev": pl.Float64,
        "iso_wallet0": pl.Float64,
        "upnl0": pl.Float64,
    }
    acc_schema = {"user": pl.Categorical, "snap_ms": pl.Int64, "account_value0": pl.Float64, "total_scope": pl.Boolean}
    if accounts is None or accounts.height == 0:
        acc = pl.DataFrame(schema=acc_schema)
    else:
        acc = (
            accounts.lazy()
            .select(
                pl.col("user").cast(pl.Categorical),
                pl.col("time_ms").alias("snap_ms"),
                pl.col("account_value").cast(pl.Float64).alias("account_value0"),
                # an export's account value is total equity (cross + isolated): its isolated margin is not cash
                (pl.col("derivation") == DERIVED_ACCOUNT if "derivation" in accounts.columns else pl.lit(False)).alias(
                    "total_scope"
                ),
            )
            .sort("snap_ms")
            .group_by("user")
            .last()
            .collect()
        )
    if positions is None or positions.height == 0:
        pos = pl.DataFrame(schema=pos_schema)
    else:
        p = positions.lazy().select(
            pl.col("user", "coin").cast(pl.Categorical),
            pl.col("time_ms").alias("snap_ms"),
            pl.col("szi").cast(DEC),
            pl.col("entry_px").cast(pl.Float64).alias("entry"),
            pl.col("leverage_type").alias("mode"),
            pl.col("leverage").cast(pl.Float64).alias("lev"),
            pl.col("max_leverage").cast(pl.Float64).alias("max_lev"),
            pl.col("unrealized_pnl").cast(pl.Float64).alias("upnl0"),
            pl.col("margin_used").cast(pl.Float64).alias("margin0"),
        )
        # one snapshot per user: the user's latest
        p = p.filter(pl.col("snap_ms") == pl.col("snap_ms").max().over("user"))
        pos = (
            p.with_columns(
                pl.when(pl.col("mode") == "isolated")
                .then(pl.col("margin0") - pl.col("upnl0"))
                .otherwise(None)
                .alias("iso_wallet0")
            )
            .select(list(pos_schema))
            .collect()
        )
    per_user = pos.group_by("user").agg(
        pl.col("snap_ms").max().alias("p_ms"),
        pl.col("upnl0").fill_null(0.0).sum().alias("upnl_sum"),
        pl.col("iso_wallet0").fill_null(0.0).sum().alias("iso_sum"),
    )
    if acc.height:
        # users with positions must have an account row; the account snapshot time wins
        acc = acc.join(per_user, on="user", how="full", coalesce=True).with_columns(
            pl.coalesce("snap_ms", "p_ms").alias("snap_ms")
        )
    else:
        acc = acc.with_columns(pl.lit(None, pl.Float64).alias("upnl_sum"), pl.lit(None, pl.Float64).alias("iso_sum"))
    # cross cash: the account value less every position's uPnL, and less the isolated margins where the account
    # value counts them (an export's total equity); they are the isolated positions' own wallets
    iso = pl.when(pl.col("total_scope").fill_null(False)).then(pl.col("iso_sum").fill_null(0.0)).otherwise(0.0)
    acc = acc.select(
        "user", "snap_ms", (pl.col("account_value0") - pl.col("upnl_sum").fill_null(0.0) - iso).alias("wallet0")
    )
    return pos, acc


def build_state(
    fills: pl.DataFrame | pl.LazyFrame,
    positions: pl.DataFrame | None,
    accounts: pl.DataFrame | None,
    cash: pl.DataFrame | None = None,
    *,
    misc_before_fills: bool = True,
    ordered: bool = False,
) -> dict[str, pl.DataFrame]:
    """Replay fills from the snapshot, with the cash events ``cash`` (``forensics.reconstruct.cash.cash_events``:
    funding and ledger USDC deltas) applied in block order between the fills. Returns frames:

    * ``fills``: the ordered fills (after the snapshot) with ``ord``, ``blk``;
    * ``events``: one row per (user, coin) event, grouped by (user, coin) (``pair_id``, dense from 0) and
      in ``ord`` order inside each group, with the state after it: ``size`` (float), ``size_dec``,
      ``entry``, ``realized``, ``iso_wallet``, ``mode``, ``lev``, ``seg_start_ms`` (NULL when the
      segment began at the snapshot), ``next_ord``;
    * ``wallets``: one row per user event (``user``, ``ord``, ``wallet``, ``user_code`` dense from 0),
      sorted by (``user_code``, ord);
    * ``snapshot_positions``, ``snapshot_accounts``;
    * ``cash``: the cash events applied, each with ``ord`` (the fill it follows) and ``isolated``.

    A cash event moves its user's wallet from its place on; funding of an isolated position also moves
    that position's isolated margin (a ``kind = "cash"`` event of its pair, size unchanged).
    ``ordered``: ``fills`` is already :func:`order_fills` output.
    """
    f = fills if ordered else order_fills(fills)
    pos, acc = snapshot_frames(positions, accounts, f["evt_ms"].min() if f.height else None)
    f = after_snapshot(f, acc)
    ce = _place_cash(cash, f, pos, acc, misc_before_fills)
    # the wallets do not depend on the positions: built on the other core (polars releases the GIL)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="liqf-wallets") as pool:
        wallets = pool.submit(_wallets, f, acc, ce)
        events = _positions(_events(f, pos, acc, ce))
        return {
            "fills": f,
            "events": events,
            "wallets": wallets.result(),
            "snapshot_positions": pos,
            "snapshot_accounts": acc,
            "cash": ce,
        }


_CASH_SCHEMA = {
    "user": pl.Categorical,
    "coin": pl.Categorical,
    "ord": pl.Int64,
    "blk": pl.Int64,
    "time_ms": pl.Int64,
    "amount": DEC,
    "kind": pl.Utf8,
    "isolated": pl.Boolean,
}


def _place_cash(
    cash: pl.DataFrame | None, f: pl.DataFrame, pos: pl.DataFrame, acc: pl.DataFrame, before_fills: bool
) -> pl.DataFrame:
    """Cash events placed in the fill order (``ord`` = the fill each follows), at or after their user's
    snapshot and not after the last fill; ``isolated`` marks funding of a position the snapshot says is isolated."""
    from .cash import place_in_fills

    if cash is None or cash.height == 0 or f.height == 0:
        return pl.DataFrame(schema=_CASH_SCHEMA)
    by_block = f["block_number"].null_count() == 0
    ce = cash.with_columns(pl.col("user").cast(pl.Categorical), pl.col("coin").cast(pl.Categorical))
    if by_block:  # events without a block (API ledger rows) are placed by time among the blocks
        timed = ce["block_number"].is_null()
        ords = place_in_fills(ce, f, by_block=True, before_fills=before_fills)
        if timed.any():
            by_time = (
                np.searchsorted(
                    f["evt_ms"].to_numpy(), ce["time_ms"].to_numpy(), side="left" if before_fills else "right"
                )
                - 1
            )
            ords = np.where(timed.to_numpy(), by_time, ords)
        last_key = f["block_number"][-1]
        late = (ce["block_number"] > last_key).fill_null(ce["time_ms"] > f["evt_ms"][-1]).to_numpy()
    else:
        ords = place_in_fills(ce, f, by_block=False, before_fills=before_fills)
        late = (ce["time_ms"] > f["time_ms"][-1]).to_numpy()
    snap_ms = gather_or_null(acc["snap_ms"], rows_of(acc["user"], ce["user"]))
    early = (snap_ms.is_not_null() & (ce["time_ms"] < snap_ms)).fill_null(False).to_numpy()
    iso = pos.filter(pl.col("mode") == "isolated").select("user", "coin", pl.lit(True).alias("isolated"))
    ce = ce.with_columns(
        pl.Series("ord", ords, dtype=pl.Int64), pl.coalesce("block_number", "time_ms").alias("blk")
    ).filter(pl.Series(~(late | early)))
    ce = ce.join(iso, on=["user", "coin"], how="left", maintain_order="left").with_columns(
        pl.col("isolated").fill_null(False)
    )
    return ce.select(list(_CASH_SCHEMA)).cast(_CASH_SCHEMA)


def _merge_by_ord(n_fill: int, fill_ord: np.ndarray, cash_ord: np.ndarray) -> np.ndarray:
    """Stable order of [fills, cash events] by place: a cash event right after the fill it follows."""
    key = np.concatenate([2 * (fill_ord + 1), 2 * (cash_ord + 1) + 1])
    return stable_argsort(key)


def after_snapshot(f: pl.DataFrame, acc: pl.DataFrame) -> pl.DataFrame:
    """The fills at or after their user's snapshot (users without a snapshot: every fill)."""
    snap_ms = gather_or_null(acc["snap_ms"], rows_of(acc["user"], f["user"]))
    keep = (snap_ms.is_null() | (f["evt_ms"] >= snap_ms)).fill_null(False)
    return f if keep.all() else f.filter(keep)


_EV_COLS = ["user", "coin", "ord", "blk", "time_ms", "d", "px_f", "closed_pnl", "cash", "sp"]


def _events(f: pl.DataFrame, pos: pl.DataFrame, acc: pl.DataFrame, ce: pl.DataFrame | None = None) -> pl.DataFrame:
    """Snapshot positions, anchors and fills as one event list sorted by (user, coin, ord), each event with
    its (user, coin)'s snapshot ``mode``, ``lev`` and ``iso_wallet0`` (one snapshot row per pair)."""
    # anchors for users without any snapshot: first fill's startPosition per (user, coin)
    anchors = (
        f.filter(pl.Series(rows_of(acc["user"], f["user"]) < 0))
        .group_by("user", "coin")
        .agg(pl.col("start_position").sort_by("ord").first().alias("d"))
        .filter(pl.col("d").is_not_null() & (pl.col("d") != 0))
    )
    fe = f.select(
        "user", "coin", "ord", "blk", "time_ms", "d", "px_f", "closed_pnl", "cash", pl.col("start_position").alias("sp")
    )
    opening = {
        "ord": pl.lit(-1, pl.Int64),
        "blk": pl.lit(None, pl.Int64),
        "time_ms": pl.lit(None, pl.Int64),
        "closed_pnl": pl.lit(0, DEC),
        "cash": pl.lit(0, DEC),
        "sp": pl.lit(None, DEC),
    }
    se = pos.select("user", "coin", pl.col("szi").alias("d"), pl.col("entry").alias("px_f")).with_columns(**opening)
    ae = anchors.select("user", "coin", pl.col("d").cast(DEC), pl.lit(float("nan")).alias("px_f")).with_columns(
        **opening
    )
    # funding of isolated positions: events of their pair that move only the isolated margin
    iso = ce.filter(pl.col("isolated")) if ce is not None else None
    cash_ev = (
        []
        if iso is None or iso.height == 0
        else [
            iso.select(
                "user",
                "coin",
                "ord",
                "blk",
                "time_ms",
                pl.lit(0, DEC).alias("d"),
                pl.lit(float("nan")).alias("px_f"),
                pl.lit(0, DEC).alias("closed_pnl"),
                pl.col("amount").alias("cash"),
                pl.lit(None, DEC).alias("sp"),
            )
        ]
    )
    # one chunk: a gather from several chunks costs several times more
    ev = pl.concat(
        [se.select(_EV_COLS), ae.select(_EV_COLS), fe.select(_EV_COLS), *cash_ev], how="vertical_relaxed", rechunk=True
    )
    n_cash = cash_ev[0].height if cash_ev else 0
    kind = np.repeat(np.arange(4, dtype=np.int64), [se.height, ae.height, fe.height, n_cash])
    # group by (user, coin) with a stable sort on their codes: openings (ord -1) come first, fills in order
    user, coin = codes(ev["user"]).astype(np.uint64), codes(ev["coin"]).astype(np.uint64)
    pair = user * np.uint64(coin.max(initial=0) + 1) + coin
    if n_cash:  # cash events interleave with the fills of their pair: sort by (pair, place)
        within = _merge_by_ord(
            se.height + ae.height + fe.height, ev["ord"].to_numpy()[:-n_cash], ev["ord"].to_numpy()[-n_cash:]
        )
        rank = np.empty(ev.height, dtype=np.int64)
        rank[within] = np.arange(ev.height)
        order = np.lexsort((rank, pair))
    else:
        order = stable_argsort(pair)
    pair = pair[order]
    run_first = run_firsts(pair)
    # the pair's snapshot row, when there is one, opens its run: its settings hold for the whole run
    opener = order[run_starts(run_first)]
    snap_row = np.where(opener < se.height, opener, -1)
    return ev[order].with_columns(
        pl.Series("kind", KIND.categories).cast(KIND).gather(kind[order]),
        pl.Series("pair", pair.astype(np.int64)),
        *[gather_or_null(pos[c], snap_row) for c in ("mode", "lev", "iso_wallet0")],
    )


def _positions(ev: pl.DataFrame) -> pl.DataFrame:
    """Per-event position state on events sorted by (user, coin, ord), with running sums over sorted runs
    (no per-group hashing): exact decimals for sizes and cash, a linear scan for the entry price."""
    n = ev.height
    pair = ev["pair"].to_numpy()
    first = run_firsts(pair)
    pair_id = np.cumsum(first) - 1
    gs = run_starts(first)
    # Every fill reports its owner's position before it (startPosition): the replay re-anchors on it, so a
    # missing fill (or a stale snapshot) shifts positions only until the owner's next reported fill. The size
    # is a running sum of d restarted at each reported startPosition (which joins the sum) and at each pair.
    d = ev["d"]
    sp = ev["sp"]
    has_sp = sp.is_not_null().to_numpy()
    size_dec = run_sum(d + sp.fill_null(0), run_starts(first | has_sp)).cast(DEC)
    sa = size_dec.cast(pl.Float64).to_numpy()
    sb = (size_dec - d).cast(pl.Float64).to_numpy()
    d_f = d.cast(pl.Float64).to_numpy()
    px = ev["px_f"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        is_start = ((sb == 0) & (sa != 0)) | ((sb * sa) < 0)
        is_inc = ~is_start & (sb != 0) & ((sb * d_f) > 0)
        # entry recurrence e_k = a_k e_{k-1} + b_k: a start sets e = px, an increase re-averages, a partial
        # close keeps e; a run's first event restarts it (its earlier entry is unknown, as the replay's)
        a = np.where(is_inc, np.abs(sb) / np.abs(sa), np.where(is_start, 0.0, 1.0))
        b = np.where(is_start, px, np.where(is_inc, px * np.abs(d_f) / np.abs(sa), 0.0))
    a[first] = 0.0
    entry = _linear_scan(a, b)
    seg_first = first | is_start
    ss = run_starts(seg_first)
    priced = last_index(is_start | is_inc) >= ss
    open_ = sa != 0
    entry_valid = open_ & priced
    starts_here = is_start[ss] & open_
    # isolated wallets: running cash over the isolated pairs only (whole runs: the mode is per pair)
    isolated = (ev["mode"] == "isolated").fill_null(False).to_numpy()
    iso_rows = np.flatnonzero(isolated)
    iso_wallet = ev["iso_wallet0"].gather(iso_rows).fill_null(0.0) + run_sum(
        ev["cash"].gather(iso_rows), run_starts(first[iso_rows])
    ).cast(pl.Float64)
    next_ord = np.full(n, BIG_ORD, dtype=np.int64)
    ords = ev["ord"].to_numpy()
    nxt = np.flatnonzero(~first[1:])
    next_ord[nxt] = ords[nxt + 1]
    return ev.select(
        "user",
        "coin",
        pl.Series("pair_id", pair_id),
        "ord",
        pl.Series("next_ord", next_ord),
        "blk",
        "time_ms",
        "kind",
        pl.Series("d_f", d_f),
        pl.Series("size_before", sb),
        pl.Series("size", sa),
        size_dec.alias("size_dec"),
        pl.when(pl.Series(entry_valid)).then(pl.Series(entry)).otherwise(None).alias("entry"),
        pl.when(pl.Series(starts_here)).then(pl.col("time_ms").gather(ss)).otherwise(None).alias("seg_start_ms"),
        pl.when(pl.Series(starts_here)).then(pl.col("blk").gather(ss)).otherwise(None).alias("seg_start_blk"),
        run_sum(ev["closed_pnl"], gs).cast(pl.Float64).alias("realized"),
        pl.col("mode").fill_null("cross"),
        "lev",
        gather_or_null(iso_wallet, np.where(isolated, np.cumsum(isolated) - 1, -1)).alias("iso_wallet"),
        pl.Series("is_start", is_start),
    )


def _wallets(f: pl.DataFrame, acc: pl.DataFrame, ce: pl.DataFrame | None = None) -> pl.DataFrame:
    """Per user event: snapshot wallet + running (closedPnl - fee) and cash events; NULL for users without a
    snapshot. Rows: each user's snapshot (ord -1) then fills and cash events in place order, users by
    categorical code (a cash event's ``ord`` is that of the fill it follows)."""
    f_user, f_cash, f_ord = f["user"], f["cash"], f["ord"].to_numpy()
    if ce is not None and ce.height:
        merged = _merge_by_ord(f.height, f_ord, ce["ord"].to_numpy())
        f_user = pl.concat([f_user, ce["user"]], rechunk=True).gather(merged)
        f_cash = pl.concat([f_cash, ce["amount"]], rechunk=True).gather(merged)
        f_ord = np.concatenate([f_ord, ce["ord"].to_numpy()])[merged]
    user = pl.concat([acc["user"], f_user], rechunk=True)
    u = codes(user)
    order = stable_argsort(u)
    u = u[order]
    first = run_firsts(u)
    gs = run_starts(first)
    cash = pl.concat([pl.zeros(acc.height, DEC, eager=True), f_cash], rechunk=True).gather(order)
    # the user's snapshot row, when there is one, opens its run
    opener = order[gs]
    wallet0 = gather_or_null(acc["wallet0"], np.where(opener < acc.height, opener, -1))
    ords = np.concatenate([np.full(acc.height, -1, dtype=np.int64), f_ord])[order]
    return pl.DataFrame(
        {
            "user": user.gather(order),
            "ord": ords,
            "wallet": wallet0 + run_sum(cash, gs).cast(pl.Float64),
            "user_code": np.cumsum(first) - 1,  # dense, for sorted-key lookups
        }
    )


def _linear_scan(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``x_k = a_k x_{k-1} + b_k`` with ``x_{-1} = 0``, by prefix doubling (log2 of the longest run of
    non-zero ``a`` passes); a row with ``a_k = 0`` restarts the recurrence. Each pass composes every
    still-open row with the row ``s`` before it and drops rows whose window reached a restart."""
    A, B = a.astype(np.float64, copy=True), b.astype(np.float64, copy=True)
    open_ = np.flatnonzero(A != 0)
    s = 1
    while open_.size:
        open_ = open_[open_ >= s]
        prev = open_ - s
        B[open_] = A[open_] * B[prev] + B[open_]
        A[open_] = A[open_] * A[prev]
        open_ = open_[A[open_] != 0]
        s *= 2
    return B


def is_spot(coin: pl.Expr) -> pl.Expr:
    """Spot markets on Hyperliquid: ``@N`` pairs and ``BASE/QUOTE`` names."""
    return coin.str.starts_with("@") | coin.str.contains("/", literal=True)


def perp_fills(fills: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
    """The perpetual fills: spot trades move spot balances, never a perp position nor the perp account value."""
    return _lazy(fills).filter(~is_spot(pl.col("coin").cast(pl.Utf8)))


def check_start_positions(fills: pl.DataFrame | pl.LazyFrame, *, rel_tol: float = 1e-12) -> pl.DataFrame:
    """Relative replay without a snapshot: per (user, coin), anchor on the first fill's startPosition,
    replay signed sizes in order, and compare with every later fill's reported ``startPosition``.

    Returns one row per checked fill (every fill whose previous fill of the same user/coin is in the
    input) with ``replayed``, ``reported``, ``abs_diff``, ``exact`` (decimal equality), ``agrees``
    (within ``rel_tol`` relative: the venue prints some sizes from binary floats, e.g.
    ``4479836.4000000004``) and ``market`` ('perp', or 'spot' for ``@N`` / ``BASE/QUOTE`` coins, whose
    startPosition is a token balance that fees paid in the token also move).
    """
    f = order_fills(fills).sort(["user", "coin", "ord"])
    key = ["user", "coin"]
    f = f.with_columns(
        (pl.col("start_position").first().over(key) + pl.col("d").cum_sum().over(key) - pl.col("d")).alias("replayed"),
        pl.col("ord").rank("ordinal").over(key).alias("_n"),
    )
    out = (
        f.filter(pl.col("_n") > 1)
        .with_columns(pl.col("user", "coin").cast(pl.Utf8))
        .select(
            "user",
            "coin",
            "ord",
            "blk",
            "time_ms",
            "tid",
            pl.col("start_position").alias("reported"),
            "replayed",
            pl.when(is_spot(pl.col("coin"))).then(pl.lit("spot")).otherwise(pl.lit("perp")).alias("market"),
        )
    )
    diff = (pl.col("reported").cast(pl.Float64) - pl.col("replayed").cast(pl.Float64)).abs()
    return out.with_columns(
        diff.alias("abs_diff"),
        (pl.col("reported") == pl.col("replayed")).alias("exact"),
        (diff <= rel_tol * pl.max_horizontal(pl.col("reported").cast(pl.Float64).abs(), pl.lit(1.0))).alias("agrees"),
    )
