"""Canonical tables of the onchain area; collected into forensics.tables.ALL_TABLES.

On-chain conventions (in addition to forensics.tables.model's):

* ``venue`` is the venue a stream belongs to (``gmx_v2``, ``hyperliquid`` for its Arbitrum bridge,
  ``evm`` for plain labelled wallets); ``chain`` is the pipeline's chain id (``arbitrum``, ``avalanche``,
  ...). ``date`` is the UTC day of the block timestamp.
* Addresses, hashes and topics are lower-case 0x hex. Token amounts keep the exact integer as text
  (``*_raw``, uint256 does not fit DECIMAL) next to a ``DECIMAL(38,10)`` value scaled by the token's
  decimals (NULL when the decimals are unknown or the value is out of range).
* GMX USD amounts are stored in USD (the protocol's 30-decimal integers divided by 1e30).

How GMX v2 maps onto ``fills`` (venue ``gmx_v2``): one row per PositionIncrease/PositionDecrease
(one leg: the counterparty is the pool). ``coin`` = the market's name (``gmx_markets``: read from the
chain's GMX Reader, e.g. ``ETH/USD [WETH-USDC]``); ``user`` = position account; ``fill_id`` =
``<chain>:<tx hash>:<log index>``; ``tid`` = block_number x 100000 + log index (unique per chain);
``hash`` = tx hash; ``event_index`` = log index; ``side`` 'B' for increases of longs and decreases of
shorts, else 'A'; ``px`` = execution price (USD per index token), ``sz`` = sizeDeltaInTokens in
index-token units; ``start_position`` = signed size in tokens before the event; ``closed_pnl`` = basePnlUsd
(decreases); ``fee`` NULL (fees are in PositionFeesCollected, not ingested); ``dir`` = 'Open Long'/'Close
Short'/..., 'Liquidated Isolated Long|Short' for order type Liquidation, 'Auto-Deleveraging' for ADL
executions (a MarketDecrease whose OrderExecuted in the same transaction carries secondaryOrderType Adl; in
GMX's first layout, which has no secondaryOrderType, one executed by an AdlHandler). Liquidations:
``is_liquidation``, ``is_liquidated_leg``, ``liquidated_user`` = account, ``liquidation_method`` = 'backstop'
(the pool takes the position at the oracle price), ``liquidation_mark_px`` = mid of indexTokenPrice min/max.
ADL: ``is_adl``; no liquidated counterparty (``liquidated_user`` NULL).
"""

from __future__ import annotations

from forensics.tables.model import DECIMAL, UNIQUE, Column, Dedup, Table

C = Column

_PART = (
    C("venue", "VARCHAR", "Venue the stream belongs to ('gmx_v2', 'hyperliquid', 'evm'); hive partition key.", False),
    C("date", "DATE", "UTC day of the block timestamp; hive partition key.", False),
    C("chain", "VARCHAR", "Chain id of the pipeline ('arbitrum', 'avalanche', ...).", False),
)
_BLOCK = (
    C("block_number", "BIGINT", "Block number.", False),
    C("block_hash", "VARCHAR", "Block hash at ingestion (re-checked for reorgs).", False),
    C("time", "TIMESTAMP", "Block time (UTC).", False),
    C("time_ms", "BIGINT", "Block time, epoch ms.", False),
)
_LOGID = (
    C("tx_hash", "VARCHAR", "Transaction hash.", False),
    C("tx_index", "INTEGER", "Transaction index in the block."),
    C("log_index", "INTEGER", "Log index in the block.", False),
)
_LINEAGE = (
    C("source", "VARCHAR", "Stream name, e.g. 'gmx_events', 'erc20_transfers'.", False),
    C("source_key", "VARCHAR", "Key of the (stream, block segment) input the row came from.", False),
)

