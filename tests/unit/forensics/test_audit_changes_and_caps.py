"""Rule changes mid-cascade and capped ("soft") exemptions, on pools built by hand: the venue's choice is written
here from a rule's ranking, and the audit must find the rule in force per window, the change point and the kind
of each flag."""

from __future__ import annotations

import numpy as np
import polars as pl

from forensics.audit import audit

N_POOL = 12
TAKE = 3  # positions closed per action: the first TAKE - 1 whole, the last in part


def _pool(step: int, rng: np.random.Generator, users: list[str], rank_by: str, capped: set[str]) -> pl.DataFrame:
    lev = rng.uniform(1.0, 20.0, len(users))
    upnl = rng.uniform(1.0, 100.0, len(users))
    key = lev if rank_by == "leverage" else upnl
    order = np.argsort(-key, kind="stable")
    selected = np.zeros(len(users), dtype=bool)
    partial = np.zeros(len(users), dtype=bool)
    closed = np.zeros(len(users))
    fill_order = np.zeros(len(users), dtype=np.int64)
    for k, i in enumerate(order[:TAKE]):
        selected[i] = True
        fill_order[i] = k + 1
        last = k == TAKE - 1
        cap = users[i] in capped and not last
        partial[i] = last or cap
        closed[i] = 0.3 if cap else (0.5 if last else 1.0)
    n = len(users)
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
            "notional_usd": lev,
            "upnl_usd": upnl,
            "account_value_usd": [1.0] * n,
            "wallet_balance_usd": [1.0] * n,
            "maintenance_margin_usd": [0.1] * n,
            "effective_leverage": lev,
            "pnl_pct_margin": [0.0] * n,
            "selected": selected,
            "partial": partial,
            "fill_order": fill_order,
            "closed_size": closed,
            "skip_reason": [None] * n,
            "mark_source": ["asset_ctxs"] * n,
            "lot_size": [0.01] * n,
        }
    )


def _cascade(rules: list[str], *, actions_per_wave: int = 10, capped: set[str] = frozenset(), seed: int = 5):
    """One wave per entry of ``rules`` (the rule in force in that wave); pools of N_POOL of 60 accounts."""
    rng = np.random.default_rng(seed)
    accounts = [f"0x{i:040x}" for i in range(60)]
    pools, steps = [], []
    step = 0
    for wave, rule in enumerate(rules):
        for _ in range(actions_per_wave):
            users = sorted(rng.choice(accounts, N_POOL, replace=False).tolist())
            pools.append(_pool(step, rng, users, rule, capped))
            steps.append(
                {"step_id": step, "coin": "X", "block_number": 1000 + step, "time_ms": 1_000 * step, "wave_id": wave}
            )
            step += 1
    return pl.concat(pools), pl.DataFrame(steps)


def test_a_switch_between_waves_is_found_with_its_change_point():
    pools, steps = _cascade(["leverage"] * 3 + ["upnl"] * 3)
    result = audit(pools, steps=steps)
    changes = result.inference.changes
    assert changes.changed, changes.note
    before, after = changes.windows
    assert {before.rule, *result.inference.fit(before.rule).same_order_as} >= {"leverage"}
    assert {after.rule, *result.inference.fit(after.rule).same_order_as} >= {"upnl"}
    assert [c.action for c in changes.change_points] == [30] and changes.change_points[0].wave == 3
    assert result.exemption.flagged.height == 0
    assert "the rule changed during the cascade" in result.verdict


def test_a_single_rule_reports_no_change():
    pools, steps = _cascade(["leverage"] * 6)
    result = audit(pools, steps=steps)
    assert not result.inference.changes.changed
    assert result.inference.best_rule in {"leverage", *result.inference.fit("leverage").same_order_as}


def test_capped_accounts_are_flagged_as_capped_and_their_partial_closes_are_not_shape_violations():
    capped = {f"0x{i:040x}" for i in (3, 17)}
    pools, steps = _cascade(["leverage"] * 6, capped=capped)
    result = audit(pools, steps=steps)
    flagged = result.exemption.flagged
    assert set(flagged["user"]) == capped
    assert set(flagged["kind"]) == {"capped"}
    assert (flagged["caps"] >= 2).all()
    best = result.inference.fit(result.inference.best_rule)
    assert best.shape_violations == 0 and best.exemptions_needed == 2
    evidence = result.exemption.evidence[next(iter(capped))]
    assert evidence and all(e["counted_as_cap"] and e["rank"] < e["cut_rank"] for e in evidence)
    # the evidence says what was taken against the whole position a queue takes above its cut
    assert all(e["closed_size"] == 0.3 and e["size"] == 1.0 for e in evidence)


def test_no_capped_flag_without_capped_takes():
    pools, steps = _cascade(["leverage"] * 6)
    result = audit(pools, steps=steps)
    assert result.exemption.flagged.height == 0
    assert result.exemption.accounts["caps"].sum() == 0
