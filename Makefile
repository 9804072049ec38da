# The two commands of the README: `make run` and `make test`. Both build .venv from constraints.txt.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test browser bench clean

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

test: $(STAMP) browser
	$(BIN)/python -m pytest -q -p no:cacheprovider

# Headless Chromium for the HTML report tests (tests/e2e/test_html.py): Debian's chromium and
# chromium-driver, installed when missing (CI runs as root; elsewhere sudo is used if present).
SUDO := $(shell [ "$$(id -u)" = 0 ] || command -v sudo)
browser:
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || \
		($(SUDO) apt-get update -qq && \
		 $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null)

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
