"""Starlette app serving Hyperliquid's ``POST /info`` from a :class:`Scenario`.

Paging caps, inclusive windows, HL-like 422 texts for bad bodies and a per-IP weight
budget (1200/min by default, same weights as the client) answered with 429 like the
venue. Fault injection wraps the whole app (:mod:`pipelines.sandbox.venue_server.faults`).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from pipelines.sandbox.venue_server.faults import FaultInjector, FaultSpec
from pipelines.sandbox.venue_server.scenario import INTERVAL_MS, Scenario
from pipelines.venues.base import SANDBOX_HEADER
from pipelines.venues.hyperliquid import BASE_WEIGHTS, DEFAULT_WEIGHT, info_weight

__all__ = ["PerIPWeightLimiter", "ServerState", "build_app"]

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")

# type -> required fields (in the order HL's deserializer would complain about them)
REQUIRED: dict[str, tuple[str, ...]] = {
    "userFills": ("user",),
    "userFillsByTime": ("user", "startTime"),
    "clearinghouseState": ("user",),
    "metaAndAssetCtxs": (),
    "userNonFundingLedgerUpdates": ("user", "startTime"),
    "fundingHistory": ("coin", "startTime"),
    "candleSnapshot": ("req",),
    "recentTrades": ("coin",),
    "vaultDetails": ("vaultAddress",),
}
# the variants a real deserializer would list; only REQUIRED ones are served
KNOWN_TYPES = (
    "meta",
    "spotMeta",
    "metaAndAssetCtxs",
    "spotMetaAndAssetCtxs",
    "clearinghouseState",
    "spotClearinghouseState",
    "allMids",
    "l2Book",
    "candleSnapshot",
    "userFills",
    "userFillsByTime",
    "fundingHistory",
    "userFunding",
    "userNonFundingLedgerUpdates",
    "recentTrades",
    "vaultDetails",
    "openOrders",
    "frontendOpenOrders",
    "orderStatus",
    "historicalOrders",
    "userRateLimit",
    "exchangeStatus",
)


class PerIPWeightLimiter:
    """Per-client-IP token buckets in weight units, answering like the venue.

    ``admit(ip, base)`` returns ``None`` if the base weight fits (and takes it) or the seconds
    until it would; ``charge(ip, extra)`` takes response-size weight afterwards (may go negative).
    """

    def __init__(self, per_minute: float | None = 1200, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self.rejected = 0
        self.charged: dict[str, float] = {}

    def reset(self) -> None:
        self._buckets.clear()
        self.charged.clear()
        self.rejected = 0

    def _level(self, ip: str) -> float:
        assert self.per_minute is not None
        now = self._clock()
        tokens, last = self._buckets.get(ip, (self.per_minute, now))
        tokens = min(self.per_minute, tokens + (now - last) * self.per_minute / 60.0)
        self._buckets[ip] = (tokens, now)
        return tokens

    def admit(self, ip: str, base: float) -> float | None:
        if self.per_minute is None:
            return None
        tokens = self._level(ip)
        if tokens < base:
            self.rejected += 1
            return (base - tokens) * 60.0 / self.per_minute
        self._buckets[ip] = (tokens - base, self._buckets[ip][1])
        self.charged[ip] = self.charged.get(ip, 0.0) + base
        return None

    def charge(self, ip: str, extra: float) -> None:
        if self.per_minute is None or extra <= 0:
            return
        tokens = self._level(ip)
        self._buckets[ip] = (tokens - extra, self._buckets[ip][1])
        self.charged[ip] = self.charged.get(ip, 0.0) + extra


@dataclass
class ServerState:
    scenario: Scenario
    limiter: PerIPWeightLimiter
    faults: FaultInjector | None = None
    requests_by_type: dict[str, int] = field(default_factory=dict)


def _json(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")


def _text(msg: str, status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(msg, status_code=status, media_type="text/plain; charset=utf-8", headers=headers)


def _deser_error(msg: str) -> Response:
    return _text(f"Failed to deserialize the JSON body into the target type: {msg}", 422)


def _int_field(body: dict[str, Any], key: str, *, optional: bool = False) -> int | None:
    v = body.get(key)
    if v is None and optional:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"{key}: invalid type: expected u64")
    return v


def _handle(sc: Scenario, rtype: str, body: dict[str, Any]) -> Any:
    if rtype == "userFills":
        return sc.user_fills(body["user"])
    if rtype == "userFillsByTime":
        return sc.user_fills_by_time(
            body["user"],
            _int_field(body, "startTime"),  # type: ignore[arg-type]
            _int_field(body, "endTime", optional=True),
            reverse=bool(body.get("reversed", False)),
        )
    if rtype == "clearinghouseState":
        return sc.clearinghouse_state(body["user"])
    if rtype == "metaAndAssetCtxs":
        return sc.meta_and_asset_ctxs()
    if rtype == "userNonFundingLedgerUpdates":
        return sc.ledger_updates(
            body["user"],
            _int_field(body, "startTime"),  # type: ignore[arg-type]
            _int_field(body, "endTime", optional=True),
        )
    if rtype == "fundingHistory":
        return sc.funding_history(
            str(body["coin"]),
            _int_field(body, "startTime"),  # type: ignore[arg-type]
            _int_field(body, "endTime", optional=True),
        )
    if rtype == "candleSnapshot":
        req = body["req"]
        if not isinstance(req, dict):
            raise ValueError("req: invalid type: expected struct CandleSnapshotReq")
        for k in ("coin", "interval", "startTime", "endTime"):
            if k not in req:
                raise ValueError(f"req: missing field `{k}`")
        if req["interval"] not in INTERVAL_MS:
            raise ValueError(f"req.interval: unknown variant `{req['interval']}`")
        return sc.candles(str(req["coin"]), req["interval"], _int_field(req, "startTime"), _int_field(req, "endTime"))  # type: ignore[arg-type]
    if rtype == "recentTrades":
        return sc.recent_trades(str(body["coin"]))
    if rtype == "vaultDetails":
        return sc.vault_details(str(body["vaultAddress"]))
    raise AssertionError(rtype)


def _declare_sandbox(app: Any, scenario_name: str) -> Any:
    """Every answer says it comes from this sandbox (:data:`SANDBOX_HEADER`), so what is ingested from it is
    recorded as generated data, whatever its content looks like."""
    value = ("liqf local venue server, scenario " + re.sub(r"[^A-Za-z0-9._-]", "_", scenario_name)[:80]).encode()
    header = (SANDBOX_HEADER.lower().encode(), value)

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        async def send_declared(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), header]}
            await send(message)

        await app(scope, receive, send_declared if scope["type"] == "http" else send)

    return wrapped


def build_app(
    scenario: Scenario,
    *,
    faults: str | FaultSpec | None = None,
    rate_limit_per_minute: float | None = 1200,
    routes: list[Any] | None = None,
) -> tuple[Any, ServerState]:
    """The ASGI app (fault middleware around Starlette) and its mutable state.

    ``routes`` are extra Starlette routes mounted next to ``/info`` (e.g. the CEX endpoints of
    :mod:`pipelines.sandbox.venue_server.cex`); they share the fault injector (select them with ``paths=``).
    """
    state = ServerState(scenario=scenario, limiter=PerIPWeightLimiter(rate_limit_per_minute))

    async def info(request: Request) -> Response:
        try:
            raw = await request.body()
        except ClientDisconnect:  # client gave up (e.g. timed out behind injected latency)
            return Response(status_code=499)
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return _text(f"Failed to parse the request body as JSON: {exc}", 400)
        if not isinstance(body, dict):
            return _deser_error("invalid type: expected internally tagged enum InfoRequest")
        rtype = body.get("type")
        if not isinstance(rtype, str):
            return _deser_error("missing field `type`")
        ip = request.client.host if request.client else "unknown"
        base = BASE_WEIGHTS.get(rtype, DEFAULT_WEIGHT)
        wait = state.limiter.admit(ip, base)
        if wait is not None:
            return _text(
                f"429 Too Many Requests: weight budget of {state.limiter.per_minute:g}/min per IP exceeded",
                429,
                {"Retry-After": str(max(1, math.ceil(wait)))},
            )
        state.requests_by_type[rtype] = state.requests_by_type.get(rtype, 0) + 1
        if rtype not in REQUIRED:
            variants = ", ".join(f"`{t}`" for t in KNOWN_TYPES)
            return _deser_error(f"unknown variant `{rtype}`, expected one of {variants}")
        for k in REQUIRED[rtype]:
            if k not in body or body[k] is None:
                return _deser_error(f"missing field `{k}`")
        for k in ("user", "vaultAddress"):
            if k in body and body[k] is not None and not (isinstance(body[k], str) and _ADDRESS.match(body[k])):
                return _deser_error(f"{k}: invalid address {body[k]!r}: expected 0x followed by 40 hex digits")
        try:
            payload = _handle(scenario, rtype, body)
        except ValueError as exc:
            return _deser_error(str(exc))
        n = len(payload) if isinstance(payload, list) else 0
        state.limiter.charge(ip, info_weight(rtype, n) - base)
        return _json(payload)

    async def health(request: Request) -> Response:
        return _json({"status": "ok", **scenario.summary()})

    starlette_app = Starlette(
        routes=[Route("/info", info, methods=["POST"]), Route("/health", health, methods=["GET"]), *(routes or [])]
    )
    injector = FaultInjector(_declare_sandbox(starlette_app, scenario.name), faults)  # type: ignore[arg-type]
    state.faults = injector
    return injector, state
