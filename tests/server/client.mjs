#!/usr/bin/env node
// client.mjs - drives a running qwenmoe-server (started with --debug) with the official
// `openai` npm client and with raw fetch: chat and completions, non-streaming and streaming,
// tool calls, the rendered prompt with tools, greedy parity with qwenmoe-generate, 32
// concurrent streams, a client that disconnects mid-stream.
// Prints "FAIL ..." lines and "# server-client: N passed, M failed"; exits 1 on a failure.
//
// usage: node tests/server/client.mjs --port N --key KEY --model FILE --generate BIN --renders FILE
//        [--clients 32] [--only NAME,...]

import fs from "node:fs";
import { execFileSync } from "node:child_process";
import OpenAI from "openai";

const args = {};
for (let i = 2; i < process.argv.length; i++) {
    const a = process.argv[i];
    if (a === "-h" || a === "--help") {
        console.log("usage: node tests/server/client.mjs --port N --key KEY --model FILE --generate BIN --renders FILE [--clients 32] [--only NAME,...]");
        process.exit(0);
    }
    if (!a.startsWith("--") || i + 1 >= process.argv.length) { console.error(`client.mjs: bad argument ${a}`); process.exit(2); }
    args[a.slice(2)] = process.argv[++i];
}
const base = `http://127.0.0.1:${args.port}`;
const key = args.key;
const nClients = Number(args.clients || 32);
const only = args.only ? new Set(args.only.split(",")) : null;
let pass = 0, fail = 0;
function check(cond, what) {
    if (cond) pass++;
    else { fail++; console.log(`FAIL ${what}`); }
    return cond;
}
const log = (...a) => console.log("  " + a.join(" "));
const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: key, maxRetries: 0, timeout: 60000 });
const MSGS = [{ role: "user", content: "Hello there" }];

// Read an SSE body to the end: the list of data payloads, and whether it ended properly.
async function readSSE(res, onEvent) {
    const dec = new TextDecoder();
    let buf = "", events = [];
    for await (const part of res.body) {
        buf += dec.decode(part, { stream: true });
        let k;
        while ((k = buf.indexOf("\n\n")) >= 0) {
            const ev = buf.slice(0, k);
            buf = buf.slice(k + 2);
            if (!ev.startsWith("data: ")) throw new Error(`not an SSE data line: ${JSON.stringify(ev.slice(0, 80))}`);
            events.push(ev.slice(6));
            if (onEvent && onEvent(ev.slice(6), events.length) === false) return { events, rest: buf, stopped: true };
        }
    }
    return { events, rest: buf };
}

