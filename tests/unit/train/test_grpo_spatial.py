"""GRPO on the spatial model (GS-Reasoner, arXiv 2510.13800 §3.1): rollouts carry each row's 3D points into
generation and into the policy's log-prob forward, and a few GRPO steps of the tiny recipe train the adapter."""

import pytest
import torch

from mmreason.models.spatial import SPATIAL_INPUTS, SpatialAdapter, SpatialCollator, SpatialConfig

SMALL = dict(width=16, heads=2, points_per_patch=6, scene_points=256)  # as spatial_dir (tests/unit/conftest.py)


@pytest.fixture(scope="module")
def rolled(spatial_dir, rgbd_rooms):
    """Two rows x two trajectories (key/value cache on), and the adapter's inputs at every generation call."""
    from mmreason.models import load
    from mmreason.rollout import RolloutConfig, rollout

    model, processor = load(spatial_dir)
    model.eval()
    seen = []
    hook = model.spatial.register_forward_hook(
        lambda module, args, kwargs, out: seen.append({k: v.clone() for k, v in kwargs.items()}), with_kwargs=True)
    trajs = rollout(model, processor, rgbd_rooms, "qwen2_5_vl", group_size=2,
                    config=RolloutConfig(max_new_tokens=5, max_completion_tokens=5, seed=0))
    hook.remove()
    return model, processor, trajs, seen


def test_generation_reads_each_rows_own_points(rolled, rgbd_rooms):
    from mmreason.modalities.collate import Collator

    model, processor, trajs, seen = rolled
    assert len(seen) == 1  # one generation call encodes the pictures once, for all four trajectories
    got = seen[0]
    collate = SpatialCollator(Collator(processor, "qwen2_5_vl", mode="generate", return_meta=False),
                              SpatialConfig(**SMALL))
    alone = [collate([row]) for row in rgbd_rooms]
    order = [alone[t.group] for t in trajs]  # the batch's images: each trajectory's prompt, in order
    for key in ("spatial_points", "spatial_point_mask", "spatial_centers", "spatial_center_mask"):
        torch.testing.assert_close(got[key], torch.cat([b[key] for b in order]), rtol=0, atol=0)
    # every token reads the scene of its own row, though every trajectory's scene index starts at 0
    per_token = got["spatial_scene"][got["spatial_token_scene"]]
    expected = torch.cat([b["spatial_scene"][b["spatial_token_scene"]] for b in order])
    torch.testing.assert_close(per_token, expected, rtol=0, atol=0)
    assert len(got["spatial_scene"]) == len(trajs)


def test_the_log_prob_forward_reads_the_points(rolled):
    from mmreason.rollout import collate_trajectories
    from mmreason.train.grpo_step import completion_logps

    model, processor, trajs, _ = rolled
    batch = collate_trajectories(trajs, processor.tokenizer.pad_token_id)
    assert set(SPATIAL_INPUTS) <= set(batch)
    assert batch["spatial_token_scene"].unique().tolist() == [0, 1, 2, 3]
    moved = dict(batch)
    shift = torch.tensor([1.0, 0.0, 0.0, 0, 0, 0])  # the whole room a metre along x, colours kept
    moved["spatial_points"] = batch["spatial_points"] + shift
    moved["spatial_scene"] = batch["spatial_scene"] + shift
    moved["spatial_centers"] = batch["spatial_centers"] + shift[:3]
    with torch.no_grad():
        logp = completion_logps(model, batch, 1.0)[0]
        again = completion_logps(model, batch, 1.0)[0]
        shifted = completion_logps(model, moved, 1.0)[0]
    torch.testing.assert_close(logp, again, rtol=0, atol=0)
    assert not torch.allclose(logp, shifted)


def test_observation_pictures_get_no_points_and_keep_their_tokens(spatial_dir, rgbd_rooms):
    from mmreason.models import load
    from mmreason.rollout.tokens import concat_vision

    model, _ = load(spatial_dir)
    grids = torch.tensor([[1, 4, 6]])
    crop = model.vision_extras(None, {"image_grid_thw": grids})
    assert crop["spatial_points"].shape == (6, SMALL["points_per_patch"], 6)
    assert not crop["spatial_point_mask"].any() and not crop["spatial_center_mask"].any()
    assert model.vision_extras(None, {}) == {}  # a text-only observation adds nothing
    tokens = torch.randn(6, model.config.vision_config.out_hidden_size)
    joined = concat_vision([crop, crop])
    assert joined["spatial_token_scene"].tolist() == [0] * 6 + [1] * 6
    inputs = {k: joined[k] for k in SPATIAL_INPUTS}
    both = torch.cat([tokens, tokens])
    with torch.no_grad():
        torch.testing.assert_close(model.spatial(both, **inputs), both)


def test_a_vllm_backend_is_refused_for_the_spatial_model(rolled, rgbd_rooms):
    from mmreason.rollout import VLLMBackend, rollout

    model, processor, _, _ = rolled
    backend = VLLMBackend(processor, "qwen2_5_vl", mode="server", server_url="http://127.0.0.1:9")
    with pytest.raises(ValueError, match="vLLM engine cannot be given"):
        rollout(model, processor, rgbd_rooms[:1], "qwen2_5_vl", backend=backend)


def test_grpo_steps_of_the_tiny_recipe_train_the_adapter_through_the_points(spatial_dir, tmp_path, caplog):
    from mmreason.models import load
    from mmreason.train import grpo

    calls = []

    def record(module, args, output):
        if isinstance(module, SpatialAdapter):
            calls.append("generation" if torch.is_inference_mode_enabled() else
                         "update" if torch.is_grad_enabled() else "no_grad")

    # the recipe's reward, plus a length penalty over characters so that a group's completions differ
    rewards = ("[{name: gs_reasoner, weight: 1.0}, {name: length_penalty, weight: 1.0, "
               "kwargs: {max_length: 400, cache_length: 400, unit: chars}}]")
    hook = torch.nn.modules.module.register_module_forward_hook(record)
    try:
        assert grpo.main(["gs_reasoner/tiny_grpo", f"model.path={spatial_dir}", f"output_dir={tmp_path / 'out'}",
                          f"rewards={rewards}", "grpo.weight_decay=0.0"]) == 0
    finally:
        hook.remove()
    # two steps of two prompts: every rollout generation and every update forward ran the adapter
    assert calls.count("generation") >= 2 and calls.count("update") == 2
    assert "without spatial inputs" not in caplog.text
    start, _ = load(spatial_dir)
    final, _ = load(tmp_path / "out" / "final")
    changed = [n for n, p in start.spatial.named_parameters() if not torch.equal(p, final.spatial.get_parameter(n))]
    for part in ("encoder.", "attend.", "projector.", "position.", "query."):
        assert any(n.startswith(part) for n in changed), (part, changed)
