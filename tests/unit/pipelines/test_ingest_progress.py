"""Ingest progress in bytes of the inputs as stored, per file and overall, as the CLI renders it."""

from __future__ import annotations

import random
from functools import partial

import pytest
from rich.console import Console

from pipelines.ingest import streams
from pipelines.ingest.hyperliquid import files
from pipelines.ingest.progress import OVERALL
from pipelines.ingest.runner import InputsRefused, run_file_ingest
from tests.unit.pipelines.test_ingest_node_fills import block, fill, write_lines


def _hour(path, first_tid: int, n_blocks: int = 60):
    rng = random.Random(first_tid)
    lines = []
    for b in range(n_blocks):
        events = []
        for k in range(50):
            tid = first_tid + b * 50 + k
            user = "0x%040x" % rng.getrandbits(160)
            events.append(fill(user, tid, hash="0x%064x" % rng.getrandbits(256), px=f"{rng.uniform(1, 9e4):.2f}"))
        lines.append(block(b, events))
    return write_lines(path, lines)


@pytest.fixture
def small_reads(monkeypatch):
    """Reads and batches far smaller than the files, so each file reports progress many times."""
    monkeypatch.setattr(streams, "READ_CHUNK", 16 << 10)
    monkeypatch.setattr(files, "iter_raw_batches", partial(streams.iter_raw_batches, batch_bytes=64 << 10))


def _run(lake, paths):
    seen: dict[str, list[tuple[int, int]]] = {}
    listener = lambda name, done, total: seen.setdefault(name, []).append((done, total))  # noqa: E731
    try:
        reports = run_file_ingest(
            lake, node_fills=paths, snapshot=None, asset_ctxs=None, console=Console(), listener=listener
        )
    except InputsRefused as exc:
        reports = exc.reports
    return seen, reports


def _assert_climbs_to(updates: list[tuple[int, int]], total: int) -> None:
    done = [d for d, _ in updates]
    assert {t for _, t in updates} == {total}
    assert done[0] == 0 and done[-1] == total and done == sorted(done)


def test_progress_reaches_each_file_and_the_total(lake, tmp_path, small_reads):
    paths = [_hour(tmp_path / f"{h}.lz4", 10**6 * (h + 1)) for h in range(3)]
    sizes = {p.name: p.stat().st_size for p in paths}
    seen, reports = _run(lake, paths)

    assert [r.records_read == r.records_written + r.quarantined for r in reports] == [True] * 3
    assert sum(r.records_written for r in reports) == 3 * 60 * 50
    for name, size in sizes.items():
        _assert_climbs_to(seen[name], size)
        assert len(seen[name]) > 4  # progress while the file is read, not only at its end
    _assert_climbs_to(seen[OVERALL], sum(sizes.values()))
    assert len(seen[OVERALL]) == sum(len(seen[n]) for n in sizes) - len(sizes) + 1


def test_refused_file_still_ends_the_bar(lake, tmp_path, small_reads):
    good = _hour(tmp_path / "a.lz4", 10**6)
    cut = tmp_path / "b.lz4"
    data = _hour(tmp_path / "full.lz4", 2 * 10**6).read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    seen, reports = _run(lake, [good, cut])

    assert [r.source_name.rsplit("/", 1)[-1] for r in reports] == ["a.lz4"]
    _assert_climbs_to(seen["b.lz4"], cut.stat().st_size)
    _assert_climbs_to(seen[OVERALL], good.stat().st_size + cut.stat().st_size)
