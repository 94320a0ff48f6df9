"""`liqf ingest gmx` and `liqf ingest reserves` (registered on the ingest group by :mod:`pipelines.cli.ingest`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from pipelines.cli import progress
from pipelines.cli.context import console, fail, out, refresh_catalog, settings
from pipelines.cli.options import example

GMX_EXAMPLES = example(
    "liqf ingest gmx --chain arbitrum --rpc https://arb1.example/rpc --estimate",
    "liqf ingest gmx --chain arbitrum --from-block 391000000 --to-block 391100000   (RPC URL in LIQF_RPC_ARBITRUM)",
)
RESERVES_EXAMPLES = example(
    "liqf ingest reserves --chain arbitrum --estimate   (RPC URL in LIQF_RPC_ARBITRUM)",
    "liqf ingest reserves --chain arbitrum --rpc https://arb1.example/rpc --registry my_wallets.toml",
)

REGISTRY_HELP = (
    "Your own registry TOML, read over the shipped one (same format; default: $LIQF_REGISTRY). "
    "Its entries count as verified."
)


def _rpc_url(rpc: str | None, env: str) -> str:
    url = rpc or os.environ.get(env)
    if not url:
        raise fail("no JSON-RPC endpoint", f"pass --rpc URL or set {env} (keyed URLs belong in the environment)")
    return url


def ingest_gmx(
    rpc: Annotated[
        str | None, typer.Option(help="JSON-RPC URL (default: the chain's env var, e.g. LIQF_RPC_ARBITRUM).")
    ] = None,
    chain: Annotated[str, typer.Option(help="Chain in pipelines/config/registry/ (arbitrum, avalanche).")] = "arbitrum",
    from_block: Annotated[
        int | None,
        typer.Option(
            "--from-block", help="First block (default: checkpoint + 1, or the EventEmitter's deployment block)."
        ),
    ] = None,
    to_block: Annotated[
        int | None, typer.Option("--to-block", help="Last block (default: head - confirmations).")
    ] = None,
    confirmations: Annotated[
        int | None, typer.Option(help="Blocks behind the head to stay (default: registry).")
    ] = None,
    emitter: Annotated[str | None, typer.Option(help="EventEmitter address (default: registry).")] = None,
    registry: Annotated[Path | None, typer.Option("--registry", help=REGISTRY_HELP)] = None,
    estimate: Annotated[
        bool,
        typer.Option(
            "--estimate", help="Read the markets, say what the run would fetch and how many RPC calls, and stop."
        ),
    ] = False,
    redecode: Annotated[
        bool,
        typer.Option(
            "--redecode",
            help="Read the markets, then decode the GMX logs the lake already holds again (no eth_getLogs): "
            "e.g. after markets or layouts were added.",
        ),
    ] = False,
) -> None:
    """Ingest GMX v2 position events, liquidations, ADL executions and ADL state from EventEmitter logs,
    with every market of the chain read from GMX's Reader."""
    # heavy (web3, the decoders): imported when the command runs, so `liqf --help` starts fast
    from pipelines.ingest import gmx as gmx_ingest

    def run(reg, client, lake, say):
        if redecode:
            res, reports = gmx_ingest.redecode(lake, client, reg, emitter=emitter)
            say(res.markets.summary())
            return (
                [f"  note: {n}" for n in res.markets.notes]
                + [f"re-decoded {len(reports)} segment file(s)"]
                + [f"  {r.summary()}" for r in reports]
            ), []
        if estimate:
            _stream, planned = gmx_ingest.prepare(
                lake,
                client,
                reg,
                emitter=emitter,
                from_block=from_block,
                to_block=to_block,
                confirmations=confirmations,
            )
            say(f"{planned.markets.summary()} ({client.stats.total_calls:,} RPC calls so far)")
            say(f"would fetch {planned.plan.describe()}")
            return [], []
        with progress.blocks() as bar:
            task = bar.add_task(f"{chain}/{gmx_ingest.STREAM}", total=None)
            res = gmx_ingest.ingest(
                lake,
                client,
                reg,
                emitter=emitter,
                from_block=from_block,
                to_block=to_block,
                confirmations=confirmations,
                progress=_advance(bar, task),
                on_plan=lambda p: (
                    say(f"{p.markets.summary()} ({client.stats.total_calls:,} RPC calls so far)"),
                    say(f"fetching {p.plan.describe()}"),
                ),
            )
        lines = [f"  note: {n}" for n in res.markets.notes] + _sync_lines(res.sync)
        return lines, [res.sync]

    _run(rpc, chain, registry, run, include_unverified=False)


