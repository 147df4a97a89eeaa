#!/usr/bin/env bash
# The near-duplicate index (multi-index hashing) at archive scale: 200,000 64-bit hashes,
# threshold 10 bits, release build, uniform and clustered hashes; compared with all-pairs brute
# force. Usage: bench/curate_index.sh [n] [bits]
set -euo pipefail
cd "$(dirname "$0")/curate-index"
swift build -c release --product IndexBench >/dev/null
.build/release/IndexBench "${1:-200000}" "${2:-10}" uniform
.build/release/IndexBench "${1:-200000}" "${2:-10}" clustered