ONCHAIN_LOGS = Table(
    "onchain_logs",
    "Raw-ish EVM logs of every ingested stream, as eth_getLogs returned them plus the block time; "
    "unique on (chain, block_number, log_index). Files are keyed by (stream, block segment).",
    (
        *_PART,
        *_BLOCK,
        *_LOGID,
        C("address", "VARCHAR", "Emitting contract.", False),
        C("topic0", "VARCHAR", "Event signature hash."),
        C("topic1", "VARCHAR", "Indexed topic 1."),
        C("topic2", "VARCHAR", "Indexed topic 2."),
        C("topic3", "VARCHAR", "Indexed topic 3."),
        C("data", "VARCHAR", "ABI-encoded non-indexed data, 0x hex.", False),
        C("event_name", "VARCHAR", "'Transfer', or the GMX eventName from the payload ('PositionDecrease', ...)."),
        *_LINEAGE,
    ),
    key=("chain", "block_number", "log_index"),
    dedup=Dedup(
        ("source", "source_key"),
        "files are keyed by (stream, block segment), so a log appears once per stream; the same log in two streams "
        "(overlapping filters) is one log: the first source kind, then the lowest source_key",
    ),
)

ONCHAIN_CHECKPOINTS = Table(
    "onchain_checkpoints",
    "One row per stream (chain, contract, event set): how far it is ingested and the hashes of its last "
    "blocks, re-checked on the next run to detect reorgs.",
    (
        C("venue", "VARCHAR", "Venue of the stream.", False),
        C("chain", "VARCHAR", "Chain id.", False),
        C("stream", "VARCHAR", "Stream name.", False),
        C("contract", "VARCHAR", "Contract address(es) filtered, comma-separated.", False),
        C("event", "VARCHAR", "Event set: topic filter description.", False),
        C("stream_key", "VARCHAR", "Hex key of the stream.", False),
        C("from_block", "BIGINT", "First block the stream covers.", False),
        C("last_block", "BIGINT", "Last block ingested (inclusive, confirmed).", False),
        C("recent_hashes_json", "VARCHAR", "{block: hash} of the last N ingested blocks (reorg check).", False),
        C("updated_at", "TIMESTAMP", "When the checkpoint was written (UTC).", False),
        C("rpc", "VARCHAR", "Redacted RPC endpoint (scheme and host only)."),
    ),
    key=("chain", "stream_key"),
    layer="meta",
    dedup=UNIQUE,
)

