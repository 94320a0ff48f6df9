"""GMX v2 on EVM chains: its markets read from the chain, the EventEmitter log stream and its decoding
into lake rows (orchestration; the contract reads are in ``pipelines.venues.gmx``).

Markets: every run reads the market list from GMX's ``Reader.getMarkets`` on the ``DataStore`` (at
the run's confirmed head) and the ``decimals()``/``symbol()`` of tokens it has not seen before; the
result is kept in ``gmx_markets`` with the block it was read at, and the chain registry's
``[[gmx.markets]]`` entries override it (a name, or the decimals of an index token the chain cannot
tell). When the chain cannot be read (no Reader in the registry, the call fails) the cached markets
are used, and said.

Events: ``eth_getLogs`` for the EventEmitter's ``EventLog1``/``EventLog2`` logs whose topic 1
(``keccak256(eventName)``) is PositionIncrease, PositionDecrease, OrderExecuted or AdlStateUpdated.
Per block segment the logs are decoded (``forensics.formats.gmx``, by the layout each event's block
allows) into ``gmx_position_events``, ``gmx_adl_states`` and ``fills`` (venue ``gmx_v2``; mapping in
``forensics.tables.onchain``). An ADL execution is a decrease whose order (joined by transaction and
order key: the keeper creates and executes the order in one transaction) has an ``OrderExecuted`` with
``secondaryOrderType == Adl``; in the first layout, which has no ``secondaryOrderType``, one executed
by an AdlHandler (the event's ``msgSender``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import polars as pl
import pyarrow as pa

from forensics.formats import gmx as fmt
from forensics.tables import FILLS
from forensics.tables.onchain import GMX_ADL_STATES, GMX_MARKETS, GMX_POSITION_EVENTS
from pipelines.ingest.onchain import (
    ChainRegistry,
    Decoded,
    GmxMarket,
    OnchainError,
    Stream,
    StreamPlan,
    SyncResult,
    check_chain,
    dec,
    plan_stream,
    redecode_stream,
    sync_stream,
)
from pipelines.lake import Lake, safe_segment, source_key
from pipelines.venues import gmx as gmx_chain
from pipelines.venues.evm import EvmRpc, Log, RpcError

VENUE = fmt.VENUE
STREAM = "gmx_events"
TID_LOG_FACTOR = 100_000  # fills.tid = block_number * TID_LOG_FACTOR + log_index


# --- markets ------------------------------------------------------------------------------------------------


@dataclass
class MarketsResult:
    """The markets a run decodes with, and how they were obtained."""

    markets: tuple[GmxMarket, ...]
    unpriced: dict[str, str] = field(default_factory=dict)  # market -> why it has no index decimals
    block: int | None = None
    source: str = "chain"  # 'chain', 'cache' or 'registry'
    tokens_read: int = 0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        where = {
            "chain": f"read from the Reader at block {self.block:,}"
            if self.block is not None
            else "read from the Reader",
            "cache": f"from the lake's gmx_markets (read at block {self.block:,})"
            if self.block is not None
            else "from the lake's gmx_markets",
            "registry": "from the registry only",
        }[self.source]
        text = f"{len(self.markets)} GMX market(s) {where}"
        if self.tokens_read:
            text += f", {self.tokens_read} token(s) read (decimals, symbol)"
        if self.unpriced:
            text += f"; {len(self.unpriced)} without index decimals (their fills are quarantined)"
        return text


def _cached_markets(lake: Lake, chain: str) -> list[dict[str, Any]]:
    markets = lake.read(GMX_MARKETS, safe_segment(VENUE, "venue"))
    return [] if markets is None else markets.filter(pl.col("chain") == chain).to_dicts()


def _market_name(index: str | None, long: str | None, short: str | None, index_token: str) -> str:
    if index_token == gmx_chain.ZERO_ADDRESS:
        return f"SWAP [{long or '?'}-{short or '?'}]"
    return f"{index or index_token[:10]}/USD [{long or '?'}-{short or '?'}]"


def resolve_markets(lake: Lake, rpc: EvmRpc | None, registry: ChainRegistry, *, block: int | None) -> MarketsResult:
    """The chain's markets (see the module docstring); writes ``gmx_markets`` when they were read anew."""
    cached = _cached_markets(lake, registry.name)
    overrides = {m.address: m for m in registry.gmx_markets}
    read_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    result = MarketsResult(markets=())
    rows: list[dict[str, Any]] = []
    props: list[gmx_chain.MarketProps] | None = None
    if rpc is not None and block is not None and registry.gmx_reader and registry.gmx_data_store:
        try:
            props = gmx_chain.get_markets(rpc, registry.gmx_reader, registry.gmx_data_store, block)
        except RpcError as exc:
            result.notes.append(f"could not read markets from the Reader ({exc}); using the lake's cached markets")
    elif not (registry.gmx_reader and registry.gmx_data_store):
        result.notes.append(
            f"{registry.name}: no [gmx] reader/data_store in the registry; markets from the cache "
            "and [[gmx.markets]] only"
        )
    if props is not None:
        known = {}
        for r in cached:  # token metadata does not change: read each token once
            for side in ("index", "long", "short"):
                if r[f"{side}_token"] and (r[f"{side}_decimals"] is not None or r[f"{side}_symbol"] is not None):
                    known[r[f"{side}_token"]] = (r[f"{side}_symbol"], r[f"{side}_decimals"])
        synthetic = {
            gmx_chain.synthetic_token_address(registry.chain_id, sym): (sym, d)
            for sym, d in registry.gmx_synthetic_decimals
        }
        known.update(synthetic)
        for p in props:
            for token in (p.index_token, p.long_token, p.short_token):
                if token not in known and token != gmx_chain.ZERO_ADDRESS:
                    info = gmx_chain.token_info(rpc, token, block)
                    result.tokens_read += 1
                    known[token] = (info.symbol, info.decimals)
        header = rpc.header(block)
        aliases = dict(registry.gmx_symbol_aliases)
        for p in props:
            (isym, idec), (lsym, ldec), (ssym, sdec) = (
                known.get(t, (None, None)) for t in (p.index_token, p.long_token, p.short_token)
            )
            rows.append(
                {
                    "venue": VENUE,
                    "chain": registry.name,
                    "market": p.market_token,
                    "name": _market_name(aliases.get(isym, isym) if isym else None, lsym, ssym, p.index_token),
                    "index_token": p.index_token,
                    "long_token": p.long_token,
                    "short_token": p.short_token,
                    "index_symbol": isym,
                    "long_symbol": lsym,
                    "short_symbol": ssym,
                    "index_decimals": idec,
                    "long_decimals": ldec,
                    "short_decimals": sdec,
                    "source": "chain",
                    "reader": registry.gmx_reader,
                    "data_store": registry.gmx_data_store,
                    "block_number": block,
                    "block_hash": header.hash,
                    "read_at": read_at,
                }
            )
        result.block, result.source = block, "chain"
    else:
        rows = [dict(r) for r in cached]
        result.source = "cache" if rows else "registry"
        result.block = max((r["block_number"] for r in rows if r["block_number"] is not None), default=None)
    # names are unique per chain: two markets of the same tokens (USDC and USDC.e both say "USDC") get the
    # start of their address
    seen: dict[str, int] = {}
    for r in rows:
        seen[r["name"]] = seen.get(r["name"], 0) + 1
    for r in rows:
        if seen[r["name"]] > 1 and r["source"] == "chain":
            r["name"] = f"{r['name']} {r['market'][:8]}"
    by_market = {r["market"]: r for r in rows}
    for address, m in overrides.items():
        r = by_market.get(address)
        if r is None:
            by_market[address] = {
                "venue": VENUE,
                "chain": registry.name,
                "market": address,
                "name": m.name,
                "index_token": None,
                "long_token": None,
                "short_token": None,
                "index_symbol": None,
                "long_symbol": None,
                "short_symbol": None,
                "index_decimals": m.index_decimals,
                "long_decimals": None,
                "short_decimals": None,
                "source": "registry",
                "reader": None,
                "data_store": None,
                "block_number": None,
                "block_hash": None,
                "read_at": read_at,
            }
        else:
            r.update(
                name=m.name,
                index_decimals=m.index_decimals,
                source=r["source"] if r["source"] != "chain" else "chain+registry",
            )
    rows = sorted(by_market.values(), key=lambda r: r["market"])
    if props is not None:
        lake.replace_source(
            GMX_MARKETS,
            VENUE,
            source_key("gmx-markets", registry.name),
            pa.Table.from_pylist(rows, schema=GMX_MARKETS.arrow_schema()),
        )
    markets = []
    for r in rows:
        if r["index_decimals"] is None:
            if r["index_token"] != gmx_chain.ZERO_ADDRESS:
                result.unpriced[r["market"]] = (
                    f"its index token {r['index_token']} answers no decimals() (a synthetic token missing from "
                    "[gmx] synthetic_decimals?); add it there or a [[gmx.markets]] entry with index_decimals"
                )
            continue
        markets.append(
            GmxMarket(
                r["market"],
                r["name"],
                int(r["index_decimals"]),
                r["index_token"],
                r["long_token"],
                r["short_token"],
                r["source"],
            )
        )
    result.markets = tuple(markets)
    return result


