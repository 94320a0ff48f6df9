"""The audit report: built from a simulated, ingested, analysed cascade; checked in a real browser and
as a PDF; hostile strings from data render as text; simulated inputs carry a banner on every page and a flag in
``report.json``, real ones (the public sample) none; chart labels are plain text; the audit's document's
optional sections render only when present."""

from __future__ import annotations

import copy
import functools
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import pytest
from pypdf import PdfReader

from forensics import simulate
from forensics.report import SECTIONS, render_html
from forensics.report.numbers import fmt, usd, usd_compact
from pipelines import report
from pipelines.analysis import accounting, audit
from pipelines.ingest.hyperliquid import files
from pipelines.ingest.report import generated_mark
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
    # what `liqf report` runs before rendering (pipelines.analysis.pipeline.analyses), keeping the audit's
    # result for its document
    result = audit.run(lake)
    accounting.run(lake)
    doc = report.audit_document(result)
    gather = functools.partial(
        report.gather,
        lake,
        root / "c.duckdb",
        venue="hyperliquid",
        since_ms=None,
        until_ms=None,
        q=0.05,
        gap_seconds=5.0,
        command="pytest",
    )
    context = gather(audit=doc)
    paths = report.write(context, root / "out")
    return Built(context, paths, json.loads((scenario / "truth.json").read_text()), gather, doc, scenario, lake)


@dataclass
class Built:
    context: dict
    paths: report.ReportPaths
    truth: dict
    gather: Callable[..., dict]
    doc: dict
    scenario: Path
    lake: Lake


def test_report_states_the_evidence(built):
    context, paths, truth = built.context, built.paths, built.truth
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
    paths = built.paths
    html = paths.html.read_text()
    assert HOSTILE not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_pdf_has_every_section(built):
    paths = built.paths
    text = "\n".join(page.extract_text() for page in PdfReader(paths.pdf).pages)
    for title in SECTIONS:
        assert title.split(",")[0] in text, title


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs the Debian package)")
def test_report_in_a_real_browser(built, tmp_path):
    """Headless Chromium: no console errors, every chart drawn non-empty, no alert, a screenshot."""
    paths = built.paths
    result = check_in_chromium(paths.html, tmp_path)
    assert result["errors"] == [] and result["dialogs"] == []
    assert len(result["charts"]) >= 4 and all(c["ok"] for c in result["charts"]), result["charts"]
    assert (tmp_path / "report.png").stat().st_size > 20_000
    # the simulated-data banner is on the first screen and, scrolled to the end, still at the top (sticky); one
    # line high, so it never hides the report
    banner = result["banner"]
    assert banner is not None and 10 < banner["top"]["height"] < 60, banner
    assert 0 <= banner["top"]["top"] < 100 and abs(banner["end"]["top"]) < 1, banner


# --- simulated or real: decided from provenance, shown on every page ------------------------------------------


def pdf_pages(path: Path) -> list[str]:
    return [page.extract_text() for page in PdfReader(path).pages]


def test_simulated_inputs_carry_a_banner_on_every_page_and_a_json_flag(built):
    """The scenario's inputs lie under the generator's scenario.json: the ingest recorded that mark, and the
    report says so in a banner (HTML), in every PDF page's top margin, in its title and in report.json."""
    context, paths = built.context, built.paths
    sim = context["simulation"]
    assert sim.simulated and len(sim.evidence) == len(context["provenance"]["inputs"])
    assert all("scenario.json" in e and str(built.scenario) in e for e in sim.evidence)
    html = paths.html.read_text()
    assert 'id="simulated-banner"' in html and "<h1>Simulated data: " in html
    pages = pdf_pages(paths.pdf)
    assert len(pages) > 3
    assert all("SIMULATED DATA" in text for text in pages), [i for i, t in enumerate(pages) if "SIMULATED" not in t]
    doc = json.loads(paths.json.read_text())
    assert doc["simulated"] is True and doc["simulation_evidence"] == sim.evidence
    assert all(r["generated_by"] and r["origin"] for r in doc["inputs"])


def test_generated_mark_comes_from_where_a_file_lies_not_from_its_content(built, tmp_path):
    """The same bytes are generated beside a scenario.json and unmarked once copied where nothing marks them."""
    node_file = next((built.scenario / "node_fills_by_block").rglob("*.lz4"))
    assert "scenario.json" in generated_mark(node_file)
    copy_ = tmp_path / "elsewhere" / node_file.name
    copy_.parent.mkdir()
    shutil.copy(node_file, copy_)
    assert generated_mark(copy_) is None
    (tmp_path / "truth.json").write_text("{}")  # a planted ground truth two levels up marks it again
    assert "truth.json" in generated_mark(copy_)


