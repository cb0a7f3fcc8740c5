"""Conversions from the formats users already have into the canonical sample (`mmreason.schema`).

Readers, one per format (`READERS`): TRL conversational, LLaVA `conversations`, ms-swift
`messages` + `objects` (the `objects` part in `mmreason.schema.swift`), EasyR1 `problem`/`answer`, verl
parquet rows. Each returns a canonical row not yet validated; `read_rows` fills missing ids, validates and
checks that ids are unique. The way out, to TRL's columns, is `mmreason.schema.io.to_trl`.

Rules every reader applies the same way:

- `<image>` / `<video>` / `<audio>` tags in string content, and typed parts without a value
  (`{"type": "image"}`), are filled in order from the row's media lists; a count mismatch is an error
  naming the list. With no placeholder at all the media go first in the first user turn, as TRL,
  ms-swift and qwen-vl-finetune do.
- Media given as bytes, PIL images or HF `{"bytes", "path"}` dicts are written into `media_dir`, named
  by content hash (so re-runs and duplicates write nothing new), and referenced relative to `root`
  (default: the parent of `media_dir`, i.e. `media_dir` is a folder inside the dataset root).
- `solution` / `answer` / verl's `ground_truth` become `answer`, minus one enclosing `<answer>` tag.
- Canonical ground-truth columns already in the row are kept; every other column goes to `meta`.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import mimetypes
import numbers
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

from PIL import Image

from mmreason.errors import SchemaError
from mmreason.schema.columns import as_list, is_sequence, json_default
from mmreason.schema.io import with_context
from mmreason.schema.sample import (
    FIELDS, GT_FIELDS, IMAGE_TYPES, MEDIA_TYPES, PART_OPTIONS, text_of, validate,
)
from mmreason.schema.swift import swift_objects

_TAG = re.compile(r"<(image|video|audio)>")
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.S)
_ROLES = {"user": "user", "human": "user", "assistant": "assistant", "gpt": "assistant", "system": "system",
          "tool": "tool", "observation": "tool", "tool_response": "tool", "function_call": "assistant",
          "tool_call": "assistant"}
_PART_ALIASES = {"image_url": "image", "video_url": "video", "audio_url": "audio"}
_DEFAULT_EXT = {"video": ".mp4", "audio": ".wav", "point_cloud": ".npy"}


# ------------------------------------------------------------------------------------------ media
@dataclass(frozen=True)
class _Media:
    """Turns a source format's media item into a canonical path, writing in-memory media to disk."""

    who: object
    media_dir: Path | None = None
    root: Path | None = None

    def fail(self, field: str, reason: str) -> SchemaError:
        return SchemaError(reason, row=self.who, field=field)

    def path(self, item: Any, kind: str, field: str) -> str:
        if isinstance(item, Path):
            return str(item)
        if isinstance(item, str) and item.startswith("data:") and ";base64," in item:  # OpenAI-style data URL
            header, payload = item.split(",", 1)
            ext = mimetypes.guess_extension(header[len("data:"):].split(";")[0]) or ""
            return self.save(base64.b64decode(payload), kind, field, hint=f"x{ext}")
        if isinstance(item, str) and item:
            return item[len("file://"):] if item.startswith("file://") else item
        if isinstance(item, (bytes, bytearray)):
            return self.save(bytes(item), kind, field)
        if isinstance(item, Image.Image):
            buf = io.BytesIO()
            item.save(buf, format="PNG")
            return self.save(buf.getvalue(), kind, field, hint="x.png")
        if isinstance(item, Mapping):  # HF Image/Audio dicts, qwen-vl-utils {"image": ..}, OpenAI {"url": ..}
            if item.get("bytes") is not None:
                return self.save(bytes(item["bytes"]), kind, field, hint=item.get("path"))
            for key in ("path", kind, "url", f"{kind}_url"):
                if item.get(key):
                    return self.path(item[key], kind, field)
        raise self.fail(field, f"cannot use {type(item).__name__} {str(item)[:80]!r} as a {kind}: "
                               "give a file path, bytes, a PIL image or a {'bytes', 'path'} dict")

    def save(self, data: bytes, kind: str, field: str, *, hint: str | None = None) -> str:
        if self.media_dir is None:
            raise self.fail(field, f"{kind} given in memory; pass media_dir= to write it to a file")
        ext = Path(hint).suffix.lower() if hint and Path(hint).suffix else _DEFAULT_EXT.get(kind, "")
        if kind in IMAGE_TYPES and not ext:
            try:
                ext = "." + Image.open(io.BytesIO(data)).format.lower().replace("jpeg", "jpg")
            except Exception as e:  # PIL raises several types for undecodable bytes
                raise self.fail(field, f"bytes are not a readable image: {e}") from None
        self.media_dir.mkdir(parents=True, exist_ok=True)
        target = self.media_dir / (hashlib.sha1(data).hexdigest()[:20] + ext)
        if not target.exists():
            tmp = target.with_name(target.name + f".{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, target)
        root = self.root if self.root is not None else self.media_dir.parent
        return Path(os.path.relpath(target.absolute(), Path(root).absolute())).as_posix()


# --------------------------------------------------------------------------------------- messages
def _split_tags(text: str) -> list[dict]:
    """Text with `<image>`-style tags -> parts; newlines hugging a tag go (LLaVA writes "<image>\\n")."""
    parts, pos, tags = [], 0, list(_TAG.finditer(text))
    for i, tag in enumerate([*tags, None]):
        segment = text[pos:tag.start()] if tag else text[pos:]
        segment = segment.lstrip("\n") if i > 0 else segment
        segment = segment.rstrip("\n") if tag else segment
        if segment or not tags:
            parts.append({"type": "text", "text": segment})
        if tag:
            parts.append({"type": tag.group(1), tag.group(1): None})
            pos = tag.end()
    return parts


def _tool_calls_text(calls: Any) -> str:
    """OpenAI-style `tool_calls` -> Qwen's `<tool_call>` text, the form traces parse."""
    out = []
    for call in calls or []:
        fn = call.get("function", call)
        args = fn.get("arguments")
        args = json.loads(args) if isinstance(args, str) else args
        body = json.dumps({"name": fn.get("name"), "arguments": args})
        out.append(f"<tool_call>\n{body}\n</tool_call>")
    return "\n".join(out)


def _source_part(p: Any, m: _Media, field: str) -> dict:
    if isinstance(p, str):
        return {"type": "text", "text": p}
    if not isinstance(p, Mapping):
        raise m.fail(field, f"a content part must be a dict or a string, got {type(p).__name__}")
    raw = p.get("type")
    kind = _PART_ALIASES.get(raw, raw)
    if kind == "text":
        return {"type": "text", "text": p.get("text", p.get("value"))}
    if kind not in MEDIA_TYPES:
        raise m.fail(f"{field}.type", f"unknown content type {raw!r}")
    value = next((p[k] for k in (kind, raw, "value") if p.get(k) is not None), None)
    options = {k: p[k] for k in PART_OPTIONS[kind] if p.get(k) is not None}
    return {"type": kind, kind: None if value is None else m.path(value, kind, f"{field}.{kind}"), **options}


def _turns(messages: Any, field: str, m: _Media) -> list[tuple[str, Any]]:
    """Source messages (role/content or from/value) -> (canonical role, raw content) pairs."""
    if not is_sequence(messages):
        raise m.fail(field, f"expected a list of messages, got {type(messages).__name__}")
    out = []
    for i, msg in enumerate(list(messages)):
        if not isinstance(msg, Mapping):
            raise m.fail(f"{field}[{i}]", f"a message must be a dict, got {type(msg).__name__}")
        raw = msg.get("role", msg.get("from"))
        if raw not in _ROLES:
            raise m.fail(f"{field}[{i}].role", f"unknown role {raw!r}; known: {sorted(_ROLES)}")
        content = msg.get("content", msg.get("value"))
        if msg.get("tool_calls"):
            calls = _tool_calls_text(msg["tool_calls"])
            content = calls if not content else [*_as_list(content), {"type": "text", "text": calls}]
        out.append((_ROLES[raw], content))
    return out


def _as_list(content: Any) -> list:
    return [{"type": "text", "text": content}] if isinstance(content, str) else list(content)


def _build_messages(turns: list[tuple[str, Any]], media: dict[str, tuple[str, list]],
                    m: _Media) -> list[dict]:
    """Fill placeholders from `media` ({kind: (source column, items)}) in order of appearance."""
    messages = []
    for i, (role, content) in enumerate(turns):
        if isinstance(content, str):
            parts = _split_tags(content)
        elif is_sequence(content):
            parts = [_source_part(p, m, f"messages[{i}].content[{j}]") for j, p in enumerate(list(content))]
        elif content is None:
            parts = []
        else:
            raise m.fail(f"messages[{i}].content",
                         f"expected a string or a list, got {type(content).__name__}")
        messages.append({"role": role, "content": parts})
    holes = [p for msg in messages for p in msg["content"] if p["type"] != "text" and p[p["type"]] is None]
    leading = []  # media with no placeholder at all, in MEDIA_TYPES order
    for kind in MEDIA_TYPES:
        column, items = media.get(kind, (f"{kind}s", []))
        n = sum(p["type"] == kind for p in holes)
        if n == 0 and items:
            leading += [{"type": kind, kind: None} for _ in items]
        elif n != len(items):
            raise m.fail(column, f"{n} <{kind}> placeholder(s) in the messages but {len(items)} item(s) "
                                 f"in '{column}'")
    if leading:
        first_user = next((msg for msg in messages if msg["role"] == "user"), None)
        if first_user is None:
            raise m.fail(media[leading[0]["type"]][0], "media given but no user turn to put them in")
        first_user["content"][:0] = leading
    fill = {kind: iter(enumerate(items)) for kind, (_, items) in media.items()}
    for part in (p for msg in messages for p in msg["content"]):  # order of appearance
        kind = part["type"]
        if kind != "text" and part[kind] is None:
            j, item = next(fill[kind])
            part[kind] = m.path(item, kind, f"{media[kind][0]}[{j}]")
    return messages


# ------------------------------------------------------------------------------------------- rows
def _answer(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        found = _ANSWER.fullmatch(value.strip())
        return (found.group(1) if found else value).strip()
    if isinstance(value, numbers.Number) and not isinstance(value, bool):
        return str(value)
    return json.dumps(value.tolist() if hasattr(value, "tolist") else value)


def _answer_in_reply(messages: list[dict]) -> str | None:
    """The `<answer>` of the last assistant turn (VLM-R1 and CoT SFT rows keep the ground truth there)."""
    replies = [text_of(msg) for msg in messages if msg["role"] == "assistant"]
    found = _ANSWER.findall(replies[-1]) if replies else []
    return found[-1].strip() if found else None


def _finish(src: Mapping, m: _Media, messages: list[dict], *, used: set[str], answer: str | None,
            task: str | None, source: str | None, default_task: str, default_source: str,
            meta: dict | None = None) -> dict:
    """Assemble the canonical row: keep canonical GT columns, move every unused column into meta."""
    out_meta = src.get("meta") or {}
    out_meta = dict(json.loads(out_meta) if isinstance(out_meta, str) else out_meta)
    for key, value in src.items():
        if key in used or key in FIELDS:
            continue
        try:
            out_meta[key] = json.loads(json.dumps(value, default=json_default, allow_nan=False))
        except (TypeError, ValueError) as e:
            raise m.fail(key, f"column cannot go into meta: {e}") from None
    out_meta.update(meta or {})
    row = {"id": None if src.get("id") is None else str(src["id"]), "messages": messages, "answer": answer,
           "task": task or src.get("task") or default_task,
           "source": source or src.get("source") or default_source}
    row.update({k: src[k] for k in GT_FIELDS if src.get(k) is not None})
    row["meta"] = out_meta
    return row


def from_trl(row: Mapping, *, index: int | None = None, media_dir: str | Path | None = None,
             root: str | Path | None = None, task: str | None = None, source: str | None = None) -> dict:
    """A TRL row: conversational `messages`, or `prompt` [+ `completion`] (string or messages), with
    `{"type": "image"}` placeholders filled from `images` (or a single `image`); `solution` -> answer.

    >>> prompt = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "How many?"}]}]
    >>> r = from_trl({"prompt": prompt, "images": ["a.png"], "solution": "<answer> 3 </answer>"})
    >>> r["messages"][0]["content"][0], r["answer"]
    ({'type': 'image', 'image': 'a.png'}, '3')
    """
    m = _Media(row.get("id", index), _path(media_dir), _path(root))
    if row.get("messages") is not None:
        turns = _turns(row["messages"], "messages", m)
    elif row.get("prompt") is not None:
        prompt, completion = row["prompt"], row.get("completion")
        turns = [("user", prompt)] if isinstance(prompt, str) else _turns(prompt, "prompt", m)
        if completion is not None:
            turns += [("assistant", completion)] if isinstance(completion, str) \
                else _turns(completion, "completion", m)
    else:
        raise m.fail("prompt", "a TRL row needs `prompt` or `messages`")
    column = "images" if "images" in row else "image"
    media = {"image": (column, as_list(row.get(column))), "video": ("videos", as_list(row.get("videos")))}
    messages = _build_messages(turns, media, m)
    answer = _answer(row["solution"] if row.get("solution") is not None else row.get("answer"))
    return _finish(row, m, messages, used={"messages", "prompt", "completion", "images", "image", "videos",
                                          "solution"}, answer=answer, task=task, source=source,
                   default_task="vqa", default_source="trl")


def from_llava(row: Mapping, *, index: int | None = None, media_dir: str | Path | None = None,
               root: str | Path | None = None, task: str | None = None, source: str | None = None) -> dict:
    """A LLaVA / qwen-vl-finetune / VLM-R1 row: `image` (str or list), `video`, `conversations` with
    `from: human|gpt|system` and `<image>`/`<video>` tags. The answer is `solution`/`answer` if given,
    else the `<answer>` of the last gpt turn.
    """
    m = _Media(row.get("id", index), _path(media_dir), _path(root))
    field = "messages" if "conversations" not in row and "messages" in row else "conversations"
    turns = _turns(row.get(field), field, m)
    image_col = "image" if "image" in row else "images"
    video_col = "video" if "video" in row else "videos"
    media = {"image": (image_col, as_list(row.get(image_col))),
             "video": (video_col, as_list(row.get(video_col)))}
    messages = _build_messages(turns, media, m)
    given = row.get("solution", row.get("answer"))
    answer = _answer(given) if given is not None else _answer_in_reply(messages)
    return _finish(row, m, messages, used={"conversations", "messages", "image", "images", "video", "videos",
                                          "solution"}, answer=answer, task=task, source=source,
                   default_task="vqa", default_source="llava")


def _path(value: str | Path | None) -> Path | None:
    return None if value is None else Path(value)


def from_swift(row: Mapping, *, index: int | None = None, media_dir: str | Path | None = None,
               root: str | Path | None = None, task: str | None = None, source: str | None = None,
               image_size: Callable[[str], tuple[int, int]] | None = None) -> dict:
    """An ms-swift / LLaMA-Factory sharegpt row: `messages` with `<image>`/`<video>`/`<audio>` tags and
    `images`/`videos`/`audios` (or the older `query`/`response`/`history`/`system`), `solution` -> answer.

    `objects` {ref, bbox, bbox_type real|norm1|norm1000, image_id} become `boxes`/`points` in original
    pixels; relative ones need the image size, from `width`/`height` columns or `image_size(path)`.
    `<ref-object>` tags are replaced by the refs; `<bbox>` tags stay in the text, the k-th standing for the
    k-th box/point, because how a box is written depends on the model family (render it at training time).
    """
    m = _Media(row.get("id", index), _path(media_dir), _path(root))
    if row.get("messages") is not None:
        turns = _turns(row["messages"], "messages", m)
    elif row.get("query") is not None:
        turns = [("system", row["system"])] if row.get("system") else []
        for pair in row.get("history") or []:
            turns += [("user", pair[0]), ("assistant", pair[1])]
        turns.append(("user", row["query"]))
        if row.get("response") is not None:
            turns.append(("assistant", row["response"]))
    else:
        raise m.fail("messages", "an ms-swift row needs `messages` (or `query`)")
    media = {k: (f"{k}s", as_list(row.get(f"{k}s"))) for k in ("image", "video", "audio")}
    messages = _build_messages(turns, media, m)
    boxes, points, extra = swift_objects(row, messages, who=m.who, image_size=image_size)
    used = {"messages", "query", "response", "history", "system", "images", "videos", "audios", "solution",
            "objects"}
    out = _finish(row, m, messages, used=used, answer=_answer(row.get("solution", row.get("answer"))),
                  task=task, source=source, default_task="grounding" if boxes or points else "vqa",
                  default_source="swift", meta=extra)
    out["boxes"], out["points"] = out.get("boxes", []) + boxes, out.get("points", []) + points
    return out


def from_easyr1(row: Mapping, *, index: int | None = None, media_dir: str | Path | None = None,
                root: str | Path | None = None, task: str | None = None, source: str | None = None,
                prompt_key: str = "problem", answer_key: str = "answer", image_key: str = "images",
                video_key: str = "videos") -> dict:
    """An EasyR1 / R1-V row: `problem` with `<image>` tags, `answer`, `images`, `videos`; the keys can
    be remapped as EasyR1's `data.*_key` options do. (R1-V's `image` + `solution` also work.)
    """
    m = _Media(row.get("id", index), _path(media_dir), _path(root))
    if not isinstance(row.get(prompt_key), str):
        raise m.fail(prompt_key, f"an EasyR1 row needs a string `{prompt_key}`")
    if image_key not in row and "image" in row:
        image_key = "image"
    answer_key = answer_key if answer_key in row or "solution" not in row else "solution"
    media = {"image": (image_key, as_list(row.get(image_key))),
             "video": (video_key, as_list(row.get(video_key)))}
    messages = _build_messages([("user", row[prompt_key])], media, m)
    return _finish(row, m, messages, used={prompt_key, answer_key, image_key, video_key},
                   answer=_answer(row.get(answer_key)), task=task, source=source, default_task="vqa",
                   default_source="easyr1")


def from_verl(row: Mapping, *, index: int | None = None, media_dir: str | Path | None = None,
              root: str | Path | None = None, task: str | None = None, source: str | None = None) -> dict:
    """A verl parquet row: `data_source` -> source, `prompt` (chat list, `<image>`/`<video>` tags),
    `images`/`videos`, `reward_model.ground_truth` -> answer; `extra_info` (and `ability`) -> meta.
    """
    m = _Media(row.get("id", index), _path(media_dir), _path(root))
    prompt = row.get("prompt")
    turns = [("user", prompt)] if isinstance(prompt, str) else _turns(prompt, "prompt", m)
    media = {"image": ("images", as_list(row.get("images"))), "video": ("videos", as_list(row.get("videos")))}
    messages = _build_messages(turns, media, m)
    reward = row.get("reward_model") or {}
    reward = json.loads(reward) if isinstance(reward, str) else dict(reward)
    extra = row.get("extra_info") or {}
    meta = dict(json.loads(extra) if isinstance(extra, str) else extra)
    if row.get("ability") is not None:
        meta["ability"] = row["ability"]
    if set(reward) - {"ground_truth"}:
        meta["reward_model"] = {k: v for k, v in reward.items() if k != "ground_truth"}
    meta = json.loads(json.dumps(meta, default=json_default))
    used = {"data_source", "prompt", "images", "videos", "reward_model", "extra_info", "ability"}
    return _finish(row, m, messages, used=used, answer=_answer(reward.get("ground_truth")), task=task,
                   source=source or row.get("data_source"), default_task="vqa", default_source="verl",
                   meta=meta)


READERS: dict[str, Callable[..., dict]] = {
    "trl": from_trl,
    "llava": from_llava,
    "swift": from_swift,
    "easyr1": from_easyr1,
    "verl": from_verl,
}


def read_rows(rows: Iterable[Mapping], fmt: str, *, id_prefix: str = "", media_dir: str | Path | None = None,
              root: str | Path | None = None, **reader_kwargs: Any) -> Iterator[dict]:
    """Convert `rows` of format `fmt` (a key of READERS) into validated canonical rows.

    Ids are `id_prefix` + the row's own `id`, or + its position when it has none; they must be unique.
    Errors name the input row. `reader_kwargs` go to the reader (e.g. `image_size=` for swift, `task=`).

    >>> rows = [{"problem": "<image>Find x.", "answer": 3, "images": ["g/1.png"]}]
    >>> [r] = read_rows(rows, "easyr1", id_prefix="geo-")
    >>> r["id"], r["answer"], r["messages"][0]["content"][0]
    ('geo-0', '3', {'type': 'image', 'image': 'g/1.png'})
    """
    if fmt not in READERS:
        raise ValueError(f"unknown format {fmt!r}; known: {sorted(READERS)}")
    reader, seen = READERS[fmt], {}
    for i, src in enumerate(rows):
        if not isinstance(src, Mapping):
            raise SchemaError(f"expected a dict, got {type(src).__name__}", row=f"{fmt} input row {i}")
        row = reader(src, index=i, media_dir=media_dir, root=root, **reader_kwargs)
        row["id"] = f"{id_prefix}{i if row['id'] is None else row['id']}"
        try:
            row = validate(row, index=i)
        except SchemaError as e:
            raise with_context(e, f"{fmt} input row {i}") from None
        if row["id"] in seen:
            raise SchemaError(f"duplicate id (input rows {seen[row['id']]} and {i})", row=row["id"],
                              field="id")
        seen[row["id"]] = i
        yield row
