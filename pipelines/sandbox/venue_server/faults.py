"""Deterministic fault injection for the local venue server (reliability tests).

Spec grammar: comma-separated ``key=value`` pairs, whitespace ignored::

    spec     := item ("," item)*
    item     := key "=" value
    latency  = seconds added before answering (float >= 0)
    latencyp = probability that a request gets the latency (default 1.0)
    429      = probability of an injected 429 (with Retry-After)
    418      = probability of an injected 418 (Binance's IP ban, with Retry-After)
    5xx      = probability of an injected 500/502/503 (the 503 with Retry-After)
    truncate = probability of a truncated 200 body
    reset    = probability of a connection reset with no response
    stall    = probability of a stall of 2-4 s before the (normal) answer
    repeat   = probability that the previous 200 body of the same path is served again (a stale page)
    tries    = N: only a request's first N arrivals can fault (same method, path, query and body), so
               a client that retries always gets through (default: every arrival can fault)
    seed     = RNG seed (int, default 0): the same seed + request order => the same faults
    retry_after    = Retry-After seconds on injected 429s (default 1; "date" => an HTTP date 1 s ahead)
    truncate_mode  = cl | json | mixed (default mixed):
                     cl   - full Content-Length, body cut short, connection closed
                     json - body cut mid-JSON with a matching Content-Length
    429burst / 5xxburst / truncateburst / resetburst = N: the first N requests get that fault
                     (bursts are consumed in that order: 429s first, then 5xx, ...)
    paths    = '|'-separated paths the faults apply to (default /info); one ending in * is a prefix

Example: ``latency=0.05,429=0.2,5xx=0.1,truncate=0.1,reset=0.05,seed=3`` or ``429burst=3``.
The probabilities must sum to <= 1; each request draws once from ``random.Random(seed)``.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import socket
import struct
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

log = logging.getLogger(__name__)

__all__ = ["FaultInjector", "FaultSpec", "parse_faults"]

KINDS = ("429", "5xx", "truncate", "reset", "418", "stall", "repeat")
_FLOAT_KEYS = {"latency", "latencyp", *KINDS}
_INT_KEYS = {"seed", "tries", *(f"{k}burst" for k in KINDS)}
#: a stall's length, seconds (uniform)
STALL_S = (2.0, 4.0)
_VALID = sorted(_FLOAT_KEYS | _INT_KEYS | {"retry_after", "truncate_mode", "paths"})


@dataclass(frozen=True)
class FaultSpec:
    latency: float = 0.0
    latencyp: float = 1.0
    p429: float = 0.0
    p5xx: float = 0.0
    ptruncate: float = 0.0
    preset: float = 0.0
    seed: int = 0
    retry_after: str = "1"
    truncate_mode: str = "mixed"
    bursts: tuple[tuple[str, int], ...] = ()
    paths: tuple[str, ...] = ("/info",)
    p418: float = 0.0
    pstall: float = 0.0
    prepeat: float = 0.0
    tries: int | None = None

    @property
    def probabilities(self) -> tuple[float, ...]:
        """In the order of KINDS."""
        return (self.p429, self.p5xx, self.ptruncate, self.preset, self.p418, self.pstall, self.prepeat)

    @property
    def active(self) -> bool:
        return bool(self.latency or any(self.probabilities) or self.bursts)

    def describe(self) -> str:
        parts = []
        if self.latency:
            parts.append(f"latency={self.latency:g}")
            if self.latencyp != 1.0:
                parts.append(f"latencyp={self.latencyp:g}")
        for k, p in zip(KINDS, self.probabilities, strict=True):
            if p:
                parts.append(f"{k}={p:g}")
        parts += [f"{k}burst={n}" for k, n in self.bursts]
        if self.tries is not None:
            parts.append(f"tries={self.tries}")
        parts.append(f"seed={self.seed}")
        return ",".join(parts)


def parse_faults(spec: str | FaultSpec | None) -> FaultSpec | None:
    """Parse a fault spec string (see module docstring). ``None``/empty => no faults."""
    if spec is None or isinstance(spec, FaultSpec):
        return spec
    spec = spec.strip()
    if not spec or spec.lower() in {"none", "off"}:
        return None
    vals: dict[str, Any] = {}
    bursts: list[tuple[str, int]] = []
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or key not in _VALID:
            raise ValueError(
                f"bad fault item {item!r}: expected key=value with key in {', '.join(_VALID)} "
                "(e.g. 'latency=0.05,429=0.2,5xx=0.1,truncate=0.1,reset=0.05,seed=3')"
            )
        try:
            if key in _FLOAT_KEYS:
                v = float(value)
                if v < 0 or (key not in {"latency"} and v > 1):
                    raise ValueError
                vals[key] = v
            elif key in _INT_KEYS:
                n = int(value)
                if n < 0:
                    raise ValueError
                if key.endswith("burst"):
                    bursts.append((key[: -len("burst")], n))
                else:
                    vals[key] = n
            elif key == "truncate_mode":
                if value not in {"cl", "json", "mixed"}:
                    raise ValueError
                vals[key] = value
            elif key == "retry_after":
                if value != "date":
                    float(value)
                vals[key] = value
            elif key == "paths":
                vals[key] = tuple(p for p in value.split("|") if p)
        except ValueError:
            raise ValueError(f"bad value in fault item {item!r}") from None
    order = {k: i for i, k in enumerate(KINDS)}
    fs = FaultSpec(
        latency=vals.get("latency", 0.0),
        latencyp=vals.get("latencyp", 1.0),
        p429=vals.get("429", 0.0),
        p5xx=vals.get("5xx", 0.0),
        ptruncate=vals.get("truncate", 0.0),
        preset=vals.get("reset", 0.0),
        seed=vals.get("seed", 0),
        retry_after=vals.get("retry_after", "1"),
        truncate_mode=vals.get("truncate_mode", "mixed"),
        bursts=tuple(sorted(bursts, key=lambda b: order[b[0]])),
        paths=vals.get("paths", ("/info",)),
        p418=vals.get("418", 0.0),
        pstall=vals.get("stall", 0.0),
        prepeat=vals.get("repeat", 0.0),
        tries=vals.get("tries"),
    )
    total = sum(fs.probabilities)
    if total > 1.0 + 1e-9:
        raise ValueError(f"fault probabilities sum to {total:g} > 1 in {spec!r}")
    return fs


@dataclass
class _Decision:
    kind: str | None
    delay: float
    sub: float  # second uniform draw: picks the 5xx code / truncation mode


@dataclass
class FaultInjector:
    """Outermost ASGI middleware applying a :class:`FaultSpec` to matching requests.

    ``counts`` tallies injected faults by kind; ``requests`` counts matching requests.
    ``set_spec`` swaps the spec at runtime (resets the RNG and the request counter).
    """

    app: Any
    spec: FaultSpec | None = None
    counts: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    _rng: random.Random = field(default_factory=random.Random, repr=False)
    #: per request (method, path, query, body): arrivals so far
    arrivals: Counter[tuple] = field(default_factory=Counter)
    #: (fault kind, Retry-After it sent, seconds until the same request arrived again): measured waits
    retry_gaps: list[tuple[str, float | None, float]] = field(default_factory=list)
    _pending: dict[tuple, tuple[str, float | None, float]] = field(default_factory=dict, repr=False)
    _last_ok: dict[tuple, tuple[dict, bytes]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.set_spec(self.spec)

    def set_spec(self, spec: str | FaultSpec | None) -> None:
        self.spec = parse_faults(spec)
        self._rng = random.Random(self.spec.seed if self.spec else 0)
        self.requests = 0
        self.counts = Counter()
        self.arrivals = Counter()
        self.retry_gaps = []
        self._pending = {}
        self._last_ok = {}

    def _decide(self, spec: FaultSpec) -> _Decision:
        n = self.requests
        self.requests += 1
        u, sub, lat = self._rng.random(), self._rng.random(), self._rng.random()
        delay = spec.latency if spec.latency and lat < spec.latencyp else 0.0
        acc = 0
        for kind, count in spec.bursts:
            acc += count
            if n < acc:
                return _Decision(kind, delay, sub)
        edge = 0.0
        for kind, p in zip(KINDS, spec.probabilities, strict=True):
            edge += p
            if u < edge:
                return _Decision(kind, delay, sub)
        return _Decision(None, delay, sub)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        spec = self.spec
        if scope["type"] != "http" or spec is None or not _matches(scope.get("path", ""), spec.paths):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        receive = _replay(body)
        key = (scope.get("method"), scope.get("path"), scope.get("query_string", b""), body)
        now = time.monotonic()
        if key in self._pending:  # the same request again after a fault: how long the client waited
            kind, sent, at = self._pending.pop(key)
            self.retry_gaps.append((kind, sent, now - at))
        self.arrivals[key] += 1
        d = self._decide(spec)
        if spec.tries is not None and self.arrivals[key] > spec.tries:
            d = _Decision(None, d.delay, d.sub)  # past its first tries a request always gets through
        if d.delay:
            self.counts["latency"] += 1
            await asyncio.sleep(d.delay)
        family = _page_family(scope, body)
        if d.kind == "repeat" and family not in self._last_ok:
            d = _Decision(None, d.delay, d.sub)  # no earlier page of this walk: nothing to repeat
        if d.kind is None:
            await self.app(scope, receive, self._remember(family, send))
            return
        self.counts[d.kind] += 1
        retry_after = None
        if d.kind in ("429", "418"):
            status = int(d.kind)
            retry_after = _retry_after(spec)
            text = b"429 Too Many Requests (injected)" if status == 429 else b"418 I'm a teapot: IP banned (injected)"
            await _simple(send, status, text, [(b"retry-after", retry_after)])
        elif d.kind == "stall":
            await asyncio.sleep(STALL_S[0] + d.sub * (STALL_S[1] - STALL_S[0]))
            await self.app(scope, receive, self._remember(family, send))
            return
        elif d.kind == "repeat":
            start, page = self._last_ok[family]
            await send(start)
            await send({"type": "http.response.body", "body": page})
            return
        elif d.kind == "5xx":
            status = (500, 502, 503)[min(2, int(d.sub * 3))]
            body = {
                500: b"Internal Server Error",
                502: b"<html><body><h1>502 Bad Gateway</h1></body></html>",
                503: b"<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>",
            }[status]
            ctype = b"text/plain" if status == 500 else b"text/html"
            if status == 503:
                retry_after = _retry_after(spec)
            await _simple(send, status, body, [(b"retry-after", retry_after)] if retry_after else [], ctype)
        elif d.kind == "reset":
            await _reset(send)
        elif d.kind == "truncate":
            mode = spec.truncate_mode
            if mode == "mixed":
                mode = "cl" if d.sub < 0.5 else "json"
            await _truncated(self.app, scope, receive, send, mode)
        ra = None
        if retry_after is not None and retry_after != b"date":
            try:
                ra = float(retry_after)
            except ValueError:
                ra = None
        self._pending[key] = (d.kind if d.kind != "5xx" else str(status), ra, time.monotonic())

    def _remember(self, family: tuple, send: Any) -> Any:
        """``send`` that keeps the last complete 200 answer of a page walk (what a stale cache repeats)."""
        start: dict = {}
        chunks: list[bytes] = []

        async def wrapped(msg: dict[str, Any]) -> None:
            if msg["type"] == "http.response.start":
                start.update(msg)
            elif msg["type"] == "http.response.body":
                chunks.append(msg.get("body", b""))
                if not msg.get("more_body") and start.get("status") == 200:
                    self._last_ok[family] = (dict(start), b"".join(chunks))
            await send(msg)

        return wrapped


#: request parameters that move a pager through its pages (every venue's cursor, offset and time bounds),
#: and those a signature adds to every request
PAGING_KEYS = frozenset(
    {
        "cursor",
        "start",
        "after",
        "before",
        "startTime",
        "endTime",
        "start_timestamp",
        "end_timestamp",
        "createdBeforeOrAt",
        "createdBeforeOrAtHeight",
        "continuation",
        "page",
        "timestamp",
        "recvWindow",
        "signature",
    }
)


def _page_family(scope: dict[str, Any], body: bytes) -> tuple:
    """The request without its paging parameters: the pages of one walk share it, so "the previous
    page" is the previous page of the same walk, never another query's answer."""
    params = [
        (k, v)
        for k, v in urllib.parse.parse_qsl(scope.get("query_string", b"").decode("latin-1"))
        if k not in PAGING_KEYS
    ]
    try:
        obj = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        obj = None
    if isinstance(obj, dict):
        params += [(k, orjson.dumps(v).decode()) for k, v in obj.items() if k not in PAGING_KEYS]
    return scope.get("path"), tuple(sorted(params))


