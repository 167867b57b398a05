// bench_llama.mjs - llama.cpp's prefill and decode speed on a GGUF through node-llama-cpp (CPU only),
// measured as llama-bench (and build/qwenmoe-bench) measure them:
//   load  getLlama() is done first; then loadModel + createContext, wall clock (mmap, lazily paged)
//   warm-up: a prefill of min(8, PP) tokens and a decode of 2, not counted
//   pp    PP random token ids (seeded) from an empty sequence, in batches of --batch tokens, only
//         the last token's logits requested: tokens/s = PP / time
//   tg    TG decodes of one random token each from an empty sequence (no sampling): TG / time
// Each repetition runs pp then tg; every test clears the sequence first.
//
// --api addon (default) drives the native context the way llama-bench drives llama_decode:
//   context._ctx.initBatch / addToBatch / decodeBatch (node-llama-cpp's internal AddonContext, the
//   layer under LlamaContextSequence; one llama_decode per call, run on a libuv worker thread).
// --api sequence uses the public LlamaContextSequence.controlledEvaluate instead, with
//   generateNext.token on the last token of each call (so it also samples a token, greedily):
//   compare the two tg figures to see the public API's per-token overhead.
//
// Prints one line per repetition on stderr, then a summary (or, with --json, one line with one
// JSON object) on stdout.
import { getLlama, LlamaLogLevel } from "node-llama-cpp";
import fs from "node:fs";
import path from "node:path";

const USAGE = `usage: node tools/bench_llama.mjs -m FILE [-t N] [-p N] [-n N] [-r REPS] [--ctx N] [--batch N]
                                [--api addon|sequence] [--seed N] [--json]
  llama.cpp (node-llama-cpp, CPU) prefill (pp) and decode (tg) speed, llama-bench style.
  -m FILE         the model (GGUF)
  -t N            threads (default: the number of CPUs node-llama-cpp reports)
  -p N, --pp N    prompt tokens of the pp test (default 512; 0 skips it)
  -n N            tokens of the tg test (default 128; 0 skips it)
  -r N, --reps N  repetitions (default 5)
  --ctx N         context size (default PP + TG, as llama-bench; at least max(PP, TG, 8))
  --batch N       batch size of the context and of the pp chunks (default 512)
  --api A         addon (default: the native decode calls, lowest overhead) or sequence
                  (LlamaContextSequence.controlledEvaluate)
  --seed N        seed of the random token ids (default 1)
  --json          one line with one JSON object instead of the summary
  -h, --help      this text`;

function die(msg) {
    console.error(`bench_llama: ${msg}`);
    process.exit(1);
}

const args = process.argv.slice(2);
const opt = { m: null, t: 0, pp: 512, n: 128, reps: 5, ctx: 0, batch: 512, api: "addon", seed: 1, json: false };
function intArg(name, v, lo) {
    if (v === undefined || !/^[0-9]+$/.test(v) || +v < lo) die(`${name}: expected an integer >= ${lo}, found '${v ?? ""}'`);
    return +v;
}
for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "-h" || a === "--help") { console.log(USAGE); process.exit(0); }
    else if (a === "-m") { opt.m = args[++i]; if (!opt.m) die("-m needs a file"); }
    else if (a === "-t") opt.t = intArg(a, args[++i], 1);
    else if (a === "-p" || a === "--pp") opt.pp = intArg(a, args[++i], 0);
    else if (a === "-n") opt.n = intArg(a, args[++i], 0);
    else if (a === "-r" || a === "--reps") opt.reps = intArg(a, args[++i], 1);
    else if (a === "--ctx") opt.ctx = intArg(a, args[++i], 1);
    else if (a === "--batch") opt.batch = intArg(a, args[++i], 1);
    else if (a === "--seed") opt.seed = intArg(a, args[++i], 0);
    else if (a === "--api") { opt.api = args[++i]; if (opt.api !== "addon" && opt.api !== "sequence") die(`--api: expected addon or sequence, found '${opt.api ?? ""}'`); }
    else if (a === "--json") opt.json = true;
    else die(`unknown argument '${a}' (see --help)`);
}
if (!opt.m) die("-m FILE is required (see --help)");
if (opt.pp === 0 && opt.n === 0) die("-p and -n are both 0: nothing to measure");
let fileStat;
try { fileStat = fs.statSync(opt.m); } catch (e) { die(`${opt.m}: ${e.message}`); }
if (!opt.ctx) opt.ctx = Math.max(8, opt.pp + opt.n);
if (opt.ctx < opt.pp || opt.ctx < opt.n || opt.ctx < 8) die(`--ctx ${opt.ctx} is smaller than a test (pp ${opt.pp}, tg ${opt.n}, warm-up 8)`);

