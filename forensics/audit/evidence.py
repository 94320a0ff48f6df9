"""Rank evidence of one rule over every ADL action: who the rule puts first, where the venue stopped, who
was passed over.

For each action (``adl_pools`` rows of one ``step_id``) and a rule, every candidate gets a position in
the order the rule would take it (``rank``, 1 = first) and the action a *cut*: the rank of the lowest
selected candidate. Then:

* an **opportunity** is a candidate ranked strictly above the cut with no legitimate reason to be passed
  over (``skip_reason``: below the minimum size, isolated with no overlap, opened in the same block;
  ``state_note``: a reconstructed state the data contradict or cannot confirm) and not tied with the cut
  within the mark uncertainty the data admit;
* a **skip** is an opportunity that was not selected;
* a **shape violation** is a selection the rule cannot produce: a selection below the cut, or a partial
  close above it (a queue, and the cyclic walk, close whole positions except the last one they touch);
  for an allocation rule, a cut off its predicted share by more than one lot.

The cut is not simply the lowest selected rank: it is the rank that explains the action with the fewest
exceptions (see ``_with_cut``), so one mis-ranked selection cannot make everyone above it look skipped.

Queue rules rank by score, ties by address ascending. The cyclic walk (dYdX v4: a random start in
address order, then a walk) ranks by address from the first account filled, wrapping around. Allocation
rules rank nobody: their opportunities are the candidates whose predicted share is at least one lot
(each non-exempt candidate then receives at least one lot under floor, rounding or largest-remainder
lots), predicted from how the selected accounts were cut, so the exempt accounts the test looks for
cannot distort it.

Everything is set-wise in polars: one sort per rule over all candidate rows.
"""
from __future__ import annotations

import polars as pl

from .rules import ALLOCATION, CYCLIC, QUEUE, Rule

# Relative score gap to the cut below which a candidate counts as tied with it. Marks published to five
# significant digits move a score by up to ~1e-5 of itself; marks that had to be taken from a trade
# (no asset context for that second) by up to a few basis points.
TIE_TOLERANCE = {"asset_ctxs": 2e-5, "adl_mark": 2e-5, "last_trade": 2e-3}
DEFAULT_TIE_TOLERANCE = 2e-3
# Allocation cuts may differ from the exact share by one lot (rounding) plus this relative slack.
SHARE_SLACK = 1e-6
# ... and a fitted share may be off by this fraction of itself before a cut counts as off the rule
SHARE_FIT_SLACK = 0.05

EVIDENCE_COLUMNS = ("step_id", "user", "rank", "score", "cut_rank", "cut_score", "cut_user", "pool_size",
                    "selected_count", "opportunity", "skip", "shape_violation", "excused")


def _excused() -> pl.Expr:
    """A legitimate reason the data give for passing the candidate over."""
    return pl.col("skip_reason").is_not_null() | pl.col("state_note").is_not_null()


def _lot() -> pl.Expr:
    """The coin's lot; without szDecimals, the smallest ADL cut seen in the coin (at least one lot, so a
    conservative stand-in: fewer opportunities, never more)."""
    seen = pl.col("closed_size").filter(pl.col("closed_size") > 0).min().over("coin")
    return pl.col("lot_size").fill_null(seen).fill_null(0.0)


def _tolerance() -> pl.Expr:
    return pl.col("mark_source").replace_strict(TIE_TOLERANCE, default=DEFAULT_TIE_TOLERANCE, return_dtype=pl.Float64)


