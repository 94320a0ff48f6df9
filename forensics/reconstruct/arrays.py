"""Array helpers of the set-wise replay and pools: names as integer codes, lookups through code tables
instead of hash joins, and running quantities over rows sorted into runs (one run per key)."""

from __future__ import annotations

import numpy as np
import polars as pl


def codes(s: pl.Series) -> np.ndarray:
    """Integer codes of a string column (the process-wide categorical codes)."""
    return s.cast(pl.Categorical).to_physical().cast(pl.Int64).to_numpy()


def rows_of(keys: pl.Series, query: pl.Series) -> np.ndarray:
    """Per ``query`` name, the row of ``keys`` (unique names) holding it, -1 if none: a table indexed by the
    categorical codes instead of a hash join."""
    return position_in(codes(keys), codes(query))


def position_in(keys: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Per query, the index of the equal value in ``keys`` (unique, non-negative, small: codes), -1 if none."""
    table = np.full(max(keys.max(initial=-1), query.max(initial=-1)) + 1, -1, dtype=np.int64)
    table[keys] = np.arange(len(keys))
    return table[query]


def gather_or_null(values: pl.Series, rows: np.ndarray) -> pl.Series:
    """``values[rows]``, NULL where ``rows`` is -1."""
    idx = pl.select(pl.when(pl.Series(rows >= 0)).then(pl.Series(rows, dtype=pl.Int64))).to_series()
    return values.gather(idx)


def stable_argsort(keys: np.ndarray) -> np.ndarray:
    """``np.argsort(keys, kind="stable")``, a few times faster (polars radix-sorts integers)."""
    order = pl.DataFrame({"k": keys}).select(pl.arg_sort_by("k", maintain_order=True)).to_series()
    return order.cast(pl.Int64).to_numpy()


def run_starts(first: np.ndarray) -> np.ndarray:
    """Rows sorted into runs (``first`` marks each run's first row): the index of each row's run start."""
    return np.maximum.accumulate(np.where(first, np.arange(len(first)), 0))


def last_index(mask: np.ndarray) -> np.ndarray:
    """Index of the latest row at or before each row where ``mask`` holds (-1 if none)."""
    return np.maximum.accumulate(np.where(mask, np.arange(len(mask)), -1))


def run_sum(values: pl.Series, run_start: np.ndarray) -> pl.Series:
    """Exact running sum within runs of a decimal series: the global running sum minus its value before
    the run (decimals are exact integers underneath, so nothing cancels)."""
    v = values.fill_null(0)
    is_start = run_start == np.arange(len(run_start))
    if is_start.all():
        return v  # every run is one row
    total = v.cum_sum()
    starts = np.flatnonzero(is_start)
    before = total.gather(starts) - v.gather(starts)  # per run: the global sum before it
    return total - before.gather(np.cumsum(is_start) - 1)


def run_firsts(sorted_keys: np.ndarray) -> np.ndarray:
    """Rows sorted by key: True on each run's first row (where the key changes)."""
    first = np.ones(len(sorted_keys), dtype=bool)
    first[1:] = sorted_keys[1:] != sorted_keys[:-1]
    return first


def distinct_names(*columns: pl.Series) -> np.ndarray:
    """The sorted distinct names of string or categorical columns (distinct first, so millions of rows cost
    what their few distinct names cost; sorted by polars: code-point order, as numpy's)."""
    parts = [c.cast(pl.Utf8).drop_nulls().unique() for c in columns]
    if not parts:
        return np.zeros(0, dtype=str)
    return pl.concat(parts).unique().sort().to_numpy().astype(str)


def index_in(column: pl.Series, names: np.ndarray) -> np.ndarray:
    """Each row's index in ``names`` (-1 where absent or NULL), by a hash lookup of the names."""
    if not len(names):
        return np.full(len(column), -1, dtype=np.int64)
    return (
        column.cast(pl.Utf8)
        .replace_strict(
            pl.Series(names, dtype=pl.Utf8), pl.Series(np.arange(len(names))), default=-1, return_dtype=pl.Int64
        )
        .fill_null(-1)
        .to_numpy()
    )
