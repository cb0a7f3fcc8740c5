"""Procedural image scenes with exact boxes: attribute, count, relation, text, chart and "find the small thing".

Each sample draws one scene with PIL (shapes, icons, words, bar and pie charts, or a large cluttered
V*-like canvas with a target of 1-2 % of the side), asks one question whose answer follows from the
drawing, and records the evidence: GT ``boxes`` (what the answer is about), ``rationale_regions`` (where
to look) and grounded CoT targets for GRIT, DeepEyes and ViRL (`data_builders.gcot`). All boxes are
original pixels with exclusive right/bottom edges, read from the masks the items were painted through.

Options: ``qtypes`` (subset of `QTYPES`), ``trace`` (which method's turns go in ``messages``: "grit",
"deepeyes", "virl", "answer" -- the answer alone, a box as Qwen's ``{"bbox_2d": [...]}`` -- or "none"; the
method traces are all in ``meta["traces"]``), ``highres_side`` ([lo, hi] px), and for the ``refer``
question ``refer_side`` ([lo, hi] px), ``refer_count`` ([lo, hi] shapes), ``refer_colors``,
``refer_shapes``; ``question_first`` puts the question before the image in the user turn (a causal model's
vision tokens can then attend to the words naming their object). ``preset`` names a set of options in `PRESETS` (explicit options win over it).

>>> sorted(QTYPES)[:3]
['chart_max', 'chart_value', 'color']
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmreason.data_builders import scene_questions as scenes
from mmreason.data_builders.common import DEFAULT_CHUNK_SIZE, SampleContext, build_dataset, check_options, \
    phase, save_image
from mmreason.data_builders.gcot import grit_trace, text_turn, zoom_trajectory

NAME = "image_scenes"
TRACES = ("grit", "deepeyes", "virl", "answer", "none")

# qtype -> (scene kind, weight, task)
QTYPES: dict[str, tuple[str, float, str]] = {
    "color": ("shapes", 1.0, "vqa"),
    "shape": ("shapes", 1.0, "vqa"),
    "count": ("shapes", 1.0, "counting"),
    "relation": ("shapes", 1.0, "vqa"),
    "text": ("shapes", 1.0, "vqa"),
    "ground": ("shapes", 1.0, "grounding"),
    "refer": ("shapes", 1.0, "grounding"),
    "chart_max": ("chart", 0.7, "vqa"),
    "chart_value": ("chart", 0.7, "vqa"),
    "pie_largest": ("chart", 0.6, "vqa"),
    "small_color": ("highres", 1.0, "vqa"),
    "small_relative": ("highres", 1.0, "vqa"),
    "small_text": ("highres", 1.0, "vqa"),
}
# `refer` is left out of the default mix: its small canvases are a preset's choice, not every dataset's.
DEFAULTS = {"qtypes": sorted(set(QTYPES) - {"refer"}), "trace": "grit", "highres_side": [2000, 4000],
            "refer_side": [112, 112], "refer_count": [2, 4], "refer_colors": ["red", "green", "blue", "yellow"],
            "refer_shapes": ["circle", "square", "triangle"], "question_first": False}
# Named option sets. "quickstart": find the named one of 1-4 shapes on a 112-px canvas (16 vision tokens
# for Qwen2.5-VL), answered with its box alone -- small enough for a tiny model to learn on a CPU.
PRESETS = {"quickstart": {"qtypes": ["refer"], "trace": "answer", "question_first": True, "refer_count": [1, 4]}}


def _pick_qtype(rng: np.random.Generator, qtypes: list[str]) -> str:
    w = np.array([QTYPES[q][1] for q in qtypes], dtype=float)
    return qtypes[int(rng.choice(len(qtypes), p=w / w.sum()))]


def make_sample(ctx: SampleContext) -> dict:
    """One canonical row (see the module docstring); media are written before the row is returned."""
    opts = ctx.options
    qtype = _pick_qtype(ctx.rng, list(opts["qtypes"]))
    kind, _, task = QTYPES[qtype]
    with phase("render"):
        sq = scenes.generate(ctx.rng, qtype, highres_side=tuple(opts["highres_side"]), refer=refer_options(opts))
    w, h = sq.image.size
    img_path = save_image(sq.image, ctx.media("image", "png"))
    parts = [{"type": "image", "image": img_path}, {"type": "text", "text": sq.question}]
    user = {"role": "user", "content": parts[::-1] if opts["question_first"] else parts}

    saved: dict[tuple, str] = {}  # DeepEyes and ViRL often zoom on the same box: one file

    def save_crop(box, k):
        if box not in saved:
            saved[box] = save_image(sq.image.crop(box), ctx.media(f"zoom{len(saved)}", "png"))
        return saved[box]

    traces = {"grit": [text_turn("assistant", grit_trace(sq.plan, sq.evidence, sq.conclusion, sq.answer))]}
    crops = {}
    for method, per_region in (("deepeyes", False), ("virl", True)):
        traces[method], crops[method] = zoom_trajectory(
            sq.evidence, plan=sq.plan, conclusion=sq.conclusion, answer=sq.answer, width=w, height=h,
            save_crop=save_crop, per_region=per_region)
    chosen = opts["trace"]
    traces["answer"] = [text_turn("assistant", answer_text(sq.answer, task))]
    return {
        "id": ctx.id,
        "messages": [user] + (traces[chosen] if chosen != "none" else []),
        "answer": sq.answer,
        "task": task,
        "source": NAME,
        "boxes": [{"label": it.label, "box": list(it.box), "image": 0} for it in sq.targets],
        "rationale_regions": [{"label": ev.label, "box": list(ev.box), "image": 0} for ev in sq.evidence],
        "meta": {
            "qtype": qtype, "scene": kind, "image_size": [w, h], "coord_frame": "pixel", "trace": chosen,
            "traces": traces, "zooms": {m: [list(b) for b in c] for m, c in crops.items()},
            "objects": [{"kind": it.kind, "name": it.name, "color": it.color, "box": list(it.box)}
                        for it in sq.items],
        },
    }


def refer_options(opts: dict) -> dict:
    """The ``refer`` question's keywords from the builder options."""
    return {"side": tuple(opts["refer_side"]), "count": tuple(opts["refer_count"]),
            "colors": tuple(opts["refer_colors"]), "shapes": tuple(opts["refer_shapes"])}


