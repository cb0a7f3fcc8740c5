"""lmms-eval's own evaluator runs a local multi-round task (``output_type: generate_until_multi_round``,
written here in lmms-eval's task format: YAML + utils.py over a Parquet file with an image column) on the
project's tiny base through the ``mmreason`` model classes (`mmreason.eval.lmms_eval_model`).

The task follows lmms-eval's round protocol: its ``doc_to_text`` answers round 0 with the question and,
for round k, a tuple (visuals, text, terminal, round result, info) whose text quotes the model's answer of
round k-1; after three rounds it says terminal. Every prompt the task builds is written to a log file, so
the test reads what each round was asked and checks it against what the model answered the round before.
The score is the task's: the IoU of the last round's box with the ground truth, hand-computed here again.
The chat class (lmms-eval builds its round messages) and the simple one (``--force_simple``: we build
them from the task's text and visuals) see the same prompts, so they give the same rounds.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from lmms_tasks import BASE, iou, scene_docs, write_parquet
from lmms_tasks import evaluate as evaluate_task
from zoom_checkpoint import ZOOM, train_zoom_checkpoint

from mmreason.errors import RecipeError
from mmreason.schema import load_rows

TASK = "mmreason_local_rounds"
ROUNDS = 3

TASK_YAML = """\
task: {task}
dataset_path: parquet
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until_multi_round
doc_to_visual: !function utils.doc_to_visual
doc_to_text: !function utils.doc_to_text
doc_to_target: answer
generation_kwargs:
  max_new_tokens: {max_new_tokens}
  temperature: 0
process_results: !function utils.process_results
{messages}metric_list:
  - metric: final_iou
    aggregation: mean
    higher_is_better: true
  - metric: rounds
    aggregation: mean
    higher_is_better: true
