#!/usr/bin/env bash
# config/gateway.example.yaml must pass gateway --check_config (its files
# pointed at throw-away stand-ins), so the README's example never rots.
set -euo pipefail
root="${TEST_SRCDIR:?}/${TEST_WORKSPACE:?}"
work=$(mktemp -d "${TEST_TMPDIR:-/tmp}/example.XXXXXX")
umask 077
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=vpn.example.com \
  -keyout "$work/gateway.key" -out "$work/gateway.crt" 2>/dev/null
cp "$work/gateway.crt" "$work/client-ca.crt"
head -c 32 /dev/urandom > "$work/store.key"
# MD4 of UTF-16LE "clientPass" (RFC 2759 9.2).
printf 'users:\n  - name: alice\n    nt_hash: 44ebba8d5312b8d611474411f56989ae\n' > "$work/users.yaml"
sed -e "s#/etc/vpn-gateway#$work#g" -e "s#/var/lib/vpn-gateway#$work#g" \
  "$root/config/gateway.example.yaml" > "$work/gateway.yaml"
"$root/gateway/gateway" --config="$work/gateway.yaml" --check_config
echo "1 passed, 0 failed"
