#!/usr/bin/env bash
# test_bench.sh - build/qwenmoe-bench works: --help, argument errors, the --json line (parses, one
# line, the fields present, positive and finite, consistent with each other), the table, and the
# bytes-per-token figure against an independent sum over qwenmoe-inspect's tensor table (untied
# and tied models, f16 and f32 KV). No timing assertions: the speeds only have to be positive.
# Usage (from the repository root, after make):  bash tests/test_bench.sh [BUILD_DIR]
# Needs node (to parse the JSON). Prints "# bench: N passed, M failed".
set -u
B=${1:-build}
M=build/models
BENCH=$B/qwenmoe-bench
INSPECT=$B/qwenmoe-inspect
pass=0
fail=0
ok()  { echo "ok   $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }
summary() {
    echo "# bench: $pass passed, $fail failed"
    [ "$fail" -eq 0 ]
    exit $?
}
tmp=$(mktemp -d) || { bad "mktemp"; summary; }
trap 'rm -rf "$tmp"' EXIT

for f in "$BENCH" "$INSPECT"; do [ -x "$f" ] || { bad "$f is missing (run make $f)"; summary; }; done
for f in "$M/tiny.gguf" "$M/tiny-tied-norope.gguf"; do [ -f "$f" ] || { bad "$f is missing (run make $f)"; summary; }; done
command -v node >/dev/null || { bad "node is needed to parse the JSON (npm ci installs the rest)"; summary; }

# --help
if "$BENCH" --help >"$tmp/help" 2>&1 && grep -q '^usage: qwenmoe-bench' "$tmp/help" && grep -q -- '--json' "$tmp/help"; then
    ok "--help prints the usage and exits 0"
else bad "--help: exit status or text wrong"; head -5 "$tmp/help"; fi

# errors name what was wrong
expect_error() { # description, pattern the message must contain, args...
    local d=$1 pat=$2; shift 2
    if "$BENCH" "$@" >"$tmp/out" 2>"$tmp/err"; then bad "$d: exited 0"; return; fi
    if grep -qF -- "$pat" "$tmp/err"; then ok "$d: fails and says '$pat'"
    else bad "$d: the message does not contain '$pat':"; cat "$tmp/err"; fi
}
expect_error "a missing file" "/nonexistent/model.gguf" -m /nonexistent/model.gguf -p 4 -n 2 -r 1
expect_error "a non-numeric -p" "-p" -m "$M/tiny.gguf" -p x
expect_error "no -m" "-m FILE is required"
expect_error "-p 0 -n 0" "nothing to measure" -m "$M/tiny.gguf" -p 0 -n 0
expect_error "an unknown option" "--bogus" -m "$M/tiny.gguf" --bogus
expect_error "--ctx smaller than the pp test" "--ctx" -m "$M/tiny.gguf" -p 64 -n 4 --ctx 32

# independent expectation of bytes per decoded token from qwenmoe-inspect's tensor table:
# non-expert tensors + one row of token_embd (all of it when tied) + output.weight
# + used/experts x the *_exps tensors + KV (layers x 2 x kv heads x head_dim x elt x (n+1)/2)
expected_bpt() { # model, n_gen, kv element bytes
    "$INSPECT" "$1" | awk -v n="$2" -v elt="$3" '
        /^tensors \(/ { in_t = 1; next }
        /^totals by type/ { in_t = 0 }
        in_t && $1 ~ /^[0-9]+$/ && NF >= 5 {
            name = $2; bytes = $NF
            shape = $0; sub(/^[^[]*\[/, "", shape); sub(/\].*$/, "", shape)
            split(shape, d, ", *")
            if (name ~ /_exps/) exps += bytes
            else if (name == "token_embd.weight") { embd = bytes; rows = d[2] }
            else if (name == "output.weight") { head = bytes; has_out = 1 }
            else other += bytes
        }
        $1 == "layers" { layers = $2 }  $1 == "kv" && $2 == "heads" { kvh = $3 }
        $1 == "head_dim" && $2 ~ /^[0-9]+$/ { hd = $2 }
        $1 == "experts" && $2 ~ /^[0-9]+$/ { ne = $2 }  $1 == "experts" && $2 == "used" { nu = $3 }
        END {
            t = other + (has_out ? embd / rows + head : embd)
            if (ne > 0) t += exps * nu / ne
            t += layers * 2 * kvh * hd * elt * (n + 1) / 2
            printf "%.0f\n", t
        }'
}

# the --json line; node checks it and prints ok/FAIL lines
check_json() { # description, model, n_prompt, n_gen, reps, expected bytes/token, json file
    node - "$@" <<'EOF'
const [desc, model, np, ng, reps, bpt, file] = process.argv.slice(2);
const fs = require("fs");
const lines = fs.readFileSync(file, "utf8").split("\n").filter((l) => l.length);
const say = (good, what) => console.log(`${good ? "ok  " : "FAIL"} ${desc}: ${what}`);
say(lines.length === 1, `stdout is one line (found ${lines.length})`);
let j = null;
try { j = JSON.parse(lines[0]); say(typeof j === "object" && j !== null && !Array.isArray(j), "the line is one JSON object"); }
catch (e) { say(false, `the line parses as JSON (${e.message})`); process.exit(0); }
const pos = (k) => typeof j[k] === "number" && Number.isFinite(j[k]) && j[k] > 0;
const fields = ["pp_tps", "tg_tps", "load_s", "peak_rss_mb", "rss_anon_mb", "bytes_per_token", "tg_gbps", "threads", "file_bytes"];
const badf = fields.filter((k) => !pos(k));
say(badf.length === 0, `positive finite ${fields.join(" ")}` + (badf.length ? ` (not: ${badf.map((k) => `${k}=${JSON.stringify(j[k])}`).join(" ")})` : ""));
for (const k of ["pp_tps_all", "tg_tps_all"]) {
    const a = j[k];
    say(Array.isArray(a) && a.length === +reps && a.every((x) => typeof x === "number" && Number.isFinite(x) && x > 0),
        `${k} holds ${reps} positive finite values (${JSON.stringify(a)})`);
}
say(j.n_prompt === +np && j.n_gen === +ng && j.reps === +reps, `n_prompt ${j.n_prompt}, n_gen ${j.n_gen}, reps ${j.reps} as asked`);
say(j.model === model, `model is the path given (${j.model})`);
say(j.file_bytes === fs.statSync(model).size, `file_bytes ${j.file_bytes} is the file's size`);
say(j.backend === "cpu" || j.backend === "cuda", `backend ${j.backend}`);
const med = (a) => { const s = [...a].sort((x, y) => x - y), h = s.length >> 1; return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2; };
say(Math.abs(j.pp_tps - med(j.pp_tps_all)) <= 1e-3 * j.pp_tps + 1e-3 && Math.abs(j.tg_tps - med(j.tg_tps_all)) <= 1e-3 * j.tg_tps + 1e-3,
    "pp_tps and tg_tps are the medians of the arrays");
say(j.bytes_per_token === +bpt, `bytes_per_token ${j.bytes_per_token} = ${bpt} (summed from qwenmoe-inspect's tensor table)`);
say(j.bytes_per_token === j.bytes_nonexpert + j.bytes_experts + j.bytes_kv, "bytes_per_token = non-expert + experts + KV");
say(Math.abs(j.tg_gbps - j.bytes_per_token * j.tg_tps / 1e9) <= 2e-3 * j.tg_gbps + 1e-4, `tg_gbps ${j.tg_gbps} = bytes/token x tg_tps`);
say(j.rss_model_2m_mb >= 0 && j.rss_model_2m_mb <= j.rss_model_mb, `the model's mapping in 2 MiB pages, ${j.rss_model_2m_mb} MiB, is part of its RSS ${j.rss_model_mb} MiB`);
say(j.peak_rss_mb >= j.rss_anon_mb && j.rss_model_mb >= 0 && j.rss_model_mb <= j.file_bytes / 1048576 + 0.01,
    `peak RSS ${j.peak_rss_mb} >= anonymous ${j.rss_anon_mb}; the model's mapping ${j.rss_model_mb} MiB is at most the file`);
EOF
}
run_json() { # description, model, kv element bytes, extra args...
    local d=$1 model=$2 elt=$3; shift 3
    local exp
    exp=$(expected_bpt "$model" 4 "$elt")
    if ! "$BENCH" -m "$model" -p 16 -n 4 -r 2 -t 2 --json "$@" >"$tmp/json" 2>"$tmp/err"; then
        bad "$d: qwenmoe-bench --json exited nonzero:"; cat "$tmp/err"; return
    fi
    if [ "$(grep -c 'rep [0-9]*/2:' "$tmp/err")" -eq 2 ]; then ok "$d: one progress line per repetition on stderr"
    else bad "$d: progress lines on stderr:"; cat "$tmp/err"; fi
    local line
    while IFS= read -r line; do
        case $line in
            "ok  "*) ok "${line#ok   }" ;;
            FAIL*) bad "${line#FAIL }" ;;
            *) bad "$d: unexpected output of the JSON check: $line" ;;
        esac
    done < <(check_json "$d" "$model" 16 4 2 "$exp" "$tmp/json" 2>&1)
}
run_json "tiny.gguf" "$M/tiny.gguf" 2
run_json "tiny.gguf --kv-f32" "$M/tiny.gguf" 4 --kv-f32
run_json "tiny-tied-norope.gguf (tied LM head)" "$M/tiny-tied-norope.gguf" 2

