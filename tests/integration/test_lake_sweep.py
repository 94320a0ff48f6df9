"""The repair a lake-writing command starts with (``Lake.sweep_temporaries``): what a killed writer left is
removed, what a live writer (another run, a stream capture) is still writing is kept."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from pipelines.lake import CAPTURE_SOURCE, Lake
from pipelines.lake.files import STAGING_DIR, TMP_SUFFIX, atomic_path


def _dead_writer(lake: Lake, target: Path) -> None:
    """A process that opens a temporary for ``target`` (and a staging directory) and is SIGKILLed while
    holding both, as a killed ingest leaves them."""
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from pipelines.lake import Lake\n"
        "from pipelines.lake.files import atomic_path\n"
        "lake = Lake(Path(sys.argv[1]))\n"
        "with lake.staging() as s, atomic_path(Path(sys.argv[2])) as tmp:\n"
        "    tmp.write_bytes(b'PAR1 half a part')\n"
        "    (s / 'fills-2025-10-10.parquet').write_bytes(b'staged')\n"
        "    print('ready', flush=True)\n"
        "    time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(lake.root), str(target)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def test_sweep_removes_a_killed_writers_temporaries_and_keeps_live_ones(tmp_path):
    lake = Lake(tmp_path / "lake")
    day = lake.root / "normalized" / "fills" / "venue=hyperliquid" / "date=2025-10-10"
    _dead_writer(lake, day / "part-00000000aaaaaaaa.parquet")
    dead = [p for p in day.iterdir() if p.name.endswith(TMP_SUFFIX)]
    assert len(dead) == 1 and len(list((lake.root / STAGING_DIR).iterdir())) == 1
    # an older release's temporary (before the .partial suffix) is the same garbage
    legacy = day / ".tmp-k2j3h4.parquet"
    legacy.write_bytes(b"PAR1")
    # a stream capture's open hour file: messages received, kept
    capture = lake.root / "raw" / "venue=binance" / CAPTURE_SOURCE / "date=2025-10-10" / "hour=21" / ".tmp-ab12.jsonl"
    capture.parent.mkdir(parents=True)
    capture.write_text('{"received_at": 1}\n')

    with lake.staging() as live_dir, atomic_path(day / "part-00000000bbbbbbbb.parquet") as live_tmp:
        live_tmp.write_bytes(b"being written")
        swept = lake.sweep_temporaries()
        assert (swept.files, swept.dirs) == (2, 1) and swept.bytes > 0
        assert live_tmp.exists() and live_dir.exists()  # locked by this (live) writer
        assert not dead[0].exists() and not legacy.exists() and capture.exists()
        assert [p.name for p in (lake.root / STAGING_DIR).iterdir()] == [live_dir.name]
    assert (day / "part-00000000bbbbbbbb.parquet").read_bytes() == b"being written"
    assert lake.sweep_temporaries() == type(swept)()  # nothing left to repair
    assert capture.exists()


def test_a_staging_directory_being_created_is_left_for_an_hour(tmp_path):
    lake = Lake(tmp_path / "lake")
    making = lake.root / STAGING_DIR / ".creating-x1"
    making.mkdir(parents=True)
    assert lake.sweep_temporaries().dirs == 0 and making.exists()
    old = time.time() - 7200
    os.utime(making, (old, old))
    assert lake.sweep_temporaries().dirs == 1 and not making.exists()
