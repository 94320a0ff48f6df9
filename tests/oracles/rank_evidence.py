"""An oracle for the compiled audit kernel: the rank evidence computed set-wise in numpy and polars, the way the
project computed it before the kernel (each rule a polars expression, every action's pool held as rows).
Written for clarity, not speed; the tests compare the kernel's counts, cuts and shape violations with it on the
same pools (with the account value's interval from the other coins off: this oracle has none)."""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import polars as pl

QUEUE = "queue"
ALLOCATION = "allocation"
CYCLIC = "cyclic"

_EPS = 1e-12


def _col(name: str) -> pl.Expr:
    return pl.col(name).cast(pl.Float64)


def _is_long() -> pl.Expr:
    return pl.col("side") == "long"


def _price_ratio_profit() -> pl.Expr:
    """mark/entry for longs, entry/mark for shorts: > 1 exactly when the position is in profit."""
    return pl.when(_is_long()).then(_col("mark_px") / _col("entry_px")).otherwise(_col("entry_px") / _col("mark_px"))


def _pnl_pct() -> pl.Expr:
    """Signed return on entry value: uPnL / (size x entry)."""
    return _col("upnl_usd") / (_col("size") * _col("entry_px")).clip(lower_bound=_EPS)


@dataclass(frozen=True)
class Rule:
    """A named, versioned rule. ``score`` ranks candidates (higher = deleveraged first) for queue rules;
    ``weight`` gives the allocation weight for allocation rules. ``direction`` is the rule's log-linear
    weight vector on (log price ratio, log leverage, log notional) when it has one, for comparing a
    fitted conditional-logit direction with it."""

    name: str
    version: str
    kind: str
    source: str
    effective: str
    description: str
    score: Callable[[], pl.Expr] | None = None
    weight: Callable[[], pl.Expr] | None = None
    direction: tuple[float, float, float] | None = None
    tie_break: tuple[str, ...] = field(default=("user",))
    # allocation rules: the weight a step uses when no position it cuts has a positive ``weight`` (wealth
    # pro-rata has no profit to haircut then: U = 0 makes theta D <= U infeasible, Chitra §2)
    fallback: Callable[[], pl.Expr] | None = None


def _bitmex() -> pl.Expr:
    pnl = _pnl_pct()
    lev = _col("effective_leverage").fill_null(_col("leverage")).clip(lower_bound=_EPS)
    return pl.when(pnl > 0).then(pnl * lev).otherwise(pnl / lev)


def _binance() -> pl.Expr:
    """MarginRatio = the account's maintenance margin / its margin balance (the position's own when the
    pools do not carry the account's)."""
    pnl = _col("upnl_usd").clip(lower_bound=0.0) / _col("wallet_balance_usd").clip(lower_bound=1.0)
    equity = _col("account_value_usd")
    mm = _col("account_maintenance_margin_usd").fill_null(_col("maintenance_margin_usd"))
    ratio = pl.when(equity > 0).then(mm / equity.clip(lower_bound=_EPS)).otherwise(0.0)
    return pnl * ratio


def _binance_position_mm() -> pl.Expr:
    """MarginRatio with the position's maintenance margin (the FAQ's other reading)."""
    pnl = _col("upnl_usd").clip(lower_bound=0.0) / _col("wallet_balance_usd").clip(lower_bound=1.0)
    equity = _col("account_value_usd")
    ratio = pl.when(equity > 0).then(_col("maintenance_margin_usd") / equity.clip(lower_bound=_EPS)).otherwise(0.0)
    return pnl * ratio


def _hl_node_score() -> pl.Expr:
    """(|notional| / account value) x (max(pnl, 0) / entry notional), each factor floored at 1e-8."""
    equity = _col("account_value_usd")
    lev = pl.when(equity > 0).then((_col("notional_usd") / equity).clip(lower_bound=1e-8)).otherwise(1e-8)
    ret = (_col("upnl_usd").clip(lower_bound=0.0) / (_col("size") * _col("entry_px")).clip(lower_bound=_EPS)).clip(
        lower_bound=1e-8
    )
    return lev * ret


def _okx() -> pl.Expr:
    """PnL ratio / margin ratio for winners, PnL ratio x margin ratio for losers; OKX's margin ratio is
    equity / maintenance margin (high = safe)."""
    pnl = _col("pnl_pct_margin").fill_null(_pnl_pct())
    mr = (_col("account_value_usd") / _col("maintenance_margin_usd").clip(lower_bound=_EPS)).clip(lower_bound=_EPS)
    return pl.when(pnl > 0).then(pnl / mr).otherwise(pnl * mr)


