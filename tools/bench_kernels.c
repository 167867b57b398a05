/* qwenmoe-bench-kernels: single-thread speed of the matrix-vector kernels.

   For each weight type, a rows x cols matrix is multiplied by one activation row with
     simd    the compiled kernels (qm__vec_dot: SIMD when built with them)
     scalar  the plain C kernels (qm__vec_dot_scalar)
     old     dequantize each row to f32, then an f32 dot (the path the kernels replace)
   and with --tokens T > 1 also T activation rows at once (prefill), rows x T dots.
   Reported: ns per weight row and GB/s of weight bytes streamed. The matrix is made of a
   few quantized random rows repeated, so that setup stays quick for any size; it starts
   32 bytes past a 64-byte boundary, as GGUF tensor data (aligned to 32) may. */
#define QWENMOE_IMPLEMENTATION
#include "qwenmoe.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: qwenmoe-bench-kernels [--type T] [--rows N --cols K] [--tokens T] [--seconds S]\n"
            "  Single-thread speed of the weight-row x activation-row dot products, per type:\n"
            "  the compiled kernels (SIMD; AVX-512 and AVX2 apart where both exist), the plain C\n"
            "  kernels, and the old dequantize-to-f32 path.\n"
            "  --type T       one weight type: f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 q2_K q3_K q4_K\n"
            "                 q5_K q6_K iq4_nl iq4_xs (any case), or 'all' (default)\n"
            "  --rows N       matrix rows (outputs); with --cols, one shape instead of the defaults\n"
            "  --cols K       matrix columns (inputs), a multiple of the type's block size\n"
            "                 defaults: 768 x 2048 (an expert's gate/up) and 4096 x 2048 (attn q)\n"
            "  --tokens T     T activation rows per pass (a prefill batch; default 1), also timed\n"
            "                 through qm__matmul_rows (row blocks x 4-token kernels)\n"
            "  --seconds S    time per type and kernel, in rounds that take turns (default 0.3)\n"
            "  -h, --help     this text\n");
}

static uint64_t rng = 88172645463325252ull;
static double rnd(void) { /* approximately gaussian */
    double s = 0.0;
    int i;
    for (i = 0; i < 4; i++) {
        rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
        s += (double)(rng >> 11) * (1.0 / 9007199254740992.0);
    }
    return (s - 2.0) * 1.7;
}

typedef struct bench {
    int type, T;
    int64_t rows, cols;
    size_t row_bytes, act_bytes;
    uint8_t *wmem;  /* allocation holding w */
    uint8_t *w;     /* rows x row_bytes, 32 bytes past a 64-byte boundary, as in a GGUF */
    float *x;       /* T x cols */
    uint8_t *qx;    /* T x act_bytes */
    float *buf;     /* cols */
    float *y;       /* T x rows */
    qm__vec_dot_fn v1; /* the 256-bit kernel, timed apart in AVX-512 builds (else NULL) */
} bench;

enum { MODE_SIMD, MODE_NTOK, MODE_V1, MODE_SCALAR, MODE_OLD, MODE_ACT, MODE_COUNT };

static volatile float sink;

