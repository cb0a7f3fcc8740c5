"""Load any local checkpoint of a known family: `load(spec) -> (model, processor)`.

The family comes from `config.model_type` (never from the directory name), and the model is built with
the family's auto class, so a tiny test model and a released checkpoint load the same way; a Qwen2.5-VL
checkpoint whose config.json carries ``spatial`` loads as `mmreason.models.spatial.qwen.SpatialQwen2_5_VL`.

    model, processor = load("outputs/quickstart/tiny-qwen2_5_vl")
    model, processor = load({"path": "ckpt/", "dtype": "bfloat16", "device": "cuda"})
    model, processor = load(resolve_checkpoint("tiny:qwen2_5_vl"))  # built once, offline, then reused

>>> as_spec("ckpt/")
ModelSpec(path='ckpt/', dtype='auto', attn_implementation=None, device=None)
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Any

from mmreason.config import BASE_PREFIX, TINY_PREFIX
from mmreason.errors import RecipeError
from mmreason.families import FAMILIES, get_family
from mmreason.models.families import family_for_model_type

log = logging.getLogger("mmreason.models")

SPEC_KEYS = ("path", "dtype", "attn_implementation", "device")
DTYPES = ("auto", "float32", "bfloat16", "float16")

# Checkpoint types we recognise but do not load as-is, with what to do instead.
_NOT_LOADABLE = {
    "qwen2_5_omni": "a full Qwen2.5-Omni checkpoint (thinker + talker + token2wav); mmreason trains and serves "
                    "the Thinker (model_type 'qwen2_5_omni_thinker'): save `model.thinker` and its processor, "
                    "and load that directory",
}


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Where a checkpoint is and how to place it. `device=None` leaves the model where loading puts it (CPU)."""

    path: str
    dtype: str = "auto"
    attn_implementation: str | None = None
    device: str | None = None


def as_spec(spec: Any) -> ModelSpec:
    """Accept a path, a dict, or any object with a `path` attribute (e.g. a recipe's model section)."""
    if isinstance(spec, ModelSpec):
        return spec
    if isinstance(spec, (str, Path)):
        return ModelSpec(path=str(spec))
    if isinstance(spec, dict):
        unknown = sorted(set(spec) - set(SPEC_KEYS))
        if unknown:
            raise ValueError(f"model spec: unknown key(s) {unknown}; known: {list(SPEC_KEYS)}")
        values = spec
    elif hasattr(spec, "path"):
        values = {k: getattr(spec, k) for k in SPEC_KEYS if hasattr(spec, k)}
    else:
        raise TypeError(f"model spec must be a path, a dict or an object with `path`, got {type(spec).__name__}")
    if not values.get("path"):
        raise ValueError("model spec: `path` is required")
    kwargs = {k: v for k, v in values.items() if v is not None}
    kwargs["path"] = str(kwargs["path"])
    return ModelSpec(**kwargs)


def cache_dir() -> Path:
    """Where tiny models are built once and reused: ``$MMREASON_CACHE_DIR`` or ``~/.cache/mmreason``."""
    return Path(os.environ.get("MMREASON_CACHE_DIR") or Path.home() / ".cache" / "mmreason")


def resolve_checkpoint(spec: str | Path) -> Path:
    """The local checkpoint directory `spec` names: a directory as given, or for ``tiny:<family>`` the tiny
    model of that family under `cache_dir` (built on first use, seed 0, and reused after). Training,
    evaluation and the demos all resolve their model here, so a ``tiny:`` spec means one model everywhere.

    Raises `RecipeError` for anything else: mmreason never downloads weights.
    """
    text = str(spec)
    if text.startswith(BASE_PREFIX):
        return shipped_base(text[len(BASE_PREFIX):])
    if not text.startswith(TINY_PREFIX):
        path = Path(text).expanduser()
        if not path.is_dir():
            raise RecipeError(f"{text!r} is not a checkpoint directory (mmreason never downloads weights; "
                              f"point it at a saved model), nor {TINY_PREFIX}<family>")
        return path
    from mmreason.models.tiny import build_tiny, is_tiny_build

    family = text[len(TINY_PREFIX):]
    if family not in FAMILIES:
        raise RecipeError(f"{text!r}: unknown tiny family {family!r}; known: {', '.join(FAMILIES)}")
    out = cache_dir() / "tiny" / f"{family}-seed0"
    if not is_tiny_build(out):
        log.info("building the tiny %s model into %s (once)", family, out)
        build_tiny(family, out, seed=0)
    return out


