# Two commands for a new machine: `make run` opens the studio on a sample project; `make test` runs the tests.
SHELL := /bin/bash
export HF_HUB_OFFLINE := 1
PY := .venv/bin/python
SAMPLE := .sample-project

.PHONY: run test setup sample lint clean-sample

setup:
	@bash packaging/setup.sh

sample: setup
	@$(PY) -m faceparse.app.sample_project $(SAMPLE)

run: sample
	@$(PY) -m faceparse.app.gui.main $(SAMPLE)

test: setup
	@QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -p no:cacheprovider -n auto --maxprocesses 4; rc=$$?; [ $$rc -eq 5 ] && rc=0; exit $$rc

lint: setup
	@.venv/bin/ruff check .

clean-sample:
	rm -rf $(SAMPLE)
