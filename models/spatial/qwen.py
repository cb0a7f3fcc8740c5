"""Qwen2.5-VL with the spatial adapter: a subclass that adds point features onto its image patch tokens.

Nothing in transformers is edited. `SpatialQwen2_5_VL` is ``Qwen2_5_VLForConditionalGeneration`` plus a
``spatial`` submodule (`SpatialAdapter`) and hooks: ``forward`` (and so ``generate``) takes the spatial
collator's extra tensors, a pre-hook on the inner model takes them from its kwargs, and a hook on the vision
tower adds the adapter's output to the merged patch tokens the tower returns, before they replace the image
placeholders. The token count and positions are untouched.

The checkpoint stays a Qwen2.5-VL one (``model_type`` unchanged, so every tool reads its family) with
``spatial`` (the `SpatialConfig`) in config.json and the adapter's weights in the same safetensors;
``SpatialQwen2_5_VL.from_pretrained(folder)`` and `mmreason.models.load(folder)` both restore it.
`init_checkpoint` makes one from a plain Qwen2.5-VL checkpoint (the adapter freshly initialised).
"""

from __future__ import annotations

import inspect
import json
import logging
from pathlib import Path
from typing import Any

from transformers import AutoConfig, AutoProcessor, Qwen2_5_VLForConditionalGeneration

from mmreason.models.spatial.pooling import SPATIAL_INPUTS, SpatialAdapter, SpatialConfig

log = logging.getLogger("mmreason.models")

# the names peft keeps fully trainable next to LoRA (`LoraConfig.modules_to_save`)
TRAINABLE_MODULES = ("spatial",)


class SpatialQwen2_5_VL(Qwen2_5_VLForConditionalGeneration):
    """A Qwen2.5-VL model whose ``config.spatial`` describes the adapter it carries."""

    fully_trained_modules = TRAINABLE_MODULES  # read by the training setup: no LoRA here, every weight trains

    def __init__(self, config):
        super().__init__(config)
        spatial = getattr(config, "spatial", None)
        if not isinstance(spatial, dict):
            raise ValueError("SpatialQwen2_5_VL needs config.spatial (a dict of SpatialConfig fields); make "
                             "a checkpoint with `python -m mmreason.models.spatial init BASE OUT`")
        # the merger's width: the patch tokens the adapter adds to are the vision tower's merged output
        width = config.vision_config.out_hidden_size
        self.spatial = SpatialAdapter(SpatialConfig.from_dict(spatial), hidden_size=width)
        self._pending: dict | None = None
        self._generating: dict | None = None  # the spatial inputs of the generate() call under way
        self._warned = False
        # The inner model is where every path meets: this class's forward, generate, and trainers that call
        # the backbone directly to fuse the LM head (TRL's SFTTrainer). The spatial tensors ride in its
        # kwargs; a pre-hook takes them out before the backbone sees them, the vision tower's hook uses them.
        self.model.register_forward_pre_hook(self._take_spatial, with_kwargs=True)
        self.model.register_forward_hook(self._drop_spatial, always_call=True)
        self.model.visual.register_forward_hook(self._add_spatial)

    @staticmethod
    def _pop_spatial(kwargs: dict) -> dict | None:
        given = {name: kwargs.pop(name) for name in SPATIAL_INPUTS if kwargs.get(name) is not None}
        for name in SPATIAL_INPUTS:
            kwargs.pop(name, None)
        if given and len(given) != len(SPATIAL_INPUTS):
            missing = [name for name in SPATIAL_INPUTS if name not in given]
            raise ValueError(f"spatial model: incomplete spatial inputs, missing {missing}")
        return given or None

    def _take_spatial(self, module, args, kwargs):
        given = self._pop_spatial(kwargs)
        # the vision tower runs only when pixels are given
        self._pending = given if given and kwargs.get("pixel_values") is not None else None
        return args, kwargs

    def _drop_spatial(self, module, args, output):
        self._pending = None  # never carried over to a later call, whatever happened in this one

    def _add_spatial(self, module, args, output):
        pending, self._pending = self._pending, None
        if pending is None and self._generating is not None:
            pending, self._generating = self._generating, None  # generate() encodes the images once, up front
        if pending is None:
            if not self._warned:
                log.warning("spatial model: images without spatial inputs; their tokens pass through "
                            "unchanged (feed batches through mmreason.models.spatial.SpatialCollator)")
                self._warned = True
            return output
        output.pooler_output = self.spatial(output.pooler_output, **pending)
        return output

    def forward(self, *args, **kwargs):
        # the spatial tensors pass through the backbone's **kwargs to the inner model's pre-hook
        return super().forward(*args, **kwargs)

    def vision_extras(self, row: dict | None, vision: dict) -> dict:
        """The spatial inputs of one rollout segment (`mmreason.rollout` calls this on the prompt and on
        each observation with pictures, so generation and the trainer's forward carry the points)."""
        from mmreason.models.spatial.collate import rollout_inputs

        return rollout_inputs(row, vision, self.spatial.config)

    def generate(self, *args, **kwargs):
        # generate() runs the vision tower itself before the first forward (its multimodal encoder step), so
        # the spatial tensors wait here for that call instead of riding along with every decoding step
        self._generating = self._pop_spatial(kwargs)
        try:
            return super().generate(*args, **kwargs)
        finally:
            self._generating = None