def shipped_base(family: str) -> Path:
    """The project's pretrained tiny base of `family` (``base:<family>``), shipped in ``models/tiny_base/``
    and made by `mmreason pretrain-tiny` (its README.md says how)."""
    path = Path(__file__).resolve().parent / "tiny_base" / family
    if not (path / "model.safetensors").is_file():
        shipped = sorted(p.name for p in path.parent.glob("*") if (p / "model.safetensors").is_file())
        raise RecipeError(f"{BASE_PREFIX}{family}: no pretrained tiny base of that family is shipped "
                          f"(shipped: {', '.join(shipped) or 'none'}); make one with "
                          f"`mmreason pretrain-tiny --out {path}`")
    return path


def _read_model_type(path: Path) -> str:
    config_file = path / "config.json"
    if not path.exists():
        raise FileNotFoundError(f"model checkpoint not found: {path}")
    if not config_file.is_file():
        raise FileNotFoundError(f"{path}: not a model checkpoint (no config.json)")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ValueError(f"{config_file}: unreadable config ({err})") from None
    if not isinstance(config, dict) or "model_type" not in config:
        raise ValueError(f"{config_file}: no `model_type` field")
    return str(config["model_type"])


def detect_family(path_or_config: Any) -> str:
    """The family name of a checkpoint directory or a loaded config, from its `model_type`.

    Raises FileNotFoundError for a missing directory and ValueError for a model type no family has.
    """
    if isinstance(path_or_config, (str, Path)):
        where = str(path_or_config)
        model_type = _read_model_type(Path(path_or_config))
    else:
        where = type(path_or_config).__name__
        model_type = getattr(path_or_config, "model_type", None)
        if model_type is None:
            raise TypeError(f"detect_family needs a checkpoint path or a config, got {where}")
    family = family_for_model_type(model_type)
    if family is not None:
        return family
    if model_type in _NOT_LOADABLE:
        raise ValueError(f"{where}: {_NOT_LOADABLE[model_type]}")
    known = ", ".join(f"{f.model_type} ({name})" for name, f in FAMILIES.items())
    raise ValueError(f"{where}: unknown model_type {model_type!r}; known: {known}")


def _torch_dtype(name: str):
    import torch

    if name not in DTYPES:
        raise ValueError(f"model spec: dtype {name!r} is not one of {list(DTYPES)}")
    return name if name == "auto" else getattr(torch, name)


PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


def _check_processor_files(path: Path) -> None:
    """Name a checkpoint folder that holds weights but no processor or tokenizer (e.g. a mid-run save of
    weights alone) before the weights load, instead of transformers' hub-lookup error after."""
    for kind, names in (("processor", PROCESSOR_FILES), ("tokenizer", TOKENIZER_FILES)):
        if not any((path / n).is_file() for n in names):
            raise FileNotFoundError(f"{path}: no {kind} files ({' or '.join(names)}); copy them from the checkpoint "
                                    f"this one was trained from, or save it with its processor")


def load(spec: Any):
    """Load `(model, processor)` from a local checkpoint; see `as_spec` for what `spec` may be."""
    import transformers as tf

    s = as_spec(spec)
    family = get_family(detect_family(s.path))
    _check_processor_files(Path(s.path))
    kwargs: dict[str, Any] = {"dtype": _torch_dtype(s.dtype)}
    if s.attn_implementation:
        kwargs["attn_implementation"] = s.attn_implementation
    if s.device == "auto":
        kwargs["device_map"] = "auto"
    model_class = getattr(tf, family.auto_class)
    if family.name == "qwen2_5_vl":
        from mmreason.models.spatial.qwen import SpatialQwen2_5_VL, is_spatial_checkpoint

        if is_spatial_checkpoint(s.path):  # config.json's `spatial`: the adapter lives in the same weights
            model_class = SpatialQwen2_5_VL
    model = model_class.from_pretrained(s.path, **kwargs)
    if s.device not in (None, "auto"):
        model = model.to(s.device)
    processor = tf.AutoProcessor.from_pretrained(s.path)
    return model, processor
