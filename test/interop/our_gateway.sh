#!/bin/sh
# Runs our `gateway` (all four services, embedded store) in the gateway
# namespace, configured from the harness's topology facts and test PKI, and
# adds the test user through auth-service's API. interop_test.py starts it
# through --gateway-cmd, with the facts (GW_DNS, POOL4, LAN_NET, ...),
# IVPN_PKI_DIR and IVPN_WORKDIR in the environment.
#   our_gateway.sh PATH-TO-gateway PATH-TO-vpnctl [USER PASSWORD]
set -eu
gateway=$1
vpnctl=$2
user=${3:-alice}
password=${4:-interop-Pa55word}
work=$IVPN_WORKDIR/our-gateway
mkdir -p "$work"
umask 077
head -c 32 /dev/urandom > "$work/store.key"
# The TUN side of the gateway is the pool's first host (10.10.0.0/24 -> .1/24).
tun_address=$(python3 -c "import ipaddress,sys; n=ipaddress.ip_network(sys.argv[1]); print(f'{n.network_address+1}/{n.prefixlen}')" "$POOL4")
cat > "$work/gateway.yaml" <<CONFIG
metrics_listen: "127.0.0.1:9100"
store: "embedded:$work/store"
store_key_file: "$work/store.key"
ike_service:
  gateway_id: "$GW_DNS"
  pool_v4: "$POOL4"
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
CONFIG
"$gateway" --config="$work/gateway.yaml" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid' TERM INT
"$vpnctl" --target=127.0.0.1:50052 --wait=20s health >/dev/null
printf '%s\n' "$password" | "$vpnctl" --target=127.0.0.1:50052 user-add "$user" >/dev/null
echo "our_gateway.sh: gateway up (pid $pid), user $user added"
touch "$IVPN_WORKDIR/gateway.ready"
wait $pid
