"""Cash events between fills: funding and ledger updates as per-user USDC deltas, in replay order.

Rules (reference ``hyperliquid-node-data.md`` §6; the choices for effects it marks UNCONFIRMED are in
``docs/ledger_cash.md`` and are settings of :class:`CashSettings`):

* Funding: ``+funding_amount`` to the account's cash, or to the position's isolated margin when the
  (user, coin) position is isolated.
* ``deposit +usdc``; ``accountClassTransfer ±usdc`` (``toPerp``); ``subAccountTransfer`` user ``-usdc``,
  destination ``+usdc``; ``vaultDeposit`` depositor ``-usdc``, vault ``+usdc``; ``vaultWithdraw`` user
  ``+netWithdrawnUsd``, vault ``-netWithdrawnUsd``.
* UNCONFIRMED (settings): ``withdraw``, ``internalTransfer``, ``send``, ``vaultCreate``,
  ``vaultLeaderCommission``, ``rewardsClaim``, ``accountActivationGas``; types with no documented formula
  (``vaultDistribution``, ``perpDexClassTransfer``, ``borrowLend``, ...) move nothing and are counted.
* Never cash: spot (``spotTransfer``, ``spotGenesis``, ``cStakingTransfer``), staking variants, system
  events, and ``liquidation`` (a summary; it is checked, never used as an override).

Order: a block's misc events apply before the block's fills (``misc_before_fills``), in file order;
events of a block after the last replayed fill are dropped (they cannot change a pool).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import orjson
import polars as pl

DEC = pl.Decimal(38, 10)

#: the documented default for each UNCONFIRMED effect (docs/ledger_cash.md gives the evidence)
DEFAULT_UNCONFIRMED = {
    "withdraw": "usdc_plus_fee",  # -(usdc + fee) (HyperReplay, X-QL); "usdc_only" (HyperMultiAssetedADL)
    "internalTransfer": "sender_pays_fee",  # user -(usdc + fee), destination +usdc; "no_fee"; "ignore"
    "send": "main_dex_usdc",  # legs whose dex is "" (main perp dex) and token USDC; "ignore"
    "vaultCreate": "apply",  # creator -(usdc + fee), vault +usdc; "ignore"
    "vaultLeaderCommission": "apply",  # user +usdc; "ignore"
    "rewardsClaim": "apply",  # +amount when token is USDC; "ignore"
    "accountActivationGas": "ignore",  # X-QL charges it, HyperReplay does not; "apply": -amount if USDC
}


@dataclass(frozen=True)
class CashSettings:
    """How the replay turns ledger rows into cash (see the module doc and docs/ledger_cash.md)."""

    misc_before_fills: bool = True
    apply_funding: bool = True
    apply_ledger: bool = True
    unconfirmed: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_UNCONFIRMED))

    def choice(self, kind: str) -> str:
        return self.unconfirmed.get(kind, DEFAULT_UNCONFIRMED.get(kind, "ignore"))


_ZERO = Decimal(0)


def _d(value: Any) -> Decimal:
    if value is None:
        return _ZERO
    return Decimal(str(value))


def _usdc_token(token: Any) -> bool:
    return token is None or (isinstance(token, str) and token.upper().startswith("USDC"))


def ledger_delta(user: str, kind: str, delta: dict[str, Any], settings: CashSettings) -> Decimal | None:
    """The perp USDC cash change of ``user`` from one ledger delta, or None when it moves none."""
    me = user.lower()
    sender = str(delta.get("user", "")).lower()
    dest = str(delta.get("destination", delta.get("vault", ""))).lower()
    usdc, fee = _d(delta.get("usdc")), _d(delta.get("fee"))
    choice = settings.choice(kind)
    if kind == "deposit":
        return usdc
    if kind == "accountClassTransfer":
        return usdc if delta.get("toPerp") else -usdc
    if kind == "subAccountTransfer":
        return -usdc if me == sender else (usdc if me == dest else None)
    if kind == "vaultDeposit":
        return usdc if me == dest else -usdc
    if kind == "vaultWithdraw":
        net = _d(delta.get("netWithdrawnUsd"))
        return -net if me == dest and me != sender else net
    if choice == "ignore":
        return None
    if kind == "withdraw":
        return -(usdc + fee) if choice == "usdc_plus_fee" else -usdc
    if kind == "internalTransfer":
        if me == sender:
            return -(usdc + fee) if choice == "sender_pays_fee" else -usdc
        return usdc if me == dest else None
    if kind == "send":
        if not _usdc_token(delta.get("token")):
            return None
        amount = _d(delta.get("amount", delta.get("usdcValue")))
        if me == sender and delta.get("sourceDex", "") == "":
            return -(amount + fee) if _usdc_token(delta.get("feeToken")) else -amount
        if me == dest and delta.get("destinationDex", "") == "":
            return amount
        return None
    if kind == "vaultCreate":
        return usdc if me == dest else -(usdc + fee)
    if kind == "vaultLeaderCommission":
        return usdc
    if kind == "rewardsClaim":
        return _d(delta.get("amount")) if _usdc_token(delta.get("token")) else None
    if kind == "accountActivationGas":
        return -_d(delta.get("amount")) if _usdc_token(delta.get("token")) else None
    return None


def cash_events(
    ledger: pl.DataFrame | None, funding: pl.DataFrame | None, settings: CashSettings | None = None
) -> tuple[pl.DataFrame, dict[str, int]]:
    """(events, counts): one row per (user, cash change) with ``user``, ``coin`` (funding only),
    ``block_number``, ``event_index``, ``time_ms``, ``amount`` (exact), ``kind``; counts per type applied
    and not applied (``ignored:<type>``) for the run's summary."""
    settings = settings or CashSettings()
    parts: list[pl.DataFrame] = []
    counts: dict[str, int] = {}
    schema = {
        "user": pl.Utf8,
        "coin": pl.Utf8,
        "block_number": pl.Int64,
        "event_index": pl.Int64,
        "sub_index": pl.Int64,
        "time_ms": pl.Int64,
        "amount": DEC,
        "kind": pl.Utf8,
    }
    if settings.apply_funding and funding is not None and funding.height:
        parts.append(
            funding.select(
                "user",
                "coin",
                pl.col("block_number").cast(pl.Int64),
                pl.col("event_index").cast(pl.Int64),
                pl.col("delta_index").cast(pl.Int64).alias("sub_index"),
                pl.col("time_ms").cast(pl.Int64),
                pl.col("funding_amount").cast(DEC).alias("amount"),
                pl.lit("funding").alias("kind"),
            )
        )
        counts["funding"] = funding.height
    if settings.apply_ledger and ledger is not None and ledger.height:
        rows = []
        cols = ledger.select("user", "type", "delta_json", "block_number", "event_index", "time_ms").iter_rows()
        for k, (user, kind, delta_json, block, index, time_ms) in enumerate(cols):
            try:
                delta = orjson.loads(delta_json) if delta_json else {}
            except orjson.JSONDecodeError:
                delta = {}
            amount = ledger_delta(user, kind, delta, settings) if isinstance(delta, dict) else None
            if amount is None or amount == 0:
                counts[f"ignored:{kind}"] = counts.get(f"ignored:{kind}", 0) + 1
                continue
            counts[kind] = counts.get(kind, 0) + 1
            rows.append((user, None, block, index, k, time_ms, amount, kind))
        if rows:
            parts.append(pl.DataFrame(rows, schema=schema, orient="row"))
    if not parts:
        return pl.DataFrame(schema=schema), counts
    ev = pl.concat([p.select(list(schema)).cast(schema) for p in parts], how="vertical")
    # replay order of cash events among themselves: block (time when no block), event, sub-index
    return ev.sort(["block_number", "time_ms", "event_index", "sub_index"], nulls_last=True), counts


def place_in_fills(cash: pl.DataFrame, fills: pl.DataFrame, *, by_block: bool, before_fills: bool) -> np.ndarray:
    """For each cash event, the ``ord`` of the last fill it follows (-1: before every fill), given the ordered
    fills (``order_fills`` output). A block's events precede its fills when ``before_fills``."""
    if by_block:
        keys = fills["block_number"].to_numpy()
        q = cash["block_number"].fill_null(-1).to_numpy()
    else:
        keys = fills["time_ms"].to_numpy()
        q = cash["time_ms"].to_numpy()
    pos = np.searchsorted(keys, q, side="left" if before_fills else "right")
    return pos.astype(np.int64) - 1
