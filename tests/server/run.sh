#!/usr/bin/env bash
# tests/server/run.sh BUILD_DIR - the tests of qwenmoe-server (make test-server builds what
# they need: the server, test_toolparse, qwenmoe-generate, qwenmoe-tokenize, tiny-tok.gguf).
#   1. test_toolparse: JSON, the Qwen3-Coder renderer with tools against jinja2, the parser
#   2. a server on tiny-tok.gguf (--parallel 2 --api-key --debug --ctx 512) driven by the
#      openai npm client and fetch (tests/server/client.mjs): chat/completions, streaming,
#      tool calls, renders, greedy parity with qwenmoe-generate, 32 concurrent streams, a
#      client leaving mid-stream
#   3. curl: every kind of bad input gets its status and an OpenAI error object
#   4. a second server (--parallel 1 --queue 1): queueing, 503 past the queue, a queued
#      request served when the slot's client leaves, SIGTERM mid-stream (exit 0)
# Prints "# server: N passed, M failed"; exits 1 on a failure.
# QM_SERVER_BIN=path runs another build of the server (make test-server-asan: ASan + LSan,
# whose leak report at exit turns into a nonzero exit status, which is checked).
set -u
B=${1:-build}
SRV=${QM_SERVER_BIN:-$B/qwenmoe-server}
MODEL=build/models/tiny-tok.gguf
export NODE_LLAMA_CPP_SKIP_DOWNLOAD=true
TMP=$(mktemp -d /tmp/qwenmoe-server-test.XXXXXX)
KEY="sk-test-$$-key"
pass=0; fail=0
PIDS=""
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
add_summary() { # name, output: add the "# name: N passed, M failed" line of a program
    local line p f
    line=$(printf '%s\n' "$2" | grep -E '^# [^:]+: [0-9]+ passed, [0-9]+ failed' | tail -n 1)
    if [ -z "$line" ]; then printf '%s\n' "$2" | tail -n 20; bad "$1: no summary line"; return; fi
    p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed.*/\1/')
    f=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed.*/\2/')
    pass=$((pass + p)); fail=$((fail + f))
}

for f in "$SRV" "$B/test_toolparse" "$B/qwenmoe-generate" "$B/qwenmoe-tokenize" "$MODEL"; do
    [ -e "$f" ] || { echo "missing $f: run 'make test-server'"; echo "# server: 0 passed, 1 failed"; exit 1; }
done
[ -d node_modules/openai ] || { echo "missing node_modules/openai: run 'npm ci'"; echo "# server: 0 passed, 1 failed"; exit 1; }

# 1. unit tests
out=$("$B/test_toolparse" tests/server/tool_renders.txt tests/data/chat_renders.txt 2>&1)
printf '%s\n' "$out" | grep -E '^(FAIL|#)'
add_summary toolparse "$out"

# start_server NAME ARGS...: sets PORT and PID (the log is $TMP/NAME.log)
start_server() {
    local name=$1 i
    shift
    "$SRV" -m "$MODEL" --port 0 "$@" 2>"$TMP/$name.log" &
    PID=$!
    PIDS="$PIDS $PID"
    PORT=""
    for i in $(seq 1 300); do
        PORT=$(sed -n 's/.*listening on http:\/\/.*:\([0-9][0-9]*\)$/\1/p' "$TMP/$name.log")
        [ -n "$PORT" ] && return 0
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$TMP/$name.log"
    return 1
}
# stop_server NAME PID: SIGTERM, then the exit status must be 0 within 20 s
stop_server() {
    local name=$1 pid=$2 i rc
    kill -TERM "$pid"
    for i in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then bad "$name: still running 20 s after SIGTERM"; kill -KILL "$pid"; return; fi
    wait "$pid"; rc=$?
    if [ "$rc" -eq 0 ] && grep -q "qwenmoe-server: stopped" "$TMP/$name.log"; then ok; else
        bad "$name: exit status $rc after SIGTERM"; tail -n 30 "$TMP/$name.log"; fi
}

