#!/usr/bin/env node
// llama_check.mjs - load GGUF files with llama.cpp (node-llama-cpp 3.22.1, CPU only), evaluate a
// short prompt, and check that every logit at every prompt position is finite and that the
// next-token distributions are peaked. Used on the synthetic models written by
// build/qwenmoe-mkmodel to show that llama.cpp accepts them (metadata, tensor names, shapes,
// types, tokenizer) and that their weights are scaled sensibly.
//
// Run from the repository root (node_modules/ must hold node-llama-cpp: npm ci):
//   node tools/llama_check.mjs build/models/*.gguf
// One line per file, then "# llama-check: N passed, N failed"; exit status 1 if any failed.

import fs from "node:fs";

const HELP = `usage: node tools/llama_check.mjs [options] FILE...

Loads each GGUF with llama.cpp (node-llama-cpp, CPU only), evaluates a short prompt and checks
that every logit is finite and that the next-token distribution is peaked.

  --prompt TEXT      prompt (default: "${"The quick brown fox jumps over the lazy dog. Once upon a time"}")
  --min-top1 P       fail when the mean top-1 probability over the prompt positions is below P
                     (default 0.3; 0 disables the check)
  --ctx N            context size (default 128)
  --threads N        llama.cpp threads (default: all cores)
  --no-check-tensors do not ask llama.cpp to validate the tensor data while loading
                     (validation reads the whole file: about a minute for 17 GiB)
  -v, --verbose      print llama.cpp's warnings
  -h, --help         this text

Output, one line per file:
  ok   FILE  tensors=N vocab=N prompt=N top1=ID ("text") p=P mean_p=P
  FAIL FILE  reason
then "# llama-check: N passed, N failed". Exit status 1 when a file failed, 2 on a usage error.
`;

function usage(msg) {
    process.stderr.write(`llama_check: error: ${msg}\n`);
    process.exit(2);
}

let prompt = "The quick brown fox jumps over the lazy dog. Once upon a time";
let minTop1 = 0.3;
let ctxSize = 128;
let threads = 0;
let checkTensors = true;
let verbose = false;
const files = [];
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
        if (i + 1 >= argv.length) usage(`${a} needs a value (see --help)`);
        return argv[++i];
    };
    const num = (s, lo, hi) => {
        const v = Number(s);
        if (!Number.isFinite(v) || v < lo || v > hi) usage(`${a}: '${s}' is not a number in ${lo}..${hi}`);
        return v;
    };
    if (a === "-h" || a === "--help") { process.stdout.write(HELP); process.exit(0); }
    else if (a === "--prompt") prompt = val();
    else if (a === "--min-top1") minTop1 = num(val(), 0, 1);
    else if (a === "--ctx") ctxSize = Math.floor(num(val(), 8, 1 << 20));
    else if (a === "--threads") threads = Math.floor(num(val(), 0, 1024));
    else if (a === "--no-check-tensors") checkTensors = false;
    else if (a === "-v" || a === "--verbose") verbose = true;
    else if (a.startsWith("-") && a !== "-") usage(`unknown option '${a}' (see --help)`);
    else files.push(a);
}
if (files.length === 0) usage("no GGUF file given (see --help)");

let getLlama, LlamaLogLevel;
try {
    ({ getLlama, LlamaLogLevel } = await import("node-llama-cpp"));
} catch (e) {
    usage(`cannot load node-llama-cpp (run 'npm ci' in the repository root): ${e.message}`);
}

// Collect llama.cpp's messages, so that a failure can show the last few.
let logTail = [];
const llama = await getLlama({
    gpu: false,
    build: "never",
    progressLogs: false,
    logLevel: verbose ? LlamaLogLevel.warn : LlamaLogLevel.error,
    logger: (level, message) => {
        logTail.push(message.trim());
        if (logTail.length > 8) logTail.shift();
        if (verbose) process.stderr.write(`[llama.cpp ${level}] ${message.trimEnd()}\n`);
    },
});

function show(s) {
    return JSON.stringify(s.length > 24 ? s.slice(0, 24) + "..." : s);
}

let passed = 0, failed = 0;
for (const file of files) {
    let model = null, context = null;
    logTail = [];
    const fail = (why) => {
        failed++;
        const tail = logTail.filter((s) => s).slice(-3).join(" | ");
        process.stdout.write(`FAIL ${file}  ${why}${tail ? `  [llama.cpp: ${tail}]` : ""}\n`);
    };
    try {
        if (!fs.existsSync(file)) { fail("no such file"); continue; }
        model = await llama.loadModel({ modelPath: file, gpuLayers: 0, checkTensors });
        const info = model.fileInfo;
        const nTensors = info.tensorInfo ? info.tensorInfo.length : -1;
        const tokens = model.tokenize(prompt, false);
        if (tokens.length < 2) { fail(`the prompt tokenized to ${tokens.length} token(s)`); continue; }
        context = await model.createContext({
            contextSize: Math.max(ctxSize, tokens.length + 8),
            batchSize: Math.max(tokens.length, 8),
            ...(threads > 0 ? { threads } : {}),
        });
        const seq = context.getSequence();
        const input = tokens.map((t) => [t, { generateNext: { logits: true } }]);
        const out = await seq.controlledEvaluate(input);
        let nVocab = -1, sumTop1 = 0, bad = null, lastTop = -1, lastP = 0;
        for (let i = 0; i < tokens.length && !bad; i++) {
            const logits = out[i] && out[i].next && out[i].next.logits;
            if (!logits) { bad = `no logits for prompt position ${i}`; break; }
            if (nVocab < 0) nVocab = logits.size;
            else if (logits.size !== nVocab) { bad = `position ${i} has ${logits.size} logits, position 0 had ${nVocab}`; break; }
            let max = -Infinity, arg = -1;
            for (const [tok, v] of logits) {
                if (!Number.isFinite(v)) { bad = `logit of token ${tok} at position ${i} is ${v}`; break; }
                if (v > max) { max = v; arg = tok; }
            }
            if (bad) break;
            let sum = 0;
            for (const v of logits.values()) sum += Math.exp(v - max);
            const p = 1 / sum;
            sumTop1 += p;
            lastTop = arg; lastP = p;
        }
        if (bad) { fail(bad); continue; }
        const meanP = sumTop1 / tokens.length;
        const desc = `tensors=${nTensors} vocab=${nVocab} prompt=${tokens.length} top1=${lastTop} (${show(model.detokenize([lastTop], true))}) p=${lastP.toFixed(3)} mean_p=${meanP.toFixed(3)}`;
        if (meanP < minTop1) { fail(`${desc}: mean top-1 probability ${meanP.toFixed(3)} < ${minTop1}`); continue; }
        passed++;
        process.stdout.write(`ok   ${file}  ${desc}\n`);
    } catch (e) {
        fail(`${e && e.message ? e.message.split("\n")[0] : e}`);
    } finally {
        try { if (context) await context.dispose(); } catch (e) { /* ignore */ }
        try { if (model) await model.dispose(); } catch (e) { /* ignore */ }
    }
}
process.stdout.write(`# llama-check: ${passed} passed, ${failed} failed\n`);
await llama.dispose();
process.exit(failed ? 1 : 0);
