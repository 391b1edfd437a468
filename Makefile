# TownTip Commons: `make run` starts a whole node on the embedded default; `make test` runs the whole suite.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Every package's exact version and hashes (Python 3.11, Linux), made by `make lock` from pyproject.toml: a fresh
# clone installs what was tested, not whatever is newest that day.
LOCK   := requirements.lock
# The suite mostly waits (servers starting, browsers, timeouts): four workers on two cores (a clean clone's
# `make test`: 8 min with four, over 12 min with three); the tests that start whole nodes run on two of them,
# one at a time each (the xdist groups: tests/README.md).
TEST_WORKERS ?= 4

.PHONY: run test lint lock hooks bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The locked packages (hash-checked, no resolving), then the project itself on top without touching them; pip check
# fails when pyproject.toml asks for something the lock lacks (run `make lock`).
$(STAMP): pyproject.toml $(LOCK) | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m pip check || { echo "$(LOCK) does not match pyproject.toml: run make lock" >&2; exit 1; }
	touch $(STAMP)

# Resolve pyproject.toml (the base, test and dev extras) again; commit the result with the change that needed it.
# requirements-base.lock: the base alone at the same versions, for the image (deploy/Dockerfile).
LOCK_FLAGS := --python-version 3.11 --python-platform x86_64-unknown-linux-gnu --generate-hashes \
	--custom-compile-command "make lock" --quiet
lock: | $(BIN)/python
	$(BIN)/python -m pip install --quiet "$$(grep -o '^uv==[^ ]*' $(LOCK))"
	$(BIN)/uv pip compile pyproject.toml --extra test --extra dev $(LOCK_FLAGS) --output-file $(LOCK)
	$(BIN)/uv pip compile pyproject.toml --constraint $(LOCK) $(LOCK_FLAGS) --output-file requirements-base.lock

run: $(STAMP)
	$(BIN)/towntip node up $(ARGS)

# Lighthouse for the portal's browser test (tests/lighthouse/package-lock.json, from the npm registry); without npm,
# or if npm cannot install it, that test skips and says why.
LIGHTHOUSE := tests/lighthouse/node_modules/.installed
$(LIGHTHOUSE): tests/lighthouse/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --prefix tests/lighthouse --no-audit --no-fund --loglevel=error && touch $@ \
	  || echo "npm ci failed: the Lighthouse test will skip"; \
	else echo "npm not found: the Lighthouse test will skip"; fi

test: lint $(LIGHTHOUSE)
	$(BIN)/python -m pytest -q -ra -n $(TEST_WORKERS) --dist loadgroup --durations=15 $(PYTEST_ARGS)

# The checks before the tests (and in the git hooks, .pre-commit-config.yaml): style, the import layers
# ([tool.importlinter]), types ([tool.mypy]), and the migrations since the previous release only expanding
# (towntip/node/expand_contract.py, docs/operating.md "Upgrades").
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-logo
	$(BIN)/mypy
	$(BIN)/python -m towntip.node.expand_contract

# Run the same checks before each commit (pre-commit, from this venv's locked versions).
hooks: $(STAMP)
	$(BIN)/pre-commit install

bench: $(STAMP)
	$(BIN)/python -m bench.taps $(ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache
