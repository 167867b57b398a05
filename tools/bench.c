/* qwenmoe-bench: prefill and decode speed of one GGUF, measured the way llama-bench does.

   After the load (qm_model_load + qm_context_create, wall clock) and one warm-up that is not
   counted (a prefill of min(8, p) tokens and a decode of 2), each repetition runs two separate
   tests, each from an empty context (qm_context_truncate(c, 0)):
     pp<p>  one qm_eval of p random token ids (seeded; uniform over the vocab), as llama-bench
            evaluates its prompt: tokens/s = p / time of that call
     tg<n>  n qm_eval calls of one random token each (no sampling: the next id is random too,
            as in llama-bench): tokens/s = n / time of the n calls
   Reported: mean +- sample standard deviation and the median over the repetitions, the load
   time, the memory (peak RSS and, at the end, how much of the RSS is anonymous memory and how
   much the model file's mapping), and the bandwidth the decode achieves: the bytes one decoded
   token reads (the sum is printed with its terms) times the median tg tokens/s. */
#define _POSIX_C_SOURCE 200809L
#define QWENMOE_IMPLEMENTATION
#include "qwenmoe.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: qwenmoe-bench -m FILE [-t N] [-p N] [-n N] [-r REPS] [--ctx N] [--kv-f32] [--json]\n"
            "  Prefill (pp) and decode (tg) speed of a GGUF, as llama-bench measures them: each\n"
            "  test starts from an empty context and feeds random (seeded) token ids; pp is one\n"
            "  evaluation of N tokens, tg is N evaluations of one token. A warm-up (pp 8, tg 2)\n"
            "  runs first and is not counted. Progress goes to stderr, the results to stdout.\n"
            "  -m FILE        the model (GGUF, arch qwen3moe or qwen3)\n"
            "  -t N           threads (default: the number of online CPUs)\n"
            "  -p N           prompt tokens of the pp test (default 512; 0 skips it)\n"
            "  -n N           tokens of the tg test (default 128; 0 skips it)\n"
            "  -r REPS        repetitions (default 5)\n"
            "  --ctx N        context size (default p + n, as llama-bench; at least max(p, n, 8))\n"
            "  --batch N      prefill batch of the context (default 512)\n"
            "  --kv-f32       keep the KV cache in f32 (default f16)\n"
            "  --seed N       seed of the random token ids (default 1)\n"
            "  --json         print one line with one JSON object instead of the table\n"
            "  --no-cuda, --cuda-cpu-moe N, --cuda-experts-only\n"
            "                 with the CUDA object linked in (qwenmoe-bench-cuda): run on the CPU;\n"
            "                 keep the first N layers' experts on the CPU; only the experts on the GPU.\n"
            "                 The backend column says where the context ran: cuda (the whole\n"
            "                 forward), cuda-experts or cpu.\n"
            "  -h, --help     this text\n"
            "  Bandwidth: bytes read per decoded token = the non-expert weights (one row of\n"
            "  token_embd, all of output.weight, every other tensor not named *_exps) +\n"
            "  n_expert_used/n_expert of the expert tensors + the KV cache at the average tg\n"
            "  position; GB/s = that x the median tg tokens/s.\n");
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* xorshift64*: the random token ids */
static uint64_t rng_state;
static int32_t rand_token(int n_vocab) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (int32_t)(((rng_state * 2685821657736338717ull) >> 33) % (uint64_t)n_vocab);
}

static int parse_int(const char *opt, const char *s, long lo, long hi, int *out) {
    char *end;
    long v;
    if (!s) {
        fprintf(stderr, "qwenmoe-bench: %s needs a value (see --help)\n", opt);
        return 0;
    }
    v = strtol(s, &end, 10);
    if (end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "qwenmoe-bench: %s: expected an integer in [%ld, %ld], found '%s'\n", opt, lo, hi, s);
        return 0;
    }
    *out = (int)v;
    return 1;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct stats {
    double mean, sd, median;
} stats;

static double sqrt_d(double x) { /* Newton's method: no libm needed */
    double r = x > 1.0 ? x : 1.0;
    int i;
    if (x <= 0.0) return 0.0;
    for (i = 0; i < 200; i++) {
        double nr = 0.5 * (r + x / r);
        if (nr == r) break;
        r = nr;
    }
    return r;
}

