"""Analytics assets: ADL steps and their eligible candidate pools, reconstructed from the lake."""

import dagster as dg

from pipelines.analysis import reconstruct
from pipelines.defs.lake.resources import LakeResource

GROUP = "analytics"


class AdlReconstructionConfig(dg.Config):
    """Window and step clustering of the reconstruction (defaults: everything in the lake, 5 s waves)."""

    venue: str = "hyperliquid"
    since_ms: int | None = None
    until_ms: int | None = None
    gap_seconds: float = 5.0


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "adl_steps",
            description="One row per ADL step: the ADL legs of one (block, coin, liquidated account, liquidated "
            "side) in tid order, with its wave, size, notional, mark and reconstructed pool size.",
            deps=["hyperliquid_node_fills", "hyperliquid_position_snapshots", "hyperliquid_asset_ctxs"],
            group_name=GROUP,
            kinds={"parquet", "polars"},
        ),
        dg.AssetSpec(
            "adl_pools",
            description="One row per (ADL step, eligible candidate): every opposite-side position in the coin "
            "just before the step, replayed from the snapshot, with ranking features (size, entry, mark, uPnL, "
            "PnL%, account value, leverage definitions, margin mode, age) and the outcome (selected, order, size).",
            deps=["hyperliquid_node_fills", "hyperliquid_position_snapshots", "hyperliquid_asset_ctxs"],
            group_name=GROUP,
            kinds={"parquet", "polars"},
        ),
    ],
    code_version="1",
)
def adl_reconstruction(config: AdlReconstructionConfig, lake: LakeResource):
    """Event-sourced replay of positions from the snapshot through every fill, then ADL steps and pools."""
    out = reconstruct.run(
        lake.lake(),
        venue=config.venue,
        since_ms=config.since_ms,
        until_ms=config.until_ms,
        gap_seconds=config.gap_seconds,
    )
    common = {
        "venue": dg.MetadataValue.text(out["venue"]),
        "source_key": dg.MetadataValue.text(out["source_key"]),
        "fills_replayed": dg.MetadataValue.int(out["fills"]),
        "seconds": dg.MetadataValue.json(out["seconds"]),
    }
    yield dg.MaterializeResult(
        asset_key="adl_steps",
        metadata={
            **common,
            "steps": dg.MetadataValue.int(out["steps"]),
            "waves": dg.MetadataValue.int(out["waves"]),
            "path": dg.MetadataValue.path(out["paths"][0]),
        },
    )
    yield dg.MaterializeResult(
        asset_key="adl_pools",
        metadata={
            **common,
            "pool_rows": dg.MetadataValue.int(out["pool_rows"]),
            "selected": dg.MetadataValue.int(out["selected"]),
            "mark_sources": dg.MetadataValue.json(out["mark_sources"]),
            "path": dg.MetadataValue.path(out["paths"][1]),
        },
    )


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=[adl_reconstruction])
