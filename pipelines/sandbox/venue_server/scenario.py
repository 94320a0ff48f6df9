"""Load a scenario directory in Hyperliquid's public formats and answer ``/info`` queries.

Layout (every part optional except that an empty scenario answers empty lists)::

    scenario.json                                   {"name": .., "now_ms": .., "recent_trades_limit": ..}
    node_fills_by_block/hourly/YYYYMMDD/H.lz4       lz4-frame JSON lines (or H.json / H.jsonl plain),
                                                    one block per line:
                                                    {local_time, block_time, block_number, events: [[user, fill], ..]}
    snapshots/clearinghouse_state.jsonl             {"time": ms, "user": "0x..", "state": <clearinghouseState>}
    asset_ctxs/asset_ctxs.jsonl                     {"time": ms, "ctxs": [meta, ctxs]}  (metaAndAssetCtxs)
    vaults/vault_details.jsonl                      <vaultDetails response> per line (has vaultAddress)
    funding/funding_history.jsonl                   {coin, fundingRate, premium, time}  (else derived hourly
                                                    from asset_ctxs)
    ledger/non_funding_ledger_updates.jsonl         {"user": "0x..", "time", "hash", "delta"}

The server clock ("now") is ``scenario.json`` ``now_ms`` or the latest timestamp in the data.
Pure Python, no web framework: :mod:`pipelines.sandbox.venue_server.app` wraps it in HTTP.
"""

from __future__ import annotations

import bisect
import re
from calendar import monthrange
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import lz4.frame
import orjson

__all__ = ["Scenario", "iter_fill_blocks", "load_scenario"]

FILLS_CAP = 2000
REACHABLE_CAP = 10000
TIME_RANGE_CAP = 500
CANDLE_CAP = 5000
HOUR_MS = 3_600_000
# fields present in S3 node output but not in the /info userFills response
NODE_ONLY_FILL_FIELDS = ("builder", "deployerFee")

INTERVAL_MS = {
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": HOUR_MS,
    "2h": 2 * HOUR_MS,
    "4h": 4 * HOUR_MS,
    "8h": 8 * HOUR_MS,
    "12h": 12 * HOUR_MS,
    "1d": 24 * HOUR_MS,
    "3d": 72 * HOUR_MS,
    "1w": 168 * HOUR_MS,
    "1M": -1,  # calendar month
}

_HOUR_FILE = re.compile(r"^(\d+)\.(lz4|jsonl|json)$")


def _read_lines(path: Path) -> Iterator[bytes]:
    if path.suffix == ".lz4":
        with lz4.frame.open(path, mode="rb") as fh:
            yield from fh
    else:
        with path.open("rb") as fh:
            yield from fh


def _jsonl(path: Path) -> Iterator[Any]:
    for n, line in enumerate(_read_lines(path), 1):
        line = line.strip()
        if not line:
            continue
        try:
            yield orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"{path}:{n}: invalid JSON line ({exc})") from None


def _fill_files(root: Path) -> list[Path]:
    base = root / "node_fills_by_block"
    if not base.is_dir():
        return []
    found = []
    for p in base.rglob("*"):
        if p.is_file():
            m = _HOUR_FILE.match(p.name)
            if m:
                found.append((p.parent.name, int(m.group(1)), str(p), p))
    return [t[3] for t in sorted(found)]


def iter_fill_blocks(root: Path) -> Iterator[Mapping[str, Any]]:
    """Every block line of every ``node_fills_by_block`` file, in (date, hour) order."""
    for path in _fill_files(Path(root)):
        yield from _jsonl(path)


def _api_fill(fill: Mapping[str, Any]) -> dict[str, Any]:
    """Node (S3) fill -> /info fill: drop node-only keys; the API always carries ``twapId``."""
    out = {k: v for k, v in fill.items() if k not in NODE_ONLY_FILL_FIELDS}
    out.setdefault("twapId", None)
    return out


def _dec_str(d: Decimal) -> str:
    s = format(d, "f")
    if "." not in s:
        s += ".0"
    return s


