"""lmms-eval's own evaluator runs a local ``multiple_choice`` task (lmms-eval's task format: YAML +
utils.py over a Parquet file with an image column) on the project's tiny base through the simple
``mmreason`` class (``--force_simple``: lmms-eval sends loglikelihood requests to simple models only).

The question is the one the tiny base was pretrained on ("Where is the red circle?" over 112-px shapes),
before the picture as it learned (the task's text places the picture with LLaVA's ``<image>``); the
choices are the true box and two wrong ones, written as the base writes boxes. Checked against a
direct forward pass of the model, built here with the checkpoint's own processor and chat template (not
through mmreason): every loglikelihood lmms-eval logged is minus the summed log-probability of that
choice's tokens after the prompt, its greedy flag is whether every choice token is the arg-max, and
lmms-eval's ``acc`` / ``acc_norm`` are those of the most likely choice (by sum; by sum per character).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lmms_tasks import BASE, evaluate, scene_docs, write_parquet

TASK = "mmreason_local_choices"

TASK_YAML = """\
task: {task}
dataset_path: parquet
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_visual: !function utils.doc_to_visual
doc_to_text: "{{{{question}}}}<image>"
doc_to_choice: !function utils.doc_to_choice
doc_to_target: gold
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
"""

TASK_UTILS = '''\
import json


def doc_to_visual(doc):
    return [doc["image"].convert("RGB")]


def doc_to_choice(doc):
    return json.loads(doc["choices"])
'''


def _box_text(box) -> str:
    return json.dumps({"bbox_2d": [round(v) for v in box]})


def choices_for(box: list[float], k: int) -> tuple[list[str], int]:
    """The true box among two wrong ones (shifted by a third of the picture), the true one at k % 3."""
    wrong = [[(v + 37 * (j + 1)) % 112 for v in box[:2]] + [(v + 37 * (j + 1)) % 112 + 1 for v in box[:2]]
             for j in range(2)]
    wrong = [[min(a, c), min(b, d), max(a, c) + 8, max(b, d) + 8] for a, b, c, d in wrong]
    texts = [_box_text(w) for w in wrong]
    texts.insert(k % 3, _box_text(box))
    return texts, k % 3


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    from mmreason.data_builders import get_builder

    out = tmp_path_factory.mktemp("lmms-choice-scenes") / "scenes"
    return get_builder("image_scenes")(out, n=3, seed=7, progress=False, preset="quickstart")


def write_task(scenes: Path, folder: Path) -> tuple[Path, list[dict]]:
    folder.mkdir()
    docs = []
    for k, scene in enumerate(scene_docs(scenes)):
        choices, gold = choices_for(scene["box"], k)
        docs.append({"id": scene["id"], "question": scene["question"], "image": scene["image"],
                     "choices": json.dumps(choices), "gold": gold})
    write_parquet(docs, folder / "mc.parquet")
    (folder / f"{TASK}.yaml").write_text(TASK_YAML.format(task=TASK, data=folder / "mc.parquet"))
    (folder / "utils.py").write_text(TASK_UTILS)
    return folder, docs


def direct_scores(question: str, image_path: str, choices: list[str]) -> list[tuple[float, bool]]:
    """(summed log-prob, greedy) of each choice after the prompt: the checkpoint's processor and chat
    template, one forward of the model on prompt + choice tokens."""
    import torch
    from mmreason.models import load
    from PIL import Image
    from transformers import AutoProcessor

    model, _ = load({"path": str(BASE), "dtype": "float32"})
    processor = AutoProcessor.from_pretrained(BASE)
    image = Image.open(image_path).convert("RGB")
    messages = [{"role": "user", "content": [{"type": "text", "text": question}, {"type": "image"}]}]
    prompt = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    inputs = processor(text=[prompt], images=[image], return_tensors="pt")
    out = []
    for choice in choices:
        cont = processor.tokenizer(choice, add_special_tokens=False, return_tensors="pt").input_ids
        ids = torch.cat([inputs["input_ids"], cont], dim=1)
        extra = {k: v for k, v in inputs.items() if k not in ("input_ids", "attention_mask")}
        if "mm_token_type_ids" in extra:
            extra["mm_token_type_ids"] = torch.cat([extra["mm_token_type_ids"], torch.zeros_like(cont)], dim=1)
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=torch.ones_like(ids), **extra).logits[0].float()
        n = inputs["input_ids"].shape[1]
        logp = torch.log_softmax(logits[n - 1:-1], dim=-1)
        picked = logp.gather(1, cont[0].unsqueeze(1)).squeeze(1)
        out.append((float(picked.sum()), bool((logp.argmax(-1) == cont[0]).all())))
    return out


def test_a_multiple_choice_task_is_scored_by_our_models_likelihoods(scenes, tmp_path, monkeypatch):
    monkeypatch.setenv("LMMS_EVAL_DATASETS_CACHE", str(tmp_path / "hf-datasets"))
    folder, docs = write_task(scenes, tmp_path / "tasks")
    results = evaluate(TASK, folder, f"pretrained={BASE}", force_simple=True)
    samples = sorted(results["samples"][TASK], key=lambda s: s["doc_id"])
    assert len(samples) == len(docs)
    acc, acc_norm = [], []
    for doc, sample in zip(docs, samples):
        choices = json.loads(doc["choices"])
        direct = direct_scores(doc["question"], doc["image"], choices)
        logged = [tuple(r[0]) for r in sample["resps"]]  # one (loglikelihood, is_greedy) per choice
        assert [ll for ll, _ in logged] == pytest.approx([-lp for lp, _ in direct], abs=1e-4)
        assert [g for _, g in logged] == [g for _, g in direct]
        best = max(range(len(choices)), key=lambda i: direct[i][0])
        best_norm = max(range(len(choices)), key=lambda i: direct[i][0] / len(choices[i]))
        acc.append(float(best == doc["gold"]))
        acc_norm.append(float(best_norm == doc["gold"]))
        assert (sample["acc"], sample["acc_norm"]) == (acc[-1], acc_norm[-1])
    assert results["results"][TASK]["acc,none"] == pytest.approx(sum(acc) / len(acc))
    assert results["results"][TASK]["acc_norm,none"] == pytest.approx(sum(acc_norm) / len(acc_norm))
    assert acc == [1.0] * len(docs)  # the base boxes shapes well: the true box is the likeliest choice
