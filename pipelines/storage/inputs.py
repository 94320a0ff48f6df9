"""``s3://`` inputs for any local reader: objects are downloaded (streamed, resumable, verified) into
the lake's raw layer under their bucket key, and the local paths are handed to the reader.

Keeping the last key segments (``.../20251010/21.lz4``) means an input read from S3 gets the same
source key, hence the same rows, as the same file read from disk.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pipelines.storage import transfer
from pipelines.storage.location import ObjectUrl, is_object_url, parse_url, safe_key
from pipelines.storage.stores import StorageError, StoreSettings, open_store, storage_error


def mirror_path(root: Path, url: ObjectUrl, key: str) -> Path:
    """Where object ``key`` of ``url``'s bucket is kept locally: ``<root>/bucket=<b>/<key>``."""
    return root.joinpath(f"bucket={url.bucket}", *safe_key(key))


def resolve(
    values: list[str | Path],
    root: Path,
    settings: StoreSettings,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[Path]:
    """Local paths for ``values``: local paths as given; ``s3://`` objects, or every object under an
    ``s3://`` prefix, downloaded below ``root``. ``progress(name, done_bytes, total_bytes)``."""
    out: list[Path] = []
    for value in values:
        if not is_object_url(str(value)):
            out.append(Path(value))
            continue
        url = parse_url(str(value))
        bucket = ObjectUrl(url.bucket)
        try:
            store = open_store(bucket, settings)
            found = transfer.head(store, url.prefix) if url.prefix and not str(value).endswith("/") else None
            objects = (
                [found]
                if found
                else [
                    o
                    for o in transfer.list_objects(store, url.prefix + "/" if url.prefix else "")
                    if not o.key.endswith("/")
                ]
            )
            if not objects:
                raise StorageError(f"{value}: no objects there; check the bucket, the key and the date/hour")
            for info in sorted(objects, key=lambda o: o.key):
                dest = mirror_path(root, url, info.key)
                done = [0]

                def step(n: int, info=info, done=done) -> None:
                    done[0] += n
                    if progress:
                        progress(info.key, done[0], info.size)

                out.append(transfer.download(store, info, dest, progress=step))
        except StorageError:
            raise
        except transfer.ObjectChanged as exc:
            raise StorageError(str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - one line per failure
            raise storage_error(exc, str(value), settings) from None
    return out
