"""`liqf stress`: the cross-venue contagion stress test.

* ``liqf stress --scenario FILE [--sweep KEY=LO:HI:N ...] [--json] [--out DIR] [--pdf/--no-pdf]``
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table as RichTable
from rich.text import Text

from pipelines.cli.context import console, fail, out, print_table, refresh_catalog, settings
from pipelines.cli.options import JSON, PDF, example

app = typer.Typer()


@app.command(
    "stress",
    epilog=example(
        "liqf stress --scenario docs/scenarios/oct10_2025.toml",
        "liqf stress --scenario docs/scenarios/oct10_2025.toml --sweep exempt_share=0:0.5:11 --out reports/stress",
    ),
)
def stress(
    scenario: Annotated[Path, typer.Option("--scenario", help="Scenario TOML file (docs/contagion.md).")],
    sweep: Annotated[
        list[str] | None,
        typer.Option(
            "--sweep",
            help="KEY=LO:HI:N grid (repeat for a 2-D grid): "
            "exempt_share, insurance_scale, freeze_fraction, shock_scale, <asset>_shock, node.<id>.<field>. "
            "Replaces the scenario's own [[sweep]] tables.",
        ),
    ] = None,
    as_json: JSON = False,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Write report.html, report.pdf and result.json here.")
    ] = None,
    no_sweeps: Annotated[bool, typer.Option("--no-sweeps", help="Skip the scenario's own sweeps.")] = False,
    pdf: PDF = True,
) -> None:
    """Cross-venue contagion stress test: clearing, venue waterfalls, liquidity and fire sales over a scenario."""
    # heavy (networkx, scipy; the report: matplotlib, WeasyPrint): imported when the command runs, so
    # `liqf --help` starts fast
    from forensics.contagion.scenario import ScenarioError
    from forensics.report.stress import _named as named_field
    from pipelines import stress as stress_mod
    from pipelines import stress_report

    try:
        result = stress_mod.run(scenario, lake=settings.lake, sweeps=sweep or None, scenario_sweeps=not no_sweeps)
    except ScenarioError as exc:
        raise fail(str(exc)) from None
    refresh_catalog(warn_only=True)
    public = stress_mod.public(result)
    if out_dir is not None:
        paths = stress_report.write(result, out_dir, pdf=pdf)
        (out_dir / "result.json").write_text(json.dumps(public, default=str, indent=1))
        console.print(f"report: {paths.html}" + (f"\n        {paths.pdf}" if paths.pdf else ""), highlight=False)
    if as_json:
        print(json.dumps(public, default=str))
        return
    if result["inputs"]:
        inputs = RichTable("input", "value", "confidence", "source", "time", title="scenario inputs and their sources")
        for p in result["inputs"]:
            inputs.add_row(
                Text(named_field(p["field"], result["_scenario"])),
                f"{p['value']:,.15g}",
                p.get("confidence") or "",
                Text(p.get("source") or "scenario file"),
                p.get("time") or "",
            )
        print_table(inputs)
    else:
        out.print("scenario inputs: plain numbers in the scenario file (no source given)", highlight=False)
    d = RichTable("round", "node", "kind", "cause", "equity", "recovery", title=f"defaults: {result['scenario']}")
    for r in result["defaults"]:
        d.add_row(
            str(r["round"]),
            r["node"],
            r["kind"],
            r["cause"] + (f" ({', '.join(r['venues'])})" if r["venues"] else ""),
            f"{r['equity']:,.0f}",
            f"{r['recovery']:.3f}",
        )
    if result["defaults"]:
        print_table(d)
    else:
        out.print("no defaults", highlight=False)
    if result["venues"]:
        v = RichTable(
            "venue", "bad debt", "IF used", "shortfall", "haircut", "residual", "defaulted", title="venue waterfalls"
        )
        for r in result["venues"]:
            v.add_row(
                r["venue"],
                f"{r['bad_debt']:,.0f}",
                f"{r['insurance_used']:,.0f}",
                f"{r['shortfall']:,.0f}",
                f"{r['haircut']:.2%}",
                f"{r['residual']:,.0f}",
                "yes" if r["defaulted"] else "no",
            )
        print_table(v)
    for g in result["sweeps"]:
        out.print(
            f"sweep {g['name']}: {len(g['points'])} points over {' x '.join(g['params'])}; defaults "
            f"{min(p['defaults'] for p in g['points'])}-{max(p['defaults'] for p in g['points'])}",
            highlight=False,
        )
    out.print(
        f"tables: stress_runs, stress_defaults, stress_venues, stress_sweeps in {settings.db} ({result['seconds']} s)",
        highlight=False,
    )
