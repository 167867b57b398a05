#!/usr/bin/env bash
# The link recipes of qwenmoe_cuda.cu (see the comment at its top), each checked: which
# qm_cuda_hook() the program ends up with, and what qm_backend_name() says.
#   usage: tests/cuda/test_link.sh BUILD_DIR     (needs BUILD/qwenmoe_cuda.o, BUILD/cuda/impl.o,
#          BUILD/cuda/impl_pic.o, BUILD/cuda/qwenmoe_cuda_pic.o: make test-cuda builds them)
# Prints "# cuda_link: N passed, M failed".
set -u
B=${1:-build}
CC=${CC:-cc}
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
LIBS="-L$CUDA_HOME/lib64 -Wl,-rpath,$CUDA_HOME/lib64 -lcudart -lcublas -lstdc++ -lpthread"
W="-std=c99 -Wall -Wextra -pedantic -Werror"
pass=0; fail=0
tmp=$(mktemp -d /tmp/qm-cuda-link.XXXXXX); [ -n "${QM_KEEP:-}" ] || trap 'rm -rf "$tmp"' EXIT

ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL cuda_link: $*"; }
# run NAME PROGRAM: the program's one line into $tmp/NAME.out
run() { if "${@:2}" > "$tmp/$1.out" 2>"$tmp/$1.err"; then ok; else bad "$1: exit status $? ($(head -c 300 "$tmp/$1.err"))"; fi; }
# expect NAME FIELD VALUE: the line has FIELD=VALUE
expect() {
    if grep -q "$2=$3\( \|$\)" "$tmp/$1.out"; then ok; else bad "$1: expected $2=$3, got: $(cat "$tmp/$1.out")"; fi
}
# build NAME COMMAND...
build() { if "${@:2}" 2>"$tmp/$1.build"; then ok; else bad "$1: build failed: $(head -c 600 "$tmp/$1.build")"; return 1; fi; }

for f in "$B/qwenmoe_cuda.o" "$B/cuda/impl.o" "$B/cuda/impl_pic.o" "$B/cuda/qwenmoe_cuda_pic.o"; do
    [ -f "$f" ] || { bad "missing $f (run make test-cuda)"; echo "# cuda_link: $pass passed, $fail failed"; exit 1; }
done
$CC $W -I. -c tests/cuda/link_main.c -o "$tmp/main.o" || bad "compile link_main.c"
$CC $W -I. -DQM_CALL_REGISTER -c tests/cuda/link_main.c -o "$tmp/main_reg.o" || bad "compile link_main.c -DQM_CALL_REGISTER"
$CC $W -fPIC -I. -c tests/cuda/link_main.c -o "$tmp/main_pic.o" || bad "compile link_main.c -fPIC"
ar rcs "$tmp/libqwenmoe_cuda.a" "$B/qwenmoe_cuda.o"

# No GPU here means backend=cpu in every recipe; with a GPU the recipes that link the strong
# hook report cuda. The reason must then name the missing driver/device.
probe_expect() { # NAME: hook=yes, so backend is cuda (GPU) or cpu with a CUDA reason
    if grep -q "backend=cuda " "$tmp/$1.out"; then ok
    elif grep -q "backend=cpu " "$tmp/$1.out" && grep -Eq "desc=.*(CUDA unavailable|no CUDA device|driver|sm_)" "$tmp/$1.out"; then ok
    else bad "$1: expected backend=cuda, or cpu with the CUDA reason; got: $(cat "$tmp/$1.out")"; fi
}

# 1. CPU only: the header's weak default, hook NULL
build cpu $CC "$tmp/main.o" "$B/cuda/impl.o" -o "$tmp/cpu" -lpthread && run cpu "$tmp/cpu"
expect cpu hook no; expect cpu backend cpu
grep -q "desc=the CUDA object is not linked in" "$tmp/cpu.out" && ok || bad "cpu: reason missing: $(cat "$tmp/cpu.out")"

# 2. the object file: the strong definition wins
build object $CC "$tmp/main.o" "$B/cuda/impl.o" "$B/qwenmoe_cuda.o" -o "$tmp/object" $LIBS && run object "$tmp/object"
expect object hook yes; probe_expect object

# 3. static archive, no anchor: the member is never pulled in (the weak default satisfies the
#    reference), so the program silently has no CUDA. This documents the pitfall.
build archive $CC "$tmp/main.o" "$B/cuda/impl.o" "$tmp/libqwenmoe_cuda.a" -o "$tmp/archive" $LIBS && run archive "$tmp/archive"
expect archive hook no; expect archive backend cpu

# 4. static archive with the anchor qm_cuda_register() called: the member is linked
build anchor $CC "$tmp/main_reg.o" "$B/cuda/impl.o" "$tmp/libqwenmoe_cuda.a" -o "$tmp/anchor" $LIBS && run anchor "$tmp/anchor"
expect anchor hook yes; probe_expect anchor

# 5. static archive inside --whole-archive
build whole $CC "$tmp/main.o" "$B/cuda/impl.o" -Wl,--whole-archive "$tmp/libqwenmoe_cuda.a" -Wl,--no-whole-archive \
    -o "$tmp/whole" $LIBS && run whole "$tmp/whole"
expect whole hook yes; probe_expect whole

# 6. shared library holding the header's implementation and the object: non-NULL
build shared $CC -shared "$B/cuda/impl_pic.o" "$B/cuda/qwenmoe_cuda_pic.o" -o "$tmp/libqwenmoe_cuda.so" $LIBS &&
build shared_exe $CC "$tmp/main_pic.o" -L"$tmp" -Wl,-rpath,"$tmp" -lqwenmoe_cuda -o "$tmp/shared" -lpthread &&
    run shared "$tmp/shared"
expect shared hook yes; probe_expect shared

# 7. the pitfall: the executable carries the implementation (weak default), the .so only the
#    CUDA object. The executable's own weak definition wins over the .so's strong one.
build cudaonly_so $CC -shared "$B/cuda/qwenmoe_cuda_pic.o" -o "$tmp/libqmcudaonly.so" $LIBS &&
build exe_weak $CC "$tmp/main.o" "$B/cuda/impl.o" -L"$tmp" -Wl,-rpath,"$tmp" -Wl,--no-as-needed -lqmcudaonly \
    -Wl,--as-needed -o "$tmp/exe_weak" -lpthread && run exe_weak "$tmp/exe_weak"
expect exe_weak hook no; expect exe_weak backend cpu

echo "# cuda_link: $pass passed, $fail failed"
[ $fail -eq 0 ]
