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

import duckdb
import pyarrow as pa

from forensics.contagion import sweep as sweep_mod
from forensics.contagion.model import Scenario
from forensics.contagion.perp import StressResult, stress
from forensics.contagion.scenario import ScenarioError, load, parse_range, resolve, sweep_key_problem
from forensics.tables.stress import STRESS_DEFAULTS, STRESS_RUNS, STRESS_SWEEPS, STRESS_VENUES
from pipelines.lake import Lake, source_key
from pipelines.version import code_version

LAKE_KINDS = ("vault_equity", "insurance_fund", "bad_debt", "haircut", "profit_base", "exempt_share")


def _iso_ms(text: str, where: str) -> int:
    try:
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ScenarioError(f"{where}: {text!r} is not an ISO-8601 time") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return int(t.timestamp() * 1000)


def _ms_iso(ms: int | None) -> str | None:
    return None if ms is None else dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _scan(lake: Lake, table: str) -> str:
    return f"read_parquet('{lake.glob(table)}', union_by_name = true, hive_partitioning = false)"


def lookup(lake: Lake, ref: str, where: str) -> tuple[float, str, str | None] | None:
    """One lake reference -> (value, source, time), or None when the lake holds no matching rows."""
    body, _, at = ref.partition("@")
    parts = body.split(":")
    kind = parts[0]
    if kind not in LAKE_KINDS or len(parts) < 2 or (kind in ("vault_equity", "insurance_fund") and len(parts) != 3):
        raise ScenarioError(f"{where}.from_lake: {ref!r} is not a lake reference "
                            f"(use {', '.join(k + ':<venue>' + (':<key>' if k in ('vault_equity', 'insurance_fund') else '') for k in LAKE_KINDS)}[@ISO])")
    venue = parts[1]
    until = _iso_ms(at, f"{where}.from_lake") if at else 2**62
    con = duckdb.connect()
    try:
        if kind == "vault_equity":
            if not lake.has_files("vault_equity"):
                return None
            row = con.execute(f"SELECT account_value::DOUBLE, time_ms, count(*) OVER () FROM {_scan(lake, 'vault_equity')} "
                              "WHERE venue = $v AND lower(vault) = lower($k) AND time_ms <= $t AND account_value IS NOT NULL "
                              "ORDER BY time_ms DESC, \"window\" LIMIT 1", {"v": venue, "k": parts[2], "t": until}).fetchone()
            if row is None:
                return None
            return row[0], f"lake vault_equity venue={venue} vault={parts[2]} (latest of {row[2]} points <= {at or 'now'})", _ms_iso(row[1])
        if kind == "insurance_fund":
            if not lake.has_files("insurance_fund"):
                return None
            row = con.execute(f"SELECT coalesce(balance_usd, balance)::DOUBLE, time_ms, asset FROM {_scan(lake, 'insurance_fund')} "
                              "WHERE venue = $v AND pool = $k AND kind = 'balance' AND time_ms <= $t "
                              "AND coalesce(balance_usd, balance) IS NOT NULL ORDER BY time_ms DESC LIMIT 1",
                              {"v": venue, "k": parts[2], "t": until}).fetchone()
            if row is None:
                return None
            return row[0], f"lake insurance_fund venue={venue} pool={parts[2]} asset={row[2]}", _ms_iso(row[1])
        if kind in ("bad_debt", "haircut", "profit_base"):
            if not lake.has_files("adl_waves"):
                return None
            col = {"bad_debt": "deficit_usd", "haircut": "production_0ms", "profit_base": "capacity_usd"}[kind]
            row = con.execute(f"SELECT sum({col})::DOUBLE, count(*), max(end_ms) FROM {_scan(lake, 'adl_waves')} "
                              "WHERE venue = $v AND start_ms <= $t", {"v": venue, "t": until}).fetchone()
            if not row or not row[1] or row[0] is None:
                return None
            return row[0], f"lake adl_waves.{col} venue={venue}, sum over {row[1]} waves", _ms_iso(row[2])
        # exempt_share
        if not lake.has_files("exemption_flags"):
            return None
        flags = con.execute(f"SELECT \"user\", flagged FROM {_scan(lake, 'exemption_flags')} WHERE venue = $v",
                            {"v": venue}).fetchall()
        if not flags:
            return None
        flagged = {u for u, f in flags if f}
        if lake.has_files("adl_haircuts"):
            cap = con.execute(f"SELECT \"user\", sum(capacity_usd)::DOUBLE FROM {_scan(lake, 'adl_haircuts')} "
                              "WHERE venue = $v AND capacity_usd IS NOT NULL GROUP BY 1", {"v": venue}).fetchall()
            total = sum(c for _, c in cap)
            if total > 0:
                share = sum(c for u, c in cap if u in flagged) / total
                return share, (f"lake exemption_flags x adl_haircuts.capacity_usd venue={venue}: "
                               f"{len(flagged)} flagged of {len(flags)} tested, capacity-weighted"), None
        return len(flagged) / len(flags), f"lake exemption_flags venue={venue}: {len(flagged)} flagged of {len(flags)} tested", None
    finally:
        con.close()


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
            raise ScenarioError(f"{ref.field}.from_lake: no rows for {ref.ref!r} in {lake.root if lake else 'no lake'} "
                                f"(ingest them, or give a fallback)")
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
    return {"payments": res.payments, "defaults": res.defaults, "venues": res.venues, "custody": res.custody,
            "losses": res.losses, "fire_sale": {k: v for k, v in res.fire_sale.items()},
            "liquidity": res.liquidity, "edges": res.edges, "diagnostics": res.diagnostics}


