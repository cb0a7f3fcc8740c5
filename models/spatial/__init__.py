"""GS-Reasoner's spatial path (arXiv 2510.13800 §3.1): point features and 3D positions added onto the
image patch tokens of a Qwen2.5-VL backbone (`import mmreason.models.spatial`).

    python -m mmreason.models.spatial init tiny:qwen2_5_vl outputs/spatial-init   # base + fresh adapter
    model, processor = mmreason.models.load("outputs/spatial-init")              # a SpatialQwen2_5_VL

Modules, each importing only those before it: `geometry` (posed RGB-D frames -> world points per image
token), `point_encoder` (swappable per-point encoders), `pooling` (dual-path pooling, projector, 3D
position embedding: `SpatialAdapter`), `collate` (the collator that adds the adapter's inputs to a
batch), `qwen` (the Qwen2.5-VL subclass carrying the adapter, saved and loaded with the checkpoint).
Importing this package does not import transformers; `SpatialQwen2_5_VL` and `init_checkpoint` come
from `mmreason.models.spatial.qwen`.
"""

from mmreason.models.spatial.collate import SpatialCollator, spatial_inputs, with_spatial_inputs
from mmreason.models.spatial.geometry import PatchPoints, backproject, patch_points
from mmreason.models.spatial.point_encoder import ENCODERS, LocalPointNet
from mmreason.models.spatial.pooling import SPATIAL_INPUTS, SpatialAdapter, SpatialConfig

__all__ = ["SpatialCollator", "spatial_inputs", "with_spatial_inputs", "PatchPoints", "backproject",
           "patch_points", "ENCODERS", "LocalPointNet", "SPATIAL_INPUTS", "SpatialAdapter", "SpatialConfig"]
