// qwenmoe_cuda.cu - optional CUDA companion of qwenmoe.h: the routed experts on the GPU.
//
// When this object is linked into a program that uses qwenmoe.h, its strong qm_cuda_hook()
// replaces the header's weak default. At model load the header asks probe() for a device; if
// there is one, moe_create() uploads every layer's stacked expert tensors (gate, up, down) once,
// in their file types, and from then on the header calls moe_eval() for each layer's routed
// experts. Without a GPU or driver, probe() says why and everything runs on the CPU; any error
// in moe_create()/moe_eval() is returned as a message and the header computes on the CPU.
//
// BUILD (make cuda does this; mk/cuda.mk):
//   nvcc -O2 -std=c++17 -I. -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90
//        -gencode arch=compute_90,code=compute_90 -c qwenmoe_cuda.cu -o qwenmoe_cuda.o
//   The object needs: -L$CUDA_HOME/lib64 -lcudart -lcublas -lstdc++ -lpthread (and an rpath
//   -Wl,-rpath,$CUDA_HOME/lib64, or LD_LIBRARY_PATH, when CUDA is not in the loader's path).
//
// LINK RECIPES (Linux ELF, gcc/clang + nvcc; tests/cuda/test_link.sh checks each one):
//   object file:    cc app.c qwenmoe_cuda.o -L/usr/local/cuda/lib64 -lcudart -lcublas -lstdc++ -lpthread
//                   The strong definition in the object wins over the header's weak default.
//   static archive: ar rcs libqwenmoe_cuda.a qwenmoe_cuda.o. The header's weak default already
//                   satisfies the reference to qm_cuda_hook, so the linker never pulls the member
//                   out of the archive: the program silently runs on the CPU. Either call
//                   qm_cuda_register() once from the program (a strong symbol only this file
//                   defines, so the reference pulls the member in), or link the archive inside
//                   -Wl,--whole-archive libqwenmoe_cuda.a -Wl,--no-whole-archive.
//   shared library: a weak definition in the executable wins over a strong one in a .so (the
//                   dynamic lookup starts at the executable), so put the header's
//                   implementation and this object in the SAME .so:
//                     cc -fPIC -c impl.c (#define QWENMOE_IMPLEMENTATION) -o impl.o
//                     nvcc ... -Xcompiler -fPIC -c qwenmoe_cuda.cu -o qwenmoe_cuda_pic.o
//                     cc -shared impl.o qwenmoe_cuda_pic.o -o libqwenmoe_cuda.so -lcudart -lcublas -lstdc++
//                   and build the program against that library without its own implementation.
//
// DESIGN
//   Weights: one cudaMalloc per layer tensor, copied from the (mmapped) file as they are, and
//   dequantized inside the kernels. Types: F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q2_K Q3_K Q4_K
//   Q5_K Q6_K IQ4_NL IQ4_XS (every type the header computes with); another type makes
//   moe_create() fail with a message naming the layer, the tensor and the type.
//   moe_eval(): the (token, slot) pairs are grouped by expert on the host. An expert chosen by
//   fewer than gemm_min tokens (default 8; QWENMOE_CUDA_GEMM_MIN overrides it) goes through the
//   mat-vec kernels: one warp per weight row, each lane decodes 8-element slices of the row's
//   blocks (consecutive lanes read consecutive slices, so a warp reads whole blocks), dots them
//   with up to 8 tokens' inputs at once, and the warp sums with shuffles. gate, then up fused
//   with SwiGLU, then down. An expert chosen by gemm_min tokens or more is dequantized to f16
//   in a scratch buffer (gate and up side by side, then down) and multiplied with cuBLAS
//   (cublasGemmEx, f16 inputs, f32 accumulation and output), with a SwiGLU kernel between;
//   QWENMOE_CUDA_GEMM=f32 dequantizes to f32 and multiplies in f32 instead (no tensor cores).
//   Inputs: the CPU kernels of qwenmoe.h quantize their input rows (Q8_0 or Q8_K, by weight
//   type) and compute with those values; both GPU paths round their inputs to the same values
//   first (qmc_actq_block), so that GPU and CPU results differ by the order of the sums (and
//   the f16 rounding of the GEMM path), not by the activation quantization.
//   Every pair writes its expert output to its own row (token t, slot k); a last kernel sums
//   y[t] = sum_k w[t][k] * out[t][k] in slot order. No atomics anywhere: the result is
//   deterministic (the same inputs give the same bits).
//   Threads: moe_eval() may be called from several host threads (one per qm_context). Each
//   handle owns one stream, one cuBLAS handle and one set of scratch and pinned buffers, and a
//   std::mutex serializes whole calls on it; contexts on different threads therefore take
//   turns on the GPU.
//   Memory: before uploading, moe_create() adds up the experts and the buffers and compares
//   them with cudaMemGetInfo(); if they do not fit it refuses with both numbers (set
//   qm_model_params.cuda_cpu_moe_layers to keep the first layers' experts on the CPU).
//
// TESTS (make test-cuda; tests/cuda/): the block decoders, the activation rounding and the
//   per-item work of every kernel are __host__ __device__ functions, run on the CPU by
//   tests/cuda/test_cuda_host.cu against qwenmoe.h (bit for bit where the arithmetic is the
//   same), and by tests/cuda/emu_hook.cu inside the real forward pass; test_cuda_gpu.c compares
//   the GPU with the CPU when a GPU is present.
#include "qwenmoe.h"

// QMC_EMU: compiled as plain C++ by tests/cuda/, with tests/cuda/simt.h standing in for the
// CUDA runtime and cuBLAS, so that these kernels run on the CPU (see TESTS above).
#ifndef QMC_EMU
#include <cuda_runtime.h>
#include <cuda_fp16.h>
#include <cublas_v2.h>
// A kernel launch on a stream. One macro for all of them, so that the host emulation of the
// tests can run the same lines.
#define QMC_LAUNCH(kernel, grid, block, stream) kernel<<<(grid), (block), 0, (stream)>>>
#endif

#include <mutex>
#include <new>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QMC_HD __host__ __device__ __forceinline__
#ifdef __CUDA_ARCH__
#define QMC_UNROLL _Pragma("unroll")
#else
#define QMC_UNROLL
#endif
#define QMC_MV_MAXP 8          /* pairs one mat-vec block handles at once */
#define QMC_MV_WARPS 4         /* rows (warps) per mat-vec block */
#define QMC_GEMM_MIN 8         /* pairs per expert from which the cuBLAS path is used */
#define QMC_RESERVE_BYTES (256ull << 20) /* left free for the CUDA context, cuBLAS, the rest */

// =============================================================================================
// 1. Block decoders, host and device. Each decodes one 8-element slice of a block with the
//    same float operations, in the same order, as qm_dequantize_row (ggml's reference code).
//    On the device the products and sums use the _rn intrinsics so that the compiler cannot
//    contract them into fused multiply-adds: the device results are then bit-exact as well.
// =============================================================================================

QMC_HD float qmc_mul(float a, float b) {
#ifdef __CUDA_ARCH__
    return __fmul_rn(a, b);
#else
    return a * b;
#endif
}
QMC_HD float qmc_add(float a, float b) {
#ifdef __CUDA_ARCH__
    return __fadd_rn(a, b);
#else
    return a + b;
#endif
}
QMC_HD float qmc_sub(float a, float b) {
#ifdef __CUDA_ARCH__
    return __fsub_rn(a, b);
#else
    return a - b;
#endif
}
QMC_HD float qmc_from_bits(uint32_t u) {
#ifdef __CUDA_ARCH__
    return __uint_as_float(u);
#else
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
#endif
}
QMC_HD uint32_t qmc_bits(float f) {
#ifdef __CUDA_ARCH__
    return __float_as_uint(f);
#else
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return u;
#endif
}
QMC_HD int qmc_clz(uint32_t v) { // v != 0
#ifdef __CUDA_ARCH__
    return __clz((int)v);
#else
    return __builtin_clz(v);
#endif
}

// Little-endian loads from byte addresses (blocks such as Q8_0's 34 bytes are not aligned).
QMC_HD uint32_t qmc_u16(const uint8_t *p) { return (uint32_t)p[0] | ((uint32_t)p[1] << 8); }
QMC_HD uint32_t qmc_u32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

// IEEE half -> float, exact. inf and NaN keep the sign, a NaN its payload and comes out quiet.
QMC_HD float qmc_h2f(uint32_t h) {
    uint32_t sign = (h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0x1fu) return qmc_from_bits(sign | 0x7f800000u | (m << 13) | (m ? 0x00400000u : 0u));
    if (e) return qmc_from_bits(sign | ((e + 112u) << 23) | (m << 13));
    if (!m) return qmc_from_bits(sign);
    // subnormal: m * 2^-24; move the leading one to bit 10 and lower the exponent as much
    int sh = qmc_clz(m) - 21;
    return qmc_from_bits(sign | ((uint32_t)(113 - sh) << 23) | (((m << sh) & 0x3ffu) << 13));
}

