#!/bin/sh
# The GPU check (benchmarks/gpu_check.py) on a machine with an NVIDIA GPU,
# PyTorch and no internet; packages it lacks come from a wheelhouse (on_gpu.sh).
#   sh benchmarks/gpu_check.sh [WHEELHOUSE] [gpu_check.py options]   (default: .whl)
set -eu
cd "$(dirname "$0")/.."
wheels=${1:-.whl}
[ $# -gt 0 ] && shift
exec sh benchmarks/on_gpu.sh "$wheels" benchmarks/gpu_check.py "$@"
