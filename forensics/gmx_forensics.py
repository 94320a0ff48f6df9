"""GMX v2 keeper forensics: open positions from position events, and ADL steps/pools in the
``adl_steps``/``adl_pools`` layout (forensics.schema) so the audit (``forensics.audit.audit``) can test
the ADL keeper's choices.

GMX leaves the choice of *which* positions to auto-deleverage to its ADL keeper (off-chain); the chain
only checks that each ADL lowers the market side's PnL-to-pool factor. A step here is the set of ADL
executions on one (market, side) in one block; its pool is every account with an open position on
that market and side just before the block's first ADL (positions of one account with different
collateral tokens are summed, so ``user`` is the account). Mark = mid of the ADL's indexTokenPrice.

Input: rows of ``gmx_position_events`` (a polars DataFrame, as read from the lake or the catalog).
Token sizes come from ``size_in_tokens_raw`` / 10^index decimals (``decimals`` per market, default 18).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from forensics.tables import ADL_POOLS, ADL_STEPS

VENUE = "gmx_v2"


@dataclass
class _Pos:
    size_usd: float = 0.0
    tokens: float = 0.0
    collateral_usd: float = 0.0
    opened_ms: int | None = None


def _f(x) -> float:
    return float(x) if x is not None else 0.0


def open_positions(events: pl.DataFrame, *, decimals: dict[str, int] | None = None, at_block: int | None = None) -> pl.DataFrame:
    """Open positions per (account, market, side, collateral) after all events (or before ``at_block``)."""
    state = _replay(events.sort("block_number", "log_index"), decimals or {}, at_block)
    rows = [{"account": a, "market": m, "side": "long" if lg else "short", "collateral_token": c,
             "size_usd": p.size_usd, "size_tokens": p.tokens, "collateral_usd": p.collateral_usd, "opened_ms": p.opened_ms}
            for (a, m, lg, c), p in state.items() if p.tokens > 0]
    return pl.DataFrame(rows, schema={"account": pl.String, "market": pl.String, "side": pl.String,
                                      "collateral_token": pl.String, "size_usd": pl.Float64, "size_tokens": pl.Float64,
                                      "collateral_usd": pl.Float64, "opened_ms": pl.Int64})


def _apply(state: dict, r: dict, decimals: dict[str, int]) -> None:
    key = (r["account"], r["market"], r["is_long"], r["collateral_token"])
    p = state.setdefault(key, _Pos())
    if p.tokens <= 0 and r["event_name"] == "PositionIncrease":
        p.opened_ms = r["time_ms"]
    p.size_usd = _f(r["size_in_usd"])
    p.tokens = int(r["size_in_tokens_raw"]) / 10 ** decimals.get(r["market"], 18)
    p.collateral_usd = _f(r["collateral_usd"])
    if p.tokens <= 0:
        p.opened_ms = None


def _replay(events: pl.DataFrame, decimals: dict[str, int], at_block: int | None) -> dict:
    state: dict = {}
    for r in events.iter_rows(named=True):
        if at_block is not None and r["block_number"] >= at_block:
            break
        _apply(state, r, decimals)
    return state


def adl_steps_and_pools(events: pl.DataFrame, *, decimals: dict[str, int] | None = None, wave_gap_ms: int = 5_000
                        ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(adl_steps, adl_pools) for every ADL block of every (market, side), in the canonical layouts."""
    decimals = decimals or {}
    ev = events.sort("block_number", "log_index")
    rows = list(ev.iter_rows(named=True))
    state: dict = {}
    steps: list[dict] = []
    pools: list[dict] = []
    i = 0
    last_step_ms: int | None = None
    wave = 0
    while i < len(rows):
        block = rows[i]["block_number"]
        j = i
        while j < len(rows) and rows[j]["block_number"] == block:
            j += 1
        block_rows = rows[i:j]
        adl = [r for r in block_rows if r["is_adl"]]
        groups: dict[tuple[str, bool], list[dict]] = {}
        for r in adl:
            groups.setdefault((r["market"], r["is_long"]), []).append(r)
        # state just before the block's first ADL: apply the block's earlier non-ADL events first
        first_adl_log = min((r["log_index"] for r in adl), default=None)
        for r in block_rows:
            if first_adl_log is not None and r["log_index"] >= first_adl_log:
                break
            _apply(state, r, decimals)
        for (market, is_long), legs in sorted(groups.items()):
            step_id = len(steps)
            first = legs[0]
            if last_step_ms is not None and first["time_ms"] - last_step_ms > wave_gap_ms:
                wave += 1
            last_step_ms = first["time_ms"]
            mark = (_f(first["index_price_min"]) + _f(first["index_price_max"])) / 2
            coin = first["market_name"] or market
            side = "long" if is_long else "short"
            order = {}
            closed: dict[str, float] = {}
            for r in legs:
                order.setdefault(r["account"], len(order) + 1)
                closed[r["account"]] = closed.get(r["account"], 0.0) + int(r["size_delta_in_tokens_raw"]) / 10 ** decimals.get(market, 18)
            by_acct: dict[str, _Pos] = {}
            for (a, m, lg, _c), p in state.items():
                if m == market and lg == is_long and p.tokens > 0:
                    q = by_acct.setdefault(a, _Pos(opened_ms=p.opened_ms))
                    q.size_usd += p.size_usd
                    q.tokens += p.tokens
                    q.collateral_usd += p.collateral_usd
                    if p.opened_ms is not None and (q.opened_ms is None or p.opened_ms < q.opened_ms):
                        q.opened_ms = p.opened_ms
            for a, p in sorted(by_acct.items()):
                entry = p.size_usd / p.tokens
                upnl = (mark - entry) * p.tokens if is_long else (entry - mark) * p.tokens
                notional = p.tokens * mark
                equity = p.collateral_usd + upnl
                sel = a in order
                pools.append({
                    "venue": VENUE, "step_id": step_id, "coin": coin, "user": a, "side": side, "size": p.tokens,
                    "entry_px": entry, "mark_px": mark, "mark_source": "adl_mark", "notional_usd": notional,
                    "upnl_usd": upnl, "pnl_pct_price": (mark / entry - 1) if is_long else (1 - mark / entry),
                    "pnl_pct_margin": upnl / p.collateral_usd if p.collateral_usd else None,
                    "account_value_usd": equity, "wallet_balance_usd": p.collateral_usd,
                    "leverage": notional / equity if equity > 0 else None,
                    "margin_leverage": p.size_usd / p.collateral_usd if p.collateral_usd else None,
                    "effective_leverage": notional / equity if equity > 0 else None,
                    "margin_mode": "isolated", "maintenance_margin_usd": None,
                    "position_age_ms": first["time_ms"] - p.opened_ms if p.opened_ms is not None else None,
                    "selected": sel, "fill_order": order.get(a), "closed_size": closed.get(a, 0.0),
                    "partial": sel and closed.get(a, 0.0) < p.tokens - 1e-12,
                    "skip_reason": None if sel or upnl > 0 else "not in profit",
                })
            steps.append({
                "venue": VENUE, "step_id": step_id, "wave_id": wave, "block_number": block, "time_ms": first["time_ms"],
                "coin": coin, "liquidated_user": market, "liquidated_side": "short" if is_long else "long",
                "adl_side": side, "legs": len(legs), "closed_size": sum(closed.values()),
                "notional_usd": sum(closed.values()) * mark, "mark_px": mark,
                "first_tid": first["block_number"] * 100_000 + first["log_index"], "pool_size": len(by_acct),
            })
        for r in block_rows:
            if first_adl_log is not None and r["log_index"] >= first_adl_log:
                _apply(state, r, decimals)
        i = j
    return (_frame(steps, ADL_STEPS), _frame(pools, ADL_POOLS))


_PL = {"VARCHAR": pl.String, "BIGINT": pl.Int64, "UBIGINT": pl.UInt64, "INTEGER": pl.Int32, "BOOLEAN": pl.Boolean,
       "DOUBLE": pl.Float64}


def _frame(rows: list[dict], table) -> pl.DataFrame:
    schema = {c.name: _PL[c.type] for c in table.columns}
    return pl.DataFrame(rows, schema=schema)
