/* test_chat.c - chat templates: qm_chat_render against the renders of the real jinja templates
   (tests/data/chat_renders.txt, made by tools/render_ref.mjs), qm_chat_detect on the real
   templates, the length/cap contract and bad arguments.
   Run from the repository root, or pass the tests/data folder as the first argument. */
#define QWENMOE_IMPLEMENTATION
#include "qwenmoe.h"
#include "tests/qmtest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char g_dir[512] = "tests/data";

/* Read a whole file; NUL-terminated; *len gets its size. NULL if it cannot be read. */
static char *read_file(const char *name, size_t *len) {
    char path[1024];
    FILE *f;
    char *buf;
    long n;
    snprintf(path, sizeof(path), "%s/%s", g_dir, name);
    f = fopen(path, "rb");
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return NULL;
    }
    buf = (char *)malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (!buf) return NULL;
    buf[n] = 0;
    if (len) *len = (size_t)n;
    return buf;
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}
/* "xHEX" -> malloc'd NUL-terminated bytes; NULL if malformed. */
static char *unhex(const char *s, size_t *len) {
    size_t n, i;
    char *out;
    if (s[0] != 'x') return NULL;
    s++;
    n = strlen(s);
    if (n % 2) return NULL;
    out = (char *)malloc(n / 2 + 1);
    if (!out) return NULL;
    for (i = 0; i < n / 2; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0) { free(out); return NULL; }
        out[i] = (char)(hi * 16 + lo);
    }
    out[n / 2] = 0;
    if (len) *len = n / 2;
    return out;
}

#define MAX_MSGS 16
typedef struct render_case {
    char name[128];
    char tmpl[32];
    int add_gen;
    int thinking; /* 1, 0, or -1: not passed (true) */
    int n_msgs;
    char roles[MAX_MSGS][16];
    char *contents[MAX_MSGS];
    char *expect;
    size_t expect_len;
} render_case;

static void free_case(render_case *c) {
    int i;
    for (i = 0; i < c->n_msgs; i++) free(c->contents[i]);
    free(c->expect);
    memset(c, 0, sizeof(*c));
}

static int g_renders = 0, g_families[3] = {0, 0, 0}, g_shared = 0;

static void run_case(render_case *c) {
    qm_chat_message msgs[MAX_MSGS];
    qm_chat_family fam;
    char *buf;
    int64_t n, n0, nt;
    size_t cap, half;
    int i, thinking = c->thinking != 0;
    if (strcmp(c->tmpl, "qwen3") == 0) fam = QM_CHAT_QWEN3;
    else if (strcmp(c->tmpl, "qwen3-coder") == 0) fam = QM_CHAT_QWEN3_CODER;
    else if (strcmp(c->tmpl, "chatml") == 0) fam = QM_CHAT_CHATML;
    else { CHECK(0, "case %s: unknown template '%s'", c->name, c->tmpl); return; }
    for (i = 0; i < c->n_msgs; i++) {
        msgs[i].role = c->roles[i];
        msgs[i].content = c->contents[i];
    }
    cap = c->expect_len + 16;
    buf = (char *)malloc(cap);
    if (!buf) { CHECK(0, "out of memory"); return; }
    memset(buf, '#', cap);
    n = qm_chat_render(fam, msgs, c->n_msgs, c->add_gen, thinking, buf, cap);
    CHECK(n == (int64_t)c->expect_len, "case %s (%s): length %lld, expected %zu", c->name, c->tmpl,
          (long long)n, c->expect_len);
    if (n == (int64_t)c->expect_len) {
        int same = memcmp(buf, c->expect, c->expect_len) == 0;
        CHECK(same, "case %s (%s): text differs from the jinja render", c->name, c->tmpl);
        if (!same) printf("  got:      %.*s\n  expected: %s\n", (int)n, buf, c->expect);
        CHECK(buf[n] == 0, "case %s: not NUL-terminated", c->name);
        CHECK(buf[n + 1] == '#', "case %s: wrote past the NUL", c->name);
    }
    g_renders++;
    g_families[fam]++;
    if (strncmp(c->name, "shared.", 7) == 0) g_shared++;

    /* size query, and truncation: the full length back, nothing written past cap */
    n0 = qm_chat_render(fam, msgs, c->n_msgs, c->add_gen, thinking, NULL, 0);
    CHECK(n0 == (int64_t)c->expect_len, "case %s: size query gave %lld", c->name, (long long)n0);
    half = c->expect_len / 2;
    memset(buf, '#', cap);
    nt = qm_chat_render(fam, msgs, c->n_msgs, c->add_gen, thinking, buf, half);
    CHECK(nt == (int64_t)c->expect_len, "case %s: truncated render gave %lld", c->name, (long long)nt);
    CHECK(memcmp(buf, c->expect, half) == 0, "case %s: truncated prefix differs", c->name);
    CHECK(buf[half] == '#', "case %s: wrote past cap %zu", c->name, half);
    free(buf);
}

