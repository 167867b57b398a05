/* fuzz_gguf.c - libFuzzer harness: the GGUF reader, the tokenizer loader, model loading and
   (for small models) one forward pass, all from a GGUF image in memory.

   For every input:
     1. qm_gguf_open_memory with a 16 MiB reader cap; on failure the error must carry the same
        code and a NUL-terminated, non-empty message;
     2. the header, every metadata key through every getter (by index and by key, arrays
        element by element: the first 64 and the last), with every returned string and array
        checked to lie inside the input, and bad indices checked to fail;
     3. the tensor table: names and data inside the input, find_tensor agreeing with
        tensor_at, nbytes agreeing with qm_type_row_bytes, the first row dequantized for
        the types qwenmoe supports;
     4. qm_tokenizer_load on the same qm_gguf (it runs even when the tensors would not
        load), and a round of tokenize / detokenize with it; qm_chat_detect on
        tokenizer.chat_template;
     5. qm_model_load_memory (hyperparameter and tensor shape validation) with a memory cap
        (qm_model_params.max_memory_bytes: 8 MiB, or 16 KiB for some inputs): a model that
        loads holds tensors within the cap, and the loader's own allocations stay under it;
        The same image copied to an odd address must be refused (QM_ERR_INVALID_ARG);
     6. for a model that loads: contexts with invalid sizes (must fail); a context sized from
        the input - n_ctx tiny, the whole n_ctx_train or the default, n_batch 1..4 or the
        default 512 - under a 64 MiB cap (qm_context_params.max_memory_bytes), which the
        library must enforce (a refusal is fine; what it allocates is counted here and must
        stay under the cap); then qm_eval of 1-2 tokens, bad tokens, and a full context;
     7. qm_generate of 1-4 tokens (greedy or sampled, 0-2 stop strings, skip_special): the text
        the callback gets must be qm_detokenize of the generated ids, cut at the first stop
        string when one stopped it.
   Every allocation of the library goes through a counting QM_MALLOC (peak bytes in use).
   Build: see mk/fuzz.mk (clang -fsanitize=fuzzer,address,undefined). */
#define FZ_NAME "fuzz_gguf"
#include "fuzz.h"

/* Counting allocator: a 16-byte header holds the size; fz_in_use / fz_peak in bytes. */
static size_t fz_in_use, fz_peak;
static void *fz_malloc(size_t n) {
    unsigned char *p = (unsigned char *)malloc(n + 16);
    if (!p) return NULL;
    memcpy(p, &n, sizeof(n));
    fz_in_use += n;
    if (fz_in_use > fz_peak) fz_peak = fz_in_use;
    return p + 16;
}
static void fz_free(void *q) {
    size_t n;
    if (!q) return;
    memcpy(&n, (unsigned char *)q - 16, sizeof(n));
    fz_in_use -= n;
    free((unsigned char *)q - 16);
}
static void *fz_realloc(void *q, size_t n) {
    size_t old = 0;
    unsigned char *p;
    if (!q) return fz_malloc(n);
    memcpy(&old, (unsigned char *)q - 16, sizeof(old));
    p = (unsigned char *)realloc((unsigned char *)q - 16, n + 16);
    if (!p) return NULL;
    memcpy(p, &n, sizeof(n));
    fz_in_use = fz_in_use - old + n;
    if (fz_in_use > fz_peak) fz_peak = fz_in_use;
    return p + 16;
}
#define QM_MALLOC(sz) fz_malloc(sz)
#define QM_REALLOC(p, sz) fz_realloc(p, sz)
#define QM_FREE(p) fz_free(p)

#define QWENMOE_IMPLEMENTATION
#define QWENMOE_STATIC
#define QM_LOG(level, msg) ((void)(level), (void)(msg))
#include "qwenmoe.h"

#define FZ_MODEL_CAP (8u << 20)
#define FZ_MODEL_CAP_SMALL (16u << 10)
#define FZ_CTX_CAP (64u << 20)


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t *g_lo, *g_hi; /* the input, for the bounds checks */

