/* Model tests: the forward pass against an independent, deliberately naive f32 reference
   written here from the architecture description (double accumulators, libm), plus the
   consistency properties a user relies on (batch = one-by-one, threads do not change the
   result, truncate-and-replay), generation contracts, and clear errors on bad input. */
#define QWENMOE_IMPLEMENTATION
#include "qwenmoe.h"
#include "tests/qmtest.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static char model_dir[512];
static char *mpath(const char *name) {
    static char buf[4][600];
    static int k = 0;
    k = (k + 1) & 3;
    snprintf(buf[k], sizeof(buf[k]), "%s/%s", model_dir, name);
    return buf[k];
}

/* ---- reference forward ---- */
typedef struct ref { const qm_gguf *g; const qm_hparams *hp; } ref;

static float *deq(const qm_gguf *g, const char *name, int64_t *rows, int64_t *cols) {
    const qm_gguf_tensor *t = qm_gguf_find_tensor(g, name);
    int64_t n, r, nr;
    float *out;
    if (!t) return NULL;
    nr = t->ne[1] * t->ne[2] * t->ne[3];
    n = t->ne[0];
    out = (float *)malloc(sizeof(float) * (size_t)(n * nr));
    for (r = 0; r < nr; r++)
        qm_dequantize_row(t->type, (const char *)t->data + (size_t)r * qm_type_row_bytes(t->type, n), out + r * n, n);
    if (rows) *rows = nr;
    if (cols) *cols = n;
    return out;
}

static void rmsnorm_ref(double *y, const double *x, const float *w, int n, double eps) {
    double ss = 0;
    int i;
    for (i = 0; i < n; i++) ss += x[i] * x[i];
    ss = 1.0 / sqrt(ss / n + eps);
    for (i = 0; i < n; i++) y[i] = x[i] * ss * w[i];
}
/* llama.cpp (and qwenmoe) round the activations of a Q8_0/Q4_0/Q5_0/IQ4_NL product to
   Q8_0, so the reference does the same, with the public reference quantizer. */
static void matvec_ref_t(double *y, const float *W, const double *xin, int rows, int cols, int wtype) {
    int r, c;
    double *x = (double *)malloc(sizeof(double) * cols);
    for (c = 0; c < cols; c++) x[c] = xin[c];
    if ((wtype == QM_TYPE_Q8_0 || wtype == QM_TYPE_Q4_0 || wtype == QM_TYPE_Q5_0 || wtype == QM_TYPE_IQ4_NL) && cols % 32 == 0) {
        float *xf = (float *)calloc((size_t)cols, sizeof(float));
        unsigned char *q = (unsigned char *)malloc((size_t)cols * 2);
        for (c = 0; c < cols; c++) xf[c] = (float)xin[c];
        qm_quantize_row(QM_TYPE_Q8_0, xf, q, cols);
        qm_dequantize_row(QM_TYPE_Q8_0, q, xf, cols);
        for (c = 0; c < cols; c++) x[c] = xf[c];
        free(xf); free(q);
    }
    for (r = 0; r < rows; r++) {
        double s = 0;
        for (c = 0; c < cols; c++) s += (double)W[(size_t)r * cols + c] * x[c];
        y[r] = s;
    }
    free(x);
}
static const qm_gguf *ref_g;
static int type_of(const char *name) { const qm_gguf_tensor *t = qm_gguf_find_tensor(ref_g, name); return t ? t->type : 0; }

/* f16 rounding, for the f16-cache variant of the reference */
static double r16(double x) { return qm_fp16_to_fp32(qm_fp32_to_fp16((float)x)); }

/* logits of the last token after feeding toks[0..n). With f16kv, K and V are stored in f16,
   q is rounded to f16 before Q.K and the softmax weights before P.V, as ggml does. */
