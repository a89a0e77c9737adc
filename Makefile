# speechprune: every target builds what it needs, from nothing, on a fresh Debian machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SP := $(BIN)/speechprune
# Debian packages the corpus build needs: the text-to-speech engines and voices, and the text sources.
SYSTEM_PACKAGES := espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts \
                   fortunes wordnet-base
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
TINY := data/tiny/.complete
SENTENCES := data/sentences/.complete

.PHONY: help env system-deps data data-sentences train test bench clean

help:
	@echo "make train    - create the environment, build the tiny corpus, train and evaluate the quickstart model"
	@echo "make test     - create the environment and run the test suite"
	@echo "make data     - build the tiny corpus (data/tiny)"
	@echo "make data-sentences - build the large-vocabulary corpus (data/sentences)"
	@echo "make bench    - run the benchmarks under scripts/"
	@echo "make clean    - remove the environment and build outputs (not data/)"

env: $(VENV)/.installed system-deps

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# Installs only what is missing, so a machine that has everything does not need apt at all.
system-deps:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(TINY): | env
	$(SP) data build corpus=tiny

$(SENTENCES): | env
	$(SP) data build corpus=sentences

data: $(TINY)

data-sentences: $(SENTENCES)

train: env $(TINY)
	$(SP) train experiment=quickstart

test: env
	$(BIN)/python -m pytest -n 2 --timeout=600 -q

bench: env $(TINY)
	@for s in scripts/bench_*.py; do echo "== $$s"; $(BIN)/python $$s || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info outputs multirun
