/* test_kernels: the quantized dot-product kernels (section 3 of qwenmoe.h).

   For every supported weight type, rows of random weights are quantized with
   qm_quantize_row and random activations (several magnitudes, all-zero, sparse, with
   outliers) with qm__quantize_act; then
   (a) the plain C kernel against a double-precision dot of dequant(w) . dequant(qact(x)),
       where the activation blocks are dequantized here from their format definition;
   (b) the compiled kernel (SIMD when built with it) against the plain C kernel;
   (c) the compiled kernel against the exact dot dequant(w) . x, within the bound that the
       activation quantization allows: sum |w_i| * (largest rounding error of x_i's block);
   plus hand-built blocks with results worked out here, the activation formats and sizes,
   the multi-row entry point, and odd lengths for the float types.
   Rows are allocated to their exact size and misaligned (2 or 4 bytes off), so that an
   overread or an aligned load shows up under AddressSanitizer or as a crash. */
#define QWENMOE_IMPLEMENTATION
#include "qwenmoe.h"
#include <math.h>
#include "tests/qmtest.h"

/* ---- random numbers (no libm) ---------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng_u64(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rng_uniform(void) { /* [0, 1) */
    return (double)(rng_u64() >> 11) * (1.0 / 9007199254740992.0);
}

static double rng_gauss(void) { /* Irwin-Hall: sum of 12 uniforms - 6, variance 1 */
    double s = 0.0;
    int i;
    for (i = 0; i < 12; i++) s += rng_uniform();
    return s - 6.0;
}

static double dabs(double x) { return x < 0 ? -x : x; }

static const char *tname(int type) {
    const char *s = qm_type_name(type);
    return s ? s : "?";
}

/* ---- test data ------------------------------------------------------------------------- */

enum { ACT_GAUSS, ACT_TINY, ACT_LARGE, ACT_ZERO, ACT_SPARSE, ACT_OUTLIER, ACT_ONESIGN, ACT_TIES, ACT_COUNT };
static const char *act_name[ACT_COUNT] = {"gauss", "tiny", "large", "zero", "sparse", "outliers", "positive", "ties"};

static void make_act(float *x, int64_t n, int kind) {
    int64_t i;
    for (i = 0; i < n; i++) {
        double v = rng_gauss();
        switch (kind) {
        case ACT_TINY: v *= 1e-3; break;
        case ACT_LARGE: v *= 300.0; break;
        case ACT_ZERO: v = 0.0; break;
        case ACT_SPARSE: /* whole 32-element blocks of zeros, and scattered zeros */
            if (((i / 32) % 3) == 1 || rng_uniform() < 0.5) v = 0.0;
            break;
        case ACT_OUTLIER: if (rng_uniform() < 0.01) v *= 60.0; break;
        case ACT_ONESIGN: v = dabs(v) + 0.25; break;
        case ACT_TIES: /* +-127 first in each block, so that the scale is 1: then halves are
                          rounding ties (away from zero for Q8_0, to even for Q8_K) */
            v = (i % 32 == 0) ? ((i / 32) % 2 ? -127.0 : 127.0) : (double)((i * 37) % 253 - 126) + 0.5;
            if (v > 126.5) v = 126.5;
            break;
        default: break;
        }
        x[i] = (float)v;
    }
}

enum { W_GAUSS, W_SHIFTED, W_COUNT };

static void make_weights(float *w, int64_t n, int kind) {
    int64_t i;
    for (i = 0; i < n; i++) {
        double v = rng_gauss() * 0.05;
        if (kind == W_SHIFTED) { /* non-zero mean per 32, and outliers: exercises the mins */
            v += 0.02 * (double)((i / 32) % 5) - 0.03;
            if (rng_uniform() < 0.005) v *= 20.0;
        }
        w[i] = (float)v;
    }
}

/* The activation row as the kernels see it, from the format definition:
   Q8_0 = {fp16 d, int8 q[32]}; Q8_0S = {fp16 d, fp16 s, int8 q[32]};
   Q8_K = {f32 d, int8 q[256], int16 bsums[16]}; value d*q. Also the largest error of each
   element's block: err[i] bounds |x_i - value_i|. */
static void dequant_act(int atype, const uint8_t *qa, int64_t n, const float *x, double *out, double *err) {
    int64_t i, b;
    if (atype == QM_TYPE_F32) {
        for (i = 0; i < n; i++) { out[i] = x[i]; err[i] = 0.0; }
        return;
    }
    if (atype == QM_TYPE_Q8_0 || atype == QM__TYPE_Q8_0S) {
        const int bytes = atype == QM_TYPE_Q8_0 ? 34 : 36, qoff = atype == QM_TYPE_Q8_0 ? 2 : 4;
        for (b = 0; b < n / 32; b++) {
            const uint8_t *blk = qa + b * bytes;
            const double d = qm_fp16_to_fp32((uint16_t)(blk[0] | (blk[1] << 8)));
            double amax = 0.0, dexact, e;
            for (i = 0; i < 32; i++) amax = dabs(x[b * 32 + i]) > amax ? dabs(x[b * 32 + i]) : amax;
            dexact = (double)((float)amax / 127.0f); /* the unrounded scale used for rounding */
            /* x = dexact*(q + r), |r| <= 1/2 (plus float slack); value = d*q */
            e = 0.5 * dexact + 127.0 * dabs(d - dexact) + 1e-4 * dexact + 1e-30;
            for (i = 0; i < 32; i++) {
                out[b * 32 + i] = d * (double)(int8_t)blk[qoff + i];
                err[b * 32 + i] = e;
            }
        }
        return;
    }
    /* Q8_K */
    for (b = 0; b < n / 256; b++) {
        const uint8_t *blk = qa + b * 292;
        float df;
        double d;
        memcpy(&df, blk, 4);
        d = df;
        for (i = 0; i < 256; i++) {
            out[b * 256 + i] = d * (double)(int8_t)blk[4 + i];
            err[b * 256 + i] = (0.5 + 1e-4) * dabs(d) + 1e-30;
        }
    }
}

/* Exact-size allocation with the row placed `off` bytes into it (misaligned on purpose). */
typedef struct buf {
    uint8_t *base;
    void *p;
} buf;

