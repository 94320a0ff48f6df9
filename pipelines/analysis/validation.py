"""The validation sweep: simulate, ingest the venue-format files, reconstruct, audit, score against truth.

Each scenario goes through the same path as real data (node files -> lake -> reconstruction ->
rule inference + exemption test); only the scoring reads ``truth.json``.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from forensics import simulate
from forensics.audit.rules import QUEUE, RULES
from forensics.validation import truth_pools
from pipelines.analysis.audit import run as audit_run
from pipelines.ingest.hyperliquid import files
from pipelines.lake import Lake

NOISE = {
    "none": {},
    "moderate": {"stale_snapshot": 20, "drop_fills": 0.001, "mark_jitter": 0.001, "clock_skew_ms": 50},
}
# rules that the data cannot tell apart by construction (lexicographic ties break on leverage first)
EQUIVALENT = {"lexicographic": {"lexicographic", "leverage"}, "leverage": {"leverage", "lexicographic"}}
MIN_STEPS_FOR_POWER = 5


def skipped_actions(truth: pl.DataFrame, policy: str) -> pl.DataFrame:
    """Per planted account, the actions in which the simulator passed it over: ranked above the lowest
    selected candidate by the true score (queue policies), or left out of an action that cut others
    (allocation policies and the cyclic walk, whose truth score orders nothing)."""
    t = truth.filter(pl.col("selected").any().over("step_id"))
    if RULES[policy].kind == QUEUE:
        t = t.with_columns(pl.col("true_score").rank("ordinal", descending=True).over("step_id").alias("_r"))
        t = t.filter(pl.col("_r") < pl.col("_r").filter(pl.col("selected")).max().over("step_id"))
    return (
        t.filter(pl.col("exempt") & ~pl.col("selected"))
        .group_by("user")
        .agg(pl.col("step_id").n_unique().alias("skipped"))
    )


def run_scenario(policy: str, exempt: int, noise: str, seed: int, scale: str) -> dict:
    work = Path(tempfile.mkdtemp(prefix="liqf-validate-"))
    try:
        t0 = time.perf_counter()
        scenario = simulate.generate(
            work / "scenario", scale=scale, policy=policy, exempt=exempt, seed=seed, noise=NOISE[noise]
        )
        lake = Lake(work / "lake")
        for path in files.expand_inputs([work / "scenario" / "node_fills_by_block"]):
            files.ingest_node_fills(lake, path)
        files.ingest_snapshot(lake, work / "scenario" / "snapshots" / "clearinghouse_state.jsonl")
        files.ingest_asset_ctxs(lake, work / "scenario" / "asset_ctxs" / "asset_ctxs.jsonl")
        found = audit_run(lake, diagnostic_steps=0, write_tables=False)
        result = found.audit
        truth = truth_pools(work / "scenario" / "truth.json")
        planted = set(truth.filter(pl.col("exempt"))["user"].unique())
        skipped = skipped_actions(truth, policy)
        testable = set(skipped.filter(pl.col("skipped") >= MIN_STEPS_FOR_POWER)["user"]) & planted
        flagged = set(result.exemption.flagged["user"]) if result.exemption is not None else set()
        best = result.inference.best_rule
        return {
            "policy": policy,
            "exempt": exempt,
            "noise": noise,
            "seed": seed,
            "scale": scale,
            "steps": found.steps.height,
            "incomplete_steps": len(found.incomplete_steps),
            "pool_rows": found.pool_rows,
            "lost_legs": found.integrity["lost_legs"],
            "uncertain_rows": found.integrity["contradicted_rows"] + found.integrity["lost_leg_rows"],
            "best_rule": best,
            "recovered": best == policy,
            "recovered_equiv": best in EQUIVALENT.get(policy, {policy}),
            "planted": len(planted),
            "testable": len(testable),
            "flagged": len(flagged),
            "true_flags": len(flagged & planted),
            "false_flags": len(flagged - planted),
            "testable_found": len(flagged & testable),
            "seconds": round(time.perf_counter() - t0, 1),
            "fills": scenario["counts"]["fills"],
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def sweep(
    policies: Iterable[str],
    exempts: Iterable[int],
    noises: Iterable[str],
    seeds: Iterable[int],
    *,
    scale: str = "tiny",
    progress: Callable[[dict], None] | None = None,
) -> pl.DataFrame:
    rows = []
    for policy in policies:
        for exempt in exempts:
            for noise in noises:
                for seed in seeds:
                    row = run_scenario(policy, exempt, noise, seed, scale)
                    rows.append(row)
                    if progress:
                        progress(row)
    return pl.DataFrame(rows)


def summarize(df: pl.DataFrame) -> pl.DataFrame:
    """Per policy x noise: recovery rate, realized FDR (mean and max), power, clean-scenario silence."""
    df = df.with_columns(
        fdr=pl.when(pl.col("flagged") > 0).then(pl.col("false_flags") / pl.col("flagged")).otherwise(0.0),
    )
    return df.group_by("policy", "noise", maintain_order=True).agg(
        scenarios=pl.len(),
        recovered=pl.col("recovered").mean(),
        recovered_equiv=pl.col("recovered_equiv").mean(),
        fdr_mean=pl.col("fdr").filter(pl.col("exempt") > 0).mean(),
        fdr_max=pl.col("fdr").max(),
        power=pl.col("testable_found").sum() / pl.col("testable").sum().clip(lower_bound=1),
        testable=pl.col("testable").sum(),
        silent_when_clean=(pl.col("flagged").filter(pl.col("exempt") == 0) == 0).mean(),
        false_flags=pl.col("false_flags").sum(),
        uncertain_rows=pl.col("uncertain_rows").sum() if "uncertain_rows" in df.columns else pl.lit(0),
    )


def _fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def _total(df: pl.DataFrame, col: str) -> int:
    return int(df[col].sum()) if col in df.columns else 0


def markdown(df: pl.DataFrame, command: str) -> str:
    s = summarize(df)
    allq = df.with_columns(
        fdr=pl.when(pl.col("flagged") > 0).then(pl.col("false_flags") / pl.col("flagged")).otherwise(0.0)
    )
    clean = allq.filter(pl.col("exempt") == 0)
    planted = allq.filter(pl.col("exempt") > 0)
    power_all = planted["testable_found"].sum() / max(planted["testable"].sum(), 1)
    lines = [
        "# Validation: rule inference and exemption test against planted truth",
        "",
        f"Generated {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC by `{command}`.",
        "",
        "Each scenario is simulated, written in Hyperliquid's formats, ingested into a fresh lake, reconstructed "
        "(snapshot + fill replay -> ADL actions and pools) and audited (every rule scored on rank evidence with "
        "its own exemption test; the cheapest explanation named; accounts flagged at q = 0.05 under it). Only the "
        "scoring reads `truth.json`. "
        f"Power counts planted accounts the simulator passed over in at least {MIN_STEPS_FOR_POWER} actions.",
        "",
        "## Overall",
        "",
        f"* scenarios: {df.height} ({df['scale'][0]} scale); true rule recovered: {df['recovered'].mean():.0%} "
        f"(up to the lexicographic/leverage equivalence: {df['recovered_equiv'].mean():.0%}; target >= 99%)",
        f"* realized false discovery rate, scenarios with planted exemptions: mean {_fmt(planted['fdr'].mean(), '.3f')}, "
        f"max {allq['fdr'].max():.3f} (targets: mean <= 0.05, never above 0.2)",
        f"* power for planted accounts skipped in >= {MIN_STEPS_FOR_POWER} actions: {power_all:.2f} "
        f"({planted['testable_found'].sum()} of {planted['testable'].sum()}; target >= 0.95)",
        f"* no flags at all when nothing is planted: {_fmt((clean['flagged'] == 0).mean(), '.0%')} of clean scenarios "
        "(target >= 95%)",
        "",
        "## Per policy and noise level",
        "",
        "| policy | noise | scenarios | rule recovered | (equiv.) | FDR mean | FDR max | power | testable | silent when clean | false flags | rows left out |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    fmt = lambda v, p=2: "-" if v is None else f"{v:.{p}f}"  # noqa: E731
    for r in s.iter_rows(named=True):
        lines.append(
            f"| {r['policy']} | {r['noise']} | {r['scenarios']} | {fmt(r['recovered'])} | {fmt(r['recovered_equiv'])} | "
            f"{fmt(r['fdr_mean'], 3)} | {fmt(r['fdr_max'], 3)} | {fmt(r['power'])} | {r['testable']} | "
            f"{fmt(r['silent_when_clean'])} | {r['false_flags']} | {r['uncertain_rows']} |"
        )
    lines += [
        "",
        "Noise levels: `none`; `moderate` = " + ", ".join(f"{k}={v}" for k, v in NOISE["moderate"].items()) + ".",
        "",
        "Notes: `lexicographic` sorts by leverage first, so with continuous leverage it ranks exactly like "
        "`leverage`; the audit reports the two as inseparable. The cyclic walk ranks each action by address "
        "from the first account filled; allocation rules count as opportunities the candidates whose predicted "
        "share is at least one lot. Actions whose liquidated account has counter-legs without the winner leg "
        "(fills lost, as `drop_fills` does) are left out: "
        f"{_total(df, 'incomplete_steps')} such actions in this sweep. `wealth_pro_rata` (rule version 2) cuts by "
        "contracts in an action where no position it cuts is in profit (there is no profit to haircut).",
        "",
        "Reconstruction integrity (`forensics/reconstruct/integrity.py`, read from the data alone; column "
        '"rows left out"): a candidate row is never an opportunity, and is listed in a flag\'s evidence, when the '
        "owner's next fill reports a `startPosition` other than the replayed one (`state_contradicted`: a fill "
        "of the owner is missing in between), or when no later fill confirms the position and a trade with one "
        "leg (both legs of a trade share a `tid` in node data) of exactly its size, on the closing side, came "
        "after its last confirmation (`state_unconfirmed_lost_leg`: the position may be a ghost, closed in "
        "reality and never selected again). In this sweep: "
        f"{_total(df, 'lost_legs')} one-legged trades, {_total(df, 'uncertain_rows')} candidate rows left out "
        f"(of {_total(df, 'pool_rows')}). Without it, a ghost left by a lost ADL leg ranks at the top of later "
        "pools, is never selected and gets flagged (the previous sweep's false flags under moderate noise).",
        "",
        "Per-scenario rows: `docs/validation.csv`.",
        "",
    ]
    return "\n".join(lines)


# --- scenarios from another generator -------------------------------------------------------------------

# names the independent generator gives its rules -> the library's rules that rank identically
INDEPENDENT_RULES = {
    "pro_rata": {"contracts_pro_rata"},
    "leverage": {"leverage", "lexicographic"},
    "lexicographic": {"lexicographic", "leverage"},
}
#: our name for an independent rule whose formula is one reading of a documented rule: the independent
#: generator's ``binance`` ranks by ``pnl_pct x notional/account_value`` ("Binance multiplies by the maintenance
#: margin rate, a constant within one coin, left out", its truth's ``rule_formula``), i.e. the position's
#: maintenance margin in MarginRatio: ``binance_position_mm``, not the account's (``binance``)
INDEPENDENT_READINGS = {"binance": "binance_position_mm"}
# the robustness knobs the audit must survive, one at a time (forensics.simulate.damage)
DAMAGE_KNOBS = ("drop_fill_legs=0.01", "duplicate_block_lines=0.01", "drop_ctx_seconds=0.2", "skew_local_time_ms=2000")


#: what an independent row adds from :func:`score_behaviour`
INDEPENDENT_BEHAVIOUR_KEYS = (
    "planted_rule",
    "planted_changes",
    "rule_changes_schema",
    "reported_change",
    "reported_change_points",
    "change_wave_error",
    "windows_ok",
    "capped_flags",
    "kind_ok",
)


def independent_scenarios(root: Path) -> list[Path]:
    """Scenario directories under ``root`` (each with ``truth.json`` and node fills), sorted by name."""
    return sorted(p for p in root.iterdir() if (p / "truth.json").exists() and (p / "node_fills_by_block").exists())


def _ingest_scenario(lake: Lake, scenario: Path) -> None:
    """As ``liqf ingest hyperliquid`` would, in either layout: JSONL snapshot and contexts, or the archive's
    (snapshot export directory, per-minute asset contexts CSV, misc events)."""
    from rich.console import Console

    from pipelines.ingest import runner

    snapshot = scenario / "snapshot.jsonl"
    ctxs = scenario / "asset_ctxs.jsonl"
    if not snapshot.exists():
        snapshot = scenario / "snapshot"
        ctxs = next(iter(sorted((scenario / "asset_ctxs").glob("*.csv*"))), None)
    misc = [scenario / "misc_events_by_block"] if (scenario / "misc_events_by_block").exists() else []
    runner.run_file_ingest(
        lake,
        node_fills=[scenario / "node_fills_by_block"],
        snapshot=[snapshot],
        asset_ctxs=ctxs,
        misc_events=misc,
        console=Console(quiet=True),
    )


def run_independent(src: Path, damage: str = "none") -> dict:
    """Ingest one independent scenario (optionally a damaged copy of it) as a user would, run
    ``liqf analyze``'s core, and score the result against its ``truth.json`` (read only here)."""
    from forensics.simulate.damage import Damage, damage_scenario

    truth = orjson.loads((src / "truth.json").read_bytes())
    row = {
        "scenario": src.name,
        "damage": damage,
        "planted_rule": truth["rule"],
        "planted": len(truth["exempt_users"]),
        "truth_actions": len(truth["steps"]),
    }
    work = Path(tempfile.mkdtemp(prefix="liqf-independent-"))
    try:
        scenario = src
        if damage != "none":
            scenario = work / "scenario"
            row["damage_counts"] = damage_scenario(src, scenario, Damage.parse(damage))
        lake = Lake(work / "lake")
        t0 = time.perf_counter()
        _ingest_scenario(lake, scenario)
        t1 = time.perf_counter()
        result = audit_run(lake, diagnostic_steps=0, write_tables=False)
        t2 = time.perf_counter()
        planted = set(truth["exempt_users"])
        flagged = {f.user for f in result.flagged}
        best = result.best_rule
        rule = INDEPENDENT_READINGS.get(truth["rule"], truth["rule"])
        ok_rules = INDEPENDENT_RULES.get(rule, {rule})
        behaviour = score_behaviour(PlantedTruth.from_independent(truth), AuditView.of(result))
        switched = behaviour["planted_changes"] > 0
        return {
            **row,
            "behaviour": "switch" if switched else ("capped" if behaviour["exempt_kind"] == "capped" else "single"),
            "best_rule": best,
            # a switch: each window's rule and the change point within one wave; a single rule: no change reported
            "rule_ok": behaviour["rule_ok"]
            if switched
            else best in ok_rules and not result.rule_changes.get("changed"),
            **{k: behaviour[k] for k in INDEPENDENT_BEHAVIOUR_KEYS},
            "actions": result.steps.height,
            "flagged": len(flagged),
            "true_flags": len(flagged & planted),
            "false_flags": len(flagged - planted),
            "precision": len(flagged & planted) / len(flagged) if flagged else None,
            "recall": len(flagged & planted) / len(planted) if planted else None,
            "verdict": result.verdict,
            "ingest_s": round(t1 - t0, 2),
            "analyze_s": round(t2 - t1, 2),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def independent_markdown(rows: list[dict], command: str) -> str:
    fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    lines = [
        "# Validation on scenarios from an independent generator",
        "",
        f"Generated {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC by `{command}`.",
        "",
        "Each scenario (written by a generator that shares no code with `forensics/simulate`) is ingested from "
        "its Hyperliquid-format files into a fresh lake and analysed as `liqf analyze` does; only the scoring "
        "reads its `truth.json`. Damaged copies apply one knob of `forensics/simulate/damage.py` to the files. "
        "Targets: the planted rule named (pro_rata = `contracts_pro_rata`; leverage and lexicographic rank "
        "identically on continuous leverage), precision >= 0.95, recall >= 0.9, no flag in null scenarios.",
        "",
        "| scenario | damage | planted rule | named | ok | actions | planted | flagged | false | precision | recall | ingest s | analyze s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r.get("skipped"):
            lines.append(
                f"| {r['scenario']} | {r['damage']} | {r['planted_rule']} | skipped: {r['skipped']} | | | | | | | | | |"
            )
            continue
        lines.append(
            f"| {r['scenario']} | {r['damage']} | {r['planted_rule']} | {r['best_rule']} | "
            f"{'yes' if r['rule_ok'] else '**no**'} | {r['actions']} | {r['planted']} | {r['flagged']} | "
            f"{r['false_flags']} | {fmt(r['precision'])} | {fmt(r['recall'])} | {r['ingest_s']} | {r['analyze_s']} |"
        )
    done = [r for r in rows if not r.get("skipped")]
    if done:
        by_knob: dict[str, list[dict]] = {}
        for r in done:
            by_knob.setdefault(r["damage"], []).append(r)
        lines += [
            "",
            "## Per damage knob",
            "",
            "| damage | scenarios | rule named | false flags | min precision | min recall |",
            "|---|---|---|---|---|---|",
        ]
        for knob, rs in by_knob.items():
            precs = [r["precision"] for r in rs if r["precision"] is not None]
            recs = [r["recall"] for r in rs if r["recall"] is not None]
            lines.append(
                f"| {knob} | {len(rs)} | {sum(r['rule_ok'] for r in rs)}/{len(rs)} | "
                f"{sum(r['false_flags'] for r in rs)} | {fmt(min(precs) if precs else None)} | "
                f"{fmt(min(recs) if recs else None)} |"
            )
    special = [r for r in done if r.get("behaviour", "single") != "single"]
    if special:
        lines += [
            "",
            "## Venue behaviours (rule switch, capped exemptions)",
            "",
            "A switch is right when every reported window's rule is the rule in force over most of its actions and "
            "each planted change point has a reported one within one wave; capped flags should say `capped`.",
            "",
            "| scenario | damage | behaviour | planted | rule_changes | change points (planted/reported) | "
            "wave error | windows right | capped flags | kind right |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in special:
            reported = "-" if r["reported_change_points"] is None else r["reported_change_points"]
            lines.append(
                f"| {r['scenario']} | {r['damage']} | {r['behaviour']} | {r['planted_rule']} | "
                f"{r['rule_changes_schema']} | {r['planted_changes']}/{reported} | "
                f"{'-' if r['change_wave_error'] is None else r['change_wave_error']} | "
                f"{'-' if r['windows_ok'] is None else ('yes' if r['windows_ok'] else '**no**')} | "
                f"{'-' if r['capped_flags'] is None else r['capped_flags']} | {fmt(r['kind_ok'])} |"
            )
        if any(r["rule_changes_schema"] != "v3" for r in special):
            lines.append(
                "\n`rule_changes` other than `v3` (windows with their rule and change points): the audit does not "
                "give per-window rules yet, so a switch is not scored."
            )
    lines.append("")
    return "\n".join(lines)


# --- venue behaviours (issue 23): rule switches, capped exemptions, readings of a documented rule ----------

#: the sweep's behaviours: what the simulated venue does, as ``simulate.generate`` arguments (10 planted
#: accounts, as on the independent scenarios); the per-behaviour table of ``docs/validation_behaviours.md``
BEHAVIOURS: dict[str, dict[str, Any]] = {
    "single": {"policy": "hl_index", "exempt": 10},
    "switch": {"policy": "hl_index", "switch_policy": "bitmex", "switch_at": 0.5, "exempt": 10},
    "capped": {"policy": "hl_index", "exempt": 10, "exempt_kind": "capped", "exempt_cap": 0.3},
    "binance_position_mm": {"policy": "binance_position_mm", "exempt": 10},
    "hl_index_short_inverse": {"policy": "hl_index_short_inverse", "exempt": 10},
    "hl_node_score": {"policy": "hl_node_score", "exempt": 10},
    "null": {"policy": "hl_index", "exempt": 0},
}
BEHAVIOUR_TEXT = {
    "single": "ranks by one documented rule (hl_index) throughout, skips planted accounts",
    "switch": "ranks by hl_index, then silently by bitmex from the middle wave on",
    "capped": "never skips planted accounts but closes them only to 30% of the rule's take",
    "binance_position_mm": "Binance's LeveragePnl with the position's maintenance margin",
    "hl_index_short_inverse": "Hyperliquid's index with mark/entry for shorts too (the docs' formula literally)",
    "hl_node_score": "the node binary's score as reverse-engineered by OtterSec",
    "null": "hl_index, nothing planted",
}
#: rule names an audit may give each planted rule (beyond the rule itself): rules that rank identically by
#: construction, and the independent generator's names
ACCEPTED_RULES: dict[str, set[str]] = {
    **{k: v - {k} for k, v in EQUIVALENT.items()},
    **INDEPENDENT_RULES,
    # our hl_index takes entry/mark for shorts; the variant is the docs' mark/entry, the audit's hl_index_literal
    "hl_index_short_inverse": {"hl_index_literal"},
}
#: planted accounts count towards power when passed over (skip) or capped in at least this many actions
MIN_ACTIONS_FOR_POWER = {"skip": MIN_STEPS_FOR_POWER, "capped": 3}


def rule_matches(named: str | None, planted: str | None, same_order_as: Iterable[str] = ()) -> bool:
    """Whether the audit's ``named`` rule is the ``planted`` one: the same, one accepted for it, or reported
    together with it (``same_order_as``: rules that rank identically on these data)."""
    if named is None or planted is None:
        return False
    ok = {planted} | ACCEPTED_RULES.get(planted, set())
    return named in ok or bool(ok & set(same_order_as))


@dataclass(frozen=True)
class PlantedTruth:
    """What a scenario's generator planted, in the terms the scoring needs (from either generator's
    ``truth.json``): the rule of every ADL action in time order, the waves, the change points, the planted
    accounts and in how many actions each was passed over or capped."""

    steps: list[tuple[int, str]]  # (time_ms, rule) per action, in order
    waves: list[tuple[int, int]]  # (first, last action time) per wave, in order
    change_times: list[int]  # time of the first action of each new rule
    exempt: frozenset[str]
    exempt_kind: str  # "skip" | "capped"
    exempt_actions: dict[str, int]

    @property
    def rules(self) -> list[str]:
        """The rules in force, one per window, in order."""
        out: list[str] = []
        for _, rule in self.steps:
            if not out or out[-1] != rule:
                out.append(rule)
        return out

    def wave_of(self, time_ms: int) -> int:
        """Index of the wave holding ``time_ms``; a time between waves belongs to the next one (a new rule
        takes effect from it), a time after the last to the last."""
        for i, (_first, last) in enumerate(self.waves):
            if time_ms <= last:
                return i
        return len(self.waves) - 1

    def rules_during(self, from_ms: int, to_ms: int) -> set[str]:
        """The rule of most actions between the two times (every rule with that many, on a tie; empty when
        there is no action)."""
        rules = [r for t, r in self.steps if from_ms <= t <= to_ms]
        most = max((rules.count(r) for r in rules), default=0)
        return {r for r in rules if rules.count(r) == most}

    @classmethod
    def from_simulator(cls, truth: dict[str, Any]) -> PlantedTruth:
        steps = [(int(st["time"]), str(st.get("rule", truth["policy"]))) for st in truth["steps"]]
        kind = truth.get("exempt_kind", "skip")
        column = "capped_exempt" if kind == "capped" else "skipped_exempt"
        counts: dict[str, int] = {}
        for st in truth["steps"]:
            for u in {r["user"] if isinstance(r, dict) else r for r in st.get(column, [])}:
                counts[u] = counts.get(u, 0) + 1
        return cls(
            steps,
            [(int(w["start_ms"]), int(w["end_ms"])) for w in truth["waves"]],
            [int(c["time_ms"]) for c in truth.get("change_points", [])],
            frozenset(truth["exempt"]),
            kind,
            {u: counts.get(u, 0) for u in truth["exempt"]},
        )

    @classmethod
    def from_independent(cls, truth: dict[str, Any]) -> PlantedTruth:
        steps = [(int(st["time"]), str(st.get("rule", truth["rule"]))) for st in truth["steps"]]
        steps = [(t, INDEPENDENT_READINGS.get(r, r)) for t, r in steps]
        changes = [t for (t, r), (_, prev) in zip(steps[1:], steps) if r != prev]
        kind = "capped" if truth.get("exempt_mode", "skip") == "cap" else "skip"
        if kind == "capped":
            counts: dict[str, int] = {}
            for st in truth["steps"]:
                for u in {r["user"] for r in st.get("capped_exempt", [])}:
                    counts[u] = counts.get(u, 0) + 1
        else:
            counts = dict(truth.get("exempt_inside_steps", {}))
        return cls(
            steps,
            [(int(w["first_time"]), int(w["last_time"])) for w in truth["waves"]],
            changes,
            frozenset(truth["exempt_users"]),
            kind,
            {u: counts.get(u, 0) for u in truth["exempt_users"]},
        )


@dataclass(frozen=True)
class ReportedChanges:
    """The audit's ``rule_changes`` as specified for issue 23 (``schema`` "v3": windows with their rule and
    the change points), or what an older audit gives (``schema`` "legacy": only ``changed`` is read; "none":
    no answer at all)."""

    schema: str
    changed: bool | None
    windows: list[dict[str, Any]] = field(default_factory=list)
    change_points: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def read(cls, rule_changes: dict[str, Any] | None) -> ReportedChanges:
        rc = rule_changes or {}
        if "change_points" in rc:
            return cls("v3", bool(rc.get("changed")), list(rc.get("windows") or []), list(rc["change_points"]))
        if "changed" in rc:
            return cls("legacy", bool(rc["changed"]))
        return cls("none", None)


@dataclass(frozen=True)
class AuditView:
    """The parts of an audit's answer the behaviour scoring reads (``AuditResult`` fields; ``kind`` is None
    per flag while the audit does not say skipped or capped)."""

    best_rule: str | None
    same_order_as: tuple[str, ...]
    flags: dict[str, str | None]  # user -> kind
    changes: ReportedChanges
    actions: int = 0

    @classmethod
    def of(cls, result: Any) -> AuditView:
        best = result.best_rule
        same: tuple[str, ...] = ()
        if best is not None:
            same = tuple(result.audit.inference.fit(best).same_order_as)
        flags = {f.user: getattr(f, "kind", None) for f in result.flagged}
        return cls(best, same, flags, ReportedChanges.read(result.rule_changes), result.steps.height)


def score_behaviour(planted: PlantedTruth, found: AuditView) -> dict[str, Any]:
    """Score one audit against what was planted: the rule (or each window's rule and every change point
    within one wave), whether a change was reported, and the flags (precision, recall, power, their kinds)."""
    rules = planted.rules
    reported = found.changes
    row: dict[str, Any] = {
        "planted_rule": " -> ".join(rules) if rules else None,
        "planted_changes": len(planted.change_times),
        "waves": len(planted.waves),
        "best_rule": found.best_rule,
        "rule_changes_schema": reported.schema,
        "reported_change": reported.changed,
        "reported_change_points": len(reported.change_points) if reported.schema == "v3" else None,
        "change_wave_error": None,
        "windows_ok": None,
    }
    if reported.schema == "v3":
        planted_waves = [planted.wave_of(t) for t in planted.change_times]
        found_waves = [planted.wave_of(int(cp["time_ms"])) for cp in reported.change_points]
        if planted_waves:
            errors = [min((abs(f - p) for f in found_waves), default=None) for p in planted_waves]
            row["change_wave_error"] = None if None in errors else max(e for e in errors if e is not None)
        # each reported window against the rule in force over most of its actions (either one on a tie)
        checked = [(w["rule"], planted.rules_during(int(w["from_ms"]), int(w["to_ms"]))) for w in reported.windows]
        checked = [(named, rules) for named, rules in checked if rules]
        row["windows_ok"] = bool(checked) and all(
            any(rule_matches(named, rule) for rule in rules) for named, rules in checked
        )
    if len(rules) > 1:  # a switch: each window's rule and every change point within one wave
        row["rule_ok"] = (
            None
            if reported.schema != "v3"
            else bool(
                reported.changed
                and row["windows_ok"]
                and row["change_wave_error"] is not None
                and row["change_wave_error"] <= 1
                and len(reported.change_points) == len(planted.change_times)
            )
        )
    else:
        row["rule_ok"] = rule_matches(found.best_rule, rules[0] if rules else None, found.same_order_as)
    flagged = set(found.flags)
    true = flagged & planted.exempt
    testable = {u for u, n in planted.exempt_actions.items() if n >= MIN_ACTIONS_FOR_POWER[planted.exempt_kind]}
    kinds = [k for k in found.flags.values() if k is not None]
    row.update(
        exempt_kind=planted.exempt_kind,
        planted=len(planted.exempt),
        testable=len(testable),
        flagged=len(flagged),
        true_flags=len(true),
        false_flags=len(flagged - planted.exempt),
        testable_found=len(true & testable),
        precision=len(true) / len(flagged) if flagged else None,
        recall=len(true) / len(planted.exempt) if planted.exempt else None,
        skipped_flags=sum(k == "skipped" for k in kinds) if kinds else None,
        capped_flags=sum(k == "capped" for k in kinds) if kinds else None,
        flag_kind_reported=bool(kinds) or not flagged,
        kind_ok=(
            sum(found.flags[u] == ("capped" if planted.exempt_kind == "capped" else "skipped") for u in true)
            / len(true)
            if true and kinds
            else None
        ),
    )
    return row


def generate_behaviour(name: str, out: Path, *, seed: int, scale: str = "small", formats: str = "node") -> dict:
    """Write one scenario of behaviour ``name`` (:data:`BEHAVIOURS`) to ``out``; returns its ``scenario.json``."""
    if name not in BEHAVIOURS:
        raise ValueError(f"unknown behaviour {name!r}; known: {', '.join(BEHAVIOURS)}")
    return simulate.generate(out, scale=scale, seed=seed, formats=formats, **BEHAVIOURS[name])


def ingest_simulated(lake: Lake, scenario_dir: Path, scenario: dict[str, Any]) -> None:
    """Ingest a simulator scenario as a user would: the node fills, and the snapshot and asset contexts of its
    layout (node: JSONL; real: the clearinghouse export, the archive's per-minute contexts, misc events)."""
    from rich.console import Console

    from pipelines.ingest import runner

    paths = scenario["paths"]
    snapshot = paths["snapshot"]
    runner.run_file_ingest(
        lake,
        node_fills=[scenario_dir / "node_fills_by_block"],
        snapshot=[scenario_dir / (Path(snapshot[0]).parent if isinstance(snapshot, list) else snapshot)],
        asset_ctxs=scenario_dir / paths["asset_ctxs"],
        misc_events=[scenario_dir / "misc_events_by_block"] if "misc_events" in paths else [],
        console=Console(quiet=True),
    )


def run_behaviour(
    name: str, seed: int, scale: str = "small", *, formats: str = "node", keep: Path | None = None
) -> dict[str, Any]:
    """Simulate behaviour ``name``, ingest it, run ``liqf analyze``'s core and score it against the truth
    (read only for the scoring). ``keep``: write the scenario there and leave it (else a temporary folder)."""
    work = Path(tempfile.mkdtemp(prefix="liqf-behaviour-"))
    try:
        scenario_dir = keep if keep is not None else work / "scenario"
        t0 = time.perf_counter()
        scenario = generate_behaviour(name, scenario_dir, seed=seed, scale=scale, formats=formats)
        lake = Lake(work / "lake")
        ingest_simulated(lake, scenario_dir, scenario)
        t1 = time.perf_counter()
        result = audit_run(lake, diagnostic_steps=0, write_tables=False)
        t2 = time.perf_counter()
        planted = PlantedTruth.from_simulator(orjson.loads((scenario_dir / "truth.json").read_bytes()))
        return {
            "behaviour": name,
            "seed": seed,
            "scale": scale,
            "formats": formats,
            "truth_actions": len(planted.steps),
            "actions": result.steps.height,
            **score_behaviour(planted, AuditView.of(result)),
            "verdict": result.verdict,
            "simulate_ingest_s": round(t1 - t0, 1),
            "analyze_s": round(t2 - t1, 1),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def behaviour_sweep(
    names: Iterable[str],
    seeds: Iterable[int],
    *,
    scale: str = "small",
    keep_root: Path | None = None,
    progress: Callable[[dict], None] | None = None,
) -> pl.DataFrame:
    """:func:`run_behaviour` for every behaviour and seed (scenarios kept under ``keep_root/<name>-s<seed>``)."""
    rows = []
    for name in names:
        for seed in seeds:
            keep = keep_root / f"{name}-s{seed}" if keep_root is not None else None
            row = run_behaviour(name, seed, scale, keep=keep)
            rows.append(row)
            if progress:
                progress(row)
    return pl.DataFrame(rows, infer_schema_length=None)


def _pooled(num: int, den: int) -> float | None:
    return num / den if den else None


def behaviour_summary(df: pl.DataFrame) -> list[dict[str, Any]]:
    """Per behaviour: scenarios, the rule (or windows and change point) right, flags' precision and recall
    (pooled over scenarios, and the worst scenario), power, false flags, how many reported a change, and
    the flags' kinds."""
    out = []
    for name in dict.fromkeys(df["behaviour"].to_list()):
        d = df.filter(pl.col("behaviour") == name)
        ok = [v for v in d["rule_ok"].to_list() if v is not None]
        precs = [v for v in d["precision"].to_list() if v is not None]
        recs = [v for v in d["recall"].to_list() if v is not None]
        changed = [v for v in d["reported_change"].to_list() if v is not None]
        errs = [v for v in d["change_wave_error"].to_list() if v is not None]
        kinds = [v for v in d["kind_ok"].to_list() if v is not None]
        out.append(
            {
                "behaviour": name,
                "scenarios": d.height,
                "rule_ok": _pooled(sum(ok), len(ok)),
                "rule_scored": len(ok),
                "change_wave_error_max": max(errs) if errs else None,
                "reported_change": _pooled(sum(changed), len(changed)),
                "precision": _pooled(int(d["true_flags"].sum()), int(d["flagged"].sum())),
                "precision_min": min(precs) if precs else None,
                "recall": _pooled(int(d["true_flags"].sum()), int(d["planted"].sum())),
                "recall_min": min(recs) if recs else None,
                "power": _pooled(int(d["testable_found"].sum()), int(d["testable"].sum())),
                "false_flags": int(d["false_flags"].sum()),
                "flagged": int(d["flagged"].sum()),
                "capped_flags": int(d["capped_flags"].fill_null(0).sum()),
                "kind_ok": _pooled(sum(kinds), len(kinds)) if kinds else None,
            }
        )
    return out


def false_change_rate(df: pl.DataFrame) -> tuple[float | None, int]:
    """Share of single-rule scenarios (every behaviour without a planted change) where the audit reported a
    rule change, and how many such scenarios had an answer to count."""
    single = [v for v in df.filter(pl.col("planted_changes") == 0)["reported_change"].to_list() if v is not None]
    return _pooled(sum(single), len(single)), len(single)


def behaviour_markdown(df: pl.DataFrame, command: str) -> str:
    fmt = lambda v, p=2: "-" if v is None else f"{v:.{p}f}"  # noqa: E731
    rate, n_single = false_change_rate(df)
    schemas = set(df["rule_changes_schema"].to_list())
    null = df.filter(pl.col("behaviour") == "null")
    lines = [
        "# Validation per venue behaviour: rule switches, capped exemptions, readings of a documented rule",
        "",
        f"Generated {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC by `{command}`.",
        "",
        "Each scenario is simulated (`forensics/simulate`, the behaviour's arguments in "
        "`pipelines/analysis/validation.py` `BEHAVIOURS`), written in Hyperliquid's formats, ingested into a fresh "
        "lake and audited as `liqf analyze` does; only the scoring reads `truth.json`. A switch is scored on the "
        "audit's `rule_changes`: every reported window's rule against the rule in force over most of its actions, "
        "and every planted change point matched by a reported one within one wave (waves as the simulator counts "
        "them: ADL actions more than 5 s apart start a new one). Flags count when the planted account is flagged "
        f"(either kind); power counts planted accounts passed over in >= {MIN_ACTIONS_FOR_POWER['skip']} actions "
        f"(capped: capped in >= {MIN_ACTIONS_FOR_POWER['capped']}). Targets: the rule (or each window's rule and "
        "the change point within one wave), precision >= 0.95, recall >= 0.9 per behaviour; no change reported in "
        ">= 95% of single-rule scenarios; no soft-exemption flag in the null scenarios.",
        "",
        "## Overall",
        "",
        f"* scenarios: {df.height} ({df['scale'][0]} scale), behaviours: {df['behaviour'].n_unique()}",
        f"* false-change rate (single-rule scenarios where the audit reported a rule change): {fmt(rate)} "
        f"of {n_single} (target <= 0.05)",
        f"* null scenarios: {int(null['flagged'].sum()) if null.height else '-'} flag(s), "
        f"{int(null['capped_flags'].fill_null(0).sum()) if null.height else '-'} soft-exemption (capped) flag(s)",
    ]
    if schemas - {"v3"}:
        lines.append(
            "* **the audit's `rule_changes` does not yet carry windows with their rule and change points** "
            f"(schema seen: {', '.join(sorted(schemas))}): switches are not scored (rule column `-`) and the "
            "false-change rate reads only its `changed` flag"
        )
    if not df["flag_kind_reported"].all():
        lines.append(
            "* **the audit's flags do not yet say their kind** (`FlaggedAccount.kind`): capped flags and the kind "
            "column are not scored"
        )
    lines += [
        "",
        "## Per behaviour",
        "",
        "| behaviour | what the venue did | scenarios | rule (or windows + change point) | max change-point "
        "error (waves) | reported a change | precision (min) | recall (min) | power | false flags | capped flags | "
        "kind right |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in behaviour_summary(df):
        rule = "-" if r["rule_scored"] == 0 else f"{fmt(r['rule_ok'])} of {r['rule_scored']}"
        lines.append(
            f"| {r['behaviour']} | {BEHAVIOUR_TEXT.get(r['behaviour'], '')} | {r['scenarios']} | {rule} | "
            f"{'-' if r['change_wave_error_max'] is None else r['change_wave_error_max']} | "
            f"{fmt(r['reported_change'])} | {fmt(r['precision'])} ({fmt(r['precision_min'])}) | "
            f"{fmt(r['recall'])} ({fmt(r['recall_min'])}) | {fmt(r['power'])} | {r['false_flags']} | "
            f"{r['capped_flags']} | {fmt(r['kind_ok'])} |"
        )
    lines += [
        "",
        "## Per scenario",
        "",
        "| behaviour | seed | planted rule | named | ok | change points (planted/reported) | wave error | actions "
        "(truth/audit) | planted | flagged | false | precision | recall | analyze s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in df.iter_rows(named=True):
        lines.append(
            f"| {r['behaviour']} | {r['seed']} | {r['planted_rule']} | {r['best_rule']} | "
            f"{'-' if r['rule_ok'] is None else ('yes' if r['rule_ok'] else '**no**')} | "
            f"{r['planted_changes']}/{'-' if r['reported_change_points'] is None else r['reported_change_points']} | "
            f"{'-' if r['change_wave_error'] is None else r['change_wave_error']} | "
            f"{r['truth_actions']}/{r['actions']} | {r['planted']} | {r['flagged']} | {r['false_flags']} | "
            f"{fmt(r['precision'])} | {fmt(r['recall'])} | {r['analyze_s']} |"
        )
    lines += [
        "",
        "Readings: `hl_index` ranks shorts by entry/mark (so a profitable short has a ratio > 1); "
        "`hl_index_short_inverse` by mark/entry, the docs' formula taken literally, which the audit calls "
        "`hl_index_literal` (accepted as the same rule). `binance_position_mm` puts the position's maintenance "
        "margin in Binance's MarginRatio where `binance` puts the account's. `hl_node_score` is "
        "`max(|notional|/account_value, 1e-8) x max(max(pnl,0)/entry_notional, 1e-8)` (OtterSec, 2026-06-22): "
        "for a profitable position that is BitMEX's PnL% x leverage, so the two rank alike wherever every "
        "position above the cut is in profit.",
        "",
        'One scenario of a behaviour: `generate_behaviour(name, DIR, seed=1, scale="small")` '
        "(`pipelines.analysis.validation`), i.e. `forensics.simulate.generate(DIR, scale=..., seed=..., "
        "**BEHAVIOURS[name])`. Its `truth.json` names the rule windows (`rule_windows`), the change points "
        "(`change_points`: first step, wave, time and block of the new rule), the switch (`switch`), the exemption "
        "kind (`exempt_kind`, `exempt_cap`) and per step the `rule`, the `wave` and the `capped_exempt` rows (rank, "
        "the rule's take, the take).",
        "",
        "Per-scenario rows: `docs/validation_behaviours.csv`.",
        "",
    ]
    return "\n".join(lines)
