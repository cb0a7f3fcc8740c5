"""The few error types mmreason raises on bad input; each names the culprit (file, sample, row, key)."""

from __future__ import annotations


class MMReasonError(Exception):
    """Base class: catch this to handle any input error mmreason reports."""


class MediaError(MMReasonError):
    """A media file (image, video, audio, point cloud, screenshot) that cannot be used.

    The message always names the file and, when known, the sample id, so a bad row in a
    million-row dataset can be found.
    """

    def __init__(self, path: object, reason: str, *, sample_id: object = None):
        self.path = str(path)
        self.reason = reason
        self.sample_id = sample_id
        where = f"sample {sample_id!r}: " if sample_id is not None else ""
        super().__init__(f"{where}{self.path}: {reason}")


class SchemaError(MMReasonError):
    """A dataset row that does not fit the canonical schema; names the row and the field."""

    def __init__(self, reason: str, *, row: object = None, field: str | None = None):
        self.row = row
        self.field = field
        parts = []
        if row is not None:
            parts.append(f"row {row!r}")
        if field:
            parts.append(f"field {field!r}")
        prefix = ", ".join(parts)
        super().__init__(f"{prefix}: {reason}" if prefix else reason)


class RecipeError(MMReasonError):
    """A recipe (YAML + overrides) that cannot be run: unknown key, wrong type, missing value."""