// float -> IEEE half, round to nearest even (inf on overflow, quiet NaN 0x7e00 | sign).
QMC_HD uint16_t qmc_f2h(float f) {
#ifdef __CUDA_ARCH__
    if (f != f) return (uint16_t)(((qmc_bits(f) >> 16) & 0x8000u) | 0x7e00u);
    return __half_as_ushort(__float2half_rn(f));
#else
    uint32_t w = qmc_bits(f), sign = (w >> 16) & 0x8000u, a = w & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);      // rounds to >= 65520: inf
    if (a >= 0x38800000u) {                                         // normal half
        uint32_t lsb = (a >> 13) & 1u;
        return (uint16_t)(sign | ((a - 0x38000000u + 0xfffu + lsb) >> 13));
    }
    if (a < 0x33000000u) return (uint16_t)sign;                     // below half the smallest
    uint32_t mant = (a & 0x7fffffu) | 0x800000u;                    // subnormal half
    int shift = 126 - (int)(a >> 23);
    uint32_t q = mant >> shift, rest = mant & ((1u << shift) - 1u), halfway = 1u << (shift - 1);
    if (rest > halfway || (rest == halfway && (q & 1u))) q++;
    return (uint16_t)(sign | q);
#endif
}

// The 16 levels of IQ4_NL / IQ4_XS, for host and device code.
__constant__ int8_t qmc_iq4nl_dev[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
#ifndef __CUDA_ARCH__
static const int8_t qmc_iq4nl_host[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
#endif
QMC_HD int qmc_iq4nl(int i) {
#ifdef __CUDA_ARCH__
    return qmc_iq4nl_dev[i];
#else
    return qmc_iq4nl_host[i];
#endif
}

// Q4_K/Q5_K: 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes.
QMC_HD void qmc_k4_scale_min(const uint8_t *s, int j, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

// Q3_K: scale j (0..15), 6 bits stored with +32.
QMC_HD int qmc_q3k_scale(const uint8_t *s, int j) {
    int lo = j < 8 ? (s[j] & 0x0f) : (s[j - 8] >> 4);
    int hi = (s[8 + (j & 3)] >> (2 * (j >> 2))) & 3;
    return (lo | (hi << 4)) - 32;
}

// Nibble k (0..31) of a 16-byte Q4_0-style layout: low nibbles are elements 0..15, high 16..31.
QMC_HD int qmc_nib32(const uint8_t *qs, int k) { return k < 16 ? (qs[k] & 0x0f) : (qs[k - 16] >> 4); }

// qmc_q<TYPE>: QK elements per block (8 for the float types: one slice), BYTES per block,
// slice(b, s, v): elements 8s..8s+7 of the block at b into v.
template <int TYPE> struct qmc_q;

template <> struct qmc_q<QM_TYPE_F32> {
    enum { QK = 8, BYTES = 32 };
    static QMC_HD void slice(const uint8_t *b, int, float *v) {
QMC_UNROLL
        for (int j = 0; j < 8; j++) v[j] = qmc_from_bits(qmc_u32(b + 4 * j));
    }
};
template <> struct qmc_q<QM_TYPE_F16> {
    enum { QK = 8, BYTES = 16 };
    static QMC_HD void slice(const uint8_t *b, int, float *v) {
QMC_UNROLL
        for (int j = 0; j < 8; j++) v[j] = qmc_h2f(qmc_u16(b + 2 * j));
    }
};
template <> struct qmc_q<QM_TYPE_BF16> {
    enum { QK = 8, BYTES = 16 };
    static QMC_HD void slice(const uint8_t *b, int, float *v) {
QMC_UNROLL
        for (int j = 0; j < 8; j++) v[j] = qmc_from_bits(qmc_u16(b + 2 * j) << 16);
    }
};
template <> struct qmc_q<QM_TYPE_Q8_0> { // d, int8 qs[32]
    enum { QK = 32, BYTES = 34 };
    static QMC_HD void slice(const uint8_t *b, int s, float *v) {
        const float d = qmc_h2f(qmc_u16(b));
        const int8_t *qs = (const int8_t *)(b + 2) + 8 * s;
QMC_UNROLL
        for (int j = 0; j < 8; j++) v[j] = qmc_mul((float)qs[j], d);
    }
};
template <> struct qmc_q<QM_TYPE_Q4_0> { // d, qs[16]; value (q - 8) * d
    enum { QK = 32, BYTES = 18 };
    static QMC_HD void slice(const uint8_t *b, int s, float *v) {
        const float d = qmc_h2f(qmc_u16(b));
QMC_UNROLL
        for (int j = 0; j < 8; j++) v[j] = qmc_mul((float)(qmc_nib32(b + 2, 8 * s + j) - 8), d);
    }
};
template <> struct qmc_q<QM_TYPE_Q4_1> { // d, m, qs[16]; value q * d + m
    enum { QK = 32, BYTES = 20 };
    static QMC_HD void slice(const uint8_t *b, int s, float *v) {
        const float d = qmc_h2f(qmc_u16(b)), m = qmc_h2f(qmc_u16(b + 2));
QMC_UNROLL
        for (int j = 0; j < 8; j++) v[j] = qmc_add(qmc_mul((float)qmc_nib32(b + 4, 8 * s + j), d), m);
    }
};
template <> struct qmc_q<QM_TYPE_Q5_0> { // d, qh (u32: bit i is element i's 5th bit), qs[16]
    enum { QK = 32, BYTES = 22 };
    static QMC_HD void slice(const uint8_t *b, int s, float *v) {
        const float d = qmc_h2f(qmc_u16(b));
        const uint32_t qh = qmc_u32(b + 2);
QMC_UNROLL
        for (int j = 0; j < 8; j++) {
            const int i = 8 * s + j;
            const int q = qmc_nib32(b + 6, i) | (int)(((qh >> i) & 1u) << 4);
            v[j] = qmc_mul((float)(q - 16), d);
        }
    }
};
template <> struct qmc_q<QM_TYPE_Q5_1> { // d, m, qh, qs[16]; value q * d + m
    enum { QK = 32, BYTES = 24 };
    static QMC_HD void slice(const uint8_t *b, int s, float *v) {
        const float d = qmc_h2f(qmc_u16(b)), m = qmc_h2f(qmc_u16(b + 2));
        const uint32_t qh = qmc_u32(b + 4);
QMC_UNROLL
        for (int j = 0; j < 8; j++) {
            const int i = 8 * s + j;
            const int q = qmc_nib32(b + 8, i) | (int)(((qh >> i) & 1u) << 4);
            v[j] = qmc_add(qmc_mul((float)q, d), m);
        }
    }
};
template <> struct qmc_q<QM_TYPE_IQ4_NL> { // d, qs[16]; value d * level[q]
    enum { QK = 32, BYTES = 18 };
    static QMC_HD void slice(const uint8_t *b, int s, float *v) {
        const float d = qmc_h2f(qmc_u16(b));
QMC_UNROLL
        for (int j = 0; j < 8; j++) v[j] = qmc_mul(d, (float)qmc_iq4nl(qmc_nib32(b + 2, 8 * s + j)));
    }
};
// Q2_K: scales[16] (scale | min << 4 per 16 elements), qs[64], d, dmin. Element i lies in
// half i/128; within it, 2-bit field (i%128)/32 of byte 16*((i%32)/16) + i%16 of the half's 32.
template <> struct qmc_q<QM_TYPE_Q2_K> {
    enum { QK = 256, BYTES = 84 };
    static QMC_HD void slice(const uint8_t *b, int s, float *v) {
        const float d = qmc_h2f(qmc_u16(b + 80)), dmin = qmc_h2f(qmc_u16(b + 82));
        const int i0 = 8 * s, r = i0 & 127, shift = 2 * (r >> 5);
        const uint8_t *q = b + 16 + 32 * (i0 >> 7) + 16 * ((r >> 4) & 1) + (r & 15);
        const int sc = b[i0 >> 4];
        const float dl = qmc_mul(d, (float)(sc & 0x0f)), ml = qmc_mul(dmin, (float)(sc >> 4));
QMC_UNROLL
        for (int j = 0; j < 8; j++) v[j] = qmc_sub(qmc_mul(dl, (float)((q[j] >> shift) & 3)), ml);
    }
};
// Q3_K: hmask[32], qs[64], scales[12], d. Low 2 bits as Q2_K; high bit from hmask bit
// 4*half + field (set: +0, clear: -4).
template <> struct qmc_q<QM_TYPE_Q3_K> {
    enum { QK = 256, BYTES = 110 };
    static QMC_HD void slice(const uint8_t *b, int s, float *v) {
        const float d = qmc_h2f(qmc_u16(b + 108));
        const int i0 = 8 * s, half = i0 >> 7, r = i0 & 127, field = r >> 5;
        const int off = 16 * ((r >> 4) & 1) + (r & 15);
        const uint8_t *q = b + 32 + 32 * half + off, *hm = b + off;
        const uint32_t mask = 1u << (4 * half + field);
        const float dl = qmc_mul(d, (float)qmc_q3k_scale(b + 96, i0 >> 4));
QMC_UNROLL
        for (int j = 0; j < 8; j++) {
            const int lo = (q[j] >> (2 * field)) & 3;
            v[j] = qmc_mul(dl, (float)(lo - ((hm[j] & mask) ? 0 : 4)));
        }
    }
};
// Q4_K: d, dmin, scales[12], qs[128]. 64-element chunk c = i/64 uses qs[32c..32c+31]: low
// nibbles with sub-block 2c, then high nibbles with sub-block 2c+1. value d*sc*q - dmin*m.
template <> struct qmc_q<QM_TYPE_Q4_K> {
    enum { QK = 256, BYTES = 144 };
    static QMC_HD void slice(const uint8_t *b, int s, float *v) {
        const float d = qmc_h2f(qmc_u16(b)), dmin = qmc_h2f(qmc_u16(b + 2));
        const int c = s >> 3, hi = (s >> 2) & 1, l0 = (s & 3) * 8;
        int sc, m;
        qmc_k4_scale_min(b + 4, 2 * c + hi, &sc, &m);
        const float d1 = qmc_mul(d, (float)sc), m1 = qmc_mul(dmin, (float)m);
        const uint8_t *q = b + 16 + 32 * c + l0;
QMC_UNROLL
        for (int j = 0; j < 8; j++) v[j] = qmc_sub(qmc_mul(d1, (float)(hi ? (q[j] >> 4) : (q[j] & 0x0f))), m1);
    }
};
// Q5_K: d, dmin, scales[12], qh[32], qs[128]. As Q4_K, plus 16 when bit 2c (low nibbles) or
// 2c+1 (high nibbles) of qh[l] is set, l = position within the 32.
template <> struct qmc_q<QM_TYPE_Q5_K> {
    enum { QK = 256, BYTES = 176 };
    static QMC_HD void slice(const uint8_t *b, int s, float *v) {
        const float d = qmc_h2f(qmc_u16(b)), dmin = qmc_h2f(qmc_u16(b + 2));
        const int c = s >> 3, hi = (s >> 2) & 1, l0 = (s & 3) * 8;
        int sc, m;
        qmc_k4_scale_min(b + 4, 2 * c + hi, &sc, &m);
        const float d1 = qmc_mul(d, (float)sc), m1 = qmc_mul(dmin, (float)m);
        const uint8_t *q = b + 48 + 32 * c + l0, *qh = b + 16 + l0;
        const int bit = 1 << (2 * c + hi);
QMC_UNROLL
        for (int j = 0; j < 8; j++) {
            const int q5 = (hi ? (q[j] >> 4) : (q[j] & 0x0f)) + ((qh[j] & bit) ? 16 : 0);
            v[j] = qmc_sub(qmc_mul(d1, (float)q5), m1);
        }
    }
};
// Q6_K: ql[128], qh[64], int8 scales[16], d. Half h = i/128 uses ql[64h..], qh[32h..],
// scales[8h..]; quarter u = (i%128)/32, l = i%32: low 4 bits from ql[l + 32(u&1)] (low
// nibble for u < 2, high for u >= 2), high 2 bits from qh[l] >> 2u, scale l/16 + 2u.
template <> struct qmc_q<QM_TYPE_Q6_K> {
    enum { QK = 256, BYTES = 210 };
    static QMC_HD void slice(const uint8_t *b, int s, float *v) {
        const float d = qmc_h2f(qmc_u16(b + 208));
        const int i0 = 8 * s, h = i0 >> 7, u = (i0 & 127) >> 5, l0 = i0 & 31;
        const uint8_t *ql = b + 64 * h + 32 * (u & 1) + l0, *qh = b + 128 + 32 * h + l0;
        const int sc = (int)(int8_t)b[192 + 8 * h + (l0 >> 4) + 2 * u];
        const float dsc = qmc_mul(d, (float)sc);
QMC_UNROLL
        for (int j = 0; j < 8; j++) {
            const int lo = u < 2 ? (ql[j] & 0x0f) : (ql[j] >> 4);
            const int q = (lo | (((qh[j] >> (2 * u)) & 3) << 4)) - 32;
            v[j] = qmc_mul(dsc, (float)q);
        }
    }
};
// IQ4_XS: d, scales_h (u16), scales_l[4], qs[128]. Sub-block ib = i/32 has a 6-bit scale
// (low 4 bits in scales_l, high 2 in scales_h) minus 32; its 16 bytes in Q4_0 nibble layout.
template <> struct qmc_q<QM_TYPE_IQ4_XS> {
    enum { QK = 256, BYTES = 136 };
    static QMC_HD void slice(const uint8_t *b, int s, float *v) {
        const float d = qmc_h2f(qmc_u16(b));
        const uint32_t sh = qmc_u16(b + 2);
        const int ib = s >> 2, k0 = (s & 3) * 8;
        const int ls = ((b[4 + (ib >> 1)] >> (4 * (ib & 1))) & 0x0f) | (int)(((sh >> (2 * ib)) & 3u) << 4);
        const float dl = qmc_mul(d, (float)(ls - 32));
QMC_UNROLL
        for (int j = 0; j < 8; j++) v[j] = qmc_mul(dl, (float)qmc_iq4nl(qmc_nib32(b + 8 + 16 * ib, k0 + j)));
    }
};

// Every supported type, for the dispatch switches.
#define QMC_FOR_TYPES(X)                                                                        \
    X(QM_TYPE_F32) X(QM_TYPE_F16) X(QM_TYPE_BF16) X(QM_TYPE_Q8_0) X(QM_TYPE_Q4_0) X(QM_TYPE_Q4_1) \
    X(QM_TYPE_Q5_0) X(QM_TYPE_Q5_1) X(QM_TYPE_Q2_K) X(QM_TYPE_Q3_K) X(QM_TYPE_Q4_K)             \
    X(QM_TYPE_Q5_K) X(QM_TYPE_Q6_K) X(QM_TYPE_IQ4_NL) X(QM_TYPE_IQ4_XS)

// Elements per (virtual) block and bytes per block of a supported type; 0 for others.
static int qmc_type_qk(int type) {
    switch (type) {
#define QMC_CASE(T) case T: return qmc_q<T>::QK;
        QMC_FOR_TYPES(QMC_CASE)
#undef QMC_CASE
    default: return 0;
    }
}
static int qmc_type_bytes(int type) {
    switch (type) {
#define QMC_CASE(T) case T: return qmc_q<T>::BYTES;
        QMC_FOR_TYPES(QMC_CASE)
#undef QMC_CASE
    default: return 0;
    }
}
static const char *qmc_type_name(int type) {
    static const char *names[] = {"f32", "f16", "q4_0", "q4_1", "q4_2", "q4_3", "q5_0", "q5_1", "q8_0", "q8_1",
                                  "q2_K", "q3_K", "q4_K", "q5_K", "q6_K", "q8_K", "iq2_xxs", "iq2_xs",
                                  "iq3_xxs", "iq1_s", "iq4_nl", "iq3_s", "iq2_s", "iq4_xs", "i8", "i16",
                                  "i32", "i64", "f64", "iq1_m", "bf16"};
    if (type >= 0 && type < (int)(sizeof(names) / sizeof(names[0]))) return names[type];
    return "unknown";
}

// =============================================================================================
// 2. Per-item work, host and device: what one lane / one thread of each kernel computes. The
//    kernels below are thin wrappers; tests/cuda/test_cuda_host.cu runs these on the CPU.
// =============================================================================================

QMC_HD void qmc_load8(const float *p, float *o) {
#ifdef __CUDA_ARCH__
    const float4 a = reinterpret_cast<const float4 *>(p)[0], b = reinterpret_cast<const float4 *>(p)[1];
    o[0] = a.x; o[1] = a.y; o[2] = a.z; o[3] = a.w; o[4] = b.x; o[5] = b.y; o[6] = b.z; o[7] = b.w;
#else
    for (int j = 0; j < 8; j++) o[j] = p[j];
#endif
}

// One lane's part of the dot products of a weight row (cols values) with np <= MAXP inputs:
// slices lane, lane + nlanes, ... of the row; acc[p] += sum over them of w * in[p].
template <int TYPE>
QMC_HD void qmc_dot_lane(const uint8_t *row, int cols, int lane, int nlanes, const float *const *in, int np,
                         float *acc) {
    typedef qmc_q<TYPE> Q;
    const int spb = Q::QK / 8, nsl = cols / 8;
    for (int s = lane; s < nsl; s += nlanes) {
        float w[8];
        Q::slice(row + (size_t)(s / spb) * Q::BYTES, s % spb, w);
QMC_UNROLL
        for (int p = 0; p < QMC_MV_MAXP; p++) {
            if (p < np) {
                float x[8];
                qmc_load8(in[p] + 8 * (size_t)s, x);
                float a = acc[p];
QMC_UNROLL
                for (int j = 0; j < 8; j++) a = fmaf(w[j], x[j], a);
                acc[p] = a;
            }
        }
    }
}

// One thread of the f16 dequantization: slice g of a [rows][cols] matrix (rows of row_bytes)
// to out[row][col], f16, rounded to nearest even.
template <int TYPE>
QMC_HD void qmc_dequant_f16_item(const uint8_t *w, int cols, size_t row_bytes, size_t g, uint16_t *out) {
    typedef qmc_q<TYPE> Q;
    const int spr = cols / 8, spb = Q::QK / 8;
    const size_t row = g / (size_t)spr;
    const int s = (int)(g % (size_t)spr);
    float v[8];
    Q::slice(w + row * row_bytes + (size_t)(s / spb) * Q::BYTES, s % spb, v);
    uint16_t *o = out + row * (size_t)cols + 8 * (size_t)s;
QMC_UNROLL
    for (int j = 0; j < 8; j++) o[j] = qmc_f2h(v[j]);
}

// The same, to f32 (the f32 GEMM path).
template <int TYPE>
QMC_HD void qmc_dequant_f32_item(const uint8_t *w, int cols, size_t row_bytes, size_t g, float *out) {
    typedef qmc_q<TYPE> Q;
    const int spr = cols / 8, spb = Q::QK / 8;
    const size_t row = g / (size_t)spr;
    const int s = (int)(g % (size_t)spr);
    Q::slice(w + row * row_bytes + (size_t)(s / spb) * Q::BYTES, s % spb, out + row * (size_t)cols + 8 * (size_t)s);
}

QMC_HD float qmc_silu(float x) { return x / (1.0f + expf(-x)); }

// Activations as the CPU kernels see them. qwenmoe.h quantizes each input row of a quantized
// weight once (qm__act_type: Q8_0 for Q8_0/Q4_0/Q5_0/IQ4_NL, Q8_0 with a sum for Q4_1/Q5_1,
// Q8_K for the K-quants and IQ4_XS) and its integer dot products see exactly the values d*q.
// The GPU path rounds its inputs to the same values (qmc_actq_block, bit-exact with the
// header's quantizers), so that GPU and CPU differ only by the order of the sums. (For
// Q4_1/Q5_1 the CPU adds the weight offset with an f16-rounded sum of the activations; the
// GPU uses the exact sum, a difference of about 5e-4 of that term.)
enum { QMC_ACT_F32 = 0, QMC_ACT_Q8_0 = 1, QMC_ACT_Q8_K = 2 };
static int qmc_act_kind(int wtype) {
    switch (wtype) {
    case QM_TYPE_Q8_0: case QM_TYPE_Q4_0: case QM_TYPE_Q5_0: case QM_TYPE_IQ4_NL: case QM_TYPE_Q4_1: case QM_TYPE_Q5_1:
        return QMC_ACT_Q8_0;
    case QM_TYPE_Q2_K: case QM_TYPE_Q3_K: case QM_TYPE_Q4_K: case QM_TYPE_Q5_K: case QM_TYPE_Q6_K: case QM_TYPE_IQ4_XS:
        return QMC_ACT_Q8_K;
    default:
        return QMC_ACT_F32;
    }
}
static int qmc_act_block(int kind) { return kind == QMC_ACT_Q8_K ? 256 : kind == QMC_ACT_Q8_0 ? 32 : 8; }

QMC_HD float qmc_fabs(float x) { return qmc_from_bits(qmc_bits(x) & 0x7fffffffu); }
// round half away from zero (C roundf); integers, inf and NaN unchanged
QMC_HD float qmc_round(float x) {
    const float a = qmc_fabs(x);
    if (!(a < 8388608.0f)) return x;
    float t = (float)(int32_t)a;
    if (qmc_sub(a, t) >= 0.5f) t = qmc_add(t, 1.0f);
    return x < 0 ? -t : t;
}

// float -> int8 as the CPU quantizer stores it: truncation to int32 (INT32_MIN for NaN and
// out-of-range values, as x86's cvttss2si), then the low byte as a signed value.
QMC_HD int qmc_to_i8(float f) {
    const int32_t v = (f >= -2147483648.0f && f < 2147483648.0f) ? (int32_t)f : (int32_t)0x80000000u;
    return (int)(((uint32_t)v & 0xffu) ^ 0x80u) - 0x80;
}

// One activation block (32 values for Q8_0, 256 for Q8_K) is rounded by 32 lanes (one warp),
// each owning per = block/32 consecutive values: qmc_actq_scan finds the lane's largest |x|
// (the first one on ties, as the CPU's sequential loop), qmc_actq_pick merges two lanes'
// findings (larger |x|, else lower index: the merge order does not matter), and
// qmc_actq_write rounds the lane's values with the block's scale. With one lane owning the
// whole block (qmc_actq_block) this is the CPU's loop itself.
struct qmc_amax {
    float amax, mx; // largest |x| and that x
    int idx;        // its index in the block (block size when all are 0)
};
QMC_HD qmc_amax qmc_actq_scan(const float *src, int lane, int per) {
    qmc_amax r = {0.0f, 0.0f, 1 << 30};
    for (int j = lane * per; j < (lane + 1) * per; j++)
        if (r.amax < qmc_fabs(src[j])) {
            r.amax = qmc_fabs(src[j]);
            r.mx = src[j];
            r.idx = j;
        }
    return r;
}
QMC_HD qmc_amax qmc_actq_pick(qmc_amax a, qmc_amax b) {
    return (b.amax > a.amax || (b.amax == a.amax && b.idx < a.idx)) ? b : a;
}
QMC_HD void qmc_actq_write(const float *src, float *dst, int lane, int per, int kind, qmc_amax m) {
    if (kind == QMC_ACT_Q8_0) { // d = amax/127 stored as f16, q = round(x / d)
        const float d = m.amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f, dh = qmc_h2f(qmc_f2h(d));
        for (int j = lane * per; j < (lane + 1) * per; j++)
            dst[j] = qmc_mul((float)qmc_to_i8(qmc_round(qmc_mul(src[j], id))), dh);
    } else if (m.amax == 0.0f) { // Q8_K of an all-zero block
        for (int j = lane * per; j < (lane + 1) * per; j++) dst[j] = 0.0f;
    } else { // Q8_K: d = -max/127 (max: the signed absmax), q = nearest(x / d) <= 127
        const float iscale = -127.0f / m.mx, d = 1.0f / iscale;
        for (int j = lane * per; j < (lane + 1) * per; j++) {
            const uint32_t u = qmc_bits(qmc_add(qmc_mul(iscale, src[j]), 12582912.0f));
            const int q = (int)(u & 0x007fffffu) - 0x00400000;
            dst[j] = qmc_mul(d, (float)(q < 127 ? q : 127));
        }
    }
}
// The whole block by one thread (host code and tests).
QMC_HD void qmc_actq_block(const float *src, float *dst, int kind) {
    const int n = kind == QMC_ACT_Q8_K ? 256 : 32;
    if (kind == QMC_ACT_F32) {
        for (int j = 0; j < 8; j++) dst[j] = src[j];
        return;
    }
    qmc_actq_write(src, dst, 0, n, kind, qmc_actq_scan(src, 0, n));
}


// y[t][d] = sum over slots k (in order) of w[t][k] * out[t*K + k][d].
QMC_HD float qmc_combine_item(const float *out, const float *w, int K, int E, int t, int d) {
    float acc = 0.0f;
    for (int k = 0; k < K; k++) acc = fmaf(w[t * K + k], out[((size_t)t * K + k) * E + d], acc);
    return acc;
}

// The host plan of one moe_eval call. Pairs (token t, slot k) are sorted: first the experts on
// the cuBLAS path (ascending expert id), then the others; within an expert by token. Groups
// point into that order: gemm groups (one per expert) and mat-vec groups (at most QMC_MV_MAXP
// pairs each).
struct qmc_group {
    int expert, first, count;
};
struct qmc_plan {
    int *tok, *slot;        // [T*K] in the sorted order
    qmc_group *mv, *gemm;   // [T*K] each at most
    int n_mv, n_gemm;
    int n_gemm_pairs;       // pairs [0, n_gemm_pairs) belong to gemm groups
    int *count, *next;      // [n_expert] host scratch
};

// Fills the plan; returns 0, or -1 with the message in err (an expert id out of range).
static int qmc_plan_build(qmc_plan *pl, int T, int K, int n_expert, int gemm_min, const int32_t *ids, char *err,
                          size_t cap) {
    int e, t, k, pos = 0;
    for (e = 0; e < n_expert; e++) pl->count[e] = 0;
    for (t = 0; t < T; t++)
        for (k = 0; k < K; k++) {
            int32_t id = ids[t * K + k];
            if (id < 0 || id >= n_expert) {
                snprintf(err, cap, "token %d slot %d selects expert %d, the model has %d", t, k, (int)id, n_expert);
                return -1;
            }
            pl->count[id]++;
        }
    pl->n_mv = pl->n_gemm = 0;
    for (e = 0; e < n_expert; e++) // gemm experts first
        if (pl->count[e] >= gemm_min) {
            pl->gemm[pl->n_gemm].expert = e;
            pl->gemm[pl->n_gemm].first = pos;
            pl->gemm[pl->n_gemm].count = pl->count[e];
            pl->n_gemm++;
            pl->next[e] = pos;
            pos += pl->count[e];
        }
    pl->n_gemm_pairs = pos;
    for (e = 0; e < n_expert; e++)
        if (pl->count[e] > 0 && pl->count[e] < gemm_min) {
            int c;
            pl->next[e] = pos;
            for (c = 0; c < pl->count[e]; c += QMC_MV_MAXP) {
                qmc_group *g = &pl->mv[pl->n_mv++];
                g->expert = e;
                g->first = pos + c;
                g->count = pl->count[e] - c < QMC_MV_MAXP ? pl->count[e] - c : QMC_MV_MAXP;
            }
            pos += pl->count[e];
        }
    for (t = 0; t < T; t++)
        for (k = 0; k < K; k++) {
            int p = pl->next[ids[t * K + k]]++;
            pl->tok[p] = t;
            pl->slot[p] = t * K + k;
        }
    return 0;
}

// The cuBLAS call for "C[n][M] = X[n][Kd] . W[M][Kd]^T" with row-major X (f16), W (f16) and C
// (f32), expressed for column-major BLAS: C^T (M x n, ldc M) = op(A) op(B) with A = W seen
// column-major as Kd x M (lda Kd) and transposed, B = X^T seen column-major as Kd x n (ldb Kd).
struct qmc_gemm_args {
    int transa, transb; // 1: transposed
    int m, n, k, lda, ldb, ldc;
};
static qmc_gemm_args qmc_gemm_xwt(int n, int M, int Kd) {
    qmc_gemm_args a;
    a.transa = 1; a.transb = 0;
    a.m = M; a.n = n; a.k = Kd;
    a.lda = Kd; a.ldb = Kd; a.ldc = M;
    return a;
}

// =============================================================================================
// 3. Kernels
// =============================================================================================

// Mat-vec over groups: block (32, QMC_MV_WARPS), grid (ceil(rows / QMC_MV_WARPS), n_groups).
// Warp y of block x computes weight row r = x * WARPS + y of the group's expert, for each of
// the group's pairs p: dot = W_e[r] . in[in_idx[p]], then
//   mode 0: out[slot[p]][r] = dot
//   mode 1: out[slot[p]][r] = silu(gate[slot[p]][r]) * dot          (up, fused SwiGLU)
template <int TYPE>
__global__ void __launch_bounds__(32 * QMC_MV_WARPS)
qmc_k_matvec(const uint8_t *W, size_t row_bytes, int rows, int cols, const qmc_group *groups, const int *in_idx,
             const int *slot, const float *in, const float *gate, float *out, int mode) {
    const qmc_group g = groups[blockIdx.y];
    const int r = blockIdx.x * QMC_MV_WARPS + threadIdx.y, lane = threadIdx.x;
    if (r >= rows) return;
    const uint8_t *row = W + ((size_t)g.expert * rows + r) * row_bytes;
    const float *src[QMC_MV_MAXP];
    float acc[QMC_MV_MAXP];
QMC_UNROLL
    for (int p = 0; p < QMC_MV_MAXP; p++) {
        acc[p] = 0.0f;
        src[p] = in + (size_t)in_idx[g.first + (p < g.count ? p : 0)] * cols;
    }
    qmc_dot_lane<TYPE>(row, cols, lane, 32, src, g.count, acc);
QMC_UNROLL
    for (int p = 0; p < QMC_MV_MAXP; p++) {
        float a = acc[p];
QMC_UNROLL
        for (int o = 16; o > 0; o >>= 1) a += __shfl_xor_sync(0xffffffffu, a, o);
        if (lane == 0 && p < g.count) {
            const size_t at = (size_t)slot[g.first + p] * rows + r;
            out[at] = mode == 1 ? qmc_silu(gate[at]) * a : a;
        }
    }
}

// Dequantize one expert of a stacked tensor ([n_expert][rows][cols]) to [rows][cols], f16 or f32.
template <int TYPE>
__global__ void qmc_k_dequant(const uint8_t *W, int cols, size_t row_bytes, size_t n_slices, void *out, int f16) {
    const size_t g = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (g >= n_slices) return;
    if (f16) qmc_dequant_f16_item<TYPE>(W, cols, row_bytes, g, static_cast<uint16_t *>(out));
    else qmc_dequant_f32_item<TYPE>(W, cols, row_bytes, g, static_cast<float *>(out));
}

// Activation blocks of n_blocks * block contiguous values, src to dst (may be the same):
// one warp per block, block (32, 4).
__global__ void __launch_bounds__(128) qmc_k_actq(const float *src, float *dst, size_t n_blocks, int kind, int block) {
    const size_t b = (size_t)blockIdx.x * blockDim.y + threadIdx.y;
    const int lane = threadIdx.x, per = block / 32;
    if (b >= n_blocks) return; // whole warps leave together
    src += b * block;
    dst += b * block;
    qmc_amax m = qmc_actq_scan(src, lane, per);
    for (int o = 16; o > 0; o >>= 1) {
        qmc_amax other;
        other.amax = __shfl_xor_sync(0xffffffffu, m.amax, o);
        other.mx = __shfl_xor_sync(0xffffffffu, m.mx, o);
        other.idx = __shfl_xor_sync(0xffffffffu, m.idx, o);
        m = qmc_actq_pick(m, other);
    }
    qmc_actq_write(src, dst, lane, per, kind, m); // every lane read its values before any write
}

// X[p][c] = x[tok[p]][c] for the gemm pairs, f16 or f32.
__global__ void qmc_k_gather(const float *x, const int *tok, int n_pairs, int E, void *out, int f16) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)n_pairs * E) return;
    const float v = x[(size_t)tok[i / E] * E + i % E];
    if (f16) static_cast<uint16_t *>(out)[i] = qmc_f2h(v);
    else static_cast<float *>(out)[i] = v;
}

