"""The simulator's venue behaviours (issue 23), at tiny scale: a silent rule switch, capped ("soft")
exemptions and the readings of an ambiguous documented rule. Each is checked against formulas written here
from the venue documentation (not from the simulator's code) and against the fills it writes."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import lz4.frame
import orjson
import pytest

from forensics.simulate import POLICIES, generate
from forensics.simulate.policies import capped_take
from tests.unit.forensics.test_simulate import check_truth_order

SEED = 1  # a tiny cascade with two ADL waves


def _truth(path: Path) -> dict:
    return json.loads((path / "truth.json").read_text())


def _max_leverage(path: Path) -> dict[str, int]:
    first = orjson.loads((path / "asset_ctxs/asset_ctxs.jsonl").read_bytes().splitlines()[0])
    return {u["name"]: u["maxLeverage"] for u in first["ctxs"][0]["universe"]}


def _adl_fills(path: Path, scen: dict) -> list[tuple[int, str, dict]]:
    out = []
    for rel in scen["paths"]["fills"]:
        for line in lz4.frame.decompress((path / rel).read_bytes()).splitlines():
            blk = orjson.loads(line)
            out += [(blk["block_number"], u, f) for u, f in blk["events"] if f["dir"] == "Auto-Deleveraging"]
    return out


# the formulas, from the documentation (adl-methods.md §1 and its 2026 additions)
def hl_index(r: dict) -> float:
    ratio = r["mark"] / r["entry"] if r["size"] > 0 else r["entry"] / r["mark"]
    return ratio * r["notional"] / r["account_value"]


def hl_index_literal(r: dict) -> float:
    return r["mark"] / r["entry"] * r["notional"] / r["account_value"]


def bitmex(r: dict) -> float:
    pnl = r["upnl"] / (abs(r["size"]) * r["entry"])
    return pnl * r["leverage"] if pnl > 0 else pnl / r["leverage"]


def binance(r: dict, mm: float) -> float:
    pnlp = max(0.0, r["upnl"]) / max(1.0, r["balance"])
    return pnlp * (mm / r["account_value"] if r["account_value"] > 0 else 0.0)


def hl_node_score(r: dict) -> float:
    lev = max(r["notional"] / r["account_value"], 1e-8)
    return lev * max(max(r["upnl"], 0.0) / (abs(r["size"]) * r["entry"]), 1e-8)


def _walk(pool: list[dict], score) -> list[str]:
    return [r["user"] for r in sorted(pool, key=lambda r: (-score(r), r["user"]))]


@pytest.mark.parametrize(
    "policy, base",
    [("binance_position_mm", "binance"), ("hl_index_short_inverse", "hl_index"), ("hl_node_score", "hl_index")],
)
def test_rule_variants_rank_by_their_formula(tmp_path, policy, base):
    """Each variant's recorded scores follow its formula, its queue follows its scores (planted accounts
    skipped), and its order differs from the base reading's on the same pools (a distinct behaviour)."""
    scen = generate(tmp_path, scale="tiny", seed=SEED, policy=policy, exempt=3)
    truth = _truth(tmp_path)
    assert truth["policy"] == policy and truth["steps"] and scen["counts"]["adl_fills"] > 0
    check_truth_order(truth)
    max_lev = _max_leverage(tmp_path)
    formula = {
        "binance_position_mm": lambda r, c: binance(r, r["notional"] / (2.0 * max_lev[c])),
        "hl_index_short_inverse": lambda r, c: hl_index_literal(r),
        "hl_node_score": lambda r, c: hl_node_score(r),
    }[policy]
    base_formula = {"binance": lambda r, c: binance(r, r["mm"]), "hl_index": lambda r, c: hl_index(r)}[base]
    differ = 0
    for st in truth["steps"]:
        for r in st["pool"]:
            assert r["score"] == pytest.approx(formula(r, st["coin"]), rel=1e-9, abs=1e-15)
        mine = _walk(st["pool"], lambda r, c=st["coin"]: formula(r, c))
        other = _walk(st["pool"], lambda r, c=st["coin"]: base_formula(r, c))
        k = len(st["selected"])
        differ += mine[: k + 5] != other[: k + 5]
    assert differ > 0


