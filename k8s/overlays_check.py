"""Checks the rendered base, dev and prod manifests (k8s/README.md,
"Overlays" and "Network policies").

Usage: overlays_check.py RENDER_DIR, where RENDER_DIR holds base.yaml,
dev.yaml and prod.yaml, each the output of `kubectl kustomize`. Prints one
line per check, then "N passed, N failed"; exits 1 if any failed.
"""
import os
import re
import sys

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from label_selector import matches  # noqa: E402

NAMESPACE = "vpn-gateway"
SERVICES = ["ike-service", "auth-service", "mobility-service", "esp-forwarder"]
ETCD_ENDPOINTS = re.compile(r'^\s*store:\s*"etcd:([^"]*)"\s*$', re.M)

# Expected replicas per render (the DaemonSet has none).
REPLICAS = {
    "base": {"ike-service": 2, "auth-service": 2, "mobility-service": 2, "etcd": 3},
    "dev": {"ike-service": 1, "auth-service": 1, "mobility-service": 1, "etcd": 1},
    "prod": {"ike-service": 3, "auth-service": 2, "mobility-service": 2, "etcd": 3},
}

# Callers that are not pods of the render: (name, namespace, namespace labels, pod labels).
OPERATOR = ("operator", NAMESPACE, {}, {"vpn-gateway/operator": "true"})
MONITORING = ("monitoring", "monitoring", {}, {"app": "prometheus"})
STRANGER = ("stranger", "default", {}, {"app": "anything"})
KUBE_DNS = ("kube-dns", "kube-system", {}, {"k8s-app": "kube-dns"})

# Every connection the policies must allow between the render's pods and
# the callers above, and nothing else: (from, to, port/protocol).
REQUIRED = {
    ("ike-service", "auth-service", "50052/TCP"),
    ("ike-service", "mobility-service", "50053/TCP"),
    ("esp-forwarder", "mobility-service", "50053/TCP"),
    ("ike-service", "esp-forwarder", "50054/TCP"),
    ("ike-service", "etcd", "2379/TCP"),
    ("auth-service", "etcd", "2379/TCP"),
    ("mobility-service", "etcd", "2379/TCP"),
    ("esp-forwarder", "etcd", "2379/TCP"),
    ("etcd", "etcd", "2380/TCP"),
    # The operator's calls in docs/architecture.md, "Trust".
    ("operator", "ike-service", "50051/TCP"),
    ("operator", "auth-service", "50052/TCP"),
    ("operator", "esp-forwarder", "50054/TCP"),
    ("monitoring", "ike-service", "9101/TCP"),
    ("monitoring", "auth-service", "9102/TCP"),
    ("monitoring", "mobility-service", "9103/TCP"),
    ("monitoring", "esp-forwarder", "9104/TCP"),
}
# Public: IKE and NAT-T reach the forwarder from anyone.
PUBLIC = {("esp-forwarder", "500/UDP"), ("esp-forwarder", "4500/UDP")}
# Spelled out so a failure reads plainly; all are also implied by REQUIRED
# being exact.
FORBIDDEN = [
    ("esp-forwarder", "auth-service", "50052/TCP"),
    ("mobility-service", "auth-service", "50052/TCP"),
    ("auth-service", "etcd", "2380/TCP"),
    ("ike-service", "etcd", "2380/TCP"),
    ("auth-service", "mobility-service", "50053/TCP"),
    ("mobility-service", "esp-forwarder", "50054/TCP"),
    ("auth-service", "ike-service", "50051/TCP"),
    ("operator", "etcd", "2379/TCP"),
    ("monitoring", "etcd", "2379/TCP"),
    ("monitoring", "ike-service", "50051/TCP"),
    ("stranger", "ike-service", "50051/TCP"),
    ("stranger", "etcd", "2379/TCP"),
]

results = []


def check(ok, what):
    results.append(bool(ok))
    print(f"{'ok  ' if ok else 'FAIL'} {what}")
    return ok


class Pod:
    def __init__(self, name, namespace, ns_labels, labels, ports):
        self.name = name
        self.namespace = namespace
        self.ns_labels = dict(ns_labels, **{"kubernetes.io/metadata.name": namespace})
        self.labels = labels
        self.ports = ports  # {"50052/TCP": "grpc", ...}


def workload_pods(docs):
    pods = []
    for d in docs:
        if d["kind"] not in ("Deployment", "StatefulSet", "DaemonSet"):
            continue
        template = d["spec"]["template"]
        ports = {}
        for c in template["spec"]["containers"]:
            for p in c.get("ports") or []:
                ports[f"{p['containerPort']}/{p.get('protocol', 'TCP')}"] = p.get("name")
        pods.append(Pod(d["metadata"]["name"], d["metadata"].get("namespace", NAMESPACE),
                        {}, template["metadata"].get("labels") or {}, ports))
    return pods


