"""MathVista answer matching: a reply read into the benchmark's answer form and compared as its evaluator does.

MathVista (arXiv 2310.02255) scores in two steps. An extraction step pulls the answer out of the reply (the
release asks GPT-4 for it; here it is rule-based and offline: the ``<answer>`` block, else the last
``\\boxed{...}``, else the whole reply). A normalisation step then puts the extraction in the answer's
form, and the result must equal the ground truth string exactly (the release's
``evaluation/calculate_score.py``, github.com/lupantech/MathVista):

- ``multi_choice``: a letter in parentheses ("(B) ...") is taken as the letter; a letter among the options
  names that option; anything else becomes the option nearest by edit distance (so every reply picks
  some option, and the format rate tells a guess from an answer);
- ``integer``: ``str(int(float(x)))`` (3.7 reads as "3", as the release truncates);
- ``float``: ``str(round(float(x), precision))`` with the row's ``precision`` decimals;
- ``list``: the text as is.

Where the extraction is not a number but the answer must be one, the last number in it is used (what the
GPT extraction does for "x = 12 cm"); with none the sample is wrong.

>>> normalize_extraction("(B) 60", ["30", "60"], "multi_choice", "text", None)
'60'
>>> normalize_extraction("2.345", None, "free_form", "float", 2)
'2.35'
>>> normalize_extraction("3.7", None, "free_form", "integer", None)
'3'
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

from mmreason import traces
from mmreason.rewards._common import Metrics, reward_function, score_rows

_BOXED = re.compile(r"\\boxed\{((?:[^{}]|\{[^{}]*\})*)\}")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_LETTER_IN_PARENS = re.compile(r"\(([a-zA-Z])\)")


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance: insertions, deletions and substitutions, each costing 1.

    >>> edit_distance("kitten", "sitting"), edit_distance("", "ab")
    (3, 2)
    """
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def extract_reply(text: str) -> str:
    """The answer part of a reply: the ``<answer>`` block, else the last ``\\boxed{}``, else the reply; a
    ``\\boxed{}`` inside the answer block is unwrapped.

    >>> extract_reply("<think>so</think><answer>\\\\boxed{12}</answer>"), extract_reply("thus 7")
    ('12', 'thus 7')
    """
    answer = traces.extract_answer(text)
    body = answer if answer is not None else text
    boxed = _BOXED.findall(body)
    return (boxed[-1] if boxed else body).strip()


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        found = _NUMBER.findall(text.replace(",", ""))
        return float(found[-1]) if found else None


def normalize_extraction(extraction: str, choices: Sequence[str] | None, question_type: str,
                         answer_type: str, precision: Any) -> str | None:
    """The extraction in the answer's form (module docstring); None when it cannot take that form."""
    extraction = extraction.strip()
    if question_type == "multi_choice" and choices:
        letter = _LETTER_IN_PARENS.findall(extraction)
        if letter:
            extraction = letter[0].upper()
        letters = [chr(ord("A") + i) for i in range(len(choices))]
        if extraction in letters:
            return str(choices[letters.index(extraction)])
        distances = [edit_distance(extraction, str(c)) for c in choices]
        return str(choices[distances.index(min(distances))])
    if answer_type in ("integer", "float"):
        value = _number(extraction)
        if value is None:
            return None
        if answer_type == "integer":
            return str(int(value))
        return str(round(value, int(precision or 0)))
    return extraction


@reward_function
def mathvista_match(completions, **columns):
    """1.0 when the reply, extracted and normalised as MathVista's evaluator does (module docstring), equals
    the GT ``answer``; None for rows without MathVista's ``meta`` (question_type, answer_type).

    >>> meta = {"question_type": "free_form", "answer_type": "float", "precision": 1, "choices": None}
    >>> mathvista_match(["<answer>1.25</answer>", "<answer>about 1.3 m</answer>", "none"],
    ...                 answer=["1.2"] * 3, meta=[meta] * 3)
    [1.0, 0.0, 0.0]
    """
    metrics = Metrics("mathvista_match")

    def one(sample, metrics):
        meta = sample.row.get("meta")
        if not isinstance(meta, Mapping) or "question_type" not in meta or "answer_type" not in meta:
            return None
        predicted = normalize_extraction(extract_reply(sample.text), meta.get("choices"), meta["question_type"],
                                         meta["answer_type"], meta.get("precision"))
        return float(predicted is not None and predicted == str(sample.row.get("answer")))

    return score_rows(completions, columns, one, metrics)


__all__ = ["mathvista_match", "normalize_extraction", "extract_reply", "edit_distance"]
