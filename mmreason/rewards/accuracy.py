"""Answer accuracy: normalised exact match, multiple-choice letter, numeric tolerance, math-verify, LLM judge.

The predicted answer is ``traces.extract_answer`` of the completion (last ``<answer>`` block, else
``\\boxed{}``, else a ``FINAL_ANSWER:`` line); the ground truth is the ``answer`` column (``solution`` as
TRL/R1-V datasets call it). A row without a ground-truth answer scores None (not applicable).

:func:`is_correct` is the offline rule every method falls back to when no judge is configured:
normalised exact match, then the option letter when the ground truth is a letter, then a number with a
relative tolerance when the ground truth is a number, then ``math-verify`` when it is installed.
"""

from __future__ import annotations

import math
import re
import string
import threading
from typing import Sequence

from mmreason import traces
from mmreason.errors import RecipeError
from mmreason.rewards._common import (
    Metrics, Sample, answer_of, guarded, question_of, reward_function, safe_float, samples,
)
from mmreason.rewards.judge import JudgeItem, as_judge_config, judge, verdict_metrics

MATH_MAX_CHARS = 300  # sympy can take seconds on long inputs; such answers are not math anyway
_PUNCT = re.compile(rf"[{re.escape(string.punctuation)}]")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
# A number as answers write it: sign, thousands commas, decimals, exponent ("1,234.5", "-3e2", ".5").
NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?|[-+]?\.\d+")
_LETTER_HEAD = re.compile(r"^\s*[\(\[]?([A-Za-z])[\)\]]?(?:[.:)\s]|$)")
_LETTER_CUE = re.compile(r"(?:answer|option|choice)\s*(?:is|:)?\s*[\(\[]?([A-J])[\)\]]?(?![A-Za-z])",
                         re.IGNORECASE)


def normalize_answer(text: object) -> str:
    """Lower-case, drop punctuation (a decimal point between digits is kept), articles and extra spaces.

    >>> normalize_answer("The Red car."), normalize_answer(" 3.50 ")
    ('red car', '3.50')
    """
    if not isinstance(text, str):
        return ""
    text = re.sub(r"(?<=\d)\.(?=\d)", "\0", text.lower())
    text = _PUNCT.sub(" ", text).replace("\0", ".")
    return " ".join(_ARTICLES.sub(" ", text).split())


def choice_letter(text: object) -> str | None:
    """The option letter an answer names: 'B', '(B)', 'B. cat', 'The answer is B'.

    >>> choice_letter("(c) a cat"), choice_letter("I think the answer is D."), choice_letter("Blue")
    ('C', 'D', None)
    """
    if not isinstance(text, str):
        return None
    head = _LETTER_HEAD.match(text)
    if head and (len(text.strip()) <= 3 or text.strip()[1:2] in ".:)]" or text.strip()[:1] in "(["):
        return head.group(1).upper()
    cue = _LETTER_CUE.search(text)
    return cue.group(1).upper() if cue else None


