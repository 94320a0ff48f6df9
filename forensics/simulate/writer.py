"""Writers for Hyperliquid's public formats: node_fills_by_block (S3 hourly lz4), clearinghouseState
snapshot lines, metaAndAssetCtxs lines and vaultDetails lines."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import lz4.frame
import numpy as np
import orjson

from . import fmt
from .config import VAULT_ADDRESS, Noise
from .market import Universe, round_px

FILLS_DIR = "node_fills_by_block/hourly"
SNAPSHOT_PATH = "snapshots/clearinghouse_state.jsonl"
CTX_PATH = "asset_ctxs/asset_ctxs.jsonl"
VAULT_PATH = "vaults/vault_details.jsonl"


class FillSink:
    """Streams blocks into ``node_fills_by_block/hourly/YYYYMMDD/H.lz4`` (one JSON object per block)."""

    def __init__(self, out_dir: Path, uni: Universe, noise: Noise, rng: np.random.Generator):
        self.out_dir, self.uni, self.noise, self.rng = out_dir, uni, noise, rng
        self.addr: list[str] = []
        self.t_ns: np.ndarray | None = None
        self.blocks: np.ndarray | None = None
        self.cur_key: str | None = None
        self.fh = None
        self.comp = None
        self.buf: list[bytes] = []
        self.buf_len = 0
        self.files: list[str] = []
        self.written_legs = 0
        self.dropped_legs = 0

    def start(self, addresses: list[str], t_ns: np.ndarray, blocks: np.ndarray) -> None:
        self.addr, self.t_ns, self.blocks = addresses, t_ns, blocks

    def _open(self, key: str) -> None:
        self._close()
        path = self.out_dir / FILLS_DIR / key
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = path.open("wb")
        self.comp = lz4.frame.LZ4FrameCompressor(compression_level=0)
        self.fh.write(self.comp.begin())
        self.cur_key = key
        self.files.append(str(Path(FILLS_DIR) / key))

    def _flush(self) -> None:
        if self.buf:
            self.fh.write(self.comp.compress(b"".join(self.buf)))
            self.buf, self.buf_len = [], 0

    def _close(self) -> None:
        if self.fh is not None:
            self._flush()
            self.fh.write(self.comp.flush())
            self.fh.close()
            self.fh = None

    def close(self) -> None:
        self._close()

    def __call__(self, b: int, fills: list) -> None:
        tb = int(self.t_ns[b])
        d = dt.datetime.fromtimestamp(tb // 1_000_000_000, tz=dt.UTC)
        key = f"{d:%Y%m%d}/{d.hour}.lz4"
        if key != self.cur_key:
            self._open(key)
        nz = self.noise
        names, szd, addr = self.uni.names, self.uni.sz_decimals, self.addr
        events = []
        prev_tid = None
        for f in fills:
            a, c, px, lots, is_buy, t_ms, start, d_, pnl, h, oid, crossed, fee, tid, liq = f
            second = tid == prev_tid
            prev_tid = tid
            if nz.drop_fills and self.rng.random() < nz.drop_fills:
                self.dropped_legs += 1
                continue
            if nz.clock_skew_ms and second:
                t_ms = t_ms + int(self.rng.integers(-nz.clock_skew_ms, nz.clock_skew_ms + 1))
            sd = int(szd[c])
            fill = {
                "coin": names[c],
                "px": fmt.px(px, sd),
                "sz": fmt.lots(lots, sd),
                "side": "B" if is_buy else "A",
                "time": t_ms,
                "startPosition": fmt.lots(start, sd),
                "dir": d_,
                "closedPnl": fmt.usd(pnl),
                "hash": h,
                "oid": oid,
                "crossed": crossed,
                "fee": fmt.usd(fee),
                "tid": tid,
            }
            if liq is not None:
                mk = liq[1]
                if nz.mark_jitter:
                    mk = float(np.round(mk * (1 + self.rng.normal(0, nz.mark_jitter)), max(0, 6 - sd)))
                fill["liquidation"] = {"liquidatedUser": addr[liq[0]], "markPx": fmt.px(mk, sd), "method": liq[2]}
            fill["feeToken"] = "USDC"
            events.append([addr[a], fill])
        self.written_legs += len(events)
        local = tb + int(self.rng.integers(1_000_000, 60_000_000))
        line = (
            orjson.dumps(
                {
                    "local_time": fmt.iso_ns(local),
                    "block_time": fmt.iso_ns(tb),
                    "block_number": int(self.blocks[b]),
                    "events": events,
                }
            )
            + b"\n"
        )
        self.buf.append(line)
        self.buf_len += len(line)
        if self.buf_len > (1 << 20):
            self._flush()


def clearinghouse_state(snap_acct: tuple, marks: np.ndarray, uni: Universe, t_ms: int) -> dict[str, Any]:
    """Render one account as a ``clearinghouseState`` response.

    ``accountValue = cash + sum(uPnL)``, ``totalRawUsd = accountValue - sum(szi*mark)``. An isolated
    account holds one isolated position whose margin is ``cash - reserve``; ``reserve`` is its cross cash.
    """
    _a, cash, reserve, iso, lev, positions = snap_acct
    unit = 10.0 ** -uni.sz_decimals.astype(float)
    cross_eq = reserve if iso else cash
    cross_mm_tot = 0.0
    for c, L, e in positions:
        if not iso:
            sz = L * unit[c]
            cross_eq += sz * (marks[c] - e)
            cross_mm_tot += abs(sz) * marks[c] / (2.0 * uni.max_leverage[c])
    aps = []
    cross_ntl = cross_margin = cross_signed = 0.0
    tot_av, tot_ntl, tot_margin, tot_signed = cash, 0.0, 0.0, 0.0
    for c, L, e in positions:
        sd = int(uni.sz_decimals[c])
        sz = L * unit[c]
        mk = float(marks[c])
        pv = abs(sz) * mk
        up = sz * (mk - e)
        ml = int(uni.max_leverage[c])
        lv = int(min(max(lev, 1), ml))
        k = sz - abs(sz) / (2.0 * ml)
        if iso:
            raw = cash - reserve - sz * e
            lev_obj = {"type": "isolated", "value": lv, "rawUsd": fmt.usd(raw)}
            margin_used = raw + sz * mk
            liq_px = -raw / k
        else:
            lev_obj = {"type": "cross", "value": lv}
            margin_used = pv / lv
            liq_px = mk - (cross_eq - cross_mm_tot) / k
            cross_ntl += pv
            cross_margin += margin_used
            cross_signed += sz * mk
        tot_av += up
        tot_ntl += pv
        tot_margin += margin_used
        tot_signed += sz * mk
        roe = up / (abs(sz) * e / lv) if e > 0 else 0.0
        aps.append(
            {
                "type": "oneWay",
                "position": {
                    "coin": uni.names[c],
                    "szi": fmt.lots(L, sd),
                    "leverage": lev_obj,
                    "entryPx": fmt.sig(e, 6),
                    "positionValue": fmt.usd(pv),
                    "unrealizedPnl": fmt.usd(up),
                    "returnOnEquity": fmt.dec(roe, 10),
                    "liquidationPx": fmt.sig(float(liq_px), 8) if np.isfinite(liq_px) and liq_px > 0 else None,
                    "marginUsed": fmt.usd(margin_used),
                    "maxLeverage": ml,
                    "cumFunding": {"allTime": "0.0", "sinceOpen": "0.0", "sinceChange": "0.0"},
                },
            }
        )
    cross_mm = cross_mm_tot
    return {
        "marginSummary": {
            "accountValue": fmt.usd(tot_av),
            "totalNtlPos": fmt.usd(tot_ntl),
            "totalRawUsd": fmt.usd(tot_av - tot_signed),
            "totalMarginUsed": fmt.usd(tot_margin),
        },
        "crossMarginSummary": {
            "accountValue": fmt.usd(cross_eq),
            "totalNtlPos": fmt.usd(cross_ntl),
            "totalRawUsd": fmt.usd(cross_eq - cross_signed),
            "totalMarginUsed": fmt.usd(cross_margin),
        },
        "crossMaintenanceMarginUsed": fmt.usd(cross_mm),
        "withdrawable": fmt.usd(max(0.0, cross_eq - cross_margin)),
        "assetPositions": aps,
        "time": t_ms,
    }


def write_snapshot(out_dir: Path, snapshot: dict[str, Any], addresses: list[str], uni: Universe) -> str:
    path = out_dir / SNAPSHOT_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    t_ms = snapshot["time"]
    with path.open("wb") as f:
        for acct in snapshot["accounts"]:
            st = clearinghouse_state(acct, snapshot["mark"], uni, t_ms)
            f.write(orjson.dumps({"time": t_ms, "user": addresses[acct[0]], "state": st}) + b"\n")
    return SNAPSHOT_PATH


def write_ctxs(out_dir: Path, rows: list[dict[str, Any]], uni: Universe, funding: np.ndarray) -> str:
    path = out_dir / CTX_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    universe = [
        {"name": n, "szDecimals": int(d), "maxLeverage": int(l)}
        for n, d, l in zip(uni.names, uni.sz_decimals, uni.max_leverage)  # noqa: E741
    ]  # noqa: E741
    prev_day = uni.price0 * 1.021
    with path.open("wb") as f:
        for r in rows:
            ctxs = []
            for c in range(uni.n):
                sd = int(uni.sz_decimals[c])
                mk = float(r["mark"][c])
                orc = float(r["oracle"][c])
                ctxs.append(
                    {
                        "dayNtlVlm": fmt.usd(r["day_ntl"][c]),
                        "funding": fmt.dec(funding[c], 8),
                        "impactPxs": [fmt.px(round(mk * 0.9996, 6 - sd), sd), fmt.px(round(mk * 1.0004, 6 - sd), sd)],
                        "markPx": fmt.px(_r(mk, sd), sd),
                        "midPx": fmt.px(_r(mk * 1.00001, sd), sd),
                        "openInterest": fmt.dec(r["oi"][c], sd),
                        "oraclePx": fmt.px(_r(orc, sd), sd),
                        "premium": fmt.dec((mk - orc) / orc, 8),
                        "prevDayPx": fmt.px(_r(prev_day[c], sd), sd),
                        "dayBaseVlm": fmt.dec(r["day_base"][c], sd),
                    }
                )
            f.write(orjson.dumps({"time": r["time"], "ctxs": [{"universe": universe}, ctxs]}) + b"\n")
    return CTX_PATH


def _r(x: float, sd: int) -> float:
    return float(round_px(x, sd))


def write_vault(out_dir: Path, rows: list[tuple[int, float, float]]) -> str:
    """``vaultDetails``-shaped responses for the liquidator vault, one line per sample time."""
    path = out_dir / VAULT_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        for i, (t_ms, eq, pnl) in enumerate(rows):
            hist = rows[: i + 1]
            av_hist = [[t, fmt.usd(e)] for t, e, _ in hist]
            pnl_hist = [[t, fmt.usd(p)] for t, _, p in hist]
            port = {"accountValueHistory": av_hist, "pnlHistory": pnl_hist, "vlm": "0.0"}
            resp = {
                "name": "HLP Liquidator",
                "vaultAddress": VAULT_ADDRESS,
                "leader": "0x677d831aef5328190852e24f13c46cac05f984e7",
                "description": "HLP child vault performing backstop liquidations (simulated).",
                "portfolio": [[k, port] for k in ("day", "week", "month", "allTime")],
                "apr": 0.0,
                "followerState": None,
                "leaderFraction": 1.0,
                "leaderCommission": 0,
                "followers": [
                    {
                        "user": "Leader",
                        "vaultEquity": fmt.usd(eq),
                        "pnl": fmt.usd(pnl),
                        "allTimePnl": fmt.usd(pnl),
                        "daysFollowing": 600,
                        "vaultEntryTime": 1_700_000_000_000,
                        "lockupUntil": None,
                    }
                ],
                "maxDistributable": max(0.0, round(eq, 6)),
                "maxWithdrawable": 0.0,
                "isClosed": False,
                "relationship": {"type": "child"},
                "allowDeposits": False,
                "alwaysCloseOnWithdraw": False,
            }
            f.write(orjson.dumps({"time": t_ms, "vaultDetails": resp}) + b"\n")
    return VAULT_PATH


# --- the real published layouts (``formats="real"``): misc events, snapshot export, archive asset contexts --

MISC_DIR = "misc_events_by_block/hourly"
EXPORT_DIR = "snapshot"
ARCHIVE_CTX_DIR = "asset_ctxs"


def write_misc_events(
    out_dir: Path, blocks: dict[int, list], t_ns: np.ndarray, block_numbers: np.ndarray, rng: np.random.Generator
) -> list[str]:
    """``misc_events_by_block/hourly/YYYYMMDD/H.lz4``: one line per block that has events, hour files by
    local time (the node's write time, 0.15-1.5 s after the block)."""
    files: dict[str, list[bytes]] = {}
    for b in sorted(blocks):
        tb = int(t_ns[b])
        local = tb + int(rng.integers(150_000_000, 1_500_000_000))
        d = dt.datetime.fromtimestamp(local // 1_000_000_000, tz=dt.UTC)
        line = (
            orjson.dumps(
                {
                    "local_time": fmt.iso_ns(local),
                    "block_time": fmt.iso_ns(tb),
                    "block_number": int(block_numbers[b]),
                    "events": blocks[b],
                }
            )
            + b"\n"
        )
        files.setdefault(f"{d:%Y%m%d}/{d.hour}.lz4", []).append(line)
    for key, lines in files.items():
        path = out_dir / MISC_DIR / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(lz4.frame.compress(b"".join(lines)))
    return [str(Path(MISC_DIR) / k) for k in sorted(files)]


def write_snapshot_export(
    out_dir: Path, snapshot: dict[str, Any], addresses: list[str], uni: Universe, block: int
) -> list[str]:
    """The clearinghouse export: ``account_value_snapshot_<block>_<ms>.json`` (account value = cash + every
    position's uPnL) and ``perp_positions_by_market_<block>_<ms>.json`` (JSON numbers). The isolated margin
    is not in the export; the reader derives it as |size| * entry / leverage, the engine's own opening rule."""
    t_ms, marks = snapshot["time"], snapshot["mark"]
    unit = 10.0 ** -uni.sz_decimals.astype(float)
    accounts, markets = [], {c: [] for c in range(uni.n)}
    for a, cash, _reserve, iso, lev, positions in snapshot["accounts"]:
        av = cash
        long_ntl = short_ntl = 0.0
        rows = []
        for c, L, e in positions:
            sz = L * unit[c]
            ntl = abs(sz) * float(marks[c])
            av += sz * (float(marks[c]) - e)
            long_ntl += ntl if sz > 0 else 0.0
            short_ntl += ntl if sz < 0 else 0.0
            lv = int(min(max(lev, 1), int(uni.max_leverage[c])))
            rows.append(
                (
                    c,
                    {
                        "user": addresses[a],
                        "size": float(fmt.lots(L, int(uni.sz_decimals[c]))),
                        "notional_size": round(float(ntl), 6),
                        "funding_pnl": 0.0,
                        "entry_price": float(e),
                        "is_cross": not iso,
                        "leverage": lv,
                        "liquidation_price": None,
                    },
                )
            )
        av = float(av)
        for c, r in rows:
            r["account_value"] = round(av, 6)
            markets[c].append(r)
        accounts.append(
            {
                "user": addresses[a],
                "account_value": round(av, 6),
                "total_long_notional": round(long_ntl, 6),
                "total_short_notional": round(short_ntl, 6),
            }
        )
    d = out_dir / EXPORT_DIR
    d.mkdir(parents=True, exist_ok=True)
    names = [f"account_value_snapshot_{block}_{t_ms}.json", f"perp_positions_by_market_{block}_{t_ms}.json"]
    (d / names[0]).write_bytes(orjson.dumps(accounts, option=orjson.OPT_SERIALIZE_NUMPY))
    by_market = [
        {
            "market_name": f"hyperliquid:{uni.names[c]}",
            "snapshot_id": f"custom_{t_ms}",
            "position_count": len(markets[c]),
            "positions": markets[c],
        }
        for c in range(uni.n)
    ]
    (d / names[1]).write_bytes(orjson.dumps(by_market, option=orjson.OPT_SERIALIZE_NUMPY))
    return [f"{EXPORT_DIR}/{n}" for n in names]


def write_archive_ctxs(out_dir: Path, rows: list[dict[str, Any]], uni: Universe, funding: np.ndarray) -> str:
    """``asset_ctxs/<YYYYMMDD>.csv.lz4``: the first context of each minute, one row per coin."""
    header = (
        "time,coin,funding,open_interest,prev_day_px,day_ntl_vlm,premium,oracle_px,mark_px,mid_px,"
        "impact_bid_px,impact_ask_px\n"
    )
    lines, seen = [header], set()
    prev_day = uni.price0 * 1.021
    day = None
    for r in rows:
        minute = r["time"] // 60_000
        if minute in seen or r["time"] % 60_000 > 1_000:
            continue  # one row per coin per minute, stamped on the minute
        seen.add(minute)
        stamp = dt.datetime.fromtimestamp(minute * 60, tz=dt.UTC)
        day = day or stamp
        for c in range(uni.n):
            sd = int(uni.sz_decimals[c])
            mk, orc = float(r["mark"][c]), float(r["oracle"][c])
            lines.append(
                ",".join(
                    [
                        f"{stamp:%Y-%m-%dT%H:%M:%S}Z",
                        uni.names[c],
                        fmt.dec(funding[c], 8),
                        fmt.dec(r["oi"][c], sd),
                        fmt.px(_r(prev_day[c], sd), sd),
                        fmt.usd(r["day_ntl"][c]),
                        fmt.dec((mk - orc) / orc, 8),
                        fmt.px(_r(orc, sd), sd),
                        fmt.px(_r(mk, sd), sd),
                        fmt.px(_r(mk * 1.00001, sd), sd),
                        fmt.px(round(mk * 0.9996, 6 - sd), sd),
                        fmt.px(round(mk * 1.0004, 6 - sd), sd),
                    ]
                )
                + "\n"
            )
    name = f"{ARCHIVE_CTX_DIR}/{(day or dt.datetime(2025, 10, 10)):%Y%m%d}.csv.lz4"
    (out_dir / name).parent.mkdir(parents=True, exist_ok=True)
    (out_dir / name).write_bytes(lz4.frame.compress("".join(lines).encode()))
    return name
