"""`liqf fetch` (Hyperliquid's public S3 files into the raw layer) and `liqf backfill` (distributed)."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer


def register(app: typer.Typer, ingest_app: typer.Typer) -> None:
    from pipelines import cli

    fetch_app = typer.Typer(help="Download public venue files from object storage into the raw layer.",
                            no_args_is_help=True)
    app.add_typer(fetch_app, name="fetch")

    @fetch_app.command("hyperliquid")
    def fetch_hyperliquid(
        since: Annotated[str, typer.Option("--from", help="First hour, UTC (2025-10-10T20).")],
        until: Annotated[str, typer.Option("--to", help="Last hour, UTC (inclusive; the next hour's file is added).")],
        sources: Annotated[str, typer.Option(help="Comma-separated: fills, misc, ctxs.")] = "fills",
        yes: Annotated[bool, typer.Option("--yes", help="Download without asking.")] = False,
        ingest: Annotated[bool, typer.Option("--ingest", help="Ingest the downloaded node fills afterwards.")] = False,
        endpoint_url: Annotated[Optional[str], typer.Option(
            "--endpoint-url", help="S3-compatible endpoint (default: AWS_ENDPOINT_URL, else AWS).")] = None,
        requester_pays: Annotated[bool, typer.Option(
            "--requester-pays/--no-requester-pays", help="Send x-amz-request-payer: requester (the buckets need it).")] = True,
        bucket_fills: Annotated[Optional[str], typer.Option(help="Bucket of node fills (default hl-mainnet-node-data).")] = None,
        bucket_misc: Annotated[Optional[str], typer.Option(help="Bucket of misc events (default hl-mainnet-node-data).")] = None,
        bucket_ctxs: Annotated[Optional[str], typer.Option(help="Bucket of asset contexts (default hyperliquid-archive).")] = None,
    ) -> None:
        """List, price (requester pays), confirm and download Hyperliquid node files; resumable and verified."""
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

        from pipelines.ingest import fetch
        from pipelines.storage import StorageError, StoreSettings

        settings = StoreSettings(endpoint=endpoint_url, requester_pays=requester_pays)
        try:
            start, end = fetch.parse_hour(since, "--from"), fetch.parse_hour(until, "--to")
            planned = fetch.plan(start, end, [s.strip() for s in sources.split(",") if s.strip()], settings,
                                 {"fills": bucket_fills, "misc": bucket_misc, "ctxs": bucket_ctxs})
        except fetch.FetchError as exc:
            raise cli.fail(str(exc)) from None
        cli.console.print("[bold]to download[/]")
        for p in planned:
            size = f"{p.info.size:>15,} bytes" if p.info else "        missing"
            cli.console.print(f"  {p.source:<5} {size}  {p.url}", highlight=False)
        present = [p for p in planned if p.info]
        total = sum(p.info.size for p in present)
        missing = len(planned) - len(present)
        cli.console.print(
            f"{len(present)} object(s), {total:,} bytes ({total / 2**30:.2f} GiB); requester-pays estimate "
            f"${fetch.estimate_usd(planned):.4f} at ${fetch.EGRESS_PER_GB}/GB egress + ${fetch.REQUESTS_PER_1000}/1,000 "
            f"requests" + (f"; {missing} missing" if missing else ""), highlight=False)
        if not present:
            raise cli.fail("nothing to download in that window", "check --from/--to (node fills start 2025-07-27T08)")
        if not yes:
            if not sys.stdin.isatty():
                raise cli.fail("not downloading without confirmation", "pass --yes to download non-interactively")
            if not typer.confirm("download?"):
                raise typer.Exit(1)
        root = cli.settings.lake.root / "raw" / "venue=hyperliquid" / "source=s3"
        with Progress(TextColumn("[bold]download"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                      TimeRemainingColumn(), console=cli.console, transient=True,
                      disable=not cli.console.is_terminal) as bar:
            task = bar.add_task("download", total=total)
            try:
                paths = fetch.download(planned, root, settings, progress=lambda n: bar.advance(task, n))
            except StorageError as exc:
                raise cli.fail(f"{exc}", "run the same command again: finished files are kept, partial ones resume") from None
        cli.console.print(f"[green]✓[/] {len(paths)} file(s), {total:,} bytes verified (size, MD5 ETags) in {root}",
                          highlight=False)
        if ingest:
            from pipelines import catalog as catalog_mod
            from pipelines.ingest import runner

            fills = [p for p, q in zip(paths, present) if q.source == "fills"]
            reports = runner.run_file_ingest(cli.settings.lake, node_fills=fills, snapshot=None, asset_ctxs=None,
                                             console=cli.console)
            result = catalog_mod.refresh(cli.settings.lake, cli.settings.db)
            runner.print_summary(cli.console, cli.settings.lake, reports, result)
        else:
            cli.console.print(f"next: liqf ingest hyperliquid --node-fills {root}/bucket={present[0].bucket}", highlight=False)