static double *forward_ref(const qm_gguf *g, const qm_hparams *hp, const int32_t *toks, int n, int f16kv) {
    int E = hp->n_embd, hd = hp->head_dim, H = hp->n_head, KV = hp->n_head_kv, L = hp->n_layer;
    int qd = H * hd, kvd = KV * hd, t, l, h, i, p;
    double *x = (double *)calloc((size_t)n * E, sizeof(double));
    double *K = (double *)calloc((size_t)L * n * kvd, sizeof(double)), *V = (double *)calloc((size_t)L * n * kvd, sizeof(double));
    double *xn = (double *)malloc(sizeof(double) * E), *q = (double *)malloc(sizeof(double) * qd);
    double *att = (double *)malloc(sizeof(double) * qd), *o = (double *)malloc(sizeof(double) * E);
    double *logits = (double *)malloc(sizeof(double) * hp->n_vocab);
    double *sc = (double *)malloc(sizeof(double) * n);
    int ffm = hp->n_ff_exp > hp->n_ff ? hp->n_ff_exp : hp->n_ff;
    double *gt = (double *)malloc(sizeof(double) * ffm), *up = (double *)malloc(sizeof(double) * ffm), *dn = (double *)malloc(sizeof(double) * E);
    double *prob = (double *)malloc(sizeof(double) * (hp->n_expert + 1)), *moe = (double *)malloc(sizeof(double) * E);
    float *emb = deq(g, "token_embd.weight", NULL, NULL);
    char nm[96], nm2[96];
    ref_g = g;
#define TY(suffix) (snprintf(nm2, sizeof nm2, "blk.%d.%s", l, suffix), type_of(nm2))
    for (t = 0; t < n; t++)
        for (i = 0; i < E; i++) x[(size_t)t * E + i] = emb[(size_t)toks[t] * E + i];
    for (l = 0; l < L; l++) {
#define W(s) (snprintf(nm, sizeof nm, "blk.%d.%s", l, s), deq(g, nm, NULL, NULL))
        float *an = W("attn_norm.weight"), *qn = W("attn_q_norm.weight"), *kn = W("attn_k_norm.weight");
        float *fn = W("ffn_norm.weight"), *wq = W("attn_q.weight"), *wk = W("attn_k.weight"), *wv = W("attn_v.weight");
        float *wo = W("attn_output.weight");
        for (t = 0; t < n; t++) {
            double *xt = x + (size_t)t * E;
            double *kt = K + ((size_t)l * n + t) * kvd, *vt = V + ((size_t)l * n + t) * kvd;
            rmsnorm_ref(xn, xt, an, E, hp->rms_eps);
            matvec_ref_t(q, wq, xn, qd, E, TY("attn_q.weight"));
            matvec_ref_t(kt, wk, xn, kvd, E, TY("attn_k.weight"));
            matvec_ref_t(vt, wv, xn, kvd, E, TY("attn_v.weight"));
            for (h = 0; h < H + KV; h++) { /* per-head norm, then NEOX rope */
                double *v = h < H ? q + h * hd : kt + (h - H) * hd;
                rmsnorm_ref(v, v, h < H ? qn : kn, hd, hp->rms_eps);
                for (i = 0; i < hd / 2; i++) {
                    double th = t * pow(hp->rope_freq_base, -2.0 * i / hd), a = v[i], b = v[i + hd / 2];
                    v[i] = a * cos(th) - b * sin(th);
                    v[i + hd / 2] = a * sin(th) + b * cos(th);
                }
            }
            if (f16kv) {
                for (i = 0; i < kvd; i++) { kt[i] = r16(kt[i]); vt[i] = r16(vt[i]); }
                for (i = 0; i < qd; i++) q[i] = r16(q[i]);
            }
            for (h = 0; h < H; h++) {
                int kh = h / (H / KV);
                double mx = -1e300, sum = 0;
                for (p = 0; p <= t; p++) {
                    double s = 0;
                    for (i = 0; i < hd; i++) s += q[h * hd + i] * K[((size_t)l * n + p) * kvd + kh * hd + i];
                    sc[p] = s / sqrt((double)hd);
                    if (sc[p] > mx) mx = sc[p];
                }
                for (p = 0; p <= t; p++) { sc[p] = exp(sc[p] - mx); sum += sc[p]; }
                for (i = 0; i < hd; i++) {
                    double s = 0;
                    for (p = 0; p <= t; p++)
                        s += (f16kv ? r16(sc[p] / sum) : sc[p] / sum) * V[((size_t)l * n + p) * kvd + kh * hd + i];
                    att[h * hd + i] = s;
                }
            }
            matvec_ref_t(o, wo, att, E, qd, TY("attn_output.weight"));
            for (i = 0; i < E; i++) xt[i] += o[i];
            rmsnorm_ref(xn, xt, fn, E, hp->rms_eps);
            memset(moe, 0, sizeof(double) * E);
            if (hp->n_expert) {
                float *wr = W("ffn_gate_inp.weight"), *wg = W("ffn_gate_exps.weight"), *wu = W("ffn_up_exps.weight"), *wd = W("ffn_down_exps.weight");
                int sel[64], k, e, F = hp->n_ff_exp;
                double mx = -1e300, sum = 0, wsum = 0;
                matvec_ref_t(prob, wr, xn, hp->n_expert, E, TY("ffn_gate_inp.weight"));
                for (e = 0; e < hp->n_expert; e++) if (prob[e] > mx) mx = prob[e];
                for (e = 0; e < hp->n_expert; e++) { prob[e] = exp(prob[e] - mx); sum += prob[e]; }
                for (e = 0; e < hp->n_expert; e++) prob[e] /= sum;
                for (k = 0; k < hp->n_expert_used; k++) {
                    int best = -1, kk, taken;
                    for (e = 0; e < hp->n_expert; e++) {
                        for (taken = 0, kk = 0; kk < k; kk++) taken |= sel[kk] == e;
                        if (!taken && (best < 0 || prob[e] > prob[best])) best = e;
                    }
                    sel[k] = best;
                    wsum += prob[best];
                }
                for (k = 0; k < hp->n_expert_used; k++) {
                    e = sel[k];
                    matvec_ref_t(gt, wg + (size_t)e * F * E, xn, F, E, TY("ffn_gate_exps.weight"));
                    matvec_ref_t(up, wu + (size_t)e * F * E, xn, F, E, TY("ffn_up_exps.weight"));
                    for (i = 0; i < F; i++) gt[i] = gt[i] / (1 + exp(-gt[i])) * up[i];
                    matvec_ref_t(dn, wd + (size_t)e * E * F, gt, E, F, TY("ffn_down_exps.weight"));
                    for (i = 0; i < E; i++) moe[i] += prob[e] / wsum * dn[i];
                }
                free(wr); free(wg); free(wu); free(wd);
            } else {
                float *wg = W("ffn_gate.weight"), *wu = W("ffn_up.weight"), *wd = W("ffn_down.weight");
                int F = hp->n_ff;
                matvec_ref_t(gt, wg, xn, F, E, TY("ffn_gate.weight"));
                matvec_ref_t(up, wu, xn, F, E, TY("ffn_up.weight"));
                for (i = 0; i < F; i++) gt[i] = gt[i] / (1 + exp(-gt[i])) * up[i];
                matvec_ref_t(moe, wd, gt, E, F, TY("ffn_down.weight"));
                free(wg); free(wu); free(wd);
            }
            for (i = 0; i < E; i++) xt[i] += moe[i];
        }
        free(an); free(qn); free(kn); free(fn); free(wq); free(wk); free(wv); free(wo);
#undef W
    }
    {
        float *on = deq(g, "output_norm.weight", NULL, NULL), *out = deq(g, "output.weight", NULL, NULL);
        if (!out) out = deq(g, "token_embd.weight", NULL, NULL);
        rmsnorm_ref(xn, x + (size_t)(n - 1) * E, on, E, hp->rms_eps);
        matvec_ref_t(logits, out, xn, hp->n_vocab, E, type_of("output.weight") ? type_of("output.weight") : type_of("token_embd.weight"));
        free(on); free(out);
    }
    free(x); free(K); free(V); free(xn); free(q); free(att); free(o); free(sc); free(gt); free(up); free(dn);
    free(prob); free(moe); free(emb);
    return logits;
}