const tests = {
    async models() {
        const list = await client.models.list();
        const ids = [];
        for await (const m of list) ids.push(m.id);
        check(ids.length === 1 && ids[0] === args.model.split("/").pop(), `models: ${JSON.stringify(ids)}`);
    },

    async chat() {
        const r = await client.chat.completions.create({ model: "x", messages: MSGS, max_tokens: 12, temperature: 0 });
        log(`chat: id=${r.id} object=${r.object} finish=${r.choices[0].finish_reason} usage=${JSON.stringify(r.usage)}`);
        log(`chat: content=${JSON.stringify(r.choices[0].message.content)}`);
        check(r.object === "chat.completion" && r.id.startsWith("chatcmpl-"), "chat: object/id");
        check(r.choices.length === 1 && r.choices[0].message.role === "assistant", "chat: one assistant choice");
        check(typeof r.choices[0].message.content === "string" && r.choices[0].message.content.length > 0, "chat: content");
        check(r.usage.prompt_tokens === 10 && r.usage.completion_tokens === 12 && r.usage.total_tokens === 22, `chat: usage ${JSON.stringify(r.usage)}`);
        check(r.choices[0].finish_reason === "length", "chat: finish_reason length");
        // the same greedy request twice gives the same text; a stop string cuts it
        const r2 = await client.chat.completions.create({ model: "x", messages: MSGS, max_tokens: 12, temperature: 0 });
        check(r2.choices[0].message.content === r.choices[0].message.content, "chat: greedy is deterministic");
        const text = r.choices[0].message.content;
        const stop = text.slice(4, 7);
        if (stop.trim().length === 3) {
            const r3 = await client.chat.completions.create({ model: "x", messages: MSGS, max_tokens: 12, temperature: 0, stop: [stop] });
            check(r3.choices[0].message.content === text.slice(0, text.indexOf(stop)) && r3.choices[0].finish_reason === "stop",
                `chat: stop ${JSON.stringify(stop)} -> ${JSON.stringify(r3.choices[0].message.content)} ${r3.choices[0].finish_reason}`);
        }
        // sampling with a seed is reproducible
        const s1 = await client.chat.completions.create({ model: "x", messages: MSGS, max_tokens: 8, temperature: 0.9, top_p: 0.95, top_k: 40, seed: 7 });
        const s2 = await client.chat.completions.create({ model: "x", messages: MSGS, max_tokens: 8, temperature: 0.9, top_p: 0.95, top_k: 40, seed: 7 });
        check(s1.choices[0].message.content === s2.choices[0].message.content, "chat: same seed, same sample");
    },

    async chat_stream() {
        const stream = await client.chat.completions.create({ model: "x", messages: MSGS, max_tokens: 10, temperature: 0, stream: true, stream_options: { include_usage: true } });
        const chunks = [];
        for await (const c of stream) chunks.push(c);
        const first = chunks[0], last = chunks[chunks.length - 1], fin = chunks[chunks.length - 2];
        const text = chunks.map((c) => c.choices[0]?.delta?.content || "").join("");
        log(`chat stream: ${chunks.length} chunks, first delta=${JSON.stringify(first.choices[0].delta)}, finish=${fin.choices[0].finish_reason}, usage=${JSON.stringify(last.usage)}`);
        check(first.object === "chat.completion.chunk" && first.choices[0].delta.role === "assistant", "stream: role first");
        check(chunks.every((c) => c.id === first.id), "stream: one id");
        check(fin.choices[0].finish_reason === "length", "stream: finish_reason");
        check(last.choices.length === 0 && last.usage && last.usage.completion_tokens === 10 && last.usage.prompt_tokens === 10, "stream: usage chunk last");
        check(chunks.slice(0, -1).every((c) => c.usage === null), "stream: usage null before the last chunk");
        const r = await client.chat.completions.create({ model: "x", messages: MSGS, max_tokens: 10, temperature: 0 });
        check(text === r.choices[0].message.content, `stream text equals non-stream: ${JSON.stringify(text)} vs ${JSON.stringify(r.choices[0].message.content)}`);
    },

    async completions() {
        const r = await client.completions.create({ model: "x", prompt: "The quick brown fox", max_tokens: 6, temperature: 0 });
        log(`completions: text=${JSON.stringify(r.choices[0].text)} finish=${r.choices[0].finish_reason} usage=${JSON.stringify(r.usage)}`);
        check(r.object === "text_completion" && r.usage.completion_tokens === 6, "completions: shape");
        const st = await client.completions.create({ model: "x", prompt: "The quick brown fox", max_tokens: 6, temperature: 0, stream: true });
        let text = "", fin = null;
        for await (const c of st) { text += c.choices[0].text; if (c.choices[0].finish_reason) fin = c.choices[0].finish_reason; }
        check(text === r.choices[0].text && fin === "length", "completions: stream equals non-stream");
        // token ids as the prompt
        const ids = execFileSync(args.tokenize, ["-m", args.model, "-p", "The quick brown fox"], { encoding: "utf8" }).trim().split(/\s+/).map(Number);
        const r2 = await client.completions.create({ model: "x", prompt: ids, max_tokens: 6, temperature: 0 });
        check(r2.choices[0].text === r.choices[0].text && r2.usage.prompt_tokens === ids.length, "completions: token-id prompt");
    },

    // Greedy output through the server equals qwenmoe-generate --chat for the same prompt.
    async parity_generate() {
        const prompt = "Write a haiku about the sea.";
        const n = 32;
        const out = execFileSync(args.generate, ["-m", args.model, "--chat", "-p", prompt, "-n", String(n), "--ctx", "512", "--print-ids"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
        const genIds = out.trim().split(/\s+/).filter(Boolean).map(Number);
        const res = await fetch(`${base}/v1/chat/completions`, {
            method: "POST", headers: { "Content-Type": "application/json", Authorization: `Bearer ${key}` },
            body: JSON.stringify({ messages: [{ role: "user", content: prompt }], temperature: 0, max_tokens: n, return_tokens: true }),
        });
        const j = await res.json();
        const ids = j.choices[0].tokens;
        log(`parity: generate ${genIds.length} ids, server ${ids.length} ids, first 8: ${genIds.slice(0, 8).join(" ")} | ${ids.slice(0, 8).join(" ")}`);
        check(genIds.length > 0 && JSON.stringify(ids) === JSON.stringify(genIds), "parity: server ids == qwenmoe-generate --print-ids");
        const text = execFileSync(args.tokenize, ["-m", args.model, "--skip-special", "--decode", ids.join(" ")], { encoding: "utf8" });
        check(j.choices[0].message.content === text.replace(/\n$/, ""), "parity: server text == the ids decoded");
        const gtext = execFileSync(args.generate, ["-m", args.model, "--chat", "-p", prompt, "-n", String(n), "--ctx", "512"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
        if (!ids.some((t) => t >= 151643)) // no special token generated: the texts are the same
            check(gtext.replace(/\n$/, "") === j.choices[0].message.content, "parity: server text == qwenmoe-generate text");
    },

    // Tool calls: the model's text is replaced (debug_output) by a known tool call.
    async tools() {
        const tools = [{
            type: "function",
            function: {
                name: "get_weather", description: "Get the weather",
                parameters: { type: "object", properties: { city: { type: "string" }, days: { type: "integer" }, metric: { type: "boolean" } }, required: ["city"] },
            },
        }];
        const out = "Let me check.\n<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n<parameter=days>\n3\n</parameter>\n<parameter=metric>\ntrue\n</parameter>\n</function>\n</tool_call>";
        const r = await client.chat.completions.create({ model: "x", messages: [{ role: "user", content: "Weather in Paris?" }], tools, debug_output: out });
        const m = r.choices[0].message;
        log(`tools: finish=${r.choices[0].finish_reason} content=${JSON.stringify(m.content)} tool_calls=${JSON.stringify(m.tool_calls)}`);
        check(r.choices[0].finish_reason === "tool_calls", "tools: finish_reason tool_calls");
        check(m.content === "Let me check.", `tools: content ${JSON.stringify(m.content)}`);
        check(m.tool_calls && m.tool_calls.length === 1 && m.tool_calls[0].type === "function" && /^call_[0-9A-Za-z]{24}$/.test(m.tool_calls[0].id), "tools: one call with an id");
        check(m.tool_calls && m.tool_calls[0].function.name === "get_weather", "tools: name");
        check(m.tool_calls && JSON.stringify(JSON.parse(m.tool_calls[0].function.arguments)) === '{"city":"Paris","days":3,"metric":true}', `tools: arguments ${m.tool_calls && m.tool_calls[0].function.arguments}`);
        // streaming: content first, then one tool_calls delta, finish_reason tool_calls
        const st = await client.chat.completions.create({ model: "x", messages: [{ role: "user", content: "Weather in Paris?" }], tools, debug_output: out, stream: true });
        let content = "", calls = [], fin = null, sawTag = false;
        for await (const c of st) {
            const d = c.choices[0]?.delta || {};
            if (d.content) { content += d.content; if (d.content.includes("<")) sawTag = true; }
            if (d.tool_calls) calls.push(...d.tool_calls);
            if (c.choices[0]?.finish_reason) fin = c.choices[0].finish_reason;
        }
        log(`tools stream: content=${JSON.stringify(content)} calls=${JSON.stringify(calls)} finish=${fin}`);
        check(content === "Let me check.\n" && !sawTag, `tools stream: content ${JSON.stringify(content)}`);
        check(calls.length === 1 && calls[0].index === 0 && calls[0].function.name === "get_weather" &&
            JSON.stringify(JSON.parse(calls[0].function.arguments)) === '{"city":"Paris","days":3,"metric":true}', "tools stream: the call");
        check(fin === "tool_calls", "tools stream: finish_reason");
        // the conversation goes on: the assistant's tool call and the tool's answer are rendered
        const follow = {
            messages: [{ role: "user", content: "Weather in Paris?" }, { role: "assistant", content: null, tool_calls: m.tool_calls },
                { role: "tool", tool_call_id: m.tool_calls[0].id, content: "{\"temp\": 21}" }], tools,
        };
        const rr = await (await fetch(`${base}/debug/render`, { method: "POST", headers: { Authorization: `Bearer ${key}` }, body: JSON.stringify(follow) })).json();
        const want = "<|im_start|>assistant\n<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n<parameter=days>\n3\n</parameter>\n" +
            "<parameter=metric>\nTrue\n</parameter>\n</function>\n</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\n{\"temp\": 21}\n</tool_response>\n<|im_end|>\n<|im_start|>assistant\n";
        check(rr.prompt.endsWith(want), `tools: follow-up render ${JSON.stringify(rr.prompt.slice(-300))}`);
        const r2 = await client.chat.completions.create({ model: "x", ...follow, max_tokens: 4, temperature: 0 });
        check(r2.choices[0].finish_reason === "length" && r2.usage.prompt_tokens === rr.n_tokens, "tools: follow-up generates");
        // tool_choice none: no tools in the prompt, no parsing
        const rn = await client.chat.completions.create({ model: "x", messages: [{ role: "user", content: "q" }], tools, tool_choice: "none", debug_output: out });
        check(rn.choices[0].finish_reason === "stop" && !rn.choices[0].message.tool_calls && rn.choices[0].message.content === out, "tools: tool_choice none");
    },

    // The rendered prompt with tools equals jinja2's render of the same request.
    async render() {
        const lines = fs.readFileSync(args.renders, "utf8").split("\n");
        let n = 0;
        for (let i = 0; i < lines.length; i++) {
            if (!lines[i].startsWith("case ")) continue;
            const name = lines[i].slice(5), input = lines[i + 1].slice(6), expect = Buffer.from(lines[i + 2].slice(8), "hex").toString("utf8");
            const v = JSON.parse(input);
            if (!v.add_generation_prompt) continue;
            const res = await fetch(`${base}/debug/render`, { method: "POST", headers: { Authorization: `Bearer ${key}` }, body: input });
            const j = await res.json();
            check(res.status === 200 && j.prompt === expect, `render ${name}: ${res.status} ${JSON.stringify(j).slice(0, 200)}`);
            n++;
        }
        log(`render: ${n} tool_renders.txt cases through POST /debug/render`);
        check(n >= 10, "render: cases");
    },

    // nClients streams at once: every one complete and well formed.
    async concurrency() {
        const t0 = performance.now();
        const one = async (i) => {
            const t = performance.now();
            const res = await fetch(`${base}/v1/chat/completions`, {
                method: "POST", headers: { "Content-Type": "application/json", Authorization: `Bearer ${key}` },
                body: JSON.stringify({ messages: [{ role: "user", content: `Client ${i} says hello` }], max_tokens: 24, temperature: 0.7, seed: i, stream: true, stream_options: { include_usage: true } }),
            });
            let first = null;
            const { events, rest } = await readSSE(res, () => { if (first === null) first = performance.now() - t; });
            const problems = [];
            if (res.status !== 200) problems.push(`status ${res.status}`);
            if (events[events.length - 1] !== "[DONE]") problems.push("no [DONE] at the end");
            if (rest !== "") problems.push("bytes after the last event");
            let id = null, role = false, fin = null, usage = null, text = "";
            for (const e of events.slice(0, -1)) {
                let j;
                try { j = JSON.parse(e); } catch (err) { problems.push(`bad JSON ${e.slice(0, 60)}`); continue; }
                if (id === null) id = j.id;
                if (j.id !== id) problems.push("id changes");
                if (j.choices.length && j.choices[0].delta.role) role = true;
                if (j.choices.length && j.choices[0].delta.content) text += j.choices[0].delta.content;
                if (j.choices.length && j.choices[0].finish_reason) fin = j.choices[0].finish_reason;
                if (j.usage) usage = j.usage;
            }
            if (!role) problems.push("no role chunk");
            if (!fin) problems.push("no finish_reason");
            if (!usage || usage.completion_tokens < 1) problems.push("no usage");
            return { i, problems, first, total: performance.now() - t, tokens: usage ? usage.completion_tokens : 0 };
        };
        const results = await Promise.all(Array.from({ length: nClients }, (_, i) => one(i)));
        const wall = performance.now() - t0;
        let bad = 0;
        for (const r of results) if (r.problems.length) { bad++; console.log(`FAIL concurrency client ${r.i}: ${r.problems.join(", ")}`); }
        const firsts = results.map((r) => r.first).sort((a, b) => a - b), totals = results.map((r) => r.total).sort((a, b) => a - b);
        const toks = results.reduce((a, r) => a + r.tokens, 0);
        log(`concurrency: ${nClients} streaming clients, ${nClients - bad} complete with [DONE], ${toks} tokens in ${(wall / 1000).toFixed(2)} s wall ` +
            `(${(toks / (wall / 1000)).toFixed(0)} tok/s); first chunk min/median/max ${firsts[0].toFixed(0)}/${firsts[firsts.length >> 1].toFixed(0)}/${firsts[firsts.length - 1].toFixed(0)} ms; ` +
            `stream total min/median/max ${totals[0].toFixed(0)}/${totals[totals.length >> 1].toFixed(0)}/${totals[totals.length - 1].toFixed(0)} ms`);
        check(bad === 0, `concurrency: ${bad} of ${nClients} streams broken`);
    },

    // A client that goes away mid-stream: its generation stops, the slot is freed.
    async disconnect() {
        const ac = new AbortController();
        const res = await fetch(`${base}/v1/chat/completions`, {
            method: "POST", headers: { "Content-Type": "application/json", Authorization: `Bearer ${key}` }, signal: ac.signal,
            body: JSON.stringify({ messages: MSGS, max_tokens: 400, temperature: 0, stream: true, debug_delay_ms: 20 }),
        });
        let got = 0;
        try {
            await readSSE(res, () => { got++; if (got === 3) { ac.abort(); return false; } });
        } catch (e) { /* the abort */ }
        check(got === 3, `disconnect: read ${got} events before leaving`);
        // the slot comes back well before the 400 * 20 ms the generation would take
        const t0 = performance.now();
        let busy = -1;
        while (performance.now() - t0 < 3000) {
            const h = await (await fetch(`${base}/health`)).json();
            busy = h.slots_busy;
            if (busy === 0) break;
            await new Promise((r) => setTimeout(r, 50));
        }
        log(`disconnect: slot free again ${(performance.now() - t0).toFixed(0)} ms after the client left`);
        check(busy === 0, "disconnect: slots free again");
        const h = await fetch(`${base}/health`);
        check(h.status === 200, "disconnect: /health 200");
        const r = await client.chat.completions.create({ model: "x", messages: MSGS, max_tokens: 4, temperature: 0 });
        check(r.choices[0].finish_reason === "length" && r.usage.completion_tokens === 4, "disconnect: the next request works");
    },
};

for (const [name, fn] of Object.entries(tests)) {
    if (only && !only.has(name)) continue;
    const f0 = fail;
    try { await fn(); } catch (e) { fail++; console.log(`FAIL ${name}: threw ${e.stack || e}`); }
    console.log(`${fail === f0 ? "ok  " : "FAIL"} ${name}`);
}
console.log(`# server-client: ${pass} passed, ${fail} failed`);
process.exit(fail ? 1 : 0);
