"""Ledger updates: the delta types and their categories, and the typed columns of a ``ledger_events`` row,
shared by the node's ``misc_events_by_block`` LedgerUpdate deltas (:mod:`.misc_events`) and the info API's
``userNonFundingLedgerUpdates`` items (:func:`ledger_rows`): the same field names, one shape."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from forensics.formats.records import RecordError, address, dec, ms

#: LedgerUpdate delta types whose main-dex perp USDC effect >= 2 public readers apply identically
PERP_CASH_TYPES = frozenset({"deposit", "accountClassTransfer", "subAccountTransfer", "vaultDeposit", "vaultWithdraw"})
#: types with a perp cash effect the reference marks UNCONFIRMED (the replay's choice is a setting)
UNCONFIRMED_TYPES = frozenset(
    {
        "withdraw",
        "internalTransfer",
        "send",
        "vaultCreate",
        "vaultDistribution",
        "vaultLeaderCommission",
        "rewardsClaim",
        "accountActivationGas",
        "perpDexClassTransfer",
        "deployGasAuction",
        "borrowLend",
        "gossipPriorityGasAuction",
        "activateDexAbstraction",
    }
)
SPOT_TYPES = frozenset({"spotTransfer", "spotGenesis", "cStakingTransfer"})
SUMMARY_TYPES = frozenset({"liquidation"})
LEDGER_TYPES = PERP_CASH_TYPES | UNCONFIRMED_TYPES | SPOT_TYPES | SUMMARY_TYPES

STAKING_VARIANTS = frozenset({"CDeposit", "CWithdrawal", "Delegation", "ValidatorRewards"})
SYSTEM_VARIANTS = frozenset({"GossipPriorityAuctionRestart"})
SYSTEM_USER = "system"


def category(kind: str) -> str:
    if kind in PERP_CASH_TYPES:
        return "perp_cash"
    if kind in UNCONFIRMED_TYPES:
        return "unconfirmed"
    if kind in SPOT_TYPES:
        return "spot"
    if kind in SUMMARY_TYPES:
        return "summary"
    if kind in STAKING_VARIANTS:
        return "staking"
    if kind in SYSTEM_VARIANTS:
        return "system"
    return "unknown"  # only from the API, which does not quarantine types it does not know


def _opt_str(value: Any) -> str | None:
    return value[:128] if isinstance(value, str) else None


def ledger_fields(delta: dict[str, Any]) -> dict[str, Any]:
    """The typed columns every ledger row carries, from a delta object (API or node: same field names)."""
    kind = delta["type"]
    usdc = delta.get("usdc")
    if usdc is None and kind == "vaultWithdraw":
        usdc = delta.get("netWithdrawnUsd")
    if usdc is None and kind in ("send", "spotTransfer"):
        usdc = delta.get("usdcValue")
    destination = delta.get("destination", delta.get("vault"))
    to_perp = delta.get("toPerp")
    if to_perp is not None and not isinstance(to_perp, bool):
        raise RecordError("toPerp is not a boolean")
    if destination is not None:
        destination = address(destination, "destination")
    return {
        "type": kind,
        "usdc": dec(usdc, "usdc", required=False),
        "fee": dec(delta.get("fee"), "fee", required=False),
        "amount": dec(delta.get("amount"), "amount", required=False),
        "token": _opt_str(delta.get("token")),
        "destination": destination,
        "to_perp": to_perp,
        "account_value": dec(delta.get("accountValue"), "accountValue", required=False),
        "liquidated_ntl_pos": dec(delta.get("liquidatedNtlPos"), "liquidatedNtlPos", required=False),
        "leverage_type": delta.get("leverageType") if isinstance(delta.get("leverageType"), str) else None,
        "category": category(kind),
        "delta_json": orjson.dumps(delta, option=orjson.OPT_SORT_KEYS).decode(),
    }


def ledger_rows(user: str, item: Any) -> dict[str, Any]:
    """One ``userNonFundingLedgerUpdates`` item ``{time, hash, delta: {type, ...}}`` -> a ledger row
    (the same columns as a node LedgerUpdate row; block fields NULL)."""
    if not isinstance(item, dict):
        raise RecordError("ledger item is not an object")
    delta = item.get("delta")
    if not isinstance(delta, dict) or not isinstance(delta.get("type"), str) or not delta["type"]:
        raise RecordError("ledger delta has no type")
    hash_ = item.get("hash")
    fields = ledger_fields(delta)
    row = {
        **fields,
        "user": address(user),
        "time_ms": ms(item.get("time")),
        "hash": hash_ if isinstance(hash_, str) else None,
        "type": delta["type"][:64],
    }
    row["event_id"] = ledger_event_id(row)  # the same id the node's copy of this event gets
    return row


def ledger_event_id(row: dict[str, Any]) -> str:
    """The identity of one ledger event for one account, the same whichever source carried it: the node's
    misc_events_by_block LedgerUpdate (one row per address in ``users``) and the info API's
    userNonFundingLedgerUpdates item for that address describe it with the same account, transaction hash,
    time (ms), type and delta object (``delta_json``: keys sorted). Block fields are not part of it (the API
    has none)."""
    text = "\x1f".join(str(row.get(k) or "") for k in ("user", "hash", "time_ms", "type", "delta_json"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def with_event_id(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Set each row's ``event_id`` (:func:`ledger_event_id`); the rows, for chaining."""
    for row in rows:
        row["event_id"] = ledger_event_id(row)
    return rows
