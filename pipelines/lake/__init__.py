"""The Parquet lake: layout, path safety, atomic and idempotent writes, and the one way to read a table.

* :mod:`.files`: atomic writes, content hashes, raw API writers, Parquet parts.
* :mod:`.core`: :class:`Lake` (paths, writes per input key, the raw layer, the repair of killed runs).
* :mod:`.remote`: an object-storage lake's commits (unique part names plus a manifest per input key).
* :mod:`.lineage`: the input versions an analysis was computed from, and whether the lake still holds them.
"""

from pipelines.lake.core import (
    CAPTURE_SOURCE,
    DEFAULT_CACHE,
    PART_GLOB,
    Lake,
    LakePathError,
    SweepResult,
    Window,
    conform,
    safe_segment,
    source_key,
)
from pipelines.lake.files import RawApiWriter, atomic_path, sha256_file, write_parquet

__all__ = [
    "CAPTURE_SOURCE",
    "DEFAULT_CACHE",
    "PART_GLOB",
    "SweepResult",
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
