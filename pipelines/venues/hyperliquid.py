"""Hyperliquid ``POST /info`` client (read-only), cursor store and wire shapes.

Every method returns the venue's response verbatim as a :class:`RawResponse`; time-ranged
endpoints return a lazy :class:`TimePager` that yields one ``RawResponse`` per page and
keeps the de-duplicated items, paging stats and a :class:`HistoryTruncated` note.

Venue facts (reference/venue-apis.md §1): 1200 weight/min per IP; weight 2 for
clearinghouseState/l2Book/allMids/orderStatus/spotClearinghouseState/exchangeStatus,
60 for userRole, 20 otherwise, plus +1 per 20 returned items for recentTrades /
userFills / userFillsByTime / fundingHistory / userFunding (and a few more) and +1 per
60 for candleSnapshot. Time-range responses hold at most 500 items, userFillsByTime at
most 2000; only the 10000 most recent fills per user are reachable; startTime/endTime
are inclusive.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, NotRequired, TypedDict

import orjson

from pipelines.venues.base import RawResponse, VenueHTTPClient
from pipelines.venues.paging import RepeatGuard

__all__ = [
    "BASE_WEIGHTS",
    "FILLS_BY_TIME_CAP",
    "HistoryTruncated",
    "HyperliquidInfoClient",
    "REACHABLE_FILLS_CAP",
    "TIME_RANGE_CAP",
    "TimePager",
    "UserCursorStore",
    "fill_key",
    "info_weight",
]

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------
# venue constants
# ---------------------------------------------------------------------------

FILLS_BY_TIME_CAP = 2000  # userFillsByTime items per response; userFills returns the 2000 most recent
REACHABLE_FILLS_CAP = 10000  # only the 10000 most recent fills per user are reachable
TIME_RANGE_CAP = 500  # other time-range endpoints (fundingHistory, ledger updates, ...)

BASE_WEIGHTS: Mapping[str, int] = {
    "clearinghouseState": 2,
    "l2Book": 2,
    "allMids": 2,
    "orderStatus": 2,
    "spotClearinghouseState": 2,
    "exchangeStatus": 2,
    "userRole": 60,
}
DEFAULT_WEIGHT = 20
# extra weight: +1 per N returned items
ITEMS_PER_EXTRA_WEIGHT: Mapping[str, int] = {
    "recentTrades": 20,
    "historicalOrders": 20,
    "userFills": 20,
    "userFillsByTime": 20,
    "fundingHistory": 20,
    "userFunding": 20,
    "nonUserFundingUpdates": 20,
    "twapHistory": 20,
    "userTwapSliceFills": 20,
    "userTwapSliceFillsByTime": 20,
    "candleSnapshot": 60,
}


def info_weight(request_type: str, n_items: int = 0) -> int:
    """Total weight of one ``/info`` request of ``request_type`` that returned ``n_items``."""
    base = BASE_WEIGHTS.get(request_type, DEFAULT_WEIGHT)
    per = ITEMS_PER_EXTRA_WEIGHT.get(request_type)
    return base + (n_items // per if per else 0)


# ---------------------------------------------------------------------------
# wire shapes (request bodies; responses as the venue sends them)
# ---------------------------------------------------------------------------

if TYPE_CHECKING:  # response shapes live in forensics.formats.hyperliquid (type-only import keeps
    # pyarrow/duckdb out of the client's import time)
    from forensics.formats.hyperliquid.wire import WireFill


class UserFillsRequest(TypedDict):
    type: Literal["userFills"]
    user: str
    aggregateByTime: NotRequired[bool]


class UserFillsByTimeRequest(TypedDict):
    type: Literal["userFillsByTime"]
    user: str
    startTime: int
    endTime: NotRequired[int | None]
    aggregateByTime: NotRequired[bool]


class ClearinghouseStateRequest(TypedDict):
    type: Literal["clearinghouseState"]
    user: str
    dex: NotRequired[str]


class MetaAndAssetCtxsRequest(TypedDict):
    type: Literal["metaAndAssetCtxs"]
    dex: NotRequired[str]


class UserNonFundingLedgerUpdatesRequest(TypedDict):
    type: Literal["userNonFundingLedgerUpdates"]
    user: str
    startTime: int
    endTime: NotRequired[int | None]


class FundingHistoryRequest(TypedDict):
    type: Literal["fundingHistory"]
    coin: str
    startTime: int
    endTime: NotRequired[int | None]


class CandleReq(TypedDict):
    coin: str
    interval: str
    startTime: int
    endTime: int


class CandleSnapshotRequest(TypedDict):
    type: Literal["candleSnapshot"]
    req: CandleReq


class RecentTradesRequest(TypedDict):
    type: Literal["recentTrades"]
    coin: str


class VaultDetailsRequest(TypedDict):
    type: Literal["vaultDetails"]
    vaultAddress: str
    user: NotRequired[str]


class FundingEntry(TypedDict):
    coin: str
    fundingRate: str
    premium: str
    time: int


class Candle(TypedDict):
    t: int
    T: int
    s: str
    i: str
    o: str
    c: str
    h: str
    l: str  # noqa: E741 - wire name
    v: str
    n: int


class WsTrade(TypedDict):
    coin: str
    side: Literal["A", "B"]
    px: str
    sz: str
    time: int
    hash: str
    tid: int
    users: list[str]


CANDLE_INTERVALS = ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "8h", "12h", "1d", "3d", "1w", "1M")


# ---------------------------------------------------------------------------
# paging
# ---------------------------------------------------------------------------


def fill_key(fill: WireFill | Mapping[str, Any]) -> tuple[Any, ...]:
    """De-duplication key of one fill: ``(tid, hash)``; full content for old fills without ``tid``."""
    tid = fill.get("tid")
    if tid is not None:
        return ("tid", tid, fill.get("hash"))
    return ("raw", orjson.dumps(fill, option=orjson.OPT_SORT_KEYS))


def item_key(item: Mapping[str, Any]) -> tuple[Any, ...]:
    """De-duplication key for ledger / funding items: the whole item."""
    return ("raw", orjson.dumps(item, option=orjson.OPT_SORT_KEYS))


@dataclass(frozen=True)
class HistoryTruncated:
    """The venue could not return the whole requested window.

    ``reason`` is ``"reachable_cap"`` (only the most recent ``cap`` fills are reachable and
    the walk hit that many while the earliest reachable fill is after ``requested_start_ms``)
    or ``"same_ms_overflow"`` (more than a page of items share one millisecond, so paging by
    time cannot reach them all).
    """

    reason: str
    requested_start_ms: int
    earliest_available_ms: int | None
    cap: int
    detail: str = ""

    def __str__(self) -> str:
        return self.detail or self.reason


class TimePager(Iterator[RawResponse]):
    """Lazy time-window pager over one ``/info`` request type.

    Iterating yields one :class:`RawResponse` per page (payload untouched). Meanwhile the
    pager keeps ``items`` (de-duplicated, in arrival order), ``pages``, ``duplicates``,
    ``earliest_ms``/``latest_ms`` and ``truncated`` (a :class:`HistoryTruncated` or
    ``None``). Paging rule (HL docs): next ``startTime`` = last returned time (inclusive),
    duplicates on the boundary dropped by ``key``; stop on a short page, at ``end_ms`` or
    when a page brings nothing new. Pages returned newest-first are walked backwards
    (``endTime`` = oldest time) instead.
    """

    def __init__(
        self,
        fetch: Callable[[int, int | None], RawResponse],
        *,
        start_ms: int,
        end_ms: int | None,
        cap: int,
        key: Callable[[Mapping[str, Any]], Any] = item_key,
        time_field: str = "time",
        reachable_cap: int | None = None,
        seen: set[Any] | None = None,
        max_pages: int = 10_000,
    ) -> None:
        self._fetch = fetch
        self.start_ms = int(start_ms)
        self.end_ms = None if end_ms is None else int(end_ms)
        self.cap = cap
        self._key = key
        self._tf = time_field
        self.reachable_cap = reachable_cap
        self._seen: set[Any] = set(seen or ())
        self._walk_keys: set[Any] = set()  # keys returned by the venue during this walk
        self.max_pages = max_pages
        self.items: list[Any] = []
        self.pages = 0
        self.duplicates = 0
        self.earliest_ms: int | None = None
        self.latest_ms: int | None = None
        self.truncated: HistoryTruncated | None = None
        self._cursor_start = self.start_ms
        self._cursor_end = self.end_ms
        self._done = False
        self._guard = RepeatGuard("hyperliquid", "info")
        self.stale_pages = 0

    def __iter__(self) -> TimePager:
        return self

    def collect(self) -> list[Any]:
        """Exhaust the pager and return the de-duplicated items."""
        for _ in self:
            pass
        return self.items

    def __next__(self) -> RawResponse:
        if self._done:
            raise StopIteration
        if self.pages >= self.max_pages:
            self._done = True
            raise RuntimeError(
                f"TimePager: more than {self.max_pages} pages; narrow the time window or raise max_pages"
            )
        raw = self._fetch(self._cursor_start, self._cursor_end)
        self.pages += 1
        page = raw.payload if isinstance(raw.payload, list) else []
        times_all = [it[self._tf] for it in page if isinstance(it, Mapping) and isinstance(it.get(self._tf), int)]
        if self._guard.outside(times_all, start=self._cursor_start, end=self._cursor_end):
            self.stale_pages += 1  # the previous page again: the cursor stays, the same page is asked for
            return raw
        new = 0
        times: list[int] = []
        for it in page:
            t = it.get(self._tf) if isinstance(it, Mapping) else None
            if isinstance(t, int):
                times.append(t)
            k = self._key(it)
            self._walk_keys.add(k)
            if k in self._seen:
                self.duplicates += 1
                continue
            self._seen.add(k)
            self.items.append(it)
            new += 1
            if isinstance(t, int):
                self.earliest_ms = t if self.earliest_ms is None else min(self.earliest_ms, t)
                self.latest_ms = t if self.latest_ms is None else max(self.latest_ms, t)
        if len(page) < self.cap or not times:
            self._finish()
            return raw
        descending = times[0] > times[-1]
        one_ms = min(times) == max(times)
        if new == 0 and not one_ms and self._guard.again(self._cursor_start):
            return raw  # a full page of items already read that spans time: a stale answer, ask again
        if descending:
            nxt = min(times)
            if new == 0:  # a whole page within one ms: step past it
                self._overflow(nxt)
                nxt -= 1
            if nxt < self.start_ms:
                self._finish()
            else:
                self._cursor_end = nxt
        else:
            nxt = max(times)
            if new == 0:
                self._overflow(nxt)
                nxt += 1
            if self.end_ms is not None and nxt > self.end_ms:
                self._finish()
            else:
                self._cursor_start = nxt
        return raw

    def _overflow(self, ms: int) -> None:
        log.warning("more than %d items share time %d; some may be unreachable by time paging", self.cap, ms)
        if self.truncated is None:
            self.truncated = HistoryTruncated(
                reason="same_ms_overflow",
                requested_start_ms=self.start_ms,
                earliest_available_ms=self.earliest_ms,
                cap=self.cap,
                detail=f"more than {self.cap} items at time {ms} ms; items at that ms may be missing",
            )

    def _finish(self) -> None:
        self._done = True
        rc = self.reachable_cap
        if (
            rc is not None
            and self.truncated is None
            and len(self._walk_keys) >= rc
            and self.earliest_ms is not None
            and self.earliest_ms > self.start_ms
        ):
            self.truncated = HistoryTruncated(
                reason="reachable_cap",
                requested_start_ms=self.start_ms,
                earliest_available_ms=self.earliest_ms,
                cap=rc,
                detail=(
                    f"only the {rc} most recent fills are reachable; earliest returned fill is at "
                    f"{self.earliest_ms} ms, after the requested start {self.start_ms} ms - older fills "
                    "must come from the S3 node_fills_by_block archive"
                ),
            )
            log.warning("history truncated: %s", self.truncated.detail)


# ---------------------------------------------------------------------------
# client
# ---------------------------------------------------------------------------


class HyperliquidInfoClient(VenueHTTPClient):
    """Read-only Hyperliquid ``/info`` client over :class:`VenueHTTPClient`.

    ``HyperliquidInfoClient(base_url="http://127.0.0.1:PORT")`` targets the local venue
    server; the default is mainnet. No request is made until a method is called.
    """

    id: ClassVar[str] = "hyperliquid"
    default_base_url: ClassVar[str] = "https://api.hyperliquid.xyz"
    rate_limit_per_minute: ClassVar[float] = 1200
    info_path: ClassVar[str] = "/info"
    base_weights: ClassVar[Mapping[str, int]] = BASE_WEIGHTS
    fills_by_time_cap: ClassVar[int] = FILLS_BY_TIME_CAP
    reachable_fills_cap: ClassVar[int] = REACHABLE_FILLS_CAP
    time_range_cap: ClassVar[int] = TIME_RANGE_CAP

    # -- plumbing ------------------------------------------------------------
    def extra_weight(self, endpoint: str, payload: Any) -> float:
        n = len(payload) if isinstance(payload, list) else 0
        return info_weight(endpoint, n) - self.base_weights.get(endpoint, DEFAULT_WEIGHT)

    def info(self, body: Mapping[str, Any]) -> RawResponse:
        """POST ``body`` to ``/info`` (weight from its ``type``)."""
        rtype = str(body["type"])
        return self.request(
            "POST",
            self.info_path,
            endpoint=rtype,
            json_body=dict(body),
            weight=self.base_weights.get(rtype, DEFAULT_WEIGHT),
        )

    # -- single-shot endpoints -----------------------------------------------
    def user_fills(self, user: str, *, aggregate_by_time: bool = False) -> RawResponse:
        """The 2000 most recent fills of ``user`` (newest first)."""
        body: UserFillsRequest = {"type": "userFills", "user": user, "aggregateByTime": aggregate_by_time}
        return self.info(body)

    def clearinghouse_state(self, user: str, *, dex: str = "") -> RawResponse:
        body: ClearinghouseStateRequest = {"type": "clearinghouseState", "user": user}
        if dex:
            body["dex"] = dex
        return self.info(body)

    def meta_and_asset_ctxs(self, *, dex: str = "") -> RawResponse:
        body: MetaAndAssetCtxsRequest = {"type": "metaAndAssetCtxs"}
        if dex:
            body["dex"] = dex
        return self.info(body)

    def candle_snapshot(self, coin: str, interval: str, start_ms: int, end_ms: int) -> RawResponse:
        if interval not in CANDLE_INTERVALS:
            raise ValueError(f"interval {interval!r} not one of {', '.join(CANDLE_INTERVALS)}")
        body: CandleSnapshotRequest = {
            "type": "candleSnapshot",
            "req": {"coin": coin, "interval": interval, "startTime": int(start_ms), "endTime": int(end_ms)},
        }
        return self.info(body)

    def recent_trades(self, coin: str) -> RawResponse:
        body: RecentTradesRequest = {"type": "recentTrades", "coin": coin}
        return self.info(body)

    def vault_details(self, vault_address: str, user: str | None = None) -> RawResponse:
        body: VaultDetailsRequest = {"type": "vaultDetails", "vaultAddress": vault_address}
        if user:
            body["user"] = user
        return self.info(body)

    # -- paged endpoints -----------------------------------------------------
    def user_fills_by_time(
        self,
        user: str,
        start_ms: int,
        end_ms: int | None = None,
        *,
        aggregate_by_time: bool = False,
        seen: set[Any] | None = None,
    ) -> TimePager:
        """Walk ``[start_ms, end_ms]`` (inclusive) in pages of at most 2000 fills.

        ``seen`` pre-loads de-duplication keys (:func:`fill_key`), e.g. fills already stored
        at the cursor millisecond. ``pager.truncated`` reports the 10000-reachable cap.
        """

        def fetch(s: int, e: int | None) -> RawResponse:
            body: UserFillsByTimeRequest = {
                "type": "userFillsByTime",
                "user": user,
                "startTime": s,
                "aggregateByTime": aggregate_by_time,
            }
            if e is not None:
                body["endTime"] = e
            return self.info(body)

        return TimePager(
            fetch,
            start_ms=start_ms,
            end_ms=end_ms,
            cap=self.fills_by_time_cap,
            key=fill_key,
            reachable_cap=self.reachable_fills_cap,
            seen=seen,
        )

    def user_non_funding_ledger_updates(self, user: str, start_ms: int, end_ms: int | None = None) -> TimePager:
        def fetch(s: int, e: int | None) -> RawResponse:
            body: UserNonFundingLedgerUpdatesRequest = {
                "type": "userNonFundingLedgerUpdates",
                "user": user,
                "startTime": s,
            }
            if e is not None:
                body["endTime"] = e
            return self.info(body)

        return TimePager(fetch, start_ms=start_ms, end_ms=end_ms, cap=self.time_range_cap)

    def funding_history(self, coin: str, start_ms: int, end_ms: int | None = None) -> TimePager:
        def fetch(s: int, e: int | None) -> RawResponse:
            body: FundingHistoryRequest = {"type": "fundingHistory", "coin": coin, "startTime": s}
            if e is not None:
                body["endTime"] = e
            return self.info(body)

        return TimePager(fetch, start_ms=start_ms, end_ms=end_ms, cap=self.time_range_cap)

    # -- incremental ---------------------------------------------------------
    def user_fills_since(
        self,
        user: str,
        cursors: UserCursorStore,
        *,
        default_start_ms: int = 0,
        end_ms: int | None = None,
    ) -> TimePager:
        """Pager over the fills of ``user`` newer than its stored cursor.

        Starts at the cursor millisecond (inclusive) with that ms's already-seen fill keys
        pre-loaded, so nothing is returned twice. Call ``cursors.advance(user, pager)``
        after the pages are safely stored.
        """
        cur = cursors.get(user)
        if cur is None:
            return self.user_fills_by_time(user, default_start_ms, end_ms)
        seen = {("tid", tid, h) for tid, h in cur.keys}
        return self.user_fills_by_time(user, cur.time_ms, end_ms, seen=seen)


# ---------------------------------------------------------------------------
# cursor store
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class UserCursor:
    time_ms: int
    keys: tuple[tuple[int, str | None], ...] = ()  # (tid, hash) of fills at exactly time_ms


@dataclass
class UserCursorStore:
    """Per-user last-fill-time cursors in one JSON file, written atomically.

    File shape: ``{"version": 1, "users": {"0xabc..": {"time": ms, "keys": [[tid, hash], ...]}}}``.
    Loaded lazily on first access (no I/O in the constructor); every :meth:`set` /
    :meth:`advance` rewrites the file via a temp file + ``os.replace``.
    """

    path: Path
    _data: dict[str, UserCursor] | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)

    def _load(self) -> dict[str, UserCursor]:
        if self._data is None:
            data: dict[str, UserCursor] = {}
            if self.path.exists():
                raw = orjson.loads(self.path.read_bytes())
                for user, v in (raw.get("users") or {}).items():
                    keys = tuple((int(k[0]), k[1]) for k in v.get("keys", []))
                    data[user.lower()] = UserCursor(int(v["time"]), keys)
            self._data = data
        return self._data

    def get(self, user: str) -> UserCursor | None:
        with self._lock:
            return self._load().get(user.lower())

    def all(self) -> dict[str, UserCursor]:
        with self._lock:
            return dict(self._load())

    def set(
        self, user: str, time_ms: int, keys: tuple[tuple[int, str | None], ...] = (), *, force: bool = False
    ) -> None:
        """Store the cursor; refuses to move backwards unless ``force``."""
        with self._lock:
            data = self._load()
            old = data.get(user.lower())
            if old is not None and not force:
                if time_ms < old.time_ms:
                    return
                if time_ms == old.time_ms:
                    keys = tuple(sorted(set(old.keys) | set(keys), key=lambda k: (k[0], k[1] or "")))
            data[user.lower()] = UserCursor(int(time_ms), tuple(keys))
            self._save(data)

    def advance(self, user: str, pager: TimePager) -> UserCursor | None:
        """Move the cursor of ``user`` to the newest fill the (exhausted) pager saw."""
        if pager.latest_ms is None:
            return self.get(user)
        last = pager.latest_ms
        keys = tuple(
            (int(f["tid"]), f.get("hash")) for f in pager.items if f.get("time") == last and f.get("tid") is not None
        )
        self.set(user, last, keys)
        return self.get(user)

    def _save(self, data: dict[str, UserCursor]) -> None:
        doc = {
            "version": 1,
            "users": {u: {"time": c.time_ms, "keys": [list(k) for k in c.keys]} for u, c in sorted(data.items())},
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
