# Set-up and everyday commands. Each target creates .venv when missing, installs
# torch==2.13.0 first when no torch is importable (the CPU build kept on this machine kind),
# then the package with its test extras.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install demo test test-slow bench docs lint clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

install: $(STAMP)

## the main job: a demo training on a bundled dataset, printing metrics
demo: $(STAMP)
	$(VENV)/bin/physicsml-like demo

## the test suite run by CI (.ci/run)
test: $(STAMP)
	$(PY) -m pytest

## long trainings to an accuracy and large-scale checks (not in CI)
test-slow: $(STAMP)
	$(PY) -m pytest -m slow

bench: $(STAMP)
	$(PY) benchmarks/data_pipeline.py
	$(PY) benchmarks/families.py

docs: $(STAMP)
	DOCS_EXECUTE_NOTEBOOKS=true $(VENV)/bin/mkdocs build --strict

lint: $(STAMP)
	$(PY) -m pip install --quiet ruff mypy
	$(PY) -m ruff check physicsml_like tests benchmarks scripts
	$(PY) -m mypy physicsml_like

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
