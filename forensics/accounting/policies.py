"""Counterfactual ADL policies per wave, each raising the same target budget ``B_t^needed``.

Candidates are the reconstructed eligible pools (``adl_pools``) of the wave's steps, one row per
(user, coin) from the first step of the wave that lists it (the pre-wave state). Capacity (what may be
haircut, Chitra's PNL-only endowment) ``w = (uPnL)_+``; equity ``e`` = account value at mark.

Wealth-space policies allocate ``B`` over ``w`` (so they spend exactly ``min(B, sum w)``):

* ``queue_<rule>`` for every queue rule of :mod:`forensics.rules`: highest score first, each cut up to
  its whole ``w`` until ``B`` is raised (the marginal one partially);
* ``wealth_pro_rata``: ``h = B w / sum w``;
* ``capped_pro_rata``: ``h = min(r w, cap_frac e, w)`` with one rate ``r`` (water-filling);
* ``risk_aware_pro_rata`` (linear RAP / leveraged pro-rata): ``h = min(r lambda w, w)``, ``lambda`` = leverage.

Contract-space policies choose closed quantities per coin summing to the wave's ADL quantity ``Q_c``
and pay the wave's average bankruptcy gap per contract ``g_c = B_c / Q_c``:

* ``leverage_waterfill`` (Campbell-Hey-Moallemi-Nutz): close from the most levered down to one common
  leverage ``L*`` (``q = clip((n - L* e)/mark, 0, size)``);
* ``contracts_pro_rata_int``: contracts pro-rata, rounded down to the coin's lot (Chitra's integer
  rounding, which under-shoots);
* ``minmax_ilp``: integer lots minimizing the largest haircut share ``max h/e`` subject to raising at
  least ``B`` (``scipy.optimize.milp``, HiGHS inside SciPy; no extra dependency).

``production`` is the observed two-pass haircut (``haircut_0ms``) of :mod:`forensics.accounting.core`.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from forensics.audit.rules import ORDERING_RULES
from forensics.audit.table import score_pools

from .core import WaveAccounting, gini, top_share

_EPS = 1e-9


def candidates(pools: pl.DataFrame, steps: pl.DataFrame, bounds: pl.DataFrame) -> pl.DataFrame:
    """Per (wave, user, coin) pre-wave candidate rows with ``w`` (capacity), ``e`` (equity) and rule scores."""
    st = steps.select("step_id", pl.col("time_ms").cast(pl.Int64)).sort("time_ms")
    b = bounds.select("wave", "start_ms", "end_ms").sort("start_ms")
    st = st.join_asof(b, left_on="time_ms", right_on="start_ms", strategy="backward", check_sortedness=False)
    st = st.filter(pl.col("time_ms") <= pl.col("end_ms")).select("step_id", "wave")
    p = pools.join(st, on="step_id").sort(["wave", "step_id"])
    p = score_pools(p)
    p = p.group_by(["wave", "user", "coin"], maintain_order=True).first()
    return p.with_columns(
        pl.col("upnl_usd").cast(pl.Float64).fill_null(0.0).clip(lower_bound=0.0).alias("w"),
        pl.col("account_value_usd").cast(pl.Float64).alias("e"),
        pl.col("size").cast(pl.Float64).abs().alias("size_abs"),
        pl.col("mark_px").cast(pl.Float64).alias("mark"),
        pl.col("leverage").cast(pl.Float64).fill_null(0.0).alias("lam"),
    )


def capacity_frame(cands: pl.DataFrame) -> pl.DataFrame:
    """Per (wave, user): ``capacity_usd`` = sum of positive uPnL, ``equity_usd`` = account value."""
    return cands.group_by(["wave", "user"]).agg(
        pl.col("w").sum().alias("capacity_usd"), pl.col("e").first().alias("equity_usd")
    )


def waterfill(a: np.ndarray, cap: np.ndarray, target: float) -> np.ndarray:
    """``h_i = min(r a_i, cap_i)`` with one ``r >= 0`` such that ``sum h = min(target, sum cap)`` (exact)."""
    a = np.clip(np.asarray(a, float), 0, None)
    cap = np.clip(np.asarray(cap, float), 0, None)
    cap = np.where(a > 0, cap, 0.0)
    total = cap.sum()
    if target <= 0 or total <= 0:
        return np.zeros_like(cap)
    if target >= total:
        return cap.copy()
    ok = a > 0
    br = np.full(a.shape, np.inf)
    br[ok] = cap[ok] / a[ok]
    order = np.argsort(br)
    sat = 0.0
    rem_a = a[ok].sum()
    for i in order:
        if not ok[i]:
            continue
        r = (target - sat) / rem_a if rem_a > 0 else np.inf
        if r <= br[i]:
            return np.minimum(r * a, cap)
        sat += cap[i]
        rem_a -= a[i]
    return cap.copy()


def queue(score: np.ndarray, w: np.ndarray, target: float, tie: np.ndarray | None = None) -> np.ndarray:
    keys = (np.arange(len(score)) if tie is None else tie, -np.nan_to_num(score, nan=-np.inf, neginf=-1e308))
    order = np.lexsort(keys)
    h = np.zeros(len(w))
    rem = float(target)
    for i in order:
        if rem <= 0:
            break
        h[i] = min(w[i], rem)
        rem -= h[i]
    return h


def _lot(sizes: np.ndarray) -> float:
    for k in range(0, 9):
        x = np.abs(sizes) * 10**k
        if np.all(np.abs(x - np.round(x)) < 1e-6 * np.maximum(1, x)):
            return 10.0**-k
    return 1e-8


def minmax_ilp(
    gap_lot: np.ndarray, kmax: np.ndarray, e: np.ndarray, target: float, time_limit: float = 10.0
) -> np.ndarray:
    """Integer lots ``k`` minimizing ``max_i gap_lot_i k_i / e_i`` s.t. ``sum gap_lot k >= target``,
    ``0 <= k <= kmax``. Returns haircuts ``gap_lot k``."""
    # heavy (scipy.optimize): only for the optimal-haircut policy
    from scipy.optimize import Bounds, LinearConstraint, milp

    n = len(gap_lot)
    ok = (gap_lot > 0) & (kmax > 0) & (e > 0)
    if n == 0 or target <= 0 or not ok.any():
        return np.zeros(n)
    idx = np.nonzero(ok)[0]
    g, km, ee = gap_lot[idx], kmax[idx], e[idx]
    target = min(target, float((g * km).sum()))
    m = len(idx)
    # variables: k_0..k_{m-1}, t ; minimize t
    c = np.zeros(m + 1)
    c[-1] = 1.0
    c[:m] = 1e-6 * g / max(target, _EPS)  # tie-break: among min-max solutions, the least overshoot
    A1 = np.zeros((m, m + 1))
    A1[np.arange(m), np.arange(m)] = g / ee
    A1[:, -1] = -1.0
    A2 = np.zeros((1, m + 1))
    A2[0, :m] = g
    cons = [LinearConstraint(A1, -np.inf, 0.0), LinearConstraint(A2, target * (1 - 1e-12), np.inf)]
    integrality = np.r_[np.ones(m), 0]
    res = milp(
        c,
        constraints=cons,
        integrality=integrality,
        bounds=Bounds(np.zeros(m + 1), np.r_[km, np.inf]),
        options={"time_limit": time_limit},
    )
    h = np.zeros(n)
    if res.x is None:  # fall back: continuous min-max (equity pro-rata), rounded up
        k = np.minimum(km, np.ceil(waterfill(ee, g * km, target) / g))
    else:
        k = np.round(res.x[:m])
    h[idx] = g * k
    return h


def _metrics(users: np.ndarray, h: np.ndarray, w: np.ndarray, e: np.ndarray, B: float, max_loss: float) -> dict:
    df = (
        pl.DataFrame({"user": users, "h": h, "w": w, "e": e})
        .group_by("user")
        .agg(pl.col("h").sum(), pl.col("w").sum(), pl.col("e").first())
    )
    hu, wu, eu = (df[c].to_numpy().astype(float) for c in ("h", "w", "e"))
    tot = float(hu.sum())
    share = np.where(eu > _EPS, hu / np.where(eu > _EPS, eu, 1.0), np.nan)
    surv = float(np.max(np.clip(wu - hu, 0, None))) if len(wu) else 0.0
    return {
        "haircut_usd": tot,
        "target_usd": B,
        "overshoot_usd": tot - B,
        "accounts_touched": int((hu > _EPS).sum()),
        "max_haircut_share": float(np.nanmax(share)) if np.isfinite(share).any() else None,
        "largest_haircut_usd": float(hu.max()) if len(hu) else 0.0,
        "gini": gini(hu),
        "top1pct_share": top_share(hu),
        "ptsr": surv / tot if tot > _EPS else None,
        "pmr": surv / max_loss if max_loss > _EPS else None,
        "_touched": set(df.filter(pl.col("h") > _EPS)["user"].to_list()),
    }


def run_policies(
    wa: WaveAccounting,
    cands: pl.DataFrame,
    *,
    cap_frac: float = 0.5,
    rules: list | None = None,
    ilp_time_limit: float = 10.0,
) -> tuple[pl.DataFrame, list[dict]]:
    """(per (policy, wave) rows, per-policy totals). Totals: ``overshoot`` = sum over waves,
    ``accounts_touched`` = distinct accounts over the window, ``max_haircut_share`` = max over waves."""
    rules = rules or ORDERING_RULES
    rows: list[dict] = []
    touched: dict[str, set] = {}
    legs = wa.legs
    for wrow in wa.waves.iter_rows(named=True):
        wid, B, max_loss = wrow["wave"], float(wrow["needed_usd"]), float(wrow["max_loss_usd"] or 0.0)
        c = cands.filter(pl.col("wave") == wid)
        lg = legs.filter(pl.col("wave") == wid)
        hc = wa.haircuts.filter(pl.col("wave") == wid)
        # production
        cap = c.group_by("user").agg(pl.col("w").sum(), pl.col("e").first())
        prod = hc.select("user", pl.col("haircut_0ms").fill_null(0.0).alias("h")).join(cap, on="user", how="left")
        res = {
            "production": _metrics(
                prod["user"].to_numpy(),
                prod["h"].to_numpy(),
                prod["w"].fill_null(0.0).to_numpy(),
                prod["e"].fill_null(np.nan).to_numpy(),
                B,
                max_loss,
            )
        }
        if c.height:
            users = c["user"].to_numpy()
            w = c["w"].to_numpy()
            e = c["e"].fill_null(0.0).to_numpy()
            lam = c["lam"].to_numpy()
            tie = np.unique(users, return_inverse=True)[1]
            for r in rules:
                s = c[f"score_{r.name}"].to_numpy().astype(float)
                res[f"queue_{r.name}"] = _metrics(users, queue(s, w, B, tie), w, e, B, max_loss)
            res["wealth_pro_rata"] = _metrics(users, waterfill(w, w, B), w, e, B, max_loss)
            res["capped_pro_rata"] = _metrics(
                users, waterfill(w, np.minimum(w, cap_frac * np.clip(e, 0, None)), B), w, e, B, max_loss
            )
            res["risk_aware_pro_rata"] = _metrics(users, waterfill(lam * w, w, B), w, e, B, max_loss)
            # contract space, per coin
            h_lw = np.zeros(c.height)
            h_cpr = np.zeros(c.height)
            gap_lot = np.zeros(c.height)
            kmax = np.zeros(c.height)
            coins = c["coin"].to_numpy()
            for coin in np.unique(coins):
                lc = lg.filter(pl.col("coin") == coin)
                Q = float(lc["sz"].abs().sum())
                Bc = float(lc["needed_usd"].sum())
                if Q <= 0:
                    continue
                gc = Bc / Q
                ix = np.nonzero(coins == coin)[0]
                size = c["size_abs"].to_numpy()[ix]
                mark = c["mark"].to_numpy()[ix]
                n = size * mark
                ee = np.clip(e[ix], _EPS, None)
                # leverage water-filling: close n_i - L e_i at most size_i (closed-form via waterfill on L)
                q = _lev_waterfill(n, ee, mark, size, Q)
                h_lw[ix] = q * gc
                lot = _lot(np.r_[lc["sz"].to_numpy(), size])
                S = size.sum()
                if S > 0:
                    h_cpr[ix] = np.floor(np.minimum(size, Q * size / S) / lot + 1e-9) * lot * gc
                gap_lot[ix] = gc * lot
                kmax[ix] = np.floor(size / lot + 1e-9)
            res["leverage_waterfill"] = _metrics(users, h_lw, w, e, B, max_loss)
            res["contracts_pro_rata_int"] = _metrics(users, h_cpr, w, e, B, max_loss)
            res["minmax_ilp"] = _metrics(users, minmax_ilp(gap_lot, kmax, e, B, ilp_time_limit), w, e, B, max_loss)
        for name, m in res.items():
            touched.setdefault(name, set()).update(m.pop("_touched"))
            rows.append({"policy": name, "wave": wid, **m})
    df = pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()
    totals = []
    if df.height:
        for (name,), g in df.group_by("policy", maintain_order=True):
            ms = g["max_haircut_share"].drop_nulls()
            totals.append(
                {
                    "name": name,
                    "haircut": float(g["haircut_usd"].sum()),
                    "target": float(g["target_usd"].sum()),
                    "overshoot": float(g["overshoot_usd"].sum()),
                    "accounts_touched": len(touched.get(name, ())),
                    "max_haircut_share": float(ms.max()) if ms.len() else None,
                    "largest_haircut": float(g["largest_haircut_usd"].max()),
                }
            )
    return df, totals


def _lev_waterfill(n: np.ndarray, e: np.ndarray, mark: np.ndarray, size: np.ndarray, Q: float) -> np.ndarray:
    """Closed sizes bringing every leverage above ``L*`` down to ``L*`` with ``sum q = Q`` (bisection on L)."""
    if Q <= 0 or size.sum() <= 0:
        return np.zeros_like(size)
    if Q >= size.sum():
        return size.copy()

    def q_of(L: float) -> np.ndarray:
        return np.clip((n - L * e) / np.where(mark > 0, mark, 1.0), 0, size)

    lo, hi = 0.0, float(np.max(n / e)) + 1.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if q_of(mid).sum() > Q:
            lo = mid
        else:
            hi = mid
    q = q_of(hi)
    short = Q - q.sum()  # exact total: spread the bisection residue over the positions at the level
    if short > 0:
        room = size - q
        at = q_of(lo) - q
        wts = at if at.sum() > 0 else room
        q = q + np.minimum(room, short * wts / wts.sum()) if wts.sum() > 0 else q
    return q


def overshoot_band_note(totals: dict) -> str:
    lo, hi = totals.get("overshoot_band", [math.nan, math.nan])
    return f"overshoot band over horizons: ${lo:,.0f} to ${hi:,.0f}"
