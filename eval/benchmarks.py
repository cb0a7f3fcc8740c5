"""Benchmark tasks: the published benchmarks, each a task entry that reads the release as downloaded.

Each entry is a `tasks.Task` with a `tasks.Layout` (the loader in `layouts` and where the release keeps
its files), its protocol's prompt, pixel budget and metrics, the breakdowns the papers report, and the
method papers' reported numbers (as fractions) printed beside ours. Adding a benchmark is one entry here
(plus a loader when its layout is new). `ALL_TASKS` is this table and the canonical-row tasks of
`tasks.TASKS` together; `find_task` looks a name up in it.

>>> ALL_TASKS["pope"].layout.loader, ALL_TASKS["screenspot_pro"].breakdown
('pope', ('group', 'element', 'group+element'))
"""

from __future__ import annotations

import dataclasses

from mmreason.errors import RecipeError
from mmreason.eval.tasks import ANSWER_PROMPT, INFIGUI_MAX_PIXELS, TASKS, Layout, Metric, Task

M = "mmreason.eval.metrics:"
DEEPEYES = "DeepEyes-7B (arXiv 2505.14362, Table 1)"
INFIGUI = "InfiGUI-R1-3B (arXiv 2504.14239)"
GS_REASONER = "GS-Reasoner (arXiv 2510.13800)"
GRIT = "GRIT Qwen2.5-VL-3B, GPT-judged (arXiv 2505.15879, Table 1)"

_CHOICE = {"accuracy": Metric("choice_accuracy"),
           "zoom_iou": Metric("box_iou", {"where": "all", "coord_frame": "pixel"}),
           "tool_calls": Metric(M + "tool_calls"), "format": Metric(M + "output_format", {"kind": "answer"})}
_CLICK = {"click_accuracy": Metric("click_in_box"), "format": Metric(M + "output_format", {"kind": "point"})}
_SCREEN_HINT = "expected ScreenSpot's {files} and the {images}/ picture folder"


def _screenspot(files: tuple[str, ...], images: str, **more) -> Layout:
    return Layout("converter", {"format": "screenspot", "files": files, "set": {"images": images},
                                "post": "screen", "hint": _SCREEN_HINT.format(files=files, images=images),
                                **more})


def _pope_stat(stat: str) -> Metric:
    return Metric(M + "yes_no", {"stat": stat})


def _android_control(level: str, reported: dict) -> Task:
    """AndroidControl-Low / -High on InfiGUI-R1's test file: its three numbers, grounding over GT clicks."""
    return dataclasses.replace(
        TASKS[f"android_control_{level}"],
        description=f"AndroidControl-{level.capitalize()} test as InfiGUI-R1 evaluates it: action type, "
                    "grounding (GT clicks) and step success, by GT action.",
        metrics={"step_success": Metric("gui_action_match"), "type": Metric("gui_action_type"),
                 "grounding": Metric(M + "gui_grounding_match", {"actions": ("click",)}),
                 "format": Metric(M + "output_format", {"kind": "action"})},
        layout=Layout("android_control", {"files": ("android_control_test.json",)}),
        breakdown=("action",), paper={INFIGUI: reported})


