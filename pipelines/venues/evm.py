"""EVM JSON-RPC access: a small transport-agnostic client, adaptive ``eth_getLogs`` and URL redaction.

Transports:

* :class:`HttpTransport`: JSON-RPC over HTTP(S) with httpx (timeouts, retries with backoff on
  429/5xx/timeouts/resets, ``Retry-After`` honoured). The URL may carry a provider key (path or query);
  it is never logged: :func:`redact_url` keeps scheme and host only.
* :class:`Web3Transport`: any web3 provider's ``make_request`` (in-process eth-tester/py-evm in tests).

:meth:`EvmRpc.get_logs` asks for a block range and, when the provider refuses it (too many results,
range limits, response too large), splits the range in halves until each piece is accepted; transient
errors are retried. The chunk size adapts: it shrinks after a refusal and grows again after successes.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx


class RpcError(RuntimeError):
    """A JSON-RPC error answer (``code``, ``message``) or a transport failure after retries."""

    def __init__(self, message: str, code: int | None = None, *, transient: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.transient = transient


class RangeTooLarge(RpcError):
    """The provider refused an ``eth_getLogs`` range (too many results or a block-range limit).
    ``suggested`` is the ``(from, to)`` range the provider proposed, when its message names one
    (Alchemy: "this block range should work: [0x..., 0x...]")."""

    def __init__(
        self,
        message: str,
        code: int | None = None,
        *,
        transient: bool = False,
        suggested: tuple[int, int] | None = None,
    ) -> None:
        super().__init__(message, code, transient=transient)
        self.suggested = suggested


class CallReverted(RpcError):
    """An ``eth_call`` the contract reverted (or a call to a function it does not have)."""


# what providers answer when a getLogs range is too big (Alchemy, Infura, QuickNode, Ankr, geth, erigon, anvil)
_RANGE_PATTERNS = re.compile(
    r"query returned more than|too many (results|logs|blocks)|block range|range (is )?too (large|wide|big)|"
    r"exceed(s|ed)? .*(limit|range|max)|limit exceeded|response size|max results|ranges over|"
    r"log response size|query timeout|payload too large",
    re.IGNORECASE,
)
_RANGE_CODES = {-32005, -32602, -32614}
_TRANSIENT_CODES = {-32000, -32603, -32002, 429}


def redact_url(url: str) -> str:
    """``https://arb-mainnet.example/v2/SECRET`` -> ``https://arb-mainnet.example`` (never log keys)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<rpc>"
    host = parts.hostname or "<rpc>"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}" if parts.scheme else host


_SUGGESTED_RANGE = re.compile(r"\[\s*(0x[0-9a-fA-F]+)\s*,\s*(0x[0-9a-fA-F]+)\s*\]")


def classify_error(code: int | None, message: str, method: str) -> RpcError:
    if method == "eth_getLogs" and (
        _RANGE_PATTERNS.search(message) or (code in _RANGE_CODES and "range" in message.lower())
    ):
        m = _SUGGESTED_RANGE.search(message)
        return RangeTooLarge(message, code, suggested=(int(m.group(1), 16), int(m.group(2), 16)) if m else None)
    if method == "eth_call" and (code == 3 or "revert" in message.lower()):
        return CallReverted(message, code)
    return RpcError(message, code, transient=code in _TRANSIENT_CODES)


class Transport(Protocol):
    label: str

    def request(self, method: str, params: list[Any]) -> Any: ...

    def close(self) -> None: ...


