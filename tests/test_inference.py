"""Rule inference and the exemption test against planted ground truth (simulator truth pools)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats

from forensics import simulate
from forensics.exemption import exemption_test, inclusion_probabilities, poisson_binomial_cdf
from forensics.inference import StepArrays, conditional_logit, infer_rule, utilities
from forensics.rules import RULES, score_pools
from forensics.validation import truth_pools


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory):
    cache = {}

    def get(policy: str, exempt: int, scale: str = "tiny", seed: int = 11):
        key = (policy, exempt, scale, seed)
        if key not in cache:
            out = tmp_path_factory.mktemp(f"{policy}-{exempt}-{scale}")
            simulate.generate(out, scale=scale, policy=policy, exempt=exempt, seed=seed)
            cache[key] = truth_pools(out / "truth.json")
        return cache[key]

    return get


@pytest.mark.parametrize("policy", ["hl_index", "bitmex", "binance", "upnl", "contracts_pro_rata",
                                    "wealth_pro_rata", "random_cyclic"])
def test_true_rule_recovered_on_clean_scenarios(scenarios, policy):
    inf = infer_rule(scenarios(policy, 0))
    assert inf.best_rule == policy, inf.verdict


def test_lexicographic_reported_as_inseparable_from_leverage(scenarios):
    inf = infer_rule(scenarios("lexicographic", 0))
    assert inf.best_rule in {"leverage", "lexicographic"}
    assert "do not separate" in inf.verdict


def test_planted_exemptions_flagged_without_false_discoveries(scenarios):
    pools = scenarios("hl_index", 5, "small", 7)
    inf = infer_rule(pools)
    assert inf.best_rule == "hl_index"
    result = exemption_test(pools, "hl_index", draws=500)
    planted = set(pools.filter(pl.col("exempt"))["user"])
    flagged = set(result.flagged["user"])
    assert planted and flagged == planted
    # evidence: every flagged account was skipped while ranked above the lowest selected account
    for user in flagged:
        rows = result.evidence[user]
        assert rows and any(r["ranked_above_lowest_selected"] for r in rows)
    assert len(result.iterations) >= 1


def test_no_flags_when_nothing_planted(scenarios):
    pools = scenarios("bitmex", 0, "small", 7)
    result = exemption_test(pools, "bitmex", draws=300)
    assert result.flagged.height == 0
    # accounts that were never eligible are never in the table, so never flagged
    assert set(result.accounts["user"]) == set(pools["user"])


def test_pro_rata_exemptions_flagged(scenarios):
    pools = scenarios("contracts_pro_rata", 5, "small", 7)
    result = exemption_test(pools, "contracts_pro_rata")
    planted = set(pools.filter(pl.col("exempt"))["user"])
    assert set(result.flagged["user"]) == planted


def test_conditional_logit_direction_points_at_the_rule(scenarios):
    fit = conditional_logit(scenarios("leverage", 0, "small", 7))
    assert fit["closest_rule"] == "leverage"
    assert fit["direction"][1] > 0.8


def test_poisson_binomial_matches_binomial():
    ps = np.full(12, 0.3)
    for k in range(13):
        assert poisson_binomial_cdf(ps, k) == pytest.approx(stats.binom.cdf(k, 12, 0.3), rel=1e-12)


def _toy_pools() -> pl.DataFrame:
    # one step, five candidates, leverage order e > d > c > b > a; the top two were selected
    users = ["a", "b", "c", "d", "e"]
    lev = [1.0, 2.0, 3.0, 4.0, 5.0]
    return pl.DataFrame({
        "step_id": [1] * 5, "user": users, "side": ["long"] * 5, "leverage": lev, "size": [1.0] * 5,
        "entry_px": [1.0] * 5, "mark_px": [1.0] * 5, "notional_usd": [1.0] * 5, "upnl_usd": [0.0] * 5,
        "account_value_usd": [1.0] * 5, "wallet_balance_usd": [1.0] * 5, "maintenance_margin_usd": [0.1] * 5,
        "effective_leverage": lev, "pnl_pct_margin": [0.0] * 5,
        "selected": [False, False, True, False, True], "fill_order": [None, None, 2, None, 1],
        "closed_size": [0.0, 0.0, 1.0, 0.0, 1.0],
    })


def test_metrics_on_a_hand_checked_step():
    pools = _toy_pools()
    inf = infer_rule(pools, [RULES["leverage"]])
    lev = next(r for r in inf.rules if r.name == "leverage")
    # selected {c, e}; unselected {a, b, d}; only d outranks c -> 1 violating pair of 6
    assert lev.violation_rate == pytest.approx(1 / 6)
    assert lev.auc == pytest.approx(5 / 6)
    assert lev.top_k_precision == pytest.approx(0.5)


def test_inclusion_probabilities_sum_to_k():
    pools = score_pools(_toy_pools(), [RULES["leverage"]])
    sa = StepArrays.from_pools(pools)
    z = utilities(sa.frame["score_leverage"].to_numpy(), sa.starts, sa.ends)
    p = inclusion_probabilities(z, sa, theta=1.0, draws=4000, seed=1)
    assert p.sum() == pytest.approx(2.0, abs=0.01)
    assert p[np.argmax(sa.frame["leverage"].to_numpy())] > p[np.argmin(sa.frame["leverage"].to_numpy())]
