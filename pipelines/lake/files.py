"""Files of the lake: atomic writes (temp file in the same directory, fsync, rename), content hashes,
gzip JSON-lines writers for raw API responses, Parquet parts.

The lowest layer of :mod:`pipelines.lake`: imports nothing of the lake, so the object-storage half
(:mod:`.remote`) and the lake itself (:mod:`.core`) both build on it.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

import orjson
import pyarrow as pa
import pyarrow.parquet as pq


def sha256_file(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temp path in ``final``'s directory; on success it is fsynced and renamed over ``final``."""
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=final.suffix, dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, final)
    finally:
        tmp_path.unlink(missing_ok=True)


class RawApiWriter:
    """Appends API responses (request metadata + payload exactly as parsed) as gzip JSON lines.

    The file appears atomically when the writer is closed; callers pass redacted params only.
    """

    def __init__(self, path: Path, on_commit: Callable[[Path], None] | None = None) -> None:
        self.path = path
        self._on_commit = on_commit
        self.count = 0
        self._ctx = atomic_path(path)
        self._tmp = self._ctx.__enter__()
        self._fh = gzip.open(self._tmp, "wb")

    def write(self, record: dict[str, object]) -> None:
        self._fh.write(orjson.dumps(record) + b"\n")
        self.count += 1

    def close(self, ok: bool = True) -> None:
        self._fh.close()
        if ok:
            self._ctx.__exit__(None, None, None)
            if self._on_commit:
                self._on_commit(self.path)
        else:
            self._ctx.__exit__(RuntimeError, RuntimeError("aborted"), None)

    def __enter__(self) -> RawApiWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close(ok=exc_type is None)


def write_parquet(data: pa.Table, path: Path) -> None:
    with atomic_path(path) as tmp:
        pq.write_table(data, tmp, compression="zstd")
