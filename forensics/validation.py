"""Validation against planted ground truth: pools from a simulator's ``truth.json`` and the sweep
that measures rule recovery, false discovery rate and power of the exemption test."""

from __future__ import annotations

from pathlib import Path

import orjson
import polars as pl

from forensics.tables import ADL_POOLS


def truth_pools(truth: dict | str | Path, venue: str = "hyperliquid") -> pl.DataFrame:
    """The simulator's recorded pools in the ``adl_pools`` layout (features exactly as the engine saw
    them), plus ``exempt`` and ``true_score`` columns for scoring the tests."""
    if not isinstance(truth, dict):
        truth = orjson.loads(Path(truth).read_bytes())
    rows = []
    for st in truth["steps"]:
        adl_side = "short" if st["liquidated_side"] == "long" else "long"
        for c in st["pool"]:
            size = abs(c["size"])
            rows.append(
                {
                    "venue": venue,
                    "step_id": st["step"],
                    "coin": st["coin"],
                    "user": c["user"],
                    "side": adl_side,
                    "size": size,
                    "entry_px": c["entry"],
                    "mark_px": c["mark"],
                    "mark_source": "truth",
                    "notional_usd": c["notional"],
                    "upnl_usd": c["upnl"],
                    "pnl_pct_price": c["upnl"] / (size * c["entry"]) if size * c["entry"] else None,
                    "pnl_pct_margin": None,
                    "account_value_usd": c["account_value"],
                    "wallet_balance_usd": c.get("balance"),
                    "leverage": c["leverage"],
                    "margin_leverage": None,
                    "effective_leverage": None,
                    "margin_mode": "cross",
                    "maintenance_margin_usd": c.get("mm"),
                    "position_age_ms": None,
                    "selected": c["selected"],
                    "fill_order": None if c["fill_order"] is None else c["fill_order"] + 1,
                    "closed_size": c["closed_size"],
                    "partial": c["partial"],
                    "skip_reason": None,
                    "exempt": c["exempt"],
                    "true_score": c["score"],
                }
            )
    schema = {c.name: pl.Float64 if c.type == "DOUBLE" else None for c in ADL_POOLS.columns}
    df = pl.DataFrame(rows, infer_schema_length=None)
    return df.with_columns([pl.col(k).cast(v) for k, v in schema.items() if v is not None and k in df.columns])
