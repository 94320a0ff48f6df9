"""An export snapshot publishes no isolated margin (the reader derives it): its account value is total equity,
so the isolated margin is not cross cash, and the account's value is not vouched for while that position lasts."""

from __future__ import annotations

import numpy as np
import polars as pl

from forensics.formats.hyperliquid.snapshot_export import DERIVED_ACCOUNT, DERIVED_ISOLATED
from forensics.reconstruct.integrity import isolated_margin_unknown
from forensics.reconstruct.replay import snapshot_frames

T = 1_760_130_840_000


def _positions(derivation: str | None) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "user": ["0xa", "0xb"],
            "coin": ["INJ", "BTC"],
            "time_ms": [T, T],
            "szi": [550.0, 1.0],
            "entry_px": [12.6151, 100.0],
            "leverage_type": ["isolated", "cross"],
            "leverage": [10, 5],
            "max_leverage": [None, None],
            "unrealized_pnl": [-420.805, 10.0],
            "margin_used": [273.0255, 22.0],
            "derivation": [derivation, None],
        }
    )


def _accounts(derivation: str | None) -> pl.DataFrame:
    return pl.DataFrame(
        {"user": ["0xa", "0xb"], "time_ms": [T, T], "account_value": [4892.375, 510.0], "derivation": [derivation] * 2}
    )


def test_an_exports_total_equity_leaves_the_isolated_margin_out_of_cross_cash():
    pos, acc = snapshot_frames(_positions(DERIVED_ISOLATED), _accounts(DERIVED_ACCOUNT))
    wallet = dict(zip(acc["user"].cast(pl.Utf8), acc["wallet0"]))
    iso = pos.filter(pl.col("user").cast(pl.Utf8) == "0xa")["iso_wallet0"].item()
    assert np.isclose(wallet["0xa"], 4892.375 + 420.805 - iso)
    assert np.isclose(wallet["0xb"], 500.0)
    # a snapshot that reports the account value otherwise keeps the old reading
    _, acc = snapshot_frames(_positions(None), _accounts(None))
    assert np.isclose(dict(zip(acc["user"].cast(pl.Utf8), acc["wallet0"]))["0xa"], 4892.375 + 420.805)


def _ordered(rows: list[tuple[str, str, int, float, float]]) -> pl.DataFrame:
    user, coin, ord_, sp, d = zip(*rows)
    return pl.DataFrame({"user": user, "coin": coin, "ord": ord_, "sp": sp, "d": d, "evt_ms": [T + 1] * len(rows)})


def test_a_derived_isolated_margin_is_unconfirmed_until_the_position_closes_or_flips():
    ordered = _ordered([("0xa", "INJ", 3, 550.0, -185.0), ("0xa", "INJ", 7, 365.0, -556.5), ("0xb", "BTC", 4, 1, 1)])
    got = isolated_margin_unknown(_positions(DERIVED_ISOLATED), ordered)
    assert got.to_dicts() == [{"user": "0xa", "until_ord": 7}]
    never = isolated_margin_unknown(_positions(DERIVED_ISOLATED), ordered.filter(pl.col("ord") != 7))
    assert never["until_ord"].to_list() == [np.iinfo(np.int64).max]
    assert isolated_margin_unknown(_positions(None), ordered).height == 0
