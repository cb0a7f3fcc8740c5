"""The rows an eval task scores: a benchmark release read through its layout, or a canonical dataset;
the task's rows picked from them, and the fingerprint of the data they came from."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Mapping, Sequence

from mmreason.errors import SchemaError
from mmreason.eval.tasks import Task


def select_rows(rows: Sequence[Mapping[str, Any]], task: Task, limit: int | None) -> tuple[list[dict], dict]:
    """The task's rows in dataset order (at most `limit`), and what was left out and why."""
    from mmreason.schema import media_parts

    picked, other = [], {}
    for row in rows:
        kinds = {k for k, _ in media_parts(row)}
        if row["task"] in task.row_tasks and all(k in kinds for k in task.needs):
            picked.append(dict(row))
        else:
            other[row["task"]] = other.get(row["task"], 0) + 1
    if not picked:
        needs = f" with {list(task.needs)} media" if task.needs else ""
        raise SchemaError(f"no rows for this task: it takes task values {list(task.row_tasks)}{needs}; "
                          f"the dataset has {other}", field="task")
    counts = {"rows": len(rows), "matching": len(picked), "other_tasks": other}
    return (picked[:limit] if limit else picked), counts


def load_dataset_rows(data: str | Path) -> list[dict]:
    """Canonical rows with media paths made absolute (relative ones are relative to the dataset root)."""
    from mmreason.schema import dataset_root, load_rows, resolve_media

    root = dataset_root(data)
    return [resolve_media(r, root) for r in load_rows(data)]


def fingerprint(data: str | Path, ids: Sequence[str], files: Sequence[Path] | None = None) -> dict:
    """SHA-256 of the dataset's row files (names and bytes, media excluded; a benchmark's annotation
    `files` when given) and of the selected ids."""
    path = Path(data)
    if files is None:
        files = sorted(path.glob("*.parquet")) or sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.name.encode() + b"\0")
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return {"path": str(path.resolve()), "files": [f.name for f in files], "sha256": digest.hexdigest(),
            "ids_sha256": hashlib.sha256("\n".join(ids).encode()).hexdigest()}


def task_rows(task: Task, data: str | Path, cache: Path) -> tuple[list[dict], list[Path] | None]:
    """A task's candidate rows: a benchmark release read through its layout (pictures a release embeds
    are decoded into `cache`), else a canonical dataset; with the files a benchmark's rows came from."""
    if task.layout is None:
        return load_dataset_rows(data), None
    from mmreason.eval.layouts import load_layout

    loaded = load_layout(task.layout, data, cache)
    return loaded.rows, loaded.files
