"""`liqf audit hyperliquid`: from nothing to the audit report of a window in one command.

1. the position snapshot, when given (``--snapshot``: the clearinghouse export or a clearinghouseState JSONL,
   local or ``s3://``), is ingested first: the replay starts at the latest snapshot at or before ``--from``, so
   the fetch starts at that snapshot's hour;
2. Hyperliquid's public files of those hours (node fills, misc events, asset contexts; requester pays) are listed
   and priced, and what is not here yet is downloaded after a confirmation (``--yes`` skips it);
3. everything fetched is ingested (the lake keeps one copy per input, so a rerun changes nothing);
4. the audit (rule, exemption test) and the haircut accounting of the window run, then the report is written;
5. a summary says what ran, how long each step took and where every output is (also ``DIR/audit_summary.json``).

See docs/oct10.md for the 2025-10-10 cascade, step by step, and the published figures to compare with.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from pipelines.cli import progress
from pipelines.cli.context import console, fail, no_adl_message, out, refresh_catalog, settings, window
from pipelines.cli.options import EXPORT_ACCOUNT_VALUE, FDR, FROM_REQUIRED, PDF, TO_REQUIRED, example
from pipelines.cli.report import check_writable, write_report
from pipelines.cli.storage import (
    CREDENTIALS_NOTE,
    BucketCtxs,
    BucketFills,
    BucketMisc,
    EndpointUrl,
    RequesterPays,
    Yes,
    confirm_download,
    download,
    ingest_fetched,
    plan_fetch,
    show_plan,
)

app = typer.Typer(
    help="The whole audit of a venue's window in one command: fetch, ingest, analyze, haircuts, report.",
    no_args_is_help=True,
)

SOURCES = ["fills", "misc", "ctxs"]


@dataclass
class AuditRun:
    """What `liqf audit` did, written as ``audit_summary.json`` next to the report."""

    venue: str
    window: dict[str, str]
    command: str
    steps: list[dict[str, Any]] = field(default_factory=list)
    snapshot_ms: int | None = None
    fetched: dict[str, Any] = field(default_factory=dict)
    ingested: dict[str, int] = field(default_factory=dict)
    audit: dict[str, Any] = field(default_factory=dict)
    haircuts: dict[str, Any] | None = None
    outputs: dict[str, str | None] = field(default_factory=dict)

    def step(self, name: str, started: float, detail: str) -> None:
        seconds = time.perf_counter() - started
        self.steps.append({"step": name, "seconds": round(seconds, 1), "detail": detail})
        console.print(f"[green]✓[/] {name} ({seconds:.1f} s): {detail}", highlight=False)


@app.command(
    "hyperliquid",
    epilog=example(
        "liqf audit hyperliquid --from 2025-10-10T21:00 --to 2025-10-10T21:30 --snapshot export/ --out reports/oct10",
        "AWS_PROFILE=research liqf audit hyperliquid --from 2025-10-10T21:15 --to 2025-10-10T21:27 --out r --yes",
    )
    + "\n\n"
    + CREDENTIALS_NOTE
    + " Walk-through: docs/oct10.md.",
)
def audit_hyperliquid(
    since: FROM_REQUIRED,
    until: TO_REQUIRED,
    out_dir: Annotated[
        Path, typer.Option("--out", help="Directory for report.html, report.pdf and audit_summary.json.")
    ],
    snapshot: Annotated[
        list[str] | None,
        typer.Option(
            help="Position snapshot at or before --from: the clearinghouse export (directory or its files) or a "
            "clearinghouseState JSONL, local or s3://. Without one, positions are anchored on each account's first "
            "fill (startPosition) and accounts that did not trade are not in any pool."
        ),
    ] = None,
    yes: Yes = False,
    endpoint_url: EndpointUrl = None,
    requester_pays: RequesterPays = True,
    bucket_fills: BucketFills = None,
    bucket_misc: BucketMisc = None,
    bucket_ctxs: BucketCtxs = None,
    fdr: FDR = 0.05,
    gap_seconds: Annotated[float, typer.Option(help="Gap between ADL legs that starts a new wave, s.")] = 5.0,
    pdf: PDF = True,
    export_account_value: EXPORT_ACCOUNT_VALUE = "total",
) -> None:
    """Fetch what is missing of Hyperliquid's public files for the window, ingest them (and a snapshot), audit the
    ADL rule and exemptions, account the haircuts and write the report."""
    # heavy: loaded only when the command runs, so `liqf --help` starts fast
    from forensics.formats.records import ms_to_iso
    from pipelines.storage import StoreSettings

    since_ms, until_ms = window(since, until)
    assert since_ms is not None and until_ms is not None
    if until_ms <= since_ms:
        raise fail("--to must be after --from")
    if export_account_value not in ("total", "cross"):
        raise fail("--export-account-value must be 'total' or 'cross'")
    check_writable(out_dir)
    store = StoreSettings(endpoint=endpoint_url, requester_pays=requester_pays)
    run = AuditRun(
        "hyperliquid",
        {"from": ms_to_iso(since_ms) or since, "to": ms_to_iso(until_ms) or until},
        " ".join(["liqf", "audit", "hyperliquid", "--from", since, "--to", until, "--out", str(out_dir)]),
    )
    t_all = time.perf_counter()

    reports = []
    if snapshot:
        t0 = time.perf_counter()
        reports += _ingest_snapshot(snapshot, store, export_account_value)
        run.step("snapshot", t0, f"{len(reports)} input(s) ingested")
    run.snapshot_ms = _snapshot_at_or_before(since_ms)
    fetch_from = min(since_ms, run.snapshot_ms) if run.snapshot_ms is not None else since_ms
    if run.snapshot_ms is None:
        console.print(
            "note: no position snapshot at or before --from in the lake: positions are anchored on each account's "
            "first fill (startPosition); accounts that did not trade in the window are in no pool (see "
            "docs/oct10.md, 'The snapshot')",
            highlight=False,
        )
    elif run.snapshot_ms < since_ms:
        console.print(
            f"the replay starts at the snapshot ({ms_to_iso(run.snapshot_ms)}): fetching from its hour",
            highlight=False,
        )

    t0 = time.perf_counter()
    plan = plan_fetch(
        ms_to_iso(fetch_from) or since,
        until,
        SOURCES,
        store,
        {"fills": bucket_fills, "misc": bucket_misc, "ctxs": bucket_ctxs},
    )
    show_plan(plan)
    if not any(p.source == "fills" for p in plan.present):
        raise fail("no node fills in the bucket for that window", "check --from/--to (node fills start 2025-07-27T08)")
    confirm_download(plan, yes)
    fetched_bytes, fetched_n = plan.bytes_to_fetch(), len(plan.to_fetch)
    paths = download(plan, store)
    run.fetched = {
        "objects": len(plan.present),
        "downloaded": fetched_n,
        "bytes_downloaded": fetched_bytes,
        "missing_in_bucket": [p.url for p in plan.planned if p.info is None],
        "raw": str(plan.root),
    }
    run.step(
        "fetch",
        t0,
        f"{len(plan.present)} object(s), {fetched_n} downloaded ({fetched_bytes:,} bytes), "
        f"{len(plan.present) - fetched_n} here already",
    )

    t0 = time.perf_counter()
    reports += ingest_fetched(paths)
    catalog = refresh_catalog()
    assert catalog is not None
    read = sum(r.records_read for r in reports)
    written = sum(r.records_written for r in reports)
    quarantined = sum(r.quarantined for r in reports)
    run.ingested = {"inputs": len(reports), "read": read, "written": written, "quarantined": quarantined}
    run.step(
        "ingest",
        t0,
        f"{len(reports)} input(s): read {read:,} = written {written:,} + quarantined {quarantined:,}",
    )
    for r in reports:
        for line in r.notes:
            console.print(f"  note: {r.source_name}: {line}", highlight=False)

    t0 = time.perf_counter()
    done = _analyses(since_ms, until_ms, fdr, gap_seconds)
    body = done.audit.as_json()
    run.audit = {
        "adl_actions": done.adl_actions,
        "fills_replayed": body.get("fills"),
        "verdict": done.audit.verdict,
        "flagged": [f.user for f in done.audit.flagged],
        "fdr": fdr,
    }
    if done.haircuts is not None:
        run.haircuts = {"waves": len(done.haircuts["waves"]), **done.haircuts["totals"]}
    if not done.adl_actions:
        run.step("audit", t0, no_adl_message(body.get("fills"), "report"))
        _finish(run, out_dir, t_all, report_paths=None)
        return
    detail = f"{done.adl_actions:,} ADL actions; {done.audit.verdict}; {len(done.audit.flagged)} account(s) flagged"
    if done.haircuts is not None:
        tot = done.haircuts["totals"]
        detail += f"; {len(done.haircuts['waves'])} wave(s), overshoot ${tot['overshoot'] or 0:,.0f}"
    run.step("audit and haircuts", t0, detail)

    t0 = time.perf_counter()
    _, paths_out = write_report(
        "hyperliquid", since_ms, until_ms, fdr, gap_seconds, run.command, done.notes, out_dir, pdf, audit=done.audit
    )
    run.step("report", t0, str(paths_out.html) + (f", {paths_out.pdf}" if paths_out.pdf else ""))
    _finish(run, out_dir, t_all, report_paths=(paths_out.html, paths_out.pdf))


def _ingest_snapshot(values: list[str], store: Any, scope: str) -> list[Any]:
    """The snapshot first: its time decides the first hour to fetch."""
    # heavy: loaded only when the command runs, so `liqf --help` starts fast
    from pipelines.ingest import runner
    from pipelines.ingest.common import UserFacingError

    try:
        local = runner.resolve_inputs(settings.lake, {"snapshot": list(values)}, store, console)["snapshot"]
        return runner.run_file_ingest(
            settings.lake, node_fills=[], snapshot=local, asset_ctxs=None, export_scope=scope, console=console
        )
    except UserFacingError as exc:  # InputsRefused included: a snapshot cut short changes nothing
        raise fail(str(exc), exc.hint) from None


def _snapshot_at_or_before(since_ms: int) -> int | None:
    """The time of the lake's latest account snapshot at or before ``since_ms`` (where the replay starts)."""
    # heavy: loaded only when the command runs, so `liqf --help` starts fast
    from pipelines.lake import Window

    accounts = settings.lake.read("account_snapshots", "hyperliquid", Window(until_ms=since_ms))
    if accounts is None or accounts.height == 0:
        return None
    return int(accounts["time_ms"].max())  # type: ignore[arg-type]


