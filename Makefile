# The two set-up commands of README.md. Each creates .venv when missing and installs only when
# setup.py or constraints.txt changed since the last install (stamp files), so reruns are quick.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt

.PHONY: demo test install install-test clean

demo: $(VENV)/.installed-core
	$(PY) -m phi1_jax.demo

test: $(VENV)/.installed-test
	$(PY) -m pytest -n 2

install: $(VENV)/.installed-core
install-test: $(VENV)/.installed-test

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-core: setup.py constraints.txt | $(VENV)/bin/python
	$(PIP) -e .
	touch $@

$(VENV)/.installed-test: setup.py constraints.txt | $(VENV)/bin/python
	$(PIP) -e ".[test]"
	touch $@ $(VENV)/.installed-core

clean:
	rm -rf $(VENV) workdir