// H[p][r] = silu(GU[p][r]) * GU[p][ff + r].
__global__ void qmc_k_swiglu(const float *gu, int n_pairs, int ff, float *hout) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)n_pairs * ff) return;
    const size_t p = i / ff, r = i % ff;
    hout[i] = qmc_silu(gu[p * 2 * ff + r]) * gu[p * 2 * ff + ff + r];
}

__global__ void qmc_k_to_f16(const float *src, size_t n, uint16_t *dst) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) dst[i] = qmc_f2h(src[i]);
}

// out[slot[p]][d] = D[p][d] for the gemm pairs.
__global__ void qmc_k_scatter(const float *dm, const int *slot, int n_pairs, int E, float *out) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)n_pairs * E) return;
    const size_t p = i / E, d = i % E;
    out[(size_t)slot[p] * E + d] = dm[i];
}

__global__ void qmc_k_combine(const float *out, const float *w, int T, int K, int E, float *y) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)T * E) return;
    y[i] = qmc_combine_item(out, w, K, E, (int)(i / E), (int)(i % E));
}

// =============================================================================================
// 4. The handle: create, eval, free
// =============================================================================================

struct qmc_tensor {
    int type;
    int cols, rows, n_expert;
    size_t row_bytes;
    uint8_t *dev; // NULL: the layer stays on the CPU
};
struct qmc_layer {
    qmc_tensor gate, up, down;
};

