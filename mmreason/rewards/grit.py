"""GRIT (GRPO-GR): the paper's reward and the released code's, selectable with ``variant``.

Paper (arXiv 2505.15879, §3.2): ``r = r_format + r_count + r_ans`` with
``r_format = s_st + s_bf``, ``s_st = 0.5·1[<think>…</think> pair] + 0.5·1[<rethink>…</rethink> pair]``,
``s_bf = 0.5·1[≥1 box before <rethink>]`` (the whole completion when there is no ``<rethink>``);
``r_count = 0.5·1[#boxes == GT count]`` on counting rows only (``task == "counting"`` or a TallyQA
source); ``r_ans = s_GPT + 0.1·BLEU-1`` on the ``<answer>`` content.

Code (``grpo-gr/rewards.py`` + trainer), the sum of six functions, each exposed on its own too:

1. :func:`grit_gpt_score`   judge score of the text between the first ``<answer>`` and the ``</answer>``
   after it, binarised (> 0 -> 1) as the trainer does; 0 without an ``<answer>`` (a stray ``</answer>``
   opens nothing) and for OVDEval rows (source containing "ovd"), which are never sent to the judge; an
   unparseable judge reply is asked again, 3 asks in all (``judge_attempts``), as the code's loop does;
2. :func:`grit_bleu`        0.1·BLEU-1 of everything after the first ``<answer>`` (so a trailing
   ``</answer>`` contributes the token "answer", as in the code), lower-cased, non-alphanumerics -> space;
   0 without an ``<answer>``;
3. :func:`grit_answer_format` 0.5·(1[<answer> present] + 1[exactly once]) / 2;
4. :func:`grit_repetition`  ``0.5·(s_tok − (1 − s_word))`` from immediately repeated 8-grams of words and of
   token ids (ids cut at the pad id 151643); 0.5 when too short to compare;
5. :func:`grit_grounded_format` 0 without ``<rethink>``; else +0.5 for ≥1 box before it, and **+1.0** when the
   batch's FIRST row is a counting row and #boxes == int(answer) (the code looks at row 0 only);
6. :func:`grit_think_rethink_format` +1 per tag of ``<think> </think> <rethink> </rethink>`` found in order
   (each searched after the last occurrence of the previous), +1 when all four are there and the think
   text has ≥2 words, all scaled by 0.5/5.

Differences the variants keep: count bonus 0.5 (paper) vs 1.0 (code); the code's extra answer-format,
repetition and 0.5/5 tag terms; the paper's s_st pairs vs the code's ordered-tag count.
Boxes are GRIT's "four comma-separated integers" (``traces`` fmt "ints") or Qwen ``bbox_2d`` JSON with
integer values, which GRIT's regex also matches. The correctness judge is any :mod:`judge` backend with the
``grit_proofread`` template; ``judge=None`` uses the offline rule (exact match / option / number / math).
"""

from __future__ import annotations

import math
import re
from collections import Counter

from mmreason.errors import RecipeError
from mmreason.rewards._common import (
    Metrics, answer_of, guarded, question_of, reward_function, samples, source_of,
)
from mmreason.rewards.accuracy import correctness, parse_number

VARIANTS = ("paper", "code")
NGRAM = 8
PAD_TOKEN_ID = 151643  # Qwen2.5's <|endoftext|>, GRIT's padding id
JUDGE_ATTEMPTS = 3  # grpo-gr/rewards.py gpt_score_reward: `while tempt < 3` around the call and the parse


def grit_boxes(trace, before: int | None = None) -> int:
    """How many boxes GRIT's integer-box regex would find (before offset ``before`` when given)."""
    n = 0
    for m in trace.boxes:
        if before is not None and m.end > before:
            continue
        if m.fmt == "ints" or (m.fmt == "bbox_2d" and all(float(v).is_integer() and v >= 0 for v in m.box)):
            n += 1
    return n