class HttpTransport:
    """JSON-RPC over HTTP with retries. ``label`` (for logs and raw records) never contains the key."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 30.0,
        max_retries: int = 4,
        backoff_s: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._url = url
        self.label = redact_url(url)
        self._client = httpx.Client(timeout=timeout, headers={"content-type": "application/json"})
        self._max_retries = max_retries
        self._backoff = backoff_s
        self._sleep = sleep
        self._id = 0

    def request(self, method: str, params: list[Any]) -> Any:
        last: Exception | None = None
        for attempt in range(self._max_retries + 1):
            self._id += 1
            try:
                resp = self._client.post(
                    self._url, json={"jsonrpc": "2.0", "id": self._id, "method": method, "params": params}
                )
            except httpx.ConnectError:
                # nothing listens (refused, unknown host): one quick retry, then give up
                if attempt >= 1:
                    raise RpcError(f"{method}: cannot connect to {self.label}") from None
                self._sleep(self._backoff)
                continue
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                last = RpcError(f"{method}: {type(exc).__name__} talking to {self.label}", transient=True)
                self._sleep(self._backoff * 2**attempt)
                continue
            if resp.status_code == 429 or resp.status_code >= 500:
                retry_after = resp.headers.get("retry-after")
                wait = (
                    float(retry_after)
                    if retry_after and retry_after.replace(".", "", 1).isdigit()
                    else self._backoff * 2**attempt
                )
                last = RpcError(
                    f"{method}: HTTP {resp.status_code} from {self.label}", resp.status_code, transient=True
                )
                self._sleep(min(wait, 30.0))
                continue
            if resp.status_code >= 400 and resp.status_code != 400:
                raise RpcError(f"{method}: HTTP {resp.status_code} from {self.label}", resp.status_code)
            try:
                body = resp.json()
            except ValueError:
                last = RpcError(f"{method}: malformed JSON from {self.label}", transient=True)
                self._sleep(self._backoff * 2**attempt)
                continue
            if isinstance(body, dict) and body.get("error"):
                err = body["error"]
                exc = classify_error(err.get("code"), str(err.get("message", "")), method)
                if exc.transient and not isinstance(exc, RangeTooLarge) and attempt < self._max_retries:
                    last = exc
                    self._sleep(self._backoff * 2**attempt)
                    continue
                raise exc
            if not isinstance(body, dict) or "result" not in body:
                raise RpcError(f"{method}: answer without result from {self.label}")
            return body["result"]
        assert last is not None
        # retries are spent here: callers must not multiply them
        raise RpcError(str(last), last.code, transient=False)

    def close(self) -> None:
        self._client.close()


class Web3Transport:
    """A web3 instance (e.g. on ``EthereumTesterProvider``: py-evm in-process), through web3's request
    manager, so web3's own request/result formatters apply; results are normalized by :class:`EvmRpc`."""

    def __init__(self, w3: Any, label: str = "in-process") -> None:
        # heavy (web3, eth-abi): only for in-process chains (tests), the HTTP transport does not need it
        from web3 import Web3

        # a private Web3 on the same provider, without ENS name resolution: web3 8's ENS middleware
        # tries to normalize eth_getLogs' address filter as a name and fails (seen with eth-tester)
        self._w3 = Web3(w3.provider)
        try:
            self._w3.middleware_onion.remove("ens_name_to_address")
        except (ValueError, KeyError):
            pass
        self.label = label

    def request(self, method: str, params: list[Any]) -> Any:
        try:
            return self._w3.manager.request_blocking(method, params)
        except Exception as exc:  # web3 raises typed errors carrying the JSON-RPC message
            message = str(exc.args[0]) if exc.args else str(exc)
            code = None
            if exc.args and isinstance(exc.args[0], dict):
                code, message = exc.args[0].get("code"), str(exc.args[0].get("message", ""))
            raise classify_error(code, f"{type(exc).__name__}: {message}", method) from None

    def close(self) -> None:
        pass


def _int(value: Any) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, (bytes, bytearray)):
        return int.from_bytes(value, "big")
    return int(str(value), 16) if str(value).startswith("0x") else int(value)


