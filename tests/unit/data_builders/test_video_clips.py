"""Video builder: per-frame boxes cover the object's pixels in decoded frames, events happen when stated,
Video-CoM traces parse and point at the ground truth."""


import re

import numpy as np
import pytest
from PIL import Image

from mmreason import schema
from mmreason.data_builders import video_clips
from mmreason.data_builders.draw import color_pixels
from mmreason.data_builders.frames import render_for_family
from mmreason.traces import extract_answer, parse

TOL = 30  # H.264 yuv420p moves flat colours by a few levels; edges blend, so only the core must match


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("clips")
    video_clips.build(out, n=16, seed=6, chunk_size=8, progress=False)  # seed 6: all 7 qtypes
    return out, list(schema.load_rows(out))


@pytest.fixture(scope="module")
def decoded(built):
    import decord

    root, rows = built
    return {r["id"]: decord.VideoReader(str(root / schema.media_parts(r)[0][1])) for r in rows}


def _dilate(box, k, w, h):
    return (max(0, box[0] - k), max(0, box[1] - k), min(w, box[2] + k), min(h, box[3] + k))


def test_rows_validate_and_videos_have_the_stated_timing(built, decoded):
    root, rows = built
    assert len(rows) == 16 and {r["meta"]["qtype"] for r in rows} == set(video_clips.QTYPES)
    for r in rows:
        assert schema.validate(r, root=root, check_media=True) == r
        vr, m = decoded[r["id"]], r["meta"]
        assert len(vr) == m["num_frames"] and vr.get_avg_fps() == pytest.approx(m["fps"])
        assert vr[0].shape == (m["image_size"][1], m["image_size"][0], 3)
        ts = vr.get_frame_timestamp(range(len(vr)))[:, 0]
        assert np.allclose(ts, np.arange(len(vr)) / m["fps"], atol=1e-3)  # frame f is shown at f / fps


def test_per_frame_boxes_cover_the_object_pixels(built, decoded):
    _, rows = built
    for r in rows:
        vr, m = decoded[r["id"]], r["meta"]
        w, h = m["image_size"]
        frames = vr.get_batch(range(m["num_frames"])).asnumpy()
        for tr in m["tracks"]:
            all_pix = color_pixels(frames, tr["color"], TOL)
            for f in range(m["num_frames"]):
                pix = all_pix[f]
                others = [t["boxes"][f - t["first"]] for t in m["tracks"]
                          if t is not tr and t["first"] <= f <= t["last"]]
                for ob in others:  # another object's blended edges are not this object
                    x1, y1, x2, y2 = _dilate(ob, 3, w, h)
                    pix[y1:y2, x1:x2] = False
                if tr["first"] <= f <= tr["last"]:
                    x1, y1, x2, y2 = tr["boxes"][f - tr["first"]]
                    assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
                    assert pix[y1:y2, x1:x2].sum() >= 0.25 * (x2 - x1) * (y2 - y1), (r["id"], tr["label"], f)
                    dx1, dy1, dx2, dy2 = _dilate((x1, y1, x2, y2), 3, w, h)
                    pix[dy1:dy2, dx1:dx2] = False
                assert pix.sum() <= 3, (r["id"], tr["label"], f)  # nothing of it outside its box / while hidden


def test_events_happen_when_stated(built):
    _, rows = built
    n_collide = 0
    for r in rows:
        m = r["meta"]
        tracks = {t["label"]: t for t in m["tracks"]}
        for ev in m["events"]:
            assert ev["time"] == pytest.approx(ev["frame"] / m["fps"])
            if ev["type"] == "appear":
                assert tracks[ev["label"]]["first"] == ev["frame"] > 0
            elif ev["type"] == "disappear":
                assert tracks[ev["label"]]["last"] + 1 == ev["frame"] < m["num_frames"]
            else:
                n_collide += 1
                a, b = (tracks[x] for x in ev["label"].split(" + "))
                c = ev["frame"]

                def box(t, f):
                    return t["boxes"][f - t["first"]]

                assert box(a, c)[2] == box(b, c)[0]  # touching at the collision frame
                assert max(box(a, c)[1], box(b, c)[1]) < min(box(a, c)[3], box(b, c)[3])  # on one line
                for f in range(max(a["first"], b["first"]), max(a["last"], b["last"]) + 1):
                    if f != c and a["first"] <= f <= a["last"] and b["first"] <= f <= b["last"]:
                        assert box(a, f)[2] < box(b, f)[0]  # apart at every other frame
    assert n_collide >= 1


