"""`liqf ingest ...`: bring venue data into the lake (Hyperliquid files or info API, the CEXs, GMX, reserves)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipelines.cli import cex, onchain
from pipelines.cli.context import console, fail, refresh_catalog, settings, window
from pipelines.cli.options import EXPORT_ACCOUNT_VALUE, FROM, TO, example

app = typer.Typer(help="Bring venue data into the lake.", no_args_is_help=True)


@app.command(
    "hyperliquid",
    epilog=example(
        "liqf ingest hyperliquid --node-fills data/raw/node_fills_by_block --misc-events "
        "data/raw/misc_events_by_block --snapshot export/ --asset-ctxs 20251010.csv.lz4",
        "liqf ingest hyperliquid --node-fills s3://hl-mainnet-node-data/node_fills_by_block/hourly/20251010/21.lz4",
        "liqf ingest hyperliquid --api --users users.txt --from 2025-10-10T20:00 --to 2025-10-10T23:00",
    ),
)
def ingest_hyperliquid(
    node_fills: Annotated[
        list[str] | None,
        typer.Option(
            "--node-fills",
            help="node_fills_by_block, legacy node_fills or node_trades files or directories "
            "(.lz4 or JSON lines; format read from the content), or s3:// URLs.",
        ),
    ] = None,
    misc_events: Annotated[
        list[str] | None,
        typer.Option(
            "--misc-events",
            help="misc_events_by_block files or directories (funding, ledger, liquidations), or s3:// URLs.",
        ),
    ] = None,
    snapshot: Annotated[
        list[str] | None,
        typer.Option(
            help="clearinghouseState JSONL file, or the snapshot export (directory or files: account_value_snapshot_, "
            "perp_positions_by_market_, spot_balances_), or s3:// URLs."
        ),
    ] = None,
    asset_ctxs: Annotated[
        str | None,
        typer.Option(
            "--asset-ctxs",
            help="metaAndAssetCtxs JSONL, or the archive asset_ctxs CSV (.csv or .csv.lz4), or an s3:// URL.",
        ),
    ] = None,
    export_account_value: EXPORT_ACCOUNT_VALUE = "total",
    endpoint_url: Annotated[
        str | None,
        typer.Option(
            "--endpoint-url", help="S3-compatible endpoint for s3:// inputs (default: AWS_ENDPOINT_URL, else AWS)."
        ),
    ] = None,
    requester_pays: Annotated[
        bool,
        typer.Option(
            "--requester-pays/--no-requester-pays", help="Send x-amz-request-payer: requester for s3:// inputs."
        ),
    ] = True,
    api: Annotated[bool, typer.Option("--api", help="Pull from the info API instead of files.")] = False,
    users: Annotated[Path | None, typer.Option(help="--api: file with one address per line.")] = None,
    since: FROM = None,
    until: TO = None,
    base_url: Annotated[str | None, typer.Option("--base-url", help="--api: info API base URL.")] = None,
    partial: Annotated[
        bool,
        typer.Option(
            "--partial",
            help="Ingest a truncated file's complete lines anyway (the cut line is quarantined); without it a "
            "truncated file is an error and the lake keeps what it had.",
        ),
    ] = False,
) -> None:
    """Ingest Hyperliquid node files (fills, misc events, snapshot, asset contexts) or pull tracked users from the
    info API (--api; --from/--to is its window)."""
    # heavy (pyarrow, DuckDB, the readers): imported when the command runs, so `liqf --help` starts fast
    from pipelines.ingest import runner
    from pipelines.ingest.common import UserFacingError
    from pipelines.ingest.hyperliquid import api as hyperliquid_api
    from pipelines.ingest.safety import IncompleteInput
    from pipelines.storage import StoreSettings

    try:
        if api:
            if users is None or since is None or until is None:
                raise fail("--api needs --users FILE, --from ISO and --to ISO")
            since_ms, until_ms = window(since, until)  # checked here so errors name --from/--to
            if until_ms is None or since_ms is None or until_ms <= since_ms:
                raise fail("--to must be after --from")
            reports = hyperliquid_api.run(
                settings.lake, users_file=users, since=since, until=until, base_url=base_url, console=console
            )
        else:
            if not (node_fills or misc_events or snapshot or asset_ctxs):
                raise fail(
                    "nothing to ingest",
                    "give --node-fills PATH (and optionally --misc-events PATH, --snapshot PATH, --asset-ctxs FILE), "
                    "or --api",
                )
            if export_account_value not in ("total", "cross"):
                raise fail("--export-account-value must be 'total' or 'cross'")
            inputs = runner.resolve_inputs(
                settings.lake,
                {
                    "node_fills": node_fills or [],
                    "misc_events": misc_events or [],
                    "snapshot": snapshot or [],
                    "asset_ctxs": [asset_ctxs] if asset_ctxs else [],
                },
                StoreSettings(endpoint=endpoint_url, requester_pays=requester_pays),
                console,
            )
            reports = runner.run_file_ingest(
                settings.lake,
                node_fills=inputs["node_fills"],
                snapshot=inputs["snapshot"],
                asset_ctxs=inputs["asset_ctxs"][0] if inputs["asset_ctxs"] else None,
                misc_events=inputs["misc_events"],
                export_scope=export_account_value,
                console=console,
                allow_partial=partial,
            )
    except IncompleteInput as exc:  # an API pull that did not complete: nothing written
        raise fail(str(exc), exc.hint) from None
    except runner.InputsRefused as exc:
        # the inputs that were complete are in the lake; the refused ones changed nothing
        if exc.reports:
            done = refresh_catalog()
            assert done is not None
            runner.print_summary(console, settings.lake, exc.reports, done)
        raise fail(str(exc), exc.hint) from None
    except UserFacingError as exc:
        raise fail(str(exc), exc.hint) from None
    result = refresh_catalog()
    assert result is not None
    runner.print_summary(console, settings.lake, reports, result)


for _venue in cex.CEX_VENUES:
    app.command(_venue, epilog=cex.ingest_epilog(_venue))(cex.ingest_command(_venue))
app.command("gmx", epilog=onchain.GMX_EXAMPLES)(onchain.ingest_gmx)
app.command("reserves", epilog=onchain.RESERVES_EXAMPLES)(onchain.ingest_reserves)
