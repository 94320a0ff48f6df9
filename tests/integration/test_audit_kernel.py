"""The compiled audit kernel against an independent set-wise implementation (tests/oracles/rank_evidence.py), and
the streaming pass against pools held as a table: the same counts per account, the same cuts and shape
violations per action, for every rule, on simulator scenarios (noise on) and on the independent scenarios."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from forensics import simulate
from forensics.audit import RULES, kernel
from forensics.audit.evidence import Evidence, pools_evidence
from forensics.reconstruct import audit_pass
from forensics.reconstruct.cash import cash_events
from pipelines.analysis.inputs import VAULTS, archive_mark_age, load_inputs
from pipelines.analysis.validation import _ingest_scenario
from pipelines.ingest.hyperliquid import files
from pipelines.lake import Lake
from tests.conftest import SHARED
from tests.oracles import rank_evidence as oracle

INDEPENDENT = SHARED / "scenarios" / "independent"


def _episodes(steps: pl.DataFrame) -> pl.DataFrame:
    at = pl.coalesce(pl.col("block_number"), pl.col("time_ms"))
    return steps.select(
        "step_id", pl.struct(at.alias("at"), pl.col("coin")).rank("dense").cast(pl.Int64).alias("episode")
    )


def _oracle_counts(pools: pl.DataFrame, steps: pl.DataFrame) -> dict[str, tuple[pl.DataFrame, np.ndarray, np.ndarray]]:
    """Per rule: (per-account counts, shape violations per action, cut rank per action) of the oracle."""
    complete = steps.filter(pl.col("unmatched_counter_legs") == 0).select("step_id")
    decided = pools.join(complete, on="step_id", how="semi").filter(pl.col("selected").any().over("step_id"))
    decided = decided.join(_episodes(steps), on="step_id", how="left")
    c = oracle.Candidates.prepare(decided)
    out = {}
    for name, rule in oracle.RULES.items():
        ev = oracle.evidence_of(c, rule)
        counts = oracle.account_counts(ev).sort("user")
        shape = np.bincount(c.seg[ev.rows][ev.shape], minlength=len(c.n))
        out[name] = (counts, shape, ev.cut_rank)
    return out


def _same(ev: Evidence, expected: dict, label: str) -> None:
    cols = [
        "user",
        "eligible_steps",
        "opportunities",
        "skips",
        "gap_opportunities",
        "gap_skips",
        "cap_opportunities",
        "caps",
        "observed_selections",
    ]
    for rule in RULES.values():
        counts, shape, cut = expected[rule.name]
        got = ev.account_counts(rule.name).select(cols)
        assert got.equals(counts.select(cols)), f"{label}: {rule.name} per-account counts differ"
        assert np.array_equal(ev.action_values(rule.name, kernel.A_SHAPE), shape), f"{label}: {rule.name} shapes"
        assert np.array_equal(ev.action_values(rule.name, kernel.A_CUT_RANK), cut), f"{label}: {rule.name} cuts"


def _check_lake(lake: Lake, label: str) -> None:
    i = load_inputs(lake)
    res = audit_pass(
        i.fills,
        i.positions,
        i.accounts,
        i.asset_ctxs,
        cash=cash_events(i.ledger, i.funding)[0],
        vault=VAULTS["hyperliquid"],
        max_mark_age_ms=archive_mark_age(i.asset_ctxs),
        keep_pools="all",
        mark_movement=False,
        account_intervals=False,
    )
    assert res.evidence is not None and res.pools is not None and res.evidence.actions.height > 0
    expected = _oracle_counts(res.pools, res.steps)
    _same(res.evidence, expected, f"{label} (streaming pass)")
    _same(pools_evidence(res.pools, steps=res.steps), expected, f"{label} (pools held as a table)")


@pytest.mark.parametrize(
    ("policy", "noise"),
    [
        ("hl_index", {"drop_fills": 0.01, "mark_jitter": 0.002, "clock_skew_ms": 300}),
        ("bitmex", {}),
        ("random_cyclic", {"stale_snapshot": 3}),
        ("contracts_pro_rata", {"drop_fills": 0.01}),
        ("wealth_pro_rata", {}),
        ("lexicographic", {}),
    ],
)
def test_kernel_equals_the_set_wise_oracle_on_simulated_cascades(tmp_path, policy, noise):
    scenario = tmp_path / "scenario"
    simulate.generate(scenario, scale="tiny", policy=policy, exempt=3, seed=5, noise=noise)
    lake = Lake(tmp_path / "lake")
    for path in files.expand_inputs([scenario / "node_fills_by_block"]):
        files.ingest_node_fills(lake, path)
    files.ingest_snapshot(lake, scenario / "snapshots" / "clearinghouse_state.jsonl")
    files.ingest_asset_ctxs(lake, scenario / "asset_ctxs" / "asset_ctxs.jsonl")
    _check_lake(lake, policy)


@pytest.mark.parametrize("name", ["hl_index-s2026", "pro_rata-s2026", "random_cyclic-s2026", "bitmex-real-s2026"])
def test_kernel_equals_the_set_wise_oracle_on_independent_scenarios(tmp_path, name):
    src = INDEPENDENT / name
    if not src.is_dir():
        pytest.skip(f"independent scenarios not available: ../shared/scenarios/independent/{name}")
    lake = Lake(tmp_path / "lake")
    _ingest_scenario(lake, src)
    _check_lake(lake, name)
