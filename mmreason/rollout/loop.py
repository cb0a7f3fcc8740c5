"""The rollout loop: generate every trajectory's turn in one batch, parse the call, run it, show the result.

    trajs = rollout(model, processor, rows, "qwen2_5_vl", group_size=4, root=data_dir,
                    config=RolloutConfig(tools=("image_zoom_in",), max_turns=5))
    batch = collate_trajectories(trajs, processor.tokenizer.pad_token_id)   # one forward, every sequence

For rows x `group_size` trajectories at once (grouped contiguously, as `mmreason.rl` expects), each turn
generates for every trajectory still going, in one left-padded batch, until ``</tool_call>``,
``</answer>`` or an end-of-turn token; `traces.parse` reads the turn; a turn with an ``<answer>`` ends the
episode, a turn without a call ends it too, otherwise the turn's LAST call runs (DeepEyes' rule) in the
trajectory's own `ToolEnv` and its observation, pictures and clips included, becomes the next turn
(layout in `mmreason.rollout.tokens`). Stop reasons: "answer", "no_call", "max_turns" (the call of the
last allowed turn is not run), "max_tool_calls", "max_images" (pictures + clips in the sequence, prompt
included), "max_tokens" (per turn or for the whole completion). Generated ids are kept exactly; only
observations are tokenised. Vision placeholder tokens can never be generated.

Call syntaxes (`RolloutConfig.call_syntax`): ``"tool_call"`` (above) and ``"video_com"``, Video-CoM's text
protocol. There a turn ends at the end of its first manipulation line
(``FIND_SEGMENT(q) = [ids]``, ``FIND_FRAME(q) = [frames]``, ``SPATIAL_ZOOM(q) = [x1, y1, x2, y2]``, newline
included), at a ``FINAL_ANSWER: ...`` line, or at an end-of-turn token; ``FINAL_ANSWER:`` ends the episode
("answer"); otherwise the turn's LAST manipulation runs as video tools (`mmreason.rollout.video_com`:
segments -> ``clip_segment``, frames -> ``seek_frame``, a box -> ``zoom_frame`` on the
frame shown last) and what they return comes back as a plain user turn with the release's follow-up text; a
turn with no manipulation gets the release's "choose the final answer" turn and the episode goes on (as in
the release, which runs up to 5 rounds); an unreadable manipulation gets an ``Error: ...`` turn.

Generation runs through a backend (`mmreason.rollout.backends`): HF ``model.generate`` by default, or vLLM.
Each turn hands the backend every live trajectory's whole sequence, keyed by trajectory; the HF backend
keeps each trajectory's key/value cache across turns and encodes only what is new (`mmreason.rollout.cache`;
``backend=HFBackend(model, processor, family, cache=False)`` re-encodes every turn instead).

Inputs beside the processor's: a model that needs more per picture than pixels (GS-Reasoner's spatial
model, `mmreason.models.spatial`: each image token's 3D points and the scene's point cloud) has a
``vision_extras(row, vision)`` method, or the caller passes one as ``vision_extras``. It is called on the
prompt (the prompt's row, with its ``meta``) and on every observation that shows pictures (row None) with
that segment's processor tensors, and what it returns joins them: the generation of every turn and the
trainer's forward over the whole trajectory (`collate_trajectories`) then carry it, as they carry pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping, Sequence

from mmreason import traces
from mmreason.families import Family, as_family
from mmreason.rollout.backends import GenerationParams, HFBackend, RolloutBackend, TurnInput, VLLMBackend
from mmreason.rollout.tokens import (
    OBSERVATION_ROLES, Segment, Trajectory, TrajectoryBuilder, decode_with_offsets, encode_observation,
)
from mmreason.rollout.video_com import (
    FINAL_RE, STOP_LINES, VIDEO_COM_PROMPTS, VIDEO_COM_TOOLS, line_stop, read_manipulation, run_manipulation,
)
from mmreason.tools import Observation, ToolEnv, ToolSettings, resolve_tools, run_tool_call

__all__ = ["CALL_SYNTAXES", "RolloutConfig", "STOP_REASONS", "cut_turn", "prepare_prompt", "rollout"]

STOP_REASONS = ("answer", "no_call", "max_turns", "max_tool_calls", "max_images", "max_tokens")
CALL_SYNTAXES = ("tool_call", "video_com")
# Per syntax: (stop strings, stop-line patterns, observation turn role).
_SYNTAX_DEFAULTS = {"tool_call": (("</tool_call>", "</answer>"), (), "tool"),
                    "video_com": ((), STOP_LINES, "user")}
# (the prompt's row, or None for an observation; the segment's processor tensors) -> more model inputs
VisionExtras = Callable[[Mapping[str, Any] | None, Mapping[str, Any]], Mapping[str, Any]]


@dataclass(frozen=True)
class RolloutConfig:
    """Limits and sampling of a rollout. `tools` are the names the model may call (keys of `TOOLS` or specs);
    `max_new_tokens` caps one turn, `max_completion_tokens` the whole completion (observations included)."""

    tools: tuple[str, ...] = ()  # video_com: which of seek_frame, clip_segment, zoom_frame (empty: all three)
    max_turns: int = 5  # DeepEyes' released 7B script; Video-CoM's release also runs 5 rounds
    max_tool_calls: int = 4
    max_images: int = 32
    max_new_tokens: int = 512
    max_completion_tokens: int = 2048
    do_sample: bool = True
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int | None = None
    stop_strings: tuple[str, ...] | None = None  # None: the call syntax's ("</tool_call>", "</answer>"; none)
    seed: int | None = None  # seeds torch before the first turn; None keeps the caller's random state
    call_syntax: str = "tool_call"  # "tool_call" | "video_com" (module doc)
    observation_role: str | None = None  # "tool" | "user" turn layout (rollout.tokens); None: the syntax's

    def __post_init__(self) -> None:
        if min(self.max_turns, self.max_images, self.max_new_tokens, self.max_completion_tokens) < 1:
            raise ValueError("max_turns, max_images, max_new_tokens and max_completion_tokens must be >= 1")
        if self.max_tool_calls < 0 or (self.do_sample and not self.temperature > 0):
            raise ValueError("max_tool_calls must be >= 0 and a sampling temperature > 0")
        if self.call_syntax not in CALL_SYNTAXES:
            raise ValueError(f"call_syntax must be one of {CALL_SYNTAXES}, got {self.call_syntax!r}")
        if self.observation_role not in (None, *OBSERVATION_ROLES):
            raise ValueError(f"observation_role must be one of {OBSERVATION_ROLES} or None, "
                             f"got {self.observation_role!r}")
        extra = set(self.tools) - set(VIDEO_COM_TOOLS.values())
        if self.call_syntax == "video_com" and extra:
            raise ValueError(f"video_com runs its manipulations as {', '.join(VIDEO_COM_TOOLS.values())}; "
                             f"tools {sorted(extra)} cannot be called in it")

    @property
    def stops(self) -> tuple[str, ...]:
        """The stop strings in force."""
        return _SYNTAX_DEFAULTS[self.call_syntax][0] if self.stop_strings is None else tuple(self.stop_strings)

    @property
    def stop_lines(self) -> tuple[str, ...]:
        """Regexes: a turn ends after a complete line (its newline included) that one of them finds."""
        return _SYNTAX_DEFAULTS[self.call_syntax][1]

    @property
    def role(self) -> str:
        """The observation turn's layout."""
        return self.observation_role or _SYNTAX_DEFAULTS[self.call_syntax][2]

    @classmethod
    def from_recipe(cls, recipe: Any, **overrides: Any) -> "RolloutConfig":
        """From a recipe's ``tools`` and ``grpo`` sections (`mmreason.config.Recipe`)."""
        t, g = recipe.tools, getattr(recipe, "grpo", None)
        kw: dict[str, Any] = dict(tools=tuple(t.names), max_turns=t.max_turns, max_images=t.max_images,
                                  max_tool_calls=t.max_tool_calls, call_syntax=getattr(t, "call_syntax", "tool_call"))
        if g is not None:
            kw.update(max_new_tokens=g.max_completion_length, max_completion_tokens=g.max_completion_length,
                      temperature=g.temperature, top_p=g.top_p)
        return cls(**{**kw, **overrides})


