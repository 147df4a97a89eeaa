# wanlora: two commands do all the set-up on a fresh Debian machine.
#   make demo   build, generate the built-in demo dataset and run the pipeline on it (CPU)
#   make test   the formatting check (make lint), then all Swift and Python tests
#   make lint   swift-format (.swift-format), ruff (engine/pyproject.toml), no line over 120 characters
#   make format apply swift-format to the Swift sources, tests and Package.swift
SHELL := /bin/bash
SWIFT ?= swift
PYTHON ?= python3
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BIN := .build/release/wanlora
DEMO := demo
ENGINE_PY := engine/.venv/bin/python
DEMO_DATA := --set data.train_manifest=prepared/train.csv --set data.val_manifest=prepared/val.csv
# swift-format ships with the Swift toolchain (`swift format`); its configuration is .swift-format.
SWIFT_FORMAT ?= $(SWIFT) format
SWIFT_FILES := Sources Tests Package.swift
APT_INSTALL := DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends

.PHONY: build test lint format demo deps-media deps-sqlite deps-engine deps-pages swift-test engine-test generated
.PHONY: bench bench-curate clean

build: deps-sqlite
	$(SWIFT) build -c release --product wanlora

# SQLite headers for GRDB (prepare's job journal); installed from Debian when missing.
deps-sqlite:
	@if [ ! -f /usr/include/sqlite3.h ]; then \
	  echo "installing libsqlite3-dev (apt-get)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) $(APT_INSTALL) libsqlite3-dev; \
	fi

# ffmpeg/ffprobe do the media work; installed from Debian when missing.
deps-media:
	@if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; then \
	  echo "installing ffmpeg (apt-get)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) $(APT_INSTALL) ffmpeg; \
	fi

# Headless Chromium and Korean fonts: PagesTests render the HTML pages as a browser on a stock machine does
# (Korean glyphs, a 390-pixel phone); installed from Debian when missing.
deps-pages:
	@if ! command -v chromium >/dev/null || ! fc-list :lang=ko family 2>/dev/null | grep -q .; then \
	  echo "installing chromium and fonts-noto-cjk (apt-get)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) $(APT_INSTALL) chromium fonts-noto-cjk; \
	fi

# The engine's Python environment (engine/.venv), created when missing.
deps-engine:
	@if [ -f engine/pyproject.toml ]; then $(MAKE) -s -C engine venv PYTHON=$(PYTHON); fi

# deps-engine: the end-to-end tests of `wanlora cache`/`train`/`sample` run the real engine (engine/.venv);
# deps-pages: PagesTests open the pages in headless Chromium.
swift-test: deps-media deps-sqlite deps-engine deps-pages
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

engine-test: deps-engine
	@if [ -f engine/pyproject.toml ]; then $(MAKE) -s -C engine test; fi

test: lint swift-test engine-test

# The formatting check: swift-format's lint (strict: a warning fails), the line length of everything swift-format
# and ruff cannot wrap (strings, comments, shell and make), and ruff over the engine (from engine/.venv).
lint: deps-engine
	$(SWIFT_FORMAT) lint --strict --recursive --parallel $(SWIFT_FILES)
	$(PYTHON) scripts/check_line_length.py
	$(MAKE) -s -C engine lint

# Rewrites the Swift files in place the way .swift-format says; run it after a merge, then `make lint`.
format:
	$(SWIFT_FORMAT) format --in-place --recursive --parallel $(SWIFT_FILES)

# The files written from the configuration key registry (Sources/Config/ConfigKeys.swift): docs/config.md's
# key tables, the engine's schema and the resolved-config fixtures. A Swift test fails when they are stale.
generated: deps-sqlite
	$(SWIFT) build --product wanlora
	.build/debug/wanlora config generate --root .

demo: deps-media deps-engine build
	rm -rf $(DEMO)
	@# 1. The statistics report on a manifest shaped like the MBC archive (2,000 rows, report-style
	@#    splits: train converted, val not; 9 broken rows the reader must reject).
	$(BIN) demo-data --rows 2000 --seed 42 --splits --broken 9 --out $(DEMO)/archive
	@#    --morphemes: Korean content words and morpheme statistics by Kiwi (engine/.venv) beside the space-split ones.
	$(BIN) analyze $(DEMO)/archive/manifest.csv --split train=$(DEMO)/archive/train.csv \
	  --split val=$(DEMO)/archive/val.csv --out $(DEMO)/report --morphemes
	@# 2. Real media made with ffmpeg's test sources (broadcast sizes, 1080i MPEG-2, 29.97 fps, rotated,
	@#    truncated), probed, curated (duplicates, quality, a leak-free split, class weights) and
	@#    prepared (both splits) into clips the tiny model trains on.
	$(BIN) demo-data --media --out $(DEMO)/media
	$(BIN) analyze $(DEMO)/media/manifest.csv --split train=$(DEMO)/media/train.csv \
	  --split val=$(DEMO)/media/val.csv --out $(DEMO)/media-report
	$(BIN) probe $(DEMO)/media/manifest.csv --output $(DEMO)/probe.csv
	$(BIN) curate $(DEMO)/media/manifest.csv --out $(DEMO)/curated
	$(BIN) prepare $(DEMO)/curated/train.csv $(DEMO)/curated/val.csv --out $(DEMO)/prepared \
	  --resolution 64x48 --frames 5 --min-frames 5
	@# 3. Cache and a short LoRA training of both experts on the CPU with the engine's tiny random
	@#    Wan2.2 model; configs/demo.toml beside them (its paths are relative to it).
	$(ENGINE_PY) -m wanlora_engine tiny-model --out $(DEMO)/model --layout official
	cp configs/demo.toml $(DEMO)/wanlora.toml
	$(BIN) cache --config $(DEMO)/wanlora.toml $(DEMO_DATA)
	$(BIN) train --config $(DEMO)/wanlora.toml $(DEMO_DATA)
	$(BIN) runs --config $(DEMO)/wanlora.toml

bench: build
	bench/analyze_vs_polars.sh
	bench/prepare_vs_ffmpeg.sh

# curate: 200k-row timing, SHA-256 MB/s against sha256sum and b3sum, near-duplicate precision/recall.
bench-curate: build deps-media
	bench/curate_200k.sh
	bench/curate_hash.sh
	bench/curate_near_duplicates.sh

clean:
	rm -rf .build $(DEMO)
