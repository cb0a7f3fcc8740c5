"""The canonical dataset on disk: Arrow schema, encoding, writers, loaders, and the TRL export.

On disk (Parquet via `datasets`) every content part carries every part key (None when unused) and
every GT list is a real Arrow struct, so `datasets` users see normal columns. The free-form dicts
(`meta`, `gui.action`, each `gui.history` step) are stored as JSON strings, because Arrow unifies a
struct's keys across rows and would otherwise invent or drop keys. `load_rows` decodes them back;
`decode_row` does the same for a raw Arrow row. `to_trl` / `to_trl_dataset` give the columns TRL's
trainers take. The row format itself and its validation are `mmreason.schema.sample`'s.

Importing this module is cheap: `datasets` (about a second to import) is imported by the functions
that need it, which is why the package re-exports these names.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from mmreason.errors import SchemaError
from mmreason.media_paths import check_inside_root, outside_allowed
from mmreason.schema.sample import (
    CONTENT_TYPES, FIELDS, IMAGE_TYPES, OPTION_TYPES, PART_KEYS, media_parts, resolve_media, validate,
)


# ------------------------------------------------------------------------------------ disk format
DEFAULT_SHARD = "data-00000-of-00001.parquet"


def features():  # -> datasets.Features; imported lazily because `datasets` takes ~1 s to import
    """The Arrow schema of every canonical dataset, so all shards (and empty ones) agree."""
    from datasets import Features, List, Value

    s, f, i = Value("string"), Value("float64"), Value("int64")
    part = {"type": s, **{k: s for k in CONTENT_TYPES},
            **{k: i if t is int else f for k, t in OPTION_TYPES.items()}}
    region = {"label": s, "box": List(f), "image": i}
    element = {"box": List(f), "role": s, "text": s, "clickable": Value("bool")}
    return Features({
        "id": s, "messages": List({"role": s, "content": List(part)}), "answer": s, "task": s, "source": s,
        "boxes": List(region), "boxes_3d": List({"label": s, "box": List(f)}),
        "points": List({"label": s, "point": List(f), "image": i}),
        "time_spans": List({"label": s, "start": f, "end": f}), "rationale_regions": List(region),
        "gui": {"platform": s, "width": i, "height": i, "elements": List(element), "action": s, "goal": s,
                "instruction": s, "history": List(s)},
        "meta": s,
    })


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def _encode_free_dicts(row: Mapping) -> dict:
    gui = row.get("gui")
    if gui is not None:
        action = gui.get("action")
        gui = {**gui, "action": None if action is None else _dump(action),
               "history": [_dump(h) for h in gui.get("history") or []]}
    return {**row, "gui": gui, "meta": _dump(row.get("meta") or {})}


def encode_row(row: Mapping) -> dict:
    """A validated canonical row in its on-disk form: every part has every key, free-form dicts as JSON."""
    messages = [{"role": m["role"], "content": [{k: p.get(k) for k in PART_KEYS} for p in m["content"]]}
                for m in row["messages"]]
    return _encode_free_dicts({**row, "messages": messages})


def _decode_messages(messages: Any) -> Any:
    if not isinstance(messages, list):
        return messages
    return [{**m, "content": [{k: v for k, v in p.items() if v is not None} for p in m["content"]]}
            if isinstance(m.get("content"), list) else m for m in messages]


def decode_row(row: Mapping) -> dict:
    """The inverse of `encode_row` (idempotent): drops unused part keys, parses the JSON-held dicts.

    >>> part = {"type": "text", "text": "hi", "image": None}
    >>> r = decode_row({"messages": [{"role": "user", "content": [part]}], "meta": '{"k": 1}', "gui": None})
    >>> r["messages"][0]["content"], r["meta"]
    ([{'type': 'text', 'text': 'hi'}], {'k': 1})
    """
    out = dict(row)
    for key in ("messages", "prompt", "completion"):  # the last two: rows made by `to_trl_dataset`
        if key in out:
            out[key] = _decode_messages(out[key])
    if isinstance(out.get("meta"), str):
        out["meta"] = json.loads(out["meta"])
    gui = out.get("gui")
    if gui is not None:
        action = gui.get("action")
        out["gui"] = {**gui, "action": json.loads(action) if isinstance(action, str) else action,
                      "history": [json.loads(h) if isinstance(h, str) else h
                                  for h in gui.get("history") or []]}
    return out


def decode_batch(batch: Mapping[str, list]) -> dict[str, list]:
    """`decode_row` over a columnar batch; the transform `load_rows` installs. Other columns pass through."""
    n = len(next(iter(batch.values()), []))
    rows = [decode_row({k: v[i] for k, v in batch.items()}) for i in range(n)]
    return {k: [r[k] for r in rows] for k in batch}


@dataclass(frozen=True)
class _DecodeInside:
    """`load_rows`' transform: `decode_batch`, then every media path must lie inside the dataset root
    (`mmreason.media_paths`), checked as rows are read so a million-row dataset costs no extra pass."""

    root: str
    allow: bool | None = None

    def __call__(self, batch: Mapping[str, list]) -> dict[str, list]:
        out = decode_batch(batch)
        if "messages" in out and not outside_allowed(self.allow):
            for rid, messages in zip(out.get("id") or [None] * len(out["messages"]), out["messages"]):
                for _, path in media_parts({"messages": messages}):
                    if isinstance(path, str):
                        check_inside_root(path, self.root, sample_id=rid, allow_outside_root=self.allow)
        return out


def _validated(rows: Iterable[Mapping]) -> Iterable[dict]:
    seen: dict[str, int] = {}
    for i, row in enumerate(rows):
        row = validate(row, index=i)
        if row["id"] in seen:
            raise SchemaError(f"duplicate id (rows {seen[row['id']]} and {i})", row=row["id"], field="id")
        seen[row["id"]] = i
        yield row


def write_parquet(rows: Iterable[Mapping], out_dir: str | Path, *, shard_name: str = DEFAULT_SHARD) -> Path:
    """Validate `rows` and write them as one Parquet shard of a canonical dataset; returns the file.

    The shard appears atomically (written aside, then renamed), so a resumable builder never mistakes
    a half-written shard for a finished one.
    """
    from datasets import Dataset

    encoded = [encode_row(r) for r in _validated(rows)]
    path = Path(out_dir) / shard_name
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    Dataset.from_list(encoded, features=features()).to_parquet(str(tmp))
    os.replace(tmp, path)
    return path


def write_jsonl(rows: Iterable[Mapping], path: str | Path) -> Path:
    """Validate `rows` and write them one JSON object a line (canonical form, not the Arrow form)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for row in _validated(rows):
            fh.write(_dump(row) + "\n")
    os.replace(tmp, path)
    return path


