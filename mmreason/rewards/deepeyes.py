"""DeepEyes: ``0.8·acc + 0.2·fmt + 1.2·tool`` with per-``data_source`` routing, as the released code scores.

Branches (routed on the ``data_source`` column, else ``source``; ``routes`` overrides or extends):

- ``main`` (vstar, vl_agent, chart): ``fmt = -1`` if ``#<think> != #</think>``, or
  ``#<|vision_start|><|image_pad|> != #<|image_pad|><|vision_end|>``, or ``#<answer> != #</answer>`` after
  the last ``</think>``; the judged text is the content of the last ``<answer>`` (the whole completion
  when there is none, as in the code); an answer of >= ``max_answer_chars`` (1,000) characters forces
  ``acc = 0`` and ``fmt = -1``; ``tool = 1[acc > 0.5 and >= 1 image returned by a tool]``. Range -0.2 … 2.0.
- ``common`` (geoguessr): same weights and format rule, but the answer must be a closed
  ``<answer>…</answer>`` after the last ``</think>`` (otherwise acc 0, fmt -1); judged for equivalence.
- ``math`` (thinklite_eureka, xince): ``1.2·acc + 0.4·fmt``; the answer is the last ``\\boxed{}`` after
  the last ``</think>``; no ``\\boxed{}`` -> acc 0, fmt -1; more than one -> fmt -1; acc by math-verify,
  then the judge; no tool bonus.

Judge asks per item while the reply is unparseable (``judge_attempts``, None = the branch's own): 8 on
``common`` (the geoguessr branch's retry loop), 1 elsewhere (the code scores such a reply 0).
A row whose source has no route scores ``default_branch`` (None = not applicable). ``judge=None`` grades
with the offline rule (exact match / option letter / number / math-verify). Tool evidence: returned images
counted in the decoded text or as image parts of tool turns in a message list (``tool_evidence="images"``,
the code's rule), or valid ``<tool_call>``s (``"calls"``, for rollouts whose images are not in the text).
Deviation: ``\\boxed{}`` content is read with nested braces (the code's regex stops at the first ``}``).

``variant="verl"`` scores as the DeepEyes recipe of github.com/volcengine/verl (recipe/deepeyes/deepeyes.py)
instead, on every row whatever its source: ``0.8·acc + 0.2·fmt + 1.2·tool``; the answer is the FIRST closed
``<answer>…</answer>`` after the last ``</think>``; without one, fmt = -1 and the recipe's fallback text is
judged (after the last ``</tool_response>`` + ``assistant`` line, else the text after ``</think>`` less tool
blocks and role words, else the whole completion); fmt = -1 also for ``#<think> != #</think>`` or
``#<answer> != #</answer>`` after the last ``</think>`` (no vision-token check); an answer of >= 1,000
characters forces acc 0 and fmt -1; ``tool = 1[acc > 0.5 and a <tool_call>…</tool_call> or
<tool_response>…</tool_response> in the text]``; the judge template is ``deepeyes_verl`` (CORRECT/INCORRECT).
Deviation: where the judge request fails, the recipe returns 0 for the whole row; here acc is 0 and fmt
still counts.
"""

from __future__ import annotations

import re

from mmreason import traces
from mmreason.errors import RecipeError
from mmreason.rewards._common import (
    VISION_PAIR, Metrics, Sample, answer_of, question_of, returned_images, reward_function, samples,
    source_of,
)
from mmreason.rewards.accuracy import correctness, is_correct, math_equal, normalize_answer

ROUTES = {"vstar": "main", "vl_agent": "main", "chart": "main", "geoguessr": "common",
          "thinklite_eureka": "math", "xince": "math"}
