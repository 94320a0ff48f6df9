"""Atomic, idempotent lake writes on an object store: unique part names plus one manifest per input key.

An input key (one input file, one API request window, one analysis key) writes its parts under
their usual lake paths with a unique token, ``.../part-<key>-<token>.parquet``, then commits them by
writing one small manifest, ``_manifests/<table>/venue=<v>/<key>.json``, in a single PUT (atomic on S3).
Readers and the catalog read only the parts that manifests name. After the commit, parts of the same
key that the new manifest does not name (the previous commit's, or a killed writer's) are deleted, so
a rerun replaces and cleans. One writer per input key at a time (a Dagster partition is one).
"""

from __future__ import annotations

import datetime as dt
import os
import posixpath
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from pipelines.lake.files import atomic_path
from pipelines.storage import transfer
from pipelines.storage.location import ObjectUrl
from pipelines.storage.stores import StorageError, StoreSettings, open_store, storage_error

MANIFESTS = "_manifests"


def manifest_key(table: str, venue: str, key: str) -> str:
    return f"{MANIFESTS}/{table}/venue={venue}/{key}.json"


def tokenized(relative: str, token: str) -> str:
    """``.../part-<key>.parquet`` -> ``.../part-<key>-<token>.parquet``."""
    head, name = posixpath.split(relative)
    stem, dot, ext = name.partition(".")
    return posixpath.join(head, f"{stem}-{token}{dot}{ext}")


def untokenized(remote: str) -> str:
    head, name = posixpath.split(remote)
    stem, dot, ext = name.partition(".")
    return posixpath.join(head, f"{stem.rsplit('-', 1)[0]}{dot}{ext}")


@dataclass
class RemoteLake:
    """The object-storage side of a lake whose root is ``url``; the local root is its working cache."""

    url: ObjectUrl
    settings: StoreSettings = field(default_factory=StoreSettings)
    _store: object = field(default=None, repr=False, compare=False)

    @property
    def store(self):
        if self._store is None:
            self._store = open_store(self.url, self.settings)
        return self._store

    def _fail(self, exc: BaseException, relative: str = "") -> StorageError:
        return storage_error(exc, self.url.url(relative) if relative else str(self.url), self.settings)

    def check(self) -> None:
        """Fail early, in one line, when the lake's bucket cannot be used (endpoint, credentials, bucket)."""
        try:
            transfer.head(self.store, f"{MANIFESTS}/.probe")
            list(zip(range(1), transfer.list_objects(self.store, MANIFESTS + "/")))
        except Exception as exc:  # noqa: BLE001 - every failure becomes one line
            raise self._fail(exc) from None

    # --- writes ------------------------------------------------------------------------------------
    def commit(
        self, table: str, venue: str, key: str, files: dict[str, Path], rows: dict[str, int] | None = None
    ) -> list[str]:
        """Upload ``files`` (lake-relative path -> local file) as input ``key``'s parts and commit them."""
        token = uuid.uuid4().hex[:12]
        mkey = manifest_key(table, venue, key)
        try:
            parts: list[dict[str, Any]] = []
            for relative, path in sorted(files.items()):
                remote = tokenized(relative, token)
                transfer.put_file(self.store, remote, path)
                parts.append({"path": remote, "bytes": path.stat().st_size})
            if os.environ.get("LIQF_FAULT_PAUSE_BEFORE_COMMIT_S"):  # fault injection: the window a crash can hit
                time.sleep(float(os.environ["LIQF_FAULT_PAUSE_BEFORE_COMMIT_S"]))
            old = self._manifest(mkey)
            manifest = {
                "table": table,
                "venue": venue,
                "key": key,
                "token": token,
                "parts": parts,
                "rows": rows or {},
                "committed_at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            }
            transfer.put_bytes(self.store, mkey, orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
            self._clean(
                key,
                {p["path"] for p in parts},
                [p["path"] for p in (old or {}).get("parts", [])] + [p["path"] for p in parts],
            )
        except StorageError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise self._fail(exc, mkey) from None
        return [p["path"] for p in parts]

    def _clean(self, key: str, keep: set[str], seen: list[str]) -> None:
        """Delete this key's parts that the committed manifest does not name (old commits, killed writers)."""
        folders = {posixpath.dirname(p) for p in seen}
        # obstore lists by path (whole segments), so list each folder and match the names
        stale = [
            o.key
            for folder in sorted(folders)
            for o in transfer.list_objects(self.store, folder)
            if posixpath.basename(o.key).startswith(f"part-{key}-") and o.key not in keep
        ]
        transfer.delete(self.store, stale)

    def put_raw(self, relative: str, path: Path) -> None:
        """Keep a raw input file (content-addressed, so an existing object is already the same bytes)."""
        try:
            if transfer.head(self.store, relative) is None:
                transfer.put_file(self.store, relative, path)
        except Exception as exc:  # noqa: BLE001
            raise self._fail(exc, relative) from None

    # --- reads ----------------------------------------------------------------------------------------
    def _manifest(self, mkey: str) -> dict | None:
        try:
            return orjson.loads(transfer.get_bytes(self.store, mkey))
        except FileNotFoundError:
            return None

    def manifests(self, table: str) -> list[dict]:
        """Every committed manifest of ``table`` (sorted by venue and key)."""
        try:
            keys = [
                o.key for o in transfer.list_objects(self.store, f"{MANIFESTS}/{table}/") if o.key.endswith(".json")
            ]
            with ThreadPoolExecutor(16) as pool:
                found = [m for m in pool.map(self._manifest, sorted(keys)) if m]
        except StorageError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise self._fail(exc, f"{MANIFESTS}/{table}/") from None
        return found

    def committed_parts(self, table: str) -> list[str]:
        """Lake-relative keys of ``table``'s committed parts."""
        return sorted(p["path"] for m in self.manifests(table) for p in m["parts"])

    def committed_urls(self, table: str) -> list[str]:
        return [self.url.url(p) for p in self.committed_parts(table)]

    def all_objects(self, under: str = "") -> list[transfer.ObjectInfo]:
        return list(transfer.list_objects(self.store, under))

    def pull(self, table: str, local_root: Path) -> int:
        """Mirror ``table``'s committed parts into the local working copy (``part-<key>.parquet``, as a
        local lake has them); parts of keys whose commit changed are replaced. Returns files fetched."""
        fetched = 0
        for m in self.manifests(table):
            stamp = local_root / MANIFESTS / table / f"venue={m['venue']}" / f"{m['key']}.token"
            if stamp.exists() and stamp.read_text() == m["token"]:
                continue
            for old in local_root.glob(f"*/{table}/venue={m['venue']}/**/part-{m['key']}.parquet"):
                old.unlink()
            for p in m["parts"]:
                dest = local_root / untokenized(p["path"])
                with atomic_path(dest) as tmp:
                    tmp.write_bytes(transfer.get_bytes(self.store, p["path"]))
                fetched += 1
            stamp.parent.mkdir(parents=True, exist_ok=True)
            stamp.write_text(m["token"])
        return fetched
