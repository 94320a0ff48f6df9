"""Keeper forensics on GMX position events: open positions, ADL actions and their pools in the canonical
layout, positions open since before the data, and what the integrity summary says."""

from __future__ import annotations

from decimal import Decimal

import polars as pl

from forensics.audit import identify
from forensics.gmx_forensics import adl_evidence, adl_steps_and_pools, open_positions
from forensics.tables import ADL_POOLS, ADL_STEPS

M = "0x" + "99" * 20
M8 = "0x" + "88" * 20  # a market whose index token has 8 decimals


def _ev(
    block,
    log,
    account,
    kind,
    size_usd,
    tokens,
    *,
    adl=False,
    delta=0.0,
    delta_usd=0.0,
    price=2000.0,
    collateral=1000.0,
    market=M,
    decimals=18,
    is_long=True,
    tx=None,
):
    return {
        "block_number": block,
        "log_index": log,
        "time_ms": block * 1000,
        "tx_hash": tx or f"0x{block:04x}{log:04x}",
        "account": account,
        "market": market,
        "market_name": "ETH/USD" if market == M else "BTC/USD",
        "collateral_token": "0x" + "33" * 20,
        "is_long": is_long,
        "event_name": "PositionIncrease" if kind == "inc" else "PositionDecrease",
        "is_adl": adl,
        "size_in_usd": Decimal(size_usd),
        "size_in_tokens_raw": str(int(tokens * 10**decimals)),
        "size_delta_usd": Decimal(delta_usd),
        "size_delta_in_tokens_raw": str(int(delta * 10**decimals)),
        "collateral_usd": Decimal(collateral),
        "execution_price": Decimal(price),
        "index_price_min": Decimal(price),
        "index_price_max": Decimal(price),
    }


A, B, C, D = ("0x" + f"{i:040x}" for i in (1, 2, 3, 4))


def test_pools_rank_the_keepers_choices():
    events = pl.DataFrame(
        [
            _ev(1, 0, A, "inc", 1000, 1.0, delta=1.0, delta_usd=1000),  # entry 1000: most profitable at 3000
            _ev(1, 1, B, "inc", 2500, 1.0, delta=1.0, delta_usd=2500),  # entry 2500
            _ev(2, 0, C, "inc", 3500, 1.0, delta=1.0, delta_usd=3500),  # entry 3500: losing at 3000
            _ev(5, 0, A, "dec", 0, 0.0, adl=True, delta=1.0, delta_usd=1000, price=3000),
            _ev(5, 1, B, "dec", 1250, 0.5, adl=True, delta=0.5, delta_usd=1250, price=3000),
        ]
    )
    assert open_positions(events).height == 2
    assert open_positions(events, at_block=5).height == 3
    steps, pools = adl_steps_and_pools(events)
    assert steps.columns == [c.name for c in ADL_STEPS.columns] and pools.columns == [c.name for c in ADL_POOLS.columns]
    # one action per keeper transaction; the two of block 5 share a step_group
    assert steps["pool_size"].to_list() == [3, 2] and steps["legs"].to_list() == [1, 1]
    assert steps["step_group"].to_list() == [0, 0] and steps["action_hash"].to_list() == ["0x00050000", "0x00050001"]
    p0 = {r["user"]: r for r in pools.filter(pl.col("step_id") == 0).iter_rows(named=True)}
    assert p0[A]["selected"] and p0[A]["fill_order"] == 1 and not p0[A]["partial"]
    assert not p0[B]["selected"] and p0[B]["upnl_usd"] == 500.0
    assert not p0[C]["selected"] and p0[C]["skip_reason"] == "not in profit" and p0[C]["upnl_usd"] == -500.0
    assert p0[A]["upnl_usd"] == 2000.0 and p0[A]["mark_px"] == 3000.0 and p0[A]["position_age_ms"] == 4000
    p1 = {r["user"]: r for r in pools.filter(pl.col("step_id") == 1).iter_rows(named=True)}
    assert set(p1) == {B, C}  # A was closed by the action before
    assert p1[B]["selected"] and p1[B]["partial"] and p1[B]["closed_size"] == 0.5
    assert identify(pools).steps == 2


def test_positions_open_before_the_data_and_decimals_per_market():
    """D's first event in the data is a partial close: D was open before, with the state before that close,
    for every action until then; a BTC market with 8 decimals sizes in BTC."""
    events = pl.DataFrame(
        [
            _ev(1, 0, A, "inc", 40000, 1.0, delta=1.0, delta_usd=40000, market=M8, decimals=8, price=40000),
            _ev(3, 0, A, "dec", 20000, 0.5, adl=True, delta=0.5, delta_usd=20000, market=M8, decimals=8, price=60000),
            _ev(4, 0, D, "dec", 25000, 0.5, delta=0.5, delta_usd=25000, market=M8, decimals=8, price=60000),
            _ev(6, 0, B, "inc", 1, 1.0, delta=1.0, delta_usd=1, market="0x" + "77" * 20),  # no decimals known
        ]
    )
    ev = adl_evidence(events, decimals={M8: 8, M: 18})
    pools = {r["user"]: r for r in ev.pools.iter_rows(named=True)}
    assert set(pools) == {A, D}
    assert pools[D]["size"] == 1.0 and pools[D]["entry_px"] == 50000 and pools[D]["position_age_ms"] is None
    assert pools[A]["size"] == 1.0 and pools[A]["selected"] and pools[A]["partial"] and pools[A]["closed_size"] == 0.5
    assert ev.integrity["positions_open_before_data"] == 1 and ev.integrity["seeded_candidates"] == 1
    assert ev.integrity["events_without_decimals"] == 1 and ev.integrity["chain_breaks"] == 0


def test_a_gap_in_a_positions_events_is_counted():
    events = pl.DataFrame(
        [
            _ev(1, 0, A, "inc", 2000, 1.0, delta=1.0, delta_usd=2000),
            _ev(3, 0, A, "inc", 6000, 3.0, delta=1.0, delta_usd=2000),  # before = 2.0, but the data last saw 1.0
        ]
    )
    assert adl_evidence(events, decimals={M: 18}).integrity["chain_breaks"] == 1
