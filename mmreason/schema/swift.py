"""ms-swift grounding rows: the ``objects`` column {ref, bbox, bbox_type, image_id} -> boxes and points.

`swift_objects` is the part of `mmreason.schema.readers.from_swift` that reads ``objects``: bbox
types ``real`` (pixels), ``norm1`` and ``norm1000`` are converted to original pixels through
`mmreason.geometry`, the image size coming from ``width``/``height`` columns or an ``image_size(path)``
callback; ``<ref-object>`` tags take the object names in order.
"""

from __future__ import annotations

import json
import numbers
from typing import Callable, Mapping

from mmreason.errors import SchemaError
from mmreason.geometry import ImageFrame, convert_box, convert_point
from mmreason.schema.columns import as_list, is_sequence, json_default
from mmreason.schema.sample import IMAGE_TYPES

SWIFT_FRAMES = {"real": "pixel", "norm1": "norm1", "norm1000": "norm1000"}  # bbox_type -> geometry frame


def image_size_of(row: Mapping, messages: list[dict], image: int,
                  image_size: Callable[[str], tuple[int, int]] | None) -> tuple[int, int] | None:
    """(width, height) of image part `image`: from the row's width/height, else from the callback."""
    width, height = row.get("width"), row.get("height")
    if is_sequence(width) and is_sequence(height):
        return (int(width[image]), int(height[image])) if image < min(len(width), len(height)) else None
    paths = [p[p["type"]] for msg in messages for p in msg["content"] if p["type"] in IMAGE_TYPES]
    if isinstance(width, numbers.Number) and isinstance(height, numbers.Number) and len(paths) == 1:
        return int(width), int(height)
    if image_size is not None and image < len(paths):
        return image_size(paths[image])
    return None


def swift_objects(row: Mapping, messages: list[dict], *, who: object,
                  image_size: Callable[[str], tuple[int, int]] | None = None) -> tuple[list, list, dict]:
    """ms-swift `objects` -> (boxes, points, meta extras), coordinates in original pixels; `<ref-object>`
    tags in `messages` are filled in place. Errors name the row `who`.

    A 4-value bbox is a box, a 2-value one a point. Relative boxes (norm1, norm1000) need the image size;
    without it they stay in meta, untouched, with a note, rather than be guessed.

    >>> msgs = [{"role": "user", "content": [{"type": "image", "image": "a.png"},
    ...                                      {"type": "text", "text": "Find the <ref-object>."}]}]
    >>> row = {"objects": {"ref": ["cat"], "bbox": [[100, 200, 300, 400]], "bbox_type": "norm1000"},
    ...        "width": 640, "height": 480}
    >>> swift_objects(row, msgs, who="r0")
    ([{'label': 'cat', 'box': [64.0, 96.0, 192.0, 192.0], 'image': 0}], [], {})
    >>> msgs[0]["content"][1]["text"]
    'Find the cat.'
    """
    objects = row.get("objects")
    objects = json.loads(objects) if isinstance(objects, str) else objects
    if not objects:
        return [], [], {}
    refs, bboxes = as_list(objects.get("ref")), as_list(objects.get("bbox"))
    if bboxes and all(isinstance(v, numbers.Number) for v in bboxes):
        bboxes = [bboxes]
    ids = as_list(objects.get("image_id")) or [0] * len(bboxes)
    kind = objects.get("bbox_type") or "real"
    if kind not in SWIFT_FRAMES:
        raise SchemaError(f"unknown bbox_type {kind!r}; known: {sorted(SWIFT_FRAMES)}", row=who,
                          field="objects.bbox_type")
    if len(ids) != len(bboxes):
        raise SchemaError(f"{len(ids)} image_id(s) for {len(bboxes)} bbox(es)", row=who,
                          field="objects.image_id")
    replace_refs(messages, refs, who=who)
    frame = SWIFT_FRAMES[kind]
    sizes = {i: (1, 1) if frame == "pixel" else image_size_of(row, messages, int(i), image_size)
             for i in set(ids)}
    if any(size is None for size in sizes.values()):
        note = (f"ms-swift objects with bbox_type {kind!r} kept here unconverted: the image size is unknown "
                "(give width/height columns or image_size=)")
        kept = json.loads(json.dumps(objects, default=json_default))
        return [], [], {"objects": kept, "objects_note": note}
    boxes, points = [], []
    for j, (bbox, image) in enumerate(zip(bboxes, ids)):
        label = refs[j] if j < len(refs) else None
        f = ImageFrame.identity(*sizes[image])
        if len(bbox) == 4:
            boxes.append({"label": label, "box": list(convert_box(bbox, frame, "pixel", f)),
                          "image": int(image)})
        elif len(bbox) == 2:
            points.append({"label": label, "point": list(convert_point(bbox, frame, "pixel", f)),
                           "image": int(image)})
        else:
            raise SchemaError(f"expected 4 values (box) or 2 (point), got {bbox!r}", row=who,
                              field=f"objects.bbox[{j}]")
    return boxes, points, {}


def replace_refs(messages: list[dict], refs: list, *, who: object) -> None:
    """`<ref-object>` tags take the object names in order; `<bbox>` tags stay (see from_swift)."""
    it = iter(refs)
    for msg in messages:
        for part in msg["content"]:
            if part["type"] == "text" and "<ref-object>" in part["text"]:
                pieces = part["text"].split("<ref-object>")
                names = [next(it, None) for _ in pieces[1:]]
                if None in names:
                    raise SchemaError(f"more <ref-object> tags than the {len(refs)} ref(s)", row=who,
                                      field="objects.ref")
                part["text"] = pieces[0] + "".join(str(n) + piece for n, piece in zip(names, pieces[1:]))
