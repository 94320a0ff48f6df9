"""Streaming capture of public liquidation feeds into hourly raw partitions, with gaps recorded.

``liqf capture binance`` records ``!forceOrder@arr``; ``liqf capture bybit`` subscribes to
``allLiquidation.{symbol}``. Messages are appended, as received and with the receive time, to

    raw/venue=<v>/source=ws/date=<d>/hour=<HH>/<session>.jsonl       (open: .tmp-<session>.jsonl)

and a file is renamed to its final name when its hour closes (or the capture stops), so a closed hour
is exactly a file without the ``.tmp-`` prefix; :func:`normalize_hour` (the Dagster sensor's job) turns
one into ``cex_liquidations`` rows with the usual quarantine and reconciliation.

Liveness: a message or a pong must arrive within ``heartbeat_s`` (Bybit gets an ``{"op": "ping"}``,
Binance a WebSocket ping); otherwise, or on a disconnect, the capture reconnects with backoff. Every
interruption is a row in ``capture_gaps`` (last moment known alive -> live again, reason, reconnects):
a feed with gaps under-counts, and the table says where.

The transport is an injectable :class:`Connector` (default: the ``websockets`` sync client); tests run
it over real sockets against the local venue server's WebSocket routes.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from forensics.formats.cex import binance as fb
from forensics.formats.cex import bybit as fy
from forensics.formats.cex.common import RecordError, rows_to_arrow
from forensics.tables.cex import CAPTURE_GAPS, CEX_LIQUIDATIONS
from pipelines.ingest.common import finish, now_utc, raw_text, write_rows
from pipelines.ingest.report import IngestReport
from pipelines.lake import CAPTURE_SOURCE, Lake, safe_segment, sha256_file, source_key

__all__ = ["CaptureError", "CaptureStats", "Connector", "closed_hours", "normalize_hour", "run_capture"]

DEFAULT_URLS = {
    "binance": "wss://fstream.binance.com/ws/!forceOrder@arr",
    "bybit": "wss://stream.bybit.com/v5/public/linear",
}
STREAMS = {"binance": "!forceOrder@arr", "bybit": "allLiquidation"}


class CaptureError(RuntimeError):
    """Bad capture arguments."""


class Connection(Protocol):
    def send(self, text: str) -> None: ...
    def recv(self, timeout: float) -> str | None: ...  # None on timeout; raises ConnectionError when closed
    def ping(self, timeout: float) -> bool: ...
    def close(self) -> None: ...


Connector = Callable[[str], Connection]


class _WsConnection:
    """``websockets.sync.client`` behind the :class:`Connection` protocol."""

    def __init__(self, url: str) -> None:
        self._ws = connect(url, open_timeout=10, ping_interval=None, max_size=2**22)

    def send(self, text: str) -> None:
        try:
            self._ws.send(text)
        except ConnectionClosed as exc:
            raise ConnectionError(f"closed: {exc}") from None

    def recv(self, timeout: float) -> str | None:
        try:
            msg = self._ws.recv(timeout=timeout)
        except TimeoutError:
            return None
        except ConnectionClosed as exc:
            raise ConnectionError(f"closed: {exc}") from None
        return msg if isinstance(msg, str) else msg.decode("utf-8", "replace")

    def ping(self, timeout: float) -> bool:
        try:
            return self._ws.ping().wait(timeout)
        except Exception:  # noqa: BLE001 - any failure means not alive
            return False

    def close(self) -> None:
        self._ws.close()


def websockets_connector(url: str) -> Connection:
    try:
        return _WsConnection(url)
    except ImportError:
        raise CaptureError("the `websockets` package is not installed") from None
    except OSError as exc:
        raise ConnectionError(str(exc)) from None
    except Exception as exc:  # websockets handshake errors
        raise ConnectionError(f"{type(exc).__name__}: {exc}") from None


@dataclass
class CaptureStats:
    venue: str
    session: str
    messages: int = 0
    connects: int = 0
    gaps: list[dict[str, Any]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    def summary(self) -> str:
        gap_ms = sum((g["duration_ms"] or 0) for g in self.gaps)
        return (
            f"{self.venue}: {self.messages:,} messages in {len(self.files)} hourly files, "
            f"{self.connects} connection(s), {len(self.gaps)} gap(s) totalling {gap_ms / 1000:.1f} s"
        )


class _HourlySink:
    def __init__(self, lake: Lake, venue: str, session: str) -> None:
        self.base = lake.root / "raw" / f"venue={safe_segment(venue, 'venue')}" / CAPTURE_SOURCE
        self.session = session
        self._key: tuple[str, int] | None = None
        self._fh: Any = None
        self._tmp: Path | None = None
        self.closed: list[Path] = []

    def write(self, received_ms: int, stream: str, text: str) -> None:
        t = dt.datetime.fromtimestamp(received_ms / 1000, dt.UTC)
        key = (t.date().isoformat(), t.hour)
        if key != self._key:
            self.close()
            folder = self.base / f"date={key[0]}" / f"hour={key[1]:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            self._tmp = folder / f".tmp-{self.session}.jsonl"
            self._fh = open(self._tmp, "ab")
            self._key = key
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            msg = None
        line = (
            {"received_at": received_ms, "stream": stream, "msg": msg}
            if msg is not None
            else {"received_at": received_ms, "stream": stream, "text": text[:8192]}
        )
        self._fh.write(orjson.dumps(line) + b"\n")
        self._fh.flush()

    def close(self) -> None:
        if self._fh is not None and self._tmp is not None:
            self._fh.close()
            final = self._tmp.with_name(f"{self.session}.jsonl")
            os.replace(self._tmp, final)
            self.closed.append(final)
        self._fh = self._tmp = self._key = None


def run_capture(
    lake: Lake,
    venue: str,
    *,
    url: str | None = None,
    symbols: Sequence[str] | None = None,
    duration_s: float | None = None,
    max_messages: int | None = None,
    heartbeat_s: float = 30.0,
    backoff_s: float = 1.0,
    backoff_max_s: float = 30.0,
    connector: Connector | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    progress: Callable[[str], None] | None = None,
) -> CaptureStats:
    """Capture until ``duration_s`` / ``max_messages`` (or Ctrl-C); returns stats; gaps are written to the lake."""
    if venue not in DEFAULT_URLS:
        raise CaptureError(f"no capture for {venue!r}; one of {', '.join(DEFAULT_URLS)}")
    url = url or DEFAULT_URLS[venue]
    if not url.startswith(("ws://", "wss://")):
        raise CaptureError(f"--url must be ws:// or wss://, got {url[:60]!r}")
    syms = list(symbols or ("BTCUSDT", "ETHUSDT"))
    for s in syms:
        try:
            fy.symbol(s)
        except RecordError as exc:
            raise CaptureError(str(exc)) from None
    stream = STREAMS[venue] if venue == "binance" else ",".join(f"allLiquidation.{s}" for s in syms)
    connector = connector or websockets_connector
    start = clock()
    session = source_key("ws", venue, stream, int(start * 1000))
    stats = CaptureStats(venue, session)
    sink = _HourlySink(lake, venue, session)
    last_alive_ms = int(start * 1000)
    gap: dict[str, Any] | None = None
    wait = backoff_s

    def done() -> bool:
        return (duration_s is not None and clock() - start >= duration_s) or (
            max_messages is not None and stats.messages >= max_messages
        )

    try:
        while not done():
            try:
                conn = connector(url)
            except ConnectionError as exc:
                if gap is None:
                    gap = {"gap_start_ms": last_alive_ms, "reason": f"connect_failed: {exc}"[:300], "reconnects": 0}
                gap["reconnects"] += 1
                sleep(wait)
                wait = min(backoff_max_s, wait * 2)
                continue
            stats.connects += 1
            try:
                if venue == "bybit":
                    conn.send(orjson.dumps({"op": "subscribe", "args": stream.split(",")}).decode())
                now_ms = int(clock() * 1000)
                if gap is not None:
                    _close_gap(stats, gap, now_ms, stream)
                    gap = None
                elif stats.connects > 1:
                    pass
                wait = backoff_s
                last_alive_ms = now_ms
                idle_since = clock()
                while not done():
                    text = conn.recv(timeout=min(1.0, heartbeat_s))
                    now = clock()
                    if text is None:
                        if now - idle_since >= heartbeat_s:
                            alive = _heartbeat(conn, venue, heartbeat_s)
                            if not alive:
                                raise TimeoutError("no message or pong within heartbeat")
                            idle_since = clock()
                            last_alive_ms = int(idle_since * 1000)
                        continue
                    idle_since = now
                    last_alive_ms = int(now * 1000)
                    if venue == "bybit" and (
                        '"op":"subscribe"' in text or '"op":"pong"' in text or '"op": "pong"' in text
                    ):
                        continue
                    sink.write(last_alive_ms, stream, text)
                    stats.messages += 1
                    if progress and stats.messages % 1000 == 0:
                        progress(f"{venue}: {stats.messages:,} messages")
            except (ConnectionError, TimeoutError) as exc:
                reason = "heartbeat_timeout" if isinstance(exc, TimeoutError) else "disconnect"
                gap = {"gap_start_ms": last_alive_ms, "reason": f"{reason}: {exc}"[:300], "reconnects": 0}
                if progress:
                    progress(f"{venue}: stream lost ({reason}); reconnecting")
            finally:
                try:
                    conn.close()
                except Exception:  # noqa: BLE001
                    pass
    finally:
        sink.close()
        if gap is not None:
            gap["reason"] = f"stopped while down ({gap['reason']})"[:300]
            _close_gap(stats, gap, None, stream)
        stats.files = sink.closed
        _write_gaps(lake, venue, stats)
    return stats


def _heartbeat(conn: Connection, venue: str, timeout: float) -> bool:
    if venue == "bybit":
        try:
            conn.send('{"op":"ping"}')
            reply = conn.recv(timeout=timeout)
        except ConnectionError:
            return False
        return reply is not None
    return conn.ping(timeout)


def _close_gap(stats: CaptureStats, gap: dict[str, Any], end_ms: int | None, stream: str) -> None:
    gap["gap_end_ms"] = end_ms
    gap["duration_ms"] = None if end_ms is None else end_ms - gap["gap_start_ms"]
    gap["stream"] = stream
    gap["time_ms"] = gap["gap_start_ms"]
    stats.gaps.append(gap)


def _write_gaps(lake: Lake, venue: str, stats: CaptureStats) -> None:
    rows = [{**g, "gap_start": None} for g in stats.gaps]
    for r in rows:
        r["gap_start"] = dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=r["gap_start_ms"])
    data = rows_to_arrow(CAPTURE_GAPS, rows, venue=venue, source=f"ws:{venue}", source_key=stats.session)
    lake.replace_source(CAPTURE_GAPS, venue, stats.session, data)


# ---------------------------------------------------------------------------------------------------
# normalizing closed hours
# ---------------------------------------------------------------------------------------------------


def closed_hours(lake: Lake, venue: str) -> list[Path]:
    """Closed hourly capture files of a venue (oldest first)."""
    base = lake.root / "raw" / f"venue={safe_segment(venue, 'venue')}" / CAPTURE_SOURCE
    return sorted(p for p in base.glob("date=*/hour=*/*.jsonl") if not p.name.startswith(".tmp-"))


def normalize_hour(lake: Lake, venue: str, path: Path) -> IngestReport:
    """One closed capture file -> ``cex_liquidations`` rows (+ quarantine, + ``ingest_runs``); idempotent."""
    rel = path.relative_to(lake.root).as_posix()
    key = source_key("ws-hour", venue, rel)
    report = IngestReport(venue, f"ws:{venue}:liquidations", rel, key)
    report.sha256, report.bytes = sha256_file(path)
    rows: list[dict[str, Any]] = []
    rejects: list[tuple[int, int | None, str, str]] = []
    seen: set[str] = set()
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, 1):
            report.records_read += 1
            try:
                line = orjson.loads(raw)
                msg = line["msg"] if isinstance(line, dict) and "msg" in line else None
                if msg is None:
                    raise RecordError("capture line holds no JSON message")
                if venue == "binance":
                    out = [fb.force_order_event_row(msg)]
                else:
                    out = fy.all_liquidation_rows(msg)
            except orjson.JSONDecodeError:
                rejects.append((n, None, "malformed JSON line", raw_text(raw.decode("utf-8", "replace"))))
                continue
            except (RecordError, KeyError, TypeError) as exc:
                rejects.append(
                    (
                        n,
                        None,
                        str(exc) if isinstance(exc, RecordError) else f"malformed message ({exc})",
                        raw_text(raw.decode("utf-8", "replace")),
                    )
                )
                continue
            fresh = [r for r in out if r["event_id"] not in seen]
            seen.update(r["event_id"] for r in out)
            rows.extend(fresh)
            report.records_written += 1
    ingested_at = now_utc()
    data = rows_to_arrow(CEX_LIQUIDATIONS, rows, venue=venue, source=report.source, source_key=key)
    write_rows(lake, report, CEX_LIQUIDATIONS, data, venue=venue)
    return finish(lake, report, rejects, CEX_LIQUIDATIONS, ingested_at, venue=venue, key=key)