GMX_POSITION_EVENTS = Table(
    "gmx_position_events",
    "GMX v2 PositionIncrease/PositionDecrease events with the position's state after the change; the "
    "input of open-position reconstruction and keeper forensics. USD values in USD (1e30 integers / 1e30).",
    (
        *_PART,
        *_BLOCK,
        *_LOGID,
        C("event_name", "VARCHAR", "'PositionIncrease' or 'PositionDecrease'.", False),
        C("account", "VARCHAR", "Position owner.", False),
        C("market", "VARCHAR", "GMX market token address.", False),
        C(
            "market_name",
            "VARCHAR",
            "Market name (gmx_markets: the chain's Reader, or a registry override; NULL if unknown).",
        ),
        C("collateral_token", "VARCHAR", "Collateral token address.", False),
        C("is_long", "BOOLEAN", "Long position.", False),
        C("order_type", "INTEGER", "Order.OrderType enum value.", False),
        C("order_type_name", "VARCHAR", "'MarketIncrease', 'MarketDecrease', 'Liquidation', ...", False),
        C("is_liquidation", "BOOLEAN", "order type Liquidation.", False),
        C(
            "is_adl",
            "BOOLEAN",
            "ADL execution: the transaction's OrderExecuted of this order key says "
            "secondaryOrderType Adl (or, in the first layout that has none, the order was executed by an AdlHandler).",
            False,
        ),
        C("order_key", "VARCHAR", "Order key (bytes32).", False),
        C("position_key", "VARCHAR", "Position key (bytes32).", False),
        C("size_in_usd", DECIMAL, "Position size after the event, USD at entry prices."),
        C("size_in_tokens_raw", "VARCHAR", "Position size after, index-token smallest units.", False),
        C("collateral_amount_raw", "VARCHAR", "Collateral after, collateral-token smallest units.", False),
        C("size_delta_usd", DECIMAL, "Size change, USD."),
        C("size_delta_in_tokens_raw", "VARCHAR", "Size change, index-token smallest units.", False),
        C("execution_price", DECIMAL, "Execution price, USD per index token (NULL if decimals unknown)."),
        C("index_price_min", DECIMAL, "indexTokenPrice.min, USD per index token (NULL if decimals unknown)."),
        C("index_price_max", DECIMAL, "indexTokenPrice.max, USD per index token (NULL if decimals unknown)."),
        C("collateral_usd", DECIMAL, "Collateral after the event valued at collateralTokenPrice.min, USD."),
        C("base_pnl_usd", DECIMAL, "Realized base PnL of the decrease, USD (NULL for increases)."),
        C(
            "price_impact_usd",
            DECIMAL,
            "Price impact, USD (v2.2 increases: pendingPriceImpactUsd, the impact kept "
            "on the position and charged on close).",
        ),
        C(
            "price_impact_key",
            "VARCHAR",
            "The item price_impact_usd came from: 'priceImpactUsd' or 'pendingPriceImpactUsd'.",
        ),
        C(
            "msg_sender",
            "VARCHAR",
            "The EventLog's msgSender: the GMX handler that executed (OrderHandler, "
            "LiquidationHandler, AdlHandler, ...).",
        ),
        C(
            "order_layout",
            "VARCHAR",
            "Layout of the transaction's OrderExecuted for this order key ('key', "
            "'key_secondary', 'key_account_secondary'); NULL when the transaction has none.",
        ),
        C("adl_evidence", "VARCHAR", "Why is_adl: 'secondaryOrderType' or 'AdlHandler' (NULL when not ADL)."),
        *_LINEAGE,
    ),
    key=("chain", "block_number", "log_index"),
    dedup=UNIQUE,
)

GMX_MARKETS = Table(
    "gmx_markets",
    "GMX v2 markets as read from the chain (Reader.getMarkets on the DataStore, ERC-20 decimals()/symbol() of "
    "their tokens) at a block, with registry overrides; the decoder's source of names and index decimals.",
    (
        C("venue", "VARCHAR", "'gmx_v2'; hive partition key.", False),
        C("chain", "VARCHAR", "Chain id of the pipeline.", False),
        C("market", "VARCHAR", "Market token address.", False),
        C(
            "name",
            "VARCHAR",
            "'<index>/USD [<long>-<short>]' from token symbols (unique per chain; registry override).",
            False,
        ),
        C("index_token", "VARCHAR", "Index token (zero address for swap-only markets; no code for synthetic ones)."),
        C("long_token", "VARCHAR", "Long collateral token."),
        C("short_token", "VARCHAR", "Short collateral token."),
        C("index_symbol", "VARCHAR", "Index token symbol (symbol(), or the registry's synthetic symbol)."),
        C("long_symbol", "VARCHAR", "Long token symbol."),
        C("short_symbol", "VARCHAR", "Short token symbol."),
        C(
            "index_decimals",
            "INTEGER",
            "Index token decimals (decimals(), or synthetic_decimals); NULL: unknown, "
            "the market's fills are quarantined until the registry says.",
        ),
        C("long_decimals", "INTEGER", "Long token decimals."),
        C("short_decimals", "INTEGER", "Short token decimals."),
        C(
            "source",
            "VARCHAR",
            "'chain' (Reader), 'registry' (a [[gmx.markets]] entry only) or 'chain+registry' (overridden).",
            False,
        ),
        C("reader", "VARCHAR", "Reader contract read."),
        C("data_store", "VARCHAR", "DataStore read."),
        C("block_number", "BIGINT", "Block the markets and token metadata were read at."),
        C("block_hash", "VARCHAR", "Hash of that block."),
        C("read_at", "TIMESTAMP", "When they were read (UTC).", False),
    ),
    key=("chain", "market"),
    dedup=Dedup(
        ("read_at DESC",),
        "one file per chain, rewritten on every read of the chain's Reader: the latest read "
        "wins (a market's tokens and decimals as the chain says now)",
    ),
)

