# The two commands: `make run` (set up and start everything with demo data) and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.13 || command -v python3.12 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
export DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/backoffice
export REDIS_URL ?= redis://127.0.0.1:6379/0

.PHONY: run test install services bench lint schema totp clean-venv

$(BIN)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else "Python 3.12 or newer is needed (found " + sys.version.split()[0] + "); set PYTHON=/path/to/python3.12")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

install: $(BIN)/.installed

services: install
	@$(BIN)/python scripts/services.py check

run: services
	@$(BIN)/python scripts/services.py ensure-database
	@scripts/run.sh

test: services
	$(BIN)/pytest --create-db $(PYTEST_ARGS)

bench: services
	$(BIN)/python -m bench $(BENCH_ARGS)

STAFF ?= risk
totp: install
	@DEBUG=true $(BIN)/python manage.py demo_totp_code $(STAFF)

lint: install
	$(BIN)/ruff check .

schema: install
	DEBUG=true $(BIN)/python manage.py spectacular --file docs/openapi.yaml --validate

clean-venv:
	rm -rf $(VENV)