# ------------------------------------------------------------------------------------------- prompts
def prepare_prompt(row: Mapping[str, Any], processor: Any, family: str | Family, *, root: Any = None,
                   media_options: Mapping[str, Mapping[str, Any]] | None = None,
                   tool_settings: ToolSettings | None = None,
                   vision_extras: VisionExtras | None = None) -> tuple[ToolEnv, Segment, Any]:
    """A row's prompt (its messages before the first assistant turn), tokenised by the collator, and the
    tool env over the same loaded media (loaded once): (env, prompt segment, the prompt's SampleFrames).
    `vision_extras` adds its inputs for the prompt to the segment's (module doc)."""
    from mmreason.modalities import load_sample_media, part_kind, row_messages
    from mmreason.modalities.collate import collate

    fam = as_family(family)
    messages = row_messages(row)
    first = next((i for i, m in enumerate(messages) if m["role"] == "assistant"), len(messages))
    prompt_row = {"id": row.get("id"), "messages": messages[:first]}
    media = load_sample_media(prompt_row, root, fam, options=media_options)
    for m, p, loaded in media.items:  # hand the collator what is loaded already
        part = dict(messages[m]["content"][p])
        part[part_kind(part)] = loaded
        messages[m]["content"][p] = part
    batch = collate([{"id": row.get("id"), "messages": messages[:first]}], processor, fam, mode="generate",
                    media_options=media_options)
    images, videos = _pictures(media, fam, media_options)
    env = ToolEnv.from_media(media, fam, settings=tool_settings, media_options=media_options)
    segment = Segment.from_processor(batch, "", images, videos)
    if vision_extras is not None:
        from mmreason.schema import resolve_media

        # the untouched prompt (the messages above now hold loaded media), paths made absolute
        asked = {"id": row.get("id"), "meta": row.get("meta") or {}, "messages": row_messages(row)[:first]}
        segment = _with_extras(segment, vision_extras(asked if root is None else resolve_media(asked, root),
                                                      segment.vision))
    return env, segment, batch["frames"][0]