static int argmax_f(const float *v, int n) { int i, b = 0; for (i = 1; i < n; i++) if (v[i] > v[b]) b = i; return b; }
static int argmax_d(const double *v, int n) { int i, b = 0; for (i = 1; i < n; i++) if (v[i] > v[b]) b = i; return b; }

static qm_context *ctx_new(qm_model *m, int n_ctx, int threads, int kv, int batch, int all) {
    qm_context_params cp;
    qm_context *c = NULL;
    qm_error err;
    memset(&cp, 0, sizeof(cp));
    cp.n_ctx = n_ctx; cp.n_threads = threads; cp.kv_type = kv; cp.n_batch = batch; cp.all_logits = all;
    if (qm_context_create(m, &cp, &c, &err) != QM_OK) printf("context: %s\n", err.message);
    return c;
}

static void test_against_reference(const char *file) {
    qm_model *m = NULL;
    qm_error err;
    const qm_hparams *hp;
    int32_t toks[24];
    int i, n = 24;
    if (qm_model_load(mpath(file), NULL, &m, &err) != QM_OK) { CHECK(0, "%s: %s", file, err.message); return; }
    hp = qm_model_hparams(m);
    for (i = 0; i < n; i++) toks[i] = (int32_t)((i * 7919 + 13) % hp->n_vocab);
    {
        int kv;
        for (kv = 0; kv < 2; kv++) {
            double *ref_l = forward_ref(qm_model_gguf(m), hp, toks, n, kv == 1);
            qm_context *c = ctx_new(m, 64, 2, kv == 0 ? QM_KV_F32 : QM_KV_F16, 0, 0);
            const float *lg;
            double maxd = 0, scale = 0;
            if (!c) { CHECK(0, "context"); continue; }
            CHECK(qm_eval(c, toks, n, &err) == QM_OK, "%s", err.message);
            lg = qm_logits(c, -1);
            for (i = 0; i < hp->n_vocab; i++) {
                double d = fabs(lg[i] - ref_l[i]);
                if (d > maxd) maxd = d;
                if (fabs(ref_l[i]) > scale) scale = fabs(ref_l[i]);
            }
            CHECK(maxd <= (kv == 0 ? 2e-4 : 2e-3) * (scale > 1 ? scale : 1), "%s kv=%s: max |logit - reference| = %g (max |logit| %g)",
                  file, kv == 0 ? "f32" : "f16", maxd, scale);
            CHECK(argmax_f(lg, hp->n_vocab) == argmax_d(ref_l, hp->n_vocab), "%s: same top-1 as the reference", file);
            printf("# model: %s kv=%s max|diff| vs reference %.3g (logit scale %.3g)\n", file, kv == 0 ? "f32" : "f16", maxd, scale);
            qm_context_free(c);
            free(ref_l);
        }
    }
    qm_model_free(m);
}

