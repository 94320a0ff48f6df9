"""Rich progress displays of the CLI, on the stderr console; off when stderr is not a terminal (logs, CI)."""

from __future__ import annotations

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from pipelines.cli.context import console


def _progress(*columns: ProgressColumn | str) -> Progress:
    return Progress(*columns, console=console, transient=True, disable=not console.is_terminal)


def spinner(label: str) -> Progress:
    """Work of unknown length (a venue pull): a spinner, the label and the time so far."""
    return _progress(SpinnerColumn(), TextColumn(f"[bold]{label}"), TimeElapsedColumn())


def counted() -> Progress:
    """Items of a known count (scenarios): rich's default bar."""
    return _progress(*Progress.get_default_columns())


def steps(label: str) -> Progress:
    """Steps of a known count (backfill partitions): a bar and done/total."""
    return _progress(TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())


def blocks() -> Progress:
    """Block ranges per stream (on-chain ingest): the task's name, a bar and blocks done/total."""
    return _progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,} blocks"),
        TimeElapsedColumn(),
    )
