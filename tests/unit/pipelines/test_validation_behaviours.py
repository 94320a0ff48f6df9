"""Scoring an audit against a planted venue behaviour (pipelines/analysis/validation.py): rule windows and
change points within one wave, the rule read through its accepted names and identical-ranking ties, flag
precision/recall/power and their kinds, and what is reported while the audit's answer lacks a field."""

from __future__ import annotations

import orjson
import polars as pl
import pytest

from pipelines.analysis.validation import (
    AuditView,
    PlantedTruth,
    ReportedChanges,
    behaviour_markdown,
    false_change_rate,
    rule_matches,
    score_behaviour,
)
from tests.conftest import SHARED

# three waves of two actions each, hl_index then bitmex from the third wave
SWITCH = PlantedTruth(
    steps=[
        (1000, "hl_index"),
        (1100, "hl_index"),
        (9000, "hl_index"),
        (9100, "hl_index"),
        (20000, "bitmex"),
        (20100, "bitmex"),
    ],
    waves=[(1000, 1100), (9000, 9100), (20000, 20100)],
    change_times=[20000],
    exempt=frozenset({"a", "b", "c"}),
    exempt_kind="skip",
    exempt_actions={"a": 6, "b": 5, "c": 1},
)


def view(windows=None, points=None, *, best="hl_index", flags=None, same=(), changed=None) -> AuditView:
    rc = {}
    if windows is not None:
        rc = {"changed": bool(points) if changed is None else changed, "windows": windows, "change_points": points}
    return AuditView(best, tuple(same), flags or {}, ReportedChanges.read(rc))


def win(rule, a, b):
    return {"first_action": 0, "last_action": 0, "from_ms": a, "to_ms": b, "rule": rule, "cost": 0.0}


def test_switch_found():
    found = view(
        [win("hl_index", 1000, 9100), win("bitmex", 20000, 20100)],
        [{"action": 4, "time_ms": 20000, "wave": 2}],
        flags={"a": "skipped", "b": "skipped"},
    )
    row = score_behaviour(SWITCH, found)
    assert row["rule_ok"] is True and row["windows_ok"] is True and row["change_wave_error"] == 0
    assert row["planted_rule"] == "hl_index -> bitmex" and row["planted_changes"] == 1
    assert (row["precision"], row["recall"], row["testable"], row["testable_found"]) == (1.0, 2 / 3, 2, 2)
    assert row["kind_ok"] == 1.0 and row["skipped_flags"] == 2 and row["capped_flags"] == 0


def test_switch_one_wave_early_is_within_tolerance_two_is_not():
    early = view([win("hl_index", 1000, 1100), win("bitmex", 9000, 20100)], [{"action": 2, "time_ms": 9000, "wave": 1}])
    row = score_behaviour(SWITCH, early)
    assert row["change_wave_error"] == 1
    # the window from 9000 holds two hl_index and two bitmex actions: a tie, so either rule is right
    assert SWITCH.rules_during(9000, 20100) == {"hl_index", "bitmex"} and row["windows_ok"] and row["rule_ok"]
    assert SWITCH.rules_during(9000, 20000) == {"hl_index"} and SWITCH.rules_during(2000, 3000) == set()
    far = view([win("hl_index", 1000, 1000), win("bitmex", 1100, 20100)], [{"action": 1, "time_ms": 1100, "wave": 0}])
    assert score_behaviour(SWITCH, far)["change_wave_error"] == 2 and score_behaviour(SWITCH, far)["rule_ok"] is False


def test_switch_missed_or_wrong_rule():
    assert score_behaviour(SWITCH, view([win("hl_index", 1000, 20100)], []))["rule_ok"] is False
    wrong = view([win("hl_index", 1000, 9100), win("upnl", 20000, 20100)], [{"action": 4, "time_ms": 20000, "wave": 2}])
    row = score_behaviour(SWITCH, wrong)
    assert row["windows_ok"] is False and row["rule_ok"] is False
    # a change point between waves belongs to the next wave
    assert SWITCH.wave_of(15000) == 2 and SWITCH.wave_of(500) == 0 and SWITCH.wave_of(99999) == 2


def test_legacy_or_absent_rule_changes_are_not_scored():
    legacy = AuditView("hl_index", (), {}, ReportedChanges.read({"changed": False, "windows": []}))
    row = score_behaviour(SWITCH, legacy)
    assert row["rule_changes_schema"] == "legacy" and row["rule_ok"] is None and row["reported_change"] is False
    none = AuditView("hl_index", (), {}, ReportedChanges.read({}))
    assert score_behaviour(SWITCH, none)["reported_change"] is None


def test_single_rule_names_and_ties():
    single = PlantedTruth([(1, "hl_index_short_inverse")], [(1, 1)], [], frozenset(), "skip", {})
    assert score_behaviour(single, view(best="hl_index_literal"))["rule_ok"] is True
    assert score_behaviour(single, view(best="hl_index"))["rule_ok"] is False
    assert rule_matches("bitmex", "hl_node_score", same_order_as=["hl_node_score"])
    assert not rule_matches("bitmex", "hl_node_score")
    assert rule_matches("contracts_pro_rata", "pro_rata") and rule_matches("leverage", "lexicographic")
    assert not rule_matches(None, "hl_index")