# the table
if "$BENCH" -m "$M/tiny.gguf" -p 16 -n 4 -r 1 -t 1 >"$tmp/table" 2>"$tmp/err"; then
    if grep -qE '^\| tiny\.gguf \|.*\| pp16 \| [0-9.]+ ± [0-9.]+ \| [0-9.]+ \|$' "$tmp/table" &&
       grep -qE '^\| tiny\.gguf \|.*\| tg4 \| [0-9.]+ ± [0-9.]+ \| [0-9.]+ \|$' "$tmp/table" &&
       grep -q '^| model | size | params | backend | threads | test | t/s |' "$tmp/table" &&
       grep -q '^bytes per decoded token: ' "$tmp/table" && grep -q '^bandwidth (tg): ' "$tmp/table" &&
       grep -q '^load: ' "$tmp/table" && grep -q '^memory: peak RSS ' "$tmp/table"; then
        ok "the table has the pp16 and tg4 rows and the load, memory, bytes and bandwidth lines"
    else bad "the table:"; cat "$tmp/table"; fi
else bad "qwenmoe-bench (table) exited nonzero:"; cat "$tmp/err"; fi

# -n 0: only pp; tg fields are null
if "$BENCH" -m "$M/tiny.gguf" -p 8 -n 0 -r 1 -t 1 --json >"$tmp/json" 2>"$tmp/err" &&
   node -e 'const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); process.exit(j.pp_tps > 0 && j.tg_tps === null && j.tg_gbps === null && j.tg_tps_all.length === 0 ? 0 : 1)' "$tmp/json"; then
    ok "-n 0 measures pp only (tg fields null)"
else bad "-n 0:"; cat "$tmp/json" "$tmp/err"; fi
summary