def _rethink_at(trace) -> int | None:
    blocks = trace.blocks_of("rethink")
    return blocks[0].start if blocks else None


def is_counting(row) -> bool:
    return row.get("task") == "counting" or "tallyqa" in source_of(row).lower()


def bleu1(prediction: str, reference: str) -> float:
    """GRIT's BLEU-1: non-alphanumerics -> space, lower-case, whitespace tokens, then the value of nltk's
    ``sentence_bleu([ref], hyp, weights=(1, 0, 0, 0))``, which is the brevity penalty times the clipped
    unigram precision. Computed here directly because importing nltk costs seconds (a test checks that
    the two agree).

    >>> round(bleu1("a b", "a b c d"), 4)   # e^(1 - 4/2) · 2/2
    0.3679
    """
    hyp = re.sub(r"[^a-zA-Z0-9\s]", " ", prediction).lower().split()
    ref = re.sub(r"[^a-zA-Z0-9\s]", " ", reference).lower().split()
    if not hyp or not ref:
        return 0.0
    ref_counts = Counter(ref)
    clipped = sum(min(n, ref_counts[w]) for w, n in Counter(hyp).items())
    if clipped == 0:
        return 0.0
    brevity = 1.0 if len(hyp) > len(ref) else math.exp(1 - len(ref) / len(hyp))
    return brevity * clipped / len(hyp)


def _after_first_answer(text: str) -> str | None:
    """Everything after the first literal ``<answer>``, None without one. Read off the raw text as the code
    does (``split('<answer>', 1)``): the parser's blocks would also open an answer at a stray ``</answer>``.

    >>> _after_first_answer("</answer> 7") is None, _after_first_answer("a </answer> b <answer>7</answer>")
    (True, '7</answer>')
    """
    return text.split("<answer>", 1)[1] if "<answer>" in text else None


def _code_answer(text: str) -> str | None:
    """What the code's judge reads: from the first ``<answer>`` to the next ``</answer>`` (or the end)."""
    after = _after_first_answer(text)
    return None if after is None else after.split("</answer>")[0].strip()


def repetition_score(text: str, ids) -> float:
    """GRIT's ``repetitive_reward`` for one completion (see module docstring, item 4)."""
    words = text.split()
    if not text or len(words) < NGRAM:
        return 0.5
    total = len(words) - NGRAM
    repeats = sum(words[i:i + NGRAM] == words[i + NGRAM:i + 2 * NGRAM] for i in range(max(0, total)))
    s_word = 1.0 - repeats / total if total > 0 else 1.0
    ids = ids.tolist() if hasattr(ids, "tolist") else ids
    if not isinstance(ids, (list, tuple)):
        s_tok = 1.0  # no token ids given: only the word term can see repetition
    else:
        ids = list(ids)
        if PAD_TOKEN_ID in ids:
            ids = ids[:ids.index(PAD_TOKEN_ID)]
        if len(ids) < 2 * NGRAM:
            return 0.5
        pairs = len(ids) - 2 * NGRAM + 1
        repeats = sum(ids[i:i + NGRAM] == ids[i + NGRAM:i + 2 * NGRAM] for i in range(pairs))
        s_tok = 1.0 - repeats / pairs
    return (s_tok - (1.0 - s_word)) * 0.5


def think_rethink_score(text: str) -> float:
    """GRIT's ``think_and_rethink_format_reward`` for one completion (item 6)."""
    score, rest = 0.0, text
    for key in ("<think>", "</think>", "<rethink>", "</rethink>"):
        if key in rest:
            score += 1.0
            rest = rest[rest.rfind(key) + len(key):]
    if score == 4:
        think = text[text.rfind("<think>") + len("<think>"):]
        think = think.split("</think>")[0].strip()
        if len(think) > 1 and len(re.sub(r"[^a-zA-Z0-9\s]", " ", think).split(" ")) > 1:
            score += 1.0
    return score / 5 * 0.5


def is_ovd(row) -> bool:
    return "ovd" in source_of(row).lower()


