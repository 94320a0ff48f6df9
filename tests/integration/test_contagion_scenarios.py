"""Scenario files and `liqf stress`: the minimal TOML form against an independent clearing (LP) on
random networks up to 200 nodes, bad files as one-line errors naming the field, lake references,
the shipped scenarios and the essay's chain end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from forensics.contagion.scenario import ScenarioError, load, loads
from forensics.tables import ALL_TABLES
from pipelines import stress as stress_mod
from pipelines.cli import app
from pipelines.lake import Lake
from tests.conftest import PROJECT_ROOT
from tests.unit.forensics.test_contagion import lp_clearing, random_network

ROOT = PROJECT_ROOT
SCENARIOS = ROOT / "docs" / "scenarios"


def minimal_toml(L: np.ndarray, e: np.ndarray, kind: str = "eisenberg_noe") -> str:
    lines = ["[model]", f'kind = "{kind}"']
    for i, x in enumerate(e):
        lines += ["[[node]]", f'id = "n{i}"', f"external_assets = {float(x)!r}"]
    for i, j in zip(*np.nonzero(L)):
        lines += ["[[liability]]", f'debtor = "n{i}"', f'creditor = "n{j}"', f"amount = {float(L[i, j])!r}"]
    return "\n".join(lines) + "\n"


def liqf(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    # the installed entry point, as users run it
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "liqf"),
            "--lake",
            str(tmp_path / "lake"),
            "--db",
            str(tmp_path / "c.duckdb"),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _invoke(tmp_path: Path, *args: str):
    return CliRunner().invoke(app, ["--lake", str(tmp_path / "lake"), "--db", str(tmp_path / "c.duckdb"), *args])


def test_minimal_form_from_the_issue(tmp_path):
    f = tmp_path / "min.toml"
    f.write_text(
        '[model]\nkind = "eisenberg_noe"\n[[node]]\nid = "A"\nexternal_assets = 10.0\n'
        '[[node]]\nid = "B"\n[[liability]]\ndebtor = "A"\ncreditor = "B"\namount = 20.0\n'
    )
    r = liqf(tmp_path, "stress", "--scenario", str(f), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["payments"] == {"A": 10.0, "B": 0.0}
    assert out["defaults"] == [{**out["defaults"][0], "node": "A", "round": 1, "cause": "solvency"}]
    assert set(out) >= {"payments", "defaults", "venues", "sweeps"}


@pytest.mark.parametrize("n, seed", [(7, 1), (40, 2), (120, 3), (200, 4), (200, 5)])
def test_liqf_stress_agrees_with_an_lp_on_random_networks(tmp_path, n, seed):
    rng = np.random.default_rng(seed)
    L, e = random_network(rng, n)
    f = tmp_path / "net.toml"
    f.write_text(minimal_toml(L, e))
    res = _invoke(tmp_path, "stress", "--scenario", str(f), "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    p = np.array([out["payments"][f"n{i}"] for i in range(n)])
    independent = lp_clearing(L, e)
    assert np.allclose(p, independent, atol=1e-6, rtol=0)
    defaulted = {d["node"] for d in out["defaults"]}
    assert defaulted == {f"n{i}" for i in np.nonzero(independent < L.sum(1) - 1e-6)[0]}
    assert defaulted  # the generator makes defaults; a test where nobody defaults would prove little
    # diagnostics: a zero-recovery Furfine cascade defaults at least everyone Eisenberg-Noe defaults
    assert {d["node"] for d in out["diagnostics"]["furfine"]} >= defaulted
    dr = out["diagnostics"]["debtrank_linear"]
    assert set(dr["initial"]) <= defaulted and 0 <= dr["additional"] <= 1


def test_liqf_stress_rogers_veraart_form(tmp_path):
    from tests.unit.forensics.test_contagion import rv_greatest_dense

    rng = np.random.default_rng(9)
    L, e = random_network(rng, 60)
    f = tmp_path / "rv.toml"
    f.write_text(
        minimal_toml(L, e, "rogers_veraart").replace(
            'kind = "rogers_veraart"', 'kind = "rogers_veraart"\nalpha = 0.6\nbeta = 0.8'
        )
    )
    out = json.loads(_invoke(tmp_path, "stress", "--scenario", str(f), "--json").stdout)
    p, D = rv_greatest_dense(L, e, 0.6, 0.8)
    assert np.allclose([out["payments"][f"n{i}"] for i in range(60)], p, atol=1e-9)


BAD = {
    "unknown node": (
        '[[node]]\nid = "A"\n[[liability]]\ndebtor = "A"\ncreditor = "Z"\namount = 1.0\n',
        "liability[0].creditor: unknown node 'Z'",
    ),
    "negative amount": (
        '[[node]]\nid = "A"\n[[node]]\nid = "B"\n[[liability]]\ndebtor = "A"\ncreditor = "B"\namount = -5.0\n',
        "liability[0].amount: must be >= 0",
    ),
    "custody cycle": (
        '[[node]]\nid = "a"\nkind = "custodian"\n[[node]]\nid = "b"\nkind = "custodian"\n'
        '[[custody]]\nclient = "a"\ncustodian = "b"\namount = 5.0\n'
        '[[custody]]\nclient = "b"\ncustodian = "a"\namount = 5.0\n',
        "custody[0]: custody cycle a -> b -> a without holdings",
    ),
    "unparsable": ('[[node]\nid = "A"\n', "not valid TOML"),
    "unknown field": ('[[node]]\nid = "A"\ncapitol = 5.0\n', "node[0].capitol: unknown field"),
    "bad share": (
        '[[node]]\nid = "v"\nkind = "venue"\nexempt_share = 1.5\n',
        "node[0].exempt_share: must be between 0 and 1",
    ),
    "rv without beta": (
        '[model]\nkind = "rogers_veraart"\nalpha = 0.5\n[[node]]\nid = "A"\n',
        "model.alpha: rogers_veraart needs both",
    ),
    "unknown venue": (
        '[[node]]\nid = "t"\n[[asset]]\nid = "BTC"\nprice = 1.0\n[[position]]\nholder = "t"\nvenue = "nope"\n'
        'asset = "BTC"\nqty = 1.0\nentry = 1.0\n',
        "position[0].venue: unknown venue node 'nope'",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_scenarios_give_one_line_errors_naming_the_field(tmp_path, case):
    text, expected = BAD[case]
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(ScenarioError) as exc:
        load(f)
    assert expected in str(exc.value) and "\n" not in str(exc.value)
    res = _invoke(tmp_path, "stress", "--scenario", str(f))
    assert res.exit_code == 2
    assert expected in res.output and len([ln for ln in res.output.splitlines() if ln.strip()]) == 1, res.output


def test_bad_scenario_through_the_real_cli_is_one_line_exit_2(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text(BAD["negative amount"][0])
    r = liqf(tmp_path, "stress", "--scenario", str(f))
    assert r.returncode == 2 and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and "liability[0].amount" in r.stderr
    r = liqf(tmp_path, "stress", "--scenario", str(SCENARIOS / "essay_chain.toml"), "--sweep", "exempt_share=0:1")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "LO:HI:N" in r.stderr


def test_shipped_scenarios_load_and_run(tmp_path):
    files = sorted(SCENARIOS.glob("*.toml"))
    assert {f.stem for f in files} >= {"essay_chain", "coinflex_2022", "ftx_alameda_2022", "oct10_2025"}
    for f in files:
        scn = load(f)
        assert scn.description, f
        out = stress_mod.run(f, lake=Lake(tmp_path / "lake"), scenario_sweeps=False)
        assert out["inputs"], f"{f.name}: no sourced inputs"
        facts = [p for p in out["inputs"] if p["confidence"] in ("verified", "secondary")]
        assert all(p["source"] for p in facts), f"{f.name}: a fact without a source"


def test_essay_chain_end_to_end(tmp_path):
    """The essay's chain: Copper's freeze makes Bybit haircut winners, the two cross-venue traders cannot
    reach their Bybit profits before the margin calls and are liquidated; Hyperliquid's backstop is
    exceeded (ADL). Without the freeze, or with twice the insurance fund, nobody defaults."""
    f = SCENARIOS / "essay_chain.toml"
    out = stress_mod.run(f, lake=Lake(tmp_path / "lake"))
    venues = {v["venue"]: v for v in out["venues"]}
    assert venues["bybit"]["frozen_settlement"] > 0 and venues["bybit"]["haircut"] > 0.2
    assert venues["hyperliquid"]["shortfall"] > 0 and venues["hyperliquid"]["haircut"] > 0
    causes = {d["node"]: d for d in out["defaults"]}
    assert {"mm_a", "mm_b"} <= set(causes) and all(causes[k]["cause"] == "liquidity" for k in ("mm_a", "mm_b"))
    assert "ethena" not in causes
    by_name = {g["name"]: g for g in out["sweeps"]}
    freeze = by_name["freeze x shock"]["points"]
    assert all(p["defaults"] == 0 and p["max_haircut"] == 0 for p in freeze if p["freeze_fraction"] == 0)
    assert any(p["defaults"] > 0 for p in freeze if p["freeze_fraction"] == 1)
    ins = by_name["exempt share x insurance fund"]["points"]
    # haircuts rise with the exempt share and fall with the insurance fund
    for s in {p["insurance_scale"] for p in ins}:
        hs = [
            p["max_haircut"]
            for p in sorted((p for p in ins if p["insurance_scale"] == s), key=lambda p: p["exempt_share"])
        ]
        assert hs == sorted(hs)
    assert any(p["defaults"] == 0 for p in ins if p["insurance_scale"] == 2.0)
    # tables written and readable through the catalog
    lake = Lake(tmp_path / "lake")
    for name in ("stress_runs", "stress_defaults", "stress_venues", "stress_sweeps"):
        assert lake.has_files(name), name
        assert ALL_TABLES[name].layer == "analytics"
    from pipelines import catalog, sql_library

    catalog.refresh(lake, tmp_path / "c.duckdb")
    q = sql_library.get("stress_venue_outcomes")
    con = catalog.connect_read_only(tmp_path / "c.duckdb")
    try:
        rows = con.execute(q.sql, sql_library.bind(q, {"min_haircut": "0.1"})).fetchall()
    finally:
        con.close()
    assert {r[1] for r in rows} == {v for v, x in venues.items() if x["haircut"] >= 0.1} and "bybit" in {
        r[1] for r in rows
    }
    assert all("mm_a (round" in r[-1] for r in rows)


def test_from_lake_values_resolved_with_source_and_time(tmp_path):
    lake = Lake(tmp_path / "lake")
    table = ALL_TABLES["vault_equity"]
    rows = [
        {
            "venue": "hyperliquid",
            "date": __import__("datetime").date(2025, 10, 10),
            "vault": "0xabc",
            "vault_name": "HLP",
            "window": "day",
            "time": __import__("datetime").datetime(2025, 10, 10, h),
            "time_ms": 1760054400000 + h * 3_600_000,
            "account_value": v,
            "pnl": None,
            "source": "api:vaultDetails",
            "source_key": "k",
        }
        for h, v in ((20, 100), (21, 90), (23, 50))
    ]
    import decimal

    for r in rows:
        r["account_value"] = decimal.Decimal(r["account_value"])
    lake.replace_source(table, "hyperliquid", "a" * 24, pa.Table.from_pylist(rows, schema=table.arrow_schema()))
    text = (
        '[[node]]\nid = "hl"\nkind = "vault"\n'
        'capital = { from_lake = "vault_equity:hyperliquid:0xABC@2025-10-10T22:00:00Z" }\n'
        'insurance_fund = { from_lake = "insurance_fund:hyperliquid:x", fallback = 7.0, source = "assumed" }\n'
        "bad_debt = 95.0\nprofit_base = 100.0\n"
    )
    f = tmp_path / "s.toml"
    f.write_text(text)
    out = stress_mod.run(f, lake=lake)
    inputs = {p["field"]: p for p in out["inputs"]}
    cap = inputs["node[0].capital"]
    assert cap["value"] == 90 and cap["time"] == "2025-10-10T21:00:00Z" and "vault_equity" in cap["source"]
    fb = inputs["node[0].insurance_fund"]
    assert fb["value"] == 7.0 and "fallback" in fb["source"] and fb["confidence"] == "fallback"
    assert out["venues"][0]["insurance_fund"] == 97.0 and out["venues"][0]["haircut"] == 0
    f.write_text(text.replace(', fallback = 7.0, source = "assumed"', ""))
    with pytest.raises(ScenarioError, match=r"node\[0\].insurance_fund.from_lake: no rows"):
        stress_mod.run(f, lake=lake)


def test_loads_rejects_unknown_sections_and_sweeps():
    with pytest.raises(ScenarioError, match="nodes: unknown section"):
        loads('[[nodes]]\nid = "a"\n')
    with pytest.raises(ScenarioError, match=r"sweep\[0\].freeze_fraction: the scenario has no custodian_freeze"):
        loads('[[node]]\nid = "a"\n[[sweep]]\nfreeze_fraction = "0:1:3"\n')


def test_every_schema_field_is_documented():
    from forensics.contagion.scenario import SCHEMA

    doc = (ROOT / "docs" / "contagion.md").read_text()
    for section, fields in SCHEMA.items():
        for name in fields:
            if name not in ("source",):
                assert f"`{name}`" in doc or f"`{name} " in doc or f", `{name}`" in doc or name in doc, (section, name)


@pytest.mark.realdata
def test_oct10_scenario_reads_the_real_liquidator_vaults(tmp_path, realdata):
    """HLP vault snapshots of Oct 2025 (hlp-cascade-handoff) in the lake: the 2025-10-10 scenario's
    backstop is the latest Liquidator and Liquidator 2 values before 21:00 UTC, with their times."""
    import csv
    import datetime as dt
    import decimal

    path = realdata("hlp-cascade-handoff/data/vault_pnl_snapshots.csv")
    table = ALL_TABLES["vault_equity"]
    rows = []
    for r in csv.DictReader(path.open()):
        t = dt.datetime.fromisoformat(r["ts"]).astimezone(dt.UTC)
        rows.append(
            {
                "venue": "hyperliquid",
                "date": t.date(),
                "vault": r["vault"],
                "vault_name": r["vault_name"],
                "window": r["timeframe"],
                "time": t.replace(tzinfo=None),
                "time_ms": int(t.timestamp() * 1000),
                "account_value": decimal.Decimal(r["account_value"]),
                "pnl": None,
                "source": "csv:vault_pnl_snapshots",
                "source_key": "b" * 24,
            }
        )
    lake = Lake(tmp_path / "lake")
    lake.replace_source(table, "hyperliquid", "b" * 24, pa.Table.from_pylist(rows, schema=table.arrow_schema()))
    cutoff = dt.datetime(2025, 10, 10, 21, tzinfo=dt.UTC).replace(tzinfo=None)

    def expected(vault):
        pts = [r for r in rows if r["vault"] == vault and r["time"] <= cutoff]
        return float(max(pts, key=lambda r: r["time"])["account_value"])

    out = stress_mod.run(SCENARIOS / "oct10_2025.toml", lake=lake, scenario_sweeps=False)
    inputs = {p["field"]: p for p in out["inputs"]}
    cap, fund = inputs["node[0].capital"], inputs["node[0].insurance_fund"]
    assert cap["value"] == expected("0xb0a55f13d22f66e6d495ac98113841b2326e9540") and cap["confidence"] == "lake"
    assert fund["value"] == expected("0x2e3d94f0562703b25c83308a05046ddaf9a8dd14") and fund["time"] < "2025-10-10T21"
    hl = next(v for v in out["venues"] if v["venue"] == "hyperliquid")
    assert hl["insurance_fund"] == pytest.approx(cap["value"] + fund["value"])


def test_cli_sweeps_from_the_issue_and_report_files(tmp_path):
    essay = SCENARIOS / "essay_chain.toml"
    res = _invoke(
        tmp_path,
        "stress",
        "--scenario",
        str(essay),
        "--sweep",
        "exempt_share=0:0.5:11",
        "--sweep",
        "insurance_fund_scale=0:2:9",
        "--json",
        "--out",
        str(tmp_path / "rep"),
        "--no-pdf",
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert [g["name"] for g in out["sweeps"]] == ["cli"]
    g = out["sweeps"][0]
    assert g["params"] == ["exempt_share", "insurance_scale"] and len(g["points"]) == 99
    assert g["values"]["exempt_share"][-1] == 0.5 and g["values"]["insurance_scale"][4] == 1.0
    base = next(p for p in g["points"] if p["exempt_share"] == 0 and p["insurance_scale"] == 1.0)
    assert base["defaults"] == len(out["defaults"]) and base["max_haircut"] == pytest.approx(
        out["summary"]["max_haircut"]
    )
    assert (tmp_path / "rep" / "report.html").stat().st_size > 10_000
    assert json.loads((tmp_path / "rep" / "result.json").read_text())["run_id"] == out["run_id"]
