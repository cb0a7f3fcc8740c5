"""3D scene demo: a point cloud and a question in; rendered views, the model's GS-Reasoner-style trace
(streamed), and every 3D box it names drawn back onto the views.

The cloud goes through the point-cloud adapter (`modalities.point_cloud`: reading, sampling, the rendered
views a 2D VLM sees, exactly as in training), the turns through `mmreason.rollout` (via the grounded
chat's streaming backend), the ``name count <bbox>(x1, y1, z1, x2, y2, z2)</bbox>`` boxes through
`mmreason.traces`; the boxes are in scene metres, the frame the views' cameras are in, so
`point_render.render_views` projects and draws them (numbered in trace order) without conversion.

    mmreason demo scene_3d --model tiny:qwen2_5_vl --port 7861
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np

from mmreason import traces
from mmreason.demos.grounded_chat import stream_rollout

GCOT_HINT = ("Think inside <think> </think>, naming each object you use as `name count <bbox>(x1, y1, z1, "
             "x2, y2, z2)</bbox>` in metres, then answer inside <answer> </answer>.")


@dataclass(frozen=True)
class SceneConfig:
    views: int = 4
    view_size: int = 336
    num_points: int = 20000
    max_new_tokens: int = 256
    max_pixels: int | None = None  # per rendered view (default: the family's)


@dataclass(frozen=True)
class SceneUpdate:
    """The views (with the named boxes drawn once the answer is complete), the trace so far, the 3D boxes
    it names, and whether the run is over."""

    views: tuple[Any, ...]
    trace: str
    boxes: tuple[dict, ...]
    done: bool = False
    answer: str | None = None
    stop_reason: str | None = None

    def summary(self) -> dict:
        return {"answer": self.answer, "stop_reason": self.stop_reason, "boxes": list(self.boxes)}


def example_cloud(seed: int = 0) -> np.ndarray:
    """A 4 m x 3 m floor with a red table (1 x 0.6 x 0.75 m) and a blue cabinet, as N x 6 xyz + rgb."""
    rng = np.random.default_rng(seed)
    floor = np.column_stack([rng.uniform(0, 4, 6000), rng.uniform(0, 3, 6000), np.zeros(6000)])
    parts = [(floor, (0.6, 0.6, 0.6))]
    for lo, hi, colour in (((0.5, 0.5, 0.0), (1.5, 1.1, 0.75), (0.85, 0.15, 0.1)),
                           ((2.8, 2.0, 0.0), (3.6, 2.6, 1.2), (0.1, 0.25, 0.85))):
        pts = rng.uniform(lo, hi, size=(3000, 3))
        face = rng.integers(0, 3, 3000)  # push each point onto a face so the box reads as a solid
        pts[np.arange(3000), face] = np.where(rng.random(3000) < 0.5, np.array(lo)[face], np.array(hi)[face])
        parts.append((pts, colour))
    xyz = np.concatenate([p for p, _ in parts])
    rgb = np.concatenate([np.tile(c, (len(p), 1)) for p, c in parts])
    return np.column_stack([xyz, rgb]).astype(np.float32)


def load_scene(source: Any, family: str, config: SceneConfig = SceneConfig()) -> Any:
    """A `PointCloud` (file path or N x 3|6 array) with the demo's view settings, through the adapter."""
    from mmreason.modalities.point_cloud import load_part

    part = {"type": "point_cloud", "point_cloud": source, "num_points": config.num_points,
            "views": config.views, "view_size": config.view_size}
    return load_part(part, family=family, sample_id="demo")


def named_boxes(text: str) -> tuple[dict, ...]:
    """The distinct 3D boxes a trace names, in order of first mention: ``{"name", "count", "box"}`` (scene
    metres). GCoT names an object in its reasoning and again in its answer; it is drawn once.

    >>> named_boxes("<think>cup 1 <bbox>(0, 0, 0, 1, 1, 1)</bbox></think>"
    ...             "<answer>cup 1 <bbox>(0, 0, 0, 1, 1, 1)</bbox></answer>")
    ({'name': 'cup', 'count': 1, 'box': [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]},)
    """
    out: dict[tuple, dict] = {}
    for m in traces.parse(text).boxes_3d:
        box = [round(v, 4) for v in m.box]
        out.setdefault((m.name, tuple(box)), {"name": m.name, "count": m.count, "box": box})
    return tuple(out.values())


