#!/usr/bin/env bash
# Bazel entry point of the interop test: runs interop_test.py (Python 3,
# standard library only) from the runfiles. Arguments go to interop_test.py.
# Not root: prints SKIP and exits 0 (interop_test.py does that, so the JUnit
# file records the skip). Anything else that stops strongSwan from
# establishing fails the test.
set -euo pipefail
# Bazel's strict test environment leaves /usr/sbin out of PATH (ip, nft, ss).
export PATH="/usr/sbin:/sbin:/usr/bin:/bin${PATH:+:$PATH}"
if [[ -n ${TEST_SRCDIR:-} && -n ${TEST_WORKSPACE:-} ]]; then
  here="$TEST_SRCDIR/$TEST_WORKSPACE/test/interop"
else
  here=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
fi
exec python3 "$here/interop_test.py" "$@"
