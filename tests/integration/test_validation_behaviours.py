"""`liqf validate --behaviour`: simulated scenarios per venue behaviour go through the ordinary ingest and the
audit, and are scored per behaviour into validation_behaviours.md/.csv (tiny scale here; the documented sweep
runs at small scale)."""

from __future__ import annotations

import polars as pl
from typer.testing import CliRunner


def test_behaviour_sweep_end_to_end(tmp_path):
    from pipelines.cli import app

    res = CliRunner().invoke(
        app,
        [
            "validate",
            "--behaviour",
            "switch",
            "--behaviour",
            "null",
            "--scale",
            "tiny",
            "--seeds",
            "1",
            "--out",
            str(tmp_path),
        ],
    )
    assert res.exit_code == 0, res.output
    df = pl.read_csv(tmp_path / "validation_behaviours.csv")
    assert df["behaviour"].to_list() == ["switch", "null"]
    switch, null = df.row(0, named=True), df.row(1, named=True)
    assert switch["planted_rule"] == "hl_index -> bitmex" and switch["planted_changes"] == 1
    assert switch["actions"] == switch["truth_actions"] > 0  # every ADL action reconstructed
    assert switch["planted"] == 10 and null["planted"] == 0
    # scored when the audit gives windows and change points, said so when it does not
    assert (switch["rule_ok"] is None) == (switch["rule_changes_schema"] != "v3")
    md = (tmp_path / "validation_behaviours.md").read_text()
    assert "| switch | ranks by hl_index, then silently by bitmex" in md and "false-change rate" in md
    if switch["rule_changes_schema"] != "v3":
        assert "does not yet carry windows" in md


def test_unknown_behaviour_is_one_line(tmp_path):
    from pipelines.cli import app

    res = CliRunner().invoke(app, ["validate", "--behaviour", "sometimes", "--out", str(tmp_path)])
    assert res.exit_code == 2
    assert "unknown behaviour 'sometimes'" in res.output and "switch" in res.output
    assert not list(tmp_path.iterdir())
