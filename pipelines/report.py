"""The audit report: gather what the lake holds for a venue and window (the analyses' tables; who runs them is
the caller's: `liqf report` runs them first through :mod:`pipelines.analysis.pipeline`, Dagster orders them
in the asset graph), render it, write ``report.html`` and ``report.pdf``."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from forensics import report as report_mod
from forensics.audit.diagnostics import DIAGNOSTIC_STEPS
from forensics.report import charts
from forensics.tables import ALL_TABLES
from pipelines import catalog, quality
from pipelines.lake import Lake
from pipelines.version import code_version


@dataclass(frozen=True)
class ReportPaths:
    html: Path
    pdf: Path | None


def _ms_to_text(ms: int | None) -> str:
    if ms is None:
        return "–"
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _df(con: duckdb.DuckDBPyConnection, sql: str, params: dict) -> pl.DataFrame:
    return con.execute(sql, params).pl()


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
) -> dict:
    notes = list(notes or [])
    for table, command in (("adl_rule_fits", "liqf analyze"), ("adl_waves", "liqf haircuts")):
        if not (lake.table_dir(table) / f"venue={venue}").exists():
            notes.append(f"no {table} for {venue} in the lake: run `{command}` (or `liqf report`, which runs both)")
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
    flag_rows = []
    for r in flagged.iter_rows(named=True):
        r["evidence"] = json.loads(r["evidence_json"]) if r.get("evidence_json") else []
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
        "skip_rate": float(flags["skip_rate"][0]) if flags.height else None,
        "best_rule": best_rule,
        "first_adl_delay": first_liq or "–",
        "overshoot": float(waves["overshoot_usd"].sum()) if waves.height else None,
        "production": float(waves["production_0ms"].sum()) if waves.height else None,
        "needed": float(waves["needed_usd"].sum()) if waves.height else None,
        "deficit": float(waves["deficit_usd"].sum()) if waves.height else None,
    }
    rows = runs.to_dicts()
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
        "summary": summary,
        "provenance": {
            "inputs": rows,
            "reconciled": all(r["records_read"] == r["rows_written"] + r["rows_quarantined"] for r in rows),
            "quarantine": quarantine.to_dicts(),
            "quality": quality_rows,
        },
        "coins": coins.to_dicts(),
        "rules": fits.to_dicts(),
        "diagnostics_note": f"a sample of at most {DIAGNOSTIC_STEPS} actions with a decision",
        "flags": flag_rows,
        "waves": waves.to_dicts(),
        "policies": policies.to_dicts(),
        "backstop": backstop.height > 0,
        "charts": {
            "timeline": charts.timeline(per_second, wave_frame),
            "coins": charts.bars(coins["coin"].to_list(), coins["usd"].to_list(), xlabel="ADL notional (USD)"),
            "rules": charts.rule_comparison(fits, best_rule) if fits.height else "",
            "skips": charts.skip_evidence(flag_rows) if flag_rows else "",
            "waves": charts.waves_budget(waves) if waves.height else "",
            "backstop": charts.coverage(backstop) if backstop.height else "",
        },
    }


def write(context: dict, out_dir: Path, *, pdf: bool = True) -> ReportPaths:
    return write_html_and_pdf(report_mod.render_html(context), out_dir, pdf=pdf)


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
