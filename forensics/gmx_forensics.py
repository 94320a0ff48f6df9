"""GMX v2 keeper forensics: open positions from position events, and the ADL actions with their eligible
pools in the ``adl_steps``/``adl_pools`` layout (``forensics.schema``), so the audit
(``forensics.audit.audit``) can test the ADL keeper's choices.

GMX leaves the choice of *which* positions to auto-deleverage to its ADL keeper (off-chain); the chain
only checks that each ADL lowers the market side's PnL-to-pool factor. An **action** here is one keeper
execution: the ADL decreases of one (transaction, market, side) (``AdlHandler.executeAdl`` closes one
position per transaction). Its **pool** is every account with an open position on that market and side
just before the transaction (positions of one account with different collateral tokens summed, so
``user`` is the account); ``step_group`` gathers the actions of one block, market and side. Mark = mid of
the ADL event's ``indexTokenPrice``.

Every position event carries the position's whole state after it, so the state before it is known too
(``after -/+ delta``). The pools are built set-wise (polars ``join_asof`` of every action against every
position of its market and side): a position's state just before an action is the state after its
last event before the action; a position whose first event in the data is not its opening was open
since before the data start with the state *before* that first event, which therefore holds for every
action earlier than it. What the data cannot show: positions opened before the first ingested block
and not touched until after the last one (``integrity`` says how far back the data reach).

Input: rows of ``gmx_position_events`` (a polars DataFrame, as read from the lake or the catalog) and the
index decimals per market (``gmx_markets``); token sizes are ``size_in_tokens_raw`` / 10^decimals.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from forensics.tables import ADL_POOLS, ADL_STEPS

VENUE = "gmx_v2"
WAVE_GAP_MS = 5_000

_POSITION = ("chain", "account", "market", "is_long", "collateral_token")


@dataclass
class GmxAdlEvidence:
    """The audit's inputs for GMX, and how complete the data behind them are."""

    steps: pl.DataFrame  # adl_steps layout
    pools: pl.DataFrame  # adl_pools layout
    integrity: dict = field(default_factory=dict)


def _f(col: str) -> pl.Expr:
    return pl.col(col).cast(pl.Float64)


def _tokens(raw: str, decimals: pl.Expr) -> pl.Expr:
    # exact integers as text; float is enough for ranking and features
    return pl.col(raw).cast(pl.Float64) / pl.lit(10.0).pow(decimals)


def states(events: pl.DataFrame, decimals: dict[str, int]) -> pl.DataFrame:
    """One row per position event of a market with known decimals, in chain order (``seq``), with the
    position's state before and after it in float units and when its current life began."""
    known = pl.DataFrame(
        {"market": list(decimals), "_dec": list(decimals.values())}, schema={"market": pl.String, "_dec": pl.Int64}
    )
    if "chain" not in events.columns:
        events = events.with_columns(chain=pl.lit("", pl.String))
    ev = (
        events.join(known, on="market", how="inner")
        .sort("chain", "block_number", "log_index")
        .with_row_index("seq")
        .with_columns(
            tokens_after=_tokens("size_in_tokens_raw", pl.col("_dec")),
            delta_tokens=_tokens("size_delta_in_tokens_raw", pl.col("_dec")),
            usd_after=_f("size_in_usd"),
            delta_usd=_f("size_delta_usd"),
            collateral_usd=_f("collateral_usd"),
            sign=pl.when(pl.col("event_name") == "PositionIncrease").then(-1.0).otherwise(1.0),
        )
        .with_columns(
            tokens_before=(pl.col("tokens_after") + pl.col("sign") * pl.col("delta_tokens")).clip(lower_bound=0.0),
            usd_before=(pl.col("usd_after") + pl.col("sign") * pl.col("delta_usd")).clip(lower_bound=0.0),
        )
    )
    opened = pl.when(pl.col("tokens_before") <= 0).then(pl.col("time_ms")).otherwise(None)
    first = pl.col("seq") == pl.col("seq").min().over(_POSITION)
    return ev.with_columns(
        # the time the position's current life began: its last opening (NULL while it was open since before the data)
        opened_ms=opened.forward_fill().over(_POSITION, order_by="seq"),
        first_seen=first,
        # a gap: the state before an event is not the state after the position's previous event
        chain_break=(~first)
        & (
            (pl.col("tokens_before") - pl.col("tokens_after").shift(1).over(_POSITION, order_by="seq")).abs()
            > 1e-9 * pl.max_horizontal(pl.col("tokens_before"), 1.0)
        ),
    )


