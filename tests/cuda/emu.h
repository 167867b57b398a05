// emu.h - host emulation of qwenmoe_cuda.cu's kernels, for the tests. Include after
// qwenmoe_cuda.cu. Every function here runs the .cu's own __host__ __device__ item code (slice
// decoders, mat-vec lanes, f16 dequantization, plan, GEMM arguments, combine) in the order the
// kernels and moe_eval run it; only the GEMM itself is a plain loop (the BLAS definition) and
// the warp shuffles are an explicit xor tree. Used by test_cuda_host.cu.
#ifndef QM_CUDA_EMU_H
#define QM_CUDA_EMU_H
#include <math.h>
#include <vector>

// ---- per-type functions, reached through a switch --------------------------------------

template <int T> static void decode_row_t(const uint8_t *row, int cols, float *out) {
    const int spb = qmc_q<T>::QK / 8;
    for (int s = 0; s < cols / 8; s++) qmc_q<T>::slice(row + (size_t)(s / spb) * qmc_q<T>::BYTES, s % spb, out + 8 * s);
}
template <int T> static void dequant_f16_t(const uint8_t *w, int rows, int cols, size_t row_bytes, uint16_t *out) {
    const size_t n = (size_t)rows * (cols / 8);
    for (size_t g = 0; g < n; g++) qmc_dequant_f16_item<T>(w, cols, row_bytes, g, out);
}
// One warp's mat-vec row: 32 lanes, then the xor-shuffle tree of qmc_k_matvec.
template <int T>
static void warp_row_t(const uint8_t *row, int cols, const float *const *in, int np, float *res) {
    float part[32][QMC_MV_MAXP];
    for (int l = 0; l < 32; l++) {
        for (int p = 0; p < QMC_MV_MAXP; p++) part[l][p] = 0.0f;
        qmc_dot_lane<T>(row, cols, l, 32, in, np, part[l]);
    }
    for (int p = 0; p < np; p++) {
        float v[32], nv[32];
        for (int l = 0; l < 32; l++) v[l] = part[l][p];
        for (int o = 16; o > 0; o >>= 1) {
            for (int l = 0; l < 32; l++) nv[l] = v[l] + v[l ^ o];
            memcpy(v, nv, sizeof(v));
        }
        res[p] = v[0];
    }
}

static void decode_row(int type, const uint8_t *row, int cols, float *out) {
    switch (type) {
#define X(T) case T: decode_row_t<T>(row, cols, out); break;
        QMC_FOR_TYPES(X)
#undef X
    default: break;
    }
}
static void dequant_f16(int type, const uint8_t *w, int rows, int cols, size_t row_bytes, uint16_t *out) {
    switch (type) {
#define X(T) case T: dequant_f16_t<T>(w, rows, cols, row_bytes, out); break;
        QMC_FOR_TYPES(X)
#undef X
    default: break;
    }
}
template <int T> static void dequant_f32_t(const uint8_t *w, int rows, int cols, size_t row_bytes, float *out) {
    const size_t n = (size_t)rows * (cols / 8);
    for (size_t g = 0; g < n; g++) qmc_dequant_f32_item<T>(w, cols, row_bytes, g, out);
}
static void dequant_f32(int type, const uint8_t *w, int rows, int cols, size_t row_bytes, float *out) {
    switch (type) {
#define X(T) case T: dequant_f32_t<T>(w, rows, cols, row_bytes, out); break;
        QMC_FOR_TYPES(X)
#undef X
    default: break;
    }
}
static void warp_row(int type, const uint8_t *row, int cols, const float *const *in, int np, float *res) {
    switch (type) {
#define X(T) case T: warp_row_t<T>(row, cols, in, np, res); break;
        QMC_FOR_TYPES(X)
#undef X
    default: break;
    }
}

// C = op(A) op(B), column-major, straight from the BLAS definition.
static void blas_gemm(const qmc_gemm_args &a, const float *A, const float *B, float *C) {
    for (int i = 0; i < a.m; i++)
        for (int j = 0; j < a.n; j++) {
            double s = 0;
            for (int l = 0; l < a.k; l++) {
                const float av = a.transa ? A[l + (size_t)i * a.lda] : A[i + (size_t)l * a.lda];
                const float bv = a.transb ? B[j + (size_t)l * a.ldb] : B[l + (size_t)j * a.ldb];
                s += (double)av * bv;
            }
            C[i + (size_t)j * a.ldc] = (float)s;
        }
}

