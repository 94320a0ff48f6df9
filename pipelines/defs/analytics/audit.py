"""The ADL audit asset (one pass from the normalized tables to the rule, the flags and their evidence), the
analysis job and the sensor that runs it after an ADL episode."""

import dagster as dg

from forensics.audit.diagnostics import DIAGNOSTIC_STEPS
from pipelines.analysis import audit
from pipelines.defs.lake.resources import LakeResource

GROUP = "analytics"
INPUTS = ["hyperliquid_node_fills", "hyperliquid_position_snapshots", "hyperliquid_asset_ctxs"]


class AdlAuditConfig(dg.Config):
    """Window, false-discovery rate of the exemption test, and the diagnostics' sample sizes and seed."""

    venue: str = "hyperliquid"
    since_ms: int | None = None
    until_ms: int | None = None
    q: float = 0.05
    diagnostic_steps: int = DIAGNOSTIC_STEPS
    logit: str = "auto"
    logit_rows: int = audit.LOGIT_ROWS
    seed: int = 0


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "adl_steps",
            description="One row per ADL action: consecutive ADL legs of one transaction against one liquidated "
            "account, coin and side, with its wave, size, notional, mark and reconstructed pool size.",
            deps=INPUTS,
            group_name=GROUP,
            kinds={"parquet", "numba"},
        ),
        dg.AssetSpec(
            "adl_rule_fits",
            description="How well every documented ADL rule explains the observed ADL actions on rank evidence "
            "(exemptions needed, residual skips, shape violations, cost; AUC, and sampled Kendall tau, NDCG, "
            "Plackett-Luce AIC as diagnostics), and the identified rule with its margin.",
            deps=INPUTS,
            group_name=GROUP,
            kinds={"parquet", "statsmodels"},
        ),
        dg.AssetSpec(
            "exemption_flags",
            description="Per account: ADL episodes where the identified rule ranked it above the cut, how often it "
            "was passed over there, exact binomial p-value against the calibrated skip rate and Benjamini-Hochberg "
            "q-value, with the skips as evidence for flags.",
            deps=INPUTS,
            group_name=GROUP,
            kinds={"parquet", "scipy"},
        ),
    ],
    code_version="3",
)
def adl_audit(config: AdlAuditConfig, lake: LakeResource):
    """Replay from the snapshot through every ADL action, identify the selection rule actually used and test
    every eligible account for exemption (pools computed on the fly, never written)."""
    result = audit.run(
        lake.lake(),
        venue=config.venue,
        since_ms=config.since_ms,
        until_ms=config.until_ms,
        q=config.q,
        seed=config.seed,
        diagnostic_steps=config.diagnostic_steps or None,
        logit=config.logit,
        logit_rows=config.logit_rows,
    )
    body = result.as_json()
    yield dg.MaterializeResult(
        asset_key="adl_steps",
        metadata={
            "actions": dg.MetadataValue.int(body["steps"]),
            "pool_rows": dg.MetadataValue.int(body["pools"]),
            "seconds": dg.MetadataValue.json(body["seconds"]),
            "path": dg.MetadataValue.path(result.outputs["adl_steps"]),
        },
    )
    yield dg.MaterializeResult(
        asset_key="adl_rule_fits",
        metadata={
            "best_rule": dg.MetadataValue.text(body["best_rule"] or "none"),
            "verdict": dg.MetadataValue.text(body["verdict"]),
            "steps": dg.MetadataValue.int(body["steps"]),
            "rules": dg.MetadataValue.json(body["rules"]),
            "conditional_logit": dg.MetadataValue.json(body["conditional_logit"]),
        },
    )
    yield dg.MaterializeResult(
        asset_key="exemption_flags",
        metadata={
            "flagged": dg.MetadataValue.int(len(body["flagged"])),
            "flagged_accounts": dg.MetadataValue.json(body["flagged"]),
            "q_threshold": dg.MetadataValue.float(config.q),
            "note": dg.MetadataValue.text(body["exemption"]["note"] or ""),
        },
    )


adl_analysis_job = dg.define_asset_job(
    "adl_analysis_job",
    selection=dg.AssetSelection.assets(
        "adl_steps",
        "adl_rule_fits",
        "exemption_flags",
        "adl_waves",
        "adl_haircuts",
        "policy_counterfactuals",
        "cascade_timeline",
        "backstop_coverage",
        "lake_catalog",
        "audit_report",
    ),
)


@dg.asset_sensor(asset_key=dg.AssetKey("hyperliquid_node_fills"), job=adl_analysis_job, minimum_interval_seconds=60)
def adl_episode_sensor(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry):
    """Start the ADL analysis, haircut accounting and the audit report when newly ingested fills contain ADL legs."""
    materialization = asset_event.asset_materialization
    adl_legs = materialization.metadata.get("adl_legs") if materialization else None
    if adl_legs is None or adl_legs.value == 0:
        return dg.SkipReason("the new fills contain no ADL legs")
    # one analysis per ingest run that brought ADL legs
    return dg.RunRequest(run_key=f"adl-{asset_event.run_id}", tags={"liqf/trigger": "adl_episode"})


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=[adl_audit], jobs=[adl_analysis_job], sensors=[adl_episode_sensor])