struct qmc_handle {
    std::mutex mu;
    int device;
    int n_layer, E, ff, n_expert, K, max_tokens, gemm_min;
    qmc_layer *layers;
    cudaStream_t stream;
    cublasHandle_t blas;
    // device buffers
    float *d_x, *d_w, *d_y;           // [max_tokens][E], [slots], [max_tokens][E]
    float *d_xqg, *d_xqu;             // x as gate's / up's CPU kernels see it [max_tokens][E]
    int *d_ints;                      // tok, slot, mv groups (3 ints each)
    float *d_g, *d_h, *d_out;         // [slots][ff], [slots][ff], [slots][E]
    void *d_wgu, *d_wd;               // dequantized expert, f32 or f16: [2 ff][E], [E][ff]
    void *d_xsg, *d_xsu;              // gathered gemm inputs of gate and up, f32 or f16 [slots][E]
    uint16_t *d_h16;                  // f16 copy of the down input [slots][ff] (f16 GEMM)
    int gemm_f16;                     // 1: f16 GEMM inputs (tensor cores), 0: f32
    float *d_gu, *d_dm;               // [slots][2 ff], [slots][E]
    // pinned host staging
    float *h_x, *h_w, *h_y;
    int *h_ints;
    // host plan scratch
    qmc_plan plan;
    int *plan_mem;
};

