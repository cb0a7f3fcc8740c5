"""The import graph of the package: no cycle between modules, and no import against the layering.

Read from the source with `ast` (imports inside functions included, since a lazy import is how a cycle
hides), so nothing is imported. The layering (README, "How the code is laid out"):

    core (mmreason/*)  <- models <- data_builders <- eval <- train
                                                         <- demos (never train)
    the quickstart and the CLI dispatcher (mmreason/cli.py) may import every layer, and nothing imports
    the dispatcher; gradio is imported only under demos/.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[2]

# layer -> the layers its modules may import (each layer may import itself)
ALLOWED = {
    "core": {"core"},
    "models": {"core", "models"},
    "data_builders": {"core", "models", "data_builders"},
    "eval": {"core", "models", "data_builders", "eval"},
    "train": {"core", "models", "data_builders", "eval", "train"},
    "demos": {"core", "models", "data_builders", "eval", "demos"},
}
OUTER = ("models", "data_builders", "train", "eval", "demos", "quickstart")
# The dispatcher (and `python -m mmreason`, which calls it) sits above every layer to run `mmreason <verb>`;
# nothing imports it back. The quickstart is the main job: it calls the other four.
ENTRY = {"mmreason.cli", "mmreason.__main__"}
ALLOWED["quickstart"] = ALLOWED["entry"] = {*ALLOWED, "quickstart", "entry"}


def setuptools_config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def package_dirs() -> dict[str, Path]:
    """Package name -> source folder, as pyproject's `package-dir` maps them (one namespace, six folders)."""
    return {name: ROOT / folder for name, folder in setuptools_config()["package-dir"].items()}


def module_files() -> dict[str, Path]:
    """Every module of the installed packages: dotted name -> file (a package's name -> its __init__.py)."""
    roots = package_dirs()
    owned = {folder.resolve() for folder in roots.values()}
    modules = {}
    for package, folder in roots.items():
        for path in sorted(folder.rglob("*.py")):
            # a folder inside this one mapped to another package name (none today) belongs to that package
            if any(parent in owned for parent in path.resolve().parents if folder.resolve() in parent.parents):
                continue
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join([package, *parts])] = path
    return modules


def layer_of(module: str) -> str:
    """The layer a module belongs to, read from its dotted name."""
    parts = module.split(".")
    if module in ENTRY:
        return "entry"
    if len(parts) > 1 and parts[1] in OUTER:
        return parts[1]
    return "core"


def imports_of(path: Path, module: str, known: dict[str, Path]) -> Iterator[tuple[str, int]]:
    """(imported package module, line) for every import in a file, at any depth, relative ones resolved.

    `from a import b` imports the module `a.b` when there is one, else `a` (b is a name defined in a):
    so a package `__init__` that imports its submodules is no cycle, unless one of them imports a
    name from the `__init__` back. Imports of other distributions yield their top-level name only.
    """
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield closest_module(alias.name, known), node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            for alias in node.names:
                yield closest_module(f"{base}.{alias.name}", known), node.lineno


def closest_module(name: str, known: dict[str, Path]) -> str:
    """The longest prefix of a dotted name that is a package module, or the name's first part."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in known:
            return ".".join(parts[:end])
    return parts[0]


def import_graph() -> tuple[dict[str, dict[str, int]], list[str]]:
    """Module -> {imported package module: first line}, and where gradio is imported outside demos/."""
    modules = module_files()
    graph: dict[str, dict[str, int]] = {}
    gradio_outside = []
    for name, path in modules.items():
        graph[name] = {}
        for target, line in imports_of(path, name, modules):
            if target in modules and target != name:
                graph[name][target] = min(line, graph[name].get(target, line))
            elif target == "gradio" and layer_of(name) != "demos":
                gradio_outside.append(f"{name} (line {line})")
    return graph, gradio_outside


def cycles(graph: dict[str, dict[str, int]]) -> list[tuple[list[str], list[str]]]:
    """Each strongly connected group of more than one module (Tarjan): (one cycle through it, all members)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [(one_cycle(graph, set(group)), sorted(group)) for group in groups]


def one_cycle(graph: dict[str, dict[str, int]], group: set[str]) -> list[str]:
    """A shortest cycle inside a strongly connected group, from its first module back to it."""
    start = min(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt_frontier = []
        for node in frontier:
            for nxt in sorted(graph[node]):
                if nxt == start:
                    return paths[node] + [start]
                if nxt in group and nxt not in paths:
                    paths[nxt] = paths[node] + [nxt]
                    nxt_frontier.append(nxt)
        frontier = nxt_frontier
    return sorted(group)


def describe(graph: dict[str, dict[str, int]], cycle: list[str], group: list[str]) -> str:
    """`a (line 3) -> b (line 7) -> a`, plus the other modules caught in the same knot."""
    text = " -> ".join(f"{a} (line {graph[a][b]})" for a, b in zip(cycle, cycle[1:])) + f" -> {cycle[-1]}"
    others = [m for m in group if m not in cycle]
    return text + (f"  [same knot: {', '.join(others)}]" if others else "")


def test_the_walk_finds_every_package():
    modules = module_files()
    # the spine and one module of each outer package: the walk reads all five folders
    for name in ("mmreason.geometry", "mmreason.rl", "mmreason.models", "mmreason.data_builders",
                 "mmreason.train", "mmreason.demos"):
        assert name in modules, name
    graph, _ = import_graph()
    assert sum(len(targets) for targets in graph.values()) > len(graph)  # imports were read


def test_every_package_is_declared_for_the_wheel():
    # An editable install imports any folder under a mapped one, so a package missing from `packages`
    # only shows in a built wheel, which lacks it.
    declared = set(setuptools_config()["packages"])
    found = {name for name, path in module_files().items() if path.name == "__init__.py"}
    assert not found - declared, f"add to [tool.setuptools] packages in pyproject.toml: {sorted(found - declared)}"
    assert not declared - found, f"declared in pyproject.toml but not found: {sorted(declared - found)}"


def test_no_import_cycle():
    graph, _ = import_graph()
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(describe(graph, *c) for c in found)


def test_imports_follow_the_layering():
    graph, gradio_outside = import_graph()
    wrong = []
    for module, targets in sorted(graph.items()):
        layer = layer_of(module)
        for target, line in sorted(targets.items()):
            allowed = ALLOWED[layer] | ({"entry"} if module == "mmreason.__main__" else set())
            if layer_of(target) not in allowed:
                wrong.append(f"{module} (line {line}, {layer}) imports {target} ({layer_of(target)})")
    wrong += [f"gradio imported outside demos/: {where}" for where in gradio_outside]
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)


def test_the_checks_catch_what_they_guard():
    # a two-module cycle and a core module importing train are both found
    graph = {"mmreason.a": {"mmreason.b": 3}, "mmreason.b": {"mmreason.a": 7}, "mmreason.c": {}}
    assert cycles(graph) == [(["mmreason.a", "mmreason.b", "mmreason.a"], ["mmreason.a", "mmreason.b"])]
    assert layer_of("mmreason.train.grpo") == "train" and layer_of("mmreason.geometry") == "core"
    assert layer_of("mmreason.quickstart") == "quickstart" and layer_of("mmreason.cli") == "entry"
    assert "train" not in ALLOWED["core"] and "train" not in ALLOWED["demos"] and "train" not in ALLOWED["eval"]
