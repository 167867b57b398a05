#!/usr/bin/env bash
# Runs every test program and adds up their "# name: N passed, M failed" lines.
# A program that dies without its summary line counts as one failure.
# Usage: tests/run.sh BUILD_DIR   (build/ or build/asan/)
set -u
B=${1:-build}
M=build/models
pass=0; fail=0
run() { # name, command...
    local name=$1; shift
    local out rc
    out=$("$@" 2>&1); rc=$?
    local line
    line=$(printf '%s\n' "$out" | grep -E '^# [^:]+: [0-9]+ passed, [0-9]+ failed' | tail -n 1)
    if [ -z "$line" ]; then
        printf '%s\n' "$out" | tail -n 20
        echo "FAIL $name: exited $rc without a summary line"
        fail=$((fail + 1)); return
    fi
    printf '%s\n' "$out" | grep -E '^(FAIL|#)' | head -n 40
    local p f
    p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed.*/\1/')
    f=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed.*/\2/')
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "FAIL $name: exited $rc"; f=1
    fi
    pass=$((pass + p)); fail=$((fail + f))
}

[ -z "${QM_TEST_ASAN:-}" ] && run compile bash tests/compile.sh
run gguf      "$B/test_gguf" "$M/tiny.gguf"
run quant     "$B/test_quant"
run tokenizer "$B/test_tokenizer" "$M/tiny-tok.gguf" tests/data
run chat      "$B/test_chat" tests/data
run sampler   "$B/test_sampler"
run model     "$B/test_model" "$M"
run kernels   "$B/test_kernels"
run kernels-nosimd "$B/test_kernels_nosimd"
[ -z "${QM_TEST_ASAN:-}" ] && run bench bash tests/test_bench.sh "$B"
# Parity with llama.cpp from the stored goldens (no node): every row of tests/golden/parity.txt
# (43 models) must meet the criteria.
if [ -z "${QM_TEST_ASAN:-}" ]; then
    run golden bash tests/test_golden.sh
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
