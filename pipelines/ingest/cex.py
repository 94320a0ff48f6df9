"""Pull CEX venues (Binance, Bybit, OKX, BitMEX, Deribit, dYdX) into the lake: public and own-account.

One pull = (venue, symbols, window[, account]). Every dataset of the pull (e.g. ``forceOrders``,
``insuranceBalance``) is one input with a key derived from (venue, dataset, symbols, window, account),
so re-running the same pull replaces exactly its files. Each response is kept in ``raw/`` with its
request metadata (unsigned, secrets never present); each item becomes rows or a quarantine entry with
the reason; each dataset records ``read = written + quarantined`` in ``ingest_runs``. A request that
still fails after the client's retries (or a refused key) stops the pull with one line and writes
nothing: a pull is written whole or not at all, so an incomplete one never replaces a complete one.
Items repeated on page boundaries are de-duplicated (noted), items outside the window dropped
(noted) - both before counting.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa

from forensics.formats.cex import binance as fb
from forensics.formats.cex import bitmex as fm
from forensics.formats.cex import bybit as fy
from forensics.formats.cex import deribit as fd
from forensics.formats.cex import dydx as fx
from forensics.formats.cex import okx as fo
from forensics.formats.cex.common import RecordError, rows_to_arrow
from forensics.tables import FILLS, POSITION_SNAPSHOTS, Table
from forensics.tables.cex import ADL_ALERTS, ADL_RANKS, CEX_LIQUIDATIONS, CEX_MARKET, INSURANCE_FUND
from pipelines.ingest.common import PullError, Rejects, finish, raw_response_record, raw_text, write_rows
from pipelines.ingest.report import IngestReport, sandbox_mark
from pipelines.ingest.safety import pull_failed
from pipelines.lake import Lake, RawApiWriter, sha256_file, source_key
from pipelines.venues import VENUE_CLIENTS
from pipelines.venues.base import RawResponse, VenueError, VenueHTTPClient
from pipelines.venues.signing import ApiCredentials

__all__ = ["CEX_VENUES", "DEFAULT_SYMBOLS", "PullError", "account_label", "make_client", "pull"]

CEX_VENUES = ("binance", "bybit", "okx", "bitmex", "deribit", "dydx")
DEFAULT_SYMBOLS: dict[str, tuple[str, ...]] = {
    "binance": ("BTCUSDT", "ETHUSDT"),
    "bybit": ("USDT",),  # insurance coin
    "okx": ("BTC-USDT",),  # instrument families
    "bitmex": ("XBt",),  # insurance currencies
    "deribit": ("BTC-PERPETUAL",),
    "dydx": ("BTC-USD",),
}
PRIVATE_VENUES = frozenset({"binance", "bybit", "okx", "bitmex", "deribit"})
_LABEL = re.compile(r"^[a-z0-9_]{1,32}$")
_SYMBOL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_DYDX_ADDRESS = re.compile(r"^dydx1[02-9ac-hj-np-z]{38,58}$")


def account_label(venue: str, creds: ApiCredentials) -> str:
    """``LIQF_<VENUE>_ACCOUNT`` when set (``[a-z0-9_]``), else ``key:<sha256(key)[:8]>`` - never the key itself."""
    label = os.environ.get(f"LIQF_{venue.upper()}_ACCOUNT")
    if label:
        if not _LABEL.match(label):
            raise PullError(f"LIQF_{venue.upper()}_ACCOUNT must match [a-z0-9_]{{1,32}}")
        return label
    return f"key:{creds.fingerprint}"


def make_client(
    venue: str, base_url: str | None, *, credentials: ApiCredentials | None = None, **kw: Any
) -> VenueHTTPClient:
    cls = VENUE_CLIENTS.get(venue)
    if cls is None or venue not in CEX_VENUES:
        raise PullError(f"unknown venue {venue!r}; one of {', '.join(CEX_VENUES)}")
    if credentials is not None:
        kw["credentials"] = credentials
    return cls(base_url, **kw)


@dataclass(kw_only=True)
class _Dataset(Rejects):
    target: Table
    tables: tuple[Table, ...]
    since_ms: int
    until_ms: int
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    raw: RawApiWriter
    seen: set[bytes] = field(default_factory=set)
    duplicates: int = 0
    outside: int = 0

    def item(
        self, raw: Any, fn: Callable[[Any], Iterable[tuple[Table, dict[str, Any]]]], *, time_ms: int | None = None
    ) -> None:
        """Normalize one venue item: every (table, row) it yields is kept, or the item is quarantined."""
        k = hashlib.sha256(orjson.dumps(raw, option=orjson.OPT_SORT_KEYS, default=str)).digest()
        if k in self.seen:
            self.duplicates += 1
            return
        self.seen.add(k)
        if time_ms is not None and not (self.since_ms <= time_ms <= self.until_ms):
            self.outside += 1
            return
        self.report.records_read += 1
        try:
            out = list(fn(raw))
        except (RecordError, KeyError, TypeError, ValueError, AttributeError) as exc:
            reason = str(exc) if isinstance(exc, RecordError) else f"malformed item ({type(exc).__name__}: {exc})"
            self.rejects.append((self.report.records_read, None, reason[:500], raw_text(raw)))
            return
        for table, row in out:
            self.rows.setdefault(table.name, []).append(row)
        self.report.records_written += 1


def _ms_in(item: Any, key: str, nested: str | None = None) -> int | None:
    """Best-effort event time of an item for window filtering (None = keep, the normalizer decides)."""
    v = item.get(key) if isinstance(item, dict) else None
    if isinstance(v, str) and v.isdigit():
        return int(v)
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    return None


class _Pull:
    def __init__(
        self,
        lake: Lake,
        venue: str,
        client: Any,
        open_raw: Callable[[str], RawApiWriter],
        symbols: Sequence[str],
        since_ms: int,
        until_ms: int,
        account: str | None,
    ) -> None:
        self.lake, self.venue, self.client, self.open_raw = lake, venue, client, open_raw
        self.symbols, self.since_ms, self.until_ms, self.account = list(symbols), since_ms, until_ms, account
        self.sym_hash = hashlib.sha256("\n".join(sorted(symbols)).encode()).hexdigest()[:16]
        self.datasets: list[_Dataset] = []

    def dataset(self, name: str, target: Table, *tables: Table) -> _Dataset:
        key = source_key("api", self.venue, name, self.sym_hash, self.since_ms, self.until_ms, self.account or "")
        who = f" [{self.account}]" if self.account else ""
        report = IngestReport(self.venue, f"api:{self.venue}:{name}", f"{self.venue} {name}{who}", key)
        report.origin = getattr(self.client, "base_url", None)
        ds = _Dataset(
            report=report,
            target=target,
            tables=(target, *tables),
            since_ms=self.since_ms,
            until_ms=self.until_ms,
            raw=self.open_raw(key),  # the dataset's own raw file: its hash and size are the input's
        )
        self.datasets.append(ds)
        return ds

    def pages(
        self, ds: _Dataset, what: str, call: Callable[[], Iterator[RawResponse] | RawResponse]
    ) -> Iterator[RawResponse]:
        """Responses of one request (or pager), written to raw. A request that still fails after the
        client's retries (or a refused key) stops the pull: nothing of it is written, the raw file neither."""
        try:
            out = call()
            for page in [out] if isinstance(out, RawResponse) else out:
                ds.raw.write(raw_response_record(page))
                yield page
        except VenueError as exc:
            raise pull_failed(self.venue, what, exc) from None

    def note(self, ds: _Dataset, text: str) -> None:
        ds.report.notes.append(text)