def test_capped_kinds_and_null():
    capped = PlantedTruth([(1, "hl_index")], [(1, 1)], [], frozenset({"a", "b"}), "capped", {"a": 3, "b": 2})
    row = score_behaviour(capped, view(flags={"a": "capped", "b": "skipped", "z": "capped"}))
    assert (row["true_flags"], row["false_flags"], row["testable"], row["testable_found"]) == (2, 1, 1, 1)
    assert row["kind_ok"] == 0.5 and row["capped_flags"] == 2 and row["flag_kind_reported"]
    no_kind = score_behaviour(capped, view(flags={"a": None}))
    assert no_kind["kind_ok"] is None and no_kind["capped_flags"] is None and not no_kind["flag_kind_reported"]
    null = PlantedTruth([(1, "hl_index")], [(1, 1)], [], frozenset(), "skip", {})
    row = score_behaviour(null, view(flags={"z": "capped"}))
    assert row["recall"] is None and row["precision"] == 0.0 and row["capped_flags"] == 1


def test_planted_truth_from_the_simulator(tmp_path):
    from forensics.simulate import generate

    generate(tmp_path, scale="tiny", seed=1, exempt=3, switch_policy="bitmex", exempt_kind="capped")
    truth = orjson.loads((tmp_path / "truth.json").read_bytes())
    p = PlantedTruth.from_simulator(truth)
    (cp,) = truth["change_points"]
    assert p.rules == ["hl_index", "bitmex"] and p.change_times == [cp["time_ms"]]
    assert p.wave_of(cp["time_ms"]) == cp["wave"] and len(p.waves) == len(truth["waves"])
    assert p.exempt_kind == "capped" and set(p.exempt_actions) == set(truth["exempt"])
    assert sum(p.exempt_actions.values()) == sum(len({c["user"] for c in st["capped_exempt"]}) for st in truth["steps"])


def test_planted_truth_from_the_independent_generator():
    root = SHARED / "scenarios" / "independent"
    switch, capped = root / "hl_index-switch-s2028" / "truth.json", root / "hl_index-capped-s2028" / "truth.json"
    if not (switch.exists() and capped.exists()):
        pytest.skip("independent scenarios not available: ../shared/scenarios/independent/hl_index-*-s2028")
    t = orjson.loads(switch.read_bytes())
    p = PlantedTruth.from_independent(t)
    rs = t["rule_switch"]
    assert p.rules == [rs["rule_before"], rs["rule_after"]] and p.change_times == [rs["switch_time"]]
    assert [w[0] for w in p.waves][p.wave_of(rs["switch_time"])] == rs["switch_time"]
    assert p.exempt_actions == {u: t["exempt_inside_steps"][u] for u in t["exempt_users"]}
    c = PlantedTruth.from_independent(orjson.loads(capped.read_bytes()))
    assert c.exempt_kind == "capped" and min(c.exempt_actions.values()) >= 1 and c.change_times == []


def test_independent_binance_is_the_position_mm_reading():
    """The independent generator's ``binance`` leaves the (per-coin constant) maintenance margin rate out of
    pnl_pct x notional/account_value: the position-MM reading, so the audit must name binance_position_mm."""
    truth = {
        "rule": "binance",
        "steps": [{"time": 5}, {"time": 9}],
        "waves": [{"first_time": 5, "last_time": 9}],
        "exempt_users": ["a"],
        "exempt_inside_steps": {"a": 2},
    }
    p = PlantedTruth.from_independent(truth)
    assert p.rules == ["binance_position_mm"] and p.change_times == []
    assert score_behaviour(p, view(best="binance_position_mm"))["rule_ok"] is True
    assert score_behaviour(p, view(best="binance"))["rule_ok"] is False
    real = SHARED / "scenarios" / "independent" / "binance-s2028" / "truth.json"
    if real.exists():
        t = orjson.loads(real.read_bytes())
        assert "maintenance margin rate" in t["rule_formula"]["binance"]
        assert PlantedTruth.from_independent(t).rules == ["binance_position_mm"]


def test_markdown_and_false_change_rate():
    rows = []
    for behaviour, planted, changed in [("single", SWITCH, False), ("null", SWITCH, True), ("switch", SWITCH, True)]:
        p = planted if behaviour == "switch" else PlantedTruth([(1, "hl_index")], [(1, 1)], [], frozenset(), "skip", {})
        found = view(
            [win("hl_index", 1, 1)], [{"action": 1, "time_ms": 20000, "wave": 2}] if changed else [], changed=changed
        )
        rows.append(
            {
                "behaviour": behaviour,
                "seed": 1,
                "scale": "tiny",
                "formats": "node",
                "truth_actions": 6,
                "actions": 6,
                **score_behaviour(p, found),
                "verdict": "",
                "simulate_ingest_s": 1.0,
                "analyze_s": 1.0,
            }
        )
    df = pl.DataFrame(rows, infer_schema_length=None)
    assert false_change_rate(df) == (0.5, 2)
    md = behaviour_markdown(df, "liqf validate --behaviour all")
    assert "false-change rate" in md and "| switch |" in md and "0.50 of 2" in md
