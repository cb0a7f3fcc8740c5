"""Dual-path pooling and the 3D position embedding: point features added onto image patch tokens.

GS-Reasoner (arXiv 2510.13800, §3.1; released code: llava/model/llava_arch.py) gives each visual patch
token the scene's geometry without adding tokens. For every patch:

- path 1, semantic alignment: cross-attention with the patch token as the query over the encoder
  features of the K points seen in the patch (keys also carry each point's offset from the patch centre);
- path 2, position alignment: inverse-distance-weighted interpolation of those K features at the 3D point
  under the patch centre;
- the two are concatenated and projected to the backbone's width, and a 3D position embedding of the
  patch centre (sin/cos features of its world coordinates, then an MLP) is added as well.

The sum is added to the patch token; tokens of patches that saw no point (or images without depth) pass
through unchanged, so an image-only batch sees the plain backbone.

>>> import torch
>>> adapter = SpatialAdapter(SpatialConfig(width=16, scene_points=32, points_per_patch=4), hidden_size=24)
>>> inputs = example_inputs(tokens=5, points_per_patch=4, scene_points=32)
>>> adapter(torch.zeros(5, 24), **inputs).shape
torch.Size([5, 24])
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from mmreason.models.spatial.point_encoder import ENCODERS, mlp

# batch keys the spatial collator adds and the model's forward takes (see `SpatialAdapter.forward`)
SPATIAL_INPUTS = ("spatial_points", "spatial_point_mask", "spatial_centers", "spatial_center_mask",
                  "spatial_token_scene", "spatial_scene", "spatial_scene_mask")


@dataclass(frozen=True)
class SpatialConfig:
    """The adapter's shape, saved in the checkpoint's config.json under ``spatial``.

    `points_per_patch` K = 64 and a Sonata encoder in the paper (code: "sonata_sample_64"); smaller here so a
    CPU step stays short. `scene_points` is how many of a scene's points the encoder sees (the patches'
    points read their features from the nearest of them). `frequencies` sin/cos octaves of the centre's
    coordinates, from `min_wavelength` metres up.
    """

    encoder: str = "local_pointnet"
    width: int = 128
    heads: int = 4
    points_per_patch: int = 16
    scene_points: int = 2048
    token_px: int = 28
    frequencies: int = 8
    min_wavelength: float = 0.05

    def __post_init__(self):
        if self.encoder not in ENCODERS:
            raise ValueError(f"spatial.encoder: unknown encoder {self.encoder!r}; known: "
                             f"{', '.join(ENCODERS)}")
        if self.width % self.heads:
            raise ValueError(f"spatial: width {self.width} must be a multiple of heads {self.heads}")

    @classmethod
    def from_dict(cls, values: dict) -> "SpatialConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"spatial config: unknown key(s) {unknown}; known: {sorted(known)}")
        return cls(**values)

    def as_dict(self) -> dict:
        return asdict(self)


def fourier(xyz: torch.Tensor, frequencies: int, min_wavelength: float) -> torch.Tensor:
    """(..., 3) metres -> (..., 3 + 6 * frequencies): the coordinates and their sin/cos at wavelengths
    `min_wavelength` * 2^i (the NeRF positional encoding, arXiv 2003.08934 §5.1)."""
    octaves = torch.arange(frequencies, device=xyz.device, dtype=xyz.dtype)
    scales = 2 * math.pi / (min_wavelength * 2.0 ** octaves)
    angles = xyz[..., None] * scales  # (..., 3, F)
    return torch.cat([xyz, angles.sin().flatten(-2), angles.cos().flatten(-2)], -1)


class SpatialAdapter(nn.Module):
    """Point encoder + dual-path pooling + projector + 3D position embedding, for one backbone width."""

    def __init__(self, config: SpatialConfig, *, hidden_size: int):
        super().__init__()
        self.config = config
        d = config.width
        self.encoder = ENCODERS[config.encoder](d)
        self.query = nn.Sequential(nn.LayerNorm(hidden_size), nn.Linear(hidden_size, d))
        self.offset = mlp((3, d, d))  # where a point sits in its patch, for the keys
        self.attend = nn.MultiheadAttention(d, config.heads, batch_first=True)
        self.projector = mlp((2 * d, hidden_size, hidden_size))
        self.position = mlp((3 + 6 * config.frequencies, hidden_size, hidden_size))

    def encode_scenes(self, scene: torch.Tensor, scene_mask: torch.Tensor) -> torch.Tensor:
        """Encoder features (S, N, width) of S scenes (S, N, 6): xyz metres + rgb 0-1."""
        return self.encoder(scene[..., :3], scene[..., 3:6], scene_mask)

    def point_features(self, feats: torch.Tensor, scene: torch.Tensor, scene_mask: torch.Tensor,
                       points: torch.Tensor, token_scene: torch.Tensor) -> torch.Tensor:
        """Features (T, K, width) of the patches' points: each takes its nearest scene point's (the un-pooling
        step that brings Sonata's features back to every point)."""
        out = points.new_zeros(*points.shape[:2], feats.shape[-1])
        for s in token_scene.unique().tolist():
            rows = token_scene == s
            d = torch.cdist(points[rows, :, :3].reshape(-1, 3), scene[s, :, :3])
            d = d.masked_fill(~scene_mask[s][None], float("inf"))
            out[rows] = feats[s][d.argmin(-1)].reshape(int(rows.sum()), points.shape[1], -1)
        return out

    def forward(self, tokens: torch.Tensor, *, spatial_points: torch.Tensor, spatial_point_mask: torch.Tensor,
                spatial_centers: torch.Tensor, spatial_center_mask: torch.Tensor,
                spatial_token_scene: torch.Tensor, spatial_scene: torch.Tensor,
                spatial_scene_mask: torch.Tensor) -> torch.Tensor:
        """`tokens` (T, hidden) patch tokens plus the collator's `SPATIAL_INPUTS` -> tokens (T, hidden)."""
        if spatial_points.shape[0] != tokens.shape[0]:
            raise ValueError(f"spatial inputs describe {spatial_points.shape[0]} image tokens but the vision "
                             f"tower made {tokens.shape[0]}: the batch was not built by the spatial collator "
                             "for these images")
        dtype = self.query[1].weight.dtype
        points, scene = spatial_points.to(dtype), spatial_scene.to(dtype)
        centers = spatial_centers.to(dtype)
        pmask, cmask = spatial_point_mask.bool(), spatial_center_mask.bool()
        feats = self.encode_scenes(scene, spatial_scene_mask.bool())
        pf = self.point_features(feats, scene, spatial_scene_mask.bool(), points, spatial_token_scene.long())
        # path 1: the patch asks its own points; a patch with none attends to zeros and is masked below
        keys = pf + self.offset(points[..., :3] - centers[:, None, :])
        q = self.query(tokens.to(dtype))[:, None, :]
        any_point = pmask.any(-1)
        pad = ~pmask & any_point[:, None]
        semantic = self.attend(q, keys, pf, key_padding_mask=pad, need_weights=False)[0][:, 0]
        # path 2: inverse-distance weights of the patch's points at the point under its centre
        dist = (points[..., :3] - centers[:, None, :]).norm(dim=-1)
        w = (1.0 / (dist + 1e-4)).masked_fill(~pmask, 0.0)
        w = w / w.sum(-1, keepdim=True).clamp_min(1e-12)
        positional = (w[..., None] * pf).sum(1)
        added = self.projector(torch.cat([semantic, positional], -1)) * any_point[:, None]
        added = added + self.position(fourier(centers, self.config.frequencies, self.config.min_wavelength)) \
            * cmask[:, None]
        return tokens + added.to(tokens.dtype)


def example_inputs(*, tokens: int, points_per_patch: int, scene_points: int, scenes: int = 1,
                   seed: int = 0) -> dict[str, torch.Tensor]:
    """Random spatial inputs of the collator's shapes (for doctests and shape checks): every token in
    scene 0, points in a 4 m cube."""
    g = torch.Generator().manual_seed(seed)
    room = torch.tensor([4, 4, 4, 1, 1, 1.0])  # metres for xyz, 0-1 for rgb
    pts = torch.rand(tokens, points_per_patch, 6, generator=g) * room
    return {"spatial_points": pts,
            "spatial_point_mask": torch.ones(tokens, points_per_patch, dtype=torch.bool),
            "spatial_centers": pts[:, 0, :3].clone(),
            "spatial_center_mask": torch.ones(tokens, dtype=torch.bool),
            "spatial_token_scene": torch.zeros(tokens, dtype=torch.long),
            "spatial_scene": torch.rand(scenes, scene_points, 6, generator=g) * room,
            "spatial_scene_mask": torch.ones(scenes, scene_points, dtype=torch.bool)}