# -------------------------------------------------------------------------------------------------
# per-venue pulls
# -------------------------------------------------------------------------------------------------


def _binance(p: _Pull, private: bool) -> None:
    c = p.client
    ds = p.dataset("insuranceBalance", INSURANCE_FUND)
    for page in p.pages(ds, "insuranceBalance", c.insurance_balance):
        pools = page.payload if isinstance(page.payload, list) else [page.payload]
        for pool in pools:
            ds.item(pool, lambda x: ((INSURANCE_FUND, r) for r in fb.insurance_rows(x)))
    ds = p.dataset("symbolAdlRisk", ADL_RANKS)
    for page in p.pages(ds, "symbolAdlRisk", c.symbol_adl_risk):
        for item in page.payload if isinstance(page.payload, list) else [page.payload]:
            ds.item(item, lambda x: [(ADL_RANKS, fb.symbol_adl_risk_row(x))])
    ds = p.dataset("premiumIndex", CEX_MARKET)
    for sym in p.symbols:
        prem = list(p.pages(ds, f"premiumIndex {sym}", lambda s=sym: c.premium_index(s)))
        oi = list(p.pages(ds, f"openInterest {sym}", lambda s=sym: c.open_interest(s)))
        if prem:
            o = oi[0].payload if oi else None
            ds.item(prem[0].payload, lambda x, o=o: [(CEX_MARKET, fb.market_row(x, o))])
    if not private:
        return
    ds = p.dataset("forceOrders", CEX_LIQUIDATIONS, FILLS)

    def force(x: Any) -> Iterator[tuple[Table, dict[str, Any]]]:
        liq, fill = fb.force_order_rows(x, p.account or "")
        yield CEX_LIQUIDATIONS, liq
        if fill is not None:
            yield FILLS, fill

    for page in p.pages(ds, "forceOrders", lambda: c.force_orders(p.since_ms, p.until_ms)):
        for item in page.payload if isinstance(page.payload, list) else [page.payload]:
            ds.item(item, force, time_ms=_ms_in(item, "updateTime"))
    ds = p.dataset("adlQuantile", ADL_RANKS)
    for page in p.pages(ds, "adlQuantile", c.adl_quantile):
        for item in page.payload if isinstance(page.payload, list) else [page.payload]:
            ds.item(
                item,
                lambda x, t=page.received_at: ((ADL_RANKS, r) for r in fb.adl_quantile_rows(x, p.account or "", t)),
            )
    p.datasets[-1].report.notes.extend(c.notes)


