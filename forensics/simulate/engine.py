"""Accounts, matching, liquidation (market / backstop) and ADL engine.

State: integer position sizes in lots (``10**-szDecimals`` coin) in flat numpy arrays indexed by slot,
float average entry prices, float USDC cash per account. A fill updates the owner's position with
Hyperliquid semantics (increase re-averages the entry, a partial close keeps it, a flip resets it to the
fill price) and credits ``closedPnl - fee`` to cash; fees go to ``fee_sink``.

Per block: ordinary trades, then market liquidations of accounts below maintenance margin, backstop
takeovers by the liquidator vault (at the bankruptcy price, so the vault inherits the remaining equity),
then ADL steps while the vault's account value is negative: each losing vault position is offset against
opposite-side positions in the same coin at the previous block's mark price, in the configured policy's
order, planted exempt accounts skipped (or, capped, closed only to a fraction of what the policy takes).
With a rule switch the steps of every wave from ``switch_wave`` on follow the second policy; waves are
counted as the steps happen, with the same gap rule as :meth:`Engine._waves`.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .config import VAULT_ADDRESS, Params, Scale, make_addresses
from .fmt import sig
from .market import Universe, block_times, price_paths, round_px, round_px1
from .policies import Policy

VAULT = 0
Fill = tuple  # (acct, coin, px, lots, is_buy, t_ms, start_lots, dir, closed_pnl, hash, oid, crossed, fee, tid, liq)


@dataclass
class RunResult:
    addresses: list[str]
    universe: Universe
    t_ns: np.ndarray
    block_numbers: np.ndarray
    mark: np.ndarray
    oracle: np.ndarray
    snapshot: dict[str, Any]
    steps: list[dict[str, Any]]
    waves: list[dict[str, Any]]
    exempt: list[int]
    whales: list[int]
    ctx_rows: list[dict[str, Any]]
    vault_rows: list[tuple[int, float, float]]
    counts: dict[str, int]
    ledger: dict[str, float]
    adl_fill_stats: dict[str, list]
    liq_first_ms: int | None
    adl_first_ms: int | None
    adl_users: list[int]
    extra: dict[str, Any] = field(default_factory=dict)


class Engine:
    def __init__(
        self,
        params: Params,
        scale: Scale,
        uni: Universe,
        policy: Policy,
        switch_policy: Policy | None = None,
        switch_wave: int | None = None,
    ):
        self.p, self.scale, self.uni, self.policy = params, scale, uni, policy
        self.switch_policy, self.switch_wave = switch_policy, switch_wave
        if (switch_policy is None) != (switch_wave is None):
            raise ValueError("a rule switch needs both the second policy and the wave it starts at")
        # capped exemptions: exempt positions give up this fraction of the policy's take (None: skipped)
        self.exempt_cap = params.exempt_cap if params.exempt_kind == "capped" else None
        self._wave, self._last_adl_ms = -1, None  # the wave of the last ADL step, and its time
        ss = np.random.SeedSequence(params.seed)
        (self.r_addr, self.r_pop, self.r_mkt, self.r_trade, self.r_adl, self.r_id) = [
            np.random.default_rng(s) for s in ss.spawn(6)
        ]
        self.unit = 10.0 ** -uni.sz_decimals.astype(float)
        self.M = uni.n
        self.fee_sink = 0.0
        self.cap = 1024
        self._alloc(self.cap)
        self.slot_of: dict[int, int] = {}
        self.free: list[int] = []
        self.nslots = 0
        self.acct_slots: list[dict[int, int]] = []
        self.retail_slots: list[int] = []
        self.retail_pos: dict[int, int] = {}
        self._ub = np.zeros(0)
        self._ui = 0
        self._ib = np.zeros(0)
        self._ii = 0
        self.next_tid = 771_334_000_000_000 + int(self.r_id.integers(0, 10**9))
        self.next_oid = 194_018_000_000 + int(self.r_id.integers(0, 10**6))
        self.misc = None  # forensics.simulate.misc.MiscEvents for real-format scenarios (cash events)

    # ------------------------------------------------------------------ fast random numbers
    def U(self) -> float:
        """Next uniform from a buffered stream of ``r_trade`` (much cheaper than per-call numpy)."""
        if self._ui >= len(self._ub):
            self._ub = self.r_trade.random(1 << 16).tolist()
            self._ui = 0
        self._ui += 1
        return self._ub[self._ui - 1]

    def I(self) -> float:  # noqa: E743 (the calibration paper's name)
        """Next uniform of the id stream (``r_id``)."""
        if self._ii >= len(self._ib):
            self._ib = self.r_id.random(1 << 16).tolist()
            self._ii = 0
        self._ii += 1
        return self._ib[self._ii - 1]

    # ------------------------------------------------------------------ position store
    def _alloc(self, cap: int) -> None:
        def grow(a, dtype, fill=0):
            b = np.full(cap, fill, dtype=dtype)
            if a is not None:
                b[: len(a)] = a
            return b

        self.pos_acct = grow(getattr(self, "pos_acct", None), np.int64)
        self.pos_coin = grow(getattr(self, "pos_coin", None), np.int64)
        self.pos_lots = grow(getattr(self, "pos_lots", None), np.int64)
        self.pos_entry = grow(getattr(self, "pos_entry", None), np.float64)

    def _slot(self, a: int, c: int) -> int:
        k = a * self.M + c
        s = self.slot_of.get(k)
        if s is not None:
            return s
        if self.free:
            s = self.free.pop()
        else:
            if self.nslots >= self.cap:
                self.cap *= 2
                self._alloc(self.cap)
            s = self.nslots
            self.nslots += 1
        self.slot_of[k] = s
        self.pos_acct[s], self.pos_coin[s], self.pos_lots[s], self.pos_entry[s] = a, c, 0, 0.0
        self.acct_slots[a][c] = s
        if self.is_retail[a]:
            self.retail_pos[s] = len(self.retail_slots)
            self.retail_slots.append(s)
        return s

    def _release(self, s: int) -> None:
        a, c = int(self.pos_acct[s]), int(self.pos_coin[s])
        del self.slot_of[a * self.M + c]
        del self.acct_slots[a][c]
        self.pos_lots[s], self.pos_entry[s], self.pos_acct[s] = 0, 0.0, 0
        self.free.append(s)
        i = self.retail_pos.pop(s, None)
        if i is not None:
            last = self.retail_slots.pop()
            if last != s:
                self.retail_slots[i] = last
                self.retail_pos[last] = i

    # ------------------------------------------------------------------ fills
    def apply(self, a: int, c: int, dl: int, px: float) -> tuple[int, str, float]:
        """Signed lot change ``dl`` at ``px`` for account ``a``: returns (start lots, dir, closedPnl)."""
        s = self._slot(a, c)
        L = int(self.pos_lots[s])
        e = float(self.pos_entry[s])
        u = self.unit[c]
        new = L + dl
        pnl = 0.0
        if L == 0 or (L > 0) == (dl > 0):
            d = "Open Long" if dl > 0 else "Open Short"
            self.pos_entry[s] = px if L == 0 else (e * abs(L) + px * abs(dl)) / (abs(L) + abs(dl))
        else:
            closing = min(abs(dl), abs(L))
            pnl = closing * u * (px - e) * (1 if L > 0 else -1)
            if abs(dl) <= abs(L):
                d = "Close Long" if L > 0 else "Close Short"
            else:
                d = "Long > Short" if L > 0 else "Short > Long"
                self.pos_entry[s] = px
        pnl = round(pnl, 6)
        self.pos_lots[s] = new
        self.cash[a] += pnl
        if new == 0:
            self._release(s)
        return L, d, pnl

    def trade(
        self,
        out: list,
        c: int,
        buyer: int,
        seller: int,
        lots: int,
        px: float,
        t_ms: int,
        taker_is_buyer: bool,
        fee_b: float,
        fee_s: float,
        liq: tuple | None = None,
        adl_user: int | None = None,
        hash_: str | None = None,
    ) -> None:
        h = hash_ or "0x" + self.r_id.bytes(32).hex()
        tid = self.next_tid
        self.next_tid += 1 + int(self.I() * 3999)
        self.next_oid += 1 + int(self.I() * 49)
        oid_t = self.next_oid
        oid_m = oid_t - 1 - int(self.I() * 4_999_999)
        legs = ((buyer, True, fee_b, taker_is_buyer), (seller, False, fee_s, not taker_is_buyer))
        if adl_user is not None:  # winner's leg first, like the real S3 line
            legs = tuple(sorted(legs, key=lambda x: x[0] != adl_user))
        for a, is_buy, rate, crossed in legs:
            start, d, pnl = self.apply(a, c, lots if is_buy else -lots, px)
            fee = round(rate * px * lots * self.unit[c], 6) if rate else 0.0
            self.cash[a] -= fee
            self.fee_sink += fee
            if adl_user == a:
                d = "Auto-Deleveraging"
            out.append(
                (a, c, px, lots, is_buy, t_ms, start, d, pnl, h, oid_t if crossed else oid_m, crossed, fee, tid, liq)
            )

    # ------------------------------------------------------------------ population
    def populate(self, mark0: np.ndarray) -> None:
        p, sc, uni, r = self.p, self.scale, self.uni, self.r_pop
        n_whales = max(p.n_whales_per_exempt * 5, 2)  # fixed: the population must not depend on ``exempt``
        n_exempt = len(p.exempt) if isinstance(p.exempt, tuple) else int(p.exempt)
        nmm = sc.n_market_makers
        n = 1 + nmm + n_whales + max(sc.n_accounts - nmm - n_whales, 10)
        self.N = n
        self.addresses = [VAULT_ADDRESS] + make_addresses(self.r_addr, n - 1)
        self.addr_key = np.argsort(np.argsort(np.array(self.addresses)))
        self.mm_ids = np.arange(1, 1 + nmm)
        self.whales = list(range(1 + nmm, 1 + nmm + n_whales))
        self.is_retail = np.zeros(n, bool)
        self.is_retail[1 + nmm + n_whales :] = True
        self.cash = np.zeros(n)
        self.reserve = np.zeros(n)
        self.iso = np.zeros(n, bool)
        self.iso_coin = np.full(n, -1)
        self.lev_setting = np.ones(n, dtype=np.int64)
        self.acct_slots = [dict() for _ in range(n)]
        M = uni.n
        w_ev = uni.weight_events
        size_fac = np.sqrt(uni.weight_notional / np.maximum(w_ev, 1e-9))
        size_fac /= np.average(size_fac, weights=w_ev)
        self.trade_w = (w_ev**0.7) / (w_ev**0.7).sum()
        self.trade_cw = np.cumsum(self.trade_w).tolist()
        retail = np.nonzero(self.is_retail)[0]
        nr = len(retail)
        cash = np.clip(np.exp(r.normal(np.log(2500.0), 1.9, nr)), 5.0, 5e7)
        self.cash[retail] = cash
        npos = r.poisson(sc.pos_per_account, nr)
        bias_long = r.random(nr) < 0.62
        iso_flag = (r.random(nr) < p.fraction_isolated) & (npos > 0)
        npos[iso_flag] = 1
        for j, a in enumerate(retail):
            k = int(npos[j])
            if k == 0:
                continue
            coins = r.choice(M, size=min(k, M), replace=False, p=w_ev)
            long_side = bias_long[j]
            lev = float(np.exp(r.normal(np.log(6.0), 0.9))) if long_side else float(np.exp(r.normal(np.log(0.9), 1.2)))
            maxl = float(uni.max_leverage[coins].min())
            lev = float(np.clip(lev, 0.05, 0.9 * maxl))
            self.lev_setting[a] = int(np.clip(np.ceil(lev * 1.5), 1, maxl))
            split = r.dirichlet(np.ones(len(coins)))
            if iso_flag[j]:
                self.iso[a] = True
                self.iso_coin[a] = int(coins[0])
                self.reserve[a] = round(float(self.cash[a]) * float(r.uniform(0.0, 0.5)), 2)
            base = (self.cash[a] - self.reserve[a]) * lev
            for c, w in zip(coins, split):
                c = int(c)
                sgn = (1 if long_side else -1) * (-1 if r.random() < 0.12 else 1)
                ntl = base * w * size_fac[c]
                lots = int(round(ntl / mark0[c] / self.unit[c]))
                if lots < 1:
                    continue
                entry = self._entry(r, c, sgn, mark0)
                self._open(a, c, sgn * lots, entry)
        # whales: large profitable shorts in several top coins (planted exemption candidates)
        top = np.argsort(-w_ev, kind="stable")[: max(2, min(5, M))]
        oi = np.zeros(M)
        np.add.at(
            oi,
            self.pos_coin[: self.nslots],
            np.abs(self.pos_lots[: self.nslots])
            * self.unit[self.pos_coin[: self.nslots]]
            * mark0[self.pos_coin[: self.nslots]],
        )
        for a in self.whales:
            coins = r.choice(top, size=min(3, len(top)), replace=False)
            ntl_tot = 0.0
            for c in coins:
                c = int(c)
                ntl = oi[c] * float(r.uniform(0.025, 0.06))
                lots = max(1, int(round(ntl / mark0[c] / self.unit[c])))
                entry = self._entry(r, c, -1, mark0, boost=1.5)
                self._open(a, c, -lots, entry)
                ntl_tot += lots * self.unit[c] * mark0[c]
            lev = min(float(r.uniform(5.0, 9.0)), 0.8 * float(uni.max_leverage[coins].min()))
            self.cash[a] = ntl_tot / lev
            self.lev_setting[a] = 10
        # market makers absorb the net open interest and make markets
        net = np.zeros(M, dtype=np.int64)
        np.add.at(net, self.pos_coin[: self.nslots], self.pos_lots[: self.nslots])
        for c in range(M):
            parts = np.full(nmm, -net[c] // nmm, dtype=np.int64)
            parts[: (-net[c]) % nmm] += 1
            for a, q in zip(self.mm_ids, parts):
                if q:
                    self._open(int(a), c, int(q), float(mark0[c]))
        bal_ntl = float((np.abs(net) * self.unit * mark0).sum())
        for a in self.mm_ids:
            self.cash[a] = (1.0 * bal_ntl + 1.0 * float(oi.sum())) / nmm + 1e5
            self.lev_setting[a] = 5
        # make sure nobody starts liquidatable: scale positions of thin accounts down
        eq, mm, ntl = self.metrics(mark0)
        bad = np.nonzero((ntl > 0) & (eq < 1.3 * mm) & (np.arange(n) != VAULT))[0]
        for a in bad:
            self.cash[a] += 1.3 * mm[a] - eq[a] + 1.0
        self.cash = np.round(self.cash, 2)
        # vault (HLP Liquidator) cash
        long_oi = float(
            sum(
                max(int(self.pos_lots[s]), 0) * self.unit[self.pos_coin[s]] * mark0[self.pos_coin[s]]
                for s in range(self.nslots)
            )
        )
        self.cash[VAULT] = round(p.vault_cash_frac * long_oi, 2)
        self.lev_setting[VAULT] = 20
        # exempt accounts
        if isinstance(p.exempt, tuple):
            idx = {a: i for i, a in enumerate(self.addresses)}
            self.exempt = sorted(idx[x.lower()] for x in p.exempt if x.lower() in idx)
        else:
            self.exempt = (
                sorted(int(x) for x in r.choice(self.whales, size=min(n_exempt, len(self.whales)), replace=False))
                if n_exempt
                else []
            )
        self.is_exempt = np.zeros(n, bool)
        self.is_exempt[self.exempt] = True

    def _entry(self, r: np.random.Generator, c: int, sgn: int, mark0: np.ndarray, boost: float = 1.0) -> float:
        """Entry price at the snapshot. Longs: near the pre-crash price. Shorts: calibrated so that the PnL%
        at the typical ADL price (~ -24% x beta) follows the coin's mean PnL% of ADL'd positions."""
        if sgn > 0:
            return float(mark0[c] * np.exp(r.normal(-0.01, 0.05)))
        p_adl = mark0[c] * np.exp(-0.24 * self.uni.beta[c])
        x = float(np.exp(r.normal(0.05, 0.8))) * boost
        e = p_adl * (1.0 + self.uni.pnl_target[c] / 100.0 * x)
        return float(max(e, mark0[c] * np.exp(r.normal(0.0, 0.03))))

    def _open(self, a: int, c: int, lots: int, entry: float) -> None:
        entry = float(sig(entry, 6))  # the snapshot's string is the truth
        s = self._slot(a, c)
        L = int(self.pos_lots[s])
        if L == 0:
            self.pos_entry[s] = entry
        elif (L > 0) == (lots > 0):
            self.pos_entry[s] = float(sig((self.pos_entry[s] * abs(L) + entry * abs(lots)) / (abs(L) + abs(lots)), 6))
        self.pos_lots[s] = L + lots
        if self.pos_lots[s] == 0:
            self._release(s)

    # ------------------------------------------------------------------ metrics
    def metrics(self, marks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per account: (margin equity, maintenance margin, notional). Isolated accounts' equity
        excludes their cross reserve."""
        k = self.nslots
        a, c, L = self.pos_acct[:k], self.pos_coin[:k], self.pos_lots[:k]
        sz = L * self.unit[c]
        m = marks[c]
        upnl = np.bincount(a, sz * (m - self.pos_entry[:k]), minlength=self.N)
        ntl_pos = np.abs(sz) * m
        ntl = np.bincount(a, ntl_pos, minlength=self.N)
        mm = np.bincount(a, ntl_pos / (2.0 * self.uni.max_leverage[c]), minlength=self.N)
        eq = self.cash - self.reserve + upnl
        return eq, mm, ntl

    # ------------------------------------------------------------------ run
    def run(self, sink: Callable[[int, list], None], stop_after_first_adl_s: float | None = None) -> RunResult:
        p, sc, uni = self.p, self.scale, self.uni
        t_ns = block_times(self.r_mkt, p.start_ns, sc.duration_s)
        nb = len(t_ns)
        crash_ns = p.start_ns + int(p.pre_crash_s * 1e9)
        mark, oracle = price_paths(self.r_mkt, uni, t_ns, crash_ns)
        szd = uni.sz_decimals
        mark_r = round_px(mark, szd[None, :])
        blocks = p.first_block + np.arange(nb) * 1 + np.cumsum(self.r_mkt.integers(0, 3, nb))
        self.populate(mark[0])
        if hasattr(sink, "start"):
            sink.start(self.addresses, t_ns, blocks)
        snapshot = self.snapshot_state(mark[0], int(t_ns[0] // 1_000_000))
        if self.misc is not None:
            self.misc.start(self, int(t_ns[0] // 1_000_000))
        eq0, _, _ = self.metrics(mark[0])
        total_eq0 = float(eq0.sum() + self.reserve.sum())

        oi_ntl = np.zeros(uni.n)
        k = self.nslots
        np.add.at(
            oi_ntl,
            self.pos_coin[:k],
            np.abs(self.pos_lots[:k]) * self.unit[self.pos_coin[:k]] * mark[0][self.pos_coin[:k]] / 2,
        )
        depth_base = 0.0025 * oi_ntl + 50.0
        rt = self.r_trade
        steps: list[dict] = []
        ctx_rows: list[dict] = []
        vault_rows: list[tuple[int, float, float]] = []
        day_ntl = np.zeros(uni.n)
        day_base = np.zeros(uni.n)
        next_ctx = int(t_ns[0] // 1_000_000)
        next_vault = next_ctx
        counts = {
            "fills": 0,
            "trade_fills": 0,
            "liquidation_legs": 0,
            "market_liquidation_legs": 0,
            "backstop_legs": 0,
            "adl_legs": 0,
            "liquidated_accounts": 0,
            "backstops": 0,
        }
        liq_first = adl_first = None
        adl_stats: dict[str, list] = {
            "user": [],
            "coin": [],
            "notional": [],
            "pnl_percent": [],
            "leverage": [],
            "partial": [],
            "time": [],
        }
        adl_users: dict[int, None] = {}
        loser_deficit_by_block: dict[int, float] = {}
        vault_cash0 = float(self.cash[VAULT])
        for b in range(nb):
            tb = int(t_ns[b])
            if (
                stop_after_first_adl_s is not None
                and adl_first is not None
                and tb // 1_000_000 > adl_first + stop_after_first_adl_s * 1000
            ):
                break  # dry runs only need the first ADL wave
            t_ms = tb // 1_000_000
            m = mark[b]
            mr = mark_r[b]
            t_rel = (tb - crash_ns) / 1e9
            crash_on = 0 < t_rel < 260
            out: list = []
            # ---- ordinary trades
            dt = (t_ns[b] - t_ns[b - 1]) / 1e9 if b else 0.085
            if self.misc is not None and b > 0:  # funding and ledger updates, before the block's fills
                self.misc.block(self, b, tb, m, dt)
            ntr = int(rt.poisson(sc.trades_per_s * dt * (2.5 if crash_on else 1.0)))
            for _ in range(ntr):
                self._ordinary(out, rt, m, t_ms, crash_on)
            # ---- the liquidator vault unwinds part of its book against market makers (ordinary fills)
            if self.acct_slots[VAULT] and b % 5 == 0 and not crash_on and self._vault_equity(m) > 0:
                for c, s in sorted(self.acct_slots[VAULT].items()):
                    L = int(self.pos_lots[s])
                    q = min(abs(L), max(1, int(abs(L) * p.vault_unwind)))
                    px = float(round_px(m[c] * (1 - 0.001 * np.sign(L)), szd[c]))
                    mm_ = int(self.mm_ids[int(rt.integers(len(self.mm_ids)))])
                    if L > 0:
                        self.trade(out, c, mm_, VAULT, q, px, t_ms, False, self._maker(rt), p.taker_fee)
                    else:
                        self.trade(out, c, VAULT, mm_, q, px, t_ms, True, p.taker_fee, self._maker(rt))
            # ---- liquidations
            eq, mm, ntl = self.metrics(m)
            cand = np.nonzero((ntl > 0) & (eq < mm))[0]
            cand = cand[cand != VAULT]
            bk_take: dict[int, list] = {}  # coin -> [signed lots taken from bankrupt accounts, deficit]
            if len(cand):
                depth = depth_base * (0.2 if 55 < t_rel < 260 else 1.0)
                order = cand[np.lexsort((self.addr_key[cand], eq[cand] / mm[cand]))]
                deficit = 0.0
                for a in order:
                    a = int(a)
                    e_a, mm_a = float(eq[a]), float(mm[a])
                    slots = sorted(self.acct_slots[a].items())
                    market_ok = e_a >= (2.0 / 3.0) * mm_a and all(
                        abs(self.pos_lots[s]) * self.unit[c] * m[c] <= depth[c] for c, s in slots
                    )
                    counts["liquidated_accounts"] += 1
                    if self.misc is not None:
                        self.misc.liquidation(self, b, tb, a, e_a, slots, m)
                    if liq_first is None:
                        liq_first = t_ms
                    if market_ok:
                        for c, s in slots:
                            L = int(self.pos_lots[s])
                            n_ = abs(L) * self.unit[c] * m[c]
                            depth[c] -= n_
                            slip = 0.0015 + 0.002 * n_ / max(depth_base[c], 1.0)
                            sgn = 1 if L > 0 else -1
                            px = float(round_px(m[c] * (1 - sgn * slip), szd[c]))
                            lp = int(self.mm_ids[int(rt.integers(len(self.mm_ids)))])
                            liq = (a, float(mr[c]), "market")
                            n0 = len(out)
                            if L > 0:
                                self.trade(out, c, lp, a, abs(L), px, t_ms, False, self._maker(rt), p.taker_fee, liq)
                            else:
                                self.trade(out, c, a, lp, abs(L), px, t_ms, True, p.taker_fee, self._maker(rt), liq)
                            counts["market_liquidation_legs"] += len(out) - n0
                    else:
                        counts["backstops"] += 1
                        if e_a < 0:
                            deficit += -e_a
                        tot = sum(abs(self.pos_lots[s]) * self.unit[c] * m[c] for c, s in slots)
                        for c, s in slots:
                            L = int(self.pos_lots[s])
                            sz = L * self.unit[c]
                            w = abs(sz) * m[c] / tot
                            px = float(round_px(m[c] - e_a * w / sz, szd[c]))
                            if px <= 0:
                                px = float(mr[c])
                            liq = (a, float(mr[c]), "backstop")
                            n0 = len(out)
                            if e_a < 0:
                                t = bk_take.setdefault(c, [0, 0.0])
                                t[0] += L
                                t[1] += -e_a * w
                            if L > 0:
                                self.trade(out, c, VAULT, a, abs(L), px, t_ms, False, 0.0, 0.0, liq)
                            else:
                                self.trade(out, c, a, VAULT, abs(L), px, t_ms, True, 0.0, 0.0, liq)
                            counts["backstop_legs"] += len(out) - n0
                if deficit:
                    loser_deficit_by_block[b] = deficit
            # ---- ADL: positions taken over from bankrupt accounts, and every losing vault position
            # while the vault's own account value is negative
            if b > 0 and (bk_take or self.acct_slots[VAULT]):
                eqv = self._vault_equity(m)
                todo: dict[int, tuple[int, float]] = {}
                for c, (lt, dfc) in bk_take.items():
                    todo[c] = (abs(lt), dfc)
                if eqv < 0:
                    for c, s in self.acct_slots[VAULT].items():
                        if self.pos_lots[s] * (m[c] - self.pos_entry[s]) < 0:
                            lots_c = abs(int(self.pos_lots[s]))
                            todo[c] = (max(1, int(np.ceil(lots_c * sc.vault_adl_share))), -eqv)
                for c in sorted(todo):
                    need, shortfall = todo[c]
                    n0 = len(out)
                    rec = self._adl_step(
                        out,
                        b,
                        int(blocks[b]),
                        t_ms,
                        c,
                        m,
                        float(mark_r[b - 1, c]),
                        float(mr[c]),
                        shortfall,
                        need,
                        adl_stats,
                        adl_users,
                    )
                    if rec is not None:
                        rec["step"] = len(steps)
                        rec["vault_equity"] = eqv
                        steps.append(rec)
                        counts["adl_legs"] += len(out) - n0
                        if adl_first is None:
                            adl_first = t_ms
            # ---- bookkeeping
            for f in out:
                if f[14] is not None:
                    counts["liquidation_legs"] += 1
                day_ntl[f[1]] += f[2] * f[3] * self.unit[f[1]] / 2
                day_base[f[1]] += f[3] * self.unit[f[1]] / 2
            counts["fills"] += len(out)
            sink(b, out)
            if t_ms >= next_ctx:
                k = self.nslots
                oi = np.zeros(uni.n)
                np.add.at(oi, self.pos_coin[:k], np.abs(self.pos_lots[:k]) * self.unit[self.pos_coin[:k]] / 2)
                ctx_rows.append(
                    {
                        "time": t_ms,
                        "mark": m.copy(),
                        "oracle": oracle[b].copy(),
                        "oi": oi,
                        "day_ntl": day_ntl.copy(),
                        "day_base": day_base.copy(),
                    }
                )
                next_ctx += int(p.ctx_interval_s * 1000)
            if t_ms >= next_vault:
                eqv = self._vault_equity(m)
                vault_rows.append((t_ms, eqv, eqv - vault_cash0))
                next_vault += int(p.vault_interval_s * 1000)
        counts["trade_fills"] = counts["fills"] - counts["liquidation_legs"]
        counts["liquidation_legs_excl_adl"] = counts["liquidation_legs"] - counts["adl_legs"]
        eqT, _, _ = self.metrics(mark[-1])
        waves = self._waves(steps, loser_deficit_by_block, t_ns, blocks)
        ledger = {
            "initial_total_equity": total_eq0,
            "final_total_equity": float(eqT.sum() + self.reserve.sum()),
            "fee_sink": self.fee_sink,
            "conservation_error": float(
                eqT.sum()
                + self.reserve.sum()
                + self.fee_sink
                - total_eq0
                - (self.misc.external_flow if self.misc is not None else 0.0)
            ),
        }
        return RunResult(
            self.addresses,
            uni,
            t_ns,
            blocks,
            mark,
            oracle,
            snapshot,
            steps,
            waves,
            self.exempt,
            self.whales,
            ctx_rows,
            vault_rows,
            counts,
            ledger,
            adl_stats,
            liq_first,
            adl_first,
            list(adl_users),
            {"mark_r": mark_r},
        )

    def _maker(self, rt: np.random.Generator | None = None) -> float:
        return self.p.maker_rebate if self.U() < 0.3 else self.p.maker_fee

    def _vault_equity(self, m: np.ndarray) -> float:
        e = float(self.cash[VAULT])
        for c, s in self.acct_slots[VAULT].items():
            e += float(self.pos_lots[s] * self.unit[c] * (m[c] - self.pos_entry[s]))
        return e

    def _acct_equity(self, a: int, m: np.ndarray) -> tuple[float, float, float]:
        e = float(self.cash[a] - self.reserve[a])
        ntl = mm = 0.0
        for c, s in self.acct_slots[a].items():
            sz = float(self.pos_lots[s] * self.unit[c])
            e += sz * (m[c] - self.pos_entry[s])
            ntl += abs(sz) * m[c]
            mm += abs(sz) * m[c] / (2.0 * self.uni.max_leverage[c])
        return e, ntl, mm

    def _ordinary(self, out: list, rt: np.random.Generator, m: np.ndarray, t_ms: int, crash_on: bool) -> None:
        p, uni = self.p, self.uni
        if self.retail_slots and self.U() < 0.6:
            s = self.retail_slots[int(self.U() * len(self.retail_slots))]
            a, c, L = int(self.pos_acct[s]), int(self.pos_coin[s]), int(self.pos_lots[s])
            u = self.U()
            if crash_on and L > 0:
                u *= 0.7  # more long closing during the crash
            if u < 0.4:
                q = abs(L) if self.U() < 0.08 else max(1, int(abs(L) * (0.03 + (0.4 - 0.03) * self.U())))
                buy = L < 0
            elif u < 0.43:
                q = abs(L) + max(1, int(abs(L) * (0.1 + (0.8 - 0.1) * self.U())))
                buy = L < 0
            else:
                q = max(1, int(abs(L) * (0.03 + (0.3 - 0.03) * self.U())))
                buy = L > 0
        else:
            a = int(self.retail_ids[int(self.U() * len(self.retail_ids))])
            c = int(self.iso_coin[a]) if self.iso[a] else min(bisect.bisect_right(self.trade_cw, self.U()), uni.n - 1)
            e_a, _, _ = self._acct_equity(a, m)
            if e_a <= 1.0:
                return
            lev = max(1.0, float(self.lev_setting[a]))
            q = int(e_a * lev * (0.02 + (0.25 - 0.02) * self.U()) / m[c] / self.unit[c])
            if q < 1:
                return
            buy = self.U() < (0.4 if crash_on else 0.52)
            L = int(self.pos_lots[self.slot_of[a * self.M + c]]) if (a * self.M + c) in self.slot_of else 0
        if self.iso[a] and c != self.iso_coin[a]:
            return
        new = L + (q if buy else -q)
        if abs(new) > abs(L):  # margin check on any increase of exposure
            e_a, ntl_a, _ = self._acct_equity(a, m)
            add = (abs(new) - abs(L)) * self.unit[c] * m[c]
            if e_a <= 0 or ntl_a + add > e_a * min(float(uni.max_leverage[c]), float(self.lev_setting[a]) + 1) * 0.9:
                return
        half = 0.0002 * (3.0 if crash_on else 1.0)
        px = round_px1(float(m[c]) * (1 + (half if buy else -half) * (0.2 + 1.3 * self.U())), int(uni.sz_decimals[c]))
        mm = int(self.mm_ids[int(self.U() * len(self.mm_ids))])
        if buy:
            self.trade(out, c, a, mm, q, px, t_ms, True, p.taker_fee, self._maker())
        else:
            self.trade(out, c, mm, a, q, px, t_ms, False, self._maker(), p.taker_fee)

    @property
    def retail_ids(self) -> np.ndarray:
        ids = getattr(self, "_retail_ids", None)
        if ids is None:
            ids = self._retail_ids = np.nonzero(self.is_retail)[0]
        return ids

    # ------------------------------------------------------------------ ADL
    def _adl_step(
        self,
        out: list,
        b: int,
        block_number: int,
        t_ms: int,
        c: int,
        m: np.ndarray,
        close_px: float,
        mark_px: float,
        shortfall: float,
        need: int,
        stats: dict,
        adl_users: dict,
    ) -> dict | None:
        vs = self.slot_of.get(VAULT * self.M + c)
        if vs is None:
            return None
        VL = int(self.pos_lots[vs])
        need = min(int(need), abs(VL))
        if need <= 0:
            return None
        side = 1 if VL > 0 else -1
        k = self.nslots
        cand = np.nonzero((self.pos_coin[:k] == c) & (self.pos_lots[:k] * side < 0) & (self.pos_acct[:k] != VAULT))[0]
        eq, mm, _ = self.metrics(m)
        accts = self.pos_acct[cand]
        lots = np.abs(self.pos_lots[cand])
        size = lots * self.unit[c]
        entry = self.pos_entry[cand]
        sgn = np.where(self.pos_lots[cand] > 0, 1, -1)
        upnl = sgn * size * (m[c] - entry)
        av = eq[accts]
        keep = av > 0
        cand, accts, lots, size, entry, sgn, upnl, av = (
            x[keep] for x in (cand, accts, lots, size, entry, sgn, upnl, av)
        )
        notional = size * m[c]
        f = {
            "size": size,
            "lots": lots,
            "entry": entry,
            "mark": np.full(len(cand), m[c]),
            "side": sgn,
            "notional": notional,
            "upnl": upnl,
            "account_value": av,
            "balance": self.cash[accts].copy(),
            "mm": mm[accts],
            "position_mm": notional / (2.0 * self.uni.max_leverage[c]),
            "leverage": notional / av,
            "addr_key": self.addr_key[accts],
        }
        exempt = self.is_exempt[accts]
        wave = self._wave_at(t_ms)
        policy = self.policy_of(wave)
        score, order, closed, walk, rule_take = policy.allocate(f, need, exempt, self.r_adl, self.exempt_cap)
        self._wave, self._last_adl_ms = wave, t_ms
        fill_order = np.full(len(cand), -1)
        fill_order[order] = np.arange(len(order))
        liq = (VAULT, mark_px, "backstop")
        selected = []
        h = "0x" + self.r_id.bytes(32).hex()  # one transaction per ADL action: every leg shares its hash
        for _rank, i in enumerate(order):
            q = int(closed[i])
            a = int(accts[i])
            if sgn[i] > 0:  # winner long: sells to the vault
                self.trade(out, c, VAULT, a, q, close_px, t_ms, False, 0.0, 0.0, liq, adl_user=a, hash_=h)
            else:
                self.trade(out, c, a, VAULT, q, close_px, t_ms, True, 0.0, 0.0, liq, adl_user=a, hash_=h)
            selected.append(self.addresses[a])
            adl_users[a] = None
            ntl_fill = q * self.unit[c] * close_px
            stats["user"].append(a)
            stats["coin"].append(c)
            stats["notional"].append(ntl_fill)
            stats["pnl_percent"].append(float(upnl[i] / notional[i] * 100.0))
            stats["leverage"].append(float(notional[i] / av[i]))
            stats["partial"].append(q < int(lots[i]))
            stats["time"].append(t_ms)
        # exempt accounts the walk passed over (pro-rata: every exempt row of the pool; capped: none)
        if self.exempt_cap is not None:
            passed = np.zeros(0, dtype=np.int64)
        elif policy.kind == "pro_rata":
            passed = np.nonzero(exempt)[0]
        elif len(order):
            pos_in_walk = np.empty(len(walk), dtype=np.int64)
            pos_in_walk[walk] = np.arange(len(walk))
            passed = walk[: pos_in_walk[order[-1]]]
            passed = passed[exempt[passed]]
        else:
            passed = np.nonzero(exempt)[0]
        skipped = [self.addresses[int(accts[i])] for i in passed]
        capped = []
        if self.exempt_cap is not None:
            rank_in_walk = np.empty(len(walk), dtype=np.int64)
            rank_in_walk[walk] = np.arange(len(walk))
            capped = [
                {
                    "user": self.addresses[int(accts[i])],
                    "rank": int(rank_in_walk[i]),
                    "rule_take": float(rule_take[i] * self.unit[c]),
                    "taken": float(closed[i] * self.unit[c]),
                }
                for i in np.flatnonzero(rule_take)
            ]
        # pool rows (optionally truncated to top rows + selected + exempt)
        rows_idx = np.arange(len(cand))
        lim = self.scale.truth_pool_limit
        truncated = False
        if lim is not None and len(cand) > lim:
            top = np.lexsort((f["addr_key"], -score))[:lim]
            keepm = np.zeros(len(cand), bool)
            keepm[top] = True
            keepm[closed > 0] = True
            keepm[exempt] = True
            rows_idx = np.nonzero(keepm)[0]
            truncated = True
        pool = []
        for i in rows_idx:
            pool.append(
                {
                    "user": self.addresses[int(accts[i])],
                    "size": float(size[i]) * int(sgn[i]),
                    "entry": float(entry[i]),
                    "mark": float(m[c]),
                    "notional": float(notional[i]),
                    "upnl": float(upnl[i]),
                    "account_value": float(av[i]),
                    "leverage": float(f["leverage"][i]),
                    "balance": float(f["balance"][i]),
                    "mm": float(f["mm"][i]),
                    "score": float(score[i]),
                    "eligible": True,
                    "exempt": bool(exempt[i]),
                    "selected": bool(closed[i] > 0),
                    "fill_order": int(fill_order[i]) if fill_order[i] >= 0 else None,
                    "closed_size": float(closed[i] * self.unit[c]),
                    "partial": bool(0 < closed[i] < lots[i]),
                }
            )
        return {
            "step": -1,
            "block_number": block_number,
            "time": t_ms,
            "coin": self.uni.names[c],
            "liquidated_user": VAULT_ADDRESS,
            "liquidated_side": "long" if side > 0 else "short",
            "liquidated_size": VL * self.unit[c],
            "needed_size": need * self.unit[c],
            "shortfall": float(shortfall),
            "close_px": close_px,
            "mark_px": mark_px,
            "needed_budget": float(abs(m[c] - close_px) * closed.sum() * self.unit[c]),
            "closed_total": float(closed.sum() * self.unit[c]),
            "uncovered": float((need - closed.sum()) * self.unit[c]),
            "pool_size": int(len(cand)),
            "pool_truncated": truncated,
            "pool": pool,
            "selected": selected,
            "skipped_exempt": skipped,
            "rule": policy.name,
            "wave": wave,
            "capped_exempt": capped,
        }

    def _wave_at(self, t_ms: int) -> int:
        """The wave an ADL step at ``t_ms`` belongs to: the last step's, or the next one after a gap of more
        than ``wave_gap_s`` (as :meth:`_waves` counts them afterwards)."""
        if self._last_adl_ms is None:
            return 0
        return self._wave + (t_ms - self._last_adl_ms > self.p.wave_gap_s * 1000)

    def policy_of(self, wave: int) -> Policy:
        """The policy in force in ``wave``."""
        if self.switch_policy is not None and self.switch_wave is not None and wave >= self.switch_wave:
            return self.switch_policy
        return self.policy

    def _waves(self, steps: list[dict], deficits: dict[int, float], t_ns: np.ndarray, blocks: np.ndarray) -> list[dict]:
        waves: list[dict] = []
        gap = self.p.wave_gap_s * 1000
        for st in steps:
            if not waves or st["time"] - waves[-1]["end_ms"] > gap:
                waves.append(
                    {
                        "wave": len(waves),
                        "start_ms": st["time"],
                        "end_ms": st["time"],
                        "steps": [],
                        "shortfall": 0.0,
                        "needed_budget": 0.0,
                        "adl_notional": 0.0,
                    }
                )
            w = waves[-1]
            w["end_ms"] = st["time"]
            w["steps"].append(st["step"])
            w["shortfall"] = max(w["shortfall"], st["shortfall"])
            w["needed_budget"] += st["needed_budget"]
            w["adl_notional"] += st["closed_total"] * st["close_px"]
        tms = t_ns // 1_000_000
        for w in waves:
            lo = w["start_ms"] - gap
            w["loser_deficit"] = float(sum(v for b, v in deficits.items() if lo <= tms[b] <= w["end_ms"]))
        return waves

    # ------------------------------------------------------------------ snapshot
    def snapshot_state(self, m: np.ndarray, t_ms: int) -> dict[str, Any]:
        """Raw per-account state at the snapshot (the writer renders clearinghouseState)."""
        accts = []
        for a in range(self.N):
            pos = []
            for c, s in sorted(self.acct_slots[a].items()):
                pos.append((c, int(self.pos_lots[s]), float(self.pos_entry[s])))
            accts.append(
                (a, float(self.cash[a]), float(self.reserve[a]), bool(self.iso[a]), int(self.lev_setting[a]), pos)
            )
        return {"time": t_ms, "mark": m.copy(), "accounts": accts}
