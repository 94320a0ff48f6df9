"""Deribit JSON-RPC over HTTP client (``https://www.deribit.com/api/v2``), public methods.

Venue facts (venue-apis.md §6): responses ``{"jsonrpc": "2.0", "result": ..., "usIn", "usOut"}``; errors
``{"jsonrpc": "2.0", "error": {"code": 10028, "message": "too_many_requests"}}`` (HTTP 429 for rate
limits, 400 otherwise); credit-based limits (this client budgets 1,200/min). Trades by time page with
``has_more`` (next ``start_timestamp`` = last timestamp, boundary duplicates dropped by trade_id);
settlements page with ``continuation``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import httpx
import orjson

from pipelines.venues.base import ClientError, RateLimitedError, RawResponse, VenueError, VenueHTTPClient
from pipelines.venues.paging import RepeatGuard

__all__ = ["DeribitClient", "TRADES_COUNT"]

TRADES_COUNT = 1000
SETTLEMENTS_COUNT = 1000


class DeribitClient(VenueHTTPClient):
    id: ClassVar[str] = "deribit"
    default_base_url: ClassVar[str] = "https://www.deribit.com"
    rate_limit_per_minute: ClassVar[float] = 1200

    def __init__(self, base_url: str | None = None, **kw: Any) -> None:
        super().__init__(base_url, **kw)
        self.notes: list[str] = []

    def _classify(self, resp: httpx.Response, endpoint: str, attempt: int) -> VenueError | None:
        err = super()._classify(resp, endpoint, attempt)
        if err is not None or resp.status_code != 200:
            return err
        try:
            body = orjson.loads(resp.content)
        except orjson.JSONDecodeError:
            return None
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            kw = {"venue": self.id, "endpoint": endpoint, "attempts": attempt}
            if body["error"].get("code") == 10028:
                return RateLimitedError(429, resp.text, retry_after=1.0, **kw)
            return ClientError(400, resp.text, **kw)
        return None

    def _get(self, method: str, params: Mapping[str, Any]) -> RawResponse:
        clean = {k: v for k, v in params.items() if v is not None}
        return self.request("GET", f"/api/v2/{method}", endpoint=method, params=clean)

    def trades_by_time(self, instrument: str, start_ms: int, end_ms: int) -> Iterator[RawResponse]:
        cursor = start_ms
        guard = RepeatGuard(self.id, "trades")
        while True:
            page = self._get(
                "public/get_last_trades_by_instrument_and_time",
                {"instrument_name": instrument, "start_timestamp": cursor, "end_timestamp": end_ms,
                 "count": TRADES_COUNT, "sorting": "asc"},
            )
            result = page.payload.get("result") if isinstance(page.payload, dict) else None
            trades = result.get("trades") if isinstance(result, dict) else None
            times = [t["timestamp"] for t in trades or [] if isinstance(t, dict) and isinstance(t.get("timestamp"), int)]
            if guard.outside(times, start=cursor):  # the previous page again: this cursor is still unread
                continue
            yield page
            if not isinstance(trades, list) or not trades or not result.get("has_more"):
                return
            last = max(times, default=cursor)
            if last <= cursor:
                self.notes.append(f"trades {instrument}: more than {TRADES_COUNT} trades at {cursor} ms; paging by time stops")
                return
            cursor = last

    def settlements(self, instrument: str, type_: str = "bankruptcy", max_pages: int = 100) -> Iterator[RawResponse]:
        continuation: str | None = None
        for _ in range(max_pages):
            page = self._get(
                "public/get_last_settlements_by_instrument",
                {"instrument_name": instrument, "type": type_, "count": SETTLEMENTS_COUNT, "continuation": continuation},
            )
            yield page
            result = page.payload.get("result") if isinstance(page.payload, dict) else None
            nxt = result.get("continuation") if isinstance(result, dict) else None
            if not nxt or nxt == "none" or nxt == continuation or not result.get("settlements"):
                return
            continuation = nxt
