"""Finding recipes and reading the recipe command line, beside `mmreason.config` which loads them.

A recipe is named on the command line by a YAML path or by the name of a shipped recipe
(``debug/tiny_grpo``, the path under ``train/recipes/`` without ``.yaml``). Every command that takes
one (`mmreason validate`, `print-recipe`, `train`, ``python -m mmreason.train.grpo``) reads
``RECIPE [section.key=value ...]`` with `recipe_parser`; training commands add ``--resume``.

>>> args = recipe_parser("demo", "", resume=True).parse_args(["debug/tiny_grpo", "grpo.lr=1e-6", "--resume"])
>>> args.recipe, args.overrides, args.resume
('debug/tiny_grpo', ['grpo.lr=1e-6'], 'auto')
>>> "debug/tiny_grpo" in shipped_recipes()
True
"""

from __future__ import annotations

import argparse
import difflib
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmreason.errors import RecipeError

if TYPE_CHECKING:  # the CLI imports this module to print its help, before (and without) YAML
    from mmreason.config import Recipe

TRAINING_SECTIONS = ("sft", "grpo")


def shipped_recipes() -> dict[str, Path]:
    """Recipes installed with the `mmreason.train` package: 'debug/tiny_grpo' -> its path."""
    # Read as package data (a folder of YAML files), so no training code is imported.
    from importlib.resources import files

    root = files("mmreason.train") / "recipes"
    out: dict[str, Path] = {}

    def walk(node: Any, prefix: str) -> None:
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            if child.is_dir():
                walk(child, f"{prefix}{child.name}/")
            elif child.name.endswith((".yaml", ".yml")):
                out[prefix + child.name.rsplit(".", 1)[0]] = Path(str(child))

    if root.is_dir():
        walk(root, "")
    return out


def find_recipe(name: str) -> Path:
    """A recipe file path, or the name of a shipped recipe ('debug/tiny_grpo' or with '.yaml')."""
    path = Path(name)
    if path.is_file():
        return path
    shipped = shipped_recipes()
    key = name.rsplit(".", 1)[0] if name.endswith((".yaml", ".yml")) else name
    if key in shipped:
        return shipped[key]
    close = difflib.get_close_matches(key, list(shipped), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise RecipeError(f"{name}: no such recipe file, nor a shipped recipe{hint} (see `mmreason ls recipes`)")


def recipe_parser(prog: str, description: str | None, *, resume: bool = False) -> argparse.ArgumentParser:
    """``RECIPE [section.key=value ...]``, and with `resume` ``[--resume [auto|PATH]]``."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("recipe", help="a recipe YAML file, or a shipped recipe name "
                        "(see `mmreason ls recipes`)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="e.g. grpo.lr=1e-6 model.lora.r=16")
    if resume:
        parser.add_argument("--resume", nargs="?", const="auto", default=None, metavar="auto|PATH",
                            help="continue from the newest checkpoint under output_dir (auto) or from PATH")
    return parser


def training_section(recipe: Recipe, *, source: str = "recipe") -> str:
    """``"sft"`` or ``"grpo"``: the one training section the recipe has (a run trains one algorithm)."""
    present = [name for name in TRAINING_SECTIONS if getattr(recipe, name) is not None]
    if len(present) == 2:
        raise RecipeError(f"{source}: has both `sft` and `grpo` sections; split it into two recipes (run SFT "
                          "first, then point the GRPO recipe's model.path at the SFT output)")
    if not present:
        raise RecipeError(f"{source}: has neither an `sft` nor a `grpo` section: nothing to train")
    return present[0]


def for_training(recipe: Recipe, algorithm: str, *, resume: str | None = None,
                 source: str = "recipe") -> Recipe:
    """The recipe an `algorithm` run uses: its section must be present; `resume` (``--resume``), when
    given, replaces ``<algorithm>.resume``."""
    section = getattr(recipe, algorithm)
    if section is None:
        other = "grpo" if algorithm == "sft" else "sft"
        raise RecipeError(f"{source}: has no `{algorithm}` section; `mmreason train` runs {other} for it")
    return recipe if resume is None else replace(recipe, **{algorithm: replace(section, resume=resume)})
