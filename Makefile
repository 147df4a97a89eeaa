# wanlora: two commands do all the set-up on a fresh Debian machine.
#   make demo   build, generate the built-in demo dataset and run the pipeline on it (CPU)
#   make test   all Swift and Python tests
SHELL := /bin/bash
SWIFT ?= swift
PYTHON ?= python3
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BIN := .build/release/wanlora
DEMO := demo

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

# The engine's venv first: `wanlora evaluate`'s end-to-end test drives the real engine.
swift-test: deps-media deps-engine
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

engine-test: deps-engine
	@if [ -f engine/pyproject.toml ]; then $(MAKE) -s -C engine test; fi

test: swift-test engine-test

demo: deps-media deps-engine build
	rm -rf $(DEMO)
	$(BIN) demo-data --rows 2000 --seed 42 --splits --broken 9 --out $(DEMO)/data
	$(BIN) analyze $(DEMO)/data/manifest.csv --split train=$(DEMO)/data/train.csv --split val=$(DEMO)/data/val.csv --out $(DEMO)/report
	# the engine on CPU: tiny model, cache, short LoRA training (engine/demo/)
	@if [ -f engine/pyproject.toml ]; then $(MAKE) -s -C engine demo; fi

bench: build
	bench/analyze_vs_polars.sh

clean:
	rm -rf .build $(DEMO)
