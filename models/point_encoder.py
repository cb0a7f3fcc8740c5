"""A point-patch encoder: groups of points -> one token each, at an LLM's hidden size.

The 3D path of GS-Reasoner-style models: a cloud is cut into patches (farthest-point-sampled centres and
their k nearest neighbours, ``mmreason.modalities.point_cloud.point_patches``) and each patch becomes one
token. Per patch this is PointNet with a second stage (as in Point-BERT / Point-MAE tokenisers): a shared
MLP lifts every point, a max-pool gives the patch feature, which is concatenated back onto every point
for a second shared MLP and max-pool. Max-pooling makes a token blind to the order of points in its
patch and to repeated points. Patch points are relative to their centre, so where the patch *is* comes
only from the centre's positional embedding (an MLP on xyz) added to the token.

>>> import torch
>>> enc = PointPatchEncoder(hidden_size=32, in_channels=6)
>>> enc(torch.zeros(2, 8, 16, 6), torch.zeros(2, 8, 3)).shape
torch.Size([2, 8, 32])
"""

from __future__ import annotations

import torch
from torch import nn


def _mlp(dims: tuple[int, ...]) -> nn.Sequential:
    """Linear layers with LayerNorm + GELU between them (LayerNorm: patches vary too much for BatchNorm
    statistics, and batches of one scene are common)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(dims) - 2:
            layers += [nn.LayerNorm(b), nn.GELU()]
    return nn.Sequential(*layers)


class PointPatchEncoder(nn.Module):
    """Encode patches ``(B, G, K, C)`` with centres ``(B, G, 3)`` into tokens ``(B, G, hidden_size)``.

    `in_channels` is 3 (xyz relative to the centre) or 6 (plus rgb in 0-1). Unbatched inputs ``(G, K, C)``
    and ``(G, 3)`` give ``(G, hidden_size)``. `mask` ``(B, G, K)`` (True = real point) excludes padding
    from the pools; a patch with no real point gets a zero feature before its position is added.
    """

    def __init__(self, hidden_size: int, *, in_channels: int = 3, width: int = 128, pos_width: int = 128):
        super().__init__()
        self.in_channels = in_channels
        self.hidden_size = hidden_size
        self.first = _mlp((in_channels, width, width))
        self.second = _mlp((2 * width, 2 * width, hidden_size))
        self.pos = _mlp((3, pos_width, hidden_size))

    @staticmethod
    def _pool(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        if mask is None:
            return x.max(dim=-2).values
        x = x.masked_fill(~mask[..., None], float("-inf")).max(dim=-2).values
        return torch.where(torch.isfinite(x), x, torch.zeros_like(x))

    def forward(
        self, patches: torch.Tensor, centers: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        unbatched = patches.dim() == 3
        if unbatched:
            patches, centers = patches[None], centers[None]
            mask = None if mask is None else mask[None]
        if patches.dim() != 4 or patches.shape[-1] != self.in_channels:
            raise ValueError(f"patches must be (B, G, K, {self.in_channels}), got {tuple(patches.shape)}")
        if centers.shape != (*patches.shape[:2], 3):
            raise ValueError(f"centers must be {(*patches.shape[:2], 3)}, got {tuple(centers.shape)}")
        point_feats = self.first(patches)  # (B, G, K, W)
        patch_feat = self._pool(point_feats, mask)  # (B, G, W)
        both = torch.cat([point_feats, patch_feat[..., None, :].expand_as(point_feats)], dim=-1)
        tokens = self._pool(self.second(both), mask) + self.pos(centers)
        return tokens[0] if unbatched else tokens
