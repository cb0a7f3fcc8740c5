"""Spatial 3D demo: a point cloud and a question in; an interactive 3D view (Plotly) of the cloud with the
3D boxes the model names and the ground-truth boxes given, the rendered views the model saw with its boxes
drawn back, and its GS-Reasoner-style trace (streamed).

The cloud goes through the point-cloud adapter (`modalities.point_cloud`: reading, sampling, the rendered
views a 2D VLM sees, exactly as in training), the turns through `mmreason.rollout` (via the grounded
chat's streaming backend), the ``name count <bbox>(x1, y1, z1, x2, y2, z2)</bbox>`` boxes through
`mmreason.traces`; the boxes are in scene metres, the frame the views' cameras are in, so
`point_render.render_views` projects and draws them (numbered in trace order) without conversion.

A GS-Reasoner spatial checkpoint (`mmreason.models.spatial`, arXiv 2510.13800 §3.1) sees the same views
and also their 3D points: each rendered view keeps its depth map and camera, so its pixels back-project to
the scene exactly as the builder's posed RGB-D frames do in training (`spatial_extras`), and the boxes drawn
are the ones the spatial model writes after reading them.

    mmreason demo spatial_3d --model tiny:qwen2_5_vl --port 7861

Ground truth is typed (or kept from the example room) as canonical ``boxes_3d`` JSON,
``[{"label": "table", "box": [x1, y1, z1, x2, y2, z2]}]`` in scene metres.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np

from mmreason import traces
from mmreason.demos.streaming import stream_rollout

PREDICTED_COLOUR, GT_COLOUR = "rgb(230,0,120)", "rgb(0,200,0)"
EXAMPLE_GT = ({"label": "table", "box": [0.5, 0.5, 0.0, 1.5, 1.1, 0.75]},
              {"label": "cabinet", "box": [2.8, 2.0, 0.0, 3.6, 2.6, 1.2]})  # the example room's furniture
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


def is_spatial(model: Any) -> bool:
    """Whether `model` carries GS-Reasoner's spatial adapter (its config names it)."""
    return isinstance(getattr(getattr(model, "config", None), "spatial", None), dict)


def spatial_extras(model: Any, cloud: Any) -> Any:
    """The rollout's ``vision_extras`` for a spatial model asked about `cloud`: the prompt's pictures are the
    cloud's rendered views, one scene, each view a posed RGB-D frame (depth where a point was drawn, its
    camera); pictures a tool returns get no points."""
    from mmreason.models.spatial.collate import Frame, empty_inputs, frames_inputs

    config = model.spatial.config
    views = cloud.views

    def extras(row: Any, vision: Any) -> dict:
        grids = vision.get("image_grid_thw")
        if grids is None or len(grids) == 0:
            return {}
        grids = grids.tolist()
        if row is None:
            return empty_inputs(grids, config)
        if len(grids) != len(views):
            raise ValueError(f"the prompt holds {len(grids)} pictures, the point cloud {len(views)} views")
        frames = [(0, Frame(v.depth, np.asarray(v.image.convert("RGB")), v.camera.intrinsics,
                            v.camera.extrinsics), f"demo|view-{i}") for i, v in enumerate(views)]
        return frames_inputs(frames, grids, ["demo|scene"], config)

    return extras


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
    extras = spatial_extras(model, cloud) if is_spatial(model) else None
    for step in stream_rollout(model, processor, family, row, rollout_config, prefill=prefill,
                               prompt_pictures=len(plain), media_options=media, vision_extras=extras):
        if step.trajectory is None:
            yield SceneUpdate(plain, step.text, named_boxes(step.text))
            continue
        final = step.trajectory.completion
        boxes = named_boxes(final)
        yield SceneUpdate(draw_boxes(cloud, boxes, config) if boxes else plain, final, boxes, True,
                          traces.parse(final).answer, step.trajectory.stop_reason)


def box_edges(box: Sequence[float]) -> tuple[list, list, list]:
    """x, y, z lists tracing a 3D box's 12 edges as line segments (None between segments, as Plotly breaks
    a line there).

    >>> xs, ys, zs = box_edges([0, 0, 0, 1, 2, 3])
    >>> len(xs), max(v for v in ys if v is not None), max(v for v in zs if v is not None)
    (36, 2, 3)
    """
    x1, y1, z1, x2, y2, z2 = box
    corners = [(x, y, z) for x in (x1, x2) for y in (y1, y2) for z in (z1, z2)]
    xs: list = []
    ys: list = []
    zs: list = []
    for i, a in enumerate(corners):
        for b in corners[i + 1:]:
            if sum(p != q for p, q in zip(a, b)) == 1:  # corners differing in one axis share an edge
                xs += [a[0], b[0], None]
                ys += [a[1], b[1], None]
                zs += [a[2], b[2], None]
    return xs, ys, zs


def parse_gt(text: str | None) -> tuple[dict, ...]:
    """Ground-truth boxes from the page's JSON (canonical ``boxes_3d``); a `ValueError` saying what is wrong."""
    if not text or not text.strip():
        return ()
    try:
        boxes = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"ground-truth boxes: not JSON ({exc})") from None
    if not isinstance(boxes, list) or not all(isinstance(b, dict) and isinstance(b.get("box"), list)
                                              and len(b["box"]) == 6 for b in boxes):
        raise ValueError('ground-truth boxes: expected [{"label": ..., "box": [x1, y1, z1, x2, y2, z2]}, ...]')
    return tuple({"label": str(b.get("label", "")), "box": [float(v) for v in b["box"]]} for b in boxes)


