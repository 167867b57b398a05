#!/usr/bin/env node
// render_ref.mjs - render the real chat templates with a real jinja implementation
// (@huggingface/jinja, the one transformers.js uses, given Python's str.strip(chars) meaning,
// see pyStrip) for a fixed set of conversations, and write the inputs and the expected outputs
// to tests/data/chat_renders.txt, which tests/test_chat.c reads and compares byte for byte
// with qm_chat_render.
//
// Run from the repository root:  node tools/render_ref.mjs
// The conversations are defined here, once; the data file carries them to the C side.

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HELP = `usage: node tools/render_ref.mjs [-o FILE] [--templates DIR] [--shared FILE] [--check] [--python]

Renders tests/data/templates/{qwen3,qwen3-coder,chatml}.jinja with @huggingface/jinja for
about 40 conversations x (add_generation_prompt on/off, enable_thinking true/false/unset)
and writes the cases to tests/data/chat_renders.txt (the format is described in its header).

  -o FILE          output file (default: tests/data/chat_renders.txt)
  --templates DIR  template folder (default: tests/data/templates)
  --shared FILE    shared tokenizer_vectors.json whose chat_template_renders are checked
                   against the renders and added as cases (default: ../shared/tokenizer_vectors.json
                   if it exists; those five cases are kept from the old output otherwise)
  --check          do not write; exit 1 if FILE differs from what would be written
  --python         also render every case with Python's jinja2 (python3 with the jinja2
                   module, set up as transformers does) and exit 1 on any difference; the
                   empty_messages cases are expected to fail there (messages[0] is undefined)
  -h, --help       this text
`;

function die(msg) {
    process.stderr.write(`render_ref: error: ${msg}\n`);
    process.exit(1);
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
let outFile = path.join(root, "tests/data/chat_renders.txt");
let tmplDir = path.join(root, "tests/data/templates");
let sharedFile = path.join(root, "../shared/tokenizer_vectors.json");
let sharedGiven = false;
let check = false;
let python = false;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
        if (i + 1 >= argv.length) die(`${a} needs a value (see --help)`);
        return argv[++i];
    };
    if (a === "-h" || a === "--help") { process.stdout.write(HELP); process.exit(0); }
    else if (a === "-o") outFile = path.resolve(val());
    else if (a === "--templates") tmplDir = path.resolve(val());
    else if (a === "--shared") { sharedFile = path.resolve(val()); sharedGiven = true; }
    else if (a === "--check") check = true;
    else if (a === "--python") python = true;
    else die(`unknown argument '${a}' (see --help)`);
}

let Template, Environment;
try {
    ({ Template, Environment } = await import("@huggingface/jinja"));
} catch (e) {
    die(`cannot load @huggingface/jinja (run 'npm ci' in the repository root): ${e.message}`);
}

// @huggingface/jinja (0.5.11) ignores the argument of str.strip/lstrip/rstrip and always strips
// all whitespace, while the templates are written for Python (jinja2, as transformers and
// llama.cpp run them), where s.strip('\n') strips newlines only: "r \n".strip('\n') is "r ".
// The Qwen3 template uses strip('\n') on the reasoning and the answer, so give the string
// methods Python's meaning when a chars argument is passed. The patch is checked below.
function pyStrip(s, chars, left, right) {
    let a = 0, b = s.length;
    if (left) while (a < b && chars.includes(s[a])) a++;
    if (right) while (b > a && chars.includes(s[b - 1])) b--;
    return s.slice(a, b);
}
{
    const env = new Environment();
    env.set("s", "x");
    const sv = env.lookupVariable("s");
    const SV = sv.constructor;
    const desc = Object.getOwnPropertyDescriptor(SV.prototype, "builtins");
    if (!desc || !desc.get || !sv.builtins.get("upper")) die("unexpected @huggingface/jinja internals: cannot patch str.strip");
    const FV = sv.builtins.get("upper").constructor;
    Object.defineProperty(SV.prototype, "builtins", {
        configurable: true,
        get() {
            const m = desc.get.call(this);
            if (!m.has("__py_strip")) {
                for (const [name, l, r] of [["strip", true, true], ["lstrip", true, false], ["rstrip", false, true]]) {
                    const orig = m.get(name);
                    m.set(name, new FV((args, scope) => {
                        if (args.length > 0 && typeof args[0].value === "string")
                            return new SV(pyStrip(this.value, args[0].value, l, r));
                        return orig.value(args, scope);
                    }));
                }
                m.set("__py_strip", new SV(""));
            }
            return m;
        },
    });
    const probe = new Template("{{ '\\n r \\n'.strip('\\n') + '|' + ' \\nr\\n '.lstrip('\\n') + '|' + ' r\\n'.rstrip('\\n') + '|' + '  r '.strip() }}").render({});
    if (probe !== " r | \nr\n | r|r") die(`str.strip patch did not take: ${JSON.stringify(probe)}`);
}