GMX_ADL_STATES = Table(
    "gmx_adl_states",
    "GMX v2 AdlStateUpdated events: ADL switched on/off per (market, side) by the keeper's updateAdlState.",
    (
        *_PART,
        *_BLOCK,
        *_LOGID,
        C("market", "VARCHAR", "GMX market token address.", False),
        C("market_name", "VARCHAR", "Market name (gmx_markets)."),
        C("is_long", "BOOLEAN", "Side whose PnL is checked (longs' or shorts' PnL to pool).", False),
        C("pnl_to_pool_factor", "DOUBLE", "PnL / pool value (fraction; 1e30 integer / 1e30).", False),
        C("max_pnl_factor", "DOUBLE", "MAX_PNL_FACTOR_FOR_ADL threshold (fraction).", False),
        C("should_enable_adl", "BOOLEAN", "ADL enabled after the update.", False),
        *_LINEAGE,
    ),
    key=("chain", "block_number", "log_index"),
    dedup=UNIQUE,
)

ONCHAIN_BALANCES = Table(
    "onchain_balances",
    "ERC-20 balances of registry addresses read with eth_call balanceOf at a block.",
    (
        *_PART,
        C("block_number", "BIGINT", "Block the balance was read at.", False),
        C("block_hash", "VARCHAR", "Hash of that block.", False),
        C("time", "TIMESTAMP", "Block time (UTC).", False),
        C("time_ms", "BIGINT", "Block time, epoch ms.", False),
        C("address", "VARCHAR", "Holder (registry address).", False),
        C("label", "VARCHAR", "Registry label, e.g. 'Hyperliquid Bridge2'.", False),
        C("role", "VARCHAR", "Registry role: 'bridge', 'insurance_fund', 'treasury', 'custodian', ...", False),
        C("token", "VARCHAR", "ERC-20 contract.", False),
        C("token_symbol", "VARCHAR", "Token symbol from the registry.", False),
        C("balance_raw", "VARCHAR", "Balance, smallest units (exact integer text).", False),
        C("balance", DECIMAL, "Balance in token units (raw / 10^decimals)."),
        C("source_key", "VARCHAR", "Key of the balance read (chain, block).", False),
    ),
    key=("chain", "block_number", "address", "token"),
    dedup=Dedup(("source_key",), "one balance read per (block, address, token): the lowest source_key"),
)

ONCHAIN_FLOWS = Table(
    "onchain_flows",
    "ERC-20 Transfer events into or out of registry addresses; one row per (transfer, registry side).",
    (
        *_PART,
        *_BLOCK,
        *_LOGID,
        C("token", "VARCHAR", "ERC-20 contract.", False),
        C("token_symbol", "VARCHAR", "Token symbol from the registry."),
        C("from_address", "VARCHAR", "Sender.", False),
        C("to_address", "VARCHAR", "Recipient.", False),
        C("amount_raw", "VARCHAR", "Amount, smallest units.", False),
        C("amount", DECIMAL, "Amount in token units."),
        C("registry_address", "VARCHAR", "The registry address this row is about.", False),
        C("label", "VARCHAR", "Its registry label.", False),
        C("direction", "VARCHAR", "'in' (to the registry address) or 'out' (from it).", False),
        C("signed_amount", DECIMAL, "+amount for 'in', -amount for 'out', token units."),
        C("counterparty", "VARCHAR", "The other address of the transfer.", False),
        *_LINEAGE,
    ),
    key=("chain", "block_number", "log_index", "registry_address"),
    dedup=Dedup(("source_key",), "one Transfer log per registry address: the lowest source_key"),
)

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        ONCHAIN_LOGS,
        ONCHAIN_CHECKPOINTS,
        GMX_POSITION_EVENTS,
        GMX_MARKETS,
        GMX_ADL_STATES,
        ONCHAIN_BALANCES,
        ONCHAIN_FLOWS,
    )
}
