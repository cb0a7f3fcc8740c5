"""`mmreason quickstart` end to end: every stage through the `mmreason` verbs, the report recomputed from
the saved eval samples, finished stages reused (smoke size here; the default run in the slow tier)."""

from __future__ import annotations

import json
import statistics

import pytest

from mmreason.quickstart import EVAL_STAGES
from mmreason.quickstart.pipeline import main
from mmreason.quickstart.results import COLUMNS, read_jsonl
from mmreason.schema import load_rows

VERBS = {"build_train": "build", "build_heldout": "build", "random_model": "tiny-model", "sft": "train",
         "grpo": "train", **{f"eval_{n}": "eval" for n in EVAL_STAGES}}


def _by_hand(out, name):
    """The report's numbers for one stage, recomputed here from samples.jsonl and the held-out rows."""
    counts = {r["id"]: len(r["meta"]["objects"]) for r in load_rows(out / "data" / "heldout")}
    samples = read_jsonl(out / "eval" / name / "samples.jsonl")
    multi = [s for s in samples if counts[s["id"]] > 1]
    wrong = [s["scores"]["wrong_object"] for s in multi if s["scores"]["wrong_object"] is not None]
    return {"n": len(samples),
            "format": statistics.fmean(s["scores"]["format"] or 0.0 for s in samples),
            "iou_multi": statistics.fmean(s["scores"]["miou"] or 0.0 for s in multi) if multi else None,
            "wrong_object": statistics.fmean(wrong) if wrong else None}


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("quickstart")
    assert main(["--out", str(out), "--smoke"]) == 0
    return out


def test_every_stage_ran_through_the_mmreason_verbs(smoke_run):
    record = json.loads((smoke_run / "stages.json").read_text())
    assert list(record["stages"]) == ["build_train", "build_heldout", "random_model", "eval_random", "eval_base",
                                      "sft", "eval_sft", "grpo", "eval_grpo"]
    for name, stage in record["stages"].items():
        assert stage["command"].startswith(f"mmreason {VERBS[name]} "), stage["command"]
        assert stage["seconds"] > 0 and stage["peak_rss_mb"] > 0
        assert (smoke_run / "logs" / f"{name}.log").stat().st_size > 0
    assert "quickstart/qwen2_5_vl_sft" in record["stages"]["sft"]["command"]
    assert f"model.path={smoke_run / 'sft' / 'final'}" in record["stages"]["grpo"]["command"]
    assert (smoke_run / "grpo" / "final" / "config.json").exists()


def test_report_numbers_are_recomputed_from_the_saved_samples(smoke_run):
    tables = json.loads((smoke_run / "tables.json").read_text())
    assert list(tables) == list(EVAL_STAGES)
    for name, row in tables.items():
        assert set(row) == set(COLUMNS)
        expected = _by_hand(smoke_run, name)
        assert row["n"] == expected["n"] == 8
        assert row["format"] == pytest.approx(expected["format"], abs=1e-4)
        for key in ("iou_multi", "wrong_object"):
            assert (row[key] is None) == (expected[key] is None)
            if row[key] is not None:
                assert row[key] == pytest.approx(expected[key], abs=1e-4)
    report = (smoke_run / "report.md").read_text()
    for label in ("random init", "pretrained base", "after SFT", "after GRPO"):
        assert label in report
    for png in ("curves.png", "iou_hist.png", "predictions.png"):
        assert (smoke_run / png).stat().st_size > 1000 and f"({png})" in report
    assert "mmreason demo grounded_chat --model" in report


def test_a_rerun_reuses_every_finished_stage(smoke_run, capsys):
    before = json.loads((smoke_run / "stages.json").read_text())
    assert main(["--out", str(smoke_run), "--smoke"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("reused") == len(before["stages"])
    assert json.loads((smoke_run / "stages.json").read_text())["stages"] == before["stages"]


def test_other_settings_in_the_same_folder_are_refused(smoke_run):
    with pytest.raises(SystemExit, match="seed: 0 there, 5 now"):
        main(["--out", str(smoke_run), "--smoke", "--seed", "5"])
    with pytest.raises(SystemExit, match="n_heldout: 8 there, 9 now"):
        main(["--out", str(smoke_run), "--n-heldout", "9"])


@pytest.mark.slow
def test_default_run_writes_a_complete_report(tmp_path):
    """The README's main command at its default size (minutes); the bars are measured, not asserted."""
    assert main(["--out", str(tmp_path)]) == 0
    tables = json.loads((tmp_path / "tables.json").read_text())
    assert list(tables) == list(EVAL_STAGES)
    assert all(row["n"] >= 200 for row in tables.values())
    assert all(row[c] is not None for row in tables.values() for c in ("format", "iou_one", "iou_multi"))


def test_a_misspelled_override_stops_before_any_stage(tmp_path):
    with pytest.raises(SystemExit, match="did you mean 'sft.lr'"):
        main(["--out", str(tmp_path / "q"), "--smoke", "--sft", "sft.lrr=1"])
    assert not (tmp_path / "q" / "data").exists() and not (tmp_path / "q" / "stages.json").exists()
