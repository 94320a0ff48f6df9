"""End to end: `liqf demo` at tiny scale, as a subprocess, against a real loopback venue server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest


def r_env(home: Path) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "DAGSTER_HOME": str(home), "GX_ANALYTICS_ENABLED": "false"}


@pytest.mark.slow
def test_demo_tiny_end_to_end(tmp_path):
    env_home = tmp_path / "dagster_home"
    env_home.mkdir()
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines.cli",
            "--lake",
            str(tmp_path / "lake"),
            "--db",
            str(tmp_path / "c.duckdb"),
            "demo",
            "--out",
            str(tmp_path / "demo"),
            "--scale",
            "tiny",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=r_env(env_home),
    )
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads((tmp_path / "demo" / "demo_summary.json").read_text())
    assert summary["failed_checks"] == []
    sim = summary["simulated"]
    con = duckdb.connect(str(tmp_path / "c.duckdb"), read_only=True)
    # every simulated fill landed once, from node files and API pulls de-duplicated
    assert con.sql("select count(*) from fills").fetchone()[0] == sim["fills"]
    assert con.sql("select count(*) from adl_fills").fetchone()[0] == sim["adl_fills"]
    assert con.sql("select count(*) from quarantine").fetchone()[0] == 0
    runs = con.sql(
        "select count(*), bool_and(records_read = rows_written + rows_quarantined) from ingest_runs"
    ).fetchone()
    assert runs[0] >= 7 and runs[1]
    truth = json.loads((tmp_path / "demo" / "scenario" / "truth.json").read_text())
    adl_users = {u for (u,) in con.sql("select distinct user from adl_fills").fetchall()}
    assert adl_users == {u for s in truth["steps"] for u in s["selected"]}
    assert "done in" in r.stdout and "catalog" in r.stdout
    # the analysis ran on what was ingested, and its claims are checked against the planted truth
    cmp = summary["comparison"]
    assert summary["inferred"]["best_rule"] == "hl_index" and cmp["rule_recovered"]
    assert cmp["false_flags"] == []
    assert con.sql("select count(*) from adl_pools").fetchone()[0] == sum(len(s["pool"]) for s in truth["steps"])
    assert any(env_home.rglob("*.db"))  # the runs were recorded in the Dagster instance
    # under names of their own, not __ephemeral_asset_job__ (what `dg dev` lists)
    probe = "import dagster as dg; print(sorted({r.job_name for r in dg.DagsterInstance.get().get_runs()}))"
    jobs = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env=r_env(env_home)
    )
    assert jobs.stdout.strip() == "['demo_analysis_and_report', 'demo_cex_ingest', 'demo_hyperliquid_ingest']", (
        jobs.stderr
    )
