# Two commands do all the set-up on a fresh machine:
#   make demo   - install into .venv, then run the demo pipeline on the built-in detector
#   make test   - install into .venv, then lint, type-check and run the test suite
# make test-fast runs the tests that take under 5 s each (no `slow`, no `corpus`): the edit-test loop.
#
# PyTorch: TORCH is the requirement, TORCH_INDEX the index it comes from (empty: PyPI). PyPI's torch
# for Linux x86-64 is the CUDA build (about 2.5 GB of wheels with its nvidia-* and triton packages):
# right for a GPU machine. On a CPU-only machine take PyTorch's CPU wheels (about 0.2 GB) instead:
#   make demo TORCH_INDEX=https://download.pytorch.org/whl/cpu
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0
TORCH_INDEX ?=

.PHONY: demo test test-fast setup clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, from TORCH_INDEX when given, so trtbuild's extras do not pull another build of it.
	$(BIN)/python -m pip install --quiet "$(TORCH)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	# Type stubs for mypy only: their `tensorrt` requirement is a placeholder wheel, so no deps.
	$(BIN)/python -m pip install --quiet --no-deps "tensorrt-stubs==10.13.0.35.1"
	touch $@

setup: $(BIN)/.installed

demo: setup
	$(BIN)/python -m trtbuild demo --out demo_out
	@echo
	@echo "trtbuild is installed in $(VENV)/. Run it with:"
	@echo "  source $(VENV)/bin/activate && trtbuild --help"
	@echo "or, without activating: $(BIN)/trtbuild --help"

test: setup
	$(BIN)/python -m ruff check trtbuild tests
	$(BIN)/python -m mypy trtbuild
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -x -m "not slow and not corpus and not gpu"

clean:
	rm -rf $(VENV) demo_out