def peer_matches(peer, pod, policy_ns):
    if "ipBlock" in peer:
        return False  # none in these policies; a pod address is not modelled
    if "namespaceSelector" in peer:
        if not matches(peer["namespaceSelector"], pod.ns_labels):
            return False
    elif pod.namespace != policy_ns:
        return False
    return matches(peer.get("podSelector") or {}, pod.labels)


def port_matches(rule_ports, port, dst):
    if not rule_ports:
        return True
    number, protocol = port.split("/")
    for p in rule_ports:
        if p.get("protocol", "TCP") != protocol:
            continue
        if "port" not in p:
            return True
        want = p["port"]
        if isinstance(want, str):  # a named port of the destination
            if dst.ports.get(port) == want:
                return True
        elif want <= int(number) <= p.get("endPort", want):
            return True
    return False


def allowed(policies, src, dst, port):
    """Whether src may open port on dst: dst's ingress and src's egress."""
    def side(direction, subject, other, key):
        selecting = [p for p in policies
                     if p["metadata"].get("namespace", NAMESPACE) == subject.namespace
                     and direction in p["spec"].get("policyTypes", ["Ingress"])
                     and matches(p["spec"]["podSelector"], subject.labels)]
        if not selecting:
            return True  # not isolated in this direction
        for p in selecting:
            for rule in p["spec"].get(direction.lower()) or []:
                peers = rule.get(key)
                if (peers is None or any(peer_matches(peer, other, p["metadata"].get("namespace", NAMESPACE))
                                         for peer in peers)) \
                        and port_matches(rule.get("ports"), port, dst):
                    return True
        return False
    return side("Ingress", dst, src, "from") and side("Egress", src, dst, "to")


def check_policies(render, docs):
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    pods = workload_pods(docs)
    check(any(p["spec"]["podSelector"] == {} and "Ingress" in p["spec"].get("policyTypes", [])
              and not p["spec"].get("ingress") for p in policies),
          f"{render}: a default-deny ingress policy selects every pod")
    external = [Pod(*c, {}) for c in (OPERATOR, MONITORING, STRANGER, KUBE_DNS)]
    external_selectors = [{"matchLabels": {"vpn-gateway/operator": "true"}}]
    for policy in policies:
        name = policy["metadata"]["name"]
        selected = [p for p in pods if matches(policy["spec"]["podSelector"], p.labels)]
        check(selected, f"{render}: policy {name} selects {[p.name for p in selected]}")
        for direction, key in (("ingress", "from"), ("egress", "to")):
            for rule in policy["spec"].get(direction) or []:
                peers = rule.get(key) or []
                for peer in peers:
                    in_render = [p for p in pods if peer_matches(peer, p, NAMESPACE)]
                    outside = [p for p in external if peer_matches(peer, p, NAMESPACE)]
                    known = in_render or (outside and (
                        "namespaceSelector" in peer or peer.get("podSelector") in external_selectors))
                    check(known, f"{render}: {name} {direction} peer {peer} matches "
                                 f"{[p.name for p in in_render + outside]}")
                # The ports must exist where the connection ends.
                ends = selected if direction == "ingress" else \
                    [p for p in pods if any(peer_matches(peer, p, NAMESPACE) for peer in peers)]
                for port in rule.get("ports") or []:
                    spec = f"{port['port']}/{port.get('protocol', 'TCP')}"
                    if direction == "egress" and not ends:
                        continue  # outside the render (DNS): nothing to compare with
                    if isinstance(port["port"], str):
                        missing = [p.name for p in ends if port["port"] not in p.ports.values()]
                    else:
                        missing = [p.name for p in ends if spec not in p.ports]
                    check(not missing, f"{render}: {name} {direction} port {spec} is a containerPort of "
                                       + (f"{[p.name for p in ends]}" if not missing else f"none of {missing}"))

    by_name = {p.name: p for p in pods + external}
    apps = [p for p in pods]
    granted = set()
    for src in apps + external:
        for dst in apps:
            for port in dst.ports:
                if allowed(policies, src, dst, port):
                    granted.add((src.name, dst.name, port))
    public = {(s.name, d, port) for s in apps + external for d, port in PUBLIC}
    anyone = {(STRANGER[0], d, port) for d, port in PUBLIC}
    missing = REQUIRED - granted
    extra = granted - REQUIRED - public
    check(not missing, f"{render}: every required path is allowed" + (f"; denied: {sorted(missing)}" if missing else ""))
    check(not extra, f"{render}: nothing else is allowed" + (f"; also allowed: {sorted(extra)}" if extra else ""))
    check(anyone <= granted, f"{render}: UDP 500/4500 on esp-forwarder are open to anyone")
    for src, dst, port in FORBIDDEN:
        check(not allowed(policies, by_name[src], by_name[dst], port), f"{render}: {src} -> {dst} {port} denied")
    for src in apps:
        dns = all(allowed(policies, src, by_name["kube-dns"], p) for p in ("53/UDP", "53/TCP"))
        check(dns, f"{render}: {src.name} may resolve names (kube-dns 53/UDP, 53/TCP)")


