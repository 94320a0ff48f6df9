"""Deribit JSON-RPC over HTTP client (``https://www.deribit.com/api/v2``), public methods.

Venue facts (venue-apis.md §6): responses ``{"jsonrpc": "2.0", "result": ..., "usIn", "usOut"}``; errors
``{"jsonrpc": "2.0", "error": {"code": 10028, "message": "too_many_requests"}}`` (HTTP 429 for rate
limits, 400 otherwise); credit-based limits (this client budgets 1,200/min). Trades by time page with
``has_more`` (next ``start_timestamp`` = last timestamp, boundary duplicates dropped by trade_id);
settlements page with ``continuation``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

import httpx
import orjson

from pipelines.venues.base import (
    AuthenticationError,
    ClientError,
    RateLimitedError,
    RawResponse,
    VenueError,
    VenueHTTPClient,
)
from pipelines.venues.paging import RepeatGuard
from pipelines.venues.signing import ApiCredentials, credential_variables, scrub_error

__all__ = ["DeribitClient", "TRADES_COUNT"]

TRADES_COUNT = 1000
SETTLEMENTS_COUNT = 1000


#: Deribit's error codes for refused credentials or a missing/invalid token
AUTH_ERROR_CODES = frozenset({13004, 13009})


class DeribitClient(VenueHTTPClient):
    """Public JSON-RPC methods over GET; private ones with an access token from ``public/auth``
    (``grant_type=client_credentials``, sent as a POST body so the secret never is in a URL), passed as
    ``Authorization: Bearer``. The token lives in memory only and is never stored or logged."""

    id: ClassVar[str] = "deribit"
    default_base_url: ClassVar[str] = "https://www.deribit.com"
    rate_limit_per_minute: ClassVar[float] = 1200

    def __init__(self, base_url: str | None = None, *, credentials: ApiCredentials | None = None, **kw: Any) -> None:
        super().__init__(base_url, **kw)
        self.notes: list[str] = []
        self.credentials = credentials
        self._token: str | None = None

    def _classify(self, resp: httpx.Response, endpoint: str, attempt: int) -> VenueError | None:
        kw = {"venue": self.id, "endpoint": endpoint, "attempts": attempt}
        try:
            body = orjson.loads(resp.content) if resp.status_code >= 200 else None
        except orjson.JSONDecodeError:
            body = None
        code = body["error"].get("code") if isinstance(body, dict) and isinstance(body.get("error"), dict) else None
        if code in AUTH_ERROR_CODES or (resp.status_code in (401, 403) and self.credentials is not None):
            err: VenueError = AuthenticationError(
                resp.status_code,
                resp.text,
                variables=credential_variables(self.id),
                **kw,
                hint=f"Check {credential_variables(self.id)}: Deribit refused them (client id/secret of an API key "
                "with read scope).",
            )
            return scrub_error(err, self.credentials)  # type: ignore[return-value]
        err = super()._classify(resp, endpoint, attempt)
        if err is not None or resp.status_code != 200:
            return scrub_error(err, self.credentials)  # type: ignore[return-value]
        if code is not None:
            if code == 10028:
                return RateLimitedError(429, resp.text, retry_after=1.0, **kw)
            return scrub_error(ClientError(400, resp.text, **kw), self.credentials)  # type: ignore[return-value]
        return None

    def _bearer(self) -> dict[str, str]:
        if self.credentials is None:
            raise ValueError("Deribit private methods need credentials")
        if self._token is None:
            resp = self.request(
                "POST",
                "/api/v2/public/auth",
                endpoint="public/auth",
                json_body={
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "public/auth",
                    "params": {
                        "grant_type": "client_credentials",
                        "client_id": self.credentials.key,
                        "client_secret": self.credentials.secret,
                    },
                },
            )
            result = resp.payload.get("result") if isinstance(resp.payload, dict) else None
            token = result.get("access_token") if isinstance(result, dict) else None
            if not isinstance(token, str) or not token:
                raise AuthenticationError(
                    200,
                    "public/auth returned no access_token",
                    venue=self.id,
                    endpoint="public/auth",
                    variables=credential_variables(self.id),
                )
            self._token = token
        return {"Authorization": f"Bearer {self._token}"}

    def _private(self, method: str, params: Mapping[str, Any]) -> RawResponse:
        clean = {k: v for k, v in params.items() if v is not None}
        return self.request("GET", f"/api/v2/{method}", endpoint=method, params=clean, headers=self._bearer())

    def user_trades_by_time(self, instrument: str, start_ms: int, end_ms: int) -> Iterator[RawResponse]:
        """Own trades of ``instrument`` in [start_ms, end_ms], oldest first (liquidation trades carry
        ``liquidation``), paged by time like the public trades."""
        yield from self._time_pages(
            self._private, "private/get_user_trades_by_instrument_and_time", "user trades", instrument, start_ms, end_ms
        )

    def positions(self, currency: str = "BTC", kind: str = "future") -> RawResponse:
        return self._private("private/get_positions", {"currency": currency, "kind": kind})

    def _get(self, method: str, params: Mapping[str, Any]) -> RawResponse:
        clean = {k: v for k, v in params.items() if v is not None}
        return self.request("GET", f"/api/v2/{method}", endpoint=method, params=clean)

    def trades_by_time(self, instrument: str, start_ms: int, end_ms: int) -> Iterator[RawResponse]:
        yield from self._time_pages(
            self._get, "public/get_last_trades_by_instrument_and_time", "trades", instrument, start_ms, end_ms
        )

    def _time_pages(
        self,
        get: Callable[[str, Mapping[str, Any]], RawResponse],
        method: str,
        what: str,
        instrument: str,
        start_ms: int,
        end_ms: int,
    ) -> Iterator[RawResponse]:
        """Trades oldest first; next ``start_timestamp`` = the last trade's time (inclusive)."""
        cursor = start_ms
        guard = RepeatGuard(self.id, what)
        while True:
            page = get(
                method,
                {
                    "instrument_name": instrument,
                    "start_timestamp": cursor,
                    "end_timestamp": end_ms,
                    "count": TRADES_COUNT,
                    "sorting": "asc",
                },
            )
            result = page.payload.get("result") if isinstance(page.payload, dict) else None
            trades = result.get("trades") if isinstance(result, dict) else None
            times = [
                t["timestamp"] for t in trades or [] if isinstance(t, dict) and isinstance(t.get("timestamp"), int)
            ]
            if guard.outside(times, start=cursor):  # the previous page again: this cursor is still unread
                continue
            yield page
            if not isinstance(trades, list) or not trades or not result.get("has_more"):
                return
            last = max(times, default=cursor)
            if last <= cursor:
                self.notes.append(
                    f"{what} {instrument}: more than {TRADES_COUNT} trades at {cursor} ms; paging by time stops"
                )
                return
            cursor = last

    def settlements(self, instrument: str, type_: str = "bankruptcy", max_pages: int = 100) -> Iterator[RawResponse]:
        continuation: str | None = None
        for _ in range(max_pages):
            page = self._get(
                "public/get_last_settlements_by_instrument",
                {
                    "instrument_name": instrument,
                    "type": type_,
                    "count": SETTLEMENTS_COUNT,
                    "continuation": continuation,
                },
            )
            yield page
            result = page.payload.get("result") if isinstance(page.payload, dict) else None
            nxt = result.get("continuation") if isinstance(result, dict) else None
            if not nxt or nxt == "none" or nxt == continuation or not result.get("settlements"):
                return
            continuation = nxt
