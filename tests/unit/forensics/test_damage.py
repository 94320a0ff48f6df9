"""Damaged copies of a scenario: each knob does exactly its damage to the files, seeded, truth left out."""

from __future__ import annotations

import json

import lz4.frame
import pytest

from forensics import simulate
from forensics.simulate.damage import Damage, damage_scenario


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    out = tmp_path_factory.mktemp("scenario")
    simulate.generate(out, scale="tiny", policy="hl_index", exempt=2, seed=4)
    return out


def _blocks(root):
    lines = []
    for path in sorted((root / "node_fills_by_block").rglob("*.lz4")):
        with lz4.frame.open(path, "rt") as f:
            lines += [json.loads(line) for line in f if line.strip()]
    return lines


def test_each_knob_does_its_damage(scenario, tmp_path):
    src_blocks = _blocks(scenario)
    legs = sum(len(b["events"]) for b in src_blocks)

    counts = damage_scenario(scenario, tmp_path / "legs", Damage(drop_fill_legs=0.05, seed=1))
    out = _blocks(tmp_path / "legs")
    assert counts["fill_legs"] == legs and counts["fill_legs_written"] == sum(len(b["events"]) for b in out)
    assert 0.02 * legs < legs - counts["fill_legs_written"] < 0.08 * legs
    assert not (tmp_path / "legs" / "truth.json").exists()

    counts = damage_scenario(scenario, tmp_path / "dup", Damage(duplicate_block_lines=0.1, seed=1))
    out = _blocks(tmp_path / "dup")
    assert len(out) == counts["block_lines_written"] > len(src_blocks)

    counts = damage_scenario(scenario, tmp_path / "skew", Damage(skew_local_time_ms=5000, seed=1))
    out = _blocks(tmp_path / "skew")
    moved = [a["local_time"] != b["local_time"] for a, b in zip(src_blocks, out)]
    assert len(out) == len(src_blocks) and sum(moved) > 0.9 * len(out)
    assert all(a["block_time"] == b["block_time"] and a["events"] == b["events"] for a, b in zip(src_blocks, out))

    ctx = next(p for p in scenario.rglob("asset_ctxs*.jsonl"))
    counts = damage_scenario(scenario, tmp_path / "ctx", Damage(drop_ctx_seconds=0.5, seed=1))
    kept = (tmp_path / "ctx" / ctx.relative_to(scenario)).read_text().splitlines()
    assert len(kept) == counts["ctx_seconds_written"] < 0.7 * counts["ctx_seconds"]
    assert kept[0] == ctx.read_text().splitlines()[0]


def test_damage_spec_parses_and_rejects_unknown_knobs():
    assert Damage.parse("drop_fill_legs=0.01,seed=3") == Damage(drop_fill_legs=0.01, seed=3)
    assert Damage.parse("none").label == "none"
    with pytest.raises(ValueError, match="unknown damage knob"):
        Damage.parse("drop_everything=1")
