# The two commands of the README: `make demo` and `make test`. Both install what is
# missing first (scripts/install), so each works as the first command on a fresh clone.
.PHONY: install demo up down status test test-unit lint

VENV ?= .venv
PYTEST_ARGS ?=

install:
	./scripts/install

demo: install
	$(VENV)/bin/lintas demo

up: install
	$(VENV)/bin/lintas up

down:
	$(VENV)/bin/lintas down

status:
	$(VENV)/bin/lintas status

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: install lint
	$(VENV)/bin/python -m pytest --durations=30 $(PYTEST_ARGS)

test-unit: install
	$(VENV)/bin/python -m pytest -m "not integration" $(PYTEST_ARGS)
