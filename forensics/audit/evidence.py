"""Rank evidence of one rule over every ADL action: who the rule puts first, where the venue stopped, who
was passed over.

For each action (``adl_pools`` rows of one ``step_id``) and a rule, every candidate gets a position in
the order the rule would take it (``rank``, 1 = first) and the action a *cut*. Then:

* an **opportunity** is a candidate ranked strictly above the cut with no legitimate reason to be passed
  over (``skip_reason``: below the minimum size, isolated with no overlap, opened in the same block;
  ``state_note``: a reconstructed state the data contradict or cannot confirm) and not tied with the cut
  within the mark uncertainty the data admit;
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
TIE_TOLERANCE = {"asset_ctxs": 2e-5, "adl_mark": 2e-5, "last_trade": 2e-3}
DEFAULT_TIE_TOLERANCE = 2e-3
# Allocation cuts count as a share of at least one lot above this relative slack ...
SHARE_SLACK = 1e-6
# ... and a cut may be off its fitted share by 1.5 lots plus this fraction of the share
SHARE_FIT_SLACK = 0.05

_OPTIONAL = {"state_note": pl.Utf8, "state_detail": pl.Utf8, "skip_reason": pl.Utf8, "mark_source": pl.Utf8,
             "lot_size": pl.Float64, "fill_order": pl.Int32}


def _segment_cumsum(x: np.ndarray, starts: np.ndarray, seg: np.ndarray) -> np.ndarray:
    """Inclusive running sum of integer ``x`` restarted at each segment (exact on integers)."""
    cs = np.cumsum(x)
    before = np.concatenate([[0], cs])[starts]
    return cs - before[seg]


@dataclass
class Candidates:
    """The pool rows of actions with a decision, sorted by (step_id, user), as arrays every rule shares."""

    frame: pl.DataFrame
    seg: np.ndarray          # action index per row (0..S-1, non-decreasing)
    starts: np.ndarray       # first row of each action
    n: np.ndarray            # rows per action
    step_ids: np.ndarray     # step_id per action
    user_code: np.ndarray    # rank of the address (address order)
    users: np.ndarray        # address per code
    selected: np.ndarray
    partial: np.ndarray
    excused: np.ndarray
    gap: np.ndarray          # account value uncertain (a lost fill before): a noisier stratum
    closed: np.ndarray
    size: np.ndarray
    lot: np.ndarray
    tol: np.ndarray
    fill_order: np.ndarray   # 0 when not selected
    eu: np.ndarray           # (account, episode) group per row
    eu_user: np.ndarray      # account code per group

    @classmethod
    def prepare(cls, pools: pl.DataFrame) -> Candidates:
        pools = with_rule_columns(pools).with_columns(
            [pl.lit(None, t).alias(c) for c, t in _OPTIONAL.items() if c not in pools.columns])
        extra = []
        if "account_gap" not in pools.columns:
            extra.append(pl.lit(False).alias("account_gap"))
        if "partial" not in pools.columns:
            extra.append((pl.col("selected") & (pl.col("closed_size") < pl.col("size") * (1 - 1e-12))).alias("partial"))
        if "coin" not in pools.columns:
            extra.append(pl.lit("").alias("coin"))
        frame = pools.with_columns(extra).sort(["step_id", "user"])
        step = frame["step_id"].to_numpy()
        step_ids, starts, n = np.unique(step, return_index=True, return_counts=True)
        seg = np.repeat(np.arange(len(step_ids)), n)
        users = frame["user"].unique().sort()
        user_code = np.searchsorted(users.to_numpy(), frame["user"].to_numpy())
        # without szDecimals, the smallest ADL cut seen in the coin: at least one lot, so a conservative
        # stand-in (fewer opportunities, never more)
        lot = frame.select(pl.col("lot_size").fill_null(
            pl.col("closed_size").filter(pl.col("closed_size") > 0).min().over("coin")).fill_null(0.0))
        tol = frame.select(pl.col("mark_source").replace_strict(
            TIE_TOLERANCE, default=DEFAULT_TIE_TOLERANCE, return_dtype=pl.Float64))
        episode = frame["episode" if "episode" in frame.columns else "step_id"].to_numpy().astype(np.int64)
        _, ep = np.unique(episode, return_inverse=True)
        keys, eu = np.unique(user_code.astype(np.int64) * (ep.max() + 1 if len(ep) else 1) + ep, return_inverse=True)
        eu_user = keys // (ep.max() + 1 if len(ep) else 1)
        boolean = lambda c: frame[c].fill_null(False).to_numpy().astype(bool)  # noqa: E731
        return cls(
            frame=frame, seg=seg, starts=starts, n=n, step_ids=step_ids, user_code=user_code, users=users.to_numpy(),
            selected=boolean("selected"), partial=boolean("partial"),
            excused=(frame["skip_reason"].is_not_null() | frame["state_note"].is_not_null()).to_numpy(),
            gap=boolean("account_gap"),
            closed=frame["closed_size"].cast(pl.Float64).fill_null(0.0).to_numpy(),
            size=frame["size"].cast(pl.Float64).to_numpy(), lot=lot.to_series().to_numpy(),
            tol=tol.to_series().to_numpy(), fill_order=frame["fill_order"].fill_null(0).to_numpy(),
            eu=eu, eu_user=eu_user,
        )

    def values(self, expr: pl.Expr) -> np.ndarray:
        return self.frame.select(expr.cast(pl.Float64)).to_series().to_numpy()


@dataclass
class RuleEvidence:
    """One rule's evidence, row-aligned with :attr:`Candidates.frame` (per-action arrays by action index)."""

    rule: Rule
    cand: Candidates
    rank: np.ndarray
    score: np.ndarray
    opportunity: np.ndarray
    skip: np.ndarray
    shape: np.ndarray
    cut_rank: np.ndarray     # per action (0: nothing selected)
    cut_score: np.ndarray    # per action
    cut_row: np.ndarray      # per action: row of the candidate at the cut (-1: none)
    predicted: np.ndarray | None = None

    def frame(self) -> pl.DataFrame:
        """The evidence as rows: the pool's columns plus rank, score, cut, opportunity, skip, shape."""
        c = self.cand
        cut_user = np.where(self.cut_row >= 0, c.users[c.user_code[np.maximum(self.cut_row, 0)]], None)
        sel_count = np.bincount(c.seg, weights=c.selected, minlength=len(c.n)).astype(np.int64)
        cols = {
            "rank": self.rank, "score": self.score, "cut_rank": self.cut_rank[c.seg],
            "cut_score": self.cut_score[c.seg], "cut_user": cut_user[c.seg], "pool_size": c.n[c.seg],
            "selected_count": sel_count[c.seg], "opportunity": self.opportunity, "skip": self.skip,
            "shape_violation": self.shape, "excused": c.excused,
        }
        if self.predicted is not None:
            cols["predicted"] = self.predicted
        return c.frame.with_columns([pl.Series(k, v) for k, v in cols.items()])


