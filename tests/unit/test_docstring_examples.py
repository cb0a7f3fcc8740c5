"""Every `>>>` example in a package docstring runs, module by module.

The modules are found by walking the installed packages (those pyproject's `package-dir` maps), so a
module that moves or is added is picked up without editing this file. A module is listed here when its
source holds `>>>`; its examples must then be found by doctest (attempted > 0) and all hold.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[2]

# module -> why its examples are not run here
SKIPPED = {
    "mmreason.__main__": "importing it runs the command line",
}


def package_modules() -> list[tuple[str, Path]]:
    """(dotted name, source file) of every module of the packages. Only the top-level packages are
    imported here; pkgutil lists the rest from their folders, so a module that fails to import fails
    its own case below, not the collection of every case."""
    found = []
    for top in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]:
        package = importlib.import_module(top)
        found.append((top, Path(package.__file__)))
        found += submodules(package.__path__, top + ".")
    return sorted(set(found))


def submodules(search_path, prefix: str) -> list[tuple[str, Path]]:
    found = []
    for info in pkgutil.iter_modules(search_path, prefix):
        spec = info.module_finder.find_spec(info.name)
        if spec is None or not (spec.origin or "").endswith(".py"):
            continue
        found.append((info.name, Path(spec.origin)))
        if info.ispkg:
            found += submodules(spec.submodule_search_locations, info.name + ".")
    return found


def modules_with_examples() -> list[str]:
    return [name for name, path in package_modules() if ">>>" in path.read_text() and name not in SKIPPED]


MODULES = modules_with_examples()


def test_the_walk_finds_examples_across_the_packages():
    # An empty walk would leave nothing to parametrise and the test below would pass vacuously.
    assert len(MODULES) > 20, MODULES
    for package in ("mmreason.rewards", "mmreason.models", "mmreason.data_builders", "mmreason.train"):
        assert any(m.startswith(package + ".") for m in MODULES), package
    assert "mmreason.geometry" in MODULES and "mmreason.rl" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_hold(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.attempted > 0, f"{name} holds '>>>' but doctest finds no example in a docstring"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} fail (output above)"
