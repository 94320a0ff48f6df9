"""Canonical tables of the cex area; collected into forensics.tables.ALL_TABLES.

Centralized venues (Binance USDⓈ-M, Bybit v5, OKX v5, BitMEX, Deribit, dYdX v4 indexer) report
liquidations, insurance funds and ADL risk in different shapes and units; these tables hold them in one
convention (venue-apis.md §0):

* ``raw_side`` is what the venue sent; ``liquidated_position_side`` is derived per venue (Bybit's
  ``allLiquidation.S`` is the *position* side; Binance, OKX ``side``, BitMEX and dYdX give the *order*
  side, so ``SELL`` = a long was liquidated; Deribit's ``liquidation`` flag names the maker or taker).
* ``qty`` is the size in the venue's unit (``qty_unit`` = base | contracts | usd); ``size_base`` is the
  size in base-coin units and ``notional_usd`` the USD (quote) value, both computed with the venue's
  contract value (OKX ``ctVal``, BitMEX multipliers, Deribit USD-denominated inverse sizes).
* Times are UTC epoch ms plus naive-UTC timestamps, from each venue's format (ms ints, ms strings,
  ISO-8601 strings). BitMEX liquidation orders carry no time: the pull's receive time is used and
  ``time_source`` says so.

CEX own-account fills go into the shared ``fills`` table (see ``forensics.formats.cex``).
"""

from __future__ import annotations

from forensics.tables.model import DECIMAL, REPULLED, UNIQUE, Column, Table

C = Column

_PARTITION = (
    C(
        "venue",
        "VARCHAR",
        "Venue id from the pipeline ('binance', 'bybit', 'okx', 'bitmex', 'deribit', 'dydx'); hive partition key.",
        False,
    ),
    C("date", "DATE", "UTC day of the row's event time; hive partition key.", False),
)
_LINEAGE = (
    C("source", "VARCHAR", "Input kind, 'api:<venue>:<dataset>' or 'ws:<venue>:<stream>'.", False),
    C("source_key", "VARCHAR", "Stable id of the input (API pull window or capture hour) the row came from.", False),
)

CEX_LIQUIDATIONS = Table(
    "cex_liquidations",
    "One row per venue-reported liquidation (or ADL) order or trade: public feeds (Binance forceOrder, Bybit "
    "allLiquidation, OKX liquidation-orders, BitMEX /liquidation, Deribit trades with `liquidation`, dYdX "
    "LIQUIDATED/DELEVERAGED trades) and own-account liquidation/ADL orders. Unique on (venue, source, event_id).",
    (
        *_PARTITION,
        C(
            "symbol",
            "VARCHAR",
            "Venue instrument as given ('BTCUSDT', 'BTC-USDT-SWAP', 'XBTUSD', 'BTC-PERPETUAL', 'BTC-USD').",
            False,
        ),
        C("time", "TIMESTAMP", "Event time (UTC, ms precision).", False),
        C("time_ms", "BIGINT", "Event time, epoch ms.", False),
        C(
            "time_source",
            "VARCHAR",
            "'exchange' (venue timestamp) or 'received' (no venue time: BitMEX open liquidation orders).",
            False,
        ),
        C(
            "event_id",
            "VARCHAR",
            "Venue id of the order/trade, or a hash of the row's fields when the venue gives none.",
            False,
        ),
        C("raw_side", "VARCHAR", "Side exactly as the venue sent it ('SELL', 'Buy', 'sell', ...).", False),
        C(
            "side_meaning",
            "VARCHAR",
            "What raw_side denotes on this venue: 'order' (liquidation order side), 'position' (Bybit allLiquidation), "
            "'taker' (Deribit/dYdX trade direction).",
            False,
        ),
        C(
            "liquidated_position_side",
            "VARCHAR",
            "'long', 'short' or 'unknown': the side of the position that was liquidated (or deleveraged).",
            False,
        ),
        C("price", DECIMAL, "Price as reported, USD (quote) per base coin.", False),
        C(
            "price_kind",
            "VARCHAR",
            "'avg' (average fill), 'fill' (trade price), 'bankruptcy' (OKX bkPx, Bybit), 'order' (order limit price).",
            False,
        ),
        C("order_price", DECIMAL, "Order (limit) price when the venue also reports one, USD."),
        C("qty", DECIMAL, "Size in the venue's unit (qty_unit), unsigned.", False),
        C("qty_unit", "VARCHAR", "'base', 'contracts' or 'usd'.", False),
        C(
            "contract_value",
            DECIMAL,
            "Base coin (linear) or USD (inverse) per contract; NULL when qty_unit is not 'contracts'.",
        ),
        C("size_base", DECIMAL, "Size in base-coin units (NULL when the contract value is unknown)."),
        C("notional_usd", DECIMAL, "USD (quote) value: size_base x price, or the USD size for inverse contracts."),
        C(
            "status",
            "VARCHAR",
            "Order status when reported ('FILLED', 'filled', 'open' for BitMEX resting orders, ...).",
        ),
        C(
            "is_adl",
            "BOOLEAN",
            "The row is an auto-deleveraging close (Binance adl_autoclose, dYdX DELEVERAGED, Bybit AdlTrade).",
            False,
        ),
        C("loss_usd", DECIMAL, "Bankruptcy loss reported with the order (OKX bkLoss), in `ccy` or USD."),
        C("account", "VARCHAR", "Own-account label for private pulls (never a key); NULL for public market-wide rows."),
        C("raw_json", "VARCHAR", "The venue's record as JSON text (secrets never present)."),
        *_LINEAGE,
    ),
    key=("venue", "source", "event_id"),
    dedup=REPULLED,
)

