#!/usr/bin/env bash
# Bazel entry point of issue 14's nonce proof (two_forwarders_test.py): a
# strongSwan client's MOBIKE move from one forwarder node to another, with
# every ESP packet captured. Arguments go to the script.
# Not root: prints SKIP and exits 0.
set -euo pipefail
# Bazel's strict test environment leaves /usr/sbin out of PATH (ip, tcpdump).
export PATH="/usr/sbin:/sbin:/usr/bin:/bin${PATH:+:$PATH}"
if [[ -n ${TEST_SRCDIR:-} && -n ${TEST_WORKSPACE:-} ]]; then
  root="$TEST_SRCDIR/$TEST_WORKSPACE"
  here="$root/test/interop"
else
  here=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
  root="$here/../../bazel-bin"
fi
exec python3 "$here/two_forwarders_test.py" \
  --gateway-cmd "exec env OUR_GATEWAY_SPLIT=1 OUR_GATEWAY_SECOND_NODE=1 OUR_GATEWAY_BIN_ROOT=$root $here/our_gateway.sh $root/gateway/gateway $root/tools/vpnctl/vpnctl" \
  --vpnctl "$root/tools/vpnctl/vpnctl" "$@"
