"""`liqf stress`: the cross-venue contagion stress test.

* ``liqf stress --scenario FILE [--sweep KEY=LO:HI:N ...] [--json] [--out DIR]``
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table as RichTable

from forensics.contagion.scenario import ScenarioError
from pipelines.cli.context import console, fail, out, refresh_catalog, settings

app = typer.Typer()


@app.command("stress")
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
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")] = False,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Write report.html, report.pdf and result.json here.")
    ] = None,
    no_sweeps: Annotated[bool, typer.Option("--no-sweeps", help="Skip the scenario's own sweeps.")] = False,
    no_pdf: Annotated[bool, typer.Option("--no-pdf", help="With --out: HTML only.")] = False,
) -> None:
    """Cross-venue contagion stress test: clearing, venue waterfalls, liquidity and fire sales over a scenario."""
    # heavy (networkx, scipy; the report: matplotlib, WeasyPrint): imported when the command runs, so
    # `liqf --help` starts fast
    from pipelines import stress as stress_mod
    from pipelines import stress_report

    try:
        result = stress_mod.run(scenario, lake=settings.lake, sweeps=sweep or None, scenario_sweeps=not no_sweeps)
    except ScenarioError as exc:
        raise fail(str(exc)) from None
    refresh_catalog(warn_only=True)
    public = stress_mod.public(result)
    if out_dir is not None:
        paths = stress_report.write(result, out_dir, pdf=not no_pdf)
        (out_dir / "result.json").write_text(json.dumps(public, default=str, indent=1))
        console.print(f"report: {paths.html}" + (f"\n        {paths.pdf}" if paths.pdf else ""), highlight=False)
    if as_json:
        print(json.dumps(public, default=str))
        return
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
    out.print(d if result["defaults"] else "no defaults", highlight=False)
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
        out.print(v)
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
