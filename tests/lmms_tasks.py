"""Local lmms-eval tasks over builder scenes for the tests of the lmms-eval model classes: the scenes' rows
as task documents, a Parquet file of them, lmms-eval's own evaluator on one task folder, and box IoU."""

from __future__ import annotations

from pathlib import Path

BASE = Path(__file__).resolve().parents[1] / "models" / "tiny_base" / "qwen2_5_vl"


def scene_docs(scenes: Path) -> list[dict]:
    """One document per scene row: its id, question, picture (absolute path), named box and the row itself."""
    from mmreason.schema import dataset_root, load_rows, resolve_media

    docs = []
    for row in (resolve_media(r, dataset_root(scenes)) for r in load_rows(scenes)):
        parts = row["messages"][0]["content"]
        docs.append({"id": row["id"], "question": next(p["text"] for p in parts if p["type"] == "text"),
                     "image": next(p["image"] for p in parts if p["type"] == "image"),
                     "box": row["boxes"][0]["box"], "row": row})
    return docs


def write_parquet(docs: list[dict], path: Path) -> None:
    """`docs` as a Parquet file whose ``image`` column holds the pictures (lmms-eval hands them out as PIL)."""
    import datasets

    datasets.Dataset.from_list(docs).cast_column("image", datasets.Image()).to_parquet(str(path))


def evaluate(task: str, task_folder: Path, model_args: str, force_simple: bool = False) -> dict:
    """lmms-eval's own evaluator, `task` found in `task_folder` only, samples logged."""
    from lmms_eval.evaluator import simple_evaluate
    from lmms_eval.tasks import TaskManager

    return simple_evaluate(model="mmreason", model_args=model_args, tasks=[task], batch_size=2, log_samples=True,
                           force_simple=force_simple,
                           task_manager=TaskManager(include_path=str(task_folder), include_defaults=False))


def iou(a: list[float], b: list[float]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return w * h / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h)
