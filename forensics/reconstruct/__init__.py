"""Position reconstruction and ADL candidate pools (pure library: polars, numpy; no Dagster, no HTTP).

Public API:

* :func:`audit_pass` — the replay streamed through every ADL action: each action's pool computed from the
  state just before it and audited (:mod:`forensics.audit`), never held as a table.
* :func:`build_steps_and_pools` — ADL steps and their whole eligible pools with ranking features and
  outcomes, in the ``adl_steps`` / ``adl_pools`` layouts (``forensics.tables``), for SQL.
* :func:`build_state` — the event-sourced replay (position, entry, realized PnL, wallets per event).
* :func:`check_start_positions` — relative replay vs every reported ``startPosition`` (no snapshot needed).
* :func:`compare_to_truth` — pools vs a simulator ``truth.json``: set equality and feature errors.
"""

from __future__ import annotations

from .actions import segment_steps
from .replay import build_state, check_start_positions, order_fills
from .stream import PassResult, audit_pass, build_steps_and_pools
from .truth import compare_to_truth

__all__ = [
    "PassResult",
    "audit_pass",
    "build_steps_and_pools",
    "build_state",
    "check_start_positions",
    "compare_to_truth",
    "order_fills",
    "segment_steps",
]
