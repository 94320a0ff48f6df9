"""Constant-memory line streams over plain or lz4-frame compressed JSON-lines files."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import lz4.frame
import pyarrow as pa

LZ4_MAGIC = b"\x04\x22\x4d\x18"
READ_CHUNK = 4 << 20


@dataclass
class LineBatch:
    """Decoded lines (Arrow ``line_no: int64, line: string``) plus lines that could not be decoded."""

    lines: pa.Table
    bad: list[tuple[int, None, str, str]]


class StreamState:
    """What the stream found besides lines: a truncated or corrupt tail is reported, not raised."""

    def __init__(self) -> None:
        self.tail_error: str | None = None
        self.tail_text: str = ""
        self.tail_line: int | None = None


def _raw_chunks(path: Path, state: StreamState) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        head = fh.read(4)
        fh.seek(0)
        if head != LZ4_MAGIC:
            while chunk := fh.read(READ_CHUNK):
                yield chunk
            return
        decomp = lz4.frame.LZ4FrameDecompressor()
        offset = 0
        while chunk := fh.read(READ_CHUNK):
            try:
                out = decomp.decompress(chunk)
            except RuntimeError as exc:
                state.tail_error = f"corrupt lz4 frame near compressed byte {offset}: {exc}"
                return
            offset += len(chunk)
            if out:
                yield out
            if decomp.eof:
                if decomp.unused_data:
                    state.tail_error = "trailing bytes after the lz4 frame"
                return
        if not decomp.eof:
            state.tail_error = f"truncated lz4 frame: input ends at compressed byte {offset} before the frame end"


def iter_line_batches(path: Path, state: StreamState, batch_bytes: int = 64 << 20) -> Iterator[LineBatch]:
    """Yield batches of complete lines (1-based numbering); blank lines carry no record and are skipped."""
    pending = b""
    line_no = 0
    nums: list[int] = []
    texts: list[bytes] = []
    size = 0
    for chunk in _raw_chunks(path, state):
        data = pending + chunk
        parts = data.split(b"\n")
        pending = parts.pop()
        for part in parts:
            line_no += 1
            if part.strip():
                nums.append(line_no)
                texts.append(part)
                size += len(part)
        if size >= batch_bytes:
            yield _batch(nums, texts)
            nums, texts, size = [], [], 0
    if pending.strip():
        line_no += 1
        if state.tail_error:
            # the last partial line of a truncated input: keep it for the quarantine, do not parse it
            state.tail_line = line_no
            state.tail_text = pending[:8192].decode("utf-8", "replace")
        else:
            nums.append(line_no)
            texts.append(pending)
    if texts:
        yield _batch(nums, texts)


def _batch(nums: list[int], texts: list[bytes]) -> LineBatch:
    try:
        arr = pa.array(texts, pa.binary()).cast(pa.string())  # validates UTF-8 in C
        return LineBatch(pa.table({"line_no": pa.array(nums, pa.int64()), "line": arr}), [])
    except pa.ArrowInvalid:
        good_n, good_t, bad = [], [], []
        for n, t in zip(nums, texts):
            try:
                good_t.append(t.decode("utf-8"))
                good_n.append(n)
            except UnicodeDecodeError:
                bad.append((n, None, "line is not valid UTF-8", t[:8192].decode("utf-8", "replace")))
        return LineBatch(pa.table({"line_no": pa.array(good_n, pa.int64()), "line": pa.array(good_t, pa.string())}), bad)
