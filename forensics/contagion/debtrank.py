"""DebtRank: original (Battiston et al. 2012, each node propagates once), linear (Bardoscia et al.
2015, increments propagate) and non-linear (Bardoscia et al. 2016, p(h) = h exp(alpha (h - 1))).

``assets[i, j]`` = i's claim on j; ``equity`` = each node's buffer E_i(0) > 0; distress h in [0, 1] is
the relative equity loss; ``weights`` are economic weights (normalised to sum 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike


@dataclass(frozen=True)
class DebtRank:
    h: np.ndarray  # final distress per node
    h_initial: np.ndarray
    additional: float  # sum v h(T) - sum v h(1)
    extra_defaults: int  # nodes at h = 1 that were not at 1 initially
    steps: int


def _leverage(assets: ArrayLike, equity: ArrayLike) -> np.ndarray:
    A = np.asarray(assets, dtype=float)
    E = np.asarray(equity, dtype=float)
    if np.any(E <= 0):
        raise ValueError("DebtRank needs positive initial equity for every node")
    return A / E[:, None]


def _result(h: np.ndarray, h1: np.ndarray, weights: ArrayLike, steps: int) -> DebtRank:
    v = np.asarray(weights, float)
    v = v / v.sum()
    return DebtRank(h, h1, float(v @ h - v @ h1), int(np.sum((h >= 1 - 1e-12) & (h1 < 1 - 1e-12))), steps)


def original(assets: ArrayLike, equity: ArrayLike, weights: ArrayLike, shock: ArrayLike) -> DebtRank:
    """Undistressed -> Distressed -> Inactive; impact W[i, j] = min(1, A[i, j] / E_i); a node spreads its
    distress once (the step after it becomes distressed) but keeps receiving."""
    W = np.minimum(1.0, _leverage(assets, equity))
    h1 = np.clip(np.asarray(shock, float), 0, 1)
    h = h1.copy()
    distressed = h > 0
    inactive = np.zeros_like(distressed)
    steps = 0
    while distressed.any():
        steps += 1
        h_new = np.minimum(1.0, h + W @ np.where(distressed, h, 0.0))
        inactive |= distressed
        distressed = (h_new > 0) & ~inactive
        h = h_new
    return _result(h, h1, weights, steps)


def linear(
    assets: ArrayLike,
    equity: ArrayLike,
    weights: ArrayLike,
    shock: ArrayLike,
    *,
    max_steps: int = 10_000,
    tol: float = 1e-14,
) -> DebtRank:
    """h(t+1) = min(1, h(t) + Lambda (h(t) - h(t-1))), Lambda = A / E(0)."""
    lam = _leverage(assets, equity)
    h1 = np.clip(np.asarray(shock, float), 0, 1)
    prev, h = np.zeros_like(h1), h1.copy()
    for step in range(1, max_steps + 1):
        nxt = np.minimum(1.0, h + lam @ (h - prev))
        prev, h = h, nxt
        if np.max(np.abs(h - prev)) <= tol:
            return _result(h, h1, weights, step)
    return _result(h, h1, weights, max_steps)


def nonlinear(
    assets: ArrayLike,
    equity: ArrayLike,
    weights: ArrayLike,
    shock: ArrayLike,
    *,
    alpha: float = 0.0,
    max_steps: int = 10_000,
    tol: float = 1e-14,
) -> DebtRank:
    """h(t+1) = min(1, h(1) + Lambda p(h(t))), p(h) = h exp(alpha (h - 1)); alpha = 0 is linear DebtRank,
    large alpha approaches a Furfine cascade."""
    lam = _leverage(assets, equity)
    h1 = np.clip(np.asarray(shock, float), 0, 1)
    h = h1.copy()
    for step in range(1, max_steps + 1):
        nxt = np.minimum(1.0, h1 + lam @ (h * np.exp(alpha * (h - 1))))
        nxt = np.maximum(nxt, h)
        if np.max(np.abs(nxt - h)) <= tol:
            return _result(nxt, h1, weights, step)
        h = nxt
    return _result(h, h1, weights, max_steps)


def spectral_radius(assets: ArrayLike, equity: ArrayLike) -> float:
    """lambda_max of the leverage matrix: < 1 is the stable regime of linear DebtRank."""
    return float(np.max(np.abs(np.linalg.eigvals(_leverage(assets, equity)))))
