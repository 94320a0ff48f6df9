"""Reconstruction integrity: which candidate states the data cannot vouch for.

The replay (``replay.py``) anchors every (user, coin) on each fill's reported ``startPosition``, so a lost
fill only corrupts the state *between* the owner's fills. Two cases are visible in the data itself,
without any ground truth:

* **contradicted**: the owner's next fill reports a ``startPosition`` that differs from the replayed state
  (``startPosition`` of the previous fill + its size, or the snapshot size before the first fill). The
  replayed state in that interval is known to be wrong: at least one fill of the owner is missing.
* **unconfirmed, consistent with a lost leg**: after the owner's last fill (or the snapshot, when the owner
  has no fill in the coin) nothing confirms the state any more. In node data both legs of every trade are
  present and share a ``tid``; a trade with one leg has lost the other. If a lost leg of at least the
  position's size, on the side that closes it, happened after the last confirmation, the position may be a
  *ghost* (closed or flipped in reality, open in the replay): a ghost is never selected again and looks
  skipped.

Both are recorded per pool row as ``state_note`` (a legitimate reason not to count the row in the
exemption test nor in the rule fit), with the evidence in ``state_detail``. Positions that a later fill
confirms are never marked; a lost leg is only matched to positions it could have closed (no larger than
it), so the mark stays targeted. A lost fill also takes its cash (closedPnl, fee) with it: from the first
contradiction of an account in any coin, its account value is uncertain (``account_gap``), which the
exemption test calibrates as a noisier stratum of its own. Trades with one leg are only read as lost legs when the fills are two-sided by construction
(node fills: every fill has a block number and most ``tid``s have two legs); an info-API pull of tracked
accounts has one-legged trades everywhere and gets no lost-leg matching (contradictions still apply).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from forensics.formats.hyperliquid.snapshot_export import DERIVED_ISOLATED

from .arrays import rows_of
from .replay import DEC, after_snapshot, order_fills, perp_fills

CONTRADICTED = "state_contradicted"
LOST_LEG = "state_unconfirmed_lost_leg"
ISOLATED_MARGIN = "state_unconfirmed_isolated_margin"
#: fills are two-sided by construction when at least this share of tids carries both legs
TWO_SIDED_MIN_SHARE = 0.9


def ordered_fills(fills: pl.DataFrame) -> pl.DataFrame:
    """The fills in the replay's order (:func:`forensics.reconstruct.replay.order_fills`) with ``ord``,
    ``blk``, ``evt_ms``, signed size ``d`` and ``sp`` (startPosition) as decimals; names stay integer codes
    (categorical), so pools and snapshots are joined as categoricals too."""
    return order_fills(fills).select(ORDERED_COLUMNS)


ORDERED_COLUMNS = [
    "user",
    "coin",
    "side",
    "liquidation_method",
    "time_ms",
    "block_number",
    "event_index",
    "tid",
    "sz",
    pl.col("start_position").alias("sp"),
    "is_adl",
    "blk",
    "evt_ms",
    "ord",
    "d",
]


def lost_legs(f: pl.DataFrame) -> tuple[pl.DataFrame, bool]:
    """(trades with one leg in the data, whether the data are two-sided). ``f``: :func:`ordered_fills`.

    Columns: tid, coin, ord, blk, seen_user, missing_side ('B'/'A': the lost leg's side), sz (decimal),
    adl (the trade was an ADL trade: the surviving leg is an ADL leg or a backstop counter-leg)."""
    schema = {
        "tid": pl.Int64,
        "coin": pl.Categorical,
        "ord": pl.Int64,
        "blk": pl.Int64,
        "seen_user": pl.Categorical,
        "missing_side": pl.Utf8,
        "sz": f.schema.get("sz", pl.Float64),
        "adl": pl.Boolean,
    }
    if f.height == 0 or f["tid"].null_count() == f.height:
        return pl.DataFrame(schema=schema), False
    legs = (
        f.filter(pl.col("tid").is_not_null())
        .group_by("tid")
        .agg(
            pl.len().alias("n"),
            pl.col("coin").first(),
            pl.col("ord").min(),
            pl.col("blk").first(),
            pl.col("user").first().alias("seen_user"),
            pl.col("side").first().alias("seen_side"),
            pl.col("sz").first(),
            (pl.col("is_adl") | (pl.col("liquidation_method").fill_null("") == "backstop")).any().alias("adl"),
        )
    )
    two_sided = (
        f["block_number"].null_count() == 0
        and legs.filter(pl.col("n") == 2).height >= TWO_SIDED_MIN_SHARE * legs.height
    )
    one = legs.filter(pl.col("n") == 1).with_columns(
        pl.when(pl.col("seen_side") == "B").then(pl.lit("A")).otherwise(pl.lit("B")).alias("missing_side")
    )
    return one.select(list(schema)).sort("ord"), two_sided


def _snapshot_sizes(
    positions: pl.DataFrame | None, accounts: pl.DataFrame | None, start_ms: int | None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(user, coin, szi) of each user's latest snapshot at or before ``start_ms`` (the first fill, as the
    replay does), and (user, snap_ms) of the users that have one."""
    if start_ms is not None:
        accounts = accounts.filter(pl.col("time_ms") <= start_ms) if accounts is not None else None
        positions = positions.filter(pl.col("time_ms") <= start_ms) if positions is not None else None
    snap_users = []
    if accounts is not None and accounts.height:
        snap_users.append(
            accounts.group_by("user")
            .agg(pl.col("time_ms").max().alias("snap_ms"))
            .with_columns(pl.col("user").cast(pl.Categorical))
        )
    if positions is not None and positions.height:
        latest = positions.group_by("user").agg(pl.col("time_ms").max().alias("snap_ms"))
        snap_users.append(latest.with_columns(pl.col("user").cast(pl.Categorical)))
        pos = (
            positions.join(latest, on="user")
            .filter(pl.col("time_ms") == pl.col("snap_ms"))
            .select(pl.col("user", "coin").cast(pl.Categorical), pl.col("szi").cast(DEC))
        )
    else:
        pos = pl.DataFrame(schema={"user": pl.Categorical, "coin": pl.Categorical, "szi": DEC})
    users = (
        pl.concat(snap_users).group_by("user").agg(pl.col("snap_ms").max())
        if snap_users
        else pl.DataFrame(schema={"user": pl.Categorical, "snap_ms": pl.Int64})
    )
    return pos, users


@dataclass(frozen=True)
class PairNotes:
    """Per (user, coin): the intervals of replay order in which the data contradict the replayed state, and
    the earliest lost leg that could have closed the position after its last confirmation."""

    contradicted: pl.DataFrame  # user, coin, lo, hi (ord interval (lo, hi]), gap (reported - replayed size)
    lost: pl.DataFrame  # user, coin, lost_ord, lost_tid, lost_sz, adl, abs_tail
    summary: dict


def pair_notes(
    fills: pl.DataFrame,
    positions: pl.DataFrame | None,
    accounts: pl.DataFrame | None,
    *,
    ordered: pl.DataFrame | None = None,
) -> PairNotes:
    """The integrity notes of every (user, coin) of the replay, in its order (``ord``). ``ordered``: the perp
    fills already in replay order (:func:`forensics.reconstruct.replay.order_fills` output), if at hand."""
    contra_schema = {"user": pl.Utf8, "coin": pl.Utf8, "lo": pl.Int64, "hi": pl.Int64, "gap": pl.Float64}
    lost_schema = {
        "user": pl.Utf8,
        "coin": pl.Utf8,
        "lost_ord": pl.Int64,
        "lost_tid": pl.Int64,
        "lost_sz": pl.Float64,
        "adl": pl.Boolean,
        "abs_tail": pl.Float64,
    }
    none = PairNotes(
        pl.DataFrame(schema=contra_schema), pl.DataFrame(schema=lost_schema), {"lost_legs": 0, "two_sided": False}
    )
    if ordered is None and (fills is None or fills.height == 0):
        return none
    # spot balances are not perp positions (fees in the token move them)
    f = ordered_fills(perp_fills(fills)) if ordered is None else ordered.select(ORDERED_COLUMNS)
    if f.height == 0:
        return none
    snap_pos, snap_users = _snapshot_sizes(positions, accounts, f["evt_ms"].min())
    # the replay's fill set: fills at or after the owner's snapshot (every fill for users without one)
    f = after_snapshot(f, snap_users)
    key = ["user", "coin"]
    g = f.select(
        "user", "coin", "ord", "sp", "d", pl.Series("snapped", rows_of(snap_users["user"], f["user"]) >= 0)
    ).sort("ord")  # per-(user, coin) windows below follow ord
    g = (
        g.join(snap_pos, on=key, how="left")
        .with_columns(
            pl.col("ord").shift(1).over(key).fill_null(-1).alias("prev_ord"),
            (pl.col("sp") + pl.col("d")).shift(1).over(key).alias("prev_after"),
        )
        .with_columns(
            # before the first fill the replay holds the snapshot size (0 without a position in the coin)
            pl.when(pl.col("prev_ord") >= 0)
            .then(pl.col("prev_after"))
            .when(pl.col("snapped"))
            .then(pl.col("szi").fill_null(pl.lit(0).cast(DEC)))
            .otherwise(None)
            .alias("expected")
        )
    )
    bad = g.filter(pl.col("sp").is_not_null() & pl.col("expected").is_not_null() & (pl.col("sp") != pl.col("expected")))
    contradicted = bad.select(
        pl.col("user", "coin").cast(pl.Utf8),
        pl.col("prev_ord").alias("lo"),
        pl.col("ord").alias("hi"),
        (pl.col("sp") - pl.col("expected")).cast(pl.Float64).alias("gap"),
    )
    legs, two_sided = lost_legs(f)
    lost = none.lost
    if two_sided and legs.height:
        # the unconfirmed tail of every (user, coin) with a position: its state after its last fill (or snapshot)
        last = g.group_by(key).agg(
            pl.col("ord").last().alias("last_ord"), (pl.col("sp") + pl.col("d")).last().alias("tail")
        )
        held = snap_pos.join(last, on=key, how="full", coalesce=True)
        held = held.with_columns(pl.col("last_ord").fill_null(-1), pl.coalesce("tail", "szi").alias("tail"))
        held = held.filter(pl.col("tail").is_not_null() & (pl.col("tail") != 0)).with_columns(
            pl.col("tail").abs().alias("abs_tail"),
            pl.when(pl.col("tail") > 0).then(pl.lit("A")).otherwise(pl.lit("B")).alias("closing_side"),
        )
        lg = legs.select(
            "coin",
            pl.col("ord").alias("lost_ord"),
            pl.col("tid").alias("lost_tid"),
            pl.col("sz").cast(DEC).alias("lost_sz"),
            pl.col("missing_side").alias("closing_side"),
            "adl",
        )
        # a lost leg at least the position's size on the closing side could have closed or flipped it
        m = held.join(lg, on=["coin", "closing_side"], how="inner").filter(
            (pl.col("lost_ord") > pl.col("last_ord")) & (pl.col("lost_sz") >= pl.col("abs_tail"))
        )
        if m.height:
            lost = (
                m.group_by(key)
                .agg(
                    pl.col("lost_ord").min(),
                    pl.col("lost_tid").sort_by("lost_ord").first(),
                    pl.col("lost_sz").sort_by("lost_ord").first().cast(pl.Float64),
                    pl.col("adl").sort_by("lost_ord").first(),
                    pl.col("abs_tail").first().cast(pl.Float64),
                )
                .select(pl.col("user", "coin").cast(pl.Utf8), "lost_ord", "lost_tid", "lost_sz", "adl", "abs_tail")
            )
    return PairNotes(contradicted, lost, {"lost_legs": legs.height if two_sided else 0, "two_sided": two_sided})


def contradicted_detail(gap: pl.Expr) -> pl.Expr:
    return pl.format(
        "the owner's next fill reports a position {} away from the replayed one: a fill is missing", gap.round(10)
    )


def lost_leg_detail() -> pl.Expr:
    return pl.format(
        "no fill confirms the position of {} after a lost {}leg (tid {}) of {} on its closing "
        "side: it may have been closed or flipped",
        pl.col("abs_tail"),
        pl.when(pl.col("adl")).then(pl.lit("ADL ")).otherwise(pl.lit("")),
        pl.col("lost_tid"),
        pl.col("lost_sz"),
    )


def row_details(rows: pl.DataFrame, notes: PairNotes, k_col: str = "K") -> pl.DataFrame:
    """``rows`` (user, coin, ``k_col``, state_note) with ``state_detail``: the evidence behind each note."""
    key = ["user", "coin"]
    rows = rows.with_columns(pl.col("user", "coin").cast(pl.Utf8), pl.int_range(pl.len()).alias("_r"))
    c = (
        rows.filter(pl.col("state_note") == CONTRADICTED)
        .join(notes.contradicted, on=key, how="inner")
        .filter((pl.col(k_col) > pl.col("lo")) & (pl.col(k_col) <= pl.col("hi")))
        .group_by("_r")
        .agg(pl.col("gap").first())
    )
    c = c.select("_r", contradicted_detail(pl.col("gap")).alias("_d"))
    lost = (
        rows.filter(pl.col("state_note") == LOST_LEG)
        .join(notes.lost, on=key, how="inner")
        .select("_r", lost_leg_detail().alias("_d"))
    )
    d = pl.concat([c, lost])
    return (
        rows.join(d, on="_r", how="left")
        .sort("_r")
        .drop("_r")
        .with_columns(pl.col("_d").alias("state_detail"))
        .drop("_d")
    )


def state_notes(
    fills: pl.DataFrame,
    positions: pl.DataFrame | None,
    accounts: pl.DataFrame | None,
    pools: pl.DataFrame,
    steps: pl.DataFrame,
) -> tuple[pl.DataFrame, dict]:
    """Per pool row (step_id, user) whose reconstructed state the data cannot vouch for: ``state_note``
    (:data:`CONTRADICTED` or :data:`LOST_LEG`) and ``state_detail``, or whose account lost a fill before
    the action (``account_gap``: its cash, so its account value, is uncertain); plus a summary dict."""
    out_schema = {"step_id": pl.Int64, "user": pl.Utf8, "state_note": pl.Utf8, "state_detail": pl.Utf8}
    empty = pl.DataFrame(schema=out_schema)
    if pools.height == 0 or fills is None or fills.height == 0:
        return empty.with_columns(pl.lit(False).alias("account_gap")), {
            "lost_legs": 0,
            "two_sided": False,
            "contradicted_rows": 0,
            "lost_leg_rows": 0,
            "account_gap_rows": 0,
        }
    notes = pair_notes(fills, positions, accounts)
    f = ordered_fills(perp_fills(fills))
    key = ["user", "coin"]
    rows = pools.select("step_id", pl.col("user", "coin").cast(pl.Utf8))
    # K: the replay ord of each step's first ADL leg; a pool row holds the state just before it
    k_of = (
        steps.select("step_id", pl.col("first_tid").cast(pl.Int64).alias("tid"))
        .join(f.filter(pl.col("is_adl")).group_by("tid").agg(pl.col("ord").min().alias("K")), on="tid", how="left")
        .select("step_id", "K")
    )
    rows = rows.join(k_of, on="step_id", how="left")
    parts = []
    if notes.contradicted.height:
        c = rows.join(notes.contradicted, on=key, how="inner").filter(
            (pl.col("K") > pl.col("lo")) & (pl.col("K") <= pl.col("hi"))
        )
        parts.append(
            c.group_by("step_id", "user")
            .agg(pl.col("gap").first())
            .select(
                "step_id",
                "user",
                pl.lit(CONTRADICTED).alias("state_note"),
                contradicted_detail(pl.col("gap")).alias("state_detail"),
            )
        )
    if notes.lost.height:
        t = rows.join(notes.lost, on=key, how="inner").filter(pl.col("K") > pl.col("lost_ord"))
        parts.append(
            t.select("step_id", "user", pl.lit(LOST_LEG).alias("state_note"), lost_leg_detail().alias("state_detail"))
        )
    out = (
        pl.concat(parts, how="vertical_relaxed").unique(["step_id", "user"], keep="first", maintain_order=True)
        if parts
        else empty
    )
    out = out.select([pl.col(k).cast(v) for k, v in out_schema.items()])
    # a lost fill also took its closedPnl and fee with it: from the first one the data reveal for an
    # account (in any coin), its cash, and so its account value in every pool, is uncertain
    first_gap = notes.contradicted.group_by("user").agg(pl.col("lo").min().alias("first_lo"))
    gap_rows = (
        rows.join(first_gap, on="user", how="inner")
        .filter(pl.col("K") > pl.col("first_lo"))
        .select("step_id", "user", pl.lit(True).alias("account_gap"))
        .unique(["step_id", "user"])
    )
    out = out.join(gap_rows, on=["step_id", "user"], how="full", coalesce=True).with_columns(
        pl.col("account_gap").fill_null(False)
    )
    summary = {
        **notes.summary,
        "contradicted_rows": out.filter(pl.col("state_note") == CONTRADICTED).height,
        "lost_leg_rows": out.filter(pl.col("state_note") == LOST_LEG).height,
        "account_gap_rows": int(out["account_gap"].sum()),
    }
    return out, summary


def annotate(pools: pl.DataFrame, notes: pl.DataFrame) -> pl.DataFrame:
    """``pools`` with ``state_note`` / ``state_detail`` (NULL where the state is vouched for) and
    ``account_gap``."""
    pools = pools.drop([c for c in ("state_note", "state_detail", "account_gap") if c in pools.columns])
    if "account_gap" not in notes.columns:
        notes = notes.with_columns(pl.lit(False).alias("account_gap"))
    return pools.join(notes, on=["step_id", "user"], how="left").with_columns(pl.col("account_gap").fill_null(False))


def isolated_margin_unknown(positions: pl.DataFrame | None, ordered: pl.DataFrame) -> pl.DataFrame:
    """(user, until_ord): accounts whose snapshot holds an isolated position with a *derived* margin (the
    clearinghouse export publishes none: the reader assumes the opening rule), and the replay order up to
    which that position lasts (until it is closed or flips; int64 max if never). Until then the account's
    cash is split between cross and isolated margin in a way the data do not confirm, so its account value,
    and every rank that depends on it, is not vouched for. Empty where snapshots report the margin."""
    out_schema = {"user": pl.Utf8, "until_ord": pl.Int64}
    if positions is None or positions.height == 0 or "derivation" not in positions.columns or ordered.height == 0:
        return pl.DataFrame(schema=out_schema)
    if "sp" not in ordered.columns:
        ordered = ordered.select(ORDERED_COLUMNS)
    start = ordered["evt_ms"].min()
    snap = positions.filter(pl.col("time_ms") <= start) if start is not None else positions
    snap = snap.filter(pl.col("time_ms") == pl.col("time_ms").max().over("user"))
    iso = snap.filter((pl.col("leverage_type") == "isolated") & (pl.col("derivation") == DERIVED_ISOLATED)).select(
        pl.col("user", "coin").cast(pl.Utf8), pl.col("szi").cast(pl.Float64).sign().alias("sign")
    )
    if iso.height == 0:
        return pl.DataFrame(schema=out_schema)
    after = ordered.select(
        pl.col("user", "coin").cast(pl.Utf8), "ord", (pl.col("sp") + pl.col("d")).cast(pl.Float64).alias("after")
    )
    ends = (
        after.join(iso, on=["user", "coin"])
        .filter(pl.col("after") * pl.col("sign") <= 0)
        .group_by("user", "coin")
        .agg(pl.col("ord").min().alias("end"))
    )
    never = np.iinfo(np.int64).max
    return (
        iso.join(ends, on=["user", "coin"], how="left")
        .group_by("user")
        .agg(pl.col("end").fill_null(never).max().alias("until_ord"))
        .select(list(out_schema))
    )