static int in_input(const void *p, uint64_t len) {
    const uint8_t *b = (const uint8_t *)p;
    if (len == 0) return p == NULL || (b >= g_lo && b <= g_hi);
    return b >= g_lo && b <= g_hi && len <= (uint64_t)(g_hi - b);
}

static void quiet_log(void *user, int level, const char *msg) {
    (void)user;
    (void)level;
    (void)msg;
}

/* An error result must come with the same code in err and a message. */
static void check_err(qm_result r, const qm_error *err) {
    const char *nul = (const char *)memchr(err->message, 0, sizeof(err->message));
    FZ_CHECK(r < 0);
    FZ_CHECK(err->code == r);
    FZ_CHECK(nul != NULL && nul != err->message);
}

static void walk_metadata(const qm_gguf *g) {
    int64_t n_kv = qm_gguf_n_kv(g), i;
    qm_str s;
    int64_t iv;
    double fv;
    FZ_CHECK(n_kv >= 0);
    FZ_CHECK(qm_gguf_key(g, -1).ptr == NULL && qm_gguf_key(g, n_kv).ptr == NULL);
    FZ_CHECK(qm_gguf_kv_type(g, n_kv) == QM_GGUF_TYPE_COUNT);
    FZ_CHECK(qm_gguf_kv_i64(g, -1, &iv) == QM_ERR_NOT_FOUND && qm_gguf_kv_f64(g, n_kv, &fv) == QM_ERR_NOT_FOUND);
    FZ_CHECK(qm_gguf_kv_str(g, n_kv, &s) == QM_ERR_NOT_FOUND && qm_gguf_arr_data(g, n_kv) == NULL);
    for (i = 0; i < n_kv; i++) {
        qm_str key = qm_gguf_key(g, i);
        qm_gguf_type t = qm_gguf_kv_type(g, i);
        char kbuf[256];
        qm_error err;
        uint64_t u, cnt, j;
        int b;
        FZ_CHECK(in_input(key.ptr, key.len));
        FZ_CHECK((int)t >= 0 && t < QM_GGUF_TYPE_COUNT);
        if (qm_gguf_kv_i64(g, i, &iv) == QM_OK) FZ_CHECK(qm_gguf_kv_f64(g, i, &fv) == QM_OK || t == QM_GGUF_BOOL);
        (void)qm_gguf_kv_f64(g, i, &fv);
        if (qm_gguf_kv_str(g, i, &s) == QM_OK) {
            FZ_CHECK(t == QM_GGUF_STRING);
            FZ_CHECK(in_input(s.ptr, s.len));
        }
        /* by key (keys with a NUL byte cannot be asked for by a C string) */
        if (key.len < sizeof(kbuf) && memchr(key.ptr, 0, (size_t)key.len) == NULL) {
            memcpy(kbuf, key.ptr, (size_t)key.len);
            kbuf[key.len] = 0;
            FZ_CHECK(qm_gguf_find_key(g, kbuf) == i); /* duplicate keys are refused at open */
            if (qm_gguf_get_i64(g, kbuf, &iv, &err) != QM_OK) check_err(err.code, &err);
            if (qm_gguf_get_u64(g, kbuf, &u, &err) != QM_OK) check_err(err.code, &err);
            if (qm_gguf_get_f64(g, kbuf, &fv, &err) != QM_OK) check_err(err.code, &err);
            if (qm_gguf_get_bool(g, kbuf, &b, &err) == QM_OK) FZ_CHECK(b == 0 || b == 1);
            else check_err(err.code, &err);
            if (qm_gguf_get_str(g, kbuf, &s, &err) == QM_OK) FZ_CHECK(in_input(s.ptr, s.len));
            else check_err(err.code, &err);
        }
        if (t != QM_GGUF_ARRAY) {
            FZ_CHECK(qm_gguf_arr_type(g, i) == QM_GGUF_TYPE_COUNT && qm_gguf_arr_count(g, i) == 0);
            FZ_CHECK(qm_gguf_arr_data(g, i) == NULL);
            continue;
        }
        cnt = qm_gguf_arr_count(g, i);
        FZ_CHECK(qm_gguf_arr_i64(g, i, cnt, &iv) != QM_OK && qm_gguf_arr_f64(g, i, cnt, &fv) != QM_OK);
        FZ_CHECK(qm_gguf_arr_str(g, i, cnt, &s) != QM_OK);
        {
            const void *d = qm_gguf_arr_data(g, i);
            qm_gguf_type et = qm_gguf_arr_type(g, i);
            uint64_t esz = et == QM_GGUF_UINT8 || et == QM_GGUF_INT8 || et == QM_GGUF_BOOL ? 1
                         : et == QM_GGUF_UINT16 || et == QM_GGUF_INT16 ? 2
                         : et == QM_GGUF_UINT32 || et == QM_GGUF_INT32 || et == QM_GGUF_FLOAT32 ? 4
                         : et == QM_GGUF_UINT64 || et == QM_GGUF_INT64 || et == QM_GGUF_FLOAT64 ? 8 : 0;
            if (d) {
                FZ_CHECK(esz > 0);
                FZ_CHECK(cnt <= (uint64_t)(g_hi - g_lo) / esz && in_input(d, cnt * esz));
            }
        }
        for (j = 0; j < cnt; j++) {
            if (j == 64 && cnt > 65) j = cnt - 1; /* the first 64 and the last */
            if (qm_gguf_arr_i64(g, i, j, &iv) == QM_OK) FZ_CHECK(qm_gguf_arr_f64(g, i, j, &fv) == QM_OK);
            (void)qm_gguf_arr_f64(g, i, j, &fv);
            if (qm_gguf_arr_str(g, i, j, &s) == QM_OK) FZ_CHECK(in_input(s.ptr, s.len));
        }
    }
    { /* a key looked up by name: the index of the one key that equals it, else -1 */
        static const char probe[] = "tokenizer.ggml.model";
        int64_t want = -1;
        for (i = 0; i < n_kv; i++) {
            qm_str key = qm_gguf_key(g, i);
            if (key.len == sizeof(probe) - 1 && memcmp(key.ptr, probe, sizeof(probe) - 1) == 0) want = i;
        }
        FZ_CHECK(qm_gguf_find_key(g, probe) == want);
    }
}

