"""OKX v5 wire shapes and normalizers (venue-apis.md §4).

Side convention: ``details[].side`` is the liquidation **order** side, ``posSide`` the liquidated
position (used when it is long/short). ``sz`` is in **contracts**: base = sz x ctVal for linear
contracts (ctValCcy = base coin); USD = sz x ctVal for inverse ones (ctValCcy = USD). ``bkPx`` is the
bankruptcy price. Every number is a string; ``ts`` is a ms string.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, NotRequired, TypedDict

from forensics.formats.cex.common import (
    RecordError,
    dec,
    div,
    event_hash,
    fill_row,
    liq_row,
    liquidated_side_from_order,
    ms_any,
    mul,
    obj,
    raw_json,
    symbol,
    text,
)

VENUE = "okx"
ADL_MAX = 5
INSURANCE_TYPES = frozenset(
    {"liquidation_balance_deposit", "bankruptcy_loss", "platform_revenue", "adl", "regular_update"}
)
ADL_TYPES = frozenset({"rate_adl_start", "bal_adl_start", "pos_adl_start", "adl_end"})
BILL_LIQUIDATION, BILL_ADL = "5", "9"
# subType -> (order side letter, kind, position side); ccxt okx.py fetch_ledger enum
BILL_SUBTYPES: dict[str, tuple[str, str, str | None]] = {
    "100": ("A", "partial_liquidation", "long"),
    "101": ("B", "partial_liquidation", "short"),
    "102": ("B", "partial_liquidation", None),
    "103": ("A", "partial_liquidation", None),
    "104": ("A", "liquidation", "long"),
    "105": ("B", "liquidation", "short"),
    "106": ("B", "liquidation", None),
    "107": ("A", "liquidation", None),
    "125": ("A", "adl", "long"),
    "126": ("B", "adl", "short"),
    "127": ("B", "adl", None),
    "128": ("A", "adl", None),
}


class WireLiquidationDetail(TypedDict):
    side: Literal["buy", "sell"]
    posSide: Literal["long", "short", "net"]
    sz: str
    bkPx: str
    bkLoss: str
    ccy: str
    ts: str


class WireLiquidationOrders(TypedDict):
    instId: str
    instType: str
    instFamily: str
    uly: str
    totalLoss: NotRequired[str]
    details: list[WireLiquidationDetail]


class WireInsuranceDetail(TypedDict):
    balance: str
    amt: str
    ccy: str
    type: str
    ts: str
    maxBal: NotRequired[str]
    maxBalTs: NotRequired[str]
    adlType: NotRequired[str]


class WireInsuranceFund(TypedDict):
    total: str
    instFamily: str
    instType: str
    details: list[WireInsuranceDetail]


class WireInstrument(TypedDict):
    instId: str
    instType: str
    ctVal: str
    ctValCcy: str
    ctType: Literal["linear", "inverse", ""]
    settleCcy: str


class WireBill(TypedDict):
    billId: str
    instId: str
    instType: str
    type: str
    subType: str
    px: str
    sz: str
    ts: str
    pnl: str
    fee: str
    ccy: str
    ordId: str
    tradeId: str
    mgnMode: str
    balChg: str


class WirePosition(TypedDict):
    instId: str
    instType: str
    adl: str
    pos: str
    posSide: Literal["long", "short", "net"]
    avgPx: str
    markPx: NotRequired[str]
    upl: str
    liqPx: str
    lever: str
    mgnMode: Literal["cross", "isolated"]
    uTime: str


@dataclass(frozen=True)
class Contract:
    """Contract value of one instrument (``/api/v5/public/instruments``)."""

    ct_val: Decimal
    inverse: bool  # ctValCcy is USD (size in USD) rather than the base coin


def instrument(item: WireInstrument | Any) -> tuple[str, Contract]:
    item = obj(item, "instrument")
    inst = symbol(item.get("instId"), "instId")
    ct = dec(item.get("ctVal"), "ctVal")
    if not ct or ct <= 0:
        raise RecordError("ctVal must be > 0")
    return inst, Contract(ct, item.get("ctType") == "inverse" or item.get("ctValCcy") in ("USD", "USDT", "USDC"))


def sizes(
    qty: Decimal, px: Decimal, contract: Contract | None
) -> tuple[Decimal | None, Decimal | None, Decimal | None]:
    """(contract_value, size_base, notional_usd) for ``qty`` contracts at ``px``."""
    if contract is None:
        return None, None, None
    if contract.inverse:
        usd = mul(qty, contract.ct_val)
        return contract.ct_val, div(usd, px), usd
    base = mul(qty, contract.ct_val)
    return contract.ct_val, base, mul(base, px)


def liquidation_rows(item: WireLiquidationOrders | Any, contracts: dict[str, Contract]) -> list[dict[str, Any]]:
    """One ``liquidation-orders`` data item -> one ``cex_liquidations`` row per detail."""
    item = obj(item, "liquidation-orders item")
    inst = symbol(item.get("instId"), "instId")
    details = item.get("details")
    if not isinstance(details, list):
        raise RecordError("details is not a list")
    return [liquidation_row(inst, d, contracts.get(inst)) for d in details]


def liquidation_row(inst: str, d: WireLiquidationDetail | Any, contract: Contract | None) -> dict[str, Any]:
    d = obj(d, "liquidation detail")
    raw_side = d.get("side")
    order_side = liquidated_side_from_order(raw_side)
    pos = d.get("posSide")
    if pos not in ("long", "short", "net"):
        raise RecordError(f"unknown posSide {str(pos)[:20]!r}")
    side = pos if pos in ("long", "short") else order_side
    if pos != "net" and pos != order_side:
        raise RecordError(f"posSide {pos} contradicts order side {raw_side}")
    t = ms_any(d.get("ts"), "ts")
    qty = dec(d.get("sz"), "sz")
    px = dec(d.get("bkPx"), "bkPx")
    ct, base, usd = sizes(qty, px, contract)
    return liq_row(
        symbol_=inst,
        time_ms=t,
        event_id=event_hash(inst, d.get("ts"), raw_side, pos, d.get("sz"), d.get("bkPx")),
        raw_side=raw_side,
        side_meaning="order",
        liquidated_position_side=side,
        price=px,
        price_kind="bankruptcy",
        qty=qty,
        qty_unit="contracts",
        contract_value=ct,
        size_base=base,
        notional_usd=usd,
        loss_usd=dec(d.get("bkLoss") or None, "bkLoss", required=False),
        status="filled",
        item=d,
    )


def insurance_rows(item: WireInsuranceFund | Any) -> list[dict[str, Any]]:
    """One ``insurance-fund`` data item -> one ``insurance_fund`` row per detail."""
    item = obj(item, "insurance-fund item")
    fam = item.get("instFamily") or item.get("uly") or item.get("instType")
    pool = symbol(fam, "instFamily")
    total = dec(item.get("total") or None, "total", required=False)
    details = item.get("details")
    if not isinstance(details, list):
        raise RecordError("details is not a list")
    rows = []
    for d in details:
        d = obj(d, "insurance detail")
        kind = d.get("type")
        if kind not in INSURANCE_TYPES:
            raise RecordError(f"unknown insurance-fund type {str(kind)[:30]!r}")
        adl_type = d.get("adlType") or None
        if adl_type is not None and adl_type not in ADL_TYPES:
            raise RecordError(f"unknown adlType {str(adl_type)[:30]!r}")
        rows.append(
            {
                "pool": pool,
                "asset": symbol(d.get("ccy"), "ccy"),
                "kind": kind,
                "time_ms": ms_any(d.get("ts"), "ts"),
                "balance": dec(d.get("balance"), "balance"),
                "balance_usd": total,
                "change": dec(d.get("amt") or None, "amt", required=False),
                "adl_type": adl_type,
            }
        )
    return rows


def bill_row(
    item: WireBill | Any, account: str, contracts: dict[str, Contract]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """An own liquidation/ADL bill (type 5 / 9) -> (``fills`` row, ``cex_liquidations`` row). ``sz`` -> base units."""
    item = obj(item, "bill")
    btype, sub = item.get("type"), item.get("subType")
    if btype not in (BILL_LIQUIDATION, BILL_ADL):
        raise RecordError(f"unexpected bill type {str(btype)[:10]!r} (want 5 liquidation or 9 ADL)")
    if sub not in BILL_SUBTYPES:
        raise RecordError(f"unknown bill subType {str(sub)[:10]!r}")
    letter, kind, pos_side = BILL_SUBTYPES[sub]
    if (kind == "adl") != (btype == BILL_ADL):
        raise RecordError(f"bill subType {sub} does not belong to type {btype}")
    inst = symbol(item.get("instId"), "instId")
    contract = contracts.get(inst)
    if contract is None:
        raise RecordError(f"unknown contract value for instId {inst}")
    bill_id = text(item.get("billId"), "billId", max_len=40)
    t = ms_any(item.get("ts"), "ts")
    px = dec(item.get("px"), "px")
    qty = dec(item.get("sz"), "sz")
    qty = abs(qty)
    ct, base, usd = sizes(qty, px, contract)
    if base is None:
        raise RecordError("cannot convert size to base units")
    trade_id = item.get("tradeId")
    ord_id = item.get("ordId")
    raw_side = "sell" if letter == "A" else "buy"
    side = pos_side or liquidated_side_from_order(raw_side)
    is_adl = kind == "adl"
    fill = fill_row(
        symbol_=inst,
        user=account,
        time_ms=t,
        fill_id=bill_id,
        tid=int(trade_id) if isinstance(trade_id, str) and trade_id.isdigit() else None,
        oid=int(ord_id) if isinstance(ord_id, str) and ord_id.isdigit() and int(ord_id) < 2**64 else None,
        side=letter,
        px=px,
        sz=base,
        dir_=f"bill:{btype}/{sub}",
        is_liquidation=not is_adl,
        is_liquidated_leg=not is_adl,
        is_adl=is_adl,
        closed_pnl=dec(item.get("pnl") or None, "pnl", required=False),
        fee=dec(item.get("fee") or None, "fee", required=False),
        fee_token=symbol(item["ccy"], "ccy") if item.get("ccy") else None,
    )
    liq = liq_row(
        symbol_=inst,
        time_ms=t,
        event_id=bill_id,
        raw_side=raw_side,
        side_meaning="order",
        liquidated_position_side=side,
        price=px,
        price_kind="fill",
        qty=qty,
        qty_unit="contracts",
        contract_value=ct,
        size_base=base,
        notional_usd=usd,
        is_adl=is_adl,
        account=account,
        item=item,
        status="filled",
    )
    return fill, liq


def position_rows(
    item: WirePosition | Any, account: str, time_ms: int, contracts: dict[str, Contract]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Own position -> (``adl_ranks`` row, ``position_snapshots`` row or None when flat)."""
    item = obj(item, "position")
    inst = symbol(item.get("instId"), "instId")
    adl = item.get("adl")
    if not (isinstance(adl, str) and adl.isdigit() and 0 <= int(adl) <= ADL_MAX) and adl != "":
        raise RecordError(f"adl out of range 1..{ADL_MAX}")
    pos = dec(item.get("pos"), "pos")
    ps = item.get("posSide")
    if ps not in ("long", "short", "net"):
        raise RecordError(f"unknown posSide {str(ps)[:20]!r}")
    side = ps if ps != "net" else ("long" if pos > 0 else "short" if pos < 0 else "both")
    contract = contracts.get(inst)
    px = dec(item.get("avgPx") or None, "avgPx", required=False)
    base = sizes(abs(pos), px, contract)[1] if px else None
    signed = None if base is None else (-base if side == "short" else base)
    rank = int(adl) if adl else None
    rank_row = {
        "kind": "account_rank",
        "account": account,
        "symbol": inst,
        "position_side": side,
        "time_ms": time_ms,
        "rank": rank,
        "rank_max": ADL_MAX,
        "percentile": rank / ADL_MAX if rank is not None else None,
        "position_size": signed,
        "raw_json": raw_json(item),
    }
    snap = None
    if pos and signed is not None:
        mode = item.get("mgnMode")
        lever = item.get("lever")
        snap = {
            "user": account,
            "coin": inst,
            "time_ms": time_ms,
            "szi": signed,
            "entry_px": px,
            "unrealized_pnl": dec(item.get("upl") or None, "upl", required=False),
            "liquidation_px": dec(item.get("liqPx") or None, "liqPx", required=False),
            "leverage_type": mode if mode in ("cross", "isolated") else "cross",
            "leverage": int(float(lever)) if isinstance(lever, str) and lever.replace(".", "", 1).isdigit() else None,
        }
    return rank_row, snap
