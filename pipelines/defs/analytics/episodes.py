"""ADL analysis fanned out per ADL episode: one dynamic partition per episode, each audited on its own.

An episode is a run of ADL steps with no gap longer than ``EPISODE_GAP_MS`` (30 minutes). Each
partition replays the lake from the snapshot and audits its window alone (rule inference, exemption test);
it writes nothing to the lake (its verdict, flags and counts are the materialization's metadata), so
partitions are independent and can run on any number of workers.
"""

import dagster as dg
import polars as pl

from pipelines.analysis import audit
from pipelines.defs.lake.resources import LakeResource

EPISODE_GAP_MS = 30 * 60 * 1000
adl_episodes = dg.DynamicPartitionsDefinition(name="adl_episodes")


def find_episodes(steps: pl.DataFrame, venue: str = "hyperliquid", gap_ms: int = EPISODE_GAP_MS) -> list[str]:
    """Episode partition keys ``<venue>-<first step ms>-<last step ms>`` from ``adl_steps`` rows."""
    if steps.height == 0:
        return []
    times = steps.sort("time_ms")["time_ms"].to_list()
    keys, first, last = [], times[0], times[0]
    for t in times[1:]:
        if t - last > gap_ms:
            keys.append(f"{venue}-{first}-{last}")
            first = t
        last = t
    keys.append(f"{venue}-{first}-{last}")
    return keys


def parse_episode(key: str) -> tuple[str, int, int]:
    venue, first, last = key.rsplit("-", 2)
    return venue, int(first), int(last)


class EpisodeAuditConfig(dg.Config):
    """False discovery rate of the exemption test."""

    q: float = 0.05


@dg.asset(
    partitions_def=adl_episodes,
    deps=["adl_steps"],
    group_name="analytics",
    kinds={"polars", "numba"},
    code_version="3",
)
def adl_episode_audit(
    context: dg.AssetExecutionContext, config: EpisodeAuditConfig, lake: LakeResource
) -> dg.MaterializeResult:
    """The audit of one ADL episode on its own: best rule, verdict and flagged accounts of that window."""
    venue, first, last = parse_episode(context.partition_key)
    result = audit.run(lake.lake(), venue=venue, since_ms=first, until_ms=last, q=config.q, write_tables=False)
    flagged = [f.user for f in result.flagged]
    return dg.MaterializeResult(
        metadata={
            "venue": venue,
            "first_step_ms": first,
            "last_step_ms": last,
            "steps": int(result.steps.height),
            "pool_rows": int(result.pool_rows),
            "incomplete_steps": result.incomplete_steps,
            "best_rule": result.best_rule or "none",
            "verdict": result.verdict,
            "flagged": len(flagged),
            "flagged_accounts": dg.MetadataValue.json(flagged),
        }
    )


@dg.sensor(minimum_interval_seconds=300, asset_selection=dg.AssetSelection.assets(adl_episode_audit))
def adl_episode_partitions(context: dg.SensorEvaluationContext, lake: LakeResource):
    """Add a partition for every new ADL episode in ``adl_steps`` and request its audit."""
    steps = lake.lake().read("adl_steps", "hyperliquid")
    known = set(context.instance.get_dynamic_partitions(adl_episodes.name))
    new = [k for k in find_episodes(steps if steps is not None else pl.DataFrame({"time_ms": []})) if k not in known]
    if not new:
        return dg.SkipReason("no new ADL episode")
    return dg.SensorResult(
        dynamic_partitions_requests=[adl_episodes.build_add_request(new)],
        run_requests=[dg.RunRequest(partition_key=k, run_key=f"episode-{k}") for k in new],
    )


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=[adl_episode_audit], sensors=[adl_episode_partitions])
