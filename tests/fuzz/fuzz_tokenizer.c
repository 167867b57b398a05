/* fuzz_tokenizer.c - libFuzzer harness: the Qwen3 tokenizer on arbitrary bytes.

   The tokenizer is loaded once (LLVMFuzzerInitialize) from a GGUF that carries the real Qwen3
   vocab: $QM_FUZZ_TOKENIZER, default build/models/tiny-tok.gguf (make build/models/tiny-tok.gguf).
   Input: byte 0 = flags (bit 0: QM_TOKENIZE_SPECIAL, bit 1: also decode with
   QM_DETOK_SKIP_SPECIAL), the rest = the text. For every input:
     - qm_tokenize's count contract: the count with cap 0, with a full buffer and with half a
       buffer agree, the ids written are the same, nothing is written past cap;
     - every id is in the vocabulary; qm_detokenize's count / cap / NUL contract likewise;
     - the documented round trip (see the tokenizer notes in qwenmoe.h): the input is only
       NFC-normalised (pieces between special tokens), invalid UTF-8 bytes are kept as they
       are, and tokens map back to their bytes. So when no character of the input can change
       under NFC (NFC_QC = Yes and combining class 0 for all), the concatenated token bytes
       equal the input, byte for byte, and for valid UTF-8 decode(encode(s)) == s. When some
       character can change, x = decode(encode(s)) must be a fixed point:
       decode(encode(x)) == x (NFC is idempotent);
     - streaming: qm_token_to_bytes of each id pushed through qm_utf8_stream_push/flush gives
       exactly qm_detokenize's bytes (same held-back and U+FFFD logic), with and without
       QM_DETOK_SKIP_SPECIAL; also for ids taken straight from the input bytes, which reach
       every token (and bad ids, which must be refused). */
#define QWENMOE_IMPLEMENTATION
#define QWENMOE_STATIC
#define QM_LOG(level, msg) ((void)(level), (void)(msg))
#include "qwenmoe.h"

#define FZ_NAME "fuzz_tokenizer"
#include "fuzz.h"


#define FZ_MAX_TEXT 4096
#define FZ_CANARY 0x5A

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static qm_gguf *g_gguf;
static qm_tokenizer *g_tok;
static int32_t g_nv;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    const char *path = getenv("QM_FUZZ_TOKENIZER");
    qm_error err;
    (void)argc;
    (void)argv;
    if (!path || !*path) path = "build/models/tiny-tok.gguf";
    if (qm_gguf_open(path, NULL, &g_gguf, &err) != QM_OK || qm_tokenizer_load(g_gguf, &g_tok, &err) != QM_OK) {
        fprintf(stderr, "fuzz_tokenizer: cannot load the tokenizer: %s\n"
                        "(set QM_FUZZ_TOKENIZER to a GGUF with the Qwen3 vocab, e.g. after "
                        "'make build/models/tiny-tok.gguf')\n", err.message);
        exit(1);
    }
    g_nv = qm_tokenizer_n_vocab(g_tok);
    return 0;
}

/* Encode with every cap contract checked; returns a malloc'd array, *n the count. */
static int32_t *encode(const char *s, size_t len, int flags, int *n_out) {
    int n = qm_tokenize(g_tok, s, len, NULL, 0, flags), n2, half, i;
    int32_t *ids, *part;
    FZ_CHECK(n >= 0);
    ids = (int32_t *)malloc(sizeof(int32_t) * (size_t)(n + 1));
    FZ_CHECK(ids != NULL);
    n2 = qm_tokenize(g_tok, s, len, ids, n, flags);
    FZ_CHECK(n2 == n);
    for (i = 0; i < n; i++) FZ_CHECK(ids[i] >= 0 && ids[i] < g_nv);
    half = n / 2;
    part = (int32_t *)malloc(sizeof(int32_t) * (size_t)(half + 1));
    FZ_CHECK(part != NULL);
    part[half] = -12345;
    FZ_CHECK(qm_tokenize(g_tok, s, len, part, half, flags) == n);
    FZ_CHECK(part[half] == -12345);
    FZ_CHECK(memcmp(part, ids, sizeof(int32_t) * (size_t)half) == 0);
    free(part);
    *n_out = n;
    return ids;
}

/* Decode with the cap contract checked; returns a malloc'd NUL-terminated string. */
static char *decode(const int32_t *ids, int n, int flags, size_t *len_out) {
    int64_t d = qm_detokenize(g_tok, ids, n, NULL, 0, flags), d2;
    char *out, *part;
    size_t half;
    FZ_CHECK(d >= 0);
    out = (char *)malloc((size_t)d + 2);
    FZ_CHECK(out != NULL);
    out[d + 1] = FZ_CANARY;
    d2 = qm_detokenize(g_tok, ids, n, out, (size_t)d + 1, flags);
    FZ_CHECK(d2 == d && out[d] == 0 && out[d + 1] == FZ_CANARY);
    half = (size_t)d / 2;
    part = (char *)malloc(half + 1);
    FZ_CHECK(part != NULL);
    part[half] = FZ_CANARY;
    FZ_CHECK(qm_detokenize(g_tok, ids, n, part, half, flags) == d);
    FZ_CHECK(part[half] == FZ_CANARY && memcmp(part, out, half) == 0);
    free(part);
    *len_out = (size_t)d;
    return out;
}

