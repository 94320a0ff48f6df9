"""The CLI as a user meets it (issue 24 items 1, 2, 4, 5, 10-13, 17), through `liqf` as a subprocess.

The real public sample ``../shared/realdata/hyperanalyze/sample_data.json`` (7,282 fills of 2025-10-27, no ADL) is
ingested the way the README says; analyze, haircuts and report on it are a message, not a traceback. Global
options after the command, renamed options under their old names (a deprecation note), one help per venue, a usage
example in every ``--help``, values printed whole when piped, one-line SQL errors that say what went wrong, and a
``liqf --help`` that loads none of the heavy libraries.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.cli.root import arrange
from tests.conftest import PROJECT_ROOT, REALDATA

SAMPLE = REALDATA / "hyperanalyze" / "sample_data.json"
#: what `liqf --help` must not load (each costs seconds: pandas via Great Expectations, Dagster, scipy, numba)
HEAVY = ("pandas", "great_expectations", "dagster", "scipy", "numba")


def liqf(work: Path, *args: str, where: bool = True) -> subprocess.CompletedProcess:
    """`liqf` on the lake and catalog under ``work`` (``where=False``: ``args`` say which)."""
    lake = ["--lake", str(work / "lake"), "--db", str(work / "c.duckdb")] if where else []
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *lake, *args], capture_output=True, text=True, timeout=300, cwd=work
    )


def one_line_error(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, r.stderr
    return errors[0]


@pytest.fixture(scope="module")
def sample_lake(tmp_path_factory) -> Path:
    if not SAMPLE.exists():
        pytest.skip(f"real data not available: {SAMPLE}")
    work = tmp_path_factory.mktemp("sample")
    r = liqf(work, "ingest", "hyperliquid", "--node-fills", str(SAMPLE))
    assert r.returncode == 0, r.stderr
    assert "read 7,282 = written 7,282 + quarantined 0" in r.stderr
    return work


@pytest.mark.parametrize(
    ("command", "verb"),
    [(["analyze"], "audit"), (["haircuts"], "account"), (["report", "--out", "r", "--no-pdf"], "report")],
)
def test_real_fills_without_adl_are_a_message(sample_lake, command, verb):
    r = liqf(sample_lake, *command)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert "no ADL actions in the window (7,282 fills" in r.stdout and f"nothing to {verb}" in r.stdout
    assert not (sample_lake / "r" / "report.html").exists()


def test_an_empty_lake_is_one_line(tmp_path):
    (tmp_path / "EMPTY").mkdir()
    r = liqf(tmp_path, "--lake", "EMPTY", "--db", "F", "analyze", where=False)
    assert "no fills for venue 'hyperliquid'" in one_line_error(r)


def test_global_options_after_the_command(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    r = liqf(tmp_path, "analyze", "--lake", str(tmp_path / "elsewhere"), "--fdr", "0.1", "--db", "c.db", where=False)
    assert str(tmp_path / "elsewhere") in one_line_error(r)  # the lake given after the command is the one used
    r = liqf(tmp_path, "--lake", "ignored", "analyze", f"--lake={tmp_path / 'elsewhere'}", where=False)
    assert str(tmp_path / "elsewhere") in one_line_error(r)  # after the name wins, as with any option given twice


def test_arrange_never_takes_a_value_for_an_option():
    group = typer.main.get_command(app)
    # --venue's value is not an option name; --lake after the command moves before it; --q is renamed
    assert arrange(group, ["sql", "--lake", "L", "select 1"], quiet=True) == ["--lake", "L", "sql", "select 1"]
    assert arrange(group, ["analyze", "--venue", "--lake", "--q", "0.1"], quiet=True) == [
        "analyze",
        "--venue",
        "--lake",
        "--fdr",
        "0.1",
    ]
    assert arrange(group, ["fetch", "hyperliquid", "--db=x.db", "--from", "2025-10-10T20"], quiet=True) == [
        "--db=x.db",
        "fetch",
        "hyperliquid",
        "--from",
        "2025-10-10T20",
    ]


def test_renamed_options_keep_working_with_a_note(sample_lake):
    old = liqf(sample_lake, "analyze", "--q", "0.01", "--since", "2025-10-27T16:00", "--until", "2025-10-27T18:00")
    new = liqf(sample_lake, "analyze", "--fdr", "0.01", "--from", "2025-10-27T16:00", "--to", "2025-10-27T18:00")
    assert old.returncode == new.returncode == 0, old.stderr
    assert old.stdout == new.stdout and "7,282 fills" in new.stdout
    for name, now in (("--q", "--fdr"), ("--since", "--from"), ("--until", "--to")):
        assert f"note: {name} is now {now}; the old name works until the next release" in old.stderr
        assert f"{name} is now" not in new.stderr
    # the old spelling of an option a command never had is still an error
    r = liqf(sample_lake, "schema", "--q", "1")
    assert r.returncode == 2 and "No such option" in r.stderr


def test_stress_pdf_option_is_the_shared_one():
    stress = typer.main.get_command(app).commands["stress"]
    pdf = next(p for p in stress.params if p.name == "pdf")
    assert pdf.opts == ["--pdf"] and pdf.secondary_opts == ["--no-pdf"] and pdf.default is True


def _commands(group: Any, path: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        if hasattr(command, "commands"):  # typer vendors click: its groups are not click.Group
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name), command


def test_every_help_has_a_usage_example():
    runner = CliRunner()
    root = typer.main.get_command(app)
    seen = 0
    for path, _ in _commands(root):
        r = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
        assert r.exit_code == 0, (path, r.output)
        assert "Example" in r.output and f"liqf {' '.join(path)}" in r.output, path
        assert "--lake" in r.output, path  # the global options, named in every command's help
        seen += 1
    assert seen >= 25


def test_each_cex_ingest_shows_its_own_options():
    runner = CliRunner()
    okx = runner.invoke(app, ["ingest", "okx", "--help"], env={"COLUMNS": "200"}).output
    dydx = runner.invoke(app, ["ingest", "dydx", "--help"], env={"COLUMNS": "200"}).output
    assert "--address" not in okx and "--private" in okx and "BTC-USDT" in okx and "BTC-USD (markets)" not in okx
    assert "--address" in dydx and "--private" not in dydx and "BTC-USD (markets)" in dydx


def test_piped_tables_print_every_value_whole(sample_lake):
    address = "0x" + "7bc8" * 10
    r = liqf(sample_lake, "sql", f"select '{address}' as user_address, 7040012345.678901 as notional_usd")
    assert r.returncode == 0, r.stderr
    assert address in r.stdout and "7040012345.678901" in r.stdout
    assert not set("│┃━─…") & set(r.stdout)  # no box, no ellipsis: plain columns to a pipe
    header, row = r.stdout.splitlines()[:2]
    assert header.split() == ["user_address", "notional_usd"] and row.split() == [address, "7040012345.678901"]


def test_sql_list_names_whole_and_as_json(sample_lake):
    listed = json.loads(liqf(sample_lake, "sql", "--list", "--format", "json").stdout)
    names = {q["query"] for q in listed}
    assert {p.stem for p in (PROJECT_ROOT / "sql" / "queries").glob("*.sql")} == names
    top = next(q for q in listed if q["query"] == "top_adl_accounts")
    assert "limit=20" in top["parameters"]
    plain = liqf(sample_lake, "sql", "--list").stdout
    assert all(name in plain.split() for name in names)
    # the limit has a default now; on a lake without ADL the answer is the header alone
    r = liqf(sample_lake, "sql", "--query", "top_adl_accounts", "--param", "venue=hyperliquid", "--format", "csv")
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 1 and r.stdout.startswith("user,adl_legs,")


@pytest.mark.parametrize(
    ("query", "said", "hint"),
    [
        ("select * from nope", "Table with name nope does not exist", "show tables"),
        ("select no_such_column from fills", 'Referenced column "no_such_column" not found', "liqf schema"),
        ("selec 1", "syntax error", "does not parse"),
        ("select 'x'::INTEGER", "Could not convert string 'x' to INT32", "check the casts"),
    ],
)
def test_sql_errors_say_what_went_wrong(sample_lake, query, said, hint):
    # in process (a subprocess each costs seconds of start-up); exit code and stderr as a user sees them
    where = ["--lake", str(sample_lake / "lake"), "--db", str(sample_lake / "c.duckdb")]
    r = CliRunner().invoke(app, [*where, "sql", query], env={"COLUMNS": "400"})
    assert r.exit_code == 2, r.output
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and said in errors[0] and "LINE 1" not in errors[0], r.stderr
    assert hint in r.stderr


def test_report_to_an_unwritable_folder_fails_first(sample_lake):
    started = time.perf_counter()
    r = liqf(sample_lake, "report", "--out", "/proc/liqf-report")
    assert "cannot write to /proc/liqf-report" in one_line_error(r)
    assert time.perf_counter() - started < 30  # before the audit, not after it


def test_validate_never_writes_docs_unless_told():
    validate = typer.main.get_command(app).commands["validate"]
    out = next(p for p in validate.params if p.name == "out_dir")
    assert Path(out.default) == Path("data/validation")


def test_stress_prints_its_inputs_with_sources(tmp_path):
    scenario = PROJECT_ROOT / "docs" / "scenarios" / "coinflex_2022.toml"
    r = CliRunner().invoke(
        app,
        ["--lake", str(tmp_path / "lake"), "--db", str(tmp_path / "c.duckdb"), "stress", "--scenario", str(scenario)]
        + ["--no-sweeps"],
    )
    assert r.exit_code == 0, r.output
    assert "scenario inputs and their sources" in r.output
    rows = [ln for ln in r.output.splitlines() if "axios.com 2022-06-28" in ln]
    assert any("47,000,000" in ln and "secondary" in ln for ln in rows), r.output
    assert any("assumed" in ln and "scenario file" in ln for ln in r.output.splitlines())


def test_help_loads_no_heavy_library():
    probe = (
        "import sys\n"
        "from pipelines.cli import app\n"
        "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules], file=sys.stderr)\n"
    )
    env = {**os.environ, "COLUMNS": "120"}
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip().splitlines()[-1] == "[]"
    assert "analyze" in r.stdout and "audit" in r.stdout
