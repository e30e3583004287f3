# sdnscent developer tasks.  Everything runs from the project virtualenv (.venv),
# which `make setup` (scripts/setup.sh) creates; no activation needed.
#   make test PYTEST_ARGS='-k trail -x'     make demo ARGS='--topo fattree,4'

VENV       := .venv
PYTHON     := $(VENV)/bin/python
PYTEST_ARGS ?=
ARGS       ?=
# Directories without files do not exist in a fresh clone.
TEST_DIRS  := $(wildcard tests mininet_tests)

.PHONY: setup venv test unit lint demo bench clean

setup:            ## root: Debian packages, Open vSwitch, .venv
	scripts/setup.sh

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

bench: setup
	@if [ -e benchmarks/__main__.py ] || [ -e benchmarks.py ]; then \
		$(PYTHON) -m benchmarks $(ARGS); \
	else \
		echo 'no benchmarks yet'; \
	fi

clean:
	rm -rf $(VENV) .cache .pytest_cache .ruff_cache build dist *.egg-info
	find . -path ./.git -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
