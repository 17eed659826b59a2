# Two commands matter: `make run` (the whole system on this machine) and `make test`.
SHELL := /bin/bash
# The Lambda runtime is python3.13: find a working interpreter of that version (pyenv or system).
PYTHON ?= $(shell for p in $$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.13*/bin/python3 2>/dev/null) \
	$$(command -v python3.13); do $$p -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null \
	&& echo $$p && break; done)
VENV := .venv
SAMVENV := .venv-sam
BIN := $(VENV)/bin
export AWS_DEFAULT_REGION ?= eu-west-1
export AWS_ACCOUNT_ID_ENDPOINT_MODE := disabled

.PHONY: run demo test lint typecheck sam-validate sam-build bench ci clean

$(BIN)/.installed: requirements-dev.txt layers/loyalty/requirements.txt
	@test -n "$(PYTHON)" || { echo "python3.13 not found (the Lambda runtime is python3.13)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt
	# SAM's translator expands policy templates for the permission test; it pins pydantic ~=2.13
	# while the runtime pins 2.14 (its policy code does not use pydantic): no dependency resolution
	$(BIN)/pip install -q --disable-pip-version-check --no-deps aws-sam-translator==1.115.0
	touch $@

$(SAMVENV)/.installed: requirements-sam.txt
	$(PYTHON) -m venv $(SAMVENV)
	$(SAMVENV)/bin/pip install -q --disable-pip-version-check -r requirements-sam.txt
	touch $@

venv: $(BIN)/.installed

run: $(BIN)/.installed  ## start the local stack (moto + API + pollers + schedules)
	$(BIN)/python -m devstack run $(ARGS)

demo: $(BIN)/.installed  ## start the stack, play the multi-channel journey, print what the system knows
	$(BIN)/python -m devstack demo $(ARGS)

test: $(BIN)/.installed  ## unit, property, integration and end-to-end tests
	$(BIN)/pytest $(ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(BIN)/.installed
	$(BIN)/mypy

sam-validate: $(SAMVENV)/.installed
	$(SAMVENV)/bin/sam validate --lint

sam-build: $(SAMVENV)/.installed $(BIN)/.installed
	PATH="$(abspath $(BIN)):$$PATH" $(SAMVENV)/bin/sam build --cached

bench: $(BIN)/.installed
	$(BIN)/python -m bench.run_all

ci: test lint typecheck sam-validate sam-build demo bench

clean:
	rm -rf $(VENV) $(SAMVENV) .aws-sam
