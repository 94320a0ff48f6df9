"""The Parquet lake: layout, path safety, atomic and idempotent writes, and the one way to read a table.

* :mod:`.files`: atomic writes, content hashes, raw API writers, Parquet parts.
* :mod:`.core`: :class:`Lake` (paths, writes per input key, the raw layer).
* :mod:`.remote`: an object-storage lake's commits (unique part names plus a manifest per input key).
"""

from pipelines.lake.core import DEFAULT_CACHE, Lake, LakePathError, Window, conform, safe_segment, source_key
from pipelines.lake.files import RawApiWriter, atomic_path, sha256_file, write_parquet

__all__ = [
    "DEFAULT_CACHE",
    "Lake",
    "LakePathError",
    "Window",
    "RawApiWriter",
    "atomic_path",
    "conform",
    "safe_segment",
    "sha256_file",
    "source_key",
    "write_parquet",
]
