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

# Debian packages the tests drive for real: Chromium (web page test) and Prometheus (scrape test).
SYSTEM_PACKAGES := chromium prometheus wrk
SYSTEM_COMMANDS := chromium prometheus wrk

.PHONY: venv sysdeps test up data clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=24" wheel
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[test]"
	touch $(STAMP)

venv: $(STAMP)

# Installs the Debian packages when a command is missing and we may (root, apt-get present);
# otherwise it says what is missing and the tests that need it skip (fail under CI=true).
sysdeps:
	@missing=""; for c in $(SYSTEM_COMMANDS); do command -v $$c >/dev/null 2>&1 || missing="$$missing $$c"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian packages:$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(SYSTEM_PACKAGES)) >/dev/null; \
	  else echo "missing system commands:$$missing (install: apt-get install $(SYSTEM_PACKAGES))"; fi; \
	fi

test: venv sysdeps
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

up: venv
	$(BIN)/movierec up

data: venv
	$(BIN)/movierec data summary
	$(BIN)/movierec data splits

clean:
	rm -rf var .pytest_cache
