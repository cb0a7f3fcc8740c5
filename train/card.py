"""Model cards: the README.md of a trained model says what was trained on what, with which recipe.

`write_card` puts one into SFT's ``final/`` and each checkpoint's ``model/``; GRPO's outputs take the same
card. Everything on it is read from what the run used and measured: the resolved recipe, the overrides that
made it from its file (found by comparing the two, so a card is right however the run was started), the
rows each dataset gave, and the losses in the run's ``metrics.jsonl``.

>>> recipe = load_recipe_dict({"model": {"path": "tiny:qwen2_5_vl"}, "data": {"train": ["data/x"]},
...                            "sft": {"max_steps": 4}}, stem="demo")
>>> print(model_card(recipe, step=4, rows={"train": {"data/x": 8}}).splitlines()[7])
SFT of `tiny:qwen2_5_vl` (qwen2_5_vl, full fine-tuning) with mmreason, 4 steps.
"""

from __future__ import annotations

import json
import logging
import shlex
from pathlib import Path
from typing import Any, Mapping, Sequence

from mmreason.config import Recipe, load_recipe, load_recipe_dict, recipe_to_dict  # noqa: F401 (doctest)
from mmreason.errors import MMReasonError
from mmreason.recipes import shipped_recipes
from mmreason.train.logging import METRICS_FILE, read_jsonl

log = logging.getLogger("mmreason.train")

CARD = "README.md"
# Last values worth a line, in this order: training loss, validation loss (SFT), reward (GRPO).
REPORTED = {"loss": "training loss", "eval_loss": "validation loss", "reward": "reward",
            "eval/reward": "validation reward"}


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(_flat(inner, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: value}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def recipe_name(source: str) -> str:
    """A shipped recipe by its name (``debug/tiny_sft``, the same on every install), another file by its
    path."""
    resolved = Path(source).resolve()
    shipped = (name for name, path in shipped_recipes().items() if Path(path).resolve() == resolved)
    return next(shipped, source)


def recipe_overrides(recipe: Recipe, source: str | None) -> list[str] | None:
    """The ``key=value`` overrides that make `recipe` from the recipe file `source` (resume keys aside: they
    say how a run restarted, not what it trained); None without a readable file to compare with."""
    if not source or not Path(source).is_file():
        return None
    try:
        base = load_recipe(source)
    except (MMReasonError, OSError) as exc:  # edited since the run started: the card says so
        log.warning("model card: %s no longer loads (%s); overrides not listed", source, exc)
        return None
    ours, theirs = _flat(recipe_to_dict(recipe)), _flat(recipe_to_dict(base))
    return [f"{key}={_text(ours.get(key))}" for key in sorted(set(ours) | set(theirs))
            if not key.endswith(".resume") and ours.get(key) != theirs.get(key)]


def last_metrics(output_dir: str | Path, step: int | None = None) -> dict[str, tuple[int, float]]:
    """Each reported metric's last (step, value) in the run's metrics.jsonl, up to `step`."""
    path = Path(output_dir) / METRICS_FILE
    found: dict[str, tuple[int, float]] = {}
    for record in read_jsonl(path) if path.is_file() else []:
        if step is not None and record.get("step", 0) > step:
            continue
        for key in REPORTED:
            if key in record:
                found[key] = (record["step"], record[key])
    return found


def _weights(recipe: Recipe, merged: bool) -> str:
    lora = recipe.model.lora
    if not lora.enabled:
        return "full fine-tuning"
    return (f"LoRA r={lora.r}, alpha={lora.alpha}, " + ("merged into the base" if merged else
                                                         "saved as an adapter over the base"))


def _datasets(specs: Sequence[str], counts: Mapping[str, int]) -> str:
    if not specs:
        return "none"
    return "; ".join(f"`{s}` ({counts[s]:,} rows)" if s in counts else f"`{s}`" for s in specs)


def model_card(recipe: Recipe, *, source: str | None = None, step: int | None = None,
               rows: Mapping[str, Mapping[str, int]] | None = None, merged: bool = True,
               recipe_file: str = "recipe.yaml") -> str:
    """The card's Markdown. `source`: the recipe file the run was started from; `step`: the step the weights
    are from (None: the last one logged); `rows`: rows per dataset spec, by split (``train``, ``eval``);
    `merged`: LoRA weights merged (``final/``) or an adapter (a checkpoint's ``model/``); `recipe_file`: where
    the resolved recipe lies, relative to the card."""
    stage = "GRPO" if recipe.grpo is not None else "SFT"
    metrics = last_metrics(recipe.output_dir, step)
    if step is None:
        step = max((s for s, _ in metrics.values()), default=0)
    rows = rows or {}
    m = recipe.model
    family = m.family or m.tiny_family or "family from the checkpoint"
    overrides = recipe_overrides(recipe, source)
    name = recipe_name(source) if source else recipe.run_name
    lines = [
        "---", "library_name: transformers", f"tags: [mmreason, {stage.lower()}, {family}]", "---", "",
        f"# {recipe.run_name}", "",
        f"{stage} of `{m.path}` ({family}, {_weights(recipe, merged)}) with mmreason, {step:,} steps.", "",
        f"- base model: `{m.path}`",
        f"- recipe: `{name}`, resolved in `{recipe_file}`",
        f"- overrides: {' '.join(f'`{o}`' for o in overrides) or 'none'}" if overrides is not None else
        "- overrides: not known (the recipe was not started from a file); `recipe.yaml` has every value",
        f"- training data: {_datasets(recipe.data.train, rows.get('train', {}))}",
        f"- validation data: {_datasets(recipe.data.eval, rows.get('eval', {}))}",
    ]
    for key, label in REPORTED.items():
        if key in metrics:
            at, value = metrics[key]
            lines.append(f"- {label}: {value:.4g} (step {at:,})")
    if overrides is not None:
        command = shlex.join(["mmreason", "train", name, *overrides])
        lines += ["", "Trained by:", "", "```bash", command, "```"]
    return "\n".join(lines) + "\n"


def write_card(folder: str | Path, recipe: Recipe, **kwargs: Any) -> Path:
    """Write `model_card` (same keywords) as ``folder/README.md``, replacing any card a library left there
    (a hard-linked one included: the link is broken first, so its twin keeps its text)."""
    path = Path(folder) / CARD
    path.unlink(missing_ok=True)
    path.write_text(model_card(recipe, **kwargs), encoding="utf-8")
    return path
