# genai-report: `make site` builds the whole site, `make test` runs the tests.
# Both create the virtual environment in .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export NO_MKDOCS_2_WARNING := 1

.PHONY: site test serve figures check lint clean pdf

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade "pip>=24"

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e ".[dev]"
	touch $@

# The tests also start a local Ray cluster (the optional `ray` extra, `--executor ray`).
$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install -e ".[dev,ray]"
	touch $@

## site: install, run every stale figure (quick profile by default) and build site/ strictly
site: $(VENV)/.installed
	$(BIN)/mkdocs build --strict

## test: install and run the test suite (smoke profile, CPU)
test: $(VENV)/.installed-test
	$(BIN)/python -m pytest

## pdf: the built site as one PDF (needs Chromium; run `make site` first)
pdf: $(VENV)/.installed
	$(BIN)/python scripts/pdf.py --site site --out genai-report.pdf

## serve: live-reloading preview on http://127.0.0.1:8000
serve: $(VENV)/.installed
	$(BIN)/mkdocs serve

## figures: run the pipeline alone (PROFILE=quick|full|smoke, DEVICE=auto|cpu|cuda|mps)
figures: $(VENV)/.installed
	$(BIN)/genai-report figures $(if $(PROFILE),--profile $(PROFILE)) $(if $(DEVICE),--device $(DEVICE))

## check: fail if the committed quick-profile outputs are stale against the code
check: $(VENV)/.installed
	$(BIN)/genai-report check --profile quick

## lint: ruff over the code, and over the README's Python snippets (tests/test_cli.py)
lint: $(VENV)/.installed
	$(BIN)/ruff check genai_report tests benchmarks scripts
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_cli.py -k readme_python_snippets

clean:
	rm -rf site