// memory, KiB (-1 when the kernel does not say)
function statusKiB(text, key) {
    const m = text.match(new RegExp(`^${key}:\\s*(\\d+)`, "m"));
    return m ? +m[1] : -1;
}
// Rss of the mappings of the model file (same inode and name) in /proc/self/smaps, and the
// part of it mapped in 2 MiB pages (FilePmdMapped)
function modelFileRssKiB() {
    let text;
    try { text = fs.readFileSync("/proc/self/smaps", "utf8"); } catch { return { rss: -1, pmd: -1 }; }
    const base = path.basename(opt.m);
    let inModel = false, rss = 0, pmd = 0;
    for (const line of text.split("\n")) {
        const h = line.match(/^[0-9a-f]+-[0-9a-f]+ \S+ [0-9a-f]+ \S+ (\d+)\s*(.*)$/);
        if (h) { inModel = +h[1] !== 0 && +h[1] === fileStat.ino && h[2].endsWith(base); continue; }
        const r = inModel && line.match(/^Rss:\s*(\d+)/);
        if (r) rss += +r[1];
        const p = inModel && line.match(/^FilePmdMapped:\s*(\d+)/);
        if (p) pmd += +p[1];
    }
    return { rss, pmd };
}
function readMem() {
    let text = "";
    try { text = fs.readFileSync("/proc/self/status", "utf8"); } catch { /* not Linux */ }
    const mf = modelFileRssKiB();
    return {
        maxrss: process.resourceUsage().maxRSS, // KiB
        hwm: statusKiB(text, "VmHWM"), rss: statusKiB(text, "VmRSS"),
        anon: statusKiB(text, "RssAnon"), file: statusKiB(text, "RssFile"), model: mf.rss, model_pmd: mf.pmd,
    };
}
const mb = (k) => (k < 0 ? -1 : +(k / 1024).toFixed(1));

// xorshift64* as in tools/bench.c (the sequence differs in detail; only the distribution matters)
let rng = (0x9E3779B97F4A7C15n ^ BigInt(opt.seed)) & 0xFFFFFFFFFFFFFFFFn;
function randToken(nVocab) {
    rng ^= rng >> 12n; rng ^= (rng << 25n) & 0xFFFFFFFFFFFFFFFFn; rng ^= rng >> 27n;
    return Number(((rng * 2685821657736338717n) & 0xFFFFFFFFFFFFFFFFn) >> 33n) % nVocab;
}

const memStart = readMem();
// llama.cpp's own timing of the decode calls (llama_perf_context_print, printed at INFO level and
// delivered to the logger through the event loop): the wall time per tg token minus it is what the JS side and the
// libuv hop add per token.
let perfCapture = null;
const llama = await getLlama({
    gpu: false, build: "never", progressLogs: false, logLevel: LlamaLogLevel.info,
    logger: (level, msg) => {
        if (perfCapture) perfCapture.push(msg);
        else if (level === "error" || level === "fatal" || level === "warn") console.error(`llama.cpp: ${msg}`);
    },
});
const threads = opt.t || llama.cpuMathCores;
const t0 = performance.now();
const model = await llama.loadModel({ modelPath: opt.m, gpuLayers: 0, useMmap: true });
const loadModelS = (performance.now() - t0) / 1000;
const ctx = await model.createContext({ contextSize: opt.ctx, batchSize: opt.batch, sequences: 1,
                                         threads: { ideal: threads, min: threads }, flashAttention: false,
                                         performanceTracking: true });
const loadS = (performance.now() - t0) / 1000;
const seq = ctx.getSequence();
const embd = model.fileInfo.fullTensorInfo?.find((t) => t.name === "token_embd.weight")
             ?? model.fileInfo.tensorInfo?.find((t) => t.name === "token_embd.weight");
const nVocab = embd ? Number(embd.dimensions[1]) : 0; // the rows of token_embd
if (!(nVocab > 0)) die(`${opt.m}: could not read the vocabulary size`);
if (ctx.currentThreads !== threads) console.error(`bench_llama: warning: the context runs ${ctx.currentThreads} threads, not ${threads}`);

