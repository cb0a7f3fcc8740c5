"""Backbone families, loading, and offline tiny models (`import mmreason.models`).

    from mmreason.models import build_tiny, load
    model, processor = load(build_tiny("qwen2_5_vl", "/tmp/tiny"))

Importing this package is cheap: `transformers` is imported when a model is built or loaded.
"""

from mmreason.models.families import FAMILIES, get_family
from mmreason.models.loading import detect_family, load, resolve_checkpoint
from mmreason.models.tiny import build_tiny

__all__ = ["FAMILIES", "get_family", "load", "detect_family", "resolve_checkpoint", "build_tiny"]
