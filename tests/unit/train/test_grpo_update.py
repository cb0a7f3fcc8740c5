"""The GRPO update: gradient accumulation and zero-variance filtering change nothing but memory; the prompt
order is a pure function of (seed, position), split over processes."""

import pytest
import torch
from PIL import Image

from mmreason.config import load_recipe_dict
from mmreason.train.grpo import batch_indices


def test_each_epoch_visits_every_row_once_and_ranks_split_the_batch():
    n, batch = 5, 4
    seen = [i for pos in range(0, 20, batch) for i in batch_indices(pos, n, batch, seed=3)]
    for epoch in range(4):
        assert sorted(seen[epoch * n:(epoch + 1) * n]) == list(range(n))
    assert seen[:n] != list(range(n))  # shuffled
    whole = batch_indices(8, n, batch, seed=3)
    assert batch_indices(8, n, batch, seed=3, world=2, rank=0) + batch_indices(8, n, batch, seed=3, world=2, rank=1) == whole
    assert batch_indices(8, n, batch, seed=4) != whole or batch_indices(0, n, batch, seed=4) != seen[:batch]


@pytest.fixture(scope="module")
def setup(tiny_model_dir, tmp_path_factory):
    from mmreason.models import load
    from mmreason.rollout import RolloutConfig, rollout

    d = tmp_path_factory.mktemp("update")
    rows = []
    for i in range(2):
        Image.new("RGB", (56 * (i + 1), 56), (200, 40 * i, 40)).save(d / f"{i}.png")
        rows.append({"id": f"r{i}", "messages": [{"role": "user", "content": [
            {"type": "image", "image": str(d / f"{i}.png")}, {"type": "text", "text": "Colour?"}]}]})
    path = tiny_model_dir("qwen2_5_vl")
    model, proc = load(path)
    torch.manual_seed(0)
    trajs = rollout(model, proc, rows, "qwen2_5_vl", group_size=2,
                    config=RolloutConfig(max_new_tokens=6, max_completion_tokens=6, temperature=2.0))
    return str(path), proc, trajs


