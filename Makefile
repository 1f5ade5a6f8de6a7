# farmnode. `make sim`: a simulated farm on a local broker. `make test`: every test,
# on CPython and on the MicroPython unix port. Both install what they need first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: setup test test-ha sim broker bench clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

setup: $(INSTALLED)
	@tools/ensure-mosquitto.sh

# Tests mostly wait (on brokers, backoffs, devices' clocks): four at once use two cores
# without crowding them (about 4 minutes instead of 13). TEST_JOBS=0 runs them one by one.
TEST_JOBS ?= 4

test: setup
	$(BIN)/python -m pytest -n $(TEST_JOBS) $(PYTEST_ARGS)

# The real Home Assistant (2025.1) against a simulated node: not part of `make test`.
# tools/ha-venv.sh installs it once, with Python 3.12, into ~/.cache/farmnode (it says
# what to do when it cannot); host_tests/ha is collected only when named, as here.
test-ha: setup
	@ha_python=$$(tools/ha-venv.sh) || { echo "make test-ha: cannot run (see above): nothing was tested" >&2; exit 1; }; \
	FARMNODE_HA_PYTHON="$$ha_python" $(BIN)/python -m pytest host_tests/ha $(PYTEST_ARGS)

sim: setup
	$(BIN)/farmctl sim $(SIM_ARGS)

broker: setup
	$(BIN)/farmctl broker

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info tools/*.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# MICROPYTHON_SRC=/path/to/micropython (upstream's source, with its submodules) adds the
# 32-bit heap floors: bench/mp32.py builds the ports once, cached in ~/.cache/farmnode.
bench: setup
	$(BIN)/python bench/run.py $(if $(MICROPYTHON_SRC),--micropython-src "$(MICROPYTHON_SRC)") $(BENCH_ARGS)
