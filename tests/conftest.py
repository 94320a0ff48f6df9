"""Shared fixtures: real-data paths (skipped when absent) and a fresh lake per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# ../shared next to the project; LIQF_SHARED points elsewhere (a git worktree has no ../shared)
SHARED = Path(os.environ.get("LIQF_SHARED") or PROJECT_ROOT.parent / "shared")
REALDATA = SHARED / "realdata"
API_EXAMPLES = SHARED / "reference" / "api-examples"

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


def shared_file(path: Path) -> Path:
    """A file under ../shared, or skip the test naming the missing path."""
    if not path.exists():
        pytest.skip(f"real data not available: ../shared/{path.relative_to(SHARED)}")
    return path


@pytest.fixture
def realdata():
    return lambda rel: shared_file(REALDATA / rel)


@pytest.fixture
def api_example():
    return lambda name: shared_file(API_EXAMPLES / name)


@pytest.fixture
def lake(tmp_path):
    from pipelines.lake import Lake

    return Lake(tmp_path / "lake")
