/* qwenmoe-check-ggml: compare qwenmoe's (de)quantization with ggml's, bit for bit.

   Loads ggml's libggml-base.so with dlopen() and, for every type qwenmoe supports:
     - dequantizes random blocks with ggml's dequantize_row_<type> and qm_dequantize_row and
       compares the floats bit for bit;
     - quantizes random rows (several distributions) with quantize_row_<type>_ref and
       qm_quantize_row and compares the bytes;
   plus fp16/bf16 conversions (all 65536 inputs and random floats), the private activation
   quantizers for Q8_0 and Q8_K, the type names and sizes, and the libm-free sqrtf/roundf
   that the quantizers rely on.

   Build (from the repository root):
       cc -std=c99 -O2 -I. tools/check_ggml.c -o build/qwenmoe-check-ggml -ldl -lpthread
   Run from the repository root (the default library path is relative to it). */
#define QWENMOE_IMPLEMENTATION
#include "qwenmoe.h"

#include <dlfcn.h>

#define XALLOC(T, n) QM__CAST(T *, malloc(sizeof(T) * QM__CAST(size_t, n)))
#define DEFAULT_LIB "node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libggml-base.so"

typedef void (*deq_fn)(const void *src, float *dst, int64_t n);
typedef void (*quant_fn)(const float *src, void *dst, int64_t n);
typedef void (*h2f_row_fn)(const uint16_t *src, float *dst, int64_t n);
typedef void (*f2h_row_fn)(const float *src, uint16_t *dst, int64_t n);
typedef const char *(*name_fn)(int type);
typedef size_t (*size_fn)(int type);
typedef int64_t (*blck_fn)(int type);
typedef float (*f2f_fn)(float x);

static int n_pass = 0, n_fail = 0;

static const char *tname(int type) {
    const char *n = qm_type_name(type);
    return n ? n : "?";
}

static void record(int ok) {
    if (ok) n_pass++;
    else n_fail++;
}

