"""`liqf analyze`'s core: from the lake's normalized tables to the rule, the flags and their evidence, in one
pass (:func:`forensics.reconstruct.audit_pass`): no pool table is written and read back. Writes ``adl_steps``,
``adl_rule_fits`` and ``exemption_flags``; the whole pools (``adl_pools``) are a separate, optional table
(:mod:`pipelines.analysis.reconstruct`).

The result is typed (:class:`AuditResult`); :meth:`AuditResult.as_json` gives the documented keys of
``liqf analyze --json``. Other venues' audits on pools held as a table (GMX) build the same result with
:func:`assemble` and write it with :func:`write`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import polars as pl
import pyarrow as pa

from forensics.audit import Audit, audit_evidence, carveouts, split_uncertain
from forensics.audit.diagnostics import DIAGNOSTIC_STEPS, conditional_logit, rank_diagnostics
from forensics.audit.exemption import MIN_SKIPS
from forensics.reconstruct import audit_pass
from forensics.reconstruct.cash import CashSettings, cash_events
from forensics.tables import ADL_RULE_FITS, ADL_STEPS, EXEMPTION_FLAGS, Table
from pipelines.analysis.inputs import VAULTS, VenueInputs, archive_mark_age, load_inputs
from pipelines.lake import Lake, lineage, source_key

# candidate rows for the conditional logit by default (whole actions, sampled independently of outcomes)
LOGIT_ROWS = 20_000
LOGIT_MODES = ("auto", "always", "never")
#: the keys of ``liqf analyze --json`` (README)
JSON_KEYS = (
    "best_rule",
    "verdict",
    "margin",
    "rules",
    "flagged",
    "exemption",
    "steps",
    "actions_with_decision",
    "incomplete_steps",
    "integrity",
    "diagnostics",
    "conditional_logit",
    "rule_changes",
    "pools",
    "seconds",
    "carve_outs",
)


class NoFills(FileNotFoundError):
    """The lake holds no fills of the venue (nothing to replay)."""


@dataclass(frozen=True)
class Skip:
    """One action where a flagged account was ranked above the cut and passed over (in ``capped_in``: selected
    above the cut and closed only in part)."""

    step_id: int
    coin: str
    rank: int
    cut_rank: int
    score: float | None
    cut_score: float | None


@dataclass(frozen=True)
class CappedTake:
    """One action where a flagged account was selected above the cut and closed only in part: a queue takes a
    position above its cut whole (``implied``: its size), the venue took ``taken``."""

    step_id: int
    coin: str
    rank: int
    cut_rank: int
    taken: float | None
    implied: float | None


@dataclass(frozen=True)
class FlaggedAccount:
    user: str
    eligible_steps: int
    opportunities: int
    skips: int
    expected_skips: float
    expected_selections: float
    observed_selections: int
    p_value: float
    q_value: float
    skipped_in: list[Skip]
    #: skipped (passed over above the cut) or capped (selected above the cut and closed only in part)
    kind: str = "skipped"
    cap_opportunities: int = 0
    caps: int = 0
    cap_q_value: float | None = None
    capped_in: list[CappedTake] = field(default_factory=list)


@dataclass(frozen=True)
class ExemptionSummary:
    q_threshold: float
    skip_rate: float | None
    iterations: list[dict[str, Any]]
    note: str | None
    set_aside_for_fit: list[str]
    min_skips: int = MIN_SKIPS


@dataclass(frozen=True)
class CoveredFlag:
    """A flagged account whose every counted pass-over falls under a carve-out the venue disclosed."""

    account: str
    rule: str  # the carve-out's name
    source: str
    quote: str
    covered_actions: list[int]


@dataclass
class AuditResult:
    """What the audit found for one venue and window (and the tables it wrote)."""

    venue: str
    window: tuple[int | None, int | None]
    audit: Audit = field(repr=False)
    steps: pl.DataFrame = field(repr=False)
    flagged: list[FlaggedAccount]
    exemption: ExemptionSummary
    diagnostics: dict[str, Any]
    conditional_logit: dict[str, Any]
    rule_changes: dict[str, Any]
    incomplete_steps: list[int]
    integrity: dict[str, Any]
    pool_rows: int
    seconds: dict[str, float] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    #: fills replayed (from the snapshot through the window's last ADL action)
    fills: int = 0
    #: flags a disclosed carve-out covers (forensics.audit.carveouts): reported apart, not as exemptions
    carve_outs: list[CoveredFlag] = field(default_factory=list)

    @property
    def best_rule(self) -> str | None:
        return self.audit.inference.best_rule

    @property
    def verdict(self) -> str:
        return self.audit.verdict

    def as_json(self) -> dict[str, Any]:
        """The documented keys of ``liqf analyze --json``."""
        idn = self.audit.inference
        return {
            "best_rule": idn.best_rule,
            "verdict": idn.verdict,
            "margin": idn.margin,
            "rules": [r.as_dict() for r in idn.rules],
            "flagged": [asdict(f) for f in self.flagged],
            "exemption": asdict(self.exemption),
            "steps": self.steps.height,
            "actions_with_decision": idn.steps,
            "incomplete_steps": self.incomplete_steps,
            "integrity": self.integrity,
            "diagnostics": self.diagnostics,
            "conditional_logit": self.conditional_logit,
            "rule_changes": self.rule_changes,
            "pools": self.pool_rows,
            "fills": self.fills,
            "seconds": self.seconds,
            "carve_outs": [asdict(c) for c in self.carve_outs],
        }


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
    gap_seconds: float = 5.0,
    inputs: VenueInputs | None = None,
    cash_settings: CashSettings | None = None,
    progress: Callable[[int, int], None] | None = None,
    write_tables: bool = True,
) -> AuditResult:
    """Replay the venue's fills through every ADL action in ``[since_ms, until_ms]`` (from the snapshot),
    identify the rule, test every account, write ``adl_steps``, ``adl_rule_fits`` and ``exemption_flags``.

    ``diagnostic_steps``: actions kept whole for the fill-order diagnostics (None: every action, which keeps
    every pool in memory). ``logit``: fit the conditional logit on at most ``logit_rows`` candidate rows of
    those actions ``"always"``, ``"never"``, or ``"auto"``: when no documented rule fits."""
    if logit not in LOGIT_MODES:
        raise ValueError(f"logit must be one of {', '.join(LOGIT_MODES)}, not {logit!r}")
    t0 = time.perf_counter()
    versions = lineage.input_fingerprint(lake, venue)  # what the result is computed from, taken before reading
    inputs = inputs if inputs is not None else load_inputs(lake, venue)
    if inputs.fills is None or inputs.fills.height == 0:
        raise NoFills(f"no fills for venue {venue!r} in {lake.root}")
    seconds = {"load": round(time.perf_counter() - t0, 3)}
    settings = cash_settings or CashSettings()
    cash, _ = cash_events(inputs.ledger, inputs.funding, settings)
    res = audit_pass(
        inputs.fills,
        inputs.positions,
        inputs.accounts,
        inputs.asset_ctxs,
        cash=cash,
        vault=VAULTS.get(venue),
        gap_seconds=gap_seconds,
        venue=venue,
        max_mark_age_ms=archive_mark_age(inputs.asset_ctxs),
        misc_before_fills=settings.misc_before_fills,
        window=(since_ms, until_ms),
        keep_pools="all" if diagnostic_steps is None else None,
        sample_actions=diagnostic_steps or 0,
        seed=seed,
        progress=progress,
    )
    seconds.update(res.seconds)
    t1 = time.perf_counter()
    evidence = res.evidence
    found = audit_evidence(evidence, q=q, pool_rows=res.pool_rows) if evidence is not None else None
    seconds["identify"] = round(time.perf_counter() - t1, 3)
    result = assemble(
        venue,
        (since_ms, until_ms),
        found,
        res.steps,
        res.pools,
        q=q,
        seed=seed,
        diagnostic_steps=diagnostic_steps,
        logit=logit,
        logit_rows=logit_rows,
        incomplete_steps=res.incomplete_steps,
        integrity=res.integrity,
        pool_rows=res.pool_rows,
        seconds=seconds,
    )
    result.fills = inputs.fills.height
    if write_tables:
        write(lake, result, source_key("inference", venue))
        lineage.record_inputs(lake, venue, lineage.AUDIT, versions)
    seconds["total"] = round(time.perf_counter() - t0, 3)
    return result


def assemble(
    venue: str,
    window: tuple[int | None, int | None],
    found: Audit | None,
    steps: pl.DataFrame,
    sampled_pools: pl.DataFrame | None,
    *,
    q: float,
    seed: int,
    diagnostic_steps: int | None,
    logit: str,
    logit_rows: int,
    incomplete_steps: list[int],
    integrity: dict[str, Any],
    pool_rows: int,
    seconds: dict[str, float],
    hypotheses: str = "documented rule",
) -> AuditResult:
    """The typed result of an audit: flags with their evidence, the diagnostics on the pools kept whole
    (``sampled_pools``, rows with a state note left out) and the search for rule changes."""
    t0 = time.perf_counter()
    if found is None:
        from forensics.audit import Identification

        found = Audit(Identification(None, "no ADL actions with a decision to explain", [], None, 0, 0), None)
    idn = found.inference
    vouched = split_uncertain(sampled_pools)[0] if sampled_pools is not None else pl.DataFrame()
    if vouched.height and idn.rules:
        diagnostics = rank_diagnostics(vouched, idn.rules, max_steps=diagnostic_steps, seed=seed)
    else:
        diagnostics = {"steps": 0, "of": idn.steps}
    fit_logit = vouched.height > 0 and (logit == "always" or (logit == "auto" and idn.best_rule is None))
    if fit_logit:
        logit_result = conditional_logit(vouched, seed=seed, max_rows=logit_rows)
    else:
        reason = f"; a {hypotheses} fits" if logit == "auto" else ""
        logit_result = {"note": f"not computed (logit={logit}{reason})"}
    changes = idn.changes.as_dict() if idn.changes is not None else {}
    exemption = found.exemption
    flagged: list[FlaggedAccount] = []
    note = None
    if exemption is not None:
        for row in exemption.flagged.iter_rows(named=True):
            rows = exemption.evidence.get(row["user"], [])
            skips = [_skip(e) for e in rows if e.get("counted_as_skip")]
            capped = [
                CappedTake(e["step_id"], e["coin"], e["rank"], e["cut_rank"], e.get("closed_size"), e.get("size"))
                for e in rows
                if e.get("counted_as_cap")
            ]
            flagged.append(
                FlaggedAccount(
                    row["user"],
                    row["eligible_steps"],
                    row["opportunities"],
                    row["skips"],
                    row["expected_skips"],
                    row["expected_selections"],
                    row["observed_selections"],
                    row["p_value"],
                    row["q_value"],
                    skips,
                    row.get("kind") or "skipped",
                    int(row.get("cap_opportunities") or 0),
                    int(row.get("caps") or 0),
                    row.get("cap_q_value"),
                    capped,
                )
            )
    else:
        note = (
            f"exemption test not run: no {hypotheses} fits, so there is no rule to be exempt from"
            if idn.steps
            else "exemption test not run: no ADL action with a decision"
        )
    flagged, covered = _apart_carve_outs(venue, flagged, steps)
    seconds["diagnostics"] = round(time.perf_counter() - t0, 3)
    return AuditResult(
        venue,
        window,
        found,
        steps,
        flagged,
        ExemptionSummary(q, exemption.skip_rate if exemption else None, found.rounds, note, found.set_aside),
        diagnostics,
        logit_result,
        changes,
        incomplete_steps,
        integrity,
        pool_rows,
        seconds,
        carve_outs=covered,
    )


def _apart_carve_outs(
    venue: str, flagged: list[FlaggedAccount], steps: pl.DataFrame
) -> tuple[list[FlaggedAccount], list[CoveredFlag]]:
    """Flags whose every counted pass-over (skips and capped takes) a disclosed carve-out covers, apart. Facts a
    conditional carve-out needs (open interest, bankruptcy-price overlap) are not in the data: those never
    cover."""
    if not flagged or "time_ms" not in steps.columns:
        return flagged, []
    time_of = dict(zip(steps["step_id"].to_list(), steps["time_ms"].to_list()))
    kept, covered = [], []
    for f in flagged:
        actions = [(a.step_id, a.coin) for a in f.skipped_in] + [(a.step_id, a.coin) for a in f.capped_in]
        found = [carveouts.covering(venue, coin, time_of.get(step, 0)) for step, coin in actions]
        if actions and all(c is not None for c in found):
            c = found[0]
            assert c is not None
            covered.append(CoveredFlag(f.user, c.name, c.source, c.quote, sorted({step for step, _ in actions})))
        else:
            kept.append(f)
    return kept, covered


def _skip(e: dict[str, Any]) -> Skip:
    return Skip(e["step_id"], e["coin"], e["rank"], e["cut_rank"], e.get("score"), e.get("cut_score"))


def write(lake: Lake, result: AuditResult, key: str) -> None:
    """Write the audit's tables (one current result per venue: a new window replaces the previous one)."""
    venue, (since_ms, until_ms) = result.venue, result.window
    idn = result.audit.inference
    lake.replace_source(ADL_STEPS, venue, key, arrow(result.steps, ADL_STEPS))
    fits = (
        idn.table().with_columns(
            venue=pl.lit(venue),
            rule=pl.col("name"),
            is_best=pl.col("name") == (idn.best_rule or ""),
            verdict=pl.lit(idn.verdict),
            window_from_ms=pl.lit(since_ms, pl.Int64),
            window_to_ms=pl.lit(until_ms, pl.Int64),
        )
        if idn.rules
        else pl.DataFrame()
    )
    lake.replace_source(ADL_RULE_FITS, venue, key, arrow(fits, ADL_RULE_FITS))
    exemption = result.audit.exemption
    if exemption is not None:
        accounts = exemption.accounts.with_columns(
            venue=pl.lit(venue),
            rule=pl.lit(exemption.rule),
            skip_rate=pl.lit(exemption.skip_rate),
            evidence_json=pl.col("user").map_elements(
                lambda u: json.dumps(exemption.evidence.get(u), default=str) if u in exemption.evidence else None,
                return_dtype=pl.String,
            ),
        )
        lake.replace_source(EXEMPTION_FLAGS, venue, key, arrow(accounts, EXEMPTION_FLAGS))
    else:
        lake.replace_source(EXEMPTION_FLAGS, venue, key, EXEMPTION_FLAGS.arrow_schema().empty_table())
    result.outputs.update({t.name: str(lake.table_dir(t.name)) for t in (ADL_STEPS, ADL_RULE_FITS, EXEMPTION_FLAGS)})


def arrow(df: pl.DataFrame, table: Table) -> pa.Table:
    """``df`` in the table's column order (NULL for the columns it lacks)."""
    if df.width == 0:
        return table.arrow_schema().empty_table()
    cols = [pl.col(c.name) if c.name in df.columns else pl.lit(None).alias(c.name) for c in table.columns]
    return df.select(cols).to_arrow()
