"""Pools held as a table (the ``adl_pools`` layout, hand-built pools, other venues' pools): the columns the
audit reads, their feature rows for :mod:`forensics.audit.kernel`, the marks' uncertainty, and every ordering
rule's score as columns (for reports, diagnostics and counterfactual queues)."""

from __future__ import annotations

import numpy as np
import polars as pl

from forensics.compiled import njit

from . import kernel as K
from .rules import CYCLIC, ORDERING_RULES, Rule

# Mark uncertainty, relative: venue marks are published to five significant digits (half a unit of the fifth
# digit either way); a mark that had to be taken from a trade can be off by a few basis points.
PUBLISHED_MARK_SOURCES = ("asset_ctxs", "adl_mark")
TRADE_MARK_UNCERTAINTY = 2e-3


# Hyperliquid prints prices with at most five significant figures and at most 6 - szDecimals decimals (perps)
PRICE_DECIMALS = 6


def half_tick(mark: np.ndarray, sz_decimals: np.ndarray | None = None) -> np.ndarray:
    """Half the price step a published mark was rounded to, relative to the mark: the fifth significant digit,
    or the last decimal the coin may print (``6 - szDecimals``) when that is coarser (low-priced coins)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        m = np.abs(mark)
        step = 10.0 ** (np.floor(np.log10(m)) - 4)
        if sz_decimals is not None:
            sd = np.asarray(sz_decimals, dtype=np.float64)
            step = np.where(np.isfinite(sd) & (sd >= 0), np.fmax(step, 10.0 ** (sd - PRICE_DECIMALS)), step)
        return 0.5 * step / m


def mark_tolerance(mark: np.ndarray, published: np.ndarray, sz_decimals: np.ndarray | None = None) -> np.ndarray:
    """Relative uncertainty of each mark: half its price step when the venue published it, else a trade's."""
    tol = np.where(published, half_tick(mark, sz_decimals), TRADE_MARK_UNCERTAINTY)
    return np.where(np.isfinite(tol), tol, TRADE_MARK_UNCERTAINTY)


_OPTIONAL = {
    "side": pl.Utf8,
    "state_note": pl.Utf8,
    "state_detail": pl.Utf8,
    "skip_reason": pl.Utf8,
    "mark_source": pl.Utf8,
    "lot_size": pl.Float64,
    "fill_order": pl.Int32,
    "margin_leverage": pl.Float64,
    "mark_px": pl.Float64,
    "account_maintenance_margin_usd": pl.Float64,
    "effective_leverage": pl.Float64,
    "pnl_pct_margin": pl.Float64,
    "wallet_balance_usd": pl.Float64,
    "entry_px": pl.Float64,
    "maintenance_margin_usd": pl.Float64,
    "upnl_usd": pl.Float64,
    "account_value_usd": pl.Float64,
    "notional_usd": pl.Float64,
    "leverage": pl.Float64,
}


def with_pool_columns(pools: pl.DataFrame) -> pl.DataFrame:
    """``pools`` with every column the audit reads (NULL where a hand-built or foreign pool lacks it)."""
    extra = [pl.lit(None, t).alias(c) for c, t in _OPTIONAL.items() if c not in pools.columns]
    pools = pools.with_columns(extra)
    more = []
    if "account_gap" not in pools.columns:
        more.append(pl.lit(False).alias("account_gap"))
    if "partial" not in pools.columns:
        more.append((pl.col("selected") & (pl.col("closed_size") < pl.col("size") * (1 - 1e-12))).alias("partial"))
    if "coin" not in pools.columns:
        more.append(pl.lit("").alias("coin"))
    return pools.with_columns(more) if more else pools


def feature_matrix(frame: pl.DataFrame, tol: np.ndarray | None = None) -> np.ndarray:
    """The kernel's feature rows of pool rows held as a table (values as given; intervals from the mark's
    published precision only)."""
    f = lambda e: frame.select((pl.col(e) if isinstance(e, str) else e).cast(pl.Float64)).to_series().to_numpy()  # noqa: E731
    F = np.zeros((K.N_FEATURES, frame.height))
    F[K.SIZE], F[K.ENTRY], F[K.MARK] = f("size"), f("entry_px"), f("mark_px")
    F[K.SIGN] = np.where(frame["side"].to_numpy() == "long", 1.0, -1.0)
    F[K.NOTIONAL], F[K.UPNL], F[K.AV] = f("notional_usd"), f("upnl_usd"), f("account_value_usd")
    F[K.WALLET], F[K.LEV] = f("wallet_balance_usd"), f("leverage")
    F[K.EFF_LEV] = f(pl.col("effective_leverage").fill_null(pl.col("leverage")))
    F[K.MM] = f("maintenance_margin_usd")
    F[K.ACCT_MM] = f(pl.col("account_maintenance_margin_usd").fill_null(pl.col("maintenance_margin_usd")))
    F[K.PNL_MARGIN], F[K.MARGIN_LEV] = f("pnl_pct_margin"), f("margin_leverage")
    if tol is None:
        tol = np.zeros(frame.height)
    F[K.F_LO], F[K.F_HI] = 1.0 - tol, 1.0 + tol
    return F


@njit(cache=True)
def _keys(code: int, F: np.ndarray) -> np.ndarray:
    out = np.empty((3, F.shape[1]))
    for i in range(F.shape[1]):
        out[0, i], out[1, i], out[2, i] = K.rule_key(code, F, i, 1.0, 0.0, 0.0)
    return out


def score_pools(pools: pl.DataFrame, rules: list[Rule] | None = None) -> pl.DataFrame:
    """Add a ``score_<rule>`` column per ordering rule (higher = deleveraged first; non-finite = -inf). The
    lexicographic rule's score is its dense rank within the step; the cyclic walk's a hash of the address
    (its counterfactual queue)."""
    pools = with_pool_columns(pools)
    F = feature_matrix(pools)
    cols = []
    for r in rules or ORDERING_RULES:
        if r.kind == CYCLIC:
            cols.append(pools.select(pl.col("user").hash(7).cast(pl.Float64)).to_series().alias(f"score_{r.name}"))
            continue
        k = _keys(r.code, F)
        s = pl.Series(f"score_{r.name}", k[0])
        if r.code == K.LEXICOGRAPHIC:
            keyed = pools.select("step_id").with_columns(
                pl.Series("_a", k[0]), pl.Series("_b", k[1]), pl.Series("_c", k[2])
            )
            s = keyed.select(
                pl.struct("_a", "_b", "_c").rank("dense").over("step_id").cast(pl.Float64).alias(s.name)
            ).to_series()
        cols.append(s)
    return pools.with_columns(cols)
