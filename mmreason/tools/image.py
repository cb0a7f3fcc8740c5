"""Image tools: DeepEyes' zoom-in and rotate, on the sample's original pictures.

`image_zoom_in` follows DeepEyes (arXiv 2505.14362; the zoom-in tool of
verl/workers/agent/envs/mm_process_engine/visual_toolbox_v2.py in github.com/Visual-Agent/DeepEyes): the
box ``bbox_2d = [x1, y1, x2, y2]`` (top-left corner first) is read in the env's coordinate frame (the
family's output frame unless the recipe says "pixel", DeepEyes' choice), mapped to original pixels
through `mmreason.geometry`, clamped to the image, then checked: x1 < x2 and y1 < y2, longer side /
shorter side <= 100, and the shorter side > 30 px (or, with ``small_box="enlarge"``, upstream verl's
rule: grown about its centre to 28 px first, its shape kept, and the result checked again). The crop is cut from the full-resolution original (never
the resized copy) and sized for the family like any input picture. A box that breaks a rule gives an
``Error: ...`` observation, so the episode goes on.

    >>> from PIL import Image
    >>> from mmreason.tools.env import ToolEnv, ToolSettings
    >>> from mmreason.modalities.image import load_image
    >>> env = ToolEnv("qwen2_5_vl", images=[load_image(Image.new("RGB", (640, 480)), "qwen2_5_vl")],
    ...               settings=ToolSettings(coord_frame="pixel"))
    >>> image_zoom_in(env, [600, 400, 700, 500]).info["box_pixel"]
    (600.0, 400.0, 640.0, 480.0)
    >>> image_zoom_in(env, [10, 10, 30, 200]).text.split(";")[1]
    ' the shorter side must be more than 30 px'
"""

from __future__ import annotations

import math
from typing import Any

from mmreason.geometry import Box, ImageFrame, clip_box, convert_box
from mmreason.tools.env import (
    Observation, ToolEnv, ToolInputError, ToolSettings, as_number, as_numbers, as_text, tool,
)


def _fmt(box: Box, frame: str) -> str:
    digits = 3 if frame == "norm1" else 0
    return "[" + ", ".join(f"{v:.{digits}f}" for v in box) + "]"


def _enlarge(box: Box, size: float, width: float, height: float) -> Box:
    """Upstream verl's small-box rule (verl/tools/image_zoom_in_tool.py, ``_maybe_resize_bbox``): scale the
    box about its centre so its shorter side reaches `size`, scaled down as a whole (its shape kept) where
    that outgrows the image, shifted back inside, corners rounded outwards. The caller checks the result
    again: a box that had to shrink to fit may still be too small or too elongated.

    >>> _enlarge((10, 10, 90, 15), 28, 100, 40)   # 80 x 5 -> 448 x 28 does not fit: 100 x 6.25 it is
    (0, 9, 100, 16)
    """
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    scale = min(size / min(w, h), width / w, height / h)  # one factor for both sides: the shape is kept
    w, h = w * scale, h * scale
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    nx1 = min(max(cx - w / 2, 0.0), width - w)
    ny1 = min(max(cy - h / 2, 0.0), height - h)
    return (max(0, math.floor(nx1)), max(0, math.floor(ny1)), min(math.ceil(nx1 + w), math.ceil(width)),
            min(math.ceil(ny1 + h), math.ceil(height)))


