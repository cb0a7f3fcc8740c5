# The two commands of the README. Both run scripts/setup.sh first (idempotent).
.PHONY: setup quickstart test test-slow bench

setup:
	./scripts/setup.sh

quickstart: setup
	.venv/bin/mmreason quickstart

test: setup
	.venv/bin/python -m pytest -q -p no:cacheprovider

test-slow: setup
	.venv/bin/python -m pytest -q -m slow

bench: setup
	# the speed benchmarks; learning.py, gs_reasoner_spatial.py (learning runs, long) and probe_vision.py are run by name;
	# markdown_sections.py is the benchmarks' shared RESULTS.md writer, not a benchmark
	for b in benchmarks/*.py; do case $$b in */learning*|*/probe_vision.py|*/gs_reasoner_spatial.py|*/markdown_sections.py) continue;; esac; .venv/bin/python $$b || exit 1; done
