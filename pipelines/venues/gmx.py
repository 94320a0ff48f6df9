"""GMX v2 contract reads over JSON-RPC (transport only: no lake, no orchestration).

* ``Reader.getMarkets(DataStore dataStore, uint256 start, uint256 end) returns (Market.Props[])`` with
  ``Market.Props = (address marketToken, address indexToken, address longToken, address shortToken)``
  (gmx-synthetics ``contracts/reader/Reader.sol``, ``contracts/market/Market.sol``). The DataStore clamps
  ``end`` to the number of markets and reverts when ``start`` is past it, so pages are read until one
  comes back short.
* ERC-20 ``decimals()`` and ``symbol()`` of the market's tokens. Synthetic index tokens (markets whose
  index has no token on the chain, e.g. BTC/USD on Arbitrum) are addresses without code:
  ``keccak256(abi.encode(chainId, symbol))[12:]`` (gmx-synthetics ``utils/token.ts``); their decimals come
  from the chain registry.

The EventEmitter log stream and its decoding into lake rows are in ``pipelines.ingest.gmx``.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak

from pipelines.venues.evm import CallReverted, EvmRpc, RpcError, code_at

GET_MARKETS = "0x" + keccak(text="getMarkets(address,uint256,uint256)")[:4].hex()
DECIMALS = "0x313ce567"  # decimals()
SYMBOL = "0x95d89b41"  # symbol()
ZERO_ADDRESS = "0x" + "0" * 40
MARKETS_PAGE = 100


@dataclass(frozen=True)
class MarketProps:
    """``Market.Props`` as ``Reader.getMarkets`` returns it (lower-case addresses)."""

    market_token: str
    index_token: str  # the zero address for swap-only markets
    long_token: str
    short_token: str


@dataclass(frozen=True)
class TokenInfo:
    address: str
    symbol: str | None
    decimals: int | None  # None: no contract at the address (synthetic) or no decimals()
    has_code: bool


def get_markets(
    rpc: EvmRpc, reader: str, data_store: str, block: int, *, page: int = MARKETS_PAGE
) -> list[MarketProps]:
    """Every market in ``data_store`` at ``block``, read through ``reader`` in pages of ``page``."""
    out: list[MarketProps] = []
    start = 0
    while True:
        data = GET_MARKETS + abi_encode(["address", "uint256", "uint256"], [data_store, start, start + page]).hex()
        raw = rpc.eth_call(reader, data, block)
        try:
            (props,) = abi_decode(["(address,address,address,address)[]"], raw)
        except Exception as exc:  # eth_abi raises several types on a malformed answer
            raise RpcError(
                f"Reader {reader}.getMarkets answered {len(raw)} bytes that are not Market.Props[]: "
                f"{type(exc).__name__}; is {reader} GMX's Reader?"
            ) from None
        out.extend(MarketProps(*(a.lower() for a in p)) for p in props)
        if len(props) < page:
            return out
        start += page


def _symbol(raw: bytes) -> str | None:
    if len(raw) >= 64:
        try:
            (text,) = abi_decode(["string"], raw)
            return text.strip() or None
        except Exception:  # not a string answer: older tokens return bytes32 (below)
            pass
    if len(raw) == 32:
        text = raw.rstrip(b"\0").decode("utf-8", errors="replace").strip()
        return text or None
    return None


def token_info(rpc: EvmRpc, token: str, block: int) -> TokenInfo:
    """``decimals()`` and ``symbol()`` of ``token`` at ``block``; None for what the token does not answer."""
    if not code_at(rpc, token, block):
        return TokenInfo(token, None, None, False)
    decimals: int | None = None
    symbol: str | None = None
    try:
        raw = rpc.eth_call(token, DECIMALS, block)
        if len(raw) >= 32 and int.from_bytes(raw[:32], "big") <= 77:  # 10**77 is the largest power in a uint256
            decimals = int.from_bytes(raw[:32], "big")
    except CallReverted:
        pass
    try:
        symbol = _symbol(rpc.eth_call(token, SYMBOL, block))
    except CallReverted:
        pass
    return TokenInfo(token, symbol, decimals, True)


def synthetic_token_address(chain_id: int, symbol: str) -> str:
    """The placeholder address GMX gives a synthetic index token on a chain."""
    return "0x" + keccak(abi_encode(["uint256", "string"], [chain_id, symbol]))[12:].hex()
