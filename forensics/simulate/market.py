"""Coin universe and per-block mark / oracle price paths (fat-tailed crash with partial rebound)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# name -> (pre-crash price, szDecimals, maxLeverage, crash beta)
KNOWN: dict[str, tuple[float, int, int, float]] = {
    "BTC": (117_250.0, 5, 40, 0.45),
    "ETH": (4_215.0, 4, 25, 0.62),
    "SOL": (212.4, 2, 20, 0.8),
    "HYPE": (41.25, 2, 10, 0.85),
    "XPL": (0.9412, 0, 10, 1.5),
    "FARTCOIN": (0.6932, 1, 10, 1.7),
    "PUMP": (0.005612, 0, 10, 1.7),
    "INJ": (11.85, 1, 10, 1.6),
    "RENDER": (3.412, 1, 10, 1.7),
    "XRP": (2.7351, 0, 20, 1.0),
    "SUI": (3.3125, 1, 10, 1.5),
    "ASTER": (1.6521, 0, 5, 1.6),
    "AVAX": (27.12, 2, 10, 1.4),
    "ZEC": (255.31, 2, 10, 0.9),
    "PENGU": (0.028431, 0, 5, 1.8),
    "ENA": (0.5621, 0, 10, 1.7),
    "BNB": (1_152.3, 3, 10, 0.8),
    "IP": (8.125, 1, 5, 1.8),
    "LINK": (21.43, 1, 10, 1.3),
    "TRUMP": (7.312, 1, 10, 1.5),
    "DOGE": (0.24612, 0, 10, 1.3),
    "WLD": (1.2531, 1, 10, 1.9),
    "ADA": (0.8012, 0, 10, 1.3),
    "MNT": (2.0512, 1, 5, 1.6),
    "WIF": (0.7112, 0, 10, 1.7),
    "LTC": (126.21, 2, 10, 1.0),
    "CRV": (0.7251, 1, 10, 1.6),
    "HBAR": (0.2212, 0, 5, 1.5),
    "LINEA": (0.02612, 0, 5, 1.8),
    "ZORA": (0.08215, 0, 5, 1.8),
    "UNI": (8.125, 1, 10, 1.4),
    "PURR": (0.2112, 0, 3, 1.5),
    "TAO": (412.5, 3, 5, 1.3),
    "ZRO": (1.9215, 1, 5, 1.6),
    "kPEPE": (0.009912, 0, 10, 1.6),
    "ARB": (0.4312, 1, 10, 1.6),
    "LAUNCHCOIN": (0.12512, 0, 3, 1.8),
    "POPCAT": (0.2112, 0, 10, 1.8),
    "kBONK": (0.019612, 0, 10, 1.6),
    "STRK": (0.1612, 1, 5, 1.7),
}

# Crash profile in log-price units per unit beta: (seconds after crash start, level).
CRASH_KNOTS = np.array(
    [
        (0.0, 0.0),
        (3.0, -0.02),
        (20.0, -0.035),
        (40.0, -0.05),
        (58.0, -0.06),
        (61.0, -0.07),
        (61.05, -0.25),
        (80.0, -0.22),
        (110.0, -0.24),
        (112.5, -0.25),
        (112.55, -0.31),
        (120.0, -0.28),
        (121.5, -0.29),
        (121.55, -0.35),
        (150.0, -0.31),
        (170.0, -0.32),
        (170.05, -0.39),
        (230.0, -0.31),
        (300.0, -0.26),
        (420.0, -0.22),
        (560.0, -0.19),
        (900.0, -0.17),
    ]
)


@dataclass
class Universe:
    names: list[str]
    sz_decimals: np.ndarray  # int
    max_leverage: np.ndarray  # int
    price0: np.ndarray
    beta: np.ndarray
    weight_events: np.ndarray  # calibration weight (share of ADL events)
    weight_notional: np.ndarray  # share of ADL notional
    pnl_target: np.ndarray  # mean PnL% of ADL'd positions (calibrates short entries)

    @property
    def n(self) -> int:
        return len(self.names)


def make_universe(table: list[tuple[str, int, float, float]], rng: np.random.Generator) -> Universe:
    names, szd, lev, p0, beta = [], [], [], [], []
    for name, *_ in table:
        if name in KNOWN:
            p, d, l, b = KNOWN[name]  # noqa: E741 (price, decimals, leverage, base)
        else:
            p = float(10 ** rng.uniform(-2.0, 2.0))
            p = float(f"{p:.5g}")
            d = int(np.clip(np.floor(np.log10(p)) + 1, 0, 3))
            l = int(rng.choice([3, 5, 10]))  # noqa: E741
            b = float(rng.uniform(1.2, 1.9))
        names.append(name)
        szd.append(d)
        lev.append(l)
        p0.append(p)
        beta.append(b)
    ev = np.array([t[1] for t in table], dtype=float)
    nt = np.array([t[2] for t in table], dtype=float)
    return Universe(
        names,
        np.array(szd),
        np.array(lev),
        np.array(p0),
        np.array(beta),
        ev / ev.sum(),
        nt / nt.sum(),
        np.array([t[3] for t in table], dtype=float),
    )


def block_times(rng: np.random.Generator, start_ns: int, duration_s: float) -> np.ndarray:
    """Block times in ns, gaps uniform 70-100 ms with ns jitter."""
    n = int(duration_s / 0.085) + 64
    gaps = rng.integers(70_000_000, 100_000_000, size=n)
    t = start_ns + np.cumsum(gaps) - gaps[0]
    return t[t <= start_ns + int(duration_s * 1e9)]


def crash_level(t_rel_s: np.ndarray) -> np.ndarray:
    return np.interp(t_rel_s, CRASH_KNOTS[:, 0], CRASH_KNOTS[:, 1], left=0.0)


def price_paths(
    rng: np.random.Generator, uni: Universe, t_ns: np.ndarray, crash_start_ns: int
) -> tuple[np.ndarray, np.ndarray]:
    """(mark, oracle) arrays of shape (blocks, coins): beta x crash profile + correlated t(3) noise."""
    nb, m = len(t_ns), uni.n
    t_rel = (t_ns - crash_start_ns) / 1e9
    dt = np.diff(t_ns, prepend=t_ns[0]) / 1e9
    volmult = np.where((t_rel > 0) & (t_rel < 260), 3.5, 1.0)
    scale = np.sqrt(dt) * volmult
    t3 = np.sqrt(1.0 / 3.0)
    f = rng.standard_t(3, size=nb) * t3 * 0.0005 * scale
    e = rng.standard_t(3, size=(nb, m)) * t3 * 0.0006 * scale[:, None]
    logp = (
        np.log(uni.price0)[None, :]
        + uni.beta[None, :] * crash_level(t_rel)[:, None]
        + np.cumsum(f[:, None] * uni.beta[None, :] + e, axis=0)
    )
    mark = np.exp(logp)
    oracle = mark * np.exp(rng.normal(0.0, 0.0003, size=(nb, m)))
    return mark, oracle


def round_px(x: np.ndarray | float, szd: np.ndarray | int) -> np.ndarray:
    """Hyperliquid price rule: at most 5 significant figures and at most ``6 - szDecimals`` decimals;
    integers always allowed."""
    x = np.asarray(x, dtype=float)
    szd = np.asarray(szd)
    mag = np.floor(np.log10(np.maximum(np.abs(x), 1e-12)))
    dec = np.minimum(4 - mag, 6 - szd)
    dec = np.maximum(dec, 0).astype(int)
    return np.round(x * 10.0**dec) / 10.0**dec


def round_px1(x: float, szd: int) -> float:
    """Scalar :func:`round_px`."""
    if x <= 0:
        return x
    dec = max(0, min(4 - math.floor(math.log10(x)), 6 - szd))
    return round(x, dec)


def px_decimals(x: float, szd: int) -> int:
    mag = int(np.floor(np.log10(max(abs(x), 1e-12))))
    return int(max(0, min(4 - mag, 6 - szd)))
