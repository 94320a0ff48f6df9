"""Incremental, idempotent EVM log ingestion into the lake (checkpoints, confirmations, reorgs).

A *stream* is what one checkpoint covers: a (chain, contract(s), event set) with ``eth_getLogs`` topic
filters, e.g. GMX's EventEmitter restricted to the position/ADL event names, or an ERC-20's Transfer
events into and out of registry addresses. One sync of a stream:

1. ``target`` = ``min(--to-block, head - confirmations)``; ``start`` = checkpoint + 1 (or the stream's
   first block).
2. Reorg check: the hashes of the last ``reorg_depth`` blocks recorded in the checkpoint are fetched
   again; from the first block whose hash changed, everything is re-ingested.
3. Logs of ``[start, target]`` are fetched with adaptive range splitting (``EvmRpc.iter_logs``); every
   response is kept in ``raw/venue=<v>/source=api/date=<d>/<run>.jsonl.gz`` with its request (the RPC
   URL redacted to scheme and host).
4. The lake files are keyed by (stream, block segment of ``segment_blocks`` blocks). Each segment the
   range touches is rewritten as "rows already stored for blocks < start" + "logs fetched now", then
   decoded into the stream's tables, so a re-run, an overlapping range or a reorg replaces exactly what
   changed: nothing lost, nothing duplicated.
5. The checkpoint (last block + recent block hashes) is written last: a crashed run redoes its range.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from forensics.formats.gmx import LayoutSchedule
from forensics.tables import Table
from forensics.tables.onchain import ONCHAIN_BALANCES, ONCHAIN_CHECKPOINTS, ONCHAIN_FLOWS, ONCHAIN_LOGS
from pipelines.ingest.report import IngestReport, record_run, rejects_from_rows, write_quarantine
from pipelines.lake import Lake, safe_segment, sha256_file, source_key
from pipelines.venues.evm import (
    TRANSFER_TOPIC,
    EvmRpc,
    Log,
    RpcError,
    address_topic,
    balance_of,
    creation_block,
    redact_url,
)

REGISTRY_DIR = Path(__file__).resolve().parents[1] / "config" / "registry"
_Q = Decimal("1e-10")
_MAX_DEC = Decimal("1e28")


class OnchainError(ValueError):
    """Bad arguments or configuration (unknown chain, wrong chain id, bad block range)."""


def dec(value: Decimal | None) -> Decimal | None:
    """Quantize to DECIMAL(38,10); NULL when out of range."""
    if value is None:
        return None
    if abs(value) >= _MAX_DEC:
        return None
    return value.quantize(_Q, rounding=ROUND_HALF_EVEN)


def utc(ts_s: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts_s, dt.UTC).replace(tzinfo=None)


# --- registry ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    symbol: str
    address: str
    decimals: int
    verified: bool = True


@dataclass(frozen=True)
class Labelled:
    label: str
    address: str
    role: str
    venue: str
    tokens: tuple[str, ...]
    from_block: int = 0
    verified: bool = True


@dataclass(frozen=True)
class GmxMarket:
    """A GMX v2 market: its token address, a display name and the index token's decimals (what USD per
    token needs); where it came from (``source``: 'chain' = Reader.getMarkets + decimals(), 'registry')."""

    address: str
    name: str
    index_decimals: int
    index_token: str | None = None
    long_token: str | None = None
    short_token: str | None = None
    source: str = "registry"


@dataclass(frozen=True)
class ChainRegistry:
    name: str
    chain_id: int
    rpc_env: str
    confirmations: int = 12
    reorg_depth: int = 64
    max_range: int = 2000
    tokens: tuple[Token, ...] = ()
    addresses: tuple[Labelled, ...] = ()
    gmx_event_emitter: str | None = None
    gmx_from_block: int = 0
    gmx_markets: tuple[GmxMarket, ...] = ()  # overrides of what the chain says (name, decimals)
    gmx_data_store: str | None = None
    gmx_reader: str | None = None
    gmx_adl_handlers: tuple[str, ...] = ()  # every AdlHandler GMX deployed (the msgSender of ADL executions)
    gmx_layouts: tuple[tuple[str, str, int], ...] = ()  # (event, layout, first block shipped)
    gmx_synthetic_decimals: tuple[tuple[str, int], ...] = ()  # synthetic index tokens (no contract): symbol, decimals
    gmx_symbol_aliases: tuple[tuple[str, str], ...] = ()  # token symbol -> name used in market names (WETH -> ETH)
    sources: tuple[str, ...] = ()  # the files this registry was read from

    def token(self, symbol: str) -> Token:
        for t in self.tokens:
            if t.symbol == symbol:
                return t
        raise OnchainError(f"{self.name}: token {symbol!r} is not in the registry")


REGISTRY_ENV = "LIQF_REGISTRY"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except OSError as exc:
        raise OnchainError(f"cannot read registry {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise OnchainError(f"registry {path} is not valid TOML: {exc}") from None


def _merge_by(base: list[dict], mine: list[dict], key) -> list[dict]:
    merged = {key(e): e for e in base}
    merged.update({key(e): e for e in mine})
    return list(merged.values())


def _overlay(base: dict[str, Any], user: dict[str, Any]) -> dict[str, Any]:
    """The user's registry over the shipped one: scalars replace, tokens merge by symbol and addresses and
    markets by address (the user's entry wins), ADL handlers add up, layouts merge by (event, layout);
    ``extends = false`` at the top of the user's file makes it stand alone. A user's own entries count as
    verified unless they say otherwise (the user vouches for them)."""
    if not user.get("extends", True):
        base = {}
    user = {k: v for k, v in user.items() if k != "extends"}
    for section in ("tokens", "addresses"):
        for e in user.get(section, []):
            e.setdefault("verified", True)
    ugmx = dict(user.get("gmx", {}))
    for m in ugmx.get("markets", []):
        m.setdefault("verified", True)
    if ugmx:
        ugmx.setdefault("verified", True)
    out = {**base, **{k: v for k, v in user.items() if k not in ("chain", "tokens", "addresses", "gmx")}}
    out["chain"] = {**base.get("chain", {}), **user.get("chain", {})}
    addr = lambda e: str(e.get("address", "")).lower()  # noqa: E731
    out["tokens"] = _merge_by(base.get("tokens", []), user.get("tokens", []), lambda e: e.get("symbol"))
    out["addresses"] = _merge_by(base.get("addresses", []), user.get("addresses", []), addr)
    bgmx = base.get("gmx", {})
    gmx = {
        **bgmx,
        **{
            k: v
            for k, v in ugmx.items()
            if k not in ("markets", "layouts", "adl_handlers", "synthetic_decimals", "symbol_aliases")
        },
    }
    gmx["markets"] = _merge_by(bgmx.get("markets", []), ugmx.get("markets", []), addr)
    gmx["layouts"] = _merge_by(
        bgmx.get("layouts", []), ugmx.get("layouts", []), lambda e: (e.get("event"), e.get("layout"))
    )
    gmx["adl_handlers"] = list(dict.fromkeys([*bgmx.get("adl_handlers", []), *ugmx.get("adl_handlers", [])]))
    gmx["synthetic_decimals"] = {**bgmx.get("synthetic_decimals", {}), **ugmx.get("synthetic_decimals", {})}
    gmx["symbol_aliases"] = {**bgmx.get("symbol_aliases", {}), **ugmx.get("symbol_aliases", {})}
    if gmx:
        out["gmx"] = gmx
    return out


def load_registry(
    chain: str, directory: Path | None = None, *, include_unverified: bool = False, user_file: Path | str | None = None
) -> ChainRegistry:
    """The chain's registry: ``<directory>/<chain>.toml`` (the shipped one by default) with a user's own
    file over it (``user_file``, else the ``LIQF_REGISTRY`` environment variable); either may be absent,
    not both."""
    safe_segment(chain, "chain")
    folder = directory or REGISTRY_DIR
    path = folder / f"{chain}.toml"
    if user_file is None and os.environ.get(REGISTRY_ENV):
        user_file = os.environ[REGISTRY_ENV]
    raw: dict[str, Any] = _read_toml(path) if path.exists() else {}
    sources = [str(path)] if path.exists() else []
    if user_file:
        user_path = Path(user_file).expanduser()
        if not user_path.is_file():
            raise OnchainError(f"registry file {user_path} does not exist")
        user = _read_toml(user_path)
        named = user.get("chain", {}).get("name")
        if named and named != chain:
            raise OnchainError(f"registry file {user_path} is for chain {named!r}, not {chain!r}")
        raw = _overlay(raw, user)
        sources.append(str(user_path))
    if not sources:
        known = sorted(p.stem for p in folder.glob("*.toml"))
        raise OnchainError(
            f"no registry for chain {chain!r} (known: {', '.join(known) or 'none'}; "
            f"or pass --registry FILE / set {REGISTRY_ENV})"
        )
    try:
        return _registry(chain, raw, include_unverified, tuple(sources))
    except (KeyError, TypeError, ValueError) as exc:
        raise OnchainError(f"registry for {chain} ({', '.join(sources)}): bad or missing entry: {exc}") from None


def _registry(chain: str, raw: dict[str, Any], include_unverified: bool, sources: tuple[str, ...]) -> ChainRegistry:
    ok = lambda e: include_unverified or e.get("verified", False)  # noqa: E731
    c = raw.get("chain", {})
    gmx = raw.get("gmx", {})
    gmx_ok = ok(gmx)
    lower = lambda v: (v or "").lower() or None  # noqa: E731
    layouts = tuple((e["event"], e["layout"], int(e["from_block"])) for e in gmx.get("layouts", []) if gmx_ok)
    LayoutSchedule.of(list(layouts))  # unknown event or layout names fail here, with the known ones
    return ChainRegistry(
        name=c.get("name", chain),
        chain_id=int(c["chain_id"]),
        rpc_env=c.get("rpc_env", f"LIQF_RPC_{chain.upper()}"),
        confirmations=int(c.get("confirmations", 12)),
        reorg_depth=int(c.get("reorg_depth", 64)),
        max_range=int(c.get("max_range", 2000)),
        tokens=tuple(
            Token(t["symbol"], t["address"].lower(), int(t["decimals"]), bool(t.get("verified")))
            for t in raw.get("tokens", [])
            if ok(t)
        ),
        addresses=tuple(
            Labelled(
                a["label"],
                a["address"].lower(),
                a["role"],
                a.get("venue", "evm"),
                tuple(a.get("tokens", [])),
                int(a.get("from_block", 0)),
                bool(a.get("verified")),
            )
            for a in raw.get("addresses", [])
            if ok(a)
        ),
        gmx_event_emitter=lower(gmx.get("event_emitter")) if gmx_ok else None,
        gmx_from_block=int(gmx.get("from_block", 0)),
        gmx_markets=tuple(
            GmxMarket(m["address"].lower(), m["name"], int(m["index_decimals"]))
            for m in gmx.get("markets", [])
            if ok(m)
        ),
        gmx_data_store=lower(gmx.get("data_store")) if gmx_ok else None,
        gmx_reader=lower(gmx.get("reader")) if gmx_ok else None,
        gmx_adl_handlers=tuple(a.lower() for a in gmx.get("adl_handlers", [])) if gmx_ok else (),
        gmx_layouts=layouts,
        gmx_synthetic_decimals=tuple((str(k), int(v)) for k, v in gmx.get("synthetic_decimals", {}).items())
        if gmx_ok
        else (),
        gmx_symbol_aliases=tuple((str(k), str(v)) for k, v in gmx.get("symbol_aliases", {}).items()),
        sources=sources,
    )


# --- streams and checkpoints --------------------------------------------------------------------------------


@dataclass
class Decoded:
    """What a decoder made of one segment's logs."""

    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    rejects: list[tuple[int, int | None, str, str]] = field(default_factory=list)  # (block, log index, reason, raw)
    written: int = 0


Decoder = Callable[[list[dict[str, Any]]], Decoded]


@dataclass(frozen=True)
class Stream:
    venue: str
    chain: str
    name: str  # e.g. 'gmx_events', 'erc20_transfers_usdc'
    address: tuple[str, ...]
    topic_filters: tuple[tuple[Any, ...], ...]  # one eth_getLogs topics list per filter; results are merged
    event: str  # human description of the event set (checkpoint column)
    from_block: int
    tables: tuple[Table, ...]  # decoded tables written per segment (besides onchain_logs)
    decoder: Decoder
    event_name: Callable[[Log], str | None] = lambda _log: None
    segment_blocks: int = 10_000
    start_reason: str = "the stream's first block"  # why from_block is where a first run starts

    @property
    def key(self) -> str:
        return source_key("onchain-stream", self.venue, self.chain, self.name, ",".join(self.address), self.event)

    def segment_key(self, segment: int) -> str:
        return source_key("onchain-segment", self.key, self.segment_blocks, segment)


@dataclass
class Checkpoint:
    last_block: int
    recent_hashes: dict[int, str]
    from_block: int


def load_checkpoint(lake: Lake, stream: Stream) -> Checkpoint | None:
    path = lake.part_path(ONCHAIN_CHECKPOINTS.name, stream.venue, None, stream.key)
    if not path.exists():
        return None
    row = pq.read_table(path).to_pylist()[0]
    return Checkpoint(
        int(row["last_block"]),
        {int(k): v for k, v in json.loads(row["recent_hashes_json"]).items()},
        int(row["from_block"]),
    )


def save_checkpoint(lake: Lake, stream: Stream, cp: Checkpoint, rpc_label: str) -> None:
    row = {
        "venue": stream.venue,
        "chain": stream.chain,
        "stream": stream.name,
        "contract": ",".join(stream.address),
        "event": stream.event,
        "stream_key": stream.key,
        "from_block": cp.from_block,
        "last_block": cp.last_block,
        "recent_hashes_json": json.dumps({str(k): v for k, v in sorted(cp.recent_hashes.items())}),
        "updated_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
        "rpc": rpc_label,
    }
    lake.replace_source(
        ONCHAIN_CHECKPOINTS,
        stream.venue,
        stream.key,
        pa.Table.from_pylist([row], schema=ONCHAIN_CHECKPOINTS.arrow_schema()),
    )


@dataclass
class SyncResult:
    stream: str
    chain: str
    from_block: int
    to_block: int
    logs: int = 0
    segments: int = 0
    reorg_from: int | None = None
    up_to_date: bool = False
    reports: list[IngestReport] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if self.up_to_date:
            return f"{self.chain}/{self.stream}: up to date at block {self.to_block:,}"
        text = (
            f"{self.chain}/{self.stream}: blocks {self.from_block:,}..{self.to_block:,}, {self.logs:,} logs, "
            f"{self.segments} segment file(s) rewritten"
        )
        if self.reorg_from is not None:
            text += f"; reorg detected, re-ingested from block {self.reorg_from:,}"
        return text


def _log_row(stream: Stream, log: Log, ts: int, key: str) -> dict[str, Any]:
    t = utc(ts)
    topics = list(log.topics) + [None] * (4 - len(log.topics))
    return {
        "venue": stream.venue,
        "date": t.date(),
        "chain": stream.chain,
        "block_number": log.block_number,
        "block_hash": log.block_hash,
        "time": t,
        "time_ms": ts * 1000,
        "tx_hash": log.tx_hash,
        "tx_index": log.tx_index,
        "log_index": log.log_index,
        "address": log.address,
        "topic0": topics[0],
        "topic1": topics[1],
        "topic2": topics[2],
        "topic3": topics[3],
        "data": log.data,
        "event_name": stream.event_name(log),
        "source": stream.name,
        "source_key": key,
    }


def _existing_rows(lake: Lake, stream: Stream, key: str) -> list[dict[str, Any]]:
    venue_dir = lake.table_dir(ONCHAIN_LOGS.name) / f"venue={safe_segment(stream.venue, 'venue')}"
    if not venue_dir.exists():
        return []
    rows: list[dict[str, Any]] = []
    for path in venue_dir.rglob(f"part-{key}.parquet"):
        rows.extend(pq.read_table(path).to_pylist())
    return rows


def _existing_keys(lake: Lake, stream: Stream) -> set[str]:
    venue_dir = lake.table_dir(ONCHAIN_LOGS.name) / f"venue={safe_segment(stream.venue, 'venue')}"
    if not venue_dir.exists():
        return set()
    return {p.name[len("part-") : -len(".parquet")] for p in venue_dir.rglob("part-*.parquet")}


@dataclass(frozen=True)
class StreamPlan:
    """What a sync of one stream will ask the provider, before it starts."""

    chain: str
    stream: str
    head: int
    start: int
    target: int
    filters: int  # eth_getLogs topic filters per block range
    max_range: int
    start_reason: str  # 'checkpoint', '--from-block', or why the stream starts where it does
    reorg_checks: int = 0  # headers re-fetched for the reorg check (the checkpoint's recent blocks)
    reorg_depth: int = 64  # the new checkpoint records the hashes of this many last blocks

    @property
    def blocks(self) -> int:
        return max(0, self.target - self.start + 1)

    @property
    def get_logs_calls(self) -> int:
        return self.filters * -(-self.blocks // self.max_range)

    @property
    def header_calls(self) -> int:
        """Headers the run fetches whatever the logs: the reorg check and the checkpoint's recent blocks."""
        return self.reorg_checks + min(self.blocks, self.reorg_depth)

    @property
    def calls(self) -> int:
        """RPC calls of the sync: eth_blockNumber, eth_getLogs, the headers above (exact when the provider
        puts blockTimestamp in logs and refuses no range; else one more header per block with logs)."""
        return 0 if self.blocks == 0 else 1 + self.get_logs_calls + self.header_calls

    def describe(self) -> str:
        if self.blocks == 0:
            return f"{self.chain}/{self.stream}: up to date at block {self.target:,} (head {self.head:,})"
        ranges = -(-self.blocks // self.max_range)
        return (
            f"{self.chain}/{self.stream}: blocks {self.start:,}..{self.target:,} ({self.blocks:,} blocks; start: "
            f"{self.start_reason}): about {self.calls:,} RPC calls: {self.get_logs_calls:,} eth_getLogs "
            f"({self.filters} filter(s) x {ranges:,} range(s) of up to {self.max_range:,} blocks), "
            f"{self.header_calls:,} eth_getBlockByNumber for reorg checks, 1 eth_blockNumber; plus one "
            "eth_getBlockByNumber per block with logs if the provider's logs carry no blockTimestamp, and more "
            "eth_getLogs if it refuses ranges"
        )


def plan_stream(
    lake: Lake,
    stream: Stream,
    *,
    head: int,
    from_block: int | None = None,
    to_block: int | None = None,
    confirmations: int = 12,
    max_range: int = 2000,
    reorg_depth: int = 64,
) -> StreamPlan:
    """The range a :func:`sync_stream` with the same arguments will fetch, and what that costs in calls
    (a reorg found on the way may move the start back by up to the reorg depth)."""
    cp = load_checkpoint(lake, stream)
    start, reason = _start(stream, cp, from_block)
    target = head - confirmations if to_block is None else min(head - confirmations, to_block)
    return StreamPlan(
        stream.chain,
        stream.name,
        head,
        start,
        target,
        len(stream.topic_filters),
        max_range,
        reason,
        len(cp.recent_hashes) if cp else 0,
        reorg_depth,
    )


def _start(stream: Stream, cp: Checkpoint | None, from_block: int | None) -> tuple[int, str]:
    if cp is None:
        if from_block is not None:
            return from_block, "--from-block"
        return stream.from_block, stream.start_reason
    if from_block is None:
        return cp.last_block + 1, "checkpoint"
    return min(from_block, cp.last_block + 1), "--from-block" if from_block <= cp.last_block else "checkpoint"


def sync_stream(
    lake: Lake,
    rpc: EvmRpc,
    stream: Stream,
    *,
    to_block: int | None = None,
    from_block: int | None = None,
    confirmations: int = 12,
    reorg_depth: int = 64,
    progress: Callable[[int, int], None] | None = None,
) -> SyncResult:
    """Bring ``stream`` up to ``min(to_block, head - confirmations)``; idempotent and reorg-safe."""
    head = rpc.block_number()
    target = head - confirmations
    if to_block is not None:
        target = min(target, to_block)
    cp = load_checkpoint(lake, stream)
    start, _reason = _start(stream, cp, from_block)
    if cp is None:
        cp = Checkpoint(start - 1, {}, start)
    result = SyncResult(stream.name, stream.chain, start, target)

    # reorg check: re-fetch the hashes recorded for the last ingested blocks
    for number in sorted(cp.recent_hashes):
        if number > head:
            mismatch = True
        else:
            mismatch = rpc.header(number, fresh=True).hash != cp.recent_hashes[number]
        if mismatch:
            if number == min(cp.recent_hashes):
                result.notes.append(
                    f"reorg reaches the oldest checked block {number}; older blocks were not re-checked "
                    "(raise reorg_depth or re-ingest with --from-block)"
                )
            start = min(start, number)
            result.reorg_from = number
            break
    rpc.forget_headers(start)
    result.from_block = start
    if start > target:
        result.up_to_date = True
        result.to_block = max(cp.last_block, target)
        return result

    # fetch
    run_key = source_key("onchain-run", stream.key, start, target, dt.datetime.now(dt.UTC).isoformat())
    day = dt.datetime.now(dt.UTC).date()
    logs: dict[tuple[int, int], Log] = {}
    with lake.raw_api_writer(stream.venue, run_key, day) as raw:

        def keep(method: str, params: list[Any], res: Any) -> None:
            if method == "eth_getLogs":
                raw.write(
                    {
                        "venue": stream.venue,
                        "chain": stream.chain,
                        "endpoint": rpc.label,
                        "method": method,
                        "params": params,
                        "received_at": int(dt.datetime.now(dt.UTC).timestamp() * 1000),
                        "payload": json.loads(json.dumps(res, default=_jsonable)),
                    }
                )

        previous, rpc.on_response = rpc.on_response, keep
        try:
            for filt in stream.topic_filters:
                for lo, hi, batch in rpc.iter_logs(
                    list(stream.address) if len(stream.address) > 1 else stream.address[0], list(filt), start, target
                ):
                    for log in batch:
                        if not log.removed:
                            logs[(log.block_number, log.log_index)] = log
                    if progress:
                        progress(hi - lo + 1, target - start + 1)
        finally:
            rpc.on_response = previous
    raw_sha, raw_bytes = sha256_file(raw.path) if raw.path.exists() else ("", 0)

    # timestamps: from the logs when the provider includes them, else from the block header (and a
    # consistency check: a reorg during the run makes log hashes disagree)
    stamps: dict[int, int] = {}
    first_log = {}
    for key in sorted(logs):
        first_log.setdefault(key[0], logs[key])
    for number, log in first_log.items():
        if log.block_timestamp is not None:
            stamps[number] = log.block_timestamp
            continue
        h = rpc.header(number)
        if h.hash != log.block_hash:
            raise RpcError(f"block {number} changed during the run (reorg in progress); run again", transient=True)
        stamps[number] = h.timestamp
    result.logs = len(logs)

    # rewrite every touched segment that has new logs or stored rows
    seg_of = lambda n: n // stream.segment_blocks  # noqa: E731
    existing = _existing_keys(lake, stream)
    by_seg: dict[int, list[Log]] = {}
    for log in logs.values():
        by_seg.setdefault(seg_of(log.block_number), []).append(log)
    ingested_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    for seg in range(seg_of(start), seg_of(target) + 1):
        key = stream.segment_key(seg)
        if seg not in by_seg and key not in existing:
            continue
        kept = [r for r in _existing_rows(lake, stream, key) if r["block_number"] < start]
        fresh = [_log_row(stream, log, stamps[log.block_number], key) for log in by_seg.get(seg, [])]
        rows = sorted(
            {(r["block_number"], r["log_index"]): r for r in kept + fresh}.values(),
            key=lambda r: (r["block_number"], r["log_index"]),
        )
        result.reports.append(_write_segment(lake, stream, key, seg, rows, ingested_at, raw_sha, raw_bytes))
        result.segments += 1

    # checkpoint last
    lo = max(cp.from_block, target - reorg_depth + 1)
    recent = {n: rpc.header(n).hash for n in range(lo, target + 1)}
    for number, log in first_log.items():
        if number in recent and recent[number] != log.block_hash:
            raise RpcError(f"block {number} changed during the run (reorg in progress); run again", transient=True)
    save_checkpoint(lake, stream, Checkpoint(target, recent, cp.from_block), rpc.label)
    result.to_block = target
    return result


def redecode_stream(lake: Lake, stream: Stream) -> list[IngestReport]:
    """Decode the logs the lake already holds for ``stream`` again (today's decoder: e.g. markets read
    since, layouts added) and rewrite its tables segment by segment; no RPC."""
    ingested_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    reports = []
    for key in sorted(_existing_keys(lake, stream)):
        rows = [
            r for r in _existing_rows(lake, stream, key) if r["source"] == stream.name and r["chain"] == stream.chain
        ]
        if not rows:
            continue
        seg = rows[0]["block_number"] // stream.segment_blocks
        if stream.segment_key(seg) != key:  # another stream's file, or another segmentation
            continue
        rows.sort(key=lambda r: (r["block_number"], r["log_index"]))
        reports.append(_write_segment(lake, stream, key, seg, rows, ingested_at, "", 0))
    return reports


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, (bytes, bytearray)):
        return "0x" + bytes(obj).hex()
    if hasattr(obj, "hex"):
        h = obj.hex()
        return h if h.startswith("0x") else "0x" + h
    if hasattr(obj, "items"):
        return dict(obj.items())
    return str(obj)


def _write_segment(
    lake: Lake,
    stream: Stream,
    key: str,
    seg: int,
    rows: list[dict[str, Any]],
    ingested_at: dt.datetime,
    raw_sha: str,
    raw_bytes: int,
) -> IngestReport:
    lo, hi = seg * stream.segment_blocks, (seg + 1) * stream.segment_blocks - 1
    report = IngestReport(
        stream.venue,
        f"onchain:{stream.name}",
        f"{stream.chain}/{stream.name} blocks {lo}-{hi}",
        key,
        sha256=raw_sha,
        bytes=raw_bytes,
    )
    lake.replace_source(ONCHAIN_LOGS, stream.venue, key, pa.Table.from_pylist(rows, schema=ONCHAIN_LOGS.arrow_schema()))
    report.rows_by_table[ONCHAIN_LOGS.name] = len(rows)
    decoded = stream.decoder(rows)
    for table in stream.tables:
        data = decoded.tables.get(table.name, [])
        for r in data:
            r.setdefault("source", stream.name)
            r["source_key"] = key
        lake.replace_source(table, stream.venue, key, pa.Table.from_pylist(data, schema=table.arrow_schema()))
        report.rows_by_table[table.name] = len(data)
    report.records_read = len(rows)
    report.records_written = decoded.written
    write_quarantine(
        lake,
        report,
        rejects_from_rows(decoded.rejects),
        stream.tables[0].name if stream.tables else ONCHAIN_LOGS.name,
        ingested_at,
        venue=stream.venue,
        key=key,
    )
    record_run(lake, report, ingested_at)
    return report


# --- ERC-20 flows and balances of registry addresses ----------------------------------------------------------


def flows_decoder(chain: str, token: Token, labelled: Iterable[Labelled]) -> Decoder:
    labels = {a.address: a for a in labelled}

    def decode(rows: list[dict[str, Any]]) -> Decoded:
        out = Decoded(tables={ONCHAIN_FLOWS.name: []})
        for r in rows:
            try:
                if (
                    r["topic0"] != TRANSFER_TOPIC
                    or r["topic1"] is None
                    or r["topic2"] is None
                    or r["topic3"] is not None
                ):
                    raise ValueError("not an ERC-20 Transfer(address,address,uint256) log")
                data = bytes.fromhex(r["data"][2:])
                if len(data) != 32:
                    raise ValueError(f"Transfer data is {len(data)} bytes, expected 32")
                amount_raw = int.from_bytes(data, "big")
                src, dst = "0x" + r["topic1"][-40:], "0x" + r["topic2"][-40:]
            except (ValueError, TypeError) as exc:
                out.rejects.append((r["block_number"], r["log_index"], str(exc), json.dumps(r, default=str)))
                continue
            amount = dec(Decimal(amount_raw) / (Decimal(10) ** token.decimals))
            for addr, direction, other in ((dst, "in", src), (src, "out", dst)):
                lab = labels.get(addr)
                if lab is None:
                    continue
                out.tables[ONCHAIN_FLOWS.name].append(
                    {
                        **{
                            k: r[k]
                            for k in (
                                "venue",
                                "date",
                                "chain",
                                "block_number",
                                "block_hash",
                                "time",
                                "time_ms",
                                "tx_hash",
                                "tx_index",
                                "log_index",
                            )
                        },
                        "token": token.address,
                        "token_symbol": token.symbol,
                        "from_address": src,
                        "to_address": dst,
                        "amount_raw": str(amount_raw),
                        "amount": amount,
                        "registry_address": addr,
                        "label": lab.label,
                        "direction": direction,
                        "signed_amount": amount if direction == "in" or amount is None else -amount,
                        "counterparty": other,
                    }
                )
            out.written += 1
        return out

    return decode


def flow_streams(
    registry: ChainRegistry,
    *,
    segment_blocks: int = 10_000,
    rpc: EvmRpc | None = None,
    head: int | None = None,
    lake: Lake | None = None,
    from_block: int | None = None,
) -> list[Stream]:
    """One stream per (venue, token): Transfer logs of the token to or from the venue's registry addresses.

    Where a first run starts: a registry ``from_block`` above 0 is taken as given; otherwise, with
    ``rpc`` and ``head``, the block where the holder's contract was created (a binary search over
    ``eth_getCode``), and never before the token's own creation (no Transfer of a token predates it),
    instead of scanning from block 0. Streams that have a checkpoint in ``lake`` (or runs given
    ``from_block``) resume where they are and search nothing."""
    streams = []
    created: dict[str, int | None] = {}

    def creation(address: str) -> int | None:
        if address not in created:
            created[address] = creation_block(rpc, address, head)
        return created[address]

    for token in registry.tokens:
        holders = [a for a in registry.addresses if token.symbol in a.tokens]
        for venue in sorted({a.venue for a in holders}):
            mine = [a for a in holders if a.venue == venue]
            topics = [address_topic(a.address) for a in mine]
            stream = Stream(
                venue=venue,
                chain=registry.name,
                name=f"erc20_transfers_{token.symbol.lower().replace('.', '_')}",
                address=(token.address,),
                topic_filters=((TRANSFER_TOPIC, topics), (TRANSFER_TOPIC, None, topics)),
                event=f"Transfer from/to {','.join(sorted(a.address for a in mine))}",
                from_block=min(a.from_block for a in mine),
                tables=(ONCHAIN_FLOWS,),
                decoder=flows_decoder(registry.name, token, mine),
                event_name=lambda _l: "Transfer",
                segment_blocks=segment_blocks,
                start_reason="the registry's from_block",
            )
            searchable = rpc is not None and head is not None and from_block is None
            if searchable and lake is not None and load_checkpoint(lake, stream) is not None:
                searchable = False
            if searchable:
                stream = _first_activity(stream, token, mine, creation)
            streams.append(stream)
    return streams


def _first_activity(stream: Stream, token: Token, holders: list[Labelled], creation) -> Stream:
    try:
        token_born = creation(token.address)
        starts: list[tuple[int, str]] = []
        for a in holders:
            if a.from_block > 0:
                starts.append((max(a.from_block, token_born or 0), f"{a.label}: registry from_block {a.from_block:,}"))
                continue
            born = creation(a.address)
            if born is not None and (token_born is None or born >= token_born):
                starts.append((born, f"{a.label} created at block {born:,}"))
            elif token_born is not None:
                starts.append(
                    (
                        token_born,
                        f"{token.symbol} created at block {token_born:,} ({a.label} "
                        f"{'is not a contract' if born is None else 'is older'})",
                    )
                )
            else:
                starts.append((0, f"{a.label}: no creation block found"))
    except RpcError as exc:
        if exc.transient:
            raise
        return replace(
            stream,
            start_reason=f"the registry's from_block ({stream.from_block:,}): creation blocks "
            f"need historical eth_getCode, which the provider refused ({exc}); pass --from-block",
        )
    start, why = min(starts)
    return replace(stream, from_block=start, start_reason=f"{why} (eth_getCode search)")


@dataclass(frozen=True)
class BalanceRead:
    """One earlier ``read_balances`` as the lake holds it."""

    block: int
    block_hash: str
    key: str
    venues: tuple[str, ...]


def stored_balance_reads(lake: Lake, chain: str) -> list[BalanceRead]:
    folder = lake.table_dir(ONCHAIN_BALANCES.name)
    found: dict[str, tuple[int, str, set[str]]] = {}
    for path in sorted(folder.rglob("part-*.parquet")) if folder.exists() else []:
        venue = next((p.name.split("=", 1)[1] for p in path.parents if p.name.startswith("venue=")), None)
        t = pq.read_table(path, columns=["chain", "block_number", "block_hash", "source_key"])
        for row in t.to_pylist():
            if row["chain"] != chain:
                continue
            _b, _h, venues = found.setdefault(row["source_key"], (row["block_number"], row["block_hash"], set()))
            venues.add(venue)
    return sorted((BalanceRead(b, h, k, tuple(sorted(v))) for k, (b, h, v) in found.items()), key=lambda r: r.block)


def _drop_balance_read(lake: Lake, read: BalanceRead) -> None:
    empty = ONCHAIN_BALANCES.arrow_schema().empty_table()
    for venue in read.venues:
        lake.replace_source(ONCHAIN_BALANCES, venue, read.key, empty)


def read_balances(
    lake: Lake, rpc: EvmRpc, registry: ChainRegistry, *, block: int | None = None, confirmations: int | None = None
) -> IngestReport:
    """balanceOf of every (registry address, tracked token) at ``block`` (default: head - confirmations).

    First, earlier reads that may still be reorged are checked: the newest one and every read within
    ``reorg_depth`` blocks of the confirmed head. A read whose block hash is no longer the chain's is
    removed, and read again at the same height on the canonical chain (when it is still confirmed)."""
    conf = registry.confirmations if confirmations is None else confirmations
    head = rpc.block_number()
    if block is None:
        block = head - conf
    reads = stored_balance_reads(lake, registry.name)
    notes: list[str] = []
    redo: list[int] = []
    for i, read in enumerate(reads):
        if i != len(reads) - 1 and read.block < head - conf - registry.reorg_depth:
            continue
        canonical = rpc.header(read.block, fresh=True).hash if read.block <= head else None
        if canonical == read.block_hash:
            continue
        _drop_balance_read(lake, read)
        if canonical is not None and read.block <= head - conf and read.block != block:
            redo.append(read.block)
        notes.append(
            f"balances read at block {read.block:,} (hash {read.block_hash[:12]}…) were on a branch reorged "
            f"out: removed" + ("; read again on the canonical chain" if read.block in redo else "")
        )
    for b in redo:
        _read_balances_at(lake, rpc, registry, b)
    report = _read_balances_at(lake, rpc, registry, block)
    report.notes.extend(notes)
    return report


def _read_balances_at(lake: Lake, rpc: EvmRpc, registry: ChainRegistry, block: int) -> IngestReport:
    header = rpc.header(block, fresh=True)
    t = utc(header.timestamp)
    key = source_key("onchain-balances", registry.name, block)
    report = IngestReport("evm", "onchain:balances", f"{registry.name} balances at block {block}", key)
    rows_by_venue: dict[str, list[dict[str, Any]]] = {}
    rejects: list[tuple[int, int | None, str, str]] = []
    for a in registry.addresses:
        for sym in a.tokens:
            report.records_read += 1
            try:
                token = registry.token(sym)
                raw = balance_of(rpc, token.address, a.address, block)
            except (OnchainError, RpcError) as exc:
                rejects.append((report.records_read, None, str(exc), json.dumps({"address": a.address, "token": sym})))
                continue
            rows_by_venue.setdefault(a.venue, []).append(
                {
                    "venue": a.venue,
                    "date": t.date(),
                    "chain": registry.name,
                    "block_number": block,
                    "block_hash": header.hash,
                    "time": t,
                    "time_ms": header.timestamp * 1000,
                    "address": a.address,
                    "label": a.label,
                    "role": a.role,
                    "token": token.address,
                    "token_symbol": token.symbol,
                    "balance_raw": str(raw),
                    "balance": dec(Decimal(raw) / (Decimal(10) ** token.decimals)),
                    "source_key": key,
                }
            )
            report.records_written += 1
    for venue, rows in rows_by_venue.items():
        lake.replace_source(
            ONCHAIN_BALANCES, venue, key, pa.Table.from_pylist(rows, schema=ONCHAIN_BALANCES.arrow_schema())
        )
    report.rows_by_table[ONCHAIN_BALANCES.name] = report.records_written
    ingested_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    write_quarantine(lake, report, rejects_from_rows(rejects), ONCHAIN_BALANCES.name, ingested_at, key=key)
    record_run(lake, report, ingested_at)
    return report


def check_chain(rpc: EvmRpc, registry: ChainRegistry) -> None:
    got = rpc.chain_id()
    if got != registry.chain_id:
        raise OnchainError(f"RPC {redact_url(rpc.label)} is chain id {got}, but {registry.name} is {registry.chain_id}")
