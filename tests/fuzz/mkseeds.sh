#!/usr/bin/env bash
# mkseeds.sh - write the seed corpora of the fuzzers into build/fuzz/corpus-*/:
#   corpus-gguf       small synthetic models (qwenmoe-mkmodel with tiny dimensions: 20-50 KB,
#                     the K-quants 110-270 KB; MoE and dense, 12 tensor types, tied output,
#                     no rope base, each chat template, GGUF alignment 8/64) and the hand-made
#                     seeds of tests/fuzz/seeds/gguf/
#   corpus-tokenizer  the texts of tests/data/tokenizer_vectors.txt (E and P lines), each
#                     prefixed by the harness's flag byte, and tests/fuzz/seeds/tokenizer/
#   corpus-chat       tests/fuzz/seeds/chat/ and the three real templates (as detection input)
# Usage: tests/fuzz/mkseeds.sh [BUILD_DIR]   (default build; needs BUILD_DIR/qwenmoe-mkmodel)
set -euo pipefail
B=${1:-build}
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
fi
MK="$B/qwenmoe-mkmodel"
[ -x "$MK" ] || { echo "mkseeds.sh: $MK is missing: run 'make $MK' first" >&2; exit 1; }
HERE=$(cd "$(dirname "$0")" && pwd)
G="$B/fuzz/corpus-gguf" T="$B/fuzz/corpus-tokenizer" C="$B/fuzz/corpus-chat"
mkdir -p "$G" "$T" "$C"

# tiny dimensions (a few KB to ~40 KB: the fuzzer mutates metadata more often in small files):
# 1 layer, vocab 270 (~10 merges); n_embd 16 for the float types, 32 (one block) for the
# *_0/*_1/iq4_nl types; the K-quants need rows of 256 (dense, tied, ~110-200 KB)
small=(--layers 1 --embd 16 --heads 2 --heads-kv 1 --head-dim 8 --vocab 270 --ctx 64 --template none)
moe=(--experts 4 --experts-used 2 --ff-exp 8)
blk=(--embd 32 --head-dim 16 --ff-exp 32)
n=0
mk() { # name, extra args...
    local name=$1 log
    shift
    if ! log=$("$MK" -q --preset tiny "${small[@]}" "$@" -o "$G/$name.gguf" 2>&1); then
        echo "$log" >&2
        exit 1
    fi
    n=$((n + 1))
}
mk moe-f32 --seed 1 "${moe[@]}"
mk moe-f16 --seed 2 "${moe[@]}" --type f16
mk moe-bf16 --seed 3 "${moe[@]}" --type bf16 --tied
mk moe-tied --seed 4 "${moe[@]}" --tied --type f16
mk moe-norope --seed 5 "${moe[@]}" --no-rope-base --type f16
mk moe-2layer --seed 6 "${moe[@]}" --layers 2 --experts 8 --experts-used 3 --type f16
mk moe-align8 --seed 7 "${moe[@]}" --alignment 8 --type f16
mk moe-align64 --seed 8 "${moe[@]}" --alignment 64 --type f16
mk moe-qwen3tmpl --seed 9 "${moe[@]}" --template qwen3 --type f16 --tied
mk moe-codertmpl --seed 10 "${moe[@]}" --template coder --type f16 --tied
mk moe-q8_0 --seed 11 "${moe[@]}" "${blk[@]}" --type q8_0 --tied
mk moe-q4_0 --seed 12 "${moe[@]}" "${blk[@]}" --type q4_0 --tied
mk moe-q4_1 --seed 13 "${moe[@]}" "${blk[@]}" --type q4_1 --tied
mk moe-q5_0 --seed 14 "${moe[@]}" "${blk[@]}" --type q5_0 --tied
mk moe-q5_1 --seed 15 "${moe[@]}" "${blk[@]}" --type q5_1 --tied
mk moe-iq4_nl --seed 16 "${moe[@]}" "${blk[@]}" --type iq4_nl --tied
kq=(--arch qwen3 --embd 256 --head-dim 32 --ff 256 --vocab 259 --tied)
mk dense-q4_k --seed 17 "${kq[@]}" --type q4_k
mk dense-q6_k --seed 18 "${kq[@]}" --type q6_k
mk dense-q2_k --seed 19 "${kq[@]}" --type q2_k
mk dense-f32 --seed 20 --arch qwen3 --ff 24
mk dense-q8_0 --seed 21 --arch qwen3 --embd 32 --head-dim 16 --ff 64 --type q8_0 --tied
cp "$HERE"/seeds/gguf/* "$G"/ 2>/dev/null || true

# tokenizer: first byte = flags for the harness (bit 0: parse special tokens)
t=0
while read -r kind flag name hex rest; do
    [ "$kind" = E ] || [ "$kind" = P ] || continue
    [ "$hex" != - ] || continue
    t=$((t + 1))
    printf '%b' "\\x0$flag$(printf '%s' "$hex" | sed 's/../\\x&/g')" > "$T/$kind$flag-$name-$t"
done < tests/data/tokenizer_vectors.txt
cp "$HERE"/seeds/tokenizer/* "$T"/ 2>/dev/null || true

cp "$HERE"/seeds/chat/* "$C"/ 2>/dev/null || true
for f in tests/data/templates/*.jinja; do
    printf '\377' > "$C/tmpl-$(basename "$f" .jinja)"
    cat "$f" >> "$C/tmpl-$(basename "$f" .jinja)"
done
echo "mkseeds.sh: $n models in $G ($(du -sk "$G" | cut -f1) KB), $(ls "$T" | wc -l) tokenizer seeds, $(ls "$C" | wc -l) chat seeds"