/* Parse tests/data/chat_renders.txt and run every case. Returns the count. */
static int run_render_file(void) {
    size_t len;
    char *text = read_file("chat_renders.txt", &len), *line, *next;
    render_case c;
    int in_case = 0, n_cases = 0, lineno = 0;
    CHECK(text != NULL, "cannot read %s/chat_renders.txt (run from the repository root)", g_dir);
    if (!text) return 0;
    memset(&c, 0, sizeof(c));
    for (line = text; line && *line; line = next) {
        char kw[16], a[160];
        int g;
        char th[8];
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        lineno++;
        if (line[0] == '#' || line[0] == 0) continue;
        if (sscanf(line, "%15s", kw) != 1) continue;
        if (strcmp(kw, "case") == 0) {
            if (in_case) { CHECK(0, "line %d: case inside a case", lineno); free_case(&c); }
            memset(&c, 0, sizeof(c));
            if (sscanf(line, "case %127s %31s %d %7s", c.name, c.tmpl, &g, th) != 4) {
                CHECK(0, "line %d: bad case line", lineno);
                continue;
            }
            c.add_gen = g;
            c.thinking = th[0] == '-' ? -1 : atoi(th);
            in_case = 1;
        } else if (strcmp(kw, "msg") == 0 && in_case) {
            char *hex;
            if (c.n_msgs >= MAX_MSGS) { CHECK(0, "line %d: too many messages", lineno); continue; }
            hex = strchr(line + 4, ' ');
            if (sscanf(line, "msg %15s", a) != 1 || !hex) { CHECK(0, "line %d: bad msg", lineno); continue; }
            strcpy(c.roles[c.n_msgs], a);
            c.contents[c.n_msgs] = unhex(hex + 1, NULL);
            CHECK(c.contents[c.n_msgs] != NULL, "line %d: bad hex", lineno);
            if (c.contents[c.n_msgs]) c.n_msgs++;
        } else if (strcmp(kw, "expect") == 0 && in_case) {
            c.expect = unhex(line + 7, &c.expect_len);
            CHECK(c.expect != NULL, "line %d: bad expect hex", lineno);
        } else if (strcmp(kw, "end") == 0 && in_case) {
            if (c.expect) run_case(&c);
            free_case(&c);
            in_case = 0;
            n_cases++;
        } else {
            CHECK(0, "line %d: unexpected '%s'", lineno, kw);
        }
    }
    if (in_case) free_case(&c);
    free(text);
    return n_cases;
}

