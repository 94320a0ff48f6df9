"""Funding and ledger cash in the replay: placement between fills, isolated funding, UNCONFIRMED settings,
the liquidation-summary check; and the independent real-layout scenario (pools and scores vs its truth)."""

from __future__ import annotations

import json
from decimal import Decimal

import numpy as np
import polars as pl
import pytest

from forensics.reconstruct import build_state, build_steps_and_pools
from forensics.reconstruct.cash import CashSettings, cash_events, ledger_delta
from forensics.reconstruct.liquidation_check import check_liquidations, error_summary
from tests.conftest import SHARED

A, B, C, V = ("0x" + c * 40 for c in "abcd")
DEC = pl.Decimal(38, 10)


def _fills(rows):
    """rows: (block, user, coin, side, px, sz, start, is_adl, liquidated_user)"""
    out = []
    for k, (blk, user, coin, side, px, sz, start, adl, liq) in enumerate(rows):
        out.append(
            {
                "block_number": blk,
                "event_index": k,
                "tid": 1000 + k // 2,
                "time_ms": 1_760_000_000_000 + blk,
                "user": user,
                "coin": coin,
                "side": side,
                "px": Decimal(px),
                "sz": Decimal(sz),
                "start_position": Decimal(start),
                "closed_pnl": Decimal(0),
                "fee": Decimal(0),
                "is_adl": adl,
                "liquidated_user": liq,
                "liquidation_mark_px": Decimal(px) if liq else None,
                "liquidation_method": "backstop" if liq else None,
            }
        )
    return pl.DataFrame(
        out,
        schema_overrides={
            "px": DEC,
            "sz": DEC,
            "start_position": DEC,
            "closed_pnl": DEC,
            "fee": DEC,
            "liquidation_mark_px": DEC,
        },
    )


def _snapshot(users_pos):
    acc = pl.DataFrame(
        [{"user": u, "time_ms": 1_760_000_000_000, "account_value": Decimal(av)} for u, av, _ in users_pos],
        schema_overrides={"account_value": DEC},
    )
    pos = pl.DataFrame(
        [
            {
                "user": u,
                "coin": "BTC",
                "time_ms": 1_760_000_000_000,
                "szi": Decimal(szi),
                "entry_px": Decimal(100),
                "unrealized_pnl": Decimal(0),
                "margin_used": Decimal(mu),
                "leverage_type": mode,
                "leverage": 5,
                "max_leverage": 10,
            }
            for u, _, (szi, mode, mu) in users_pos
        ],
        schema_overrides={"szi": DEC, "entry_px": DEC, "unrealized_pnl": DEC, "margin_used": DEC},
    )
    return pos, acc


def _ledger(rows):
    return pl.DataFrame(
        [
            {
                "user": u,
                "type": t,
                "delta_json": json.dumps(d),
                "block_number": b,
                "event_index": 1,
                "time_ms": 1_760_000_000_000 + b,
            }
            for u, t, d, b in rows
        ]
    )


def _funding(rows):
    return pl.DataFrame(
        [
            {
                "user": u,
                "coin": c,
                "block_number": b,
                "event_index": 1,
                "delta_index": k,
                "time_ms": 1_760_000_000_000 + b,
                "funding_amount": Decimal(a),
            }
            for k, (u, c, a, b) in enumerate(rows)
        ],
        schema_overrides={"funding_amount": DEC},
    )


def _scenario():
    # A long BTC cross, B long BTC isolated, V (vault) short; ADL at block 20 closes A against V
    pos, acc = _snapshot(
        [(A, "1000", ("2", "cross", "40")), (B, "500", ("1", "isolated", "20")), (V, "1e6", ("-3", "cross", "60"))]
    )
    fills = _fills(
        [
            (10, C, "BTC", "B", "100", "1", "0", False, None),
            (10, V, "BTC", "A", "100", "1", "-3", False, None),
            (20, A, "BTC", "A", "110", "1", "2", True, V),
            (20, V, "BTC", "B", "110", "1", "-4", False, V),
        ]
    )
    return fills, pos, acc


def _pool(cash=None, **kw):
    fills, pos, acc = _scenario()
    _, pools = build_steps_and_pools(fills, pos, acc, None, vault=V, cash=cash, **kw)
    return {r["user"]: r for r in pools.iter_rows(named=True)}


