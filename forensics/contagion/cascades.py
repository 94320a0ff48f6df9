"""Threshold cascades: Furfine (2003) sequential defaults and the Gai-Kapadia (2010) solvency test.

Both are diagnostics next to the clearing: a node fails when its losses on failed counterparties
(exposure x loss given default) exceed its net worth; there is no partial payment, so losses are
larger than Eisenberg-Noe's (zero recovery is Rogers-Veraart with alpha = beta = 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike


@dataclass(frozen=True)
class Cascade:
    default_round: np.ndarray  # 0 = survives, k >= 1 = failure round
    net_worth: np.ndarray  # before any loss
    losses: np.ndarray  # losses on failed counterparties at the end

    @property
    def defaulted(self) -> np.ndarray:
        return self.default_round > 0


def furfine(
    liabilities: ArrayLike,
    external_assets: ArrayLike,
    *,
    external_liabilities: ArrayLike | None = None,
    recovery: float = 0.0,
    initially_failed: ArrayLike | None = None,
) -> Cascade:
    """Rounds: first the nodes with negative net worth (or ``initially_failed``), then every node whose
    loss ``(1 - recovery) x sum of its claims on failed nodes`` exceeds its net worth."""
    L = sp.csr_matrix(liabilities, dtype=float)
    n = L.shape[0]
    e = np.asarray(external_assets, dtype=float)
    el = np.zeros(n) if external_liabilities is None else np.asarray(external_liabilities, dtype=float)
    owed = np.asarray(L.sum(axis=1)).ravel()
    claims = np.asarray(L.sum(axis=0)).ravel()
    worth = e + claims - el - owed
    rounds = np.zeros(n, dtype=int)
    failed = worth < 0 if initially_failed is None else np.asarray(initially_failed, bool).copy()
    rounds[failed] = 1
    A = L.T.tocsr()  # A[i, j] = i's claim on j
    k = 1
    while True:
        loss = (1 - recovery) * (A @ failed.astype(float))
        new = ~failed & (worth < loss)
        if not new.any():
            return Cascade(rounds, worth, loss)
        k += 1
        rounds[new] = k
        failed |= new


def gai_kapadia(
    liabilities: ArrayLike,
    illiquid_assets: ArrayLike,
    *,
    deposits: ArrayLike | None = None,
    liquid_assets: ArrayLike | None = None,
    price: float = 1.0,
    initially_failed: ArrayLike | None = None,
) -> Cascade:
    """Gai-Kapadia: i is solvent iff (1 - phi_i) A_i^IB + q A_i^M + liquid - L_i^IB - D_i > 0, phi_i the
    exposure-weighted share of its interbank claims on failed nodes (zero recovery), q the resale price."""
    L = sp.csr_matrix(liabilities, dtype=float)
    n = L.shape[0]
    ext = price * np.asarray(illiquid_assets, dtype=float) + (
        0 if liquid_assets is None else np.asarray(liquid_assets, float)
    )
    return furfine(
        L,
        ext,
        external_liabilities=np.zeros(n) if deposits is None else deposits,
        recovery=0.0,
        initially_failed=initially_failed,
    )


def gk_vulnerable(liabilities: ArrayLike, capital: ArrayLike) -> np.ndarray:
    """Nodes one neighbour's default can topple: capital / interbank assets < 1 / number of debtors."""
    L = sp.csr_matrix(liabilities, dtype=float)
    claims = np.asarray(L.sum(axis=0)).ravel()
    debtors = np.asarray((L.T.tocsr() > 0).sum(axis=1)).ravel()
    with np.errstate(divide="ignore", invalid="ignore"):
        return (claims > 0) & (
            np.asarray(capital, float) / np.where(claims > 0, claims, 1) < 1.0 / np.maximum(debtors, 1)
        )