# --- the event stream ----------------------------------------------------------------------------------------


def _event_name_of(names: dict[str, str]):
    def name(log: Log) -> str | None:
        return names.get(log.topics[1]) if len(log.topics) > 1 else None

    return name


def gmx_stream(
    registry: ChainRegistry,
    *,
    emitter: str | None = None,
    from_block: int | None = None,
    markets: tuple[GmxMarket, ...] | None = None,
    unpriced: dict[str, str] | None = None,
    segment_blocks: int = 10_000,
) -> Stream:
    address = (emitter or registry.gmx_event_emitter or "").lower()
    if not address:
        raise OnchainError(f"{registry.name}: no GMX EventEmitter in the registry; pass --emitter ADDRESS")
    names = {fmt.event_name_topic(n): n for n in fmt.FORENSIC_EVENTS}
    decoder = GmxDecoder(
        chain=registry.name,
        markets={m.address: m for m in (markets if markets is not None else registry.gmx_markets)},
        unpriced=unpriced or {},
        schedule=fmt.LayoutSchedule.of(list(registry.gmx_layouts)),
        adl_handlers=frozenset(registry.gmx_adl_handlers),
    )
    return Stream(
        venue=VENUE,
        chain=registry.name,
        name=STREAM,
        address=(address,),
        topic_filters=(((fmt.EVENT_LOG1_TOPIC, fmt.EVENT_LOG2_TOPIC), tuple(names)),),
        event="EventLog1|EventLog2:" + ",".join(fmt.FORENSIC_EVENTS),
        from_block=registry.gmx_from_block if from_block is None else from_block,
        tables=(GMX_POSITION_EVENTS, GMX_ADL_STATES, FILLS),
        decoder=decoder,
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


_BASE = ("venue", "date", "chain", "block_number", "block_hash", "time", "time_ms", "tx_hash", "tx_index", "log_index")


@dataclass(frozen=True)
class GmxDecoder:
    """Decodes one segment's EventEmitter rows (``onchain_logs`` rows) into the stream's tables."""

    chain: str
    markets: dict[str, GmxMarket]
    unpriced: dict[str, str]
    schedule: fmt.LayoutSchedule
    adl_handlers: frozenset[str]

    def __call__(self, rows: list[dict[str, Any]]) -> Decoded:
        out = Decoded(tables={GMX_POSITION_EVENTS.name: [], GMX_ADL_STATES.name: [], FILLS.name: []})
        events: list[tuple[dict[str, Any], fmt.GmxEvent]] = []
        for r in rows:
            try:
                topics = [t for t in (r["topic0"], r["topic1"], r["topic2"], r["topic3"]) if t is not None]
                events.append((r, fmt.decode_log(topics, r["data"])))
            except fmt.DecodeError as exc:
                out.rejects.append(
                    (r["block_number"], r["log_index"], f"GMX EventEmitter log: {exc}", json.dumps(r, default=str))
                )
        # OrderExecuted by (transaction, order key): an order key is a nonce's hash, so a reorg can give the
        # same key to another order on the new branch; within one transaction it names one order
        orders: dict[tuple[str, str], tuple[fmt.OrderExecuted, str]] = {}
        for r, ev in events:
            if ev.event_name != fmt.ORDER_EXECUTED:
                continue
            try:
                oe = fmt.order_executed(ev, block=r["block_number"], schedule=self.schedule)
            except fmt.DecodeError as exc:
                out.rejects.append(
                    (r["block_number"], r["log_index"], f"GMX OrderExecuted: {exc}", json.dumps(r, default=str))
                )
                continue
            orders[(r["tx_hash"], oe.key)] = (oe, ev.msg_sender)
            out.written += 1
        for r, ev in events:
            if ev.event_name == fmt.ORDER_EXECUTED:
                continue
            base = {k: r[k] for k in _BASE}
            try:
                if ev.event_name in (fmt.POSITION_INCREASE, fmt.POSITION_DECREASE):
                    self._position(out, r, base, ev, orders)
                    continue
                if ev.event_name == fmt.ADL_STATE_UPDATED:
                    st = fmt.adl_state(ev)
                    m = self.markets.get(st.market)
                    out.tables[GMX_ADL_STATES.name].append(
                        {
                            **base,
                            "market": st.market,
                            "market_name": m.name if m else None,
                            "is_long": st.is_long,
                            "pnl_to_pool_factor": st.pnl_to_pool_factor / fmt.USD_SCALE,
                            "max_pnl_factor": st.max_pnl_factor / fmt.USD_SCALE,
                            "should_enable_adl": st.should_enable_adl,
                        }
                    )
                out.written += 1
            except fmt.DecodeError as exc:
                out.rejects.append(
                    (r["block_number"], r["log_index"], f"GMX {ev.event_name}: {exc}", json.dumps(r, default=str))
                )
        return out

    def _adl(
        self, ch: fmt.PositionChange, ev: fmt.GmxEvent, order: tuple[fmt.OrderExecuted, str] | None
    ) -> tuple[bool, str | None]:
        if ch.kind != "decrease":
            return False, None
        if order is not None and order[0].is_adl is not None:
            return (True, "secondaryOrderType") if order[0].is_adl else (False, None)
        sender = order[1] if order is not None else ev.msg_sender
        return (True, "AdlHandler") if sender in self.adl_handlers else (False, None)

    def _position(
        self,
        out: Decoded,
        r: dict[str, Any],
        base: dict[str, Any],
        ev: fmt.GmxEvent,
        orders: dict[tuple[str, str], tuple[fmt.OrderExecuted, str]],
    ) -> None:
        ch = fmt.position_change(ev, block=r["block_number"], schedule=self.schedule)
        order = orders.get((r["tx_hash"], ch.order_key))
        is_adl, evidence = self._adl(ch, ev, order)
        is_liq = ch.kind == "decrease" and ch.order_type == fmt.ORDER_TYPE_LIQUIDATION
        m = self.markets.get(ch.market)
        px = lambda raw: dec(fmt.price_per_token(raw, m.index_decimals)) if m else None  # noqa: E731
        out.tables[GMX_POSITION_EVENTS.name].append(
            {
                **base,
                "event_name": ev.event_name,
                "account": ch.account,
                "market": ch.market,
                "market_name": m.name if m else None,
                "collateral_token": ch.collateral_token,
                "is_long": ch.is_long,
                "order_type": ch.order_type,
                "order_type_name": ch.order_type_name,
                "is_liquidation": is_liq,
                "is_adl": is_adl,
                "order_key": ch.order_key,
                "position_key": ch.position_key,
                "size_in_usd": dec(fmt.usd(ch.size_in_usd)),
                "size_in_tokens_raw": str(ch.size_in_tokens),
                "collateral_amount_raw": str(ch.collateral_amount),
                "size_delta_usd": dec(fmt.usd(ch.size_delta_usd)),
                "size_delta_in_tokens_raw": str(ch.size_delta_in_tokens),
                "execution_price": px(ch.execution_price),
                "index_price_min": px(ch.index_price_min),
                "index_price_max": px(ch.index_price_max),
                "collateral_usd": dec(fmt.value_usd(ch.collateral_amount, ch.collateral_price_min)),
                "base_pnl_usd": dec(fmt.usd(ch.base_pnl_usd)) if ch.base_pnl_usd is not None else None,
                "price_impact_usd": dec(fmt.usd(ch.price_impact_usd)) if ch.price_impact_usd is not None else None,
                "price_impact_key": ch.price_impact_key,
                "msg_sender": ev.msg_sender,
                "order_layout": order[0].layout if order is not None else None,
                "adl_evidence": evidence,
            }
        )
        if m is None:
            why = self.unpriced.get(ch.market) or (
                f"it is not among the {self.chain} markets read from GMX's Reader nor in the registry ([[gmx.markets]])"
            )
            raise fmt.DecodeError(
                f"market {ch.market}: {why}; position event kept in gmx_position_events, no fills row"
            )
        sz = fmt.token_amount(ch.size_delta_in_tokens, m.index_decimals)
        after = fmt.token_amount(ch.size_in_tokens, m.index_decimals)
        before = after + sz if ch.kind == "decrease" else after - sz
        sign = 1 if ch.is_long else -1
        buying = (ch.kind == "increase") == ch.is_long
        mark = (Decimal(ch.index_price_min) + Decimal(ch.index_price_max)) / 2
        out.tables[FILLS.name].append(
            {
                "venue": VENUE,
                "date": r["date"],
                "coin": m.name,
                "user": ch.account,
                "time": r["time"],
                "time_ms": r["time_ms"],
                "block_number": r["block_number"],
                "block_time": r["time"],
                "local_time": None,
                "event_index": r["log_index"],
                "tid": r["block_number"] * TID_LOG_FACTOR + r["log_index"],
                "fill_id": f"{self.chain}:{r['tx_hash']}:{r['log_index']}",
                "oid": None,
                "hash": r["tx_hash"],
                "side": "B" if buying else "A",
                "px": px(ch.execution_price),
                "sz": dec(sz),
                "start_position": dec(sign * before),
                "dir": _dir(ch, is_adl),
                "closed_pnl": dec(fmt.usd(ch.base_pnl_usd)) if ch.base_pnl_usd is not None else None,
                "fee": None,
                "fee_token": None,
                "builder_fee": None,
                "crossed": None,
                "cloid": None,
                "twap_id": None,
                "is_liquidation": is_liq,
                "is_liquidated_leg": is_liq,
                "liquidated_user": ch.account if is_liq else None,
                "liquidation_mark_px": dec(fmt.price_per_token(int(mark), m.index_decimals)) if is_liq else None,
                "liquidation_method": "backstop" if is_liq else None,
                "is_adl": is_adl,
                "source": STREAM,
            }
        )
        out.written += 1


# --- one run ----------------------------------------------------------------------------------------------------


@dataclass
class GmxRun:
    """What ``liqf ingest gmx`` did: the markets it decoded with, the stream's plan and its sync."""

    markets: MarketsResult
    plan: StreamPlan
    sync: SyncResult | None = None


def prepare(
    lake: Lake,
    rpc: EvmRpc,
    registry: ChainRegistry,
    *,
    emitter: str | None = None,
    from_block: int | None = None,
    to_block: int | None = None,
    confirmations: int | None = None,
    segment_blocks: int = 10_000,
) -> tuple[Stream, GmxRun]:
    """Check the chain, resolve the markets and plan the stream (nothing written but ``gmx_markets``)."""
    check_chain(rpc, registry)
    conf = registry.confirmations if confirmations is None else confirmations
    head = rpc.block_number()
    markets = resolve_markets(lake, rpc, registry, block=max(0, head - conf))
    stream = gmx_stream(
        registry,
        emitter=emitter,
        from_block=from_block,
        markets=markets.markets,
        unpriced=markets.unpriced,
        segment_blocks=segment_blocks,
    )
    plan = plan_stream(
        lake,
        stream,
        head=head,
        from_block=from_block,
        to_block=to_block,
        confirmations=conf,
        max_range=rpc.max_range,
        reorg_depth=registry.reorg_depth,
    )
    return stream, GmxRun(markets, plan)


def ingest(
    lake: Lake,
    rpc: EvmRpc,
    registry: ChainRegistry,
    *,
    emitter: str | None = None,
    from_block: int | None = None,
    to_block: int | None = None,
    confirmations: int | None = None,
    segment_blocks: int = 10_000,
    progress: Callable[[int, int], None] | None = None,
    on_plan: Callable[[GmxRun], None] | None = None,
) -> GmxRun:
    """Resolve the markets, then bring the GMX stream up to the confirmed head (or ``to_block``)."""
    stream, run = prepare(
        lake,
        rpc,
        registry,
        emitter=emitter,
        from_block=from_block,
        to_block=to_block,
        confirmations=confirmations,
        segment_blocks=segment_blocks,
    )
    if on_plan is not None:
        on_plan(run)
    conf = registry.confirmations if confirmations is None else confirmations
    run.sync = sync_stream(
        lake,
        rpc,
        stream,
        from_block=from_block,
        to_block=to_block,
        confirmations=conf,
        reorg_depth=registry.reorg_depth,
        progress=progress,
    )
    return run


def redecode(lake: Lake, rpc: EvmRpc, registry: ChainRegistry, *, emitter: str | None = None) -> tuple[GmxRun, list]:
    """Read the markets again and decode every GMX log the lake holds with them (no eth_getLogs): fills
    quarantined for a market that was unknown then land now."""
    stream, run = prepare(lake, rpc, registry, emitter=emitter)
    return run, redecode_stream(lake, stream)
