# Proxy Pixel Pipeline: `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
MPIEXEC ?= $(VENV)/bin/mpiexec
NP     ?= 2
DEMO   ?= data/demo

.PHONY: demo test venv clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

STAGES := 1_Proxy_Matches 2_Frames 3_Median_Fits 4_Final_Fits 5_Infill

demo: venv
	$(PY) simulate.py --preset demo --seed 1 --out $(DEMO) --overwrite
	set -e; for stage in $(STAGES); do \
	    $(MPIEXEC) -n $(NP) $(PY) $$stage.py --config $(DEMO)/config.yaml --overwrite; \
	done
	$(PY) make_figures.py --config $(DEMO)/config.yaml
	$(PY) score.py --brief --config $(DEMO)/config.yaml
	@echo "Results: $(DEMO)/output   Figures: $(DEMO)/output/figures   Score: $(DEMO)/output/score.json"

test: venv
	$(PY) -m pytest -q tests

clean:
	rm -rf $(VENV) data
