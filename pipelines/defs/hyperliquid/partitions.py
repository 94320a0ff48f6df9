"""Hyperliquid partitions: UTC days (node_fills_by_block starts on 2025-07-27)."""

import dagster as dg

daily = dg.DailyPartitionsDefinition(start_date="2025-07-27", timezone="UTC", end_offset=1)
