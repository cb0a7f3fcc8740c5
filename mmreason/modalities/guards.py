"""Guard-rails against the silent multimodal failures users report most, each with the issues that show it.

- truncation that cuts a vision span ("Image features and image tokens do not match", LLaMA-Factory
  #5964 and others): :func:`media_overflow` says whether a sample may be cut at ``max_length``;
- placeholder tokens that do not match the pixel tensors (images dropped from the forward without an
  error, agent-lightning #560): :func:`check_vision_tokens` compares them before the forward;
- a policy that *emits* ``<|image_pad|>``/``<|video_pad|>``, which crashes mRoPE's ``get_rope_index`` on
  the next forward (ms-swift #9287, trl #3847): :func:`forbid_placeholder_tokens`;
- the wrong padding side for generation (trl #5785): :func:`check_padding_side`.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from mmreason.families import Family, as_family


def _tokenizer(processor: Any) -> Any:
    return getattr(processor, "tokenizer", processor)


def token_id(processor: Any, token: str) -> int:
    """The id of a special token; a clear error when the tokenizer does not know it."""
    tok = _tokenizer(processor)
    tid = tok.convert_tokens_to_ids(token)
    if tid is None or (tid == tok.unk_token_id and token != tok.unk_token):
        raise ValueError(f"tokenizer has no token {token!r}; is this processor of the right family?")
    return int(tid)


def placeholder_token_ids(processor: Any, family: str | Family) -> list[int]:
    """Ids a policy must never generate: the family's image/video/audio placeholders, plus the vision and
    audio span markers (a generated ``<|vision_start|>`` makes mRoPE look for a picture that is not there)."""
    fam = as_family(family)
    tokens = [*fam.placeholder_tokens, fam.vision_start, fam.vision_end, fam.audio_start, fam.audio_end]
    return sorted({token_id(processor, t) for t in tokens if t})


def forbid_placeholder_tokens(processor: Any, family: str | Family, *, device: str = "cpu") -> Any:
    """A `LogitsProcessorList` for ``model.generate(logits_processor=...)`` that sets the logits of every
    placeholder token to -inf. (For vLLM or ``bad_words_ids``, use :func:`bad_words_ids`.)"""
    from transformers import LogitsProcessorList, SuppressTokensLogitsProcessor

    ids = placeholder_token_ids(processor, family)
    return LogitsProcessorList([SuppressTokensLogitsProcessor(ids, device=device)])


def bad_words_ids(processor: Any, family: str | Family) -> list[list[int]]:
    """The same tokens as ``generate(bad_words_ids=...)`` expects them."""
    return [[t] for t in placeholder_token_ids(processor, family)]


def media_token_ids(processor: Any, family: str | Family) -> list[int]:
    """Every token that belongs to a media span (placeholders and span markers)."""
    return placeholder_token_ids(processor, family)


def media_overflow(input_ids: Sequence[int], max_length: int, media_ids: Sequence[int]) -> bool:
    """True when cutting `input_ids` to `max_length` would remove any media token: a cut inside a vision
    span, or before a later one, leaves pixel tensors without their placeholders.

    >>> media_overflow([1, 2, 9, 9, 3, 4], 5, [9]), media_overflow([1, 2, 9, 9, 3, 4], 3, [9])
    (False, True)
    """
    ids = set(media_ids)
    return any(t in ids for t in list(input_ids)[max_length:])


def check_padding_side(attention_mask: Any, side: str) -> None:
    """Raise if a padded batch is not padded on `side` ("left" for generation, "right" for training)."""
    if attention_mask is None or attention_mask.shape[0] < 2:
        return
    edge = attention_mask[:, -1] if side == "left" else attention_mask[:, 0]
    if not bool(edge.all()):
        raise ValueError(f"batch is not {side}-padded: generation needs left padding, training right padding")


def expected_tokens(grid_thw: Any, merge_size: int) -> list[int]:
    """Placeholder tokens each image/video grid (t, h, w) expands to: t*h*w / merge²."""
    return [int(t) * int(h) * int(w) // (merge_size * merge_size) for t, h, w in grid_thw.tolist()]


def check_vision_tokens(batch: Mapping[str, Any], processor: Any, family: str | Family, *,
                        ids: Sequence[Any] | None = None) -> None:
    """Raise unless every sample's placeholder count matches its pixel tensors, and the pixel rows match
    the grids. Call it on any batch just before the forward: it is cheap (counts on ``input_ids``)."""
    fam = as_family(family)
    input_ids = batch["input_ids"]
    ids = list(ids) if ids is not None else list(range(input_ids.shape[0]))
    for kind, token, pixels, grid_key in (
        ("image", fam.image_token, "pixel_values", "image_grid_thw"),
        ("video", fam.video_token, "pixel_values_videos", "video_grid_thw"),
    ):
        tid = token_id(processor, token)
        per_sample = (input_ids == tid).sum(dim=1).tolist()
        grid = batch.get(grid_key)
        want = expected_tokens(grid, fam.merge_size) if grid is not None else []
        if sum(per_sample) != sum(want):
            bad = [ids[i] for i, n in enumerate(per_sample) if n]
            raise ValueError(
                f"{kind} placeholders do not match the {kind} tensors: {sum(per_sample)} {token} tokens in "
                f"the batch, {sum(want)} expected from {grid_key} (samples with {kind}s: {bad or 'none'}); "
                f"a truncated or dropped {kind} would train on the wrong features"
            )
        if grid is not None:
            rows = int(batch[pixels].shape[0]) if batch.get(pixels) is not None else 0
            patches = int(grid.prod(dim=-1).sum())
            if rows != patches:
                raise ValueError(f"{pixels} has {rows} rows but {grid_key} describes {patches} patches")
    if fam.audio_token and batch.get("feature_attention_mask") is not None:
        from transformers.models.qwen2_5_omni.processing_qwen2_5_omni import _get_feat_extract_output_lengths

        tid = token_id(processor, fam.audio_token)
        have = int((input_ids == tid).sum())
        want = int(_get_feat_extract_output_lengths(batch["feature_attention_mask"].sum(-1)).sum())
        if have != want:
            raise ValueError(f"audio placeholders do not match the audio features: {have} tokens, "
                             f"{want} expected")
