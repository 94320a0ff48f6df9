"""The simulator's venue behaviours in Hyperliquid's published layouts (misc events, the clearinghouse export,
per-minute archive contexts): a rule switch with capped exemptions goes through the ordinary ingest and
reconstructs with every ADL action's pool equal to the truth, so the audit sees what was planted."""

from __future__ import annotations

import json

from rich.console import Console

from forensics.reconstruct import build_steps_and_pools, compare_to_truth
from forensics.reconstruct.cash import cash_events
from forensics.simulate import VAULT_ADDRESS, generate


def test_switch_and_capped_in_the_real_layouts(tmp_path):
    from pipelines.analysis.inputs import archive_mark_age, load_inputs
    from pipelines.ingest.runner import run_file_ingest
    from pipelines.lake import Lake

    out = tmp_path / "scenario"
    scen = generate(
        out,
        scale="tiny",
        seed=1,
        exempt=3,
        formats="real",
        switch_policy="bitmex",
        switch_at=0.5,
        exempt_kind="capped",
        exempt_cap=0.3,
    )
    assert scen["formats"] == "real" and all(n > 0 for n in scen["misc_events"].values())
    truth = json.loads((out / "truth.json").read_text())
    assert [w["rule"] for w in truth["rule_windows"]] == ["hl_index", "bitmex"]
    assert any(st["capped_exempt"] for st in truth["steps"] if st["rule"] == "bitmex")
    assert all(not st["skipped_exempt"] for st in truth["steps"])
    lake = Lake(tmp_path / "lake")
    reports = run_file_ingest(
        lake,
        node_fills=[out / "node_fills_by_block"],
        misc_events=[out / "misc_events_by_block"],
        snapshot=[out / "snapshots" / "clearinghouse_state.jsonl"],
        asset_ctxs=out / "asset_ctxs" / "20251010.csv.lz4",
        console=Console(quiet=True),
    )
    assert all(r.records_read == r.records_written + r.quarantined for r in reports)
    assert sum(r.quarantined for r in reports) == 0
    i = load_inputs(lake)
    steps, pools = build_steps_and_pools(
        i.fills,
        i.positions,
        i.accounts,
        i.asset_ctxs,
        vault=VAULT_ADDRESS,
        cash=cash_events(i.ledger, i.funding)[0],
        max_mark_age_ms=archive_mark_age(i.asset_ctxs),
    )
    cmp = compare_to_truth(steps, pools, out / "truth.json")
    assert cmp["steps_matched"] == cmp["steps_truth"] == len(truth["steps"]) > 0
    assert cmp["pools_equal"] == cmp["steps_truth"]
    assert cmp["candidates_missing"] == cmp["candidates_extra"] == 0