def draw_boxes(cloud: Any, boxes: Sequence[dict], config: SceneConfig) -> tuple[Any, ...]:
    """The cloud's views with `boxes` projected and drawn as numbered marks (0 = the first named)."""
    from mmreason.modalities.point_render import render_views

    options = {k: v for k, v in cloud.render_options if k not in ("boxes_3d", "draw_boxes")}
    views = render_views(cloud, boxes_3d=[{"label": b["name"], "box": b["box"]} for b in boxes],
                         draw_boxes=True, **options)
    return tuple(v.image for v in views)


def scene_stream(model: Any, processor: Any, family: str, cloud: Any, question: str, *,
                 config: SceneConfig = SceneConfig(), prefill: str = "", hint: bool = True,
                 ) -> Iterator[SceneUpdate]:
    """Answer `question` about `cloud` (a loaded `PointCloud`), yielding the trace as it streams; the last
    update has the views with every named box drawn."""
    from mmreason.rollout import RolloutConfig

    if not question or not question.strip():
        raise ValueError("ask a question about the scene")
    text = question.strip() + ("\n" + GCOT_HINT if hint else "")
    row = {"id": "demo", "messages": [{"role": "user", "content": [
        {"type": "point_cloud", "point_cloud": cloud}, {"type": "text", "text": text}]}]}
    plain = tuple(v.image for v in cloud.views)
    rollout_config = RolloutConfig(max_turns=1, max_new_tokens=config.max_new_tokens,
                                   max_completion_tokens=config.max_new_tokens, do_sample=False, seed=0)
    media = {"image": {"max_pixels": config.max_pixels}} if config.max_pixels else None
    for step in stream_rollout(model, processor, family, row, rollout_config, prefill=prefill,
                               prompt_pictures=len(plain), media_options=media):
        if step.trajectory is None:
            yield SceneUpdate(plain, step.text, named_boxes(step.text))
            continue
        final = step.trajectory.completion
        boxes = named_boxes(final)
        yield SceneUpdate(draw_boxes(cloud, boxes, config) if boxes else plain, final, boxes, True,
                          traces.parse(final).answer, step.trajectory.stop_reason)


def build_demo(model: Any, processor: Any, family: str, *, config: SceneConfig = SceneConfig(),
               title: str = "mmreason 3D scene") -> Any:
    """The Gradio Blocks (not launched): a point-cloud file (or the example room) + question -> views with
    boxes."""
    import gradio as gr

    from mmreason.demos import app_temp_dir
    from mmreason.errors import MMReasonError

    app_temp_dir()  # before any component is made: Gradio stores (and later serves) files only there

    def respond(upload, question, prefill, hint):
        source = upload if upload else example_cloud()
        try:
            cloud = load_scene(source, family, config)
            for u in scene_stream(model, processor, family, cloud, question, config=config,
                                  prefill=prefill or "", hint=bool(hint)):
                yield list(u.views), u.trace, json.dumps(u.summary(), indent=1)
        except (ValueError, RuntimeError, MMReasonError) as exc:  # bad input or a failed run: say why
            raise gr.Error(str(exc)) from exc

    with gr.Blocks(title=title) as demo:
        gr.Markdown(f"## {title}\nModel family **{family}** sees {config.views} rendered views; the 3D boxes "
                    "its answer names (scene metres) are projected back onto them as numbered red marks.")
        with gr.Row():
            with gr.Column():
                upload = gr.File(label="point cloud (.ply, .pcd, .npy, .npz); empty: the example room",
                                 file_types=[".ply", ".pcd", ".npy", ".npz"], type="filepath")
                question = gr.Textbox(label="question", value="Where is the table?")
                prefill = gr.Textbox(label="start the answer with (optional)", value="")
                hint = gr.Checkbox(value=True, label="ask for GS-Reasoner's grounded format")
                ask = gr.Button("Ask", variant="primary")
            with gr.Column():
                views = gr.Gallery(label="views", columns=2, elem_id="views")
                trace = gr.Textbox(label="reasoning trace", lines=10, elem_id="trace")
                parsed = gr.Code(label="parsed", language="json", elem_id="parsed")
        ask.click(respond, [upload, question, prefill, hint], [views, trace, parsed])
    return demo


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    from mmreason.demos import add_model_args, add_serve_args, load_model, serve

    parser = argparse.ArgumentParser(prog="mmreason demo scene_3d", description=__doc__.split("\n\n")[0])
    add_model_args(parser)
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--view-size", type=int, default=336)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    add_serve_args(parser)
    args = parser.parse_args(argv)
    model, processor, family = load_model(args.model, device=args.device)
    config = SceneConfig(views=args.views, view_size=args.view_size, max_new_tokens=args.max_new_tokens)
    return serve(build_demo(model, processor, family, config=config), args)
