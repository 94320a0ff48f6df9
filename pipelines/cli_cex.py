"""CLI commands of the cex area, registered on the main `liqf` app by pipelines.cli.

* ``liqf ingest {binance,bybit,okx,bitmex,deribit,dydx} --since ISO --until ISO [--base-url URL]
  [--symbols S ...] [--private] [--address dydx1...]``
* ``liqf capture {binance,bybit} [--url WS_URL] [--symbols S ...] [--duration S]``
"""


from typing import Annotated, Optional

import typer

_SYMBOL_HELP = {
    "binance": "Symbols for mark price / open interest (default BTCUSDT ETHUSDT).",
    "bybit": "Insurance coins (default USDT).",
    "okx": "Instrument families (default BTC-USDT).",
    "bitmex": "Insurance currencies (default XBt).",
    "deribit": "Instruments (default BTC-PERPETUAL).",
    "dydx": "Markets (default BTC-USD).",
}


def _ingest(venue: str, since: str, until: str, base_url: str | None, symbols: list[str] | None, private: bool,
            addresses: list[str] | None) -> None:
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from pipelines import catalog as catalog_mod
    from pipelines.cli import console, fail, settings
    from pipelines.ingest import cex
    from pipelines.ingest.hyperliquid_api import PullError as TimeError
    from pipelines.ingest.hyperliquid_api import parse_time
    from pipelines.ingest.runner import print_summary
    from pipelines.ingest.safety import IncompleteInput
    from pipelines.venues.signing import ApiCredentials, MissingCredentialsError

    try:
        since_ms, until_ms = parse_time(since, "--since"), parse_time(until, "--until")
    except TimeError as exc:
        raise fail(str(exc), "times are ISO-8601 UTC (2025-10-10T21:00:00Z) or epoch ms") from None
    creds = account = None
    if private and venue in cex.PRIVATE_VENUES:
        try:
            creds = ApiCredentials.from_env(venue)
            account = cex.account_label(venue, creds)
        except (MissingCredentialsError, cex.PullError) as exc:
            raise fail(str(exc), "export the read-only key in your shell; keys are never read from flags or files") from None
    try:
        client = cex.make_client(venue, base_url, credentials=creds)
    except (cex.PullError, ValueError) as exc:
        raise fail(str(exc)) from None
    try:
        with Progress(SpinnerColumn(), TextColumn(f"[bold]pulling {venue}"), TimeElapsedColumn(), console=console,
                      transient=True, disable=not console.is_terminal) as bar:
            bar.add_task(venue, total=None)
            reports = cex.pull(settings.lake, venue, client, since_ms, until_ms, symbols=symbols, private=private,
                               account=account, addresses=addresses or ())
    except cex.PullError as exc:
        raise fail(str(exc), "see `liqf ingest VENUE --help`") from None
    except IncompleteInput as exc:  # an incomplete pull or a refused key: nothing written
        raise fail(str(exc), exc.hint) from None
    finally:
        client.close()
    result = catalog_mod.refresh(settings.lake, settings.db)
    print_summary(console, settings.lake, reports, result)


def _make_ingest(venue: str):
    def command(
        since: Annotated[str, typer.Option(help="Window start, ISO-8601 UTC or epoch ms.")],
        until: Annotated[str, typer.Option(help="Window end, ISO-8601 UTC or epoch ms.")],
        base_url: Annotated[Optional[str], typer.Option("--base-url", help="Venue REST base URL (default: the venue's public API).")] = None,
        symbols: Annotated[Optional[list[str]], typer.Option("--symbols", help=_SYMBOL_HELP[venue])] = None,
        private: Annotated[bool, typer.Option("--private", help=f"Also pull own-account data with the read-only key in LIQF_{venue.upper()}_API_KEY / _SECRET.")] = False,
        address: Annotated[Optional[list[str]], typer.Option("--address", help="dYdX: subaccount owner addresses whose fills to pull.")] = None,
    ) -> None:
        _ingest(venue, since, until, base_url, symbols, private, address)

    command.__doc__ = f"Pull {venue} liquidations, insurance fund and ADL data (public; own account with --private)."
    return command


def register(app: typer.Typer, ingest_app: typer.Typer) -> None:
    """Add this area's commands (to `app`) and ingest subcommands (to `ingest_app`)."""
    from pipelines.ingest.cex import CEX_VENUES

    for venue in CEX_VENUES:
        ingest_app.command(venue)(_make_ingest(venue))

    @app.command("capture")
    def capture_cmd(
        venue: Annotated[str, typer.Argument(help="binance (!forceOrder@arr) or bybit (allLiquidation.{symbol}).")],
        url: Annotated[Optional[str], typer.Option(help="WebSocket URL (default: the venue's public stream).")] = None,
        symbols: Annotated[Optional[list[str]], typer.Option("--symbols", help="Bybit symbols (default BTCUSDT ETHUSDT).")] = None,
        duration: Annotated[Optional[float], typer.Option(help="Stop after this many seconds (default: run until Ctrl-C).")] = None,
        heartbeat: Annotated[float, typer.Option(help="Seconds without a message or pong before the stream counts as dead.")] = 30.0,
    ) -> None:
        """Record a public liquidation stream into hourly raw partitions (reconnects; gaps go to `capture_gaps`)."""
        from pipelines.cli import console, fail, settings
        from pipelines.ingest import capture

        try:
            stats = capture.run_capture(settings.lake, venue, url=url, symbols=symbols, duration_s=duration,
                                        heartbeat_s=heartbeat, progress=lambda s: console.print(s, highlight=False))
        except capture.CaptureError as exc:
            raise fail(str(exc), "venues: binance, bybit; --url must be ws:// or wss://") from None
        except KeyboardInterrupt:
            return
        console.print(stats.summary(), highlight=False)
