"""Video tools: Video-CoM's manipulations as typed tools over the sample's videos.

The manipulations are those of Video-CoM (arXiv 2511.23477; train/manipulation_model.py and
train/manipulation_utils.py in github.com/mbzuai-oryx/Video-CoM).

- ``seek_frame``  (FIND_FRAME): one source frame, by time in seconds or by frame number, as a picture;
- ``clip_segment`` (FIND_SEGMENT): the span between two times (or numbered segments k..last, when the
  recipe sets ``segment_seconds``) re-sampled densely, up to ``segment_frames`` (16) frames, as a video;
- ``zoom_frame``  (SPATIAL_ZOOM): a crop of one frame, under the same box rules as ``image_zoom_in``;
  without a time or frame number it zooms into the frame ``seek_frame`` showed last.

Frames are numbered from 0 in the source video and frame f starts at f / fps seconds (the convention of
``mmreason.data_builders.video_clips``). Frames and crops are decoded again from the source file at full
resolution, with the decoder that loaded the video. Boxes are read in the env's coordinate frame relative
to the video's frames as the prompt showed them (`VideoFrame.image_frame`).
"""

from __future__ import annotations

from typing import Any

from mmreason.tools.env import MAX_COORDINATE, Observation, ToolEnv, ToolInputError, as_int, as_number, tool
from mmreason.tools.image import cut


def _frame_number(video: Any, time: Any, frame: Any) -> int:
    record = video.frame
    if (time is None) == (frame is None):
        raise ToolInputError("give exactly one of time (seconds) or frame (frame number)")
    if frame is not None:
        return as_int(frame, "frame", 0, record.total_frames - 1)
    return record.time_to_frame(as_number(time, "time", 0.0, record.duration))


def _decoded(video: Any) -> bool:
    """True when the clip can be decoded again from its source file (not a list of frame images)."""
    return video.frame.backend in ("decord", "pyav") and video.path is not None


def frame_image(env: ToolEnv, video: Any, number: int) -> Any:
    """Source frame `number` as a `LoadedImage` whose frame maps the model's coordinates onto it:
    full resolution decoded from the file, or the sampled (resized) frame for a clip given as images."""
    import numpy as np
    from PIL import Image

    from mmreason.modalities.image import LoadedImage
    from mmreason.modalities.video import read_video

    record = video.frame
    if _decoded(video):
        frames, *_ = read_video(video.path, lambda total, fps: [min(number, total - 1)], backend=record.backend,
                                sample_id=env.sample_id)
        picture = Image.fromarray(np.ascontiguousarray(frames[0]))
        return LoadedImage(image=picture, frame=record.image_frame, path=video.path, original=picture)
    if number not in record.frame_indices:
        shown = sorted(set(record.frame_indices))
        raise ToolInputError(f"this video was given as {len(shown)} pictures; frame must be one of {shown}")
    array = video.frames[record.frame_indices.index(number)].permute(1, 2, 0).numpy()
    return LoadedImage(image=Image.fromarray(np.ascontiguousarray(array)), frame=record.image_frame, path=video.path)


@tool
def seek_frame(env: ToolEnv, time: float | None = None, frame: int | None = None,
               video_index: int = 0) -> Observation:
    """Show one frame of the video, found by its time in seconds or by its frame number.

    Args:
        time: Time in seconds from the start of the video (give this or frame).
        frame: Frame number, counting from 0 (give this or time).
        video_index: Which input video, counting from 0 (default 0).
    """
    index, video = env.pick(env.videos, video_index, "video")
    number = _frame_number(video, time, frame)
    image = frame_image(env, video, number)
    env.current_frame = (index, number)
    seconds = video.frame.frame_to_time(number)
    return Observation(f"Frame {number} at {seconds:.2f} s.", images=(env.picture(image.original or image.image),),
                       info={"tool": "seek_frame", "video_index": index, "frame": number, "time": seconds})


