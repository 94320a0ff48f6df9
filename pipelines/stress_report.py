"""The stress-test report files: ``report.html`` (self-contained) and ``report.pdf`` from a
:func:`pipelines.stress.run` result."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

from forensics.report import stress as stress_report
from pipelines.report import ReportPaths, write_html_and_pdf


def write(result: dict, out_dir: Path, *, pdf: bool = True, command: str | None = None) -> ReportPaths:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = stress_report.context(
        result,
        result["_scenario"],
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        command=command or " ".join(["liqf", *sys.argv[1:]]),
    )
    return write_html_and_pdf(stress_report.render_html(ctx), out_dir, pdf=pdf)
