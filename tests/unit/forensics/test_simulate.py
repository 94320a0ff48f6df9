"""Tests of the cascade simulator (tiny scale): formats, replay, conservation, ADL truth, determinism."""

from __future__ import annotations

import json
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import lz4.frame
import orjson
import pytest

from forensics.simulate import POLICIES, SCALES, generate
from tests.conftest import PROJECT_ROOT

REAL_ROOT = PROJECT_ROOT.parent / "shared" / "realdata" / "HyperMultiAssetedADL"
FILL_KEYS = [
    "coin",
    "px",
    "sz",
    "side",
    "time",
    "startPosition",
    "dir",
    "closedPnl",
    "hash",
    "oid",
    "crossed",
    "fee",
    "tid",
    "feeToken",
]
DIRS = {"Open Long", "Open Short", "Close Long", "Close Short", "Long > Short", "Short > Long", "Auto-Deleveraging"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim_tiny")
    scen = generate(out, scale="tiny", seed=11)
    return out, scen


def read_blocks(out: Path, scen: dict) -> list[dict]:
    lines = []
    for rel in scen["paths"]["fills"]:
        data = lz4.frame.decompress((out / rel).read_bytes())
        lines += [orjson.loads(x) for x in data.splitlines()]
    return lines


def read_snapshot(out: Path) -> list[dict]:
    return [orjson.loads(x) for x in (out / "snapshots/clearinghouse_state.jsonl").read_bytes().splitlines()]


def all_fills(blocks):
    for blk in blocks:
        for user, fill in blk["events"]:
            yield blk, user, fill


def test_api_surface():
    assert set(POLICIES) == {
        "hl_index",
        "bitmex",
        "binance",
        "upnl",
        "leverage",
        "lexicographic",
        "random_cyclic",
        "contracts_pro_rata",
        "wealth_pro_rata",
        "binance_position_mm",
        "hl_index_short_inverse",
        "hl_node_score",
    }
    assert {"tiny", "small", "medium", "full"} <= set(SCALES)
    for p in POLICIES.values():
        assert p.source


def test_files_and_shapes(tiny):
    out, scen = tiny
    assert json.loads((out / "scenario.json").read_text())["counts"] == scen["counts"]
    blocks = read_blocks(out, scen)
    assert len(blocks) == scen["counts"]["blocks"]
    prev = -1
    tids = defaultdict(int)
    for blk in blocks:
        assert list(blk) == ["local_time", "block_time", "block_number", "events"]
        assert blk["block_number"] > prev
        prev = blk["block_number"]
        assert len(blk["block_time"]) == 29 and blk["block_time"][10] == "T" and "+" not in blk["block_time"]
        for user, fill in blk["events"]:
            assert user.startswith("0x") and len(user) == 42 and user == user.lower()
            keys = [k for k in fill if k != "liquidation"]
            assert keys == FILL_KEYS
            if "liquidation" in fill:
                assert list(fill).index("liquidation") == len(fill) - 2
                assert set(fill["liquidation"]) == {"liquidatedUser", "markPx", "method"}
            for k in ("px", "sz", "startPosition", "closedPnl", "fee"):
                assert isinstance(fill[k], str) and "e" not in fill[k].lower() and "." in fill[k]
            assert fill["side"] in ("B", "A") and fill["dir"] in DIRS and fill["feeToken"] == "USDC"
            assert isinstance(fill["time"], int) and isinstance(fill["tid"], int)
            assert fill["hash"].startswith("0x") and len(fill["hash"]) == 66
            tids[fill["tid"]] += 1
    assert set(tids.values()) == {2}  # both legs of every trade
    assert scen["counts"]["fills"] == sum(tids.values())
    ctx = [orjson.loads(x) for x in (out / "asset_ctxs/asset_ctxs.jsonl").read_bytes().splitlines()]
    meta, ctxs = ctx[0]["ctxs"]
    assert [u["name"] for u in meta["universe"]] and len(ctxs) == len(meta["universe"])
    assert {
        "dayNtlVlm",
        "funding",
        "impactPxs",
        "markPx",
        "midPx",
        "openInterest",
        "oraclePx",
        "premium",
        "prevDayPx",
        "dayBaseVlm",
    } == set(ctxs[0])
    snap = read_snapshot(out)
    assert any(s["user"] == scen["vault"] for s in snap)
    assert any(not s["state"]["assetPositions"] for s in snap)  # cash-only accounts exist
    kinds = set()
    for s in snap:
        st = s["state"]
        assert set(st) == {
            "marginSummary",
            "crossMarginSummary",
            "crossMaintenanceMarginUsed",
            "withdrawable",
            "assetPositions",
            "time",
        }
        for ap in st["assetPositions"]:
            assert ap["type"] == "oneWay"
            pos = ap["position"]
            kinds.add(pos["leverage"]["type"])
            assert isinstance(pos["leverage"]["value"], int) and isinstance(pos["maxLeverage"], int)
            if pos["leverage"]["type"] == "isolated":
                assert "rawUsd" in pos["leverage"]
    assert kinds == {"cross", "isolated"}
    vd = [orjson.loads(x) for x in (out / "vaults/vault_details.jsonl").read_bytes().splitlines()]
    assert vd and vd[-1]["vaultDetails"]["vaultAddress"] == scen["vault"]


def replay(out: Path, scen: dict):
    """Plain-dict replay: positions (Decimal), entries and cash from the snapshot plus every fill."""
    szd = {}
    pos: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    entry: dict[tuple[str, str], float] = {}
    cash: dict[str, float] = defaultdict(float)
    for s in read_snapshot(out):
        st = s["state"]
        upnl = sum(float(ap["position"]["unrealizedPnl"]) for ap in st["assetPositions"])
        cash[s["user"]] = float(st["marginSummary"]["accountValue"]) - upnl
        for ap in st["assetPositions"]:
            p = ap["position"]
            pos[(s["user"], p["coin"])] = Decimal(p["szi"])
            entry[(s["user"], p["coin"])] = float(p["entryPx"])
    fees = 0.0
    mismatches = []
    pnl_err = 0.0
    for blk, user, f in all_fills(read_blocks(out, scen)):
        k = (user, f["coin"])
        start = Decimal(f["startPosition"])
        if start != pos[k]:
            mismatches.append((blk["block_number"], user, f["coin"], f["startPosition"], str(pos[k])))
        sz = Decimal(f["sz"])
        d = sz if f["side"] == "B" else -sz
        px = float(f["px"])
        old = pos[k]
        new = old + d
        # closedPnl with Hyperliquid semantics
        e = entry.get(k, 0.0)
        if old == 0 or (old > 0) == (d > 0):
            exp_pnl = 0.0
            entry[k] = px if old == 0 else (e * float(abs(old)) + px * float(abs(d))) / float(abs(old) + abs(d))
        else:
            closing = float(min(abs(d), abs(old)))
            exp_pnl = closing * (px - e) * (1 if old > 0 else -1)
            if abs(d) > abs(old):
                entry[k] = px
        pnl_err = max(pnl_err, abs(exp_pnl - float(f["closedPnl"])) / max(1.0, abs(exp_pnl)))
        pos[k] = new
        if new == 0:
            entry.pop(k, None)
        cash[user] += float(f["closedPnl"]) - float(f["fee"])
        fees += float(f["fee"])
        szd[f["coin"]] = max(szd.get(f["coin"], 0), len(f["sz"].split(".")[1].rstrip("0")))
    return pos, entry, cash, fees, mismatches, pnl_err, szd


def test_replay_start_positions_pnl_and_conservation(tiny):
    out, scen = tiny
    snap = read_snapshot(out)
    # conserved: sum(cash - szi*entry) + fees (sum of szi is zero per coin, so marks drop out)
    k0 = 0.0
    for s in snap:
        st = s["state"]
        k0 += float(st["marginSummary"]["accountValue"]) - sum(
            float(a["position"]["unrealizedPnl"]) + float(a["position"]["szi"]) * float(a["position"]["entryPx"])
            for a in st["assetPositions"]
        )
    pos, entry, cash, fees, mism, pnl_err, _ = replay(out, scen)
    assert not mism, mism[:5]
    assert pnl_err < 1e-6
    by_coin = defaultdict(Decimal)
    for (_u, c), q in pos.items():
        by_coin[c] += q
    assert all(v == 0 for v in by_coin.values())  # zero net open interest per coin
    k1 = sum(cash.values()) - sum(float(q) * entry[k] for k, q in pos.items() if q != 0) + fees
    assert abs(k1 - k0) < 1e-6 * scen["counts"]["fills"] + 1e-6 * abs(k0) ** 0.5 + 0.05
    truth = json.loads((out / "truth.json").read_text())
    assert abs(truth["ledger"]["conservation_error"]) < 1e-3
    assert abs(truth["ledger"]["fee_sink"] - fees) < 1e-3


def test_dir_consistency(tiny):
    out, scen = tiny
    for _blk, _user, f in all_fills(read_blocks(out, scen)):
        start, sz = Decimal(f["startPosition"]), Decimal(f["sz"])
        buy = f["side"] == "B"
        if f["dir"] == "Auto-Deleveraging":
            assert (start < 0 and buy) or (start > 0 and not buy)  # ADL only reduces
            assert sz <= abs(start)
            continue
        if start == 0 or (start > 0) == buy:
            assert f["dir"] == ("Open Long" if buy else "Open Short")
        elif sz <= abs(start):
            assert f["dir"] == ("Close Short" if buy else "Close Long")
        else:
            assert f["dir"] == ("Short > Long" if buy else "Long > Short")


def test_liquidation_and_adl_legs(tiny):
    out, scen = tiny
    vault = scen["vault"]
    by_tid = defaultdict(list)
    n_adl = 0
    for blk, user, f in all_fills(read_blocks(out, scen)):
        by_tid[f["tid"]].append((blk["block_number"], user, f))
    methods = set()
    for legs in by_tid.values():
        (b1, u1, f1), (b2, u2, f2) = legs
        assert b1 == b2 and f1["coin"] == f2["coin"] and f1["px"] == f2["px"] and f1["sz"] == f2["sz"]
        assert {f1["side"], f2["side"]} == {"A", "B"}
        assert ("liquidation" in f1) == ("liquidation" in f2)
        if "liquidation" in f1:
            assert f1["liquidation"] == f2["liquidation"]
            methods.add(f1["liquidation"]["method"])
        adl = [(u, f) for _, u, f in legs if f["dir"] == "Auto-Deleveraging"]
        if adl:
            n_adl += 1
            ((wu, wf),) = adl
            ((vu, vf),) = [(u, f) for _, u, f in legs if f["dir"] != "Auto-Deleveraging"]
            assert vu == vault and wu != vault
            assert wf["liquidation"]["method"] == "backstop" and wf["liquidation"]["liquidatedUser"] == vault
            assert vf["dir"] in ("Close Long", "Close Short")
            # opposite side of the liquidated (vault) position, same coin
            assert (Decimal(wf["startPosition"]) > 0) != (Decimal(vf["startPosition"]) > 0)
            assert wf["fee"] == "0.0"
    assert n_adl == scen["counts"]["adl_fills"] > 0
    assert {"market", "backstop"} <= methods or "backstop" in methods


def check_truth_order(truth: dict) -> int:
    """Per step: eligibility, exemptions, and the policy's order. Returns the number of skip events."""
    kind = truth["policy_kind"]
    exempt = set(truth["exempt"])
    skips = 0
    for st in truth["steps"]:
        side = st["liquidated_side"]
        pool = st["pool"]
        assert all((r["size"] < 0) if side == "long" else (r["size"] > 0) for r in pool)
        assert all(r["eligible"] and r["account_value"] > 0 for r in pool)
        assert all(r["exempt"] == (r["user"] in exempt) for r in pool)
        assert not any(r["selected"] for r in pool if r["exempt"])
        sel = sorted((r for r in pool if r["selected"]), key=lambda r: r["fill_order"])
        assert [r["user"] for r in sel] == st["selected"]
        assert abs(sum(r["closed_size"] for r in pool) - st["closed_total"]) < 1e-6
        skips += bool(st["skipped_exempt"])
        if kind == "pro_rata":
            assert (
                all(r["selected"] for r in pool if not r["exempt"])
                or st["closed_total"] < st["needed_size"]
                or any(r["partial"] for r in pool)
                or len(sel) > 0
            )
            continue
        if kind in ("queue", "lexicographic", "cyclic") and not st["pool_truncated"]:
            ranked = sorted(pool, key=lambda r: (-r["score"], r["user"]))
            walk = [r for r in ranked if not r["exempt"]][: len(sel)]
            assert [r["user"] for r in walk] == st["selected"]
            # all but the last selected are closed fully
            assert all(not r["partial"] for r in sel[:-1])
            last = ranked.index(sel[-1]) if sel else -1
            assert sorted(st["skipped_exempt"]) == sorted(r["user"] for r in ranked[:last] if r["exempt"])
    return skips


def test_truth_policy_order_and_exemptions(tiny):
    out, scen = tiny
    truth = json.loads((out / "truth.json").read_text())
    assert truth["policy"] == "hl_index" and len(truth["exempt"]) == 5
    assert truth["steps"]
    skips = check_truth_order(truth)
    assert skips >= 1  # planted exempt accounts are passed over
    # exempt accounts never appear as ADL winners in the data
    ex = set(truth["exempt"])
    for _b, u, f in all_fills(read_blocks(out, scen)):
        if f["dir"] == "Auto-Deleveraging":
            assert u not in ex
    # hl_index scores recomputed from the pool features
    for st in truth["steps"][:20]:
        for r in st["pool"]:
            ratio = r["mark"] / r["entry"] if r["size"] > 0 else r["entry"] / r["mark"]
            assert r["score"] == pytest.approx(ratio * r["notional"] / r["account_value"], rel=1e-9)
    assert set(ex) <= set(scen["tracked_users"])


@pytest.mark.parametrize("policy", ["bitmex", "lexicographic", "random_cyclic", "contracts_pro_rata"])
def test_other_policies(tmp_path, policy):
    scen = generate(tmp_path, scale="tiny", seed=3, policy=policy, exempt=3)
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert truth["policy"] == policy and truth["steps"]
    check_truth_order(truth)
    if policy == "contracts_pro_rata":
        parts = [r["partial"] for st in truth["steps"] for r in st["pool"] if r["selected"]]
        assert sum(parts) > 0.5 * len(parts)
        for st in truth["steps"]:
            rows = [r for r in st["pool"] if not r["exempt"]]
            tot = sum(abs(r["size"]) for r in rows)
            if st["closed_total"] < tot * 0.999:
                for r in rows:
                    share = st["closed_total"] * abs(r["size"]) / tot
                    assert abs(r["closed_size"] - share) <= 1.0 + 1e-9  # within one lot (<= 1 coin)
    assert scen["counts"]["adl_fills"] > 0


def test_determinism_and_noise(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate(a, scale="tiny", seed=5)
    generate(b, scale="tiny", seed=5)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    s = generate(
        c,
        scale="tiny",
        seed=5,
        noise={"drop_fills": 0.1, "mark_jitter": 0.001, "clock_skew_ms": 5, "stale_snapshot": 50},
    )
    assert 0 < s["counts"]["fills_dropped"] < s["counts"]["fills_generated"]
    ta, tc = json.loads((a / "truth.json").read_text()), json.loads((c / "truth.json").read_text())
    assert ta["steps"] == tc["steps"]  # noise never touches the truth
    assert s["window"]["start_ms"] > s["snapshot_time"]


def test_calibration_ks(tiny):
    _out, scen = tiny
    ks = scen["calibration"]["ks"]
    if not REAL_ROOT.exists():
        pytest.skip(f"real data absent: {REAL_ROOT}")
    assert ks["real_data"]
    for k in ("pnl_percent", "leverage", "coin_event_share", "coin_notional_share"):
        assert 0.0 <= ks[k]["statistic"] <= 1.0
    assert ks["first_adl_delay_s"]["sim"] is not None
