# Proxy Pixel Pipeline: `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
MPIEXEC ?= $(VENV)/bin/mpiexec
NP     ?= 2
DEMO   ?= data/demo

.PHONY: demo test venv clean

venv: $(VENV)/.installed

# The package in editable mode with its dependencies (pyproject.toml) and the
# mpich and test extras (requirements.txt).
$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

# The stages, in order, from the registry (proxy_pixel_pipeline/runtime/registry.py).
demo: venv
	$(PY) simulate.py --preset demo --seed 1 --out $(DEMO) --overwrite
	set -e; for stage in $$($(PY) -m proxy_pixel_pipeline.runtime.registry); do \
	    $(MPIEXEC) -n $(NP) $(PY) $$stage.py --config $(DEMO)/config.yaml --overwrite; \
	done
	$(PY) make_figures.py --config $(DEMO)/config.yaml
	$(PY) score.py --brief --config $(DEMO)/config.yaml
	$(PY) -m proxy_pixel_pipeline report $(DEMO)/config.yaml >/dev/null   # ppp report
	@echo "Results: $(DEMO)/output   Figures: $(DEMO)/output/figures   Score: $(DEMO)/output/score.json"
	@echo "Report:  $(DEMO)/output/report.html   (the run on one page: open it in a browser)"

test: venv
	$(PY) -m pytest -q tests

clean:
	rm -rf $(VENV) data
