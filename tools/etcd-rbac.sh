#!/bin/sh
# The services' etcd roles: which key prefixes each one may read or write.
# The one source of truth for them (docs/architecture.md, "Store access",
# shows the same table). Under --client-cert-auth etcd takes the user name
# from the client certificate's CN, so each service's certificate from
# tools/service-pki.sh is its etcd user; users have no password.
#
#   tools/etcd-rbac.sh ENDPOINTS PKI_DIR
#
# ENDPOINTS is etcdctl's --endpoints (host:port[,...]); PKI_DIR holds ca.crt
# and root.crt/root.key (the etcd admin). Creates root (role root), one user
# and one role per service, grants the table below, revokes a prefix a role
# holds that the table no longer names, and enables auth. Safe to run again.
set -eu
endpoints=${1:?usage: etcd-rbac.sh ENDPOINTS PKI_DIR}
pki=${2:?usage: etcd-rbac.sh ENDPOINTS PKI_DIR}

# role              permission  prefix
# ike-service: its SA records, the CHILD records it creates and deletes,
# and virtual-IP leases (ike-service/pool/address_pool.cc).
# auth-service: users and the shared failure counts.
# mobility-service: endpoint moves rewrite IKE and CHILD records in one Txn,
# path history, and an expired SA's records and lease go together.
# esp-forwarder: reads CHILD SAs; owns the sequence-number checkpoints.
table='
ike-service       readwrite   ike/
ike-service       readwrite   child/
ike-service       readwrite   pool/
auth-service      readwrite   users/
auth-service      readwrite   auth/failures/
mobility-service  readwrite   ike/
mobility-service  readwrite   child/
mobility-service  readwrite   mobility/
mobility-service  readwrite   pool/
esp-forwarder     read        child/
esp-forwarder     readwrite   seq/
'
# `gateway` (all four services in one process, one certificate) holds every
# role.
gateway_roles="ike-service auth-service mobility-service esp-forwarder"

ctl() {
  ETCDCTL_API=3 /usr/bin/etcdctl --endpoints="$endpoints" --cacert="$pki/ca.crt" \
    --cert="$pki/root.crt" --key="$pki/root.key" --dial-timeout=3s \
    --command-timeout=10s "$@"
}

ensure_user() {  # name
  ctl user get "$1" >/dev/null 2>&1 || ctl user add "$1" --no-password >/dev/null
}
ensure_role() {  # name
  ctl role get "$1" >/dev/null 2>&1 || ctl role add "$1" >/dev/null
}

ensure_role root
ensure_user root
ctl user grant-role root root >/dev/null

roles=$(printf '%s\n' "$table" | awk 'NF == 3 { print $1 }' | sort -u)
for role in $roles; do
  ensure_role "$role"
  ensure_user "$role"
  printf '%s\n' "$table" | awk -v r="$role" '$1 == r { print $2, $3 }' |
    while read -r perm prefix; do
      # Granting a prefix the role already holds replaces its permission.
      ctl role grant-permission "$role" "$perm" "$prefix" --prefix=true >/dev/null
    done
  # `role get` lists each granted prefix as "(prefix P)".
  ctl role get "$role" | sed -n 's/.*(prefix \(.*\))$/\1/p' | sort -u |
    while read -r held; do
      printf '%s\n' "$table" | awk -v r="$role" -v p="$held" '$1 == r && $3 == p { f = 1 } END { exit !f }' ||
        ctl role revoke-permission "$role" "$held" --prefix=true >/dev/null
    done
  ctl user grant-role "$role" "$role" >/dev/null
done
ensure_user gateway
for role in $gateway_roles; do ctl user grant-role gateway "$role" >/dev/null; done
ctl auth enable >/dev/null
