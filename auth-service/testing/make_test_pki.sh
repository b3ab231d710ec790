#!/bin/sh
# Generates a small test PKI in $1 with the openssl CLI:
#   ca.pem/.key          root CA (P-256)          other_ca.pem  an unrelated CA
#   inter.pem/.key       intermediate CA under the root
#   gateway_rsa, gateway_ec, gateway_ec384, gateway_ed25519 (.pem/.key):
#                        gateway certs (serverAuth + IKE intermediate EKU,
#                        DNS:vpn.example.com); *_chain.pem = leaf + root
#   client_rsa           clientAuth, DNS/email/IPv4/IPv6 SANs (root-signed)
#   client_ec            P-384, no EKU, DNS:ec.example.com (intermediate-signed;
#                        client_ec_chain.pem = leaf + intermediate)
#   client_ipsec         ipsecIKE EKU, DNS:ipsec.example.com
#   client_expired       valid in 2020 only     client_revoked   in crl.pem
#   client_server_eku    serverAuth EKU only    client_other_ca  signed by other_ca
#   crl.pem              the root's CRL (client_revoked)
set -eu
dir=$1
mkdir -p "$dir/db/newcerts"
cd "$dir"
exec 2>openssl.log
: > db/index.txt
echo 1000 > db/serial
echo 1000 > db/crlnumber
cat > ca.cnf <<CNF
[ ca ]
default_ca = ca_default
[ ca_default ]
dir = $dir/db
database = \$dir/index.txt
new_certs_dir = \$dir/newcerts
serial = \$dir/serial
crlnumber = \$dir/crlnumber
default_md = sha256
default_days = 30
default_crl_days = 30
policy = policy_any
unique_subject = no
copy_extensions = none
[ policy_any ]
commonName = supplied
organizationName = optional
[ v3_ca ]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
[ gateway ]
basicConstraints = CA:false
keyUsage = digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, 1.3.6.1.5.5.8.2.2
subjectAltName = DNS:vpn.example.com
[ client_rsa ]
basicConstraints = CA:false
keyUsage = digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = DNS:client.example.com, email:alice@example.com, IP:192.0.2.10, IP:2001:db8::10
[ client_ec ]
basicConstraints = CA:false
keyUsage = digitalSignature
subjectAltName = DNS:ec.example.com
[ client_ipsec ]
basicConstraints = CA:false
extendedKeyUsage = 1.3.6.1.5.5.7.3.17
subjectAltName = DNS:ipsec.example.com
[ client_plain ]
basicConstraints = CA:false
extendedKeyUsage = clientAuth
subjectAltName = DNS:plain.example.com
[ server_only ]
basicConstraints = CA:false
extendedKeyUsage = serverAuth
subjectAltName = DNS:plain.example.com
CNF

key() {  # name type
  case $2 in
    rsa) openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1.key" ;;
    p256) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" ;;
    p384) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$1.key" ;;
    ed25519) openssl genpkey -algorithm ED25519 -out "$1.key" ;;
  esac
  chmod 600 "$1.key"
}
sign() {  # name cn extensions issuer [extra ca args]
  name=$1 cn=$2 ext=$3 issuer=$4
  shift 4
  openssl req -new -key "$name.key" -subj "/O=Test/CN=$cn" -out "$name.csr"
  openssl ca -batch -notext -config ca.cnf -cert "$issuer.pem" -keyfile "$issuer.key" \
    -extensions "$ext" -in "$name.csr" -out "$name.pem" "$@"
}

key ca p256
openssl req -x509 -new -key ca.key -subj "/O=Test/CN=Test Root CA" -days 30 \
  -addext "basicConstraints=critical,CA:true" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.pem
key other_ca p256
openssl req -x509 -new -key other_ca.key -subj "/O=Other/CN=Other CA" -days 30 \
  -addext "basicConstraints=critical,CA:true" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" -out other_ca.pem
key inter p256
sign inter "Test Intermediate CA" v3_ca ca

key gateway_rsa rsa && sign gateway_rsa vpn.example.com gateway ca
key gateway_ec p256 && sign gateway_ec vpn.example.com gateway ca
key gateway_ec384 p384 && sign gateway_ec384 vpn.example.com gateway ca
key gateway_ed25519 ed25519 && sign gateway_ed25519 vpn.example.com gateway ca
for g in gateway_rsa gateway_ec gateway_ec384 gateway_ed25519; do
  cat $g.pem ca.pem > ${g}_chain.pem
done

key client_rsa rsa && sign client_rsa client.example.com client_rsa ca
key client_ec p384 && sign client_ec ec.example.com client_ec inter
cat client_ec.pem inter.pem > client_ec_chain.pem
key client_ipsec p256 && sign client_ipsec ipsec.example.com client_ipsec ca
key client_expired p256 && sign client_expired expired.example.com client_plain ca \
  -startdate 20200101000000Z -enddate 20200201000000Z
key client_revoked p256 && sign client_revoked revoked.example.com client_plain ca
key client_server_eku p256 && sign client_server_eku plain.example.com server_only ca
key client_other_ca p256 && sign client_other_ca plain.example.com client_plain other_ca

openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -revoke client_revoked.pem
openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -gencrl -out crl.pem
