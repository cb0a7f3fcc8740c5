"""Image-scene builder: boxes match the drawn pixels, answers follow from the scene, traces parse and ground."""

import functools
import re

import numpy as np
import pytest
from PIL import Image

from mmreason import schema
from mmreason.data_builders import image_scenes
from mmreason.data_builders.draw import COLORS, color_pixels
from mmreason.data_builders.frames import render_for_family
from mmreason.data_builders.gcot import zoom_box
from mmreason.geometry import ImageFrame, box_from_model, iou
from mmreason.traces import extract_answer, parse


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("scenes")
    # 36 samples cover every qtype a few times; high-res kept at 2000-2400 px to stay fast.
    image_scenes.build(out, n=36, seed=2, chunk_size=12, progress=False, highres_side=[2000, 2400])  # all qtypes
    return out, list(schema.load_rows(out))


@functools.lru_cache(maxsize=64)
def _load(path):
    return np.asarray(Image.open(path).convert("RGB"))


def _image(root, row, k=0):
    return _load(root / schema.images_of(row)[k])


def _objects(row):
    return {tuple(o["box"]): o for o in row["meta"]["objects"]}


def test_rows_validate_and_cover_every_qtype(built):
    root, rows = built
    assert len(rows) == 36 and len({r["id"] for r in rows}) == 36
    for r in rows:
        assert schema.validate(r, root=root, check_media=True) == r
    assert {r["meta"]["qtype"] for r in rows} == set(image_scenes.DEFAULTS["qtypes"])
    assert "refer" not in image_scenes.DEFAULTS["qtypes"]  # small canvases: a preset's choice


def test_boxes_are_tight_around_the_drawn_pixels(built):
    root, rows = built
    for r in rows:
        img = _image(root, r)
        h, w = img.shape[:2]
        objects = _objects(r)
        for gt in r["boxes"]:
            x1, y1, x2, y2 = map(int, gt["box"])
            assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h, (r["id"], gt)
            obj = objects[(x1, y1, x2, y2)]
            # the box and a 2-px ring around it (clipped to the image)
            ox, oy = max(0, x1 - 2), max(0, y1 - 2)
            mask = color_pixels(img[oy:y2 + 2, ox:x2 + 2], obj["color"])
            inside = mask[y1 - oy:y2 - oy, x1 - ox:x2 - ox].copy()
            assert inside.any(), (r["id"], gt)
            if obj["kind"] != "text":  # binary masks: the colour's extent inside the box IS the box
                ys, xs = np.nonzero(inside)
                assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (0, 0, x2 - x1, y2 - y1), (r["id"], gt)
            mask[y1 - oy:y2 - oy, x1 - ox:x2 - ox] = False
            assert not mask.any(), (r["id"], gt)  # nothing of that colour just outside the box


def test_answers_follow_from_the_scene(built):
    root, rows = built
    seen = set()
    for r in rows:
        q, a, qt = schema.text_of(r["messages"][0]), r["answer"], r["meta"]["qtype"]
        objs = r["meta"]["objects"]
        seen.add(qt)
        if qt == "count":
            assert int(a) == len(r["boxes"]) >= 1
        elif qt == "relation":
            rel = re.search(r"(left of|right of|above|below)", q).group(1)
            (a1, b1) = [b["box"] for b in r["boxes"]]
            truth = {"left of": a1[2] < b1[0], "right of": a1[0] > b1[2], "above": a1[3] < b1[1],
                     "below": a1[1] > b1[3]}[rel]
            assert a == ("yes" if truth else "no"), r["id"]
        elif qt == "pie_largest":  # the answer colour owns the most pixels
            img = _image(root, r)
            counts = {o["color"]: color_pixels(img, o["color"]).sum() for o in objs}
            assert max(counts, key=counts.get) == a
        elif qt == "chart_max":
            bars = [o for o in objs if o["kind"] == "bar"]
            assert max(bars, key=lambda o: o["box"][3] - o["box"][1])["name"] == a
        elif qt in ("text", "small_text"):
            colour = re.search(r"written in (\w+)", q).group(1)
            assert [o["name"] for o in objs if o["kind"] == "text" and o["color"] == colour] == [a]
        elif qt in ("color", "small_color"):
            assert r["boxes"][0]["label"] == f"{a} {q.rstrip('?').split()[-1]}"
        elif qt == "small_relative":
            (a1, b1) = [b["box"] for b in r["boxes"]]
            assert a == ("left" if a1[2] < b1[0] else "right") and (a1[2] < b1[0] or a1[0] > b1[2])
    assert len(seen) >= 8