def run(path: Path, *, lake: Lake | None, sweeps: list[str] | None = None, scenario_sweeps: bool = True,
        write: bool = True) -> dict:
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
        "scenario": scn.name, "path": str(path), "scenario_sha256": digest, "description": scn.description,
        "model": {"kind": scn.kind, "alpha": scn.alpha, "beta": scn.beta, "external_seniority": scn.external_seniority,
                  "fire_sale": scn.fire_sale},
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
    runs = [{**base, "scenario_sha256": out["scenario_sha256"], "path": out["path"], "model": out["model"]["kind"],
             "params_json": json.dumps(out["model"]), "code_version": out["code_version"],
             "run_time": dt.datetime.now(dt.UTC).replace(tzinfo=None), "nodes": nodes, "defaults": s["defaults"],
             "venue_defaults": s["venue_defaults"], "max_haircut": s["max_haircut"], "total_shortfall": s["shortfall"],
             "fire_sale_rounds": out["fire_sale"]["rounds"], "oscillation": out["fire_sale"]["oscillation"],
             "inputs_json": json.dumps(out["inputs"], default=str)}]
    defaults = [{**base, **d, "venues": ",".join(d["venues"]) or None} for d in out["defaults"]]
    venues = [{**base, **v} for v in out["venues"]]
    points = []
    for g in out["sweeps"]:
        keys = g["params"]
        for i, p in enumerate(g["points"]):
            points.append({**base, "sweep": g["name"], "point": i, "param_1": keys[0], "value_1": p[keys[0]],
                           "param_2": keys[1] if len(keys) > 1 else None, "value_2": p[keys[1]] if len(keys) > 1 else None,
                           "params_json": json.dumps({k: p[k] for k in keys}), "defaults": p["defaults"],
                           "venue_defaults": p["venue_defaults"], "max_haircut": p["max_haircut"],
                           "shortfall": p["shortfall"], "defaulted": ",".join(p["defaulted"]) or None})
    for table, rows in ((STRESS_RUNS, runs), (STRESS_DEFAULTS, defaults), (STRESS_VENUES, venues),
                        (STRESS_SWEEPS, points)):
        if rows:
            lake.replace_source(table, "contagion", key, _table(rows, table))
        else:   # a re-run with no rows must not leave the previous run's rows behind
            lake.drop_stale_parts(table.name, "contagion", key, keep=set())


def public(out: dict) -> dict:
    """The JSON-serialisable part of :func:`run`'s result."""
    return {k: v for k, v in out.items() if not k.startswith("_")}
