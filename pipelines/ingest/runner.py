"""CLI-facing ingest runs: progress bars, friendly errors and the closing summary."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)

from pipelines.catalog import CatalogResult
from pipelines.ingest import hyperliquid_files as files
from pipelines.ingest.report import IngestReport
from pipelines.lake import Lake


class UserFacingError(RuntimeError):
    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("records"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )


def run_file_ingest(
    lake: Lake,
    *,
    node_fills: Sequence[Path],
    snapshot: Path | None,
    asset_ctxs: Path | None,
    console: Console,
) -> list[IngestReport]:
    try:
        fill_files = files.expand_inputs(node_fills) if node_fills else []
        jobs: list[tuple[Callable[..., IngestReport], Path]] = [(files.ingest_node_fills, f) for f in fill_files]
        if snapshot:
            jobs += [(files.ingest_snapshot, f) for f in files.expand_inputs([snapshot], ("*.jsonl", "*.json"))]
        if asset_ctxs:
            jobs += [(files.ingest_asset_ctxs, f) for f in files.expand_inputs([asset_ctxs], ("*.jsonl", "*.json"))]
    except files.InputError as exc:
        raise UserFacingError(str(exc), "check the path; directories are searched for .lz4/.json/.jsonl files") from None
    reports = []
    with _progress(console) as progress:
        for fn, path in jobs:
            task = progress.add_task(path.name, total=None)
            reports.append(fn(lake, path, progress=lambda n, t=task: progress.advance(t, n)))
            progress.remove_task(task)
    return reports


def resolve_inputs(lake: Lake, inputs: dict[str, list], settings, console: Console) -> dict[str, list[Path]]:
    """Each option's values as local paths; ``s3://`` objects are downloaded into the raw layer first
    (streamed, resumable, verified) through the one object-storage layer, for any reader."""
    from pipelines.storage import inputs as s3_inputs

    root = lake.root / "raw" / "venue=hyperliquid" / "source=s3"
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  console=console, transient=True, disable=not console.is_terminal) as bar:
        tasks: dict[str, int] = {}

        def progress(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=total)
            bar.update(tasks[name], completed=done)

        return {name: s3_inputs.resolve(values, root, settings, progress) for name, values in inputs.items()}


def run_api_ingest(lake: Lake, **kwargs) -> list[IngestReport]:
    from pipelines.ingest import hyperliquid_api

    return hyperliquid_api.run(lake, **kwargs)


def print_summary(console: Console, lake: Lake, reports: list[IngestReport], catalog: CatalogResult) -> None:
    for r in reports:
        console.print(f"[green]✓[/] {r.summary()}", highlight=False)
        for note in r.notes:
            console.print(f"  [yellow]note:[/] {note}", highlight=False)
    read = sum(r.records_read for r in reports)
    written = sum(r.records_written for r in reports)
    quarantined = sum(r.quarantined for r in reports)
    console.print(
        f"[bold]{len(reports)} input(s):[/] read {read:,} = written {written:,} + quarantined {quarantined:,}",
        highlight=False,
    )
    console.print(f"lake: {lake.location}", highlight=False)
    counts = ", ".join(f"{v} {n:,}" for v, n in catalog.views.items() if n)
    console.print(f"catalog: {catalog.db_path} ({counts})", highlight=False)
    if quarantined:
        console.print("inspect rejects with: liqf sql \"select reason, count(*) from quarantine group by 1\"")
