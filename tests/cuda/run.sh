#!/usr/bin/env bash
# make test-cuda: every CUDA test, with or without a GPU.
#   1. the link recipes (tests/cuda/test_link.sh)
#   2. the host test of qwenmoe_cuda.cu's decoders and data flow (BUILD/cuda/test_cuda_host)
#   3. the -cuda programs against the CPU ones on tiny.gguf and tiny-q8.gguf: the same greedy
#      output; without a GPU, the warning on stderr that says CUDA is unusable and why
#   4. qwenmoe_cuda.cu on the host SIMT emulation: the emulator's self-test (BUILD/cuda/test_simt),
#      the GPU test's comparisons with the CPU (BUILD/cuda/test_cuda_simt), and the same logits
#      whatever the order of the emulated threads (BUILD/cuda/qwenmoe-logits-simt)
#   5. the GPU test (BUILD/cuda/test_cuda_gpu), which skips without a GPU
# Ends with "# cuda: N passed, M failed"; exit status 1 when anything failed.
#   usage: tests/cuda/run.sh [BUILD_DIR]
set -u
B=${1:-build}
pass=0; fail=0
tmp=$(mktemp -d /tmp/qm-cuda-run.XXXXXX); trap 'rm -rf "$tmp"' EXIT

# adds the "# NAME: N passed, M failed" line of a test's output; no line counts as a failure
tally() { # NAME OUTPUT_FILE STATUS
    local line p f
    line=$(grep -E "^# $1: [0-9]+ passed, [0-9]+ failed" "$2" | tail -n 1)
    if [ -z "$line" ]; then
        fail=$((fail + 1)); echo "FAIL cuda: $1 printed no summary (exit status $3):"; tail -n 20 "$2"; return
    fi
    p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/'); f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
    pass=$((pass + p)); fail=$((fail + f))
    if [ "$f" -eq 0 ] && [ "$3" -ne 0 ]; then fail=$((fail + 1)); echo "FAIL cuda: $1 exited with $3"; fi
}
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL cuda: $*"; }

# 1. link recipes
bash tests/cuda/test_link.sh "$B" > "$tmp/link.out" 2>&1; st=$?
grep -E "^(FAIL|#)" "$tmp/link.out"; tally cuda_link "$tmp/link.out" $st

# 2. host test
"$B/cuda/test_cuda_host" > "$tmp/host.out" 2>&1; st=$?
grep -E "^(FAIL|#)" "$tmp/host.out"; tally cuda_host "$tmp/host.out" $st
gpu=0
grep -q "^# probe: GPU" "$tmp/host.out" && gpu=1

# 3. the -cuda programs against the CPU programs
for m in tiny tiny-q8; do
    model="$B/models/$m.gguf"
    for prompt in "Hello world" "The quick brown fox jumps over the lazy dog, again and again"; do
        "$B/qwenmoe-generate" -m "$model" -p "$prompt" -n 32 --print-ids > "$tmp/cpu.out" 2> "$tmp/cpu.err"; s1=$?
        "$B/qwenmoe-generate-cuda" -m "$model" -p "$prompt" -n 32 --print-ids > "$tmp/cuda.out" 2> "$tmp/cuda.err"; s2=$?
        if [ $s1 -eq 0 ] && [ $s2 -eq 0 ] && [ -s "$tmp/cpu.out" ] && cmp -s "$tmp/cpu.out" "$tmp/cuda.out"; then ok
        else bad "generate $m \"$prompt\": -cuda differs (status $s1/$s2): cpu [$(head -c 200 "$tmp/cpu.out")] cuda [$(head -c 200 "$tmp/cuda.out")]"; fi
        if [ $gpu -eq 0 ]; then
            if grep -q "warning: CUDA is linked in but unusable (.*CUDA.*): running on the CPU" "$tmp/cuda.err"; then ok
            else bad "generate-cuda $m: no 'CUDA is linked in but unusable' warning on stderr: $(head -c 300 "$tmp/cuda.err")"; fi
        else
            if ! grep -Eq "unusable|failed|cannot upload" "$tmp/cuda.err"; then ok
            else bad "generate-cuda $m on a GPU: $(head -c 300 "$tmp/cuda.err")"; fi
        fi
        if ! grep -q "CUDA" "$tmp/cpu.err"; then ok; else bad "the CPU build mentions CUDA: $(head -c 200 "$tmp/cpu.err")"; fi
    done
    printf 'Hi there\nTell me a story about a fox\n' | "$B/qwenmoe-chat" -m "$model" -n 24 > "$tmp/cpu.out" 2> "$tmp/cpu.err"; s1=$?
    printf 'Hi there\nTell me a story about a fox\n' | "$B/qwenmoe-chat-cuda" -m "$model" -n 24 > "$tmp/cuda.out" 2> "$tmp/cuda.err"; s2=$?
    if [ $s1 -eq 0 ] && [ $s2 -eq 0 ] && [ -s "$tmp/cpu.out" ] && cmp -s "$tmp/cpu.out" "$tmp/cuda.out"; then ok
    else bad "chat $m: -cuda differs (status $s1/$s2)"; fi
    if [ $gpu -eq 1 ] || grep -q "warning: CUDA is linked in but unusable" "$tmp/cuda.err"; then ok
    else bad "chat-cuda $m: no warning on stderr: $(head -c 300 "$tmp/cuda.err")"; fi
done
echo "# cuda programs vs CPU programs: done (gpu=$gpu)"

