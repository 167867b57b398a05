/* ------------------------------------------------------------------------------------- */
/*  kernels: dot products of a quantized weight row with a quantized activation row      */
/*                                                                                       */
/*  As in ggml, weights are never expanded to f32 for a matrix product. The activation   */
/*  row is quantized once into the format paired with the weight type (qm__act_type):    */
/*      K-quants (Q2_K..Q6_K), IQ4_XS          -> Q8_K  (f32 d, 256 int8, 16 int16 sums)  */
/*      Q8_0, Q4_0, Q5_0, IQ4_NL               -> Q8_0  (fp16 d, 32 int8)                 */
/*      Q4_1, Q5_1                             -> Q8_0S (Q8_0 + the int16 sum of the q)    */
/*      F32, F16, BF16                         -> F32   (weights widened in registers)    */
/*  and every weight block is multiplied with its activation block in integers; the      */
/*  float scales are applied once per block (once per 256-element super-block for the   */
/*  K-quants, whose sub-block scales and mins are integers too: the min term is          */
/*  sum(min_j * bsum_j) with the Q8_K partial sums).                                     */
/*                                                                                       */
/*  Each type has a plain C kernel (qm__dot_<w>_<a>_scalar) that defines the result.      */
/*  SIMD kernels, for every type, are chosen at compile time from the compiler's          */
/*  predefined macros (no run-time dispatch: build with -march=native or the like):      */
/*      x86 AVX2+FMA+F16C: 256-bit kernels; with AVX-VNNI or AVX512-VNNI(+VL) the         */
/*           maddubs/madd pairs become dpbusd/dpwssd;                                     */
/*      x86 AVX-512 F+BW+VL: 512-bit kernels for F16 BF16 Q8_0 Q4_K Q5_K Q6_K (the other  */
/*           types keep the 256-bit ones; F32 too: streaming f32 weights is bound by      */
/*           memory, and 64-byte loads of 32-byte aligned rows split cache lines);        */
/*      aarch64 NEON: 128-bit kernels, sdot with the dot-product extension               */
/*           (-march=armv8.2-a+dotprod and later), an equivalent widening sequence else.  */
/*  They add the same integers and differ from the plain kernels only by float rounding. */
/*  The activation quantizers give the same bytes on every path. QWENMOE_NO_SIMD forces   */
/*  the plain C code.                                                                    */
/*                                                                                       */
/*  Interface (all private):                                                             */
/*      qm__act_type(wtype)                  activation format for a weight type (-1: none)*/
/*      qm__act_row_bytes(wtype, n)          bytes of one quantized activation row        */
/*      qm__quantize_act(wtype, x, qx, n)    quantize an f32 activation row               */
/*      qm__vec_dot(wtype, n, wrow, qx)      one weight row . one activation row          */
/*      qm__vec_dot_multi(...)               consecutive weight rows . one activation row */
/*      qm__vec_dot_ntok(...)                one weight row . several activation rows     */
/*      qm__matmul_rows(...)                 rows r0..r1 x T tokens: the matmul inner loop */
/*      qm__vec_dot_scalar, qm__quantize_act_scalar, qm__vec_dot_variant: the plain C and */
/*           the individual SIMD kernels, for tests and benchmarks                       */
/*  Rows of every quantized type hold whole blocks; F32/F16/BF16 rows may have any n.     */
/*  Weight rows need only the alignment of their block struct (2 bytes; 4 for F32) and    */
/*  activation rows that of theirs (4 bytes for Q8_K and F32): all loads are unaligned.   */
/*  Results are 0 for a weight type without kernels (qm__act_type < 0).                  */
/* ------------------------------------------------------------------------------------- */

#define QM__KERNELS_H 1

#if !defined(QWENMOE_NO_SIMD)
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define QM__X86 1
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#define QM__AVX512 1
#endif
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
#define QM__VNNI 1 /* 256-bit dpbusd/dpwssd through AVX512-VNNI (EVEX) */
#elif defined(__AVXVNNI__)
#define QM__VNNI 2 /* the same through AVX-VNNI (VEX) */
#endif
#if defined(__GNUC__) && !defined(__clang__) && defined(__cplusplus) && defined(QM__AVX512)
/* g++ 12's AVX-512 headers make "undefined" vectors by self-initialization, which -Wall
   reports inside those headers where the intrinsics are inlined (GCC PR 105593) */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#else
#include <immintrin.h>
#endif
#elif defined(__aarch64__) && defined(__ARM_NEON)
#define QM__NEON 1
#include <arm_neon.h>
#endif
#endif

#if defined(_MSC_VER) && !defined(__cplusplus)
#define QM__INLINE __inline
#else
#define QM__INLINE inline
#endif

/* A pointer cast that C++ accepts between unrelated object types. */
#define QM__PTR(T, p) QM__CAST(T, QM__CAST(const void *, (p)))

/* Q8_0S: the activation format of Q4_1/Q5_1, a Q8_0 block plus the sum of its quants, which
   carries the weight offset term m * sum(a) = m * d * sum. ggml uses Q8_1 there, whose
   s = fp16(d * sum) rounds that term to 11 bits; the integer sum keeps it exact. */
#define QM__TYPE_Q8_0S (QM_TYPE_COUNT + 1) /* private id, not a ggml type */
typedef struct qm__block_q8_0s {
    uint16_t d;  /* fp16, as Q8_0 */
    int16_t sum; /* sum of qs */
    int8_t qs[32];
} qm__block_q8_0s;
QM__STATIC_ASSERT(q8_0s, sizeof(qm__block_q8_0s) == 36);

/* Name of the kernel set compiled in (for tools and benchmarks). */
static QM__MAYBE_UNUSED const char *qm__simd_name(void) {
#if defined(QM__AVX512) && defined(QM__VNNI)
    return "avx512+vnni";
#elif defined(QM__AVX512)
    return "avx512";
#elif defined(QM__X86) && defined(QM__VNNI)
    return "avx2+vnni";
#elif defined(QM__X86)
    return "avx2";
#elif defined(QM__NEON) && defined(__ARM_FEATURE_DOTPROD)
    return "neon+dotprod";
#elif defined(QM__NEON)
    return "neon";
#else
    return "scalar";
#endif
}

/* ---- activation formats --------------------------------------------------------------- */

static int qm__act_type(int wtype) {
    switch (wtype) {
    case QM_TYPE_F32: case QM_TYPE_F16: case QM_TYPE_BF16:
        return QM_TYPE_F32;
    case QM_TYPE_Q8_0: case QM_TYPE_Q4_0: case QM_TYPE_Q5_0: case QM_TYPE_IQ4_NL:
        return QM_TYPE_Q8_0;
    case QM_TYPE_Q4_1: case QM_TYPE_Q5_1:
        return QM__TYPE_Q8_0S;
    case QM_TYPE_Q2_K: case QM_TYPE_Q3_K: case QM_TYPE_Q4_K: case QM_TYPE_Q5_K: case QM_TYPE_Q6_K:
    case QM_TYPE_IQ4_XS:
        return QM_TYPE_Q8_K;
    default:
        return -1;
    }
}

/* 0 for an unsupported weight type or an n that is not a whole number of activation blocks. */
static QM__MAYBE_UNUSED size_t qm__act_row_bytes(int wtype, int64_t n) {
    int blck, bytes;
    switch (qm__act_type(wtype)) {
    case QM_TYPE_F32: blck = 1; bytes = 4; break;
    case QM_TYPE_Q8_0: blck = 32; bytes = QM__CAST(int, sizeof(qm__block_q8_0)); break;
    case QM__TYPE_Q8_0S: blck = 32; bytes = QM__CAST(int, sizeof(qm__block_q8_0s)); break;
    case QM_TYPE_Q8_K: blck = QM__QK_K; bytes = QM__CAST(int, sizeof(qm__block_q8_K)); break;
    default: return 0;
    }
    if (n < 0 || n % blck != 0) return 0;
    return QM__CAST(size_t, n / blck) * QM__CAST(size_t, bytes);
}

/* Q8_0S: d and q exactly as qm__quantize_row_q8_0, and the sum of the q. Same float
   arithmetic, so no contraction into fused multiply-adds either (see the top of quant). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__) && defined(__FP_FAST_FMAF)
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#endif
static QM__MAYBE_UNUSED void qm__quantize_row_q8_0s(const float *x, void *vy, int64_t n) {
    qm__block_q8_0s *y = QM__CAST(qm__block_q8_0s *, vy);
    int64_t i, nb = n / 32;
    int j;
    for (i = 0; i < nb; i++, x += 32) {
        float amax = 0.0f, d, id;
        int sum = 0;
        for (j = 0; j < 32; j++) {
            const float a = qm__fabsf(x[j]);
            amax = amax > a ? amax : a;
        }
        d = amax / 127.0f;
        id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = qm_fp32_to_fp16(d);
        for (j = 0; j < 32; j++) {
            y[i].qs[j] = QM__CAST(int8_t, qm__low_i8(qm__ftoi(qm__roundf(x[j] * id))));
            sum += y[i].qs[j];
        }
        y[i].sum = QM__CAST(int16_t, sum);
    }
}
#if defined(__clang__)
#pragma STDC FP_CONTRACT DEFAULT
#elif defined(__GNUC__) && defined(__FP_FAST_FMAF)
#pragma GCC pop_options
#endif

/* fp16 -> f32 for block scales, in one instruction where the target has one. */
static QM__INLINE float qm__h2f(uint16_t h) {
#if defined(QM__X86)
    return _cvtsh_ss(h);
#elif defined(QM__NEON)
    return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0);
#else
    return qm_fp16_to_fp32(h);
#endif
}

/* ---- plain C kernels ------------------------------------------------------------------ */

