"""Shared HTTP transport for every venue client.

One ``httpx.Client`` per venue client, explicit timeouts, retries with exponential
backoff + full jitter on 429 / 5xx / timeouts / connection errors / truncated bodies,
``Retry-After`` honoured (delta-seconds or HTTP date), errors mapped to typed
exceptions whose messages say what to do next, and a weight-based token bucket shared
by every venue (engineering notes, practice 4; hyperliquid-python-sdk ``api.py``).

Nothing here performs I/O in a constructor: the ``httpx.Client`` is created on the
first request. Secrets never reach logs or :class:`RawResponse` (see :func:`redact`).
"""

from __future__ import annotations

import dataclasses
import email.utils
import logging
import math
import random
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx
import orjson

__all__ = [
    "AuthenticationError",
    "ClientError",
    "MalformedResponseError",
    "RateLimitedError",
    "RawResponse",
    "RetryPolicy",
    "ServerError",
    "StalePageError",
    "TransportError",
    "VenueError",
    "VenueHTTPClient",
    "WeightRateLimiter",
    "parse_retry_after",
    "redact",
]

log = logging.getLogger(__name__)

_BODY_PREVIEW = 300


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------


class VenueError(Exception):
    """Base class of every venue transport error.

    ``venue``/``endpoint`` say where, ``attempts`` how many tries were made before
    giving up. The message always ends with a hint about what to do next.
    """

    hint: ClassVar[str] = "Check the venue status and the request parameters, then retry."

    def __init__(
        self,
        message: str,
        *,
        venue: str = "",
        endpoint: str = "",
        attempts: int = 1,
        hint: str | None = None,
    ) -> None:
        self.venue = venue
        self.endpoint = endpoint
        self.attempts = attempts
        self.detail = message
        self.retry_after: float | None = getattr(self, "retry_after", None)  # seconds the venue asked to wait
        where = f"{venue} {endpoint}".strip()
        prefix = f"[{where}] " if where else ""
        tries = f" (after {attempts} attempt{'s' if attempts != 1 else ''})" if attempts > 1 else ""
        super().__init__(f"{prefix}{message.rstrip('. ')}{tries}. {hint or self.hint}")


class ClientError(VenueError):
    """4xx: the venue rejected the request itself. Retrying unchanged will not help."""

    hint = "Fix the request (type, user address, time range) - retrying it unchanged will fail again."

    def __init__(self, status: int, body: str, **kw: Any) -> None:
        self.status = status
        self.body = body
        super().__init__(f"HTTP {status}: {_preview(body)}", **kw)


class RateLimitedError(ClientError):
    """429, or 418 (Binance's IP ban, which also says when to come back): retried after Retry-After."""

    hint = (
        "Lower the request rate (client rate_limit_per_minute / fewer parallel pulls) "
        "or wait for the per-minute weight budget to refill, then resume from the cursor."
    )

    def __init__(self, status: int, body: str, *, retry_after: float | None = None, **kw: Any) -> None:
        self.retry_after = retry_after
        super().__init__(status, body, **kw)


class ServerError(VenueError):
    """5xx from the venue (or a proxy in front of it); a 503 may say when to retry (Retry-After)."""

    hint = "The venue is failing; wait and re-run - the pull is resumable from the last cursor."

    def __init__(self, status: int, body: str, *, retry_after: float | None = None, **kw: Any) -> None:
        self.status = status
        self.body = body
        self.retry_after = retry_after
        super().__init__(f"HTTP {status}: {_preview(body)}", **kw)


class AuthenticationError(ClientError):
    """The venue refused the credentials (401/403 or its own auth error codes): never retried."""

    hint = "Check the API key variables (see the message); the key must be valid, read-only and allowed from this IP."

    def __init__(self, status: int, body: str, *, variables: str = "", **kw: Any) -> None:
        self.variables = variables
        super().__init__(status, body, **kw)


