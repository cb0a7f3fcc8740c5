"""What SFT and GRPO share: the `mmreason train` dispatcher, model loading (LoRA, frozen vision,
gradient checkpointing), datasets from the recipe's `data` section, and the collator's media options.

>>> media_options(load_recipe_dict({"model": {"max_pixels": 50176}}))["image"]
{'max_pixels': 50176}
"""

from __future__ import annotations

import argparse
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from mmreason.config import Recipe, load_recipe, load_recipe_dict, parse_data_source  # noqa: F401 (doctest)
from mmreason.errors import RecipeError

log = logging.getLogger("mmreason.train")

DTYPES = {"auto": "auto", "float32": "float32", "bfloat16": "bfloat16", "float16": "float16"}


# --------------------------------------------------------------------------------------------- CLI
def recipe_args(prog: str, description: str, argv: Sequence[str] | None) -> argparse.Namespace:
    """``RECIPE [section.key=value ...] [--resume [auto|PATH]]``, for `mmreason train` and the scripts."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("recipe", help="a recipe YAML file or a shipped recipe name (`mmreason ls recipes`)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="e.g. grpo.lr=1e-6 model.lora.r=16")
    parser.add_argument("--resume", nargs="?", const="auto", default=None, metavar="auto|PATH",
                        help="continue from the newest checkpoint under output_dir (auto) or from PATH")
    return parser.parse_args(list(argv) if argv is not None else None)


def read_recipe(args: argparse.Namespace, algorithm: str) -> tuple[Recipe, Path]:
    """The recipe with overrides (and ``--resume`` as ``<algorithm>.resume``); its section must be present."""
    from mmreason.cli import find_recipe

    path = find_recipe(args.recipe)
    overrides = list(args.overrides)
    if args.resume is not None:
        overrides.append(f"{algorithm}.resume={args.resume}")
    recipe = load_recipe(path, overrides)
    if getattr(recipe, algorithm) is None:
        raise RecipeError(f"{path}: this recipe has no `{algorithm}` section; `mmreason train` runs "
                          f"{'grpo' if algorithm == 'sft' else 'sft'} for it")
    return recipe, path


def main(argv: Sequence[str] | None = None) -> int:
    """`mmreason train RECIPE [key=value ...] [--resume]`: SFT or GRPO, whichever section the recipe has."""
    from mmreason.cli import find_recipe

    argv = list(argv or [])
    if not argv or argv[0].startswith("-"):
        recipe_args("mmreason train", main.__doc__, argv)  # prints help or the usage error
        return 2
    path = find_recipe(argv[0])
    overrides = [a for a in argv[1:] if "=" in a and not a.startswith("-")]
    recipe = load_recipe(path, overrides)
    if recipe.sft is not None and recipe.grpo is not None:
        raise RecipeError(f"{path}: has both `sft` and `grpo` sections; split it into two recipes (run SFT "
                          "first, then point the GRPO recipe's model.path at the SFT output)")
    if recipe.grpo is not None:
        from mmreason.train.grpo import main as run
    elif recipe.sft is not None:
        from mmreason.train.sft import main as run
    else:
        raise RecipeError(f"{path}: has neither an `sft` nor a `grpo` section: nothing to train")
    return run(argv)


# ------------------------------------------------------------------------------------------ models
def cache_dir() -> Path:
    """Where tiny models are built once and reused: ``$MMREASON_CACHE_DIR`` or ``~/.cache/mmreason``."""
    return Path(os.environ.get("MMREASON_CACHE_DIR") or Path.home() / ".cache" / "mmreason")


def model_path(recipe: Recipe, accelerator: Any = None) -> str:
    """The checkpoint directory: ``model.path``, or the tiny model of ``tiny:<family>`` (built once)."""
    family = recipe.model.tiny_family
    if family is None:
        if not Path(recipe.model.path).expanduser().is_dir():
            raise RecipeError(f"model.path: {recipe.model.path!r} is not a local checkpoint directory "
                              "(mmreason never downloads weights; point it at a saved model)")
        return str(Path(recipe.model.path).expanduser())
    from mmreason.models.tiny import build_tiny, is_tiny_build

    out = cache_dir() / "tiny" / f"{family}-seed0"
    if accelerator is None or accelerator.is_main_process:
        if not is_tiny_build(out):
            log.info("building the tiny %s model into %s (once)", family, out)
            build_tiny(family, out, seed=0)
    if accelerator is not None:
        accelerator.wait_for_everyone()
    return str(out)


def _is_vision(name: str) -> bool:
    return bool(re.search(r"(^|\.)(visual|vision_tower|audio_tower|vision_model)(\.|$)", name))


def freeze_vision(model: Any) -> int:
    """Freeze the vision (and audio) encoders; returns how many parameters were frozen."""
    frozen = 0
    for name, p in model.named_parameters():
        if _is_vision(name):
            p.requires_grad_(False)
            frozen += p.numel()
    return frozen


def lora_targets(model: Any, targets: Sequence[str], *, include_vision: bool) -> list[str]:
    """Full module names for LoRA: the family's target names, in the language model only unless the vision
    tower trains too (the vision MLPs reuse names such as ``gate_proj``)."""
    wanted = set(targets)
    names = [n for n, _ in model.named_modules()
             if n.rsplit(".", 1)[-1] in wanted and (include_vision or not _is_vision(n))]
    if not names:
        raise RecipeError(f"model.lora.target_modules: none of {sorted(wanted)} is a module of this model")
    return names


def load_policy(recipe: Recipe, path: str, *, device: Any = None) -> tuple[Any, Any]:
    """(model, processor) ready to train: dtype and attention from the recipe, vision frozen if asked,
    LoRA wrapped with peft if enabled, gradient checkpointing on if asked."""
    from mmreason.models import load

    m = recipe.model
    model, processor = load({"path": path, "dtype": m.dtype, "attn_implementation": m.attn_implementation})
    if device is not None:
        model.to(device)
    if m.freeze_vision:
        freeze_vision(model)
    if m.lora.enabled:
        from peft import LoraConfig, get_peft_model

        for p in model.parameters():
            p.requires_grad_(False)
        targets = lora_targets(model, m.lora.target_modules or (), include_vision=not m.freeze_vision)
        config = LoraConfig(r=m.lora.r, lora_alpha=m.lora.alpha, lora_dropout=m.lora.dropout, bias="none",
                            target_modules=targets)
        model = get_peft_model(model, config)
    if m.gradient_checkpointing:
        # Non-reentrant checkpointing needs no input grads, so frozen embeddings under LoRA are fine.
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    model.train()
    return model, processor


def load_reference(recipe: Recipe, path: str, *, device: Any = None) -> Any:
    """A frozen copy of the starting policy for the KL term (LoRA runs disable the adapter instead)."""
    from mmreason.models import load

    m = recipe.model
    model, _ = load({"path": path, "dtype": m.dtype, "attn_implementation": m.attn_implementation})
    if device is not None:
        model.to(device)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def count_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = trainable = 0
    for p in model.parameters():
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return trainable, total


def media_options(recipe: Recipe) -> dict[str, dict[str, Any]]:
    """The collator's per-type defaults from the recipe (pixel budgets, video sampling)."""
    m, v = recipe.model, recipe.data.video
    image = {k: val for k, val in (("min_pixels", m.min_pixels), ("max_pixels", m.max_pixels))
             if val is not None}
    video = {"fps": v.fps} if v.nframes is None else {"nframes": v.nframes}
    if v.max_pixels is not None:
        video["max_pixels"] = v.max_pixels
    return {"image": image, "video": video}