static void run_pass(bench *b, int mode) {
    int64_t r;
    int t;
    float acc = 0.0f;
    if (mode == MODE_ACT) {
        for (t = 0; t < b->T; t++) qm__quantize_act(b->type, b->x + t * b->cols, b->qx + (size_t)t * b->act_bytes, b->cols);
        sink = (float)b->qx[0];
        return;
    }
    if (mode == MODE_NTOK) {
        qm__matmul_rows(b->type, b->cols, b->w, b->row_bytes, 0, b->rows, b->qx, b->act_bytes, b->T, b->y, b->rows);
        sink = b->y[0];
        return;
    }
    for (r = 0; r < b->rows; r++) {
        const uint8_t *row = b->w + (size_t)r * b->row_bytes;
        if (mode == MODE_OLD) {
            const float *f = b->buf;
            if (b->type == QM_TYPE_F32) f = (const float *)(const void *)row;
            else qm_dequantize_row(b->type, row, b->buf, b->cols);
            for (t = 0; t < b->T; t++) b->y[t * b->rows + r] = qm__dot_f32(f, b->x + t * b->cols, (int)b->cols);
        } else if (mode == MODE_SIMD) {
            for (t = 0; t < b->T; t++) b->y[t * b->rows + r] = qm__vec_dot(b->type, b->cols, row, b->qx + (size_t)t * b->act_bytes);
        } else if (mode == MODE_V1) {
            for (t = 0; t < b->T; t++) b->y[t * b->rows + r] = b->v1(b->cols, row, b->qx + (size_t)t * b->act_bytes);
        } else {
            for (t = 0; t < b->T; t++)
                b->y[t * b->rows + r] = qm__vec_dot_scalar(b->type, b->cols, row, b->qx + (size_t)t * b->act_bytes);
        }
    }
    for (t = 0; t < b->T; t++) acc += b->y[t * b->rows];
    sink = acc;
}

/* Seconds per pass: the best batch of passes (batches of >= 5 ms). The modes are measured
   in turns, round after round, so that a slow phase of the machine hits them all alike. */
static void time_modes(bench *b, double seconds, double *best) {
    int reps[MODE_COUNT], m, i;
    double start = qm__now(), t0, dt;
    for (m = 0; m < MODE_COUNT; m++) {
        best[m] = 0.0;
        if ((m == MODE_V1 && !b->v1) || (m == MODE_NTOK && b->T == 1)) continue;
        best[m] = 1e30;
        reps[m] = 1;
        run_pass(b, m); /* warm up */
    }
    do {
        for (m = 0; m < MODE_COUNT; m++) {
            if ((m == MODE_V1 && !b->v1) || (m == MODE_NTOK && b->T == 1)) continue;
            for (;;) {
                t0 = qm__now();
                for (i = 0; i < reps[m]; i++) run_pass(b, m);
                dt = qm__now() - t0;
                if (dt >= 0.005) break;
                reps[m] *= 2;
            }
            if (dt / reps[m] < best[m]) best[m] = dt / reps[m];
        }
    } while (qm__now() - start < seconds * MODE_COUNT);
}

