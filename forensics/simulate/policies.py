"""ADL selection policies (names are a stable API). Sources: reference/adl-methods.md §1-§2.

Every policy sees one ADL step: the *eligible pool* (opposite-side positions in the liquidated coin,
vault excluded, account value > 0) as arrays of features, and the quantity to offset in lots.
It returns scores, the fill order and the closed lots per pool row. Exempt rows are silently
skipped (queue / cyclic) or get zero weight (pro-rata): that is the planted misbehaviour.

Features (all arrays over the pool): ``size`` (abs, coin units), ``lots`` (abs, int), ``entry``,
``mark``, ``side`` (+1 long / -1 short), ``notional`` = size*mark, ``upnl``, ``account_value``
(cross account value, or the isolated position's equity), ``balance`` (wallet cash), ``mm``
(maintenance margin of the account), ``leverage`` = notional/account_value, ``addr_key`` (rank of the
address in lexicographic order, used for deterministic tie-breaks).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Policy:
    name: str
    kind: str  # "queue" | "lexicographic" | "cyclic" | "pro_rata"
    source: str
    score_fn: Callable[[Features], np.ndarray] | None = None
    weight: str | None = None  # pro-rata weight: "contracts" | "wealth"

    def allocate(
        self, f: Features, need: int, exempt: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Returns (score, fill order as pool indices, closed lots per pool row, full walk order).

        The walk is the policy's complete ranking of the pool (exempt rows included); the fill order
        is the walk restricted to rows that were actually closed."""
        n = len(f["lots"])
        lots = f["lots"].astype(np.int64)
        closed = np.zeros(n, dtype=np.int64)
        if n == 0:
            return np.zeros(0), np.zeros(0, dtype=np.int64), closed, np.zeros(0, dtype=np.int64)
        key = f["addr_key"]
        if self.kind == "pro_rata":
            w = lots.astype(float) if self.weight == "contracts" else np.maximum(f["upnl"], 0.0)
            score = w.copy()
            w = np.where(exempt, 0.0, w)
            if w.sum() <= 0:  # nobody in profit: fall back to contracts
                w = np.where(exempt, 0.0, lots.astype(float))
            cap = np.where(exempt, 0, lots)
            if need >= cap.sum():
                closed = cap.copy()
            else:
                closed = _largest_remainder(need * w / w.sum(), cap, need, key)
            walk = np.lexsort((key, -score))
            return score, walk[closed[walk] > 0], closed, walk
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
            if exempt[i]:
                continue
            q = min(remaining, int(lots[i]))
            if q <= 0:
                continue
            closed[i] = q
            remaining -= q
            order.append(i)
        return score, np.array(order, dtype=np.int64), closed, full


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
}
