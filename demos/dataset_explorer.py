"""Dataset explorer: open a dataset written by `mmreason build` (or any canonical dataset), filter it by task
and source, and see each sample with its ground truth drawn and its reasoning trace parsed.

Ground truth is drawn where it lives: boxes, rationale regions and points on their image (the dataset
card's `draw_boxes`, so the explorer and ``preview.png`` agree), a GUI action on its screenshot, 3D boxes on
rendered views of the point cloud (`mmreason.modalities.point_render`), time spans on a video timeline with
the frame at each span's start, or on the audio's waveform. The trace is the sample's assistant text, parsed
by `mmreason.traces.parse` (the parser rewards use), so what a reward would read is what is shown.

    mmreason demo dataset_explorer --data data/scenes --data data/gui

Only the folders given with ``--data`` can be opened: the page picks among them, it never takes a path.
Without ``--data`` it opens a small image-scenes dataset it builds first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from PIL import Image

from mmreason import schema, traces
from mmreason.demos.drawing import GT, draw_action, shade_spans

MAX_SIDE = 1024  # drawn pictures are shrunk to this (a 3000-px scene stays readable, the page stays light)
MAX_PICTURES = 8  # per sample: a long GUI episode shows its first steps


@dataclass(frozen=True)
class Dataset:
    """A canonical dataset in memory: its folder (media paths are relative to it) and its decoded rows."""

    root: Path
    rows: tuple[dict, ...]

    def values(self, key: str) -> list[str]:
        return sorted({str(r.get(key)) for r in self.rows})

    def select(self, tasks: Sequence[str] = (), sources: Sequence[str] = ()) -> list[dict]:
        """The rows of the given tasks and sources (an empty selection keeps every value)."""
        return [r for r in self.rows if (not tasks or r.get("task") in tasks)
                and (not sources or r.get("source") in sources)]


def open_dataset(path: str | Path) -> Dataset:
    """A dataset folder (Parquet shards or JSONL) or one such file; a `ValueError` naming the path when it
    is not a canonical dataset."""
    from mmreason.errors import MMReasonError
    from mmreason.schema.io import dataset_root, load_rows

    try:
        rows = tuple(load_rows(path))
    except (FileNotFoundError, MMReasonError) as exc:
        raise ValueError(f"{path}: cannot open as a dataset ({exc})") from None
    if not rows:
        raise ValueError(f"{path}: the dataset holds no rows")
    return Dataset(dataset_root(path), rows)


# ------------------------------------------------------------------------------------- drawing
def _shrunk(image: Image.Image) -> Image.Image:
    image = image.convert("RGB")
    image.thumbnail((MAX_SIDE, MAX_SIDE))
    return image


def image_pictures(row: Mapping, root: Path) -> list[tuple[Image.Image, str]]:
    """Each image or screenshot (the list GT ``image`` indices point into) with its boxes, rationale regions
    and points, and on the first the GUI action, all in original pixels before shrinking."""
    from mmreason.data_builders.card import draw_boxes

    out = []
    gui = row.get("gui") or {}
    for i, rel in enumerate(schema.images_of(row)[:MAX_PICTURES]):
        with Image.open(root / rel) as image:
            picture = draw_action(image, gui.get("action"), GT) if i == 0 and gui.get("action") else image
            drawn = draw_boxes(picture, row, i, size=MAX_SIDE)
        labels = [b.get("label") for b in row.get("boxes") or [] if b.get("image", 0) == i and b.get("label")]
        out.append((drawn, f"image {i}" + (f": {'; '.join(labels)}" if labels else "")))
    return out


def video_pictures(path: Path, spans: Sequence[Mapping]) -> list[tuple[Image.Image, str]]:
    """The timeline with every GT span shaded, then the frame at each span's start (the first frame when
    the row has no span)."""
    from mmreason.data_builders.card import timeline, video_frame
    from mmreason.modalities.video import read_video

    _, _, _, total, fps, _ = read_video(path, lambda total, fps: [0])
    duration = total / fps if fps else 0.0
    out = [(timeline(duration, spans, width=640, height=32), f"timeline 0-{duration:.2f} s, GT spans shaded")]
    for span in list(spans)[:MAX_PICTURES] or [{"start": 0.0, "label": "first frame"}]:
        frame = video_frame(path, float(span["start"]))
        if frame is not None:
            out.append((_shrunk(frame), f"{span['start']:.2f} s: {span.get('label') or ''}"))
    return out


def audio_pictures(path: Path, spans: Sequence[Mapping]) -> list[tuple[Image.Image, str]]:
    """The waveform with every GT span shaded."""
    from mmreason.data_builders.card import waveform

    drawn = waveform(path, width=800, height=160)
    if drawn is None:
        raise ValueError(f"{path.name}: the audio cannot be read")
    image, duration = drawn
    x_of = lambda t: t / max(duration, 1e-6) * image.width  # noqa: E731
    labels = ", ".join(f"{s.get('label') or ''} {s['start']:.2f}-{s['end']:.2f} s" for s in spans)
    return [(shade_spans(image, spans, x_of), f"waveform 0-{duration:.2f} s; GT: {labels or 'none'}")]


def cloud_pictures(path: Path, boxes_3d: Sequence[Mapping], views: int = 4) -> list[tuple[Image.Image, str]]:
    """Rendered views of the point cloud with the GT 3D boxes projected as numbered marks."""
    from mmreason.modalities.point_cloud import load_point_cloud
    from mmreason.modalities.point_render import render_views

    cloud = load_point_cloud(str(path), num_points=20000)
    rendered = render_views(cloud, k=views, width=320, height=320, boxes_3d=list(boxes_3d), draw_boxes=True)
    names = ", ".join(f"{i}: {b.get('label')}" for i, b in enumerate(boxes_3d))
    return [(v.image, f"view {k}" + (f" (marks {names})" if names else "")) for k, v in enumerate(rendered)]


def ground_truth_pictures(row: Mapping, root: str | Path) -> list[tuple[Image.Image, str]]:
    """Every picture the row's ground truth is drawn on, captioned."""
    root = Path(root)
    out = []
    for kind, rel in schema.media_parts(row):
        if kind == "video":
            out += video_pictures(root / rel, row.get("time_spans") or [])
        elif kind == "audio":
            out += audio_pictures(root / rel, row.get("time_spans") or [])
        elif kind == "point_cloud":
            out += cloud_pictures(root / rel, row.get("boxes_3d") or [])
    return out + (image_pictures(row, root) if schema.images_of(row) else [])