static float qm__dot_f32_f32_scalar(int64_t n, const void *vw, const void *vx) {
    const float *w = QM__CAST(const float *, vw), *x = QM__CAST(const float *, vx);
    float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i;
    int j;
    for (i = 0; i + 8 <= n; i += 8)
        for (j = 0; j < 8; j++) s[j] += w[i + j] * x[i + j];
    for (; i < n; i++) s[0] += w[i] * x[i];
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

static float qm__dot_f16_f32_scalar(int64_t n, const void *vw, const void *vx) {
    const uint16_t *w = QM__CAST(const uint16_t *, vw);
    const float *x = QM__CAST(const float *, vx);
    float s[4] = {0, 0, 0, 0};
    int64_t i;
    int j;
    for (i = 0; i + 4 <= n; i += 4)
        for (j = 0; j < 4; j++) s[j] += qm_fp16_to_fp32(w[i + j]) * x[i + j];
    for (; i < n; i++) s[0] += qm_fp16_to_fp32(w[i]) * x[i];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

static float qm__dot_bf16_f32_scalar(int64_t n, const void *vw, const void *vx) {
    const uint16_t *w = QM__CAST(const uint16_t *, vw);
    const float *x = QM__CAST(const float *, vx);
    float s[4] = {0, 0, 0, 0};
    int64_t i;
    int j;
    for (i = 0; i + 4 <= n; i += 4)
        for (j = 0; j < 4; j++) s[j] += qm_bf16_to_fp32(w[i + j]) * x[i + j];
    for (; i < n; i++) s[0] += qm_bf16_to_fp32(w[i]) * x[i];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

static float qm__dot_q8_0_q8_0_scalar(int64_t n, const void *vw, const void *vx) {
    const qm__block_q8_0 *w = QM__CAST(const qm__block_q8_0 *, vw);
    const qm__block_q8_0 *a = QM__CAST(const qm__block_q8_0 *, vx);
    int64_t i, nb = n / 32;
    float sumf = 0.0f;
    int j;
    for (i = 0; i < nb; i++) {
        int sumi = 0;
        for (j = 0; j < 32; j++) sumi += w[i].qs[j] * a[i].qs[j];
        sumf += QM__CAST(float, sumi) * (qm_fp16_to_fp32(w[i].d) * qm_fp16_to_fp32(a[i].d));
    }
    return sumf;
}

static float qm__dot_q4_0_q8_0_scalar(int64_t n, const void *vw, const void *vx) {
    const qm__block_q4_0 *w = QM__CAST(const qm__block_q4_0 *, vw);
    const qm__block_q8_0 *a = QM__CAST(const qm__block_q8_0 *, vx);
    int64_t i, nb = n / 32;
    float sumf = 0.0f;
    int j;
    for (i = 0; i < nb; i++) {
        int sumi = 0;
        for (j = 0; j < 16; j++) {
            sumi += ((w[i].qs[j] & 0x0f) - 8) * a[i].qs[j];
            sumi += ((w[i].qs[j] >> 4) - 8) * a[i].qs[j + 16];
        }
        sumf += QM__CAST(float, sumi) * (qm_fp16_to_fp32(w[i].d) * qm_fp16_to_fp32(a[i].d));
    }
    return sumf;
}

/* value = d*q + m: sum = d*da*sum(q*a) + m*da*sum(a). */
static float qm__dot_q4_1_q8_0s_scalar(int64_t n, const void *vw, const void *vx) {
    const qm__block_q4_1 *w = QM__CAST(const qm__block_q4_1 *, vw);
    const qm__block_q8_0s *a = QM__CAST(const qm__block_q8_0s *, vx);
    int64_t i, nb = n / 32;
    float sumf = 0.0f;
    int j;
    for (i = 0; i < nb; i++) {
        int sumi = 0;
        for (j = 0; j < 16; j++) {
            sumi += (w[i].qs[j] & 0x0f) * a[i].qs[j];
            sumi += (w[i].qs[j] >> 4) * a[i].qs[j + 16];
        }
        const float da = qm_fp16_to_fp32(a[i].d);
        sumf += (qm_fp16_to_fp32(w[i].d) * da) * QM__CAST(float, sumi) +
                qm_fp16_to_fp32(w[i].m) * (da * QM__CAST(float, a[i].sum));
    }
    return sumf;
}

static float qm__dot_q5_0_q8_0_scalar(int64_t n, const void *vw, const void *vx) {
    const qm__block_q5_0 *w = QM__CAST(const qm__block_q5_0 *, vw);
    const qm__block_q8_0 *a = QM__CAST(const qm__block_q8_0 *, vx);
    int64_t i, nb = n / 32;
    float sumf = 0.0f;
    int j;
    for (i = 0; i < nb; i++) {
        const uint32_t qh = qm__load_u32le(w[i].qh);
        int sumi = 0;
        for (j = 0; j < 16; j++) {
            const int h0 = QM__CAST(int, (qh >> j) & 1u) << 4;
            const int h1 = QM__CAST(int, (qh >> (j + 16)) & 1u) << 4;
            sumi += (((w[i].qs[j] & 0x0f) | h0) - 16) * a[i].qs[j];
            sumi += (((w[i].qs[j] >> 4) | h1) - 16) * a[i].qs[j + 16];
        }
        sumf += QM__CAST(float, sumi) * (qm_fp16_to_fp32(w[i].d) * qm_fp16_to_fp32(a[i].d));
    }
    return sumf;
}

static float qm__dot_q5_1_q8_0s_scalar(int64_t n, const void *vw, const void *vx) {
    const qm__block_q5_1 *w = QM__CAST(const qm__block_q5_1 *, vw);
    const qm__block_q8_0s *a = QM__CAST(const qm__block_q8_0s *, vx);
    int64_t i, nb = n / 32;
    float sumf = 0.0f;
    int j;
    for (i = 0; i < nb; i++) {
        const uint32_t qh = qm__load_u32le(w[i].qh);
        int sumi = 0;
        for (j = 0; j < 16; j++) {
            const int h0 = QM__CAST(int, (qh >> j) & 1u) << 4;
            const int h1 = QM__CAST(int, (qh >> (j + 16)) & 1u) << 4;
            sumi += ((w[i].qs[j] & 0x0f) | h0) * a[i].qs[j];
            sumi += ((w[i].qs[j] >> 4) | h1) * a[i].qs[j + 16];
        }
        const float da = qm_fp16_to_fp32(a[i].d);
        sumf += (qm_fp16_to_fp32(w[i].d) * da) * QM__CAST(float, sumi) +
                qm_fp16_to_fp32(w[i].m) * (da * QM__CAST(float, a[i].sum));
    }
    return sumf;
}

static float qm__dot_iq4_nl_q8_0_scalar(int64_t n, const void *vw, const void *vx) {
    const qm__block_iq4_nl *w = QM__CAST(const qm__block_iq4_nl *, vw);
    const qm__block_q8_0 *a = QM__CAST(const qm__block_q8_0 *, vx);
    int64_t i, nb = n / 32;
    float sumf = 0.0f;
    int j;
    for (i = 0; i < nb; i++) {
        int sumi = 0;
        for (j = 0; j < 16; j++) {
            sumi += qm__kvalues_iq4nl[w[i].qs[j] & 0x0f] * a[i].qs[j];
            sumi += qm__kvalues_iq4nl[w[i].qs[j] >> 4] * a[i].qs[j + 16];
        }
        sumf += QM__CAST(float, sumi) * (qm_fp16_to_fp32(w[i].d) * qm_fp16_to_fp32(a[i].d));
    }
    return sumf;
}

/* Q2_K: 16 groups of 16, x = d*sc*q - dmin*m with 4-bit sc, m. The min term needs only the
   group sums of the activations: sum(m_g * bsum_g). */
static float qm__dot_q2_K_q8_K_scalar(int64_t n, const void *vw, const void *vx) {
    const qm__block_q2_K *w = QM__CAST(const qm__block_q2_K *, vw);
    const qm__block_q8_K *a = QM__CAST(const qm__block_q8_K *, vx);
    int64_t i, nb = n / QM__QK_K;
    float sumf = 0.0f;
    int half, shift, g, l;
    for (i = 0; i < nb; i++) {
        const uint8_t *sc = w[i].scales;
        const int8_t *q8 = a[i].qs;
        int isum = 0, msum = 0;
        for (g = 0; g < 16; g++) msum += a[i].bsums[g] * (sc[g] >> 4);
        for (half = 0; half < 2; half++) {
            const uint8_t *q = w[i].qs + 32 * half;
            for (shift = 0; shift < 8; shift += 2) {
                for (g = 0; g < 2; g++, sc++, q8 += 16) {
                    int s = 0;
                    for (l = 0; l < 16; l++) s += ((q[16 * g + l] >> shift) & 3) * q8[l];
                    isum += (*sc & 0x0f) * s;
                }
            }
        }
        sumf += a[i].d * qm_fp16_to_fp32(w[i].d) * QM__CAST(float, isum) -
                a[i].d * qm_fp16_to_fp32(w[i].dmin) * QM__CAST(float, msum);
    }
    return sumf;
}

/* Q3_K: 16 groups of 16, q = low2 - (hmask bit ? 0 : 4), signed 6-bit group scales. */
static float qm__dot_q3_K_q8_K_scalar(int64_t n, const void *vw, const void *vx) {
    const qm__block_q3_K *w = QM__CAST(const qm__block_q3_K *, vw);
    const qm__block_q8_K *a = QM__CAST(const qm__block_q8_K *, vx);
    int64_t i, nb = n / QM__QK_K;
    float sumf = 0.0f;
    int half, shift, g, l, is;
    for (i = 0; i < nb; i++) {
        const int8_t *q8 = a[i].qs;
        unsigned m = 1;
        int isum = 0;
        is = 0;
        for (half = 0; half < 2; half++) {
            const uint8_t *q = w[i].qs + 32 * half;
            for (shift = 0; shift < 8; shift += 2, m <<= 1) {
                for (g = 0; g < 2; g++, is++, q8 += 16) {
                    int s = 0;
                    for (l = 0; l < 16; l++) {
                        const int v = ((q[16 * g + l] >> shift) & 3) - ((w[i].hmask[16 * g + l] & m) ? 0 : 4);
                        s += v * q8[l];
                    }
                    isum += qm__q3_K_scale(w[i].scales, is) * s;
                }
            }
        }
        sumf += a[i].d * qm_fp16_to_fp32(w[i].d) * QM__CAST(float, isum);
    }
    return sumf;
}

/* Q4_K: 8 sub-blocks of 32, x = d*sc*q - dmin*m with 6-bit sc, m. */
static float qm__dot_q4_K_q8_K_scalar(int64_t n, const void *vw, const void *vx) {
    const qm__block_q4_K *w = QM__CAST(const qm__block_q4_K *, vw);
    const qm__block_q8_K *a = QM__CAST(const qm__block_q8_K *, vx);
    int64_t i, nb = n / QM__QK_K;
    float sumf = 0.0f;
    int c, l, sc, m;
    for (i = 0; i < nb; i++) {
        const uint8_t *q = w[i].qs;
        const int8_t *q8 = a[i].qs;
        int isum = 0, msum = 0;
        for (c = 0; c < 4; c++, q += 32, q8 += 64) {
            int s1 = 0, s2 = 0;
            for (l = 0; l < 32; l++) {
                s1 += (q[l] & 0x0f) * q8[l];
                s2 += (q[l] >> 4) * q8[l + 32];
            }
            qm__k4_scale_min(2 * c, w[i].scales, &sc, &m);
            isum += sc * s1;
            msum += m * (a[i].bsums[4 * c] + a[i].bsums[4 * c + 1]);
            qm__k4_scale_min(2 * c + 1, w[i].scales, &sc, &m);
            isum += sc * s2;
            msum += m * (a[i].bsums[4 * c + 2] + a[i].bsums[4 * c + 3]);
        }
        sumf += a[i].d * qm_fp16_to_fp32(w[i].d) * QM__CAST(float, isum) -
                a[i].d * qm_fp16_to_fp32(w[i].dmin) * QM__CAST(float, msum);
    }
    return sumf;
}

/* Q5_K: Q4_K with a fifth bit from qh (chunk c: bit 2c for the low nibbles, 2c+1 high). */
static float qm__dot_q5_K_q8_K_scalar(int64_t n, const void *vw, const void *vx) {
    const qm__block_q5_K *w = QM__CAST(const qm__block_q5_K *, vw);
    const qm__block_q8_K *a = QM__CAST(const qm__block_q8_K *, vx);
    int64_t i, nb = n / QM__QK_K;
    float sumf = 0.0f;
    int c, l, sc, m;
    for (i = 0; i < nb; i++) {
        const uint8_t *q = w[i].qs, *qh = w[i].qh;
        const int8_t *q8 = a[i].qs;
        int isum = 0, msum = 0;
        for (c = 0; c < 4; c++, q += 32, q8 += 64) {
            const unsigned u1 = 1u << (2 * c), u2 = 2u << (2 * c);
            int s1 = 0, s2 = 0;
            for (l = 0; l < 32; l++) {
                s1 += ((q[l] & 0x0f) + ((qh[l] & u1) ? 16 : 0)) * q8[l];
                s2 += ((q[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) * q8[l + 32];
            }
            qm__k4_scale_min(2 * c, w[i].scales, &sc, &m);
            isum += sc * s1;
            msum += m * (a[i].bsums[4 * c] + a[i].bsums[4 * c + 1]);
            qm__k4_scale_min(2 * c + 1, w[i].scales, &sc, &m);
            isum += sc * s2;
            msum += m * (a[i].bsums[4 * c + 2] + a[i].bsums[4 * c + 3]);
        }
        sumf += a[i].d * qm_fp16_to_fp32(w[i].d) * QM__CAST(float, isum) -
                a[i].d * qm_fp16_to_fp32(w[i].dmin) * QM__CAST(float, msum);
    }
    return sumf;
}

/* Q6_K: 16 groups of 16, 6-bit q - 32, int8 group scales. The levels are unpacked first
   (layout: see qm__dequant_q6_K), then each group of 16 is summed. */
static float qm__dot_q6_K_q8_K_scalar(int64_t n, const void *vw, const void *vx) {
    const qm__block_q6_K *w = QM__CAST(const qm__block_q6_K *, vw);
    const qm__block_q8_K *a = QM__CAST(const qm__block_q8_K *, vx);
    int64_t i, nb = n / QM__QK_K;
    float sumf = 0.0f;
    int8_t L[QM__QK_K];
    int half, g, l;
    for (i = 0; i < nb; i++) {
        int isum = 0;
        for (half = 0; half < 2; half++) {
            const uint8_t *ql = w[i].ql + 64 * half, *qh = w[i].qh + 32 * half;
            int8_t *Lh = L + 128 * half;
            for (l = 0; l < 32; l++) {
                Lh[l] = QM__CAST(int8_t, ((ql[l] & 0x0f) | ((qh[l] & 3) << 4)) - 32);
                Lh[l + 32] = QM__CAST(int8_t, ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32);
                Lh[l + 64] = QM__CAST(int8_t, ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                Lh[l + 96] = QM__CAST(int8_t, ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
            }
        }
        for (g = 0; g < 16; g++) {
            int s = 0;
            for (l = 16 * g; l < 16 * g + 16; l++) s += L[l] * a[i].qs[l];
            isum += w[i].scales[g] * s;
        }
        sumf += a[i].d * qm_fp16_to_fp32(w[i].d) * QM__CAST(float, isum);
    }
    return sumf;
}

static float qm__dot_iq4_xs_q8_K_scalar(int64_t n, const void *vw, const void *vx) {
    const qm__block_iq4_xs *w = QM__CAST(const qm__block_iq4_xs *, vw);
    const qm__block_q8_K *a = QM__CAST(const qm__block_q8_K *, vx);
    int64_t i, nb = n / QM__QK_K;
    float sumf = 0.0f;
    int ib, j;
    for (i = 0; i < nb; i++) {
        const uint8_t *qs = w[i].qs;
        const int8_t *q8 = a[i].qs;
        int isum = 0;
        for (ib = 0; ib < 8; ib++, qs += 16, q8 += 32) {
            const int ls = ((w[i].scales_l[ib / 2] >> (4 * (ib % 2))) & 0x0f) |
                           (((w[i].scales_h >> (2 * ib)) & 3) << 4);
            int s = 0;
            for (j = 0; j < 16; j++) {
                s += qm__kvalues_iq4nl[qs[j] & 0x0f] * q8[j];
                s += qm__kvalues_iq4nl[qs[j] >> 4] * q8[j + 16];
            }
            isum += (ls - 32) * s;
        }
        sumf += a[i].d * qm_fp16_to_fp32(w[i].d) * QM__CAST(float, isum);
    }
    return sumf;
}

typedef float (*qm__vec_dot_fn)(int64_t n, const void *w, const void *qx);

static qm__vec_dot_fn qm__vec_dot_scalar_for(int wtype) {
    switch (wtype) {
    case QM_TYPE_F32: return qm__dot_f32_f32_scalar;
    case QM_TYPE_F16: return qm__dot_f16_f32_scalar;
    case QM_TYPE_BF16: return qm__dot_bf16_f32_scalar;
    case QM_TYPE_Q8_0: return qm__dot_q8_0_q8_0_scalar;
    case QM_TYPE_Q4_0: return qm__dot_q4_0_q8_0_scalar;
    case QM_TYPE_Q4_1: return qm__dot_q4_1_q8_0s_scalar;
    case QM_TYPE_Q5_0: return qm__dot_q5_0_q8_0_scalar;
    case QM_TYPE_Q5_1: return qm__dot_q5_1_q8_0s_scalar;
    case QM_TYPE_IQ4_NL: return qm__dot_iq4_nl_q8_0_scalar;
    case QM_TYPE_Q2_K: return qm__dot_q2_K_q8_K_scalar;
    case QM_TYPE_Q3_K: return qm__dot_q3_K_q8_K_scalar;
    case QM_TYPE_Q4_K: return qm__dot_q4_K_q8_K_scalar;
    case QM_TYPE_Q5_K: return qm__dot_q5_K_q8_K_scalar;
    case QM_TYPE_Q6_K: return qm__dot_q6_K_q8_K_scalar;
    case QM_TYPE_IQ4_XS: return qm__dot_iq4_xs_q8_K_scalar;
    default: return NULL;
    }
}

/* The plain C result (0 for an unsupported type). */
static QM__MAYBE_UNUSED float qm__vec_dot_scalar(int wtype, int64_t n, const void *wrow, const void *qx) {
    qm__vec_dot_fn f = qm__vec_dot_scalar_for(wtype);
    return f ? f(n, wrow, qx) : 0.0f;
}

/* Q4_K/Q5_K: the 8 scales (out[0..7]) and 8 mins (out[8..15]) from the 12 packed bytes,
   four at a time in 32-bit words (little-endian). */
static QM__MAYBE_UNUSED void qm__k4_unpack(const uint8_t *s, uint8_t *out) {
    uint32_t u[3], r[4];
    memcpy(u, s, 12);
    r[0] = u[0] & 0x3f3f3f3fu;                                        /* scales 0-3 */
    r[1] = (u[2] & 0x0f0f0f0fu) | (((u[0] >> 6) & 0x03030303u) << 4); /* scales 4-7 */
    r[2] = u[1] & 0x3f3f3f3fu;                                        /* mins 0-3 */
    r[3] = ((u[2] >> 4) & 0x0f0f0f0fu) | (((u[1] >> 6) & 0x03030303u) << 4); /* mins 4-7 */
    memcpy(out, r, 16);
}

/* ====================================================================================== */
/*  x86: AVX2 + FMA + F16C (+ VNNI, + AVX-512)                                              */
/* ====================================================================================== */
#if defined(QM__X86)

#define QM__LD256(p) _mm256_loadu_si256(QM__PTR(const __m256i *, p))
#define QM__LD128(p) _mm_loadu_si128(QM__PTR(const __m128i *, p))

static QM__INLINE float qm__hsum_ps256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* acc + sums of 4 adjacent u8*s8 products (no saturation for the ranges used here:
   |u*s| pairs stay below 2^15 wherever the maddubs fallback is used). */
static QM__INLINE __m256i qm__dpbusd(__m256i acc, __m256i u, __m256i s) {
#if QM__VNNI == 1
    return _mm256_dpbusd_epi32(acc, u, s);
#elif QM__VNNI == 2
    return _mm256_dpbusd_avx_epi32(acc, u, s);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
#endif
}

/* acc + sums of 2 adjacent int16 products. */
static QM__INLINE __m256i qm__dpwssd(__m256i acc, __m256i a, __m256i b) {
#if QM__VNNI == 1
    return _mm256_dpwssd_epi32(acc, a, b);
#elif QM__VNNI == 2
    return _mm256_dpwssd_avx_epi32(acc, a, b);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
#endif
}

/* Byte shuffles for int16 scales of 16-element groups: with 8 int16 scales in each 128-bit
   lane, row k puts scale 2k in all 8 int16 of lane 0 and scale 2k+1 in those of lane 1.
   (maddubs turns 32 inputs into 16 int16: lane 0 holds inputs 0-15, lane 1 inputs 16-31.) */
static const uint8_t qm__shuf_pairs[4][32] = {
    {0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3},
    {4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7},
    {8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11},
    {12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15}};

static float qm__dot_f32_f32_avx2(int64_t n, const void *vw, const void *vx) {
    const float *w = QM__CAST(const float *, vw), *x = QM__CAST(const float *, vx);
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i;
    float sum;
    for (i = 0; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(x + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 16), _mm256_loadu_ps(x + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 24), _mm256_loadu_ps(x + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), s0);
    sum = qm__hsum_ps256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++) sum += w[i] * x[i];
    return sum;
}

static float qm__dot_f16_f32_avx2(int64_t n, const void *vw, const void *vx) {
    const uint16_t *w = QM__CAST(const uint16_t *, vw);
    const float *x = QM__CAST(const float *, vx);
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i;
    float sum;
    for (i = 0; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_cvtph_ps(QM__LD128(w + i)), _mm256_loadu_ps(x + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_cvtph_ps(QM__LD128(w + i + 8)), _mm256_loadu_ps(x + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_cvtph_ps(QM__LD128(w + i + 16)), _mm256_loadu_ps(x + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_cvtph_ps(QM__LD128(w + i + 24)), _mm256_loadu_ps(x + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_cvtph_ps(QM__LD128(w + i)), _mm256_loadu_ps(x + i), s0);
    sum = qm__hsum_ps256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++) sum += qm__h2f(w[i]) * x[i];
    return sum;
}

static QM__INLINE __m256 qm__bf16x8_to_ps(const uint16_t *p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(QM__LD128(p)), 16));
}

static float qm__dot_bf16_f32_avx2(int64_t n, const void *vw, const void *vx) {
    const uint16_t *w = QM__CAST(const uint16_t *, vw);
    const float *x = QM__CAST(const float *, vx);
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i;
    float sum;
    for (i = 0; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(qm__bf16x8_to_ps(w + i), _mm256_loadu_ps(x + i), s0);
        s1 = _mm256_fmadd_ps(qm__bf16x8_to_ps(w + i + 8), _mm256_loadu_ps(x + i + 8), s1);
        s2 = _mm256_fmadd_ps(qm__bf16x8_to_ps(w + i + 16), _mm256_loadu_ps(x + i + 16), s2);
        s3 = _mm256_fmadd_ps(qm__bf16x8_to_ps(w + i + 24), _mm256_loadu_ps(x + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(qm__bf16x8_to_ps(w + i), _mm256_loadu_ps(x + i), s0);
    sum = qm__hsum_ps256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++) sum += qm_bf16_to_fp32(w[i]) * x[i];
    return sum;
}

/* Q8_0 x Q8_0: |w| (unsigned) times a with the sign of w. */
static float qm__dot_q8_0_q8_0_avx2(int64_t n, const void *vw, const void *vx) {
    const qm__block_q8_0 *w = QM__CAST(const qm__block_q8_0 *, vw);
    const qm__block_q8_0 *a = QM__CAST(const qm__block_q8_0 *, vx);
    int64_t i, nb = n / 32;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    const __m256i zero = _mm256_setzero_si256();
    for (i = 0; i + 2 <= nb; i += 2) {
        const __m256i w0 = QM__LD256(w[i].qs), w1 = QM__LD256(w[i + 1].qs);
        const __m256i p0 = qm__dpbusd(zero, _mm256_sign_epi8(w0, w0), _mm256_sign_epi8(QM__LD256(a[i].qs), w0));
        const __m256i p1 = qm__dpbusd(zero, _mm256_sign_epi8(w1, w1), _mm256_sign_epi8(QM__LD256(a[i + 1].qs), w1));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(qm__h2f(w[i].d) * qm__h2f(a[i].d)), _mm256_cvtepi32_ps(p0), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(qm__h2f(w[i + 1].d) * qm__h2f(a[i + 1].d)), _mm256_cvtepi32_ps(p1), acc1);
    }
    for (; i < nb; i++) {
        const __m256i w0 = QM__LD256(w[i].qs);
        const __m256i p0 = qm__dpbusd(zero, _mm256_sign_epi8(w0, w0), _mm256_sign_epi8(QM__LD256(a[i].qs), w0));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(qm__h2f(w[i].d) * qm__h2f(a[i].d)), _mm256_cvtepi32_ps(p0), acc0);
    }
    return qm__hsum_ps256(_mm256_add_ps(acc0, acc1));
}

/* Q4_K: per 64 elements, low nibbles x a[0..31] and high nibbles x a[32..63] by maddubs
   (u8 x s8 -> s16 pairs), then times the sub-block scale into int32 (madd / dpwssd). */
static float qm__dot_q4_K_q8_K_avx2(int64_t n, const void *vw, const void *vx) {
    const qm__block_q4_K *w = QM__CAST(const qm__block_q4_K *, vw);
    const qm__block_q8_K *a = QM__CAST(const qm__block_q8_K *, vx);
    int64_t i, nb = n / QM__QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    int c;
    for (i = 0; i < nb; i++) {
        uint8_t sm[16];
        const float d = a[i].d * qm__h2f(w[i].d), dmin = a[i].d * qm__h2f(w[i].dmin);
        const uint8_t *q = w[i].qs;
        const int8_t *q8 = a[i].qs;
        __m256i s0 = _mm256_setzero_si256(), s1 = s0, mprod;
        __m128i smv;
        qm__k4_unpack(w[i].scales, sm);
        smv = QM__LD128(sm);
        /* mins: m_j paired with bsums 2j, 2j+1 */
        mprod = _mm256_madd_epi16(QM__LD256(a[i].bsums), _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(smv, smv)));
        accm = _mm256_fmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(mprod), accm);
        for (c = 0; c < 4; c++, q += 32, q8 += 64) {
            const __m256i qb = QM__LD256(q);
            const __m256i lo = _mm256_and_si256(qb, m4), hi = _mm256_and_si256(_mm256_srli_epi16(qb, 4), m4);
            const __m256i p0 = _mm256_maddubs_epi16(lo, QM__LD256(q8));
            const __m256i p1 = _mm256_maddubs_epi16(hi, QM__LD256(q8 + 32));
            s0 = qm__dpwssd(s0, p0, _mm256_set1_epi16(sm[2 * c]));
            s1 = qm__dpwssd(s1, p1, _mm256_set1_epi16(sm[2 * c + 1]));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(_mm256_add_epi32(s0, s1)), acc);
    }
    return qm__hsum_ps256(acc) - qm__hsum_ps256(accm);
}

/* Q5_K: as Q4_K, plus 16 where the chunk's bit of qh is set. */
static float qm__dot_q5_K_q8_K_avx2(int64_t n, const void *vw, const void *vx) {
    const qm__block_q5_K *w = QM__CAST(const qm__block_q5_K *, vw);
    const qm__block_q8_K *a = QM__CAST(const qm__block_q8_K *, vx);
    int64_t i, nb = n / QM__QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0f), b4 = _mm256_set1_epi8(0x10);
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    int c;
    for (i = 0; i < nb; i++) {
        uint8_t sm[16];
        const float d = a[i].d * qm__h2f(w[i].d), dmin = a[i].d * qm__h2f(w[i].dmin);
        const uint8_t *q = w[i].qs;
        const int8_t *q8 = a[i].qs;
        __m256i s0 = _mm256_setzero_si256(), s1 = s0, mprod, hb = QM__LD256(w[i].qh);
        __m128i smv;
        qm__k4_unpack(w[i].scales, sm);
        smv = QM__LD128(sm);
        mprod = _mm256_madd_epi16(QM__LD256(a[i].bsums), _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(smv, smv)));
        accm = _mm256_fmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(mprod), accm);
        for (c = 0; c < 4; c++, q += 32, q8 += 64, hb = _mm256_srli_epi16(hb, 2)) {
            /* bits 0 and 1 of each byte of hb are this chunk's: move them to bit 4 */
            const __m256i qb = QM__LD256(q);
            const __m256i lo = _mm256_or_si256(_mm256_and_si256(qb, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 4), b4));
            const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qb, 4), m4),
                                               _mm256_and_si256(_mm256_slli_epi16(hb, 3), b4));
            const __m256i p0 = _mm256_maddubs_epi16(lo, QM__LD256(q8));
            const __m256i p1 = _mm256_maddubs_epi16(hi, QM__LD256(q8 + 32));
            s0 = qm__dpwssd(s0, p0, _mm256_set1_epi16(sm[2 * c]));
            s1 = qm__dpwssd(s1, p1, _mm256_set1_epi16(sm[2 * c + 1]));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(_mm256_add_epi32(s0, s1)), acc);
    }
    return qm__hsum_ps256(acc) - qm__hsum_ps256(accm);
}

