#!/usr/bin/env bash
# Our gateway as k8s/overlays/dev deploys it, for the interop harness: its
# --gateway-cmd (test/interop/interop_test.py) or --split-gateway-cmd
# (dataplane_interop_test.py). It runs in the harness's gateway namespace,
# which becomes the one Kubernetes node (node.py), with the topology facts,
# IVPN_PKI_DIR and IVPN_WORKDIR in the environment.
#
#   cluster_gateway.sh REPO_ROOT VPNCTL [USER PASSWORD]
#
# What an operator does, in k8s/README.md's order:
# 1. render k8s/cluster/overlay (dev, with a second ike-service replica) and
#    set the site's values in the ConfigMap: gateway_id, the protected
#    network (local_ts), the MOBIKE address;
# 2. make the Secrets with README's commands (tools/service-pki.sh, kubectl
#    create secret), plus the gateway certificate and client CA from the
#    harness's PKI;
# 3. apply: node.py starts every pod from the images of k8s/images/build.sh;
# 4. once etcd is up, tools/etcd-rbac.sh through a port-forward to etcd-0;
# 5. add the test user with vpnctl user-add.
# Then it writes the harness's files (IVPN_WORKDIR/vpnctl-*.flags,
# our-gateway/ike-service[-1].{pid,log,metrics,replica}, esp-forwarder.log) and
# touches IVPN_WORKDIR/gateway.ready. SIGTERM takes the node down.
set -euo pipefail
repo=$1
vpnctl=$2
user=${3:-alice}
password=${4:-interop-Pa55word}
here=$repo/k8s/cluster
work=$IVPN_WORKDIR/our-gateway
mkdir -p "$work"
umask 077
rm -f "$IVPN_WORKDIR/gateway.ready"
say() { printf 'cluster_gateway.sh: %s\n' "$*"; }
die() { say "$*" >&2; exit 1; }
command -v kubectl >/dev/null || die "kubectl missing (preinstalled on these machines; see k8s/README.md)"

# 1. Render, then the site's values: each replaced line must exist once.
kubectl kustomize "$here/overlay" > "$work/rendered.yaml"
/usr/bin/python3 - "$work/rendered.yaml" <<EOF
import re, sys, yaml
path = sys.argv[1]
docs = [d for d in yaml.safe_load_all(open(path)) if d]
site = {
    'gateway_id: "vpn.example.com"': 'gateway_id: "$GW_DNS"',
    'local_ts: ["10.0.0.0/8"]': 'local_ts: ["$LAN_NET"]' + ('\nmobike_addresses: ["$GW_ADDR_B"]' if "$GW_ADDR_B" else ""),
}
for d in docs:
    if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "vpn-gateway-config":
        text = d["data"]["ike-service.yaml"]
        for old, new in site.items():
            if text.count(old) != 1:
                sys.exit(f"ike-service.yaml in the ConfigMap has {text.count(old)} lines '{old}'")
            text = text.replace(old, new)
        d["data"]["ike-service.yaml"] = text
yaml.safe_dump_all(docs, open(path, "w"), sort_keys=False)
EOF

# 2. Secrets, as k8s/README.md makes them.
pki=$work/pki
"$repo/tools/service-pki.sh" "$pki" etcd,etcd-0.etcd,etcd-1.etcd,etcd-2.etcd >/dev/null
[[ -f $work/store.key ]] || head -c 32 /dev/urandom > "$work/store.key"
[[ -f $work/credentials.key ]] || head -c 32 /dev/urandom > "$work/credentials.key"
secret() { kubectl -n vpn-gateway create secret generic "$@" --dry-run=client -o yaml; echo ---; }
{
  for role in ike-service auth-service mobility-service esp-forwarder; do
    secret "vpn-mtls-$role" --from-file=tls.crt="$pki/$role.crt" \
      --from-file=tls.key="$pki/$role.key" --from-file=ca.crt="$pki/ca.crt"
  done
  secret vpn-store-key --from-file=store.key="$work/store.key"
  secret vpn-credentials-key --from-file=credentials.key="$work/credentials.key"
  secret vpn-gateway-certificate --from-file=tls.crt="$IVPN_PKI_DIR/gw.crt" \
    --from-file=tls.key="$IVPN_PKI_DIR/gw.key"
  secret vpn-client-ca --from-file=ca.crt="$IVPN_PKI_DIR/ca.crt"
  secret vpn-etcd-tls --from-file=tls.crt="$pki/etcd.crt" --from-file=tls.key="$pki/etcd.key" \
    --from-file=ca.crt="$pki/ca.crt"
} > "$work/secrets.yaml"

