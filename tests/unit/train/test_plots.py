"""`mmreason plot`: series read from RunLogger logs, torn lines skipped, overlaid runs, eval bars, the PNG."""

import json
import subprocess
import sys

import pytest
from PIL import Image

from mmreason import cli
from mmreason.train import plots
from mmreason.train.logging import METRICS_FILE, RunLogger


def _log(run_dir, records):
    """Write `records` ({step: metrics}) with the real RunLogger; returns what it wrote."""
    with RunLogger(run_dir, tensorboard=False) as log:
        return [log.log(step, metrics) for step, metrics in records.items()]


def _grpo_records(n, offset=0.0):
    return {s: {"loss": 0.1 * s + offset, "reward": 0.05 * s, "rewards/iou": 0.5 + s / 100,
                "rewards/iou/applicable": 1.0, "kl": 0.001 * s, "clip_fraction": 0.02,
                "lr": 1e-6, "tool_calls_per_trajectory": float(s % 3)} for s in range(1, n + 1)}


def _eval(out_dir, task, metrics):
    out_dir.mkdir(parents=True, exist_ok=True)
    data = {"task": task, "metrics": {k: {"mean": v, "n": 4} for k, v in metrics.items()}, "samples": 4}
    (out_dir / "results.json").write_text(json.dumps(data), encoding="utf-8")


def _lines(fig, metric, label):
    """The (x, y) of `label`'s visible lines in `metric`'s panel."""
    ax = next(a for a in fig.axes if a.get_title() == metric)
    return [(list(line.get_xdata()), list(line.get_ydata())) for line in ax.get_lines()
            if line.get_label() == label]


def test_load_series_equals_what_runlogger_wrote(tmp_path):
    written = _log(tmp_path, _grpo_records(5))
    series = plots.load_series(tmp_path)
    for key in ("loss", "reward", "rewards/iou", "kl", "tool_calls_per_trajectory"):
        assert series[key] == [(r["step"], r[key]) for r in written]
    assert "step" not in series


def test_missing_metrics_and_a_torn_last_line_are_skipped_with_a_warning(tmp_path):
    _log(tmp_path, {1: {"loss": 1.0, "reward": 0.2}, 2: {"loss": 0.8}, 3: {"loss": 0.5, "reward": 0.6}})
    path = tmp_path / METRICS_FILE
    with open(path, "a", encoding="utf-8") as fh:
        fh.write('{"step": 4, "loss": 0.')  # killed mid-write
    with pytest.warns(UserWarning, match=rf"{path} line 4: not valid JSON"):
        series = plots.load_series(tmp_path)
    assert series == {"loss": [(1, 1.0), (2, 0.8), (3, 0.5)], "reward": [(1, 0.2), (3, 0.6)]}


def test_records_without_a_step_are_skipped_and_a_repeated_step_keeps_its_last_value(tmp_path):
    path = tmp_path / METRICS_FILE
    path.write_text('{"step": 1, "kl": 0.5}\n[1, 2]\n{"loss": 3}\n{"step": 1, "kl": 0.25, "note": "x"}\n')
    with pytest.warns(UserWarning) as caught:
        assert plots.load_series(path) == {"kl": [(1, 0.25)]}
    assert [str(w.message).split(":")[0] for w in caught] == [f"{path} line 2", f"{path} line 3"]


def test_main_writes_a_png_of_the_expected_size_with_the_logged_values(tmp_path, capsys):
    written = _log(tmp_path / "grpo", _grpo_records(6))
    out = tmp_path / "figs" / "run.png"
    assert plots.main([str(tmp_path / "grpo"), "--out", str(out), "--metrics", "loss,rewards/*,kl"]) == 0
    assert f"wrote {out}: 4 metric(s)" in capsys.readouterr().out
    with Image.open(out) as im:
        assert im.format == "PNG"
        assert im.size == plots.figure_pixels(4) == (3 * plots.PANEL[0], 2 * plots.PANEL[1])
    runs = [plots.load_run(tmp_path / "grpo", "grpo")]
    fig = plots.draw(runs, ["loss", "rewards/iou", "rewards/iou/applicable", "kl"])
    assert _lines(fig, "kl", "grpo") == [([r["step"] for r in written], [r["kl"] for r in written])]


def test_two_runs_overlay_and_smoothing_keeps_the_raw_line_faint(tmp_path):
    _log(tmp_path / "a" / "run", _grpo_records(4))
    _log(tmp_path / "b" / "run", _grpo_records(3, offset=1.0))
    labels = plots.run_labels([tmp_path / "a" / "run", tmp_path / "b" / "run"])
    assert labels == ["a/run", "b/run"]
    runs = [plots.load_run(tmp_path / d / "run", lab) for d, lab in zip("ab", labels)]
    fig = plots.draw(runs, ["loss"], window=2)
    ax = fig.axes[0]
    raw = {line.get_label(): line for line in ax.get_lines() if line.get_label().startswith("_")}
    assert raw["_b/run raw"].get_alpha() < 0.5
    assert list(raw["_b/run raw"].get_ydata()) == pytest.approx([1.1, 1.2, 1.3])
    assert _lines(fig, "loss", "b/run")[0][1] == pytest.approx([1.1, 1.15, 1.25])
    assert _lines(fig, "loss", "a/run")[0] == ([1, 2, 3, 4], pytest.approx([0.1, 0.15, 0.25, 0.35]))
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["a/run", "b/run"]