/* Q6_K: unsigned 6-bit q (0..63) by maddubs, group scales by madd; the -32 offset is
   32 * sum(scale_g * bsum_g), subtracted once per super-block. */
static float qm__dot_q6_K_q8_K_avx2(int64_t n, const void *vw, const void *vx) {
    const qm__block_q6_K *w = QM__CAST(const qm__block_q6_K *, vw);
    const qm__block_q8_K *a = QM__CAST(const qm__block_q8_K *, vx);
    int64_t i, nb = n / QM__QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0f), m2 = _mm256_set1_epi8(0x03);
    const __m256i sh0 = QM__LD256(qm__shuf_pairs[0]), sh1 = QM__LD256(qm__shuf_pairs[1]);
    const __m256i sh2 = QM__LD256(qm__shuf_pairs[2]), sh3 = QM__LD256(qm__shuf_pairs[3]);
    __m256 acc = _mm256_setzero_ps();
    int half;
    for (i = 0; i < nb; i++) {
        const float d = a[i].d * qm__h2f(w[i].d);
        const __m256i sc16 = _mm256_cvtepi8_epi16(QM__LD128(w[i].scales));
        const __m256i off = _mm256_slli_epi32(_mm256_madd_epi16(QM__LD256(a[i].bsums), sc16), 5);
        __m256i s0 = _mm256_setzero_si256(), s1 = s0;
        for (half = 0; half < 2; half++) {
            const uint8_t *ql = w[i].ql + 64 * half, *qh = w[i].qh + 32 * half;
            const int8_t *q8 = a[i].qs + 128 * half;
            const __m256i scv = half ? _mm256_permute2x128_si256(sc16, sc16, 0x11)
                                     : _mm256_permute2x128_si256(sc16, sc16, 0x00);
            const __m256i l0 = QM__LD256(ql), l1 = QM__LD256(ql + 32), h = QM__LD256(qh);
            const __m256i q1 = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(h, m2), 4));
            const __m256i q2 = _mm256_or_si256(_mm256_and_si256(l1, m4),
                                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), m2), 4));
            const __m256i q3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), m2), 4));
            const __m256i q4 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), m2), 4));
            s0 = qm__dpwssd(s0, _mm256_maddubs_epi16(q1, QM__LD256(q8)), _mm256_shuffle_epi8(scv, sh0));
            s1 = qm__dpwssd(s1, _mm256_maddubs_epi16(q2, QM__LD256(q8 + 32)), _mm256_shuffle_epi8(scv, sh1));
            s0 = qm__dpwssd(s0, _mm256_maddubs_epi16(q3, QM__LD256(q8 + 64)), _mm256_shuffle_epi8(scv, sh2));
            s1 = qm__dpwssd(s1, _mm256_maddubs_epi16(q4, QM__LD256(q8 + 96)), _mm256_shuffle_epi8(scv, sh3));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_add_epi32(s0, s1), off)), acc);
    }
    return qm__hsum_ps256(acc);
}

/* ---- the other block types (AVX2) ------------------------------------------------------ */

/* sum of u*s over each 4 bytes: u unsigned, s signed */
#define QM__USDOT(u, s) qm__dpbusd(_mm256_setzero_si256(), (u), (s))

/* 16 bytes of nibbles -> 32 bytes: the low nibbles (elements 0-15), then the high (16-31) */
static QM__INLINE __m256i qm__nibbles32(const uint8_t *p) {
    const __m128i b = QM__LD128(p);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(b, 4), b), _mm256_set1_epi8(0x0f));
}

/* the 32 fifth bits of Q5_0/Q5_1 (bit j of the little-endian u32 for element j) as 0 or 16 */
static QM__INLINE __m256i qm__bits32_x16(const uint8_t *qh) {
    const __m256i sel = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                         2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x(QM__CAST(long long, 0x8040201008040201ull));
    uint32_t u;
    __m256i v;
    memcpy(&u, qh, 4);
    v = _mm256_shuffle_epi8(_mm256_set1_epi32(QM__CAST(int, u)), sel); /* byte k = byte k/8 of qh */
    return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit), _mm256_set1_epi8(0x10));
}

/* Q4_0: sum((q - 8) * a) = sum(q * a) - 8 * sum(a), both u8 x s8 dot products */
static float qm__dot_q4_0_q8_0_avx2(int64_t n, const void *vw, const void *vx) {
    const qm__block_q4_0 *w = QM__CAST(const qm__block_q4_0 *, vw);
    const qm__block_q8_0 *a = QM__CAST(const qm__block_q8_0 *, vx);
    const __m256i eight = _mm256_set1_epi8(8);
    int64_t i, nb = n / 32;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    for (i = 0; i + 2 <= nb; i += 2) {
        const __m256i x0 = QM__LD256(a[i].qs), x1 = QM__LD256(a[i + 1].qs);
        const __m256i p0 = _mm256_sub_epi32(QM__USDOT(qm__nibbles32(w[i].qs), x0), QM__USDOT(eight, x0));
        const __m256i p1 = _mm256_sub_epi32(QM__USDOT(qm__nibbles32(w[i + 1].qs), x1), QM__USDOT(eight, x1));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(qm__h2f(w[i].d) * qm__h2f(a[i].d)), _mm256_cvtepi32_ps(p0), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(qm__h2f(w[i + 1].d) * qm__h2f(a[i + 1].d)), _mm256_cvtepi32_ps(p1), acc1);
    }
    for (; i < nb; i++) {
        const __m256i x0 = QM__LD256(a[i].qs);
        const __m256i p0 = _mm256_sub_epi32(QM__USDOT(qm__nibbles32(w[i].qs), x0), QM__USDOT(eight, x0));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(qm__h2f(w[i].d) * qm__h2f(a[i].d)), _mm256_cvtepi32_ps(p0), acc0);
    }
    return qm__hsum_ps256(_mm256_add_ps(acc0, acc1));
}

/* Q4_1: d*da*sum(q*a) + m*da*sum(a), sum(a) stored with the activations */
static float qm__dot_q4_1_q8_0s_avx2(int64_t n, const void *vw, const void *vx) {
    const qm__block_q4_1 *w = QM__CAST(const qm__block_q4_1 *, vw);
    const qm__block_q8_0s *a = QM__CAST(const qm__block_q8_0s *, vx);
    int64_t i, nb = n / 32;
    __m256 acc = _mm256_setzero_ps();
    float summ = 0.0f;
    for (i = 0; i < nb; i++) {
        const float da = qm__h2f(a[i].d);
        const __m256i p = QM__USDOT(qm__nibbles32(w[i].qs), QM__LD256(a[i].qs));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(qm__h2f(w[i].d) * da), _mm256_cvtepi32_ps(p), acc);
        summ += qm__h2f(w[i].m) * (da * QM__CAST(float, a[i].sum));
    }
    return qm__hsum_ps256(acc) + summ;
}

static float qm__dot_q5_0_q8_0_avx2(int64_t n, const void *vw, const void *vx) {
    const qm__block_q5_0 *w = QM__CAST(const qm__block_q5_0 *, vw);
    const qm__block_q8_0 *a = QM__CAST(const qm__block_q8_0 *, vx);
    const __m256i sixteen = _mm256_set1_epi8(16);
    int64_t i, nb = n / 32;
    __m256 acc = _mm256_setzero_ps();
    for (i = 0; i < nb; i++) {
        const __m256i x = QM__LD256(a[i].qs);
        const __m256i q = _mm256_or_si256(qm__nibbles32(w[i].qs), qm__bits32_x16(w[i].qh));
        const __m256i p = _mm256_sub_epi32(QM__USDOT(q, x), QM__USDOT(sixteen, x));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(qm__h2f(w[i].d) * qm__h2f(a[i].d)), _mm256_cvtepi32_ps(p), acc);
    }
    return qm__hsum_ps256(acc);
}

static float qm__dot_q5_1_q8_0s_avx2(int64_t n, const void *vw, const void *vx) {
    const qm__block_q5_1 *w = QM__CAST(const qm__block_q5_1 *, vw);
    const qm__block_q8_0s *a = QM__CAST(const qm__block_q8_0s *, vx);
    int64_t i, nb = n / 32;
    __m256 acc = _mm256_setzero_ps();
    float summ = 0.0f;
    for (i = 0; i < nb; i++) {
        const float da = qm__h2f(a[i].d);
        const __m256i q = _mm256_or_si256(qm__nibbles32(w[i].qs), qm__bits32_x16(w[i].qh));
        const __m256i p = QM__USDOT(q, QM__LD256(a[i].qs));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(qm__h2f(w[i].d) * da), _mm256_cvtepi32_ps(p), acc);
        summ += qm__h2f(w[i].m) * (da * QM__CAST(float, a[i].sum));
    }
    return qm__hsum_ps256(acc) + summ;
}

/* the IQ4 levels of 32 nibbles (signed int8) */
static QM__INLINE __m256i qm__iq4_levels(const uint8_t *qs) {
    const __m256i kv = _mm256_broadcastsi128_si256(QM__LD128(qm__kvalues_iq4nl));
    return _mm256_shuffle_epi8(kv, qm__nibbles32(qs));
}

static float qm__dot_iq4_nl_q8_0_avx2(int64_t n, const void *vw, const void *vx) {
    const qm__block_iq4_nl *w = QM__CAST(const qm__block_iq4_nl *, vw);
    const qm__block_q8_0 *a = QM__CAST(const qm__block_q8_0 *, vx);
    int64_t i, nb = n / 32;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    for (i = 0; i + 2 <= nb; i += 2) {
        const __m256i v0 = qm__iq4_levels(w[i].qs), v1 = qm__iq4_levels(w[i + 1].qs);
        const __m256i p0 = QM__USDOT(_mm256_sign_epi8(v0, v0), _mm256_sign_epi8(QM__LD256(a[i].qs), v0));
        const __m256i p1 = QM__USDOT(_mm256_sign_epi8(v1, v1), _mm256_sign_epi8(QM__LD256(a[i + 1].qs), v1));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(qm__h2f(w[i].d) * qm__h2f(a[i].d)), _mm256_cvtepi32_ps(p0), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(qm__h2f(w[i + 1].d) * qm__h2f(a[i + 1].d)), _mm256_cvtepi32_ps(p1), acc1);
    }
    for (; i < nb; i++) {
        const __m256i v0 = qm__iq4_levels(w[i].qs);
        const __m256i p0 = QM__USDOT(_mm256_sign_epi8(v0, v0), _mm256_sign_epi8(QM__LD256(a[i].qs), v0));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(qm__h2f(w[i].d) * qm__h2f(a[i].d)), _mm256_cvtepi32_ps(p0), acc0);
    }
    return qm__hsum_ps256(_mm256_add_ps(acc0, acc1));
}

/* IQ4_XS: |level| x (a with the level's sign) by maddubs (pairs stay below 2^15), then
   times the sub-block scale ls - 32 into int32. */
static float qm__dot_iq4_xs_q8_K_avx2(int64_t n, const void *vw, const void *vx) {
    const qm__block_iq4_xs *w = QM__CAST(const qm__block_iq4_xs *, vw);
    const qm__block_q8_K *a = QM__CAST(const qm__block_q8_K *, vx);
    int64_t i, nb = n / QM__QK_K;
    __m256 acc = _mm256_setzero_ps();
    int ib;
    for (i = 0; i < nb; i++) {
        __m256i s0 = _mm256_setzero_si256(), s1 = s0;
        for (ib = 0; ib < 8; ib += 2) {
            const int ls0 = ((w[i].scales_l[ib / 2] & 0x0f) | (((w[i].scales_h >> (2 * ib)) & 3) << 4)) - 32;
            const int ls1 = ((w[i].scales_l[ib / 2] >> 4) | (((w[i].scales_h >> (2 * ib + 2)) & 3) << 4)) - 32;
            const __m256i v0 = qm__iq4_levels(w[i].qs + 16 * ib), v1 = qm__iq4_levels(w[i].qs + 16 * ib + 16);
            const __m256i p0 = _mm256_maddubs_epi16(_mm256_sign_epi8(v0, v0), _mm256_sign_epi8(QM__LD256(a[i].qs + 32 * ib), v0));
            const __m256i p1 = _mm256_maddubs_epi16(_mm256_sign_epi8(v1, v1), _mm256_sign_epi8(QM__LD256(a[i].qs + 32 * ib + 32), v1));
            s0 = qm__dpwssd(s0, p0, _mm256_set1_epi16(QM__CAST(short, ls0)));
            s1 = qm__dpwssd(s1, p1, _mm256_set1_epi16(QM__CAST(short, ls1)));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(a[i].d * qm__h2f(w[i].d)), _mm256_cvtepi32_ps(_mm256_add_epi32(s0, s1)), acc);
    }
    return qm__hsum_ps256(acc);
}

/* For 16 int16 scales (one per group of 16 elements), pair k = 0..7: scale 2k for the
   first 16 elements of a 32-element step (int16 lanes 0-7 of a maddubs result), 2k+1 for
   the next 16 (lanes 8-15). */
static QM__INLINE __m256i qm__pair_scales(__m256i sc16, int k) {
    const __m256i half = (k < 4) ? _mm256_permute2x128_si256(sc16, sc16, 0x00) : _mm256_permute2x128_si256(sc16, sc16, 0x11);
    return _mm256_shuffle_epi8(half, QM__LD256(qm__shuf_pairs[k & 3]));
}

/* Q2_K: q (0..3) x a by maddubs, 4-bit group scales by madd, mins by the bsums. For half h
   and shift step k the 32 bytes (q >> 2k) & 3 are elements 128h + 32k .. +31: groups
   8h + 2k and 8h + 2k + 1. */
static float qm__dot_q2_K_q8_K_avx2(int64_t n, const void *vw, const void *vx) {
    const qm__block_q2_K *w = QM__CAST(const qm__block_q2_K *, vw);
    const qm__block_q8_K *a = QM__CAST(const qm__block_q8_K *, vx);
    int64_t i, nb = n / QM__QK_K;
    const __m256i m2 = _mm256_set1_epi8(3);
    const __m128i m4 = _mm_set1_epi8(0x0f);
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    int h, k;
    for (i = 0; i < nb; i++) {
        const __m128i sb = QM__LD128(w[i].scales);
        const __m256i sc16 = _mm256_cvtepu8_epi16(_mm_and_si128(sb, m4));
        const __m256i mn16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sb, 4), m4));
        __m256i s0 = _mm256_setzero_si256(), s1 = s0;
        accm = _mm256_fmadd_ps(_mm256_set1_ps(a[i].d * qm__h2f(w[i].dmin)),
                               _mm256_cvtepi32_ps(_mm256_madd_epi16(QM__LD256(a[i].bsums), mn16)), accm);
        for (h = 0; h < 2; h++) {
            const __m256i q = QM__LD256(w[i].qs + 32 * h);
            const int8_t *q8 = a[i].qs + 128 * h;
            for (k = 0; k < 4; k += 2) {
                const __m256i v0 = _mm256_and_si256(_mm256_srli_epi16(q, 2 * k), m2);
                const __m256i v1 = _mm256_and_si256(_mm256_srli_epi16(q, 2 * k + 2), m2);
                s0 = qm__dpwssd(s0, _mm256_maddubs_epi16(v0, QM__LD256(q8 + 32 * k)), qm__pair_scales(sc16, 4 * h + k));
                s1 = qm__dpwssd(s1, _mm256_maddubs_epi16(v1, QM__LD256(q8 + 32 * k + 32)), qm__pair_scales(sc16, 4 * h + k + 1));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(a[i].d * qm__h2f(w[i].d)), _mm256_cvtepi32_ps(_mm256_add_epi32(s0, s1)), acc);
    }
    return qm__hsum_ps256(acc) - qm__hsum_ps256(accm);
}

