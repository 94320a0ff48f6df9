"""Request signing for the CEX private (read-only) endpoints; credentials only from the environment.

Keys are read from ``LIQF_<VENUE>_API_KEY`` / ``LIQF_<VENUE>_API_SECRET`` (and ``LIQF_OKX_API_PASSPHRASE``).
They never reach logs, stored responses or error messages: :class:`ApiCredentials` hides them in its
``repr``, signing happens in an ``httpx.Auth`` flow on the wire request only (so :class:`RawResponse`
params stay unsigned), and the flow re-signs every retry with a fresh timestamp.

Schemes (each venue's docs):

* Binance: ``signature = hex(HMAC_SHA256(secret, query_string))`` over the query incl. ``timestamp`` and
  ``recvWindow``, appended last; key in ``X-MBX-APIKEY``.
* Bybit v5: ``X-BAPI-SIGN = hex(HMAC_SHA256(secret, timestamp + api_key + recv_window + query_string))``.
* OKX v5: ``OK-ACCESS-SIGN = base64(HMAC_SHA256(secret, iso_timestamp + METHOD + request_path + body))``
  where request_path includes ``?query``; plus key, ISO timestamp and passphrase headers.
* BitMEX: ``api-signature = hex(HMAC_SHA256(secret, VERB + path_with_query + expires + body))``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import os
import time
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx
import orjson

from pipelines.venues.base import AuthenticationError, ClientError, VenueError, VenueHTTPClient

__all__ = [
    "ApiCredentials",
    "BinanceAuth",
    "BitmexAuth",
    "BybitAuth",
    "MissingCredentialsError",
    "OkxAuth",
    "binance_signature",
    "bitmex_signature",
    "bybit_signature",
    "okx_signature",
]


class MissingCredentialsError(RuntimeError):
    """No key in the environment for a private pull."""


@dataclass(frozen=True, repr=False)
class ApiCredentials:
    """A read-only API key. ``repr``/``str`` never show the key, secret or passphrase."""

    key: str
    secret: str
    passphrase: str | None = None

    def __repr__(self) -> str:
        return "ApiCredentials(key=***, secret=***)"

    __str__ = __repr__

    @property
    def fingerprint(self) -> str:
        """A short non-reversible id of the key, safe to log (sha256 of the key, 8 hex)."""
        return hashlib.sha256(self.key.encode()).hexdigest()[:8]

    @classmethod
    def from_env(cls, venue: str, environ: dict[str, str] | None = None) -> ApiCredentials:
        env = os.environ if environ is None else environ
        prefix = f"LIQF_{venue.upper()}_API_"
        key, secret = env.get(prefix + "KEY"), env.get(prefix + "SECRET")
        passphrase = env.get(prefix + "PASSPHRASE")
        missing = [n for n, v in (("KEY", key), ("SECRET", secret)) if not v]
        if venue == "okx" and not passphrase:
            missing.append("PASSPHRASE")
        if missing:
            names = ", ".join(prefix + m for m in missing)
            raise MissingCredentialsError(f"{venue}: private pull needs {names} in the environment (a read-only key)")
        return cls(key or "", secret or "", passphrase)


def credential_variables(venue: str) -> str:
    """The environment variables a private pull of ``venue`` reads its key from (names only)."""
    prefix = f"LIQF_{venue.upper()}_API_"
    return ", ".join(prefix + n for n in ("KEY", "SECRET", *(("PASSPHRASE",) if venue == "okx" else ())))


def _error_code(body: str) -> int | None:
    """The venue's numeric error code in a JSON error body (Binance/OKX ``code``, Bybit ``retCode``,
    Deribit ``error.code``), or None."""
    try:
        obj = orjson.loads(body)
    except (orjson.JSONDecodeError, TypeError):
        return None
    if not isinstance(obj, dict):
        return None
    for v in (
        obj.get("code"),
        obj.get("retCode"),
        (obj.get("error") or {}).get("code") if isinstance(obj.get("error"), dict) else None,
    ):
        try:
            if v is not None and not isinstance(v, bool):
                return int(v)
        except (TypeError, ValueError):
            continue
    return None


def _hmac(secret: str, msg: str) -> bytes:
    return hmac.new(secret.encode(), msg.encode(), hashlib.sha256).digest()


def binance_signature(secret: str, query: str) -> str:
    return _hmac(secret, query).hex()


def bybit_signature(secret: str, timestamp: str, key: str, recv_window: str, payload: str) -> str:
    return _hmac(secret, timestamp + key + recv_window + payload).hex()


def okx_signature(secret: str, timestamp: str, method: str, request_path: str, body: str = "") -> str:
    return base64.b64encode(_hmac(secret, timestamp + method.upper() + request_path + body)).decode()


def bitmex_signature(secret: str, verb: str, path: str, expires: int, body: str = "") -> str:
    return _hmac(secret, verb.upper() + path + str(expires) + body).hex()


def okx_timestamp(epoch_s: float) -> str:
    t = dt.datetime.fromtimestamp(epoch_s, dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


class _VenueAuth(httpx.Auth):
    """Signs requests whose path ends with one of ``private_paths``; public requests pass untouched."""

    def __init__(
        self,
        creds: ApiCredentials,
        private_paths: Iterable[str],
        clock: Callable[[], float] = time.time,
        recv_window_ms: int = 5000,
    ) -> None:
        self._creds = creds
        self._private = tuple(private_paths)
        self._clock = clock
        self.recv_window_ms = recv_window_ms

    def __repr__(self) -> str:
        return f"{type(self).__name__}(***)"

    def is_private(self, request: httpx.Request) -> bool:
        return request.url.path.endswith(self._private)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self.is_private(request):
            self.sign(request)
        yield request

    def sign(self, request: httpx.Request) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class BinanceAuth(_VenueAuth):
    def sign(self, request: httpx.Request) -> None:
        url = request.url.copy_merge_params(
            {"timestamp": str(int(self._clock() * 1000)), "recvWindow": str(self.recv_window_ms)}
        )
        query = url.query.decode()
        sig = binance_signature(self._creds.secret, query)
        request.url = url.copy_with(query=f"{query}&signature={sig}".encode())
        request.headers["X-MBX-APIKEY"] = self._creds.key


class BybitAuth(_VenueAuth):
    def sign(self, request: httpx.Request) -> None:
        ts, rw = str(int(self._clock() * 1000)), str(self.recv_window_ms)
        payload = request.url.query.decode() if request.method == "GET" else request.content.decode()
        request.headers["X-BAPI-API-KEY"] = self._creds.key
        request.headers["X-BAPI-TIMESTAMP"] = ts
        request.headers["X-BAPI-RECV-WINDOW"] = rw
        request.headers["X-BAPI-SIGN"] = bybit_signature(self._creds.secret, ts, self._creds.key, rw, payload)


class OkxAuth(_VenueAuth):
    def sign(self, request: httpx.Request) -> None:
        ts = okx_timestamp(self._clock())
        query = request.url.query.decode()
        path = request.url.path + (f"?{query}" if query else "")
        body = request.content.decode() if request.method != "GET" else ""
        request.headers["OK-ACCESS-KEY"] = self._creds.key
        request.headers["OK-ACCESS-TIMESTAMP"] = ts
        request.headers["OK-ACCESS-PASSPHRASE"] = self._creds.passphrase or ""
        request.headers["OK-ACCESS-SIGN"] = okx_signature(self._creds.secret, ts, request.method, path, body)


class BitmexAuth(_VenueAuth):
    def sign(self, request: httpx.Request) -> None:
        expires = int(self._clock()) + 60
        query = request.url.query.decode()
        path = request.url.path + (f"?{query}" if query else "")
        body = request.content.decode() if request.method != "GET" else ""
        request.headers["api-expires"] = str(expires)
        request.headers["api-key"] = self._creds.key
        request.headers["api-signature"] = bitmex_signature(self._creds.secret, request.method, path, expires, body)


def scrub(text: str, creds: ApiCredentials | None) -> str:
    """``text`` with the key, secret and passphrase replaced by ``***`` (Bybit echoes the signed string,
    including the API key, in its ``error sign!`` message)."""
    if creds is None or not text:
        return text
    for s in (creds.key, creds.secret, creds.passphrase):
        if s:
            text = text.replace(s, "***")
    return text


def scrub_error(err: Exception | None, creds: ApiCredentials | None) -> Exception | None:
    """Remove credentials from a venue error's message, body and detail (in place); returns it."""
    if err is None or creds is None:
        return err
    err.args = tuple(scrub(a, creds) if isinstance(a, str) else a for a in err.args)
    for attr in ("body", "detail"):
        v = getattr(err, attr, None)
        if isinstance(v, str):
            setattr(err, attr, scrub(v, creds))
    return err