static void walk_tensors(const qm_gguf *g) {
    int64_t n = qm_gguf_n_tensors(g), i;
    static float row[8192];
    FZ_CHECK(n >= 0);
    FZ_CHECK(qm_gguf_tensor_at(g, -1) == NULL && qm_gguf_tensor_at(g, n) == NULL);
    for (i = 0; i < n; i++) {
        const qm_gguf_tensor *t = qm_gguf_tensor_at(g, i);
        char name[80];
        uint64_t rows;
        int k;
        FZ_CHECK(t != NULL);
        FZ_CHECK(t->name.len > 0 && t->name.len < 64 && in_input(t->name.ptr, t->name.len));
        FZ_CHECK(t->n_dims >= 1 && t->n_dims <= 4);
        for (k = 0; k < 4; k++) FZ_CHECK(t->ne[k] >= 1);
        FZ_CHECK(qm_type_name(t->type) != NULL && qm_type_block_elems(t->type) > 0);
        FZ_CHECK(t->ne[0] % qm_type_block_elems(t->type) == 0);
        rows = (uint64_t)t->ne[1] * (uint64_t)t->ne[2] * (uint64_t)t->ne[3];
        FZ_CHECK(t->nbytes == (uint64_t)qm_type_row_bytes(t->type, t->ne[0]) * rows);
        FZ_CHECK(in_input(t->data, t->nbytes));
        FZ_CHECK(((uint64_t)((const uint8_t *)t->data - g_lo)) % qm_gguf_alignment(g) == 0);
        if (memchr(t->name.ptr, 0, (size_t)t->name.len) == NULL) {
            memcpy(name, t->name.ptr, (size_t)t->name.len);
            name[t->name.len] = 0;
            FZ_CHECK(qm_gguf_find_tensor(g, name) == t);
        }
        if (qm_type_supported(t->type) && t->ne[0] <= (int64_t)(sizeof(row) / sizeof(row[0])))
            FZ_CHECK(qm_dequantize_row(t->type, t->data, row, t->ne[0]) == QM_OK);
    }
}