def test_answers_and_spans_match_the_events(built):
    _, rows = built
    for r in rows:
        m, qt, a = r["meta"], r["meta"]["qtype"], r["answer"]
        span = r["time_spans"][0]
        if qt in ("appear", "disappear", "collide"):
            ev = next(e for e in m["events"] if e["type"] == qt and e["time"] == span["start"])
            assert a == f"{ev['time']:.2f}" and span["end"] == pytest.approx(span["start"] + 1 / m["fps"])
        elif qt == "visible_span":
            s, e = (float(v) for v in a.split(" to "))
            assert (s, e) == (pytest.approx(span["start"]), pytest.approx(span["end"]))
        elif qt == "count_at":
            f = round(span["start"] * m["fps"])
            assert int(a) == sum(t["first"] <= f <= t["last"] for t in m["tracks"])
        elif qt in ("order", "collide_color"):
            assert m["final_answer"].startswith(a + ". ")
            q = schema.text_of(r["messages"][0])
            options = dict(re.findall(r"([A-D])\. (.+?)(?= [A-D]\. | Answer)", q))
            assert len(set(options.values())) == len(options) >= 2 and options[a] == m["final_answer"][3:]


def test_videocom_traces_parse_and_ground(built):
    root, rows = built
    for r in rows:
        m = r["meta"]
        turns = m["traces"]["videocom"]
        assert r["messages"][1:] == turns  # the default trace is the one trained on
        assistant = [t["content"][0]["text"] for t in turns if t["role"] == "assistant"]
        tools = [t["content"] for t in turns if t["role"] == "tool"]
        manips = [mp for text in assistant for mp in parse(text).manipulations]
        assert [mp.kind for mp in manips] == [{"segment": "FIND_SEGMENT", "frame": "FIND_FRAME",
                                                "zoom": "SPATIAL_ZOOM"}[s["op"]] for s in m["steps"]]
        assert len(tools) == len(manips)
        for mp, step, back in zip(manips, m["steps"], tools):
            if mp.kind == "FIND_SEGMENT":
                seg = {i: (s, e) for i, s, e in m["segments"]}
                lo, hi = seg[int(mp.values[0])][0], seg[int(mp.values[-1])][1]
                assert back[0]["video_start"] == lo and back[0]["video_end"] == hi
                assert all(lo <= f / m["fps"] < hi + 1e-9 for f in step["frames"])
            elif mp.kind == "FIND_FRAME":
                assert list(map(int, mp.values)) == step["frames"]
                assert len(back) == min(4, len(step["frames"]))
            else:
                box = list(map(int, mp.values))
                assert box == step["box"]
                f = step["frames"][0]
                visible = [t["boxes"][f - t["first"]] for t in m["tracks"] if t["first"] <= f <= t["last"]]
                hull = [min(b[0] for b in visible), 0, max(b[2] for b in visible), 0]
                assert any(b == box for b in visible) or (hull[0] <= box[0] and box[2] <= hull[2])
                crop = np.asarray(Image.open(root / back[0]["image"]).convert("RGB"))
                assert crop.shape[:2] == (box[3] - box[1], box[2] - box[0])
                inside = [t for t in m["tracks"] if t["first"] <= f <= t["last"]
                          and t["boxes"][f - t["first"]][0] >= box[0] and t["boxes"][f - t["first"]][2] <= box[2]]
                assert inside and all(color_pixels(crop, t["color"]).any() for t in inside)
        final = assistant[-1]
        assert extract_answer(final) == m["final_answer"]
        think = parse(m["traces"]["think"][0]["content"][0]["text"])
        assert not think.issues and think.answer == r["answer"]


def test_render_for_family_moves_spatial_zoom_only(built):
    _, rows = built
    r = next(r for r in rows if any(s["op"] == "zoom" for s in r["meta"]["steps"]))
    out = render_for_family(r, "qwen3_vl")
    w, h = r["meta"]["image_size"]
    for before, after in zip(r["messages"], out["messages"]):
        if before["role"] != "assistant":
            continue
        b, a = parse(before["content"][0]["text"]), parse(after["content"][0]["text"])
        for mb, ma in zip(b.manipulations, a.manipulations):
            if mb.kind == "SPATIAL_ZOOM":
                x1, y1, x2, y2 = mb.values
                assert ma.values == (round(x1 * 1000 / w), round(y1 * 1000 / h), round(x2 * 1000 / w),
                                     round(y2 * 1000 / h))
            else:
                assert ma.values == mb.values  # frame and segment ids are not coordinates


def test_card_preview_and_bad_options(built, tmp_path):
    root, _ = built
    assert (root / "preview.png").exists() and "temporal_grounding" in (root / "README.md").read_text()
    with pytest.raises(ValueError, match="even"):
        video_clips.build(tmp_path, n=1, size=[255, 192])
