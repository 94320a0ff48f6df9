# Everything a fresh machine needs is here: Python 3.11+ and make. The virtualenv is built from
# uv.lock (via a pinned uv installed into .tools/), and rebuilt whenever the lock changes.
PYTHON ?= python3
UV_VERSION := 0.13.8
UV := .tools/bin/uv
VENV := .venv
SYNCED := $(VENV)/.synced-$(shell cat uv.lock pyproject.toml | sha256sum | cut -c1-12)
export DAGSTER_HOME := $(CURDIR)/dagster_home
export GX_ANALYTICS_ENABLED := false
export UV_PYTHON_DOWNLOADS := never

.PHONY: setup demo test lint check-defs bench dev clean

setup: $(SYNCED)

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(SYNCED): uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	rm -f $(VENV)/.synced-*
	touch $@

demo: setup
	$(VENV)/bin/liqf demo

check-defs: setup
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(VENV)/bin/dg check defs

# lint and types: ruff (rules and format, pyproject [tool.ruff]) and mypy (pyproject [tool.mypy])
lint: setup
	$(VENV)/bin/ruff check pipelines forensics tests bench
	$(VENV)/bin/ruff format --check pipelines forensics tests bench
	$(VENV)/bin/mypy

test: setup lint check-defs
	$(VENV)/bin/pytest

# make bench BENCH_SCALE=full: the issue's scale (simulating and ingesting it takes about 6 minutes)
BENCH_SCALE ?= medium
bench: setup
	$(VENV)/bin/python bench/ingest_node_fills.py --parsers
	$(VENV)/bin/python bench/reconstruct.py --scale $(BENCH_SCALE) --work /tmp/liqf-bench-$(BENCH_SCALE) --check
	$(VENV)/bin/python bench/audit.py --scale $(BENCH_SCALE) --work /tmp/liqf-bench-$(BENCH_SCALE)

# dg warns (twice: dg and its code server) when the project's .venv is not the active one: make it active
dev: setup
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(VENV)/bin/dg dev

clean:
	rm -rf data/lake data/forensics.duckdb data/forensics.duckdb.lock data/demo
