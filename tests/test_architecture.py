"""The house rules that keep the code easy to change: layers, no import cycles, small files, no mode flags."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = (
    "core",
    "structures",
    "oracle",
    "store",
    "ingest",
    "generation",
    "surrogates",
    "acquisition",
    "loop",
    "tasks",
    "flows",
    "battery_discovery",
)


def _sources() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def test_import_contracts_hold() -> None:
    """`lint-imports` with the contracts of pyproject.toml: layers import one way, siblings acyclic."""
    exe = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(exe)], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), i.e. import cycles."""
    modules = sorted(graph.modules)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0

    def visit(root: str) -> None:  # iterative Tarjan: the graph is deep enough to hit recursion limits
        nonlocal counter
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))

    for module in modules:
        if module not in index:
            visit(module)
    return out


def test_no_import_cycle_between_modules() -> None:
    """No module of the project imports itself back through others (lazy and TYPE_CHECKING imports count).

    A package's ``__init__`` re-exporting its modules is not a cycle between modules, so imports of a
    package's own ``__init__`` are left out.
    """
    graph = grimp.build_graph(*PACKAGES)
    for module in list(graph.modules):
        for imported in list(graph.find_modules_directly_imported_by(module)):
            if module.startswith(imported + "."):  # a module importing its own package's __init__
                graph.remove_import(importer=module, imported=imported)
    assert _cycles(graph) == []


@pytest.mark.parametrize("limit", [500])
def test_no_source_file_is_too_long(limit: int) -> None:
    long = {str(p.relative_to(ROOT)): n for p in _sources() if (n := len(p.read_text().splitlines())) > limit}
    assert long == {}


def test_no_mode_flags() -> None:
    """Roles, not flags: nothing tests a ``mode`` (the plan builds the source and labeler from the config)."""
    pattern = re.compile(r"\bmode\s*[!=]=|\.mode\b")
    hits = [
        f"{p.relative_to(ROOT)}:{k}: {line.strip()}"
        for p in _sources()
        for k, line in enumerate(p.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert hits == []
