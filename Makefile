# Two commands on a fresh machine (Python 3.11, pip, make, git):
#   make run   — create .venv, install, start the bot from settings.toml + environment
#   make test  — create .venv, install with test tools, run every test tier (no outside network)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run
	$(BIN)/python bot.py

test: $(VENV)/.installed-test lint
	$(BIN)/python -m pytest -q -p no:cacheprovider

lint: $(VENV)/.installed-test
	$(BIN)/ruff check bot plugins storage tests bench bot.py
	$(BIN)/mypy --strict bot/core

bench: $(VENV)/.installed-test
	$(BIN)/python bench/reminders.py
	$(BIN)/python bench/poll.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