/* Q3_K: v = low2 | hbit << 2 (0..7) = q + 4, so sum(q*a) = sum(v*a) - 4*sum(a): the second
   term from the bsums. Group scales are 6 bits - 32 (unpacked four at a time). */
static float qm__dot_q3_K_q8_K_avx2(int64_t n, const void *vw, const void *vx) {
    const qm__block_q3_K *w = QM__CAST(const qm__block_q3_K *, vw);
    const qm__block_q8_K *a = QM__CAST(const qm__block_q8_K *, vx);
    int64_t i, nb = n / QM__QK_K;
    const __m256i m2 = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
    __m256 acc = _mm256_setzero_ps();
    int h, k;
    for (i = 0; i < nb; i++) {
        uint32_t u[3], r[4];
        __m256i sc16, off, s0 = _mm256_setzero_si256(), s1 = s0, hm = QM__LD256(w[i].hmask);
        memcpy(u, w[i].scales, 12);
        /* scale j: low 4 bits from byte j (j < 8) or the high nibble of byte j-8; bits 4-5
           from byte 8 + j%4 at bit 2*(j/4) */
        r[0] = (u[0] & 0x0f0f0f0fu) | ((u[2] & 0x03030303u) << 4);
        r[1] = (u[1] & 0x0f0f0f0fu) | (((u[2] >> 2) & 0x03030303u) << 4);
        r[2] = ((u[0] >> 4) & 0x0f0f0f0fu) | (((u[2] >> 4) & 0x03030303u) << 4);
        r[3] = ((u[1] >> 4) & 0x0f0f0f0fu) | (((u[2] >> 6) & 0x03030303u) << 4);
        sc16 = _mm256_sub_epi16(_mm256_cvtepu8_epi16(_mm_setr_epi32(QM__CAST(int, r[0]), QM__CAST(int, r[1]),
                                                                    QM__CAST(int, r[2]), QM__CAST(int, r[3]))),
                                _mm256_set1_epi16(32));
        off = _mm256_slli_epi32(_mm256_madd_epi16(QM__LD256(a[i].bsums), sc16), 2);
        for (h = 0; h < 2; h++) {
            const __m256i q = QM__LD256(w[i].qs + 32 * h);
            const int8_t *q8 = a[i].qs + 128 * h;
            for (k = 0; k < 4; k += 2, hm = _mm256_srli_epi16(hm, 2)) {
                /* bit 0 of hm: step 4h + k; bit 1: step 4h + k + 1 */
                const __m256i v0 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 2 * k), m2),
                                                   _mm256_slli_epi16(_mm256_and_si256(hm, one), 2));
                const __m256i v1 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 2 * k + 2), m2),
                                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hm, 1), one), 2));
                s0 = qm__dpwssd(s0, _mm256_maddubs_epi16(v0, QM__LD256(q8 + 32 * k)), qm__pair_scales(sc16, 4 * h + k));
                s1 = qm__dpwssd(s1, _mm256_maddubs_epi16(v1, QM__LD256(q8 + 32 * k + 32)), qm__pair_scales(sc16, 4 * h + k + 1));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(a[i].d * qm__h2f(w[i].d)),
                              _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_add_epi32(s0, s1), off)), acc);
    }
    return qm__hsum_ps256(acc);
}


/* ---- 4 activation rows at once (prefill): weights decoded once, used 4 times ---------- */

static QM__INLINE const qm__block_q8_K *qm__act_row_k(const void *vx, size_t stride, int t) {
    return QM__PTR(const qm__block_q8_K *, QM__CAST(const uint8_t *, vx) + stride * QM__CAST(size_t, t));
}

static void qm__dot4_q4_K_q8_K_avx2(int64_t n, const void *vw, const void *vx, size_t qx_stride, float *out) {
    const qm__block_q4_K *w = QM__CAST(const qm__block_q4_K *, vw);
    const qm__block_q8_K *a[4];
    int64_t i, nb = n / QM__QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m256 acc[4], accm[4];
    int t, c;
    for (t = 0; t < 4; t++) {
        a[t] = qm__act_row_k(vx, qx_stride, t);
        acc[t] = accm[t] = _mm256_setzero_ps();
    }
    for (i = 0; i < nb; i++) {
        uint8_t sm[16];
        const float dw = qm__h2f(w[i].d), dminw = qm__h2f(w[i].dmin);
        const uint8_t *q = w[i].qs;
        __m256i s[4], mins16;
        __m128i smv;
        qm__k4_unpack(w[i].scales, sm);
        smv = QM__LD128(sm);
        mins16 = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(smv, smv));
        for (t = 0; t < 4; t++) {
            s[t] = _mm256_setzero_si256();
            accm[t] = _mm256_fmadd_ps(_mm256_set1_ps(a[t][i].d * dminw),
                                      _mm256_cvtepi32_ps(_mm256_madd_epi16(QM__LD256(a[t][i].bsums), mins16)), accm[t]);
        }
        for (c = 0; c < 4; c++, q += 32) {
            const __m256i qb = QM__LD256(q);
            const __m256i lo = _mm256_and_si256(qb, m4), hi = _mm256_and_si256(_mm256_srli_epi16(qb, 4), m4);
            const __m256i sc0 = _mm256_set1_epi16(sm[2 * c]), sc1 = _mm256_set1_epi16(sm[2 * c + 1]);
            for (t = 0; t < 4; t++) {
                const int8_t *q8 = a[t][i].qs + 64 * c;
                s[t] = qm__dpwssd(s[t], _mm256_maddubs_epi16(lo, QM__LD256(q8)), sc0);
                s[t] = qm__dpwssd(s[t], _mm256_maddubs_epi16(hi, QM__LD256(q8 + 32)), sc1);
            }
        }
        for (t = 0; t < 4; t++) acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(a[t][i].d * dw), _mm256_cvtepi32_ps(s[t]), acc[t]);
    }
    for (t = 0; t < 4; t++) out[t] = qm__hsum_ps256(acc[t]) - qm__hsum_ps256(accm[t]);
}

static void qm__dot4_q6_K_q8_K_avx2(int64_t n, const void *vw, const void *vx, size_t qx_stride, float *out) {
    const qm__block_q6_K *w = QM__CAST(const qm__block_q6_K *, vw);
    const qm__block_q8_K *a[4];
    int64_t i, nb = n / QM__QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0f), m2 = _mm256_set1_epi8(0x03);
    __m256 acc[4];
    int t, half, k;
    for (t = 0; t < 4; t++) {
        a[t] = qm__act_row_k(vx, qx_stride, t);
        acc[t] = _mm256_setzero_ps();
    }
    for (i = 0; i < nb; i++) {
        const float dw = qm__h2f(w[i].d);
        const __m256i sc16 = _mm256_cvtepi8_epi16(QM__LD128(w[i].scales));
        __m256i s[4];
        for (t = 0; t < 4; t++) /* the -32 offset, as in the one-row kernel */
            s[t] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(_mm256_madd_epi16(QM__LD256(a[t][i].bsums), sc16), 5));
        for (half = 0; half < 2; half++) {
            const uint8_t *ql = w[i].ql + 64 * half, *qh = w[i].qh + 32 * half;
            const __m256i l0 = QM__LD256(ql), l1 = QM__LD256(ql + 32), h = QM__LD256(qh);
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(h, m2), 4));
            q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), m2), 4));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), m2), 4));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), m2), 4));
            for (k = 0; k < 4; k++) {
                const __m256i sc = qm__pair_scales(sc16, 4 * half + k);
                for (t = 0; t < 4; t++)
                    s[t] = qm__dpwssd(s[t], _mm256_maddubs_epi16(q[k], QM__LD256(a[t][i].qs + 128 * half + 32 * k)), sc);
            }
        }
        for (t = 0; t < 4; t++) acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(a[t][i].d * dw), _mm256_cvtepi32_ps(s[t]), acc[t]);
    }
    for (t = 0; t < 4; t++) out[t] = qm__hsum_ps256(acc[t]);
}

/* ---- activation quantizers, byte for byte the same as the plain ones ------------------ */

/* max |x| over 8*k floats */
static QM__INLINE __m256 qm__absmax8(const float *x, int k) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 m = _mm256_andnot_ps(sign, _mm256_loadu_ps(x));
    int j;
    for (j = 1; j < k; j++) m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8 * j)));
    return m;
}

static QM__INLINE float qm__hmax_ps256(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* 4 x 8 int32 (each in -128..127) -> 32 int8 in order */
static QM__INLINE __m256i qm__pack32_i8(__m256i a, __m256i b, __m256i c, __m256i d) {
    const __m256i ab = _mm256_packs_epi32(a, b), cd = _mm256_packs_epi32(c, d);
    /* packs work per 128-bit lane: restore the element order */
    return _mm256_permutevar8x32_epi32(_mm256_packs_epi16(ab, cd), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* roundf (half away from zero) of 8 floats of magnitude < 2^23, as int32 */
static QM__INLINE __m256i qm__round_away(__m256 v) {
    const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 frac = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), _mm256_sub_ps(v, t)); /* exact */
    const __m256 one = _mm256_or_ps(_mm256_and_ps(v, _mm256_set1_ps(-0.0f)), _mm256_set1_ps(1.0f));
    const __m256 up = _mm256_and_ps(_mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ), one);
    return _mm256_cvttps_epi32(_mm256_add_ps(t, up));
}

/* Q8_0 block: d = amax/127, q = roundf(x * (1/d)). Returns the 32 quants; *dh the fp16 d. */
static QM__INLINE __m256i qm__q8_0_block_avx2(const float *x, uint16_t *dh) {
    const float amax = qm__hmax_ps256(qm__absmax8(x, 4)), d = amax / 127.0f;
    const __m256 id = _mm256_set1_ps(d != 0.0f ? 1.0f / d : 0.0f);
    *dh = QM__CAST(uint16_t, _mm_extract_epi16(_mm_cvtps_ph(_mm_set_ss(d), _MM_FROUND_TO_NEAREST_INT), 0));
    return qm__pack32_i8(qm__round_away(_mm256_mul_ps(_mm256_loadu_ps(x), id)),
                         qm__round_away(_mm256_mul_ps(_mm256_loadu_ps(x + 8), id)),
                         qm__round_away(_mm256_mul_ps(_mm256_loadu_ps(x + 16), id)),
                         qm__round_away(_mm256_mul_ps(_mm256_loadu_ps(x + 24), id)));
}

static void qm__quantize_row_q8_0_avx2(const float *x, void *vy, int64_t n) {
    qm__block_q8_0 *y = QM__CAST(qm__block_q8_0 *, vy);
    int64_t i, nb = n / 32;
    for (i = 0; i < nb; i++, x += 32) {
        uint16_t dh;
        const __m256i q = qm__q8_0_block_avx2(x, &dh);
        y[i].d = dh;
        _mm256_storeu_si256(QM__CAST(__m256i *, QM__CAST(void *, y[i].qs)), q);
    }
}

/* sum of 32 int8 */
static QM__INLINE int qm__sum_i8x32(__m256i q) {
    const __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), q), _mm256_set1_epi16(1));
    __m128i t = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4e));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xb1));
    return _mm_cvtsi128_si32(t);
}

static void qm__quantize_row_q8_0s_avx2(const float *x, void *vy, int64_t n) {
    qm__block_q8_0s *y = QM__CAST(qm__block_q8_0s *, vy);
    int64_t i, nb = n / 32;
    for (i = 0; i < nb; i++, x += 32) {
        uint16_t dh;
        const __m256i q = qm__q8_0_block_avx2(x, &dh);
        y[i].d = dh;
        y[i].sum = QM__CAST(int16_t, qm__sum_i8x32(q));
        _mm256_storeu_si256(QM__CAST(__m256i *, QM__CAST(void *, y[i].qs)), q);
    }
}

/* Q8_K block: max = the first value of largest magnitude, iscale = -127/max,
   q = min(127, nearest(iscale * x)) (cvtps rounds to nearest even, as nearest_int does),
   bsums over 16, d = 1/iscale. */
static void qm__quantize_row_q8_K_avx2(const float *x, void *vy, int64_t n) {
    qm__block_q8_K *y = QM__CAST(qm__block_q8_K *, vy);
    const __m256i c127 = _mm256_set1_epi32(127);
    int64_t i, nb = n / QM__QK_K;
    int j;
    for (i = 0; i < nb; i++, x += QM__QK_K) {
        const float amax = qm__hmax_ps256(qm__absmax8(x, 32));
        float max = 0.0f, iscale;
        __m256 is;
        if (amax == 0.0f) { /* all zero: the plain code writes the zero block */
            qm__quantize_row_q8_K(x, &y[i], QM__QK_K);
            continue;
        }
        for (j = 0; j < QM__QK_K; j += 8) { /* the first element with |x| == amax */
            const __m256 v = _mm256_loadu_ps(x + j);
            const int m = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), v),
                                                           _mm256_set1_ps(amax), _CMP_EQ_OQ));
            if (m) {
                int k = 0;
                while (!(m & (1 << k))) k++;
                max = x[j + k];
                break;
            }
        }
        iscale = -127.0f / max;
        is = _mm256_set1_ps(iscale);
        for (j = 0; j < QM__QK_K; j += 32) {
            const __m256i q = qm__pack32_i8(
                _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(is, _mm256_loadu_ps(x + j))), c127),
                _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(is, _mm256_loadu_ps(x + j + 8))), c127),
                _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(is, _mm256_loadu_ps(x + j + 16))), c127),
                _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(is, _mm256_loadu_ps(x + j + 24))), c127));
            /* sums of 4, then of 16 per 128-bit lane */
            __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), q), _mm256_set1_epi16(1));
            s = _mm256_hadd_epi32(s, s);
            s = _mm256_hadd_epi32(s, s);
            _mm256_storeu_si256(QM__CAST(__m256i *, QM__CAST(void *, y[i].qs + j)), q);
            y[i].bsums[j / 16] = QM__CAST(int16_t, _mm256_extract_epi32(s, 0));
            y[i].bsums[j / 16 + 1] = QM__CAST(int16_t, _mm256_extract_epi32(s, 4));
        }
        y[i].d = 1.0f / iscale;
    }
}

/* ---- AVX-512 (F + BW + VL): 64 bytes per instruction ---------------------------------- */
#if defined(QM__AVX512)

static QM__INLINE __m512i qm__dpbusd512(__m512i acc, __m512i u, __m512i s) {
#if defined(__AVX512VNNI__)
    return _mm512_dpbusd_epi32(acc, u, s);
#else
    return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1)));
#endif
}

static QM__INLINE __m512i qm__dpwssd512(__m512i acc, __m512i a, __m512i b) {
#if defined(__AVX512VNNI__)
    return _mm512_dpwssd_epi32(acc, a, b);
#else
    return _mm512_add_epi32(acc, _mm512_madd_epi16(a, b));
#endif
}

/* 32 bytes from p into both 256-bit halves */
#define QM__BCAST256(p) _mm512_broadcast_i64x4(QM__LD256(p))

