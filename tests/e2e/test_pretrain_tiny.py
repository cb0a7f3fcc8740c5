"""`mmreason pretrain-tiny`: every stage runs as the user types it, a later stage continues its checkpoint,
the card lists every stage's command, the contrast stage asks about every shape of a scene, and wrong options
stop before any work."""

import json
import subprocess
import sys

import numpy as np
from safetensors.torch import load_file

from mmreason.train.pretrain_tiny import (BOX_PHRASINGS, NAME_LAST_PHRASINGS, _batch_rows, _scene,
                                          _scene_naming_row, scene_naming_turn,
                                          contrast_rows, pairs_rows)


def _run(*args, cwd):
    return subprocess.run([sys.executable, "-m", "mmreason", "pretrain-tiny", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600, env=None)


def test_base_then_bind_then_contrast_stage(tmp_path):
    first = _run("--out", "base", "--steps", "2", "--batch-size", "2", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    start = load_file(tmp_path / "base" / "model.safetensors")
    second = _run("--out", "bound", "--stage", "bind", "--init-from", "base", "--steps", "2", "--batch-size", "2",
                  "--vision-lr-scale", "10", cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-2000:]
    end = load_file(tmp_path / "bound" / "model.safetensors")
    # continued, not rebuilt: two small steps keep every weight close to where the first stage left it
    assert max(float((end[k] - start[k]).abs().max()) for k in start) < 0.05
    record = json.loads((tmp_path / "bound" / "pretrain.json").read_text())
    assert record["stage"] == "bind" and record["vision_lr_scale"] == 10
    assert [h["stage"] for h in record["history"]] == ["base"]
    card = (tmp_path / "bound" / "README.md").read_text()
    assert "1. `mmreason pretrain-tiny --out base --steps 2 --batch-size 2" in card
    assert "2. `mmreason pretrain-tiny --out bound --stage bind --init-from base --steps 2" in card
    assert "--vision-lr-scale 10`" in card
    third = _run("--out", "contrast", "--stage", "contrast", "--init-from", "bound", "--steps", "2",
                 "--batch-size", "3", cwd=tmp_path)
    assert third.returncode == 0, third.stderr[-2000:]
    record = json.loads((tmp_path / "contrast" / "pretrain.json").read_text())
    assert record["stage"] == "contrast" and [h["stage"] for h in record["history"]] == ["base", "bind"]
    card = (tmp_path / "contrast" / "README.md").read_text()
    assert "3. `mmreason pretrain-tiny --out contrast --stage contrast --init-from bound --steps 2" in card
    fourth = _run("--out", "pairs", "--stage", "pairs", "--init-from", "contrast", "--steps", "2",
                  "--batch-size", "4", "--naming-share", "0.5", cwd=tmp_path)
    assert fourth.returncode == 0, fourth.stderr[-2000:]
    record = json.loads((tmp_path / "pairs" / "pretrain.json").read_text())
    assert record["stage"] == "pairs" and [h["stage"] for h in record["history"]] == ["base", "bind", "contrast"]
    card = (tmp_path / "pairs" / "README.md").read_text()
    assert "4. `mmreason pretrain-tiny --out pairs --stage pairs --init-from contrast --steps 2" in card
    assert "--naming-share 0.5`" in card and record["naming_share"] == 0.5
    fifth = _run("--out", "heads", "--stage", "pairs", "--init-from", "pairs", "--steps", "2", "--batch-size", "4",
                 "--token-heads", "1", cwd=tmp_path)
    assert fifth.returncode == 0, fifth.stderr[-2000:]
    record = json.loads((tmp_path / "heads" / "pretrain.json").read_text())
    assert record["token_heads"] == 1 and 0 <= record["colour_read_last_100"] <= 1
    card = (tmp_path / "heads" / "README.md").read_text()
    assert "5. `mmreason pretrain-tiny --out heads --stage pairs --init-from pairs --steps 2" in card
    assert "--token-heads 1`" in card and "colour and kind" in card
    # the heads are training aids: the checkpoint holds the same tensors as one trained without them
    assert set(load_file(tmp_path / "heads" / "model.safetensors")) == set(load_file(tmp_path / "pairs" /
                                                                                      "model.safetensors"))


def _label(row, phrasings=BOX_PHRASINGS):
    text = row["messages"][0]["content"][0]["text"]
    for phrasing in phrasings:
        head, tail = phrasing.split("{}")
        if text.startswith(head) and text.endswith(tail):
            return text[len(head):len(text) - len(tail)]
    raise AssertionError(f"not one of the stage's phrasings: {text!r}")


def test_contrast_rows_ask_about_every_shape_of_one_scene():
    rng = np.random.default_rng(0)
    for frac, most in ((0.1, 2), (0.5, 3), (0.9, 4)):
        for _ in range(20):
            rows = contrast_rows(rng, frac)
            assert 2 <= len(rows) <= most
            images = [r["messages"][0]["content"][1]["image"] for r in rows]
            assert all(im is images[0] for im in images)  # one picture, asked once per shape
            labels = [_label(r) for r in rows]
            assert len(set(labels)) == len(rows)  # a different name in every row ...
            answers = [r["messages"][1]["content"][0]["text"] for r in rows]
            assert len(set(answers)) == len(rows)  # ... and box, in the family's grounding JSON
            assert all(a.startswith('{"bbox_2d": [') and a.endswith("]}") for a in answers)
            if frac < 0.4:  # first phase: two shapes of different colours
                assert len({label.split()[0] for label in labels}) == 2


def test_pairs_rows_include_scenes_one_word_alone_tells_apart():
    rng = np.random.default_rng(1)
    kinds = {"colour": 0, "shape": 0, "both": 0}
    for frac, most in ((0.1, 2), (0.5, 3), (0.9, 4)):
        for _ in range(60):
            rows = pairs_rows(rng, frac)
            assert 2 <= len(rows) <= most
            labels = [_label(r, NAME_LAST_PHRASINGS).split() for r in rows]
            assert all(r["messages"][0]["content"][0]["text"].split()[-1].rstrip(".?") == label[-1]
                       for r, label in zip(rows, labels))  # the name comes last
            assert len({tuple(label) for label in labels}) == len(rows)  # every shape named differently
            colours, shapes = {c for c, _ in labels}, {s for _, s in labels}
            if len(shapes) == 1:
                kinds["colour"] += 1  # only the colour word tells them apart
            elif len(colours) == 1:
                kinds["shape"] += 1
            else:
                kinds["both"] += 1
    # 40% / 30% / 30% by design (a "both" scene may fall into one of the others by chance)
    assert kinds["colour"] >= 50 and kinds["shape"] >= 35 and kinds["both"] >= 25, kinds
    batch = _batch_rows(rng, "pairs", 0.5, 16, naming_share=0.25)
    questions = [r["messages"][0]["content"][0]["text"] for r in batch]
    assert len(batch) == 16 and sum(q.startswith("What ") for q in questions) == 4  # a quarter names a lone shape


def test_scene_naming_rows_name_one_shape_of_a_scene_by_the_other_word():
    rng = np.random.default_rng(2)
    asked = {"colour": 0, "shape": 0}
    for _ in range(80):
        items = _scene(rng, (2, 4), 112).items
        turn = scene_naming_turn(rng, items)
        if turn is None:
            continue
        question, answer = turn
        if question.startswith("What colour is the "):
            asked["colour"] += 1
            kind = question[len("What colour is the "):-1]
            named = [it for it in items if it.name == kind]
            assert len(named) == 1 and named[0].color == answer  # the only shape of that kind, its colour
        else:
            asked["shape"] += 1
            colour = question[len("What shape is the "):-len(" one?")]
            named = [it for it in items if it.color == colour]
            assert len(named) == 1 and named[0].name == answer
    assert asked["colour"] >= 20 and asked["shape"] >= 20, asked
    row = _scene_naming_row(rng, 112)
    assert row["messages"][0]["content"][1]["type"] == "image" and len(row["messages"]) == 2
    batch = _batch_rows(rng, "pairs", 0.5, 16, naming_share=0.5, naming_kind="scene")
    questions = [r["messages"][0]["content"][0]["text"] for r in batch]
    assert sum(q.startswith("What ") and q != "What shape is it?" and "the shape?" not in q for q in questions) == 8


def test_token_labels_name_the_colour_drawn_in_each_cell():
    """A merged token's label is the colour the picture shows there: most of the cell's shape-coloured
    pixels are that colour (the heads learn from these labels, so a shifted grid would teach noise)."""
    from mmreason.data_builders.draw import COLORS as RGB
    from mmreason.train.pretrain_tiny import COLORS
    from mmreason.train.token_heads import token_labels

    rng = np.random.default_rng(3)
    checked = 0
    for _ in range(20):
        row = pairs_rows(rng, 0.9)[0]
        picture = np.asarray(row["messages"][0]["content"][1]["image"].convert("RGB")).astype(int)
        width, height = row["meta"]["size"]
        labels = token_labels(row["meta"]["shapes"], width, height, 4, 4, "color", COLORS)
        for k, label in enumerate(labels):
            if label == -100:
                continue
            r, c = divmod(k, 4)
            cell = picture[r * 28:(r + 1) * 28, c * 28:(c + 1) * 28].reshape(-1, 3)
            near = {name: int((np.abs(cell - RGB[name]).sum(1) < 40).sum()) for name in COLORS}
            assert max(near, key=near.get) == COLORS[label], (row["meta"], k, near)
            checked += 1
    assert checked > 40


def test_bind_without_a_checkpoint_is_refused(tmp_path):
    for args, message in ((["--stage", "bind"], "give --init-from"),
                          (["--stage", "contrast"], "give --init-from"),
                          (["--stage", "pairs"], "give --init-from"),
                          (["--init-from", "nowhere"], "--init-from goes with a later stage"),
                          (["--stage", "bind", "--init-from", "nowhere"], "no checkpoint there"),
                          (["--vision-lr-scale", "0"], "--vision-lr-scale must be > 0"),
                          (["--naming-share", "0.3"], "goes with --stage contrast or pairs"),
                          (["--naming-kind", "scene"], "give --naming-share too"),
                          (["--token-heads", "-1"], "--token-heads must be >= 0")):
        run = _run("--out", "x", "--steps", "2", *args, cwd=tmp_path)
        assert run.returncode == 2 and message in run.stderr, run.stderr[-1000:]
        assert "Traceback" not in run.stderr
    assert not (tmp_path / "x").exists()


def test_token_heads_read_colour_from_the_shipped_bases_vision_tokens():
    """The heads see the tokens in the order the labels are made: on the shipped base, whose merger carries
    colour, a colour head trained alone reads it far above chance within 40 steps; labels shuffled against the
    tokens stay near chance. A misaligned grid would fail the first half."""
    import torch

    from mmreason.models import load
    from mmreason.models.loading import shipped_base
    from mmreason.modalities.collate import Collator
    from mmreason.train.pretrain_tiny import COLORS, PRETRAIN_SHAPES
    from mmreason.train.token_heads import TokenHeads

    torch.manual_seed(0)
    model, processor = load(str(shipped_base("qwen2_5_vl")))
    collate = Collator(processor, "qwen2_5_vl", mode="train", return_meta=False)

    def train(shuffle: bool) -> float:
        heads = TokenHeads(model, COLORS, PRETRAIN_SHAPES)
        opt = torch.optim.Adam(heads.parameters(), lr=2e-2)
        rng, shuffler, read = np.random.default_rng(1), np.random.default_rng(2), []
        for _ in range(40):
            rows = [row for _ in range(3) for row in pairs_rows(rng, 0.9)][:8]
            if shuffle:  # each picture's labels paired with another picture's tokens
                metas = [r["meta"] for r in rows]
                rows = [{**r, "meta": metas[int(k)]} for r, k in zip(rows, shuffler.permutation(len(rows)))]
            batch = collate(rows)
            with torch.no_grad():
                model.model.visual(batch["pixel_values"], grid_thw=batch["image_grid_thw"])
            loss, accuracy = heads.loss(rows, batch["image_grid_thw"])
            loss.backward()
            opt.step()
            opt.zero_grad()
            read.append(accuracy["color"])
        return float(np.mean(read[-10:]))

    aligned, shuffled = train(False), train(True)
    # measured: 0.72 aligned, 0.26 shuffled (chance 0.17; a batch's colour mix still leaks into shuffled labels)
    assert aligned > 0.6 and shuffled < 0.4, (aligned, shuffled)
