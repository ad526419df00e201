"""h2lab_fuzz_target: a libFuzzer binary and its corpus replay test."""

def h2lab_fuzz_target(name, srcs, deps = [], size = "small"):
    """Two targets per fuzz target.

    `name`: under --config=fuzz (clang, -fsanitize=fuzzer), the libFuzzer
    binary; in any other configuration the same LLVMFuzzerTestOneInput
    linked with replay_main.cc, which runs it over the files it is given
    (a reproducer, a corpus directory).

    `name + "_replay_test"`: a cc_test that replays the committed corpus in
    corpus/<name>/ and fails when that directory is missing or empty, so
    every seed and every past finding runs in `bazel test //...`.
    """
    corpus = "corpus/%s" % name
    native.cc_binary(
        name = name,
        testonly = True,
        srcs = srcs,
        linkopts = select({
            ":fuzzing": ["-fsanitize=fuzzer"],
            "//conditions:default": [],
        }),
        deps = deps + select({
            ":fuzzing": [],
            "//conditions:default": [":replay_main"],
        }),
    )
    native.cc_test(
        name = name + "_replay_test",
        size = size,
        srcs = srcs,
        args = ["tests/fuzz/" + corpus],
        data = native.glob([corpus + "/**"]),
        deps = deps + [":replay_main"],
    )
