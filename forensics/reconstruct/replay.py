"""Event-sourced position replay, vectorised in polars.

State per (user, coin) after every event: signed size (exact decimal cumulative sum), average entry
price with Hyperliquid semantics, realized PnL, the isolated-margin wallet of the position, margin
mode and configured leverage. State per user: wallet balance (cash without unrealized PnL).

The snapshot is turned into one synthetic "open" event per position (``ord = -1``, size = ``szi``,
price = ``entryPx``); users that have no snapshot at all are anchored on the ``startPosition`` of
their first fill in each coin (entry unknown until the position next opens from zero or flips).

Average entry without a per-event loop. Inside a *segment* (from an open-from-zero or a flip to the
next one) an increase re-averages ``e_k = a_k e_{k-1} + b_k`` with ``a_k = |S_before|/|S_after|`` and
``b_k = px |d| / |S_after|``, a partial close keeps ``e``, and the segment start sets ``e = px``. So
``e_k = sum_j b_j exp(L_k - L_j)`` with ``L`` the cumulative ``log a`` over the segment's increases.
``L`` only decreases; it is cut into chunks of 300 nats so every exponential stays in double range,
and a chunk only needs the total of the chunk just before it (older terms weigh < e^-300).
"""
from __future__ import annotations

import polars as pl

DEC = pl.Decimal(38, 10)
CHUNK_NATS = 300.0
BIG_ORD = 2**62

FILL_COLUMNS = (
    "user", "coin", "time_ms", "block_number", "event_index", "tid", "side", "px", "sz", "start_position",
    "closed_pnl", "fee", "is_adl", "liquidated_user", "liquidation_mark_px", "liquidation_method",
)