static buf buf_alloc(size_t bytes, size_t off) {
    buf b;
    b.base = (uint8_t *)malloc(bytes + off + 1);
    b.p = b.base ? b.base + off : NULL;
    return b;
}

/* ---- (a) (b) (c) on random rows --------------------------------------------------------- */

static const int all_types[] = {QM_TYPE_F32, QM_TYPE_F16, QM_TYPE_BF16, QM_TYPE_Q8_0, QM_TYPE_Q4_0,
                                QM_TYPE_Q4_1, QM_TYPE_Q5_0, QM_TYPE_Q5_1, QM_TYPE_Q2_K, QM_TYPE_Q3_K,
                                QM_TYPE_Q4_K, QM_TYPE_Q5_K, QM_TYPE_Q6_K, QM_TYPE_IQ4_NL, QM_TYPE_IQ4_XS};
#define N_TYPES ((int)(sizeof(all_types) / sizeof(all_types[0])))

typedef struct stats {
    double worst_a, worst_b, worst_c; /* largest error / allowed, per check */
} stats;

static void check_case(int type, int64_t n, int wkind, int akind, stats *st) {
    const int atype = qm__act_type(type);
    const size_t wbytes = qm_type_row_bytes(type, n), abytes = qm__act_row_bytes(type, n);
    const size_t woff = type == QM_TYPE_F32 ? 4 : 2;
    float *wf = (float *)malloc(sizeof(float) * (size_t)n), *wd = (float *)malloc(sizeof(float) * (size_t)n);
    float *x = (float *)malloc(sizeof(float) * (size_t)n);
    double *ad = (double *)malloc(sizeof(double) * (size_t)n), *aerr = (double *)malloc(sizeof(double) * (size_t)n);
    buf wq = buf_alloc(wbytes, woff), qa = buf_alloc(abytes, 0);
    double ref_q = 0.0, mag_q = 0.0, exact = 0.0, mag_x = 0.0, qbound = 0.0;
    float scal, simd;
    int64_t i;
    if (!wf || !wd || !x || !ad || !aerr || !wq.base || !qa.base) {
        CHECK(0, "out of memory");
        goto done;
    }
    make_weights(wf, n, wkind);
    make_act(x, n, akind);
    CHECK(qm_quantize_row(type, wf, wq.p, n) == QM_OK, "%s: quantize n=%ld", tname(type), (long)n);
    CHECK(qm_dequantize_row(type, wq.p, wd, n) == QM_OK, "%s: dequantize n=%ld", tname(type), (long)n);
    qm__quantize_act(type, x, qa.p, n);
    { /* the compiled quantizer writes the same bytes as the plain one */
        buf qs = buf_alloc(abytes, 0);
        if (qs.base) {
            qm__quantize_act_scalar(type, x, qs.p, n);
            CHECK(memcmp(qs.p, qa.p, abytes) == 0, "%s n=%ld %s: activation bytes differ from the plain quantizer",
                  tname(type), (long)n, act_name[akind]);
            free(qs.base);
        }
    }
    dequant_act(atype, (const uint8_t *)qa.p, n, x, ad, aerr);
    for (i = 0; i < n; i++) {
        ref_q += (double)wd[i] * ad[i];
        mag_q += dabs((double)wd[i] * ad[i]);
        exact += (double)wd[i] * (double)x[i];
        mag_x += dabs((double)wd[i] * (double)x[i]);
        qbound += dabs((double)wd[i]) * aerr[i];
    }
    if (atype == QM__TYPE_Q8_0S) {
        /* Q4_1/Q5_1 carry an offset m per block (bytes 2-3 of both formats), which the kernels
           multiply by the activation's s = fp16(d * sum q) rather than by d * sum q exactly. */
        const size_t wblk = type == QM_TYPE_Q4_1 ? 20 : 24;
        int64_t b;
        for (b = 0; b < n / 32; b++) {
            const uint8_t *wb = (const uint8_t *)wq.p + b * wblk, *ab = (const uint8_t *)qa.p + b * 36;
            const double m = qm_fp16_to_fp32((uint16_t)(wb[2] | (wb[3] << 8)));
            const double d = qm_fp16_to_fp32((uint16_t)(ab[0] | (ab[1] << 8)));
            const double sv = qm_fp16_to_fp32((uint16_t)(ab[2] | (ab[3] << 8)));
            int j, sq = 0;
            for (j = 0; j < 32; j++) sq += (int8_t)ab[4 + j];
            ref_q += m * (sv - d * sq);
            mag_q += dabs(m * sv);
            qbound += dabs(m * sv) * (1.0 / 1024);
        }
    }
    scal = qm__vec_dot_scalar(type, n, wq.p, qa.p);
    simd = qm__vec_dot(type, n, wq.p, qa.p);
    { /* every compiled variant (e.g. the AVX2 kernels in an AVX-512 build) against the plain one */
        int v;
        for (v = 1; v <= 2; v++) {
            qm__vec_dot_fn f = qm__vec_dot_variant(type, v);
            if (f) {
                const float r = f(n, wq.p, qa.p);
                CHECK(dabs((double)r - (double)scal) <= 2e-6 * mag_q, "(b) %s variant %d n=%ld w%d %s: %.9g, scalar %.9g",
                      tname(type), v, (long)n, wkind, act_name[akind], (double)r, (double)scal);
            }
        }
    }
    {
        /* (a) integer sums are exact; what remains is float rounding of the block scales
           and of the sum over blocks: a few units of 2^-24 of the magnitude */
        const double tol_a = 2e-6 * mag_q, err_a = dabs((double)scal - ref_q);
        /* (b) the same integers, other float order / fused multiply-adds */
        const double tol_b = 2e-6 * mag_q, err_b = dabs((double)simd - (double)scal);
        /* (c) activation rounding, bounded per block, plus (a)'s rounding */
        const double tol_c = qbound + 2e-6 * (mag_q + mag_x), err_c = dabs((double)simd - exact);
        CHECK(err_a <= tol_a, "(a) %s n=%ld w%d %s: scalar %.9g, double ref %.9g (|terms| %.4g)",
              tname(type), (long)n, wkind, act_name[akind], (double)scal, ref_q, mag_q);
        CHECK(err_b <= tol_b, "(b) %s n=%ld w%d %s: simd %.9g, scalar %.9g (|terms| %.4g)",
              tname(type), (long)n, wkind, act_name[akind], (double)simd, (double)scal, mag_q);
        CHECK(err_c <= tol_c, "(c) %s n=%ld w%d %s: kernel %.9g, exact %.9g, bound %.4g",
              tname(type), (long)n, wkind, act_name[akind], (double)simd, exact, tol_c);
        if (tol_a > 0 && err_a / tol_a > st->worst_a) st->worst_a = err_a / tol_a;
        if (tol_b > 0 && err_b / tol_b > st->worst_b) st->worst_b = err_b / tol_b;
        if (tol_c > 0 && err_c / tol_c > st->worst_c) st->worst_c = err_c / tol_c;
        if (mag_q == 0.0) CHECK(scal == 0.0f && simd == 0.0f, "%s: zero activations give %g, %g",
                                tname(type), (double)scal, (double)simd);
    }
done:
    free(wf); free(wd); free(x); free(ad); free(aerr); free(wq.base); free(qa.base);
}

