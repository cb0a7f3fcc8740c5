"""The evaluation task table: which rows a benchmark takes, its pinned prompt, settings and metrics.

Scores on these benchmarks move by many points with the prompt, the pixel budget and the answer
extraction, so each task pins all three and `mmreason eval` writes
them next to the score. A task selects canonical rows by their ``task`` field (and, optionally, the media
they carry), rebuilds the prompt from the row's media and question with its own template, generates
greedily, and scores with named metrics: reward functions from `mmreason.rewards` (one IoU, MRA and
point-in-box for training and evaluation alike) or the few in `mmreason.eval.metrics`. Every task also
reports ``format``, the share of outputs that parse as the format its prompt asks for
(`metrics.output_format`), so a score of 0 from unreadable outputs is told apart from wrong answers.

Template fields: ``{question}`` (the text of the row's last user turn), ``{instruction}``
(``gui.instruction``, else the question) and ``{width}``/``{height}`` (the first image's extent in the
family's output frame: the smart-resized size for resized-pixel families, 1000 x 1000 for 0-1000 families).

>>> sorted(TASKS)[:5]
['android_control_high', 'android_control_low', 'audio_grounding', 'audio_listen', 'audio_qa']
>>> TASKS["grounding"].metrics["acc@0.5"]
Metric(fn='box_iou_hit', options={'threshold': 0.5})
>>> TASKS["grounding"].metrics["format"]
Metric(fn='mmreason.eval.metrics:output_format', options={'kind': 'box'})
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from mmreason.errors import MediaError, RecipeError, SchemaError
from mmreason.families import Family, get_family
from mmreason.prompts import PROMPTS

M = "mmreason.eval.metrics:"
QWEN_MAX_PIXELS = 16384 * 28 * 28  # qwen-vl-utils' image ceiling, DeepEyes' fetch_image budget
GRIT_MAX_PIXELS = 256 * 28 * 28  # GRIT's trainer override
INFIGUI_MAX_PIXELS = 6400 * 28 * 28  # InfiGUI-R1's ScreenSpot / AndroidControl evaluation


@dataclass(frozen=True)
class Metric:
    """A reward name (`mmreason.rewards.REWARDS`) or ``module:attr``, with its options. Options the
    function takes and the task leaves out (``family``, ``min_pixels``, ``max_pixels``, ``judge``) are
    filled in by the harness."""

    fn: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Layout:
    """A benchmark's official release layout: the loader that reads it (`layouts.LOADERS`) and its options
    (which files, where the pictures are). A task with a layout reads ``--data`` as that release."""

    loader: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Task:
    description: str
    row_tasks: tuple[str, ...]  # canonical ``task`` values this benchmark scores
    prompt: str  # the user text template (module docstring); ignored by the "infigui" builder
    metrics: Mapping[str, Metric]  # the first is the headline number
    reference: str  # whose protocol the settings follow
    system: str | None = None
    builder: str = "template"  # how the prompt is built: "template" or "infigui"
    # "template": {"text_in_place": True} keeps the text where the row has it (default: after the media);
    # "infigui": {"level": "low" | "high"}
    builder_options: Mapping[str, Any] = field(default_factory=dict)
    needs: tuple[str, ...] = ()  # media part types a row must carry (e.g. "video")
    tools: tuple[str, ...] = ()  # tools the model may call (multi-turn when set)
    tool_frame: str | None = None  # frame of tool boxes; None: the family's output frame
    call_syntax: str = "tool_call"  # how calls are written: "tool_call" or Video-CoM's "video_com" lines
    max_turns: int = 1
    max_new_tokens: int = 512
    media: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # pinned media options per part type
    layout: Layout | None = None  # the benchmark's release layout; None: canonical rows
    # row meta keys the scores are also reported by ("a+b": by the pair), e.g. ("category",)
    breakdown: tuple[str, ...] = ()
    # summary-level numbers from the metric means: name -> ("f1", precision metric, recall metric)
    derived: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    paper: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # reported numbers by source


# Pinned prompts. `{{`/`}}` are literal braces (str.format).
ANSWER_PROMPT = "Think step by step inside <think> </think>, then give the final answer inside <answer> </answer>."
_BOX = ('Output the bounding box of the target as JSON, {{"bbox_2d": [x1, y1, x2, y2]}}, inside '
        "<answer> </answer>.")
_COUNT = ("Think step by step inside <think> </think>, giving the box of every object you count as "
          '{{"bbox_2d": [x1, y1, x2, y2]}}, then give the number inside <answer> </answer>.')
# GRIT and DeepEyes evaluate with the prompts their recipes train with (mmreason.prompts; no braces in them).
_GRIT = PROMPTS["grit"].prefix + "{question}" + PROMPTS["grit"].suffix
_VSTAR = PROMPTS["deepeyes"].prefix + "{question}" + PROMPTS["deepeyes"].suffix
_SCREENSPOT = ("The screen's resolution is {width}x{height}. Point to the UI element most relevant to "
               '"{instruction}", output its coordinates using JSON format: [{{"point_2d": [x, y], '
               '"label": "object name"}}]')
_GCOT = ("Think inside <think> </think>, naming each object you use as `name count <bbox>(x1, y1, z1, x2, "
         "y2, z2)</bbox>` in metres, then answer inside <answer> </answer>: the option letter for a "
         "multiple-choice question, a number for a measurement or a count, else a short phrase.")
_BOX_3D = ("Answer inside <answer> </answer> as `name count <bbox>(x1, y1, z1, x2, y2, z2)</bbox>`, an "
           "axis-aligned box in metres.")
_SPAN = "Answer inside <answer> </answer> with the start and end time in seconds, as `start to end`."
_FINAL = ("Reason step by step, then end with a line `FINAL_ANSWER: <letter>. <option>` (or `FINAL_ANSWER: "
          "<number>` when there are no options).")
_COM = ("You may look closer, one manipulation per line, each ending your turn: `FIND_SEGMENT(what) = "
        "[segment numbers]` to rewatch segments, `FIND_FRAME(what) = [frame numbers]` to see frames, "
        "`SPATIAL_ZOOM(what) = [x1, y1, x2, y2]` to zoom into the frame seen last (its pixels). When sure, "
        "end with `FINAL_ANSWER: <letter>. <option>` (or `FINAL_ANSWER: <number>` when there are no "
        "options).")



def _format(kind: str) -> Metric:
    """The format rate: outputs that parse as ``kind`` (`mmreason.eval.metrics.FORMATS`)."""
    return Metric(M + "output_format", {"kind": kind})


_AGENT = {"step_success": Metric("gui_action_match"), "type": Metric("gui_action_type"),
          "grounding": Metric(M + "gui_grounding_match"), "format": _format("action")}
_VIDEO = {"video": {"fps": 2.0}}
_SCREENS = {"image": {"max_pixels": INFIGUI_MAX_PIXELS}}

def _span_metrics() -> dict[str, Metric]:
    """Charades-STA's readings of an answered time span: mean tIoU, R@0.3/0.5/0.7, moment hit, format."""
    return {"miou": Metric(M + "temporal_iou"), **{f"r@{t}": Metric(M + "temporal_iou", {"threshold": t})
                                                   for t in (0.3, 0.5, 0.7)},
            "hit": Metric(M + "temporal_hit"), "format": _format("span")}


