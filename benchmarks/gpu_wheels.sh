#!/bin/sh
# Download, where there is internet, the wheels that the GPU check needs on a
# machine without it: every locked package except PyTorch and CUDA's own
# (which that machine has). gpu_check.sh installs only those it lacks.
#   sh benchmarks/gpu_wheels.sh [WHEELHOUSE] [PYTHON_VERSION]   (default: .whl 3.12)
set -eu
wheels=${1:-.whl}
python_version=${2:-3.12}
cd "$(dirname "$0")/.."
mkdir -p "$wheels"
grep -vE '^(torch|torchvision|triton|nvidia-[a-z0-9-]+|cuda-[a-z-]+)==' requirements.lock >"$wheels/requirements.txt"
python3 -m pip download --no-deps --only-binary=:all: --python-version "$python_version" \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform any -d "$wheels" -r "$wheels/requirements.txt"
