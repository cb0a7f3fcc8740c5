"""One collator for SFT, GRPO and inference: canonical rows of any media mix -> processor inputs.

For a batch of rows it loads every media part through the `MODALITIES` adapters, renders the family's
chat template (assistant turns included for training, a generation prompt for generation), calls the
processor once, and returns its tensors plus ``labels`` (assistant tokens only) and, per sample, the
frames that map model outputs back to the source (``ImageFrame``s, ``VideoFrame``s ...).

The adapters have already sized every image and video by the family's rule, so the processor is told
not to resize (``do_resize=False``) or re-sample frames (``do_sample_frames=False``): the size the
model sees is exactly the size recorded in the frame, and video timing reaches the processor as
``video_metadata`` (exact sampled indices and source fps) rather than an fps list.

Guard-rails (see `guards`): samples longer than ``max_length`` are cut only where no media token is
lost, otherwise raised or dropped (``on_overflow``) and counted; placeholder counts are checked against
the pixel tensors; padding is set explicitly (left for generation, right for training) and checked.
"""

from __future__ import annotations

import logging
import os
import weakref
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from mmreason.errors import MediaError, SchemaError
from mmreason.families import Family, as_family
from mmreason.modalities import ON_ERROR, load_sample_media, part_kind, row_messages
from mmreason.modalities.guards import (  # noqa: F401  (forbid_placeholder_tokens: part of this API)
    check_padding_side, check_vision_tokens, forbid_placeholder_tokens, media_overflow, media_token_ids,
)

log = logging.getLogger(__name__)

IGNORE_INDEX = -100
MODES = ("train", "generate")
ON_OVERFLOW = ("error", "drop")
IMAGE_PART_TYPES = ("image", "screenshot")  # the parts a ground-truth `image` index counts


@dataclass(frozen=True)
class SampleFrames:
    """How one sample's media reached the model: `images` in the order ground-truth ``image`` indices
    count them (image and screenshot parts), `videos` in order, and every media part as (type, frame)."""

    images: tuple[Any, ...] = ()
    videos: tuple[Any, ...] = ()
    media: tuple[tuple[str, Any], ...] = ()


def frame_columns(frames: Sequence[SampleFrames | None]) -> list[list[dict]]:
    """The ``image_frames`` column rewards read (`mmreason.rewards` maps boxes to pixels with it): per
    sample, the original and resized size of each image, from the collator's frames.

    >>> from mmreason.geometry import ImageFrame
    >>> frame_columns([SampleFrames(images=(ImageFrame(640, 480, 644, 476),)), None])
    [[{'width': 640, 'height': 480, 'resized_width': 644, 'resized_height': 476}], []]
    """
    out = []
    for f in frames:
        images = [im for im in getattr(f, "images", ()) if im is not None]
        out.append([{"width": im.width, "height": im.height, "resized_width": im.resized_width,
                     "resized_height": im.resized_height} for im in images])
    return out


@dataclass
class CollateStats:
    """Running counts; a collator keeps one, so nothing it skips, cuts or drops goes unreported."""

    batches: int = 0
    samples: int = 0
    truncated: int = 0  # cut at max_length after the last media token (text only lost)
    dropped_overflow: int = 0  # too long and a cut would lose media tokens; dropped by policy
    skipped_media: int = 0  # unreadable media; skipped by policy


@dataclass(frozen=True)
class Collator:
    """``Collator(processor, "qwen2_5_vl", root=dataset_dir)(rows) -> batch`` for a DataLoader/Trainer.

    `media_options` holds recipe defaults per part type, e.g. ``{"image": {"max_pixels": ...}, "video":
    {"fps": 2.0, "total_pixels": ...}}``. With ``return_meta=False`` the batch holds tensors only (what
    ``model(**batch)`` takes); otherwise it also has ``ids`` and ``frames``.
    """

    processor: Any
    family: str | Family
    root: str | os.PathLike | None = None
    mode: str = "train"
    max_length: int | None = None
    on_overflow: str = "error"
    on_error: str = "raise"
    media_options: Mapping[str, Mapping[str, Any]] | None = None
    return_meta: bool = True
    stats: CollateStats = field(default_factory=CollateStats)

    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        return collate(
            rows, self.processor, self.family, root=self.root, mode=self.mode, max_length=self.max_length,
            on_overflow=self.on_overflow, on_error=self.on_error, media_options=self.media_options,
            return_meta=self.return_meta, stats=self.stats,
        )


