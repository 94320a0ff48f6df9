"""The DuckDB catalog over the lake."""

import dagster as dg

from pipelines.defs.lake.resources import LakeResource


@dg.asset(
    deps=[
        "hyperliquid_node_fills",
        "hyperliquid_node_fills_hourly",
        "hyperliquid_position_snapshots",
        "hyperliquid_asset_ctxs",
        "hyperliquid_tracked_accounts",
        "adl_steps",
        "adl_pools",
        "adl_rule_fits",
        "exemption_flags",
    ],
    group_name="catalog",
    kinds={"duckdb"},
    pool="duckdb",
    automation_condition=dg.AutomationCondition.eager(),
    code_version="1",
)
def lake_catalog(lake: LakeResource) -> dg.MaterializeResult:
    """The DuckDB file of views over the lake (``sql/catalog/*.sql``): what ad-hoc SQL and reports query."""
    result = lake.refresh_catalog()
    return dg.MaterializeResult(
        metadata={
            "db_path": dg.MetadataValue.path(str(result.db_path)),
            "row_counts": dg.MetadataValue.json(result.views),
            **{f"rows_{view}": dg.MetadataValue.int(n) for view, n in result.views.items()},
        }
    )