def _bybit_result(page: RawResponse) -> Any:
    return page.payload.get("result") if isinstance(page.payload, dict) else None


def _bybit(p: _Pull, private: bool) -> None:
    c = p.client
    ds = p.dataset("insurance", INSURANCE_FUND)
    for coin in p.symbols:
        for page in p.pages(ds, f"insurance {coin}", lambda k=coin: c.insurance(k)):
            res = _bybit_result(page)
            try:
                t = fy.ms_any(res.get("updatedTime"), "updatedTime") if isinstance(res, dict) else None
            except RecordError:
                t = None
            if t is None:
                ds.item(res, lambda x: (_ for _ in ()).throw(RecordError("insurance result has no updatedTime")))
                continue
            for item in res.get("list") or []:
                ds.item(item, lambda x, t=t: [(INSURANCE_FUND, fy.insurance_row(x, t))])
    ds = p.dataset("adlAlert", ADL_ALERTS)
    for page in p.pages(ds, "adlAlert", c.adl_alert):
        res = _bybit_result(page) or {}
        t = int(res["updatedTime"]) if str(res.get("updatedTime", "")).isdigit() else page.received_at
        for item in res.get("list") or []:
            ds.item(item, lambda x, t=t: [(ADL_ALERTS, fy.adl_alert_row(x, t))])
    if not private:
        return
    ds = p.dataset("execution", CEX_LIQUIDATIONS, FILLS)

    def exe(x: Any) -> Iterator[tuple[Table, dict[str, Any]]]:
        liq, fill = fy.execution_rows(x, p.account or "")
        if liq is not None:
            yield CEX_LIQUIDATIONS, liq
        yield FILLS, fill

    for et in ("BustTrade", "AdlTrade"):
        for page in p.pages(ds, f"execution/list {et}", lambda e=et: c.executions(p.since_ms, p.until_ms, exec_type=e)):
            for item in (_bybit_result(page) or {}).get("list") or []:
                ds.item(item, exe, time_ms=_ms_in(item, "execTime"))
    ds = p.dataset("position", ADL_RANKS, POSITION_SNAPSHOTS)

    def pos(x: Any, t: int) -> Iterator[tuple[Table, dict[str, Any]]]:
        rank, snap = fy.position_rows(x, p.account or "", t)
        yield ADL_RANKS, rank
        if snap is not None:
            yield POSITION_SNAPSHOTS, snap

    for page in p.pages(ds, "position/list", c.positions):
        for item in (_bybit_result(page) or {}).get("list") or []:
            ds.item(item, lambda x, t=page.received_at: pos(x, t))


def _okx_data(page: RawResponse) -> list[Any]:
    d = page.payload.get("data") if isinstance(page.payload, dict) else None
    return d if isinstance(d, list) else []