// One stacked expert tensor: expert e's row r at data + (e * rows + r) * row_bytes.
struct emu_mat {
    int type;
    const uint8_t *data;
    size_t row_bytes;
};

// Rounds rows x cols values in place as qmc_k_actq does.
static void emu_actq(float *v, size_t rows, int cols, int kind) {
    const int blk = qmc_act_block(kind);
    if (kind == QMC_ACT_F32) return;
    for (size_t b = 0; b < rows * (size_t)(cols / blk); b++) qmc_actq_block(v + b * blk, v + b * blk, kind);
}

// Emulates qmc_eval_locked on the host with the kernels' item functions (activation rounding,
// the mat-vec lanes and their shuffle tree, the f32/f16 dequantization, the cuBLAS arguments
// with a plain GEMM, SwiGLU, scatter and combine), in the same order. y: [T][E].
// Returns 0, or -1 with the plan's error.
static int emu_moe(const emu_mat &Lg, const emu_mat &Lu, const emu_mat &Ld, int E, int ff, int NE, int K, int T,
                   int gmin, int f16, const float *x, const int32_t *ids, const float *w, float *y, int *n_mv,
                   int *n_gemm, char *err, size_t cap) {
    const size_t slots = (size_t)T * K;
    std::vector<int> tok(slots), slot(slots), cnt(NE), nxt(NE);
    std::vector<qmc_group> mv(slots), gemm(slots);
    qmc_plan pl = {tok.data(), slot.data(), mv.data(), gemm.data(), 0, 0, 0, cnt.data(), nxt.data()};
    if (qmc_plan_build(&pl, T, K, NE, gmin, ids, err, cap) != 0) return -1;
    *n_mv = pl.n_mv;
    *n_gemm = pl.n_gemm;
    const size_t rbg = Lg.row_bytes, rbu = Lu.row_bytes, rbd = Ld.row_bytes;
    const int kg = qmc_act_kind(Lg.type), ku = qmc_act_kind(Lu.type), kd = qmc_act_kind(Ld.type);
    std::vector<float> xg(x, x + (size_t)T * E), xu(x, x + (size_t)T * E);
    emu_actq(xg.data(), T, E, kg);
    emu_actq(xu.data(), T, E, ku);
    std::vector<float> G(slots * ff), H(slots * ff), out(slots * E, NAN);
    // mat-vec groups: qmc_k_matvec for gate (mode 0), up (mode 1), actq, down (mode 0)
    for (int g = 0; g < pl.n_mv; g++) {
        const qmc_group &gr = mv[g];
        const float *in_g[QMC_MV_MAXP], *in_u[QMC_MV_MAXP];
        float res[QMC_MV_MAXP];
        for (int p = 0; p < QMC_MV_MAXP; p++) {
            in_g[p] = xg.data() + (size_t)tok[gr.first + (p < gr.count ? p : 0)] * E;
            in_u[p] = xu.data() + (size_t)tok[gr.first + (p < gr.count ? p : 0)] * E;
        }
        for (int r = 0; r < ff; r++) {
            warp_row(Lg.type, Lg.data + ((size_t)gr.expert * ff + r) * rbg, E, in_g, gr.count, res);
            for (int p = 0; p < gr.count; p++) G[(size_t)slot[gr.first + p] * ff + r] = res[p];
            warp_row(Lu.type, Lu.data + ((size_t)gr.expert * ff + r) * rbu, E, in_u, gr.count, res);
            for (int p = 0; p < gr.count; p++) {
                const size_t at = (size_t)slot[gr.first + p] * ff + r;
                H[at] = qmc_silu(G[at]) * res[p];
            }
        }
    }
    for (int g = 0; g < pl.n_mv; g++)
        for (int p = 0; p < mv[g].count; p++) emu_actq(H.data() + (size_t)slot[mv[g].first + p] * ff, 1, ff, kd);
    for (int g = 0; g < pl.n_mv; g++) {
        const qmc_group &gr = mv[g];
        const float *in[QMC_MV_MAXP];
        float res[QMC_MV_MAXP];
        for (int p = 0; p < QMC_MV_MAXP; p++) in[p] = H.data() + (size_t)slot[gr.first + (p < gr.count ? p : 0)] * ff;
        for (int r = 0; r < E; r++) {
            warp_row(Ld.type, Ld.data + ((size_t)gr.expert * E + r) * rbd, ff, in, gr.count, res);
            for (int p = 0; p < gr.count; p++) out[(size_t)slot[gr.first + p] * E + r] = res[p];
        }
    }
    // gemm groups: gather, dequantize, GEMMs (f32 or f16 inputs, f32 out), SwiGLU, actq, dequantize, GEMM, scatter
    const int ng = pl.n_gemm_pairs;
    // every GEMM input as the f32 value cuBLAS reads (an f16 input widened exactly)
    auto as_input = [f16](float v) { return f16 ? qmc_h2f(qmc_f2h(v)) : v; };
    std::vector<float> Xg((size_t)ng * E), Xu((size_t)ng * E), Wgu((size_t)2 * ff * E), Wd((size_t)E * ff);
    std::vector<float> gu((size_t)ng * 2 * ff), hh((size_t)ng * ff), dm((size_t)ng * E);
    std::vector<uint16_t> w16((size_t)2 * ff * E);
    for (size_t i = 0; i < (size_t)ng * E; i++) {
        Xg[i] = as_input(xg[(size_t)tok[i / E] * E + i % E]);
        Xu[i] = as_input(xu[(size_t)tok[i / E] * E + i % E]);
    }
    for (int g = 0; g < pl.n_gemm; g++) {
        const qmc_group &gr = gemm[g];
        if (f16) {
            dequant_f16(Lg.type, Lg.data + (size_t)gr.expert * ff * rbg, ff, E, rbg, w16.data());
            dequant_f16(Lu.type, Lu.data + (size_t)gr.expert * ff * rbu, ff, E, rbu, w16.data() + (size_t)ff * E);
            for (size_t i = 0; i < Wgu.size(); i++) Wgu[i] = qmc_h2f(w16[i]);
        } else {
            dequant_f32(Lg.type, Lg.data + (size_t)gr.expert * ff * rbg, ff, E, rbg, Wgu.data());
            dequant_f32(Lu.type, Lu.data + (size_t)gr.expert * ff * rbu, ff, E, rbu, Wgu.data() + (size_t)ff * E);
        }
        qmc_gemm_args a = qmc_gemm_xwt(gr.count, ff, E);
        a.ldc = 2 * ff;
        blas_gemm(a, Wgu.data(), Xg.data() + (size_t)gr.first * E, gu.data() + (size_t)gr.first * 2 * ff);
        blas_gemm(a, Wgu.data() + (size_t)ff * E, Xu.data() + (size_t)gr.first * E, gu.data() + (size_t)gr.first * 2 * ff + ff);
    }
    for (size_t i = 0; i < (size_t)ng * ff; i++) {
        const size_t p = i / ff, r = i % ff;
        hh[i] = qmc_silu(gu[p * 2 * ff + r]) * gu[p * 2 * ff + ff + r];
    }
    emu_actq(hh.data(), ng, ff, kd);
    for (size_t i = 0; i < hh.size(); i++) hh[i] = as_input(hh[i]);
    for (int g = 0; g < pl.n_gemm; g++) {
        const qmc_group &gr = gemm[g];
        if (f16) {
            dequant_f16(Ld.type, Ld.data + (size_t)gr.expert * E * rbd, E, ff, rbd, w16.data());
            for (size_t i = 0; i < Wd.size(); i++) Wd[i] = qmc_h2f(w16[i]);
        } else {
            dequant_f32(Ld.type, Ld.data + (size_t)gr.expert * E * rbd, E, ff, rbd, Wd.data());
        }
        blas_gemm(qmc_gemm_xwt(gr.count, E, ff), Wd.data(), hh.data() + (size_t)gr.first * ff, dm.data() + (size_t)gr.first * E);
    }
    for (size_t i = 0; i < (size_t)ng * E; i++) out[(size_t)slot[i / E] * E + i % E] = dm[i];
    for (size_t i = 0; i < (size_t)T * E; i++) y[i] = qmc_combine_item(out.data(), w, K, E, (int)(i / E), (int)(i % E));
    return 0;
}

#endif