def _hex(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if hasattr(value, "hex") and not isinstance(value, str):
        h = value.hex()
        return h if h.startswith("0x") else "0x" + h
    return str(value).lower()


@dataclass(frozen=True)
class BlockHeader:
    number: int
    hash: str
    parent_hash: str
    timestamp: int  # seconds


@dataclass(frozen=True)
class Log:
    address: str
    topics: tuple[str, ...]
    data: str
    block_number: int
    block_hash: str
    tx_hash: str
    tx_index: int
    log_index: int
    removed: bool = False
    block_timestamp: int | None = None  # seconds; providers that follow geth >= 1.15 include it in logs

    @staticmethod
    def from_rpc(raw: dict[str, Any]) -> Log:
        ts = raw.get("blockTimestamp")
        return Log(
            address=_hex(raw["address"]).lower(),
            topics=tuple(_hex(t).lower() for t in raw.get("topics") or ()),
            data=_hex(raw.get("data") or "0x"),
            block_number=_int(raw["blockNumber"]),
            block_hash=_hex(raw["blockHash"]).lower(),
            tx_hash=_hex(raw["transactionHash"]).lower(),
            tx_index=_int(raw["transactionIndex"]),
            log_index=_int(raw["logIndex"]),
            removed=bool(raw.get("removed", False)),
            block_timestamp=_int(ts) if ts is not None else None,
        )


@dataclass
class GetLogsStats:
    requests: int = 0
    refusals: int = 0
    retries: int = 0
    calls: dict[str, int] = field(default_factory=dict)  # JSON-RPC requests sent, by method (retries included)

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    def describe(self) -> str:
        """'212 RPC calls (eth_getLogs 173, eth_getBlockByNumber 37, ...)'."""
        parts = ", ".join(f"{m} {n:,}" for m, n in sorted(self.calls.items(), key=lambda kv: (-kv[1], kv[0])))
        text = f"{self.total_calls:,} RPC calls" + (f" ({parts})" if parts else "")
        if self.refusals:
            text += f"; {self.refusals} eth_getLogs range(s) refused and split"
        return text


class EvmRpc:
    """The handful of JSON-RPC calls the pipeline needs, over any :class:`Transport`."""

    def __init__(
        self,
        transport: Transport,
        *,
        max_range: int = 5_000,
        min_range: int = 1,
        retries: int = 3,
        on_response: Callable[[str, list[Any], Any], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.transport = transport
        self.max_range = max_range
        self.min_range = min_range
        self.retries = retries
        self.on_response = on_response
        self.stats = GetLogsStats()
        self._chunk = max_range
        self._headers: dict[int, BlockHeader] = {}
        self._sleep = sleep

    @property
    def label(self) -> str:
        return self.transport.label

    def call(self, method: str, params: list[Any]) -> Any:
        for attempt in range(self.retries + 1):
            self.stats.calls[method] = self.stats.calls.get(method, 0) + 1
            try:
                result = self.transport.request(method, params)
            except RangeTooLarge:
                raise
            except RpcError as exc:
                if exc.transient and attempt < self.retries:
                    self.stats.retries += 1
                    self._sleep(0.05 * 2**attempt)
                    continue
                raise
            if self.on_response:
                self.on_response(method, params, result)
            return result
        raise AssertionError("unreachable")

    # --- chain -----------------------------------------------------------------------------------------
    def chain_id(self) -> int:
        return _int(self.call("eth_chainId", []))

    def block_number(self) -> int:
        return _int(self.call("eth_blockNumber", []))

    def header(self, number: int, *, fresh: bool = False) -> BlockHeader:
        if not fresh and number in self._headers:
            return self._headers[number]
        raw = self.call("eth_getBlockByNumber", [hex(number), False])
        if raw is None:
            raise RpcError(f"block {number} not found")
        h = BlockHeader(
            _int(raw["number"]), _hex(raw["hash"]).lower(), _hex(raw["parentHash"]).lower(), _int(raw["timestamp"])
        )
        self._headers[number] = h
        return h

    def forget_headers(self, from_block: int) -> None:
        for n in [n for n in self._headers if n >= from_block]:
            del self._headers[n]

    def eth_call(self, to: str, data: str, block: int | str = "latest") -> bytes:
        tag = hex(block) if isinstance(block, int) else block
        result = self.call("eth_call", [{"to": to, "data": data}, tag])
        return bytes.fromhex(_hex(result)[2:])

    # --- logs ----------------------------------------------------------------------------------------------
    def _get_logs_once(self, address: str | list[str] | None, topics: list[Any], lo: int, hi: int) -> list[Log]:
        flt: dict[str, Any] = {"fromBlock": hex(lo), "toBlock": hex(hi)}
        if topics:
            flt["topics"] = [list(t) if isinstance(t, (list, tuple)) else t for t in topics]
        if address:
            flt["address"] = address
        self.stats.requests += 1
        raw = self.call("eth_getLogs", [flt])
        return [Log.from_rpc(r) for r in raw]

    def iter_logs(
        self, address: str | list[str] | None, topics: list[Any], from_block: int, to_block: int
    ) -> Iterator[tuple[int, int, list[Log]]]:
        """Yield ``(lo, hi, logs)`` covering ``[from_block, to_block]`` in order, splitting refused ranges."""
        lo = from_block
        while lo <= to_block:
            hi = min(to_block, lo + self._chunk - 1)
            try:
                logs = self._get_logs_once(address, topics, lo, hi)
            except RangeTooLarge as exc:
                self.stats.refusals += 1
                if hi == lo or self._chunk <= self.min_range:
                    raise
                if exc.suggested and exc.suggested[0] == lo and lo <= exc.suggested[1] < hi:
                    self._chunk = exc.suggested[1] - lo + 1  # the provider said which range it takes
                else:
                    self._chunk = max(self.min_range, (hi - lo + 1) // 2)
                continue
            yield lo, hi, logs
            lo = hi + 1
            if self._chunk < self.max_range:  # grow back after a success
                self._chunk = min(self.max_range, self._chunk * 2)

    def get_logs(self, address: str | list[str] | None, topics: list[Any], from_block: int, to_block: int) -> list[Log]:
        out: list[Log] = []
        for _lo, _hi, logs in self.iter_logs(address, topics, from_block, to_block):
            out.extend(logs)
        return out

    def close(self) -> None:
        self.transport.close()


# --- ERC-20 helpers -------------------------------------------------------------------------------------------

TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
BALANCE_OF_SELECTOR = "0x70a08231"


def address_topic(address: str) -> str:
    return "0x" + "0" * 24 + address.lower().removeprefix("0x")


def code_at(rpc: EvmRpc, address: str, block: int | str = "latest") -> bool:
    """Whether ``address`` holds contract code at ``block`` (historical blocks need an archive node)."""
    tag = hex(block) if isinstance(block, int) else block
    code = rpc.call("eth_getCode", [address, tag])
    return isinstance(code, str) and len(code) > 2


def creation_block(rpc: EvmRpc, address: str, head: int) -> int | None:
    """The first block at which ``address`` has code (binary search over ``eth_getCode``, about
    log2(head) calls); None when it has none at ``head`` (an account, not a contract)."""
    if not code_at(rpc, address, head):
        return None
    lo, hi = 0, head  # invariant: code at hi
    while lo < hi:
        mid = (lo + hi) // 2
        if code_at(rpc, address, mid):
            hi = mid
        else:
            lo = mid + 1
    return hi


def balance_of(rpc: EvmRpc, token: str, holder: str, block: int | str) -> int:
    data = BALANCE_OF_SELECTOR + address_topic(holder)[2:]
    out = rpc.eth_call(token, data, block)
    if len(out) < 32:
        raise RpcError(f"balanceOf({holder}) on {token}: short answer ({len(out)} bytes); is it an ERC-20?")
    return int.from_bytes(out[:32], "big")
