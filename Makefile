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

demo: venv
	$(PY) simulate.py --preset demo --out $(DEMO) --overwrite
	$(MPIEXEC) -n $(NP) $(PY) 1_Proxy_Matches.py --config $(DEMO)/config.yaml --overwrite
	$(MPIEXEC) -n $(NP) $(PY) 2_Frames.py --config $(DEMO)/config.yaml --overwrite

test: venv
	$(PY) -m pytest -q tests

clean:
	rm -rf $(VENV) data