static int qmc_errf(char *err, size_t cap, const char *fmt, ...) {
    if (err && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return -1;
}

#define QMC_CU(call)                                                                          \
    do {                                                                                      \
        cudaError_t e_ = (call);                                                              \
        if (e_ != cudaSuccess)                                                                \
            return qmc_errf(err, cap, "%s failed: %s (%s)", #call, cudaGetErrorName(e_),     \
                            cudaGetErrorString(e_));                                          \
    } while (0)
#define QMC_BLAS(call)                                                                        \
    do {                                                                                      \
        cublasStatus_t s_ = (call);                                                           \
        if (s_ != CUBLAS_STATUS_SUCCESS)                                                      \
            return qmc_errf(err, cap, "%s failed: %s (%d)", #call, cublasGetStatusString(s_), \
                            (int)s_);                                                         \
    } while (0)
#define QMC_LAUNCHED(what)                                                                    \
    do {                                                                                      \
        cudaError_t e_ = cudaGetLastError();                                                  \
        if (e_ != cudaSuccess)                                                                \
            return qmc_errf(err, cap, "kernel %s: %s (%s)", what, cudaGetErrorName(e_),      \
                            cudaGetErrorString(e_));                                          \
    } while (0)

static int qmc_probe(char *desc, size_t cap) {
    int n = 0, drv = 0, rt = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        cudaDriverGetVersion(&drv);
        cudaRuntimeGetVersion(&rt);
        if (drv == 0)
            snprintf(desc, cap, "CUDA unavailable: no CUDA driver (%s: %s)", cudaGetErrorName(e), cudaGetErrorString(e));
        else
            snprintf(desc, cap, "CUDA unavailable: %s (%s; driver %d, runtime %d)", cudaGetErrorString(e),
                     cudaGetErrorName(e), drv, rt);
        return 0;
    }
    if (n == 0) {
        snprintf(desc, cap, "no CUDA device");
        return 0;
    }
    cudaDeviceProp p;
    e = cudaGetDeviceProperties(&p, 0);
    if (e != cudaSuccess) {
        snprintf(desc, cap, "cannot query CUDA device 0: %s", cudaGetErrorString(e));
        return 0;
    }
    if (p.major < 8) {
        snprintf(desc, cap, "%s is sm_%d%d; qwenmoe_cuda.o is built for sm_80 and newer", p.name, p.major, p.minor);
        return 0;
    }
    snprintf(desc, cap, "%s (sm_%d%d, %.1f GiB)", p.name, p.major, p.minor,
             (double)p.totalGlobalMem / (1024.0 * 1024.0 * 1024.0));
    return 1;
}

