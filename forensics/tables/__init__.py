"""The lake's tables: one place that says what every column means, in what unit, and which row of a
repeated key is kept.

One module per area (:mod:`.normalized`, :mod:`.meta`, :mod:`.analytics`, :mod:`.cex`, :mod:`.onchain`,
:mod:`.accounting`, :mod:`.stress`), each with a ``TABLES`` dict; the model (``Column``, ``Table``) and the
conventions are in :mod:`.model`. The same ``Table`` objects generate the Arrow schemas the writers enforce,
the typed empty views the catalog falls back to, and the column documentation (``liqf schema``).
"""

from __future__ import annotations

from forensics.tables import accounting, analytics, cex, meta, normalized, onchain, stress
from forensics.tables.accounting import (
    ADL_HAIRCUTS,
    ADL_WAVES,
    BACKSTOP_COVERAGE,
    CASCADE_TIMELINE,
    POLICY_COUNTERFACTUALS,
)
from forensics.tables.analytics import ADL_POOLS, ADL_RULE_FITS, ADL_STEPS, EXEMPTION_FLAGS, LIQUIDATION_CHECKS
from forensics.tables.meta import ANALYSIS_INPUTS, INGEST_RUNS
from forensics.tables.model import DECIMAL, Column, Table, quote_ident
from forensics.tables.normalized import (
    ACCOUNT_SNAPSHOTS,
    ADL_FILLS,
    ASSET_CTXS,
    FILLS,
    FUNDING_PAYMENTS,
    FUNDING_RATES,
    LEDGER_EVENTS,
    LIQUIDATION_EVENTS,
    LIQUIDATIONS,
    POSITION_SNAPSHOTS,
    QUARANTINE,
    VAULT_EQUITY,
)


def _collect(*areas: dict[str, Table]) -> dict[str, Table]:
    tables: dict[str, Table] = {}
    for area in areas:
        for name, table in area.items():
            if name in tables:
                raise ValueError(f"table {name!r} defined twice")
            tables[name] = table
    return tables


ALL_TABLES: dict[str, Table] = _collect(
    normalized.TABLES, meta.TABLES, analytics.TABLES, cex.TABLES, onchain.TABLES, accounting.TABLES, stress.TABLES
)


def tables_in(layer: str) -> dict[str, Table]:
    """The tables of one layer: 'normalized', 'derived', 'meta' or 'analytics'."""
    return {name: t for name, t in ALL_TABLES.items() if t.layer == layer}


def describe(table: str | None = None) -> str:
    """Markdown documentation of one or all tables."""
    tables = [ALL_TABLES[table]] if table else list(ALL_TABLES.values())
    out: list[str] = []
    for t in tables:
        out.append(f"### `{t.name}` ({t.layer})\n\n{t.doc}\n")
        if t.key:
            out.append(f"Key: ({', '.join(t.key)})\n")
        if t.dedup is not None and t.dedup.order:
            out.append(f"Repeated key: {t.dedup.why} (kept: first by {', '.join(t.dedup.order)}).\n")
        out.append("| column | type | meaning |\n|---|---|---|")
        out.extend(f"| `{c.name}` | {c.type} | {c.doc} |" for c in t.columns)
        out.append("")
    return "\n".join(out)


__all__ = [
    "ACCOUNT_SNAPSHOTS",
    "ADL_FILLS",
    "ADL_HAIRCUTS",
    "ADL_POOLS",
    "ADL_RULE_FITS",
    "ADL_STEPS",
    "ADL_WAVES",
    "ALL_TABLES",
    "ANALYSIS_INPUTS",
    "ASSET_CTXS",
    "BACKSTOP_COVERAGE",
    "CASCADE_TIMELINE",
    "DECIMAL",
    "EXEMPTION_FLAGS",
    "FILLS",
    "FUNDING_PAYMENTS",
    "FUNDING_RATES",
    "INGEST_RUNS",
    "LEDGER_EVENTS",
    "LIQUIDATIONS",
    "LIQUIDATION_CHECKS",
    "LIQUIDATION_EVENTS",
    "POLICY_COUNTERFACTUALS",
    "POSITION_SNAPSHOTS",
    "QUARANTINE",
    "VAULT_EQUITY",
    "Column",
    "Table",
    "describe",
    "quote_ident",
]
