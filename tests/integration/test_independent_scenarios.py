"""The audit on scenarios written by an independent generator (../shared/scenarios/independent/), read in
place, never copied: each is ingested from its Hyperliquid-format files as a user would, analysed, and only
then scored against its truth.json. Targets: the planted rule named, precision >= 0.95, recall >= 0.9,
nothing flagged in null scenarios; the same on damaged copies made here (forensics/simulate/damage.py)."""

from __future__ import annotations

import pytest

from tests.conftest import SHARED

INDEPENDENT = SHARED / "scenarios" / "independent"


def _scenarios() -> list[str]:
    if not INDEPENDENT.is_dir():
        return []
    from pipelines.analysis.validation import independent_scenarios

    return [p.name for p in independent_scenarios(INDEPENDENT)]


def _dir(name: str):
    path = INDEPENDENT / name
    if not path.is_dir():
        pytest.skip(f"independent scenarios not available: ../shared/scenarios/independent/{name}")
    return path


def _check(row: dict) -> None:
    if row.get("skipped"):
        pytest.skip(f"{row['scenario']}: {row['skipped']}")
    assert row["rule_ok"], row["verdict"]
    if row["planted"]:
        assert row["precision"] is not None and row["precision"] >= 0.95, row
        assert row["recall"] >= 0.9, row
    else:
        assert row["flagged"] == 0, row


@pytest.mark.parametrize("name", _scenarios() or ["hl_index-s2026"])
def test_independent_scenario(name):
    from pipelines.analysis.validation import run_independent

    row = run_independent(_dir(name))
    _check(row)
    assert row["actions"] == row["truth_actions"]  # one ADL action per transaction, as the generator made them


@pytest.mark.parametrize(
    "name, damage",
    [
        ("hl_index-s2026", "drop_fill_legs=0.01"),
        ("random_cyclic-s2026", "drop_fill_legs=0.01"),
        ("bitmex-s2026", "duplicate_block_lines=0.01"),
        ("leverage-s2026", "drop_ctx_seconds=0.2"),
        ("pro_rata-null-s2027", "skew_local_time_ms=2000"),
    ],
)
def test_damaged_independent_scenario(name, damage):
    from pipelines.analysis.validation import run_independent

    row = run_independent(_dir(name), damage)
    counts = row["damage_counts"]
    assert (
        counts["fill_legs_written"] < counts["fill_legs"]
        or counts["block_lines_written"] > counts["block_lines"]
        or counts["ctx_seconds_written"] < counts["ctx_seconds"]
        or "skew" in damage
    )
    _check(row)
