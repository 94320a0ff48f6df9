"""node_fills_by_block ingest: real sample, bad input, idempotency, reconciliation."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import lz4.frame
import polars as pl
import pytest

from pipelines.ingest.hyperliquid.files import InputError, expand_inputs, ingest_node_fills
from pipelines.ingest.safety import IncompleteInput
from pipelines.lake import Lake

USER_A = "0x" + "a1" * 20
USER_B = "0x" + "b2" * 20


def fill(user: str, tid: int, **over) -> list:
    f = {
        "coin": "BTC",
        "px": "100.5",
        "sz": "0.1",
        "side": "B",
        "time": 1760130964831,
        "startPosition": "0.0",
        "dir": "Open Long",
        "closedPnl": "0.0",
        "hash": "0x" + "00" * 32,
        "oid": 1,
        "crossed": True,
        "fee": "0.01",
        "tid": tid,
        "feeToken": "USDC",
    }
    f.update(over)
    return [user, {k: v for k, v in f.items() if v is not ...}]


def block(n: int, events) -> str:
    return json.dumps(
        {
            "local_time": "2025-10-10T21:16:04.834874687",
            "block_time": "2025-10-10T21:16:04.831874687",
            "block_number": 758800000 + n,
            "events": events,
        }
    )


def write_lines(path: Path, lines: list[str], compress: bool = True) -> Path:
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(lz4.frame.compress(data) if compress else data)
    return path


def lake_files(lake: Lake) -> list[Path]:
    return sorted(p for p in lake.root.rglob("*") if p.is_file())


def read(lake: Lake, table: str) -> pl.DataFrame:
    files = list(lake.table_dir(table).rglob("*.parquet"))
    return pl.read_parquet(files) if files else pl.DataFrame()


def test_real_sample_lands_exactly(lake, realdata):
    path = realdata("hyperanalyze/sample_data.json")
    report = ingest_node_fills(lake, path)
    assert report.records_read == 7282
    assert report.records_written == 7282 and report.quarantined == 0
    fills = read(lake, "fills")
    assert fills.height == 7282
    assert fills.filter(pl.col("is_liquidation")).height == 2
    assert fills.filter(pl.col("is_liquidated_leg")).height == 1
    assert fills["coin"].n_unique() == 187
    assert fills.select(["user", "tid"]).is_unique().all()


def test_real_sample_start_positions_chain(lake, realdata):
    """Every fill's startPosition equals the previous fill's startPosition +/- its size (same user, coin)."""
    ingest_node_fills(lake, realdata("hyperanalyze/sample_data.json"))
    df = (
        read(lake, "fills")
        .filter(~pl.col("coin").str.starts_with("@") & ~pl.col("coin").str.contains("/"))
        .with_columns(
            pl.col("start_position").cast(pl.Float64).alias("sp"),
            (pl.when(pl.col("side") == "B").then(1.0).otherwise(-1.0) * pl.col("sz").cast(pl.Float64)).alias("delta"),
        )
        .sort(["user", "coin", "block_number", "event_index"])
        .with_columns(
            (pl.col("sp") + pl.col("delta")).shift(1).over(["user", "coin"]).alias("expected"),
        )
        .filter(pl.col("expected").is_not_null())
    )
    assert df.height > 1000
    bad = df.filter((pl.col("expected") - pl.col("sp")).abs() > 1e-9 * (1 + pl.col("sp").abs()))
    assert bad.height == 0, bad.select("user", "coin", "tid", "sp", "expected").head()


def test_documented_adl_line(lake, api_example, tmp_path):
    line = json.loads(api_example("hyperliquid_node_fills_by_block_adl_line.json").read_text())["line"]
    path = write_lines(tmp_path / "21.lz4", [json.dumps(line)])
    report = ingest_node_fills(lake, path)
    assert (report.records_written, report.quarantined) == (1, 0)
    row = read(lake, "fills").row(0, named=True)
    assert row["is_adl"] is True
    assert row["liquidated_user"] == "0x2e3d94f0562703b25c83308a05046ddaf9a8dd14"
    assert row["liquidation_method"] == "backstop"
    assert row["is_liquidated_leg"] is False
    assert str(row["px"]).startswith("22.075") and row["tid"] == 771334864158847


BAD_CASES = {
    "malformed JSON line": ['{"block_number": 1, "events": [', "malformed JSON line"],
    "non-list events": [json.dumps({"block_number": 1, "events": {"x": 1}}), "block events is not a list (got OBJECT)"],
    "unknown dir": [block(1, [fill(USER_A, 11, dir="Moon Long")]), "unknown dir value"],
    "non-numeric px": [block(1, [fill(USER_A, 12, px="12a")]), "non-numeric px"],
    "missing tid": [block(1, [fill(USER_A, ...)]), "missing tid"],
    "bad event shape": [block(1, [[USER_A, "not a fill"]]), "malformed event: expected [user address, fill object]"],
    "unknown liquidation method": [
        block(1, [fill(USER_A, 13, liquidation={"liquidatedUser": USER_A, "markPx": "1", "method": "magic"})]),
        "liquidation is not an object with a known method",
    ],
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_records_are_quarantined_and_counts_reconcile(lake, tmp_path, case):
    bad_line, reason = BAD_CASES[case]
    good = [block(0, [fill(USER_A, 1), fill(USER_B, 1, side="A", dir="Open Short")])]
    path = write_lines(tmp_path / "0.lz4", good + [bad_line] + [block(2, [fill(USER_A, 2)])])
    report = ingest_node_fills(lake, path)
    assert report.records_written == 3
    assert report.quarantined == 1
    assert report.records_read == report.records_written + report.quarantined
    q = read(lake, "quarantine")
    assert q["reason"].to_list() == [reason]
    assert q["line_number"].to_list() == [2]
    assert q["raw"][0]  # the raw text is kept for the analyst


def test_duplicate_fill_lines_quarantined(lake, tmp_path):
    line = block(0, [fill(USER_A, 1), fill(USER_B, 1, side="A")])
    path = write_lines(tmp_path / "0.lz4", [line, line, block(1, [fill(USER_A, 2)])])
    report = ingest_node_fills(lake, path)
    assert (report.records_read, report.records_written, report.quarantined) == (5, 3, 2)
    assert set(read(lake, "quarantine")["reason"]) == {"duplicate fill (user, tid) already seen at an earlier line"}


def test_truncated_lz4_keeps_complete_lines(lake, tmp_path):
    lines = [block(i, [fill(USER_A, 2 * i), fill(USER_B, 2 * i, side="A")]) for i in range(200)]
    data = lz4.frame.compress(("\n".join(lines) + "\n").encode())
    path = tmp_path / "cut.lz4"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(IncompleteInput, match="truncated lz4 frame"):
        ingest_node_fills(lake, path)  # an error for that file unless partial data is asked for
    assert not lake.has_files("fills") and not (lake.root / "raw").exists()
    report = ingest_node_fills(lake, path, allow_partial=True)
    assert report.records_read == report.records_written + report.quarantined
    assert report.quarantined == 1 and "truncated lz4 frame" in report.reasons.most_common(1)[0][0]
    assert report.records_written > 0
    assert report.notes


def test_hostile_coin_names_never_shape_paths(lake, tmp_path):
    hostile = ["../../x", "<img src=x onerror=alert(1)>", "a'b\"c", "@107", "PURR/USDC", "/etc/passwd"]
    events = [fill(USER_A, i + 1, coin=c) for i, c in enumerate(hostile)]
    path = write_lines(tmp_path / "h.lz4", [block(0, events)])
    report = ingest_node_fills(lake, path)
    assert report.records_written == len(hostile)
    assert sorted(read(lake, "fills")["coin"]) == sorted(hostile)
    for p in lake_files(lake):
        assert lake.root in p.resolve().parents
        assert "passwd" not in str(p) and "img" not in str(p) and ".." not in p.relative_to(lake.root).parts
    assert not (tmp_path / "x").exists()


def test_reingest_is_idempotent(lake, realdata):
    path = realdata("hyperanalyze/sample_data.json")
    first = ingest_node_fills(lake, path)
    files_1 = [p.relative_to(lake.root) for p in lake_files(lake)]
    second = ingest_node_fills(lake, path)
    files_2 = [p.relative_to(lake.root) for p in lake_files(lake)]
    assert files_1 == files_2
    assert (first.records_written, first.quarantined) == (second.records_written, second.quarantined)
    assert read(lake, "fills").height == 7282
    runs = read(lake, "ingest_runs")
    assert runs.height == 1 and runs["sha256"][0] == first.sha256


def test_plain_jsonl_and_directories(lake, tmp_path):
    d = tmp_path / "node_fills_by_block" / "hourly" / "20251010"
    d.mkdir(parents=True)
    write_lines(d / "21.lz4", [block(0, [fill(USER_A, 1)])])
    write_lines(d / "22.jsonl", [block(1, [fill(USER_A, 2)])], compress=False)
    files = expand_inputs([tmp_path / "node_fills_by_block"])
    assert [f.name for f in files] == ["21.lz4", "22.jsonl"]
    assert sum(ingest_node_fills(lake, f).records_written for f in files) == 2


def test_unreadable_and_empty_inputs(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        expand_inputs([tmp_path / "missing.lz4"])
    (tmp_path / "empty.lz4").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        expand_inputs([tmp_path / "empty.lz4"])


def test_fill_types_and_day_partitions(lake, tmp_path):
    late = fill(USER_A, 2, time=1760140799999)  # 23:59:59.999
    early = fill(USER_A, 3, time=1760140800000)  # next day 00:00
    write_lines(tmp_path / "x.lz4", [block(0, [fill(USER_A, 1), late, early])])
    ingest_node_fills(lake, tmp_path / "x.lz4")
    days = sorted(p.parent.name for p in lake.table_dir("fills").rglob("*.parquet"))
    assert days == ["date=2025-10-10", "date=2025-10-11"]
    con = duckdb.connect()
    types = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet('{lake.glob('fills')}')").fetchall()}
    assert types["px"] == "DECIMAL(38,10)" and types["tid"] == "UBIGINT" and types["block_time"] == "TIMESTAMP_NS"


# Valid fills the compiled scan takes (plain): absent and null fields, long decimals, liquidations, negative
# twapIds, fields it does not read (skipped whatever they hold).
PLAIN = [
    {"oid": None},
    {"px": "0100.50"},
    {"sz": "12345678901.1234567891"},
    {"crossed": False},
    {"cloid": "0x" + "ab" * 16, "builderFee": "0.1"},
    {"dir": "Auto-Deleveraging", "twapId": -3},
    {"liquidation": {"liquidatedUser": USER_B.upper().replace("0X", "0x"), "markPx": "99.5", "method": "backstop"}},
    {"liquidation": None, "feeToken": None},
    {"extra": {"nested": [1, -2.5e3, None, True, {"k": "v"}], "empty": {}}, "more": []},
]
# Valid fills the scan leaves to the general path (not plain), which lands them all the same.
NOT_PLAIN = [
    {"px": 100.5},
    {"tid": "77"},
    {"crossed": "true"},
    {"coin": 'É✓ "q"'},
    {"time": "1760130964831"},
    {"px": "1e2"},
    {"sz": "0.12345678912"},
    {"fee": "+0.01"},
    {"startPosition": "-.5"},
    {"builderFee": "x"},
    {"twapId": "x"},
    {"hash": 'a"b'},
]
# Lines a JSON reader might take one way and the general path another, or that it rejects: never plain.
EDGE_LINES = [
    '{"block_number": 1, "block_number": 2, "events": []}',
    '{"block_number": 1, "events": [["%s", {"coin": "BTC", "coin": "ETH"}]]}' % USER_A,
    '{"block_number": 1, "events": [],}',
    '{"block_number": 01, "events": []}',
    '{"block_number": 1, "events": [["%s", {"tid": 18446744073709551616}]]}' % USER_A,
    '{"block_time": "2025-02-30T00:00:00", "events": []}',
    '{"block_time": "2025-10-10T21:16:04.831874+00:00", "events": []}',
    '{"events": [["%s" , {}] ] , "x": [[[[[[[[[[]]]]]]]]]]}' % USER_A,
    '{"events": [], "x": NaN}',
    '{"events": []} trailing',
]


def _spy_scan(monkeypatch, general_only: bool = False) -> list[int]:
    """Record the lines the scan leaves to the general path (or make it leave every line there)."""
    from forensics.formats import hyperliquid as hl
    from forensics.formats.hyperliquid import node_scan

    others: list[int] = []
    scan = node_scan.scan_node_lines

    def spy(buf, starts, ends, line_nos, **kw):
        if general_only:
            return node_scan.ScannedLines(node_scan._OUTPUT.empty_table(), line_nos, 0)
        got = scan(buf, starts, ends, line_nos, **kw)
        others.extend(got.other_lines.tolist())
        return got

    monkeypatch.setattr(hl, "scan_node_lines", spy)
    return others


def _land(tmp_path, name, lines) -> tuple[pl.DataFrame, list]:
    lake = Lake(tmp_path / name)
    report = ingest_node_fills(lake, write_lines(tmp_path / f"{name}.lz4", lines))
    assert report.records_read == report.records_written + report.quarantined
    q = read(lake, "quarantine")
    q = q.sort("line_number", "item_index").select("line_number", "item_index", "reason").rows() if q.height else []
    fills = read(lake, "fills")
    return fills.drop("source_key").sort("user", "tid"), q


def test_scan_and_general_path_land_the_same_rows(tmp_path, monkeypatch):
    """Each variant on its own line: the scan takes exactly the plain ones, and what lands is the same as when
    the general path reads every line (rows, values and quarantine)."""
    variants = PLAIN + NOT_PLAIN
    lines = [block(i, [[USER_A, {**fill(USER_A, i + 1)[1], **v}]]) for i, v in enumerate(variants)] + EDGE_LINES
    others = _spy_scan(monkeypatch)
    scanned = _land(tmp_path, "scan", lines)
    assert sorted(others) == list(range(len(PLAIN) + 1, len(lines) + 1))
    _spy_scan(monkeypatch, general_only=True)
    assert scanned[0].equals(_land(tmp_path, "general", lines)[0])
    assert scanned[1] == _land(tmp_path, "general2", lines)[1]
    assert scanned[0].height == len(variants) and len(scanned[1]) >= 4


def test_scan_takes_the_real_sample_as_the_general_path_does(tmp_path, monkeypatch, realdata):
    path = realdata("hyperanalyze/sample_data.json")
    lines = path.read_text().splitlines()
    others = _spy_scan(monkeypatch)
    scanned = _land(tmp_path, "scan", lines)
    assert not others  # real lines are plain
    _spy_scan(monkeypatch, general_only=True)
    general = _land(tmp_path, "general", lines)
    assert scanned[0].height == 7282 and scanned[0].equals(general[0]) and scanned[1] == general[1]


def test_duplicates_across_days_and_within_a_line(lake, tmp_path):
    next_day = 1760140800001
    lines = [
        block(0, [fill(USER_A, 1), fill(USER_A, 1)]),  # the same leg twice in one block
        block(1, [fill(USER_A, 2), fill(USER_A, 3), fill(USER_B, 4)]),
        block(2, [fill(USER_A, 2, time=next_day), fill(USER_A, 3, time=next_day)]),  # repeats on the next day
    ]
    report = ingest_node_fills(lake, write_lines(tmp_path / "d.lz4", lines))
    assert (report.records_read, report.records_written, report.quarantined) == (7, 4, 3)
    q = read(lake, "quarantine").sort("line_number", "item_index")
    assert q["line_number"].to_list() == [1, 3, 3]
    assert '"tid":2' in q["raw"][1] and f'"time_ms":{next_day}' in q["raw"][1]
    assert sorted(read(lake, "fills")["tid"].to_list()) == [1, 2, 3, 4]
    # the next day kept no row, so it has no file
    assert [p.parent.name for p in lake.table_dir("fills").rglob("*.parquet")] == ["date=2025-10-10"]


def test_undecodable_blank_and_crlf_lines(lake, tmp_path):
    good = [block(i, [fill(USER_A, i + 1)]) for i in range(3)]
    data = (good[0] + "\r\n\r\n  \t\r\n" + good[1] + "\r\n").encode() + b'{"coin": "\xff"}\n' + good[2].encode()
    path = tmp_path / "x.lz4"
    path.write_bytes(lz4.frame.compress(data))
    report = ingest_node_fills(lake, path)
    assert (report.records_written, report.quarantined) == (3, 1)
    q = read(lake, "quarantine")
    assert q["reason"].to_list() == ["line is not valid UTF-8"] and q["line_number"].to_list() == [5]


def test_null_user_is_quarantined(lake, tmp_path):
    path = write_lines(tmp_path / "n.lz4", [block(0, [fill(USER_A, 1), [None, fill(USER_A, 2)[1]]])])
    report = ingest_node_fills(lake, path)
    assert (report.records_written, report.quarantined) == (1, 1)
    assert read(lake, "quarantine")["reason"].to_list() == ["invalid user address"]


def _ingest_all(tmp_path: Path, name: str, lines: list[str]) -> tuple[pl.DataFrame, list]:
    lake = Lake(tmp_path / name)
    report = ingest_node_fills(lake, write_lines(tmp_path / f"{name}.lz4", lines))
    assert report.records_read == report.records_written + report.quarantined
    q = read(lake, "quarantine").sort("line_number", "item_index")
    return read(lake, "fills").drop("source_key").sort("user", "tid"), q.select(
        "line_number", "item_index", "reason"
    ).rows()


def test_oversized_block_lines_land_like_ordinary_ones(tmp_path, monkeypatch):
    """A cascade can put 100k+ fills in one block: such lines are normalized in chunks of events."""
    from forensics.formats.hyperliquid import node_fills as hl

    events = [fill(USER_A if i % 2 else USER_B, 100 + i) for i in range(7)]
    events[3][1]["dir"] = "Moon Long"  # a bad event inside a big block
    lines = [block(0, events), block(1, [fill(USER_A, 1)])] + [BAD_CASES[c][0] for c in sorted(BAD_CASES)]
    lines.append(json.dumps({"block_number": 9, "events": [[USER_A, {}], "not a pair"]}))
    expected = _ingest_all(tmp_path, "ordinary", lines)
    monkeypatch.setattr(hl, "LARGE_LINE_BYTES", 40)
    monkeypatch.setattr(hl, "LARGE_BLOCK_CHUNK", 2)
    got = _ingest_all(tmp_path, "oversized", lines)
    assert got[0].equals(expected[0]) and got[1] == expected[1]
    assert expected[0].height == 7 and len(expected[1]) == len(BAD_CASES) + 3