def collate(
    rows: Sequence[Mapping[str, Any]], processor: Any, family: str | Family, *,
    root: str | os.PathLike | None = None, mode: str = "train", max_length: int | None = None,
    on_overflow: str = "error", on_error: str = "raise",
    media_options: Mapping[str, Mapping[str, Any]] | None = None, return_meta: bool = True,
    stats: CollateStats | None = None,
) -> dict[str, Any]:
    """Build one batch of processor inputs from canonical rows (see module docstring)."""
    fam = as_family(family)
    for name, value, allowed in (("mode", mode, MODES), ("on_overflow", on_overflow, ON_OVERFLOW),
                                 ("on_error", on_error, ON_ERROR)):
        if value not in allowed:
            raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    stats = stats if stats is not None else CollateStats()
    prepared = []
    for row in rows:
        sample = _prepare(row, fam, root=root, mode=mode, on_error=on_error, options=media_options)
        if sample is None:
            stats.skipped_media += 1
            continue
        prepared.append(sample)
    batch, prepared = _encode(prepared, processor, fam, mode=mode, max_length=max_length,
                              on_overflow=on_overflow, stats=stats)
    stats.batches += 1
    stats.samples += len(prepared)
    if return_meta:
        batch["ids"] = [s.sample_id for s in prepared]
        batch["frames"] = [s.frames for s in prepared]
    return batch


# ------------------------------------------------------------------------------------ preparation
@dataclass(frozen=True)
class _Sample:
    sample_id: str
    messages: list[dict]  # template-ready: media parts are bare {"type": ...}
    images: list[Any]
    videos: list[Any]  # LoadedVideo
    audios: list[Any]
    frames: SampleFrames
    n_assistant: int


def _prepare(row: Mapping[str, Any], fam: Family, *, root, mode: str, on_error: str,
             options) -> _Sample | None:
    sample_id = row.get("id")
    if sample_id is None:
        raise SchemaError("row has no 'id'", field="id")
    messages = row_messages(row)
    if mode == "generate":  # the prompt is everything before the final assistant turn(s)
        while messages and messages[-1]["role"] == "assistant":
            messages.pop()
        if not messages:
            raise SchemaError("nothing left to prompt with after removing assistant turns", row=sample_id)
    elif not any(m["role"] == "assistant" for m in messages):
        raise SchemaError("a training row needs at least one assistant turn", row=sample_id, field="messages")
    media = load_sample_media({"id": sample_id, "messages": messages}, root, fam, on_error=on_error,
                              options=options)
    if media is None:
        return None
    images, videos, audios, image_frames, video_frames, all_frames = [], [], [], [], [], []
    out_messages = []
    for m, msg in enumerate(messages):
        content = []
        for p, part in enumerate(msg["content"]):
            kind = part_kind(part)
            if kind == "text":
                content.append({"type": "text", "text": str(part.get("text") or "")})
                continue
            loaded = media.get(m, p)
            frame = getattr(loaded, "frame", None)
            all_frames.append((kind, frame))
            if kind in IMAGE_PART_TYPES:
                image_frames.append(frame)
            elif kind == "video":
                video_frames.append(frame)
            for sub in _parts_of(loaded, fam, sample_id):
                sub_kind = sub["type"]
                if sub_kind == "text":
                    content.append({"type": "text", "text": str(sub["text"])})
                    continue
                if sub_kind not in fam.modalities:
                    raise MediaError(getattr(loaded, "path", None) or kind,
                                     f"{fam.name} takes no {sub_kind} input", sample_id=sample_id)
                payload = _payload(sub_kind, sub[sub_kind], fam, sample_id, options)
                {"image": images, "video": videos, "audio": audios}[sub_kind].append(payload)
                content.append({"type": sub_kind})
        out_messages.append(observation_turn(content) if msg["role"] == "tool" else
                            {"role": msg["role"], "content": content})
    frames = SampleFrames(tuple(image_frames), tuple(video_frames), tuple(all_frames))
    n_assistant = sum(m["role"] == "assistant" for m in out_messages)
    return _Sample(str(sample_id), out_messages, images, videos, audios, frames, n_assistant)


