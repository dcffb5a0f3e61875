#!/bin/sh
# The GPU check (benchmarks/gpu_check.py) on a machine with an NVIDIA GPU,
# PyTorch and no internet. Packages it lacks come from a wheelhouse made
# elsewhere by benchmarks/gpu_wheels.py; those it has are left as they are.
#   sh benchmarks/gpu_check.sh [WHEELHOUSE] [gpu_check.py options]   (default: .whl)
set -eu
cd "$(dirname "$0")/.."
wheels=${1:-.whl}
[ $# -gt 0 ] && shift
site=${TMPDIR:-/tmp}/detection-campaign-site
missing=$(python3 benchmarks/missing_wheels.py "$wheels")
if [ -n "$missing" ]; then
    # shellcheck disable=SC2086 # one word per wheel file
    python3 -m pip install -q --no-index --no-deps --no-compile --target "$site" $missing
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
exec python3 benchmarks/gpu_check.py "$@"
