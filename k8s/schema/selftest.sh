#!/usr/bin/env bash
# Self-test of validate.js: a small valid Deployment and NetworkPolicy must
# pass, and four broken copies of them must each fail with the expected line.
# Needs `npm ci` to have been run in this folder.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ ! -d "$here/node_modules/kubernetes-models" ]]; then
  echo "FAIL node_modules missing: run 'npm ci' in $here"
  exit 1
fi

good='[
 {"apiVersion": "apps/v1", "kind": "Deployment",
  "metadata": {"name": "web", "labels": {"app.kubernetes.io/name": "web"}},
  "spec": {"replicas": 2,
   "selector": {"matchLabels": {"app": "web"}},
   "template": {
    "metadata": {"labels": {"app": "web"}},
    "spec": {
     "containers": [{"name": "web", "image": "web:1", "imagePullPolicy": "IfNotPresent",
       "ports": [{"containerPort": 8080}],
       "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
       "volumeMounts": [{"name": "config", "mountPath": "/etc/web"}]}],
     "volumes": [{"name": "config", "configMap": {"name": "web-config", "defaultMode": 292}}]}}}},
 {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
  "metadata": {"name": "web"},
  "spec": {"podSelector": {"matchLabels": {"app": "web"}},
   "policyTypes": ["Ingress"],
   "ingress": [{"ports": [{"port": 8080, "protocol": "TCP"}]}]}}
]'

failures=0
# check NAME WANT_EXIT WANT_LINE SED_EXPR: runs validate.js on the fixture
# edited by SED_EXPR; WANT_LINE must appear in stdout.
check() {
  local name=$1 want_exit=$2 want_line=$3 edit=$4 out rc=0
  out=$(sed "$edit" <<<"$good" | node "$here/validate.js" 2>&1) || rc=$?
  if [[ $rc -ne $want_exit ]] || ! grep -qF -- "$want_line" <<<"$out"; then
    echo "FAIL $name: exit $rc (want $want_exit), want line '$want_line', got:"
    sed 's/^/    /' <<<"$out"
    failures=$((failures + 1))
  else
    echo "ok   $name"
  fi
}

check "valid objects pass" 0 "validated 2 objects (2 strict)" ''
check "misspelled container field" 1 \
  "Deployment/web: spec.template.spec.containers[0].imagePullPolcy: unknown field" \
  's/"imagePullPolicy"/"imagePullPolcy"/'
check "wrong type for replicas" 1 \
  "Deployment/web: spec.replicas: must be integer" \
  's/"replicas": 2/"replicas": "two"/'
check "unknown NetworkPolicy spec field" 1 \
  "NetworkPolicy/web: spec.ingres: unknown field" \
  's/"policyTypes"/"ingres": [], "policyTypes"/'
check "unknown configMap volume field" 1 \
  "Deployment/web: spec.template.spec.volumes[0].configMap.defaultMod: unknown field" \
  's/"defaultMode"/"defaultMod"/'

echo "$((5 - failures)) passed, $failures failed"
[[ $failures -eq 0 ]]
