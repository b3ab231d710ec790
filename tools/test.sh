#!/usr/bin/env bash
# Builds everything and runs every test suite. Extra arguments go to
# `bazel test` (e.g. a narrower target pattern after `--`).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[test] %s\n' "$*"; }

say "checking build and test dependencies"
./tools/setup.sh

targets=("$@")
((${#targets[@]} > 0)) || targets=(//...)

say "bazel test ${targets[*]} (progress below; the first build takes several minutes)"
status=0
bazel test --test_summary=short "${targets[@]}" || status=$?

# Count the GoogleTest cases of every test target that ran.
python3 - "$(bazel info bazel-testlogs 2>/dev/null)" <<'PY'
import pathlib, sys, xml.etree.ElementTree as ET
passed = failed = 0
for xml in pathlib.Path(sys.argv[1]).rglob("test.xml"):
    try:
        root = ET.parse(xml).getroot()
    except ET.ParseError:
        failed += 1
        continue
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    for suite in suites:
        for case in suite.iter("testcase"):
            if case.find("failure") is not None or case.find("error") is not None:
                failed += 1
            elif case.get("status", "run") == "run" and case.find("skipped") is None:
                passed += 1
print(f"{passed} passed, {failed} failed")
PY
exit $status