static void test_consistency(const char *file) {
    qm_model *m = NULL;
    qm_error err;
    qm_context *a, *b, *c, *d;
    int32_t toks[40];
    int i, n = 40, V, same_bits = 1, same_batch = 1;
    float *keep;
    if (qm_model_load(mpath(file), NULL, &m, &err) != QM_OK) { CHECK(0, "%s", err.message); return; }
    V = qm_model_hparams(m)->n_vocab;
    for (i = 0; i < n; i++) toks[i] = (int32_t)((i * 31 + 5) % V);
    a = ctx_new(m, 64, 1, QM_KV_F32, 0, 0);   /* one batch, 1 thread */
    b = ctx_new(m, 64, 2, QM_KV_F32, 0, 0);   /* one batch, 2 threads */
    c = ctx_new(m, 64, 2, QM_KV_F32, 7, 0);   /* batches of 7 */
    d = ctx_new(m, 64, 2, QM_KV_F32, 0, 1);   /* all logits */
    if (!a || !b || !c || !d) { CHECK(0, "contexts"); return; }
    CHECK(qm_eval(a, toks, n, &err) == QM_OK && qm_eval(b, toks, n, &err) == QM_OK && qm_eval(c, toks, n, &err) == QM_OK, "%s", err.message);
    same_bits = memcmp(qm_logits(a, -1), qm_logits(b, -1), sizeof(float) * V) == 0;
    CHECK(same_bits, "1 and 2 threads give bit-identical logits");
    for (i = 0; i < V; i++) if (fabsf(qm_logits(a, -1)[i] - qm_logits(c, -1)[i]) > 1e-4f * (1 + fabsf(qm_logits(a, -1)[i]))) same_batch = 0;
    CHECK(same_batch, "batch of 40 and batches of 7 agree");
    /* token by token in a fresh context, against all_logits of one batch */
    CHECK(qm_eval(d, toks, n, &err) == QM_OK, "%s", err.message);
    keep = (float *)malloc(sizeof(float) * (size_t)V * n);
    for (i = 0; i < n; i++) memcpy(keep + (size_t)i * V, qm_logits(d, i), sizeof(float) * V);
    CHECK(qm_logits(d, n) == NULL, "logits past the batch are NULL");
    qm_context_truncate(a, 0);
    {
        int ok = 1, t;
        double maxd = 0;
        for (t = 0; t < n; t++) {
            CHECK(qm_eval(a, toks + t, 1, &err) == QM_OK, "%s", err.message);
            for (i = 0; i < V; i++) {
                double dd = fabs(qm_logits(a, -1)[i] - keep[(size_t)t * V + i]);
                if (dd > maxd) maxd = dd;
            }
        }
        ok = maxd < 1e-3;
        CHECK(ok, "decode one by one matches batched all_logits (max diff %g)", maxd);
    }
    /* truncate and replay the tail */
    CHECK(qm_context_pos(a) == n, "pos");
    CHECK(qm_context_truncate(a, 30) == QM_OK && qm_context_pos(a) == 30, "truncate");
    CHECK(qm_eval(a, toks + 30, 10, &err) == QM_OK, "%s", err.message);
    {
        double maxd = 0;
        for (i = 0; i < V; i++) { double dd = fabs(qm_logits(a, -1)[i] - keep[(size_t)(n - 1) * V + i]); if (dd > maxd) maxd = dd; }
        CHECK(maxd < 1e-3, "replay after truncate reproduces (max diff %g)", maxd);
    }
    CHECK(qm_context_truncate(a, 99) == QM_ERR_INVALID_ARG, "truncate past pos refused");
    free(keep);
    qm_context_free(a); qm_context_free(b); qm_context_free(c); qm_context_free(d);
    qm_model_free(m);
}

typedef struct collect { char text[4096]; size_t n; int calls; int stop_after; } collect;
static int on_tok(void *u, int32_t tok, const char *text, size_t len) {
    collect *c = (collect *)u;
    (void)tok;
    if (c->n + len < sizeof(c->text)) { memcpy(c->text + c->n, text, len); c->n += len; c->text[c->n] = 0; }
    c->calls++;
    return c->stop_after && c->calls >= c->stop_after;
}