# ------------------------------------------------------------------------------------- the trace
def assistant_text(row: Mapping) -> str:
    """The assistant turns of the row, joined, with each tool turn shown as a bracketed note."""
    parts = []
    for m in row["messages"]:
        if m["role"] == "assistant":
            parts.append(schema.text_of(m))
        elif m["role"] == "tool":
            kinds = [p["type"] for p in m["content"]]
            parts.append(f"[tool: {', '.join(kinds) or 'empty'}]")
    return "\n".join(parts)


def parsed_trace(row: Mapping) -> dict:
    """What `traces.parse` reads from the row's assistant text: answer, boxes, points, 3D boxes, tool calls,
    actions and the format issues it flags."""
    text = "\n".join(schema.text_of(m) for m in row["messages"] if m["role"] == "assistant")
    t = traces.parse(text)
    return {"answer": t.answer, "ground_truth_answer": row.get("answer"),
            "boxes": [{"box": list(b.box), "label": b.label} for b in t.boxes],
            "points": [{"point": list(p.point), "label": p.label} for p in t.points],
            "boxes_3d": [{"name": b.name, "count": b.count, "box": list(b.box)} for b in t.boxes_3d],
            "tool_calls": [{"name": c.name, "arguments": c.arguments} for c in t.tool_calls],
            "actions": list(t.actions), "issues": list(t.issues)}


def describe(row: Mapping) -> str:
    """The sample's id, task, source, question and answer, as Markdown."""
    users = [m for m in row["messages"] if m["role"] == "user"]
    question = schema.text_of(users[0]) if users else ""
    return (f"**{row['id']}** · task `{row.get('task')}` · source `{row.get('source')}`\n\n"
            f"**Question:** {question}\n\n**Answer:** {row.get('answer')}")


def show(dataset: Dataset, row_id: str) -> tuple[list, str, str, str]:
    """(captioned pictures, description, trace text, parsed trace as JSON) of one row."""
    row = next((r for r in dataset.rows if r["id"] == row_id), None)
    if row is None:
        raise ValueError(f"no sample {row_id!r} in {dataset.root}")
    return (ground_truth_pictures(row, dataset.root), describe(row), assistant_text(row),
            json.dumps(parsed_trace(row), indent=1, default=str))


def example_dataset(out: str | Path, n: int = 12) -> Path:
    """A small image-scenes dataset built by `mmreason build image_scenes` into `out` (for a first look)."""
    from mmreason.data_builders import get_builder

    return Path(get_builder("image_scenes")(str(out), n=n, seed=0, progress=False))


