"""No two modules of a package import each other, directly or round a longer loop.

A cycle makes the import order matter (a name half-defined when the other module reads
it) and hides which module is the lower layer. Add a package here once it is acyclic.
"""

from __future__ import annotations

from functools import cache

import grimp
import pytest

ACYCLIC_PACKAGES = [
    "queuectl.store",
    "queuectl.web",
    "queuectl.cli",
    "queuectl.core",
    "queuectl.worker",
]


@cache
def import_graph() -> grimp.ImportGraph:
    return grimp.build_graph("queuectl", cache_dir=None)


def import_cycles(graph: grimp.ImportGraph, package: str) -> list[list[str]]:
    """The cycles among `package` and the modules below it, one loop (`a b ... a`) for
    each group of modules that reach one another (Tarjan's strongly connected components)."""
    modules = {package} | graph.find_descendants(package)
    imports = {
        module: sorted(graph.find_modules_directly_imported_by(module) & modules)
        for module in modules
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in imports[module]:
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1 or module in imports[module]:
                groups.append(sorted(group))

    for module in sorted(modules):
        if module not in index:
            visit(module)
    return [_loop_through(graph, group) for group in sorted(groups)]


def _loop_through(graph: grimp.ImportGraph, group: list[str]) -> list[str]:
    """A loop of imports from the group's first module back to it, for the message."""
    first = group[0]
    for imported in sorted(graph.find_modules_directly_imported_by(first) & set(group)):
        back = graph.find_shortest_chain(importer=imported, imported=first)
        if back is not None:
            return [first, *back]
    return group


@pytest.mark.parametrize("package", ACYCLIC_PACKAGES)
def test_no_import_cycle_between_modules_of(package: str) -> None:
    cycles = import_cycles(import_graph(), package)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(loop) for loop in cycles)


def test_a_cycle_is_found_and_named() -> None:
    """The check itself: two modules that import each other, and a loop of three."""
    graph = grimp.ImportGraph()
    for module in ("pkg", "pkg.a", "pkg.b", "pkg.c", "pkg.d", "pkg.e", "other"):
        graph.add_module(module)
    for importer, imported in [
        ("pkg.a", "pkg.b"),
        ("pkg.b", "pkg.a"),
        ("pkg.c", "pkg.d"),
        ("pkg.d", "pkg.e"),
        ("pkg.e", "pkg.c"),
        ("pkg.a", "other"),
        ("other", "pkg.c"),
    ]:
        graph.add_import(importer=importer, imported=imported)
    assert import_cycles(graph, "pkg") == [
        ["pkg.a", "pkg.b", "pkg.a"],
        ["pkg.c", "pkg.d", "pkg.e", "pkg.c"],
    ]
    graph.remove_import(importer="pkg.b", imported="pkg.a")
    graph.remove_import(importer="pkg.e", imported="pkg.c")
    assert import_cycles(graph, "pkg") == []
