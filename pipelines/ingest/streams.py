"""Constant-memory line streams over plain or lz4-frame compressed JSON-lines files.

Every stream counts the bytes it has read of the input as stored (compressed bytes of an lz4 file) in its
:class:`StreamState`, and each raw batch says how many had been read when it was cut: progress against the
file's size."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import lz4.frame
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

LZ4_MAGIC = b"\x04\x22\x4d\x18"
READ_CHUNK = 4 << 20


@dataclass
class LineBatch:
    """Decoded lines (Arrow ``line_no: int64, line: string``) plus lines that could not be decoded."""

    lines: pa.Table
    bad: list[tuple[int, None, str, str]]


@dataclass
class RawBatch:
    """Complete lines as decoded bytes (``data`` ends with a newline), the number of the first, and how many
    bytes of the input as stored had been read when the batch was cut."""

    data: bytes
    first_line: int
    lines: int
    input_bytes: int


class StreamState:
    """What the stream found besides lines: a truncated or corrupt tail is reported, not raised. ``bytes_read``
    counts the input's stored bytes read so far."""

    def __init__(self) -> None:
        self.tail_error: str | None = None
        self.tail_text: str = ""
        self.tail_line: int | None = None
        self.bytes_read = 0

    def read(self, n: int) -> None:
        self.bytes_read += n


def open_input(path: Path) -> BinaryIO:
    """The one place an input is opened (binary, as stored; lz4 is decoded by the readers)."""
    return open(path, "rb")


def decoded_chunks(path: Path, state: StreamState) -> Iterator[bytes]:
    """The input's bytes, lz4 frames decoded, in chunks; a truncated or corrupt tail sets ``state.tail_error``."""
    return _raw_chunks(path, state)


def peek_text(path: Path, limit: int = 1 << 20) -> str:
    """Up to ``limit`` decoded bytes from the start of the input, as text (for format detection)."""
    state = StreamState()
    out = b""
    for chunk in _raw_chunks(path, state):
        out += chunk
        if len(out) >= limit:
            break
    return out[:limit].decode("utf-8", "replace")


def _raw_chunks(path: Path, state: StreamState) -> Iterator[bytes]:
    with open_input(path) as fh:
        head = fh.read(4)
        fh.seek(0)
        if head != LZ4_MAGIC:
            while chunk := fh.read(READ_CHUNK):
                state.read(len(chunk))
                yield chunk
            return
        decomp = lz4.frame.LZ4FrameDecompressor()
        offset = 0
        while chunk := fh.read(READ_CHUNK):
            state.read(len(chunk))
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


def iter_raw_batches(path: Path, state: StreamState, batch_bytes: int = 32 << 20) -> Iterator[RawBatch]:
    """Yield batches of complete lines as bytes, about ``batch_bytes`` each (1-based line numbers); a line
    longer than that is one batch. The last partial line of a truncated input is kept in ``state`` for the
    quarantine, never yielded; the last line of a complete input gets its missing newline."""
    pending = b""
    first_line = 1
    buf: list[bytes] = []
    size = 0
    for chunk in _raw_chunks(path, state):
        buf.append(chunk)
        size += len(chunk)
        cut = chunk.rfind(b"\n") + 1 if size >= batch_bytes else 0
        if cut:  # the batch ends at this chunk's last newline; a line longer than a chunk waits for one
            data = b"".join([pending, *buf[:-1], memoryview(chunk)[:cut]])
            pending = chunk[cut:]
            n = data.count(b"\n")
            yield RawBatch(data, first_line, n, state.bytes_read)
            first_line += n
            buf, size = [], len(pending)
    data = pending + b"".join(buf)
    if data:
        if not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            tail = data[cut:]
            if state.tail_error and tail.strip():
                # the last partial line of a truncated input: kept for the quarantine, never parsed
                state.tail_line = first_line + data[:cut].count(b"\n")
                state.tail_text = tail[:8192].decode("utf-8", "replace")
                data = data[:cut]
            else:
                data += b"\n"
        if data:
            yield RawBatch(data, first_line, data.count(b"\n"), state.bytes_read)