# 2. the openai client, fetch, 32 streams
if ! start_server main --parallel 2 --api-key "$KEY" --debug --ctx 512; then
    bad "main server did not start"; echo "# server: $pass passed, $fail failed"; exit 1
fi
MAIN_PID=$PID; MAIN_PORT=$PORT
echo "# server on port $MAIN_PORT (pid $MAIN_PID)"
out=$(node tests/server/client.mjs --port "$MAIN_PORT" --key "$KEY" --model "$MODEL" --generate "$B/qwenmoe-generate" \
      --tokenize "$B/qwenmoe-tokenize" --renders tests/server/tool_renders.txt --clients 32 2>&1)
printf '%s\n' "$out" | grep -vE '^# server-client'
add_summary server-client "$out"
grep -q "client disconnected" "$TMP/main.log" && ok || bad "the server log does not show the disconnected client"

# 3. bad input: status + error object
U="http://127.0.0.1:$MAIN_PORT"
AUTH="Authorization: Bearer $KEY"
MSG='"messages":[{"role":"user","content":"hi"}]'
# expect_err WHAT STATUS TYPE CODE PARAM CURL-ARGS...   (CODE/PARAM: null for null)
expect_err() {
    local what=$1 want=$2 type=$3 code=$4 param=$5 st
    shift 5
    st=$(curl -s -o "$TMP/body" -w '%{http_code}' "$@")
    if [ "$st" != "$want" ]; then bad "$what: status $st, expected $want: $(head -c 300 "$TMP/body")"; return; fi
    if node -e '
        const [f, type, code, param] = process.argv.slice(1);
        const j = JSON.parse(require("fs").readFileSync(f, "utf8"));
        const e = j.error, want = (s) => (s === "null" ? null : s);
        const okk = e && Object.keys(j).length === 1 && typeof e.message === "string" && e.message.length > 0 &&
            e.type === type && e.code === want(code) && e.param === want(param) &&
            JSON.stringify(Object.keys(e).sort()) === JSON.stringify(["code", "message", "param", "type"]);
        process.exit(okk ? 0 : 1);' "$TMP/body" "$type" "$code" "$param"; then
        ok
        echo "  $what -> $st $(head -c 200 "$TMP/body")"
    else
        bad "$what: error body $(head -c 300 "$TMP/body")"
    fi
}
J=(-H "$AUTH" -H "Content-Type: application/json")
expect_err "malformed JSON" 400 invalid_request_error invalid_json null "${J[@]}" -d '{"messages": [' "$U/v1/chat/completions"
expect_err "invalid UTF-8" 400 invalid_request_error invalid_json null "${J[@]}" --data-binary $'{"messages":[{"role":"user","content":"\xff"}]}' "$U/v1/chat/completions"
expect_err "body not an object" 400 invalid_request_error null null "${J[@]}" -d '[1,2]' "$U/v1/chat/completions"
expect_err "missing messages" 400 invalid_request_error null messages "${J[@]}" -d '{"model":"x"}' "$U/v1/chat/completions"
expect_err "messages not an array" 400 invalid_request_error null messages "${J[@]}" -d '{"messages":"hi"}' "$U/v1/chat/completions"
expect_err "empty messages" 400 invalid_request_error null messages "${J[@]}" -d '{"messages":[]}' "$U/v1/chat/completions"
expect_err "message without content" 400 invalid_request_error null messages "${J[@]}" -d '{"messages":[{"role":"user"}]}' "$U/v1/chat/completions"
expect_err "unknown role" 400 invalid_request_error null messages "${J[@]}" -d '{"messages":[{"role":"robot","content":"x"}]}' "$U/v1/chat/completions"
expect_err "content of a wrong type" 400 invalid_request_error null messages "${J[@]}" -d '{"messages":[{"role":"user","content":5}]}' "$U/v1/chat/completions"
expect_err "temperature a string" 400 invalid_request_error null temperature "${J[@]}" -d "{$MSG,\"temperature\":\"hot\"}" "$U/v1/chat/completions"
expect_err "temperature out of range" 400 invalid_request_error null temperature "${J[@]}" -d "{$MSG,\"temperature\":5}" "$U/v1/chat/completions"
expect_err "max_tokens 0" 400 invalid_request_error null max_tokens "${J[@]}" -d "{$MSG,\"max_tokens\":0}" "$U/v1/chat/completions"
expect_err "max_tokens not an integer" 400 invalid_request_error null max_tokens "${J[@]}" -d "{$MSG,\"max_tokens\":1.5}" "$U/v1/chat/completions"
expect_err "n = 2" 400 invalid_request_error null n "${J[@]}" -d "{$MSG,\"n\":2}" "$U/v1/chat/completions"
expect_err "stop a number" 400 invalid_request_error null stop "${J[@]}" -d "{$MSG,\"stop\":5}" "$U/v1/chat/completions"
expect_err "stream not a boolean" 400 invalid_request_error null stream "${J[@]}" -d "{$MSG,\"stream\":\"yes\"}" "$U/v1/chat/completions"
expect_err "tools malformed" 400 invalid_request_error null tools "${J[@]}" -d "{$MSG,\"tools\":[{\"type\":\"function\"}]}" "$U/v1/chat/completions"
expect_err "tool call arguments not JSON" 400 invalid_request_error null messages "${J[@]}" \
    -d '{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":null,"tool_calls":[{"type":"function","function":{"name":"f","arguments":"{bad"}}]}]}' "$U/v1/chat/completions"
