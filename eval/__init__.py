"""Evaluation (`import mmreason.eval`): benchmark tasks, metrics, the `mmreason eval` runner, score plots.

- `tasks`: the task table (`TASKS`): which rows a benchmark takes, its pinned prompt, settings, metrics;
- `metrics`: the few metrics the reward library does not have, in the reward signature, and `summarize`;
- `runner`: `mmreason eval`: generate with a model (or re-score saved outputs), score, write the results;
- `plots`: eval results read back and drawn as bars (under the training curves of `mmreason plot`).

This package imports the core (`mmreason.*`) and `mmreason.models`, never `mmreason.train`: training may
validate with it, not the other way round.
"""