def iter_line_batches(path: Path, state: StreamState, batch_bytes: int = 32 << 20) -> Iterator[LineBatch]:
    """Yield batches of complete lines (1-based numbering); blank lines carry no record and are skipped.

    Lines are cut with numpy on the decompressed buffer and wrapped as an Arrow string array without
    copying each line into a Python object; each batch's bytes are copied once.
    """
    for raw in iter_raw_batches(path, state, batch_bytes):
        yield _batch(raw.data, raw.first_line)[0]


def selected_lines(data: bytes, starts: np.ndarray, ends: np.ndarray, line_nos: np.ndarray) -> LineBatch:
    """Some lines of a raw batch (``data[starts[k]:ends[k]]``, numbered ``line_nos[k]``) as a :class:`LineBatch`,
    decoded and checked as :func:`iter_line_batches` does."""
    if not len(line_nos):
        return LineBatch(pa.table({"line_no": pa.array([], pa.int64()), "line": pa.array([], pa.string())}), [])
    joined = b"\n".join(data[s:e] for s, e in zip(starts.tolist(), ends.tolist())) + b"\n"
    batch, _ = _batch(joined, 0)  # numbered 0.. in the joined buffer, then given their own numbers
    numbers = pa.array(line_nos, pa.int64())
    lines = batch.lines.set_column(0, "line_no", pc.take(numbers, batch.lines["line_no"]))
    bad = [(int(line_nos[k]), item, reason, raw) for k, item, reason, raw in batch.bad]
    return LineBatch(lines, bad)


def _batch(data: bytes, first_line: int) -> tuple[LineBatch, int]:
    """``data`` ends with a newline. Returns the non-blank lines and the next line number."""
    raw = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(raw == 10)
    n = len(ends)
    offsets = np.empty(n + 1, dtype=np.int64)
    offsets[0] = 0
    offsets[1:] = ends + 1  # each line keeps its newline; stripped below
    lines = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))
    numbers = np.arange(first_line, first_line + n, dtype=np.int64)
    keep = np.ones(n, dtype=bool)
    bad: list[tuple[int, None, str, str]] = []
    try:
        lines.validate(full=True)
    except pa.ArrowInvalid:  # rare: some line is not UTF-8; sort lines out one by one
        starts = offsets[:-1]
        texts: list[str | None] = []
        for i in range(n):
            text = data[starts[i] : ends[i]]
            try:
                texts.append(text.decode("utf-8"))
            except UnicodeDecodeError:
                texts.append(None)
                bad.append((int(numbers[i]), None, "line is not valid UTF-8", text[:8192].decode("utf-8", "replace")))
        keep &= np.array([t is not None for t in texts], dtype=bool)
        lines = pa.array([t or "" for t in texts], pa.large_string())
    lines = pc.utf8_rtrim(lines, characters="\r\n").cast(pa.string())
    keep &= ~_blank(lines, raw[offsets[:-1]])
    table = pa.table({"line_no": pa.array(numbers), "line": lines})
    if not keep.all():
        table = table.filter(pa.array(keep))
    return LineBatch(table, bad), first_line + n


def _blank(lines: pa.StringArray, first_bytes: np.ndarray) -> np.ndarray:
    """Lines that are empty or whitespace only. Only a line whose first byte is ASCII whitespace or
    control, or starts a non-ASCII character, can be; only those are trimmed and measured."""
    blank = np.zeros(len(lines), dtype=bool)
    maybe = np.flatnonzero((first_bytes <= 32) | (first_bytes >= 128))
    if len(maybe):
        trimmed = pc.utf8_trim_whitespace(lines.take(pa.array(maybe)))
        blank[maybe] = pc.equal(pc.utf8_length(trimmed), 0).to_numpy(zero_copy_only=False)
    return blank
