#!/bin/sh
# Runs our gateway in the gateway namespace, configured from the harness's
# topology facts and test PKI, and adds the test user through auth-service's
# API. interop_test.py starts it through --gateway-cmd, with the facts
# (GW_DNS, POOL4, LAN_NET, ...), IVPN_PKI_DIR and IVPN_WORKDIR in the
# environment.
#   our_gateway.sh PATH-TO-gateway PATH-TO-vpnctl [USER PASSWORD]
#
# Default: `gateway` (all four services in one process, embedded store,
# metrics on 127.0.0.1:9100).
#
# vpnctl reaches each API through a flag file this script writes:
# IVPN_WORKDIR/vpnctl-{ike-0,ike-1,auth,forwarder}.flags (the target and, in
# split mode, the operator's mTLS certificate): vpnctl --flagfile=... sas.
#
# Optional, `gateway` only (mobility_interop_test.py, tools/ike_loadgen/bench.py), each left out
# when unset:
#   OUR_GATEWAY_LIVENESS_REPORT_INTERVAL=1s          esp_forwarder.liveness_report_interval
#   OUR_GATEWAY_IKE_WORKERS=1                        ike_service.workers
#   OUR_GATEWAY_IKE_LIMITS='cookie_threshold: 1000000, half_open_per_source_limit: 1000000'
#                                                    more ike-service keys (YAML flow-map entries;
#                                                    both modes): bench.py lifts the half-open limits
#                                                    of one initiator address, as it does strongSwan's
#   OUR_GATEWAY_MOBILITY_YAML='{outage_window: 12s, liveness_timeout: 3s, liveness_persist_interval: 1s}'
#                                                    the mobility_service section (a YAML flow map)
#
# OUR_GATEWAY_SPLIT=1: the four service binaries as separate processes
# sharing a real etcd (/usr/bin/etcd on 127.0.0.1:2379, data under
# IVPN_WORKDIR/our-gateway/etcd), as in Kubernetes: mutual TLS between the
# services, and etcd with TLS, client certificates required and the roles
# of tools/etcd-rbac.sh; each service has its own certificate (server.tls,
# client_tls, store_tls) from tools/service-pki.sh in
# IVPN_WORKDIR/our-gateway/pki. The services are found beside the gateway
# binary (PATH-TO-gateway/../../<service>/<service>, the bazel-bin
# and runfiles layout) or in OUR_GATEWAY_BIN_ROOT. gRPC 127.0.0.1:50051-50054,
# metrics 127.0.0.1:9101-9104 (esp-forwarder: 9104). esp-forwarder runs under
# a supervisor loop that restarts it when it dies (like a Pod's
# restartPolicy), at most OUR_GATEWAY_FORWARDER_RESTARTS (default 3) times;
# its current pid is in IVPN_WORKDIR/our-gateway/esp-forwarder.pid and each
# start appends "<pid> <epoch seconds>" to esp-forwarder.starts.
# OUR_GATEWAY_IKE_REPLICAS=2 (split only): a second ike-service replica,
# ike-1 (gRPC 127.0.0.1:50055, metrics 9105, log ike-service-1.log) beside
# ike-0 (ike-service.log); each one's pid is in ike-service[-1].pid.
# OUR_GATEWAY_SECOND_NODE=1 (split only, topology `netns.sh up --two-nodes`):
# a second esp-forwarder in GW2_NS, its gRPC on GW2_CTL_ADDR:50054 (vpnctl
# flags vpnctl-forwarder-b.flags), metrics on 127.0.0.1:9104 in GW2_NS, log
# esp-forwarder-b.log, pid esp-forwarder-b.pid; it reaches etcd and
# mobility-service on GW_CTL_ADDR, and every ike-service replica relays
# through both forwarders.
set -eu
gateway=$1
vpnctl=$2
user=${3:-alice}
password=${4:-interop-Pa55word}
work=$IVPN_WORKDIR/our-gateway
mkdir -p "$work"
umask 077
# Kept across restarts of this script: the store's sealed keys need it.
[ -f "$work/store.key" ] || head -c 32 /dev/urandom > "$work/store.key"
rm -f "$IVPN_WORKDIR/gateway.ready"
# The TUN side of the gateway is the pool's first host (10.10.0.0/24 -> .1/24).
tun_address=$(python3 -c "import ipaddress,sys; n=ipaddress.ip_network(sys.argv[1]); print(f'{n.network_address+1}/{n.prefixlen}')" "$POOL4")

