#!/bin/sh
# Run a benchmark script on a machine with an NVIDIA GPU, PyTorch and no
# internet. Packages it lacks come from a wheelhouse made elsewhere by
# benchmarks/gpu_wheels.py: wheels whose package is missing are installed,
# and packages shipped as xz-compressed trees (*.site.tar.xz, for wheels too
# large to carry as they are) are unpacked; those the machine has are left
# as they are.
#   sh benchmarks/on_gpu.sh WHEELHOUSE benchmarks/gpu_course.py [options]
set -eu
cd "$(dirname "$0")/.."
wheels=$1
script=$2
shift 2
site=${TMPDIR:-/tmp}/detection-campaign-site
mkdir -p "$site"
# The workflow's library is not installed there: it is found in scripts/.
export PYTHONPATH="$site:$PWD/scripts${PYTHONPATH:+:$PYTHONPATH}"
missing=$(python3 benchmarks/missing_wheels.py "$wheels")
if [ -n "$missing" ]; then
    # shellcheck disable=SC2086 # one word per wheel file
    python3 -m pip install -q --no-index --no-deps --no-compile --target "$site" $missing
fi
for tree in "$wheels"/*.site.tar.xz; do
    [ -e "$tree" ] && python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2], filter="data")' "$tree" "$site"
done
exec python3 "$script" "$@"