/* The same bytes through the streaming decoder, token by token. */
static void check_stream(const int32_t *ids, int n, int flags, const char *want, size_t want_len) {
    qm_utf8_stream st;
    char tb[4096], *out = (char *)malloc(want_len + 3 * sizeof(tb) + 8);
    size_t got = 0;
    int i;
    FZ_CHECK(out != NULL);
    memset(&st, 0, sizeof(st));
    for (i = 0; i < n; i++) {
        int ty = qm_token_type(g_tok, ids[i]);
        int b = qm_token_to_bytes(g_tok, ids[i], tb, (int)sizeof(tb));
        size_t w;
        FZ_CHECK(b >= 0 && b <= (int)sizeof(tb));
        if (ty == QM_TOKEN_UNUSED || (ty == QM_TOKEN_CONTROL && (flags & QM_DETOK_SKIP_SPECIAL))) continue;
        w = qm_utf8_stream_push(&st, tb, (size_t)b, out + got);
        FZ_CHECK(w <= 3 * (size_t)b + 3);
        got += w;
        FZ_CHECK(got <= want_len && memcmp(out, want, got) == 0); /* a prefix at every step */
    }
    got += qm_utf8_stream_flush(&st, out + got);
    FZ_CHECK(got == want_len && memcmp(out, want, got) == 0);
    free(out);
}

/* 1 when no unit of s can change under NFC: the documented round trip is then an identity. */
static int nfc_inert(const unsigned char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        i += qm__utf8_next(s + i, len - i, &cp);
        if (cp < QM__BADBYTE && qm__uc_nfc_of(cp)) return 0;
    }
    return 1;
}

/* Strict UTF-8 (RFC 3629), written here, independent of the library's decoder. */
static int valid_utf8(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t k, len;
        uint32_t cp;
        if (c < 0x80) { i++; continue; }
        if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; }
        else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; }
        else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; }
        else return 0;
        if (i + len > n) return 0;
        for (k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + k] & 0x3Fu);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

static void check_text(const char *s, size_t len, int tflags, int dflags) {
    int n, i, n2;
    int32_t *ids = encode(s, len, tflags, &n), *ids2;
    size_t dl, dl2, raw = 0, total;
    char *dec = decode(ids, n, 0, &dl), *dec2, *cat;
    check_stream(ids, n, 0, dec, dl);
    if (dflags) {
        char *skip = decode(ids, n, QM_DETOK_SKIP_SPECIAL, &dl2);
        check_stream(ids, n, QM_DETOK_SKIP_SPECIAL, skip, dl2);
        FZ_CHECK(dl2 <= dl);
        free(skip);
    }
    FZ_CHECK(valid_utf8((const unsigned char *)dec, dl));
    /* concatenated raw token bytes */
    for (i = 0; i < n; i++) raw += (size_t)qm_token_to_bytes(g_tok, ids[i], NULL, 0);
    cat = (char *)malloc(raw + 1);
    FZ_CHECK(cat != NULL);
    total = raw;
    raw = 0;
    for (i = 0; i < n; i++) raw += (size_t)qm_token_to_bytes(g_tok, ids[i], cat + raw, (int)(total - raw));
    FZ_CHECK(raw == total);
    if (nfc_inert((const unsigned char *)s, len)) {
        FZ_CHECK(raw == len && memcmp(cat, s, len) == 0);
        if (valid_utf8((const unsigned char *)s, len)) FZ_CHECK(dl == len && memcmp(dec, s, len) == 0);
    } else if (valid_utf8((const unsigned char *)s, len) && !(tflags & QM_TOKENIZE_SPECIAL)) {
        /* NFC changed something: the decoded text is normalised, and stays as it is */
        ids2 = encode(dec, dl, 0, &n2);
        dec2 = decode(ids2, n2, 0, &dl2);
        FZ_CHECK(dl2 == dl && memcmp(dec2, dec, dl) == 0);
        free(ids2);
        free(dec2);
    }
    free(cat);
    free(ids);
    free(dec);
}

/* Ids straight from the input: 3 bytes each, a few out of range. */
static void check_ids(const uint8_t *p, size_t n) {
    int32_t ids[256];
    int k = 0, bad = 0;
    size_t i, dl;
    char *dec;
    for (i = 0; i + 3 <= n && k < 256; i += 3) {
        uint32_t v = (uint32_t)p[i] | ((uint32_t)p[i + 1] << 8) | ((uint32_t)p[i + 2] << 16);
        ids[k] = (int32_t)(v % (uint32_t)(g_nv + 2)) - 1; /* -1 .. n_vocab */
        if (ids[k] < 0 || ids[k] >= g_nv) bad = 1;
        k++;
    }
    if (bad) {
        char b[8];
        FZ_CHECK(qm_detokenize(g_tok, ids, k, b, sizeof(b), 0) == QM_ERR_INVALID_ARG);
        return;
    }
    dec = decode(ids, k, 0, &dl);
    FZ_CHECK(valid_utf8((const unsigned char *)dec, dl));
    check_stream(ids, k, 0, dec, dl);
    free(dec);
    dec = decode(ids, k, QM_DETOK_SKIP_SPECIAL, &dl);
    check_stream(ids, k, QM_DETOK_SKIP_SPECIAL, dec, dl);
    free(dec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int flags;
    const char *s;
    size_t len;
    if (size == 0) return 0;
    flags = data[0];
    s = (const char *)(data + 1);
    len = size - 1 > FZ_MAX_TEXT ? FZ_MAX_TEXT : size - 1;
    check_text(s, len, (flags & 1) ? QM_TOKENIZE_SPECIAL : 0, flags & 2);
    if (flags & 4) check_ids(data + 1, len);
    return 0;
}
