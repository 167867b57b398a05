/* test_toolparse.c - unit tests of the server's JSON reader/writer, its Qwen3-Coder renderer
   with tools (examples/server_tools.h) and its tool-call parser.
   usage: test_toolparse TOOL_RENDERS.txt CHAT_RENDERS.txt
     TOOL_RENDERS.txt  tests/server/tool_renders.txt (Python jinja2 renders with tools)
     CHAT_RENDERS.txt  tests/data/chat_renders.txt (the qwen3-coder cases: plain chats) */
#define _POSIX_C_SOURCE 200809L
#define QWENMOE_IMPLEMENTATION
#include "qwenmoe.h"
#include "examples/server_tools.h"
#include "tests/qmtest.h"

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    char *b;
    long len;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    fseek(f, 0, SEEK_SET);
    b = (char *)malloc((size_t)len + 1);
    if (b && fread(b, 1, (size_t)len, f) != (size_t)len) { free(b); b = NULL; }
    if (b) b[len] = 0;
    fclose(f);
    if (n) *n = (size_t)len;
    return b;
}

/* "xHEX" -> bytes (malloc'd, NUL-terminated) */
static char *unhex(const char *s, size_t *n) {
    size_t len = strlen(s), i;
    char *o;
    if (s[0] != 'x') return NULL;
    s++;
    len--;
    while (len && (s[len - 1] == '\n' || s[len - 1] == '\r')) len--;
    o = (char *)malloc(len / 2 + 1);
    for (i = 0; i < len / 2; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1) { free(o); return NULL; }
        o[i] = (char)v;
    }
    o[len / 2] = 0;
    if (n) *n = len / 2;
    return o;
}

static void show_diff(const char *a, size_t an, const char *b, size_t bn) {
    size_t i = 0;
    while (i < an && i < bn && a[i] == b[i]) i++;
    printf("  first difference at byte %lu\n  got:    ...%.60s\n  expect: ...%.60s\n", (unsigned long)i,
           a + (i > 20 ? i - 20 : 0), b + (i > 20 ? i - 20 : 0));
    (void)an; (void)bn;
}

/* tests/server/tool_renders.txt */
static void test_tool_renders(const char *path) {
    size_t n;
    char *text = slurp(path, &n), *line, *save = NULL;
    char name[128] = "";
    char *input = NULL;
    int cases = 0;
    CHECK(text != NULL, "cannot read %s", path);
    if (!text) return;
    for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "case ", 5) == 0) snprintf(name, sizeof(name), "%s", line + 5);
        else if (strncmp(line, "input ", 6) == 0) input = line + 6;
        else if (strncmp(line, "expect ", 7) == 0 && input) {
            size_t en;
            char *expect = unhex(line + 7, &en), err[256] = "";
            qms_json v;
            qms_buf out = {0};
            const qms_json *ag;
            int ok;
            CHECK(qms_json_parse(input, strlen(input), &v, err, sizeof(err)), "case %s: input JSON: %s", name, err);
            ag = qms_json_get(&v, "add_generation_prompt");
            ok = qms_coder_render(&out, qms_json_get(&v, "messages"), qms_json_get(&v, "tools"), ag && ag->type == QMS_JTRUE, err, sizeof(err));
            CHECK(ok, "case %s: render failed: %s", name, err);
            CHECK(ok && out.len == en && memcmp(qms_buf_str(&out), expect, en) == 0, "case %s: render differs from jinja2", name);
            if (ok && !(out.len == en && memcmp(qms_buf_str(&out), expect, en) == 0)) show_diff(qms_buf_str(&out), out.len, expect, en);
            qms_buf_free(&out);
            qms_json_free(&v);
            free(expect);
            input = NULL;
            cases++;
        }
    }
    CHECK(cases >= 10, "only %d cases in %s", cases, path);
    printf("# tool renders: %d cases compared\n", cases);
    free(text);
}

