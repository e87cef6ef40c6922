# Two commands on a fresh machine (Python 3.11, pip, make, git):
#   make run   — create .venv, install, start the bot from settings.toml + environment
#   make test  — create .venv, install with test tools, run every test tier (no outside network)
# Installs come from the lock files (exact versions with hashes, plain pip); `make lock` refreshes
# them from pyproject.toml, `make lock-upgrade` moves every pin to the newest allowed version.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LOCK := requirements.lock
TEST_LOCK := requirements-test.lock
# pip-compile runs in a venv of its own (inside .venv, so it is ignored and `make clean` removes
# it): the project's venv holds exactly what the lock lists.
PIP_TOOLS := pip-tools==7.6.2
LOCK_TOOLS := $(VENV)/lock-tools
COMPILE = CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_TOOLS)/bin/pip-compile --quiet \
	--generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links

.PHONY: run test lint bench clean lock lock-upgrade

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The project itself goes in without resolving again (--no-deps): the lock already holds every
# dependency. A changed lock or pyproject.toml reinstalls.
$(VENV)/.installed-run: $(LOCK) pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m pip check
	touch $@

$(VENV)/.installed-test: $(TEST_LOCK) $(LOCK) pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes -r $(TEST_LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m pip check
	touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run
	$(BIN)/python bot.py

test: $(VENV)/.installed-test lint
	$(BIN)/python -m pytest -q -p no:cacheprovider

lint: $(VENV)/.installed-test
	$(BIN)/ruff check bot plugins storage tests bench bot.py
	$(BIN)/mypy --strict bot storage plugins

bench: $(VENV)/.installed-test
	$(BIN)/python bench/reminders.py
	$(BIN)/python bench/poll.py
	$(BIN)/python bench/scale.py

$(LOCK_TOOLS)/bin/pip-compile:
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11) and "make lock: needs Python 3.11 (as CI and the image); try PYTHON=python3.11")'
	$(PYTHON) -m venv $(LOCK_TOOLS)
	$(LOCK_TOOLS)/bin/python -m pip install --quiet '$(PIP_TOOLS)'

# Runtime lock first; the test lock is constrained by it, so both pin the same runtime versions.
# Existing pins are kept where pyproject.toml still allows them (pip-compile's default).
lock: | $(LOCK_TOOLS)/bin/pip-compile
	$(COMPILE) $(LOCK_FLAGS) --output-file=$(LOCK) pyproject.toml
	$(COMPILE) $(LOCK_FLAGS) --extra=test --constraint=$(LOCK) --output-file=$(TEST_LOCK) pyproject.toml

lock-upgrade:
	$(MAKE) lock LOCK_FLAGS=--upgrade

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