def _matches(path: str, paths: tuple[str, ...]) -> bool:
    return any(path.startswith(p[:-1]) if p.endswith("*") else path == p for p in paths)


async def _read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        msg = await receive()
        if msg["type"] != "http.request":
            break
        chunks.append(msg.get("body", b""))
        if not msg.get("more_body"):
            break
    return b"".join(chunks)


def _replay(body: bytes) -> Any:
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}  # the body was read once; later reads mean the client is gone

    return receive


def _retry_after(spec: FaultSpec) -> bytes:
    if spec.retry_after == "date":
        return email.utils.formatdate(time.time() + 1, usegmt=True).encode()
    return spec.retry_after.encode()


async def _simple(
    send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]], ctype: bytes = b"text/plain"
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _transport(send: Any) -> asyncio.Transport | None:
    """uvicorn's raw ``send`` is a bound method of the request cycle, which holds the transport."""
    cycle = getattr(send, "__self__", None)
    tr = getattr(cycle, "transport", None)
    return tr if isinstance(tr, asyncio.BaseTransport) else None


async def _drop(tr: asyncio.Transport, *, rst: bool) -> None:
    if rst:
        sock = tr.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        tr.abort()
    else:
        tr.close()
    # let connection_lost run so uvicorn marks the cycle disconnected (no error log)
    for _ in range(3):
        await asyncio.sleep(0)


async def _reset(send: Any) -> None:
    tr = _transport(send)
    if tr is None:  # not on uvicorn: the best we can do is a broken response
        raise ConnectionResetError("injected reset (transport not reachable; server answers 500)")
    await _drop(tr, rst=True)


async def _truncated(app: Any, scope: dict[str, Any], receive: Any, send: Any, mode: str) -> None:
    start: dict[str, Any] = {}
    chunks: list[bytes] = []

    async def capture(msg: dict[str, Any]) -> None:
        if msg["type"] == "http.response.start":
            start.update(msg)
        elif msg["type"] == "http.response.body":
            chunks.append(msg.get("body", b""))

    await app(scope, receive, capture)
    body = b"".join(chunks)
    if start.get("status") != 200 or len(body) < 2:
        await send(start)
        await send({"type": "http.response.body", "body": body})
        return
    cut = body[: max(1, len(body) // 2)]
    headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
    tr = _transport(send)
    if mode == "cl" and tr is not None:
        await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": cut, "more_body": True})
        await _drop(tr, rst=False)
        return
    await send({**start, "headers": [*headers, (b"content-length", str(len(cut)).encode())]})
    await send({"type": "http.response.body", "body": cut})
