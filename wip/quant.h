/* ------------------------------------------------------------------------------------- */
/*  quant: tensor types, block layouts, (de)quantization, fp16/bf16                       */
/*                                                                                       */
/*  Every routine here reproduces ggml's scalar reference code (ggml-quants.c             */
/*  dequantize_row_* and quantize_row_*_ref) operation for operation, so that results    */
/*  are bit-exact: same float expressions in the same order, the same "nearest_int"      */
/*  rounding trick, the same iterative scale searches. tools/check_ggml.c compares them  */
/*  against a real libggml-base.so.                                                      */
/*                                                                                       */
/*  Bit-exactness needs plain IEEE single-precision arithmetic with no contraction of    */
/*  a*b+c into fused multiply-adds (ggml's x86-64 reference build has none). Pragmas     */
/*  around the arithmetic part of this section (from "rounding helpers" to the end)      */
/*  turn contraction off: STDC FP_CONTRACT for clang; for gcc, which contracts in GNU    */
/*  modes on FMA targets (-march=native, aarch64), an optimize pragma, used only where   */
/*  FMA exists. The integer-only fp16/bf16 conversions stay outside, free to inline.     */
/*  An explicit -ffp-contract=fast or -ffast-math overrides this and loses exactness.    */
/* ------------------------------------------------------------------------------------- */

#if defined(__GNUC__) || defined(__clang__)
#define QM__MAYBE_UNUSED __attribute__((unused))
#else
#define QM__MAYBE_UNUSED
#endif

#define QM__QK_K 256           /* elements per K-quant super-block */
#define QM__GROUP_MAX_EPS 1e-15f

/* Compile-time check usable at file scope: an array of negative size fails to compile. */
#define QM__STATIC_ASSERT(name, cond) typedef char qm__static_assert_##name[(cond) ? 1 : -1]

/* ---- block layouts (little-endian, as stored in GGUF; fp16 fields as raw uint16) ---- */

typedef struct qm__block_q4_0 {
    uint16_t d;          /* fp16 scale */
    uint8_t qs[16];      /* x[j] low nibble of qs[j], x[j+16] high nibble; value = q - 8 */
} qm__block_q4_0;

typedef struct qm__block_q4_1 {
    uint16_t d, m;       /* fp16 scale and offset: value = d*q + m */
    uint8_t qs[16];
} qm__block_q4_1;

typedef struct qm__block_q5_0 {
    uint16_t d;
    uint8_t qh[4];       /* 5th bits, a little-endian u32: bit j belongs to element j */
    uint8_t qs[16];      /* value = q5 - 16 */
} qm__block_q5_0;

typedef struct qm__block_q5_1 {
    uint16_t d, m;
    uint8_t qh[4];
    uint8_t qs[16];
} qm__block_q5_1;

typedef struct qm__block_q8_0 {
    uint16_t d;
    int8_t qs[32];
} qm__block_q8_0;

typedef struct qm__block_q2_K {
    uint8_t scales[16];  /* per 16 elements: low nibble scale, high nibble min */
    uint8_t qs[64];      /* 2-bit quants, 4 per byte */
    uint16_t d, dmin;    /* fp16 super-block scales for the scales and the mins */
} qm__block_q2_K;

typedef struct qm__block_q3_K {
    uint8_t hmask[32];   /* high bit of each quant */
    uint8_t qs[64];      /* low 2 bits */
    uint8_t scales[12];  /* 16 6-bit scales, packed */
    uint16_t d;
} qm__block_q3_K;

typedef struct qm__block_q4_K {
    uint16_t d, dmin;
    uint8_t scales[12];  /* 8 6-bit scales and 8 6-bit mins, packed */
    uint8_t qs[128];
} qm__block_q4_K;

typedef struct qm__block_q5_K {
    uint16_t d, dmin;
    uint8_t scales[12];
    uint8_t qh[32];
    uint8_t qs[128];
} qm__block_q5_K;

typedef struct qm__block_q6_K {
    uint8_t ql[128];     /* low 4 bits */
    uint8_t qh[64];      /* high 2 bits */
    int8_t scales[16];   /* 8-bit scales, one per 16 elements */
    uint16_t d;
} qm__block_q6_K;

typedef struct qm__block_q8_K { /* activations for K-quant dot products */
    float d;             /* fp32, not fp16 */
    int8_t qs[256];
    int16_t bsums[16];   /* sum of each 16 consecutive quants */
} qm__block_q8_K;

typedef struct qm__block_iq4_nl {
    uint16_t d;
    uint8_t qs[16];      /* Q4_0 nibble layout, value = d * qm__kvalues_iq4nl[q] */
} qm__block_iq4_nl;

typedef struct qm__block_iq4_xs {
    uint16_t d;
    uint16_t scales_h;   /* high 2 bits of the 8 6-bit sub-block scales */
    uint8_t scales_l[4]; /* low 4 bits, two per byte */
    uint8_t qs[128];
} qm__block_iq4_xs;

QM__STATIC_ASSERT(q4_0, sizeof(qm__block_q4_0) == 18);
QM__STATIC_ASSERT(q4_1, sizeof(qm__block_q4_1) == 20);
QM__STATIC_ASSERT(q5_0, sizeof(qm__block_q5_0) == 22);
QM__STATIC_ASSERT(q5_1, sizeof(qm__block_q5_1) == 24);
QM__STATIC_ASSERT(q8_0, sizeof(qm__block_q8_0) == 34);
QM__STATIC_ASSERT(q2_K, sizeof(qm__block_q2_K) == 84);
QM__STATIC_ASSERT(q3_K, sizeof(qm__block_q3_K) == 110);
QM__STATIC_ASSERT(q4_K, sizeof(qm__block_q4_K) == 144);
QM__STATIC_ASSERT(q5_K, sizeof(qm__block_q5_K) == 176);
QM__STATIC_ASSERT(q6_K, sizeof(qm__block_q6_K) == 210);
QM__STATIC_ASSERT(q8_K, sizeof(qm__block_q8_K) == 292);
QM__STATIC_ASSERT(iq4_nl, sizeof(qm__block_iq4_nl) == 18);
QM__STATIC_ASSERT(iq4_xs, sizeof(qm__block_iq4_xs) == 136);

/* The 16 non-linear levels of IQ4_NL / IQ4_XS. */
static const int8_t qm__kvalues_iq4nl[16] = {
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113
};

/* ---- type table ----------------------------------------------------------------------- */

typedef struct qm__type_info {
    const char *name; /* NULL: id not defined by ggml (removed or never used) */
    int blck;         /* elements per block */
    int bytes;        /* bytes per block */
    int supported;    /* qwenmoe converts it */
} qm__type_info;

static const qm__type_info qm__types[QM_TYPE_COUNT] = {
    {"f32", 1, 4, 1},       {"f16", 1, 2, 1},        {"q4_0", 32, 18, 1},
    {"q4_1", 32, 20, 1},    {NULL, 0, 0, 0},         {NULL, 0, 0, 0}, /* 4, 5: q4_2, q4_3 */
    {"q5_0", 32, 22, 1},    {"q5_1", 32, 24, 1},     {"q8_0", 32, 34, 1},
    {"q8_1", 32, 36, 0},    {"q2_K", 256, 84, 1},    {"q3_K", 256, 110, 1},
    {"q4_K", 256, 144, 1},  {"q5_K", 256, 176, 1},   {"q6_K", 256, 210, 1},
    {"q8_K", 256, 292, 0},  {"iq2_xxs", 256, 66, 0}, {"iq2_xs", 256, 74, 0},
    {"iq3_xxs", 256, 98, 0}, {"iq1_s", 256, 50, 0},  {"iq4_nl", 32, 18, 1},
    {"iq3_s", 256, 110, 0}, {"iq2_s", 256, 82, 0},   {"iq4_xs", 256, 136, 1},
    {"i8", 1, 1, 0},        {"i16", 1, 2, 0},        {"i32", 1, 4, 0},
    {"i64", 1, 8, 0},       {"f64", 1, 8, 0},        {"iq1_m", 256, 56, 0},
    {"bf16", 1, 2, 1},
    {NULL, 0, 0, 0},        {NULL, 0, 0, 0},         {NULL, 0, 0, 0}, /* 31-33: repacked q4_0 */
    {"tq1_0", 256, 54, 0},  {"tq2_0", 256, 66, 0},
    {NULL, 0, 0, 0},        {NULL, 0, 0, 0},         {NULL, 0, 0, 0}, /* 36-38: repacked iq4_nl */
    {"mxfp4", 32, 17, 0},   {"nvfp4", 64, 36, 0},    {"q1_0", 128, 18, 0}
};