static void test_generate_and_errors(void) {
    qm_model *m = NULL;
    qm_error err;
    qm_context *c;
    qm_generate_params gp;
    qm_generate_stats st;
    collect col, col2;
    int32_t prompt[8] = {1, 2, 3, 4, 5, 6, 7, 8}, big[300];
    int i;
    if (qm_model_load(mpath("tiny.gguf"), NULL, &m, &err) != QM_OK) { CHECK(0, "%s", err.message); return; }
    c = ctx_new(m, 256, 2, QM_KV_F16, 0, 0);
    if (!c) return;
    memset(&gp, 0, sizeof(gp));
    memset(&col, 0, sizeof(col));
    gp.max_tokens = 20; gp.ignore_eos = 1; gp.on_token = on_tok; gp.user = &col;
    CHECK(qm_generate(c, prompt, 8, &gp, &st, &err) == QM_OK, "%s", err.message);
    CHECK(st.n_generated == 20 && st.stop_reason == QM_STOP_LENGTH && st.n_prompt == 8, "max_tokens: %d generated", st.n_generated);
    /* greedy is deterministic */
    qm_context_truncate(c, 0);
    memset(&col2, 0, sizeof(col2));
    gp.user = &col2;
    CHECK(qm_generate(c, prompt, 8, &gp, &st, &err) == QM_OK, "%s", err.message);
    CHECK(col.n == col2.n && memcmp(col.text, col2.text, col.n) == 0, "greedy repeats exactly");
    /* callback stop */
    qm_context_truncate(c, 0);
    memset(&col2, 0, sizeof(col2));
    col2.stop_after = 3;
    CHECK(qm_generate(c, prompt, 8, &gp, &st, &err) == QM_OK && st.stop_reason == QM_STOP_CALLBACK && st.n_generated == 3, "callback stops at 3 (%d)", st.n_generated);
    /* a stop string taken from the greedy text: output ends right before it */
    if (col.n > 6) {
        char stop[8];
        const char *stops[1];
        size_t at = col.n / 2;
        memcpy(stop, col.text + at, 3); stop[3] = 0;
        stops[0] = stop;
        qm_context_truncate(c, 0);
        memset(&col2, 0, sizeof(col2));
        gp.stop = stops; gp.n_stop = 1;
        CHECK(qm_generate(c, prompt, 8, &gp, &st, &err) == QM_OK, "%s", err.message);
        CHECK(st.stop_reason == QM_STOP_STRING && strstr(col.text, col2.text) == col.text && strstr(col2.text, stop) == NULL &&
              strncmp(col.text + col2.n, stop, 3) == 0,
              "stop string '%s': got '%s' of '%s'", stop, col2.text, col.text);
        gp.stop = NULL; gp.n_stop = 0;
    }
    /* errors */
    qm_context_truncate(c, 0);
    CHECK(qm_generate(c, prompt, 0, &gp, &st, &err) == QM_ERR_INVALID_ARG && strstr(err.message, "empty"), "empty prompt: %s", err.message);
    CHECK(qm_eval(c, prompt, 0, &err) == QM_ERR_INVALID_ARG, "eval of 0 tokens");
    for (i = 0; i < 300; i++) big[i] = i % 50;
    CHECK(qm_generate(c, big, 300, &gp, &st, &err) == QM_ERR_CONTEXT_FULL && strstr(err.message, "256"), "prompt > context: %s", err.message);
    CHECK(qm_eval(c, big, 300, &err) == QM_ERR_CONTEXT_FULL, "eval > context");
    big[3] = 1 << 30;
    CHECK(qm_eval(c, big, 10, &err) == QM_ERR_INVALID_ARG && strstr(err.message, "vocabulary"), "bad token id: %s", err.message);
    /* fill the context exactly, then one more */
    qm_context_truncate(c, 0);
    for (i = 0; i < 300; i++) big[i] = i % 50;
    CHECK(qm_eval(c, big, 256, &err) == QM_OK, "fill to n_ctx: %s", err.message);
    CHECK(qm_eval(c, big, 1, &err) == QM_ERR_CONTEXT_FULL && strstr(err.message, "256 of 256"), "full: %s", err.message);
    qm_context_free(c);
    {
        qm_context_params cp;
        memset(&cp, 0, sizeof(cp));
        cp.n_ctx = 1 << 30;
        CHECK(qm_context_create(m, &cp, &c, &err) == QM_ERR_INVALID_ARG && strstr(err.message, "trained"), "n_ctx > train: %s", err.message);
    }
    qm_model_free(m);
}

/* Files edited in memory so that exactly one thing is wrong. */
static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    unsigned char *p;
    long sz;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END); sz = ftell(f); fseek(f, 0, SEEK_SET);
    p = (unsigned char *)malloc((size_t)sz);
    if (fread(p, 1, (size_t)sz, f) != (size_t)sz) { free(p); p = NULL; }
    fclose(f);
    *n = (size_t)sz;
    return p;
}
/* replace the first occurrence of from that is not followed by '.' (so that the
   architecture value "qwen3moe" is found, not the "qwen3moe.*" keys) */
