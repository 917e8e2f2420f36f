# orderdesk — every target creates .venv and installs on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
MOTO_PORT ?= 5000
STAMP := $(VENV)/.installed

.PHONY: install run test lint unit bench package token tick clean

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

install: $(STAMP)

run: install  ## start the local stack with demo data (Ctrl-C stops it)
	$(PY) -m infra.local.stack --port $(PORT) --moto-port $(MOTO_PORT)

test: install lint  ## the whole suite: lint, unit, integration, e2e, packaging checks
	$(PY) -m pytest

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

bench: install  ## benchmarks (not tests): print figures, compare ratios within one run
	$(PY) -m bench

token: install  ## print a bearer token for the running local stack: make token ID=alice GROUPS=customers
	@$(PY) -m infra.local.token --port "$(PORT)" --id "$(ID)" --groups "$(GROUPS)"

clean:
	rm -rf $(VENV) build .local .pytest_cache .ruff_cache .hypothesis
