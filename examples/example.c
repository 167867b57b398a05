/* example.c - the smallest whole qwenmoe program: load a model, print its hyperparameters,
   then generate a short greedy continuation.

   Build (from the repository root, no other flag needed):
       cc examples/example.c -DQWENMOE_IMPLEMENTATION -o example
   Run:
       ./example model.gguf ["prompt text"]
*/
#include <stdio.h>
#include <string.h>
#include "../qwenmoe.h"

static int print_text(void *user, int32_t token, const char *text, size_t len) {
    (void)user;
    (void)token;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv) {
    qm_model *model;
    qm_context *ctx;
    qm_context_params cp;
    qm_generate_params gp;
    qm_error err;
    const qm_hparams *hp;
    const char *prompt = argc > 2 ? argv[2] : "Hello";
    int32_t ids[512];
    int n;

    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        printf("usage: %s MODEL.gguf [PROMPT]\n"
               "Loads a Qwen3-MoE (or dense Qwen3) GGUF, prints its hyperparameters and\n"
               "generates up to 32 tokens greedily after PROMPT (default \"Hello\").\n", argv[0]);
        return argc < 2 ? 1 : 0;
    }
    if (qm_model_load(argv[1], NULL, &model, &err) != QM_OK) {
        fprintf(stderr, "error: %s\n", err.message);
        return 1;
    }
    hp = qm_model_hparams(model);
    printf("arch %s: %d layers, n_embd %d, heads %d/%d, head_dim %d, experts %d (top-%d, ff %d), "
           "vocab %d, rope base %g, eps %g\n",
           hp->arch, hp->n_layer, hp->n_embd, hp->n_head, hp->n_head_kv, hp->head_dim, hp->n_expert,
           hp->n_expert_used, hp->n_ff_exp, hp->n_vocab, hp->rope_freq_base, hp->rms_eps);

    memset(&cp, 0, sizeof(cp));
    cp.n_ctx = 1024 < hp->n_ctx_train ? 1024 : hp->n_ctx_train;
    if (qm_context_create(model, &cp, &ctx, &err) != QM_OK) {
        fprintf(stderr, "error: %s\n", err.message);
        qm_model_free(model);
        return 1;
    }
    n = qm_tokenize(qm_model_tokenizer(model), prompt, strlen(prompt), ids, 512, QM_TOKENIZE_SPECIAL);
    if (n <= 0 || n > 512) {
        fprintf(stderr, "error: the prompt gives %d tokens (need 1..512)\n", n);
        qm_context_free(ctx);
        qm_model_free(model);
        return 1;
    }
    memset(&gp, 0, sizeof(gp)); /* zero = greedy, until end of generation */
    gp.max_tokens = 32;
    gp.on_token = print_text;
    printf("%s", prompt);
    if (qm_generate(ctx, ids, n, &gp, NULL, &err) != QM_OK) {
        fprintf(stderr, "\nerror: %s\n", err.message);
        qm_context_free(ctx);
        qm_model_free(model);
        return 1;
    }
    printf("\n");
    qm_context_free(ctx);
    qm_model_free(model);
    return 0;
}
