"""Grounded chain-of-thought targets in each method's format, built from evidence regions.

Every builder describes *why* an answer holds as a list of `Evidence` (a region of image 0 and what
looking at it shows); the functions here turn that into the assistant turns a method trains on:

- GRIT: one turn, boxes as ``{"bbox_2d": [...]}`` inside ``<think>``, then ``<rethink>``, ``<answer>``;
- DeepEyes: think -> ``image_zoom_in_tool`` call on the union of the evidence -> the crop comes back
  in a ``tool`` turn -> think -> answer;
- ViRL (a working assumption: arXiv 2511.23031 releases no code and its abstract names no tool): the
  same tool, one zoom per evidence region, so each visual action hits exactly one ground-truth rationale;
- TON (arXiv 2505.16854, §3.1 "thought dropout"): R1-V's ``<think>`` then the answer or action, where a
  dropped trace keeps the layout with the empty thought ``<think>\n\n</think>``
  (src/eval/aitz_evaluate/sft_grpo_data.py in github.com/kokolerk/TON). `ton_trace` writes one from any
  single-turn target; `data_builders.thought_dropout` applies it to a whole dataset.

Coordinates. Every box written here is in ORIGINAL pixels of image 0 (the frame of the GT columns),
and the row says so in ``meta["coord_frame"] = "pixel"``. A family whose outputs use another frame
(Qwen2.5-VL: resized pixels, Qwen2-VL/Qwen3-VL: 0-1000) gets its targets from
`mmreason.data_builders.frames.render_for_family`, which rewrites them through `mmreason.geometry`
at training time for the pixel budget actually used. Baking one family's frame in at build time would
tie a dataset to one model and one ``max_pixels``; GRIT's own data keeps original pixels too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from mmreason.traces import parse_blocks, render_block, render_box, render_tool_call

ZOOM_TOOL = "image_zoom_in_tool"  # DeepEyes' tool name; ViRL reuses it here
EMPTY_THOUGHT = "\n\n"  # TON's skipped thought, verbatim: <think>\n\n</think>
MIN_CROP_SIDE = 56  # DeepEyes rejects crops with a side <= 30 px; two 28-px patches keeps any family happy


@dataclass(frozen=True)
class Evidence:
    """A region of image 0 (original pixels) and what it shows."""

    label: str
    box: tuple[int, int, int, int]
    finding: str = ""


def text_turn(role: str, text: str) -> dict:
    return {"role": role, "content": [{"type": "text", "text": text}]}


def _sentence(text: str) -> str:
    text = text.strip()
    return text if not text or text[-1] in ".!?" else text + "."


def grit_trace(plan: str, evidence: Sequence[Evidence], conclusion: str, answer: str) -> str:
    """GRIT's single-turn target: boxes inside the thinking, a rethink, then the answer.

    >>> t = grit_trace("Find the cat.", [Evidence("cat", (1, 2, 30, 40), "it is red")], "So red.", "red")
    >>> t.startswith("<think>") and '"bbox_2d": [1, 2, 30, 40]' in t and t.endswith("<answer>red</answer>")
    True
    """
    steps = [_sentence(plan)]
    for ev in evidence:
        where = f"{ev.label[:1].upper()}{ev.label[1:]} is at {render_box(ev.box, fmt='bbox_2d', label=ev.label)}"
        steps.append(_sentence(f"{where}; {ev.finding}" if ev.finding else where))
    return "\n".join([
        render_block("think", " ".join(steps)),
        render_block("rethink", _sentence(conclusion)),
        render_block("answer", answer),
    ])


def union_box(boxes: Sequence[Sequence[int]]) -> tuple[int, int, int, int]:
    return (min(b[0] for b in boxes), min(b[1] for b in boxes),
            max(b[2] for b in boxes), max(b[3] for b in boxes))


def zoom_box(box: Sequence[int], width: int, height: int, *, pad: float = 0.25,
             min_side: int = MIN_CROP_SIDE) -> tuple[int, int, int, int]:
    """The crop a zoom call asks for: `box` grown by `pad` (at least 8 px) and to `min_side`, kept in the image.

    The crop is shifted, not cut, at the border so it keeps its size and always contains `box`.

    >>> zoom_box((0, 0, 10, 10), 100, 100)
    (0, 0, 56, 56)
    """
    x1, y1, x2, y2 = (int(v) for v in box)
    out = []
    for lo, hi, limit in ((x1, x2, width), (y1, y2, height)):
        grow = max(8, int(round((hi - lo) * pad)))
        lo, hi = lo - grow, hi + grow
        if hi - lo < min_side:
            extra = min_side - (hi - lo)
            lo, hi = lo - extra // 2, hi + extra - extra // 2
        side = min(hi - lo, limit)
        lo = min(max(lo, 0), limit - side)
        out.append((lo, lo + side))
    (cx1, cx2), (cy1, cy2) = out
    return (cx1, cy1, cx2, cy2)


def zoom_trajectory(
    evidence: Sequence[Evidence], *, plan: str, conclusion: str, answer: str, width: int, height: int,
    save_crop: Callable[[tuple[int, int, int, int], int], str], per_region: bool,
) -> tuple[list[dict], list[tuple[int, int, int, int]]]:
    """Assistant/tool turns of a zoom-in trajectory and the crop boxes it used.

    `save_crop(box, k)` writes the k-th crop of image 0 and returns its dataset-relative path; it is
    called before the turn that references it exists, so media always precede their rows.
    `per_region=False` zooms once on the union of the evidence (DeepEyes); True zooms on each region (ViRL).
    """
    groups = [[ev] for ev in evidence] if per_region else [list(evidence)]
    turns: list[dict] = []
    crops: list[tuple[int, int, int, int]] = []
    for k, group in enumerate(groups):
        crop = zoom_box(union_box([ev.box for ev in group]), width, height)
        label = " and ".join(ev.label for ev in group)
        why = _sentence(plan) if k == 0 else _sentence(f"Next I need a closer look at {label}")
        if k > 0 and groups[k - 1][0].finding:
            prev = groups[k - 1][0]
            why = _sentence(f"In the zoomed view of {prev.label}, {prev.finding}") + " " + why
        call = render_tool_call(ZOOM_TOOL, {"bbox_2d": list(crop), "label": label})
        think = render_block("think", f"{why} I will zoom in on {label}.")
        turns.append(text_turn("assistant", think + "\n" + call))
        turns.append({"role": "tool", "content": [{"type": "image", "image": save_crop(crop, k)}]})
        crops.append(crop)
    seen = " ".join(_sentence(f"In the zoomed view of {ev.label}, {ev.finding}")
                    for ev in groups[-1] if ev.finding)
    final = render_block("think", f"{seen} {_sentence(conclusion)}".strip()) + "\n" + \
        render_block("answer", answer)
    turns.append(text_turn("assistant", final))
    return turns, crops


def ton_trace(target: str, answer: str | None = None, *, drop: bool = False) -> str | None:
    """TON's single-turn target from any ``<think>`` target: the reasoning (think, then any rethink) in one
    ``<think>``, then what the target commits to (its ``<answer>`` block, a tool call or an ``<action>``);
    with `drop`, the thought is TON's empty one. A target without a closed ``<think>`` gives None.

    The commitment is the target's text after its last reasoning block, as written; when nothing follows
    the reasoning, ``<answer>`` of `answer` (None without one).

    >>> grit = grit_trace("Count.", [Evidence("cat", (1, 2, 30, 40))], "One cat.", "1")
    >>> ton_trace(grit, drop=True)
    '<think>\\n\\n</think>\\n<answer>1</answer>'
    >>> ton_trace(grit).startswith('<think>Count. Cat is at {"bbox_2d"') and "One cat.</think>" in ton_trace(grit)
    True
    >>> ton_trace("<answer>3</answer>") is None
    True
    """
    blocks = parse_blocks(target)
    reasoning = [b for b in blocks if b.tag in ("think", "rethink") and b.closed]
    if not any(b.tag == "think" for b in reasoning):
        return None
    rest = target[max(b.end for b in reasoning):].strip()
    if not rest:
        if answer is None:
            return None
        rest = render_block("answer", answer)
    thought = EMPTY_THOUGHT if drop else " ".join(b.text.strip() for b in reasoning if b.text.strip())
    return render_block("think", thought) + "\n" + rest
