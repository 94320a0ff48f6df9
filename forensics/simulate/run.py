"""``generate``: run the engine and write data, ``truth.json`` and ``scenario.json``."""

from __future__ import annotations

import math
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from . import calibration, writer
from .config import SCALES, VAULT_ADDRESS, Noise, Params, Scale
from .engine import Engine
from .market import Universe, make_universe
from .misc import MiscEvents
from .policies import POLICIES

PRESETS = ("oct10",)
EXEMPT_KINDS = ("skip", "capped")


def _per_user(stats: dict[str, list]) -> tuple[np.ndarray, np.ndarray]:
    """Notional-weighted per-user PnL% and leverage of ADL'd positions (like adl_by_user_REALTIME)."""
    if not stats["user"]:
        return np.zeros(0), np.zeros(0)
    u = np.asarray(stats["user"])
    w = np.asarray(stats["notional"])
    pnl = np.asarray(stats["pnl_percent"])
    lev = np.asarray(stats["leverage"])
    uniq, inv = np.unique(u, return_inverse=True)
    ws = np.bincount(inv, w)
    return np.bincount(inv, w * pnl) / ws, np.bincount(inv, w * lev) / ws


def _switch_wave(params: Params, sc: Scale, uni: Universe, switch_at: float, *, real: bool) -> dict[str, Any]:
    """Where a rule switch starts: a dry run of the whole cascade under the first policy (with the planted
    exemptions and, for the real layouts, the cash events, so it is the real run up to the switch) counts the
    waves; the switch wave is the one at ``switch_at`` of them, rounded half up, within [1, waves - 1]."""
    dry = Engine(params, sc, uni, POLICIES[params.policy])
    if real:
        dry.misc = MiscEvents(params.seed)
    waves = len(dry.run(lambda b, fills: None).waves)
    if waves < 2:
        raise ValueError(
            f"this cascade has {waves} ADL wave(s); a rule switch needs at least 2 (try another seed or scale)"
        )
    wave = min(max(1, math.floor(switch_at * waves + 0.5)), waves - 1)
    return {"policy": params.switch_policy, "at": switch_at, "wave": wave, "waves_without_switch": waves}


