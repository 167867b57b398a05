/* golden_cmp.c - the number crunching of tests/test_golden.sh: compares our teacher-forced logits
   (float32 [n][n_vocab] files written by qwenmoe-logits) with the llama.cpp reference stored in a
   golden file (tests/golden/<model>.golden, written by tools/parity/parity.mjs).

   Each "P <seq> <pos> <our old top-1> id:logprob ... r:logprob" line holds llama.cpp's top tokens
   at one position and the log of the probability of all the others. For every such line this
   program reads our logits row, softmaxes it (double), and computes
     - whether our top-1 (first index of the max logit) is llama.cpp's top-1 (the first entry);
     - the KL divergence KL(P_llama || P_ours) over the bins {each stored token, the rest}, a
       lower bound of the full KL (data processing inequality), close to it when the stored
       tokens hold nearly all the mass (parity.mjs stores up to 99.9 %, at most 8 tokens).
   It prints one line
     positions N top1 M (X %) kld_est mean Y max Z ours_top1_changed C
   and exits 0 when X >= --min-top1 and Y <= --max-kld, 1 when not or on an error.

   Build: cc -std=c99 -O2 tools/parity/golden_cmp.c -o build/golden/golden-cmp -lm
   (tests/test_golden.sh builds it itself). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SEQ 8
#define MAX_K 64

static const char *HELP =
    "usage: golden-cmp --golden FILE --vocab N --seq NAME=LOGITS.bin [--seq ...]\n"
    "                  [--min-top1 F] [--max-kld X]\n"
    "Compares qwenmoe-logits output (float32 [n][N]) with the llama.cpp reference of a golden\n"
    "file's P lines: top-1 agreement and the KL divergence over the stored bins.\n"
    "  --golden FILE    tests/golden/<model>.golden\n"
    "  --vocab N        logits per position\n"
    "  --seq NAME=FILE  the logits of the golden file's sequence NAME (its S line)\n"
    "  --min-top1 F     fail when the same-top-1 rate is below F (default 0.99)\n"
    "  --max-kld X      fail when the mean KL estimate is above X (default 1e-3)\n"
    "Prints: positions N top1 M (X %) kld_est mean Y max Z ours_top1_changed C\n"
    "Exit status 0 when both criteria hold, 1 otherwise or on an error.\n";

static double parse_lp(const char *s, char **end) {
    if (strncmp(s, "-inf", 4) == 0) {
        *end = (char *)s + 4;
        return -HUGE_VAL;
    }
    return strtod(s, end);
}

int main(int argc, char **argv) {
    const char *golden = NULL, *seq_name[MAX_SEQ], *seq_file[MAX_SEQ];
    FILE *seq_fp[MAX_SEQ];
    long vocab = 0, positions = 0, same = 0, changed = 0;
    int n_seq = 0, i, rc = 0;
    double min_top1 = 0.99, max_kld = 1e-3, kl_sum = 0, kl_max = 0;
    size_t cap = 1 << 20;
    char *line;
    float *row;
    FILE *g;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { fputs(HELP, stdout); return 0; }
        if (i + 1 >= argc) { fprintf(stderr, "golden-cmp: error: '%s' needs a value or is unknown (see --help)\n", a); return 1; }
        if (!strcmp(a, "--golden")) golden = argv[++i];
        else if (!strcmp(a, "--vocab")) vocab = strtol(argv[++i], NULL, 10);
        else if (!strcmp(a, "--min-top1")) min_top1 = strtod(argv[++i], NULL);
        else if (!strcmp(a, "--max-kld")) max_kld = strtod(argv[++i], NULL);
        else if (!strcmp(a, "--seq")) {
            char *eq = strchr(argv[++i], '=');
            if (!eq || n_seq == MAX_SEQ) { fprintf(stderr, "golden-cmp: error: --seq wants NAME=FILE (at most %d), got '%s'\n", MAX_SEQ, argv[i]); return 1; }
            *eq = 0;
            seq_name[n_seq] = argv[i];
            seq_file[n_seq] = eq + 1;
            n_seq++;
        } else { fprintf(stderr, "golden-cmp: error: unknown argument '%s' (see --help)\n", a); return 1; }
    }
    if (!golden || vocab <= 0 || n_seq == 0) { fprintf(stderr, "golden-cmp: error: need --golden, --vocab > 0 and --seq (see --help)\n"); return 1; }
    for (i = 0; i < n_seq; i++)
        if (!(seq_fp[i] = fopen(seq_file[i], "rb"))) { fprintf(stderr, "golden-cmp: error: cannot open logits file '%s'\n", seq_file[i]); return 1; }
    if (!(g = fopen(golden, "r"))) { fprintf(stderr, "golden-cmp: error: cannot open golden file '%s'\n", golden); return 1; }
    line = (char *)malloc(cap);
    row = (float *)malloc(sizeof(float) * (size_t)vocab);
    if (!line || !row) { fprintf(stderr, "golden-cmp: error: out of memory\n"); return 1; }

    while (fgets(line, (int)cap, g)) {
        char name[64], *p, *end;
        long pos, old_top, ids[MAX_K], k, n = 0, j, arg = 0;
        double lps[MAX_K], lp_rest = -HUGE_VAL, mx, z, lse, q_rest, kl;
        int s, off, have_rest = 0;
        if (line[0] != 'P' || line[1] != ' ') continue;
        if (sscanf(line + 2, "%63s %ld %ld%n", name, &pos, &old_top, &off) != 3) { fprintf(stderr, "golden-cmp: error: %s: bad P line '%.60s'\n", golden, line); rc = 1; break; }
        for (s = 0; s < n_seq; s++) if (!strcmp(seq_name[s], name)) break;
        if (s == n_seq) { fprintf(stderr, "golden-cmp: error: %s: P line of sequence '%s' but no --seq %s=FILE\n", golden, name, name); rc = 1; break; }
        p = line + 2 + off;
        for (;;) {
            while (*p == ' ') p++;
            if (*p == '\n' || *p == 0) break;
            if (p[0] == 'r' && p[1] == ':') { lp_rest = parse_lp(p + 2, &end); have_rest = 1; p = end; continue; }
            k = strtol(p, &end, 10);
            if (end == p || *end != ':' || n == MAX_K || k < 0 || k >= vocab) { fprintf(stderr, "golden-cmp: error: %s: bad entry in P %s %ld: '%.20s'\n", golden, name, pos, p); rc = 1; break; }
            ids[n] = k;
            lps[n] = parse_lp(end + 1, &p);
            n++;
        }
        if (rc) break;
        if (n == 0 || !have_rest) { fprintf(stderr, "golden-cmp: error: %s: P %s %ld has no tokens or no r: bin\n", golden, name, pos); rc = 1; break; }
        if (fseek(seq_fp[s], pos * vocab * (long)sizeof(float), SEEK_SET) != 0 ||
            fread(row, sizeof(float), (size_t)vocab, seq_fp[s]) != (size_t)vocab) {
            fprintf(stderr, "golden-cmp: error: %s: no row %ld (of %ld floats) in '%s'\n", golden, pos, vocab, seq_file[s]); rc = 1; break;
        }
        mx = row[0];
        for (j = 1; j < vocab; j++) if (row[j] > mx) { mx = row[j]; arg = j; }
        if (mx != mx) { for (j = 0; j < vocab && row[j] == row[j]; j++) {} arg = j; }
        z = 0;
        for (j = 0; j < vocab; j++) z += exp((double)row[j] - mx);
        lse = mx + log(z);
        /* the rest bin: every token not stored, summed directly (no cancellation) */
        q_rest = 0;
        for (j = 0; j < vocab; j++) {
            int in = 0;
            for (k = 0; k < n && !in; k++) in = ids[k] == j;
            if (!in) q_rest += exp((double)row[j] - mx);
        }
        kl = 0;
        for (k = 0; k < n; k++) {
            double pk = exp(lps[k]);
            if (pk > 0) kl += pk * (lps[k] - ((double)row[ids[k]] - lse));
        }
        if (lp_rest > -HUGE_VAL) kl += exp(lp_rest) * (lp_rest - (q_rest > 0 ? log(q_rest / z) : -HUGE_VAL));
        positions++;
        if (arg == ids[0]) same++;
        if (arg != old_top) changed++;
        if (!(kl == kl)) kl = HUGE_VAL;
        kl_sum += kl;
        if (kl > kl_max) kl_max = kl;
    }
    fclose(g);
    for (i = 0; i < n_seq; i++) fclose(seq_fp[i]);
    free(line);
    free(row);
    if (rc) return 1;
    if (positions == 0) { fprintf(stderr, "golden-cmp: error: %s has no P lines\n", golden); return 1; }
    {
        double rate = (double)same / (double)positions, mean = kl_sum / (double)positions;
        printf("positions %ld top1 %ld (%.2f %%) kld_est mean %.3e max %.3e ours_top1_changed %ld\n",
               positions, same, 100.0 * rate, mean, kl_max, changed);
        return rate >= min_top1 && mean <= max_kld ? 0 : 1;
    }
}