function readTemplate(name) {
    const p = path.join(tmplDir, name);
    try {
        return fs.readFileSync(p, "utf8");
    } catch (e) {
        die(`cannot read template ${p}: ${e.message}`);
    }
}
const templates = {
    "qwen3": new Template(readTemplate("qwen3.jinja")),
    "qwen3-coder": new Template(readTemplate("qwen3-coder.jinja")),
    "chatml": new Template(readTemplate("chatml.jinja")),
};

// ---------------------------------------------------------------------------------------
// The conversations. S/U/A/T: system, user, assistant, tool.
const S = (c) => ({ role: "system", content: c });
const U = (c) => ({ role: "user", content: c });
const A = (c) => ({ role: "assistant", content: c });
const T = (c) => ({ role: "tool", content: c });
const SYS = "You are a helpful assistant.";

const conversations = [
    ["user_only", [U("Hi")]],
    ["system_user", [S(SYS), U("Hi")]],
    ["multi_turn", [S(SYS), U("What is 2+2?"), A("4"), U("And 3+3?")]],
    ["multi_turn_ends_assistant", [U("What is 2+2?"), A("4"), U("And 3+3?"), A("6")]],
    ["no_system_multi", [U("a"), A("b"), U("c"), A("d"), U("e")]],
    ["think_in_history",
        [U("Q1"), A("<think>\nreasoning one\n</think>\n\nAnswer one"), U("Q2")]],
    ["think_last_assistant",
        [U("Q1"), A("<think>\nreasoning\n</think>\n\nThe answer")]],
    ["plain_last_assistant", [U("Q1"), A("The answer")]],
    ["think_both_turns",
        [S(SYS), U("Q1"), A("<think>r1</think>A1"), U("Q2"), A("<think>\n\nr2\n\n</think>\n\n\nA2\n")]],
    ["think_no_open_tag", [U("Q"), A("only closing</think>\nrest")]],
    ["think_many_tags",
        [U("Q"), A("<think>a</think>b<think>c</think>d"), U("Q2"), A("x<think>\ny\n</think>z</think>\n\nw")]],
    ["think_empty", [U("Q"), A("<think></think>"), U("Q2"), A("<think>\n</think>")]],
    ["think_unclosed", [U("Q"), A("<think>never closed"), U("Q2")]],
    ["tool_round",
        [S(SYS), U("Weather in Paris?"), A("<think>\nI should call the tool.\n</think>\n\nCalling."),
         T("{\"temp\": 21}"), A("It is 21 degrees.")]],
    ["tool_multi_step",
        [U("Do two things"), A("<think>step 1</think>call one"), T("result one"), T("result two"),
         A("<think>step 2</think>call two"), T("result three")]],
    ["tool_first", [T("orphan result"), U("Hi")]],
    ["system_then_tool", [S(SYS), T("r1"), T("r2"), U("next")]],
    ["tool_last_only", [U("u"), A("a"), T("t")]],
    ["tool_between_users", [U("u1"), T("t1"), U("u2"), T("t2"), T("t3"), A("done")]],
    ["user_tool_response_content",
        [U("real question"), A("<think>plan</think>calling"),
         U("<tool_response>\n{\"ok\": true}\n</tool_response>"), A("<think>got it</think>finished")]],
    ["user_tool_response_prefix_only",
        [U("q"), A("<think>r</think>a"), U("<tool_response>not closed"), A("<think>r2</think>b")]],
    ["assistant_only", [A("<think>r</think>hello")]],
    ["assistant_chain",
        [U("q"), A("<think>r1</think>a1"), A("no reasoning"), A("<think>r3</think>a3")]],
    ["system_only", [S(SYS)]],
    ["two_systems", [S("first"), U("u"), S("second"), A("<think>x</think>y"), U("v")]],
    ["system_mid", [U("u1"), S("late system"), U("u2")]],
    ["empty_contents", [S(""), U(""), A(""), U("")]],
    ["empty_user_then_think", [U(""), A("<think>\n\n</think>\n\n")]],
    ["empty_tool", [U("u"), T(""), T("")]],
    ["unicode",
        [S("Réponds en français. 你好，世界！"), U("Ça va? 🙂 ｶﾀｶﾅ e\u0301 \u00e9 👩‍👩‍👧"),
         A("<think>\n思考中…\n</think>\n\nOui 👍"), U("Ω ≈ ç √ ∫ — \u200b zero width")]],
    ["special_tokens_in_content",
        [U("text with <|im_start|>user and <|im_end|> inside"),
         A("<tool_call>\n{\"name\": \"f\"}\n</tool_call>")]],
    ["newlines_and_crlf",
        [S("\n\nlead"), U("line1\r\nline2\n\n"), A("\n\n<think>\r\n\nx\n</think>\n\n\n\ny\n\n"), U("\n")]],
    ["whitespace_content", [U("   "), A("\t<think> spaced </think>  tail  "), U(" ")]],
    ["long_content",
        [U("lorem ipsum dolor sit amet ".repeat(40)), A("<think>" + "thinking ".repeat(50) + "</think>" + "done ".repeat(30))]],
    ["think_tag_edges",
        [U("q"), A("</think>"), U("q2"), A("\n</think>\n"), A(" <think> \n</think>\n x"), A("<think>a</think>")]],
    ["reasoning_only_newlines", [U("q"), A("<think>\n\n\n</think>"), U("q2"), A("<think>\n \n</think>\n \n")]],
    // No message at all: Python jinja2 raises on messages[0]; @huggingface/jinja renders only
    // the generation prompt, which is what qm_chat_render does.
    ["empty_messages", []],
];

