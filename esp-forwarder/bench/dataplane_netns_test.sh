#!/usr/bin/env bash
# Runs esp_loadgen --mode=selftest in the gateway namespace of a netns.sh
# topology: the forwarder data plane with a real TUN device between a client
# namespace (ESP from our own generator, UDP and raw) and a protected
# network. See esp_loadgen.cc for the scenarios.
set -euo pipefail
export PATH="/usr/sbin:/sbin:/usr/bin:/bin${PATH:+:$PATH}"
if [[ $(id -u) -ne 0 ]]; then
  echo "SKIP: needs root (network namespaces, TUN)"
  exit 0
fi
if [[ -n ${TEST_SRCDIR:-} ]]; then
  root="$TEST_SRCDIR/${TEST_WORKSPACE:-vpn_gateway}"
else
  root=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
  [[ -x $root/bazel-bin/esp-forwarder/bench/esp_loadgen ]] && root_bin=$root/bazel-bin
fi
netns="$root/test/interop/netns.sh"
loadgen="${root_bin:-$root}/esp-forwarder/bench/esp_loadgen"
run="dp$$"
trap '"$netns" down "$run" >/dev/null 2>&1 || true' EXIT
eval "$("$netns" up "$run")"
"$netns" exec "$run" gw "$loadgen" --mode=selftest --cli_ns="$CLI_NS" --lan_ns="$LAN_NS" \
  --gw_addr="$GW_ADDR" --cli_addr="$CLI_ADDR_A" --lan_host="$LAN_HOST" --workers=2 "$@"
