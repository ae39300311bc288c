# ruledger: `make run` sets up and runs the sample clients; `make test` runs the tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
OUT    ?= out
STATE  ?= state

.PHONY: run test bench bench-nights bytecode browser lint schemas clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

# The engine's bytecode, written ahead: a shell with PYTHONDONTWRITEBYTECODE set (some
# CI images and sandboxes) would otherwise compile the whole engine again at every
# `ruledger` start (0.12 s of each run). Files already compiled are skipped.
bytecode: $(STAMP)
	@$(BIN)/python -m compileall -q engine

# Every shipped client over its sample nights, in date order. A second `make run`
# finds every night already posted and changes nothing (exit 0).
run: $(STAMP) bytecode
	@set -e; for rules in rules/*/; do \
	  client=$$(basename $$rules); \
	  for night in $$(ls -d samples/$$client/*/ 2>/dev/null | sort); do \
	    $(BIN)/ruledger run $$rules --drop $$night --state $(STATE)/$$client.duckdb --out $(OUT); \
	  done; \
	done

test: $(STAMP) bytecode browser lint
	$(BIN)/python -m pytest

# The exception report is tested in Debian's headless chromium: installed here when
# missing and possible (root, apt); otherwise that one test skips and says why.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1; } \
	  || echo "chromium is not available: the browser test of exceptions.html will be skipped"

# ruledger on generated drops (samples/generate.py) next to an I/O floor; see the README.
BENCH_SIZES ?= 100000,1000000
BENCH_REPEAT ?= 3
bench: $(STAMP) bytecode
	$(BIN)/python samples/bench.py --sizes $(BENCH_SIZES) --repeat $(BENCH_REPEAT)

# One client night after night on one state file, a night every 12 days (a year at 30
# nights): is night 30 slower than night 1 by more than its open items? samples/bench_history.py
BENCH_NIGHTS_SIZE ?= 20000
BENCH_NIGHTS ?= 30
bench-nights: $(STAMP) bytecode
	$(BIN)/python samples/bench_history.py --size $(BENCH_NIGHTS_SIZE) --nights $(BENCH_NIGHTS)

lint: $(STAMP)
	$(BIN)/ruff check engine tests

# Rewrite schemas/tables/*.json from engine/tables.py (a test keeps them in step).
schemas: $(STAMP)
	$(BIN)/python -m engine.tables schemas/tables

clean:
	rm -rf $(OUT) $(STATE)
