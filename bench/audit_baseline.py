"""The audit benchmark's baseline: the plain per-event dictionary replay a researcher would write.

From the raw files (node fills lz4 JSON lines, ``clearinghouseState`` snapshot JSONL, ``metaAndAssetCtxs``
JSONL) it replays every fill into dicts (size re-anchored on ``startPosition``, Hyperliquid's entry
semantics, cash += closedPnl - fee, isolated margin), splits ADL legs into actions (a run of legs of one
transaction against one liquidated account), takes each action's pool just before its first leg (every
opposite-side position in the coin but the liquidator vaults', account value > 0, marks from the asset
context of the second), scores it under every rule, and counts per rule and account the actions where the
account ranked above the lowest selected candidate but was not selected ("skips"). The rule with the fewest
skipped accounts is named; accounts skipped in at least ``MIN_SKIPS`` actions under it are flagged.

Run as a module by ``bench/audit.py``; ``run(scenario_dir)`` returns the rule, flags and counts.
"""

from __future__ import annotations

import bisect
import math
from pathlib import Path

import lz4.frame
import orjson

MIN_SKIPS = 2


def _lines(path: Path):
    opener = lz4.frame.open if path.suffix == ".lz4" else open
    with opener(path, "rb") as f:
        for line in f:
            if line.strip():
                yield orjson.loads(line)


def _ratio_profit(p):
    return p["mark"] / p["entry"] if p["long"] else p["entry"] / p["mark"]


def _pnl_pct(p):
    return p["upnl"] / max(p["size"] * p["entry"], 1e-12)


def _bitmex(p):
    pnl, lev = _pnl_pct(p), max(p["lev"], 1e-12)
    return pnl * lev if pnl > 0 else pnl / lev


SCORES = {
    "hl_index": lambda p: _ratio_profit(p) * p["lev"],
    "hl_index_literal": lambda p: p["mark"] / p["entry"] * p["lev"],
    "bitmex": _bitmex,
    "binance": lambda p: max(p["upnl"], 0.0) / max(p["wallet"], 1.0) * (p["mm"] / p["av"] if p["av"] > 0 else 0.0),
    "upnl": lambda p: p["upnl"],
    "pnl_pct": _pnl_pct,
    "leverage": lambda p: p["lev"],
    "notional": lambda p: p["notional"],
}


def run(scenario: Path, *, snapshot: Path | None = None, asset_ctxs: Path | None = None) -> dict:
    snapshot = snapshot or scenario / "snapshot.jsonl"
    asset_ctxs = asset_ctxs or scenario / "asset_ctxs.jsonl"
    # --- snapshot ---------------------------------------------------------------------------------------
    pos: dict[tuple[str, str], dict] = {}
    cash: dict[str, float] = {}
    by_coin: dict[str, set[str]] = {}
    held: dict[str, set[str]] = {}
    max_lev: dict[str, int] = {}
    for row in _lines(snapshot):
        user, st = row["user"], row["state"]
        upnl_cross = 0.0
        for ap in st.get("assetPositions", []):
            p = ap["position"]
            iso = p["leverage"]["type"] == "isolated"
            q = {
                "szi": float(p["szi"]),
                "entry": float(p["entryPx"]),
                "iso": iso,
                "margin": float(p["marginUsed"]) - float(p["unrealizedPnl"]) if iso else 0.0,
            }
            pos[(user, p["coin"])] = q
            by_coin.setdefault(p["coin"], set()).add(user)
            held.setdefault(user, set()).add(p["coin"])
            max_lev[p["coin"]] = p.get("maxLeverage", max_lev.get(p["coin"], 1))
            if not iso:
                upnl_cross += float(p["unrealizedPnl"])
        cash[user] = float(st["crossMarginSummary"]["accountValue"]) - upnl_cross

    # --- marks and lots ---------------------------------------------------------------------------------
    mark_t: dict[str, list[int]] = {}
    mark_v: dict[str, list[float]] = {}
    lots: dict[str, float] = {}
    for row in _lines(asset_ctxs):
        meta, ctxs = row["ctxs"]
        for u, c in zip(meta["universe"], ctxs):
            mark_t.setdefault(u["name"], []).append(row["time"])
            mark_v.setdefault(u["name"], []).append(float(c["markPx"]))
            lots[u["name"]] = 10.0 ** -u["szDecimals"]
            max_lev.setdefault(u["name"], u["maxLeverage"])

    def mark(coin: str, t: int) -> float | None:
        i = bisect.bisect_right(mark_t.get(coin, []), t) - 1
        return mark_v[coin][i] if i >= 0 else None

    # --- replay, actions and their pools ------------------------------------------------------------------
    vaults: set[str] = set()
    actions: list[dict] = []
    current = None
    files = sorted((scenario / "node_fills_by_block").rglob("*.lz4"))
    for path in files:
        for block in _lines(path):
            for user, f in block["events"]:
                if f["coin"].startswith("@") or "/" in f["coin"]:
                    continue  # spot: not a perp position
                liq = f.get("liquidation") or {}
                liq_user = liq.get("liquidatedUser")
                if liq.get("method") == "backstop" and user != liq_user and f["dir"] != "Auto-Deleveraging":
                    vaults.add(user)
                if f["dir"] == "Auto-Deleveraging":
                    vaults.add(liq_user)
                    key = (block["block_number"], f["coin"], liq_user, f["hash"])
                    if current is None or current["key"] != key:
                        current = {
                            "key": key,
                            "coin": f["coin"],
                            "selected": {},
                            "pool": _pool(
                                f["coin"],
                                "short" if f["side"] == "B" else "long",
                                f["time"],
                                pos,
                                by_coin,
                                held,
                                cash,
                                vaults,
                                mark,
                                max_lev,
                            ),
                        }
                        actions.append(current)
                    current["selected"][user] = current["selected"].get(user, 0.0) + float(f["sz"])
                elif current is not None and user != current["key"][2]:
                    current = None
                _apply(pos, cash, by_coin, held, user, f)

    # --- every rule: skips per account -----------------------------------------------------------------
    skips: dict[str, dict[str, int]] = {}
    for name, score in SCORES.items():
        skips[name] = _queue_skips(actions, score)
    skips["random_cyclic"] = _cyclic_skips(actions)
    skips["contracts_pro_rata"] = _pro_rata_skips(actions, lots)
    cost = {
        name: sum(1 for n in s.values() if n >= MIN_SKIPS) + sum(n for n in s.values() if n < MIN_SKIPS)
        for name, s in skips.items()
    }
    best = min(cost, key=cost.get)
    flagged = sorted(u for u, n in skips[best].items() if n >= MIN_SKIPS)
    return {
        "best_rule": best,
        "flagged": flagged,
        "actions": len(actions),
        "cost": cost,
        "pool_rows": sum(len(a["pool"]) for a in actions),
    }


