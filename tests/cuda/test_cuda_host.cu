// test_cuda_host - the parts of qwenmoe_cuda.cu that can be checked without a GPU, run on the CPU.
//
// qwenmoe_cuda.cu writes its block decoders and the per-item work of its kernels as
// __host__ __device__ functions; this file includes it and runs that code on the host:
//   - fp16 <-> f32 conversions against qm_fp16_to_fp32 / qm_fp32_to_fp16 (all 65,536 halves,
//     random and edge floats), bit for bit;
//   - the slice decoders of every supported type against qm_dequantize_row, bit for bit, on
//     quantized rows and on random bytes; the f16 dequantization against
//     qm_fp32_to_fp16(qm_dequantize_row);
//   - one mat-vec row as 32 lanes plus the warp's xor-shuffle reduction, against a double dot;
//   - the host plan (grouping pairs by expert) on random routings, and its error;
//   - the cuBLAS argument mapping, against the BLAS definition of a column-major GEMM;
//   - the whole moe_eval data flow (plan, mat-vec, f16 dequantization, GEMM, SwiGLU, scatter,
//     combine), emulated with those functions, against an independent double reference;
//   - the hook: ABI, probe without a device, and moe_create's refusals (type, shape, env).
// The kernels' launch geometry, the shuffles, the memory copies and cuBLAS itself need a GPU:
// tests/cuda/test_cuda_gpu.c. Prints "# cuda_host: N passed, M failed".
#include "../../qwenmoe_cuda.cu"
#include "../qmtest.h"
#include "emu.h"

