PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: venv demo test lint bench clean

$(BIN)/activate: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(BIN)/activate

venv: $(BIN)/activate

demo: venv
	$(BIN)/python -m pertspectra.demo --out demo_output

test: venv
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q

lint: venv
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

clean:
	rm -rf demo_output .pytest_cache
