# The two commands of the README: `make run` and `make test`. Both build .venv from constraints.txt.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test bench clean

$(STAMP): constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt torch==2.13.0
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test,mlir]'
	touch $(STAMP)

install: $(STAMP)

# Analyse the embedded default model on the default target.
run: $(STAMP)
	$(BIN)/graphperf analyze

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

# Speed/scale benchmarks (benchmarks/README.md). They run in their own venv, .venv-bench, because they
# install onnx-tool (the comparison baseline, pinned here and not in constraints.txt) next to graphperf.
# Pass options with BENCH_ARGS, e.g. make bench BENCH_ARGS="--quick" or BENCH_ARGS="--out benchmarks/RESULTS.md".
BENCH_VENV ?= .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed
BENCH_ARGS ?=

$(BENCH_STAMP): constraints.txt pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q -c constraints.txt torch==2.13.0
	$(BENCH_VENV)/bin/python -m pip install -q -c constraints.txt -e . onnx-tool==1.0.1 tabulate
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python benchmarks/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
