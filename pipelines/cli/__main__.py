"""`python -m pipelines.cli`: the same app as the `liqf` entry point."""

from pipelines.cli.root import app

app()
