/* logits.c - qwenmoe-logits: teacher-forced next-token logits for a token sequence, for the
   parity tools. Writes float32 [n_positions][n_vocab] (little-endian) to -o FILE, or with
   --top K prints each position's top K ids and log-probabilities. */
#define QWENMOE_IMPLEMENTATION
#include "../qwenmoe.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    const char *model_path = NULL, *ids_arg = NULL, *out_path = NULL;
    int threads = 0, top = 0, i, n = 0, batch = 64, kv_f32 = 0;
    qm_model_params mp = qm_model_params_default();
    int32_t *ids;
    qm_model *m = NULL;
    qm_context *c = NULL;
    qm_context_params cp;
    qm_error err;
    FILE *out = NULL;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: %s -m MODEL.gguf --ids 1,2,3 (-o FILE | --top K) [-t N] [--batch N] [--kv-f32] [--rope-base X]\n"
                   "Evaluates the ids teacher-forced and writes the logits after every position as\n"
                   "float32 [n][n_vocab] to FILE, or prints the top K (id:logprob) per position.\n", argv[0]);
            return 0;
        } else if (!strcmp(argv[i], "-m") && i + 1 < argc) model_path = argv[++i];
        else if (!strcmp(argv[i], "--ids") && i + 1 < argc) ids_arg = argv[++i];
        else if (!strcmp(argv[i], "-o") && i + 1 < argc) out_path = argv[++i];
        else if (!strcmp(argv[i], "--top") && i + 1 < argc) top = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-t") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--kv-f32")) kv_f32 = 1;
        else if (!strcmp(argv[i], "--rope-base") && i + 1 < argc) mp.rope_freq_base = (float)atof(argv[++i]);
        else { fprintf(stderr, "error: unknown or incomplete argument '%s' (see --help)\n", argv[i]); return 1; }
    }
    if (!model_path || !ids_arg || (!out_path && top <= 0)) { fprintf(stderr, "error: need -m, --ids and -o or --top (see --help)\n"); return 1; }
    ids = (int32_t *)malloc(sizeof(int32_t) * (strlen(ids_arg) / 2 + 2));
    {
        const char *p = ids_arg;
        while (*p) {
            char *end;
            long v;
            while (*p == ',' || *p == ' ') p++;
            if (!*p) break;
            v = strtol(p, &end, 10);
            if (end == p) { fprintf(stderr, "error: --ids: not a number list at '%s'\n", p); return 1; }
            ids[n++] = (int32_t)v;
            p = end;
        }
    }
    if (n == 0) { fprintf(stderr, "error: --ids is empty\n"); return 1; }
    if (qm_model_load(model_path, &mp, &m, &err) != QM_OK) { fprintf(stderr, "error: %s\n", err.message); return 1; }
    memset(&cp, 0, sizeof(cp));
    cp.n_ctx = n;
    cp.n_threads = threads;
    cp.n_batch = batch;
    cp.all_logits = 1;
    cp.kv_type = kv_f32 ? QM_KV_F32 : QM_KV_F16;
    if (qm_context_create(m, &cp, &c, &err) != QM_OK) { fprintf(stderr, "error: %s\n", err.message); qm_model_free(m); return 1; }
    if (out_path && !(out = fopen(out_path, "wb"))) { fprintf(stderr, "error: cannot write %s\n", out_path); return 1; }
    {
        int V = qm_model_hparams(m)->n_vocab, done, j, k;
        int nb = batch < n ? batch : n;
        for (done = 0; done < n; done += nb) {
            int cnt = n - done < nb ? n - done : nb;
            if (qm_eval(c, ids + done, cnt, &err) != QM_OK) { fprintf(stderr, "error: %s\n", err.message); return 1; }
            for (j = 0; j < cnt; j++) {
                const float *lg = qm_logits(c, j);
                if (out) fwrite(lg, sizeof(float), (size_t)V, out);
                if (top > 0) {
                    double mx = -1e300, z = 0;
                    int *best = (int *)malloc(sizeof(int) * (size_t)top);
                    for (k = 0; k < V; k++) if (lg[k] > mx) mx = lg[k];
                    for (k = 0; k < V; k++) z += exp(lg[k] - mx);
                    for (k = 0; k < top && k < V; k++) {
                        int q, b = -1, t;
                        for (q = 0; q < V; q++) {
                            int taken = 0;
                            for (t = 0; t < k; t++) taken |= best[t] == q;
                            if (!taken && (b < 0 || lg[q] > lg[b])) b = q;
                        }
                        best[k] = b;
                        printf("%s%d:%.6f", k ? " " : "", b, lg[b] - mx - log(z));
                    }
                    printf("\n");
                    free(best);
                }
            }
        }
    }
    if (out) fclose(out);
    free(ids);
    qm_context_free(c);
    qm_model_free(m);
    return 0;
}
