"""Private pulls on all five keyed venues against stand-ins that check each venue's documented scheme.

Binance (HMAC query signature), Bybit (X-BAPI-SIGN), OKX (OK-ACCESS-SIGN + passphrase), BitMEX
(``api-expires`` / ``api-key`` / ``api-signature``: hex HMAC-SHA256 of verb + path + expires + body) and
Deribit (``public/auth`` client credentials, then a bearer token). The stand-in refuses a wrong
signature or secret with the venue's own error, so a pull that succeeds proves the signing. A wrong
secret, through the CLI: exit 2, one line naming the key variables, nothing replaced. No key, secret or
passphrase in any output, lake file or catalog, in any encoding.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest

from pipelines.ingest import cex
from pipelines.lake import Lake
from pipelines.sandbox.venue_server import Scenario, serve
from pipelines.sandbox.venue_server.cex import Account, cex_routes, generate
from pipelines.venues.signing import ApiCredentials
from tests.cex_pulls import END, KEYS, START, table_rows

SYMBOLS = {"deribit": ["BTC-PERPETUAL"]}


def encodings(secret: str) -> list[bytes]:
    raw = secret.encode()
    return [
        raw,
        base64.b64encode(raw),
        base64.urlsafe_b64encode(raw),
        raw.hex().encode(),
        urllib.parse.quote(secret).encode(),
        secret.lower().encode(),
        secret[4:].encode(),
    ]


SECRETS = [e for c in KEYS.values() for s in (c.key, c.secret, c.passphrase) if s for e in encodings(s)]


@pytest.fixture(scope="module")
def data():
    return generate(START, 6, accounts=[Account(v, c.key, c.secret, c.passphrase) for v, c in KEYS.items()])


@pytest.fixture(scope="module")
def server(data, tmp_path_factory):
    with serve(
        Scenario(root=tmp_path_factory.mktemp("hl")), routes=cex_routes(data), rate_limit_per_minute=None
    ) as srv:
        yield srv


def private_pull(server, venue: str, lake: Lake, creds: ApiCredentials) -> list:
    client = cex.make_client(venue, server.base_url, credentials=creds, rate_limit=False)
    try:
        return cex.pull(lake, venue, client, START, END, symbols=SYMBOLS.get(venue), private=True, account="main")
    finally:
        client.close()


def test_bitmex_private_pull_is_signed_and_complete(server, data, tmp_path):
    lake = Lake(tmp_path / "lake")
    reports = {r.source: r for r in private_pull(server, "bitmex", lake, KEYS["bitmex"])}
    ex = data.bitmex_executions["main"]
    trades = [x for x in ex if x["execType"] == "Trade"]
    special = [x for x in trades if x["text"] in ("Liquidation", "Deleverage")]
    r = reports["api:bitmex:execution"]
    assert r.records_written == len(trades) == 608 and r.quarantined == 0  # two pages of 500
    assert r.rows_by_table == {"fills": 608, "cex_liquidations": len(special), "quarantine": 0}
    assert any("12 executions that are not trades" in n for n in r.notes)
    pos = reports["api:bitmex:position"]
    assert pos.rows_by_table["adl_ranks"] == 2 and pos.rows_by_table["position_snapshots"] == 1
    rows = table_rows(lake.root)
    assert rows["cex_liquidations"][0] == len(special) + 12  # plus the public open liquidation orders


def test_deribit_private_pull_authenticates_and_is_complete(server, data, tmp_path):
    lake = Lake(tmp_path / "lake")
    reports = {r.source: r for r in private_pull(server, "deribit", lake, KEYS["deribit"])}
    own = data.deribit_user_trades["main"]
    r = reports["api:deribit:user-trades"]
    assert r.records_written == len(own) == 1200 and r.quarantined == 0  # two pages of 1,000
    assert r.rows_by_table["cex_liquidations"] == sum(1 for t in own if "liquidation" in t) == 30
    assert reports["api:deribit:positions"].rows_by_table["position_snapshots"] == 1
    assert not data.deribit_tokens or all(
        t not in Path(f).read_bytes().decode("latin-1")
        for f in lake.root.rglob("*.*")
        if f.is_file()
        for t in data.deribit_tokens
    )


@pytest.mark.parametrize("venue", sorted(KEYS))
def test_wrong_secret_is_one_line_error_and_replaces_nothing(server, tmp_path, venue):
    lake = Lake(tmp_path / "lake")
    private_pull(server, venue, lake, KEYS[venue])
    before = table_rows(lake.root)
    good = KEYS[venue]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIQF_")}
    env.update({f"LIQF_{venue.upper()}_API_KEY": good.key, f"LIQF_{venue.upper()}_API_SECRET": "WRONG-" + good.secret})
    if good.passphrase:
        env[f"LIQF_{venue.upper()}_API_PASSPHRASE"] = good.passphrase
    # the installed entry point: the CEX commands import pipelines.cli, which `python -m` would run twice
    args = [
        str(Path(sys.executable).parent / "liqf"),
        "--lake",
        str(lake.root),
        "--db",
        str(tmp_path / "c.duckdb"),
        "ingest",
        venue,
        "--since",
        str(START),
        "--until",
        str(END),
        "--private",
        "--base-url",
        server.base_url,
    ]
    for sym in SYMBOLS.get(venue, []):
        args += ["--symbols", sym]
    r = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2, (r.stdout, r.stderr)
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "refused the API key" in errors[0] and "✓" not in r.stderr
    assert f"LIQF_{venue.upper()}_API_KEY" in r.stderr and f"LIQF_{venue.upper()}_API_SECRET" in r.stderr
    assert "Traceback" not in r.stderr and "quarantine" not in r.stderr
    assert table_rows(lake.root) == before  # the complete private pull is still there
    out = (r.stdout + r.stderr).encode()
    assert not [s for s in SECRETS + encodings("WRONG-" + good.secret) if s in out]


def test_no_credential_in_any_lake_file_or_catalog(server, tmp_path):
    from pipelines import catalog

    lake = Lake(tmp_path / "lake")
    for venue, creds in KEYS.items():
        private_pull(server, venue, lake, creds)
    catalog.refresh(lake, tmp_path / "c.duckdb")
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) > 20
    import gzip

    for f in files:
        blob = f.read_bytes()
        if f.suffix == ".gz":
            blob += gzip.decompress(blob)
        leaked = [s for s in SECRETS if s in blob]
        assert not leaked, f"{f}: {leaked[:2]}"