INSURANCE_FUND = Table(
    "insurance_fund",
    "Insurance-fund balances and balance changes per pool and asset over time (Binance insuranceBalance, Bybit "
    "market/insurance, OKX insurance-fund, BitMEX insurance; Deribit bankruptcy settlements as funded/socialized "
    "losses). Unique on (venue, pool, asset, kind, time_ms).",
    (
        *_PARTITION,
        C(
            "pool",
            "VARCHAR",
            "Pool identity: sorted comma-joined symbols sharing the pool (Binance, Bybit), instFamily (OKX), "
            "currency (BitMEX), instrument (Deribit).",
            False,
        ),
        C("asset", "VARCHAR", "Asset the balance is held in ('USDT', 'XBt', 'ETH', ...).", False),
        C(
            "kind",
            "VARCHAR",
            "'balance' (snapshot), 'liquidation_balance_deposit' / 'bankruptcy_loss' / 'adl' (OKX detail types), "
            "'bankruptcy' (Deribit settlement).",
            False,
        ),
        C("time", "TIMESTAMP", "Observation time (UTC).", False),
        C("time_ms", "BIGINT", "Observation time, epoch ms.", False),
        C("balance", DECIMAL, "Pool balance in `asset` units (BitMEX XBt in satoshi as reported)."),
        C("balance_usd", DECIMAL, "Pool value in USD when the venue reports it (Bybit value, OKX total)."),
        C("change", DECIMAL, "Balance change reported with the row (OKX amt; Deribit -funded), `asset` units."),
        C("socialized_loss", DECIMAL, "Deribit: socialized loss ratio of the bankruptcy settlement."),
        C(
            "adl_type",
            "VARCHAR",
            "OKX historical adlType ('rate_adl_start', 'bal_adl_start', 'pos_adl_start', 'adl_end'); "
            "deprecated after 2025.",
        ),
        C("symbols", "VARCHAR", "Symbols sharing the pool as reported (comma-separated)."),
        *_LINEAGE,
    ),
    key=("venue", "pool", "asset", "kind", "time_ms"),
    dedup=REPULLED,
)

ADL_RANKS = Table(
    "adl_ranks",
    "ADL queue position or risk as the venue reported it at a time: own-account ranks (Binance adlQuantile 0-4, "
    "Bybit adlRankIndicator 0-5, OKX position adl 1-5, BitMEX deleveragePercentile 0-1) and symbol-level risk "
    "(Binance symbolAdlRisk low/medium/high). Unique on (venue, account, symbol, position_side, kind, time_ms).",
    (
        *_PARTITION,
        C("kind", "VARCHAR", "'account_rank' (own position's queue rank) or 'symbol_risk' (venue-wide rating).", False),
        C("account", "VARCHAR", "Own-account label ('' for symbol-level rows).", False),
        C("symbol", "VARCHAR", "Venue instrument.", False),
        C("position_side", "VARCHAR", "'long', 'short', 'both' (one-way mode) or 'any' (symbol risk).", False),
        C("time", "TIMESTAMP", "Time the venue's value applied (its update time, else the pull time), UTC.", False),
        C("time_ms", "BIGINT", "Same, epoch ms.", False),
        C("rank", "INTEGER", "Venue rank as reported (higher = earlier in the ADL queue on every venue here)."),
        C("rank_max", "INTEGER", "Top of the venue's scale (Binance 4, Bybit 5, OKX 5)."),
        C("percentile", "DOUBLE", "Rank scaled to [0, 1] (rank / rank_max; BitMEX deleveragePercentile as given)."),
        C("rating", "VARCHAR", "Symbol-level rating lower-cased ('low', 'medium', 'high')."),
        C(
            "position_size",
            DECIMAL,
            "Own position size in base units at that time, signed (negative = short), when known.",
        ),
        C("raw_json", "VARCHAR", "The venue's record as JSON text."),
        *_LINEAGE,
    ),
    key=("venue", "account", "symbol", "position_side", "kind", "time_ms"),
    dedup=REPULLED,
)