static int replace_once(unsigned char *p, size_t n, const char *from, const char *to) {
    size_t i, l = strlen(from);
    for (i = 0; i + l < n; i++)
        if (memcmp(p + i, from, l) == 0 && p[i + l] != '.') { memcpy(p + i, to, l); return 1; }
    return 0;
}
static void expect_load_error(const char *what, const char *from, const char *to, qm_result code, const char *want) {
    size_t n;
    unsigned char *p = slurp(mpath("tiny.gguf"), &n);
    qm_model *m = NULL;
    qm_error err;
    qm_result r;
    memset(&err, 0, sizeof(err));
    if (!p) { CHECK(0, "read tiny"); return; }
    CHECK(replace_once(p, n, from, to), "%s: pattern '%s' found", what, from);
    r = qm_model_load_memory(p, n, NULL, &m, &err);
    CHECK(r == code && m == NULL && strstr(err.message, want), "%s: got %d '%s', want %d with '%s'", what, r, err.message, code, want);
    qm_model_free(m);
    free(p);
}

static void test_bad_models(void) {
    expect_load_error("arch", "qwen3moe", "llamamoe", QM_ERR_UNSUPPORTED, "architecture 'llamamoe'");
    expect_load_error("missing tensor", "blk.1.attn_k.weight", "blk.1.attn_X.weight", QM_ERR_FORMAT, "tensor 'blk.1.attn_k.weight' is missing");
    expect_load_error("missing key", "qwen3moe.block_count", "qwen3moe.block_cXXX", QM_ERR_FORMAT, "'qwen3moe.block_count' is missing");
    expect_load_error("missing eps", "layer_norm_rms_epsilon", "layer_norm_rms_epsiloX", QM_ERR_FORMAT, "layer_norm_rms_epsilon' is missing");
}

/* Regression (fuzz bug 2): a MoE model's feed_forward_length is the dense width, unused by
   its experts. The context once sized its FFN buffers by max(feed_forward_length,
   expert_feed_forward_length), so a file declaring 2^20 made a 512-token context ask for 4 GiB.
   Here tiny.gguf with feed_forward_length 2^20 must fit a 512-batch context in 64 MiB and give
   bit-identical logits. */
static void test_moe_ignores_dense_ff(void) {
    static const char key[] = "qwen3moe.feed_forward_length";
    size_t n, i, kl = sizeof(key) - 1;
    unsigned char *p = slurp(mpath("tiny.gguf"), &n);
    qm_model *m[2] = {NULL, NULL};
    qm_context *c[2] = {NULL, NULL};
    qm_context_params cp;
    qm_error err;
    int32_t toks[5] = {1, 7, 42, 3, 99};
    int k, patched = 0;
    if (!p) { CHECK(0, "read tiny.gguf"); return; }
    /* key: u64 length, the bytes; then u32 type (4 = UINT32) and the value */
    for (i = 8; i + kl + 12 <= n; i++)
        if (memcmp(p + i, key, kl) == 0 && p[i - 8] == kl && p[i + kl] == 4) {
            uint32_t v = 1u << 20;
            memcpy(p + i + kl + 4, &v, 4);
            patched = 1;
            break;
        }
    CHECK(patched, "tiny.gguf has %s as a UINT32", key);
    memset(&cp, 0, sizeof(cp));
    cp.n_ctx = 64; cp.n_batch = 512; cp.n_threads = 2; cp.max_memory_bytes = 64u << 20;
    for (k = 0; k < 2; k++) {
        qm_result r = k ? qm_model_load_memory(p, n, NULL, &m[k], &err) : qm_model_load(mpath("tiny.gguf"), NULL, &m[k], &err);
        CHECK(r == QM_OK, "load %s: %s", k ? "patched" : "tiny.gguf", r == QM_OK ? "" : err.message);
        if (r != QM_OK) break;
        r = qm_context_create(m[k], &cp, &c[k], &err);
        CHECK(r == QM_OK, "%s: a 512-batch context fits in 64 MiB: %s", k ? "feed_forward_length 2^20" : "tiny.gguf",
              r == QM_OK ? "" : err.message);
        if (r != QM_OK) break;
        r = qm_eval(c[k], toks, 5, &err);
        CHECK(r == QM_OK, "eval: %s", r == QM_OK ? "" : err.message);
    }
    if (k == 2)
        CHECK(memcmp(qm_logits(c[0], -1), qm_logits(c[1], -1), sizeof(float) * (size_t)qm_model_hparams(m[0])->n_vocab) == 0,
              "feed_forward_length does not change a MoE model's logits");
    for (k = 0; k < 2; k++) { qm_context_free(c[k]); qm_model_free(m[k]); }
    free(p);
}