def ingest_reserves(
    rpc: Annotated[str | None, typer.Option(help="JSON-RPC URL (default: the chain's env var).")] = None,
    chain: Annotated[str, typer.Option(help="Chain in pipelines/config/registry/.")] = "arbitrum",
    from_block: Annotated[
        int | None,
        typer.Option(
            "--from-block",
            help="First block for Transfer flows (default: checkpoint + 1, else each stream's first activity).",
        ),
    ] = None,
    to_block: Annotated[
        int | None, typer.Option("--to-block", help="Last block (default: head - confirmations).")
    ] = None,
    confirmations: Annotated[int | None, typer.Option(help="Blocks behind the head (default: registry).")] = None,
    include_unverified: Annotated[
        bool, typer.Option("--include-unverified", help="Also track registry entries marked unverified.")
    ] = False,
    registry: Annotated[Path | None, typer.Option("--registry", help=REGISTRY_HELP)] = None,
    estimate: Annotated[
        bool,
        typer.Option(
            "--estimate",
            help="Find where each flow stream starts, say what the run would fetch and how many RPC calls, and stop.",
        ),
    ] = False,
) -> None:
    """Read ERC-20 balances of registry addresses and ingest their Transfer flows (then: hyperliquid_reserve_check)."""
    # heavy (web3): imported when the command runs, so `liqf --help` starts fast
    from pipelines.ingest import onchain

    def run(reg, client, lake, say):
        onchain.check_chain(client, reg)
        conf = reg.confirmations if confirmations is None else confirmations
        head = client.block_number()
        streams = onchain.flow_streams(reg, rpc=client, head=head - conf, lake=lake, from_block=from_block)
        plans = [
            onchain.plan_stream(
                lake,
                s,
                head=head,
                from_block=from_block,
                to_block=to_block,
                confirmations=conf,
                max_range=client.max_range,
                reorg_depth=reg.reorg_depth,
            )
            for s in streams
        ]
        total = sum(p.get_logs_calls for p in plans)
        for p in plans:
            say(f"{'would fetch' if estimate else 'fetching'} {p.describe()}")
        if len(plans) > 1:
            say(f"in all about {total:,} eth_getLogs call(s)")
        if estimate:
            return [], []
        lines: list[str] = []
        results = []
        with progress.blocks() as bar:
            for stream in streams:
                task = bar.add_task(f"{chain}/{stream.name}", total=None)
                res = onchain.sync_stream(
                    lake,
                    client,
                    stream,
                    from_block=from_block,
                    to_block=to_block,
                    confirmations=conf,
                    reorg_depth=reg.reorg_depth,
                    progress=_advance(bar, task),
                )
                bar.remove_task(task)
                lines.extend(_sync_lines(res))
                results.append(res)
        rep = onchain.read_balances(lake, client, reg, block=to_block, confirmations=conf)
        lines.append(rep.summary())
        lines.extend(f"  note: {n}" for n in rep.notes)
        return lines, results

    _run(rpc, chain, registry, run, include_unverified=include_unverified)


def _advance(bar, task):
    return lambda n, total: (bar.update(task, total=total), bar.advance(task, n))


def _sync_lines(res) -> list[str]:
    return [res.summary(), *(f"  {r.summary()}" for r in res.reports), *(f"  note: {n}" for n in res.notes)]


def _run(rpc, chain, registry_file, body, *, include_unverified):
    """Load the registry, connect, run ``body(registry, client, lake, say)``, print its lines, the RPC
    calls made and the catalog; one-line errors with what to do next."""
    # heavy: loaded only when the command runs, so `liqf --help` starts fast
    from pipelines.ingest import onchain
    from pipelines.lake import LakePathError
    from pipelines.venues.evm import EvmRpc, HttpTransport, RpcError

    try:
        reg = onchain.load_registry(chain, include_unverified=include_unverified, user_file=registry_file)
    except (onchain.OnchainError, LakePathError) as exc:
        raise fail(
            str(exc), "chains are the *.toml files in pipelines/config/registry/, or pass --registry FILE"
        ) from None
    url = _rpc_url(rpc, reg.rpc_env)
    client = EvmRpc(HttpTransport(url), max_range=reg.max_range)
    say = lambda text: console.print(text, highlight=False)  # noqa: E731
    try:
        lines, _results = body(reg, client, settings.lake, say)
    except onchain.OnchainError as exc:
        raise fail(str(exc), "check --chain, --rpc and --registry") from None
    except RpcError as exc:
        raise fail(
            f"RPC error from {client.label}: {exc}",
            "retry later, lower max_range in the registry, or use another endpoint",
        ) from None
    finally:
        client.close()
    for line in lines:
        out.print(line, highlight=False)
    out.print(f"{client.stats.describe()} to {client.label}", highlight=False)
    if not lines:
        return
    result = refresh_catalog()
    assert result is not None
    views = ", ".join(
        f"{v} {result.views.get(v, 0):,}"
        for v in ("fills", "gmx_position_events", "gmx_markets", "onchain_flows", "onchain_balances")
        if v in result.views
    )
    out.print(f"catalog {result.db_path}: {views}", highlight=False)
