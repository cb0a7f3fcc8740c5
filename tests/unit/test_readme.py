"""The README's file tree lists every tracked file, and the README names the two commands."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _tree_module():
    spec = importlib.util.spec_from_file_location("readme_tree", ROOT / "scripts" / "readme_tree.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _tree_paths(block: str) -> set[str]:
    paths, stack = set(), []
    for line in block.splitlines():
        if not line.strip() or line.startswith("```"):
            continue
        depth = (len(line) - len(line.lstrip(" "))) // 2
        name = line.strip().split()[0]
        stack[depth:] = [name]
        if not name.endswith("/"):
            paths.add("".join(stack))
    return paths


def test_readme_tree_lists_every_tracked_file():
    mod = _tree_module()
    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index(mod.BEGIN) + len(mod.BEGIN): readme.index(mod.END)]
    listed = _tree_paths(block)
    tracked = set(mod.tracked_files())
    missing, stale = sorted(tracked - listed), sorted(listed - tracked)
    assert not missing and not stale, (
        f"README tree out of date (run `python scripts/readme_tree.py --write`): "
        f"missing {missing[:10]}, stale {stale[:10]}")
    for path in tracked:
        assert mod.describe(path) or path.endswith(".gitkeep"), f"{path} has no one-line description"


def test_readme_states_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make quickstart" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