/* qm__sin / qm__cos (no libm): against libm, and defined for any input (fuzz bug: a RoPE
   angle of 1e21 radians was converted to int64, undefined behaviour) */
static void test_sincos(void) {
    static const double huge[] = {1e21, -1e21, 9.3e18, 4.6e18, 4503599627370497.0, 1125899906842624.0, 1e300, -1e300};
    static const double big[] = {1e9, -1e9, 123456789012.5, 1e14, -1e15, 1125899906842623.0};
    double x, worst = 0.0;
    int i, bad = 0;
    for (x = -1e6; x <= 1e6; x += 977.123) {
        const double ds = fabs(qm__sin(x) - sin(x)), dc = fabs(qm__cos(x) - cos(x));
        if (ds > worst) worst = ds;
        if (dc > worst) worst = dc;
    }
    for (x = -10.0; x <= 10.0; x += 0.001) {
        const double ds = fabs(qm__sin(x) - sin(x)), dc = fabs(qm__cos(x) - cos(x));
        if (ds > worst) worst = ds;
        if (dc > worst) worst = dc;
    }
    CHECK(worst < 1e-9, "qm__sin/qm__cos within 1e-9 of libm on |x| <= 1e6: worst %.3g", worst);
    for (i = 0; i < (int)(sizeof(big) / sizeof(big[0])); i++) {
        const double a = qm__sin(big[i]), b = qm__cos(big[i]);
        if (!(a >= -1.001 && a <= 1.001 && b >= -1.001 && b <= 1.001)) bad++;
    }
    CHECK(bad == 0, "qm__sin/qm__cos of arguments up to 2^50 stay in [-1, 1] (%d not)", bad);
    for (i = 0; i < (int)(sizeof(huge) / sizeof(huge[0])); i++) {
        const double a = qm__sin(huge[i]), b = qm__cos(huge[i]);
        if (!(a != a && b != b)) bad++;
    }
    CHECK(bad == 0, "qm__sin/qm__cos of arguments from 2^50 up are NaN (%d not)", bad);
    {
        volatile double z = 0.0;
        const double inf = 1.0 / z, s1 = qm__sin(inf), c1 = qm__cos(-inf), s2 = qm__sin(z / z);
        CHECK(s1 != s1 && c1 != c1 && s2 != s2, "sin(inf), cos(-inf), sin(NaN) are NaN: %g %g %g", s1, c1, s2);
    }
}

/* tiny.gguf with rope.freq_base (an f32 key) set to v */
static void expect_rope_error(float v) {
    static const char key[] = "qwen3moe.rope.freq_base";
    size_t n, i, kl = sizeof(key) - 1;
    unsigned char *p = slurp(mpath("tiny.gguf"), &n);
    qm_model *m = NULL;
    qm_error err;
    qm_result r;
    int patched = 0;
    if (!p) { CHECK(0, "read tiny.gguf"); return; }
    for (i = 8; i + kl + 8 <= n; i++)
        if (memcmp(p + i, key, kl) == 0 && p[i - 8] == kl && p[i + kl] == 6) { memcpy(p + i + kl + 4, &v, 4); patched = 1; break; }
    CHECK(patched, "tiny.gguf has %s as an f32", key);
    r = qm_model_load_memory(p, n, NULL, &m, &err);
    CHECK(r == QM_ERR_FORMAT && m == NULL && strstr(err.message, "RoPE base") && strstr(err.message, "rope.freq_base"),
          "rope.freq_base %g refused: %s", (double)v, r == QM_OK ? "(loaded)" : err.message);
    qm_model_free(m);
    free(p);
}

static void test_dims(const char *file, const char *want_arch, int tied, int rope_def) {
    qm_model *m = NULL;
    qm_error err;
    if (qm_model_load(mpath(file), NULL, &m, &err) != QM_OK) { CHECK(0, "%s: %s", file, err.message); return; }
    CHECK(strcmp(qm_model_hparams(m)->arch, want_arch) == 0, "%s arch %s", file, qm_model_hparams(m)->arch);
    CHECK(qm_model_hparams(m)->tied_output == tied, "%s tied=%d", file, qm_model_hparams(m)->tied_output);
    CHECK(qm_model_hparams(m)->rope_base_defaulted == rope_def && (!rope_def || qm_model_hparams(m)->rope_freq_base == 1e6f), "%s rope default", file);
    qm_model_free(m);
}

/* The memory caps: a model or a context over its cap is refused with a message that names
   both numbers; under the cap it loads and runs. */
