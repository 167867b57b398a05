#!/usr/bin/env bash
# The header must compile warning-free as C99 and as C++, under gcc and clang, and the
# card's one-line build of examples/example.c must work exactly as written.
set -u
pass=0; fail=0
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
printf '#define QWENMOE_IMPLEMENTATION\n#include "qwenmoe.h"\nint main(void) { return qm_type_supported(QM_TYPE_Q4_K) ? 0 : 1; }\n' > "$tmp/impl.c"
printf '#include "qwenmoe.h"\nint main(void) { return 0; }\n' > "$tmp/decl.c"
check() { # description, command...
    local d=$1; shift
    if out=$("$@" 2>&1); then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL compile: $d"; echo "$out" | head -n 15; fi
}
for cc in gcc clang; do
    command -v $cc >/dev/null || { echo "FAIL compile: $cc not found"; fail=$((fail + 1)); continue; }
    check "$cc C99 implementation" $cc -std=c99 -Wall -Wextra -pedantic -Werror -I. "$tmp/impl.c" -o "$tmp/a" -lpthread
    check "$cc C99 declarations only" $cc -std=c99 -Wall -Wextra -pedantic -Werror -I. -c "$tmp/decl.c" -o "$tmp/d.o"
    check "$cc C99 QWENMOE_STATIC" $cc -std=c99 -Wall -Wextra -pedantic -Werror -DQWENMOE_STATIC -I. -c "$tmp/impl.c" -o "$tmp/s.o"
    check "$cc QWENMOE_NO_THREADS" $cc -std=c99 -Wall -Wextra -pedantic -Werror -DQWENMOE_NO_THREADS -I. -c "$tmp/impl.c" -o "$tmp/nt.o"
    check "$cc QWENMOE_USE_LIBM" $cc -std=c99 -Wall -Wextra -pedantic -Werror -DQWENMOE_USE_LIBM -I. "$tmp/impl.c" -o "$tmp/lm" -lpthread -lm
    cxx=$([ $cc = gcc ] && echo g++ || echo clang++)
    check "$cxx C++11 implementation" $cxx -x c++ -std=c++11 -Wall -Wextra -pedantic -Werror -I. "$tmp/impl.c" -o "$tmp/b" -lpthread
    check "$cxx C++17 implementation" $cxx -x c++ -std=c++17 -Wall -Wextra -pedantic -Werror -I. -c "$tmp/impl.c" -o "$tmp/c.o"
    # the design card's one-line build, from the repository root, no other flag
    check "$cc one-line build of examples/example.c" $cc examples/example.c -DQWENMOE_IMPLEMENTATION -o "$tmp/example_$cc"
    check "$cc -O0 one-line build (no libm)" $cc -O0 examples/example.c -DQWENMOE_IMPLEMENTATION -o "$tmp/example0_$cc"
done
if [ -x "$tmp/example_gcc" ] && [ -f build/models/tiny.gguf ]; then
    check "example runs on the tiny model" "$tmp/example_gcc" build/models/tiny.gguf "Hello"
fi
# the same bits whatever the compiler and its default floating-point contraction (gnu modes fuse
# a * b + c unless the header prevents it): logits of 40 positions, gcc and clang, -std=c99 and
# each compiler's default mode, compared byte for byte
if [ -f build/models/tiny-gqa.gguf ]; then
    ids=$(seq -s, 11 12 490)
    ref=""
    for cc in gcc clang; do
        command -v $cc >/dev/null || continue
        for std in -std=c99 ""; do
            name="$cc${std:- default}"
            if $cc $std -O2 -march=native -I. tools/logits.c -o "$tmp/logits" -lpthread -lm 2>"$tmp/err" &&
               "$tmp/logits" -m build/models/tiny-gqa.gguf --ids "$ids" -t 2 -o "$tmp/l.bin" 2>>"$tmp/err"; then
                if [ -z "$ref" ]; then ref=$name; cp "$tmp/l.bin" "$tmp/ref.bin"; pass=$((pass + 1))
                elif cmp -s "$tmp/l.bin" "$tmp/ref.bin"; then pass=$((pass + 1))
                else echo "FAIL compile: logits built with $name differ from $ref's"; fail=$((fail + 1)); fi
            else
                echo "FAIL compile: logits with $name"; head -n 5 "$tmp/err"; fail=$((fail + 1))
            fi
        done
    done
fi
if nm "$tmp/example_gcc" 2>/dev/null | grep -qE ' U (exp|expf|sqrt|sqrtf|log|logf|pow|powf|sin|sinf|cos|cosf|roundf)(@|$)'; then
    echo "FAIL compile: example links libm functions"; fail=$((fail + 1))
else pass=$((pass + 1)); fi
if grep -nE '\b(exit|abort)[[:space:]]*\(' qwenmoe.h | grep -v '^\s*[0-9]*:\s*/?\*' | grep -vq 'never'; then
    echo "FAIL compile: qwenmoe.h calls exit() or abort():"; grep -nE '\b(exit|abort)[[:space:]]*\(' qwenmoe.h | head; fail=$((fail + 1))
else pass=$((pass + 1)); fi
echo "# compile: $pass passed, $fail failed"
[ $fail -eq 0 ]
