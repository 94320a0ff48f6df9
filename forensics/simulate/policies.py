"""ADL selection policies (names are a stable API). Sources: reference/adl-methods.md §1-§2.

Every policy sees one ADL step: the *eligible pool* (opposite-side positions in the liquidated coin,
vault excluded, account value > 0) as arrays of features, and the quantity to offset in lots.
It returns scores, the fill order and the closed lots per pool row. Exempt rows are silently
skipped (queue / cyclic) or get zero weight (pro-rata): that is the planted misbehaviour. With a cap
("capped" or soft exemptions, walk policies only) exempt rows are never skipped, but closed only to
``cap`` of what the rule takes from them, the rest taken from the next in line.

Features (all arrays over the pool): ``size`` (abs, coin units), ``lots`` (abs, int), ``entry``,
``mark``, ``side`` (+1 long / -1 short), ``notional`` = size*mark, ``upnl``, ``account_value``
(cross account value, or the isolated position's equity), ``balance`` (wallet cash), ``mm``
(maintenance margin of the account), ``position_mm`` (maintenance margin of the position alone),
``leverage`` = notional/account_value, ``addr_key`` (rank of the address in lexicographic order, used
for deterministic tie-breaks).

Readings of an ambiguous documented rule are policies of their own (``binance_position_mm``,
``hl_index_short_inverse``, ``hl_node_score``), so a venue that applies one reading can be simulated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

Features = dict[str, np.ndarray]


def _hl_index(f: Features) -> np.ndarray:
    """Hyperliquid: (mark/entry) x (notional/account_value) [V] HL docs "auto-deleveraging".
    Sign convention (docs ambiguous, adl-methods §1): longs use mark/entry, shorts entry/mark,
    so that a profitable position always has ratio > 1."""
    ratio = np.where(f["side"] > 0, f["mark"] / f["entry"], f["entry"] / f["mark"])
    return ratio * f["notional"] / f["account_value"]


def _bitmex(f: Features) -> np.ndarray:
    """BitMEX: PnL% = (mv-ev)/|ev| (side-signed); EffLev = |mv|/(mv-bv) ~ notional/account_value
    under cross margin; rank = PnL%*EffLev if PnL% > 0 else PnL%/EffLev [V] bitmex.com/app/autoDeleveraging."""
    pnl = f["upnl"] / (f["size"] * f["entry"])
    lev = f["leverage"]
    return np.where(pnl > 0, pnl * lev, pnl / lev)


def _binance(f: Features) -> np.ndarray:
    """Binance USDⓈ-M LeveragePnl = PnlPercent x MarginRatio with PnlPercent = max(0,uPnL)/max(1,WB),
    MarginRatio = MM/(WB+uPnL_account) (0 if equity <= 0) [V] binance.com/en/support/faq/360033525471."""
    pnlp = np.maximum(0.0, f["upnl"]) / np.maximum(1.0, f["balance"])
    mr = np.where(f["account_value"] > 0, f["mm"] / np.maximum(f["account_value"], 1e-12), 0.0)
    return pnlp * mr


def _binance_position_mm(f: Features) -> np.ndarray:
    """Binance's LeveragePnl read with the *position's* maintenance margin in MarginRatio. The FAQ
    (binance.com/en/support/faq/360033525471) defines "Margin Ratio = Maintenance Margin/(Wallet
    Balance+Unrealized Profit)" and says traders "will be ranked by their margin ratio and unrealized PnL
    as a percentage of their collateral" without saying whose maintenance margin: the account's (``binance``)
    or the ranked position's (this reading)."""
    pnlp = np.maximum(0.0, f["upnl"]) / np.maximum(1.0, f["balance"])
    mr = np.where(f["account_value"] > 0, f["position_mm"] / np.maximum(f["account_value"], 1e-12), 0.0)
    return pnlp * mr


def _hl_index_short_inverse(f: Features) -> np.ndarray:
    """Hyperliquid's index with the short's price ratio the other way round from ``hl_index``: mark/entry
    on both sides, the docs' ``(mark_price / entry_price) * (notional_position / account_value)`` taken
    literally, so a short ranks higher the *less* it gained (adl-methods §1, "Ambiguity")."""
    return f["mark"] / f["entry"] * f["notional"] / f["account_value"]