static const qm__type_info *qm__type_get(int type) {
    if (type < 0 || type >= QM_TYPE_COUNT || !qm__types[type].name) return NULL;
    return &qm__types[type];
}

QMDEF const char *qm_type_name(int type) {
    const qm__type_info *t = qm__type_get(type);
    return t ? t->name : NULL;
}

QMDEF int qm_type_block_elems(int type) {
    const qm__type_info *t = qm__type_get(type);
    return t ? t->blck : 0;
}

QMDEF int qm_type_block_bytes(int type) {
    const qm__type_info *t = qm__type_get(type);
    return t ? t->bytes : 0;
}

QMDEF int qm_type_supported(int type) {
    const qm__type_info *t = qm__type_get(type);
    return t ? t->supported : 0;
}

QMDEF size_t qm_type_row_bytes(int type, int64_t n) {
    const qm__type_info *t = qm__type_get(type);
    uint64_t nb, bytes;
    if (!t || n < 0 || n % t->blck != 0) return 0;
    nb = QM__CAST(uint64_t, n / t->blck);
    if (!qm__mul_u64(nb, QM__CAST(uint64_t, t->bytes), &bytes) || bytes > QM__CAST(uint64_t, SIZE_MAX))
        return 0;
    return QM__CAST(size_t, bytes);
}

/* ---- scalar conversions --------------------------------------------------------------- */

static float qm__f32_from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

static uint32_t qm__f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return u;
}

/* Exact. A NaN keeps its payload and comes out quiet (as ggml's and F16C's conversions). */
QMDEF float qm_fp16_to_fp32(uint16_t h) {
    uint32_t sign = QM__CAST(uint32_t, h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0x1f) /* inf, NaN */
        return qm__f32_from_bits(sign | 0x7f800000u | (m << 13) | (m ? 0x00400000u : 0u));
    if (e != 0) /* normal: rebias the exponent by 127 - 15 */
        return qm__f32_from_bits(sign | ((e + 112u) << 23) | (m << 13));
    if (m == 0) return qm__f32_from_bits(sign);
    e = 113; /* subnormal m * 2^-24: shift the leading one up to bit 10 */
    while (!(m & 0x400u)) { m <<= 1; e--; }
    return qm__f32_from_bits(sign | (e << 23) | ((m & 0x3ffu) << 13));
}

/* Round to nearest, ties to even; overflow gives inf; NaN gives the quiet NaN 0x7e00 with
   the sign kept (what ggml's portable conversion produces). */
QMDEF uint16_t qm_fp32_to_fp16(float f) {
    uint32_t w = qm__f32_bits(f);
    uint16_t sign = QM__CAST(uint16_t, (w >> 16) & 0x8000u);
    uint32_t a = w & 0x7fffffffu;
    if (a > 0x7f800000u) return QM__CAST(uint16_t, sign | 0x7e00u);
    if (a >= 0x477ff000u) return QM__CAST(uint16_t, sign | 0x7c00u); /* >= 65520: inf */
    if (a >= 0x38800000u) { /* normal half: drop 13 mantissa bits, rounding to even */
        uint32_t r = a + 0xfffu + ((a >> 13) & 1u);
        return QM__CAST(uint16_t, sign | ((r - 0x38000000u) >> 13));
    }
    if (a < 0x33000000u) return sign; /* <= 2^-25: rounds to (signed) zero */
    { /* subnormal half: value / 2^-24, rounded to even */
        uint32_t m = (a & 0x7fffffu) | 0x800000u;
        int shift = 126 - QM__CAST(int, a >> 23); /* 14..24 here */
        uint32_t q = m >> shift, rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1u))) q++;
        return QM__CAST(uint16_t, sign | q);
    }
}

QMDEF float qm_bf16_to_fp32(uint16_t h) {
    return qm__f32_from_bits(QM__CAST(uint32_t, h) << 16);
}

/* Round to nearest even; a NaN is truncated and forced quiet (ggml_compute_fp32_to_bf16). */
QMDEF uint16_t qm_fp32_to_bf16(float f) {
    uint32_t u = qm__f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return QM__CAST(uint16_t, (u >> 16) | 64u);
    return QM__CAST(uint16_t, (u + (0x7fffu + ((u >> 16) & 1u))) >> 16);
}

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__) && defined(__FP_FAST_FMAF)
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#endif

/* ---- rounding helpers shared by the quantizers ---------------------------------------- */

/* ggml's nearest_int: add 1.5*2^23 so that the FPU rounds to an integer (to even), then read
   the low mantissa bits. Meant for |f| < 2^22; outside that it is garbage, but the same
   garbage as ggml's. */
static int qm__nearest_int(float f) {
    float v = f + 12582912.0f;
    uint32_t i = qm__f32_bits(v);
    return QM__CAST(int, i & 0x007fffffu) - 0x00400000;
}

/* float -> int32 as the compiled reference does it on x86 (cvttss2si): truncation toward
   zero, and INT32_MIN for NaN and out-of-range values, where C would be undefined. */
static int32_t qm__ftoi(float f) {
    if (f >= -2147483648.0f && f < 2147483648.0f) return QM__CAST(int32_t, f);
    return QM__CAST(int32_t, -2147483647 - 1);
}

/* The low byte of v as a signed char, as a conversion to int8_t keeps it. */
static int qm__low_i8(int32_t v) {
    return QM__CAST(int, (QM__CAST(uint32_t, v) & 0xffu) ^ 0x80u) - 0x80;
}

/* ---- dequantization ------------------------------------------------------------------- */

static void qm__dequant_f32(const void *vx, float *y, int64_t n) {
    memcpy(y, vx, QM__CAST(size_t, n) * sizeof(float));
}

static void qm__dequant_f16(const void *vx, float *y, int64_t n) {
    const uint16_t *x = QM__CAST(const uint16_t *, vx);
    int64_t i;
    for (i = 0; i < n; i++) y[i] = qm_fp16_to_fp32(x[i]);
}

static void qm__dequant_bf16(const void *vx, float *y, int64_t n) {
    const uint16_t *x = QM__CAST(const uint16_t *, vx);
    int64_t i;
    for (i = 0; i < n; i++) y[i] = qm_bf16_to_fp32(x[i]);
}

static void qm__dequant_q4_0(const void *vx, float *y, int64_t n) {
    const qm__block_q4_0 *x = QM__CAST(const qm__block_q4_0 *, vx);
    int64_t i, nb = n / 32;
    int j;
    for (i = 0; i < nb; i++, y += 32) {
        const float d = qm_fp16_to_fp32(x[i].d);
        for (j = 0; j < 16; j++) {
            y[j] = QM__CAST(float, (x[i].qs[j] & 0x0f) - 8) * d;
            y[j + 16] = QM__CAST(float, (x[i].qs[j] >> 4) - 8) * d;
        }
    }
}

static void qm__dequant_q4_1(const void *vx, float *y, int64_t n) {
    const qm__block_q4_1 *x = QM__CAST(const qm__block_q4_1 *, vx);
    int64_t i, nb = n / 32;
    int j;
    for (i = 0; i < nb; i++, y += 32) {
        const float d = qm_fp16_to_fp32(x[i].d), m = qm_fp16_to_fp32(x[i].m);
        for (j = 0; j < 16; j++) {
            y[j] = QM__CAST(float, x[i].qs[j] & 0x0f) * d + m;
            y[j + 16] = QM__CAST(float, x[i].qs[j] >> 4) * d + m;
        }
    }
}

static uint32_t qm__load_u32le(const uint8_t *p) {
    return QM__CAST(uint32_t, p[0]) | (QM__CAST(uint32_t, p[1]) << 8) |
           (QM__CAST(uint32_t, p[2]) << 16) | (QM__CAST(uint32_t, p[3]) << 24);
}