def _least_exception_cut(c: Candidates, rank: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(cut_rank, cut_row) per action without a fill order: the selected rank with the fewest exceptions,
    (unselected unexcused above) + (selected below), deeper on ties."""
    order = np.lexsort((rank, c.seg))
    seg_o, sel_o = c.seg[order], c.selected[order]
    unsel_above = _segment_cumsum((~sel_o & ~c.excused[order]).astype(np.int64), c.starts, seg_o)
    sel_cum = _segment_cumsum(sel_o.astype(np.int64), c.starts, seg_o)
    sel_total = np.add.reduceat(sel_o.astype(np.int64), c.starts)
    big = np.iinfo(np.int64).max
    cost = np.where(sel_o, unsel_above + (sel_total[seg_o] - sel_cum), big)
    best = np.minimum.reduceat(cost, c.starts)
    cut_rank = np.maximum.reduceat(np.where(sel_o & (cost == best[seg_o]), rank[order], 0), c.starts)
    cut_row = np.where(cut_rank > 0, order[c.starts + np.maximum(cut_rank, 1) - 1], -1)
    return cut_rank, cut_row


def _increasing_run(ranks: np.ndarray) -> np.ndarray:
    """Mask of a longest strictly increasing subsequence of ``ranks`` (patience sorting), the one ending
    lowest among the longest."""
    tails: list[int] = []      # rank at the end of the best run of each length
    tail_at: list[int] = []    # its position
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


def _cut(c: Candidates, rank: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cut_rank, cut_row per action, in_order per row). The venue walks its queue in fill order, so where
    the fill order is known the walk is the longest run of selections whose ranks rise along it, and the
    cut is its last rank: a selection out of that run (a reconstruction error, a position the venue saw
    differently) is one shape violation, not a reason to call everyone above it skipped. Without a fill
    order: :func:`_least_exception_cut`."""
    cut_rank, cut_row = _least_exception_cut(c, rank)
    in_order = c.selected & (rank <= cut_rank[c.seg])
    sel = np.flatnonzero(c.selected)
    if not len(sel):
        return cut_rank, cut_row, in_order
    sel = sel[np.lexsort((c.fill_order[sel], c.seg[sel]))]
    seg_s, r = c.seg[sel], rank[sel]
    bounds = np.flatnonzero(np.diff(seg_s)) + 1
    starts, ends = np.concatenate([[0], bounds]), np.concatenate([bounds, [len(sel)]])
    known = np.minimum.reduceat(c.fill_order[sel], starts) > 0
    rising = np.ones(len(sel), dtype=bool)
    rising[1:] = r[1:] > r[:-1]
    rising[starts] = True
    monotone = np.logical_and.reduceat(rising, starts)
    for s in np.flatnonzero(known):
        a, b = starts[s], ends[s]
        keep = np.ones(b - a, dtype=bool) if monotone[s] else _increasing_run(r[a:b])
        action = seg_s[a]
        rows = sel[a:b]
        in_order[rows] = keep
        last = rows[keep][-1]
        cut_rank[action], cut_row[action] = rank[last], last
    return cut_rank, cut_row, in_order


def _ordered(c: Candidates, rule: Rule, rank: np.ndarray, score: np.ndarray) -> RuleEvidence:
    cut_rank, cut_row, in_order = _cut(c, rank)
    cut_score = np.where(cut_row >= 0, score[np.maximum(cut_row, 0)], np.nan)
    cr = cut_rank[c.seg]
    above = rank < cr
    with np.errstate(invalid="ignore"):
        gap = np.abs(score - cut_score[c.seg])
        tied = gap <= c.tol * np.maximum(np.abs(cut_score[c.seg]), 1e-300)
    tied &= ~np.isnan(score)
    opportunity = above & ~c.excused & ~tied
    shape = (c.selected & ~in_order) | (above & c.selected & c.partial)
    return RuleEvidence(rule, c, rank, score, opportunity, opportunity & ~c.selected, shape, cut_rank, cut_score,
                        cut_row)


def queue_evidence(c: Candidates, rule: Rule) -> RuleEvidence:
    score = c.values(rule.score())
    score = np.where(np.isfinite(score), score, -np.inf)
    order = np.lexsort((c.user_code, -score, c.seg))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - c.starts[c.seg[order]] + 1
    return _ordered(c, rule, rank, score)


def cyclic_evidence(c: Candidates, rule: Rule) -> RuleEvidence:
    """Walk order: address ascending from the first account filled, wrapping around."""
    pos = np.arange(len(c.seg)) - c.starts[c.seg]  # frame rows are in address order within an action
    start = np.maximum.reduceat(np.where(c.fill_order == 1, pos, -1), c.starts).clip(min=0)
    rank = (pos - start[c.seg]) % c.n[c.seg] + 1
    return _ordered(c, rule, rank, np.full(len(pos), np.nan))


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
    level = pl.DataFrame({"s": c.seg, "after": after, "lev": lev, "sel": c.selected, "part": c.selected & c.partial}
                         ).group_by("s").agg(
        pl.coalesce(pl.col("after").filter(pl.col("part")).median(), pl.col("lev").filter(pl.col("sel")).min())
        .alias("level")).sort("s")["level"].fill_null(np.inf).to_numpy()
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
    order = np.lexsort((c.user_code, -pred, c.seg))  # ranked by predicted share, like a queue's evidence
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - c.starts[c.seg[order]] + 1
    cut_rank = np.maximum.reduceat(np.where(c.selected, rank, 0), c.starts)
    pos = np.flatnonzero(c.selected & (rank == cut_rank[c.seg]))
    cut_row = np.full(len(c.n), -1)
    cut_row[c.seg[pos]] = pos
    cut_score = np.minimum.reduceat(np.where(c.selected, pred, np.inf), c.starts)
    return RuleEvidence(rule, c, rank, pred, owed | c.selected, owed & ~c.selected, c.selected & off, cut_rank,
                        cut_score, cut_row, predicted=pred)


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
    selected count, opportunity, skip, shape violation and excused, for ``rule``."""
    return evidence_of(Candidates.prepare(pools), rule).frame()
