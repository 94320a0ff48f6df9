"""Every Hyperliquid wire shape the project reads, as TypedDicts (as the Hyperliquid SDK's ``utils/types.py``
does): exact JSON, prices and sizes as decimal strings, times as epoch ms unless a field says otherwise.
Normalizers accept ``Any`` (the wire may lie) and check each field; these types document what they expect."""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict


class WireLiquidation(TypedDict):
    liquidatedUser: NotRequired[str]
    markPx: str
    method: Literal["market", "backstop"]


class WireFill(TypedDict):
    coin: str
    px: str
    sz: str
    side: Literal["B", "A"]
    time: int
    startPosition: str
    dir: str
    closedPnl: str
    hash: str
    oid: int
    crossed: bool
    fee: str
    tid: int
    feeToken: str
    builderFee: NotRequired[str]
    cloid: NotRequired[str]
    twapId: NotRequired[int | None]
    liquidation: NotRequired[WireLiquidation]


class WireNodeFillsBlock(TypedDict):
    """One line of ``node_fills_by_block/hourly/YYYYMMDD/H.lz4``; events are ``[user, fill]`` pairs."""

    local_time: str
    block_time: str
    block_number: int
    events: list[tuple[str, WireFill]]


class WireLeverage(TypedDict):
    type: Literal["cross", "isolated"]
    value: int
    rawUsd: NotRequired[str]


class WirePosition(TypedDict):
    coin: str
    szi: str
    leverage: WireLeverage
    entryPx: str
    positionValue: str
    unrealizedPnl: str
    returnOnEquity: str
    liquidationPx: str | None
    marginUsed: str
    maxLeverage: int
    cumFunding: dict[str, str]


class WireMarginSummary(TypedDict):
    accountValue: str
    totalNtlPos: str
    totalRawUsd: str
    totalMarginUsed: str


class WireClearinghouseState(TypedDict):
    marginSummary: WireMarginSummary
    crossMarginSummary: WireMarginSummary
    crossMaintenanceMarginUsed: str
    withdrawable: str
    assetPositions: list[dict[str, Any]]
    time: int


class WireSnapshotLine(TypedDict):
    """One line of a position snapshot file."""

    time: int
    user: str
    state: WireClearinghouseState


class WireAssetCtxLine(TypedDict):
    """One line of an asset-context file: ``ctxs`` is the ``metaAndAssetCtxs`` response pair."""

    time: int
    ctxs: list[Any]


# --- fills, set-wise in DuckDB ------------------------------------------------------------------------