def test_high_res_targets_are_small(built):
    root, rows = built
    hi = [r for r in rows if r["meta"]["scene"] == "highres"]
    assert hi
    for r in hi:
        w, h = r["meta"]["image_size"]
        assert max(w, h) >= 2000
        for b in r["boxes"]:
            x1, y1, x2, y2 = b["box"]
            assert max(x2 - x1, y2 - y1) <= 0.03 * max(w, h), (r["id"], b)
            assert (x2 - x1) * (y2 - y1) / (w * h) < 0.001


def test_grit_trace_parses_and_its_boxes_are_the_rationale(built):
    _, rows = built
    for r in rows:
        text = r["meta"]["traces"]["grit"][0]["content"][0]["text"]
        t = parse(text)
        assert not t.issues and t.think and t.rethink and t.answer == r["answer"], r["id"]
        before = text.index("<rethink>")
        mentioned = [b.box for b in t.boxes if b.start < before]
        assert sorted(mentioned) == sorted(tuple(x["box"]) for x in r["rationale_regions"])
        if r["meta"]["qtype"] == "count":  # GRIT's count bonus needs exactly `answer` boxes before <rethink>
            assert len(mentioned) == int(r["answer"])
    assert all(r["messages"][1]["content"][0]["text"] == r["meta"]["traces"]["grit"][0]["content"][0]["text"]
               for r in rows)


@pytest.mark.parametrize("method", ["deepeyes", "virl"])
def test_zoom_trajectories_crop_the_evidence(built, method):
    root, rows = built
    for r in rows:
        turns = r["meta"]["traces"][method]
        calls = [c for m in turns if m["role"] == "assistant" for c in parse(m["content"][0]["text"]).tool_calls]
        crops = [m["content"][0]["image"] for m in turns if m["role"] == "tool"]
        assert len(calls) == len(crops) == len(r["meta"]["zooms"][method]) >= 1
        regions = [x["box"] for x in r["rationale_regions"]]
        if method == "virl":
            assert len(calls) == len(regions)
        full = _image(root, r)
        for k, (call, crop_path) in enumerate(zip(calls, crops)):
            assert call.name == "image_zoom_in_tool" and call.error is None
            box = call.arguments["bbox_2d"]
            assert box == r["meta"]["zooms"][method][k]
            targets = [regions[k]] if method == "virl" else regions
            for t in targets:  # the crop contains its evidence region
                assert box[0] <= t[0] and box[1] <= t[1] and t[2] <= box[2] and t[3] <= box[3]
            crop = np.asarray(Image.open(root / crop_path).convert("RGB"))
            assert crop.shape[:2] == (box[3] - box[1], box[2] - box[0])
            assert (crop == full[box[1]:box[3], box[0]:box[2]]).all()
            assert min(crop.shape[:2]) > 30  # DeepEyes rejects crops with a side <= 30 px
            objects = _objects(r)
            for t in targets:  # ... and the target's own pixels
                if tuple(t) in objects:
                    assert color_pixels(crop, objects[tuple(t)]["color"]).any()
        final = parse(turns[-1]["content"][0]["text"])
        assert final.answer == r["answer"] and extract_answer(turns[-1]["content"][0]["text"]) == r["answer"]


def test_zoom_box_keeps_the_region_and_the_image():
    for box, size in [((0, 0, 10, 10), (100, 100)), ((90, 5, 100, 12), (100, 40)), ((10, 10, 90, 30), (100, 35))]:
        z = zoom_box(box, *size)
        assert 0 <= z[0] <= box[0] and 0 <= z[1] <= box[1]
        assert box[2] <= z[2] <= size[0] and box[3] <= z[3] <= size[1]
        assert z[2] - z[0] >= min(56, size[0]) and z[3] - z[1] >= min(56, size[1])


