"""The packages' import graph: no circles, imports run one way, and every import inside a function says why.

Read from the source with ``ast`` (nothing is imported), so a circle fails here even where Python would
tolerate it at run time. Module-level imports count, including those under ``if``/``try``; imports under
``if TYPE_CHECKING:`` do not (they never run).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("pipelines", "forensics")

#: areas being rewritten for issue 20 (the audit at scale); their function-level imports are the rewrite's
REWRITE_AREAS = ("forensics/reconstruct/", "forensics/audit/", "pipelines/analysis/", "pipelines/report.py")
#: words that say why an import waits for its function (on the import's line or the comment line above it)
REASONS = ("heavy", "optional", "only for", "only when", "probe")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _top_level_imports(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If):
            if "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            yield from _top_level_imports(node.body)
            yield from _top_level_imports(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                yield from _top_level_imports(block)


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> set[str]:
    """The project modules an import statement loads (``from pkg import sub`` loads ``pkg.sub``)."""
    if isinstance(node, ast.Import):
        return {a.name for a in node.names if a.name in MODULES}
    base = module.split(".")
    if MODULES[module].name != "__init__.py":
        base = base[:-1]
    if node.level:
        base = base[: len(base) - (node.level - 1)]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    out = set()
    for alias in node.names:
        sub = f"{source}.{alias.name}"
        out.add(sub if sub in MODULES else source)
    return {t for t in out if t in MODULES and t != module}


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text())
        graph[module] = set().union(*(_targets(module, n) for n in _top_level_imports(tree.body)))
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), or a module importing itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, ()):
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_the_detector_finds_a_planted_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circles():
    assert cycles(import_graph()) == []


def test_no_circles_even_through_function_level_imports():
    """A function-level import never closes a circle either (main had five that way: the table registry, the CLI
    areas, lake <-> storage commit, fills <-> misc events, the ingest runner <-> the info-API pull)."""
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        nodes = [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, (ast.Import, ast.ImportFrom))]
        graph[module] = set().union(*(_targets(module, n) for n in nodes)) if nodes else set()
    assert cycles(graph) == []


def test_imports_run_one_way():
    graph = import_graph()
    wrong = []
    for module, targets in graph.items():
        for target in targets:
            if module.startswith("forensics") and target.startswith("pipelines"):
                wrong.append(f"{module} -> {target} (the analysis library never imports the pipelines)")
            if module.startswith("pipelines.venues") and target.startswith(
                ("pipelines.ingest", "pipelines.defs", "pipelines.cli", "pipelines.analysis")
            ):
                wrong.append(f"{module} -> {target} (transport never imports orchestration)")
            if target.startswith("pipelines.cli") and not module.startswith("pipelines.cli"):
                wrong.append(f"{module} -> {target} (nothing imports the CLI)")
    assert wrong == []


def test_forensics_imports_neither_dagster_nor_http_clients():
    banned = ("dagster", "httpx", "websockets", "obstore", "celery", "web3")
    wrong = []
    for module, path in MODULES.items():
        if not module.startswith("forensics"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            wrong += [f"{module}: {n}" for n in names if n.split(".")[0] in banned]
    assert wrong == []


def function_level_imports() -> list[tuple[str, int, str, bool]]:
    """(file, line, statement, says why) of every import inside a function of the packages."""
    found = []
    for path in MODULES.values():
        source = path.read_text()
        lines = source.splitlines()
        for fn in ast.walk(ast.parse(source)):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    # the import's line and the comments above its block of imports
                    start = node.lineno - 1
                    while start > 0 and (
                        not lines[start - 1].strip() or lines[start - 1].strip().startswith(("#", "import ", "from "))
                    ):
                        start -= 1
                    context = " ".join(lines[start : node.lineno]).lower()
                    found.append(
                        (
                            path.relative_to(ROOT).as_posix(),
                            node.lineno,
                            ast.unparse(node),
                            any(r in context for r in REASONS),
                        )
                    )
    return found


def test_function_level_imports_say_why():
    """Imports wait for their function only for start-up time (heavy libraries) or optional packages, and say so;
    never to dodge a circle."""
    unexplained = [
        f"{f}:{n}: {s}" for f, n, s, why in function_level_imports() if not why and not f.startswith(REWRITE_AREAS)
    ]
    assert unexplained == []


def test_python_dash_m_cli_runs_area_commands():
    # area commands (stress) and commands registered per venue (ingest okx) broke when the module loaded twice
    for args in (["stress", "--help"], ["ingest", "okx", "--help"]):
        done = subprocess.run(
            [sys.executable, "-m", "pipelines.cli", *args], capture_output=True, text=True, timeout=120, cwd=ROOT
        )
        assert done.returncode == 0, (args, done.stderr[-2000:])
        assert "Usage:" in done.stdout