#include <math.h>
#include <vector>

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd32(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 32);
}
static float rndf(void) { return ((float)rnd32() / 4294967296.0f) * 2.0f - 1.0f; } // [-1, 1)
static float rnd_gauss(void) {                                                        // roughly normal
    float s = 0;
    for (int i = 0; i < 4; i++) s += rndf();
    return s * 0.8660254f;
}
static uint32_t fbits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static float ffrom(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
// the same float, or both NaN
static int same_float(float a, float b) { return (a != a && b != b) || fbits(a) == fbits(b); }
static int same_half(uint16_t a, uint16_t b) {
    int an = (a & 0x7c00) == 0x7c00 && (a & 0x3ff), bn = (b & 0x7c00) == 0x7c00 && (b & 0x3ff);
    return (an && bn) || a == b;
}

static const int types[] = {QM_TYPE_F32, QM_TYPE_F16, QM_TYPE_BF16, QM_TYPE_Q8_0, QM_TYPE_Q4_0,
                            QM_TYPE_Q4_1, QM_TYPE_Q5_0, QM_TYPE_Q5_1, QM_TYPE_Q2_K, QM_TYPE_Q3_K,
                            QM_TYPE_Q4_K, QM_TYPE_Q5_K, QM_TYPE_Q6_K, QM_TYPE_IQ4_NL, QM_TYPE_IQ4_XS};
static const int n_types = (int)(sizeof(types) / sizeof(types[0]));

// A [rows][cols] matrix of `type` from random normal values (scale per row varies).
static std::vector<uint8_t> random_matrix(int type, int rows, int cols, float scale) {
    const size_t rb = qm_type_row_bytes(type, cols);
    std::vector<uint8_t> m(rb * rows);
    std::vector<float> src(cols);
    for (int r = 0; r < rows; r++) {
        const float s = scale * (0.25f + (float)(rnd32() % 1000) / 500.0f);
        for (int c = 0; c < cols; c++) src[c] = s * rnd_gauss();
        if (rnd32() % 4 == 0) src[rnd32() % cols] = 0.0f;
        qm_quantize_row(type, src.data(), m.data() + rb * r, cols);
    }
    return m;
}

// The activation values the CPU kernels see, computed independently of qwenmoe_cuda.cu:
// Q8_0 through qwenmoe.h's own quantizer and dequantizer; Q8_K as ggml's quantize_row_q8_K
// (scale -127 / signed absmax, round to nearest even by the 1.5 * 2^23 trick, cap 127).
static void ref_actq(int kind, float *v, int n) {
    if (kind == QMC_ACT_Q8_0) {
        std::vector<uint8_t> b((size_t)n / 32 * 34);
        qm_quantize_row(QM_TYPE_Q8_0, v, b.data(), n);
        qm_dequantize_row(QM_TYPE_Q8_0, b.data(), v, n);
    } else if (kind == QMC_ACT_Q8_K) {
        for (int i = 0; i < n; i += 256) {
            float amax = 0, mx = 0;
            for (int j = 0; j < 256; j++)
                if (amax < fabsf(v[i + j])) { amax = fabsf(v[i + j]); mx = v[i + j]; }
            if (amax == 0) { for (int j = 0; j < 256; j++) v[i + j] = 0; continue; }
            const float iscale = -127.0f / mx, d = 1.0f / iscale;
            for (int j = 0; j < 256; j++) {
                const float t = iscale * v[i + j] + 12582912.0f;
                int q = (int)(fbits(t) & 0x7fffff) - 0x400000;
                v[i + j] = d * (float)(q > 127 ? 127 : q);
            }
        }
    }
}

// ---- 1. fp16 ---------------------------------------------------------------------------

static void test_fp16(void) {
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++)
        if (fbits(qmc_h2f(h)) != fbits(qm_fp16_to_fp32((uint16_t)h))) {
            if (bad++ < 5) printf("  h2f(0x%04x): 0x%08x, header 0x%08x\n", h, fbits(qmc_h2f(h)), fbits(qm_fp16_to_fp32((uint16_t)h)));
        }
    CHECK(bad == 0, "%d of 65536 halves convert differently", bad);
    bad = 0;
    const float edges[] = {0.0f, -0.0f, 65504.0f, 65519.99f, 65520.0f, -65520.0f, 1e-8f, 2.98023224e-8f,
                           2.98023259e-8f, 5.96046448e-8f, 6.09755516e-5f, 6.10351562e-5f, 1.0f, 1.00048828f,
                           1.00146484f, INFINITY, -INFINITY, NAN};
    for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++)
        if (qmc_f2h(edges[i]) != qm_fp32_to_fp16(edges[i])) bad++;
    for (int i = 0; i < 2000000; i++) {
        float f = ffrom(rnd32());
        if (i & 1) f = rnd_gauss() * (float)(1 << (rnd32() % 20)) * 1e-5f;
        if (!same_half(qmc_f2h(f), qm_fp32_to_fp16(f))) {
            if (bad++ < 5) printf("  f2h(%a): 0x%04x, header 0x%04x\n", f, qmc_f2h(f), qm_fp32_to_fp16(f));
        }
    }
    CHECK(bad == 0, "%d floats round to f16 differently", bad);
}

// ---- 2. decoders -----------------------------------------------------------------------

static void test_decoders(void) {
    const int cols = 1024, rows = 6;
    for (int ti = 0; ti < n_types; ti++) {
        const int type = types[ti];
        const char *name = qm_type_name(type);
        const size_t rb = qm_type_row_bytes(type, cols);
        CHECK(qmc_type_qk(type) > 0 && (size_t)(cols / qmc_type_qk(type)) * qmc_type_bytes(type) == rb,
              "%s: block table (qk %d, bytes %d) disagrees with qm_type_row_bytes %zu", name, qmc_type_qk(type),
              qmc_type_bytes(type), rb);
        for (int pass = 0; pass < 2; pass++) { // 0: quantized values, 1: random bytes
            std::vector<uint8_t> m = random_matrix(type, rows, cols, 0.05f);
            if (pass == 1)
                for (size_t i = 0; i < m.size(); i++) m[i] = (uint8_t)rnd32();
            std::vector<float> ref((size_t)rows * cols), got((size_t)rows * cols);
            for (int r = 0; r < rows; r++) {
                qm_dequantize_row(type, m.data() + rb * r, ref.data() + (size_t)r * cols, cols);
                decode_row(type, m.data() + rb * r, cols, got.data() + (size_t)r * cols);
            }
            int bad = 0;
            for (size_t i = 0; i < ref.size(); i++)
                if (!same_float(ref[i], got[i]) && bad++ < 3)
                    printf("  %s %s element %zu: %a, qm_dequantize_row %a\n", name, pass ? "bytes" : "quant", i,
                           got[i], ref[i]);
            CHECK(bad == 0, "%s (%s): %d of %zu values differ from qm_dequantize_row", name,
                  pass ? "random bytes" : "quantized", bad, ref.size());
            std::vector<uint16_t> h16((size_t)rows * cols, 0xffff);
            dequant_f16(type, m.data(), rows, cols, rb, h16.data());
            bad = 0;
            for (size_t i = 0; i < ref.size(); i++)
                if (!same_half(h16[i], qm_fp32_to_fp16(ref[i])) && bad++ < 3)
                    printf("  %s f16 element %zu: 0x%04x, expected 0x%04x\n", name, i, h16[i], qm_fp32_to_fp16(ref[i]));
            CHECK(bad == 0, "%s (%s): %d f16 values differ from qm_fp32_to_fp16(qm_dequantize_row)", name,
                  pass ? "random bytes" : "quantized", bad);
        }
    }
}