# 4. qwenmoe_cuda.cu compiled against the host SIMT emulation (tests/cuda/simt.h): the
#    emulator's own test, then the GPU test's comparisons with the CPU on every type's small
#    model (written once into BUILD/cuda/models), running every kernel and host line of the
#    CUDA file, with the device-memory guard on (host code that reads device memory crashes).
"$B/cuda/test_simt" > "$tmp/simt.out" 2>&1; st=$?
grep -E "^(FAIL|#)" "$tmp/simt.out"; tally simt "$tmp/simt.out" $st
mkdir -p "$B/cuda/models"
nice -n 10 "$B/cuda/test_cuda_simt" --mkmodel "$B/qwenmoe-mkmodel" --dir "$B/cuda/models" > "$tmp/sim.out" 2>&1; st=$?
grep -E "^(FAIL|#)" "$tmp/sim.out"; tally cuda_simt "$tmp/sim.out" $st
#    the same logits, bit for bit, whatever order the emulated threads of a block run in
#    between barriers (a missing __syncthreads shows as a difference), for prefill (batch 16)
#    and decode (batch 1: the CUDA graph)
m="$B/cuda/models/small-q4_k_m.gguf"
ids=$(seq 0 23 | awk '{printf "%s%d", (NR > 1 ? "," : ""), ($1 * 37 + 11) % 4088}')
for batch in 16 1; do
    ref=""
    for order in forward reverse shuffle; do
        out="$tmp/logits-$batch-$order.bin"
        if QMC_SIMT_ORDER=$order "$B/cuda/qwenmoe-logits-simt" -m "$m" --ids "$ids" --batch $batch -t 2 -o "$out" \
               > "$tmp/l.out" 2>&1 && [ -s "$out" ]; then ok
        else bad "qwenmoe-logits-simt batch $batch, thread order $order: $(tail -c 300 "$tmp/l.out")"; continue; fi
        if [ -z "$ref" ]; then ref="$out"
        elif cmp -s "$ref" "$out"; then ok
        else bad "qwenmoe-logits-simt batch $batch: thread order $order gives other logits than forward"; fi
    done
done
if cmp -s "$tmp/logits-16-forward.bin" "$tmp/logits-1-forward.bin"; then
    bad "qwenmoe-logits-simt: prefill (batch 16, cuBLAS) and decode (batch 1, mat-vec) give identical bits: expected the f16 GEMM to differ"
else ok; fi
echo "# cuda_simt logits: thread orders forward, reverse, shuffle compared"
#    too little device memory: the context, then the model, then the experts refused, each
#    with a warning that says what was needed, and the run goes on (on the CPU: the same
#    logits as the CPU build)
if "$B/qwenmoe-logits" -m "$m" --ids "$ids" -t 2 -o "$tmp/cpu.bin" > "$tmp/cpu.out" 2>&1 && [ -s "$tmp/cpu.bin" ]; then ok
else bad "the CPU build of qwenmoe-logits failed: $(head -c 300 "$tmp/cpu.out")"; fi
QMC_SIMT_MEM_MB=270 "$B/cuda/qwenmoe-logits-simt" -m "$m" --ids "$ids" -t 2 -o "$tmp/m270.bin" > "$tmp/m270.out" 2>&1; st=$?
if [ $st -eq 0 ] && [ -s "$tmp/m270.bin" ] && grep -q "cannot make a context of 24 tokens on the GPU (.*are needed.*free of 270.0 MiB: use a smaller n_ctx or n_batch): it runs on the CPU, its experts on the GPU" "$tmp/m270.out"; then ok
else bad "270 MiB device: expected the context's refusal and a CPU run with GPU experts (status $st): $(head -c 400 "$tmp/m270.out")"; fi
QMC_SIMT_MEM_MB=262 "$B/cuda/qwenmoe-logits-simt" -m "$m" --ids "$ids" -t 2 -o "$tmp/m262.bin" > "$tmp/m262.out" 2>&1; st=$?
if [ $st -eq 0 ] && grep -q "cannot upload the model to .*trying the experts alone" "$tmp/m262.out" &&
   grep -q "cannot upload the experts to .*cuda_cpu_moe_layers to keep the first layers' experts on the CPU): running on the CPU" "$tmp/m262.out" &&
   cmp -s "$tmp/cpu.bin" "$tmp/m262.bin"; then ok
else bad "262 MiB device: expected both refusals and the CPU's logits (status $st): $(head -c 600 "$tmp/m262.out")"; fi
QMC_SIMT_NODEV=1 "$B/cuda/qwenmoe-logits-simt" -m "$m" --ids "$ids" -t 2 -o "$tmp/nodev.bin" > "$tmp/nodev.out" 2>&1; st=$?
if [ $st -eq 0 ] && grep -q "CUDA is linked in but unusable" "$tmp/nodev.out" && cmp -s "$tmp/cpu.bin" "$tmp/nodev.bin"; then ok
else bad "no device: expected the warning and the CPU's logits (status $st): $(head -c 300 "$tmp/nodev.out")"; fi

# 5. the GPU test (skips without a GPU)
"$B/cuda/test_cuda_gpu" --mkmodel "$B/qwenmoe-mkmodel" --dir "$B/cuda/models" > "$tmp/gpu.out" 2>&1; st=$?
grep -E "^(FAIL|#|skip)" "$tmp/gpu.out"; tally cuda_gpu "$tmp/gpu.out" $st

echo "# cuda: $pass passed, $fail failed"
[ $fail -eq 0 ]