def open_positions(
    events: pl.DataFrame, *, decimals: dict[str, int] | None = None, at_block: int | None = None
) -> pl.DataFrame:
    """Open positions per (account, market, side, collateral) after all events (or before ``at_block``)."""
    dec = decimals if decimals is not None else {m: 18 for m in events["market"].unique().to_list()}
    st = states(events, dec)
    if at_block is not None:
        st = st.filter(pl.col("block_number") < at_block)
    last = st.group_by(_POSITION).agg(pl.all().sort_by("seq").last())
    return (
        last.filter(pl.col("tokens_after") > 0)
        .select(
            "account",
            "market",
            side=pl.when(pl.col("is_long")).then(pl.lit("long")).otherwise(pl.lit("short")),
            collateral_token="collateral_token",
            size_usd="usd_after",
            size_tokens="tokens_after",
            collateral_usd="collateral_usd",
            opened_ms="opened_ms",
        )
        .sort("account", "market", "side")
    )


def adl_evidence(events: pl.DataFrame, *, decimals: dict[str, int], wave_gap_ms: int = WAVE_GAP_MS) -> GmxAdlEvidence:
    """Every ADL action with its eligible pool, in the canonical layouts, and an integrity summary."""
    st = states(events, decimals)
    adl = st.filter(pl.col("is_adl"))
    integrity = _integrity(events, st, decimals)
    if adl.height == 0:
        return GmxAdlEvidence(_empty(ADL_STEPS), _empty(ADL_POOLS), integrity)
    mark = (_f("index_price_min") + _f("index_price_max")) / 2
    actions = (
        adl.with_columns(mark=mark, px=_f("execution_price"))
        .group_by("chain", "tx_hash", "market", "is_long")
        .agg(
            seq=pl.col("seq").min(),
            block_number=pl.col("block_number").first(),
            time_ms=pl.col("time_ms").first(),
            log_index=pl.col("log_index").min(),
            coin=pl.col("market_name").first(),
            mark_px=pl.col("mark").sort_by("seq").first(),
            legs=pl.len(),
            closed_size=pl.col("delta_tokens").sum(),
            notional_usd=(pl.col("px") * pl.col("delta_tokens")).sum(),
        )
        .sort("seq")
        .with_row_index("step_id")
        .with_columns(pl.col("step_id").cast(pl.Int64), coin=pl.coalesce("coin", "market"))
    )
    actions = actions.with_columns(
        step_group=pl.col("step_id").min().over("chain", "block_number", "market", "is_long"),
        wave_id=(pl.col("time_ms").diff().fill_null(0) > wave_gap_ms).cum_sum().cast(pl.Int64),
    )
    closed = (
        adl.join(
            actions.select("chain", "tx_hash", "market", "is_long", "step_id"),
            on=("chain", "tx_hash", "market", "is_long"),
        )
        .group_by("step_id", "account")
        .agg(closed_size=pl.col("delta_tokens").sum(), first_seq=pl.col("seq").min())
    )
    closed = closed.with_columns(fill_order=pl.col("first_seq").rank("ordinal").over("step_id").cast(pl.Int32))

    # the state of every position of the action's market and side just before it
    first = st.filter(pl.col("first_seen")).select(
        *_POSITION,
        first_seq="seq",
        seed_tokens="tokens_before",
        seed_usd="usd_before",
        seed_collateral="collateral_usd",
    )
    pairs = actions.select("step_id", "seq", "chain", "market", "is_long").join(
        first, on=("chain", "market", "is_long")
    )
    pairs = pairs.filter((pl.col("first_seq") < pl.col("seq")) | (pl.col("seed_tokens") > 0))
    after = st.select(
        *_POSITION,
        last_seq="seq",
        tokens="tokens_after",
        usd="usd_after",
        collateral="collateral_usd",
        opened="opened_ms",
    ).sort("last_seq")
    joined = (
        pairs.with_columns(probe=pl.col("seq") - 1)
        .sort("probe")
        .join_asof(
            after, left_on="probe", right_on="last_seq", by=list(_POSITION), strategy="backward", check_sortedness=False
        )
    )  # both sorted on the join key just above
    seeded = pl.col("last_seq").is_null()
    cand = joined.select(
        "step_id",
        "account",
        "market",
        "is_long",
        tokens=pl.when(seeded).then(pl.col("seed_tokens")).otherwise(pl.col("tokens")),
        usd=pl.when(seeded).then(pl.col("seed_usd")).otherwise(pl.col("usd")),
        collateral=pl.when(seeded).then(pl.col("seed_collateral")).otherwise(pl.col("collateral")),
        opened=pl.when(seeded).then(None).otherwise(pl.col("opened")),
        seeded=seeded,
    ).filter(pl.col("tokens") > 0)
    per_user = cand.group_by("step_id", "account").agg(
        pl.col("tokens").sum(),
        pl.col("usd").sum(),
        pl.col("collateral").sum(),
        opened=pl.col("opened").min(),
        opened_unknown=pl.col("opened").is_null().any(),
        seeded=pl.col("seeded").any(),
        is_long=pl.col("is_long").first(),
    )
    a = actions.select("step_id", "coin", "mark_px", "time_ms")
    pools = (
        per_user.join(a, on="step_id")
        .join(closed.select("step_id", "account", "closed_size", "fill_order"), on=("step_id", "account"), how="left")
        .with_columns(entry=pl.col("usd") / pl.col("tokens"), closed_size=pl.col("closed_size").fill_null(0.0))
        .with_columns(
            upnl=pl.when(pl.col("is_long"))
            .then((pl.col("mark_px") - pl.col("entry")) * pl.col("tokens"))
            .otherwise((pl.col("entry") - pl.col("mark_px")) * pl.col("tokens")),
            notional=pl.col("tokens") * pl.col("mark_px"),
        )
        .with_columns(equity=pl.col("collateral") + pl.col("upnl"), selected=pl.col("fill_order").is_not_null())
    )
    pools = pools.select(
        venue=pl.lit(VENUE),
        step_id="step_id",
        coin="coin",
        user="account",
        side=pl.when(pl.col("is_long")).then(pl.lit("long")).otherwise(pl.lit("short")),
        size="tokens",
        entry_px="entry",
        mark_px="mark_px",
        mark_source=pl.lit("adl_mark"),
        notional_usd="notional",
        upnl_usd="upnl",
        pnl_pct_price=pl.when(pl.col("is_long"))
        .then(pl.col("mark_px") / pl.col("entry") - 1)
        .otherwise(1 - pl.col("mark_px") / pl.col("entry")),
        pnl_pct_margin=pl.when(pl.col("collateral") > 0).then(pl.col("upnl") / pl.col("collateral")),
        account_value_usd="equity",
        wallet_balance_usd="collateral",
        leverage=pl.when(pl.col("equity") > 0).then(pl.col("notional") / pl.col("equity")),
        margin_leverage=pl.when(pl.col("collateral") > 0).then(pl.col("usd") / pl.col("collateral")),
        effective_leverage=pl.when(pl.col("equity") > 0).then(pl.col("notional") / pl.col("equity")),
        margin_mode=pl.lit("isolated"),
        maintenance_margin_usd=pl.lit(None, pl.Float64),
        position_age_ms=pl.when(pl.col("opened_unknown")).then(None).otherwise(pl.col("time_ms") - pl.col("opened")),
        selected="selected",
        fill_order="fill_order",
        closed_size="closed_size",
        partial=pl.col("selected") & (pl.col("closed_size") < pl.col("tokens") * (1 - 1e-12)),
        # closing a losing position raises the side's PnL factor: never what ADL is for
        skip_reason=pl.when(~pl.col("selected") & (pl.col("upnl") <= 0)).then(pl.lit("not in profit")),
        lot_size=pl.lit(None, pl.Float64),
        account_maintenance_margin_usd=pl.lit(None, pl.Float64),
    ).sort("step_id", "user")
    sizes = pools.group_by("step_id").agg(pool_size=pl.len())
    steps = (
        actions.join(sizes, on="step_id", how="left")
        .select(
            venue=pl.lit(VENUE),
            step_id="step_id",
            step_group="step_group",
            wave_id="wave_id",
            block_number="block_number",
            time_ms="time_ms",
            coin="coin",
            liquidated_user="market",
            liquidated_side=pl.when(pl.col("is_long")).then(pl.lit("short")).otherwise(pl.lit("long")),
            adl_side=pl.when(pl.col("is_long")).then(pl.lit("long")).otherwise(pl.lit("short")),
            action_hash="tx_hash",
            legs="legs",
            closed_size="closed_size",
            notional_usd="notional_usd",
            mark_px="mark_px",
            first_tid=pl.col("block_number") * 100_000 + pl.col("log_index"),
            pool_size=pl.col("pool_size").fill_null(0),
            unmatched_counter_legs=pl.lit(0),
        )
        .sort("step_id")
    )
    integrity["seeded_candidates"] = int(per_user.filter(pl.col("seeded")).height)
    return GmxAdlEvidence(_conform(steps, ADL_STEPS), _conform(pools, ADL_POOLS), integrity)


