"""Point encoders: a scene's points (xyz + rgb) -> one feature per point, swappable by name (`ENCODERS`).

GS-Reasoner encodes the whole scene with Sonata (a Point Transformer V3 pretrained self-supervised;
arXiv 2510.13800 §3.1) and reads features back at every point. What the pooling needs from an encoder
is only that contract: ``encoder(xyz (B, N, 3), rgb (B, N, 3), mask (B, N)) -> (B, N, width)``, features
that depend on each point's neighbourhood and not on the order the points come in. `LocalPointNet` is
the small one trained here from scratch: a per-point MLP, then layers of PointNet++-style set
abstraction without down-sampling (Qi et al. 2017, arXiv 1706.02413 §3.2): every point gathers its k
nearest neighbours, lifts (neighbour feature, neighbour offset) with a shared MLP and max-pools them.
Max-pooling over a neighbourhood found by distance is what makes it blind to point order.

>>> import torch
>>> enc = LocalPointNet(width=16, neighbours=4, layers=1)
>>> enc(torch.rand(2, 10, 3), torch.rand(2, 10, 3), torch.ones(2, 10, dtype=torch.bool)).shape
torch.Size([2, 10, 16])
"""

from __future__ import annotations

import torch
from torch import nn


def mlp(dims: tuple[int, ...]) -> nn.Sequential:
    """Linear layers with LayerNorm + GELU between them (LayerNorm, not BatchNorm: a batch is often one
    scene, whose statistics would be the whole normalisation)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(dims) - 2:
            layers += [nn.LayerNorm(b), nn.GELU()]
    return nn.Sequential(*layers)


def knn(xyz: torch.Tensor, mask: torch.Tensor, k: int) -> torch.Tensor:
    """Indices (B, N, k) of each point's k nearest real points (itself included); padding is never chosen
    while a real point is left, and ties break by index, so the result does not depend on point order
    beyond equal distances."""
    d = torch.cdist(xyz, xyz)
    d = d.masked_fill(~mask[:, None, :], float("inf"))
    return d.topk(min(k, xyz.shape[1]), dim=-1, largest=False).indices


class LocalPointNet(nn.Module):
    """Per-point features from xyz (metres, scene frame) and rgb (0-1): see the module docstring."""

    def __init__(self, width: int = 128, *, neighbours: int = 16, layers: int = 2):
        super().__init__()
        self.width = width
        self.neighbours = neighbours
        self.lift = mlp((6, width, width))
        self.layers = nn.ModuleList(mlp((width + 3, width, width)) for _ in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(width) for _ in range(layers))

    def forward(self, xyz: torch.Tensor, rgb: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if xyz.dim() != 3 or xyz.shape[-1] != 3 or rgb.shape != xyz.shape or mask.shape != xyz.shape[:2]:
            raise ValueError(f"point encoder: xyz and rgb must be (B, N, 3) and mask (B, N); got "
                             f"{tuple(xyz.shape)}, {tuple(rgb.shape)}, {tuple(mask.shape)}")
        feats = self.lift(torch.cat([xyz, rgb], -1))
        idx = knn(xyz, mask, self.neighbours)  # (B, N, k)
        b = torch.arange(xyz.shape[0], device=xyz.device)[:, None, None]
        offsets = xyz[b, idx] - xyz[:, :, None, :]  # (B, N, k, 3): each neighbour as seen from the point
        for layer, norm in zip(self.layers, self.norms):
            grouped = torch.cat([feats[b, idx], offsets], -1)
            feats = norm(feats + layer(grouped).max(dim=-2).values)  # residual: deeper stacks stay trainable
        return feats.masked_fill(~mask[..., None], 0.0)


# name -> factory(width) for `SpatialConfig.encoder`; a bigger encoder (PTv3, Sonata) plugs in here
ENCODERS = {"local_pointnet": lambda width: LocalPointNet(width)}
