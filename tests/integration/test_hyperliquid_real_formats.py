"""Readers of Hyperliquid's published formats: misc_events_by_block, legacy node_fills/node_trades, the
clearinghouse snapshot export and the archive asset_ctxs CSV. Files are written here in the real shapes
(field names and types from the reference), plain and lz4, with every bad-input class."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import duckdb
import lz4.frame
import pytest

from forensics.formats.hyperliquid import legacy, misc_events
from forensics.formats.records import RecordError, node_time_ms

A = "0x" + "a" * 40
B = "0x" + "b" * 40
ZERO_HASH = "0x" + "0" * 64


def write(path: Path, lines: list[str], *, compress: bool = False, truncate: bool = False) -> Path:
    data = ("\n".join(lines) + "\n").encode()
    if compress:
        data = lz4.frame.compress(data)
        if truncate:
            data = data[: len(data) - 7]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def misc_block(number: int, events: list, time: str = "2025-10-10T21:00:00.281355575") -> str:
    return json.dumps({"local_time": time, "block_time": time, "block_number": number, "events": events})


def ledger(users: list[str], delta: dict, time: str = "2025-10-10T21:00:01.5") -> dict:
    return {"time": time, "hash": "0x" + "1" * 64, "inner": {"LedgerUpdate": {"users": users, "delta": delta}}}


FUNDING = {
    "time": "2025-10-10T21:00:00.281355575",
    "hash": ZERO_HASH,
    "inner": {
        "Funding": {
            "deltas": [
                {
                    "user": A,
                    "coin": "ZEC",
                    "funding_amount": "9.330246",
                    "szi": "280.0",
                    "funding_rate": "-0.0000810249",
                },
                {
                    "user": B,
                    "coin": "HYPE",
                    "funding_amount": "-4.506878",
                    "szi": "2744.84",
                    "funding_rate": "0.0000308526",
                },
            ]
        }
    },
}


def read(lake, table: str):
    return duckdb.sql(f"select * from read_parquet('{lake.glob(table)}', union_by_name = true)").pl()


# --- time parsing ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2025-10-10T21:00:00", 1760130000000),
        ("2025-10-10T21:00:00.281", 1760130000281),
        ("2025-10-10T21:00:00.281355", 1760130000281),
        ("2025-10-10T21:00:00.281355575", 1760130000281),
        ("2024-01-01T00:00:00Z", 1704067200000),
    ],
)
def test_node_times_are_utc_with_any_fraction_length(text, expected):
    assert node_time_ms(text) == expected


@pytest.mark.parametrize(
    "text", ["2025-13-10T21:00:00", "yesterday", "2025-10-10 21:00:00", "", "2025-10-10T21:00:00.1234567890"]
)
def test_bad_node_times_are_rejected(text):
    with pytest.raises(RecordError):
        node_time_ms(text)


# --- misc_events_by_block -----------------------------------------------------------------------------------


def _misc_lines() -> list[str]:
    deltas = [
        {"type": "deposit", "usdc": "444.27"},
        {"type": "withdraw", "usdc": "837.56", "nonce": 1760130023555, "fee": "1.0"},
        {"type": "accountClassTransfer", "usdc": "227.06", "toPerp": False},
        {"type": "internalTransfer", "usdc": "2327.05", "user": A, "destination": B, "fee": "0.0"},
        {
            "type": "spotTransfer",
            "token": "HYPE",
            "amount": "3.0",
            "usdcValue": "120.0",
            "user": A,
            "destination": B,
            "fee": "0.0",
            "nativeTokenFee": "0.0",
            "nonce": 1,
            "feeToken": "HYPE",
        },
        {
            "type": "liquidation",
            "liquidatedNtlPos": "634167.30306",
            "accountValue": "4297.889002",
            "leverageType": "Isolated",
            "liquidatedPositions": [{"coin": "BTC", "szi": "5.30391"}],
        },
    ]
    events = [
        ledger([B], deltas[0]),
        ledger([A], deltas[1]),
        ledger([A], deltas[2]),
        ledger([A, B], deltas[3]),
        ledger([A, B], deltas[4]),
        ledger([A], deltas[5]),
    ]
    staking = [
        {"time": "2025-10-10T21:00:02", "hash": ZERO_HASH, "inner": {"CDeposit": {"user": A, "amount": "10.5"}}},
        {
            "time": "2025-10-10T21:00:02",
            "hash": ZERO_HASH,
            "inner": {"Delegation": {"user": A, "validator": B, "amount": "10.5", "is_undelegate": False}},
        },
        {
            "time": "2025-10-10T21:00:02",
            "hash": ZERO_HASH,
            "inner": {"ValidatorRewards": {"validator_to_reward": [[A, "0.1"], [B, "0.2"]]}},
        },
        {
            "time": "2025-10-10T21:00:02",
            "hash": ZERO_HASH,
            "inner": {
                "GossipPriorityAuctionRestart": {"slot_id": 3, "previous_winner": {"Ip": "1.2.3.4"}, "end_gas": "1"}
            },
        },
    ]
    return [misc_block(100, [FUNDING]), misc_block(101, events), misc_block(102, []), misc_block(103, staking)]


BAD_MISC = {
    "malformed JSON line": '{"block_number": 1, "events": [',
    "block has no events list": json.dumps({"block_number": 1, "block_time": "2025-10-10T21:00:00", "events": 3}),
    "missing or non-integer block_number": json.dumps(
        {"block_number": "x", "block_time": "2025-10-10T21:00:00", "events": []}
    ),
    "unparsable block_time": json.dumps({"block_number": 5, "block_time": "10/10/2025", "events": []}),
    "unknown misc event variant 'Moonshot'": misc_block(
        7, [{"time": "2025-10-10T21:00:00", "hash": ZERO_HASH, "inner": {"Moonshot": {"user": A}}}]
    ),
    "unknown LedgerUpdate delta type 'teleport'": misc_block(8, [ledger([A], {"type": "teleport", "usdc": "1"})]),
    "non-numeric usdc": misc_block(9, [ledger([A], {"type": "deposit", "usdc": "lots"})]),
    "usdc out of range": misc_block(10, [ledger([A], {"type": "deposit", "usdc": "1e400"})]),
    "invalid users address": misc_block(11, [ledger(["../../etc/passwd"], {"type": "deposit", "usdc": "1"})]),
    "funding delta 1: invalid user address": misc_block(
        12,
        [
            {
                "time": "2025-10-10T21:00:00",
                "hash": ZERO_HASH,
                "inner": {
                    "Funding": {"deltas": [{"user": "'; drop table x; --", "coin": "BTC", "funding_amount": "1"}]}
                },
            }
        ],
    ),
    "funding delta 1: missing funding_amount": misc_block(
        13,
        [
            {
                "time": "2025-10-10T21:00:00",
                "hash": ZERO_HASH,
                "inner": {"Funding": {"deltas": [{"user": A, "coin": "BTC"}]}},
            }
        ],
    ),
    "event is not {time, hash, inner: {Variant: {...}}}": misc_block(14, [["not", "an", "event"]]),
}


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "lz4"])
def test_misc_events_land_in_three_tables_and_reconcile(lake, tmp_path, compress):
    from pipelines.ingest.hyperliquid.misc import ingest_misc_events

    path = write(tmp_path / "misc" / "21.lz4", _misc_lines(), compress=compress)
    report = ingest_misc_events(lake, path)
    # records: 2 funding deltas + 6 ledger events + 4 staking/system events
    assert (report.records_read, report.records_written, report.quarantined) == (12, 12, 0)
    funding = read(lake, "funding_payments").sort("user")
    assert funding["funding_amount"].to_list() == [Decimal("9.330246"), Decimal("-4.506878")]
    assert funding["time_ms"].to_list() == [1760130000281] * 2 and funding["block_number"].to_list() == [100, 100]
    assert funding["delta_index"].to_list() == [1, 2]
    led = read(lake, "ledger_events")
    by_type = {t: g for (t,), g in led.group_by("type")}
    assert by_type["internalTransfer"]["user"].sort().to_list() == [A, B]  # one row per address touched
    assert by_type["internalTransfer"]["destination"].to_list() == [B, B]
    assert by_type["withdraw"]["fee"].to_list() == [Decimal("1")]
    assert by_type["accountClassTransfer"]["to_perp"].to_list() == [False]
    assert set(by_type["spotTransfer"]["category"]) == {"spot"}
    assert set(by_type["CDeposit"]["category"]) == {"staking"}
    assert by_type["ValidatorRewards"]["amount"].sort().to_list() == [Decimal("0.1"), Decimal("0.2")]
    assert by_type["GossipPriorityAuctionRestart"]["user"].to_list() == ["system"]
    assert set(by_type["withdraw"]["category"]) == {"unconfirmed"} and set(by_type["deposit"]["category"]) == {
        "perp_cash"
    }
    liq = read(lake, "liquidation_events")
    assert liq["account_value"].to_list() == [Decimal("4297.889002")] and liq["leverage_type"].to_list() == ["Isolated"]
    assert json.loads(liq["liquidated_positions"][0]) == [{"coin": "BTC", "szi": "5.30391"}]
    assert liq["time_ms"].to_list() == [1760130001500] and liq["event_index"].to_list() == [6]
    # idempotent: a re-ingest replaces its rows
    ingest_misc_events(lake, path)
    assert read(lake, "ledger_events").height == led.height


def test_every_bad_misc_record_is_quarantined_with_its_reason(lake, tmp_path):
    from pipelines.ingest.hyperliquid.misc import ingest_misc_events

    lines = [misc_block(100, [FUNDING])] + list(BAD_MISC.values())
    report = ingest_misc_events(lake, write(tmp_path / "bad.lz4", lines, compress=True))
    assert report.records_read == report.records_written + report.quarantined
    assert (report.records_written, report.quarantined) == (2, len(BAD_MISC))
    reasons = read(lake, "quarantine")["reason"].to_list()
    assert sorted(reasons) == sorted(BAD_MISC)
    raw = read(lake, "quarantine").filter(read(lake, "quarantine")["reason"].str.contains("teleport"))["raw"][0]
    assert json.loads(raw)["inner"]["LedgerUpdate"]["delta"]["type"] == "teleport"  # raw JSON kept


def test_truncated_lz4_misc_file_keeps_what_came_before(lake, tmp_path):
    from pipelines.ingest.hyperliquid.misc import ingest_misc_events

    lines = [misc_block(100 + k, [ledger([A], {"type": "deposit", "usdc": str(k + 1)})]) for k in range(2000)]
    report = ingest_misc_events(
        lake, write(tmp_path / "t.lz4", lines, compress=True, truncate=True), allow_partial=True
    )
    assert report.records_read == report.records_written + report.quarantined
    assert report.quarantined == 1 and 0 < report.records_written < 2000
    assert any("lz4" in n for n in report.notes)


def test_misc_block_gaps_are_reported(lake, tmp_path):
    from pipelines.ingest.hyperliquid.misc import ingest_misc_events

    report = ingest_misc_events(
        lake, write(tmp_path / "g", [misc_block(10, []), misc_block(11, []), misc_block(15, [])])
    )
    assert any("3 block number(s) missing in 1 gap(s): 12-14" in n for n in report.notes)


# --- legacy node_fills / node_trades ------------------------------------------------------------------------

LEGACY_FILL = [
    A,
    {
        "coin": "MNT",
        "px": "1.7042",
        "sz": "7.0",
        "side": "B",
        "time": 1754000000000,
        "startPosition": "16642.0",
        "dir": "Open Long",
        "closedPnl": "0.0",
        "hash": ZERO_HASH,
        "oid": 214107584283,
        "crossed": True,
        "fee": "0.004562",
        "tid": 1026037199589958,
        "feeToken": "USDC",
    },
]
TRADE = {
    "coin": "ETH",
    "side": "A",
    "time": "2025-06-24T02:56:37.026660548",
    "px": "2391.9",
    "sz": "0.0051",
    "hash": ZERO_HASH,
    "trade_dir_override": "Na",
    "side_info": [
        {"user": A, "start_pos": "14.2048", "oid": 105686950111, "twap_id": None, "cloid": None},
        {"user": B, "start_pos": "-2.6603", "oid": 105686977630, "twap_id": 822427, "cloid": None},
    ],
}


def test_legacy_node_fills_land_in_fills_with_coverage(lake, tmp_path):
    from pipelines.ingest.hyperliquid.files import ingest_node_fills

    later = json.loads(json.dumps(LEGACY_FILL))
    later[1].update(time=1754000000000 + 30 * 60_000, tid=7)
    lines = [json.dumps(LEGACY_FILL), json.dumps(later), '["0xnot", {}]', "{broken"]
    report = ingest_node_fills(lake, write(tmp_path / "node_fills" / "8.lz4", lines, compress=True), kind="node_fills")
    assert (report.records_written, report.quarantined) == (2, 2)
    fills = read(lake, "fills").sort("time_ms")
    assert fills["source"].unique().to_list() == ["node_fills"] and fills["block_number"].null_count() == 2
    assert fills["start_position"][0] == Decimal("16642") and fills["tid"].to_list() == [1026037199589958, 7]
    assert any(n.startswith("coverage gap: 1 stretch") for n in report.notes)


def test_node_trades_become_two_fills_buyer_first(lake, tmp_path):
    from pipelines.ingest.hyperliquid.files import ingest_node_fills

    bad_side = dict(TRADE, side="X")
    short_info = dict(TRADE, side_info=[TRADE["side_info"][0]])
    lines = [json.dumps(TRADE), json.dumps(bad_side), json.dumps(short_info), "not json"]
    report = ingest_node_fills(lake, write(tmp_path / "node_trades" / "2.lz4", lines), kind="node_trades")
    assert report.records_read == report.records_written + report.quarantined
    assert (report.records_written, report.quarantined) == (2, 3)
    fills = read(lake, "fills").sort("side", descending=True)  # B then A
    buyer, seller = fills.row(0, named=True), fills.row(1, named=True)
    assert (buyer["user"], buyer["side"], buyer["crossed"], buyer["dir"]) == (A, "B", False, "Open Long")
    assert (seller["user"], seller["side"], seller["crossed"], seller["dir"]) == (B, "A", True, "Open Short")
    assert buyer["tid"] == seller["tid"] and buyer["tid"] >= 1 << 63  # synthesized, never a venue tid
    assert buyer["time_ms"] == 1750733797026 and buyer["fee"] is None and buyer["twap_id"] is None
    assert seller["twap_id"] == 822427


@pytest.mark.parametrize(
    "coin, side, start, sz, expected",
    [
        ("ETH", "B", "0", "1", "Open Long"),
        ("ETH", "B", "-2", "1", "Close Short"),
        ("ETH", "B", "-2", "3", "Short > Long"),
        ("ETH", "A", "0", "1", "Open Short"),
        ("ETH", "A", "2", "1", "Close Long"),
        ("ETH", "A", "2", "3", "Long > Short"),
        ("@107", "B", "5", "1", "Buy"),
        ("PURR/USDC", "A", "5", "1", "Sell"),
    ],
)
def test_trade_dir_is_derived_from_start_and_side(coin, side, start, sz, expected):
    assert legacy.derive_dir(coin, side, Decimal(start), Decimal(sz)) == expected


# --- snapshot export ----------------------------------------------------------------------------------------


def _export(tmp_path: Path, *, compress: bool = False) -> Path:
    d = tmp_path / "snapshot"
    d.mkdir()
    accounts = [
        {"user": A, "account_value": 1000.5, "total_long_notional": 2000.0, "total_short_notional": 0.0},
        {"user": B, "account_value": 300.25, "total_long_notional": 0.0, "total_short_notional": 450.0},
        {"user": "not-an-address", "account_value": 1.0},
    ]
    markets = [
        {
            "market_name": "hyperliquid:BTC",
            "snapshot_id": "custom_1760129880000",
            "position_count": 1,
            "positions": [
                {
                    "user": A,
                    "size": 0.02,
                    "notional_size": 2000.0,
                    "funding_pnl": 0.2,
                    "entry_price": 90000.0,
                    "is_cross": True,
                    "leverage": 5,
                    "liquidation_price": None,
                    "account_value": 1000.5,
                }
            ],
        },
        {
            "market_name": "hyperliquid:ETH",
            "snapshot_id": "custom_1760129880000",
            "position_count": 2,
            "positions": [
                {
                    "user": B,
                    "size": -0.1,
                    "notional_size": 450.0,
                    "funding_pnl": 0.0,
                    "entry_price": 4000.0,
                    "is_cross": False,
                    "leverage": 10,
                    "liquidation_price": 4300.5,
                    "account_value": 300.25,
                },
                {"user": B, "size": "lots", "notional_size": 1.0, "entry_price": 1.0, "is_cross": True, "leverage": 1},
            ],
        },
    ]
    name_a, name_p = (
        "account_value_snapshot_758750000_1760129880000.json",
        "perp_positions_by_market_758750000_1760129880000.json",
    )
    for name, obj in ((name_a, accounts), (name_p, markets)):
        text = json.dumps(obj, indent=1).encode()
        (d / name).write_bytes(lz4.frame.compress(text) if compress else text)
    return d


def test_snapshot_export_derives_what_it_lacks_and_says_so(lake, tmp_path):
    from pipelines.ingest.hyperliquid import archive

    d = _export(tmp_path)
    files = {"account_values": next(d.glob("account_*")), "perp_positions": next(d.glob("perp_*"))}
    reports = archive.ingest_snapshot_export(lake, files)
    assert [(r.records_read, r.records_written, r.quarantined) for r in reports] == [(3, 2, 1), (3, 2, 1)]
    pos = read(lake, "position_snapshots").sort("coin")
    btc, eth = pos.row(0, named=True), pos.row(1, named=True)
    # mark = notional/|size| = 100000 (BTC), 4500 (ETH): upnl = size * (mark - entry)
    assert btc["unrealized_pnl"] == Decimal("200") and btc["leverage_type"] == "cross"
    assert btc["margin_used"] == Decimal("400") and btc["time_ms"] == 1760129880000
    assert eth["szi"] == Decimal("-0.1") and eth["unrealized_pnl"] == Decimal("-50")
    assert eth["margin_used"] == Decimal("-10")  # isolated: |size|*entry/leverage (40) + upnl (-50)
    assert "isolated margin" in eth["derivation"] and "cross margin" in btc["derivation"]
    acc = read(lake, "account_snapshots").sort("user")
    assert acc["account_value"].to_list() == [Decimal("1000.5"), Decimal("300.25")]
    assert acc["positions"].to_list() == [1, 1] and acc["derivation"].null_count() == 0


def test_export_array_is_streamed_item_by_item_across_chunks():
    from forensics.formats.hyperliquid.snapshot_export import iter_array_items

    text = json.dumps([{"user": A, "v": 1.25, "s": "é€"}] * 50).encode()
    chunks = [text[i : i + 7] for i in range(0, len(text), 7)]  # splits numbers and UTF-8 sequences
    items = list(iter_array_items(chunks))
    assert len(items) == 50 and all(e is None and it["v"] == Decimal("1.25") and it["s"] == "é€" for _, it, e in items)
    assert list(iter_array_items([b'[{"a": 1}, {"b":']))[-1][2] is not None  # truncated: reported, not raised


# --- archive asset_ctxs CSV ---------------------------------------------------------------------------------

CSV_HEADER = "time,coin,funding,open_interest,prev_day_px,day_ntl_vlm,premium,oracle_px,mark_px,mid_px,impact_bid_px,impact_ask_px"  # noqa: E501 (the archive's header, as one line)


@pytest.mark.parametrize("compress", [False, True], ids=["csv", "csv.lz4"])
def test_archive_asset_ctxs_csv(lake, tmp_path, compress):
    from pipelines.ingest.hyperliquid.archive import ingest_asset_ctxs_csv

    lines = [
        CSV_HEADER,
        "2024-01-01T00:00:00Z,AAVE,0.00002789,1075.9,111.09,1759054.2941,0.00072316,108.69,108.79,108.765,108.75,108.7872",
        "2024-01-01T00:01:00Z,AAVE,0.00002789,1075.9,111.09,1759054.2941,0.00072316,108.69,108.80,,,",
        "2024-01-01T00:01:00Z,BTC,oops,1,1,1,1,1,42000,1,1,1",
        "2024-01-01T00:01:00Z,BTC,1,1",
        "yesterday,BTC,1,1,1,1,1,1,42000,1,1,1",
        "2024-01-01T00:02:00Z,BTC,1,1,1,1,1,1,-5,1,1,1",
    ]
    report = ingest_asset_ctxs_csv(
        lake, write(tmp_path / ("d.csv.lz4" if compress else "d.csv"), lines, compress=compress)
    )
    assert (report.records_read, report.records_written, report.quarantined) == (6, 2, 4)
    rows = read(lake, "asset_ctxs").sort("time_ms")
    assert rows["mark_px"].to_list() == [Decimal("108.79"), Decimal("108.80")]
    assert rows["time_ms"].to_list() == [1704067200000, 1704067260000] and rows["mid_px"][1] is None
    assert sorted(read(lake, "quarantine")["reason"].to_list()) == sorted(
        ["non-numeric funding", "CSV line has 4 fields, header has 12", "unparsable time", "mark_px is not positive"]
    )


# --- the CLI: formats from content, one-line errors ---------------------------------------------------------


def _liqf(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines.cli",
            "--lake",
            str(tmp_path / "lake"),
            "--db",
            str(tmp_path / "db.duckdb"),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_detects_formats_from_content_whatever_the_names(tmp_path):
    misc = write(tmp_path / "in" / "fills_looking_name.lz4", _misc_lines(), compress=True)
    ctxs = write(tmp_path / "in" / "ctx.txt", [CSV_HEADER, "2024-01-01T00:00:00Z,AAVE,0,1,1,1,0,1,108.79,1,1,1"])
    fills = write(tmp_path / "in" / "misc.jsonl", [json.dumps(LEGACY_FILL)])
    export = _export(tmp_path, compress=True)
    r = _liqf(
        tmp_path,
        "ingest",
        "hyperliquid",
        "--node-fills",
        str(fills),
        "--misc-events",
        str(misc),
        "--snapshot",
        str(export),
        "--asset-ctxs",
        str(ctxs),
    )
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout + r.stderr
    assert "funding_payments 2" in out and "asset_ctxs 1" in out and "position_snapshots 2" in out


def test_cli_unrecognised_format_is_one_line_naming_what_was_expected(tmp_path):
    csv = write(tmp_path / "x.lz4", [CSV_HEADER, "2024-01-01T00:00:00Z,AAVE,0,1,1,1,0,1,108.79,1,1,1"])
    r = _liqf(tmp_path, "ingest", "hyperliquid", "--misc-events", str(csv))
    assert r.returncode == 2
    message = [line for line in (r.stdout + r.stderr).splitlines() if "expects" in line]
    assert len(message) == 1 and "found asset_ctxs_archive" in message[0] and "misc_events_by_block" in message[0]
    junk = write(tmp_path / "junk.json", ["hello"])
    r = _liqf(tmp_path, "ingest", "hyperliquid", "--node-fills", str(junk))
    assert r.returncode == 2 and "format not recognised; --node-fills expects" in r.stdout + r.stderr


# --- real public samples ------------------------------------------------------------------------------------


def test_real_node_fills_sample_is_detected_as_by_block(realdata, tmp_path):
    from pipelines.ingest.hyperliquid import detect

    sample = realdata("hyperanalyze/sample_data.json")
    assert detect.check(sample, "node-fills") == "node_fills_by_block"
    with pytest.raises(detect.UnknownFormat, match="found node_fills_by_block; --misc-events expects"):
        detect.check(sample, "misc-events")


def test_real_api_ledger_deltas_read_the_same_from_a_node_misc_line(api_example):
    """The info API's ledger deltas and the node's LedgerUpdate deltas share field names: the same delta
    gives the same typed row whichever source carried it."""
    from forensics.formats.hyperliquid.ledger import ledger_rows

    doc = json.loads(api_example("hyperliquid_userNonFundingLedgerUpdates.json").read_text())
    user = doc["request"]["user"]
    items = doc["response"]
    assert items
    for item in items:
        api = ledger_rows(user, item)
        out = misc_events.MiscBatch()
        when = "2024-11-19T06:53:16.516"
        line = misc_block(
            1,
            [
                {
                    "time": when,
                    "hash": item["hash"],
                    "inner": {"LedgerUpdate": {"users": [user], "delta": item["delta"]}},
                }
            ],
            time=when,
        )
        misc_events.normalize_misc_line(1, line, out)
        if item["delta"]["type"] not in misc_events.LEDGER_TYPES:
            assert out.rejects  # a type the reference does not list is quarantined from the node stream
            continue
        (node,) = [r for r in out.ledger if r["user"] == user.lower()]
        keys = ("type", "usdc", "fee", "amount", "token", "destination", "to_perp", "category", "delta_json")
        assert {k: node[k] for k in keys} == {k: api[k] for k in keys}
