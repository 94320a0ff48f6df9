"""`liqf stress`: load a scenario file, resolve its ``from_lake`` references, run the contagion stress
test (``forensics.contagion``), its sweeps, and write ``stress_runs``, ``stress_defaults``,
``stress_venues`` and ``stress_sweeps`` to the lake's analytics layer.

Lake references (docs/contagion.md): ``<kind>:<venue>[:<key>][@<ISO time>]`` with kind

* ``vault_equity:<venue>:<vault>[@t]``: latest vault account value at or before t (``vault_equity``);
* ``insurance_fund:<venue>:<pool>[@t]``: latest pool balance (USD when reported) at or before t;
* ``bad_debt:<venue>``: sum of the loser deficit over ADL waves (``adl_waves.deficit_usd``);
* ``haircut:<venue>``: sum of production haircuts (``adl_waves.production_0ms``);
* ``profit_base:<venue>``: sum of the haircuttable capacity (``adl_waves.capacity_usd``);
* ``exempt_share:<venue>``: capacity share of accounts the audit flagged as exempt (``adl_haircuts`` x
  ``exemption_flags``), else the flagged share of tested accounts.

Each resolved value is reported with its source (table, filter, rows) and time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from pathlib import Path

import polars as pl
import pyarrow as pa

from forensics.contagion import sweep as sweep_mod
from forensics.contagion.model import Scenario
from forensics.contagion.perp import StressResult, stress
from forensics.contagion.scenario import ScenarioError, load, parse_range, resolve, sweep_key_problem
from forensics.formats.records import RecordError, iso_ms, ms_to_iso
from forensics.tables import ADL_HAIRCUTS, ADL_WAVES, EXEMPTION_FLAGS, VAULT_EQUITY
from forensics.tables.cex import INSURANCE_FUND
from forensics.tables.stress import STRESS_DEFAULTS, STRESS_RUNS, STRESS_SWEEPS, STRESS_VENUES
from pipelines.lake import Lake, Window, source_key
from pipelines.version import code_version

LAKE_KINDS = ("vault_equity", "insurance_fund", "bad_debt", "haircut", "profit_base", "exempt_share")


def _iso_ms(text: str, where: str) -> int:
    try:
        return iso_ms(text, where)
    except RecordError:
        raise ScenarioError(f"{where}: {text!r} is not an ISO-8601 time") from None


def lookup(lake: Lake, ref: str, where: str) -> tuple[float, str, str | None] | None:
    """One lake reference -> (value, source, time), or None when the lake holds no matching rows."""
    body, _, at = ref.partition("@")
    parts = body.split(":")
    kind = parts[0]
    if kind not in LAKE_KINDS or len(parts) < 2 or (kind in ("vault_equity", "insurance_fund") and len(parts) != 3):
        forms = ", ".join(
            k + ":<venue>" + (":<key>" if k in ("vault_equity", "insurance_fund") else "") for k in LAKE_KINDS
        )
        raise ScenarioError(f"{where}.from_lake: {ref!r} is not a lake reference (use {forms}[@ISO])")
    venue = parts[1]
    until = _iso_ms(at, f"{where}.from_lake") if at else 2**62
    if kind == "vault_equity":
        points = lake.read(VAULT_EQUITY, venue, Window(until_ms=until))
        if points is None:
            return None
        points = points.filter(
            (pl.col("vault").str.to_lowercase() == parts[2].lower()) & pl.col("account_value").is_not_null()
        )
        if points.is_empty():
            return None
        latest = points.sort(["time_ms", "window"], descending=[True, False]).row(0, named=True)
        return (
            float(latest["account_value"]),
            f"lake vault_equity venue={venue} vault={parts[2]} (latest of {points.height} points <= {at or 'now'})",
            ms_to_iso(latest["time_ms"]),
        )
    if kind == "insurance_fund":
        funds = lake.read(INSURANCE_FUND, venue, Window(until_ms=until))
        if funds is None:
            return None
        balance = pl.coalesce("balance_usd", "balance")
        funds = funds.filter((pl.col("pool") == parts[2]) & (pl.col("kind") == "balance") & balance.is_not_null())
        if funds.is_empty():
            return None
        latest = funds.with_columns(value=balance.cast(pl.Float64)).sort("time_ms", descending=True).row(0, named=True)
        return (
            latest["value"],
            f"lake insurance_fund venue={venue} pool={parts[2]} asset={latest['asset']}",
            ms_to_iso(latest["time_ms"]),
        )
    if kind in ("bad_debt", "haircut", "profit_base"):
        waves = lake.read(ADL_WAVES, venue)
        if waves is None:
            return None
        col = {"bad_debt": "deficit_usd", "haircut": "production_0ms", "profit_base": "capacity_usd"}[kind]
        waves = waves.filter(pl.col("start_ms") <= until)
        if waves.is_empty() or waves[col].null_count() == waves.height:
            return None
        return (
            float(waves[col].sum()),
            f"lake adl_waves.{col} venue={venue}, sum over {waves.height} waves",
            ms_to_iso(waves["end_ms"].max()),
        )
    # exempt_share
    flags = lake.read(EXEMPTION_FLAGS, venue)
    if flags is None or flags.is_empty():
        return None
    flagged = set(flags.filter(pl.col("flagged"))["user"].to_list())
    tested = flags.height
    haircuts = lake.read(ADL_HAIRCUTS, venue)
    if haircuts is not None:
        cap = haircuts.filter(pl.col("capacity_usd").is_not_null()).group_by("user").agg(pl.col("capacity_usd").sum())
        total = float(cap["capacity_usd"].sum()) if cap.height else 0.0
        if total > 0:
            share = float(cap.filter(pl.col("user").is_in(list(flagged)))["capacity_usd"].sum()) / total
            return (
                share,
                (
                    f"lake exemption_flags x adl_haircuts.capacity_usd venue={venue}: "
                    f"{len(flagged)} flagged of {tested} tested, capacity-weighted"
                ),
                None,
            )
    return len(flagged) / tested, f"lake exemption_flags venue={venue}: {len(flagged)} flagged of {tested} tested", None


def resolve_from_lake(scn: Scenario, lake: Lake | None) -> Scenario:
    """Replace every ``from_lake`` value by what the lake holds (or its fallback, reported as such)."""
    if not scn.lake_refs:
        return scn
    values: dict[str, tuple[float, str, str | None]] = {}
    for ref in scn.lake_refs:
        found = lookup(lake, ref.ref, ref.field) if lake is not None else None
        if found is not None:
            values[ref.field] = found
        elif ref.fallback is not None:
            src = ref.fallback_source or "scenario fallback"
            values[ref.field] = (ref.fallback, f"fallback ({src}); lake had no rows for {ref.ref}", None, "fallback")
        else:
            raise ScenarioError(
                f"{ref.field}.from_lake: no rows for {ref.ref!r} in {lake.root if lake else 'no lake'} "
                f"(ingest them, or give a fallback)"
            )
    return resolve(scn, values)


def parse_cli_sweeps(scn: Scenario, specs: list[str]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for spec in specs:
        key, eq, rng = spec.partition("=")
        key = key.strip()
        if not eq or not key:
            raise ScenarioError(f"--sweep {spec!r}: use KEY=LO:HI:N, e.g. exempt_share=0:0.5:11")
        key = {"insurance_fund_scale": "insurance_scale"}.get(key, key)
        problem = sweep_key_problem(scn, key)
        if problem:
            raise ScenarioError(f"--sweep {key}: {problem}")
        out[key] = parse_range(rng.strip(), f"--sweep {key}")
    return out


def result_json(res: StressResult) -> dict:
    return {
        "payments": res.payments,
        "defaults": res.defaults,
        "venues": res.venues,
        "custody": res.custody,
        "losses": res.losses,
        "fire_sale": {k: v for k, v in res.fire_sale.items()},
        "liquidity": res.liquidity,
        "edges": res.edges,
        "diagnostics": res.diagnostics,
    }


def run(
    path: Path, *, lake: Lake | None, sweeps: list[str] | None = None, scenario_sweeps: bool = True, write: bool = True
) -> dict:
    """Run one scenario file; returns the ``liqf stress --json`` dict."""
    t0 = time.perf_counter()
    path = Path(path)
    raw = load(path)
    scn = resolve_from_lake(raw, lake)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    res = stress(scn)
    grids = []
    if sweeps:
        grids.append(sweep_mod.grid(scn, parse_cli_sweeps(scn, sweeps), name="cli"))
    elif scenario_sweeps:
        for name, params in scn.sweeps.items():
            grids.append(sweep_mod.grid(scn, params, name=name))
    out = {
        "scenario": scn.name,
        "path": str(path),
        "scenario_sha256": digest,
        "description": scn.description,
        "model": {
            "kind": scn.kind,
            "alpha": scn.alpha,
            "beta": scn.beta,
            "external_seniority": scn.external_seniority,
            "fire_sale": scn.fire_sale,
        },
        **result_json(res),
        "sweeps": grids,
        "inputs": [vars(p) for p in scn.provenance],
        "summary": res.summary(),
        "code_version": code_version(),
        "run_id": f"{scn.name}:{digest[:12]}",
    }
    out["seconds"] = round(time.perf_counter() - t0, 3)
    if write and lake is not None:
        write_tables(lake, out, nodes=len(res.names))
    out["_result"] = res
    out["_scenario"] = scn
    return out


def _table(rows: list[dict], table) -> pa.Table:
    schema = table.arrow_schema()
    return pa.Table.from_pylist([{c: r.get(c) for c in schema.names} for r in rows], schema=schema)


def write_tables(lake: Lake, out: dict, *, nodes: int) -> None:
    key = source_key("stress", out["scenario"], out["path"])
    base = {"run_id": out["run_id"], "scenario": out["scenario"]}
    s = out["summary"]
    runs = [
        {
            **base,
            "scenario_sha256": out["scenario_sha256"],
            "path": out["path"],
            "model": out["model"]["kind"],
            "params_json": json.dumps(out["model"]),
            "code_version": out["code_version"],
            "run_time": dt.datetime.now(dt.UTC).replace(tzinfo=None),
            "nodes": nodes,
            "defaults": s["defaults"],
            "venue_defaults": s["venue_defaults"],
            "max_haircut": s["max_haircut"],
            "total_shortfall": s["shortfall"],
            "fire_sale_rounds": out["fire_sale"]["rounds"],
            "oscillation": out["fire_sale"]["oscillation"],
            "inputs_json": json.dumps(out["inputs"], default=str),
        }
    ]
    defaults = [{**base, **d, "venues": ",".join(d["venues"]) or None} for d in out["defaults"]]
    venues = [{**base, **v} for v in out["venues"]]
    points = []
    for g in out["sweeps"]:
        keys = g["params"]
        for i, p in enumerate(g["points"]):
            points.append(
                {
                    **base,
                    "sweep": g["name"],
                    "point": i,
                    "param_1": keys[0],
                    "value_1": p[keys[0]],
                    "param_2": keys[1] if len(keys) > 1 else None,
                    "value_2": p[keys[1]] if len(keys) > 1 else None,
                    "params_json": json.dumps({k: p[k] for k in keys}),
                    "defaults": p["defaults"],
                    "venue_defaults": p["venue_defaults"],
                    "max_haircut": p["max_haircut"],
                    "shortfall": p["shortfall"],
                    "defaulted": ",".join(p["defaulted"]) or None,
                }
            )
    for table, rows in (
        (STRESS_RUNS, runs),
        (STRESS_DEFAULTS, defaults),
        (STRESS_VENUES, venues),
        (STRESS_SWEEPS, points),
    ):
        if rows:
            lake.replace_source(table, "contagion", key, _table(rows, table))
        else:  # a re-run with no rows must not leave the previous run's rows behind
            lake.drop_stale_parts(table.name, "contagion", key, keep=set())


def public(out: dict) -> dict:
    """The JSON-serialisable part of :func:`run`'s result."""
    return {k: v for k, v in out.items() if not k.startswith("_")}
