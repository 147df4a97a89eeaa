#!/usr/bin/env bash
# Builds FlashAttention-3 (Dao-AILab/flash-attention, its hopper/ folder) for what the Wan experts use and nothing
# else: head dimension 128, bf16, forward and backward, SM90 (H100/H200). Its setup.py builds ~450 kernel
# instantiations by default (hours); these flags leave four sources (minutes on 16 cores).
#
#   bench/build_fa3.sh SRC DEST
#     SRC   a flash-attention source tree: SRC/hopper and SRC/csrc/cutlass/include (the cutlass submodule)
#     DEST  a folder to put on PYTHONPATH: gets flash_attn_3/ (the compiled _C), flash_attn_interface.py and
#           flash_attn_config.py; the engine's training.attention = "fa3" (and "auto" where it is importable) uses it
#
# FLASH_ATTENTION_DISABLE_BACKWARD=TRUE in the environment builds the forward alone (enough for sampling, faster).
# Needs nvcc >= 12.3 (CUDA 13 works: its CCCL headers are found by setup.py), ninja and the torch it will run with.
set -euo pipefail
src=$(cd "${1:?usage: build_fa3.sh SRC DEST}" && pwd)
dest=${2:?usage: build_fa3.sh SRC DEST}
if [ ! -f "$src/hopper/setup.py" ]; then
    echo "build_fa3.sh: $src/hopper/setup.py not found (a flash-attention checkout?)" >&2; exit 2
fi
if [ ! -f "$src/csrc/cutlass/include/cute/tensor.hpp" ]; then
    echo "build_fa3.sh: $src/csrc/cutlass/include is empty: run 'git submodule update --init csrc/cutlass' in $src" >&2
    exit 2
fi
if ! command -v git >/dev/null; then  # setup.py runs `git submodule update` unconditionally
    mkdir -p /tmp/build_fa3_bin
    printf '#!/bin/sh\nexit 0\n' >/tmp/build_fa3_bin/git && chmod +x /tmp/build_fa3_bin/git
    export PATH=/tmp/build_fa3_bin:$PATH
fi
for feature in SPLIT PAGEDKV APPENDKV LOCAL SOFTCAP PACKGQA FP16 FP8 VARLEN CLUSTER HDIM64 HDIM96 HDIM192 HDIM256 \
               SM80 HDIMDIFF64 HDIMDIFF192; do
    export "FLASH_ATTENTION_DISABLE_$feature=TRUE"
done
export FLASH_ATTENTION_FORCE_BUILD=TRUE MAX_JOBS=${MAX_JOBS:-4} NVCC_THREADS=${NVCC_THREADS:-4}
cd "$src/hopper"
python3 setup.py build_ext --inplace
mkdir -p "$dest"
cp -r flash_attn_3 flash_attn_interface.py flash_attn_config.py "$dest"/
echo "build_fa3.sh: FlashAttention-3 in $dest"
