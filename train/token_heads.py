"""Auxiliary heads that read each merged vision token's colour and kind during `mmreason pretrain-tiny`, so
the vision side cannot drop what the words must bind to.

Why: in the tiny Qwen2.5-VL base, a linear probe read a shape's colour from the vision blocks' patches 0.96 of
the time but from the patch merger's output -- the only tokens the language model sees -- at chance (0.20,
chance 0.17) after the box-only stages (`benchmarks/probe_vision.py`): box losses reward position and kind,
and with no language-side use of colour yet, nothing kept colour in the merger. Rows that ask for colours
through the language model did not win it back in 6,000 steps. A linear head per attribute on the merger's
output, trained beside the box loss, restores colour to 0.97 within 1,000 steps, and then the colour words
bind (benchmarks/LEARNING.md). The heads are discarded after training: the checkpoint stays a plain
Qwen2.5-VL.

A token's label is the shape covering the largest share of its cell, if that share is at least
`MIN_COVER`; other tokens (background, slivers of a shape) carry no label. The rows say what they show in
``meta["shapes"]`` (box in original pixels, colour, kind), as `pretrain_tiny` writes them.
"""

from __future__ import annotations

from typing import Any, Sequence

MIN_COVER = 0.3  # share of a merged token's cell a shape must cover for the token to be labelled with it
HEAD_LR_SCALE = 5.0  # the heads start from zero knowledge; a higher rate keeps them ahead of the merger


def cover(cell: Sequence[float], box: Sequence[float]) -> float:
    """Share of `cell` (x1, y1, x2, y2) that `box` covers.

    >>> cover((0, 0, 28, 28), (14, 0, 42, 28))
    0.5
    """
    ix = max(0.0, min(cell[2], box[2]) - max(cell[0], box[0]))
    iy = max(0.0, min(cell[3], box[3]) - max(cell[1], box[1]))
    return ix * iy / ((cell[2] - cell[0]) * (cell[3] - cell[1]))


def token_labels(shapes: Sequence[dict], width: int, height: int, grid_h: int, grid_w: int,
                 attribute: str, classes: Sequence[str]) -> list[int]:
    """One class index per merged token of a `grid_h` x `grid_w` grid over a `width` x `height` picture, in
    raster order (-100 where no shape covers `MIN_COVER` of the cell).

    >>> shapes = [{"box": [0, 0, 28, 28], "color": "red", "kind": "circle"}]
    >>> token_labels(shapes, 56, 28, 1, 2, "color", ["green", "red"])
    [1, -100]
    """
    labels = []
    cw, ch = width / grid_w, height / grid_h
    for r in range(grid_h):
        for c in range(grid_w):
            cell = (c * cw, r * ch, (c + 1) * cw, (r + 1) * ch)
            covered = ((cover(cell, s["box"]), s) for s in shapes)
            share, best = max(covered, key=lambda t: t[0], default=(0.0, None))
            labels.append(classes.index(best[attribute]) if share >= MIN_COVER else -100)
    return labels


class TokenHeads:
    """Linear colour and kind heads on `model`'s merged vision tokens. Call `loss(rows, grid_thw)` after the
    model's forward pass on the Collator's batch of `rows` (`grid_thw`: that batch's ``image_grid_thw``); the
    hook keeps the last forward's tokens."""

    def __init__(self, model: Any, colours: Sequence[str], kinds: Sequence[str]):
        import torch

        self.classes = {"color": list(colours), "kind": list(kinds)}
        width = model.config.vision_config.out_hidden_size
        self.heads = torch.nn.ModuleDict({name: torch.nn.Linear(width, len(values))
                                          for name, values in self.classes.items()})
        self.merge = model.config.vision_config.spatial_merge_size
        self._tokens = None
        model.model.visual.register_forward_hook(self._keep)

    def _keep(self, module, args, output) -> None:
        # pooler_output: the merger's tokens in raster order, one picture after another
        self._tokens = output.pooler_output

    def parameters(self):
        return self.heads.parameters()

    def loss(self, rows: Sequence[dict], grid_thw) -> tuple[Any, dict[str, float]]:
        """Cross-entropy of both heads over the labelled tokens of the batch's pictures (one per row), and
        each head's accuracy on them."""
        import torch

        if self._tokens is None:
            raise RuntimeError("TokenHeads.loss: no vision tokens kept; run the model's forward pass first")
        tokens, self._tokens = self._tokens, None
        targets = {name: [] for name in self.classes}
        for row, (_, gh, gw) in zip(rows, grid_thw.tolist(), strict=True):
            shapes = (row.get("meta") or {}).get("shapes")
            if shapes is None:
                raise ValueError(f"row {row.get('id')!r}: no meta['shapes']: token heads need what the picture shows")
            width, height = row["meta"]["size"]
            for name, classes in self.classes.items():
                targets[name] += token_labels(shapes, width, height, gh // self.merge, gw // self.merge, name, classes)
        total, accuracy = 0.0, {}
        for name, head in self.heads.items():
            y = torch.tensor(targets[name])
            if len(y) != len(tokens):
                raise RuntimeError(f"TokenHeads: {len(tokens)} vision tokens but {len(y)} labels: one picture per row")
            keep = y != -100
            if not keep.any():  # no shape covers a token in any picture: nothing to learn from this batch
                continue
            logits = head(tokens)
            total = total + torch.nn.functional.cross_entropy(logits, y)
            accuracy[name] = float((logits.detach()[keep].argmax(-1) == y[keep]).float().mean())
        return total, accuracy