static void qm__dequant_q5_0(const void *vx, float *y, int64_t n) {
    const qm__block_q5_0 *x = QM__CAST(const qm__block_q5_0 *, vx);
    int64_t i, nb = n / 32;
    int j;
    for (i = 0; i < nb; i++, y += 32) {
        const float d = qm_fp16_to_fp32(x[i].d);
        const uint32_t qh = qm__load_u32le(x[i].qh);
        for (j = 0; j < 16; j++) {
            const int h0 = QM__CAST(int, (qh >> j) & 1u) << 4;
            const int h1 = QM__CAST(int, (qh >> (j + 16)) & 1u) << 4;
            y[j] = QM__CAST(float, ((x[i].qs[j] & 0x0f) | h0) - 16) * d;
            y[j + 16] = QM__CAST(float, ((x[i].qs[j] >> 4) | h1) - 16) * d;
        }
    }
}

static void qm__dequant_q5_1(const void *vx, float *y, int64_t n) {
    const qm__block_q5_1 *x = QM__CAST(const qm__block_q5_1 *, vx);
    int64_t i, nb = n / 32;
    int j;
    for (i = 0; i < nb; i++, y += 32) {
        const float d = qm_fp16_to_fp32(x[i].d), m = qm_fp16_to_fp32(x[i].m);
        const uint32_t qh = qm__load_u32le(x[i].qh);
        for (j = 0; j < 16; j++) {
            const int h0 = QM__CAST(int, (qh >> j) & 1u) << 4;
            const int h1 = QM__CAST(int, (qh >> (j + 16)) & 1u) << 4;
            y[j] = QM__CAST(float, (x[i].qs[j] & 0x0f) | h0) * d + m;
            y[j + 16] = QM__CAST(float, (x[i].qs[j] >> 4) | h1) * d + m;
        }
    }
}

static void qm__dequant_q8_0(const void *vx, float *y, int64_t n) {
    const qm__block_q8_0 *x = QM__CAST(const qm__block_q8_0 *, vx);
    int64_t i, nb = n / 32;
    int j;
    for (i = 0; i < nb; i++, y += 32) {
        const float d = qm_fp16_to_fp32(x[i].d);
        for (j = 0; j < 32; j++) y[j] = QM__CAST(float, x[i].qs[j]) * d;
    }
}

/* Q2_K: 16 groups of 16. Each 128-element half reads 32 quant bytes four times (2-bit
   fields at shifts 0, 2, 4, 6); bytes 0-15 and 16-31 feed two different groups. */
static void qm__dequant_q2_K(const void *vx, float *y, int64_t n) {
    const qm__block_q2_K *x = QM__CAST(const qm__block_q2_K *, vx);
    int64_t i, nb = n / QM__QK_K;
    int half, shift, g, l;
    for (i = 0; i < nb; i++) {
        const float d = qm_fp16_to_fp32(x[i].d), dmin = qm_fp16_to_fp32(x[i].dmin);
        const uint8_t *sc = x[i].scales;
        for (half = 0; half < 2; half++) {
            const uint8_t *q = x[i].qs + 32 * half;
            for (shift = 0; shift < 8; shift += 2) {
                for (g = 0; g < 2; g++, sc++) {
                    const float dl = d * QM__CAST(float, *sc & 0x0f);
                    const float ml = dmin * QM__CAST(float, *sc >> 4);
                    for (l = 0; l < 16; l++)
                        *y++ = dl * QM__CAST(float, (q[16 * g + l] >> shift) & 3) - ml;
                }
            }
        }
    }
}

/* Q3_K scale j (0..15), 6 bits stored with +32: low nibble in scales[j] (j < 8) or the high
   nibble of scales[j-8]; bits 4-5 in scales[8 + j%4] at bit 2*(j/4). */
static int qm__q3_K_scale(const uint8_t *s, int j) {
    int lo = j < 8 ? (s[j] & 0x0f) : (s[j - 8] >> 4);
    int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    return (lo | (hi << 4)) - 32;
}

static void qm__dequant_q3_K(const void *vx, float *y, int64_t n) {
    const qm__block_q3_K *x = QM__CAST(const qm__block_q3_K *, vx);
    int64_t i, nb = n / QM__QK_K;
    int half, shift, g, l, is;
    for (i = 0; i < nb; i++) {
        const float d = qm_fp16_to_fp32(x[i].d);
        unsigned m = 1; /* hmask bit: one per (half, shift) step */
        is = 0;
        for (half = 0; half < 2; half++) {
            const uint8_t *q = x[i].qs + 32 * half;
            for (shift = 0; shift < 8; shift += 2, m <<= 1) {
                for (g = 0; g < 2; g++, is++) {
                    const float dl = d * QM__CAST(float, qm__q3_K_scale(x[i].scales, is));
                    for (l = 0; l < 16; l++) {
                        const int lo = (q[16 * g + l] >> shift) & 3;
                        const int v = lo - ((x[i].hmask[16 * g + l] & m) ? 0 : 4);
                        *y++ = dl * QM__CAST(float, v);
                    }
                }
            }
        }
    }
}

