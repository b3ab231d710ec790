#!/usr/bin/env bash
# Checks k8s/monitoring and the dashboard:
# - promtool accepts rules.yaml (check rules) and its unit tests pass
#   (test rules: every alert fires on a bad series and stays quiet on a good
#   one);
# - prometheus-rule.yaml holds exactly rules.yaml's groups (rules.yaml is the
#   source; gen_prometheus_rule.py writes the wrapper);
# - the ServiceMonitor and PodMonitor name ports that k8s/base's Services and
#   pods really have, and every service is scraped by exactly one of them;
# - the dashboard is valid JSON, has the datasource and namespace variables,
#   and every panel and selector uses them.
set -euo pipefail
root="${TEST_SRCDIR:?}/${TEST_WORKSPACE:?}"
monitoring="$root/k8s/monitoring"

if ! command -v promtool >/dev/null; then
  echo "FAIL: promtool not found; run tools/setup.sh as root (Debian package prometheus)" >&2
  exit 1
fi

echo "== promtool check rules"
promtool check rules "$monitoring/rules.yaml"
echo "== promtool test rules"
# promtool resolves rule_files against the test file's directory.
(cd "$monitoring" && promtool test rules rules_test.yaml)

echo "== dashboard is JSON"
python3 -m json.tool "$root/k8s/dashboards/vpn-gateway.json" >/dev/null

echo "== manifests"
python3 - "$root" <<'PY'
import json, os, re, subprocess, sys, tempfile
import yaml

root = sys.argv[1]
mon = f"{root}/k8s/monitoring"
failures = []

def fail(message):
    failures.append(message)
    print("FAIL:", message)

# PrometheusRule == rules.yaml, and regenerating gives the committed file.
rules = yaml.safe_load(open(f"{mon}/rules.yaml"))
wrapped = yaml.safe_load(open(f"{mon}/prometheus-rule.yaml"))
if wrapped.get("apiVersion") != "monitoring.coreos.com/v1" or wrapped.get("kind") != "PrometheusRule":
    fail("prometheus-rule.yaml is not a monitoring.coreos.com/v1 PrometheusRule")
if wrapped.get("spec", {}).get("groups") != rules["groups"]:
    fail("prometheus-rule.yaml differs from rules.yaml: run python3 k8s/monitoring/gen_prometheus_rule.py")
with tempfile.NamedTemporaryFile("r", suffix=".yaml") as out:
    subprocess.run([sys.executable, f"{mon}/gen_prometheus_rule.py", out.name], check=True)
    if out.read() != open(f"{mon}/prometheus-rule.yaml").read():
        fail("prometheus-rule.yaml is not gen_prometheus_rule.py's output: regenerate it")

# Every alert: severity label, summary and description annotations, and a
# unit test in rules_test.yaml.
tests = yaml.safe_load(open(f"{mon}/rules_test.yaml"))
tested = {case["alertname"] for test in tests["tests"] for case in test.get("alert_rule_test", [])}
for group in rules["groups"]:
    for rule in group["rules"]:
        name = rule.get("alert")
        if name is None:
            continue
        if rule.get("labels", {}).get("severity") not in ("warning", "critical"):
            fail(f"{name}: severity must be warning or critical")
        for key in ("summary", "description"):
            if not rule.get("annotations", {}).get(key):
                fail(f"{name}: no {key} annotation")
        if name not in tested:
            fail(f"{name}: no test in rules_test.yaml")
        fired = any(case["alertname"] == name and case.get("exp_alerts")
                    for test in tests["tests"] for case in test.get("alert_rule_test", []))
        quiet = any(case["alertname"] == name and not case.get("exp_alerts")
                    for test in tests["tests"] for case in test.get("alert_rule_test", []))
        if not (fired and quiet):
            fail(f"{name}: rules_test.yaml must test it firing and not firing")

# Monitors against k8s/base.
base = []
for name in sorted(os.listdir(f"{root}/k8s/base")):
    if name.endswith(".yaml") and name != "kustomization.yaml":
        base += [d for d in yaml.safe_load_all(open(f"{root}/k8s/base/{name}")) if d]
