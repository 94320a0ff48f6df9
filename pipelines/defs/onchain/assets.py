"""On-chain assets: GMX v2 EventEmitter logs and venue reserves on Arbitrum, incremental by checkpoint."""

import dagster as dg

from pipelines.defs.lake.resources import LakeResource
from pipelines.defs.onchain.resources import EvmChainResource
from pipelines.ingest import gmx as gmx_ingest
from pipelines.ingest import onchain
from pipelines.ingest.report import IngestReport

GROUP = "onchain"


def _metadata(results: list[onchain.SyncResult], extra: list[IngestReport] = ()) -> dict[str, dg.MetadataValue]:
    reports = [r for res in results for r in res.reports] + list(extra)
    return {
        "streams": dg.MetadataValue.md("\n".join(f"- {res.summary()}" for res in results) or "none"),
        "inputs": dg.MetadataValue.md("\n".join(f"- {r.summary()}" for r in reports) or "no rewritten segments"),
        "logs": dg.MetadataValue.int(sum(res.logs for res in results)),
        "records_quarantined": dg.MetadataValue.int(sum(r.quarantined for r in reports)),
        "reorgs": dg.MetadataValue.json([res.reorg_from for res in results if res.reorg_from is not None]),
    }


@dg.asset(group_name=GROUP, kinds={"parquet", "python"}, code_version="1")
def gmx_v2_arbitrum_events(
    context: dg.AssetExecutionContext, lake: LakeResource, arbitrum_rpc: EvmChainResource
) -> dg.MaterializeResult:
    """GMX v2 position increases/decreases, liquidations, ADL executions and ADL state on Arbitrum, from
    the EventEmitter's logs since the last checkpoint (confirmations and reorg re-check from the registry),
    into ``gmx_position_events``, ``gmx_adl_states``, ``fills`` (venue gmx_v2) and ``onchain_logs``; every
    market read from GMX's Reader into ``gmx_markets`` first."""
    reg = arbitrum_rpc.registry()
    rpc = arbitrum_rpc.rpc()
    try:
        run = gmx_ingest.ingest(lake.lake(), rpc, reg, on_plan=lambda p: context.log.info(p.plan.describe()))
    finally:
        rpc.close()
    context.log.info(run.markets.summary())
    context.log.info(run.sync.summary())
    context.log.info(rpc.stats.describe())
    meta = _metadata([run.sync])
    meta["markets"] = dg.MetadataValue.int(len(run.markets.markets))
    meta["rpc_calls"] = dg.MetadataValue.json(rpc.stats.calls)
    return dg.MaterializeResult(metadata=meta)


@dg.asset(group_name=GROUP, kinds={"parquet", "python"}, code_version="1")
def arbitrum_venue_reserves(
    context: dg.AssetExecutionContext, lake: LakeResource, arbitrum_rpc: EvmChainResource
) -> dg.MaterializeResult:
    """ERC-20 balances and Transfer flows of the registry's labelled addresses on Arbitrum (the
    Hyperliquid bridge among them) into ``onchain_balances`` and ``onchain_flows``; the catalog view
    ``hyperliquid_reserve_check`` compares the bridge's USDC with the nearest account snapshot."""
    reg = arbitrum_rpc.registry()
    rpc = arbitrum_rpc.rpc()
    try:
        onchain.check_chain(rpc, reg)
        head = rpc.block_number()
        streams = onchain.flow_streams(reg, rpc=rpc, head=head - reg.confirmations, lake=lake.lake())
        for s in streams:
            context.log.info(
                onchain.plan_stream(
                    lake.lake(),
                    s,
                    head=head,
                    confirmations=reg.confirmations,
                    max_range=rpc.max_range,
                    reorg_depth=reg.reorg_depth,
                ).describe()
            )
        results = [
            onchain.sync_stream(lake.lake(), rpc, s, confirmations=reg.confirmations, reorg_depth=reg.reorg_depth)
            for s in streams
        ]
        balances = onchain.read_balances(lake.lake(), rpc, reg)
    finally:
        rpc.close()
    for res in results:
        context.log.info(res.summary())
    return dg.MaterializeResult(metadata=_metadata(results, [balances]))


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=[gmx_v2_arbitrum_events, arbitrum_venue_reserves])
