/* -------------------------------------------------------------------------------------
   Tokenizer: byte-level BPE as Hugging Face `tokenizers` runs Qwen2/Qwen3's tokenizer.json

   Encoding, in HF's order:
     1. added tokens: with QM_TOKENIZE_SPECIAL, every token of type CONTROL or USER_DEFINED
        (Qwen3: the 26 added tokens) is cut out of the raw text verbatim, leftmost match
        first, the longest one at that position (HF matches these "normalized": false
        tokens before normalising, so "<|im_end|>" followed by U+0338 is still found);
     2. NFC of each remaining piece (with the Unicode 9.0 data of HF's normaliser);
     3. the Qwen2 pre-tokenizer regex, by hand (qm__pretok_next), with \p{L}, \p{N} and \s
        (Unicode White_Space) of HF's Oniguruma (Unicode 16.0);
     4. bytes -> GPT-2 byte-level symbols, then BPE with merge ranks, in HF's order: a heap
        of candidate merges ordered by (rank, position), O(n log n) in the word length.
   No BOS/EOS is ever added.

   Invalid UTF-8 in the input (HF never sees it: Rust strings are valid) is not an error:
   each byte that does not start a valid sequence (lone continuation bytes, overlongs,
   surrogates, truncated sequences, > U+10FFFF) is kept as a unit of its own, of class
   "other" (like punctuation) and is left alone by NFC; its byte goes to BPE unchanged, so
   detokenizing gives the same bytes back (which then decode as U+FFFD).

   Decoding: each token's byte-level text is mapped back to bytes (HF's ByteLevel decoder:
   a token with a character outside the byte map keeps its raw text), the bytes are
   concatenated and invalid UTF-8 becomes U+FFFD, one per maximal invalid subpart, as Rust's
   String::from_utf8_lossy does. An id out of range is an error (HF skips it). UNUSED tokens
   (the "[PAD151669]"... padding of a vocab, ids that HF's vocab does not have) decode to
   nothing. QM_DETOK_SKIP_SPECIAL drops the tokens of type CONTROL, the GGUF's notion of
   special. That is HF's skip_special_tokens except for the six FIM/repo tokens
   (<|fim_prefix|> .. <|file_sep|>): HF's tokenizer.json calls them non-special, GGUF
   converters type them CONTROL, so they are dropped here, as llama.cpp drops them.
   <think>, <tool_call> and the like are USER_DEFINED and always kept.

   qm_utf8_stream_push can write up to 3 * n + 3 bytes (each invalid byte is a 3-byte
   U+FFFD), not n + 3 as the API text says.
   ------------------------------------------------------------------------------------- */

#include "unicode_tables.h"

/* ---- Unicode lookups ---------------------------------------------------------------- */

enum { QM__CLS_OTHER = 0, QM__CLS_L = 1, QM__CLS_N = 2, QM__CLS_W = 3 };
#define QM__BADBYTE 0x110000u /* unit for an invalid input byte b: QM__BADBYTE + b */

/* Index of the last entry whose start (entry >> shift) is <= cp. */
static size_t qm__uc_find32(const uint32_t *tab, size_t n, int shift, uint32_t cp) {
    size_t lo = 0, hi = n; /* tab[0] starts at 0, so the answer exists */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if ((tab[mid] >> shift) <= cp) lo = mid; else hi = mid;
    }
    return lo;
}

static int qm__uc_class_of(uint32_t cp) {
    if (cp < 0x80) {
        if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') return QM__CLS_L;
        if (cp >= '0' && cp <= '9') return QM__CLS_N;
        if (cp == ' ' || (cp >= 9 && cp <= 13)) return QM__CLS_W;
        return QM__CLS_OTHER;
    }
    if (cp >= QM__BADBYTE) return QM__CLS_OTHER;
    return QM__CAST(int, qm__uc_class[qm__uc_find32(qm__uc_class, sizeof(qm__uc_class) / sizeof(qm__uc_class[0]), 2, cp)] & 3u);
}

/* Canonical combining class (bits 0-7) and "NFC_QC is not Yes" (bit 8). */
static unsigned qm__uc_nfc_of(uint32_t cp) {
    if (cp < 0x300 || cp >= QM__BADBYTE) return 0;
    return qm__uc_nfc[qm__uc_find32(qm__uc_nfc, sizeof(qm__uc_nfc) / sizeof(qm__uc_nfc[0]), 9, cp)] & 0x1ffu;
}
static unsigned qm__uc_ccc(uint32_t cp) { return qm__uc_nfc_of(cp) & 0xffu; }

#define QM__HANGUL_S 0xAC00u
#define QM__HANGUL_L 0x1100u
#define QM__HANGUL_V 0x1161u
#define QM__HANGUL_T 0x11A7u
#define QM__HANGUL_LN 19u
#define QM__HANGUL_VN 21u
#define QM__HANGUL_TN 28u
#define QM__HANGUL_SN 11172u

/* Full canonical decomposition of cp into out (at most 4 code points). */
static size_t qm__uc_decompose(uint32_t cp, uint32_t *out) {
    size_t lo = 0, hi = sizeof(qm__uc_decomp) / sizeof(qm__uc_decomp[0]), n;
    if (cp < 0xC0 || cp >= QM__BADBYTE) { out[0] = cp; return 1; }
    if (cp - QM__HANGUL_S < QM__HANGUL_SN) {
        uint32_t si = cp - QM__HANGUL_S;
        out[0] = QM__HANGUL_L + si / (QM__HANGUL_VN * QM__HANGUL_TN);
        out[1] = QM__HANGUL_V + (si % (QM__HANGUL_VN * QM__HANGUL_TN)) / QM__HANGUL_TN;
        if (si % QM__HANGUL_TN == 0) return 2;
        out[2] = QM__HANGUL_T + si % QM__HANGUL_TN;
        return 3;
    }
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint32_t c = QM__CAST(uint32_t, (qm__uc_decomp[mid] >> 42) & 0x1fffffu);
        if (c == cp) {
            uint32_t a = QM__CAST(uint32_t, (qm__uc_decomp[mid] >> 21) & 0x1fffffu);
            uint32_t b = QM__CAST(uint32_t, qm__uc_decomp[mid] & 0x1fffffu);
            n = qm__uc_decompose(a, out);
            if (b) n += qm__uc_decompose(b, out + n);
            return n;
        }
        if (c < cp) lo = mid + 1; else hi = mid;
    }
    out[0] = cp;
    return 1;
}

