"""Mark prices at given instants: as-of lookups over the venue's own marks, last trade as the fallback, and
how far each mark may have moved while its published value was current.

Observations per coin: ``asset_ctxs.mark_px`` (source ``asset_ctxs``) and ``liquidation.markPx`` of
liquidation / ADL legs (source ``adl_mark``). The latest observation at or before the instant wins;
at equal times the asset context wins. Coins with no mark observation up to the instant use the last
trade price before it (``last_trade``).

Coins are integer codes into a sorted array of names (:func:`coin_codes`): lookups for every (action, coin)
of a cascade are millions of binary searches in compiled code, never a frame of strings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from forensics.compiled import njit

from .arrays import index_in as coin_codes

SOURCES = ("asset_ctxs", "adl_mark", "last_trade")


def mark_observations(fills: pl.DataFrame, asset_ctxs: pl.DataFrame | None) -> pl.DataFrame:
    """(coin, t_ms, mark, mark_source, prio) sorted by (t_ms, prio)."""
    parts = []
    if asset_ctxs is not None and asset_ctxs.height:
        parts.append(
            asset_ctxs.select(
                pl.col("coin").cast(pl.Categorical),
                pl.col("time_ms").alias("t_ms"),
                pl.col("mark_px").cast(pl.Float64).alias("mark"),
            )
            .filter(pl.col("mark").is_not_null() & (pl.col("mark") > 0))
            .with_columns(pl.lit("asset_ctxs").alias("mark_source"), pl.lit(0).alias("prio"))
        )
    lm = (
        fills.filter(pl.col("liq_mark_f").is_not_null() & (pl.col("liq_mark_f") > 0))
        .group_by("coin", "time_ms")
        .agg(pl.col("liq_mark_f").sort_by("ord").last().alias("mark"))
        .select(pl.col("coin").cast(pl.Categorical), pl.col("time_ms").alias("t_ms"), "mark")
        .with_columns(pl.lit("adl_mark").alias("mark_source"), pl.lit(1).alias("prio"))
    )
    parts.append(lm)
    obs = pl.concat(parts, how="vertical_relaxed")
    # one observation per (coin, t): the highest priority
    obs = obs.sort(["coin", "t_ms", "prio"]).unique(["coin", "t_ms"], keep="first", maintain_order=True)
    return obs.sort("t_ms")


def _offsets(codes: np.ndarray, n: int) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=n))]).astype(np.int64)


@dataclass(frozen=True)
class MarkBook:
    """Observations and trades per coin code, sorted, as arrays (CSR by coin)."""

    coins: np.ndarray
    o_start: np.ndarray
    o_t: np.ndarray
    o_mark: np.ndarray
    o_source: np.ndarray  # index into SOURCES
    t_start: np.ndarray
    t_ord: np.ndarray
    t_ms: np.ndarray
    t_px: np.ndarray

    @classmethod
    def build(cls, obs: pl.DataFrame, fills: pl.DataFrame, coins: np.ndarray) -> MarkBook:
        oc = coin_codes(obs["coin"], coins)
        keep = oc >= 0
        o = (
            obs.filter(pl.Series(keep))
            .with_columns(
                pl.Series("_c", oc[keep]),
                pl.col("mark_source")
                .replace_strict({s: i for i, s in enumerate(SOURCES)}, return_dtype=pl.Int64)
                .alias("_s"),
            )
            .sort("_c", "t_ms", maintain_order=True)
        )
        tc = coin_codes(fills["coin"], coins)
        keep = tc >= 0
        tr = (
            fills.select("ord", "px_f", "time_ms")
            .filter(pl.Series(keep))
            .with_columns(pl.Series("_c", tc[keep]))
            .sort("_c", "ord")
        )
        n = len(coins)
        return cls(
            coins,
            _offsets(o["_c"].to_numpy(), n),
            o["t_ms"].to_numpy().astype(np.int64),
            o["mark"].to_numpy().astype(np.float64),
            o["_s"].to_numpy().astype(np.int64),
            _offsets(tr["_c"].to_numpy(), n),
            tr["ord"].to_numpy().astype(np.int64),
            tr["time_ms"].to_numpy().astype(np.int64),
            tr["px_f"].to_numpy().astype(np.float64),
        )

    def at(
        self, q_coin: np.ndarray, q_t: np.ndarray, q_ord: np.ndarray, max_mark_age_ms: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mark, source index, time of the observation used) per query (coin code, time, replay ord); NaN and
        the last-trade source where nothing is known. ``max_mark_age_ms``: an observation older than this
        gives way to a later trade."""
        mark = np.empty(len(q_t))
        source = np.empty(len(q_t), dtype=np.int64)
        used = np.empty(len(q_t), dtype=np.int64)
        _asof(
            q_coin.astype(np.int64),
            q_t.astype(np.int64),
            q_ord.astype(np.int64),
            self.o_start,
            self.o_t,
            self.o_mark,
            self.o_source,
            self.t_start,
            self.t_ord,
            self.t_ms,
            self.t_px,
            int(max_mark_age_ms or 0),
            max_mark_age_ms is not None,
            mark,
            source,
            used,
        )
        return mark, source, used