static float qm__dot_f16_f32_avx512(int64_t n, const void *vw, const void *vx) {
    const uint16_t *w = QM__CAST(const uint16_t *, vw);
    const float *x = QM__CAST(const float *, vx);
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i;
    for (i = 0; i + 64 <= n; i += 64) {
        s0 = _mm512_fmadd_ps(_mm512_cvtph_ps(QM__LD256(w + i)), _mm512_loadu_ps(x + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_cvtph_ps(QM__LD256(w + i + 16)), _mm512_loadu_ps(x + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_cvtph_ps(QM__LD256(w + i + 32)), _mm512_loadu_ps(x + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_cvtph_ps(QM__LD256(w + i + 48)), _mm512_loadu_ps(x + i + 48), s3);
    }
    for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(_mm512_cvtph_ps(QM__LD256(w + i)), _mm512_loadu_ps(x + i), s0);
    if (i < n) {
        const __mmask16 k = QM__CAST(__mmask16, (1u << (n - i)) - 1u);
        s1 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, w + i)), _mm512_maskz_loadu_ps(k, x + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

static QM__INLINE __m512 qm__bf16x16_to_ps(__m256i h) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

static float qm__dot_bf16_f32_avx512(int64_t n, const void *vw, const void *vx) {
    const uint16_t *w = QM__CAST(const uint16_t *, vw);
    const float *x = QM__CAST(const float *, vx);
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i;
    for (i = 0; i + 64 <= n; i += 64) {
        s0 = _mm512_fmadd_ps(qm__bf16x16_to_ps(QM__LD256(w + i)), _mm512_loadu_ps(x + i), s0);
        s1 = _mm512_fmadd_ps(qm__bf16x16_to_ps(QM__LD256(w + i + 16)), _mm512_loadu_ps(x + i + 16), s1);
        s2 = _mm512_fmadd_ps(qm__bf16x16_to_ps(QM__LD256(w + i + 32)), _mm512_loadu_ps(x + i + 32), s2);
        s3 = _mm512_fmadd_ps(qm__bf16x16_to_ps(QM__LD256(w + i + 48)), _mm512_loadu_ps(x + i + 48), s3);
    }
    for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(qm__bf16x16_to_ps(QM__LD256(w + i)), _mm512_loadu_ps(x + i), s0);
    if (i < n) {
        const __mmask16 k = QM__CAST(__mmask16, (1u << (n - i)) - 1u);
        s1 = _mm512_fmadd_ps(qm__bf16x16_to_ps(_mm256_maskz_loadu_epi16(k, w + i)), _mm512_maskz_loadu_ps(k, x + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

/* Q8_0: two blocks per register, |w| times a with w's sign (negated under a mask). */
static float qm__dot_q8_0_q8_0_avx512(int64_t n, const void *vw, const void *vx) {
    const qm__block_q8_0 *w = QM__CAST(const qm__block_q8_0 *, vw);
    const qm__block_q8_0 *a = QM__CAST(const qm__block_q8_0 *, vx);
    int64_t i, nb = n / 32;
    const __m512i zero = _mm512_setzero_si512();
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
    float sum;
    for (i = 0; i + 4 <= nb; i += 4) {
        const __m512i w0 = _mm512_inserti64x4(_mm512_castsi256_si512(QM__LD256(w[i].qs)), QM__LD256(w[i + 1].qs), 1);
        const __m512i w1 = _mm512_inserti64x4(_mm512_castsi256_si512(QM__LD256(w[i + 2].qs)), QM__LD256(w[i + 3].qs), 1);
        const __m512i a0 = _mm512_inserti64x4(_mm512_castsi256_si512(QM__LD256(a[i].qs)), QM__LD256(a[i + 1].qs), 1);
        const __m512i a1 = _mm512_inserti64x4(_mm512_castsi256_si512(QM__LD256(a[i + 2].qs)), QM__LD256(a[i + 3].qs), 1);
        const __m512i p0 = qm__dpbusd512(zero, _mm512_abs_epi8(w0), _mm512_mask_sub_epi8(a0, _mm512_movepi8_mask(w0), zero, a0));
        const __m512i p1 = qm__dpbusd512(zero, _mm512_abs_epi8(w1), _mm512_mask_sub_epi8(a1, _mm512_movepi8_mask(w1), zero, a1));
        /* the four block scales: lanes 0-7 block i, 8-15 block i+1 (and i+2, i+3) */
        const __m128 dw = _mm_cvtph_ps(_mm_setr_epi16(QM__CAST(short, w[i].d), QM__CAST(short, w[i + 1].d),
                                                      QM__CAST(short, w[i + 2].d), QM__CAST(short, w[i + 3].d), 0, 0, 0, 0));
        const __m128 da = _mm_cvtph_ps(_mm_setr_epi16(QM__CAST(short, a[i].d), QM__CAST(short, a[i + 1].d),
                                                      QM__CAST(short, a[i + 2].d), QM__CAST(short, a[i + 3].d), 0, 0, 0, 0));
        const __m512 dd = _mm512_castps128_ps512(_mm_mul_ps(dw, da));
        const __m512 d01 = _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1), dd);
        const __m512 d23 = _mm512_permutexvar_ps(_mm512_setr_epi32(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3), dd);
        acc0 = _mm512_fmadd_ps(d01, _mm512_cvtepi32_ps(p0), acc0);
        acc1 = _mm512_fmadd_ps(d23, _mm512_cvtepi32_ps(p1), acc1);
    }
    sum = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
    for (; i < nb; i++) { /* the last 1-3 blocks */
        const __m256i wq = QM__LD256(w[i].qs);
        const __m256i p = qm__dpbusd(_mm256_setzero_si256(), _mm256_sign_epi8(wq, wq), _mm256_sign_epi8(QM__LD256(a[i].qs), wq));
        sum += qm__hsum_ps256(_mm256_cvtepi32_ps(p)) * (qm__h2f(w[i].d) * qm__h2f(a[i].d));
    }
    return sum;
}

/* Q4_K: 64 weight bytes (two chunks) give [low nibbles c | low c+1] and [high c | high c+1];
   the activations are regrouped to match with 128-bit-lane shuffles. */
static float qm__dot_q4_K_q8_K_avx512(int64_t n, const void *vw, const void *vx) {
    const qm__block_q4_K *w = QM__CAST(const qm__block_q4_K *, vw);
    const qm__block_q8_K *a = QM__CAST(const qm__block_q8_K *, vx);
    int64_t i, nb = n / QM__QK_K;
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    /* int16 scale pickers: [sub-block j x16 | sub-block k x16] */
    const __m512i p02 = _mm512_inserti64x4(_mm512_set1_epi16(0), _mm256_set1_epi16(2), 1);
    const __m512i p13 = _mm512_inserti64x4(_mm512_set1_epi16(1), _mm256_set1_epi16(3), 1);
    const __m512i p46 = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(6), 1);
    const __m512i p57 = _mm512_inserti64x4(_mm512_set1_epi16(5), _mm256_set1_epi16(7), 1);
    __m512 acc = _mm512_setzero_ps();
    __m256 accm = _mm256_setzero_ps();
    for (i = 0; i < nb; i++) {
        uint8_t sm[16];
        const float d = a[i].d * qm__h2f(w[i].d), dmin = a[i].d * qm__h2f(w[i].dmin);
        const int8_t *q8 = a[i].qs;
        __m128i smv;
        __m512i sc, z, lo, hi, x0, x1, s0, s1;
        qm__k4_unpack(w[i].scales, sm);
        smv = QM__LD128(sm);
        accm = _mm256_fmadd_ps(_mm256_set1_ps(dmin),
                               _mm256_cvtepi32_ps(_mm256_madd_epi16(QM__LD256(a[i].bsums),
                                                                    _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(smv, smv)))),
                               accm);
        sc = _mm512_castsi128_si512(_mm_cvtepu8_epi16(smv)); /* 8 int16 scales */
        /* chunks 0, 1 */
        z = _mm512_loadu_si512(w[i].qs);
        lo = _mm512_and_si512(z, m4);
        hi = _mm512_and_si512(_mm512_srli_epi16(z, 4), m4);
        x0 = _mm512_loadu_si512(q8);
        x1 = _mm512_loadu_si512(q8 + 64);
        s0 = _mm512_madd_epi16(_mm512_maddubs_epi16(lo, _mm512_shuffle_i64x2(x0, x1, 0x44)), _mm512_permutexvar_epi16(p02, sc));
        s1 = _mm512_madd_epi16(_mm512_maddubs_epi16(hi, _mm512_shuffle_i64x2(x0, x1, 0xee)), _mm512_permutexvar_epi16(p13, sc));
        /* chunks 2, 3 */
        z = _mm512_loadu_si512(w[i].qs + 64);
        lo = _mm512_and_si512(z, m4);
        hi = _mm512_and_si512(_mm512_srli_epi16(z, 4), m4);
        x0 = _mm512_loadu_si512(q8 + 128);
        x1 = _mm512_loadu_si512(q8 + 192);
        s0 = qm__dpwssd512(s0, _mm512_maddubs_epi16(lo, _mm512_shuffle_i64x2(x0, x1, 0x44)), _mm512_permutexvar_epi16(p46, sc));
        s1 = qm__dpwssd512(s1, _mm512_maddubs_epi16(hi, _mm512_shuffle_i64x2(x0, x1, 0xee)), _mm512_permutexvar_epi16(p57, sc));
        acc = _mm512_fmadd_ps(_mm512_set1_ps(d), _mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)), acc);
    }
    return _mm512_reduce_add_ps(acc) - qm__hsum_ps256(accm);
}

/* Q5_K: Q4_K plus 16 under a byte mask from qh: for chunks c, c+1 the low nibbles take
   bits 2c and 2c+2, the high nibbles bits 2c+1 and 2c+3 of the same qh byte. */
static float qm__dot_q5_K_q8_K_avx512(int64_t n, const void *vw, const void *vx) {
    const qm__block_q5_K *w = QM__CAST(const qm__block_q5_K *, vw);
    const qm__block_q8_K *a = QM__CAST(const qm__block_q8_K *, vx);
    int64_t i, nb = n / QM__QK_K;
    const __m512i m4 = _mm512_set1_epi8(0x0f), b4 = _mm512_set1_epi8(0x10);
    const __m512i p02 = _mm512_inserti64x4(_mm512_set1_epi16(0), _mm256_set1_epi16(2), 1);
    const __m512i p13 = _mm512_inserti64x4(_mm512_set1_epi16(1), _mm256_set1_epi16(3), 1);
    const __m512i p46 = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(6), 1);
    const __m512i p57 = _mm512_inserti64x4(_mm512_set1_epi16(5), _mm256_set1_epi16(7), 1);
    const __m512i t02 = _mm512_inserti64x4(_mm512_set1_epi8(0x01), _mm256_set1_epi8(0x04), 1);
    const __m512i t13 = _mm512_inserti64x4(_mm512_set1_epi8(0x02), _mm256_set1_epi8(0x08), 1);
    const __m512i t46 = _mm512_inserti64x4(_mm512_set1_epi8(0x10), _mm256_set1_epi8(0x40), 1);
    const __m512i t57 = _mm512_inserti64x4(_mm512_set1_epi8(0x20), _mm256_set1_epi8(QM__CAST(char, 0x80)), 1);
    __m512 acc = _mm512_setzero_ps();
    __m256 accm = _mm256_setzero_ps();
    for (i = 0; i < nb; i++) {
        uint8_t sm[16];
        const float d = a[i].d * qm__h2f(w[i].d), dmin = a[i].d * qm__h2f(w[i].dmin);
        const int8_t *q8 = a[i].qs;
        const __m512i qh = QM__BCAST256(w[i].qh);
        __m128i smv;
        __m512i sc, z, lo, hi, x0, x1, s0, s1;
        qm__k4_unpack(w[i].scales, sm);
        smv = QM__LD128(sm);
        accm = _mm256_fmadd_ps(_mm256_set1_ps(dmin),
                               _mm256_cvtepi32_ps(_mm256_madd_epi16(QM__LD256(a[i].bsums),
                                                                    _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(smv, smv)))),
                               accm);
        sc = _mm512_castsi128_si512(_mm_cvtepu8_epi16(smv));
        z = _mm512_loadu_si512(w[i].qs);
        lo = _mm512_and_si512(z, m4);
        lo = _mm512_mask_add_epi8(lo, _mm512_test_epi8_mask(qh, t02), lo, b4);
        hi = _mm512_and_si512(_mm512_srli_epi16(z, 4), m4);
        hi = _mm512_mask_add_epi8(hi, _mm512_test_epi8_mask(qh, t13), hi, b4);
        x0 = _mm512_loadu_si512(q8);
        x1 = _mm512_loadu_si512(q8 + 64);
        s0 = _mm512_madd_epi16(_mm512_maddubs_epi16(lo, _mm512_shuffle_i64x2(x0, x1, 0x44)), _mm512_permutexvar_epi16(p02, sc));
        s1 = _mm512_madd_epi16(_mm512_maddubs_epi16(hi, _mm512_shuffle_i64x2(x0, x1, 0xee)), _mm512_permutexvar_epi16(p13, sc));
        z = _mm512_loadu_si512(w[i].qs + 64);
        lo = _mm512_and_si512(z, m4);
        lo = _mm512_mask_add_epi8(lo, _mm512_test_epi8_mask(qh, t46), lo, b4);
        hi = _mm512_and_si512(_mm512_srli_epi16(z, 4), m4);
        hi = _mm512_mask_add_epi8(hi, _mm512_test_epi8_mask(qh, t57), hi, b4);
        x0 = _mm512_loadu_si512(q8 + 128);
        x1 = _mm512_loadu_si512(q8 + 192);
        s0 = qm__dpwssd512(s0, _mm512_maddubs_epi16(lo, _mm512_shuffle_i64x2(x0, x1, 0x44)), _mm512_permutexvar_epi16(p46, sc));
        s1 = qm__dpwssd512(s1, _mm512_maddubs_epi16(hi, _mm512_shuffle_i64x2(x0, x1, 0xee)), _mm512_permutexvar_epi16(p57, sc));
        acc = _mm512_fmadd_ps(_mm512_set1_ps(d), _mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)), acc);
    }
    return _mm512_reduce_add_ps(acc) - qm__hsum_ps256(accm);
}

/* Q6_K: per 128-element half, ql (64 bytes) gives elements 0-63 (low nibbles) and 64-127
   (high nibbles); qh (32 bytes, in both register halves) their bits 4-5, shifted into
   place per 256-bit half. Scales: one per 8 int16 lanes. */
static float qm__dot_q6_K_q8_K_avx512(int64_t n, const void *vw, const void *vx) {
    const qm__block_q6_K *w = QM__CAST(const qm__block_q6_K *, vw);
    const qm__block_q8_K *a = QM__CAST(const qm__block_q8_K *, vx);
    int64_t i, nb = n / QM__QK_K;
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    /* elements 0-31: qh bits 0-1 -> 4-5 (<<4); 32-63: bits 2-3 (<<2); 64-95: bits 4-5 (as
       is); 96-127: bits 6-7 (>>2) */
    const __m512i hm_a = _mm512_inserti64x4(_mm512_set1_epi8(0x03), _mm256_set1_epi8(0x0c), 1);
    const __m512i hs_a = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
    const __m512i hm_b = _mm512_inserti64x4(_mm512_set1_epi8(0x30), _mm256_set1_epi8(QM__CAST(char, 0xc0)), 1);
    const __m512i hs_b = _mm512_inserti64x4(_mm512_set1_epi16(0), _mm256_set1_epi16(2), 1);
    const __m512i pk0 = _mm512_setr_epi64(0x0000000000000000ll, 0x0000000000000000ll, 0x0001000100010001ll, 0x0001000100010001ll,
                                          0x0002000200020002ll, 0x0002000200020002ll, 0x0003000300030003ll, 0x0003000300030003ll);
    const __m512i four = _mm512_set1_epi16(4);
    __m512 acc = _mm512_setzero_ps();
    int half;
    for (i = 0; i < nb; i++) {
        const float d = a[i].d * qm__h2f(w[i].d);
        const __m256i sc16 = _mm256_cvtepi8_epi16(QM__LD128(w[i].scales));
        const __m512i sc = _mm512_castsi256_si512(sc16);
        /* -32 offset: 32 * sum(scale_g * bsum_g) */
        const __m256i off = _mm256_slli_epi32(_mm256_madd_epi16(QM__LD256(a[i].bsums), sc16), 5);
        __m512i s0 = _mm512_castsi256_si512(_mm256_sub_epi32(_mm256_setzero_si256(), off));
        __m512i s1 = _mm512_setzero_si512(), pk = pk0;
        s0 = _mm512_inserti64x4(s0, _mm256_setzero_si256(), 1);
        for (half = 0; half < 2; half++) {
            const __m512i l = _mm512_loadu_si512(w[i].ql + 64 * half), h = QM__BCAST256(w[i].qh + 32 * half);
            const int8_t *q8 = a[i].qs + 128 * half;
            const __m512i qa = _mm512_or_si512(_mm512_and_si512(l, m4), _mm512_sllv_epi16(_mm512_and_si512(h, hm_a), hs_a));
            const __m512i qb = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4),
                                               _mm512_srlv_epi16(_mm512_and_si512(h, hm_b), hs_b));
            s0 = qm__dpwssd512(s0, _mm512_maddubs_epi16(qa, _mm512_loadu_si512(q8)), _mm512_permutexvar_epi16(pk, sc));
            pk = _mm512_add_epi16(pk, four);
            s1 = qm__dpwssd512(s1, _mm512_maddubs_epi16(qb, _mm512_loadu_si512(q8 + 64)), _mm512_permutexvar_epi16(pk, sc));
            pk = _mm512_add_epi16(pk, four);
        }
        acc = _mm512_fmadd_ps(_mm512_set1_ps(d), _mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)), acc);
    }
    return _mm512_reduce_add_ps(acc);
}

/* Q4_K against 4 activation rows at once: the weights are decoded once per super-block
   and used 4 times. out[t] = row . act row t (rows qx_stride bytes apart). */
static void qm__dot4_q4_K_q8_K_avx512(int64_t n, const void *vw, const void *vx, size_t qx_stride, float *out) {
    const qm__block_q4_K *w = QM__CAST(const qm__block_q4_K *, vw);
    const qm__block_q8_K *a[4];
    int64_t i, nb = n / QM__QK_K;
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const __m512i p02 = _mm512_inserti64x4(_mm512_set1_epi16(0), _mm256_set1_epi16(2), 1);
    const __m512i p13 = _mm512_inserti64x4(_mm512_set1_epi16(1), _mm256_set1_epi16(3), 1);
    const __m512i p46 = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(6), 1);
    const __m512i p57 = _mm512_inserti64x4(_mm512_set1_epi16(5), _mm256_set1_epi16(7), 1);
    __m512 acc[4];
    __m256 accm[4];
    int t;
    for (t = 0; t < 4; t++) {
        a[t] = QM__PTR(const qm__block_q8_K *, QM__CAST(const uint8_t *, vx) + qx_stride * QM__CAST(size_t, t));
        acc[t] = _mm512_setzero_ps();
        accm[t] = _mm256_setzero_ps();
    }
    for (i = 0; i < nb; i++) {
        uint8_t sm[16];
        const float dw = qm__h2f(w[i].d), dminw = qm__h2f(w[i].dmin);
        __m128i smv;
        __m256i mins16;
        __m512i sc, z0, z1, lo0, hi0, lo1, hi1, c02, c13, c46, c57;
        qm__k4_unpack(w[i].scales, sm);
        smv = QM__LD128(sm);
        mins16 = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(smv, smv));
        sc = _mm512_castsi128_si512(_mm_cvtepu8_epi16(smv));
        c02 = _mm512_permutexvar_epi16(p02, sc);
        c13 = _mm512_permutexvar_epi16(p13, sc);
        c46 = _mm512_permutexvar_epi16(p46, sc);
        c57 = _mm512_permutexvar_epi16(p57, sc);
        z0 = _mm512_loadu_si512(w[i].qs);
        z1 = _mm512_loadu_si512(w[i].qs + 64);
        lo0 = _mm512_and_si512(z0, m4);
        hi0 = _mm512_and_si512(_mm512_srli_epi16(z0, 4), m4);
        lo1 = _mm512_and_si512(z1, m4);
        hi1 = _mm512_and_si512(_mm512_srli_epi16(z1, 4), m4);
        for (t = 0; t < 4; t++) {
            const int8_t *q8 = a[t][i].qs;
            const __m512i x0 = _mm512_loadu_si512(q8), x1 = _mm512_loadu_si512(q8 + 64);
            const __m512i x2 = _mm512_loadu_si512(q8 + 128), x3 = _mm512_loadu_si512(q8 + 192);
            __m512i s0 = _mm512_madd_epi16(_mm512_maddubs_epi16(lo0, _mm512_shuffle_i64x2(x0, x1, 0x44)), c02);
            __m512i s1 = _mm512_madd_epi16(_mm512_maddubs_epi16(hi0, _mm512_shuffle_i64x2(x0, x1, 0xee)), c13);
            s0 = qm__dpwssd512(s0, _mm512_maddubs_epi16(lo1, _mm512_shuffle_i64x2(x2, x3, 0x44)), c46);
            s1 = qm__dpwssd512(s1, _mm512_maddubs_epi16(hi1, _mm512_shuffle_i64x2(x2, x3, 0xee)), c57);
            accm[t] = _mm256_fmadd_ps(_mm256_set1_ps(a[t][i].d * dminw),
                                      _mm256_cvtepi32_ps(_mm256_madd_epi16(QM__LD256(a[t][i].bsums), mins16)), accm[t]);
            acc[t] = _mm512_fmadd_ps(_mm512_set1_ps(a[t][i].d * dw), _mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)), acc[t]);
        }
    }
    for (t = 0; t < 4; t++) out[t] = _mm512_reduce_add_ps(acc[t]) - qm__hsum_ps256(accm[t]);
}

