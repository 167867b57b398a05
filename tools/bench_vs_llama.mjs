// bench_vs_llama.mjs - qwenmoe (build/qwenmoe-bench) against llama.cpp (tools/bench_llama.mjs,
// node-llama-cpp) on the same GGUF, the same threads and the same pp/tg tests.
// The two run one after the other, never at once, alternating for R rounds:
//   qwenmoe, llama.cpp, qwenmoe, llama.cpp, ...
// each run a fresh process (load + warm-up + --inner repetitions). The per-repetition figures of
// all rounds are pooled: the table gives mean ± sd and the median, and the ratios of the medians.
// usage: node tools/bench_vs_llama.mjs -m FILE [-t N] [-p N] [-n N] [-r ROUNDS] [--inner K] [--warm]
//                                      [--bench PATH] [--api addon|sequence] [--json-out FILE]
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import url from "node:url";

const here = path.dirname(url.fileURLToPath(import.meta.url));
const USAGE = `usage: node tools/bench_vs_llama.mjs -m FILE [-t N] [-p N] [-n N] [-r ROUNDS] [--inner K] [--bench PATH]
  Runs build/qwenmoe-bench and tools/bench_llama.mjs (llama.cpp through node-llama-cpp) on the
  same model, alternating (qwenmoe, llama.cpp, qwenmoe, ...; never both at once), and prints a
  side-by-side table with the ratios (pp, tg, load, peak RSS).
  -m FILE         the model (GGUF)
  -t N            threads for both (default 2)
  -p N            prompt tokens of the pp test (default 512)
  -n N            tokens of the tg test (default 128)
  -r ROUNDS       rounds; each runs both programs once (default 3)
  --inner K       repetitions inside each run (default 1)
  --bench PATH    the qwenmoe-bench binary (default build/qwenmoe-bench)
  --api A         bench_llama.mjs --api: addon (default) or sequence
  --json-out FILE also write every run's JSON object and the summary to FILE
  --warm          read the whole file before every run, so that each engine starts with the
                  model in the page cache. Without it, a big model (18.5 GB on a 24 GiB machine)
                  is partly evicted by llama.cpp's own copies, and qwenmoe, which maps the file
                  lazily, pays the disk reads inside its timed tests.
  --drop-caches   with --warm: first drop the page cache and compact memory (root only;
                  /proc/sys/vm/drop_caches, compact_memory), so that the file is read back in
                  large folios. After llama.cpp has used 14 GB of anonymous memory the free
                  memory is fragmented, the file comes back in 4 KiB pages, and qwenmoe's decode
                  (which walks 1.9 GB of mapped weights per token) drops from about 14 to 6 t/s,
                  in every repetition, after all pages are mapped (TLB misses, we believe);
                  FileHugePages in /proc/meminfo (printed after each warm) tells the two apart.
  -h, --help      this text`;

function die(msg) {
    console.error(`bench_vs_llama: ${msg}`);
    process.exit(1);
}
const args = process.argv.slice(2);
const opt = { m: null, t: 2, pp: 512, n: 128, rounds: 3, inner: 1, bench: "build/qwenmoe-bench", api: "addon", jsonOut: null, warm: false, drop: false };
function intArg(name, v, lo) {
    if (v === undefined || !/^[0-9]+$/.test(v) || +v < lo) die(`${name}: expected an integer >= ${lo}, found '${v ?? ""}'`);
    return +v;
}
for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "-h" || a === "--help") { console.log(USAGE); process.exit(0); }
    else if (a === "-m") { opt.m = args[++i]; if (!opt.m) die("-m needs a file"); }
    else if (a === "-t") opt.t = intArg(a, args[++i], 1);
    else if (a === "-p") opt.pp = intArg(a, args[++i], 0);
    else if (a === "-n") opt.n = intArg(a, args[++i], 0);
    else if (a === "-r") opt.rounds = intArg(a, args[++i], 1);
    else if (a === "--inner") opt.inner = intArg(a, args[++i], 1);
    else if (a === "--bench") { opt.bench = args[++i]; if (!opt.bench) die("--bench needs a path"); }
    else if (a === "--api") { opt.api = args[++i]; if (opt.api !== "addon" && opt.api !== "sequence") die(`--api: expected addon or sequence, found '${opt.api ?? ""}'`); }
    else if (a === "--json-out") { opt.jsonOut = args[++i]; if (!opt.jsonOut) die("--json-out needs a file"); }
    else if (a === "--warm") opt.warm = true;
    else if (a === "--drop-caches") { opt.warm = true; opt.drop = true; }
    else die(`unknown argument '${a}' (see --help)`);
}
if (!opt.m) die("-m FILE is required (see --help)");
if (!fs.existsSync(opt.m)) die(`${opt.m}: no such file`);
if (!fs.existsSync(opt.bench)) die(`${opt.bench}: not found (run make ${opt.bench})`);
if (opt.pp === 0 && opt.n === 0) die("-p and -n are both 0: nothing to measure");

