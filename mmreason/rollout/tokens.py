"""Token bookkeeping of multi-turn rollouts: observation turns, trajectories, masks, steps, batches.

A trajectory is ``prompt_ids + completion_ids``; the completion interleaves what the policy generated
(kept exactly as sampled: never decoded and re-encoded, since re-tokenisation drift breaks the policy
ratio) with observation turns, tokenised on their own by the processor so image placeholders are expanded
and pixel tensors made. The observation layout is the ChatML one every family here uses, with the
family's own vision markers (DeepEyes' layout; Qwen3-VL's template renders a ``tool`` message the same):

    <|im_end|>\\n<|im_start|>user\\n<tool_response>\\n{<|vision_start|><|image_pad|><|vision_end|> per image}
    {<|vision_start|><|video_pad|><|vision_end|> per clip}{text}\\n</tool_response><|im_end|>\\n<|im_start|>assistant\\n

or, with ``role="user"`` (Video-CoM's release shows what a manipulation returns as a plain user turn; every
family's template renders a user message so), the same without the ``<tool_response>`` wrapper:

    <|im_end|>\\n<|im_start|>user\\n{media}{text}<|im_end|>\\n<|im_start|>assistant\\n

`loss_mask` is 1 on generated tokens and 0 on observation tokens (context, not actions). The decoded
``completion`` string (what rewards receive) is, per step, the assistant text (decoded without dropping
special tokens; a final end-of-turn token adds no text) followed by the observation text exactly as above,
i.e. ONE ``vision_start + image_pad + vision_end`` marker per returned image (not the expanded run), so
DeepEyes' reward counts returned images in it. Every completion token has a character span in that string
(an observation's tokens all span the whole observation), so a step reward's character span (ViRL, Video-CoM)
maps to tokens: `Trajectory.char_span_to_tokens`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from mmreason.families import Family, as_family
from mmreason.rl import StepSegment

TURN_END = "<|im_end|>\n"
USER_HEADER = "<|im_start|>user\n"
ASSISTANT_HEADER = "<|im_start|>assistant\n"
FORWARD_KEYS = ("input_ids", "attention_mask")  # plus every vision tensor
# Token-aligned processor outputs: kept per token, not concatenated like pixel tensors. Qwen2/2.5/3-VL need
# `mm_token_type_ids` (0 text, 1 image, 2 video) to place vision tokens in mRoPE; without it they fall
# back to text positions silently.
TOKEN_TYPES = "mm_token_type_ids"
_TOKEN_ALIGNED = (*FORWARD_KEYS, TOKEN_TYPES, "token_type_ids")


OBSERVATION_ROLES = ("tool", "user")


def observation_text(family: str | Family, text: str, *, images: int = 0, videos: int = 0, role: str = "tool") -> str:
    """The observation turn as written before the processor expands its placeholders: a tool response
    (``role="tool"``) or a plain user turn (``role="user"``).

    >>> observation_text("qwen2_5_vl", "Zoomed in.", images=1).splitlines()[2:5]
    ['<tool_response>', '<|vision_start|><|image_pad|><|vision_end|>Zoomed in.', '</tool_response><|im_end|>']
    >>> observation_text("qwen2_5_vl", "Go on.", images=1, role="user").splitlines()[1:3]
    ['<|im_start|>user', '<|vision_start|><|image_pad|><|vision_end|>Go on.<|im_end|>']
    """
    if role not in OBSERVATION_ROLES:
        raise ValueError(f"observation role must be one of {OBSERVATION_ROLES}, got {role!r}")
    fam = as_family(family)
    media = (fam.vision_start + fam.image_token + fam.vision_end) * images
    media += (fam.vision_start + fam.video_token + fam.vision_end) * videos
    if role == "user":
        return f"{TURN_END}{USER_HEADER}{media}{text}{TURN_END}{ASSISTANT_HEADER}"
    return f"{TURN_END}{USER_HEADER}<tool_response>\n{media}{text}\n</tool_response>{TURN_END}{ASSISTANT_HEADER}"


@dataclass(frozen=True)
class Segment:
    """Processor output for one observation (or a prompt): token ids, the text they came from, vision
    tensors (``pixel_values``, ``image_grid_thw``, ...), and the pictures/clips for engines that take raw media."""

    ids: tuple[int, ...]
    text: str
    vision: Mapping[str, Any]
    images: tuple[Any, ...] = ()  # PIL images, in order
    videos: tuple[Any, ...] = ()  # LoadedVideo, in order
    token_types: tuple[int, ...] | None = None  # `mm_token_type_ids` per token, for families that use them

    @classmethod
    def from_processor(cls, out: Mapping[str, Any], text: str, images: Sequence[Any] = (),
                       videos: Sequence[Any] = ()) -> "Segment":
        """From a one-row processor (or collator) output, unpadded."""
        types = out.get(TOKEN_TYPES)
        return cls(tuple(out["input_ids"][0].tolist()), text,
                   {k: v for k, v in out.items() if k not in _TOKEN_ALIGNED and k not in ("ids", "frames")},
                   tuple(images), tuple(videos), None if types is None else tuple(int(t) for t in types[0].tolist()))


def processor_call(processor: Any, family: str | Family, text: str, images: Sequence[Any] = (),
                   videos: Sequence[Any] = ()) -> dict:
    """The processor on one text with already-sized pictures (`LoadedImage`) and clips (`LoadedVideo`):
    no resizing or re-sampling, video timing from the clip's frame record (as the collator calls it)."""
    from mmreason.modalities.collate import per_clip_seconds, sized_media_kwargs

    kwargs = sized_media_kwargs(processor, [im.image for im in images], videos)
    return per_clip_seconds(dict(processor(text=[text], return_tensors="pt", **kwargs)), videos, family)