/* Q5_K against 4 activation rows at once (Q4_K's, plus the fifth bits as in
   qm__dot_q5_K_q8_K_avx512). */
static void qm__dot4_q5_K_q8_K_avx512(int64_t n, const void *vw, const void *vx, size_t qx_stride, float *out) {
    const qm__block_q5_K *w = QM__CAST(const qm__block_q5_K *, vw);
    const qm__block_q8_K *a[4];
    int64_t i, nb = n / QM__QK_K;
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const __m512i p02 = _mm512_inserti64x4(_mm512_set1_epi16(0), _mm256_set1_epi16(2), 1);
    const __m512i p13 = _mm512_inserti64x4(_mm512_set1_epi16(1), _mm256_set1_epi16(3), 1);
    const __m512i p46 = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(6), 1);
    const __m512i p57 = _mm512_inserti64x4(_mm512_set1_epi16(5), _mm256_set1_epi16(7), 1);
    const __m512i b4 = _mm512_set1_epi8(0x10);
    const __m512i t02 = _mm512_inserti64x4(_mm512_set1_epi8(0x01), _mm256_set1_epi8(0x04), 1);
    const __m512i t13 = _mm512_inserti64x4(_mm512_set1_epi8(0x02), _mm256_set1_epi8(0x08), 1);
    const __m512i t46 = _mm512_inserti64x4(_mm512_set1_epi8(0x10), _mm256_set1_epi8(0x40), 1);
    const __m512i t57 = _mm512_inserti64x4(_mm512_set1_epi8(0x20), _mm256_set1_epi8(QM__CAST(char, 0x80)), 1);
    __m512 acc[4];
    __m256 accm[4];
    int t;
    for (t = 0; t < 4; t++) {
        a[t] = QM__PTR(const qm__block_q8_K *, QM__CAST(const uint8_t *, vx) + qx_stride * QM__CAST(size_t, t));
        acc[t] = _mm512_setzero_ps();
        accm[t] = _mm256_setzero_ps();
    }
    for (i = 0; i < nb; i++) {
        uint8_t sm[16];
        const float dw = qm__h2f(w[i].d), dminw = qm__h2f(w[i].dmin);
        __m128i smv;
        __m256i mins16;
        __m512i sc, z0, z1, lo0, hi0, lo1, hi1, c02, c13, c46, c57, qh;
        qm__k4_unpack(w[i].scales, sm);
        smv = QM__LD128(sm);
        mins16 = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(smv, smv));
        sc = _mm512_castsi128_si512(_mm_cvtepu8_epi16(smv));
        c02 = _mm512_permutexvar_epi16(p02, sc);
        c13 = _mm512_permutexvar_epi16(p13, sc);
        c46 = _mm512_permutexvar_epi16(p46, sc);
        c57 = _mm512_permutexvar_epi16(p57, sc);
        z0 = _mm512_loadu_si512(w[i].qs);
        z1 = _mm512_loadu_si512(w[i].qs + 64);
        qh = QM__BCAST256(w[i].qh);
        lo0 = _mm512_and_si512(z0, m4);
        lo0 = _mm512_mask_add_epi8(lo0, _mm512_test_epi8_mask(qh, t02), lo0, b4);
        hi0 = _mm512_and_si512(_mm512_srli_epi16(z0, 4), m4);
        hi0 = _mm512_mask_add_epi8(hi0, _mm512_test_epi8_mask(qh, t13), hi0, b4);
        lo1 = _mm512_and_si512(z1, m4);
        lo1 = _mm512_mask_add_epi8(lo1, _mm512_test_epi8_mask(qh, t46), lo1, b4);
        hi1 = _mm512_and_si512(_mm512_srli_epi16(z1, 4), m4);
        hi1 = _mm512_mask_add_epi8(hi1, _mm512_test_epi8_mask(qh, t57), hi1, b4);
        for (t = 0; t < 4; t++) {
            const int8_t *q8 = a[t][i].qs;
            const __m512i x0 = _mm512_loadu_si512(q8), x1 = _mm512_loadu_si512(q8 + 64);
            const __m512i x2 = _mm512_loadu_si512(q8 + 128), x3 = _mm512_loadu_si512(q8 + 192);
            __m512i s0 = _mm512_madd_epi16(_mm512_maddubs_epi16(lo0, _mm512_shuffle_i64x2(x0, x1, 0x44)), c02);
            __m512i s1 = _mm512_madd_epi16(_mm512_maddubs_epi16(hi0, _mm512_shuffle_i64x2(x0, x1, 0xee)), c13);
            s0 = qm__dpwssd512(s0, _mm512_maddubs_epi16(lo1, _mm512_shuffle_i64x2(x2, x3, 0x44)), c46);
            s1 = qm__dpwssd512(s1, _mm512_maddubs_epi16(hi1, _mm512_shuffle_i64x2(x2, x3, 0xee)), c57);
            accm[t] = _mm256_fmadd_ps(_mm256_set1_ps(a[t][i].d * dminw),
                                      _mm256_cvtepi32_ps(_mm256_madd_epi16(QM__LD256(a[t][i].bsums), mins16)), accm[t]);
            acc[t] = _mm512_fmadd_ps(_mm512_set1_ps(a[t][i].d * dw), _mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)), acc[t]);
        }
    }
    for (t = 0; t < 4; t++) out[t] = _mm512_reduce_add_ps(acc[t]) - qm__hsum_ps256(accm[t]);
}

/* Q6_K against 4 activation rows at once (see qm__dot_q6_K_q8_K_avx512). */
static void qm__dot4_q6_K_q8_K_avx512(int64_t n, const void *vw, const void *vx, size_t qx_stride, float *out) {
    const qm__block_q6_K *w = QM__CAST(const qm__block_q6_K *, vw);
    const qm__block_q8_K *a[4];
    int64_t i, nb = n / QM__QK_K;
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const __m512i hm_a = _mm512_inserti64x4(_mm512_set1_epi8(0x03), _mm256_set1_epi8(0x0c), 1);
    const __m512i hs_a = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
    const __m512i hm_b = _mm512_inserti64x4(_mm512_set1_epi8(0x30), _mm256_set1_epi8(QM__CAST(char, 0xc0)), 1);
    const __m512i hs_b = _mm512_inserti64x4(_mm512_set1_epi16(0), _mm256_set1_epi16(2), 1);
    const __m512i pk0 = _mm512_setr_epi64(0x0000000000000000ll, 0x0000000000000000ll, 0x0001000100010001ll, 0x0001000100010001ll,
                                          0x0002000200020002ll, 0x0002000200020002ll, 0x0003000300030003ll, 0x0003000300030003ll);
    const __m512i four = _mm512_set1_epi16(4);
    __m512 acc[4];
    int t, half;
    for (t = 0; t < 4; t++) {
        a[t] = QM__PTR(const qm__block_q8_K *, QM__CAST(const uint8_t *, vx) + qx_stride * QM__CAST(size_t, t));
        acc[t] = _mm512_setzero_ps();
    }
    for (i = 0; i < nb; i++) {
        const float dw = qm__h2f(w[i].d);
        const __m256i sc16 = _mm256_cvtepi8_epi16(QM__LD128(w[i].scales));
        const __m512i sc = _mm512_castsi256_si512(sc16);
        __m512i q[4], c[4], pk = pk0;
        for (half = 0; half < 2; half++) {
            const __m512i l = _mm512_loadu_si512(w[i].ql + 64 * half), h = QM__BCAST256(w[i].qh + 32 * half);
            q[2 * half] = _mm512_or_si512(_mm512_and_si512(l, m4), _mm512_sllv_epi16(_mm512_and_si512(h, hm_a), hs_a));
            q[2 * half + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4),
                                              _mm512_srlv_epi16(_mm512_and_si512(h, hm_b), hs_b));
            c[2 * half] = _mm512_permutexvar_epi16(pk, sc);
            pk = _mm512_add_epi16(pk, four);
            c[2 * half + 1] = _mm512_permutexvar_epi16(pk, sc);
            pk = _mm512_add_epi16(pk, four);
        }
        for (t = 0; t < 4; t++) {
            const int8_t *q8 = a[t][i].qs;
            const __m256i off = _mm256_slli_epi32(_mm256_madd_epi16(QM__LD256(a[t][i].bsums), sc16), 5);
            __m512i s0 = _mm512_madd_epi16(_mm512_maddubs_epi16(q[0], _mm512_loadu_si512(q8)), c[0]);
            __m512i s1 = _mm512_madd_epi16(_mm512_maddubs_epi16(q[1], _mm512_loadu_si512(q8 + 64)), c[1]);
            s0 = qm__dpwssd512(s0, _mm512_maddubs_epi16(q[2], _mm512_loadu_si512(q8 + 128)), c[2]);
            s1 = qm__dpwssd512(s1, _mm512_maddubs_epi16(q[3], _mm512_loadu_si512(q8 + 192)), c[3]);
            s0 = _mm512_sub_epi32(_mm512_add_epi32(s0, s1), _mm512_inserti64x4(_mm512_setzero_si512(), off, 0));
            acc[t] = _mm512_fmadd_ps(_mm512_set1_ps(a[t][i].d * dw), _mm512_cvtepi32_ps(s0), acc[t]);
        }
    }
    for (t = 0; t < 4; t++) out[t] = _mm512_reduce_add_ps(acc[t]);
}

#endif /* QM__AVX512 */

#endif /* QM__X86 */

/* ====================================================================================== */
/*  aarch64: NEON, with the dot-product extension (sdot) when the target has it            */
/* ====================================================================================== */
#if defined(QM__NEON)

/* acc + sums of 4 adjacent int8 products. Without sdot the lane grouping differs (pairs
   from both halves), which is fine: every caller only uses the total of the four lanes. */
static QM__INLINE int32x4_t qm__vdot(int32x4_t acc, int8x16_t a, int8x16_t b) {
#if defined(__ARM_FEATURE_DOTPROD)
    return vdotq_s32(acc, a, b);
#else
    return vpadalq_s16(vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(b))), vmull_high_s8(a, b));
#endif
}

static float qm__dot_f32_f32_neon(int64_t n, const void *vw, const void *vx) {
    const float *w = QM__CAST(const float *, vw), *x = QM__CAST(const float *, vx);
    float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0, s2 = s0, s3 = s0;
    int64_t i;
    float sum;
    for (i = 0; i + 16 <= n; i += 16) {
        s0 = vfmaq_f32(s0, vld1q_f32(w + i), vld1q_f32(x + i));
        s1 = vfmaq_f32(s1, vld1q_f32(w + i + 4), vld1q_f32(x + i + 4));
        s2 = vfmaq_f32(s2, vld1q_f32(w + i + 8), vld1q_f32(x + i + 8));
        s3 = vfmaq_f32(s3, vld1q_f32(w + i + 12), vld1q_f32(x + i + 12));
    }
    for (; i + 4 <= n; i += 4) s0 = vfmaq_f32(s0, vld1q_f32(w + i), vld1q_f32(x + i));
    sum = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
    for (; i < n; i++) sum += w[i] * x[i];
    return sum;
}

static float qm__dot_f16_f32_neon(int64_t n, const void *vw, const void *vx) {
    const uint16_t *w = QM__CAST(const uint16_t *, vw);
    const float *x = QM__CAST(const float *, vx);
    float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0, s2 = s0, s3 = s0;
    int64_t i;
    float sum;
    for (i = 0; i + 16 <= n; i += 16) {
        const float16x8_t h0 = vreinterpretq_f16_u16(vld1q_u16(w + i)), h1 = vreinterpretq_f16_u16(vld1q_u16(w + i + 8));
        s0 = vfmaq_f32(s0, vcvt_f32_f16(vget_low_f16(h0)), vld1q_f32(x + i));
        s1 = vfmaq_f32(s1, vcvt_high_f32_f16(h0), vld1q_f32(x + i + 4));
        s2 = vfmaq_f32(s2, vcvt_f32_f16(vget_low_f16(h1)), vld1q_f32(x + i + 8));
        s3 = vfmaq_f32(s3, vcvt_high_f32_f16(h1), vld1q_f32(x + i + 12));
    }
    for (; i + 4 <= n; i += 4) s0 = vfmaq_f32(s0, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(w + i))), vld1q_f32(x + i));
    sum = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
    for (; i < n; i++) sum += qm__h2f(w[i]) * x[i];
    return sum;
}

static float qm__dot_bf16_f32_neon(int64_t n, const void *vw, const void *vx) {
    const uint16_t *w = QM__CAST(const uint16_t *, vw);
    const float *x = QM__CAST(const float *, vx);
    float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0, s2 = s0, s3 = s0;
    int64_t i;
    float sum;
    for (i = 0; i + 16 <= n; i += 16) {
        const uint16x8_t h0 = vld1q_u16(w + i), h1 = vld1q_u16(w + i + 8);
        s0 = vfmaq_f32(s0, vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h0), 16)), vld1q_f32(x + i));
        s1 = vfmaq_f32(s1, vreinterpretq_f32_u32(vshll_high_n_u16(h0, 16)), vld1q_f32(x + i + 4));
        s2 = vfmaq_f32(s2, vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h1), 16)), vld1q_f32(x + i + 8));
        s3 = vfmaq_f32(s3, vreinterpretq_f32_u32(vshll_high_n_u16(h1, 16)), vld1q_f32(x + i + 12));
    }
    for (; i + 4 <= n; i += 4) s0 = vfmaq_f32(s0, vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(w + i), 16)), vld1q_f32(x + i));
    sum = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
    for (; i < n; i++) sum += qm_bf16_to_fp32(w[i]) * x[i];
    return sum;
}

static float qm__dot_q8_0_q8_0_neon(int64_t n, const void *vw, const void *vx) {
    const qm__block_q8_0 *w = QM__CAST(const qm__block_q8_0 *, vw);
    const qm__block_q8_0 *a = QM__CAST(const qm__block_q8_0 *, vx);
    int64_t i, nb = n / 32;
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = acc0;
    const int32x4_t zero = vdupq_n_s32(0);
    for (i = 0; i + 2 <= nb; i += 2) {
        const int32x4_t p0 = qm__vdot(qm__vdot(zero, vld1q_s8(w[i].qs), vld1q_s8(a[i].qs)), vld1q_s8(w[i].qs + 16), vld1q_s8(a[i].qs + 16));
        const int32x4_t p1 = qm__vdot(qm__vdot(zero, vld1q_s8(w[i + 1].qs), vld1q_s8(a[i + 1].qs)), vld1q_s8(w[i + 1].qs + 16),
                                      vld1q_s8(a[i + 1].qs + 16));
        acc0 = vfmaq_n_f32(acc0, vcvtq_f32_s32(p0), qm__h2f(w[i].d) * qm__h2f(a[i].d));
        acc1 = vfmaq_n_f32(acc1, vcvtq_f32_s32(p1), qm__h2f(w[i + 1].d) * qm__h2f(a[i + 1].d));
    }
    for (; i < nb; i++) {
        const int32x4_t p0 = qm__vdot(qm__vdot(zero, vld1q_s8(w[i].qs), vld1q_s8(a[i].qs)), vld1q_s8(w[i].qs + 16), vld1q_s8(a[i].qs + 16));
        acc0 = vfmaq_n_f32(acc0, vcvtq_f32_s32(p0), qm__h2f(w[i].d) * qm__h2f(a[i].d));
    }
    return vaddvq_f32(vaddq_f32(acc0, acc1));
}

/* sum over sub-blocks j of m_j * (bsum_2j + bsum_2j+1), m_j in mins[0..7] */
static QM__INLINE int32_t qm__k4_minsum_neon(const int16_t *bsums, const uint8_t *mins) {
    const int16x8_t b = vpaddq_s16(vld1q_s16(bsums), vld1q_s16(bsums + 8));
    const int16x8_t m = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(mins)));
    return vaddvq_s32(vmlal_s16(vmull_s16(vget_low_s16(b), vget_low_s16(m)), vget_high_s16(b), vget_high_s16(m)));
}

