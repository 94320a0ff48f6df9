"""`liqf simulate`, `liqf serve` and `liqf demo`: scenarios with a known truth, the local venue server on
loopback, and the whole pipeline on a simulated cascade."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table as RichTable

from pipelines.cli.context import console, fail, out, print_table, settings
from pipelines.cli.options import example

app = typer.Typer()


@app.command(
    "simulate",
    epilog=example(
        "liqf simulate --out data/sim --scale small --policy hl_index --exempt 5 --seed 7",
        "liqf simulate --out data/sim-real --scale tiny --formats real --drop-fills 0.01",
    ),
)
def simulate_cmd(
    out: Annotated[Path, typer.Option("--out", help="Output directory (node files, snapshot, contexts, truth.json).")],
    preset: Annotated[str, typer.Option(help="Calibration preset.")] = "oct10",
    scale: Annotated[str, typer.Option(help="tiny, small, medium or full.")] = "small",
    policy: Annotated[str, typer.Option(help="ADL selection policy the engine applies.")] = "hl_index",
    exempt: Annotated[int, typer.Option(help="Number of planted exempt accounts.")] = 5,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same bytes).")] = 7,
    stale_snapshot: Annotated[int, typer.Option(help="Noise: blocks between snapshot and window start.")] = 0,
    drop_fills: Annotated[float, typer.Option(help="Noise: fraction of fill legs dropped from the output.")] = 0.0,
    mark_jitter: Annotated[float, typer.Option(help="Noise: relative jitter on published markPx.")] = 0.0,
    clock_skew_ms: Annotated[int, typer.Option(help="Noise: max clock skew between legs, ms.")] = 0,
    formats: Annotated[
        str,
        typer.Option(
            help="'node' (JSONL snapshot and contexts) or 'real' (funding and ledger "
            "events in misc_events_by_block, the clearinghouse export, the "
            "archive's per-minute asset_ctxs CSV)."
        ),
    ] = "node",
) -> None:
    """Simulate a liquidation cascade with a known ADL rule and planted exemptions."""
    # heavy (numpy, the writers): imported when the command runs, so `liqf --help` starts fast
    from forensics import simulate

    noise = {
        "stale_snapshot": stale_snapshot,
        "drop_fills": drop_fills,
        "mark_jitter": mark_jitter,
        "clock_skew_ms": clock_skew_ms,
    }
    try:
        with console.status(f"simulating {preset}/{scale} with policy {policy}"):
            scenario = simulate.generate(
                out, preset=preset, scale=scale, policy=policy, exempt=exempt, seed=seed, noise=noise, formats=formats
            )
    except ValueError as exc:
        raise fail(str(exc)) from None
    c = scenario["counts"]
    console.print(
        f"[green]✓[/] {c['accounts']:,} accounts, {c['coins']} coins, {c['fills']:,} fills, "
        f"{c['liquidation_legs']:,} liquidation legs, {c['adl_legs']:,} ADL legs in {c['steps']:,} steps",
        highlight=False,
    )
    ks = scenario.get("calibration", {}).get("ks") or {}
    parts = []
    for name, v in ks.items():
        if isinstance(v, dict) and "statistic" in v:
            parts.append(f"{name} KS {v['statistic']:.3f}")
        elif isinstance(v, dict) and "sim" in v and "real" in v:
            parts.append(f"{name} {v['sim']:.3g} (real {v['real']:.3g})")
    if parts:
        console.print("calibration against the real 2025-10-10 marginals: " + ", ".join(parts), highlight=False)
    elif ks:
        console.print("calibration: real data absent, built-in parameters used", highlight=False)
    console.print(f"scenario: {Path(out).resolve()} (ground truth kept apart in truth.json)", highlight=False)
    console.print(
        f"next: liqf serve --scenario {out}   or   liqf ingest hyperliquid --node-fills {out}/node_fills_by_block",
        highlight=False,
    )


@app.command(
    "serve",
    epilog=example(
        "liqf serve --scenario data/sim --port 8765", "liqf serve --scenario data/sim --faults 429=0.1,5xx=0.05"
    ),
)
def serve_cmd(
    scenario: Annotated[Path, typer.Option("--scenario", help="Scenario directory in Hyperliquid's formats.")],
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8765,
    faults: Annotated[
        str | None, typer.Option(help="Fault spec, e.g. '429=0.1,5xx=0.05,truncate=0.05,seed=3'.")
    ] = None,
) -> None:
    """Serve a scenario through Hyperliquid's info API on 127.0.0.1 (Ctrl-C to stop)."""
    # heavy: loaded only when the command runs, so `liqf --help` starts fast
    from pipelines.sandbox.venue_server import run_server

    if not (scenario / "node_fills_by_block").exists() and not (scenario / "snapshots").exists():
        raise fail(f"{scenario} is not a scenario directory", "create one with: liqf simulate --out DIR")
    console.print(f"serving {scenario} on http://127.0.0.1:{port}/info", highlight=False)
    run_server(scenario, port=port, faults=faults)