static void test_random(void) {
    static const int64_t lens_k[] = {256, 512, 2048, 768};
    static const int64_t lens_32[] = {32, 64, 96, 256, 512, 2048, 768};
    static const int64_t lens_f[] = {1, 7, 8, 33, 64, 100, 256, 512, 2048, 768, 1031};
    int t, li, wk, ak, rep;
    for (t = 0; t < N_TYPES; t++) {
        const int type = all_types[t], blck = qm_type_block_elems(type);
        const int64_t *lens = blck == 256 ? lens_k : blck == 32 ? lens_32 : lens_f;
        const int nl = blck == 256 ? 4 : blck == 32 ? 7 : 11;
        stats st = {0, 0, 0};
        for (li = 0; li < nl; li++)
            for (wk = 0; wk < W_COUNT; wk++)
                for (ak = 0; ak < ACT_COUNT; ak++)
                    for (rep = 0; rep < 2; rep++) check_case(type, lens[li], wk, ak, &st);
        printf("  %-7s worst error / bound: (a) %.3f  (b) %.3f  (c) %.3f\n", tname(type),
               st.worst_a, st.worst_b, st.worst_c);
    }
}

/* ---- activation formats ---------------------------------------------------------------- */

static void test_formats(void) {
    static const struct { int w, a; } pairs[] = {
        {QM_TYPE_F32, QM_TYPE_F32}, {QM_TYPE_F16, QM_TYPE_F32}, {QM_TYPE_BF16, QM_TYPE_F32},
        {QM_TYPE_Q8_0, QM_TYPE_Q8_0}, {QM_TYPE_Q4_0, QM_TYPE_Q8_0}, {QM_TYPE_Q5_0, QM_TYPE_Q8_0},
        {QM_TYPE_IQ4_NL, QM_TYPE_Q8_0}, {QM_TYPE_Q4_1, QM__TYPE_Q8_0S}, {QM_TYPE_Q5_1, QM__TYPE_Q8_0S},
        {QM_TYPE_Q2_K, QM_TYPE_Q8_K}, {QM_TYPE_Q3_K, QM_TYPE_Q8_K}, {QM_TYPE_Q4_K, QM_TYPE_Q8_K},
        {QM_TYPE_Q5_K, QM_TYPE_Q8_K}, {QM_TYPE_Q6_K, QM_TYPE_Q8_K}, {QM_TYPE_IQ4_XS, QM_TYPE_Q8_K}};
    int i;
    for (i = 0; i < (int)(sizeof(pairs) / sizeof(pairs[0])); i++)
        CHECK(qm__act_type(pairs[i].w) == pairs[i].a, "act type of %s: %d, want %d",
              tname(pairs[i].w), qm__act_type(pairs[i].w), pairs[i].a);
    CHECK(qm__act_type(QM_TYPE_IQ2_XXS) == -1, "unsupported weight type has an activation type");
    CHECK(qm__act_type(QM_TYPE_Q8_K) == -1, "Q8_K is not a weight type");
    /* sizes: Q8_0 34 B per 32, Q8_0S 36 B per 32, Q8_K 292 B per 256, F32 4 B */
    CHECK(qm__act_row_bytes(QM_TYPE_Q4_K, 2048) == 8 * 292, "q8_K row bytes %lu", (unsigned long)qm__act_row_bytes(QM_TYPE_Q4_K, 2048));
    CHECK(qm__act_row_bytes(QM_TYPE_Q8_0, 2048) == 64 * 34, "q8_0 row bytes");
    CHECK(qm__act_row_bytes(QM_TYPE_Q4_1, 64) == 2 * 36, "q8_0s row bytes");
    CHECK(qm__act_row_bytes(QM_TYPE_F16, 33) == 33 * 4, "f32 row bytes");
    CHECK(qm__act_row_bytes(QM_TYPE_Q4_K, 100) == 0, "partial Q8_K block accepted");
    CHECK(qm__act_row_bytes(QM_TYPE_IQ1_S, 256) == 0, "unsupported type has a row size");

    { /* Q8_0S: d and q as Q8_0's, then s = fp16(d * sum q) (bytes 2-3), with d the unrounded
         scale amax/127, as ggml's Q8_1 */
        float x[64];
        uint8_t a1[72], a0[68];
        int j, b, sum;
        for (j = 0; j < 64; j++) x[j] = (float)((j * 37) % 23 - 11) * 0.37f;
        qm__quantize_row_q8_0s(x, a1, 64);
        qm__quantize_row_q8_0(x, a0, 64);
        for (b = 0; b < 2; b++) {
            float amax = 0.0f;
            sum = 0;
            for (j = 0; j < 32; j++) {
                sum += (int8_t)a1[36 * b + 4 + j];
                if ((float)dabs(x[32 * b + j]) > amax) amax = (float)dabs(x[32 * b + j]);
            }
            CHECK(memcmp(a1 + 36 * b, a0 + 34 * b, 2) == 0 && memcmp(a1 + 36 * b + 4, a0 + 34 * b + 2, 32) == 0,
                  "q8_0s block %d differs from q8_0 in d or q", b);
            CHECK((uint16_t)(a1[36 * b + 2] | (a1[36 * b + 3] << 8)) == qm_fp32_to_fp16(amax / 127.0f * (float)sum),
                  "q8_0s block %d: s = fp16(d * sum)", b);
            CHECK(sum != 0, "q8_0s block %d: test data should have a non-zero sum", b);
        }
    }
}

