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
	for b in benchmarks/*.py; do .venv/bin/python $$b || exit 1; done
