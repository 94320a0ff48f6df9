"""CLI commands of the cex area, registered on the main `liqf` app by pipelines.cli."""

from __future__ import annotations

import typer


def register(app: typer.Typer, ingest_app: typer.Typer) -> None:
    """Add this area's commands (to `app`) and ingest subcommands (to `ingest_app`)."""