def _lazy(df: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
    return df.lazy() if isinstance(df, pl.DataFrame) else df


def order_fills(fills: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """Fills in replay order with ``ord`` (global 0-based rank) and ``blk`` (block, or time when no block).

    Node fills replay by (block_number, event_index, tid); when any fill lacks a block (info-API pulls)
    the whole set replays by (time_ms, tid) and ``blk`` is the fill time.
    """
    lf = _lazy(fills)
    names = lf.collect_schema().names()
    cols = [c for c in FILL_COLUMNS if c in names]
    extra = [c for c in ("block_time", "fill_id") if c in names]
    lf = lf.select(cols + extra)
    for c, dt in (("block_number", pl.Int64), ("event_index", pl.Int64), ("liquidated_user", pl.Utf8),
                  ("liquidation_mark_px", DEC), ("start_position", DEC), ("is_adl", pl.Boolean),
                  ("liquidation_method", pl.Utf8)):
        if c not in names:
            lf = lf.with_columns(pl.lit(None, dtype=dt).alias(c))
    df = lf.with_columns(
        pl.col("px").cast(pl.Float64).alias("px_f"),
        pl.col("sz").cast(DEC),
        (pl.col("closed_pnl").cast(pl.Float64).fill_null(0.0) - pl.col("fee").cast(pl.Float64).fill_null(0.0)).alias("cash_delta"),
        pl.col("liquidation_mark_px").cast(pl.Float64).alias("liq_mark_f"),
        pl.col("tid").cast(pl.Int64),
        pl.col("is_adl").fill_null(False),
    ).collect()
    if df.height and df["block_number"].null_count() == 0:
        df = df.sort(["block_number", "event_index", "tid"], nulls_last=True)
        df = df.with_columns(pl.col("block_number").alias("blk"))
        if "block_time" in df.columns:
            df = df.with_columns(pl.col("block_time").cast(pl.Int64).floordiv(1_000_000).fill_null(pl.col("time_ms")).alias("evt_ms"))
        else:
            df = df.with_columns(pl.col("time_ms").alias("evt_ms"))
    else:
        df = df.sort(["time_ms", "tid"], nulls_last=True).with_columns(
            pl.col("time_ms").alias("blk"), pl.col("time_ms").alias("evt_ms"))
    df = df.with_columns(
        pl.int_range(pl.len(), dtype=pl.Int64).alias("ord"),
        pl.when(pl.col("side") == "B").then(pl.col("sz")).otherwise(-pl.col("sz")).cast(DEC).alias("d"),
    )
    return df


def _snapshot_frames(positions: pl.DataFrame | None, accounts: pl.DataFrame | None,
                     start_ms: int | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(positions: user, coin, snap_ms, szi, entry, mode, lev, max_lev, iso_wallet0),
    (accounts: user, snap_ms, wallet0). Per user, the latest snapshot taken at or before ``start_ms``
    (the replay's first fill): a later one (say an API pull at the end of the window) describes the
    state *after* fills the replay is about to apply, so it cannot start the replay."""
    if start_ms is not None:
        if accounts is not None:
            accounts = accounts.filter(pl.col("time_ms") <= start_ms)
        if positions is not None:
            positions = positions.filter(pl.col("time_ms") <= start_ms)
    pos_schema = {"user": pl.Utf8, "coin": pl.Utf8, "snap_ms": pl.Int64, "szi": DEC, "entry": pl.Float64,
                  "mode": pl.Utf8, "lev": pl.Float64, "max_lev": pl.Float64, "iso_wallet0": pl.Float64,
                  "upnl0": pl.Float64}
    acc_schema = {"user": pl.Utf8, "snap_ms": pl.Int64, "account_value0": pl.Float64}
    if accounts is None or accounts.height == 0:
        acc = pl.DataFrame(schema=acc_schema)
    else:
        acc = (accounts.lazy().sort("time_ms").group_by("user").last()
               .select("user", pl.col("time_ms").alias("snap_ms"),
                       pl.col("account_value").cast(pl.Float64).alias("account_value0")).collect())
    if positions is None or positions.height == 0:
        pos = pl.DataFrame(schema=pos_schema)
    else:
        p = positions.lazy().select(
            "user", "coin", pl.col("time_ms").alias("snap_ms"), pl.col("szi").cast(DEC),
            pl.col("entry_px").cast(pl.Float64).alias("entry"),
            pl.col("leverage_type").alias("mode"), pl.col("leverage").cast(pl.Float64).alias("lev"),
            pl.col("max_leverage").cast(pl.Float64).alias("max_lev"),
            pl.col("unrealized_pnl").cast(pl.Float64).alias("upnl0"),
            pl.col("margin_used").cast(pl.Float64).alias("margin0"),
        )
        # one snapshot per user: the user's latest
        latest = p.group_by("user").agg(pl.col("snap_ms").max().alias("_m"))
        p = p.join(latest, on="user").filter(pl.col("snap_ms") == pl.col("_m")).drop("_m")
        pos = p.with_columns(
            pl.when(pl.col("mode") == "isolated").then(pl.col("margin0") - pl.col("upnl0")).otherwise(None)
            .alias("iso_wallet0")
        ).select(list(pos_schema)).collect()
        if acc.height:
            # users with positions must have an account row; the account snapshot time wins
            acc = acc.join(pos.group_by("user").agg(pl.col("snap_ms").max().alias("p_ms"),
                                                    pl.col("upnl0").sum().alias("u")), on="user", how="full",
                           coalesce=True)
            acc = acc.with_columns(pl.coalesce("snap_ms", "p_ms").alias("snap_ms")).drop("p_ms", "u")
    wallets = pos.group_by("user").agg(pl.col("upnl0").fill_null(0.0).sum().alias("upnl_sum"))
    acc = acc.join(wallets, on="user", how="left").with_columns(
        (pl.col("account_value0") - pl.col("upnl_sum").fill_null(0.0)).alias("wallet0")
    ).select("user", "snap_ms", "wallet0")
    return pos, acc


def build_state(fills: pl.DataFrame | pl.LazyFrame, positions: pl.DataFrame | None,
                accounts: pl.DataFrame | None) -> dict[str, pl.DataFrame]:
    """Replay fills from the snapshot. Returns frames:

    * ``fills``: the ordered fills (after the snapshot) with ``ord``, ``blk``;
    * ``events``: one row per (user, coin) event, sorted by (user, coin, ord), with the state after it:
      ``size`` (float), ``size_dec``, ``entry``, ``realized``, ``iso_wallet``, ``mode``, ``lev``,
      ``seg_start_ms`` (NULL when the segment began at the snapshot), ``next_ord``;
    * ``wallets``: one row per user event (``user``, ``ord``, ``wallet``), sorted by (user, ord);
    * ``snapshot_positions``, ``snapshot_accounts``.
    """
    f = order_fills(fills)
    pos, acc = _snapshot_frames(positions, accounts, f["evt_ms"].min() if f.height else None)
    # fills after the user's snapshot (users without a snapshot: every fill)
    f = f.join(acc.select("user", "snap_ms"), on="user", how="left").filter(
        pl.col("snap_ms").is_null() | (pl.col("evt_ms") >= pl.col("snap_ms"))).drop("snap_ms")
    snapped = acc.select("user").with_columns(pl.lit(True).alias("_snapped"))
    # anchors for users without any snapshot: first fill's startPosition per (user, coin)
    anchors = (f.join(snapped, on="user", how="left").filter(pl.col("_snapped").is_null())
               .group_by("user", "coin").agg(pl.col("start_position").sort_by("ord").first().alias("d"),
                                             pl.col("time_ms").min().alias("time_ms"))
               .filter(pl.col("d").is_not_null() & (pl.col("d") != 0))
               .with_columns(pl.lit(float("nan")).alias("px_f")))
    ev_cols = ["user", "coin", "ord", "blk", "time_ms", "d", "px_f", "cash_delta", "closed_pnl_f", "kind", "sp"]
    fe = f.select("user", "coin", "ord", "blk", "time_ms", "d", "px_f", "cash_delta",
                  pl.col("closed_pnl").cast(pl.Float64).fill_null(0.0).alias("closed_pnl_f"),
                  pl.lit("fill").alias("kind"), pl.col("start_position").cast(DEC).alias("sp"))
    se = pos.select("user", "coin", pl.lit(-1, pl.Int64).alias("ord"), pl.lit(None, pl.Int64).alias("blk"),
                    pl.lit(None, pl.Int64).alias("time_ms"), pl.col("szi").alias("d"),
                    pl.col("entry").alias("px_f"), pl.lit(0.0).alias("cash_delta"),
                    pl.lit(0.0).alias("closed_pnl_f"), pl.lit("snapshot").alias("kind"), pl.lit(None, DEC).alias("sp"))
    ae = anchors.select("user", "coin", pl.lit(-1, pl.Int64).alias("ord"), pl.lit(None, pl.Int64).alias("blk"),
                        pl.lit(None, pl.Int64).alias("time_ms"), pl.col("d").cast(DEC), "px_f",
                        pl.lit(0.0).alias("cash_delta"), pl.lit(0.0).alias("closed_pnl_f"),
                        pl.lit("anchor").alias("kind"), pl.lit(None, DEC).alias("sp"))
    ev = pl.concat([se.select(ev_cols), ae.select(ev_cols), fe.select(ev_cols)], how="vertical_relaxed")
    ev = ev.join(pos.select("user", "coin", "mode", "lev", "iso_wallet0"), on=["user", "coin"], how="left")
    ev = ev.sort(["user", "coin", "ord"])
    key = ["user", "coin"]
    # Every fill reports its owner's position before it (startPosition): the replay re-anchors on it, so a
    # missing fill (or a stale snapshot) shifts positions only until the owner's next reported fill.
    ev = ev.with_columns(pl.col("d").cum_sum().over(key).alias("naive"))
    ev = ev.with_columns(
        pl.when(pl.col("sp").is_not_null()).then(pl.col("sp") - (pl.col("naive") - pl.col("d"))).alias("drift")
    )
    ev = ev.with_columns(
        (pl.col("naive") + pl.col("drift").forward_fill().over(key).fill_null(0)).alias("size_dec")
    ).drop("naive", "drift")
    ev = ev.with_columns(
        pl.col("size_dec").cast(pl.Float64).alias("size"),
        (pl.col("size_dec") - pl.col("d")).cast(pl.Float64).alias("size_before"),
        pl.col("d").cast(pl.Float64).alias("d_f"),
    )
    sb, sa, d = pl.col("size_before"), pl.col("size"), pl.col("d_f")
    is_start = ((sb == 0) & (sa != 0)) | ((sb * sa) < 0)
    is_inc = (~is_start) & (sb != 0) & ((sb * d) > 0)
    ev = ev.with_columns(is_start.alias("is_start"), is_inc.alias("is_inc"))
    ev = ev.with_columns(pl.col("is_start").cast(pl.Int64).cum_sum().over(key).alias("seg"))
    seg = ["user", "coin", "seg"]
    ev = ev.with_columns(
        pl.when(pl.col("is_inc")).then((sb.abs() / sa.abs()).log()).otherwise(0.0).alias("la"),
        pl.when(pl.col("is_start")).then(pl.col("px_f"))
        .when(pl.col("is_inc")).then(pl.col("px_f") * d.abs() / sa.abs()).otherwise(0.0).alias("b"),
    )
    ev = ev.with_columns(pl.col("la").cum_sum().over(seg).alias("L"))
    ev = ev.with_columns((-pl.col("L") / CHUNK_NATS).floor().cast(pl.Int64).alias("chunk"))
    ev = ev.with_columns((pl.col("b") * (-CHUNK_NATS * pl.col("chunk") - pl.col("L")).exp()).alias("w"))
    ev = ev.with_columns(pl.col("w").cum_sum().over(seg + ["chunk"]).alias("T"))
    e_expr = (pl.col("L") + CHUNK_NATS * pl.col("chunk")).exp() * pl.col("T")
    if ev.height and ev["chunk"].max() > 0:
        tot = (ev.group_by(seg + ["chunk"], maintain_order=True).agg(pl.col("T").last().alias("tot"))
               .sort(seg + ["chunk"])
               .with_columns(pl.col("chunk").shift(1).over(seg).alias("pchunk"),
                             pl.col("tot").shift(1).over(seg).alias("ptot"))
               .filter(pl.col("pchunk") == pl.col("chunk") - 1).select(seg + ["chunk", "ptot"]))
        ev = ev.join(tot, on=seg + ["chunk"], how="left", maintain_order="left")
        e_expr = e_expr + pl.when(pl.col("ptot").is_not_null()).then(
            (pl.col("L") + CHUNK_NATS * (pl.col("chunk") - 1)).exp() * pl.col("ptot")).otherwise(0.0)
    ev = ev.with_columns(
        pl.when(pl.col("is_start") | pl.col("is_inc")).then(e_expr).otherwise(None).alias("entry_raw"),
        pl.when(pl.col("is_start")).then(pl.col("time_ms")).otherwise(None).alias("start_ms_raw"),
        pl.when(pl.col("is_start")).then(pl.col("blk")).otherwise(None).alias("start_blk_raw"),
    )
    ev = ev.with_columns(
        pl.when(sa != 0).then(pl.col("entry_raw").forward_fill().over(seg)).otherwise(None).alias("entry"),
        pl.when(sa != 0).then(pl.col("start_ms_raw").forward_fill().over(seg)).otherwise(None).alias("seg_start_ms"),
        pl.when(sa != 0).then(pl.col("start_blk_raw").forward_fill().over(seg)).otherwise(None).alias("seg_start_blk"),
        pl.col("closed_pnl_f").cum_sum().over(key).alias("realized"),
        pl.col("mode").fill_null("cross"),
    )
    ev = ev.with_columns(
        pl.when(pl.col("mode") == "isolated")
        .then(pl.col("iso_wallet0").fill_null(0.0) + pl.col("cash_delta").cum_sum().over(key)).otherwise(None)
        .alias("iso_wallet"),
        pl.col("ord").shift(-1).over(key).fill_null(BIG_ORD).alias("next_ord"),
        # a fill whose own startPosition disagrees with the replay (diagnostic)
    )
    ev = ev.select("user", "coin", "ord", "next_ord", "blk", "time_ms", "kind", "d_f", "size_before", "size",
                   "size_dec", "entry", "seg_start_ms", "seg_start_blk", "realized", "mode", "lev", "iso_wallet", "is_start")
    # wallets: per user, snapshot wallet + cumulative (closedPnl - fee)
    w0 = acc.select("user", pl.lit(-1, pl.Int64).alias("ord"), pl.col("wallet0").alias("cash_delta"))
    wf = f.select("user", "ord", "cash_delta")
    wallets = (pl.concat([w0, wf], how="vertical_relaxed").sort(["user", "ord"])
               .with_columns(pl.col("cash_delta").fill_null(0.0).cum_sum().over("user").alias("wallet"))
               .select("user", "ord", "wallet"))
    # users without a snapshot have an unknown wallet: mark it NULL
    unknown = wf.select("user").unique().join(acc.select("user"), on="user", how="anti")
    if unknown.height:
        wallets = wallets.join(unknown.with_columns(pl.lit(True).alias("_u")), on="user", how="left").with_columns(
            pl.when(pl.col("_u")).then(None).otherwise(pl.col("wallet")).alias("wallet")).drop("_u")
    return {"fills": f, "events": ev, "wallets": wallets, "snapshot_positions": pos, "snapshot_accounts": acc}


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
    out = f.filter(pl.col("_n") > 1).select(
        "user", "coin", "ord", "blk", "time_ms", "tid", pl.col("start_position").alias("reported"), "replayed",
        pl.when(pl.col("coin").str.starts_with("@") | pl.col("coin").str.contains("/", literal=True))
        .then(pl.lit("spot")).otherwise(pl.lit("perp")).alias("market"))
    diff = (pl.col("reported").cast(pl.Float64) - pl.col("replayed").cast(pl.Float64)).abs()
    return out.with_columns(
        diff.alias("abs_diff"),
        (pl.col("reported") == pl.col("replayed")).alias("exact"),
        (diff <= rel_tol * pl.max_horizontal(pl.col("reported").cast(pl.Float64).abs(), pl.lit(1.0))).alias("agrees"),
    )
