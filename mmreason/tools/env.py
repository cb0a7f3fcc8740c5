"""The per-trajectory tool environment: the sample's media, tool settings, and what the tools remember.

A `ToolEnv` holds one sample's loaded media (images, videos, point clouds, audio clips, in order of appearance) and
the settings every tool reads: the coordinate frame the model writes boxes in, DeepEyes' box rules, the
pixel budget of returned pictures. A tool is ``fn(env, **model_arguments) -> Observation``; ``env`` is
injected by the caller and never part of the tool's schema. The media are shared read-only between the
trajectories of a group (`ToolEnv.fork`); the state (the frame last found by ``seek_frame``) is not.

A tool never trusts the model's arguments: the ``as_*`` validators below raise `ToolInputError`, and the
`tool` decorator turns that into an ``Error: ...`` observation (with the configured penalty) instead of an
exception, so a rollout never stops on what a policy wrote.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Sequence

from mmreason.families import Family, as_family
from mmreason.geometry import FRAMES

SMALL_BOX_RULES = ("reject", "enlarge")
MAX_COORDINATE = 1e7  # any larger coordinate is junk; bounding it keeps float maths finite downstream
_REPR_LIMIT = 80


@dataclass(frozen=True)
class Observation:
    """What a tool returns: text, pictures (`LoadedImage`) and clips (`LoadedVideo`) for the next turn.

    `error` marks an ``Error: ...`` observation (the episode goes on, as in DeepEyes); `penalty` is the
    reward adjustment a recipe may apply for it (upstream verl: -0.05 for an invalid box); `info` holds
    machine-readable results step rewards need (the box actually cut, in original pixels, the frame shown...).
    """

    text: str
    images: tuple[Any, ...] = ()
    videos: tuple[Any, ...] = ()
    error: bool = False
    penalty: float = 0.0
    info: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def failure(cls, message: str, *, penalty: float = 0.0, **info: Any) -> "Observation":
        return cls(f"Error: {message}", error=True, penalty=penalty, info=info)


class ToolInputError(ValueError):
    """Arguments a tool cannot use; becomes an ``Error: ...`` observation, never a crash."""


@dataclass(frozen=True)
class ToolSettings:
    """Tool behaviour a recipe sets.

    - `coord_frame`: frame of the boxes the model writes ("pixel", "resized", "norm1000", "norm1");
      None means the family's output frame. DeepEyes writes original pixels: set "pixel" to match it.
    - `small_box`: "reject" (DeepEyes: after clamping, the shorter side must exceed `min_side`, 30 px) or
      "enlarge" (upstream verl: a box shorter than `enlarge_to`, 28 px, grows about its centre first and
      fails only if it still cannot reach that size). `max_aspect` (100) applies to both.
    - `image_min_pixels`/`image_max_pixels`: budget of returned pictures (None: the recipe's image options,
      else the family's); `video_max_pixels` likewise per frame of returned clips.
    - `segment_frames`: frames in a re-sampled clip (Video-CoM: 16); `segment_seconds`: length of the
      numbered segments ``clip_segment(segment=k)`` refers to (None: segments are not defined).
    - `view_size`, `view_elevation`, `view_fov`: rendered 3D views.
    """

    coord_frame: str | None = None
    min_side: float = 30.0
    max_aspect: float = 100.0
    small_box: str = "reject"
    enlarge_to: float = 28.0
    invalid_penalty: float = 0.0
    image_min_pixels: int | None = None
    image_max_pixels: int | None = None
    video_max_pixels: int | None = None
    segment_frames: int = 16
    segment_seconds: float | None = None
    view_size: int = 448
    view_elevation: float = 30.0
    view_fov: float = 60.0

    def __post_init__(self) -> None:
        if self.coord_frame is not None and self.coord_frame not in FRAMES:
            raise ValueError(f"coord_frame must be one of {FRAMES} or None, got {self.coord_frame!r}")
        if self.small_box not in SMALL_BOX_RULES:
            raise ValueError(f"small_box must be one of {SMALL_BOX_RULES}, got {self.small_box!r}")
        if not (self.max_aspect >= 1 and self.min_side >= 0 and self.enlarge_to >= 1):
            raise ValueError("need max_aspect >= 1, min_side >= 0 and enlarge_to >= 1")
        if self.segment_frames < 2 or self.view_size < 16:
            raise ValueError("need segment_frames >= 2 and view_size >= 16")


class ToolEnv:
    """One trajectory's environment: the sample's media, the settings, and tool state."""

    def __init__(
        self, family: str | Family, *, images: Sequence[Any] = (), videos: Sequence[Any] = (),
        clouds: Sequence[Any] = (), audios: Sequence[Any] = (), settings: ToolSettings | None = None,
        media_options: Mapping[str, Mapping[str, Any]] | None = None, sample_id: object = None,
    ):
        self.family = as_family(family)
        self.images = tuple(images)  # LoadedImage, image and screenshot parts in order
        self.videos = tuple(videos)  # LoadedVideo
        self.clouds = tuple(clouds)  # PointCloud
        self.audios = tuple(audios)  # modalities.audio.Audio, in order
        self.settings = settings or ToolSettings()
        self.media_options = dict(media_options or {})
        self.sample_id = sample_id
        self.current_frame: tuple[int, int] | None = None  # (video index, source frame) of the last seek

    @classmethod
    def from_media(cls, media: Any, family: str | Family, **kwargs: Any) -> "ToolEnv":
        """From a `modalities.SampleMedia`: its items sorted into images, videos and point clouds."""
        from mmreason.modalities.audio import Audio
        from mmreason.modalities.image import LoadedImage
        from mmreason.modalities.point_cloud import PointCloud
        from mmreason.modalities.video import LoadedVideo

        loaded = [item for _, _, item in media.items]
        return cls(
            family, images=[x for x in loaded if isinstance(x, LoadedImage)],
            videos=[x for x in loaded if isinstance(x, LoadedVideo)],
            clouds=[x for x in loaded if isinstance(x, PointCloud)], audios=[x for x in loaded if isinstance(x, Audio)],
            sample_id=media.sample_id, **kwargs,
        )

    @classmethod
    def from_row(cls, row: Mapping[str, Any], family: str | Family, *, root: Any = None,
                 media_options: Mapping[str, Mapping[str, Any]] | None = None, **kwargs: Any) -> "ToolEnv":
        """Load a canonical row's media (a `MediaError` names the file and sample) into a new env."""
        from mmreason.modalities import load_sample_media

        media = load_sample_media(row, root, family, options=media_options)
        return cls.from_media(media, family, media_options=media_options, **kwargs)

    def fork(self) -> "ToolEnv":
        """A fresh env over the same (read-only) media: one per trajectory of a group."""
        return ToolEnv(self.family, images=self.images, videos=self.videos, clouds=self.clouds, audios=self.audios,
                       settings=self.settings, media_options=self.media_options, sample_id=self.sample_id)

    def with_settings(self, **changes: Any) -> "ToolEnv":
        env = self.fork()
        env.settings = replace(self.settings, **changes)
        return env

    @property
    def coord_frame(self) -> str:
        """The frame the model's boxes are read in."""
        return self.settings.coord_frame or self.family.box_frame

    def _budget(self, kind: str, lo: int | None, hi: int | None) -> tuple[int | None, int | None]:
        opts = self.media_options.get(kind) or {}
        return (lo if lo is not None else opts.get("min_pixels"), hi if hi is not None else opts.get("max_pixels"))

    def picture(self, image: Any) -> Any:
        """A PIL image sized for the family as any input picture (the returned-image budget)."""
        from mmreason.modalities.image import load_image

        lo, hi = self._budget("image", self.settings.image_min_pixels, self.settings.image_max_pixels)
        return load_image(image, self.family, min_pixels=lo, max_pixels=hi, sample_id=self.sample_id)

    def video_budget(self) -> tuple[int | None, int | None]:
        return self._budget("video", None, self.settings.video_max_pixels)

    def pick(self, items: Sequence[Any], index: Any, what: str) -> tuple[int, Any]:
        """Item `index` of this sample's `what`s, with an error that says how many there are."""
        if not items:
            raise ToolInputError(f"this sample has no {what}")
        i = as_int(index, f"{what}_index", 0, len(items) - 1)
        return i, items[i]


# ------------------------------------------------------------------------------------- validation
def show(value: Any) -> str:
    """A model-written value for an error message, cut short (model output can be megabytes)."""
    text = repr(value)
    return text if len(text) <= _REPR_LIMIT else text[: _REPR_LIMIT - 3] + "..."


def as_number(value: Any, name: str, lo: float = -MAX_COORDINATE, hi: float = MAX_COORDINATE) -> float:
    """A real number (not a bool, not a string) in [lo, hi].

    >>> as_number(3, "angle")
    3.0
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ToolInputError(f"{name} must be a number, got {show(value)}")
    try:
        number = float(value)
    except OverflowError:  # an int with hundreds of digits
        raise ToolInputError(f"{name} is out of range: {show(value)}") from None
    if not math.isfinite(number):
        raise ToolInputError(f"{name} must be a finite number, got {show(value)}")
    if not lo <= number <= hi:
        raise ToolInputError(f"{name} must be between {lo:g} and {hi:g}, got {number:g}")
    return number


def as_int(value: Any, name: str, lo: int, hi: int) -> int:
    """A whole number in [lo, hi]; 3.0 is accepted as 3 (JSON does not tell them apart)."""
    number = as_number(value, name, -MAX_COORDINATE, MAX_COORDINATE)
    if number != int(number):
        raise ToolInputError(f"{name} must be a whole number, got {show(value)}")
    if not lo <= number <= hi:
        raise ToolInputError(f"{name} must be between {lo} and {hi}, got {int(number)}")
    return int(number)


def as_numbers(value: Any, name: str, count: int, shape: str) -> tuple[float, ...]:
    """Exactly `count` numbers in a list, e.g. a box; `shape` names the layout in the error."""
    if not isinstance(value, (list, tuple)) or len(value) != count:
        raise ToolInputError(f"{name} must be a list of {count} numbers {shape}, got {show(value)}")
    return tuple(as_number(v, f"{name}[{i}]") for i, v in enumerate(value))


def as_text(value: Any, name: str, max_chars: int = 200) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ToolInputError(f"{name} must be a string, got {show(value)}")
    return value[:max_chars]


def as_choice(value: Any, name: str, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value.strip().lower() not in choices:
        raise ToolInputError(f"{name} must be one of {', '.join(choices)}; got {show(value)}")
    return value.strip().lower()


def tool(fn: Callable[..., Observation]) -> Callable[..., Observation]:
    """Make `fn(env, ...)` a tool: a `ToolInputError` becomes an ``Error: ...`` observation carrying the
    env's `invalid_penalty`. Signature and docstring (the schema) are kept."""

    @functools.wraps(fn)
    def run(env: ToolEnv, *args: Any, **kwargs: Any) -> Observation:
        try:
            return fn(env, *args, **kwargs)
        except ToolInputError as exc:
            return Observation.failure(str(exc), penalty=env.settings.invalid_penalty, tool=fn.__name__)

    return run
