#!/usr/bin/env bash
# Bazel entry point of the issue 6 "real traffic" acceptance: a strongSwan
# client's iperf3, rekey, injected-ESP and forwarder-restart scenarios through
# OUR gateway (dataplane_interop_test.py). Arguments go to the script.
# Not root: prints SKIP and exits 0.
set -euo pipefail
# Bazel's strict test environment leaves /usr/sbin out of PATH (ip, nft, ss, tcpdump).
export PATH="/usr/sbin:/sbin:/usr/bin:/bin${PATH:+:$PATH}"
if [[ -n ${TEST_SRCDIR:-} && -n ${TEST_WORKSPACE:-} ]]; then
  root="$TEST_SRCDIR/$TEST_WORKSPACE"
  here="$root/test/interop"
else
  here=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
  root="$here/../../bazel-bin"
fi
gw="$here/our_gateway.sh $root/gateway/gateway $root/tools/vpnctl/vpnctl"
exec python3 "$here/dataplane_interop_test.py" \
  --gateway-cmd "exec $gw" \
  --split-gateway-cmd "exec env OUR_GATEWAY_SPLIT=1 OUR_GATEWAY_IKE_REPLICAS=2 OUR_GATEWAY_BIN_ROOT=$root $gw" \
  --vpnctl "$root/tools/vpnctl/vpnctl" --rpc-probe "$root/test/trust/rpc_probe" "$@"
