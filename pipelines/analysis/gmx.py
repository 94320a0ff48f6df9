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

import json
import time

import polars as pl
import pyarrow as pa

from forensics.audit import RULES, audit, complete_steps, rule_changes, split_uncertain
from forensics.audit.diagnostics import DIAGNOSTIC_STEPS, conditional_logit, rank_diagnostics
from forensics.audit.exemption import MIN_SKIPS
from forensics.gmx_forensics import VENUE, adl_evidence
from forensics.tables import ADL_POOLS, ADL_RULE_FITS, ADL_STEPS, EXEMPTION_FLAGS, Table
from forensics.tables.onchain import GMX_MARKETS, GMX_POSITION_EVENTS
from pipelines.analysis.inference import LOGIT_ROWS
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
) -> dict:
    """Build the ADL pools, audit the keeper's choices, write the analytics tables; the result has the keys
    of ``pipelines.analysis.inference.run``'s."""
    laps: dict[str, float] = {}
    t0 = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t0
        now = time.perf_counter()
        laps[name] = round(now - t0, 3)
        t0 = now

    events, decimals = load_events(lake)
    lap("load")
    ev = adl_evidence(events, decimals=decimals)
    steps, pools = ev.steps, ev.pools
    key = source_key("gmx_adl", VENUE)
    lake.replace_source(ADL_STEPS, VENUE, key, _arrow(steps, ADL_STEPS))
    lake.replace_source(ADL_POOLS, VENUE, key, _arrow(pools, ADL_POOLS))
    if since_ms is not None:
        steps = steps.filter(pl.col("time_ms") >= since_ms)
    if until_ms is not None:
        steps = steps.filter(pl.col("time_ms") <= until_ms)
    pools = pools.filter(pl.col("step_id").is_in(steps["step_id"].implode()))
    lap("reconstruct")
    pools, incomplete = complete_steps(pools, steps)
    chosen = [RULES[name] for name in rules]
    result_audit = audit(pools, q=q, steps=steps, rules=chosen)
    identification = result_audit.inference
    lap("audit")
    vouched, _ = split_uncertain(pools)
    sampled = rank_diagnostics(vouched, identification.rules, max_steps=diagnostic_steps, seed=seed)
    fit_logit = vouched.height > 0 and (logit == "always" or (logit == "auto" and identification.best_rule is None))
    logit_result = (
        conditional_logit(vouched, seed=seed, max_rows=logit_rows)
        if fit_logit
        else {"note": f"not computed (logit={logit}" + ("; a hypothesis fits)" if logit == "auto" else ")")}
    )
    changes = rule_changes(identification, steps, q=q) if steps.height else {}
    lap("diagnostics")
    best = identification.best_rule
    fits = (
        identification.table().with_columns(
            venue=pl.lit(VENUE),
            rule=pl.col("name"),
            is_best=pl.col("name") == (best or ""),
            verdict=pl.lit(result_audit.verdict),
            window_from_ms=pl.lit(since_ms, pl.Int64),
            window_to_ms=pl.lit(until_ms, pl.Int64),
        )
        if identification.rules
        else pl.DataFrame()
    )
    lake.replace_source(ADL_RULE_FITS, VENUE, key, _arrow(fits, ADL_RULE_FITS))
    flagged: list[dict] = []
    exemption = result_audit.exemption
    note = None
    if exemption is not None:
        accounts = exemption.accounts.with_columns(
            venue=pl.lit(VENUE),
            rule=pl.lit(exemption.rule),
            skip_rate=pl.lit(exemption.skip_rate),
            evidence_json=pl.col("user").map_elements(
                lambda u: json.dumps(exemption.evidence.get(u), default=str) if u in exemption.evidence else None,
                return_dtype=pl.String,
            ),
        )
        lake.replace_source(EXEMPTION_FLAGS, VENUE, key, _arrow(accounts, EXEMPTION_FLAGS))
        flagged = exemption.flagged.select(
            "user",
            "eligible_steps",
            "opportunities",
            "skips",
            "expected_skips",
            "expected_selections",
            "observed_selections",
            "p_value",
            "q_value",
        ).to_dicts()
        for row in flagged:
            row["skipped_in"] = [
                {k: e.get(k) for k in ("step_id", "coin", "rank", "cut_rank", "score", "cut_score")}
                for e in exemption.evidence.get(row["user"], [])
                if e.get("counted_as_skip")
            ]
    else:
        note = (
            "exemption test not run: no most-profitable-first hypothesis fits, so there is no order to be exempt from"
            if identification.steps
            else "exemption test not run: no ADL action with a decision"
        )
        lake.replace_source(EXEMPTION_FLAGS, VENUE, key, EXEMPTION_FLAGS.arrow_schema().empty_table())
    lap("write")
    return {
        "best_rule": best,
        "verdict": result_audit.verdict,
        "seconds": laps,
        "margin": identification.margin,
        "margin_aic": identification.margin_aic,
        "rules": [r.as_dict() for r in identification.rules],
        "flagged": flagged,
        "exemption": {
            "q_threshold": q,
            "skip_rate": exemption.skip_rate if exemption else None,
            "iterations": result_audit.rounds,
            "note": note,
            "set_aside_for_fit": result_audit.set_aside,
            "min_skips": MIN_SKIPS,
        },
        "diagnostics": sampled,
        "conditional_logit": logit_result,
        "rule_changes": changes,
        "steps": int(steps.height),
        "actions_with_decision": identification.steps,
        "incomplete_steps": incomplete,
        "integrity": {**ev.integrity, "rows_left_out": 0, "by_reason": {}, "hypotheses": list(rules)},
        "pools": int(pools.height),
        "outputs": {
            t: str(lake.table_dir(t))
            for t in (ADL_STEPS.name, ADL_POOLS.name, ADL_RULE_FITS.name, EXEMPTION_FLAGS.name)
        },
    }


def _arrow(df: pl.DataFrame, table: Table) -> pa.Table:
    cols = [pl.col(c.name) if c.name in df.columns else pl.lit(None).alias(c.name) for c in table.columns]
    if df.width == 0:
        return table.arrow_schema().empty_table()
    return df.select(cols).to_arrow()