def with_context(err: SchemaError, where: str) -> SchemaError:
    """`err` with `where` (a file and line, an input row) put before its message; row and field kept."""
    out = SchemaError(f"{where}: {err}")
    out.row, out.field = err.row, err.field
    return out


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rows.append(validate(json.loads(line), index=f"line {n}"))
            except json.JSONDecodeError as e:
                raise SchemaError(f"invalid JSON: {e.msg}", row=f"{path} line {n}") from None
            except SchemaError as e:
                raise with_context(e, f"{path} line {n}") from None
    return rows


def dataset_root(path_or_dir: str | Path) -> Path:
    """The folder media paths of a dataset are relative to: the folder itself, or a file's folder."""
    p = Path(path_or_dir)
    return p if p.is_dir() else p.parent


def load_rows(path_or_dir: str | Path, *, decode: bool = True, cache_dir: str | None = None,
              allow_outside_root: bool | None = None):
    """Load a canonical dataset (a folder of Parquet shards or JSONL files, or one such file).

    Media paths stay relative to `dataset_root(path_or_dir)`; a decoded row naming a file outside that
    folder raises `MediaError` unless `allow_outside_root` (or ``MMREASON_ALLOW_MEDIA_OUTSIDE_ROOT=1``). With `decode` (default) the dataset
    carries a transform, so `ds[i]` and iteration give canonical rows equal to what was written;
    `decode=False` gives the raw Arrow view (JSON strings, every part key present). `to_list()` and
    `to_pandas()` bypass the transform and also give the raw view: use `list(ds)` or `decode_row`.
    """
    import datasets

    p = Path(path_or_dir)
    if p.is_dir():
        files = sorted(p.glob("*.parquet")) or sorted(p.glob("*.jsonl"))
    else:
        files = [p] if p.exists() else []
    if not files:
        raise FileNotFoundError(f"{p}: no canonical dataset here (expected *.parquet or *.jsonl files)")
    suffixes = {f.suffix for f in files}
    if suffixes == {".parquet"}:
        ds = datasets.load_dataset("parquet", data_files=[str(f) for f in files], split="train",
                                   cache_dir=cache_dir)
        missing = [k for k in FIELDS if k not in ds.column_names]
        if missing:
            raise SchemaError(f"{files[0]}: not a canonical mmreason dataset (missing columns {missing}); "
                              "convert it with read_rows(rows, fmt)", field=missing[0])
    elif suffixes == {".jsonl"}:
        rows = [r for f in files for r in _read_jsonl(f)]
        list(_validated(rows))  # ids must be unique across files too
        ds = datasets.Dataset.from_list([encode_row(r) for r in rows], features=features())
    else:
        raise SchemaError(f"{p}: expected .parquet or .jsonl files, got {sorted(suffixes)}")
    return ds.with_transform(_DecodeInside(str(dataset_root(p)), allow_outside_root)) if decode else ds



