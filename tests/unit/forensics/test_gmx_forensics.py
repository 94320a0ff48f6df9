"""Keeper forensics on GMX position events: open positions, ADL steps and pools in the canonical layout."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import polars as pl

from forensics.gmx_forensics import adl_steps_and_pools, open_positions
from forensics.tables import ADL_POOLS, ADL_STEPS

M = "0x" + "99" * 20


def _ev(block, log, account, kind, size_usd, tokens, *, adl=False, delta=0.0, price=2000.0, collateral=1000.0):
    return {"block_number": block, "log_index": log, "time_ms": block * 1000, "account": account, "market": M,
            "market_name": "ETH/USD", "collateral_token": "0x" + "33" * 20, "is_long": True,
            "event_name": "PositionIncrease" if kind == "inc" else "PositionDecrease", "is_adl": adl,
            "size_in_usd": Decimal(size_usd), "size_in_tokens_raw": str(int(tokens * 10**18)),
            "size_delta_in_tokens_raw": str(int(delta * 10**18)), "collateral_usd": Decimal(collateral),
            "index_price_min": Decimal(price), "index_price_max": Decimal(price)}


def test_pools_rank_the_keepers_choices():
    a, b, c = ("0x" + f"{i:040x}" for i in (1, 2, 3))
    events = pl.DataFrame([
        _ev(1, 0, a, "inc", 1000, 1.0),      # entry 1000: most profitable at 3000
        _ev(1, 1, b, "inc", 2500, 1.0),      # entry 2500
        _ev(2, 0, c, "inc", 3500, 1.0),      # entry 3500: losing at 3000
        _ev(5, 0, a, "dec", 0, 0.0, adl=True, delta=1.0, price=3000),
        _ev(5, 1, b, "dec", 1250, 0.5, adl=True, delta=0.5, price=3000),
    ])
    assert open_positions(events).height == 2
    assert open_positions(events, at_block=5).height == 3
    steps, pools = adl_steps_and_pools(events)
    assert steps.columns == [c.name for c in ADL_STEPS.columns] and pools.columns == [c.name for c in ADL_POOLS.columns]
    assert steps.height == 1 and steps["pool_size"][0] == 3 and steps["legs"][0] == 2
    p = {r["user"]: r for r in pools.iter_rows(named=True)}
    assert p[a]["selected"] and p[a]["fill_order"] == 1 and not p[a]["partial"]
    assert p[b]["selected"] and p[b]["partial"] and p[b]["closed_size"] == 0.5
    assert not p[c]["selected"] and p[c]["skip_reason"] == "not in profit" and p[c]["upnl_usd"] == -500.0
    assert p[a]["upnl_usd"] == 2000.0 and p[a]["mark_px"] == 3000.0
    from forensics.audit import identify
    assert identify(pools).steps == 1
    assert dt is not None
