"""``clearinghouseState`` snapshot lines (JSONL: ``{time, user, state}``) into ``account_snapshots`` and
``position_snapshots`` rows; small, so exact ``Decimal`` parsing in Python."""

from __future__ import annotations

from typing import Any

from forensics.formats.records import RecordError, address, coin_name, dec, ms, small_int

from .wire import WireSnapshotLine


def snapshot_rows(line: WireSnapshotLine | Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One snapshot line -> (account row, position rows). Raises RecordError with the reason."""
    if not isinstance(line, dict):
        raise RecordError("snapshot line is not a JSON object")
    time_ms = ms(line.get("time"))
    user = address(line.get("user"))
    state = line.get("state")
    if not isinstance(state, dict):
        raise RecordError("snapshot state is not an object")
    summary = state.get("marginSummary")
    cross: Any = state.get("crossMarginSummary") or {}
    if not isinstance(summary, dict) or not isinstance(cross, dict):
        raise RecordError("marginSummary is not an object")
    positions = state.get("assetPositions")
    if not isinstance(positions, list):
        raise RecordError("assetPositions is not a list")
    rows: list[dict[str, Any]] = []
    for item in positions:
        pos = item.get("position") if isinstance(item, dict) else None
        if not isinstance(pos, dict):
            raise RecordError("assetPositions item has no position object")
        lev = pos.get("leverage")
        if not isinstance(lev, dict) or lev.get("type") not in ("cross", "isolated"):
            raise RecordError("unknown leverage type")
        funding: dict[str, Any] = pos["cumFunding"] if isinstance(pos.get("cumFunding"), dict) else {}
        rows.append(
            {
                "coin": coin_name(pos.get("coin")),
                "szi": dec(pos.get("szi"), "szi"),
                "entry_px": dec(pos.get("entryPx"), "entryPx", required=False),
                "position_value": dec(pos.get("positionValue"), "positionValue", required=False),
                "unrealized_pnl": dec(pos.get("unrealizedPnl"), "unrealizedPnl", required=False),
                "return_on_equity": dec(pos.get("returnOnEquity"), "returnOnEquity", required=False),
                "liquidation_px": dec(pos.get("liquidationPx"), "liquidationPx", required=False),
                "margin_used": dec(pos.get("marginUsed"), "marginUsed", required=False),
                "leverage_type": lev["type"],
                "leverage": small_int(lev.get("value"), "leverage"),
                "isolated_raw_usd": dec(lev.get("rawUsd"), "rawUsd", required=False),
                "max_leverage": small_int(pos.get("maxLeverage"), "maxLeverage"),
                "cum_funding_all_time": dec(funding.get("allTime"), "cumFunding.allTime", required=False),
                "cum_funding_since_open": dec(funding.get("sinceOpen"), "cumFunding.sinceOpen", required=False),
            }
        )
    account = {
        "account_value": dec(summary.get("accountValue"), "accountValue"),
        "total_ntl_pos": dec(summary.get("totalNtlPos"), "totalNtlPos", required=False),
        "total_raw_usd": dec(summary.get("totalRawUsd"), "totalRawUsd", required=False),
        "total_margin_used": dec(summary.get("totalMarginUsed"), "totalMarginUsed", required=False),
        "cross_account_value": dec(cross.get("accountValue"), "crossMarginSummary.accountValue", required=False),
        "cross_maintenance_margin_used": dec(
            state.get("crossMaintenanceMarginUsed"), "crossMaintenanceMarginUsed", required=False
        ),
        "withdrawable": dec(state.get("withdrawable"), "withdrawable", required=False),
        "positions": len(rows),
    }
    common = {"user": user, "time_ms": time_ms}
    return {**common, **account}, [{**common, **r} for r in rows]