pki=$work/pki
# Each API's vpnctl flags; split mode adds the operator's certificate.
write_vpnctl_flags() {  # api target [tls]
  {
    echo "--target=$2"
    if [ "${3:-}" = tls ]; then
      echo "--tls_cert_file=$pki/operator.crt"
      echo "--tls_key_file=$pki/operator.key"
      echo "--tls_ca_file=$pki/ca.crt"
    fi
  } > "$IVPN_WORKDIR/vpnctl-$1.flags"
}

add_user() {
  "$vpnctl" --flagfile="$IVPN_WORKDIR/vpnctl-auth.flags" --tls_server_name=auth-service \
    --wait=20s health >/dev/null
  printf '%s\n' "$password" |
    "$vpnctl" --flagfile="$IVPN_WORKDIR/vpnctl-auth.flags" user-add "$user" >/dev/null
}

if [ "${OUR_GATEWAY_SPLIT:-0}" != 1 ]; then
  for api in ike-0 auth forwarder; do write_vpnctl_flags $api "unix:$work/gateway.sock"; done
  cat > "$work/gateway.yaml" <<CONFIG
metrics_listen: "127.0.0.1:9100"
server: {grpc_listen: "unix:$work/gateway.sock"}
store: "embedded:$work/store"
store_key_file: "$work/store.key"
ike_service:
  gateway_id: "$GW_DNS"
  pool_v4: "$POOL4"
  ${OUR_GATEWAY_IKE_WORKERS:+workers: $OUR_GATEWAY_IKE_WORKERS}
  ${OUR_GATEWAY_IKE_LIMITS:+$(printf '%s\n' "$OUR_GATEWAY_IKE_LIMITS" | tr ',' '\n' | sed 's/^ *//; 2,$s/^/  /')}
  local_ts: ["$LAN_NET"]
  mobike_addresses: [${GW_ADDR_B:+"$GW_ADDR_B"}]
auth_service:
  gateway_cert_file: "$IVPN_PKI_DIR/gw.crt"
  gateway_key_file: "$IVPN_PKI_DIR/gw.key"
  ca_file: "$IVPN_PKI_DIR/ca.crt"
  crl_files: ["$IVPN_PKI_DIR/ca.crl"]
  credentials_key_file: "$work/store.key"
esp_forwarder:
  ike_listen: "0.0.0.0:500"
  natt_listen: "0.0.0.0:4500"
  tun_name: "vpn0"
  tun_address: "$tun_address"
  ${OUR_GATEWAY_LIVENESS_REPORT_INTERVAL:+liveness_report_interval: $OUR_GATEWAY_LIVENESS_REPORT_INTERVAL}
${OUR_GATEWAY_MOBILITY_YAML:+mobility_service: $OUR_GATEWAY_MOBILITY_YAML}
CONFIG
  "$gateway" --config="$work/gateway.yaml" &
  pid=$!
  trap 'kill -TERM $pid 2>/dev/null; wait $pid' TERM INT
  add_user
  echo "our_gateway.sh: gateway up (pid $pid), user $user added"
  touch "$IVPN_WORKDIR/gateway.ready"
  wait $pid
  exit
fi

# ---- split mode: etcd and four processes
bin_root=${OUR_GATEWAY_BIN_ROOT:-$(dirname "$gateway")/..}
for b in ike-service auth-service mobility-service esp-forwarder; do
  [ -x "$bin_root/$b/$b" ] || { echo "our_gateway.sh: no $bin_root/$b/$b" >&2; exit 1; }
done
[ -x /usr/bin/etcd ] || { echo "our_gateway.sh: /usr/bin/etcd missing (Debian etcd-server)" >&2; exit 1; }
store="etcd:127.0.0.1:2379"
second_node=${OUR_GATEWAY_SECOND_NODE:-0}
if [ "$second_node" = 1 ]; then
  [ -n "${GW2_NS:-}" ] && [ -n "${GW_CTL_ADDR:-}" ] && [ -n "${GW2_CTL_ADDR:-}" ] || {
    echo "our_gateway.sh: OUR_GATEWAY_SECOND_NODE=1 needs the --two-nodes topology's facts" >&2
    exit 1
  }