BRANCHES = ("main", "common", "math")
TEMPLATES = {"main": "deepeyes", "common": "equivalence", "math": "equivalence", "verl": "deepeyes_verl"}
ATTEMPTS = {"main": 1, "common": 8, "math": 1, "verl": 1}  # asks while the judge's reply is unparseable
VARIANTS = ("code", "verl")
_VERL_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_VERL_AFTER_TOOL = re.compile(r"</tool_response>\s*assistant\s*\n(.*?)$", re.DOTALL | re.MULTILINE)
_VERL_TOOL = re.compile(r"<tool_call>.*?</tool_call>|<tool_response>.*?</tool_response>", re.DOTALL)


def _after_think(text: str) -> str:
    return text[text.rfind("</think>") + len("</think>"):].strip() if "</think>" in text else text.strip()


def _format_error(text: str) -> bool:
    tail = _after_think(text)
    return (text.count("<think>") != text.count("</think>")
            or text.count(VISION_PAIR) != text.count("<|image_pad|><|vision_end|>")
            or tail.count("<answer>") != tail.count("</answer>"))


def _prepare(branch: str, sample: Sample, max_chars: int) -> tuple[str | None, bool, bool]:
    """(answer to grade or None, format error, acc forced to 0)."""
    text = sample.text
    if branch == "math":
        tail = _after_think(text)
        n_boxed = tail.count("\\boxed{")
        answer = traces.extract_boxed(tail)
        error = text.count("<think>") != text.count("</think>") or n_boxed > 1
        if n_boxed == 0 or answer is None:
            return None, True, True
        return answer, error, False
    error = _format_error(text)
    if branch == "main":
        trace = sample.trace
        answer = trace.answer if trace.blocks_of("answer") else text.strip()
    else:  # the blocks of the text after the reasoning, on their own
        closed = [b for b in traces.parse_blocks(_after_think(text)) if b.tag == "answer" and b.closed]
        answer = closed[0].text.strip() if closed else None
        if not answer:
            return None, True, True
    if len(answer) >= max_chars:  # anti judge-hacking: long answers are wrong and malformed
        return None, True, True
    return answer, error, False


def _prepare_verl(text: str, max_chars: int) -> tuple[str | None, bool, bool]:
    """The verl recipe's answer and format error (module docstring).

    >>> _prepare_verl("<think>a</think><answer>red</answer><answer>blue</answer>", 1000)
    ('red', False, False)
    >>> _prepare_verl("<think>a</think>red", 1000)
    ('red', True, False)
    """
    tail = _after_think(text)
    error = text.count("<think>") != text.count("</think>") or tail.count("<answer>") != tail.count("</answer>")
    found = _VERL_ANSWER.search(tail)
    if found:
        answer = found.group(1).strip()
    else:
        error = True
        after_tool = _VERL_AFTER_TOOL.search(tail)
        if after_tool:
            answer = after_tool.group(1).strip()
        elif "</think>" in text:
            answer = re.sub(r"\b(user|assistant)\b", "", _VERL_TOOL.sub("", tail)).strip()
        else:
            answer = text.strip()
    if not answer:
        error, answer = True, text.strip()
    if len(answer) >= max_chars:
        return None, True, True
    return answer, error, False


def _math_rule(pred: str, gt: str) -> bool:
    eq = math_equal(pred, gt)
    return eq if eq is not None else normalize_answer(pred) == normalize_answer(gt)


