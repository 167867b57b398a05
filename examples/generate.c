/* generate.c - qwenmoe-generate: generate text from a prompt with a Qwen3-MoE GGUF.
   Run with --help for the flags. Timings go to stderr, the text (or ids) to stdout. */
#define QWENMOE_IMPLEMENTATION
#include "../qwenmoe.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(const char *argv0) {
    printf("usage: %s -m MODEL.gguf [-p TEXT | --prompt-ids 1,2,3] [options]\n"
           "\n"
           "  -m FILE            model (GGUF, arch qwen3moe or qwen3)\n"
           "  -p TEXT            prompt text\n"
           "  -f FILE            read the prompt text from FILE\n"
           "  --prompt-ids IDS   prompt as token ids (comma or space separated), bypassing the tokenizer\n"
           "  -n N               tokens to generate (default 128; 0 = until end of generation)\n"
           "  -t N               threads (default: all CPUs)\n"
           "  --ctx N            context size (default min(4096, trained))\n"
           "  --batch N          prefill batch (default 512)\n"
           "  --temp X           temperature (default 0 = greedy)\n"
           "  --top-k N          top-k (default 0 = off)\n"
           "  --top-p X          top-p (default 1 = off)\n"
           "  --min-p X          min-p (default 0 = off)\n"
           "  --seed N           sampling seed (default 0)\n"
           "  --chat             wrap the prompt as one user message in the model's chat template\n"
           "  --system TEXT      add a system message (implies --chat)\n"
           "  --no-think         with --chat on a Qwen3 thinking model: enable_thinking=false\n"
           "  --stop STR         stop string (repeatable)\n"
           "  --print-ids        print the generated ids, space separated, instead of the text\n"
           "  --ignore-eos       keep generating past end-of-generation tokens\n"
           "  --no-special       do not parse special tokens (<|im_start|>...) in the prompt text\n"
           "  --kv-f32           keep the KV cache in f32 (default f16)\n"
           "  --rope-base X      override the model's RoPE base\n"
           "  --no-cuda          with the CUDA object linked in (the -cuda programs): run on the CPU\n"
           "  --cuda-cpu-moe N   ... keep the experts of the first N layers on the CPU\n"
           "  --cuda-experts-only ... only the routed experts on the GPU, the rest on the CPU\n"
           "  -h, --help         this help\n",
           argv0);
}

typedef struct out_state {
    int print_ids;
    int n;
} out_state;

static int on_token(void *user, int32_t token, const char *text, size_t len) {
    out_state *st = (out_state *)user;
    if (st->print_ids) {
        if (token >= 0) printf(st->n++ ? " %d" : "%d", token);
    } else {
        fwrite(text, 1, len, stdout);
    }
    fflush(stdout);
    return 0;
}

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = (char *)malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) { free(buf); buf = NULL; }
    if (buf) buf[n] = 0;
    fclose(f);
    return buf;
}

int main(int argc, char **argv) {
    const char *model_path = NULL, *prompt = NULL, *ids_arg = NULL, *system_msg = NULL;
    const char *stops[16];
    char *file_prompt = NULL, *chat_buf = NULL;
    int n_stop = 0, chat = 0, no_think = 0, print_ids = 0, no_special = 0, i, n_prompt = 0, rc = 1;
    qm_context_params cp;
    qm_generate_params gp;
    qm_generate_stats st;
    qm_model *model = NULL;
    qm_model_params mp = qm_model_params_default();
    qm_context *ctx = NULL;
    qm_error err;
    int32_t *ids = NULL;
    out_state os;
    double t_load;
    struct timeval tv0, tv1;

    memset(&cp, 0, sizeof(cp));
    memset(&gp, 0, sizeof(gp));
    gp.max_tokens = 128;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
#define NEXT() (has ? argv[++i] : (fprintf(stderr, "error: %s needs a value\n", a), exit(1), ""))
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(argv[0]); return 0; }
        else if (!strcmp(a, "-m")) model_path = NEXT();
        else if (!strcmp(a, "-p")) prompt = NEXT();
        else if (!strcmp(a, "-f")) {
            const char *path = NEXT();
            file_prompt = read_file(path);
            if (!file_prompt) { fprintf(stderr, "error: cannot read prompt file %s\n", path); return 1; }
            prompt = file_prompt;
        }
        else if (!strcmp(a, "--prompt-ids")) ids_arg = NEXT();
        else if (!strcmp(a, "-n")) gp.max_tokens = atoi(NEXT());
        else if (!strcmp(a, "-t")) cp.n_threads = atoi(NEXT());
        else if (!strcmp(a, "--ctx")) cp.n_ctx = atoi(NEXT());
        else if (!strcmp(a, "--batch")) cp.n_batch = atoi(NEXT());
        else if (!strcmp(a, "--temp")) gp.sampling.temperature = (float)atof(NEXT());
        else if (!strcmp(a, "--top-k")) gp.sampling.top_k = atoi(NEXT());
        else if (!strcmp(a, "--top-p")) gp.sampling.top_p = (float)atof(NEXT());
        else if (!strcmp(a, "--min-p")) gp.sampling.min_p = (float)atof(NEXT());
        else if (!strcmp(a, "--seed")) gp.sampling.seed = strtoull(NEXT(), NULL, 10);
        else if (!strcmp(a, "--chat")) chat = 1;
        else if (!strcmp(a, "--system")) { system_msg = NEXT(); chat = 1; }
        else if (!strcmp(a, "--no-think")) no_think = 1;
        else if (!strcmp(a, "--stop")) {
            if (n_stop == 16) { fprintf(stderr, "error: at most 16 --stop strings\n"); return 1; }
            stops[n_stop++] = NEXT();
        }
        else if (!strcmp(a, "--print-ids")) print_ids = 1;
        else if (!strcmp(a, "--ignore-eos")) gp.ignore_eos = 1;
        else if (!strcmp(a, "--no-special")) no_special = 1;
        else if (!strcmp(a, "--kv-f32")) cp.kv_type = QM_KV_F32;
        else if (!strcmp(a, "--rope-base")) mp.rope_freq_base = (float)atof(NEXT());
        else if (!strcmp(a, "--no-cuda")) mp.no_cuda = 1;
        else if (!strcmp(a, "--cuda-cpu-moe")) mp.cuda_cpu_moe_layers = atoi(NEXT());
        else if (!strcmp(a, "--cuda-experts-only")) mp.cuda_experts_only = 1;
        else { fprintf(stderr, "error: unknown argument '%s' (see --help)\n", a); return 1; }
