"""The quickstart's numbers, recomputed from the files the stages wrote: ``eval/<model>/samples.jsonl``
(one record per held-out scene: output, parsed boxes in original pixels, scores) and the held-out dataset
(how many shapes each scene has). `stage_table` is what the report prints and the tests recompute.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any, Mapping, Sequence

from mmreason.quickstart import EVAL_STAGES
from mmreason.train.logging import read_jsonl

COLUMNS = ("n", "format", "iou_one", "iou_multi", "wrong_object", "acc@0.5", "reward")


def shape_counts(heldout: Path) -> dict[str, int]:
    """Held-out row id -> number of shapes in its scene."""
    from mmreason.schema import load_rows

    return {r["id"]: len(r["meta"]["objects"]) for r in load_rows(heldout)}


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return round(statistics.fmean(kept), 4) if kept else None


def stage_table(samples: Sequence[Mapping[str, Any]], counts: Mapping[str, int]) -> dict[str, Any]:
    """One stage's row: format rate; mean IoU with the named shape on one-shape and multi-shape scenes
    (an output without a box scores 0, so a format failure is never hidden); wrong-object rate on
    multi-shape scenes among answers with a box; Acc@0.5; mean `referring_iou` reward.

    >>> s = [{"id": "a", "scores": {"format": 1.0, "miou": 0.8, "wrong_object": None, "acc@0.5": 1.0,
    ...       "reward": 0.8}},
    ...      {"id": "b", "scores": {"format": 1.0, "miou": 0.0, "wrong_object": 1.0, "acc@0.5": 0.0,
    ...       "reward": -0.7}},
    ...      {"id": "c", "scores": {"format": 0.0, "miou": None, "wrong_object": None, "acc@0.5": None,
    ...       "reward": None}}]
    >>> stage_table(s, {"a": 1, "b": 3, "c": 2})
    {'n': 3, 'format': 0.6667, 'iou_one': 0.8, 'iou_multi': 0.0, 'wrong_object': 1.0, 'acc@0.5': 0.3333, 'reward': 0.0333}
    """
    def score(r, name, missing=0.0):
        value = r["scores"].get(name)
        return missing if value is None else value

    multi = [r for r in samples if counts[r["id"]] > 1]
    one = [r for r in samples if counts[r["id"]] == 1]
    return {
        "n": len(samples),
        "format": _mean([score(r, "format") for r in samples]),
        "iou_one": _mean([score(r, "miou") for r in one]),
        "iou_multi": _mean([score(r, "miou") for r in multi]),
        "wrong_object": _mean([r["scores"].get("wrong_object") for r in multi]),
        "acc@0.5": _mean([score(r, "acc@0.5") for r in samples]),
        "reward": _mean([score(r, "reward") for r in samples]),
    }


def tables(out: Path) -> dict[str, dict]:
    counts = shape_counts(out / "data" / "heldout")
    return {name: stage_table(read_jsonl(out / "eval" / name / "samples.jsonl"), counts)
            for name in EVAL_STAGES if (out / "eval" / name / "samples.jsonl").exists()}
