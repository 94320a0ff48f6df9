"""Dagster definitions of the CEX connectors (Binance, Bybit, OKX, BitMEX, Deribit, dYdX)."""
