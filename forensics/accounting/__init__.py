"""Haircut and overshoot accounting, counterfactual ADL policies, cascade timing and backstop coverage
(pure library: polars, numpy, scipy, duckdb; no Dagster, no HTTP). Definitions: docs/accounting.md.

* :func:`wave_accounting` — per-wave D_t, B_needed, H_prod per horizon (two-pass replay, price path
  fixed), overshoot, under-coverage, payout ratio, concentration, PTSR/PMR; :func:`gap_sweep`.
* :func:`candidates`, :func:`run_policies` — counterfactual policies over the reconstructed pools.
* :func:`cascade_timeline`, :func:`backstop_coverage` — timing, bursts, matching, isolation; the vault.
* :func:`reproduce_chitra`, :func:`overshoot_from_waves`, :func:`hmadl_aggregates` — published Oct-10 figures.
"""

from __future__ import annotations

from .core import HORIZONS_S, WaveAccounting, gap_sweep, gini, top_share, two_pass_replay, wave_accounting
from .policies import candidates, capacity_frame, run_policies, waterfill
from .published import HMADL_CAVEATS, hmadl_aggregates, overshoot_from_waves, reproduce_chitra
from .timing import backstop_coverage, cascade_timeline, hlp_snapshot_identity

__all__ = [
    "HMADL_CAVEATS",
    "HORIZONS_S",
    "WaveAccounting",
    "backstop_coverage",
    "candidates",
    "capacity_frame",
    "cascade_timeline",
    "gap_sweep",
    "gini",
    "hlp_snapshot_identity",
    "hmadl_aggregates",
    "overshoot_from_waves",
    "reproduce_chitra",
    "run_policies",
    "top_share",
    "two_pass_replay",
    "waterfill",
    "wave_accounting",
]
