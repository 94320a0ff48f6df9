"""The contagion core: the golden examples of contagion.md §3 (to 1e-9) and properties on random
networks checked against independent computations written here (LP with scipy's HiGHS, Picard
iteration, a dense Rogers-Veraart greatest-clearing-vector loop)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import linprog

from forensics.contagion import debtrank
from forensics.contagion.cascades import furfine, gai_kapadia, gk_vulnerable
from forensics.contagion.clearing import clear, clear_layers, edge_payments, regularity_violations
from forensics.contagion.model import Asset, Exemption, Node, Position, Scenario
from forensics.contagion.perp import stress

TOL = 1e-9


# --- §3 golden examples -----------------------------------------------------------------------------


def test_eisenberg_noe_three_nodes():
    """Ex. 1 (NetworkValuation Example.html): p = (270/11, 290/11, 10); node 1 then node 2 default."""
    r = clear([[0, 20, 10], [5, 0, 24], [10, 0, 0]], [10, 10, 10])
    assert np.allclose(r.payments, [270 / 11, 290 / 11, 10], atol=TOL, rtol=0)
    assert r.default_round.tolist() == [1, 2, 0]
    assert np.allclose(r.equity, [-5.454545454545, -2.636363636364, 30], atol=1e-9)
    before = np.array([10, 10, 10]) + np.array([15, 20, 34]) - np.array([30, 29, 10])
    assert before.tolist() == [-5, 1, 34]


def _systemicrisk():
    L = np.full((3, 3), 0.5)
    np.fill_diagonal(L, 0)
    return L, np.array([1 / 2, 5 / 8, 3 / 4]), np.array([3 / 2, 1 / 2, 1 / 2])


def test_systemicrisk_pro_rata_and_senior_external_liabilities():
    """Ex. 2: pro-rata external debt p = (165/112, 159/112, 3/2), rounds {1},{2};
    senior: all default, p = (0, 1/3, 5/12)."""
    L, ea, el = _systemicrisk()
    r = clear(L, ea, external_liabilities=el)
    assert np.allclose(r.payments, [165 / 112, 159 / 112, 3 / 2], atol=TOL, rtol=0)
    assert r.default_round.tolist() == [1, 2, 0]
    s = clear(L, ea, external_liabilities=el, external_seniority="senior")
    assert np.allclose(s.layer_payments[1], [0, 1 / 3, 5 / 12], atol=TOL, rtol=0)
    assert s.defaulted.all()


def test_furfine_cascade_kills_all_three():
    """Ex. 2, Furfine with zero recovery: all default, rounds {1}, {2, 3}."""
    L, ea, el = _systemicrisk()
    assert furfine(L, ea, external_liabilities=el).default_round.tolist() == [1, 2, 2]
    assert gai_kapadia(L, ea, deposits=el).default_round.tolist() == [1, 2, 2]


def test_rogers_veraart_on_the_systemicrisk_network():
    """Ex. 3: alpha = 0.5, beta = 0.7 -> Lambda ~ (0.502020, 0.514705, 0.565381), all default, rounds {1},{2,3}.
    The 6-digit published values are checked to 5e-7; the exact GCV is checked against an independent solve."""
    L, ea, el = _systemicrisk()
    r = clear(L, ea, external_liabilities=el, alpha=0.5, beta=0.7)
    assert np.allclose(r.payments, [0.502020, 0.514705, 0.565381], atol=5e-7, rtol=0)
    assert r.default_round.tolist() == [1, 2, 2]
    pbar = L.sum(1) + el
    pi = L / pbar[:, None]
    exact = np.linalg.solve(np.eye(3) - 0.7 * pi.T, 0.5 * ea)  # all in default: p = alpha e + beta Pi^T p
    assert np.allclose(r.payments, exact, atol=TOL, rtol=0)


def test_rogers_veraart_example_3_3_both_solvent():
    r = clear([[0, 2], [2.2, 0]], [1, 1], alpha=0.5, beta=0.5)
    assert np.allclose(r.payments, [2, 2.2], atol=TOL, rtol=0) and not r.defaulted.any()


def _ring(a=2.0, eps=1.0, gamma=0.4):
    L = np.zeros((6, 6))
    for i in range(6):
        L[i, (i + 1) % 6] = a if i % 2 == 0 else a + eps
    e = np.array([gamma * (1 - eps) if i % 2 == 0 else gamma * (1 + eps) for i in range(6)])
    return L, e


def test_rogers_veraart_six_bank_ring():
    """Ex. 5: all insolvent, odd 4/15, even 8/15; banks 2,4,6 in round 1, 1,3,5 in round 2.
    EN: only 2,4,6, p = (2, 2.8, ...)."""
    L, e = _ring()
    alpha = beta = 0.5
    gamma, eps = 0.4, 1.0
    odd = alpha * gamma / (1 - beta**2) * ((1 - eps) + beta * (1 + eps))
    even = alpha * gamma / (1 - beta**2) * (beta * (1 - eps) + (1 + eps))
    assert odd == pytest.approx(4 / 15, abs=1e-15) and even == pytest.approx(8 / 15, abs=1e-15)
    r = clear(L, e, alpha=alpha, beta=beta)
    assert np.allclose(r.payments, [4 / 15, 8 / 15] * 3, atol=TOL, rtol=0)
    assert r.default_round.tolist() == [2, 1, 2, 1, 2, 1]
    en = clear(L, e)
    assert np.allclose(en.payments, [2, 2.8] * 3, atol=TOL, rtol=0)
    assert en.default_round.tolist() == [0, 1, 0, 1, 0, 1]


NRM = (np.array([[0, 1, 0], [10, 0, 3], [3, 2, 0]], float), [2, 5, 2], [10, 100, 30])


@pytest.mark.parametrize(
    "shock, additional, extra", [([1, 0, 0], 0.9285714, 2), ([0, 1, 0], 0.25, 1), ([0, 0, 1], 0.6642857, 0)]
)
def test_debtrank_original_default_of_each_node(shock, additional, extra):
    """Ex. 7 (NetworkRiskMeasures README): additional stress to the published 7 digits, extra defaults."""
    r = debtrank.original(*NRM, shock)
    assert r.additional == pytest.approx(additional, abs=5e-8)
    assert r.extra_defaults == extra


def test_debtrank_original_ten_percent_shock():
    r = debtrank.original(*NRM, [0.1, 0.1, 0.1])
    assert np.allclose(r.h, [0.15, 0.26, 0.30], atol=TOL, rtol=0)
    assert r.additional == pytest.approx(22.5 / 140, abs=TOL) and r.additional == pytest.approx(0.1607, abs=5e-5)
    assert r.extra_defaults == 0


def test_debtrank_linear_and_nonlinear():
    """Ex. 8: shock c -> h = (0.5, 1, 1), additional 0.75, 1 default; 10% -> (0.6, 1, 1), 0.8714; lambda_max 1.387."""
    for fn in (debtrank.linear, debtrank.nonlinear):
        r = fn(*NRM, [0, 0, 1])
        assert np.allclose(r.h, [0.5, 1, 1], atol=TOL, rtol=0) and r.additional == pytest.approx(0.75, abs=TOL)
        assert r.extra_defaults == 1
        r = fn(*NRM, [0.1, 0.1, 0.1])
        assert np.allclose(r.h, [0.6, 1, 1], atol=TOL, rtol=0) and r.additional == pytest.approx(0.8714, abs=5e-5)
    assert debtrank.spectral_radius(NRM[0], NRM[1]) == pytest.approx(1.387, abs=5e-4)


def test_perp_waterfall_golden():
    """Ex. 10: D = 100, IF = 40, Pi = 300, x = 0.2 -> S = 60, h = 0.25 (0.20 without exemption);
    insolvent iff x > 0.8."""

    def venue(x, capital=0.0):
        scn = Scenario(
            "w",
            nodes=[
                Node(
                    "v", kind="venue", insurance_fund=40, bad_debt=100, profit_base=300, exempt_share=x, capital=capital
                )
            ],
        )
        return stress(scn).venues[0]

    v = venue(0.2)
    assert v["shortfall"] == pytest.approx(60, abs=TOL) and v["haircut"] == pytest.approx(0.25, abs=TOL)
    assert v["exempt_transfer"] == pytest.approx(0.25 * 60, abs=TOL)
    assert venue(0.0)["haircut"] == pytest.approx(0.20, abs=TOL)
    assert venue(0.0)["critical_exempt_share"] == pytest.approx(0.8, abs=TOL)
    for x in np.linspace(0, 0.975, 40):
        v = venue(float(x))
        assert v["defaulted"] == (x > 0.8 + 1e-12), x
        assert v["haircut"] == pytest.approx(min(1.0, 60 / ((1 - x) * 300)), abs=TOL)
    # venue capital absorbs the residual before the venue defaults: R = S - (1 - x) Pi <= K
    assert not venue(0.85, capital=15.0 + 1e-6)["defaulted"] and venue(0.85, capital=15.0 - 1e-6)["defaulted"]


def test_exempt_named_account_is_senior_and_queue_goes_deeper():
    """A named exempt winner is paid in full; a queue venue haircuts the first in line before the next."""

    def scn(rule, exempt, capital=0.0):
        nodes = [
            Node("v", kind="venue", insurance_fund=0, bad_debt=30, profit_base=0, adl_rule=rule, capital=capital),
            Node("a", kind="trader"),
            Node("b", kind="trader"),
            Node("c", kind="trader"),
        ]
        pos = [
            Position("a", "v", "X", 1, 100, collateral=10),
            Position("b", "v", "X", 1, 100, collateral=20),
            Position("c", "v", "X", -2, 100, collateral=200),
        ]
        s = Scenario(
            "q",
            nodes=nodes,
            assets=[Asset("X", 100, 0.2)],
            positions=pos,
            exemptions=[Exemption("v", "a")] if exempt else [],
        )
        r = stress(s)
        paid = {"a": 0.0, "b": 0.0}
        for e in r.edges:
            if e["debtor"] == "v" and e["creditor"] in paid:
                paid[e["creditor"]] += e["paid"]
        return paid, r

    paid, r = scn("pro_rata", exempt=False)
    # winners a, b each +20 profit; bad debt 30 of 40 -> h = 0.75 pro rata
    assert r.venues[0]["haircut"] == pytest.approx(0.75, abs=TOL)
    assert paid["a"] == pytest.approx(10 + 5, abs=TOL) and paid["b"] == pytest.approx(20 + 5, abs=TOL)
    paid, r = scn("pro_rata", exempt=True, capital=10.0)
    assert paid["a"] == pytest.approx(30, abs=TOL)  # exempt: collateral + full profit
    v = r.venues[0]
    assert v["haircut"] == pytest.approx(1.0, abs=TOL) and v["residual"] == pytest.approx(10, abs=TOL)
    assert v["capital_used"] == pytest.approx(10, abs=TOL) and not v["defaulted"]
    paid, r = scn("pro_rata", exempt=True)  # no capital: the venue defaults, exempt claims pro rata
    assert r.venues[0]["defaulted"] and paid["a"] == pytest.approx(30 * 20 / 21, abs=TOL)
    paid, r = scn("queue", exempt=False)
    # queue by profit ratio: a (20/10) first loses all 20, then b loses 10 of 20
    assert paid["a"] == pytest.approx(10, abs=TOL) and paid["b"] == pytest.approx(30, abs=TOL)
    assert r.venues[0]["haircut"] == pytest.approx(0.75, abs=TOL)


# --- independent computations -----------------------------------------------------------------------------


def random_network(rng, n, density=None, scale=10.0):
    density = density if density is not None else min(1.0, 4.0 / n)
    L = (rng.random((n, n)) < density) * rng.uniform(0, scale, (n, n))
    np.fill_diagonal(L, 0)
    e = rng.uniform(0, scale, n) * (rng.random(n) < 0.8)
    return L, e


def lp_clearing(L, e):
    """EN greatest clearing vector as an LP: max sum p s.t. p <= p-bar, p - Pi^T p <= e, p >= 0."""
    pbar = L.sum(1)
    pi = np.divide(L, pbar[:, None], out=np.zeros_like(L), where=pbar[:, None] > 0)
    n = len(e)
    res = linprog(-np.ones(n), A_ub=np.eye(n) - pi.T, b_ub=e, bounds=list(zip(np.zeros(n), pbar)), method="highs")
    assert res.status == 0
    return res.x


def picard(L, e, alpha=1.0, beta=1.0, iters=200_000, tol=1e-13):
    pbar = L.sum(1)
    pi = np.divide(L, pbar[:, None], out=np.zeros_like(L), where=pbar[:, None] > 0)
    p = pbar.copy()
    for _ in range(iters):
        recv = pi.T @ p
        nxt = np.where(e + recv >= pbar, pbar, np.maximum(0, alpha * e + beta * recv))
        if np.max(np.abs(nxt - p)) < tol:
            return nxt
        p = nxt
    return p


@pytest.mark.parametrize("seed", range(12))
def test_fictitious_default_equals_lp_and_picard(seed):
    rng = np.random.default_rng(seed)
    L, e = random_network(rng, int(rng.integers(3, 60)))
    r = clear(L, e)
    assert np.allclose(r.payments, lp_clearing(L, e), atol=1e-7, rtol=0)
    assert np.allclose(r.payments, picard(L, e), atol=1e-8, rtol=0)
    # the default set is exactly where payments fall short
    assert np.array_equal(r.defaulted, r.payments < L.sum(1) - 1e-9)


@pytest.mark.parametrize("seed", range(8))
def test_payments_conserved_and_en_equals_rv_one_one(seed):
    rng = np.random.default_rng(100 + seed)
    L, e = random_network(rng, int(rng.integers(5, 80)))
    el = rng.uniform(0, 3, len(e))
    r = clear(L, e, external_liabilities=el)
    # everything paid is received by a node or by external creditors (pro rata with p-bar)
    pbar = L.sum(1) + el
    to_external = np.divide(r.payments * el, pbar, out=np.zeros_like(el), where=pbar > 0)
    assert r.payments.sum() == pytest.approx(r.received.sum() + to_external.sum(), rel=1e-12, abs=1e-9)
    paid = edge_payments(L, r)
    assert np.allclose(np.asarray(paid.sum(axis=0)).ravel(), r.received, atol=1e-9)
    rv = clear(L, e, external_liabilities=el, alpha=1.0, beta=1.0)
    assert np.array_equal(rv.payments, r.payments) and np.array_equal(rv.default_round, r.default_round)


def rv_greatest_dense(L, e, alpha, beta):
    """Rogers-Veraart GA written independently: grow the insolvent set, solve p_D densely each time."""
    pbar = L.sum(1)
    pi = np.divide(L, pbar[:, None], out=np.zeros_like(L), where=pbar[:, None] > 0)
    n = len(e)
    D = np.zeros(n, bool)
    p = pbar.copy()
    while True:
        newD = e + pi.T @ p < pbar - 1e-12
        if np.array_equal(newD, D):
            return p, D
        D = newD
        N = ~D
        A = np.eye(D.sum()) - beta * pi.T[np.ix_(D, D)]
        p = pbar.copy()
        p[D] = np.linalg.solve(A, alpha * e[D] + beta * pi.T[np.ix_(D, N)] @ pbar[N])


@pytest.mark.parametrize("seed", range(8))
def test_rogers_veraart_matches_an_independent_ga(seed):
    rng = np.random.default_rng(200 + seed)
    L, e = random_network(rng, int(rng.integers(4, 50)))
    alpha, beta = rng.uniform(0.2, 1.0, 2)
    r = clear(L, e, alpha=alpha, beta=beta)
    p, D = rv_greatest_dense(L, e, alpha, beta)
    assert np.allclose(r.payments, p, atol=1e-9) and np.array_equal(r.defaulted, D)


def test_furfine_zero_recovery_is_rv_zero_zero_on_default_sets():
    """Furfine (R = 0) and RV(0, 0) agree on who defaults when initial defaults are the same."""
    for seed in range(10):
        rng = np.random.default_rng(300 + seed)
        L, e = random_network(rng, 25, density=0.2)
        f = furfine(L, e)
        r = clear(L, e, alpha=0.0, beta=0.0)
        assert np.array_equal(f.defaulted, r.defaulted), seed


def test_linear_debtrank_closed_form_when_stable():
    """lambda_max < 1 and no saturation: h(inf) = (I - Lambda)^-1 h(1); non-linear(alpha = 0) = linear."""
    rng = np.random.default_rng(7)
    A = rng.uniform(0, 1, (8, 8)) * (rng.random((8, 8)) < 0.5)
    np.fill_diagonal(A, 0)
    E = A.sum(1) * 4 + 1
    h1 = rng.uniform(0, 0.05, 8)
    assert debtrank.spectral_radius(A, E) < 1
    lin = debtrank.linear(A, E, np.ones(8), h1)
    closed = np.linalg.solve(np.eye(8) - A / E[:, None], h1)
    assert closed.max() < 1 and np.allclose(lin.h, closed, atol=1e-12)
    assert np.allclose(debtrank.nonlinear(A, E, np.ones(8), h1).h, lin.h, atol=1e-12)
    with pytest.raises(ValueError, match="positive initial equity"):
        debtrank.original(A, np.r_[E[:-1], 0], np.ones(8), h1)


def test_seniority_layers_pay_senior_first():
    """Two layers: a node pays its senior creditor in full before the junior one."""
    senior = sp.csr_matrix(([6.0], ([0], [1])), shape=(3, 3))
    junior = sp.csr_matrix(([6.0], ([0], [2])), shape=(3, 3))
    r = clear_layers([senior, junior], [8.0, 0.0, 0.0])
    assert r.layer_payments[0][0] == pytest.approx(6) and r.layer_payments[1][0] == pytest.approx(2)
    assert r.default_round[0] == 1
    r = clear_layers([senior, junior], [8.0, 0.0, 0.0], default_layer=[0, 1, 1])
    assert r.default_round[0] == 0  # a junior shortfall only: not a default at layer 0


def test_gai_kapadia_vulnerability_and_regularity():
    L = np.array([[0, 5, 5], [5, 0, 5], [5, 5, 0]], float)
    assert gk_vulnerable(L, [4, 6, 11]).tolist() == [True, False, False]
    assert regularity_violations(np.array([[0, 1, 0], [1, 0, 0], [0, 0, 0]]), [0, 0, 1]) == [[0, 1]]
    assert regularity_violations(L, [1, 0, 0]) == []


def test_sparse_10k_network_clears():
    """A quick size check (the timed benchmark is bench/contagion.py)."""
    rng = np.random.default_rng(1)
    n = 10_000
    m = 5 * n
    i, j = rng.integers(0, n, m), rng.integers(0, n, m)
    keep = i != j
    L = sp.csr_matrix((rng.uniform(0, 10, keep.sum()), (i[keep], j[keep])), shape=(n, n))
    e = rng.uniform(0, 20, n) * (rng.random(n) < 0.7)
    r = clear(L, e)
    recv = edge_payments(L, r).sum(axis=0).A1
    fixed = np.minimum(r.obligations, np.maximum(0, e + recv))
    assert np.allclose(fixed, r.payments, atol=1e-7)
    assert r.defaulted.sum() > 100


# --- perp layer mechanics on hand-sized cases -----------------------------------------------------------

from forensics.contagion.model import Custody, Deadline, Delegation, Freeze  # noqa: E402


def _pot_case(freeze: float = 0.0, held: float = 100.0):
    """A client whose loss of 100 on each of two venues is settled from one pot at a custodian."""
    nodes = [
        Node("v1", kind="venue", profit_base=500),
        Node("v2", kind="venue", profit_base=500),
        Node("cust", kind="custodian"),
        Node("client", kind="issuer", external_assets=1.0),
    ]
    pos = [Position("client", "v1", "X", -1, 100), Position("client", "v2", "X", -1, 100)]
    return Scenario(
        "pot",
        nodes=nodes,
        assets=[Asset("X", 100, 1.0)],
        positions=pos,
        custody=[Custody("client", "cust", held)],
        delegations=[Delegation("cust", "client", "v1", 100), Delegation("cust", "client", "v2", 100)],
        freezes=[Freeze("cust", ("v1",), freeze)] if freeze else [],
    )


def test_custody_pot_committed_twice_recovers_one_over_rho():
    r = stress(_pot_case())
    pot = r.custody[0]
    assert pot["commitment_ratio"] == pytest.approx(2.0) and pot["violation"]
    assert pot["recovery"] == pytest.approx(0.5, abs=TOL)
    for v in r.venues:
        assert v["bad_debt"] == pytest.approx(50, abs=TOL)
    assert [d["cause"] for d in r.defaults if d["node"] == "cust/client"] == ["custody"]
    ok = stress(_pot_case(held=200.0))
    assert not ok.custody[0]["violation"] and ok.custody[0]["recovery"] == pytest.approx(1.0)
    assert all(v["bad_debt"] == pytest.approx(0, abs=TOL) for v in ok.venues) and not ok.defaults


@pytest.mark.parametrize("fraction", [0.25, 1.0])
def test_freeze_leaves_the_unsettled_loss_with_the_venue(fraction):
    r = stress(_pot_case(freeze=fraction, held=200.0))
    v1 = next(v for v in r.venues if v["venue"] == "v1")
    assert v1["frozen_settlement"] == pytest.approx(100 * fraction, abs=TOL)
    assert v1["bad_debt"] == pytest.approx(100 * fraction, abs=TOL)
    # no insurance fund: all on winners; base = 500 unlisted + the counterparty side of the client's 100 loss
    assert v1["haircut"] == pytest.approx(100 * fraction / 600, abs=TOL)
    assert "client" not in {d["node"] for d in r.defaults}  # the client owes nothing more


def _liquidity_case(deadline_h: float, lag_h: float = 2.0, freeze: float = 0.0):
    """Solvent trader: +50 on venue A (profit reachable after lag_h), owes 30 on venue B at deadline_h, cash 10."""
    nodes = [
        Node("A", kind="venue", profit_base=100, settlement_lag_h={"*": lag_h}),
        Node("B", kind="venue", profit_base=100, insurance_fund=5),
        Node("t", kind="trader", external_assets=10),
    ]
    pos = [Position("t", "A", "X", 1, 100, collateral=20), Position("t", "B", "X", -1, 100, collateral=20)]
    return Scenario(
        "liq", nodes=nodes, assets=[Asset("X", 100, 0.5)], positions=pos, deadlines=[Deadline("B", deadline_h)]
    )


def test_liquidity_default_when_profits_are_not_reachable_in_time():
    early = stress(_liquidity_case(1.0))
    d = {x["node"]: x for x in early.defaults}
    assert d["t"]["cause"] == "liquidity" and d["t"]["venues"] == ["B"]
    ev = early.liquidity[0]
    assert ev["due"] == pytest.approx(30) and ev["reachable"] == pytest.approx(10)
    b = next(v for v in early.venues if v["venue"] == "B")
    assert b["bad_debt"] == pytest.approx(20, abs=TOL) and b["insurance_used"] == pytest.approx(5, abs=TOL)
    assert b["haircut"] == pytest.approx(15 / 150, abs=TOL)  # base: 100 unlisted + the counterparty side 50
    late = stress(_liquidity_case(3.0))
    assert not late.defaults and all(v["bad_debt"] == pytest.approx(0, abs=TOL) for v in late.venues)


def test_fire_sale_moves_prices_against_the_liquidated_and_converges():
    scn = _liquidity_case(1.0)
    scn.fire_sale = True
    scn.assets[0].impact = 1e-4
    r = stress(scn)
    # the liquidated short on B is bought back: the price rises further
    assert r.fire_sale["rounds"] >= 1 and r.fire_sale["price_factor"]["X"] > 1.0
    assert not r.fire_sale["oscillation"]
    factors = [h["prices"]["X"] for h in r.fire_sale["history"]]
    assert factors == sorted(factors)  # monotone
    assert r.fire_sale["price_factor"]["X"] == pytest.approx(float(np.exp(1e-4 * 1 * r.built.prices["X"])), rel=1e-6)