/* Primary composite of (a, b), or 0. comp: the tokenizer's sorted pair table. */
static uint32_t qm__uc_compose(const uint64_t *comp, size_t n_comp, uint32_t a, uint32_t b) {
    uint64_t key;
    size_t lo = 0, hi = n_comp;
    if (a - QM__HANGUL_L < QM__HANGUL_LN && b - QM__HANGUL_V < QM__HANGUL_VN)
        return QM__HANGUL_S + ((a - QM__HANGUL_L) * QM__HANGUL_VN + (b - QM__HANGUL_V)) * QM__HANGUL_TN;
    if (a - QM__HANGUL_S < QM__HANGUL_SN && (a - QM__HANGUL_S) % QM__HANGUL_TN == 0 &&
        b - QM__HANGUL_T - 1 < QM__HANGUL_TN - 1)
        return a + (b - QM__HANGUL_T);
    if (a >= QM__BADBYTE || b >= QM__BADBYTE) return 0;
    key = (QM__CAST(uint64_t, a) << 21) | b;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint64_t k = comp[mid] >> 21;
        if (k == key) return QM__CAST(uint32_t, comp[mid] & 0x1fffffu);
        if (k < key) lo = mid + 1; else hi = mid;
    }
    return 0;
}

/* ---- UTF-8 ------------------------------------------------------------------------------ */

/* Number of bytes of the sequence led by b (0: b cannot lead one), and the valid range of
   the second byte (the rest are 80..BF): the Unicode "well-formed" table. */
static int qm__utf8_lead(unsigned b, unsigned *lo2, unsigned *hi2) {
    *lo2 = 0x80; *hi2 = 0xBF;
    if (b < 0x80) return 1;
    if (b < 0xC2) return 0;
    if (b < 0xE0) return 2;
    if (b < 0xF0) {
        if (b == 0xE0) *lo2 = 0xA0;
        if (b == 0xED) *hi2 = 0x9F;
        return 3;
    }
    if (b < 0xF5) {
        if (b == 0xF0) *lo2 = 0x90;
        if (b == 0xF4) *hi2 = 0x8F;
        return 4;
    }
    return 0;
}

/* Decode one unit at s[0..n): a code point, or QM__BADBYTE + s[0] (1 byte) when s does not
   start a complete well-formed sequence. Returns the bytes consumed. */
static size_t qm__utf8_next(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned lo2, hi2;
    int len = qm__utf8_lead(s[0], &lo2, &hi2), i;
    uint32_t c;
    if (len == 1) { *cp = s[0]; return 1; }
    if (len == 0 || n < QM__CAST(size_t, len) || s[1] < lo2 || s[1] > hi2) { *cp = QM__BADBYTE + s[0]; return 1; }
    c = s[0] & (0x7Fu >> len);
    for (i = 1; i < len; i++) {
        if (i > 1 && (s[i] & 0xC0) != 0x80) { *cp = QM__BADBYTE + s[0]; return 1; }
        c = (c << 6) | (s[i] & 0x3Fu);
    }
    *cp = c;
    return QM__CAST(size_t, len);
}