// ---- 2b. activation rounding ---------------------------------------------------------------

static void test_actq(void) {
    const int kinds[] = {QMC_ACT_Q8_0, QMC_ACT_Q8_K};
    for (int ki = 0; ki < 2; ki++) {
        const int kind = kinds[ki], n = 1024;
        int bad = 0;
        for (int it = 0; it < 200; it++) {
            std::vector<float> v(n), ref, got(n);
            const float scale = (float)(1 << (rnd32() % 12)) * 1e-3f;
            for (auto &a : v) a = scale * rnd_gauss();
            if (it % 7 == 0) for (int j = 0; j < 256; j++) v[j] = 0.0f;          // an all-zero block
            if (it % 5 == 0) v[rnd32() % n] = -4.0f * scale;                     // a negative extreme
            if (it % 11 == 0) for (int j = 256; j < 512; j++) v[j] = 0.5f * scale; // equal values
            if (it % 13 == 0) v[rnd32() % n] = (it & 1) ? INFINITY : -INFINITY; // garbage in, same garbage out
            if (it % 3 == 0) { // the largest |x| twice, opposite signs: the first one sets the sign
                const int j1 = 512 + (int)(rnd32() % 256), j2 = 512 + (int)(rnd32() % 256);
                v[j1] = 9.0f * scale;
                v[j2] = -9.0f * scale;
            }
            ref = v;
            ref_actq(kind, ref.data(), n);
            // the kernel's way: 32 lanes per block, the xor-shuffle tree of qmc_k_actq
            std::vector<float> warp(n);
            const int blk = qmc_act_block(kind), per = blk / 32;
            for (int b0 = 0; b0 < n; b0 += blk) {
                qmc_amax m[32], nm[32];
                for (int l = 0; l < 32; l++) m[l] = qmc_actq_scan(v.data() + b0, l, per);
                for (int o = 16; o > 0; o >>= 1) {
                    for (int l = 0; l < 32; l++) nm[l] = qmc_actq_pick(m[l], m[l ^ o]);
                    memcpy(m, nm, sizeof(m));
                }
                for (int l = 0; l < 32; l++) qmc_actq_write(v.data() + b0, warp.data() + b0, l, per, kind, m[l]);
            }
            for (int b = 0; b < n / qmc_act_block(kind); b++)
                qmc_actq_block(v.data() + b * qmc_act_block(kind), got.data() + b * qmc_act_block(kind), kind);
            for (int j = 0; j < n; j++)
                if ((!same_float(got[j], ref[j]) || !same_float(warp[j], ref[j])) && bad++ < 3)
                    printf("  actq kind %d element %d: %a (warp %a), expected %a\n", kind, j, got[j], warp[j], ref[j]);
        }
        CHECK(bad == 0, "activation rounding %s: %d values differ", kind == QMC_ACT_Q8_0 ? "q8_0" : "q8_K", bad);
    }
    CHECK(qmc_act_kind(QM_TYPE_Q4_K) == QMC_ACT_Q8_K && qmc_act_kind(QM_TYPE_IQ4_XS) == QMC_ACT_Q8_K &&
          qmc_act_kind(QM_TYPE_Q4_0) == QMC_ACT_Q8_0 && qmc_act_kind(QM_TYPE_Q5_1) == QMC_ACT_Q8_0 &&
          qmc_act_kind(QM_TYPE_F16) == QMC_ACT_F32, "activation kinds");
}

