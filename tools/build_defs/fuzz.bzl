"""vpn_fuzz_target: the one way to declare a libFuzzer target.

For `name` it creates
  - `<name>_lib`: the LLVMFuzzerTestOneInput source (alwayslink), for tests
    that drive the target with their own mutations;
  - `<name>`: the fuzzer. Under `--config=fuzz` (tools/fuzz.sh) a libFuzzer
    binary with ASan and UBSan; otherwise a plain driver that runs the files
    and directories given as arguments (common/testing/fuzz_main.cc);
  - `<name>_corpus_test`: the plain driver over the checked-in corpus,
    `testdata/<name>_corpus/` beside the BUILD file, in every test run.

tools/fuzz.sh finds the targets by the `fuzz_target` tag.
"""

def vpn_fuzz_target(name, srcs, deps = [], data = [], corpus_size = "small"):
    """Declares a fuzz target, its binary and its corpus test.

    Args:
      name: the fuzzer binary's name, ending in "_fuzzer".
      srcs: sources defining LLVMFuzzerTestOneInput.
      deps: what they need.
      data: files the target reads at run time (besides the corpus).
      corpus_size: the corpus test's size.
    """
    corpus = "testdata/%s_corpus" % name
    native.cc_library(
        name = name + "_lib",
        testonly = True,
        srcs = srcs,
        deps = deps,
        alwayslink = True,
    )
    native.cc_binary(
        name = name,
        testonly = True,
        data = data,
        linkopts = select({
            "//common/testing:libfuzzer": ["-fsanitize=fuzzer"],
            "//conditions:default": [],
        }),
        tags = ["fuzz_target"],
        deps = [":" + name + "_lib"] + select({
            "//common/testing:libfuzzer": [],
            "//conditions:default": ["//common/testing:fuzz_main"],
        }),
    )
    native.cc_test(
        name = name + "_corpus_test",
        size = corpus_size,
        args = ["%s/%s" % (native.package_name(), corpus)],
        data = data + native.glob([corpus + "/*"], allow_empty = False),
        deps = [
            ":" + name + "_lib",
            "//common/testing:fuzz_main",
        ],
    )