// which native libraries this process loaded (the CPU variant of ggml among them)
function loadedLibs() {
    let text = "";
    try { text = fs.readFileSync("/proc/self/maps", "utf8"); } catch { return []; }
    const s = new Set();
    for (const line of text.split("\n")) {
        const m = line.match(/(\/\S*(?:libggml[^/\s]*\.so|libllama[^/\s]*\.so|llama-addon\.node))$/);
        if (m) s.add(m[1]);
    }
    return [...s].sort();
}
const libs = loadedLibs();
const cpuVariant = libs.filter((l) => /libggml-cpu/.test(path.basename(l))).map((l) => path.basename(l)).join(",") || "unknown";
const addonPath = libs.find((l) => l.endsWith("llama-addon.node")) ?? "unknown";

const actx = ctx._ctx; // AddonContext (internal): initBatch / addToBatch / decodeBatch / removeTokenCellsFromSequence
if (opt.api === "addon" && (!actx || typeof actx.decodeBatch !== "function" || typeof actx.addToBatch !== "function"))
    die("this node-llama-cpp has no context._ctx.decodeBatch; use --api sequence");
const SEQ_ID = 0; // the only sequence of the context (getSequence() above took id 0)

async function clearSeq() {
    if (opt.api === "addon") actx.removeTokenCellsFromSequence(SEQ_ID, 0, -1);
    else await seq.clearHistory();
}
async function prefill(tokens) { // from an empty sequence
    if (opt.api === "addon") {
        for (let s = 0; s < tokens.length; s += opt.batch) {
            const chunk = tokens.slice(s, s + opt.batch);
            const last = s + chunk.length === tokens.length;
            actx.initBatch(chunk.length);
            actx.addToBatch(SEQ_ID, s, Uint32Array.from(chunk), last ? Uint32Array.of(chunk.length - 1) : new Uint32Array(0));
            await actx.decodeBatch();
        }
    } else {
        const input = tokens.map((t, i) => (i === tokens.length - 1 ? [t, { generateNext: { token: true, options: { temperature: 0 } } }] : t));
        await seq.controlledEvaluate(input);
    }
}
const one = new Uint32Array(1), zero = Uint32Array.of(0);
async function decodeOne(tok, pos) {
    if (opt.api === "addon") {
        one[0] = tok;
        actx.initBatch(1);
        actx.addToBatch(SEQ_ID, pos, one, zero);
        await actx.decodeBatch();
    } else {
        await seq.controlledEvaluate([[tok, { generateNext: { token: true, options: { temperature: 0 } } }]]);
    }
}
async function runPP(n) {
    const toks = Array.from({ length: n }, () => randToken(nVocab));
    await clearSeq();
    const a = performance.now();
    await prefill(toks);
    return n / ((performance.now() - a) / 1000);
}
async function llamaEvalMs() { // llama.cpp's "eval time" (one-token decodes) since the last call; resets it
    perfCapture = [];
    actx.printTimings();
    // the log lines come back through the event loop: wait for the last one ("total time"), 2 s at most
    for (let w = 0; w < 2000 && !perfCapture.some((l) => /total time/.test(l)); w++)
        await new Promise((r) => setTimeout(r, 1));
    const lines = perfCapture;
    perfCapture = null;
    for (const l of lines) {
        const m = l.match(/^\S*\s*eval time =\s*([0-9.]+) ms \/\s*(\d+) runs/);
        if (m && !/prompt eval/.test(l)) return { ms: +m[1], runs: +m[2] };
    }
    return null;
}
const tgEvalMs = []; // llama.cpp's own ms per tg token, per repetition
async function runTG(n, record) {
    await clearSeq();
    let tok = randToken(nVocab);
    await llamaEvalMs();
    const a = performance.now();
    for (let i = 0; i < n; i++) {
        await decodeOne(tok, i);
        tok = randToken(nVocab);
    }
    const tps = n / ((performance.now() - a) / 1000);
    const e = await llamaEvalMs();
    if (record && e && e.runs === n) tgEvalMs.push(e.ms / n);
    return tps;
}

// warm-up, not counted
await runPP(opt.pp > 0 && opt.pp < 8 ? opt.pp : 8);
await runTG(2);

const pp = [], tg = [];
for (let r = 0; r < opt.reps; r++) {
    if (opt.pp > 0) pp.push(await runPP(opt.pp));
    if (opt.n > 0) tg.push(await runTG(opt.n, true));
    console.error(`bench_llama: rep ${r + 1}/${opt.reps}:` + (opt.pp > 0 ? ` pp${opt.pp} ${pp[r].toFixed(2)} t/s` : "")
                  + (opt.n > 0 ? ` tg${opt.n} ${tg[r].toFixed(2)} t/s` : ""));
}
const mem = readMem(); // with the context alive: its KV cache and buffers count
await clearSeq();