fi
tools=$(cd "$(dirname "$0")/../../tools" && pwd)
"$tools/service-pki.sh" "$pki" "etcd${GW_CTL_ADDR:+,$GW_CTL_ADDR}"
# The store_tls section of a service's config: its own etcd identity.
store_tls() {  # role
  printf 'store_tls:\n  cert_file: "%s"\n  key_file: "%s"\n  ca_file: "%s"\n' \
    "$pki/$1.crt" "$pki/$1.key" "$pki/ca.crt"
}
tls() {  # role: this service's server and client certificate
  printf '  tls: {cert_file: %s, key_file: %s, ca_file: %s}\n' \
    "$pki/$1.crt" "$pki/$1.key" "$pki/ca.crt"
  printf '  client_tls: {cert_file: %s, key_file: %s, ca_file: %s}\n' \
    "$pki/$1.crt" "$pki/$1.key" "$pki/ca.crt"
}
write_vpnctl_flags ike-0 127.0.0.1:50051 tls
write_vpnctl_flags ike-1 127.0.0.1:50055 tls
write_vpnctl_flags auth 127.0.0.1:50052 tls
write_vpnctl_flags forwarder 127.0.0.1:50054 tls
[ "$second_node" != 1 ] || write_vpnctl_flags forwarder-b "$GW2_CTL_ADDR:50054" tls
pids=""
stop_all() {
  trap - TERM INT
  stopping=1
  [ -z "${sup:-}" ] || kill -TERM "$sup" 2>/dev/null || true
  fwd=$(cat "$work/esp-forwarder.pid" "$work/esp-forwarder-b.pid" 2>/dev/null || true)
  # Services first, the store last.
  for p in $fwd ${ike_pids:-} $pids; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  exit "${1:-0}"
}
trap stop_all TERM INT

# A throw-away single-member etcd in production mode, as
# common/store/etcd_launcher.cc starts it; this namespace's loopback is ours
# alone, so the ports are fixed.
mkdir -p "$work/etcd"
/usr/bin/etcd --name=default --data-dir="$work/etcd/member-data" \
  --listen-client-urls="https://127.0.0.1:2379${GW_CTL_ADDR:+,https://$GW_CTL_ADDR:2379}" \
  --advertise-client-urls=https://127.0.0.1:2379 \
  --listen-peer-urls=http://127.0.0.1:2380 --initial-advertise-peer-urls=http://127.0.0.1:2380 \
  --initial-cluster=default=http://127.0.0.1:2380 --logger=zap \
  --cert-file="$pki/etcd.crt" --key-file="$pki/etcd.key" \
  --client-cert-auth --trusted-ca-file="$pki/ca.crt" \
  --log-outputs="$work/etcd/etcd.log" 2>>"$work/etcd/etcd.stderr" &
etcd_pid=$!
i=0
until ETCDCTL_API=3 etcdctl --endpoints=127.0.0.1:2379 --dial-timeout=1s \
    --cacert="$pki/ca.crt" --cert="$pki/root.crt" --key="$pki/root.key" \
    endpoint health >/dev/null 2>&1; do
  i=$((i + 1))
  if [ $i -ge 100 ] || ! kill -0 $etcd_pid 2>/dev/null; then
    echo "our_gateway.sh: etcd did not become healthy" >&2
    tail -5 "$work/etcd/etcd.log" >&2 || true
    exit 1
  fi
  sleep 0.2
done
"$tools/etcd-rbac.sh" 127.0.0.1:2379 "$pki" || {
  echo "our_gateway.sh: tools/etcd-rbac.sh failed" >&2
  kill -TERM $etcd_pid 2>/dev/null
  exit 1
}

cat > "$work/auth-service.yaml" <<CONFIG
server:
  grpc_listen: "127.0.0.1:50052"
  metrics_listen: "127.0.0.1:9102"