ADL_ALERTS = Table(
    "adl_alerts",
    "Bybit ADL alerts (GET /v5/market/adlAlert, WS adlAlert.*): per-symbol insurance pool balance and the "
    "drawdown ratios that trigger and stop ADL. Unique on (venue, symbol, time_ms).",
    (
        *_PARTITION,
        C("symbol", "VARCHAR", "Venue symbol.", False),
        C("coin", "VARCHAR", "Settlement coin of the pool.", False),
        C("time", "TIMESTAMP", "Alert time (UTC).", False),
        C("time_ms", "BIGINT", "Alert time, epoch ms.", False),
        C("balance", DECIMAL, "Insurance pool balance, coin units."),
        C("max_balance", DECIMAL, "Pool's max balance (deprecated field), coin units."),
        C("insurance_pnl_ratio", DECIMAL, "PnL-ratio trigger of the pool (i_pr), fraction."),
        C("pnl_ratio", DECIMAL, "Symbol's 8 h drawdown ratio (pr), fraction."),
        C("adl_trigger_threshold", DECIMAL, "Balance threshold under which ADL may trigger (adl_tt), coin units."),
        C("adl_stop_ratio", DECIMAL, "Ratio at which ADL stops (adl_sr), fraction."),
        C(
            "adl_triggered",
            "BOOLEAN",
            "pnl_ratio <= insurance_pnl_ratio while balance < adl_trigger_threshold (our reading of the docs' rule).",
            False,
        ),
        *_LINEAGE,
    ),
    key=("venue", "symbol", "time_ms"),
    dedup=REPULLED,
)

CEX_MARKET = Table(
    "cex_market",
    "Mark price, index price, funding and open interest snapshots per CEX symbol (Binance premiumIndex + "
    "openInterest, ...). Unique on (venue, symbol, time_ms, source).",
    (
        *_PARTITION,
        C("symbol", "VARCHAR", "Venue symbol.", False),
        C("time", "TIMESTAMP", "Observation time (UTC).", False),
        C("time_ms", "BIGINT", "Observation time, epoch ms.", False),
        C("mark_px", DECIMAL, "Mark price, USD."),
        C("index_px", DECIMAL, "Index price, USD."),
        C("funding_rate", DECIMAL, "Last funding rate, fraction per interval."),
        C("open_interest", DECIMAL, "Open interest, base-coin units."),
        *_LINEAGE,
    ),
    key=("venue", "symbol", "time_ms", "source"),
    dedup=REPULLED,
)

CAPTURE_GAPS = Table(
    "capture_gaps",
    "Gaps in streaming capture (`liqf capture`): disconnects, missed heartbeats and reconnects. A liquidation "
    "feed with gaps under-counts; every gap is recorded, never hidden.",
    (
        *_PARTITION,
        C("stream", "VARCHAR", "Stream captured ('!forceOrder@arr', 'allLiquidation.BTCUSDT', ...).", False),
        C("gap_start", "TIMESTAMP", "Last moment the stream was known alive (UTC).", False),
        C("gap_start_ms", "BIGINT", "Same, epoch ms.", False),
        C("gap_end_ms", "BIGINT", "When the stream was live again, epoch ms (NULL if capture stopped first)."),
        C("duration_ms", "BIGINT", "gap_end_ms - gap_start_ms."),
        C(
            "reason",
            "VARCHAR",
            "'disconnect', 'heartbeat_timeout', 'connect_failed', 'stopped' with the error text.",
            False,
        ),
        C("reconnects", "INTEGER", "Reconnect attempts within the gap.", False),
        *_LINEAGE,
    ),
    key=("venue", "stream", "gap_start_ms"),
    dedup=UNIQUE,
)

