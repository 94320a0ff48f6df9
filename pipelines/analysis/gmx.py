"""The GMX v2 ADL audit over what the lake holds: ADL actions and their eligible pools from
``gmx_position_events`` (``forensics.gmx_forensics``), the keeper's choices tested by
``forensics.audit`` against the "most profitable first" hypotheses; results written like the
Hyperliquid audit's (``adl_steps``, ``adl_pools``, ``adl_rule_fits``, ``exemption_flags``, venue
``gmx_v2``) and returned with the same keys.

GMX documents no ranking (its ADL keeper chooses), so the question is not which documented venue rule
it follows but whether its choices look like "most profitable first" in one of its readings: by USD
profit (``upnl``), by return (``pnl_pct``), or by profit weighted with leverage (``hl_index``,
``bitmex``); and which accounts it passed over more often than chance allows under the best of them.
"""

from __future__ import annotations

import time

import polars as pl

from forensics.audit import RULES, audit, complete_steps
from forensics.audit.diagnostics import DIAGNOSTIC_STEPS
from forensics.gmx_forensics import VENUE, adl_evidence
from forensics.tables import ADL_POOLS
from forensics.tables.onchain import GMX_MARKETS, GMX_POSITION_EVENTS
from pipelines.analysis.audit import LOGIT_ROWS, AuditResult, arrow, assemble, write
from pipelines.lake import Lake, safe_segment, source_key

VENUE_NAMES = ("gmx", VENUE)
PROFIT_FIRST = ("upnl", "pnl_pct", "hl_index", "bitmex")


class MissingEvents(RuntimeError):
    """No GMX position events in the lake."""


def _read(lake: Lake, table: str) -> pl.DataFrame | None:
    return lake.read(table, safe_segment(VENUE, "venue"))


def load_events(lake: Lake) -> tuple[pl.DataFrame, dict[str, int]]:
    """(gmx_position_events, index decimals per market from gmx_markets)."""
    events = _read(lake, GMX_POSITION_EVENTS.name)
    if events is None or events.height == 0:
        raise MissingEvents(f"no {GMX_POSITION_EVENTS.name} in {lake.root}")
    markets = _read(lake, GMX_MARKETS.name)
    decimals: dict[str, int] = {}
    if markets is not None:
        for r in markets.sort("read_at").iter_rows(named=True):
            if r["index_decimals"] is not None:
                decimals[r["market"]] = int(r["index_decimals"])
    return events.unique(subset=["chain", "block_number", "log_index"], keep="first"), decimals


def run(
    lake: Lake,
    *,
    since_ms: int | None = None,
    until_ms: int | None = None,
    q: float = 0.05,
    seed: int = 0,
    diagnostic_steps: int | None = DIAGNOSTIC_STEPS,
    logit: str = "auto",
    logit_rows: int = LOGIT_ROWS,
    rules: tuple[str, ...] = PROFIT_FIRST,
) -> AuditResult:
    """Build the ADL pools, audit the keeper's choices, write the analytics tables (the Hyperliquid audit's
    result and tables, with the pools written too: GMX pools are small)."""
    t0 = time.perf_counter()
    events, decimals = load_events(lake)
    ev = adl_evidence(events, decimals=decimals)
    steps, pools = ev.steps, ev.pools
    key = source_key("gmx_adl", VENUE)
    lake.replace_source(ADL_POOLS, VENUE, key, arrow(pools, ADL_POOLS))
    if since_ms is not None:
        steps = steps.filter(pl.col("time_ms") >= since_ms)
    if until_ms is not None:
        steps = steps.filter(pl.col("time_ms") <= until_ms)
    pools = pools.filter(pl.col("step_id").is_in(steps["step_id"].implode()))
    seconds = {"reconstruct": round(time.perf_counter() - t0, 3)}
    pools, incomplete = complete_steps(pools, steps)
    found = audit(pools, q=q, steps=steps, rules=[RULES[name] for name in rules])
    result = assemble(
        VENUE,
        (since_ms, until_ms),
        found,
        steps,
        pools,
        q=q,
        seed=seed,
        diagnostic_steps=diagnostic_steps,
        logit=logit,
        logit_rows=logit_rows,
        incomplete_steps=incomplete,
        integrity={**ev.integrity, "rows_left_out": 0, "by_reason": {}, "hypotheses": list(rules)},
        pool_rows=pools.height,
        seconds=seconds,
        hypotheses="most-profitable-first hypothesis",
    )
    write(lake, result, key)
    result.outputs[ADL_POOLS.name] = str(lake.table_dir(ADL_POOLS.name))
    return result
