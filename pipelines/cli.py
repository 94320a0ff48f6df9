"""`liqf`: the command line of liquidation-forensics."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table as RichTable

from pipelines import catalog as catalog_mod
from pipelines.lake import Lake

class _App(typer.Typer):
    """Object-storage failures anywhere become the usual one-line error with exit code 2."""

    def __call__(self, *args, **kwargs):
        from pipelines.storage import StorageError
        from pipelines.storage.location import UrlError

        try:
            return super().__call__(*args, **kwargs)
        except (StorageError, UrlError) as exc:
            console.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False)
            sys.exit(2)


app = _App(
    help="Liquidation and auto-deleveraging forensics for perpetual-futures venues.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
ingest_app = typer.Typer(help="Bring venue data into the lake.", no_args_is_help=True)
catalog_app = typer.Typer(help="The DuckDB catalog of views over the lake.", no_args_is_help=True)
app.add_typer(ingest_app, name="ingest")
app.add_typer(catalog_app, name="catalog")

console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)


class Settings:
    lake: Lake
    db: Path


settings = Settings()
# httpx logs full request URLs at INFO; signed CEX requests carry signatures in the query string
logging.getLogger("httpx").setLevel(logging.WARNING)


def fail(message: str, hint: str = "") -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}", markup=True, highlight=False)
    if hint:
        console.print(f"  {hint}", highlight=False)
    return typer.Exit(2)


#: commands that write the lake: each starts by removing what a killed run left (``Lake.sweep_temporaries``)
LAKE_WRITERS = frozenset({"ingest", "analyze", "haircuts", "backfill", "fetch", "capture"})


@app.callback()
def main(
    ctx: typer.Context,
    lake: Annotated[str, typer.Option("--lake", help="Lake root: a directory or s3://bucket/prefix.",
                                      envvar="LIQF_LAKE")] = "data/lake",
    lake_endpoint: Annotated[Optional[str], typer.Option(
        "--lake-endpoint", help="S3-compatible endpoint of an s3:// lake (default: AWS_ENDPOINT_URL, else AWS).",
        envvar="LIQF_LAKE_ENDPOINT")] = None,
    db: Annotated[Path, typer.Option("--db", help="DuckDB catalog file.", envvar="LIQF_DB")] = Path(
        "data/forensics.duckdb"
    ),
) -> None:
    settings.lake = Lake.open(lake, endpoint=lake_endpoint)
    settings.db = db.resolve()
    if ctx.invoked_subcommand in LAKE_WRITERS:
        swept = settings.lake.sweep_temporaries()
        if swept.files or swept.dirs:
            console.print(f"repaired the lake: removed {swept.files} temporary file(s) and {swept.dirs} staging "
                          f"director(ies), {swept.bytes / 1e6:.1f} MB, left by an interrupted run", highlight=False)


# --- ingest ------------------------------------------------------------------------------------------


@ingest_app.command("hyperliquid")
def ingest_hyperliquid(
    node_fills: Annotated[
        Optional[list[str]],
        typer.Option("--node-fills", help="node_fills_by_block, legacy node_fills or node_trades files or directories "
                     "(.lz4 or JSON lines; format read from the content), or s3:// URLs."),
    ] = None,
    misc_events: Annotated[
        Optional[list[str]],
        typer.Option("--misc-events", help="misc_events_by_block files or directories (funding, ledger, liquidations), "
                     "or s3:// URLs."),
    ] = None,
    snapshot: Annotated[Optional[list[str]], typer.Option(
        help="clearinghouseState JSONL file, or the snapshot export (directory or files: account_value_snapshot_, "
             "perp_positions_by_market_, spot_balances_), or s3:// URLs.")] = None,
    asset_ctxs: Annotated[Optional[str], typer.Option(
        "--asset-ctxs", help="metaAndAssetCtxs JSONL, or the archive asset_ctxs CSV (.csv or .csv.lz4), or an s3:// URL.")] = None,
    export_account_value: Annotated[str, typer.Option(
        "--export-account-value", help="Snapshot export: account_value covers 'total' (cross + isolated) or 'cross' only "
                                       "(UNCONFIRMED; docs/snapshot_export.md).")] = "total",
    endpoint_url: Annotated[Optional[str], typer.Option(
        "--endpoint-url", help="S3-compatible endpoint for s3:// inputs (default: AWS_ENDPOINT_URL, else AWS).")] = None,
    requester_pays: Annotated[bool, typer.Option(
        "--requester-pays/--no-requester-pays", help="Send x-amz-request-payer: requester for s3:// inputs.")] = True,
    api: Annotated[bool, typer.Option("--api", help="Pull from the info API instead of files.")] = False,
    users: Annotated[Optional[Path], typer.Option(help="--api: file with one address per line.")] = None,
    since: Annotated[Optional[str], typer.Option(help="--api: window start, ISO-8601 UTC.")] = None,
    until: Annotated[Optional[str], typer.Option(help="--api: window end, ISO-8601 UTC.")] = None,
    base_url: Annotated[Optional[str], typer.Option("--base-url", help="--api: info API base URL.")] = None,
    partial: Annotated[bool, typer.Option(
        "--partial", help="Ingest a truncated file's complete lines anyway (the cut line is quarantined); without "
                          "it a truncated file is an error and the lake keeps what it had.")] = False,
) -> None:
    """Ingest Hyperliquid node files (fills, snapshot, asset contexts) or pull tracked users from the API."""
    from pipelines.ingest import runner
    from pipelines.ingest.safety import IncompleteInput

    try:
        if api:
            if users is None or since is None or until is None:
                raise fail("--api needs --users FILE, --since ISO and --until ISO")
            reports = runner.run_api_ingest(
                settings.lake, users_file=users, since=since, until=until, base_url=base_url, console=console
            )
        else:
            if not (node_fills or misc_events or snapshot or asset_ctxs):
                raise fail(
                    "nothing to ingest",
                    "give --node-fills PATH (and optionally --misc-events PATH, --snapshot PATH, --asset-ctxs FILE), or --api",
                )
            from pipelines.storage import StoreSettings

            if export_account_value not in ("total", "cross"):
                raise fail("--export-account-value must be 'total' or 'cross'")
            inputs = runner.resolve_inputs(
                settings.lake, {"node_fills": node_fills or [], "misc_events": misc_events or [],
                                "snapshot": snapshot or [], "asset_ctxs": [asset_ctxs] if asset_ctxs else []},
                StoreSettings(endpoint=endpoint_url, requester_pays=requester_pays), console,
            )
            reports = runner.run_file_ingest(
                settings.lake, node_fills=inputs["node_fills"], snapshot=inputs["snapshot"],
                asset_ctxs=inputs["asset_ctxs"][0] if inputs["asset_ctxs"] else None,
                misc_events=inputs["misc_events"], export_scope=export_account_value, console=console,
                allow_partial=partial,
            )
    except IncompleteInput as exc:  # an API pull that did not complete: nothing written
        raise fail(str(exc), exc.hint) from None
    except runner.InputsRefused as exc:
        # the inputs that were complete are in the lake; the refused ones changed nothing
        if exc.reports:
            runner.print_summary(console, settings.lake, exc.reports, catalog_mod.refresh(settings.lake, settings.db))
        raise fail(str(exc), exc.hint) from None
    except runner.UserFacingError as exc:
        raise fail(str(exc), exc.hint) from None
    result = catalog_mod.refresh(settings.lake, settings.db)
    runner.print_summary(console, settings.lake, reports, result)


# --- catalog and SQL ----------------------------------------------------------------------------------


@catalog_app.command("refresh")
def catalog_refresh() -> None:
    """Recreate the DuckDB views over the lake and print row counts."""
    result = catalog_mod.refresh(settings.lake, settings.db)
    table = RichTable("view", "rows", title=f"catalog {result.db_path}")
    for view, n in result.views.items():
        table.add_row(view, f"{n:,}")
    out.print(table)
    for sentence in result.stale:
        out.print(f"[yellow]analytics:[/] {sentence}", highlight=False)


@app.command("sql")
def sql(
    query: Annotated[Optional[str], typer.Argument(help="SQL to run against the catalog (read-only).")] = None,
    named: Annotated[Optional[str], typer.Option("--query", help="Run a named query from sql/queries/.")] = None,
    params: Annotated[Optional[list[str]], typer.Option("--param", help="key=value for a named query (repeat).")] = None,
    list_: Annotated[bool, typer.Option("--list", help="List the named queries.")] = False,
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    limit: Annotated[int, typer.Option(help="Rows to show in table format.")] = 50,
) -> None:
    """Run read-only SQL, or a named, documented query with bound parameters."""
    from pipelines import sql_library

    if list_:
        table = RichTable("query", "answers", "grain", "parameters")
        for q in sql_library.list_queries():
            table.add_row(q.name, q.description, q.grain, ", ".join(q.params))
        out.print(table)
        return
    bound: dict = {}
    if named:
        try:
            nq = sql_library.get(named)
            given = {}
            for item in params or []:
                if "=" not in item:
                    raise sql_library.QueryError(f"--param {item!r} is not key=value")
                k, v = item.split("=", 1)
                given[k] = v
            bound = sql_library.bind(nq, given)
        except sql_library.QueryError as exc:
            raise fail(str(exc), "see `liqf sql --list`") from None
        query = nq.sql
    if not query:
        raise fail("no query given", 'example: liqf sql "select coin, count(*) from fills group by 1"  (or --query NAME)')
    if fmt not in ("table", "csv", "json"):
        raise fail(f"unknown --format {fmt!r}", "use table, csv or json")
    try:
        # a named query's file parameters (its CSV inputs) are the only files outside the lake it may read
        readable = [v for v in bound.values() if isinstance(v, str) and Path(v).is_file()]
        con = catalog_mod.connect_read_only(settings.db, readable)
    except FileNotFoundError as exc:
        raise fail(str(exc)) from None
    import duckdb

    try:
        catalog_mod.check_read_only(con, query)
    except catalog_mod.ReadOnlyQuery as exc:
        con.close()
        raise fail(str(exc), "write results with --format csv > FILE instead") from None
    try:
        rel = con.execute(query, bound) if bound else con.sql(query)
        columns = [d[0] for d in rel.description] if rel is not None and rel.description else []
        rows = rel.fetchall() if columns else []
    except duckdb.Error as exc:
        hint = ("liqf sql reads the lake only: files outside it, the network, extensions and settings are locked"
                if isinstance(exc, duckdb.PermissionException) or "configuration has been locked" in str(exc)
                else "check table names with `liqf sql \"show tables\"`")
        raise fail(f"query failed: {exc}".splitlines()[0], hint) from None
    finally:
        con.close()
    _print_rows(columns, rows, fmt, limit)


def _print_rows(columns: list[str], rows: list[tuple], fmt: str, limit: int) -> None:
    if fmt == "csv":
        import csv

        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows(rows)
    elif fmt == "json":
        print(json.dumps([dict(zip(columns, r)) for r in rows], default=str, indent=1))
    else:
        table = RichTable(*columns)
        for r in rows[:limit]:
            table.add_row(*("" if v is None else str(v) for v in r))
        out.print(table)
        if len(rows) > limit:
            out.print(f"... {len(rows) - limit:,} more rows (use --limit or --format csv)")


@app.command("schema")
def schema(table: Annotated[Optional[str], typer.Argument(help="One table; all when omitted.")] = None) -> None:
    """Print the canonical tables with column meanings and units."""
    from forensics import schema as schema_mod

    if table and table not in schema_mod.ALL_TABLES:
        raise fail(f"unknown table {table!r}", f"tables: {', '.join(schema_mod.ALL_TABLES)}")
    out.print(schema_mod.describe(table), markup=False, highlight=False)


# --- analysis ---------------------------------------------------------------------------------------------


def _window(since: str | None, until: str | None) -> tuple[int | None, int | None]:
    from pipelines.ingest.hyperliquid_api import PullError, parse_time

    try:
        return (parse_time(since, "--from") if since else None, parse_time(until, "--to") if until else None)
    except PullError as exc:
        raise fail(str(exc)) from None


@app.command("analyze")
def analyze(
    venue: Annotated[str, typer.Option(help="Venue id.")] = "hyperliquid",
    since: Annotated[Optional[str], typer.Option("--from", help="Window start, ISO-8601 UTC.")] = None,
    until: Annotated[Optional[str], typer.Option("--to", help="Window end, ISO-8601 UTC.")] = None,
    q: Annotated[float, typer.Option(help="False discovery rate for exemption flags.")] = 0.05,
    diagnostic_steps: Annotated[int, typer.Option(
        help="ADL actions sampled for the fill-order diagnostics (Plackett-Luce, Kendall, NDCG); 0 = all.")] = 60,
    logit: Annotated[str, typer.Option(help="Conditional logit on log features: auto (when no documented rule "
                                       "fits), always or never.")] = "auto",
    logit_rows: Annotated[int, typer.Option(help="Candidate rows for the conditional logit.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed of the diagnostic samples.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")] = False,
) -> None:
    """Identify the ADL selection rule and flag accounts that look exempt (reconstructs pools if needed)."""
    from pipelines.analysis import inference

    since_ms, until_ms = _window(since, until)
    if logit not in ("auto", "always", "never"):
        raise fail(f"--logit must be auto, always or never, not {logit!r}")
    settings.lake.pull()  # an s3:// lake: its committed parts into the working copy
    try:
        with console.status("reconstructing, identifying the rule, testing exemptions"):
            result = inference.run(settings.lake, venue=venue, since_ms=since_ms, until_ms=until_ms, q=q, seed=seed,
                                   diagnostic_steps=diagnostic_steps or None, logit=logit, logit_rows=logit_rows)
    except inference.MissingPools as exc:
        raise fail(str(exc), "ingest node fills and a position snapshot first (see `liqf ingest hyperliquid --help`)") from None
    catalog_mod.refresh(settings.lake, settings.db)
    for sentence in result["rebuilt_stale"]:
        console.print(f"[yellow]rebuilt the ADL pools first:[/] {sentence}", highlight=False)
    if as_json:
        keys = ("best_rule", "verdict", "margin", "rules", "flagged", "exemption", "steps", "actions_with_decision",
                "incomplete_steps", "integrity", "diagnostics", "conditional_logit", "rule_changes", "pools")
        print(json.dumps({k: result[k] for k in keys}, default=str, indent=1))
        return
    table = RichTable("rule", "kind", "cost", "exempt", "residual", "shape", "residual rate", "fits", "AUC",
                      "Kendall τ", "AIC", title=f"{result['steps']:,} ADL actions, {result['pools']:,} pool rows")
    fmt = lambda v, p=3: "" if v is None else f"{v:.{p}f}"  # noqa: E731
    for r in sorted(result["rules"], key=lambda r: r["cost"]):
        table.add_row(r["name"], r["kind"], f"{r['cost']:,}", str(r["exemptions_needed"]), f"{r['residual_skips']:,}",
                      f"{r['shape_violations']:,}", fmt(r["residual_rate"], 4), "yes" if r["fits"] else "no",
                      fmt(r["auc"]), fmt(r["kendall_tau"]), fmt(r["aic"], 1))
    out.print(table)
    out.print(f"identified rule: {result['verdict']}", highlight=False)
    logit = result["conditional_logit"]
    if logit.get("closest_rule"):
        out.print(f"conditional logit direction {[round(x, 3) for x in logit['direction']]} on {logit['features']}: "
                  f"closest documented rule {logit['closest_rule']}", highlight=False)
    if result["rule_changes"].get("changed"):
        out.print("[yellow]another rule explains some time windows better[/] (see --json rule_changes)")
    if result["exemption"]["note"]:
        out.print(result["exemption"]["note"], highlight=False)
    else:
        out.print(f"{len(result['flagged'])} account(s) flagged at q <= {q}, calibrated skip rate "
                  f"{result['exemption']['skip_rate']:.5f} (statistical anomalies, not accusations):", highlight=False)
        for f in result["flagged"][:20]:
            out.print(f"  {f['user']}  above the cut in {f['opportunities']} action(s), passed over in {f['skips']} "
                      f"(expected {f['expected_skips']:.2f}), p {f['p_value']:.2e}, q {f['q_value']:.2e}", highlight=False)
    out.print(f"tables: adl_rule_fits, exemption_flags in {settings.db} (evidence: "
              "liqf sql \"select user, evidence_json from exemption_flags where flagged\")", highlight=False)


@app.command("validate")
def validate(
    scale: Annotated[str, typer.Option(help="Simulator scale of every scenario.")] = "tiny",
    seeds: Annotated[int, typer.Option(help="Seeds per cell.")] = 3,
    policies: Annotated[Optional[list[str]], typer.Option("--policy", help="Policies (default: all).")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Where validation.md and validation.csv go.")] = Path("docs"),
    independent: Annotated[Optional[Path], typer.Option(
        help="Instead: score every scenario of another generator under this folder (each with truth.json); "
             "writes independent.md/.csv.")] = None,
    damage: Annotated[Optional[list[str]], typer.Option(
        help="With --independent: damaged copies to score too, e.g. drop_fill_legs=0.01 (repeatable; "
             "'knobs' = each standard knob).")] = None,
) -> None:
    """Sweep simulator scenarios (policy x exemptions x noise x seeds) end to end and score the audit."""
    from forensics import simulate
    from pipelines.analysis import validation

    if independent is not None:
        _validate_independent(independent, damage or [], out_dir)
        return

    chosen = policies or list(simulate.POLICIES)
    unknown = [p for p in chosen if p not in simulate.POLICIES]
    if unknown:
        raise fail(f"unknown policy {unknown[0]!r}", f"policies: {', '.join(simulate.POLICIES)}")
    total = len(chosen) * 3 * 2 * seeds
    from rich.progress import Progress

    with Progress(console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task("scenarios", total=total)
        df = validation.sweep(chosen, (0, 5, 20), tuple(validation.NOISE), range(1, seeds + 1), scale=scale,
                              progress=lambda row: bar.advance(task))
    out_dir.mkdir(parents=True, exist_ok=True)
    command = f"liqf validate --scale {scale} --seeds {seeds}" + "".join(f" --policy {p}" for p in policies or [])
    (out_dir / "validation.md").write_text(validation.markdown(df, command))
    df.write_csv(out_dir / "validation.csv")
    out.print(validation.summarize(df))
    out.print(f"wrote {out_dir / 'validation.md'} and {out_dir / 'validation.csv'}", highlight=False)


def _validate_independent(root: Path, damage: list[str], out_dir: Path) -> None:
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
    from rich.progress import Progress

    with Progress(console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task("scenarios", total=len(scenarios) * len(knobs))
        for knob in knobs:
            for sc in scenarios:
                row = validation.run_independent(sc, knob)
                rows.append(row)
                bar.advance(task)
                if not row.get("skipped"):
                    console.print(f"{sc.name} [{knob}]: {row['best_rule']} ({'ok' if row['rule_ok'] else 'WRONG'}), "
                                  f"flagged {row['flagged']} ({row['false_flags']} false) of {row['planted']} planted",
                                  highlight=False)
    command = f"liqf validate --independent {root}" + "".join(f" --damage {d}" for d in damage)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "independent.md").write_text(validation.independent_markdown(rows, command))
    import polars as pl

    pl.DataFrame([{k: v for k, v in r.items() if k != "damage_counts"} for r in rows]).write_csv(out_dir / "independent.csv")
    out.print(f"wrote {out_dir / 'independent.md'} and {out_dir / 'independent.csv'}", highlight=False)


@app.command("report")
def report(
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for report.html and report.pdf.")],
    venue: Annotated[str, typer.Option(help="Venue id.")] = "hyperliquid",
    since: Annotated[Optional[str], typer.Option("--from", help="Window start, ISO-8601 UTC.")] = None,
    until: Annotated[Optional[str], typer.Option("--to", help="Window end, ISO-8601 UTC.")] = None,
    q: Annotated[float, typer.Option(help="False discovery rate for exemption flags.")] = 0.05,
    gap_seconds: Annotated[float, typer.Option(help="Wave gap for haircut accounting.")] = 5.0,
    pdf: Annotated[bool, typer.Option("--pdf/--no-pdf", help="Also render report.pdf.")] = True,
) -> None:
    """Write the self-contained audit report (HTML and PDF) for a venue and window."""
    from pipelines import report as report_mod

    since_ms, until_ms = _window(since, until)
    settings.lake.pull()
    command = " ".join(["liqf", "report", "--venue", venue, "--out", str(out_dir)]
                       + (["--from", since] if since else []) + (["--to", until] if until else []))
    try:
        with console.status("gathering evidence and rendering the report"):
            context = report_mod.gather(settings.lake, settings.db, venue=venue, since_ms=since_ms, until_ms=until_ms,
                                        q=q, gap_seconds=gap_seconds, command=command)
            paths = report_mod.write(context, out_dir, pdf=pdf)
    except FileNotFoundError as exc:
        raise fail(str(exc), "ingest data first (see `liqf ingest hyperliquid --help`)") from None
    for note in context["meta"]["notes"]:
        console.print(f"note: {note}", highlight=False)
    s = context["summary"]
    console.print(f"[green]✓[/] {s['adl_legs']:,} ADL legs, {s['steps']} steps; rule: {s['verdict']}; "
                  f"{s['flagged']} account(s) flagged", highlight=False)
    out.print(str(paths.html))
    if paths.pdf:
        out.print(str(paths.pdf))


# --- simulator, local venue server, demo ----------------------------------------------------------------


@app.command("simulate")
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
    formats: Annotated[str, typer.Option(help="'node' (JSONL snapshot and contexts) or 'real' (funding and ledger "
                                              "events in misc_events_by_block, the clearinghouse export, the "
                                              "archive's per-minute asset_ctxs CSV).")] = "node",
) -> None:
    """Simulate a liquidation cascade with a known ADL rule and planted exemptions."""
    from forensics import simulate

    noise = {"stale_snapshot": stale_snapshot, "drop_fills": drop_fills, "mark_jitter": mark_jitter,
             "clock_skew_ms": clock_skew_ms}
    try:
        with console.status(f"simulating {preset}/{scale} with policy {policy}"):
            scenario = simulate.generate(out, preset=preset, scale=scale, policy=policy, exempt=exempt, seed=seed,
                                         noise=noise, formats=formats)
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
    console.print(f"next: liqf serve --scenario {out}   or   liqf ingest hyperliquid --node-fills {out}/node_fills_by_block",
                  highlight=False)


@app.command("serve")
def serve_cmd(
    scenario: Annotated[Path, typer.Option("--scenario", help="Scenario directory in Hyperliquid's formats.")],
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8765,
    faults: Annotated[Optional[str], typer.Option(help="Fault spec, e.g. '429=0.1,5xx=0.05,truncate=0.05,seed=3'.")] = None,
) -> None:
    """Serve a scenario through Hyperliquid's info API on 127.0.0.1 (Ctrl-C to stop)."""
    from pipelines.venue_server import run_server

    if not (scenario / "node_fills_by_block").exists() and not (scenario / "snapshots").exists():
        raise fail(f"{scenario} is not a scenario directory", "create one with: liqf simulate --out DIR")
    console.print(f"serving {scenario} on http://127.0.0.1:{port}/info", highlight=False)
    run_server(scenario, port=port, faults=faults)