#undef NEXT
    }
    if (!model_path) { fprintf(stderr, "error: no model given (-m FILE); see --help\n"); return 1; }
    if (!prompt && !ids_arg) { fprintf(stderr, "error: no prompt given (-p TEXT, -f FILE or --prompt-ids); see --help\n"); return 1; }
    if (gp.max_tokens < 0) { fprintf(stderr, "error: -n must be >= 0\n"); return 1; }

    gettimeofday(&tv0, NULL);
    if (qm_model_load(model_path, &mp, &model, &err) != QM_OK) { fprintf(stderr, "error: %s\n", err.message); goto out; }
    if (qm_context_create(model, &cp, &ctx, &err) != QM_OK) { fprintf(stderr, "error: %s\n", err.message); goto out; }
    gettimeofday(&tv1, NULL);
    t_load = (double)(tv1.tv_sec - tv0.tv_sec) + (double)(tv1.tv_usec - tv0.tv_usec) * 1e-6;

    if (ids_arg) {
        const char *p = ids_arg;
        int cap = (int)strlen(ids_arg) / 2 + 2;
        ids = (int32_t *)malloc(sizeof(int32_t) * (size_t)cap);
        while (*p) {
            char *end;
            long v;
            while (*p == ',' || *p == ' ') p++;
            if (!*p) break;
            v = strtol(p, &end, 10);
            if (end == p) { fprintf(stderr, "error: --prompt-ids: '%s' is not a number list\n", p); goto out; }
            ids[n_prompt++] = (int32_t)v;
            p = end;
        }
    } else {
        const qm_tokenizer *tok = qm_model_tokenizer(model);
        const char *text = prompt;
        int cap;
        if (chat) {
            qm_chat_message msgs[2];
            int nm = 0;
            int64_t need;
            if (system_msg) { msgs[nm].role = "system"; msgs[nm].content = system_msg; nm++; }
            msgs[nm].role = "user"; msgs[nm].content = prompt; nm++;
            need = qm_chat_render(qm_model_chat_family(model), msgs, nm, 1, !no_think, NULL, 0);
            if (need < 0) { fprintf(stderr, "error: chat template: %s\n", qm_result_string((qm_result)need)); goto out; }
            chat_buf = (char *)malloc((size_t)need + 1);
            qm_chat_render(qm_model_chat_family(model), msgs, nm, 1, !no_think, chat_buf, (size_t)need + 1);
            text = chat_buf;
        }
        cap = (int)strlen(text) + 16;
        ids = (int32_t *)malloc(sizeof(int32_t) * (size_t)cap);
        n_prompt = qm_tokenize(tok, text, strlen(text), ids, cap, (chat || !no_special) ? QM_TOKENIZE_SPECIAL : 0);
        if (n_prompt < 0) { fprintf(stderr, "error: tokenizer: %s\n", qm_result_string((qm_result)n_prompt)); goto out; }
    }
    os.print_ids = print_ids;
    os.n = 0;
    gp.on_token = on_token;
    gp.user = &os;
    gp.stop = stops;
    gp.n_stop = n_stop;
    if (qm_generate(ctx, ids, n_prompt, &gp, &st, &err) != QM_OK) { fprintf(stderr, "\nerror: %s\n", err.message); goto out; }
    printf("\n");
    fprintf(stderr, "load %.3f s | prefill %d tokens %.3f s (%.2f tok/s) | decode %d tokens %.3f s (%.2f tok/s) | stop: %s\n",
            t_load, st.n_prompt, st.prefill_seconds, st.prefill_seconds > 0 ? st.n_prompt / st.prefill_seconds : 0.0,
            st.n_generated, st.decode_seconds, st.decode_seconds > 0 ? (st.n_generated > 1 ? st.n_generated - 1 : 0) / st.decode_seconds : 0.0,
            st.stop_reason == QM_STOP_EOG ? "end of generation" : st.stop_reason == QM_STOP_LENGTH ? "length"
            : st.stop_reason == QM_STOP_STRING ? "stop string" : st.stop_reason == QM_STOP_CALLBACK ? "callback" : "context full");
    rc = 0;
out:
    free(ids);
    free(chat_buf);
    free(file_prompt);
    qm_context_free(ctx);
    qm_model_free(model);
    return rc;
}
