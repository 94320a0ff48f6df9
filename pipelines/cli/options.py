"""One vocabulary for every command: the options several commands share, declared once, and the names they
replaced.

A window is always ``--from``/``--to``; the false discovery rate is ``--fdr``; a PDF is ``--pdf/--no-pdf``;
machine-readable output is ``--json``. The names these replaced keep working for one release: the root app
rewrites them (with a note) before parsing, see :data:`RENAMED` and :func:`pipelines.cli.root.arrange`.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

#: old option name -> the name it has now; the old one still works, with a note, until the next release
RENAMED = {"--since": "--from", "--until": "--to", "--q": "--fdr"}

TIME_HELP = "ISO-8601 UTC (2025-10-10T21:00:00Z, 2025-10-10T21:00, 2025-10-10) or epoch ms"

FROM = Annotated[str | None, typer.Option("--from", help=f"Window start, {TIME_HELP}.")]
TO = Annotated[str | None, typer.Option("--to", help=f"Window end, {TIME_HELP}.")]
FROM_REQUIRED = Annotated[str, typer.Option("--from", help=f"Window start, {TIME_HELP}.")]
TO_REQUIRED = Annotated[str, typer.Option("--to", help=f"Window end, {TIME_HELP}.")]
FDR = Annotated[
    float,
    typer.Option("--fdr", help="False discovery rate of the exemption flags (Benjamini-Hochberg q); was --q."),
]
PDF = Annotated[bool, typer.Option("--pdf/--no-pdf", help="Also render report.pdf (HTML is always written).")]
JSON = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
EXPORT_ACCOUNT_VALUE = Annotated[
    str,
    typer.Option(
        "--export-account-value",
        help="Snapshot export: account_value covers 'total' (cross + isolated) or 'cross' only "
        "(UNCONFIRMED; docs/snapshot_export.md).",
    ),
]


def example(*lines: str) -> str:
    """A command's help epilog: its usage examples, one per line, shown literally (``[...]`` is not markup)."""
    return "\n\n".join(["Examples:" if len(lines) > 1 else "Example:", *(escape(f"  {line}") for line in lines)])
