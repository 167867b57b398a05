#!/usr/bin/env node
// render_ref.mjs - reference renders of the Qwen3-Coder chat template WITH TOOLS, for
// tests/server/test_toolparse.c (which compares qms_coder_render() byte for byte).
//
// The template (tests/data/templates/qwen3-coder.jinja, the stored Qwen3-Coder one) is rendered
// with Python's jinja2 set up as transformers does (ImmutableSandboxedEnvironment, trim_blocks,
// lstrip_blocks, loopcontrols, and transformers' tojson = json.dumps(ensure_ascii=False)):
// that is how vLLM / transformers run it. @huggingface/jinja is tried too, and the report says
// where it agrees: version 0.5.11 cannot render tools with this template at all (it has no
// `reject` filter on arrays, and `| string` fails on objects and null), so it cannot be the
// reference here.
//
// Run from the repository root (needs python3 with jinja2):  node tests/server/render_ref.mjs
// Writes tests/server/tool_renders.txt; --check compares instead of writing.

import fs from "node:fs";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const HELP = `usage: node tests/server/render_ref.mjs [-o FILE] [--check]

Renders tests/data/templates/qwen3-coder.jinja with Python jinja2 (as transformers does) for
conversations with tools, tool calls and tool results, and writes tests/server/tool_renders.txt:
  case NAME
  input JSON          {"messages": [...], "tools": [...], "add_generation_prompt": bool}
  expect xHEX         the rendered text, UTF-8, hex
  end
  -o FILE   output (default tests/server/tool_renders.txt)
  --check   exit 1 if FILE differs from what would be written
`;
const die = (m) => { process.stderr.write(`render_ref: error: ${m}\n`); process.exit(1); };
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
let outFile = path.join(root, "tests/server/tool_renders.txt");
let check = false;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "-h" || argv[i] === "--help") { process.stdout.write(HELP); process.exit(0); }
    else if (argv[i] === "-o" && i + 1 < argv.length) outFile = path.resolve(argv[++i]);
    else if (argv[i] === "--check") check = true;
    else die(`unknown argument '${argv[i]}' (see --help)`);
}
const tmplText = fs.readFileSync(path.join(root, "tests/data/templates/qwen3-coder.jinja"), "utf8");

// ---------------------------------------------------------------------------------------
// The cases, as JSON text (so that 1.0, 1e16, -0 reach Python as written).
const WEATHER = `{"type": "function", "function": {"name": "get_weather",
  "description": "  Get the current weather in a city.\\n ",
  "parameters": {"type": "object", "properties": {
     "city": {"type": "string", "description": "The city name"},
     "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "description": "Unit"},
     "days": {"type": "integer", "minimum": 1, "maximum": 14, "default": 3}},
   "required": ["city"]}}}`;
const RICH = `{"type": "function", "function": {"name": "run_query",
  "description": "Run a query: 'quoted' and \\"double\\" — é 你好",
  "parameters": {"type": "object", "properties": {
     "sql": {"type": "string"},
     "limit": {"type": ["integer", "null"], "description": "rows", "default": null},
     "ratio": {"type": "number", "default": 1.0, "exclusiveMaximum": 1e16, "multipleOf": 0.0001, "x-small": 1e-05},
     "flags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}, "default": ["a"], "uniqueItems": true},
     "opts": {"type": "object", "properties": {"deep": {"type": "boolean"}}, "required": ["deep"], "additionalProperties": false},
     "mode": {"enum": [1, 2.5, true, null, "x"]},
     "$weird key-name": {"type": "string", "format": "date-time", "pattern": "^a'b$"},
     "big": {"type": "integer", "maximum": 12345678901234567890, "minimum": -0}
  }, "required": ["sql", "limit"]},
  "return": {"type": "object", "description": "rows"}}}`;
