"""GS-Reasoner's three stages at debug size on CPU, chained as shipped: a tiny Qwen2.5-VL with a fresh spatial
adapter trains grounding SFT on builder rooms (posed RGB-D frames), then GCoT SFT from that output, writes a
trace that parses, and runs GRPO with the GS-Reasoner reward from the stage-2 model."""

import pytest
import torch

from mmreason.train.logging import read_jsonl

# minutes on a busy 2-core machine; the fast versions of these checks are tests/unit/models/test_spatial_model.py
pytestmark = pytest.mark.slow

SMALL = dict(width=32, heads=2, points_per_patch=8, scene_points=512)


def _losses(out):
    return [r["loss"] for r in read_jsonl(out / "metrics.jsonl") if "loss" in r]


@pytest.fixture(scope="module")
def stages(tiny_model_dir, tmp_path_factory):
    from mmreason.models.spatial.qwen import init_checkpoint
    from mmreason.train import sft

    root = tmp_path_factory.mktemp("gs_reasoner")
    init = init_checkpoint(tiny_model_dir("qwen2_5_vl"), root / "init", **SMALL)
    assert sft.main(["gs_reasoner/tiny_stage1_sft", f"model.path={init}", f"output_dir={root / 's1'}"]) == 0
    assert sft.main(["gs_reasoner/tiny_sft", f"model.path={root / 's1' / 'final'}",
                     f"output_dir={root / 's2'}"]) == 0
    return root


def test_both_sft_stages_train_the_adapter_and_save_it(stages):
    from mmreason.models import load

    for stage in ("s1", "s2"):
        losses = _losses(stages / stage)
        assert len(losses) == 2 and all(loss == loss for loss in losses)
    init, _ = load(stages / "init")
    s1, _ = load(stages / "s1" / "final")
    s2, _ = load(stages / "s2" / "final")
    for name, p in init.spatial.named_parameters():
        # stage 1 trained every adapter weight
        assert not torch.equal(p, s1.spatial.get_parameter(name)), name
    assert any(not torch.equal(p, s2.spatial.get_parameter(n)) for n, p in s1.spatial.named_parameters())


def test_the_stage2_model_writes_a_trace_that_parses(stages, tmp_path, caplog):
    from mmreason.data_builders.scenes_3d import build
    from mmreason.modalities.collate import Collator
    from mmreason.models import load
    from mmreason.models.spatial import with_spatial_inputs
    from mmreason.schema import dataset_root, load_rows, resolve_media
    from mmreason.traces import parse

    out = build(tmp_path / "ds", n=1, seed=5, qtypes=["grounding_3d"], rgbd=True, views=2, num_points=8000,
                view_size=[112, 84], trace="none", progress=False)
    rows = [resolve_media(r, dataset_root(out)) for r in load_rows(out)]
    model, processor = load(stages / "s2" / "final")
    plain = Collator(processor, "qwen2_5_vl", mode="generate", return_meta=False)
    collate = with_spatial_inputs(model, plain)
    batch = collate(rows)
    assert "spatial_points" in batch
    model.eval()
    with torch.no_grad():
        ids = model.generate(**batch, max_new_tokens=24, do_sample=False)
    text = processor.batch_decode(ids[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)[0]
    trace = parse(text)  # a tiny model writes little GCoT yet; its text must read without a parser error
    assert not [i for i in trace.issues if i.startswith("parser error")]
    assert "without spatial inputs" not in caplog.text  # the points reached the image tokens


def test_grpo_stage_runs_with_the_gs_reasoner_reward(stages):
    from mmreason.train import grpo

    out = stages / "s3"
    start = stages / "s2" / "final"
    assert grpo.main(["gs_reasoner/tiny_grpo", f"model.path={start}", f"output_dir={out}"]) == 0
    logs = read_jsonl(out / "metrics.jsonl")
    assert [r["step"] for r in logs] == [1, 2]
    assert all("rewards/gs_reasoner" in r for r in logs)
    assert (out / "final" / "config.json").is_file()