static void test_memory_caps(void) {
    qm_model_params mp = qm_model_params_default();
    qm_model *m = NULL;
    qm_context *c = NULL;
    qm_context_params cp;
    qm_error err;
    qm_result r;
    int32_t tok = 1;
    FILE *f = fopen(mpath("tiny.gguf"), "rb");
    long fsize = 0;
    if (f) { fseek(f, 0, SEEK_END); fsize = ftell(f); fclose(f); }
    CHECK(fsize > 0, "size of tiny.gguf");
    mp.max_memory_bytes = (uint64_t)fsize / 2;
    r = qm_model_load(mpath("tiny.gguf"), &mp, &m, &err);
    CHECK(r == QM_ERR_OOM && m == NULL, "a model over max_memory_bytes is refused (got %d)", r);
    CHECK(strstr(err.message, "max_memory_bytes") && strstr(err.message, "tiny.gguf"), "the message names the cap and the file: %s", err.message);
    mp.no_mmap = 1;
    r = qm_model_load(mpath("tiny.gguf"), &mp, &m, &err);
    CHECK(r == QM_ERR_OOM && m == NULL && strstr(err.message, "cap"), "no_mmap: reading a file over the cap is refused: %s", err.message);
    mp.no_mmap = 0;
    mp.max_memory_bytes = (uint64_t)fsize * 2 + (64u << 20);
    r = qm_model_load(mpath("tiny.gguf"), &mp, &m, &err);
    CHECK(r == QM_OK && m, "a model under the cap loads: %s", r == QM_OK ? "" : err.message);
    if (!m) return;
    memset(&cp, 0, sizeof(cp));
    cp.n_ctx = 256; cp.n_threads = 1; cp.max_memory_bytes = 4096;
    r = qm_context_create(m, &cp, &c, &err);
    CHECK(r == QM_ERR_OOM && c == NULL, "a context over its cap is refused (got %d)", r);
    CHECK(strstr(err.message, "max_memory_bytes") && strstr(err.message, "256 tokens"), "the message names the size and the cap: %s", err.message);
    cp.max_memory_bytes = 256u << 20;
    r = qm_context_create(m, &cp, &c, &err);
    CHECK(r == QM_OK && c, "a context under the cap is created: %s", r == QM_OK ? "" : err.message);
    if (c) {
        CHECK(qm_eval(c, &tok, 1, &err) == QM_OK, "eval under the cap: %s", err.message);
        qm_context_free(c);
    }
    qm_model_free(m);
    m = NULL;
    /* the tokenizer's tables count: tiny-tok.gguf's tensors and reader tables fit in its file
       size + 1 MiB, but with the real vocab's hash and merge tables (over 8 MiB) it does not */
    f = fopen(mpath("tiny-tok.gguf"), "rb");
    fsize = 0;
    if (f) { fseek(f, 0, SEEK_END); fsize = ftell(f); fclose(f); }
    CHECK(fsize > 0, "size of tiny-tok.gguf");
    mp = qm_model_params_default();
    mp.max_memory_bytes = (uint64_t)fsize + (1u << 20);
    r = qm_model_load(mpath("tiny-tok.gguf"), &mp, &m, &err);
    CHECK(r == QM_ERR_OOM && m == NULL, "tiny-tok.gguf at file size + 1 MiB is refused (got %d)", r);
    {
        const char *t = strstr(err.message, "tables ");
        CHECK(t && atoi(t + 7) >= 8, "the tables figure counts the tokenizer: %s", err.message);
    }
    mp.max_memory_bytes = (uint64_t)fsize + (64u << 20);
    r = qm_model_load(mpath("tiny-tok.gguf"), &mp, &m, &err);
    CHECK(r == QM_OK && m, "tiny-tok.gguf at file size + 64 MiB loads: %s", r == QM_OK ? "" : err.message);
    qm_model_free(m);
}

int main(int argc, char **argv) {
    if (argc < 2) { CHECK(0, "usage: test_model MODEL_DIR"); return qmtest_summary("model"); }
    snprintf(model_dir, sizeof(model_dir), "%s", argv[1]);
    test_against_reference("tiny.gguf");
    test_against_reference("tiny-q8.gguf");
    test_against_reference("tiny-dense.gguf");
    test_against_reference("tiny-tied-norope.gguf");
    test_against_reference("tiny-gqa.gguf");
    test_consistency("tiny.gguf");
    test_consistency("tiny-gqa.gguf");
    test_generate_and_errors();
    test_bad_models();
    test_moe_ignores_dense_ff();
    test_sincos();
    expect_rope_error(9.629651e-35f); /* the fuzzer's value */
    expect_rope_error(0.5f);
    test_memory_caps();
    test_dims("tiny.gguf", "qwen3moe", 0, 0);
    test_dims("tiny-dense.gguf", "qwen3", 0, 0);
    test_dims("tiny-tied-norope.gguf", "qwen3moe", 1, 1);
    return qmtest_summary("model");
}
