"""SIGKILL of `liqf ingest` and `liqf analyze` at several points: the rerun repairs the lake.

A tiny simulator scenario in the published layouts (node fills, misc events, snapshot, archive marks) is
ingested and analysed cleanly once; then, per kill point, a fresh lake is killed there (a real SIGKILL,
``LIQF_CRASH_AT``), the command is rerun, and every table's content hash must equal the clean lake's
with no temporary, staging directory or stray file left.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from forensics.simulate import generate
from tests.lake_hashes import leftovers, table_hashes


def liqf(work: Path, *args: str, crash_at: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "LIQF_CRASH_AT"}
    if crash_at:
        env["LIQF_CRASH_AT"] = crash_at
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "--lake", str(work / "lake"), "--db", str(work / "c.duckdb"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.fixture(scope="module")
def scenario(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("killsim")
    generate(out, scale="tiny", policy="hl_index", exempt=2, seed=3, formats="real")
    return out


def ingest_args(s: Path) -> list[str]:
    return [
        "ingest",
        "hyperliquid",
        "--node-fills",
        str(s / "node_fills_by_block"),
        "--misc-events",
        str(s / "misc_events_by_block"),
        "--snapshot",
        str(s / "snapshots" / "clearinghouse_state.jsonl"),
        "--asset-ctxs",
        str(s / "asset_ctxs" / "20251010.csv.lz4"),
    ]


@pytest.fixture(scope="module")
def clean(scenario, tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("clean")
    assert liqf(work, *ingest_args(scenario)).returncode == 0
    assert liqf(work, "analyze").returncode == 0
    return work


# the order of an ingest's writes: node fills (staged, then published), each input's ledger row last;
# misc events (3 tables), the snapshot (account then position snapshots), the asset contexts
INGEST_KILLS = {
    "staging_batch#1": "node fills half-staged",
    "part_written#1": "the fills part written, not renamed",
    "part_written#7": "mid-write of an account_snapshots part",
    "input_recorded#2": "between two inputs",
    "input_recorded#4": "after the last commit, before the catalog",
}


@pytest.mark.parametrize("point", list(INGEST_KILLS))
def test_killed_ingest_is_repaired_by_the_rerun(scenario, clean, tmp_path, point):
    killed = liqf(tmp_path, *ingest_args(scenario), crash_at=point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    left = leftovers(tmp_path / "lake")
    if point.startswith(("staging", "part_written")):
        assert left, f"{INGEST_KILLS[point]}: the kill should leave a temporary for the rerun to clean"
    rerun = liqf(tmp_path, *ingest_args(scenario))
    assert rerun.returncode == 0, rerun.stderr
    if left:
        assert "repaired the lake" in rerun.stderr
    assert leftovers(tmp_path / "lake") == []
    assert table_hashes(tmp_path / "lake") == {
        k: v for k, v in table_hashes(clean / "lake").items() if k.startswith(("normalized", "meta/ingest_runs"))
    }


def test_killed_analyze_is_repaired_by_the_rerun(clean, tmp_path):
    shutil.copytree(clean / "lake", tmp_path / "lake")
    for table in ("adl_steps", "adl_rule_fits", "exemption_flags"):
        shutil.rmtree(tmp_path / "lake" / "analytics" / table)
    # the second part an analysis writes is adl_rule_fits (after adl_steps)
    killed = liqf(tmp_path, "analyze", crash_at="part_written#2")
    assert killed.returncode == -signal.SIGKILL
    assert [p for p in leftovers(tmp_path / "lake") if "adl_rule_fits" in p]
    # a reader in the meantime never sees the temporary
    assert liqf(tmp_path, "catalog", "refresh").returncode == 0
    rerun = liqf(tmp_path, "analyze")
    assert rerun.returncode == 0, rerun.stderr
    assert leftovers(tmp_path / "lake") == []
    assert table_hashes(tmp_path / "lake") == table_hashes(clean / "lake")
