"""Rule inference and exemption test assets, and the sensor that runs them after an ADL episode."""

import dagster as dg

from pipelines.analysis import inference
from pipelines.defs.lake.resources import LakeResource

GROUP = "analytics"


class RuleInferenceConfig(dg.Config):
    """Window, false-discovery rate of the exemption test, and the diagnostics' sample sizes and seed."""

    venue: str = "hyperliquid"
    since_ms: int | None = None
    until_ms: int | None = None
    q: float = 0.05
    diagnostic_steps: int = inference.DIAGNOSTIC_STEPS
    logit: str = "auto"
    logit_rows: int = inference.LOGIT_ROWS
    seed: int = 0


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "adl_rule_fits",
            description="How well every documented ADL rule explains the observed ADL actions on rank evidence "
            "(exemptions needed, residual skips, shape violations, cost; AUC, and sampled Kendall tau, NDCG, "
            "Plackett-Luce AIC as diagnostics), and the identified rule with its margin.",
            deps=["adl_steps", "adl_pools"],
            group_name=GROUP,
            kinds={"parquet", "statsmodels"},
        ),
        dg.AssetSpec(
            "exemption_flags",
            description="Per account: ADL actions where the identified rule ranked it above the cut, how often it "
            "was passed over there, exact binomial p-value against the calibrated skip rate and Benjamini-Hochberg "
            "q-value, with the skips as evidence for flags.",
            deps=["adl_steps", "adl_pools"],
            group_name=GROUP,
            kinds={"parquet", "scipy"},
        ),
    ],
    code_version="2",
)
def adl_rule_inference(config: RuleInferenceConfig, lake: LakeResource):
    """Identify the ADL selection rule actually used, then test every eligible account for exemption."""
    out = inference.run(
        lake.lake(),
        venue=config.venue,
        since_ms=config.since_ms,
        until_ms=config.until_ms,
        q=config.q,
        seed=config.seed,
        diagnostic_steps=config.diagnostic_steps or None,
        logit=config.logit,
        logit_rows=config.logit_rows,
        reconstruct_if_missing=False,
    )
    yield dg.MaterializeResult(
        asset_key="adl_rule_fits",
        metadata={
            "best_rule": dg.MetadataValue.text(out["best_rule"] or "none"),
            "verdict": dg.MetadataValue.text(out["verdict"]),
            "steps": dg.MetadataValue.int(out["steps"]),
            "rules": dg.MetadataValue.json(out["rules"]),
            "conditional_logit": dg.MetadataValue.json(out["conditional_logit"]),
        },
    )
    yield dg.MaterializeResult(
        asset_key="exemption_flags",
        metadata={
            "flagged": dg.MetadataValue.int(len(out["flagged"])),
            "flagged_accounts": dg.MetadataValue.json(out["flagged"]),
            "q_threshold": dg.MetadataValue.float(config.q),
            "note": dg.MetadataValue.text(out["exemption"]["note"] or ""),
        },
    )


adl_analysis_job = dg.define_asset_job(
    "adl_analysis_job",
    selection=dg.AssetSelection.assets(
        "adl_steps",
        "adl_pools",
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
    return dg.Definitions(assets=[adl_rule_inference], jobs=[adl_analysis_job], sensors=[adl_episode_sensor])