# -------------------------------------------------------------------------------------- the app
def build_demo(folders: Sequence[str | Path], *, title: str = "mmreason dataset explorer") -> Any:
    """The Gradio Blocks (not launched) over the datasets in `folders` (opened when picked)."""
    import gradio as gr

    from mmreason.demos import app_temp_dir

    app_temp_dir()  # before any component is made: Gradio stores (and later serves) files only there

    from mmreason.errors import MMReasonError

    names = [str(f) for f in folders]
    opened: dict[str, Dataset] = {}

    def dataset(name: str) -> Dataset:
        if name not in names:  # the page sends a name; only the folders given at start are opened
            raise gr.Error(f"{name!r} is not one of the datasets this explorer was started with")
        if name not in opened:
            try:
                opened[name] = open_dataset(name)
            except ValueError as exc:
                raise gr.Error(str(exc)) from None
        return opened[name]

    def pick_dataset(name):
        ds = dataset(name)
        ids = [r["id"] for r in ds.rows]
        return (gr.update(choices=ds.values("task"), value=[]), gr.update(choices=ds.values("source"), value=[]),
                gr.update(choices=ids, value=ids[0]), f"{len(ds.rows)} samples")

    def refilter(name, tasks, sources):
        rows = dataset(name).select(tasks or (), sources or ())
        ids = [r["id"] for r in rows]
        return gr.update(choices=ids, value=ids[0] if ids else None), f"{len(ids)} samples match"

    def pick_row(name, row_id):
        if not row_id:
            return [], "no sample matches the filter", "", "{}"
        try:
            return show(dataset(name), row_id)
        except (ValueError, OSError, MMReasonError) as exc:  # a broken media file: say which, keep going
            raise gr.Error(f"{row_id}: {exc}") from None

    with gr.Blocks(title=title) as demo:
        gr.Markdown(f"## {title}\nGround truth in green (boxes, points, GUI actions), rationale regions in "
                    "orange, 3D boxes as numbered marks, time spans shaded; the trace parsed as rewards read it.")
        with gr.Row():
            with gr.Column(scale=1):
                which = gr.Dropdown(names, value=names[0] if names else None, label="dataset")
                # choices arrive with the dataset; the rows themselves check what the page sends
                tasks = gr.Dropdown([], multiselect=True, allow_custom_value=True, label="tasks (none: all)")
                sources = gr.Dropdown([], multiselect=True, allow_custom_value=True, label="sources (none: all)")
                count = gr.Markdown(elem_id="count")
                sample = gr.Dropdown([], allow_custom_value=True, label="sample", elem_id="sample")
                show_btn = gr.Button("Show", variant="primary")
            with gr.Column(scale=2):
                pictures = gr.Gallery(label="ground truth", columns=2, height="auto", object_fit="contain", fit_columns=False,
                                      format="png", elem_id="pictures")
                about = gr.Markdown(elem_id="about")
                trace = gr.Textbox(label="trace (assistant turns)", lines=8, elem_id="trace")
                parsed = gr.Code(label="parsed trace", language="json", elem_id="parsed")
        outputs = [pictures, about, trace, parsed]
        which.change(pick_dataset, which, [tasks, sources, sample, count])
        demo.load(pick_dataset, which, [tasks, sources, sample, count])
        tasks.change(refilter, [which, tasks, sources], [sample, count])
        sources.change(refilter, [which, tasks, sources], [sample, count])
        sample.change(pick_row, [which, sample], outputs)
        show_btn.click(pick_row, [which, sample], outputs, api_name="show")
    return demo


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    from mmreason.demos import add_serve_args, serve

    parser = argparse.ArgumentParser(prog="mmreason demo dataset_explorer", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", action="append", default=[], metavar="DIR",
                        help="a dataset folder written by `mmreason build` (repeat for several)")
    add_serve_args(parser)
    args = parser.parse_args(argv)
    if not args.data:  # start anyway, on a small dataset built here by the real builder
        from mmreason.demos import app_temp_dir

        args.data = [str(example_dataset(app_temp_dir() / "example_image_scenes"))]
    for folder in args.data:  # refuse a wrong path before the server starts, naming it
        if not Path(folder).exists():
            parser.error(f"--data {folder}: no such file or folder")
        try:
            open_dataset(folder)
        except ValueError as exc:
            parser.error(f"--data {exc}")
    return serve(build_demo(args.data), args)
