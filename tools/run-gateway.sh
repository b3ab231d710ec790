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

if "$BIN/tools/vpnctl/vpnctl" --target=127.0.0.1:50051 --wait=20s health; then
  say "gateway is up: ike-service 127.0.0.1:50051, auth-service :50052,"
  say "mobility-service :50053, esp-forwarder :50054, metrics http://127.0.0.1:9100/metrics"
  say "try: $BIN/tools/vpnctl/vpnctl services    (Ctrl-C stops the gateway)"
else
  say "gateway did not report SERVING; see its log above" >&2
fi
wait $gateway_pid
