"""The ADL rule library: every documented (and a few hypothetical) selection rules, by stable name.

A *queue* rule ranks the eligible pool of an ADL action and closes positions from the top; an
*allocation* rule spreads the action's quantity over the pool; the *cyclic* walk (dYdX v4) starts at a
random account in address order and walks on. Scores are polars expressions over the
``adl_pools`` columns (``forensics.schema.ADL_POOLS``), so every rule scores millions of candidates
set-wise. Formulas and sources: ``../shared/reference/adl-methods.md`` §1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

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
            "okx",
            "2024",
            QUEUE,
            "OKX/HTX ADL: PnL ratio / margin ratio for profits, x margin ratio for losses",
            "2021-01-01",
            "OKX-style ranking on PnL ratio and margin ratio.",
            score=_okx,
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

QUEUE_RULES = [r for r in RULES.values() if r.kind == QUEUE]
# rules that order candidates (the cyclic walk through a hash of the address): counterfactual queues
ORDERING_RULES = [r for r in RULES.values() if r.score is not None]
ALLOCATION_RULES = [r for r in RULES.values() if r.kind == ALLOCATION]


# columns some rules read that older pools (and hand-built ones) may lack: NULL makes the rule fall back
OPTIONAL_COLUMNS = {"account_maintenance_margin_usd": pl.Float64}


def with_rule_columns(pools: pl.DataFrame) -> pl.DataFrame:
    return pools.with_columns([pl.lit(None, t).alias(c) for c, t in OPTIONAL_COLUMNS.items() if c not in pools.columns])


def score_pools(pools: pl.DataFrame, rules: list[Rule] | None = None) -> pl.DataFrame:
    """Add a ``score_<rule>`` column per ordering rule (non-finite scores become -inf: never first)."""
    pools = with_rule_columns(pools)
    rules = rules or ORDERING_RULES
    exprs = []
    for r in rules:
        s = r.score()
        exprs.append(pl.when(s.is_finite()).then(s).otherwise(float("-inf")).alias(f"score_{r.name}"))
    return pools.with_columns(exprs)
