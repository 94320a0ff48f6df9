"""The audit report: gather what the lake holds for a venue and window (the analyses' tables; who runs them is
the caller's: `liqf report` runs them first through :mod:`pipelines.analysis.pipeline`, Dagster orders them
in the asset graph) and what the audit's document adds (:func:`audit_document`), render it, write
``report.html``, ``report.pdf`` and ``report.json``.

Whether the report is about simulated data is decided from provenance alone (:func:`simulation`): the marks the
ingest recorded per input (``ingest_runs.generated_by``: a generator's ``scenario.json`` or a planted
``truth.json`` beside an input file, or a venue server that declared itself the local sandbox), never from the
data's content.

The audit's document is :meth:`pipelines.analysis.audit.AuditResult.as_json` and these keys when present (each
section renders only when its key is there):

* ``shape_violations``: ``{"rule", "total", "actions", "per_action": [{"step_id", "violations"}], "rows":
  [{"step_id", "user", "coin", "rank", "cut_rank"}], "complete"}`` (:func:`audit_document` derives it from the
  result's evidence while ``as_json`` lacks it);
* ``rule_changes["windows"]``: ``[{"first_action", "last_action", "from_ms", "to_ms", "rule", "cost"}]``;
* ``flagged[i]["kind"]`` in ``{"skipped", "capped"}``; a capped flag's ``capped_in``: ``[{"step_id", "coin",
  "taken", "implied"}]`` (what the venue took against what the rule implies);
* ``carve_outs``: ``[{"account", "rule", "source", "covered_actions"}]``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import polars as pl

from forensics import report as report_mod
from forensics.audit import kernel
from forensics.audit.diagnostics import DIAGNOSTIC_STEPS
from forensics.report import charts
from forensics.tables import ALL_TABLES
from pipelines import catalog, quality
from pipelines.lake import Lake
from pipelines.version import code_version

if TYPE_CHECKING:
    from pipelines.analysis.audit import AuditResult

#: shape-violation rows listed in the report and its document at most (the counts are always complete)
SHAPE_ROWS = 500


@dataclass(frozen=True)
class ReportPaths:
    html: Path
    pdf: Path | None
    json: Path | None = None


@dataclass(frozen=True)
class Simulation:
    """Whether the report is about generated data, and what in the lake's provenance says so."""

    simulated: bool
    evidence: list[str]

    def as_json(self) -> dict[str, Any]:
        return {"simulated": self.simulated, "evidence": self.evidence}


def simulation(inputs: list[dict[str, Any]]) -> Simulation:
    """Simulated when any input of the report carries a generator's mark in the ingest ledger (``generated_by``,
    recorded at ingest from where the input came from); the evidence names each such input and its mark."""
    marked = [r for r in inputs if r.get("generated_by")]
    evidence = [f"{r['source_name']} ({r['source']}): {r['generated_by']}" for r in marked]
    return Simulation(bool(marked), evidence)


def audit_document(result: AuditResult) -> dict[str, Any]:
    """The audit's JSON as the report reads it: :meth:`AuditResult.as_json`, plus ``shape_violations`` of the
    named rule taken from the result's evidence while ``as_json`` does not carry them."""
    doc = result.as_json()
    if "shape_violations" not in doc:
        doc["shape_violations"] = _shape_violations(result)
    return doc


def _shape_violations(result: AuditResult) -> dict[str, Any] | None:
    idn = result.audit.inference
    ev, rule = idn.evidence, idn.best_rule
    if ev is None or rule is None:
        return None
    per = ev.action_values(rule, kernel.A_SHAPE)
    step_ids = ev.actions["step_id"].to_list()
    per_action = [{"step_id": int(s), "violations": int(n)} for s, n in zip(step_ids, per) if n > 0]
    rows = ev.rows.get(rule)
    listed: list[dict[str, Any]] = []
    if rows is not None and rows.height:
        cols = [c for c in ("step_id", "user", "coin", "rank", "cut_rank") if c in rows.columns]
        listed = rows.filter(pl.col("shape_violation")).select(cols).sort("step_id", "rank").head(SHAPE_ROWS).to_dicts()
    total = int(per.sum())
    return {
        "rule": rule,
        "total": total,
        "actions": len(step_ids),
        "per_action": per_action,
        "rows": listed,
        "complete": len(listed) == total,
    }


def _ms_to_text(ms: int | None) -> str:
    if ms is None:
        return "–"
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _df(con: duckdb.DuckDBPyConnection, sql: str, params: dict) -> pl.DataFrame:
    return con.execute(sql, params).pl()


