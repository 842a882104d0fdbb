# Two commands matter: `make run` and `make test`. Both bootstrap .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARGS ?=
PYTEST_ARGS ?=

.PHONY: run test unit lint proto bench bench-quick simulate clean wrk

# A .venv whose Python no longer runs (removed, upgraded) or is too old is removed here, with
# one line saying so, so that the rules below build it again. Checked as the Makefile is read:
# make has already looked at $(STAMP) by the time any recipe runs.
ifneq ($(filter-out clean,$(or $(MAKECMDGOALS),run)),)
ifneq ($(shell command -v $(PYTHON)),)
$(shell $(PYTHON) scripts/check_python.py --venv $(VENV) 1>&2)
endif
endif

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "lro-server: needs Python 3.11 or newer, and \
	$(PYTHON) was not found: install Python 3.11+ and run make with it, e.g. \
	make run PYTHON=python3.11" >&2; exit 1; }
	@$(PYTHON) scripts/check_python.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[server,test]'
	# DBOS for the durable benchmark (its smoke run is part of make test); the benchmark
	# says so and skips the DBOS column where it cannot be installed.
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[bench-dbos]' \
	  || echo "DBOS could not be installed: the durable benchmark runs without it" >&2
	touch $(STAMP)

## Start the server on the embedded SQLite store (gRPC :50051, HTTP :8080).
run: $(STAMP)
	$(BIN)/lro-server serve $(ARGS)

# checkov (tests/terraform) gets a virtualenv of its own: it ships an `hcl2` module that
# conflicts with python-hcl2. Where it cannot be installed its test skips, except in CI.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
CHECKOV_VERSION := 3.3.30

$(CHECKOV_STAMP):
	@if $(PYTHON) -m venv $(CHECKOV_VENV) \
	    && $(CHECKOV_VENV)/bin/python -m pip install --quiet checkov==$(CHECKOV_VERSION); then \
	  touch $@; \
	elif [ "$$CI" = true ]; then \
	  echo "checkov could not be installed" >&2; exit 1; \
	else \
	  echo "checkov could not be installed: its test in tests/terraform will skip" >&2; \
	  rm -rf $(CHECKOV_VENV); \
	fi

# The client extra's dependencies as wheels, for tests/integration/test_client_install.py:
# it installs `lro-server[client]` into a bare virtualenv offline (pip --no-index), so the
# wheels are fetched here, at setup time, like .venv's. Where they cannot be, that test
# skips, except in CI.
WHEELHOUSE := .wheelhouse
WHEELHOUSE_STAMP := $(WHEELHOUSE)/.built

$(WHEELHOUSE_STAMP): pyproject.toml constraints.txt | $(STAMP)
	@if $(BIN)/python -m pip wheel --quiet -c constraints.txt -w $(WHEELHOUSE) \
	    grpcio protobuf googleapis-common-protos google-api-core; then \
	  touch $@; \
	elif [ "$$CI" = true ]; then \
	  echo "the client wheelhouse could not be built" >&2; exit 1; \
	else \
	  echo "the client wheelhouse could not be built: test_client_install will skip" >&2; \
	fi

# wrk drives the HTTP load of the benchmarks (Debian package; no download at run time).
# Without it they fall back to a Python client and say so in their output.
wrk:
	@command -v wrk >/dev/null \
	  || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	       && apt-get install -y -q wrk >/dev/null 2>&1; } \
	  || echo "wrk is not installed: HTTP benchmarks use the Python client" >&2

## Lint, type-check, the unit tier (seconds: fake time, in-memory store), then the rest.
test: $(STAMP) $(CHECKOV_STAMP) $(WHEELHOUSE_STAMP) wrk lint unit
	$(BIN)/python -m pytest -n auto --dist loadfile --ignore=tests/unit $(PYTEST_ARGS)

## The unit tier alone: no server, no sleeps; stops at the first failure.
unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit -x -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check lro_server tests benchmarks scripts
	$(BIN)/ruff format --check lro_server tests benchmarks scripts
	$(BIN)/mypy

## Regenerate lro_server/_proto from protos/ (a test fails when they drift).
proto: $(STAMP)
	$(BIN)/python scripts/gen_protos.py

bench: $(STAMP) wrk
	$(BIN)/python -m benchmarks $(ARGS)

bench-quick: $(STAMP) wrk
	$(BIN)/python -m benchmarks --quick $(ARGS)

simulate: $(STAMP)
	$(BIN)/lro-server simulate-databricks --port 8765 $(ARGS)

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) $(WHEELHOUSE) .pytest_cache .mypy_cache .ruff_cache var/
