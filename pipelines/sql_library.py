"""Named, documented queries in ``sql/queries/*.sql``: one query per file, its header saying what it
answers, its grain and its parameters. Parameters are DuckDB named parameters (``$name``), always
bound by DuckDB, never interpolated into the SQL text; a ``-- Defaults: k=v ...`` header line gives the
value of a parameter the caller leaves out."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

#: the project's SQL: catalog views (``catalog/``) and named queries (``queries/``)
SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
QUERY_DIR = SQL_DIR / "queries"
_PARAM = re.compile(r"\$([a-z_][a-z0-9_]*)")
_NAME = re.compile(r"^[a-z0-9_]+$")


class QueryError(ValueError):
    """Unknown query or bad parameters; the message says what to do."""


@dataclass(frozen=True)
class NamedQuery:
    name: str
    path: Path
    description: str
    grain: str
    params: tuple[str, ...]
    example: dict[str, str]
    #: values of the parameters a caller may leave out
    defaults: dict[str, str] = field(default_factory=dict)

    @property
    def sql(self) -> str:
        return self.path.read_text()


def _parse(path: Path) -> NamedQuery:
    text = path.read_text()
    header = [ln[2:].strip() for ln in text.splitlines() if ln.startswith("--")]
    body = "\n".join(ln for ln in text.splitlines() if not ln.startswith("--"))
    desc_lines, grain, example, defaults = [], "", {}, {}
    for line in header:
        if line.lower().startswith("grain:"):
            grain = line.split(":", 1)[1].strip()
        elif line.lower().startswith("example:"):
            example = dict(kv.split("=", 1) for kv in line.split(":", 1)[1].split())
        elif line.lower().startswith("defaults:"):
            defaults = dict(kv.split("=", 1) for kv in line.split(":", 1)[1].split())
        elif not grain and not line.lower().startswith("parameters"):
            desc_lines.append(line)
    description = " ".join(desc_lines)
    description = description.split(":", 1)[1].strip() if description.startswith(path.stem + ":") else description
    params = tuple(dict.fromkeys(_PARAM.findall(body)))
    return NamedQuery(path.stem, path, description, grain, params, example, defaults)


def list_queries() -> list[NamedQuery]:
    return [_parse(p) for p in sorted(QUERY_DIR.glob("*.sql"))]


def get(name: str) -> NamedQuery:
    if not _NAME.match(name) or not (QUERY_DIR / f"{name}.sql").exists():
        names = ", ".join(q.name for q in list_queries())
        raise QueryError(f"no named query {name!r}; available: {names}")
    return _parse(QUERY_DIR / f"{name}.sql")


def coerce(value: str) -> int | float | str:
    """Command-line text to a typed parameter (integers and decimals become numbers)."""
    if re.fullmatch(r"-?\d+", value):
        return int(value)
    if re.fullmatch(r"-?\d+\.\d*(e-?\d+)?", value):
        return float(value)
    return value


def bind(query: NamedQuery, given: dict[str, str]) -> dict[str, int | float | str]:
    given = {**{k: v for k, v in query.defaults.items() if k in query.params}, **given}
    missing = [p for p in query.params if p not in given]
    unknown = [p for p in given if p not in query.params]
    if missing or unknown:
        hint = " ".join(f"--param {p}=..." for p in query.params)
        problem = f"missing {', '.join(missing)}" if missing else f"unknown {', '.join(unknown)}"
        raise QueryError(f"{query.name}: {problem} (needs: {hint or 'no parameters'})")
    return {k: coerce(v) for k, v in given.items()}
