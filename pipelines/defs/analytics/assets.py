"""The whole ADL pools as a table, for SQL (``adl_pools``): every eligible position of every ADL action with
its features and outcome. Not on the audit's path (the audit computes pools on the fly); materialize it
when you want to query pools."""

import dagster as dg

from pipelines.analysis import reconstruct
from pipelines.defs.lake.resources import LakeResource

GROUP = "analytics"


class AdlPoolsConfig(dg.Config):
    """Window and step clustering of the reconstruction (defaults: everything in the lake, 5 s waves)."""

    venue: str = "hyperliquid"
    since_ms: int | None = None
    until_ms: int | None = None
    gap_seconds: float = 5.0


@dg.asset(
    deps=["hyperliquid_node_fills", "hyperliquid_position_snapshots", "hyperliquid_asset_ctxs"],
    group_name=GROUP,
    kinds={"parquet", "numba"},
    code_version="2",
)
def adl_pools(config: AdlPoolsConfig, lake: LakeResource) -> dg.MaterializeResult:
    """One row per (ADL action, eligible candidate): every opposite-side position in the coin just before the
    action, replayed from the snapshot, with ranking features (size, entry, mark, uPnL, PnL%, account value and
    its interval, leverage definitions, margin mode, age), integrity notes and the outcome."""
    out = reconstruct.run(
        lake.lake(),
        venue=config.venue,
        since_ms=config.since_ms,
        until_ms=config.until_ms,
        gap_seconds=config.gap_seconds,
    )
    return dg.MaterializeResult(
        metadata={
            "venue": dg.MetadataValue.text(out["venue"]),
            "fills_replayed": dg.MetadataValue.int(out["fills"]),
            "seconds": dg.MetadataValue.json(out["seconds"]),
            "pool_rows": dg.MetadataValue.int(out["pool_rows"]),
            "selected": dg.MetadataValue.int(out["selected"]),
            "mark_sources": dg.MetadataValue.json(out["mark_sources"]),
            "path": dg.MetadataValue.path(out["paths"][0]),
        }
    )


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=[adl_pools])
