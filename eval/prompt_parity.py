"""Does the task ask in the wording the checkpoint was trained with? A small model trained under one
instruction and scored under another often fails on the wording alone (0 format, while on its training
prompt it writes the answer), so `mmreason eval` names the difference before it generates.

A checkpoint made by `mmreason train` keeps its recipe (``recipe.yaml``); its ``data.prompt`` style
(`mmreason.prompts`) wraps the question in a prefix and a suffix. A task with a template prompt
(``{question}`` plus an instruction, `mmreason.eval.tasks`) wraps it too; only those two are compared.
"""

from __future__ import annotations

from pathlib import Path

from mmreason.eval.tasks import Task


def trained_wording(checkpoint: str | Path) -> str | None:
    """The question as the checkpoint's recipe wrapped it (``{question}`` in place of the question), or None
    when the checkpoint keeps no recipe or its recipe cannot be read."""
    path = Path(checkpoint) / "recipe.yaml"
    if not path.is_file():
        return None
    from mmreason.config import load_recipe
    from mmreason.errors import RecipeError
    from mmreason.prompts import prompt_style

    try:
        data = load_recipe(path).data
        style = prompt_style(data.prompt, system=data.system_prompt, prefix=data.prompt_prefix,
                             suffix=data.prompt_suffix)
    except (RecipeError, OSError, ValueError):
        return None
    return style.prefix + "{question}" + style.suffix


def task_wording(task: Task) -> str | None:
    """The task's template as the model reads it, or None when it is not a plain question template (a
    builder of its own, or placeholders besides ``{question}``)."""
    if task.builder != "template" or task.prompt.count("{question}") != 1:
        return None
    text = task.prompt.replace("{question}", "\0")
    if "{" in text.replace("{{", "").replace("}}", ""):
        return None  # other fields (e.g. the screen size): not comparable with a recipe's fixed wording
    return text.replace("{{", "{").replace("}}", "}").replace("\0", "{question}")


def wording_notice(checkpoint: str | Path | None, task: Task, name: str) -> str | None:
    """A notice when the checkpoint was trained with another wording around the question than `task` uses.

    >>> from mmreason.eval.tasks import TASKS
    >>> import tempfile, pathlib
    >>> ckpt = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (ckpt / "recipe.yaml").write_text("data: {prompt: none}\\n")
    >>> print(wording_notice(ckpt, TASKS["grounding_3d"], "grounding_3d"))  # doctest: +ELLIPSIS
    note: the checkpoint was trained with the question as '{question}'; task grounding_3d asks \
'{question}\\nAnswer inside <answer> </answer> ...'...
    """
    if checkpoint is None:
        return None
    trained, asked = trained_wording(checkpoint), task_wording(task)
    if trained is None or asked is None or trained == asked:
        return None
    return (f"note: the checkpoint was trained with the question as {_short(trained)!r}; task {name} asks "
            f"{_short(asked)!r}. A model scored under a wording it never saw may fail on the wording alone; "
            "train with the task's instruction (data.prompt_suffix) to compare like with like")


def _short(text: str, limit: int = 70) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."
