"""Info-API ingest over real HTTP against the local venue server, including faults."""

from __future__ import annotations

import gzip
import hashlib
import json

import pytest

from pipelines.catalog import refresh
from pipelines.ingest.hyperliquid.api import PullError, parse_time, pull, read_users
from pipelines.ingest.safety import IncompletePull
from pipelines.sandbox.venue_server import serve
from pipelines.venues.hyperliquid import HyperliquidInfoClient
from tests.fixtures_venue import USER_LIQ, USER_MAIN, USER_NOBODY, build_scenario


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    return build_scenario(tmp_path_factory.mktemp("scenario"), main_fills=3000, big_fills=10)


def _client(url: str) -> HyperliquidInfoClient:
    return HyperliquidInfoClient(url, timeout=5, max_retries=6, sleep=lambda s: None)


def test_pull_writes_reconciled_tables(lake, tmp_path, scenario):
    users = [USER_MAIN, USER_LIQ, USER_NOBODY]
    with serve(scenario.root) as server:
        reports = pull(lake, _client(server.base_url), users, 0, scenario.now_ms)
    by_source = {r.source: r for r in reports}
    fills = by_source["api:userFillsByTime"]
    expected = len(scenario.fills[USER_MAIN]) + len(scenario.fills[USER_LIQ])
    assert fills.records_read == expected == fills.records_written
    assert fills.quarantined == 0
    for r in reports:
        assert r.records_read == r.records_written + r.quarantined
    result = refresh(lake, tmp_path / "c.duckdb")
    assert result.views["fills"] == expected
    assert result.views["asset_ctxs"] > 0 and result.views["account_snapshots"] == 3
    # raw responses kept, with request metadata, secrets redacted: one file per dataset, so each input's
    # SHA-256 and byte count in the ledger are its own file's (not one hash shared by the four inputs)
    raw_files = {p.name.split(".")[0]: p for p in (lake.root / "raw").rglob("*.jsonl.gz")}
    assert set(raw_files) == {r.source_key for r in reports}
    assert len({r.sha256 for r in reports}) == len({r.bytes for r in reports}) == 4
    endpoint = {
        "api:userFillsByTime": "userFillsByTime",
        "api:userNonFundingLedgerUpdates": "userNonFundingLedgerUpdates",
        "api:clearinghouseState": "clearinghouseState",
        "api:metaAndAssetCtxs": "metaAndAssetCtxs",
    }
    for r in reports:
        path = raw_files[r.source_key]
        assert (r.sha256, r.bytes) == (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_size)
        records = [json.loads(line) for line in gzip.open(path)]
        assert {x["endpoint"] for x in records} == {endpoint[r.source]}
        assert all("received_at" in x and "params" in x for x in records)
        # the local venue server says it serves generated data; the ledger records it with the origin
        assert r.origin == server.base_url and r.generated_by and "local venue server" in r.generated_by
    runs = lake.read("ingest_runs", "hyperliquid")
    assert runs["generated_by"].null_count() == 0 and runs["origin"].unique().to_list() == [server.base_url]


def test_pull_is_idempotent(lake, scenario):
    with serve(scenario.root) as server:
        first = pull(lake, _client(server.base_url), [USER_MAIN], 0, scenario.now_ms)
        files_1 = sorted(p.relative_to(lake.root) for p in lake.root.rglob("*.parquet"))
        second = pull(lake, _client(server.base_url), [USER_MAIN], 0, scenario.now_ms)
        files_2 = sorted(p.relative_to(lake.root) for p in lake.root.rglob("*.parquet"))
    assert files_1 == files_2
    assert [r.records_written for r in first] == [r.records_written for r in second]


def test_pull_survives_faults(lake, scenario):
    with serve(scenario.root, faults="429=0.15,5xx=0.15,truncate=0.1,reset=0.05,seed=11") as server:
        reports = pull(lake, _client(server.base_url), [USER_MAIN], 0, scenario.now_ms)
        assert sum(server.fault_counts.values()) > 0
    fills = reports[0]
    assert fills.records_written == len(scenario.fills[USER_MAIN]) and fills.quarantined == 0


def test_exhausted_retries_stop_the_pull_and_write_nothing(lake, scenario):
    with serve(scenario.root, faults="5xx=1.0,seed=1") as server:
        client = HyperliquidInfoClient(server.base_url, timeout=5, max_retries=1, sleep=lambda s: None)
        with pytest.raises(IncompletePull, match="hyperliquid pull incomplete: userFillsByTime .* after 2 tries"):
            pull(lake, client, [USER_MAIN], 0, scenario.now_ms)
    assert not list(lake.root.rglob("*.parquet")) and not list(lake.root.rglob("*.jsonl.gz"))


def test_users_file_and_times(tmp_path):
    f = tmp_path / "users.txt"
    f.write_text(f"# tracked\n{USER_MAIN.upper().replace('0X', '0x')}\n\n{USER_LIQ}  # comment\n")
    assert read_users(f) == sorted([USER_MAIN, USER_LIQ])
    f.write_text("0x1234\n")
    with pytest.raises(PullError, match="not 0x addresses"):
        read_users(f)
    assert parse_time("2025-10-10T21:15:00Z", "--since") == 1760130900000
    assert parse_time("1760130900000", "--since") == 1760130900000
    with pytest.raises(PullError, match="ISO-8601"):
        parse_time("yesterday", "--since")