const common = ["-m", opt.m, "-t", String(opt.t), "-p", String(opt.pp), "-n", String(opt.n), "-r", String(opt.inner)];
const cmds = {
    qwenmoe: [opt.bench, [...common, "--json"]],
    llama: [process.execPath, [path.join(here, "bench_llama.mjs"), ...common, "--api", opt.api, "--json"]],
};
// Read the file through once (1 MiB at a time): its pages end up in the page cache.
const fileHuge = () => { try { return +/FileHugePages:\s+(\d+)/.exec(fs.readFileSync("/proc/meminfo", "utf8"))[1] / 1048576; } catch { return NaN; } };
function warm() {
    if (opt.drop) {
        try {
            spawnSync("sync");
            fs.writeFileSync("/proc/sys/vm/drop_caches", "3");
            fs.writeFileSync("/proc/sys/vm/compact_memory", "1");
        } catch (e) { die(`--drop-caches: ${e.message} (needs root)`); }
    }
    const t0 = process.hrtime.bigint(), buf = Buffer.allocUnsafe(1 << 20), fd = fs.openSync(opt.m, "r");
    let total = 0, n;
    while ((n = fs.readSync(fd, buf, 0, buf.length, null)) > 0) total += n;
    fs.closeSync(fd);
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    console.error(`bench_vs_llama: warm${opt.drop ? " (after dropping the page cache)" : ""}: read ${(total / 1e9).toFixed(2)} GB in ${s.toFixed(1)} s `
                  + `(${(total / 1e9 / s).toFixed(2)} GB/s); FileHugePages ${fileHuge().toFixed(2)} GiB`);
}
function runOne(which, round) {
    const [cmd, argv] = cmds[which];
    if (opt.warm) warm();
    const shown = [cmd, ...argv].join(" ");
    console.error(`bench_vs_llama: round ${round}/${opt.rounds}: ${shown}`);
    const r = spawnSync(cmd, argv, { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 1 << 24 });
    if (r.error) die(`${shown}: ${r.error.message}`);
    if (r.status !== 0) die(`${shown}: exited with status ${r.status}${r.signal ? ` (signal ${r.signal})` : ""}`);
    const lines = r.stdout.split("\n").filter((l) => l.startsWith("{"));
    if (lines.length !== 1) die(`${shown}: expected one JSON line on stdout, found ${lines.length}:\n${r.stdout}`);
    try { return JSON.parse(lines[0]); } catch (e) { die(`${shown}: its JSON line does not parse (${e.message}): ${lines[0]}`); }
}

const loadavg = () => { try { return fs.readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" "); } catch { return "?"; } };
const loadBefore = loadavg();
const runs = { qwenmoe: [], llama: [] };
for (let r = 1; r <= opt.rounds; r++) {
    runs.qwenmoe.push(runOne("qwenmoe", r));
    runs.llama.push(runOne("llama", r));
}
const loadAfter = loadavg();

function stats(v) {
    v = v.filter((x) => typeof x === "number" && Number.isFinite(x));
    if (!v.length) return null;
    const mean = v.reduce((a, b) => a + b, 0) / v.length;
    const sd = v.length > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1)) : 0;
    const s = [...v].sort((a, b) => a - b), h = s.length >> 1;
    return { n: v.length, mean, sd, median: s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2 };
}
const pooled = (e, key) => stats(runs[e].flatMap((j) => j[key]));        // per-repetition arrays
const perRun = (e, key) => stats(runs[e].map((j) => j[key]));              // one value per run
const q = runs.qwenmoe[0], l = runs.llama[0];
const rows = [];
if (opt.pp > 0) rows.push({ name: `pp${opt.pp} t/s`, a: pooled("qwenmoe", "pp_tps_all"), b: pooled("llama", "pp_tps_all"), d: 2, higher: true });
if (opt.n > 0) {
    rows.push({ name: `tg${opt.n} t/s`, a: pooled("qwenmoe", "tg_tps_all"), b: pooled("llama", "tg_tps_all"), d: 2, higher: true });
    const inner = stats(runs.llama.map((j) => (j.tg_llama_eval_ms ? 1000 / j.tg_llama_eval_ms : null)));
    if (inner) rows.push({ name: `tg${opt.n} t/s, llama.cpp's own eval timer`, a: pooled("qwenmoe", "tg_tps_all"), b: inner, d: 2, higher: true });
}
rows.push({ name: "load s", a: perRun("qwenmoe", "load_s"), b: perRun("llama", "load_s"), d: 3, higher: false });
rows.push({ name: "peak RSS MiB (VmHWM)", a: perRun("qwenmoe", "peak_rss_mb"), b: perRun("llama", "peak_rss_mb"), d: 1, higher: false });
rows.push({ name: "RSS anonymous MiB (end)", a: perRun("qwenmoe", "rss_anon_mb"), b: perRun("llama", "rss_anon_mb"), d: 1, higher: false });
rows.push({ name: "RSS of the model file's mapping MiB (end)", a: perRun("qwenmoe", "rss_model_mb"), b: perRun("llama", "rss_model_mb"), d: 1, higher: false });
rows.push({ name: "  of it in 2 MiB pages, MiB (end)", a: perRun("qwenmoe", "rss_model_2m_mb"), b: perRun("llama", "rss_model_2m_mb"), d: 1, higher: true,
            note: "(fewer TLB misses where more of the mapping is in 2 MiB pages)" });
