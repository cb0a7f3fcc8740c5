"""The `mmreason` command: one verb per job, dispatched lazily so `mmreason --help` stays instant.

Every verb is a function `fn(argv: list[str]) -> int` named in the literal `VERBS` dict as
"module:function" (optionally with a one-line help: `("module:function", "help")`). Nothing a verb
needs is imported until that verb runs, so listing the verbs never loads torch.

This is the one core module that reaches outward (models, data_builders, train, demos), and only
through `VERBS` and `REGISTRIES`, by name.
"""

from __future__ import annotations

import argparse
import difflib
import functools
import importlib
import inspect
import sys
from pathlib import Path
from typing import Any

from mmreason import __version__
from mmreason.errors import MMReasonError, RecipeError
from mmreason.recipes import find_recipe, recipe_parser, shipped_recipes
from mmreason.registry import resolve_object

VERBS: dict[str, str | tuple[str, str]] = {
    "ls": ("mmreason.cli:ls_main", "list rewards, tools, modalities, families, recipes, builders or eval tasks"),
    "validate": ("mmreason.cli:validate_main",
                 "check a recipe (+ key=value overrides), its model and data paths, and print it resolved"),
    "print-recipe": ("mmreason.cli:print_recipe_main", "print a resolved recipe as YAML, or save it with -o"),
    "tiny-model": ("mmreason.models.tiny:main", "build a tiny random model of a backbone family, offline"),
    "quickstart": ("mmreason.quickstart.pipeline:main",
                   "the main job: build, SFT, GRPO and eval a tiny VLM on 'find the named shape', and report"),
    "pretrain-tiny": ("mmreason.train.pretrain_tiny:main", "pretrain the project's tiny base model on its own scenes"),
    "build": ("mmreason.data_builders:main", "build a grounded-CoT dataset: BUILDER --out DIR --n N [--shard i/k]"),
    "train": ("mmreason.train.dispatch:main", "SFT or GRPO from a recipe: RECIPE [key=value ...] [--resume]"),
    "eval": ("mmreason.eval.runner:main", "score a model on a benchmark task (pinned prompts, pixel budgets)"),
    "plot": ("mmreason.train.plots:main", "draw training curves (runs overlaid) and eval scores to a PNG"),
    "demo": ("mmreason.cli:demo_main", "serve a Gradio demo on 127.0.0.1 (`mmreason demo` lists them)"),
}

# kind -> (module, attribute) of the literal registry `mmreason ls KIND` prints.
REGISTRIES: dict[str, tuple[str, str]] = {
    "rewards": ("mmreason.rewards", "REWARDS"),
    "tools": ("mmreason.tools", "TOOLS"),
    "modalities": ("mmreason.modalities", "MODALITIES"),
    "families": ("mmreason.families", "FAMILIES"),
    "builders": ("mmreason.data_builders", "BUILDERS"),
}


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


def _missing_itself(exc: ModuleNotFoundError, module: str) -> bool:
    """True when `module` (or a package above it) does not exist, as opposed to a failing import inside it."""
    return bool(exc.name) and (module == exc.name or module.startswith(exc.name + "."))


def load_registry(kind: str) -> dict[str, Any] | None:
    """The registry dict for `kind`, or None while its module or attribute does not exist yet.

    A module that exists but fails to import raises: a broken registry must not look like an empty one.
    """
    module_name, attr = REGISTRIES[kind]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if _missing_itself(exc, module_name):
            return None
        raise
    registry = getattr(module, attr, None)
    return None if registry is None else dict(registry)


# ------------------------------------------------------------------------------------------ recipes


def _recipe_summary(path: Path) -> str:
    """A recipe's first comment line: recipes open with `# what this recipe runs`."""
    try:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("#"):
                return line.lstrip("#").strip()
            if line.strip():
                break
    except OSError:
        pass
    return ""


# ----------------------------------------------------------------------------------------------- ls