// ---- 3. one warp's mat-vec row -----------------------------------------------------------

static void test_warp_dot(void) {
    for (int ti = 0; ti < n_types; ti++) {
        const int type = types[ti];
        const int cols = (ti % 2) ? 768 : 2048; // 2048: the 30B's n_embd; 768: its n_ff_exp
        const size_t rb = qm_type_row_bytes(type, cols);
        std::vector<uint8_t> m = random_matrix(type, 3, cols, 0.05f);
        std::vector<float> w(cols), x((size_t)QMC_MV_MAXP * cols);
        for (size_t i = 0; i < x.size(); i++) x[i] = rnd_gauss();
        const float *in[QMC_MV_MAXP];
        for (int p = 0; p < QMC_MV_MAXP; p++) in[p] = x.data() + (size_t)p * cols;
        double worst = 0;
        for (int r = 0; r < 3; r++) {
            qm_dequantize_row(type, m.data() + rb * r, w.data(), cols);
            for (int np = 1; np <= QMC_MV_MAXP; np += (np < 3 ? 1 : 5)) {
                float res[QMC_MV_MAXP];
                warp_row(type, m.data() + rb * r, cols, in, np, res);
                for (int p = 0; p < np; p++) {
                    double ref = 0, mag = 0;
                    for (int c = 0; c < cols; c++) {
                        ref += (double)w[c] * in[p][c];
                        mag += fabs((double)w[c] * in[p][c]);
                    }
                    const double e = fabs(res[p] - ref) / (mag + 1e-30);
                    if (e > worst) worst = e;
                }
            }
        }
        CHECK(worst < 1e-6, "%s: mat-vec row error %.3g of sum |w x| (limit 1e-6)", qm_type_name(type), worst);
    }
}

// ---- 4. plan ---------------------------------------------------------------------------

