"""What the CEX pull tests share (private pulls, faults, the full ingest): the stand-ins' test keys, the
window they generate data for, and a table-by-table content hash of a lake's normalized tables."""

from __future__ import annotations

from pathlib import Path

import duckdb

from pipelines.venues.signing import ApiCredentials

START = 1_760_000_000_000
END = START + 6 * 3_600_000
#: one read-only test key per keyed venue; the stand-ins check each venue's signature scheme with it
KEYS = {
    "binance": ApiCredentials("BINKEY-aaaaaaaaaaaa", "BINSECRET-bbbbbbbbbbbb"),
    "bybit": ApiCredentials("BYBKEY-cccccccccccc", "BYBSECRET-dddddddddddd"),
    "okx": ApiCredentials("OKXKEY-eeeeeeeeeeee", "OKXSECRET-ffffffffffff", "OKXPASS-gggg"),
    "bitmex": ApiCredentials("BMXKEY-hhhhhhhhhhhh", "BMXSECRET-iiiiiiiiiiii"),
    "deribit": ApiCredentials("DRBKEY-jjjjjjjjjjjj", "DRBSECRET-kkkkkkkkkkkk"),
}
#: columns that hold when the pull ran (receive times), not what the venue said
VOLATILE = ("ingested_at", "received_at", "snapshot_time_ms", "time_ms", "time", "date", "source_key")


def table_rows(root: Path) -> dict[str, tuple[int, str]]:
    """Per normalized table: rows and a content hash without the pull-time columns."""
    con = duckdb.connect()
    out = {}
    for table in sorted(p for p in (root / "normalized").glob("*") if p.is_dir() and p.name != "quarantine"):
        parts = [str(p) for p in table.rglob("part-*.parquet")]
        cols = [
            r[0]
            for r in con.execute("DESCRIBE SELECT * FROM read_parquet(?, union_by_name = true)", [parts]).fetchall()
            if r[0] not in VOLATILE
        ]
        sel = ", ".join(f'"{c}"' for c in cols)
        out[table.name] = con.execute(
            f"SELECT count(*), md5(coalesce(string_agg(r, chr(10) ORDER BY r), '')) FROM "
            f"(SELECT ({sel})::VARCHAR r FROM read_parquet(?, union_by_name = true))",
            [parts],
        ).fetchone()
    con.close()
    return out
