"""Tag-format rewards: is the completion laid out as the method's prompt asks?

All read the structure from the blocks (offsets and a ``closed`` flag) of the trace the caller parsed,
else from ``traces.parse_blocks`` (the same blocks, without the cost of reading boxes, calls and
actions). "Ordered tags, full match" means: the completion is exactly the listed blocks in that order,
each closed, with only whitespace between and around them, which is what R1-V/TON's
``re.fullmatch(r"<think>.*?</think>\\s*<answer>.*?</answer>", text, re.DOTALL)`` checks, minus its one
loophole (the lazy ``.*?`` lets extra tags hide inside a block; here a stray tag fails the format).
"""

from __future__ import annotations

from typing import Sequence

from mmreason.errors import RecipeError
from mmreason.rewards._common import Metrics, reward_function, score_rows
from mmreason.traces import BLOCK_TAGS, Block, parse_blocks, tag_counts

_BLOCK_TAG_KEYS = tuple(f"<{s}{t}>" for t in BLOCK_TAGS for s in ("", "/"))


def tags_full_match(text: str, tags: Sequence[str], *, allow_open_last: bool = False,
                    blocks: Sequence[Block] | None = None) -> bool:
    """True when ``text`` is exactly the blocks ``tags`` in order (whitespace between), all closed
    (the last may be open when ``allow_open_last``: ``</answer>`` is a stop string in GRIT's recipe).
    ``blocks`` are the text's blocks when already parsed (scanned here otherwise).

    >>> tags_full_match("<think>a</think>\\n<answer>b</answer>", ("think", "answer"))
    True
    >>> tags_full_match("<think>a</think> so <answer>b</answer>", ("think", "answer"))
    False
    """
    blocks = parse_blocks(text) if blocks is None else blocks
    top = _top_level(blocks)
    if [b.tag for b in top] != list(tags):
        return False
    for i, block in enumerate(top):
        if not block.closed and not (allow_open_last and i == len(top) - 1):
            return False
    # Every tag in the text must belong to these blocks: no stray closers, no tags hidden inside content.
    counts = tag_counts(text)
    if sum(counts[k] for k in _BLOCK_TAG_KEYS) != sum(2 if b.closed else 1 for b in blocks):
        return False
    cursor = 0
    for block in top:
        if text[cursor:block.start].strip():
            return False
        cursor = block.end
    return not text[cursor:].strip()


def _top_level(blocks) -> list:
    """The blocks no other block contains (one that starts earlier and ends no later). Blocks come sorted
    by start, so one pass keeps the furthest end among those that start earlier (linear, not quadratic)."""
    top, reach, i = [], -1, 0
    while i < len(blocks):
        j = i
        while j < len(blocks) and blocks[j].start == blocks[i].start:  # equal starts never contain
            j += 1
        top += [b for b in blocks[i:j] if b.end > reach]
        reach = max(reach, max(b.end for b in blocks[i:j]))
        i = j
    return top


def tags_in_order(text: str, tags: Sequence[str], *, blocks: Sequence[Block] | None = None) -> bool:
    """True when each tag in ``tags`` opens and closes exactly once, in that order (text may surround);
    ``blocks`` as in `tags_full_match`."""
    counts = tag_counts(text)
    for tag in tags:
        if counts.get(f"<{tag}>") != 1 or counts.get(f"</{tag}>") != 1:
            return False
    found = [b for b in (parse_blocks(text) if blocks is None else blocks) if b.tag in tags]
    return [b.tag for b in found] == list(tags) and all(b.closed for b in found)


def _check_tags(name: str, tags: Sequence[str]) -> tuple[str, ...]:
    if isinstance(tags, str) or not tags or any(t not in BLOCK_TAGS for t in tags):
        raise RecipeError(f"{name}: tags must be a non-empty list drawn from {BLOCK_TAGS}, got {tags!r}")
    return tuple(tags)


def _format(completions, columns, name, check) -> list[float]:
    """1.0 where ``check(text, blocks)`` holds, else 0.0."""
    metrics = Metrics(name)
    out = score_rows(completions, columns, lambda s, _: 1.0 if check(s.text, s.blocks) else 0.0, metrics)
    metrics.add("rate", sum(out) / max(1, len(out)))
    metrics.emit(columns.get("log_metric"))
    return out


@reward_function
def think_answer_format(completions, **columns):
    """1.0 for exactly ``<think>…</think>`` then ``<answer>…</answer>`` and nothing else (R1-V / TON format).

    >>> think_answer_format(["<think>x</think><answer>1</answer>", "<answer>1</answer>"])
    [1.0, 0.0]
    """
    return _format(completions, columns, "think_answer_format",
                   lambda t, b: tags_full_match(t, ("think", "answer"), blocks=b))


@reward_function
def think_rethink_answer_format(completions, *, allow_open_answer: bool = True, **columns):
    """1.0 for exactly ``<think>…</think><rethink>…</rethink><answer>…`` (GRIT's layout).

    The closing ``</answer>`` is optional by default because GRIT stops generation on it.

    >>> think_rethink_answer_format(["<think>a</think><rethink>b</rethink><answer>c",
    ...                              "<think>a</think><answer>c"])
    [1.0, 0.0]
    """
    return _format(completions, columns, "think_rethink_answer_format",
                   lambda t, b: tags_full_match(t, ("think", "rethink", "answer"),
                                                allow_open_last=allow_open_answer, blocks=b))


@reward_function
def tag_format(completions, *, tags: Sequence[str] = ("think", "answer"), full_match: bool = True,
               allow_open_last: bool = False, **columns):
    """1.0 when the completion holds the ``tags`` blocks in order (generic ordered-tag format).

    With ``full_match`` the completion must be exactly those blocks (whitespace between); otherwise each
    tag must open and close once, in order, anywhere in the text.

    >>> tag_format(["<think>a</think><tool_call>{}</tool_call>"], tags=["think", "tool_call"])
    [1.0]
    >>> tag_format(["Sure. <think>a</think><answer>b</answer>"], full_match=False)
    [1.0]
    """
    tags = _check_tags("tag_format", tags)
    if full_match:
        return _format(completions, columns, "tag_format",
                       lambda t, b: tags_full_match(t, tags, allow_open_last=allow_open_last, blocks=b))
    return _format(completions, columns, "tag_format", lambda t, b: tags_in_order(t, tags, blocks=b))
