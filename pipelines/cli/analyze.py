"""`liqf analyze` (reconstruct, identify the ADL rule, test exemptions) and `liqf validate` (score the audit on
scenarios with a known truth)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table as RichTable

from pipelines.cli import progress
from pipelines.cli.context import console, fail, no_adl_message, out, print_table, refresh_catalog, settings, window
from pipelines.cli.options import FDR, FROM, TO, example

app = typer.Typer()


@app.command(
    "analyze",
    epilog=example(
        "liqf analyze --from 2025-10-10T21:00 --to 2025-10-10T21:30",
        "liqf analyze --fdr 0.01 --json > audit.json",
    ),
)
def analyze(
    venue: Annotated[str, typer.Option(help="Venue id (hyperliquid, gmx).")] = "hyperliquid",
    since: FROM = None,
    until: TO = None,
    fdr: FDR = 0.05,
    diagnostic_steps: Annotated[
        int | None,
        typer.Option(
            help="ADL actions sampled for the fill-order diagnostics (Plackett-Luce, Kendall, NDCG); 0 = all; "
            "default: the analysis' sample size (forensics.audit.diagnostics.DIAGNOSTIC_STEPS)."
        ),
    ] = None,
    logit: Annotated[
        str,
        typer.Option(help="Conditional logit on log features: auto (when no documented rule fits), always or never."),
    ] = "auto",
    logit_rows: Annotated[
        int | None,
        typer.Option(help="Candidate rows for the conditional logit (default: the analysis' LOGIT_ROWS)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed of the diagnostic samples.")] = 0,
    pools: Annotated[
        bool,
        typer.Option(
            "--pools",
            help="Also write every ADL action's whole candidate pool (adl_pools, for SQL) and the replay's check "
            "against the liquidation summaries (liquidation_checks): a second pass over the replay.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")] = False,
) -> None:
    """Identify the ADL selection rule and flag accounts that look exempt: one pass over the replay from the
    snapshot through every ADL action of the window."""
    # heavy (scipy, statsmodels, numba kernels): imported when the command runs, so `liqf --help` starts fast
    from pipelines.analysis import audit as audit_analysis
    from pipelines.analysis import gmx as gmx_analysis
    from pipelines.analysis import reconstruct as pools_analysis

    since_ms, until_ms = window(since, until)
    if logit not in ("auto", "always", "never"):
        raise fail(f"--logit must be auto, always or never, not {logit!r}")
    settings.lake.pull()  # an s3:// lake: its committed parts into the working copy
    # sample sizes: the analysis' own defaults unless given (0 diagnostic steps = every action)
    sizes: dict[str, Any] = {}
    if diagnostic_steps is not None:
        sizes["diagnostic_steps"] = diagnostic_steps or None
    if logit_rows is not None:
        sizes["logit_rows"] = logit_rows
    common = {"since_ms": since_ms, "until_ms": until_ms, "q": fdr, "seed": seed, "logit": logit, **sizes}
    try:
        if venue in gmx_analysis.VENUE_NAMES:
            # GMX: ADL pools from its position events, the keeper tested against "most profitable first"
            with console.status("building GMX pools, testing the keeper's choices"):
                result = gmx_analysis.run(settings.lake, **common)
        else:
            with progress.steps("ADL actions") as bar:
                task = bar.add_task("audit", total=None)
                result = audit_analysis.run(
                    settings.lake,
                    venue=venue,
                    progress=lambda done, total: bar.update(task, completed=done, total=total),
                    **common,
                )
            if pools:
                with console.status("writing the whole ADL pools and the liquidation check"):
                    pools_analysis.run(settings.lake, venue=venue, since_ms=since_ms, until_ms=until_ms)
    except audit_analysis.NoFills as exc:
        raise fail(
            str(exc), "ingest node fills and a position snapshot first (see `liqf ingest hyperliquid --help`)"
        ) from None
    except gmx_analysis.MissingEvents as exc:
        raise fail(str(exc), "ingest GMX events first (`liqf ingest gmx --chain arbitrum --rpc URL`)") from None
    refresh_catalog()
    body = result.as_json()
    if as_json:
        print(json.dumps(body, default=str, indent=1))
        return
    if not body["steps"]:
        out.print(no_adl_message(body["fills"], "audit"), highlight=False)
        return
    table = RichTable(
        "rule",
        "kind",
        "cost",
        "exempt",
        "residual",
        "shape",
        "residual rate",
        "fits",
        "AUC",
        "Kendall τ",
        "AIC",
        title=f"{body['steps']:,} ADL actions, {body['pools']:,} pool rows",
    )
    fmt = lambda v, p=3: "" if v is None else f"{v:.{p}f}"  # noqa: E731
    for r in sorted(body["rules"], key=lambda r: r["cost"]):
        table.add_row(
            r["name"],
            r["kind"],
            f"{r['cost']:,}",
            str(r["exemptions_needed"]),
            f"{r['residual_skips']:,}",
            f"{r['shape_violations']:,}",
            fmt(r["residual_rate"], 4),
            "yes" if r["fits"] else "no",
            fmt(r["auc"]),
            fmt(r["kendall_tau"]),
            fmt(r["aic"], 1),
        )
    print_table(table)
    out.print(f"identified rule: {result.verdict}", highlight=False)
    fitted = result.conditional_logit
    if fitted.get("closest_rule"):
        out.print(
            f"conditional logit direction {[round(x, 3) for x in fitted['direction']]} on {fitted['features']}: "
            f"closest documented rule {fitted['closest_rule']}",
            highlight=False,
        )
    if result.rule_changes.get("changed"):
        out.print("[yellow]the rule changed during the cascade[/] (rule in force, by action):")
        for w in result.rule_changes["windows"]:
            out.print(
                f"  actions {w['first_action']}-{w['last_action']}: {w['rule']} (cost {w['cost']})", highlight=False
            )
    if result.exemption.note:
        out.print(result.exemption.note, highlight=False)
    else:
        out.print(
            f"{len(result.flagged)} account(s) flagged at FDR q <= {fdr}, calibrated skip rate "
            f"{result.exemption.skip_rate:.5f} (statistical anomalies, not accusations):",
            highlight=False,
        )
        for f in result.flagged[:20]:
            if f.kind == "capped":
                line = (
                    f"  {f.user}  capped: selected above the cut in {f.cap_opportunities} action(s), closed only in "
                    f"part in {f.caps}, q {f.cap_q_value:.2e}"
                )
            else:
                line = (
                    f"  {f.user}  above the cut in {f.opportunities} action(s), passed over in {f.skips} "
                    f"(expected {f.expected_skips:.2f}), p {f.p_value:.2e}, q {f.q_value:.2e}"
                )
            out.print(line, highlight=False)
    tables = "adl_steps, adl_rule_fits, exemption_flags" + (", adl_pools, liquidation_checks" if pools else "")
    out.print(
        f"done in {result.seconds.get('total', 0):.1f} s; tables: {tables} in "
        f'{settings.db} (evidence: liqf sql "select user, evidence_json from exemption_flags where flagged")',
        highlight=False,
    )


#: where `liqf validate` writes unless told: never over the committed docs/ (regenerate those with --out docs)
VALIDATE_OUT = Path("data/validation")


@app.command(
    "validate",
    epilog=example(
        "liqf validate --scale tiny --seeds 2",
        "liqf validate --independent ../shared/scenarios/independent --damage knobs",
        "liqf validate --scale small --seeds 2 --out docs   (regenerates the committed docs/validation.md)",
    ),
)
def validate(
    scale: Annotated[str, typer.Option(help="Simulator scale of every scenario.")] = "tiny",
    seeds: Annotated[int, typer.Option(help="Seeds per cell.")] = 3,
    policies: Annotated[list[str] | None, typer.Option("--policy", help="Policies (default: all).")] = None,
    out_dir: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Where validation.md and validation.csv (or independent.md and .csv) go; docs/ holds the "
            "committed copies.",
        ),
    ] = VALIDATE_OUT,
    independent: Annotated[
        Path | None,
        typer.Option(
            help="Instead: score every scenario of another generator under this folder (each with truth.json); "
            "writes independent.md/.csv."
        ),
    ] = None,
    damage: Annotated[
        list[str] | None,
        typer.Option(
            help="With --independent: damaged copies to score too, e.g. drop_fill_legs=0.01 (repeatable; "
            "'knobs' = each standard knob)."
        ),
    ] = None,
    behaviour: Annotated[
        list[str] | None,
        typer.Option(
            help="Instead: the sweep per venue behaviour (single, switch, capped, the rule variants, null; "
            "repeatable; 'all' = each); writes validation_behaviours.md/.csv."
        ),
    ] = None,
) -> None:
    """Sweep simulator scenarios (policy x exemptions x noise x seeds) end to end and score the audit."""
    # heavy (the analysis and Dagster-free ingest): imported when the command runs, so `liqf --help` starts fast
    from forensics import simulate
    from pipelines.analysis import validation

    if independent is not None:
        _validate_independent(independent, damage or [], out_dir)
        return
    if behaviour:
        _validate_behaviours(behaviour, scale, seeds, out_dir)
        return

    chosen = policies or list(simulate.POLICIES)
    unknown = [p for p in chosen if p not in simulate.POLICIES]
    if unknown:
        raise fail(f"unknown policy {unknown[0]!r}", f"policies: {', '.join(simulate.POLICIES)}")
    total = len(chosen) * 3 * 2 * seeds
    with progress.counted() as bar:
        task = bar.add_task("scenarios", total=total)
        df = validation.sweep(
            chosen,
            (0, 5, 20),
            tuple(validation.NOISE),
            range(1, seeds + 1),
            scale=scale,
            progress=lambda row: bar.advance(task),
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    command = f"liqf validate --scale {scale} --seeds {seeds}" + "".join(f" --policy {p}" for p in policies or [])
    command += f" --out {out_dir}" if out_dir != VALIDATE_OUT else ""
    (out_dir / "validation.md").write_text(validation.markdown(df, command))
    df.write_csv(out_dir / "validation.csv")
    out.print(validation.summarize(df))
    out.print(f"wrote {out_dir / 'validation.md'} and {out_dir / 'validation.csv'}", highlight=False)


def _validate_behaviours(names: list[str], scale: str, seeds: int, out_dir: Path) -> None:
    # heavy: see validate()
    from pipelines.analysis import validation

    chosen = list(validation.BEHAVIOURS) if "all" in names else list(dict.fromkeys(names))
    unknown = [b for b in chosen if b not in validation.BEHAVIOURS]
    if unknown:
        raise fail(f"unknown behaviour {unknown[0]!r}", f"behaviours: all, {', '.join(validation.BEHAVIOURS)}")
    with progress.counted() as bar:
        task = bar.add_task("scenarios", total=len(chosen) * seeds)

        def done(row: dict) -> None:
            bar.advance(task)
            console.print(
                f"{row['behaviour']} s{row['seed']}: {row['best_rule']} "
                f"(rule {'-' if row['rule_ok'] is None else ('ok' if row['rule_ok'] else 'WRONG')}), "
                f"flagged {row['flagged']} ({row['false_flags']} false) of {row['planted']} planted",
                highlight=False,
            )

        df = validation.behaviour_sweep(chosen, range(1, seeds + 1), scale=scale, progress=done)
    command = f"liqf validate --scale {scale} --seeds {seeds}" + "".join(f" --behaviour {b}" for b in names)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "validation_behaviours.md").write_text(validation.behaviour_markdown(df, command))
    df.write_csv(out_dir / "validation_behaviours.csv")
    out.print(
        f"wrote {out_dir / 'validation_behaviours.md'} and {out_dir / 'validation_behaviours.csv'}", highlight=False
    )


def _validate_independent(root: Path, damage: list[str], out_dir: Path) -> None:
    # heavy: see validate()
    import polars as pl

    from forensics.simulate.damage import Damage
    from pipelines.analysis import validation

    if not root.is_dir():
        raise fail(f"no such folder: {root}", "point --independent at a folder of scenario directories")
    scenarios = validation.independent_scenarios(root)
    if not scenarios:
        raise fail(f"no scenario (a folder with truth.json and node_fills_by_block) under {root}")
    knobs = ["none"] + [k for d in damage for k in (validation.DAMAGE_KNOBS if d == "knobs" else [d])]
    for k in knobs:
        try:
            Damage.parse(k)
        except (ValueError, TypeError) as exc:
            raise fail(f"--damage {k}: {exc}") from None
    rows = []
    with progress.counted() as bar:
        task = bar.add_task("scenarios", total=len(scenarios) * len(knobs))
        for knob in knobs:
            for sc in scenarios:
                row = validation.run_independent(sc, knob)
                rows.append(row)
                bar.advance(task)
                if not row.get("skipped"):
                    console.print(
                        f"{sc.name} [{knob}]: {row['best_rule']} ({'ok' if row['rule_ok'] else 'WRONG'}), "
                        f"flagged {row['flagged']} ({row['false_flags']} false) of {row['planted']} planted",
                        highlight=False,
                    )
    command = f"liqf validate --independent {root}" + "".join(f" --damage {d}" for d in damage)
    command += f" --out {out_dir}" if out_dir != VALIDATE_OUT else ""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "independent.md").write_text(validation.independent_markdown(rows, command))
    pl.DataFrame([{k: v for k, v in r.items() if k != "damage_counts"} for r in rows]).write_csv(
        out_dir / "independent.csv"
    )
    out.print(f"wrote {out_dir / 'independent.md'} and {out_dir / 'independent.csv'}", highlight=False)
