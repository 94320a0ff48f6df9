"""Flags a disclosed carve-out covers are reported apart, with the carve-out, never as exemptions."""

from __future__ import annotations

import polars as pl

from pipelines.analysis.audit import FlaggedAccount, Skip, _apart_carve_outs

T_2025 = 1_760_130_000_000  # 2025-10-10


def _flag(user: str, coins: list[str]) -> FlaggedAccount:
    skips = [Skip(i, c, 1, 3, 2.0, 1.0) for i, c in enumerate(coins)]
    return FlaggedAccount(user, 5, 3, len(coins), 0.1, 4.9, 2, 1e-6, 1e-4, skips)


def test_a_flag_every_pass_of_which_a_carve_out_covers_is_reported_apart():
    steps = pl.DataFrame({"step_id": [0, 1, 2], "time_ms": [T_2025] * 3})
    flags = [_flag("0xa", ["BTC", "ETH-PERP"]), _flag("0xb", ["BTC", "DOGE"]), _flag("0xc", ["DOGE", "DOGE"])]
    kept, covered = _apart_carve_outs("aevo", flags, steps)
    assert [f.user for f in kept] == ["0xb", "0xc"]
    assert [(c.account, c.rule, c.covered_actions) for c in covered] == [("0xa", "aevo_majors_not_under_adl", [0, 1])]
    assert covered[0].source.startswith("https://docs.aevo.xyz/")


def test_other_venues_and_conditional_carve_outs_cover_nothing():
    steps = pl.DataFrame({"step_id": [0, 1], "time_ms": [T_2025] * 2})
    flags = [_flag("0xa", ["BTC", "ETH"])]
    assert _apart_carve_outs("hyperliquid", flags, steps) == (flags, [])
    # Binance's guarantee needs the open interest, which the audit does not have: it does not cover
    assert _apart_carve_outs("binance", [_flag("0xa", ["BTCUSDT"])], steps)[1] == []
