"""Files of the lake: atomic writes (temp file in the same directory, fsync, rename), content hashes,
gzip JSON-lines writers for raw API responses, Parquet parts.

The lowest layer of :mod:`pipelines.lake`: imports nothing of the lake, so the object-storage half
(:mod:`.remote`) and the lake itself (:mod:`.core`) both build on it.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.crash_points import crash_point


def sha256_file(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


#: every temporary in the lake: ``.tmp-<random><suffix>.partial`` beside its final path, and staging
#: directories ``.staging/.staging-<random>/``. No reader glob (``part-*.parquet``, ``*.jsonl.gz``) matches them.
TMP_PREFIX = ".tmp-"
TMP_SUFFIX = ".partial"
STAGING_DIR = ".staging"
STAGING_PREFIX = ".staging-"


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temp path in ``final``'s directory; on success it is fsynced and renamed over ``final``.

    The writer holds an exclusive ``flock`` on the temporary until it is renamed or removed, so
    :meth:`Lake.sweep_temporaries` of a concurrent run leaves it alone while a killed writer's (whose lock
    the kernel released) is removed.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=final.suffix + TMP_SUFFIX, dir=final.parent)
    tmp_path = Path(tmp)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        if final.suffix == ".parquet":
            crash_point("part_written")
        os.replace(tmp_path, final)
    finally:
        tmp_path.unlink(missing_ok=True)
        os.close(fd)


@contextmanager
def staging_dir(root: Path) -> Iterator[Path]:
    """A private working directory under ``root/.staging`` (same file system as the lake, so its files
    rename into place), removed on exit; locked while in use so a sweep removes it only once its
    owner is gone. It is created under another name and renamed once locked, so a sweep never sees it
    unlocked."""
    base = root / STAGING_DIR
    base.mkdir(parents=True, exist_ok=True)
    making = Path(tempfile.mkdtemp(prefix=".creating-", dir=base))
    fd = os.open(making, os.O_RDONLY)
    path = base / (STAGING_PREFIX + making.name.removeprefix(".creating-"))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        making.rename(path)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        shutil.rmtree(making, ignore_errors=True)
        os.close(fd)


def is_unlocked(path: Path) -> bool:
    """True when nobody holds ``path``'s lock (its writer finished or was killed); False while in use."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # closing drops a lock we took


def tree_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


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
