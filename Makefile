# wanlora: two commands do all the set-up on a fresh Debian machine.
#   make demo   build, generate the built-in demo dataset and run the pipeline on it (CPU)
#   make test   all Swift and Python tests
SHELL := /bin/bash
SWIFT ?= swift
PYTHON ?= python3
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BIN := .build/release/wanlora
DEMO := demo
ENGINE_PY := engine/.venv/bin/python

.PHONY: build test demo deps-media deps-engine swift-test engine-test bench clean

build:
	$(SWIFT) build -c release --product wanlora

# ffmpeg/ffprobe do the media work; installed from Debian when missing.
deps-media:
	@if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; then \
	  echo "installing ffmpeg (apt-get)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ffmpeg; \
	fi

# The engine's Python environment (engine/.venv), created when missing.
deps-engine:
	@if [ -f engine/pyproject.toml ]; then $(MAKE) -s -C engine venv PYTHON=$(PYTHON); fi

# deps-engine: the end-to-end test of `wanlora cache`/`train` runs the real engine (engine/.venv).
swift-test: deps-media deps-engine
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

engine-test: deps-engine
	@if [ -f engine/pyproject.toml ]; then $(MAKE) -s -C engine test; fi

test: swift-test engine-test

demo: deps-media deps-engine build
	rm -rf $(DEMO)
	$(BIN) demo-data --rows 2000 --seed 42 --splits --broken 9 --out $(DEMO)/archive
	$(BIN) analyze $(DEMO)/archive/manifest.csv --split train=$(DEMO)/archive/train.csv --split val=$(DEMO)/archive/val.csv --out $(DEMO)/report
	@# Cache and a short LoRA training on the CPU: the engine's tiny random Wan2.2 model and a few
	@# real clips (its demo-data stage), configs/demo.toml beside them (its paths are relative to it).
	$(ENGINE_PY) -m wanlora_engine tiny-model --out $(DEMO)/model --layout official
	$(ENGINE_PY) -m wanlora_engine demo-data --out $(DEMO)/data --images 4 --videos 4
	cp configs/demo.toml $(DEMO)/wanlora.toml
	$(BIN) cache --config $(DEMO)/wanlora.toml
	$(BIN) train --config $(DEMO)/wanlora.toml
	$(BIN) runs --config $(DEMO)/wanlora.toml

bench: build
	bench/analyze_vs_polars.sh

clean:
	rm -rf .build $(DEMO)
