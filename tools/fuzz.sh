#!/usr/bin/env bash
# Runs fuzz targets under libFuzzer with ASan and UBSan (clang-14).
#
#   tools/fuzz.sh TARGET SECONDS [libFuzzer flags]   one target for a time
#   tools/fuzz.sh TARGET --runs N [libFuzzer flags]  one target for N inputs
#   tools/fuzz.sh --all SECONDS                      every target (CI)
#   tools/fuzz.sh --list                             the targets
#
# TARGET is a fuzzer's name (message_fuzzer) or its label. Each run starts
# from the checked-in corpus (testdata/<name>_corpus/ beside the BUILD file)
# in a scratch copy; FUZZ_MERGE=1 merges what it found back into the
# checked-in corpus (minimised: only inputs that add coverage). A crash
# leaves its input in FUZZ_OUT (default /tmp/vpn-fuzz) and fails the run.
# Flags a target always needs are in testdata/<name>.options, one per line.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[fuzz] %s\n' "$*"; }
die() { say "error: $*" >&2; exit 2; }
usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

# One output base per checkout, as Bazel's own default is (a clean clone in
# another folder must not share it); actions come from the shared disk cache.
out_base="${FUZZ_OUTPUT_BASE:-$HOME/.cache/vpn-gateway-bazel-fuzz/$(pwd | md5sum | cut -c1-12)}"
work="${FUZZ_OUT:-/tmp/vpn-fuzz}"
bazel_main() { flock -o /tmp/vpn-bazel.lock bazel "$@"; }
# Its own output base; no convenience symlinks, so bazel-bin stays the main
# build's.
bazel_fuzz() {
  local command="$1"
  shift
  flock -o /tmp/vpn-bazel.lock bazel --output_base="$out_base" "$command" --config=fuzz \
    --symlink_prefix=/ "$@"
}

# Two-frame allocation stacks and no malloc fill make allocation-heavy
# targets 2.5 times faster; run a crash input again with ASAN_OPTIONS= for
# full stacks.
asan_defaults="detect_leaks=1:malloc_context_size=2:max_malloc_fill_size=0"

command -v clang-14 >/dev/null || die "clang-14 is missing: run tools/setup.sh"

all_targets() {
  bazel_main query 'attr(tags, fuzz_target, kind(cc_binary, //...))' 2>/dev/null | sort
}

label_of() {
  case "$1" in
    //*) echo "$1" ;;
    *) all_targets | grep -E ":$1\$" || die "no fuzz target named $1 (tools/fuzz.sh --list)" ;;
  esac
}

# run_one LABEL (--max_total_time=S | --runs=N) [flags...]
run_one() {
  local label="$1" limit="$2"
  shift 2
  local package="${label#//}" name
  package="${package%%:*}"
  name="${label##*:}"
  local corpus="$package/testdata/${name}_corpus"
  [[ -d "$corpus" ]] || die "$label has no corpus at $corpus"
  local binary="$bin/$package/$name"
  local options=()
  if [[ -f "$package/testdata/$name.options" ]]; then
    mapfile -t options < <(grep -v '^ *\(#\|$\)' "$package/testdata/$name.options")
  fi
  local scratch="$work/$name"
  rm -rf "$scratch"
  mkdir -p "$scratch/corpus" "$scratch/artifacts"
  cp "$corpus"/* "$scratch/corpus/"
  say "$name: ${limit#-} from $(ls "$corpus" | wc -l) corpus inputs (log: $scratch/log)"
  local status=0
  (cd "$scratch" &&
    ASAN_OPTIONS="${ASAN_OPTIONS:-$asan_defaults}" \
    UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
    "$binary" "$limit" -print_final_stats=1 -artifact_prefix="$scratch/artifacts/" \
      "${options[@]}" "$@" corpus >"$scratch/log" 2>&1) || status=$?
  local runs per_sec
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$scratch/log" | tail -1)"
  per_sec="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$scratch/log" | tail -1)"
  if ((status != 0)); then
    grep -E "ERROR|runtime error|==[0-9]+==|SUMMARY|Test unit written" "$scratch/log" | head -20 >&2 || true
    say "$name: FAILED after ${runs:-?} inputs; crash input(s): $(ls "$scratch/artifacts" | tr '\n' ' ')"
    return 1
  fi
  say "$name: ${runs:-?} inputs, ${per_sec:-?}/s, 0 crashes, corpus $(ls "$corpus" | wc -l) -> $(ls "$scratch/corpus" | wc -l)"
  if [[ "${FUZZ_MERGE:-0}" == 1 ]]; then
    (cd "$scratch" && "$binary" -merge=1 "$OLDPWD/$corpus" corpus >"$scratch/merge.log" 2>&1)
    say "$name: merged into $corpus ($(ls "$corpus" | wc -l) inputs)"
  fi
}

(($# >= 1)) || usage
case "$1" in
  --list) all_targets; exit 0 ;;
  --all)
    (($# == 2)) || usage
    mapfile -t labels < <(all_targets)
    limit="-max_total_time=$2"
    shift 2
    ;;
  -h|--help) usage ;;
  *)
    (($# >= 2)) || usage
    labels=("$(label_of "$1")")
    if [[ "$2" == --runs ]]; then
      (($# >= 3)) || usage
      limit="-runs=$3"
      shift 3
    else
      [[ "$2" =~ ^[0-9]+$ ]] || die "SECONDS must be a number, got '$2'"
      limit="-max_total_time=$2"
      shift 2
    fi
    ;;
esac

say "building ${#labels[@]} target(s) with clang-14, libFuzzer, ASan and UBSan"
bazel_fuzz build "${labels[@]}"
bin="$(bazel_fuzz info bazel-bin 2>/dev/null)"

failed=0
for i in "${!labels[@]}"; do
  ((${#labels[@]} == 1)) || say "target $((i + 1))/${#labels[@]}"
  run_one "${labels[$i]}" "$limit" "$@" || failed=$((failed + 1))
done
# A whole run (CI) leaves no second Bazel server behind.
((${#labels[@]} == 1)) || bazel --output_base="$out_base" shutdown
((failed == 0)) || die "$failed target(s) crashed"
