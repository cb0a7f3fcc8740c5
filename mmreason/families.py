"""The backbone family table: facts about each VLM family that code on every layer needs.

Pure data, no `transformers` import, so the core (geometry, rewards, modalities) can read a family's
coordinate frame and patch geometry without reaching into `mmreason.models` (which re-exports this
table and adds loading). A registry is a literal dict: grep `FAMILIES` to see every family.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Family:
    """One backbone family.

    `box_frame` is the frame the family's *outputs* use for boxes and points:
    "norm1000" (relative integers 0-1000) or "resized" (absolute pixels of the smart-resized input).
    """

    name: str
    model_type: str  # config.model_type written by the tiny builder
    processor_class: str
    model_class: str
    auto_class: str  # transformers Auto* class that loads a checkpoint of this family
    box_frame: str
    patch_size: int
    merge_size: int
    temporal_patch_size: int
    min_pixels: int
    max_pixels: int
    modalities: tuple[str, ...]
    image_token: str
    video_token: str
    vision_start: str
    vision_end: str
    audio_token: str | None = None
    audio_start: str | None = None
    audio_end: str | None = None
    tool_calls_in_template: bool = False
    default_system: str | None = "You are a helpful assistant."
    lora_targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    extra_special_tokens: tuple[str, ...] = field(default_factory=tuple)

    @property
    def factor(self) -> int:
        """Side length in pixels of one merged vision token: sizes snap to multiples of it."""
        return self.patch_size * self.merge_size

    @property
    def placeholder_tokens(self) -> tuple[str, ...]:
        """Tokens the processor expands into vision/audio features; a policy must never generate them."""
        toks = [self.image_token, self.video_token]
        if self.audio_token:
            toks.append(self.audio_token)
        return tuple(toks)


_QWEN_CHAT_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
_QWEN_VISION_TOKENS = (
    "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>", "<|box_end|>", "<|quad_start|>",
    "<|quad_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
)
_QWEN_TOOL_TOKENS = ("<tool_call>", "</tool_call>")
_QWEN3_EXTRA = ("<tool_response>", "</tool_response>", "<think>", "</think>")

FAMILIES: dict[str, Family] = {
    "qwen2_vl": Family(
        name="qwen2_vl",
        model_type="qwen2_vl",
        processor_class="Qwen2VLProcessor",
        model_class="Qwen2VLForConditionalGeneration",
        auto_class="AutoModelForImageTextToText",
        box_frame="norm1000",
        patch_size=14, merge_size=2, temporal_patch_size=2,
        min_pixels=56 * 56, max_pixels=28 * 28 * 16384,  # the processor's defaults
        modalities=("image", "video"),
        image_token="<|image_pad|>", video_token="<|video_pad|>",
        vision_start="<|vision_start|>", vision_end="<|vision_end|>",
        extra_special_tokens=_QWEN_CHAT_TOKENS + _QWEN_VISION_TOKENS + _QWEN_TOOL_TOKENS,
    ),
    "qwen2_5_vl": Family(
        name="qwen2_5_vl",
        model_type="qwen2_5_vl",
        processor_class="Qwen2_5_VLProcessor",
        model_class="Qwen2_5_VLForConditionalGeneration",
        auto_class="AutoModelForImageTextToText",
        box_frame="resized",
        patch_size=14, merge_size=2, temporal_patch_size=2,
        min_pixels=56 * 56, max_pixels=28 * 28 * 16384,  # the processor's defaults
        modalities=("image", "video"),
        image_token="<|image_pad|>", video_token="<|video_pad|>",
        vision_start="<|vision_start|>", vision_end="<|vision_end|>",
        extra_special_tokens=_QWEN_CHAT_TOKENS + _QWEN_VISION_TOKENS + _QWEN_TOOL_TOKENS,
    ),
    "qwen3_vl": Family(
        name="qwen3_vl",
        model_type="qwen3_vl",
        processor_class="Qwen3VLProcessor",
        model_class="Qwen3VLForConditionalGeneration",
        auto_class="AutoModelForImageTextToText",
        box_frame="norm1000",
        patch_size=16, merge_size=2, temporal_patch_size=2,
        min_pixels=256 * 256, max_pixels=4096 * 4096,  # the processor's defaults
        modalities=("image", "video"),
        image_token="<|image_pad|>", video_token="<|video_pad|>",
        vision_start="<|vision_start|>", vision_end="<|vision_end|>",
        tool_calls_in_template=True,
        default_system=None,
        extra_special_tokens=_QWEN_CHAT_TOKENS + _QWEN_VISION_TOKENS + _QWEN_TOOL_TOKENS + _QWEN3_EXTRA,
    ),
    "qwen2_5_omni": Family(
        name="qwen2_5_omni",
        model_type="qwen2_5_omni_thinker",
        processor_class="Qwen2_5OmniProcessor",
        model_class="Qwen2_5OmniThinkerForConditionalGeneration",
        auto_class="AutoModelForImageTextToText",  # maps model_type qwen2_5_omni_thinker to the Thinker class
        box_frame="resized",
        patch_size=14, merge_size=2, temporal_patch_size=2,
        min_pixels=56 * 56, max_pixels=28 * 28 * 16384,  # the processor's defaults
        modalities=("image", "video", "audio"),
        image_token="<|IMAGE|>", video_token="<|VIDEO|>",
        vision_start="<|vision_bos|>", vision_end="<|vision_eos|>",
        audio_token="<|AUDIO|>", audio_start="<|audio_bos|>", audio_end="<|audio_eos|>",
        # The chat template's default system turn is the plain one; the long "virtual human" prompt is
        # what speech output needs, and callers pass it (mmreason.models.families.OMNI_SPEECH_SYSTEM).
        default_system="You are a helpful assistant.",
        extra_special_tokens=_QWEN_CHAT_TOKENS + (
            "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>", "<|IMAGE|>", "<|VIDEO|>", "<|vision_bos|>",
            "<|vision_eos|>", "<|vision_pad|>", "<|box_start|>", "<|box_end|>", "<|quad_start|>",
            "<|quad_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
        ) + _QWEN_TOOL_TOKENS,
    ),
}


def get_family(name: str) -> Family:
    """Look a family up by name, with an error that lists the known ones."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise KeyError(f"unknown backbone family {name!r}; known: {', '.join(sorted(FAMILIES))}") from None


def as_family(family: str | Family) -> Family:
    """`family` itself, or the family of that name: for functions that take either.

    >>> as_family("qwen2_vl") is as_family(get_family("qwen2_vl"))
    True
    """
    return get_family(family) if isinstance(family, str) else family
