"""`liqf sql` is read-only for real: each escape route out of the lake is refused.

Each route runs on the connection `liqf sql` uses (statement check, then the locked connection); two of
them also through the CLI as a subprocess (exit 2, one line). Nothing may be written anywhere under the
test's directory and nothing of a file outside the lake may be read; the same connection still answers
queries over the lake (the views read it), so the lock does not break the catalog.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from pipelines import catalog
from tests.integration.test_catalog_cli import _cascade_file, liqf

# what the file outside the lake holds: no refusal message may show it
SECRET = "lake-escape-marker-7f3a"


@pytest.fixture(scope="module")
def ingested(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("sqlro")
    r = liqf(tmp, "ingest", "hyperliquid", "--node-fills", str(_cascade_file(tmp)))
    assert r.returncode == 0, r.stderr
    (tmp / "outside.csv").write_text(f"secret,value\nkey,{SECRET}\n")
    return tmp


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file() and not p.name.endswith((".wal", ".lock"))}


ESCAPES = {
    "copy_outside": "copy (select * from fills) to '{tmp}/../leak.csv'",
    "copy_into_lake": "copy (select * from fills) to '{tmp}/lake/normalized/fills/leak.parquet' (format parquet)",
    "export_database": "export database '{tmp}/exported'",
    "attach": "attach '{tmp}/other.duckdb' as other",
    "install": "install httpfs",
    "load": "load httpfs",
    "read_text_outside": "select content from read_text('{tmp}/outside.csv')",
    "read_csv_outside": "select * from read_csv('{tmp}/outside.csv')",
    "read_csv_traversal": "select * from read_csv('{tmp}/lake/normalized/../../outside.csv')",
    "glob_outside": "select * from glob('/etc/*')",
    "set_external_access": "set enable_external_access = true",
    "set_allowed_directories": "set allowed_directories = ['/']",
    "reset_lock": "reset lock_configuration",
    "create_table": "create table t as select 1",
    "copy_after_select": "select 1; copy (select 1) to '{tmp}/two.csv'",
}


@pytest.mark.parametrize("name", sorted(ESCAPES))
def test_escape_route_is_refused(ingested, name):
    before = _files(ingested.parent)
    con = catalog.connect_read_only(ingested / "c.duckdb")
    try:
        with pytest.raises((catalog.ReadOnlyQuery, duckdb.Error)) as info:
            catalog.check_read_only(con, ESCAPES[name].format(tmp=ingested))
            con.sql(ESCAPES[name].format(tmp=ingested)).fetchall()
    finally:
        con.close()
    assert SECRET not in str(info.value)  # a marker no temporary path contains
    assert _files(ingested.parent) == before  # nothing written, anywhere under the test's directory


@pytest.mark.parametrize("name", ["copy_outside", "set_external_access"])
def test_cli_refuses_with_one_line(ingested, name):
    before = _files(ingested.parent)
    r = liqf(ingested, "sql", ESCAPES[name].format(tmp=ingested))
    assert r.returncode == 2, (name, r.stdout, r.stderr)
    assert r.stderr.startswith("error: ") and "Traceback" not in r.stderr
    assert _files(ingested.parent) == before
    assert not (ingested.parent / "leak.csv").exists()


def test_locked_connection_still_reads_the_lake(ingested):
    r = liqf(ingested, "sql", "select count(*) n from fills", "--format", "csv")
    assert r.returncode == 0 and r.stdout.splitlines() == ["n", "4"]
    r = liqf(ingested, "sql", "explain select * from fills")
    assert r.returncode == 0
    r = liqf(ingested, "sql", "describe fills")
    assert r.returncode == 0 and "tid" in r.stdout
    # a lake file read by path is inside the allowed directory
    lake_file = next((ingested / "lake" / "normalized" / "fills").rglob("part-*.parquet"))
    r = liqf(ingested, "sql", f"select count(*) n from read_parquet('{lake_file}')", "--format", "csv")
    assert r.returncode == 0 and r.stdout.splitlines() == ["n", "4"]
