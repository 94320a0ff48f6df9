"""Disclosed carve-outs (forensics/audit/carveouts.py): which venue, instrument, time and facts each covers."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from forensics.audit import carveouts as co


def ms(iso: str) -> int:
    return int(dt.datetime.fromisoformat(iso).replace(tzinfo=dt.UTC).timestamp() * 1000)


OCT10 = ms("2025-10-10T21:16:04")


@pytest.mark.parametrize(
    "coin, oi, covered",
    [
        ("BTCUSDT", 3.9e9, True),
        ("btcusdt", 3.9e9, True),  # symbols compared upper case
        ("ETHUSDT", 4e9, True),  # "does not exceed": the cap itself is still covered
        ("BNBUSDT", 1e9, True),
        ("BTCUSDT_251226", 1e9, True),  # every later BTCUSDT/ETHUSDT quarterly
        ("ETHUSDT_251226", 1e9, True),
        ("BTCBUSD", 1e9, True),
        ("BTCUSDT", 4.1e9, False),  # above the cap: ADL may happen
        ("BTCUSDT", None, False),  # the open interest unknown: not covered
        ("BNBUSDT_251226", 1e9, False),  # BNB's quarterly is not listed
        ("SOLUSDT", 1e9, False),
        ("BTCUSD_PERP", 1e9, False),  # COIN-M
    ],
)
def test_binance_adl_guarantee(coin, oi, covered):
    got = co.covering("binance", coin, OCT10, open_interest_usd=oi)
    assert (got is not None) == covered
    if covered:
        assert got.name == "binance_adl_guarantee" and got.effect == co.NO_ADL
        assert "8ca05ebf2dcd4e2cbf5a7d2a313ab492" in got.source and "4 billion USDT" in got.quote


def test_binance_guarantee_window_and_venue():
    assert co.covering("binance", "BTCUSDT", ms("2021-03-01T23:59:59"), open_interest_usd=1e9) is None
    assert co.covering("binance", "BTCUSDT", ms("2021-03-02T00:00:00"), open_interest_usd=1e9) is not None
    assert co.covering("bybit", "BTCUSDT", OCT10, open_interest_usd=1e9) is None
    # in scope without the open interest: listed as applicable, not covering
    assert [c.name for c in co.applicable("binance", "BTCUSDT", OCT10)] == ["binance_adl_guarantee"]


@pytest.mark.parametrize(
    "coin, covered",
    [
        ("BTC-PERP", True),
        ("ETH-PERP", True),
        ("SOL-PERP", True),
        ("ETH-27JUN25-3000-C", True),
        ("BTC", True),
        ("DOGE-PERP", False),
        ("SOLANA-PERP", False),
        ("WBTC-PERP", False),
    ],
)
def test_aevo_majors(coin, covered):
    got = co.covering("aevo", coin, OCT10)
    assert (got is not None) == covered
    if covered:
        assert got.name == "aevo_majors_not_under_adl" and "not under ADL" in got.quote


def test_dydx_non_overlapping_bankruptcy_price():
    assert co.covering("dydx", "BTC-USD", OCT10, bankruptcy_prices_overlap=False).effect == co.SKIP_ALLOWED
    assert co.covering("dydx", "BTC-USD", OCT10, bankruptcy_prices_overlap=True) is None
    assert co.covering("dydx", "BTC-USD", OCT10) is None  # the fact unknown
    assert [c.name for c in co.applicable("dydx", "ETH-USD", OCT10)] == ["dydx_non_overlapping_bankruptcy_price"]


def test_no_carve_out_elsewhere():
    for venue, coin in [("hyperliquid", "BTC"), ("okx", "BTC-USDT-SWAP"), ("gmx", "ETH/USD"), ("binance", "")]:
        assert co.applicable(venue, coin, OCT10) == []
        assert co.covering(venue, coin, OCT10, open_interest_usd=0.0, bankruptcy_prices_overlap=False) is None


def test_every_carve_out_is_sourced_and_immutable():
    names = [c.name for c in co.CARVE_OUTS]
    assert len(names) == len(set(names)) == 3
    for c in co.CARVE_OUTS:
        assert c.source.startswith("https://") and len(c.quote) > 40 and c.summary and c.unconfirmed
        assert c.effect in (co.NO_ADL, co.SKIP_ALLOWED) and c.instruments
        assert c.condition in (None, co.OPEN_INTEREST, co.BANKRUPTCY_OVERLAP)
        assert (c.condition == co.OPEN_INTEREST) == (c.max_open_interest_usd is not None)
        with pytest.raises(dataclasses.FrozenInstanceError):
            c.name = "x"  # type: ignore[misc]