def encode_observation(observation: Any, processor: Any, family: str | Family, *, role: str = "tool") -> Segment:
    """Tokenise an `Observation` as the next turn (layout `role`): placeholders expanded, pixel tensors produced."""
    text = observation_text(family, observation.text, images=len(observation.images), videos=len(observation.videos),
                            role=role)
    out = processor_call(processor, family, text, observation.images, observation.videos)
    return Segment.from_processor(out, text, [im.image for im in observation.images], observation.videos)


def decode_with_offsets(tokenizer: Any, ids: Sequence[int]) -> tuple[str, list[int]]:
    """(text of `ids`, end character of each token in it), special tokens kept.

    Fast path: every token decoded on its own in one batched call, when the pieces concatenate to the
    whole (plain text does). Otherwise token by token in a sliding window (a token that ends inside a
    UTF-8 character contributes nothing until the one completing it), checked against the whole, with a
    quadratic fallback for tokenizers whose pieces never concatenate.
    """
    def dec(part: Sequence[int]) -> str:
        return tokenizer.decode(list(part), skip_special_tokens=False, clean_up_tokenization_spaces=False)

    full = dec(ids)
    pieces = tokenizer.batch_decode([[int(t)] for t in ids], skip_special_tokens=False,
                                    clean_up_tokenization_spaces=False) if len(ids) else []
    if "".join(pieces) == full:
        ends, total = [], 0
        for piece in pieces:
            total += len(piece)
            ends.append(total)
        return full, ends
    text, ends, start = "", [], 0
    for k in range(len(ids)):
        piece = dec(ids[start:k + 1])
        if piece.endswith("\ufffd") and k + 1 < len(ids):
            ends.append(len(text))
            continue
        text += piece
        start = k + 1
        ends.append(len(text))
    if full != text:  # a tokenizer whose pieces do not concatenate (e.g. space clean-up)
        ends = []
        for k in range(len(ids)):
            ends.append(max(len(dec(ids[:k + 1])), ends[-1] if ends else 0))
        ends = [min(e, len(full)) for e in ends]
    return full, ends


# ----------------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Step:
    """One assistant turn: its tokens ``[start, end)`` in the completion ids, its characters in the
    completion text, how generation ended ("eos", "stop" string, "length"), the tool call that was run
    (the turn's last, as DeepEyes runs it) and what came back, and where that observation sits."""

    index: int
    tokens: tuple[int, int]
    chars: tuple[int, int]
    text: str
    finish: str
    call: Any = None  # traces.ToolCall, or rollout.ManipulationCall for a Video-CoM line
    observation: Any = None  # tools.Observation, None when nothing was run or shown
    observation_tokens: tuple[int, int] | None = None
    observation_chars: tuple[int, int] | None = None