expect_err "logprobs" 400 invalid_request_error null logprobs "${J[@]}" -d "{$MSG,\"logprobs\":true}" "$U/v1/chat/completions"
expect_err "completions without prompt" 400 invalid_request_error null prompt "${J[@]}" -d '{"max_tokens":3}' "$U/v1/completions"
expect_err "completions bad token id" 400 invalid_request_error null prompt "${J[@]}" -d '{"prompt":[1,2,999999999]}' "$U/v1/completions"
LONG=$(printf 'hello %.0s' $(seq 1 700))
expect_err "chat prompt over the context" 400 invalid_request_error context_length_exceeded messages "${J[@]}" \
    -d "{\"messages\":[{\"role\":\"user\",\"content\":\"$LONG\"}]}" "$U/v1/chat/completions"
expect_err "completion prompt over the context" 400 invalid_request_error context_length_exceeded prompt "${J[@]}" \
    -d "{\"prompt\":\"$LONG\"}" "$U/v1/completions"
head -c 9000000 /dev/zero | tr '\0' 'a' > "$TMP/big"
expect_err "body over 8 MiB (Expect: 100-continue)" 413 invalid_request_error request_too_large null "${J[@]}" --data-binary @"$TMP/big" "$U/v1/chat/completions"
expect_err "body over 8 MiB (sent whole)" 413 invalid_request_error request_too_large null "${J[@]}" -H "Expect:" --data-binary @"$TMP/big" "$U/v1/chat/completions"
expect_err "header over 16 KiB" 413 invalid_request_error request_too_large null "${J[@]}" -H "X-Big: $(head -c 20000 /dev/zero | tr '\0' 'b')" -d '{}' "$U/v1/chat/completions"
expect_err "chunked body" 411 invalid_request_error length_required null "${J[@]}" -H "Transfer-Encoding: chunked" -d "{$MSG}" "$U/v1/chat/completions"
expect_err "wrong API key" 401 authentication_error invalid_api_key null -H "Authorization: Bearer nope" -d "{$MSG}" "$U/v1/chat/completions"
expect_err "missing API key" 401 authentication_error invalid_api_key null -d "{$MSG}" "$U/v1/chat/completions"
expect_err "missing API key (models)" 401 authentication_error invalid_api_key null "$U/v1/models"
expect_err "unknown path" 404 invalid_request_error not_found null -H "$AUTH" "$U/v1/nothing"
expect_err "wrong method (GET)" 405 invalid_request_error method_not_allowed null -H "$AUTH" "$U/v1/chat/completions"
expect_err "wrong method (DELETE)" 405 invalid_request_error method_not_allowed null -H "$AUTH" -X DELETE "$U/v1/models"
st=$(curl -s -o /dev/null -w '%{http_code}' "$U/health")
[ "$st" = 200 ] && ok || bad "/health without a key: $st"
# still serving after all of that
st=$(curl -s -o "$TMP/body" -w '%{http_code}' "${J[@]}" -d "{$MSG,\"max_tokens\":3,\"temperature\":0}" "$U/v1/chat/completions")
[ "$st" = 200 ] && grep -q '"completion_tokens":3' "$TMP/body" && ok || bad "request after the bad ones: $st $(head -c 200 "$TMP/body")"
# keep-alive: two requests on one connection
n=$(curl -s -v "${J[@]}" "$U/v1/models" "$U/v1/models" 2>&1 | grep -c "Re-using existing connection")
[ "$n" -ge 1 ] && ok || bad "keep-alive: the second request did not reuse the connection"
stop_server main "$MAIN_PID"
printf '%s\n' "$(grep -E '" ?(POST|GET)' "$TMP/main.log" | head -n 0)" >/dev/null
echo "  log lines: $(grep -cE ' (GET|POST|DELETE) ' "$TMP/main.log"), e.g.: $(grep -m1 ' POST /v1/chat/completions 200' "$TMP/main.log")"