/* The qwen3-coder cases of tests/data/chat_renders.txt (plain chats): the server's renderer
   must give the same text as the template there, and as qm_chat_render. */
static void test_chat_renders(const char *path) {
    size_t n;
    char *text = slurp(path, &n), *line, *save = NULL;
    int on = 0, add_gen = 0, cases = 0, nm = 0;
    qms_buf msgs = {0};
    qm_chat_message cm[64];
    char *owned[64];
    char name[128] = "";
    CHECK(text != NULL, "cannot read %s", path);
    if (!text) return;
    for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "case ", 5) == 0) {
            char tmpl[32], nm_[128], th[8];
            int g;
            on = sscanf(line + 5, "%127s %31s %d %7s", nm_, tmpl, &g, th) == 4 && strcmp(tmpl, "qwen3-coder") == 0;
            snprintf(name, sizeof(name), "%s", nm_);
            add_gen = g;
            msgs.len = 0;
            qms_buf_puts(&msgs, "[");
            nm = 0;
        } else if (on && strncmp(line, "msg ", 4) == 0) {
            char role[32];
            const char *sp = strchr(line + 4, ' ');
            size_t cl;
            char *content;
            if (!sp || nm >= 64) { on = 0; continue; }
            snprintf(role, sizeof(role), "%.*s", (int)(sp - line - 4), line + 4);
            content = unhex(sp + 1, &cl);
            if (msgs.len > 1) qms_buf_putc(&msgs, ',');
            qms_buf_puts(&msgs, "{\"role\":");
            qms_buf_json_cstr(&msgs, role);
            qms_buf_puts(&msgs, ",\"content\":");
            qms_buf_json_str(&msgs, content, cl);
            qms_buf_puts(&msgs, "}");
            owned[nm] = content;
            cm[nm].content = content;
            cm[nm].role = strcmp(role, "system") == 0 ? "system" : strcmp(role, "user") == 0 ? "user" : strcmp(role, "assistant") == 0 ? "assistant" : "tool";
            nm++;
        } else if (on && strncmp(line, "expect ", 7) == 0) {
            size_t en;
            char *expect = unhex(line + 7, &en), err[256] = "";
            qms_json v;
            qms_buf out = {0};
            int i, ok;
            int64_t ql;
            char *qbuf;
            qms_buf_puts(&msgs, "]");
            ok = qms_json_parse(qms_buf_str(&msgs), msgs.len, &v, err, sizeof(err));
            CHECK(ok, "case %s: messages JSON: %s", name, err);
            if (ok && v.n > 0) { /* an empty list is refused by the server before rendering */
                ok = qms_coder_render(&out, &v, NULL, add_gen, err, sizeof(err));
                CHECK(ok && out.len == en && memcmp(qms_buf_str(&out), expect, en) == 0, "chat_renders case %s: differs (%s)", name, err);
                if (ok && !(out.len == en && memcmp(qms_buf_str(&out), expect, en) == 0)) show_diff(qms_buf_str(&out), out.len, expect, en);
                ql = qm_chat_render(QM_CHAT_QWEN3_CODER, cm, nm, add_gen, 1, NULL, 0);
                qbuf = (char *)malloc((size_t)ql + 1);
                qm_chat_render(QM_CHAT_QWEN3_CODER, cm, nm, add_gen, 1, qbuf, (size_t)ql + 1);
                CHECK((size_t)ql == out.len && memcmp(qbuf, qms_buf_str(&out), out.len) == 0, "case %s: differs from qm_chat_render", name);
                free(qbuf);
                cases++;
            }
            qms_buf_free(&out);
            qms_json_free(&v);
            free(expect);
            for (i = 0; i < nm; i++) free(owned[i]);
            nm = 0;
            on = 0;
        }
    }
    CHECK(cases >= 40, "only %d qwen3-coder cases in %s", cases, path);
    printf("# plain coder renders: %d cases compared\n", cases);
    qms_buf_free(&msgs);
    free(text);
}

