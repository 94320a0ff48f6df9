"""When an input must not replace what the lake holds: a truncated file, or a strict prefix of the file
ingested before under the same name (an interrupted download saved under the complete file's name).

Both checks run before anything of the input is written, so the complete data stays as it was. A
truncated file may still be ingested on request (``--partial``): its complete lines are kept and the cut
line is quarantined with the reason. A strict prefix of an earlier input never replaces it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from forensics.tables import INGEST_RUNS
from pipelines.ingest.streams import StreamState
from pipelines.lake import Lake
from pipelines.venues.base import AuthenticationError, VenueError


class IncompleteInput(RuntimeError):
    """An input refused so that it cannot replace complete data; ``hint`` says what to do next."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


PARTIAL_HINT = (
    "rerun with the complete file, or pass --partial to ingest its complete lines (the cut line is quarantined)"
)


def refuse_truncated(name: str, state: StreamState, allow_partial: bool) -> None:
    """A truncated or corrupt compressed input is an error for that file unless partial data was asked for."""
    if state.tail_error:
        refuse_cut(name, state.tail_error, allow_partial)


def refuse_cut(name: str, reason: str, allow_partial: bool) -> None:
    """An input that ends before its data does (``reason`` says where) is an error for that file unless partial
    data was asked for."""
    if not allow_partial:
        raise IncompleteInput(f"{name}: {reason}; nothing of it was written, the lake keeps what it had", PARTIAL_HINT)


@dataclass(frozen=True)
class PreviousInput:
    source: str
    sha256: str
    bytes: int


def previous_input(lake: Lake, venue: str, key: str) -> PreviousInput | None:
    """What the lake's ledger says was ingested under input ``key`` last (None when nothing was)."""
    path = lake.part_path(INGEST_RUNS.name, venue, None, key)
    if not path.exists():
        return None
    row = pq.read_table(path, columns=["source", "sha256", "bytes"]).to_pylist()
    return PreviousInput(row[0]["source"], row[0]["sha256"], row[0]["bytes"]) if row else None


def _prefix_sha256(path: Path, size: int) -> str:
    h = hashlib.sha256()
    left = size
    with open(path, "rb") as fh:
        while left and (chunk := fh.read(min(left, 1 << 20))):
            h.update(chunk)
            left -= len(chunk)
    return h.hexdigest()


def refuse_prefix(lake: Lake, venue: str, key: str, name: str, sha256: str, size: int) -> None:
    """Refuse an input whose bytes are a strict prefix of the raw file ingested before under ``key``."""
    prev = previous_input(lake, venue, key)
    if prev is None or prev.sha256 == sha256 or prev.bytes <= size or not prev.sha256:
        return
    raw_dir = lake.root / "raw" / f"venue={venue}" / f"source={prev.source}"
    raw = next(iter(sorted(raw_dir.glob(f"{prev.sha256}*"))), None) if raw_dir.exists() else None
    if raw is not None and _prefix_sha256(raw, size) == sha256:
        raise IncompleteInput(
            f"{name}: its {size:,} bytes are a strict prefix of the {prev.bytes:,}-byte file ingested before under "
            "this name; the lake keeps the complete data",
            "this looks like an interrupted copy: fetch the complete file again "
            "(a shorter file never replaces a longer one)",
        )


class IncompletePull(IncompleteInput):
    """An API pull that did not get every page: nothing of it is written (its raw responses neither), so
    the lake keeps the previous complete pull of the same window."""


class AuthenticationFailed(IncompleteInput):
    """The venue refused the API key of a private pull: nothing of the pull is written."""


def pull_failed(venue: str, what: str, exc: VenueError) -> IncompleteInput:
    """The one-line error for a pull stopped by ``exc`` (credentials already scrubbed)."""
    if isinstance(exc, AuthenticationError):
        return AuthenticationFailed(
            f"{venue}: the venue refused the API key ({exc.detail}); nothing was written",
            f"check {exc.variables} (a valid read-only key for this venue, allowed from this IP), then rerun",
        )
    tries = f" after {exc.attempts} tries" if getattr(exc, "attempts", 1) > 1 else ""
    wait = f"; the venue asked to wait {exc.retry_after:g} s" if getattr(exc, "retry_after", None) else ""
    return IncompletePull(
        f"{venue} pull incomplete: {what} failed{tries} ({exc.detail}{wait}); nothing was written, "
        "the lake keeps its previous data",
        f"rerun the same liqf ingest {venue} command (idempotent: it replaces exactly this pull)",
    )
