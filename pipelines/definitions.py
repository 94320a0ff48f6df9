"""The Dagster code location: every ``@dg.definitions`` under ``pipelines.defs``, merged."""

import datetime as dt
from pathlib import Path

import dagster as dg

import pipelines.defs

# Assets a risk desk watches: fail when not refreshed within a day, warn after 12 hours.
FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=dt.timedelta(hours=24), warn_window=dt.timedelta(hours=12))
WATCHED = {"hyperliquid_tracked_accounts", "hyperliquid_node_fills", "lake_catalog", "adl_rule_fits", "exemption_flags"}


def _with_freshness(spec: dg.AssetSpec) -> dg.AssetSpec:
    if spec.key.to_user_string() in WATCHED:
        return spec.replace_attributes(freshness_policy=FRESHNESS)
    return spec


@dg.definitions
def defs() -> dg.Definitions:
    loaded = dg.components.load_defs(pipelines.defs, project_root=Path(__file__).resolve().parent.parent)
    return loaded.map_asset_specs(func=_with_freshness)
