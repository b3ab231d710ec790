#!/usr/bin/env bash
# The strongSwan client against OUR gateway (gateway/gateway in the gateway
# namespace, started by our_gateway.sh). Arguments go to interop_test.py;
# a first argument --split runs the four services as separate processes on
# etcd instead, with mTLS between them and etcd's roles (OUR_GATEWAY_SPLIT).
set -euo pipefail
if [[ -n ${TEST_SRCDIR:-} && -n ${TEST_WORKSPACE:-} ]]; then
  root="$TEST_SRCDIR/$TEST_WORKSPACE"
else
  root=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)/bazel-bin
fi
split=""
if [[ ${1:-} == --split ]]; then
  split="env OUR_GATEWAY_SPLIT=1 OUR_GATEWAY_BIN_ROOT=$root"
  shift
fi
exec "$root/test/interop/interop_test.sh" \
  --gateway-cmd "exec $split $root/test/interop/our_gateway.sh $root/gateway/gateway $root/tools/vpnctl/vpnctl" \
  --wait-ready --vpnctl "$root/tools/vpnctl/vpnctl" "$@"
