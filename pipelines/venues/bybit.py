"""Bybit v5 REST client (``https://api.bybit.com``), public + own-account read-only.

Venue facts (venue-apis.md §3): envelope ``{retCode, retMsg, result, retExtInfo, time}``; errors come
with HTTP 200 and ``retCode != 0`` (10006 = too many visits -> retried like a 429; 10003/10004 = bad
key / bad signature; 10001 = bad parameters). IP limit 600 requests / 5 s (UNCONFIRMED). Private
``/v5/execution/list`` and ``/v5/position/list`` page with ``cursor`` -> ``nextPageCursor`` (limit
<= 100 / 200); executions are queried in windows of at most 7 days. Signing: :class:`BybitAuth`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import httpx
import orjson

from pipelines.venues.base import ClientError, RateLimitedError, RawResponse, VenueError
from pipelines.venues.paging import RepeatGuard
from pipelines.venues.signing import BybitAuth, SignedVenueClient

__all__ = ["BybitClient", "EXECUTION_LIMIT", "RATE_LIMIT_RETCODES"]

EXECUTION_LIMIT = 100
POSITION_LIMIT = 200
SEVEN_DAYS_MS = 7 * 24 * 3600 * 1000
RATE_LIMIT_RETCODES = frozenset({10006, 10018})


class BybitClient(SignedVenueClient):
    auth_class: ClassVar[type] = BybitAuth
    # 10003 invalid key, 10004 sign error, 10005 permission denied, 10007 auth failed, 10010 IP, 33004 key expired
    auth_error_codes: ClassVar[frozenset[int]] = frozenset({10003, 10004, 10005, 10007, 10010, 33004})
    id: ClassVar[str] = "bybit"
    default_base_url: ClassVar[str] = "https://api.bybit.com"
    rate_limit_per_minute: ClassVar[float] = 3600
    private_paths: ClassVar[tuple[str, ...]] = ("/v5/execution/list", "/v5/position/list")

    def _classify_venue(self, resp: httpx.Response, endpoint: str, attempt: int) -> VenueError | None:
        err = super()._classify_venue(resp, endpoint, attempt)
        if err is not None or resp.status_code != 200:
            return err
        try:
            body = orjson.loads(resp.content)
        except orjson.JSONDecodeError:
            return None  # _parse reports the malformed body
        code = body.get("retCode") if isinstance(body, dict) else None
        if isinstance(code, int) and code != 0:
            kw = {"venue": self.id, "endpoint": endpoint, "attempts": attempt}
            if code in RATE_LIMIT_RETCODES:
                return RateLimitedError(429, resp.text, retry_after=1.0, **kw)
            return ClientError(resp.status_code, resp.text, **kw)
        return None

    def _get(self, path: str, endpoint: str, params: Mapping[str, Any] | None = None) -> RawResponse:
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        return self.request("GET", path, endpoint=endpoint, params=clean)

    # -- public -------------------------------------------------------------------------------------
    def insurance(self, coin: str | None = None) -> RawResponse:
        return self._get("/v5/market/insurance", "insurance", {"coin": coin})

    def adl_alert(self, symbol: str | None = None) -> RawResponse:
        return self._get("/v5/market/adlAlert", "adlAlert", {"symbol": symbol})

    def tickers(self, category: str = "linear", symbol: str | None = None) -> RawResponse:
        return self._get("/v5/market/tickers", "tickers", {"category": category, "symbol": symbol})

    # -- signed -------------------------------------------------------------------------------------
    def _cursor_pages(self, path: str, endpoint: str, params: dict[str, Any]) -> Iterator[RawResponse]:
        cursor: str | None = None
        seen: set[str] = set()
        guard = RepeatGuard(self.id, endpoint)
        while True:
            page = self._get(path, endpoint, {**params, "cursor": cursor})
            if guard.repeated(page, cursor):  # the previous page again: the page at ``cursor`` is still unread
                continue
            yield page
            result = page.payload.get("result") if isinstance(page.payload, dict) else None
            nxt = result.get("nextPageCursor") if isinstance(result, dict) else None
            items = result.get("list") if isinstance(result, dict) else None
            if not nxt or not items or nxt in seen:
                break
            seen.add(nxt)
            cursor = nxt

    def executions(
        self,
        start_ms: int,
        end_ms: int,
        *,
        category: str = "linear",
        exec_type: str | None = None,
        symbol: str | None = None,
    ) -> Iterator[RawResponse]:
        """Own executions (``execType`` AdlTrade / BustTrade / ...) in <= 7-day windows, cursor-paged."""
        win_start = start_ms
        while win_start <= end_ms:
            win_end = min(end_ms, win_start + SEVEN_DAYS_MS - 1)
            yield from self._cursor_pages(
                "/v5/execution/list",
                "execution/list",
                {
                    "category": category,
                    "symbol": symbol,
                    "execType": exec_type,
                    "startTime": win_start,
                    "endTime": win_end,
                    "limit": EXECUTION_LIMIT,
                },
            )
            win_start = win_end + 1

    def positions(
        self, *, category: str = "linear", settle_coin: str | None = "USDT", symbol: str | None = None
    ) -> Iterator[RawResponse]:
        """Own positions with ``adlRankIndicator``, cursor-paged."""
        yield from self._cursor_pages(
            "/v5/position/list",
            "position/list",
            {
                "category": category,
                "symbol": symbol,
                "settleCoin": None if symbol else settle_coin,
                "limit": POSITION_LIMIT,
            },
        )
