#!/usr/bin/env bash
# The strongSwan client against OUR gateway (gateway/gateway in the gateway
# namespace, started by our_gateway.sh). Arguments go to interop_test.py.
set -euo pipefail
if [[ -n ${TEST_SRCDIR:-} && -n ${TEST_WORKSPACE:-} ]]; then
  root="$TEST_SRCDIR/$TEST_WORKSPACE"
else
  root=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)/bazel-bin
fi
exec "$root/test/interop/interop_test.sh" \
  --gateway-cmd "exec $root/test/interop/our_gateway.sh $root/gateway/gateway $root/tools/vpnctl/vpnctl" \
  --wait-ready --vpnctl "$root/tools/vpnctl/vpnctl" "$@"
