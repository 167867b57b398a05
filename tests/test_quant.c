/* test_quant: tensor types, block layouts, (de)quantization, fp16/bf16.

   (a) hand-built blocks of every supported type, with the expected values worked out here
       from the format definition (byte offsets and bit positions written out below, not
       taken from the implementation);
   (b) quantize -> dequantize round trips on gaussian data, with error bounds, and exact
       round trips for F32 and for values that F16/BF16 represent;
   (c) the type table (names, sizes, row bytes, support) and argument rejection.
   Bit-exactness against ggml itself is checked by tools/check_ggml.c. */
#define QWENMOE_IMPLEMENTATION
#include "qwenmoe.h"
#include "tests/qmtest.h"

static const int8_t kv_iq4[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

/* fp16 constants used as block scales (IEEE binary16 bit patterns) */
#define H_0_125 0x3000 /* 0.125 */
#define H_0_25 0x3400
#define H_0_5 0x3800
#define H_1 0x3c00
#define H_2 0x4000
#define H_M1 0xbc00 /* -1 */

static void put16(uint8_t *b, int off, uint16_t v) {
    b[off] = (uint8_t)(v & 0xff);
    b[off + 1] = (uint8_t)(v >> 8);
}

static uint32_t fbits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bitsf(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Dequantize one block of `type` and compare with expected[] exactly. */
static void expect_block(int type, const uint8_t *blk, const double *expected, const char *what) {
    float y[256];
    int n = qm_type_block_elems(type), i, bad = 0, first = -1;
    qm_result r = qm_dequantize_row(type, blk, y, n);
    CHECK(r == QM_OK, "%s: dequantize returned %d", what, (int)r);
    for (i = 0; i < n; i++) {
        if ((double)y[i] != expected[i]) {
            if (first < 0) first = i;
            bad++;
        }
    }
    CHECK(bad == 0, "%s: %d of %d values differ; first at %d: got %.9g want %.9g", what, bad, n,
          first, first >= 0 ? (double)y[first] : 0.0, first >= 0 ? expected[first] : 0.0);
}

/* ---- (a) hand-built blocks ------------------------------------------------------------ */

static void test_q4_0(void) {
    /* 18 bytes: fp16 d at 0, then 16 bytes; element j (j < 16) is the low nibble of byte
       2+j, element j+16 its high nibble; value (q - 8) * d. */
    uint8_t b[18];
    double e[32];
    int j;
    put16(b, 0, H_0_5);
    for (j = 0; j < 16; j++) {
        const int lo = j, hi = 15 - j;
        b[2 + j] = (uint8_t)(lo | (hi << 4));
        e[j] = (lo - 8) * 0.5;
        e[j + 16] = (hi - 8) * 0.5;
    }
    expect_block(QM_TYPE_Q4_0, b, e, "q4_0 d=0.5 nibbles 0..15");
}

static void test_q4_1(void) {
    /* 20 bytes: d at 0, m at 2, nibbles at 4..19; value q*d + m */
    uint8_t b[20];
    double e[32];
    int j;
    put16(b, 0, H_0_25);
    put16(b, 2, H_M1);
    for (j = 0; j < 16; j++) {
        const int lo = (j * 5) % 16, hi = (j * 3 + 7) % 16;
        b[4 + j] = (uint8_t)(lo | (hi << 4));
        e[j] = lo * 0.25 - 1.0;
        e[j + 16] = hi * 0.25 - 1.0;
    }
    expect_block(QM_TYPE_Q4_1, b, e, "q4_1 d=0.25 m=-1");
}

static void test_q5(void) {
    /* Q5_0, 22 bytes: d at 0, qh (LE u32) at 2, nibbles at 6..21; bit k of qh is the 5th bit
       of element k; value (q5 - 16) * d.  Q5_1, 24 bytes: d, m, qh at 4, nibbles at 8; q5*d + m. */
    uint8_t b0[22], b1[24];
    double e0[32], e1[32];
    uint32_t qh = 0;
    int k;
    int q[32];
    for (k = 0; k < 32; k++) q[k] = (k * 11 + 5) % 32; /* every level 0..31 appears */
    for (k = 0; k < 32; k++) qh |= (uint32_t)(q[k] >> 4) << k;
    put16(b0, 0, H_1);
    put16(b1, 0, H_0_5);
    put16(b1, 2, H_2);
    for (k = 0; k < 4; k++) {
        b0[2 + k] = (uint8_t)(qh >> (8 * k));
        b1[4 + k] = (uint8_t)(qh >> (8 * k));
    }
    for (k = 0; k < 16; k++) {
        b0[6 + k] = b1[8 + k] = (uint8_t)((q[k] & 15) | ((q[k + 16] & 15) << 4));
    }
    for (k = 0; k < 32; k++) {
        e0[k] = (q[k] - 16) * 1.0;
        e1[k] = q[k] * 0.5 + 2.0;
    }
    expect_block(QM_TYPE_Q5_0, b0, e0, "q5_0 d=1 all 32 levels");
    expect_block(QM_TYPE_Q5_1, b1, e1, "q5_1 d=0.5 m=2");
}

static void test_q8_0(void) {
    /* 34 bytes: d, then 32 int8 */
    uint8_t b[34];
    double e[32];
    int j;
    put16(b, 0, H_0_125);
    for (j = 0; j < 32; j++) {
        const int v = j * 8 - 128; /* -128 .. 120 */
        b[2 + j] = (uint8_t)(v & 0xff);
        e[j] = v * 0.125;
    }
    expect_block(QM_TYPE_Q8_0, b, e, "q8_0 d=0.125");
}

static void test_q2_K(void) {
    /* 84 bytes: scales[16] at 0 (low nibble scale, high nibble min, one byte per 16
       elements), qs[64] at 16, d at 80, dmin at 82. Element e: half h = e/128, r = e%128;
       2-bit field at bit 2*(r/32) of qs byte 32*h + r%32. Value d*sc*q - dmin*m. */
    uint8_t b[84];
    double e[256];
    int i, g;
    memset(b, 0, sizeof(b));
    for (g = 0; g < 16; g++) b[g] = (uint8_t)(g | ((15 - g) << 4));
    put16(b, 80, H_2);
    put16(b, 82, H_0_5);
    for (i = 0; i < 256; i++) {
        const int q = (i * 7 + i / 32) % 4, h = i / 128, r = i % 128;
        b[16 + 32 * h + r % 32] |= (uint8_t)(q << (2 * (r / 32)));
        g = i / 16;
        e[i] = 2.0 * g * q - 0.5 * (15 - g);
    }
    expect_block(QM_TYPE_Q2_K, b, e, "q2_K");
}

static void test_q3_K(void) {
    /* 110 bytes: hmask[32] at 0, qs[64] at 32, scales[12] at 96, d at 108.
       Level u = q + 4 in 0..7: bit 2 of u in hmask[e%32] bit e/32; bits 0-1 in qs like Q2_K.
       16 scales s_j in -32..31 stored as s_j + 32 (6 bits): low 4 bits in the low nibble of
       scales[j] (j < 8) or the high nibble of scales[j-8]; top 2 bits in scales[8 + j%4] at
       bit 2*(j/4). Value d * s_j * q. */
    uint8_t b[110];
    double e[256];
    int s[16], i, j;
    memset(b, 0, sizeof(b));
    for (j = 0; j < 16; j++) s[j] = (j * 13) % 64 - 32; /* -32..31, odd packing exercised */
    s[5] = 31;
    s[10] = -32;
    for (j = 0; j < 16; j++) {
        const int v = s[j] + 32;
        if (j < 8) b[96 + j] |= (uint8_t)(v & 15);
        else b[96 + j - 8] |= (uint8_t)((v & 15) << 4);
        b[96 + 8 + j % 4] |= (uint8_t)((v >> 4) << (2 * (j / 4)));
    }
    put16(b, 108, H_0_5);
    for (i = 0; i < 256; i++) {
        const int q = (i * 5 + i / 64) % 8 - 4, u = q + 4, h = i / 128, r = i % 128;
        if (u & 4) b[i % 32] |= (uint8_t)(1 << (i / 32));
        b[32 + 32 * h + r % 32] |= (uint8_t)((u & 3) << (2 * (r / 32)));
        e[i] = 0.5 * s[i / 16] * q;
    }
    expect_block(QM_TYPE_Q3_K, b, e, "q3_K");
}

/* 8 6-bit scales and mins in the 12 bytes of Q4_K/Q5_K: for j < 4 bytes j and j+4 hold
   scale and min (low 6 bits); for j >= 4 byte j+4 holds the low nibbles (scale low, min
   high) and the top 2 bits go to bits 6-7 of bytes j-4 (scale) and j (min). */
static void pack_k4_scales(uint8_t *p, const int *sc, const int *mn) {
    int j;
    memset(p, 0, 12);
    for (j = 0; j < 8; j++) {
        if (j < 4) {
            p[j] |= (uint8_t)sc[j];
            p[j + 4] |= (uint8_t)mn[j];
        } else {
            p[j + 4] = (uint8_t)((sc[j] & 15) | ((mn[j] & 15) << 4));
            p[j - 4] |= (uint8_t)((sc[j] >> 4) << 6);
            p[j] |= (uint8_t)((mn[j] >> 4) << 6);
        }
    }
}

static void test_q4_K_q5_K(void) {
    /* Q4_K, 144 bytes: d at 0, dmin at 2, scales[12] at 4, qs[128] at 16. Sub-block j of 32:
       chunk c = j/2 uses qs bytes 32c..32c+31, low nibbles for even j, high for odd.
       Q5_K, 176 bytes: d, dmin, scales[12], qh[32] at 16, qs[128] at 48; element 32j + l
       has its 5th bit at bit j of qh[l]. Value d*sc_j*q - dmin*m_j. */
    uint8_t b4[144], b5[176];
    double e4[256], e5[256];
    int sc[8] = {1, 63, 17, 32, 48, 5, 63, 20}, mn[8] = {0, 7, 63, 16, 33, 62, 1, 47};
    int i;
    memset(b4, 0, sizeof(b4));
    memset(b5, 0, sizeof(b5));
    put16(b4, 0, H_0_5);
    put16(b4, 2, H_0_25);
    put16(b5, 0, H_0_5);
    put16(b5, 2, H_0_25);
    pack_k4_scales(b4 + 4, sc, mn);
    pack_k4_scales(b5 + 4, sc, mn);
    for (i = 0; i < 256; i++) {
        const int j = i / 32, l = i % 32, c = j / 2;
        const int q4 = (i * 7 + j) % 16, q5 = (i * 13 + 3 * j) % 32;
        b4[16 + 32 * c + l] |= (uint8_t)(j % 2 ? q4 << 4 : q4);
        b5[48 + 32 * c + l] |= (uint8_t)(j % 2 ? (q5 & 15) << 4 : (q5 & 15));
        b5[16 + l] |= (uint8_t)((q5 >> 4) << j);
        e4[i] = 0.5 * sc[j] * q4 - 0.25 * mn[j];
        e5[i] = 0.5 * sc[j] * q5 - 0.25 * mn[j];
    }
    expect_block(QM_TYPE_Q4_K, b4, e4, "q4_K");
    expect_block(QM_TYPE_Q5_K, b5, e5, "q5_K");
}

static void test_q6_K(void) {
    /* 210 bytes: ql[128] at 0, qh[64] at 128, int8 scales[16] at 192, d at 208.
       Element e: half h = e/128, r = e%128, k = r/32, l = r%32. Low 4 bits: byte
       ql[64h + l + 32*(k%2)], low nibble for k < 2, high nibble for k >= 2. High 2 bits:
       qh[32h + l] at bit 2k. Scale scales[8h + l/16 + 2k]. Value d * scale * (u - 32). */
    uint8_t b[210];
    double e[256];
    int sc[16], i;
    memset(b, 0, sizeof(b));
    for (i = 0; i < 16; i++) sc[i] = (i * 37) % 256 - 128; /* includes -128 and positives */
    for (i = 0; i < 16; i++) b[192 + i] = (uint8_t)(sc[i] & 0xff);
    put16(b, 208, H_0_125);
    for (i = 0; i < 256; i++) {
        const int u = (i * 29 + 11) % 64, h = i / 128, r = i % 128, k = r / 32, l = r % 32;
        b[64 * h + l + 32 * (k % 2)] |= (uint8_t)(k < 2 ? (u & 15) : (u & 15) << 4);
        b[128 + 32 * h + l] |= (uint8_t)((u >> 4) << (2 * k));
        e[i] = 0.125 * sc[8 * h + l / 16 + 2 * k] * (u - 32);
    }
    expect_block(QM_TYPE_Q6_K, b, e, "q6_K");
}

static void test_iq4(void) {
    /* IQ4_NL, 18 bytes: d, then Q4_0's nibble layout; value d * kvalues[q].
       IQ4_XS, 136 bytes: d at 0, scales_h (u16) at 2, scales_l[4] at 4, qs[128] at 8. Sub-block
       ib (32 elements, 16 bytes of qs, Q4_0 nibble layout) has 6-bit scale ls: low 4 bits in
       scales_l[ib/2] (low nibble for even ib), top 2 bits at bit 2*ib of scales_h;
       value d * (ls - 32) * kvalues[q]. */
    uint8_t bn[18], bx[136];
    double en[32], ex[256];
    int ls[8] = {0, 63, 32, 31, 33, 16, 47, 1}, j, ib;
    uint16_t sh = 0;
    put16(bn, 0, H_0_5);
    for (j = 0; j < 16; j++) {
        const int lo = j, hi = (j * 7 + 2) % 16;
        bn[2 + j] = (uint8_t)(lo | (hi << 4));
        en[j] = 0.5 * kv_iq4[lo];
        en[j + 16] = 0.5 * kv_iq4[hi];
    }
    expect_block(QM_TYPE_IQ4_NL, bn, en, "iq4_nl d=0.5 all levels");

    memset(bx, 0, sizeof(bx));
    put16(bx, 0, H_0_25);
    for (ib = 0; ib < 8; ib++) {
        bx[4 + ib / 2] |= (uint8_t)((ls[ib] & 15) << (4 * (ib % 2)));
        sh = (uint16_t)(sh | ((ls[ib] >> 4) << (2 * ib)));
        for (j = 0; j < 16; j++) {
            const int lo = (j + ib) % 16, hi = (j * 3 + ib) % 16;
            bx[8 + 16 * ib + j] = (uint8_t)(lo | (hi << 4));
            ex[32 * ib + j] = 0.25 * (ls[ib] - 32) * kv_iq4[lo];
            ex[32 * ib + 16 + j] = 0.25 * (ls[ib] - 32) * kv_iq4[hi];
        }
    }
    put16(bx, 2, sh);
    expect_block(QM_TYPE_IQ4_XS, bx, ex, "iq4_xs scales_h/scales_l");
}

static void test_float_blocks(void) {
    static const uint16_t h[8] = {0x3c00, 0xc000, 0x7bff, 0x0001, 0x0400, 0x3555, 0x8000, 0x3bff};
    static const double hv[8] = {1.0, -2.0, 65504.0, 5.9604644775390625e-08, 6.103515625e-05,
                                 0.333251953125, -0.0, 0.99951171875};
    static const uint16_t bf[4] = {0x3f80, 0xc0a0, 0x4049, 0x0001};
    static const double bv[4] = {1.0, -5.0, 3.140625, 9.183549615799121e-41};
    float y[8], f[3] = {1.5f, -0.0f, 3.4028234663852886e38f};
    uint8_t raw[16];
    int i;
    memcpy(raw, h, sizeof(h));
    CHECK(qm_dequantize_row(QM_TYPE_F16, raw, y, 8) == QM_OK, "f16 dequantize");
    for (i = 0; i < 8; i++) CHECK((double)y[i] == hv[i], "f16 %04x -> %.17g, want %.17g", h[i], (double)y[i], hv[i]);
    CHECK(fbits(y[6]) == 0x80000000u, "f16 0x8000 keeps its sign");
    CHECK(fbits(qm_fp16_to_fp32(0x7c00)) == 0x7f800000u, "f16 +inf");
    CHECK(fbits(qm_fp16_to_fp32(0xfc00)) == 0xff800000u, "f16 -inf");
    CHECK(fbits(qm_fp16_to_fp32(0x7e00)) == 0x7fc00000u, "f16 quiet NaN");
    CHECK(fbits(qm_fp16_to_fp32(0x7c01)) == 0x7fc02000u, "f16 signalling NaN comes out quiet, payload kept");
    memcpy(raw, bf, sizeof(bf));
    CHECK(qm_dequantize_row(QM_TYPE_BF16, raw, y, 4) == QM_OK, "bf16 dequantize");
    for (i = 0; i < 4; i++) CHECK((double)y[i] == bv[i], "bf16 %04x -> %.17g, want %.17g", bf[i], (double)y[i], bv[i]);
    CHECK(qm_dequantize_row(QM_TYPE_F32, f, y, 3) == QM_OK, "f32 dequantize");
    for (i = 0; i < 3; i++) CHECK(fbits(y[i]) == fbits(f[i]), "f32 copy %d", i);
}

/* ---- fp16 / bf16 rounding ------------------------------------------------------------- */

static void test_conversions(void) {
    uint32_t u;
    int errors = 0;
    /* fp16: 11 significant bits; 1 + 2^-11 is halfway between 1 and 1 + 2^-10 */
    CHECK(qm_fp32_to_fp16(1.0f) == 0x3c00, "fp16(1)");
    CHECK(qm_fp32_to_fp16(-2.0f) == 0xc000, "fp16(-2)");
    CHECK(qm_fp32_to_fp16(1.0f + 1.0f / 2048) == 0x3c00, "fp16 tie rounds to even (down)");
    CHECK(qm_fp32_to_fp16(1.0f + 3.0f / 2048) == 0x3c02, "fp16 tie rounds to even (up)");
    CHECK(qm_fp32_to_fp16(bitsf(fbits(1.0f + 1.0f / 2048) + 1)) == 0x3c01, "fp16 just above a tie rounds up");
    CHECK(qm_fp32_to_fp16(65504.0f) == 0x7bff, "fp16 max");
    CHECK(qm_fp32_to_fp16(65519.996f) == 0x7bff, "fp16 below the overflow midpoint");
    CHECK(qm_fp32_to_fp16(65520.0f) == 0x7c00, "fp16 overflow midpoint rounds to inf");
    CHECK(qm_fp32_to_fp16(-1e10f) == 0xfc00, "fp16 -overflow");
    CHECK(qm_fp32_to_fp16(5.9604644775390625e-08f) == 0x0001, "fp16 smallest subnormal");
    CHECK(qm_fp32_to_fp16(2.98023223876953125e-08f) == 0x0000, "fp16 2^-25 ties to even zero");
    CHECK(qm_fp32_to_fp16(bitsf(fbits(2.98023223876953125e-08f) + 1)) == 0x0001, "fp16 above 2^-25 rounds up");
    CHECK(qm_fp32_to_fp16(8.940696716308594e-08f) == 0x0002, "fp16 1.5*2^-24 ties to even 2");
    CHECK(qm_fp32_to_fp16(6.0975551605224609e-05f) == 0x03ff, "fp16 largest subnormal");
    CHECK(qm_fp32_to_fp16(6.1005353927612305e-05f) == 0x0400, "fp16 tie rounds up into the normal range");
    CHECK(qm_fp32_to_fp16(-0.0f) == 0x8000, "fp16(-0)");
    CHECK(qm_fp32_to_fp16(bitsf(0x7fc00000u)) == 0x7e00, "fp16(NaN)");
    CHECK(qm_fp32_to_fp16(bitsf(0xff800001u)) == 0xfe00, "fp16(-sNaN) keeps the sign, quiet");
    CHECK(qm_fp32_to_fp16(bitsf(0x7f800000u)) == 0x7c00, "fp16(inf)");
    /* bf16: 8 significant bits */
    CHECK(qm_fp32_to_bf16(1.0f) == 0x3f80, "bf16(1)");
    CHECK(qm_fp32_to_bf16(1.0f + 1.0f / 256) == 0x3f80, "bf16 tie to even (down)");
    CHECK(qm_fp32_to_bf16(1.0f + 3.0f / 256) == 0x3f82, "bf16 tie to even (up)");
    CHECK(qm_fp32_to_bf16(3.4028234663852886e38f) == 0x7f80, "bf16 max float rounds to inf");
    CHECK(qm_fp32_to_bf16(bitsf(0x7f800001u)) == 0x7fc0, "bf16 sNaN forced quiet");
    CHECK(qm_fp32_to_bf16(bitsf(0x00000001u)) == 0x0000, "bf16 keeps subnormals (rounded), no flush");
    CHECK(qm_fp32_to_bf16(bitsf(0x00018000u)) == 0x0002, "bf16 subnormal tie to even");
    /* every finite half and bf16 value survives a round trip through float */
    for (u = 0; u < 65536; u++) {
        const uint16_t h = (uint16_t)u;
        if ((h & 0x7c00) != 0x7c00 && qm_fp32_to_fp16(qm_fp16_to_fp32(h)) != h) errors++;
        if ((h & 0x7f80) != 0x7f80 && qm_fp32_to_bf16(qm_bf16_to_fp32(h)) != h) errors++;
    }
    CHECK(errors == 0, "%d 16-bit values did not round-trip", errors);
    /* monotonic and within half an ulp: compare to a double-precision rounding */
    errors = 0;
    for (u = 0x33000000u; u <= 0x477fe000u; u += 4099) { /* 2^-25 .. 65504 */
        const float f = bitsf(u);
        const double back = qm_fp16_to_fp32(qm_fp32_to_fp16(f));
        const double ulp = f < 6.103515625e-05f ? 5.9604644775390625e-08 : (double)f / 1024.0;
        if (back - f > ulp * 0.5 + 1e-30 || f - back > ulp * 0.5 + 1e-30) errors++;
    }
    CHECK(errors == 0, "%d floats rounded to fp16 by more than half an ulp", errors);
}

/* ---- (b) round trips ------------------------------------------------------------------ */

static uint64_t rng_state = 0x1234567887654321ULL;

static double unit_rand(void) { /* (0, 1] */
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return ((double)(rng_state >> 11) + 1.0) / 9007199254740992.0;
}

static double gauss_rand(void) {
    const double u1 = unit_rand(), u2 = unit_rand();
    return qm__exp(0.5 * qm__log(-2.0 * qm__log(u1))) * qm__cos(6.283185307179586 * u2);
}

/* Relative RMS error bounds for gaussian data. Each is about 1.5x the error of uniform
   rounding, step/sqrt(12), with step the quantization step relative to sigma:
     q8_0  absmax(32)/127      ~2.1/127       -> 0.0048   bound 0.008
     q4_0  absmax(32)/8        ~2.1/8         -> 0.076    bound 0.12
     q4_1  range(32)/15        ~4.1/15        -> 0.079    bound 0.12
     q5_0  absmax(32)/16                      -> 0.038    bound 0.06
     q5_1  range(32)/31                       -> 0.038    bound 0.06
     q2_K  range(16)/3         ~3.5/3         -> 0.34     bound 0.4 (the fit does better)
     q3_K  absmax(16)/4        ~1.77/4        -> 0.128    bound 0.2
     q4_K  range(32)/15                       -> 0.079    bound 0.1
     q5_K  range(32)/31                       -> 0.038    bound 0.055
     q6_K  absmax(16)/32                      -> 0.016    bound 0.025
     iq4_nl, iq4_xs: 16 non-linear levels over the absmax, like q4_0      bound 0.12
     f16   relative rounding error <= 2^-11, rms <= 2^-11/sqrt(3) = 2.8e-4  bound 4e-4
     bf16  relative rounding error <= 2^-8,  rms <= 2^-8/sqrt(3) = 2.3e-3   bound 3e-3 */
static void test_round_trips(void) {
    static const struct { int type; double bound; } cases[] = {
        {QM_TYPE_Q8_0, 0.008}, {QM_TYPE_Q4_0, 0.12},  {QM_TYPE_Q4_1, 0.12},  {QM_TYPE_Q5_0, 0.06},
        {QM_TYPE_Q5_1, 0.06},  {QM_TYPE_Q2_K, 0.4},   {QM_TYPE_Q3_K, 0.2},   {QM_TYPE_Q4_K, 0.1},
        {QM_TYPE_Q5_K, 0.055}, {QM_TYPE_Q6_K, 0.025}, {QM_TYPE_IQ4_NL, 0.12}, {QM_TYPE_IQ4_XS, 0.12},
        {QM_TYPE_F16, 4e-4},   {QM_TYPE_BF16, 3e-3},  {QM_TYPE_F32, 0.0}};
    enum { N = 16384 };
    float *x = (float *)malloc(N * sizeof(float)), *y = (float *)malloc(N * sizeof(float));
    uint8_t *q = (uint8_t *)malloc(N * sizeof(float));
    size_t k;
    int i;
    if (!x || !y || !q) {
        CHECK(0, "out of memory");
        free(x); free(y); free(q);
        return;
    }
    for (i = 0; i < N; i++) x[i] = (float)gauss_rand();
    for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        const int t = cases[k].type;
        double err = 0, ref = 0, rel;
        int zero_ok = 1;
        CHECK(qm_quantize_row(t, x, q, N) == QM_OK, "%s quantize", qm_type_name(t));
        CHECK(qm_dequantize_row(t, q, y, N) == QM_OK, "%s dequantize", qm_type_name(t));
        for (i = 0; i < N; i++) {
            err += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
            ref += (double)x[i] * x[i];
        }
        rel = qm__exp(0.5 * qm__log(err / ref));
        if (cases[k].bound == 0.0) CHECK(err == 0.0, "%s round trip not exact", qm_type_name(t));
        else CHECK(rel < cases[k].bound, "%s relative rms error %.5f, bound %.5f", qm_type_name(t), rel, cases[k].bound);
        /* an all-zero row comes back as zeros */
        memset(x + N - 512, 0, 512 * sizeof(float));
        CHECK(qm_quantize_row(t, x + N - 512, q, 512) == QM_OK, "%s quantize zeros", qm_type_name(t));
        CHECK(qm_dequantize_row(t, q, y, 512) == QM_OK, "%s dequantize zeros", qm_type_name(t));
        for (i = 0; i < 512; i++) zero_ok &= y[i] == 0.0f;
        CHECK(zero_ok, "%s: zeros do not come back as zeros", qm_type_name(t));
        for (i = N - 512; i < N; i++) x[i] = (float)gauss_rand();
    }
    /* values that F16 / BF16 represent come back exactly */
    for (i = 0; i < N; i++) {
        uint16_t h = (uint16_t)(unit_rand() * 65536.0);
        if ((h & 0x7c00) == 0x7c00) h = (uint16_t)(h & 0x83ff); /* finite only */
        x[i] = qm_fp16_to_fp32(h);
    }
    CHECK(qm_quantize_row(QM_TYPE_F16, x, q, N) == QM_OK && qm_dequantize_row(QM_TYPE_F16, q, y, N) == QM_OK,
          "f16 exact round trip calls");
    CHECK(memcmp(x, y, N * sizeof(float)) == 0, "f16-representable values changed in a round trip");
    for (i = 0; i < N; i++) {
        uint16_t h = (uint16_t)(unit_rand() * 65536.0);
        if ((h & 0x7f80) == 0x7f80) h = (uint16_t)(h & 0x807f);
        x[i] = qm_bf16_to_fp32(h);
    }
    CHECK(qm_quantize_row(QM_TYPE_BF16, x, q, N) == QM_OK && qm_dequantize_row(QM_TYPE_BF16, q, y, N) == QM_OK,
          "bf16 exact round trip calls");
    CHECK(memcmp(x, y, N * sizeof(float)) == 0, "bf16-representable values changed in a round trip");
    /* Q8_0 stores d = absmax/127 (in fp16) and q = round(x/d): the block maximum maps to +-127 */
    for (i = 0; i < 32; i++) x[i] = (float)(i - 10) / 4.0f; /* absmax 21/4 at i = 31 */
    CHECK(qm_quantize_row(QM_TYPE_Q8_0, x, q, 32) == QM_OK, "q8_0 quantize");
    CHECK(q[0] == 0x4b && q[1] == 0x29, "q8_0 d = fp16(5.25/127) = 0x294b, got %02x%02x", q[1], q[0]);
    CHECK((int8_t)q[2 + 31] == 127 && (int8_t)q[2 + 10] == 0 && (int8_t)q[2 + 0] == -60,
          "q8_0 levels: %d %d %d", (int8_t)q[33], (int8_t)q[12], (int8_t)q[2]);
    free(x); free(y); free(q);
}

/* The private activation quantizers used by the matmul kernels. */
static void test_activation_quantizers(void) {
    float x[512];
    qm__block_q8_K yk[2];
    uint8_t a[2 * 34], b[2 * 34];
    int i, j, ok_sum = 1, ok_err = 1, ok_max = 1;
    for (i = 0; i < 512; i++) x[i] = (float)gauss_rand();
    x[100] = 9.0f; /* the largest magnitude in block 0: maps to -127, d = -9/127 */
    qm__quantize_row_q8_K(x, yk, 512);
    ok_max = yk[0].qs[100] == -127 && yk[0].d < 0 && yk[0].d * 127.0f + 9.0f < 1e-5f && yk[0].d * 127.0f + 9.0f > -1e-5f;
    for (i = 0; i < 2; i++) {
        for (j = 0; j < 16; j++) {
            int s = 0, l;
            for (l = 0; l < 16; l++) s += yk[i].qs[16 * j + l];
            ok_sum &= s == yk[i].bsums[j];
        }
        for (j = 0; j < 256; j++) {
            const double d = yk[i].d, e = d * yk[i].qs[j] - x[256 * i + j];
            ok_err &= (e < 0 ? -e : e) <= 0.5 * (d < 0 ? -d : d) * 1.0001;
        }
    }
    CHECK(ok_max, "q8_K: the block maximum gives q = -127 and d = -max/127 (got %d, %g)", yk[0].qs[100], (double)yk[0].d);
    CHECK(ok_sum, "q8_K bsums are the sums of 16 quants");
    CHECK(ok_err, "q8_K error within half a step");
    memset(x, 0, 256 * sizeof(float));
    memset(yk, 0x55, sizeof(yk));
    qm__quantize_row_q8_K(x, yk, 256);
    ok_sum = yk[0].d == 0.0f;
    for (j = 0; j < 256; j++) ok_sum &= yk[0].qs[j] == 0;
    for (j = 0; j < 16; j++) ok_sum &= yk[0].bsums[j] == 0;
    CHECK(ok_sum, "q8_K of zeros is all zero");
    for (i = 0; i < 64; i++) x[i] = (float)gauss_rand();
    qm__quantize_row_q8_0(x, a, 64);
    CHECK(qm_quantize_row(QM_TYPE_Q8_0, x, b, 64) == QM_OK && memcmp(a, b, sizeof(a)) == 0,
          "qm__quantize_row_q8_0 is the Q8_0 weight quantizer");
}

/* ---- (c) type table and argument checks ----------------------------------------------- */

static void test_type_table(void) {
    /* ggml's ids, names and block sizes (gguf-py GGML_QUANT_SIZES; ggml type traits) */
    static const struct { int id; const char *name; int blck, bytes, supported; } t[] = {
        {0, "f32", 1, 4, 1},        {1, "f16", 1, 2, 1},        {2, "q4_0", 32, 18, 1},
        {3, "q4_1", 32, 20, 1},     {6, "q5_0", 32, 22, 1},     {7, "q5_1", 32, 24, 1},
        {8, "q8_0", 32, 34, 1},     {9, "q8_1", 32, 36, 0},     {10, "q2_K", 256, 84, 1},
        {11, "q3_K", 256, 110, 1},  {12, "q4_K", 256, 144, 1},  {13, "q5_K", 256, 176, 1},
        {14, "q6_K", 256, 210, 1},  {15, "q8_K", 256, 292, 0},  {16, "iq2_xxs", 256, 66, 0},
        {17, "iq2_xs", 256, 74, 0}, {18, "iq3_xxs", 256, 98, 0}, {19, "iq1_s", 256, 50, 0},
        {20, "iq4_nl", 32, 18, 1},  {21, "iq3_s", 256, 110, 0}, {22, "iq2_s", 256, 82, 0},
        {23, "iq4_xs", 256, 136, 1}, {24, "i8", 1, 1, 0},       {25, "i16", 1, 2, 0},
        {26, "i32", 1, 4, 0},       {27, "i64", 1, 8, 0},       {28, "f64", 1, 8, 0},
        {29, "iq1_m", 256, 56, 0},  {30, "bf16", 1, 2, 1},      {34, "tq1_0", 256, 54, 0},
        {35, "tq2_0", 256, 66, 0},  {39, "mxfp4", 32, 17, 0},   {40, "nvfp4", 64, 36, 0},
        {41, "q1_0", 128, 18, 0}};
    static const int undefined_ids[] = {-1, 4, 5, 31, 32, 33, 36, 37, 38, QM_TYPE_COUNT, 1000};
    size_t k;
    int id, n_supported = 0;
    float f[256];
    uint8_t buf[1024];
    for (k = 0; k < sizeof(t) / sizeof(t[0]); k++) {
        const char *nm = qm_type_name(t[k].id);
        CHECK(nm && strcmp(nm, t[k].name) == 0, "name of type %d: %s, want %s", t[k].id, nm ? nm : "(null)", t[k].name);
        CHECK(qm_type_block_elems(t[k].id) == t[k].blck, "block elems of %s", t[k].name);
        CHECK(qm_type_block_bytes(t[k].id) == t[k].bytes, "block bytes of %s", t[k].name);
        CHECK(qm_type_supported(t[k].id) == t[k].supported, "supported(%s)", t[k].name);
        CHECK(qm_type_row_bytes(t[k].id, 4096) == (size_t)(4096 / t[k].blck) * (size_t)t[k].bytes,
              "row bytes of %s", t[k].name);
        if (t[k].blck > 1) {
            CHECK(qm_type_row_bytes(t[k].id, t[k].blck + 1) == 0, "row of a partial block of %s", t[k].name);
            CHECK(qm_type_row_bytes(t[k].id, t[k].blck / 2) == 0, "row of half a block of %s", t[k].name);
        }
        n_supported += t[k].supported;
    }
    for (id = 0; id < QM_TYPE_COUNT; id++) n_supported -= qm_type_supported(id);
    CHECK(n_supported == 0, "qm_type_supported is 1 exactly for the 15 supported types");
    for (k = 0; k < sizeof(undefined_ids) / sizeof(undefined_ids[0]); k++) {
        id = undefined_ids[k];
        CHECK(qm_type_name(id) == NULL, "type %d has no name", id);
        CHECK(qm_type_block_elems(id) == 0 && qm_type_block_bytes(id) == 0, "type %d has no size", id);
        CHECK(qm_type_supported(id) == 0, "type %d unsupported", id);
        CHECK(qm_type_row_bytes(id, 256) == 0, "type %d has no row size", id);
        CHECK(qm_dequantize_row(id, buf, f, 256) == QM_ERR_UNSUPPORTED, "dequantize type %d rejected", id);
        CHECK(qm_quantize_row(id, f, buf, 256) == QM_ERR_UNSUPPORTED, "quantize type %d rejected", id);
    }
    CHECK(qm_type_row_bytes(QM_TYPE_F32, 7) == 28, "f32 row of 7");
    CHECK(qm_type_row_bytes(QM_TYPE_Q4_K, 0) == 0, "empty row");
    CHECK(qm_type_row_bytes(QM_TYPE_Q4_K, -256) == 0, "negative row");
    CHECK(qm_type_row_bytes(QM_TYPE_Q6_K, (int64_t)256 * 151936) == (size_t)210 * 151936, "big row");
    /* known but unsupported types are rejected */
    memset(buf, 0, sizeof(buf));
    memset(f, 0, sizeof(f));
    CHECK(qm_dequantize_row(QM_TYPE_Q8_1, buf, f, 32) == QM_ERR_UNSUPPORTED, "q8_1 rejected");
    CHECK(qm_dequantize_row(QM_TYPE_IQ2_XXS, buf, f, 256) == QM_ERR_UNSUPPORTED, "iq2_xxs rejected");
    CHECK(qm_dequantize_row(QM_TYPE_Q8_K, buf, f, 256) == QM_ERR_UNSUPPORTED, "q8_K rejected");
    CHECK(qm_quantize_row(QM_TYPE_MXFP4, f, buf, 32) == QM_ERR_UNSUPPORTED, "mxfp4 rejected");
    CHECK(qm_quantize_row(QM_TYPE_I32, f, buf, 32) == QM_ERR_UNSUPPORTED, "i32 rejected");
    /* n not a whole number of blocks, negative, NULL buffers */
    CHECK(qm_dequantize_row(QM_TYPE_Q4_K, buf, f, 100) == QM_ERR_INVALID_ARG, "q4_K n=100 rejected");
    CHECK(qm_quantize_row(QM_TYPE_Q4_0, f, buf, 48) == QM_ERR_INVALID_ARG, "q4_0 n=48 rejected");
    CHECK(qm_quantize_row(QM_TYPE_IQ4_XS, f, buf, 32) == QM_ERR_INVALID_ARG, "iq4_xs n=32 rejected");
    CHECK(qm_dequantize_row(QM_TYPE_F16, buf, f, -2) == QM_ERR_INVALID_ARG, "negative n rejected");
    CHECK(qm_dequantize_row(QM_TYPE_Q8_0, NULL, f, 32) == QM_ERR_INVALID_ARG, "NULL src rejected");
    CHECK(qm_quantize_row(QM_TYPE_Q8_0, f, NULL, 32) == QM_ERR_INVALID_ARG, "NULL dst rejected");
    CHECK(qm_dequantize_row(QM_TYPE_Q8_0, NULL, NULL, 0) == QM_OK, "an empty row is fine");
}

int main(void) {
    (void)qm__expf; (void)qm__logf; (void)qm__powf; (void)qm__sinf; (void)qm__cosf; /* other sections' */
    test_q4_0();
    test_q4_1();
    test_q5();
    test_q8_0();
    test_q2_K();
    test_q3_K();
    test_q4_K_q5_K();
    test_q6_K();
    test_iq4();
    test_float_blocks();
    test_conversions();
    test_round_trips();
    test_activation_quantizers();
    test_type_table();
    return qmtest_summary("quant");
}