// ---------------------------------------------------------------------------------------

function hex(s) {
    return "x" + Buffer.from(s, "utf8").toString("hex");
}
// One case: a header, its messages, the expected text. enable_thinking: true, false or
// undefined (not passed to the template; "-" in the file).
const rendered = []; // every case, for --python
function emit(lines, name, tmpl, msgs, addGen, thinking) {
    const vars = { messages: msgs, add_generation_prompt: addGen, bos_token: "", eos_token: "<|im_end|>" };
    if (thinking !== undefined) vars.enable_thinking = thinking;
    let text;
    try {
        text = templates[tmpl].render(vars);
    } catch (e) {
        die(`case ${name}: ${tmpl} failed to render: ${e.message}`);
    }
    const th = thinking === undefined ? "-" : thinking ? "1" : "0";
    lines.push(`case ${name} ${tmpl} ${addGen ? 1 : 0} ${th}`);
    for (const m of msgs) lines.push(`msg ${m.role} ${hex(m.content)}`);
    lines.push(`expect ${hex(text)}`);
    lines.push("end");
    rendered.push({ name, tmpl, messages: msgs, add_generation_prompt: addGen, thinking: th, text });
    return text;
}

const lines = [
    "# chat_renders.txt - generated by tools/render_ref.mjs (do not edit; run it again instead)",
    "# Renders of tests/data/templates/*.jinja (copies of the real Qwen3 and Qwen3-Coder chat",
    "# templates, and a plain ChatML one) made with @huggingface/jinja, its str.strip(chars)",
    "# given Python's meaning; `node tools/render_ref.mjs --python` compares them with jinja2.",
    "# Format, one item per line:",
    "#   case NAME TEMPLATE ADD_GENERATION_PROMPT ENABLE_THINKING",
    "#        TEMPLATE: qwen3 | qwen3-coder | chatml;  ADD_GENERATION_PROMPT: 0 | 1",
    "#        ENABLE_THINKING: 1 | 0 | - (not passed to the template, which means true)",
    "#   msg ROLE xHEX        (zero or more; HEX = the UTF-8 bytes of the content, may be empty)",
    "#   expect xHEX          (the rendered text)",
    "#   end",
];

let n = 0;
for (const [name, msgs] of conversations) {
    for (const addGen of [true, false]) {
        for (const th of [undefined, true, false]) {
            emit(lines, `${name}.g${addGen ? 1 : 0}.t${th === undefined ? "u" : th ? 1 : 0}`, "qwen3", msgs, addGen, th);
            n++;
        }
        emit(lines, `${name}.g${addGen ? 1 : 0}`, "qwen3-coder", msgs, addGen, undefined);
        emit(lines, `${name}.g${addGen ? 1 : 0}`, "chatml", msgs, addGen, undefined);
        n += 2;
    }
}

