#!/bin/sh
# Debian packages that some tests drive for real: SLURM (tests/test_slurm.py)
# and Chromium (the report test in tests/test_workflow.py). As root, installs
# what is missing; otherwise says what to install, and those tests skip
# (in CI, with CI=true, they fail instead).
set -eu
missing=""
command -v slurmctld >/dev/null 2>&1 || missing="$missing slurm-wlm"
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    # shellcheck disable=SC2086 # one word per package
    apt-get install -y -qq --no-install-recommends $missing >/dev/null ||
        { apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing >/dev/null; }
else
    echo "tests/system-packages.sh: not installed:$missing (as root: apt-get install$missing)" >&2
fi
