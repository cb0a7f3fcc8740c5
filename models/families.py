"""Backbone families for the model layer: the core table plus what only this layer needs.

The facts live in `mmreason.families` (pure data the core can read); this module re-exports them and
adds the family's chat template, kept as a Jinja file under `templates/` so it can be read and diffed.

>>> get_family("qwen2_5_vl").box_frame
'resized'
>>> chat_template("qwen2_5_vl") == chat_template("qwen2_vl")
True
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from mmreason.families import FAMILIES, Family, get_family

__all__ = ["FAMILIES", "Family", "get_family", "chat_template", "family_for_model_type", "OMNI_SPEECH_SYSTEM"]

TEMPLATES_DIR = Path(__file__).parent / "templates"

# Qwen2-VL and Qwen2.5-VL ship the same chat template.
TEMPLATE_FILES: dict[str, str] = {
    "qwen2_vl": "qwen2_vl.jinja",
    "qwen2_5_vl": "qwen2_vl.jinja",
    "qwen3_vl": "qwen3_vl.jinja",
    "qwen2_5_omni": "qwen2_5_omni.jinja",
}

# The system prompt Qwen2.5-Omni needs for speech output. The chat template does not insert it (its
# default system turn is the plain assistant one), so callers that want the talker pass it themselves.
OMNI_SPEECH_SYSTEM = (
    "You are Qwen, a virtual human developed by the Qwen Team, Alibaba Group, capable of perceiving "
    "auditory and visual inputs, as well as generating text and speech."
)


@cache
def chat_template(family: str) -> str:
    """The family's chat template (Jinja source), reproducing the official rendered layout."""
    get_family(family)  # a clear error for unknown names
    return (TEMPLATES_DIR / TEMPLATE_FILES[family]).read_text(encoding="utf-8")


def family_for_model_type(model_type: str) -> str | None:
    """The family whose checkpoints carry `config.model_type == model_type`, or None.

    >>> family_for_model_type("qwen2_5_omni_thinker")
    'qwen2_5_omni'
    """
    for name, fam in FAMILIES.items():
        if fam.model_type == model_type:
            return name
    return None
