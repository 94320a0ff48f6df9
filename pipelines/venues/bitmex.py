"""BitMEX REST client (``https://www.bitmex.com/api/v1``), public endpoints.

Venue facts (venue-apis.md §5): 120 requests/min with a key, fewer without (UNCONFIRMED; this client
budgets 60/min); ``count`` <= 1000 with ``start`` offsets for paging; errors are
``{"error": {"message": "...", "name": "HTTPError"}}`` with HTTP 4xx, 429 with ``Retry-After`` (and
``x-ratelimit-*`` headers). ``/liquidation`` lists only the liquidation orders open *now*.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from pipelines.venues.base import RawResponse
from pipelines.venues.paging import RepeatGuard
from pipelines.venues.signing import BitmexAuth, SignedVenueClient

__all__ = ["BitmexClient", "PAGE_COUNT"]

PAGE_COUNT = 500


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class BitmexClient(SignedVenueClient):
    auth_class: ClassVar[type] = BitmexAuth
    # BitMEX answers a bad key or signature with HTTP 401/403 (AuthenticationError without codes)
    id: ClassVar[str] = "bitmex"
    default_base_url: ClassVar[str] = "https://www.bitmex.com"
    rate_limit_per_minute: ClassVar[float] = 60
    private_paths: ClassVar[tuple[str, ...]] = ("/api/v1/position", "/api/v1/execution/tradeHistory")

    def _get(self, path: str, endpoint: str, params: Mapping[str, Any] | None = None) -> RawResponse:
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        return self.request("GET", path, endpoint=endpoint, params=clean)

    def _offset_pages(
        self, path: str, endpoint: str, params: dict[str, Any], max_pages: int = 1000
    ) -> Iterator[RawResponse]:
        start = 0
        guard = RepeatGuard(self.id, endpoint)
        for _ in range(max_pages):
            page = self._get(path, endpoint, {**params, "count": PAGE_COUNT, "start": start})
            if guard.repeated(page, start):  # the previous page again: this offset is still unread
                continue
            yield page
            n = len(page.payload) if isinstance(page.payload, list) else 0
            if n < PAGE_COUNT:
                return
            start += n
        self.notes.append(f"{endpoint}: stopped after {max_pages} pages")

    # -- signed (api-expires / api-key / api-signature) ----------------------------------------------------
    def executions(self, start_ms: int, end_ms: int, symbol: str | None = None) -> Iterator[RawResponse]:
        """Own executions in [start_ms, end_ms] (trades, liquidation and deleverage fills, funding...)."""
        yield from self._offset_pages(
            "/api/v1/execution/tradeHistory",
            "execution/tradeHistory",
            {"symbol": symbol, "startTime": _iso(start_ms), "endTime": _iso(end_ms)},
        )

    def positions(self) -> RawResponse:
        """Own positions now, with ``deleveragePercentile`` (the ADL queue percentile)."""
        return self._get("/api/v1/position", "position")

    def instruments(self) -> RawResponse:
        return self._get("/api/v1/instrument/active", "instrument/active")

    def liquidations(self, symbol: str | None = None) -> Iterator[RawResponse]:
        """Open liquidation orders now (no history, no timestamps)."""
        yield from self._offset_pages("/api/v1/liquidation", "liquidation", {"symbol": symbol})

    def insurance(self, start_ms: int, end_ms: int, currency: str | None = "XBt") -> Iterator[RawResponse]:
        yield from self._offset_pages(
            "/api/v1/insurance",
            "insurance",
            {"symbol": currency, "startTime": _iso(start_ms), "endTime": _iso(end_ms), "reverse": "false"},
        )
