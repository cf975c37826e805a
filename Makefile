PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: venv demo test lint bench clean browser-test docs

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

# the documentation: the docs extra into .venv, the executed tutorial (docs/tutorial.py, on
# ../shared/data when present), then Sphinx with warnings as errors into docs/_build/html
$(VENV)/.docs-installed: $(BIN)/activate
	$(BIN)/python -m pip install -q -e ".[test,docs]"
	touch $@

docs: venv $(VENV)/.docs-installed
	$(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html

# the report's browser test needs Debian's chromium (root: apt-get); skipped without it
browser-test: venv
	command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium)
	$(BIN)/python -m pytest -q tests/cli/test_run.py -k chromium

clean:
	rm -rf demo_output .pytest_cache docs/_build docs/_generated docs/api/generated
