"""`liqf ingest {binance,bybit,okx,bitmex,deribit,dydx}` (one command per CEX, registered by
:mod:`pipelines.cli.ingest`, each with its own options only) and `liqf capture {binance,bybit}`.

* ``liqf ingest VENUE --from ISO --to ISO [--base-url URL] [--symbols S ...] [--private]``
* ``liqf ingest dydx --from ISO --to ISO [--symbols M ...] [--address dydx1...]``
* ``liqf capture {binance,bybit} [--url WS_URL] [--symbols S ...] [--duration S]``

No ``from __future__ import annotations`` here: each venue's command is built in a closure whose option help
names that venue's defaults, and Typer reads the annotations as objects.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import typer

from pipelines.cli import progress
from pipelines.cli.context import console, fail, refresh_catalog, settings, window
from pipelines.cli.options import FROM_REQUIRED, TO_REQUIRED, example


@dataclass(frozen=True)
class CexVenue:
    """What `liqf ingest VENUE --help` says about a venue; :mod:`pipelines.ingest.cex` is what pulls it (a unit test
    holds the two to the same venues, defaults and private support)."""

    name: str  # as people write it
    symbols: str  # the default --symbols, and what they are
    private: bool  # own-account data with a read-only key (--private)
    addresses: bool = False  # fills of given subaccount owners (--address)


#: every CEX `liqf ingest` pulls, in the order `liqf ingest --help` lists them
CEX_VENUES = {
    "binance": CexVenue("Binance", "BTCUSDT ETHUSDT (mark price and open interest symbols)", private=True),
    "bybit": CexVenue("Bybit", "USDT (insurance fund coins)", private=True),
    "okx": CexVenue("OKX", "BTC-USDT (instrument families)", private=True),
    "bitmex": CexVenue("BitMEX", "XBt (insurance fund currencies)", private=True),
    "deribit": CexVenue("Deribit", "BTC-PERPETUAL (instruments)", private=True),
    "dydx": CexVenue("dYdX", "BTC-USD (markets)", private=False, addresses=True),
}

BaseUrl = Annotated[
    str | None, typer.Option("--base-url", help="Venue REST base URL (default: the venue's public API).")
]
Private = Annotated[
    bool,
    typer.Option(
        "--private", help="Also pull own-account data with the read-only key in LIQF_<VENUE>_API_KEY / _SECRET."
    ),
]
Addresses = Annotated[
    list[str] | None, typer.Option("--address", help="Subaccount owner addresses (dydx1...) whose fills to pull.")
]

#: `liqf capture` (a command at the root)
capture_app = typer.Typer()


def ingest_command(venue: str) -> Callable[..., None]:
    """The `liqf ingest <venue>` command: the shared options plus the ones this venue has."""
    spec = CEX_VENUES[venue]
    Symbols = Annotated[  # noqa: N806 - an option type, named like the others
        list[str] | None, typer.Option("--symbols", help=f"Symbols (repeat); default {spec.symbols}.")
    ]
    if spec.addresses:

        def command(
            since: FROM_REQUIRED,
            until: TO_REQUIRED,
            base_url: BaseUrl = None,
            symbols: Symbols = None,
            address: Addresses = None,
        ) -> None:
            pull_venue(venue, since, until, base_url, symbols, private=False, addresses=address or [])

    else:

        def command(  # type: ignore[misc]  # one signature per kind of venue
            since: FROM_REQUIRED,
            until: TO_REQUIRED,
            base_url: BaseUrl = None,
            symbols: Symbols = None,
            private: Private = False,
        ) -> None:
            pull_venue(venue, since, until, base_url, symbols, private=private, addresses=[])

    command.__doc__ = f"Pull {spec.name} liquidations, insurance fund and ADL data into the lake (public data" + (
        "; your own account with --private)." if spec.private else "; fills of given accounts with --address)."
    )
    return command


def ingest_epilog(venue: str) -> str:
    lines = [f"liqf ingest {venue} --from 2025-10-10T20:00 --to 2025-10-10T23:00"]
    if CEX_VENUES[venue].private:
        lines.append(f"liqf ingest {venue} --from 2025-10-10T20:00 --to 2025-10-10T23:00 --private")
    if CEX_VENUES[venue].addresses:
        lines.append(f"liqf ingest {venue} --from 2025-10-10T20:00 --to 2025-10-10T23:00 --address dydx1...")
    return example(*lines)


def pull_venue(
    venue: str,
    since: str,
    until: str,
    base_url: str | None,
    symbols: list[str] | None,
    *,
    private: bool,
    addresses: list[str],
) -> None:
    # heavy (the venue clients, pyarrow): imported when the command runs, so `liqf --help` starts fast
    from pipelines.ingest import cex
    from pipelines.ingest.runner import print_summary
    from pipelines.ingest.safety import IncompleteInput
    from pipelines.venues.signing import ApiCredentials, MissingCredentialsError

    since_ms, until_ms = window(since, until)
    assert since_ms is not None and until_ms is not None
    if until_ms <= since_ms:
        raise fail("--to must be after --from")
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
                addresses=addresses,
            )
    except cex.PullError as exc:
        raise fail(str(exc), f"see `liqf ingest {venue} --help`") from None
    except IncompleteInput as exc:  # an incomplete pull or a refused key: nothing written
        raise fail(str(exc), exc.hint) from None
    finally:
        client.close()
    result = refresh_catalog()
    assert result is not None
    print_summary(console, settings.lake, reports, result)


@capture_app.command(
    "capture",
    epilog=example("liqf capture binance --duration 3600", "liqf capture bybit --symbols BTCUSDT --symbols ETHUSDT"),
)
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
    # heavy (websockets, the CEX formats): imported when the command runs, so `liqf --help` starts fast
    from pipelines.ingest import capture

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
