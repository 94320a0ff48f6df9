"""The reconstruction benchmark's baseline: ADL steps and pools by a straightforward per-event Python replay.

It does the same job as :func:`forensics.reconstruct.build_steps_and_pools` and returns the same two
tables, written the obvious way: one loop over the fills in replay order that keeps every position in
dicts (size exact as an integer number of 1e-10 units, re-anchored on each fill's startPosition; entry
with Hyperliquid's semantics; the isolated wallet; the segment start for the position age), every
user's wallet, each coin's last trade; and at each ADL step a scan of the coin's open positions that
computes each candidate's features (account value over all its positions at mark) and outcome.

Where the product is vectorised for preparation that is not the replay, the baseline uses the same
code, which only flatters the baseline: fill ordering (``order_fills``), the cut after the last ADL
block, step segmentation (``segment_steps``) and the list of mark observations.

``compare`` checks two (steps, pools) results column by column; the benchmark uses it to show that the
two implementations agree before it reports their speed ratio.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import polars as pl

from forensics.reconstruct.actions import liquidator_vaults, segment_steps, through_last_adl
from forensics.reconstruct.marks import mark_observations
from forensics.reconstruct.replay import order_fills, perp_fills
from forensics.tables import ADL_POOLS, ADL_STEPS

UNIT = 10**10  # sizes and cash are Decimal(38, 10): integers of 1e-10 units are exact
_TYPES = {
    "VARCHAR": pl.Utf8,
    "BIGINT": pl.Int64,
    "UBIGINT": pl.UInt64,
    "INTEGER": pl.Int32,
    "BOOLEAN": pl.Boolean,
    "DOUBLE": pl.Float64,
}


@dataclass(slots=True)
class Position:
    size: int = 0  # 1e-10 units, signed
    entry: float = 0.0  # the recurrence's value; meaningful when ``priced``
    priced: bool = False  # an open or increase since the segment began
    seg_is_start: bool = False  # the segment began with an open from zero or a flip
    seg_ms: int | None = None
    seg_blk: int | None = None
    cash: int = 0  # running closedPnl - fee of this position, 1e-10 units
    mode: str = "cross"
    lev: float | None = None
    iso_wallet0: float | None = None
    started: bool = False  # any event applied yet

    def apply(self, d: int, px: float, sp: int | None, ms: int | None, blk: int | None, cash: int) -> None:
        before = sp if sp is not None else self.size
        after = before + d
        start = (before == 0 and after != 0) or before * after < 0
        increase = not start and before != 0 and before * d > 0
        sb, sa = before / UNIT, after / UNIT
        prev = self.entry if self.started else 0.0  # a position's first event restarts the average
        if start:
            self.entry = px
        elif increase:
            self.entry = prev * (abs(sb) / abs(sa)) + px * abs(d / UNIT) / abs(sa)
        elif not self.started:
            self.entry = 0.0
        if not self.started or start:
            self.seg_is_start, self.seg_ms, self.seg_blk = start, ms, blk
            self.priced = start or increase
        elif increase:
            self.priced = True
        self.size, self.started = after, True
        self.cash += cash

    def entry_px(self) -> float | None:
        return self.entry if self.size != 0 and self.priced else None

    def iso_wallet(self) -> float | None:
        if self.mode != "isolated":
            return None
        return (self.iso_wallet0 or 0.0) + self.cash / UNIT


def _div(a: float | None, b: float | None) -> float | None:
    """a / b with IEEE results for zero divisors (as the vectorised code gets), None for missing values."""
    if a is None or b is None:
        return None
    if b == 0:
        return math.nan if a == 0 or a != a else math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


def _snapshot(positions: pl.DataFrame | None, accounts: pl.DataFrame | None, start_ms: int | None):
    """(positions: (user, coin) -> row dict, snapshot time per user, wallet at the snapshot per user)."""
    latest_acc: dict[str, tuple[int, float | None]] = {}
    for user, ms, av in (
        accounts.select("user", "time_ms", pl.col("account_value").cast(pl.Float64)).iter_rows()
        if accounts is not None
        else ()
    ):
        if start_ms is not None and ms > start_ms:
            continue
        if user not in latest_acc or ms >= latest_acc[user][0]:
            latest_acc[user] = (ms, av)
    rows: dict[str, list[tuple]] = {}
    if positions is not None:
        p = positions.select(
            "user",
            "coin",
            "time_ms",
            pl.col("szi").cast(pl.Decimal(38, 10)).to_physical(),
            pl.col("entry_px").cast(pl.Float64),
            "leverage_type",
            *[pl.col(c).cast(pl.Float64) for c in ("leverage", "max_leverage", "unrealized_pnl", "margin_used")],
        )
        for r in p.iter_rows():
            if start_ms is None or r[2] <= start_ms:
                rows.setdefault(r[0], []).append(r)
    snap_pos, snap_ms, wallet0 = {}, {}, {}
    for user, rs in rows.items():
        newest = max(r[2] for r in rs)
        for _, coin, ms, szi, entry, mode, lev, max_lev, upnl, margin in rs:
            if ms == newest:
                snap_pos[(user, coin)] = dict(
                    szi=szi,
                    entry=entry,
                    mode=mode,
                    lev=lev,
                    max_lev=max_lev,
                    upnl=upnl,
                    iso0=(margin - upnl if mode == "isolated" and None not in (margin, upnl) else None),
                )
        if latest_acc:
            snap_ms[user] = newest
    for user, (ms, _) in latest_acc.items():
        snap_ms[user] = ms
    upnl_sum: dict[str, float] = {}
    for (user, _), p in snap_pos.items():
        upnl_sum[user] = upnl_sum.get(user, 0.0) + (p["upnl"] or 0.0)
    for user in snap_ms:
        av = latest_acc.get(user, (None, None))[1]
        wallet0[user] = None if av is None else av - upnl_sum.get(user, 0.0)
    return snap_pos, snap_ms, wallet0


def _coin_meta(asset_ctxs: pl.DataFrame | None, snap_pos: dict) -> dict[str, tuple[float | None, int | None]]:
    meta: dict[str, tuple[int, float | None, int | None]] = {}
    if asset_ctxs is not None:
        for coin, ms, max_lev, szd in asset_ctxs.select(
            "coin", "time_ms", pl.col("max_leverage").cast(pl.Float64), pl.col("sz_decimals").cast(pl.Int64)
        ).iter_rows():
            if coin not in meta or ms >= meta[coin][0]:
                meta[coin] = (ms, max_lev, szd)
    out = {coin: (m[1], m[2]) for coin, m in meta.items()}
    snap_max: dict[str, float | None] = {}
    for (_, coin), p in snap_pos.items():
        if p["max_lev"] is not None:
            snap_max[coin] = max(snap_max.get(coin, p["max_lev"]), p["max_lev"])
        else:
            snap_max.setdefault(coin, None)
    for coin, m in snap_max.items():
        max_lev, szd = out.get(coin, (None, None))
        out[coin] = (max_lev if max_lev is not None else m, szd)
    return out


#: the product's integrity notes and account-value interval (from the marks' uncertainty); a plain replay has none
PRODUCT_ONLY_COLUMNS = ("state_note", "account_gap", "account_value_low_usd", "account_value_high_usd")


def steps_and_pools(
    fills: pl.DataFrame,
    positions: pl.DataFrame | None,
    accounts: pl.DataFrame | None,
    asset_ctxs: pl.DataFrame | None,
    *,
    vault: str | None = None,
    venue: str = "hyperliquid",
    gap_seconds: float = 5.0,
    min_account_value: float | None = 0.0,
    max_mark_age_ms: int | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    f = order_fills(through_last_adl(perp_fills(fills)))
    start_ms = f["evt_ms"].min() if f.height else None
    snap_pos, snap_ms, wallet0 = _snapshot(positions, accounts, start_ms)
    f = f.with_columns(pl.col("user").cast(pl.Utf8))
    # a user's fills before its snapshot are already in the snapshot
    f = f.filter(pl.Series([u not in snap_ms or t >= snap_ms[u] for u, t in f.select("user", "evt_ms").iter_rows()]))
    steps, legs = segment_steps(f, gap_seconds)
    ambiguous_order = f.height > 0 and f["block_number"].null_count() > 0

    # marks: each coin's observations in time order, for as-of lookups
    obs_t: dict[str, list[int]] = {}
    obs_v: dict[str, list[tuple[float, str, int]]] = {}
    for coin, t, mark, src in (
        mark_observations(f, asset_ctxs).select(pl.col("coin").cast(pl.Utf8), "t_ms", "mark", "mark_source").iter_rows()
    ):
        obs_t.setdefault(coin, []).append(t)
        obs_v.setdefault(coin, []).append((mark, src, t))
    last_trade: dict[str, tuple[float, int]] = {}

    def mark_at(coin: str, t_ms: int) -> tuple[float | None, str | None]:
        i = bisect.bisect_right(obs_t.get(coin, ()), t_ms) - 1
        mark, src, obs_ms = obs_v[coin][i] if i >= 0 else (None, None, None)
        trade = last_trade.get(coin)
        if trade is not None and (
            mark is None or (max_mark_age_ms is not None and t_ms - obs_ms > max_mark_age_ms and trade[1] > obs_ms)
        ):
            return trade[0], "last_trade"
        return mark, src

    # positions: snapshot ones, then anchors for users without any snapshot
    pos: dict[tuple[str, str], Position] = {}
    by_coin: dict[str, dict[str, Position]] = {}
    by_user: dict[str, dict[str, Position]] = {}

    def position(user: str, coin: str) -> Position:
        p = pos.get((user, coin))
        if p is None:
            p = pos[(user, coin)] = Position()
            s = snap_pos.get((user, coin))
            if s is not None:
                p.mode, p.lev, p.iso_wallet0 = s["mode"] or "cross", s["lev"], s["iso0"]
            by_coin.setdefault(coin, {})[user] = p
            by_user.setdefault(user, {})[coin] = p
        return p

    for (user, coin), s in snap_pos.items():
        position(user, coin).apply(s["szi"], math.nan if s["entry"] is None else s["entry"], None, None, None, 0)
    rows = f.select(
        "user",
        pl.col("coin").cast(pl.Utf8),
        "ord",
        "blk",
        "time_ms",
        pl.col("d").to_physical(),
        "px_f",
        pl.col("start_position").to_physical(),
        pl.col("cash").to_physical(),
    ).rows()
    anchored: set[tuple[str, str]] = set()
    for user, coin, _, _, _, _, _, sp, _ in rows:
        if user not in snap_ms and (user, coin) not in anchored:
            anchored.add((user, coin))
            if sp:
                position(user, coin).apply(sp, math.nan, None, None, None, 0)

    # outcomes per (step, user): closed size and the replay position of the first leg
    closed: dict[tuple[int, str], list] = {}
    for sid, user, o, sz in legs.select("step_id", pl.col("user").cast(pl.Utf8), "ord", "sz").sort("ord").iter_rows():
        c = closed.setdefault((sid, user), [0.0, o])
        c[0] += sz
    first_ords: dict[int, list[int]] = {}
    for (sid, _), (_, o) in closed.items():
        first_ords.setdefault(sid, []).append(o)
    fill_order = {(sid, o): n for sid, ords in first_ords.items() for n, o in enumerate(sorted(ords), 1)}
    meta = _coin_meta(asset_ctxs, snap_pos)
    wallet_run: dict[str, int] = {}
    never = set(liquidator_vaults(f).cast(pl.Utf8).to_list()) | ({vault.lower()} if vault else set())
    out: list[tuple] = []

    def emit(step: tuple) -> None:
        sid, coin, adl_side, liq, t_ms, blk, adl_px = step
        marks: dict[str, tuple[float | None, str | None]] = {}
        mark, src = marks[coin] = mark_at(coin, t_ms)
        max_lev, szd = meta.get(coin, (None, None))
        for user, p in by_coin.get(coin, {}).items():
            if p.size == 0 or (p.size > 0) != (adl_side == "long") or user == liq or user in never:
                continue
            cross_upnl, iso_wallets, unknown, account_mm = 0.0, 0.0, False, 0.0
            for cc, q in by_user[user].items():
                if q.size != 0:
                    m = marks[cc] if cc in marks else marks.setdefault(cc, mark_at(cc, t_ms))
                    lev_cc = meta.get(cc, (None, None))[0]
                    if m[0] is not None and lev_cc is not None:
                        account_mm += abs(q.size) / UNIT * m[0] / (2.0 * lev_cc)
                if q.mode == "isolated":
                    iso_wallets += q.iso_wallet()
                elif q.size != 0:
                    e = q.entry_px()
                    if m[0] is not None and e is not None:
                        u = q.size / UNIT * (m[0] - e)
                        unknown = unknown or u != u
                        cross_upnl += u
            w0 = wallet0.get(user)
            wallet = None if w0 is None else w0 + wallet_run.get(user, 0) / UNIT
            size = abs(p.size) / UNIT
            sgn = 1.0 if p.size > 0 else -1.0
            entry = p.entry_px()
            notional = None if mark is None else size * mark
            upnl = None if mark is None or entry is None else sgn * size * (mark - entry)
            if p.mode == "isolated":
                av = None if upnl is None else p.iso_wallet() + upnl
            else:
                av = None if unknown or wallet is None else wallet - iso_wallets + cross_upnl
            if min_account_value is not None and av is not None and av == av and av <= min_account_value:
                continue
            c = closed.get((sid, user))
            selected = c is not None
            closed_size = c[0] if selected else 0.0
            skip = None
            if not selected:
                if szd is not None and size < 10.0 ** (-szd) * (1 - 1e-9):
                    skip = "below_min_size"
                elif (
                    p.mode == "isolated"
                    and entry is not None
                    and adl_px is not None
                    and p.iso_wallet() + sgn * size * (adl_px - entry) <= 0
                ):
                    skip = "isolated_no_overlap"
                elif ambiguous_order and p.seg_is_start and p.seg_blk is not None and p.seg_blk == blk:
                    skip = "opened_same_block"
            price_ret = _div(mark, entry)
            seg_ms = p.seg_ms if p.seg_is_start else None
            lev = _div(notional, av)
            out.append(
                (
                    venue,
                    sid,
                    coin,
                    user,
                    "long" if p.size > 0 else "short",
                    size,
                    entry,
                    mark,
                    src or "last_trade",
                    notional,
                    upnl,
                    None if price_ret is None else (price_ret - 1 if sgn > 0 else 1 - price_ret),
                    _div(upnl, _div(size * entry, p.lev) if entry is not None else None),
                    av,
                    wallet,
                    lev,
                    p.lev,
                    lev,
                    p.mode,
                    _div(notional, None if max_lev is None else 2.0 * max_lev),
                    None if seg_ms is None else t_ms - seg_ms,
                    selected,
                    fill_order[(sid, c[1])] if selected else None,
                    closed_size,
                    selected and closed_size < size * (1 - 1e-12),
                    skip,
                    None if szd is None else 10.0 ** (-szd),
                    account_mm,
                )
            )

    pending = (
        steps.select(
            "K",
            "step_id",
            pl.col("coin").cast(pl.Utf8),
            "adl_side",
            pl.col("liquidated_user").cast(pl.Utf8),
            "time_ms",
            "blk",
            "adl_px",
        )
        .sort("K")
        .rows()
    )
    nxt = 0
    for user, coin, o, blk, ms, d, px, sp, cash in rows:
        while nxt < len(pending) and pending[nxt][0] <= o:
            emit(pending[nxt][1:])
            nxt += 1
        position(user, coin).apply(d, px, sp, ms, blk, cash)
        wallet_run[user] = wallet_run.get(user, 0) + cash
        last_trade[coin] = (px, ms)
    for step in pending[nxt:]:
        emit(step[1:])

    pools = pl.DataFrame(
        out,
        schema={c.name: _TYPES[c.type] for c in ADL_POOLS.columns if c.name not in PRODUCT_ONLY_COLUMNS},
        orient="row",
    ).sort(["step_id", "user"])
    sizes = pools.group_by("step_id").agg(pl.len().cast(pl.Int64).alias("pool_size"))
    steps_out = steps.join(sizes, on="step_id", how="left").with_columns(
        pl.lit(venue).alias("venue"), pl.col("pool_size").fill_null(0)
    )
    steps_out = steps_out.select([pl.col(c.name).cast(_TYPES[c.type]) for c in ADL_STEPS.columns]).sort("step_id")
    return steps_out, pools


def compare(a: pl.DataFrame, b: pl.DataFrame, rel: float = 1e-9) -> dict[str, int]:
    """Rows that differ per column (floats within ``rel`` relative, NaN equal to NaN); {} when equal.
    Row counts that differ are reported under ``rows``."""
    if a.height != b.height:
        return {"rows": abs(a.height - b.height)}
    out = {}
    for c in a.columns:
        x, y = pl.col(f"{c}_a"), pl.col(f"{c}_b")
        if a[c].dtype.is_float():
            same = (
                (x.is_null() & y.is_null())
                | (x.is_nan() & y.is_nan()).fill_null(False)
                | ((x - y).abs() <= rel * pl.max_horizontal(x.abs(), y.abs()) + rel).fill_null(False)
            )
        else:
            same = (x == y).fill_null(False) | (x.is_null() & y.is_null())
        pair = pl.DataFrame([a[c].alias(f"{c}_a"), b[c].alias(f"{c}_b")])
        bad = pair.select((~same).sum()).item()
        if bad:
            out[c] = bad
    return out
