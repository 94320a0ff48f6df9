"""What the local CEX endpoints serve: generated liquidation/insurance/ADL data plus the documented examples.

:func:`generate` builds a deterministic synthetic market (seeded) big enough to exercise every venue's
paging; :func:`add_examples` adds the documented payloads from ``reference/api-examples/`` (read at run
time from the shared reference directory, never copied into the project). Tests may append hostile or
malformed items to any list before serving.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

__all__ = ["Account", "CexData", "add_examples", "generate"]

HOUR_MS = 3_600_000


@dataclass(frozen=True, repr=False)
class Account:
    """A read-only API key the local server accepts, and the account data it unlocks."""

    venue: str
    key: str
    secret: str
    passphrase: str | None = None
    name: str = "main"


@dataclass
class CexData:
    now_ms: int = 0
    accounts: list[Account] = field(default_factory=list)
    # binance
    binance_force_orders: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # account name -> orders
    binance_adl_quantile: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    binance_insurance: list[dict[str, Any]] = field(default_factory=list)
    binance_adl_risk: list[dict[str, Any]] = field(default_factory=list)
    binance_premium: list[dict[str, Any]] = field(default_factory=list)
    binance_open_interest: list[dict[str, Any]] = field(default_factory=list)
    binance_ws: list[dict[str, Any]] = field(default_factory=list)
    # bybit
    bybit_executions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    bybit_positions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    bybit_insurance: dict[str, Any] = field(default_factory=dict)
    bybit_adl_alert: list[dict[str, Any]] = field(default_factory=list)
    bybit_ws: list[dict[str, Any]] = field(default_factory=list)
    # okx
    okx_instruments: list[dict[str, Any]] = field(default_factory=list)
    okx_liquidations: list[dict[str, Any]] = field(
        default_factory=list
    )  # data items (one detail each after flattening)
    okx_insurance: list[dict[str, Any]] = field(default_factory=list)
    okx_bills: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    okx_positions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # bitmex
    bitmex_instruments: list[dict[str, Any]] = field(default_factory=list)
    bitmex_liquidations: list[dict[str, Any]] = field(default_factory=list)
    bitmex_insurance: list[dict[str, Any]] = field(default_factory=list)
    bitmex_executions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # account name -> executions
    bitmex_positions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # deribit
    deribit_trades: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    deribit_settlements: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    deribit_user_trades: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # account name -> trades
    deribit_positions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    deribit_tokens: dict[str, str] = field(default_factory=dict)  # access token -> account name
    # dydx
    dydx_trades: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    dydx_fills: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # websocket behaviour: close the socket after this many data messages (reconnect tests); None = never
    ws_drop_after: int | None = None
    ws_connections: int = 0

    def account(self, venue: str, key: str | None) -> Account | None:
        return next((a for a in self.accounts if a.venue == venue and a.key == key), None)


def _s(x: float, nd: int = 4) -> str:
    return f"{x:.{nd}f}"


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def generate(start_ms: int, hours: int = 6, *, seed: int = 7, accounts: list[Account] | None = None) -> CexData:
    """A crash-like window: prices fall, liquidations cluster, insurance funds draw down, ADL fires."""
    rng = random.Random(seed)
    end_ms = start_ms + hours * HOUR_MS
    d = CexData(now_ms=end_ms, accounts=list(accounts or []))
    px = {"BTCUSDT": 60000.0, "ETHUSDT": 3000.0}

    def price(sym: str, t: int) -> float:
        crash = 0.15 * min(1.0, max(0.0, (t - start_ms) / (end_ms - start_ms)))
        return px[sym] * (1 - crash) * (1 + rng.uniform(-0.002, 0.002))

    # binance: 260 own force orders (pages of 100), ADL ones tagged adl_autoclose
    for name in {a.name for a in d.accounts if a.venue == "binance"} or {"main"}:
        orders = []
        for i in range(260):
            t = start_ms + int((i + 0.5) * (end_ms - start_ms) / 260)
            sym = "BTCUSDT" if i % 3 else "ETHUSDT"
            adl = i % 10 == 0
            side = "BUY" if adl else "SELL"
            p = price(sym, t)
            orders.append(
                {
                    "orderId": 7_000_000_000 + i,
                    "symbol": sym,
                    "status": "FILLED",
                    "clientOrderId": "adl_autoclose" if adl else f"autoclose-{t}{i:06d}",
                    "price": _s(p * 0.99, 2),
                    "avgPrice": _s(p, 5),
                    "origQty": "0.010",
                    "executedQty": "0.010",
                    "cumQuote": _s(p * 0.01, 5),
                    "timeInForce": "IOC",
                    "type": "LIMIT",
                    "reduceOnly": False,
                    "closePosition": False,
                    "side": side,
                    "positionSide": "SHORT" if adl else "BOTH",
                    "stopPrice": "0",
                    "workingType": "CONTRACT_PRICE",
                    "origType": "LIMIT",
                    "time": t,
                    "updateTime": t + 20,
                }
            )
        d.binance_force_orders[name] = orders
        d.binance_adl_quantile[name] = [
            {"symbol": "BTCUSDT", "adlQuantile": {"LONG": 0, "SHORT": 4, "BOTH": 0}},
            {"symbol": "ETHUSDT", "adlQuantile": {"LONG": 1, "SHORT": 3, "BOTH": 0}},
        ]
    d.binance_insurance = [
        {
            "symbols": ["BTCUSDT", "ETHUSDT"],
            "assets": [{"asset": "USDT", "marginBalance": "800000000.5", "updateTime": end_ms}],
        },
    ]
    d.binance_adl_risk = [
        {"symbol": s, "adlRisk": r, "updateTime": end_ms} for s, r in (("BTCUSDT", "high"), ("ETHUSDT", "MEDIUM"))
    ]
    for sym in px:
        d.binance_premium.append(
            {
                "symbol": sym,
                "markPrice": _s(price(sym, end_ms), 2),
                "indexPrice": _s(price(sym, end_ms), 2),
                "estimatedSettlePrice": "0",
                "lastFundingRate": "0.00010000",
                "interestRate": "0.00010000",
                "nextFundingTime": end_ms + HOUR_MS,
                "time": end_ms,
            }
        )
        d.binance_open_interest.append({"symbol": sym, "openInterest": "12345.678", "time": end_ms})
    for i in range(40):
        t = start_ms + i * 1000
        d.binance_ws.append(
            {
                "e": "forceOrder",
                "E": t + 2,
                "o": {
                    "s": "BTCUSDT",
                    "S": "SELL" if i % 4 else "BUY",
                    "o": "LIMIT",
                    "f": "IOC",
                    "q": "0.050",
                    "p": "59000.10",
                    "ap": "59100.20",
                    "X": "FILLED",
                    "l": "0.050",
                    "z": "0.050",
                    "T": t,
                },
            }
        )

    # bybit: 230 executions (BustTrade / AdlTrade / Trade), positions with adlRankIndicator
    for name in {a.name for a in d.accounts if a.venue == "bybit"} or {"main"}:
        exs = []
        for i in range(230):
            t = start_ms + int((i + 0.5) * (end_ms - start_ms) / 230)
            kind = ("AdlTrade", "BustTrade", "Trade", "Trade")[i % 4]
            p = price("ETHUSDT", t)
            exs.append(
                {
                    "symbol": "ETHUSDT",
                    "orderType": "Market",
                    "side": "Buy" if kind == "AdlTrade" else "Sell",
                    "orderId": str(uuid.UUID(int=rng.getrandbits(128))),
                    "execId": str(uuid.UUID(int=rng.getrandbits(128))),
                    "execTime": str(t),
                    "execType": kind,
                    "execPrice": _s(p, 2),
                    "execQty": "0.10",
                    "execValue": _s(p * 0.1, 3),
                    "execFee": "0.01",
                    "feeRate": "0.0006",
                    "markPrice": _s(p, 2),
                    "isMaker": False,
                    "orderLinkId": "",
                    "leavesQty": "0",
                    "orderQty": "0.10",
                    "orderPrice": _s(p, 2),
                }
            )
        d.bybit_executions[name] = exs
        d.bybit_positions[name] = [
            {
                "symbol": "ETHUSDT",
                "side": "Sell",
                "size": "1.5",
                "avgPrice": "3100",
                "positionValue": "4650",
                "markPrice": "2600",
                "unrealisedPnl": "750",
                "liqPrice": "",
                "leverage": "10",
                "tradeMode": 0,
                "adlRankIndicator": 5,
                "positionIdx": 0,
                "updatedTime": str(end_ms),
            },
            {
                "symbol": "BTCUSDT",
                "side": "",
                "size": "0",
                "avgPrice": "0",
                "positionValue": "",
                "markPrice": "51000",
                "unrealisedPnl": "",
                "liqPrice": "",
                "leverage": "10",
                "tradeMode": 0,
                "adlRankIndicator": 0,
                "positionIdx": 0,
                "updatedTime": str(end_ms),
            },
        ]
    d.bybit_insurance = {
        "updatedTime": str(end_ms),
        "list": [{"coin": "USDT", "symbols": "ETHUSDT,BTCUSDT", "balance": "1000000", "value": "999900"}],
    }
    d.bybit_adl_alert = [
        {
            "coin": "USDT",
            "symbol": "ETHUSDT",
            "balance": "5000",
            "maxBalance": "5000",
            "insurancePnlRatio": "-0.3",
            "pnlRatio": "-0.35",
            "adlTriggerThreshold": "10000",
            "adlStopRatio": "-0.25",
        },
    ]
    for i in range(30):
        t = start_ms + i * 500
        d.bybit_ws.append(
            {
                "topic": "allLiquidation.BTCUSDT",
                "type": "snapshot",
                "ts": t + 5,
                "data": [{"T": t, "s": "BTCUSDT", "S": "Buy" if i % 3 else "Sell", "v": "0.2", "p": "59000.5"}],
            }
        )

    # okx: instruments with ctVal, 250 liquidation details, insurance series, bills 5/9
    d.okx_instruments = [
        {
            "instId": "BTC-USDT-SWAP",
            "instType": "SWAP",
            "ctVal": "0.01",
            "ctValCcy": "BTC",
            "ctType": "linear",
            "settleCcy": "USDT",
        },
        {
            "instId": "BTC-USD-SWAP",
            "instType": "SWAP",
            "ctVal": "100",
            "ctValCcy": "USD",
            "ctType": "inverse",
            "settleCcy": "BTC",
        },
        {
            "instId": "ETH-USDT-SWAP",
            "instType": "SWAP",
            "ctVal": "0.1",
            "ctValCcy": "ETH",
            "ctType": "linear",
            "settleCcy": "USDT",
        },
        {
            "instId": "IOST-USDT-SWAP",
            "instType": "SWAP",
            "ctVal": "1000",
            "ctValCcy": "IOST",
            "ctType": "linear",
            "settleCcy": "USDT",
        },
    ]
    for i in range(250):
        t = start_ms + int((i + 0.5) * (end_ms - start_ms) / 250)
        long_liq = i % 5 != 0
        d.okx_liquidations.append(
            {
                "instId": "BTC-USDT-SWAP",
                "instType": "SWAP",
                "instFamily": "BTC-USDT",
                "uly": "BTC-USDT",
                "totalLoss": "",
                "details": [
                    {
                        "bkLoss": "0",
                        "bkPx": _s(price("BTCUSDT", t), 1),
                        "ccy": "",
                        "posSide": "long" if long_liq else "short",
                        "side": "sell" if long_liq else "buy",
                        "sz": str(1 + i % 20),
                        "ts": str(t),
                    }
                ],
            }
        )
    bal = 1_000_000.0
    for h in range(hours + 1):
        t = start_ms + h * HOUR_MS
        drop = 120_000.0 if h in (3, 4) else 1000.0
        bal -= drop
        d.okx_insurance.append(
            {
                "total": _s(bal, 2),
                "instFamily": "BTC-USDT",
                "instType": "SWAP",
                "details": [
                    {
                        "adlType": "",
                        "amt": _s(-drop, 2),
                        "balance": _s(bal, 4),
                        "ccy": "USDT",
                        "maxBal": "",
                        "maxBalTs": "",
                        "ts": str(t),
                        "type": "bankruptcy_loss",
                    }
                ],
            }
        )
    for name in {a.name for a in d.accounts if a.venue == "okx"} or {"main"}:
        bills = []
        for i in range(130):
            t = start_ms + int((i + 0.5) * (end_ms - start_ms) / 130)
            adl = i % 4 == 0
            bills.append(
                {
                    "billId": str(900_000_000 + i),
                    "instId": "ETH-USDT-SWAP",
                    "instType": "SWAP",
                    "type": "9" if adl else "5",
                    "subType": "126" if adl else "104",
                    "px": _s(price("ETHUSDT", t), 2),
                    "sz": "-3" if not adl else "2",
                    "ts": str(t),
                    "pnl": "12.5" if adl else "-40",
                    "fee": "0",
                    "ccy": "USDT",
                    "ordId": str(5_000_000 + i),
                    "tradeId": str(8_000_000 + i),
                    "mgnMode": "cross",
                    "balChg": "0",
                    "bal": "1000",
                    "execType": "T",
                }
            )
        d.okx_bills[name] = sorted(bills, key=lambda b: -int(b["billId"]))
        d.okx_positions[name] = [
            {
                "instId": "ETH-USDT-SWAP",
                "instType": "SWAP",
                "adl": "5",
                "pos": "-20",
                "posSide": "net",
                "avgPx": "3100",
                "upl": "900",
                "liqPx": "",
                "lever": "5",
                "mgnMode": "cross",
                "uTime": str(end_ms),
            },
        ]

    # bitmex
    d.bitmex_instruments = [
        {
            "symbol": "XBTUSD",
            "isInverse": True,
            "isQuanto": False,
            "underlyingToPositionMultiplier": None,
            "multiplier": -100000000,
        },
        {
            "symbol": "XPLAUSDT",
            "isInverse": False,
            "isQuanto": False,
            "underlyingToPositionMultiplier": 1,
            "multiplier": 100,
        },
    ]
    for i in range(12):
        d.bitmex_liquidations.append(
            {
                "orderID": str(uuid.UUID(int=rng.getrandbits(128))),
                "symbol": "XBTUSD",
                "side": "Sell" if i % 2 else "Buy",
                "price": 51000.5 + i,
                "leavesQty": 1000 * (i + 1),
            }
        )
    for h in range(hours + 1):
        t = start_ms + h * HOUR_MS
        d.bitmex_insurance.append(
            {"currency": "XBt", "timestamp": _iso(t), "walletBalance": 10_000_000_000 - h * 50_000_000}
        )

    for name in sorted({a.name for a in d.accounts if a.venue == "bitmex"} or {"main"}):
        # 620 executions (two pages of 500): trades, every 10th a liquidation, every 25th a deleverage, funding
        ex = []
        for i in range(620):
            t = start_ms + int((i + 0.5) * (end_ms - start_ms) / 620)
            text = "Deleverage" if i % 25 == 0 else "Liquidation" if i % 10 == 0 else "Submitted via API."
            ex.append(
                {
                    "execID": str(uuid.UUID(int=rng.getrandbits(128))),
                    "orderID": str(uuid.UUID(int=rng.getrandbits(128))),
                    "symbol": "XBTUSD",
                    "side": "Sell" if i % 3 else "Buy",
                    "lastQty": 100 * (1 + i % 5),
                    "lastPx": round(price("BTCUSDT", t), 1),
                    "execType": "Funding" if i % 50 == 49 else "Trade",
                    "ordType": "Limit" if "API" in text else "Market",
                    "text": text,
                    "timestamp": _iso(t),
                }
            )
        d.bitmex_executions[name] = ex
        d.bitmex_positions[name] = [
            {
                "symbol": "XBTUSD",
                "currentQty": -3000,
                "avgEntryPrice": 61000.5,
                "liquidationPrice": 70000.0,
                "leverage": 10,
                "crossMargin": True,
                "unrealisedPnl": 1200,
                "deleveragePercentile": 0.8,
                "timestamp": _iso(end_ms),
            },
            {
                "symbol": "XPLAUSDT",
                "currentQty": 0,
                "avgEntryPrice": None,
                "liquidationPrice": None,
                "leverage": 5,
                "crossMargin": False,
                "unrealisedPnl": 0,
                "deleveragePercentile": None,
                "timestamp": _iso(end_ms),
            },
        ]

    # deribit: 2,300 trades (pages of 1,000), every 50th a liquidation
    trades = []
    for i in range(2300):
        t = start_ms + int(i * (end_ms - start_ms) / 2300)
        tr = {
            "trade_seq": 1000 + i,
            "trade_id": f"D{1000 + i}",
            "timestamp": t,
            "tick_direction": i % 4,
            "price": round(price("BTCUSDT", t), 1),
            "mark_price": round(price("BTCUSDT", t), 1),
            "index_price": round(price("BTCUSDT", t), 1),
            "instrument_name": "BTC-PERPETUAL",
            "direction": "sell" if i % 2 else "buy",
            "amount": 10.0 * (1 + i % 7),
        }
        if i % 50 == 0:
            tr["liquidation"] = ("T", "M", "MT")[(i // 50) % 3]
        trades.append(tr)
    d.deribit_trades["BTC-PERPETUAL"] = trades
    d.deribit_settlements["BTC-PERPETUAL"] = [
        {
            "type": "bankruptcy",
            "timestamp": start_ms + k * HOUR_MS,
            "funded": 1000.0 * (k + 1),
            "session_bankrupcy": 1000.0,
            "session_profit_loss": 0.0,
            "session_tax": 0.0,
            "session_tax_rate": 0.0,
            "socialized": 0.0,
        }
        for k in range(3)
    ]

    for name in sorted({a.name for a in d.accounts if a.venue == "deribit"} or {"main"}):
        # 1,200 own trades (two pages of 1,000), every 40th a liquidation of this account (liquidity letter in the flag)
        own = []
        for i in range(1200):
            t = start_ms + int((i + 0.25) * (end_ms - start_ms) / 1200)
            tr = {
                "trade_id": f"U{50_000 + i}",
                "trade_seq": 90_000 + i,
                "timestamp": t,
                "instrument_name": "BTC-PERPETUAL",
                "direction": "sell" if i % 2 else "buy",
                "amount": 10.0 * (1 + i % 4),
                "price": round(price("BTCUSDT", t), 1),
                "order_id": f"O{70_000 + i}",
                "fee": 0.0001,
                "liquidity": "T" if i % 3 else "M",
            }
            if i % 40 == 0:
                tr["liquidation"] = "T" if tr["liquidity"] == "T" else "M"
            own.append(tr)
        d.deribit_user_trades[name] = own
        d.deribit_positions[name] = [
            {
                "instrument_name": "BTC-PERPETUAL",
                "size": -25000.0,
                "direction": "sell",
                "average_price": 61500.0,
                "estimated_liquidation_price": 72000.0,
                "leverage": 20,
                "floating_profit_loss": 0.02,
                "kind": "future",
            },
        ]

    # dydx: 250 trades, every 10th LIQUIDATED, every 25th DELEVERAGED
    dtr = []
    for i in range(250):
        t = start_ms + int(i * (end_ms - start_ms) / 250)
        kind = "DELEVERAGED" if i % 25 == 0 else "LIQUIDATED" if i % 10 == 0 else "LIMIT"
        dtr.append(
            {
                "id": f"{i:024x}",
                "side": "SELL" if i % 2 else "BUY",
                "size": "0.05",
                "price": _s(price("BTCUSDT", t), 1),
                "type": kind,
                "createdAt": _iso(t),
                "createdAtHeight": str(40_000_000 + i),
            }
        )
    d.dydx_trades["BTC-USD"] = sorted(dtr, key=lambda x: -int(x["createdAtHeight"]))
    addr = "dydx1" + "q" * 38
    d.dydx_fills[addr] = [
        {
            "id": f"f{i}",
            "side": "SELL",
            "liquidity": "TAKER",
            "type": ("LIQUIDATED", "OFFSETTING", "LIMIT")[i % 3],
            "market": "BTC-USD",
            "marketType": "PERPETUAL",
            "price": "50000",
            "size": "0.1",
            "fee": "0",
            "createdAt": _iso(start_ms + i * 60_000),
            "createdAtHeight": str(40_100_000 - i),
            "orderId": None,
            "clientMetadata": None,
            "subaccountNumber": 0,
        }
        for i in range(9)
    ]
    return d


def add_examples(d: CexData, examples_dir: Path) -> list[str]:
    """Add the documented payloads found in ``examples_dir``; returns the file names used."""
    used: list[str] = []

    def load(name: str) -> Any | None:
        p = Path(examples_dir) / name
        if not p.exists():
            return None
        used.append(name)
        return orjson.loads(p.read_bytes())

    if (x := load("binance_forceOrders.json")) is not None:
        for name in list(d.binance_force_orders) or ["main"]:
            d.binance_force_orders.setdefault(name, []).extend(x["response"])
    if (x := load("binance_forceOrder_ws.json")) is not None:
        d.binance_ws[:0] = [x["docs_example"], x["ccxt_capture"]]
    if (x := load("binance_adlQuantile.json")) is not None:
        for name in list(d.binance_adl_quantile) or ["main"]:
            d.binance_adl_quantile.setdefault(name, []).extend(x["response"])
    if (x := load("binance_symbolAdlRisk.json")) is not None:
        d.binance_adl_risk.extend(x["response_all"])
    if (x := load("binance_insuranceBalance.json")) is not None:
        d.binance_insurance.extend(x["response_without_symbol"])
    if (x := load("bybit_allLiquidation_ws.json")) is not None:
        d.bybit_ws.insert(0, x["allLiquidation"])
    if (x := load("bybit_execution_list_and_position_list.json")) is not None:
        for name in list(d.bybit_executions) or ["main"]:
            d.bybit_executions.setdefault(name, []).extend(x["execution_list"]["result"]["list"])
            d.bybit_positions.setdefault(name, []).extend(x["position_list"]["result"]["list"])
    if (x := load("bybit_insurance.json")) is not None:
        d.bybit_insurance.setdefault("list", []).extend(x["response"]["result"]["list"])
    if (x := load("okx_liquidation_orders.json")) is not None:
        d.okx_liquidations.extend(x["rest_response_shape_UNCONFIRMED_values"]["data"])
        d.okx_liquidations.extend(x["ws_message"]["data"])
    if (x := load("okx_insurance_fund.json")) is not None:
        d.okx_insurance.extend(x["response"]["data"])
    if (x := load("okx_positions_and_trades.json")) is not None:
        for name in list(d.okx_positions) or ["main"]:
            d.okx_positions.setdefault(name, []).extend(x["account_positions"]["data"])
    if (x := load("bitmex_liquidation_trade_position.json")) is not None:
        d.bitmex_liquidations.append(x["rest_liquidation_item"])
        d.bitmex_liquidations.extend(x["ws_liquidation"]["data"])
    if (x := load("deribit_trades_and_settlements.json")) is not None:
        item = x["liquidation_trade_item_ILLUSTRATIVE"]
        d.deribit_trades.setdefault(item["instrument_name"], []).append(item)
        d.deribit_trades.setdefault("BTC-PERPETUAL", []).extend(x["ws_trades_message"]["params"]["data"])
        d.deribit_settlements.setdefault("BTC-PERPETUAL", []).extend(
            x["get_last_settlements_by_instrument_bankruptcy"]["result"]["settlements"]
        )
    if (x := load("dydx_v4_trades_fills.json")) is not None:
        d.dydx_trades.setdefault("BTC-USD", []).extend(x["trades_response"]["trades"])
    for trades in d.deribit_trades.values():
        trades.sort(key=lambda t: t.get("timestamp", 0))
    return used
