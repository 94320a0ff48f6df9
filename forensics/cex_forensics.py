"""Venue-level ADL episodes and the own-account ADL audit for centralized venues.

Episodes (``adl_episodes``), per venue:

* ``insurance_drawdown``: a pool's balance falls from a running peak by at least ``min_drawdown_pct``;
  the episode runs from the peak to the trough, with the drop, the drop / peak and the speed per hour.
* ``adl_alert``: consecutive Bybit ADL-alert snapshots of a symbol with ``adl_triggered``.
* ``okx_adl``: OKX insurance-fund ``adlType`` start (rate/bal/pos_adl_start) to ``adl_end`` per pool.
* ``liquidation_burst``: ``bin_s``-second bins whose venue-reported liquidated USD (or count) is at least
  ``burst_factor`` times the venue's median bin, merged while consecutive.
* ``own_adl``: own ADL fills closer than ``gap_s`` to each other.

Audit (``adl_audit``): for each own ADL fill, the last rank the venue reported for that (account,
symbol, position side) before the fill, whether it was in the top band of the venue's scale (the
documented rule deleverages the highest-ranked profitable positions first: Binance quantile 4 of 0-4,
Bybit / OKX 5 of 1-5) and whether the position was in profit; stale ranks (older than 4 x the venue's
refresh interval) make the verdict inconclusive rather than an accusation.

Inputs are plain row dicts (as read from the lake); outputs are row dicts in the analytics schemas.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["RANK_REFRESH_S", "audit_own_adl", "detect_episodes"]

RANK_REFRESH_S = {"binance": 30.0, "bybit": 60.0, "okx": 60.0, "bitmex": 60.0}
TOP_BAND = {"binance": 4, "bybit": 5, "okx": 5}


def _eid(venue: str, kind: str, scope: str, start_ms: int) -> str:
    return hashlib.sha256(f"{venue}\x1f{kind}\x1f{scope}\x1f{start_ms}".encode()).hexdigest()[:24]


def _episode(venue: str, kind: str, scope: str, start_ms: int, end_ms: int, events: int, **kw: Any) -> dict[str, Any]:
    detail = kw.pop("detail", {})
    return {
        "venue": venue,
        "date": (dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=start_ms)).date(),
        "episode_id": _eid(venue, kind, scope, start_ms),
        "kind": kind,
        "scope": scope,
        "start_ms": start_ms,
        "end_ms": end_ms,
        "duration_s": (end_ms - start_ms) / 1000.0,
        "events": events,
        "notional_usd": kw.get("notional_usd"),
        "drawdown": kw.get("drawdown"),
        "drawdown_pct": kw.get("drawdown_pct"),
        "speed_per_hour": kw.get("speed_per_hour"),
        "detail_json": json.dumps(detail, sort_keys=True, default=str),
    }


def _f(x: Any) -> float | None:
    return None if x is None else float(x)


def insurance_drawdowns(rows: Iterable[Mapping[str, Any]], min_drawdown_pct: float = 0.05) -> list[dict[str, Any]]:
    series: dict[tuple[str, str, str], list[tuple[int, float]]] = defaultdict(list)
    for r in rows:
        if r.get("balance") is not None:
            series[(r["venue"], r["pool"], r["asset"])].append((int(r["time_ms"]), float(r["balance"])))
    out = []

    def emit(venue: str, scope: str, peak_t: int, peak: float, trough_t: int, trough: float, n: int) -> None:
        if peak > 0 and trough_t > peak_t and (peak - trough) / peak >= min_drawdown_pct:
            hours = (trough_t - peak_t) / 3_600_000
            out.append(
                _episode(
                    venue,
                    "insurance_drawdown",
                    scope,
                    peak_t,
                    trough_t,
                    n,
                    drawdown=peak - trough,
                    drawdown_pct=(peak - trough) / peak,
                    speed_per_hour=(peak - trough) / hours,
                    detail={"peak": peak, "peak_ms": peak_t, "trough": trough, "trough_ms": trough_t},
                )
            )

    for (venue, pool, asset), pts in series.items():
        pts.sort()
        scope = f"{pool}/{asset}"
        peak_t, peak = pts[0]
        trough_t, trough, n = peak_t, peak, 1
        for t, b in pts[1:]:
            if b >= peak:  # recovered: close the drawdown since the old peak
                emit(venue, scope, peak_t, peak, trough_t, trough, n)
                peak_t, peak, trough_t, trough, n = t, b, t, b, 1
            else:
                n += 1
                if b < trough:
                    trough_t, trough = t, b
        emit(venue, scope, peak_t, peak, trough_t, trough, n)
    return out


def adl_alert_episodes(rows: Iterable[Mapping[str, Any]], gap_ms: int = 5 * 60_000) -> list[dict[str, Any]]:
    by: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for r in rows:
        if r.get("adl_triggered"):
            by[(r["venue"], r["symbol"])].append(r)
    out = []
    for (venue, sym), rs in by.items():
        rs = sorted(rs, key=lambda r: r["time_ms"])
        group = [rs[0]]
        for r in rs[1:] + [None]:  # type: ignore[list-item]
            if r is not None and r["time_ms"] - group[-1]["time_ms"] <= gap_ms:
                group.append(r)
                continue
            out.append(
                _episode(
                    venue,
                    "adl_alert",
                    sym,
                    group[0]["time_ms"],
                    group[-1]["time_ms"],
                    len(group),
                    detail={
                        "min_pnl_ratio": min(_f(g["pnl_ratio"]) for g in group),
                        "min_balance": min(_f(g["balance"]) for g in group),
                    },
                )
            )
            if r is not None:
                group = [r]
    return out


def okx_adl_episodes(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    by: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for r in rows:
        if r.get("venue") == "okx" and r.get("adl_type"):
            by[r["pool"]].append(r)
    out = []
    for pool, rs in by.items():
        open_: Mapping[str, Any] | None = None
        for r in sorted(rs, key=lambda r: r["time_ms"]):
            if r["adl_type"].endswith("_start") and open_ is None:
                open_ = r
            elif r["adl_type"] == "adl_end" and open_ is not None:
                out.append(
                    _episode(
                        "okx",
                        "okx_adl",
                        pool,
                        open_["time_ms"],
                        r["time_ms"],
                        2,
                        detail={"start_type": open_["adl_type"]},
                    )
                )
                open_ = None
        if open_ is not None:
            out.append(
                _episode(
                    "okx",
                    "okx_adl",
                    pool,
                    open_["time_ms"],
                    open_["time_ms"],
                    1,
                    detail={"start_type": open_["adl_type"], "end": "not observed"},
                )
            )
    return out


def liquidation_bursts(
    rows: Iterable[Mapping[str, Any]], bin_s: int = 60, burst_factor: float = 5.0, min_events: int = 3
) -> list[dict[str, Any]]:
    bins: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    syms: dict[tuple[str, int], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for r in rows:
        if r.get("time_source", "exchange") != "exchange":
            continue
        b = int(r["time_ms"]) // (bin_s * 1000)
        usd = _f(r.get("notional_usd")) or 0.0
        bins[r["venue"]][b].append(usd)
        syms[(r["venue"], b)][r["symbol"]] += usd
    out = []
    for venue, vb in bins.items():
        keys = sorted(vb)
        span = range(keys[0], keys[-1] + 1)
        counts = [len(vb.get(k, [])) for k in span]
        base = max(1.0, statistics.median(counts))
        hot = [k for k in span if len(vb.get(k, [])) >= max(min_events, burst_factor * base)]
        groups: list[list[int]] = []
        for k in hot:
            if groups and k == groups[-1][-1] + 1:
                groups[-1].append(k)
            else:
                groups.append([k])
        for g in groups:
            usd = sum(sum(vb[k]) for k in g)
            n = sum(len(vb[k]) for k in g)
            top: dict[str, float] = defaultdict(float)
            for k in g:
                for s, v in syms[(venue, k)].items():
                    top[s] += v
            hours = len(g) * bin_s / 3600
            out.append(
                _episode(
                    venue,
                    "liquidation_burst",
                    max(top, key=top.get) if top else "",
                    g[0] * bin_s * 1000,
                    (g[-1] + 1) * bin_s * 1000,
                    n,
                    notional_usd=usd,
                    speed_per_hour=usd / hours,
                    detail={
                        "median_events_per_bin": base,
                        "top_symbols": dict(sorted(top.items(), key=lambda x: -x[1])[:5]),
                    },
                )
            )
    return out


def own_adl_episodes(fills: Iterable[Mapping[str, Any]], gap_s: float = 300.0) -> list[dict[str, Any]]:
    by: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for f in fills:
        if f.get("is_adl"):
            by[(f["venue"], f["coin"])].append(f)
    out = []
    for (venue, coin), fs in by.items():
        fs = sorted(fs, key=lambda f: f["time_ms"])
        group = [fs[0]]
        for f in fs[1:] + [None]:  # type: ignore[list-item]
            if f is not None and f["time_ms"] - group[-1]["time_ms"] <= gap_s * 1000:
                group.append(f)
                continue
            usd = sum(float(g["px"]) * float(g["sz"]) for g in group)
            out.append(
                _episode(
                    venue,
                    "own_adl",
                    coin,
                    group[0]["time_ms"],
                    group[-1]["time_ms"],
                    len(group),
                    notional_usd=usd,
                    detail={"accounts": sorted({g["user"] for g in group})},
                )
            )
            if f is not None:
                group = [f]
    return out


def detect_episodes(
    *,
    insurance: Sequence[Mapping[str, Any]] = (),
    alerts: Sequence[Mapping[str, Any]] = (),
    liquidations: Sequence[Mapping[str, Any]] = (),
    own_fills: Sequence[Mapping[str, Any]] = (),
    min_drawdown_pct: float = 0.05,
    bin_s: int = 60,
    burst_factor: float = 5.0,
) -> list[dict[str, Any]]:
    """Every episode kind, sorted by (venue, start)."""
    eps = [
        *insurance_drawdowns(insurance, min_drawdown_pct),
        *adl_alert_episodes(alerts),
        *okx_adl_episodes(insurance),
        *liquidation_bursts(liquidations, bin_s, burst_factor),
        *own_adl_episodes(own_fills),
    ]
    return sorted(eps, key=lambda e: (e["venue"], e["start_ms"], e["kind"]))


def audit_own_adl(fills: Iterable[Mapping[str, Any]], ranks: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One audit row per own ADL fill (see module docstring)."""
    by: dict[tuple[str, str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for r in ranks:
        if r.get("kind") == "account_rank" and r.get("rank") is not None:
            by[(r["venue"], r["account"], r["symbol"])].append(r)
    for v in by.values():
        v.sort(key=lambda r: r["time_ms"])
    out = []
    for f in fills:
        if not f.get("is_adl"):
            continue
        venue, acct, sym, t = f["venue"], f["user"], f["coin"], int(f["time_ms"])
        side = "long" if f["side"] == "A" else "short"  # the ADL order closes the deleveraged position
        cands = [
            r for r in by.get((venue, acct, sym), []) if r["time_ms"] <= t and r["position_side"] in (side, "both")
        ]
        prior = cands[-1] if cands else None
        pnl = f.get("closed_pnl")
        pnl_pos = None if pnl is None else float(pnl) > 0
        rank = prior["rank"] if prior else None
        rmax = prior["rank_max"] if prior else TOP_BAND.get(venue)
        age = (t - prior["time_ms"]) / 1000.0 if prior else None
        stale = None if age is None else age > 4 * RANK_REFRESH_S.get(venue, 60.0)
        if prior is None:
            consistent, verdict = None, "no rank observed before the fill: cannot check"
        elif stale:
            consistent, verdict = None, f"last rank {rank}/{rmax} is {age:.0f} s old (stale): inconclusive"
        elif rank >= TOP_BAND.get(venue, rmax or 0) and pnl_pos is not False:
            consistent, verdict = (
                True,
                f"rank {rank}/{rmax} (top band) {age:.0f} s before: consistent with the documented rule",
            )
        elif pnl_pos is False:
            consistent, verdict = False, f"position was not in profit (closed PnL {pnl}) yet was deleveraged"
        else:
            consistent, verdict = False, f"rank {rank}/{rmax} was below the top band {age:.0f} s before the fill"
        out.append(
            {
                "venue": venue,
                "date": (dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=t)).date(),
                "account": acct,
                "symbol": sym,
                "fill_id": f["fill_id"],
                "time_ms": t,
                "position_side": side,
                "notional_usd": float(f["px"]) * float(f["sz"]),
                "rank_before": rank,
                "rank_max": rmax,
                "rank_age_s": age,
                "rank_stale": stale,
                "pnl_positive": pnl_pos,
                "consistent": consistent,
                "verdict": verdict,
            }
        )
    return out