static int bench_one(int type, int64_t rows, int64_t cols, int T, double seconds) {
    bench b;
    const int64_t distinct = 16;
    float *wf;
    int64_t r, i;
    double sec[MODE_COUNT];
    memset(&b, 0, sizeof(b));
    b.type = type; b.rows = rows; b.cols = cols; b.T = T;
    b.row_bytes = qm_type_row_bytes(type, cols);
    b.act_bytes = qm__act_row_bytes(type, cols);
    b.v1 = qm__vec_dot_variant(type, 2) ? qm__vec_dot_variant(type, 1) : NULL;
    if (b.row_bytes == 0 || b.act_bytes == 0) {
        fprintf(stderr, "qwenmoe-bench-kernels: %s: %ld columns is not a whole number of %d-element blocks\n",
                qm_type_name(type), (long)cols, qm_type_block_elems(type));
        return 0;
    }
    b.wmem = (uint8_t *)malloc(b.row_bytes * (size_t)rows + 96);
    b.w = b.wmem ? b.wmem + (64 - ((uintptr_t)b.wmem & 63)) + 32 : NULL;
    b.x = (float *)malloc(sizeof(float) * (size_t)(cols * T));
    b.qx = (uint8_t *)malloc(b.act_bytes * (size_t)T);
    b.buf = (float *)malloc(sizeof(float) * (size_t)cols);
    b.y = (float *)malloc(sizeof(float) * (size_t)(rows * T));
    wf = (float *)malloc(sizeof(float) * (size_t)cols);
    if (!b.w || !b.x || !b.qx || !b.buf || !b.y || !wf) {
        fprintf(stderr, "qwenmoe-bench-kernels: out of memory for a %ld x %ld matrix\n", (long)rows, (long)cols);
        free(b.wmem); free(b.x); free(b.qx); free(b.buf); free(b.y); free(wf);
        return 0;
    }
    for (r = 0; r < rows; r++) {
        if (r < distinct) {
            for (i = 0; i < cols; i++) wf[i] = (float)(rnd() * 0.05);
            qm_quantize_row(type, wf, b.w + (size_t)r * b.row_bytes, cols);
        } else {
            memcpy(b.w + (size_t)r * b.row_bytes, b.w + (size_t)(r % distinct) * b.row_bytes, b.row_bytes);
        }
    }
    for (i = 0; i < cols * T; i++) b.x[i] = (float)rnd();
    time_modes(&b, seconds, sec);
    {
        const double bytes = (double)b.row_bytes * (double)rows, nsrow = 1e9 / (double)rows;
        char v1[32] = "        -       -";
        if (b.v1) snprintf(v1, sizeof(v1), "%8.1f %7.2f", sec[MODE_V1] * nsrow, bytes / sec[MODE_V1] * 1e-9);
        printf("%-7s %6.2f | %8.1f %7.2f | %s | %8.1f %7.2f | %8.1f %7.2f | %6.2fx %6.2fx | %7.0f\n", qm_type_name(type),
               bytes / 1048576.0, sec[MODE_SIMD] * nsrow, bytes / sec[MODE_SIMD] * 1e-9, v1, sec[MODE_SCALAR] * nsrow,
               bytes / sec[MODE_SCALAR] * 1e-9, sec[MODE_OLD] * nsrow, bytes / sec[MODE_OLD] * 1e-9,
               sec[MODE_OLD] / sec[MODE_SIMD], sec[MODE_SCALAR] / sec[MODE_SIMD], sec[MODE_ACT] * 1e9);
        if (T > 1)
            printf("        batched (qm__matmul_rows): %8.1f ns/row %7.2f GB/s, %.2fx the per-token loop\n", sec[MODE_NTOK] * nsrow,
                   bytes / sec[MODE_NTOK] * 1e-9, sec[MODE_SIMD] / sec[MODE_NTOK]);
        fflush(stdout);
    }
    free(b.wmem); free(b.x); free(b.qx); free(b.buf); free(b.y); free(wf);
    return 1;
}

static int same_name(const char *a, const char *b) { /* ASCII, ignoring case: q4_k = q4_K */
    for (; *a && *b; a++, b++) {
        const int x = (*a >= 'A' && *a <= 'Z') ? *a + 32 : *a, y = (*b >= 'A' && *b <= 'Z') ? *b + 32 : *b;
        if (x != y) return 0;
    }
    return *a == *b;
}

static int parse_i64(const char *s, int64_t *out) {
    char *end;
    long long v;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v <= 0) return 0;
    *out = (int64_t)v;
    return 1;
}