BENCHMARKS: dict[str, Task] = {
    "vstar_bench": dataclasses.replace(
        TASKS["vstar"],
        description="V* Bench (attribute, spatial) as released: option-letter accuracy with DeepEyes' zoom "
                    "loop, by category.",
        metrics=_CHOICE, layout=Layout("vstar", {"categories": ("direct_attributes", "relative_position")}),
        breakdown=("category",),
        reference="V* Bench (arXiv 2312.14135) folders of NAME.jpg + NAME.json, first option right; DeepEyes "
                  "eval_vstar prompt and zoom loop",
        paper={DEEPEYES: {"accuracy": 0.901}}),
    "hr_bench": dataclasses.replace(
        TASKS["vstar"],
        description="HR-Bench 4K / 8K TSV: option-letter accuracy with DeepEyes' zoom loop, by FSP / FCP.",
        metrics=_CHOICE, breakdown=("category",),
        layout=Layout("tsv_mcq", {"files": ("hr_bench_4k.tsv", "hr_bench_8k.tsv"),
                                  "categories": {"single": "FSP", "cross": "FCP"}}),
        reference="HR-Bench (arXiv 2408.15556) VLMEvalKit TSV; DeepEyes' zoom loop",
        paper={DEEPEYES + " 4K": {"accuracy": 0.751}, DEEPEYES + " 8K": {"accuracy": 0.726}}),
    "screenspot_v1": dataclasses.replace(
        TASKS["screenspot"], description="ScreenSpot as released: point-in-box by device and element type.",
        layout=_screenspot(("screenspot_mobile.json", "screenspot_desktop.json", "screenspot_web.json"),
                           "screenspot_imgs"),
        breakdown=("device", "element", "device+element"), metrics=_CLICK,
        paper={INFIGUI: {"click_accuracy": 0.875}}),
    "screenspot_v2": dataclasses.replace(
        TASKS["screenspot"], description="ScreenSpot-v2 as released: point-in-box by device and element type.",
        layout=_screenspot(("screenspot_mobile_v2.json", "screenspot_desktop_v2.json",
                            "screenspot_web_v2.json"), "screenspotv2_image"),
        breakdown=("device", "element", "device+element"), metrics=_CLICK),
    "screenspot_pro": dataclasses.replace(
        TASKS["screenspot"],
        description="ScreenSpot-Pro as released: point-in-box by application group and element type.",
        layout=_screenspot(("annotations/*.json",), "images"),
        breakdown=("group", "element", "group+element"), metrics=_CLICK,
        paper={INFIGUI: {"click_accuracy": 0.357}}),
    "refcoco": dataclasses.replace(
        TASKS["grounding"],
        description="RefCOCO / RefCOCO+ / RefCOCOg val as released (refs pickle + COCO instances): Acc@0.5.",
        layout=Layout("converter", {"format": "refcoco", "files": ("refs(unc).p", "refs(umd).p"),
                                    "set": {"instances": "instances.json", "images": "images", "split": "val"},
                                    "hint": "expected a refer-toolkit folder: refs(unc).p or refs(umd).p, "
                                            "instances.json, images/ (COCO train2014)"}),
        paper={DEEPEYES + " RefCOCO val": {"acc@0.5": 0.898}}),
    "pope": Task(
        "POPE (random / popular / adversarial) as released: accuracy, F1, precision, recall, yes-ratio.",
        row_tasks=("vqa",), prompt="{question}\nAnswer the question using a single word or phrase.",
        metrics={"accuracy": _pope_stat("accuracy"), "precision": _pope_stat("precision"),
                 "recall": _pope_stat("recall"), "yes_ratio": _pope_stat("yes_ratio"),
                 "format": Metric(M + "output_format", {"kind": "yes_no"})},
        derived={"f1": ("f1", "precision", "recall")}, breakdown=("category",),
        layout=Layout("pope", {"files": ("coco_pope_*.json",), "images": "val2014"}),
        reference="POPE (arXiv 2305.10355): 'no'/'not' in the reply reads no, else yes; lmms-eval's prompt",
        max_new_tokens=16, paper={DEEPEYES: {"accuracy": 0.877}}),
    "charades_sta": dataclasses.replace(
        TASKS["temporal_grounding"],
        description="Charades-STA test as released: R@0.5 / R@0.7 and mean tIoU.",
        layout=Layout("converter", {"format": "charades", "files": ("charades_sta_test.txt",),
                                    "set": {"videos": "Charades_v1_480"},
                                    "hint": "expected charades_sta_test.txt and the Charades_v1_480/ videos"})),
    "vsi_bench": dataclasses.replace(
        TASKS["vsi"], description="VSI-Bench as released: MCQ accuracy and mean relative accuracy, by type.",
        layout=Layout("vsi_bench", {"files": ("test-*.parquet", "*/test-*.parquet", "test.parquet")}),
        breakdown=("question_type",), paper={GS_REASONER + " via a paper note": {"overall": 0.647}}),
    "androidcontrol_low": _android_control("low", {"type": 0.960, "grounding": 0.932, "step_success": 0.921}),
    "androidcontrol_high": _android_control("high", {"type": 0.827, "grounding": 0.744, "step_success": 0.711}),
    "scanrefer": dataclasses.replace(
        TASKS["grounding_3d"],
        description="ScanRefer val as released over ScanNet scans: Acc@0.25 / Acc@0.5 of the 3D box, by "
                    "unique / multiple.",
        layout=Layout("scanrefer", {"files": ("ScanRefer_filtered_val.json",), "scans": "scans"}),
        breakdown=("subset",),
        reference="ScanRefer (arXiv 1912.08830): GT boxes from ScanNet's aggregated annotations in the "
                  "axis-aligned frame; GS-Reasoner's axis-aligned 3D IoU",
        paper={GS_REASONER + " via a paper note": {"acc@0.25": 0.608, "acc@0.5": 0.422}}),
    "mathvista": Task(
        "MathVista testmini as released: answers extracted and normalised as its evaluator does (choice, "
        "integer, float at the row's precision, list), by question type and task.",
        row_tasks=("vqa",), prompt="{question}\n" + ANSWER_PROMPT,
        metrics={"accuracy": Metric("mmreason.eval.mathvista:mathvista_match"),
                 "format": Metric(M + "output_format", {"kind": "answer"})},
        breakdown=("question_type", "task"),
        layout=Layout("mathvista", {"files": ("testmini.json", "annot_testmini.json", "data/testmini-*.parquet")}),
        reference="MathVista (arXiv 2310.02255) calculate_score.py normalisation; rule-based extraction from "
                  "<answer> / \\boxed{} in place of its GPT extraction",
        max_new_tokens=1024,
        paper={"DeepEyes-7B (arXiv 2505.14362)": {"accuracy": 0.701}, GRIT: {"accuracy": 0.598}}),
}

ALL_TASKS: dict[str, Task] = {**TASKS, **BENCHMARKS}


def find_task(name: str) -> Task:
    """A task of `ALL_TASKS` by name, with the known names in the error."""
    if name not in ALL_TASKS:
        import difflib

        close = difflib.get_close_matches(name, list(ALL_TASKS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise RecipeError(f"unknown eval task {name!r}{hint} (known: {', '.join(ALL_TASKS)}; "
                          "`mmreason ls tasks` lists them)")
    return ALL_TASKS[name]


__all__ = ["BENCHMARKS", "ALL_TASKS", "find_task"]
