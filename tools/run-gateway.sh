#!/usr/bin/env bash
# Builds the gateway (all four services in one process, embedded store) and
# runs it in the foreground until Ctrl-C. Extra arguments go to `gateway`
# (e.g. --config=deploy/gateway.yaml).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[run-gateway] %s\n' "$*"; }

say "checking build dependencies"
./tools/setup.sh
say "building //gateway and //tools/vpnctl (the first build takes a few minutes)"
bazel build --config=opt //gateway //tools/vpnctl
BIN=$(bazel info --config=opt bazel-bin 2>/dev/null)

say "starting gateway; logs are JSON lines on stderr"
"$BIN/gateway/gateway" "$@" &
gateway_pid=$!
trap 'kill -TERM $gateway_pid 2>/dev/null; wait $gateway_pid' INT TERM

# vpnctl's default target is the gateway's operator socket
# (unix:/run/vpn-gateway/gateway.sock, mode 0600).
if "$BIN/tools/vpnctl/vpnctl" --wait=20s health; then
  say "gateway is up: operator API unix:/run/vpn-gateway/gateway.sock,"
  say "metrics http://127.0.0.1:9100/metrics"
  say "try: $BIN/tools/vpnctl/vpnctl sas    (Ctrl-C stops the gateway)"
else
  say "gateway did not report SERVING; see its log above" >&2
fi
wait $gateway_pid
