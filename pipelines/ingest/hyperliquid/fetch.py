"""``liqf fetch hyperliquid``: plan, price, confirm and download Hyperliquid's public S3 files.

Hour files are bucketed by the node's ``local_time`` (written a few hundred ms after the block), so
the last blocks of hour H sit in file H+1: a window always takes the next hour's file too. Hours are
enumerated explicitly (S3 lists ``0, 1, 10, 11, ...``) and checked with HEAD, which reports missing ones.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from forensics.formats.records import RecordError, iso_ms
from pipelines.ingest.progress import ByteProgress, ProgressListener
from pipelines.storage import transfer
from pipelines.storage.inputs import mirror_path
from pipelines.storage.location import ObjectUrl
from pipelines.storage.stores import StorageError, StoreSettings, open_store, storage_error

#: where each source lives (``--bucket-<source>`` overrides, e.g. for a mirror)
SOURCES = {
    "fills": ("hl-mainnet-node-data", "node_fills_by_block/hourly/{day}/{hour}.lz4", "hourly"),
    "misc": ("hl-mainnet-node-data", "misc_events_by_block/hourly/{day}/{hour}.lz4", "hourly"),
    "ctxs": ("hyperliquid-archive", "asset_ctxs/{day}.csv.lz4", "daily"),
}
#: S3 list prices (USD) the estimate uses: internet egress per GB, and GET/HEAD requests per 1,000
EGRESS_PER_GB = 0.09
REQUESTS_PER_1000 = 0.0004


class FetchError(ValueError):
    """A fetch request that cannot be planned (bad window, unknown source)."""


@dataclass(frozen=True)
class Planned:
    source: str
    bucket: str
    key: str
    info: transfer.ObjectInfo | None  # None: not in the bucket

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def parse_hour(text: str, flag: str) -> dt.datetime:
    """The UTC hour a time falls in (naive), from ISO-8601 (``2025-10-10T20``, a date, minutes or seconds)."""
    try:
        ms = iso_ms(text, flag)
    except RecordError:
        raise FetchError(f"{flag} {text!r} is not an hour like 2025-10-10T20 (UTC)") from None
    return (dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=ms)).replace(minute=0, second=0, microsecond=0)


def window_hours(start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """Hours from ``start`` to ``end`` inclusive, plus the next hour (local_time bucketing)."""
    if end < start:
        raise FetchError("--to is before --from")
    n = int((end - start).total_seconds() // 3600) + 2
    return [start + dt.timedelta(hours=i) for i in range(n)]


def plan(
    start: dt.datetime,
    end: dt.datetime,
    sources: list[str],
    settings: StoreSettings,
    buckets: dict[str, str | None] | None = None,
) -> list[Planned]:
    unknown = [s for s in sources if s not in SOURCES]
    if unknown:
        raise FetchError(f"unknown source {unknown[0]!r}; sources: {', '.join(SOURCES)}")
    hours = window_hours(start, end)
    out: list[Planned] = []
    for source in sources:
        bucket, pattern, grain = SOURCES[source]
        bucket = (buckets or {}).get(source) or bucket
        if grain == "hourly":
            keys = [pattern.format(day=h.strftime("%Y%m%d"), hour=h.hour) for h in hours]
        else:
            keys = list(dict.fromkeys(pattern.format(day=h.strftime("%Y%m%d")) for h in hours[:-1]))
        try:
            store = open_store(ObjectUrl(bucket), settings)
            out += [Planned(source, bucket, k, transfer.head(store, k)) for k in keys]
        except StorageError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise storage_error(exc, f"s3://{bucket}/{keys[0]}", settings) from None
    return out


def estimate_usd(planned: list[Planned]) -> float:
    present = [p for p in planned if p.info]
    size = sum(p.info.size for p in present)
    return size / 1e9 * EGRESS_PER_GB + (len(planned) + len(present)) / 1000 * REQUESTS_PER_1000


def download(
    planned: list[Planned], root: Path, settings: StoreSettings, listener: ProgressListener | None = None
) -> list[Path]:
    """Download every present object below ``root`` (resuming partial files); returns the local paths.
    ``listener`` hears of the bytes done per object (named by its key) and overall."""
    paths = []
    stores: dict[str, object] = {}
    present = [p for p in planned if p.info is not None]
    run = ByteProgress(sum(p.info.size for p in present), listener or (lambda *_: None))
    for p in present:
        store = stores.setdefault(p.bucket, open_store(ObjectUrl(p.bucket), settings))
        progress = run.start(p.key, p.info.size)
        try:
            paths.append(
                transfer.download(store, p.info, mirror_path(root, ObjectUrl(p.bucket), p.key), progress=progress)
            )
        except transfer.ObjectChanged as exc:
            raise StorageError(str(exc)) from None
        except Exception as exc:  # noqa: BLE001
            raise storage_error(exc, p.url, settings) from None
    return paths
