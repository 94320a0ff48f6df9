"""CLI commands of the onchain area, registered on the main `liqf` app by pipelines.cli."""

from __future__ import annotations

import os
from typing import Annotated, Optional

import typer


def _rpc_url(rpc: str | None, env: str) -> str:
    url = rpc or os.environ.get(env)
    if not url:
        from pipelines.cli import fail

        raise fail(f"no JSON-RPC endpoint", f"pass --rpc URL or set {env} (keyed URLs belong in the environment)")
    return url


def register(app: typer.Typer, ingest_app: typer.Typer) -> None:
    """Add this area's commands (to `app`) and ingest subcommands (to `ingest_app`)."""

    @ingest_app.command("gmx")
    def ingest_gmx(
        rpc: Annotated[Optional[str], typer.Option(help="JSON-RPC URL (default: the chain's env var, e.g. LIQF_RPC_ARBITRUM).")] = None,
        chain: Annotated[str, typer.Option(help="Chain in pipelines/config/registry/ (arbitrum, avalanche).")] = "arbitrum",
        from_block: Annotated[Optional[int], typer.Option("--from-block", help="First block (default: checkpoint + 1, or the EventEmitter's deployment block).")] = None,
        to_block: Annotated[Optional[int], typer.Option("--to-block", help="Last block (default: head - confirmations).")] = None,
        confirmations: Annotated[Optional[int], typer.Option(help="Blocks behind the head to stay (default: registry).")] = None,
        emitter: Annotated[Optional[str], typer.Option(help="EventEmitter address (default: registry).")] = None,
    ) -> None:
        """Ingest GMX v2 position events, liquidations, ADL executions and ADL state from EventEmitter logs."""
        from pipelines.ingest.gmx import gmx_stream

        _run_streams(rpc, chain, lambda reg: [gmx_stream(reg, emitter=emitter, from_block=from_block)],
                     from_block=from_block, to_block=to_block, confirmations=confirmations, balances=False)

    @ingest_app.command("reserves")
    def ingest_reserves(
        rpc: Annotated[Optional[str], typer.Option(help="JSON-RPC URL (default: the chain's env var).")] = None,
        chain: Annotated[str, typer.Option(help="Chain in pipelines/config/registry/.")] = "arbitrum",
        from_block: Annotated[Optional[int], typer.Option("--from-block", help="First block for Transfer flows (default: checkpoint + 1).")] = None,
        to_block: Annotated[Optional[int], typer.Option("--to-block", help="Last block (default: head - confirmations).")] = None,
        confirmations: Annotated[Optional[int], typer.Option(help="Blocks behind the head (default: registry).")] = None,
        include_unverified: Annotated[bool, typer.Option("--include-unverified", help="Also track registry entries marked unverified.")] = False,
    ) -> None:
        """Read ERC-20 balances of registry addresses and ingest their Transfer flows (then: hyperliquid_reserve_check)."""
        from pipelines.ingest.onchain import flow_streams

        _run_streams(rpc, chain, flow_streams, from_block=from_block, to_block=to_block, confirmations=confirmations,
                     balances=True, include_unverified=include_unverified)


def _run_streams(rpc, chain, make_streams, *, from_block, to_block, confirmations, balances, include_unverified=False):
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from pipelines import catalog as catalog_mod
    from pipelines.cli import console, fail, out, settings
    from pipelines.ingest import onchain
    from pipelines.lake import LakePathError
    from pipelines.venues.evm import EvmRpc, HttpTransport, RpcError

    try:
        registry = onchain.load_registry(chain, include_unverified=include_unverified)
    except (onchain.OnchainError, LakePathError) as exc:
        raise fail(str(exc), "chains are the *.toml files in pipelines/config/registry/") from None
    url = _rpc_url(rpc, registry.rpc_env)
    client = EvmRpc(HttpTransport(url), max_range=registry.max_range)
    conf = registry.confirmations if confirmations is None else confirmations
    lines: list[str] = []
    try:
        onchain.check_chain(client, registry)
        streams = make_streams(registry)
        if not streams and not balances:
            raise onchain.OnchainError(f"{chain}: nothing to ingest in the registry")
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed:,}/{task.total:,} blocks"),
                      TimeElapsedColumn(), console=console, transient=True, disable=not console.is_terminal) as bar:
            for stream in streams:
                task = bar.add_task(f"{chain}/{stream.name}", total=None)
                res = onchain.sync_stream(
                    settings.lake, client, stream, from_block=from_block, to_block=to_block, confirmations=conf,
                    reorg_depth=registry.reorg_depth,
                    progress=lambda n, total, t=task: (bar.update(t, total=total), bar.advance(t, n)),
                )
                bar.remove_task(task)
                lines.append(res.summary())
                lines.extend(f"  {r.summary()}" for r in res.reports)
                lines.extend(f"  note: {n}" for n in res.notes)
        if balances:
            rep = onchain.read_balances(settings.lake, client, registry, block=to_block, confirmations=conf)
            lines.append(rep.summary())
    except onchain.OnchainError as exc:
        raise fail(str(exc), "check --chain and --rpc") from None
    except RpcError as exc:
        raise fail(f"RPC error from {client.label}: {exc}", "retry later, lower max_range in the registry, or use another endpoint") from None
    finally:
        client.close()
    result = catalog_mod.refresh(settings.lake, settings.db)
    for line in lines:
        out.print(line, highlight=False)
    views = ", ".join(f"{v} {result.views.get(v, 0):,}" for v in ("fills", "gmx_position_events", "onchain_flows", "onchain_balances")
                      if v in result.views)
    out.print(f"catalog {result.db_path}: {views}", highlight=False)