@app.command("demo")
def demo_cmd(
    out_dir: Annotated[Path, typer.Option("--out", help="Where the demo scenario and summary go.")] = Path("data/demo"),
    scale: Annotated[str, typer.Option(help="Simulator scale.")] = "small",
    policy: Annotated[str, typer.Option(help="Planted ADL policy.")] = "hl_index",
    exempt: Annotated[int, typer.Option(help="Planted exempt accounts.")] = 5,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
) -> None:
    """Run the whole pipeline on an embedded, simulated cascade served on loopback."""
    from pipelines import demo

    cfg = demo.DemoConfig(out_dir.resolve(), settings.lake, settings.db, scale, policy, exempt, seed)
    try:
        summary = demo.run(cfg, console)
    except (RuntimeError, ValueError) as exc:
        raise fail(str(exc)) from None
    rows = summary["catalog_rows"]
    empty = [v for v, n in rows.items() if not n]
    table = RichTable("view", "rows", title="catalog after the demo",
                      caption=f"{len(empty)} other views are empty in this scenario" if empty else None)
    for view, n in rows.items():
        if n:
            table.add_row(view, f"{n:,}")
    _demo_print(table, summary)


def _demo_print(table: RichTable, summary: dict) -> None:
    out.print(table)
    inferred, cmp = summary["inferred"], summary["comparison"]
    out.print(f"inferred rule: {inferred['verdict']}", highlight=False)
    out.print(f"planted rule:  {summary['planted']['policy']} -> {'recovered' if cmp['rule_recovered'] else 'NOT recovered'}",
              highlight=False)
    out.print(f"exemptions: {len(summary['planted']['exempt'])} planted, {len(inferred['flagged'])} flagged "
              f"({len(cmp['true_flags'])} true, {len(cmp['false_flags'])} false, {len(cmp['missed'])} missed); "
              f"truth in {summary['truth']}", highlight=False)
    if summary["failed_checks"]:
        out.print(f"[yellow]data-quality checks that failed:[/] {', '.join(summary['failed_checks'])}")
    else:
        out.print("data-quality checks: all passed")
    out.print(f"audit report: {summary['report']['html']}\n              {summary['report']['pdf']}", highlight=False)
    out.print(f"lake: {summary['lake']}\ncatalog: {summary['catalog']}  (try: liqf sql \"select count(*) from adl_fills\")",
              highlight=False)
    if summary["dagster_home"]:
        out.print(f"dagster runs: {summary['dagster_home']}  (browse: DAGSTER_HOME={summary['dagster_home']} .venv/bin/dg dev)",
                  highlight=False)
    out.print(f"done in {summary['seconds']} s; summary: {Path(summary['scenario']).parent / 'demo_summary.json'}",
              highlight=False)


def _register_areas() -> None:
    from pipelines import cli_accounting, cli_cex, cli_onchain, cli_storage, cli_stress

    for module in (cli_cex, cli_onchain, cli_accounting, cli_stress, cli_storage):
        module.register(app, ingest_app)


_register_areas()

if __name__ == "__main__":  # pragma: no cover
    app()
