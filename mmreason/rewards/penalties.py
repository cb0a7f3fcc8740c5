"""Hygiene penalties: n-gram repetition and over-long completions (both <= 0, so they only push down)."""

from __future__ import annotations

from mmreason.errors import RecipeError
from mmreason.rewards._common import Metrics, completion_text, reward_function, rows_of


def repetition_ratio(words: list[str], n: int) -> float:
    """Share of word n-grams that repeat an earlier one: ``1 - distinct / total`` (0 when too short).

    >>> repetition_ratio("a b a b a b".split(), 2)
    0.6
    """
    total = len(words) - n + 1
    if total <= 0:
        return 0.0
    return 1.0 - len({tuple(words[i:i + n]) for i in range(total)}) / total


@reward_function
def repetition_penalty(completions, *, ngram: int = 3, max_penalty: float = -1.0, **columns):
    """N-gram repetition penalty: ``max_penalty * (1 - distinct n-grams / n-grams)`` over lower-cased words.

    0 for text with no repeated n-gram, approaching ``max_penalty`` for a loop.

    >>> repetition_penalty(["one two three four", "go go go go go"], ngram=2)
    [0.0, -0.75]
    """
    if ngram < 1 or max_penalty > 0:
        raise RecipeError("repetition_penalty: ngram must be >= 1 and max_penalty <= 0")
    metrics = Metrics("repetition_penalty")
    out = []
    for c in completions:
        ratio = repetition_ratio(completion_text(c).lower().split(), ngram)
        metrics.add("ratio", ratio)
        out.append(max_penalty * ratio if ratio else 0.0)
    metrics.emit(columns.get("log_metric"))
    return out


@reward_function
def length_penalty(completions, *, max_length: int, cache_length: int = 0, unit: str = "tokens", **columns):
    """DAPO's soft over-long penalty: 0 up to ``max_length - cache_length``, linear to -1 at ``max_length``.

    Beyond ``max_length`` the penalty is -1.

    ``unit="tokens"`` counts ``completion_ids`` (None for a row without them); ``"chars"`` counts characters.

    >>> length_penalty(["x" * 5, "x" * 9, "x" * 20], max_length=10, cache_length=4, unit="chars")
    [0.0, -0.75, -1.0]
    """
    if unit not in ("tokens", "chars"):
        raise RecipeError(f"length_penalty: unit must be 'tokens' or 'chars', got {unit!r}")
    if max_length <= 0 or not 0 <= cache_length <= max_length:
        raise RecipeError("length_penalty: need max_length > 0 and 0 <= cache_length <= max_length")
    rows = rows_of(len(completions), columns)
    metrics = Metrics("length_penalty")
    out: list[float | None] = []
    for c, row in zip(completions, rows):
        if unit == "chars":
            length = len(completion_text(c))
        else:
            ids = row.get("completion_ids")
            try:
                length = len(ids) if ids is not None else None
            except TypeError:
                length = None
        if length is None:
            out.append(None)
            continue
        metrics.add("length", length)
        soft = max_length - cache_length
        if length <= soft:
            out.append(0.0)
        elif length <= max_length:
            out.append((soft - length) / cache_length)
        else:
            out.append(-1.0)
    metrics.emit(columns.get("log_metric"))
    return out
