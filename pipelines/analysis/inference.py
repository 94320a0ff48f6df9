"""Rule inference and the exemption test over what the lake holds; results written to analytics."""

from __future__ import annotations

import json
import time

import polars as pl
import pyarrow as pa

from forensics.audit import audit, complete_steps, rule_changes, split_uncertain
from forensics.audit.diagnostics import DIAGNOSTIC_STEPS, conditional_logit, rank_diagnostics
from forensics.audit.exemption import MIN_SKIPS
from forensics.reconstruct import integrity
from forensics.tables import ADL_POOLS, ADL_RULE_FITS, ADL_STEPS, EXEMPTION_FLAGS
from pipelines.analysis import reconstruct
from pipelines.lake import Lake, lineage, source_key

# candidate rows for the conditional logit by default (whole actions, sampled independently of outcomes)
LOGIT_ROWS = 20_000
LOGIT_MODES = ("auto", "always", "never")


class MissingPools(RuntimeError):
    """No ADL pools in the lake for the venue/window."""


def read_analytics(lake: Lake, table: str, venue: str) -> pl.DataFrame | None:
    return lake.read(table, venue)


def load_pools(lake: Lake, venue: str, since_ms: int | None, until_ms: int | None) -> tuple[pl.DataFrame, pl.DataFrame]:
    steps = read_analytics(lake, ADL_STEPS.name, venue)
    pools = read_analytics(lake, ADL_POOLS.name, venue)
    if steps is None or pools is None:
        raise MissingPools(f"no {ADL_POOLS.name} for venue {venue} in {lake.root}")
    if since_ms is not None:
        steps = steps.filter(pl.col("time_ms") >= since_ms)
    if until_ms is not None:
        steps = steps.filter(pl.col("time_ms") <= until_ms)
    pools = pools.filter(pl.col("step_id").is_in(steps["step_id"].implode()))
    return steps, pools


def annotate_integrity(
    lake: Lake, venue: str, pools: pl.DataFrame, steps: pl.DataFrame, inputs: dict | None = None
) -> tuple[pl.DataFrame, pl.DataFrame, dict]:
    """(``pools`` with ``state_note``/``state_detail``/``account_gap``, the rows with a note, their summary):
    the integrity check of
    :mod:`forensics.reconstruct.integrity` on the venue's normalized inputs."""
    inputs = inputs if inputs is not None else reconstruct.load_inputs(lake, venue)
    notes, summary = integrity.state_notes(inputs["fills"], inputs["positions"], inputs["accounts"], pools, steps)
    return integrity.annotate(pools, notes), notes.filter(pl.col("state_note").is_not_null()), summary


