# Two commands do all the set-up on a fresh machine:
#   make demo   - install into .venv, then run the demo pipeline on the built-in detector
#   make test   - install into .venv, then lint, type-check and run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test setup clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# The CPU build of torch first: a plain `torch` requirement would pull several GB of CUDA wheels.
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	# Type stubs for mypy only: their `tensorrt` requirement is a placeholder wheel, so no deps.
	$(BIN)/python -m pip install --quiet --no-deps "tensorrt-stubs==10.13.0.35.1"
	touch $@

setup: $(BIN)/.installed

demo: setup
	$(BIN)/python -m trtbuild demo --out demo_out

test: setup
	$(BIN)/python -m ruff check trtbuild tests
	$(BIN)/python -m mypy trtbuild
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) demo_out
