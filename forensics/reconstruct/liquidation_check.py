"""Check the node's liquidation summaries against the replay (never an override).

Each ``liquidation_events`` row reports ``accountValue`` when the account was liquidated: the cross
account value (Isolated: the liquidated position's equity). The replay's value at the same instant (just
before the event's block's fills, after its misc events) is wallet (minus isolated margins) plus the
unrealized PnL of the account's cross positions at the marks of that instant (Isolated: the position's
isolated margin plus its unrealized PnL). Returns one row per event with both values and the error.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from .cash import place_in_fills
from .marks import mark_observations, marks_at


def check_liquidations(
    state: dict[str, pl.DataFrame],
    liquidations: pl.DataFrame,
    asset_ctxs: pl.DataFrame | None = None,
    *,
    before_fills: bool = True,
    max_mark_age_ms: int | None = None,
) -> pl.DataFrame:
    """``state``: :func:`forensics.reconstruct.build_state` output; ``liquidations``: ``liquidation_events`` rows.
    Columns: user, block_number, time_ms, leverage_type, reported, replayed, error (replayed - reported),
    rel_error; ``replayed`` NULL when the replay has no snapshot wallet for the user."""
    f, ev, wallets = state["fills"], state["events"], state["wallets"]
    out_schema = {
        "user": pl.Utf8,
        "block_number": pl.Int64,
        "time_ms": pl.Int64,
        "leverage_type": pl.Utf8,
        "reported": pl.Float64,
        "replayed": pl.Float64,
        "error": pl.Float64,
        "rel_error": pl.Float64,
    }
    if liquidations is None or liquidations.height == 0 or f.height == 0:
        return pl.DataFrame(schema=out_schema)
    by_block = f["block_number"].null_count() == 0
    liq = liquidations.select(
        pl.col("user").cast(pl.Categorical),
        pl.col("block_number").cast(pl.Int64),
        pl.col("time_ms").cast(pl.Int64),
        "leverage_type",
        pl.col("account_value").cast(pl.Float64).alias("reported"),
        "liquidated_positions",
    )
    # the instant: after the fill the event follows; K = the next fill's ord
    liq = liq.with_columns(pl.Series("K", place_in_fills(liq, f, by_block=by_block, before_fills=before_fills) + 1))
    liq = liq.with_row_index("_e")
    # each pair's latest state before K (events sorted by (pair, ord))
    held = ev.select("user", "coin", "ord", "size", "entry", "mode", "iso_wallet").join(
        liq.select("_e", "user", "K", "time_ms"), on="user"
    )
    held = held.filter(pl.col("ord") < pl.col("K")).sort("ord").group_by("_e", "coin", maintain_order=True).last()
    held = held.filter(pl.col("size") != 0)
    obs = mark_observations(f, asset_ctxs)
    inst = held.select("coin", pl.col("time_ms").alias("t_ms"), pl.col("K").alias("ord"), "_e").unique()
    mk = marks_at(inst, obs, f, max_mark_age_ms=max_mark_age_ms).select("_e", "coin", "mark")
    held = held.join(mk, on=["_e", "coin"], how="left").with_columns(
        (pl.col("size") * (pl.col("mark") - pl.col("entry"))).alias("upnl")
    )
    w = wallets.join(liq.select("_e", "user", "K"), on="user").filter(pl.col("ord") < pl.col("K"))
    w = w.sort("ord").group_by("_e").agg(pl.col("wallet").last())
    per = held.group_by("_e").agg(
        pl.col("upnl").filter(pl.col("mode") != "isolated").sum().alias("cross_upnl"),
        pl.col("iso_wallet").filter(pl.col("mode") == "isolated").sum().alias("iso_wallets"),
        (pl.col("iso_wallet") + pl.col("upnl")).filter(pl.col("mode") == "isolated").sum().alias("iso_equity"),
    )
    r = (
        liq.join(w, on="_e", how="left")
        .join(per, on="_e", how="left")
        .with_columns(pl.col("cross_upnl", "iso_wallets", "iso_equity").fill_null(0.0))
    )
    replayed = (
        pl.when(pl.col("leverage_type") == "Isolated")
        .then(pl.col("iso_equity"))
        .otherwise(pl.col("wallet") - pl.col("iso_wallets") + pl.col("cross_upnl"))
    )
    r = r.with_columns(replayed.alias("replayed")).with_columns(
        (pl.col("replayed") - pl.col("reported")).alias("error")
    )
    r = r.with_columns(
        (pl.col("error").abs() / pl.max_horizontal(pl.col("reported").abs(), pl.lit(1e-9))).alias("rel_error")
    )
    return r.sort("_e").select(pl.col("user").cast(pl.Utf8), *[c for c in out_schema if c != "user"])


def error_summary(check: pl.DataFrame) -> dict[str, float | int]:
    """The distribution of |replayed - reported| (USD and relative) over events with a replayed value."""
    ok = check.filter(pl.col("replayed").is_not_null())
    if ok.height == 0:
        return {"events": check.height, "compared": 0}
    a, rel = np.abs(ok["error"].to_numpy()), ok["rel_error"].to_numpy()
    return {
        "events": check.height,
        "compared": ok.height,
        "abs_median": float(np.median(a)),
        "abs_p90": float(np.quantile(a, 0.9)),
        "abs_max": float(a.max()),
        "rel_median": float(np.median(rel)),
        "rel_p90": float(np.quantile(rel, 0.9)),
        "rel_max": float(rel.max()),
        "within_1pct": float((rel <= 0.01).mean()),
    }