static void test_plan(void) {
    const int Ts[] = {1, 3, 17, 64, 512}, Ks[] = {1, 2, 8}, NEs[] = {8, 16, 128}, mins[] = {1, 3, 8, 1000000};
    int cases = 0, bad = 0;
    for (int a = 0; a < 5; a++)
        for (int b = 0; b < 3; b++)
            for (int c = 0; c < 3; c++)
                for (int d = 0; d < 4; d++) {
                    const int T = Ts[a], K = Ks[b], NE = NEs[c], gmin = mins[d];
                    if (K > NE) continue;
                    std::vector<int32_t> ids((size_t)T * K);
                    for (int t = 0; t < T; t++) // K distinct experts per token, skewed toward low ids
                        for (int k = 0; k < K; k++) {
                            int e, dup;
                            do {
                                e = (int)(rnd32() % NE);
                                if (rnd32() & 1) e = e / 4;
                                dup = 0;
                                for (int j = 0; j < k; j++) dup |= ids[t * K + j] == e;
                            } while (dup);
                            ids[t * K + k] = e;
                        }
                    const size_t slots = (size_t)T * K;
                    std::vector<int> tok(slots), slot(slots), cnt(NE), nxt(NE);
                    std::vector<qmc_group> mv(slots), gemm(slots);
                    qmc_plan pl = {tok.data(), slot.data(), mv.data(), gemm.data(), 0, 0, 0, cnt.data(), nxt.data()};
                    char err[128] = "";
                    cases++;
                    if (qmc_plan_build(&pl, T, K, NE, gmin, ids.data(), err, sizeof(err)) != 0) { bad++; continue; }
                    std::vector<int> seen(slots, 0), covered(slots, 0);
                    int ok = 1, gp = 0, prev = -1;
                    for (size_t p = 0; p < slots; p++) {
                        if (slot[p] < 0 || (size_t)slot[p] >= slots || tok[p] != slot[p] / K) ok = 0;
                        else seen[slot[p]]++;
                    }
                    for (size_t s = 0; s < slots; s++) ok &= seen[s] == 1;
                    for (int g = 0; g < pl.n_gemm; g++) {
                        const qmc_group &G = gemm[g];
                        ok &= G.count >= gmin && G.first == gp && G.expert > prev;
                        prev = G.expert;
                        for (int i = 0; i < G.count; i++) {
                            covered[G.first + i]++;
                            ok &= ids[slot[G.first + i]] == G.expert;
                        }
                        gp += G.count;
                    }
                    ok &= gp == pl.n_gemm_pairs;
                    for (int g = 0; g < pl.n_mv; g++) {
                        const qmc_group &G = mv[g];
                        ok &= G.count >= 1 && G.count <= QMC_MV_MAXP && cnt[G.expert] < gmin && G.first >= pl.n_gemm_pairs;
                        for (int i = 0; i < G.count; i++) {
                            covered[G.first + i]++;
                            ok &= ids[slot[G.first + i]] == G.expert;
                            if (i) ok &= tok[G.first + i] > tok[G.first + i - 1]; // by token within an expert
                        }
                    }
                    for (size_t p = 0; p < slots; p++) ok &= covered[p] == 1;
                    if (!ok) {
                        bad++;
                        printf("  plan T=%d K=%d n_expert=%d gemm_min=%d is inconsistent\n", T, K, NE, gmin);
                    }
                }
    CHECK(bad == 0 && cases > 100, "%d of %d routings give an inconsistent plan", bad, cases);
    // an expert id out of range is refused with a message
    int32_t ids[4] = {0, 1, 2, 9};
    int tok[4], slot[4], cnt[8], nxt[8];
    qmc_group mv[4], gemm[4];
    qmc_plan pl = {tok, slot, mv, gemm, 0, 0, 0, cnt, nxt};
    char err[128] = "";
    CHECK(qmc_plan_build(&pl, 2, 2, 8, 8, ids, err, sizeof(err)) == -1 && strstr(err, "expert 9"),
          "out-of-range expert: \"%s\"", err);
}

// ---- 5. GEMM argument mapping --------------------------------------------------------------

static void test_gemm_args(void) {
    int bad = 0;
    for (int it = 0; it < 20; it++) {
        const int n = 1 + rnd32() % 9, M = 8 * (1 + rnd32() % 6), Kd = 8 * (1 + rnd32() % 5);
        std::vector<float> X((size_t)n * Kd), W((size_t)M * Kd), C((size_t)n * M);
        for (auto &v : X) v = rndf();
        for (auto &v : W) v = rndf();
        blas_gemm(qmc_gemm_xwt(n, M, Kd), W.data(), X.data(), C.data());
        for (int p = 0; p < n; p++)
            for (int r = 0; r < M; r++) {
                double s = 0;
                for (int c = 0; c < Kd; c++) s += (double)X[(size_t)p * Kd + c] * W[(size_t)r * Kd + c];
                if (fabs(C[(size_t)p * M + r] - s) > 1e-5) bad++;
            }
    }
    CHECK(bad == 0, "the cuBLAS arguments give a different product in %d places", bad);
}

// ---- 6. the whole data flow of moe_eval, emulated ------------------------------------------

struct emu_layer {
    int tg, tu, td;
    std::vector<uint8_t> gate, up, down; // [NE][ff][E], [NE][ff][E], [NE][E][ff]
};

