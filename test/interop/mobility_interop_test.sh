#!/usr/bin/env bash
# Bazel entry point of the issue 7 "VPN Reconnect" acceptance: a strongSwan
# client's NAT rebinding, outage, cleanup, forged-update and path-switch
# scenarios through OUR gateway, and the same path switch through a strongSwan
# responder (mobility_interop_test.py). Arguments go to the script.
# Not root: prints SKIP and exits 0.
set -euo pipefail
# Bazel's strict test environment leaves /usr/sbin out of PATH (ip, nft, ss, tcpdump, conntrack).
export PATH="/usr/sbin:/sbin:/usr/bin:/bin${PATH:+:$PATH}"
if [[ -n ${TEST_SRCDIR:-} && -n ${TEST_WORKSPACE:-} ]]; then
  root="$TEST_SRCDIR/$TEST_WORKSPACE"
  here="$root/test/interop"
else
  here=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
  root="$here/../../bazel-bin"
fi
exec python3 "$here/mobility_interop_test.py" \
  --gateway-cmd "exec $here/our_gateway.sh $root/gateway/gateway $root/tools/vpnctl/vpnctl" \
  --vpnctl "$root/tools/vpnctl/vpnctl" "$@"