# -------------------------------------------------------------------------------------------- data
@dataclass(frozen=True)
class Rows:
    """Canonical rows of every dataset in a recipe's `data.train` (or `data.eval`), media paths absolute,
    so rows from datasets with different roots can share a batch."""

    rows: tuple[dict, ...]
    sources: tuple[str, ...]  # the data spec each row came from

    def __len__(self) -> int:
        return len(self.rows)


def _dataset_dir(spec: str, output_dir: Path, accelerator: Any) -> Path:
    ds = parse_data_source(spec)
    if ds.builder is None:
        return Path(spec).expanduser()
    from mmreason.data_builders import get_builder

    slug = re.sub(r"[^A-Za-z0-9_.=-]+", "_", spec[len("builder:"):])
    out = output_dir / "data" / slug
    options = dict(ds.options)
    n = options.pop("n", None)
    if not isinstance(n, int) or n < 1:
        raise RecipeError(f"data: {spec!r}: a builder needs n=<number of samples>, "
                          f"e.g. builder:{ds.builder}?n=64")
    seed = options.pop("seed", 0)
    if accelerator is None or accelerator.is_main_process:
        # builders resume: running one again over a finished folder is a no-op
        get_builder(ds.builder)(out, n=n, seed=seed, progress=False, **options)
    if accelerator is not None:
        accelerator.wait_for_everyone()
    return out


