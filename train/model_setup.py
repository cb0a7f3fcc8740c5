"""The model a training run starts from: the checkpoint the recipe names, loaded with its dtype and
attention, the vision (and audio) encoders frozen if asked, LoRA (peft) on the language model, gradient
checkpointing; and the frozen reference copy the KL term needs.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from mmreason.config import Recipe
from mmreason.errors import RecipeError


def model_path(recipe: Recipe, accelerator: Any = None) -> str:
    """The checkpoint directory of ``model.path`` (`mmreason.models.resolve_checkpoint`); with several
    processes the main one builds a ``tiny:<family>`` model while the others wait for it."""
    from mmreason.models import resolve_checkpoint

    try:
        if accelerator is None or accelerator.is_main_process:
            resolve_checkpoint(recipe.model.path)
        if accelerator is not None:
            accelerator.wait_for_everyone()
        return str(resolve_checkpoint(recipe.model.path))  # built by now: every process finds it
    except RecipeError as exc:
        raise RecipeError(f"model.path: {exc}") from None


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
        # parts a checkpoint adds to its backbone (the spatial adapter) train fully next to the LoRA weights
        extra = list(getattr(model, "fully_trained_modules", ())) or None
        config = LoraConfig(r=m.lora.r, lora_alpha=m.lora.alpha, lora_dropout=m.lora.dropout, bias="none",
                            target_modules=targets, modules_to_save=extra)
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


def parameter_groups(model: Any, lr: float, lr_by_module: dict, *, section: str,
                     weight_decay: float = 0.0) -> list[dict]:
    """Optimizer groups over the trainable parameters: one per `lr_by_module` key (parameters whose dotted
    name holds the key as whole components, e.g. "visual" or "model.visual"; the first key that matches
    wins), the rest at `lr`. A key that matches no trainable parameter, or a rate that is not a positive
    number, is a RecipeError naming `section`, raised before any step.

    >>> import torch
    >>> m = torch.nn.ModuleDict({"visual": torch.nn.Linear(2, 2), "lm_head": torch.nn.Linear(2, 2)})
    >>> [(g["lr"], len(g["params"])) for g in parameter_groups(m, 1e-4, {"visual": 1e-3}, section="sft")]
    [(0.001, 2), (0.0001, 2)]
    >>> parameter_groups(m, 1e-4, {"vision": 1e-3}, section="sft")
    Traceback (most recent call last):
    mmreason.errors.RecipeError: sft.lr_by_module: 'vision' matches no trainable parameter; names start like: lm_head.bias, lm_head.weight, visual.bias, visual.weight
    """
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups: dict[str, list] = {key: [] for key in lr_by_module}
    rest = []
    for name, p in named:
        key = next((k for k in lr_by_module if re.search(rf"(^|\.){re.escape(k)}(\.|$)", name)), None)
        (groups[key] if key is not None else rest).append(p)
    out = []
    for key, params in groups.items():
        rate = lr_by_module[key]
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0:
            raise RecipeError(f"{section}.lr_by_module.{key}: a learning rate must be a number > 0, got {rate!r}")
        if not params:
            sample = ", ".join(sorted(n for n, _ in named)[:4])
            raise RecipeError(f"{section}.lr_by_module: {key!r} matches no trainable parameter; "
                              f"names start like: {sample}")
        out.append({"params": params, "lr": float(rate), "weight_decay": weight_decay})
    if rest:
        out.append({"params": rest, "lr": lr, "weight_decay": weight_decay})
    return out


def count_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = trainable = 0
    for p in model.parameters():
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return trainable, total
