"""`liqf fetch hyperliquid` (Hyperliquid's public S3 files into the raw layer), `liqf backfill hyperliquid`
(hourly partitions as one Dagster run on an executor) and `liqf worker` (a Celery worker for it)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pipelines.cli import progress
from pipelines.cli.context import console, fail, refresh_catalog, settings
from pipelines.cli.options import example

if TYPE_CHECKING:
    from pipelines.ingest.hyperliquid.fetch import Planned
    from pipelines.ingest.report import IngestReport
    from pipelines.storage import StoreSettings

#: `liqf worker` (a command at the root)
commands = typer.Typer()


fetch_app = typer.Typer(
    help="Download public venue files from object storage into the raw layer.", no_args_is_help=True
)

EndpointUrl = Annotated[
    str | None, typer.Option("--endpoint-url", help="S3-compatible endpoint (default: AWS_ENDPOINT_URL, else AWS).")
]
RequesterPays = Annotated[
    bool,
    typer.Option(
        "--requester-pays/--no-requester-pays", help="Send x-amz-request-payer: requester (the buckets need it)."
    ),
]
Yes = Annotated[bool, typer.Option("--yes", help="Download without asking.")]
BucketFills = Annotated[str | None, typer.Option(help="Bucket of node fills (default hl-mainnet-node-data).")]
BucketMisc = Annotated[str | None, typer.Option(help="Bucket of misc events (default hl-mainnet-node-data).")]
BucketCtxs = Annotated[str | None, typer.Option(help="Bucket of asset contexts (default hyperliquid-archive).")]
CREDENTIALS_NOTE = (
    "AWS credentials come from the standard chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE and "
    "~/.aws/credentials or ~/.aws/config (SSO included), container or instance roles."
)


@dataclass(frozen=True)
class FetchPlan:
    """The objects of a window, each either already downloaded and verified here or still to fetch."""

    planned: list[Planned]
    root: Path  # the raw layer's mirror of the buckets

    def local(self, p: Planned) -> Path:
        # heavy: loaded only when the command runs, so `liqf --help` starts fast
        from pipelines.storage.inputs import mirror_path
        from pipelines.storage.location import ObjectUrl

        return mirror_path(self.root, ObjectUrl(p.bucket), p.key)

    def here(self, p: Planned) -> bool:
        # heavy: loaded only when the command runs, so `liqf --help` starts fast
        from pipelines.storage.transfer import is_complete

        return p.info is not None and is_complete(p.info, self.local(p))

    @property
    def present(self) -> list[Planned]:
        return [p for p in self.planned if p.info is not None]

    @property
    def to_fetch(self) -> list[Planned]:
        return [p for p in self.present if not self.here(p)]

    def bytes_to_fetch(self) -> int:
        return sum(p.info.size for p in self.to_fetch if p.info is not None)


def plan_fetch(
    since: str, until: str, sources: list[str], store: StoreSettings, buckets: dict[str, str | None]
) -> FetchPlan:
    """Which objects the hours of ``since``..``until`` (plus the next hour) have in the buckets (HEAD each)."""
    # heavy: loaded only when the command runs, so `liqf --help` starts fast
    from pipelines.ingest.hyperliquid import fetch

    try:
        start, end = fetch.parse_hour(since, "--from"), fetch.parse_hour(until, "--to")
        planned = fetch.plan(start, end, sources, store, buckets)
    except fetch.FetchError as exc:
        raise fail(str(exc)) from None
    return FetchPlan(planned, settings.lake.root / "raw" / "venue=hyperliquid" / "source=s3")


def show_plan(plan: FetchPlan) -> None:
    """Every object with its size and whether it is here already; the bytes still to fetch and their price."""
    # heavy: loaded only when the command runs, so `liqf --help` starts fast
    from pipelines.ingest.hyperliquid import fetch

    console.print("[bold]objects of the window[/] (requester pays)")
    for p in plan.planned:
        size = f"{p.info.size:>15,} bytes" if p.info else "        missing in the bucket"
        state = "" if not p.info else ("  here" if plan.here(p) else "  to fetch")
        console.print(f"  {p.source:<5} {size}{state}  {p.url}", highlight=False)
    todo, missing = plan.to_fetch, len(plan.planned) - len(plan.present)
    total = plan.bytes_to_fetch()
    console.print(
        f"{len(todo)} object(s) to download, {total:,} bytes ({total / 2**30:.2f} GiB), "
        f"{len(plan.present) - len(todo)} here already; requester-pays estimate ${fetch.estimate_usd(todo):.4f} at "
        f"${fetch.EGRESS_PER_GB}/GB egress + ${fetch.REQUESTS_PER_1000}/1,000 requests"
        + (f"; {missing} missing in the bucket" if missing else ""),
        highlight=False,
    )


def confirm_download(plan: FetchPlan, yes: bool) -> None:
    """Ask before spending money (not needed when everything is here, or with --yes)."""
    if not plan.to_fetch or yes:
        return
    if not sys.stdin.isatty():
        raise fail("not downloading without confirmation", "pass --yes to download non-interactively")
    if not typer.confirm("download?"):
        raise typer.Exit(1)


def download(plan: FetchPlan, store: StoreSettings) -> dict[str, list[Path]]:
    """Download what is missing (resuming partial files, verifying size and MD5 ETags); returns every present
    object's local path by source, in the plan's order."""
    # heavy: loaded only when the command runs, so `liqf --help` starts fast
    from pipelines.ingest import runner
    from pipelines.ingest.hyperliquid import fetch
    from pipelines.storage import StorageError

    bar, listener = runner.rich_listener(console)  # bytes, rate and time left per file and overall
    with bar:
        try:
            fetch.download(plan.to_fetch, plan.root, store, listener)
        except StorageError as exc:
            raise fail(f"{exc}", "run the same command again: finished files are kept, partial ones resume") from None
    paths: dict[str, list[Path]] = {}
    for p in plan.present:
        paths.setdefault(p.source, []).append(plan.local(p))
    return paths


def ingest_fetched(
    paths: dict[str, list[Path]], snapshot: list[Path] | None = None, export_scope: str = "total"
) -> list[IngestReport]:
    """Ingest what a fetch brought: node fills, misc events, asset contexts (one archive file a day), and a
    snapshot when given. One-line errors, as `liqf ingest` gives them."""
    # heavy: loaded only when the command runs, so `liqf --help` starts fast
    from pipelines.ingest import runner
    from pipelines.ingest.common import UserFacingError

    ctxs = paths.get("ctxs", [])
    reports: list[IngestReport] = []
    try:
        reports += runner.run_file_ingest(
            settings.lake,
            node_fills=paths.get("fills", []),
            misc_events=paths.get("misc", []),
            snapshot=snapshot or None,
            asset_ctxs=ctxs[0] if ctxs else None,
            export_scope=export_scope,
            console=console,
        )
        for day in ctxs[1:]:  # the ingest takes one context file per run
            reports += runner.run_file_ingest(
                settings.lake, node_fills=[], snapshot=None, asset_ctxs=day, console=console
            )
    except runner.InputsRefused as exc:
        if exc.reports:
            done = refresh_catalog()
            assert done is not None
            runner.print_summary(console, settings.lake, reports + exc.reports, done)
        raise fail(str(exc), exc.hint) from None
    except UserFacingError as exc:
        raise fail(str(exc), exc.hint) from None
    return reports


@fetch_app.command(
    "hyperliquid",
    epilog=example(
        "liqf fetch hyperliquid --from 2025-10-10T21 --to 2025-10-10T21 --sources fills,misc,ctxs",
        "AWS_PROFILE=research liqf fetch hyperliquid --from 2025-10-10T20 --to 2025-10-10T22 --yes --ingest",
    )
    + "\n\n"
    + CREDENTIALS_NOTE,
)
def fetch_hyperliquid(
    since: Annotated[str, typer.Option("--from", help="First hour, UTC (2025-10-10T20).")],
    until: Annotated[str, typer.Option("--to", help="Last hour, UTC (inclusive; the next hour's file is added).")],
    sources: Annotated[str, typer.Option(help="Comma-separated: fills, misc, ctxs.")] = "fills",
    yes: Yes = False,
    ingest: Annotated[
        bool, typer.Option("--ingest", help="Ingest what was fetched afterwards (fills, misc events, contexts).")
    ] = False,
    endpoint_url: EndpointUrl = None,
    requester_pays: RequesterPays = True,
    bucket_fills: BucketFills = None,
    bucket_misc: BucketMisc = None,
    bucket_ctxs: BucketCtxs = None,
) -> None:
    """List, price (requester pays), confirm and download Hyperliquid node files; resumable and verified."""
    # heavy: loaded only when the command runs, so `liqf --help` starts fast
    from pipelines.ingest import runner
    from pipelines.storage import StoreSettings

    store = StoreSettings(endpoint=endpoint_url, requester_pays=requester_pays)
    plan = plan_fetch(
        since,
        until,
        [s.strip() for s in sources.split(",") if s.strip()],
        store,
        {"fills": bucket_fills, "misc": bucket_misc, "ctxs": bucket_ctxs},
    )
    show_plan(plan)
    if not plan.present:
        raise fail("nothing to download in that window", "check --from/--to (node fills start 2025-07-27T08)")
    confirm_download(plan, yes)
    fetched = plan.bytes_to_fetch()
    paths = download(plan, store)
    console.print(
        f"[green]✓[/] {len(plan.present)} file(s) verified (size, MD5 ETags), {fetched:,} bytes downloaded, in "
        f"{plan.root}",
        highlight=False,
    )
    if ingest:
        reports = ingest_fetched(paths)
        result = refresh_catalog()
        assert result is not None
        runner.print_summary(console, settings.lake, reports, result)
    else:
        options = {"fills": "--node-fills", "misc": "--misc-events", "ctxs": "--asset-ctxs"}
        args = " ".join(f"{options[k]} {v}" for k, files in paths.items() for v in files)
        console.print(f"next: liqf ingest hyperliquid {args}", highlight=False)


backfill_app = typer.Typer(
    help="Backfill partitions as Dagster runs on a (distributed) executor.", no_args_is_help=True
)


@backfill_app.command(
    "hyperliquid",
    epilog=example(
        "liqf backfill hyperliquid --from 2025-10-10T20 --to 2025-10-10T23",
        "liqf backfill hyperliquid --from 2025-10-10T20 --to 2025-10-10T23 --executor multiprocess "
        "--node-data s3://hl-mainnet-node-data",
    ),
)
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
    from pipelines.ingest.hyperliquid import fetch

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


@commands.command(
    "worker",
    epilog=example(
        "liqf worker --broker redis://127.0.0.1:6379/0 --concurrency 2",
        "(then, elsewhere: liqf backfill hyperliquid --from 2025-10-10T20 --to 2025-10-10T23 --executor celery)",
    ),
)
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
