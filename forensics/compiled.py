"""Where the compiled kernels (numba) are cached.

numba keys a function's cache on its own source file only, so a kernel that calls another module's kernel
would load a stale (and crashing) binary after that module changed. The cache therefore lives in a folder
named after a digest of every source file of this library: any change starts a fresh cache. The folder is
under the user's cache directory (``$XDG_CACHE_HOME`` or ``~/.cache``), or ``$NUMBA_CACHE_DIR`` as set.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numba

_ROOT = Path(__file__).resolve().parent


def source_digest() -> str:
    """A digest of this library's Python sources (names and bytes)."""
    h = hashlib.sha256()
    for path in sorted(_ROOT.rglob("*.py")):
        h.update(str(path.relative_to(_ROOT)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def configure_cache() -> Path | None:
    """Point numba's cache at the folder of this version of the sources (unless the user chose one)."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return None
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    folder = base / "liquidation-forensics" / "numba" / source_digest()
    numba.config.CACHE_DIR = str(folder)  # type: ignore[attr-defined]  # set at runtime by numba's config
    return folder


configure_cache()
#: the decorators every compiled kernel of this library uses (imported from here, so the cache is set first)
njit = numba.njit
prange = numba.prange
