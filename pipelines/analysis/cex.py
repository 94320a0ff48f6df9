"""Run the CEX forensics (forensics.cex_forensics) over the lake and write ``adl_episodes`` / ``adl_audit``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb

from forensics import cex_forensics
from forensics.formats.cex.common import rows_to_arrow
from forensics.tables import FILLS
from forensics.tables.cex import ADL_ALERTS, ADL_AUDIT, ADL_EPISODES, ADL_RANKS, CEX_LIQUIDATIONS, INSURANCE_FUND
from pipelines.ingest.cex import CEX_VENUES
from pipelines.lake import Lake, source_key

__all__ = ["CexForensicsResult", "run"]


@dataclass
class CexForensicsResult:
    episodes: list[dict[str, Any]]
    audit: list[dict[str, Any]]

    def summary(self) -> str:
        kinds: dict[str, int] = {}
        for e in self.episodes:
            kinds[e["kind"]] = kinds.get(e["kind"], 0) + 1
        bad = sum(1 for a in self.audit if a["consistent"] is False)
        return f"{len(self.episodes)} episodes {kinds}; {len(self.audit)} own ADL fills audited, {bad} inconsistent"


def _rows(con: duckdb.DuckDBPyConnection, lake: Lake, table: str, where: str = "true") -> list[dict[str, Any]]:
    rows = lake.read(table, con=con)
    if rows is None:
        return []
    cur = con.execute(f"SELECT * FROM rows WHERE {where}")  # DuckDB scans the frame by its name
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def run(lake: Lake, **params: Any) -> CexForensicsResult:
    """Detect episodes per CEX venue and audit own ADL fills; replaces the previous outputs (one key per venue)."""
    con = duckdb.connect()
    venues = "(" + ", ".join(f"'{v}'" for v in CEX_VENUES) + ")"
    fills = _rows(con, lake, FILLS.name, f"venue IN {venues} AND is_adl")
    episodes = cex_forensics.detect_episodes(
        insurance=_rows(con, lake, INSURANCE_FUND.name),
        alerts=_rows(con, lake, ADL_ALERTS.name),
        liquidations=_rows(con, lake, CEX_LIQUIDATIONS.name),
        own_fills=fills,
        **params,
    )
    audit = cex_forensics.audit_own_adl(fills, _rows(con, lake, ADL_RANKS.name))
    con.close()
    for venue in CEX_VENUES:
        key = source_key("cex_forensics", venue)
        lake.replace_source(
            ADL_EPISODES, venue, key, rows_to_arrow(ADL_EPISODES, [e for e in episodes if e["venue"] == venue])
        )
        lake.replace_source(ADL_AUDIT, venue, key, rows_to_arrow(ADL_AUDIT, [a for a in audit if a["venue"] == venue]))
    return CexForensicsResult(episodes, audit)