@reward_function
def deepeyes(completions, *, judge: object = None, routes: dict | None = None,
             default_branch: str | None = None, max_answer_chars: int = 1000, tool_evidence: str = "images",
             variant: str = "code", judge_attempts: int | None = None, **columns):
    """DeepEyes: ``0.8·acc + 0.2·fmt + 1.2·tool`` routed by ``data_source`` (math: ``1.2·acc + 0.4·fmt``).

    Rules in the module docstring; logs ``deepeyes/{acc,fmt,tool}`` and the branch shares.

    >>> img = "<|vision_start|><|image_pad|><|vision_end|>"
    >>> c = f"<think>zoom</think><tool_call>{{}}</tool_call>{img}<think>red</think><answer>red</answer>"
    >>> deepeyes([c, "<answer>blue</answer>", "<think>x<answer>red</answer>"], answer=["red"] * 3,
    ...          data_source=["vstar"] * 3)
    [2.0, 0.0, 0.6000000000000001]
    """
    table = {**ROUTES, **(routes or {})}
    bad = {b for b in list(table.values()) + [default_branch] if b is not None} - set(BRANCHES)
    if bad:
        raise RecipeError(f"deepeyes: unknown branch(es) {sorted(bad)}; known: {BRANCHES}")
    if tool_evidence not in ("images", "calls"):
        raise RecipeError(f"deepeyes: tool_evidence must be 'images' or 'calls', got {tool_evidence!r}")
    if max_answer_chars < 1:
        raise RecipeError("deepeyes: max_answer_chars must be >= 1")
    if variant not in VARIANTS:
        raise RecipeError(f"deepeyes: variant must be one of {VARIANTS}, got {variant!r}")
    if judge_attempts is not None and (isinstance(judge_attempts, bool) or not isinstance(judge_attempts, int)
                                       or judge_attempts < 1):
        raise RecipeError(f"deepeyes: judge_attempts must be an integer >= 1 or None, got {judge_attempts!r}")
    metrics = Metrics("deepeyes")
    batch = samples(completions, columns)
    rows = [s.row for s in batch]
    if variant == "verl":
        branches = ["verl"] * len(rows)
        prepared = [_prepare_verl(s.text, max_answer_chars) for s in batch]
    else:
        branches = [table.get(source_of(r), default_branch) for r in rows]
        prepared = [_prepare(b, s, max_answer_chars) if b else (None, False, True)
                    for b, s in zip(branches, batch)]
    gts = [answer_of(r) for r in rows]
    questions = [question_of(r) for r in rows]

    acc = [0.0] * len(rows)
    for branch in (*BRANCHES, "verl"):
        idx = [i for i, b in enumerate(branches) if b == branch and not prepared[i][2] and gts[i] is not None]
        if not idx:
            continue
        preds = [prepared[i][0] for i in idx]
        attempts = judge_attempts or ATTEMPTS[branch]
        if branch == "math":
            # math-verify first; only its misses go to the judge (or fail, without one)
            first = correctness(preds, [gts[i] for i in idx], [questions[i] for i in idx], rule=_math_rule,
                                metrics=metrics)
            miss = [k for k, s in enumerate(first) if not s]
            if judge is not None and miss:
                second = correctness([preds[k] for k in miss], [gts[idx[k]] for k in miss],
                                     [questions[idx[k]] for k in miss], judge_config=judge,
                                     template=TEMPLATES[branch], metrics=metrics, attempts=attempts)
                for k, s in zip(miss, second):
                    first[k] = s
            scores = first
        else:
            scores = correctness(preds, [gts[i] for i in idx], [questions[i] for i in idx],
                                 judge_config=judge, template=TEMPLATES[branch], metrics=metrics,
                                 rule=is_correct, attempts=attempts)
        for i, s in zip(idx, scores):
            acc[i] = s or 0.0

    out: list[float | None] = []
    for i, (branch, sample) in enumerate(zip(branches, batch)):
        if branch is None or gts[i] is None:
            out.append(None)
            continue
        fmt = -1.0 if prepared[i][1] else 0.0
        metrics.add(f"branch_{branch}", 1.0)
        metrics.add("acc", acc[i])
        metrics.add("fmt", fmt)
        if branch == "math":
            out.append(1.2 * acc[i] + 0.4 * fmt)
            continue
        if branch == "verl":
            evidence = int(bool(_VERL_TOOL.search(sample.text)))
        elif tool_evidence == "images":
            evidence = returned_images(sample.completion)
        else:
            evidence = sum(call.error is None for call in sample.trace.tool_calls)
        tool = 1.0 if evidence > 0 and acc[i] > 0.5 else 0.0
        metrics.add("tool", tool)
        metrics.add("tool_used", float(evidence > 0))
        out.append(0.8 * acc[i] + 0.2 * fmt + 1.2 * tool)
    metrics.emit(columns.get("log_metric"))
    return out
