#!/usr/bin/env bash
# Builds the gateway's images with podman, without a registry:
#   vpn-gateway/base:bookworm    Debian 12 made by mmdebstrap, imported
#   vpn-gateway/<service>:VERSION one per service (Dockerfile)
#   vpn-gateway/etcd:3.4.23       Debian's etcd-server binary (Dockerfile.etcd)
#
#   k8s/images/build.sh [--binaries DIR] [--version V]
#
# DIR holds <service>/<service> and common/crypto/libvpn_crypto_boringssl.so
# as Bazel lays them out; without it the script runs
# `bazel build -c opt` and uses bazel-bin. The base is rebuilt only when its
# package list changes (its tag carries a hash of the list), and
# SOURCE_DATE_EPOCH makes mmdebstrap's output the same for the same packages.
# Run as root; needs podman, runc, mmdebstrap (tools/setup.sh installs them).
set -euo pipefail
here=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=podman-env.sh
source "$here/podman-env.sh"

SERVICES=(ike-service auth-service mobility-service esp-forwarder)
BASE_PACKAGES=libgrpc++1.51,libprotobuf32,libabsl20220623,libprometheus-cpp-core1.0,libprometheus-cpp-pull1.0,libyaml-cpp0.7,android-libboringssl,ca-certificates
ETCD_VERSION=3.4.23

say() { printf '[images] %s\n' "$*"; }
die() { printf '[images] %s\n' "$*" >&2; exit 1; }

binaries="" version=0.1.0
while (($#)); do
  case $1 in
    --binaries) binaries=$2; shift 2 ;;
    --version) version=$2; shift 2 ;;
    *) die "unknown argument $1 (usage: build.sh [--binaries DIR] [--version V])" ;;
  esac
done
[[ $(id -u) -eq 0 ]] || die "run as root"
for tool in podman runc mmdebstrap; do
  command -v "$tool" >/dev/null || die "$tool missing: run tools/setup.sh"
done
[[ -x /usr/bin/etcd ]] || die "/usr/bin/etcd missing (Debian etcd-server): run tools/setup.sh"
/usr/bin/etcd --version | grep -q "etcd Version: $ETCD_VERSION" ||
  die "/usr/bin/etcd is not etcd $ETCD_VERSION"
podman_env

if [[ -z $binaries ]]; then
  say "bazel build -c opt ${SERVICES[*]}"
  (cd "$repo" && bazel build -c opt "${SERVICES[@]/#/\/\/}")
  binaries=$(cd "$repo" && bazel info -c opt bazel-bin)
fi

work=$(mktemp -d /tmp/vpn-images.XXXXXX)
trap 'rm -rf "$work"' EXIT

base_id=$(printf '%s' "$BASE_PACKAGES" | sha256sum | cut -c1-12)
if podman image exists "vpn-gateway/base:bookworm-$base_id"; then
  say "base vpn-gateway/base:bookworm-$base_id present"
else
  say "mmdebstrap Debian 12 with $BASE_PACKAGES (about a minute)"
  SOURCE_DATE_EPOCH=$(date -d 2025-05-20 +%s) mmdebstrap --quiet --variant=essential \
    --include="$BASE_PACKAGES" bookworm "$work/base.tar"
  podman import --quiet "$work/base.tar" "vpn-gateway/base:bookworm-$base_id" >/dev/null
  rm -f "$work/base.tar"
fi
podman tag "vpn-gateway/base:bookworm-$base_id" vpn-gateway/base:bookworm

provider=$binaries/common/crypto/libvpn_crypto_boringssl.so
[[ -f $provider ]] || die "$provider missing"
for service in "${SERVICES[@]}"; do
  binary=$binaries/$service/$service
  [[ -x $binary ]] || die "$binary missing"
  ctx=$work/$service
  mkdir -p "$ctx/bin"
  cp "$binary" "$provider" "$ctx/bin/"
  podman build --quiet --pull=never --build-arg SERVICE="$service" -f "$here/Dockerfile" \
    -t "vpn-gateway/$service:$version" "$ctx" >/dev/null
  say "vpn-gateway/$service:$version"
done
mkdir -p "$work/etcd"
cp /usr/bin/etcd "$work/etcd/etcd"
podman build --quiet --pull=never -f "$here/Dockerfile.etcd" -t "vpn-gateway/etcd:$ETCD_VERSION" \
  "$work/etcd" >/dev/null
say "vpn-gateway/etcd:$ETCD_VERSION"
