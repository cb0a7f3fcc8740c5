"""What a checkpoint was trained with, as chat defaults: training saves its resolved recipe beside the weights
(``recipe.yaml`` in ``final/`` and in every checkpoint), and a model answers best when asked the way it
learned. Read here: the method prompt (``data.prompt`` and its overridden parts), the tools offered and the
frame their boxes are written in, the image pixel budget, and the completion length (GRPO's, else SFT's
sequence budget is no guide, so none). A checkpoint without a recipe (a tiny model, a downloaded one) gets
None and the demo's own defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

RECIPE_FILE = "recipe.yaml"


@dataclass(frozen=True)
class TrainedWith:
    """The chat-relevant part of a saved recipe; `source` is the recipe file it was read from."""

    source: Path
    prompt: str = "none"
    system: str | None = None
    prefix: str | None = None
    suffix: str | None = None
    tools: tuple[str, ...] = ()
    coord_frame: str | None = None
    max_pixels: int | None = None
    max_new_tokens: int | None = None

    def style(self):
        """The `mmreason.prompts.PromptStyle` the checkpoint was trained with."""
        from mmreason.prompts import prompt_style

        return prompt_style(self.prompt, system=self.system, prefix=self.prefix, suffix=self.suffix)


def trained_with(checkpoint: str | Path) -> TrainedWith | None:
    """The saved recipe's chat settings, or None when the checkpoint folder holds no ``recipe.yaml``; a
    recipe that no longer loads (renamed keys) is a `RecipeError` naming the file."""
    from mmreason.config import load_recipe

    path = Path(checkpoint) / RECIPE_FILE
    if not path.is_file():
        return None
    recipe = load_recipe(path)
    data, tools = recipe.data, recipe.tools
    return TrainedWith(path, data.prompt, data.system_prompt, data.prompt_prefix, data.prompt_suffix,
                       tuple(tools.names), tools.coord_frame, recipe.model.max_pixels,
                       recipe.grpo.max_completion_length if recipe.grpo is not None else None)