def _okx(p: _Pull, private: bool) -> None:
    c = p.client
    contracts: dict[str, fo.Contract] = {}
    ds = p.dataset("liquidation-orders", CEX_LIQUIDATIONS)
    for page in p.pages(ds, "instruments SWAP", lambda: c.instruments("SWAP")):
        for inst in _okx_data(page):
            try:
                k, v = fo.instrument(inst)
                contracts[k] = v
            except RecordError:
                pass  # an instrument we cannot use only leaves its sizes in contracts
    for fam in p.symbols:
        for page in p.pages(
            ds, f"liquidation-orders {fam}", lambda f=fam: c.liquidation_orders(p.since_ms, p.until_ms, inst_family=f)
        ):
            for item in _okx_data(page):
                inst = item.get("instId") if isinstance(item, dict) else None
                for det in (
                    item.get("details") if isinstance(item, dict) and isinstance(item.get("details"), list) else [item]
                ):
                    one = {**item, "details": [det]} if isinstance(item, dict) else item
                    ds.item(
                        one,
                        lambda x, i=inst: [(CEX_LIQUIDATIONS, r) for r in fo.liquidation_rows(x, contracts)],
                        time_ms=_ms_in(det, "ts"),
                    )
    ds.report.notes.extend(n for n in c.notes if "liquidation" in n)
    missing = sorted({r["symbol"] for r in ds.rows.get(CEX_LIQUIDATIONS.name, []) if r["size_base"] is None})
    if missing:
        ds.report.notes.append(f"no ctVal for {', '.join(missing)}: sizes left in contracts")
    ds = p.dataset("insurance-fund", INSURANCE_FUND)
    for fam in p.symbols:
        for page in p.pages(
            ds, f"insurance-fund {fam}", lambda f=fam: c.insurance_fund(p.since_ms, p.until_ms, inst_family=f)
        ):
            for item in _okx_data(page):
                for det in (
                    item.get("details") if isinstance(item, dict) and isinstance(item.get("details"), list) else [item]
                ):
                    one = {**item, "details": [det]} if isinstance(item, dict) else item
                    ds.item(
                        one, lambda x: [(INSURANCE_FUND, r) for r in fo.insurance_rows(x)], time_ms=_ms_in(det, "ts")
                    )
    if not private:
        return
    ds = p.dataset("bills", FILLS, CEX_LIQUIDATIONS)

    def bill(x: Any) -> Iterator[tuple[Table, dict[str, Any]]]:
        fill, liq = fo.bill_row(x, p.account or "", contracts)
        yield FILLS, fill
        yield CEX_LIQUIDATIONS, liq

    for btype in (fo.BILL_LIQUIDATION, fo.BILL_ADL):
        for page in p.pages(ds, f"bills type {btype}", lambda b=btype: c.bills(p.since_ms, p.until_ms, bill_type=b)):
            for item in _okx_data(page):
                ds.item(item, bill, time_ms=_ms_in(item, "ts"))
    ds = p.dataset("positions", ADL_RANKS, POSITION_SNAPSHOTS)

    def pos(x: Any, t: int) -> Iterator[tuple[Table, dict[str, Any]]]:
        rank, snap = fo.position_rows(x, p.account or "", t, contracts)
        yield ADL_RANKS, rank
        if snap is not None:
            yield POSITION_SNAPSHOTS, snap

    for page in p.pages(ds, "positions", c.positions):
        for item in _okx_data(page):
            ds.item(item, lambda x, t=page.received_at: pos(x, t))


def _bitmex(p: _Pull, private: bool) -> None:
    c = p.client
    contracts: dict[str, fm.Contract] = {}
    ds = p.dataset("liquidation", CEX_LIQUIDATIONS)
    for page in p.pages(ds, "instrument/active", c.instruments):
        for inst in page.payload if isinstance(page.payload, list) else []:
            try:
                k, v = fm.instrument(inst)
                contracts[k] = v
            except RecordError:
                pass
    for page in p.pages(ds, "liquidation", c.liquidations):
        for item in page.payload if isinstance(page.payload, list) else [page.payload]:
            ds.item(item, lambda x, t=page.received_at: [(CEX_LIQUIDATIONS, fm.liquidation_row(x, t, contracts))])
    ds.report.notes.append("BitMEX /liquidation lists only orders open at pull time; time = receive time")
    ds = p.dataset("insurance", INSURANCE_FUND)
    for cur in p.symbols:
        for page in p.pages(ds, f"insurance {cur}", lambda k=cur: c.insurance(p.since_ms, p.until_ms, k)):
            for item in page.payload if isinstance(page.payload, list) else [page.payload]:
                ds.item(item, lambda x: [(INSURANCE_FUND, fm.insurance_row(x))])
    if not private:
        return
    ds = p.dataset("execution", FILLS, CEX_LIQUIDATIONS)
    other = 0

    def exe(x: Any) -> Iterator[tuple[Table, dict[str, Any]]]:
        liq, fill = fm.execution_rows(x, p.account or "")
        yield FILLS, fill
        if liq is not None:
            yield CEX_LIQUIDATIONS, liq

    for page in p.pages(ds, "execution/tradeHistory", lambda: c.executions(p.since_ms, p.until_ms)):
        for item in page.payload if isinstance(page.payload, list) else [page.payload]:
            if isinstance(item, dict) and isinstance(item.get("execType"), str) and fm.execution_kind(item) is None:
                other += 1  # funding, settlement...: not fills
                continue
            ds.item(item, exe)
    ds.report.notes.append(f"{other} executions that are not trades (funding, settlement) kept in raw only")
    ds = p.dataset("position", ADL_RANKS, POSITION_SNAPSHOTS)

    def pos(x: Any, t: int) -> Iterator[tuple[Table, dict[str, Any]]]:
        rank, snap = fm.position_rows(x, p.account or "", t)
        yield ADL_RANKS, rank
        if snap is not None:
            yield POSITION_SNAPSHOTS, snap

    for page in p.pages(ds, "position", c.positions):
        for item in page.payload if isinstance(page.payload, list) else [page.payload]:
            ds.item(item, lambda x, t=page.received_at: pos(x, t))


