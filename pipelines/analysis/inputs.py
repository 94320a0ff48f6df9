"""The normalized inputs of one venue's audit, read from the lake through :meth:`Lake.read` (one row per key by
each table's dedup rule, as the catalog views read them)."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import polars as pl

from forensics.formats.hyperliquid.constants import LIQUIDATOR_VAULT as HYPERLIQUID_VAULT
from pipelines.lake import Lake, Window

VAULTS = {"hyperliquid": HYPERLIQUID_VAULT}

#: bulky fill columns no analysis reads (identifiers and lineage); left in the lake, not loaded
UNUSED_FILL_COLUMNS = (
    "hash",
    "oid",
    "cloid",
    "local_time",
    "twap_id",
    "fee_token",
    "builder_fee",
    "crossed",
    "time",
    "date",
    "source",
    "source_key",
    "fill_id",
)

# the transaction hash names an ADL action (its winner legs and the liquidated account's counter legs);
# other fills never need it
ADL_HASH = 'CASE WHEN is_adl OR "user" = liquidated_user THEN "hash" END AS "hash"'


@dataclass(frozen=True)
class VenueInputs:
    """A venue's normalized tables (None where the lake holds none)."""

    fills: pl.DataFrame | None
    positions: pl.DataFrame | None
    accounts: pl.DataFrame | None
    asset_ctxs: pl.DataFrame | None
    ledger: pl.DataFrame | None
    funding: pl.DataFrame | None
    liquidation_events: pl.DataFrame | None


def load_inputs(lake: Lake, venue: str = "hyperliquid", until_ms: int | None = None) -> VenueInputs:
    """Fills up to ``until_ms`` (without :data:`UNUSED_FILL_COLUMNS`), every snapshot, the contexts, funding,
    ledger and liquidation summaries up to ``until_ms``."""
    window = Window(until_ms=until_ms) if until_ms is not None else None
    con = duckdb.connect()
    try:
        read = lambda table, w=window, **kw: lake.read(table, venue, w, con=con, **kw)  # noqa: E731
        return VenueInputs(
            fills=read("fills", exclude=UNUSED_FILL_COLUMNS, extra=(ADL_HASH,)),
            # the same record can arrive twice (node snapshot and an API pull of the same state)
            positions=read("position_snapshots", None),
            accounts=read("account_snapshots", None),
            asset_ctxs=read("asset_ctxs"),
            # cash between fills (misc_events_by_block, info-API ledger) and the liquidation summaries to check
            ledger=read("ledger_events"),
            funding=read("funding_payments"),
            liquidation_events=read("liquidation_events"),
        )
    finally:
        con.close()


def archive_mark_age(asset_ctxs: pl.DataFrame | None) -> int | None:
    """Per-minute archive contexts: inside a minute a later trade beats an older mark observation (0 ms);
    per-second contexts (JSONL) keep the venue's marks (None)."""
    if asset_ctxs is None or asset_ctxs.height == 0 or "source" not in asset_ctxs.columns:
        return None
    return 0 if (asset_ctxs["source"] == "asset_ctxs_archive").any() else None