static stats compute_stats(const double *v, int n) {
    stats s;
    double *tmp = (double *)malloc(sizeof(double) * (size_t)n), acc = 0.0;
    int i;
    s.mean = s.sd = s.median = 0.0;
    if (!tmp || n <= 0) { free(tmp); return s; }
    for (i = 0; i < n; i++) acc += v[i];
    s.mean = acc / n;
    acc = 0.0;
    for (i = 0; i < n; i++) acc += (v[i] - s.mean) * (v[i] - s.mean);
    s.sd = n > 1 ? sqrt_d(acc / (n - 1)) : 0.0;
    memcpy(tmp, v, sizeof(double) * (size_t)n);
    qsort(tmp, (size_t)n, sizeof(double), cmp_double);
    s.median = n % 2 ? tmp[n / 2] : 0.5 * (tmp[n / 2 - 1] + tmp[n / 2]);
    free(tmp);
    return s;
}

/* Memory, in KiB; -1 where the kernel did not say. */
typedef struct mem_info {
    long ru_maxrss, vm_hwm, vm_rss, rss_anon, rss_file, model_rss, model_pmd;
} mem_info;

static long status_field(const char *text, const char *key) {
    const char *p = strstr(text, key);
    long v;
    if (!p) return -1;
    p += strlen(key);
    if (sscanf(p, " %ld", &v) != 1) return -1;
    return v;
}

/* RSS of the mappings of the model file: /proc/self/smaps entries whose inode is the file's;
   *pmd gets the part of it mapped in 2 MiB pages (FilePmdMapped), which decides how often the
   forward pass misses the TLB. */
static long model_file_rss(const char *path, long *pmd) {
    struct stat st;
    FILE *f;
    char line[4096];
    long total = -1, v;
    int in_model = 0;
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    *pmd = -1;
    if (stat(path, &st) != 0) return -1;
    f = fopen("/proc/self/smaps", "r");
    if (!f) return -1;
    total = 0;
    *pmd = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi, off, ino;
        char perms[8], dev[32];
        int at = 0;
        if (sscanf(line, "%lx-%lx %7s %lx %31s %lu %n", &lo, &hi, perms, &off, dev, &ino, &at) == 6) {
            /* the same inode, and a mapped path that ends with the file's name */
            size_t ln = strlen(line), bl = strlen(base);
            while (ln > 0 && (line[ln - 1] == '\n' || line[ln - 1] == ' ')) line[--ln] = 0;
            in_model = ino != 0 && ino == (unsigned long)st.st_ino && at > 0 && ln >= bl && !strcmp(line + ln - bl, base);
        } else if (in_model && sscanf(line, "Rss: %ld", &v) == 1) {
            total += v;
        } else if (in_model && sscanf(line, "FilePmdMapped: %ld", &v) == 1) {
            *pmd += v;
        }
    }
    fclose(f);
    return total;
}

static mem_info read_mem(const char *model_path) {
    mem_info mi;
    struct rusage ru;
    FILE *f;
    char buf[8192];
    size_t n = 0;
    mi.ru_maxrss = mi.vm_hwm = mi.vm_rss = mi.rss_anon = mi.rss_file = mi.model_pmd = -1;
    if (getrusage(RUSAGE_SELF, &ru) == 0) mi.ru_maxrss = ru.ru_maxrss; /* KiB on Linux */
    f = fopen("/proc/self/status", "r");
    if (f) {
        n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
    }
    buf[n] = 0;
    if (n) {
        mi.vm_hwm = status_field(buf, "VmHWM:");
        mi.vm_rss = status_field(buf, "VmRSS:");
        mi.rss_anon = status_field(buf, "RssAnon:");
        mi.rss_file = status_field(buf, "RssFile:");
    }
    mi.model_rss = model_file_rss(model_path, &mi.model_pmd);
    return mi;
}

static double mib(long kib) { return kib < 0 ? -1.0 : (double)kib / 1024.0; }

static void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
        else if (ch < 0x20) fprintf(f, "\\u%04x", ch);
        else fputc(ch, f);
    }
    fputc('"', f);
}

static void json_arr(FILE *f, const double *v, int n) {
    int i;
    fputc('[', f);
    for (i = 0; i < n; i++) fprintf(f, "%s%.3f", i ? "," : "", v[i]);
    fputc(']', f);
}