def _with_extras(segment: Segment, extras: Mapping[str, Any]) -> Segment:
    return replace(segment, vision={**segment.vision, **extras}) if extras else segment


def _pictures(media: Any, fam: Family, media_options: Any) -> tuple[tuple, tuple]:
    """The prompt's pictures and clips in the order the collator feeds them (for engines like vLLM)."""
    from mmreason.modalities.image import LoadedImage, image_budget, load_image

    images, videos = [], []
    for _, _, loaded in media.items:
        for sub in (loaded.as_parts(fam) if hasattr(loaded, "as_parts") else []):
            if sub["type"] == "image":
                value = sub["image"]
                if not isinstance(value, LoadedImage):
                    lo, hi = image_budget(None, fam, (media_options or {}).get("image"))
                    value = load_image(value, fam, min_pixels=lo, max_pixels=hi)
                images.append(value.image)
            elif sub["type"] == "video":
                videos.append(sub["video"])
    return tuple(images), tuple(videos)


# ------------------------------------------------------------------------------------------ the loop
def cut_turn(ids: Sequence[int], tokenizer: Any, eos_ids: Sequence[int], stop_strings: Sequence[str],
             limit: int, stop_lines: Sequence[str] = ()) -> tuple[list[int], str]:
    """Generated ids -> (the turn's ids, how it ended): through the first end-of-turn token ("eos") or the
    token completing the first stop string or stop line ("stop"), at most `limit` tokens ("length")."""
    ids = [int(t) for t in ids]
    eos = set(eos_ids)
    end = next((k + 1 for k, t in enumerate(ids) if t in eos), None)
    head = ids[:end] if end is not None else ids
    text, ends = decode_with_offsets(tokenizer, head)
    hits = [text.find(s) + len(s) for s in stop_strings if s and s in text]
    line = line_stop(text, stop_lines) if stop_lines else None
    hits += [line] if line is not None else []
    if hits:
        at = min(hits)
        stop = next(k + 1 for k, e in enumerate(ends) if e >= at)
        if end is None or stop < end:
            return (ids[:stop], "stop") if stop <= limit else (ids[:limit], "length")
    if end is not None and end <= limit:
        return ids[:end], "eos"
    return ids[:limit], "length"


def _forced_ids(tokenizer: Any, forced: Mapping[int, str] | None, turn: int) -> list[int]:
    text = (forced or {}).get(turn)
    return tokenizer(text, add_special_tokens=False).input_ids if text else []


