"""What a demo accepts from a user, checked before any work: the file's type (by its suffix), its size, and
that it decodes, through the same modality readers training uses (`mmreason.modalities`). A refusal is an
`UploadError` whose message names the file and what to send instead; the apps show it as a Gradio error
message, never a traceback.

>>> check_upload("notes.txt", "image", max_bytes=1000)
Traceback (most recent call last):
...
mmreason.demos.uploads.UploadError: notes.txt: not an image file (expected .bmp, .gif, .jpeg, .jpg, .png, .webp)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from mmreason.errors import MMReasonError

SUFFIXES: dict[str, tuple[str, ...]] = {
    "image": (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".webp"),
    "video": (".avi", ".mkv", ".mov", ".mp4", ".webm"),
    "audio": (".flac", ".mp3", ".ogg", ".wav"),
    "point_cloud": (".npy", ".npz", ".pcd", ".ply"),
}
ARTICLE = {"image": "an image", "video": "a video", "audio": "an audio", "point_cloud": "a point-cloud"}


class UploadError(ValueError):
    """An upload the demo refuses; the message names the file."""


def _decode_image(path: Path) -> Any:
    from mmreason.modalities.image import open_image

    image, _ = open_image(str(path))
    image.load()
    return image


def _decode_video(path: Path) -> Any:
    from mmreason.modalities.video import read_video

    # the first frame is enough to know the codec and container are readable
    return read_video(path, lambda total, fps: [0])


def _decode_audio(path: Path) -> Any:
    from mmreason.modalities.audio import load_audio

    return load_audio(str(path))


def _decode_cloud(path: Path) -> Any:
    from mmreason.modalities.point_cloud import load_point_cloud

    return load_point_cloud(str(path))


DECODERS: dict[str, Callable[[Path], Any]] = {
    "image": _decode_image, "video": _decode_video, "audio": _decode_audio, "point_cloud": _decode_cloud,
}


def check_upload(path: str | os.PathLike, kind: str, *, max_bytes: int) -> Path:
    """`path` when it is a `kind` file of at most `max_bytes` that decodes; else `UploadError`.

    The suffix is checked first and the size second, so nothing is decoded that would be refused anyway.
    """
    path = Path(path)
    name = path.name
    if path.suffix.lower() not in SUFFIXES[kind]:
        raise UploadError(f"{name}: not {ARTICLE[kind]} file (expected {', '.join(SUFFIXES[kind])})")
    if not path.is_file():
        raise UploadError(f"{name}: the upload did not arrive; send it again")
    size = path.stat().st_size
    if size > max_bytes:
        raise UploadError(f"{name}: {size / 2 ** 20:.1f} MiB is over this demo's limit of "
                          f"{max_bytes / 2 ** 20:g} MiB (--max-upload-mb)")
    if size == 0:
        raise UploadError(f"{name}: the file is empty")
    try:
        DECODERS[kind](path)
    except (MMReasonError, OSError, ValueError) as exc:
        # the server's temp path means nothing to the user; the file is named once, up front
        reason = str(exc).replace(str(path), name).removeprefix(f"{name}: ")
        raise UploadError(f"{name}: cannot be read as {kind.replace('_', ' ')}: {reason}") from None
    return path
