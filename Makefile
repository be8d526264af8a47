# The two set-up commands of the README:
#   make run    create .venv, install genrec, run the training flow on the bundled sample
#   make test   create .venv if needed, install genrec, run the whole test suite
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-stamp
# Two test processes (pytest-xdist), a test file per process: most of a test's time is waiting on
# servers and subprocesses. `make test PYTEST_ARGS=` runs them in one.
PYTEST_ARGS ?= -n 2 --dist loadfile

export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 90
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR ?= false

.PHONY: run test install contract clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/genrec run $(ARGS)

test: $(STAMP)
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

contract: $(STAMP)
	bash ../shared/contract-check.sh

clean:
	rm -rf $(VENV) .genrec
