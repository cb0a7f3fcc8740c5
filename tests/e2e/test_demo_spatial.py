"""The spatial 3D demo on a GS-Reasoner spatial checkpoint (a tiny Qwen2.5-VL with the spatial adapter), served
on 127.0.0.1 and driven with `gradio_client`: the rendered views' pixels reach the adapter as 3D points that
lie on the uploaded cloud, and the boxes the model's answer names are drawn in the 3D view. The answer is
forced, as in the other demo tests (a random model writes no usable box), up to the answer's text, which
the model writes itself."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from demo_server import serve_demo

FAMILY = "qwen2_5_vl"
BUDGET = 64 * 28 * 28
SMALL = dict(width=16, heads=2, points_per_patch=6, scene_points=256)


@pytest.fixture(scope="module")
def spatial_model(tiny_model_dir, tmp_path_factory):
    from mmreason.demos import load_model
    from mmreason.models.spatial.qwen import SpatialQwen2_5_VL, init_checkpoint

    path = init_checkpoint(tiny_model_dir(FAMILY), tmp_path_factory.mktemp("spatial") / "ckpt", **SMALL)
    model, processor, family = load_model(str(path))  # as `mmreason demo spatial_3d --model PATH` loads it
    assert isinstance(model, SpatialQwen2_5_VL) and family == FAMILY
    return model, processor


def test_spatial_checkpoint_reads_the_views_points_and_draws_its_boxes(spatial_model, tmp_path, caplog):
    from gradio_client import Client, handle_file

    from mmreason.demos.spatial_3d import SceneConfig, build_demo, example_cloud

    model, processor = spatial_model
    seen = []
    hook = model.spatial.register_forward_hook(
        lambda module, args, kwargs, out: seen.append({k: v.clone() for k, v in kwargs.items()}), with_kwargs=True)
    cloud = example_cloud()
    np.save(tmp_path / "room.npy", cloud)
    config = SceneConfig(views=2, view_size=128, num_points=4000, max_new_tokens=8, max_pixels=BUDGET)
    demo = build_demo(model, processor, FAMILY, config=config)
    url = serve_demo(demo)
    try:
        client = Client(url, verbose=False, download_files=str(tmp_path / "got"))
        table = [0.5, 0.5, 0.0, 1.5, 1.1, 0.75]
        # left open, so the model writes the rest of the answer: its forward reads the points
        answer = f"<think>table 1 <bbox>({', '.join(map(str, table))})</bbox></think><answer>table"
        gt = '[{"label": "cabinet", "box": [2.8, 2.0, 0.0, 3.6, 2.6, 1.2]}]'
        figure, views, trace, parsed = client.predict(handle_file(str(tmp_path / "room.npy")),
                                                      "Where is the table?", answer, True, gt, api_name="/ask")
    finally:
        demo.close()
        hook.remove()
    data = json.loads(figure["plot"])["data"]
    assert [t.get("name") for t in data] == ["points", "GT: cabinet", "predicted: table"]
    drawn = data[2]
    corners = [(x, y, z) for x, y, z in zip(drawn["x"], drawn["y"], drawn["z"]) if x is not None]
    assert min(corners) == tuple(table[:3]) and max(corners) == tuple(table[3:])  # the answer's box, in 3D
    assert len(views) == 2 and '"name": "table"' in parsed
    assert "without spatial inputs" not in caplog.text
    # the adapter ran once, on both views' tokens, with points back-projected from their depth maps
    assert len(seen) == 1
    got = seen[0]
    valid = got["spatial_point_mask"]
    assert valid.float().mean() > 0.3  # most tokens see the room; the rest look past it
    assert int(got["spatial_scene_mask"].sum()) == min(SMALL["scene_points"], int(valid.sum()))
    points = got["spatial_points"][valid][:, :3]
    near = torch.cdist(points, torch.from_numpy(cloud[:, :3])).amin(dim=1)
    assert float(near.median()) < 0.05  # metres: a view's pixel lands on the cloud it was rendered from
    assert float(torch.quantile(near, 0.9)) < 0.15