const BARE = `{"type": "function", "function": {"name": "ping", "parameters": {}}}`;
const RET_STR = `{"type": "function", "function": {"name": "now", "description": "time", "parameters": {"type": "object", "properties": {}}, "return": "an ISO date"}}`;
const NO_WRAP = `{"name": "echo", "description": "echo back", "parameters": {"type": "object", "properties": {"text": {"type": "string"}}}}`;

const cases = [
    ["tools_user", `{"messages": [{"role": "user", "content": "Weather in Paris?"}], "tools": [${WEATHER}], "add_generation_prompt": true}`],
    ["tools_system", `{"messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi"}], "tools": [${WEATHER}, ${BARE}], "add_generation_prompt": true}`],
    ["tools_rich", `{"messages": [{"role": "user", "content": "q"}], "tools": [${RICH}, ${RET_STR}, ${NO_WRAP}], "add_generation_prompt": true}`],
    ["tools_empty_list", `{"messages": [{"role": "user", "content": "Hi"}], "tools": [], "add_generation_prompt": true}`],
    ["round_trip", `{"messages": [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\", \\"days\\": 2}"}},
            {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": "{\\"city\\": \\"Rome\\", \\"unit\\": \\"celsius\\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "{\\"temp\\": 21}"},
        {"role": "tool", "tool_call_id": "call_2", "content": "sunny"},
        {"role": "assistant", "content": "Paris 21, Rome sunny."},
        {"role": "user", "content": "thanks"}], "tools": [${WEATHER}], "add_generation_prompt": true}`],
    ["call_value_types", `{"messages": [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": "  Let me run it.\\n\\n", "tool_calls": [
            {"type": "function", "function": {"name": "run_query", "arguments": "{\\"sql\\": \\"select 'a', \\\\\\"b\\\\\\"\\\\nfrom t\\", \\"limit\\": null, \\"ratio\\": 1.0, \\"n\\": 10, \\"f\\": 2.5e-7, \\"big\\": 1e16, \\"ok\\": true, \\"no\\": false, \\"opts\\": {\\"deep\\": true, \\"s\\": \\"it's\\"}, \\"flags\\": [\\"a\\", 1, null, [2]], \\"neg\\": -0, \\"u\\": \\"é 你好\\"}"}}]},
        {"role": "tool", "content": "done"}], "tools": [${RICH}], "add_generation_prompt": true}`],
    ["call_args_object", `{"messages": [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "echo", "arguments": {"text": "hi", "n": 3}}}]},
        {"role": "tool", "content": "hi"}], "tools": [${NO_WRAP}], "add_generation_prompt": false}`],
    ["call_unwrapped_no_args", `{"messages": [
        {"role": "user", "content": "go"},
        {"role": "assistant", "tool_calls": [{"name": "ping"}]},
        {"role": "tool", "content": "pong"},
        {"role": "tool", "content": "pong2"}], "add_generation_prompt": true}`],
    ["tool_after_system", `{"messages": [{"role": "system", "content": "s"}, {"role": "tool", "content": "t1"}, {"role": "tool", "content": "t2"}, {"role": "user", "content": "u"}], "add_generation_prompt": true}`],
    ["tool_first_no_system", `{"messages": [{"role": "tool", "content": "orphan"}, {"role": "user", "content": "u"}], "tools": [${BARE}], "add_generation_prompt": true}`],
    ["tool_null_content", `{"messages": [{"role": "user", "content": "u"}, {"role": "tool", "content": null}], "add_generation_prompt": true}`],
    ["plain_multi_turn", `{"messages": [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4"}, {"role": "user", "content": "And 3+3?"}], "add_generation_prompt": true}`],
    ["plain_no_gen", `{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}], "add_generation_prompt": false}`],
    ["developer_role", `{"messages": [{"role": "developer", "content": "be brief"}, {"role": "user", "content": "Hi"}], "add_generation_prompt": true}`],
    ["empty_tool_calls_list", `{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "plain", "tool_calls": []}], "add_generation_prompt": true}`],
    ["unicode_tools", `{"messages": [{"role": "user", "content": "Ça va? 🙂"}], "tools": [{"type": "function", "function": {"name": "traduire", "description": "Traduit un texte — «vite»", "parameters": {"type": "object", "properties": {"texte": {"type": "string", "description": "le texte à traduire 你好", "examples": ["é", "it's"]}}, "required": ["texte"]}}}], "add_generation_prompt": true}`],
];

