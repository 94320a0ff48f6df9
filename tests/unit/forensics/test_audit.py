"""The audit core: rank evidence, rule identification and the exemption test, on planted simulator truth
and on hand-checked actions."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats

from forensics import simulate
from forensics.audit import RULES, audit, identify
from forensics.audit.diagnostics import StepArrays, _PlackettLuce, conditional_logit, utilities
from forensics.audit.evidence import rule_evidence
from forensics.audit.exemption import MIN_SKIPS, skip_test
from forensics.audit.table import score_pools
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


@pytest.mark.parametrize(
    "policy", ["hl_index", "bitmex", "binance", "upnl", "contracts_pro_rata", "wealth_pro_rata", "random_cyclic"]
)
def test_true_rule_recovered_on_clean_scenarios(scenarios, policy):
    idn = identify(scenarios(policy, 0))
    assert idn.best_rule == policy, idn.verdict


def test_lexicographic_reported_with_leverage(scenarios):
    idn = identify(scenarios("lexicographic", 0))
    assert idn.best_rule in {"leverage", "lexicographic"}
    other = ({"leverage", "lexicographic"} - {idn.best_rule}).pop()
    assert other in idn.fit(idn.best_rule).same_order_as or "do not separate" in idn.verdict, idn.verdict


@pytest.mark.parametrize("policy", ["hl_index", "contracts_pro_rata", "random_cyclic"])
def test_planted_exemptions_flagged_without_false_discoveries(scenarios, policy):
    pools = scenarios(policy, 5, "small", 7)
    result = audit(pools)
    assert result.inference.best_rule == policy, result.verdict
    planted = set(pools.filter(pl.col("exempt"))["user"])
    assert planted and result.exemption.flagged_users == planted
    for user in planted:  # each flag carries its skips: ranked above the cut, not selected
        skips = [e for e in result.exemption.evidence[user] if e["counted_as_skip"]]
        assert len(skips) >= MIN_SKIPS and all(e["rank"] < e["cut_rank"] for e in skips)


def test_no_flags_when_nothing_planted(scenarios):
    pools = scenarios("bitmex", 0, "small", 7)
    result = audit(pools)
    assert result.inference.best_rule == "bitmex" and result.exemption.flagged.height == 0
    # every account of a pool has a row; accounts never above a cut are not tested
    acc = result.exemption.accounts
    assert set(acc["user"]) == set(pools.filter(pl.col("selected").any().over("step_id"))["user"])
    assert acc.filter(~pl.col("tested"))["p_value"].eq(1.0).all()


def test_no_documented_rule_fits_random_selections(scenarios):
    pools = scenarios("hl_index", 0, "small", 7)
    rng = np.random.default_rng(3)
    shuffled = pools.with_columns(pl.Series("selected", rng.permutation(pools["selected"].to_numpy())))
    idn = identify(shuffled)
    assert idn.best_rule is None and idn.verdict.startswith("no documented rule fits"), idn.verdict


def test_conditional_logit_direction_points_at_the_rule(scenarios):
    fit = conditional_logit(scenarios("leverage", 0, "small", 7))
    assert fit["closest_rule"] == "leverage"
    assert fit["direction"][1] > 0.8


def _action(lev, selected, *, partial=None, reasons=None, marks=None, step=1, closed=None):
    n = len(lev)
    users = [f"0x{i:02d}" for i in range(n)]
    return pl.DataFrame(
        {
            "step_id": [step] * n,
            "user": users,
            "coin": ["X"] * n,
            "side": ["long"] * n,
            "leverage": lev,
            "size": [1.0] * n,
            "entry_px": [1.0] * n,
            "mark_px": [1.0] * n,
            "notional_usd": [1.0] * n,
            "upnl_usd": [0.0] * n,
            "account_value_usd": [1.0] * n,
            "wallet_balance_usd": [1.0] * n,
            "maintenance_margin_usd": [0.1] * n,
            "effective_leverage": lev,
            "pnl_pct_margin": [0.0] * n,
            "selected": selected,
            "partial": partial or [False] * n,
            "fill_order": [None] * n,
            "closed_size": closed or [1.0 if s else 0.0 for s in selected],
            "skip_reason": reasons or [None] * n,
            "mark_source": marks or ["asset_ctxs"] * n,
            "lot_size": [0.01] * n,
        }
    )


def test_cut_ignores_one_misranked_selection():
    # leverage order 0x00 > 0x01 > ... > 0x09; 0x00 passed over, 0x01-0x03 selected, and 0x09 selected
    # although the rule ranks it last (a mis-reconstructed account): one shape violation, one skip
    sel = [False, True, True, True, False, False, False, False, False, True]
    ev = rule_evidence(_action([10.0 - i for i in range(10)], sel), RULES["leverage"])
    assert ev["cut_rank"].unique().to_list() == [4]
    assert ev.filter(pl.col("skip"))["user"].to_list() == ["0x00"]
    assert ev.filter(pl.col("shape_violation"))["user"].to_list() == ["0x09"]


def test_excused_and_tied_candidates_are_never_opportunities():
    lev = [5.0, 4.0, 3.0 * (1 + 1e-12), 3.0]
    reasons = [None, "below_min_size", None, None]
    ev = rule_evidence(_action(lev, [False, False, False, True], reasons=reasons), RULES["leverage"])
    by = {r["user"]: r for r in ev.iter_rows(named=True)}
    assert by["0x00"]["skip"] and by["0x00"]["opportunity"]
    assert not by["0x01"]["opportunity"] and by["0x01"]["excused"]
    assert not by["0x02"]["opportunity"]  # equal in floating point: a tie, not a skip
    # a clear gap that no mark within the published precision can close is a skip
    wide = rule_evidence(_action([3.0 * 1.01, 3.0], [False, True], marks=["last_trade"] * 2), RULES["leverage"])
    assert wide["skip"].to_list() == [True, False]
    # a gap the mark's uncertainty can close is a tie: under hl_index, 0x00 (10x, at entry) scores 10.05 and the
    # cut (5x, entry half the mark) 10.0; a trade-price mark 0.2% higher puts the cut first
    close = _action([10.05, 5.0], [False, True], marks=["last_trade"] * 2).with_columns(
        pl.Series("size", [10.05, 5.0]),
        pl.Series("notional_usd", [10.05, 5.0]),
        pl.Series("entry_px", [1.0, 0.5]),
        pl.Series("upnl_usd", [0.0, 2.5]),
    )
    assert rule_evidence(close, RULES["hl_index"])["skip"].to_list() == [False, False]
    published = close.with_columns(pl.lit("asset_ctxs").alias("mark_source"))  # +-0.0005%: the gap stands
    assert rule_evidence(published, RULES["hl_index"])["skip"].to_list() == [True, False]


def test_cyclic_walk_ranks_by_address_from_the_first_fill():
    sel = [False, False, True, True, False, True]  # walk 0x02 -> 0x03 -> (0x04 passed over) -> 0x05
    df = _action([1.0] * 6, sel).with_columns(pl.Series("fill_order", [None, None, 1, 2, None, 3]))
    ev = rule_evidence(df, RULES["random_cyclic"]).sort("user")
    assert ev["rank"].to_list() == [None, None, 1, 2, 3, 4]  # 0x00, 0x01: beyond the walk, never above a cut
    assert ev.filter(pl.col("skip"))["user"].to_list() == ["0x04"]


def test_pro_rata_opportunities_need_a_share_of_one_lot():
    # four positions of 1, 1, 1 and 0.004; 10% cut from each of the first three; the last would get
    # 0.0004 < one lot (0.01) and is not an opportunity; 0x02 got nothing while owed 0.1: a skip
    df = _action([1.0] * 4, [True, True, False, False], closed=[0.1, 0.1, 0.0, 0.0]).with_columns(
        pl.Series("size", [1.0, 1.0, 1.0, 0.004]), pl.Series("partial", [True, True, False, False])
    )
    ev = rule_evidence(df, RULES["contracts_pro_rata"]).sort("user")
    assert ev["skip"].to_list() == [False, False, True, False]
    assert ev["opportunity"].to_list() == [True, True, True, False]
    assert not ev["shape_violation"].any()


def test_skip_test_is_an_exact_binomial_tail_recalibrated_without_flags():
    counts = pl.DataFrame(
        {"user": [f"u{i}" for i in range(60)], "opportunities": [40] * 60, "skips": [12, 9] + [0] * 57 + [1]}
    )
    out, rate, history = skip_test(counts, q=0.05)
    flagged = out.filter(pl.col("flagged"))["user"].to_list()
    assert flagged == ["u0", "u1"]
    assert rate == pytest.approx((1 + 0.5) / (58 * 40 + 1))  # the flagged accounts are out of the rate
    row = out.filter(pl.col("user") == "u1").row(0, named=True)
    assert row["p_value"] == pytest.approx(stats.binom.sf(8, 40, rate), rel=1e-9)
    assert len(history) >= 2
    one = skip_test(pl.DataFrame({"user": ["a", "b"], "opportunities": [1, 5000], "skips": [1, 0]}))[0]
    assert not one["flagged"].any()  # a single skip is never a flag


def test_plackett_luce_likelihood_matches_a_direct_computation(scenarios):
    pools = score_pools(scenarios("hl_index", 0), [RULES["hl_index"]]).rename({"score_hl_index": "score"})
    sa = StepArrays.from_pools(pools)
    z = utilities(sa.frame["score"].to_numpy(), sa.starts, sa.ends)
    model = _PlackettLuce(z, sa)
    for theta in (0.0, 0.3, 4.0):
        direct = 0.0
        for a, b in zip(sa.starts, sa.ends):
            sel = sa.selected[a:b]
            if not sel.any() or sel.all():
                continue
            u = theta * z[a:b]
            left = list(np.flatnonzero(~sel)) + list(np.flatnonzero(sel))
            for i in np.flatnonzero(sel)[np.argsort(sa.fill_order[a:b][sel], kind="stable")]:
                direct += u[i] - np.logaddexp.reduce(u[left])
                left.remove(i)
        assert model.loglik(theta) == pytest.approx(direct, rel=1e-9)


def test_walk_along_the_fill_order_sets_the_cut():
    # filled in order 0x01, 0x02, 0x09 (ranked last: mis-reconstructed), 0x03, 0x05; 0x04 passed over
    sel = [False, True, True, True, False, True, False, False, False, True]
    order = [None, 1, 2, 4, None, 5, None, None, None, 3]
    df = _action([10.0 - i for i in range(10)], sel).with_columns(pl.Series("fill_order", order, dtype=pl.Int32))
    ev = rule_evidence(df, RULES["leverage"])
    assert ev["cut_rank"].unique().to_list() == [6]
    assert sorted(ev.filter(pl.col("skip"))["user"].to_list()) == ["0x00", "0x04"]
    assert ev.filter(pl.col("shape_violation"))["user"].to_list() == ["0x09"]


def test_accounts_that_lost_a_fill_are_tested_against_their_own_noisier_rate():
    # 300 clean accounts with 20 opportunities (3 noise skips overall); 100 accounts whose account value is
    # uncertain, 10 opportunities each and a skip in 30 of them; a 2-of-2 skip is a flag only where it is rare
    users = [f"c{i}" for i in range(300)] + [f"g{i}" for i in range(100)] + ["clean2", "gap2"]
    opps = [20] * 300 + [10] * 100 + [2, 2]
    skips = [1, 1, 1] + [0] * 297 + [1] * 30 + [0] * 70 + [2, 2]
    gap_opps = [0] * 300 + [10] * 100 + [0, 2]
    counts = pl.DataFrame(
        {
            "user": users,
            "opportunities": opps,
            "skips": skips,
            "gap_opportunities": gap_opps,
            "gap_skips": [0] * 300 + skips[300:400] + [0, 2],
        }
    )
    out, rate, history = skip_test(counts)
    by = {r["user"]: r for r in out.iter_rows(named=True)}
    assert by["clean2"]["flagged"] and not by["gap2"]["flagged"]
    assert history[-1]["skip_rate_after_lost_fill"] > 5 * rate
