"""The stress-test report: context built from a ``liqf stress`` result, rendered with the audit report's
Jinja2 environment (autoescaping on) into one self-contained HTML file, and its PDF."""

from __future__ import annotations

import math
from typing import Any

from forensics.report import environment
from forensics.report import stress_charts as charts

SECTIONS = (
    "Executive summary",
    "Scenario inputs and their sources",
    "Default timeline",
    "Losses by node",
    "Venue waterfalls",
    "Custody pots and liquidity",
    "Sensitivities",
    "Network",
    "Methods, assumptions and caveats",
    "Reproducibility manifest",
)


def _usd(x: float | None) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    a = abs(x)
    for div, unit in ((1e9, "bn"), (1e6, "M"), (1e3, "k")):
        if a >= div:
            return f"${x / div:,.2f}{unit}"
    return f"${x:,.2f}"


def base_values(scn) -> dict[str, float]:
    """Each sweepable parameter's value in the scenario itself (where a slice through a grid is taken)."""
    venues = [n for n in scn.nodes if n.kind in ("venue", "vault")]
    base = {
        "insurance_scale": 1.0,
        "shock_scale": 1.0,
        "exempt_share": max((n.exempt_share for n in venues), default=0.0),
        "freeze_fraction": max((f.fraction for f in scn.freezes), default=0.0),
    }
    for a in scn.assets:
        base[f"{a.id.lower()}_shock"] = a.shock
    for n in scn.nodes:
        for fld in (
            "external_assets",
            "external_liabilities",
            "capital",
            "insurance_fund",
            "bad_debt",
            "profit_base",
            "exempt_share",
        ):
            base[f"node.{n.id}.{fld}"] = getattr(n, fld)
    return base


def sensitivity_sentences(grid: dict, base: dict[str, float]) -> list[str]:
    """For each swept parameter, how defaults and haircuts move along it with the others at their base."""
    out = []
    keys = grid["params"]
    for k in keys:
        others = {o: min(grid["values"][o], key=lambda v: abs(v - base.get(o, 0.0))) for o in keys if o != k}
        pts = sorted((p for p in grid["points"] if all(p[o] == v for o, v in others.items())), key=lambda p: p[k])
        if len(pts) < 2:
            continue
        at = ", ".join(f"{o} = {v:g}" for o, v in others.items())
        lo, hi = pts[0], pts[-1]
        s = (
            f"{k} from {lo[k]:g} to {hi[k]:g}{f' ({at})' if at else ''}: defaults {lo['defaults']} → {hi['defaults']}, "
            f"largest haircut {lo['max_haircut']:.1%} → {hi['max_haircut']:.1%}, venue shortfall "
            f"{_usd(lo['shortfall'])} → {_usd(hi['shortfall'])}"
        )
        changes = [(a, b) for a, b in zip(pts, pts[1:]) if set(a["defaulted"]) != set(b["defaulted"])]
        if changes:
            s += "; the default set changes at " + "; ".join(
                f"{k} = {b[k]:g} ({', '.join(b['defaulted']) or 'no default'})" for _, b in changes[:4]
            )
        out.append(s + ".")
    return out


def _named(field: str, scn) -> str:
    """``node[3].capital`` -> ``node[3] bybit .capital`` for readers."""
    if field.startswith("node["):
        i = int(field[5 : field.index("]")])
        if i < len(scn.nodes):
            return field.replace(f"node[{i}]", f"node[{i}] {scn.nodes[i].id} ", 1)
    return field


def timeline_sentences(defaults: list[dict]) -> list[str]:
    by_round: dict[int, list[dict]] = {}
    for d in defaults:
        by_round.setdefault(d["round"], []).append(d)
    out = []
    for r in sorted(by_round):
        items = ", ".join(
            f"{d['node']} ({d['cause']}{' on ' + ', '.join(d['venues']) if d['venues'] else ''})" for d in by_round[r]
        )
        out.append(f"Round {r}: {items}.")
    return out or ["No node defaults."]


def context(result: dict, scn, *, generated: str, command: str) -> dict[str, Any]:
    base = base_values(scn)
    rounds = {d["node"]: d["round"] for d in result["defaults"]}
    sweeps = []
    for g in result["sweeps"]:
        chart = charts.heatmaps(g) if len(g["params"]) >= 2 else charts.line(g)
        sweeps.append(
            {
                "name": g["name"],
                "params": g["params"],
                "points": len(g["points"]),
                "chart": chart,
                "sentences": sensitivity_sentences(g, base),
            }
        )
    venues = result["venues"]
    summary = {
        "defaults": len(result["defaults"]),
        "venue_defaults": sum(v["defaulted"] for v in venues),
        "max_haircut": max((v["haircut"] for v in venues), default=0.0),
        "bad_debt": sum(v["bad_debt"] for v in venues),
        "shortfall": sum(v["shortfall"] for v in venues),
        "insurance_used": sum(v["insurance_used"] for v in venues),
        "rounds": max(rounds.values(), default=0),
    }
    names = list(result["payments"])
    kinds = {d["node"]: d["kind"] for d in result["losses"]}
    return {
        "meta": {
            "scenario": result["scenario"],
            "description": result.get("description", ""),
            "path": result["path"],
            "sha256": result["scenario_sha256"],
            "code_version": result["code_version"],
            "generated": generated,
            "command": command,
            "model": result["model"],
            "run_id": result["run_id"],
            "seconds": result["seconds"],
        },
        "summary": summary,
        "timeline_sentences": timeline_sentences(result["defaults"]),
        "defaults": result["defaults"],
        "venues": venues,
        "losses": [r for r in result["losses"] if r["loss"] > 1e-9 or r["equity"] < -1e-9],
        "custody": result["custody"],
        "liquidity": result["liquidity"],
        "fire_sale": result["fire_sale"],
        "inputs": [{**p, "field": _named(p["field"], scn)} for p in result["inputs"]],
        "sweeps": sweeps,
        "usd": _usd,
        "charts": {
            "timeline": charts.timeline(result["defaults"]),
            "losses": charts.losses(result["losses"]),
            "waterfall": charts.waterfall(venues) if venues else "",
            "network": charts.network(names, [kinds.get(n, "bank") for n in names], result["edges"], rounds),
        },
    }


def render_html(ctx: dict[str, Any]) -> str:
    return environment().get_template("stress.html.j2").render(**ctx)