/* ---- hand-built blocks ------------------------------------------------------------------ */

static void put16(uint8_t *b, uint16_t v) { b[0] = (uint8_t)v; b[1] = (uint8_t)(v >> 8); }

/* Q8_K activation block with d = 0.5 and q[i] = (i % 7) - 3, bsums filled in. */
static void make_q8K(uint8_t *blk) {
    float d = 0.5f;
    int i, g;
    memcpy(blk, &d, 4);
    for (i = 0; i < 256; i++) blk[4 + i] = (uint8_t)(int8_t)((i % 7) - 3);
    for (g = 0; g < 16; g++) {
        int s = 0;
        for (i = 0; i < 16; i++) s += (i + 16 * g) % 7 - 3;
        blk[260 + 2 * g] = (uint8_t)(s & 0xff);
        blk[261 + 2 * g] = (uint8_t)((s >> 8) & 0xff);
    }
}
static int q8K_q(int i) { return (i % 7) - 3; }

/* every compiled kernel variant, and the dispatcher, must give exactly `want` */
static void check_exact(int type, int64_t n, const void *w, const void *a, double want, const char *what) {
    int v;
    for (v = 0; v <= 2; v++) {
        qm__vec_dot_fn f = qm__vec_dot_variant(type, v);
        if (f) CHECK(f(n, w, a) == (float)want, "%s: variant %d gives %.9g, want %.9g", what, v, (double)f(n, w, a), want);
    }
    CHECK(qm__vec_dot(type, n, w, a) == (float)want, "%s: qm__vec_dot gives %.9g, want %.9g", what,
          (double)qm__vec_dot(type, n, w, a), want);
}