function stats(v) {
    if (!v.length) return { mean: null, sd: null, median: null };
    const mean = v.reduce((a, b) => a + b, 0) / v.length;
    const sd = v.length > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1)) : 0;
    const s = [...v].sort((a, b) => a - b), h = s.length >> 1;
    return { mean, sd, median: s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2 };
}
const sp = stats(pp), sg = stats(tg), se = stats(tgEvalMs);
const wallMs = sg.median ? 1000 / sg.median : null;
const r3 = (x) => (x == null ? null : +x.toFixed(3));
const out = {
    engine: "llama.cpp", model: opt.m, api: opt.api, threads, n_prompt: opt.pp, n_gen: opt.n, reps: opt.reps, n_ctx: opt.ctx,
    n_batch: opt.batch, file_bytes: fileStat.size, load_s: +loadS.toFixed(4), load_model_s: +loadModelS.toFixed(4),
    create_context_s: +(loadS - loadModelS).toFixed(4),
    pp_tps: r3(sp.median), pp_tps_mean: r3(sp.mean), pp_tps_sd: r3(sp.sd), pp_tps_all: pp.map(r3),
    tg_tps: r3(sg.median), tg_tps_mean: r3(sg.mean), tg_tps_sd: r3(sg.sd), tg_tps_all: tg.map(r3),
    tg_llama_eval_ms: se.median == null ? null : +se.median.toFixed(4), tg_wall_ms: wallMs == null ? null : +wallMs.toFixed(4),
    tg_overhead_us: se.median == null || wallMs == null ? null : +((wallMs - se.median) * 1000).toFixed(1),
    peak_rss_mb: mb(mem.hwm >= 0 ? mem.hwm : mem.maxrss), ru_maxrss_mb: mb(mem.maxrss), rss_mb: mb(mem.rss),
    rss_anon_mb: mb(mem.anon), rss_file_mb: mb(mem.file), rss_model_mb: mb(mem.model), rss_model_2m_mb: mb(mem.model_pmd),
    rss_before_load_mb: mb(memStart.rss), // node itself, before node-llama-cpp was loaded
    cpu_variant: cpuVariant, addon: addonPath, llama_cpp_release: llama.llamaCppRelease?.release ?? null,
    node_llama_cpp: "3.22.1",
};
if (opt.json) {
    console.log(JSON.stringify(out));
} else {
    const row = (name, s) => `| ${path.basename(opt.m)} | llama.cpp (${opt.api}) | ${threads} | ${name} | ${s.mean.toFixed(2)} ± ${s.sd.toFixed(2)} | ${s.median.toFixed(2)} |`;
    console.log("| model | backend | threads | test | t/s | median t/s |");
    console.log("| ----- | ------- | ------: | ---: | --: | ---------: |");
    if (opt.pp > 0) console.log(row(`pp${opt.pp}`, sp));
    if (opt.n > 0) console.log(row(`tg${opt.n}`, sg));
    console.log(`\n${opt.reps} repetitions; t/s is mean ± sample standard deviation; KV cache f16, n_ctx ${opt.ctx}`);
    console.log(`load: ${loadS.toFixed(3)} s (loadModel ${loadModelS.toFixed(3)} s + createContext ${(loadS - loadModelS).toFixed(3)} s, wall clock; mmap)`);
    console.log(`memory: peak RSS ${out.peak_rss_mb} MiB (VmHWM; maxRSS ${out.ru_maxrss_mb} MiB; node alone before loading: ${out.rss_before_load_mb} MiB);`
                + ` at the end RSS ${out.rss_mb} MiB = anonymous ${out.rss_anon_mb} MiB + file-backed ${out.rss_file_mb} MiB, of which the model file's mapping ${out.rss_model_mb} MiB (${out.rss_model_2m_mb} MiB of it in 2 MiB pages)`);
    if (out.tg_overhead_us != null)
        console.log(`tg per token: ${out.tg_wall_ms} ms wall, of which llama.cpp's own eval time ${out.tg_llama_eval_ms} ms`
                    + ` (llama_perf_context); ${opt.api} API overhead ${out.tg_overhead_us} us per token (medians)`);
    console.log(`ggml CPU library loaded: ${cpuVariant}; addon: ${addonPath}`);
}
await ctx.dispose();
await model.dispose();
await llama.dispose();
