"""Contagion stress test assets: the shipped scenarios (docs/scenarios/*.toml) re-run whenever the lake
inputs their ``from_lake`` values read from are updated (declarative automation, eager), with a report
per scenario (forensics.contagion; docs/contagion.md)."""

from pathlib import Path

import dagster as dg

from forensics.contagion.scenario import ScenarioError
from pipelines import stress, stress_report
from pipelines.defs.lake.resources import PROJECT_ROOT, LakeResource

GROUP = "stress"
SCENARIO_DIR = PROJECT_ROOT / "docs" / "scenarios"
# the tables from_lake references read: vault equity (tracked accounts), ADL waves and haircuts,
# exemption flags, and the CEX insurance funds
LAKE_INPUTS = [
    "hyperliquid_tracked_accounts",
    "adl_waves",
    "adl_haircuts",
    "exemption_flags",
    "binance_liquidation_data",
    "bybit_liquidation_data",
    "okx_liquidation_data",
]


class StressScenariosConfig(dg.Config):
    """Which scenario files to run and where their reports go (empty out_root: no report)."""

    scenario_dir: str = str(SCENARIO_DIR)
    out_root: str = str(PROJECT_ROOT / "data" / "reports" / "stress")
    pdf: bool = True


def _spec(key: str, description: str) -> dg.AssetSpec:
    return dg.AssetSpec(
        key,
        description=description,
        deps=LAKE_INPUTS,
        group_name=GROUP,
        kinds={"parquet", "python"},
        automation_condition=dg.AutomationCondition.eager(),
    )


@dg.multi_asset(
    specs=[
        _spec(
            "stress_runs", "One row per shipped scenario run: model, sourced and lake-resolved inputs, outcome totals."
        ),
        _spec(
            "stress_defaults",
            "One row per defaulted node: contagion round and cause (solvency, cascade, liquidity, "
            "freeze, custody, fire_sale).",
        ),
        _spec(
            "stress_venues", "One row per venue: bad debt, insurance fund used, shortfall, haircut, residual, default."
        ),
        _spec(
            "stress_sweeps", "One row per sweep point: exempt share, insurance scale, freeze, shock and the outcome."
        ),
    ],
    code_version="1",
)
def stress_scenarios(context: dg.AssetExecutionContext, config: StressScenariosConfig, lake: LakeResource):
    """Run every scenario file in the scenario directory against the current lake, write the four stress
    tables and a report (HTML + PDF) per scenario."""
    files = sorted(Path(config.scenario_dir).glob("*.toml"))
    if not files:
        raise dg.Failure(f"no scenario files in {config.scenario_dir}")
    rows, lake_inputs, reports = [], 0, {}
    for f in files:
        try:
            out = stress.run(f, lake=lake.lake())
        except ScenarioError as exc:
            raise dg.Failure(str(exc)) from None
        s = out["summary"]
        lake_inputs += sum(1 for p in out["inputs"] if p["confidence"] == "lake")
        rows.append(
            f"| {out['scenario']} | {s['defaults']} | {s['venue_defaults']} | {s['max_haircut']:.1%} | "
            f"{s['shortfall']:,.0f} | {out['seconds']} |"
        )
        if config.out_root:
            paths = stress_report.write(
                out, Path(config.out_root) / out["scenario"], pdf=config.pdf, command="dagster asset stress_scenarios"
            )
            reports[out["scenario"]] = str(paths.html)
        context.log.info(f"{f.name}: {s['defaults']} defaults, max haircut {s['max_haircut']:.1%}")
    lake.refresh_catalog()
    table = (
        "| scenario | defaults | venue defaults | max haircut | shortfall | s |\n|---|---|---|---|---|---|\n"
        + "\n".join(rows)
    )
    common = {"scenarios": dg.MetadataValue.int(len(files)), "lake_inputs": dg.MetadataValue.int(lake_inputs)}
    yield dg.MaterializeResult(
        asset_key="stress_runs",
        metadata={**common, "summary": dg.MetadataValue.md(table), "reports": dg.MetadataValue.json(reports)},
    )
    for key in ("stress_defaults", "stress_venues", "stress_sweeps"):
        yield dg.MaterializeResult(asset_key=key, metadata=common)


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=[stress_scenarios])