def answer_text(answer: str, task: str) -> str:
    """The bare answer turn: a grounding answer as Qwen's JSON box (original pixels; `frames` maps it to a
    family's frame at load time), anything else as written.

    >>> answer_text("[1, 2, 30, 40]", "grounding")
    '{"bbox_2d": [1, 2, 30, 40]}'
    """
    return '{"bbox_2d": ' + answer + "}" if task == "grounding" else answer


def resolve_options(options: dict) -> dict:
    """Defaults, then the named preset, then explicit options; unknown option names are errors.

    >>> resolve_options({"preset": "quickstart", "refer_count": [2, 2]})["qtypes"]
    ['refer']
    >>> resolve_options({"trcae": "grit"})
    Traceback (most recent call last):
    ValueError: image_scenes: unknown option 'trcae'; known: highres_side, preset, qtypes, question_first, refer_colors, refer_count, refer_shapes, refer_side, trace
    """
    options = dict(options)
    preset = options.pop("preset", None)
    if preset is not None and preset not in PRESETS:
        raise ValueError(f"{NAME}: unknown preset {preset!r}; known: {', '.join(sorted(PRESETS))}")
    for key in options:
        if key not in DEFAULTS:
            raise ValueError(f"{NAME}: unknown option {key!r}; known: {', '.join(sorted([*DEFAULTS, 'preset']))}")
    return {**DEFAULTS, **PRESETS.get(preset, {}), **options}


def build(out_dir: str | Path, *, n: int, seed: int = 0, shard: tuple[int, int] = (0, 1), workers: int = 1,
          chunk_size: int = DEFAULT_CHUNK_SIZE, progress: bool = True, **options) -> Path:
    """Procedural image scenes (shapes, text, charts, V*-like high-res) with GRIT/DeepEyes/ViRL traces."""
    opts = resolve_options(options)
    check_options("image_scenes", opts, QTYPES, TRACES)
    return build_dataset(out_dir, name=NAME, make_sample=make_sample, n=n, seed=seed, shard=shard,
                         options=opts, workers=workers, chunk_size=chunk_size, progress=progress)
