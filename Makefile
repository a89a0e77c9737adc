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
# KenLM's lmplz and build_binary (`speechprune lm build`), compiled from the PyPI source
# distribution into the environment's bin/, and the Debian packages that build needs.
KENLM_VERSION := 0.3.0
KENLM_BUILD := build/kenlm
KENLM_TOOLS := $(BIN)/lmplz $(BIN)/build_binary
KENLM_SYSTEM_PACKAGES := cmake g++ libboost-program-options-dev libboost-system-dev \
                         libboost-thread-dev libboost-test-dev libeigen3-dev zlib1g-dev \
                         libbz2-dev liblzma-dev
TINY := data/tiny/.complete
SENTENCES := data/sentences/.complete

.PHONY: help env system-deps kenlm kenlm-system-deps data data-sentences train test test-fast bench clean

help:
	@echo "make train    - create the environment, build the tiny corpus, train and evaluate the quickstart model"
	@echo "make test     - create the environment and run the test suite"
	@echo "make test-fast - the tests not marked slow (about 2 minutes)"
	@echo "make data     - build the tiny corpus (data/tiny)"
	@echo "make data-sentences - build the large-vocabulary corpus (data/sentences)"
	@echo "make kenlm    - compile KenLM's lmplz and build_binary into $(BIN) (for speechprune lm build)"
	@echo "make bench    - run the benchmarks under scripts/"
	@echo "make clean    - remove the environment and build outputs (not data/)"

env: $(VENV)/.installed system-deps

# The C kernels compile when the package installs, so a change to them reinstalls it.
$(VENV)/.installed: pyproject.toml $(wildcard speechprune/deploy/csrc/*)
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

kenlm: $(KENLM_TOOLS)

kenlm-system-deps:
	@missing=$$(for p in $(KENLM_SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# Only the two estimators are compiled (not the query tools or the Python module: the kenlm-ex
# wheel from pyproject.toml provides that).
$(KENLM_TOOLS) &: | $(VENV)/.installed kenlm-system-deps
	mkdir -p $(KENLM_BUILD)
	$(BIN)/pip download --quiet --no-deps --no-binary kenlm kenlm==$(KENLM_VERSION) -d $(KENLM_BUILD)
	tar -xzf $(KENLM_BUILD)/kenlm-$(KENLM_VERSION).tar.gz -C $(KENLM_BUILD)
	cmake -S $(KENLM_BUILD)/kenlm-$(KENLM_VERSION) -B $(KENLM_BUILD)/cmake -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build $(KENLM_BUILD)/cmake --target lmplz build_binary -j $$(nproc)
	cp $(KENLM_BUILD)/cmake/bin/lmplz $(KENLM_BUILD)/cmake/bin/build_binary $(BIN)/

$(TINY): | env
	$(SP) data build corpus=tiny

$(SENTENCES): | env
	$(SP) data build corpus=sentences

data: $(TINY)

data-sentences: $(SENTENCES)

train: env $(TINY)
	$(SP) train experiment=quickstart

test: env kenlm
	$(BIN)/python -m pytest -n 2 --timeout=600 -q

# The tests not marked slow (about 2 minutes on 2 cores): for the edit-test loop; `make test` runs them all.
test-fast: env kenlm
	$(BIN)/python -m pytest -n 2 --timeout=600 -q -m "not slow"

bench: env $(TINY)
	@for s in scripts/bench_*.py; do echo "== $$s"; $(BIN)/python $$s || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info outputs multirun