def adl_steps_and_pools(
    events: pl.DataFrame, *, decimals: dict[str, int] | None = None, wave_gap_ms: int = WAVE_GAP_MS
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(adl_steps, adl_pools) of :func:`adl_evidence` (decimals default to 18 for every market)."""
    dec = decimals if decimals is not None else {m: 18 for m in events["market"].unique().to_list()}
    ev = adl_evidence(events, decimals=dec, wave_gap_ms=wave_gap_ms)
    return ev.steps, ev.pools


def _integrity(events: pl.DataFrame, st: pl.DataFrame, decimals: dict[str, int]) -> dict:
    unknown = events.filter(~pl.col("market").is_in(list(decimals)))
    first = st.filter(pl.col("first_seen"))
    return {
        "events": int(events.height),
        "events_without_decimals": int(unknown.height),
        "markets_without_decimals": sorted(unknown["market"].unique().to_list()),
        "positions": int(first.height),
        "positions_open_before_data": int(first.filter(pl.col("tokens_before") > 0).height),
        "chain_breaks": int(st["chain_break"].sum()) if st.height else 0,
        "first_block": int(st["block_number"].min()) if st.height else None,
        "last_block": int(st["block_number"].max()) if st.height else None,
    }


_PL = {
    "VARCHAR": pl.String,
    "BIGINT": pl.Int64,
    "UBIGINT": pl.UInt64,
    "INTEGER": pl.Int32,
    "BOOLEAN": pl.Boolean,
    "DOUBLE": pl.Float64,
}


def _empty(table) -> pl.DataFrame:
    return pl.DataFrame(schema={c.name: _PL[c.type] for c in table.columns})


def _conform(df: pl.DataFrame, table) -> pl.DataFrame:
    return df.select(
        [
            pl.col(c.name).cast(_PL[c.type]) if c.name in df.columns else pl.lit(None, _PL[c.type]).alias(c.name)
            for c in table.columns
        ]
    )
