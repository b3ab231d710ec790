#!/usr/bin/env bash
# Bazel entry point: runs test/hostile/SCRIPT with the runfiles paths of
# the binaries it is given.   run_python_test.sh SCRIPT BINARY...
set -euo pipefail
root="${TEST_SRCDIR:?}/${TEST_WORKSPACE:?}"
script=$1
shift
exec python3 "$root/test/hostile/$script" "${@/#/$root/}"
