"""Real-sized node lines: formats are detected from a bounded prefix of the first line's structure, and an
hour's Funding block (one line of tens of MB) is ingested without holding it parsed.

Lines of 1 KB, 1 MiB + 1 byte (one more than the detection window) and 64 MB, generated here (tmp_path),
lz4-framed as the node archive publishes them.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import lz4.frame
import orjson
import pytest

from forensics.formats.hyperliquid import misc_events
from pipelines.ingest.hyperliquid import detect

T = "2025-10-10T21:00:00.025745321"
KB, MIB = 1024, 1 << 20
SIZES = {"1KB": KB, "1MiB+1": MIB + 1, "64MB": 64 * MIB}


def funding_line(size: int, seed: int = 1, block: int = 758800000) -> tuple[bytes, int]:
    """One misc block line of exactly ``size`` bytes (newline excluded): a Funding event whose deltas fill it."""
    rnd = random.Random(seed)
    head = orjson.dumps({"local_time": T, "block_time": T, "block_number": block})[:-1] + (
        b',"events":[{"time":"' + T.encode() + b'","hash":"0x' + b"0" * 64 + b'","inner":{"Funding":{"deltas":['
    )
    tail = b"]}}}]}"
    parts, used, n = [head], len(head) + len(tail), 0
    while True:
        d = orjson.dumps(
            {
                "user": f"0x{rnd.getrandbits(160):040x}",
                "coin": ("BTC", "ETH", "SOL")[n % 3],
                "funding_amount": f"{rnd.random() - 0.5:.6f}",
                "szi": f"{rnd.random() * 100:.4f}",
                "funding_rate": "0.0000125",
            }
        )
        if used + len(d) + (n > 0) > size:
            break
        parts.append((b"," if n else b"") + d)
        used += len(d) + (n > 0)
        n += 1
    line = b"".join(parts) + b" " * (size - used) + tail  # whitespace between tokens makes the size exact
    assert len(line) == size
    return line, n


def fills_line(size: int) -> bytes:
    """One node_fills_by_block line of ``size`` bytes."""
    fill = {
        "coin": "BTC",
        "px": "100.5",
        "sz": "0.1",
        "side": "B",
        "time": 1760130964831,
        "startPosition": "0.0",
        "dir": "Open Long",
        "closedPnl": "0.0",
        "hash": "0x" + "00" * 32,
        "oid": 1,
        "crossed": True,
        "fee": "0.01",
        "tid": 1,
        "feeToken": "USDC",
    }
    head = json.dumps({"local_time": T, "block_time": T, "block_number": 1}).encode()[:-1] + b',"events":['
    one = json.dumps(["0x" + "a" * 40, fill]).encode()
    n = max(1, (size - len(head) - 2) // (len(one) + 1))  # a line of n events is at most size bytes
    line = head + b",".join([one] * n) + b"]}"
    return line[:-2] + b" " * (size - len(line)) + b"]}"


def write_lz4(path: Path, lines: list[bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with lz4.frame.open(path, "wb") as fh:
        for line in lines:
            fh.write(line + b"\n")
    return path


@pytest.mark.parametrize("size", list(SIZES))
def test_misc_file_opening_with_a_funding_block_of_any_size_is_detected(tmp_path, size):
    line, _ = funding_line(SIZES[size])
    after = json.dumps({"local_time": T, "block_time": T, "block_number": 758800001, "events": []}).encode()
    path = write_lz4(tmp_path / "20251010" / "21.lz4", [line, after])
    assert detect.detect(path) == "misc_events_by_block"
    assert detect.check(path, "misc-events") == "misc_events_by_block"
    with pytest.raises(detect.UnknownFormat, match="found misc_events_by_block"):
        detect.check(path, "node-fills")


@pytest.mark.parametrize("size", ["1KB", "1MiB+1"])
def test_fills_file_opening_with_a_large_block_is_detected(tmp_path, size):
    path = write_lz4(tmp_path / "f.lz4", [fills_line(SIZES[size])])
    assert detect.detect(path) == "node_fills_by_block"


def test_prefix_value_closes_what_the_window_cut():
    cut = b'{"block_number": 7, "events": [{"time": "x", "hash": "0x1", "inner": {"Funding": {"deltas": [{"user": "0x'
    assert detect.prefix_value(cut) == {
        "block_number": 7,
        "events": [{"time": "x", "hash": "0x1", "inner": {"Funding": {"deltas": [{}]}}}],
    }
    assert detect.prefix_value(b'{"a": tru') == {}
    assert detect.prefix_value(b"not json") is None


def test_streamed_funding_line_equals_the_whole_line_parse():
    line, n = funding_line(3 * MIB, seed=4)
    # hostile deltas and a second event in the same line: every record still lands once
    block = orjson.loads(line)
    deltas = block["events"][0]["inner"]["Funding"]["deltas"]
    deltas[5] = {"user": "nope", "coin": "BTC", "funding_amount": "1"}
    deltas[n - 1] = "not an object"
    block["events"].append(
        {
            "time": T,
            "hash": "0x" + "2" * 64,
            "inner": {"LedgerUpdate": {"users": ["0x" + "b" * 40], "delta": {"type": "deposit", "usdc": "5"}}},
        }
    )
    block["events"].append({"time": T, "inner": {"Teleport": {}}})
    text = orjson.dumps(block)
    whole = misc_events.MiscBatch()
    misc_events.normalize_misc_line(3, text.decode(), whole)
    streamed, chunks = misc_events.MiscBatch(), []

    def flush(out):  # what the ingest does between chunks: take the rows away
        chunks.append(len(out.funding))
        flush.rows.extend(out.funding)
        out.funding = []

    flush.rows = []
    misc_events.normalize_large_misc_line(3, text, streamed, flush, chunk=10_000)
    assert len(chunks) > 1 and max(chunks) <= 10_000
    assert flush.rows + streamed.funding == whole.funding
    assert (streamed.ledger, streamed.rejects, streamed.blocks) == (whole.ledger, whole.rejects, whole.blocks)
    assert (streamed.records_read, streamed.records_written) == (whole.records_read, whole.records_written)
    assert whole.records_read == n + 2 and len(whole.rejects) == 3


def test_64mb_funding_line_ingests_in_bounded_memory(tmp_path):
    """The real layout's hour file opening with a 64 MB Funding block: detected, ingested through the CLI,
    every delta a row; the ingest's peak memory is measured in its own process."""
    line, n = funding_line(SIZES["64MB"], seed=2)
    after = json.dumps({"local_time": T, "block_time": T, "block_number": 758800001, "events": []}).encode()
    path = write_lz4(tmp_path / "misc_events_by_block" / "hourly" / "20251010" / "21.lz4", [line, after])
    del line
    # VmHWM, the peak of this process's own memory: ru_maxrss would also count the parent's RSS at fork
    # (the kernel keeps the forked image's high-water mark across exec), i.e. pytest's, not the ingest's
    probe = (
        "import re, sys\nfrom pipelines.cli import app\n"
        "try:\n    app(sys.argv[1:])\nexcept SystemExit as e:\n    code = e.code\n"
        "hwm = re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read()).group(1)\n"
        "print('maxrss_mb', int(hwm) // 1024, file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            probe,
            "--lake",
            str(tmp_path / "lake"),
            "--db",
            str(tmp_path / "c.duckdb"),
            "ingest",
            "hyperliquid",
            "--misc-events",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    assert f"read {n:,} = written {n:,} + quarantined 0" in r.stderr and f"funding_payments {n:,}" in r.stderr
    peak = int(r.stderr.rsplit("maxrss_mb", 1)[1].split()[0])
    print(f"64 MB funding line, {n:,} deltas: ingest peak RSS {peak} MB")
    assert peak < 900, f"peak {peak} MB"
