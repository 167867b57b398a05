#!/usr/bin/env bash
# test_golden.sh - parity with llama.cpp, without node: checks our engine against the llama.cpp
# reference results that tools/parity/parity.mjs (make parity) stored in tests/golden/*.golden.
#
# For every golden file it rewrites the model with qwenmoe-mkmodel (deterministic: the same
# arguments give the same file), then
#   - runs qwenmoe-logits on each stored token sequence (S lines) and compares with llama.cpp's
#     top tokens and log-probabilities (P lines): same top-1 >= 99 % and the mean KL divergence
#     estimated over the stored bins <= 1e-3 (2e-4 for F32 models) (tools/parity/golden_cmp.c,
#     built here, does the arithmetic);
#   - runs qwenmoe-generate greedily from the stored prompt (G line) and, on the models that
#     parity.mjs found peaked, requires llama.cpp's 32 tokens exactly;
#   - tokenizes the stored texts (T lines) with qwenmoe-tokenize and requires llama.cpp's ids.
# Usage (from the repository root, after make):  bash tests/test_golden.sh [BUILD_DIR]
# Environment: QM_GOLDEN_DIR (default tests/golden), QM_GOLDEN_THREADS (default 2), CC,
#              QM_GOLDEN_ONLY (model names to check; default all).
# Prints one line per check and "# golden: N passed, M failed"; exit status 1 if any failed.
set -u
B=${1:-build}
G=${QM_GOLDEN_DIR:-tests/golden}
T=${QM_GOLDEN_THREADS:-2}
W=$B/golden
pass=0
fail=0
ok()  { echo "ok   $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }
summary() {
    echo "# golden: $pass passed, $fail failed"
    [ "$fail" -eq 0 ]
    exit $?
}

mkdir -p "$W" || { bad "cannot create $W"; summary; }
for p in qwenmoe-mkmodel qwenmoe-logits qwenmoe-generate qwenmoe-tokenize; do
    [ -x "$B/$p" ] || { bad "$B/$p is missing (run make)"; summary; }
done
CMP=$W/golden-cmp
if [ ! -x "$CMP" ] || [ tools/parity/golden_cmp.c -nt "$CMP" ]; then
    if ! ${CC:-cc} -std=c99 -O2 -Wall -Wextra -pedantic tools/parity/golden_cmp.c -o "$CMP" -lm; then
        bad "tools/parity/golden_cmp.c does not build"
        summary
    fi
fi
# QM_GOLDEN_ONLY: space-separated model names to check (default: every golden file)
files=()
if [ -n "${QM_GOLDEN_ONLY:-}" ]; then
    read -ra only <<<"$QM_GOLDEN_ONLY"
    for name in "${only[@]}"; do files+=("$G/$name.golden"); done
else
    shopt -s nullglob
    files=("$G"/*.golden)
    shopt -u nullglob
fi
[ ${#files[@]} -gt 0 ] || { bad "no golden files in $G (run make parity)"; summary; }

# "1 2 3" or "1,2,3" or "" -> "1,2,3" or "-"
idlist() {
    local s
    s=$(tr -s ' \t\n,' ',' | sed 's/^,//; s/,$//')
    echo "${s:--}"
}

for f in "${files[@]}"; do
    [ -f "$f" ] || { bad "$f: no such golden file"; continue; }
    name=$(awk '$1 == "name" { print $2; exit }' "$f")
    mk=$(sed -n 's/^mkmodel //p' "$f" | head -n 1)
    ours=$(sed -n 's/^ours //p' "$f" | head -n 1)
    vocab=$(awk '$1 == "vocab" { print $2; exit }' "$f")
    min_top1=$(awk '$1 == "criteria" { print $3; exit }' "$f")
    max_kld=$(awk '$1 == "criteria" { print $5; exit }' "$f")
    if [ -z "$name" ] || [ -z "$mk" ] || [ -z "$vocab" ] || [ -z "$min_top1" ] || [ -z "$max_kld" ]; then
        bad "$f: missing name/mkmodel/vocab/criteria line"
        continue
    fi
    [ "$ours" = "-" ] && ours=""
    model=$W/$name.gguf
    if [ ! -s "$model" ] || [ "$(cat "$model.args" 2>/dev/null)" != "$mk" ] || [ "$B/qwenmoe-mkmodel" -nt "$model" ]; then
        # shellcheck disable=SC2086
        if ! "$B/qwenmoe-mkmodel" $mk -q -o "$model" >"$W/$name.log" 2>&1; then
            bad "$name: qwenmoe-mkmodel $mk failed: $(tail -n 1 "$W/$name.log")"
            rm -f "$model"
            continue
        fi
        echo "$mk" >"$model.args"
    fi

    # teacher-forced logits
    seqargs=()
    bins=()
    err=""
    while read -r tag ids; do
        bin=$W/$name.$tag.bin
        # shellcheck disable=SC2086
        if ! "$B/qwenmoe-logits" -m "$model" --ids "$ids" -o "$bin" -t "$T" $ours >"$W/$name.log" 2>&1; then
            err="qwenmoe-logits failed on sequence $tag: $(tail -n 1 "$W/$name.log")"
            break
        fi
        seqargs+=(--seq "$tag=$bin")
        bins+=("$bin")
    done < <(awk '$1 == "S" { print $2, $3 }' "$f")
    if [ -n "$err" ]; then
        bad "$name: $err"
    elif [ ${#seqargs[@]} -eq 0 ]; then
        bad "$name: no S lines"
    else
        res=$("$CMP" --golden "$f" --vocab "$vocab" --min-top1 "$min_top1" --max-kld "$max_kld" "${seqargs[@]}" 2>&1)
        if [ $? -eq 0 ]; then ok "$name: logits vs llama.cpp: $res"
        else bad "$name: logits vs llama.cpp: $res (need top-1 >= $min_top1, mean KLD <= $max_kld)"; fi
    fi
    [ ${#bins[@]} -gt 0 ] && rm -f "${bins[@]}"

    # greedy continuation
    read -r _ required prompt want < <(grep -m 1 '^G ' "$f")
    if [ -n "${want:-}" ]; then
        n=$(echo "$want" | tr ',' '\n' | grep -c .)
        # shellcheck disable=SC2086
        if ! "$B/qwenmoe-generate" -m "$model" --prompt-ids "$prompt" -n "$n" --print-ids --ignore-eos -t "$T" $ours \
                >"$W/$name.gen" 2>"$W/$name.log"; then
            bad "$name: qwenmoe-generate failed: $(tail -n 1 "$W/$name.log")"
            got=""
        else
            got=$(idlist <"$W/$name.gen")
        fi
        rm -f "$W/$name.gen"
        if [ -z "$got" ]; then
            :
        elif [ "$got" = "$want" ]; then
            if [ "$required" = 1 ]; then ok "$name: greedy $n tokens equal llama.cpp's"
            else echo "note $name: greedy $n tokens equal llama.cpp's (model not peaked: no criterion)"; fi
        elif [ "$required" = 1 ]; then
            bad "$name: greedy differs from llama.cpp: llama.cpp $want ours $got"
        else
            echo "note $name: greedy differs from llama.cpp (model not peaked: no criterion)"
        fi
    fi

    # tokenization
    if grep -q '^T ' "$f"; then
        res=""
        for sp in 1 0; do
            flag=""
            [ $sp = 0 ] && flag=--no-special
            awk -v sp=$sp '$1 == "T" && $2 == sp { print ($3 == "-" ? "" : $3) }' "$f" >"$W/$name.tok.in"
            awk -v sp=$sp '$1 == "T" && $2 == sp { print $3, $4 }' "$f" >"$W/$name.tok.want"
            [ -s "$W/$name.tok.want" ] || continue
            # shellcheck disable=SC2086
            if ! "$B/qwenmoe-tokenize" -m "$model" --batch $flag <"$W/$name.tok.in" >"$W/$name.tok.got" 2>"$W/$name.log"; then
                res="$res qwenmoe-tokenize failed: $(tail -n 1 "$W/$name.log");"
                continue
            fi
            # "<total> <same> <first difference>"
            res="$res$(awk -v sp=$sp '
                NR == FNR { got[FNR] = $0; next }
                {
                    n++
                    g = got[FNR]; gsub(/^[ \t,]+|[ \t,]+$/, "", g); gsub(/[ \t,]+/, ",", g)
                    if (g == "") g = "-"
                    if (g == $2) same++
                    else if (first == "") first = "special=" sp " text " $1 ": llama.cpp " $2 " ours " g
                }
                END { printf "%d %d %s;", n, same, first }' "$W/$name.tok.got" "$W/$name.tok.want")"
        done
        rm -f "$W/$name.tok.in" "$W/$name.tok.want" "$W/$name.tok.got"
        # res: "T1 S1 first1;T2 S2 first2;" (or an error)
        total=0; same=0; first=""; tokerr=""
        IFS=';' read -ra parts <<<"$res"
        for p in "${parts[@]}"; do
            p=${p# }
            [ -z "$p" ] && continue
            case $p in
                qwenmoe-tokenize*) tokerr="$p"; continue ;;
            esac
            read -r t s rest <<<"$p"
            total=$((total + t)); same=$((same + s))
            [ -z "$first" ] && first="$rest"
        done
        if [ -n "$tokerr" ]; then bad "$name: $tokerr"
        elif [ "$total" -gt 0 ] && [ "$same" -eq "$total" ]; then ok "$name: tokenization of $total texts equals llama.cpp's"
        else bad "$name: tokenization: $((total - same)) of $total texts differ from llama.cpp; first: $first"; fi
    fi
done
summary