if (opt.n > 0 && q.bytes_per_token > 0) {
    const bpt = q.bytes_per_token;
    const gb = (s) => (s ? { n: s.n, mean: s.mean * bpt / 1e9, sd: s.sd * bpt / 1e9, median: s.median * bpt / 1e9 } : null);
    rows.push({ name: "tg GB/s (qwenmoe's bytes/token x t/s)", a: gb(rows[opt.pp > 0 ? 1 : 0].a), b: gb(rows[opt.pp > 0 ? 1 : 0].b), d: 2, higher: true });
}

const cell = (s, d) => (s ? `${s.median.toFixed(d)} (${s.mean.toFixed(d)} ± ${s.sd.toFixed(d)}, n=${s.n})` : "-");
console.log(`model ${opt.m} (${(fs.statSync(opt.m).size / 1048576).toFixed(1)} MiB), threads ${opt.t}, ${opt.rounds} rounds x ${opt.inner} repetitions, alternating qwenmoe / llama.cpp`);
console.log(`qwenmoe: backend ${q.backend}, KV ${q.kv_type}; llama.cpp: node-llama-cpp ${l.node_llama_cpp} (llama.cpp ${l.llama_cpp_release}), ${l.cpu_variant}, api ${l.api}`);
console.log(`load average before ${loadBefore}, after ${loadAfter} (other work on the machine makes the figures noisy)`);
console.log(opt.drop ? "page cache: dropped, memory compacted and the whole file read before every run (--drop-caches)"
            : opt.warm ? "page cache: the whole file was read before every run (--warm)"
                     : "page cache: as the previous run left it (no --warm): a run after llama.cpp may find part of the model evicted");
console.log("");
console.log("| metric | qwenmoe: median (mean ± sd, n) | llama.cpp: median (mean ± sd, n) | qwenmoe / llama.cpp |");
console.log("| ------ | -----------------------------: | -------------------------------: | ------------------: |");
for (const r of rows) {
    const ratio = r.a && r.b && r.b.median ? (r.a.median / r.b.median).toFixed(3) : "-";
    console.log(`| ${r.name} | ${cell(r.a, r.d)} | ${cell(r.b, r.d)} | ${ratio} ${r.note ?? (r.higher ? "(> 1: qwenmoe faster)" : "(< 1: qwenmoe less)")} |`);
}
if (opt.n > 0) {
    console.log("");
    console.log(`qwenmoe bytes per decoded token: ${q.bytes_per_token} (non-expert ${q.bytes_nonexpert}, experts ${q.bytes_experts}, KV ${q.bytes_kv});`
                + " see build/qwenmoe-bench without --json for the terms");
    const base = stats(runs.llama.map((j) => j.rss_before_load_mb));
    if (base) console.log(`llama.cpp's RSS includes the node runtime: ${base.median.toFixed(1)} MiB before node-llama-cpp and the model were loaded`);
    const oh = stats(runs.llama.map((j) => j.tg_overhead_us));
    if (oh) console.log(`llama.cpp per-token overhead of the node-llama-cpp ${l.api} API: ${oh.median.toFixed(1)} us (median over runs): `
                        + "the wall time per tg token minus llama.cpp's own eval time");
}
if (opt.jsonOut) {
    const summary = Object.fromEntries(rows.map((r) => [r.name, { qwenmoe: r.a, llama: r.b, ratio: r.a && r.b ? r.a.median / r.b.median : null }]));
    fs.writeFileSync(opt.jsonOut, JSON.stringify({ options: opt, load_before: loadBefore, load_after: loadAfter, runs, summary }) + "\n");
}