def parse_number(text: object) -> float | None:
    """The first number in a text ('1,234.5 m' -> 1234.5); None when there is none or it is not finite."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return safe_float(text)
    if not isinstance(text, str):
        return None
    match = NUMBER.search(text[:10_000])
    return safe_float(match.group(0).replace(",", "")) if match else None


def numbers_close(pred: float | None, gt: float | None, *, rel_tol: float = 1e-6,
                  abs_tol: float = 0.0) -> bool:
    if pred is None or gt is None:
        return False
    return math.isclose(pred, gt, rel_tol=rel_tol, abs_tol=abs_tol)


def math_equal(pred: str, gt: str) -> bool | None:
    """``math_verify.verify(parse(gt), parse(pred))``; None when math-verify is missing or the input too long.

    math-verify's timeouts use ``signal.alarm``, which only works in the main thread; elsewhere they are off.
    """
    if len(pred) > MATH_MAX_CHARS or len(gt) > MATH_MAX_CHARS:
        return None
    try:
        from math_verify import parse, verify
    except ImportError:
        return None
    main = threading.current_thread() is threading.main_thread()
    timeout = 5 if main else None
    try:
        gold = parse(gt, parsing_timeout=timeout)
        answer = parse(pred, parsing_timeout=timeout)
        return bool(gold) and bool(answer) and bool(verify(gold, answer, timeout_seconds=timeout))
    except Exception:  # math-verify and sympy raise a zoo of errors on odd input
        return None


_MATHY = re.compile(r"[\d\\^_{}/=+*()\[\]<>]|\b[a-z]\b|\bpi\b|infty", re.IGNORECASE)


def mathy(text: str) -> bool:
    """Could math-verify find an expression here? (digits, LaTeX, operators, single-letter variables)

    Plain words ("red", "the left one") cannot be equal as math, and sympy costs a millisecond per call.
    """
    return bool(_MATHY.search(text))


def gt_letter(gt: str) -> str | None:
    """The option letter (A-J) a reference answer is, written alone or leading its option; else None.

    >>> gt_letter("(B)"), gt_letter("C. a red cup"), gt_letter("Blue")
    ('B', 'C', None)
    """
    stripped = gt.strip()
    if re.fullmatch(r"[\(\[]?[A-J][\)\]]?", stripped) or re.match(r"^[A-J][.)]\s", stripped):
        return stripped.strip("([")[0]
    return None


def is_correct(pred: object, gt: object, *, rel_tol: float = 1e-6, use_math: bool = True) -> bool:
    """The offline correctness rule (see module docstring).

    >>> is_correct("The cat", "cat"), is_correct("(B)", "B. a dog")
    (True, True)
    >>> is_correct("3.0", "3"), is_correct("1/2", "0.5"), is_correct("4", "3")
    (True, True, False)
    """
    if not isinstance(pred, str) or not isinstance(gt, str):
        return False
    if normalize_answer(pred) == normalize_answer(gt) and normalize_answer(gt):
        return True
    letter = gt_letter(gt)
    if letter is not None:
        return choice_letter(pred) == letter
    gt_num = parse_number(gt)
    if gt_num is not None and NUMBER.fullmatch(gt.strip().replace(" ", "")):
        if numbers_close(parse_number(pred), gt_num, rel_tol=rel_tol):
            return True
        if NUMBER.fullmatch(pred.strip().replace(" ", "")):
            return False  # two plain numbers: the comparison above is the whole story
    return bool(use_math and mathy(gt) and mathy(pred) and math_equal(pred, gt))


def correctness(preds: Sequence[str | None], gts: Sequence[str | None], questions: Sequence[str], *,
                judge_config: object = None, template: str = "equivalence", metrics: Metrics | None = None,
                rule=is_correct, attempts: int = 1) -> list[float | None]:
    """Score many answers at once: a judge when configured (batched, cached), else ``rule``.

    None where the ground truth is missing; 0.0 for a missing prediction or an unusable judgement.
    ``attempts``: how often the judge is asked while its reply is unparseable (the method's own count).
    """
    config = as_judge_config(judge_config)
    out: list[float | None] = [None if gt is None else 0.0 for gt in gts]
    todo = [i for i, (p, g) in enumerate(zip(preds, gts)) if g is not None and p is not None]
    if config is None:
        for i in todo:
            out[i] = 1.0 if guarded(rule, preds[i], gts[i], default=False, metrics=metrics) else 0.0
        return out
    verdicts = judge([JudgeItem(questions[i], preds[i], gts[i]) for i in todo], config, template,
                     attempts=attempts)
    for i, v in zip(todo, verdicts):
        out[i] = v.score if v.score is not None else 0.0
    if metrics is not None and verdicts:
        for name, value in verdict_metrics(verdicts).items():
            metrics.add(name, value)
    return out


def predicted_answer(sample: Sample) -> str | None:
    """``traces.extract_answer`` of a completion, its ``<answer>`` read off the blocks already parsed."""
    answers = [b for b in sample.blocks if b.tag == "answer"]
    return answers[-1].text.strip() if answers else traces.extract_answer(sample.text)


def _score(completions, columns, name, *, judge_config=None, template="equivalence", rule=is_correct):
    metrics = Metrics(name)
    batch = samples(completions, columns)
    rows = [s.row for s in batch]
    preds = [predicted_answer(s) for s in batch]
    gts = [answer_of(r) for r in rows]
    scores = correctness(preds, gts, [question_of(r) for r in rows], judge_config=judge_config,
                         template=template, metrics=metrics, rule=rule)
    metrics.add("answered", sum(p is not None for p in preds) / max(1, len(preds)))
    metrics.emit(columns.get("log_metric"))
    return scores


@reward_function
def exact_match(completions, **columns):
    """1.0 when the normalised answer equals the normalised ground truth.

    >>> exact_match(["<answer>The Eiffel Tower</answer>", "<answer>Louvre</answer>"],
    ...             answer=["eiffel tower"] * 2)
    [1.0, 0.0]
    """
    return _score(completions, columns, "exact_match",
                  rule=lambda p, g: normalize_answer(p) == normalize_answer(g) and bool(normalize_answer(g)))


@reward_function
def choice_accuracy(completions, **columns):
    """1.0 when the answer names the ground truth's option letter ('B', '(B)', 'B. text', 'answer is B').

    >>> choice_accuracy(["<answer>(B) a dog</answer>", "<answer>C</answer>"], answer=["B", "B"])
    [1.0, 0.0]
    """
    return _score(completions, columns, "choice_accuracy",
                  rule=lambda p, g: choice_letter(p) is not None
                  and choice_letter(p) == (gt_letter(g) or g.strip().upper()))


@reward_function
def numeric_accuracy(completions, *, rel_tol: float = 0.01, abs_tol: float = 0.0, **columns):
    """1.0 when the first number of the answer is within ``rel_tol`` (relative) or ``abs_tol`` of the truth.

    >>> numeric_accuracy(["<answer>about 101 m</answer>", "<answer>90</answer>"], answer=["100"] * 2)
    [1.0, 0.0]
    """
    if rel_tol < 0 or abs_tol < 0:
        raise RecipeError("numeric_accuracy: rel_tol and abs_tol must be >= 0")
    return _score(completions, columns, "numeric_accuracy",
                  rule=lambda p, g: numbers_close(parse_number(p), parse_number(g), rel_tol=rel_tol,
                                                  abs_tol=abs_tol))


@reward_function
def math_accuracy(completions, **columns):
    """1.0 when math-verify finds the answer equal to the truth (normalised exact match if it is missing).

    >>> math_accuracy(["\\\\boxed{\\\\frac{1}{2}}", "<answer>0.4</answer>"], answer=["0.5", "1/2"])
    [1.0, 0.0]
    """
    def rule(p, g):
        eq = math_equal(p, g)
        return eq if eq is not None else normalize_answer(p) == normalize_answer(g)
    return _score(completions, columns, "math_accuracy", rule=rule)


@reward_function
def accuracy(completions, *, judge: object = None, template: str = "equivalence", **columns):
    """Answer correctness: the LLM ``judge`` when configured, else the offline rule :func:`is_correct`.

    >>> accuracy(["<answer>B</answer>", "<answer>3.0</answer>", "no answer"], answer=["B. cat", "3", "3"])
    [1.0, 1.0, 0.0]
    """
    _check_template(template)
    return _score(completions, columns, "accuracy", judge_config=judge, template=template)


@reward_function
def llm_judge(completions, *, judge: object, template: str = "equivalence", **columns):
    """Answer correctness graded by an LLM judge (OpenAI-compatible endpoint or local HF model).

    A failed or unparseable judgement scores 0 and is counted in ``llm_judge/judge_failed`` /
    ``llm_judge/judge_unparseable``."""
    _check_template(template)
    if judge is None:
        raise RecipeError("llm_judge: set `judge` (base_url + model, or hf_model); use `accuracy` for a rule")
    return _score(completions, columns, "llm_judge", judge_config=judge, template=template)


def _check_template(template: str) -> None:
    from mmreason.rewards.judge import TEMPLATES

    if template not in TEMPLATES:
        raise RecipeError(f"unknown judge template {template!r}; known: {', '.join(TEMPLATES)}")
