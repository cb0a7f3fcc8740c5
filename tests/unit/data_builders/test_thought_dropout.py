"""TON's thought dropout: the requested share of empty thoughts comes out, exactly and the same per seed,
in one run or in shards, from procedural scenes or from a built dataset; every target keeps TON's layout."""

import pytest

from mmreason import schema
from mmreason.data_builders import image_scenes, thought_dropout
from mmreason.data_builders.thought_dropout import dropped_indices
from mmreason.rewards import bind_reward

SCENES = {"qtypes": ["color", "count"]}  # small canvases: fast to draw
EMPTY = "<think>\n\n</think>"


def targets(out):
    rows = schema.load_rows(out)
    return {r["id"]: (schema.text_of(r["messages"][-1]), r["meta"]["thought_dropped"]) for r in rows}


@pytest.mark.parametrize("n,p", [(10, 0.5), (7, 0.3), (64, 0.25), (5, 0.0), (5, 1.0)])
def test_the_drop_set_has_the_requested_size_and_depends_only_on_the_seed(n, p):
    picked = dropped_indices(n, p, seed=3)
    assert len(picked) == round(p * n) and picked <= set(range(n))
    assert picked == dropped_indices(n, p, seed=3)
    if 0 < len(picked) < n and n > 6:
        assert any(dropped_indices(n, p, seed=s) != picked for s in (4, 5, 6))


def test_scenes_build_gives_exactly_the_share_and_ton_format(tmp_path):
    out = thought_dropout.build(tmp_path / "a", n=10, seed=1, chunk_size=4, progress=False, p=0.3, scenes=SCENES)
    got = targets(out)
    empty = [i for i, (text, dropped) in got.items() if dropped]
    assert len(got) == 10 and len(empty) == 3
    for text, dropped in got.values():
        assert text.startswith(EMPTY) == dropped
        assert "<rethink>" not in text and text.endswith("</answer>")
    ton_format = bind_reward("ton_format")
    assert ton_format([text for text, _ in got.values()]) == [1.0] * 10
    kept = [text for text, dropped in got.values() if not dropped]
    assert all('"bbox_2d"' in t for t in kept)  # GRIT's grounded thinking survives where it is kept

    # the same seed in two shards gives the same rows and the same drop set; another seed another set
    for i in range(2):
        thought_dropout.build(tmp_path / "b", n=10, seed=1, chunk_size=4, shard=(i, 2), progress=False, p=0.3,
                              scenes=SCENES)
    assert targets(tmp_path / "b") == got
    other = targets(thought_dropout.build(tmp_path / "c", n=10, seed=2, chunk_size=4, progress=False, p=0.3,
                                          scenes=SCENES))
    assert sum(d for _, d in other.values()) == 3
    assert sorted(other) == sorted(got) and [d for _, d in other.values()] != [d for _, d in got.values()]


def test_a_built_dataset_is_the_source_and_rows_without_thought_are_skipped(tmp_path):
    src = image_scenes.build(tmp_path / "src", n=6, seed=0, progress=False, qtypes=["color"], trace="grit")
    out = thought_dropout.build(tmp_path / "all", n=0, progress=False, src=str(src), p=1.0)
    rows = schema.load_rows(out)
    assert len(rows) == 6 and all(schema.text_of(r["messages"][-1]).startswith(EMPTY) for r in rows)
    assert all((out / schema.images_of(r)[0]).is_file() for r in rows)  # media linked in

    bare = image_scenes.build(tmp_path / "bare", n=3, seed=0, progress=False, qtypes=["color"], trace="answer")
    none = thought_dropout.build(tmp_path / "none", n=0, progress=False, src=str(bare), p=0.5)
    manifest = (none / "manifest.json").read_text()
    assert '"rows": 0' in manifest and '"skipped": 3' in manifest


@pytest.mark.parametrize("options,word", [({"p": 1.5}, "p is the share"), ({"p": "half"}, "p is the share"),
                                          ({"src": "/nonexistent/data"}, "does not exist"),
                                          ({"scenes": {"qtypes": ["nope"]}}, "qtypes"),
                                          ({"drop": 0.5}, "unknown option")])
def test_bad_options_fail_before_any_row_naming_the_option(tmp_path, options, word):
    with pytest.raises(ValueError, match=word):
        thought_dropout.build(tmp_path / "x", n=4, progress=False, **options)
    assert not (tmp_path / "x").exists()