@dataclass(frozen=True)
class Trajectory:
    """One rollout. `vision` lists the processor tensors of the prompt, then of each observation, in
    sequence order; `vision_inputs()` concatenates them for one forward over the whole sequence."""

    index: int
    group: int  # the prompt row it came from
    sample_id: str
    prompt_ids: tuple[int, ...]
    completion_ids: tuple[int, ...]
    loss_mask: tuple[int, ...]
    steps: tuple[Step, ...]
    completion: str
    stop_reason: str
    num_tool_calls: int
    num_images_returned: int
    num_videos_returned: int
    vision: tuple[Mapping[str, Any], ...]
    char_starts: tuple[int, ...] = field(repr=False, default=())
    char_ends: tuple[int, ...] = field(repr=False, default=())
    frames: Any = None  # the prompt's SampleFrames (maps boxes back to the source)
    token_types: tuple[int, ...] | None = field(repr=False, default=None)  # prompt + completion, when used

    @property
    def tool_calls(self) -> list:
        return [s.call for s in self.steps if s.call is not None]

    @property
    def observations(self) -> list:
        return [s.observation for s in self.steps if s.observation is not None]

    def vision_inputs(self) -> dict[str, Any]:
        return concat_vision(self.vision)

    def char_span_to_tokens(self, start: int, end: int) -> tuple[int, int] | None:
        """Completion tokens ``[a, b)`` covering characters ``[start, end)`` of `completion`, or None."""
        hits = [k for k, (s, e) in enumerate(zip(self.char_starts, self.char_ends))
                if (s < end and e > start) or (s == e and start <= s < end)]
        return (hits[0], hits[-1] + 1) if hits else None


# Inputs whose values are row numbers of another input of the same segment: the spatial model's map from
# each image token to its scene (`mmreason.models.spatial`). Joining segments shifts them past the rows of
# the segments before, so every token still points at its own scene.
ROW_INDEX_KEYS = {"spatial_token_scene": "spatial_scene"}
# audio inputs whose last axis is frames, padded per processor call to that call's longest clip
FRAME_KEYS = ("input_features", "feature_attention_mask")