@dataclass
class Scenario:
    root: Path
    name: str = ""
    now_ms: int = 0
    recent_trades_limit: int = 10
    fills_by_user: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    fill_times: dict[str, list[int]] = field(default_factory=dict)
    trades_by_coin: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    states: dict[str, list[tuple[int, dict[str, Any]]]] = field(default_factory=dict)
    asset_ctxs: list[tuple[int, Any]] = field(default_factory=list)
    vaults: dict[str, dict[str, Any]] = field(default_factory=dict)
    funding: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    ledger: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _candle_cache: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict, repr=False)

    # -- summaries -----------------------------------------------------------
    @property
    def users(self) -> list[str]:
        return sorted(self.fills_by_user)

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "now_ms": self.now_ms,
            "users": len(self.fills_by_user),
            "fills": sum(len(v) for v in self.fills_by_user.values()),
            "coins": sorted(self.trades_by_coin),
            "snapshots": sum(len(v) for v in self.states.values()),
            "asset_ctx_lines": len(self.asset_ctxs),
            "vaults": len(self.vaults),
        }

    # -- fills ---------------------------------------------------------------
    def _visible(self, user: str) -> tuple[list[dict[str, Any]], list[int]]:
        fills = self.fills_by_user.get(user.lower(), [])
        times = self.fill_times.get(user.lower(), [])
        hi = bisect.bisect_right(times, self.now_ms)
        return fills[:hi], times[:hi]

    def user_fills(self, user: str) -> list[dict[str, Any]]:
        """The 2000 most recent fills, newest first."""
        fills, _ = self._visible(user)
        return [_api_fill(f) for f in reversed(fills[-FILLS_CAP:])]

    def user_fills_by_time(
        self, user: str, start: int, end: int | None, *, reverse: bool = False
    ) -> list[dict[str, Any]]:
        """Fills with start <= time <= end among the 10000 most recent; at most 2000, oldest first."""
        fills, times = self._visible(user)
        off = max(0, len(fills) - REACHABLE_CAP)
        fills, times = fills[off:], times[off:]
        end = self.now_ms if end is None else end
        lo = bisect.bisect_left(times, start)
        hi = bisect.bisect_right(times, end)
        window = fills[lo:hi]
        page = window[-FILLS_CAP:][::-1] if reverse else window[:FILLS_CAP]
        return [_api_fill(f) for f in page]

    def reachable_fill_count(self, user: str) -> int:
        fills, _ = self._visible(user)
        return min(len(fills), REACHABLE_CAP)

    # -- snapshots -----------------------------------------------------------
    def clearinghouse_state(self, user: str) -> dict[str, Any]:
        snaps = self.states.get(user.lower())
        if not snaps:
            return empty_clearinghouse_state(self.now_ms)
        chosen = snaps[0][1]
        for t, st in snaps:
            if t <= self.now_ms:
                chosen = st
        return chosen

    def meta_and_asset_ctxs(self) -> Any:
        if not self.asset_ctxs:
            return [{"universe": []}, []]
        chosen = self.asset_ctxs[0][1]
        for t, ctx in self.asset_ctxs:
            if t <= self.now_ms:
                chosen = ctx
        return chosen

    def vault_details(self, address: str) -> dict[str, Any] | None:
        return self.vaults.get(address.lower())

    # -- time series -----------------------------------------------------------
    def funding_history(self, coin: str, start: int, end: int | None) -> list[dict[str, Any]]:
        end = self.now_ms if end is None else end
        rows = self.funding.get(coin)
        if rows is None:
            rows = self._derive_funding(coin)
            self.funding[coin] = rows
        return [r for r in rows if start <= r["time"] <= end][:TIME_RANGE_CAP]

    def _derive_funding(self, coin: str) -> list[dict[str, Any]]:
        """Hourly funding entries from asset ctx lines (ctx in force at each hour boundary)."""
        if not self.asset_ctxs:
            return []
        out: list[dict[str, Any]] = []
        first = self.asset_ctxs[0][0]
        last = max(self.now_ms, self.asset_ctxs[-1][0])
        h = -(-first // HOUR_MS) * HOUR_MS
        i = 0
        current = None
        while h <= last:
            while i < len(self.asset_ctxs) and self.asset_ctxs[i][0] <= h:
                current = self.asset_ctxs[i][1]
                i += 1
            if current is not None:
                meta, ctxs = current[0], current[1]
                names = [u.get("name") for u in meta.get("universe", [])]
                if coin in names:
                    ctx = ctxs[names.index(coin)]
                    out.append(
                        {
                            "coin": coin,
                            "fundingRate": ctx.get("funding", "0.0"),
                            "premium": ctx.get("premium") or "0.0",
                            "time": h,
                        }
                    )
            h += HOUR_MS
        return out

    def ledger_updates(self, user: str, start: int, end: int | None) -> list[dict[str, Any]]:
        end = self.now_ms if end is None else end
        rows = self.ledger.get(user.lower(), [])
        return [r for r in rows if start <= r["time"] <= end][:TIME_RANGE_CAP]

    def recent_trades(self, coin: str) -> list[dict[str, Any]]:
        trades = [t for t in self.trades_by_coin.get(coin, []) if t["time"] <= self.now_ms]
        return trades[-self.recent_trades_limit :]

    def candles(self, coin: str, interval: str, start: int, end: int | None) -> list[dict[str, Any]]:
        if interval not in INTERVAL_MS:
            raise KeyError(interval)
        end = self.now_ms if end is None else end
        key = (coin, interval)
        if key not in self._candle_cache:
            self._candle_cache[key] = self._build_candles(coin, interval)
        rows = [c for c in self._candle_cache[key] if c["T"] >= start and c["t"] <= end]
        return rows[-CANDLE_CAP:]

    def _build_candles(self, coin: str, interval: str) -> list[dict[str, Any]]:
        buckets: dict[int, dict[str, Any]] = {}
        for tr in self.trades_by_coin.get(coin, []):
            if tr["time"] > self.now_ms:
                continue
            t0, t1 = _bucket(tr["time"], interval)
            px = Decimal(tr["px"])
            b = buckets.get(t0)
            if b is None:
                buckets[t0] = {
                    "t": t0,
                    "T": t1,
                    "s": coin,
                    "i": interval,
                    "o": tr["px"],
                    "c": tr["px"],
                    "h": tr["px"],
                    "l": tr["px"],
                    "_h": px,
                    "_l": px,
                    "_v": Decimal(tr["sz"]),
                    "n": 1,
                }
                continue
            b["c"] = tr["px"]
            if px > b["_h"]:
                b["_h"], b["h"] = px, tr["px"]
            if px < b["_l"]:
                b["_l"], b["l"] = px, tr["px"]
            b["_v"] += Decimal(tr["sz"])
            b["n"] += 1
        out = []
        for t0 in sorted(buckets):
            b = buckets[t0]
            out.append(
                {
                    "T": b["T"],
                    "c": b["c"],
                    "h": b["h"],
                    "i": b["i"],
                    "l": b["l"],
                    "n": b["n"],
                    "o": b["o"],
                    "s": b["s"],
                    "t": b["t"],
                    "v": _dec_str(b["_v"]),
                }
            )
        return out


def _bucket(ms: int, interval: str) -> tuple[int, int]:
    step = INTERVAL_MS[interval]
    if step > 0:
        t0 = ms - ms % step
        return t0, t0 + step - 1
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    start = datetime(dt.year, dt.month, 1, tzinfo=UTC)
    days = monthrange(dt.year, dt.month)[1]
    t0 = int(start.timestamp() * 1000)
    return t0, t0 + days * 86_400_000 - 1


def empty_clearinghouse_state(now_ms: int) -> dict[str, Any]:
    """What the venue answers for an address with no account: zeroed summaries, no positions."""
    zero = {"accountValue": "0.0", "totalNtlPos": "0.0", "totalRawUsd": "0.0", "totalMarginUsed": "0.0"}
    return {
        "marginSummary": dict(zero),
        "crossMarginSummary": dict(zero),
        "crossMaintenanceMarginUsed": "0.0",
        "withdrawable": "0.0",
        "assetPositions": [],
        "time": now_ms,
    }


def _index_fills(sc: Scenario, blocks: Iterable[Mapping[str, Any]]) -> int:
    by_user: dict[str, list[dict[str, Any]]] = defaultdict(list)
    legs: dict[tuple[str, Any], dict[str, Any]] = {}
    latest = 0
    for block in blocks:
        for ev in block.get("events") or ():
            if not isinstance(ev, (list, tuple)) or len(ev) != 2:
                continue
            user, fill = ev
            user = str(user).lower()
            by_user[user].append(fill)
            t = int(fill.get("time", 0))
            latest = max(latest, t)
            tid = fill.get("tid")
            if tid is None:
                continue
            coin = fill.get("coin", "")
            tr = legs.get((coin, tid))
            if tr is None:
                tr = legs[(coin, tid)] = {
                    "coin": coin,
                    "side": fill.get("side", "B"),
                    "px": fill.get("px"),
                    "sz": fill.get("sz"),
                    "time": t,
                    "hash": fill.get("hash"),
                    "tid": tid,
                    "users": ["", ""],
                }
            if fill.get("side") == "B":
                tr["users"][0] = user
            else:
                tr["users"][1] = user
            if fill.get("crossed"):
                tr["side"] = fill.get("side", tr["side"])
    for user, fills in by_user.items():
        fills.sort(key=lambda f: (f.get("time", 0), f.get("tid") or 0))
        sc.fills_by_user[user] = fills
        sc.fill_times[user] = [int(f.get("time", 0)) for f in fills]
    by_coin: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for (coin, _tid), tr in legs.items():
        by_coin[coin].append(tr)
    for coin, trades in by_coin.items():
        trades.sort(key=lambda t: (t["time"], t["tid"]))
        sc.trades_by_coin[coin] = trades
    return latest


def load_scenario(root: str | Path) -> Scenario:
    """Read and index every file of a scenario directory (raises ``FileNotFoundError`` if absent)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"scenario directory {root} does not exist")
    sc = Scenario(root=root, name=root.name)
    meta: dict[str, Any] = {}
    if (root / "scenario.json").is_file():
        meta = orjson.loads((root / "scenario.json").read_bytes())
        sc.name = str(meta.get("name", sc.name))
        sc.recent_trades_limit = int(meta.get("recent_trades_limit", sc.recent_trades_limit))
    latest = _index_fills(sc, iter_fill_blocks(root))

    snap = root / "snapshots" / "clearinghouse_state.jsonl"
    if snap.is_file():
        states: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
        for row in _jsonl(snap):
            t = int(row["time"])
            st = dict(row["state"])
            st.setdefault("time", t)
            states[str(row["user"]).lower()].append((t, st))
            latest = max(latest, t)
        sc.states = {u: sorted(v, key=lambda x: x[0]) for u, v in states.items()}

    ctx_path = root / "asset_ctxs" / "asset_ctxs.jsonl"
    if ctx_path.is_file():
        sc.asset_ctxs = sorted(((int(r["time"]), r["ctxs"]) for r in _jsonl(ctx_path)), key=lambda x: x[0])
        if sc.asset_ctxs:
            latest = max(latest, sc.asset_ctxs[-1][0])

    vault_path = root / "vaults" / "vault_details.jsonl"
    if vault_path.is_file():
        # lines are vaultDetails responses, or {"time", "vaultDetails"} observations over time (latest wins)
        for row in _jsonl(vault_path):
            details = row.get("vaultDetails", row) if isinstance(row, dict) else None
            if isinstance(details, dict) and "vaultAddress" in details:
                sc.vaults[str(details["vaultAddress"]).lower()] = details

    fund_path = root / "funding" / "funding_history.jsonl"
    if fund_path.is_file():
        funding: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in _jsonl(fund_path):
            funding[row["coin"]].append(row)
        sc.funding = {c: sorted(v, key=lambda r: r["time"]) for c, v in funding.items()}

    ledger_path = root / "ledger" / "non_funding_ledger_updates.jsonl"
    if ledger_path.is_file():
        ledger: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in _jsonl(ledger_path):
            upd = row.get("update") or {k: v for k, v in row.items() if k != "user"}
            ledger[str(row["user"]).lower()].append(upd)
        sc.ledger = {u: sorted(v, key=lambda r: r["time"]) for u, v in ledger.items()}

    sc.now_ms = int(meta.get("now_ms") or latest)
    return sc
