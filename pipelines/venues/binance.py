"""Binance USDⓈ-M futures REST client (``https://fapi.binance.com``), public + own-account read-only.

Venue facts (venue-apis.md §2): 2400 request weight/min per IP (``X-MBX-USED-WEIGHT-1M``); weights
insuranceBalance 1, symbolAdlRisk 1, premiumIndex 1 (10 without symbol), openInterest 1, adlQuantile 5,
forceOrders 20 with symbol / 50 without. ``forceOrders``: ``limit`` <= 100, windows under 7 days
(omitting ``startTime`` means the 7 days before ``endTime``), ascending by time. Errors are JSON
``{"code": -1022, "msg": "..."}`` with HTTP 4xx; 429 (-1003) carries ``Retry-After``; 418 is an IP ban.
Signed endpoints use :class:`pipelines.venues.signing.BinanceAuth` with keys from the environment.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from pipelines.venues.base import RawResponse
from pipelines.venues.paging import RepeatGuard
from pipelines.venues.signing import BinanceAuth, SignedVenueClient

__all__ = ["BinanceFuturesClient", "FORCE_ORDERS_LIMIT", "SEVEN_DAYS_MS"]

FORCE_ORDERS_LIMIT = 100
SEVEN_DAYS_MS = 7 * 24 * 3600 * 1000


class BinanceFuturesClient(SignedVenueClient):
    auth_class: ClassVar[type] = BinanceAuth
    # -1002 unauthorized, -1022 invalid signature, -2014 bad key format, -2015 invalid key/IP/permissions
    auth_error_codes: ClassVar[frozenset[int]] = frozenset({-1002, -1022, -2014, -2015})
    """Read-only Binance USDⓈ-M client; every method returns the venue's JSON as :class:`RawResponse`."""

    id: ClassVar[str] = "binance"
    default_base_url: ClassVar[str] = "https://fapi.binance.com"
    rate_limit_per_minute: ClassVar[float] = 2400
    private_paths: ClassVar[tuple[str, ...]] = ("/fapi/v1/forceOrders", "/fapi/v1/adlQuantile", "/fapi/v2/positionRisk")
    force_orders_window_ms: ClassVar[int] = SEVEN_DAYS_MS - 1

    def _get(self, path: str, endpoint: str, params: Mapping[str, Any] | None = None, weight: float = 1) -> RawResponse:
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        return self.request("GET", path, endpoint=endpoint, params=clean, weight=weight)

    # -- public -------------------------------------------------------------------------------------
    def insurance_balance(self, symbol: str | None = None) -> RawResponse:
        """Insurance pools: one object with ``symbol``, else an array of pools (shared across symbols)."""
        return self._get("/fapi/v1/insuranceBalance", "insuranceBalance", {"symbol": symbol})

    def symbol_adl_risk(self, symbol: str | None = None) -> RawResponse:
        return self._get("/fapi/v1/symbolAdlRisk", "symbolAdlRisk", {"symbol": symbol})

    def premium_index(self, symbol: str | None = None) -> RawResponse:
        return self._get("/fapi/v1/premiumIndex", "premiumIndex", {"symbol": symbol}, weight=1 if symbol else 10)

    def open_interest(self, symbol: str) -> RawResponse:
        return self._get("/fapi/v1/openInterest", "openInterest", {"symbol": symbol})

    # -- signed (own account) ---------------------------------------------------------------------
    def adl_quantile(self, symbol: str | None = None) -> RawResponse:
        return self._get("/fapi/v1/adlQuantile", "adlQuantile", {"symbol": symbol}, weight=5)

    def force_orders(
        self, start_ms: int, end_ms: int, *, symbol: str | None = None, auto_close_type: str | None = None
    ) -> Iterator[RawResponse]:
        """Own liquidation / ADL orders in [start_ms, end_ms], walked forward in < 7-day windows and pages
        of 100 (next ``startTime`` = last order time + 1; a full page of one millisecond is noted)."""
        if auto_close_type not in (None, "LIQUIDATION", "ADL"):
            raise ValueError("auto_close_type must be LIQUIDATION, ADL or None")
        weight = 20 if symbol else 50
        win_start = start_ms
        while win_start <= end_ms:
            win_end = min(end_ms, win_start + self.force_orders_window_ms)
            cursor = win_start
            guard = RepeatGuard(self.id, "forceOrders")
            while True:
                page = self._get(
                    "/fapi/v1/forceOrders",
                    "forceOrders",
                    {
                        "symbol": symbol,
                        "autoCloseType": auto_close_type,
                        "startTime": cursor,
                        "endTime": win_end,
                        "limit": FORCE_ORDERS_LIMIT,
                    },
                    weight=weight,
                )
                items = page.payload if isinstance(page.payload, list) else []
                times = [i.get("time") for i in items if isinstance(i, dict) and isinstance(i.get("time"), int)]
                if guard.outside(times, start=cursor):  # the previous page again: this cursor is still unread
                    continue
                yield page
                if len(items) < FORCE_ORDERS_LIMIT or not times:
                    break
                last = max(times)
                if last < cursor:
                    break
                if last == cursor and min(times) == cursor:
                    self.notes.append(
                        f"forceOrders: more than {FORCE_ORDERS_LIMIT} orders at {cursor} ms; some unreachable"
                    )
                cursor = last + 1
                if cursor > win_end:
                    break
            win_start = win_end + 1
