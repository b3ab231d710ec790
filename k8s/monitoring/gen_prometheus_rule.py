#!/usr/bin/env python3
"""Writes prometheus-rule.yaml: rules.yaml's groups inside a PrometheusRule.

rules.yaml is the source of truth (promtool reads it; it does not read the
PrometheusRule wrapper). Run after editing rules.yaml:
    python3 k8s/monitoring/gen_prometheus_rule.py
//k8s:rules_test fails when the committed prometheus-rule.yaml is stale.
"""
import os
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))


def prometheus_rule(groups):
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "vpn-gateway",
            "namespace": "vpn-gateway",
            # kube-prometheus-stack's default ruleSelector is
            # `release: <helm release>`; set it to yours.
            "labels": {"app.kubernetes.io/part-of": "vpn-gateway",
                       "release": "kube-prometheus-stack"},
        },
        "spec": {"groups": groups},
    }


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper, value):
    # Multi-line strings (long expressions) as blocks, the rest plain.
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def main():
    with open(os.path.join(HERE, "rules.yaml")) as f:
        groups = yaml.safe_load(f)["groups"]
    text = ("# Generated from rules.yaml by gen_prometheus_rule.py: edit rules.yaml,\n"
            "# then run `python3 k8s/monitoring/gen_prometheus_rule.py`.\n")
    text += yaml.dump(prometheus_rule(groups), Dumper=_Dumper, sort_keys=False,
                      width=4096, default_flow_style=False)
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "prometheus-rule.yaml")
    with open(out, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