# 4. queueing, 503, a queued request served when the running one's client leaves, SIGTERM
if start_server queue --parallel 1 --queue 1 --debug; then
    Q="http://127.0.0.1:$PORT"
    WORDS=$(printf 'word %.0s' $(seq 1 1000))
    # A: 1000 tokens at 10 ms each; its client leaves after 1.5 s
    curl -s -m 1.5 -o /dev/null -d "{$MSG,\"debug_output\":\"$WORDS\",\"debug_delay_ms\":10}" "$Q/v1/chat/completions" &
    A=$!
    sleep 0.4
    # B: waits in the queue, then runs when A's slot is freed
    curl -s -o "$TMP/b.json" -w '%{http_code} %{time_total}' -d "{$MSG,\"max_tokens\":3}" "$Q/v1/chat/completions" > "$TMP/b.st" &
    Bp=$!
    sleep 0.4
    h=$(curl -s "$Q/health")
    echo "$h" | grep -q '"slots_busy":1,"queued":1' && ok || bad "health while busy: $h"
    expect_err "past the queue" 503 server_error server_busy null -d "{$MSG,\"max_tokens\":3}" "$Q/v1/chat/completions"
    wait $A
    wait $Bp
    read -r bst btime < "$TMP/b.st"
    [ "$bst" = 200 ] && grep -q '"completion_tokens":3' "$TMP/b.json" && ok || bad "queued request: $bst $(head -c 200 "$TMP/b.json")"
    echo "  queued request served after $btime s (its predecessor's client left at 1.5 s)"
    grep -q "client disconnected" "$TMP/queue.log" && ok || bad "queue log: no disconnected client"
    # SIGTERM during a stream: the stream ends with an error event, the server exits 0
    curl -sN -o "$TMP/stream.txt" -d "{$MSG,\"stream\":true,\"debug_output\":\"$WORDS\",\"debug_delay_ms\":10}" "$Q/v1/chat/completions" &
    S=$!
    sleep 0.5
    t0=$(date +%s.%N)
    stop_server queue "$PID"
    t1=$(date +%s.%N)
    wait $S
    grep -q '"code":"shutting_down"' "$TMP/stream.txt" && ok || bad "stream cut by SIGTERM: $(tail -c 300 "$TMP/stream.txt")"
    echo "  SIGTERM mid-stream: exited in $(awk "BEGIN { printf \"%.2f\", $t1 - $t0 }") s (a 10 s stream was in flight)"
else
    bad "queue server did not start"
fi

echo "# server: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