def test_real_public_sample_has_no_simulated_banner(realdata, tmp_path):
    """The public node-fills sample (7,282 real fills): no generator's mark, so no banner anywhere and
    ``simulated: false``; the inputs table shows where the file came from."""
    sample = realdata("hyperanalyze/sample_data.json")
    for parent in sample.resolve().parents[:5]:
        if (parent / "scenario.json").exists() or (parent / "truth.json").exists():
            pytest.skip(f"a generator's mark lies above the real sample ({parent}): not a real-data layout")
    lake = Lake(tmp_path / "lake")
    files.ingest_node_fills(lake, sample)
    result = audit.run(lake)  # a window without ADL: the audit says so, the report still renders
    context = report.gather(
        lake,
        tmp_path / "c.duckdb",
        venue="hyperliquid",
        since_ms=None,
        until_ms=None,
        q=0.05,
        gap_seconds=5.0,
        command="pytest",
        notes=[f"audit: {result.verdict}"],
        audit=report.audit_document(result),
    )
    paths = report.write(context, tmp_path / "out")
    assert not context["simulation"].simulated and context["simulation"].evidence == []
    html = paths.html.read_text()
    assert "simulated-banner" not in html and "SIMULATED" not in html and "<h1>Auto-deleveraging audit" in html
    assert str(sample.resolve()) in html  # the input's origin
    assert not any("SIMULATED" in text for text in pdf_pages(paths.pdf))
    doc = json.loads(paths.json.read_text())
    assert doc["simulated"] is False and doc["simulation_evidence"] == []
    assert doc["summary"]["fills"] == 7282 and doc["inputs"][0]["generated_by"] is None


# --- charts and wording ----------------------------------------------------------------------------------------


