"""Tiny configs and processor parts for each family: real architectures, toy sizes, CPU-fast.

Sizes: 2 text layers, hidden 64, 4 heads of 16 (2 KV heads), vision depth 1-2 of width 32, the family's
real patch/merge geometry (so coordinates and token counts behave exactly as in the released models).

Pixel budgets are cut down so CPU tests stay fast, and written into the saved processor:

- images: at most 256 merged vision tokens (`max_pixels = 256 * factor**2`, e.g. 256*28*28 for Qwen2.5-VL),
  at least 4;
- videos: Qwen2/2.5-VL and Omni at most 16 tokens per frame (per-frame budget, 16*28*28 px);
  Qwen3-VL at most 128*32*32 px over the whole clip (its budget counts all frames);
- audio (Omni): clips up to 30 s (Whisper features, 128 mel bins, 16 kHz).

Qwen2.5-Omni's processor class carries its own video size (128-768 tokens a frame) that outranks the
video processor's, as in the released model: pass `size=processor.video_processor.size` to keep Omni
clips at the tiny budget. Video paths are decoded by qwen-vl-utils (`process_vision_info(...,
return_video_metadata=True)`), then given to the processor with `video_metadata`.

Anything that maps coordinates must read the budget from the processor, not assume the family default.
"""

from __future__ import annotations

from mmreason.families import get_family

TEXT = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)
HEAD_DIM = TEXT["hidden_size"] // TEXT["num_attention_heads"]
# Multimodal RoPE splits head_dim/2 rotary frequencies between (time, height, width); the sections must sum to
# head_dim/2. Qwen2/2.5 use contiguous sections (real 16/24/24 of 64); Qwen3-VL interleaves them (real 24/20/20),
# which needs 3*section[1] and 3*section[2] to fit in head_dim/2.
MROPE_SECTION = {"qwen2_vl": [2, 3, 3], "qwen2_5_vl": [2, 3, 3], "qwen3_vl": [4, 2, 2], "qwen2_5_omni": [2, 3, 3]}
ROPE_THETA = {"qwen2_vl": 1e6, "qwen2_5_vl": 1e6, "qwen3_vl": 5e6, "qwen2_5_omni": 1e6}
VISION_WIDTH = 32
MAX_IMAGE_TOKENS = 256
MIN_IMAGE_TOKENS = 4
VIDEO_TOKENS_PER_FRAME = 16
QWEN3_VIDEO_PIXELS = 128 * 32 * 32
MAX_VIDEO_FRAMES = 16
AUDIO_SECONDS = 30


# Sizes a tiny model comes in. "test" (above) keeps CPU tests fast; "base" is the width the project's own
# pretrained tiny base uses (`mmreason.train.pretrain_tiny`): 4 text layers of 128 (4 heads of 32, sections
# 4/6/6 summing to 32/2), a 2-block vision tower of 64 -- about 2M parameters, half of them embeddings.
# Its rope_theta is 10, not the released 1e6: Qwen2/2.5-VL give the height and width sections the lowest
# rotary frequencies, and with 16 pairs and theta 1e6 the width pairs turn by 1e-4..2e-6 rad per token, so
# attention cannot tell one image column from the next; at theta 10 they turn by 0.24..0.12 rad. Sequences
# here are a few hundred tokens, far from where a small theta would alias.
SIZES = {
    "test": {},
    "base": {"text": dict(hidden_size=128, intermediate_size=256, num_hidden_layers=4, num_attention_heads=4,
                          num_key_value_heads=4),
             "mrope_section": [4, 6, 6], "rope_theta": 10.0, "vision_width": 64},
}
SIZED_FAMILIES = ("qwen2_vl", "qwen2_5_vl")  # families whose config `resize` knows


def resize(config, family: str, size: str):
    """`config` (a tiny `model_config`) at `size`; "test" returns it unchanged.

    >>> import transformers as tf
    >>> c = resize(tf.Qwen2_5_VLConfig(text_config=dict(TEXT), vision_config={}), "qwen2_5_vl", "base")
    >>> c.text_config.hidden_size, c.vision_config.out_hidden_size, c.text_config.rope_parameters["mrope_section"]
    (128, 128, [4, 6, 6])
    >>> c.text_config.rope_parameters["rope_theta"]
    10.0
    """
    if size not in SIZES:
        raise ValueError(f"unknown tiny size {size!r}; known: {', '.join(SIZES)}")
    if size == "test":
        return config
    if family not in SIZED_FAMILIES:
        raise ValueError(f"tiny size {size!r} exists for {', '.join(SIZED_FAMILIES)} only, not {family!r}")
    spec, text = SIZES[size], config.text_config
    for key, value in spec["text"].items():
        setattr(text, key, value)
    text.layer_types = ["full_attention"] * text.num_hidden_layers
    text.rope_parameters = {**(text.rope_parameters or {}), "mrope_section": list(spec["mrope_section"]),
                            "rope_theta": spec["rope_theta"]}
    vision, width = config.vision_config, spec["vision_width"]
    if family == "qwen2_vl":
        vision.embed_dim, vision.hidden_size, vision.num_heads = width, text.hidden_size, width // 32
    else:
        vision.hidden_size, vision.intermediate_size = width, 2 * width
        vision.out_hidden_size, vision.num_heads = text.hidden_size, width // 32
    return config