def test_cash_events_move_account_values_at_the_step():
    base = _pool()
    cash, counts = cash_events(
        _ledger(
            [
                (A, "deposit", {"type": "deposit", "usdc": "250"}, 15),
                (A, "withdraw", {"type": "withdraw", "usdc": "100", "fee": "1"}, 21),
            ]
        ),
        _funding([(A, "BTC", "-3.5", 12), (B, "BTC", "2.25", 12)]),
    )
    got = _pool(cash)
    # deposit and funding before the step count; the withdrawal after it does not
    assert got[A]["account_value_usd"] - base[A]["account_value_usd"] == pytest.approx(250 - 3.5)
    assert got[A]["wallet_balance_usd"] - base[A]["wallet_balance_usd"] == pytest.approx(250 - 3.5)
    # isolated funding goes into the isolated margin: B's (isolated) account value moves by it
    assert got[B]["account_value_usd"] - base[B]["account_value_usd"] == pytest.approx(2.25)
    assert counts == {"deposit": 1, "withdraw": 1, "funding": 2}


def test_a_blocks_misc_events_apply_before_its_fills_unless_set_otherwise():
    cash, _ = cash_events(_ledger([(A, "deposit", {"type": "deposit", "usdc": "77"}, 20)]), None)
    before, base = _pool(cash), _pool()
    after = _pool(cash, misc_before_fills=False)
    assert before[A]["account_value_usd"] - base[A]["account_value_usd"] == pytest.approx(77)
    assert after[A]["account_value_usd"] == pytest.approx(base[A]["account_value_usd"])


def test_events_before_the_snapshot_are_not_applied_twice():
    fills, pos, acc = _scenario()
    cash, _ = cash_events(_ledger([(A, "deposit", {"type": "deposit", "usdc": "5"}, -50)]), None)
    state = build_state(fills, pos, acc, cash)
    assert state["cash"].height == 0


@pytest.mark.parametrize(
    "kind, delta, me, settings, expected",
    [
        ("withdraw", {"usdc": "10", "fee": "1"}, A, {}, "-11"),
        ("withdraw", {"usdc": "10", "fee": "1"}, A, {"withdraw": "usdc_only"}, "-10"),
        ("internalTransfer", {"usdc": "10", "fee": "1", "user": A, "destination": B}, A, {}, "-11"),
        ("internalTransfer", {"usdc": "10", "fee": "1", "user": A, "destination": B}, B, {}, "10"),
        (
            "internalTransfer",
            {"usdc": "10", "fee": "1", "user": A, "destination": B},
            A,
            {"internalTransfer": "ignore"},
            None,
        ),
        ("accountClassTransfer", {"usdc": "7", "toPerp": False}, A, {}, "-7"),
        ("subAccountTransfer", {"usdc": "7", "user": A, "destination": B}, B, {}, "7"),
        ("vaultDeposit", {"usdc": "7", "vault": B}, A, {}, "-7"),
        ("vaultDeposit", {"usdc": "7", "vault": B}, B, {}, "7"),
        ("vaultWithdraw", {"vault": B, "user": A, "netWithdrawnUsd": "6.5"}, A, {}, "6.5"),
        ("spotTransfer", {"token": "USDC", "amount": "7", "usdcValue": "7", "user": A, "destination": B}, A, {}, None),
        (
            "send",
            {
                "token": "USDC",
                "amount": "7",
                "user": A,
                "destination": B,
                "sourceDex": "",
                "destinationDex": "spot",
                "fee": "0",
            },
            B,
            {},
            None,
        ),
        (
            "send",
            {
                "token": "USDC",
                "amount": "7",
                "user": A,
                "destination": B,
                "sourceDex": "",
                "destinationDex": "",
                "fee": "0",
            },
            B,
            {},
            "7",
        ),
        ("liquidation", {"accountValue": "100", "liquidatedNtlPos": "1"}, A, {}, None),
        ("vaultDistribution", {"vault": B, "usdc": "3"}, A, {}, None),
    ],
)
def test_ledger_delta_rules(kind, delta, me, settings, expected):
    s = CashSettings(unconfirmed={**CashSettings().unconfirmed, **settings})
    got = ledger_delta(me, kind, {"type": kind, **delta}, s)
    assert got == (None if expected is None else Decimal(expected))


def test_liquidation_summaries_are_checked_not_applied():
    fills, pos, acc = _scenario()
    state = build_state(fills, pos, acc)
    # A at block 20, before its fills: wallet 1000 + 2 * (110 - 100), 110 being the block's liquidation.markPx
    liq = pl.DataFrame(
        [
            {
                "user": A,
                "block_number": 20,
                "time_ms": 1_760_000_000_020,
                "leverage_type": "Cross",
                "account_value": Decimal("990"),
                "liquidated_positions": "[]",
            }
        ],
        schema_overrides={"account_value": DEC},
    )
    chk = check_liquidations(state, liq)
    assert chk["replayed"][0] == pytest.approx(1020.0) and chk["error"][0] == pytest.approx(30.0)
    assert error_summary(chk)["abs_median"] == pytest.approx(30.0)


