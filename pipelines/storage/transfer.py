"""Listing, resumable verified downloads and uploads on an obstore store (all streamed)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import obstore
import orjson

CHUNK = 8 << 20
#: downloads reach the disk in pieces this small, so an interrupted one keeps what it received
STREAM_CHUNK = 64 << 10
Progress = Callable[[int], None]


@dataclass(frozen=True)
class ObjectInfo:
    key: str  # relative to the store's prefix
    size: int
    etag: str | None

    @property
    def md5(self) -> str | None:
        """The ETag as an MD5 hex digest when it is one (single-part uploads; multipart ETags end in -N)."""
        tag = (self.etag or "").strip('"')
        return tag if len(tag) == 32 and "-" not in tag else None


def _info(meta: dict) -> ObjectInfo:
    return ObjectInfo(meta["path"], int(meta["size"]), meta.get("e_tag"))


def list_objects(store, prefix: str) -> Iterator[ObjectInfo]:
    for batch in obstore.list(store, prefix=prefix or None, chunk_size=1000):
        for meta in batch:
            yield _info(meta)


def head(store, key: str) -> ObjectInfo | None:
    try:
        return _info(obstore.head(store, key))
    except FileNotFoundError:
        return None


def get_bytes(store, key: str) -> bytes:
    return bytes(obstore.get(store, key).bytes())


def put_bytes(store, key: str, data: bytes) -> None:
    obstore.put(store, key, data)


def put_file(store, key: str, path: Path) -> None:
    """Upload a local file (multipart above obstore's chunk size; the object appears whole or not at all)."""
    with open(path, "rb") as fh:
        obstore.put(store, key, fh, chunk_size=CHUNK)


def delete(store, keys: list[str]) -> None:
    if keys:
        obstore.delete(store, keys)


def download(store, info: ObjectInfo, dest: Path, *, progress: Progress | None = None) -> Path:
    """Download ``info`` to ``dest``: streamed, resumed from ``dest.part`` when the object is unchanged,
    verified (size, and MD5 when the ETag is one) before ``dest`` appears. An already complete ``dest``
    of the right size and ETag is kept as it is."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part, sidecar = dest.with_name(dest.name + ".part"), dest.with_name(dest.name + ".part.json")
    done = dest.with_name(dest.name + ".etag")
    if is_complete(info, dest):
        if progress:
            progress(info.size)
        return dest
    start = 0
    if part.exists() and sidecar.exists() and orjson.loads(sidecar.read_bytes()).get("etag") == info.etag:
        start = part.stat().st_size
        if start > info.size:
            start = 0
    if start == 0:
        part.unlink(missing_ok=True)
    sidecar.write_bytes(orjson.dumps({"key": info.key, "size": info.size, "etag": info.etag}))
    if progress and start:
        progress(start)
    if start < info.size:
        result = obstore.get(store, info.key, options={"range": (start, info.size)} if start else None)
        got_tag = result.meta.get("e_tag")
        if info.etag and got_tag and got_tag != info.etag:
            raise ObjectChanged(f"{info.key} changed while downloading (ETag {got_tag} != {info.etag}); run again")
        with open(part, "ab") as fh:
            for chunk in result.stream(min_chunk_size=STREAM_CHUNK):
                fh.write(chunk)
                if progress:
                    progress(len(chunk))
            fh.flush()
            os.fsync(fh.fileno())
    size = part.stat().st_size
    if size != info.size:
        raise ObjectChanged(f"{info.key}: downloaded {size} bytes, the object has {info.size}; run again to resume")
    if info.md5 and _md5(part) != info.md5:
        part.unlink()
        raise ObjectChanged(f"{info.key}: MD5 does not match the ETag; the partial download was removed, run again")
    os.replace(part, dest)
    done.write_text(info.etag or "")
    sidecar.unlink(missing_ok=True)
    return dest


def is_complete(info: ObjectInfo, dest: Path) -> bool:
    """Whether ``dest`` is a finished, verified download of ``info`` (same size, and the ETag it was verified
    against recorded next to it): nothing to fetch again."""
    done = dest.with_name(dest.name + ".etag")
    return (
        dest.exists() and dest.stat().st_size == info.size and done.exists() and done.read_text() == (info.etag or "")
    )


class ObjectChanged(RuntimeError):
    """A download that does not match the object it was started on."""


def _md5(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()
