"""The lake and its DuckDB catalog as a Dagster resource."""

import os
from pathlib import Path

import dagster as dg

from pipelines import catalog
from pipelines.lake import Lake

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def _default(env: str, relative: str) -> str:
    return os.environ.get(env) or str(PROJECT_ROOT / relative)


class LakeResource(dg.ConfigurableResource):
    """Where the Parquet lake and the DuckDB catalog live (defaults: data/lake, data/forensics.duckdb)."""

    lake_root: str = _default("LIQF_LAKE", "data/lake")  # a directory or s3://bucket/prefix
    lake_endpoint: str | None = os.environ.get("LIQF_LAKE_ENDPOINT")  # S3-compatible endpoint of an s3:// lake
    db_path: str = _default("LIQF_DB", "data/forensics.duckdb")

    def lake(self) -> Lake:
        lake = Lake.open(self.lake_root, endpoint=self.lake_endpoint)
        lake.sweep_temporaries()  # what a killed run left; a live writer's temporaries are locked and kept
        return lake

    def refresh_catalog(self) -> catalog.CatalogResult:
        return catalog.refresh(self.lake(), Path(self.db_path))


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(resources={"lake": LakeResource()})
