"""Video tools on generated clips whose frames say which frame they are: seek by time and frame number,
zoom into the frame seen last, re-sampled segments, numbered segments, clips given as pictures, bad input."""

import numpy as np
import pytest
from PIL import Image

from mmreason.modalities.video import load_video, write_video
from mmreason.tools import run_tool_call
from mmreason.tools.env import ToolEnv, ToolSettings

FPS, FRAMES, W, H = 10, 30, 96, 64
BUDGET = {"image": {"min_pixels": 0, "max_pixels": 64 * 64}, "video": {"min_pixels": 0, "max_pixels": 64 * 64}}


def _frame(i):
    """Grey level 8*i, and a white 32 x 32 square whose left edge moves 2 px per frame."""
    img = np.full((H, W, 3), 8 * i, np.uint8)
    img[16:48, 2 * i:2 * i + 32] = 255
    return img


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("tool-video") / "clip.mp4"
    return write_video(path, [_frame(i) for i in range(FRAMES)], FPS)


def _env(clip, **settings):
    video = load_video(clip, "qwen2_5_vl", nframes=4, max_pixels=64 * 64, min_pixels=0)
    return ToolEnv("qwen2_5_vl", videos=[video], settings=ToolSettings(coord_frame="pixel", **settings),
                   media_options=BUDGET)


def _call(env, name, **arguments):
    return run_tool_call({"name": name, "arguments": arguments}, env)


def _grey(obs):
    """Grey level of the returned picture's left column band (outside the square while it is to the right)."""
    picture = obs.images[0]
    return float(np.asarray(picture.original or picture.image)[:, -4:].mean())


def test_seek_by_time_and_by_frame_number(clip):
    env = _env(clip)
    by_time = _call(env, "seek_frame", time=1.0)
    assert not by_time.error and by_time.info["frame"] == 10 and by_time.info["time"] == 1.0
    assert abs(_grey(by_time) - 80) < 12  # frame 10 is grey 80 (lossy H.264)
    by_number = _call(env, "seek_frame", frame=3)
    assert by_number.info["frame"] == 3 and abs(_grey(by_number) - 24) < 12
    assert by_number.text == "Frame 3 at 0.30 s." and env.current_frame == (0, 3)
    # decoded again at full resolution, whatever the prompt's sampling was
    assert by_number.images[0].frame.width == W and by_number.images[0].frame.height == H


@pytest.mark.parametrize("arguments, reason", [
    ({}, "exactly one of time"),
    ({"time": 1.0, "frame": 3}, "exactly one of time"),
    ({"time": 3.5}, "between 0 and 3"),
    ({"time": float("nan")}, "finite"),
    ({"frame": 30}, "between 0 and 29"),
    ({"frame": -1}, "between 0 and 29"),
    ({"frame": 2.5}, "whole number"),
    ({"frame": "7"}, "must be a number"),
    ({"frame": 1, "video_index": 1}, "video_index must be between 0 and 0"),
])
def test_bad_seeks(clip, arguments, reason):
    obs = _call(_env(clip), "seek_frame", **arguments)
    assert obs.error and reason in obs.text, obs.text


def test_zoom_frame_uses_the_frame_seen_last_and_crops_full_resolution(clip):
    env = _env(clip)
    assert "call seek_frame first" in _call(env, "zoom_frame", bbox_2d=[0, 0, 40, 40]).text
    _call(env, "seek_frame", frame=20)  # the square spans x 40..72
    obs = _call(env, "zoom_frame", bbox_2d=[40, 16, 72, 48], label="square")
    assert not obs.error and obs.info["frame"] == 20 and obs.info["box_pixel"] == (40.0, 16.0, 72.0, 48.0)
    assert np.asarray(obs.images[0].original).mean() > 230  # all white: the square, not the background
    other = _call(env, "zoom_frame", bbox_2d=[40, 16, 72, 48], frame=0)  # at frame 0 the square is at 0..32
    assert np.asarray(other.images[0].original).mean() < 60
    assert "too small" in _call(env, "zoom_frame", bbox_2d=[0, 0, 20, 20]).text  # DeepEyes' rules apply


def test_clip_segment_resamples_the_span(clip):
    env = _env(clip)
    obs = _call(env, "clip_segment", start=0.5, end=2.0)
    assert not obs.error and len(obs.videos) == 1
    frames = obs.videos[0].frame.frame_indices
    assert 5 <= min(frames) and max(frames) <= 20 and len(frames) <= 16 and len(frames) % 2 == 0
    assert obs.info["span"] == (0.5, 2.0)
    capped = _call(_env(clip, segment_frames=4), "clip_segment", start=0.0, end=3.0)
    assert capped.videos[0].frame.num_sampled == 4
    past_the_end = _call(env, "clip_segment", start=2.0, end=99.0)
    assert past_the_end.info["span"] == (2.0, 3.0)


def test_numbered_segments(clip):
    assert "not divided into numbered segments" in _call(_env(clip), "clip_segment", segment=1).text
    env = _env(clip, segment_seconds=1.0)
    obs = _call(env, "clip_segment", segment=2)
    assert obs.info["span"] == (1.0, 2.0)
    assert all(10 <= f <= 20 for f in obs.videos[0].frame.frame_indices)
    assert "segment must be between 1 and 3" in _call(env, "clip_segment", segment=4).text
    assert "not both" in _call(env, "clip_segment", segment=1, start=0.0).text


@pytest.mark.parametrize("arguments, reason", [
    ({"start": 2.0, "end": 1.0}, "start < end"),
    ({"start": 1.0}, "give start and end"),
    ({"start": -1.0, "end": 1.0}, "between 0 and 3"),
    ({"start": [1], "end": 2}, "must be a number"),
])
def test_bad_segments(clip, arguments, reason):
    obs = _call(_env(clip), "clip_segment", **arguments)
    assert obs.error and reason in obs.text, obs.text


def test_a_clip_given_as_pictures(tmp_path):
    paths = []
    for i in range(4):
        paths.append(tmp_path / f"f{i}.png")
        Image.fromarray(_frame(5 * i)).save(paths[-1])
    video = load_video([str(p) for p in paths], "qwen2_5_vl", fps=1.0, max_pixels=64 * 64, min_pixels=0)
    env = ToolEnv("qwen2_5_vl", videos=[video], settings=ToolSettings(coord_frame="pixel"), media_options=BUDGET)
    seen = _call(env, "seek_frame", frame=2)
    assert not seen.error and seen.info["time"] == 2.0
    assert "cannot be re-sampled" in _call(env, "clip_segment", start=0.0, end=2.0).text
    zoomed = _call(env, "zoom_frame", bbox_2d=[0, 0, 60, 60])
    assert not zoomed.error and zoomed.info["frame"] == 2
