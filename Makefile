# The two set-up commands of the README. Each creates .venv/ first when it is missing or stale.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: serve test test-fast bench

$(STAMP): pyproject.toml requirements-nodeps.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test,deploy]'
	$(VENV)/bin/pip install --quiet --no-deps -r requirements-nodeps.txt  # why: see the file
	touch $(STAMP)

serve: $(STAMP)  ## serve models.json on 127.0.0.1:8000 with embedded Ray
	$(VENV)/bin/runway-models serve

test: $(STAMP)  ## run every test, the slow ones (real Ray Serve, real models) included
	$(VENV)/bin/python -m pytest

test-fast: $(STAMP)  ## the inner loop: every test not marked slow (no Ray, no real model runs; about a minute)
	$(VENV)/bin/python -m pytest -m "not slow"

bench: $(STAMP)  ## raw vs served vs plain-uvicorn figures for YOLO
	$(VENV)/bin/python -m loadtest.bench --model yolo
