#!/usr/bin/env bash
# //k8s:cluster_test: the dev overlay launched as a node would run it
# (k8s/cluster/node.py, in podman containers from k8s/images/build.sh),
# with real strongSwan clients through it (k8s/README.md, "Cluster test"):
# 1. `kubectl kustomize k8s/overlays/dev` (and prod, and monitoring)
#    validated against the Kubernetes schemas, strictly
#    (k8s/schema/validate.js, whose own self-test runs first);
# 2. the images built from this build's binaries;
# 3. the deployment (k8s/cluster/overlay: dev with two ike-service pods)
#    started for each harness run: EAP-MSCHAPv2 with iperf3 traffic and the
#    kill of the ike-service pod owning the SA (dataplane_interop_test.py),
#    then MOBIKE over two paths (interop_test.py). The NetworkPolicy table
#    (k8s/cluster/reachability.txt) is checked at each start.
set -euo pipefail
# Bazel's strict test environment leaves /usr/sbin out of PATH (ip, nft).
export PATH="/usr/sbin:/sbin:/usr/bin:/bin${PATH:+:$PATH}"
if [[ -n ${TEST_SRCDIR:-} && -n ${TEST_WORKSPACE:-} ]]; then
  root="$TEST_SRCDIR/$TEST_WORKSPACE"
else
  root=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)/bazel-bin
fi
say() { printf '[cluster_test] %s\n' "$*"; }
if [[ $(id -u) -ne 0 ]]; then
  say "SKIP: needs root (network namespaces, containers)"
  exit 0
fi
missing=()
for tool in kubectl podman runc mmdebstrap node nft swanctl iperf3; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
/usr/bin/python3 -c "import grpc, yaml" 2>/dev/null || missing+=(python3-grpcio python3-yaml)
schema=$(dirname "$(readlink -f "$root/k8s/schema/validate.js")")
[[ -d $schema/node_modules ]] || missing+=("k8s/schema/node_modules (npm ci)")
if ((${#missing[@]})); then
  say "FAIL: missing ${missing[*]} (run tools/setup.sh; kubectl is preinstalled on these machines)"
  exit 1
fi

# kustomize refuses the runfiles' symlinked kustomization files: a plain copy.
tree=$(mktemp -d /tmp/vpn-cluster.XXXXXX)
# What a node left behind if it was killed before its clean-up.
leftovers() {
  # shellcheck source=images/podman-env.sh
  source "$root/k8s/images/podman-env.sh"
  podman_env
  podman ps -a -q --filter label=io.vpn-gateway.node | xargs -r podman rm -f >/dev/null
  ip netns list | awk '/^k8s-/ {print $1}' | xargs -r -n1 ip netns delete
}
leftovers
trap 'leftovers; rm -rf "$tree"' EXIT
mkdir -p "$tree/tools"
cp -rL "$root/k8s" "$tree/"
cp -L "$root/tools/service-pki.sh" "$root/tools/etcd-rbac.sh" "$tree/tools/"

say "1. schemas, strictly: kubectl kustomize k8s/overlays/dev (and prod, monitoring)"
"$schema/selftest.sh" >/dev/null || { say "FAIL: k8s/schema/selftest.sh"; "$schema/selftest.sh"; exit 1; }
for dir in overlays/dev overlays/prod monitoring; do
  kubectl kustomize "$tree/k8s/$dir" |
    /usr/bin/python3 -c 'import sys,yaml,json; json.dump([d for d in yaml.safe_load_all(sys.stdin) if d], sys.stdout)' |
    node "$schema/validate.js"
done

say "2. images from this build's binaries"
"$root/k8s/images/build.sh" --binaries "$root"

vpnctl=$root/tools/vpnctl/vpnctl
gateway="exec $tree/k8s/cluster/cluster_gateway.sh $tree $vpnctl"
status=0
say "3a. EAP-MSCHAPv2 with traffic, and the kill of the ike-service pod that owns the SA"
XML_OUTPUT_FILE= python3 "$root/test/interop/dataplane_interop_test.py" \
  --split-gateway-cmd "$gateway" --vpnctl "$vpnctl" --gateway-timeout 120 \
  --scenarios=iperf-split,ike-takeover --seconds 2 --deadline 400 || status=1
say "3b. MOBIKE: the client's path changes"
XML_OUTPUT_FILE= python3 "$root/test/interop/interop_test.py" \
  --gateway-cmd "$gateway" --wait-ready --vpnctl "$vpnctl" --gateway-timeout 120 \
  --two-paths --no-traffic --scenarios=mobike-path-switch --deadline 300 || status=1
exit $status