def chart_texts(svg: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", t) for t in re.findall(r"<text\b.*?</text>", svg, re.S)]


def test_chart_labels_are_plain_text(built):
    """With text kept as SVG text (not glyph paths), every chart's labels read as plain text: no literal
    ``$\\mathdefault{10^{2}}$`` on the log axes, dollar axes in $k/$M, not in 1e7 offsets."""
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        context = built.gather(audit=built.doc)
    drawn = {name: chart_texts(svg) for name, svg in context["charts"].items() if svg}
    assert {"timeline", "coins", "rules", "waves"} <= set(drawn)
    for name, texts in drawn.items():
        assert texts, name
        for t in texts:
            assert "mathdefault" not in t and "$\\" not in t and not re.search(r"1e[+-]?\d", t), (name, t)
    # the rule comparison's cost axis is logarithmic: its decades print as plain numbers
    assert {"10", "100"} & set(drawn["rules"])
    assert any(re.fullmatch(r"\$\d+(\.\d)?[kM]?", t) for t in drawn["coins"])


def test_no_negative_zero_anywhere(built):
    text = re.sub(r"<[^>]+>", " ", built.paths.html.read_text())
    assert not re.search(r"(?<![\w.,])[-−]\$?0(?![\d.,])", text)
    assert not re.search(r"(?<![\w.,])[-−]\$?0[.,]0*(?!\d*[1-9])", text)
    assert fmt(-0.0) == fmt(-0.0004, 3) == "0.000" and fmt(-0.4, 0) == "0" and usd(-0.2) == "$0"
    assert usd_compact(-0.0) == "$0" and usd(-18_016) == "-$18,016" and fmt(-1.5, 1) == "-1.5"


def test_shape_violations_are_defined_counted_per_action_and_listed(built):
    """The named rule's shape violations: one sentence says what they are; the count is "V in K of N actions",
    consistent with the rule fits, the per-action table and the listed selections."""
    context = built.context
    shapes = context["shapes"]
    best = next(r for r in context["rules"] if r["is_best"])
    assert shapes["rule"] == best["rule"] and shapes["total"] == best["shape_violations"]
    assert sum(a["violations"] for a in shapes["per_action"]) == shapes["total"]
    assert shapes["actions"] == best["steps"]
    html = built.paths.html.read_text()
    assert "A shape violation is a selection the rule cannot produce" in html
    k = len(shapes["per_action"])
    assert f"{shapes['total']:,} shape violation(s) in {k:,} of {shapes['actions']:,} actions" in html
    assert context["summary"]["rule_sentence"].count(f"in {k:,} of {shapes['actions']:,} actions") == 1
    # without the audit's document (only its tables): the count, and a sentence saying why nothing is listed
    bare = built.gather()
    assert bare["shapes"]["per_action"] is None and bare["shapes"]["total"] == shapes["total"]
    assert "rendered without the audit's per-selection evidence" in render_html(bare)


def test_shape_violations_listed_with_their_kind(built):
    """Listing from the audit's document: each selection with its action, coin, account and kind, the kinds
    counted; rows taken from real actions and accounts of the lake."""
    steps = built.context["flags"][0]["evidence"][:3]
    doc = copy.deepcopy(built.doc)
    rule = doc["best_rule"]
    # the first ranks below its action's cut, the others above it (skips rank above the cut, so cut_rank >= 2)
    rows = [
        {"step_id": e["step_id"], "user": e["cut_user"], "coin": e["coin"], "rank": e["cut_rank"] + 2 if i == 0 else 1,
         "cut_rank": e["cut_rank"]}
        for i, e in enumerate(steps)
    ]  # fmt: skip
    per = {}
    for r in rows:
        per[r["step_id"]] = per.get(r["step_id"], 0) + 1
    doc["shape_violations"] = {
        "rule": rule,
        "total": len(rows),
        "actions": doc["actions_with_decision"],
        "per_action": [{"step_id": s, "violations": n} for s, n in per.items()],
        "rows": rows,
        "complete": True,
    }
    context = built.gather(audit=doc)
    shapes = context["shapes"]
    below, partial = "selected below the cut", "closed partly above the cut"
    assert [r["kind"] for r in shapes["rows"]] == [below] + [partial] * (len(rows) - 1)
    assert shapes["kinds"] == {below: 1, partial: len(rows) - 1} and shapes["complete"]
    html = render_html(context)
    listed = re.search(r'<table id="shape-rows">.*?</table>', html, re.S).group(0)
    assert listed.count("<tr>") == len(rows) + 1
    for r in rows:
        assert r["user"] in listed
    per_action = re.search(r'<table id="shape-per-action">.*?</table>', html, re.S).group(0)
    assert per_action.count("<tr>") == len(per) + 1
    assert f"in {len(per)} of {doc['actions_with_decision']} actions" in html


def test_max_haircut_share_is_explained(built):
    html = built.paths.html.read_text()
    assert "<b>Max haircut share</b>: the largest haircut the policy takes from one account" in html
    for p in built.context["policies"]:
        share = p["max_haircut_share"]
        assert share is None or share >= 0


def test_headings_never_end_a_pdf_page(built):
    """Print CSS keeps a heading with what follows: on every page, a section heading has text below it, or
    room for the chart that follows it (charts are drawn as paths, not text); never alone at the bottom."""
    headings = {f"{i}. {t}" for i, t in enumerate(SECTIONS, 1)} | {
        "Quarantine",
        "Data-quality checks (Great Expectations)",
        "Counterfactual policies on the same shortfall",
    }
    for number, page in enumerate(PdfReader(built.paths.pdf).pages, 1):
        items: list[tuple[str, float]] = []

        def visit(text, cm, tm, font, size, items=items):
            if text.strip():
                items.append((text.strip(), cm[3] * tm[5] + cm[5]))  # y from the page bottom

        page.extract_text(visitor_text=visit)
        height = float(page.mediabox.height)
        for text, y in items:
            if text in headings:
                below = [t for t, y2 in items if y2 < y - 5]
                assert below or y > height / 3, (number, text, y)


# --- sections the audit's document adds when present (issue 23) -------------------------------------------------


def test_optional_sections_render_only_when_present(built):
    """The rule timeline, capped flags and carve-outs appear when the audit's document has their keys (with
    their evidence), and the report renders without them."""
    doc = copy.deepcopy(built.doc)
    doc["rule_changes"].pop("windows", None)
    for f in doc["flagged"]:
        f.pop("kind", None)
    doc.pop("carve_outs", None)
    html = render_html(built.gather(audit=doc))
    for marker in ('id="rule-timeline"', 'id="carve-outs"', 'class="capped"', "(capped)"):
        assert marker not in html
    steps = built.context["flags"][0]["evidence"]
    times = built.lake.read("adl_steps", "hyperliquid")["time_ms"]
    t0, t1 = int(times.min()), int(times.max())
    doc["rule_changes"]["windows"] = [
        {"first_action": 0, "last_action": 3, "from_ms": t0, "to_ms": (t0 + t1) // 2, "rule": "hl_index", "cost": 2},
        {"first_action": 4, "last_action": 8, "from_ms": (t0 + t1) // 2 + 1, "to_ms": t1, "rule": "bitmex", "cost": 5},
    ]
    capped = doc["flagged"][0]
    capped["kind"] = "capped"
    capped["capped_in"] = [{"step_id": steps[0]["step_id"], "coin": steps[0]["coin"], "taken": 1.5, "implied": 4.0}]
    doc["carve_outs"] = [
        {"account": "0x" + "cd" * 20, "rule": "venue vault", "source": "venue docs", "covered_actions": [1, 2, 3]}
    ]
    context = built.gather(audit=doc)
    html = render_html(context)
    assert 'id="rule-timeline"' in html and 'id="chart-rule-timeline"' in html
    assert [w["rule"] for w in context["rule_windows"]] == ["hl_index", "bitmex"]
    assert 'id="carve-outs"' in html and "0x" + "cd" * 20 in html and "venue docs" in html
    flag = next(f for f in context["flags"] if f["user"] == capped["user"])
    assert flag["kind"] == "capped"
    table = re.search(r'<table class="capped">.*?</table>', html, re.S).group(0)
    assert "1.5000" in table and "4.0000" in table and "2.5000" in table  # taken, implied, shortfall
    assert report.summary_json(context)["flagged"][0]["kind"] in {"capped", "skipped"}
    # an empty carve-out list says so; an absent one says nothing
    doc["carve_outs"] = []
    assert "No account passed over is covered by a carve-out" in render_html(built.gather(audit=doc))
