# wanlora: two commands do all the set-up on a fresh Debian machine.
#   make demo   build, generate the built-in demo dataset and run the pipeline on it (CPU)
#   make test   all Swift and Python tests
SHELL := /bin/bash
SWIFT ?= swift
PYTHON ?= python3
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BIN := .build/release/wanlora
DEMO := demo

.PHONY: build test demo deps-media deps-engine swift-test engine-test bench bench-curate clean

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

swift-test: deps-media
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

engine-test: deps-engine
	@if [ -f engine/pyproject.toml ]; then $(MAKE) -s -C engine test; fi

test: swift-test engine-test

demo: deps-media deps-engine build
	rm -rf $(DEMO)
	$(BIN) demo-data --rows 2000 --seed 42 --out $(DEMO)/data
	$(BIN) analyze $(DEMO)/data/manifest.csv --out $(DEMO)/report
	$(BIN) curate $(DEMO)/data/manifest.csv --out $(DEMO)/curated

bench: build
	bench/analyze_vs_polars.sh

# curate: 200k-row timing, SHA-256 MB/s against sha256sum and b3sum, near-duplicate precision/recall.
bench-curate: build deps-media
	bench/curate_200k.sh
	bench/curate_hash.sh
	bench/curate_near_duplicates.sh

clean:
	rm -rf .build $(DEMO)