static void test_json(void) {
    qms_json v;
    char err[128];
    qms_buf b = {0};
    static const char *bad[] = {"", "{", "[1,]", "{\"a\":1,}", "01", "1.", "-", "tru", "\"abc", "\"a\nb\"", "\"\\x\"",
                                "{\"a\" 1}", "[1 2]", "nul", "1 2", "\"\\u12\"", "\"\xff\"", "\"\xc0\xaf\"", "{1:2}"};
    size_t i;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int ok = qms_json_parse(bad[i], strlen(bad[i]), &v, err, sizeof(err));
        CHECK(!ok && err[0], "bad JSON %lu accepted: %s", (unsigned long)i, bad[i]);
        if (ok) qms_json_free(&v);
    }
    {
        const char *good = " {\"a\": [1, -2.5e3, true, false, null, \"x\\u00e9\\ud83d\\ude00\\n\\\"\\\\\\/\"], \"b\": {}} ";
        CHECK(qms_json_parse(good, strlen(good), &v, err, sizeof(err)), "good JSON refused: %s", err);
    }
    if (v.type == QMS_JOBJ) {
        const qms_json *a = qms_json_get(&v, "a");
        CHECK(a && a->type == QMS_JARR && a->n == 6, "array");
        if (a && a->n == 6) {
            CHECK(a->items[0].is_int && a->items[0].num == 1, "int");
            CHECK(!a->items[1].is_int && a->items[1].num == -2500, "float %g", a->items[1].num);
            CHECK(a->items[5].len == 11 && memcmp(a->items[5].str, "x\xc3\xa9\xf0\x9f\x98\x80\n\"\\/", 11) == 0, "escapes decoded");
        }
        qms_json_write(&b, &v);
        CHECK(strcmp(qms_buf_str(&b), "{\"a\":[1,-2.5e3,true,false,null,\"x\xc3\xa9\xf0\x9f\x98\x80\\n\\\"\\\\/\"],\"b\":{}}") == 0, "written: %s", qms_buf_str(&b));
        qms_json_free(&v);
    }
    /* a lone surrogate becomes U+FFFD */
    CHECK(qms_json_parse("\"\\ud800x\"", 9, &v, err, sizeof(err)) && v.len == 4 && memcmp(v.str, "\xef\xbf\xbdx", 4) == 0, "lone surrogate");
    qms_json_free(&v);
    /* depth limit */
    {
        char deep[600];
        memset(deep, '[', 300);
        memset(deep + 300, ']', 300);
        CHECK(!qms_json_parse(deep, 600, &v, err, sizeof(err)) && strstr(err, "deeply"), "depth limit: %s", err);
    }
    /* control characters are escaped on output */
    b.len = 0;
    qms_buf_json_str(&b, "a\x01\tb", 4);
    CHECK(strcmp(qms_buf_str(&b), "\"a\\u0001\\tb\"") == 0, "escape: %s", qms_buf_str(&b));
    /* Python float repr */
    {
        static const struct { double x; const char *r; } fl[] = {
            {1.0, "1.0"}, {0.1, "0.1"}, {1e16, "1e+16"}, {1e15, "1000000000000000.0"}, {0.0001, "0.0001"},
            {1e-05, "1e-05"}, {123.456, "123.456"}, {-2.5e-7, "-2.5e-07"}, {1.5e300, "1.5e+300"}, {-0.0, "-0.0"},
            {2.0 / 3.0, "0.6666666666666666"}, {100.0, "100.0"}};
        for (i = 0; i < sizeof(fl) / sizeof(fl[0]); i++) {
            b.len = 0;
            qms_py_float(&b, fl[i].x);
            CHECK(strcmp(qms_buf_str(&b), fl[i].r) == 0, "repr(%.17g): %s, expected %s", fl[i].x, qms_buf_str(&b), fl[i].r);
        }
    }
    qms_buf_free(&b);
}

