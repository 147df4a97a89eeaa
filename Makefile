# wanlora: two commands do all the set-up on a fresh Debian machine.
#   make demo   build, generate the built-in demo dataset and run the pipeline on it (CPU)
#   make test   all Swift and Python tests
SHELL := /bin/bash
SWIFT ?= swift
PYTHON ?= python3
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BIN := .build/release/wanlora
DEMO := demo

.PHONY: build test demo deps-media deps-sqlite deps-engine swift-test engine-test bench clean

build: deps-sqlite
	$(SWIFT) build -c release --product wanlora

# SQLite headers for GRDB (prepare's job journal); installed from Debian when missing.
deps-sqlite:
	@if [ ! -f /usr/include/sqlite3.h ]; then \
	  echo "installing libsqlite3-dev (apt-get)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libsqlite3-dev; \
	fi

# ffmpeg/ffprobe do the media work; installed from Debian when missing.
deps-media:
	@if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; then \
	  echo "installing ffmpeg (apt-get)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ffmpeg; \
	fi

# The engine's Python environment (engine/.venv), created when missing.
deps-engine:
	@if [ -f engine/pyproject.toml ]; then $(MAKE) -s -C engine venv PYTHON=$(PYTHON); fi

swift-test: deps-media deps-sqlite
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

engine-test: deps-engine
	@if [ -f engine/pyproject.toml ]; then $(MAKE) -s -C engine test; fi

test: swift-test engine-test

demo: deps-media deps-engine build
	rm -rf $(DEMO)
	$(BIN) demo-data --media --out $(DEMO)/data
	$(BIN) analyze $(DEMO)/data/manifest.csv --out $(DEMO)/report
	$(BIN) probe $(DEMO)/data/manifest.csv --out $(DEMO)/probe.csv
	$(BIN) prepare $(DEMO)/data/train.csv $(DEMO)/data/val.csv --out $(DEMO)/prepared

bench: build
	bench/analyze_vs_polars.sh
	bench/prepare_vs_ffmpeg.sh

clean:
	rm -rf .build $(DEMO)