def test_default_metrics_follow_grpo_names_and_sft_falls_back_to_trainer_names():
    grpo = plots.select_metrics(_grpo_records(1)[1])
    assert grpo == ["reward", "rewards/iou", "kl", "clip_fraction", "tool_calls_per_trajectory", "loss", "lr"]
    sft = plots.select_metrics(["loss", "learning_rate", "grad_norm", "epoch", "mean_token_accuracy"])
    assert sft == ["loss", "mean_token_accuracy", "grad_norm", "learning_rate"]
    assert plots.select_metrics(["custom/a", "epoch"]) == ["custom/a"]


def test_eval_results_become_a_bar_panel_per_task(tmp_path, capsys):
    _log(tmp_path / "sft", _grpo_records(3))
    _log(tmp_path / "rl", _grpo_records(3))
    _eval(tmp_path / "sft" / "eval" / "refcoco", "grounding", {"acc@0.5": 0.4, "miou": 0.35})
    _eval(tmp_path / "rl" / "eval" / "refcoco", "grounding", {"acc@0.5": 0.6, "miou": None})
    _eval(tmp_path / "rl" / "eval" / "vstar", "vstar", {"accuracy": 0.7})
    (tmp_path / "rl" / "eval" / "broken").mkdir()
    (tmp_path / "rl" / "eval" / "broken" / "results.json").write_text("{not json")
    out = tmp_path / "cmp.png"
    argv = [str(tmp_path / "sft"), str(tmp_path / "rl"), "--out", str(out), "--metrics", "reward"]
    assert plots.main(argv) == 0
    captured = capsys.readouterr()
    assert "and 2 eval task(s)" in captured.out
    assert f"{tmp_path / 'rl' / 'eval' / 'broken' / 'results.json'}: not an eval result" in captured.err
    with Image.open(out) as im:
        assert im.size == plots.figure_pixels(1, 2) == (2 * plots.PANEL[0], 2 * plots.PANEL[1])
    with pytest.warns(UserWarning, match="broken"):
        runs = [plots.load_run(tmp_path / d, d) for d in ("sft", "rl")]
    fig = plots.draw(runs, ["reward"])
    ax = next(a for a in fig.axes if a.get_title() == "eval: grounding")
    heights = {c.get_label(): [b.get_height() for b in c] for c in ax.containers}
    assert heights == {"sft": [0.4, 0.35], "rl": [0.6]}  # a metric with no mean has no bar
    assert [t.get_text() for t in ax.get_xticklabels()] == ["acc@0.5", "miou"]


def test_an_eval_only_folder_plots_its_bars(tmp_path):
    _eval(tmp_path / "eval", "vstar", {"accuracy": 0.5})
    assert plots.main([str(tmp_path / "eval")]) == 0
    with Image.open(tmp_path / "eval" / "plot.png") as im:
        assert im.size == plots.figure_pixels(0, 1) == plots.PANEL


@pytest.mark.parametrize("case", ["missing", "empty", "no_records"])
def test_nothing_to_plot_is_exit_2_naming_the_path(tmp_path, capsys, case):
    run = tmp_path / "run"
    if case != "missing":
        run.mkdir()
    if case == "no_records":
        (run / METRICS_FILE).write_text("")
    assert cli.main(["plot", str(run)]) == 2
    err = capsys.readouterr().err
    assert f"{run}: " in err and ("no such run directory" if case == "missing" else "nothing to plot") in err
    assert not (run / "plot.png").exists()


def test_bad_options_are_exit_2(tmp_path, capsys):
    _log(tmp_path, _grpo_records(2))
    assert plots.main([str(tmp_path), "--metrics", "rewardz"]) == 2
    assert "'rewardz' matches no metric" in capsys.readouterr().err
    assert plots.main([str(tmp_path), "--smooth", "0"]) == 2
    assert plots.main([str(tmp_path), "--labels", "a,b"]) == 2


def test_cli_verb_runs_in_a_fresh_process(tmp_path):
    _log(tmp_path, _grpo_records(3))
    out = tmp_path / "p.png"
    done = subprocess.run([sys.executable, "-m", "mmreason", "plot", str(tmp_path), "--out", str(out),
                           "--smooth", "2"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    with Image.open(out) as im:
        assert im.size == plots.figure_pixels(len(plots.select_metrics(_grpo_records(1)[1])))