// ---------------------------------------------------------------------------------------
const script = `
import json, sys
try:
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    import jinja2.ext
except ImportError as e:
    print(json.dumps({"error": "no jinja2 module: " + str(e)})); sys.exit(0)
def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)
env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
env.filters["tojson"] = tojson
d = json.load(sys.stdin)
t = env.from_string(d["template"])
out = []
for c in d["cases"]:
    v = json.loads(c)
    msgs = v["messages"]
    # as vLLM and llama.cpp do: a tool call's arguments string is parsed into a dict first
    for m in msgs:
        for tc in (m.get("tool_calls") or []):
            f = tc.get("function", tc)
            if isinstance(f.get("arguments"), str):
                f["arguments"] = json.loads(f["arguments"])
    kw = dict(messages=msgs, add_generation_prompt=v["add_generation_prompt"], bos_token="", eos_token="<|im_end|>")
    if "tools" in v: kw["tools"] = v["tools"]
    try:
        out.append({"text": t.render(**kw)})
    except Exception as e:
        out.append({"error": type(e).__name__ + ": " + str(e)})
print(json.dumps(out))
`;
const r = spawnSync("python3", ["-c", script], {
    input: JSON.stringify({ template: tmplText, cases: cases.map((c) => c[1]) }),
    encoding: "utf8", maxBuffer: 1 << 26,
});
if (r.error || r.status !== 0) die(`python3 failed: ${r.error ? r.error.message : r.stderr}`);
const res = JSON.parse(r.stdout);
if (res.error) die(res.error);

// @huggingface/jinja, for the record
let hfSame = 0, hfDiff = 0, hfFail = 0;
try {
    const { Template } = await import("@huggingface/jinja");
    const ht = new Template(tmplText);
    cases.forEach(([name, json], i) => {
        const v = JSON.parse(json);
        for (const m of v.messages) for (const tc of m.tool_calls || []) {
            const f = tc.function || tc;
            if (typeof f.arguments === "string") f.arguments = JSON.parse(f.arguments);
        }
        try {
            const txt = ht.render({ ...v, bos_token: "", eos_token: "<|im_end|>" });
            if (txt === res[i].text) hfSame++; else hfDiff++;
        } catch (e) { hfFail++; }
    });
} catch (e) { hfFail = -1; }

const hex = (s) => "x" + Buffer.from(s, "utf8").toString("hex");
const lines = [
    "# tool_renders.txt - generated by tests/server/render_ref.mjs (do not edit; run it again)",
    "# Qwen3-Coder template renders with tools, by Python jinja2 as transformers sets it up.",
];
cases.forEach(([name, json], i) => {
    if (res[i].error) die(`case ${name}: jinja2 raised ${res[i].error}`);
    lines.push(`case ${name}`, `input ${json.replace(/\n\s*/g, " ")}`, `expect ${hex(res[i].text)}`, "end");
});
const out = lines.join("\n") + "\n";
const hfNote = hfFail < 0 ? "@huggingface/jinja not loadable" :
    `@huggingface/jinja: ${hfSame} identical, ${hfDiff} different, ${hfFail} cannot render`;
if (check) {
    const old = fs.existsSync(outFile) ? fs.readFileSync(outFile, "utf8") : "";
    if (old !== out) die(`${outFile} is out of date: run node tests/server/render_ref.mjs`);
    process.stdout.write(`${outFile}: up to date (${cases.length} cases; ${hfNote})\n`);
} else {
    fs.writeFileSync(outFile, out);
    process.stdout.write(`wrote ${cases.length} cases to ${outFile} (${hfNote})\n`);
}
