"""`liqf demo`: simulate a cascade, serve it on loopback, run the Dagster assets against it, summarize.

Everything runs on this machine: the simulator writes the scenario in Hyperliquid's formats, the
local venue server answers the info API over real HTTP on 127.0.0.1, and the Dagster assets are
materialized in-process into the instance at ``$DAGSTER_HOME`` (so ``dg dev`` shows the run).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from rich.console import Console

from forensics import simulate
from pipelines.defs.accounting.assets import adl_accounting
from pipelines.defs.analytics.assets import adl_pools
from pipelines.defs.analytics.audit import adl_audit
from pipelines.defs.cex.assets import VENUE_ASSETS as CEX_VENUE_ASSETS
from pipelines.defs.cex.assets import cex_adl_episodes
from pipelines.defs.cex.resources import CexApiResource, CexCredentialsResource
from pipelines.defs.hyperliquid.assets import (
    hyperliquid_asset_ctxs,
    hyperliquid_node_fills,
    hyperliquid_position_snapshots,
    hyperliquid_tracked_accounts,
)
from pipelines.defs.hyperliquid.resources import (
    HyperliquidInfoResource,
    HyperliquidNodeDataResource,
    TrackedUsersResource,
)
from pipelines.defs.lake.assets import lake_catalog
from pipelines.defs.lake.resources import LakeResource
from pipelines.defs.reports.assets import audit_report
from pipelines.lake import Lake
from pipelines.sandbox.venue_server import serve
from pipelines.sandbox.venue_server.cex import cex_routes
from pipelines.sandbox.venue_server.cex import generate as generate_cex

# The local server and client both run far above Hyperliquid's 1200 weight/min so the demo's few
# hundred tracked accounts pull in seconds; against a real venue the documented budget applies.
DEMO_WEIGHT_PER_MINUTE = 600_000
# CEX venues the demo pulls from the same loopback server (public data; no keys needed)
DEMO_CEX_ASSETS = {"okx_liquidation_data", "bybit_liquidation_data"}


@dataclass(frozen=True)
class DemoConfig:
    out_dir: Path
    lake: Lake
    db_path: Path
    scale: str = "small"
    policy: str = "hl_index"
    exempt: int = 5
    seed: int = 7


def _instance() -> dg.DagsterInstance:
    try:
        return dg.DagsterInstance.get()
    except Exception:  # no DAGSTER_HOME: an ephemeral instance still runs the assets
        return dg.DagsterInstance.ephemeral()


def materialize_as(
    name: str,
    assets: list,
    *,
    resources: dict,
    instance: dg.DagsterInstance,
    partition_key: str | None = None,
    tags: dict[str, str] | None = None,
    run_config: dict | None = None,
) -> dg.ExecuteInProcessResult:
    """``dg.materialize`` under a job name of our own: the runs show in `dg dev` as ``name``, not as
    ``__ephemeral_asset_job__``."""
    defs = dg.Definitions(assets=assets, jobs=[dg.define_asset_job(name)], resources=resources)
    return defs.resolve_job_def(name).execute_in_process(
        run_config=run_config, instance=instance, partition_key=partition_key, tags=tags
    )


def _days(start_ms: int, end_ms: int) -> list[str]:
    first = dt.datetime.fromtimestamp(start_ms / 1000, dt.UTC).date()
    last = dt.datetime.fromtimestamp(end_ms / 1000, dt.UTC).date()
    return [(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def run(cfg: DemoConfig, console: Console) -> dict:
    t0 = time.perf_counter()
    scenario_dir = cfg.out_dir / "scenario"
    with console.status(
        f"simulating an oct10-like cascade ({cfg.scale}, policy {cfg.policy}, {cfg.exempt} planted exemptions)"
    ):
        scenario = simulate.generate(
            scenario_dir, preset="oct10", scale=cfg.scale, policy=cfg.policy, exempt=cfg.exempt, seed=cfg.seed
        )
    counts = scenario["counts"]
    console.print(
        f"[green]✓[/] simulated {counts['accounts']:,} accounts, {counts['fills']:,} fills, "
        f"{counts['adl_legs']:,} ADL legs in {counts['steps']:,} steps -> {scenario_dir}",
        highlight=False,
    )
    users_file = cfg.out_dir / "tracked_users.txt"
    users_file.write_text("# written by liqf demo from scenario.json\n" + "\n".join(scenario["tracked_users"]) + "\n")
    days = _days(scenario["snapshot_time"], scenario["window"]["end_ms"])

    instance = _instance()
    # the same loopback server also answers CEX APIs (OKX, Bybit, ...) with a generated crash window
    cex_data = generate_cex(scenario["window"]["start_ms"], hours=1, seed=cfg.seed)
    with serve(scenario_dir, rate_limit_per_minute=DEMO_WEIGHT_PER_MINUTE, routes=cex_routes(cex_data)) as server:
        console.print(f"[green]✓[/] local venue server on {server.base_url}", highlight=False)
        resources = {
            "lake": LakeResource(lake_root=str(cfg.lake.root), db_path=str(cfg.db_path)),
            "hyperliquid_node_data": HyperliquidNodeDataResource(root=str(scenario_dir)),
            "hyperliquid_info": HyperliquidInfoResource(
                base_url=server.base_url, weight_per_minute=DEMO_WEIGHT_PER_MINUTE
            ),
            "tracked_users": TrackedUsersResource(users_file=str(users_file)),
            "cex_api": CexApiResource(okx_url=server.base_url, bybit_url=server.base_url),
            "cex_credentials": CexCredentialsResource(),
        }
        cex_assets = [a for a in CEX_VENUE_ASSETS if a.key.to_user_string() in DEMO_CEX_ASSETS]
        assets = [
            hyperliquid_node_fills,
            hyperliquid_position_snapshots,
            hyperliquid_asset_ctxs,
            hyperliquid_tracked_accounts,
            lake_catalog,
        ]
        checks_failed: list[str] = []
        for day in days:
            with console.status(f"materializing Dagster assets for {day}"):
                result = materialize_as(
                    "demo_hyperliquid_ingest",
                    assets,
                    resources=resources,
                    partition_key=day,
                    instance=instance,
                    tags={"liqf/demo": "true"},
                    run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
                )
            if not result.success:
                raise RuntimeError(f"Dagster run {result.run_id} failed; see `dg dev` with DAGSTER_HOME")
            checks_failed += [
                f"{c.asset_key.to_user_string()}:{c.check_name}"
                for c in result.get_asset_check_evaluations()
                if not c.passed
            ]
            console.print(f"[green]✓[/] Dagster run {result.run_id[:8]} for partition {day}", highlight=False)
            with console.status(f"pulling {', '.join(sorted(DEMO_CEX_ASSETS))} for {day} from the local server"):
                cex_run = materialize_as(
                    "demo_cex_ingest",
                    cex_assets,
                    resources=resources,
                    partition_key=day,
                    instance=instance,
                    tags={"liqf/demo": "true"},
                    run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
                )
            if not cex_run.success:
                raise RuntimeError(f"Dagster run {cex_run.run_id} failed; see `dg dev` with DAGSTER_HOME")
            console.print(
                f"[green]✓[/] Dagster run {cex_run.run_id[:8]}: CEX venues (OKX, Bybit public data) for {day}",
                highlight=False,
            )
        with console.status("reconstruction, rule inference, exemption test, haircuts, CEX episodes, audit report"):
            result = materialize_as(
                "demo_analysis_and_report",
                [adl_audit, adl_pools, adl_accounting, cex_adl_episodes, lake_catalog, audit_report],
                resources={"lake": resources["lake"]},
                instance=instance,
                tags={"liqf/demo": "true"},
                run_config={
                    "loggers": {"console": {"config": {"log_level": "WARNING"}}},
                    "ops": {"audit_report": {"config": {"out_root": str(cfg.out_dir / "reports")}}},
                },
            )
        if not result.success:
            raise RuntimeError(f"Dagster run {result.run_id} failed; see `dg dev` with DAGSTER_HOME")
        console.print(
            f"[green]✓[/] Dagster run {result.run_id[:8]}: reconstruction, rule inference, exemption test, "
            "haircuts, CEX episodes, audit report",
            highlight=False,
        )
    catalog_counts = result.asset_materializations_for_node("lake_catalog")[0].metadata["row_counts"].value
    inferred = _inferred(result)
    truth_exempt = json.loads((scenario_dir / "truth.json").read_text())["exempt"]
    report_md = result.asset_materializations_for_node("audit_report")[0].metadata
    summary = {
        "scenario": str(scenario_dir),
        "truth": str(scenario_dir / "truth.json"),
        "lake": str(cfg.lake.root),
        "catalog": str(cfg.db_path),
        "dagster_home": str(instance.root_directory) if instance.is_persistent else None,
        "partitions": days,
        "tracked_users": len(scenario["tracked_users"]),
        "simulated": counts,
        "catalog_rows": catalog_counts,
        "failed_checks": checks_failed,
        "report": {"html": report_md["html"].value, "pdf": report_md["pdf"].value},
        "planted": {"policy": cfg.policy, "exempt": truth_exempt},
        "inferred": inferred,
        "comparison": {
            "rule_recovered": inferred["best_rule"] == cfg.policy,
            "true_flags": sorted(set(inferred["flagged"]) & set(truth_exempt)),
            "false_flags": sorted(set(inferred["flagged"]) - set(truth_exempt)),
            "missed": sorted(set(truth_exempt) - set(inferred["flagged"])),
        },
        "seconds": round(time.perf_counter() - t0, 1),
    }
    (cfg.out_dir / "demo_summary.json").write_text(json.dumps(summary, indent=1, default=str))
    return summary


def _inferred(result: dg.ExecuteInProcessResult) -> dict:
    """The inferred rule and flagged accounts, from the inference assets' materialization metadata."""
    fits = result.asset_materializations_for_node("adl_audit")
    by_key = {m.asset_key.to_user_string(): m.metadata for m in fits}
    fits, flags = by_key["adl_rule_fits"], by_key["exemption_flags"]
    return {
        "best_rule": None if fits["best_rule"].value == "none" else fits["best_rule"].value,
        "verdict": fits["verdict"].value,
        "flagged": [f["user"] for f in flags["flagged_accounts"].value],
    }
