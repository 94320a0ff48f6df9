"""Hyperliquid partitions: UTC days, and UTC hours for the node's hourly files (node_fills_by_block
starts on 2025-07-27 at hour 8)."""

import dagster as dg

daily = dg.DailyPartitionsDefinition(start_date="2025-07-27", timezone="UTC", end_offset=1)

#: one partition per hour file (``hourly/YYYYMMDD/H.lz4``, bucketed by the node's local_time)
hourly = dg.HourlyPartitionsDefinition(start_date="2025-07-27-08:00", timezone="UTC", end_offset=1)