def _lexicographic() -> pl.Expr:
    """Ethereal: 1) leverage desc, 2) uPnL desc, 3) balance asc; encoded as one dense rank per step."""
    return (
        pl.struct(_col("leverage").alias("a"), _col("upnl_usd").alias("b"), (-_col("wallet_balance_usd")).alias("c"))
        .rank("dense", descending=False)
        .over("step_id")
        .cast(pl.Float64)
    )


RULES: dict[str, Rule] = {
    r.name: r
    for r in (
        Rule(
            "hl_index",
            "2025-10",
            QUEUE,
            "Hyperliquid docs, auto-deleveraging: sorting index = (mark/entry) x (notional/account value)",
            "2025-10-10",
            "Hyperliquid's index with the profit-consistent convention: mark/entry for longs, entry/mark for shorts.",
            score=lambda: _price_ratio_profit() * _col("leverage"),
            direction=(1.0, 1.0, 0.0),
        ),
        Rule(
            "hl_index_literal",
            "2025-10",
            QUEUE,
            "Hyperliquid docs as written: (mark/entry) x (notional/account value) for both sides",
            "2025-10-10",
            "Hyperliquid's index read literally, so a profitable short has mark/entry < 1.",
            score=lambda: (_col("mark_px") / _col("entry_px")) * _col("leverage"),
        ),
        Rule(
            "bitmex",
            "2016",
            QUEUE,
            "BitMEX auto-deleveraging: PnL% x effective leverage (PnL%/leverage for losers)",
            "2016-01-01",
            "PnL% on entry value times effective leverage |mv|/(mv - bv).",
            score=_bitmex,
        ),
        Rule(
            "binance",
            "2024",
            QUEUE,
            "Binance FAQ 360033525471: LeveragePnl = max(0,uPnL)/max(1,WB) x MM/(WB+uPnL)",
            "2020-01-01",
            "Binance's published LeveragePnl.",
            score=_binance,
        ),
        Rule(
            "binance_position_mm",
            "2024",
            QUEUE,
            "Binance FAQ, MarginRatio with the position's maintenance margin",
            "2020-01-01",
            "Binance's LeveragePnl, the position's MM.",
            score=_binance_position_mm,
        ),
        Rule(
            "okx",
            "2024",
            QUEUE,
            "OKX/HTX ADL: PnL ratio / margin ratio for profits, x margin ratio for losses",
            "2021-01-01",
            "OKX-style ranking on PnL ratio and margin ratio.",
            score=_okx,
        ),
        Rule(
            "hl_node_score",
            "2026-06",
            QUEUE,
            "OtterSec's reading of the node binary",
            "-",
            "r x L, factors floored at 1e-8.",
            score=_hl_node_score,
        ),
        Rule(
            "upnl",
            "1",
            QUEUE,
            "adl-methods.md §3.2 hypothesis space",
            "-",
            "Unrealized PnL in USD.",
            score=lambda: _col("upnl_usd"),
        ),
        Rule(
            "pnl_pct",
            "1",
            QUEUE,
            "adl-methods.md §3.2 hypothesis space",
            "-",
            "Return on entry value.",
            score=_pnl_pct,
            direction=(1.0, 0.0, 0.0),
        ),
        Rule(
            "leverage",
            "1",
            QUEUE,
            "Bullish; Campbell-Hey-Moallemi-Nutz (2026) most-levered first",
            "-",
            "Leverage = notional / account value.",
            score=lambda: _col("leverage"),
            direction=(0.0, 1.0, 0.0),
        ),
        Rule(
            "notional",
            "1",
            QUEUE,
            "adl-methods.md §3.2 hypothesis space",
            "-",
            "Position notional in USD.",
            score=lambda: _col("notional_usd"),
            direction=(0.0, 0.0, 1.0),
        ),
        Rule(
            "lexicographic",
            "1",
            QUEUE,
            "Ethereal docs: leverage, then uPnL, then lowest balance",
            "-",
            "Strict lexicographic order.",
            score=_lexicographic,
        ),
        Rule(
            "random_cyclic",
            "1",
            CYCLIC,
            "dYdX v4 deleveraging.go: pseudo-random start + cyclic walk",
            "-",
            "No ranking: a random start in address order, then a walk by address; as a counterfactual queue "
            "(accounting) it orders by a hash of the address.",
            score=lambda: pl.col("user").hash(7).cast(pl.Float64),
        ),
        Rule(
            "contracts_pro_rata",
            "1",
            ALLOCATION,
            "Drift v2 resolve_perp_bankruptcy: contracts pro-rata",
            "-",
            "Every eligible position reduced by the same fraction.",
            weight=lambda: _col("size"),
        ),
        Rule(
            "wealth_pro_rata",
            "2",
            ALLOCATION,
            "Chitra (2025) wealth/profit pro-rata",
            "-",
            "Reductions proportional to positive unrealized PnL; proportional to contracts in a step where no "
            "position cut is in profit (version 1 had no fallback, so such steps could not fit).",
            weight=lambda: _col("upnl_usd").clip(lower_bound=0.0),
            fallback=lambda: _col("size"),
        ),
        Rule(
            "leverage_waterfill",
            "1",
            ALLOCATION,
            "Campbell, Hey, Moallemi, Nutz (2026) arXiv 2603.15963",
            "-",
            "Reduce the most levered first until leverage is equalized (water-filling).",
            weight=lambda: _col("leverage"),
        ),
    )
}