def concat_vision(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Concatenate processor vision outputs along their first axis, in order (tensors or lists); a
    `ROW_INDEX_KEYS` input is shifted by the rows its target has in the parts before it.

    >>> import torch
    >>> one = {"spatial_scene": torch.zeros(1, 4, 6), "spatial_token_scene": torch.tensor([0, 0])}
    >>> concat_vision([one, one])["spatial_token_scene"].tolist()
    [0, 0, 1, 1]
    """
    import torch

    out: dict[str, Any] = {}
    for key in dict.fromkeys(k for part in parts for k in part):
        values = [p[key] for p in parts if p.get(key) is not None]
        if not values:
            continue
        if key in ROW_INDEX_KEYS:
            values = _shifted(parts, key, ROW_INDEX_KEYS[key])
        if all(isinstance(v, torch.Tensor) for v in values):
            if key in FRAME_KEYS:
                values = _to_widest(values)
            out[key] = torch.cat(values, dim=0)
        else:
            out[key] = [x for v in values for x in (v.tolist() if isinstance(v, torch.Tensor) else v)]
    return out


def _to_widest(values: Sequence[Any]) -> list[Any]:
    """Audio features (and their masks) of clips collated apart, zero-padded on the frame axis to the widest:
    each call pads its clips to its own longest one (`mmreason.modalities.collate._padded_window`), and the
    model reads only the frames the mask marks valid."""
    import torch.nn.functional as F

    widest = max(v.shape[-1] for v in values)
    return [F.pad(v, (0, widest - v.shape[-1])) if v.shape[-1] < widest else v for v in values]


def _shifted(parts: Sequence[Mapping[str, Any]], key: str, target: str) -> list[Any]:
    """Each part's `key` values plus the rows of `target` in the parts before it."""
    values, rows = [], 0
    for part in parts:
        if part.get(key) is not None:
            if part.get(target) is None:
                raise ValueError(f"vision inputs: {key!r} indexes {target!r}, which a segment lacks")
            values.append(part[key] + rows)
        if part.get(target) is not None:
            rows += len(part[target])
    return values


class TrajectoryBuilder:
    """Grows one trajectory turn by turn; the rollout loop drives it, the tests drive it directly."""

    def __init__(self, index: int, group: int, sample_id: str, prompt: Segment, *, frames: Any = None,
                 vision_extras: Any = None):
        self.index, self.group, self.sample_id, self.prompt, self.frames = index, group, sample_id, prompt, frames
        self.vision_extras = vision_extras  # what the rollout adds to an observation's pictures (rollout.loop)
        self.ids: list[int] = []
        self.mask: list[int] = []
        self.text: list[str] = []
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.steps: list[Step] = []
        self.vision: list[Mapping[str, Any]] = [prompt.vision]
        self.images: list[Any] = list(prompt.images)
        self.videos: list[Any] = list(prompt.videos)
        self.types: list[int] | None = None if prompt.token_types is None else list(prompt.token_types)
        self.calls = self.images_returned = self.videos_returned = 0
        self._turn: dict | None = None

    @property
    def chars(self) -> int:
        return self.ends[-1] if self.ends else 0

    @property
    def input_ids(self) -> list[int]:
        return list(self.prompt.ids) + self.ids

    @property
    def media_count(self) -> int:
        """Pictures and clips in the sequence so far (the prompt's included)."""
        return len(self.images) + len(self.videos)

    def add_turn(self, ids: Sequence[int], finish: str, tokenizer: Any, eos_ids: Sequence[int] = ()) -> str:
        """Append generated tokens (loss mask 1); returns the turn's text."""
        if self._turn is not None:
            raise RuntimeError("close the previous turn before adding another")
        ids = [int(t) for t in ids]
        texted = ids[:-1] if ids and finish == "eos" and ids[-1] in set(eos_ids) else ids
        text, ends = decode_with_offsets(tokenizer, texted)
        ends += [len(text)] * (len(ids) - len(texted))  # an end-of-turn token adds no text
        base, first = self.chars, len(self.ids)
        self.starts += [base + (ends[k - 1] if k else 0) for k in range(len(ends))]
        self.ends += [base + e for e in ends]
        self.ids += ids
        self.mask += [1] * len(ids)
        if self.types is not None:
            self.types += [0] * len(ids)  # generated tokens are text: placeholders are never sampled
        self.text.append(text)
        self._turn = {"index": len(self.steps), "tokens": (first, len(self.ids)), "chars": (base, base + len(text)),
                      "text": text, "finish": finish}
        return text

    def close_turn(self, call: Any = None, observation: Any = None, segment: Segment | None = None) -> Step:
        """End the open turn, appending `observation` (loss mask 0) when its `segment` is given."""
        if self._turn is None:
            raise RuntimeError("no open turn")
        turn, self._turn = self._turn, None
        if call is not None:
            self.calls += 1
        obs_tokens = obs_chars = None
        if segment is not None:
            base, first = self.chars, len(self.ids)
            self.ids += segment.ids
            self.mask += [0] * len(segment.ids)
            if self.types is not None:
                self.types += segment.token_types if segment.token_types is not None else [0] * len(segment.ids)
            self.text.append(segment.text)
            self.starts += [base] * len(segment.ids)
            self.ends += [base + len(segment.text)] * len(segment.ids)
            self.vision.append(segment.vision)
            self.images += segment.images
            self.videos += segment.videos
            self.images_returned += len(segment.images)
            self.videos_returned += len(segment.videos)
            obs_tokens, obs_chars = (first, len(self.ids)), (base, base + len(segment.text))
        step = Step(turn["index"], turn["tokens"], turn["chars"], turn["text"], turn["finish"], call,
                    observation if segment is not None else None, obs_tokens, obs_chars)
        self.steps.append(step)
        return step

    def finish(self, reason: str) -> Trajectory:
        if self._turn is not None:
            self.close_turn()
        return Trajectory(
            self.index, self.group, self.sample_id, tuple(self.prompt.ids), tuple(self.ids), tuple(self.mask),
            tuple(self.steps), "".join(self.text), reason, self.calls, self.images_returned, self.videos_returned,
            tuple(self.vision), tuple(self.starts), tuple(self.ends), self.frames,
            None if self.types is None else tuple(self.types),
        )


# ------------------------------------------------------------------------------------ for training
def step_token_segments(traj: Trajectory, rewards: Sequence[float] | None = None) -> list[StepSegment]:
    """Each assistant turn's completion tokens as a `rl.StepSegment` (reward 0 unless `rewards` gives one
    per step), for `rl.token_advantages`."""
    if rewards is not None and len(rewards) != len(traj.steps):
        raise ValueError(f"{len(rewards)} step rewards for {len(traj.steps)} steps of trajectory {traj.index}")
    return [StepSegment(s.tokens[0], s.tokens[1], float(rewards[i]) if rewards is not None else 0.0)
            for i, s in enumerate(traj.steps)]


def segments_from_char_spans(traj: Trajectory, spans: Sequence[tuple[int, int, float]]) -> list[StepSegment]:
    """Step rewards given on character spans of the completion (ViRL's `StepScore.start/end`) -> token
    segments; a span that covers no token is dropped."""
    out = []
    for start, end, reward in spans:
        tokens = traj.char_span_to_tokens(int(start), int(end))
        if tokens is not None:
            out.append(StepSegment(tokens[0], tokens[1], float(reward)))
    return out


def collate_trajectories(trajs: Sequence[Trajectory], pad_token_id: int) -> dict[str, Any]:
    """A training batch for ONE forward over every whole sequence.

    Right-padded ``input_ids``/``attention_mask`` (B, L) of prompt + completion, ``completion_mask`` (B, L)
    with 1 on generated tokens, ``prompt_lengths`` (B,), and a completion-aligned view: ``completion_ids``,
    ``completion_loss_mask`` and ``completion_index`` (B, T), where ``completion_index[b, j]`` is the
    position in ``input_ids`` of completion token j (the logits predicting it sit one position earlier).
    The vision tensors of all trajectories are concatenated in order. `model_inputs` picks what the model takes.
    """
    import torch

    if not trajs:
        raise ValueError("no trajectories to collate")
    full = [list(t.prompt_ids) + list(t.completion_ids) for t in trajs]
    length = max(len(s) for s in full)
    width = max(1, max(len(t.completion_ids) for t in trajs))
    batch = len(trajs)
    input_ids = torch.full((batch, length), int(pad_token_id), dtype=torch.long)
    attention = torch.zeros((batch, length), dtype=torch.long)
    mask = torch.zeros((batch, length), dtype=torch.long)
    comp_ids = torch.full((batch, width), int(pad_token_id), dtype=torch.long)
    comp_mask = torch.zeros((batch, width), dtype=torch.long)
    comp_index = torch.zeros((batch, width), dtype=torch.long)
    for b, (t, seq) in enumerate(zip(trajs, full)):
        p, c = len(t.prompt_ids), len(t.completion_ids)
        input_ids[b, :len(seq)] = torch.tensor(seq, dtype=torch.long)
        attention[b, :len(seq)] = 1
        mask[b, p:p + c] = torch.tensor(t.loss_mask, dtype=torch.long)
        comp_ids[b, :c] = torch.tensor(t.completion_ids, dtype=torch.long)
        comp_mask[b, :c] = torch.tensor(t.loss_mask, dtype=torch.long)
        comp_index[b] = torch.clamp(torch.arange(width) + p, max=len(seq) - 1)
    if all(t.token_types is not None for t in trajs):
        types = torch.zeros((batch, length), dtype=torch.long)
        for b, t in enumerate(trajs):
            types[b, :len(t.token_types)] = torch.tensor(t.token_types, dtype=torch.long)
    out = {"input_ids": input_ids, "attention_mask": attention, "completion_mask": mask,
           "prompt_lengths": torch.tensor([len(t.prompt_ids) for t in trajs], dtype=torch.long),
           "completion_ids": comp_ids, "completion_loss_mask": comp_mask, "completion_index": comp_index}
    out.update(concat_vision([v for t in trajs for v in t.vision]))
    if all(t.token_types is not None for t in trajs):
        out[TOKEN_TYPES] = types
    return out


_NOT_FOR_MODEL = ("completion_mask", "prompt_lengths", "completion_ids", "completion_loss_mask", "completion_index")


def model_inputs(batch: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a `collate_trajectories` batch a model's forward takes."""
    return {k: v for k, v in batch.items() if k not in _NOT_FOR_MODEL}