def _payload(kind: str, value: Any, fam: Family, sample_id: Any, options) -> Any:
    """Expanded parts may carry raw pictures (a rendered view); size them by the same rule as any image."""
    from mmreason.modalities.image import LoadedImage, image_budget, load_image
    from mmreason.modalities.video import LoadedVideo

    if kind == "image" and not isinstance(value, LoadedImage):
        lo, hi = image_budget(None, fam, (options or {}).get("image"))
        return load_image(value, fam, min_pixels=lo, max_pixels=hi, sample_id=sample_id)
    if kind == "video" and not isinstance(value, LoadedVideo):
        got = type(value).__name__
        raise TypeError(f"sample {sample_id!r}: a video part must hold a LoadedVideo, got {got}")
    return value


def _parts_of(loaded: Any, fam: Family, sample_id: Any) -> list[dict]:
    if hasattr(loaded, "as_parts"):
        return loaded.as_parts(fam)
    if hasattr(loaded, "waveform"):  # decoded audio without its own expansion: audio backbones only
        return [{"type": "audio", "audio": loaded}]
    raise TypeError(f"sample {sample_id!r}: loaded media {type(loaded).__name__} has no as_parts()")


# ---------------------------------------------------------------------------------------- encoding
def _encode(samples: list[_Sample], processor, fam: Family, *, mode, max_length, on_overflow, stats):
    if not samples:
        raise MediaError("<batch>", "every sample in the batch was skipped for unreadable media")
    batch = _call_processor(samples, processor, fam, mode)
    if max_length is not None and batch["input_ids"].shape[1] > max_length:
        media_ids = media_token_ids(processor, fam)
        lengths = batch["attention_mask"].sum(dim=1).tolist()
        over = [i for i, n in enumerate(lengths) if n > max_length]
        # A generation prompt cannot lose its end; a training sample may lose text after its last media
        # token, as long as some assistant token is left to learn from.
        cut_ok = mode == "train"
        header = assistant_markers(processor)[0] if cut_ok else []
        bad = [i for i in over if not cut_ok
               or media_overflow(batch["input_ids"][i].tolist(), max_length, media_ids)
               or not _has_answer(batch["input_ids"][i, :max_length].tolist(), header)]
        if bad:
            detail = ", ".join(f"{samples[i].sample_id!r} ({lengths[i]} tokens)" for i in bad)
            if on_overflow == "error":
                raise ValueError(
                    f"sample(s) {detail} exceed max_length={max_length} and cutting them would "
                    f"{'lose media tokens or every answer token' if cut_ok else 'cut the prompt'}; raise "
                    "max_length, lower the pixel budget, or set on_overflow='drop'"
                )
            log.warning("dropping %d sample(s) longer than max_length=%d: %s", len(bad), max_length, detail)
            stats.dropped_overflow += len(bad)
            samples = [s for i, s in enumerate(samples) if i not in set(bad)]
            if not samples:
                raise ValueError(f"every sample in the batch exceeds max_length={max_length}: {detail}")
            return _encode(samples, processor, fam, mode=mode, max_length=max_length, on_overflow=on_overflow,
                           stats=stats)
        stats.truncated += len(over)
        if over:
            log.info("cut %d sample(s) to max_length=%d after their last media token", len(over), max_length)
        batch = _truncate(batch, max_length)
    check_padding_side(batch["attention_mask"], batch_padding(mode))
    check_vision_tokens(batch, processor, fam, ids=[s.sample_id for s in samples])
    if mode == "train":
        batch["labels"] = assistant_labels(
            batch["input_ids"], batch["attention_mask"], processor, ids=[s.sample_id for s in samples],
            n_assistant=[s.n_assistant for s in samples])
    return batch, samples


def observation_turn(content: list[dict]) -> dict:
    """A ``tool`` turn of a training row as the user turn rollouts append after a tool call
    (`mmreason.rollout.tokens.observation_text`): ``<tool_response>\n{media}{text}\n</tool_response>``.

    Why: the Qwen2-VL / Qwen2.5-VL / Omni templates render a ``tool`` role as ``<|im_start|>tool``, a turn no
    rollout ever shows the policy, so SFT on tool traces would teach one layout and RL sample in another.
    This is the layout DeepEyes' rollouts use, Qwen3-VL's template gives a tool message, and LLaMA-Factory's
    Qwen2-VL template gives an observation."""
    return {"role": "user", "content": [{"type": "text", "text": "<tool_response>\n"}, *content,
                                        {"type": "text", "text": "\n</tool_response>"}]}