def _spatial_signature() -> inspect.Signature:
    """The backbone's forward signature plus the spatial inputs as keyword arguments: `generate` checks its
    kwargs against the signature, and would refuse both the spatial tensors and (with a bare ``**kwargs``)
    the pixels."""
    sig = inspect.signature(Qwen2_5_VLForConditionalGeneration.forward)
    params = [p for p in sig.parameters.values() if p.kind is not p.VAR_KEYWORD]
    rest = [p for p in sig.parameters.values() if p.kind is p.VAR_KEYWORD]
    extra = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None) for name in SPATIAL_INPUTS]
    return sig.replace(parameters=params + extra + rest)


SpatialQwen2_5_VL.forward.__signature__ = _spatial_signature()


def _register_weight_names() -> None:
    """Read and write weights under the names a Qwen2.5-VL checkpoint uses. transformers renames a
    checkpoint's legacy keys (``model.layers`` -> ``model.language_model.layers``) for its own classes only;
    a subclass defined outside it must register the same renaming under its class name."""
    from transformers.conversion_mapping import get_checkpoint_conversion_mapping, \
        register_checkpoint_conversion_mapping

    mapping = get_checkpoint_conversion_mapping(Qwen2_5_VLForConditionalGeneration.__name__)
    if mapping is not None and get_checkpoint_conversion_mapping(SpatialQwen2_5_VL.__name__) is None:
        register_checkpoint_conversion_mapping(SpatialQwen2_5_VL.__name__, mapping)


_register_weight_names()


def is_spatial_checkpoint(path: str | Path) -> bool:
    """Whether a checkpoint folder's config.json carries a spatial adapter."""
    try:
        return isinstance(json.loads((Path(path) / "config.json").read_text()).get("spatial"), dict)
    except (OSError, ValueError, AttributeError):
        return False


def init_checkpoint(base: str | Path, out: str | Path, *, seed: int = 0, **options: Any) -> Path:
    """Write a spatial checkpoint to `out`: the Qwen2.5-VL checkpoint `base` (weights and processor) plus a
    freshly initialised adapter shaped by `options` (`SpatialConfig` fields). Returns `out`."""
    import torch

    config = AutoConfig.from_pretrained(base)
    if config.model_type != "qwen2_5_vl":
        raise ValueError(f"{base}: the spatial adapter attaches to Qwen2.5-VL checkpoints, not "
                         f"model_type {config.model_type!r}")
    config.spatial = SpatialConfig(**options).as_dict()
    torch.manual_seed(seed)
    model = SpatialQwen2_5_VL.from_pretrained(base, config=config, dtype=torch.float32)
    out = Path(out)
    model.save_pretrained(out)
    AutoProcessor.from_pretrained(base).save_pretrained(out)
    return out