def zoom_box(bbox_2d: Any, image_frame: ImageFrame, frame: str, settings: ToolSettings) -> Box:
    """The model's box -> the clamped box in original pixels, or a `ToolInputError` saying which rule failed."""
    box = as_numbers(bbox_2d, "bbox_2d", 4, "[x1, y1, x2, y2]")
    if not (box[0] < box[2] and box[1] < box[3]):
        raise ToolInputError(f"bbox_2d needs x1 < x2 and y1 < y2 (top-left corner first), got {_fmt(box, 'norm1')}")
    width, height = float(image_frame.width), float(image_frame.height)
    pixel = clip_box(convert_box(box, frame, "pixel", image_frame), width, height)
    w, h = pixel[2] - pixel[0], pixel[3] - pixel[1]
    where = f"the {image_frame.width} x {image_frame.height} image"
    if w <= 0 or h <= 0:
        raise ToolInputError(f"bbox_2d {_fmt(box, frame)} ({frame} coordinates) lies outside {where}")
    if max(w, h) / min(w, h) > settings.max_aspect:
        raise ToolInputError(f"bbox_2d is too elongated: {w:.0f} x {h:.0f} px, aspect ratio above "
                             f"{settings.max_aspect:g}")
    if settings.small_box == "enlarge":
        if min(w, h) < settings.enlarge_to:
            pixel = _enlarge(pixel, settings.enlarge_to, width, height)
            w, h = pixel[2] - pixel[0], pixel[3] - pixel[1]
            if max(w, h) / min(w, h) > settings.max_aspect:  # checked again on what will be cut
                raise ToolInputError(f"bbox_2d is too elongated after enlarging: {w:.0f} x {h:.0f} px")
        if min(w, h) < settings.enlarge_to:
            raise ToolInputError(f"bbox_2d is too small: {w:.0f} x {h:.0f} px after enlarging it inside {where}; "
                                 f"a crop needs {settings.enlarge_to:g} px on each side")
    elif min(w, h) <= settings.min_side:
        raise ToolInputError(f"bbox_2d is too small: {w:.0f} x {h:.0f} px after clamping to {where}; "
                             f"the shorter side must be more than {settings.min_side:g} px")
    return pixel


def cut(env: ToolEnv, source: Any, image_frame: ImageFrame, bbox_2d: Any, label: Any) -> tuple[Any, Box, str, str]:
    """Check a zoom box against `image_frame` and cut it from `source` (a LoadedImage or full-size PIL
    image): (returned picture, box cut in original pixels, box in the model's frame, label text)."""
    from mmreason.modalities.image import crop

    name = as_text(label, "label")
    pixel = zoom_box(bbox_2d, image_frame, env.coord_frame, env.settings)
    piece, cut_box = crop(source, pixel, frame="pixel", image_frame=image_frame)
    shown = convert_box(cut_box, "pixel", env.coord_frame, image_frame)
    return env.picture(piece), cut_box, _fmt(shown, env.coord_frame), name or "the region"


@tool
def image_zoom_in(env: ToolEnv, bbox_2d: list[float], label: str | None = None, image_index: int = 0) -> Observation:
    """Zoom in on a region of the image: the region is cut from the full-resolution image and shown again.

    Args:
        bbox_2d: The region as [x1, y1, x2, y2], the top-left then the bottom-right corner, in the same
            coordinates you use for boxes.
        label: What the region shows (optional).
        image_index: Which input image to zoom into, counting from 0 (default 0).
    """
    index, image = env.pick(env.images, image_index, "image")
    picture, cut_box, shown, name = cut(env, image, image.frame, bbox_2d, label)
    return Observation(
        f"Zoomed in on {name} at {shown}.", images=(picture,),
        info={"tool": "image_zoom_in", "image_index": index, "box_pixel": cut_box, "label": name},
    )


@tool
def image_rotate(env: ToolEnv, angle: float, image_index: int = 0) -> Observation:
    """Rotate the image counter-clockwise by an angle in degrees and show the result.

    Args:
        angle: Rotation in degrees, counter-clockwise; negative turns clockwise (between -360 and 360).
        image_index: Which input image to rotate, counting from 0 (default 0).
    """
    index, image = env.pick(env.images, image_index, "image")
    degrees = as_number(angle, "angle", -360.0, 360.0)
    source = image.original or image.image
    rotated = source.rotate(degrees, expand=True)
    return Observation(f"The image rotated by {degrees:g} degrees.", images=(env.picture(rotated),),
                       info={"tool": "image_rotate", "image_index": index, "angle": degrees})
