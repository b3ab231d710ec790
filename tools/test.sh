#!/usr/bin/env bash
# Builds everything and runs every test suite, then every fuzz target under
# libFuzzer for FUZZ_SECONDS (default 10) each from its checked-in corpus.
# Extra arguments go to `bazel test` (a narrower target pattern; the fuzz
# run is then skipped, as with FUZZ_SECONDS=0).
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

fuzz_seconds="${FUZZ_SECONDS:-10}"
if (($# == 0 && fuzz_seconds > 0)); then
  say "every fuzz target for ${fuzz_seconds}s under libFuzzer (tools/fuzz.sh --all)"
  ./tools/fuzz.sh --all "$fuzz_seconds" || status=$((status == 0 ? 1 : status))
fi

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