"""

# rounds=None: never terminal (a task that would loop for ever)
TASK_UTILS = '''\
import json
import re

LOG = {log!r}
ROUNDS = {rounds!r}
QUOTE = {quote!r}


def _log(doc, round_idx, text, previous=None):
    with open(LOG, "a") as f:
        f.write(json.dumps({{"id": doc["id"], "round": round_idx, "prompt": text, "previous": previous}}) + "\\n")


def doc_to_visual(doc):
    return [doc["image"].convert("RGB")]


def doc_to_text(doc, lmms_eval_specific_kwargs=None, round_idx=None, previous_output=None,
                previous_round_info=None):
    if round_idx is None:
        _log(doc, 0, doc["question"])
        return doc["question"]
    if ROUNDS is not None and round_idx >= ROUNDS:
        return None, None, True, previous_output, previous_round_info
    text = doc["question"] + (" Your answer before: " + previous_output[-1] if QUOTE else "")
    _log(doc, round_idx, text, previous_output)
    return [doc["image"].convert("RGB")], text, False, previous_output, {{"asked": round_idx}}


def doc_to_messages(doc, lmms_eval_specific_kwargs=None, round_idx=None, previous_output=None,
                    previous_round_info=None):
    """The same rounds as chat messages, the question before the picture (as the tiny base learned)."""
    def turn(text):
        return [{{"role": "user", "content": [{{"type": "text", "text": text}},
                                             {{"type": "image", "url": doc["image"].convert("RGB")}}]}}]

    if round_idx is None:
        return turn(doc_to_text(doc))
    visuals, text, terminal, result, info = doc_to_text(doc, round_idx=round_idx, previous_output=previous_output,
                                                        previous_round_info=previous_round_info)
    return (None if terminal else turn(text)), terminal, result, info


def process_results(doc, results):
    rounds = results[0]
    found = re.search(r"\\[([^\\]]*)\\]", rounds[-1])
    try:
        box = [float(v) for v in found.group(1).split(",")] if found else []
    except ValueError:
        box = []
    gt = json.loads(doc["answer"])
    if len(box) != 4:
        return {{"final_iou": 0.0, "rounds": len(rounds)}}
    w = max(0.0, min(box[2], gt[2]) - max(box[0], gt[0]))
    h = max(0.0, min(box[3], gt[3]) - max(box[1], gt[1]))
    union = (box[2] - box[0]) * (box[3] - box[1]) + (gt[2] - gt[0]) * (gt[3] - gt[1]) - w * h
    return {{"final_iou": w * h / union if union > 0 else 0.0, "rounds": len(rounds)}}
'''


def _first_box(text: str) -> list[float] | None:
    """The first bracketed list of four numbers in `text` (how the task reads a box), else None."""
    found = re.search(r"\[([^\]]*)\]", text)
    try:
        box = [float(v) for v in found.group(1).split(",")] if found else []
    except ValueError:
        return None
    return box if len(box) == 4 else None


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    from mmreason.data_builders import get_builder

    out = tmp_path_factory.mktemp("lmms-round-scenes") / "scenes"
    return get_builder("image_scenes")(out, n=2, seed=4, progress=False, preset="quickstart")


def write_task(scenes: Path, folder: Path, rounds: int | None = ROUNDS, messages: bool = False,
               max_new_tokens: int = 24, quote: bool = True) -> Path:
    """The task folder (YAML + utils.py logging every prompt to folder/prompts.jsonl) over a Parquet file;
    `messages`: the YAML names ``doc_to_messages`` (else lmms-eval builds a chat class's round messages
    from ``doc_to_visual`` + ``doc_to_text``); `quote`: round k's text quotes round k-1's answer (else it
    is the question again; the log still records the outputs the task was handed)."""
    folder.mkdir()
    write_parquet([{"id": d["id"], "question": d["question"], "image": d["image"], "answer": json.dumps(d["box"])}
                   for d in scene_docs(scenes)], folder / "rounds.parquet")
    entry = "doc_to_messages: !function utils.doc_to_messages\n" if messages else ""
    (folder / f"{TASK}.yaml").write_text(TASK_YAML.format(task=TASK, data=folder / "rounds.parquet", messages=entry,
                                                          max_new_tokens=max_new_tokens))
    (folder / "utils.py").write_text(TASK_UTILS.format(log=str(folder / "prompts.jsonl"), rounds=rounds, quote=quote))
    return folder


def evaluate(task_folder: Path, model_args: str, force_simple: bool = False) -> dict:
    return evaluate_task(TASK, task_folder, model_args, force_simple=force_simple)


def _log(task_folder: Path) -> list[dict]:
    return [json.loads(line) for line in (task_folder / "prompts.jsonl").read_text().splitlines()]


def _prompts(task_folder: Path) -> dict[tuple[str, int], str]:
    """(doc id, round) -> its prompt. lmms-eval itself also calls ``doc_to_text`` for round 0 (to build the
    request's context), so a round-0 prompt may be logged more than once, always the same; a later round is
    asked by the model class only, once."""
    lines = _log(task_folder)
    prompts = {(p["id"], p["round"]): p["prompt"] for p in lines}
    later = [(p["id"], p["round"]) for p in lines if p["round"] > 0]
    assert len(later) == len(set(later))
    assert all(prompts[p["id"], p["round"]] == p["prompt"] for p in lines)
    return prompts


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMMS_EVAL_DATASETS_CACHE", str(tmp_path / "hf-datasets"))


def run_rounds(scenes: Path, folder: Path, force_simple: bool = False, messages: bool = False) -> dict:
    """lmms-eval runs the multi-round task; checked: every doc ran ROUNDS rounds, round k was asked with
    round k-1's answer in it, the task's scores are the IoUs of the last rounds' boxes and lmms-eval's
    aggregate their mean. Returns each doc's rounds."""
    rows = load_rows(scenes)
    write_task(scenes, folder, messages=messages)
    results = evaluate(folder, f"pretrained={BASE}", force_simple=force_simple)
    samples = sorted(results["samples"][TASK], key=lambda s: s["doc_id"])
    assert len(samples) == len(rows)
    prompts = _prompts(folder)
    assert sorted(prompts) == sorted((r["id"], k) for r in rows for k in range(ROUNDS))
    outputs = {}
    for row, sample in zip(rows, samples):
        ((rounds,),) = sample["resps"]
        assert isinstance(rounds, list) and len(rounds) == ROUNDS and all(isinstance(r, str) for r in rounds)
        for k in range(1, ROUNDS):  # round k was asked with round k-1's answer in it
            assert prompts[row["id"], k] == prompts[row["id"], 0] + " Your answer before: " + rounds[k - 1]
        outputs[row["id"]] = rounds
        assert sample["rounds"] == ROUNDS
        box = _first_box(rounds[-1])
        assert sample["final_iou"] == pytest.approx(iou(box, row["boxes"][0]["box"]) if box else 0.0)
    by_hand = [s["final_iou"] for s in samples]
    assert results["results"][TASK]["final_iou,none"] == pytest.approx(sum(by_hand) / len(by_hand))
    assert results["results"][TASK]["rounds,none"] == ROUNDS
    return outputs


def test_chat_and_simple_classes_run_a_doc_to_text_round_task_alike(scenes, tmp_path, cache):
    """The protocol as lmms-eval's own multi-round tasks write it (``doc_to_text`` with the round kwargs):
    the chat class gets messages lmms-eval builds from it, the simple class builds them from the same text
    and visuals; the same prompts, so the same rounds."""
    chat = run_rounds(scenes, tmp_path / "chat")
    simple = run_rounds(scenes, tmp_path / "simple", force_simple=True)
    assert chat == simple


def test_a_doc_to_messages_round_task_on_the_chat_class(scenes, tmp_path, cache):
    """A task whose ``doc_to_messages`` takes the round kwargs; its turns put the question before the
    picture, as the tiny base learned, so round 0 answers with a box."""
    outputs = run_rounds(scenes, tmp_path / "tasks", messages=True)
    assert all(rounds[0].startswith('{"bbox_2d": [') for rounds in outputs.values())


def test_a_task_that_never_says_stop_is_an_error_naming_it(scenes, tmp_path, cache):
    folder = write_task(scenes, tmp_path / "tasks", rounds=None)
    with pytest.raises(RecipeError, match=f"max_rounds=2 \\({TASK} doc 0, {TASK} doc 1\\)"):
        evaluate(folder, f"pretrained={BASE},max_rounds=2")
    # two rounds generated; the third the task asked for is where it stops
    assert sorted(_prompts(folder)) == sorted((r["id"], k) for r in load_rows(scenes) for k in (0, 1, 2))




@pytest.mark.slow
def test_every_round_runs_the_checkpoints_tools(tmp_path, cache):
    """SFT (50 steps, about 2 minutes on 2 shared cores) teaches the tiny base one zoom call under
    DeepEyes' prompt; in the multi-round task every round of the checkpoint goes through mmreason's tool
    loop: each round's response (``output=full``) holds the call and what the zoom tool returned, and the
    task is handed those whole responses. Each round asks the question again (a 50-step model answers
    nothing else sensibly)."""
    from mmreason.data_builders import get_builder

    train_zoom_checkpoint(tmp_path)

    small = get_builder("image_scenes")(tmp_path / "eval-scenes", n=2, seed=4, progress=False, preset="quickstart")
    # the question first, as it was trained; room for the call and the answer after the zoom
    folder = write_task(small, tmp_path / "tasks", messages=True, max_new_tokens=64, quote=False)
    results = evaluate(folder, f"pretrained={tmp_path / 'run' / 'final'},output=full,max_turns=2")
    handed = {(p["id"], p["round"]): p["previous"] for p in _log(folder) if p["round"]}
    for row, sample in zip(load_rows(small), sorted(results["samples"][TASK], key=lambda s: s["doc_id"])):
        ((rounds,),) = sample["resps"]
        assert len(rounds) == ROUNDS
        for k, response in enumerate(rounds):
            assert response.startswith(ZOOM), (k, response)
            assert "<tool_response>" in response and "Zoomed in on the region at [0, 0, 56, 56]." in response
            if k:
                assert handed[row["id"], k] == rounds[:k]