def main(render_dir):
    renders = {}
    for render in ("base", "dev", "prod"):
        with open(f"{render_dir}/{render}.yaml") as f:
            try:
                docs = [d for d in yaml.safe_load_all(f) if d is not None]
            except yaml.YAMLError as e:
                check(False, f"{render}: parses: {e}")
                continue
        bad = [d for d in docs if not (isinstance(d, dict) and d.get("apiVersion") and d.get("kind")
                                       and (d.get("metadata") or {}).get("name"))]
        check(docs and not bad, f"{render}: {len(docs)} objects, each with apiVersion, kind and name"
                                + (f"; not: {bad[:2]}" if bad else ""))
        if docs and not bad:
            renders[render] = docs  # the checks below skip a render that failed

    for render, docs in renders.items():
        workloads = {d["metadata"]["name"]: d for d in docs
                     if d["kind"] in ("Deployment", "StatefulSet")}
        got = {name: w["spec"].get("replicas") for name, w in workloads.items()}
        check(got == REPLICAS[render], f"{render}: replicas {got}, want {REPLICAS[render]}")

        # etcd's initial cluster, and every service's store list, name
        # exactly the members the StatefulSet runs.
        members = [f"etcd-{i}" for i in range(got.get("etcd", 0))]
        command = workloads["etcd"]["spec"]["template"]["spec"]["containers"][0]["command"]
        initial = [a for a in command if a.startswith("--initial-cluster=")]
        named = [m.split("=")[0] for m in initial[0].split("=", 1)[1].split(",")] if len(initial) == 1 else initial
        check(named == members, f"{render}: etcd --initial-cluster names {named}, want {members}")
        config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
        for file, text in sorted(config.items()):
            stores = ETCD_ENDPOINTS.findall(text)
            hosts = [e.split(".")[0] for e in stores[0].split(",")] if len(stores) == 1 else stores
            check(hosts == members, f"{render}: {file} store names {hosts}")

        check_policies(render, docs)

    # An overlay's service configs are base's but for the store line, so a
    # change to base/config.yaml cannot be silently lost in an overlay.
    def without_store(data):
        return {k: ETCD_ENDPOINTS.sub("store: STORE", v) for k, v in data.items()}
    base_config = next(d for d in renders.get("base", []) if d["kind"] == "ConfigMap")["data"] \
        if "base" in renders else {}
    for render in [r for r in ("dev", "prod") if r in renders and base_config]:
        config = next(d for d in renders[render] if d["kind"] == "ConfigMap")["data"]
        differs = [k for k in sorted(set(config) | set(base_config))
                   if without_store(config).get(k) != without_store(base_config).get(k)]
        check(not differs, f"{render}: service configs equal base's but for the store line"
                           + (f"; differ: {differs} (update overlays/{render})" if differs else ""))

    # prod: a PodDisruptionBudget for each Deployment and StatefulSet, and
    # ike-service autoscaled on CPU from 3.
    prod = renders.get("prod", [])
    pdbs = [d for d in prod if d["kind"] == "PodDisruptionBudget"]
    for w in prod:
        if w["kind"] not in ("Deployment", "StatefulSet"):
            continue
        labels = w["spec"]["template"]["metadata"]["labels"]
        covering = [p["metadata"]["name"] for p in pdbs if matches(p["spec"]["selector"], labels)]
        check(len(covering) == 1, f"prod: {w['kind']} {w['metadata']['name']} has one PDB: {covering}")
        if w["spec"].get("replicas", 1) > 1:
            affinity = w["spec"]["template"]["spec"].get("affinity", {}).get("podAntiAffinity", {})
            terms = affinity.get("requiredDuringSchedulingIgnoredDuringExecution", []) + [
                t["podAffinityTerm"] for t in affinity.get("preferredDuringSchedulingIgnoredDuringExecution", [])]
            spread = any(t["topologyKey"] == "kubernetes.io/hostname" and matches(t["labelSelector"], labels)
                         for t in terms)
            check(spread, f"prod: {w['metadata']['name']} replicas are spread across nodes")
    hpas = [d for d in prod if d["kind"] == "HorizontalPodAutoscaler"]
    hpa = next((h for h in hpas if h["spec"]["scaleTargetRef"]["name"] == "ike-service"), None)
    check(hpa and hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment" and hpa["spec"]["minReplicas"] >= 3
          and hpa["spec"]["maxReplicas"] >= hpa["spec"]["minReplicas"]
          and any(m["type"] == "Resource" and m["resource"]["name"] == "cpu" for m in hpa["spec"]["metrics"]),
          "prod: ike-service has a CPU HorizontalPodAutoscaler, min 3")
    ike = next((d for d in prod if d["kind"] == "Deployment" and d["metadata"]["name"] == "ike-service"),
               {"spec": {"template": {"spec": {"containers": [{}]}}}})
    check(all("cpu" in (c.get("resources", {}).get("requests") or {})
              for c in ike["spec"]["template"]["spec"]["containers"]),
          "prod: ike-service requests CPU (the autoscaler's utilization needs it)")

    failed = results.count(False)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
