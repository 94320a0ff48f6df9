"""Calibration to the 2025-10-10 Hyperliquid cascade (preset ``oct10``).

Marginals come from ``HyperMultiAssetedADL/canonical`` (see reference/real-data.md §1.1) when that
directory exists at run time; otherwise from the built-in constants below, which were derived from
the same files (per-coin ADL event counts and notional of the top 40 coins; quantiles of PnL% and
realtime leverage of ADL'd users). Only aggregates are embedded; no real data file is copied.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import numpy as np

# (coin, ADL events, ADL notional in $M, mean PnL% of ADL'd positions) for the top-40 coins by events,
# 2025-10-10 21:15-21:27 UTC.
BUILTIN_COINS: list[tuple[str, int, float, float]] = [
    ("HYPE", 6229, 189.93, 37.6),
    ("SOL", 3031, 276.20, 25.4),
    ("XPL", 2984, 65.85, 137.4),
    ("BTC", 2443, 620.89, 12.2),
    ("FARTCOIN", 1999, 31.99, 167.8),
    ("PUMP", 1868, 57.29, 80.1),
    ("ETH", 1498, 458.01, 25.0),
    ("INJ", 999, 0.80, 173.0),
    ("RENDER", 941, 0.26, 223.1),
    ("XRP", 607, 31.42, 53.2),
    ("SUI", 442, 13.37, 97.4),
    ("ASTER", 431, 27.18, 48.4),
    ("AVAX", 407, 36.64, 61.2),
    ("ZEC", 400, 18.91, 14.4),
    ("PENGU", 372, 10.59, 101.5),
    ("ENA", 360, 42.49, 124.3),
    ("BNB", 304, 2.65, 36.0),
    ("IP", 270, 9.35, 73.3),
    ("LINK", 259, 21.52, 54.4),
    ("TRUMP", 255, 3.47, 231.2),
    ("DOGE", 249, 16.49, 78.0),
    ("WLD", 232, 4.15, 184.9),
    ("ADA", 221, 2.83, 68.2),
    ("MNT", 211, 10.12, 40.7),
    ("WIF", 201, 2.10, 195.6),
    ("LTC", 197, 21.13, 33.0),
    ("CRV", 188, 4.84, 108.9),
    ("HBAR", 186, 4.06, 62.8),
    ("LINEA", 186, 5.37, 82.6),
    ("ZORA", 180, 1.16, 39.6),
    ("UNI", 172, 8.00, 95.5),
    ("PURR", 168, 3.00, 76.2),
    ("TAO", 167, 8.66, 67.2),
    ("ZRO", 166, 4.29, 75.6),
    ("kPEPE", 166, 4.05, 145.3),
    ("ARB", 156, 1.64, 170.3),
    ("LAUNCHCOIN", 155, 3.66, 64.4),
    ("POPCAT", 150, 1.84, 141.2),
    ("kBONK", 144, 5.54, 167.6),
    ("STRK", 143, 2.23, 82.7),
]
BUILTIN_TOTAL_EVENTS = 34_983
BUILTIN_TOTAL_NOTIONAL = 2_103_111_431.0
#: quantiles (1,5,10,25,50,75,90,95,99) of per-user pnl_percent and leverage_realtime (19,337 users)
QUANTILE_LEVELS = (1, 5, 10, 25, 50, 75, 90, 95, 99)
BUILTIN_PNL_PCT_Q = (2.325, 9.687, 13.077, 24.82, 46.893, 92.374, 167.658, 208.569, 361.152)
BUILTIN_LEVERAGE_Q = (0.003, 0.006, 0.053, 0.161, 0.434, 0.989, 3.236, 6.496, 135.033)
BUILTIN_PARTIAL_FRACTION = 0.0735
BUILTIN_FIRST_ADL_DELAY_S = 61.70

REAL_SUBDIR = "HyperMultiAssetedADL"


def default_real_root() -> Path:
    """``<project root>/../shared/realdata`` (overridable with ``LIQF_REALDATA``)."""
    env = os.environ.get("LIQF_REALDATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "realdata"


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def load_real(root: str | Path | None = None) -> dict[str, Any] | None:
    """Real Oct-10 aggregates, or ``None`` when the files are absent."""
    base = Path(root) if root else default_real_root()
    canon = base / REAL_SUBDIR / "canonical"
    coin_f, user_f = canon / "adl_by_coin_REALTIME.csv", canon / "adl_by_user_REALTIME.csv"
    if not (coin_f.exists() and user_f.exists()):
        return None
    coins = _read_csv(coin_f)
    coins.sort(key=lambda r: (-int(r["num_events"]), r["coin"]))
    users = _read_csv(user_f)
    return {
        "source": str(canon),
        "coins": [
            (r["coin"], int(r["num_events"]), float(r["adl_notional"]) / 1e6, float(r["pnl_percent"])) for r in coins
        ],
        "pnl_percent": np.array([float(r["pnl_percent"]) for r in users]),
        "leverage": np.array([float(r["leverage_realtime"]) for r in users]),
        "partial_fraction": BUILTIN_PARTIAL_FRACTION,
        "first_adl_delay_s": BUILTIN_FIRST_ADL_DELAY_S,
    }


def coin_table(n_coins: int, real: dict[str, Any] | None) -> list[tuple[str, int, float, float]]:
    """(name, events, notional $M, PnL%) for the ``n_coins`` most ADL'd coins; synthetic tail if needed."""
    rows = list(real["coins"]) if real else list(BUILTIN_COINS)
    rows = rows[:n_coins]
    k = len(rows)
    while len(rows) < n_coins:  # power-law tail continuing the table
        i = len(rows) + 1
        ev = max(1, int(rows[k - 1][1] * (k / i) ** 1.3))
        rows.append((f"SYN{i:03d}", ev, max(0.05, rows[k - 1][2] * (k / i) ** 1.5), 80.0))
    return rows