def test_rule_switch(tmp_path):
    """hl_index, then bitmex from the middle wave on: every action ranks by the rule of its wave, the truth
    names the windows and the change point, and everything before the switch is the single-rule cascade."""
    a, b = tmp_path / "switch", tmp_path / "single"
    scen = generate(a, scale="tiny", seed=SEED, policy="hl_index", switch_policy="bitmex", switch_at=0.5, exempt=3)
    generate(b, scale="tiny", seed=SEED, policy="hl_index", exempt=3)
    truth, single = _truth(a), _truth(b)
    sw = truth["switch"]
    assert sw["policy"] == "bitmex" and sw["at"] == 0.5
    assert sw["wave"] == min(max(1, math.floor(0.5 * sw["waves_without_switch"] + 0.5)), sw["waves_without_switch"] - 1)
    waves = {s: w["wave"] for w in truth["waves"] for s in w["steps"]}
    for st in truth["steps"]:
        assert st["wave"] == waves[st["step"]]  # counted as the steps happened = counted afterwards
        assert st["rule"] == ("bitmex" if st["wave"] >= sw["wave"] else "hl_index")
        score = bitmex if st["rule"] == "bitmex" else hl_index
        for r in st["pool"]:
            assert r["score"] == pytest.approx(score(r), rel=1e-9)
    check_truth_order(truth)
    (cp,) = truth["change_points"]
    first = next(st for st in truth["steps"] if st["rule"] == "bitmex")
    assert cp == {
        "step": first["step"],
        "wave": sw["wave"],
        "time_ms": first["time"],
        "block_number": first["block_number"],
        "from_rule": "hl_index",
        "to_rule": "bitmex",
    }
    w1, w2 = truth["rule_windows"]
    assert (w1["rule"], w1["first_step"], w1["last_step"] + 1) == ("hl_index", 0, first["step"])
    assert (w2["rule"], w2["first_step"], w2["last_step"]) == ("bitmex", first["step"], len(truth["steps"]) - 1)
    assert w2["from_ms"] == first["time"] and w2["first_wave"] == sw["wave"]
    # the same cascade up to the switch, another one from it on
    assert truth["steps"][: first["step"]] == single["steps"][: first["step"]]
    assert [w["rule"] for w in single["rule_windows"]] == ["hl_index"]
    assert single["change_points"] == [] and single["switch"] is None
    before = [f for f in _adl_fills(a, scen) if f[0] < cp["block_number"]]
    assert before and before == [f for f in _adl_fills(b, scen) if f[0] < cp["block_number"]]
    assert _adl_fills(a, scen) != _adl_fills(b, scen)


def test_capped_exemptions(tmp_path):
    """Planted accounts are never skipped; when the rule takes from one it gives up 30% of that (rounded down
    to whole lots, at least one), the next in line gives the rest, and the fills say exactly that."""
    scen = generate(tmp_path, scale="tiny", seed=SEED, exempt=3, exempt_kind="capped", exempt_cap=0.3)
    truth = _truth(tmp_path)
    assert truth["exempt_kind"] == "capped" and truth["exempt_cap"] == 0.3 and len(truth["exempt"]) == 3
    assert truth["params"]["exempt_kind"] == "capped"
    exempt = set(truth["exempt"])
    lot = {c: 10.0**-d for c, d in _sz_decimals(tmp_path).items()}
    capped = Counter()
    for st in truth["steps"]:
        assert st["skipped_exempt"] == []
        rows = {r["user"]: r for r in st["pool"]}
        need = st["needed_size"]
        for i, u in enumerate(_walk(st["pool"], hl_index)):  # nobody skipped, capped rows closed to 30%
            if need <= 1e-9:
                assert not rows[u]["selected"]
                continue
            take = min(need, abs(rows[u]["size"]))
            if u in exempt:
                (c,) = [x for x in st["capped_exempt"] if x["user"] == u]
                assert c["rank"] == i and c["rule_take"] == pytest.approx(take)
                rule_lots = round(take / lot[st["coin"]])
                take = capped_take(rule_lots, 0.3) * lot[st["coin"]]
                assert c["taken"] == pytest.approx(take) and (take < c["rule_take"] or rule_lots == 1)
                capped[u] += 1
            assert rows[u]["closed_size"] == pytest.approx(take)
            need -= take
        assert {c["user"] for c in st["capped_exempt"]} <= exempt
    assert sum(capped.values()) >= 3
    # the fills: capped accounts are ADL'd with exactly their capped takes
    taken: Counter[str] = Counter()
    for _b, u, f in _adl_fills(tmp_path, scen):
        if u in exempt:
            taken[u] += float(f["sz"])
    assert set(taken) == set(capped)
    for u in exempt:
        want = sum(c["taken"] for st in truth["steps"] for c in st["capped_exempt"] if c["user"] == u)
        assert taken[u] == pytest.approx(want)