# --------------------------------------------------------------------------------------- to TRL
def to_trl(row: Mapping, root: str | Path, *, mode: str = "grpo") -> dict:
    """The row as TRL's trainers take it: conversational `prompt` (mode "grpo": the turns before the
    final assistant turn) or `messages` (mode "sft": all turns), `{"type": "image"}` placeholders, an
    `images` column of absolute paths, `solution` (= answer, TRL's reward convention) and every
    canonical column kept for rewards. TRL's trainers take images only: other media is an error.

    >>> from mmreason.schema import new_row, user_message, assistant_message
    >>> t = to_trl(new_row("a", [user_message("Count.", "x.png"), assistant_message("3")], answer="3"), "/d")
    >>> t["prompt"]
    [{'role': 'user', 'content': [{'type': 'image'}, {'type': 'text', 'text': 'Count.'}]}]
    >>> t["images"], t["solution"]
    (['/d/x.png'], '3')
    """
    if mode not in ("grpo", "sft"):
        raise ValueError(f"mode must be 'grpo' or 'sft', got {mode!r}")
    row = resolve_media(decode_row(row), root)
    messages = row["messages"]
    if mode == "grpo" and len(messages) > 1 and messages[-1]["role"] == "assistant":
        messages = messages[:-1]
    out_messages, images = [], []
    for i, msg in enumerate(messages):
        content = []
        for j, p in enumerate(msg["content"]):
            if p["type"] == "text":
                content.append({"type": "text", "text": p["text"]})
            elif p["type"] in IMAGE_TYPES:
                content.append({"type": "image"})
                images.append(p[p["type"]])
            else:
                raise SchemaError(f"TRL trainers take images only, not {p['type']!r}; use mmreason's trainer",
                                  row=row["id"], field=f"messages[{i}].content[{j}]")
        out_messages.append({"role": msg["role"], "content": content})
    rest = {k: row[k] for k in FIELDS if k != "messages"}
    key = "prompt" if mode == "grpo" else "messages"
    return {key: out_messages, "images": images, "solution": row["answer"], **rest}


def to_trl_dataset(rows: Iterable[Mapping], root: str | Path, *, mode: str = "grpo"):
    """`to_trl` over rows, as a `datasets.Dataset` that stays Arrow-safe: `meta` and the GUI action dicts
    are stored as JSON and decoded on access, exactly as `load_rows` does."""
    from datasets import Dataset, Features, List, Value

    s = Value("string")
    message = {"role": s, "content": List({"type": s, "text": s})}
    feats = Features({"prompt" if mode == "grpo" else "messages": List(message), "images": List(s),
                      "solution": s, **{k: v for k, v in features().items() if k != "messages"}})
    encoded = [_encode_free_dicts(to_trl(r, root, mode=mode)) for r in rows]
    return Dataset.from_list(encoded, features=feats).with_transform(decode_batch)