def scene_figure(cloud: Any, predicted: Sequence[dict] = (), truth: Sequence[dict] = (), *,
                 max_points: int = 6000) -> Any:
    """A Plotly 3D figure: the cloud (subsampled, its own colours), predicted boxes in magenta and
    ground-truth boxes in green, each named in the legend."""
    import plotly.graph_objects as go

    xyz = cloud.scene_xyz()
    keep = np.linspace(0, len(xyz) - 1, min(len(xyz), max_points)).astype(int)
    rgb = cloud.rgb[keep] if cloud.rgb is not None else None
    colours = [f"rgb({int(r * 255)},{int(g * 255)},{int(b * 255)})" for r, g, b in rgb] if rgb is not None \
        else xyz[keep, 2]
    fig = go.Figure(go.Scatter3d(x=xyz[keep, 0], y=xyz[keep, 1], z=xyz[keep, 2], mode="markers",
                                 marker={"size": 1.5, "color": colours}, name="points", hoverinfo="skip"))
    for boxes, colour, kind in ((truth, GT_COLOUR, "GT"), (predicted, PREDICTED_COLOUR, "predicted")):
        for b in boxes:
            xs, ys, zs = box_edges(b["box"])
            fig.add_trace(go.Scatter3d(x=xs, y=ys, z=zs, mode="lines", line={"color": colour, "width": 5},
                                       name=f"{kind}: {b.get('name') or b.get('label') or ''}"))
    fig.update_layout(scene={"aspectmode": "data"}, margin={"l": 0, "r": 0, "t": 0, "b": 0}, height=420)
    return fig


def build_demo(model: Any, processor: Any, family: str, *, config: SceneConfig = SceneConfig(),
               title: str = "mmreason spatial 3D", max_upload_bytes: int | None = None) -> Any:
    """The Gradio Blocks (not launched): a point-cloud file (or the example room) + question -> a 3D view
    with predicted and ground-truth boxes, and the rendered views with the predicted boxes."""
    import gradio as gr

    from mmreason.demos import app_temp_dir
    from mmreason.errors import MMReasonError

    from mmreason.demos import upload_limit
    from mmreason.demos.uploads import check_upload

    app_temp_dir()  # before any component is made: Gradio stores (and later serves) files only there
    limit = max_upload_bytes or upload_limit()

    def respond(upload, question, prefill, hint, gt_text):
        try:
            truth = parse_gt(gt_text)
            source = check_upload(upload, "point_cloud", max_bytes=limit) if upload else example_cloud()
            cloud = load_scene(source, family, config)
            figure = None
            for u in scene_stream(model, processor, family, cloud, question, config=config,
                                  prefill=prefill or "", hint=bool(hint)):
                if u.done or figure is None:  # the 3D view is drawn once at the start and once at the end
                    figure = scene_figure(cloud, u.boxes if u.done else (), truth)
                yield figure, list(u.views), u.trace, json.dumps(u.summary(), indent=1)
        except (ValueError, RuntimeError, MMReasonError) as exc:  # bad input or a failed run: say why
            raise gr.Error(str(exc)) from exc

    sees = (f"sees {config.views} rendered views and, through its spatial adapter, their 3D points (each "
            "view's depth and camera)" if is_spatial(model) else f"sees {config.views} rendered views")
    with gr.Blocks(title=title) as demo:
        gr.Markdown(f"## {title}\nModel family **{family}** {sees}; the 3D boxes its answer names (scene "
                    "metres) are drawn in the 3D view and projected back onto the views as numbered red marks.")
        with gr.Row():
            with gr.Column():
                upload = gr.File(label="point cloud (.ply, .pcd, .npy, .npz); empty: the example room",
                                 file_types=[".ply", ".pcd", ".npy", ".npz"], type="filepath")
                question = gr.Textbox(label="question", value="Where is the table?")
                prefill = gr.Textbox(label="start the answer with (optional)", value="")
                hint = gr.Checkbox(value=True, label="ask for GS-Reasoner's grounded format")
                gt = gr.Code(json.dumps(list(EXAMPLE_GT)), language="json", elem_id="gt",
                             label="ground-truth 3D boxes, scene metres (the example room's; clear for none)")
                ask = gr.Button("Ask", variant="primary")
            with gr.Column():
                figure = gr.Plot(label="3D view: predicted (magenta) and ground truth (green)", elem_id="scene")
                views = gr.Gallery(label="views the model saw", columns=2, format="png", elem_id="views")
                trace = gr.Textbox(label="reasoning trace", lines=10, elem_id="trace")
                parsed = gr.Code(label="parsed", language="json", elem_id="parsed")
        ask.click(respond, [upload, question, prefill, hint, gt], [figure, views, trace, parsed], api_name="ask")
    return demo


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    from mmreason.demos import add_model_args, add_serve_args, load_model, serve, upload_limit

    parser = argparse.ArgumentParser(prog="mmreason demo spatial_3d", description=__doc__.split("\n\n")[0])
    add_model_args(parser)
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--view-size", type=int, default=336)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    add_serve_args(parser)
    args = parser.parse_args(argv)
    model, processor, family = load_model(args.model, device=args.device)
    config = SceneConfig(views=args.views, view_size=args.view_size, max_new_tokens=args.max_new_tokens)
    return serve(build_demo(model, processor, family, config=config, max_upload_bytes=upload_limit(args)), args)