$(tls auth-service)
store: "$store"
$(store_tls auth-service)
credentials_key_file: "$work/store.key"
gateway_cert_file: "$IVPN_PKI_DIR/gw.crt"
gateway_key_file: "$IVPN_PKI_DIR/gw.key"
ca_file: "$IVPN_PKI_DIR/ca.crt"
crl_files: ["$IVPN_PKI_DIR/ca.crl"]
CONFIG
# With a second node, its forwarder reports from across the control link.
mobility_listen=127.0.0.1:50053
[ "$second_node" != 1 ] || mobility_listen=0.0.0.0:50053
cat > "$work/mobility-service.yaml" <<CONFIG
server:
  grpc_listen: "$mobility_listen"
  metrics_listen: "127.0.0.1:9103"
$(tls mobility-service)
store: "$store"
$(store_tls mobility-service)
store_key_file: "$work/store.key"
CONFIG
cat > "$work/esp-forwarder.yaml" <<CONFIG
server:
  grpc_listen: "127.0.0.1:50054"
  metrics_listen: "127.0.0.1:9104"
$(tls esp-forwarder)
store: "$store"
$(store_tls esp-forwarder)
store_key_file: "$work/store.key"
ike_listen: "0.0.0.0:500"
natt_listen: "0.0.0.0:4500"
tun_name: "vpn0"
tun_address: "$tun_address"
mobility_service: "127.0.0.1:50053"
CONFIG
if [ "$second_node" = 1 ]; then
  sed -e "s|grpc_listen: \"127.0.0.1:50054\"|grpc_listen: \"$GW2_CTL_ADDR:50054\"|" \
      -e "s|^store: \"etcd:127.0.0.1:2379\"|store: \"etcd:$GW_CTL_ADDR:2379\"|" \
      -e "s|^mobility_service: \"127.0.0.1:50053\"|mobility_service: \"$GW_CTL_ADDR:50053\"|" \
      "$work/esp-forwarder.yaml" > "$work/esp-forwarder-b.yaml"
  forwarders="[\"127.0.0.1:50054\", \"$GW2_CTL_ADDR:50054\"]"
else
  forwarders='["127.0.0.1:50054"]'
fi
ike_replicas=${OUR_GATEWAY_IKE_REPLICAS:-1}
case $ike_replicas in 1|2) ;; *) echo "our_gateway.sh: OUR_GATEWAY_IKE_REPLICAS must be 1 or 2" >&2; exit 1 ;; esac
for r in $(seq 0 $((ike_replicas - 1))); do
  suffix=$([ "$r" = 0 ] && echo "" || echo "-$r")
  grpc_port=$([ "$r" = 0 ] && echo 50051 || echo $((50054 + r)))
  metrics_port=$([ "$r" = 0 ] && echo 9101 || echo $((9104 + r)))
  ike_apis="${ike_apis:-} ike-$r"
  cat > "$work/ike-service$suffix.yaml" <<CONFIG
server:
  grpc_listen: "127.0.0.1:$grpc_port"
  metrics_listen: "127.0.0.1:$metrics_port"
$(tls ike-service)
replica: "ike-$r"
store: "$store"
$(store_tls ike-service)
store_key_file: "$work/store.key"
auth_service: "127.0.0.1:50052"
mobility_service: "127.0.0.1:50053"
forwarders: $forwarders
gateway_id: "$GW_DNS"
pool_v4: "$POOL4"
local_ts: ["$LAN_NET"]
mobike_addresses: [${GW_ADDR_B:+"$GW_ADDR_B"}]
${OUR_GATEWAY_IKE_LIMITS:+$(printf '%s\n' "$OUR_GATEWAY_IKE_LIMITS" | tr ',' '\n' | sed 's/^ *//')}
CONFIG
done