def _with_cut(df: pl.DataFrame) -> pl.DataFrame:
    """Add the cut and the opportunity / skip / shape columns to a frame sorted by (step_id, rank) that
    already has ``rank`` and ``score`` (score NULL for the cyclic walk).

    The cut is the rank that explains the action with the fewest exceptions: among the selected ranks c,
    the one minimising (unselected, unexcused candidates above c) + (selected candidates below c); ties go
    to the deeper cut. One mis-ranked selection (a reconstruction error, a position the venue saw
    differently) then costs one shape violation instead of turning everyone above it into a skip."""
    sel = pl.col("selected")
    excused = _excused()
    step = "step_id"
    df = df.with_columns(
        (~sel & ~excused).cast(pl.Int64).cum_sum().over(step).alias("_unsel_above"),
        (sel.sum().over(step) - sel.cast(pl.Int64).cum_sum().over(step)).alias("_sel_below"),
        pl.len().over(step).alias("pool_size"),
        sel.sum().over(step).alias("selected_count"),
    )
    cost = pl.when(sel).then(pl.col("_unsel_above") + pl.col("_sel_below"))
    df = df.with_columns(cost.alias("_cut_cost"))
    best = pl.col("_cut_cost") == pl.col("_cut_cost").min().over(step)
    df = df.with_columns(pl.col("rank").filter(best).max().over(step).alias("cut_rank"))
    at_cut = pl.col("rank") == pl.col("cut_rank")
    df = df.with_columns(
        pl.col("score").filter(at_cut).first().over(step).alias("cut_score"),
        pl.col("user").filter(at_cut).first().over(step).alias("cut_user"),
    )
    gap = (pl.col("score") - pl.col("cut_score")).abs()
    tied = gap <= _tolerance() * pl.max_horizontal(pl.col("cut_score").abs(), pl.lit(1e-300))
    above = pl.col("cut_rank").is_not_null() & (pl.col("rank") < pl.col("cut_rank"))
    opportunity = above & ~excused & ~tied.fill_null(False)
    below = pl.col("cut_rank").is_not_null() & (pl.col("rank") > pl.col("cut_rank"))
    return df.drop("_unsel_above", "_sel_below", "_cut_cost").with_columns(
        opportunity.alias("opportunity"),
        (opportunity & ~sel).alias("skip"),
        # selected out of the rule's order, or closed in part before the queue reached its end
        ((below & sel) | (above & sel & pl.col("partial"))).alias("shape_violation"),
        excused.alias("excused"),
    )


def queue_evidence(pools: pl.DataFrame, rule: Rule) -> pl.DataFrame:
    s = rule.score()
    df = pools.with_columns(pl.when(s.is_finite()).then(s).otherwise(float("-inf")).alias("score"))
    df = df.sort(["step_id", "score", "user"], descending=[False, True, False])
    df = df.with_columns(pl.int_range(1, pl.len() + 1).over("step_id").alias("rank"))
    return _with_cut(df)


def cyclic_evidence(pools: pl.DataFrame) -> pl.DataFrame:
    """Walk order: address ascending from the first account filled, wrapping around."""
    df = pools.sort(["step_id", "user"]).with_columns(pl.int_range(pl.len()).over("step_id").alias("_pos"))
    start = pl.col("_pos").filter(pl.col("fill_order") == 1).first().over("step_id")
    df = df.with_columns(
        ((pl.col("_pos") - start.fill_null(0)) % pl.len().over("step_id") + 1).alias("rank"),
        pl.lit(None, pl.Float64).alias("score"),
    ).drop("_pos").sort(["step_id", "rank"])
    return _with_cut(df)


def _waterfill_level(lev: pl.Expr, closed: pl.Expr, size: pl.Expr) -> pl.Expr:
    """The common leverage the selected accounts were cut down to (median over the partial cuts; the
    minimum leverage among full closes when there is none)."""
    after = lev * (1.0 - closed / size)
    partial = pl.col("selected") & pl.col("partial")
    return pl.coalesce(after.filter(partial).median().over("step_id"), lev.filter(pl.col("selected")).min().over("step_id"))


def _share_fit(df: pl.DataFrame, closed: pl.Expr, size: pl.Expr) -> pl.Expr:
    """Predicted cut ``clip(a w + b, 0, size)`` per action: ``a`` the pro-rata fraction, ``b`` >= 0 an equal
    share of what capped positions could not take (venues, and generators, that hand out the excess lot by
    lot to everyone with room). Fitted by least squares on the partial cuts (those not capped by the
    position); with fewer than two of them, b = 0 and a is the selected accounts' total over their weight."""
    sel = pl.col("selected")
    fit = sel & (closed < size * (1 - 1e-9)) & (closed > 0)
    w, c = pl.col("w").filter(fit), closed.filter(fit)
    n = fit.sum().over("step_id")
    cov = ((w * c).mean() - w.mean() * c.mean()).over("step_id")
    var = ((w * w).mean() - w.mean() ** 2).over("step_id")
    slope = pl.when(var > 0).then(cov / var).otherwise(0.0).clip(lower_bound=0.0)
    intercept = (c.mean().over("step_id") - slope * w.mean().over("step_id")).clip(lower_bound=0.0)
    a_fit = pl.when(var > 0).then(slope).otherwise(c.sum().over("step_id") / w.sum().over("step_id"))
    b_fit = pl.when(var > 0).then(intercept).otherwise(0.0)
    simple = closed.filter(sel).sum().over("step_id") / pl.col("w").filter(sel).sum().over("step_id")
    a = pl.when(n >= 2).then(a_fit).otherwise(simple)
    b = pl.when(n >= 2).then(b_fit).otherwise(0.0)
    return pl.min_horizontal(pl.col("w") * a + b, size).clip(lower_bound=0.0)


