"""Scenario files (TOML, stdlib ``tomllib``): parsing and validation into ``model.Scenario``.

Every problem is one line naming the field, e.g. ``liability[2].creditor: unknown node 'Z'``. The
schema is documented in docs/contagion.md; ``SCHEMA`` below is the machine-readable part of it.
A number may be written plainly, as ``{ value = 1.0, source = "...", confidence = "verified" }``, or
as ``{ from_lake = "vault_equity:hyperliquid:0x...@2025-10-10T21:00:00Z", fallback = 1.0 }`` (resolved
at run time by the pipeline, which owns all I/O).
"""

from __future__ import annotations

import math
import re
import tomllib
from pathlib import Path
from typing import Any

import networkx as nx

from forensics.contagion.model import (
    CONFIDENCE,
    NODE_KINDS,
    VENUE_KINDS,
    Asset,
    Custody,
    Deadline,
    Delegation,
    Exemption,
    Freeze,
    LakeRef,
    Liability,
    Node,
    Position,
    Provenance,
    Scenario,
)


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message is one line naming the field."""


_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
SWEEP_KEYS = ("exempt_share", "insurance_scale", "freeze_fraction", "shock_scale")
# field: (type, default, constraint) ; "amount" = non-negative number, "share" = in [0, 1]
SCHEMA: dict[str, dict[str, tuple[str, Any]]] = {
    "model": {
        "kind": ("enum:eisenberg_noe,rogers_veraart", "eisenberg_noe"),
        "alpha": ("share", 1.0),
        "beta": ("share", 1.0),
        "external_seniority": ("enum:pro_rata,senior", "pro_rata"),
        "name": ("str", None),
        "description": ("str", ""),
        "fire_sale": ("bool", False),
        "fire_sale_rounds": ("int", 20),
    },
    "node": {
        "id": ("id", None),
        "kind": ("enum:" + ",".join(NODE_KINDS), "bank"),
        "label": ("str", ""),
        "external_assets": ("amount", 0.0),
        "external_liabilities": ("amount", 0.0),
        "capital": ("amount", 0.0),
        "insurance_fund": ("amount", 0.0),
        "bad_debt": ("amount", 0.0),
        "profit_base": ("amount", 0.0),
        "exempt_share": ("share", 0.0),
        "adl_rule": ("enum:pro_rata,queue", "pro_rata"),
        "settlement_lag_h": ("lags", None),
        "source": ("str", None),
    },
    "liability": {
        "debtor": ("node", None),
        "creditor": ("node", None),
        "amount": ("amount", None),
        "layer": ("enum:ordinary,senior", "ordinary"),
        "source": ("str", None),
    },
    "asset": {
        "id": ("id", None),
        "price": ("positive", None),
        "shock": ("shock", 0.0),
        "impact": ("amount", 0.0),
        "source": ("str", None),
    },
    "position": {
        "holder": ("node", None),
        "venue": ("venue", None),
        "asset": ("asset", None),
        "qty": ("number", None),
        "entry": ("positive", None),
        "collateral": ("amount", 0.0),
        "source": ("str", None),
    },
    "custody": {
        "client": ("node", None),
        "custodian": ("custodian", None),
        "amount": ("amount", None),
        "source": ("str", None),
    },
    "delegation": {
        "custodian": ("custodian", None),
        "client": ("node", None),
        "venue": ("venue", None),
        "amount": ("amount", None),
        "source": ("str", None),
    },
    "exemption": {
        "venue": ("venue", None),
        "account": ("node", None),
        "enabled": ("bool", True),
        "source": ("str", None),
    },
    "shock": {
        "type": ("enum:custodian_freeze,margin_call_deadline,price", None),
        "custodian": ("custodian", None),
        "venue": ("venue", None),
        "venues": ("venues", ()),
        "fraction": ("share", 1.0),
        "t_h": ("time", 0.0),
        "asset": ("asset", None),
        "shock": ("shock", None),
        "source": ("str", None),
    },
    "sweep": {"name": ("str", None)},
}
_TOP = {
    "model",
    "meta",
    "node",
    "liability",
    "asset",
    "position",
    "custody",
    "delegation",
    "exemption",
    "shock",
    "sweep",
    "fact",
}


def load(path: Path | str) -> Scenario:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ScenarioError(f"{path}: not UTF-8 text") from None
    return loads(text, name=path.stem, origin=str(path))


def loads(text: str, *, name: str = "scenario", origin: str = "scenario") -> Scenario:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{origin}: not valid TOML: {' '.join(str(exc).split())}") from None
    try:
        return _build(data, name)
    except ScenarioError as exc:
        raise ScenarioError(f"{origin}: {exc}") from None


def _tables(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    v = data.get(key, [])
    if isinstance(v, dict):
        v = [v]
    if not isinstance(v, list) or not all(isinstance(t, dict) for t in v):
        raise ScenarioError(f"{key}: must be an array of tables ([[{key}]])")
    return v


class _Reader:
    """Reads one table against its schema, recording provenance and lake references."""

    def __init__(self, scn: Scenario, ids: dict[str, set[str]]):
        self.scn = scn
        self.ids = ids

    def read(
        self, section: str, where: str, table: dict[str, Any], *, extra_ok: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        schema = SCHEMA[section]
        for k in table:
            if k not in schema and k not in extra_ok:
                raise ScenarioError(f"{where}.{k}: unknown field (known: {', '.join(schema)})")
        out = {}
        for k, (kind, default) in schema.items():
            if k not in table:
                if default is None and kind not in ("str", "lags") and section != "shock":
                    raise ScenarioError(f"{where}.{k}: missing (required)")
                out[k] = default
                continue
            out[k] = self.value(kind, f"{where}.{k}", table[k])
        return out

    def value(self, kind: str, where: str, raw: Any) -> Any:
        if kind in ("amount", "share", "number", "positive", "shock", "time") and isinstance(raw, dict):
            raw = self._annotated(where, raw)
            if isinstance(raw, LakeRef):
                return raw
        if kind == "str":
            if not isinstance(raw, str):
                raise ScenarioError(f"{where}: must be a string")
            return raw
        if kind == "bool":
            if not isinstance(raw, bool):
                raise ScenarioError(f"{where}: must be true or false")
            return raw
        if kind == "int":
            if not isinstance(raw, int) or isinstance(raw, bool) or raw < 0:
                raise ScenarioError(f"{where}: must be a non-negative integer")
            return raw
        if kind.startswith("enum:"):
            allowed = kind[5:].split(",")
            if raw not in allowed:
                raise ScenarioError(f"{where}: {raw!r} is not one of {', '.join(allowed)}")
            return raw
        if kind == "id":
            if not isinstance(raw, str) or not _ID.match(raw):
                raise ScenarioError(f"{where}: {raw!r} is not an id (letters, digits, _ . -; up to 64)")
            return raw
        if kind in ("node", "venue", "custodian", "asset"):
            pool = self.ids[kind]
            if not isinstance(raw, str) or raw not in pool:
                what = {"node": "node", "venue": "venue node", "custodian": "custodian node", "asset": "asset"}[kind]
                hint = f" (known: {', '.join(sorted(pool))})" if pool and len(pool) <= 12 else ""
                raise ScenarioError(f"{where}: unknown {what} {raw!r}{hint}")
            return raw
        if kind == "venues":
            if not isinstance(raw, list):
                raise ScenarioError(f"{where}: must be a list of venue ids")
            for i, v in enumerate(raw):
                self.value("venue", f"{where}[{i}]", v)
            return tuple(raw)
        if kind == "lags":
            if isinstance(raw, (int, float)) and not isinstance(raw, bool):
                raw = {"*": raw}
            if not isinstance(raw, dict):
                raise ScenarioError(f"{where}: must be hours, or a table venue = hours")
            out = {}
            for v, h in raw.items():
                if v != "*":
                    self.value("venue", f"{where}.{v}", v)
                out[v] = self.value("time", f"{where}.{v}", h)
            return out
        # numbers
        if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
            raise ScenarioError(f"{where}: must be a finite number, got {raw!r}")
        x = float(raw)
        if kind in ("amount", "time") and x < 0:
            raise ScenarioError(f"{where}: must be >= 0, got {raw!r} (negative amount)")
        if kind == "positive" and x <= 0:
            raise ScenarioError(f"{where}: must be > 0, got {raw!r}")
        if kind == "share" and not 0 <= x <= 1:
            raise ScenarioError(f"{where}: must be between 0 and 1, got {raw!r}")
        if kind == "shock" and x <= -1:
            raise ScenarioError(f"{where}: must be > -1 (a relative move), got {raw!r}")
        return x

    def _annotated(self, where: str, raw: dict[str, Any]) -> Any:
        known = {"value", "source", "confidence", "from_lake", "fallback", "unit", "time", "note"}
        for k in raw:
            if k not in known:
                raise ScenarioError(f"{where}.{k}: unknown field (known: {', '.join(sorted(known))})")
        conf = raw.get("confidence")
        if conf is not None and conf not in CONFIDENCE:
            raise ScenarioError(f"{where}.confidence: {conf!r} is not one of {', '.join(CONFIDENCE)}")
        if "from_lake" in raw:
            ref = raw["from_lake"]
            if not isinstance(ref, str) or not ref.strip():
                raise ScenarioError(
                    f"{where}.from_lake: must be a reference string like 'vault_equity:hyperliquid:0x...'"
                )
            fb = raw.get("fallback")
            if fb is not None and (isinstance(fb, bool) or not isinstance(fb, (int, float))):
                raise ScenarioError(f"{where}.fallback: must be a number")
            lr = LakeRef(ref.strip(), where, None if fb is None else float(fb), raw.get("source"))
            self.scn.lake_refs.append(lr)
            return lr
        if "value" not in raw:
            raise ScenarioError(f"{where}: a table value needs 'value' or 'from_lake'")
        v = raw["value"]
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            self.scn.provenance.append(
                Provenance(where, float(v), raw.get("source"), conf or "assumed", raw.get("time"))
            )
        return v


def _build(data: dict[str, Any], name: str) -> Scenario:
    for k in data:
        if k not in _TOP:
            raise ScenarioError(f"{k}: unknown section (known: {', '.join(sorted(_TOP))})")
    scn = Scenario(name=name)
    nodes_raw = _tables(data, "node")
    if not nodes_raw:
        raise ScenarioError("node: a scenario needs at least one [[node]]")
    ids: dict[str, set[str]] = {"node": set(), "venue": set(), "custodian": set(), "asset": set()}
    for i, t in enumerate(nodes_raw):
        nid = t.get("id")
        if not isinstance(nid, str) or not _ID.match(nid):
            raise ScenarioError(f"node[{i}].id: {'missing (required)' if nid is None else f'{nid!r} is not an id'}")
        if nid in ids["node"]:
            raise ScenarioError(f"node[{i}].id: duplicate node {nid!r}")
        ids["node"].add(nid)
        kind = t.get("kind", "bank")
        if kind in VENUE_KINDS:
            ids["venue"].add(nid)
        if kind == "custodian":
            ids["custodian"].add(nid)
    for i, t in enumerate(_tables(data, "asset")):
        aid = t.get("id")
        if isinstance(aid, str):
            if aid in ids["asset"]:
                raise ScenarioError(f"asset[{i}].id: duplicate asset {aid!r}")
            ids["asset"].add(aid)
    r = _Reader(scn, ids)
    model = data.get("model", {})
    if not isinstance(model, dict):
        raise ScenarioError("model: must be a table ([model])")
    m = r.read("model", "model", model)
    scn.name = m["name"] or name
    scn.kind, scn.alpha, scn.beta = m["kind"], m["alpha"], m["beta"]
    if scn.kind == "rogers_veraart" and not ("alpha" in model and "beta" in model):
        raise ScenarioError("model.alpha: rogers_veraart needs both alpha and beta")
    scn.external_seniority, scn.description = m["external_seniority"], m["description"]
    scn.fire_sale, scn.fire_sale_rounds = m["fire_sale"], m["fire_sale_rounds"]
    for k in ("meta", "fact"):
        if k in data and not isinstance(data[k], (dict, list)):
            raise ScenarioError(f"{k}: must be a table")

    for i, t in enumerate(nodes_raw):
        v = r.read("node", f"node[{i}]", t)
        lags = v.pop("settlement_lag_h") or {}
        v.pop("source")
        scn.nodes.append(Node(**{k: x for k, x in v.items()}, settlement_lag_h=lags))
    for i, t in enumerate(_tables(data, "liability")):
        v = r.read("liability", f"liability[{i}]", t)
        if v["debtor"] == v["creditor"]:
            raise ScenarioError(f"liability[{i}].creditor: a node cannot owe itself ({v['debtor']!r})")
        scn.liabilities.append(Liability(v["debtor"], v["creditor"], v["amount"], v["layer"]))
    for i, t in enumerate(_tables(data, "asset")):
        v = r.read("asset", f"asset[{i}]", t)
        scn.assets.append(Asset(v["id"], v["price"], v["shock"], v["impact"]))
    for i, t in enumerate(_tables(data, "position")):
        v = r.read("position", f"position[{i}]", t)
        if v["holder"] in ids["venue"]:
            raise ScenarioError(f"position[{i}].holder: {v['holder']!r} is a venue; positions belong to accounts")
        scn.positions.append(Position(v["holder"], v["venue"], v["asset"], v["qty"], v["entry"], v["collateral"]))
    for i, t in enumerate(_tables(data, "custody")):
        v = r.read("custody", f"custody[{i}]", t)
        if v["client"] == v["custodian"]:
            raise ScenarioError(f"custody[{i}].custodian: a node cannot hold custody at itself")
        scn.custody.append(Custody(v["client"], v["custodian"], v["amount"]))
    for i, t in enumerate(_tables(data, "delegation")):
        v = r.read("delegation", f"delegation[{i}]", t)
        scn.delegations.append(Delegation(v["custodian"], v["client"], v["venue"], v["amount"]))
    for i, t in enumerate(_tables(data, "exemption")):
        v = r.read("exemption", f"exemption[{i}]", t)
        scn.exemptions.append(Exemption(v["venue"], v["account"], v["enabled"]))
    for i, t in enumerate(_tables(data, "shock")):
        _shock(r, scn, i, t)
    for i, t in enumerate(_tables(data, "sweep")):
        _sweep(r, scn, i, t)
    _check_custody(scn)
    return scn


def _shock(r: _Reader, scn: Scenario, i: int, t: dict[str, Any]) -> None:
    where = f"shock[{i}]"
    v = r.read("shock", where, t)
    kind = v["type"]
    if kind is None:
        raise ScenarioError(f"{where}.type: missing (required)")
    need = {"custodian_freeze": ("custodian",), "margin_call_deadline": ("venue",), "price": ("asset", "shock")}[kind]
    for k in need:
        if v[k] is None:
            raise ScenarioError(f"{where}.{k}: missing (required for {kind})")
    if kind == "custodian_freeze":
        scn.freezes.append(Freeze(v["custodian"], tuple(v["venues"] or ()), v["fraction"], v["t_h"]))
    elif kind == "margin_call_deadline":
        scn.deadlines.append(Deadline(v["venue"], v["t_h"]))
    else:
        asset = next(a for a in scn.assets if a.id == v["asset"])
        asset.shock = v["shock"]


def parse_range(text: str, where: str) -> list[float]:
    """``LO:HI:N`` -> N evenly spaced values from a to b (inclusive)."""
    parts = text.split(":")
    try:
        if len(parts) != 3:
            raise ValueError
        a, b, n = float(parts[0]), float(parts[1]), int(parts[2])
        if n < 1 or not (math.isfinite(a) and math.isfinite(b)):
            raise ValueError
    except ValueError:
        raise ScenarioError(f"{where}: {text!r} is not a range LO:HI:N (N >= 1)") from None
    return [a] if n == 1 else [a + (b - a) * k / (n - 1) for k in range(n)]


def sweep_key_problem(scn: Scenario, key: str) -> str | None:
    """Why ``key`` cannot be swept in this scenario (None if it can)."""
    if key in ("exempt_share",) and not any(n.kind in VENUE_KINDS for n in scn.nodes):
        return "the scenario has no venue"
    if key == "freeze_fraction" and not scn.freezes:
        return "the scenario has no custodian_freeze shock"
    if key == "shock_scale" and not scn.assets:
        return "the scenario has no asset"
    if key in SWEEP_KEYS:
        return None
    if key.endswith("_shock"):
        asset = key[: -len("_shock")]
        if not any(a.id.lower() == asset.lower() for a in scn.assets):
            return f"no asset {asset!r}"
        return None
    if key.startswith("node."):
        parts = key.split(".")
        if len(parts) != 3 or parts[1] not in {n.id for n in scn.nodes}:
            return "use node.<id>.<field> with a known node id"
        if parts[2] not in (
            "external_assets",
            "external_liabilities",
            "capital",
            "insurance_fund",
            "bad_debt",
            "profit_base",
            "exempt_share",
        ):
            return f"node field {parts[2]!r} cannot be swept"
        return None
    return f"unknown sweep parameter (use {', '.join(SWEEP_KEYS)}, <asset>_shock or node.<id>.<field>)"


def _sweep(r: _Reader, scn: Scenario, i: int, t: dict[str, Any]) -> None:
    where = f"sweep[{i}]"
    name = t.get("name", f"sweep {i}")
    if not isinstance(name, str):
        raise ScenarioError(f"{where}.name: must be a string")
    params: dict[str, list[float]] = {}
    for k, raw in t.items():
        if k == "name":
            continue
        k = {"insurance_fund_scale": "insurance_scale"}.get(k, k)  # the reference's spelling
        problem = sweep_key_problem(scn, k)
        if problem:
            raise ScenarioError(f"{where}.{k}: {problem}")
        if isinstance(raw, str):
            params[k] = parse_range(raw, f"{where}.{k}")
        elif (
            isinstance(raw, list) and raw and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in raw)
        ):
            params[k] = [float(x) for x in raw]
        else:
            raise ScenarioError(f"{where}.{k}: must be a list of numbers or a range 'LO:HI:N'")
    if not params:
        raise ScenarioError(f"{where}: names no parameter to sweep")
    scn.sweeps[name] = params  # type: ignore[assignment]


def _check_custody(scn: Scenario) -> None:
    """Custody must end in someone's holdings: a cycle of custody relations (A holds at B holds at A)
    where no member has external assets backs every claim with nothing."""
    g = nx.DiGraph()
    where: dict[tuple[str, str], int] = {}
    for i, c in enumerate(scn.custody):
        g.add_edge(c.client, c.custodian)
        where.setdefault((c.client, c.custodian), i)
    ext = {n.id: n.external_assets for n in scn.nodes}
    for cycle in nx.simple_cycles(g):
        if all(not isinstance(ext[n], LakeRef) and ext[n] <= 0 for n in cycle):
            i, k = min((where[(cycle[k], cycle[(k + 1) % len(cycle)])], k) for k in range(len(cycle)))
            cycle = cycle[k:] + cycle[:k]  # start at the first offending entry's client
            path = " -> ".join(cycle + [cycle[0]])
            raise ScenarioError(
                f"custody[{i}]: custody cycle {path} without holdings (no node on it has external_assets)"
            )
    for i, d in enumerate(scn.delegations):
        if not any(c.client == d.client and c.custodian == d.custodian for c in scn.custody):
            raise ScenarioError(
                f"delegation[{i}].client: {d.client!r} holds nothing at {d.custodian!r} "
                f"(add a [[custody]] entry backing the delegation)"
            )


def resolve(scn: Scenario, values: dict[str, tuple[float, str, str | None]]) -> Scenario:
    """Replace every ``LakeRef`` by its resolved value: ``values[field] = (value, source, time[, confidence])``
    (confidence "lake" unless given, e.g. "fallback")."""
    out = scn.copy()
    out.lake_refs = []
    for obj in [*out.nodes, *out.liabilities, *out.assets, *out.positions, *out.custody, *out.delegations]:
        for k, v in vars(obj).items():
            if isinstance(v, LakeRef):
                if v.field not in values:
                    raise ScenarioError(f"{v.field}: from_lake {v.ref!r} was not resolved")
                resolved: tuple[Any, ...] = values[v.field]  # (value, source, time[, confidence])
                value, source, time, *conf = resolved
                setattr(obj, k, float(value))
                out.provenance.append(Provenance(v.field, float(value), source, conf[0] if conf else "lake", time))
    return out


def unresolved(scn: Scenario) -> list[LakeRef]:
    return list(scn.lake_refs)