def _first_doc_line(value: Any) -> str:
    if isinstance(value, str) and ":" in value:  # lazy registry entry, "module:attr"
        value = resolve_object(value)
    while isinstance(value, functools.partial):
        value = value.func
    doc = inspect.getdoc(value) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def _describe(kind: str, name: str, value: Any, failed: list[str]) -> str:
    try:
        return _first_doc_line(value)
    except (MMReasonError, ImportError) as exc:
        # Shown in its row (and in the exit status) rather than hiding the rest of the registry.
        failed.append(name)
        from rich.markup import escape

        return f"[red]cannot load: {escape(str(exc))}[/red]"


def _rows(kind: str, failed: list[str]) -> tuple[list[str], list[list[str]], str | None]:
    if kind == "tasks":  # eval tasks: what each reads (a benchmark's release layout, or canonical rows)
        from mmreason.eval.benchmarks import ALL_TASKS

        rows = [[n, f"{t.layout.options.get('format', t.layout.loader)} release" if t.layout
                 else "canonical rows", ", ".join([*t.metrics, *t.derived]), t.description]
                for n, t in ALL_TASKS.items()]
        return ["task", "reads", "metrics", "description"], rows, None
    if kind == "recipes":
        recipes = shipped_recipes()
        return ["recipe", "description"], [[n, _recipe_summary(p)] for n, p in recipes.items()], None
    registry = load_registry(kind)
    note = None
    if registry is None:
        module, attr = REGISTRIES[kind]
        note = f"none registered yet: {module}.{attr} does not exist"
        registry = {}
    if kind == "families":
        header = ["family", "box frame", "patch x merge", "modalities"]
        rows = [[n, f.box_frame, f"{f.patch_size} x {f.merge_size}", ", ".join(f.modalities)]
                for n, f in registry.items()]
        return header, rows, note
    rows = [[str(n), _describe(kind, str(n), v, failed)] for n, v in registry.items()]
    return ["name", "description"], rows, note


def ls_main(argv: list[str]) -> int:
    """`mmreason ls KIND`: a table of a registry's names with the first line of each docstring."""
    kinds = [*REGISTRIES, "recipes", "tasks"]
    parser = argparse.ArgumentParser(prog="mmreason ls", description="List what a registry holds.")
    parser.add_argument("kind", choices=kinds, help="what to list")
    args = parser.parse_args(argv)
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    failed: list[str] = []
    header, rows, note = _rows(args.kind, failed)
    table = Table(title=f"{args.kind} ({len(rows)})", title_justify="left")
    for i, col in enumerate(header):
        table.add_column(col, no_wrap=i == 0, overflow="fold")
    for row in rows:
        table.add_row(*(c if c.startswith("[red]") else escape(c) for c in row))  # docstrings hold [brackets]
    console = Console()
    console.print(table)
    if note:
        console.print(note, markup=False)
    if failed:
        _err(f"mmreason ls: {len(failed)} {args.kind} could not be loaded: {', '.join(failed)}")
    return 1 if failed else 0


# -------------------------------------------------------------------------------- validate & print


def _bind_rewards(recipe: Any, source: str) -> None:
    """Bind the recipe's rewards as training will (the registry's `build_rewards`), so a bad option value
    fails here, not at step 1."""
    module_name = REGISTRIES["rewards"][0]
    try:
        rewards = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if _missing_itself(exc, module_name):
            return
        raise
    build = getattr(rewards, "build_rewards", None)
    if build is None:  # a registry that is only a dict of rewards: nothing to bind
        return
    try:
        build(recipe)
    except RecipeError as exc:
        raise RecipeError(f"{source}: {exc}") from None


def validate_main(argv: list[str]) -> int:
    from mmreason.config import check_names, format_recipe, load_recipe, missing_paths

    parser = recipe_parser("mmreason validate", "Load a recipe, check every key, type and name, print it resolved.")
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing unless it is invalid")
    parser.add_argument("--skip-paths", action="store_true",
                        help="do not check that model.path and the data paths exist (a stage makes them)")
    args = parser.parse_args(argv)
    path = find_recipe(args.recipe)
    recipe = load_recipe(path, args.overrides)
    check_names(recipe, rewards=load_registry("rewards"), tools=load_registry("tools"),
                builders=load_registry("builders"), source=str(path))
    _bind_rewards(recipe, str(path))
    missing = [] if args.skip_paths else missing_paths(recipe)
    if missing:
        raise RecipeError(f"{path}: {len(missing)} path(s) do not exist, read from {Path.cwd()}: "
                          + "; ".join(missing) + ". Fix them (or override, e.g. model.path=DIR), or pass "
                          "--skip-paths when an earlier stage writes them")
    if not args.quiet:
        print(f"# {path}: valid", *(f"# override {o}" for o in args.overrides), sep="\n")
        print(format_recipe(recipe), end="")
    return 0