static void test_emulated_eval(void) {
    const int E = 256, ff = 256, NE = 8, K = 2, T = 12;
    const int combos[][3] = {{QM_TYPE_Q4_K, QM_TYPE_Q4_K, QM_TYPE_Q6_K}, {QM_TYPE_Q8_0, QM_TYPE_Q8_0, QM_TYPE_Q8_0},
                             {QM_TYPE_F16, QM_TYPE_BF16, QM_TYPE_F32}, {QM_TYPE_Q5_K, QM_TYPE_Q3_K, QM_TYPE_Q2_K},
                             {QM_TYPE_IQ4_XS, QM_TYPE_IQ4_NL, QM_TYPE_Q5_0}, {QM_TYPE_Q4_0, QM_TYPE_Q4_1, QM_TYPE_Q5_1}};
    for (size_t ci = 0; ci < sizeof(combos) / sizeof(combos[0]); ci++) {
        emu_layer L;
        L.tg = combos[ci][0]; L.tu = combos[ci][1]; L.td = combos[ci][2];
        L.gate = random_matrix(L.tg, NE * ff, E, 0.1f);
        L.up = random_matrix(L.tu, NE * ff, E, 0.1f);
        L.down = random_matrix(L.td, NE * E, ff, 0.1f);
        std::vector<float> x((size_t)T * E), w((size_t)T * K);
        std::vector<int32_t> ids((size_t)T * K);
        for (auto &v : x) v = rnd_gauss();
        for (int t = 0; t < T; t++) { // experts 0 and 1 popular (gemm path with gemm_min 4), others rare
            ids[t * K] = t % 3 == 2 ? 2 + (int)(rnd32() % 6) : (int)(rnd32() % 2);
            do ids[t * K + 1] = (int)(rnd32() % NE); while (ids[t * K + 1] == ids[t * K]);
            const float a = 0.2f + 0.6f * (rndf() * 0.5f + 0.5f);
            w[t * K] = a;
            w[t * K + 1] = 1.0f - a;
        }
        // the reference: double precision from qm_dequantize_row
        std::vector<float> Wg((size_t)ff * E), Wu((size_t)ff * E), Wd((size_t)E * ff);
        std::vector<double> yref((size_t)T * E, 0.0);
        const size_t rbg = qm_type_row_bytes(L.tg, E), rbu = qm_type_row_bytes(L.tu, E), rbd = qm_type_row_bytes(L.td, ff);
        const int kg = qmc_act_kind(L.tg), ku = qmc_act_kind(L.tu), kd = qmc_act_kind(L.td);
        std::vector<float> xg = x, xu = x;
        for (int t = 0; t < T; t++) {
            ref_actq(kg, xg.data() + (size_t)t * E, E);
            ref_actq(ku, xu.data() + (size_t)t * E, E);
        }
        for (int t = 0; t < T; t++)
            for (int k = 0; k < K; k++) {
                const int e = ids[t * K + k];
                for (int r = 0; r < ff; r++) {
                    qm_dequantize_row(L.tg, L.gate.data() + ((size_t)e * ff + r) * rbg, Wg.data() + (size_t)r * E, E);
                    qm_dequantize_row(L.tu, L.up.data() + ((size_t)e * ff + r) * rbu, Wu.data() + (size_t)r * E, E);
                }
                for (int r = 0; r < E; r++)
                    qm_dequantize_row(L.td, L.down.data() + ((size_t)e * E + r) * rbd, Wd.data() + (size_t)r * ff, ff);
                std::vector<float> h(ff);
                for (int r = 0; r < ff; r++) {
                    double g = 0, u = 0;
                    for (int c = 0; c < E; c++) {
                        g += (double)Wg[(size_t)r * E + c] * xg[(size_t)t * E + c];
                        u += (double)Wu[(size_t)r * E + c] * xu[(size_t)t * E + c];
                    }
                    h[r] = (float)(g / (1.0 + exp(-g)) * u);
                }
                ref_actq(kd, h.data(), ff);
                for (int r = 0; r < E; r++) {
                    double s = 0;
                    for (int c = 0; c < ff; c++) s += (double)Wd[(size_t)r * ff + c] * h[c];
                    yref[(size_t)t * E + r] += w[t * K + k] * s;
                }
            }
        // all mat-vec, mixed f32, all cuBLAS f32, mixed f16, all cuBLAS f16
        const int gmins[] = {1000000, 4, 1, 4, 1}, f16s[] = {0, 0, 0, 1, 1};
        const double limits[] = {1e-3, 1e-3, 1e-3, 2e-2, 2e-2}; // Q8 rounding flips, f16 rounding
        for (int gi = 0; gi < 5; gi++) {
            int n_mv = 0, n_gemm = 0;
            std::vector<float> y((size_t)T * E);
            const emu_mat mg = {L.tg, L.gate.data(), rbg}, mu = {L.tu, L.up.data(), rbu}, md = {L.td, L.down.data(), rbd};
            char err[128] = "";
            CHECK(emu_moe(mg, mu, md, E, ff, NE, K, T, gmins[gi], f16s[gi], x.data(), ids.data(), w.data(), y.data(), &n_mv,
                          &n_gemm, err, sizeof(err)) == 0, "emulation: %s", err);
            double worst = 0;
            int finite = 1;
            for (int t = 0; t < T; t++) {
                double num = 0, den = 0;
                for (int d = 0; d < E; d++) {
                    const double a = y[(size_t)t * E + d], b = yref[(size_t)t * E + d];
                    finite &= isfinite(a) != 0;
                    num += (a - b) * (a - b);
                    den += b * b;
                }
                if (sqrt(num / (den + 1e-300)) > worst) worst = sqrt(num / (den + 1e-300));
            }
            CHECK(finite && worst < limits[gi], "%s/%s/%s gemm_min %d %s (%d mat-vec groups, %d gemm groups): "
                  "relative error %.3g (limit %.0e)", qm_type_name(L.tg), qm_type_name(L.tu), qm_type_name(L.td),
                  gmins[gi], f16s[gi] ? "f16" : "f32", n_mv, n_gemm, worst, limits[gi]);
            printf("# emulated moe_eval %s/%s/%s, %d mat-vec + %d gemm groups (%s): relative error %.2e\n",
                   qm_type_name(L.tg), qm_type_name(L.tu), qm_type_name(L.td), n_mv, n_gemm, f16s[gi] ? "f16" : "f32",
                   worst);
            if (gi == 1 || gi == 3) CHECK(n_mv > 0 && n_gemm > 0, "gemm_min 4 should use both paths: %d mat-vec, %d gemm", n_mv, n_gemm);
        }
    }
}