def updated(setup, agg="token_mean", grad_accum=1, keep=(True,) * 4, trajs=None, outcome=None, model=None,
            grpo=None, updates=1):
    """Trainable weights after `updates` plain-SGD steps (lr 1: the change is the gradient itself, so a
    mis-scaled micro-batch would show; Adam would normalise it away), and each step's metrics."""
    from accelerate import Accelerator

    from mmreason.train.model_setup import load_policy, load_reference
    from mmreason.train.grpo_step import StepContext, update

    path, proc, all_trajs = setup
    trajs = trajs or all_trajs
    lora = {"enabled": True, "r": 4, "alpha": 8, "dropout": 0.0}
    recipe = load_recipe_dict({"model": {"path": path, "lora": lora, **(model or {})},
                               "grpo": {"num_generations": 2, "batch_size": 2, "grad_accum": grad_accum,
                                        "loss_agg": agg, "max_completion_length": 6, "max_grad_norm": None,
                                        **(grpo or {})}})
    torch.manual_seed(1)  # the same LoRA initialisation every time
    policy, _ = load_policy(recipe, path)
    reference = load_reference(recipe, path) if recipe.grpo.beta and not recipe.model.lora.enabled else None
    acc = Accelerator(gradient_accumulation_steps=grad_accum, step_scheduler_with_optimizer=False, cpu=True)
    optimizer = torch.optim.SGD([p for p in policy.parameters() if p.requires_grad], lr=1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
    policy, optimizer = acc.prepare(policy, optimizer)
    ctx = StepContext(recipe, acc, policy, proc, None, optimizer, scheduler, None, {}, reference=reference)
    outcome = torch.tensor([1.0, -1.0, 0.5, -0.5])[:len(trajs)] if outcome is None else outcome
    metrics = [update(ctx, trajs, outcome, None, keep) for _ in range(updates)]
    weights = {n: p.detach().clone() for n, p in policy.named_parameters() if p.requires_grad}
    return weights, (metrics[0] if updates == 1 else metrics)


@pytest.mark.parametrize("agg", ["token_mean", "seq_mean", "dr_grpo"])
def test_gradient_accumulation_equals_one_big_batch(setup, agg):
    one, m1 = updated(setup, agg, 1)
    for k in (2, 4):
        split, mk = updated(setup, agg, k)
        assert all(torch.allclose(one[n], split[n], atol=1e-6) for n in one), (agg, k)
        assert mk["loss"] == pytest.approx(m1["loss"], abs=1e-6)
    base, _ = updated(setup, agg, 1, outcome=torch.zeros(4))
    assert any(not torch.equal(one[n], base[n]) for n in one)  # the step did move the adapter


def test_filtered_groups_leave_the_update_entirely(setup):
    _, _, trajs = setup
    filtered, _ = updated(setup, "token_mean", 2, keep=(True, True, False, False))
    alone, _ = updated(setup, "token_mean", 1, keep=(True, True), trajs=trajs[:2], outcome=torch.tensor([1.0, -1.0]))
    assert all(torch.allclose(filtered[n], alone[n], atol=1e-6) for n in filtered)


def test_gradient_checkpointing_changes_nothing_but_memory(setup):
    plain, m = updated(setup)
    checkpointed, mc = updated(setup, model={"gradient_checkpointing": True})
    assert all(torch.allclose(plain[n], checkpointed[n], atol=1e-6) for n in plain)
    assert mc["loss"] == pytest.approx(m["loss"], abs=1e-6)


@pytest.mark.parametrize("lora", [True, False], ids=["lora-adapter-off-reference", "full-copy-reference"])
def test_kl_to_the_reference_starts_at_zero_and_grows(setup, lora):
    model = {} if lora else {"lora": {"enabled": False}, "freeze_vision": True}
    _, (first, second) = updated(setup, model=model, grpo={"beta": 0.1}, updates=2)
    assert first["kl"] == pytest.approx(0.0, abs=1e-7)  # the policy is still the reference
    assert second["kl"] > 0


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen2_5_omni"])  # honours logits_to_keep / ignores it
def test_completion_log_probs_sit_one_position_before_each_token(tiny_model, family):
    from mmreason.rollout import RolloutConfig, collate_trajectories, model_inputs, rollout
    from mmreason.train.grpo_step import completion_logps

    model, proc = tiny_model(family)
    rows = [{"id": f"t{i}", "messages": [{"role": "user", "content": [{"type": "text", "text": "hi " * (i + 1)}]}]}
            for i in range(2)]  # prompts of different lengths: the completions start at different columns
    torch.manual_seed(0)
    trajs = rollout(model, proc, rows, family, group_size=2, config=RolloutConfig(max_new_tokens=5,
                                                                                 max_completion_tokens=5))
    batch = collate_trajectories(trajs, proc.tokenizer.pad_token_id)
    with torch.no_grad():
        got, _ = completion_logps(model, batch, temperature=0.7)
        logits = model(**model_inputs(batch)).logits / 0.7
    for b, t in enumerate(trajs):
        p = len(t.prompt_ids)
        for j, token in enumerate(t.completion_ids):
            expected = torch.log_softmax(logits[b, p + j - 1].float(), -1)[token]
            assert got[b, j] == pytest.approx(float(expected), abs=1e-4)


def test_num_iterations_takes_clipped_updates_against_the_sampling_policy(setup):
    once, m1 = updated(setup)
    twice, m2 = updated(setup, grpo={"num_iterations": 2})
    assert any(not torch.allclose(once[n], twice[n], atol=1e-6) for n in once)  # a second step was taken
    # the first pass is the sampling policy (ratio 1, nothing clipped); lr 1 SGD moves the second far enough
    # that the clip removes the gradient of some tokens, and the step reports it under TRL's names
    assert m1["clip_ratio/region_mean"] == 0.0 and m1["ratio"] == pytest.approx(1.0)
    assert m2["clip_ratio/region_mean"] > 0 and m2["ratio"] != pytest.approx(1.0)
    assert m2["clip_ratio/region_mean"] == pytest.approx(m2["clip_ratio/low_mean"] + m2["clip_ratio/high_mean"])
    # two plain updates differ from two clipped ones: the second pass reads the first pass's log-probs
    plain, _ = updated(setup, updates=2)
    assert any(not torch.allclose(plain[n], twice[n], atol=1e-6) for n in plain)


def test_num_iterations_scales_the_schedule_to_optimizer_steps():
    from mmreason.train.grpo import make_optimizer

    recipe = load_recipe_dict({"grpo": {"num_iterations": 3, "max_steps": 4, "warmup": 1, "scheduler": "linear"}})
    layer = torch.nn.Linear(2, 2)
    optimizer, scheduler = make_optimizer(layer, recipe)
    lrs = []
    for _ in range(12):
        lrs.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    assert lrs[0] == 0.0 and lrs[3] == pytest.approx(recipe.grpo.lr)  # warmup: one step = 3 optimizer steps
    assert lrs[-1] > 0 and scheduler.get_last_lr()[0] == 0.0  # decays to 0 over the 12 optimizer steps