def _analyses(since_ms: int, until_ms: int, fdr: float, gap_seconds: float) -> Any:
    # heavy: loaded only when the command runs, so `liqf --help` starts fast
    from pipelines.analysis import pipeline

    with progress.steps("ADL actions") as bar:
        task = bar.add_task("audit", total=None)
        try:
            return pipeline.analyses(
                settings.lake,
                venue="hyperliquid",
                since_ms=since_ms,
                until_ms=until_ms,
                q=fdr,
                gap_seconds=gap_seconds,
                progress=lambda n, total: bar.update(task, completed=n, total=total),
            )
        except FileNotFoundError as exc:  # the audit's NoFills: nothing of the window was ingested
            raise fail(str(exc), "check --from/--to: the window's node fills were not ingested") from None


def _finish(run: AuditRun, out_dir: Path, t_all: float, report_paths: tuple[Path, Path | None] | None) -> None:
    run.outputs = {
        "report_html": str(report_paths[0]) if report_paths else None,
        "report_pdf": str(report_paths[1]) if report_paths and report_paths[1] else None,
        "summary": str(out_dir / "audit_summary.json"),
        "lake": settings.lake.location,
        "catalog": str(settings.db),
        "raw_files": run.fetched.get("raw"),
    }
    (out_dir / "audit_summary.json").write_text(json.dumps(asdict(run), indent=1, default=str))
    seconds = time.perf_counter() - t_all
    out.print(
        f"audit of hyperliquid {run.window['from']} to {run.window['to']} done in {seconds:.1f} s", highlight=False
    )
    for s in run.steps:
        out.print(f"  {s['step']:<18} {s['seconds']:>7.1f} s  {s['detail']}", highlight=False)
    if report_paths:
        out.print(
            f"report:  {report_paths[0]}" + (f"\n         {report_paths[1]}" if report_paths[1] else ""),
            highlight=False,
        )
    else:
        out.print(no_adl_message(run.audit.get("fills_replayed"), "report"), highlight=False)
    out.print(f"summary: {run.outputs['summary']}", highlight=False)
    out.print(f"lake:    {run.outputs['lake']} (raw files: {run.outputs['raw_files']})", highlight=False)
    out.print(f"catalog: {run.outputs['catalog']}", highlight=False)
    out.print(
        "next:    liqf sql --query top_adl_accounts --param venue=hyperliquid; "
        'liqf sql "select user, evidence_json from exemption_flags where flagged"',
        highlight=False,
    )