class StalePageError(VenueError):
    """A pager got the page it had just read again, more often than its re-requests allow."""

    hint = "The venue kept serving a stale page; re-run the pull later (nothing partial was kept)."


class TransportError(VenueError):
    """Timeout, connection refused or reset: no usable HTTP response arrived."""

    hint = (
        "Check connectivity / base_url; raise the client timeout if the venue is slow; "
        "the pull is resumable from the last cursor."
    )


class MalformedResponseError(VenueError):
    """Truncated body (Content-Length mismatch) or a body that is not valid JSON."""

    hint = (
        "The response was cut short or corrupted in transit; re-run the pull "
        "(it is idempotent). If it persists, capture the raw body and report it."
    )

    def __init__(self, message: str, *, body_bytes: int = 0, **kw: Any) -> None:
        self.body_bytes = body_bytes
        super().__init__(message, **kw)


def _preview(body: str | bytes) -> str:
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    body = " ".join(body.split())
    return body if len(body) <= _BODY_PREVIEW else body[:_BODY_PREVIEW] + "..."


# ---------------------------------------------------------------------------
# secrets
# ---------------------------------------------------------------------------

_SECRET_EXACT = frozenset(
    {
        "apikey",
        "key",
        "secret",
        "secretkey",
        "apisecret",
        "signature",
        "sign",
        "passphrase",
        "password",
        "privatekey",
        "accesstoken",
        "token",
        "authorization",
        "xmbxapikey",
        "okaccesskey",
        "okaccesssign",
        "okaccesspassphrase",
        "bapikey",
        "bapisign",
        "cookie",
    }
)
_SECRET_PARTS = ("secret", "passphrase", "signature", "privatekey", "apikey", "password")


def _is_secret_key(key: object) -> bool:
    if not isinstance(key, str):
        return False
    norm = "".join(ch for ch in key.lower() if ch.isalnum())
    return norm in _SECRET_EXACT or any(part in norm for part in _SECRET_PARTS)


def redact(params: Any) -> Any:
    """Return a copy of ``params`` with secret-looking keys removed (recursively).

    Keys such as ``api_key``, ``apiKey``, ``X-MBX-APIKEY``, ``signature``, ``secret``,
    ``passphrase``, ``password``, ``private_key``, ``token`` are dropped entirely, so
    neither the value nor the key survives into logs or stored responses. Harmless
    keys that merely contain "token" (``feeToken``) are kept.
    """
    if isinstance(params, Mapping):
        return {k: redact(v) for k, v in params.items() if not _is_secret_key(k)}
    if isinstance(params, (list, tuple)):
        return [redact(v) for v in params]
    return params


# ---------------------------------------------------------------------------
# raw response
# ---------------------------------------------------------------------------


#: response header by which a server says it serves generated data (the local venue server sets it on every answer)
SANDBOX_HEADER = "X-Liqf-Sandbox"


@dataclass(frozen=True, slots=True)
class RawResponse:
    """One venue response, kept verbatim for forensics.

    ``params`` are the request parameters/body with secrets removed; ``payload`` is the
    parsed JSON exactly as the venue sent it; ``received_at`` is UTC epoch ms.
    """

    venue: str
    endpoint: str
    method: str
    params: Mapping[str, Any]
    status: int
    received_at: int
    elapsed_ms: float
    payload: Any
    body_bytes: int
    attempts: int = 1

    @property
    def items(self) -> int:
        """Number of items when the payload is a list, else 0 (used for weight accounting)."""
        return len(self.payload) if isinstance(self.payload, list) else 0


# ---------------------------------------------------------------------------
# rate limiting
# ---------------------------------------------------------------------------


