# Two-command quick start: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PREFIX ?= import os\ndef read_file(path):\n    with open(path) as f:\n        return f.

.PHONY: install install-test serve complete test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

## serve: the HTTP completion service on 127.0.0.1:8000 with the bundled default model
serve: $(VENV)/.installed
	$(BIN)/codelstm serve

## complete: complete PREFIX with the bundled default model, in the terminal
complete: $(VENV)/.installed
	$(BIN)/codelstm complete --prefix "$$(printf '$(PREFIX)')" -n 3

## test: the whole test suite
test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache
