/* qwenmoe-inspect - print what a GGUF file holds: metadata, tensor table, totals by type, and
   the hyperparameters a Qwen3-MoE / Qwen3 loader reads from it. Uses only the qm_gguf_* API.

   Build:  cc -std=c99 -O2 -I. tools/inspect.c -o build/qwenmoe-inspect -lpthread
   Usage:  qwenmoe-inspect [--no-tensors] [--arrays N] FILE     (see --help)
   A file the reader rejects: its error message on stderr, exit status 1.
*/
#define QWENMOE_IMPLEMENTATION
#include "qwenmoe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *in_prog = "qwenmoe-inspect";

static void in_help(void) {
    printf("usage: qwenmoe-inspect [options] FILE\n"
           "\n"
           "Prints a GGUF file's metadata (long arrays abbreviated: element type, count, first\n"
           "elements), its tensor table (name, type, shape, offset, bytes), totals by tensor type,\n"
           "and the hyperparameters a qwen3moe / qwen3 loader reads (with the defaults used for\n"
           "absent keys), then checks the tensors' shapes against them.\n"
           "\n"
           "  --no-tensors   leave out the tensor table (totals are still printed)\n"
           "  --arrays N     array elements to show (default 5)\n"
           "  --no-mmap      read the file instead of mapping it\n"
           "  -h, --help     this text\n"
           "\n"
           "Exit status: 0 when the file was read, 1 when the reader rejected it (its message is\n"
           "printed) or on a usage error.\n");
}

static const char *in_gtype(int t) {
    static const char *const n[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "str", "arr", "u64", "i64", "f64"};
    return t >= 0 && t < (int)(sizeof n / sizeof n[0]) ? n[t] : "?";
}

/* print a string with escapes, at most max bytes of it */
static void in_putstr(qm_str s, uint64_t max) {
    uint64_t i, n = s.len < max ? s.len : max;
    putchar('"');
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c == '\n') printf("\\n");
        else if (c == '\t') printf("\\t");
        else if (c == '\r') printf("\\r");
        else if (c < 0x20 || c == 0x7f) printf("\\x%02x", c);
        else putchar(c);
    }
    putchar('"');
    if (n < s.len) printf("... (%llu bytes)", (unsigned long long)s.len);
}

static void in_scalar(const qm_gguf *g, int64_t i, int t) {
    int64_t iv;
    double fv;
    qm_str s;
    if (t == QM_GGUF_STRING && qm_gguf_kv_str(g, i, &s) == QM_OK) in_putstr(s, 72);
    else if (t == QM_GGUF_BOOL && qm_gguf_kv_i64(g, i, &iv) == QM_OK) printf("%s", iv ? "true" : "false");
    else if ((t == QM_GGUF_FLOAT32 || t == QM_GGUF_FLOAT64) && qm_gguf_kv_f64(g, i, &fv) == QM_OK) printf("%.7g", fv);
    else if (qm_gguf_kv_i64(g, i, &iv) == QM_OK) printf("%lld", (long long)iv);
    else if (qm_gguf_kv_f64(g, i, &fv) == QM_OK) printf("%.0f", fv); /* u64 above INT64_MAX */
    else printf("?");
}

static void in_metadata(const qm_gguf *g, uint64_t show) {
    int64_t i, n = qm_gguf_n_kv(g);
    printf("\nmetadata (%lld keys):\n", (long long)n);
    for (i = 0; i < n; i++) {
        qm_str k = qm_gguf_key(g, i);
        int t = (int)qm_gguf_kv_type(g, i);
        char tbuf[48];
        printf("  %-46.*s ", (int)(k.len > 200 ? 200 : k.len), k.ptr ? k.ptr : "");
        if (t == QM_GGUF_ARRAY) {
            int at = (int)qm_gguf_arr_type(g, i);
            uint64_t cnt = qm_gguf_arr_count(g, i), j;
            snprintf(tbuf, sizeof tbuf, "arr[%s,%llu]", in_gtype(at), (unsigned long long)cnt);
            printf("%-16s = [", tbuf);
            for (j = 0; j < cnt && j < show; j++) {
                int64_t iv;
                double fv;
                qm_str s;
                if (j) printf(", ");
                if (at == QM_GGUF_STRING && qm_gguf_arr_str(g, i, j, &s) == QM_OK) in_putstr(s, 40);
                else if ((at == QM_GGUF_FLOAT32 || at == QM_GGUF_FLOAT64) && qm_gguf_arr_f64(g, i, j, &fv) == QM_OK) printf("%.7g", fv);
                else if (qm_gguf_arr_i64(g, i, j, &iv) == QM_OK) printf("%lld", (long long)iv);
                else printf("?");
            }
            printf("%s]\n", cnt > show ? ", ..." : "");
        } else {
            printf("%-16s = ", in_gtype(t));
            in_scalar(g, i, t);
            putchar('\n');
        }
    }
}

static void in_shape(const qm_gguf_tensor *t, char *buf, size_t cap) {
    int d;
    size_t o = 0;
    o += (size_t)snprintf(buf + o, cap - o, "[");
    for (d = 0; d < t->n_dims && o < cap; d++) o += (size_t)snprintf(buf + o, cap - o, "%s%lld", d ? ", " : "", (long long)t->ne[d]);
    if (o < cap) snprintf(buf + o, cap - o, "]");
}

static void in_tensors(const qm_gguf *g, int table) {
    int64_t i, n = qm_gguf_n_tensors(g);
    uint64_t count[QM_TYPE_COUNT + 1], bytes[QM_TYPE_COUNT + 1], total_bytes = 0;
    double params = 0;
    int t;
    memset(count, 0, sizeof count);
    memset(bytes, 0, sizeof bytes);
    if (table) {
        printf("\ntensors (%lld; offsets from the start of the data section):\n", (long long)n);
        printf("  %5s  %-36s %-8s %-22s %14s %14s\n", "#", "name", "type", "shape", "offset", "bytes");
    }
    for (i = 0; i < n; i++) {
        const qm_gguf_tensor *tt = qm_gguf_tensor_at(g, i);
        const char *tn = qm_type_name(tt->type);
        int slot = tt->type >= 0 && tt->type < QM_TYPE_COUNT ? tt->type : QM_TYPE_COUNT;
        char shape[96];
        int d;
        double nel = 1;
        for (d = 0; d < tt->n_dims; d++) nel *= (double)tt->ne[d];
        params += nel;
        count[slot]++;
        bytes[slot] += tt->nbytes;
        total_bytes += tt->nbytes;
        if (table) {
            in_shape(tt, shape, sizeof shape);
            printf("  %5lld  %-36.*s %-8s %-22s %14llu %14llu\n", (long long)i, (int)(tt->name.len > 64 ? 64 : tt->name.len),
                   tt->name.ptr, tn ? tn : "?", shape, (unsigned long long)tt->offset, (unsigned long long)tt->nbytes);
        }
    }
    printf("\ntotals by type:\n");
    for (t = 0; t <= QM_TYPE_COUNT; t++) {
        const char *tn = t < QM_TYPE_COUNT ? qm_type_name(t) : "other";
        if (!count[t]) continue;
        printf("  %-8s %5llu tensors %16llu bytes %10.3f GiB\n", tn ? tn : "?", (unsigned long long)count[t],
               (unsigned long long)bytes[t], (double)bytes[t] / 1073741824.0);
    }
    printf("  %-8s %5lld tensors %16llu bytes %10.3f GiB, %.0f parameters, %.2f bits per weight\n", "total", (long long)n,
           (unsigned long long)total_bytes, (double)total_bytes / 1073741824.0, params,
           params > 0 ? 8.0 * (double)total_bytes / params : 0.0);
}

/* ---- hyperparameters ----------------------------------------------------------------- */

typedef struct in_hp {
    char arch[32];
    int64_t n_layer, n_ctx, n_embd, n_ff, n_head, n_head_kv, head_dim, head_dim_v, n_rot, n_expert, n_expert_used, n_ff_exp, n_vocab;
    double rope_base, eps;
    int tied, rope_absent;
} in_hp;

/* integer key of the arch: prints the line; returns 1 when present */
static int in_int(const qm_gguf *g, const char *arch, const char *suffix, const char *label, int64_t *out, int64_t dflt,
                  const char *dflt_what) {
    char key[128];
    qm_error err;
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    if (qm_gguf_get_i64(g, key, out, &err) == QM_OK) {
        printf("  %-16s %-14lld (%s)\n", label, (long long)*out, key);
        return 1;
    }
    *out = dflt;
    if (err.code == QM_ERR_NOT_FOUND) {
        if (dflt_what) printf("  %-16s %-14lld (%s absent -> %s)\n", label, (long long)dflt, key, dflt_what);
        else printf("  %-16s %-14s (%s absent)\n", label, "-", key);
    } else {
        printf("  %-16s %-14s (%s)\n", label, "invalid", err.message);
    }
    return 0;
}

static void in_check(const qm_gguf *g, const in_hp *h, int moe) {
    int64_t l, n_bad = 0, n_exp = 0;
    char name[96];
    struct { const char *base; int64_t ne[3]; } want[16];
    int k, nw;
#define WANT(b, a0, a1, a2) (want[nw].base = (b), want[nw].ne[0] = (a0), want[nw].ne[1] = (a1), want[nw].ne[2] = (a2), nw++)
    printf("\nshape check (tensors a %s loader expects, from the hyperparameters above):\n", moe ? "qwen3moe" : "qwen3");
    for (l = -1; l <= h->n_layer; l++) {
        nw = 0;
        if (l == -1) {
            WANT("token_embd", h->n_embd, h->n_vocab, 1);
            WANT("output_norm", h->n_embd, 1, 1);
            if (!h->tied) WANT("output", h->n_embd, h->n_vocab, 1);
        } else if (l < h->n_layer) {
            WANT("attn_norm", h->n_embd, 1, 1);
            WANT("attn_q", h->n_embd, h->head_dim * h->n_head, 1);
            WANT("attn_k", h->n_embd, h->head_dim * h->n_head_kv, 1);
            WANT("attn_v", h->n_embd, h->head_dim_v * h->n_head_kv, 1);
            WANT("attn_output", h->head_dim_v * h->n_head, h->n_embd, 1);
            WANT("attn_q_norm", h->head_dim, 1, 1);
            WANT("attn_k_norm", h->head_dim, 1, 1);
            WANT("ffn_norm", h->n_embd, 1, 1);
            if (moe) {
                WANT("ffn_gate_inp", h->n_embd, h->n_expert, 1);
                WANT("ffn_gate_exps", h->n_embd, h->n_ff_exp, h->n_expert);
                WANT("ffn_up_exps", h->n_embd, h->n_ff_exp, h->n_expert);
                WANT("ffn_down_exps", h->n_ff_exp, h->n_embd, h->n_expert);
            } else {
                WANT("ffn_gate", h->n_embd, h->n_ff, 1);
                WANT("ffn_up", h->n_embd, h->n_ff, 1);
                WANT("ffn_down", h->n_ff, h->n_embd, 1);
            }
        }
        for (k = 0; k < nw; k++) {
            const qm_gguf_tensor *t;
            int d, ok = 1;
            if (l >= 0) snprintf(name, sizeof name, "blk.%lld.%s.weight", (long long)l, want[k].base);
            else snprintf(name, sizeof name, "%s.weight", want[k].base);
            n_exp++;
            t = qm_gguf_find_tensor(g, name);
            if (!t) {
                if (n_bad++ < 12) printf("  missing: %s\n", name);
                continue;
            }
            for (d = 0; d < 3; d++) if ((d < t->n_dims ? t->ne[d] : 1) != want[k].ne[d]) ok = 0;
            if (!ok && n_bad++ < 12) {
                char shape[96];
                in_shape(t, shape, sizeof shape);
                printf("  shape: %s is %s, expected [%lld, %lld, %lld]\n", name, shape, (long long)want[k].ne[0],
                       (long long)want[k].ne[1], (long long)want[k].ne[2]);
            }
        }
    }
#undef WANT
    if (n_bad > 12) printf("  ... %lld problems in all\n", (long long)n_bad);
    if (n_bad == 0)
        printf("  all %lld expected tensors present with the expected shapes%s\n", (long long)n_exp,
               qm_gguf_n_tensors(g) == n_exp ? "" : " (the file has others too)");
    if (qm_gguf_n_tensors(g) != n_exp)
        printf("  the file has %lld tensors, the loader expects %lld\n", (long long)qm_gguf_n_tensors(g), (long long)n_exp);
}

static void in_hparams(const qm_gguf *g) {
    in_hp h;
    qm_str s;
    qm_error err;
    double fv;
    int64_t ki, iv;
    char key[128];
    int moe;
    memset(&h, 0, sizeof h);
    printf("\nhyperparameters (as a loader reads them):\n");
    if (qm_gguf_get_str(g, "general.architecture", &s, &err) != QM_OK) {
        printf("  %-16s %s\n", "arch", err.message);
        return;
    }
    snprintf(h.arch, sizeof h.arch, "%.*s", (int)(s.len < 31 ? s.len : 31), s.ptr);
    printf("  %-16s %-14s (general.architecture)%s\n", "arch", h.arch,
           strcmp(h.arch, "qwen3moe") == 0 || strcmp(h.arch, "qwen3") == 0 ? "" : "  <- not qwen3moe or qwen3");
    moe = strcmp(h.arch, "qwen3") != 0;
    in_int(g, h.arch, "block_count", "layers", &h.n_layer, 0, NULL);
    in_int(g, h.arch, "context_length", "n_ctx_train", &h.n_ctx, 0, NULL);
    in_int(g, h.arch, "embedding_length", "n_embd", &h.n_embd, 0, NULL);
    in_int(g, h.arch, "feed_forward_length", "n_ff", &h.n_ff, 0, NULL);
    in_int(g, h.arch, "attention.head_count", "heads", &h.n_head, 0, NULL);
    in_int(g, h.arch, "attention.head_count_kv", "kv heads", &h.n_head_kv, h.n_head, "= heads");
    in_int(g, h.arch, "attention.key_length", "head_dim", &h.head_dim, h.n_head ? h.n_embd / h.n_head : 0, "n_embd / heads");
    in_int(g, h.arch, "attention.value_length", "head_dim (v)", &h.head_dim_v, h.head_dim, "= head_dim");
    in_int(g, h.arch, "rope.dimension_count", "n_rot", &h.n_rot, h.head_dim, "= head_dim");
    snprintf(key, sizeof key, "%s.rope.freq_base", h.arch);
    if (qm_gguf_get_f64(g, key, &fv, &err) == QM_OK) printf("  %-16s %-14.7g (%s)\n", "rope base", fv, key);
    else if (err.code == QM_ERR_NOT_FOUND) printf("  %-16s %-14s (%s absent -> 1e6 default; llama.cpp would use 10000)\n", "rope base", "1000000", key);
    else printf("  %-16s %-14s (%s)\n", "rope base", "invalid", err.message);
    snprintf(key, sizeof key, "%s.attention.layer_norm_rms_epsilon", h.arch);
    if (qm_gguf_get_f64(g, key, &fv, &err) == QM_OK) printf("  %-16s %-14.7g (%s)\n", "rms eps", fv, key);
    else printf("  %-16s %-14s (%s)\n", "rms eps", "-", err.message);
    if (moe) {
        in_int(g, h.arch, "expert_count", "experts", &h.n_expert, 0, NULL);
        in_int(g, h.arch, "expert_used_count", "experts used", &h.n_expert_used, 0, NULL);
        in_int(g, h.arch, "expert_feed_forward_length", "ff_exp", &h.n_ff_exp, h.n_expert_used ? h.n_ff / h.n_expert_used : 0,
               "n_ff / experts used");
    }
    ki = qm_gguf_find_key(g, "tokenizer.ggml.tokens");
    {
        const qm_gguf_tensor *emb = qm_gguf_find_tensor(g, "token_embd.weight");
        int64_t rows = emb ? emb->ne[1] : -1;
        if (ki >= 0 && qm_gguf_kv_type(g, ki) == QM_GGUF_ARRAY) {
            h.n_vocab = (int64_t)qm_gguf_arr_count(g, ki);
            printf("  %-16s %-14lld (tokenizer.ggml.tokens; token_embd has %lld rows%s)\n", "vocab", (long long)h.n_vocab,
                   (long long)rows, rows == h.n_vocab ? "" : " <- differs");
        } else {
            h.n_vocab = rows;
            printf("  %-16s %-14lld (tokenizer.ggml.tokens absent; token_embd rows)\n", "vocab", (long long)rows);
        }
    }
    h.tied = qm_gguf_find_tensor(g, "output.weight") == NULL;
    printf("  %-16s %-14s (%s)\n", "tied output", h.tied ? "yes" : "no",
           h.tied ? "output.weight absent: the LM head is token_embd" : "output.weight present");
    if (qm_gguf_get_str(g, "tokenizer.ggml.model", &s, &err) == QM_OK) {
        qm_str pre;
        printf("  %-16s %.*s", "tokenizer", (int)(s.len > 40 ? 40 : s.len), s.ptr);
        if (qm_gguf_get_str(g, "tokenizer.ggml.pre", &pre, &err) == QM_OK) printf(" / %.*s", (int)(pre.len > 40 ? 40 : pre.len), pre.ptr);
        putchar('\n');
    }
    {
        static const char *const ids[] = {"bos", "eos", "padding"};
        int k;
        for (k = 0; k < 3; k++) {
            snprintf(key, sizeof key, "tokenizer.ggml.%s_token_id", ids[k]);
            if (qm_gguf_get_i64(g, key, &iv, &err) == QM_OK) {
                qm_str t;
                printf("  %-16s %-14lld ", ids[k], (long long)iv);
                if (ki >= 0 && iv >= 0 && qm_gguf_arr_str(g, ki, (uint64_t)iv, &t) == QM_OK) { putchar('('); in_putstr(t, 40); putchar(')'); }
                putchar('\n');
            }
        }
    }
    if (qm_gguf_get_str(g, "tokenizer.chat_template", &s, &err) == QM_OK)
        printf("  %-16s %llu bytes\n", "chat template", (unsigned long long)s.len);
    else
        printf("  %-16s %-14s (tokenizer.chat_template absent)\n", "chat template", "-");
    if (h.n_layer > 0 && h.n_layer < 100000 && h.n_embd > 0 && h.n_head > 0) in_check(g, &h, moe);
}

