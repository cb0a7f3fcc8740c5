"""The spatial adapter on a tiny Qwen2.5-VL: patch-token shape, blind to point order, gradients reaching
the encoder and projector, save -> load -> identical logits, and LoRA training it fully at its own rate."""

import copy

import pytest
import torch

from mmreason.models.spatial import SPATIAL_INPUTS, SpatialAdapter, SpatialCollator, SpatialConfig
from mmreason.models.spatial.pooling import example_inputs

SMALL = dict(width=16, heads=2, points_per_patch=6, scene_points=256)  # as spatial_dir (tests/unit/conftest.py)


@pytest.fixture(scope="module")
def adapter():
    torch.manual_seed(0)
    return SpatialAdapter(SpatialConfig(**SMALL), hidden_size=32)


def test_output_has_the_patch_token_shape_and_needs_the_points(adapter):
    inputs = example_inputs(tokens=7, points_per_patch=6, scene_points=256)
    tokens = torch.randn(7, 32)
    out = adapter(tokens, **inputs)
    assert out.shape == tokens.shape and not torch.allclose(out, tokens)
    # a patch that saw nothing (no points, no centre) passes through unchanged
    inputs["spatial_point_mask"][3] = False
    inputs["spatial_center_mask"][3] = False
    out = adapter(tokens, **inputs)
    torch.testing.assert_close(out[3], tokens[3])
    with pytest.raises(ValueError, match="describe 7 image tokens but the vision tower made 6"):
        adapter(tokens[:6], **inputs)


def test_invariant_to_the_order_of_points(adapter):
    inputs = example_inputs(tokens=5, points_per_patch=6, scene_points=256, seed=1)
    inputs["spatial_point_mask"][2, 4:] = False  # padding in one patch
    tokens = torch.randn(5, 32)
    out = adapter(tokens, **inputs)
    g = torch.Generator().manual_seed(2)
    shuffled = dict(inputs)
    per_patch = torch.stack([torch.randperm(6, generator=g) for _ in range(5)])
    rows = torch.arange(5)[:, None]
    shuffled["spatial_points"] = inputs["spatial_points"][rows, per_patch]
    shuffled["spatial_point_mask"] = inputs["spatial_point_mask"][rows, per_patch]
    scene_order = torch.randperm(256, generator=g)
    shuffled["spatial_scene"] = inputs["spatial_scene"][:, scene_order]
    shuffled["spatial_scene_mask"] = inputs["spatial_scene_mask"][:, scene_order]
    torch.testing.assert_close(adapter(tokens, **shuffled), out, atol=1e-5, rtol=1e-5)


def test_gradients_reach_the_encoder_and_the_projector(adapter):
    model = copy.deepcopy(adapter)
    out = model(torch.randn(5, 32), **example_inputs(tokens=5, points_per_patch=6, scene_points=256))
    out.square().sum().backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not dead
    assert any(n.startswith("encoder.") for n, _ in model.named_parameters())


# ------------------------------------------------------------------------------------------ backbone
def _batch(processor, rows):
    from mmreason.modalities.collate import Collator

    collate = SpatialCollator(Collator(processor, "qwen2_5_vl", return_meta=False), SpatialConfig(**SMALL))
    return collate(rows)


def test_save_load_gives_identical_logits_and_the_adapter_matters(spatial_dir, rgbd_rooms, tmp_path):
    from mmreason.models import load
    from mmreason.models.spatial.qwen import SpatialQwen2_5_VL

    model, processor = load(spatial_dir)
    assert isinstance(model, SpatialQwen2_5_VL) and model.config.model_type == "qwen2_5_vl"
    torch.manual_seed(1)
    with torch.no_grad():  # weights no initialisation would give, so a reload that re-initialises shows
        for p in model.spatial.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    batch = _batch(processor, rgbd_rooms)
    model.eval()
    with torch.no_grad():
        logits = model(**batch).logits
        plain = model(**{k: v for k, v in batch.items() if k not in SPATIAL_INPUTS}).logits
    assert not torch.allclose(logits, plain)  # the points reach the language model
    model.save_pretrained(tmp_path / "saved")
    processor.save_pretrained(tmp_path / "saved")
    for reloaded in (SpatialQwen2_5_VL.from_pretrained(tmp_path / "saved"), load(tmp_path / "saved")[0]):
        reloaded.eval()
        with torch.no_grad():
            torch.testing.assert_close(reloaded(**batch).logits, logits, rtol=0, atol=0)


def test_generate_feeds_the_points_to_the_image_tokens(spatial_dir, rgbd_rooms, caplog):
    from mmreason.models import load
    from mmreason.modalities.collate import Collator

    model, processor = load(spatial_dir)
    model.eval()
    calls = []
    model.spatial.register_forward_hook(lambda module, args, out: calls.append(out.shape))
    collate = SpatialCollator(Collator(processor, "qwen2_5_vl", mode="generate", return_meta=False),
                              SpatialConfig(**SMALL))
    batch = collate(rgbd_rooms[:1])
    with torch.no_grad():
        model.generate(**batch, max_new_tokens=3, do_sample=False)
    assert calls == [batch["spatial_points"].shape[:1] + (model.config.vision_config.out_hidden_size,)]
    assert "without spatial inputs" not in caplog.text


def test_lora_trains_the_adapter_fully_at_its_own_rate(spatial_dir, rgbd_rooms, tmp_path):
    from mmreason.config import load_recipe_dict
    from mmreason.models import load
    from mmreason.train.model_setup import load_policy, parameter_groups

    recipe = load_recipe_dict({"model": {"path": str(spatial_dir), "dtype": "float32",
                                         "lora": {"enabled": True, "r": 4, "alpha": 8, "dropout": 0.0}}})
    model, processor = load_policy(recipe, str(spatial_dir))
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    adapter = [n for n in trainable if ".spatial." in n]
    assert adapter and any("lora_" in n for n in trainable)
    assert not [n for n in trainable if ".spatial." not in n and "lora_" not in n]
    groups = parameter_groups(model, 1e-4, {"spatial": 1e-3}, section="sft")
    assert [g["lr"] for g in groups] == [1e-3, 1e-4]
    assert sum(p.numel() for p in groups[0]["params"]) == sum(
        p.numel() for n, p in model.named_parameters() if n in adapter)
    optimizer = torch.optim.AdamW(groups)
    batch = _batch(processor, rgbd_rooms)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if n in adapter}
    model.train()
    for _ in range(2):
        optimizer.zero_grad()
        model(**batch).loss.backward()
        optimizer.step()
    after = dict(model.named_parameters())
    assert all(not torch.equal(before[n], after[n]) for n in adapter)
    # merged and saved as training does: the next stage loads the trained adapter
    merged = model.merge_and_unload()
    merged.save_pretrained(tmp_path / "final")
    processor.save_pretrained(tmp_path / "final")
    reloaded, _ = load(tmp_path / "final")
    for name, p in reloaded.spatial.named_parameters():
        torch.testing.assert_close(p, merged.spatial.get_parameter(name))
