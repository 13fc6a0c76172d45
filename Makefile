# Two commands do all the set-up: `make run` (the service on the embedded default) and
# `make test` (the whole suite against the PostgreSQL and Redis on this machine).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
URL    := http://$(HOST):$(PORT)

.PHONY: run test lint bench-ingest bench-worker bench-watch clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@ $(VENV)/.run

run: $(VENV)/.run
	@$(BIN)/payhook migrate
	@echo ""
	@echo "payhook is starting on $(URL) (SQLite file ./payhook.db, worker inside the web process)."
	@echo "1. In another terminal, get a merchant and a test key:"
	@echo "     $(BIN)/payhook merchants create \"My shop\""
	@echo "2. Create a checkout session with that key:"
	@echo "     curl -s -X POST $(URL)/v1/checkout/sessions -H 'Authorization: Bearer sk_test_...' -H 'Content-Type: application/json' -d '{\"amount\": 1999, \"currency\": \"usd\"}'"
	@echo "3. Pay it with a signed Stripe event (no Stripe account needed), then look at it again:"
	@echo "     $(BIN)/payhook trigger stripe --session cs_... --url $(URL)/webhooks/stripe"
	@echo "     curl -s $(URL)/v1/checkout/sessions/cs_... -H 'Authorization: Bearer sk_test_...'"
	@echo "API description: $(URL)/openapi.json   Stop with Ctrl-C."
	@echo ""
	@PAYHOOK_PUBLIC_BASE_URL=$${PAYHOOK_PUBLIC_BASE_URL:-$(URL)} exec $(BIN)/payhook serve --host $(HOST) --port $(PORT)

# Test-only tools from npm (package.json): anvil, the local Ethereum node of the on-chain tests,
# and solc, which rebuilt tests/fixtures/TestToken.json. Installed into node_modules (ignored).
node_modules/.installed: package.json package-lock.json
	npm install --no-audit --no-fund
	@touch $@

# The browser tests (tests/browser) drive Debian's Chromium through Playwright; Playwright's own
# browser download cannot reach its servers here, so the system's package is the browser.
CHROMIUM := /usr/bin/chromium

$(CHROMIUM):
	apt-get install -y chromium || (apt-get update && apt-get install -y chromium)

test: $(VENV)/.test node_modules/.installed $(CHROMIUM)
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(VENV)/.test
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache --no-logo

# Stripe webhook ingest vs a bare Starlette + raw asyncpg app, same run, same PostgreSQL
# (fresh databases, dropped at the end). Options: make bench-ingest BENCH_ARGS='--json'.
bench-ingest: $(VENV)/.test
	$(BIN)/python -m bench.ingest $(BENCH_ARGS)

# One arq worker process: paid sessions fully processed per second (invoice, key check, link,
# e-mail to a loopback SMTP inbox, signed delivery to a loopback endpoint) beside the ingest rate
# of one web process, then webhook-to-delivery latency at a steady rate. Starts its own
# redis-server; fresh database, dropped at the end. Options: BENCH_ARGS='--sessions 2000 --json'.
bench-worker: $(VENV)/.test
	$(BIN)/python -m bench.worker $(BENCH_ARGS)

# The chain watch's cost to the node: RPC calls per new block and per idle tick with 1, 1,000
# and 10,000 open sessions of each asset (anvil, a fresh PostgreSQL database, dropped at the
# end). It must not grow with the sessions. Options: BENCH_ARGS='--sizes 1,100 --json'.
bench-watch: $(VENV)/.test node_modules/.installed
	$(BIN)/python -m bench.watch $(BENCH_ARGS)

clean:
	rm -rf $(VENV) node_modules *.egg-info src/*.egg-info test-artifacts
