#!/usr/bin/env bash
# run.sh - run the libFuzzer harnesses (make fuzz, make fuzz-regress).
#   tests/fuzz/run.sh fuzz BUILD_DIR SECONDS [HARNESS...]
#       each harness for SECONDS (-max_total_time) from its corpus build/fuzz/corpus-NAME
#       (new inputs go to build/fuzz/found-NAME); prints the exec count, exec/s, coverage
#       and crashes of each; a crash input is kept as build/fuzz/NAME-crash-* (or -timeout-, -oom-, -leak-)
#   tests/fuzz/run.sh regress BUILD_DIR [HARNESS...]
#       every file of tests/fuzz/regress/NAME/ and tests/fuzz/seeds/NAME/ through harness NAME,
#       once each (seconds in all)
# Harnesses: gguf tokenizer chat (default: all). Ends with "# fuzz: N passed, M failed"
# (or "# fuzz-regress: ..."); exits 1 if any harness crashed or could not run.
set -uo pipefail
usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; }
case "${1:-}" in -h|--help|"") usage; exit 0 ;; esac
mode=$1
B=${2:?BUILD_DIR}
shift 2
if [ "$mode" = fuzz ]; then
    secs=${1:?SECONDS}
    shift
fi
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(gguf tokenizer chat)
HERE=$(cd "$(dirname "$0")" && pwd)
: "${QM_FUZZ_TOKENIZER:=$B/models/tiny-tok.gguf}"
export QM_FUZZ_TOKENIZER
# a smaller ASan quarantine: the harnesses allocate and free a lot, and this is 2-3x faster
export ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=32}
pass=0 fail=0

extra_args() { # per-harness libFuzzer options
    case $1 in
        tokenizer) echo "-max_len=4097" ;;
        *) echo "" ;;
    esac
}

for name in "${names[@]}"; do
    bin="$B/fuzz/fuzz_$name"
    if [ ! -x "$bin" ]; then
        echo "fuzz_$name: $bin is missing (make $bin)"
        fail=$((fail + 1))
        continue
    fi
    if [ "$mode" = regress ]; then
        files=()
        for d in "$HERE/regress/$name" "$HERE/seeds/$name"; do
            [ -d "$d" ] || continue
            for f in "$d"/*; do [ -f "$f" ] && files+=("$f"); done
        done
        if [ ${#files[@]} -eq 0 ]; then
            echo "fuzz_$name: no regression inputs"
            pass=$((pass + 1))
            continue
        fi
        log=$("$bin" -runs=1 "${files[@]}" 2>&1)
        rc=$?
        if [ $rc -eq 0 ]; then
            echo "fuzz_$name: ${#files[@]} inputs, ok"
            pass=$((pass + 1))
        else
            echo "$log" | grep -m 1 -B 1 -A 14 'ERROR: \|check failed at\|runtime error'
            echo "fuzz_$name: FAILED on the regression inputs (exit $rc): $(echo "$log" | grep '^Running: ' | tail -n 1)"
            fail=$((fail + 1))
        fi
        continue
    fi
    corpus="$B/fuzz/corpus-$name"
    found="$B/fuzz/found-$name"
    mkdir -p "$found" "$corpus"
    logf="$B/fuzz/fuzz_$name.log"
    # shellcheck disable=SC2046
    "$bin" -max_total_time="$secs" -print_final_stats=1 -timeout=30 \
        -artifact_prefix="$B/fuzz/$name-" $(extra_args "$name") "$found" "$corpus" >"$logf" 2>&1
    rc=$?
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$logf" | grep -o '[0-9]*$' | tail -n 1)
    eps=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$logf" | grep -o '[0-9]*$' | tail -n 1)
    cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$logf" | tail -n 1)
    crashes=$(grep -c '^SUMMARY: \|ERROR: libFuzzer\|check failed at' "$logf")
    if [ $rc -eq 0 ]; then
        echo "fuzz_$name: ${runs:-?} execs in ${secs}s, ${eps:-?} exec/s, ${cov:-cov: ?}, 0 crashes"
        pass=$((pass + 1))
    else
        grep -m 1 -B 2 -A 30 'ERROR: \|check failed at\|runtime error' "$logf" | head -n 50
        echo "fuzz_$name: CRASHED (exit $rc) after ${runs:-?} execs, ${crashes} error reports; log $logf;" \
             "input: $(ls -t "$B"/fuzz/"$name"-crash-* "$B"/fuzz/"$name"-timeout-* "$B"/fuzz/"$name"-oom-* "$B"/fuzz/"$name"-leak-* 2>/dev/null | head -n 1)"
        fail=$((fail + 1))
    fi
done
label=fuzz
[ "$mode" = regress ] && label=fuzz-regress
echo "# $label: $pass passed, $fail failed"
[ $fail -eq 0 ]