/* The tokenizer of the file, whatever the tensors are. */
static void try_tokenizer(const qm_gguf *g, const uint8_t *data, size_t size) {
    qm_tokenizer *tok = NULL;
    qm_error err;
    qm_result r = qm_tokenizer_load(g, &tok, &err);
    int32_t ids[256];
    char out[2048];
    int n, i, nv;
    const char *text = "Hello, world! <|im_start|>user\n caf\xC3\xA9 123 \xE4\xBD\xA0\xE5\xA5\xBD<|im_end|>";
    qm_str tmpl;
    if (r != QM_OK) {
        check_err(r, &err);
        FZ_CHECK(tok == NULL);
        return;
    }
    nv = qm_tokenizer_n_vocab(tok);
    FZ_CHECK(nv > 0);
    for (i = 0; i < 2; i++) {
        const char *src = i ? (const char *)data : text;
        size_t len = i ? (size > 64 ? 64 : size) : strlen(text);
        int64_t d;
        int k;
        n = qm_tokenize(tok, src, len, ids, 256, i ? 0 : QM_TOKENIZE_SPECIAL);
        FZ_CHECK(n >= 0);
        if (n > 256) n = 256;
        for (k = 0; k < n; k++) FZ_CHECK(ids[k] >= 0 && ids[k] < nv);
        d = qm_detokenize(tok, ids, n, out, sizeof(out), 0);
        FZ_CHECK(d >= 0);
        if ((size_t)d < sizeof(out)) FZ_CHECK(out[d] == 0);
    }
    for (i = -1; i <= nv && i < 300; i++) { /* every id's text and bytes, and the two bad ids */
        qm_str s = qm_token_text(tok, i);
        int b = qm_token_to_bytes(tok, i, out, (int)sizeof(out));
        if (i < 0 || i >= nv) {
            FZ_CHECK(s.ptr == NULL && b < 0);
            continue;
        }
        FZ_CHECK(s.ptr != NULL); /* a copy, owned by the tokenizer */
        FZ_CHECK(b >= 0);
        (void)qm_token_type(tok, i);
        (void)qm_token_is_eog(tok, i);
        FZ_CHECK(qm_token_lookup(tok, s.ptr, (size_t)s.len) >= 0);
    }
    FZ_CHECK(qm_token_eos(tok) < nv && qm_token_bos(tok) < nv);
    qm_tokenizer_free(tok);
    if (qm_gguf_get_str(g, "tokenizer.chat_template", &tmpl, NULL) == QM_OK) {
        int known = -1;
        qm_chat_family f = qm_chat_detect(tmpl.ptr, (size_t)tmpl.len, &known);
        FZ_CHECK(known == 0 || known == 1);
        FZ_CHECK(f == QM_CHAT_CHATML || f == QM_CHAT_QWEN3 || f == QM_CHAT_QWEN3_CODER);
    }
}

/* Context sizes a caller must be refused, whatever the model. */
static void bad_contexts(qm_model *m) {
    const qm_hparams *hp = qm_model_hparams(m);
    qm_context_params cp;
    qm_context *c = NULL;
    qm_error err;
    qm_result r;
    int bad_ctx[4];
    int i;
    bad_ctx[0] = -1;
    bad_ctx[1] = hp->n_ctx_train < INT32_MAX ? hp->n_ctx_train + 1 : -2;
    bad_ctx[2] = INT32_MAX;
    bad_ctx[3] = INT32_MIN;
    for (i = 0; i < 4; i++) {
        memset(&cp, 0, sizeof(cp));
        cp.n_ctx = bad_ctx[i];
        cp.n_threads = 1;
        r = qm_context_create(m, &cp, &c, &err);
        FZ_CHECK(r != QM_OK && c == NULL);
        check_err(r, &err);
    }
    memset(&cp, 0, sizeof(cp));
    cp.n_ctx = 1;
    cp.kv_type = 7;
    r = qm_context_create(m, &cp, &c, &err);
    FZ_CHECK(r != QM_OK && c == NULL);
}

