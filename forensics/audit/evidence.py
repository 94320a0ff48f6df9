"""Rank evidence of one rule over every ADL action: who the rule puts first, where the venue stopped, who
was passed over.

For each action (``adl_pools`` rows of one ``step_id``) and a rule, every candidate gets a position in
the order the rule would take it (``rank``, 1 = first) and the action a *cut*. Then:

* an **opportunity** is a candidate ranked strictly above the cut with no legitimate reason to be passed
  over (``skip_reason``: below the minimum size, isolated with no overlap, opened in the same block;
  ``state_note``: a reconstructed state the data contradict or cannot confirm) and whose order against
  the cut cannot flip within the mark's uncertainty (marks are published to five significant digits; the
  rule is re-scored at both ends of that interval);
* a **skip** is an opportunity that was not selected;
* a **shape violation** is a selection the rule cannot produce: a selection below the cut, or a partial
  close above it (a queue, and the cyclic walk, close whole positions except the last one they touch);
  for an allocation rule, a cut off its predicted share by more than rounding allows.

The cut is not simply the lowest selected rank. The venue walks its queue in fill order, so the walk is
the longest run of selections whose ranks rise along the fill order and the cut is its last rank; without
a fill order, the selected rank with the fewest exceptions ((unselected unexcused candidates above it) +
(selected candidates below it)). Either way one mis-ranked selection (a reconstruction error, a position
the venue saw differently) costs one shape violation instead of turning everyone above it into a skip.

Queue rules rank by score, ties by address ascending. The cyclic walk (dYdX v4: a random start in
address order, then a walk) ranks by address from the first account filled, wrapping around. Allocation
rules rank nobody: their opportunities are the candidates whose predicted share is at least one lot
(each non-exempt candidate then receives at least one lot under floor, rounding or largest-remainder
lots), predicted from how the selected accounts were cut (:func:`_share_fit`), so the exempt accounts the
test looks for cannot distort it.

The hot path is numpy over one set of candidate arrays shared by every rule (:class:`Candidates`): one
``lexsort`` per rule, and every per-action quantity a segmented cumulative sum or ``reduceat``.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np
import polars as pl

from .rules import ALLOCATION, CYCLIC, QUEUE, Rule, with_rule_columns

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
        half_digit = 0.5 * pl.lit(10.0).pow(mark.abs().log10().floor() - 4) / mark.abs()
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

    def frame(self, *, all_rows: bool = False) -> pl.DataFrame:
        """The evidence as rows (``all_rows``: every candidate, NULL rank and False flags for rows below
        every selection): the pool's columns plus rank, score, cut, opportunity, skip, shape."""
        c = self.cand
        cut_user = np.where(self.cut_row >= 0, c.users[c.user_code[np.maximum(self.cut_row, 0)]], None)
        sel_count = np.bincount(c.seg, weights=c.selected, minlength=len(c.n)).astype(np.int64)
        seg = c.seg[self.rows]
        cols = {
            "rank": self.rank,
            "score": self.score,
            "opportunity": self.opportunity,
            "skip": self.skip,
            "shape_violation": self.shape,
        }
        if self.predicted is not None:
            cols["predicted"] = self.predicted
        if all_rows:
            full = {}
            for k, v in cols.items():
                out = np.zeros(len(c.seg), dtype=v.dtype) if v.dtype == bool else np.full(len(c.seg), np.nan)
                out[self.rows] = v
                full[k] = pl.Series(k, out) if v.dtype == bool else pl.Series(k, out).fill_nan(None)
            frame, seg, excused = c.frame, c.seg, c.excused
            series = list(full.values())
            series[0] = series[0].cast(pl.Int64)
        else:
            frame, excused = c.frame[self.rows], c.excused[self.rows]
            series = [pl.Series(k, v) for k, v in cols.items()]
        return frame.with_columns(
            *series,
            pl.Series("cut_rank", self.cut_rank[seg]),
            pl.Series("cut_score", self.cut_score[seg]),
            pl.Series("cut_user", cut_user[seg]),
            pl.Series("pool_size", c.n[seg]),
            pl.Series("selected_count", sel_count[seg]),
            pl.Series("excused", excused),
        )


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
    return RuleEvidence(
        rule, c, rows, rank, score, opportunity, opportunity & ~sel, shape, cut_rank, cut_score, cut_row
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


def rule_evidence(pools: pl.DataFrame, rule: Rule) -> pl.DataFrame:
    """One row per candidate row of ``pools`` with rank, score, cut (rank, score, account), pool size,
    selected count, opportunity, skip, shape violation and excused, for ``rule`` (rank NULL for rows below
    every selection of their action)."""
    return evidence_of(Candidates.prepare(pools), rule).frame(all_rows=True)
