"""The audit report: one self-contained HTML file (inline CSS and SVG charts, no network at view
time) rendered with Jinja2 (autoescaping on), and its PDF. Pure rendering: callers pass the data."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import jinja2

from forensics.report.numbers import fmt, usd, usd_compact

TEMPLATES = Path(__file__).resolve().parent / "templates"
SECTIONS = (
    "Executive summary",
    "Data provenance and completeness",
    "Cascade timeline",
    "ADL by coin",
    "Which ADL rule was applied",
    "Accounts skipped more often than chance allows",
    "Haircuts, overshoot and counterfactual policies",
    "Backstop coverage",
    "Methods, assumptions and caveats",
    "Reproducibility manifest",
)


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
        undefined=jinja2.StrictUndefined,
    )
    env.globals.update(fmt=fmt, usd=usd, usd_compact=usd_compact)
    return env


def render_html(context: dict[str, Any]) -> str:
    """Render the report; every string from data is escaped by the template engine."""
    return environment().get_template("report.html.j2").render(**context)


def write_pdf(html: str, path: Path) -> None:
    """PDF through WeasyPrint (a real renderer: inline SVG, print CSS)."""
    # heavy (WeasyPrint, Pango bindings): only when a PDF is written
    from weasyprint import HTML

    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    HTML(string=html).write_pdf(path)