// ---- 7. the hook and moe_create's refusals ---------------------------------------------------

static void test_hook(void) {
    const qm_cuda_hooks *h = qm_cuda_hook();
    CHECK(h != NULL, "qm_cuda_hook() is NULL with qwenmoe_cuda.cu linked in");
    if (!h) return;
    CHECK(h->abi_version == QM_CUDA_ABI_VERSION && h->probe && h->moe_create && h->moe_eval && h->moe_free,
          "hook table: ABI %d (header %d)", h->abi_version, QM_CUDA_ABI_VERSION);
    char desc[256] = "";
    const int have_gpu = h->probe(desc, sizeof(desc));
    CHECK(desc[0] != 0, "probe gives no description");
    printf("# probe: %s (%s)\n", have_gpu ? "GPU" : "no GPU", desc);
    if (!have_gpu) CHECK(strstr(desc, "CUDA") || strstr(desc, "sm_"), "probe's reason does not say CUDA: %s", desc);

    // a one-layer description; the checks below fail before any device call
    const int E = 256, ff = 256, NE = 4;
    std::vector<uint8_t> g = random_matrix(QM_TYPE_Q8_0, NE * ff, E, 0.1f), d = random_matrix(QM_TYPE_Q8_0, NE * E, ff, 0.1f);
    qm_cuda_moe_layer layer;
    memset(&layer, 0, sizeof(layer));
    layer.gate.type = layer.up.type = layer.down.type = QM_TYPE_Q8_0;
    layer.gate.cols = layer.up.cols = E; layer.gate.rows = layer.up.rows = ff;
    layer.down.cols = ff; layer.down.rows = E;
    layer.gate.n_expert = layer.up.n_expert = layer.down.n_expert = NE;
    layer.gate.row_bytes = layer.up.row_bytes = qm_type_row_bytes(QM_TYPE_Q8_0, E);
    layer.down.row_bytes = qm_type_row_bytes(QM_TYPE_Q8_0, ff);
    layer.gate.data = layer.up.data = g.data();
    layer.down.data = d.data();
    qm_cuda_moe_desc desc_ok;
    memset(&desc_ok, 0, sizeof(desc_ok));
    desc_ok.n_layer = 1; desc_ok.n_embd = E; desc_ok.n_ff_exp = ff; desc_ok.n_expert = NE; desc_ok.n_expert_used = 2;
    desc_ok.max_tokens = 16; desc_ok.layers = &layer;
    char err[512];

    qm_cuda_moe_layer bad = layer;
    bad.up.type = QM_TYPE_IQ2_XXS;
    qm_cuda_moe_desc dd = desc_ok;
    dd.layers = &bad;
    err[0] = 0;
    void *hh = h->moe_create(&dd, err, sizeof(err));
    CHECK(!hh && strstr(err, "ffn_up_exps") && strstr(err, "iq2_xxs") && strstr(err, "no CUDA kernel"),
          "unsupported type: \"%s\"", err);
    if (hh) h->moe_free(hh);

    bad = layer;
    bad.down.rows = E / 2;
    err[0] = 0;
    hh = h->moe_create(&dd, err, sizeof(err));
    CHECK(!hh && strstr(err, "ffn_down_exps") && strstr(err, "shape"), "wrong shape: \"%s\"", err);
    if (hh) h->moe_free(hh);

    bad = layer;
    bad.gate.row_bytes += 2;
    err[0] = 0;
    hh = h->moe_create(&dd, err, sizeof(err));
    CHECK(!hh && strstr(err, "ffn_gate_exps") && strstr(err, "bytes"), "wrong row size: \"%s\"", err);
    if (hh) h->moe_free(hh);

    setenv("QWENMOE_CUDA_GEMM_MIN", "lots", 1);
    err[0] = 0;
    hh = h->moe_create(&desc_ok, err, sizeof(err));
    CHECK(!hh && strstr(err, "QWENMOE_CUDA_GEMM_MIN"), "bad QWENMOE_CUDA_GEMM_MIN: \"%s\"", err);
    if (hh) h->moe_free(hh);
    unsetenv("QWENMOE_CUDA_GEMM_MIN");

    setenv("QWENMOE_CUDA_GEMM", "f8", 1);
    err[0] = 0;
    hh = h->moe_create(&desc_ok, err, sizeof(err));
    CHECK(!hh && strstr(err, "QWENMOE_CUDA_GEMM='f8'"), "bad QWENMOE_CUDA_GEMM: \"%s\"", err);
    if (hh) h->moe_free(hh);
    unsetenv("QWENMOE_CUDA_GEMM");

    err[0] = 0;
    CHECK(h->moe_eval(NULL, 0, 1, NULL, NULL, NULL, NULL, err, sizeof(err)) != 0 && err[0], "moe_eval(NULL) accepted");

    if (!have_gpu) { // a valid description: refused with the CUDA error, not a crash
        err[0] = 0;
        hh = h->moe_create(&desc_ok, err, sizeof(err));
        CHECK(!hh && strstr(err, "failed"), "moe_create without a device: \"%s\"", err);
        printf("# moe_create without a device: %s\n", err);
        if (hh) h->moe_free(hh);
    }
}

int main(int argc, char **argv) {
    if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        printf("usage: %s\nRuns qwenmoe_cuda.cu's host/device code (decoders, mat-vec lanes, f16\n"
               "dequantization, plan, GEMM arguments, the moe_eval data flow) on the CPU against\n"
               "qwenmoe.h, and checks the hook's refusals. No GPU needed.\n", argv[0]);
        return 0;
    }
    test_fp16();
    test_decoders();
    test_actq();
    test_warp_dot();
    test_plan();
    test_gemm_args();
    test_emulated_eval();
    test_hook();
    printf("# device buffers besides the experts: %.1f MiB for Qwen3-30B-A3B (n_embd 2048, ff 768, top-8, 512 tokens), "
           "%.1f MiB for the small preset\n", qmc_buffer_bytes(2048, 768, 8, 512) / 1048576.0,
           qmc_buffer_bytes(256, 256, 4, 512) / 1048576.0);
    return qmtest_summary("cuda_host");
}