OPTIONAL_COLUMNS = {"account_maintenance_margin_usd": pl.Float64}


def with_rule_columns(pools: pl.DataFrame) -> pl.DataFrame:
    return pools.with_columns([pl.lit(None, t).alias(c) for c, t in OPTIONAL_COLUMNS.items() if c not in pools.columns])


# Relative score gap to the cut below which a candidate counts as tied with it. Marks published to five
# significant digits move a score by up to ~1e-5 of itself; marks that had to be taken from a trade
# (no asset context for that second) by up to a few basis points.
# Mark uncertainty, relative: venue marks are published to five significant digits (half a unit of the
# fifth digit either way); a mark that had to be taken from a trade can be off by a few basis points.
PUBLISHED_MARK_SOURCES = ("asset_ctxs", "adl_mark")
TRADE_MARK_UNCERTAINTY = 2e-3
# ... and scores this close (relative) are equal in floating point
FLOAT_TIE = 1e-9
# Allocation cuts count as a share of at least one lot above this relative slack ...
SHARE_SLACK = 1e-6
# ... and a cut may be off its fitted share by 1.5 lots plus this fraction of the share
SHARE_FIT_SLACK = 0.05

_OPTIONAL = {
    "state_note": pl.Utf8,
    "state_detail": pl.Utf8,
    "skip_reason": pl.Utf8,
    "mark_source": pl.Utf8,
    "lot_size": pl.Float64,
    "fill_order": pl.Int32,
    "margin_leverage": pl.Float64,
    "mark_px": pl.Float64,
}


def _segment_cumsum(x: np.ndarray, starts: np.ndarray, seg: np.ndarray) -> np.ndarray:
    """Inclusive running sum of integer ``x`` restarted at each segment (exact on integers)."""
    cs = np.cumsum(x)
    before = np.concatenate([[0], cs])[starts]
    return cs - before[seg]


