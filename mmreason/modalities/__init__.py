"""Modality adapters: one module per media type, one registry, one loader policy.

`MODALITIES` maps a content part's ``type`` to its loader, ``"module:function"``, imported on first use so
that reading images never pays for importing decord, librosa or open3d. Every loader has the signature

    load_part(part: dict, *, root, family, sample_id, defaults) -> loaded media

and the loaded object carries ``.frame`` (what maps model outputs back to the source: an ``ImageFrame``,
a ``VideoFrame``, a point-cloud transform ...) and ``.as_parts(family) -> list[dict]``: the content parts
it becomes in a chat, with loaded payloads: ``{"type": "image", "image": LoadedImage}``, ``{"type":
"video", "video": LoadedVideo}``, ``{"type": "audio", "audio": <object with .waveform>}`` or ``{"type":
"text", "text": str}``. That is how a point cloud becomes rendered views, or audio a spectrogram image
plus transcript for a vision-only family, without the collator knowing either.

Bad media raises `mmreason.errors.MediaError` naming the file and the sample. A dataset loader chooses
what happens next with ``on_error="raise"`` or ``"skip"``; skips are counted and reported, never silent.
"""

from __future__ import annotations

import importlib
import logging
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from mmreason.errors import MediaError, SchemaError
from mmreason.families import Family

log = logging.getLogger(__name__)

MODALITIES: dict[str, str] = {
    "image": "mmreason.modalities.image:load_part",
    "screenshot": "mmreason.modalities.image:load_part",
    "video": "mmreason.modalities.video:load_part",
    "audio": "mmreason.modalities.audio:load_part",
    "point_cloud": "mmreason.modalities.point_cloud:load_part",
}

# Parts of these types fall back to another type's recipe options (a screenshot is an image).
OPTION_FALLBACK = {"screenshot": "image"}
ON_ERROR = ("raise", "skip")


def get_loader(kind: str) -> Callable[..., Any]:
    """The loader function registered for part type `kind`."""
    try:
        spec = MODALITIES[kind]
    except KeyError:
        known = ", ".join(sorted(MODALITIES))
        raise KeyError(f"no modality adapter for part type {kind!r}; known: {known}") from None
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


def part_kind(part: Mapping[str, Any]) -> str:
    """A part's type: its ``type`` key, else the first known key it carries (qwen-vl-utils style)."""
    kind = part.get("type")
    if kind:
        return str(kind)
    for key in ("text", *MODALITIES):
        if key in part:
            return key
    return "text"


def load_part(
    part: Mapping[str, Any], *, root: str | os.PathLike | None = None, family: str | Family | None = None,
    sample_id: object = None, options: Mapping[str, Mapping[str, Any]] | None = None,
) -> Any:
    """Load one media part through its registered adapter; `options` holds recipe defaults per type."""
    kind = part_kind(part)
    options = options or {}
    defaults = options.get(kind) or options.get(OPTION_FALLBACK.get(kind, ""), {})
    return get_loader(kind)(part, root=root, family=family, sample_id=sample_id, defaults=defaults)


@dataclass(frozen=True)
class SampleMedia:
    """A row's loaded media in order of appearance: ((message index, part index, loaded), ...)."""

    sample_id: str
    items: tuple[tuple[int, int, Any], ...]

    def get(self, message: int, part: int) -> Any:
        for m, p, loaded in self.items:
            if (m, p) == (message, part):
                return loaded
        raise KeyError((message, part))

    @property
    def frames(self) -> list[Any]:
        return [getattr(loaded, "frame", None) for _, _, loaded in self.items]


def row_messages(row: Mapping[str, Any]) -> list[dict]:
    """A row's messages with every content normalised to a list of parts; a `SchemaError` if malformed."""
    sample_id = row.get("id") if isinstance(row, Mapping) else None
    messages = row.get("messages") if isinstance(row, Mapping) else None
    if not isinstance(messages, list) or not messages:
        raise SchemaError("needs a non-empty 'messages' list", row=sample_id, field="messages")
    out = []
    for i, msg in enumerate(messages):
        if not isinstance(msg, Mapping) or "role" not in msg:
            raise SchemaError(f"message {i} has no role", row=sample_id, field="messages")
        content = msg.get("content")
        if content is None:
            content = []
        elif isinstance(content, str):
            content = [{"type": "text", "text": content}]
        elif not isinstance(content, list) or not all(isinstance(p, Mapping) for p in content):
            raise SchemaError(f"message {i} content must be a string or a list of parts", row=sample_id,
                              field="messages")
        out.append({**msg, "content": list(content)})
    return out


def load_sample_media(
    row: Mapping[str, Any], root: str | os.PathLike | None = None, family: str | Family | None = None, *,
    on_error: str = "raise", options: Mapping[str, Mapping[str, Any]] | None = None,
) -> SampleMedia | None:
    """Load every media part of a canonical row. With ``on_error="skip"`` a bad file returns None
    (the caller counts it) instead of raising; schema problems always raise."""
    _check_policy(on_error)
    sample_id = row.get("id")
    items = []
    for m, msg in enumerate(row_messages(row)):
        for p, part in enumerate(msg["content"]):
            kind = part_kind(part)
            if kind == "text":
                continue
            if kind not in MODALITIES:
                raise SchemaError(f"unknown content part type {kind!r}; known: text, {', '.join(MODALITIES)}",
                                  row=sample_id, field="messages")
            try:
                loaded = load_part(part, root=root, family=family, sample_id=sample_id, options=options)
                items.append((m, p, loaded))
            except MediaError as exc:
                if on_error == "raise":
                    raise
                log.warning("skipping sample %r: %s", sample_id, exc)
                return None
    return SampleMedia(str(sample_id), tuple(items))


def _check_policy(on_error: str) -> None:
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")


@dataclass(frozen=True)
class MediaReport:
    """What a dataset-level load did: how many rows loaded, how many were skipped and why."""

    loaded: int
    skipped: int
    errors: tuple[str, ...]


def load_dataset_media(
    rows: Iterable[Mapping[str, Any]], root: str | os.PathLike | None = None,
    family: str | Family | None = None,
    *, on_error: str = "raise", options: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[list[tuple[Mapping[str, Any], SampleMedia]], MediaReport]:
    """Load the media of many rows under one policy; returns the kept (row, media) pairs and a report."""
    _check_policy(on_error)
    kept, errors = [], []
    for row in rows:
        try:
            media = load_sample_media(row, root, family, on_error="raise", options=options)
        except MediaError as exc:
            if on_error == "raise":
                raise
            errors.append(str(exc))
            continue
        kept.append((row, media))
    report = MediaReport(loaded=len(kept), skipped=len(errors), errors=tuple(errors))
    if errors:
        log.warning("skipped %d of %d samples with unusable media (first: %s)", len(errors),
                    len(errors) + len(kept), errors[0])
    return kept, report
