"""Videos into what a Qwen-VL-style processor takes, with the exact frames and times the model saw.

Sampling follows qwen-vl-utils (0.0.14) so numbers match the released models:

- a part gives ``fps`` (default 2.0 frames sampled per second, clamped to ``min_frames``=4 ..
  ``max_frames``=768) or ``nframes``, never both; ``video_start``/``video_end`` (seconds) restrict
  the span; the frame count is a multiple of the temporal patch (2) and indices are spread evenly
  (``linspace`` then round) over the span;
- per-frame pixels lie between 128 and 768 merged tokens, and a total budget across frames
  (``total_pixels``, default 128000 tokens x 0.9) shrinks the per-frame budget as the count grows.

Unlike qwen-vl-utils, a decoding failure is never silently retried with another reader that may sample
differently: ``backend="auto"`` tries decord then PyAV (PyAV only, for containers decord seeks wrongly
in) and, if both fail, raises one `MediaError` that names the file, the sample and both reasons.

The ``VideoFrame`` record keeps the sampled indices, their timestamps (from the decoded frames'
presentation times) and the resized size, so "from 3.5 s to 6 s" converts to and from frame indices
and boxes on frames map back through ``geometry``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from mmreason.errors import MediaError
from mmreason.families import Family, as_family
from mmreason.geometry import ImageFrame, smart_resize
from mmreason.modalities.image import open_image, resolve_media_path

FRAME_FACTOR = 2  # frames per temporal patch
FPS = 2.0
FPS_MIN_FRAMES = 4
FPS_MAX_FRAMES = 768
VIDEO_MIN_TOKENS = 128  # per frame, in merged tokens
VIDEO_MAX_TOKENS = 768
MODEL_SEQ_LEN = 128000  # qwen-vl-utils' total video budget is this many tokens x 0.9
BACKENDS = ("auto", "decord", "pyav")
# Containers without a seek index: decord seeks in them to the wrong frames *without an error* (an MPEG-TS
# clip asked for frames 0, 6, 12 returned 16, 22, 28), so "auto" decodes them with PyAV, in order.
DECORD_UNSAFE = (".ts", ".m2ts", ".mts", ".mpg", ".mpeg", ".vob", ".gif")
_EPS = 1e-6  # float slack so 0.3 s x 10 fps is frame 3, not 4


@dataclass(frozen=True)
class VideoFrame:
    """Where the sampled frames came from: source fps and length, sampled indices and their times.

    Conversions of arbitrary times assume a constant frame rate (the source's average fps); frame i
    covers [i/fps, (i+1)/fps).
    """

    fps: float
    total_frames: int
    frame_indices: tuple[int, ...]
    timestamps: tuple[float, ...]  # seconds from the first frame, one per sampled frame
    width: int
    height: int
    resized_width: int
    resized_height: int
    start_frame: int  # the sampled span, inclusive
    end_frame: int
    backend: str

    @property
    def duration(self) -> float:
        return self.total_frames / self.fps

    @property
    def num_sampled(self) -> int:
        return len(self.frame_indices)

    @property
    def sampled_fps(self) -> float:
        """Frames per second the model sees (what processors derive mRoPE time steps from)."""
        return self.num_sampled / (self.end_frame - self.start_frame + 1) * self.fps

    @property
    def image_frame(self) -> ImageFrame:
        """The frame of every sampled picture: maps boxes on frames between coordinate frames."""
        return ImageFrame(self.width, self.height, self.resized_width, self.resized_height)

    def frame_to_time(self, index: int) -> float:
        """Start time (s) of source frame `index`.

        >>> f = VideoFrame(10.0, 100, (0, 50), (0.0, 5.0), 64, 48, 56, 56, 0, 99, "decord")
        >>> f.frame_to_time(35), f.time_to_frame(3.5), f.span_to_frames(3.5, 6.0), f.frames_to_span(35, 59)
        (3.5, 35, (35, 59), (3.5, 6.0))
        """
        return int(index) / self.fps

    def time_to_frame(self, t: float) -> int:
        """The source frame showing time `t` (s), clamped to the video."""
        return min(max(0, math.floor(float(t) * self.fps + _EPS)), self.total_frames - 1)

    def span_to_frames(self, start: float, end: float) -> tuple[int, int]:
        """Source frames (first, last) inclusive covering [start, end) seconds."""
        first = self.time_to_frame(start)
        last = min(max(first, math.ceil(float(end) * self.fps - _EPS) - 1), self.total_frames - 1)
        return first, last

    def frames_to_span(self, first: int, last: int) -> tuple[float, float]:
        """Seconds [start, end) covered by source frames first..last inclusive."""
        return self.frame_to_time(first), (int(last) + 1) / self.fps

    def time_to_sample(self, t: float) -> int:
        """Position (0-based, in the sampled frames) of the sampled frame nearest to time `t`."""
        return int(np.argmin(np.abs(np.asarray(self.timestamps) - float(t))))

    def span_to_samples(self, start: float, end: float) -> list[int]:
        """Positions of the sampled frames whose timestamps fall in [start, end]."""
        return [k for k, ts in enumerate(self.timestamps) if start - _EPS <= ts <= end + _EPS]

    def to_metadata(self) -> Any:
        """transformers' `VideoMetadata` for the processor (replaces an fps list).

        `total_num_frames` is the sampled span's length, as qwen-vl-utils reports it, so the processor's
        `sampled_fps` (and with it Qwen2.5-VL's seconds per temporal patch) is right for span sampling;
        `frames_indices` stay absolute, so Qwen3-VL's timestamp text is the time in the whole video.
        """
        from transformers.video_utils import VideoMetadata

        span = self.end_frame - self.start_frame + 1
        return VideoMetadata(
            total_num_frames=span, fps=self.fps, width=self.width, height=self.height,
            duration=span / self.fps, video_backend=self.backend, frames_indices=list(self.frame_indices),
        )


@dataclass(frozen=True)
class LoadedVideo:
    """Resized frames (T, 3, H, W) uint8 torch tensor, their record, and the source path."""

    frames: Any
    frame: VideoFrame
    path: str | None = None

    def as_parts(self, family: str | Family | None = None) -> list[dict]:
        return [{"type": "video", "video": self}]


# ----------------------------------------------------------------------------------------- sampling
def sample_indices(
    total_frames: int, fps: float, *, nframes: int | None = None, sample_fps: float | None = None,
    start: float | None = None, end: float | None = None, min_frames: int = FPS_MIN_FRAMES,
    max_frames: int = FPS_MAX_FRAMES,
) -> tuple[int, int, list[int]]:
    """(start_frame, end_frame, indices): which source frames to decode.

    A span of a single frame, or a video shorter than the temporal patch, repeats its last frame so the
    count stays a multiple of it (what the processors do with odd counts).

    >>> sample_indices(20, 10.0)  # 2 s at 10 fps -> 4 frames (the minimum)
    (0, 19, [0, 6, 13, 19])
    >>> sample_indices(100, 10.0, start=3.5, end=6.0, nframes=6)
    (35, 60, [35, 40, 45, 50, 55, 60])
    """
    if total_frames <= 0:
        raise ValueError("the video has no frames")
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"the video reports an unusable frame rate ({fps})")
    if nframes is not None and sample_fps is not None:
        raise ValueError("give either fps or nframes, not both")
    duration = total_frames / fps
    first = 0 if start is None else math.ceil(min(max(float(start), 0.0), duration) * fps - _EPS)
    last = total_frames - 1 if end is None else math.floor(min(max(float(end), 0.0), duration) * fps + _EPS)
    first, last = min(first, total_frames - 1), min(last, total_frames - 1)
    if first > last:
        raise ValueError(f"empty time span [{start}, {end}] s in a {duration:.3f} s video")
    count = last - first + 1
    if nframes is not None:
        n = max(FRAME_FACTOR, round(int(nframes) / FRAME_FACTOR) * FRAME_FACTOR)
    else:
        rate = FPS if sample_fps is None else float(sample_fps)
        lo = math.ceil(min_frames / FRAME_FACTOR) * FRAME_FACTOR
        hi = math.floor(min(max_frames, count) / FRAME_FACTOR) * FRAME_FACTOR
        n = min(max(count / fps * rate, lo), hi, count)
        n = math.floor(n / FRAME_FACTOR) * FRAME_FACTOR
    n = max(FRAME_FACTOR, min(n, math.floor(count / FRAME_FACTOR) * FRAME_FACTOR or FRAME_FACTOR))
    indices = np.linspace(first, last, n).round().astype(int).tolist()
    return first, last, indices


def frame_budget(
    nframes: int, family: str | Family | None = None, *, min_pixels: int | None = None,
    max_pixels: int | None = None, total_pixels: float | None = None,
) -> tuple[int, int]:
    """(min_pixels, max_pixels) per frame for `nframes` frames: the total budget spread across frames.

    >>> frame_budget(4, "qwen2_5_vl")  # a short clip gets the 768-token per-frame ceiling
    (100352, 602112)
    >>> frame_budget(1000, "qwen2_5_vl")[1] < frame_budget(100, "qwen2_5_vl")[1]
    True
    """
    fam = _family(family)
    f2 = fam.factor * fam.factor
    lo = VIDEO_MIN_TOKENS * f2 if min_pixels is None else int(min_pixels)
    total = MODEL_SEQ_LEN * f2 * 0.9 if total_pixels is None else float(total_pixels)
    cap = max(min(VIDEO_MAX_TOKENS * f2, total / max(nframes, 1) * FRAME_FACTOR), int(lo * 1.05))
    hi = int(cap if max_pixels is None else min(int(max_pixels), cap))
    return min(lo, hi), hi


# ----------------------------------------------------------------------------------------- decoding
Chooser = Callable[[int, float], list[int]]


def _read_decord(path: str, choose: Chooser) -> tuple[np.ndarray, list[int], list[float], int, float]:
    import decord

    reader = decord.VideoReader(path, ctx=decord.cpu(0))
    total, fps = len(reader), float(reader.get_avg_fps())
    indices = choose(total, fps)
    frames = reader.get_batch(indices).asnumpy()
    origin = float(reader.get_frame_timestamp(0)[0])
    times = [float(t) - origin for t in np.asarray(reader.get_frame_timestamp(indices))[:, 0]]
    return frames, indices, times, total, fps


def _read_pyav(path: str, choose: Chooser) -> tuple[np.ndarray, list[int], list[float], int, float]:
    import av

    with av.open(path) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 0)
        total = stream.frames
        if not total:  # some containers do not store a count: count packets, which needs no decoding
            total = sum(1 for packet in container.demux(stream) if packet.size)
            container.seek(0, stream=stream)
        indices = choose(total, fps)
        # Frames are numbered in decode order, which is exact where seeking by timestamp is not
        # (variable frame rates, B-frames); decoding stops after the last wanted frame.
        wanted, last = set(indices), max(indices)
        stream.thread_type = "AUTO"
        got: dict[int, tuple[np.ndarray, float]] = {}
        origin = None
        for i, frame in enumerate(container.decode(stream)):
            time = float(frame.time) if frame.time is not None else i / fps
            origin = time if origin is None else origin
            if i in wanted:
                got[i] = (frame.to_ndarray(format="rgb24"), time - origin)
            if i >= last:
                break
    missing = sorted(wanted - set(got))
    if missing:
        raise ValueError(f"stream ended before frame {missing[0]} (header says {total} frames)")
    return np.stack([got[i][0] for i in indices]), indices, [got[i][1] for i in indices], total, fps


_READERS = {"decord": _read_decord, "pyav": _read_pyav}


def read_video(
    path: str | os.PathLike, choose: Chooser, *, backend: str = "auto", sample_id: object = None,
) -> tuple[np.ndarray, list[int], list[float], int, float, str]:
    """Decode the frames `choose(total_frames, fps)` picks: (frames THWC uint8, indices, times, total, fps,
    backend used). Every failure is a `MediaError` naming the file and sample."""
    path = os.fspath(path)
    if backend not in BACKENDS:
        raise ValueError(f"unknown video backend {backend!r}; known: {', '.join(BACKENDS)}")
    if not os.path.isfile(path):
        raise MediaError(path, "video file not found", sample_id=sample_id)
    if os.path.getsize(path) == 0:
        raise MediaError(path, "empty video file (0 bytes)", sample_id=sample_id)
    reasons = []
    if backend == "auto":
        order = ("pyav",) if path.lower().endswith(DECORD_UNSAFE) else ("decord", "pyav")
    else:
        order = (backend,)
    for name in order:
        try:
            return (*_READERS[name](path, choose), name)
        except MediaError:
            raise
        except Exception as exc:  # decoders raise RuntimeError, av.FFmpegError, IndexError, ...
            reasons.append(f"{name}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    raise MediaError(path, "cannot decode video (" + "; ".join(reasons) + ")", sample_id=sample_id)


# ------------------------------------------------------------------------------------------ loading
def load_video(
    source: str | os.PathLike | Sequence[Any], family: str | Family | None = None, *,
    fps: float | None = None,
    nframes: int | None = None, video_start: float | None = None, video_end: float | None = None,
    min_frames: int = FPS_MIN_FRAMES, max_frames: int = FPS_MAX_FRAMES, min_pixels: int | None = None,
    max_pixels: int | None = None, total_pixels: float | None = None, backend: str = "auto",
    sample_id: object = None,
) -> LoadedVideo:
    """Sample, decode and resize a video (a file, or a list of frame images taken at `fps`) for `family`."""
    fam = _family(family)
    where = str(source[0]) if isinstance(source, (list, tuple)) and source else os.fspath(source) \
        if isinstance(source, (str, os.PathLike)) else "<frame list>"
    check_options({"fps": fps, "nframes": nframes, "video_start": video_start, "video_end": video_end,
                   "min_frames": min_frames, "max_frames": max_frames, "min_pixels": min_pixels,
                   "max_pixels": max_pixels, "total_pixels": total_pixels}, where, sample_id)
    if isinstance(source, (list, tuple)):
        return _load_frame_list(source, fam, fps=fps, min_pixels=min_pixels, max_pixels=max_pixels,
                                total_pixels=total_pixels, sample_id=sample_id)
    path = os.fspath(source)
    _refuse_still_image(path, sample_id)
    span: list[int] = []

    def choose(total: int, src_fps: float) -> list[int]:
        try:
            first, last, idx = sample_indices(
                total, src_fps, nframes=nframes, sample_fps=fps, start=video_start, end=video_end,
                min_frames=min_frames, max_frames=max_frames)
        except ValueError as exc:  # a bad request, not a bad file: no point trying another decoder
            raise MediaError(path, str(exc), sample_id=sample_id) from exc
        span[:] = [first, last]
        return idx

    frames, indices, times, total, src_fps, used = read_video(path, choose, backend=backend,
                                                              sample_id=sample_id)
    height, width = int(frames.shape[1]), int(frames.shape[2])
    lo, hi = frame_budget(len(indices), fam, min_pixels=min_pixels, max_pixels=max_pixels,
                          total_pixels=total_pixels)
    try:
        rh, rw = smart_resize(height, width, factor=fam.factor, min_pixels=lo, max_pixels=hi)
    except ValueError as exc:
        raise MediaError(path, str(exc), sample_id=sample_id) from exc
    record = VideoFrame(
        fps=src_fps, total_frames=total, frame_indices=tuple(indices),
        timestamps=tuple(round(t, 6) for t in times), width=width, height=height, resized_width=rw,
        resized_height=rh, start_frame=span[0], end_frame=span[1], backend=used,
    )
    return LoadedVideo(frames=_resize(frames, rh, rw), frame=record, path=path)


def load_part(
    part: Mapping[str, Any], *, root: str | os.PathLike | None = None, family: str | Family | None = None,
    sample_id: object = None, defaults: Mapping[str, Any] | None = None,
) -> LoadedVideo:
    """Registry loader for ``{"type": "video", "video": path | [frames], fps|nframes, video_start, ...}``.

    Options come from the part, else `defaults` (the recipe's video section); ``backend`` is a recipe key.
    """
    value = part.get("video")
    if value is None:
        raise MediaError("<missing>", "video part has no 'video' value", sample_id=sample_id)
    if isinstance(value, LoadedVideo):
        return value
    if isinstance(value, (list, tuple)):
        value = [resolve_media_path(v, root, sample_id=sample_id) if isinstance(v, (str, os.PathLike)) else v
                 for v in value]
    else:
        value = str(resolve_media_path(value, root, sample_id=sample_id))
    opts = {k: v for k, v in (defaults or {}).items() if v is not None}
    # A part's choice of sampling (fps or nframes) replaces the recipe's rather than adding to it.
    if part.get("fps") is not None or part.get("nframes") is not None:
        opts.pop("fps", None), opts.pop("nframes", None)
    keys = ("fps", "nframes", "video_start", "video_end", "min_frames", "max_frames", "min_pixels",
            "max_pixels", "total_pixels")
    opts.update({k: part[k] for k in keys if part.get(k) is not None})
    _check_ceiling(part, defaults or {}, _family(family), value if isinstance(value, str) else "<frame list>",
                   sample_id)
    known = set(keys) | {"backend"}
    return load_video(value, family, sample_id=sample_id, **{k: v for k, v in opts.items() if k in known})


_RULES = {"fps": "a number > 0", "total_pixels": "a number > 0", "nframes": "a whole number >= 1",
          "min_frames": "a whole number >= 1", "max_frames": "a whole number >= 1",
          "video_start": "a number of seconds >= 0", "video_end": "a number of seconds >= 0",
          "min_pixels": "a whole number >= 0", "max_pixels": "a whole number >= 0"}


def check_options(options: Mapping[str, Any], where: str, sample_id: object = None) -> None:
    """A `MediaError` naming the file and the sample for a sampling option out of its domain: ``fps=0``
    or ``nframes=-3`` were quietly sampled as 4 and 2 frames, a user's typo trained on as data.

    >>> check_options({"fps": 0}, "clip.mp4", "v-1")
    Traceback (most recent call last):
    mmreason.errors.MediaError: sample 'v-1': clip.mp4: fps must be a number > 0, got 0
    """
    for key, value in options.items():
        if value is None or key not in _RULES:
            continue
        ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
            and math.isfinite(value)
        rule = _RULES[key]
        if ok and "> 0" in rule:
            ok = value > 0
        elif ok:
            ok = value >= (1 if ">= 1" in rule else 0) and ("whole" not in rule or value == int(value))
        if not ok:
            raise MediaError(where, f"{key} must be {rule}, got {value!r}", sample_id=sample_id)


def _check_ceiling(part: Mapping[str, Any], defaults: Mapping[str, Any], fam: Family, where: str,
                   sample_id: object) -> None:
    """A row's own pixel options may not exceed the recipe's (else qwen-vl-utils' defaults), as for images."""
    f2 = fam.factor * fam.factor
    frame_cap = defaults.get("max_pixels") or VIDEO_MAX_TOKENS * f2
    caps = {"min_pixels": frame_cap, "max_pixels": frame_cap,
            "total_pixels": defaults.get("total_pixels") or MODEL_SEQ_LEN * f2 * 0.9}
    for key, cap in caps.items():
        value = part.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > cap:
            raise MediaError(where, f"the part's {key} {value:g} is over the ceiling of {cap:g} pixels (the "
                             f"recipe's video budget, else qwen-vl-utils' default for {fam.name}); lower it, "
                             "or raise the recipe's budget", sample_id=sample_id)


def _refuse_still_image(path: str, sample_id: object) -> None:
    """FFmpeg reads a PNG as a one-frame video, so a picture given as a video passed as two equal frames."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as handle:
            kind, frames = handle.format, getattr(handle, "n_frames", 1)
    except (UnidentifiedImageError, OSError, ValueError):
        return  # not a picture: the video decoders decide
    if frames <= 1:
        raise MediaError(path, f"a still {kind} image given as a video; use an image part",
                         sample_id=sample_id)


def _load_frame_list(frames: Sequence[Any], fam: Family, *, fps: float | None, min_pixels, max_pixels,
                     total_pixels, sample_id) -> LoadedVideo:
    if not frames:
        raise MediaError("<frame list>", "video frame list is empty", sample_id=sample_id)
    images = [open_image(f, sample_id=sample_id)[0] for f in frames]
    if len({im.size for im in images}) > 1:
        raise MediaError(str(frames[0]), "video frames differ in size", sample_id=sample_id)
    rate = FPS if fps is None else float(fps)
    indices = list(range(len(images)))
    indices += [indices[-1]] * (-len(indices) % FRAME_FACTOR)
    width, height = images[0].size
    lo, hi = frame_budget(len(indices), fam, min_pixels=min_pixels, max_pixels=max_pixels,
                          total_pixels=total_pixels)
    rh, rw = smart_resize(height, width, factor=fam.factor, min_pixels=lo, max_pixels=hi)
    array = np.stack([np.asarray(images[i]) for i in indices])
    record = VideoFrame(
        fps=rate, total_frames=len(images), frame_indices=tuple(indices),
        timestamps=tuple(i / rate for i in indices), width=width, height=height, resized_width=rw,
        resized_height=rh, start_frame=0, end_frame=len(images) - 1, backend="frames",
    )
    return LoadedVideo(frames=_resize(array, rh, rw), frame=record, path=str(frames[0]))


def write_video(
    path: str | os.PathLike, frames: Iterable[np.ndarray], fps: float, *, codec: str = "libx264",
    pix_fmt: str = "yuv420p", container_format: str | None = None, gop: int | None = None,
) -> str:
    """Encode HxWx3 uint8 frames at a constant `fps` (PyAV); yuv420p needs even sides. Returns the path.

    `gop` sets the keyframe interval in frames (the encoder's default otherwise; libx264's is 250).

    Builders and tools that emit clips use this, and tests make clips with known content through it.
    """
    import av
    from fractions import Fraction

    path = os.fspath(path)
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(path, "w", format=container_format) as container:
        stream = None
        for array in frames:
            array = np.ascontiguousarray(array, dtype=np.uint8)
            if stream is None:
                stream = container.add_stream(codec, rate=rate)
                stream.height, stream.width = int(array.shape[0]), int(array.shape[1])
                stream.pix_fmt = pix_fmt
                if gop:
                    stream.codec_context.gop_size = int(gop)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        if stream is None:
            raise ValueError("write_video needs at least one frame")
        container.mux(stream.encode())
    return path


def _resize(frames: np.ndarray, height: int, width: int) -> Any:
    import torch
    from torchvision.transforms.v2 import functional as F

    video = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
    if tuple(video.shape[-2:]) == (height, width):
        return video.contiguous()
    return F.resize(video, [height, width], interpolation=F.InterpolationMode.BICUBIC, antialias=True)


def _family(family: str | Family | None) -> Family:
    return as_family("qwen2_5_vl" if family is None else family)
