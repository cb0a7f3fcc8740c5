import math

import pytest
import torch

from mmreason import rl


def test_grpo_advantage_hand_values():
    r = torch.tensor([1.0, 0.0, 1.0, 0.0, 2.0, 2.0, 2.0, 2.0])
    adv = rl.group_advantages(r, 4, eps=0.0)
    # group 1: mean .5, unbiased std sqrt(1/3) -> +-0.5/0.57735 = +-0.866025
    s = 0.5 / math.sqrt(1 / 3)
    assert torch.allclose(adv[:4], torch.tensor([s, -s, s, -s]), atol=1e-6)
    assert torch.all(adv[4:] == 0)  # zero-variance group


def test_dr_grpo_and_rloo_hand_values():
    r = torch.tensor([3.0, 1.0, 2.0])
    assert rl.group_advantages(r, 3, estimator="dr_grpo").tolist() == [1.0, -1.0, 0.0]
    # rloo: 3 - mean(1,2)=1.5 ; 1 - 2.5 = -1.5 ; 2 - 2 = 0
    assert torch.allclose(rl.group_advantages(r, 3, estimator="rloo"), torch.tensor([1.5, -1.5, 0.0]))


def test_group_size_must_divide():
    with pytest.raises(ValueError, match="groups of 3"):
        rl.group_advantages(torch.ones(4), 3)
    with pytest.raises(ValueError, match="unknown advantage"):
        rl.group_advantages(torch.ones(4), 2, estimator="ppo")


def test_batch_scaling_and_eps():
    r = torch.tensor([1.0, 0.0, 3.0, 3.0])
    adv = rl.group_advantages(r, 2, scale="batch", eps=0.0)
    std = torch.tensor([1.0, 0.0, 3.0, 3.0]).std()
    assert torch.allclose(adv, torch.tensor([0.5, -0.5, 0.0, 0.0]) / std)


def test_zero_variance_groups():
    r = torch.tensor([1.0, 1.0, 0.0, 1.0, 0.5, 0.5])
    assert rl.zero_variance_groups(r, 2).tolist() == [True, True, False, False, True, True]


def test_normalize_step_rewards_pools_the_group():
    steps = [[rl.StepSegment(0, 2, 1.0), rl.StepSegment(2, 4, 0.0)], [rl.StepSegment(0, 3, -1.0)]]
    out = rl.normalize_step_rewards(steps, 2, eps=0.0)
    # pooled values 1, 0, -1: mean 0, std 1
    assert [s.reward for s in out[0]] == pytest.approx([1.0, 0.0])
    assert out[1][0].reward == pytest.approx(-1.0)
    assert (out[0][0].start, out[0][0].end) == (0, 2)
    flat = rl.normalize_step_rewards([[rl.StepSegment(0, 1, 0.3)], [rl.StepSegment(0, 1, 0.3)]], 2)
    assert flat[0][0].reward == 0.0 and flat[1][0].reward == 0.0


def test_token_advantages_adds_steps_on_their_segments():
    adv = rl.token_advantages(torch.tensor([1.0, -1.0]), 5,
                              [[rl.StepSegment(0, 2, 0.5)], [rl.StepSegment(3, 9, -1.0)]], step_weight=2.0)
    assert adv.tolist() == [[2.0, 2.0, 1.0, 1.0, 1.0], [-1.0, -1.0, -1.0, -3.0, -3.0]]
    assert rl.token_advantages(torch.tensor([0.5]), 3).tolist() == [[0.5, 0.5, 0.5]]
    with pytest.raises(ValueError, match="step lists"):
        rl.token_advantages(torch.tensor([0.5]), 3, [[], []])


def test_kl_k3_hand_value_and_nonnegative():
    logp, ref = torch.tensor([-1.0]), torch.tensor([-2.0])
    # r = -1 -> exp(-1) + 1 - 1
    assert rl.kl_k3(logp, ref).item() == pytest.approx(math.exp(-1))
    x = torch.randn(100)
    assert torch.all(rl.kl_k3(x, torch.randn(100)) >= 0)
    assert rl.kl_k3(x, x).abs().max() == 0


def test_aggregations_hand_values():
    v = torch.tensor([[1.0, 2.0, 3.0], [4.0, 0.0, 0.0]])
    m = torch.tensor([[1, 1, 1], [1, 0, 0]])
    assert rl.aggregate(v, m, "token_mean").item() == pytest.approx(10 / 4)
    assert rl.aggregate(v, m, "seq_mean").item() == pytest.approx((2 + 4) / 2)
    assert rl.aggregate(v, m, "dr_grpo", max_len=5).item() == pytest.approx(10 / (2 * 5))
    assert rl.aggregate(v, m, "token_mean", num_tokens=8).item() == pytest.approx(10 / 8)
    with pytest.raises(ValueError):
        rl.aggregate(v, m, "sum")


def test_policy_loss_ratio_one_is_policy_gradient():
    logp = torch.tensor([[-1.0, -2.0]], requires_grad=True)
    out = rl.policy_loss(logp, logp.detach(), torch.tensor([2.0]), torch.ones(1, 2))
    assert out.loss.item() == pytest.approx(-2.0)
    out.loss.backward()
    # d/dlogp of -(exp(logp-old) A) averaged over 2 tokens = -A/2
    assert logp.grad.tolist() == [[-1.0, -1.0]]
    assert out.clip_fraction == 0.0 and out.ratio_mean == pytest.approx(1.0)


def test_policy_loss_clipping_asymmetric():
    old = torch.zeros(1, 3)
    logp = torch.log(torch.tensor([[1.5, 0.5, 1.1]]))
    adv = torch.tensor([[1.0, -1.0, 1.0]])
    out = rl.policy_loss(logp, old, adv, torch.ones(1, 3), epsilon=0.2, epsilon_high=0.28)
    # token0: ratio 1.5, A=1 -> min(1.5, 1.28) = 1.28 ; token1: ratio .5, A=-1 -> min(-.5, -.8) = -.8
    # token2: 1.1 within clip -> 1.1
    assert out.loss.item() == pytest.approx(-(1.28 - 0.8 + 1.1) / 3)
    assert out.clip_fraction == pytest.approx(2 / 3)


def test_policy_loss_with_kl_needs_reference():
    logp = torch.zeros(1, 2)
    with pytest.raises(ValueError, match="reference"):
        rl.policy_loss(logp, logp, torch.zeros(1), torch.ones(1, 2), beta=0.1)
    ref = torch.full((1, 2), -1.0)
    out = rl.policy_loss(logp, logp, torch.zeros(1), torch.ones(1, 2), beta=0.5, ref_logp=ref)
    assert out.loss.item() == pytest.approx(0.5 * math.exp(-1))
    assert out.kl == pytest.approx(math.exp(-1))


def test_token_log_probs_matches_log_softmax():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 7)
    ids = torch.randint(0, 7, (2, 3))
    ref = torch.log_softmax(logits, -1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)
    assert torch.allclose(rl.token_log_probs(logits, ids), ref, atol=1e-6)
    ent = rl.entropy_from_logits(torch.zeros(1, 1, 4))
    assert ent.item() == pytest.approx(math.log(4))
