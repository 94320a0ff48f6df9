"""Position reconstruction and ADL candidate pools (pure library: polars, numpy; no Dagster, no HTTP).

Public API:

* :func:`build_steps_and_pools` — ADL steps and eligible pools with ranking features and outcomes, in
  the ``adl_steps`` / ``adl_pools`` layouts (``forensics.schema``).
* :func:`build_state` — the event-sourced replay (position, entry, realized PnL, wallets per event).
* :func:`check_start_positions` — relative replay vs every reported ``startPosition`` (no snapshot needed).
* :func:`compare_to_truth` — pools vs a simulator ``truth.json``: set equality and feature errors.
"""

from __future__ import annotations

from .pools import build_steps_and_pools, segment_steps
from .replay import build_state, check_start_positions, order_fills
from .truth import compare_to_truth

__all__ = [
    "build_steps_and_pools",
    "build_state",
    "check_start_positions",
    "compare_to_truth",
    "order_fills",
    "segment_steps",
]