def _hl_node_score(f: Features) -> np.ndarray:
    """Hyperliquid's score as reverse-engineered from the node binary (OtterSec, "Auto reverse-engineering
    the Hyperliquid risk engine", 2026-06-22, osec.io/blog/2026-06-22-hyperliquid-risk-engine,
    ``compute_adl_ranking_score``): effective leverage ``|notional| / account_value`` (the post's operand check
    settles this direction against a decompiler comment that has it inverted) times the profit ratio
    ``max(pnl, 0) / entry_notional``, each factor floored at 1e-8, closed in descending order. A long with
    return r scores r*L where ``hl_index`` has (1+r)*L, so the two order accounts differently; on a profitable
    position it is BitMEX's PnL% x effective leverage (``_bitmex``), so only losing positions tell them apart."""
    lev = np.maximum(f["notional"] / f["account_value"], 1e-8)
    profit = np.maximum(np.maximum(f["upnl"], 0.0) / (f["size"] * f["entry"]), 1e-8)
    return lev * profit


def _upnl(f: Features) -> np.ndarray:
    """Unrealized PnL in USD (profit-only family of adl-methods §3.2 hypotheses)."""
    return f["upnl"]


def _leverage(f: Features) -> np.ndarray:
    """Leverage only, notional/account_value (Bullish-style / Campbell-Hey-Moallemi-Nutz water-filling)."""
    return f["leverage"]


