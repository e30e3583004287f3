# sdnscent developer tasks.  Everything runs from the project virtualenv (.venv),
# which `make setup` (scripts/setup.sh) creates; no activation needed.
#   make test PYTEST_ARGS='-k trail -x'     make demo ARGS='--topo fattree,4'

VENV       := .venv
PYTHON     := $(VENV)/bin/python
PYTEST_ARGS ?=
ARGS       ?=
# Directories without files do not exist in a fresh clone.
TEST_DIRS  := $(wildcard tests mininet_tests)
# The host tagger (docs/vni.rst): eBPF for tc, from uapi headers only.
BPF_OBJ    := sdnscent/vni/tagger.o
BPF_CFLAGS := -O2 -g -Wall -target bpf -I/usr/include/$(shell uname -m)-linux-gnu

.PHONY: setup venv test unit lint demo bench clean bpf

setup:            ## root: Debian packages, Open vSwitch, .venv, the eBPF tagger
	scripts/setup.sh
	@$(MAKE) --no-print-directory bpf

bpf: $(BPF_OBJ)   ## compile the host tagger (clang)

$(BPF_OBJ): sdnscent/vni/tagger.c
	clang $(BPF_CFLAGS) -c $< -o $@

venv:             ## only .venv (no root needed)
	scripts/setup.sh --venv

test: setup       ## unit + Mininet integration tests (root)
	$(PYTHON) -m pytest -q $(PYTEST_ARGS) $(TEST_DIRS)

unit: venv        ## unit tests only
	$(PYTHON) -m pytest -q $(PYTEST_ARGS) tests

lint: venv
	$(VENV)/bin/ruff check .

demo: setup
	$(PYTHON) -m mininet_tests.demo $(ARGS)

bench: setup      ## every benchmark; installs the bench extra (matplotlib) first
	$(VENV)/bin/pip install -q -e '.[test,bench]'
	@if [ -e benchmarks/__main__.py ] || [ -e benchmarks.py ]; then \
		$(PYTHON) -m benchmarks $(ARGS); \
	else \
		echo 'no benchmarks yet'; \
	fi

clean:
	rm -rf $(VENV) .cache .pytest_cache .ruff_cache build dist *.egg-info $(BPF_OBJ)
	find . -path ./.git -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
