"""`liqf ingest gmx` and `liqf ingest reserves` (registered on the ingest group by :mod:`pipelines.cli.ingest`)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Annotated

import typer
from rich.progress import TaskID

from pipelines.cli import progress
from pipelines.cli.context import fail, out, refresh_catalog, settings
from pipelines.ingest import onchain
from pipelines.lake import LakePathError
from pipelines.venues.evm import EvmRpc, HttpTransport, RpcError
from pipelines.venues.gmx import gmx_stream


def _rpc_url(rpc: str | None, env: str) -> str:
    url = rpc or os.environ.get(env)
    if not url:
        raise fail("no JSON-RPC endpoint", f"pass --rpc URL or set {env} (keyed URLs belong in the environment)")
    return url


def ingest_gmx(
    rpc: Annotated[str | None, typer.Option(help="JSON-RPC URL (default: the chain's env var, e.g. LIQF_RPC_ARBITRUM).")] = None,
    chain: Annotated[str, typer.Option(help="Chain in pipelines/config/registry/ (arbitrum, avalanche).")] = "arbitrum",
    from_block: Annotated[int | None, typer.Option("--from-block", help="First block (default: checkpoint + 1, or the EventEmitter's deployment block).")] = None,
    to_block: Annotated[int | None, typer.Option("--to-block", help="Last block (default: head - confirmations).")] = None,
    confirmations: Annotated[int | None, typer.Option(help="Blocks behind the head to stay (default: registry).")] = None,
    emitter: Annotated[str | None, typer.Option(help="EventEmitter address (default: registry).")] = None,
) -> None:
    """Ingest GMX v2 position events, liquidations, ADL executions and ADL state from EventEmitter logs."""
    _run_streams(rpc, chain, lambda reg: [gmx_stream(reg, emitter=emitter, from_block=from_block)],
                 from_block=from_block, to_block=to_block, confirmations=confirmations, balances=False)


def ingest_reserves(
    rpc: Annotated[str | None, typer.Option(help="JSON-RPC URL (default: the chain's env var).")] = None,
    chain: Annotated[str, typer.Option(help="Chain in pipelines/config/registry/.")] = "arbitrum",
    from_block: Annotated[int | None, typer.Option("--from-block", help="First block for Transfer flows (default: checkpoint + 1).")] = None,
    to_block: Annotated[int | None, typer.Option("--to-block", help="Last block (default: head - confirmations).")] = None,
    confirmations: Annotated[int | None, typer.Option(help="Blocks behind the head (default: registry).")] = None,
    include_unverified: Annotated[bool, typer.Option("--include-unverified", help="Also track registry entries marked unverified.")] = False,
) -> None:
    """Read ERC-20 balances of registry addresses and ingest their Transfer flows (then: hyperliquid_reserve_check)."""
    _run_streams(rpc, chain, onchain.flow_streams, from_block=from_block, to_block=to_block, confirmations=confirmations,
                 balances=True, include_unverified=include_unverified)


def _run_streams(rpc: str | None, chain: str, make_streams: Callable[[onchain.ChainRegistry], list[onchain.Stream]], *,
                 from_block: int | None, to_block: int | None, confirmations: int | None, balances: bool,
                 include_unverified: bool = False) -> None:
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
        with progress.blocks() as bar:
            for stream in streams:
                task = bar.add_task(f"{chain}/{stream.name}", total=None)

                def advance(n: int, total: int, task: TaskID = task) -> None:
                    bar.update(task, total=total)
                    bar.advance(task, n)

                res = onchain.sync_stream(
                    settings.lake, client, stream, from_block=from_block, to_block=to_block, confirmations=conf,
                    reorg_depth=registry.reorg_depth, progress=advance,
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
    result = refresh_catalog()
    assert result is not None
    for line in lines:
        out.print(line, highlight=False)
    views = ", ".join(f"{v} {result.views.get(v, 0):,}" for v in ("fills", "gmx_position_events", "onchain_flows", "onchain_balances")
                      if v in result.views)
    out.print(f"catalog {result.db_path}: {views}", highlight=False)
