"""The stress-test report files: ``report.html`` (self-contained) and ``report.pdf`` from a
:func:`pipelines.stress.run` result."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

from forensics import report as report_mod
from forensics.report import stress as stress_report
from pipelines.report import ReportPaths


def write(result: dict, out_dir: Path, *, pdf: bool = True, command: str | None = None) -> ReportPaths:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = stress_report.context(result, result["_scenario"],
                                generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
                                command=command or " ".join(["liqf", *sys.argv[1:]]))
    html = stress_report.render_html(ctx)
    html_path = out_dir / "report.html"
    tmp = out_dir / ".report.html.tmp"
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(html_path)
    pdf_path = None
    if pdf:
        pdf_path = out_dir / "report.pdf"
        tmp_pdf = out_dir / ".report.pdf.tmp"
        report_mod.write_pdf(html, tmp_pdf)
        tmp_pdf.replace(pdf_path)
    return ReportPaths(html_path, pdf_path)