def _apply(pos, cash, by_coin, held, user, f) -> None:
    coin, sz = f["coin"], float(f["sz"])
    d = sz if f["side"] == "B" else -sz
    q = pos.get((user, coin))
    if q is None:
        q = pos[(user, coin)] = {"szi": 0.0, "entry": 0.0, "iso": False, "margin": 0.0}
    before = float(f["startPosition"])
    after = before + d
    px = float(f["px"])
    if before == 0 or before * after < 0:
        q["entry"] = px
    elif before * d > 0:
        q["entry"] = (q["entry"] * abs(before) + px * sz) / abs(after)
    q["szi"] = after if abs(after) > 1e-12 else 0.0
    pnl = float(f["closedPnl"]) - float(f["fee"])
    if q["iso"]:
        q["margin"] += pnl
        if q["szi"] == 0:
            cash[user] = cash.get(user, 0.0) + max(q["margin"], 0.0)
            q["margin"], q["iso"] = 0.0, False
    else:
        cash[user] = cash.get(user, 0.0) + pnl
    if q["szi"]:
        by_coin.setdefault(coin, set()).add(user)
        held.setdefault(user, set()).add(coin)
    else:
        by_coin.get(coin, set()).discard(user)
        held.get(user, set()).discard(coin)


def _pool(coin, adl_side, t, pos, by_coin, held, cash, vaults, mark, max_lev) -> list[dict]:
    m = mark(coin, t)
    if m is None:
        return []
    out = []
    for user in by_coin.get(coin, ()):
        q = pos[(user, coin)]
        if user in vaults or (q["szi"] > 0) != (adl_side == "long"):
            continue
        cross = 0.0
        for c in held.get(user, ()):
            p = pos[(user, c)]
            mc = mark(c, t)
            if not p["iso"] and mc is not None:
                cross += p["szi"] * (mc - p["entry"])
        size = abs(q["szi"])
        upnl = q["szi"] * (m - q["entry"])
        av = q["margin"] + upnl if q["iso"] else cash.get(user, 0.0) + cross
        if not av > 0:
            continue
        notional = size * m
        out.append(
            {
                "user": user,
                "long": q["szi"] > 0,
                "size": size,
                "entry": q["entry"],
                "mark": m,
                "upnl": upnl,
                "av": av,
                "notional": notional,
                "lev": notional / av,
                "wallet": cash.get(user, 0.0),
                "mm": notional / (2.0 * max_lev.get(coin, 1)),
            }
        )
    return out


def _count(skips: dict[str, int], users) -> None:
    for u in users:
        skips[u] = skips.get(u, 0) + 1


def _queue_skips(actions, score) -> dict[str, int]:
    skips: dict[str, int] = {}
    for a in actions:
        ranked = sorted(a["pool"], key=lambda p: (-_finite(score(p)), p["user"]))
        ranks = [i for i, p in enumerate(ranked) if p["user"] in a["selected"]]
        if ranks:
            _count(skips, (p["user"] for p in ranked[: max(ranks)] if p["user"] not in a["selected"]))
    return skips


def _cyclic_skips(actions) -> dict[str, int]:
    skips: dict[str, int] = {}
    for a in actions:
        ring = sorted(p["user"] for p in a["pool"])
        sel = [i for i, u in enumerate(ring) if u in a["selected"]]
        if not sel:
            continue
        first = ring.index(next(iter(a["selected"]))) if next(iter(a["selected"])) in ring else sel[0]
        walk = ring[first:] + ring[:first]
        last = max(i for i, u in enumerate(walk) if u in a["selected"])
        _count(skips, (u for u in walk[:last] if u not in a["selected"]))
    return skips


def _pro_rata_skips(actions, lots) -> dict[str, int]:
    skips: dict[str, int] = {}
    for a in actions:
        sel = [p for p in a["pool"] if p["user"] in a["selected"]]
        if not sel:
            continue
        fraction = sum(a["selected"][p["user"]] for p in sel) / sum(p["size"] for p in sel)
        lot = lots.get(a["coin"], 0.0)
        _count(skips, (p["user"] for p in a["pool"] if p["user"] not in a["selected"] and fraction * p["size"] >= lot))
    return skips


def _finite(x: float) -> float:
    return x if math.isfinite(x) else -math.inf