static void qmc_destroy(qmc_handle *h) {
    if (!h) return;
    if (h->layers) {
        for (int il = 0; il < h->n_layer; il++) {
            cudaFree(h->layers[il].gate.dev);
            cudaFree(h->layers[il].up.dev);
            cudaFree(h->layers[il].down.dev);
        }
        free(h->layers);
    }
    void *dev[] = {h->d_x, h->d_w, h->d_y, h->d_xqg, h->d_xqu, h->d_ints, h->d_g, h->d_h, h->d_out,
                   h->d_wgu, h->d_wd, h->d_xsg, h->d_xsu, h->d_h16, h->d_gu, h->d_dm};
    for (size_t i = 0; i < sizeof(dev) / sizeof(dev[0]); i++) cudaFree(dev[i]);
    void *pinned[] = {h->h_x, h->h_w, h->h_y, h->h_ints};
    for (size_t i = 0; i < sizeof(pinned) / sizeof(pinned[0]); i++) cudaFreeHost(pinned[i]);
    if (h->blas) cublasDestroy(h->blas);
    if (h->stream) cudaStreamDestroy(h->stream);
    free(h->plan_mem);
    delete h;
}

static void qmc_free(void *p) { qmc_destroy(static_cast<qmc_handle *>(p)); }

// Checks one tensor of the description against the model's shape and this file's types.
static int qmc_check_tensor(const qm_cuda_tensor *t, int il, const char *name, int64_t cols, int64_t rows,
                            int64_t n_expert, char *err, size_t cap) {
    const int qk = qmc_type_qk(t->type), bytes = qmc_type_bytes(t->type);
    if (!qk)
        return qmc_errf(err, cap, "layer %d %s: type %s (%d) has no CUDA kernel (supported: f32 f16 bf16 q8_0 q4_0 "
                        "q4_1 q5_0 q5_1 q2_K q3_K q4_K q5_K q6_K iq4_nl iq4_xs)", il, name, qmc_type_name(t->type),
                        t->type);
    if (t->cols != cols || t->rows != rows || t->n_expert != n_expert)
        return qmc_errf(err, cap, "layer %d %s: shape [%lld, %lld, %lld], expected [%lld, %lld, %lld]", il, name,
                        (long long)t->cols, (long long)t->rows, (long long)t->n_expert, (long long)cols,
                        (long long)rows, (long long)n_expert);
    if (t->cols % qk != 0 || t->row_bytes != (size_t)(t->cols / qk) * (size_t)bytes)
        return qmc_errf(err, cap, "layer %d %s: %lld %s values in rows of %zu bytes, expected %lld bytes", il, name,
                        (long long)t->cols, qmc_type_name(t->type), t->row_bytes,
                        (long long)(t->cols / qk * bytes));
    if (!t->data) return qmc_errf(err, cap, "layer %d %s: no data", il, name);
    return 0;
}

// Device bytes of the buffers below (besides the weights), as allocated in qmc_create_impl.
static size_t qmc_buffer_bytes(int E, int ff, int K, int max_tokens) {
    const size_t slots = (size_t)max_tokens * K, T = (size_t)max_tokens, n_ints = slots * 2 + slots * 3;
    return T * E * 4 * 4                              // d_x, d_y, d_xqg, d_xqu
           + slots * 4 + n_ints * 4                   // d_w, d_ints
           + slots * ff * 4 * 2 + slots * E * 4       // d_g, d_h, d_out
           + (size_t)3 * ff * E * 4                   // d_wgu, d_wd (room for f32)
           + slots * E * 4 * 2 + slots * ff * 2       // d_xsg, d_xsu (room for f32), d_h16
           + slots * 2 * ff * 4 + slots * E * 4;      // d_gu, d_dm
}

// Pairs per expert from which the cuBLAS path is used: QMC_GEMM_MIN, or QWENMOE_CUDA_GEMM_MIN
// (1: every expert through cuBLAS; a huge value: every expert through the mat-vec kernels).
static int qmc_gemm_min(int *out, char *err, size_t cap) {
    const char *env = getenv("QWENMOE_CUDA_GEMM_MIN");
    *out = QMC_GEMM_MIN;
    if (env && *env) {
        char *end;
        long v = strtol(env, &end, 10);
        if (*end || v < 1) return qmc_errf(err, cap, "QWENMOE_CUDA_GEMM_MIN='%s': expected an integer >= 1", env);
        *out = v > 1000000 ? 1000000 : (int)v;
    }
    return 0;
}

// The GEMM path's input type: f16 (default: tensor cores, half the scratch traffic; rounding
// weights and inputs to f16 costs about 5e-4 relative per expert output) or, with
// QWENMOE_CUDA_GEMM=f32, f32 (weights and inputs exactly as the CPU kernels see them; the
// result then differs from the CPU's by the order of the sums only).
static int qmc_gemm_type(int *f16, char *err, size_t cap) {
    const char *env = getenv("QWENMOE_CUDA_GEMM");
    *f16 = 1;
    if (!env || !*env || !strcmp(env, "f16")) return 0;
    if (!strcmp(env, "f32")) {
        *f16 = 0;
        return 0;
    }
    return qmc_errf(err, cap, "QWENMOE_CUDA_GEMM='%s': expected f16 or f32", env);
}

static size_t qmc_tensor_bytes(const qm_cuda_tensor *t) {
    return (size_t)t->n_expert * (size_t)t->rows * t->row_bytes;
}

