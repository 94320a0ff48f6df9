"""`liqf audit hyperliquid` end to end: a simulated cascade in Hyperliquid's published layouts (node fills and misc
events by block, the archive's asset-context CSV, the clearinghouse snapshot export) in moto's S3 server behind
the requester-pays proxy on 127.0.0.1, credentials only in a profile file (``AWS_PROFILE``, no AWS_* key
variables). The audit fetches, ingests, analyzes and reports; its answer is held against the planted truth and
against the same files ingested and analyzed command by command; a rerun fetches nothing and changes nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from forensics.simulate import generate
from tests.lake_hashes import leftovers, table_hashes
from tests.s3_servers import RequesterPaysProxy, aws_profile, moto  # noqa: F401

pytestmark = pytest.mark.slow
NODE_BUCKET, ARCHIVE_BUCKET, SNAPSHOT_BUCKET = "hl-mainnet-node-data", "hyperliquid-archive", "research-snapshots"
WINDOW = ["--from", "2025-10-10T21:14", "--to", "2025-10-10T21:30"]


@pytest.fixture(scope="module")
def published(moto, tmp_path_factory):
    """A tiny real-layout scenario uploaded under the public buckets' keys; the snapshot export in a bucket of
    its own (it is not in the public buckets). Hour 22 is not uploaded: the audit must cope with it missing."""
    scenario = tmp_path_factory.mktemp("auditsim")
    generate(scenario, scale="tiny", policy="hl_index", exempt=2, seed=5, formats="real")
    c = moto.client()
    for bucket in (NODE_BUCKET, ARCHIVE_BUCKET, SNAPSHOT_BUCKET):
        moto.bucket(bucket)
    for prefix in ("node_fills_by_block", "misc_events_by_block"):
        for f in (scenario / prefix).rglob("*.lz4"):
            c.upload_file(str(f), NODE_BUCKET, f.relative_to(scenario).as_posix())
    c.upload_file(str(scenario / "asset_ctxs" / "20251010.csv.lz4"), ARCHIVE_BUCKET, "asset_ctxs/20251010.csv.lz4")
    for f in (scenario / "snapshot").iterdir():
        c.upload_file(str(f), SNAPSHOT_BUCKET, f"oct10/{f.name}")
    proxy = RequesterPaysProxy(moto.port)
    yield scenario, proxy
    proxy.stop()


def liqf(work: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).parent / "liqf"), *args, "--lake", str(work / "lake"), "--db", str(work / "c.db")],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=600,
        stdin=subprocess.DEVNULL,
    )


def test_audit_from_nothing_to_the_report(published, aws_profile, tmp_path):  # noqa: F811
    scenario, proxy = published
    work, out = tmp_path / "w", tmp_path / "report"
    args = ["audit", "hyperliquid", *WINDOW, "--out", str(out), "--endpoint-url", proxy.endpoint]
    args += ["--snapshot", f"s3://{SNAPSHOT_BUCKET}/oct10/", "--no-pdf"]

    asked = liqf(work, *args)  # not a terminal and no --yes: the cost is shown, nothing is downloaded
    assert asked.returncode == 2 and "--yes" in asked.stderr and "requester-pays estimate $" in asked.stderr
    assert f"s3://{NODE_BUCKET}/node_fills_by_block/hourly/20251010/22.lz4" in asked.stderr  # the next hour, missing
    assert not list((work / "lake").rglob("node_fills_by_block/**/*.lz4"))

    r = liqf(work, *args, "--yes")
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert proxy.access_keys == {aws_profile}  # every request signed with the profile's key
    assert proxy.denied == 0 and proxy.forwarded > 0  # and every one carried the requester-pays header
    summary = json.loads((out / "audit_summary.json").read_text())
    assert [s["step"] for s in summary["steps"]] == ["snapshot", "fetch", "ingest", "audit and haircuts", "report"]
    assert summary["fetched"]["downloaded"] == 3 and summary["fetched"]["missing_in_bucket"]
    assert summary["ingested"]["read"] == summary["ingested"]["written"] + summary["ingested"]["quarantined"] > 0
    assert summary["snapshot_ms"] == json.loads((scenario / "scenario.json").read_text())["snapshot_time"]
    assert (out / "report.html").stat().st_size > 0 and not (out / "report.pdf").exists()
    assert str(out / "report.html") in r.stdout and "lake:" in r.stdout and "catalog:" in r.stdout

    # what was planted: the rule recovered, the flags among the planted exemptions
    truth = json.loads((scenario / "truth.json").read_text())
    assert summary["audit"]["verdict"].startswith("hl_index"), summary["audit"]["verdict"]
    assert set(summary["audit"]["flagged"]) <= set(truth["exempt"])
    assert summary["haircuts"] and summary["haircuts"]["waves"] > 0

    # the same answer as the same files through `liqf ingest` and `liqf analyze`
    manual = tmp_path / "m"
    ingested = liqf(
        manual,
        "ingest",
        "hyperliquid",
        "--node-fills",
        str(scenario / "node_fills_by_block"),
        "--misc-events",
        str(scenario / "misc_events_by_block"),
        "--asset-ctxs",
        str(scenario / "asset_ctxs" / "20251010.csv.lz4"),
        "--snapshot",
        str(scenario / "snapshot"),
    )
    assert ingested.returncode == 0, ingested.stderr
    analyzed = liqf(manual, "analyze", *WINDOW, "--json")
    assert analyzed.returncode == 0, analyzed.stderr
    body = json.loads(analyzed.stdout)
    assert body["steps"] == summary["audit"]["adl_actions"] > 0
    assert body["verdict"] == summary["audit"]["verdict"]
    assert sorted(f["user"] for f in body["flagged"]) == sorted(summary["audit"]["flagged"])

    # a rerun: everything is here, so no confirmation is needed, nothing is downloaded and the lake is the same
    before, forwarded = table_hashes(work / "lake"), proxy.forwarded
    again = liqf(work, *args)
    assert again.returncode == 0, again.stderr
    rerun = json.loads((out / "audit_summary.json").read_text())
    assert rerun["fetched"]["downloaded"] == 0 and "0 downloaded" in again.stdout
    assert proxy.forwarded - forwarded <= 8  # HEADs and the snapshot listing, no object body
    after = table_hashes(work / "lake")
    # the inputs are the same rows; the analytics are recomputed (the same rows, floats summed in another order
    # differ in the last bits, e.g. an overshoot of 5.7e-14 against 0.0)
    assert {t: h for t, h in after.items() if not t.startswith("analytics/")} == {
        t: h for t, h in before.items() if not t.startswith("analytics/")
    }
    assert {t: n for t, (n, _) in after.items()} == {t: n for t, (n, _) in before.items()}
    assert leftovers(work / "lake") == []
