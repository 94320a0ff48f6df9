"""CLI-facing ingest runs: progress bars, friendly errors and the closing summary."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from pipelines.catalog import CatalogResult
from pipelines.ingest.common import UserFacingError
from pipelines.ingest.hyperliquid import archive, detect, files, misc
from pipelines.ingest.progress import OVERALL, ByteProgress, ProgressListener
from pipelines.ingest.report import IngestReport
from pipelines.ingest.safety import IncompleteInput
from pipelines.lake import Lake
from pipelines.storage import inputs as s3_inputs


class InputsRefused(UserFacingError):
    """Some inputs were refused (truncated, or a prefix of what the lake holds); the others were ingested
    (``reports``) and the refused ones changed nothing."""

    def __init__(self, refused: list[IncompleteInput], reports: list[IngestReport]) -> None:
        first = refused[0]
        more = f" (and {len(refused) - 1} more input(s) refused)" if len(refused) > 1 else ""
        super().__init__(f"{first}{more}", first.hint)
        self.refused = refused
        self.reports = reports


@dataclass
class _Job:
    """One ingest of the run: ``fn(lake, arg, progress=...)``; ``size`` is its input files' total size as stored.
    A job ``in_bytes`` reports bytes of its input as it reads; any other reports records."""

    fn: Callable[..., object]
    arg: object
    name: str
    size: int
    in_bytes: bool = False


def rich_listener(console: Console) -> tuple[Progress, ProgressListener]:
    """A rich display of a run's progress (on ``console``, off when it is not a terminal): the overall bar
    first, one bar per file while it runs, each with bytes, rate and time left."""
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    tasks: dict[str, int] = {}

    def listener(name: str, done: int, total: int) -> None:
        if name not in tasks:
            tasks[name] = bar.add_task(name if name == OVERALL else f"  {name}", total=total)
        bar.update(tasks[name], completed=done, total=total)
        if name != OVERALL and done >= total:
            bar.remove_task(tasks.pop(name))

    return bar, listener


def _input_size(arg: object) -> int:
    paths = arg.values() if isinstance(arg, dict) else [arg]
    return sum(Path(p).stat().st_size for p in paths)


def run_file_ingest(
    lake: Lake,
    *,
    node_fills: Sequence[Path],
    snapshot: Path | Sequence[Path] | None,
    asset_ctxs: Path | None,
    console: Console,
    misc_events: Sequence[Path] = (),
    export_scope: str = "total",
    allow_partial: bool = False,
    listener: ProgressListener | None = None,
) -> list[IngestReport]:
    """Every input's format is detected from its content; one that matches none of what its option
    accepts stops the run before anything is written, with a one-line error naming what was expected.
    A truncated input (unless ``allow_partial``) or a strict prefix of what the lake holds is refused and
    changes nothing; the other inputs are ingested and :class:`InputsRefused` says which were refused.
    Progress goes to ``listener`` when given, else to a rich display on ``console``."""
    snapshots = [snapshot] if isinstance(snapshot, Path) else list(snapshot or [])
    try:
        jobs: list[tuple[Callable[..., object], object, str]] = []
        in_bytes: set[int] = set()  # jobs whose progress is bytes of their input
        for f in files.expand_inputs(node_fills) if node_fills else []:
            kind = detect.check(f, "node-fills")
            in_bytes.add(len(jobs))
            jobs.append(
                (
                    lambda lk, p, progress, k=kind: files.ingest_node_fills(
                        lk, p, progress=progress, kind=k, allow_partial=allow_partial
                    ),
                    f,
                    f.name,
                )
            )
        for f in files.expand_inputs(misc_events) if misc_events else []:
            detect.check(f, "misc-events")
            jobs.append((partial(misc.ingest_misc_events, allow_partial=allow_partial), f, f.name))
        exports: dict[tuple, dict[str, Path]] = {}
        for f in files.expand_inputs(snapshots, ("*.jsonl", "*.json", "*.lz4")) if snapshots else []:
            kind = detect.check(f, "snapshot")
            if kind == "clearinghouse_snapshot":
                jobs.append((partial(files.ingest_snapshot, allow_partial=allow_partial), f, f.name))
            else:  # the export's files of one snapshot (same <block>_<ms>) are ingested together
                exports.setdefault(archive.export.time_from_name(f.name), {})[kind.split(":", 1)[1]] = f
        for group in exports.values():
            jobs.append(
                (
                    lambda lk, g, progress: archive.ingest_snapshot_export(
                        lk, g, scope=export_scope, progress=progress, allow_partial=allow_partial
                    ),
                    group,
                    "snapshot export",
                )
            )
        if asset_ctxs:
            for f in files.expand_inputs([asset_ctxs], ("*.jsonl", "*.json", "*.csv", "*.lz4")):
                kind = detect.check(f, "asset-ctxs")
                reader = archive.ingest_asset_ctxs_csv if kind == "asset_ctxs_archive" else files.ingest_asset_ctxs
                jobs.append((partial(reader, allow_partial=allow_partial), f, f.name))
    except files.InputError as exc:
        raise UserFacingError(
            str(exc), "check the path; directories are searched for .lz4/.json/.jsonl files"
        ) from None
    except detect.UnknownFormat as exc:
        raise UserFacingError(str(exc), "pass each file to the option for its format") from None
    runs = [_Job(fn, arg, name, _input_size(arg), k in in_bytes) for k, (fn, arg, name) in enumerate(jobs)]
    reports: list[IngestReport] = []
    refused: list[IncompleteInput] = []
    display = None
    if listener is None:
        display, listener = rich_listener(console)
    with display or nullcontext():
        progress = ByteProgress(sum(job.size for job in runs), listener)
        for job in runs:
            advance = progress.start(job.name, job.size, in_bytes=job.in_bytes)
            try:
                got = job.fn(lake, job.arg, progress=advance)
            except IncompleteInput as exc:
                refused.append(exc)
                continue
            finally:
                advance.end()
            reports.extend(got if isinstance(got, list) else [got])
    if refused:
        raise InputsRefused(refused, reports)
    return reports


def resolve_inputs(lake: Lake, inputs: dict[str, list], settings, console: Console) -> dict[str, list[Path]]:
    """Each option's values as local paths; ``s3://`` objects are downloaded into the raw layer first
    (streamed, resumable, verified) through the one object-storage layer, for any reader."""
    root = lake.root / "raw" / "venue=hyperliquid" / "source=s3"
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as bar:
        tasks: dict[str, int] = {}

        def progress(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=total)
            bar.update(tasks[name], completed=done)

        return {name: s3_inputs.resolve(values, root, settings, progress) for name, values in inputs.items()}


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
    for sentence in catalog.stale:
        console.print(f"[yellow]analytics:[/] {sentence}", highlight=False)
    if quarantined:
        console.print('inspect rejects with: liqf sql "select reason, count(*) from quarantine group by 1"')