def _matching_document(
    audit: Mapping[str, Any] | None, fits: pl.DataFrame, notes: list[str]
) -> Mapping[str, Any] | None:
    """``audit`` when it is the document of the run that wrote the rule fits (same verdict, same cost per
    rule); otherwise None and a note, so the report never mixes two runs."""
    if audit is None:
        return None
    doc_costs = {r.get("name"): r.get("cost") for r in audit.get("rules") or []}
    table_costs = dict(zip(fits["rule"].to_list(), fits["cost"].to_list())) if fits.height else {}
    table_verdict = fits["verdict"][0] if fits.height else audit.get("verdict")
    if audit.get("verdict") != table_verdict or doc_costs != table_costs:
        notes.append("the audit's document is from another run than the audit tables: its sections are left out")
        return None
    return audit


SHAPE_KINDS = {
    "below_cut": "selected below the cut",
    "partial": "closed partly above the cut",
    "allocation": "allocation off its fitted share",
    "unranked": "not producible by the rule",
}


def _shape_kind(row: Mapping[str, Any], allocation: bool) -> str:
    """Why a selection is a shape violation, as the audit's kernel decides it: for a queue rule, either the
    account ranks below the cut (the walk took it after where it should have stopped) or it ranks above the cut
    and was closed only partly although the walk went on past it; for an allocation rule, a take off the
    fitted share."""
    if allocation:
        return SHAPE_KINDS["allocation"]
    rank, cut = row.get("rank"), row.get("cut_rank")
    if rank is None or cut is None:
        return SHAPE_KINDS["unranked"]
    return SHAPE_KINDS["below_cut"] if rank > cut else SHAPE_KINDS["partial"]


def _shape_section(
    con: duckdb.DuckDBPyConnection,
    doc: Mapping[str, Any] | None,
    fits: pl.DataFrame,
    n_steps: int,
    venue: str,
) -> dict[str, Any] | None:
    """The named rule's shape violations: counts always (rule fits), per action (with its coin and time) and
    listed with their kind (:func:`_shape_kind`) when the audit's document carries them."""
    best = fits.filter(pl.col("is_best")) if fits.height else fits
    if not best.height:
        return None
    fit = best.row(0, named=True)
    section: dict[str, Any] = {
        "rule": fit["rule"],
        "total": int(fit["shape_violations"] or 0),
        "actions": int(fit["steps"] or n_steps),
        "per_action": None,
        "rows": [],
        "complete": False,
        "kinds": {},
    }
    sv = (doc or {}).get("shape_violations")
    if not isinstance(sv, Mapping) or sv.get("rule") != fit["rule"]:
        return section
    per_action = [dict(a) for a in sv.get("per_action") or []]
    rows = [dict(r) for r in sv.get("rows") or []]
    ids = sorted({int(r["step_id"]) for r in rows} | {int(a["step_id"]) for a in per_action})
    info: dict[int, tuple[str, int]] = {}
    if ids:
        found = con.execute(
            "SELECT step_id, coin, time_ms FROM adl_steps WHERE venue = $venue AND list_contains($ids, step_id)",
            {"venue": venue, "ids": ids},
        ).fetchall()
        info = {int(step_id): (coin, time_ms) for step_id, coin, time_ms in found}
    allocation = fit["kind"] == "allocation"
    for r in rows:
        r["kind"] = _shape_kind(r, allocation)
        r.setdefault("coin", info.get(int(r["step_id"]), ("",))[0])
        section["kinds"][r["kind"]] = section["kinds"].get(r["kind"], 0) + 1
    for a in per_action:
        coin, time_ms = info.get(int(a["step_id"]), ("", None))
        a.update(coin=coin, time=_ms_to_text(time_ms))
    section.update(
        total=int(sv.get("total", section["total"])),
        actions=int(sv.get("actions", section["actions"])),
        per_action=per_action,
        rows=rows,
        complete=bool(sv.get("complete")) and len(rows) == int(sv.get("total", -1)),
    )
    return section


