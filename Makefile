# orderdesk — every target creates .venv and installs on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
MOTO_PORT ?= 5000
STAMP := $(VENV)/.installed
# make test: the local stack's tests on one worker, the in-process tests beside them (tests/conftest.py).
TEST_WORKERS ?= 2

# Browser tests drive Debian's Chromium (no browser is ever downloaded) with CJK fonts.
CHROMIUM ?= /usr/bin/chromium

.PHONY: install browser-deps run test lint unit bench package publish-web token tick clean check-stock redrive fast-forward history replay-outbox

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade "pip<26.3"  # chalice 1.34 needs pip < 26.3
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

install: $(STAMP) browser-deps

browser-deps:  ## Debian's chromium and fonts-noto-cjk for the browser tests, when missing (as root)
	@missing=""; test -x $(CHROMIUM) || missing="chromium"; \
	fc-list 2>/dev/null | grep -qi "Noto Sans CJK" || missing="$$missing fonts-noto-cjk"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing$$missing (apt-get)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "browser tests are skipped until: sudo apt-get install$$missing" >&2; fi; \
	fi

run: install  ## start the local stack with demo data (Ctrl-C stops it; CONTENTION=1: DynamoDB conflicts and throttling)
	$(PY) -m infra.local.stack --port $(PORT) --moto-port $(MOTO_PORT) $(if $(filter-out 0,$(CONTENTION)),--contention)

test: install lint  ## the whole suite: lint, unit, integration, e2e, packaging checks
	$(PY) -m pytest -n $(TEST_WORKERS)

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

bench: install  ## benchmarks (not tests): print figures, compare ratios within one run
	$(PY) -m bench

package: install  ## chalice package with infra/resources.yaml merged, then cfn-lint: make package [STAGE=prod]
	$(PY) -m infra.package --stage $(or $(STAGE),dev) --out build/package --lint

publish-web: install  ## after a deploy: config.json from the stack's outputs, web/ to its bucket: make publish-web STAGE=prod
	$(PY) -m infra.web_config --stage $(or $(STAGE),dev)

token: install  ## print a bearer token for the running local stack: make token ID=alice GROUPS=customers
	@$(PY) -m infra.local.token --port "$(PORT)" --id "$(ID)" --groups "$(GROUPS)"

tick: install  ## run a schedule handler once against the running stack: make tick JOB=analytics [DATE=2026-11-24] [AT=2026-11-24T12:00:00Z]
	@test -n "$(JOB)" || { echo "usage: make tick JOB=<schedule handler> [DATE=YYYY-MM-DD] [AT=<ISO time>] [PORT=8000]" >&2; exit 2; }
	@$(PY) -m infra.local.tick --port $(PORT) $(JOB) $(if $(DATE),--date $(DATE)) $(if $(AT),--at $(AT))

replay-outbox: install  ## forward again every outbox event not yet forwarded (the sweep, for everything up to now)
	@$(PY) -m infra.local.tick --port $(PORT) sweep_outbox --at "$$($(PY) -c 'from datetime import UTC, datetime, timedelta; print((datetime.now(UTC) + timedelta(minutes=5)).isoformat())')"

history: install  ## simulated orders on the running stack: today over HTTP, the DAYS before with an injected clock: make history DAYS=7
	@$(PY) -m infra.local.history --port $(PORT) --days $(or $(DAYS),7)

redrive: install  ## move dead letters back to their queue after a fix: make redrive QUEUE=fulfilment
	@test -n "$(QUEUE)" || { echo "usage: make redrive QUEUE=<queue name> [PORT=8000]" >&2; exit 2; }
	@$(PY) -m infra.local.redrive --port $(PORT) $(QUEUE)

email-feedback: install  ## the running stack hears that email to an address bounced: make email-feedback TO=a@example.com [KIND=bounce|soft-bounce|complaint]
	@test -n "$(TO)" || { echo "usage: make email-feedback TO=<address> [KIND=bounce|soft-bounce|complaint] [PORT=8000]" >&2; exit 2; }
	@$(PY) -m infra.local.email_feedback --port $(PORT) $(TO) $(if $(KIND),--kind $(KIND))

fast-forward: install  ## the emulated carrier delivers every parcel of the running stack now
	@$(PY) -m infra.local.fast_forward --port $(PORT)

check-stock: install  ## prove the running stack's stock: on_hand = its ledger, reserved = open reservations
	$(PY) -m infra.local.check_stock --port $(PORT)

clean:
	rm -rf $(VENV) build .local .pytest_cache .ruff_cache .hypothesis .chalice/deployments
