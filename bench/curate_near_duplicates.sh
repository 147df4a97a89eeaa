#!/usr/bin/env bash
# Near-duplicate precision and recall on 244 items made with ffmpeg (see
# Tests/CurationTests/NearDuplicateTests.swift): prints the test's figures.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --build-tests >/dev/null
swift test --skip-build --filter NearDuplicateTests 2>&1 \
  | grep -E 'NEAR-DUPLICATES|Test run' | sed 's/^NEAR-DUPLICATES //'
