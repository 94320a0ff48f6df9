"""The Dagster code location: every ``@dg.definitions`` under ``pipelines.defs``, merged."""

from pathlib import Path

import dagster as dg

import pipelines.defs


@dg.definitions
def defs() -> dg.Definitions:
    return dg.components.load_defs(pipelines.defs, project_root=Path(__file__).resolve().parent.parent)
