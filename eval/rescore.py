"""``mmreason eval --predictions samples.jsonl``: saved outputs (ours or anyone's) scored against the
dataset without a model, written as a generating run writes them."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

from mmreason.errors import RecipeError, SchemaError
from mmreason.families import get_family
from mmreason.eval.benchmarks import find_task
from mmreason.eval.generation import model_dir
from mmreason.eval.records import claim_out, run_settings, write_outputs
from mmreason.eval.results import results_record
from mmreason.eval.run_setup import Setup, checkpoint_budgets, make_setup
from mmreason.eval.scoring import prompt_texts, score, summary_of
from mmreason.eval.task_rows import fingerprint, select_rows, task_rows
from mmreason.eval.tasks import prompt_messages


def read_predictions(path: Path) -> list[dict]:
    """``{"id", "output", ...}`` per line; a bad line is a SchemaError naming the file and line."""
    out = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SchemaError(f"invalid JSON: {exc.msg}", row=f"{path} line {n}") from None
            if not (isinstance(rec, dict) and all(isinstance(rec.get(k), str) for k in ("id", "output"))):
                raise SchemaError("expected an object with string 'id' and 'output'", row=f"{path} line {n}")
            out.append(rec)
    return out


def _prediction_family(args: argparse.Namespace, predictions: Path) -> str:
    if args.family:
        get_family(args.family)
        return args.family
    if args.model:
        from mmreason.models import detect_family

        return detect_family(model_dir(args.model))
    saved = predictions.parent / "results.json"
    if saved.is_file():
        family = (json.loads(saved.read_text(encoding="utf-8")).get("model") or {}).get("family")
        if family:
            return family
    raise RecipeError("re-scoring needs the family whose coordinate frame the outputs use: pass --family "
                      "(or --model, or keep results.json next to the predictions)")


def rescore(args: argparse.Namespace) -> dict:
    """Score saved outputs against the dataset: no model, same metrics; writes to --out as `evaluate` does."""
    start = time.perf_counter()
    task = find_task(args.task)
    predictions = Path(args.predictions)
    preds = read_predictions(predictions)
    candidates, files = task_rows(task, args.data, Path(args.out))
    rows, counts = select_rows(candidates, task, None)
    by_id = {r["id"]: r for r in rows}
    missing = [p["id"] for p in preds if p["id"] not in by_id]
    if missing:
        raise SchemaError(f"{predictions}: {len(missing)} prediction id(s) are not rows of this task in "
                          f"{args.data}, e.g. {missing[0]!r}", row=missing[0], field="id")
    if args.limit:
        preds = preds[:args.limit]
    family = _prediction_family(args, predictions)
    chosen = [by_id[p["id"]] for p in preds]
    setup = make_setup(task, args.task, family, args, chosen,
                       checkpoint=checkpoint_budgets(model_dir(args.model)) if args.model else None)
    setup = replace(setup, extra={"rescored_from": str(predictions.resolve())})
    claim_out(Path(args.out), run_settings(args), overwrite=getattr(args, "overwrite", False))
    for p, row in zip(preds, chosen):
        if not p.get("image_frames"):
            p["image_frames"] = _image_frames(row, setup)
    prompts = [{"id": r["id"], "messages": prompt_messages(r, task, family, setup.media)} for r in chosen]
    records = score(task, setup, chosen, preds, prompt_texts(prompts))
    summary = summary_of(task, records, [r.get("meta") or {} for r in chosen], setup)
    data = fingerprint(args.data, [p["id"] for p in preds], files)
    results = results_record(args.task, setup, {"family": family, "spec": args.model}, data, summary,
                             len(records), counts, time.perf_counter() - start)
    write_outputs(Path(args.out), results, records)
    return results


def _image_frames(row: Mapping[str, Any], setup: Setup) -> list[dict]:
    """Frames of a row's images when the predictions did not record them: each image's size, resized by
    the family's rule at the evaluation's pixel budget (the part's own budget first)."""
    from mmreason.geometry import ImageFrame
    from mmreason.eval.tasks import part_budget
    from mmreason.modalities.image import open_image
    from mmreason.schema import IMAGE_TYPES

    out = []
    for m in row["messages"]:
        for part in m["content"]:
            if part["type"] in IMAGE_TYPES:
                image, _ = open_image(part[part["type"]], sample_id=row["id"])
                lo, hi = part_budget(part, setup.family, setup.media, sample_id=row["id"])
                f = ImageFrame.for_family(image.width, image.height, setup.family, min_pixels=lo,
                                          max_pixels=hi)
                out.append({"width": f.width, "height": f.height, "resized_width": f.resized_width,
                            "resized_height": f.resized_height})
    return out