def _largest_remainder(ideal: np.ndarray, cap: np.ndarray, need: int, key: np.ndarray) -> np.ndarray:
    """Whole lots closest to ``ideal`` summing to ``need`` within ``cap``: floors, then one more lot each by
    largest remainder (address order on ties), then, while capped rows leave lots over, one more lot
    each to every row with room in address order, round after round."""
    closed = np.minimum(np.floor(ideal).astype(np.int64), cap)
    rem = need - int(closed.sum())
    if rem > 0:
        o = np.lexsort((key, -(ideal - closed)))
        take = o[closed[o] < cap[o]][:rem]
        closed[take] += 1
        rem -= len(take)
    while rem > 0:  # whole rounds at once: every row with room takes one lot a round
        room = np.flatnonzero(closed < cap)
        room = room[np.argsort(key[room], kind="stable")]
        if rem < len(room):
            closed[room[:rem]] += 1
            break
        rounds = min(rem // len(room), int((cap[room] - closed[room]).min()))
        closed[room] += rounds
        rem -= rounds * len(room)
    return closed


class Allocation(NamedTuple):
    """One ADL step's outcome under a policy: per pool row the score and closed lots, the fill order and the
    policy's full walk (pool indices), and for capped exempt rows what the rule would have taken."""

    score: np.ndarray
    order: np.ndarray
    closed: np.ndarray
    walk: np.ndarray
    rule_take: np.ndarray


def capped_take(rule_take: int, cap: float) -> int:
    """Lots a capped exempt position gives up when the rule takes ``rule_take`` from it: ``cap`` of it,
    rounded down, but at least one lot (a capped account is never skipped)."""
    return max(1, int(cap * rule_take + 1e-9)) if rule_take > 0 else 0


@dataclass(frozen=True)
class Policy:
    name: str
    kind: str  # "queue" | "lexicographic" | "cyclic" | "pro_rata"
    source: str
    score_fn: Callable[[Features], np.ndarray] | None = None
    weight: str | None = None  # pro-rata weight: "contracts" | "wealth"

    @property
    def walks(self) -> bool:
        """Whether the policy closes positions one after another along a walk (capped exemptions apply)."""
        return self.kind != "pro_rata"

    def allocate(
        self, f: Features, need: int, exempt: np.ndarray, rng: np.random.Generator, cap: float | None = None
    ) -> Allocation:
        """The step's :class:`Allocation`. The walk is the policy's complete ranking of the pool (exempt rows
        included); the fill order is the walk restricted to rows that were actually closed.

        ``cap`` None: exempt rows are skipped. Otherwise (walk policies only) an exempt row is closed by
        :func:`capped_take` of what the rule takes from it, and the walk goes on for the rest."""
        n = len(f["lots"])
        lots = f["lots"].astype(np.int64)
        closed = np.zeros(n, dtype=np.int64)
        rule_take = np.zeros(n, dtype=np.int64)
        if n == 0:
            empty = np.zeros(0, dtype=np.int64)
            return Allocation(np.zeros(0), empty, closed, empty, rule_take)
        if cap is not None and not self.walks:
            raise ValueError(f"capped exemptions apply to walk policies, not to {self.name} ({self.kind})")
        key = f["addr_key"]
        if self.kind == "pro_rata":
            w = lots.astype(float) if self.weight == "contracts" else np.maximum(f["upnl"], 0.0)
            score = w.copy()
            w = np.where(exempt, 0.0, w)
            if w.sum() <= 0:  # nobody in profit: fall back to contracts
                w = np.where(exempt, 0.0, lots.astype(float))
            most = np.where(exempt, 0, lots)
            if need >= most.sum():
                closed = most.copy()
            else:
                closed = _largest_remainder(need * w / w.sum(), most, need, key)
            walk = np.lexsort((key, -score))
            return Allocation(score, walk[closed[walk] > 0], closed, walk, rule_take)
        if self.kind == "cyclic":
            by_key = np.argsort(key, kind="stable")
            start = int(rng.integers(n))
            walk = np.roll(by_key, -start)
            score = np.empty(n)
            score[walk] = n - np.arange(n, dtype=float)
            full = walk
        elif self.kind == "lexicographic":
            # 1) leverage desc, 2) uPnL desc, 3) balance asc, 4) address
            full = np.lexsort((key, f["balance"], -f["upnl"], -f["leverage"]))
            score = np.empty(n)
            score[full] = n - np.arange(n, dtype=float)
        else:
            assert self.score_fn is not None  # every policy without a cascade has a score
            score = self.score_fn(f)
            full = np.lexsort((key, -score))
        remaining = int(need)
        order = []
        for i in full:
            if remaining <= 0:
                break
            if exempt[i] and cap is None:
                continue
            q = min(remaining, int(lots[i]))
            if q <= 0:
                continue
            if cap is not None and exempt[i]:
                rule_take[i] = q
                q = capped_take(q, cap)
            closed[i] = q
            remaining -= q
            order.append(i)
        return Allocation(score, np.array(order, dtype=np.int64), closed, full, rule_take)


POLICIES: dict[str, Policy] = {
    "hl_index": Policy(
        "hl_index", "queue", "Hyperliquid docs: (mark/entry) x (notional/account value); adl-methods.md §1", _hl_index
    ),
    "bitmex": Policy("bitmex", "queue", "BitMEX PnL% x effective leverage; adl-methods.md §1", _bitmex),
    "binance": Policy(
        "binance", "queue", "Binance LeveragePnl = PnlPercent x MarginRatio; adl-methods.md §1", _binance
    ),
    "upnl": Policy("upnl", "queue", "unrealized PnL (USD) only; adl-methods.md §3.2 hypothesis space", _upnl),
    "leverage": Policy(
        "leverage", "queue", "leverage only (Bullish; Campbell et al. water-filling); adl-methods.md §1", _leverage
    ),
    "lexicographic": Policy(
        "lexicographic", "lexicographic", "Ethereal: leverage, then uPnL, then lowest balance; adl-methods.md §1"
    ),
    "random_cyclic": Policy(
        "random_cyclic",
        "cyclic",
        "dYdX v4 OffsetSubaccountPerpetualPosition: pseudo-random start + cyclic walk; adl-methods.md §1",
    ),
    "contracts_pro_rata": Policy(
        "contracts_pro_rata", "pro_rata", "Drift v2 contracts pro-rata; adl-methods.md §1", weight="contracts"
    ),
    "wealth_pro_rata": Policy(
        "wealth_pro_rata", "pro_rata", "wealth (profit) pro-rata, Chitra §2.1; adl-methods.md §2", weight="wealth"
    ),
    # readings of an ambiguous documented rule (issue 23)
    "binance_position_mm": Policy(
        "binance_position_mm",
        "queue",
        "Binance LeveragePnl with the position's maintenance margin in MarginRatio (FAQ 360033525471 leaves "
        "whose maintenance margin open); adl-methods.md 2026 additions",
        _binance_position_mm,
    ),
    "hl_index_short_inverse": Policy(
        "hl_index_short_inverse",
        "queue",
        "Hyperliquid docs' index with mark/entry for shorts too (the literal formula); adl-methods.md §1 ambiguity",
        _hl_index_short_inverse,
    ),
    "hl_node_score": Policy(
        "hl_node_score",
        "queue",
        "Hyperliquid node binary as reverse-engineered by OtterSec (2026-06-22): max(|ntl|/av, 1e-8) x "
        "max(max(pnl,0)/entry_ntl, 1e-8); adl-methods.md 2026 additions",
        _hl_node_score,
    ),
}