def _deribit(p: _Pull, private: bool) -> None:
    c = p.client
    ds = p.dataset("trades", CEX_LIQUIDATIONS)
    plain = 0
    for inst in p.symbols:
        for page in p.pages(ds, f"trades {inst}", lambda i=inst: c.trades_by_time(i, p.since_ms, p.until_ms)):
            res = page.payload.get("result") if isinstance(page.payload, dict) else None
            for t in res.get("trades") or [] if isinstance(res, dict) else []:
                if isinstance(t, dict) and "liquidation" not in t:
                    plain += 1
                    continue
                ds.item(t, lambda x: [(CEX_LIQUIDATIONS, fd.trade_row(x))], time_ms=_ms_in(t, "timestamp"))
    ds.report.notes.append(f"{plain} trades without a liquidation flag kept in raw only")
    ds.report.notes.extend(c.notes)
    ds = p.dataset("settlements", INSURANCE_FUND)
    for inst in p.symbols:
        for page in p.pages(ds, f"settlements {inst}", lambda i=inst: c.settlements(i)):
            res = page.payload.get("result") if isinstance(page.payload, dict) else None
            for s in res.get("settlements") or [] if isinstance(res, dict) else []:
                ds.item(
                    s, lambda x, i=inst: [(INSURANCE_FUND, fd.settlement_row(x, i))], time_ms=_ms_in(s, "timestamp")
                )
    if not private:
        return
    ds = p.dataset("user-trades", FILLS, CEX_LIQUIDATIONS)

    def own(x: Any) -> Iterator[tuple[Table, dict[str, Any]]]:
        liq, fill = fd.user_trade_rows(x, p.account or "")
        yield FILLS, fill
        if liq is not None:
            yield CEX_LIQUIDATIONS, liq

    for inst in p.symbols:
        for page in p.pages(ds, f"user trades {inst}", lambda i=inst: c.user_trades_by_time(i, p.since_ms, p.until_ms)):
            res = page.payload.get("result") if isinstance(page.payload, dict) else None
            for t in res.get("trades") or [] if isinstance(res, dict) else []:
                ds.item(t, own, time_ms=_ms_in(t, "timestamp"))
    ds = p.dataset("positions", POSITION_SNAPSHOTS)
    currencies = sorted({inst.split("-")[0].split("_")[0] for inst in p.symbols})
    for cur in currencies:
        for page in p.pages(ds, f"positions {cur}", lambda k=cur: c.positions(k)):
            res = page.payload.get("result") if isinstance(page.payload, dict) else None
            for item in res if isinstance(res, list) else []:
                ds.item(
                    item,
                    lambda x, t=page.received_at: [
                        (POSITION_SNAPSHOTS, r) for r in [fd.position_row(x, p.account or "", t)] if r
                    ],
                )


def _iso_ms(v: Any) -> int | None:
    try:
        return fx.iso_ms(v)
    except RecordError:
        return None