def rollout(
    model: Any, processor: Any, rows: Sequence[Mapping[str, Any]], family: str | Family, *,
    config: RolloutConfig | None = None, group_size: int = 1, root: Any = None,
    media_options: Mapping[str, Mapping[str, Any]] | None = None, tool_settings: ToolSettings | None = None,
    backend: RolloutBackend | None = None, forced: Mapping[int, str] | None = None,
    vision_extras: VisionExtras | None = None,
) -> list[Trajectory]:
    """Roll out `group_size` trajectories per row (rows x group, grouped contiguously); see the module doc.

    `forced` maps a turn index to text every trajectory's turn starts with (forced decoding: its tokens
    count as generated, loss mask 1). It is for tests and warm starts, e.g. a first turn that must call a
    tool on a model that does not yet do so. `vision_extras` defaults to the model's own method of that name.
    """
    import torch

    from mmreason.modalities.guards import placeholder_token_ids

    fam = as_family(family)
    config = config or RolloutConfig()
    if group_size < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size}")
    backend = backend or HFBackend(model, processor, fam)
    extras = vision_extras if vision_extras is not None else getattr(model, "vision_extras", None)
    if extras is not None and isinstance(backend, VLLMBackend):
        raise ValueError(f"{type(model).__name__} takes inputs beside the pictures (vision_extras) that a vLLM "
                         "engine cannot be given; roll it out with the HF backend (grpo.rollout_backend=hf)")
    tok = processor.tokenizer
    if config.call_syntax == "video_com":
        tools = resolve_tools(config.tools or tuple(VIDEO_COM_TOOLS.values()))
    else:
        tools = resolve_tools(config.tools) if config.tools else {}
    eos = tuple(_eos_ids(model, tok))
    forbidden = tuple(placeholder_token_ids(processor, fam))
    if config.seed is not None:
        torch.manual_seed(config.seed)
    builders: list[TrajectoryBuilder] = []
    envs: list[ToolEnv] = []
    for r, row in enumerate(rows):
        env, prompt, frames = prepare_prompt(row, processor, fam, root=root, media_options=media_options,
                                             tool_settings=tool_settings, vision_extras=extras)
        for _ in range(group_size):
            builders.append(TrajectoryBuilder(len(builders), r, str(row.get("id")), prompt, frames=frames,
                                              vision_extras=extras))
            envs.append(env.fork())
    release = getattr(backend, "release", None) or (lambda: None)
    release()  # a cache from an earlier rollout was made with other weights
    try:
        done = _turns(builders, envs, backend, config, tools, processor, fam, tok, eos, forbidden, forced)
    finally:
        release()
    return [done[i] for i in range(len(builders))]


def _turns(builders: list[TrajectoryBuilder], envs: list[ToolEnv], backend: RolloutBackend, config: RolloutConfig,
           tools: Mapping[str, Any], processor: Any, fam: Family, tok: Any, eos: tuple[int, ...],
           forbidden: tuple[int, ...], forced: Mapping[int, str] | None) -> dict[int, Trajectory]:
    """Every turn of every trajectory (module doc): the finished trajectories by index."""
    stops, lines = config.stops, config.stop_lines
    done: dict[int, Trajectory] = {}
    active = list(range(len(builders)))
    for turn in range(config.max_turns):
        if not active:
            break
        prefix = _forced_ids(tok, forced, turn)
        outputs: dict[int, list[int]] = {}
        todo: list[int] = []
        for i in active:
            room = min(config.max_new_tokens, config.max_completion_tokens - len(builders[i].ids))
            if prefix and (cut_turn(prefix, tok, eos, stops, room, lines)[1] != "length"
                           or len(prefix) >= room):
                outputs[i] = list(prefix)  # the forced text already ends the turn
            else:
                todo.append(i)
        if todo:
            budget = max(min(config.max_new_tokens, config.max_completion_tokens - len(builders[i].ids)) - len(prefix)
                         for i in todo)
            inputs = [_turn_input(builders[i], prefix) for i in todo]
            seeds = None if config.seed is None else tuple(config.seed * 1_000_003 + i * 7919 + turn for i in todo)
            params = GenerationParams(max(1, budget), config.do_sample, config.temperature, config.top_p, config.top_k,
                                      stops, eos, forbidden, seeds, stop_lines=lines)
            for i, new in zip(todo, backend.generate(inputs, params)):
                outputs[i] = list(prefix) + list(new)
        still = []
        for i in active:
            b = builders[i]
            room = min(config.max_new_tokens, config.max_completion_tokens - len(b.ids))
            ids, finish = cut_turn(outputs[i], tok, eos, stops, room, lines)
            step = _step_video_com if config.call_syntax == "video_com" else _step
            reason = step(b, envs[i], ids, finish, turn, config, tools, processor, fam, tok, eos)
            if reason is None:
                still.append(i)
            else:
                done[i] = b.finish(reason)
        active = still
    for i in active:
        done[i] = builders[i].finish("max_turns")
    return done


