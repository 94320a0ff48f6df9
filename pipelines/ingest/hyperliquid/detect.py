"""Which Hyperliquid format an input holds, from its content (never its name).

Looks at the first non-blank lines of the decoded input (lz4 or plain). Kinds:

* ``node_fills_by_block`` — ``{block_number, events: [[user, fill], ...]}`` lines
* ``misc_events_by_block`` — ``{block_number, events: [{time, hash, inner}, ...]}`` lines
* ``node_fills`` — legacy ``[user, fill]`` lines;  ``node_trades`` — ``{coin, side_info: [...]}`` lines
* ``clearinghouse_snapshot`` — ``{time, user, state}`` lines;  ``asset_ctxs_file`` — ``{time, ctxs}`` lines
* ``asset_ctxs_archive`` — CSV with a ``time,coin,...,mark_px`` header
* ``export:account_values`` / ``export:perp_positions`` / ``export:spot_balances`` — the snapshot export's arrays
"""

from __future__ import annotations

from pathlib import Path

import ijson
import orjson

from forensics.formats.hyperliquid import asset_ctxs_archive, snapshot_export
from forensics.formats.hyperliquid.misc_events import is_misc_block
from pipelines.ingest.streams import StreamState, decoded_chunks, peek_text

#: what each CLI option accepts, for the one-line error
EXPECTED = {
    "node-fills": "node_fills_by_block block lines, legacy node_fills [user, fill] lines or node_trades lines",
    "misc-events": "misc_events_by_block block lines ({block_number, events: [{time, hash, inner}]})",
    "snapshot": "clearinghouseState JSON lines ({time, user, state}) or the snapshot export "
    "(account_value_snapshot_/perp_positions_by_market_/spot_balances_ JSON arrays)",
    "asset-ctxs": "metaAndAssetCtxs JSON lines ({time, ctxs}) or the archive asset_ctxs CSV "
    "(time,coin,...,mark_px header)",
}
ACCEPTED = {
    "node-fills": {"node_fills_by_block", "node_fills", "node_trades"},
    "misc-events": {"misc_events_by_block"},
    "snapshot": {"clearinghouse_snapshot", "export:account_values", "export:perp_positions", "export:spot_balances"},
    "asset-ctxs": {"asset_ctxs_file", "asset_ctxs_archive"},
}


EMPTY_BLOCKS = "by_block:empty"
#: decoded bytes read for detection: enough for the keys and first items of any first line
PEEK_BYTES = 1 << 20
_EMPTY_AS = {"node-fills": "node_fills_by_block", "misc-events": "misc_events_by_block"}


class UnknownFormat(ValueError):
    pass


def _classify_line(obj: object) -> str | None:
    if isinstance(obj, list):
        if len(obj) == 2 and isinstance(obj[0], str) and isinstance(obj[1], dict):
            return "node_fills"
        return None
    if not isinstance(obj, dict):
        return None
    events = obj.get("events")
    if isinstance(events, list) and "block_number" in obj:
        if not events:
            return "block:empty"  # a block with no events says nothing yet
        if is_misc_block(obj):
            return "misc_events_by_block"
        if isinstance(events[0], list):
            return "node_fills_by_block"
        return None
    if "side_info" in obj and "coin" in obj:
        return "node_trades"
    if "state" in obj and "user" in obj:
        return "clearinghouse_snapshot"
    if "ctxs" in obj and "time" in obj:
        return "asset_ctxs_file"
    return None


def prefix_value(data: bytes) -> object:
    """The JSON value that ``data`` starts, as far as it goes: containers still open are closed and an
    unfinished key or scalar is dropped (ijson's streaming parser; memory bounded by ``data``). A line cut by
    the detection window (a node block line is megabytes long) still shows its keys and first items."""
    builder = ijson.ObjectBuilder()
    try:
        for _, event, value in ijson.parse(data, use_float=True):
            builder.event(event, value)
    except ijson.IncompleteJSONError:
        pass  # the window ended inside the value: what was read is the answer
    except ijson.JSONError:
        return None
    return getattr(builder, "value", None)


def detect(path: Path, max_lines: int = 200) -> str | None:
    """The input's kind, or None when it is none of the known formats. Reads at most ``PEEK_BYTES`` of
    the decoded input; a first line longer than that is classified from its prefix (:func:`prefix_value`)."""
    text = peek_text(path, PEEK_BYTES)
    stripped = text.lstrip("\ufeff \t\r\n")
    if not stripped:
        return None
    first_line = stripped.split("\n", 1)[0]
    if asset_ctxs_archive.is_archive_header(first_line.rstrip("\r")):
        return "asset_ctxs_archive"
    if stripped.startswith("[") and not stripped.startswith('["'):
        # one JSON array (the export) unless the first line is itself a [user, fill] pair
        try:
            kind = _classify_line(orjson.loads(first_line))
        except orjson.JSONDecodeError:
            kind = None
        if kind:
            return kind
        try:
            for _, item, error in snapshot_export.iter_array_items(decoded_chunks(path, StreamState())):
                return None if error else (f"export:{k}" if (k := snapshot_export.sniff_export(item)) else None)
        except snapshot_export.ExportError:
            return None
        return None
    seen_block = False
    lines = stripped.split("\n")
    window_full = len(text.encode()) >= PEEK_BYTES
    for i, line in enumerate(lines[:max_lines]):
        if not line.strip():
            continue
        cut = window_full and i == len(lines) - 1  # longer than what is left of the window
        try:
            # a cut line: its structure from the prefix, never the whole line in memory
            kind = _classify_line(prefix_value(line.encode()) if cut else orjson.loads(line))
        except orjson.JSONDecodeError:
            continue  # a bad line does not decide the format; later lines may
        if kind == "block:empty":
            seen_block = True
            continue
        if kind:
            return kind
    # a file of empty blocks only: by-block, fills or misc unknowable (no rows either way)
    return EMPTY_BLOCKS if seen_block else None


def check(path: Path, option: str) -> str:
    """The kind of ``path`` if ``--option`` accepts it; else UnknownFormat with a one-line message."""
    kind = detect(path)
    if kind == EMPTY_BLOCKS and option in _EMPTY_AS:
        return _EMPTY_AS[option]
    if kind not in ACCEPTED[option]:
        found = f"found {kind}" if kind else "format not recognised"
        raise UnknownFormat(f"{path}: {found}; --{option} expects {EXPECTED[option]}")
    return kind