/* ---- random numbers (splitmix64) --------------------------------------------------- */

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t rng_next(rng *r) {
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint32_t rng_u32(rng *r) { return QM__CAST(uint32_t, rng_next(r) >> 32); }

static double rng_unit(rng *r) { /* (0, 1] */
    return (QM__CAST(double, rng_next(r) >> 11) + 1.0) * (1.0 / 9007199254740992.0);
}

static double rng_gauss(rng *r) { /* Box-Muller, without libm */
    double u1 = rng_unit(r), u2 = rng_unit(r);
    double rad = qm__exp(0.5 * qm__log(-2.0 * qm__log(u1)));
    return rad * qm__cos(6.283185307179586 * u2);
}

/* ---- the library ------------------------------------------------------------------- */

static void *lib_sym(void *lib, const char *name) {
    void *p;
    dlerror();
    p = dlsym(lib, name);
    return dlerror() ? NULL : p;
}

/* Object pointer -> function pointer without the conversion ISO C forbids. */
#define LOAD(lib, name, var) \
    do { void *p_ = lib_sym(lib, name); memcpy(&(var), &p_, sizeof(var)); } while (0)

static uint32_t f2u(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return u;
}

static float u2f(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

/* ---- per-type description ------------------------------------------------------------ */

typedef struct type_case {
    int type;
    const char *deq_sym;
    const char *quant_sym;
    int fp16_off[2]; /* byte offsets of the fp16 scale fields in a block, -1: none */
} type_case;

static const type_case cases[] = {
    {QM_TYPE_Q4_0, "dequantize_row_q4_0", "quantize_row_q4_0_ref", {0, -1}},
    {QM_TYPE_Q4_1, "dequantize_row_q4_1", "quantize_row_q4_1_ref", {0, 2}},
    {QM_TYPE_Q5_0, "dequantize_row_q5_0", "quantize_row_q5_0_ref", {0, -1}},
    {QM_TYPE_Q5_1, "dequantize_row_q5_1", "quantize_row_q5_1_ref", {0, 2}},
    {QM_TYPE_Q8_0, "dequantize_row_q8_0", "quantize_row_q8_0_ref", {0, -1}},
    {QM_TYPE_Q2_K, "dequantize_row_q2_K", "quantize_row_q2_K_ref", {80, 82}},
    {QM_TYPE_Q3_K, "dequantize_row_q3_K", "quantize_row_q3_K_ref", {108, -1}},
    {QM_TYPE_Q4_K, "dequantize_row_q4_K", "quantize_row_q4_K_ref", {0, 2}},
    {QM_TYPE_Q5_K, "dequantize_row_q5_K", "quantize_row_q5_K_ref", {0, 2}},
    {QM_TYPE_Q6_K, "dequantize_row_q6_K", "quantize_row_q6_K_ref", {208, -1}},
    {QM_TYPE_IQ4_NL, "dequantize_row_iq4_nl", "quantize_row_iq4_nl_ref", {0, -1}},
    {QM_TYPE_IQ4_XS, "dequantize_row_iq4_xs", "quantize_row_iq4_xs_ref", {0, -1}},
    {QM_TYPE_F16, "ggml_fp16_to_fp32_row", "ggml_fp32_to_fp16_row", {-1, -1}},
    {QM_TYPE_BF16, "ggml_bf16_to_fp32_row", "ggml_fp32_to_bf16_row_ref", {-1, -1}},
    {QM_TYPE_F32, NULL, NULL, {-1, -1}},
};

/* A random fp16 scale: mode 0 "sane" (|d| in 2^-10 .. 2^5), mode 1 any finite half
   (zero and subnormals included). */
static uint16_t rand_scale(rng *r, int mode) {
    uint32_t u = rng_u32(r);
    uint16_t sign = QM__CAST(uint16_t, u & 0x8000u), mant = QM__CAST(uint16_t, (u >> 16) & 0x3ffu);
    uint16_t e;
    if (mode == 0) e = QM__CAST(uint16_t, 5 + (u >> 26) % 16);
    else e = QM__CAST(uint16_t, (u >> 26) % 31);
    return QM__CAST(uint16_t, sign | (e << 10) | mant);
}

/* Row distributions for the quantizers. */
enum { D_GAUSS, D_UNIFORM, D_OUTLIERS, D_ZERO, D_TINY, D_TINIER, D_DENORMAL, D_POSITIVE,
       D_LARGE, D_SPARSE, D_CONSTANT, D_GRID, D_SIGNS, D_COUNT };
static const char *const dist_names[D_COUNT] = {
    "gaussian", "uniform", "outliers", "zero", "tiny(1e-7)", "tiny(1e-30)", "denormal",
    "positive", "large(1e4)", "sparse", "constant", "grid(k/8)", "+-1"
};

static void fill_row(rng *r, int dist, float *x, int64_t n) {
    int64_t i;
    float c = QM__CAST(float, rng_gauss(r));
    for (i = 0; i < n; i++) {
        double g = rng_gauss(r);
        float v;
        switch (dist) {
        case D_GAUSS: v = QM__CAST(float, g); break;
        case D_UNIFORM: v = QM__CAST(float, 2.0 * rng_unit(r) - 1.0); break;
        case D_OUTLIERS: v = QM__CAST(float, rng_u32(r) % 100 == 0 ? 30.0 * g : g); break;
        case D_ZERO: v = 0.0f; break;
        case D_TINY: v = QM__CAST(float, 1e-7 * g); break;
        case D_TINIER: v = QM__CAST(float, 1e-30 * g); break;
        case D_DENORMAL: v = QM__CAST(float, 1e-41 * g); break;
        case D_POSITIVE: v = QM__CAST(float, (g < 0 ? -g : g) + 0.5); break;
        case D_LARGE: v = QM__CAST(float, 1e4 * g); break;
        case D_SPARSE: v = QM__CAST(float, rng_u32(r) % 16 == 0 ? g : 0.0); break;
        case D_CONSTANT: v = c; break;
        case D_GRID: v = QM__CAST(float, QM__CAST(int, rng_u32(r) % 33) - 16) / 8.0f; break;
        default: v = (rng_u32(r) & 1) ? 1.0f : -1.0f; break;
        }
        x[i] = v;
    }
}

/* ---- checks ------------------------------------------------------------------------ */

#define DEQ_BLOCKS 8192 /* per mode */
#define QROW 4096       /* elements per quantized row */
#define QROWS 48        /* rows per distribution */

/* Dequantize random blocks both ways; returns mismatching blocks. */
static int64_t check_dequant(void *lib, const type_case *tc, rng *r, int64_t *n_blocks) {
    const int type = tc->type, be = qm_type_block_elems(type), bb = qm_type_block_bytes(type);
    const int chunk = 256;
    int64_t bad = 0, total = 0;
    uint8_t *blk = QM__CAST(uint8_t *, malloc(QM__CAST(size_t, chunk) * QM__CAST(size_t, bb)));
    float *ya = XALLOC(float, chunk * be), *yb = XALLOC(float, chunk * be);
    deq_fn ref = NULL;
    int mode, c, b, j, k, reported = 0;
    if (tc->deq_sym) LOAD(lib, tc->deq_sym, ref);
    if (!blk || !ya || !yb || (tc->deq_sym && !ref)) {
        printf("  %s: %s\n", tname(type), !blk || !ya || !yb ? "out of memory" : "symbol missing");
        free(blk); free(ya); free(yb);
        *n_blocks = 0;
        return -1;
    }
    /* modes: 0 sane scales, 1 any finite scale, 2 raw random bytes (inf/NaN scales too) */
    for (mode = 0; mode < 3; mode++) {
        for (c = 0; c < DEQ_BLOCKS / chunk; c++) {
            for (j = 0; j < chunk * bb; j++) blk[j] = QM__CAST(uint8_t, rng_u32(r));
            if (mode < 2 && tc->fp16_off[0] >= 0) {
                for (b = 0; b < chunk; b++) {
                    for (k = 0; k < 2; k++) {
                        if (tc->fp16_off[k] >= 0) {
                            uint16_t h = rand_scale(r, mode);
                            memcpy(blk + b * bb + tc->fp16_off[k], &h, 2);
                        }
                    }
                }
            }
            if (type == QM_TYPE_F32 && mode < 2) { /* finite floats only */
                for (b = 0; b < chunk; b++) {
                    uint32_t u;
                    memcpy(&u, blk + 4 * b, 4);
                    if ((u & 0x7f800000u) == 0x7f800000u) u &= 0xbfffffffu;
                    memcpy(blk + 4 * b, &u, 4);
                }
            }
            memset(ya, 0, sizeof(float) * QM__CAST(size_t, chunk * be));
            memset(yb, 0xff, sizeof(float) * QM__CAST(size_t, chunk * be));
            if (ref) ref(blk, ya, QM__CAST(int64_t, chunk) * be);
            else memcpy(ya, blk, sizeof(float) * QM__CAST(size_t, chunk * be));
            if (qm_dequantize_row(type, blk, yb, QM__CAST(int64_t, chunk) * be) != QM_OK) {
                printf("  %s: qm_dequantize_row failed\n", tname(type));
                bad += chunk;
                continue;
            }
            for (b = 0; b < chunk; b++) {
                int blk_bad = 0;
                for (j = 0; j < be; j++) {
                    const int64_t idx = QM__CAST(int64_t, b) * be + j;
                    if (f2u(ya[idx]) != f2u(yb[idx])) {
                        if (!blk_bad && reported < 3) {
                            printf("  %s dequant mode %d: block %d elem %d: ggml %.9g (%08x) qwenmoe %.9g (%08x)\n",
                                   tname(type), mode, c * chunk + b, j, ya[idx],
                                   QM__CAST(unsigned, f2u(ya[idx])), yb[idx], QM__CAST(unsigned, f2u(yb[idx])));
                            reported++;
                        }
                        blk_bad = 1;
                    }
                }
                bad += blk_bad;
            }
            total += chunk;
        }
    }
    free(blk); free(ya); free(yb);
    *n_blocks = total;
    return bad;
}

/* Quantize rows of every distribution both ways; returns mismatching rows. */
static int64_t check_quant(void *lib, const type_case *tc, rng *r, int64_t *n_rows, int64_t *bad_by_dist,
                           int64_t *n_dont_care) {
    const int type = tc->type;
    const size_t rb = qm_type_row_bytes(type, QROW);
    float *x = XALLOC(float, QROW);
    uint8_t *qa = QM__CAST(uint8_t *, malloc(rb)), *qb = QM__CAST(uint8_t *, malloc(rb));
    quant_fn ref = NULL;
    int64_t bad = 0, total = 0;
    int dist, row, reported = 0;
    size_t j;
    if (tc->quant_sym) LOAD(lib, tc->quant_sym, ref);
    if (!x || !qa || !qb || (tc->quant_sym && !ref)) {
        printf("  %s: %s\n", tname(type), !x || !qa || !qb ? "out of memory" : "symbol missing");
        free(x); free(qa); free(qb);
        *n_rows = 0;
        return -1;
    }
    for (dist = 0; dist < D_COUNT; dist++) {
        bad_by_dist[dist] = 0;
        for (row = 0; row < QROWS; row++) {
            fill_row(r, dist, x, QROW);
            memset(qa, 0, rb);
            memset(qb, 0, rb);
            if (ref) ref(x, qa, QROW);
            else memcpy(qa, x, rb);
            if (qm_quantize_row(type, x, qb, QROW) != QM_OK) {
                printf("  %s: qm_quantize_row failed\n", tname(type));
                bad++;
                bad_by_dist[dist]++;
                continue;
            }
            if (memcmp(qa, qb, rb) != 0) {
                const size_t bb = QM__CAST(size_t, qm_type_block_bytes(type));
                size_t blk;
                int row_bad = 0;
                for (blk = 0; blk < rb / bb; blk++) {
                    const uint8_t *a = qa + blk * bb, *b = qb + blk * bb;
                    if (memcmp(a, b, bb) == 0) continue;
                    /* IQ4_NL: a block whose values are all below 1e-15 gets d = 0, and ggml
                       leaves its levels as they were in a stack buffer (the previous block's,
                       or uninitialized for the first block): these bytes are noise. */
                    if (type == QM_TYPE_IQ4_NL && a[0] == b[0] && a[1] == b[1] && a[0] == 0 &&
                        (a[1] & 0x7f) == 0) {
                        (*n_dont_care)++;
                        continue;
                    }
                    row_bad = 1;
                    for (j = 0; j < bb && reported < 3; j++) {
                        if (a[j] != b[j]) {
                            printf("  %s quant %s row %d: block %d byte %d: ggml %02x qwenmoe %02x\n",
                                   tname(type), dist_names[dist], row, QM__CAST(int, blk),
                                   QM__CAST(int, j), a[j], b[j]);
                            reported++;
                            break;
                        }
                    }
                }
                if (row_bad) {
                    bad++;
                    bad_by_dist[dist]++;
                }
            }
            total++;
        }
    }
    free(x); free(qa); free(qb);
    *n_rows = total;
    return bad;
}

/* Activation quantizers (private): Q8_0, Q8_K and our Q8_0S (the layout of ggml's Q8_1:
   fp16 d, fp16 s = d * sum, 32 int8) against quantize_row_q8_*_ref. */
static void check_activation(void *lib, rng *r) {
    quant_fn ref0 = NULL, refK = NULL, ref1 = NULL;
    static const char *const names[3] = {"q8_0", "q8_K", "q8_0s"};
    static const char *const gnames[3] = {"q8_0", "q8_K", "q8_1"};
    static const int wtype[3] = {QM_TYPE_Q8_0, QM_TYPE_Q4_K, QM_TYPE_Q4_1}; /* weights that use each */
    float *x = XALLOC(float, QROW);
    size_t rb0 = qm_type_row_bytes(QM_TYPE_Q8_0, QROW), rbK = qm_type_row_bytes(QM_TYPE_Q8_K, QROW);
    uint8_t *qa = QM__CAST(uint8_t *, malloc(rbK)), *qb = QM__CAST(uint8_t *, malloc(rbK)), *qc = QM__CAST(uint8_t *, malloc(rbK));
    int dist, row, pass;
    LOAD(lib, "quantize_row_q8_0_ref", ref0);
    LOAD(lib, "quantize_row_q8_K_ref", refK);
    LOAD(lib, "quantize_row_q8_1_ref", ref1);
    for (pass = 0; pass < 3; pass++) {
        quant_fn ref = pass == 0 ? ref0 : pass == 1 ? refK : ref1;
        size_t rb = pass == 0 ? rb0 : pass == 1 ? rbK : (size_t)(QROW / 32) * 36;
        int64_t bad = 0, total = 0;
        if (!x || !qa || !qb || !qc || !ref) {
            printf("%-8s activation quantizer: %s\n", names[pass],
                   ref ? "out of memory" : "symbol missing");
            record(0);
            continue;
        }
        for (dist = 0; dist < D_COUNT; dist++) {
            for (row = 0; row < QROWS; row++) {
                fill_row(r, dist, x, QROW);
                memset(qa, 0, rb); /* ggml leaves bsums of an all-zero Q8_K block untouched */
                memset(qb, 0, rb);
                memset(qc, 0, rb);
                ref(x, qa, QROW);
                /* both the compiled (SIMD) quantizer and the portable one */
                qm__quantize_act(wtype[pass], x, qb, QROW);
                qm__quantize_act_scalar(wtype[pass], x, qc, QROW);
                if (memcmp(qa, qb, rb) != 0 || memcmp(qa, qc, rb) != 0) {
                    if (bad == 0) printf("  %s activation: first mismatch in %s row %d\n", names[pass], dist_names[dist], row);
                    bad++;
                }
                total++;
            }
        }
        printf("%-8s activation quantizer (ours against quantize_row_%s_ref): %lld rows, %lld mismatches  %s\n",
               names[pass], gnames[pass], QM__CAST(long long, total),
               QM__CAST(long long, bad), bad ? "FAIL" : "ok");
        record(bad == 0);
    }
    free(x); free(qa); free(qb); free(qc);
}

/* fp16/bf16 scalar conversions over every 16-bit input and many floats. */
static void check_conversions(void *lib, rng *r) {
    h2f_row_fn h2f = NULL, b2f = NULL;
    f2h_row_fn f2h = NULL, f2b = NULL;
    const int64_t N = 1 << 22;
    float *xs = XALLOC(float, N), *ys = XALLOC(float, 65536);
    uint16_t *hs = XALLOC(uint16_t, N > 65536 ? N : 65536);
    int64_t i, bad, nf;
    int which;
    LOAD(lib, "ggml_fp16_to_fp32_row", h2f);
    LOAD(lib, "ggml_bf16_to_fp32_row", b2f);
    LOAD(lib, "ggml_fp32_to_fp16_row", f2h);
    LOAD(lib, "ggml_fp32_to_bf16_row_ref", f2b);
    if (!xs || !ys || !hs || !h2f || !b2f || !f2h || !f2b) {
        printf("conversions: %s\n", !xs || !ys || !hs ? "out of memory" : "symbol missing");
        record(0);
        free(xs); free(ys); free(hs);
        return;
    }
    for (which = 0; which < 2; which++) { /* 16 -> 32 bits, all 65536 inputs */
        const char *name = which ? "bf16->f32" : "f16->f32";
        for (i = 0; i < 65536; i++) hs[i] = QM__CAST(uint16_t, i);
        (which ? b2f : h2f)(hs, ys, 65536);
        bad = 0;
        for (i = 0; i < 65536; i++) {
            float mine = which ? qm_bf16_to_fp32(hs[i]) : qm_fp16_to_fp32(hs[i]);
            if (f2u(mine) != f2u(ys[i])) {
                if (bad == 0) printf("  %s %04x: ggml %08x qwenmoe %08x\n", name, QM__CAST(unsigned, i),
                                     QM__CAST(unsigned, f2u(ys[i])), QM__CAST(unsigned, f2u(mine)));
                bad++;
            }
        }
        printf("%-10s all 65536 inputs: %lld mismatches  %s\n", name, QM__CAST(long long, bad), bad ? "FAIL" : "ok");
        record(bad == 0);
    }
    for (which = 0; which < 2; which++) { /* 32 -> 16 bits */
        const char *name = which ? "f32->bf16" : "f32->f16";
        uint16_t *ref = XALLOC(uint16_t, N);
        if (!ref) { record(0); continue; }
        nf = 0;
        /* every 16-bit value exactly, and just below, at and just above each midpoint */
        for (i = 0; i < 65536 && nf + 5 <= N; i++) {
            float v = which ? qm_bf16_to_fp32(QM__CAST(uint16_t, i)) : qm_fp16_to_fp32(QM__CAST(uint16_t, i));
            float w = which ? qm_bf16_to_fp32(QM__CAST(uint16_t, i + 1)) : qm_fp16_to_fp32(QM__CAST(uint16_t, i + 1));
            xs[nf++] = v;
            if ((f2u(v) & 0x7f800000u) != 0x7f800000u && (f2u(w) & 0x7f800000u) != 0x7f800000u &&
                (f2u(v) >> 31) == (f2u(w) >> 31)) {
                float m = (v + w) * 0.5f; /* exact: the midpoint between neighbours */
                xs[nf++] = m;
                xs[nf++] = u2f(f2u(m) + 1);
                xs[nf++] = u2f(f2u(m) - 1);
            }
        }
        while (nf < N) xs[nf++] = u2f(rng_u32(r)); /* random bit patterns: every exponent, NaNs */
        (which ? f2b : f2h)(xs, ref, N);
        bad = 0;
        for (i = 0; i < N; i++) {
            uint16_t mine = which ? qm_fp32_to_bf16(xs[i]) : qm_fp32_to_fp16(xs[i]);
            if (mine != ref[i]) {
                if (bad == 0) printf("  %s %08x: ggml %04x qwenmoe %04x\n", name, QM__CAST(unsigned, f2u(xs[i])),
                                     QM__CAST(unsigned, ref[i]), QM__CAST(unsigned, mine));
                bad++;
            }
        }
        printf("%-10s %lld floats (all 16-bit values, midpoints +-1ulp, random bits): %lld mismatches  %s\n",
               name, QM__CAST(long long, N), QM__CAST(long long, bad), bad ? "FAIL" : "ok");
        record(bad == 0);
        free(ref);
    }
    free(xs); free(ys); free(hs);
}

/* qm__sqrtf and qm__roundf (no libm) against the C library's, which ggml uses. */
static void check_libm_helpers(void *lib, rng *r) {
    f2f_fn c_sqrtf = NULL, c_roundf = NULL;
    int64_t i, bad = 0, n = 0;
    LOAD(lib, "sqrtf", c_sqrtf);
    LOAD(lib, "roundf", c_roundf);
    if (!c_sqrtf || !c_roundf) {
        printf("sqrtf/roundf: not found through the library; skipped\n");
        return;
    }
    /* every float in [1, 4): sqrt scales exactly by powers of 4, so this covers all normal
       inputs; plus random positive bit patterns (subnormals included) */
    for (i = 0; i < (1 << 24); i++, n++) {
        float x = u2f(0x3f800000u + QM__CAST(uint32_t, i));
        if (f2u(qm__sqrtf(x)) != f2u(c_sqrtf(x))) bad++;
    }
    for (i = 0; i < (1 << 22); i++, n++) {
        float x = u2f(rng_u32(r) & 0x7f7fffffu);
        if (f2u(qm__sqrtf(x)) != f2u(c_sqrtf(x))) bad++;
    }
    printf("%-10s %lld inputs: %lld mismatches  %s\n", "sqrtf", QM__CAST(long long, n),
           QM__CAST(long long, bad), bad ? "FAIL" : "ok");
    record(bad == 0);
    bad = n = 0;
    for (i = -(1 << 20); i < (1 << 20); i++, n += 3) { /* halves, and their neighbours */
        float x = QM__CAST(float, i) + 0.5f;
        if (f2u(qm__roundf(x)) != f2u(c_roundf(x))) bad++;
        if (f2u(qm__roundf(u2f(f2u(x) + 1))) != f2u(c_roundf(u2f(f2u(x) + 1)))) bad++;
        if (f2u(qm__roundf(u2f(f2u(x) - 1))) != f2u(c_roundf(u2f(f2u(x) - 1)))) bad++;
    }
    for (i = 0; i < (1 << 22); i++, n++) {
        float x = u2f(rng_u32(r) & 0xff7fffffu); /* finite */
        if (f2u(qm__roundf(x)) != f2u(c_roundf(x))) bad++;
    }
    printf("%-10s %lld inputs: %lld mismatches  %s\n", "roundf", QM__CAST(long long, n),
           QM__CAST(long long, bad), bad ? "FAIL" : "ok");
    record(bad == 0);
}

/* Names and sizes of every type id against ggml_type_name/ggml_type_size/ggml_blck_size. */
static void check_type_table(void *lib) {
    name_fn g_name = NULL;
    size_fn g_size = NULL;
    blck_fn g_blck = NULL;
    int t, bad = 0;
    LOAD(lib, "ggml_type_name", g_name);
    LOAD(lib, "ggml_type_size", g_size);
    LOAD(lib, "ggml_blck_size", g_blck);
    if (!g_name || !g_size || !g_blck) {
        printf("type table: symbol missing\n");
        record(0);
        return;
    }
    for (t = 0; t < QM_TYPE_COUNT; t++) {
        const int64_t blck = g_blck(t);
        const char *gn = g_name(t), *mn = qm_type_name(t);
        if (blck == 0) { /* removed id: ggml names it "DEPRECATED"/"...REMOVED..." */
            if (mn || qm_type_block_elems(t) || qm_type_block_bytes(t)) {
                printf("  type %d: ggml has no such type, qwenmoe says %s\n", t, mn ? mn : "(null)");
                bad++;
            }
            continue;
        }
        if (!mn || !gn || strcmp(mn, gn) != 0 || qm_type_block_elems(t) != blck ||
            QM__CAST(size_t, qm_type_block_bytes(t)) != g_size(t)) {
            printf("  type %d: ggml %s %lld/%zu, qwenmoe %s %d/%d\n", t, gn ? gn : "(null)",
                   QM__CAST(long long, blck), g_size(t), mn ? mn : "(null)", qm_type_block_elems(t),
                   qm_type_block_bytes(t));
            bad++;
        }
    }
    printf("type table: ids 0..%d, %d mismatches  %s\n", QM_TYPE_COUNT - 1, bad, bad ? "FAIL" : "ok");
    record(bad == 0);
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: qwenmoe-check-ggml [--lib PATH] [--seed N]\n"
            "Compares qwenmoe's dequantization and reference quantization with ggml's,\n"
            "bit for bit, by loading ggml's libggml-base.so with dlopen().\n"
            "  --lib PATH   libggml-base.so to load (default, relative to the repository root:\n"
            "               " DEFAULT_LIB ")\n"
            "  --seed N     random seed (default 1)\n"
            "  -h, --help   this text\n"
            "Exit status 0 when everything matches, 1 otherwise.\n");
}

int main(int argc, char **argv) {
    const char *path = DEFAULT_LIB;
    uint64_t seed = 1;
    void *lib;
    rng r;
    size_t k;
    int i, d;
    (void)qm__expf; (void)qm__logf; (void)qm__powf; (void)qm__sinf; (void)qm__cosf; /* other sections' helpers */
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--lib") && i + 1 < argc) {
            path = argv[++i];
        } else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
            char *end;
            seed = strtoull(argv[++i], &end, 0);
            if (*end) {
                fprintf(stderr, "qwenmoe-check-ggml: --seed wants a number, got '%s'\n", argv[i]);
                return 1;
            }
        } else {
            fprintf(stderr, "qwenmoe-check-ggml: unknown or incomplete option '%s'\n", argv[i]);
            usage(stderr);
            return 1;
        }
    }
    lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "qwenmoe-check-ggml: cannot load %s: %s\n(run from the repository root, or pass --lib PATH)\n",
                path, dlerror());
        return 1;
    }
    r.s = seed;
    printf("# ggml: %s, seed %llu\n", path, QM__CAST(unsigned long long, seed));
    check_type_table(lib);
    check_libm_helpers(lib, &r);
    check_conversions(lib, &r);
    printf("\n%-8s %10s %10s %10s %10s  %s\n", "type", "deq.blocks", "mismatch", "q.rows", "mismatch", "result");
    for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        int64_t nb = 0, nr = 0, bad_d, bad_q, by_dist[D_COUNT], dont_care = 0;
        bad_d = check_dequant(lib, &cases[k], &r, &nb);
        bad_q = check_quant(lib, &cases[k], &r, &nr, by_dist, &dont_care);
        printf("%-8s %10lld %10lld %10lld %10lld  %s\n", tname(cases[k].type), QM__CAST(long long, nb),
               QM__CAST(long long, bad_d), QM__CAST(long long, nr), QM__CAST(long long, bad_q),
               bad_d == 0 && bad_q == 0 ? "ok" : "FAIL");
        if (dont_care > 0)
            printf("         (%lld blocks with d = 0 differ only in levels ggml leaves uninitialized)\n",
                   QM__CAST(long long, dont_care));
        if (bad_q > 0) {
            printf("         mismatching rows by distribution:");
            for (d = 0; d < D_COUNT; d++)
                if (by_dist[d]) printf(" %s=%lld", dist_names[d], QM__CAST(long long, by_dist[d]));
            printf("\n");
        }
        record(bad_d == 0);
        record(bad_q == 0);
    }
    printf("distributions: ");
    for (d = 0; d < D_COUNT; d++) printf("%s%s", dist_names[d], d + 1 < D_COUNT ? ", " : "\n");
    check_activation(lib, &r);
    dlclose(lib);
    printf("# check-ggml: %d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
