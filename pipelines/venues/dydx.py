"""dYdX v4 indexer client (``https://indexer.dydx.trade/v4``), public (fills are public by address).

Venue facts (venue-apis.md §7): responses ``{"trades": [...]}`` / ``{"fills": [...]}``, newest first;
``limit`` (default 100, capped here at 1,000) and ``createdBeforeOrAtHeight`` page backwards; errors
``{"errors": [{"msg": "..."}]}`` with HTTP 400 / 404; 429 on rate limits.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from forensics.formats.records import RecordError, iso_ms
from pipelines.venues.base import RawResponse, VenueHTTPClient
from pipelines.venues.paging import RepeatGuard

__all__ = ["DydxIndexerClient", "PAGE_LIMIT"]

PAGE_LIMIT = 100
_MARKET = re.compile(r"^[A-Z0-9]{1,20}-[A-Z0-9]{1,10}$")


def _ms(iso: Any) -> int | None:
    try:
        return iso_ms(iso)
    except RecordError:
        return None


class DydxIndexerClient(VenueHTTPClient):
    id: ClassVar[str] = "dydx"
    default_base_url: ClassVar[str] = "https://indexer.dydx.trade"
    rate_limit_per_minute: ClassVar[float] = 1200

    def __init__(self, base_url: str | None = None, **kw: Any) -> None:
        super().__init__(base_url, **kw)
        self.notes: list[str] = []

    def _get(self, path: str, endpoint: str, params: Mapping[str, Any]) -> RawResponse:
        clean = {k: v for k, v in params.items() if v is not None}
        return self.request("GET", path, endpoint=endpoint, params=clean)

    def _height_pages(
        self,
        path: str,
        endpoint: str,
        key: str,
        params: dict[str, Any],
        start_ms: int,
        end_ms: int,
        max_pages: int = 10_000,
    ) -> Iterator[RawResponse]:
        height: int | None = None
        seen: set[str] = set()
        guard = RepeatGuard(self.id, endpoint)
        for _ in range(max_pages):
            page = self._get(path, endpoint, {**params, "limit": PAGE_LIMIT, "createdBeforeOrAtHeight": height})
            items = page.payload.get(key) if isinstance(page.payload, dict) else None
            heights = [
                int(i["createdAtHeight"])
                for i in items or []
                if isinstance(i, dict) and str(i.get("createdAtHeight", "")).isdigit()
            ]
            if height is not None and guard.outside(heights, end=height):
                continue  # the previous (newer) page again: the page at ``height`` is still unread
            yield page
            if not isinstance(items, list) or not items:
                return
            new = [i for i in items if isinstance(i, dict) and i.get("id") not in seen]
            seen.update(str(i.get("id")) for i in new)
            oldest = _ms(items[-1].get("createdAt")) if isinstance(items[-1], dict) else None
            if len(items) < PAGE_LIMIT or not heights or (oldest is not None and oldest < start_ms):
                return
            nxt = min(heights) if new else min(heights) - 1
            if height is not None and nxt >= height and not new:
                nxt = height - 1
            height = nxt
        self.notes.append(f"{endpoint}: stopped after {max_pages} pages")

    def trades(self, market: str, start_ms: int, end_ms: int) -> Iterator[RawResponse]:
        if not _MARKET.match(market):  # the market becomes a path segment
            raise ValueError(f"invalid dYdX market {market[:40]!r} (e.g. BTC-USD)")
        yield from self._height_pages(f"/v4/trades/perpetualMarket/{market}", "trades", "trades", {}, start_ms, end_ms)

    def fills(
        self, address: str, start_ms: int, end_ms: int, *, subaccount: int = 0, market: str | None = None
    ) -> Iterator[RawResponse]:
        yield from self._height_pages(
            "/v4/fills",
            "fills",
            "fills",
            {
                "address": address,
                "subaccountNumber": subaccount,
                "market": market,
                "marketType": "PERPETUAL" if market else None,
            },
            start_ms,
            end_ms,
        )
