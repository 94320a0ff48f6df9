"""Venue REST clients: one module per venue over the shared :mod:`pipelines.venues.base` transport.

``VENUE_CLIENTS`` maps venue id -> client class (cryptofeed ``EXCHANGE_MAP`` style) so tests
and the CLI can iterate over every venue.
"""

from __future__ import annotations

from pipelines.venues.base import (
    ClientError,
    MalformedResponseError,
    RateLimitedError,
    RawResponse,
    RetryPolicy,
    ServerError,
    TransportError,
    VenueError,
    VenueHTTPClient,
    WeightRateLimiter,
    parse_retry_after,
    redact,
)
from pipelines.venues.binance import BinanceFuturesClient
from pipelines.venues.bitmex import BitmexClient
from pipelines.venues.bybit import BybitClient
from pipelines.venues.deribit import DeribitClient
from pipelines.venues.dydx import DydxIndexerClient
from pipelines.venues.hyperliquid import HistoryTruncated, HyperliquidInfoClient, TimePager, UserCursorStore
from pipelines.venues.okx import OkxClient

VENUE_CLIENTS: dict[str, type[VenueHTTPClient]] = {
    HyperliquidInfoClient.id: HyperliquidInfoClient,
    BinanceFuturesClient.id: BinanceFuturesClient,
    BybitClient.id: BybitClient,
    OkxClient.id: OkxClient,
    BitmexClient.id: BitmexClient,
    DeribitClient.id: DeribitClient,
    DydxIndexerClient.id: DydxIndexerClient,
}

__all__ = [
    "VENUE_CLIENTS",
    "BinanceFuturesClient",
    "BitmexClient",
    "BybitClient",
    "DeribitClient",
    "DydxIndexerClient",
    "OkxClient",
    "ClientError",
    "HistoryTruncated",
    "HyperliquidInfoClient",
    "MalformedResponseError",
    "RateLimitedError",
    "RawResponse",
    "RetryPolicy",
    "ServerError",
    "TimePager",
    "TransportError",
    "UserCursorStore",
    "VenueError",
    "VenueHTTPClient",
    "WeightRateLimiter",
    "parse_retry_after",
    "redact",
]
