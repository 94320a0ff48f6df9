"""The perp layer: venues, cross-venue traders, custodians and custody pots as one layered network,
cleared by the fixed-point core (``clearing.clear_layers``), with a liquidity pass and a fire-sale
outer loop (docs/contagion.md, reference §2.7-2.8).

How a scenario becomes a network:

* Prices move by each asset's shock; every listed account's equity on a venue is its on-venue
  collateral plus its PnL. The rest of the market on a venue is one aggregate: its winners' profit
  base, its unpaid losses (bad debt) and the counterparty side of the listed accounts' PnL.
* A venue pays in three seniority layers: (0) collateral, exempt winners, its own debts; (1) its
  capital, owed to its owners; (2) non-exempt winners' profit (pro rata, or one layer per queue
  position for queue ADL). Its insurance fund is an asset. So the insurance fund absorbs bad debt
  first, then winners are haircut (junior recovery = 1 - haircut), then venue capital; the venue
  defaults only when its senior layer is not paid. A vault (HLP-type) is a venue whose capital is the
  backstop used before ADL.
* A loser's loss beyond on-venue collateral is settled from its custody pot (the virtual margin a
  custodian delegated to the venue), then owed by the trader itself. A frozen custodian settles only
  (1 - freeze fraction); the frozen part is bad debt of the venue (the client owes nothing more,
  as in Ethena's off-exchange settlement terms). A pot pays its settlements pro rata, so a pot
  committed more than once (commitment ratio > 1) recovers 1 / ratio.
* Liquidity: margin due on a venue at a deadline can use only the trader's cash and the payouts it
  can reach in time (settlement lag per custodian or venue, no frozen custodian). A trader short of
  it is liquidated there even when solvent: it pays what it can reach, the rest is the venue's bad debt.
* Fire sales: defaulted and liquidated traders' positions are closed; each asset's price moves by
  exp(-impact x signed USD closed), monotone in the direction of the first impact, and everything
  is cleared again until the default set and prices stop changing (capped; oscillation reported).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from forensics.contagion import debtrank
from forensics.contagion.cascades import furfine
from forensics.contagion.clearing import Clearing, clear, clear_layers
from forensics.contagion.model import VENUE_KINDS, Scenario
from forensics.contagion.scenario import ScenarioError

SENIOR, CAPITAL = 0, 1


@dataclass
class Edge:
    debtor: int
    creditor: int | None  # None = a creditor outside the network
    layer: int
    amount: float
    kind: str  # liability | settlement | payout | collateral | residual | capital | rest
    venue: str | None = None
    account: str | None = None


@dataclass
class Built:
    names: list[str]
    kinds: list[str]
    external: np.ndarray
    edges: list[Edge]
    layers: int
    default_layer: np.ndarray
    costs: np.ndarray
    venue_info: dict[str, dict]
    pots: dict[tuple[str, str], dict]
    accounts: dict[tuple[str, str], dict]
    prices: dict[str, float]
    frozen: list[dict] = field(default_factory=list)  # settlement a frozen custodian withheld (not cleared)

    def index(self, name: str) -> int:
        return self.names.index(name)

    def clear(self, alpha: float, beta: float) -> Clearing:
        n, m = len(self.names), self.layers
        rows = [[] for _ in range(m)]
        ext = [np.zeros(n) for _ in range(m)]
        for e in self.edges:
            if e.amount <= 0:
                continue
            if e.creditor is None:
                ext[e.layer][e.debtor] += e.amount
            else:
                rows[e.layer].append((e.debtor, e.creditor, e.amount))
        mats = []
        for r in rows:
            if r:
                i, j, a = zip(*r)
                mats.append(sp.csr_matrix((a, (i, j)), shape=(n, n)))
            else:
                mats.append(sp.csr_matrix((n, n)))
        return clear_layers(
            mats,
            self.external,
            alpha=alpha,
            beta=beta,
            external_obligations=ext,
            default_layer=self.default_layer,
            costs_apply=self.costs,
        )

    def paid(self, c: Clearing, edge: Edge) -> float:
        """What was actually paid on one obligation (pro rata within its layer)."""
        owed = c.layer_obligations[edge.layer][edge.debtor]
        if owed <= 0:
            return 0.0
        return float(edge.amount * c.layer_payments[edge.layer][edge.debtor] / owed)


def _lag(scn: Scenario, custodian: str | None, venue: str) -> float:
    node = scn.node(custodian) if custodian else scn.node(venue)
    lags = node.settlement_lag_h
    return float(lags.get(venue, lags.get("*", 0.0)))


def _freeze(scn: Scenario, custodian: str, venue: str | None, by_h: float = float("inf")) -> float:
    f = 0.0
    for fr in scn.freezes:
        if fr.custodian == custodian and fr.t_h <= by_h and (not fr.venues or venue is None or venue in fr.venues):
            f = max(f, fr.fraction)
    return f


def build(
    scn: Scenario,
    *,
    price_factor: dict[str, float] | None = None,
    insurance_scale: float = 1.0,
    caps: dict[tuple[str, str], float] | None = None,
) -> Built:
    caps = caps or {}
    names = [n.id for n in scn.nodes]
    kinds = [n.kind for n in scn.nodes]
    idx = {k: i for i, k in enumerate(names)}
    prices = {a.id: a.price * (1 + a.shock) * (price_factor or {}).get(a.id, 1.0) for a in scn.assets}

    # accounts: (holder, venue) -> equity on the venue
    accounts: dict[tuple[str, str], dict] = {}
    for p in scn.positions:
        acc = accounts.setdefault((p.holder, p.venue), {"pnl": 0.0, "collateral": 0.0, "positions": []})
        acc["pnl"] += p.qty * (prices[p.asset] - p.entry)
        acc["collateral"] += p.collateral
        acc["positions"].append(p)
    delegated: dict[tuple[str, str], list[tuple[str, float]]] = defaultdict(list)
    for d in scn.delegations:
        delegated[(d.client, d.venue)].append((d.custodian, d.amount))
        accounts.setdefault((d.client, d.venue), {"pnl": 0.0, "collateral": 0.0, "positions": []})
    exempt = {(x.venue, x.account) for x in scn.exemptions if x.enabled}

    # custody pots: one node per (custodian, client)
    pots: dict[tuple[str, str], dict] = {}
    for c in scn.custody:
        pots.setdefault((c.custodian, c.client), {"held": 0.0, "delegated": 0.0})["held"] += c.amount
    for d in scn.delegations:
        pots.setdefault((d.custodian, d.client), {"held": 0.0, "delegated": 0.0})["delegated"] += d.amount
    for key in pots:
        pots[key]["index"] = len(names)
        idx[f"{key[0]}/{key[1]}"] = len(names)
        names.append(f"{key[0]}/{key[1]}")
        kinds.append("pot")
    n = len(names)

    queue_depth = 0
    for v in scn.nodes:
        if v.kind in VENUE_KINDS and v.adl_rule == "queue":
            winners = sum(
                1 for (h, vv), a in accounts.items() if vv == v.id and a["pnl"] > 0 and (v.id, h) not in exempt
            )
            queue_depth = max(queue_depth, winners + 1)
    ordinary = 2 + queue_depth
    layers = ordinary + 1

    e = np.zeros(n)
    dlayer = np.full(n, ordinary)
    costs = np.ones(n, bool)
    edges: list[Edge] = []
    for node in scn.nodes:
        e[idx[node.id]] = node.external_assets
        if node.external_liabilities:
            layer = SENIOR if scn.external_seniority == "senior" else ordinary
            edges.append(Edge(idx[node.id], None, layer, node.external_liabilities, "external"))
    for li in scn.liabilities:
        debtor = scn.node(li.debtor)
        layer = SENIOR if li.layer == "senior" or debtor.kind in VENUE_KINDS else ordinary
        edges.append(Edge(idx[li.debtor], idx[li.creditor], layer, li.amount, "liability"))

    pot_settle: dict[tuple[str, str], float] = defaultdict(float)
    frozen_edges: list[dict] = []
    venue_info: dict[str, dict] = {}
    for v in scn.nodes:
        if v.kind not in VENUE_KINDS:
            continue
        vi = idx[v.id]
        dlayer[vi] = SENIOR
        backstop = v.insurance_fund * insurance_scale + (v.capital if v.kind == "vault" else 0.0)
        capital = 0.0 if v.kind == "vault" else v.capital
        info = {
            "venue": v.id,
            "kind": v.kind,
            "insurance_fund": backstop,
            "capital": capital,
            "bad_debt_rest": v.bad_debt,
            "frozen": 0.0,
            "named_owed": [],
            "profit_exempt": 0.0,
            "profit_junior": 0.0,
            "adl_rule": v.adl_rule,
            "exempt_share": v.exempt_share,
        }
        named = [(h, a) for (h, vv), a in accounts.items() if vv == v.id]
        net_named = sum(a["pnl"] for _, a in named)
        rest_profit = v.profit_base + max(0.0, -net_named)
        e[vi] += backstop + capital + v.profit_base + max(0.0, net_named) - v.bad_debt
        # the rest of the market's winners
        x = v.exempt_share
        edges.append(Edge(vi, None, SENIOR, x * rest_profit, "rest", v.id, "rest"))
        info["profit_exempt"] += x * rest_profit
        info["profit_junior"] += (1 - x) * rest_profit
        queue: list[tuple[float, str, float]] = []
        for holder, acc in named:
            hi = idx[holder]
            e[vi] += acc["collateral"]
            equity = acc["collateral"] + acc["pnl"]
            if acc["pnl"] > 0:
                if (v.id, holder) in exempt:
                    edges.append(Edge(vi, hi, SENIOR, equity, "payout", v.id, holder))
                    info["profit_exempt"] += acc["pnl"]
                else:
                    edges.append(Edge(vi, hi, SENIOR, acc["collateral"], "collateral", v.id, holder))
                    info["profit_junior"] += acc["pnl"]
                    if v.adl_rule == "queue":
                        # Bybit/Binance-style ranking: profit ratio first in line
                        queue.append(
                            (
                                acc["pnl"]
                                / max(acc["collateral"] + sum(a for _, a in delegated[(holder, v.id)]), 1e-9),
                                holder,
                                acc["pnl"],
                            )
                        )
                    else:
                        edges.append(Edge(vi, hi, ordinary, acc["pnl"], "payout", v.id, holder))
            elif equity >= 0:
                edges.append(Edge(vi, hi, SENIOR, equity, "collateral", v.id, holder))
            else:
                owed = -equity
                nominal = owed
                for custodian, amount in delegated[(holder, v.id)]:
                    s = min(owed, amount)
                    if s <= 0:
                        continue
                    f = _freeze(scn, custodian, v.id)
                    pot = pots[(custodian, holder)]
                    edges.append(Edge(pot["index"], vi, SENIOR, s * (1 - f), "settlement", v.id, holder))
                    pot_settle[(custodian, holder)] += s * (1 - f)
                    info["frozen"] += s * f
                    if f > 0:
                        frozen_edges.append(
                            {
                                "debtor": names[pot["index"]],
                                "creditor": v.id,
                                "kind": "frozen",
                                "layer": SENIOR,
                                "amount": s * f,
                                "paid": 0.0,
                                "venue": v.id,
                            }
                        )
                    owed -= s
                if owed > 0:
                    cap = caps.get((holder, v.id))
                    due = owed if cap is None else min(owed, cap)
                    edges.append(Edge(hi, vi, ordinary, due, "margin", v.id, holder))
                info["named_owed"].append((holder, nominal))
        if v.adl_rule == "queue":
            queue.sort(key=lambda q: (-q[0], q[1]))
            # first in the queue = most junior layer; the unlisted rest is deleveraged last
            for rank, (_, holder, pnl) in enumerate(queue):
                edges.append(Edge(vi, idx[holder], ordinary - rank, pnl, "payout", v.id, holder))
            edges.append(Edge(vi, None, ordinary - len(queue), (1 - x) * rest_profit, "rest", v.id, "rest"))
        else:
            edges.append(Edge(vi, None, ordinary, (1 - x) * rest_profit, "rest", v.id, "rest"))
        edges.append(Edge(vi, None, CAPITAL, capital, "capital", v.id, "owners"))
        venue_info[v.id] = info

    for (custodian, client), pot in pots.items():
        pi = pot["index"]
        e[pi] = pot["held"]
        dlayer[pi] = SENIOR
        costs[pi] = False
        residual = max(0.0, pot["held"] - pot_settle[(custodian, client)])
        edges.append(Edge(pi, idx[client], ordinary, residual, "residual", None, client))
        pot["ratio"] = (
            pot["delegated"] / pot["held"] if pot["held"] > 0 else (float("inf") if pot["delegated"] else 0.0)
        )
    for i, k in enumerate(kinds):
        if k == "custodian":
            costs[i] = False
    return Built(names, kinds, e, edges, layers, dlayer, costs, venue_info, pots, accounts, prices, frozen_edges)


@dataclass
class StressResult:
    scenario: str
    names: list[str]
    kinds: list[str]
    clearing: Clearing
    built: Built
    defaults: list[dict]
    venues: list[dict]
    custody: list[dict]
    fire_sale: dict
    losses: list[dict]
    edges: list[dict]
    liquidity: list[dict] = field(default_factory=list)
    diagnostics: dict = field(default_factory=dict)

    @property
    def payments(self) -> dict[str, float]:
        return {nm: float(p) for nm, p in zip(self.names, self.clearing.payments)}

    def summary(self) -> dict:
        return {
            "defaults": len(self.defaults),
            "venue_defaults": sum(v["defaulted"] for v in self.venues),
            "max_haircut": max((v["haircut"] for v in self.venues), default=0.0),
            "shortfall": sum(v["shortfall"] for v in self.venues),
        }


def _liquidity_caps(scn: Scenario, b: Built, c: Clearing, caps: dict) -> tuple[dict, list[dict]]:
    """Margin due at each deadline against what the trader can reach by then."""
    new = dict(caps)
    events = []
    delegations = _delegations(scn)
    incoming: dict[str, list[tuple[float, float, str | None, str | None]]] = defaultdict(list)
    for edge in b.edges:
        if edge.creditor is None or edge.kind not in ("payout", "residual"):  # profits, not posted margin
            continue
        creditor = b.names[edge.creditor]
        amount = b.paid(c, edge)
        if edge.kind == "residual":  # what is left in the trader's own custody pot
            custodian = b.names[edge.debtor].split("/")[0]
            incoming[creditor].append((_lag(scn, custodian, "*"), amount, custodian, None))
        else:  # venue payouts settle through the custodian when delegated
            via = delegations.get((creditor, edge.venue))
            custodian = via[0][0] if via else None
            incoming[creditor].append((_lag(scn, custodian, edge.venue), amount, custodian, edge.venue))
    used: dict[str, float] = defaultdict(float)
    for dl in sorted(scn.deadlines, key=lambda d: d.t_h):
        for (holder, venue), _acc in b.accounts.items():
            if venue != dl.venue:
                continue
            due = next(
                (ed.amount for ed in b.edges if ed.kind == "margin" and ed.venue == venue and ed.account == holder), 0.0
            )
            if due <= 0:
                continue
            reach = scn.node(holder).external_assets
            for item in incoming[holder]:
                lag, amount, custodian, via_venue = item
                if lag > dl.t_h:
                    continue
                if custodian is not None:
                    amount *= 1 - _freeze(scn, custodian, via_venue, dl.t_h)
                reach += amount
            avail = max(0.0, reach - used[holder])
            if avail + 1e-9 < due:
                new[(holder, venue)] = min(avail, caps.get((holder, venue), float("inf")))
                events.append({"node": holder, "venue": venue, "t_h": dl.t_h, "due": due, "reachable": avail})
                used[holder] += avail
            else:
                used[holder] += due
    return new, events


def _delegations(scn: Scenario) -> dict[tuple[str, str], list[tuple[str, float]]]:
    out: dict[tuple[str, str], list[tuple[str, float]]] = defaultdict(list)
    for d in scn.delegations:
        out[(d.client, d.venue)].append((d.custodian, d.amount))
    return out


def run(scn: Scenario, *, insurance_scale: float = 1.0, max_outer: int = 50) -> StressResult:
    """Clear the scenario: liquidity pass to a fixed point inside a fire-sale loop."""
    alpha, beta = (scn.alpha, scn.beta) if scn.kind == "rogers_veraart" else (1.0, 1.0)
    factor = {a.id: 1.0 for a in scn.assets}
    first: dict[str, tuple[int, str, int]] = {}  # node -> (round, cause, outer step)
    liquidity_events: list[dict] = []
    states: list[frozenset] = []
    history = []
    direction: dict[str, float] = {}
    oscillation = False
    base = 0
    outer = 0
    fire_rounds = 0
    while True:
        caps: dict = {}
        for _ in range(max_outer):
            b = build(scn, price_factor=factor, insurance_scale=insurance_scale, caps=caps)
            c = b.clear(alpha, beta)
            base = _record(first, b, c, base, outer, fire_rounds, caps)
            outer += 1
            new_caps, events = _liquidity_caps(scn, b, c, caps)
            if new_caps == caps:
                break
            for ev in events:
                if ev["node"] not in first or first[ev["node"]][1] != "liquidity":
                    liquidity_events.append(ev)
            # liquidity defaults enter in deadline order, one round per deadline time
            times = sorted({ev["t_h"] for ev in events if ev["node"] not in first})
            for ev in sorted(events, key=lambda ev: ev["t_h"]):
                if ev["node"] not in first:
                    first[ev["node"]] = (base + 1 + times.index(ev["t_h"]), "liquidity", outer)
            base += len(times)
            caps = new_caps
        state = frozenset(nm for nm, d in zip(b.names, c.defaulted) if d) | frozenset(h for h, _ in caps)
        history.append({"round": fire_rounds, "prices": dict(b.prices), "defaults": sorted(state)})
        if not scn.fire_sale or fire_rounds >= scn.fire_sale_rounds:
            break
        sold: dict[str, float] = defaultdict(float)
        liquidated = {(h, v) for h, v in caps}
        for p in scn.positions:  # defaulted holders close everything, liquidated ones that venue's positions
            if (p.holder in state and p.holder not in {h for h, _ in caps}) or (p.holder, p.venue) in liquidated:
                sold[p.asset] += p.qty * b.prices[p.asset]
        new_factor = dict(factor)
        for a in scn.assets:
            f = float(np.exp(-a.impact * sold.get(a.id, 0.0))) if a.impact else 1.0
            if a.id not in direction and f != factor[a.id]:
                direction[a.id] = np.sign(f - 1.0)
            if a.id in direction:  # monotone in the direction of the first impact, price floor
                f = min(f, factor[a.id]) if direction[a.id] < 0 else max(f, factor[a.id])
            new_factor[a.id] = max(f, 1e-6)
        if states and state != states[-1] and state in states:
            oscillation = True
        states.append(state)
        if all(abs(new_factor[k] - factor[k]) <= 1e-12 * max(1.0, factor[k]) for k in factor) and (
            len(states) > 1 and states[-1] == states[-2]
        ):
            break
        if all(abs(new_factor[k] - factor[k]) <= 1e-12 for k in factor):
            break
        factor = new_factor
        fire_rounds += 1
    return _result(
        scn,
        b,
        c,
        first,
        caps,
        liquidity_events,
        {
            "rounds": fire_rounds,
            "history": history,
            "oscillation": oscillation,
            "price_factor": factor,
            "enabled": scn.fire_sale,
        },
    )


def _record(first, b: Built, c: Clearing, base: int, outer: int, fire_round: int, caps) -> int:
    new = [(int(c.default_round[i]), nm) for i, nm in enumerate(b.names) if c.defaulted[i] and nm not in first]
    if not new:
        return base
    lo = min(r for r, _ in new)
    top = base
    for r, nm in new:
        i = b.index(nm)
        cause = "fire_sale" if fire_round else ("solvency" if r == 1 and outer == 0 else "cascade")
        if b.kinds[i] in VENUE_KINDS and b.venue_info[nm]["frozen"] > 0 and outer == 0:
            cause = "freeze"
        if b.kinds[i] == "pot":
            cause = "custody"
        rnd = base + 1 + (r - lo)
        first[nm] = (rnd, cause, outer)
        top = max(top, rnd)
    return top


def _critical_share(shortfall: float, capital: float, profit: float) -> float | None:
    """x* = 1 - (S - K) / Pi: the exempt share above which the venue defaults (None: no share in [0, 1] does)."""
    if profit <= 0:
        return None
    x = 1 - (shortfall - capital) / profit
    return x if 0 <= x < 1 else (0.0 if x < 0 else None)


def _result(scn, b: Built, c: Clearing, first, caps, liquidity_events, fire) -> StressResult:
    defaulted_now = {nm for nm, d in zip(b.names, c.defaulted) if d} | {h for h, _ in caps}
    defaults = []
    for nm in sorted(defaulted_now, key=lambda k: (first.get(k, (10**9,))[0], k)):
        rnd, cause, outer = first.get(nm, (0, "cascade", 0))
        i = b.index(nm)
        defaults.append(
            {
                "node": nm,
                "kind": b.kinds[i],
                "round": rnd,
                "cause": cause,
                "outer_step": outer,
                "equity": float(c.equity[i]),
                "recovery": float(c.recovery[i]),
                "venues": sorted(v for h, v in caps if h == nm),
            }
        )
    venues = []
    for name, info in b.venue_info.items():
        vi = b.index(name)
        owed_to = [ed for ed in b.edges if ed.creditor == vi and ed.kind in ("settlement", "margin", "liability")]
        received = sum(b.paid(c, ed) for ed in owed_to)
        nominal = sum(o for _, o in info["named_owed"]) + sum(ed.amount for ed in owed_to if ed.kind == "liability")
        bad_debt = info["bad_debt_rest"] + max(0.0, nominal - received)
        used = min(info["insurance_fund"], bad_debt)
        shortfall = bad_debt - used
        junior = [ed for ed in b.edges if ed.debtor == vi and ed.layer > CAPITAL and ed.amount > 0]
        owed_j = sum(ed.amount for ed in junior)
        paid_j = sum(b.paid(c, ed) for ed in junior)
        haircut = 0.0 if owed_j <= 0 else max(0.0, 1.0 - paid_j / owed_j)
        base_j = info["profit_junior"]
        total_profit = base_j + info["profit_exempt"]
        residual = max(0.0, shortfall - base_j)
        venues.append(
            {
                "venue": name,
                "kind": info["kind"],
                "bad_debt": bad_debt,
                "insurance_fund": info["insurance_fund"],
                "insurance_used": used,
                "shortfall": shortfall,
                "profit_base": base_j,
                "haircut": haircut,
                "residual": residual,
                "capital": info["capital"],
                "capital_used": min(info["capital"], residual),
                "defaulted": bool(c.defaulted[vi]),
                "frozen_settlement": info["frozen"],
                "exempt_profit": info["profit_exempt"],
                "exempt_transfer": haircut * info["profit_exempt"],
                "exempt_share": info["profit_exempt"] / total_profit if total_profit > 0 else 0.0,
                "critical_exempt_share": _critical_share(shortfall, info["capital"], total_profit),
                "coverage_ratio": info["insurance_fund"] / bad_debt if bad_debt > 0 else None,
                "adl_rule": info["adl_rule"],
            }
        )
    custody = []
    for (custodian, client), pot in b.pots.items():
        pi = pot["index"]
        custody.append(
            {
                "custodian": custodian,
                "client": client,
                "held": pot["held"],
                "delegated": pot["delegated"],
                "commitment_ratio": pot["ratio"],
                "violation": pot["delegated"] > pot["held"] + 1e-9,
                "recovery": float(c.recovery[pi]),
                "frozen": _freeze(scn, custodian, None) > 0,
            }
        )
    losses = []
    for i, nm in enumerate(b.names):
        claims = [ed for ed in b.edges if ed.creditor == i and ed.amount > 0]
        owed_in = sum(ed.amount for ed in claims)
        got = sum(b.paid(c, ed) for ed in claims)
        losses.append(
            {
                "node": nm,
                "kind": b.kinds[i],
                "claims": owed_in,
                "received": got,
                "loss": owed_in - got,
                "obligations": float(c.obligations[i]),
                "paid": float(c.payments[i]),
                "equity": float(c.equity[i]),
            }
        )
    edges = [
        {
            "debtor": b.names[ed.debtor],
            "creditor": "external" if ed.creditor is None else b.names[ed.creditor],
            "kind": ed.kind,
            "layer": ed.layer,
            "amount": ed.amount,
            "paid": b.paid(c, ed),
            "venue": ed.venue,
        }
        for ed in b.edges
        if ed.amount > 0
    ] + list(b.frozen)
    return StressResult(
        scn.name, b.names, b.kinds, c, b, defaults, venues, custody, fire, losses, edges, liquidity_events
    )


def run_network(scn: Scenario) -> StressResult:
    """A plain interbank network (the minimal scenario form): one clearing, no perp layer."""
    names = [n.id for n in scn.nodes]
    idx = {k: i for i, k in enumerate(names)}
    n = len(names)
    rows, cols, vals = [], [], []
    for li in scn.liabilities:
        rows.append(idx[li.debtor])
        cols.append(idx[li.creditor])
        vals.append(li.amount)
    L = sp.csr_matrix((vals, (rows, cols)), shape=(n, n))
    e = np.array([nd.external_assets for nd in scn.nodes])
    el = np.array([nd.external_liabilities for nd in scn.nodes])
    alpha, beta = (scn.alpha, scn.beta) if scn.kind == "rogers_veraart" else (1.0, 1.0)
    c = clear(
        L,
        e,
        alpha=alpha,
        beta=beta,
        external_liabilities=el if el.any() else None,
        external_seniority=scn.external_seniority,
    )
    cause = lambda r: "solvency" if r == 1 else "cascade"  # noqa: E731
    defaults = [
        {
            "node": names[i],
            "kind": scn.nodes[i].kind,
            "round": int(c.default_round[i]),
            "cause": cause(int(c.default_round[i])),
            "outer_step": 0,
            "equity": float(c.equity[i]),
            "recovery": float(c.recovery[i]),
            "venues": [],
        }
        for i in sorted(np.nonzero(c.defaulted)[0], key=lambda i: (c.default_round[i], names[i]))
    ]
    recv_matrix = (sp.diags(np.divide(c.payments, c.obligations, out=np.ones(n), where=c.obligations > 0)) @ L).tocsr()
    claims = np.asarray(L.sum(axis=0)).ravel()
    got = np.asarray(recv_matrix.sum(axis=0)).ravel()
    losses = [
        {
            "node": names[i],
            "kind": scn.nodes[i].kind,
            "claims": float(claims[i]),
            "received": float(got[i]),
            "loss": float(claims[i] - got[i]),
            "obligations": float(c.obligations[i]),
            "paid": float(c.payments[i]),
            "equity": float(c.equity[i]),
        }
        for i in range(n)
    ]
    coo = L.tocoo()
    edges = [
        {
            "debtor": names[i],
            "creditor": names[j],
            "kind": "liability",
            "layer": 0,
            "amount": float(a),
            "paid": float(recv_matrix[i, j]),
            "venue": None,
        }
        for i, j, a in zip(coo.row, coo.col, coo.data)
    ]
    built = Built(names, [nd.kind for nd in scn.nodes], e, [], 1, np.zeros(n, int), np.ones(n, bool), {}, {}, {}, {})
    return StressResult(
        scn.name,
        names,
        built.kinds,
        c,
        built,
        defaults,
        [],
        [],
        {"rounds": 0, "history": [], "oscillation": False, "price_factor": {}, "enabled": False},
        losses,
        edges,
        diagnostics=_diagnostics(names, L, e, el),
    )


def _diagnostics(names: list[str], L: sp.csr_matrix, e: np.ndarray, el: np.ndarray) -> dict:
    """Threshold cascade and DebtRank next to the clearing: Furfine with zero recovery (losses overstated
    against Eisenberg-Noe) and linear DebtRank started from the nodes insolvent before any contagion
    (their own buffers do not matter once at h = 1; weights = total assets)."""
    f = furfine(L, e, external_liabilities=el)
    A = L.T.toarray() if L.shape[0] <= 2000 else None
    out = {
        "furfine": [
            {"node": names[i], "round": int(f.default_round[i])}
            for i in sorted(np.nonzero(f.defaulted)[0], key=lambda i: (f.default_round[i], names[i]))
        ]
    }
    if A is not None:
        worth = f.net_worth
        shock = (worth < 0).astype(float)
        weights = e + A.sum(axis=1)
        if shock.any() and weights.sum() > 0:
            dr = debtrank.linear(A, np.where(worth > 0, worth, 1.0), weights, shock)
            out["debtrank_linear"] = {
                "initial": [names[i] for i in np.nonzero(shock)[0]],
                "additional": dr.additional,
                "extra_defaults": dr.extra_defaults,
                "h": {nm: float(h) for nm, h in zip(names, dr.h)},
            }
    return out


def stress(scn: Scenario, *, insurance_scale: float = 1.0) -> StressResult:
    """Run a scenario: the plain network solver for the minimal form, the perp layer otherwise."""
    if scn.lake_refs:
        ref = scn.lake_refs[0]
        raise ScenarioError(
            f"{ref.field}.from_lake: {ref.ref!r} is not resolved (run it through `liqf stress`, which reads the lake)"
        )
    if scn.is_network_only and insurance_scale == 1.0:
        return run_network(scn)
    return run(scn, insurance_scale=insurance_scale)