# 3. Apply.
# shellcheck source=../images/podman-env.sh
source "$repo/k8s/images/podman-env.sh"
podman_env
# Its own session: its clean-up outlives a SIGKILL of this script's group.
setsid /usr/bin/python3 "$here/node.py" run --manifests "$work/rendered.yaml" "$work/secrets.yaml" \
  --work "$work/cluster" --node-netns "$GW_NS" --node-addr "$GW_ADDR" \
  --node-label vpn-gateway/edge=true --port-forward etcd-0:2379 \
  --probe-pod stranger:vpn-gateway --probe-pod operator:vpn-gateway:vpn-gateway/operator=true \
  --probe-pod prometheus:monitoring &
node_pid=$!
trap 'kill -TERM $node_pid 2>/dev/null || true; wait $node_pid; exit 0' TERM INT

status() { /usr/bin/python3 -c "import json,sys; s=json.load(open('$work/cluster/status.json')); $1"; }
until [[ -f $work/cluster/status.json ]] && status "sys.exit(0 if s['ready'] else 1)"; do
  kill -0 $node_pid 2>/dev/null || die "node.py stopped before the pods were Ready"
  sleep 0.5
done

# The NetworkPolicies, enforced: what must connect and what must not.
/usr/bin/python3 "$here/node.py" check-reach --work "$work/cluster" --table "$here/reachability.txt" \
  > "$work/reachability.log" || { cat "$work/reachability.log" >&2; die "NetworkPolicy check failed"; }

# 4. etcd's users and roles, through the port-forward.
"$repo/tools/etcd-rbac.sh" 127.0.0.1:2379 "$pki" >/dev/null || die "tools/etcd-rbac.sh failed"

# The harness's view, from the pods' status in one read: vpnctl reaches
# each API at its pod (the node may reach its pods; the NetworkPolicies only
# restrict pods), and each ike-service pod's pid, log, metrics and replica ID.
/usr/bin/python3 - "$work" "$IVPN_WORKDIR" "$pki" "$GW_ADDR" <<'PY'
import json, os, sys
work, harness, pki, gw_addr = sys.argv[1:]
pods = json.load(open(os.path.join(work, "cluster", "status.json")))["pods"]
def pod(owner, ordinal=0):
    return next(p for p in pods if p["owner"] == owner and p["ordinal"] == ordinal)
def write(path, text):
    with open(path, "w") as f:
        f.write(text + "\n")
def link(target, path):
    if os.path.lexists(path):
        os.unlink(path)
    os.symlink(target, path)
for api, target in (("ike-0", f"{pod('ike-service', 0)['ip']}:50051"),
                    ("ike-1", f"{pod('ike-service', 1)['ip']}:50051"),
                    ("auth", f"{pod('auth-service')['ip']}:50052"),
                    ("forwarder", f"{gw_addr}:50054")):
    write(os.path.join(harness, f"vpnctl-{api}.flags"),
          f"--target={target}\n--tls_cert_file={pki}/operator.crt\n"
          f"--tls_key_file={pki}/operator.key\n--tls_ca_file={pki}/ca.crt")
for i, suffix in ((0, ""), (1, "-1")):
    p = pod("ike-service", i)
    stem = os.path.join(work, f"ike-service{suffix}")
    write(stem + ".pid", str(p["containers"][0]["pid"]))
    link(p["containers"][0]["log"], stem + ".log")
    write(stem + ".metrics", f"http://{p['ip']}:9101/metrics")
    write(stem + ".replica", p["name"])
link(pod("esp-forwarder")["containers"][0]["log"], os.path.join(work, "esp-forwarder.log"))
PY

# 5. The test user.
"$vpnctl" --flagfile="$IVPN_WORKDIR/vpnctl-auth.flags" --tls_server_name=auth-service --wait=20s health >/dev/null ||
  die "auth-service does not answer vpnctl"
printf '%s\n' "$password" |
  "$vpnctl" --flagfile="$IVPN_WORKDIR/vpnctl-auth.flags" user-add "$user" >/dev/null
say "cluster up ($(status "print(len(s['pods']))") pods), user $user added"
touch "$IVPN_WORKDIR/gateway.ready"
wait $node_pid