@tool
def clip_segment(env: ToolEnv, start: float | None = None, end: float | None = None, segment: int | None = None,
                 video_index: int = 0, last_segment: int | None = None) -> Observation:
    """Watch part of the video again, densely sampled: from start to end seconds, or a numbered segment.

    Args:
        start: Start of the span in seconds (with end).
        end: End of the span in seconds (with start).
        segment: Number of a segment of the video, counting from 1, when the video is divided into segments
            (instead of start and end).
        video_index: Which input video, counting from 0 (default 0).
        last_segment: With segment, the last of a run of segments watched together as one span (optional).
    """
    from mmreason.modalities.video import load_video

    index, video = env.pick(env.videos, video_index, "video")
    duration = video.frame.duration
    if segment is not None:
        if start is not None or end is not None:
            raise ToolInputError("give either segment or start and end, not both")
        length = env.settings.segment_seconds
        if not length:
            raise ToolInputError("this video is not divided into numbered segments; give start and end in seconds")
        count = max(1, -int(-duration // length))
        k = as_int(segment, "segment", 1, count)
        last = k if last_segment is None else as_int(last_segment, "last_segment", k, count)
        lo, hi = (k - 1) * length, min(last * length, duration)
    else:
        if last_segment is not None:
            raise ToolInputError("last_segment goes with segment, not with start and end")
        if start is None or end is None:
            raise ToolInputError("give start and end in seconds (or a segment number)")
        lo = as_number(start, "start", 0.0, duration)
        hi = min(as_number(end, "end", 0.0, MAX_COORDINATE), duration)  # past the end means to the end
        if not lo < hi:
            raise ToolInputError(f"need start < end within the {duration:.2f} s video, got {lo:g} and {hi:g}")
    if not _decoded(video):
        raise ToolInputError("this video was given as pictures, not a file, so it cannot be re-sampled")
    min_pixels, max_pixels = env.video_budget()
    clip = load_video(video.path, env.family, video_start=lo, video_end=hi, nframes=env.settings.segment_frames,
                      min_pixels=min_pixels, max_pixels=max_pixels, backend=video.frame.backend,
                      sample_id=env.sample_id)
    first, last = clip.frame.frame_indices[0], clip.frame.frame_indices[-1]
    return Observation(
        f"Frames {first} to {last} ({lo:.2f} s to {hi:.2f} s), {clip.frame.num_sampled} frames.", videos=(clip,),
        info={"tool": "clip_segment", "video_index": index, "span": (lo, hi), "frames": clip.frame.frame_indices},
    )


@tool
def zoom_frame(env: ToolEnv, bbox_2d: list[float], time: float | None = None, frame: int | None = None,
               label: str | None = None, video_index: int = 0) -> Observation:
    """Zoom in on a region of one video frame: by default the frame seek_frame showed last.

    Args:
        bbox_2d: The region as [x1, y1, x2, y2], the top-left then the bottom-right corner, in the same
            coordinates you use for boxes.
        time: Time in seconds of the frame to zoom into (optional).
        frame: Frame number to zoom into, counting from 0 (optional).
        label: What the region shows (optional).
        video_index: Which input video, counting from 0 (default 0).
    """
    index, video = env.pick(env.videos, video_index, "video")
    if time is None and frame is None:
        if env.current_frame is None or env.current_frame[0] != index:
            raise ToolInputError("no frame chosen yet: call seek_frame first, or give time or frame")
        number = env.current_frame[1]
    else:
        number = _frame_number(video, time, frame)
    image = frame_image(env, video, number)
    picture, cut_box, shown, name = cut(env, image, video.frame.image_frame, bbox_2d, label)
    env.current_frame = (index, number)
    return Observation(
        f"Zoomed in on {name} at {shown} in frame {number}.", images=(picture,),
        info={"tool": "zoom_frame", "video_index": index, "frame": number, "box_pixel": cut_box, "label": name},
    )
