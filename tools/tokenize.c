/* tokenize.c - qwenmoe-tokenize: encode text to token ids, or decode ids to text, with the
   tokenizer of a GGUF file (only the tokenizer is loaded, no weights). */
#define QWENMOE_IMPLEMENTATION
#include "../qwenmoe.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *HELP =
    "usage: qwenmoe-tokenize -m MODEL.gguf (-p TEXT | -f FILE | --decode IDS | --batch) [options]\n"
    "\n"
    "Encodes text with the model's tokenizer and prints the ids, space-separated, on one line.\n"
    "Special tokens (<|im_start|>, <think>, ...) written in the text are recognised unless\n"
    "--no-special is given. No BOS/EOS is added.\n"
    "\n"
    "  -m FILE          GGUF model (only its tokenizer.ggml.* keys are read)\n"
    "  -p TEXT          text to encode\n"
    "  -f FILE          encode the contents of FILE (bytes as they are; '-' for stdin)\n"
    "  --no-special     treat special-token text as plain text\n"
    "  --tokens         print each token as id:'text' (the vocab's byte-level form) instead\n"
    "  --decode IDS     decode ids (separated by spaces or commas) and print the text\n"
    "  --skip-special   with --decode: leave control tokens out\n"
    "  --batch          read lines of hex-encoded UTF-8 from stdin; for each, print its ids\n"
    "                   (space-separated; an empty line for no ids). With --decode-batch,\n"
    "                   read lines of ids and print the decoded text hex-encoded instead.\n"
    "  --decode-batch   see --batch\n"
    "  -h, --help       this text\n";

static int read_all(FILE *f, char **out, size_t *len) {
    size_t cap = 1 << 16, n = 0, got;
    char *buf = (char *)malloc(cap), *nb;
    if (!buf) return 0;
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            nb = (char *)realloc(buf, cap * 2);
            if (!nb) { free(buf); return 0; }
            buf = nb;
            cap *= 2;
        }
    }
    if (ferror(f)) { free(buf); return 0; }
    *out = buf;
    *len = n;
    return 1;
}