/* Q4_K/Q5_K: 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes. */
static void qm__k4_scale_min(int j, const uint8_t *q, int *sc, int *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

static void qm__dequant_q4_K(const void *vx, float *y, int64_t n) {
    const qm__block_q4_K *x = QM__CAST(const qm__block_q4_K *, vx);
    int64_t i, nb = n / QM__QK_K;
    int c, l, sc, m;
    for (i = 0; i < nb; i++) {
        const float d = qm_fp16_to_fp32(x[i].d), dmin = qm_fp16_to_fp32(x[i].dmin);
        const uint8_t *q = x[i].qs;
        for (c = 0; c < 4; c++, q += 32) { /* 64 elements: low nibbles, then high nibbles */
            float d1, m1, d2, m2;
            qm__k4_scale_min(2 * c, x[i].scales, &sc, &m);
            d1 = d * QM__CAST(float, sc);
            m1 = dmin * QM__CAST(float, m);
            qm__k4_scale_min(2 * c + 1, x[i].scales, &sc, &m);
            d2 = d * QM__CAST(float, sc);
            m2 = dmin * QM__CAST(float, m);
            for (l = 0; l < 32; l++) *y++ = d1 * QM__CAST(float, q[l] & 0x0f) - m1;
            for (l = 0; l < 32; l++) *y++ = d2 * QM__CAST(float, q[l] >> 4) - m2;
        }
    }
}

static void qm__dequant_q5_K(const void *vx, float *y, int64_t n) {
    const qm__block_q5_K *x = QM__CAST(const qm__block_q5_K *, vx);
    int64_t i, nb = n / QM__QK_K;
    int c, l, sc, m;
    for (i = 0; i < nb; i++) {
        const float d = qm_fp16_to_fp32(x[i].d), dmin = qm_fp16_to_fp32(x[i].dmin);
        const uint8_t *q = x[i].qs, *qh = x[i].qh;
        for (c = 0; c < 4; c++, q += 32) {
            const unsigned u1 = 1u << (2 * c), u2 = 2u << (2 * c);
            float d1, m1, d2, m2;
            qm__k4_scale_min(2 * c, x[i].scales, &sc, &m);
            d1 = d * QM__CAST(float, sc);
            m1 = dmin * QM__CAST(float, m);
            qm__k4_scale_min(2 * c + 1, x[i].scales, &sc, &m);
            d2 = d * QM__CAST(float, sc);
            m2 = dmin * QM__CAST(float, m);
            for (l = 0; l < 32; l++)
                *y++ = d1 * QM__CAST(float, (q[l] & 0x0f) + ((qh[l] & u1) ? 16 : 0)) - m1;
            for (l = 0; l < 32; l++)
                *y++ = d2 * QM__CAST(float, (q[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
        }
    }
}

static void qm__dequant_q6_K(const void *vx, float *y, int64_t n) {
    const qm__block_q6_K *x = QM__CAST(const qm__block_q6_K *, vx);
    int64_t i, nb = n / QM__QK_K;
    int half, l;
    for (i = 0; i < nb; i++) {
        const float d = qm_fp16_to_fp32(x[i].d);
        for (half = 0; half < 2; half++, y += 128) {
            const uint8_t *ql = x[i].ql + 64 * half, *qh = x[i].qh + 32 * half;
            const int8_t *sc = x[i].scales + 8 * half;
            for (l = 0; l < 32; l++) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = d * QM__CAST(float, sc[is]) * QM__CAST(float, q1);
                y[l + 32] = d * QM__CAST(float, sc[is + 2]) * QM__CAST(float, q2);
                y[l + 64] = d * QM__CAST(float, sc[is + 4]) * QM__CAST(float, q3);
                y[l + 96] = d * QM__CAST(float, sc[is + 6]) * QM__CAST(float, q4);
            }
        }
    }
}

static void qm__dequant_iq4_nl(const void *vx, float *y, int64_t n) {
    const qm__block_iq4_nl *x = QM__CAST(const qm__block_iq4_nl *, vx);
    int64_t i, nb = n / 32;
    int j;
    for (i = 0; i < nb; i++, y += 32) {
        const float d = qm_fp16_to_fp32(x[i].d);
        for (j = 0; j < 16; j++) {
            y[j] = d * QM__CAST(float, qm__kvalues_iq4nl[x[i].qs[j] & 0x0f]);
            y[j + 16] = d * QM__CAST(float, qm__kvalues_iq4nl[x[i].qs[j] >> 4]);
        }
    }
}

static void qm__dequant_iq4_xs(const void *vx, float *y, int64_t n) {
    const qm__block_iq4_xs *x = QM__CAST(const qm__block_iq4_xs *, vx);
    int64_t i, nb = n / QM__QK_K;
    int ib, j;
    for (i = 0; i < nb; i++) {
        const float d = qm_fp16_to_fp32(x[i].d);
        const uint8_t *qs = x[i].qs;
        for (ib = 0; ib < 8; ib++, y += 32, qs += 16) {
            const int ls = ((x[i].scales_l[ib / 2] >> (4 * (ib % 2))) & 0x0f) |
                           (((x[i].scales_h >> (2 * ib)) & 3) << 4);
            const float dl = d * QM__CAST(float, ls - 32);
            for (j = 0; j < 16; j++) {
                y[j] = dl * QM__CAST(float, qm__kvalues_iq4nl[qs[j] & 0x0f]);
                y[j + 16] = dl * QM__CAST(float, qm__kvalues_iq4nl[qs[j] >> 4]);
            }
        }
    }
}

/* ---- quantization: simple formats ----------------------------------------------------- */

static void qm__quantize_row_f32(const float *x, void *vy, int64_t n) {
    memcpy(vy, x, QM__CAST(size_t, n) * sizeof(float));
}

static void qm__quantize_row_f16(const float *x, void *vy, int64_t n) {
    uint16_t *y = QM__CAST(uint16_t *, vy);
    int64_t i;
    for (i = 0; i < n; i++) y[i] = qm_fp32_to_fp16(x[i]);
}

static void qm__quantize_row_bf16(const float *x, void *vy, int64_t n) {
    uint16_t *y = QM__CAST(uint16_t *, vy);
    int64_t i;
    for (i = 0; i < n; i++) y[i] = qm_fp32_to_bf16(x[i]);
}

/* Signed absolute maximum of n values: the first value of largest magnitude. */
static float qm__signed_absmax(const float *x, int n, float *amax_out) {
    float amax = 0.0f, max = 0.0f;
    int j;
    for (j = 0; j < n; j++) {
        if (amax < qm__fabsf(x[j])) {
            amax = qm__fabsf(x[j]);
            max = x[j];
        }
    }
    if (amax_out) *amax_out = amax;
    return max;
}

static void qm__minmax(const float *x, int n, float *min_out, float *max_out) {
    float mn = 3.40282347e+38f, mx = -3.40282347e+38f;
    int j;
    for (j = 0; j < n; j++) {
        if (x[j] < mn) mn = x[j];
        if (x[j] > mx) mx = x[j];
    }
    *min_out = mn;
    *max_out = mx;
}

/* Q4_0: d = -max/8 with max the signed absmax, so that max maps to level 0 (= -8). */
static void qm__quantize_row_q4_0(const float *x, void *vy, int64_t n) {
    qm__block_q4_0 *y = QM__CAST(qm__block_q4_0 *, vy);
    int64_t i, nb = n / 32;
    int j;
    for (i = 0; i < nb; i++, x += 32) {
        const float max = qm__signed_absmax(x, 32, NULL);
        const float d = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = qm_fp32_to_fp16(d);
        for (j = 0; j < 16; j++) {
            const int q0 = QM__MIN(15, qm__low_i8(qm__ftoi(x[j] * id + 8.5f)));
            const int q1 = QM__MIN(15, qm__low_i8(qm__ftoi(x[j + 16] * id + 8.5f)));
            y[i].qs[j] = QM__CAST(uint8_t, (q0 & 0xff) | ((q1 & 0xff) << 4));
        }
    }
}

/* Q4_1: d = (max - min)/15, m = min. */
static void qm__quantize_row_q4_1(const float *x, void *vy, int64_t n) {
    qm__block_q4_1 *y = QM__CAST(qm__block_q4_1 *, vy);
    int64_t i, nb = n / 32;
    int j;
    for (i = 0; i < nb; i++, x += 32) {
        float mn, mx, d, id;
        qm__minmax(x, 32, &mn, &mx);
        d = (mx - mn) / 15.0f;
        id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = qm_fp32_to_fp16(d);
        y[i].m = qm_fp32_to_fp16(mn);
        for (j = 0; j < 16; j++) {
            const int q0 = QM__MIN(15, qm__low_i8(qm__ftoi((x[j] - mn) * id + 0.5f)));
            const int q1 = QM__MIN(15, qm__low_i8(qm__ftoi((x[j + 16] - mn) * id + 0.5f)));
            y[i].qs[j] = QM__CAST(uint8_t, (q0 & 0xff) | ((q1 & 0xff) << 4));
        }
    }
}

static void qm__store_u32le(uint8_t *p, uint32_t v) {
    p[0] = QM__CAST(uint8_t, v);
    p[1] = QM__CAST(uint8_t, v >> 8);
    p[2] = QM__CAST(uint8_t, v >> 16);
    p[3] = QM__CAST(uint8_t, v >> 24);
}

/* Q5_0: d = -max/16; 5-bit levels 0..31, the 5th bits gathered in qh. */
static void qm__quantize_row_q5_0(const float *x, void *vy, int64_t n) {
    qm__block_q5_0 *y = QM__CAST(qm__block_q5_0 *, vy);
    int64_t i, nb = n / 32;
    int j;
    for (i = 0; i < nb; i++, x += 32) {
        const float max = qm__signed_absmax(x, 32, NULL);
        const float d = max / -16.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        uint32_t qh = 0;
        y[i].d = qm_fp32_to_fp16(d);
        for (j = 0; j < 16; j++) {
            const unsigned q0 =
                QM__CAST(unsigned, QM__MIN(31, qm__low_i8(qm__ftoi(x[j] * id + 16.5f)))) & 0xffu;
            const unsigned q1 =
                QM__CAST(unsigned, QM__MIN(31, qm__low_i8(qm__ftoi(x[j + 16] * id + 16.5f)))) & 0xffu;
            y[i].qs[j] = QM__CAST(uint8_t, (q0 & 0x0fu) | ((q1 & 0x0fu) << 4));
            qh |= ((q0 >> 4) & 1u) << j;
            qh |= ((q1 >> 4) & 1u) << (j + 16);
        }
        qm__store_u32le(y[i].qh, qh);
    }
}

/* Q5_1: d = (max - min)/31, m = min. */
static void qm__quantize_row_q5_1(const float *x, void *vy, int64_t n) {
    qm__block_q5_1 *y = QM__CAST(qm__block_q5_1 *, vy);
    int64_t i, nb = n / 32;
    int j;
    for (i = 0; i < nb; i++, x += 32) {
        float mn, mx, d, id;
        uint32_t qh = 0;
        qm__minmax(x, 32, &mn, &mx);
        d = (mx - mn) / 31.0f;
        id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = qm_fp32_to_fp16(d);
        y[i].m = qm_fp32_to_fp16(mn);
        for (j = 0; j < 16; j++) {
            const unsigned q0 = QM__CAST(uint32_t, qm__ftoi((x[j] - mn) * id + 0.5f)) & 0xffu;
            const unsigned q1 = QM__CAST(uint32_t, qm__ftoi((x[j + 16] - mn) * id + 0.5f)) & 0xffu;
            y[i].qs[j] = QM__CAST(uint8_t, (q0 & 0x0fu) | ((q1 & 0x0fu) << 4));
            qh |= ((q0 >> 4) & 1u) << j;
            qh |= ((q1 >> 4) & 1u) << (j + 16);
        }
        qm__store_u32le(y[i].qh, qh);
    }
}

/* Q8_0 (weights, and the activation format for Q4_0/Q5_0/Q8_0/IQ4_NL dot products):
   d = absmax/127, q = round(x/d) half away from zero. */
static void qm__quantize_row_q8_0(const float *x, void *vy, int64_t n) {
    qm__block_q8_0 *y = QM__CAST(qm__block_q8_0 *, vy);
    int64_t i, nb = n / 32;
    int j;
    for (i = 0; i < nb; i++, x += 32) {
        float amax = 0.0f, d, id;
        for (j = 0; j < 32; j++) {
            const float a = qm__fabsf(x[j]);
            amax = amax > a ? amax : a;
        }
        d = amax / 127.0f;
        id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = qm_fp32_to_fp16(d);
        for (j = 0; j < 32; j++)
            y[i].qs[j] = QM__CAST(int8_t, qm__low_i8(qm__ftoi(qm__roundf(x[j] * id))));
    }
}

/* Q8_K (activation format for K-quant and IQ4_XS dot products): fp32 d = -max/127 with max
   the signed absmax, q = nearest(x/d) capped at 127, and the 16 partial sums. */
static QM__MAYBE_UNUSED void qm__quantize_row_q8_K(const float *x, void *vy, int64_t n) {
    qm__block_q8_K *y = QM__CAST(qm__block_q8_K *, vy);
    int64_t i, nb = n / QM__QK_K;
    int j, l;
    for (i = 0; i < nb; i++, x += QM__QK_K) {
        float amax, max = qm__signed_absmax(x, QM__QK_K, &amax), iscale;
        if (amax == 0.0f) {
            memset(&y[i], 0, sizeof(y[i]));
            continue;
        }
        iscale = -127.0f / max;
        for (j = 0; j < QM__QK_K; j++) {
            const int v = qm__nearest_int(iscale * x[j]);
            y[i].qs[j] = QM__CAST(int8_t, qm__low_i8(QM__MIN(127, v)));
        }
        for (j = 0; j < QM__QK_K / 16; j++) {
            int sum = 0;
            for (l = 0; l < 16; l++) sum += y[i].qs[16 * j + l];
            y[i].bsums[j] = QM__CAST(int16_t, sum);
        }
        y[i].d = 1.0f / iscale;
    }
}

/* ---- K-quant scale searches (ggml's make_*_quants, same arithmetic) ------------------ */

/* Asymmetric fit x ~ scale*L + min (min <= 0), L in 0..nmax, minimizing the weighted
   squared (or absolute, use_mad) error: start from the min/max fit, then try nstep+1
   alternative scales (rmin + rdelta*is + nmax)/(max - min), each with a least-squares
   scale and min; keep the best. Returns the scale; *the_min receives -min. */
static float qm__make_qkx2_quants(int n, int nmax, const float *x, const float *w, uint8_t *L,
                                  float *the_min, uint8_t *Laux, float rmin, float rdelta,
                                  int nstep, int use_mad) {
    float mn = x[0], mx = x[0], sum_w = w[0], sum_x = sum_w * x[0];
    float iscale, scale, best_error = 0.0f;
    int i, is;
    for (i = 1; i < n; i++) {
        if (x[i] < mn) mn = x[i];
        if (x[i] > mx) mx = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (mn > 0) mn = 0;
    if (mx == mn) {
        for (i = 0; i < n; i++) L[i] = 0;
        *the_min = -mn;
        return 0.0f;
    }
    iscale = QM__CAST(float, nmax) / (mx - mn);
    scale = 1.0f / iscale;
    for (i = 0; i < n; i++) {
        const int l = qm__nearest_int(iscale * (x[i] - mn));
        float diff;
        L[i] = QM__CAST(uint8_t, QM__MAX(0, QM__MIN(nmax, l)));
        diff = scale * QM__CAST(float, L[i]) + mn - x[i];
        diff = use_mad ? qm__fabsf(diff) : diff * diff;
        best_error += w[i] * diff;
    }
    for (is = 0; is <= nstep; is++) {
        float sum_l = 0.0f, sum_l2 = 0.0f, sum_xl = 0.0f, D;
        iscale = (rmin + rdelta * QM__CAST(float, is) + QM__CAST(float, nmax)) / (mx - mn);
        for (i = 0; i < n; i++) {
            int l = qm__nearest_int(iscale * (x[i] - mn));
            float fl;
            l = QM__MAX(0, QM__MIN(nmax, l));
            Laux[i] = QM__CAST(uint8_t, l);
            fl = QM__CAST(float, l);
            sum_l += w[i] * fl;
            sum_l2 += w[i] * fl * fl;
            sum_xl += w[i] * fl * x[i];
        }
        D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            float cur_error = 0.0f;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            for (i = 0; i < n; i++) {
                float diff = this_scale * QM__CAST(float, Laux[i]) + this_min - x[i];
                diff = use_mad ? qm__fabsf(diff) : diff * diff;
                cur_error += w[i] * diff;
            }
            if (cur_error < best_error) {
                for (i = 0; i < n; i++) L[i] = Laux[i];
                best_error = cur_error;
                scale = this_scale;
                mn = this_min;
            }
        }
    }
    *the_min = -mn;
    return scale;
}

/* Symmetric fit x ~ scale*(L - nmax), L in 0..2*nmax-1, weights x^2 (ggml's make_qx_quants
   with rmse_type 1 and no importance weights): least-squares scale for the plain rounding
   at -nmax/max and at 18 nearby scales -(nmax + 0.1*is)/max; keep the best. */
static float qm__make_qx_quants(int n, int nmax, const float *x, int8_t *L) {
    float amax, max = qm__signed_absmax(x, n, &amax), iscale, sumlx = 0.0f, suml2 = 0.0f;
    float scale, best;
    int i, is;
    if (amax < QM__GROUP_MAX_EPS) {
        for (i = 0; i < n; i++) L[i] = 0;
        return 0.0f;
    }
    iscale = QM__CAST(float, -nmax) / max;
    for (i = 0; i < n; i++) {
        const int l = QM__MAX(-nmax, QM__MIN(nmax - 1, qm__nearest_int(iscale * x[i])));
        const float w = x[i] * x[i], fl = QM__CAST(float, l);
        L[i] = QM__CAST(int8_t, l + nmax);
        sumlx += w * x[i] * fl;
        suml2 += w * fl * fl;
    }
    scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
    best = scale * sumlx;
    for (is = -9; is <= 9; is++) {
        if (is == 0) continue;
        iscale = -(QM__CAST(float, nmax) + 0.1f * QM__CAST(float, is)) / max;
        sumlx = suml2 = 0.0f;
        for (i = 0; i < n; i++) {
            const int l = QM__MAX(-nmax, QM__MIN(nmax - 1, qm__nearest_int(iscale * x[i])));
            const float w = x[i] * x[i], fl = QM__CAST(float, l);
            sumlx += w * x[i] * fl;
            suml2 += w * fl * fl;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (i = 0; i < n; i++) {
                const int l = QM__MAX(-nmax, QM__MIN(nmax - 1, qm__nearest_int(iscale * x[i])));
                L[i] = QM__CAST(int8_t, l + nmax);
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Symmetric fit for Q3_K (make_q3_quants with do_rmse): round at -nmax/max, then up to 5
   passes of coordinate descent, each moving one level to its least-squares optimum when
   that improves sumlx^2/suml2 (weights x^2). L receives level + nmax. */
static float qm__make_q3_quants(int n, int nmax, const float *x, int8_t *L) {
    float amax, max = qm__signed_absmax(x, n, &amax), iscale, sumlx = 0.0f, suml2 = 0.0f;
    int i, itry;
    if (amax < QM__GROUP_MAX_EPS) {
        for (i = 0; i < n; i++) L[i] = 0;
        return 0.0f;
    }
    iscale = QM__CAST(float, -nmax) / max;
    for (i = 0; i < n; i++) {
        const int l = QM__MAX(-nmax, QM__MIN(nmax - 1, qm__nearest_int(iscale * x[i])));
        const float w = x[i] * x[i], fl = QM__CAST(float, l);
        L[i] = QM__CAST(int8_t, l);
        sumlx += w * x[i] * fl;
        suml2 += w * fl * fl;
    }
    for (itry = 0; itry < 5; itry++) {
        int n_changed = 0;
        for (i = 0; i < n; i++) {
            const float w = x[i] * x[i], fL = QM__CAST(float, L[i]);
            float slx = sumlx - w * x[i] * fL;
            if (slx > 0) {
                float sl2 = suml2 - w * fL * fL;
                int new_l = qm__nearest_int(x[i] * sl2 / slx);
                new_l = QM__MAX(-nmax, QM__MIN(nmax - 1, new_l));
                if (new_l != L[i]) {
                    const float fn = QM__CAST(float, new_l);
                    slx += w * x[i] * fn;
                    sl2 += w * fn * fn;
                    if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = QM__CAST(int8_t, new_l);
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed++;
                    }
                }
            }
        }
        if (!n_changed) break;
    }
    for (i = 0; i < n; i++) L[i] = QM__CAST(int8_t, L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* Pack 256 2-bit levels as Q2_K/Q3_K do: byte l of each 128-element half holds elements
   l, l+32, l+64, l+96 at bits 0, 2, 4, 6. */
static void qm__pack_2bit(const uint8_t *L, uint8_t *qs) {
    int j, l;
    for (j = 0; j < QM__QK_K; j += 128)
        for (l = 0; l < 32; l++)
            qs[j / 4 + l] = QM__CAST(uint8_t, L[j + l] | (L[j + l + 32] << 2) |
                                                  (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
}

/* ---- K-quant quantizers --------------------------------------------------------------- */

static void qm__quantize_row_q2_K(const float *x, void *vy, int64_t n) {
    qm__block_q2_K *y = QM__CAST(qm__block_q2_K *, vy);
    int64_t i, nb = n / QM__QK_K;
    uint8_t L[QM__QK_K], Laux[16];
    float weights[16], mins[16], scales[16];
    int j, l;
    for (i = 0; i < nb; i++, x += QM__QK_K) {
        float max_scale = 0.0f, max_min = 0.0f;
        for (j = 0; j < 16; j++) {
            for (l = 0; l < 16; l++) weights[l] = qm__fabsf(x[16 * j + l]);
            scales[j] = qm__make_qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux,
                                             -0.5f, 0.1f, 15, 1);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        if (max_scale > 0) {
            const float iscale = 15.0f / max_scale;
            for (j = 0; j < 16; j++)
                y[i].scales[j] = QM__CAST(uint8_t, qm__nearest_int(iscale * scales[j]) & 0xff);
            y[i].d = qm_fp32_to_fp16(max_scale / 15.0f);
        } else {
            for (j = 0; j < 16; j++) y[i].scales[j] = 0;
            y[i].d = qm_fp32_to_fp16(0.0f);
        }
        if (max_min > 0) {
            const float iscale = 15.0f / max_min;
            for (j = 0; j < 16; j++) {
                const uint32_t lm = QM__CAST(uint32_t, qm__nearest_int(iscale * mins[j]));
                y[i].scales[j] = QM__CAST(uint8_t, (y[i].scales[j] | (lm << 4)) & 0xffu);
            }
            y[i].dmin = qm_fp32_to_fp16(max_min / 15.0f);
        } else {
            y[i].dmin = qm_fp32_to_fp16(0.0f);
        }
        for (j = 0; j < 16; j++) { /* requantize against the stored (rounded) scales */
            const float d = qm_fp16_to_fp32(y[i].d) * QM__CAST(float, y[i].scales[j] & 0x0f);
            float dm;
            if (d == 0.0f) continue;
            dm = qm_fp16_to_fp32(y[i].dmin) * QM__CAST(float, y[i].scales[j] >> 4);
            for (l = 0; l < 16; l++) {
                const int q = qm__nearest_int((x[16 * j + l] + dm) / d);
                L[16 * j + l] = QM__CAST(uint8_t, QM__MAX(0, QM__MIN(3, q)));
            }
        }
        qm__pack_2bit(L, y[i].qs);
    }
}

static void qm__quantize_row_q3_K(const float *x, void *vy, int64_t n) {
    qm__block_q3_K *y = QM__CAST(qm__block_q3_K *, vy);
    int64_t i, nb = n / QM__QK_K;
    int8_t L[QM__QK_K];
    uint8_t U[QM__QK_K];
    float scales[16];
    int j, l;
    for (i = 0; i < nb; i++, x += QM__QK_K) {
        float max_scale = 0.0f, amax = 0.0f;
        for (j = 0; j < 16; j++) {
            scales[j] = qm__make_q3_quants(16, 4, x + 16 * j, L + 16 * j);
            if (qm__fabsf(scales[j]) > amax) {
                amax = qm__fabsf(scales[j]);
                max_scale = scales[j];
            }
        }
        memset(y[i].scales, 0, sizeof(y[i].scales));
        if (max_scale != 0.0f) {
            const float iscale = -32.0f / max_scale;
            for (j = 0; j < 16; j++) {
                int ls = qm__low_i8(qm__nearest_int(iscale * scales[j]));
                ls = QM__MAX(-32, QM__MIN(31, ls)) + 32; /* 6 bits: nibble + 2 high bits */
                if (j < 8) y[i].scales[j] = QM__CAST(uint8_t, ls & 0x0f);
                else y[i].scales[j - 8] = QM__CAST(uint8_t, y[i].scales[j - 8] | ((ls & 0x0f) << 4));
                y[i].scales[8 + j % 4] =
                    QM__CAST(uint8_t, y[i].scales[8 + j % 4] | ((ls >> 4) << (2 * (j / 4))));
            }
            y[i].d = qm_fp32_to_fp16(1.0f / iscale);
        } else {
            y[i].d = qm_fp32_to_fp16(0.0f);
        }
        for (j = 0; j < 16; j++) {
            const float d = qm_fp16_to_fp32(y[i].d) * QM__CAST(float, qm__q3_K_scale(y[i].scales, j));
            if (d == 0.0f) continue;
            for (l = 0; l < 16; l++) {
                const int q = qm__nearest_int(x[16 * j + l] / d);
                L[16 * j + l] = QM__CAST(int8_t, QM__MAX(-4, QM__MIN(3, q)) + 4);
            }
        }
        /* level 0..7: bit 2 goes to hmask (element j: byte j%32, bit j/32), bits 0-1 to qs */
        memset(y[i].hmask, 0, sizeof(y[i].hmask));
        for (j = 0; j < QM__QK_K; j++) {
            int v = L[j];
            if (v > 3) {
                y[i].hmask[j % 32] = QM__CAST(uint8_t, y[i].hmask[j % 32] | (1u << (j / 32)));
                v -= 4;
            }
            U[j] = QM__CAST(uint8_t, v);
        }
        qm__pack_2bit(U, y[i].qs);
    }
}

/* Store the 8 6-bit scales and mins of Q4_K/Q5_K (inverse of qm__k4_scale_min). */
static void qm__k4_pack_scales(uint8_t *s, const int *ls, const int *lm) {
    int j;
    for (j = 0; j < 8; j++) {
        if (j < 4) {
            s[j] = QM__CAST(uint8_t, ls[j]);
            s[j + 4] = QM__CAST(uint8_t, lm[j]);
        } else {
            s[j + 4] = QM__CAST(uint8_t, (ls[j] & 0x0f) | ((lm[j] & 0x0f) << 4));
            s[j - 4] = QM__CAST(uint8_t, s[j - 4] | ((ls[j] >> 4) << 6));
            s[j] = QM__CAST(uint8_t, s[j] | ((lm[j] >> 4) << 6));
        }
    }
}

/* Shared body of Q4_K (nmax 15) and Q5_K (nmax 31): per 32-element sub-block an asymmetric
   fit, the 8 scales and 8 mins quantized to 6 bits against their maxima, then every value
   requantized with the stored scales. L receives the final levels. */
static void qm__quantize_k4_block(const float *x, int nmax, float rmin, float rdelta, int nstep,
                                  uint16_t *d_out, uint16_t *dmin_out, uint8_t *s, uint8_t *L) {
    float weights[32], mins[8], scales[8];
    float max_scale = 0.0f, max_min = 0.0f, inv_scale, inv_min;
    uint8_t Laux[32];
    int ls[8], lm[8], j, l, sc, m;
    for (j = 0; j < 8; j++) {
        float sum_x2 = 0.0f, av_x;
        for (l = 0; l < 32; l++) sum_x2 += x[32 * j + l] * x[32 * j + l];
        av_x = qm__sqrtf(sum_x2 / 32.0f);
        for (l = 0; l < 32; l++) weights[l] = av_x + qm__fabsf(x[32 * j + l]);
        scales[j] = qm__make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux,
                                         rmin, rdelta, nstep, 0);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
    inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
    for (j = 0; j < 8; j++) { /* stored as uint8 (wrapping), then capped at 63 */
        ls[j] = QM__MIN(63, qm__nearest_int(inv_scale * scales[j]) & 0xff);
        lm[j] = QM__MIN(63, qm__nearest_int(inv_min * mins[j]) & 0xff);
    }
    qm__k4_pack_scales(s, ls, lm);
    *d_out = qm_fp32_to_fp16(max_scale / 63.0f);
    *dmin_out = qm_fp32_to_fp16(max_min / 63.0f);
    for (j = 0; j < 8; j++) {
        float d, dm;
        qm__k4_scale_min(j, s, &sc, &m);
        d = qm_fp16_to_fp32(*d_out) * QM__CAST(float, sc);
        if (d == 0.0f) continue;
        dm = qm_fp16_to_fp32(*dmin_out) * QM__CAST(float, m);
        for (l = 0; l < 32; l++) {
            const int q = qm__nearest_int((x[32 * j + l] + dm) / d);
            L[32 * j + l] = QM__CAST(uint8_t, QM__MAX(0, QM__MIN(nmax, q)));
        }
    }
}

static void qm__quantize_row_q4_K(const float *x, void *vy, int64_t n) {
    qm__block_q4_K *y = QM__CAST(qm__block_q4_K *, vy);
    int64_t i, nb = n / QM__QK_K;
    uint8_t L[QM__QK_K];
    int c, l;
    for (i = 0; i < nb; i++, x += QM__QK_K) {
        qm__quantize_k4_block(x, 15, -1.0f, 0.1f, 20, &y[i].d, &y[i].dmin, y[i].scales, L);
        for (c = 0; c < 4; c++)
            for (l = 0; l < 32; l++)
                y[i].qs[32 * c + l] = QM__CAST(uint8_t, L[64 * c + l] | (L[64 * c + 32 + l] << 4));
    }
}

static void qm__quantize_row_q5_K(const float *x, void *vy, int64_t n) {
    qm__block_q5_K *y = QM__CAST(qm__block_q5_K *, vy);
    int64_t i, nb = n / QM__QK_K;
    uint8_t L[QM__QK_K];
    int c, l;
    for (i = 0; i < nb; i++, x += QM__QK_K) {
        qm__quantize_k4_block(x, 31, -0.5f, 0.1f, 15, &y[i].d, &y[i].dmin, y[i].scales, L);
        memset(y[i].qh, 0, sizeof(y[i].qh));
        for (c = 0; c < 4; c++) {
            for (l = 0; l < 32; l++) {
                int l1 = L[64 * c + l], l2 = L[64 * c + 32 + l];
                if (l1 > 15) { l1 -= 16; y[i].qh[l] = QM__CAST(uint8_t, y[i].qh[l] | (1u << (2 * c))); }
                if (l2 > 15) { l2 -= 16; y[i].qh[l] = QM__CAST(uint8_t, y[i].qh[l] | (2u << (2 * c))); }
                y[i].qs[32 * c + l] = QM__CAST(uint8_t, l1 | (l2 << 4));
            }
        }
    }
}

static void qm__quantize_row_q6_K(const float *x, void *vy, int64_t n) {
    qm__block_q6_K *y = QM__CAST(qm__block_q6_K *, vy);
    int64_t i, nb = n / QM__QK_K;
    int8_t L[QM__QK_K];
    float scales[16];
    int j, l, half;
    for (i = 0; i < nb; i++, x += QM__QK_K) {
        float max_scale = 0.0f, max_abs_scale = 0.0f, iscale;
        for (j = 0; j < 16; j++) {
            scales[j] = qm__make_qx_quants(16, 32, x + 16 * j, L + 16 * j);
            if (qm__fabsf(scales[j]) > max_abs_scale) {
                max_abs_scale = qm__fabsf(scales[j]);
                max_scale = scales[j];
            }
        }
        if (max_abs_scale < QM__GROUP_MAX_EPS) {
            memset(&y[i], 0, sizeof(y[i]));
            continue;
        }
        iscale = -128.0f / max_scale;
        y[i].d = qm_fp32_to_fp16(1.0f / iscale);
        for (j = 0; j < 16; j++)
            y[i].scales[j] = QM__CAST(int8_t, qm__low_i8(QM__MIN(127, qm__nearest_int(iscale * scales[j]))));
        for (j = 0; j < 16; j++) {
            const float d = qm_fp16_to_fp32(y[i].d) * QM__CAST(float, y[i].scales[j]);
            if (d == 0.0f) continue;
            for (l = 0; l < 16; l++) {
                const int q = qm__nearest_int(x[16 * j + l] / d);
                L[16 * j + l] = QM__CAST(int8_t, QM__MAX(-32, QM__MIN(31, q)) + 32);
            }
        }
        for (half = 0; half < 2; half++) { /* layout: see qm__dequant_q6_K */
            const int8_t *Lh = L + 128 * half;
            uint8_t *ql = y[i].ql + 64 * half, *qh = y[i].qh + 32 * half;
            for (l = 0; l < 32; l++) {
                ql[l] = QM__CAST(uint8_t, (Lh[l] & 0x0f) | ((Lh[l + 64] & 0x0f) << 4));
                ql[l + 32] = QM__CAST(uint8_t, (Lh[l + 32] & 0x0f) | ((Lh[l + 96] & 0x0f) << 4));
                qh[l] = QM__CAST(uint8_t, (Lh[l] >> 4) | ((Lh[l + 32] >> 4) << 2) |
                                              ((Lh[l + 64] >> 4) << 4) | ((Lh[l + 96] >> 4) << 6));
            }
        }
    }
}

/* ---- IQ4_NL / IQ4_XS ------------------------------------------------------------------ */

/* Index of the IQ4 level nearest to x (ties go up), by the same comparisons as ggml's
   best_index_int8 in the reference build this matches. */
static int qm__iq4_best_index(float x) {
    const int8_t *val = qm__kvalues_iq4nl;
    int lo = 0, hi = 15;
    if (x <= val[0]) return 0;
    if (x >= val[15]) return 15;
    while (hi - lo > 1) {
        const int mid = (lo + hi) / 2;
        if (x < QM__CAST(float, val[mid])) hi = mid;
        else lo = mid;
    }
    return x - QM__CAST(float, val[hi - 1]) < QM__CAST(float, val[hi]) - x ? hi - 1 : hi;
}

/* Scale of one 32-element IQ4 sub-block (ggml's quantize_row_iq4_nl_impl, per block):
   weights x^2; round with d = +-max/127, take the least-squares scale, and (ntry > 0) try
   the scales (itry - 127)/max for itry in -ntry..ntry. L receives the first rounding. */
static float qm__iq4_block_scale(const float *xb, uint8_t *Lb, int ntry) {
    float amax, max = qm__signed_absmax(xb, 32, &amax), d, id, sumqx = 0.0f, sumq2 = 0.0f, best;
    int j, itry;
    if (amax < QM__GROUP_MAX_EPS) return 0.0f; /* Lb left as it was (see iq4_nl below) */
    d = ntry > 0 ? -max / -127.0f : max / -127.0f;
    id = 1.0f / d;
    for (j = 0; j < 32; j++) {
        const int l = qm__iq4_best_index(id * xb[j]);
        const float q = QM__CAST(float, qm__kvalues_iq4nl[l]), w = xb[j] * xb[j];
        Lb[j] = QM__CAST(uint8_t, l);
        sumqx += w * q * xb[j];
        sumq2 += w * q * q;
    }
    d = sumq2 > 0 ? sumqx / sumq2 : 0.0f;
    best = d * sumqx;
    for (itry = -ntry; itry <= ntry; itry++) {
        id = QM__CAST(float, itry - 127) / max;
        sumqx = sumq2 = 0.0f;
        for (j = 0; j < 32; j++) {
            const int l = qm__iq4_best_index(id * xb[j]);
            const float q = QM__CAST(float, qm__kvalues_iq4nl[l]), w = xb[j] * xb[j];
            sumqx += w * q * xb[j];
            sumq2 += w * q * q;
        }
        if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
            d = sumqx / sumq2;
            best = d * sumqx;
        }
    }
    return d;
}

/* IQ4_NL reference (quantize_row_iq4_nl_ref): one search per block, no retries, levels from
   the first rounding. A block with |x| < 1e-15 everywhere gets d = 0 and, in ggml, whatever
   levels its buffer held: the previous block's (uninitialized memory for the first block of
   a row). Those levels are multiplied by 0 and do not matter; here they are also carried
   over from the previous block, and start as 0 at the beginning of each row. */
static void qm__quantize_row_iq4_nl(const float *x, void *vy, int64_t n) {
    qm__block_iq4_nl *y = QM__CAST(qm__block_iq4_nl *, vy);
    int64_t i, nb = n / 32;
    uint8_t L[32];
    int j;
    memset(L, 0, sizeof(L));
    for (i = 0; i < nb; i++, x += 32) {
        const float d = qm__iq4_block_scale(x, L, -1);
        y[i].d = qm_fp32_to_fp16(d);
        for (j = 0; j < 16; j++) y[i].qs[j] = QM__CAST(uint8_t, L[j] | (L[j + 16] << 4));
    }
}

/* IQ4_XS reference (quantize_iq4_xs without importance weights): per 32-element sub-block
   scale search with 7 retries each way, 6-bit sub-block scales against d = -max_scale/32,
   then every value re-rounded with its stored sub-block scale. */
static void qm__quantize_row_iq4_xs(const float *x, void *vy, int64_t n) {
    qm__block_iq4_xs *y = QM__CAST(qm__block_iq4_xs *, vy);
    int64_t i, nb = n / QM__QK_K;
    uint8_t L[QM__QK_K];
    float scales[8];
    int ib, j;
    for (i = 0; i < nb; i++, x += QM__QK_K) {
        float max_scale = 0.0f, amax_scale = 0.0f, d, id;
        for (ib = 0; ib < 8; ib++) {
            scales[ib] = qm__iq4_block_scale(x + 32 * ib, L + 32 * ib, 7);
            if (qm__fabsf(scales[ib]) > amax_scale) {
                amax_scale = qm__fabsf(scales[ib]);
                max_scale = scales[ib];
            }
        }
        d = -max_scale / 32.0f;
        y[i].d = qm_fp32_to_fp16(d);
        id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].scales_h = 0;
        for (ib = 0; ib < 8; ib++) {
            int l = QM__MAX(-32, QM__MIN(31, qm__nearest_int(id * scales[ib])));
            const float dl = d * QM__CAST(float, l);
            const float idl = dl != 0.0f ? 1.0f / dl : 0.0f;
            for (j = 0; j < 32; j++) L[32 * ib + j] = QM__CAST(uint8_t, qm__iq4_best_index(idl * x[32 * ib + j]));
            l += 32;
            if (ib % 2 == 0) y[i].scales_l[ib / 2] = QM__CAST(uint8_t, l & 0x0f);
            else y[i].scales_l[ib / 2] = QM__CAST(uint8_t, y[i].scales_l[ib / 2] | ((l & 0x0f) << 4));
            y[i].scales_h = QM__CAST(uint16_t, y[i].scales_h | ((l >> 4) << (2 * ib)));
        }
        for (ib = 0; ib < 8; ib++)
            for (j = 0; j < 16; j++)
                y[i].qs[16 * ib + j] = QM__CAST(uint8_t, L[32 * ib + j] | (L[32 * ib + 16 + j] << 4));
    }
}

/* ---- row entry points ----------------------------------------------------------------- */

typedef void (*qm__dequant_fn)(const void *src, float *dst, int64_t n);
typedef void (*qm__quant_fn)(const float *src, void *dst, int64_t n);

static qm__dequant_fn qm__dequant_for(int type) {
    switch (type) {
    case QM_TYPE_F32: return qm__dequant_f32;
    case QM_TYPE_F16: return qm__dequant_f16;
    case QM_TYPE_BF16: return qm__dequant_bf16;
    case QM_TYPE_Q4_0: return qm__dequant_q4_0;
    case QM_TYPE_Q4_1: return qm__dequant_q4_1;
    case QM_TYPE_Q5_0: return qm__dequant_q5_0;
    case QM_TYPE_Q5_1: return qm__dequant_q5_1;
    case QM_TYPE_Q8_0: return qm__dequant_q8_0;
    case QM_TYPE_Q2_K: return qm__dequant_q2_K;
    case QM_TYPE_Q3_K: return qm__dequant_q3_K;
    case QM_TYPE_Q4_K: return qm__dequant_q4_K;
    case QM_TYPE_Q5_K: return qm__dequant_q5_K;
    case QM_TYPE_Q6_K: return qm__dequant_q6_K;
    case QM_TYPE_IQ4_NL: return qm__dequant_iq4_nl;
    case QM_TYPE_IQ4_XS: return qm__dequant_iq4_xs;
    default: return NULL;
    }
}

static qm__quant_fn qm__quant_for(int type) {
    switch (type) {
    case QM_TYPE_F32: return qm__quantize_row_f32;
    case QM_TYPE_F16: return qm__quantize_row_f16;
    case QM_TYPE_BF16: return qm__quantize_row_bf16;
    case QM_TYPE_Q4_0: return qm__quantize_row_q4_0;
    case QM_TYPE_Q4_1: return qm__quantize_row_q4_1;
    case QM_TYPE_Q5_0: return qm__quantize_row_q5_0;
    case QM_TYPE_Q5_1: return qm__quantize_row_q5_1;
    case QM_TYPE_Q8_0: return qm__quantize_row_q8_0;
    case QM_TYPE_Q2_K: return qm__quantize_row_q2_K;
    case QM_TYPE_Q3_K: return qm__quantize_row_q3_K;
    case QM_TYPE_Q4_K: return qm__quantize_row_q4_K;
    case QM_TYPE_Q5_K: return qm__quantize_row_q5_K;
    case QM_TYPE_Q6_K: return qm__quantize_row_q6_K;
    case QM_TYPE_IQ4_NL: return qm__quantize_row_iq4_nl;
    case QM_TYPE_IQ4_XS: return qm__quantize_row_iq4_xs;
    default: return NULL;
    }
}

/* Unsupported type: QM_ERR_UNSUPPORTED. n negative or not a whole number of blocks, or a
   NULL buffer for a non-empty row: QM_ERR_INVALID_ARG. */
static qm_result qm__row_check(int type, const void *a, const void *b, int64_t n) {
    if (!qm_type_supported(type)) return QM_ERR_UNSUPPORTED;
    if (n < 0 || n % qm__types[type].blck != 0) return QM_ERR_INVALID_ARG;
    if (n > 0 && (!a || !b)) return QM_ERR_INVALID_ARG;
    return QM_OK;
}

QMDEF qm_result qm_dequantize_row(int type, const void *src, float *dst, int64_t n) {
    qm_result r = qm__row_check(type, src, dst, n);
    if (r != QM_OK || n == 0) return r;
    qm__dequant_for(type)(src, dst, n);
    return QM_OK;
}

QMDEF qm_result qm_quantize_row(int type, const float *src, void *dst, int64_t n) {
    qm_result r = qm__row_check(type, src, dst, n);
    if (r != QM_OK || n == 0) return r;
    qm__quant_for(type)(src, dst, n);
    return QM_OK;
}

#if defined(__clang__)
#pragma STDC FP_CONTRACT DEFAULT
#elif defined(__GNUC__) && defined(__FP_FAST_FMAF)
#pragma GCC pop_options
#endif
