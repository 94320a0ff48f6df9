"""Local Hyperliquid-compatible venue server (Starlette on uvicorn, loopback only).

Serves ``POST /info`` from a scenario directory in Hyperliquid's public formats, with the
real paging caps, a per-IP weight rate limit and deterministic fault injection.

    with serve("data/scenarios/oct10", faults="429=0.2,seed=3") as srv:
        client = HyperliquidInfoClient(srv.base_url)
"""

from __future__ import annotations

from pipelines.sandbox.venue_server.app import PerIPWeightLimiter, ServerState, build_app
from pipelines.sandbox.venue_server.faults import FaultInjector, FaultSpec, parse_faults
from pipelines.sandbox.venue_server.runner import ServerHandle, run_server, serve
from pipelines.sandbox.venue_server.scenario import Scenario, iter_fill_blocks, load_scenario

__all__ = [
    "FaultInjector",
    "FaultSpec",
    "PerIPWeightLimiter",
    "Scenario",
    "ServerHandle",
    "ServerState",
    "build_app",
    "iter_fill_blocks",
    "load_scenario",
    "parse_faults",
    "run_server",
    "serve",
]