def _rule_sentence(fits: pl.DataFrame, verdict: str, shapes: dict[str, Any] | None) -> str:
    """The named rule's cost in words an auditor reads right: "27 shape violations in 3 of 41 actions"."""
    best = fits.filter(pl.col("is_best")) if fits.height else fits
    if not best.height:
        return verdict
    fit = best.row(0, named=True)
    n = int(fit["steps"] or 0)
    shape = int(fit["shape_violations"] or 0)
    where = f"over {n:,} actions"
    if shapes is not None and shapes.get("per_action") is not None:
        where = f"in {len(shapes['per_action']):,} of {shapes['actions']:,} actions"
    text = (
        f"{fit['rule']}: {fit['exemptions_needed']:,} exemption(s) needed, {fit['residual_skips']:,} residual "
        f"skip(s), {shape:,} shape violation(s) {where}"
    )
    others = fits.filter(~pl.col("is_best") & ~pl.col("rule").is_in(_same_order(fit)))
    if others.height:
        nxt = others.sort("cost", "rule").row(0, named=True)
        text += f"; next {nxt['rule']} costs {nxt['cost']:,} (margin {nxt['cost'] - fit['cost']:,})"
    return text


def _same_order(fit: dict[str, Any]) -> list[str]:
    same = fit.get("same_order_as")
    if isinstance(same, str):
        return [x.strip() for x in same.split(",") if x.strip()]
    return list(same or [])