def rule_windows(steps: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The rule in force as windows of consecutive ADL steps, and the change points between them (each the
    first step, wave, time and block of the new rule)."""
    windows: list[dict[str, Any]] = []
    for st in steps:
        if not windows or windows[-1]["rule"] != st["rule"]:
            windows.append(
                {"rule": st["rule"], "first_step": st["step"], "first_wave": st["wave"], "from_ms": st["time"]}
            )
        windows[-1].update(last_step=st["step"], last_wave=st["wave"], to_ms=st["time"])
    for w in windows:
        w["steps"] = w["last_step"] - w["first_step"] + 1
    changes = [
        {
            "step": b["first_step"],
            "wave": b["first_wave"],
            "time_ms": b["from_ms"],
            "block_number": steps[b["first_step"]]["block_number"],
            "from_rule": a["rule"],
            "to_rule": b["rule"],
        }
        for a, b in zip(windows, windows[1:])
    ]
    return {"rule_windows": windows, "change_points": changes}


def generate(
    out_dir: str | Path,
    *,
    preset: str = "oct10",
    scale: str = "small",
    policy: str = "hl_index",
    exempt: int | list[str] | tuple[str, ...] = 5,
    seed: int = 7,
    noise: Noise | dict[str, Any] | None = None,
    formats: str = "node",
    switch_policy: str | None = None,
    switch_at: float = 0.5,
    exempt_kind: str = "skip",
    exempt_cap: float = 0.3,
    **overrides: Any,
) -> dict[str, Any]:
    """Simulate a cascade and write it to ``out_dir``; returns the content of ``scenario.json``.

    ``exempt``: number of planted exempt accounts (chosen among planted large short winners), or an
    explicit list of addresses. ``noise``: :class:`Noise` or dict of its knobs. ``overrides``: any other
    :class:`Params` field (e.g. ``vault_cash_frac``, ``real_data_root``). ``formats="real"`` also simulates
    funding, deposits, withdrawals, transfers and liquidation summaries (``forensics.simulate.misc``) and writes
    the published layouts: ``misc_events_by_block``, the clearinghouse snapshot export and the archive's
    per-minute ``asset_ctxs`` CSV (instead of the JSONL snapshot and per-second contexts).

    Venue behaviours (recorded in ``truth.json``):

    * ``switch_policy``: a silent rule change. ``policy`` ranks the waves before the switch, ``switch_policy``
      every wave from the switch on; the switch wave is the one at ``switch_at`` (a fraction in (0, 1)) of the
      cascade's waves, counted in a dry run without the switch (rounded half up, at least the second wave and
      at most the last). ``truth.json`` has ``rule_windows`` and ``change_points`` and each step's ``rule``.
    * ``exempt_kind="capped"``: soft exemptions. Planted accounts are never skipped, but when the policy takes
      from one it gives up only ``exempt_cap`` of that (rounded down, at least one lot) and the rest is taken
      from the next in line; each step lists its ``capped_exempt`` rows (rank, the rule's take, the take).
      Walk policies only (not pro-rata).
    """
    if formats not in ("node", "real"):
        raise ValueError(f"unknown formats {formats!r}; known: node, real")
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; known: {PRESETS}")
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; known: {sorted(SCALES)}")
    for name in (policy, switch_policy):
        if name is not None and name not in POLICIES:
            raise ValueError(f"unknown policy {name!r}; known: {sorted(POLICIES)}")
    if switch_policy is not None and (switch_policy == policy or not 0.0 < switch_at < 1.0):
        raise ValueError("a rule switch needs another policy and switch_at strictly between 0 and 1")
    if exempt_kind not in EXEMPT_KINDS:
        raise ValueError(f"unknown exempt_kind {exempt_kind!r}; known: {', '.join(EXEMPT_KINDS)}")
    if exempt_kind == "capped":
        if not 0.0 < exempt_cap < 1.0:
            raise ValueError("exempt_cap must be strictly between 0 and 1")
        for name in (policy, switch_policy):
            if name is not None and not POLICIES[name].walks:
                raise ValueError(f"capped exemptions need a walk policy; {name} is {POLICIES[name].kind}")
    t0 = time.perf_counter()
    ex = tuple(str(x).lower() for x in exempt) if isinstance(exempt, (list, tuple)) else int(exempt)
    params = Params(
        seed=int(seed),
        preset=preset,
        scale=scale,
        policy=policy,
        exempt=ex,
        noise=Noise.from_any(noise),
        switch_policy=switch_policy,
        switch_at=switch_at if switch_policy is not None else None,
        exempt_kind=exempt_kind,
        exempt_cap=exempt_cap if exempt_kind == "capped" else None,
        **overrides,
    )
    sc = SCALES[scale]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for sub in ("node_fills_by_block", "snapshots", "asset_ctxs", "vaults", "misc_events_by_block", "snapshot"):
        shutil.rmtree(out / sub, ignore_errors=True)
    real = calibration.load_real(params.real_data_root)
    table = calibration.coin_table(sc.n_coins, real)
    ss = np.random.SeedSequence([params.seed, 1])
    r_uni, r_noise = (np.random.default_rng(s) for s in ss.spawn(2))
    uni = make_universe(table, r_uni)
    selection = "explicit" if isinstance(ex, tuple) else "none"
    if isinstance(ex, int) and ex > 0:
        # dry run without exemptions: plant the exemption on the k accounts selected in the most ADL steps
        # (largest closed notional breaks ties), so each is eligible and highly ranked in several steps
        dry = Engine(params.with_(exempt=0), sc, uni, POLICIES[policy]).run(
            lambda b, fills: None, stop_after_first_adl_s=20.0
        )
        hits: dict[str, list[float]] = {}
        for st in dry.steps:
            for row in st["pool"]:
                if row["selected"]:
                    h = hits.setdefault(row["user"], [0, 0.0])
                    h[0] += 1
                    h[1] += row["closed_size"] * row["mark"]
        ranked = sorted(hits, key=lambda u: (-hits[u][0], -hits[u][1], u))
        params = params.with_(exempt=tuple(ranked[:ex]))
        selection = "dry-run: top ADL winners by steps selected"
    switch = None
    if switch_policy is not None:
        switch = _switch_wave(params, sc, uni, switch_at, real=formats == "real")
    eng = Engine(
        params,
        sc,
        uni,
        POLICIES[policy],
        POLICIES[switch_policy] if switch_policy is not None else None,
        switch["wave"] if switch is not None else None,
    )
    if formats == "real":
        eng.misc = MiscEvents(params.seed)
    sink = writer.FillSink(out, uni, params.noise, r_noise)
    try:
        res = eng.run(sink)
    finally:
        sink.close()
    t_engine = time.perf_counter() - t0
    paths = {"fills": sorted(sink.files)}
    funding = np.full(uni.n, 0.0000125)
    if formats == "real":
        paths["misc_events"] = writer.write_misc_events(
            out, eng.misc.blocks, res.t_ns, res.block_numbers, np.random.default_rng([params.seed, 4])
        )
        paths["snapshot"] = writer.write_snapshot_export(
            out, res.snapshot, res.addresses, uni, int(res.block_numbers[0])
        )
        paths["asset_ctxs"] = writer.write_archive_ctxs(out, res.ctx_rows, uni, funding)
        # the exact JSONL snapshot and per-second contexts too, to measure what the export and the archive cost
        paths["snapshot_jsonl"] = writer.write_snapshot(out, res.snapshot, res.addresses, uni)
        paths["asset_ctxs_jsonl"] = writer.write_ctxs(out, res.ctx_rows, uni, funding)
    else:
        paths["snapshot"] = writer.write_snapshot(out, res.snapshot, res.addresses, uni)
        paths["asset_ctxs"] = writer.write_ctxs(out, res.ctx_rows, uni, funding)
    paths["vault_details"] = writer.write_vault(out, res.vault_rows)
    paths["truth"] = "truth.json"
    paths["scenario"] = "scenario.json"

    addr = res.addresses
    exempt_addrs = [addr[i] for i in res.exempt]
    stats = res.adl_fill_stats
    coin_ev = np.bincount(np.asarray(stats["coin"], dtype=np.int64), minlength=uni.n)
    coin_nt = np.bincount(
        np.asarray(stats["coin"], dtype=np.int64), np.asarray(stats["notional"], dtype=float), minlength=uni.n
    )
    pnl_u, lev_u = _per_user(stats)
    partial = float(np.mean(stats["partial"])) if stats["partial"] else 0.0
    delay = (res.adl_first_ms - res.liq_first_ms) / 1000 if res.adl_first_ms and res.liq_first_ms else None
    ks = calibration.ks_report(
        {"pnl_percent": pnl_u, "leverage": lev_u}, real, uni.names, coin_ev, coin_nt, partial, delay
    )

    snap_ms = int(res.t_ns[0] // 1_000_000)
    stale = min(params.noise.stale_snapshot, len(res.t_ns) - 1)
    window_start = int(res.t_ns[stale] // 1_000_000)
    rng_tr = np.random.default_rng([params.seed, 2])
    special = set(res.exempt) | set(res.adl_users) | set(res.whales)
    others = [i for i in range(1, len(addr)) if i not in special]
    sample = sorted(int(x) for x in rng_tr.choice(others, size=min(50, len(others)), replace=False)) if others else []
    tracked_idx = sorted(set(res.exempt) | set(res.whales) | set(res.adl_users) | set(sample))
    tracked = [VAULT_ADDRESS] + [addr[i] for i in tracked_idx]

    counts = {
        "accounts": len(addr),
        "coins": uni.n,
        "blocks": int(len(res.t_ns)),
        "fills": sink.written_legs,
        "fills_generated": res.counts["fills"],
        "fills_dropped": sink.dropped_legs,
        "liquidation_legs": res.counts["liquidation_legs"] - res.counts["adl_legs"],
        "market_liquidation_legs": res.counts["market_liquidation_legs"],
        "backstop_legs": res.counts["backstop_legs"],
        "adl_legs": res.counts["adl_legs"],
        "adl_fills": len(stats["user"]),
        "steps": len(res.steps),
        "waves": len(res.waves),
        "liquidated_accounts": res.counts["liquidated_accounts"],
        "backstops": res.counts["backstops"],
        "positions_at_snapshot": int(sum(len(a[5]) for a in res.snapshot["accounts"])),
        "adl_users": len(res.adl_users),
    }
    truth = {
        "policy": policy,
        "policy_source": POLICIES[policy].source,
        "policy_kind": POLICIES[policy].kind,
        "seed": params.seed,
        "params": params.to_dict(),
        "scale": sc.__dict__,
        "vault": VAULT_ADDRESS,
        "exempt": exempt_addrs,
        "exempt_selection": selection,
        "whales": [addr[i] for i in res.whales],
        "coins": uni.names,
        "steps": res.steps,
        "waves": res.waves,
        "ledger": res.ledger,
        "adl_partial_fraction": partial,
        "first_liquidation_ms": res.liq_first_ms,
        "first_adl_ms": res.adl_first_ms,
        "exempt_kind": params.exempt_kind,
        "exempt_cap": params.exempt_cap,
        "switch": switch,
        **rule_windows(res.steps),
    }
    (out / "truth.json").write_bytes(orjson.dumps(truth, option=orjson.OPT_SERIALIZE_NUMPY))
    scenario = {
        "preset": preset,
        "scale": scale,
        "policy": policy,
        "seed": params.seed,
        "params": params.to_dict(),
        "counts": counts,
        "snapshot_time": snap_ms,
        "snapshot_block": int(res.block_numbers[0]),
        "window": {
            "start_ms": window_start,
            "end_ms": int(res.t_ns[-1] // 1_000_000),
            "start_block": int(res.block_numbers[stale]),
            "end_block": int(res.block_numbers[-1]),
        },
        "vault": VAULT_ADDRESS,
        "tracked_users": tracked,
        "paths": paths,
        "calibration": {"source": real["source"] if real else "builtin", "ks": ks},
        "timing_s": {"engine": round(t_engine, 3), "total": round(time.perf_counter() - t0, 3)},
    }
    if formats == "real":
        scenario["formats"] = "real"
        scenario["misc_events"] = dict(sorted(eng.misc.counts.items()))
    # timings are machine dependent: keep them out of the byte-identical files
    (out / "scenario.json").write_bytes(
        orjson.dumps(
            {k: v for k, v in scenario.items() if k != "timing_s"},
            option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY,
        )
    )
    return scenario
