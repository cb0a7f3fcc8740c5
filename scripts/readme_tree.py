"""Print the README's file tree: every tracked file with a one-line comment.

The comment is the first line of a Python module's docstring (or a YAML/Jinja file's first comment),
so the map stays true when code moves. `python scripts/readme_tree.py --write` rewrites the block
between the markers in README.md; tests/unit/test_readme.py fails when a tracked file is missing from it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- tree:begin -->", "<!-- tree:end -->"
WIDTH = 44  # column where comments start
NOTE_CHARS = 84  # a comment longer than this is cut at a word boundary
# Files without a docstring of their own.
NOTES = {
    ".ci/run": "CI entry point: exactly the README's test command (`make test`)",
    ".gitignore": "build outputs, .venv, run outputs",
    "Makefile": "the two commands: `make quickstart`, `make test` (+ test-slow, bench)",
    "README.md": "this file",
    "docs/design.md": "the design: folders, layering, the spine, a row's path from builder to reward",
    "pyproject.toml": "one distribution; seven folders mapped into the `mmreason` namespace; extras",
    "scripts/setup.sh": "idempotent set-up: Debian packages, .venv, `pip install -e .[all]`",
    "benchmarks/RESULTS.md": "measured figures of every benchmark, with the machine they ran on",
    "benchmarks/LEARNING.md": "does training change held-out behaviour? the quickstart's 3 seeds, bars met or not",
    "models/templates/qwen2_vl.jinja": "Qwen2-VL / Qwen2.5-VL chat template (written here, renders identically)",
    "models/templates/qwen3_vl.jinja": "Qwen3-VL chat template with tools and tool responses",
    "models/templates/qwen2_5_omni.jinja": "Qwen2.5-Omni chat template with audio and vision tokens",
}


def tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return sorted(f for f in out.splitlines() if f)


def _docline(full: Path) -> str:
    """First line of a Python module's docstring, or "" (none, unreadable or not Python)."""
    try:
        doc = ast.get_docstring(ast.parse(full.read_text())) or ""
    except (OSError, SyntaxError):
        return ""
    return doc.strip().split("\n")[0].rstrip(".:")


# The files of a checkpoint folder (the shipped tiny base), by name.
CHECKPOINT_FILES = {
    "README.md": "the card: how this checkpoint was made (command, data, cost, loss)",
    "chat_template.jinja": "the family's chat template, saved with the processor",
    "config.json": "model config (Hugging Face)",
    "generation_config.json": "generation defaults (greedy)",
    "mmreason_tiny.json": "what `build_tiny` built: family, seed, size",
    "model.safetensors": "the weights",
    "pretrain.json": "the pretraining run: settings, CPU time, every step's loss",
    "processor_config.json": "image/video processor settings (tiny pixel budgets)",
    "tokenizer.json": "the locally trained byte-level BPE tokenizer",
    "tokenizer_config.json": "tokenizer settings and special tokens",
}


def describe(path: str) -> str:
    if path in NOTES:
        return NOTES[path]
    full = ROOT / path
    if path.startswith("models/tiny_base/") and full.name in CHECKPOINT_FILES:
        return CHECKPOINT_FILES[full.name]
    if path.startswith("docs/screenshots/") and full.suffix == ".png":  # taken by tests/e2e/test_demo_browser.py
        return f"`mmreason demo {full.stem}` in headless Chromium, after a run (shown in the tour)"
    if path.startswith("benchmarks/learning/") and full.suffix == ".png":  # written by benchmarks/learning.py
        return f"curves of `benchmarks/learning.py --method {full.stem.rsplit('-seed', 1)[0]}` (LEARNING.md)"
    if path.startswith("tests/") and full.name.startswith("test_"):
        return _docline(full) or "tests: " + full.stem.removeprefix("test_").replace("_", " ")
    if path.endswith(".py"):
        return _docline(full) or ("package marker" if full.name == "__init__.py" else "")
    if path.endswith((".yaml", ".yml")):
        for line in full.read_text().splitlines():
            if line.startswith("#"):
                return line.lstrip("# ").rstrip(".")
    return ""


def _short(note: str) -> str:
    if len(note) <= NOTE_CHARS:
        return note
    return note[: note.rfind(" ", 0, NOTE_CHARS - 1)].rstrip(",;:(") + " …"


def render() -> str:
    lines: list[str] = []
    seen_dirs: set[str] = set()
    for path in tracked_files():
        parts = path.split("/")
        for depth in range(len(parts) - 1):
            d = "/".join(parts[: depth + 1])
            if d not in seen_dirs:
                seen_dirs.add(d)
                lines.append("  " * depth + parts[depth] + "/")
        name = "  " * (len(parts) - 1) + parts[-1]
        note = _short(describe(path))
        lines.append(f"{name:<{WIDTH}} {note}".rstrip() if note else name)
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    tree = render()
    if "--write" not in argv:
        print(tree)
        return 0
    readme = ROOT / "README.md"
    text = readme.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    readme.write_text(text[:start] + "\n```\n" + tree + "\n```\n" + text[end:])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
