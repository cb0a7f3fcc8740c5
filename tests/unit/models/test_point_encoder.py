"""Point-patch encoder: shapes, gradient flow, order invariance, masks, and patches of a real cloud."""

import numpy as np
import pytest
import torch

from mmreason.models.point_encoder import PointPatchEncoder
from mmreason.modalities.point_cloud import load_point_cloud, point_patches


@pytest.fixture
def enc():
    torch.manual_seed(0)
    return PointPatchEncoder(hidden_size=48, in_channels=6, width=32, pos_width=16)


def test_shapes_batched_and_unbatched(enc):
    patches, centers = torch.randn(3, 10, 16, 6), torch.randn(3, 10, 3)
    assert enc(patches, centers).shape == (3, 10, 48)
    assert enc(patches[0], centers[0]).shape == (10, 48)
    torch.testing.assert_close(enc(patches[0], centers[0]), enc(patches, centers)[0])
    with pytest.raises(ValueError, match="patches must be"):
        enc(torch.randn(3, 10, 16, 3), centers)
    with pytest.raises(ValueError, match="centers must be"):
        enc(patches, torch.randn(3, 9, 3))


def test_gradient_reaches_every_parameter_and_the_input(enc):
    patches = torch.randn(2, 5, 8, 6, requires_grad=True)
    centers = torch.randn(2, 5, 3, requires_grad=True)
    enc(patches, centers).pow(2).mean().backward()
    for name, p in enc.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert patches.grad.abs().sum() > 0 and centers.grad.abs().sum() > 0


def test_order_and_repeats_inside_a_patch_do_not_matter(enc):
    patches, centers = torch.randn(1, 4, 8, 6), torch.randn(1, 4, 3)
    shuffled = patches[:, :, torch.randperm(8)]
    repeated = torch.cat([patches, patches[:, :, :3]], dim=2)
    base = enc(patches, centers)
    torch.testing.assert_close(enc(shuffled, centers), base)
    torch.testing.assert_close(enc(repeated, centers), base)
    moved = enc(patches, centers + 1.0)
    assert not torch.allclose(moved, base)  # where a patch sits reaches its token


def test_mask_ignores_padding(enc):
    real, centers = torch.randn(1, 3, 5, 6), torch.randn(1, 3, 3)
    padded = torch.cat([real, torch.full((1, 3, 4, 6), 50.0)], dim=2)
    mask = torch.zeros(1, 3, 9, dtype=torch.bool)
    mask[..., :5] = True
    torch.testing.assert_close(enc(padded, centers, mask), enc(real, centers))
    empty = torch.zeros_like(mask)
    out = enc(padded, centers, empty)
    assert torch.isfinite(out).all()


def test_tokens_from_a_loaded_cloud_train():
    rng = np.random.default_rng(0)
    xyz = rng.uniform(0, 2, size=(2000, 3))
    cloud = load_point_cloud(np.c_[xyz, rng.uniform(0, 255, size=(2000, 3))], num_points=512,
                             normalize="unit_sphere")
    centers, patches = point_patches(cloud.points, 32, 16)
    torch.manual_seed(0)
    enc = PointPatchEncoder(hidden_size=32, in_channels=6, width=32, pos_width=32)
    head = torch.nn.Linear(32, 1)
    opt = torch.optim.Adam([*enc.parameters(), *head.parameters()], lr=3e-3)
    x, c = torch.from_numpy(patches)[None], torch.from_numpy(centers)[None]
    target = c[..., 2:3]  # learn each patch's height: only the position path can supply it
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(head(enc(x, c)), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]
