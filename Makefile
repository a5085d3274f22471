# Two commands do all the set-up on a fresh machine:
#   make up    runs the main job (the whole pipeline and stack, on embedded defaults)
#   make test  passes the tests
# Both create or reuse .venv and install what it needs from constraints.txt.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SHARED ?= ../shared

# Third-party files that may not be committed (posters, plots, YAMNet) are read from ../shared
# when it is there; set MOVIEREC_SHARED_DIR or the individual MOVIEREC_*_DIR paths to override.
ifneq ($(wildcard $(SHARED)/README.md),)
export MOVIEREC_SHARED_DIR ?= $(abspath $(SHARED))
endif
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1

.PHONY: venv test up data features clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=24" wheel
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[test]"
	touch $(STAMP)

venv: $(STAMP)

test: venv
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

up: venv
	$(BIN)/movierec up

data: venv
	$(BIN)/movierec data summary
	$(BIN)/movierec data splits

clean:
	rm -rf var .pytest_cache