def test_render_for_family_moves_trace_boxes_and_round_trips(built):
    root, rows = built
    r = next(r for r in rows if r["meta"]["scene"] == "highres")
    w, h = r["meta"]["image_size"]
    out = render_for_family(r, "qwen2_5_vl", max_pixels=256 * 28 * 28)
    frame = ImageFrame.for_family(w, h, "qwen2_5_vl", max_pixels=256 * 28 * 28)
    assert out["meta"]["coord_frame"] == "resized" and out["boxes"] == r["boxes"]
    boxes = parse(out["messages"][1]["content"][0]["text"]).boxes
    assert boxes and all(max(b.box) <= max(frame.resized_width, frame.resized_height) for b in boxes)
    back = [box_from_model(b.box, "qwen2_5_vl", frame) for b in boxes]
    assert all(iou(bk, gt["box"]) > 0.5 for bk, gt in zip(back, r["rationale_regions"]))
    out3 = render_for_family(r, "qwen3_vl")
    assert all(0 <= v <= 1000 for b in parse(out3["messages"][1]["content"][0]["text"]).boxes for v in b.box)
    # tool-call arguments move too, and stay valid JSON
    de = {**r, "messages": [r["messages"][0], *r["meta"]["traces"]["deepeyes"]]}
    calls = parse(render_for_family(de, "qwen3_vl")["messages"][1]["content"][0]["text"]).tool_calls
    assert calls[0].error is None and max(calls[0].arguments["bbox_2d"]) <= 1000


def test_card_and_preview(built):
    root, rows = built
    card = (root / "README.md").read_text()
    assert "Status: **complete**" in card and "Rows: **36**" in card
    for qt in {r["meta"]["qtype"] for r in rows}:
        assert f"| {qt} |" in card
    prev = Image.open(root / "preview.png")
    assert prev.width >= 600 and prev.height >= 300
    # the preview draws the GT in green on top of the scenes
    assert color_pixels(np.asarray(prev.convert("RGB")), (0, 200, 0)).sum() > 50
    assert COLORS  # palette exported for other builders


def test_bad_options_are_named(tmp_path):
    with pytest.raises(ValueError, match="qtypes"):
        image_scenes.build(tmp_path / "x", n=1, qtypes=["nope"])
    with pytest.raises(ValueError, match="trace"):
        image_scenes.build(tmp_path / "y", n=1, trace="cot")


@pytest.fixture(scope="module")
def referring(tmp_path_factory):
    out = tmp_path_factory.mktemp("refer")
    image_scenes.build(out, n=40, seed=5, progress=False, preset="quickstart")
    return out, list(schema.load_rows(out))


def test_referring_scenes_name_one_shape_by_colour_and_shape(referring):
    root, rows = referring
    counts = set()
    for r in rows:
        assert schema.validate(r, root=root, check_media=True) == r
        objects = r["meta"]["objects"]
        counts.add(len(objects))
        pairs = [(o["color"], o["name"]) for o in objects]
        assert len(set(pairs)) == len(pairs)  # no two shapes of the same colour AND shape
        (target,) = [o for o in objects if o["box"] == [int(v) for v in r["boxes"][0]["box"]]]
        question = r["messages"][0]["content"][0]
        assert question == {"type": "text", "text": f"Where is the {target['color']} {target['name']}?"}
        assert r["messages"][0]["content"][1]["type"] == "image"  # the preset asks before showing
        assert _image(root, r).shape[:2] == (112, 112)
        box = parse(r["messages"][1]["content"][0]["text"]).boxes[0]
        assert box.fmt == "bbox_2d" and list(box.box) == target["box"]
    assert counts == {1, 2, 3, 4}
    # neither word alone always picks the target: some scenes share a colour or a shape with it
    assert any(len({o["color"] for o in r["meta"]["objects"]}) < len(r["meta"]["objects"]) for r in rows)


def test_referring_boxes_are_the_drawn_shapes(referring):
    root, rows = referring
    for r in rows:
        img = _image(root, r)
        for o in r["meta"]["objects"]:
            x1, y1, x2, y2 = o["box"]
            ys, xs = np.nonzero(color_pixels(img[y1:y2, x1:x2], o["color"]))
            assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (0, 0, x2 - x1, y2 - y1), (r["id"], o)


def test_misspelled_options_and_presets_are_named(tmp_path):
    with pytest.raises(ValueError, match="unknown option 'trcae'"):
        image_scenes.build(tmp_path / "x", n=1, trcae="grit")
    with pytest.raises(ValueError, match="unknown preset 'quikstart'"):
        image_scenes.build(tmp_path / "y", n=1, preset="quikstart")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()  # nothing written first
