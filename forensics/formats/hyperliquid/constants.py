"""Hyperliquid constants written once: the enums the parsers check and the vault addresses."""

from __future__ import annotations

# Hyperliquid `dir` values seen in public data (venue-apis.md §1.2). Anything else is quarantined so a
# format change is noticed instead of silently mis-classified.
HYPERLIQUID_DIRS: frozenset[str] = frozenset(
    {
        "Open Long",
        "Open Short",
        "Close Long",
        "Close Short",
        "Long > Short",
        "Short > Long",
        "Auto-Deleveraging",
        "Settlement",
        "Liquidated Cross Long",
        "Liquidated Cross Short",
        "Liquidated Isolated Long",
        "Liquidated Isolated Short",
        "Buy",
        "Sell",
        "Spot Dust Conversion",
    }
)
LIQUIDATION_METHODS: frozenset[str] = frozenset({"market", "backstop"})


VENUE = "hyperliquid"

#: the backstop liquidator vault ("HLP Liquidator"): it takes over liquidated positions and is the bankrupt
#: counterparty of every ADL leg, so it is never an ADL candidate
LIQUIDATOR_VAULT = "0x2e3d94f0562703b25c83308a05046ddaf9a8dd14"
