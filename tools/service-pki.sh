#!/bin/sh
# Makes the PKI for mutual TLS between the services: one CA and one
# certificate per role, the role named in a SAN URI
# (spiffe://vpn-gateway/<role>), in the CN (etcd's user name under client-
# certificate auth) and in a DNS SAN (the name a client checks the server
# against, whatever address it dialled).
#
#   tools/service-pki.sh DIR [ETCD_DNS_NAMES]
#
# DIR/ca.crt, ca.key                   the services' CA (ca.key stays offline)
# DIR/<role>.crt, <role>.key           ike-service, auth-service,
#                                      mobility-service, esp-forwarder,
#                                      operator (vpnctl), gateway (all four
#                                      in one process), etcd (server and
#                                      peer; SANs from ETCD_DNS_NAMES,
#                                      comma-separated names or IP
#                                      addresses, plus localhost and
#                                      127.0.0.1), root (etcd's admin user)
# DIR/other-ca.crt, other-ca.key       an unrelated CA, and under it
# DIR/other-ca-ike-service.crt, .key   a certificate claiming the ike-service
#                                      role (tests: a foreign CA is refused)
#
# Keys are ECDSA P-256, mode 0600. Existing files are kept, so a second run
# only adds what is missing.
set -eu
dir=${1:?usage: service-pki.sh DIR [ETCD_DNS_NAMES]}
etcd_names=${2:-etcd}
mkdir -p "$dir"
cd "$dir"
umask 077
days=${SERVICE_PKI_DAYS:-825}

new_ca() {  # name subject
  [ -f "$1.crt" ] && return 0
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$1.key" -out "$1.crt" -days "$days" -subj "/CN=$2" \
    -addext "basicConstraints=critical,CA:true" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

new_cert() {  # ca name role subjectAltName extendedKeyUsage
  ca=$1 name=$2 role=$3 san=$4 eku=$5
  [ -f "$name.crt" ] && return 0
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$name.key" -out "$name.csr" -subj "/CN=$role" 2>/dev/null
  printf '%s\n' "basicConstraints=critical,CA:false" \
    "keyUsage=critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage=$eku" "subjectAltName=$san" > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA "$ca.crt" -CAkey "$ca.key" \
    -CAcreateserial -days "$days" -sha256 -extfile "$name.ext" \
    -out "$name.crt" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}

new_ca ca "vpn-gateway services CA"
for role in ike-service auth-service mobility-service esp-forwarder; do
  new_cert ca "$role" "$role" "URI:spiffe://vpn-gateway/$role,DNS:$role" \
    "serverAuth,clientAuth"
done
new_cert ca operator operator "URI:spiffe://vpn-gateway/operator" clientAuth
# All four in one process: etcd's `gateway` user, and the operator API's
# server certificate naming the roles vpnctl checks.
new_cert ca gateway gateway \
  "URI:spiffe://vpn-gateway/gateway,DNS:gateway,DNS:ike-service,DNS:auth-service,DNS:esp-forwarder" \
  "serverAuth,clientAuth"
new_cert ca root root "URI:spiffe://vpn-gateway/etcd-root" clientAuth
etcd_san="DNS:localhost,IP:127.0.0.1,IP:::1"
old_ifs=$IFS
IFS=,
for name in $etcd_names; do
  case $name in
    *:*) etcd_san="$etcd_san,IP:$name" ;;       # IPv6
    *[!0-9.]*) etcd_san="$etcd_san,DNS:$name" ;;  # a name
    *) etcd_san="$etcd_san,IP:$name" ;;         # IPv4
  esac
done
IFS=$old_ifs
new_cert ca etcd etcd "$etcd_san" "serverAuth,clientAuth"

new_ca other-ca "an unrelated CA"
new_cert other-ca other-ca-ike-service ike-service \
  "URI:spiffe://vpn-gateway/ike-service,DNS:ike-service" "serverAuth,clientAuth"
rm -f ca.srl other-ca.srl
chmod 0600 ./*.key