def _judge_scores(texts, traces_, rows, judge, template, metrics, *, code: bool, attempts: int):
    if code:  # the code judges the first <answer> content and never asks about OVDEval rows
        preds = [None if is_ovd(row) else _code_answer(text) for text, row in zip(texts, rows)]
    else:
        preds = [trace.answer for trace in traces_]
    gts = [answer_of(r) for r in rows]
    scores = correctness(preds, gts, [question_of(r) for r in rows], judge_config=judge, template=template,
                         metrics=metrics, attempts=attempts)
    return [None if s is None else float(s > 0) for s in scores]  # the trainer binarises: any score > 0 -> 1


def _prepare(completions, columns):
    batch = samples(completions, columns)
    return [s.text for s in batch], [s.trace for s in batch], [s.row for s in batch]


def _code_terms(texts, traces_, rows, judge, template, metrics, only: str | None = None, attempts: int = 3):
    """The six code terms per row; ``only`` computes one of them (the others are left out)."""

    def want(key: str) -> bool:
        return only is None or only == key

    gpt = _judge_scores(texts, traces_, rows, judge, template, metrics, code=True, attempts=attempts) \
        if want("gpt") else []
    counting_batch = bool(rows) and is_counting(rows[0])
    out = []
    for i, (text, trace, row) in enumerate(zip(texts, traces_, rows)):
        after = _after_first_answer(text)
        gt = answer_of(row)
        terms = {}
        if want("gpt"):
            terms["gpt"] = gpt[i] or 0.0
        if want("bleu"):
            usable = after is not None and gt
            terms["bleu"] = 0.1 * guarded(bleu1, after, gt, metrics=metrics) if usable else 0.0
        if want("answer_format"):
            terms["answer_format"] = 0.5 * ((text.count("<answer>") >= 1) + (text.count("<answer>") == 1)) / 2
        if want("repetition"):
            terms["repetition"] = guarded(repetition_score, text, row.get("completion_ids"), default=0.5,
                                          metrics=metrics)
        if want("grounded_format"):
            terms["grounded_format"] = 0.0
            at = text.find("<rethink>")
            if at >= 0:
                n = grit_boxes(trace, before=at)
                count = parse_number(gt)
                bonus = 1.0 if counting_batch and count is not None and n == count else 0.0
                terms["grounded_format"] = 0.5 * (n > 0) + bonus
        if want("think_rethink"):
            terms["think_rethink"] = think_rethink_score(text)
        out.append(terms)
    return out


def _paper_terms(texts, traces_, rows, judge, template, metrics, attempts):
    gpt = _judge_scores(texts, traces_, rows, judge, template, metrics, code=False, attempts=attempts)
    out = []
    for i, (trace, row) in enumerate(zip(traces_, rows)):
        counts = {}
        for t in trace.tags():
            counts[t] = counts.get(t, 0) + 1
        pair = {tag: counts.get(f"<{tag}>") == 1 and counts.get(f"</{tag}>") == 1
                and any(b.closed for b in trace.blocks_of(tag)) for tag in ("think", "rethink")}
        n = grit_boxes(trace, before=_rethink_at(trace))
        gt = answer_of(row)
        count = parse_number(gt)
        answer = trace.answer
        out.append({
            "s_st": 0.5 * pair["think"] + 0.5 * pair["rethink"],
            "s_bf": 0.5 * (n >= 1),
            "count": 0.5 * (n == count) if is_counting(row) and count is not None else 0.0,
            "gpt": gpt[i] or 0.0,
            "bleu": 0.1 * guarded(bleu1, answer, gt, metrics=metrics) if answer is not None and gt else 0.0,
        })
    return out