def _rule_windows(doc: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The rule in force per window (``rule_changes["windows"]``), when the audit's document has them."""
    changes = (doc or {}).get("rule_changes")
    out = []
    for w in (changes.get("windows") if isinstance(changes, Mapping) else None) or []:
        rule = w.get("rule") or w.get("best_rule")
        if rule is None or w.get("from_ms") is None or w.get("to_ms") is None:
            continue
        out.append(
            {
                "rule": str(rule),
                "from_ms": int(w["from_ms"]),
                "to_ms": int(w["to_ms"]),
                "from": _ms_to_text(int(w["from_ms"])),
                "to": _ms_to_text(int(w["to_ms"])),
                "first_action": w.get("first_action"),
                "last_action": w.get("last_action"),
                "actions": w.get("steps"),
                "cost": w.get("cost"),
                # what the window's own rule saves against the rule named for the whole window (the audit's
                # current document; issue 23's carries ``cost`` instead)
                "gain": w.get("cost_gain_over_global"),
                "changed": w.get("changed"),
            }
        )
    return out


def _carve_outs(doc: Mapping[str, Any] | None) -> list[dict[str, Any]] | None:
    """Accounts a carve-out the venue discloses covers (None when the audit does not report carve-outs)."""
    if doc is None or "carve_outs" not in doc:
        return None
    return [dict(c) for c in doc.get("carve_outs") or []]


def gather(
    lake: Lake,
    db_path: Path,
    *,
    venue: str,
    since_ms: int | None,
    until_ms: int | None,
    q: float,
    gap_seconds: float,
    command: str,
    notes: list[str] | None = None,
    audit: Mapping[str, Any] | None = None,
) -> dict:
    """Everything the template renders. ``audit``: the audit's document (:func:`audit_document`) of the run that
    wrote the tables; sections that need it are left out without it, or when it disagrees with the tables."""
    notes = list(notes or [])
    for table, producer in (("adl_rule_fits", "liqf analyze"), ("adl_waves", "liqf haircuts")):
        if not (lake.table_dir(table) / f"venue={venue}").exists():
            notes.append(f"no {table} for {venue} in the lake: run `{producer}` (or `liqf report`, which runs both)")
    catalog.refresh(lake, db_path)
    con = catalog.connect_read_only(db_path)
    p = {
        "venue": venue,
        "lo": since_ms if since_ms is not None else 0,
        "hi": until_ms if until_ms is not None else 2**62,
    }
    win = "venue = $venue AND time_ms BETWEEN $lo AND $hi"
    try:
        totals = con.execute(f"SELECT count(*), min(time_ms), max(time_ms) FROM fills WHERE {win}", p).fetchone()
        liq = con.execute(
            f"SELECT count(*), coalesce(sum(notional_usd), 0) FROM liquidations WHERE {win}", p
        ).fetchone()
        adl = con.execute(
            f'SELECT count(*), coalesce(sum(notional_usd), 0), count(DISTINCT "user") FROM adl_fills WHERE {win}', p
        ).fetchone()
        per_second = _df(
            con,
            f"""
            WITH l AS (SELECT time_ms // 1000 AS t_s, count(*) AS n FROM liquidations WHERE {win} GROUP BY 1),
                 a AS (SELECT time_ms // 1000 AS t_s, count(*) AS n FROM adl_fills WHERE {win} GROUP BY 1)
            SELECT coalesce(l.t_s, a.t_s) AS t_s, coalesce(l.n, 0) AS liquidations, coalesce(a.n, 0) AS adl
            FROM l FULL JOIN a USING (t_s) ORDER BY 1""",
            p,
        )
        coins = _df(
            con,
            f"""
            SELECT coin, count(*) AS legs, sum(notional_usd)::DOUBLE AS usd, count(DISTINCT "user") AS accounts,
                   count(*) FILTER (WHERE is_partial) AS partial
            FROM adl_fills WHERE {win} GROUP BY 1 ORDER BY usd DESC, coin LIMIT 25""",
            p,
        )
        steps = _df(con, f"SELECT * FROM adl_steps WHERE {win} ORDER BY step_id", p)
        fits = _df(con, "SELECT * FROM adl_rule_fits WHERE venue = $venue ORDER BY cost, rule", {"venue": venue})
        flags = _df(con, "SELECT * FROM exemption_flags WHERE venue = $venue", {"venue": venue})
        waves = _df(con, "SELECT * FROM adl_waves WHERE venue = $venue ORDER BY wave", {"venue": venue})
        policies = _df(
            con,
            """
            SELECT policy, sum(haircut_usd) AS haircut_usd, sum(overshoot_usd) AS overshoot_usd,
                   max(accounts_touched) AS accounts_touched, max(max_haircut_share) AS max_haircut_share
            FROM policy_counterfactuals WHERE venue = $venue GROUP BY 1 ORDER BY overshoot_usd NULLS LAST""",
            {"venue": venue},
        )
        backstop = _df(
            con,
            "SELECT * FROM backstop_coverage WHERE venue = $venue AND coverage_ratio IS NOT NULL ORDER BY time_ms",
            {"venue": venue},
        )
        runs = _df(con, "SELECT * FROM ingest_runs WHERE venue = $venue ORDER BY source, source_name", {"venue": venue})
        quarantine = _df(
            con,
            "SELECT reason, count(*) AS n FROM quarantine WHERE venue = $venue GROUP BY 1 ORDER BY 2 DESC LIMIT 30",
            {"venue": venue},
        )
        fills_sample = _df(con, f"SELECT * FROM fills WHERE {win}", p)
        positions = _df(con, "SELECT * FROM position_snapshots WHERE venue = $venue", {"venue": venue})
        doc = _matching_document(audit, fits, notes)
        shapes = _shape_section(con, doc, fits, steps.height, venue)
    finally:
        con.close()

    quality_rows = []
    for name, df in (("fills", fills_sample), ("position_snapshots", positions)):
        for severity in (quality.BLOCKING, quality.WARN):
            res = quality.validate(ALL_TABLES[name], df, severity)
            quality_rows.append(
                {
                    "table": name,
                    "severity": severity,
                    "success": res.success,
                    "description": res.description,
                    "rows": res.rows,
                }
            )

    best = fits.filter(pl.col("is_best"))["rule"].to_list()
    best_rule = best[0] if best else None
    verdict = fits["verdict"][0] if fits.height else "no ADL steps to analyse"
    flagged = flags.filter(pl.col("flagged")).sort("q_value") if flags.height else flags
    doc_flags = {f.get("user"): f for f in (doc or {}).get("flagged") or [] if isinstance(f, Mapping)}
    flag_rows = []
    for r in flagged.iter_rows(named=True):
        r["evidence"] = json.loads(r["evidence_json"]) if r.get("evidence_json") else []
        extra = doc_flags.get(r["user"], {})
        r["kind"] = extra.get("kind") or "skipped"
        r["capped_in"] = list(extra.get("capped_in") or [])
        flag_rows.append(r)
    first_liq = None
    if per_second.height:
        liq_t = per_second.filter(pl.col("liquidations") > 0)["t_s"]
        adl_t = per_second.filter(pl.col("adl") > 0)["t_s"]
        if liq_t.len() and adl_t.len():
            first_liq = f"{adl_t.min() - liq_t.min():.0f} s"
    wave_frame = (
        waves
        if waves.height
        else steps.group_by("wave_id").agg(start_ms=pl.col("time_ms").min(), end_ms=pl.col("time_ms").max())
        if steps.height
        else None
    )
    summary = {
        "fills": totals[0],
        "liquidations": liq[0],
        "liquidation_usd": float(liq[1]),
        "adl_legs": adl[0],
        "adl_usd": float(adl[1]),
        "adl_accounts": adl[2],
        "steps": steps.height,
        "waves": steps["wave_id"].n_unique() if steps.height else 0,
        "flagged": len(flag_rows),
        "q": q,
        "tested": int(flags["tested"].sum()) if flags.height else 0,
        "verdict": verdict,
        "rule_sentence": _rule_sentence(fits, verdict, shapes),
        "skip_rate": float(flags["skip_rate"][0]) if flags.height else None,
        "best_rule": best_rule,
        "first_adl_delay": first_liq or "–",
        "overshoot": float(waves["overshoot_usd"].sum()) if waves.height else None,
        "production": float(waves["production_0ms"].sum()) if waves.height else None,
        "needed": float(waves["needed_usd"].sum()) if waves.height else None,
        "deficit": float(waves["deficit_usd"].sum()) if waves.height else None,
    }
    # a lake ingested before the ledger recorded where inputs came from has neither column
    rows = [{"origin": None, "generated_by": None} | r for r in runs.to_dicts()]
    sim = simulation(rows)
    windows = _rule_windows(doc)
    return {
        "meta": {
            "venue": venue,
            "window_from": _ms_to_text(since_ms or totals[1]),
            "window_to": _ms_to_text(until_ms or totals[2]),
            "generated": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "code_version": code_version(),
            "command": command,
            "lake": str(lake.root),
            "gap_seconds": gap_seconds,
            "parameters": json.dumps(
                {"venue": venue, "from_ms": since_ms, "to_ms": until_ms, "q": q, "gap_seconds": gap_seconds}
            ),
            "notes": notes,
        },
        "simulation": sim,
        "summary": summary,
        "provenance": {
            "inputs": rows,
            "reconciled": all(r["records_read"] == r["rows_written"] + r["rows_quarantined"] for r in rows),
            "quarantine": quarantine.to_dicts(),
            "quality": quality_rows,
        },
        "coins": coins.to_dicts(),
        "rules": fits.to_dicts(),
        "shapes": shapes,
        "rule_windows": windows,
        "carve_outs": _carve_outs(doc),
        "diagnostics_note": f"a sample of at most {DIAGNOSTIC_STEPS} actions with a decision",
        "flags": flag_rows,
        "waves": waves.to_dicts(),
        "policies": policies.to_dicts(),
        "backstop": backstop.height > 0,
        "charts": {
            "timeline": charts.timeline(per_second, wave_frame),
            "coins": charts.bars(
                coins["coin"].to_list(),
                coins["usd"].to_list(),
                xlabel="ADL notional (USD)",
                usd=True,
                empty="No ADL legs in the window: no coin to draw.",
            ),
            "rules": charts.rule_comparison(fits, best_rule) if fits.height else "",
            "rule_timeline": charts.rule_timeline(windows) if windows else "",
            "skips": charts.skip_evidence(flag_rows) if flag_rows else "",
            "waves": charts.waves_budget(waves) if waves.height else "",
            "backstop": charts.coverage(backstop) if backstop.height else "",
        },
    }


def summary_json(context: dict) -> dict[str, Any]:
    """``report.json``: the report's figures and, first, whether they come from simulated data and why."""
    meta = context["meta"]
    return {
        "simulated": context["simulation"].simulated,
        "simulation_evidence": context["simulation"].evidence,
        "venue": meta["venue"],
        "window": {"from": meta["window_from"], "to": meta["window_to"]},
        "generated": meta["generated"],
        "code_version": meta["code_version"],
        "command": meta["command"],
        "summary": context["summary"],
        "inputs": [
            {k: r.get(k) for k in ("source", "source_name", "sha256", "bytes", "origin", "generated_by")}
            for r in context["provenance"]["inputs"]
        ],
        "flagged": [{"user": f["user"], "kind": f["kind"], "q_value": f["q_value"]} for f in context["flags"]],
        "notes": meta["notes"],
    }


def write(context: dict, out_dir: Path, *, pdf: bool = True) -> ReportPaths:
    paths = write_html_and_pdf(report_mod.render_html(context), out_dir, pdf=pdf)
    json_path = out_dir / "report.json"
    tmp = out_dir / ".report.json.tmp"
    tmp.write_text(json.dumps(summary_json(context), indent=1, default=str), encoding="utf-8")
    os.replace(tmp, json_path)
    return ReportPaths(paths.html, paths.pdf, json_path)


def write_html_and_pdf(html: str, out_dir: Path, *, pdf: bool = True) -> ReportPaths:
    """``report.html`` and (optionally) ``report.pdf`` in ``out_dir``, each written to a temp name and renamed."""
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path = out_dir / "report.html"
    tmp = html_path.with_suffix(".html.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(html_path)
    pdf_path = None
    if pdf:
        pdf_path = out_dir / "report.pdf"
        tmp_pdf = out_dir / ".report.pdf.tmp"
        report_mod.write_pdf(html, tmp_pdf)
        tmp_pdf.replace(pdf_path)
    return ReportPaths(html_path, pdf_path)