def print_recipe_main(argv: list[str]) -> int:
    from mmreason.config import dump_recipe, format_recipe, load_recipe

    parser = recipe_parser("mmreason print-recipe", "Print a recipe with includes, overrides and defaults resolved.")
    parser.add_argument("-o", "--output", type=Path, help="write the resolved recipe to this file instead")
    args = parser.parse_args(argv)
    recipe = load_recipe(find_recipe(args.recipe), args.overrides)
    if args.output:
        print(dump_recipe(recipe, args.output))
    else:
        print(format_recipe(recipe), end="")
    return 0


def demo_main(argv: list[str]) -> int:
    """`mmreason demo NAME`: the demos' dispatcher. The runs dashboard reads training logs with the training
    code's readers; demos never import the training layer, so they are handed in from here."""
    from mmreason.demos import main as demos_main

    if argv[:1] != ["runs"]:
        return demos_main(argv)
    from mmreason.demos.runs import LogReaders
    from mmreason.train import logging as train_logging
    from mmreason.train import plots

    readers = LogReaders(plots.load_run, plots.run_labels, plots.select_metrics, plots.draw,
                         train_logging.read_jsonl, train_logging.COMPLETIONS_FILE)
    return demos_main(argv, readers=readers)


# --------------------------------------------------------------------------------------------- main


def _verb_entry(verb: str) -> tuple[str, str]:
    entry = VERBS[verb]
    return (entry, f"see `mmreason {verb} --help`") if isinstance(entry, str) else entry


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mmreason",
        description="Train, build data for, evaluate and demo multimodal reasoning models.",
        epilog="Run `mmreason VERB --help` for a verb's options.",
    )
    parser.add_argument("--version", action="version", version=f"mmreason {__version__}")
    sub = parser.add_subparsers(title="verbs", metavar="VERB")
    for verb in VERBS:
        sub.add_parser(verb, help=_verb_entry(verb)[1], add_help=False)
    return parser


def _load_verb(verb: str) -> Any:
    target = _verb_entry(verb)[0]
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if _missing_itself(exc, module_name):
            _err(f"mmreason {verb}: not available: {module_name} is not part of this installation")
        else:
            _err(f"mmreason {verb}: needs the Python package {exc.name!r}, which is not installed "
                 f"(pip install 'mmreason[all]')")
        return None
    fn = getattr(module, attr, None)
    if not callable(fn):
        _err(f"mmreason {verb}: {target} does not exist")
        return None
    return fn


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None or isinstance(exc.code, int):
        return exc.code or 0
    _err(str(exc.code))
    return 1


def main(argv: list[str] | None = None) -> int:
    """Run `mmreason VERB ARGS...`; returns the exit status (2 for bad input)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    if not argv:
        parser.print_help()
        return 0
    if argv[0].startswith("-"):
        try:
            parser.parse_args(argv[:1])  # --help / --version print and exit; anything else is an error
        except SystemExit as exc:
            return _exit_code(exc)
    verb, rest = argv[0], argv[1:]
    if verb not in VERBS:
        close = difflib.get_close_matches(verb, list(VERBS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        _err(f"mmreason: unknown verb {verb!r}{hint} (verbs: {', '.join(VERBS)})")
        return 2
    fn = _load_verb(verb)
    if fn is None:
        return 2
    try:
        return int(fn(rest) or 0)
    except MMReasonError as exc:
        _err(f"mmreason {verb}: error: {exc}")
        return 2
    except SystemExit as exc:  # a verb's own argparse; keep main() callable from Python
        return _exit_code(exc)
    except KeyboardInterrupt:
        return 130