// The five renders in the shared tokenizer vectors: checked against our renders, then added.
const sharedCases = {
    qwen3: ["qwen3", [U("Hi")], undefined],
    qwen3_enable_thinking_false: ["qwen3", [U("Hi")], false],
    coder: ["qwen3-coder", [U("Hi")], undefined],
    qwen3_system: ["qwen3", [S(SYS), U("Hi")], undefined],
    coder_system: ["qwen3-coder", [S(SYS), U("Hi")], undefined],
};
let shared = null;
if (fs.existsSync(sharedFile)) {
    try {
        shared = JSON.parse(fs.readFileSync(sharedFile, "utf8")).chat_template_renders;
    } catch (e) {
        die(`cannot read ${sharedFile}: ${e.message}`);
    }
    if (!shared) die(`${sharedFile} has no chat_template_renders`);
} else if (sharedGiven) {
    die(`${sharedFile} does not exist`);
}
if (shared) {
    for (const [key, [tmpl, msgs, th]] of Object.entries(sharedCases)) {
        if (!shared[key]) die(`${sharedFile}: chat_template_renders.${key} is missing`);
        const tmp = [];
        const text = emit(tmp, `shared.${key}`, tmpl, msgs, true, th);
        if (text !== shared[key].rendered)
            die(`shared vector ${key} differs from the render: ${JSON.stringify(shared[key].rendered)} vs ${JSON.stringify(text)}`);
        tmp[tmp.length - 2] = `expect ${hex(shared[key].rendered)}`;
        lines.push(...tmp);
        n++;
    }
} else {
    // keep the shared cases from the existing output (made when shared/ was there)
    let old = "";
    try { old = fs.readFileSync(outFile, "utf8"); } catch (e) { /* none */ }
    const keep = [];
    let on = false;
    for (const l of old.split("\n")) {
        if (l.startsWith("case shared.")) on = true;
        if (on) keep.push(l);
        if (l === "end") on = false;
    }
    if (!keep.length) die(`${sharedFile} not found and ${outFile} has no shared cases to keep`);
    lines.push(...keep);
    n += keep.filter((l) => l.startsWith("case ")).length;
}

// Python's jinja2, as transformers sets it up (ImmutableSandboxedEnvironment, trim_blocks,
// lstrip_blocks, loopcontrols): the reference the templates were written for.
if (python) {
    const { spawnSync } = await import("node:child_process");
    const script = `
import json, sys
try:
    from jinja2.sandbox import ImmutableSandboxedEnvironment
except ImportError as e:
    print("ERROR no jinja2 module: " + str(e)); sys.exit(0)
env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
d = json.load(sys.stdin)
tm = {k: env.from_string(v) for k, v in d["templates"].items()}
for c in d["cases"]:
    v = dict(messages=c["messages"], add_generation_prompt=c["add_generation_prompt"], bos_token="", eos_token="<|im_end|>")
    if c["thinking"] != "-": v["enable_thinking"] = c["thinking"] == "1"
    try:
        out = tm[c["tmpl"]].render(**v)
    except Exception as e:
        print("RAISE", c["name"], c["tmpl"], type(e).__name__); continue
    print(("SAME" if out == c["text"] else "DIFF"), c["name"], c["tmpl"], json.dumps(out))
`;
    const input = JSON.stringify({
        templates: Object.fromEntries(["qwen3", "qwen3-coder", "chatml"].map((t) => [t, readTemplate(`${t}.jinja`)])),
        cases: rendered,
    });
    const r = spawnSync("python3", ["-c", script], { input, encoding: "utf8", maxBuffer: 1 << 28 });
    if (r.error || r.status !== 0) die(`python3 failed: ${r.error ? r.error.message : r.stderr}`);
    let same = 0, bad = 0, raised = 0;
    for (const l of r.stdout.split("\n")) {
        if (!l) continue;
        const [kind, name, tmpl] = l.split(" ");
        if (kind === "ERROR") die(`--python: ${l.slice(6)}`);
        if (kind === "SAME") same++;
        else if (kind === "RAISE" && name.startsWith("empty_messages.")) raised++;
        else { bad++; process.stderr.write(`render_ref: python jinja2 differs: ${l}\n`); }
    }
    if (bad) die(`${bad} cases render differently with Python jinja2`);
    process.stdout.write(`python jinja2: ${same} cases identical, ${raised} empty_messages cases raise there (expected)\n`);
}

const out = lines.join("\n") + "\n";
if (check) {
    let old = "";
    try { old = fs.readFileSync(outFile, "utf8"); } catch (e) { die(`cannot read ${outFile}: ${e.message}`); }
    if (old !== out) die(`${outFile} is out of date: run node tools/render_ref.mjs`);
    process.stdout.write(`${outFile}: up to date (${n} cases)\n`);
} else {
    try {
        fs.mkdirSync(path.dirname(outFile), { recursive: true });
        fs.writeFileSync(outFile, out);
    } catch (e) {
        die(`cannot write ${outFile}: ${e.message}`);
    }
    process.stdout.write(`wrote ${n} cases to ${outFile}\n`);
}