@njit(cache=True)
def _asof(
    q_coin: np.ndarray,
    q_t: np.ndarray,
    q_ord: np.ndarray,
    o_start: np.ndarray,
    o_t: np.ndarray,
    o_mark: np.ndarray,
    o_source: np.ndarray,
    t_start: np.ndarray,
    t_ord: np.ndarray,
    t_ms: np.ndarray,
    t_px: np.ndarray,
    max_age: int,
    has_age: bool,
    mark: np.ndarray,
    source: np.ndarray,
    used: np.ndarray,
) -> None:
    """Per query: the coin's latest observation at or before t; where it is missing (or older than
    ``max_age`` with a later trade) the coin's latest trade strictly before ord."""
    for k in range(len(q_t)):
        c = q_coin[k]
        mark[k] = np.nan
        source[k] = 2
        used[k] = q_t[k]
        if c < 0:
            continue
        a, b = o_start[c], o_start[c + 1]
        j = np.searchsorted(o_t[a:b], q_t[k], side="right") + a - 1
        x, y = t_start[c], t_start[c + 1]
        r = np.searchsorted(t_ord[x:y], q_ord[k], side="left") + x - 1
        if j >= a:
            mark[k] = o_mark[j]
            source[k] = o_source[j]
            used[k] = o_t[j]
            if r >= x and has_age and q_t[k] - o_t[j] > max_age and t_ms[r] > o_t[j]:
                mark[k] = t_px[r]
                source[k] = 2
                used[k] = t_ms[r]
        elif r >= x:
            mark[k] = t_px[r]
            used[k] = t_ms[r]


def marks_at(
    instants: pl.DataFrame, obs: pl.DataFrame, fills: pl.DataFrame, *, max_mark_age_ms: int | None = None
) -> pl.DataFrame:
    """``instants``: (coin, t_ms, ord) rows; returns them (same order) with ``mark`` and ``mark_source``.

    ``ord`` bounds the last-trade fallback to fills strictly before the instant in replay order.
    ``max_mark_age_ms``: a mark observation older than this is replaced by a later last trade, when
    there is one (``None``: marks never go stale, the last trade is used only where no mark exists)."""
    coins = np.unique(instants["coin"].cast(pl.Utf8).drop_nulls().unique().to_numpy().astype(str))
    book = MarkBook.build(obs, fills, coins)
    mark, source, _ = book.at(
        coin_codes(instants["coin"], coins),
        instants["t_ms"].cast(pl.Int64).to_numpy(),
        instants["ord"].cast(pl.Int64).to_numpy(),
        max_mark_age_ms,
    )
    known = ~np.isnan(mark)
    return instants.with_columns(
        pl.Series("mark", mark).fill_nan(None),
        pl.Series("mark_source", np.where(known, np.array(SOURCES)[source], None), dtype=pl.Utf8),
    )