def _read(path: Path, fmt: str, media_dir: Path) -> list[dict]:
    """Canonical rows with absolute media paths; other formats are converted (media they carry in memory,
    bytes or images, are written under `media_dir`, never into the dataset's own folder)."""
    from mmreason.schema import dataset_root, load_rows, resolve_media

    root = dataset_root(path)
    if fmt == "canonical":
        rows = list(load_rows(path))
    else:
        from mmreason.schema import read_rows

        raw = _raw_rows(path)
        rows = list(read_rows(raw, fmt, media_dir=media_dir, root=root, id_prefix=f"{path.stem}-"))
    return [resolve_media(r, root) for r in rows]


def _raw_rows(path: Path) -> list[dict]:
    import datasets

    files = sorted(path.glob("*.parquet")) + sorted(path.glob("*.jsonl")) + sorted(path.glob("*.json")) \
        if path.is_dir() else [path]
    if not files:
        raise RecipeError(f"data: {path}: no .parquet, .jsonl or .json files")
    kind = "parquet" if files[0].suffix == ".parquet" else "json"
    return list(datasets.load_dataset(kind, data_files=[str(f) for f in files], split="train"))


def with_prompt(recipe: Recipe, rows: list[dict]) -> list[dict]:
    """Rows wrapped in the recipe's method prompt (`mmreason.prompts`), tools declared in the system turn."""
    from mmreason.prompts import apply_prompt, prompt_style

    d = recipe.data
    style = prompt_style(d.prompt, system=d.system_prompt, prefix=d.prompt_prefix, suffix=d.prompt_suffix)
    if style == prompt_style("none"):
        return rows
    tools_text = ""
    if style.system and "{tools}" in style.system and recipe.tools.names:
        from mmreason.tools import tools_prompt

        tools_text = tools_prompt(list(recipe.tools.names))
    return [apply_prompt(r, style, tools_text=tools_text) for r in rows]


def load_data(recipe: Recipe, *, split: str = "train", accelerator: Any = None) -> Rows:
    """Every dataset of ``data.<split>``; builders (``builder:name?n=..``) run first, into output_dir/data."""
    specs = getattr(recipe.data, split)
    if not specs:
        raise RecipeError(f"data.{split} is empty: name at least one dataset (a folder, a file, or "
                          "builder:image_scenes?n=64)")
    rows, sources = [], []
    for spec in specs:
        path = _dataset_dir(spec, Path(recipe.output_dir), accelerator)
        if not path.exists():
            raise RecipeError(f"data.{split}: {spec!r}: {path} does not exist")
        got = _read(path, recipe.data.format, Path(recipe.output_dir) / "data" / f"{path.stem}-media")
        rows.extend(with_prompt(recipe, got))
        sources.extend([spec] * len(got))
    if not rows:
        raise RecipeError(f"data.{split}: the datasets {list(specs)} hold no rows")
    return Rows(tuple(rows), tuple(sources))
