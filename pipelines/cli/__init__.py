"""`liqf`: the command line of liquidation-forensics."""

from pipelines.cli.root import app

__all__ = ["app"]
