"""GMX v2 on EVM chains: the EventEmitter log stream and its decoding into lake rows (orchestration:
it builds an ingest ``Stream``; the contract reads are in ``pipelines.venues.gmx``).

The stream asks ``eth_getLogs`` for the EventEmitter's ``EventLog1``/``EventLog2`` logs whose topic 1
(``keccak256(eventName)``) is PositionIncrease, PositionDecrease, OrderExecuted or AdlStateUpdated.
Per block segment the logs are decoded (``forensics.formats.gmx``) into ``gmx_position_events``,
``gmx_adl_states`` and ``fills`` (venue ``gmx_v2``; mapping in ``forensics.schema_onchain``). An ADL
execution is a MarketDecrease whose order has an ``OrderExecuted`` with ``secondaryOrderType == Adl``
(the AdlHandler creates and executes that order in one transaction).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from forensics.formats import gmx as fmt
from forensics.schema import FILLS
from forensics.schema_onchain import GMX_ADL_STATES, GMX_POSITION_EVENTS
from pipelines.ingest.onchain import ChainRegistry, Decoded, GmxMarket, OnchainError, Stream, dec
from pipelines.venues.evm import Log

VENUE = fmt.VENUE
STREAM = "gmx_events"
TID_LOG_FACTOR = 100_000  # fills.tid = block_number * TID_LOG_FACTOR + log_index


def _event_name_of(names: dict[str, str]):
    def name(log: Log) -> str | None:
        return names.get(log.topics[1]) if len(log.topics) > 1 else None

    return name


def gmx_stream(registry: ChainRegistry, *, emitter: str | None = None, from_block: int | None = None,
               markets: tuple[GmxMarket, ...] | None = None, segment_blocks: int = 10_000) -> Stream:
    address = (emitter or registry.gmx_event_emitter or "").lower()
    if not address:
        raise OnchainError(f"{registry.name}: no GMX EventEmitter in the registry; pass --emitter ADDRESS")
    names = {fmt.event_name_topic(n): n for n in fmt.FORENSIC_EVENTS}
    return Stream(
        venue=VENUE, chain=registry.name, name=STREAM, address=(address,),
        topic_filters=(((fmt.EVENT_LOG1_TOPIC, fmt.EVENT_LOG2_TOPIC), tuple(names)),),
        event="EventLog1|EventLog2:" + ",".join(fmt.FORENSIC_EVENTS),
        from_block=registry.gmx_from_block if from_block is None else from_block,
        tables=(GMX_POSITION_EVENTS, GMX_ADL_STATES, FILLS),
        decoder=gmx_decoder(registry.name, markets if markets is not None else registry.gmx_markets),
        event_name=_event_name_of(names),
        segment_blocks=segment_blocks,
    )


def _dir(ch: fmt.PositionChange, is_adl: bool) -> str:
    side = "Long" if ch.is_long else "Short"
    if ch.kind == "increase":
        return f"Open {side}"
    if is_adl:
        return "Auto-Deleveraging"
    if ch.order_type == fmt.ORDER_TYPE_LIQUIDATION:
        return f"Liquidated Isolated {side}"
    return f"Close {side}"


def gmx_decoder(chain: str, markets: tuple[GmxMarket, ...]):
    by_market = {m.address: m for m in markets}

    def decode(rows: list[dict[str, Any]]) -> Decoded:
        out = Decoded(tables={GMX_POSITION_EVENTS.name: [], GMX_ADL_STATES.name: [], FILLS.name: []})
        events: list[tuple[dict[str, Any], fmt.GmxEvent]] = []
        for r in rows:
            try:
                topics = [t for t in (r["topic0"], r["topic1"], r["topic2"], r["topic3"]) if t is not None]
                events.append((r, fmt.decode_log(topics, r["data"])))
            except fmt.DecodeError as exc:
                out.rejects.append((r["block_number"], r["log_index"], f"GMX EventEmitter log: {exc}", json.dumps(r, default=str)))
        adl_orders = set()
        for r, ev in events:
            if ev.event_name == fmt.ORDER_EXECUTED:
                try:
                    key, _acct, secondary = fmt.order_executed(ev)
                except fmt.DecodeError:
                    continue
                if secondary == fmt.SECONDARY_ORDER_TYPE_ADL:
                    adl_orders.add(key)  # order keys are unique (keccak of a nonce)
        for r, ev in events:
            base = {k: r[k] for k in ("venue", "date", "chain", "block_number", "block_hash", "time", "time_ms",
                                      "tx_hash", "tx_index", "log_index")}
            try:
                if ev.event_name in (fmt.POSITION_INCREASE, fmt.POSITION_DECREASE):
                    _position(out, r, base, ev, adl_orders, by_market, chain)
                    continue
                if ev.event_name == fmt.ADL_STATE_UPDATED:
                    st = fmt.adl_state(ev)
                    m = by_market.get(st.market)
                    out.tables[GMX_ADL_STATES.name].append({
                        **base, "market": st.market, "market_name": m.name if m else None, "is_long": st.is_long,
                        "pnl_to_pool_factor": st.pnl_to_pool_factor / fmt.USD_SCALE,
                        "max_pnl_factor": st.max_pnl_factor / fmt.USD_SCALE, "should_enable_adl": st.should_enable_adl,
                    })
                elif ev.event_name == fmt.ORDER_EXECUTED:
                    fmt.order_executed(ev)  # validated; kept in onchain_logs, used for ADL classification
                out.written += 1
            except fmt.DecodeError as exc:
                out.rejects.append((r["block_number"], r["log_index"], f"GMX {ev.event_name}: {exc}", json.dumps(r, default=str)))
        return out

    return decode


def _position(out: Decoded, r: dict[str, Any], base: dict[str, Any], ev: fmt.GmxEvent, adl_orders: set,
              by_market: dict[str, GmxMarket], chain: str) -> None:
    ch = fmt.position_change(ev)
    is_adl = ch.kind == "decrease" and ch.order_key in adl_orders
    is_liq = ch.kind == "decrease" and ch.order_type == fmt.ORDER_TYPE_LIQUIDATION
    m = by_market.get(ch.market)
    px = lambda raw: dec(fmt.price_per_token(raw, m.index_decimals)) if m else None  # noqa: E731
    out.tables[GMX_POSITION_EVENTS.name].append({
        **base, "event_name": ev.event_name, "account": ch.account, "market": ch.market,
        "market_name": m.name if m else None, "collateral_token": ch.collateral_token, "is_long": ch.is_long,
        "order_type": ch.order_type, "order_type_name": ch.order_type_name, "is_liquidation": is_liq, "is_adl": is_adl,
        "order_key": ch.order_key, "position_key": ch.position_key, "size_in_usd": dec(fmt.usd(ch.size_in_usd)),
        "size_in_tokens_raw": str(ch.size_in_tokens), "collateral_amount_raw": str(ch.collateral_amount),
        "size_delta_usd": dec(fmt.usd(ch.size_delta_usd)), "size_delta_in_tokens_raw": str(ch.size_delta_in_tokens),
        "execution_price": px(ch.execution_price), "index_price_min": px(ch.index_price_min),
        "index_price_max": px(ch.index_price_max),
        "collateral_usd": dec(fmt.value_usd(ch.collateral_amount, ch.collateral_price_min)),
        "base_pnl_usd": dec(fmt.usd(ch.base_pnl_usd)) if ch.base_pnl_usd is not None else None,
        "price_impact_usd": dec(fmt.usd(ch.price_impact_usd)) if ch.price_impact_usd is not None else None,
    })
    if m is None:
        raise fmt.DecodeError(f"market {ch.market} is not in the {chain} registry ([[gmx.markets]]): "
                              "position event kept in gmx_position_events, no fills row")
    sz = fmt.token_amount(ch.size_delta_in_tokens, m.index_decimals)
    after = fmt.token_amount(ch.size_in_tokens, m.index_decimals)
    before = after + sz if ch.kind == "decrease" else after - sz
    sign = 1 if ch.is_long else -1
    buying = (ch.kind == "increase") == ch.is_long
    mark = (Decimal(ch.index_price_min) + Decimal(ch.index_price_max)) / 2
    out.tables[FILLS.name].append({
        "venue": VENUE, "date": r["date"], "coin": m.name, "user": ch.account, "time": r["time"], "time_ms": r["time_ms"],
        "block_number": r["block_number"], "block_time": r["time"], "local_time": None, "event_index": r["log_index"],
        "tid": r["block_number"] * TID_LOG_FACTOR + r["log_index"], "fill_id": f"{chain}:{r['tx_hash']}:{r['log_index']}",
        "oid": None, "hash": r["tx_hash"], "side": "B" if buying else "A", "px": px(ch.execution_price), "sz": dec(sz),
        "start_position": dec(sign * before), "dir": _dir(ch, is_adl),
        "closed_pnl": dec(fmt.usd(ch.base_pnl_usd)) if ch.base_pnl_usd is not None else None,
        "fee": None, "fee_token": None, "builder_fee": None, "crossed": None, "cloid": None, "twap_id": None,
        "is_liquidation": is_liq, "is_liquidated_leg": is_liq, "liquidated_user": ch.account if is_liq else None,
        "liquidation_mark_px": dec(fmt.price_per_token(int(mark), m.index_decimals)) if is_liq else None,
        "liquidation_method": "backstop" if is_liq else None, "is_adl": is_adl,
        "source": STREAM,
    })
    out.written += 1