TASKS: dict[str, Task] = {
    "grounding": Task(
        "Referring-expression grounding (RefCOCO style): Acc@0.5 and mean IoU of the first answered box.",
        row_tasks=("grounding",), prompt="{question}\n" + _BOX,
        metrics={"acc@0.5": Metric("box_iou_hit", {"threshold": 0.5}), "miou": Metric("box_iou"),
                 "format": _format("box")},
        reference="lmms-eval refcoco_bbox_rec; boxes read in the family's output frame"),
    "refer": Task(
        "Find the named object among several (the quickstart's task): mean IoU, Acc@0.5, the share of boxes "
        "nearer another object than the named one, and the format rate.",
        # the bare question where the row puts it, as the quickstart's SFT data trains: the answer is
        # {"bbox_2d": [...]} alone
        row_tasks=("grounding",), prompt="{question}",
        metrics={"miou": Metric("box_iou"), "acc@0.5": Metric("box_iou_hit", {"threshold": 0.5}),
                 "wrong_object": Metric(M + "wrong_object"), "reward": Metric("referring_iou"),
                 "format": _format("box")},
        reference="image_scenes' referring scenes (meta.objects); boxes read in the family's output frame",
        builder_options={"text_in_place": True}, max_new_tokens=32),
    "vqa": Task(
        "Short-answer VQA: offline correctness rule (or a judge) and normalised exact match.",
        row_tasks=("vqa",), prompt="{question}\n" + ANSWER_PROMPT,
        metrics={"accuracy": Metric("accuracy"), "exact_match": Metric("exact_match"),
                 "format": _format("answer")},
        reference="rule-based answer extraction from <answer>"),
    "counting": Task(
        "Counting (TallyQA style): exact count, and GRIT's union-of-boxes grounding IoU.",
        row_tasks=("counting",), prompt="{question}\n" + _COUNT,
        metrics={"accuracy": Metric("numeric_accuracy", {"rel_tol": 0.0}),
                 "grounding_iou": Metric("union_box_iou", {"where": "all"}), "format": _format("answer")},
        reference="GRIT section 4.2 (count accuracy; IoU of the union of boxes)"),
    "grit": Task(
        "GRIT: answer accuracy (GPT-judge when --judge is given) and union-of-boxes grounding IoU.",
        row_tasks=("vqa", "counting"), prompt=_GRIT,
        metrics={"accuracy": Metric("accuracy"), "grounding_iou": Metric("union_box_iou", {"where": "all"}),
                 "format": _format("grit")},
        reference="GRIT paper 4.2, Qwen2.5-VL processor max_pixels 256*28*28",
        media={"image": {"max_pixels": GRIT_MAX_PIXELS}}),
    "vstar": Task(
        "V*-style fine-grained VQA with DeepEyes' zoom loop: accuracy, IoU of the first zoom, tool calls.",
        row_tasks=("vqa",), prompt=_VSTAR,
        metrics={"accuracy": Metric("accuracy"),
                 "zoom_iou": Metric("box_iou", {"where": "all", "coord_frame": "pixel"}),
                 "tool_calls": Metric(M + "tool_calls"), "format": _format("answer")},
        reference="DeepEyes eval_vstar: original-pixel zoom boxes, at most 10 rounds",
        tools=("image_zoom_in_tool",), tool_frame="pixel", max_turns=10, max_new_tokens=1024,
        media={"image": {"max_pixels": QWEN_MAX_PIXELS}}),
    "screenspot": Task(
        "ScreenSpot GUI grounding: the predicted point inside the target element's box.",
        row_tasks=("gui_grounding",), prompt=_SCREENSPOT,
        metrics={"click_accuracy": Metric("click_in_box"), "format": _format("point")},
        reference="InfiGUI-R1 ScreenSpot protocol (point-in-box), max_pixels 6400*28*28",
        media=_SCREENS, max_new_tokens=256),
    "android_control_low": Task(
        "AndroidControl-Low: action type, grounding and step success (InfiGUI-R1's matcher).",
        row_tasks=("gui_action",), prompt="", metrics=_AGENT,
        reference="InfiGUI-R1 AndroidControl evaluation: mobile_use prompt with the step instruction",
        builder="infigui", builder_options={"level": "low"}, media=_SCREENS),
    "android_control_high": Task(
        "AndroidControl-High: as -Low, without the step instruction.",
        row_tasks=("gui_action",), prompt="", metrics=_AGENT,
        reference="InfiGUI-R1 AndroidControl evaluation: mobile_use prompt, goal only",
        builder="infigui", builder_options={"level": "high"}, media=_SCREENS),
    "vsi": Task(
        "VSI-Bench-style spatial QA: overall score, multiple-choice accuracy and mean relative accuracy.",
        row_tasks=("spatial_qa", "counting"), prompt="{question}\n" + _GCOT,
        metrics={"overall": Metric("vsi_accuracy"), "mc_accuracy": Metric(M + "vsi_mc"),
                 "mra": Metric(M + "vsi_mra"), "format": _format("gcot")},
        reference="GS-Reasoner / VSI-Bench: option letter match, MRA over thresholds 0.50:0.95",
        max_new_tokens=1024),
    "grounding_3d": Task(
        "3D visual grounding (ScanRefer style): Acc@0.25, Acc@0.5 and mean 3D IoU of the first answered box.",
        row_tasks=("grounding_3d",), prompt="{question}\n" + _BOX_3D,
        metrics={"acc@0.25": Metric("box_iou_3d", {"threshold": 0.25}),
                 "acc@0.5": Metric("box_iou_3d", {"threshold": 0.5}), "miou": Metric("box_iou_3d"),
                 "format": _format("box_3d")},
        reference="GS-Reasoner eval: axis-aligned 3D IoU"),
    "temporal_grounding": Task(
        "Temporal grounding (Charades-STA style): mean tIoU, R@0.3/0.5/0.7 and moment hit rate.",
        row_tasks=("temporal_grounding",), prompt="{question}\n" + _SPAN,
        metrics=_span_metrics(),
        reference="Charades-STA R@IoU; video sampled at 2 fps", needs=("video",), media=_VIDEO),
    "video_mcq": Task(
        "Video multiple choice (Video-CoM style): option-letter accuracy.",
        row_tasks=("vqa", "counting"), prompt="{question}\n" + _FINAL,
        metrics={"accuracy": Metric("accuracy"), "format": _format("final_answer")},
        reference="answer after FINAL_ANSWER, single turn", needs=("video",), media=_VIDEO),
    "video_com": Task(
        "Video-CoM: the chain-of-manipulations loop (segments, frames and zooms run as video tools); "
        "answer accuracy and manipulations per question.",
        row_tasks=("vqa", "counting"), prompt="{question}\n" + _COM,
        metrics={"accuracy": Metric("accuracy"), "manipulations": Metric(M + "tool_calls"),
                 "format": _format("final_answer")},
        reference="Video-CoM release: up to 5 rounds, zoom boxes in frame pixels, FINAL_ANSWER ends",
        needs=("video",), media=_VIDEO, call_syntax="video_com", tool_frame="pixel", max_turns=5),
    # Audio: the audio_speech builder's rows (espeak-ng words, beeps, noise with exact timings); a vision-only
    # family hears each clip as its log-mel spectrogram picture, the Omni family as Whisper features.
    "audio_grounding": Task(
        "Audio temporal grounding (when is a word said, when is the noise): mean tIoU, R@0.3/0.5/0.7 and "
        "moment hit rate of the answered span in seconds.",
        row_tasks=("temporal_grounding",), prompt="{question}\n" + _SPAN,
        metrics=_span_metrics(),
        reference="Charades-STA R@IoU, on audio time spans (seconds of the clip)", needs=("audio",),
        breakdown=("qtype",), max_new_tokens=256),
    "audio_qa": Task(
        "Audio question answering (which word, after which beep, how many beeps, higher or lower, the "
        "transcript): offline correctness rule and normalised exact match of the <answer>.",
        row_tasks=("audio_qa", "counting"), prompt="{question}\n" + ANSWER_PROMPT,
        metrics={"accuracy": Metric("accuracy"), "exact_match": Metric("exact_match"),
                 "format": _format("answer")},
        reference="R1-AQA (arXiv 2503.11197): rule-based accuracy of the <answer> block", needs=("audio",),
        breakdown=("qtype",), max_new_tokens=256),
    "audio_listen": Task(
        "Coarse-to-fine listening with the play_audio tool on every audio question: the answer term of "
        "audio_reasoning (span IoU on grounding rows, exact match on the others), the share of the GT span one "
        "close listen covered, and play_audio calls per question.",
        row_tasks=("temporal_grounding", "audio_qa", "counting"),
        prompt="{question}\nListen again closer with play_audio where you need to. " + ANSWER_PROMPT,
        metrics={"answer": Metric("audio_reasoning", {"evidence_weight": 0.0}), "evidence": Metric("audio_evidence"),
                 "tool_calls": Metric(M + "tool_calls"), "format": _format("answer")},
        reference="the project's audio rewards (mmreason.rewards.audio); at most 4 rounds", needs=("audio",),
        tools=("play_audio",), max_turns=4, breakdown=("qtype",), max_new_tokens=512),
}