@dataclass
class Candidates:
    """The pool rows of actions with a decision, sorted by (step_id, user), as arrays every rule shares."""

    frame: pl.DataFrame
    seg: np.ndarray  # action index per row (0..S-1, non-decreasing)
    starts: np.ndarray  # first row of each action
    n: np.ndarray  # rows per action
    step_ids: np.ndarray  # step_id per action
    user_code: np.ndarray  # rank of the address (address order)
    users: np.ndarray  # address per code
    selected: np.ndarray
    partial: np.ndarray
    excused: np.ndarray
    gap: np.ndarray  # account value uncertain (a lost fill before): a noisier stratum
    closed: np.ndarray
    size: np.ndarray
    lot: np.ndarray
    tol: np.ndarray  # relative uncertainty of the row's mark
    fill_order: np.ndarray  # 0 when not selected
    eu: np.ndarray  # (account, episode) group per row
    eu_user: np.ndarray  # account code per group
    eu_actions: np.ndarray  # actions per group
    eu_selections: np.ndarray  # selections per group

    @classmethod
    def prepare(cls, pools: pl.DataFrame) -> Candidates:
        pools = with_rule_columns(pools).with_columns(
            [pl.lit(None, t).alias(c) for c, t in _OPTIONAL.items() if c not in pools.columns]
        )
        extra = []
        if "account_gap" not in pools.columns:
            extra.append(pl.lit(False).alias("account_gap"))
        if "partial" not in pools.columns:
            extra.append((pl.col("selected") & (pl.col("closed_size") < pl.col("size") * (1 - 1e-12))).alias("partial"))
        if "coin" not in pools.columns:
            extra.append(pl.lit("").alias("coin"))
        frame = pools.with_columns(extra)
        users = frame["user"].unique().sort()
        # addresses as codes in address order (an Enum keeps the order it is given)
        user_code = frame["user"].cast(pl.Enum(users.to_list())).to_physical().to_numpy().astype(np.int64)
        step = frame["step_id"].to_numpy()
        key = step.astype(np.int64) * (len(users) + 1) + user_code
        if len(key) > 1 and not (np.diff(key) > 0).all():  # the reconstruction writes them in this order
            order = np.argsort(key, kind="stable")
            frame, step, user_code = frame[order], step[order], user_code[order]
        step_ids, starts, n = np.unique(step, return_index=True, return_counts=True)
        seg = np.repeat(np.arange(len(step_ids)), n)
        # without szDecimals, the smallest ADL cut seen in the coin: at least one lot, so a conservative
        # stand-in (fewer opportunities, never more)
        lot = frame.select(
            pl.col("lot_size")
            .fill_null(pl.col("closed_size").filter(pl.col("closed_size") > 0).min().over("coin"))
            .fill_null(0.0)
        )
        mark = pl.col("mark_px").cast(pl.Float64)
        # Hyperliquid's price step: five significant figures, at most 6 - szDecimals decimals (lot = 10^-szDecimals)
        sz_dec = (-pl.col("lot_size").cast(pl.Float64).log10()).round(0)
        step = pl.max_horizontal(pl.lit(10.0).pow(mark.abs().log10().floor() - 4), pl.lit(10.0).pow(sz_dec - 6))
        half_digit = 0.5 * step / mark.abs()
        tol = frame.select(
            pl.when(pl.col("mark_source").is_in(PUBLISHED_MARK_SOURCES))
            .then(half_digit)
            .otherwise(TRADE_MARK_UNCERTAINTY)
            .fill_null(TRADE_MARK_UNCERTAINTY)
            .fill_nan(TRADE_MARK_UNCERTAINTY)
        )
        episode = frame["episode" if "episode" in frame.columns else "step_id"].to_numpy().astype(np.int64)
        _, ep = np.unique(episode, return_inverse=True)
        width = int(ep.max()) + 1 if len(ep) else 1
        keys, eu = np.unique(user_code * width + ep, return_inverse=True)
        boolean = lambda c: frame[c].fill_null(False).to_numpy().astype(bool)  # noqa: E731
        return cls(
            frame=frame,
            seg=seg,
            starts=starts,
            n=n,
            step_ids=step_ids,
            user_code=user_code,
            users=users.to_numpy(),
            selected=boolean("selected"),
            partial=boolean("partial"),
            excused=(frame["skip_reason"].is_not_null() | frame["state_note"].is_not_null()).to_numpy(),
            gap=boolean("account_gap"),
            closed=frame["closed_size"].cast(pl.Float64).fill_null(0.0).to_numpy(),
            size=frame["size"].cast(pl.Float64).to_numpy(),
            lot=lot.to_series().to_numpy(),
            tol=tol.to_series().to_numpy(),
            fill_order=frame["fill_order"].fill_null(0).to_numpy(),
            eu=eu,
            eu_user=keys // width,
            eu_actions=np.bincount(eu, minlength=len(keys)),
            eu_selections=np.bincount(eu, weights=boolean("selected"), minlength=len(keys)),
        )

    def values(self, expr: pl.Expr) -> np.ndarray:
        return self.frame.select(expr.cast(pl.Float64)).to_series().to_numpy()


@dataclass
class RuleEvidence:
    """One rule's evidence on the candidate rows that can matter (``rows``: every row ranked at or above
    the lowest selection of its action, or owed a share): rows below every selection are never
    opportunities, and leaving them out keeps each rule's work near the number of selections."""

    rule: Rule
    cand: Candidates
    rows: np.ndarray  # candidate rows (indices into cand.frame), in (action, rank) order
    rank: np.ndarray  # over rows: exact rank in the whole pool (every row above is kept)
    score: np.ndarray
    opportunity: np.ndarray
    skip: np.ndarray
    shape: np.ndarray
    cut_rank: np.ndarray  # per action (0: nothing selected)
    cut_score: np.ndarray  # per action
    cut_row: np.ndarray  # per action: row of the candidate at the cut (-1: none)
    predicted: np.ndarray | None = None
    # over rows: selected above the cut in the walk (a queue takes it whole), and of those, closed in part
    cap_opportunity: np.ndarray | None = None
    cap: np.ndarray | None = None


