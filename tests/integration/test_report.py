"""The audit report: built from a simulated, ingested, analysed cascade; checked in a real browser and
as a PDF; hostile strings from data render as text."""

from __future__ import annotations

import json
import re

import pytest
from pypdf import PdfReader

from forensics import simulate
from forensics.report import SECTIONS
from pipelines import report
from pipelines.analysis import pipeline
from pipelines.ingest.hyperliquid import files
from pipelines.lake import Lake
from tests.browser import CHROMIUM, check_in_chromium

HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    scenario = root / "scenario"
    simulate.generate(scenario, scale="tiny", policy="hl_index", exempt=3, seed=5)
    # a hostile coin name travels through a real node file into the lake and the report
    day = scenario / "node_fills_by_block" / "hourly" / "20251010"
    extra = {
        "local_time": "2025-10-10T21:30:00.000000000",
        "block_time": "2025-10-10T21:30:00.000000000",
        "block_number": 999999999,
        "events": [
            [
                "0x" + "ab" * 20,
                {
                    "coin": HOSTILE,
                    "px": "1.0",
                    "sz": "1.0",
                    "side": "B",
                    "time": 1760131800000,
                    "startPosition": "0.0",
                    "dir": "Auto-Deleveraging",
                    "closedPnl": "0.0",
                    "hash": "0x" + "00" * 32,
                    "oid": 1,
                    "crossed": True,
                    "fee": "0.0",
                    "tid": 1,
                    "feeToken": "USDC",
                    "liquidation": {
                        "liquidatedUser": "0x2e3d94f0562703b25c83308a05046ddaf9a8dd14",
                        "markPx": "1.0",
                        "method": "backstop",
                    },
                },
            ]
        ],
    }
    (day / "99.json").write_text(json.dumps(extra) + "\n")
    lake = Lake(root / "lake")
    for path in files.expand_inputs([scenario / "node_fills_by_block"]):
        files.ingest_node_fills(lake, path)
    files.ingest_snapshot(lake, scenario / "snapshots" / "clearinghouse_state.jsonl")
    files.ingest_asset_ctxs(lake, scenario / "asset_ctxs" / "asset_ctxs.jsonl")
    pipeline.analyses(lake)  # what `liqf report` runs before rendering
    context = report.gather(
        lake,
        root / "c.duckdb",
        venue="hyperliquid",
        since_ms=None,
        until_ms=None,
        q=0.05,
        gap_seconds=5.0,
        command="pytest",
    )
    paths = report.write(context, root / "out")
    return context, paths, json.loads((scenario / "truth.json").read_text())


def test_report_states_the_evidence(built):
    context, paths, truth = built
    html = paths.html.read_text()
    assert context["summary"]["best_rule"] == "hl_index"
    assert {f["user"] for f in context["flags"]} <= set(truth["exempt"])
    # each flag shows its skips: the actions where the account ranked above the cut and was passed over
    assert context["flags"] and "cut rank" in html and 'id="chart-skips"' in html
    for f in context["flags"]:
        skips = [e for e in f["evidence"] if e["counted_as_skip"]]
        assert len(skips) == f["skips"] or len(skips) == 50
        assert all(e["rank"] < e["cut_rank"] for e in skips)
    assert context["provenance"]["reconciled"]
    assert all(r["sha256"] and len(r["sha256"]) == 64 for r in context["provenance"]["inputs"])
    for title in SECTIONS:
        assert title in html
    assert "statistical anomalies" in html and "not findings of wrongdoing" in html
    # nothing to fetch at view time: no external script, image, stylesheet or font
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)|url\(\s*["']?(https?:|//)|<script""", html)


def test_hostile_strings_render_as_text(built):
    _, paths, _ = built
    html = paths.html.read_text()
    assert HOSTILE not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_pdf_has_every_section(built):
    _, paths, _ = built
    text = "\n".join(page.extract_text() for page in PdfReader(paths.pdf).pages)
    for title in SECTIONS:
        assert title.split(",")[0] in text, title


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs the Debian package)")
def test_report_in_a_real_browser(built, tmp_path):
    """Headless Chromium: no console errors, every chart drawn non-empty, no alert, a screenshot."""
    _, paths, _ = built
    result = check_in_chromium(paths.html, tmp_path)
    assert result["errors"] == [] and result["dialogs"] == []
    assert len(result["charts"]) >= 4 and all(c["ok"] for c in result["charts"]), result["charts"]
    assert (tmp_path / "report.png").stat().st_size > 20_000