@njit(cache=True)
def _path_hull(
    q_coin: np.ndarray,
    q_t: np.ndarray,
    q_used: np.ndarray,
    q_mark: np.ndarray,
    start: np.ndarray,
    t: np.ndarray,
    px: np.ndarray,
    p_start: np.ndarray,
    p_t: np.ndarray,
    p_px: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
) -> None:
    """Per query (coin, t, time of the observation used, its mark): the lowest and highest price observed from
    that observation to t and the first one after t (the path the mark took), widened by how far the coin's
    published mark moved between publications around t, scaled to the time elapsed (a path between sparse
    observations wanders beyond them). A mark observed at t itself did not move."""
    for k in range(len(q_t)):
        lo[k] = np.nan
        hi[k] = np.nan
        c = q_coin[k]
        if c < 0 or q_used[k] >= q_t[k] or np.isnan(q_mark[k]):
            continue
        lo[k] = q_mark[k]
        hi[k] = q_mark[k]
        a, b = start[c], start[c + 1]
        i = np.searchsorted(t[a:b], q_used[k], side="left") + a
        while i < b and t[i] <= q_t[k]:
            lo[k] = min(lo[k], px[i])
            hi[k] = max(hi[k], px[i])
            i += 1
        if i < b:  # the first observation after t
            lo[k] = min(lo[k], px[i])
            hi[k] = max(hi[k], px[i])
        # the largest move between consecutive publications around t, times sqrt(elapsed / interval)
        x, y = p_start[c], p_start[c + 1]
        if y - x < 2:
            continue
        j = np.searchsorted(p_t[x:y], q_t[k], side="right") + x
        move = 0.0
        span = 0
        total = 0
        for r in range(max(j - WINDOW_PUBLICATIONS, x + 1), min(j + 1, y)):
            move = max(move, abs(p_px[r] - p_px[r - 1]))
            total += p_t[r] - p_t[r - 1]
            span += 1
        if span == 0:
            continue
        interval = total / span
        scale = min(1.0, np.sqrt((q_t[k] - q_used[k]) / interval)) if interval > 0 else 1.0
        lo[k] = min(lo[k], q_mark[k] - move * scale)
        hi[k] = max(hi[k], q_mark[k] + move * scale)


#: publications around an instant whose largest move bounds an unobserved path
WINDOW_PUBLICATIONS = 8


def mark_intervals(
    q_coin: np.ndarray,
    q_t: np.ndarray,
    q_used: np.ndarray,
    q_mark: np.ndarray,
    fills: pl.DataFrame,
    asset_ctxs: pl.DataFrame | None,
    coins: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """How far each coin's mark may have moved from the value it was read at, per query (coin code, time, time
    of the observation used, the mark): the range of the prices observed along the way (the venue's marks, the
    liquidation marks of fills, ordinary trades) up to the first one after the query, widened by the coin's
    moves between publications around it, as (low, high) arrays (NaN where the mark was observed at the
    instant). Marks are published once per second by the node, once per minute by the archive, while an
    account's value moves with every coin it holds."""
    n = len(coins)
    parts = []
    pub = pl.DataFrame(schema={"_c": pl.Int64, "time_ms": pl.Int64, "px": pl.Float64})
    if asset_ctxs is not None and asset_ctxs.height:
        pub = asset_ctxs.select(
            pl.Series("_c", coin_codes(asset_ctxs["coin"], coins)),
            pl.col("time_ms").cast(pl.Int64),
            pl.col("mark_px").cast(pl.Float64).alias("px"),
        )
        pub = pub.filter((pl.col("_c") >= 0) & pl.col("px").is_finite()).unique(["_c", "time_ms"]).sort("_c", "time_ms")
        parts.append(pub)
    fc = pl.Series("_c", coin_codes(fills["coin"], coins))
    parts.append(fills.select(fc, pl.col("time_ms").cast(pl.Int64), pl.col("liq_mark_f").alias("px")))
    parts.append(
        fills.select(
            fc,
            pl.col("time_ms").cast(pl.Int64),
            pl.col("px_f").alias("px"),
            pl.col("liq_mark_f").is_null().alias("_plain"),
            "is_adl",
        )
        .filter(pl.col("_plain") & ~pl.col("is_adl"))
        .drop("_plain", "is_adl")
    )
    obs = (
        pl.concat(parts)
        .filter((pl.col("_c") >= 0) & pl.col("px").is_finite() & (pl.col("px") > 0))
        .sort("_c", "time_ms")
    )
    lo, hi = np.empty(len(q_t)), np.empty(len(q_t))
    _path_hull(
        q_coin.astype(np.int64),
        q_t.astype(np.int64),
        q_used.astype(np.int64),
        q_mark.astype(np.float64),
        _offsets(obs["_c"].to_numpy(), n),
        obs["time_ms"].to_numpy(),
        obs["px"].to_numpy(),
        _offsets(pub["_c"].to_numpy(), n),
        pub["time_ms"].to_numpy(),
        pub["px"].to_numpy(),
        lo,
        hi,
    )
    return lo, hi