def _ranked(c: Candidates, rows: np.ndarray, primary: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows in (action, primary ascending, address) order, their rank within the action among ``rows``)."""
    order = rows[np.lexsort((c.user_code[rows], primary, c.seg[rows]))]
    seg = c.seg[order]
    first = np.flatnonzero(np.concatenate([[True], seg[1:] != seg[:-1]]))
    rank = np.arange(len(order)) - np.repeat(first, np.diff(np.append(first, len(order)))) + 1
    return order, rank


def _segments(seg: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.concatenate([[True], seg[1:] != seg[:-1]])) if len(seg) else np.zeros(0, np.int64)


def _least_exception_cut(
    c: Candidates, rows: np.ndarray, rank: np.ndarray, cut_rank: np.ndarray, cut_row: np.ndarray, actions: np.ndarray
) -> None:
    """Fill ``cut_rank``/``cut_row`` for ``actions`` (no fill order): the selected rank with the fewest
    exceptions, (unselected unexcused above) + (selected below), deeper on ties. ``rows`` are in
    (action, rank) order."""
    pick = np.isin(c.seg[rows], actions)
    rows, rank = rows[pick], rank[pick]
    if not len(rows):
        return
    seg = c.seg[rows]
    starts = _segments(seg)
    sel = c.selected[rows]
    local = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(rows))))
    unsel_above = _segment_cumsum((~sel & ~c.excused[rows]).astype(np.int64), starts, local)
    sel_cum = _segment_cumsum(sel.astype(np.int64), starts, local)
    sel_total = np.add.reduceat(sel.astype(np.int64), starts)
    big = np.iinfo(np.int64).max
    cost = np.where(sel, unsel_above + (sel_total[local] - sel_cum), big)
    best = np.minimum.reduceat(cost, starts)
    cr = np.maximum.reduceat(np.where(sel & (cost == best[local]), rank, 0), starts)
    acts = seg[starts]
    cut_rank[acts] = cr
    cut_row[acts] = np.where(cr > 0, rows[starts + np.maximum(cr, 1) - 1], -1)


def _increasing_run(ranks: np.ndarray) -> np.ndarray:
    """Mask of a longest strictly increasing subsequence of ``ranks`` (patience sorting), the one ending
    lowest among the longest."""
    tails: list[int] = []  # rank at the end of the best run of each length
    tail_at: list[int] = []  # its position
    prev = np.full(len(ranks), -1)
    for i, r in enumerate(ranks):
        j = bisect.bisect_left(tails, r)
        if j == len(tails):
            tails.append(r)
            tail_at.append(i)
        else:
            tails[j], tail_at[j] = r, i
        prev[i] = tail_at[j - 1] if j else -1
    keep = np.zeros(len(ranks), dtype=bool)
    i = tail_at[-1] if tail_at else -1
    while i >= 0:
        keep[i] = True
        i = prev[i]
    return keep


def _cut(c: Candidates, rows: np.ndarray, rank: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cut_rank, cut_row per action, in_order over rows). The venue walks its queue in fill order, so where
    the fill order is known the walk is the longest run of selections whose ranks rise along it, and the
    cut is its last rank: a selection out of that run (a reconstruction error, a position the venue saw
    differently) is one shape violation, not a reason to call everyone above it skipped. Without a fill
    order: :func:`_least_exception_cut`. ``rows`` are in (action, rank) order."""
    cut_rank = np.zeros(len(c.n), dtype=np.int64)
    cut_row = np.full(len(c.n), -1)
    rank_of = np.zeros(len(c.seg), dtype=np.int64)
    rank_of[rows] = rank
    in_order = np.zeros(len(c.seg), dtype=bool)
    sel = rows[c.selected[rows]]
    sel = sel[np.lexsort((c.fill_order[sel], c.seg[sel]))]
    seg_s, r = c.seg[sel], rank_of[sel]
    starts = _segments(seg_s)
    ends = np.append(starts[1:], len(sel))
    known = np.minimum.reduceat(c.fill_order[sel], starts) > 0 if len(sel) else np.zeros(0, bool)
    rising = np.ones(len(sel), dtype=bool)
    rising[1:] = r[1:] > r[:-1]
    rising[starts] = True
    monotone = np.logical_and.reduceat(rising, starts) if len(sel) else np.zeros(0, bool)
    # monotone walks: every selection in order, the cut at the last one filled
    mono = known & monotone
    last = sel[ends[mono] - 1]
    cut_rank[seg_s[starts[mono]]], cut_row[seg_s[starts[mono]]] = rank_of[last], last
    in_order[sel[np.repeat(mono, ends - starts)]] = True
    for s in np.flatnonzero(known & ~monotone):
        a, b = starts[s], ends[s]
        keep = _increasing_run(r[a:b])
        picked = sel[a:b][keep]
        in_order[picked] = True
        cut_rank[seg_s[a]], cut_row[seg_s[a]] = rank_of[picked[-1]], picked[-1]
    unknown = seg_s[starts[~known]]
    if len(unknown):
        _least_exception_cut(c, rows, rank, cut_rank, cut_row, unknown)
        pick = np.isin(c.seg, unknown) & c.selected
        in_order[pick] = rank_of[pick] <= cut_rank[c.seg[pick]]
    return cut_rank, cut_row, in_order[rows]


