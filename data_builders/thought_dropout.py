"""TON's thought dropout (arXiv 2505.16854, §3.1): SFT data where a set share of traces skip their thought.

Each row's single assistant target becomes TON's layout (`gcot.ton_trace`: the reasoning in one ``<think>``,
then the answer, tool call or ``<action>`` it commits to), and exactly ``round(p * n)`` of the ``n`` rows
have the empty thought ``<think>\\n\\n</think>`` instead. TON's release flips a coin per row with
probability 0.5 (src/eval/aitz_evaluate/sft_grpo_data.py in github.com/kokolerk/TON); here the dropped rows
are the first ``round(p * n)`` of a permutation seeded by ``seed``, so the share is exact, the same in every
shard of a build and the same on every rebuild with that seed.

Rows come from ``src`` (a canonical dataset, e.g. a converted R1-V/AITZ set or any builder's output with
``<think>`` targets; media linked, not copied) or, without ``src``, from procedural image scenes
(`image_scenes` with ``scenes`` as its options, GRIT's grounded thinking as the trace). A row whose target
has no ``<think>`` block, or with more than one assistant turn, is skipped and counted in the card
(``skipped_no_thought``, ``skipped_not_single_turn``). ``meta["thought_dropped"]`` says which rows lost
their thought; the card counts ``dropped`` and ``kept_thought``.

>>> dropped_indices(10, 0.3, seed=0) == dropped_indices(10, 0.3, seed=0), len(dropped_indices(10, 0.3, seed=0))
(True, 3)
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from mmreason import schema
from mmreason.data_builders import image_scenes
from mmreason.data_builders.common import DEFAULT_CHUNK_SIZE, SampleContext, build_dataset, check_options, \
    merge_options, source_rows
from mmreason.data_builders.converters_base import Skip
from mmreason.data_builders.converters_base import media as link_media
from mmreason.data_builders.gcot import text_turn, ton_trace

NAME = "thought_dropout"
DEFAULTS = {"src": None, "p": 0.5, "scenes": {}, "media": "link", "on_missing": "error"}
_PERMUTATION_STREAM = 0x7401  # a stream of its own: the drop set never shares draws with the samples


@lru_cache(maxsize=8)
def dropped_indices(n: int, p: float, seed: int) -> frozenset[int]:
    """The row indices (of ``range(n)``) whose thought is dropped: exactly ``round(p * n)``, seeded."""
    order = np.random.default_rng([int(seed), _PERMUTATION_STREAM]).permutation(int(n))
    return frozenset(int(i) for i in order[:int(round(float(p) * n))])


def _from_source(ctx: SampleContext) -> dict:
    """Row `ctx.index` of ``src`` with its media linked into this dataset."""
    src = ctx.options["src"]
    root = schema.dataset_root(src)
    row = dict(source_rows(src)[ctx.index])
    where = f"{src} row {ctx.index}"
    row["messages"] = [{**m, "content": [{**p, p["type"]: link_media(ctx, root / p[p["type"]], where)}
                                         if p["type"] in schema.MEDIA_TYPES else p for p in m["content"]]}
                       for m in row["messages"]]
    return row


def _from_scenes(ctx: SampleContext) -> dict:
    opts = image_scenes.resolve_options({**ctx.options["scenes"], "trace": "grit"})
    return image_scenes.make_sample(replace(ctx, options=opts))


def make_sample(ctx: SampleContext) -> dict | None:
    opts = ctx.options
    try:
        row = _from_source(ctx) if opts["src"] else _from_scenes(ctx)
    except Skip as skip:
        ctx.count(skip.reason)
        return None
    turns = [i for i, m in enumerate(row["messages"]) if m["role"] == "assistant"]
    if len(turns) != 1:
        ctx.count("skipped_not_single_turn")
        return None
    drop = ctx.index in dropped_indices(opts["n"], opts["p"], ctx.seed)
    target = schema.text_of(row["messages"][turns[0]])
    answer = row.get("answer")
    text = ton_trace(target, None if answer is None else str(answer), drop=drop)
    if text is None:
        ctx.count("skipped_no_thought")
        return None
    ctx.count("dropped" if drop else "kept_thought")
    messages = list(row["messages"])
    messages[turns[0]] = text_turn("assistant", text)
    # the source's other method traces point at media this dataset does not carry
    meta = {k: v for k, v in (row.get("meta") or {}).items() if k not in ("traces", "zooms")}
    meta.update(trace="ton", thought_dropped=drop, source_id=row["id"])
    out = {k: v for k, v in row.items() if k in schema.FIELDS}
    return {**out, "id": ctx.id, "messages": messages, "meta": meta}


def build(out_dir: str | Path, *, n: int = 0, seed: int = 0, shard: tuple[int, int] = (0, 1), workers: int = 1,
          chunk_size: int = DEFAULT_CHUNK_SIZE, progress: bool = True, **options) -> Path:
    """TON's thought-dropout SFT data: ``src`` (or procedural scenes) with round(p*n) empty thoughts."""
    opts = merge_options(NAME, DEFAULTS, options)
    try:
        p = float(opts["p"])
    except (TypeError, ValueError):
        p = -1.0
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{NAME}: p is the share of rows whose thought is dropped, in [0, 1]; got {opts['p']!r}")
    if not isinstance(opts["scenes"], dict):
        raise ValueError(f"{NAME}: scenes holds image_scenes options as a mapping, got {opts['scenes']!r}")
    if opts["src"]:
        opts["src"] = str(Path(opts["src"]).expanduser().absolute())
        if not Path(opts["src"]).exists():
            raise ValueError(f"{NAME}: src {opts['src']} does not exist (a canonical dataset folder or file)")
        total = len(source_rows(opts["src"]))
        n = total if n <= 0 else min(int(n), total)
    else:
        if opts["scenes"].get("trace") not in (None, "grit"):
            raise ValueError(f"{NAME}: scenes.trace is GRIT's grounded thinking here; leave it out")
        scenes = image_scenes.resolve_options({**opts["scenes"], "trace": "grit"})  # bad ones fail now
        check_options(f"{NAME} scenes", scenes, image_scenes.QTYPES, image_scenes.TRACES)
        if n <= 0:
            raise ValueError(f"{NAME}: without src, give the number of scenes with --n")
    opts.update(p=p, n=int(n))  # the drop set depends on n: a resume with another n is refused
    return build_dataset(out_dir, name=NAME, make_sample=make_sample, n=n, seed=seed, shard=shard,
                         options=opts, workers=workers, chunk_size=chunk_size, progress=progress)
