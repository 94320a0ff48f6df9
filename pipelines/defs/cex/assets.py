"""CEX assets: one daily-partitioned pull per venue (public + own account when keys are set), captured
stream hours, and the venue-level ADL episodes / own-account ADL audit."""

import dagster as dg
import polars as pl

from forensics.formats.records import iso_ms
from forensics.tables import INGEST_RUNS
from pipelines.analysis import cex as cex_analysis
from pipelines.defs.cex.resources import CexApiResource, CexCredentialsResource
from pipelines.defs.lake.checks import ingest_metadata
from pipelines.defs.lake.resources import LakeResource
from pipelines.ingest import capture, cex

GROUP = "cex"
daily = dg.DailyPartitionsDefinition(start_date="2025-10-01", timezone="UTC", end_offset=1)


def _window(partition_key: str) -> tuple[int, int]:
    start = iso_ms(partition_key, "partition")
    return start, start + 86_400_000 - 1


def _venue_asset(venue: str) -> dg.AssetsDefinition:
    def pull(
        context: dg.AssetExecutionContext,
        lake: LakeResource,
        cex_api: CexApiResource,
        cex_credentials: CexCredentialsResource,
    ) -> dg.MaterializeResult:
        since, until = _window(context.partition_key)
        creds = cex_credentials.credentials(venue) if venue in cex.PRIVATE_VENUES else None
        client = cex_api.client(venue, creds)
        try:
            reports = cex.pull(
                lake.lake(),
                venue,
                client,
                since,
                until,
                private=creds is not None,
                account=cex.account_label(venue, creds) if creds else None,
            )
        finally:
            client.close()
        if venue in cex.PRIVATE_VENUES and creds is None:
            context.log.info(f"no LIQF_{venue.upper()}_API_KEY/SECRET: public data only")
        return dg.MaterializeResult(metadata={**ingest_metadata(reports), "private": creds is not None})

    pull.__name__ = f"{venue}_liquidation_data"
    pull.__doc__ = (
        f"{venue} liquidation orders, insurance-fund balances and ADL risk for one UTC day (plus own-account "
        "liquidation/ADL fills, ADL ranks and positions when a read-only key is set), normalized into "
        "cex_liquidations, insurance_fund, adl_ranks, adl_alerts, fills; bad items quarantined."
    )
    return dg.asset(
        name=f"{venue}_liquidation_data",
        partitions_def=daily,
        group_name=GROUP,
        kinds={"parquet", "python"},
        code_version="1",
    )(pull)


VENUE_ASSETS = [_venue_asset(v) for v in cex.CEX_VENUES]


@dg.asset(group_name=GROUP, kinds={"parquet", "python"}, code_version="1")
def captured_liquidations(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    """Liquidations from closed hourly capture files (`liqf capture`) not normalized yet, into cex_liquidations."""
    done = _normalized_inputs(lake)
    reports = []
    for venue in capture.DEFAULT_URLS:
        for path in capture.closed_hours(lake.lake(), venue):
            if path.relative_to(lake.lake().root).as_posix() not in done:
                reports.append(capture.normalize_hour(lake.lake(), venue, path))
    return dg.MaterializeResult(metadata={**ingest_metadata(reports), "files": len(reports)})


def _normalized_inputs(lake: LakeResource) -> set[str]:
    runs = lake.lake().read(INGEST_RUNS)
    if runs is None:
        return set()
    return set(runs.filter(pl.col("source").str.starts_with("ws:"))["source_name"].to_list())


@dg.asset(
    group_name=GROUP,
    kinds={"parquet", "python"},
    code_version="1",
    deps=[*(a.key for a in VENUE_ASSETS), "captured_liquidations"],
)
def cex_adl_episodes(lake: LakeResource) -> dg.MaterializeResult:
    """Venue-level ADL episodes (insurance drawdowns, ADL alerts, OKX ADL types, liquidation bursts, own ADL)
    and the own-account ADL audit against venue-reported ranks, in adl_episodes and adl_audit."""
    res = cex_analysis.run(lake.lake())
    kinds: dict[str, int] = {}
    for e in res.episodes:
        kinds[e["kind"]] = kinds.get(e["kind"], 0) + 1
    return dg.MaterializeResult(
        metadata={
            "episodes": dg.MetadataValue.int(len(res.episodes)),
            "episodes_by_kind": dg.MetadataValue.json(kinds),
            "own_adl_fills_audited": dg.MetadataValue.int(len(res.audit)),
            "inconsistent": dg.MetadataValue.int(sum(1 for a in res.audit if a["consistent"] is False)),
        }
    )


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=[*VENUE_ASSETS, captured_liquidations, cex_adl_episodes])
