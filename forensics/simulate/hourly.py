"""Multi-hour ``node_fills_by_block`` files in the bucket's layout, for backfill tests and benchmarks.

``hourly/YYYYMMDD/H.lz4`` files whose lines are bucketed by ``local_time`` (a few hundred ms after
``block_time``), so each file's first blocks carry the previous hour's block times, as the real ones
do. Trades are two legs (buyer and seller) sharing a tid; a few ADL legs and liquidation markers are
included. Same seed, same bytes.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import lz4.frame
import numpy as np

from forensics.formats.hyperliquid.constants import LIQUIDATOR_VAULT

COINS = ("BTC", "ETH", "SOL", "HYPE", "@107")
LIQUIDATOR = LIQUIDATOR_VAULT


def _iso(ts: float) -> str:
    t = dt.datetime.fromtimestamp(ts, dt.UTC).replace(tzinfo=None)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000"


def write_hours(
    out: Path, start: dt.datetime, hours: int, *, blocks_per_hour: int = 120, fills_per_block: int = 8, seed: int = 17
) -> list[Path]:
    """Write ``hours`` hour files from ``start`` (UTC, on the hour) under ``out/node_fills_by_block/hourly``."""
    rng = np.random.default_rng(seed)
    users = [f"0x{rng.integers(0, 2**63):016x}{i:024x}" for i in range(60)]
    t0 = start.replace(tzinfo=dt.UTC).timestamp()
    lines: dict[dt.datetime, list[str]] = {}
    tid, oid = 10**15, 2 * 10**11
    span = hours * 3600.0
    n_blocks = hours * blocks_per_hour
    for b in range(n_blocks):
        block_time = t0 - 0.3 + span * b / n_blocks  # the first block's time falls in the hour before
        local_time = block_time + 0.35 + 0.3 * rng.random()
        events = []
        for _ in range(fills_per_block // 2):
            coin = COINS[int(rng.integers(0, len(COINS)))]
            px = f"{100 + 50 * rng.random():.4f}"
            sz = f"{0.01 + rng.random():.4f}"
            buyer, seller = rng.choice(len(users), 2, replace=False)
            tid += 1
            adl = rng.random() < 0.02
            ms = int(block_time * 1000)
            for user, side, direction in ((users[buyer], "B", "Open Long"), (users[seller], "A", "Open Short")):
                oid += 1
                fill = {
                    "coin": coin,
                    "px": px,
                    "sz": sz,
                    "side": side,
                    "time": ms,
                    "startPosition": "0.0",
                    "dir": direction,
                    "closedPnl": "0.0",
                    "hash": "0x" + "00" * 32,
                    "oid": oid,
                    "crossed": True,
                    "fee": "0.01",
                    "tid": tid,
                    "feeToken": "USDC",
                }
                if adl and side == "A":
                    fill["dir"] = "Auto-Deleveraging"
                    fill["liquidation"] = {"liquidatedUser": LIQUIDATOR, "markPx": px, "method": "market"}
                events.append([user, fill])
        hour = dt.datetime.fromtimestamp(local_time, dt.UTC).replace(minute=0, second=0, microsecond=0, tzinfo=None)
        lines.setdefault(hour, []).append(
            json.dumps(
                {
                    "local_time": _iso(local_time),
                    "block_time": _iso(block_time),
                    "block_number": 758_000_000 + b,
                    "events": events,
                },
                separators=(",", ":"),
            )
        )
    written = []
    for hour, hour_lines in sorted(lines.items()):
        path = out / "node_fills_by_block" / "hourly" / hour.strftime("%Y%m%d") / f"{hour.hour}.lz4"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(lz4.frame.compress(("\n".join(hour_lines) + "\n").encode()))
        written.append(path)
    return written
