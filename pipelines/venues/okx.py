"""OKX v5 REST client (``https://www.okx.com``), public + own-account read-only.

Venue facts (venue-apis.md §4): envelope ``{"code": "0", "msg": "", "data": [...]}``; errors are
``code != "0"`` (HTTP 200 or 4xx): 50011 / 50061 = rate limited (retried), 50113 = invalid sign, 50111
= invalid key, 50015 = missing instFamily. Rate limits are per endpoint (liquidation-orders 40 / 2 s,
insurance-fund 10 / 2 s): this client charges each request a weight so the shared 1,200/min bucket
enforces the tighter limit. ``liquidation-orders`` and ``insurance-fund`` page backwards with ``after``
(a ts cursor); ``limit`` does not bound the number of ``details`` and REST covers roughly the last day,
so items are filtered to the window and de-duplicated by the ingest. ``account/bills-archive`` pages
with ``after`` = billId. Signing: :class:`OkxAuth`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import httpx
import orjson

from pipelines.venues.base import ClientError, RateLimitedError, RawResponse, VenueError
from pipelines.venues.paging import RepeatGuard
from pipelines.venues.signing import OkxAuth, SignedVenueClient

__all__ = ["OkxClient", "PAGE_LIMIT", "RATE_LIMIT_CODES"]

PAGE_LIMIT = 100
RATE_LIMIT_CODES = frozenset({"50011", "50061"})
# weight in a 1,200/min bucket = 1,200 / documented per-minute limit
WEIGHTS: Mapping[str, float] = {
    "liquidation-orders": 1.0,
    "insurance-fund": 4.0,
    "instruments": 1.0,
    "bills-archive": 2.0,
    "positions": 1.0,
    "mark-price": 1.0,
    "open-interest": 1.0,
}


def _all_ts(data: Any, nested: str) -> list[int]:
    return [
        int(d["ts"])
        for item in (data if isinstance(data, list) else [])
        for d in ((item.get(nested) if isinstance(item, dict) else None) or [])
        if isinstance(d, dict) and isinstance(d.get("ts"), str) and d["ts"].isdigit()
    ]


def _min_ts(data: Any, nested: str) -> int | None:
    return min(_all_ts(data, nested), default=None)


class OkxClient(SignedVenueClient):
    auth_class: ClassVar[type] = OkxAuth
    # 50100-50105 key frozen/env/passphrase, 50111 invalid key, 50113 invalid sign, 50114 invalid authorization
    auth_error_codes: ClassVar[frozenset[int]] = frozenset({50100, 50101, 50103, 50104, 50105, 50111, 50113, 50114})
    id: ClassVar[str] = "okx"
    default_base_url: ClassVar[str] = "https://www.okx.com"
    rate_limit_per_minute: ClassVar[float] = 1200
    private_paths: ClassVar[tuple[str, ...]] = (
        "/api/v5/account/bills-archive",
        "/api/v5/account/bills",
        "/api/v5/account/positions",
    )

    def _classify_venue(self, resp: httpx.Response, endpoint: str, attempt: int) -> VenueError | None:
        kw = {"venue": self.id, "endpoint": endpoint, "attempts": attempt}
        try:
            body = orjson.loads(resp.content) if resp.content else None
        except orjson.JSONDecodeError:
            body = None
        code = body.get("code") if isinstance(body, dict) else None
        if code in RATE_LIMIT_CODES:
            return RateLimitedError(429, resp.text, retry_after=2.0, **kw)
        err = super()._classify_venue(resp, endpoint, attempt)
        if err is not None:
            return err
        if isinstance(code, str) and code != "0":
            return ClientError(resp.status_code, resp.text, **kw)
        return None

    def _get(self, path: str, endpoint: str, params: Mapping[str, Any] | None = None) -> RawResponse:
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        return self.request("GET", path, endpoint=endpoint, params=clean, weight=WEIGHTS.get(endpoint, 1.0))

    def _ts_pages(
        self, path: str, endpoint: str, params: dict[str, Any], start_ms: int, end_ms: int, nested: str
    ) -> Iterator[RawResponse]:
        after: int | None = end_ms + 1
        guard = RepeatGuard(self.id, endpoint)
        while True:
            page = self._get(path, endpoint, {**params, "after": after, "limit": PAGE_LIMIT})
            data = page.payload.get("data") if isinstance(page.payload, dict) else None
            if after is not None and guard.outside(_all_ts(data, nested), end=after - 1):
                continue  # the previous (newer) page again: the page before ``after`` is still unread
            yield page
            oldest = _min_ts(data, nested)
            if not data or oldest is None or oldest <= start_ms or (after is not None and oldest >= after):
                if data and oldest is not None and oldest > start_ms and after is not None and oldest >= after:
                    self.notes.append(f"{endpoint}: cursor did not advance at {oldest}; stopped")
                break
            after = oldest
        # the venue keeps ~1 day of liquidation orders: say so when the window reaches further back
        if endpoint == "liquidation-orders" and oldest is not None and oldest > start_ms:
            self.notes.append(f"{endpoint}: earliest available {oldest} ms is after the requested start {start_ms} ms")

    # -- public -------------------------------------------------------------------------------------
    def instruments(self, inst_type: str = "SWAP", inst_family: str | None = None) -> RawResponse:
        return self._get(
            "/api/v5/public/instruments", "instruments", {"instType": inst_type, "instFamily": inst_family}
        )

    def liquidation_orders(
        self,
        start_ms: int,
        end_ms: int,
        *,
        inst_type: str = "SWAP",
        inst_family: str | None = None,
        state: str = "filled",
    ) -> Iterator[RawResponse]:
        if inst_type in ("SWAP", "FUTURES") and not inst_family:
            raise ValueError("OKX liquidation-orders needs inst_family for SWAP/FUTURES (e.g. BTC-USDT)")
        yield from self._ts_pages(
            "/api/v5/public/liquidation-orders",
            "liquidation-orders",
            {"instType": inst_type, "instFamily": inst_family, "state": state},
            start_ms,
            end_ms,
            "details",
        )

    def insurance_fund(
        self,
        start_ms: int,
        end_ms: int,
        *,
        inst_type: str = "SWAP",
        inst_family: str | None = None,
        type_: str | None = None,
    ) -> Iterator[RawResponse]:
        yield from self._ts_pages(
            "/api/v5/public/insurance-fund",
            "insurance-fund",
            {"instType": inst_type, "instFamily": inst_family, "type": type_},
            start_ms,
            end_ms,
            "details",
        )

    # -- signed -------------------------------------------------------------------------------------
    def bills(self, start_ms: int, end_ms: int, *, bill_type: str, inst_type: str = "SWAP") -> Iterator[RawResponse]:
        """Own bills of one ``type`` (5 liquidation, 9 ADL) in [start_ms, end_ms], newest first, ``after`` = billId."""
        after: str | None = None
        seen: set[str] = set()
        guard = RepeatGuard(self.id, "bills-archive")
        while True:
            page = self._get(
                "/api/v5/account/bills-archive",
                "bills-archive",
                {
                    "instType": inst_type,
                    "type": bill_type,
                    "begin": start_ms,
                    "end": end_ms,
                    "after": after,
                    "limit": PAGE_LIMIT,
                },
            )
            if guard.repeated(page, after):  # the previous page again: the page after ``after`` is still unread
                continue
            yield page
            data = page.payload.get("data") if isinstance(page.payload, dict) else None
            ids = [d.get("billId") for d in data or [] if isinstance(d, dict) and isinstance(d.get("billId"), str)]
            if len(data or []) < PAGE_LIMIT or not ids or ids[-1] in seen:
                break
            seen.add(ids[-1])
            after = ids[-1]

    def positions(self, inst_type: str | None = None) -> RawResponse:
        return self._get("/api/v5/account/positions", "positions", {"instType": inst_type})