static void test_hand(void) {
    { /* Q8_0: weights q = j - 16, d = 0.25; activations q = 3 - (j % 5), d = 2. */
        uint32_t wb[9], ab[9]; /* block structs want 2-byte (Q8_K: 4-byte) alignment */
        uint8_t *w = (uint8_t *)wb, *a = (uint8_t *)ab;
        double want = 0.0;
        int j;
        put16(w, 0x3400); /* 0.25 */
        put16(a, 0x4000); /* 2 */
        for (j = 0; j < 32; j++) {
            w[2 + j] = (uint8_t)(int8_t)(j - 16);
            a[2 + j] = (uint8_t)(int8_t)(3 - j % 5);
            want += (j - 16) * (3 - j % 5) * 0.5;
        }
        check_exact(QM_TYPE_Q8_0, 32, w, a, want, "q8_0 hand block");
    }
    { /* Q4_K: d = 1, dmin = 0.5; sub-block j scale j+1, min 2j (6-bit packing written out:
         j<4: scales[j] low 6 bits = sc, scales[j+4] low 6 bits = m; j>=4: scales[j+4] =
         sc low4 | m low4 << 4, high bits in scales[j-4] / scales[j] bits 6-7);
         element e = 64c + l (l < 32) is the low nibble of qs[32c + l], e + 32 the high. */
        uint32_t wb[36], ab[73];
        uint8_t *w = (uint8_t *)wb, *a = (uint8_t *)ab;
        int sc[8], mn[8], q[256], j, e, c, l;
        double want = 0.0;
        put16(w, 0x3c00);
        put16(w + 2, 0x3800);
        for (j = 0; j < 8; j++) { sc[j] = j + 1 + (j == 5 ? 40 : 0); mn[j] = 2 * j + (j == 6 ? 33 : 0); }
        memset(w + 4, 0, 12);
        for (j = 0; j < 4; j++) { w[4 + j] = (uint8_t)sc[j]; w[8 + j] = (uint8_t)mn[j]; }
        for (j = 4; j < 8; j++) {
            w[4 + j + 4] = (uint8_t)((sc[j] & 15) | ((mn[j] & 15) << 4));
            w[4 + j - 4] |= (uint8_t)((sc[j] >> 4) << 6);
            w[4 + j] |= (uint8_t)((mn[j] >> 4) << 6);
        }
        for (e = 0; e < 256; e++) q[e] = (e * 5 + 3) % 16;
        for (c = 0; c < 4; c++)
            for (l = 0; l < 32; l++) w[16 + 32 * c + l] = (uint8_t)(q[64 * c + l] | (q[64 * c + 32 + l] << 4));
        make_q8K(a);
        for (e = 0; e < 256; e++) want += (1.0 * sc[e / 32] * q[e] - 0.5 * mn[e / 32]) * 0.5 * q8K_q(e);
        check_exact(QM_TYPE_Q4_K, 256, w, a, want, "q4_k hand block");
    }
    { /* Q6_K: ql[128], qh[64], int8 scales[16], d. Element e of half h (e = 128h + k):
         k < 32: ql[64h+k] low, qh[32h+k] bits 0-1; 32..63: ql[64h+k] low (k-32+32), qh bits 2-3
         of qh[32h+k-32]; 64..95: ql[64h+k-64] high, qh bits 4-5; 96..127: ql[64h+k-64] high,
         qh bits 6-7; value (q6 - 32) * d * scale[e/16]. */
        uint32_t wb[53], ab[73];
        uint8_t *w = (uint8_t *)wb, *a = (uint8_t *)ab;
        int q[256], e, h, k;
        double want = 0.0;
        memset(wb, 0, sizeof(wb));
        for (e = 0; e < 256; e++) q[e] = (e * 11 + 5) % 64;
        for (h = 0; h < 2; h++)
            for (k = 0; k < 128; k++) {
                const int v = q[128 * h + k], grp = k / 32, l = k % 32;
                uint8_t *ql = w + 64 * h, *qh = w + 128 + 32 * h;
                if (grp == 0) ql[l] |= (uint8_t)(v & 15);
                if (grp == 1) ql[l + 32] |= (uint8_t)(v & 15);
                if (grp == 2) ql[l] |= (uint8_t)((v & 15) << 4);
                if (grp == 3) ql[l + 32] |= (uint8_t)((v & 15) << 4);
                qh[l] |= (uint8_t)((v >> 4) << (2 * grp));
            }
        for (k = 0; k < 16; k++) w[192 + k] = (uint8_t)(int8_t)(k * 9 - 70);
        put16(w + 208, 0x3400); /* 0.25 */
        make_q8K(a);
        for (e = 0; e < 256; e++) want += 0.25 * (e / 16 * 9 - 70) * (q[e] - 32) * 0.5 * q8K_q(e);
        check_exact(QM_TYPE_Q6_K, 256, w, a, want, "q6_k hand block");
    }
    { /* Q5_K: as Q4_K with qh: element 64c + l gets +16 from bit 2c of qh[l], 64c+32+l
         from bit 2c+1. All scales 1, mins 0, d = 1, dmin = 0. */
        uint32_t wb[44], ab[73];
        uint8_t *w = (uint8_t *)wb, *a = (uint8_t *)ab;
        int q[256], e, c, l;
        double want = 0.0;
        memset(wb, 0, sizeof(wb));
        put16(w, 0x3c00);
        for (c = 0; c < 4; c++) { w[4 + c] = 1; w[4 + 8 + c] = 0x01; } /* sc 0-3 = 1, sc 4-7 = 1 */
        for (e = 0; e < 256; e++) q[e] = (e * 13 + 7) % 32;
        for (c = 0; c < 4; c++)
            for (l = 0; l < 32; l++) {
                const int lo = q[64 * c + l], hi = q[64 * c + 32 + l];
                w[48 + 32 * c + l] = (uint8_t)((lo & 15) | ((hi & 15) << 4));
                w[16 + l] |= (uint8_t)(((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
            }
        make_q8K(a);
        for (e = 0; e < 256; e++) want += q[e] * 0.5 * q8K_q(e);
        check_exact(QM_TYPE_Q5_K, 256, w, a, want, "q5_k hand block");
    }
}

/* ---- several rows at once -------------------------------------------------------------- */

static void test_multi(void) {
    static const int types[] = {QM_TYPE_Q4_K, QM_TYPE_Q6_K, QM_TYPE_Q8_0, QM_TYPE_F16, QM_TYPE_IQ4_XS};
    const int64_t n = 512;
    const int rows = 7;
    int t, r;
    for (t = 0; t < (int)(sizeof(types) / sizeof(types[0])); t++) {
        const int type = types[t];
        const size_t rb = qm_type_row_bytes(type, n);
        float *wf = (float *)malloc(sizeof(float) * (size_t)(n * rows)), x[512], out[7];
        buf wq = buf_alloc(rb * rows, 2), qa = buf_alloc(qm__act_row_bytes(type, n), 0);
        make_weights(wf, n * rows, W_SHIFTED);
        make_act(x, n, ACT_GAUSS);
        qm_quantize_row(type, wf, wq.p, n * rows);
        qm__quantize_act(type, x, qa.p, n);
        qm__vec_dot_multi(type, n, wq.p, rb, rows, qa.p, out);
        for (r = 0; r < rows; r++) {
            const float one = qm__vec_dot(type, n, (const uint8_t *)wq.p + rb * (size_t)r, qa.p);
            const float sc = qm__vec_dot_scalar(type, n, (const uint8_t *)wq.p + rb * (size_t)r, qa.p);
            CHECK(dabs(out[r] - one) <= 1e-5 * (dabs(one) + dabs(sc)) + 1e-6 * dabs(sc) + 1e-30,
                  "%s multi row %d: %.9g vs single %.9g", tname(type), r, (double)out[r], (double)one);
        }
        free(wf); free(wq.base); free(qa.base);
    }
}

/* ---- several tokens at once: the 4-token kernels, qm__vec_dot_ntok, qm__matmul_rows ---- */

static void test_tokens(void) {
    static const int types[] = {QM_TYPE_Q4_K, QM_TYPE_Q6_K, QM_TYPE_Q5_K, QM_TYPE_Q8_0, QM_TYPE_IQ4_XS, QM_TYPE_BF16};
    static const int Ts[] = {1, 2, 3, 4, 7, 8, 9};
    const int64_t n = 768;
    const int rows = 37, T = 9, ldy = 41; /* ldy > rows: the gaps must stay untouched */
    int ti, r, t, k, v;
    for (ti = 0; ti < (int)(sizeof(types) / sizeof(types[0])); ti++) {
        const int type = types[ti];
        const size_t rb = qm_type_row_bytes(type, n), ab = qm__act_row_bytes(type, n);
        float *wf = (float *)malloc(sizeof(float) * (size_t)(n * rows)), *x = (float *)malloc(sizeof(float) * (size_t)(n * T));
        float *y = (float *)malloc(sizeof(float) * (size_t)(ldy * T)), *ref = (float *)malloc(sizeof(float) * (size_t)(rows * T));
        float *mag = (float *)malloc(sizeof(float) * (size_t)(rows * T));
        buf wq = buf_alloc(rb * rows, 2), qa = buf_alloc(ab * T, 0);
        make_weights(wf, n * rows, W_SHIFTED);
        for (t = 0; t < T; t++) make_act(x + n * t, n, t % 2 ? ACT_OUTLIER : ACT_GAUSS);
        qm_quantize_row(type, wf, wq.p, n * rows);
        for (t = 0; t < T; t++) qm__quantize_act(type, x + n * t, (uint8_t *)qa.p + ab * (size_t)t, n);
        for (r = 0; r < rows; r++)
            for (t = 0; t < T; t++) {
                const uint8_t *wr = (const uint8_t *)wq.p + rb * (size_t)r, *at = (const uint8_t *)qa.p + ab * (size_t)t;
                float wd[768];
                double ad[768], aerr[768], m = 0.0;
                int64_t i;
                ref[r * T + t] = qm__vec_dot_scalar(type, n, wr, at);
                /* tolerance as in (b): 2e-6 of sum |w_i a_i| */
                qm_dequantize_row(type, wr, wd, n);
                dequant_act(qm__act_type(type), at, n, x + n * t, ad, aerr);
                for (i = 0; i < n; i++) m += dabs((double)wd[i] * ad[i]);
                mag[r * T + t] = (float)(0.2 * m); /* 1e-5 * mag = 2e-6 * sum */
            }
        /* the 4-token kernels of every compiled variant */
        for (v = 1; v <= 2; v++) {
            qm__vec_dot4_fn f4 = qm__vec_dot4_variant(type, v);
            float o[4];
            if (!f4) continue;
            for (r = 0; r < rows; r += 5) {
                f4(n, (const uint8_t *)wq.p + rb * (size_t)r, (const uint8_t *)qa.p + ab * 2, ab, o);
                for (k = 0; k < 4; k++)
                    CHECK(dabs(o[k] - ref[r * T + 2 + k]) <= 1e-5 * mag[r * T + 2 + k], "%s 4-token variant %d row %d token %d: %.9g vs %.9g",
                          tname(type), v, r, 2 + k, (double)o[k], (double)ref[r * T + 2 + k]);
            }
        }
        /* qm__vec_dot_ntok, output strided */
        for (r = 0; r < rows; r += 6) {
            float o[2 * 9];
            qm__vec_dot_ntok(type, n, (const uint8_t *)wq.p + rb * (size_t)r, qa.p, ab, T, o, 2);
            for (t = 0; t < T; t++)
                CHECK(dabs(o[2 * t] - ref[r * T + t]) <= 1e-5 * mag[r * T + t], "%s ntok row %d token %d: %.9g vs %.9g",
                      tname(type), r, t, (double)o[2 * t], (double)ref[r * T + t]);
        }
        /* qm__matmul_rows on a sub-range of rows, for several token counts */
        for (k = 0; k < (int)(sizeof(Ts) / sizeof(Ts[0])); k++) {
            const int TT = Ts[k], r0 = 3, r1 = rows - 2;
            int bad = 0;
            for (r = 0; r < ldy * T; r++) y[r] = -12345.0f;
            qm__matmul_rows(type, n, wq.p, rb, r0, r1, qa.p, ab, TT, y, ldy);
            for (t = 0; t < T; t++)
                for (r = 0; r < ldy; r++) {
                    const float got = y[t * ldy + r];
                    if (t < TT && r >= r0 && r < r1) {
                        if (!(dabs(got - ref[r * T + t]) <= 1e-5 * mag[r * T + t])) bad++;
                    } else if (got != -12345.0f) {
                        bad++;
                    }
                }
            CHECK(bad == 0, "%s matmul_rows T=%d rows %d..%d: %d wrong or stray outputs", tname(type), TT, r0, r1, bad);
        }
        free(wf); free(x); free(y); free(ref); free(mag); free(wq.base); free(qa.base);
    }
}

/* Q4_K in llama.cpp's summation order, bit for bit (see qm__mm_q4_K_r16): per block the exact
   integer sums, then fmaf into a running sum and a running sum of the mins' terms - once per
   block (its gemv: decode, MoE tokens) or once per 64-quant sub-block pair (its gemm: the
   first T - T % 4 tokens of a dense product). The expected values are written out here in
   scalar C; the single-token kernel and qm__matmul_rows_ng (16-row tiles, 64-token passes,
   tail rows) must give exactly them. */
#if defined(QM__AVX512) && defined(__AVX512VNNI__)
static float q4k_order_ref(const qm__block_q4_K *w, const qm__block_q8_K *a, int64_t nb, int per_pair) {
    float acc = 0.0f, accm = 0.0f;
    int64_t b;
    for (b = 0; b < nb; b++) {
        uint8_t sm[16];
        const float d = qm__h2f(w[b].d) * a[b].d, dmin = qm__h2f(w[b].dmin) * a[b].d;
        int32_t blk = 0, blkm = 0;
        int sb, j, e;
        qm__k4_unpack(w[b].scales, sm);
        for (sb = 0; sb < 4; sb++) {
            int32_t pair = 0, pairm = 0;
            for (j = 2 * sb; j < 2 * sb + 2; j++) {
                int32_t s = 0;
                for (e = 0; e < 32; e++) s += ((w[b].qs[32 * (j / 2) + e] >> (4 * (j & 1))) & 15) * a[b].qs[32 * j + e];
                pair += sm[j] * s;
                pairm += sm[8 + j] * (a[b].bsums[2 * j] + a[b].bsums[2 * j + 1]);
            }
            if (per_pair) {
                acc = fmaf((float)pair, d, acc);
                accm = fmaf((float)pairm, dmin, accm);
            }
            blk += pair;
            blkm += pairm;
        }
        if (!per_pair) {
            acc = fmaf((float)blk, d, acc);
            accm = fmaf((float)blkm, dmin, accm);
        }
    }
    return acc - accm;
}
#endif

static void test_q4k_order(void) {
    const int64_t n = 1024, nb = n / QM__QK_K;
    const int rows = 40, T = 70, ldy = 40; /* 2 tiles of 16 + 8 tail rows; a pass of 64 + 6 tokens */
    static const int ngs[] = {0, 68, 4};
    const size_t rb = qm_type_row_bytes(QM_TYPE_Q4_K, n), ab = qm__act_row_bytes(QM_TYPE_Q4_K, n);
    float *wf = (float *)malloc(sizeof(float) * (size_t)(n * rows)), *x = (float *)malloc(sizeof(float) * (size_t)n);
    float *y = (float *)malloc(sizeof(float) * (size_t)(ldy * T));
    buf wq = buf_alloc(rb * rows, 2), qa = buf_alloc(ab * T, 0);
    int r, t, k, bad1 = 0;
    make_weights(wf, n * rows, W_SHIFTED);
    qm_quantize_row(QM_TYPE_Q4_K, wf, wq.p, n * rows);
    for (t = 0; t < T; t++) {
        make_act(x, n, t % 3 ? ACT_GAUSS : ACT_OUTLIER);
        qm__quantize_act(QM_TYPE_Q4_K, x, (uint8_t *)qa.p + ab * (size_t)t, n);
    }
#if defined(QM__AVX512) && defined(__AVX512VNNI__)
    /* the single-token kernel: llama.cpp's gemv order */
    for (r = 0; r < rows; r++)
        for (t = 0; t < T; t += 7) {
            const qm__block_q4_K *w = (const qm__block_q4_K *)(const void *)((const uint8_t *)wq.p + rb * (size_t)r);
            const qm__block_q8_K *a = (const qm__block_q8_K *)(const void *)((const uint8_t *)qa.p + ab * (size_t)t);
            if (qm__vec_dot_for(QM_TYPE_Q4_K)(n, w, a) != q4k_order_ref(w, a, nb, 0)) bad1++;
        }
    CHECK(bad1 == 0, "q4_K single-token dot: %d results differ from llama.cpp's gemv order", bad1);
    for (k = 0; k < (int)(sizeof(ngs) / sizeof(ngs[0])); k++) {
        const int ng = ngs[k];
        int bad = 0;
        for (r = 0; r < ldy * T; r++) y[r] = -12345.0f;
        qm__matmul_rows_ng(QM_TYPE_Q4_K, n, wq.p, rb, 0, 32, qa.p, ab, T, ng, y, ldy);
        for (t = 0; t < T; t++)
            for (r = 0; r < ldy; r++) {
                const qm__block_q4_K *w = (const qm__block_q4_K *)(const void *)((const uint8_t *)wq.p + rb * (size_t)r);
                const qm__block_q8_K *a = (const qm__block_q8_K *)(const void *)((const uint8_t *)qa.p + ab * (size_t)t);
                if (r < 32) {
                    if (y[t * ldy + r] != q4k_order_ref(w, a, nb, t < ng)) bad++;
                } else if (y[t * ldy + r] != -12345.0f) {
                    bad++;
                }
            }
        CHECK(bad == 0, "q4_K matmul_rows_ng T=%d ng=%d: %d outputs differ from llama.cpp's order (or stray)", T, ng, bad);
    }
#else
    (void)bad1; (void)ngs; (void)k; (void)r; (void)y; (void)nb; (void)ldy;
    printf("skip q4_K summation order: the llama.cpp-order kernels need AVX-512 VNNI\n");
#endif
    free(wf); free(x); free(y); free(wq.base); free(qa.base);
}

/* Q6_K in llama.cpp's order, bit for bit (see qm__mm_q6_K_r16): per block 8 exact integer
   lanes, lane k over the quants whose index mod 32 is 4 k .. 4 k + 3; fmaf of each into its
   own running sum; the 8 sums added as ((0 + 4) + (2 + 6)) + ((1 + 5) + (3 + 7)). Written
   out in scalar C from the format; the single-token kernel and qm__matmul_rows (16-row
   tiles, passes of 32 tokens, tail rows) must give exactly these values. */
#if defined(QM__AVX512) && defined(__AVX512VNNI__)
static float q6k_order_ref(const qm__block_q6_K *w, const qm__block_q8_K *a, int64_t nb) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t b;
    int k, e;
    for (b = 0; b < nb; b++) {
        const float d = a[b].d * qm__h2f(w[b].d);
        int32_t lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (e = 0; e < 256; e++) {
            const int h = e / 128, m = (e % 128) / 32, l = e % 32;
            const int lo = (w[b].ql[64 * h + 32 * (m & 1) + l] >> (4 * (m >> 1))) & 15;
            const int hi = (w[b].qh[32 * h + l] >> (2 * m)) & 3;
            lane[(e % 32) / 4] += w[b].scales[e / 16] * ((lo | hi << 4) - 32) * a[b].qs[e];
        }
        for (k = 0; k < 8; k++) acc[k] = fmaf((float)lane[k], d, acc[k]);
    }
    return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
}
#endif

static void test_q6k_order(void) {
    const int64_t n = 1024, nb = n / QM__QK_K;
    const int rows = 40, T = 70, ldy = 40; /* 2 tiles of 16 + 8 tail rows; passes of 32, 32 and 6 tokens */
    static const int Ts[] = {70, 2, 3, 33};
    const size_t rb = qm_type_row_bytes(QM_TYPE_Q6_K, n), ab = qm__act_row_bytes(QM_TYPE_Q6_K, n);
    float *wf = (float *)malloc(sizeof(float) * (size_t)(n * rows)), *x = (float *)malloc(sizeof(float) * (size_t)n);
    float *y = (float *)malloc(sizeof(float) * (size_t)(ldy * T));
    buf wq = buf_alloc(rb * rows, 2), qa = buf_alloc(ab * T, 0);
    int r, t, k, bad1 = 0;
    make_weights(wf, n * rows, W_SHIFTED);
    qm_quantize_row(QM_TYPE_Q6_K, wf, wq.p, n * rows);
    for (t = 0; t < T; t++) {
        make_act(x, n, t % 3 ? ACT_GAUSS : ACT_OUTLIER);
        qm__quantize_act(QM_TYPE_Q6_K, x, (uint8_t *)qa.p + ab * (size_t)t, n);
    }
#if defined(QM__AVX512) && defined(__AVX512VNNI__)
    for (r = 0; r < rows; r++)
        for (t = 0; t < T; t += 7) {
            const qm__block_q6_K *w = (const qm__block_q6_K *)(const void *)((const uint8_t *)wq.p + rb * (size_t)r);
            const qm__block_q8_K *a = (const qm__block_q8_K *)(const void *)((const uint8_t *)qa.p + ab * (size_t)t);
            if (qm__vec_dot_for(QM_TYPE_Q6_K)(n, w, a) != q6k_order_ref(w, a, nb)) bad1++;
        }
    CHECK(bad1 == 0, "q6_K single-token dot: %d results differ from llama.cpp's order", bad1);
    for (k = 0; k < (int)(sizeof(Ts) / sizeof(Ts[0])); k++) {
        const int TT = Ts[k];
        int bad = 0;
        for (r = 0; r < ldy * T; r++) y[r] = -12345.0f;
        qm__matmul_rows(QM_TYPE_Q6_K, n, wq.p, rb, 0, 36, qa.p, ab, TT, y, ldy);
        for (t = 0; t < T; t++)
            for (r = 0; r < ldy; r++) {
                const qm__block_q6_K *w = (const qm__block_q6_K *)(const void *)((const uint8_t *)wq.p + rb * (size_t)r);
                const qm__block_q8_K *a = (const qm__block_q8_K *)(const void *)((const uint8_t *)qa.p + ab * (size_t)t);
                if (r < 36 && t < TT) {
                    if (y[t * ldy + r] != q6k_order_ref(w, a, nb)) bad++;
                } else if (y[t * ldy + r] != -12345.0f) {
                    bad++;
                }
            }
        CHECK(bad == 0, "q6_K matmul_rows T=%d: %d outputs differ from llama.cpp's order (or stray)", TT, bad);
    }
#else
    (void)bad1; (void)Ts; (void)k; (void)r; (void)y; (void)nb; (void)ldy;
    printf("skip q6_K summation order: checked where the AVX-512 VNNI kernels are built\n");
#endif
    free(wf); free(x); free(y); free(wq.base); free(qa.base);
}

/* qm__attn_group_f16x128 (up to 8 q heads of one kv head at once) against the per-head
   steps it replaces, bit for bit: qm__qk_f16x128, qm__vexpf, the sum in key order, the
   weights rounded to f16, qm__pv_f16. */
static void test_attn_group(void) {
#if defined(QM__AVX512)
    enum { HD = 128, KVH = 2, MAXKV = 300 };
    static const int gs[] = {8, 3, 1};
    static const int nkvs[] = {1, 8, 37, 300};
    uint16_t *k = (uint16_t *)malloc(sizeof(uint16_t) * HD * KVH * MAXKV), *v = (uint16_t *)malloc(sizeof(uint16_t) * HD * KVH * MAXKV);
    float q[8 * HD], qr[HD], out[8 * HD], ref[HD], sc[8 * MAXKV], sc1[MAXKV];
    int i, gi, ni, h, p, bad = 0;
    for (i = 0; i < HD * KVH * MAXKV; i++) {
        k[i] = qm_fp32_to_fp16((float)rng_gauss());
        v[i] = qm_fp32_to_fp16((float)rng_gauss());
    }
    for (i = 0; i < 8 * HD; i++) q[i] = (float)(3.0 * rng_gauss());
    for (gi = 0; gi < 3; gi++)
        for (ni = 0; ni < 4; ni++) {
            const int g = gs[gi], n_kv = nkvs[ni];
            const float scale = 0.08838834764831845f;
            qm__attn_group_f16x128(q, g, k + HD, v + HD, HD * KVH, n_kv, scale, sc, out);
            for (h = 0; h < g; h++) {
                float mx, sum = 0.0f;
                for (i = 0; i < HD; i++) qr[i] = qm_fp16_to_fp32(qm_fp32_to_fp16(q[HD * h + i]));
                mx = qm__qk_f16x128(k + HD, HD * KVH, qr, n_kv, scale, sc1);
                qm__vexpf(sc1, sc1, mx, n_kv);
                for (p = 0; p < n_kv; p++) sum += sc1[p];
                for (p = 0; p < n_kv; p++) sc1[p] = qm_fp16_to_fp32(qm_fp32_to_fp16(sc1[p] / sum));
                qm__pv_f16(ref, sc1, v + HD, HD * KVH, n_kv, HD);
                if (memcmp(ref, out + HD * h, sizeof(ref)) != 0) bad++;
            }
            CHECK(bad == 0, "attention of %d heads together, %d keys: %d heads differ from the per-head steps", g, n_kv, bad);
            bad = 0;
        }
    free(k); free(v);
#else
    printf("skip grouped attention: AVX-512 only\n");
#endif
}

/* qm__vexpf and qm__swiglu: the same bits as the scalar qm__expf and formula, on a sweep,
   random values, the lengths 0..40 (vector bodies and tails) and the edges */
static void test_vexp(void) {
    enum { N = 4096 };
    static float x[N], y[N], g[N], u[N], g2[N];
    static const float edge[] = {0.0f, -0.0f, 1e-30f, -1e-30f, 88.72f, 88.73f, 89.0f, 100.0f, 1000.0f, -87.3f,
                                 -103.9f, -104.0f, -149.9f, -150.1f, -745.0f, -1e30f, 1e30f, 0.5f, -0.5f, 0.34657359f};
    uint64_t seed = 99;
    int i, n, bad = 0, badg = 0;
    for (i = 0; i < N; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        if (i < 2048) x[i] = -110.0f + 200.0f * (float)i / 2048.0f;
        else x[i] = (float)((int64_t)(seed >> 11) % 2000000) * 1e-4f * ((seed >> 5) & 1 ? 1.0f : 0.01f);
    }
    for (i = 0; i < (int)(sizeof(edge) / sizeof(edge[0])); i++) x[2048 + i] = edge[i];
    { volatile float vz = 0.0f; const float zero = vz; x[3000] = 1.0f / zero; x[3001] = -1.0f / zero; x[3002] = zero / zero; }
    qm__vexpf(y, x, 0.0f, N);
    for (i = 0; i < N; i++) {
        const float want = qm__expf(x[i]);
        if (!(memcmp(&want, &y[i], 4) == 0 || (want != want && y[i] != y[i]))) {
            if (bad++ < 5) printf("vexpf(%.9g) = %.9g, scalar %.9g\n", (double)x[i], (double)y[i], (double)want);
        }
    }
    CHECK(bad == 0, "qm__vexpf differs from qm__expf on %d of %d inputs", bad, N);
    for (n = 0; n <= 40; n++) {
        float o[41];
        qm__vexpf(o, x + 100, 1.5f, n);
        for (i = 0; i < n; i++) { const float w = qm__expf(x[100 + i] - 1.5f); if (memcmp(&w, &o[i], 4) != 0) bad++; }
    }
    CHECK(bad == 0, "qm__vexpf with sub and lengths 0..40: %d differ", bad);
    for (i = 0; i < N; i++) { g[i] = x[i] * 0.1f; u[i] = (float)(i % 17) - 8.0f; g2[i] = g[i]; }
    qm__swiglu(g2, u, N);
    for (i = 0; i < N; i++) {
        const float want = g[i] / (1.0f + qm__expf(-g[i])) * u[i];
        if (!(memcmp(&want, &g2[i], 4) == 0 || (want != want && g2[i] != g2[i]))) badg++;
    }
    CHECK(badg == 0, "qm__swiglu differs from the scalar formula on %d of %d", badg, N);
}

int main(void) {
    printf("kernels: %s\n", qm__simd_name());
    test_formats();
    test_hand();
    test_random();
    test_multi();
    test_tokens();
    test_q4k_order();
    test_q6k_order();
    test_attn_group();
    test_vexp();
    return qmtest_summary("kernels");
}