def get_task(name: str) -> Task:
    """A task by name, with the known names in the error."""
    if name not in TASKS:
        import difflib

        close = difflib.get_close_matches(name, list(TASKS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise RecipeError(f"unknown eval task {name!r}{hint} (known: {', '.join(TASKS)})")
    return TASKS[name]


# ----------------------------------------------------------------------------------------- prompts
def _turns(row: Mapping[str, Any]) -> tuple[list[dict], int]:
    """The messages before the first assistant turn (system turns dropped: the task pins its own) and the
    index of the last user turn among them."""
    from mmreason.modalities import row_messages

    messages = row_messages(row)
    first = next((i for i, m in enumerate(messages) if m["role"] == "assistant"), len(messages))
    turns = [m for m in messages[:first] if m["role"] != "system"]
    users = [i for i, m in enumerate(turns) if m["role"] == "user"]
    if not users:
        raise SchemaError("no user turn before the first assistant turn", row=row.get("id"), field="messages")
    return turns, users[-1]


def _first_image(turns: list[dict]) -> dict | None:
    return next((p for m in turns for p in m["content"] if p.get("type") in ("image", "screenshot")), None)


def part_budget(part: Mapping[str, Any], family: Family | str, media: Mapping[str, Mapping[str, Any]],
                *, sample_id: object = None) -> tuple[int, int]:
    """(min_pixels, max_pixels) of one image part at the evaluation's budget; a part over that budget (or
    with a malformed one) is a `MediaError` naming its file and sample, not a bare ValueError."""
    from mmreason.modalities.image import image_budget

    kind = part.get("type", "image")
    try:
        return image_budget(part, family, media.get(kind) or media.get("image"))
    except ValueError as exc:
        value = part.get(kind)
        raise MediaError(value if isinstance(value, str) else f"<{kind}>", f"pixel budget: {exc}",
                         sample_id=sample_id) from None


def image_extent(part: Mapping[str, Any], family: Family, media: Mapping[str, Mapping[str, Any]],
                 *, sample_id: object = None) -> tuple[int, int]:
    """The extent of an image in the family's output frame at the evaluation's pixel budget."""
    from mmreason.geometry import ImageFrame
    from mmreason.modalities.image import open_image

    kind = part.get("type", "image")
    image, _ = open_image(part[kind], sample_id=sample_id)
    lo, hi = part_budget(part, family, media, sample_id=sample_id)
    frame = ImageFrame.for_family(image.width, image.height, family, min_pixels=lo, max_pixels=hi)
    if family.box_frame == "resized":
        return frame.resized_width, frame.resized_height
    return (1000, 1000) if family.box_frame == "norm1000" else (frame.width, frame.height)


def _system(task: Task) -> list[dict]:
    text = task.system or ""
    if task.tools:
        from mmreason.tools import tools_prompt

        text = (text + "\n\n" if text else "") + tools_prompt(list(task.tools))
    return [{"role": "system", "content": [{"type": "text", "text": text}]}] if text else []


Media = Mapping[str, Mapping[str, Any]]


def _template(row: Mapping[str, Any], task: Task, family: Family, media: Media) -> list:
    from mmreason.schema import text_of

    turns, last = _turns(row)
    question = text_of(turns[last]).strip()
    gui = row.get("gui") or {}
    fields = {"question": question, "instruction": gui.get("instruction") or question}
    if "{width}" in task.prompt or "{height}" in task.prompt:
        part = _first_image(turns)
        if part is None:
            raise SchemaError("the prompt of this task states the screen size, but the row has no image",
                              row=row.get("id"), field="messages")
        fields["width"], fields["height"] = image_extent(part, family, media, sample_id=row.get("id"))
    parts = turns[last]["content"]
    media_parts = [p for p in parts if p.get("type") != "text"]
    # after the media, as the reference protocols send it; or where the row has its text (a model trained
    # on the question before the image is evaluated on the prompt it was trained with)
    at = len(media_parts)
    if task.builder_options.get("text_in_place"):
        at = next((i for i, p in enumerate(parts) if p.get("type") == "text"), at)
    text = {"type": "text", "text": task.prompt.format(**fields)}
    user = {"role": "user", "content": [*media_parts[:at], text, *media_parts[at:]]}
    return _system(task) + turns[:last] + [user] + turns[last + 1:]


def _infigui(row: Mapping[str, Any], task: Task, family: Family, media: Media) -> list:
    """InfiGUI-R1's agent step (`modalities.gui.infigui_messages`) from the row's ``gui`` ground truth."""
    from mmreason.modalities.gui import infigui_messages, parse_action
    from mmreason.modalities.image import image_budget, open_image

    turns, _ = _turns(row)
    part = _first_image(turns)
    gui = row.get("gui") or {}
    if part is None:
        raise SchemaError("an agent step needs a screenshot", row=row.get("id"), field="messages")
    size = (gui.get("width"), gui.get("height"))
    if not all(size):
        size = open_image(part[part["type"]], sample_id=row.get("id"))[0].size
    _, hi = image_budget(None, family, media.get(part["type"]) or media.get("image"))
    history = [a for a in (parse_action(h).action for h in gui.get("history") or []) if a is not None]
    low = task.builder_options.get("level", "low") == "low"
    goal = gui.get("goal") or gui.get("instruction")
    if not goal:
        raise SchemaError("an agent step needs gui.goal or gui.instruction", row=row.get("id"), field="gui")
    return infigui_messages(goal, part[part["type"]], family=family, size=tuple(size), max_pixels=hi,
                            step_instruction=gui.get("instruction") if low else None, history=history)


PROMPT_BUILDERS = {"template": _template, "infigui": _infigui}


def prompt_messages(row: Mapping[str, Any], task: Task, family: str | Family,
                    media: Mapping[str, Mapping[str, Any]] | None = None) -> list[dict]:
    """The messages a task sends for one canonical row (media paths as the row has them).

    >>> row = {"id": "q", "messages": [{"role": "user", "content": [{"type": "text", "text": "2+2?"}]},
    ...                                {"role": "assistant", "content": "4"}]}
    >>> prompt_messages(row, TASKS["vqa"], "qwen2_5_vl")[0]["content"][0]["text"].splitlines()[0]
    '2+2?'
    """
    fam = get_family(family) if isinstance(family, str) else family
    return PROMPT_BUILDERS[task.builder](row, task, fam, media or {})


def rendered_prompt(task: Task) -> dict:
    """What results.json records about a task's prompt: the template, system text, tools and builder."""
    return {"template": task.prompt, "system": task.system, "builder": task.builder,
            "builder_options": dict(task.builder_options), "tools": list(task.tools),
            "tool_frame": task.tool_frame, "call_syntax": task.call_syntax}


__all__ = ["TASKS", "Task", "Layout", "Metric", "get_task", "prompt_messages", "image_extent", "rendered_prompt"]