def ks_report(
    sim: dict[str, np.ndarray],
    real: dict[str, Any] | None,
    coin_names: list[str],
    sim_coin_events: np.ndarray,
    sim_coin_notional: np.ndarray,
    partial_fraction: float,
    first_adl_delay_s: float | None,
) -> dict[str, Any]:
    """Two-sample KS distances of simulated marginals vs the real ones (``None`` without real data)."""
    out: dict[str, Any] = {
        "real_data": bool(real),
        "partial_fraction": {"sim": partial_fraction, "real": BUILTIN_PARTIAL_FRACTION},
        "first_adl_delay_s": {"sim": first_adl_delay_s, "real": BUILTIN_FIRST_ADL_DELAY_S},
    }
    if not real:
        out["note"] = "real data absent: KS distances not computed"
        return out
    # heavy (scipy.stats): only when real data is there to compare against
    from scipy.stats import ks_2samp

    def ks(a: np.ndarray, b: np.ndarray) -> dict[str, float] | None:
        a = a[np.isfinite(a)]
        if len(a) < 2:
            return None
        r = ks_2samp(a, b)
        return {"statistic": float(r.statistic), "pvalue": float(r.pvalue), "n_sim": int(len(a)), "n_real": int(len(b))}

    out["pnl_percent"] = ks(sim["pnl_percent"], real["pnl_percent"])
    out["leverage"] = ks(sim["leverage"], real["leverage"])
    real_map = {r[0]: (r[1], r[2]) for r in real["coins"]}
    rev = np.array([real_map.get(c, (0, 0.0))[0] for c in coin_names], dtype=float)
    rnt = np.array([real_map.get(c, (0, 0.0))[1] for c in coin_names], dtype=float)

    def share(x: np.ndarray) -> np.ndarray:
        s = x.sum()
        return x / s if s > 0 else x

    out["coin_event_share"] = ks(share(sim_coin_events.astype(float)), share(rev))
    out["coin_notional_share"] = ks(share(sim_coin_notional.astype(float)), share(rnt))
    out["coin_event_share_l1"] = float(np.abs(share(sim_coin_events.astype(float)) - share(rev)).sum())
    out["coin_notional_share_l1"] = float(np.abs(share(sim_coin_notional.astype(float)) - share(rnt)).sum())
    return out
