"""The stress-test report of the essay's chain (HTML + PDF, checked in headless Chromium), and the
Dagster asset that re-runs the shipped scenarios."""

from __future__ import annotations

import re
import shutil

import dagster as dg
import matplotlib
import pytest
from pypdf import PdfReader

from forensics.report import stress as stress_view
from forensics.report import stress_charts
from forensics.report.stress import SECTIONS
from pipelines import stress as stress_mod
from pipelines import stress_report
from pipelines.lake import Lake
from tests.browser import CHROMIUM, check_in_chromium
from tests.conftest import PROJECT_ROOT

ROOT = PROJECT_ROOT
ESSAY = ROOT / "docs" / "scenarios" / "essay_chain.toml"
HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("stress")
    scenario = root / "essay.toml"
    # a hostile description travels from the scenario file into the report
    scenario.write_text(ESSAY.read_text().replace('description = "', f'description = "{HOSTILE} ', 1))
    out = stress_mod.run(scenario, lake=Lake(root / "lake"))
    paths = stress_report.write(out, root / "out", command="pytest")
    return out, paths


def test_report_states_rounds_and_sensitivities_in_numbers(built):
    out, paths = built
    html = paths.html.read_text()
    for title in SECTIONS:
        assert title in html
    for d in out["defaults"]:
        assert f"Round {d['round']}: " in html and d["node"] in html
    text = re.sub(r"<[^>]+>", " ", html)
    # one sentence per swept parameter, with the measured end points
    by = {g["name"]: g for g in out["sweeps"]}
    freeze = sorted(
        (p for p in by["freeze x shock"]["points"] if p["btc_shock"] == 0.14), key=lambda p: p["freeze_fraction"]
    )
    assert (
        f"freeze_fraction from 0 to 1 (btc_shock = 0.14): defaults {freeze[0]['defaults']} → {freeze[-1]['defaults']}, "
        f"largest haircut {freeze[0]['max_haircut']:.1%} → {freeze[-1]['max_haircut']:.1%}"
    ) in text
    assert "exempt_share from 0 to 0.5 (insurance_scale = 1)" in text
    assert "insurance_scale from 0 to 2 (exempt_share = 0)" in text
    bybit = next(v for v in out["venues"] if v["venue"] == "bybit")
    assert f"{bybit['haircut']:.2%}" in text
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)|url\(\s*["']?(https?:|//)|<script""", html)


def test_hostile_strings_render_as_text(built):
    _, paths = built
    html = paths.html.read_text()
    assert HOSTILE not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


def test_pdf_has_every_section(built):
    _, paths = built
    text = "\n".join(page.extract_text() for page in PdfReader(paths.pdf).pages)
    for title in SECTIONS:
        assert title in text, title


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs the Debian package)")
def test_report_in_a_real_browser(built, tmp_path):
    """Headless Chromium: no console errors, every chart drawn non-empty, no alert, a screenshot."""
    _, paths = built
    result = check_in_chromium(paths.html, tmp_path)
    assert result["errors"] == [] and result["dialogs"] == []
    ids = {c["id"] for c in result["charts"]}
    assert {
        "chart-timeline",
        "chart-losses",
        "chart-waterfall",
        "chart-network",
        "chart-sweep-1",
        "chart-sweep-2",
    } <= ids
    assert all(c["ok"] for c in result["charts"]), result["charts"]
    assert (tmp_path / "report.png").stat().st_size > 20_000


def svg_texts(svg: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", t) for t in re.findall(r"<text\b.*?</text>", svg, re.S)]


def test_chart_labels_are_plain_text(built):
    """With text kept as SVG text, every chart of the report reads as plain labels: no literal
    ``$\\mathdefault{...}$`` exponent markup, no 1e7 offsets on dollar axes."""
    out, _ = built
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        ctx = stress_view.context(out, out["_scenario"], generated="now", command="pytest")
    svgs = {name: svg for name, svg in ctx["charts"].items() if svg}
    svgs |= {g["name"]: g["chart"] for g in ctx["sweeps"]}
    assert {"timeline", "losses", "waterfall", "network"} <= set(svgs)
    for name, svg in svgs.items():
        texts = svg_texts(svg)
        assert texts, name
        for t in texts:
            assert "mathdefault" not in t and "$\\" not in t and not re.search(r"\d[eE][+-]?\d", t), (name, t)


def test_nothing_to_draw_is_a_note_not_empty_axes():
    """A scenario where no node defaults (or loses) draws a sentence where the chart would be, no axes."""
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        drawn = {"timeline": stress_charts.timeline([]), "losses": stress_charts.losses([])}
    for name, svg in drawn.items():
        assert 'id="axes_' not in svg and 'id="xtick_' not in svg, name
        assert any(t.startswith("No node") for t in svg_texts(svg)), (name, svg_texts(svg))


def test_stress_asset_reruns_the_shipped_scenarios(tmp_path):
    from pipelines.definitions import defs as load_definitions
    from pipelines.defs.lake.resources import LakeResource
    from pipelines.defs.stress.assets import LAKE_INPUTS, stress_scenarios

    graph = load_definitions().resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert set(LAKE_INPUTS) <= keys  # every declared input is a real asset
    node = graph.get(dg.AssetKey("stress_runs"))
    assert node.automation_condition is not None and {k.to_user_string() for k in node.parent_keys} == set(LAKE_INPUTS)
    scen = tmp_path / "scenarios"
    scen.mkdir()
    shutil.copy(ESSAY, scen / "essay_chain.toml")
    shutil.copy(ROOT / "docs" / "scenarios" / "oct10_2025.toml", scen / "oct10_2025.toml")
    result = dg.materialize(
        [stress_scenarios],
        resources={"lake": LakeResource(lake_root=str(tmp_path / "lake"), db_path=str(tmp_path / "c.duckdb"))},
        run_config={
            "ops": {
                "stress_scenarios": {
                    "config": {"scenario_dir": str(scen), "out_root": str(tmp_path / "reports"), "pdf": False}
                }
            }
        },
    )
    assert result.success
    md = result.asset_materializations_for_node("stress_scenarios")[0].metadata
    assert md["scenarios"].value == 2 and "essay-copper-freeze-bybit" in md["summary"].value
    assert (tmp_path / "reports" / "essay-copper-freeze-bybit" / "report.html").exists()
    lake = Lake(tmp_path / "lake")
    assert all(lake.has_files(t) for t in ("stress_runs", "stress_defaults", "stress_venues", "stress_sweeps"))