ADL_EPISODES = Table(
    "adl_episodes",
    "Venue-level ADL and stress episodes detected by forensics.cex_forensics: insurance-fund drawdowns (size and "
    "speed), Bybit ADL alerts, OKX ADL start/end types, liquidation bursts and own-account ADL fills, merged by "
    "time per venue and symbol group.",
    (
        *_PARTITION,
        C("episode_id", "VARCHAR", "Stable id: hash of (venue, kind, scope, start_ms).", False),
        C("kind", "VARCHAR", "'insurance_drawdown', 'adl_alert', 'okx_adl', 'liquidation_burst', 'own_adl'.", False),
        C("scope", "VARCHAR", "Symbol or pool the episode is about.", False),
        C("start_ms", "BIGINT", "Episode start, epoch ms.", False),
        C("end_ms", "BIGINT", "Episode end, epoch ms.", False),
        C("duration_s", "DOUBLE", "(end_ms - start_ms) / 1000.", False),
        C("events", "BIGINT", "Source rows in the episode (liquidations, alerts, fund points, fills).", False),
        C("notional_usd", "DOUBLE", "Liquidated or deleveraged USD in the episode (NULL for fund/alert episodes)."),
        C("drawdown", "DOUBLE", "Insurance-fund drop from peak to trough, asset units (NULL otherwise)."),
        C("drawdown_pct", "DOUBLE", "drawdown / peak balance."),
        C("speed_per_hour", "DOUBLE", "Drawdown or liquidated USD per hour."),
        C(
            "detail_json",
            "VARCHAR",
            "Evidence: peak/trough times, top symbols, alert values, adlType sequence (JSON).",
            False,
        ),
    ),
    key=("venue", "episode_id"),
    layer="analytics",
    dedup=UNIQUE,
)

ADL_AUDIT = Table(
    "adl_audit",
    "Own-account ADL audit: one row per own ADL fill, checked against the ADL rank the venue reported for that "
    "position most recently before the fill, and against the venue's documented rule given the account's state.",
    (
        *_PARTITION,
        C("account", "VARCHAR", "Own-account label.", False),
        C("symbol", "VARCHAR", "Venue symbol.", False),
        C("fill_id", "VARCHAR", "fills.fill_id of the ADL fill.", False),
        C("time_ms", "BIGINT", "ADL fill time, epoch ms.", False),
        C("position_side", "VARCHAR", "'long' or 'short': the own position that was deleveraged.", False),
        C("notional_usd", "DOUBLE", "px x sz of the ADL fill, USD."),
        C("rank_before", "INTEGER", "Latest venue-reported rank for that position before the fill (NULL if none)."),
        C("rank_max", "INTEGER", "Top of the venue's scale."),
        C("rank_age_s", "DOUBLE", "Seconds between that rank observation and the fill."),
        C(
            "rank_stale",
            "BOOLEAN",
            "The rank was older than the venue's refresh interval x 4 (Binance 30 s, Bybit/OKX 60 s).",
        ),
        C(
            "pnl_positive",
            "BOOLEAN",
            "The deleveraged position was in profit at the fill (closed PnL > 0 or price beyond entry), when known.",
        ),
        C(
            "consistent",
            "BOOLEAN",
            "Rank was in the top band of the scale and the position was profitable, as the venue's documented rule "
            "requires (NULL when the data cannot tell).",
        ),
        C("verdict", "VARCHAR", "One sentence: why the fill is or is not consistent.", False),
    ),
    key=("venue", "account", "fill_id"),
    layer="analytics",
    dedup=UNIQUE,
)

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        CEX_LIQUIDATIONS,
        INSURANCE_FUND,
        ADL_RANKS,
        ADL_ALERTS,
        CEX_MARKET,
        CAPTURE_GAPS,
        ADL_EPISODES,
        ADL_AUDIT,
    )
}

__all__ = [
    "ADL_ALERTS",
    "ADL_AUDIT",
    "ADL_EPISODES",
    "ADL_RANKS",
    "CAPTURE_GAPS",
    "CEX_LIQUIDATIONS",
    "CEX_MARKET",
    "DECIMAL",
    "INSURANCE_FUND",
    "TABLES",
]
