#!/usr/bin/env bash
# Installs what the build and the tests need from Debian 12's archive, then
# returns. Idempotent: packages already present are not touched, and apt is
# only called when something is missing. Run as root.
set -euo pipefail

PACKAGES=(
  # Build
  bazel-bootstrap build-essential default-jdk-headless
  protobuf-compiler protobuf-compiler-grpc libprotobuf-dev libgrpc++-dev
  libabsl-dev prometheus-cpp-dev libyaml-cpp-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # Crypto: BoringSSL for IKE/EAP/ESP; the openssl CLI cross-checks it in tests
  android-libboringssl-dev openssl
  # Store: a real etcd for the etcd backend's tests
  etcd-server etcd-client
  # Test hosts: network namespaces, and strongSwan as the reference client
  # (userspace ESP through kernel-libipsec, since this kernel has no ESP)
  iproute2 procps iputils-ping python3 tcpdump nftables conntrack iperf3
  strongswan-charon strongswan-swanctl libstrongswan-standard-plugins
  libstrongswan-extra-plugins libcharon-extra-plugins libcharon-extauth-plugins
  # k8s tests: promtool checks and unit-tests the alerting rules
  # (//k8s:rules_test); both k8s tests read YAML with python3-yaml
  prometheus python3-yaml
  # //k8s:cluster_test: images (podman with runc, a base made by
  # mmdebstrap), kubelet-style gRPC probes (python3-grpcio)
  podman runc mmdebstrap uidmap python3-grpcio
  # tools/fuzz.sh: libFuzzer with ASan and UBSan, linked by lld
  clang-14 lld-14 libclang-rt-14-dev
)

say() { printf '[setup] %s\n' "$*"; }

if [[ $(id -u) -ne 0 ]]; then
  say "run as root (it installs Debian packages)" >&2
  exit 1
fi

missing=()
for package in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if ((${#missing[@]} == 0)); then
  say "all ${#PACKAGES[@]} packages present"
else
  say "installing ${#missing[@]} missing packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  say "installed"
fi

# The Kubernetes schemas //k8s:cluster_test validates against (npm, from
# k8s/schema/package-lock.json), and kubectl, which these machines have.
schema=$(cd "$(dirname "$0")/../k8s/schema" && pwd)
if ! command -v npm >/dev/null; then
  say "npm missing: installing Debian's nodejs and npm"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
lock_sum=$(sha256sum < "$schema/package-lock.json")
if [[ $(cat "$schema/node_modules/.lock-sha256" 2>/dev/null) != "$lock_sum" ]]; then
  say "npm ci in k8s/schema"
  npm ci --prefix "$schema" --no-audit --no-fund --loglevel=error >/dev/null
  echo "$lock_sum" > "$schema/node_modules/.lock-sha256"
fi
command -v kubectl >/dev/null ||
  say "warning: kubectl missing (preinstalled on these machines); the k8s tests need it >= 1.32" >&2