# --- the independent generator's real-layout scenario -------------------------------------------------------

REAL = SHARED / "scenarios" / "independent" / "bitmex-real-s2026"


@pytest.fixture(scope="module")
def real_lake(tmp_path_factory):
    if not (REAL / "truth.json").exists():
        pytest.skip(f"independent scenario not available: ../shared/scenarios/independent/{REAL.name}")
    from rich.console import Console

    from pipelines.ingest.runner import run_file_ingest
    from pipelines.lake import Lake

    lake = Lake(tmp_path_factory.mktemp("real") / "lake")
    reports = run_file_ingest(
        lake,
        node_fills=[REAL / "node_fills_by_block"],
        misc_events=[REAL / "misc_events_by_block"],
        snapshot=[REAL / "snapshot"],
        asset_ctxs=REAL / "asset_ctxs" / "20251010.csv.lz4",
        console=Console(quiet=True),
    )
    assert all(r.records_read == r.records_written + r.quarantined for r in reports)
    return lake, json.loads((REAL / "truth.json").read_text())


def _pools_vs_truth(lake, truth, *, with_cash: bool):
    from pipelines.analysis.inputs import archive_mark_age, load_inputs

    i = load_inputs(lake)
    cash = cash_events(i.ledger, i.funding)[0] if with_cash else None
    steps, pools = build_steps_and_pools(
        i.fills,
        i.positions,
        i.accounts,
        i.asset_ctxs,
        vault=None,
        cash=cash,
        max_mark_age_ms=archive_mark_age(i.asset_ctxs),
    )
    pools = pools.filter(~pl.col("user").is_in(truth["liquidator_vaults"])).with_columns(
        pl.when(pl.col("pnl_pct_price") > 0)
        .then(pl.col("pnl_pct_price") * pl.col("leverage"))
        .otherwise(pl.col("pnl_pct_price") / pl.col("leverage"))
        .alias("score")
    )
    matched = superset = same_size = 0
    rel = []
    seen: dict[tuple, int] = {}
    for t in sorted(truth["steps"], key=lambda t: t["step"]):
        # one truth action per (block, coin, vault, tx): the k-th of its (block, coin, vault) is our k-th step there
        key = (t["block_number"], t["coin"], t["vault"])
        k = seen[key] = seen.get(key, -1) + 1
        m = steps.filter(
            (pl.col("block_number") == key[0]) & (pl.col("coin") == key[1]) & (pl.col("liquidated_user") == key[2])
        ).sort("step_id")
        if m.height <= k:
            continue
        matched += 1
        p = pools.filter(pl.col("step_id") == m["step_id"][k])
        score = dict(zip(p["user"], p["score"]))
        superset += set(t["eligible_users"]) <= set(score)
        same_size += p.height == t["n_eligible"]
        rel += [
            abs(score[u] - s) / max(abs(s), 1e-12)
            for u, s in zip(t["eligible_users"], t["eligible_scores"])
            if u in score
        ]
    return matched, superset, same_size, np.array(rel)


def test_real_layout_scenario_pools_and_scores(real_lake):
    """Every truth ADL action is found; with funding and ledger cash applied every pool has truth's size and holds
    the top-ranked eligible accounts truth lists, and the median score (so account value) error is at rounding
    level; without the cash events neither holds. Other coins' marks inside a minute are approximations (the
    archive has one per minute), so scores are not all exact."""
    lake, truth = real_lake
    n, superset, same_size, rel = _pools_vs_truth(lake, truth, with_cash=True)
    assert n == len(truth["steps"]) and superset == n and same_size == n  # every pool: truth's size, its top ranks
    _, _, same_size_no_cash, rel_no_cash = _pools_vs_truth(lake, truth, with_cash=False)
    assert same_size_no_cash < same_size
    assert np.median(rel) < 1e-9 < np.median(rel_no_cash)
    assert (rel < 1e-6).mean() > (rel_no_cash < 1e-6).mean()


def test_real_layout_liquidation_summaries_match_cross_accounts(real_lake):
    from pipelines.analysis.inputs import archive_mark_age, load_inputs
    from pipelines.analysis.reconstruct import liquidation_errors

    lake, _ = real_lake
    i = load_inputs(lake)
    settings = CashSettings()
    check = liquidation_errors(
        i, cash_events(i.ledger, i.funding, settings)[0], settings, archive_mark_age(i.asset_ctxs)
    )
    assert check["all"]["events"] == i.liquidation_events.height > 0
    assert check["cross"]["rel_median"] < 1e-9 and check["cross"]["within_1pct"] > 0.8
