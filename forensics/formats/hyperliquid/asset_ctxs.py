"""``metaAndAssetCtxs`` (an info-API response, or JSONL lines ``{time, ctxs}``) into ``asset_ctxs`` rows."""

from __future__ import annotations

from typing import Any

from forensics.formats.records import RecordError, coin_name, dec, ms, small_int

from .wire import WireAssetCtxLine


def asset_ctx_rows(line: WireAssetCtxLine | Any) -> list[dict[str, Any]]:
    """One asset-context line -> one row per coin. Raises RecordError with the reason."""
    if not isinstance(line, dict):
        raise RecordError("asset-context line is not a JSON object")
    return meta_and_asset_ctxs_rows(line.get("ctxs"), ms(line.get("time")))


def meta_and_asset_ctxs_rows(response: Any, time_ms: int) -> list[dict[str, Any]]:
    """A ``metaAndAssetCtxs`` response (``[meta, ctxs]``) observed at ``time_ms`` -> rows per coin."""
    if not isinstance(response, list) or len(response) != 2:
        raise RecordError("metaAndAssetCtxs is not a [meta, ctxs] pair")
    meta, ctxs = response
    universe = meta.get("universe") if isinstance(meta, dict) else None
    if not isinstance(universe, list) or not isinstance(ctxs, list):
        raise RecordError("meta.universe or ctxs is not a list")
    if len(universe) != len(ctxs):
        raise RecordError(f"universe has {len(universe)} coins but ctxs has {len(ctxs)}")
    rows = []
    for spec, ctx in zip(universe, ctxs):
        if not isinstance(spec, dict) or not isinstance(ctx, dict):
            raise RecordError("universe or ctx item is not an object")
        impact: list[Any] = ctx["impactPxs"] if isinstance(ctx.get("impactPxs"), list) else [None, None]
        rows.append(
            {
                "coin": coin_name(spec.get("name")),
                "time_ms": time_ms,
                "mark_px": dec(ctx.get("markPx"), "markPx"),
                "oracle_px": dec(ctx.get("oraclePx"), "oraclePx", required=False),
                "mid_px": dec(ctx.get("midPx"), "midPx", required=False),
                "funding": dec(ctx.get("funding"), "funding", required=False),
                "premium": dec(ctx.get("premium"), "premium", required=False),
                "open_interest": dec(ctx.get("openInterest"), "openInterest", required=False),
                "prev_day_px": dec(ctx.get("prevDayPx"), "prevDayPx", required=False),
                "day_ntl_vlm": dec(ctx.get("dayNtlVlm"), "dayNtlVlm", required=False),
                "day_base_vlm": dec(ctx.get("dayBaseVlm"), "dayBaseVlm", required=False),
                "impact_bid_px": dec(impact[0] if len(impact) > 0 else None, "impactPxs", required=False),
                "impact_ask_px": dec(impact[1] if len(impact) > 1 else None, "impactPxs", required=False),
                "sz_decimals": small_int(spec.get("szDecimals"), "szDecimals"),
                "max_leverage": small_int(spec.get("maxLeverage"), "maxLeverage"),
                "only_isolated": bool(spec.get("onlyIsolated", False)),
            }
        )
    return rows