/* Parse "1 2 3" or "1,2,3" into ids; returns the count, -1 on a bad number. */
static int parse_ids(const char *s, int32_t **out) {
    size_t cap = strlen(s) / 2 + 2;
    int n = 0;
    int32_t *ids = (int32_t *)malloc(sizeof(int32_t) * cap);
    if (!ids) return -1;
    while (*s) {
        char *end;
        long v;
        while (*s == ',' || *s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') s++;
        if (!*s) break;
        v = strtol(s, &end, 10);
        if (end == s || v < 0 || v > 0x7fffffffL) { free(ids); return -1; }
        ids[n++] = (int32_t)v;
        s = end;
    }
    *out = ids;
    return n;
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static void print_ids(const int32_t *ids, int n) {
    int i;
    for (i = 0; i < n; i++) printf(i ? " %d" : "%d", (int)ids[i]);
    printf("\n");
}

/* Encode; returns the ids (caller frees) and their count, or -1. */
static int encode(const qm_tokenizer *t, const char *text, size_t len, int flags, int32_t **out) {
    int cap = (int)(len < 64 ? 64 : len + 16), n;
    int32_t *ids;
    for (;;) {
        ids = (int32_t *)malloc(sizeof(int32_t) * (size_t)cap);
        if (!ids) return -1;
        n = qm_tokenize(t, text, len, ids, cap, flags);
        if (n < 0) { fprintf(stderr, "error: tokenize: %s\n", qm_result_string((qm_result)n)); free(ids); return -1; }
        if (n <= cap) break;
        free(ids);
        cap = n;
    }
    *out = ids;
    return n;
}

/* Decode; prints the text (raw, or hex when hex is set). */
static int decode(const qm_tokenizer *t, const int32_t *ids, int n, int flags, int hex) {
    int64_t len = qm_detokenize(t, ids, n, NULL, 0, flags), i;
    char *buf;
    if (len < 0) { fprintf(stderr, "error: decode: %s (an id is out of range 0..%d)\n", qm_result_string((qm_result)len), (int)qm_tokenizer_n_vocab(t) - 1); return 0; }
    buf = (char *)malloc((size_t)len + 1);
    if (!buf) return 0;
    qm_detokenize(t, ids, n, buf, (size_t)len + 1, flags);
    if (hex) {
        for (i = 0; i < len; i++) printf("%02x", (unsigned char)buf[i]);
        printf("\n");
    } else {
        fwrite(buf, 1, (size_t)len, stdout);
        printf("\n");
    }
    free(buf);
    return 1;
}

static int batch(const qm_tokenizer *t, int flags, int decode_mode) {
    char *all, *line, *nl;
    size_t len, k;
    if (!read_all(stdin, &all, &len)) { fprintf(stderr, "error: cannot read stdin\n"); return 1; }
    line = all;
    while (line < all + len) {
        size_t ll;
        nl = (char *)memchr(line, '\n', (size_t)(all + len - line));
        ll = nl ? (size_t)(nl - line) : (size_t)(all + len - line);
        if (ll && line[ll - 1] == '\r') ll--;
        if (decode_mode) {
            int32_t *ids;
            int n;
            line[ll] = 0;
            n = parse_ids(line, &ids);
            if (n < 0) { fprintf(stderr, "error: --decode-batch: bad id list '%s'\n", line); free(all); return 1; }
            if (!decode(t, ids, n, flags, 1)) { free(ids); free(all); return 1; }
            free(ids);
        } else {
            int32_t *ids;
            int n;
            if (ll % 2) { fprintf(stderr, "error: --batch: odd number of hex digits in a line\n"); free(all); return 1; }
            for (k = 0; k < ll / 2; k++) {
                int hi = hexval(line[2 * k]), lo = hexval(line[2 * k + 1]);
                if (hi < 0 || lo < 0) { fprintf(stderr, "error: --batch: not hex: '%.*s'\n", (int)ll, line); free(all); return 1; }
                line[k] = (char)(hi * 16 + lo);
            }
            n = encode(t, line, ll / 2, flags, &ids);
            if (n < 0) { free(all); return 1; }
            print_ids(ids, n);
            free(ids);
        }
        if (!nl) break;
        line = nl + 1;
    }
    fflush(stdout);
    free(all);
    return 0;
}

int main(int argc, char **argv) {
    const char *model = NULL, *text = NULL, *file = NULL, *decode_arg = NULL;
    int no_special = 0, skip_special = 0, show_tokens = 0, batch_mode = 0, decode_batch = 0, i, rc = 0;
    qm_gguf *g = NULL;
    qm_tokenizer *t = NULL;
    qm_error err;
    qm_gguf_params gp;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { fputs(HELP, stdout); return 0; }
        else if (!strcmp(a, "-m") && i + 1 < argc) model = argv[++i];
        else if (!strcmp(a, "-p") && i + 1 < argc) text = argv[++i];
        else if (!strcmp(a, "-f") && i + 1 < argc) file = argv[++i];
        else if (!strcmp(a, "--decode") && i + 1 < argc) decode_arg = argv[++i];
        else if (!strcmp(a, "--no-special")) no_special = 1;
        else if (!strcmp(a, "--skip-special")) skip_special = 1;
        else if (!strcmp(a, "--tokens")) show_tokens = 1;
        else if (!strcmp(a, "--batch")) batch_mode = 1;
        else if (!strcmp(a, "--decode-batch")) decode_batch = 1;
        else { fprintf(stderr, "error: unknown or incomplete argument '%s' (see --help)\n", a); return 1; }
    }
    if (!model) { fprintf(stderr, "error: -m MODEL.gguf is required (see --help)\n"); return 1; }
    if ((text != NULL) + (file != NULL) + (decode_arg != NULL) + (batch_mode || decode_batch) != 1) {
        fprintf(stderr, "error: give exactly one of -p, -f, --decode, --batch/--decode-batch (see --help)\n");
        return 1;
    }
    memset(&gp, 0, sizeof(gp));
    if (qm_gguf_open(model, &gp, &g, &err) != QM_OK) { fprintf(stderr, "error: %s\n", err.message); return 1; }
    if (qm_tokenizer_load(g, &t, &err) != QM_OK) { fprintf(stderr, "error: %s\n", err.message); qm_gguf_close(g); return 1; }

    if (batch_mode || decode_batch) {
        rc = batch(t, decode_batch ? (skip_special ? QM_DETOK_SKIP_SPECIAL : 0) : (no_special ? 0 : QM_TOKENIZE_SPECIAL),
                   decode_batch);
    } else if (decode_arg) {
        int32_t *ids;
        int n = parse_ids(decode_arg, &ids);
        if (n < 0) { fprintf(stderr, "error: --decode: expected ids separated by spaces or commas, got '%s'\n", decode_arg); rc = 1; }
        else {
            if (!decode(t, ids, n, skip_special ? QM_DETOK_SKIP_SPECIAL : 0, 0)) rc = 1;
            free(ids);
        }
    } else {
        char *buf = NULL;
        size_t len;
        int32_t *ids;
        int n;
        if (file) {
            FILE *f = strcmp(file, "-") ? fopen(file, "rb") : stdin;
            if (!f) { fprintf(stderr, "error: cannot open '%s'\n", file); rc = 1; }
            else {
                if (!read_all(f, &buf, &len)) { fprintf(stderr, "error: cannot read '%s'\n", file); rc = 1; }
                if (f != stdin) fclose(f);
            }
        } else {
            len = strlen(text);
        }
        if (!rc) {
            n = encode(t, buf ? buf : text, len, no_special ? 0 : QM_TOKENIZE_SPECIAL, &ids);
            if (n < 0) rc = 1;
            else if (show_tokens) {
                for (i = 0; i < n; i++) {
                    qm_str s = qm_token_text(t, ids[i]);
                    printf(i ? " %d:'%.*s'" : "%d:'%.*s'", (int)ids[i], (int)s.len, s.ptr);
                }
                printf("\n");
                free(ids);
            } else {
                print_ids(ids, n);
                free(ids);
            }
        }
        free(buf);
    }
    qm_tokenizer_free(t);
    qm_gguf_close(g);
    return rc;
}