static float qm__dot_q4_K_q8_K_neon(int64_t n, const void *vw, const void *vx) {
    const qm__block_q4_K *w = QM__CAST(const qm__block_q4_K *, vw);
    const qm__block_q8_K *a = QM__CAST(const qm__block_q8_K *, vx);
    int64_t i, nb = n / QM__QK_K;
    const uint8x16_t m4 = vdupq_n_u8(0x0f);
    const int32x4_t zero = vdupq_n_s32(0);
    float sumf = 0.0f;
    int c;
    for (i = 0; i < nb; i++) {
        uint8_t sm[16];
        const uint8_t *q = w[i].qs;
        const int8_t *q8 = a[i].qs;
        int32x4_t acc = zero;
        int32_t msum;
        qm__k4_unpack(w[i].scales, sm);
        msum = qm__k4_minsum_neon(a[i].bsums, sm + 8);
        for (c = 0; c < 4; c++, q += 32, q8 += 64) {
            const uint8x16_t b0 = vld1q_u8(q), b1 = vld1q_u8(q + 16);
            const int32x4_t plo = qm__vdot(qm__vdot(zero, vreinterpretq_s8_u8(vandq_u8(b0, m4)), vld1q_s8(q8)),
                                           vreinterpretq_s8_u8(vandq_u8(b1, m4)), vld1q_s8(q8 + 16));
            const int32x4_t phi = qm__vdot(qm__vdot(zero, vreinterpretq_s8_u8(vshrq_n_u8(b0, 4)), vld1q_s8(q8 + 32)),
                                           vreinterpretq_s8_u8(vshrq_n_u8(b1, 4)), vld1q_s8(q8 + 48));
            acc = vmlaq_n_s32(acc, plo, sm[2 * c]);
            acc = vmlaq_n_s32(acc, phi, sm[2 * c + 1]);
        }
        sumf += a[i].d * qm__h2f(w[i].d) * QM__CAST(float, vaddvq_s32(acc)) -
                a[i].d * qm__h2f(w[i].dmin) * QM__CAST(float, msum);
    }
    return sumf;
}

static float qm__dot_q5_K_q8_K_neon(int64_t n, const void *vw, const void *vx) {
    const qm__block_q5_K *w = QM__CAST(const qm__block_q5_K *, vw);
    const qm__block_q8_K *a = QM__CAST(const qm__block_q8_K *, vx);
    int64_t i, nb = n / QM__QK_K;
    const uint8x16_t m4 = vdupq_n_u8(0x0f), b4 = vdupq_n_u8(0x10);
    const int32x4_t zero = vdupq_n_s32(0);
    float sumf = 0.0f;
    int c;
    for (i = 0; i < nb; i++) {
        uint8_t sm[16];
        const uint8_t *q = w[i].qs;
        const int8_t *q8 = a[i].qs;
        uint8x16_t h0 = vld1q_u8(w[i].qh), h1 = vld1q_u8(w[i].qh + 16);
        int32x4_t acc = zero;
        int32_t msum;
        qm__k4_unpack(w[i].scales, sm);
        msum = qm__k4_minsum_neon(a[i].bsums, sm + 8);
        for (c = 0; c < 4; c++, q += 32, q8 += 64) {
            /* bit 0 of h (bit 2c of qh) belongs to the low nibbles, bit 1 to the high */
            const uint8x16_t b0 = vld1q_u8(q), b1 = vld1q_u8(q + 16);
            const uint8x16_t l0 = vorrq_u8(vandq_u8(b0, m4), vandq_u8(vshlq_n_u8(h0, 4), b4));
            const uint8x16_t l1 = vorrq_u8(vandq_u8(b1, m4), vandq_u8(vshlq_n_u8(h1, 4), b4));
            const uint8x16_t u0 = vorrq_u8(vshrq_n_u8(b0, 4), vandq_u8(vshlq_n_u8(h0, 3), b4));
            const uint8x16_t u1 = vorrq_u8(vshrq_n_u8(b1, 4), vandq_u8(vshlq_n_u8(h1, 3), b4));
            const int32x4_t plo = qm__vdot(qm__vdot(zero, vreinterpretq_s8_u8(l0), vld1q_s8(q8)), vreinterpretq_s8_u8(l1), vld1q_s8(q8 + 16));
            const int32x4_t phi = qm__vdot(qm__vdot(zero, vreinterpretq_s8_u8(u0), vld1q_s8(q8 + 32)), vreinterpretq_s8_u8(u1),
                                           vld1q_s8(q8 + 48));
            acc = vmlaq_n_s32(acc, plo, sm[2 * c]);
            acc = vmlaq_n_s32(acc, phi, sm[2 * c + 1]);
            h0 = vshrq_n_u8(h0, 2);
            h1 = vshrq_n_u8(h1, 2);
        }
        sumf += a[i].d * qm__h2f(w[i].d) * QM__CAST(float, vaddvq_s32(acc)) -
                a[i].d * qm__h2f(w[i].dmin) * QM__CAST(float, msum);
    }
    return sumf;
}

/* Q6_K: each 16-byte vector of levels is one scale group; q - 32 as int8. */
static float qm__dot_q6_K_q8_K_neon(int64_t n, const void *vw, const void *vx) {
    const qm__block_q6_K *w = QM__CAST(const qm__block_q6_K *, vw);
    const qm__block_q8_K *a = QM__CAST(const qm__block_q8_K *, vx);
    int64_t i, nb = n / QM__QK_K;
    const uint8x16_t m4 = vdupq_n_u8(0x0f), m2 = vdupq_n_u8(0x30);
    const int8x16_t o32 = vdupq_n_s8(32);
    const int32x4_t zero = vdupq_n_s32(0);
    float sumf = 0.0f;
    int half, k;
    for (i = 0; i < nb; i++) {
        int32x4_t acc = zero;
        for (half = 0; half < 2; half++) {
            const uint8_t *ql = w[i].ql + 64 * half, *qh = w[i].qh + 32 * half;
            const int8_t *sc = w[i].scales + 8 * half, *q8 = a[i].qs + 128 * half;
            for (k = 0; k < 2; k++) { /* l = 16k .. 16k+15: groups k, k+2, k+4, k+6 */
                const uint8x16_t la = vld1q_u8(ql + 16 * k), lb = vld1q_u8(ql + 32 + 16 * k), h = vld1q_u8(qh + 16 * k);
                const int8x16_t q1 = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vandq_u8(la, m4), vandq_u8(vshlq_n_u8(h, 4), m2))), o32);
                const int8x16_t q2 = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vandq_u8(lb, m4), vandq_u8(vshlq_n_u8(h, 2), m2))), o32);
                const int8x16_t q3 = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(la, 4), vandq_u8(h, m2))), o32);
                const int8x16_t q4 = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(lb, 4), vandq_u8(vshrq_n_u8(h, 2), m2))), o32);
                acc = vmlaq_n_s32(acc, qm__vdot(zero, q1, vld1q_s8(q8 + 16 * k)), sc[k]);
                acc = vmlaq_n_s32(acc, qm__vdot(zero, q2, vld1q_s8(q8 + 32 + 16 * k)), sc[k + 2]);
                acc = vmlaq_n_s32(acc, qm__vdot(zero, q3, vld1q_s8(q8 + 64 + 16 * k)), sc[k + 4]);
                acc = vmlaq_n_s32(acc, qm__vdot(zero, q4, vld1q_s8(q8 + 96 + 16 * k)), sc[k + 6]);
            }
        }
        sumf += a[i].d * qm__h2f(w[i].d) * QM__CAST(float, vaddvq_s32(acc));
    }
    return sumf;
}


/* ---- the other block types (NEON) ------------------------------------------------------ */

/* 16 bytes of nibbles: low nibbles (elements 0-15) and high nibbles (16-31) */
static QM__INLINE void qm__nibbles_neon(const uint8_t *p, uint8x16_t *lo, uint8x16_t *hi) {
    const uint8x16_t b = vld1q_u8(p);
    *lo = vandq_u8(b, vdupq_n_u8(0x0f));
    *hi = vshrq_n_u8(b, 4);
}

/* fifth bits of Q5_0/Q5_1 as 0 or 16: elements 0-15 (*lo) and 16-31 (*hi) */
static QM__INLINE void qm__bits32_x16_neon(const uint8_t *qh, uint8x16_t *lo, uint8x16_t *hi) {
    static const uint8_t bit[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    const uint8x16_t b = vld1q_u8(bit), s16 = vdupq_n_u8(16);
    *lo = vandq_u8(vtstq_u8(vcombine_u8(vdup_n_u8(qh[0]), vdup_n_u8(qh[1])), b), s16);
    *hi = vandq_u8(vtstq_u8(vcombine_u8(vdup_n_u8(qh[2]), vdup_n_u8(qh[3])), b), s16);
}

/* sum(w*a) over one 32-element block, w given as two int8x16 */
static QM__INLINE int32x4_t qm__dot32_neon(int8x16_t w0, int8x16_t w1, const int8_t *a) {
    return qm__vdot(qm__vdot(vdupq_n_s32(0), w0, vld1q_s8(a)), w1, vld1q_s8(a + 16));
}

static float qm__dot_q4_0_q8_0_neon(int64_t n, const void *vw, const void *vx) {
    const qm__block_q4_0 *w = QM__CAST(const qm__block_q4_0 *, vw);
    const qm__block_q8_0 *a = QM__CAST(const qm__block_q8_0 *, vx);
    const int8x16_t eight = vdupq_n_s8(8);
    int64_t i, nb = n / 32;
    float32x4_t acc = vdupq_n_f32(0.0f);
    for (i = 0; i < nb; i++) {
        uint8x16_t lo, hi;
        qm__nibbles_neon(w[i].qs, &lo, &hi);
        acc = vfmaq_n_f32(acc,
                          vcvtq_f32_s32(qm__dot32_neon(vsubq_s8(vreinterpretq_s8_u8(lo), eight),
                                                       vsubq_s8(vreinterpretq_s8_u8(hi), eight), a[i].qs)),
                          qm__h2f(w[i].d) * qm__h2f(a[i].d));
    }
    return vaddvq_f32(acc);
}

static float qm__dot_q4_1_q8_0s_neon(int64_t n, const void *vw, const void *vx) {
    const qm__block_q4_1 *w = QM__CAST(const qm__block_q4_1 *, vw);
    const qm__block_q8_0s *a = QM__CAST(const qm__block_q8_0s *, vx);
    int64_t i, nb = n / 32;
    float32x4_t acc = vdupq_n_f32(0.0f);
    float summ = 0.0f;
    for (i = 0; i < nb; i++) {
        const float da = qm__h2f(a[i].d);
        uint8x16_t lo, hi;
        qm__nibbles_neon(w[i].qs, &lo, &hi);
        acc = vfmaq_n_f32(acc, vcvtq_f32_s32(qm__dot32_neon(vreinterpretq_s8_u8(lo), vreinterpretq_s8_u8(hi), a[i].qs)),
                          qm__h2f(w[i].d) * da);
        summ += qm__h2f(w[i].m) * (da * QM__CAST(float, a[i].sum));
    }
    return vaddvq_f32(acc) + summ;
}

static float qm__dot_q5_0_q8_0_neon(int64_t n, const void *vw, const void *vx) {
    const qm__block_q5_0 *w = QM__CAST(const qm__block_q5_0 *, vw);
    const qm__block_q8_0 *a = QM__CAST(const qm__block_q8_0 *, vx);
    const int8x16_t sixteen = vdupq_n_s8(16);
    int64_t i, nb = n / 32;
    float32x4_t acc = vdupq_n_f32(0.0f);
    for (i = 0; i < nb; i++) {
        uint8x16_t lo, hi, hl, hh;
        qm__nibbles_neon(w[i].qs, &lo, &hi);
        qm__bits32_x16_neon(w[i].qh, &hl, &hh);
        acc = vfmaq_n_f32(acc,
                          vcvtq_f32_s32(qm__dot32_neon(vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(lo, hl)), sixteen),
                                                       vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(hi, hh)), sixteen), a[i].qs)),
                          qm__h2f(w[i].d) * qm__h2f(a[i].d));
    }
    return vaddvq_f32(acc);
}

static float qm__dot_q5_1_q8_0s_neon(int64_t n, const void *vw, const void *vx) {
    const qm__block_q5_1 *w = QM__CAST(const qm__block_q5_1 *, vw);
    const qm__block_q8_0s *a = QM__CAST(const qm__block_q8_0s *, vx);
    int64_t i, nb = n / 32;
    float32x4_t acc = vdupq_n_f32(0.0f);
    float summ = 0.0f;
    for (i = 0; i < nb; i++) {
        const float da = qm__h2f(a[i].d);
        uint8x16_t lo, hi, hl, hh;
        qm__nibbles_neon(w[i].qs, &lo, &hi);
        qm__bits32_x16_neon(w[i].qh, &hl, &hh);
        acc = vfmaq_n_f32(acc,
                          vcvtq_f32_s32(qm__dot32_neon(vreinterpretq_s8_u8(vorrq_u8(lo, hl)), vreinterpretq_s8_u8(vorrq_u8(hi, hh)),
                                                       a[i].qs)),
                          qm__h2f(w[i].d) * da);
        summ += qm__h2f(w[i].m) * (da * QM__CAST(float, a[i].sum));
    }
    return vaddvq_f32(acc) + summ;
}

static float qm__dot_iq4_nl_q8_0_neon(int64_t n, const void *vw, const void *vx) {
    const qm__block_iq4_nl *w = QM__CAST(const qm__block_iq4_nl *, vw);
    const qm__block_q8_0 *a = QM__CAST(const qm__block_q8_0 *, vx);
    const int8x16_t kv = vld1q_s8(qm__kvalues_iq4nl);
    int64_t i, nb = n / 32;
    float32x4_t acc = vdupq_n_f32(0.0f);
    for (i = 0; i < nb; i++) {
        uint8x16_t lo, hi;
        qm__nibbles_neon(w[i].qs, &lo, &hi);
        acc = vfmaq_n_f32(acc, vcvtq_f32_s32(qm__dot32_neon(vqtbl1q_s8(kv, lo), vqtbl1q_s8(kv, hi), a[i].qs)),
                          qm__h2f(w[i].d) * qm__h2f(a[i].d));
    }
    return vaddvq_f32(acc);
}

static float qm__dot_iq4_xs_q8_K_neon(int64_t n, const void *vw, const void *vx) {
    const qm__block_iq4_xs *w = QM__CAST(const qm__block_iq4_xs *, vw);
    const qm__block_q8_K *a = QM__CAST(const qm__block_q8_K *, vx);
    const int8x16_t kv = vld1q_s8(qm__kvalues_iq4nl);
    int64_t i, nb = n / QM__QK_K;
    float sumf = 0.0f;
    int ib;
    for (i = 0; i < nb; i++) {
        int32x4_t acc = vdupq_n_s32(0);
        for (ib = 0; ib < 8; ib++) {
            const int ls = (((w[i].scales_l[ib / 2] >> (4 * (ib % 2))) & 0x0f) | (((w[i].scales_h >> (2 * ib)) & 3) << 4)) - 32;
            uint8x16_t lo, hi;
            qm__nibbles_neon(w[i].qs + 16 * ib, &lo, &hi);
            acc = vmlaq_n_s32(acc, qm__dot32_neon(vqtbl1q_s8(kv, lo), vqtbl1q_s8(kv, hi), a[i].qs + 32 * ib), ls);
        }
        sumf += a[i].d * qm__h2f(w[i].d) * QM__CAST(float, vaddvq_s32(acc));
    }
    return sumf;
}

/* Q2_K: group g (16 elements) = 16 bytes of (q >> shift) & 3, scale low nibble of scales[g] */
static float qm__dot_q2_K_q8_K_neon(int64_t n, const void *vw, const void *vx) {
    const qm__block_q2_K *w = QM__CAST(const qm__block_q2_K *, vw);
    const qm__block_q8_K *a = QM__CAST(const qm__block_q8_K *, vx);
    const uint8x16_t m2 = vdupq_n_u8(3);
    int64_t i, nb = n / QM__QK_K;
    float sumf = 0.0f;
    int h, k, g;
    for (i = 0; i < nb; i++) {
        const uint8_t *sc = w[i].scales;
        const int8_t *q8 = a[i].qs;
        const uint8x16_t sb = vld1q_u8(sc);
        const int16x8_t m0 = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(vshrq_n_u8(sb, 4))));
        const int16x8_t m1 = vreinterpretq_s16_u16(vmovl_u8(vget_high_u8(vshrq_n_u8(sb, 4))));
        const int16x8_t b0 = vld1q_s16(a[i].bsums), b1 = vld1q_s16(a[i].bsums + 8);
        int32x4_t acc = vdupq_n_s32(0), macc;
        macc = vmull_s16(vget_low_s16(b0), vget_low_s16(m0));
        macc = vmlal_s16(macc, vget_high_s16(b0), vget_high_s16(m0));
        macc = vmlal_s16(macc, vget_low_s16(b1), vget_low_s16(m1));
        macc = vmlal_s16(macc, vget_high_s16(b1), vget_high_s16(m1));
        for (h = 0; h < 2; h++) {
            uint8x16_t q[2];
            q[0] = vld1q_u8(w[i].qs + 32 * h);
            q[1] = vld1q_u8(w[i].qs + 32 * h + 16);
            for (k = 0; k < 4; k++) {
                for (g = 0; g < 2; g++, sc++, q8 += 16) {
                    const int8x16_t v = vreinterpretq_s8_u8(vandq_u8(q[g], m2));
                    acc = vmlaq_n_s32(acc, qm__vdot(vdupq_n_s32(0), v, vld1q_s8(q8)), *sc & 0x0f);
                    q[g] = vshrq_n_u8(q[g], 2);
                }
            }
        }
        sumf += a[i].d * qm__h2f(w[i].d) * QM__CAST(float, vaddvq_s32(acc)) -
                a[i].d * qm__h2f(w[i].dmin) * QM__CAST(float, vaddvq_s32(macc));
    }
    return sumf;
}