def _sz_decimals(path: Path) -> dict[str, int]:
    first = orjson.loads((path / "asset_ctxs/asset_ctxs.jsonl").read_bytes().splitlines()[0])
    return {u["name"]: u["szDecimals"] for u in first["ctxs"][0]["universe"]}


def test_capped_take():
    assert [capped_take(n, 0.3) for n in (0, 1, 2, 3, 4, 10, 11)] == [0, 1, 1, 1, 1, 3, 3]
    assert capped_take(10, 0.7) == 7  # 0.7 * 10 is 6.999... in binary


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"switch_policy": "hl_index"}, "another policy"),
        ({"switch_policy": "bitmex", "switch_at": 1.0}, "between 0 and 1"),
        ({"switch_policy": "nope"}, "unknown policy"),
        ({"exempt_kind": "sometimes"}, "unknown exempt_kind"),
        ({"exempt_kind": "capped", "exempt_cap": 1.0}, "between 0 and 1"),
        ({"exempt_kind": "capped", "policy": "contracts_pro_rata"}, "walk policy"),
        ({"exempt_kind": "capped", "switch_policy": "wealth_pro_rata"}, "walk policy"),
    ],
)
def test_behaviour_arguments_are_checked(tmp_path, kw, message):
    with pytest.raises(ValueError, match=message):
        generate(tmp_path, scale="tiny", seed=SEED, **kw)
    assert not list(tmp_path.iterdir())  # refused before anything is written


def test_switch_needs_two_waves(tmp_path):
    """A cascade with a single ADL wave cannot switch rules: a clear error, not a silent single-rule truth."""
    for seed in range(1, 40):
        scen = generate(tmp_path / f"s{seed}", scale="tiny", seed=seed, exempt=0)
        if scen["counts"]["waves"] == 1:
            with pytest.raises(ValueError, match="ADL wave"):
                generate(tmp_path / "x", scale="tiny", seed=seed, exempt=0, switch_policy="bitmex")
            return
    pytest.skip("no single-wave tiny cascade among seeds 1-39")


def test_policies_listed():
    assert {"binance_position_mm", "hl_index_short_inverse", "hl_node_score"} <= set(POLICIES)
    assert all(POLICIES[p].kind == "queue" for p in ("binance_position_mm", "hl_index_short_inverse", "hl_node_score"))
    assert not POLICIES["contracts_pro_rata"].walks and POLICIES["random_cyclic"].walks


def test_node_score_is_bitmex_on_profitable_positions():
    """OtterSec's node score and BitMEX's PnL% x effective leverage coincide wherever the position is in profit
    (both are pnl/entry_notional x notional/account_value), so a cascade whose walk stops among profitable
    positions cannot tell them apart; a losing position scores the floor under one and a negative under the
    other."""
    import numpy as np

    size, entry = np.array([2.0, 1.0, 3.0, 1.0]), np.array([100.0, 50.0, 10.0, 100.0])
    mark, av = np.array([110.0, 60.0, 10.5, 90.0]), np.array([50.0, 20.0, 4.0, 30.0])
    upnl, notional = size * (mark - entry), size * mark
    f = {"size": size, "entry": entry, "mark": mark, "upnl": upnl, "notional": notional, "account_value": av}
    f["leverage"] = notional / av
    node, mex = POLICIES["hl_node_score"].score_fn(f), POLICIES["bitmex"].score_fn(f)
    profit = upnl > 0
    assert node[profit] == pytest.approx(mex[profit], rel=1e-12)
    rows = [dict(zip(f, vals)) for vals in zip(*f.values())]
    assert node[profit] == pytest.approx([hl_node_score(r) for r in rows if r["upnl"] > 0], rel=1e-12)
    assert node[~profit][0] == pytest.approx(1e-8 * max(notional[3] / av[3], 1e-8)) and mex[~profit][0] < 0
