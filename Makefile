# Two commands for a fresh machine: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The torch build to install. The default is the CPU/CUDA wheel pip picks for this machine;
# override it for another build, e.g. TORCH_INDEX=https://download.pytorch.org/whl/cu128
TORCH_SPEC  ?= torch==2.13.0
TORCH_INDEX ?=

.PHONY: run test bench clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install -q -e .
	touch $@

$(BIN)/.installed-test: $(BIN)/.installed
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $@

run: $(BIN)/.installed
	$(BIN)/python -m app

test: $(BIN)/.installed-test
	$(BIN)/python -m mypy
	$(BIN)/python -m pytest -q

bench: $(BIN)/.installed-test
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) *.egg-info
