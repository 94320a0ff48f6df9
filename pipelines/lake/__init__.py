"""The Parquet lake: layout, path safety, atomic and idempotent writes, and the one way to read a table.

* :mod:`.core`: :class:`Lake` (paths, writes per input key, the raw layer).
* :mod:`.remote`: an object-storage lake's commits (unique part names plus a manifest per input key).
"""

from pipelines.lake.core import (
    DEFAULT_CACHE,
    Lake,
    LakePathError,
    RawApiWriter,
    atomic_path,
    conform,
    safe_segment,
    sha256_file,
    source_key,
    write_parquet,
)

__all__ = [
    "DEFAULT_CACHE",
    "Lake",
    "LakePathError",
    "RawApiWriter",
    "atomic_path",
    "conform",
    "safe_segment",
    "sha256_file",
    "source_key",
    "write_parquet",
]
