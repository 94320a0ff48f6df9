"""Synthetic Hyperliquid scenario directories for the venue server / client tests.

Everything here is generated (addresses, hashes, prices); no real data is copied.
Layout and wire shapes follow reference/venue-apis.md §1 (node_fills_by_block lines,
clearinghouseState, metaAndAssetCtxs, vaultDetails).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lz4.frame
import orjson

T0 = 1_760_000_000_000  # 2025-10-09T08:53:20Z
HLP = "0xdfc24b077bc1425ad1dea75bcb6f8158e10df303"


def addr(tag: str) -> str:
    return "0x" + hashlib.sha256(tag.encode()).hexdigest()[:40]


def tx_hash(n: int) -> str:
    return "0x" + hashlib.sha256(f"tx{n}".encode()).hexdigest()


USER_MAIN = addr("main")  # 5000 fills, 3 per millisecond step -> page boundaries inside one ms
USER_BIG = addr("big")  # 11000 fills -> only the 10000 most recent reachable
USER_CP_MAIN = addr("cp-main")  # counterparty of USER_MAIN
USER_CP_BIG = addr("cp-big")  # counterparty of USER_BIG (also > 10000)
USER_LIQ = addr("liq")  # a few liquidated / ADL fills
LIQUIDATOR = addr("liquidator")
USER_NOBODY = addr("nobody")
LEDGER_ROWS = 1234


@dataclass
class ScenarioInfo:
    root: Path
    fills: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # user -> fills sorted by time
    now_ms: int = 0
    coins: tuple[str, ...] = ("BTC", "ETH")

    def times(self, user: str) -> list[int]:
        return [f["time"] for f in self.fills[user]]


def _fill(
    *,
    coin: str,
    px: str,
    sz: str,
    side: str,
    t: int,
    start: str,
    d: str,
    pnl: str,
    h: str,
    oid: int,
    tid: int,
    crossed: bool,
    fee: str,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    f = {
        "coin": coin,
        "px": px,
        "sz": sz,
        "side": side,
        "time": t,
        "startPosition": start,
        "dir": d,
        "closedPnl": pnl,
        "hash": h,
        "oid": oid,
        "crossed": crossed,
        "fee": fee,
        "tid": tid,
        "feeToken": "USDC",
    }
    if extra:
        f.update(extra)
    return f


def _trade_pair(
    events: list[tuple[str, dict[str, Any]]],
    n: int,
    t: int,
    coin: str,
    taker: str,
    maker: str,
    taker_side: str,
    liq: dict[str, Any] | None = None,
    taker_dir: str | None = None,
    maker_dir: str | None = None,
) -> None:
    px = f"{(60000 if coin == 'BTC' else 3000) + (n % 97) * 0.5:.1f}"
    sz = f"0.{(n % 9) + 1:03d}"
    tid = 100_000_000 + n
    h = tx_hash(n)
    maker_side = "A" if taker_side == "B" else "B"
    extra = {"liquidation": liq} if liq else None
    for user, side, crossed, d in ((taker, taker_side, True, taker_dir), (maker, maker_side, False, maker_dir)):
        events.append(
            (
                user,
                _fill(
                    coin=coin,
                    px=px,
                    sz=sz,
                    side=side,
                    t=t,
                    start="0.0",
                    d=d or ("Open Long" if side == "B" else "Open Short"),
                    pnl="0.0",
                    h=h,
                    oid=500_000_000 + 2 * n + (0 if crossed else 1),
                    tid=tid,
                    crossed=crossed,
                    fee="0.0123" if crossed else "-0.0012",
                    extra={
                        **(extra or {}),
                        **({"builder": addr("builder"), "builderFee": "0.001"} if n % 50 == 0 else {}),
                    },
                ),
            )
        )


def _write_blocks(root: Path, events: list[tuple[str, dict[str, Any]]]) -> None:
    """Group events into one block per ms, files per UTC hour; odd hours plain .jsonl, even .lz4."""
    by_time: dict[int, list[list[Any]]] = defaultdict(list)
    for user, fill in events:
        by_time[fill["time"]].append([user, fill])
    by_hour: dict[tuple[str, int], list[bytes]] = defaultdict(list)
    for bn, t in enumerate(sorted(by_time)):
        dt = datetime.fromtimestamp(t / 1000, tz=UTC)
        iso = dt.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000"
        block = {"local_time": iso, "block_time": iso, "block_number": 700_000_000 + bn, "events": by_time[t]}
        by_hour[(dt.strftime("%Y%m%d"), dt.hour)].append(orjson.dumps(block))
    for (day, hour), lines in by_hour.items():
        d = root / "node_fills_by_block" / "hourly" / day
        d.mkdir(parents=True, exist_ok=True)
        data = b"\n".join(lines) + b"\n"
        if hour % 2:
            (d / f"{hour}.jsonl").write_bytes(data)
        else:
            (d / f"{hour}.lz4").write_bytes(lz4.frame.compress(data))


def clearinghouse_state(t: int) -> dict[str, Any]:
    return {
        "marginSummary": {
            "accountValue": "10234.5",
            "totalNtlPos": "60123.4",
            "totalRawUsd": "-49888.9",
            "totalMarginUsed": "3006.17",
        },
        "crossMarginSummary": {
            "accountValue": "10234.5",
            "totalNtlPos": "60123.4",
            "totalRawUsd": "-49888.9",
            "totalMarginUsed": "3006.17",
        },
        "crossMaintenanceMarginUsed": "1503.08",
        "withdrawable": "7228.33",
        "assetPositions": [
            {
                "type": "oneWay",
                "position": {
                    "coin": "BTC",
                    "szi": "1.0",
                    "leverage": {"type": "cross", "value": 20},
                    "entryPx": "60000.0",
                    "positionValue": "60123.4",
                    "unrealizedPnl": "123.4",
                    "returnOnEquity": "0.0411",
                    "liquidationPx": "50321.7",
                    "marginUsed": "3006.17",
                    "maxLeverage": 40,
                    "cumFunding": {"allTime": "12.3", "sinceOpen": "1.2", "sinceChange": "0.4"},
                },
            },
            {
                "type": "oneWay",
                "position": {
                    "coin": "ETH",
                    "szi": "-2.0",
                    "leverage": {"type": "isolated", "value": 10, "rawUsd": "6300.0"},
                    "entryPx": "3000.0",
                    "positionValue": "6000.0",
                    "unrealizedPnl": "0.0",
                    "returnOnEquity": "0.0",
                    "liquidationPx": None,
                    "marginUsed": "600.0",
                    "maxLeverage": 25,
                    "cumFunding": {"allTime": "0.0", "sinceOpen": "0.0", "sinceChange": "0.0"},
                },
            },
        ],
        "time": t,
    }


def meta_and_ctxs(mark_btc: str) -> list[Any]:
    meta = {
        "universe": [
            {"name": "BTC", "szDecimals": 5, "maxLeverage": 40, "marginTableId": 56},
            {"name": "ETH", "szDecimals": 4, "maxLeverage": 25, "marginTableId": 55},
        ]
    }
    ctxs = [
        {
            "dayNtlVlm": "1169046.29",
            "funding": "0.0000125",
            "impactPxs": ["60000.0", "60001.0"],
            "markPx": mark_btc,
            "midPx": mark_btc,
            "openInterest": "688.11",
            "oraclePx": mark_btc,
            "premium": "0.00031774",
            "prevDayPx": "59000.0",
            "dayBaseVlm": "19.5",
        },
        {
            "dayNtlVlm": "426126.29",
            "funding": "-0.0000031",
            "impactPxs": None,
            "markPx": "3000.1",
            "midPx": None,
            "openInterest": "1882.55",
            "oraclePx": "3000.2",
            "premium": None,
            "prevDayPx": "2950.0",
            "dayBaseVlm": "142.0",
        },
    ]
    return [meta, ctxs]


def build_scenario(root: Path, *, main_fills: int = 5000, big_fills: int = 11000) -> ScenarioInfo:
    root.mkdir(parents=True, exist_ok=True)
    events: list[tuple[str, dict[str, Any]]] = []
    n = 0
    for i in range(main_fills):
        t = T0 + (i // 3) * 1000 + 7  # 3 fills share each ms
        _trade_pair(events, n, t, "BTC" if i % 2 else "ETH", USER_MAIN, USER_CP_MAIN, "B" if i % 3 else "A")
        n += 1
    for i in range(big_fills):
        t = T0 + 250 + i * 400
        _trade_pair(events, n, t, "ETH", USER_CP_BIG, USER_BIG, "A" if i % 2 else "B")
        n += 1
    # liquidations: market (against the book) and backstop + ADL leg
    liq_t = T0 + 1_800_000 + 123
    _trade_pair(
        events,
        n,
        liq_t,
        "BTC",
        USER_LIQ,
        USER_CP_MAIN,
        "A",
        liq={"liquidatedUser": USER_LIQ, "markPx": "60010.0", "method": "market"},
        taker_dir="Close Long",
    )
    n += 1
    _trade_pair(
        events,
        n,
        liq_t + 1000,
        "BTC",
        LIQUIDATOR,
        USER_LIQ,
        "B",
        liq={"liquidatedUser": LIQUIDATOR, "markPx": "60020.0", "method": "backstop"},
        taker_dir="Close Short",
        maker_dir="Auto-Deleveraging",
    )
    _write_blocks(root, events)

    fills: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for user, f in events:
        fills[user].append({k: v for k, v in f.items() if k not in ("builder",)})
    for u in fills:
        fills[u].sort(key=lambda f: (f["time"], f["tid"]))
    last = max(f["time"] for _, f in events)

    snaps = root / "snapshots"
    snaps.mkdir(exist_ok=True)
    with (snaps / "clearinghouse_state.jsonl").open("wb") as fh:
        for t in (T0 - 60_000, T0 + 600_000):
            fh.write(orjson.dumps({"time": t, "user": USER_MAIN, "state": clearinghouse_state(t)}) + b"\n")
    ctx_dir = root / "asset_ctxs"
    ctx_dir.mkdir(exist_ok=True)
    with (ctx_dir / "asset_ctxs.jsonl").open("wb") as fh:
        for k, t in enumerate(range(T0, last + 1, 1_200_000)):
            fh.write(orjson.dumps({"time": t, "ctxs": meta_and_ctxs(f"{60000 + k}.0")}) + b"\n")
    vdir = root / "vaults"
    vdir.mkdir(exist_ok=True)
    vault = {
        "name": "Synthetic HLP",
        "vaultAddress": HLP,
        "leader": addr("leader"),
        "description": "synthetic",
        "portfolio": [["day", {"accountValueHistory": [[T0, "1000000.0"]], "pnlHistory": [[T0, "0.0"]], "vlm": "0.0"}]],
        "apr": 0.1,
        "followerState": None,
        "leaderFraction": 0.01,
        "leaderCommission": 0,
        "followers": [],
        "maxDistributable": 1.0,
        "maxWithdrawable": 1.0,
        "isClosed": False,
        "relationship": {"type": "parent", "data": {"childAddresses": [LIQUIDATOR]}},
        "allowDeposits": True,
        "alwaysCloseOnWithdraw": False,
    }
    (vdir / "vault_details.jsonl").write_bytes(orjson.dumps(vault) + b"\n")
    ldir = root / "ledger"
    ldir.mkdir(exist_ok=True)
    with (ldir / "non_funding_ledger_updates.jsonl").open("wb") as fh:
        for k in range(LEDGER_ROWS):  # 2 rows per ms -> boundary duplicates when paging by time
            row = {
                "user": USER_MAIN,
                "time": T0 + (k // 2) * 10,
                "hash": tx_hash(900_000 + k),
                "delta": {"type": "deposit", "usdc": f"{k}.5"},
            }
            fh.write(orjson.dumps(row) + b"\n")
    (root / "scenario.json").write_bytes(orjson.dumps({"name": "synthetic-paging", "recent_trades_limit": 10}))
    return ScenarioInfo(root=root, fills=dict(fills), now_ms=last)
