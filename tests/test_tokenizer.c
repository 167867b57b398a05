/* test_tokenizer.c - the byte-level BPE tokenizer against Hugging Face tokenizers.
   usage: test_tokenizer MODEL.gguf [DATA]
     MODEL.gguf  a GGUF with the real Qwen3 vocabulary (qwenmoe-mkmodel --tokenizer ...)
     DATA        tests/data (or the file tests/data/tokenizer_vectors.txt): reference
                 encodings and decodings made by HF tokenizers (tests/data/tokenizer_vectors.mjs)
   Also: a tiny hand-made vocabulary (BPE order, special tokens, long words), the UTF-8 stream,
   lookups, the end-of-generation set and the load errors, on GGUF images built in memory. */
#define QWENMOE_IMPLEMENTATION
#include "qwenmoe.h"
#include "tests/qmtest.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- small helpers ---------------------------------------------------------------------- */

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}
/* "-" or hex -> bytes (malloc'd, NUL-terminated); length in *len; NULL on bad hex. */
static char *unhex(const char *s, size_t *len) {
    size_t n = strcmp(s, "-") ? strlen(s) : 0, i;
    char *o = (char *)malloc(n / 2 + 1);
    if (!o || n % 2) { free(o); return NULL; }
    for (i = 0; i < n / 2; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0) { free(o); return NULL; }
        o[i] = (char)(hi * 16 + lo);
    }
    o[n / 2] = 0;
    *len = n / 2;
    return o;
}
/* "-" or "1,2,3" -> ids; returns the count. */
static int parse_ids(const char *s, int32_t *ids, int cap) {
    int n = 0;
    if (!strcmp(s, "-")) return 0;
    while (*s && n < cap) {
        char *end;
        ids[n++] = (int32_t)strtol(s, &end, 10);
        s = *end == ',' ? end + 1 : end;
        if (end == s && *s) break;
    }
    return n;
}
static void print_ids(const char *what, const int32_t *ids, int n) {
    int i;
    printf("    %s:", what);
    for (i = 0; i < n && i < 60; i++) printf(" %d", (int)ids[i]);
    printf(n > 60 ? " ...\n" : "\n");
}
static int same_ids(const int32_t *a, int na, const int32_t *b, int nb) {
    return na == nb && (na == 0 || memcmp(a, b, sizeof(int32_t) * (size_t)na) == 0);
}
/* Tokenize into a fresh buffer; *n gets the count (or the negative error). */
static int32_t *tok(const qm_tokenizer *t, const char *s, size_t len, int flags, int *n) {
    int cap = (int)len * 3 + 8;
    int32_t *ids = (int32_t *)malloc(sizeof(int32_t) * (size_t)cap);
    *n = qm_tokenize(t, s, len, ids, cap, flags);
    return ids;
}
/* Decode into a fresh NUL-terminated buffer. */
static char *detok(const qm_tokenizer *t, const int32_t *ids, int n, int flags, int64_t *len) {
    char *buf;
    *len = qm_detokenize(t, ids, n, NULL, 0, flags);
    if (*len < 0) return NULL;
    buf = (char *)malloc((size_t)*len + 1);
    qm_detokenize(t, ids, n, buf, (size_t)*len + 1, flags);
    return buf;
}

/* ---- an in-memory GGUF writer, for the hand-made vocabularies and the error paths -------- */

