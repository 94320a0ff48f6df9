"""Sensitivity sweeps: re-run a scenario over a grid of parameters (exempt share, insurance-fund
scale, freeze fraction, shock size, any numeric node field)."""

from __future__ import annotations

import itertools
from typing import Any

from forensics.contagion.model import VENUE_KINDS, Scenario
from forensics.contagion.perp import StressResult, stress
from forensics.contagion.scenario import ScenarioError, sweep_key_problem


def apply(scn: Scenario, key: str, value: float) -> tuple[Scenario, float]:
    """A copy of ``scn`` with one parameter set; returns (scenario, insurance scale)."""
    out = scn.copy()
    scale = 1.0
    if key == "insurance_scale":
        scale = value
    elif key == "exempt_share":
        for n in out.nodes:
            if n.kind in VENUE_KINDS:
                n.exempt_share = value
    elif key == "freeze_fraction":
        for f in out.freezes:
            f.fraction = value
    elif key == "shock_scale":
        for a in out.assets:
            a.shock *= value
    elif key.endswith("_shock"):
        for a in out.assets:
            if a.id.lower() == key[: -len("_shock")].lower():
                a.shock = value
    elif key.startswith("node."):
        _, nid, fld = key.split(".")
        setattr(out.node(nid), fld, value)
    return out, scale


def point(scn: Scenario, params: dict[str, float]) -> StressResult:
    scale = 1.0
    for k, v in params.items():
        problem = sweep_key_problem(scn, k)
        if problem:
            raise ScenarioError(f"sweep {k}: {problem}")
        if (
            k in ("exempt_share", "freeze_fraction", "node.exempt_share") or k.endswith(".exempt_share")
        ) and not 0 <= v <= 1:
            raise ScenarioError(f"sweep {k}: {v} is outside [0, 1]")
        scn, s = apply(scn, k, v)
        scale *= s
    return stress(scn, insurance_scale=scale)


def grid(scn: Scenario, params: dict[str, list[float]], *, name: str = "sweep") -> dict[str, Any]:
    """Every combination of the parameters; one row per point with the outcome measures."""
    keys = list(params)
    points = []
    for combo in itertools.product(*(params[k] for k in keys)):
        values = dict(zip(keys, combo))
        res = point(scn, values)
        s = res.summary()
        points.append(
            {
                **values,
                "defaults": s["defaults"],
                "venue_defaults": s["venue_defaults"],
                "max_haircut": s["max_haircut"],
                "shortfall": s["shortfall"],
                "defaulted": [d["node"] for d in res.defaults],
                "haircuts": {v["venue"]: v["haircut"] for v in res.venues},
            }
        )
    return {"name": name, "params": keys, "values": {k: list(params[k]) for k in keys}, "points": points}
