"""Video clips of moving objects with per-frame boxes and event times; temporal and Video-CoM questions.

Each sample simulates a clip (`video_sim`: a few seconds, small frames, known integer fps), encodes it
as H.264 MP4 with PyAV, and asks one question: when an object appears / disappears / is visible, when
two objects collide (temporal grounding, GT in ``time_spans``), which object appears first, what
collides with X (multiple choice), how many objects are visible at t (counting). Targets:

- ``videocom``: Video-CoM's chain of manipulations (arXiv 2511.23477; train/manipulation_model.py in
  github.com/mbzuai-oryx/Video-CoM): ``FIND_SEGMENT(q) = [ids]`` -> the segment comes back as a video
  part with ``video_start``/``video_end``; ``FIND_FRAME(q) = [frames]`` -> the frame as an image;
  ``SPATIAL_ZOOM(q) = [x1, y1, x2, y2]`` (the object's exact box in that frame, original pixels) -> the
  crop; then ``FINAL_ANSWER: ...``;
- ``think``: ``<think>`` with the frame numbers and times, then ``<answer>``.

Frames are numbered from 0 and frame f is shown at f / fps s; segments are numbered from 1.
Per-frame boxes are in ``meta["tracks"]``, events in ``meta["events"]``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from mmreason.data_builders.card import TILE, draw_boxes, timeline
from mmreason.data_builders.common import (DEFAULT_CHUNK_SIZE, SampleContext, atomic_target, build_dataset,
                                           check_options, phase, save_image)
from mmreason.data_builders.gcot import text_turn
from mmreason.data_builders.video_sim import Clip, render_frame, simulate
from mmreason.traces import render_block

NAME = "video_clips"
TRACES = ("videocom", "think", "none")
QTYPES = {"appear": "temporal_grounding", "disappear": "temporal_grounding", "visible_span": "temporal_grounding",
          "collide": "temporal_grounding", "order": "vqa", "collide_color": "vqa", "count_at": "counting"}
DEFAULTS = {"qtypes": sorted(QTYPES), "trace": "videocom", "size": [256, 192], "fps": 10, "duration": [3.0, 5.0],
            "objects": [2, 4], "segment_seconds": 1.0}


# ------------------------------------------------------------------------------------------ encoding
def encode_mp4(frames: list[Image.Image], fps: int, target: tuple[Path, str]) -> str:
    """H.264 (yuv420p, CRF 18, no B-frames, a keyframe a second, one thread so bytes are reproducible)."""
    import av

    path, rel = target
    with phase("encode"):
        tmp = atomic_target(path)
        with av.open(str(tmp), "w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=fps)
            stream.width, stream.height = frames[0].size
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": "18", "preset": "veryfast", "bf": "0", "g": str(fps)}
            stream.codec_context.thread_count = 1
            for im in frames:
                container.mux(stream.encode(av.VideoFrame.from_image(im)))
            container.mux(stream.encode())
        os.replace(tmp, path)
    return rel


# ----------------------------------------------------------------------------------------- questions
def _t(frame: int, fps: int) -> str:
    return f"{frame / fps:.2f}"


def _segments(clip: Clip, seconds: float) -> list[tuple[int, float, float]]:
    n = max(1, int(np.ceil(clip.duration / seconds - 1e-9)))
    return [(i + 1, round(i * seconds, 6), round(min((i + 1) * seconds, clip.duration), 6)) for i in range(n)]


def _seg_of(frame: int, clip: Clip, segs) -> int:
    t = frame / clip.fps
    return next((i for i, s, e in segs if s <= t < e), segs[-1][0])


def _options(rng, correct: str, pool: list[str]) -> tuple[list[str], str]:
    opts = list(dict.fromkeys([correct, *pool]))  # distinct options, the answer among them
    opts = [opts[i] for i in rng.permutation(len(opts))][:4]
    if correct not in opts:
        opts[int(rng.integers(len(opts)))] = correct
    return opts, "ABCD"[opts.index(correct)]


def _mcq(question: str, opts: list[str]) -> str:
    return question + " Options: " + " ".join(f"{'ABCD'[i]}. {o}" for i, o in enumerate(opts)) + \
        " Answer with the option's letter."


@dataclass(frozen=True)
class VideoQA:
    question: str
    answer: str
    final: str  # what follows FINAL_ANSWER: (the letter and the option for multiple choice)
    spans: list  # [(label, start s, end s)]
    steps: list  # ("segment", query, [frames]) | ("frame", query, [frames]) | ("zoom", query, frame, box)
    reason: str


def _question(rng, clip: Clip, qtype: str) -> VideoQA | None:
    """A question of `qtype` about `clip`, or None when this clip cannot support it (caller resimulates)."""
    fps, tr = clip.fps, clip.tracks
    pick = tr[int(rng.integers(len(tr)))]
    if qtype == "appear":
        cands = [t for t in tr if t.first > 0]
        if not cands:
            return None
        t = cands[int(rng.integers(len(cands)))]
        steps = [("segment", f"the {t.label} appears", [t.first]),
                 ("frame", f"the first frame showing the {t.label}", [t.first]),
                 ("zoom", f"the {t.label}", t.first, t.box_at(t.first))]
        when = _t(t.first, fps)
        return VideoQA(f"At what time (in seconds) does the {t.label} appear?", when, when,
                       [(f"{t.label} appears", t.first / fps, (t.first + 1) / fps)], steps,
                       f"The {t.label} is not in frame {t.first - 1} and first shows in frame {t.first}, "
                       f"which is at {t.first} / {fps} = {_t(t.first, fps)} s")
    if qtype == "disappear":
        cands = [t for t in tr if t.last < clip.num_frames - 1]
        if not cands:
            return None
        t = cands[int(rng.integers(len(cands)))]
        gone = t.last + 1
        steps = [("segment", f"the {t.label} disappears", [gone]),
                 ("frame", f"the last frame showing the {t.label} and the first without it", [t.last, gone])]
        return VideoQA(f"At what time (in seconds) does the {t.label} disappear?", _t(gone, fps), _t(gone, fps),
                       [(f"{t.label} disappears", gone / fps, (gone + 1) / fps)], steps,
                       f"The {t.label} is last seen in frame {t.last} and is gone from frame {gone}, "
                       f"which is at {gone} / {fps} = {_t(gone, fps)} s")
    if qtype == "visible_span":
        t = pick
        ans = f"{_t(t.first, fps)} to {_t(t.last + 1, fps)}"
        steps = [("segment", f"the {t.label} is visible", list(range(t.first, t.last + 1))),
                 ("frame", f"the first and last frames showing the {t.label}", [t.first, t.last])]
        return VideoQA(f"During which time span (start and end in seconds) is the {t.label} visible?", ans, ans,
                       [(f"{t.label} visible", t.first / fps, (t.last + 1) / fps)], steps,
                       f"The {t.label} is visible from frame {t.first} through frame {t.last}, so from "
                       f"{_t(t.first, fps)} s until {_t(t.last + 1, fps)} s")
    if qtype in ("collide", "collide_color"):
        if clip.collision is None:
            return None
        c, ia, ib = clip.collision
        a, b = tr[ia], tr[ib]
        if qtype == "collide":
            box = _union(a.box_at(c), b.box_at(c))
            steps = [("segment", f"the {a.label} and the {b.label} meet", [c]),
                     ("frame", f"the first frame where the {a.label} touches the {b.label}", [c]),
                     ("zoom", f"the {a.label} touching the {b.label}", c, box)]
            return VideoQA(f"At what time (in seconds) do the {a.label} and the {b.label} collide?", _t(c, fps),
                           _t(c, fps), [(f"{a.label} hits {b.label}", c / fps, (c + 1) / fps)], steps,
                           f"Frame {c} is the first where the {a.label} touches the {b.label}, "
                           f"which is at {c} / {fps} = {_t(c, fps)} s")
        hit, other = (a, b) if rng.random() < 0.5 else (b, a)
        opts, letter = _options(rng, hit.color, [t.color for t in tr] + ["green", "yellow", "purple", "pink"])
        steps = [("segment", f"an object touches the {other.label}", [c]),
                 ("frame", f"the first frame where an object touches the {other.label}", [c]),
                 ("zoom", f"the object touching the {other.label}", c, hit.box_at(c))]
        return VideoQA(_mcq(f"What colour is the object that collides with the {other.label}?", opts), letter,
                       f"{letter}. {hit.color}", [(f"{hit.label} hits {other.label}", c / fps, (c + 1) / fps)],
                       steps,
                       f"In frame {c} the object touching the {other.label} is the {hit.label}, so its colour is "
                       f"{hit.color}, option {letter}")
    if qtype == "order":
        firsts = sorted(t.first for t in tr)
        if len(tr) < 2 or firsts[1] - firsts[0] < 3:  # a clear first, at least 3 frames ahead
            return None
        first = min(tr, key=lambda t: t.first)
        opts, letter = _options(rng, first.label, [t.label for t in tr])
        shown = [next(t for t in tr if t.label == o) for o in opts]
        steps = [("frame", "the first frame showing each option: " + ", ".join(opts), [t.first for t in shown])]
        when = ", ".join(f"the {t.label} in frame {t.first}" for t in shown)
        return VideoQA(_mcq("Which object appears first?", opts), letter, f"{letter}. {first.label}",
                       [(f"{first.label} appears", first.first / fps, (first.first + 1) / fps)], steps,
                       f"The options first show up as follows: {when}; the earliest is the {first.label}, "
                       f"option {letter}")
    if qtype == "count_at":
        f = int(rng.integers(clip.num_frames))
        vis = clip.visible(f)
        steps = [("frame", f"the frame at {_t(f, fps)} s", [f])]
        steps += [("zoom", f"the {t.label}", f, t.box_at(f)) for t in vis[:3]]
        seen = ", ".join(f"the {t.label}" for t in vis) or "nothing"
        return VideoQA(f"How many objects are visible at {_t(f, fps)} seconds?", str(len(vis)), str(len(vis)),
                       [(f"frame at {_t(f, fps)} s", f / fps, (f + 1) / fps)], steps,
                       f"{_t(f, fps)} s is frame {f} ({_t(f, fps)} x {fps}); it shows {seen}: "
                       f"{len(vis)} object{'s' if len(vis) != 1 else ''}")
    raise ValueError(f"unknown video qtype {qtype!r}")


def _union(a, b):
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


# -------------------------------------------------------------------------------------------- traces
_LEADS = {"segment": "First I find the part of the video where {q}.", "frame": "I locate {q}.",
          "zoom": "I zoom in on {q} to check it."}


def videocom_turns(qa: VideoQA, clip: Clip, segs, video: str, save_frame, save_crop) -> list[dict]:
    """Video-CoM's manipulation chain as assistant/tool turns (the environment's returns as tool turns)."""
    turns = []
    for step in qa.steps:
        op, query = step[0], step[1]
        lead = _LEADS[op].format(q=query)
        if op == "segment":
            ids = sorted({_seg_of(f, clip, segs) for f in step[2]})
            call = f"FIND_SEGMENT({query}) = [{', '.join(map(str, ids))}]"
            start, end = segs[ids[0] - 1][1], segs[ids[-1] - 1][2]
            back = [{"type": "video", "video": video, "video_start": start, "video_end": end}]
        elif op == "frame":
            call = f"FIND_FRAME({query}) = [{', '.join(map(str, step[2]))}]"
            back = [{"type": "image", "image": save_frame(f)} for f in step[2][:4]]
        else:
            frame, box = step[2], step[3]
            call = f"SPATIAL_ZOOM({query}) = [{', '.join(map(str, box))}]"
            lead = f"{lead[:-1]} in frame {frame}."
            back = [{"type": "image", "image": save_crop(frame, box)}]
        turns.append(text_turn("assistant", f"{lead} {call}"))
        turns.append({"role": "tool", "content": back})
    turns.append(text_turn("assistant", f"{qa.reason}.\nFINAL_ANSWER: {qa.final}"))
    return turns


def think_turns(qa: VideoQA) -> list[dict]:
    text = render_block("think", qa.reason + ".") + "\n" + render_block("answer", qa.answer)
    return [text_turn("assistant", text)]


# ------------------------------------------------------------------------------------------- builder
def _simulate_for(rng, qtype: str, opts: dict) -> tuple[Clip, VideoQA]:
    fps = int(opts["fps"])
    for _ in range(100):
        dur = round(float(rng.uniform(*opts["duration"])) * fps) / fps
        n_obj = int(rng.integers(opts["objects"][0], opts["objects"][1] + 1))
        collide = qtype in ("collide", "collide_color") or rng.random() < 0.3
        clip = simulate(rng, width=int(opts["size"][0]), height=int(opts["size"][1]), fps=fps, duration=dur,
                        n_objects=max(n_obj, 2), collide=collide)
        qa = _question(rng, clip, qtype)
        if qa is not None:
            return clip, qa
    raise RuntimeError(f"video_clips: no clip supported a {qtype!r} question in 100 tries; widen the options")


def make_sample(ctx: SampleContext) -> dict:
    opts, rng = ctx.options, ctx.rng
    qtype = opts["qtypes"][int(rng.integers(len(opts["qtypes"])))]
    with phase("render"):
        clip, qa = _simulate_for(rng, qtype, opts)
        frames = [render_frame(clip, f) for f in range(clip.num_frames)]
    video = encode_mp4(frames, clip.fps, ctx.media("clip", "mp4"))
    segs = _segments(clip, float(opts["segment_seconds"]))
    saved: dict = {}

    def save_frame(f):
        if ("frame", f) not in saved:
            saved[("frame", f)] = save_image(frames[f], ctx.media(f"frame{f:04d}", "png"))
        return saved[("frame", f)]

    def save_crop(f, box):
        if ("crop", f, box) not in saved:
            target = ctx.media(f"frame{f:04d}-zoom{len(saved)}", "png")
            saved[("crop", f, box)] = save_image(frames[f].crop(box), target)
        return saved[("crop", f, box)]

    question = (f"{qa.question} (The video is {clip.duration:.2f} s long at {clip.fps} fps; frames are numbered "
                f"from 0, and it is split into {len(segs)} segments of {opts['segment_seconds']:g} s "
                "numbered from 1.)")
    traces = {"videocom": videocom_turns(qa, clip, segs, video, save_frame, save_crop), "think": think_turns(qa)}
    chosen = opts["trace"]
    user = {"role": "user", "content": [{"type": "video", "video": video}, {"type": "text", "text": question}]}
    events = [{"type": "appear", "label": t.label, "frame": t.first, "time": t.first / clip.fps}
              for t in clip.tracks if t.first > 0]
    events += [{"type": "disappear", "label": t.label, "frame": t.last + 1, "time": (t.last + 1) / clip.fps}
               for t in clip.tracks if t.last < clip.num_frames - 1]
    if clip.collision:
        c, a, b = clip.collision
        events.append({"type": "collide", "label": f"{clip.tracks[a].label} + {clip.tracks[b].label}", "frame": c,
                       "time": c / clip.fps})
    steps = [{"op": s[0], "query": s[1], "frames": s[2] if s[0] != "zoom" else [s[2]],
              "box": list(s[3]) if s[0] == "zoom" else None} for s in qa.steps]
    return {
        "id": ctx.id, "messages": [user] + (traces[chosen] if chosen != "none" else []), "answer": qa.answer,
        "task": QTYPES[qtype], "source": NAME,
        "time_spans": [{"label": lab, "start": s, "end": e} for lab, s, e in qa.spans],
        "meta": {
            "qtype": qtype, "trace": chosen, "traces": traces, "final_answer": qa.final, "steps": steps,
            "fps": clip.fps, "num_frames": clip.num_frames, "duration": clip.duration,
            "image_size": [clip.width, clip.height], "coord_frame": "pixel", "events": events,
            "segments": [[i, s, e] for i, s, e in segs],
            "tracks": [{"label": t.label, "color": t.color, "shape": t.shape, "first": t.first, "last": t.last,
                        "boxes": [list(t.box_at(f)) for f in range(t.first, t.last + 1)]} for t in clip.tracks],
        },
    }


def preview(row: dict, root: str | Path) -> Image.Image:
    """Card tile: the frame at the first GT time span with every visible object's box, and the timeline."""
    import av

    meta = row["meta"]
    spans = row.get("time_spans") or []
    f = min(int(round((spans[0]["start"] if spans else 0.0) * meta["fps"])), meta["num_frames"] - 1)
    frame = None
    with av.open(str(Path(root) / row["messages"][0]["content"][0]["video"])) as c:
        for i, fr in enumerate(c.decode(video=0)):
            if i == f:
                frame = fr.to_image()
                break
    boxes = [{"box": t["boxes"][f - t["first"]], "image": 0}
             for t in meta["tracks"] if t["first"] <= f <= t["last"]]
    img = draw_boxes(frame or Image.new("RGB", tuple(meta["image_size"])), {"boxes": boxes}, 0, TILE)
    tile = Image.new("RGB", (TILE, img.height + 24), (255, 255, 255))
    tile.paste(img, (0, 0))
    tile.paste(timeline(meta["duration"], spans), (0, img.height))
    return tile


def build(out_dir: str | Path, *, n: int, seed: int = 0, shard: tuple[int, int] = (0, 1), workers: int = 1,
          chunk_size: int = DEFAULT_CHUNK_SIZE, progress: bool = True, **options) -> Path:
    """Moving-object video clips with per-frame boxes, event times and Video-CoM manipulation traces."""
    opts = {**DEFAULTS, **options}
    check_options("video_clips", opts, QTYPES, TRACES)
    if int(opts["objects"][0]) < 2 or int(opts["fps"]) < 1 or any(int(v) % 2 for v in opts["size"]):
        raise ValueError("video_clips: need objects >= 2, fps >= 1 and even frame sizes (yuv420p)")
    return build_dataset(out_dir, name=NAME, make_sample=make_sample, n=n, seed=seed, shard=shard, options=opts,
                         workers=workers, chunk_size=chunk_size, progress=progress, preview=preview)