def run(
    lake: Lake,
    *,
    venue: str = "hyperliquid",
    since_ms: int | None = None,
    until_ms: int | None = None,
    q: float = 0.05,
    seed: int = 0,
    diagnostic_steps: int | None = DIAGNOSTIC_STEPS,
    logit: str = "auto",
    logit_rows: int = LOGIT_ROWS,
    reconstruct_if_missing: bool = True,
) -> dict:
    """Identify the rule, test every eligible account, write ``adl_rule_fits`` and ``exemption_flags``.

    ``diagnostic_steps``: actions sampled for the fill-order diagnostics (None: all). ``logit``: fit the
    conditional logit on ``logit_rows`` candidate rows ``"always"``, ``"never"``, or ``"auto"``: when no
    documented rule fits (its direction then describes the undocumented rule)."""
    if logit not in LOGIT_MODES:
        raise ValueError(f"logit must be one of {', '.join(LOGIT_MODES)}, not {logit!r}")
    clock = _Clock()
    inputs = reconstruct.load_inputs(lake, venue)  # the integrity check reads them too: once
    clock.lap("load")
    stale = [f.describe() for f in lineage.freshness(lake, venue) if f.analysis == lineage.RECONSTRUCTION and f.stale]
    try:
        if stale:  # pools computed from other inputs than the lake holds now are rebuilt, never audited
            raise MissingPools(stale[0])
        steps, pools = load_pools(lake, venue, since_ms, until_ms)
    except MissingPools:
        if not reconstruct_if_missing:
            raise
        reconstruct.run(lake, venue=venue, inputs=inputs)
        steps, pools = load_pools(lake, venue, since_ms, until_ms)
    clock.lap("reconstruct")
    key = source_key("inference", venue)  # one current result per venue, like the reconstruction
    pools, incomplete_steps = complete_steps(pools, steps)
    # candidate states the data contradict or cannot confirm (lost fills): never opportunities
    pools, notes, integrity_summary = annotate_integrity(lake, venue, pools, steps, inputs)
    clock.lap("integrity")
    result_audit = audit(pools, q=q, steps=steps)
    identification = result_audit.inference
    clock.lap("audit")
    vouched, _ = split_uncertain(pools)
    sampled = rank_diagnostics(vouched, identification.rules, max_steps=diagnostic_steps, seed=seed)
    fit_logit = vouched.height > 0 and (logit == "always" or (logit == "auto" and identification.best_rule is None))
    logit_result = (
        conditional_logit(vouched, seed=seed, max_rows=logit_rows)
        if fit_logit
        else {
            "note": f"not computed (logit={logit}; a documented rule fits)"
            if logit == "auto"
            else f"not computed (logit={logit})"
        }
    )
    changes = rule_changes(identification, steps, q=q) if steps.height else {}
    clock.lap("diagnostics")
    best = identification.best_rule
    fits = identification.table().with_columns(
        venue=pl.lit(venue),
        rule=pl.col("name"),
        is_best=pl.col("name") == (best or ""),
        verdict=pl.lit(result_audit.verdict),
        window_from_ms=pl.lit(since_ms, pl.Int64),
        window_to_ms=pl.lit(until_ms, pl.Int64),
    )
    lake.replace_source(ADL_RULE_FITS, venue, key, _arrow(fits, ADL_RULE_FITS))

    flagged_rows: list[dict] = []
    exemption_note = None
    result = result_audit.exemption
    if result is not None:
        accounts = result.accounts.with_columns(
            venue=pl.lit(venue),
            rule=pl.lit(result.rule),
            skip_rate=pl.lit(result.skip_rate),
            evidence_json=pl.col("user").map_elements(
                lambda u: json.dumps(result.evidence.get(u), default=str) if u in result.evidence else None,
                return_dtype=pl.String,
            ),
        )
        lake.replace_source(EXEMPTION_FLAGS, venue, key, _arrow(accounts, EXEMPTION_FLAGS))
        flagged_rows = result.flagged.select(
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
        for row in flagged_rows:
            row["skipped_in"] = [
                {k: e.get(k) for k in ("step_id", "coin", "rank", "cut_rank", "score", "cut_score")}
                for e in result.evidence.get(row["user"], [])
                if e.get("counted_as_skip")
            ]
    else:
        exemption_note = (
            "exemption test not run: no documented rule fits, so there is no rule to be exempt from"
            if identification.steps
            else "exemption test not run: no ADL action with a decision"
        )
        lake.replace_source(EXEMPTION_FLAGS, venue, key, EXEMPTION_FLAGS.arrow_schema().empty_table())
    clock.lap("write")
    return {
        "rebuilt_stale": stale,  # why the pools were reconstructed first (their inputs changed), if they were
        "best_rule": best,
        "verdict": result_audit.verdict,
        "seconds": clock.laps,
        "margin": identification.margin,
        "margin_aic": identification.margin_aic,
        "rules": [r.as_dict() for r in identification.rules],
        "flagged": flagged_rows,
        "exemption": {
            "q_threshold": q,
            "skip_rate": result.skip_rate if result else None,
            "iterations": result_audit.rounds,
            "note": exemption_note,
            "set_aside_for_fit": result_audit.set_aside,
            "min_skips": MIN_SKIPS,
        },
        "diagnostics": sampled,
        "conditional_logit": logit_result,
        "rule_changes": changes,
        "steps": int(steps.height),
        "actions_with_decision": identification.steps,
        "incomplete_steps": incomplete_steps,
        "integrity": {
            **integrity_summary,
            "rows_left_out": notes.height,
            "by_reason": dict(notes.group_by("state_note").len().iter_rows()) if notes.height else {},
        },
        "pools": int(pools.height),
        "outputs": {t: str(lake.table_dir(t)) for t in (ADL_RULE_FITS.name, EXEMPTION_FLAGS.name)},
    }


class _Clock:
    """Wall time per phase, for the result's ``seconds``."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self._t, 3)
        self._t = now


def _arrow(df: pl.DataFrame, table) -> pa.Table:
    cols = []
    for c in table.columns:
        if c.name in df.columns:
            cols.append(pl.col(c.name))
        else:
            cols.append(pl.lit(None).alias(c.name))
    return df.select(cols).to_arrow()