static int qmc_create_impl(qmc_handle *h, const qm_cuda_moe_desc *d, char *err, size_t cap) {
    const int E = d->n_embd, ff = d->n_ff_exp, K = d->n_expert_used, NE = d->n_expert;
    if (d->n_layer <= 0 || E <= 0 || ff <= 0 || NE <= 0 || K <= 0 || K > NE || d->max_tokens <= 0 || !d->layers)
        return qmc_errf(err, cap, "bad description: n_layer %d n_embd %d n_ff_exp %d n_expert %d n_expert_used %d "
                        "max_tokens %d", d->n_layer, E, ff, NE, K, d->max_tokens);
    if (E % 8 || ff % 8)
        return qmc_errf(err, cap, "n_embd %d and n_ff_exp %d must be multiples of 8", E, ff);
    if ((size_t)d->max_tokens * K > (size_t)1 << 24)
        return qmc_errf(err, cap, "max_tokens %d x n_expert_used %d is too large", d->max_tokens, K);
    h->n_layer = d->n_layer; h->E = E; h->ff = ff; h->n_expert = NE; h->K = K; h->max_tokens = d->max_tokens;
    if (qmc_gemm_min(&h->gemm_min, err, cap) != 0 || qmc_gemm_type(&h->gemm_f16, err, cap) != 0) return -1;

    // shapes, types, bytes
    size_t weights = 0;
    int on_gpu = 0;
    for (int il = 0; il < d->n_layer; il++) {
        const qm_cuda_moe_layer *L = &d->layers[il];
        if (!L->gate.data) continue;
        if (qmc_check_tensor(&L->gate, il, "ffn_gate_exps", E, ff, NE, err, cap) ||
            qmc_check_tensor(&L->up, il, "ffn_up_exps", E, ff, NE, err, cap) ||
            qmc_check_tensor(&L->down, il, "ffn_down_exps", ff, E, NE, err, cap))
            return -1;
        weights += qmc_tensor_bytes(&L->gate) + qmc_tensor_bytes(&L->up) + qmc_tensor_bytes(&L->down);
        on_gpu++;
    }
    if (!on_gpu) return qmc_errf(err, cap, "no layer has its experts on the GPU");

    const size_t slots = (size_t)d->max_tokens * K, T = (size_t)d->max_tokens;
    const size_t n_ints = slots * 2 + slots * 3;
    const size_t buffers = qmc_buffer_bytes(E, ff, K, d->max_tokens);

    QMC_CU(cudaGetDevice(&h->device));
    size_t free_b = 0, total_b = 0;
    QMC_CU(cudaMemGetInfo(&free_b, &total_b));
    const size_t need = weights + buffers + QMC_RESERVE_BYTES;
    if (need > free_b)
        return qmc_errf(err, cap, "the experts of %d layers need %zu bytes (%.1f MiB) of device memory with the "
                        "buffers (%.1f MiB) and a reserve (%.0f MiB), the GPU has %zu bytes (%.1f MiB) free of %.1f "
                        "MiB: set cuda_cpu_moe_layers to keep the first layers' experts on the CPU",
                        on_gpu, need, need / 1048576.0, buffers / 1048576.0, QMC_RESERVE_BYTES / 1048576.0, free_b,
                        free_b / 1048576.0, total_b / 1048576.0);

    // weights, uploaded once, as they are in the file
    h->layers = static_cast<qmc_layer *>(calloc((size_t)d->n_layer, sizeof(qmc_layer)));
    if (!h->layers) return qmc_errf(err, cap, "out of host memory");
    for (int il = 0; il < d->n_layer; il++) {
        const qm_cuda_moe_layer *L = &d->layers[il];
        if (!L->gate.data) continue;
        const qm_cuda_tensor *src[3] = {&L->gate, &L->up, &L->down};
        qmc_tensor *dst[3] = {&h->layers[il].gate, &h->layers[il].up, &h->layers[il].down};
        for (int j = 0; j < 3; j++) {
            const size_t nb = qmc_tensor_bytes(src[j]);
            dst[j]->type = src[j]->type;
            dst[j]->cols = (int)src[j]->cols;
            dst[j]->rows = (int)src[j]->rows;
            dst[j]->n_expert = (int)src[j]->n_expert;
            dst[j]->row_bytes = src[j]->row_bytes;
            QMC_CU(cudaMalloc((void **)&dst[j]->dev, nb));
            QMC_CU(cudaMemcpy(dst[j]->dev, src[j]->data, nb, cudaMemcpyHostToDevice));
        }
    }

    // buffers
    QMC_CU(cudaMalloc((void **)&h->d_x, T * E * 4));
    QMC_CU(cudaMalloc((void **)&h->d_y, T * E * 4));
    QMC_CU(cudaMalloc((void **)&h->d_w, slots * 4));
    QMC_CU(cudaMalloc((void **)&h->d_ints, n_ints * 4));
    QMC_CU(cudaMalloc((void **)&h->d_g, slots * ff * 4));
    QMC_CU(cudaMalloc((void **)&h->d_h, slots * ff * 4));
    QMC_CU(cudaMalloc((void **)&h->d_out, slots * E * 4));
    QMC_CU(cudaMalloc((void **)&h->d_xqg, T * E * 4));
    QMC_CU(cudaMalloc((void **)&h->d_xqu, T * E * 4));
    QMC_CU(cudaMalloc(&h->d_wgu, (size_t)2 * ff * E * 4));
    QMC_CU(cudaMalloc(&h->d_wd, (size_t)ff * E * 4));
    QMC_CU(cudaMalloc(&h->d_xsg, slots * E * 4));
    QMC_CU(cudaMalloc(&h->d_xsu, slots * E * 4));
    QMC_CU(cudaMalloc((void **)&h->d_h16, slots * ff * 2));
    QMC_CU(cudaMalloc((void **)&h->d_gu, slots * 2 * ff * 4));
    QMC_CU(cudaMalloc((void **)&h->d_dm, slots * E * 4));
    QMC_CU(cudaMallocHost((void **)&h->h_x, T * E * 4));
    QMC_CU(cudaMallocHost((void **)&h->h_y, T * E * 4));
    QMC_CU(cudaMallocHost((void **)&h->h_w, slots * 4));
    QMC_CU(cudaMallocHost((void **)&h->h_ints, n_ints * 4));
    QMC_CU(cudaStreamCreateWithFlags(&h->stream, cudaStreamNonBlocking));
    QMC_BLAS(cublasCreate(&h->blas));
    QMC_BLAS(cublasSetStream(h->blas, h->stream));

    // host plan scratch: tok, slot [slots]; mv, gemm groups [slots] each; count, next [NE]
    h->plan_mem = static_cast<int *>(malloc(sizeof(int) * (slots * 2 + slots * 6 + (size_t)NE * 2)));
    if (!h->plan_mem) return qmc_errf(err, cap, "out of host memory");
    h->plan.tok = h->plan_mem;
    h->plan.slot = h->plan.tok + slots;
    h->plan.mv = reinterpret_cast<qmc_group *>(h->plan.slot + slots);
    h->plan.gemm = h->plan.mv + slots;
    h->plan.count = reinterpret_cast<int *>(h->plan.gemm + slots);
    h->plan.next = h->plan.count + NE;

    if (d->log) {
        char msg[256];
        snprintf(msg, sizeof(msg), "CUDA: uploaded %.1f MiB of experts (%d layers), %.1f MiB of buffers; cuBLAS "
                 "(%s) from %d tokens per expert", weights / 1048576.0, on_gpu, buffers / 1048576.0,
                 h->gemm_f16 ? "f16" : "f32", h->gemm_min);
        d->log(d->log_user, QM_LOG_INFO, msg);
    }
    return 0;
}

static void *qmc_moe_create(const qm_cuda_moe_desc *d, char *err, size_t cap) {
    if (!d) {
        qmc_errf(err, cap, "no description");
        return NULL;
    }
    qmc_handle *h = new (std::nothrow) qmc_handle();
    if (!h) {
        qmc_errf(err, cap, "out of host memory");
        return NULL;
    }
    if (qmc_create_impl(h, d, err, cap) != 0) {
        qmc_destroy(h);
        return NULL;
    }
    return h;
}

// Launches the kernels of one type; a switch over the type picks the instantiation.
static int qmc_launch_matvec(const qmc_tensor *t, int n_groups, const qmc_group *groups, const int *in_idx,
                             const int *slot, const float *in, const float *gate, float *out, int mode,
                             cudaStream_t st, char *err, size_t cap) {
    dim3 block(32, QMC_MV_WARPS), grid((unsigned)((t->rows + QMC_MV_WARPS - 1) / QMC_MV_WARPS), (unsigned)n_groups);
    switch (t->type) {
#define QMC_CASE(T)                                                                                          \
    case T:                                                                                                  \
        QMC_LAUNCH(qmc_k_matvec<T>, grid, block, st)(t->dev, t->row_bytes, t->rows, t->cols, groups, in_idx, slot, \
                                                 in, gate, out, mode);                                       \
        break;
        QMC_FOR_TYPES(QMC_CASE)
#undef QMC_CASE
    default: return qmc_errf(err, cap, "type %s has no mat-vec kernel", qmc_type_name(t->type));
    }
    QMC_LAUNCHED("matvec");
    return 0;
}

static int qmc_launch_dequant(const qmc_tensor *t, int expert, void *out, int f16, cudaStream_t st, char *err,
                              size_t cap) {
    const size_t n_slices = (size_t)t->rows * (t->cols / 8);
    const unsigned threads = 256, blocks = (unsigned)((n_slices + threads - 1) / threads);
    const uint8_t *w = t->dev + (size_t)expert * t->rows * t->row_bytes;
    switch (t->type) {
#define QMC_CASE(T)                                                                                   \
    case T: QMC_LAUNCH(qmc_k_dequant<T>, blocks, threads, st)(w, t->cols, t->row_bytes, n_slices, out, f16); break;
        QMC_FOR_TYPES(QMC_CASE)
#undef QMC_CASE
    default: return qmc_errf(err, cap, "type %s has no dequantization kernel", qmc_type_name(t->type));
    }
    QMC_LAUNCHED("dequant");
    return 0;
}

static unsigned qmc_blocks(size_t n, unsigned threads) { return (unsigned)((n + threads - 1) / threads); }

// rows x cols values (cols a multiple of the kind's block) rounded as the CPU kernels see them
static int qmc_launch_actq(const float *src, float *dst, size_t rows, int cols, int kind, cudaStream_t st,
                           char *err, size_t cap) {
    const int block = qmc_act_block(kind);
    const size_t n_blocks = rows * (size_t)(cols / block);
    if (kind == QMC_ACT_F32) {
        if (src != dst) QMC_CU(cudaMemcpyAsync(dst, src, rows * cols * sizeof(float), cudaMemcpyDeviceToDevice, st));
        return 0;
    }
    QMC_LAUNCH(qmc_k_actq, qmc_blocks(n_blocks, 4), dim3(32, 4), st)(src, dst, n_blocks, kind, block);
    QMC_LAUNCHED("actq");
    return 0;
}

