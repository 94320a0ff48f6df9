"""Accounting assets: per-wave haircut and overshoot accounting, counterfactual ADL policies, cascade
timeline and backstop coverage (forensics.accounting; docs/accounting.md)."""

import dagster as dg

from pipelines.analysis import accounting
from pipelines.defs.lake.resources import LakeResource

GROUP = "accounting"
_DEPS = ["hyperliquid_node_fills", "hyperliquid_position_snapshots", "hyperliquid_asset_ctxs", "adl_steps", "adl_pools"]


class AdlAccountingConfig(dg.Config):
    """Window, wave gap and evaluation price of the accounting (defaults: everything, 5 s, Chitra's last trade)."""

    venue: str = "hyperliquid"
    since_ms: int | None = None
    until_ms: int | None = None
    gap_seconds: float = 5.0
    price: str = "last_trade"


def _spec(key: str, description: str) -> dg.AssetSpec:
    return dg.AssetSpec(key, description=description, deps=_DEPS, group_name=GROUP, kinds={"parquet", "polars"})


@dg.multi_asset(
    specs=[
        _spec(
            "adl_waves",
            "One row per ADL wave: loser deficit, needed budget, production haircut per horizon "
            "(two-pass replay), overshoot, under-coverage, payout ratio, concentration, PTSR/PMR.",
        ),
        _spec(
            "adl_haircuts",
            "One row per (wave, deleveraged account): production haircut per horizon, needed "
            "budget of its legs, realized vs owed profit.",
        ),
        _spec(
            "policy_counterfactuals",
            "One row per (policy, wave): queues by every documented rule, pro-rata "
            "variants, leverage water-filling and a min-max integer programme raising the same needed budget.",
        ),
        _spec("cascade_timeline", "One row per (block, coin) with liquidations or ADL legs: bursts, matching, order."),
        _spec("backstop_coverage", "The liquidator vault over time: positions, PnL, equity and coverage ratio."),
    ],
    code_version="1",
)
def adl_accounting(config: AdlAccountingConfig, lake: LakeResource):
    """Haircut and overshoot accounting of every ADL wave in the window, with counterfactual policies."""
    out = accounting.run(
        lake.lake(),
        venue=config.venue,
        since_ms=config.since_ms,
        until_ms=config.until_ms,
        gap_seconds=config.gap_seconds,
        price=config.price,
    )
    t = out["totals"]
    common = {
        "venue": dg.MetadataValue.text(out["venue"]),
        "source_key": dg.MetadataValue.text(out["source_key"]),
        "seconds": dg.MetadataValue.float(float(out["seconds"])),
    }
    yield dg.MaterializeResult(
        asset_key="adl_waves",
        metadata={
            **common,
            "waves": dg.MetadataValue.int(len(out["waves"])),
            "deficit_usd": dg.MetadataValue.float(float(t["deficit"])),
            "needed_usd": dg.MetadataValue.float(float(t["needed"])),
            "production_usd": dg.MetadataValue.float(float(t["production"] or 0.0)),
            "overshoot_usd": dg.MetadataValue.float(float(t["overshoot"] or 0.0)),
            "overshoot_band_usd": dg.MetadataValue.json(t["overshoot_band"]),
        },
    )
    yield dg.MaterializeResult(asset_key="adl_haircuts", metadata=common)
    yield dg.MaterializeResult(
        asset_key="policy_counterfactuals", metadata={**common, "policies": dg.MetadataValue.json(out["policies"])}
    )
    yield dg.MaterializeResult(
        asset_key="cascade_timeline",
        metadata={
            **common,
            "timing": dg.MetadataValue.json({k: v for k, v in out["timing"].items() if k != "largest_burst"}),
        },
    )
    yield dg.MaterializeResult(asset_key="backstop_coverage", metadata=common)


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=[adl_accounting])
