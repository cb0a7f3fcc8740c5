"""Which readings of a model's coordinates an eval run scores: the family's own frame, and the other
Qwen-VL frame beside it when the outputs could be in either.

The two readings of a Qwen-VL model's coordinates: relative 0-1000 (Qwen2-VL, Qwen3-VL) and absolute
pixels of the resized input (Qwen2.5-VL). A checkpoint fine-tuned from one family on data written in the
other's frame (UI-TARS-1.5, OS-Atlas...) writes the other, so unless --coord-frame pins the reading, the
coordinate metrics are scored in both and results.json says which won (lmms-eval's refcoco_grounding
scores both readings too).
"""

from __future__ import annotations

from mmreason.families import get_family
from mmreason.eval.tasks import Task

OTHER_READING = {"norm1000": "resized", "resized": "norm1000"}


def coordinate_metrics(task: Task) -> list[str]:
    """The task's metrics that read coordinates in a frame the harness chooses (the function takes
    ``coord_frame`` and the task does not pin it)."""
    from mmreason.rewards import resolve_reward, reward_options

    return [name for name, m in task.metrics.items()
            if "coord_frame" not in m.options and "coord_frame" in reward_options(resolve_reward(m.fn))]


def coordinate_readings(task: Task, family: str, pinned: str | None) -> tuple[str, ...]:
    """The readings scored beside the declared one: none when --coord-frame pins it or the task reads no
    coordinates, else the other Qwen-VL frame."""
    other = OTHER_READING.get(get_family(family).box_frame)
    return () if pinned or other is None or not coordinate_metrics(task) else (other,)