def padded_vocab(n_tokens: int, multiple: int = 64) -> int:
    """Embedding rows: the tokenizer's size rounded up, as the released checkpoints pad theirs."""
    return -(-n_tokens // multiple) * multiple


def _text(family: str, vocab_size: int, ids: dict[str, int]) -> dict:
    rope = {"rope_type": "default", "rope_theta": ROPE_THETA[family], "mrope_section": MROPE_SECTION[family]}
    if family == "qwen3_vl":
        rope["mrope_interleaved"] = True
    text = dict(TEXT, vocab_size=vocab_size, max_position_embeddings=32768, rope_parameters=rope,
                pad_token_id=ids["pad"])
    if family == "qwen3_vl":
        text["head_dim"] = HEAD_DIM
    else:
        text |= {"bos_token_id": ids["bos"], "eos_token_id": ids["eos"]}
    if family == "qwen2_5_omni":
        text["tie_word_embeddings"] = False
    return text


def _vision(family: str) -> dict:
    fam = get_family(family)
    geometry = dict(patch_size=fam.patch_size, spatial_merge_size=fam.merge_size, temporal_patch_size=fam.temporal_patch_size)
    out = TEXT["hidden_size"]  # the merger projects vision features to the text width
    if family == "qwen2_vl":
        # Qwen2-VL names the ViT width `embed_dim` and the merger output `hidden_size`.
        return dict(geometry, depth=1, embed_dim=VISION_WIDTH, hidden_size=out, num_heads=2, mlp_ratio=2)
    if family == "qwen3_vl":
        # Learned position table interpolated over the patch grid: its size must be a square number.
        return dict(geometry, depth=2, hidden_size=VISION_WIDTH, intermediate_size=64, num_heads=2,
                    out_hidden_size=out, num_position_embeddings=16 * 16, deepstack_visual_indexes=[0, 1])
    # Qwen2.5-VL and Omni: windowed attention except in the listed full-attention blocks.
    return dict(geometry, depth=2, hidden_size=VISION_WIDTH, intermediate_size=64, num_heads=2, out_hidden_size=out,
                window_size=112, fullatt_block_indexes=[1])


def model_config(family: str, vocab_size: int, ids: dict[str, int]):
    """The family's config object at tiny size; `ids` maps roles (image, video, ...) to token ids."""
    import transformers as tf

    text, vision = _text(family, vocab_size, ids), _vision(family)
    if family == "qwen2_5_omni":
        audio = dict(num_mel_bins=128, encoder_layers=1, encoder_attention_heads=2, encoder_ffn_dim=64, d_model=32,
                     output_dim=TEXT["hidden_size"], max_source_positions=1500, n_window=100)
        return tf.Qwen2_5OmniThinkerConfig(
            text_config=text, vision_config=vision, audio_config=audio,
            image_token_index=ids["image"], video_token_index=ids["video"], audio_token_index=ids["audio"],
            audio_start_token_id=ids["audio_start"], audio_end_token_id=ids["audio_end"],
            vision_start_token_id=ids["vision_start"], vision_end_token_id=ids["vision_end"],
            user_token_id=ids["user"], tie_word_embeddings=False,
        )
    cls = {"qwen2_vl": tf.Qwen2VLConfig, "qwen2_5_vl": tf.Qwen2_5_VLConfig, "qwen3_vl": tf.Qwen3VLConfig}[family]
    return cls(
        text_config=text, vision_config=vision, image_token_id=ids["image"], video_token_id=ids["video"],
        vision_start_token_id=ids["vision_start"], vision_end_token_id=ids["vision_end"], tie_word_embeddings=False,
    )


def image_processor(family: str):
    import transformers as tf

    fam = get_family(family)
    kw = dict(min_pixels=MIN_IMAGE_TOKENS * fam.factor ** 2, max_pixels=MAX_IMAGE_TOKENS * fam.factor ** 2,
              patch_size=fam.patch_size, merge_size=fam.merge_size, temporal_patch_size=fam.temporal_patch_size)
    if family == "qwen3_vl":  # Qwen3-VL normalises with mean = std = 0.5 instead of CLIP's statistics
        kw |= {"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}
    return tf.Qwen2VLImageProcessor(**kw)


def video_processor(family: str):
    import transformers as tf

    fam = get_family(family)
    geometry = dict(patch_size=fam.patch_size, merge_size=fam.merge_size, temporal_patch_size=fam.temporal_patch_size,
                    max_frames=MAX_VIDEO_FRAMES)
    if family == "qwen3_vl":
        return tf.Qwen3VLVideoProcessor(
            size={"shortest_edge": 8 * fam.factor ** 2, "longest_edge": QWEN3_VIDEO_PIXELS},
            image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5], cap_pixels_per_frame=True, **geometry,
        )
    return tf.Qwen2VLVideoProcessor(
        min_pixels=MIN_IMAGE_TOKENS * fam.factor ** 2, max_pixels=VIDEO_TOKENS_PER_FRAME * fam.factor ** 2,
        cap_pixels_per_frame=True, **geometry,
    )


def feature_extractor():
    """Whisper log-mel features as Qwen2.5-Omni uses them (128 bins, 16 kHz, 10 ms hop), capped at 30 s."""
    import transformers as tf

    return tf.WhisperFeatureExtractor(feature_size=128, sampling_rate=16000, hop_length=160, n_fft=400,
                                      chunk_length=AUDIO_SECONDS, padding_value=0.0, return_attention_mask=True)