/* Q3_K: q = low2 | hbit << 2, minus 4; signed 6-bit group scales unpacked 4 at a time */
static float qm__dot_q3_K_q8_K_neon(int64_t n, const void *vw, const void *vx) {
    const qm__block_q3_K *w = QM__CAST(const qm__block_q3_K *, vw);
    const qm__block_q8_K *a = QM__CAST(const qm__block_q8_K *, vx);
    const uint8x16_t m2 = vdupq_n_u8(3), one = vdupq_n_u8(1);
    const int8x16_t four = vdupq_n_s8(4);
    int64_t i, nb = n / QM__QK_K;
    float sumf = 0.0f;
    int h, k, g, j;
    for (i = 0; i < nb; i++) {
        uint32_t u[3], r[4];
        int8_t sc[16];
        const int8_t *q8 = a[i].qs;
        uint8x16_t hm[2];
        int32x4_t acc = vdupq_n_s32(0);
        memcpy(u, w[i].scales, 12);
        r[0] = (u[0] & 0x0f0f0f0fu) | ((u[2] & 0x03030303u) << 4);
        r[1] = (u[1] & 0x0f0f0f0fu) | (((u[2] >> 2) & 0x03030303u) << 4);
        r[2] = ((u[0] >> 4) & 0x0f0f0f0fu) | (((u[2] >> 4) & 0x03030303u) << 4);
        r[3] = ((u[1] >> 4) & 0x0f0f0f0fu) | (((u[2] >> 6) & 0x03030303u) << 4);
        memcpy(sc, r, 16);
        for (j = 0; j < 16; j++) sc[j] = QM__CAST(int8_t, sc[j] - 32);
        hm[0] = vld1q_u8(w[i].hmask);
        hm[1] = vld1q_u8(w[i].hmask + 16);
        j = 0;
        for (h = 0; h < 2; h++) {
            uint8x16_t q[2];
            q[0] = vld1q_u8(w[i].qs + 32 * h);
            q[1] = vld1q_u8(w[i].qs + 32 * h + 16);
            for (k = 0; k < 4; k++) {
                for (g = 0; g < 2; g++, j++, q8 += 16) {
                    const uint8x16_t v = vorrq_u8(vandq_u8(q[g], m2), vshlq_n_u8(vandq_u8(hm[g], one), 2));
                    acc = vmlaq_n_s32(acc, qm__vdot(vdupq_n_s32(0), vsubq_s8(vreinterpretq_s8_u8(v), four), vld1q_s8(q8)), sc[j]);
                    q[g] = vshrq_n_u8(q[g], 2);
                    hm[g] = vshrq_n_u8(hm[g], 1);
                }
            }
        }
        sumf += a[i].d * qm__h2f(w[i].d) * QM__CAST(float, vaddvq_s32(acc));
    }
    return sumf;
}

/* ---- activation quantizers (byte for byte the plain ones) ---- */

static QM__INLINE float qm__absmax_neon(const float *x, int n) {
    float32x4_t m = vabsq_f32(vld1q_f32(x));
    int j;
    for (j = 4; j < n; j += 4) m = vmaxq_f32(m, vabsq_f32(vld1q_f32(x + j)));
    return vmaxvq_f32(m);
}

/* 4 x 4 int32 in -128..127 -> 16 int8 */
static QM__INLINE int8x16_t qm__narrow16_neon(int32x4_t a, int32x4_t b, int32x4_t c, int32x4_t d) {
    return vcombine_s8(vqmovn_s16(vcombine_s16(vqmovn_s32(a), vqmovn_s32(b))),
                       vqmovn_s16(vcombine_s16(vqmovn_s32(c), vqmovn_s32(d))));
}

/* Q8_0 block; vcvtaq rounds half away from zero, as roundf */
static QM__INLINE void qm__q8_0_block_neon(const float *x, uint16_t *dh, int8_t *qs) {
    const float amax = qm__absmax_neon(x, 32), d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
    int j;
    *dh = qm_fp32_to_fp16(d);
    for (j = 0; j < 32; j += 16)
        vst1q_s8(qs + j, qm__narrow16_neon(vcvtaq_s32_f32(vmulq_n_f32(vld1q_f32(x + j), id)),
                                            vcvtaq_s32_f32(vmulq_n_f32(vld1q_f32(x + j + 4), id)),
                                            vcvtaq_s32_f32(vmulq_n_f32(vld1q_f32(x + j + 8), id)),
                                            vcvtaq_s32_f32(vmulq_n_f32(vld1q_f32(x + j + 12), id))));
}

static void qm__quantize_row_q8_0_neon(const float *x, void *vy, int64_t n) {
    qm__block_q8_0 *y = QM__CAST(qm__block_q8_0 *, vy);
    int64_t i, nb = n / 32;
    for (i = 0; i < nb; i++, x += 32) qm__q8_0_block_neon(x, &y[i].d, y[i].qs);
}

static void qm__quantize_row_q8_0s_neon(const float *x, void *vy, int64_t n) {
    qm__block_q8_0s *y = QM__CAST(qm__block_q8_0s *, vy);
    int64_t i, nb = n / 32;
    for (i = 0; i < nb; i++, x += 32) {
        qm__q8_0_block_neon(x, &y[i].d, y[i].qs);
        y[i].sum = QM__CAST(int16_t, vaddlvq_s8(vld1q_s8(y[i].qs)) + vaddlvq_s8(vld1q_s8(y[i].qs + 16)));
    }
}

/* Q8_K block; vcvtnq rounds to nearest even, as nearest_int */
static void qm__quantize_row_q8_K_neon(const float *x, void *vy, int64_t n) {
    qm__block_q8_K *y = QM__CAST(qm__block_q8_K *, vy);
    const int32x4_t c127 = vdupq_n_s32(127);
    int64_t i, nb = n / QM__QK_K;
    int j;
    for (i = 0; i < nb; i++, x += QM__QK_K) {
        const float amax = qm__absmax_neon(x, QM__QK_K);
        float max = 0.0f, iscale;
        if (amax == 0.0f) {
            qm__quantize_row_q8_K(x, &y[i], QM__QK_K);
            continue;
        }
        for (j = 0; j < QM__QK_K; j++)
            if (qm__fabsf(x[j]) == amax) { max = x[j]; break; }
        iscale = -127.0f / max;
        for (j = 0; j < QM__QK_K; j += 16) {
            const int8x16_t q = qm__narrow16_neon(vminq_s32(vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + j), iscale)), c127),
                                                  vminq_s32(vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + j + 4), iscale)), c127),
                                                  vminq_s32(vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + j + 8), iscale)), c127),
                                                  vminq_s32(vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + j + 12), iscale)), c127));
            vst1q_s8(y[i].qs + j, q);
            y[i].bsums[j / 16] = QM__CAST(int16_t, vaddlvq_s8(q));
        }
        y[i].d = 1.0f / iscale;
    }
}

#endif /* QM__NEON */

/* ---- dispatch ------------------------------------------------------------------------- */

/* The kernel sets compiled in, for tests and benchmarks: variant 0 is the plain C code,
   1 the 256-bit x86 (AVX2) or NEON kernels, 2 the AVX-512 kernels. NULL where a variant
   has no kernel of its own for the type (or was not compiled). */
static QM__MAYBE_UNUSED qm__vec_dot_fn qm__vec_dot_variant(int wtype, int variant) {
    if (variant == 0) return qm__vec_dot_scalar_for(wtype);
#if defined(QM__X86)
    if (variant == 1) {
        switch (wtype) {
        case QM_TYPE_F32: return qm__dot_f32_f32_avx2;
        case QM_TYPE_F16: return qm__dot_f16_f32_avx2;
        case QM_TYPE_BF16: return qm__dot_bf16_f32_avx2;
        case QM_TYPE_Q8_0: return qm__dot_q8_0_q8_0_avx2;
        case QM_TYPE_Q4_K: return qm__dot_q4_K_q8_K_avx2;
        case QM_TYPE_Q5_K: return qm__dot_q5_K_q8_K_avx2;
        case QM_TYPE_Q6_K: return qm__dot_q6_K_q8_K_avx2;
        case QM_TYPE_Q4_0: return qm__dot_q4_0_q8_0_avx2;
        case QM_TYPE_Q4_1: return qm__dot_q4_1_q8_0s_avx2;
        case QM_TYPE_Q5_0: return qm__dot_q5_0_q8_0_avx2;
        case QM_TYPE_Q5_1: return qm__dot_q5_1_q8_0s_avx2;
        case QM_TYPE_IQ4_NL: return qm__dot_iq4_nl_q8_0_avx2;
        case QM_TYPE_IQ4_XS: return qm__dot_iq4_xs_q8_K_avx2;
        case QM_TYPE_Q2_K: return qm__dot_q2_K_q8_K_avx2;
        case QM_TYPE_Q3_K: return qm__dot_q3_K_q8_K_avx2;
        default: return NULL;
        }
    }
#endif
#if defined(QM__NEON)
    if (variant == 1) {
        switch (wtype) {
        case QM_TYPE_F32: return qm__dot_f32_f32_neon;
        case QM_TYPE_F16: return qm__dot_f16_f32_neon;
        case QM_TYPE_BF16: return qm__dot_bf16_f32_neon;
        case QM_TYPE_Q8_0: return qm__dot_q8_0_q8_0_neon;
        case QM_TYPE_Q4_K: return qm__dot_q4_K_q8_K_neon;
        case QM_TYPE_Q5_K: return qm__dot_q5_K_q8_K_neon;
        case QM_TYPE_Q6_K: return qm__dot_q6_K_q8_K_neon;
        case QM_TYPE_Q4_0: return qm__dot_q4_0_q8_0_neon;
        case QM_TYPE_Q4_1: return qm__dot_q4_1_q8_0s_neon;
        case QM_TYPE_Q5_0: return qm__dot_q5_0_q8_0_neon;
        case QM_TYPE_Q5_1: return qm__dot_q5_1_q8_0s_neon;
        case QM_TYPE_IQ4_NL: return qm__dot_iq4_nl_q8_0_neon;
        case QM_TYPE_IQ4_XS: return qm__dot_iq4_xs_q8_K_neon;
        case QM_TYPE_Q2_K: return qm__dot_q2_K_q8_K_neon;
        case QM_TYPE_Q3_K: return qm__dot_q3_K_q8_K_neon;
        default: return NULL;
        }
    }
#endif
#if defined(QM__AVX512)
    if (variant == 2) {
        switch (wtype) {
        case QM_TYPE_F16: return qm__dot_f16_f32_avx512;
        case QM_TYPE_BF16: return qm__dot_bf16_f32_avx512;
        case QM_TYPE_Q8_0: return qm__dot_q8_0_q8_0_avx512;
        case QM_TYPE_Q4_K: return qm__dot_q4_K_q8_K_avx512;
        case QM_TYPE_Q5_K: return qm__dot_q5_K_q8_K_avx512;
        case QM_TYPE_Q6_K: return qm__dot_q6_K_q8_K_avx512;
        default: return NULL;
        }
    }
#endif
    return NULL;
}

/* The best compiled kernel for a weight type. */
static qm__vec_dot_fn qm__vec_dot_for(int wtype) {
    qm__vec_dot_fn f = qm__vec_dot_variant(wtype, 2);
    if (!f) f = qm__vec_dot_variant(wtype, 1);
    if (!f) f = qm__vec_dot_variant(wtype, 0);
    return f;
}

static QM__MAYBE_UNUSED void qm__quantize_act(int wtype, const float *x, void *qx, int64_t n) {
    switch (qm__act_type(wtype)) {
    case QM_TYPE_F32: memcpy(qx, x, QM__CAST(size_t, n) * sizeof(float)); break;
#if defined(QM__X86)
    case QM_TYPE_Q8_0: qm__quantize_row_q8_0_avx2(x, qx, n); break;
    case QM__TYPE_Q8_0S: qm__quantize_row_q8_0s_avx2(x, qx, n); break;
    case QM_TYPE_Q8_K: qm__quantize_row_q8_K_avx2(x, qx, n); break;
#elif defined(QM__NEON)
    case QM_TYPE_Q8_0: qm__quantize_row_q8_0_neon(x, qx, n); break;
    case QM__TYPE_Q8_0S: qm__quantize_row_q8_0s_neon(x, qx, n); break;
    case QM_TYPE_Q8_K: qm__quantize_row_q8_K_neon(x, qx, n); break;
#else
    case QM_TYPE_Q8_0: qm__quantize_row_q8_0(x, qx, n); break;
    case QM__TYPE_Q8_0S: qm__quantize_row_q8_0s(x, qx, n); break;
    case QM_TYPE_Q8_K: qm__quantize_row_q8_K(x, qx, n); break;
#endif
    default: break;
    }
}

/* The plain C activation quantizers (qm__quantize_act gives the same bytes). */
static QM__MAYBE_UNUSED void qm__quantize_act_scalar(int wtype, const float *x, void *qx, int64_t n) {
    switch (qm__act_type(wtype)) {
    case QM_TYPE_F32: memcpy(qx, x, QM__CAST(size_t, n) * sizeof(float)); break;
    case QM_TYPE_Q8_0: qm__quantize_row_q8_0(x, qx, n); break;
    case QM__TYPE_Q8_0S: qm__quantize_row_q8_0s(x, qx, n); break;
    case QM_TYPE_Q8_K: qm__quantize_row_q8_K(x, qx, n); break;
    default: break;
    }
}

/* One weight row . one quantized activation row (0 for an unsupported type). */
static QM__MAYBE_UNUSED float qm__vec_dot(int wtype, int64_t n, const void *wrow, const void *qx) {
    qm__vec_dot_fn f = qm__vec_dot_for(wtype);
    return f ? f(n, wrow, qx) : 0.0f;
}

/* 4-token kernels: one weight row against 4 activation rows (NULL: none for the type) */
typedef void (*qm__vec_dot4_fn)(int64_t n, const void *w, const void *qx, size_t qx_stride, float *out);

static QM__MAYBE_UNUSED qm__vec_dot4_fn qm__vec_dot4_variant(int wtype, int variant) {
#if defined(QM__X86)
    if (variant == 1) {
        switch (wtype) {
        case QM_TYPE_Q4_K: return qm__dot4_q4_K_q8_K_avx2;
        case QM_TYPE_Q6_K: return qm__dot4_q6_K_q8_K_avx2;
        default: return NULL;
        }
    }
#endif
#if defined(QM__AVX512)
    if (variant == 2) {
        switch (wtype) {
        case QM_TYPE_Q4_K: return qm__dot4_q4_K_q8_K_avx512;
        case QM_TYPE_Q5_K: return qm__dot4_q5_K_q8_K_avx512;
        case QM_TYPE_Q6_K: return qm__dot4_q6_K_q8_K_avx512;
        default: return NULL;
        }
    }
#endif
    (void)wtype;
    (void)variant;
    return NULL;
}

static qm__vec_dot4_fn qm__vec_dot4_for(int wtype) {
    qm__vec_dot4_fn f = qm__vec_dot4_variant(wtype, 2);
    return f ? f : qm__vec_dot4_variant(wtype, 1);
}

/* One weight row against ntok activation rows qx_stride bytes apart:
   out[t * out_stride] = row . act row t. */
static QM__MAYBE_UNUSED void qm__vec_dot_ntok(int wtype, int64_t n, const void *wrow, const void *qx, size_t qx_stride,
                                              int ntok, float *out, size_t out_stride) {
    qm__vec_dot_fn f = qm__vec_dot_for(wtype);
    qm__vec_dot4_fn f4 = qm__vec_dot4_for(wtype);
    const uint8_t *q = QM__CAST(const uint8_t *, qx);
    int t = 0;
    if (f4) {
        float o[4];
        for (; t + 4 <= ntok; t += 4) {
            f4(n, wrow, q + qx_stride * QM__CAST(size_t, t), qx_stride, o);
            out[out_stride * QM__CAST(size_t, t)] = o[0];
            out[out_stride * QM__CAST(size_t, t + 1)] = o[1];
            out[out_stride * QM__CAST(size_t, t + 2)] = o[2];
            out[out_stride * QM__CAST(size_t, t + 3)] = o[3];
        }
    }
    for (; t < ntok; t++) out[out_stride * QM__CAST(size_t, t)] = f ? f(n, wrow, q + qx_stride * QM__CAST(size_t, t)) : 0.0f;
}

/* The matrix product for rows r0..r1-1 of a weight matrix (rows row_bytes apart from w) and
   T quantized activation rows (act_stride bytes apart from qx, see qm__act_row_bytes):
   y[t * ldy + r] = row r . activation row t. For T > 1 the rows go in blocks of 16 and the
   tokens in groups of 4 (4-token kernels where there are some), so that a block of weight
   rows stays in cache while every token passes over it and each decoded weight block
   serves 4 tokens. Threads split [r0, r1) among themselves. */
static QM__MAYBE_UNUSED void qm__matmul_rows(int wtype, int64_t n, const void *w, size_t row_bytes, int64_t r0, int64_t r1,
                                             const void *qx, size_t act_stride, int T, float *y, int64_t ldy) {
    qm__vec_dot_fn f = qm__vec_dot_for(wtype);
    qm__vec_dot4_fn f4 = qm__vec_dot4_for(wtype);
    const uint8_t *wb = QM__CAST(const uint8_t *, w), *xb = QM__CAST(const uint8_t *, qx);
    int64_t rb, r;
    int t;
    if (!f) return;
    if (T == 1) {
        for (r = r0; r < r1; r++) y[r] = f(n, wb + row_bytes * QM__CAST(size_t, r), qx);
        return;
    }
    for (rb = r0; rb < r1; rb += 16) {
        const int64_t re = rb + 16 < r1 ? rb + 16 : r1;
        t = 0;
        if (f4) {
            for (; t + 4 <= T; t += 4) {
                const uint8_t *xt = xb + act_stride * QM__CAST(size_t, t);
                for (r = rb; r < re; r++) {
                    float o[4];
                    f4(n, wb + row_bytes * QM__CAST(size_t, r), xt, act_stride, o);
                    y[t * ldy + r] = o[0];
                    y[(t + 1) * ldy + r] = o[1];
                    y[(t + 2) * ldy + r] = o[2];
                    y[(t + 3) * ldy + r] = o[3];
                }
            }
        }
        for (; t < T; t++) {
            const uint8_t *xt = xb + act_stride * QM__CAST(size_t, t);
            for (r = rb; r < re; r++) y[t * ldy + r] = f(n, wb + row_bytes * QM__CAST(size_t, r), xt);
        }
    }
}

/* nrows consecutive weight rows, row_stride bytes apart, each . the same activation row. */
static QM__MAYBE_UNUSED void qm__vec_dot_multi(int wtype, int64_t n, const void *wrow, size_t row_stride,
                                               int nrows, const void *qx, float *out) {
    qm__vec_dot_fn f = qm__vec_dot_for(wtype);
    const uint8_t *p = QM__CAST(const uint8_t *, wrow);
    int r;
    for (r = 0; r < nrows; r++, p += row_stride) out[r] = f ? f(n, p, qx) : 0.0f;
}
