"""An eval run's settings (`Setup`): generation, pixel budgets (the user's flags, the task's pins, the
checkpoint processor's saved budget, the family's), video segments, judge and coordinate readings; and
the batch loop every kind of evaluated model generates through (`in_batches`)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from mmreason.errors import RecipeError
from mmreason.eval.coord_readings import coordinate_readings
from mmreason.eval.tasks import Task


@dataclass(frozen=True)
class Generation:
    """Decoding settings: greedy, as every reference protocol here evaluates."""

    max_new_tokens: int
    max_turns: int
    batch_size: int = 4
    seed: int = 0
    do_sample: bool = False


@dataclass(frozen=True)
class Setup:
    """Everything that decides a score besides the model and the data; written to results.json."""

    task: str
    family: str
    media: Mapping[str, Mapping[str, Any]]
    generation: Generation
    judge: Mapping[str, Any] | None = None
    image_budget: tuple[int, int] = (0, 0)
    limit: int | None = None
    segment_seconds: float | None = None  # numbered video segments the tools cut (Video-CoM)
    extra: Mapping[str, Any] = field(default_factory=dict)
    coord_frame: str | None = None  # --coord-frame: the reading of the outputs' coordinates, pinned
    readings: tuple[str, ...] = ()  # other readings scored beside the declared one (`coordinate_readings`)


def in_batches(prompts: Sequence[Mapping[str, Any]], setup: Setup,
               run_batch: Callable[[Sequence[Mapping[str, Any]]], list[dict]], *, progress: bool = True,
               on_batch: Callable[[list[dict]], None] | None = None) -> list[dict]:
    """`run_batch`'s outputs over `prompts` cut into batches of the run's batch size, in order, with a
    progress bar on stderr; `on_batch` gets each batch's outputs as soon as they exist (the runner scores
    and records them, so a run stopped midway keeps what it has)."""
    from tqdm.auto import tqdm

    size = setup.generation.batch_size
    out: list[dict] = []
    with tqdm(total=len(prompts), desc=setup.task, unit="sample", disable=not progress, file=sys.stderr) as bar:
        for start in range(0, len(prompts), size):
            done = run_batch(prompts[start:start + size])
            if on_batch is not None:
                on_batch(done)
            out += done
            bar.update(len(done))
    return out


def segment_seconds(rows: Sequence[Mapping[str, Any]], given: float | None) -> float | None:
    """The segment length video tools use: `given`, else the one the rows' ``meta.segments`` (``[[k, start,
    end], ...]``, as the video builder writes them) agree on, else None (segments undefined)."""
    if given is not None:
        return given
    lengths = set()
    for row in rows:
        segments = (row.get("meta") or {}).get("segments") or []
        if segments and len(segments[0]) == 3:
            lengths.add(round(float(segments[0][2]) - float(segments[0][1]), 6))
    if len(lengths) > 1:
        raise RecipeError(f"the rows' video segments differ in length ({sorted(lengths)} s): "
                          "pass --segment-seconds")
    return lengths.pop() if lengths else None


def checkpoint_image_budget(path: str | Path, kind: str = "image") -> dict[str, int]:
    """The pixel budget saved with a checkpoint's processor for `kind` ("image", or "video": per frame), as
    far as it records one ({} if none).

    Transformers writes it as ``min_pixels``/``max_pixels`` or as ``size: {shortest_edge, longest_edge}``
    (pixel counts for the Qwen-VL processors), in ``preprocessor_config.json`` (``video_preprocessor_
    config.json``) or under ``image_processor`` (``video_processor``) in ``processor_config.json``.
    """
    own = "preprocessor_config.json" if kind == "image" else f"{kind}_preprocessor_config.json"
    for name, section in ((own, None), ("processor_config.json", f"{kind}_processor")):
        try:
            config = json.loads((Path(path) / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        config = config.get(section) if section and isinstance(config, dict) else config
        if not isinstance(config, dict):
            continue
        size = config.get("size") if isinstance(config.get("size"), dict) else {}
        out = {}
        for key, edge in (("min_pixels", "shortest_edge"), ("max_pixels", "longest_edge")):
            value = config.get(key, size.get(key, size.get(edge)))
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
                out[key] = int(value)
        if out:
            return out
    return {}


def checkpoint_budgets(path: str | Path) -> dict[str, dict[str, int]]:
    """The image and video budgets a checkpoint's processor was saved with (`checkpoint_image_budget`)."""
    return {kind: checkpoint_image_budget(path, kind) for kind in ("image", "video")}


def _fill_saved(media: dict, kind: str, saved: Mapping[str, int]) -> None:
    """Add the saved budget keys `media[kind]` does not pin; a saved bound that would cross a given one is
    left out (the given bound wins)."""
    extra = {k: v for k, v in saved.items() if k not in media.get(kind, {})}
    if extra:
        part = media.setdefault(kind, {})
        part.update(extra)
        if part.get("min_pixels", 0) > part.get("max_pixels", float("inf")):
            del part[next(iter(extra))]


def make_setup(task: Task, task_name: str, family: str, args: argparse.Namespace,
               rows: Sequence[Mapping[str, Any]] = (),
               checkpoint: Mapping[str, Mapping[str, int]] | None = None) -> Setup:
    """The run's settings. Image budget, per key: the user's flag, else the task's pin, else `checkpoint`
    (the budget the model's processor was saved with: a tiny model's is 256 tokens, where the family's
    released default would feed it 16k), else the family's. Video frames (when the rows hold videos): the
    task's pin, else the checkpoint's saved video budget, else the family's."""
    from mmreason.modalities.image import image_budget
    from mmreason.schema import media_parts

    media = {k: dict(v) for k, v in task.media.items()}
    for key in ("min_pixels", "max_pixels"):
        if getattr(args, key) is not None:
            media.setdefault("image", {})[key] = getattr(args, key)
    saved = checkpoint or {}
    _fill_saved(media, "image", saved.get("image") or {})
    if any(kind == "video" for row in rows for kind, _ in media_parts(row)):
        _fill_saved(media, "video", saved.get("video") or {})
    if args.fps is not None:
        media.setdefault("video", {}).pop("nframes", None)
        media["video"]["fps"] = args.fps
    judge = json.loads(args.judge) if args.judge else None
    gen = Generation(max_new_tokens=args.max_new_tokens or task.max_new_tokens,
                     max_turns=args.max_turns or task.max_turns, batch_size=args.batch_size, seed=args.seed)
    try:
        budget = image_budget(None, family, media.get("image"))
    except ValueError as exc:
        raise RecipeError(f"pixel budget: {exc}") from None
    pinned = getattr(args, "coord_frame", None)
    return Setup(task_name, family, media, gen, judge, budget, args.limit,
                 segment_seconds(rows, args.segment_seconds) if task.call_syntax == "video_com" else None,
                 coord_frame=pinned, readings=coordinate_readings(task, family, pinned))
