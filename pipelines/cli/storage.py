"""`liqf fetch hyperliquid` (Hyperliquid's public S3 files into the raw layer), `liqf backfill hyperliquid`
(hourly partitions as one Dagster run on an executor) and `liqf worker` (a Celery worker for it)."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from pipelines.cli import progress
from pipelines.cli.context import console, fail, refresh_catalog, settings
from pipelines.ingest import runner
from pipelines.ingest.hyperliquid import fetch
from pipelines.storage import StorageError, StoreSettings

#: `liqf worker` (a command at the root)
commands = typer.Typer()


fetch_app = typer.Typer(
    help="Download public venue files from object storage into the raw layer.", no_args_is_help=True
)


@fetch_app.command("hyperliquid")
def fetch_hyperliquid(
    since: Annotated[str, typer.Option("--from", help="First hour, UTC (2025-10-10T20).")],
    until: Annotated[str, typer.Option("--to", help="Last hour, UTC (inclusive; the next hour's file is added).")],
    sources: Annotated[str, typer.Option(help="Comma-separated: fills, misc, ctxs.")] = "fills",
    yes: Annotated[bool, typer.Option("--yes", help="Download without asking.")] = False,
    ingest: Annotated[bool, typer.Option("--ingest", help="Ingest the downloaded node fills afterwards.")] = False,
    endpoint_url: Annotated[
        str | None, typer.Option("--endpoint-url", help="S3-compatible endpoint (default: AWS_ENDPOINT_URL, else AWS).")
    ] = None,
    requester_pays: Annotated[
        bool,
        typer.Option(
            "--requester-pays/--no-requester-pays", help="Send x-amz-request-payer: requester (the buckets need it)."
        ),
    ] = True,
    bucket_fills: Annotated[
        str | None, typer.Option(help="Bucket of node fills (default hl-mainnet-node-data).")
    ] = None,
    bucket_misc: Annotated[
        str | None, typer.Option(help="Bucket of misc events (default hl-mainnet-node-data).")
    ] = None,
    bucket_ctxs: Annotated[
        str | None, typer.Option(help="Bucket of asset contexts (default hyperliquid-archive).")
    ] = None,
) -> None:
    """List, price (requester pays), confirm and download Hyperliquid node files; resumable and verified."""
    store = StoreSettings(endpoint=endpoint_url, requester_pays=requester_pays)
    try:
        start, end = fetch.parse_hour(since, "--from"), fetch.parse_hour(until, "--to")
        planned = fetch.plan(
            start,
            end,
            [s.strip() for s in sources.split(",") if s.strip()],
            store,
            {"fills": bucket_fills, "misc": bucket_misc, "ctxs": bucket_ctxs},
        )
    except fetch.FetchError as exc:
        raise fail(str(exc)) from None
    console.print("[bold]to download[/]")
    for p in planned:
        size = f"{p.info.size:>15,} bytes" if p.info else "        missing"
        console.print(f"  {p.source:<5} {size}  {p.url}", highlight=False)
    present = [p for p in planned if p.info]
    total = sum(p.info.size for p in present if p.info)
    missing = len(planned) - len(present)
    console.print(
        f"{len(present)} object(s), {total:,} bytes ({total / 2**30:.2f} GiB); requester-pays estimate "
        f"${fetch.estimate_usd(planned):.4f} at ${fetch.EGRESS_PER_GB}/GB egress + ${fetch.REQUESTS_PER_1000}/1,000 "
        f"requests" + (f"; {missing} missing" if missing else ""),
        highlight=False,
    )
    if not present:
        raise fail("nothing to download in that window", "check --from/--to (node fills start 2025-07-27T08)")
    if not yes:
        if not sys.stdin.isatty():
            raise fail("not downloading without confirmation", "pass --yes to download non-interactively")
        if not typer.confirm("download?"):
            raise typer.Exit(1)
    root = settings.lake.root / "raw" / "venue=hyperliquid" / "source=s3"
    bar, listener = runner.rich_listener(console)  # bytes, rate and time left per file and overall
    with bar:
        try:
            paths = fetch.download(planned, root, store, listener)
        except StorageError as exc:
            raise fail(f"{exc}", "run the same command again: finished files are kept, partial ones resume") from None
    console.print(
        f"[green]✓[/] {len(paths)} file(s), {total:,} bytes verified (size, MD5 ETags) in {root}", highlight=False
    )
    if ingest:
        fills = [p for p, q in zip(paths, present) if q.source == "fills"]
        reports = runner.run_file_ingest(
            settings.lake, node_fills=fills, snapshot=None, asset_ctxs=None, console=console
        )
        result = refresh_catalog()
        assert result is not None
        runner.print_summary(console, settings.lake, reports, result)
    else:
        console.print(f"next: liqf ingest hyperliquid --node-fills {root}/bucket={present[0].bucket}", highlight=False)


backfill_app = typer.Typer(
    help="Backfill partitions as Dagster runs on a (distributed) executor.", no_args_is_help=True
)


@backfill_app.command("hyperliquid")
def backfill_hyperliquid(
    since: Annotated[str, typer.Option("--from", help="First hour partition, UTC (2025-10-10T20).")],
    until: Annotated[str, typer.Option("--to", help="Last hour partition, UTC (inclusive).")],
    executor: Annotated[str, typer.Option(help="in_process, multiprocess or celery.")] = "in_process",
    node_data: Annotated[
        str | None,
        typer.Option("--node-data", help="Node-data root: a directory or s3://bucket/prefix (default LIQF_NODE_DATA)."),
    ] = None,
    node_data_endpoint: Annotated[
        str | None, typer.Option("--node-data-endpoint", help="S3-compatible endpoint of an s3:// node-data root.")
    ] = None,
    requester_pays: Annotated[
        bool, typer.Option("--requester-pays/--no-requester-pays", help="Send x-amz-request-payer for s3:// node data.")
    ] = True,
    broker: Annotated[
        str | None, typer.Option(help="Celery broker URL (default LIQF_CELERY_BROKER, else redis://127.0.0.1:6379/0).")
    ] = None,
    max_concurrent: Annotated[int, typer.Option(help="multiprocess: steps at once.")] = 2,
) -> None:
    """Backfill hourly node-fill partitions (each its own Dagster step), then refresh the catalog once."""
    # heavy (Dagster and the code location): imported when the command runs, so `liqf --help` starts fast
    import dagster as dg

    from pipelines.defs.hyperliquid.resources import HyperliquidNodeDataResource
    from pipelines.defs.lake.resources import LakeResource
    from pipelines.distributed import backfill, executors

    if executor not in executors.EXECUTORS:
        raise fail(f"unknown --executor {executor!r}", f"executors: {', '.join(executors.EXECUTORS)}")
    try:
        keys = backfill.hour_keys(fetch.parse_hour(since, "--from"), fetch.parse_hour(until, "--to"))
    except fetch.FetchError as exc:
        raise fail(str(exc)) from None
    if not keys:
        raise fail("--to is before --from")
    lake = settings.lake
    if lake.remote is not None:
        lake.remote.check()
    if broker:
        os.environ["LIQF_CELERY_BROKER"] = broker
    if executor == "celery":
        try:
            executors.check_broker(executors.broker_url())
        except executors.BrokerDown as exc:
            raise fail(str(exc)) from None
    home = os.environ.get("DAGSTER_HOME")
    if executor != "in_process" and not home:
        raise fail(
            f"--executor {executor} needs a persistent Dagster instance",
            "set DAGSTER_HOME to an absolute directory (the Makefile exports dagster_home/)",
        )
    os.environ["LIQF_MULTIPROCESS_MAX"] = str(max_concurrent)
    instance = dg.DagsterInstance.get() if home else dg.DagsterInstance.ephemeral()
    lake_res = LakeResource(
        lake_root=lake.location,
        lake_endpoint=lake.remote.settings.endpoint if lake.remote else None,
        db_path=str(settings.db),
    )
    node_res = HyperliquidNodeDataResource(
        root=node_data or HyperliquidNodeDataResource().root, endpoint=node_data_endpoint, requester_pays=requester_pays
    )
    with progress.steps("hours") as bar:
        task = bar.add_task("hours", total=len(keys))
        summary = backfill.run_backfill(
            instance,
            keys,
            executor_name=executor,
            lake=lake_res,
            node_data=node_res,
            progress=lambda done, total: bar.update(task, completed=done),
        )
    if not summary.catalog.get("refreshed"):
        refresh_catalog()  # the run's own refresh did not run (a partition failed)
    console.print(
        f"{'[green]✓[/]' if not summary.failed else '[red]✗[/]'} backfill {summary.run_id[:8]} on {executor}: "
        f"{len(summary.done)}/{summary.partitions} partition(s) done, {len(summary.failed)} failed, "
        f"{len(summary.retried)} retried; {summary.rows:,} rows from {summary.bytes:,} bytes "
        f"in {summary.seconds:.1f} s",
        highlight=False,
    )
    for key in summary.failed:
        console.print(f"  failed: {key}", highlight=False)
    for key in summary.retried:
        console.print(f"  retried: {key}", highlight=False)
    console.print(f"lake: {lake.location}\ncatalog: {settings.db} (refreshed once)", highlight=False)
    if summary.failed:
        raise typer.Exit(1)


@commands.command("worker")
def worker(
    broker: Annotated[str | None, typer.Option(help="Celery broker URL (default LIQF_CELERY_BROKER).")] = None,
    name: Annotated[str, typer.Option(help="Worker name (unique per worker).")] = "liqf@%h",
    concurrency: Annotated[int, typer.Option(help="Steps this worker runs at once (processes).")] = 1,
) -> None:
    """Start a Celery worker for `liqf backfill --executor celery` (run one per core on any machine)."""
    # heavy (Dagster, Celery): imported when the command runs, so `liqf --help` starts fast
    from pipelines.distributed import executors

    if broker:
        os.environ["LIQF_CELERY_BROKER"] = broker
    try:
        executors.check_broker(executors.broker_url())
    except executors.BrokerDown as exc:
        raise fail(str(exc)) from None
    celery = os.path.join(os.path.dirname(sys.executable), "celery")
    pool = ["--pool", "solo"] if concurrency == 1 else ["--pool", "prefork", "--concurrency", str(concurrency)]
    os.execv(
        celery,
        [
            celery,
            "-A",
            "pipelines.distributed.celery_app",
            "worker",
            "-Q",
            "dagster",
            "-n",
            name,
            "--prefetch-multiplier",
            "1",
            "--without-gossip",
            "--without-mingle",
            "-l",
            "INFO",
            *pool,
        ],
    )
