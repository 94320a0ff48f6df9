"""`liqf ingest {binance,bybit,okx,bitmex,deribit,dydx}` (one command for every CEX, registered per venue by
:mod:`pipelines.cli.ingest`) and `liqf capture {binance,bybit}`.

* ``liqf ingest VENUE --since ISO --until ISO [--base-url URL] [--symbols S ...] [--private] [--address dydx1...]``
* ``liqf capture {binance,bybit} [--url WS_URL] [--symbols S ...] [--duration S]``
"""

from __future__ import annotations

from typing import Annotated

import typer

from pipelines.cli import progress
from pipelines.cli.context import console, fail, refresh_catalog, settings, window
from pipelines.ingest import capture, cex
from pipelines.ingest.runner import print_summary
from pipelines.ingest.safety import IncompleteInput
from pipelines.venues.signing import ApiCredentials, MissingCredentialsError

_SYMBOL_DEFAULTS = {
    "binance": "BTCUSDT ETHUSDT (mark price / open interest)",
    "bybit": "USDT (insurance coins)",
    "okx": "BTC-USDT (instrument families)",
    "bitmex": "XBt (insurance currencies)",
    "deribit": "BTC-PERPETUAL (instruments)",
    "dydx": "BTC-USD (markets)",
}
INGEST_HELP = "Pull {venue} liquidations, insurance fund and ADL data (public; own account with --private)."

#: `liqf capture` (a command at the root)
capture_app = typer.Typer()


def ingest_venue(
    ctx: typer.Context,
    since: Annotated[str, typer.Option(help="Window start, ISO-8601 UTC or epoch ms.")],
    until: Annotated[str, typer.Option(help="Window end, ISO-8601 UTC or epoch ms.")],
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="Venue REST base URL (default: the venue's public API).")
    ] = None,
    symbols: Annotated[
        list[str] | None,
        typer.Option(
            "--symbols", help="Symbols; defaults: " + "; ".join(f"{v} {d}" for v, d in _SYMBOL_DEFAULTS.items()) + "."
        ),
    ] = None,
    private: Annotated[
        bool,
        typer.Option(
            "--private", help="Also pull own-account data with the read-only key in LIQF_<VENUE>_API_KEY / _SECRET."
        ),
    ] = False,
    address: Annotated[
        list[str] | None, typer.Option("--address", help="dYdX: subaccount owner addresses whose fills to pull.")
    ] = None,
) -> None:
    """The venue is the command's own name (``liqf ingest okx`` pulls OKX)."""
    venue = ctx.info_name or ""
    since_ms, until_ms = window(since, until, ("--since", "--until"))
    assert since_ms is not None and until_ms is not None
    creds = account = None
    if private and venue in cex.PRIVATE_VENUES:
        try:
            creds = ApiCredentials.from_env(venue)
            account = cex.account_label(venue, creds)
        except (MissingCredentialsError, cex.PullError) as exc:
            raise fail(
                str(exc), "export the read-only key in your shell; keys are never read from flags or files"
            ) from None
    try:
        client = cex.make_client(venue, base_url, credentials=creds)
    except (cex.PullError, ValueError) as exc:
        raise fail(str(exc)) from None
    try:
        with progress.spinner(f"pulling {venue}") as bar:
            bar.add_task(venue, total=None)
            reports = cex.pull(
                settings.lake,
                venue,
                client,
                since_ms,
                until_ms,
                symbols=symbols,
                private=private,
                account=account,
                addresses=address or (),
            )
    except cex.PullError as exc:
        raise fail(str(exc), "see `liqf ingest VENUE --help`") from None
    except IncompleteInput as exc:  # an incomplete pull or a refused key: nothing written
        raise fail(str(exc), exc.hint) from None
    finally:
        client.close()
    result = refresh_catalog()
    assert result is not None
    print_summary(console, settings.lake, reports, result)


@capture_app.command("capture")
def capture_cmd(
    venue: Annotated[str, typer.Argument(help="binance (!forceOrder@arr) or bybit (allLiquidation.{symbol}).")],
    url: Annotated[str | None, typer.Option(help="WebSocket URL (default: the venue's public stream).")] = None,
    symbols: Annotated[
        list[str] | None, typer.Option("--symbols", help="Bybit symbols (default BTCUSDT ETHUSDT).")
    ] = None,
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: run until Ctrl-C).")
    ] = None,
    heartbeat: Annotated[
        float, typer.Option(help="Seconds without a message or pong before the stream counts as dead.")
    ] = 30.0,
) -> None:
    """Record a public liquidation stream into hourly raw partitions (reconnects; gaps go to `capture_gaps`)."""
    try:
        stats = capture.run_capture(
            settings.lake,
            venue,
            url=url,
            symbols=symbols,
            duration_s=duration,
            heartbeat_s=heartbeat,
            progress=lambda s: console.print(s, highlight=False),
        )
    except capture.CaptureError as exc:
        raise fail(str(exc), "venues: binance, bybit; --url must be ws:// or wss://") from None
    except KeyboardInterrupt:
        return
    console.print(stats.summary(), highlight=False)