"$bin_root/auth-service/auth-service" --config="$work/auth-service.yaml" 2>"$work/auth-service.log" &
pids="$pids $!"
"$bin_root/mobility-service/mobility-service" --config="$work/mobility-service.yaml" 2>"$work/mobility-service.log" &
pids="$pids $!"
# esp-forwarder under a bounded restart loop; logs of every start in one file.
restarts=${OUR_GATEWAY_FORWARDER_RESTARTS:-3}
(
  trap 'kill -TERM $(cat "$work/esp-forwarder.pid") 2>/dev/null; exit 0' TERM
  n=0
  while :; do
    "$bin_root/esp-forwarder/esp-forwarder" --config="$work/esp-forwarder.yaml" 2>>"$work/esp-forwarder.log" &
    echo $! > "$work/esp-forwarder.pid"
    echo "$! $(date +%s.%N)" >> "$work/esp-forwarder.starts"
    rc=0
    wait $! || rc=$?
    echo "our_gateway.sh: esp-forwarder exited with $rc" >&2
    n=$((n + 1))
    [ $n -le "$restarts" ] || exit 1
  done
) &
sup=$!
if [ "$second_node" = 1 ]; then
  ip netns exec "$GW2_NS" "$bin_root/esp-forwarder/esp-forwarder" \
    --config="$work/esp-forwarder-b.yaml" 2>>"$work/esp-forwarder-b.log" &
  echo $! > "$work/esp-forwarder-b.pid"
  pids="$pids $!"
fi
for r in $(seq 0 $((ike_replicas - 1))); do
  suffix=$([ "$r" = 0 ] && echo "" || echo "-$r")
  "$bin_root/ike-service/ike-service" --config="$work/ike-service$suffix.yaml" \
    2>"$work/ike-service$suffix.log" &
  echo $! > "$work/ike-service$suffix.pid"
  ike_pids="${ike_pids:-} $!"
done
pids="$pids $etcd_pid"
for api in $ike_apis mobility forwarder; do
  case $api in
    mobility) flags="--target=127.0.0.1:50053 --tls_server_name=mobility-service" ;;
    forwarder) flags="--flagfile=$IVPN_WORKDIR/vpnctl-forwarder.flags --tls_server_name=esp-forwarder" ;;
    *) flags="--flagfile=$IVPN_WORKDIR/vpnctl-$api.flags --tls_server_name=ike-service" ;;
  esac
  # shellcheck disable=SC2086
  "$vpnctl" $flags --tls_cert_file="$pki/operator.crt" --tls_key_file="$pki/operator.key" \
    --tls_ca_file="$pki/ca.crt" --wait=20s health >/dev/null
done
# Ready once the forwarder relays to every replica (a replica that started
# before the forwarder reconnects within its back-off).
forwarder_sees_replicas() {  # [netns]
  ${1:+ip netns exec "$1"} python3 - "$ike_replicas" <<'PY'
import re, sys, time, urllib.request
want, deadline = float(sys.argv[1]), time.monotonic() + 20
while time.monotonic() < deadline:
    try:
        text = urllib.request.urlopen("http://127.0.0.1:9104/metrics", timeout=2).read().decode()
        m = re.search(r"^forwarder_ike_replicas (\S+)$", text, re.M)
        if m and float(m.group(1)) >= want:
            sys.exit(0)
    except OSError:
        pass
    time.sleep(0.1)
sys.exit(1)
PY
}
forwarder_sees_replicas ||
  { echo "our_gateway.sh: the forwarder does not see every ike-service replica" >&2; stop_all 1; }
if [ "$second_node" = 1 ]; then
  forwarder_sees_replicas "$GW2_NS" ||
    { echo "our_gateway.sh: the second node's forwarder does not see every ike-service replica" >&2; stop_all 1; }
fi
add_user
echo "our_gateway.sh: split gateway up (etcd $etcd_pid, services$pids, ike-service$ike_pids, forwarder $(cat "$work/esp-forwarder.pid")), user $user added"
touch "$IVPN_WORKDIR/gateway.ready"
# Until TERM; ends early if auth-service, mobility-service or etcd dies, or
# every ike-service replica (the forwarder has its supervisor).
while :; do
  for p in $pids; do
    kill -0 "$p" 2>/dev/null || { echo "our_gateway.sh: process $p exited" >&2; stop_all; }
  done
  alive=0
  for p in $ike_pids; do kill -0 "$p" 2>/dev/null && alive=1; done
  [ $alive = 1 ] || { echo "our_gateway.sh: every ike-service replica exited" >&2; stop_all; }
  sleep 0.5 &
  wait $! || true
done