def allocation_evidence(pools: pl.DataFrame, rule: Rule) -> pl.DataFrame:
    """Predicted share of every candidate from how the selected were cut (:func:`_share_fit`);
    opportunities are the candidates whose share is at least one lot, skips those of them left out, shape
    violations the selected whose cut is off the prediction by more than rounding allows."""
    sel = pl.col("selected")
    size = pl.col("size").cast(pl.Float64)
    closed = pl.col("closed_size").cast(pl.Float64)
    df = pools.with_columns(w=rule.weight().fill_nan(0.0).fill_null(0.0).clip(lower_bound=0.0), lot=_lot())
    if rule.fallback is not None:
        # no positive weight among the selected: the rule's fallback weight for that action
        no_weight = pl.col("w").filter(sel).sum().over("step_id") <= 0
        df = df.with_columns(pl.when(no_weight).then(rule.fallback()).otherwise(pl.col("w")).alias("w"))
    if rule.name == "leverage_waterfill":
        lev = pl.col("leverage").cast(pl.Float64)
        level = _waterfill_level(lev, closed, size)
        pred = pl.when(lev > level).then(size * (1.0 - level / lev)).otherwise(0.0)
    else:
        pred = _share_fit(df, closed, size)
    df = df.with_columns(pred.fill_nan(0.0).fill_null(0.0).alias("predicted"))
    excused = _excused()
    opportunity = (pl.col("predicted") >= pl.col("lot") * (1 + SHARE_SLACK)) & (pl.col("lot") > 0) & ~excused
    off = (closed - pl.col("predicted")).abs() > 1.5 * pl.col("lot") + SHARE_FIT_SLACK * pl.col("predicted")
    # rank by predicted share (largest first) so evidence reads like a queue's; the cut is the smallest share cut
    df = df.sort(["step_id", "predicted", "user"], descending=[False, True, False]).with_columns(
        pl.int_range(1, pl.len() + 1).over("step_id").alias("rank"), pl.col("predicted").alias("score"),
        pl.len().over("step_id").alias("pool_size"), sel.sum().over("step_id").alias("selected_count"))
    df = df.with_columns(
        pl.col("rank").filter(sel).max().over("step_id").alias("cut_rank"),
        pl.col("predicted").filter(sel).min().over("step_id").alias("cut_score"),
        pl.col("user").filter(sel).last().over("step_id").alias("cut_user"),
    )
    return df.with_columns(
        (opportunity | sel).alias("opportunity"),
        (opportunity & ~sel).alias("skip"),
        (sel & off).alias("shape_violation"),
        excused.alias("excused"),
    )


def rule_evidence(pools: pl.DataFrame, rule: Rule) -> pl.DataFrame:
    """One row per candidate row of ``pools`` with the ``EVIDENCE_COLUMNS`` (plus the pool's own columns
    that the report's evidence shows), for ``rule``."""
    optional = {"state_note": pl.Utf8, "skip_reason": pl.Utf8, "mark_source": pl.Utf8, "lot_size": pl.Float64,
                "fill_order": pl.Int32}
    pools = pools.with_columns([pl.lit(None, t).alias(c) for c, t in optional.items() if c not in pools.columns])
    if "partial" not in pools.columns:
        pools = pools.with_columns((pl.col("selected") & (pl.col("closed_size") < pl.col("size") * (1 - 1e-12)))
                                   .alias("partial"))
    if rule.kind == QUEUE:
        df = queue_evidence(pools, rule)
    elif rule.kind == CYCLIC:
        df = cyclic_evidence(pools)
    elif rule.kind == ALLOCATION:
        df = allocation_evidence(pools, rule)
    else:
        raise ValueError(f"unknown rule kind {rule.kind!r}")
    return df