def _at_mark(frame: pl.DataFrame, shift: np.ndarray) -> pl.DataFrame:
    """The features every rule reads, recomputed at ``mark x (1 + shift)`` (the row's own position; the
    account's other positions keep their values)."""
    f = pl.Series("_f", 1.0 + shift)
    col = lambda c: pl.col(c).cast(pl.Float64)  # noqa: E731
    size, entry = col("size"), col("entry_px")
    sgn = pl.when(pl.col("side") == "long").then(1.0).otherwise(-1.0)
    mark = col("mark_px") * f
    d_upnl = sgn * size * col("mark_px") * (f - 1.0)
    av = col("account_value_usd") + d_upnl
    grow = f * col("account_value_usd") / av  # notional x f over account value moved by the same uPnL change
    mm = col("maintenance_margin_usd")
    margin = size * entry / col("margin_leverage")
    return frame.with_columns(
        mark.alias("mark_px"),
        (col("upnl_usd") + d_upnl).alias("upnl_usd"),
        av.alias("account_value_usd"),
        (col("notional_usd") * f).alias("notional_usd"),
        (col("leverage") * grow).alias("leverage"),
        (col("effective_leverage") * grow).alias("effective_leverage"),
        pl.when(sgn > 0).then(mark / entry - 1).otherwise(1 - mark / entry).alias("pnl_pct_price"),
        (col("pnl_pct_margin") + d_upnl / margin).fill_null(col("pnl_pct_margin")).alias("pnl_pct_margin"),
        (mm * f).alias("maintenance_margin_usd"),
        (pl.col("account_maintenance_margin_usd").cast(pl.Float64) + mm * (f - 1.0)).alias(
            "account_maintenance_margin_usd"
        ),
    )


def _flips(c: Candidates, rule: Rule, rows: np.ndarray, cut_row: np.ndarray) -> np.ndarray:
    """Over ``rows``: could the row's order against its action's cut flip within the mark uncertainty?
    Every candidate of an action shares the coin's mark, so the scores move together: the order can flip
    when at either end of the mark's interval the row no longer scores above the cut."""
    seg = c.seg[rows]
    cut = cut_row[seg]
    both = np.concatenate([rows, np.maximum(cut, 0)])
    frame = c.frame[both]
    flips = np.zeros(len(rows), dtype=bool)
    for sign in (-1.0, 1.0):
        shifted = _at_mark(frame, sign * c.tol[np.concatenate([rows, rows])])
        s = shifted.select(rule.score().cast(pl.Float64)).to_series().to_numpy()
        mine, theirs = s[: len(rows)], s[len(rows) :]
        with np.errstate(invalid="ignore"):
            flips |= ~(mine > theirs)
    return flips & (cut >= 0)


def _ordered(c: Candidates, rule: Rule, rows: np.ndarray, rank: np.ndarray, score: np.ndarray) -> RuleEvidence:
    """Evidence of an ordering rule from its ranked ``rows`` (in (action, rank) order)."""
    cut_rank, cut_row, in_order = _cut(c, rows, rank)
    score_of = np.full(len(c.seg), np.nan)
    score_of[rows] = score
    cut_score = np.where(cut_row >= 0, score_of[np.maximum(cut_row, 0)], np.nan)
    seg = c.seg[rows]
    cr = cut_rank[seg]
    above = rank < cr
    with np.errstate(invalid="ignore"):
        tied = np.abs(score - cut_score[seg]) <= FLOAT_TIE * np.maximum(np.abs(cut_score[seg]), 1e-300)
    tied &= ~np.isnan(score)
    if rule.score is not None and rule.kind != CYCLIC:
        near = np.flatnonzero(above & ~c.selected[rows] & ~tied)
        tied[near] = _flips(c, rule, rows[near], cut_row)
    sel = c.selected[rows]
    opportunity = above & ~c.excused[rows] & ~tied
    shape = (sel & ~in_order) | (above & sel & c.partial[rows])
    cap_opportunity = opportunity & sel & in_order
    return RuleEvidence(
        rule,
        c,
        rows,
        rank,
        score,
        opportunity,
        opportunity & ~sel,
        shape,
        cut_rank,
        cut_score,
        cut_row,
        cap_opportunity=cap_opportunity,
        cap=cap_opportunity & c.partial[rows],
    )


