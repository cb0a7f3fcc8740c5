"""Video adapter: which frames are sampled, their exact times, pixel budgets, backends and bad files.

Clips are written by the test with each frame's number drawn as 8 black/white blocks, so a decoded
frame tells which source frame it is, through compression and resizing.
"""

import numpy as np
import pytest

from mmreason.errors import MediaError
from mmreason.families import FAMILIES
from mmreason.modalities import load_dataset_media
from mmreason.modalities.video import (
    LoadedVideo, VideoFrame, frame_budget, load_part, load_video, sample_indices, write_video,
)

W, H = 64, 48
SMALL = {"min_pixels": 28 * 28, "max_pixels": 56 * 56}


def coded_frame(i: int) -> np.ndarray:
    """Frame number `i` (0-255) as 8 blocks (4 columns x 2 rows), white = bit set."""
    arr = np.zeros((H, W, 3), np.uint8)
    for bit in range(8):
        if i >> bit & 1:
            r, c = divmod(bit, 4)
            arr[r * H // 2:(r + 1) * H // 2, c * W // 4:(c + 1) * W // 4] = 255
    return arr


def read_code(frame) -> int:
    """Inverse of `coded_frame` for a decoded frame (HWC or CHW, any size): sample each block's centre."""
    arr = np.asarray(frame)
    if arr.shape[0] == 3:
        arr = arr.transpose(1, 2, 0)
    h, w = arr.shape[:2]
    value = 0
    for bit in range(8):
        r, c = divmod(bit, 4)
        y, x = int((r + 0.5) * h / 2), int((c + 0.5) * w / 4)
        if arr[y - 1:y + 2, x - 1:x + 2].mean() > 127:
            value |= 1 << bit
    return value


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    write_video(d / "c30.mp4", [coded_frame(i) for i in range(30)], 10)  # 3 s at 10 fps
    write_video(d / "c30.ts", [coded_frame(i) for i in range(30)], 10, container_format="mpegts")
    write_video(d / "c30.gif", [coded_frame(i) for i in range(30)], 10, codec="gif", pix_fmt="rgb8",
                container_format="gif")
    write_video(d / "one.mp4", [coded_frame(5)], 10)
    (d / "zero.mp4").write_bytes(b"")
    (d / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + np.random.default_rng(0).bytes(4000))
    (d / "notes.mp4").write_text("this is not a video")
    good = (d / "c30.mp4").read_bytes()
    (d / "truncated.mp4").write_bytes(good[: len(good) // 3])
    return d


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_sampled_frames_are_the_recorded_ones(clips, backend):
    video = load_video(clips / "c30.mp4", "qwen2_5_vl", nframes=6, backend=backend, **SMALL)
    f = video.frame
    assert f.backend == backend and f.total_frames == 30 and f.fps == pytest.approx(10.0)
    assert f.frame_indices == (0, 6, 12, 17, 23, 29)
    assert [read_code(x) for x in video.frames] == list(f.frame_indices)
    assert f.timestamps == pytest.approx([i / 10 for i in f.frame_indices], abs=1e-3)
    assert video.frames.shape == (6, 3, f.resized_height, f.resized_width)
    assert str(video.frames.dtype) == "torch.uint8"


def test_fps_sampling_follows_qwen_vl_utils_rule(clips):
    assert load_video(clips / "c30.mp4", fps=2.0, **SMALL).frame.num_sampled == 6  # 3 s x 2 fps
    assert load_video(clips / "c30.mp4", fps=1.0, **SMALL).frame.num_sampled == 4  # at least 4 frames
    assert load_video(clips / "c30.mp4", fps=8.0, max_frames=10, **SMALL).frame.num_sampled == 10
    assert load_video(clips / "c30.mp4", fps=100.0, **SMALL).frame.num_sampled == 30  # never more than exist
    for total, fps, kw in [(7, 10.0, {}), (31, 7.5, {"sample_fps": 3.3}), (100, 25.0, {"nframes": 7}),
                           (1, 10.0, {}), (3, 10.0, {"nframes": 8})]:
        first, last, idx = sample_indices(total, fps, **kw)
        assert len(idx) % 2 == 0 and len(idx) >= 2 and all(first <= i <= last for i in idx)
        assert idx == sorted(idx)


def test_time_span_sampling(clips):
    video = load_video(clips / "c30.mp4", "qwen2_vl", video_start=1.0, video_end=2.0, nframes=4, **SMALL)
    f = video.frame
    assert (f.start_frame, f.end_frame) == (10, 20)
    assert f.frame_indices == (10, 13, 17, 20)
    assert [read_code(x) for x in video.frames] == [10, 13, 17, 20]
    assert f.timestamps == pytest.approx([1.0, 1.3, 1.7, 2.0], abs=1e-3)
    meta = f.to_metadata()
    assert meta.frames_indices == [10, 13, 17, 20] and meta.fps == pytest.approx(10.0)
    assert meta.timestamps == pytest.approx(list(f.timestamps), abs=1e-3)
    assert meta.sampled_fps == pytest.approx(f.sampled_fps) == pytest.approx(4 / 11 * 10)
    with pytest.raises(MediaError, match="c30.mp4.*empty time span"):
        load_video(clips / "c30.mp4", video_start=2.5, video_end=2.0, sample_id="s")


def test_time_and_frame_conversions_round_trip():
    f = VideoFrame(fps=29.97, total_frames=900, frame_indices=(0, 450, 899), timestamps=(0.0, 15.015, 29.996),
                   width=64, height=48, resized_width=56, resized_height=56, start_frame=0, end_frame=899,
                   backend="decord")
    for i in range(f.total_frames):
        assert f.time_to_frame(f.frame_to_time(i)) == i
    first, last = f.span_to_frames(3.5, 6.0)
    assert f.frame_to_time(first) <= 3.5 < f.frame_to_time(first + 1)
    assert f.frame_to_time(last) < 6.0 <= f.frame_to_time(last + 1) + 1e-9
    assert f.span_to_frames(*f.frames_to_span(first, last)) == (first, last)
    assert f.time_to_frame(-5) == 0 and f.time_to_frame(1e9) == 899
    assert f.time_to_sample(14.0) == 1 and f.span_to_samples(10, 30) == [1, 2]
    assert f.image_frame.resized_width == 56 and f.duration == pytest.approx(900 / 29.97)


def test_pixel_budget_shrinks_per_frame_as_frames_grow(clips):
    fam = FAMILIES["qwen3_vl"]
    per_frame = [frame_budget(n, fam)[1] for n in (4, 256, 1024, 4096)]
    assert per_frame == sorted(per_frame, reverse=True) and per_frame[0] > per_frame[-1]
    assert per_frame[0] == 768 * 32 * 32  # the per-frame ceiling for a short clip
    assert frame_budget(4, fam, max_pixels=5000)[1] == 5000
    # qwen-vl-utils counts the total budget per temporal pair: each of 8 frames gets total / 8 * 2
    assert frame_budget(8, fam, min_pixels=0, total_pixels=16384) == (0, 4096)
    small = load_video(clips / "c30.mp4", "qwen3_vl", nframes=8, min_pixels=0, total_pixels=8 * 32 * 32 / 2)
    big = load_video(clips / "c30.mp4", "qwen3_vl", nframes=2, min_pixels=0, total_pixels=8 * 32 * 32 / 2)
    area = [v.frame.resized_width * v.frame.resized_height for v in (small, big)]
    assert area[0] < area[1]
    assert all(v.frame.resized_width % 32 == 0 and v.frame.resized_height % 32 == 0 for v in (small, big))


def test_single_frame_video_is_padded_to_the_temporal_patch(clips):
    video = load_video(clips / "one.mp4", **SMALL)
    assert video.frame.frame_indices == (0, 0) and video.frames.shape[0] == 2
    assert read_code(video.frames[1]) == 5


def test_auto_falls_back_to_pyav_when_decord_cannot_read(clips):
    with pytest.raises(MediaError, match="c30.gif.*decord"):
        load_video(clips / "c30.gif", backend="decord", **SMALL)
    video = load_video(clips / "c30.gif", nframes=4, **SMALL)
    assert video.frame.backend == "pyav" and video.frame.total_frames == 30
    assert [read_code(x) for x in video.frames] == list(video.frame.frame_indices)


def test_containers_without_seek_index_are_read_in_order(clips):
    # PyAV reports no frame count for MPEG-TS (packets are counted) and decord seeks in it wrongly.
    video = load_video(clips / "c30.ts", nframes=6, **SMALL)
    assert video.frame.backend == "pyav" and video.frame.total_frames == 30
    assert [read_code(x) for x in video.frames] == list(video.frame.frame_indices) == [0, 6, 12, 17, 23, 29]


@pytest.mark.parametrize("name", ["zero.mp4", "corrupt.mp4", "notes.mp4", "truncated.mp4", "absent.mp4"])
def test_bad_videos_raise_media_error_naming_file_and_sample(clips, name):
    with pytest.raises(MediaError) as info:
        load_part({"type": "video", "video": name, **SMALL}, root=clips, sample_id="vid-3")
    assert name in str(info.value) and "vid-3" in str(info.value)


def test_part_options_and_recipe_defaults(clips):
    part = {"type": "video", "video": "c30.mp4", "nframes": 4, "fps": None, "video_start": None, **SMALL}
    video = load_part(part, root=clips, family="qwen2_vl", defaults={"fps": 1.0, "backend": "pyav"})
    assert isinstance(video, LoadedVideo) and video.frame.num_sampled == 4 and video.frame.backend == "pyav"
    from_recipe = load_part({"type": "video", "video": str(clips / "c30.mp4")}, family="qwen2_vl",
                            defaults={"fps": 2.0, **SMALL})
    assert from_recipe.frame.num_sampled == 6
    with pytest.raises(MediaError, match="either fps or nframes"):
        load_part({"type": "video", "video": "c30.mp4", "fps": 1.0, "nframes": 4}, root=clips, sample_id="x")


def test_frame_list_video(tmp_path):
    from PIL import Image

    paths = []
    for i in range(3):
        Image.fromarray(coded_frame(i + 1)).save(tmp_path / f"f{i}.png")
        paths.append(f"f{i}.png")
    video = load_part({"type": "video", "video": paths, "fps": 1.0, **SMALL}, root=tmp_path)
    assert video.frame.frame_indices == (0, 1, 2, 2) and video.frame.timestamps == (0.0, 1.0, 2.0, 2.0)
    assert [read_code(x) for x in video.frames] == [1, 2, 3, 3]


def test_dataset_loader_skips_bad_videos_with_count(clips):
    rows = [{"id": name,
             "messages": [{"role": "user", "content": [{"type": "video", "video": name, **SMALL}]}]}
            for name in ("c30.mp4", "zero.mp4", "corrupt.mp4")]
    kept, report = load_dataset_media(rows, clips, "qwen2_vl", on_error="skip")
    assert [r["id"] for r, _ in kept] == ["c30.mp4"] and report.skipped == 2
    assert "zero.mp4" in report.errors[0] and "corrupt.mp4" in report.errors[1]


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
@pytest.mark.parametrize("options", [{}, {"fps": 4.0}, {"nframes": 6}, {"video_start": 0.5, "video_end": 2.2},
                                     {"fps": 2.0, "max_pixels": 64 * 64, "min_pixels": 32 * 32}])
def test_sampling_and_sizes_match_qwen_vl_utils(clips, family, options):
    from qwen_vl_utils.vision_process import fetch_video

    patch = FAMILIES[family].patch_size
    theirs, meta = fetch_video({"video": str(clips / "c30.mp4"), **options}, image_patch_size=patch,
                               return_video_metadata=True)
    ours = load_video(clips / "c30.mp4", family, backend="decord", **options)
    assert list(ours.frame.frame_indices) == list(meta["frames_indices"])
    assert tuple(ours.frames.shape) == tuple(theirs.shape)


@pytest.mark.parametrize("options,reason", [
    ({"fps": 0}, "fps must be a number > 0, got 0"), ({"nframes": -3}, "nframes must be a whole number >= 1"),
    ({"fps": float("nan")}, "fps must be a number > 0"), ({"min_pixels": 1e10}, "over the ceiling"),
    ({"total_pixels": 1e12}, "total_pixels 1e\\+12 is over the ceiling"),
])
def test_video_options_out_of_their_domain_are_named(clips, options, reason):
    # fps=0 was sampled as 4 frames and nframes=-3 as 2, silently
    rows = [{"id": i, "messages": [{"role": "user", "content": [{"type": "video", "video": "c30.mp4", **o}]}]}
            for i, o in (("typo-1", {**SMALL, **options}), ("fine", SMALL))]
    with pytest.raises(MediaError, match=f"sample 'typo-1'.*c30\\.mp4: .*{reason}"):
        load_dataset_media(rows, clips, "qwen2_vl")
    kept, report = load_dataset_media(rows, clips, "qwen2_vl", on_error="skip")
    assert [r["id"] for r, _ in kept] == ["fine"] and report.skipped == 1


def test_a_picture_given_as_a_video_is_refused(clips, tmp_path):
    from PIL import Image

    Image.fromarray(coded_frame(3)).save(tmp_path / "still.png")  # FFmpeg reads it as a 1-frame video
    with pytest.raises(MediaError, match=r"sample 'v-2'.*still\.png: a still PNG image given as a video"):
        load_part({"type": "video", "video": "still.png", **SMALL}, root=tmp_path, sample_id="v-2")
    assert load_part({"type": "video", "video": "c30.gif", **SMALL}, root=clips).frame.num_sampled >= 4
