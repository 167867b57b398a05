/* chat.c - qwenmoe-chat: interactive multi-turn chat with streamed output.
   Each turn re-renders the whole conversation with the model's chat template; the tokens the
   context already holds are kept (only the new suffix is evaluated). */
#define QWENMOE_IMPLEMENTATION
#include "../qwenmoe.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MSGS 256

static int stream(void *user, int32_t token, const char *text, size_t len) {
    (void)token;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    if (user) { /* collect the reply */
        char **buf = (char **)user;
        size_t old = *buf ? strlen(*buf) : 0;
        char *nb = (char *)realloc(*buf, old + len + 1);
        if (!nb) return 1;
        memcpy(nb + old, text, len);
        nb[old + len] = 0;
        *buf = nb;
    }
    return 0;
}

int main(int argc, char **argv) {
    const char *model_path = NULL, *system_msg = NULL;
    qm_context_params cp;
    qm_model_params mp = qm_model_params_default();
    qm_generate_params gp;
    qm_model *m = NULL;
    qm_context *c = NULL;
    qm_error err;
    qm_chat_message msgs[MAX_MSGS];
    char *owned[MAX_MSGS];
    int n_msgs = 0, i, no_think = 0, rc = 1, n_ctx_tok = 0;
    int32_t *ctx_toks = NULL;
    char line[8192];
    memset(&cp, 0, sizeof(cp));
    memset(&gp, 0, sizeof(gp));
    gp.max_tokens = 512;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: %s -m MODEL.gguf [--system TEXT] [-n MAX_TOKENS] [-t N] [--ctx N] [--temp X] [--top-k N]\n"
                   "          [--top-p X] [--min-p X] [--seed N] [--no-think]\n"
                   "          [--no-cuda] [--cuda-cpu-moe N] [--cuda-experts-only]\n"
                   "Interactive chat: type a message and press enter; an empty line or end of input quits.\n"
                   "The CUDA options act when the CUDA object is linked in (qwenmoe-chat-cuda): run on the\n"
                   "CPU; keep the first N layers' experts on the CPU; only the experts on the GPU.\n", argv[0]);
            return 0;
        } else if (!strcmp(argv[i], "-m") && i + 1 < argc) model_path = argv[++i];
        else if (!strcmp(argv[i], "--system") && i + 1 < argc) system_msg = argv[++i];
        else if (!strcmp(argv[i], "-n") && i + 1 < argc) gp.max_tokens = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-t") && i + 1 < argc) cp.n_threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--ctx") && i + 1 < argc) cp.n_ctx = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--temp") && i + 1 < argc) gp.sampling.temperature = (float)atof(argv[++i]);
        else if (!strcmp(argv[i], "--top-k") && i + 1 < argc) gp.sampling.top_k = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--top-p") && i + 1 < argc) gp.sampling.top_p = (float)atof(argv[++i]);
        else if (!strcmp(argv[i], "--min-p") && i + 1 < argc) gp.sampling.min_p = (float)atof(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) gp.sampling.seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--no-think")) no_think = 1;
        else if (!strcmp(argv[i], "--no-cuda")) mp.no_cuda = 1;
        else if (!strcmp(argv[i], "--cuda-cpu-moe") && i + 1 < argc) mp.cuda_cpu_moe_layers = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--cuda-experts-only")) mp.cuda_experts_only = 1;
        else { fprintf(stderr, "error: unknown or incomplete argument '%s' (see --help)\n", argv[i]); return 1; }
    }
    if (!model_path) { fprintf(stderr, "error: no model given (-m FILE); see --help\n"); return 1; }
    if (qm_model_load(model_path, &mp, &m, &err) != QM_OK) { fprintf(stderr, "error: %s\n", err.message); return 1; }
    if (qm_context_create(m, &cp, &c, &err) != QM_OK) { fprintf(stderr, "error: %s\n", err.message); goto out; }
    ctx_toks = (int32_t *)malloc(sizeof(int32_t) * (size_t)qm_context_n_ctx(c));
    if (system_msg) { msgs[n_msgs].role = "system"; msgs[n_msgs].content = system_msg; owned[n_msgs++] = NULL; }
    for (;;) {
        char *reply = NULL, *text;
        int64_t need;
        int n, keep;
        size_t l;
        printf("> ");
        fflush(stdout);
        if (!fgets(line, sizeof(line), stdin)) break;
        l = strlen(line);
        while (l && (line[l - 1] == '\n' || line[l - 1] == '\r')) line[--l] = 0;
        if (!l) break;
        if (n_msgs + 2 > MAX_MSGS) { fprintf(stderr, "error: conversation too long (%d messages)\n", MAX_MSGS); break; }
        owned[n_msgs] = (char *)malloc(l + 1);
        memcpy(owned[n_msgs], line, l + 1);
        msgs[n_msgs].role = "user"; msgs[n_msgs].content = owned[n_msgs]; n_msgs++;
        need = qm_chat_render(qm_model_chat_family(m), msgs, n_msgs, 1, !no_think, NULL, 0);
        if (need < 0) { fprintf(stderr, "error: chat template: %s\n", qm_result_string((qm_result)need)); break; }
        text = (char *)malloc((size_t)need + 1);
        qm_chat_render(qm_model_chat_family(m), msgs, n_msgs, 1, !no_think, text, (size_t)need + 1);
        n = qm_tokenize(qm_model_tokenizer(m), text, (size_t)need, NULL, 0, QM_TOKENIZE_SPECIAL);
        if (n <= 0 || n >= qm_context_n_ctx(c)) {
            fprintf(stderr, "error: the conversation (%d tokens) does not fit the context of %d\n", n, qm_context_n_ctx(c));
            free(text);
            break;
        }
        {
            int32_t *ids = (int32_t *)malloc(sizeof(int32_t) * (size_t)n);
            qm_tokenize(qm_model_tokenizer(m), text, (size_t)need, ids, n, QM_TOKENIZE_SPECIAL);
            /* keep the common prefix in the KV cache; at least one token must be evaluated */
            for (keep = 0; keep < n_ctx_tok && keep < n - 1 && ctx_toks[keep] == ids[keep]; keep++) {}
            qm_context_truncate(c, keep);
            gp.on_token = stream;
            gp.user = &reply;
            gp.skip_special = 1;
            if (qm_generate(c, ids + keep, n - keep, &gp, NULL, &err) != QM_OK) {
                fprintf(stderr, "\nerror: %s\n", err.message);
                free(ids); free(text); free(reply);
                break;
            }
            memcpy(ctx_toks, ids, sizeof(int32_t) * (size_t)n);
            n_ctx_tok = n; /* generated tokens are re-rendered next turn; the prompt part is reused */
            qm_context_truncate(c, n);
            free(ids);
        }
        printf("\n");
        free(text);
        owned[n_msgs] = reply ? reply : (char *)calloc(1, 1);
        msgs[n_msgs].role = "assistant"; msgs[n_msgs].content = owned[n_msgs]; n_msgs++;
    }
    rc = 0;
out:
    for (i = 0; i < n_msgs; i++) free(owned[i]);
    free(ctx_toks);
    qm_context_free(c);
    qm_model_free(m);
    return rc;
}
