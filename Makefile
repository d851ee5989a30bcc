# Two entry points: `make demo` and `make test`. Each builds .venv on first use.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint unit integration browser bench wheel clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[spark,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) scripts/run_demo.py

lint: $(STAMP)
	$(VENV)/bin/ruff check airflow_provider_se_pagerduty tests example_dags benchmarks
	$(VENV)/bin/mypy

test: $(STAMP) lint
	bash scripts/ensure-chromium.sh
	$(PY) -m pytest -p no:cacheprovider -ra

unit: $(STAMP)
	$(PY) -m pytest -p no:cacheprovider -ra tests/unit

bench: $(STAMP)
	$(PY) -m benchmarks.run

wheel: $(STAMP)
	$(PY) -m build --outdir dist .

clean:
	rm -rf $(VENV) dist build *.egg-info