typedef struct gbuf {
    unsigned char *p;
    size_t n, cap;
    int n_kv;
} gbuf;
static void g_put(gbuf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        while (b->n + n > b->cap) b->cap = b->cap ? b->cap * 2 : 4096;
        b->p = (unsigned char *)realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void g_u32(gbuf *b, uint32_t v) {
    unsigned char x[4];
    int i;
    for (i = 0; i < 4; i++) x[i] = (unsigned char)(v >> (8 * i));
    g_put(b, x, 4);
}
static void g_u64(gbuf *b, uint64_t v) {
    unsigned char x[8];
    int i;
    for (i = 0; i < 8; i++) x[i] = (unsigned char)(v >> (8 * i));
    g_put(b, x, 8);
}
static void g_str(gbuf *b, const char *s, size_t n) { g_u64(b, n); g_put(b, s, n); }
static void g_key(gbuf *b, const char *k, uint32_t type) { g_str(b, k, strlen(k)); g_u32(b, type); b->n_kv++; }
static void kv_str(gbuf *b, const char *k, const char *v) { g_key(b, k, QM_GGUF_STRING); g_str(b, v, strlen(v)); }
static void kv_u32(gbuf *b, const char *k, uint32_t v) { g_key(b, k, QM_GGUF_UINT32); g_u32(b, v); }
static void kv_strs(gbuf *b, const char *k, const char *const *v, const size_t *lens, int n) {
    int i;
    g_key(b, k, QM_GGUF_ARRAY);
    g_u32(b, QM_GGUF_STRING);
    g_u64(b, (uint64_t)n);
    for (i = 0; i < n; i++) g_str(b, v[i], lens ? lens[i] : strlen(v[i]));
}
static void kv_i32s(gbuf *b, const char *k, const int32_t *v, int n) {
    int i;
    g_key(b, k, QM_GGUF_ARRAY);
    g_u32(b, QM_GGUF_INT32);
    g_u64(b, (uint64_t)n);
    for (i = 0; i < n; i++) g_u32(b, (uint32_t)v[i]);
}
/* The finished image: header + the kvs written so far + padding. */
static unsigned char *g_finish(const gbuf *kvs, size_t *size) {
    gbuf h;
    memset(&h, 0, sizeof(h));
    g_put(&h, "GGUF", 4);
    g_u32(&h, 3);
    g_u64(&h, 0);
    g_u64(&h, (uint64_t)kvs->n_kv);
    g_put(&h, kvs->p, kvs->n);
    while (h.n % 32) g_put(&h, "", 1);
    *size = h.n;
    return h.p;
}

/* GPT-2 byte-level character of byte b, as UTF-8 (independent of the library's table: the
   68 unprintable bytes 0..32, 127..160, 173 go to U+0100.. in order). */
static size_t byte_char(unsigned b, char *o) {
    unsigned cp = b, i, n = 0;
    if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174)) {
        for (i = 0; i < b; i++)
            if (!((i >= 33 && i <= 126) || (i >= 161 && i <= 172) || i >= 174)) n++;
        cp = 256 + n;
    }
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    o[0] = (char)(0xC0 | (cp >> 6));
    o[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

/* The tiny vocabulary: ids 0..255 are the byte characters (id = byte), then: */
enum { T_AB = 256, T_BC, T_ABC, T_AA, T_AAAA, T_SPECIAL, T_USER, T_SPECIAL_LONG, T_PAD, T_N };
static const char *const tiny_extra[] = {"ab", "bc", "abc", "aa", "aaaa", "<s>", "<u>", "<s>x", "[PAD]"};

typedef struct tiny_opts {
    const char *model, *pre;
    int omit;              /* 1 model, 2 pre, 3 tokens, 4 token_type, 5 merges */
    int n_types;           /* token_type entries (T_N normally) */
    int bad_type;          /* put this type on token 0 when non-zero */
    int empty_token;       /* make token 5 empty */
    int dup_merge;         /* append "a b" again as the last merge */
    const char *bad_merge; /* an extra merge */
    int64_t eos;           /* -1: no key */
    int tokens_as_ints;
} tiny_opts;

static unsigned char *tiny_gguf(const tiny_opts *o, size_t *size) {
    static const char *const merges[] = {"a b", "b c", "ab c", "a a", "aa aa", "a b", "x y"};
    const char *tokens[T_N];
    size_t lens[T_N];
    char chars[256][2];
    int32_t types[T_N];
    int i, n_merges = 5;
    const char *mg[8];
    gbuf b;
    unsigned char *img;
    memset(&b, 0, sizeof(b));
    for (i = 0; i < 256; i++) { lens[i] = byte_char((unsigned)i, chars[i]); tokens[i] = chars[i]; types[i] = QM_TOKEN_NORMAL; }
    for (i = 256; i < T_N; i++) { tokens[i] = tiny_extra[i - 256]; lens[i] = strlen(tokens[i]); types[i] = QM_TOKEN_NORMAL; }
    types[T_SPECIAL] = QM_TOKEN_CONTROL;
    types[T_SPECIAL_LONG] = QM_TOKEN_CONTROL;
    types[T_USER] = QM_TOKEN_USER_DEFINED;
    types[T_PAD] = QM_TOKEN_UNUSED;
    if (o->bad_type) types[0] = o->bad_type;
    if (o->empty_token) lens[5] = 0;
    for (i = 0; i < 5; i++) mg[i] = merges[i];
    if (o->dup_merge) mg[n_merges++] = merges[5];
    if (o->bad_merge) mg[n_merges++] = o->bad_merge;
    kv_str(&b, "general.architecture", "qwen3moe");
    if (o->omit != 1) kv_str(&b, "tokenizer.ggml.model", o->model ? o->model : "gpt2");
    if (o->omit != 2) kv_str(&b, "tokenizer.ggml.pre", o->pre ? o->pre : "qwen2");
    if (o->omit != 3) {
        if (o->tokens_as_ints) kv_i32s(&b, "tokenizer.ggml.tokens", types, T_N);
        else kv_strs(&b, "tokenizer.ggml.tokens", tokens, lens, T_N);
    }
    if (o->omit != 4) kv_i32s(&b, "tokenizer.ggml.token_type", types, o->n_types ? o->n_types : T_N);
    if (o->omit != 5) kv_strs(&b, "tokenizer.ggml.merges", mg, NULL, n_merges);
    if (o->eos >= 0) kv_u32(&b, "tokenizer.ggml.eos_token_id", (uint32_t)o->eos);
    img = g_finish(&b, size);
    free(b.p);
    return img;
}

/* Load a tiny variant; returns the result, the tokenizer in *t (NULL on error). */
static qm_result tiny_load(const tiny_opts *o, qm_tokenizer **t, qm_error *err) {
    size_t size;
    unsigned char *img = tiny_gguf(o, &size);
    qm_gguf *g = NULL;
    qm_result r;
    *t = NULL;
    err->message[0] = 0;
    r = qm_gguf_open_memory(img, size, NULL, &g, err);
    if (r == QM_OK) {
        r = qm_tokenizer_load(g, t, err);
        qm_gguf_close(g); /* the tokenizer keeps its own copies */
    }
    free(img);
    return r;
}
static tiny_opts tiny_default(void) {
    tiny_opts o;
    memset(&o, 0, sizeof(o));
    o.eos = T_SPECIAL;
    return o;
}

static void test_tiny(void) {
    tiny_opts o = tiny_default();
    qm_tokenizer *t;
    qm_error err;
    int32_t ids[64], *big;
    int n, i;
    char *text;
    clock_t c0;
    double secs;

    CHECK(tiny_load(&o, &t, &err) == QM_OK, "tiny vocab loads: %s", err.message);
    if (!t) return;
    CHECK(qm_tokenizer_n_vocab(t) == T_N, "n_vocab %d", (int)qm_tokenizer_n_vocab(t));
    /* "abc": (a,b) rank 0 first, then (ab,c) rank 2 */
    n = qm_tokenize(t, "abc", 3, ids, 64, 0);
    CHECK(n == 1 && ids[0] == T_ABC, "abc -> [abc], got n=%d first=%d", n, (int)ids[0]);
    /* "bcab": (a,b) rank 0 beats (b,c) rank 1, then (b,c): [bc, ab] */
    n = qm_tokenize(t, "bcab", 4, ids, 64, 0);
    CHECK(n == 2 && ids[0] == T_BC && ids[1] == T_AB, "bcab -> [bc ab], got n=%d %d %d", n, (int)ids[0], (int)ids[1]);
    /* "aaaaa": (a,a) at 0 and 2, then (aa,aa): [aaaa, a] */
    n = qm_tokenize(t, "aaaaa", 5, ids, 64, 0);
    CHECK(n == 2 && ids[0] == T_AAAA && ids[1] == 'a', "aaaaa -> [aaaa a], got n=%d %d %d", n, (int)ids[0], (int)ids[1]);
    /* "xbc d": pre-tokens "xbc", " d"; BPE: x [bc]; ' ' is byte char U+0120 (id 32), d */
    n = qm_tokenize(t, "xbc d", 5, ids, 64, 0);
    CHECK(n == 4 && ids[0] == 'x' && ids[1] == T_BC && ids[2] == ' ' && ids[3] == 'd',
          "xbc d -> [x bc ' ' d], got n=%d", n);
    /* special tokens: CONTROL and USER_DEFINED are matched, longest first; not UNUSED */
    n = qm_tokenize(t, "a<s>xb<u>[PAD]", 14, ids, 64, QM_TOKENIZE_SPECIAL);
    CHECK(n >= 4 && ids[0] == 'a' && ids[1] == T_SPECIAL_LONG && ids[2] == 'b' && ids[3] == T_USER,
          "special split: n=%d %d %d %d %d", n, (int)ids[0], (int)ids[1], (int)ids[2], (int)ids[3]);
    for (i = 4; i < n; i++) CHECK(ids[i] != T_PAD, "UNUSED token [PAD] must not be matched");
    n = qm_tokenize(t, "<s>", 3, ids, 64, 0);
    CHECK(n == 3 && ids[0] == '<' && ids[1] == 's' && ids[2] == '>', "no special matching without the flag: n=%d", n);
    /* cap: the full count comes back, nothing is written past cap */
    ids[1] = -7;
    n = qm_tokenize(t, "abc abc", 7, ids, 1, 0);
    CHECK(n == 3 && ids[0] == T_ABC && ids[1] == -7, "cap 1: n=%d ids[1]=%d", n, (int)ids[1]);
    CHECK(qm_tokenize(t, "abc", 3, NULL, 0, 0) == 1, "count only with a NULL buffer");
    CHECK(qm_tokenize(t, NULL, 0, NULL, 0, 0) == 0, "empty text");
    CHECK(qm_tokenize(t, NULL, 3, ids, 64, 0) == QM_ERR_INVALID_ARG, "NULL text");
    CHECK(qm_tokenize(t, "a", 1, ids, -1, 0) == QM_ERR_INVALID_ARG, "negative cap");
    CHECK(qm_tokenize(NULL, "a", 1, ids, 64, 0) == QM_ERR_INVALID_ARG, "NULL tokenizer");
    /* eos from the key, EOG contains it; no bos key */
    CHECK(qm_token_eos(t) == T_SPECIAL && qm_token_is_eog(t, T_SPECIAL), "eos %d", (int)qm_token_eos(t));
    CHECK(qm_token_bos(t) == -1, "no bos key -> -1, got %d", (int)qm_token_bos(t));
    /* decoding: UNUSED tokens give nothing; CONTROL dropped only with SKIP_SPECIAL; USER_DEFINED kept */
    {
        int32_t d[5];
        int64_t len;
        char *s;
        d[0] = 'a'; d[1] = T_SPECIAL; d[2] = T_USER; d[3] = T_PAD; d[4] = ' ';
        s = detok(t, d, 5, 0, &len);
        CHECK(s && len == 8 && !strcmp(s, "a<s><u> "), "decode keep: '%s'", s ? s : "(null)");
        free(s);
        s = detok(t, d, 5, QM_DETOK_SKIP_SPECIAL, &len);
        CHECK(s && len == 5 && !strcmp(s, "a<u> "), "decode skip: '%s'", s ? s : "(null)");
        free(s);
    }

    /* 100,000 'a' in one word: 25,000 x "aaaa", in well under a second (no O(n^2)) */
    text = (char *)malloc(100000);
    memset(text, 'a', 100000);
    big = (int32_t *)malloc(sizeof(int32_t) * 100000);
    c0 = clock();
    n = qm_tokenize(t, text, 100000, big, 100000, 0);
    secs = (double)(clock() - c0) / CLOCKS_PER_SEC;
    CHECK(n == 25000, "100k a -> %d tokens", n);
    for (i = 0; i < n && i < 25000; i++)
        if (big[i] != T_AAAA) break;
    CHECK(i == 25000, "all aaaa (first other at %d)", i);
    CHECK(secs < 2.0, "100k-byte word took %.3f s", secs);
    free(text);
    free(big);
    qm_tokenizer_free(t);

    /* a duplicate merge: the later rank wins, as in HF's merge map: (a,b) is now rank 5,
       so (b,c) rank 1 goes first: "abc" -> [a, bc] */
    o = tiny_default();
    o.dup_merge = 1;
    CHECK(tiny_load(&o, &t, &err) == QM_OK, "dup merges load: %s", err.message);
    if (t) {
        n = qm_tokenize(t, "abc", 3, ids, 64, 0);
        CHECK(n == 2 && ids[0] == 'a' && ids[1] == T_BC, "dup merge: abc -> [a bc], got n=%d %d", n, (int)ids[0]);
        qm_tokenizer_free(t);
    }
}

static void expect_error(const tiny_opts *o, qm_result want, const char *needle, const char *what) {
    qm_tokenizer *t;
    qm_error err;
    qm_result r = tiny_load(o, &t, &err);
    CHECK(r == want, "%s: result %d (%s), want %d; message: %s", what, (int)r, qm_result_string(r), (int)want, err.message);
    CHECK(t == NULL, "%s: no tokenizer on error", what);
    CHECK(strstr(err.message, needle) != NULL, "%s: message '%s' should name '%s'", what, err.message, needle);
    qm_tokenizer_free(t);
}

static void test_errors(void) {
    tiny_opts o;
    qm_tokenizer *t = (qm_tokenizer *)&o;
    qm_error err;
    o = tiny_default(); o.omit = 1; expect_error(&o, QM_ERR_NOT_FOUND, "tokenizer.ggml.model", "missing model");
    o = tiny_default(); o.model = "llama"; expect_error(&o, QM_ERR_UNSUPPORTED, "'llama'", "model llama");
    o = tiny_default(); o.omit = 2; expect_error(&o, QM_ERR_NOT_FOUND, "tokenizer.ggml.pre", "missing pre");
    o = tiny_default(); o.pre = "llama-bpe"; expect_error(&o, QM_ERR_UNSUPPORTED, "'llama-bpe'", "pre llama-bpe");
    o = tiny_default(); o.omit = 3; expect_error(&o, QM_ERR_NOT_FOUND, "tokenizer.ggml.tokens", "missing tokens");
    o = tiny_default(); o.omit = 4; expect_error(&o, QM_ERR_NOT_FOUND, "tokenizer.ggml.token_type", "missing token_type");
    o = tiny_default(); o.omit = 5; expect_error(&o, QM_ERR_NOT_FOUND, "tokenizer.ggml.merges", "missing merges");
    o = tiny_default(); o.tokens_as_ints = 1; expect_error(&o, QM_ERR_TYPE, "tokenizer.ggml.tokens", "tokens not strings");
    o = tiny_default(); o.n_types = T_N - 1; expect_error(&o, QM_ERR_FORMAT, "tokenizer.ggml.token_type", "type count");
    o = tiny_default(); o.bad_type = 9; expect_error(&o, QM_ERR_FORMAT, "tokenizer.ggml.token_type", "type 9");
    o = tiny_default(); o.empty_token = 1; expect_error(&o, QM_ERR_FORMAT, "token 5 is empty", "empty token");
    o = tiny_default(); o.bad_merge = "x y"; expect_error(&o, QM_ERR_FORMAT, "tokenizer.ggml.merges", "merge to unknown token");
    o = tiny_default(); o.bad_merge = "abc"; expect_error(&o, QM_ERR_FORMAT, "entry 5", "merge without space");
    o = tiny_default(); o.eos = T_N; expect_error(&o, QM_ERR_FORMAT, "tokenizer.ggml.eos_token_id", "eos out of range");
    CHECK(qm_tokenizer_load(NULL, &t, &err) == QM_ERR_INVALID_ARG && t == NULL, "NULL gguf");
    CHECK(qm_tokenizer_load(NULL, NULL, &err) == QM_ERR_INVALID_ARG, "NULL out");
}

static void test_stream(void) {
    qm_utf8_stream s;
    char out[64];
    size_t n;
    memset(&s, 0, sizeof(s));
    /* U+4F60 = E4 BD A0 split over three pushes */
    n = qm_utf8_stream_push(&s, "x\xE4", 2, out);
    CHECK(n == 1 && out[0] == 'x', "held back: n=%u", (unsigned)n);
    n = qm_utf8_stream_push(&s, "\xBD", 1, out);
    CHECK(n == 0, "still incomplete: n=%u", (unsigned)n);
    n = qm_utf8_stream_push(&s, "\xA0y", 2, out);
    CHECK(n == 4 && !memcmp(out, "\xE4\xBD\xA0y", 4), "completed: n=%u", (unsigned)n);
    CHECK(qm_utf8_stream_flush(&s, out) == 0, "nothing to flush");
    /* a broken prefix is one U+FFFD, the byte that broke it starts over */
    n = qm_utf8_stream_push(&s, "\xE4\xBD", 2, out);
    n = qm_utf8_stream_push(&s, "a", 1, out);
    CHECK(n == 4 && !memcmp(out, "\xEF\xBF\xBD" "a", 4), "E4 BD a -> FFFD a: n=%u", (unsigned)n);
    /* lone continuation, invalid leads, overlong, surrogate: one U+FFFD per maximal subpart */
    n = qm_utf8_stream_push(&s, "\x80\xC0\xAF\xED\xA0\x80\xF0\x9F\x98\x80", 10, out);
    CHECK(n == 6 * 3 + 4 && !memcmp(out + 18, "\xF0\x9F\x98\x80", 4), "invalid mix: n=%u", (unsigned)n);
    /* an incomplete character at the end is flushed as U+FFFD */
    n = qm_utf8_stream_push(&s, "\xF0\x9F\x98", 3, out);
    CHECK(n == 0, "3 of 4 held: n=%u", (unsigned)n);
    n = qm_utf8_stream_flush(&s, out);
    CHECK(n == 3 && !memcmp(out, "\xEF\xBF\xBD", 3) && s.n_pending == 0, "flush -> FFFD: n=%u", (unsigned)n);
}

/* ---- the real vocabulary ------------------------------------------------------------------- */

static void test_vectors(const qm_tokenizer *t, const char *path) {
    FILE *f = fopen(path, "rb");
    char line[1 << 16];
    int n_e = 0, n_d = 0, n_p = 0;
    int32_t *want = (int32_t *)malloc(sizeof(int32_t) * 16384);
    CHECK(f != NULL, "cannot open %s", path);
    if (!f) { free(want); return; }
    while (fgets(line, sizeof(line), f)) {
        char kind[4], name[128], a[sizeof(line)], b[sizeof(line)];
        int flag;
        size_t len;
        if (line[0] == '#' || line[0] == '\n') continue;
        if (sscanf(line, "%3s %d %127s %s %s", kind, &flag, name, a, b) != 5) {
            CHECK(0, "bad line in %s: %.80s", path, line);
            continue;
        }
        if (!strcmp(kind, "E")) {
            char *text = unhex(a, &len);
            int nw = parse_ids(b, want, 16384), n;
            int32_t *got;
            if (!text) { CHECK(0, "bad hex in case %s", name); continue; }
            got = tok(t, text, len, flag ? QM_TOKENIZE_SPECIAL : 0, &n);
            CHECK(same_ids(got, n, want, nw), "encode %s (special=%d): %d ids, want %d", name, flag, n, nw);
            if (!same_ids(got, n, want, nw)) { print_ids("got ", got, n); print_ids("want", want, nw); }
            /* and back: the bytes of the ids are the NFC text (a prefix check on the decode) */
            free(got);
            free(text);
            n_e++;
        } else if (!strcmp(kind, "D")) {
            size_t wl;
            char *wtext = unhex(b, &wl), *got;
            int nw = parse_ids(a, want, 16384);
            int64_t gl;
            if (!wtext) { CHECK(0, "bad hex in case %s", name); continue; }
            got = detok(t, want, nw, flag ? QM_DETOK_SKIP_SPECIAL : 0, &gl);
            CHECK(got && gl == (int64_t)wl && !memcmp(got, wtext, wl), "decode %s (skip=%d): '%s' want '%s'", name, flag,
                  got ? got : "(null)", wtext);
            free(got);
            free(wtext);
            n_d++;
        } else if (!strcmp(kind, "P")) {
            /* the pre-tokenizer alone (white box: the static qm__pretok_next of the
               implementation this file includes), on text HF already normalised */
            char *text = unhex(a, &len);
            int nw = parse_ids(b, want, 16384), ng = 0, same = 1;
            size_t i = 0, nu = 0, p = 0;
            uint32_t *u = (uint32_t *)malloc(sizeof(uint32_t) * (len + 1));
            unsigned char tmp[4];
            if (!text || !u) { CHECK(0, "bad hex in case %s", name); free(text); free(u); continue; }
            while (i < len) i += qm__utf8_next((const unsigned char *)text + i, len - i, &u[nu++]);
            while (p < nu) {
                size_t e = qm__pretok_next(u, nu, p), bytes = 0;
                for (; p < e; p++) bytes += qm__utf8_put(u[p], tmp);
                if (ng >= nw || want[ng] != (int32_t)bytes) same = 0;
                ng++;
            }
            CHECK(same && ng == nw, "pre-tokens of %s: %d pieces, want %d", name, ng, nw);
            free(u);
            free(text);
            n_p++;
        } else CHECK(0, "unknown line kind '%s'", kind);
    }
    fclose(f);
    free(want);
    CHECK(n_e >= 100 && n_d >= 9 && n_p >= 50, "read %d encode, %d decode, %d pre-tokenizer cases from %s", n_e, n_d,
          n_p, path);
    printf("# vectors: %d encode cases, %d decode cases, %d pre-tokenizer cases\n", n_e, n_d, n_p);
}

static void test_real(const qm_tokenizer *t) {
    static const int32_t eog[] = {151643, 151645, 151662, 151663, 151664};
    static const int32_t not_eog[] = {151644, 151659, 151660, 151661, 151667, 151668, 151657, 9707, 0, 198};
    char buf[64];
    int32_t ids[64];
    int n, i;
    int64_t len;
    qm_str s;

    CHECK(qm_tokenizer_n_vocab(t) >= 151669, "n_vocab %d", (int)qm_tokenizer_n_vocab(t));
    /* lookups (ids from the vectors: "Hello" 9707, "Ġworld" 1879) */
    CHECK(qm_token_lookup(t, "Hello", 5) == 9707, "lookup Hello");
    CHECK(qm_token_lookup(t, "\xC4\xA0world", 7) == 1879, "lookup Ġworld");
    CHECK(qm_token_lookup(t, "<|im_end|>", 10) == 151645, "lookup <|im_end|>");
    CHECK(qm_token_lookup(t, "<think>", 7) == 151667, "lookup <think>");
    CHECK(qm_token_lookup(t, "no such token, surely", 21) == -1, "lookup miss");
    CHECK(qm_token_lookup(t, "", 0) == -1, "lookup empty");
    s = qm_token_text(t, 1879);
    CHECK(s.len == 7 && !memcmp(s.ptr, "\xC4\xA0world", 7), "text of 1879");
    s = qm_token_text(t, -1);
    CHECK(s.ptr == NULL && s.len == 0, "text out of range");
    s = qm_token_text(t, qm_tokenizer_n_vocab(t));
    CHECK(s.ptr == NULL && s.len == 0, "text past the end");
    CHECK(qm_token_type(t, 9707) == QM_TOKEN_NORMAL, "type normal");
    CHECK(qm_token_type(t, 151645) == QM_TOKEN_CONTROL, "type <|im_end|> control");
    CHECK(qm_token_type(t, -5) < 0 && qm_token_type(t, qm_tokenizer_n_vocab(t)) < 0, "type out of range");
    n = qm_token_to_bytes(t, 1879, buf, sizeof(buf));
    CHECK(n == 6 && !memcmp(buf, " world", 6), "bytes of Ġworld: %d", n);
    n = qm_token_to_bytes(t, 188, buf, sizeof(buf));
    CHECK(n == 1 && buf[0] == 0, "token 188 is the byte 00: %d", n);
    n = qm_token_to_bytes(t, 151645, buf, 3);
    CHECK(n == 10 && !memcmp(buf, "<|i", 3), "truncated bytes: full length back");
    CHECK(qm_token_to_bytes(t, 1 << 30, buf, 64) < 0, "bytes out of range");

    /* end of generation: llama.cpp's set for Qwen3 */
    for (i = 0; i < 5; i++) CHECK(qm_token_is_eog(t, eog[i]), "%d is EOG", (int)eog[i]);
    for (i = 0; i < 10; i++) CHECK(!qm_token_is_eog(t, not_eog[i]), "%d is not EOG", (int)not_eog[i]);
    CHECK(!qm_token_is_eog(t, -1), "-1 is not EOG");
    CHECK(qm_token_is_eog(t, qm_token_eos(t)), "eos %d is EOG", (int)qm_token_eos(t));
    CHECK(qm_token_bos(t) >= -1 && qm_token_bos(t) < qm_tokenizer_n_vocab(t), "bos in range");

    /* invalid UTF-8: each bad byte is its own unit, mapped to its byte-level token:
       FF -> "ÿ" (U+00FF), 80 -> U+0122 ("Ģ": bytes 0..32 are U+0100..U+0120, 7F..A0 follow) */
    n = qm_tokenize(t, "\xFF", 1, ids, 64, 0);
    CHECK(n == 1 && ids[0] == qm_token_lookup(t, "\xC3\xBF", 2), "FF alone: n=%d", n);
    n = qm_tokenize(t, "\x80", 1, ids, 64, 0);
    CHECK(n == 1 && ids[0] == qm_token_lookup(t, "\xC4\xA2", 2), "80 alone: n=%d", n);
    {
        static const char bad[] = "ab\xFF\xFE cd \xE4\xBD x\xED\xA0\x80y \xC0\xAF";
        int32_t *got = tok(t, bad, sizeof(bad) - 1, QM_TOKENIZE_SPECIAL, &n);
        char raw[64];
        int o = 0;
        CHECK(n > 0, "invalid UTF-8 tokenizes: %d", n);
        for (i = 0; i < n && o < 60; i++) o += qm_token_to_bytes(t, got[i], raw + o, 64 - o);
        CHECK(o == (int)sizeof(bad) - 1 && !memcmp(raw, bad, sizeof(bad) - 1), "the ids' bytes are the input bytes");
        len = qm_detokenize(t, got, n, buf, sizeof(buf), 0);
        CHECK(len == 34 && !strcmp(buf, "ab\xEF\xBF\xBD\xEF\xBF\xBD cd \xEF\xBF\xBD x\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBDy \xEF\xBF\xBD\xEF\xBF\xBD"),
              "lossy decode: %d '%s'", (int)len, buf);
        free(got);
    }
    /* detokenize: length when the buffer is short, NUL only when it fits */
    ids[0] = 9707; ids[1] = 1879;
    memset(buf, 'Z', sizeof(buf));
    len = qm_detokenize(t, ids, 2, buf, 5, 0);
    CHECK(len == 11 && !memcmp(buf, "Hello", 5) && buf[5] == 'Z', "short buffer: %d", (int)len);
    len = qm_detokenize(t, ids, 2, buf, 11, 0);
    CHECK(len == 11 && buf[11] == 'Z', "exact fit has no NUL");
    len = qm_detokenize(t, ids, 2, buf, 12, 0);
    CHECK(len == 11 && buf[11] == 0, "NUL when it fits");
    ids[1] = -3;
    CHECK(qm_detokenize(t, ids, 2, buf, sizeof(buf), 0) < 0, "bad id -> error");
    CHECK(qm_detokenize(t, NULL, 0, NULL, 0, 0) == 0, "nothing to decode");

    /* a long word with no spaces (100 KB of CJK, and of digits+letters), quickly, and back */
    {
        size_t L = 102400, k;
        char *text = (char *)malloc(L + 1), *back;
        int32_t *got;
        clock_t c0;
        double secs;
        for (k = 0; k + 3 <= L; k += 3) memcpy(text + k, (k / 3) % 7 ? "\xE4\xBD\xA0" : "\xE5\xA5\xBD", 3); /* 你/好 */
        L = k;
        c0 = clock();
        got = tok(t, text, L, QM_TOKENIZE_SPECIAL, &n);
        secs = (double)(clock() - c0) / CLOCKS_PER_SEC;
        CHECK(n > 0 && n <= (int)(L / 3), "long CJK word: %d tokens", n);
        CHECK(secs < 3.0, "100 KB word took %.3f s", secs);
        back = detok(t, got, n, 0, &len);
        CHECK(back && len == (int64_t)L && !memcmp(back, text, L), "long word round trip");
        free(back);
        free(got);
        for (k = 0; k < L; k++) text[k] = "ab1cd"[k % 5];
        got = tok(t, text, L, 0, &n);
        back = detok(t, got, n, 0, &len);
        CHECK(n > 0 && back && len == (int64_t)L && !memcmp(back, text, L), "letters+digits round trip: %d", n);
        free(back);
        free(got);
        free(text);
    }
}

int main(int argc, char **argv) {
    qm_gguf *g = NULL;
    qm_tokenizer *t = NULL;
    qm_error err;
    char path[4096];
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        printf("usage: %s MODEL.gguf [tests/data | tests/data/tokenizer_vectors.txt]\n", argv[0]);
        return argc < 2 ? 1 : 0;
    }
    if (argc > 2) {
        size_t l = strlen(argv[2]);
        if (l > 4 && !strcmp(argv[2] + l - 4, ".txt")) snprintf(path, sizeof(path), "%s", argv[2]);
        else snprintf(path, sizeof(path), "%s/tokenizer_vectors.txt", argv[2]);
    } else snprintf(path, sizeof(path), "tests/data/tokenizer_vectors.txt");

    test_tiny();
    test_errors();
    test_stream();

    CHECK(qm_gguf_open(argv[1], NULL, &g, &err) == QM_OK, "open %s: %s", argv[1], err.message);
    if (g) {
        CHECK(qm_tokenizer_load(g, &t, &err) == QM_OK, "load the tokenizer of %s: %s", argv[1], err.message);
        qm_gguf_close(g); /* the tokenizer must not need the file afterwards */
    }
    if (t) {
        test_real(t);
        test_vectors(t, path);
        qm_tokenizer_free(t);
    }
    return qmtest_summary("tokenizer");
}