def _turn_input(b: TrajectoryBuilder, prefix: list[int]) -> TurnInput:
    types = None if b.types is None else tuple(b.types) + (0,) * len(prefix)
    return TurnInput(tuple(b.input_ids + prefix), tuple(b.vision), tuple(b.images), tuple(b.videos), types,
                     key=b.index)


def _step(b: TrajectoryBuilder, env: ToolEnv, ids: list[int], finish: str, turn: int, config: RolloutConfig,
          tools: Mapping[str, Any], processor: Any, fam: Family, tok: Any, eos: tuple[int, ...]) -> str | None:
    """Record one turn, run its call and show the result; the stop reason, or None to go on."""
    text = b.add_turn(ids, finish, tok, eos)
    trace = traces.parse(text)
    if finish == "length" or len(b.ids) >= config.max_completion_tokens:
        return "max_tokens"  # truncated, even mid-answer: trainers that mask truncated completions read this
    if trace.blocks_of("answer"):
        return "answer"
    if not trace.tool_calls:
        return "no_call"
    if turn + 1 >= config.max_turns:
        return "max_turns"
    if b.calls >= config.max_tool_calls:
        return "max_tool_calls"
    call = trace.tool_calls[-1]
    return _show(b, call, run_tool_call(call, env, tools=tools), config, processor, fam)


def _show(b: TrajectoryBuilder, call: Any, observation: Observation, config: RolloutConfig, processor: Any,
          fam: Family) -> str | None:
    """Close the turn with `observation` as the next turn, unless it breaks a limit (then the stop reason)."""
    segment = encode_observation(observation, processor, fam, role=config.role)
    if b.vision_extras is not None and (segment.images or segment.videos):
        segment = _with_extras(segment, b.vision_extras(None, segment.vision))
    if b.media_count + len(segment.images) + len(segment.videos) > config.max_images:
        b.close_turn(call, observation)
        return "max_images"
    if len(b.ids) + len(segment.ids) >= config.max_completion_tokens:
        b.close_turn(call, observation)
        return "max_tokens"
    b.close_turn(call, observation, segment)
    return None


def _step_video_com(b: TrajectoryBuilder, env: ToolEnv, ids: list[int], finish: str, turn: int,
                    config: RolloutConfig, tools: Mapping[str, Any], processor: Any, fam: Family, tok: Any,
                    eos: tuple[int, ...]) -> str | None:
    """`_step` for Video-CoM's text protocol (module doc)."""
    text = b.add_turn(ids, finish, tok, eos)
    if finish == "length" or len(b.ids) >= config.max_completion_tokens:
        return "max_tokens"
    if FINAL_RE.search(text):
        return "answer"
    if turn + 1 >= config.max_turns:
        return "max_turns"
    call = read_manipulation(text)
    if call is None:  # the release's follow-up when a round writes no manipulation
        return _show(b, None, Observation(VIDEO_COM_PROMPTS[None]), config, processor, fam)
    if b.calls >= config.max_tool_calls:
        return "max_tool_calls"
    return _show(b, call, run_manipulation(call, env, tools), config, processor, fam)


def _eos_ids(model: Any, tokenizer: Any) -> list[int]:
    """End-of-turn ids: the model's generation config, else the tokenizer's eos."""
    ids = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = [ids] if isinstance(ids, int) else list(ids or [])
    if not ids and tokenizer.eos_token_id is not None:
        ids = [tokenizer.eos_token_id]
    if not ids:
        raise ValueError("no end-of-turn token: set generation_config.eos_token_id")
    return ids
