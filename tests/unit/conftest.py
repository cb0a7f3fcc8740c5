"""Fixtures shared by the unit tests."""

import pytest


@pytest.fixture(scope="module")
def processor(tiny_model_dir):
    """Factory: `processor("qwen2_5_vl") -> AutoProcessor` of the tiny checkpoint, loaded once per module."""
    from transformers import AutoProcessor

    loaded = {}

    def get(family="qwen2_5_vl"):
        if family not in loaded:
            loaded[family] = AutoProcessor.from_pretrained(tiny_model_dir(family))
        return loaded[family]

    return get


SPATIAL_SMALL = dict(width=16, heads=2, points_per_patch=6, scene_points=256)  # the size the spatial tests collate at


@pytest.fixture(scope="module")
def rgbd_rooms(tmp_path_factory):
    """Two scenes_3d grounding rows with RGB-D views (depth and cameras saved), media resolved."""
    from mmreason.data_builders.scenes_3d import build
    from mmreason.schema import dataset_root, load_rows, resolve_media

    out = build(tmp_path_factory.mktemp("rooms") / "ds", n=2, seed=0, qtypes=["grounding_3d"], rgbd=True,
                views=2, num_points=8000, view_size=[112, 84], progress=False)
    return [resolve_media(r, dataset_root(out)) for r in load_rows(out)]


@pytest.fixture(scope="module")
def spatial_dir(tmp_path_factory, tiny_model_dir):
    """A tiny Qwen2.5-VL checkpoint with a freshly initialised spatial adapter of `SPATIAL_SMALL` size."""
    from mmreason.models.spatial.qwen import init_checkpoint

    return init_checkpoint(tiny_model_dir("qwen2_5_vl"), tmp_path_factory.mktemp("spatial") / "init", **SPATIAL_SMALL)
