"""Keys and values kept across the turns of a multi-turn rollout, for HF ``model.generate``.

Without a cache every turn re-encodes its whole sequence: the prompt and every earlier picture again.
With `TurnCache` each trajectory is encoded once: a turn feeds only what is new since its last turn (the
tool's observation with its pictures, any forced text) into the cache the earlier turns left, and
``generate`` continues from there.

Layout. One ``DynamicCache`` holds a row per live trajectory; its columns are shared by the rows. A turn
appends a left-padded chunk (each row's new tokens, right-aligned, so every row continues at the same
column), then ``generate`` appends one column per generated token. A row owns some columns
(`_Row.columns`); the others are holes the attention mask hides: chunk padding, tokens generated after
the row's turn had ended, tokens the next input does not repeat (the rollout cut the turn earlier than
generation stopped). Trajectories that ended are dropped from the batch, and the columns no live row
owns are dropped with them.

Positions. The Qwen-VL families place tokens with 3D rotary positions (mRoPE): text moves all three
by one; a picture spans its (t, h, w) grid and moves the text after it on by the grid's larger side
(Qwen2-VL, arXiv:2409.12191 sec. 2.1; Qwen2.5-VL, arXiv:2502.13923 sec. 2.1, adds time-aligned video
steps). A chunk's positions are the model's own ``get_rope_index`` over the row's whole sequence, i.e.
the positions an uncached prefill (and the training forward) gives those tokens, and ``generate``
continues one past the chunk's last position, as it does from any explicit positions. So the cached
path shows the model the same tokens at the same positions as re-encoding does, and greedy decoding
picks the same tokens (checked across families by the e2e tests).

Reuse is checked, never assumed: a row continues only when the new input repeats the tokens the row
holds up to (at least) its last picture; an unknown trajectory or a rewritten history starts a fresh cache.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Hashable, Mapping, Sequence

from mmreason.rollout.tokens import concat_vision

__all__ = ["TurnCache", "cache_unsupported"]

# What `get_rope_index` reads from the processor's vision outputs (the rest feeds the vision tower).
_ROPE_KEYS = ("image_grid_thw", "video_grid_thw", "second_per_grid_ts")


def cache_unsupported(model: Any) -> str | None:
    """Why `TurnCache` cannot serve `model` (None when it can): it needs the family's ``get_rope_index``
    and full-attention layers only (a sliding window's cache drops columns this layout addresses)."""
    inner = getattr(model, "model", None)
    if not callable(getattr(inner, "get_rope_index", None)):
        return f"{type(model).__name__} has no get_rope_index to continue 3D positions with"
    config = getattr(model, "config", None)
    text = config.get_text_config(decoder=True) if hasattr(config, "get_text_config") else config
    layer_types = getattr(text, "layer_types", None) or ()
    if any(t != "full_attention" for t in layer_types) or getattr(text, "use_sliding_window", False):
        return f"{type(model).__name__} has sliding-window attention layers"
    return None


@dataclass
class _Row:
    """One trajectory's share of the cache."""

    key: Hashable
    ids: list[int] = field(default_factory=list)  # the tokens the row holds, in sequence order
    columns: list[int] = field(default_factory=list)  # the cache column of each
    positions: list[int] = field(default_factory=list)  # each held text token's position (all 3 axes agree)
    segments: int = 0  # vision entries (`TurnInput.vision`) already encoded
    fixed: int = 0  # tokens through the last encoded picture: a new input must repeat at least these
    after_picture: int = 0  # the position text takes right after that picture

    def next_position(self, m: int) -> int:
        """Where the token after the first `m` held ones goes (the walk of ``get_rope_index`` goes on there)."""
        if m == 0:
            return 0
        return self.after_picture if m == self.fixed else self.positions[m - 1] + 1


@dataclass
class _Plan:
    """What `prepare` fed, for `record` to book once ``generate`` has run."""

    inputs: Sequence[Any]
    new: list[list[int]]  # each row's tokens in the chunk
    positions: list[Any]  # each row's (3, len(new)) positions
    past: int  # cache columns before the chunk
    width: int  # chunk columns


class TurnCache:
    """A ``DynamicCache`` that outlives ``generate`` calls, with the bookkeeping to continue each row.

    Per call: `prepare(inputs, pad_id)` returns ``generate``'s keyword arguments (full-width ids and mask,
    explicit 3D positions, the new vision tensors only, the cache), or None when the inputs cannot be
    tracked; `record(generated)` books what ``generate`` appended. `reset` frees it all.
    """

    def __init__(self, model: Any):
        self.model = model
        self._rope_index = model.model.get_rope_index
        params = inspect.signature(type(model).forward).parameters
        self._cache_kwarg = "cache" if "cache" in params else "past_key_values"  # renamed within transformers 5.x
        self.reset()

    def reset(self) -> None:
        """Forget every row and free the keys and values (e.g. when the weights change)."""
        self.cache: Any = None
        self.mask: Any = None  # (rows, columns) bool: which columns each row owns
        self.rows: list[_Row] = []
        self._plan: _Plan | None = None

    # ---------------------------------------------------------------------------------------- a turn
    def prepare(self, inputs: Sequence[Any], pad_id: int) -> dict[str, Any] | None:
        """``generate`` keyword arguments continuing each input's row (module doc); None when the inputs
        cannot be tracked (no or repeated trajectory keys, pictures without token types)."""
        import torch
        from transformers import DynamicCache

        keys = [x.key for x in inputs]
        untracked = any(k is None for k in keys) or len(set(keys)) != len(keys)
        if untracked or any(x.token_types is None and _has_grids(x) for x in inputs):
            self.reset()
            return None
        starts = self._continue(inputs)
        if starts is None:  # a fresh cache: every row starts empty
            self.reset()
            self.cache = DynamicCache(config=self.model.config)
            self.mask = torch.zeros((len(inputs), 0), dtype=torch.bool)
            self.rows = [_Row(k) for k in keys]
            starts = [0] * len(inputs)
        new = [list(x.ids[m:]) for x, m in zip(inputs, starts)]
        past, width = self.mask.shape[1], max(len(n) for n in new)
        batch, total = len(inputs), past + width
        ids = torch.full((batch, total), int(pad_id), dtype=torch.long)
        positions = torch.zeros((3, batch, total), dtype=torch.long)
        chunk = torch.zeros((batch, width), dtype=torch.bool)
        chunk_positions = []
        for b, (x, row, m, n) in enumerate(zip(inputs, self.rows, starts, new)):
            if row.columns:  # the row's tokens where they sit (processors that read the sequence see them)
                ids[b, row.columns] = torch.tensor(row.ids, dtype=torch.long)
            ids[b, total - len(n):] = torch.tensor(n, dtype=torch.long)
            chunk[b, width - len(n):] = True
            chunk_positions.append(self._positions(x, m, row) + row.next_position(m))
            positions[:, b, total - len(n):] = chunk_positions[-1]
        attention = torch.cat([self.mask, chunk], dim=1).long()
        vision = concat_vision([v for x, row in zip(inputs, self.rows) for v in x.vision[row.segments:]])
        self._plan = _Plan(inputs, new, chunk_positions, past, width)
        device = self.model.device
        out = {"input_ids": ids, "attention_mask": attention, "position_ids": positions, **vision}
        out = {k: v.to(device) if hasattr(v, "to") else v for k, v in out.items()}
        return {**out, self._cache_kwarg: self.cache}

    def record(self, generated: Any) -> None:
        """Book the chunk `prepare` laid out and what ``generate`` appended: `generated` is (rows, new
        tokens) of its output; the ones it fed back into the cache are owned by every row until the next
        input shows how much of its turn the rollout kept."""
        import torch

        plan, self._plan = self._plan, None
        if plan is None:
            return
        start = plan.past + plan.width
        fed = self.cache.get_seq_length() - start
        if not 0 <= fed <= generated.shape[1]:  # not the layout this plan made: start afresh next turn
            self.reset()
            return
        chunk = torch.zeros((len(self.rows), plan.width), dtype=torch.bool)
        for b, (x, row, n, pos) in enumerate(zip(plan.inputs, self.rows, plan.new, plan.positions)):
            row.ids += n + [int(t) for t in generated[b, :fed].tolist()]
            row.columns += [*range(start - len(n), start), *range(start, start + fed)]
            last = int(pos[0, -1])  # generation goes on one past the chunk's last position, on every axis
            row.positions += pos[0].tolist() + list(range(last + 1, last + 1 + fed))
            chunk[b, plan.width - len(n):] = True
            fixed = _through_last_picture(x)
            if fixed > row.fixed:  # the chunk held a picture: text after it is at its walk's position
                after = fixed - (len(x.ids) - len(n))
                row.after_picture = int(pos[0, after]) if after < len(n) else last + 1
            row.segments, row.fixed = len(x.vision), fixed
        self.mask = torch.cat([self.mask, chunk, torch.ones((len(self.rows), fed), dtype=torch.bool)], dim=1)

    # ------------------------------------------------------------------------------------ internals
    def _continue(self, inputs: Sequence[Any]) -> list[int] | None:
        """Select, trim and compact the rows `inputs` continue; each one's first new token, or None when
        some input cannot continue a row (then the caller starts a fresh cache)."""
        import torch

        if self.cache is None:
            return None
        index = {row.key: r for r, row in enumerate(self.rows)}
        if any(x.key not in index for x in inputs):
            return None
        starts = []
        for x in inputs:
            row = self.rows[index[x.key]]
            m = _common_prefix(row.ids, x.ids)
            if m == len(x.ids):
                m -= 1  # the last token is fed again: generation needs its logits
            if m < row.fixed or m < 0:
                return None
            starts.append(m)
        order = [index[x.key] for x in inputs]
        if order != list(range(len(self.rows))):
            self.cache.batch_select_indices(torch.tensor(order, device=self.model.device))
            self.mask = self.mask[order]
            self.rows = [self.rows[r] for r in order]
        for b, (row, m) in enumerate(zip(self.rows, starts)):
            self.mask[b, row.columns[m:]] = False
            del row.ids[m:], row.columns[m:], row.positions[m:]
        self._compact()
        return starts

    def _compact(self) -> None:
        """Drop the columns no row owns (from ended trajectories and trimmed turns)."""
        import torch

        keep = self.mask.any(dim=0)
        if bool(keep.all()):
            return
        where = torch.nonzero(keep).flatten()
        renumber = torch.cumsum(keep.long(), 0) - 1
        on_device = where.to(self.model.device)
        for layer in self.cache.layers:
            if getattr(layer, "keys", None) is not None and layer.keys.numel():
                layer.keys = layer.keys.index_select(-2, on_device)
                layer.values = layer.values.index_select(-2, on_device)
        self.mask = self.mask[:, where]
        for row in self.rows:
            row.columns = renumber[row.columns].tolist() if row.columns else []

    def _positions(self, x: Any, m: int, row: _Row) -> Any:
        """(3, len(x.ids) - m) mRoPE positions of the input's tokens from `m` on, counted from 0: the model's
        own ``get_rope_index`` over them alone with the pictures among them (its walk adds up, so the
        caller shifts them to where the row's walk stands)."""
        import torch

        n = len(x.ids) - m
        if x.token_types is None or not any(x.token_types[m:]):  # text only: one step per token
            return torch.arange(n).expand(3, -1)
        ids = torch.tensor([x.ids[m:]], dtype=torch.long)
        types = torch.tensor([x.token_types[m:]], dtype=torch.long)
        vision = concat_vision([{k: v[k] for k in _ROPE_KEYS if k in v} for v in x.vision[row.segments:]])
        positions, _ = self._rope_index(ids, mm_token_type_ids=types, **_as_tensors(vision))
        return positions[:, 0].cpu()


def _as_tensors(vision: Mapping[str, Any]) -> dict[str, Any]:
    import torch

    return {k: v if isinstance(v, torch.Tensor) else torch.tensor(v) for k, v in vision.items()}


def _has_grids(x: Any) -> bool:
    return any(v.get(k) is not None for v in x.vision for k in ("image_grid_thw", "video_grid_thw"))


def _through_last_picture(x: Any) -> int:
    """How many tokens of `x` run through its last picture or clip token (0 when it has none)."""
    types = x.token_types or ()
    return next((k + 1 for k in range(len(types) - 1, -1, -1) if types[k]), 0)


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    for k in range(n):
        if a[k] != b[k]:
            return k
    return n
