#!/usr/bin/env bash
# Checks k8s/base against the real binaries: every service config in the
# ConfigMap must pass that service's own --check_config (secret and TLS paths
# are pointed at stand-in files), and every Deployment/DaemonSet must name a
# config that exists, with probe ports matching the config's grpc_listen.
# Then renders base, dev and prod with `kubectl kustomize` and checks them
# with overlays_check.py (replicas, etcd members, PDBs, network policies).
set -euo pipefail
root="${TEST_SRCDIR:?}/${TEST_WORKSPACE:?}"
work=$(mktemp -d "${TEST_TMPDIR:-/tmp}/k8s.XXXXXX")
# One throw-away key and certificate stand in for every mounted PEM file.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -subj /CN=stand-in -keyout "$work/stand-in.key" -out "$work/stand-in.crt" 2>/dev/null
status=0
python3 - "$root" "$work" <<'PY' || status=1
import os, re, subprocess, sys, yaml
root, work = sys.argv[1], sys.argv[2]
docs = []
for name in sorted(os.listdir(f"{root}/k8s/base")):
    if name.endswith(".yaml") and name != "kustomization.yaml":
        with open(f"{root}/k8s/base/{name}") as f:
            docs += [d for d in yaml.safe_load_all(f) if d]
kustomization = yaml.safe_load(open(f"{root}/k8s/base/kustomization.yaml"))
listed = set(kustomization["resources"])
present = {n for n in os.listdir(f"{root}/k8s/base") if n.endswith(".yaml") and n != "kustomization.yaml"}
assert listed == present, f"kustomization.yaml lists {sorted(listed)} but k8s/base has {sorted(present)}"

configs = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
failures = 0
for file, text in configs.items():
    service = file[:-len(".yaml")]
    # Stand-in files for the mounted Secrets, mode 0400 as in the manifests.
    def stand_in(match):
        path = os.path.join(work, match.group(0).lstrip("/").replace("/", "_"))
        if not os.path.exists(path):
            pem = {".crt": "stand-in.crt", ".key": "stand-in.key"}.get(os.path.splitext(path)[1])
            if pem and not path.endswith(("store.key", "credentials.key")):
                with open(os.path.join(work, pem), "rb") as src:
                    data = src.read()
            else:
                data = os.urandom(32)  # a sealing key: 32 random bytes
            with open(path, "wb") as f:
                f.write(data)
            os.chmod(path, 0o400)
        return path
    text = re.sub(r"/etc/vpn/[A-Za-z0-9_./-]+", stand_in, text)
    path = os.path.join(work, file)
    with open(path, "w") as f:
        f.write(text)
    binary = f"{root}/{service}/{service}"
    run = subprocess.run([binary, f"--config={path}", "--check_config"],
                         capture_output=True, text=True, timeout=30)
    ok = run.returncode == 0
    failures += not ok
    print(f"{'ok  ' if ok else 'FAIL'} {service}: --check_config exit {run.returncode} {run.stderr.strip()[-300:]}")
    # The kubelet's gRPC probes carry no certificate: they must hit the
    # plaintext health-only port, never the mTLS one.
    health_port = int(yaml.safe_load(text)["server"]["health_listen"].rsplit(":", 1)[1])
    workload = next(d for d in docs if d["kind"] in ("Deployment", "DaemonSet") and d["metadata"]["name"] == service)
    container = workload["spec"]["template"]["spec"]["containers"][0]
    assert f"--config=/etc/vpn/config/{file}" in container["args"], f"{service}: args {container['args']}"
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"]["port"] == health_port, f"{service}: {probe} port"
    assert any(p["containerPort"] == health_port for p in container["ports"]), f"{service}: health port"
print(f"{len(configs) - failures} passed, {failures} failed")
sys.exit(1 if failures else 0)
PY

# The overlays, rendered as an operator would. kustomize is given a plain
# copy of k8s/, not the runfiles' symlinks.
if ! command -v kubectl >/dev/null; then
  echo "FAIL kubectl not found on PATH ($PATH): the overlay checks render with kubectl kustomize (kubectl >= 1.32)"
  exit 1
fi
cp -rL "$root/k8s" "$work/k8s"
for overlay in base overlays/dev overlays/prod; do
  out="$work/$(basename "$overlay").yaml"
  if ! kubectl kustomize "$work/k8s/$overlay" >"$out" 2>"$out.err"; then
    echo "FAIL kubectl kustomize k8s/$overlay: $(cat "$out.err")"
    status=1
  fi
done
python3 "$root/k8s/overlays_check.py" "$work" || status=1
exit "$status"