def queue_evidence(c: Candidates, rule: Rule) -> RuleEvidence:
    score = c.values(rule.score())
    score = np.where(np.isfinite(score), score, -np.inf)
    # rows below the lowest selection of their action can never be above a cut
    floor = np.minimum.reduceat(np.where(c.selected, score, np.inf), c.starts)
    rows = np.flatnonzero((score >= floor[c.seg]) | c.selected)
    order, rank = _ranked(c, rows, -score[rows])
    return _ordered(c, rule, order, rank, score[order])


def cyclic_evidence(c: Candidates, rule: Rule) -> RuleEvidence:
    """Walk order: address ascending from the first account filled, wrapping around."""
    pos = np.arange(len(c.seg)) - c.starts[c.seg]  # frame rows are in address order within an action
    start = np.maximum.reduceat(np.where(c.fill_order == 1, pos, -1), c.starts).clip(min=0)
    walk = (pos - start[c.seg]) % c.n[c.seg] + 1
    deepest = np.maximum.reduceat(np.where(c.selected, walk, 0), c.starts)
    rows = np.flatnonzero(walk <= deepest[c.seg])
    order = rows[np.lexsort((walk[rows], c.seg[rows]))]
    return _ordered(c, rule, order, walk[order], np.full(len(order), np.nan))


def _per_action(c: Candidates, x: np.ndarray) -> np.ndarray:
    return np.add.reduceat(x, c.starts)


def _share_fit(c: Candidates, w: np.ndarray) -> np.ndarray:
    """Predicted cut ``clip(a w + b, 0, size)`` per action: ``a`` the pro-rata fraction, ``b`` >= 0 an equal
    share of what capped positions could not take (venues, and generators, that hand out the excess lot by
    lot to everyone with room). Fitted by least squares on the partial cuts (those not capped by the
    position); with fewer than two of them, b = 0 and a is the selected accounts' total over their weight."""
    fit = c.selected & (c.closed < c.size * (1 - 1e-9)) & (c.closed > 0)
    f = fit.astype(float)
    n = _per_action(c, f)
    sw, sc = _per_action(c, f * w), _per_action(c, f * c.closed)
    sww, swc = _per_action(c, f * w * w), _per_action(c, f * w * c.closed)
    with np.errstate(divide="ignore", invalid="ignore"):
        mw, mc = sw / n, sc / n
        var, cov = sww / n - mw * mw, swc / n - mw * mc
        slope = np.where(var > 0, np.clip(cov / var, 0.0, None), 0.0)
        a_fit = np.where(var > 0, slope, sc / sw)
        b_fit = np.where(var > 0, np.clip(mc - slope * mw, 0.0, None), 0.0)
        simple = _per_action(c, c.selected * c.closed) / _per_action(c, c.selected * w)
        a = np.nan_to_num(np.where(n >= 2, a_fit, simple), nan=0.0, posinf=0.0)
        b = np.nan_to_num(np.where(n >= 2, b_fit, 0.0), nan=0.0)
    return np.clip(np.minimum(w * a[c.seg] + b[c.seg], c.size), 0.0, None)


