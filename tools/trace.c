/* trace.c - qwenmoe-trace: activation statistics of every layer and stage for a prompt,
   taken from the one forward pass through its trace callback, and the top-5 next tokens. */
#define QWENMOE_IMPLEMENTATION
#include "../qwenmoe.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct tstate { int json; int first; } tstate;

static void on_trace(void *user, const qm_trace_event *ev) {
    tstate *st = (tstate *)user;
    if (ev->experts) { /* router: the last token's choices */
        const int32_t *e = ev->experts + (size_t)(ev->n_tokens - 1) * ev->k;
        const float *w = ev->weights + (size_t)(ev->n_tokens - 1) * ev->k;
        int i;
        if (st->json) {
            printf("%s{\"layer\":%d,\"stage\":\"router\",\"experts\":[", st->first ? "" : ",\n", ev->layer);
            for (i = 0; i < ev->k; i++) printf("%s%d", i ? "," : "", e[i]);
            printf("],\"weights\":[");
            for (i = 0; i < ev->k; i++) printf("%s%.6g", i ? "," : "", w[i]);
            printf("]}");
        } else {
            printf("%5d %-12s experts", ev->layer, "router");
            for (i = 0; i < ev->k; i++) printf(" %d:%.3f", e[i], w[i]);
            printf("\n");
        }
    } else { /* statistics over every row of the batch */
        size_t n = (size_t)ev->n_tokens * ev->dim, i, bad = 0;
        double sum = 0, sq = 0, mn = 1e300, mx = -1e300, mean, sd;
        for (i = 0; i < n; i++) {
            double v = ev->data[i];
            if (!isfinite(v)) { bad++; continue; }
            sum += v; sq += v * v;
            if (v < mn) mn = v;
            if (v > mx) mx = v;
        }
        mean = n > bad ? sum / (double)(n - bad) : 0;
        sd = n > bad ? sqrt(fmax(0, sq / (double)(n - bad) - mean * mean)) : 0;
        if (st->json)
            printf("%s{\"layer\":%d,\"stage\":\"%s\",\"mean\":%.6g,\"std\":%.6g,\"min\":%.6g,\"max\":%.6g,\"l2\":%.6g,\"nonfinite\":%zu}",
                   st->first ? "" : ",\n", ev->layer, ev->stage, mean, sd, mn, mx, sqrt(sq), bad);
        else
            printf("%5d %-12s mean %10.4g  std %10.4g  min %10.4g  max %10.4g  L2 %10.4g  nan/inf %zu\n",
                   ev->layer, ev->stage, mean, sd, mn, mx, sqrt(sq), bad);
    }
    st->first = 0;
}

int main(int argc, char **argv) {
    const char *model_path = NULL, *prompt = NULL;
    int json = 0, threads = 0, i, n, no_special = 0;
    qm_model *m = NULL;
    qm_context *c = NULL;
    qm_context_params cp;
    qm_error err;
    tstate st;
    int32_t *ids;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: %s -m MODEL.gguf -p TEXT [--json] [-t N] [--no-special]\n"
                   "Prints, for each layer and stage (attn_norm, q_normed, k_normed, attn_out, ffn_norm,\n"
                   "router, moe_out, residual) the mean, std, min, max, L2 and NaN/Inf count of the\n"
                   "activations over the prompt, the router's experts and weights for the last token,\n"
                   "and the top-5 next tokens. --json prints one JSON object.\n", argv[0]);
            return 0;
        } else if (!strcmp(argv[i], "-m") && i + 1 < argc) model_path = argv[++i];
        else if (!strcmp(argv[i], "-p") && i + 1 < argc) prompt = argv[++i];
        else if (!strcmp(argv[i], "-t") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--no-special")) no_special = 1;
        else { fprintf(stderr, "error: unknown or incomplete argument '%s' (see --help)\n", argv[i]); return 1; }
    }
    if (!model_path || !prompt) { fprintf(stderr, "error: need -m MODEL and -p TEXT (see --help)\n"); return 1; }
    if (qm_model_load(model_path, NULL, &m, &err) != QM_OK) { fprintf(stderr, "error: %s\n", err.message); return 1; }
    n = qm_tokenize(qm_model_tokenizer(m), prompt, strlen(prompt), NULL, 0, no_special ? 0 : QM_TOKENIZE_SPECIAL);
    if (n <= 0) { fprintf(stderr, "error: the prompt gives no tokens\n"); qm_model_free(m); return 1; }
    ids = (int32_t *)malloc(sizeof(int32_t) * (size_t)n);
    qm_tokenize(qm_model_tokenizer(m), prompt, strlen(prompt), ids, n, no_special ? 0 : QM_TOKENIZE_SPECIAL);
    memset(&cp, 0, sizeof(cp));
    cp.n_threads = threads;
    cp.n_ctx = n + 1 < 4096 ? (n + 1 > qm_model_hparams(m)->n_ctx_train ? qm_model_hparams(m)->n_ctx_train : n + 1) : 4096;
    cp.n_batch = n;
    cp.trace = on_trace;
    cp.trace_user = &st;
    st.json = json;
    st.first = 1;
    if (qm_context_create(m, &cp, &c, &err) != QM_OK) { fprintf(stderr, "error: %s\n", err.message); free(ids); qm_model_free(m); return 1; }
    if (json) printf("{\"n_tokens\":%d,\"stages\":[\n", n);
    else printf("%d prompt tokens\nlayer stage\n", n);
    if (qm_eval(c, ids, n, &err) != QM_OK) { fprintf(stderr, "error: %s\n", err.message); free(ids); qm_context_free(c); qm_model_free(m); return 1; }
    {
        const float *lg = qm_logits(c, -1);
        int V = qm_model_hparams(m)->n_vocab, top[5], k, j;
        double mx = -1e300, z = 0;
        for (j = 0; j < V; j++) if (lg[j] > mx) mx = lg[j];
        for (j = 0; j < V; j++) z += exp(lg[j] - mx);
        for (k = 0; k < 5; k++) {
            top[k] = -1;
            for (j = 0; j < V; j++) {
                int taken = 0, q;
                for (q = 0; q < k; q++) taken |= top[q] == j;
                if (!taken && (top[k] < 0 || lg[j] > lg[top[k]])) top[k] = j;
            }
        }
        printf(json ? "\n],\"top5\":[" : "top-5 next tokens:\n");
        for (k = 0; k < 5 && k < V; k++) {
            char piece[64];
            int pl = qm_token_to_bytes(qm_model_tokenizer(m), top[k], piece, 63), q;
            if (pl < 0) pl = 0;
            if (pl > 63) pl = 63;
            for (q = 0; q < pl; q++) if ((unsigned char)piece[q] < 0x20 || piece[q] == '"' || piece[q] == '\\') piece[q] = '?';
            piece[pl] = 0;
            if (json) printf("%s{\"id\":%d,\"logit\":%.6g,\"prob\":%.6g,\"text\":\"%s\"}", k ? "," : "", top[k], lg[top[k]], exp(lg[top[k]] - mx) / z, piece);
            else printf("  %6d  p=%.4f  logit %8.4f  '%s'\n", top[k], exp(lg[top[k]] - mx) / z, lg[top[k]], piece);
        }
        if (json) printf("]}\n");
    }
    free(ids);
    qm_context_free(c);
    qm_model_free(m);
    return 0;
}
