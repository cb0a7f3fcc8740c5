"""Where a row's media file is: joined onto its dataset's root, and kept inside that root unless allowed.

A row names its media relative to the dataset folder. A path that climbs out of it (``../../x.png``, or
an absolute path elsewhere) would let one downloaded row read any file the process can, so it is
refused unless the user allows it: ``allow_outside_root=True`` where a function takes it, or the
environment variable ``MMREASON_ALLOW_MEDIA_OUTSIDE_ROOT=1`` for every command (training and eval
included). The check is on the path as written, normalised, not on where symlinks lead: converters
link the source files into their output folder on purpose.

>>> resolve_media_path("img/a.png", "/data/set").as_posix()
'/data/set/img/a.png'
>>> resolve_media_path("../../etc/passwd", "/data/set", sample_id="r-1", allow_outside_root=False)
Traceback (most recent call last):
...
mmreason.errors.MediaError: sample 'r-1': /data/set/../../etc/passwd: outside the dataset root /data/set; ...
"""

from __future__ import annotations

import os
from pathlib import Path

from mmreason.errors import MediaError

ALLOW_ENV = "MMREASON_ALLOW_MEDIA_OUTSIDE_ROOT"


def outside_allowed(allow: bool | None = None) -> bool:
    """`allow` when given, else whether the environment variable says yes."""
    if allow is not None:
        return bool(allow)
    return os.environ.get(ALLOW_ENV, "").strip().lower() in ("1", "true", "yes")


def check_inside_root(path: str | os.PathLike, root: str | os.PathLike, *, sample_id: object = None,
                      allow_outside_root: bool | None = None) -> None:
    """A `MediaError` naming the file, the sample and the way to allow it, when `path` is outside `root`."""
    if outside_allowed(allow_outside_root):
        return
    base = os.path.normpath(os.path.abspath(root))
    full = os.path.normpath(os.path.abspath(os.path.join(base, path)))
    if os.path.commonpath([base, full]) != base:
        raise MediaError(path, f"outside the dataset root {base}; to read it anyway, pass "
                         f"allow_outside_root=True or set {ALLOW_ENV}=1", sample_id=sample_id)


def resolve_media_path(value: str | os.PathLike, root: str | os.PathLike | None, *, sample_id: object = None,
                       allow_outside_root: bool | None = None) -> Path:
    """A part's media path, relative to the dataset root unless absolute (``file://`` accepted); with a
    root, the file must lie inside it (see the module docstring)."""
    text = os.fspath(value)
    if text.startswith("file://"):
        text = text[len("file://"):]
    path = Path(text)
    if root is None:
        return path
    full = path if path.is_absolute() else Path(root) / path
    check_inside_root(full, root, sample_id=sample_id, allow_outside_root=allow_outside_root)
    return full
