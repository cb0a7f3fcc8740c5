"""`mmreason train RECIPE [key=value ...] [--resume]`: load the recipe once, then run SFT or GRPO, whichever
section it has (`mmreason.train.sft.run`, `mmreason.train.grpo.run`).

Launchers that start one process per device (``accelerate launch -m mmreason.train.grpo``) call the
algorithm's own ``main`` instead, which reads the same command line.
"""

from __future__ import annotations

from typing import Sequence

from mmreason.config import load_recipe
from mmreason.recipes import find_recipe, recipe_parser, training_section


def main(argv: Sequence[str] | None = None) -> int:
    """`mmreason train RECIPE [key=value ...] [--resume]`: SFT or GRPO, whichever section the recipe has."""
    args = recipe_parser("mmreason train", main.__doc__, resume=True).parse_args(argv)
    path = find_recipe(args.recipe)
    recipe = load_recipe(path, args.overrides)
    if training_section(recipe, source=str(path)) == "grpo":
        from mmreason.train.grpo import run
    else:
        from mmreason.train.sft import run
    return run(recipe, resume=args.resume, source=str(path))