/* qm_generate's text, collected from the callback, with the ids it names */
typedef struct fz_gen {
    char text[1 << 16];
    size_t len;
    int32_t ids[16];
    int n_ids, overflow;
} fz_gen;
static int fz_on_token(void *user, int32_t token, const char *text, size_t len) {
    fz_gen *gs = (fz_gen *)user;
    if (token >= 0 && gs->n_ids < 16) gs->ids[gs->n_ids++] = token;
    if (gs->len + len > sizeof(gs->text)) { gs->overflow = 1; return 0; }
    memcpy(gs->text + gs->len, text, len);
    gs->len += len;
    return 0;
}

/* A few tokens of qm_generate: what the callback got must be qm_detokenize of the same ids,
   up to the first stop string when one stopped it (and no stop string before that). */
static void try_generate(qm_context *c, const qm_model *m, uint8_t k0, uint8_t k1) {
    static fz_gen gs;
    static char dec[1 << 17];
    const qm_tokenizer *tok = qm_model_tokenizer(m);
    qm_generate_params gp;
    qm_generate_stats st;
    qm_error err;
    char stop0[3], stop1[2];
    const char *stops[2];
    int32_t prompt = (int32_t)(k0 % (uint32_t)qm_model_hparams(m)->n_vocab);
    int64_t d;
    int j, plain = 1, s;
    qm_result r;
    if (qm_context_n_ctx(c) < 2) return;
    FZ_CHECK(qm_context_truncate(c, 0) == QM_OK);
    memset(&gp, 0, sizeof(gp));
    memset(&gs, 0, sizeof(gs));
    gp.max_tokens = 1 + (k1 & 3);
    if (gp.max_tokens > qm_context_n_ctx(c) - 1) gp.max_tokens = qm_context_n_ctx(c) - 1;
    gp.ignore_eos = k0 & 1;
    gp.skip_special = (k0 >> 1) & 1;
    gp.sampling.temperature = (k0 & 4) ? 1.5f : 0.0f;
    gp.sampling.seed = k1;
    stop0[0] = (char)(0x20 + (k1 & 0x3f)); stop0[1] = (char)(0x20 + (k0 & 0x3f)); stop0[2] = 0;
    stop1[0] = (char)(0x20 + ((k0 ^ k1) & 0x5f)); stop1[1] = 0;
    stops[0] = stop0;
    stops[1] = stop1;
    gp.stop = stops;
    gp.n_stop = (k1 >> 4) % 3;
    gp.on_token = fz_on_token;
    gp.user = &gs;
    r = qm_generate(c, &prompt, 1, &gp, &st, &err);
    FZ_CHECK(r == QM_OK);
    FZ_CHECK(st.n_generated <= gp.max_tokens);
    if (gs.overflow || gs.n_ids > 15) return;
    for (j = 0; j < gs.n_ids; j++) /* ids past the tokenizer's vocabulary: qm_detokenize refuses them */
        if (gs.ids[j] >= qm_tokenizer_n_vocab(tok)) plain = 0;
    if (!plain) return;
    d = qm_detokenize(tok, gs.ids, gs.n_ids, dec, sizeof(dec), gp.skip_special ? QM_DETOK_SKIP_SPECIAL : 0);
    FZ_CHECK(d >= 0);
    if ((size_t)d >= sizeof(dec)) return;
    if (st.stop_reason != QM_STOP_STRING) {
        FZ_CHECK((size_t)d == gs.len && memcmp(dec, gs.text, gs.len) == 0);
        return;
    }
    FZ_CHECK(gs.len <= (size_t)d && memcmp(dec, gs.text, gs.len) == 0);
    for (s = 0, j = 0; s < gp.n_stop; s++) {
        size_t sl = strlen(stops[s]), k;
        if (gs.len + sl <= (size_t)d && memcmp(dec + gs.len, stops[s], sl) == 0) j = 1;
        for (k = 0; k + sl <= (size_t)d && k < gs.len; k++) FZ_CHECK(memcmp(dec + k, stops[s], sl) != 0);
    }
    FZ_CHECK(j == 1);
}