def _waterfill(c: Candidates) -> np.ndarray:
    """Cuts down to the common leverage the selected were cut to (median over the partial cuts; the lowest
    leverage among full closes when there is none)."""
    lev = c.values(pl.col("leverage"))
    after = lev * (1.0 - c.closed / np.where(c.size > 0, c.size, 1.0))
    level = (
        pl.DataFrame({"s": c.seg, "after": after, "lev": lev, "sel": c.selected, "part": c.selected & c.partial})
        .group_by("s")
        .agg(
            pl.coalesce(
                pl.col("after").filter(pl.col("part")).median(), pl.col("lev").filter(pl.col("sel")).min()
            ).alias("level")
        )
        .sort("s")["level"]
        .fill_null(np.inf)
        .to_numpy()
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.nan_to_num(np.where(lev > level[c.seg], c.size * (1.0 - level[c.seg] / lev), 0.0))


def allocation_evidence(c: Candidates, rule: Rule) -> RuleEvidence:
    """Predicted share of every candidate from how the selected were cut; opportunities are the candidates
    whose share is at least one lot, skips those of them left out, shape violations the selected whose cut
    is off the prediction by more than rounding allows."""
    w = np.clip(np.nan_to_num(c.values(rule.weight()), nan=0.0), 0.0, None)
    if rule.fallback is not None:  # no positive weight among the selected: the fallback weight there
        none = _per_action(c, np.where(c.selected, w, 0.0)) <= 0
        w = np.where(none[c.seg], np.clip(np.nan_to_num(c.values(rule.fallback()), nan=0.0), 0.0, None), w)
    pred = _waterfill(c) if rule.name == "leverage_waterfill" else _share_fit(c, w)
    owed = (pred >= c.lot * (1 + SHARE_SLACK)) & (c.lot > 0) & ~c.excused
    off = np.abs(c.closed - pred) > 1.5 * c.lot + SHARE_FIT_SLACK * pred
    # an action that closed every position it cut in full says nothing about the shape of the cuts (the
    # need reached what the non-exempt held: any allocation, and any queue, does that)
    shaped = _per_action(c, (c.selected & c.partial).astype(np.int64)) > 0
    off &= shaped[c.seg]
    # ranked by predicted share among the rows that matter (owed a share, or cut), like a queue's evidence
    rows, rank = _ranked(c, np.flatnonzero(owed | c.selected), -pred[owed | c.selected])
    sel = c.selected[rows]
    cut_rank = np.zeros(len(c.n), dtype=np.int64)
    cut_row = np.full(len(c.n), -1)
    np.maximum.at(cut_rank, c.seg[rows[sel]], rank[sel])
    at_cut = sel & (rank == cut_rank[c.seg[rows]])
    cut_row[c.seg[rows[at_cut]]] = rows[at_cut]
    cut_score = np.minimum.reduceat(np.where(c.selected, pred, np.inf), c.starts)
    return RuleEvidence(
        rule,
        c,
        rows,
        rank,
        pred[rows],
        owed[rows] | sel,
        owed[rows] & ~sel,
        sel & off[rows],
        cut_rank,
        cut_score,
        cut_row,
        predicted=pred[rows],
    )


def evidence_of(c: Candidates, rule: Rule) -> RuleEvidence:
    if rule.kind == QUEUE:
        return queue_evidence(c, rule)
    if rule.kind == CYCLIC:
        return cyclic_evidence(c, rule)
    if rule.kind == ALLOCATION:
        return allocation_evidence(c, rule)
    raise ValueError(f"unknown rule kind {rule.kind!r}")


def account_counts(ev: RuleEvidence, rows: np.ndarray | None = None) -> pl.DataFrame:
    """Per account: actions in a pool and selections (in actions); opportunities and skips in *episodes*,
    in total and in the episodes where its account value is uncertain (``gap_*``: it lost a fill before).
    ``rows``: a boolean mask over the candidate rows to count (a time window); default all.

    An episode (``episode`` column of the pools; one per action when absent) is the set of actions that saw
    one state of the book: one block and coin. A position the data got wrong, or a mark off by a tick, looks
    the same to every action of the block, so those actions are one observation, not several: an episode
    is an opportunity when the account was above the cut in any of its actions, and a skip when it was
    passed over in every action where it was."""
    c = ev.cand
    keep = np.ones(len(c.seg), dtype=bool) if rows is None else rows
    groups, users = len(c.eu_user), len(c.users)
    eu_r, keep_r = c.eu[ev.rows], keep[ev.rows]
    count = lambda x: np.bincount(eu_r, weights=x & keep_r, minlength=groups)  # noqa: E731
    if rows is None:
        actions, selections = c.eu_actions, c.eu_selections
    else:
        actions = np.bincount(c.eu, weights=keep, minlength=groups)
        selections = np.bincount(c.eu, weights=c.selected & keep, minlength=groups)
    opp = count(ev.opportunity) > 0
    skip = opp & (count(ev.opportunity & ~ev.skip) == 0)
    gap = count(ev.opportunity & c.gap[ev.rows]) > 0
    per_user = lambda x: np.bincount(c.eu_user, weights=x, minlength=users).astype(np.int64)  # noqa: E731
    out = pl.DataFrame(
        {
            "user": c.users,
            "eligible_steps": per_user(actions),
            "opportunities": per_user(opp),
            "skips": per_user(skip),
            "gap_opportunities": per_user(opp & gap),
            "gap_skips": per_user(skip & gap),
            # per action, not per episode: a capped take leaves the position in the pool for the next action
            "cap_opportunities": per_user(count(ev.cap_opportunity) if ev.cap_opportunity is not None else 0 * opp),
            "caps": per_user(count(ev.cap) if ev.cap is not None else 0 * opp),
            "observed_selections": per_user(selections),
        }
    )
    return out if rows is None else out.filter(pl.col("eligible_steps") > 0)