static void test_detect(void) {
    size_t len;
    int known = -1;
    char *t;
    const char *qwen25 = /* a Qwen2.5-style template: ChatML with JSON tool calls */
        "{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' + message.content"
        " + '<|im_end|>\\n' }}{%- endfor %}{{- '<tool_call>\\n{\"name\": <function-name>}' }}";
    const char *llama3 = "{{- bos_token }}{%- for m in messages %}<|start_header_id|>{{ m.role }}"
                         "<|end_header_id|>\n\n{{ m.content }}<|eot_id|>{%- endfor %}";

    t = read_file("templates/qwen3.jinja", &len);
    CHECK(t != NULL, "cannot read templates/qwen3.jinja");
    if (t) {
        known = -1;
        CHECK(qm_chat_detect(t, len, &known) == QM_CHAT_QWEN3 && known == 1, "qwen3.jinja -> QWEN3, known %d", known);
        /* only the length counts: the first 20 bytes hold none of the features */
        known = -1;
        CHECK(qm_chat_detect(t, 20, &known) == QM_CHAT_CHATML && known == 0, "qwen3.jinja[:20]: known %d", known);
        free(t);
    }
    t = read_file("templates/qwen3-coder.jinja", &len);
    CHECK(t != NULL, "cannot read templates/qwen3-coder.jinja");
    if (t) {
        known = -1;
        CHECK(qm_chat_detect(t, len, &known) == QM_CHAT_QWEN3_CODER && known == 1, "coder -> CODER, known %d", known);
        CHECK(qm_chat_detect(t, len, NULL) == QM_CHAT_QWEN3_CODER, "known may be NULL");
        free(t);
    }
    t = read_file("templates/chatml.jinja", &len);
    CHECK(t != NULL, "cannot read templates/chatml.jinja");
    if (t) {
        known = -1;
        CHECK(qm_chat_detect(t, len, &known) == QM_CHAT_CHATML && known == 1, "chatml -> CHATML, known %d", known);
        free(t);
    }
    known = -1;
    CHECK(qm_chat_detect(qwen25, strlen(qwen25), &known) == QM_CHAT_CHATML && known == 1, "qwen2.5-like: known %d", known);
    known = -1;
    CHECK(qm_chat_detect(llama3, strlen(llama3), &known) == QM_CHAT_CHATML && known == 0, "llama3: known %d", known);
    known = -1;
    CHECK(qm_chat_detect("\x01\xff garbage {{ }}", 17, &known) == QM_CHAT_CHATML && known == 0, "garbage: known %d", known);
    known = -1;
    CHECK(qm_chat_detect("", 0, &known) == QM_CHAT_CHATML && known == 0, "empty: known %d", known);
    known = -1;
    CHECK(qm_chat_detect(NULL, 10, &known) == QM_CHAT_CHATML && known == 0, "NULL: known %d", known);
    /* a template with <think> but no enable_thinking switch is not the Qwen3 one */
    known = -1;
    CHECK(qm_chat_detect("<|im_start|>assistant\n<think>\n", 30, &known) == QM_CHAT_CHATML && known == 1,
          "think without enable_thinking: known %d", known);
    /* XML tool calls next to <think> are not the Coder template */
    {
        const char *mix = "<|im_start|><tool_call><function=f><parameter=p> enable_thinking <think>";
        CHECK(qm_chat_detect(mix, strlen(mix), NULL) == QM_CHAT_QWEN3, "mixed features -> QWEN3");
    }
}