def _has_answer(ids: list[int], header: list[int]) -> bool:
    """Whether an assistant header is followed by at least one token within `ids`."""
    h = len(header)
    return any(ids[i:i + h] == header for i in range(len(ids) - h))


def batch_padding(mode: str) -> str:
    """Left padding for generation (new tokens follow every prompt directly), right padding for training."""
    return "left" if mode == "generate" else "right"


def _call_processor(samples: list[_Sample], processor, fam: Family, mode: str) -> dict[str, Any]:
    generate = mode == "generate"
    texts = [processor.apply_chat_template(s.messages, tokenize=False, add_generation_prompt=generate)
             for s in samples]
    images = [im.image for s in samples for im in s.images]
    videos = [v for s in samples for v in s.videos]
    audios = [_waveform(a, processor, s.sample_id) for s in samples for a in s.audios]
    kwargs: dict[str, Any] = {"padding": True, "padding_side": batch_padding(mode), "return_tensors": "pt",
                              **sized_media_kwargs(processor, images, videos)}
    if audios:
        kwargs["audio"] = audios
        rate = {getattr(a, "sample_rate", None) for s in samples for a in s.audios} - {None}
        audio_kwargs = {"sampling_rate": rate.pop()} if rate else {}
        window = _padded_window(audios, getattr(processor, "feature_extractor", None))
        if window:  # the processor refuses `padding` both for all modalities and for audio: text gets its own
            kwargs["text_kwargs"] = {"padding": kwargs.pop("padding"), "padding_side": kwargs.pop("padding_side")}
            audio_kwargs.update(window)
        if audio_kwargs:
            kwargs["audio_kwargs"] = audio_kwargs
    return per_clip_seconds(dict(processor(text=texts, **kwargs)), videos, fam)


def sized_media_kwargs(processor: Any, images: Sequence[Any], videos: Sequence[Any]) -> dict[str, Any]:
    """Processor keyword arguments for pictures (PIL) and clips (`LoadedVideo`) the adapters already sized:
    no resizing, no frame re-sampling, each clip's timing as ``video_metadata`` from its frame record."""
    kwargs: dict[str, Any] = {}
    if images:
        kwargs["images"] = list(images)
        kwargs["images_kwargs"] = {"do_resize": False}
    if videos:
        kwargs["videos"] = [v.frames for v in videos]
        kwargs["video_metadata"] = [v.frame.to_metadata() for v in videos]
        vkw = {"do_resize": False, "do_sample_frames": False}
        if hasattr(processor.video_processor, "cap_pixels_per_frame"):
            vkw["cap_pixels_per_frame"] = False  # sizes are final; this only silences a deprecation warning
        kwargs["videos_kwargs"] = vkw
    return kwargs


def per_clip_seconds(batch: dict[str, Any], videos: Sequence[Any], family: str | Family) -> dict[str, Any]:
    """`batch` with ``video_second_per_grid`` (when the processor made it) recomputed clip by clip: the Omni
    processor applies one fps to every video of a call, while each clip has its own sampled rate."""
    if videos and "video_second_per_grid" in batch:
        import torch

        patch = as_family(family).temporal_patch_size
        batch["video_second_per_grid"] = torch.tensor([patch / v.frame.sampled_fps for v in videos],
                                                      dtype=torch.float32)
    return batch