services = [d for d in base if d["kind"] == "Service"]
workloads = [d for d in base if d["kind"] in ("Deployment", "DaemonSet", "StatefulSet")]
monitors = [d for d in yaml.safe_load_all(open(f"{mon}/service-monitor.yaml")) if d]

def matches(selector, labels):
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions", []):
        if expr["operator"] == "In" and labels.get(expr["key"]) not in expr["values"]:
            return False
        if expr["operator"] not in ("In",):
            raise ValueError(f"operator {expr['operator']} not handled by this test")
    return True

scraped = {}
for monitor in monitors:
    spec = monitor["spec"]
    if monitor["kind"] == "ServiceMonitor":
        chosen = [s for s in services if matches(spec["selector"], s["metadata"].get("labels", {}))]
        for service in chosen:
            ports = {p.get("name") for p in service["spec"]["ports"]}
            for endpoint in spec["endpoints"]:
                if endpoint["port"] not in ports:
                    fail(f"Service {service['metadata']['name']} has no port {endpoint['port']!r}")
            app = service["metadata"]["labels"].get(spec["jobLabel"])
            scraped.setdefault(app, []).append(monitor["metadata"]["name"])
    elif monitor["kind"] == "PodMonitor":
        chosen = [w for w in workloads
                  if matches(spec["selector"], w["spec"]["template"]["metadata"].get("labels", {}))]
        for workload in chosen:
            ports = {p.get("name") for c in workload["spec"]["template"]["spec"]["containers"]
                     for p in c.get("ports", [])}
            for endpoint in spec["podMetricsEndpoints"]:
                if endpoint["port"] not in ports:
                    fail(f"{workload['metadata']['name']} pods have no port {endpoint['port']!r}")
            app = workload["spec"]["template"]["metadata"]["labels"].get(spec["jobLabel"])
            scraped.setdefault(app, []).append(monitor["metadata"]["name"])
    else:
        fail(f"unexpected kind {monitor['kind']} in service-monitor.yaml")
for service in ("ike-service", "auth-service", "mobility-service", "esp-forwarder"):
    if len(scraped.get(service, [])) != 1:
        fail(f"{service} must be scraped by exactly one monitor (job={service}), "
             f"is by {scraped.get(service, [])}")

# Dashboard: variables, and every selector scoped to $namespace.
dashboard = json.load(open(f"{root}/k8s/dashboards/vpn-gateway.json"))
variables = {v["name"]: v for v in dashboard.get("templating", {}).get("list", [])}
if variables.get("datasource", {}).get("type") != "datasource":
    fail("dashboard has no datasource variable")
if variables.get("namespace", {}).get("type") != "query":
    fail("dashboard has no namespace query variable")
KEYWORDS = {"by", "without", "on", "ignoring", "bool", "and", "or", "unless", "offset",
            "group_left", "group_right"}
TOKEN = re.compile(r'\[[^\]]*\]|\b(?:by|without)\s*\([^)]*\)|"[^"]*"'
                   r'|\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?')
for panel in dashboard["panels"]:
    if panel.get("datasource", {}).get("uid") != "${datasource}":
        fail(f"panel {panel.get('title')!r} does not use the datasource variable")
    for target in panel.get("targets", []):
        expr = target["expr"]
        for m in TOKEN.finditer(expr):
            name, braces = m.group(1), m.group(2)
            if name is None or name in KEYWORDS:
                continue
            rest = expr[m.end():].lstrip()
            if not braces and (rest.startswith("(") or re.match(r"(by|without)\b", rest)):
                continue
            if not braces or 'namespace="$namespace"' not in braces:
                fail(f"panel {panel.get('title')!r}: {name} is not scoped to $namespace in {expr!r}")

if failures:
    sys.exit(f"{len(failures)} problem(s)")
print("manifests OK")
PY
echo "PASS"
