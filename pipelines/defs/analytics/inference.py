"""Rule inference and exemption test assets, and the sensor that runs them after an ADL episode."""

import dagster as dg

from pipelines.analysis import inference
from pipelines.defs.lake.resources import LakeResource

GROUP = "analytics"


class RuleInferenceConfig(dg.Config):
    """Window, false-discovery rate and Monte-Carlo size of the exemption test."""

    venue: str = "hyperliquid"
    since_ms: int | None = None
    until_ms: int | None = None
    q: float = 0.05
    draws: int = 1000
    seed: int = 0


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "adl_rule_fits",
            description="How well every documented ADL rule explains the observed steps (violation rate, AUC, "
            "top-k precision, Kendall tau, NDCG, Plackett-Luce likelihood and AIC, allocation fit), and the "
            "inferred rule with its margin of evidence.",
            deps=["adl_steps", "adl_pools"],
            group_name=GROUP,
            kinds={"parquet", "statsmodels"},
        ),
        dg.AssetSpec(
            "exemption_flags",
            description="Per eligible account: expected vs observed ADL selections under the inferred rule with "
            "calibrated noise, Poisson-binomial p-value and Benjamini-Hochberg q-value, with evidence for flags.",
            deps=["adl_steps", "adl_pools"],
            group_name=GROUP,
            kinds={"parquet", "scipy"},
        ),
    ],
    code_version="1",
)
def adl_rule_inference(config: RuleInferenceConfig, lake: LakeResource):
    """Infer the ADL selection rule actually used, then test every eligible account for exemption."""
    out = inference.run(lake.lake(), venue=config.venue, since_ms=config.since_ms, until_ms=config.until_ms,
                        q=config.q, draws=config.draws, seed=config.seed, reconstruct_if_missing=False)
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
        "adl_steps", "adl_pools", "adl_rule_fits", "exemption_flags", "adl_waves", "adl_haircuts",
        "policy_counterfactuals", "cascade_timeline", "backstop_coverage", "lake_catalog",
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