/* Run the parser over text, fed in pieces of `step` bytes (0: all at once). */
static void parse_all(const qms_json *tools, const char *text, size_t step, qms_buf *content, qms_toolstream *ts) {
    size_t n = strlen(text), i = 0;
    memset(ts, 0, sizeof(*ts));
    ts->tools = tools;
    if (step == 0) step = n;
    while (i < n) {
        size_t k = n - i < step ? n - i : step;
        qms_toolstream_feed(ts, text + i, k, 0, content);
        /* never release a partial "<tool_call" */
        i += k;
    }
    qms_toolstream_feed(ts, NULL, 0, 1, content);
}

static void test_parser(void) {
    static const char tools_json[] =
        "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":{\"type\":\"object\",\"properties\":{"
        "\"city\":{\"type\":\"string\"},\"days\":{\"type\":\"integer\"},\"ratio\":{\"type\":\"number\"},\"hot\":{\"type\":\"boolean\"},"
        "\"opts\":{\"type\":\"object\"},\"list\":{\"type\":\"array\"},\"code\":{\"type\":\"string\"},\"maybe\":{\"type\":[\"integer\",\"null\"]}}}}},"
        "{\"type\":\"function\",\"function\":{\"name\":\"noop\",\"parameters\":{\"type\":\"object\",\"properties\":{}}}}]";
    qms_json tools;
    char err[128];
    qms_toolstream ts;
    qms_buf content = {0};
    size_t steps[] = {0, 1, 2, 3, 7};
    size_t s;
    const char *t1 =
        "I will check.\n\n<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n"
        "<parameter=days>\n2\n</parameter>\n<parameter=ratio>\n1.5\n</parameter>\n<parameter=hot>\nTrue\n</parameter>\n"
        "<parameter=opts>\n{\"a\": [1, 2]}\n</parameter>\n<parameter=list>\n[\"x\", null]\n</parameter>\n"
        "<parameter=code>\n123\n</parameter>\n<parameter=maybe>\nnull\n</parameter>\n<parameter=unknown>\n{\"k\":1}\n</parameter>\n"
        "</function>\n</tool_call>\n<tool_call>\n<function=noop>\n</function>\n</tool_call>";
    const char *args1 = "{\"city\":\"Paris\",\"days\":2,\"ratio\":1.5,\"hot\":true,\"opts\":{\"a\":[1,2]},\"list\":[\"x\",null],"
                        "\"code\":\"123\",\"maybe\":null,\"unknown\":\"{\\\"k\\\":1}\"}";
    CHECK(qms_json_parse(tools_json, strlen(tools_json), &tools, err, sizeof(err)), "tools JSON: %s", err);
    for (s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
        content.len = 0;
        parse_all(&tools, t1, steps[s], &content, &ts);
        CHECK(strcmp(qms_buf_str(&content), "I will check.\n\n") == 0, "step %lu: content '%s'", (unsigned long)steps[s], qms_buf_str(&content));
        CHECK(ts.n_calls == 2, "step %lu: %d calls", (unsigned long)steps[s], ts.n_calls);
        if (ts.n_calls == 2) {
            CHECK(strcmp(ts.calls[0].name, "get_weather") == 0, "name %s", ts.calls[0].name);
            CHECK(strcmp(ts.calls[0].arguments, args1) == 0, "step %lu: arguments %s", (unsigned long)steps[s], ts.calls[0].arguments);
            CHECK(strcmp(ts.calls[1].name, "noop") == 0 && strcmp(ts.calls[1].arguments, "{}") == 0, "second call %s %s", ts.calls[1].name, ts.calls[1].arguments);
        }
        qms_toolstream_free(&ts);
    }
    /* wrong types stay strings; a multi-line string keeps its inner newlines */
    content.len = 0;
    parse_all(&tools, "<tool_call>\n<function=get_weather>\n<parameter=days>\ntwo\n</parameter>\n<parameter=hot>\nyes\n</parameter>\n"
                      "<parameter=city>\nline 1\nline 2\n\n</parameter>\n<parameter=ratio>\n[1]\n</parameter>\n</function>\n</tool_call>", 0, &content, &ts);
    CHECK(ts.n_calls == 1 && strcmp(ts.calls[0].arguments, "{\"days\":\"two\",\"hot\":\"yes\",\"city\":\"line 1\\nline 2\\n\",\"ratio\":\"[1]\"}") == 0,
          "fallbacks: %s", ts.n_calls ? ts.calls[0].arguments : "(none)");
    CHECK(content.len == 0, "no content: '%s'", qms_buf_str(&content));
    qms_toolstream_free(&ts);
    /* streaming: content before a possible "<tool_call>" is released at once, the tail held */
    memset(&ts, 0, sizeof(ts));
    content.len = 0;
    qms_toolstream_feed(&ts, "Hello <tool", 11, 0, &content);
    CHECK(strcmp(qms_buf_str(&content), "Hello ") == 0, "held: '%s'", qms_buf_str(&content));
    qms_toolstream_feed(&ts, "box> here", 9, 0, &content);
    CHECK(strcmp(qms_buf_str(&content), "Hello <toolbox> here") == 0, "released: '%s'", qms_buf_str(&content));
    qms_toolstream_feed(&ts, " <tool_call>\n<function=noop>\n", 29, 0, &content);
    CHECK(strcmp(qms_buf_str(&content), "Hello <toolbox> here ") == 0 && ts.n_calls == 0, "inside a call: '%s'", qms_buf_str(&content));
    qms_toolstream_feed(&ts, "</function>\n</tool_call>", 24, 0, &content);
    CHECK(ts.n_calls == 1, "call complete before the end: %d", ts.n_calls);
    qms_toolstream_feed(&ts, NULL, 0, 1, &content);
    CHECK(ts.n_calls == 1 && strcmp(qms_buf_str(&content), "Hello <toolbox> here ") == 0, "end: '%s'", qms_buf_str(&content));
    qms_toolstream_free(&ts);
    /* cut off by the length limit: the call that can be read is taken */
    content.len = 0;
    parse_all(&tools, "<tool_call>\n<function=get_weather>\n<parameter=city>\nRome", 3, &content, &ts);
    CHECK(ts.n_calls == 1 && strcmp(ts.calls[0].arguments, "{\"city\":\"Rome\"}") == 0 && content.len == 0, "truncated: %d", ts.n_calls);
    qms_toolstream_free(&ts);
    /* not a call at all: given back as content */
    content.len = 0;
    parse_all(&tools, "x <tool_call> nothing", 1, &content, &ts);
    CHECK(ts.n_calls == 0 && strcmp(qms_buf_str(&content), "x <tool_call> nothing") == 0, "not a call: '%s'", qms_buf_str(&content));
    qms_toolstream_free(&ts);
    /* no tools given: every value is a string */
    content.len = 0;
    parse_all(NULL, "<tool_call>\n<function=f>\n<parameter=n>\n5\n</parameter>\n</function>\n</tool_call>", 0, &content, &ts);
    CHECK(ts.n_calls == 1 && strcmp(ts.calls[0].arguments, "{\"n\":\"5\"}") == 0, "no schema: %s", ts.n_calls ? ts.calls[0].arguments : "");
    qms_toolstream_free(&ts);
    qms_buf_free(&content);
    qms_json_free(&tools);
}

int main(int argc, char **argv) {
    if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        printf("usage: %s TOOL_RENDERS.txt CHAT_RENDERS.txt\n"
               "Unit tests of examples/server_json.h and examples/server_tools.h: JSON, the Qwen3-Coder\n"
               "renderer with tools (against jinja2's renders) and the tool-call parser.\n", argv[0]);
        return 0;
    }
    test_json();
    test_parser();
    test_tool_renders(argc > 1 ? argv[1] : "tests/server/tool_renders.txt");
    test_chat_renders(argc > 2 ? argv[2] : "tests/data/chat_renders.txt");
    return qmtest_summary("toolparse");
}