int main(int argc, char **argv) {
    const char *path = NULL;
    int table = 1, i;
    uint64_t show = 5;
    qm_gguf_params params;
    qm_gguf *g = NULL;
    qm_error err;
    qm_result r;

    memset(&params, 0, sizeof params);
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) { in_help(); return 0; }
        else if (strcmp(a, "--no-tensors") == 0) table = 0;
        else if (strcmp(a, "--no-mmap") == 0) params.no_mmap = 1;
        else if (strcmp(a, "--arrays") == 0) {
            char *end;
            long v;
            if (i + 1 >= argc) { fprintf(stderr, "%s: error: --arrays needs a value\n", in_prog); return 1; }
            v = strtol(argv[++i], &end, 10);
            if (*end || v < 0 || end == argv[i]) { fprintf(stderr, "%s: error: --arrays: '%s' is not a count\n", in_prog, argv[i]); return 1; }
            show = (uint64_t)v;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "%s: error: unknown option '%s' (see --help)\n", in_prog, a);
            return 1;
        } else if (path) {
            fprintf(stderr, "%s: error: one file at a time ('%s' and '%s')\n", in_prog, path, a);
            return 1;
        } else {
            path = a;
        }
    }
    if (!path) { fprintf(stderr, "%s: error: no file given (see --help)\n", in_prog); return 1; }
    memset(&err, 0, sizeof err);
    r = qm_gguf_open(path, &params, &g, &err);
    if (r != QM_OK) {
        fprintf(stderr, "%s: error: %s\n", in_prog, err.message[0] ? err.message : qm_result_string(r));
        return 1;
    }
    printf("%s: GGUF v%u, %llu bytes, alignment %u, %lld metadata keys, %lld tensors%s\n", qm_gguf_path(g),
           (unsigned)qm_gguf_version(g), (unsigned long long)qm_gguf_file_size(g), (unsigned)qm_gguf_alignment(g),
           (long long)qm_gguf_n_kv(g), (long long)qm_gguf_n_tensors(g), qm_gguf_is_mmapped(g) ? " (mapped)" : "");
    in_metadata(g, show);
    in_tensors(g, table);
    in_hparams(g);
    qm_gguf_close(g);
    return 0;
}
