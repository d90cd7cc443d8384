#!/usr/bin/env bash
# The one command for a lent GPU machine: validate every CUDA path of brainbench in under 8 minutes.
#
#   bash scripts/gpu_check.sh OUT_DIR [more python -m bench.gpu_check options, e.g. --only compile_step]
#
# Runs from the source tree (brainbench need not be pip-installed; only python with torch,
# torchvision and brainbench's other dependencies), with its own checkpoint store and decoded
# cache in a temporary folder, removed afterwards. Writes OUT_DIR/gpu_check.json (rewritten after
# every check, so a timeout still leaves what had passed) and OUT_DIR/gpu_check.log, prints the
# table, and exits with the check's status: 0 all passed or n/a, 1 a check failed, 2 a bad
# option, 124 the outer timeout struck.
set -euo pipefail

if [[ $# -lt 1 ]]; then
    echo "usage: bash scripts/gpu_check.sh OUT_DIR [python -m bench.gpu_check options]" >&2
    exit 2
fi
out_dir=$1
shift
mkdir -p "$out_dir"
out_dir=$(cd "$out_dir" && pwd)

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"

python_bin=${PYTHON:-$(command -v python || command -v python3)}
scratch=$(mktemp -d "${TMPDIR:-/tmp}/brainbench-gpu-check.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

export PYTHONPATH="$repo_root${PYTHONPATH:+:$PYTHONPATH}"
export BRAINBENCH_STORE="$scratch/store"
export BRAINBENCH_CACHE="$scratch/decoded"
export PYTHONUNBUFFERED=1

# 470 s: the checks' own budget is 420 s; the rest is for importing torch and starting CUDA.
status=0
timeout --kill-after=10 470 "$python_bin" -m bench.gpu_check --device cuda --out "$out_dir/gpu_check.json" "$@" \
    2>&1 | tee "$out_dir/gpu_check.log" || status=$?
if [[ $status -eq 124 || $status -eq 137 ]]; then
    echo "gpu_check: stopped by the 470 s timeout; $out_dir/gpu_check.json holds the checks finished before" >&2
fi
exit "$status"
