#!/usr/bin/env bash
# Set up from the project's own files, then check and test everything: the
# README's test command, and what CI runs (.ci/run). From any folder.
#
# 1. Debian packages that tests drive for real (SLURM, Chromium), the main
#    environment (requirements.lock), the linters and the import floors.
# 2. The whole suite in the main environment. Meanwhile the older lock's
#    environment (requirements-cu126.lock: torch 2.7.1 for CUDA 12.6, about
#    3 GB fetched from PyPI) installs beside it: a download and an unpacking,
#    not the tests' CPU time. It starts after the main install, as both
#    install this project in editable mode from the same folder.
# 3. The unit tests and one real training under the older lock.
#
# Both environments hold a CUDA build of torch (about 6.5 GB each) and the
# suite's campaigns about 1 GB more: the free disk is printed at the start and
# before the older lock's tests, so that a run that ran out of it says so.
set -euo pipefail
cd "$(dirname "$0")/.."

free_disk() { df -h --output=avail,target . "${TMPDIR:-/tmp}" | sed "s/^/[disk $1] /"; }
free_disk start

sh tests/system-packages.sh
python3 -m venv .venv
.venv/bin/pip install -r requirements.lock -e .
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/snakefmt --check Snakefile rules
.venv/bin/lint-imports
.venv/bin/snakemake --lint

older_log=.venv-cu126.install.log
(python3 -m venv .venv-cu126 && .venv-cu126/bin/pip install --no-cache-dir --no-deps -r requirements-cu126.lock -e .) \
    >"$older_log" 2>&1 &
older_install=$!
# A failing main suite stops here; the install in the background is not left running.
trap 'kill "$older_install" 2>/dev/null || true' EXIT

# The slowest tests are listed at the end, to see where the suite's time goes.
.venv/bin/python -m pytest -q --durations=15 tests

if ! wait "$older_install"; then
    tail -n 40 "$older_log" >&2
    echo "tests/setup-and-run.sh: the older lock's environment did not install (all of it: $older_log)" >&2
    exit 1
fi
trap - EXIT
free_disk "after the main suite"
.venv-cu126/bin/python -m pytest -q -m "not slow or both_locks" tests
