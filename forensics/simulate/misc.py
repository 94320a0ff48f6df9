"""Cash events of a real-format scenario: funding settlements, deposits, withdrawals, transfers and
liquidation summaries, applied to the engine's balances (so truth's pools include them) and recorded
for ``misc_events_by_block``.

Called at the start of every block, before its trades (a block's misc events precede its fills, as
the replay assumes by default). Funding settles every ``funding_interval_s`` on epoch-aligned boundaries
(Hyperliquid: hourly; a short window uses a compressed clock so it holds settlements), on every position
of cross accounts and on the snapshot positions of isolated ones, ``funding_amount = round(-szi * mark *
rate, 6)`` added to cash. Ledger updates hit random retail accounts at ``rate_per_s``; withdrawals and
outgoing transfers only leave an account well above its maintenance margin. For an isolated account a
ledger change moves its cross cash (``reserve``), never the isolated margin. Liquidation summaries carry
the engine's account value (cross: cross equity; isolated: the position's equity) when it is liquidated.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import fmt

VAULT = 0  # the engine's liquidator-vault account index

ZERO_HASH = "0x" + "0" * 64
FUNDING_RATE = 0.0000125


class MiscEvents:
    def __init__(self, seed: int, *, rate_per_s: float = 2.0, funding_interval_s: float = 60.0):
        self.rng = np.random.default_rng([seed, 3])
        self.rate_per_s, self.interval_ms = rate_per_s, int(funding_interval_s * 1000)
        self.blocks: dict[int, list[dict[str, Any]]] = {}  # block index -> events in order
        self.next_funding: int | None = None
        self.snapshot_coins: dict[int, set[int]] = {}
        self.external_flow = 0.0  # net USDC into the accounts (deposits - withdrawals), for the ledger check
        self.counts: dict[str, int] = {}

    def _hash(self) -> str:
        return "0x" + self.rng.bytes(32).hex()

    def _add(self, b: int, event: dict[str, Any], kind: str) -> None:
        self.blocks.setdefault(b, []).append(event)
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def start(self, eng, t_ms: int) -> None:
        self.next_funding = (t_ms // self.interval_ms + 1) * self.interval_ms
        self.snapshot_coins = {a: set(eng.acct_slots[a]) for a in range(eng.N) if eng.iso[a]}

    def block(self, eng, b: int, t_ns: int, m: np.ndarray, dt_s: float) -> None:
        t_ms = t_ns // 1_000_000
        iso_time = fmt.iso_ns(t_ns)
        if self.next_funding is not None and t_ms >= self.next_funding:
            self._funding(eng, b, iso_time, m)
            self.next_funding += self.interval_ms
        for _ in range(int(self.rng.poisson(self.rate_per_s * dt_s))):
            self._ledger(eng, b, iso_time, m)

    def _funding(self, eng, b: int, when: str, m: np.ndarray) -> None:
        deltas = []
        for a in range(eng.N):
            for c, s in sorted(eng.acct_slots[a].items()):
                if eng.iso[a] and c not in self.snapshot_coins.get(a, ()):
                    continue
                szi = float(eng.pos_lots[s] * eng.unit[c])
                if szi == 0:
                    continue
                amount = round(-szi * float(m[c]) * FUNDING_RATE, 6)
                eng.cash[a] += amount
                sd = int(eng.uni.sz_decimals[c])
                deltas.append(
                    {
                        "user": eng.addresses[a],
                        "coin": eng.uni.names[c],
                        "funding_amount": fmt.usd(amount),
                        "szi": fmt.lots(int(eng.pos_lots[s]), sd),
                        "funding_rate": fmt.dec(FUNDING_RATE, 10),
                    }
                )
        if deltas:
            self._add(b, {"time": when, "hash": ZERO_HASH, "inner": {"Funding": {"deltas": deltas}}}, "Funding")

    def _free(self, eng, a: int, m: np.ndarray) -> float:
        eq, _ntl, mm = eng._acct_equity(a, m)
        if eng.iso[a]:
            return float(eng.reserve[a]) - 1.0
        return eq - 3.0 * mm - 1.0

    def _move(self, eng, a: int, usdc: float) -> None:
        eng.cash[a] += usdc
        if eng.iso[a]:
            eng.reserve[a] += usdc

    def _ledger(self, eng, b: int, when: str, m: np.ndarray) -> None:
        r = self.rng
        ids = eng.retail_ids
        a = int(ids[int(r.integers(len(ids)))])
        kind = ("deposit", "withdraw", "accountClassTransfer", "internalTransfer")[int(r.integers(4))]
        usdc = round(float(r.uniform(5, 2000)), 2)
        users = [eng.addresses[a]]
        if kind == "deposit":
            delta = {"type": "deposit", "usdc": fmt.usd(usdc)}
            self._move(eng, a, usdc)
            self.external_flow += usdc
        elif kind == "accountClassTransfer" and r.random() < 0.5:
            delta = {"type": "accountClassTransfer", "usdc": fmt.usd(usdc), "toPerp": True}
            self._move(eng, a, usdc)
            self.external_flow += usdc
        else:
            fee = 1.0 if kind == "withdraw" else 0.0
            usdc = round(min(usdc, 0.2 * self._free(eng, a, m)), 2)
            if usdc < 1.0:
                return
            if kind == "withdraw":
                delta = {
                    "type": "withdraw",
                    "usdc": fmt.usd(usdc),
                    "nonce": int(r.integers(10**12, 10**13)),
                    "fee": fmt.usd(fee),
                }
                self.external_flow -= usdc + fee
            elif kind == "accountClassTransfer":
                delta = {"type": "accountClassTransfer", "usdc": fmt.usd(usdc), "toPerp": False}
                self.external_flow -= usdc
            else:
                d = int(ids[int(r.integers(len(ids)))])
                if d == a:
                    return
                delta = {
                    "type": "internalTransfer",
                    "usdc": fmt.usd(usdc),
                    "user": eng.addresses[a],
                    "destination": eng.addresses[d],
                    "fee": fmt.usd(fee),
                }
                users.append(eng.addresses[d])
                self._move(eng, d, usdc)
            self._move(eng, a, -(usdc + fee))
        self._add(
            b, {"time": when, "hash": self._hash(), "inner": {"LedgerUpdate": {"users": users, "delta": delta}}}, kind
        )

    def liquidation(self, eng, b: int, t_ns: int, a: int, equity: float, slots: list, m: np.ndarray) -> None:
        if a == VAULT:
            return
        positions, ntl = [], 0.0
        for c, s in slots:
            sd = int(eng.uni.sz_decimals[c])
            positions.append({"coin": eng.uni.names[c], "szi": fmt.lots(int(eng.pos_lots[s]), sd)})
            ntl += abs(float(eng.pos_lots[s] * eng.unit[c])) * float(m[c])
        delta = {
            "type": "liquidation",
            "liquidatedNtlPos": fmt.usd(ntl),
            "accountValue": fmt.usd(equity),
            "leverageType": "Isolated" if eng.iso[a] else "Cross",
            "liquidatedPositions": positions,
        }
        self._add(
            b,
            {
                "time": fmt.iso_ns(t_ns),
                "hash": self._hash(),
                "inner": {"LedgerUpdate": {"users": [eng.addresses[a]], "delta": delta}},
            },
            "liquidation",
        )