// C[n][M] (row stride ldc) = X[n][Kd] . W[M][Kd]^T, f16 or f32 inputs, f32 accumulation and output
static int qmc_gemm(qmc_handle *h, int n, int M, int Kd, const void *W, const void *X, float *C, int ldc, char *err,
                    size_t cap) {
    qmc_gemm_args a = qmc_gemm_xwt(n, M, Kd);
    const float one = 1.0f, zero = 0.0f;
    const cudaDataType in = h->gemm_f16 ? CUDA_R_16F : CUDA_R_32F;
    a.ldc = ldc;
    QMC_BLAS(cublasGemmEx(h->blas, a.transa ? CUBLAS_OP_T : CUBLAS_OP_N, a.transb ? CUBLAS_OP_T : CUBLAS_OP_N, a.m,
                          a.n, a.k, &one, W, in, a.lda, X, in, a.ldb, &zero, C, CUDA_R_32F, a.ldc,
                          CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    return 0;
}

static int qmc_eval_locked(qmc_handle *h, int il, int T, const float *x, const int32_t *ids, const float *w,
                           float *y, char *err, size_t cap) {
    const int E = h->E, ff = h->ff, K = h->K;
    if (il < 0 || il >= h->n_layer) return qmc_errf(err, cap, "layer %d out of range (%d layers)", il, h->n_layer);
    const qmc_layer *L = &h->layers[il];
    if (!L->gate.dev) return qmc_errf(err, cap, "layer %d keeps its experts on the CPU", il);
    if (T <= 0 || T > h->max_tokens) return qmc_errf(err, cap, "%d tokens, expected 1..%d", T, h->max_tokens);
    if (!x || !ids || !w || !y) return qmc_errf(err, cap, "NULL argument");

    qmc_plan *pl = &h->plan;
    if (qmc_plan_build(pl, T, K, h->n_expert, h->gemm_min, ids, err, cap) != 0) return -1;
    const int n_pairs = T * K;

    // stage the inputs in pinned memory: x, w, then the ints (tok, slot, mat-vec groups)
    memcpy(h->h_x, x, sizeof(float) * (size_t)T * E);
    memcpy(h->h_w, w, sizeof(float) * (size_t)n_pairs);
    int *hi = h->h_ints;
    memcpy(hi, pl->tok, sizeof(int) * n_pairs);
    memcpy(hi + n_pairs, pl->slot, sizeof(int) * n_pairs);
    for (int g = 0; g < pl->n_mv; g++) {
        hi[2 * n_pairs + 3 * g] = pl->mv[g].expert;
        hi[2 * n_pairs + 3 * g + 1] = pl->mv[g].first;
        hi[2 * n_pairs + 3 * g + 2] = pl->mv[g].count;
    }
    const size_t n_ints = (size_t)2 * n_pairs + (size_t)3 * pl->n_mv;
    const int *d_tok = h->d_ints, *d_slot = h->d_ints + n_pairs;
    const qmc_group *d_mv = reinterpret_cast<const qmc_group *>(h->d_ints + 2 * n_pairs);
    cudaStream_t st = h->stream;
    QMC_CU(cudaMemcpyAsync(h->d_x, h->h_x, sizeof(float) * (size_t)T * E, cudaMemcpyHostToDevice, st));
    QMC_CU(cudaMemcpyAsync(h->d_w, h->h_w, sizeof(float) * (size_t)n_pairs, cudaMemcpyHostToDevice, st));
    QMC_CU(cudaMemcpyAsync(h->d_ints, h->h_ints, sizeof(int) * n_ints, cudaMemcpyHostToDevice, st));

    // the inputs as the CPU kernels of gate, up and down see them
    const int kg = qmc_act_kind(L->gate.type), ku = qmc_act_kind(L->up.type), kd = qmc_act_kind(L->down.type);
    const float *xg = h->d_x, *xu = h->d_x;
    if (kg != QMC_ACT_F32) {
        if (qmc_launch_actq(h->d_x, h->d_xqg, T, E, kg, st, err, cap)) return -1;
        xg = h->d_xqg;
    }
    if (ku == kg) xu = xg;
    else if (ku != QMC_ACT_F32) {
        if (qmc_launch_actq(h->d_x, h->d_xqu, T, E, ku, st, err, cap)) return -1;
        xu = h->d_xqu;
    }

    // experts with few tokens: mat-vec, in-kernel dequantization
    if (pl->n_mv > 0) {
        if (qmc_launch_matvec(&L->gate, pl->n_mv, d_mv, d_tok, d_slot, xg, NULL, h->d_g, 0, st, err, cap) ||
            qmc_launch_matvec(&L->up, pl->n_mv, d_mv, d_tok, d_slot, xu, h->d_g, h->d_h, 1, st, err, cap) ||
            qmc_launch_actq(h->d_h, h->d_h, (size_t)n_pairs, ff, kd, st, err, cap) ||
            qmc_launch_matvec(&L->down, pl->n_mv, d_mv, d_slot, d_slot, h->d_h, NULL, h->d_out, 0, st, err, cap))
            return -1;
    }
    // experts with many tokens: dequantize (f32, or f16), cuBLAS
    const int ng = pl->n_gemm_pairs, f16 = h->gemm_f16;
    const size_t vb = f16 ? 2 : 4; // bytes per GEMM input value
    if (ng > 0) {
        char *xsg = static_cast<char *>(h->d_xsg), *xsu = xu == xg ? xsg : static_cast<char *>(h->d_xsu);
        QMC_LAUNCH(qmc_k_gather, qmc_blocks((size_t)ng * E, 256), 256, st)(xg, d_tok, ng, E, xsg, f16);
        QMC_LAUNCHED("gather");
        if (xsu != xsg) {
            QMC_LAUNCH(qmc_k_gather, qmc_blocks((size_t)ng * E, 256), 256, st)(xu, d_tok, ng, E, xsu, f16);
            QMC_LAUNCHED("gather");
        }
        char *wg = static_cast<char *>(h->d_wgu), *wu = wg + (size_t)ff * E * vb;
        for (int g = 0; g < pl->n_gemm; g++) {
            const qmc_group *G = &pl->gemm[g];
            float *gu = h->d_gu + (size_t)G->first * 2 * ff;
            if (qmc_launch_dequant(&L->gate, G->expert, wg, f16, st, err, cap) ||
                qmc_launch_dequant(&L->up, G->expert, wu, f16, st, err, cap) ||
                qmc_gemm(h, G->count, ff, E, wg, xsg + (size_t)G->first * E * vb, gu, 2 * ff, err, cap) ||
                qmc_gemm(h, G->count, ff, E, wu, xsu + (size_t)G->first * E * vb, gu + ff, 2 * ff, err, cap))
                return -1;
        }
        // SwiGLU into d_g (free again: the mat-vec kernels before are done with it), rounded
        // as down's CPU kernel sees its input
        QMC_LAUNCH(qmc_k_swiglu, qmc_blocks((size_t)ng * ff, 256), 256, st)(h->d_gu, ng, ff, h->d_g);
        QMC_LAUNCHED("swiglu");
        if (qmc_launch_actq(h->d_g, h->d_g, (size_t)ng, ff, kd, st, err, cap)) return -1;
        const void *hin = h->d_g;
        if (f16) {
            QMC_LAUNCH(qmc_k_to_f16, qmc_blocks((size_t)ng * ff, 256), 256, st)(h->d_g, (size_t)ng * ff, h->d_h16);
            QMC_LAUNCHED("to_f16");
            hin = h->d_h16;
        }
        for (int g = 0; g < pl->n_gemm; g++) {
            const qmc_group *G = &pl->gemm[g];
            if (qmc_launch_dequant(&L->down, G->expert, h->d_wd, f16, st, err, cap) ||
                qmc_gemm(h, G->count, E, ff, h->d_wd, static_cast<const char *>(hin) + (size_t)G->first * ff * vb,
                         h->d_dm + (size_t)G->first * E, E, err, cap))
                return -1;
        }
        QMC_LAUNCH(qmc_k_scatter, qmc_blocks((size_t)ng * E, 256), 256, st)(h->d_dm, d_slot, ng, E, h->d_out);
        QMC_LAUNCHED("scatter");
    }
    QMC_LAUNCH(qmc_k_combine, qmc_blocks((size_t)T * E, 256), 256, st)(h->d_out, h->d_w, T, K, E, h->d_y);
    QMC_LAUNCHED("combine");
    QMC_CU(cudaMemcpyAsync(h->h_y, h->d_y, sizeof(float) * (size_t)T * E, cudaMemcpyDeviceToHost, st));
    QMC_CU(cudaStreamSynchronize(st));
    memcpy(y, h->h_y, sizeof(float) * (size_t)T * E);
    return 0;
}

static int qmc_moe_eval(void *hv, int layer, int T, const float *x, const int32_t *ids, const float *w, float *y,
                        char *err, size_t cap) {
    qmc_handle *h = static_cast<qmc_handle *>(hv);
    if (!h) return qmc_errf(err, cap, "no CUDA handle");
    std::lock_guard<std::mutex> lock(h->mu);
    int prev = -1;
    if (cudaGetDevice(&prev) != cudaSuccess) prev = -1;
    if (prev != h->device && cudaSetDevice(h->device) != cudaSuccess)
        return qmc_errf(err, cap, "cannot select CUDA device %d", h->device);
    int r = qmc_eval_locked(h, layer, T, x, ids, w, y, err, cap);
    if (r != 0) cudaStreamSynchronize(h->stream); // nothing in flight may still use the buffers
    if (prev >= 0 && prev != h->device) cudaSetDevice(prev);
    return r;
}

static const qm_cuda_hooks qmc_hooks = {QM_CUDA_ABI_VERSION, "cuda", qmc_probe, qmc_moe_create, qmc_moe_eval,
                                        qmc_free};

// QMC_NO_HOOK: for tests/cuda/emu_hook.cu, which includes this file and supplies its own hook.
#ifndef QMC_NO_HOOK
extern "C" const qm_cuda_hooks *qm_cuda_hook(void) { return &qmc_hooks; }

// The anchor for static-archive builds: calling it forces this member to be linked.
extern "C" int qm_cuda_register(void) { return 1; }
#endif