def _grit_terms(completions, columns, variant, judge, template, metrics, only=None, attempts=JUDGE_ATTEMPTS):
    if variant not in VARIANTS:
        raise RecipeError(f"grit: variant must be one of {VARIANTS}, got {variant!r}")
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise RecipeError(f"grit: judge_attempts must be an integer >= 1, got {attempts!r}")
    texts, traces_, rows = _prepare(completions, columns)
    if variant == "code":
        return _code_terms(texts, traces_, rows, judge, template, metrics, only, attempts)
    return _paper_terms(texts, traces_, rows, judge, template, metrics, attempts)


@reward_function
def grit(completions, *, variant: str = "code", judge: object = None, template: str = "grit_proofread",
         judge_attempts: int = JUDGE_ATTEMPTS, **columns):
    """GRIT's total reward, as the paper (``variant="paper"``) or the released code (``"code"``) sums it.

    Terms in the module docstring; each is logged as ``grit/<term>``. ``judge_attempts``: asks per item
    while the judge's reply is unparseable (the code's 3). No answer-length guard: GRIT has none.

    >>> c = ("<think>two cups 10, 20, 30, 40 and 50, 60, 70, 80</think><rethink>so 2</rethink>"
    ...      "<answer>2</answer>")
    >>> grit([c], variant="paper", answer=["2"], task=["counting"])  # 1 + 0.5 + 0.5 + 1 + 0.1
    [3.1]
    """
    metrics = Metrics("grit")
    terms = _grit_terms(completions, columns, variant, judge, template, metrics, attempts=judge_attempts)
    out = []
    for t in terms:
        for k, v in t.items():
            metrics.add(k, v)
        out.append(sum(t.values()))
    metrics.emit(columns.get("log_metric"))
    return out


def _one_term(name, key, completions, columns, judge=None, template="grit_proofread", attempts=JUDGE_ATTEMPTS):
    metrics = Metrics(name)
    terms = _grit_terms(completions, columns, "code", judge, template, metrics, only=key, attempts=attempts)
    out = [t[key] for t in terms]
    metrics.emit(columns.get("log_metric"))
    return out


@reward_function
def grit_gpt_score(completions, *, judge: object = None, template: str = "grit_proofread",
                   judge_attempts: int = JUDGE_ATTEMPTS, **columns):
    """GRIT code term 1: binarised judge score of the first ``<answer>`` (0, unasked, for OVDEval rows)."""
    return _one_term("grit_gpt_score", "gpt", completions, columns, judge, template, judge_attempts)


@reward_function
def grit_bleu(completions, **columns):
    """GRIT code term 2: 0.1·BLEU-1 of everything after the first ``<answer>``.

    >>> grit_bleu(["<answer> 7 </answer>"], answer=["7"])
    [0.05]
    """
    return _one_term("grit_bleu", "bleu", completions, columns)


@reward_function
def grit_answer_format(completions, **columns):
    """GRIT code term 3: 0.5·(1[<answer> present] + 1[exactly once]) / 2.

    >>> grit_answer_format(["<answer>1", "<answer>1<answer>2", "1"])
    [0.5, 0.25, 0.0]
    """
    return _one_term("grit_answer_format", "answer_format", completions, columns)


@reward_function
def grit_repetition(completions, **columns):
    """GRIT code term 4: ``0.5·(s_tok − (1 − s_word))`` over immediately repeated 8-grams."""
    return _one_term("grit_repetition", "repetition", completions, columns)


@reward_function
def grit_grounded_format(completions, **columns):
    """GRIT code term 5: +0.5 for a box before ``<rethink>``, +1.0 count bonus on counting batches."""
    return _one_term("grit_grounded_format", "grounded_format", completions, columns)


@reward_function
def grit_think_rethink_format(completions, **columns):
    """GRIT code term 6: ordered ``<think></think><rethink></rethink>`` tags (+ a ≥2-word think) × 0.5/5.

    >>> grit_think_rethink_format(["<think>a b</think><rethink>c</rethink>", "<think>a</think>"])
    [0.5, 0.2]
    """
    return _one_term("grit_think_rethink_format", "think_rethink", completions, columns)