static int str_eq(qm_str s, const char *z) { return s.len == strlen(z) && memcmp(s.ptr, z, s.len) == 0; }
static int str_has(qm_str s, const char *z) {
    size_t zl = strlen(z), i;
    for (i = 0; i + zl <= s.len; i++)
        if (memcmp(s.ptr + i, z, zl) == 0) return 1;
    return 0;
}

/* What one decoded token reads, in bytes. */
typedef struct traffic {
    double other;     /* tensors not named *_exps, other than token_embd and output */
    double embd_row;  /* one row of token_embd (0 when the LM head is token_embd) */
    double head;      /* output.weight, or all of token_embd when tied */
    double experts_all, experts; /* all *_exps tensors; the n_expert_used/n_expert part */
    double kv_per_pos, kv_positions, kv;
    double total;
    double tensor_bytes, params;
} traffic;

static traffic compute_traffic(const qm_model *m, int n_gen, int kv_elt) {
    const qm_gguf *g = qm_model_gguf(m);
    const qm_hparams *hp = qm_model_hparams(m);
    traffic t;
    int64_t i, n = qm_gguf_n_tensors(g);
    double embd_all = 0.0;
    memset(&t, 0, sizeof t);
    for (i = 0; i < n; i++) {
        const qm_gguf_tensor *x = qm_gguf_tensor_at(g, i);
        double ne = (double)x->ne[0] * (double)x->ne[1] * (double)x->ne[2] * (double)x->ne[3];
        t.tensor_bytes += (double)x->nbytes;
        t.params += ne;
        if (str_has(x->name, "_exps")) t.experts_all += (double)x->nbytes;
        else if (str_eq(x->name, "token_embd.weight")) {
            embd_all = (double)x->nbytes;
            t.embd_row = (double)qm_type_row_bytes(x->type, x->ne[0]);
        } else if (str_eq(x->name, "output.weight")) t.head = (double)x->nbytes;
        else t.other += (double)x->nbytes;
    }
    if (hp->tied_output) { /* the head reads the whole matrix, which holds the looked-up row */
        t.head = embd_all;
        t.embd_row = 0.0;
    }
    if (hp->n_expert > 0) t.experts = t.experts_all * hp->n_expert_used / hp->n_expert;
    t.kv_per_pos = (double)hp->n_layer * 2.0 * hp->n_head_kv * hp->head_dim * kv_elt;
    /* the token at position i attends to positions 0..i: i + 1 entries; mean over i < n_gen */
    t.kv_positions = n_gen > 0 ? (n_gen + 1) / 2.0 : 0.0;
    t.kv = t.kv_per_pos * t.kv_positions;
    t.total = t.other + t.embd_row + t.head + t.experts + t.kv;
    return t;
}

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static void human_count(char *buf, size_t cap, double v) {
    if (v >= 1e9) snprintf(buf, cap, "%.2f B", v / 1e9);
    else if (v >= 1e6) snprintf(buf, cap, "%.2f M", v / 1e6);
    else snprintf(buf, cap, "%.2f K", v / 1e3);
}

static void human_bytes(char *buf, size_t cap, double v) {
    if (v >= 1073741824.0) snprintf(buf, cap, "%.2f GiB", v / 1073741824.0);
    else snprintf(buf, cap, "%.2f MiB", v / 1048576.0);
}

