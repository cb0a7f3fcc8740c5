"""The listener as a VLM that sees the pictures (arXiv 2506.22832: the frozen listener, Qwen2.5-VL-7B-Instruct,
reads the reasoning with the answer masked next to the images it is about).

For each sample the listener's user turn holds the row's pictures, then the prompt (question and masked
reasoning); each candidate answer is its assistant reply. The collator builds the inputs exactly as
training does (`mmreason.modalities.collate`, the family's chat template and image sizing at
``ListenerConfig.max_pixels``), and a candidate's score is the summed log-probability of its own tokens (the
first tokens of the reply; the end-of-turn marker every candidate shares is left out).

Pictures come from TRL's ``images`` / ``image`` columns (PIL images), else from the row's image and
screenshot parts (`mmreason.schema.images_of`): absolute paths as the trainer passes them, relative ones
joined onto ``ListenerConfig.image_root``. A picture that cannot be found is a `RecipeError` naming the
sample and the file: scoring on without it would quietly turn the listener back into a text reader.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from mmreason.errors import RecipeError
from mmreason.families import FAMILIES
from mmreason.schema import images_of


def row_images(row: Mapping, image_root: str | None) -> list:
    """The pictures the listener is shown for `row`: PIL images or absolute paths, in order.

    >>> from PIL import Image
    >>> len(row_images({"images": [Image.new("RGB", (4, 4))]}, None)), row_images({"messages": []}, None)
    (1, [])
    """
    pictures = row.get("images")
    if isinstance(pictures, (list, tuple)) and pictures and all(hasattr(p, "size") for p in pictures):
        return list(pictures)
    if hasattr(row.get("image"), "size"):
        return [row["image"]]
    messages = row.get("messages") if isinstance(row.get("messages"), list) else row.get("prompt")
    if not isinstance(messages, list):
        return []
    try:
        paths = images_of({"messages": messages})
    except (KeyError, TypeError, AttributeError):
        return []
    out = []
    for path in paths:
        if not isinstance(path, str):
            continue
        full = path if os.path.isabs(path) or image_root is None else os.path.join(image_root, path)
        if not os.path.isfile(full):
            hint = "" if os.path.isabs(path) else " (a relative path: set listener.image_root to the dataset folder)"
            raise RecipeError(f"listener: sample {row.get('id')!r}: image {full} not found{hint}")
        out.append(full)
    return out


def family_of(model_dir: str) -> str:
    """The backbone family of a checkpoint, from its config's ``model_type``."""
    try:
        model_type = json.loads((Path(model_dir) / "config.json").read_text())["model_type"]
    except (OSError, ValueError, KeyError) as exc:
        raise RecipeError(f"listener: cannot read the model type of {model_dir!r}: {exc}") from exc
    for name, family in FAMILIES.items():
        if family.model_type == model_type:
            return name
    raise RecipeError(f"listener: {model_dir!r} is a {model_type!r} model, which cannot see images here; "
                      f"use a checkpoint of {', '.join(FAMILIES)} or set listener.sees_images: false")


def vision_scores(items: Sequence[tuple[list, str, Sequence[str]]], config: Any, processor: Any, model: Any,
                  family: str) -> list[list[float]]:
    """For each (pictures, user text, options): each option's summed log-probability as the reply."""
    import torch

    from mmreason.modalities.collate import collate
    from mmreason.rewards._common import readable_text

    tokenizer = processor.tokenizer
    rows, spans = [], []  # spans: (sample, number of option tokens)
    for i, (pictures, user, options) in enumerate(items):
        content = [{"type": "image", "image": p} for p in pictures] + [{"type": "text", "text": readable_text(user)}]
        for j, option in enumerate(options):
            text = readable_text(option)
            rows.append({"id": f"listener-{i}-{j}", "messages": [
                {"role": "user", "content": content},
                {"role": "assistant", "content": [{"type": "text", "text": text}]}]})
            spans.append((i, max(1, len(tokenizer(text, add_special_tokens=False)["input_ids"]))))
    media = {"image": {"max_pixels": config.max_pixels}} if config.max_pixels else None
    scores: list[float] = []
    with torch.inference_mode():
        for lo in range(0, len(rows), config.batch_size):
            batch = collate(rows[lo:lo + config.batch_size], processor, family, mode="train", return_meta=False,
                            media_options=media)
            labels = batch.pop("labels")
            batch = {k: v.to(config.device) if hasattr(v, "to") else v for k, v in batch.items()}
            logp = torch.log_softmax(model(**batch).logits.float(), dim=-1).cpu()
            for r in range(labels.shape[0]):
                _, k = spans[lo + r]
                positions = (labels[r] != -100).nonzero().flatten()[:k]
                targets = labels[r, positions]
                scores.append(float(logp[r, positions - 1].gather(1, targets[:, None]).sum()))
    out: list[list[float]] = [[] for _ in items]
    for (i, _), s in zip(spans, scores):
        out[i].append(s)
    return out