@app.command("demo", epilog=example("liqf demo", "liqf demo --scale tiny --policy bitmex --exempt 3 --out data/demo2"))
def demo_cmd(
    out_dir: Annotated[Path, typer.Option("--out", help="Where the demo scenario and summary go.")] = Path("data/demo"),
    scale: Annotated[str, typer.Option(help="Simulator scale.")] = "small",
    policy: Annotated[str, typer.Option(help="Planted ADL policy.")] = "hl_index",
    exempt: Annotated[int, typer.Option(help="Planted exempt accounts.")] = 5,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
) -> None:
    """Run the whole pipeline on an embedded, simulated cascade served on loopback."""
    # heavy (Dagster, the analysis, the report): imported when the command runs, so `liqf --help` starts fast
    from pipelines.sandbox import demo

    cfg = demo.DemoConfig(out_dir.resolve(), settings.lake, settings.db, scale, policy, exempt, seed)
    try:
        summary = demo.run(cfg, console)
    except (RuntimeError, ValueError) as exc:
        raise fail(str(exc)) from None
    rows = summary["catalog_rows"]
    empty = [v for v, n in rows.items() if not n]
    table = RichTable(
        "view",
        "rows",
        title="catalog after the demo",
        caption=f"{len(empty)} other views are empty in this scenario" if empty else None,
    )
    for view, n in rows.items():
        if n:
            table.add_row(view, f"{n:,}")
    _demo_print(table, summary)


def _demo_print(table: RichTable, summary: dict) -> None:
    print_table(table)
    inferred, cmp = summary["inferred"], summary["comparison"]
    out.print(f"inferred rule: {inferred['verdict']}", highlight=False)
    out.print(
        f"planted rule:  {summary['planted']['policy']} -> {'recovered' if cmp['rule_recovered'] else 'NOT recovered'}",
        highlight=False,
    )
    out.print(
        f"exemptions: {len(summary['planted']['exempt'])} planted, {len(inferred['flagged'])} flagged "
        f"({len(cmp['true_flags'])} true, {len(cmp['false_flags'])} false, {len(cmp['missed'])} missed); "
        f"truth in {summary['truth']}",
        highlight=False,
    )
    if summary["failed_checks"]:
        out.print(f"[yellow]data-quality checks that failed:[/] {', '.join(summary['failed_checks'])}")
    else:
        out.print("data-quality checks: all passed")
    out.print(f"audit report: {summary['report']['html']}\n              {summary['report']['pdf']}", highlight=False)
    out.print(
        f'lake: {summary["lake"]}\ncatalog: {summary["catalog"]}  (try: liqf sql "select count(*) from adl_fills")',
        highlight=False,
    )
    if summary["dagster_home"]:
        out.print(
            f"dagster runs: {summary['dagster_home']}  "
            f"(browse: make dev, or DAGSTER_HOME={summary['dagster_home']} VIRTUAL_ENV=$PWD/.venv .venv/bin/dg dev)",
            highlight=False,
        )
    out.print(
        f"done in {summary['seconds']} s; summary: {Path(summary['scenario']).parent / 'demo_summary.json'}",
        highlight=False,
    )