int main(int argc, char **argv) {
    const char *path = NULL;
    int threads = 0, n_prompt = 512, n_gen = 128, reps = 5, n_ctx = 0, n_batch = 512, kv_f32 = 0, json = 0;
    int seed = 1, i, r, rc = 1, n_vocab, warm_pp;
    qm_model_params mp = qm_model_params_default();
    qm_context_params cp;
    qm_model *m = NULL;
    qm_context *c = NULL;
    qm_error err;
    int32_t *toks = NULL, tok;
    double *pp = NULL, *tg = NULL, t0, load_s;
    stats sp, sg;
    mem_info mi;
    traffic tr;
    struct stat st;
    double file_bytes = 0.0, gbps = 0.0;
    const qm_hparams *hp;
    const char *backend;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        else if (!strcmp(a, "-m")) { if (!v) { fprintf(stderr, "qwenmoe-bench: -m needs a file\n"); return 1; } path = v; i++; }
        else if (!strcmp(a, "-t")) { if (!parse_int(a, v, 1, 4096, &threads)) return 1; i++; }
        else if (!strcmp(a, "-p")) { if (!parse_int(a, v, 0, 1 << 20, &n_prompt)) return 1; i++; }
        else if (!strcmp(a, "-n")) { if (!parse_int(a, v, 0, 1 << 20, &n_gen)) return 1; i++; }
        else if (!strcmp(a, "-r")) { if (!parse_int(a, v, 1, 100000, &reps)) return 1; i++; }
        else if (!strcmp(a, "--ctx")) { if (!parse_int(a, v, 1, 1 << 24, &n_ctx)) return 1; i++; }
        else if (!strcmp(a, "--batch")) { if (!parse_int(a, v, 1, 1 << 20, &n_batch)) return 1; i++; }
        else if (!strcmp(a, "--seed")) { if (!parse_int(a, v, 0, 2147483647L, &seed)) return 1; i++; }
        else if (!strcmp(a, "--kv-f32")) kv_f32 = 1;
        else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--no-cuda")) mp.no_cuda = 1;
        else if (!strcmp(a, "--cuda-cpu-moe")) { if (!parse_int(a, v, 0, 100000, &mp.cuda_cpu_moe_layers)) return 1; i++; }
        else if (!strcmp(a, "--cuda-experts-only")) mp.cuda_experts_only = 1;
        else { fprintf(stderr, "qwenmoe-bench: unknown argument '%s' (see --help)\n", a); return 1; }
    }
    if (!path) { fprintf(stderr, "qwenmoe-bench: -m FILE is required (see --help)\n"); return 1; }
    if (n_prompt == 0 && n_gen == 0) { fprintf(stderr, "qwenmoe-bench: -p and -n are both 0: nothing to measure\n"); return 1; }
    if (threads == 0) threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1) threads = 1;
    if (n_ctx == 0) n_ctx = n_prompt + n_gen;
    if (n_ctx < 8) n_ctx = 8;
    if (n_ctx < n_prompt || n_ctx < n_gen) {
        fprintf(stderr, "qwenmoe-bench: --ctx %d is smaller than a test (pp %d, tg %d)\n", n_ctx, n_prompt, n_gen);
        return 1;
    }
    if (stat(path, &st) == 0) file_bytes = (double)st.st_size;

    memset(&cp, 0, sizeof cp);
    cp.n_ctx = n_ctx;
    cp.n_threads = threads;
    cp.n_batch = n_batch;
    cp.kv_type = kv_f32 ? QM_KV_F32 : QM_KV_F16;
    t0 = now_s();
    if (qm_model_load(path, &mp, &m, &err) != QM_OK) {
        fprintf(stderr, "qwenmoe-bench: %s: %s\n", path, err.message);
        return 1;
    }
    if (qm_context_create(m, &cp, &c, &err) != QM_OK) {
        fprintf(stderr, "qwenmoe-bench: %s: creating a context of %d tokens: %s\n", path, n_ctx, err.message);
        goto done;
    }
    load_s = now_s() - t0;
    hp = qm_model_hparams(m);
    n_vocab = hp->n_vocab;
    backend = qm_context_backend(c);
    rng_state = 0x9E3779B97F4A7C15ull ^ (uint64_t)seed;

    toks = (int32_t *)malloc(sizeof(int32_t) * (size_t)(n_prompt > 8 ? n_prompt : 8));
    pp = (double *)calloc((size_t)reps, sizeof(double));
    tg = (double *)calloc((size_t)reps, sizeof(double));
    if (!toks || !pp || !tg) { fprintf(stderr, "qwenmoe-bench: out of memory\n"); goto done; }

    /* warm-up, not counted */
    warm_pp = n_prompt > 0 && n_prompt < 8 ? n_prompt : 8;
    for (i = 0; i < warm_pp; i++) toks[i] = rand_token(n_vocab);
    if (qm_eval(c, toks, warm_pp, &err) != QM_OK) {
        fprintf(stderr, "qwenmoe-bench: %s: warm-up prefill of %d tokens: %s\n", path, warm_pp, err.message);
        goto done;
    }
    qm_context_truncate(c, 0);
    for (i = 0; i < 2; i++) {
        tok = rand_token(n_vocab);
        if (qm_eval(c, &tok, 1, &err) != QM_OK) {
            fprintf(stderr, "qwenmoe-bench: %s: warm-up decode: %s\n", path, err.message);
            goto done;
        }
    }

    for (r = 0; r < reps; r++) {
        if (n_prompt > 0) {
            double a;
            for (i = 0; i < n_prompt; i++) toks[i] = rand_token(n_vocab);
            qm_context_truncate(c, 0);
            a = now_s();
            if (qm_eval(c, toks, n_prompt, &err) != QM_OK) {
                fprintf(stderr, "qwenmoe-bench: %s: pp%d, repetition %d: %s\n", path, n_prompt, r + 1, err.message);
                goto done;
            }
            pp[r] = n_prompt / (now_s() - a);
        }
        if (n_gen > 0) {
            double a;
            qm_context_truncate(c, 0);
            tok = rand_token(n_vocab);
            a = now_s();
            for (i = 0; i < n_gen; i++) {
                if (qm_eval(c, &tok, 1, &err) != QM_OK) {
                    fprintf(stderr, "qwenmoe-bench: %s: tg%d, token %d of repetition %d: %s\n", path, n_gen, i + 1, r + 1, err.message);
                    goto done;
                }
                tok = rand_token(n_vocab);
            }
            tg[r] = n_gen / (now_s() - a);
        }
        fprintf(stderr, "qwenmoe-bench: rep %d/%d:", r + 1, reps);
        if (n_prompt > 0) fprintf(stderr, " pp%d %.2f t/s", n_prompt, pp[r]);
        if (n_gen > 0) fprintf(stderr, " tg%d %.2f t/s", n_gen, tg[r]);
        fprintf(stderr, "\n");
    }
    mi = read_mem(path); /* with the context still alive: its KV cache and buffers count */
    sp = compute_stats(pp, reps);
    sg = compute_stats(tg, reps);
    tr = compute_traffic(m, n_gen, kv_f32 ? 4 : 2);
    if (n_gen > 0) gbps = tr.total * sg.median / 1e9;

    if (json) {
        printf("{\"model\":");
        json_str(stdout, path);
        printf(",\"backend\":\"%s\",\"threads\":%d,\"n_prompt\":%d,\"n_gen\":%d,\"reps\":%d,\"n_ctx\":%d,\"kv_type\":\"%s\"",
               backend, threads, n_prompt, n_gen, reps, n_ctx, kv_f32 ? "f32" : "f16");
        printf(",\"file_bytes\":%.0f,\"tensor_bytes\":%.0f,\"params\":%.0f", file_bytes, tr.tensor_bytes, tr.params);
        printf(",\"load_s\":%.4f", load_s);
        if (n_prompt > 0) {
            printf(",\"pp_tps\":%.3f,\"pp_tps_mean\":%.3f,\"pp_tps_sd\":%.3f,\"pp_tps_all\":", sp.median, sp.mean, sp.sd);
            json_arr(stdout, pp, reps);
        } else printf(",\"pp_tps\":null,\"pp_tps_all\":[]");
        if (n_gen > 0) {
            printf(",\"tg_tps\":%.3f,\"tg_tps_mean\":%.3f,\"tg_tps_sd\":%.3f,\"tg_tps_all\":", sg.median, sg.mean, sg.sd);
            json_arr(stdout, tg, reps);
        } else printf(",\"tg_tps\":null,\"tg_tps_all\":[]");
        printf(",\"peak_rss_mb\":%.1f,\"ru_maxrss_mb\":%.1f,\"rss_mb\":%.1f,\"rss_anon_mb\":%.1f,\"rss_file_mb\":%.1f,\"rss_model_mb\":%.1f,\"rss_model_2m_mb\":%.1f",
               mib(mi.vm_hwm >= 0 ? mi.vm_hwm : mi.ru_maxrss), mib(mi.ru_maxrss), mib(mi.vm_rss), mib(mi.rss_anon),
               mib(mi.rss_file), mib(mi.model_rss), mib(mi.model_pmd));
        printf(",\"bytes_per_token\":%.0f,\"bytes_nonexpert\":%.0f,\"bytes_experts\":%.0f,\"bytes_kv\":%.0f",
               tr.total, tr.other + tr.embd_row + tr.head, tr.experts, tr.kv);
        if (n_gen > 0) printf(",\"tg_gbps\":%.4f}\n", gbps);
        else printf(",\"tg_gbps\":null}\n");
    } else {
        char sz[32], pr[32], cell[64];
        human_bytes(sz, sizeof sz, tr.tensor_bytes);
        human_count(pr, sizeof pr, tr.params);
        printf("| model | size | params | backend | threads | test | t/s | median t/s |\n");
        printf("| ----- | ---: | -----: | ------- | ------: | ---: | --: | ---------: |\n");
        if (n_prompt > 0) {
            snprintf(cell, sizeof cell, "pp%d", n_prompt);
            printf("| %s | %s | %s | %s | %d | %s | %.2f ± %.2f | %.2f |\n", base_name(path), sz, pr, backend, threads, cell,
                   sp.mean, sp.sd, sp.median);
        }
        if (n_gen > 0) {
            snprintf(cell, sizeof cell, "tg%d", n_gen);
            printf("| %s | %s | %s | %s | %d | %s | %.2f ± %.2f | %.2f |\n", base_name(path), sz, pr, backend, threads, cell,
                   sg.mean, sg.sd, sg.median);
        }
        printf("\n%d repetitions; t/s is mean ± sample standard deviation; size = tensor data (file %.0f bytes); KV cache %s, n_ctx %d\n",
               reps, file_bytes, kv_f32 ? "f32" : "f16", n_ctx);
        printf("load: %.3f s (qm_model_load + qm_context_create, wall clock; mmapped weights are paged in later, as they are first used)\n",
               load_s);
        printf("memory: peak RSS %.1f MiB (VmHWM; getrusage ru_maxrss %.1f MiB); at the end RSS %.1f MiB = anonymous %.1f MiB"
               " + file-backed %.1f MiB, of which the model file's mapping %.1f MiB (%.1f MiB of it in 2 MiB pages)\n",
               mib(mi.vm_hwm), mib(mi.ru_maxrss), mib(mi.vm_rss), mib(mi.rss_anon), mib(mi.rss_file), mib(mi.model_rss),
               mib(mi.model_pmd));
        if (n_gen > 0) {
            printf("bytes per decoded token: %.0f (%.2f MB) =\n", tr.total, tr.total / 1e6);
            printf("  %12.0f  tensors not named *_exps, other than token_embd and output (attention, norms, router)\n", tr.other);
            if (hp->tied_output)
                printf("  %12.0f  token_embd.weight, all of it (tied: it is also the LM head; the looked-up row is part of it)\n", tr.head);
            else {
                printf("  %12.0f  one row of token_embd.weight (the embedding lookup)\n", tr.embd_row);
                printf("  %12.0f  output.weight, all of it (the LM head)\n", tr.head);
            }
            if (hp->n_expert > 0)
                printf("  %12.0f  %d/%d of the *_exps tensors (%.0f bytes): n_expert_used of n_expert experts per layer\n", tr.experts,
                       hp->n_expert_used, hp->n_expert, tr.experts_all);
            printf("  %12.0f  KV cache: %.0f bytes per position (%d layers x K and V x %d kv heads x %d x %d bytes) x %.1f,\n"
                   "                the mean number of positions a tg%d token attends to ((n + 1) / 2)\n",
                   tr.kv, tr.kv_per_pos, hp->n_layer, hp->n_head_kv, hp->head_dim, kv_f32 ? 4 : 2, tr.kv_positions, n_gen);
            if (hp->n_expert > 0)
                printf("  the expert term: a decoded token uses n_expert_used distinct experts per layer, so it counts the\n"
                       "  expert bytes the token touches; as memory traffic it is an upper bound, since experts that the\n"
                       "  previous tokens used may still be in the CPU caches\n");
            printf("  not counted: activations, the KV write, the logits; every weight byte is counted as read from\n"
                   "  memory, although a small model's weights may partly stay in the CPU caches between tokens\n");
            printf("bandwidth (tg): %.2f MB/token x %.2f t/s (median) = %.3f GB/s\n", tr.total / 1e6, sg.median, gbps);
        }
    }
    rc = 0;
done:
    free(toks);
    free(pp);
    free(tg);
    qm_context_free(c);
    qm_model_free(m);
    return rc;
}