static void run_model(qm_model *m, const uint8_t *data, size_t size) {
    const qm_hparams *hp = qm_model_hparams(m);
    qm_context_params cp;
    qm_context *c = NULL;
    qm_error err;
    qm_result r;
    size_t base;
    int32_t toks[3];
    uint8_t k0 = size > 0 ? data[size - 1] : 0, k1 = size > 1 ? data[size - 2] : 0;
    int n_tok, j;
    const float *lg;

    FZ_CHECK(hp->n_vocab > 0 && hp->n_embd > 0 && hp->n_layer > 0 && hp->n_ctx_train > 0);
    FZ_CHECK(hp->n_head_kv > 0 && hp->n_head % hp->n_head_kv == 0);
    FZ_CHECK(qm_tokenizer_n_vocab(qm_model_tokenizer(m)) <= hp->n_vocab);
    bad_contexts(m);

    memset(&cp, 0, sizeof(cp));
    cp.n_threads = 1;
    cp.n_batch = (k1 & 3) == 3 ? 0 : 1 + (k1 & 3); /* 0: the default, 512 */
    cp.kv_type = (k1 >> 2) & 1;
    cp.all_logits = (k1 >> 3) & 1;
    cp.max_memory_bytes = FZ_CTX_CAP;
    switch (k0 >> 6) { /* mostly tiny contexts; also the whole trained context, and the default */
    case 0: case 1: cp.n_ctx = 1 + (k0 % 8); break;
    case 2: cp.n_ctx = hp->n_ctx_train; break;
    default: cp.n_ctx = 0; break;
    }
    if (cp.n_ctx > hp->n_ctx_train) cp.n_ctx = hp->n_ctx_train;
    base = fz_in_use;
    fz_peak = fz_in_use;
    r = qm_context_create(m, &cp, &c, &err);
    /* the cap covers the KV cache and the buffers; 64 KiB of slack for the context struct,
       the thread pool and the allocator's rounding */
    FZ_CHECK(fz_peak - base <= FZ_CTX_CAP + (64u << 10));
    if (r != QM_OK) {
        check_err(r, &err);
        FZ_CHECK(c == NULL && fz_in_use == base);
        return;
    }
    if (cp.n_ctx) FZ_CHECK(qm_context_n_ctx(c) == cp.n_ctx);
    FZ_CHECK(qm_context_n_ctx(c) >= 1 && qm_context_n_ctx(c) <= hp->n_ctx_train && qm_context_pos(c) == 0);
    n_tok = 1 + (k1 >> 7);
    if (n_tok > qm_context_n_ctx(c)) n_tok = qm_context_n_ctx(c);
    if (cp.all_logits && cp.n_batch && n_tok > cp.n_batch) n_tok = cp.n_batch; /* all_logits: one batch per call */
    for (j = 0; j < n_tok; j++) toks[j] = (int32_t)(((uint32_t)k0 * 131u + (uint32_t)j * 7u) % (uint32_t)hp->n_vocab);
    toks[2] = hp->n_vocab; /* out of range */
    FZ_CHECK(qm_eval(c, toks + 2, 1, &err) == QM_ERR_INVALID_ARG);
    toks[2] = -1;
    FZ_CHECK(qm_eval(c, toks + 2, 1, &err) == QM_ERR_INVALID_ARG);
    FZ_CHECK(qm_eval(c, toks, 0, &err) == QM_ERR_INVALID_ARG);
    r = qm_eval(c, toks, n_tok, &err);
    if (r != QM_OK) fprintf(stderr, "fuzz_gguf: qm_eval: %s\n", err.message);
    FZ_CHECK(r == QM_OK);
    FZ_CHECK(qm_context_pos(c) == n_tok);
    lg = qm_logits(c, -1);
    FZ_CHECK(lg != NULL);
    {
        volatile float acc = 0; /* read every logit: ASan checks the row is all there */
        for (j = 0; j < hp->n_vocab; j++) acc += lg[j];
        (void)acc;
    }
    if (cp.all_logits && n_tok > 1) FZ_CHECK(qm_logits(c, 0) != NULL);
    /* fill a small context, then one more */
    if (qm_context_n_ctx(c) <= 8) {
        while (qm_context_pos(c) < qm_context_n_ctx(c)) FZ_CHECK(qm_eval(c, toks, 1, &err) == QM_OK);
        FZ_CHECK(qm_eval(c, toks, 1, &err) == QM_ERR_CONTEXT_FULL);
    }
    FZ_CHECK(qm_context_truncate(c, qm_context_pos(c) + 1) == QM_ERR_INVALID_ARG);
    FZ_CHECK(qm_context_truncate(c, 0) == QM_OK && qm_context_pos(c) == 0);
    FZ_CHECK(qm_eval(c, toks, 1, &err) == QM_OK);
    try_generate(c, m, k0, k1);
    qm_context_free(c);
    FZ_CHECK(fz_in_use == base);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    qm_gguf_params gp;
    qm_gguf *g = NULL;
    qm_model *m = NULL;
    qm_model_params mp;
    qm_error err;
    qm_result r;
    g_lo = data;
    g_hi = data + size;
    memset(&gp, 0, sizeof(gp));
    gp.max_alloc_bytes = 16u << 20;
    memset(&err, 0, sizeof(err));
    r = qm_gguf_open_memory(data, size, &gp, &g, &err);
    if (r != QM_OK) {
        check_err(r, &err);
        FZ_CHECK(g == NULL);
        return 0;
    }
    FZ_CHECK(qm_gguf_version(g) == 2 || qm_gguf_version(g) == 3);
    FZ_CHECK(qm_gguf_file_size(g) == size && !qm_gguf_is_mmapped(g));
    FZ_CHECK(strcmp(qm_gguf_path(g), "<memory>") == 0);
    FZ_CHECK(qm_gguf_alignment(g) > 0 && (qm_gguf_alignment(g) & (qm_gguf_alignment(g) - 1)) == 0);
    walk_metadata(g);
    walk_tensors(g);
    try_tokenizer(g, data, size);
    qm_gguf_close(g);

    FZ_CHECK(fz_in_use == 0);

    mp = qm_model_params_default();
    mp.log = quiet_log;
    mp.no_cuda = 1;
    mp.max_memory_bytes = size > 2 && (data[size - 3] & 0xF0) == 0xF0 ? FZ_MODEL_CAP_SMALL : FZ_MODEL_CAP;
    fz_peak = 0;
    r = qm_model_load_memory(data, size, &mp, &m, &err);
    /* the cap counts the tensors and the reader's and loader's tables once the model is
       known, not the tokenizer's (a few bytes per byte of vocab in the file) nor the layer
       table allocated before the tensors are checked (block_count <= 4096), hence the slack */
    FZ_CHECK(fz_peak <= mp.max_memory_bytes + (64u << 10) + 8 * (uint64_t)size + 4096 * sizeof(qm__layer));
    if (r != QM_OK) {
        check_err(r, &err);
        FZ_CHECK(m == NULL && fz_in_use == 0);
        return 0;
    }
    {
        const qm_gguf *mg = qm_model_gguf(m);
        uint64_t total = 0;
        int64_t i;
        for (i = 0; i < qm_gguf_n_tensors(mg); i++) total += qm_gguf_tensor_at(mg, i)->nbytes;
        FZ_CHECK(total <= mp.max_memory_bytes);
    }
    run_model(m, data, size);
    qm_model_free(m);
    FZ_CHECK(fz_in_use == 0);
    { /* the same image at an odd address: refused (its weights would be misaligned) */
        unsigned char *odd = (unsigned char *)malloc(size + 1);
        FZ_CHECK(odd != NULL);
        memcpy(odd + 1, data, size);
        r = qm_model_load_memory(odd + 1, size, &mp, &m, &err);
        FZ_CHECK(r == QM_ERR_INVALID_ARG && m == NULL);
        free(odd);
    }
    return 0;
}