def _dydx(p: _Pull, private: bool, addresses: Sequence[str] = ()) -> None:
    c = p.client
    ds = p.dataset("trades", CEX_LIQUIDATIONS)
    plain = 0
    for market in p.symbols:
        for page in p.pages(ds, f"trades {market}", lambda m=market: c.trades(m, p.since_ms, p.until_ms)):
            for t in page.payload.get("trades") or [] if isinstance(page.payload, dict) else []:
                if isinstance(t, dict) and t.get("type") in fx.TRADE_TYPES and t.get("type") not in fx.LIQ_TRADE_TYPES:
                    plain += 1
                    continue
                ds.item(
                    t,
                    lambda x, m=market: [(CEX_LIQUIDATIONS, fx.trade_row(x, m))],
                    time_ms=_iso_ms(t.get("createdAt")) if isinstance(t, dict) else None,
                )
    ds.report.notes.append(f"{plain} non-liquidation trades kept in raw only")
    if not addresses:
        return
    ds = p.dataset("fills", FILLS)
    for addr in addresses:
        for page in p.pages(ds, "fills", lambda a=addr: c.fills(a, p.since_ms, p.until_ms)):
            for f in page.payload.get("fills") or [] if isinstance(page.payload, dict) else []:
                ds.item(
                    f,
                    lambda x, a=addr: [(FILLS, fx.fill_row_of(x, a))],
                    time_ms=_iso_ms(f.get("createdAt")) if isinstance(f, dict) else None,
                )


_PULLS: dict[str, Callable[..., None]] = {
    "binance": _binance,
    "bybit": _bybit,
    "okx": _okx,
    "bitmex": _bitmex,
    "deribit": _deribit,
    "dydx": _dydx,
}


def pull(
    lake: Lake,
    venue: str,
    client: Any,
    since_ms: int,
    until_ms: int,
    *,
    symbols: Sequence[str] | None = None,
    private: bool = False,
    account: str | None = None,
    addresses: Sequence[str] = (),
) -> list[IngestReport]:
    """Pull one venue's public (and, with ``private``, own-account) datasets; write, quarantine, reconcile."""
    if venue not in _PULLS:
        raise PullError(f"unknown venue {venue!r}; one of {', '.join(CEX_VENUES)}")
    if until_ms <= since_ms:
        raise PullError("--until must be after --since")
    syms = list(symbols or DEFAULT_SYMBOLS[venue])
    bad = [s for s in syms if not _SYMBOL.match(s) or ".." in s]
    if bad:
        raise PullError(f"invalid symbol {bad[0][:40]!r} (letters, digits, . _ - only)")
    bad = [a for a in addresses if not _DYDX_ADDRESS.match(a)]
    if bad:
        raise PullError(f"invalid dYdX address {bad[0][:50]!r} (dydx1...)")
    if private and venue not in PRIVATE_VENUES and venue != "dydx":
        raise PullError(f"--private is not supported for {venue} yet (public data only)")
    if private and venue in PRIVATE_VENUES and account is None:
        raise PullError("a private pull needs an account label")
    ingested_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    day = dt.datetime.fromtimestamp(until_ms / 1000, dt.UTC).date()
    with contextlib.ExitStack() as stack:  # a failed pull commits none of the datasets' raw files

        def open_raw(key: str) -> RawApiWriter:
            return stack.enter_context(lake.raw_api_writer(venue, key, day))

        p = _Pull(lake, venue, client, open_raw, syms, since_ms, until_ms, account if private else None)
        if venue == "dydx":
            _dydx(p, private, addresses)
        else:
            _PULLS[venue](p, private)
    reports = []
    mark = sandbox_mark(getattr(client, "base_url", ""), getattr(client, "sandbox", None))
    for ds in p.datasets:
        ds.report.sha256, ds.report.bytes = sha256_file(ds.raw.path) if ds.raw.path.exists() else ("", 0)
        ds.report.generated_by = mark
        if ds.duplicates:
            ds.report.notes.append(f"{ds.duplicates} items repeated across pages dropped")
        if ds.outside:
            ds.report.notes.append(f"{ds.outside} items outside the window dropped")
        _finish(lake, venue, ds, ingested_at)
        reports.append(ds.report)
    return reports


def _finish(lake: Lake, venue: str, ds: _Dataset, ingested_at: dt.datetime) -> None:
    report = ds.report
    const = {"venue": venue, "source": report.source, "source_key": report.source_key}
    for table in ds.tables:
        write_rows(lake, report, table, rows_to_arrow(table, ds.rows.get(table.name, []), **const), venue=venue)
    finish(lake, report, ds.rejects, ds.target, ingested_at, venue=venue)


def empty(table: Table) -> pa.Table:
    return table.arrow_schema().empty_table()