class WeightRateLimiter:
    """Token bucket in request *weight* units (Hyperliquid: 1200 weight per minute per IP).

    ``acquire(w)`` blocks (via the injected ``sleep``) until ``w`` tokens are available and
    takes them. ``charge(w)`` takes tokens after the fact without blocking (extra weight
    that depends on the response size), possibly driving the balance negative so later
    ``acquire`` calls wait the debt off. Thread-safe.
    """

    def __init__(
        self,
        capacity_per_minute: float = 1200,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if capacity_per_minute <= 0:
            raise ValueError("capacity_per_minute must be > 0")
        self.capacity = float(burst if burst is not None else capacity_per_minute)
        self.rate_per_s = capacity_per_minute / 60.0
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.capacity
        self._last: float | None = None
        self._lock = threading.Lock()
        self.total_weight = 0.0
        self.waited_s = 0.0

    def _refill(self) -> None:
        now = self._clock()
        if self._last is None:
            self._last = now
            return
        elapsed = max(0.0, now - self._last)
        self._last = now
        self._tokens = min(self.capacity, self._tokens + elapsed * self.rate_per_s)

    @property
    def available(self) -> float:
        with self._lock:
            self._refill()
            return self._tokens

    def acquire(self, weight: float) -> float:
        """Take ``weight`` tokens, sleeping as needed. Returns the seconds waited."""
        weight = min(float(weight), self.capacity)  # a single request may always proceed
        waited = 0.0
        while True:
            with self._lock:
                self._refill()
                if self._tokens >= weight:
                    self._tokens -= weight
                    self.total_weight += weight
                    self.waited_s += waited
                    return waited
                wait = (weight - self._tokens) / self.rate_per_s
            self._sleep(wait)
            waited += wait

    def charge(self, weight: float) -> None:
        """Take ``weight`` tokens without waiting (may go negative)."""
        if weight <= 0:
            return
        with self._lock:
            self._refill()
            self._tokens -= weight
            self.total_weight += weight


# ---------------------------------------------------------------------------
# retry policy / Retry-After
# ---------------------------------------------------------------------------


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date)."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        secs = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, secs) if math.isfinite(secs) else None
    try:
        dt = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if dt is None:
        return None
    ref = time.time() if now is None else now
    return max(0.0, dt.timestamp() - ref)


@dataclass(frozen=True)
class RetryPolicy:
    """``max_retries`` retries after the first attempt (so ``max_retries + 1`` tries in all)."""

    max_retries: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    retry_after_max: float = 120.0
    #: transient answers: rate limits (429, Binance's 418 IP ban) and every 5xx
    retry_statuses: frozenset[int] = field(default_factory=lambda: frozenset({418, 429, 500, 502, 503, 504}))
    #: seconds one logical request may spend waiting between its tries; past it the error is raised
    budget_s: float = 600.0

    def backoff(self, retry_index: int, rng: random.Random) -> float:
        """Full-jitter exponential backoff for the ``retry_index``-th retry (0-based)."""
        cap = min(self.backoff_max, self.backoff_base * (2**retry_index))
        return rng.uniform(cap / 2, cap)


# ---------------------------------------------------------------------------
# client
# ---------------------------------------------------------------------------


