#!/usr/bin/env bash
# valgrind.sh - valgrind memcheck over a generation run and the GGUF / tokenizer unit tests.
# Every run must end with 0 errors and 0 leaks of any kind:
#   valgrind --leak-check=full --show-leak-kinds=all --errors-for-leak-kinds=all --error-exitcode=1
# Runs:
#   qwenmoe-generate on build/models/tiny.gguf: 6 tokens with -t 1, and with -t 2 (the thread
#   pool); -t 2 with sampling and --chat; tiny-q8.gguf with -t 2 (quantized kernels)
#   test_gguf (tiny.gguf) and test_tokenizer (tiny-tok.gguf, tests/data)
# The programs are rebuilt into BUILD_DIR/valgrind/ with -O1 -g and AVX2 at most
# (valgrind 3.19 cannot run AVX-512 code, which -march=native would pick on such a CPU).
# Usage: tests/valgrind.sh [BUILD_DIR]     Prints "# valgrind: N passed, M failed".
set -uo pipefail
case "${1:-}" in -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
B=${1:-build}
M=$B/models
V=$B/valgrind
CC=${CC:-cc}
command -v valgrind >/dev/null || { echo "valgrind.sh: valgrind is not installed (apt-get install valgrind)"; exit 1; }
mkdir -p "$V"
# AVX2 + FMA + F16C when the CPU has them (the SIMD kernels), else the portable scalar code
SIMD=""
if grep -q ' avx2 ' /proc/cpuinfo 2>/dev/null && grep -q ' fma ' /proc/cpuinfo && grep -q ' f16c ' /proc/cpuinfo; then
    SIMD="-mavx2 -mfma -mf16c"
fi
FLAGS="-std=c99 -Wall -Wextra -pedantic -O1 -g $SIMD -I."
build() { # out, source, extra libs
    local out=$1 src=$2
    shift 2
    if [ ! "$out" -nt "$src" ] || [ ! "$out" -nt qwenmoe.h ]; then
        # shellcheck disable=SC2086
        $CC $FLAGS "$src" -o "$out" -lpthread "$@" || { echo "valgrind.sh: cannot build $out"; exit 1; }
    fi
}
build "$V/qwenmoe-generate" examples/generate.c
build "$V/test_gguf" tests/test_gguf.c -lm
build "$V/test_tokenizer" tests/test_tokenizer.c -lm

pass=0 fail=0
VG=(valgrind --tool=memcheck --leak-check=full --show-leak-kinds=all --errors-for-leak-kinds=all
    --error-exitcode=1 --track-origins=yes --num-callers=30)
run() { # name, command...
    local name=$1 log rc errs leaks
    shift
    log="$V/$name.log"
    "${VG[@]}" --log-file="$log.vg" "$@" >"$log" 2>&1
    rc=$?
    errs=$(grep -o 'ERROR SUMMARY: [0-9]*' "$log.vg" | grep -o '[0-9]*$' | tail -n 1)
    leaks=$(grep -E 'definitely lost|indirectly lost|possibly lost|still reachable' "$log.vg" |
            grep -o 'lost: [0-9,]* bytes\|reachable: [0-9,]* bytes' | tr -d , | grep -o '[0-9]*' |
            awk '{s += $1} END {print s + 0}')
    if [ "$rc" -eq 0 ] && [ "${errs:-1}" -eq 0 ] && [ "$leaks" -eq 0 ]; then
        echo "ok   $name: 0 errors, 0 bytes leaked"
        pass=$((pass + 1))
    else
        echo "FAIL $name: exit $rc, ${errs:-?} errors, $leaks bytes leaked or still reachable (log $log.vg)"
        grep -A 15 -m 3 'Invalid\|uninitialised\|definitely lost\|possibly lost' "$log.vg" | head -n 60
        tail -n 5 "$log"
        fail=$((fail + 1))
    fi
}
run generate-t1 "$V/qwenmoe-generate" -m "$M/tiny.gguf" -p "Hello world" -n 6 -t 1
run generate-t2 "$V/qwenmoe-generate" -m "$M/tiny.gguf" -p "Hello world" -n 6 -t 2
run generate-t2-sampled-chat "$V/qwenmoe-generate" -m "$M/tiny.gguf" -p "Hi" -n 6 -t 2 --chat \
    --temp 0.8 --top-k 40 --top-p 0.9 --min-p 0.05 --seed 3 --stop "xyz"
run generate-q8-t2 "$V/qwenmoe-generate" -m "$M/tiny-q8.gguf" -p "Hello world" -n 6 -t 2
run test_gguf "$V/test_gguf" "$M/tiny.gguf"
run test_tokenizer "$V/test_tokenizer" "$M/tiny-tok.gguf" tests/data
echo "# valgrind: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