int main(int argc, char **argv) {
    static const int types[] = {QM_TYPE_F32, QM_TYPE_F16, QM_TYPE_BF16, QM_TYPE_Q8_0, QM_TYPE_Q4_0,
                                QM_TYPE_Q4_1, QM_TYPE_Q5_0, QM_TYPE_Q5_1, QM_TYPE_Q2_K, QM_TYPE_Q3_K,
                                QM_TYPE_Q4_K, QM_TYPE_Q5_K, QM_TYPE_Q6_K, QM_TYPE_IQ4_NL, QM_TYPE_IQ4_XS};
    const int ntypes = (int)(sizeof(types) / sizeof(types[0]));
    int64_t shapes[2][2] = {{768, 2048}, {4096, 2048}}, rows = 0, cols = 0, tokens = 1;
    int nshapes = 2, type = -1, i, s, t, ok = 1;
    double seconds = 0.3;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        if (i + 1 >= argc) { fprintf(stderr, "qwenmoe-bench-kernels: unknown option or missing value: %s\n", a); usage(stderr); return 1; }
        if (!strcmp(a, "--type")) {
            const char *v = argv[++i];
            if (strcmp(v, "all") != 0) {
                for (t = 0; t < ntypes; t++)
                    if (same_name(v, qm_type_name(types[t]))) type = types[t];
                if (type < 0) { fprintf(stderr, "qwenmoe-bench-kernels: --type: unknown or unsupported type '%s'\n", v); return 1; }
            }
        } else if (!strcmp(a, "--rows")) {
            if (!parse_i64(argv[++i], &rows)) { fprintf(stderr, "qwenmoe-bench-kernels: --rows wants a positive integer, got '%s'\n", argv[i]); return 1; }
        } else if (!strcmp(a, "--cols")) {
            if (!parse_i64(argv[++i], &cols)) { fprintf(stderr, "qwenmoe-bench-kernels: --cols wants a positive integer, got '%s'\n", argv[i]); return 1; }
        } else if (!strcmp(a, "--tokens")) {
            if (!parse_i64(argv[++i], &tokens) || tokens > 64) { fprintf(stderr, "qwenmoe-bench-kernels: --tokens wants 1..64, got '%s'\n", argv[i]); return 1; }
        } else if (!strcmp(a, "--seconds")) {
            char *end;
            seconds = strtod(argv[++i], &end);
            if (end == argv[i] || *end || !(seconds > 0) || seconds > 60) { fprintf(stderr, "qwenmoe-bench-kernels: --seconds wants a number in (0, 60], got '%s'\n", argv[i]); return 1; }
        } else {
            fprintf(stderr, "qwenmoe-bench-kernels: unknown option: %s\n", a);
            usage(stderr);
            return 1;
        }
    }
    if ((rows != 0) != (cols != 0)) { fprintf(stderr, "qwenmoe-bench-kernels: give both --rows and --cols\n"); return 1; }
    if (rows) { shapes[0][0] = rows; shapes[0][1] = cols; nshapes = 1; }
    printf("kernels: %s; single thread; best batch of passes, kernels timed in turns; GB/s = weight bytes / time\n", qm__simd_name());
    for (s = 0; s < nshapes; s++) {
        printf("\nmatrix %ld rows x %ld cols, %ld token%s per pass\n", (long)shapes[s][0], (long)shapes[s][1], (long)tokens,
               tokens > 1 ? "s" : "");
        printf("%-7s %6s | %8s %7s | %8s %7s | %8s %7s | %8s %7s | %7s %7s | %7s\n", "type", "MiB", "best ns", "GB/s",
               "avx2 ns", "GB/s", "plain ns", "GB/s", "old ns", "GB/s", "vs old", "vs pln", "act ns");
        for (t = 0; t < ntypes; t++) {
            if (type >= 0 && types[t] != type) continue;
            if (shapes[s][1] % qm_type_block_elems(types[t]) != 0) {
                if (type >= 0) {
                    fprintf(stderr, "qwenmoe-bench-kernels: --cols %ld is not a multiple of %s's block of %d\n",
                            (long)shapes[s][1], qm_type_name(types[t]), qm_type_block_elems(types[t]));
                    return 1;
                }
                printf("%-7s (skipped: %ld columns are not whole %d-element blocks)\n", qm_type_name(types[t]),
                       (long)shapes[s][1], qm_type_block_elems(types[t]));
                continue;
            }
            ok &= bench_one(types[t], shapes[s][0], shapes[s][1], (int)tokens, seconds);
        }
    }
    printf("\nbest: the kernel qm__vec_dot uses; avx2: the 256-bit kernel where an AVX-512 one exists;\n"
           "plain: the C kernels; old: dequantize to f32 + f32 dot. ns: per weight row, all tokens;\n"
           "act ns: quantizing the activation row(s) once.\n");
    return ok ? 0 : 1;
}