class VenueHTTPClient:
    """Base class of every venue REST client.

    Subclasses set the class attributes (cryptofeed style) and call :meth:`request`.

    Parameters are all keyword-only besides ``base_url``. ``sleep`` and ``clock``
    (epoch seconds) are injectable for tests; ``rng`` seeds the backoff jitter;
    ``transport`` lets tests mount an ``httpx.MockTransport``.
    """

    id: ClassVar[str] = "venue"
    default_base_url: ClassVar[str] = ""
    rate_limit_per_minute: ClassVar[float] = 1200
    user_agent: ClassVar[str] = "liquidation-forensics/0.1 (+httpx)"

    def __init__(
        self,
        base_url: str | None = None,
        *,
        timeout: float = 10.0,
        connect_timeout: float | None = None,
        retry: RetryPolicy | None = None,
        max_retries: int | None = None,
        rate_limiter: WeightRateLimiter | None = None,
        rate_limit: bool = True,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        transport: httpx.BaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.base_url = (base_url or self.default_base_url).rstrip("/")
        if not self.base_url:
            raise ValueError(f"{type(self).__name__}: base_url is required")
        self.timeout = httpx.Timeout(timeout, connect=connect_timeout if connect_timeout is not None else timeout)
        policy = retry or RetryPolicy()
        if max_retries is not None:
            policy = dataclasses.replace(policy, max_retries=max_retries)
        self.retry = policy
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()
        if rate_limiter is None and rate_limit:
            rate_limiter = WeightRateLimiter(self.rate_limit_per_minute, sleep=sleep)
        self.rate_limiter = rate_limiter
        self._transport = transport
        self._headers = dict(headers or {})
        self._http: httpx.Client | None = None
        self.request_count = 0  # HTTP attempts made (including retries)
        #: what the server said of itself in :data:`SANDBOX_HEADER` (the local venue server does), else None
        self.sandbox: str | None = None
        self.retry_waits: list[float] = []  # every backoff / Retry-After sleep, in order

    # -- lifecycle ---------------------------------------------------------
    def _client(self) -> httpx.Client:
        if self._http is None:
            headers = {"User-Agent": self.user_agent, "Accept": "application/json", **self._headers}
            transport = self._transport or httpx.HTTPTransport(
                # headers and body go out as two writes; without NODELAY, Nagle + delayed ACK
                # adds ~40 ms to every keep-alive POST
                socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
            )
            self._http = httpx.Client(timeout=self.timeout, headers=headers, transport=transport)
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def __enter__(self) -> VenueHTTPClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:  # never show headers (may hold keys)
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    # -- hooks ---------------------------------------------------------------
    def extra_weight(self, endpoint: str, payload: Any) -> float:
        """Weight charged after the response (e.g. per returned item). Default 0."""
        return 0.0

    # -- core ----------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        endpoint: str | None = None,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        weight: float = 1,
        headers: Mapping[str, str] | None = None,
    ) -> RawResponse:
        """Send one logical request (with retries) and return the parsed :class:`RawResponse`.

        ``endpoint`` is the logical name stored in the response (e.g. ``userFillsByTime``);
        defaults to ``path``. Raises a :class:`VenueError` subclass when retries are exhausted
        or the error is not retryable.
        """
        endpoint = endpoint or path
        url = f"{self.base_url}/{path.lstrip('/')}"
        safe_params = redact(dict(json_body) if isinstance(json_body, Mapping) else dict(params or {}))
        body = orjson.dumps(json_body) if json_body is not None else None
        req_headers = dict(headers or {})
        if body is not None:
            req_headers.setdefault("Content-Type", "application/json")

        attempt = 0
        waited = 0.0
        while True:
            attempt += 1
            if self.rate_limiter is not None:
                self.rate_limiter.acquire(weight)
            self.request_count += 1
            t0 = time.perf_counter()
            retry_after: float | None = None
            try:
                resp = self._client().request(method, url, params=params, content=body, headers=req_headers)
                elapsed_ms = (time.perf_counter() - t0) * 1000.0
                err = self._classify(resp, endpoint, attempt)
                if err is None:
                    raw = self._parse(resp, method, endpoint, safe_params, elapsed_ms, attempt)
                    if self.rate_limiter is not None:
                        self.rate_limiter.charge(self.extra_weight(endpoint, raw.payload))
                    log.debug(
                        "%s %s -> %s in %.1f ms (%d bytes, attempt %d)",
                        self.id,
                        endpoint,
                        raw.status,
                        elapsed_ms,
                        raw.body_bytes,
                        attempt,
                    )
                    return raw
                retry_after = err.retry_after
            except httpx.TimeoutException as exc:
                err = TransportError(
                    f"timed out ({type(exc).__name__}) after {self.timeout.read}s read timeout",
                    venue=self.id,
                    endpoint=endpoint,
                    attempts=attempt,
                )
            except httpx.RemoteProtocolError as exc:
                if "complete message body" in str(exc) or "incomplete" in str(exc).lower():
                    err = MalformedResponseError(
                        f"truncated body: connection closed before Content-Length was reached ({exc})",
                        venue=self.id,
                        endpoint=endpoint,
                        attempts=attempt,
                    )
                else:
                    err = TransportError(
                        f"connection dropped: {exc}", venue=self.id, endpoint=endpoint, attempts=attempt
                    )
            except httpx.TransportError as exc:  # connect errors, resets, read/write errors
                err = TransportError(
                    f"{type(exc).__name__}: {exc or 'connection error'}",
                    venue=self.id,
                    endpoint=endpoint,
                    attempts=attempt,
                )
            except MalformedResponseError as exc:
                err = exc

            if not self._retryable(err) or attempt > self.retry.max_retries:
                raise err
            wait = self.retry.backoff(attempt - 1, self._rng)
            if retry_after is not None:  # the venue said when: never earlier (429, 418, 503)
                wait = max(wait, min(retry_after, self.retry.retry_after_max))
            if waited + wait > self.retry.budget_s:
                raise err
            waited += wait
            log.warning(
                "%s %s attempt %d failed (%s); retrying in %.2fs",
                self.id,
                endpoint,
                attempt,
                type(err).__name__,
                wait,
            )
            self.retry_waits.append(wait)
            self._sleep(wait)

    def _retryable(self, err: VenueError) -> bool:
        if isinstance(err, AuthenticationError):
            return False
        if isinstance(err, RateLimitedError):
            return True
        if isinstance(err, ClientError):
            return err.status in self.retry.retry_statuses
        if isinstance(err, ServerError):
            return err.status in self.retry.retry_statuses or err.status >= 500
        return isinstance(err, (TransportError, MalformedResponseError))

    def _classify(self, resp: httpx.Response, endpoint: str, attempt: int) -> VenueError | None:
        status = resp.status_code
        if status < 400:
            return None
        text = resp.text
        kw = {"venue": self.id, "endpoint": endpoint, "attempts": attempt}
        ra = parse_retry_after(resp.headers.get("Retry-After"), now=self._clock())
        if status in (418, 429):
            return RateLimitedError(status, text, retry_after=ra, **kw)
        if status >= 500:
            return ServerError(status, text, retry_after=ra, **kw)
        return ClientError(status, text, **kw)

    def _parse(
        self,
        resp: httpx.Response,
        method: str,
        endpoint: str,
        safe_params: Mapping[str, Any],
        elapsed_ms: float,
        attempt: int,
    ) -> RawResponse:
        content = resp.content
        kw = {"venue": self.id, "endpoint": endpoint, "attempts": attempt}
        sandbox = resp.headers.get(SANDBOX_HEADER)
        if sandbox:
            self.sandbox = "".join(c if c.isprintable() else "?" for c in sandbox)[:200]
        declared = resp.headers.get("Content-Length")
        if declared is not None and "Content-Encoding" not in resp.headers:
            try:
                n = int(declared)
            except ValueError:
                n = -1
            if n >= 0 and n != len(content):
                raise MalformedResponseError(
                    f"truncated body: Content-Length {n} but {len(content)} bytes received",
                    body_bytes=len(content),
                    **kw,
                )
        if not content:
            raise MalformedResponseError("empty body where JSON was expected", body_bytes=0, **kw)
        try:
            payload = orjson.loads(content)
        except orjson.JSONDecodeError as exc:
            raise MalformedResponseError(
                f"invalid JSON ({exc}); body starts {_preview(content[:80])!r}",
                body_bytes=len(content),
                **kw,
            ) from None
        return RawResponse(
            venue=self.id,
            endpoint=endpoint,
            method=method.upper(),
            params=safe_params,
            status=resp.status_code,
            received_at=int(self._clock() * 1000),
            elapsed_ms=round(elapsed_ms, 3),
            payload=payload,
            body_bytes=len(content),
            attempts=attempt,
        )
