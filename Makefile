# Thin wrappers over the README's commands.
PY := .venv/bin/python

.venv/done: requirements.txt
	python3.11 -m venv .venv && .venv/bin/pip install -r requirements.txt && touch .venv/done

setup: .venv/done
run: setup
	$(PY) experiments/run.py
test: setup
	$(PY) -m pytest
test-slow: setup
	$(PY) -m pytest -m slow
# the repeated races alone (20 x two concurrent runs; about 6 minutes on a busy 2-core CPU)
test-stress: setup
	$(PY) -m pytest -m stress
lint: setup
	$(PY) -m ruff check . && $(PY) -m ruff format --check .
# every results table and benchmark, from the data in $WNET_DATA (hours on a 2-core CPU; docs/reproducing.md)
reproduce: setup
	$(PY) experiments/reproduce.py
reproduce-check: setup
	$(PY) experiments/reproduce.py --check
.PHONY: setup run test test-slow test-stress lint reproduce reproduce-check