/* Encode a unit (code point or bad byte) as UTF-8; returns the byte count. */
static size_t qm__utf8_put(uint32_t cp, unsigned char *o) {
    if (cp >= QM__BADBYTE) { o[0] = QM__CAST(unsigned char, cp - QM__BADBYTE); return 1; }
    if (cp < 0x80) { o[0] = QM__CAST(unsigned char, cp); return 1; }
    if (cp < 0x800) {
        o[0] = QM__CAST(unsigned char, 0xC0 | (cp >> 6));
        o[1] = QM__CAST(unsigned char, 0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = QM__CAST(unsigned char, 0xE0 | (cp >> 12));
        o[1] = QM__CAST(unsigned char, 0x80 | ((cp >> 6) & 0x3F));
        o[2] = QM__CAST(unsigned char, 0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = QM__CAST(unsigned char, 0xF0 | (cp >> 18));
    o[1] = QM__CAST(unsigned char, 0x80 | ((cp >> 12) & 0x3F));
    o[2] = QM__CAST(unsigned char, 0x80 | ((cp >> 6) & 0x3F));
    o[3] = QM__CAST(unsigned char, 0x80 | (cp & 0x3F));
    return 4;
}

/* Output that counts everything and stores what fits. */
typedef struct qm__sink {
    char *buf;
    size_t cap;
    size_t len;
} qm__sink;
static void qm__sink_put(qm__sink *k, const void *p, size_t n) {
    if (k->len < k->cap) memcpy(k->buf + k->len, p, QM__MIN(n, k->cap - k->len));
    k->len += n;
}
static void qm__sink_fffd(qm__sink *k) { qm__sink_put(k, "\xEF\xBF\xBD", 3); }

/* Lossy UTF-8, one byte at a time: complete characters go out, a valid prefix waits in s,
   a broken one becomes one U+FFFD (the maximal subpart rule of from_utf8_lossy). */
static void qm__utf8_feed(qm_utf8_stream *s, unsigned char b, qm__sink *k) {
    unsigned lo2, hi2;
    int need;
    for (;;) {
        if (s->n_pending == 0) {
            need = qm__utf8_lead(b, &lo2, &hi2);
            if (need == 1) qm__sink_put(k, &b, 1);
            else if (need == 0) qm__sink_fffd(k);
            else { s->pending[0] = b; s->n_pending = 1; }
            return;
        }
        need = qm__utf8_lead(s->pending[0], &lo2, &hi2);
        if (s->n_pending > 1) { lo2 = 0x80; hi2 = 0xBF; }
        if (need < 2 || s->n_pending >= need || b < lo2 || b > hi2) {
            /* b cannot continue the pending prefix: that prefix is one U+FFFD, b starts over */
            qm__sink_fffd(k);
            s->n_pending = 0;
            continue;
        }
        s->pending[s->n_pending++] = b;
        if (s->n_pending == need) {
            qm__sink_put(k, s->pending, QM__CAST(size_t, need));
            s->n_pending = 0;
        }
        return;
    }
}

QMDEF size_t qm_utf8_stream_push(qm_utf8_stream *s, const char *in, size_t n, char *out) {
    qm__sink k;
    size_t i;
    if (!s || !out || (!in && n)) return 0;
    if (s->n_pending < 0 || s->n_pending > 3) s->n_pending = 0; /* not zero-initialised */
    k.buf = out;
    k.cap = ~QM__CAST(size_t, 0); /* the caller sized out: 3 * n + 3 bytes always suffice */
    k.len = 0;
    for (i = 0; i < n; i++) qm__utf8_feed(s, QM__CAST(unsigned char, in[i]), &k);
    return k.len;
}

QMDEF size_t qm_utf8_stream_flush(qm_utf8_stream *s, char *out) {
    if (!s) return 0;
    if (s->n_pending > 0 && s->n_pending <= 3) {
        s->n_pending = 0;
        if (out) { memcpy(out, "\xEF\xBF\xBD", 3); return 3; }
        return 0;
    }
    s->n_pending = 0;
    return 0;
}

/* ---- the tokenizer -------------------------------------------------------------------- */

typedef struct qm__tok_pair {
    uint64_t key;  /* left id << 32 | right id; QM__PAIR_EMPTY for a free slot */
    int32_t rank;  /* index in tokenizer.ggml.merges */
    int32_t id;    /* the merged token */
} qm__tok_pair;
#define QM__PAIR_EMPTY (~QM__CAST(uint64_t, 0))

struct qm_tokenizer {
    int32_t n_vocab;
    char *text;            /* token texts back to back (the vocab's byte-level form) */
    uint32_t *text_off;    /* n_vocab + 1 */
    unsigned char *bytes;  /* the tokens' decoded bytes back to back */
    uint32_t *bytes_off;   /* n_vocab + 1 */
    uint8_t *type;
    int32_t *hash;         /* text -> id, open addressing, -1 = free */
    uint32_t hash_mask;
    qm__tok_pair *pairs;   /* (left, right) -> (rank, merged id) */
    uint32_t pair_mask;
    int32_t byte_tok[256]; /* the token of each single byte, or -1 */
    int32_t *special;      /* CONTROL / USER_DEFINED ids, by first byte, then longest first */
    int32_t special_at[257];
    int32_t bos, eos, eot, eom, pad;
    int32_t eog[16];
    int n_eog;
    uint64_t *comp;        /* primary composites: first << 42 | second << 21 | composite */
    size_t n_comp;
};

static uint32_t qm__tok_hash_str(const char *p, size_t n) {
    uint32_t h = 2166136261u; /* FNV-1a */
    size_t i;
    for (i = 0; i < n; i++) { h ^= QM__CAST(unsigned char, p[i]); h *= 16777619u; }
    return h;
}
static uint32_t qm__tok_hash_pair(uint64_t key) {
    return QM__CAST(uint32_t, (key * 0x9E3779B97F4A7C15ull) >> 32);
}

QMDEF int32_t qm_token_lookup(const qm_tokenizer *t, const char *text, size_t len) {
    uint32_t i;
    if (!t || (!text && len)) return -1;
    i = qm__tok_hash_str(text, len) & t->hash_mask;
    for (;; i = (i + 1) & t->hash_mask) {
        int32_t id = t->hash[i];
        if (id < 0) return -1;
        if (t->text_off[id + 1] - t->text_off[id] == len && memcmp(t->text + t->text_off[id], text, len) == 0)
            return id;
    }
}

static const qm__tok_pair *qm__tok_pair_find(const qm_tokenizer *t, int32_t a, int32_t b) {
    uint64_t key = (QM__CAST(uint64_t, QM__CAST(uint32_t, a)) << 32) | QM__CAST(uint32_t, b);
    uint32_t i = qm__tok_hash_pair(key) & t->pair_mask;
    for (;; i = (i + 1) & t->pair_mask) {
        if (t->pairs[i].key == key) return &t->pairs[i];
        if (t->pairs[i].key == QM__PAIR_EMPTY) return NULL;
    }
}

/* GPT-2's bytes_to_unicode: printable bytes stand for themselves, the other 68 are moved to
   U+0100.. in byte order. */
static uint32_t qm__byte_char(unsigned b) {
    unsigned i, n = 0;
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) return b;
    for (i = 0; i < b; i++)
        if (!((i >= 33 && i <= 126) || (i >= 161 && i <= 172) || i >= 174)) n++;
    return 256 + n;
}

QMDEF void qm_tokenizer_free(qm_tokenizer *t) {
    if (!t) return;
    QM_FREE(t->text);
    QM_FREE(t->text_off);
    QM_FREE(t->bytes);
    QM_FREE(t->bytes_off);
    QM_FREE(t->type);
    QM_FREE(t->hash);
    QM_FREE(t->pairs);
    QM_FREE(t->special);
    QM_FREE(t->comp);
    QM_FREE(t);
}

static qm_result qm__tok_fail(qm_tokenizer *t, qm_result r) {
    qm_tokenizer_free(t);
    return r;
}

/* Find a string array (or an integer array when want_str is 0) key. */
static qm_result qm__tok_array(const qm_gguf *g, const char *key, int want_str, int64_t *idx,
                               uint64_t *count, qm_error *err) {
    qm_gguf_type at;
    *idx = qm_gguf_find_key(g, key);
    if (*idx < 0) return qm__err(err, QM_ERR_NOT_FOUND, "%s: key '%s' is missing", qm_gguf_path(g), key);
    at = qm_gguf_arr_type(g, *idx); /* QM_GGUF_TYPE_COUNT when not an array */
    if (want_str ? at != QM_GGUF_STRING
                 : !(at <= QM_GGUF_INT32 || at == QM_GGUF_UINT64 || at == QM_GGUF_INT64) || at == QM_GGUF_FLOAT32)
        return qm__err(err, QM_ERR_TYPE, "%s: key '%s': expected an array of %s", qm_gguf_path(g), key,
                       want_str ? "strings" : "integers");
    *count = qm_gguf_arr_count(g, *idx);
    return QM_OK;
}

/* An optional token id key: -1 when absent; an error when present but not a valid id. */
static qm_result qm__tok_opt_id(const qm_gguf *g, const char *key, int32_t n_vocab, int32_t *out,
                                qm_error *err) {
    int64_t v = 0;
    qm_result r;
    *out = -1;
    if (qm_gguf_find_key(g, key) < 0) return QM_OK;
    if ((r = qm_gguf_get_i64(g, key, &v, err))) return r;
    if (v < 0 || v >= n_vocab)
        return qm__err(err, QM_ERR_FORMAT, "%s: key '%s' = %lld: not a token id (the vocab has %d tokens)",
                       qm_gguf_path(g), key, QM__CAST(long long, v), QM__CAST(int, n_vocab));
    *out = QM__CAST(int32_t, v);
    return QM_OK;
}

typedef struct qm__tok_special_sort {
    unsigned char first;
    uint32_t len;
    int32_t id;
} qm__tok_special_sort;
static int qm__tok_special_cmp(const void *a, const void *b) {
    const qm__tok_special_sort *x = QM__CAST(const qm__tok_special_sort *, a);
    const qm__tok_special_sort *y = QM__CAST(const qm__tok_special_sort *, b);
    if (x->first != y->first) return x->first < y->first ? -1 : 1;
    if (x->len != y->len) return x->len > y->len ? -1 : 1; /* longest first */
    return x->id < y->id ? -1 : x->id > y->id;
}
static int qm__u64_cmp(const void *a, const void *b) {
    uint64_t x = *QM__CAST(const uint64_t *, a), y = *QM__CAST(const uint64_t *, b);
    return x < y ? -1 : x > y;
}

static void qm__tok_add_eog(qm_tokenizer *t, int32_t id) {
    int i;
    if (id < 0 || t->n_eog >= QM__CAST(int, sizeof(t->eog) / sizeof(t->eog[0]))) return;
    for (i = 0; i < t->n_eog; i++)
        if (t->eog[i] == id) return;
    t->eog[t->n_eog++] = id;
}

QMDEF qm_result qm_tokenizer_load(const qm_gguf *g, qm_tokenizer **out, qm_error *err) {
    static const char *const eog_texts[] = {
        "<|im_end|>", "<|endoftext|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>",
        "<|eot_id|>", "<|eom_id|>", "<|end|>", "<end_of_turn>"};
    char nbuf[80];
    qm_tokenizer *t;
    qm_str s;
    qm_result r;
    int64_t ki_tok, ki_type, ki_merges;
    uint64_t n_tok, n_type, n_merges, total, j;
    uint32_t hsize, psize;
    size_t n_special = 0, maxlen = 0, i;
    char *cat = NULL;
    qm__tok_special_sort *ss;
    int16_t byte_of[324]; /* byte-level character -> byte */

    if (!out) return qm__err(err, QM_ERR_INVALID_ARG, "qm_tokenizer_load: out is NULL");
    *out = NULL;
    if (!g) return qm__err(err, QM_ERR_INVALID_ARG, "qm_tokenizer_load: gguf is NULL");

    if ((r = qm_gguf_get_str(g, "tokenizer.ggml.model", &s, err))) return r;
    if (!(s.len == 4 && memcmp(s.ptr, "gpt2", 4) == 0))
        return qm__err(err, QM_ERR_UNSUPPORTED,
                       "%s: key 'tokenizer.ggml.model' is '%s': only 'gpt2' (byte-level BPE) is supported",
                       qm_gguf_path(g), qm__safe_name(s.ptr, s.len, nbuf, sizeof(nbuf)));
    if (qm_gguf_find_key(g, "tokenizer.ggml.pre") < 0)
        return qm__err(err, QM_ERR_NOT_FOUND,
                       "%s: key 'tokenizer.ggml.pre' is missing: the pre-tokenizer must be 'qwen2'",
                       qm_gguf_path(g));
    if ((r = qm_gguf_get_str(g, "tokenizer.ggml.pre", &s, err))) return r;
    if (!(s.len == 5 && memcmp(s.ptr, "qwen2", 5) == 0))
        return qm__err(err, QM_ERR_UNSUPPORTED,
                       "%s: key 'tokenizer.ggml.pre' is '%s': only the 'qwen2' pre-tokenizer is supported",
                       qm_gguf_path(g), qm__safe_name(s.ptr, s.len, nbuf, sizeof(nbuf)));

    if ((r = qm__tok_array(g, "tokenizer.ggml.tokens", 1, &ki_tok, &n_tok, err))) return r;
    if ((r = qm__tok_array(g, "tokenizer.ggml.token_type", 0, &ki_type, &n_type, err))) return r;
    if ((r = qm__tok_array(g, "tokenizer.ggml.merges", 1, &ki_merges, &n_merges, err))) return r;
    if (n_tok == 0 || n_tok > 0x3fffffff)
        return qm__err(err, QM_ERR_FORMAT, "%s: key 'tokenizer.ggml.tokens' has %llu entries: expected 1 to 2^30",
                       qm_gguf_path(g), QM__CAST(unsigned long long, n_tok));
    if (n_type != n_tok)
        return qm__err(err, QM_ERR_FORMAT,
                       "%s: key 'tokenizer.ggml.token_type' has %llu entries, but 'tokenizer.ggml.tokens' has %llu",
                       qm_gguf_path(g), QM__CAST(unsigned long long, n_type), QM__CAST(unsigned long long, n_tok));
    if (n_merges > 0x3fffffff)
        return qm__err(err, QM_ERR_FORMAT, "%s: key 'tokenizer.ggml.merges' has %llu entries: too many",
                       qm_gguf_path(g), QM__CAST(unsigned long long, n_merges));

    t = QM__ALLOC(qm_tokenizer, 1);
    if (!t) return qm__err(err, QM_ERR_OOM, "qm_tokenizer_load: out of memory");
    memset(t, 0, sizeof(*t));
    t->n_vocab = QM__CAST(int32_t, n_tok);

    /* token texts and types */
    total = 0;
    for (j = 0; j < n_tok; j++) {
        if (qm_gguf_arr_str(g, ki_tok, j, &s) != QM_OK || s.len == 0)
            return qm__tok_fail(t, qm__err(err, QM_ERR_FORMAT, "%s: key 'tokenizer.ggml.tokens': token %llu is empty",
                                           qm_gguf_path(g), QM__CAST(unsigned long long, j)));
        total += s.len;
        if (total > 0xffffffffu)
            return qm__tok_fail(t, qm__err(err, QM_ERR_FORMAT, "%s: key 'tokenizer.ggml.tokens': over 4 GiB of text",
                                           qm_gguf_path(g)));
        if (s.len > maxlen) maxlen = QM__CAST(size_t, s.len);
    }
    t->text = QM__ALLOC(char, total + 1);
    t->text_off = QM__ALLOC(uint32_t, n_tok + 1);
    t->bytes = QM__ALLOC(unsigned char, total + 1);
    t->bytes_off = QM__ALLOC(uint32_t, n_tok + 1);
    t->type = QM__ALLOC(uint8_t, n_tok);
    for (hsize = 16; hsize < 2 * n_tok; hsize *= 2) {}
    t->hash = QM__ALLOC(int32_t, hsize);
    for (psize = 16; psize < 2 * n_merges; psize *= 2) {}
    t->pairs = QM__ALLOC(qm__tok_pair, psize);
    cat = QM__ALLOC(char, maxlen + 1);
    if (!t->text || !t->text_off || !t->bytes || !t->bytes_off || !t->type || !t->hash || !t->pairs || !cat) {
        QM_FREE(cat);
        return qm__tok_fail(t, qm__err(err, QM_ERR_OOM, "qm_tokenizer_load: out of memory for %llu tokens",
                                       QM__CAST(unsigned long long, n_tok)));
    }
    t->hash_mask = hsize - 1;
    t->pair_mask = psize - 1;
    memset(t->hash, 0xff, sizeof(int32_t) * hsize);
    for (i = 0; i < psize; i++) t->pairs[i].key = QM__PAIR_EMPTY;

    for (i = 0; i < 324; i++) byte_of[i] = -1;
    for (i = 0; i < 256; i++) byte_of[qm__byte_char(QM__CAST(unsigned, i))] = QM__CAST(int16_t, i);
    total = 0;
    t->text_off[0] = 0;
    t->bytes_off[0] = 0;
    for (j = 0; j < n_tok; j++) {
        int64_t ty = 0;
        uint32_t h;
        size_t p, nb = 0;
        int mapped = 1;
        unsigned char *bo = t->bytes + t->bytes_off[j];
        qm_gguf_arr_str(g, ki_tok, j, &s);
        memcpy(t->text + total, s.ptr, QM__CAST(size_t, s.len));
        total += s.len;
        t->text_off[j + 1] = QM__CAST(uint32_t, total);
        if (qm_gguf_arr_i64(g, ki_type, j, &ty) != QM_OK || ty < 0 || ty > QM_TOKEN_BYTE) {
            QM_FREE(cat);
            return qm__tok_fail(t, qm__err(err, QM_ERR_FORMAT,
                                           "%s: key 'tokenizer.ggml.token_type': entry %llu is %lld, expected 0..6",
                                           qm_gguf_path(g), QM__CAST(unsigned long long, j), QM__CAST(long long, ty)));
        }
        t->type[j] = QM__CAST(uint8_t, ty);
        if (ty == QM_TOKEN_CONTROL || ty == QM_TOKEN_USER_DEFINED) n_special++;
        /* bytes: the byte-level characters mapped back; raw text if one is not in the map */
        for (p = 0; p < s.len;) {
            uint32_t cp;
            p += qm__utf8_next(QM__CAST(const unsigned char *, QM__CAST(const void *, s.ptr)) + p,
                               QM__CAST(size_t, s.len) - p, &cp);
            if (cp >= 324 || byte_of[cp] < 0) { mapped = 0; break; }
            bo[nb++] = QM__CAST(unsigned char, byte_of[cp]);
        }
        if (!mapped) { memcpy(bo, s.ptr, QM__CAST(size_t, s.len)); nb = QM__CAST(size_t, s.len); }
        t->bytes_off[j + 1] = t->bytes_off[j] + QM__CAST(uint32_t, nb);
        /* text -> id; the first of duplicate texts wins */
        h = qm__tok_hash_str(s.ptr, QM__CAST(size_t, s.len)) & t->hash_mask;
        for (;; h = (h + 1) & t->hash_mask) {
            int32_t o = t->hash[h];
            if (o < 0) { t->hash[h] = QM__CAST(int32_t, j); break; }
            if (t->text_off[o + 1] - t->text_off[o] == s.len && memcmp(t->text + t->text_off[o], s.ptr, QM__CAST(size_t, s.len)) == 0)
                break;
        }
    }

    /* single bytes */
    for (i = 0; i < 256; i++) {
        unsigned char u[4];
        size_t nu = qm__utf8_put(qm__byte_char(QM__CAST(unsigned, i)), u);
        t->byte_tok[i] = qm_token_lookup(t, QM__CAST(const char *, QM__CAST(void *, u)), nu);
    }

    /* merges: "left right", rank = index; a later duplicate overrides (as HF's map does) */
    for (j = 0; j < n_merges; j++) {
        size_t sp;
        int32_t a, b, m;
        uint64_t key;
        uint32_t h;
        qm_gguf_arr_str(g, ki_merges, j, &s);
        for (sp = 1; sp < s.len && s.ptr[sp] != ' '; sp++) {}
        if (s.len < 3 || sp >= s.len - 1 || s.len - 1 > maxlen) {
            QM_FREE(cat);
            return qm__tok_fail(t, qm__err(err, QM_ERR_FORMAT,
                                           "%s: key 'tokenizer.ggml.merges': entry %llu ('%s') is not two tokens separated by a space"
                                           " (that make a token)",
                                           qm_gguf_path(g), QM__CAST(unsigned long long, j),
                                           qm__safe_name(s.ptr, s.len, nbuf, sizeof(nbuf))));
        }
        a = qm_token_lookup(t, s.ptr, sp);
        b = qm_token_lookup(t, s.ptr + sp + 1, QM__CAST(size_t, s.len) - sp - 1);
        memcpy(cat, s.ptr, sp);
        memcpy(cat + sp, s.ptr + sp + 1, QM__CAST(size_t, s.len) - sp - 1);
        m = qm_token_lookup(t, cat, QM__CAST(size_t, s.len) - 1);
        if (a < 0 || b < 0 || m < 0) {
            QM_FREE(cat);
            return qm__tok_fail(t, qm__err(err, QM_ERR_FORMAT,
                                           "%s: key 'tokenizer.ggml.merges': entry %llu ('%s'): %s is not in the vocabulary",
                                           qm_gguf_path(g), QM__CAST(unsigned long long, j),
                                           qm__safe_name(s.ptr, s.len, nbuf, sizeof(nbuf)),
                                           a < 0 ? "the left part" : b < 0 ? "the right part" : "the merged token"));
        }
        key = (QM__CAST(uint64_t, QM__CAST(uint32_t, a)) << 32) | QM__CAST(uint32_t, b);
        h = qm__tok_hash_pair(key) & t->pair_mask;
        while (t->pairs[h].key != QM__PAIR_EMPTY && t->pairs[h].key != key) h = (h + 1) & t->pair_mask;
        t->pairs[h].key = key;
        t->pairs[h].rank = QM__CAST(int32_t, j);
        t->pairs[h].id = m;
    }
    QM_FREE(cat);

    /* special tokens, bucketed by first byte, longest first */
    t->special = QM__ALLOC(int32_t, n_special + 1);
    ss = QM__ALLOC(qm__tok_special_sort, n_special + 1);
    if (!t->special || !ss) {
        QM_FREE(ss);
        return qm__tok_fail(t, qm__err(err, QM_ERR_OOM, "qm_tokenizer_load: out of memory"));
    }
    n_special = 0;
    for (j = 0; j < n_tok; j++) {
        if (t->type[j] != QM_TOKEN_CONTROL && t->type[j] != QM_TOKEN_USER_DEFINED) continue;
        ss[n_special].first = QM__CAST(unsigned char, t->text[t->text_off[j]]);
        ss[n_special].len = t->text_off[j + 1] - t->text_off[j];
        ss[n_special].id = QM__CAST(int32_t, j);
        n_special++;
    }
    qsort(ss, n_special, sizeof(*ss), qm__tok_special_cmp);
    memset(t->special_at, 0, sizeof(t->special_at));
    for (i = 0; i < n_special; i++) {
        t->special[i] = ss[i].id;
        t->special_at[ss[i].first + 1]++;
    }
    for (i = 0; i < 256; i++) t->special_at[i + 1] += t->special_at[i];
    QM_FREE(ss);

    /* NFC composition pairs */
    for (i = 0; i < sizeof(qm__uc_decomp) / sizeof(qm__uc_decomp[0]); i++)
        if (qm__uc_decomp[i] >> 63) t->n_comp++;
    t->comp = QM__ALLOC(uint64_t, t->n_comp + 1);
    if (!t->comp) return qm__tok_fail(t, qm__err(err, QM_ERR_OOM, "qm_tokenizer_load: out of memory"));
    t->n_comp = 0;
    for (i = 0; i < sizeof(qm__uc_decomp) / sizeof(qm__uc_decomp[0]); i++) {
        uint64_t e = qm__uc_decomp[i];
        if (e >> 63) t->comp[t->n_comp++] = ((e & 0x3ffffffffffull) << 21) | ((e >> 42) & 0x1fffffu);
    }
    qsort(t->comp, t->n_comp, sizeof(uint64_t), qm__u64_cmp);

    /* ids and the end-of-generation set */
    if ((r = qm__tok_opt_id(g, "tokenizer.ggml.bos_token_id", t->n_vocab, &t->bos, err)) ||
        (r = qm__tok_opt_id(g, "tokenizer.ggml.eos_token_id", t->n_vocab, &t->eos, err)) ||
        (r = qm__tok_opt_id(g, "tokenizer.ggml.eot_token_id", t->n_vocab, &t->eot, err)) ||
        (r = qm__tok_opt_id(g, "tokenizer.ggml.eom_token_id", t->n_vocab, &t->eom, err)) ||
        (r = qm__tok_opt_id(g, "tokenizer.ggml.padding_token_id", t->n_vocab, &t->pad, err)))
        return qm__tok_fail(t, r);
    qm__tok_add_eog(t, t->eos);
    qm__tok_add_eog(t, t->eot);
    qm__tok_add_eog(t, t->eom);
    for (i = 0; i < sizeof(eog_texts) / sizeof(eog_texts[0]); i++)
        qm__tok_add_eog(t, qm_token_lookup(t, eog_texts[i], strlen(eog_texts[i])));
    *out = t;
    return QM_OK;
}

QMDEF int32_t qm_tokenizer_n_vocab(const qm_tokenizer *t) { return t ? t->n_vocab : 0; }

QMDEF qm_str qm_token_text(const qm_tokenizer *t, int32_t id) {
    qm_str s;
    s.ptr = NULL;
    s.len = 0;
    if (t && id >= 0 && id < t->n_vocab) {
        s.ptr = t->text + t->text_off[id];
        s.len = t->text_off[id + 1] - t->text_off[id];
    }
    return s;
}

QMDEF int qm_token_type(const qm_tokenizer *t, int32_t id) {
    if (!t || id < 0 || id >= t->n_vocab) return QM_ERR_INVALID_ARG;
    return t->type[id];
}

QMDEF int qm_token_to_bytes(const qm_tokenizer *t, int32_t id, char *buf, int cap) {
    uint32_t n;
    if (!t || id < 0 || id >= t->n_vocab || cap < 0 || (!buf && cap > 0)) return QM_ERR_INVALID_ARG;
    n = t->bytes_off[id + 1] - t->bytes_off[id];
    if (n > INT_MAX) return QM_ERR_BUFFER_SMALL;
    if (cap > 0) memcpy(buf, t->bytes + t->bytes_off[id], QM__MIN(n, QM__CAST(uint32_t, cap)));
    return QM__CAST(int, n);
}

QMDEF int qm_token_is_eog(const qm_tokenizer *t, int32_t id) {
    int i;
    if (!t || id < 0) return 0;
    for (i = 0; i < t->n_eog; i++)
        if (t->eog[i] == id) return 1;
    return 0;
}

/* eos: tokenizer.ggml.eos_token_id, else eot, else "<|endoftext|>", else -1. */
QMDEF int32_t qm_token_eos(const qm_tokenizer *t) {
    if (!t) return -1;
    if (t->eos >= 0) return t->eos;
    if (t->eot >= 0) return t->eot;
    return qm_token_lookup(t, "<|endoftext|>", 13);
}
QMDEF int32_t qm_token_bos(const qm_tokenizer *t) { return t ? t->bos : -1; }

QMDEF int64_t qm_detokenize(const qm_tokenizer *t, const int32_t *ids, int n, char *buf, size_t cap,
                            int flags) {
    qm_utf8_stream st;
    qm__sink k;
    int i;
    if (!t || n < 0 || (!ids && n > 0) || (!buf && cap > 0)) return QM_ERR_INVALID_ARG;
    for (i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= t->n_vocab) return QM_ERR_INVALID_ARG;
    st.n_pending = 0;
    k.buf = buf;
    k.cap = cap;
    k.len = 0;
    for (i = 0; i < n; i++) {
        uint32_t p;
        int ty = t->type[ids[i]];
        if (ty == QM_TOKEN_UNUSED || (ty == QM_TOKEN_CONTROL && (flags & QM_DETOK_SKIP_SPECIAL))) continue;
        for (p = t->bytes_off[ids[i]]; p < t->bytes_off[ids[i] + 1]; p++) qm__utf8_feed(&st, t->bytes[p], &k);
    }
    if (st.n_pending) qm__sink_fffd(&k);
    if (k.len < cap) buf[k.len] = 0;
    return QM__CAST(int64_t, k.len);
}

/* ---- encoding ----------------------------------------------------------------------------- */

typedef struct qm__bpe_sym {
    int32_t id, prev, next, len;
} qm__bpe_sym;
typedef struct qm__bpe_cand {
    int32_t rank, pos, id;
} qm__bpe_cand;

/* Per-call buffers, grown as needed. */
typedef struct qm__tok_work {
    uint32_t *units;  size_t units_cap;
    uint32_t *nfc;    size_t nfc_cap;
    uint8_t *ccc;     size_t ccc_cap;
    unsigned char *bytes; size_t bytes_cap;
    qm__bpe_sym *sym; size_t sym_cap;
    qm__bpe_cand *heap; size_t heap_cap;
    int32_t *ids;
    int cap;
    int64_t count;
} qm__tok_work;

/* Grow the buffer *pp (any T *, passed by address) to hold need elements of elem bytes each.
   Returns 0 when out of memory (the old buffer is kept, so it is still freed). */
static int qm__grow(void *pp, size_t *cap, size_t elem, size_t need) {
    void *p, *q;
    size_t c = *cap ? *cap : 64;
    memcpy(&p, pp, sizeof(p));
    if (need <= *cap && p) return 1;
    while (c < need) {
        if (c > (~QM__CAST(size_t, 0)) / 2 / elem) return 0;
        c *= 2;
    }
    q = QM_REALLOC(p, c * elem);
    if (!q) return 0;
    memcpy(pp, &q, sizeof(q));
    *cap = c;
    return 1;
}

static void qm__tok_emit(qm__tok_work *w, int32_t id) {
    if (w->count < w->cap) w->ids[w->count] = id;
    w->count++;
}

/* Heap of merge candidates: smallest rank first, then leftmost. */
static int qm__cand_less(const qm__bpe_cand *a, const qm__bpe_cand *b) {
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}
static void qm__heap_push(qm__bpe_cand *h, size_t *n, qm__bpe_cand c) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!qm__cand_less(&c, &h[up])) break;
        h[i] = h[up];
        i = up;
    }
    h[i] = c;
}
static qm__bpe_cand qm__heap_pop(qm__bpe_cand *h, size_t *n) {
    qm__bpe_cand top = h[0], last = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && qm__cand_less(&h[c + 1], &h[c])) c++;
        if (!qm__cand_less(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (*n) h[i] = last;
    return top;
}

static void qm__bpe_try(const qm_tokenizer *t, qm__bpe_sym *sym, int32_t pos, qm__bpe_cand *heap, size_t *nh) {
    const qm__tok_pair *p;
    qm__bpe_cand c;
    if (pos < 0 || sym[pos].next < 0) return;
    p = qm__tok_pair_find(t, sym[pos].id, sym[sym[pos].next].id);
    if (!p) return;
    c.rank = p->rank;
    c.pos = pos;
    c.id = p->id;
    qm__heap_push(heap, nh, c);
}

/* BPE of one pre-token (its UTF-8 bytes), as HF's BPE::merge_word does it. */
static qm_result qm__bpe_word(const qm_tokenizer *t, qm__tok_work *w, const unsigned char *b, size_t n) {
    qm__bpe_sym *sym;
    size_t i, nh = 0;
    int32_t ns = 0, pos;
    if (n == 1) {
        if (t->byte_tok[b[0]] >= 0) qm__tok_emit(w, t->byte_tok[b[0]]);
        return QM_OK;
    }
    if (n > 0x7fffffff / 3) return QM_ERR_INVALID_ARG;
    if (!qm__grow(&w->sym, &w->sym_cap, sizeof(qm__bpe_sym), n) || !qm__grow(&w->heap, &w->heap_cap, sizeof(qm__bpe_cand), 3 * n))
        return QM_ERR_OOM;
    sym = w->sym;
    for (i = 0; i < n; i++) { /* a byte without a token is dropped, as HF drops unknown chars */
        if (t->byte_tok[b[i]] < 0) continue;
        sym[ns].id = t->byte_tok[b[i]];
        sym[ns].prev = ns - 1;
        sym[ns].next = -1;
        sym[ns].len = 1;
        if (ns > 0) sym[ns - 1].next = ns;
        ns++;
    }
    for (pos = 0; pos + 1 < ns; pos++) qm__bpe_try(t, sym, pos, w->heap, &nh);
    while (nh) {
        qm__bpe_cand top = qm__heap_pop(w->heap, &nh);
        int32_t right;
        const qm__tok_pair *p;
        if (sym[top.pos].len == 0 || sym[top.pos].next < 0) continue;
        right = sym[top.pos].next;
        p = qm__tok_pair_find(t, sym[top.pos].id, sym[right].id);
        if (!p || p->id != top.id) continue; /* stale: the pair here changed */
        sym[top.pos].id = top.id;
        sym[top.pos].len += sym[right].len;
        sym[top.pos].next = sym[right].next;
        sym[right].len = 0;
        if (sym[right].next >= 0) sym[sym[right].next].prev = top.pos;
        qm__bpe_try(t, sym, sym[top.pos].prev, w->heap, &nh);
        qm__bpe_try(t, sym, top.pos, w->heap, &nh);
    }
    for (pos = ns ? 0 : -1; pos >= 0; pos = sym[pos].next) qm__tok_emit(w, sym[pos].id);
    return QM_OK;
}

/* End of the pre-token that starts at u[i] (Qwen2's regex, alternatives in order):
   (?i:'s|'t|'re|'ve|'m|'ll|'d) | [^\r\n\p{L}\p{N}]?\p{L}+ | \p{N} | ' '?[^\s\p{L}\p{N}]+[\r\n]*
   | \s*[\r\n]+ | \s+(?!\S) | \s+ */
static size_t qm__pretok_next(const uint32_t *u, size_t n, size_t i) {
    uint32_t c = u[i];
    int cl = qm__uc_class_of(c);
    size_t j, k;
    if (c == '\'' && i + 1 < n) {
        /* case-insensitive as Oniguruma folds: ASCII, and U+017F (long s) folds to s */
        uint32_t a = u[i + 1] == 0x17F ? 's' : (u[i + 1] < 0x80 ? (u[i + 1] | 0x20) : 0);
        uint32_t b = i + 2 < n && u[i + 2] < 0x80 ? (u[i + 2] | 0x20) : 0;
        if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
    }
    if (cl == QM__CLS_L || (c != '\r' && c != '\n' && cl != QM__CLS_N && i + 1 < n && qm__uc_class_of(u[i + 1]) == QM__CLS_L)) {
        for (j = cl == QM__CLS_L ? i + 1 : i + 2; j < n && qm__uc_class_of(u[j]) == QM__CLS_L; j++) {}
        return j;
    }
    if (cl == QM__CLS_N) return i + 1;
    k = (c == ' ' && i + 1 < n) ? i + 1 : i;
    if (qm__uc_class_of(u[k]) == QM__CLS_OTHER) {
        for (j = k + 1; j < n && qm__uc_class_of(u[j]) == QM__CLS_OTHER; j++) {}
        while (j < n && (u[j] == '\r' || u[j] == '\n')) j++;
        return j;
    }
    /* c is white space */
    for (j = i + 1; j < n && qm__uc_class_of(u[j]) == QM__CLS_W; j++) {}
    for (k = j; k > i; k--)
        if (u[k - 1] == '\r' || u[k - 1] == '\n') return k;
    if (j == n || j - i == 1) return j;
    return j - 1;
}

/* NFC of u[0..n). *out is u itself when nothing can change. */
static qm_result qm__nfc(const qm_tokenizer *t, qm__tok_work *w, const uint32_t *u, size_t n,
                         const uint32_t **out, size_t *nout) {
    size_t i, nd = 0, o, starter;
    unsigned last;
    uint32_t *d;
    uint8_t *cc;
    for (i = 0; i < n; i++)
        if (qm__uc_nfc_of(u[i])) break;
    if (i == n) { *out = u; *nout = n; return QM_OK; }
    if (n > (~QM__CAST(size_t, 0)) / 16 || !qm__grow(&w->nfc, &w->nfc_cap, sizeof(uint32_t), 4 * n) ||
        !qm__grow(&w->ccc, &w->ccc_cap, sizeof(uint8_t), 4 * n))
        return QM_ERR_OOM;
    d = w->nfc;
    cc = w->ccc;
    for (i = 0; i < n; i++) nd += qm__uc_decompose(u[i], d + nd);
    for (i = 0; i < nd; i++) cc[i] = QM__CAST(uint8_t, qm__uc_ccc(d[i]));
    for (i = 1; i < nd; i++) { /* canonical order: stable sort of each run of non-starters */
        size_t j;
        for (j = i; j > 0 && cc[j] != 0 && cc[j - 1] > cc[j]; j--) {
            uint32_t x = d[j]; uint8_t y = cc[j];
            d[j] = d[j - 1]; cc[j] = cc[j - 1];
            d[j - 1] = x; cc[j - 1] = y;
        }
    }
    /* canonical composition, in place */
    o = 1;
    starter = 0;
    last = cc[0] ? 256u : 0u;
    for (i = 1; i < nd; i++) {
        uint32_t p = qm__uc_compose(t->comp, t->n_comp, d[starter], d[i]);
        if (p && (last < cc[i] || last == 0)) { d[starter] = p; continue; }
        if (cc[i] == 0) starter = o;
        last = cc[i];
        d[o++] = d[i];
    }
    *out = d;
    *nout = nd ? o : 0;
    return QM_OK;
}

/* Tokenize plain text (no added-token matching here). */
static qm_result qm__tok_text(const qm_tokenizer *t, qm__tok_work *w, const unsigned char *s, size_t len) {
    size_t n = 0, i, nn, p;
    const uint32_t *u;
    qm_result r;
    if (!len) return QM_OK;
    if (!qm__grow(&w->units, &w->units_cap, sizeof(uint32_t), len)) return QM_ERR_OOM;
    for (i = 0; i < len;) i += qm__utf8_next(s + i, len - i, &w->units[n++]);
    if ((r = qm__nfc(t, w, w->units, n, &u, &nn))) return r;
    for (p = 0; p < nn;) {
        size_t e = qm__pretok_next(u, nn, p), nb = 0;
        if (!qm__grow(&w->bytes, &w->bytes_cap, 1, 4 * (e - p))) return QM_ERR_OOM;
        for (i = p; i < e; i++) nb += qm__utf8_put(u[i], w->bytes + nb);
        if ((r = qm__bpe_word(t, w, w->bytes, nb))) return r;
        p = e;
    }
    return QM_OK;
}

/* Texts over INT_MAX / 4 bytes (512 MiB) are refused (QM_ERR_INVALID_ARG), so that the id
   count always fits the int result. */
QMDEF int qm_tokenize(const qm_tokenizer *t, const char *text, size_t len, int32_t *ids, int cap, int flags) {
    qm__tok_work w;
    const unsigned char *s = QM__CAST(const unsigned char *, QM__CAST(const void *, text));
    size_t start = 0, i;
    qm_result r = QM_OK;
    if (!t || (!text && len) || cap < 0 || (!ids && cap > 0)) return QM_ERR_INVALID_ARG;
    if (len > QM__CAST(size_t, INT_MAX / 4)) return QM_ERR_INVALID_ARG;
    if (len == 0) return 0;
    memset(&w, 0, sizeof(w));
    w.ids = ids;
    w.cap = cap;
    if (flags & QM_TOKENIZE_SPECIAL) {
        for (i = 0; i < len && !r; i++) {
            int32_t a = t->special_at[s[i]], b = t->special_at[s[i] + 1], m = -1;
            uint32_t ml = 0;
            for (; a < b; a++) { /* longest first */
                int32_t id = t->special[a];
                uint32_t l = t->text_off[id + 1] - t->text_off[id];
                if (l <= len - i && memcmp(t->text + t->text_off[id], s + i, l) == 0) { m = id; ml = l; break; }
            }
            if (m < 0) continue;
            r = qm__tok_text(t, &w, s + start, i - start);
            qm__tok_emit(&w, m);
            start = i + ml;
            i = start - 1;
        }
    }
    if (!r) r = qm__tok_text(t, &w, s + start, len - start);
    QM_FREE(w.units);
    QM_FREE(w.nfc);
    QM_FREE(w.ccc);
    QM_FREE(w.bytes);
    QM_FREE(w.sym);
    QM_FREE(w.heap);
    if (r) return r;
    if (w.count > INT_MAX) return QM_ERR_INVALID_ARG;
    return QM__CAST(int, w.count);
}
