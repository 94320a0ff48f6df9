"""CEX normalizers on the documented examples (../shared/reference/api-examples): side conventions,
units, timestamps, and rejection of malformed / hostile items."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from forensics.formats.cex import binance, bitmex, bybit, deribit, dydx, okx
from forensics.formats.cex.common import RecordError, symbol
from tests.conftest import PROJECT_ROOT

ROOT = PROJECT_ROOT
EXAMPLES = ROOT.parent / "shared" / "reference" / "api-examples"


def example(name: str) -> dict:
    path = EXAMPLES / name
    if not path.exists():
        pytest.skip(f"documented example missing: {path}")
    return orjson.loads(path.read_bytes())


def test_binance_force_order_ws_sell_means_long_liquidated():
    x = example("binance_forceOrder_ws.json")
    docs = binance.force_order_event_row(x["docs_example"])
    assert (docs["raw_side"], docs["side_meaning"], docs["liquidated_position_side"]) == ("SELL", "order", "long")
    cap = binance.force_order_event_row(x["ccxt_capture"])
    assert cap["liquidated_position_side"] == "short"
    assert (
        cap["price"] == Decimal("34959.70") and cap["price_kind"] == "avg" and cap["order_price"] == Decimal("35100.81")
    )
    assert cap["size_base"] == Decimal("1.437") and cap["notional_usd"] == Decimal("1.437") * Decimal("34959.70")
    assert cap["time_ms"] == 1698871323059


def test_binance_force_orders_liquidation_and_adl():
    x = example("binance_forceOrders.json")
    liq, fill = binance.force_order_rows(x["response"][0], "acct")
    assert not liq["is_adl"] and liq["liquidated_position_side"] == "long" and fill["is_liquidated_leg"]
    assert fill["side"] == "A" and fill["dir"] == "LIQUIDATION" and fill["tid"] == 6071832819
    adl, adl_fill = binance.force_order_rows(x["response"][1], "acct")
    assert adl["is_adl"] and adl["liquidated_position_side"] == "short"  # positionSide SHORT, BUY closes it
    assert adl_fill["is_adl"] and not adl_fill["is_liquidation"] and adl_fill["dir"] == "ADL"


def test_binance_adl_quantile_and_risk():
    x = example("binance_adlQuantile.json")
    rows = [r for item in x["response"] for r in binance.adl_quantile_rows(item, "acct", 1)]
    assert {(r["symbol"], r["position_side"], r["rank"]) for r in rows} >= {
        ("ETHUSDT", "long", 3),
        ("BTCUSDT", "short", 2),
    }
    assert all(r["position_side"] != "hedge" for r in rows)
    risk = example("binance_symbolAdlRisk.json")
    assert [binance.symbol_adl_risk_row(i)["rating"] for i in risk["response_all"]] == ["low", "high"]
    assert (
        binance.symbol_adl_risk_row({"symbol": "BTCUSDT", "adlRisk": "LOW", "updateTime": 1766827800453})["rating"]
        == "low"
    )
    with pytest.raises(RecordError, match="unknown adlRisk"):
        binance.symbol_adl_risk_row({"symbol": "BTCUSDT", "adlRisk": "extreme", "updateTime": 1766827800453})


def test_binance_insurance_pools():
    x = example("binance_insuranceBalance.json")
    rows = binance.insurance_rows(x["response_with_symbol"])
    assert {r["asset"] for r in rows} == {"USDC", "USDT", "BTC", "BNFCR"}
    assert rows[0]["pool"].split(",") == sorted(x["response_with_symbol"]["symbols"])


def test_bybit_all_liquidation_buy_means_long_liquidated():
    x = example("bybit_allLiquidation_ws.json")
    (row,) = bybit.all_liquidation_rows(x["allLiquidation"])
    # S is the POSITION side on Bybit: Sell = a short was liquidated (opposite of Binance's order side)
    assert (row["raw_side"], row["side_meaning"], row["liquidated_position_side"]) == ("Sell", "position", "short")
    assert row["notional_usd"] == Decimal("20000") * Decimal("0.04499") and row["time_ms"] == 1739502302929


def test_bybit_execution_position_insurance_alert():
    x = example("bybit_execution_list_and_position_list.json")
    liq, fill = bybit.execution_rows(x["execution_list"]["result"]["list"][0], "acct")
    assert liq is None and fill["dir"] == "Trade" and fill["hash"] == "8c065341-7b52-4ca9-ac2c-37e31ac55c94"
    bust = {**x["execution_list"]["result"]["list"][0], "execType": "BustTrade", "side": "Sell"}
    liq, fill = bybit.execution_rows(bust, "acct")
    assert liq["liquidated_position_side"] == "long" and fill["is_liquidated_leg"]
    with pytest.raises(RecordError, match="unknown execType"):
        bybit.execution_rows({**bust, "execType": "Mystery"}, "acct")
    rank, pos = bybit.position_rows(x["position_list"]["result"]["list"][0], "acct", 1767085741416)
    assert (
        rank["rank"] == 2
        and rank["rank_max"] == 5
        and rank["position_side"] == "long"
        and pos["szi"] == Decimal("0.01")
    )
    ins = example("bybit_insurance.json")
    rows = bybit.insurance_rows(ins["response"]["result"])
    assert len(rows) == 4 and rows[0]["pool"] == "10000000AIDOGEUSDT,MERLUSDT,ZEUSUSDT"
    alert = example("bybit_adlAlert_ws.json")["ws_message"]
    a = [bybit.adl_alert_row(i, alert["ts"]) for i in alert["data"]]
    assert a[0]["symbol"] == "FWOGUSDT" and a[0]["balance"] < 0 and a[0]["adl_trigger_threshold"] == Decimal(10000)


def test_okx_liquidations_contracts_to_base_and_usd():
    x = example("okx_liquidation_orders.json")
    contracts = dict(
        [
            okx.instrument({"instId": "BTC-USDT-SWAP", "ctVal": "0.01", "ctValCcy": "BTC", "ctType": "linear"}),
            okx.instrument({"instId": "IOST-USDT-SWAP", "ctVal": "1000", "ctValCcy": "IOST", "ctType": "linear"}),
        ]
    )
    (rest,) = okx.liquidation_rows(x["rest_response_shape_UNCONFIRMED_values"]["data"][0], contracts)
    assert rest["liquidated_position_side"] == "long" and rest["raw_side"] == "sell" and rest["qty_unit"] == "contracts"
    assert rest["size_base"] == Decimal("0.12") and rest["notional_usd"] == Decimal("0.12") * Decimal("60123.4")
    assert rest["price_kind"] == "bankruptcy"
    (ws,) = okx.liquidation_rows(x["ws_message"]["data"][0], contracts)
    assert ws["liquidated_position_side"] == "short" and ws["size_base"] == Decimal(13000)
    inverse = {"BTC-USD-SWAP": okx.Contract(Decimal(100), True)}
    (inv,) = okx.liquidation_rows(
        {
            "instId": "BTC-USD-SWAP",
            "details": [
                {
                    "side": "buy",
                    "posSide": "short",
                    "sz": "5",
                    "bkPx": "50000",
                    "bkLoss": "0",
                    "ccy": "",
                    "ts": "1723540000000",
                }
            ],
        },
        inverse,
    )
    assert inv["notional_usd"] == Decimal(500) and inv["size_base"] == Decimal("0.01")
    (unknown,) = okx.liquidation_rows(x["ws_message"]["data"][0], {})
    assert unknown["size_base"] is None and unknown["qty"] == Decimal(13)
    with pytest.raises(RecordError, match="contradicts"):
        okx.liquidation_rows(
            {
                "instId": "BTC-USDT-SWAP",
                "details": [{"side": "sell", "posSide": "short", "sz": "1", "bkPx": "1", "ts": "1723540000000"}],
            },
            contracts,
        )


def test_okx_insurance_positions_bills():
    x = example("okx_insurance_fund.json")
    (row,) = okx.insurance_rows(x["response"]["data"][0])
    assert (
        row["kind"] == "liquidation_balance_deposit"
        and row["pool"] == "ETH-USD"
        and row["change"] == Decimal("1343.1308")
    )
    with pytest.raises(RecordError, match="unknown insurance-fund type"):
        okx.insurance_rows(
            {"instFamily": "ETH-USD", "details": [{**x["response"]["data"][0]["details"][0], "type": "bogus"}]}
        )
    pos = example("okx_positions_and_trades.json")["account_positions"]["data"][0]
    rank, snap = okx.position_rows(pos, "acct", 1619507761462, {"ETH-USD-210430": okx.Contract(Decimal(10), True)})
    assert rank["rank"] == 1 and rank["position_side"] == "long" and snap["leverage_type"] == "isolated"
    contracts = {"ETH-USDT-SWAP": okx.Contract(Decimal("0.1"), False)}
    bill = {
        "billId": "1",
        "instId": "ETH-USDT-SWAP",
        "type": "9",
        "subType": "126",
        "px": "2000",
        "sz": "2",
        "ts": "1700000000000",
        "pnl": "5",
        "fee": "0",
        "ccy": "USDT",
        "ordId": "7",
        "tradeId": "8",
    }
    fill, liq = okx.bill_row(bill, "acct", contracts)
    assert (
        fill["is_adl"]
        and fill["side"] == "B"
        and fill["sz"] == Decimal("0.2")
        and liq["liquidated_position_side"] == "short"
    )
    with pytest.raises(RecordError, match="does not belong"):
        okx.bill_row({**bill, "type": "5"}, "acct", contracts)


def test_bitmex_deribit_dydx():
    x = example("bitmex_liquidation_trade_position.json")
    contracts = dict(
        [bitmex.instrument({"symbol": "XBTUSD", "isInverse": True, "isQuanto": False, "multiplier": -1e8})]
    )
    row = bitmex.liquidation_row(x["rest_liquidation_item"], 1_700_000_000_000, contracts)
    assert row["liquidated_position_side"] == "short" and row["time_source"] == "received"
    assert row["notional_usd"] == Decimal(2020) and row["size_base"] == (Decimal(2020) / Decimal("6833.5")).quantize(
        Decimal("1e-10")
    )
    ws = bitmex.liquidation_row(x["ws_liquidation"]["data"][0], 1_700_000_000_000, contracts)
    assert ws["liquidated_position_side"] == "long" and ws["size_base"] is None  # no instrument: contracts only
    d = example("deribit_trades_and_settlements.json")
    t = deribit.trade_row(d["liquidation_trade_item_ILLUSTRATIVE"])
    assert t["liquidated_position_side"] == "long" and t["qty_unit"] == "usd" and t["notional_usd"] == Decimal(5000)
    m = deribit.trade_row({**d["liquidation_trade_item_ILLUSTRATIVE"], "liquidation": "M"})
    assert m["liquidated_position_side"] == "short"
    assert not deribit.is_liquidation(d["ws_trades_message"]["params"]["data"][0])
    s = deribit.settlement_row(
        d["get_last_settlements_by_instrument_bankruptcy"]["result"]["settlements"][0], "BTC-PERPETUAL"
    )
    assert s["change"] == Decimal(-10000) and s["asset"] == "BTC"
    y = example("dydx_v4_trades_fills.json")
    with pytest.raises(RecordError, match="not a liquidation"):
        dydx.trade_row(y["trades_response"]["trades"][0], "BTC-USD")
    liq = dydx.trade_row({**y["trades_response"]["trades"][0], "type": "LIQUIDATED", "side": "SELL"}, "BTC-USD")
    assert liq["liquidated_position_side"] == "long" and liq["time_ms"] == 1753420269800
    f = dydx.fill_row_of(y["fills_response_shape_UNCONFIRMED_values"]["fills"][0], "dydx1" + "q" * 38)
    assert f["is_liquidated_leg"] and f["side"] == "A"


@pytest.mark.parametrize("bad", ["../x", "<b>BTC</b>", "", "a/b", "BTC\x00", "x" * 200, 5])
def test_hostile_symbols_rejected(bad):
    with pytest.raises(RecordError):
        symbol(bad)
    with pytest.raises(RecordError):
        binance.force_order_event_row(
            {
                "e": "forceOrder",
                "E": 1,
                "o": {
                    "s": bad,
                    "S": "SELL",
                    "q": "1",
                    "p": "1",
                    "ap": "1",
                    "X": "FILLED",
                    "l": "1",
                    "z": "1",
                    "T": 1698871323059,
                },
            }
        )


def test_unknown_sides_and_times_rejected():
    with pytest.raises(RecordError, match="unknown side"):
        bybit.all_liquidation_row({"T": 1739502302929, "s": "ROSEUSDT", "S": "Long", "v": "1", "p": "1"})
    with pytest.raises(RecordError, match="epoch"):
        bybit.all_liquidation_row({"T": "yesterday", "s": "ROSEUSDT", "S": "Buy", "v": "1", "p": "1"})
    with pytest.raises(RecordError, match="non-numeric"):
        bybit.all_liquidation_row({"T": 1739502302929, "s": "ROSEUSDT", "S": "Buy", "v": "NaN?", "p": "1"})