class SignedVenueClient(VenueHTTPClient):
    """A venue client whose private endpoints are signed by ``auth_class``; keys are scrubbed from errors.

    Subclasses set ``auth_class`` and ``private_paths``; venues that report errors inside a 200 body
    override :meth:`_classify_venue`.
    """

    auth_class: ClassVar[type[_VenueAuth]]
    private_paths: ClassVar[tuple[str, ...]] = ()

    def __init__(self, base_url: str | None = None, *, credentials: ApiCredentials | None = None, **kw: Any) -> None:
        super().__init__(base_url, **kw)
        self.credentials = credentials
        self.notes: list[str] = []

    def _client(self) -> httpx.Client:
        fresh = self._http is None
        c = super()._client()
        if fresh and self.credentials is not None:
            c.auth = self.auth_class(self.credentials, self.private_paths, clock=self._clock)
        return c

    #: the venue's error codes that mean "these credentials are refused" (besides HTTP 401/403)
    auth_error_codes: ClassVar[frozenset[int]] = frozenset()

    def _classify(self, resp: httpx.Response, endpoint: str, attempt: int) -> VenueError | None:
        err = self._classify_venue(resp, endpoint, attempt)
        if (
            isinstance(err, ClientError)
            and not isinstance(err, AuthenticationError)
            and (err.status in (401, 403) or _error_code(err.body) in self.auth_error_codes)
        ):
            err = AuthenticationError(
                err.status,
                err.body,
                variables=credential_variables(self.id),
                venue=self.id,
                endpoint=endpoint,
                attempts=attempt,
                hint=f"Check {credential_variables(self.id)}: the venue refused them "
                "(wrong or expired key, wrong secret, or an IP/permission restriction).",
            )
        return scrub_error(err, self.credentials)  # type: ignore[return-value]

    def _classify_venue(self, resp: httpx.Response, endpoint: str, attempt: int) -> VenueError | None:
        return super()._classify(resp, endpoint, attempt)
