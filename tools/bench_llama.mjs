// bench_llama.mjs - llama.cpp's speed on a GGUF through node-llama-cpp (CPU only), measured the
// same way as qwenmoe-generate: prefill of a prompt, then greedy decode of N tokens.
// usage: node tools/bench_llama.mjs -m FILE [-t THREADS] [-p TEXT | --pp N] [-n N] [--reps R]
//   --pp N: a synthetic prompt of N tokens (ids 1000..), instead of -p TEXT
// Prints one JSON line per rep: {"load_s","pp_tokens","pp_tps","tg_tokens","tg_tps"}.
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

const args = process.argv.slice(2);
const opt = { m: null, t: 2, p: "The quick brown fox jumps over the lazy dog.", pp: 0, n: 32, reps: 1 };
for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "-h" || a === "--help") {
        console.log("usage: node tools/bench_llama.mjs -m FILE [-t THREADS] [-p TEXT | --pp N] [-n N] [--reps R]");
        process.exit(0);
    } else if (a === "-m") opt.m = args[++i];
    else if (a === "-t") opt.t = +args[++i];
    else if (a === "-p") opt.p = args[++i];
    else if (a === "--pp") opt.pp = +args[++i];
    else if (a === "-n") opt.n = +args[++i];
    else if (a === "--reps") opt.reps = +args[++i];
    else { console.error(`error: unknown argument ${a} (see --help)`); process.exit(1); }
}
if (!opt.m) { console.error("error: -m FILE is required"); process.exit(1); }

const llama = await getLlama({ gpu: false, build: "never", progressLogs: false, logLevel: LlamaLogLevel.error });
const t0 = performance.now();
const model = await llama.loadModel({ modelPath: opt.m, gpuLayers: 0 });
const loadS = (performance.now() - t0) / 1000;
const prompt = opt.pp > 0 ? Array.from({ length: opt.pp }, (_, i) => 1000 + ((i * 7919) % 50000))
                          : Array.from(model.tokenize(opt.p, false));
for (let r = 0; r < opt.reps; r++) {
    const ctx = await model.createContext({ contextSize: 4096, batchSize: 512, sequences: 1, threads: opt.t, flashAttention: false });
    const seq = ctx.getSequence();
    const a = performance.now();
    // the last prompt token is evaluated by the generator, as the first decode step
    await seq.evaluateWithoutGeneratingNewTokens(prompt.slice(0, -1));
    const b = performance.now();
    let n = 0;
    const c = performance.now();
    for await (const tok of seq.evaluate(prompt.slice(-1), { temperature: 0 })) {
        void tok;
        if (++n >= opt.n) break;
    }
    const d = performance.now();
    console.log(JSON.stringify({ load_s: +loadS.toFixed(3), pp_tokens: prompt.length - 1, pp_tps: +((prompt.length - 1) / ((b - a) / 1000)).toFixed(2),
                                 tg_tokens: n, tg_tps: +(n / ((d - c) / 1000)).toFixed(2) }));
    await ctx.dispose();
}
await model.dispose();