static void test_contract(void) {
    qm_chat_message m[2];
    char buf[64];
    const char *expect = "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n";
    int64_t n, want = (int64_t)strlen(expect);
    int fam;
    m[0].role = "user";
    m[0].content = "Hi";
    for (fam = 0; fam < 3; fam++) {
        /* cap == length: every byte, no room for the NUL, nothing past */
        memset(buf, '#', sizeof(buf));
        n = qm_chat_render((qm_chat_family)fam, m, 1, 1, 1, buf, (size_t)want);
        CHECK(n == want && memcmp(buf, expect, (size_t)want) == 0 && buf[want] == '#',
              "family %d: cap == length", fam);
        memset(buf, '#', sizeof(buf));
        n = qm_chat_render((qm_chat_family)fam, m, 1, 1, 1, buf, (size_t)want + 1);
        CHECK(n == want && buf[want] == 0 && buf[want + 1] == '#', "family %d: cap == length + 1", fam);
        memset(buf, '#', sizeof(buf));
        n = qm_chat_render((qm_chat_family)fam, m, 1, 1, 1, buf, 1);
        CHECK(n == want && buf[0] == '<' && buf[1] == '#', "family %d: cap 1", fam);
        /* no messages: only the generation prompt (what @huggingface/jinja renders) */
        n = qm_chat_render((qm_chat_family)fam, NULL, 0, 1, 1, buf, sizeof(buf));
        CHECK(n == 22 && strcmp(buf, "<|im_start|>assistant\n") == 0, "family %d: no messages", fam);
        n = qm_chat_render((qm_chat_family)fam, NULL, 0, 0, 1, buf, sizeof(buf));
        CHECK(n == 0 && buf[0] == 0, "family %d: nothing at all", fam);
    }
    n = qm_chat_render(QM_CHAT_QWEN3, NULL, 0, 1, 0, buf, sizeof(buf));
    CHECK(n == 41 && strcmp(buf, "<|im_start|>assistant\n<think>\n\n</think>\n\n") == 0, "qwen3 no messages, no thinking");

    /* bad arguments: an error, and the buffer left alone */
    memset(buf, '#', sizeof(buf));
    m[1].role = NULL;
    m[1].content = "x";
    CHECK(qm_chat_render(QM_CHAT_QWEN3, m, 2, 1, 1, buf, sizeof(buf)) == QM_ERR_INVALID_ARG, "NULL role");
    m[1].role = "user";
    m[1].content = NULL;
    CHECK(qm_chat_render(QM_CHAT_QWEN3_CODER, m, 2, 1, 1, buf, sizeof(buf)) == QM_ERR_INVALID_ARG, "NULL content");
    m[1].content = "x";
    m[1].role = "developer";
    CHECK(qm_chat_render(QM_CHAT_CHATML, m, 2, 1, 1, buf, sizeof(buf)) == QM_ERR_INVALID_ARG, "unknown role");
    m[1].role = "User";
    CHECK(qm_chat_render(QM_CHAT_QWEN3, m, 2, 1, 1, buf, sizeof(buf)) == QM_ERR_INVALID_ARG, "roles are case-sensitive");
    m[1].role = "";
    CHECK(qm_chat_render(QM_CHAT_QWEN3, m, 2, 1, 1, buf, sizeof(buf)) == QM_ERR_INVALID_ARG, "empty role");
    CHECK(buf[0] == '#', "buffer touched on error");
    CHECK(qm_chat_render(QM_CHAT_QWEN3, m, -1, 1, 1, buf, sizeof(buf)) == QM_ERR_INVALID_ARG, "n_msgs < 0");
    CHECK(qm_chat_render(QM_CHAT_QWEN3, NULL, 1, 1, 1, buf, sizeof(buf)) == QM_ERR_INVALID_ARG, "msgs NULL");
    CHECK(qm_chat_render(QM_CHAT_QWEN3, m, 1, 1, 1, NULL, 10) == QM_ERR_INVALID_ARG, "buf NULL, cap 10");
    CHECK(qm_chat_render((qm_chat_family)3, m, 1, 1, 1, buf, sizeof(buf)) == QM_ERR_INVALID_ARG, "family 3");
    CHECK(qm_chat_render((qm_chat_family)-1, m, 1, 1, 1, buf, sizeof(buf)) == QM_ERR_INVALID_ARG, "family -1");
}

/* Many messages (more than the renderer keeps on its stack): user/assistant turns without
   reasoning render as plain ChatML blocks in all three families. */
static void test_many(void) {
    enum { N = 301 };
    static qm_chat_message m[N];
    static char contents[N][16];
    static char expect[N * 64], got[N * 64];
    size_t e = 0;
    int i, fam;
    for (i = 0; i < N; i++) {
        m[i].role = i % 2 ? "assistant" : "user";
        sprintf(contents[i], "turn %d", i);
        m[i].content = contents[i];
        e += (size_t)sprintf(expect + e, "<|im_start|>%s\n%s<|im_end|>\n", m[i].role, contents[i]);
    }
    e += (size_t)sprintf(expect + e, "<|im_start|>assistant\n");
    for (fam = 0; fam < 3; fam++) {
        int64_t n = qm_chat_render((qm_chat_family)fam, m, N, 1, 1, got, sizeof(got));
        CHECK(n == (int64_t)e && strcmp(got, expect) == 0, "family %d: %d turns", fam, N);
    }
}

int main(int argc, char **argv) {
    int n;
    if (argc > 1) snprintf(g_dir, sizeof(g_dir), "%s", argv[1]);
    n = run_render_file();
    printf("chat: %d cases from chat_renders.txt (qwen3 %d, coder %d, chatml %d; %d shared)\n", n,
           g_families[QM_CHAT_QWEN3], g_families[QM_CHAT_QWEN3_CODER], g_families[QM_CHAT_CHATML], g_shared);
    CHECK(n >= 300 && g_renders == n, "expected >= 300 render cases, ran %d of %d", g_renders, n);
    CHECK(g_shared == 5, "expected the 5 shared vector cases, found %d", g_shared);
    test_detect();
    test_contract();
    test_many();
    return qmtest_summary("chat");
}
