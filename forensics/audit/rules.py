"""The ADL rule library: every documented (and a few hypothetical) selection rules, by stable name.

A *queue* rule ranks the eligible pool of an ADL action and closes positions from the top; an
*allocation* rule spreads the action's quantity over the pool; the *cyclic* walk (dYdX v4) starts at a
random account in address order and walks on. Each rule's formula lives once, compiled, in
:func:`forensics.audit.kernel.rule_key` (scores) and the kernel's allocation weights; a :class:`Rule` names it,
dates it and cites its source. Formulas and sources: ``../shared/reference/adl-methods.md`` §1.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import kernel as K

QUEUE = "queue"
ALLOCATION = "allocation"
CYCLIC = "cyclic"


@dataclass(frozen=True)
class Rule:
    """A named, versioned rule; ``code`` selects its formula in :mod:`forensics.audit.kernel`. ``direction``
    is the rule's log-linear weight vector on (log price ratio, log leverage, log notional) when it has one,
    for comparing a fitted conditional-logit direction with it."""

    name: str
    version: str
    kind: str
    source: str
    effective: str
    description: str
    code: int
    direction: tuple[float, float, float] | None = None


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
            K.HL_INDEX,
            direction=(1.0, 1.0, 0.0),
        ),
        Rule(
            "hl_index_literal",
            "2025-10",
            QUEUE,
            "Hyperliquid docs as written: (mark/entry) x (notional/account value) for both sides",
            "2025-10-10",
            "Hyperliquid's index read literally, so a profitable short has mark/entry < 1.",
            K.HL_INDEX_LITERAL,
        ),
        Rule(
            "bitmex",
            "2016",
            QUEUE,
            "BitMEX auto-deleveraging: PnL% x effective leverage (PnL%/leverage for losers)",
            "2016-01-01",
            "PnL% on entry value times effective leverage |mv|/(mv - bv).",
            K.BITMEX,
        ),
        Rule(
            "binance",
            "2024",
            QUEUE,
            "Binance FAQ 360033525471: LeveragePnl = max(0,uPnL)/max(1,WB) x MM/(WB+uPnL)",
            "2020-01-01",
            "Binance's published LeveragePnl, with the account's maintenance margin (the position's when the "
            "pools do not carry the account's).",
            K.BINANCE,
        ),
        Rule(
            "binance_position_mm",
            "2024",
            QUEUE,
            "Binance FAQ 360033525471, 'MarginRatio = MM/(WB+uPnL)' read with the position's maintenance margin "
            "(the FAQ does not say whose MM; adl-methods.md: carry both readings)",
            "2020-01-01",
            "Binance's LeveragePnl with the position's maintenance margin in MarginRatio (within one coin and "
            "tier, notional / account value).",
            K.BINANCE_POSITION_MM,
        ),
        Rule(
            "okx",
            "2024",
            QUEUE,
            "OKX/HTX ADL: PnL ratio / margin ratio for profits, x margin ratio for losses",
            "2021-01-01",
            "OKX-style ranking on PnL ratio and margin ratio (equity / maintenance margin).",
            K.OKX,
        ),
        Rule(
            "hl_node_score",
            "2026-06",
            QUEUE,
            "OtterSec, 'Auto reverse-engineering the Hyperliquid risk engine' (osec.io/blog/2026-06-22-hyperliquid-"
            "risk-engine), as cited in a public repository: (|notional|/account value) x (max(pnl,0)/entry notional), "
            "each factor floored at 1e-8 (only the post's existence is confirmed: a hypothesis)",
            "-",
            "The score reverse-engineered from the node binary: r x L for a position with return r and leverage L "
            "(the documented index is (1+r) x L); losing positions tie at the floor and go by address.",
            K.HL_NODE_SCORE,
        ),
        Rule("upnl", "1", QUEUE, "adl-methods.md §3.2 hypothesis space", "-", "Unrealized PnL in USD.", K.UPNL_RULE),
        Rule(
            "pnl_pct",
            "1",
            QUEUE,
            "adl-methods.md §3.2 hypothesis space",
            "-",
            "Return on entry value.",
            K.PNL_PCT,
            direction=(1.0, 0.0, 0.0),
        ),
        Rule(
            "leverage",
            "1",
            QUEUE,
            "Bullish; Campbell-Hey-Moallemi-Nutz (2026) most-levered first",
            "-",
            "Leverage = notional / account value.",
            K.LEVERAGE,
            direction=(0.0, 1.0, 0.0),
        ),
        Rule(
            "notional",
            "1",
            QUEUE,
            "adl-methods.md §3.2 hypothesis space",
            "-",
            "Position notional in USD.",
            K.NOTIONAL_RULE,
            direction=(0.0, 0.0, 1.0),
        ),
        Rule(
            "lexicographic",
            "1",
            QUEUE,
            "Ethereal docs: leverage, then uPnL, then lowest balance",
            "-",
            "Strict lexicographic order.",
            K.LEXICOGRAPHIC,
        ),
        Rule(
            "random_cyclic",
            "1",
            CYCLIC,
            "dYdX v4 deleveraging.go: pseudo-random start + cyclic walk",
            "-",
            "No ranking: a random start in address order, then a walk by address; as a counterfactual queue "
            "(accounting) it orders by a hash of the address.",
            K.RANDOM_CYCLIC,
        ),
        Rule(
            "contracts_pro_rata",
            "1",
            ALLOCATION,
            "Drift v2 resolve_perp_bankruptcy: contracts pro-rata",
            "-",
            "Every eligible position reduced by the same fraction.",
            K.CONTRACTS_PRO_RATA,
        ),
        Rule(
            "wealth_pro_rata",
            "2",
            ALLOCATION,
            "Chitra (2025) wealth/profit pro-rata",
            "-",
            "Reductions proportional to positive unrealized PnL; proportional to contracts in a step where no "
            "position cut is in profit (version 1 had no fallback, so such steps could not fit).",
            K.WEALTH_PRO_RATA,
        ),
        Rule(
            "leverage_waterfill",
            "1",
            ALLOCATION,
            "Campbell, Hey, Moallemi, Nutz (2026) arXiv 2603.15963",
            "-",
            "Reduce the most levered first until leverage is equalized (water-filling).",
            K.LEVERAGE_WATERFILL,
        ),
    )
}

QUEUE_RULES = [r for r in RULES.values() if r.kind == QUEUE]
# rules that order candidates (the cyclic walk through a hash of the address): counterfactual queues
ORDERING_RULES = [r for r in RULES.values() if r.kind != ALLOCATION]
ALLOCATION_RULES = [r for r in RULES.values() if r.kind == ALLOCATION]