def _padded_window(audios: Sequence[Any], extractor: Any) -> dict[str, Any]:
    """Pad a batch's clips to the longest one plus one FFT window, not to the extractor's 30-s window.

    Why: a Whisper-style extractor (Qwen2.5-Omni) pads every clip to 30 s and runs its STFT over all of it:
    for 2-s clips, 93% of the feature time went into silence. The valid frames are the same either way (the
    padding is zeros; the extra FFT window keeps the last valid frame's neighbourhood zero, as with 30 s; the
    log-mel floor is set by the maximum, which silence never raises), and the model reads only the frames
    the attention mask marks valid (tests/unit/modalities/test_audio_window.py checks both).
    """
    need = ("n_samples", "n_fft", "hop_length")
    if extractor is None or not all(isinstance(getattr(extractor, k, None), int) for k in need):
        return {}
    longest = max(len(a) for a in audios)
    hop = extractor.hop_length
    window = -(-(longest + extractor.n_fft) // hop) * hop
    if window >= extractor.n_samples:
        return {}  # as long as the extractor's own window: keep its behaviour (and its cut at 30 s)
    return {"padding": "max_length", "max_length": window}


def _waveform(audio: Any, processor: Any, sample_id: Any) -> Any:
    # Whisper-style extractors cut every clip to a fixed window without a word; the audio adapter refuses.
    if hasattr(audio, "waveform") and hasattr(audio, "source"):
        from mmreason.modalities.audio import audio_for_processor

        return audio_for_processor(audio, getattr(processor, "feature_extractor", None), sample_id=sample_id)
    return getattr(audio, "waveform", audio)


def _truncate(batch: dict[str, Any], max_length: int) -> dict[str, Any]:
    length = batch["input_ids"].shape[1]
    rows = batch["input_ids"].shape[0]
    return {k: (v[:, :max_length] if getattr(v, "ndim", 0) == 2 and tuple(v.shape) == (rows, length) else v)
            for k, v in batch.items()}


# ------------------------------------------------------------------------------------------ labels
_MARKERS: "weakref.WeakKeyDictionary[Any, tuple[list[int], int]]" = weakref.WeakKeyDictionary()


def assistant_markers(processor: Any) -> tuple[list[int], int]:
    """(header ids, end id) of an assistant turn, read off the chat template itself.

    The header is what the template writes before an assistant's words that is also its generation
    prompt (``<|im_start|>assistant\\n`` in ChatML); the end is the first token after them (``<|im_end|>``).
    """
    if processor not in _MARKERS:
        tok = getattr(processor, "tokenizer", processor)
        sentinel = "MMREASONSENTINEL"
        user = [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
        turn = user + [{"role": "assistant", "content": [{"type": "text", "text": sentinel}]}]
        base = processor.apply_chat_template(user, tokenize=False)
        prompt = processor.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
        full = processor.apply_chat_template(turn, tokenize=False)
        if not (prompt.startswith(base) and full.startswith(base) and sentinel in full):
            raise ValueError("cannot locate assistant turns in this chat template")
        gen, rendered = prompt[len(base):], full[len(base):]
        at = rendered.index(sentinel)
        header = os.path.commonprefix([gen, rendered[:at]])
        end_ids = tok(rendered[at + len(sentinel):], add_special_tokens=False).input_ids
        header_ids = tok(header, add_special_tokens=False).input_ids
        if not header_ids or not end_ids:
            raise ValueError("the chat template has no assistant header or end marker")
        _MARKERS[processor] = (header_ids, end_ids[0])
    return _MARKERS[processor]


def assistant_labels(input_ids: Any, attention_mask: Any, processor: Any, *, ids: Sequence[Any] | None = None,
                     n_assistant: Sequence[int] | None = None) -> Any:
    """Labels that train on assistant tokens only (their words and end token); every other position,
    tool observations, system and user turns, padding and media placeholders included, is -100."""
    header, end = assistant_markers(processor)
    labels = input_ids.new_full(input_ids.shape, IGNORE_INDEX)
    h = len(header)
    for b in range(input_ids.shape[0]):
        seq = input_ids[b].tolist()
        valid = attention_mask[b].tolist()
        found, i = 0, 0
        while i <= len(seq) - h:
            if seq[i:i + h] == header and valid[i]:
                start = i + h
                stop = start
                while stop < len(seq) and valid[stop] and seq[stop] != end:
                    stop += 1
                stop = stop + 1 if stop < len(seq) and valid[stop] else stop  # learn to stop
                labels[b, start:stop] = input_ids[b, start:stop]
                found += 1
                i = stop
            else:
                i += 1
        if n_assistant is not None and found == 0 and n_assistant[b] > 0:
            who = ids[b] if ids is not None else b
            raise ValueError(f"sample {who!r}: no assistant turn left in the tokens (cut by max_length?); "
                             "its labels would be empty")
    media = set()
    for token in ("image_token_id", "video_token_id", "audio_token_id"):
        tid = getattr(processor, token, None)
        if isinstance(tid, int):
            media.add(tid)
    if media:
        import torch

        labels[torch.isin(input_ids, torch.tensor(sorted(media)))] = IGNORE_INDEX
    return labels
