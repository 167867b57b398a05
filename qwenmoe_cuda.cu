// qwenmoe_cuda.cu - optional CUDA companion of qwenmoe.h: the forward pass on the GPU.
//
// When this object is linked into a program that uses qwenmoe.h, its strong qm_cuda_hook()
// replaces the header's weak default. At model load the header asks probe() for a device; if
// there is one, model_create() uploads the whole model once, every tensor in its file type, and
// each context gets its KV cache on the GPU (ctx_create): qm_eval() then runs the forward here
// (ctx_eval), one host synchronisation per decoded token. Without a GPU or driver, probe() says
// why and everything runs on the CPU. If the model does not fit, the header falls back to the
// experts alone (stage 1: moe_create/moe_eval, the rest of the forward on the CPU), which is
// also what qm_model_params.cuda_experts_only asks for and what a context with a trace
// callback uses.
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
//   Memory: before uploading, moe_create() and model_create() add up the tensors and the
//   buffers and compare them with cudaMemGetInfo(); if they do not fit they refuse with both
//   numbers (set qm_model_params.cuda_cpu_moe_layers to keep the first layers' experts on the
//   CPU). ctx_create() does the same for the KV cache.
//
//   THE WHOLE FORWARD (section 5; the order of qwenmoe.h's qm__forward, one kernel per step):
//   embedding rows decoded from the file's type; RMSNorm (one warp per row, which also rounds
//   the row as the next product's int8 kernels see it); q, k, v by
//   qmc_dense (the mat-vec kernel for fewer than gemm_min tokens, else rows dequantized in
//   32 MiB chunks and cuBLAS; their input rounded once for the three); per-head q/k norm and
//   NeoX RoPE with the header's own cos/sin tables, the keys and values stored in the cache
//   (f16 or f32, as the context asks), all in one launch;
//   attention (one block per head and token, four warps over the keys with an online softmax,
//   merged at the end; q rounded to f16 with the f16 cache, as on the CPU); wo added to the
//   residual in the same kernel; RMSNorm; router (f32 weights stay f32) and top-k on the
//   device; the experts (above: for fewer than gemm_min tokens the top-k kernel writes the
//   plan, every pair its own mat-vec group, so decode needs no copy to the host, and gate and
//   up of one type share a launch; on the host for more tokens);
//   their weighted sum added to the residual; the final norm and the LM head for the rows
//   whose logits are wanted. A layer whose experts stay on the CPU copies its input to the
//   host and calls the header back (cpu_moe), which runs the CPU's expert path.
//   Decode (one token, one logits row) is captured once per context as a CUDA graph and
//   replayed: the token and position are read from pinned memory by the graph's first copies,
//   so one graph serves every step (QWENMOE_CUDA_GRAPH=0: launch the kernels one by one; the
//   same bits). A decode step is 15 kernels per layer and 3 more (counted under the host
//   emulation: 63 launches per token on a 4-layer model, so 723 for the 48 layers of
//   Qwen3-30B-A3B) and three copies (token, position, logits). Contexts are independent: each has its own stream, cuBLAS handle and buffers,
//   and they run at the same time on the GPU (the weights are only read). Not done: split-K
//   attention for long contexts (one block per head is few blocks at batch 1), fused
//   norm/RoPE/attention kernels, and tensor-core mat-vec.
//
// TESTS (make test-cuda; tests/cuda/): the block decoders, the activation rounding and the
//   per-item work of every kernel are __host__ __device__ functions, run on the CPU by
//   tests/cuda/test_cuda_host.cu against qwenmoe.h (bit for bit where the arithmetic is the
//   same). This whole file also
//   compiles as plain C++ against tests/cuda/simt.h (-DQMC_EMU), a host emulation of the CUDA
//   runtime, cuBLAS and the SIMT execution of the kernels (coroutine threads, barriers, warp
//   shuffles, graphs): test_cuda_gpu.c linked with that object (test_cuda_simt) runs every
//   kernel and every host line of this file against the CPU without a GPU. On a GPU,
//   test_cuda_gpu compares the real thing with the CPU.
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
#include <vector>
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

// Sum over the 32 lanes of a warp; every lane gets the result.
__device__ __forceinline__ float qmc_warp_sum(float a) {
QMC_UNROLL
    for (int o = 16; o > 0; o >>= 1) a += __shfl_xor_sync(0xffffffffu, a, o);
    return a;
}
__device__ __forceinline__ float qmc_warp_max(float a) {
QMC_UNROLL
    for (int o = 16; o > 0; o >>= 1) a = fmaxf(a, __shfl_xor_sync(0xffffffffu, a, o));
    return a;
}

// Mat-vec over groups: block (32, QMC_MV_WARPS), grid (ceil(rows / QMC_MV_WARPS), n_groups).
// Warp y of block x computes weight row r = x * WARPS + y of the group's expert, for each of
// the group's pairs p: dot = W_e[r] . in[in_idx[p]], then
//   mode 0: out[slot[p]][r] = dot
//   mode 1: out[slot[p]][r] = silu(gate[slot[p]][r]) * dot          (up, fused SwiGLU)
//   mode 2: out[slot[p]][r] += dot                                   (a residual add)
// groups == NULL: a dense matrix (expert 0) over n_dense tokens; group y is tokens
// y * MAXP .. y * MAXP + MAXP - 1, and in_idx and slot are the identity.
template <int TYPE>
__global__ void __launch_bounds__(32 * QMC_MV_WARPS)
qmc_k_matvec(const uint8_t *W, size_t row_bytes, int rows, int cols, const qmc_group *groups, const int *in_idx,
             const int *slot, const float *in, const float *gate, float *out, int mode, int n_dense) {
    qmc_group g;
    if (groups) {
        g = groups[blockIdx.y];
    } else {
        g.expert = 0;
        g.first = (int)blockIdx.y * QMC_MV_MAXP;
        g.count = n_dense - g.first < QMC_MV_MAXP ? n_dense - g.first : QMC_MV_MAXP;
    }
    const int r = blockIdx.x * QMC_MV_WARPS + threadIdx.y, lane = threadIdx.x;
    if (r >= rows) return; // the whole warp
    const uint8_t *row = W + ((size_t)g.expert * rows + r) * row_bytes;
    const float *src[QMC_MV_MAXP];
    float acc[QMC_MV_MAXP];
QMC_UNROLL
    for (int p = 0; p < QMC_MV_MAXP; p++) {
        const int i = g.first + (p < g.count ? p : 0);
        acc[p] = 0.0f;
        src[p] = in + (size_t)(in_idx ? in_idx[i] : i) * cols;
    }
    qmc_dot_lane<TYPE>(row, cols, lane, 32, src, g.count, acc);
QMC_UNROLL
    for (int p = 0; p < QMC_MV_MAXP; p++) {
        if (p < g.count) { // the same for the whole warp
            const float a = qmc_warp_sum(acc[p]);
            if (lane == 0) {
                const size_t at = (size_t)(slot ? slot[g.first + p] : g.first + p) * rows + r;
                out[at] = mode == 1 ? qmc_silu(gate[at]) * a : mode == 2 ? out[at] + a : a;
            }
        }
    }
}

// gate and up of the same type in one pass, for the mat-vec groups (as qmc_k_matvec): each
// warp dots its row of both with the same inputs, out[slot[p]][r] = silu(gate . x) * (up . x).
// The same sums as qmc_k_matvec's modes 0 and 1, so the same bits, with one launch and the
// inputs read once.
template <int TYPE>
__global__ void __launch_bounds__(32 * QMC_MV_WARPS)
qmc_k_matvec_gu(const uint8_t *Wg, const uint8_t *Wu, size_t row_bytes, int rows, int cols, const qmc_group *groups,
                const int *in_idx, const int *slot, const float *in, float *out) {
    const qmc_group g = groups[blockIdx.y];
    const int r = blockIdx.x * QMC_MV_WARPS + threadIdx.y, lane = threadIdx.x;
    if (r >= rows) return; // the whole warp
    const size_t ro = ((size_t)g.expert * rows + r) * row_bytes;
    const float *src[QMC_MV_MAXP];
    float ag[QMC_MV_MAXP], au[QMC_MV_MAXP];
QMC_UNROLL
    for (int p = 0; p < QMC_MV_MAXP; p++) {
        ag[p] = au[p] = 0.0f;
        src[p] = in + (size_t)in_idx[g.first + (p < g.count ? p : 0)] * cols;
    }
    qmc_dot_lane<TYPE>(Wg + ro, cols, lane, 32, src, g.count, ag);
    qmc_dot_lane<TYPE>(Wu + ro, cols, lane, 32, src, g.count, au);
QMC_UNROLL
    for (int p = 0; p < QMC_MV_MAXP; p++) {
        if (p < g.count) { // the same for the whole warp
            const float a = qmc_warp_sum(ag[p]), b = qmc_warp_sum(au[p]);
            if (lane == 0) out[(size_t)slot[g.first + p] * rows + r] = qmc_silu(a) * b;
        }
    }
}

// Dequantize rows of a matrix (n_slices 8-value slices from W) to [rows][cols], f16 or f32.
template <int TYPE>
__global__ void qmc_k_dequant(const uint8_t *W, int cols, size_t row_bytes, size_t n_slices, void *out, int f16) {
    const size_t g = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (g >= n_slices) return;
    if (f16) qmc_dequant_f16_item<TYPE>(W, cols, row_bytes, g, static_cast<uint16_t *>(out));
    else qmc_dequant_f32_item<TYPE>(W, cols, row_bytes, g, static_cast<float *>(out));
}

// One activation block (per * 32 values) rounded by one warp, src to dst (may be the same).
__device__ __forceinline__ void qmc_actq_warp(const float *src, float *dst, int lane, int per, int kind) {
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

// Activation blocks of n_blocks * block contiguous values, src to dst (may be the same):
// one warp per block, block (32, 4).
__global__ void __launch_bounds__(128) qmc_k_actq(const float *src, float *dst, size_t n_blocks, int kind, int block) {
    const size_t b = (size_t)blockIdx.x * blockDim.y + threadIdx.y;
    if (b >= n_blocks) return; // whole warps leave together
    qmc_actq_warp(src + b * block, dst + b * block, threadIdx.x, block / 32, kind);
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

// y[t][d] = sum of the experts' outputs (add: y[t][d] += that sum, the residual stream)
__global__ void qmc_k_combine(const float *out, const float *w, int T, int K, int E, float *y, int add) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)T * E) return;
    const float s = qmc_combine_item(out, w, K, E, (int)(i / E), (int)(i % E));
    y[i] = add ? y[i] + s : s;
}

// ---- the rest of the forward (stage 2) ------------------------------------------------------

// x[t] = row tokens[t] of the embedding matrix, decoded: one thread per 8-value slice.
template <int TYPE>
__global__ void qmc_k_embed(const uint8_t *W, size_t row_bytes, const int *tokens, int T, int E, float *x) {
    typedef qmc_q<TYPE> Q;
    const size_t g = (size_t)blockIdx.x * blockDim.x + threadIdx.x, spr = (size_t)E / 8;
    if (g >= (size_t)T * spr) return;
    const int t = (int)(g / spr), s = (int)(g % spr), spb = Q::QK / 8;
    Q::slice(W + (size_t)tokens[t] * row_bytes + (size_t)(s / spb) * Q::BYTES, s % spb, x + (size_t)t * E + 8 * s);
}

// y[r] = x[r] / sqrt(mean(x[r]^2) + eps) * w, one warp per row of n, block (32, 4). yq != NULL:
// also y rounded as the CPU's int8 kernels of the next product see it (kind, blocks of blk
// values: qmc_k_actq's steps, so the same bits), saving that launch.
__global__ void __launch_bounds__(128) qmc_k_rmsnorm(const float *x, const float *w, int n, float eps, float *y,
                                                     int rows, float *yq, int kind, int blk) {
    const int r = blockIdx.x * blockDim.y + threadIdx.y, lane = threadIdx.x;
    if (r >= rows) return;
    const float *xr = x + (size_t)r * n;
    float *yr = y + (size_t)r * n;
    float ss = 0.0f;
    for (int i = lane; i < n; i += 32) ss = fmaf(xr[i], xr[i], ss);
    ss = qmc_warp_sum(ss);
    const float scale = 1.0f / sqrtf(ss / (float)n + eps);
    for (int i = lane; i < n; i += 32) yr[i] = (xr[i] * scale) * w[i];
    if (!yq) return;
    __syncwarp(); // the row as the other lanes wrote it
    for (int b = 0; b < n / blk; b++)
        qmc_actq_warp(yr + (size_t)b * blk, yq + (size_t)r * n + (size_t)b * blk, lane, blk / 32, kind);
}

__device__ __forceinline__ void qmc_cache_put(void *cache, size_t i, float v, int f16) {
    if (f16) static_cast<uint16_t *>(cache)[i] = qmc_f2h(v);
    else static_cast<float *>(cache)[i] = v;
}

// After the q, k, v products of T tokens, one warp per head (block (32, 4)), in one launch:
//   items [0, T n_head):          q heads: RMSNorm with q_norm, NeoX RoPE, in place;
//   the next T n_head_kv items:   k heads: the same with k_norm, then into the cache;
//   the last T n_head_kv items:   v heads: into the cache.
// Positions are *pos + t; cos/sin are the header's tables ([n_ctx][hd / 2]); the cache row of
// token t and kv head h is at base + (*pos + t) * kvd + h * hd, f16 or f32.
__global__ void __launch_bounds__(128)
qmc_k_qkv_post(float *q, float *k, const float *v, int T, int n_head, int n_head_kv, int hd, const float *q_norm,
               const float *k_norm, float eps, const float *cs, const float *sn, const int *pos, void *kc, void *vc,
               size_t base, int f16) {
    const int item = blockIdx.x * blockDim.y + threadIdx.y, lane = threadIdx.x, half = hd / 2;
    const int nq = T * n_head, nkv = T * n_head_kv, kvd = n_head_kv * hd;
    if (item >= nq + 2 * nkv) return; // the whole warp
    if (item >= nq + nkv) { // a value head
        const int it = item - nq - nkv, t = it / n_head_kv, h = it % n_head_kv;
        const size_t at = base + ((size_t)*pos + t) * kvd + (size_t)h * hd;
        for (int i = lane; i < hd; i += 32) qmc_cache_put(vc, at + i, v[(size_t)it * hd + i], f16);
        return;
    }
    const int is_k = item >= nq, it = is_k ? item - nq : item, nh = is_k ? n_head_kv : n_head;
    const int t = it / nh, h = it % nh, p = *pos + t;
    float *x = (is_k ? k : q) + (size_t)it * hd;
    const float *w = is_k ? k_norm : q_norm;
    float ss = 0.0f;
    for (int i = lane; i < hd; i += 32) ss = fmaf(x[i], x[i], ss);
    ss = qmc_warp_sum(ss);
    const float scale = 1.0f / sqrtf(ss / (float)hd + eps);
    const float *c = cs + (size_t)p * half, *s = sn + (size_t)p * half;
    const size_t at = base + (size_t)p * kvd + (size_t)h * hd;
    for (int i = lane; i < half; i += 32) { // lane owns elements i and i + half
        const float x0 = (x[i] * scale) * w[i], x1 = (x[i + half] * scale) * w[i + half];
        const float y0 = x0 * c[i] - x1 * s[i], y1 = x0 * s[i] + x1 * c[i];
        x[i] = y0;
        x[i + half] = y1;
        if (is_k) {
            qmc_cache_put(kc, at + i, y0, f16);
            qmc_cache_put(kc, at + i + half, y1, f16);
        }
    }
}

__device__ __forceinline__ float qmc_kv_at(const void *cache, size_t i, int f16) {
    return f16 ? qmc_h2f(static_cast<const uint16_t *>(cache)[i]) : static_cast<const float *>(cache)[i];
}

// Causal attention of one q head of one token over keys 0 .. *pos + t: grid (n_head, T),
// block (32, QMC_ATT_WARPS). Warp w takes keys w, w + WARPS, ... with an online softmax
// (running max, sum and weighted values, head_dim / 32 <= 8 elements per lane); the warps'
// partial results are merged at the end. With the f16 cache q is rounded to f16 first, as
// the CPU path does (ggml's f16 attention).
#define QMC_ATT_WARPS 4
#define QMC_MAX_HD 256
__global__ void __launch_bounds__(32 * QMC_ATT_WARPS)
qmc_k_attention(const float *q, const void *kc, const void *vc, size_t base, int n_head, int n_head_kv, int hd,
                const int *pos, int f16, float *att) {
    __shared__ float s_m[QMC_ATT_WARPS], s_l[QMC_ATT_WARPS], s_acc[QMC_ATT_WARPS][QMC_MAX_HD];
    const int h = blockIdx.x, t = blockIdx.y, wp = threadIdx.y, lane = threadIdx.x, per = hd / 32;
    const int kvh = h / (n_head / n_head_kv), kvd = n_head_kv * hd, n_kv = *pos + t + 1;
    const float *qh = q + ((size_t)t * n_head + h) * hd;
    const float scale = 1.0f / sqrtf((float)hd); // on the device: no libm in the host program
    float qv[QMC_MAX_HD / 32], acc[QMC_MAX_HD / 32];
    float m = -INFINITY, l = 0.0f;
QMC_UNROLL
    for (int j = 0; j < QMC_MAX_HD / 32; j++) {
        acc[j] = 0.0f;
        qv[j] = 0.0f;
        if (j < per) qv[j] = f16 ? qmc_h2f(qmc_f2h(qh[lane + 32 * j])) : qh[lane + 32 * j];
    }
    for (int p = wp; p < n_kv; p += QMC_ATT_WARPS) {
        const size_t row = base + (size_t)p * kvd + (size_t)kvh * hd + lane;
        float s = 0.0f;
QMC_UNROLL
        for (int j = 0; j < QMC_MAX_HD / 32; j++)
            if (j < per) s = fmaf(qv[j], qmc_kv_at(kc, row + 32 * j, f16), s);
        s = qmc_warp_sum(s) * scale;
        if (s > m) { // a new maximum: rescale what was summed so far (exp(-inf) = 0 the first time)
            const float corr = expf(m - s);
            l *= corr;
QMC_UNROLL
            for (int j = 0; j < QMC_MAX_HD / 32; j++) acc[j] *= corr;
            m = s;
        }
        const float e = expf(s - m);
        l += e;
QMC_UNROLL
        for (int j = 0; j < QMC_MAX_HD / 32; j++)
            if (j < per) acc[j] = fmaf(e, qmc_kv_at(vc, row + 32 * j, f16), acc[j]);
    }
    if (lane == 0) {
        s_m[wp] = m;
        s_l[wp] = l;
    }
QMC_UNROLL
    for (int j = 0; j < QMC_MAX_HD / 32; j++)
        if (j < per) s_acc[wp][lane + 32 * j] = acc[j];
    __syncthreads();
    float M = s_m[0], L = 0.0f; // warp 0 always has key 0, so M is finite (or NaN)
    for (int w = 1; w < QMC_ATT_WARPS; w++) M = fmaxf(M, s_m[w]);
    float f[QMC_ATT_WARPS];
    for (int w = 0; w < QMC_ATT_WARPS; w++) {
        f[w] = s_l[w] > 0.0f || s_l[w] != s_l[w] ? expf(s_m[w] - M) : 0.0f;
        L = fmaf(s_l[w], f[w], L);
    }
    float *out = att + ((size_t)t * n_head + h) * hd;
    for (int i = wp * 32 + lane; i < hd; i += 32 * QMC_ATT_WARPS) {
        float o = 0.0f;
        for (int w = 0; w < QMC_ATT_WARPS; w++) o = fmaf(s_acc[w][i], f[w], o);
        out[i] = o / L;
    }
}

// Router of T tokens: softmax over the n_expert logits, the K largest probabilities (ties: the
// lower expert id, as the CPU's scan), renormalised with the CPU's clamp. One warp per token,
// block (32, 4); n_expert <= 32 * QMC_ROUTE_PER. n_expert 0 (a dense model): expert 0, weight 1.
// groups != NULL: also the experts' mat-vec plan for few tokens, made here so that decode needs
// no copy to the host: every (token, slot) pair i = t K + k is a group of its own
// {ids[i], i, 1}, with tok[i] = t and slot[i] = i.
#define QMC_ROUTE_PER 32
__device__ __forceinline__ void qmc_route_out(int t, int k, int K, int e, float w, int *ids, float *wts, int *tok,
                                              int *slot, qmc_group *groups) {
    const int i = t * K + k;
    ids[i] = e;
    wts[i] = w;
    if (groups) {
        tok[i] = t;
        slot[i] = i;
        groups[i].expert = e;
        groups[i].first = i;
        groups[i].count = 1;
    }
}
__global__ void __launch_bounds__(128) qmc_k_route(const float *logits, int T, int n_expert, int K, int *ids, float *wts,
                                                   int *tok, int *slot, qmc_group *groups) {
    const int t = blockIdx.x * blockDim.y + threadIdx.y, lane = threadIdx.x;
    if (t >= T) return;
    if (n_expert == 0) {
        if (lane == 0) qmc_route_out(t, 0, 1, 0, 1.0f, ids, wts, tok, slot, groups);
        return;
    }
    const float *x = logits + (size_t)t * n_expert;
    float pr[QMC_ROUTE_PER];
    float mx = -INFINITY, sum = 0.0f;
QMC_UNROLL
    for (int j = 0; j < QMC_ROUTE_PER; j++) {
        const int e = lane + 32 * j;
        pr[j] = e < n_expert ? x[e] : -INFINITY;
        mx = fmaxf(mx, pr[j]);
    }
    mx = qmc_warp_max(mx);
QMC_UNROLL
    for (int j = 0; j < QMC_ROUTE_PER; j++) {
        const int e = lane + 32 * j;
        pr[j] = e < n_expert ? expf(pr[j] - mx) : 0.0f;
        sum += pr[j];
    }
    sum = qmc_warp_sum(sum);
QMC_UNROLL
    for (int j = 0; j < QMC_ROUTE_PER; j++) pr[j] /= sum;
    uint32_t taken = 0; // bit j: lane's expert lane + 32 j is chosen
    float wsum = 0.0f, chosen_w = 0.0f;
    int chosen_e = 0;
    for (int k = 0; k < K; k++) {
        float bv = -1.0f;
        int be = 0x7fffffff;
QMC_UNROLL
        for (int j = 0; j < QMC_ROUTE_PER; j++) {
            const int e = lane + 32 * j;
            if (e < n_expert && !(taken >> j & 1u) && (be == 0x7fffffff || pr[j] > bv)) {
                bv = pr[j];
                be = e;
            }
        }
        for (int o = 16; o > 0; o >>= 1) {
            const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
            const int oe = __shfl_xor_sync(0xffffffffu, be, o);
            if (oe != 0x7fffffff && (be == 0x7fffffff || ov > bv || (ov == bv && oe < be))) {
                bv = ov;
                be = oe;
            }
        }
        if ((be & 31) == lane) taken |= 1u << (be >> 5);
        if (lane == k) {
            chosen_e = be;
            chosen_w = bv;
        }
        wsum += bv;
    }
    if (wsum < 6.103515625e-5f) wsum = 6.103515625e-5f;
    if (lane < K) qmc_route_out(t, lane, K, chosen_e, chosen_w / wsum, ids, wts, tok, slot, groups);
}

__global__ void qmc_k_add(float *x, const float *y, size_t n) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] += y[i];
}

// =============================================================================================
// 4. Expert workspace and the experts-only handle (stage 1: moe_create, moe_eval, moe_free)
// =============================================================================================

struct qmc_tensor {
    int type;
    int cols, rows, n_expert;
    size_t row_bytes;
    uint8_t *dev; // NULL: not on the GPU (a layer whose experts stay on the CPU)
    int owned;    // 0: shares another tensor's memory (a tied LM head)
};
struct qmc_layer {
    qmc_tensor gate, up, down;
};

// The scratch of one stream's expert evaluation, for up to max_tokens tokens.
struct qmc_ws {
    int E, ff, K, n_expert, max_tokens, gemm_min, gemm_f16;
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
    float *d_gu, *d_dm;               // [slots][2 ff], [slots][E]
    // pinned host staging
    float *h_x, *h_w, *h_y;
    int *h_ints;
    // host plan scratch
    qmc_plan plan;
    int *plan_mem;
    int32_t *ids;                     // [slots] a host copy of the ids (in plan_mem)
};

struct qmc_fwd; // section 5
static void qmc_fwd_free(qmc_fwd *f);

// What moe_create or model_create returns. The experts are in layers either way; model_create
// adds the rest of the model (fwd), and then moe_eval's workspace is made on its first use.
struct qmc_handle {
    std::mutex mu;
    int device;
    int n_layer;
    qmc_layer *layers;
    qmc_ws ws;                        // moe_eval's
    qmc_fwd *fwd;                     // NULL: experts only
    int moe_E, moe_ff, moe_K, moe_NE, moe_max_tokens; // for a workspace made later
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

static void qmc_tensor_free(qmc_tensor *t) {
    if (t->owned) cudaFree(t->dev);
    t->dev = NULL;
    t->owned = 0;
}

static void qmc_ws_free(qmc_ws *w) {
    void *dev[] = {w->d_x, w->d_w, w->d_y, w->d_xqg, w->d_xqu, w->d_ints, w->d_g, w->d_h, w->d_out,
                   w->d_wgu, w->d_wd, w->d_xsg, w->d_xsu, w->d_h16, w->d_gu, w->d_dm};
    for (size_t i = 0; i < sizeof(dev) / sizeof(dev[0]); i++) cudaFree(dev[i]);
    void *pinned[] = {w->h_x, w->h_w, w->h_y, w->h_ints};
    for (size_t i = 0; i < sizeof(pinned) / sizeof(pinned[0]); i++) cudaFreeHost(pinned[i]);
    if (w->blas) cublasDestroy(w->blas);
    if (w->stream) cudaStreamDestroy(w->stream);
    free(w->plan_mem);
    memset(w, 0, sizeof(*w));
}

static void qmc_destroy(qmc_handle *h) {
    if (!h) return;
    if (h->layers) {
        for (int il = 0; il < h->n_layer; il++) {
            qmc_tensor_free(&h->layers[il].gate);
            qmc_tensor_free(&h->layers[il].up);
            qmc_tensor_free(&h->layers[il].down);
        }
        free(h->layers);
    }
    qmc_ws_free(&h->ws);
    qmc_fwd_free(h->fwd);
    delete h;
}

// Checks one tensor of the description against the model's shape and this file's types.
// il < 0: a tensor outside the layers.
static int qmc_check_tensor(const qm_cuda_tensor *t, int il, const char *tname, int64_t cols, int64_t rows,
                            int64_t n_expert, char *err, size_t cap) {
    const int qk = qmc_type_qk(t->type), bytes = qmc_type_bytes(t->type);
    char name[64];
    if (il >= 0) snprintf(name, sizeof(name), "layer %d %s", il, tname);
    else snprintf(name, sizeof(name), "%s", tname);
    if (!qk)
        return qmc_errf(err, cap, "%s: type %s (%d) has no CUDA kernel (supported: f32 f16 bf16 q8_0 q4_0 "
                        "q4_1 q5_0 q5_1 q2_K q3_K q4_K q5_K q6_K iq4_nl iq4_xs)", name, qmc_type_name(t->type),
                        t->type);
    if (t->cols != cols || t->rows != rows || t->n_expert != n_expert)
        return qmc_errf(err, cap, "%s: shape [%lld, %lld, %lld], expected [%lld, %lld, %lld]", name,
                        (long long)t->cols, (long long)t->rows, (long long)t->n_expert, (long long)cols,
                        (long long)rows, (long long)n_expert);
    if (t->cols % qk != 0 || t->cols % 8 != 0 || t->row_bytes != (size_t)(t->cols / qk) * (size_t)bytes)
        return qmc_errf(err, cap, "%s: %lld %s values in rows of %zu bytes, expected a multiple of %d and "
                        "%lld bytes", name, (long long)t->cols, qmc_type_name(t->type), t->row_bytes,
                        qk > 8 ? qk : 8, (long long)(t->cols / qk * bytes));
    if (!t->data) return qmc_errf(err, cap, "%s: no data", name);
    return 0;
}

// Device bytes of the workspace buffers (besides the weights), as qmc_ws_alloc allocates them.
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

// Uploads one tensor as it is in the file.
static int qmc_upload(const qm_cuda_tensor *src, qmc_tensor *dst, char *err, size_t cap) {
    const size_t nb = qmc_tensor_bytes(src);
    dst->type = src->type;
    dst->cols = (int)src->cols;
    dst->rows = (int)src->rows;
    dst->n_expert = (int)src->n_expert;
    dst->row_bytes = src->row_bytes;
    QMC_CU(cudaMalloc((void **)&dst->dev, nb));
    dst->owned = 1;
    QMC_CU(cudaMemcpy(dst->dev, src->data, nb, cudaMemcpyHostToDevice));
    return 0;
}

// The workspace: settings from the environment, buffers, stream, cuBLAS handle, plan scratch.
static int qmc_ws_alloc(qmc_ws *w, int E, int ff, int K, int NE, int max_tokens, char *err, size_t cap) {
    w->E = E; w->ff = ff; w->K = K; w->n_expert = NE; w->max_tokens = max_tokens;
    if (qmc_gemm_min(&w->gemm_min, err, cap) != 0 || qmc_gemm_type(&w->gemm_f16, err, cap) != 0) return -1;
    const size_t slots = (size_t)max_tokens * K, T = (size_t)max_tokens;
    const size_t n_ints = slots * 2 + slots * 3;
    QMC_CU(cudaMalloc((void **)&w->d_x, T * E * 4));
    QMC_CU(cudaMalloc((void **)&w->d_y, T * E * 4));
    QMC_CU(cudaMalloc((void **)&w->d_w, slots * 4));
    QMC_CU(cudaMalloc((void **)&w->d_ints, n_ints * 4));
    QMC_CU(cudaMalloc((void **)&w->d_g, slots * ff * 4));
    QMC_CU(cudaMalloc((void **)&w->d_h, slots * ff * 4));
    QMC_CU(cudaMalloc((void **)&w->d_out, slots * E * 4));
    QMC_CU(cudaMalloc((void **)&w->d_xqg, T * E * 4));
    QMC_CU(cudaMalloc((void **)&w->d_xqu, T * E * 4));
    QMC_CU(cudaMalloc(&w->d_wgu, (size_t)2 * ff * E * 4));
    QMC_CU(cudaMalloc(&w->d_wd, (size_t)ff * E * 4));
    QMC_CU(cudaMalloc(&w->d_xsg, slots * E * 4));
    QMC_CU(cudaMalloc(&w->d_xsu, slots * E * 4));
    QMC_CU(cudaMalloc((void **)&w->d_h16, slots * ff * 2));
    QMC_CU(cudaMalloc((void **)&w->d_gu, slots * 2 * ff * 4));
    QMC_CU(cudaMalloc((void **)&w->d_dm, slots * E * 4));
    QMC_CU(cudaMallocHost((void **)&w->h_x, T * E * 4));
    QMC_CU(cudaMallocHost((void **)&w->h_y, T * E * 4));
    QMC_CU(cudaMallocHost((void **)&w->h_w, slots * 4));
    QMC_CU(cudaMallocHost((void **)&w->h_ints, n_ints * 4));
    QMC_CU(cudaStreamCreateWithFlags(&w->stream, cudaStreamNonBlocking));
    QMC_BLAS(cublasCreate(&w->blas));
    QMC_BLAS(cublasSetStream(w->blas, w->stream));
    // host plan scratch: tok, slot [slots]; mv, gemm groups [slots] each; count, next [NE]
    w->plan_mem = static_cast<int *>(malloc(sizeof(int) * (slots * 2 + slots * 6 + (size_t)NE * 2 + slots)));
    if (!w->plan_mem) return qmc_errf(err, cap, "out of host memory");
    w->plan.tok = w->plan_mem;
    w->plan.slot = w->plan.tok + slots;
    w->plan.mv = reinterpret_cast<qmc_group *>(w->plan.slot + slots);
    w->plan.gemm = w->plan.mv + slots;
    w->plan.count = reinterpret_cast<int *>(w->plan.gemm + slots);
    w->plan.next = w->plan.count + NE;
    w->ids = w->plan.next + NE;
    return 0;
}

// Checks the experts of every layer that has them; adds their bytes. Returns the number of
// such layers, or -1.
static int qmc_check_experts(const qm_cuda_moe_layer *layers, int n_layer, int E, int ff, int NE, size_t *bytes,
                             char *err, size_t cap) {
    int on_gpu = 0;
    for (int il = 0; il < n_layer; il++) {
        const qm_cuda_moe_layer *L = &layers[il];
        if (!L->gate.data) continue;
        if (qmc_check_tensor(&L->gate, il, "ffn_gate_exps", E, ff, NE, err, cap) ||
            qmc_check_tensor(&L->up, il, "ffn_up_exps", E, ff, NE, err, cap) ||
            qmc_check_tensor(&L->down, il, "ffn_down_exps", ff, E, NE, err, cap))
            return -1;
        *bytes += qmc_tensor_bytes(&L->gate) + qmc_tensor_bytes(&L->up) + qmc_tensor_bytes(&L->down);
        on_gpu++;
    }
    return on_gpu;
}

static int qmc_check_moe_shape(int n_layer, int E, int ff, int NE, int K, int max_tokens, char *err, size_t cap) {
    if (n_layer <= 0 || E <= 0 || ff <= 0 || NE <= 0 || K <= 0 || K > NE || max_tokens <= 0)
        return qmc_errf(err, cap, "bad description: n_layer %d n_embd %d n_ff_exp %d n_expert %d n_expert_used %d "
                        "max_tokens %d", n_layer, E, ff, NE, K, max_tokens);
    if (E % 8 || ff % 8) return qmc_errf(err, cap, "n_embd %d and n_ff_exp %d must be multiples of 8", E, ff);
    if ((size_t)max_tokens * K > (size_t)1 << 24)
        return qmc_errf(err, cap, "max_tokens %d x n_expert_used %d is too large", max_tokens, K);
    return 0;
}

// Refuses, with both numbers and what to do about it, when need bytes do not fit in the
// device's free memory.
static int qmc_check_fit(size_t need, const char *what, const char *hint, char *err, size_t cap) {
    size_t free_b = 0, total_b = 0;
    QMC_CU(cudaMemGetInfo(&free_b, &total_b));
    if (need + QMC_RESERVE_BYTES > free_b)
        return qmc_errf(err, cap, "%s: %zu bytes (%.1f MiB) of device memory and a reserve of %.0f MiB are needed, the "
                        "GPU has %zu bytes (%.1f MiB) free of %.1f MiB: %s", what, need, need / 1048576.0,
                        QMC_RESERVE_BYTES / 1048576.0, free_b, free_b / 1048576.0, total_b / 1048576.0, hint);
    return 0;
}
#define QMC_HINT_EXPERTS "set cuda_cpu_moe_layers to keep the first layers' experts on the CPU"

static int qmc_create_impl(qmc_handle *h, const qm_cuda_moe_desc *d, char *err, size_t cap) {
    const int E = d->n_embd, ff = d->n_ff_exp, K = d->n_expert_used, NE = d->n_expert;
    if (!d->layers) return qmc_errf(err, cap, "bad description: no layers");
    if (qmc_check_moe_shape(d->n_layer, E, ff, NE, K, d->max_tokens, err, cap)) return -1;
    int gemm_min, gemm_f16; // the environment's settings are checked before anything is allocated
    if (qmc_gemm_min(&gemm_min, err, cap) != 0 || qmc_gemm_type(&gemm_f16, err, cap) != 0) return -1;
    h->n_layer = d->n_layer;
    size_t weights = 0;
    const int on_gpu = qmc_check_experts(d->layers, d->n_layer, E, ff, NE, &weights, err, cap);
    if (on_gpu < 0) return -1;
    if (!on_gpu) return qmc_errf(err, cap, "no layer has its experts on the GPU");
    const size_t buffers = qmc_buffer_bytes(E, ff, K, d->max_tokens);
    char what[96];
    snprintf(what, sizeof(what), "the experts of %d layers (with %.1f MiB of buffers)", on_gpu, buffers / 1048576.0);
    QMC_CU(cudaGetDevice(&h->device));
    if (qmc_check_fit(weights + buffers, what, QMC_HINT_EXPERTS, err, cap)) return -1;
    h->layers = static_cast<qmc_layer *>(calloc((size_t)d->n_layer, sizeof(qmc_layer)));
    if (!h->layers) return qmc_errf(err, cap, "out of host memory");
    for (int il = 0; il < d->n_layer; il++) {
        const qm_cuda_moe_layer *L = &d->layers[il];
        if (!L->gate.data) continue;
        if (qmc_upload(&L->gate, &h->layers[il].gate, err, cap) || qmc_upload(&L->up, &h->layers[il].up, err, cap) ||
            qmc_upload(&L->down, &h->layers[il].down, err, cap))
            return -1;
    }
    if (qmc_ws_alloc(&h->ws, E, ff, K, NE, d->max_tokens, err, cap)) return -1;
    if (d->log) {
        char msg[256];
        snprintf(msg, sizeof(msg), "CUDA: uploaded %.1f MiB of experts (%d layers), %.1f MiB of buffers; cuBLAS "
                 "(%s) from %d tokens per expert", weights / 1048576.0, on_gpu, buffers / 1048576.0,
                 h->ws.gemm_f16 ? "f16" : "f32", h->ws.gemm_min);
        d->log(d->log_user, QM_LOG_INFO, msg);
    }
    return 0;
}

// A new handle filled by impl from the description, or NULL with the reason in err.
template <typename Desc>
static void *qmc_new_handle(const Desc *d, int (*impl)(qmc_handle *, const Desc *, char *, size_t), char *err,
                            size_t cap) {
    if (!d) {
        qmc_errf(err, cap, "no description");
        return NULL;
    }
    qmc_handle *h = new (std::nothrow) qmc_handle();
    if (!h) {
        qmc_errf(err, cap, "out of host memory");
        return NULL;
    }
    if (impl(h, d, err, cap) != 0) {
        qmc_destroy(h);
        return NULL;
    }
    return h;
}

static void *qmc_moe_create(const qm_cuda_moe_desc *d, char *err, size_t cap) {
    return qmc_new_handle(d, qmc_create_impl, err, cap);
}

// Launches the kernels of one type; a switch over the type picks the instantiation.
// groups == NULL: a dense matrix over n_dense tokens (see qmc_k_matvec).
static int qmc_launch_matvec(const qmc_tensor *t, int n_groups, const qmc_group *groups, const int *in_idx,
                             const int *slot, const float *in, const float *gate, float *out, int mode, int n_dense,
                             cudaStream_t st, char *err, size_t cap) {
    dim3 block(32, QMC_MV_WARPS), grid((unsigned)((t->rows + QMC_MV_WARPS - 1) / QMC_MV_WARPS), (unsigned)n_groups);
    switch (t->type) {
#define QMC_CASE(T)                                                                                      \
    case T:                                                                                              \
        QMC_LAUNCH(qmc_k_matvec<T>, grid, block, st)(t->dev, t->row_bytes, t->rows, t->cols, groups, in_idx, \
                                                      slot, in, gate, out, mode, n_dense);               \
        break;
        QMC_FOR_TYPES(QMC_CASE)
#undef QMC_CASE
    default: return qmc_errf(err, cap, "type %s has no mat-vec kernel", qmc_type_name(t->type));
    }
    QMC_LAUNCHED("matvec");
    return 0;
}

// gate and up (of one type) fused: h = silu(gate . x) * (up . x) for the mat-vec groups
static int qmc_launch_matvec_gu(const qmc_tensor *g, const qmc_tensor *u, int n_groups, const qmc_group *groups,
                                const int *in_idx, const int *slot, const float *in, float *out, cudaStream_t st,
                                char *err, size_t cap) {
    dim3 block(32, QMC_MV_WARPS), grid((unsigned)((g->rows + QMC_MV_WARPS - 1) / QMC_MV_WARPS), (unsigned)n_groups);
    switch (g->type) {
#define QMC_CASE(T)                                                                                            \
    case T:                                                                                                    \
        QMC_LAUNCH(qmc_k_matvec_gu<T>, grid, block, st)(g->dev, u->dev, g->row_bytes, g->rows, g->cols, groups, \
                                                         in_idx, slot, in, out);                               \
        break;
        QMC_FOR_TYPES(QMC_CASE)
#undef QMC_CASE
    default: return qmc_errf(err, cap, "type %s has no mat-vec kernel", qmc_type_name(g->type));
    }
    QMC_LAUNCHED("matvec_gu");
    return 0;
}

// Rows r0 .. r0 + n_rows - 1 of one expert (0 for a dense matrix), dequantized to out.
static int qmc_launch_dequant(const qmc_tensor *t, int expert, int r0, int n_rows, void *out, int f16,
                              cudaStream_t st, char *err, size_t cap) {
    const size_t n_slices = (size_t)n_rows * (t->cols / 8);
    const unsigned threads = 256, blocks = (unsigned)((n_slices + threads - 1) / threads);
    const uint8_t *w = t->dev + ((size_t)expert * t->rows + r0) * t->row_bytes;
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

// C[n][M] (row stride ldc) = X[n][Kd] . W[M][Kd]^T (+ C when beta is 1), f16 or f32 inputs,
// f32 accumulation and output
static int qmc_gemm(qmc_ws *w, int f16, int n, int M, int Kd, const void *W, const void *X, float *C, int ldc,
                    float beta, char *err, size_t cap) {
    qmc_gemm_args a = qmc_gemm_xwt(n, M, Kd);
    const float one = 1.0f;
    const cudaDataType in = f16 ? CUDA_R_16F : CUDA_R_32F;
    a.ldc = ldc;
    QMC_BLAS(cublasGemmEx(w->blas, a.transa ? CUBLAS_OP_T : CUBLAS_OP_N, a.transb ? CUBLAS_OP_T : CUBLAS_OP_N, a.m,
                          a.n, a.k, &one, W, in, a.lda, X, in, a.ldb, &beta, C, CUDA_R_32F, a.ldc,
                          CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    return 0;
}

// The routed experts of one layer for T tokens whose inputs x [T][E] and weights w [T][K]
// are on the device, by the plan pl (its mat-vec groups, tok and slot are in w->d_ints
// already; its gemm groups are read on the host). y [T][E] = the weighted sum (add: += it).
// xg_ready: ws->d_xqg holds x rounded for gate's type already (qmc_k_rmsnorm did it).
static int qmc_moe_exec(qmc_ws *ws, const qmc_layer *L, int T, const qmc_plan *pl, const float *x, const float *w,
                        float *y, int add, int xg_ready, char *err, size_t cap) {
    const int E = ws->E, ff = ws->ff, K = ws->K, n_pairs = T * K;
    const int *d_tok = ws->d_ints, *d_slot = ws->d_ints + n_pairs;
    const qmc_group *d_mv = reinterpret_cast<const qmc_group *>(ws->d_ints + 2 * n_pairs);
    cudaStream_t st = ws->stream;
    // the inputs as the CPU kernels of gate, up and down see them
    const int kg = qmc_act_kind(L->gate.type), ku = qmc_act_kind(L->up.type), kd = qmc_act_kind(L->down.type);
    const float *xg = x, *xu = x;
    if (kg != QMC_ACT_F32) {
        if (!xg_ready && qmc_launch_actq(x, ws->d_xqg, T, E, kg, st, err, cap)) return -1;
        xg = ws->d_xqg;
    }
    if (ku == kg) xu = xg;
    else if (ku != QMC_ACT_F32) {
        if (qmc_launch_actq(x, ws->d_xqu, T, E, ku, st, err, cap)) return -1;
        xu = ws->d_xqu;
    }

    // experts with few tokens: mat-vec, in-kernel dequantization
    if (pl->n_mv > 0) {
        if (L->gate.type == L->up.type) { // one launch (the same type rounds the input alike: xu == xg)
            if (qmc_launch_matvec_gu(&L->gate, &L->up, pl->n_mv, d_mv, d_tok, d_slot, xg, ws->d_h, st, err, cap))
                return -1;
        } else if (qmc_launch_matvec(&L->gate, pl->n_mv, d_mv, d_tok, d_slot, xg, NULL, ws->d_g, 0, 0, st, err, cap) ||
                   qmc_launch_matvec(&L->up, pl->n_mv, d_mv, d_tok, d_slot, xu, ws->d_g, ws->d_h, 1, 0, st, err, cap)) {
            return -1;
        }
        if (qmc_launch_actq(ws->d_h, ws->d_h, (size_t)n_pairs, ff, kd, st, err, cap) ||
            qmc_launch_matvec(&L->down, pl->n_mv, d_mv, d_slot, d_slot, ws->d_h, NULL, ws->d_out, 0, 0, st, err, cap))
            return -1;
    }
    // experts with many tokens: dequantize (f32, or f16), cuBLAS
    const int ng = pl->n_gemm_pairs, f16 = ws->gemm_f16;
    const size_t vb = f16 ? 2 : 4; // bytes per GEMM input value
    if (ng > 0) {
        char *xsg = static_cast<char *>(ws->d_xsg), *xsu = xu == xg ? xsg : static_cast<char *>(ws->d_xsu);
        QMC_LAUNCH(qmc_k_gather, qmc_blocks((size_t)ng * E, 256), 256, st)(xg, d_tok, ng, E, xsg, f16);
        QMC_LAUNCHED("gather");
        if (xsu != xsg) {
            QMC_LAUNCH(qmc_k_gather, qmc_blocks((size_t)ng * E, 256), 256, st)(xu, d_tok, ng, E, xsu, f16);
            QMC_LAUNCHED("gather");
        }
        char *wg = static_cast<char *>(ws->d_wgu), *wu = wg + (size_t)ff * E * vb;
        for (int g = 0; g < pl->n_gemm; g++) {
            const qmc_group *G = &pl->gemm[g];
            float *gu = ws->d_gu + (size_t)G->first * 2 * ff;
            if (qmc_launch_dequant(&L->gate, G->expert, 0, ff, wg, f16, st, err, cap) ||
                qmc_launch_dequant(&L->up, G->expert, 0, ff, wu, f16, st, err, cap) ||
                qmc_gemm(ws, f16, G->count, ff, E, wg, xsg + (size_t)G->first * E * vb, gu, 2 * ff, 0.0f, err, cap) ||
                qmc_gemm(ws, f16, G->count, ff, E, wu, xsu + (size_t)G->first * E * vb, gu + ff, 2 * ff, 0.0f, err, cap))
                return -1;
        }
        // SwiGLU into d_g (free again: the mat-vec kernels before are done with it), rounded
        // as down's CPU kernel sees its input
        QMC_LAUNCH(qmc_k_swiglu, qmc_blocks((size_t)ng * ff, 256), 256, st)(ws->d_gu, ng, ff, ws->d_g);
        QMC_LAUNCHED("swiglu");
        if (qmc_launch_actq(ws->d_g, ws->d_g, (size_t)ng, ff, kd, st, err, cap)) return -1;
        const void *hin = ws->d_g;
        if (f16) {
            QMC_LAUNCH(qmc_k_to_f16, qmc_blocks((size_t)ng * ff, 256), 256, st)(ws->d_g, (size_t)ng * ff, ws->d_h16);
            QMC_LAUNCHED("to_f16");
            hin = ws->d_h16;
        }
        for (int g = 0; g < pl->n_gemm; g++) {
            const qmc_group *G = &pl->gemm[g];
            if (qmc_launch_dequant(&L->down, G->expert, 0, E, ws->d_wd, f16, st, err, cap) ||
                qmc_gemm(ws, f16, G->count, E, ff, ws->d_wd, static_cast<const char *>(hin) + (size_t)G->first * ff * vb,
                         ws->d_dm + (size_t)G->first * E, E, 0.0f, err, cap))
                return -1;
        }
        QMC_LAUNCH(qmc_k_scatter, qmc_blocks((size_t)ng * E, 256), 256, st)(ws->d_dm, d_slot, ng, E, ws->d_out);
        QMC_LAUNCHED("scatter");
    }
    QMC_LAUNCH(qmc_k_combine, qmc_blocks((size_t)T * E, 256), 256, st)(ws->d_out, w, T, K, E, y, add);
    QMC_LAUNCHED("combine");
    return 0;
}

// The host plan of T tokens' ids, staged and copied to ws->d_ints (asynchronously: the pinned
// staging buffer must not change before the stream passes this point).
static int qmc_plan_upload(qmc_ws *ws, int T, const int32_t *ids, char *err, size_t cap) {
    qmc_plan *pl = &ws->plan;
    if (qmc_plan_build(pl, T, ws->K, ws->n_expert, ws->gemm_min, ids, err, cap) != 0) return -1;
    const int n_pairs = T * ws->K;
    int *hi = ws->h_ints;
    memcpy(hi, pl->tok, sizeof(int) * n_pairs);
    memcpy(hi + n_pairs, pl->slot, sizeof(int) * n_pairs);
    for (int g = 0; g < pl->n_mv; g++) {
        hi[2 * n_pairs + 3 * g] = pl->mv[g].expert;
        hi[2 * n_pairs + 3 * g + 1] = pl->mv[g].first;
        hi[2 * n_pairs + 3 * g + 2] = pl->mv[g].count;
    }
    const size_t n_ints = (size_t)2 * n_pairs + (size_t)3 * pl->n_mv;
    QMC_CU(cudaMemcpyAsync(ws->d_ints, ws->h_ints, sizeof(int) * n_ints, cudaMemcpyHostToDevice, ws->stream));
    return 0;
}

static int qmc_eval_locked(qmc_handle *h, int il, int T, const float *x, const int32_t *ids, const float *w,
                           float *y, char *err, size_t cap) {
    qmc_ws *ws = &h->ws;
    if (!ws->stream && qmc_ws_alloc(ws, h->moe_E, h->moe_ff, h->moe_K, h->moe_NE, h->moe_max_tokens, err, cap)) {
        qmc_ws_free(ws);
        return -1;
    }
    const int E = ws->E, K = ws->K;
    if (il < 0 || il >= h->n_layer) return qmc_errf(err, cap, "layer %d out of range (%d layers)", il, h->n_layer);
    const qmc_layer *L = &h->layers[il];
    if (!L->gate.dev) return qmc_errf(err, cap, "layer %d keeps its experts on the CPU", il);
    if (T <= 0 || T > ws->max_tokens) return qmc_errf(err, cap, "%d tokens, expected 1..%d", T, ws->max_tokens);
    if (!x || !ids || !w || !y) return qmc_errf(err, cap, "NULL argument");
    cudaStream_t st = ws->stream;
    // stage the inputs in pinned memory: x, w, then the ints (tok, slot, mat-vec groups)
    memcpy(ws->h_x, x, sizeof(float) * (size_t)T * E);
    memcpy(ws->h_w, w, sizeof(float) * (size_t)T * K);
    if (qmc_plan_upload(ws, T, ids, err, cap)) return -1;
    QMC_CU(cudaMemcpyAsync(ws->d_x, ws->h_x, sizeof(float) * (size_t)T * E, cudaMemcpyHostToDevice, st));
    QMC_CU(cudaMemcpyAsync(ws->d_w, ws->h_w, sizeof(float) * (size_t)T * K, cudaMemcpyHostToDevice, st));
    if (qmc_moe_exec(ws, L, T, &ws->plan, ws->d_x, ws->d_w, ws->d_y, 0, 0, err, cap)) return -1;
    QMC_CU(cudaMemcpyAsync(ws->h_y, ws->d_y, sizeof(float) * (size_t)T * E, cudaMemcpyDeviceToHost, st));
    QMC_CU(cudaStreamSynchronize(st));
    memcpy(y, ws->h_y, sizeof(float) * (size_t)T * E);
    return 0;
}

// Makes the handle's device current for the scope (and puts the previous one back).
struct qmc_device_scope {
    int prev, ok;
    explicit qmc_device_scope(int dev) : prev(-1), ok(1) {
        if (cudaGetDevice(&prev) != cudaSuccess) prev = -1;
        if (prev != dev && cudaSetDevice(dev) != cudaSuccess) ok = 0;
    }
    ~qmc_device_scope() {
        int cur = -1;
        if (prev >= 0 && cudaGetDevice(&cur) == cudaSuccess && cur != prev) cudaSetDevice(prev);
    }
};

static int qmc_moe_eval(void *hv, int layer, int T, const float *x, const int32_t *ids, const float *w, float *y,
                        char *err, size_t cap) {
    qmc_handle *h = static_cast<qmc_handle *>(hv);
    if (!h) return qmc_errf(err, cap, "no CUDA handle");
    std::lock_guard<std::mutex> lock(h->mu);
    qmc_device_scope dev(h->device);
    if (!dev.ok) return qmc_errf(err, cap, "cannot select CUDA device %d", h->device);
    int r = qmc_eval_locked(h, layer, T, x, ids, w, y, err, cap);
    if (r != 0) cudaStreamSynchronize(h->ws.stream); // nothing in flight may still use the buffers
    return r;
}

// =============================================================================================
// 5. The whole forward on the GPU (stage 2: model_create, ctx_create, ctx_eval, ctx_free)
// =============================================================================================

// Everything but the experts (which stay in qmc_handle::layers, shared with moe_eval).
struct qmc_fwd_layer {
    float *attn_norm, *q_norm, *k_norm, *ffn_norm;
    qmc_tensor wq, wk, wv, wo, router; // router.dev NULL: a dense model
};
struct qmc_fwd {
    int n_layer, E, n_head, n_head_kv, hd, n_expert, K, ff, n_vocab, dense;
    float eps;
    qmc_fwd_layer *layers;
    qmc_tensor tok_embd, output;
    float *output_norm;
    int (*cpu_moe)(void *user, int layer, int T, const float *x, const int32_t *ids, const float *w, float *y);
    int any_cpu_layer;
};

// One context: its KV cache, activations, stream and decode graph. Contexts run independently
// (the weights are only read), each on its own stream.
struct qmc_ctx {
    qmc_handle *h;
    int n_ctx, n_batch, n_out_max, kv_f32, graphs;
    void *k_cache, *v_cache;         // [n_layer][n_ctx][kvd], f16 or f32
    float *rope_cos, *rope_sin;      // [n_ctx][hd / 2]
    float *x, *xn, *xq, *q, *k, *v, *att, *router, *wts, *logits;
    int *ids, *tokens, *pos;
    void *dense_w;                   // dequantized rows of a dense matrix (GEMM path)
    void *dense_x;                   // the GEMM's input, f16 or f32
    size_t dense_w_bytes;
    int *h_tokens, *h_pos;           // pinned
    float *h_logits;                 // pinned [n_out_max][n_vocab]
    qmc_ws ws;                       // the experts' scratch and this context's stream
    cudaGraphExec_t graph;           // decode (1 token, 1 logits row), captured on first use
    int graph_failed;
};

static void qmc_fwd_free(qmc_fwd *f) {
    if (!f) return;
    if (f->layers) {
        for (int il = 0; il < f->n_layer; il++) {
            qmc_fwd_layer *L = &f->layers[il];
            cudaFree(L->attn_norm);
            cudaFree(L->q_norm);
            cudaFree(L->k_norm);
            cudaFree(L->ffn_norm);
            qmc_tensor_free(&L->wq);
            qmc_tensor_free(&L->wk);
            qmc_tensor_free(&L->wv);
            qmc_tensor_free(&L->wo);
            qmc_tensor_free(&L->router);
        }
        free(f->layers);
    }
    qmc_tensor_free(&f->output);
    qmc_tensor_free(&f->tok_embd);
    cudaFree(f->output_norm);
    free(f);
}

static int qmc_upload_vec(const float *src, int n, float **dst, const char *what, int il, char *err, size_t cap) {
    if (!src) return qmc_errf(err, cap, "layer %d %s: no data", il, what);
    QMC_CU(cudaMalloc((void **)dst, sizeof(float) * (size_t)n));
    QMC_CU(cudaMemcpy(*dst, src, sizeof(float) * (size_t)n, cudaMemcpyHostToDevice));
    return 0;
}

static int qmc_model_create_impl(qmc_handle *h, const qm_cuda_model_desc *d, char *err, size_t cap) {
    const int E = d->n_embd, hd = d->head_dim, dense = d->n_expert == 0;
    const int NE = dense ? 1 : d->n_expert, K = dense ? 1 : d->n_expert_used, ff = d->n_ff_exp;
    const int qd = d->n_head * hd, kvd = d->n_head_kv * hd;
    if (!d->layers) return qmc_errf(err, cap, "bad description: no layers");
    if (qmc_check_moe_shape(d->n_layer, E, ff, NE, K, d->max_tokens, err, cap)) return -1;
    int gemm_min, gemm_f16; // the environment's settings are checked before anything is allocated
    if (qmc_gemm_min(&gemm_min, err, cap) != 0 || qmc_gemm_type(&gemm_f16, err, cap) != 0) return -1;
    if (d->n_head <= 0 || d->n_head_kv <= 0 || d->n_head % d->n_head_kv || hd <= 0 || hd % 32 || hd > QMC_MAX_HD ||
        d->n_vocab <= 0)
        return qmc_errf(err, cap, "n_head %d, n_head_kv %d, head_dim %d, n_vocab %d: the CUDA forward needs n_head a "
                        "multiple of n_head_kv and head_dim a multiple of 32 up to %d", d->n_head, d->n_head_kv, hd,
                        d->n_vocab, QMC_MAX_HD);
    if (!dense && (NE > 32 * QMC_ROUTE_PER || K > 32))
        return qmc_errf(err, cap, "%d experts, %d used: the CUDA router handles up to %d experts and 32 used", NE, K,
                        32 * QMC_ROUTE_PER);
    if (!d->output_norm) return qmc_errf(err, cap, "output_norm: no data");
    qmc_fwd *f = static_cast<qmc_fwd *>(calloc(1, sizeof(qmc_fwd)));
    if (!f) return qmc_errf(err, cap, "out of host memory");
    h->fwd = f;
    h->n_layer = d->n_layer;
    f->n_layer = d->n_layer; f->E = E; f->n_head = d->n_head; f->n_head_kv = d->n_head_kv; f->hd = hd;
    f->n_expert = dense ? 0 : NE; f->K = K; f->ff = ff; f->n_vocab = d->n_vocab; f->dense = dense;
    f->eps = d->rms_eps; f->cpu_moe = d->cpu_moe;

    // check everything and add up the bytes before uploading anything
    size_t weights = 0;
    std::vector<qm_cuda_moe_layer> ex((size_t)d->n_layer);
    for (int il = 0; il < d->n_layer; il++) {
        const qm_cuda_layer *L = &d->layers[il];
        ex[il] = L->experts;
        if (qmc_check_tensor(&L->wq, il, "attn_q", E, qd, 1, err, cap) ||
            qmc_check_tensor(&L->wk, il, "attn_k", E, kvd, 1, err, cap) ||
            qmc_check_tensor(&L->wv, il, "attn_v", E, kvd, 1, err, cap) ||
            qmc_check_tensor(&L->wo, il, "attn_output", qd, E, 1, err, cap) ||
            (!dense && qmc_check_tensor(&L->router, il, "ffn_gate_inp", E, NE, 1, err, cap)))
            return -1;
        weights += qmc_tensor_bytes(&L->wq) + qmc_tensor_bytes(&L->wk) + qmc_tensor_bytes(&L->wv) +
                   qmc_tensor_bytes(&L->wo) + (dense ? 0 : qmc_tensor_bytes(&L->router)) +
                   sizeof(float) * (2 * (size_t)E + 2 * (size_t)hd);
        if (!L->experts.gate.data) {
            f->any_cpu_layer = 1;
            if (!d->cpu_moe) return qmc_errf(err, cap, "layer %d keeps its experts on the CPU but the description "
                                             "has no cpu_moe callback", il);
        }
    }
    const int on_gpu = qmc_check_experts(ex.data(), d->n_layer, E, ff, NE, &weights, err, cap);
    if (on_gpu < 0) return -1;
    if (qmc_check_tensor(&d->tok_embd, -1, "token_embd", E, d->n_vocab, 1, err, cap) ||
        qmc_check_tensor(&d->output, -1, "output", E, d->n_vocab, 1, err, cap))
        return -1;
    const int tied = d->output.data == d->tok_embd.data;
    weights += qmc_tensor_bytes(&d->tok_embd) + (tied ? 0 : qmc_tensor_bytes(&d->output)) + sizeof(float) * E;
    char what[96];
    snprintf(what, sizeof(what), "the model's %d layers (%d with their experts)", d->n_layer, on_gpu);
    QMC_CU(cudaGetDevice(&h->device));
    if (qmc_check_fit(weights, what, QMC_HINT_EXPERTS, err, cap)) return -1;

    // upload
    h->layers = static_cast<qmc_layer *>(calloc((size_t)d->n_layer, sizeof(qmc_layer)));
    f->layers = static_cast<qmc_fwd_layer *>(calloc((size_t)d->n_layer, sizeof(qmc_fwd_layer)));
    if (!h->layers || !f->layers) return qmc_errf(err, cap, "out of host memory");
    for (int il = 0; il < d->n_layer; il++) {
        const qm_cuda_layer *L = &d->layers[il];
        qmc_fwd_layer *F = &f->layers[il];
        if (qmc_upload_vec(L->attn_norm, E, &F->attn_norm, "attn_norm", il, err, cap) ||
            qmc_upload_vec(L->q_norm, hd, &F->q_norm, "attn_q_norm", il, err, cap) ||
            qmc_upload_vec(L->k_norm, hd, &F->k_norm, "attn_k_norm", il, err, cap) ||
            qmc_upload_vec(L->ffn_norm, E, &F->ffn_norm, "ffn_norm", il, err, cap) ||
            qmc_upload(&L->wq, &F->wq, err, cap) || qmc_upload(&L->wk, &F->wk, err, cap) ||
            qmc_upload(&L->wv, &F->wv, err, cap) || qmc_upload(&L->wo, &F->wo, err, cap) ||
            (!dense && qmc_upload(&L->router, &F->router, err, cap)))
            return -1;
        if (L->experts.gate.data &&
            (qmc_upload(&L->experts.gate, &h->layers[il].gate, err, cap) ||
             qmc_upload(&L->experts.up, &h->layers[il].up, err, cap) ||
             qmc_upload(&L->experts.down, &h->layers[il].down, err, cap)))
            return -1;
        if (d->progress) d->progress(d->log_user, il + 1, d->n_layer);
    }
    if (qmc_upload(&d->tok_embd, &f->tok_embd, err, cap)) return -1;
    if (tied) {
        f->output = f->tok_embd;
        f->output.owned = 0;
    } else if (qmc_upload(&d->output, &f->output, err, cap)) {
        return -1;
    }
    if (qmc_upload_vec(d->output_norm, E, &f->output_norm, "output_norm", -1, err, cap)) return -1;
    h->moe_E = E; h->moe_ff = ff; h->moe_K = K; h->moe_NE = NE; h->moe_max_tokens = d->max_tokens;
    if (d->log) {
        char msg[256];
        snprintf(msg, sizeof(msg), "CUDA: uploaded the whole model, %.1f MiB (%d of %d layers with their experts%s)",
                 weights / 1048576.0, on_gpu, d->n_layer, tied ? ", tied LM head" : "");
        d->log(d->log_user, QM_LOG_INFO, msg);
    }
    return 0;
}

static void qmc_ctx_destroy(qmc_ctx *c) {
    if (!c) return;
    if (c->graph) cudaGraphExecDestroy(c->graph);
    void *dev[] = {c->k_cache, c->v_cache, c->rope_cos, c->rope_sin, c->x, c->xn, c->xq, c->q, c->k, c->v, c->att,
                   c->router, c->wts, c->logits, c->ids, c->tokens, c->pos, c->dense_w, c->dense_x};
    for (size_t i = 0; i < sizeof(dev) / sizeof(dev[0]); i++) cudaFree(dev[i]);
    cudaFreeHost(c->h_tokens);
    cudaFreeHost(c->h_pos);
    cudaFreeHost(c->h_logits);
    qmc_ws_free(&c->ws);
    delete c;
}

// Device bytes of a context (KV cache and buffers), as qmc_ctx_alloc allocates them.
static size_t qmc_ctx_bytes(const qmc_fwd *f, const qm_cuda_ctx_desc *d, size_t dense_w_bytes) {
    const size_t kvd = (size_t)f->n_head_kv * f->hd, qd = (size_t)f->n_head * f->hd, nb = (size_t)d->n_batch;
    const size_t wide = qd > (size_t)f->E ? qd : (size_t)f->E;
    const size_t NE = f->n_expert ? (size_t)f->n_expert : 1;
    return 2 * (size_t)f->n_layer * d->n_ctx * kvd * (d->kv_f32 ? 4 : 2) // KV cache
           + 2 * (size_t)d->n_ctx * (f->hd / 2) * 4                      // RoPE tables
           + nb * 4 * (2 * (size_t)f->E + wide + 2 * qd + 2 * kvd + NE + 2 * (size_t)f->K + 1) // x .. ids, tokens
           + (size_t)d->n_out_max * f->n_vocab * 4                      // logits
           + dense_w_bytes + nb * wide * 4                               // dense_w, dense_x
           + qmc_buffer_bytes(f->E, f->ff, f->K, d->n_batch);           // the experts' scratch
}

static int qmc_ctx_alloc(qmc_ctx *c, const qm_cuda_ctx_desc *d, char *err, size_t cap) {
    const qmc_fwd *f = c->h->fwd;
    const size_t kvd = (size_t)f->n_head_kv * f->hd, qd = (size_t)f->n_head * f->hd, nb = (size_t)d->n_batch;
    const size_t wide = qd > (size_t)f->E ? qd : (size_t)f->E, half = (size_t)f->hd / 2;
    const size_t NE = f->n_expert ? (size_t)f->n_expert : 1, kv_bytes = (size_t)f->n_layer * d->n_ctx * kvd * (d->kv_f32 ? 4 : 2);
    // dense GEMM scratch: 32 MiB of dequantized rows (at least one row of the widest matrix)
    c->dense_w_bytes = (size_t)32 << 20;
    const size_t need = qmc_ctx_bytes(f, d, c->dense_w_bytes);
    char what[128];
    snprintf(what, sizeof(what), "a context of %d tokens (batch %d; KV cache %.1f MiB)", d->n_ctx, d->n_batch,
             2 * kv_bytes / 1048576.0);
    if (qmc_check_fit(need, what, "use a smaller n_ctx or n_batch", err, cap)) return -1;
    QMC_CU(cudaMalloc(&c->k_cache, kv_bytes));
    QMC_CU(cudaMalloc(&c->v_cache, kv_bytes));
    QMC_CU(cudaMalloc((void **)&c->rope_cos, (size_t)d->n_ctx * half * 4));
    QMC_CU(cudaMalloc((void **)&c->rope_sin, (size_t)d->n_ctx * half * 4));
    QMC_CU(cudaMemcpy(c->rope_cos, d->rope_cos, (size_t)d->n_ctx * half * 4, cudaMemcpyHostToDevice));
    QMC_CU(cudaMemcpy(c->rope_sin, d->rope_sin, (size_t)d->n_ctx * half * 4, cudaMemcpyHostToDevice));
    QMC_CU(cudaMalloc((void **)&c->x, nb * f->E * 4));
    QMC_CU(cudaMalloc((void **)&c->xn, nb * f->E * 4));
    QMC_CU(cudaMalloc((void **)&c->xq, nb * wide * 4));
    QMC_CU(cudaMalloc((void **)&c->q, nb * qd * 4));
    QMC_CU(cudaMalloc((void **)&c->att, nb * qd * 4));
    QMC_CU(cudaMalloc((void **)&c->k, nb * kvd * 4));
    QMC_CU(cudaMalloc((void **)&c->v, nb * kvd * 4));
    QMC_CU(cudaMalloc((void **)&c->router, nb * NE * 4));
    QMC_CU(cudaMalloc((void **)&c->wts, nb * f->K * 4));
    QMC_CU(cudaMalloc((void **)&c->ids, nb * f->K * 4));
    QMC_CU(cudaMalloc((void **)&c->tokens, nb * 4));
    QMC_CU(cudaMalloc((void **)&c->pos, 4));
    QMC_CU(cudaMalloc((void **)&c->logits, (size_t)d->n_out_max * f->n_vocab * 4));
    QMC_CU(cudaMalloc(&c->dense_w, c->dense_w_bytes));
    QMC_CU(cudaMalloc(&c->dense_x, nb * wide * 4));
    QMC_CU(cudaMallocHost((void **)&c->h_tokens, nb * 4));
    QMC_CU(cudaMallocHost((void **)&c->h_pos, 4));
    QMC_CU(cudaMallocHost((void **)&c->h_logits, (size_t)d->n_out_max * f->n_vocab * 4));
    if (qmc_ws_alloc(&c->ws, f->E, f->ff, f->K, f->n_expert ? f->n_expert : 1, d->n_batch, err, cap)) return -1;
    return 0;
}

static void *qmc_ctx_create(void *hv, const qm_cuda_ctx_desc *d, char *err, size_t cap) {
    qmc_handle *h = static_cast<qmc_handle *>(hv);
    if (!h || !h->fwd) {
        qmc_errf(err, cap, "the handle has no model (made by moe_create, not model_create)");
        return NULL;
    }
    if (!d || d->n_ctx <= 0 || d->n_batch <= 0 || d->n_batch > d->n_ctx || d->n_out_max <= 0 ||
        d->n_out_max > d->n_batch || !d->rope_cos || !d->rope_sin) {
        qmc_errf(err, cap, "bad context description: n_ctx %d n_batch %d n_out_max %d", d ? d->n_ctx : 0,
                 d ? d->n_batch : 0, d ? d->n_out_max : 0);
        return NULL;
    }
    qmc_ctx *c = new (std::nothrow) qmc_ctx();
    if (!c) {
        qmc_errf(err, cap, "out of host memory");
        return NULL;
    }
    c->h = h;
    c->n_ctx = d->n_ctx; c->n_batch = d->n_batch; c->n_out_max = d->n_out_max; c->kv_f32 = d->kv_f32;
    const char *env = getenv("QWENMOE_CUDA_GRAPH");
    c->graphs = !(env && !strcmp(env, "0")) && !h->fwd->any_cpu_layer;
    qmc_device_scope dev(h->device);
    if (!dev.ok || qmc_ctx_alloc(c, d, err, cap)) {
        if (!dev.ok) qmc_errf(err, cap, "cannot select CUDA device %d", h->device);
        qmc_ctx_destroy(c);
        return NULL;
    }
    return c;
}

static void qmc_ctx_free(void *c) {
    qmc_ctx *ctx = static_cast<qmc_ctx *>(c);
    if (!ctx) return;
    qmc_device_scope dev(ctx->h->device);
    qmc_ctx_destroy(ctx);
}

// out [T][rows] = W . in[t] (add: +=), in [T][cols] on the device, rounded first as the CPU's
// kernel for W's type sees it (rounded: in is that already). Fewer than gemm_min tokens: the
// mat-vec kernel; more: rows dequantized in chunks into dense_w, then cuBLAS.
static int qmc_dense(qmc_ctx *c, const qmc_tensor *W, const float *in, int T, float *out, int add, int rounded,
                     char *err, size_t cap) {
    cudaStream_t st = c->ws.stream;
    const int kind = qmc_act_kind(W->type), cols = W->cols, rows = W->rows;
    const float *src = in;
    if (kind != QMC_ACT_F32 && !rounded) {
        if (qmc_launch_actq(in, c->xq, T, cols, kind, st, err, cap)) return -1;
        src = c->xq;
    }
    if (T < c->ws.gemm_min)
        return qmc_launch_matvec(W, (T + QMC_MV_MAXP - 1) / QMC_MV_MAXP, NULL, NULL, NULL, src, NULL, out,
                                 add ? 2 : 0, T, st, err, cap);
    // f32 weights (the router) stay f32, so that the choice of experts is not moved by a rounding
    const int f16 = c->ws.gemm_f16 && W->type != QM_TYPE_F32;
    const size_t vb = f16 ? 2 : 4;
    const void *X = src;
    if (f16) {
        QMC_LAUNCH(qmc_k_to_f16, qmc_blocks((size_t)T * cols, 256), 256, st)(src, (size_t)T * cols,
                                                                             static_cast<uint16_t *>(c->dense_x));
        QMC_LAUNCHED("to_f16");
        X = c->dense_x;
    }
    const int chunk = (int)(c->dense_w_bytes / ((size_t)cols * vb));
    if (chunk < 1) return qmc_errf(err, cap, "a row of %d values does not fit the dense scratch", cols);
    for (int r0 = 0; r0 < rows; r0 += chunk) {
        const int n = rows - r0 < chunk ? rows - r0 : chunk;
        if (qmc_launch_dequant(W, 0, r0, n, c->dense_w, f16, st, err, cap) ||
            qmc_gemm(&c->ws, f16, T, n, cols, c->dense_w, X, out + r0, rows, add ? 1.0f : 0.0f, err, cap))
            return -1;
    }
    return 0;
}

// c->xn [T][E] = RMSNorm of x with w; xq != NULL: also rounded for kind into xq.
static int qmc_launch_rmsnorm(qmc_ctx *c, const float *x, const float *w, int T, float *xq, int kind, char *err,
                              size_t cap) {
    const qmc_fwd *f = c->h->fwd;
    QMC_LAUNCH(qmc_k_rmsnorm, qmc_blocks((size_t)T, 4), dim3(32, 4), c->ws.stream)(x, w, f->E, f->eps, c->xn, T, xq,
                                                                                   kind, qmc_act_block(kind));
    QMC_LAUNCHED("rmsnorm");
    return 0;
}

static int qmc_launch_embed(qmc_ctx *c, int T, char *err, size_t cap) {
    const qmc_tensor *t = &c->h->fwd->tok_embd;
    const int E = c->h->fwd->E;
    const unsigned blocks = qmc_blocks((size_t)T * (E / 8), 256);
    switch (t->type) {
#define QMC_CASE(TY) \
    case TY: QMC_LAUNCH(qmc_k_embed<TY>, blocks, 256, c->ws.stream)(t->dev, t->row_bytes, c->tokens, T, E, c->x); break;
        QMC_FOR_TYPES(QMC_CASE)
#undef QMC_CASE
    default: return qmc_errf(err, cap, "token_embd: type %s has no kernel", qmc_type_name(t->type));
    }
    QMC_LAUNCHED("embed");
    return 0;
}

// The routed experts of layer il (y: the residual stream, added to). Few tokens: the plan was
// made on the device by the router (every pair its own mat-vec group); more: on the host,
// which costs a copy of the ids and a sync. Layers whose experts stay on the CPU go through cpu_moe.
static int qmc_ffn(qmc_ctx *c, int il, int T, void *user, int xg_ready, char *err, size_t cap) {
    const qmc_fwd *f = c->h->fwd;
    const qmc_layer *L = &c->h->layers[il];
    qmc_ws *ws = &c->ws;
    cudaStream_t st = ws->stream;
    const int K = f->K, E = f->E, n_pairs = T * K;
    if (!L->gate.dev) { // on the CPU: x, ids and weights to the host, the header's CPU path, y back
        QMC_CU(cudaMemcpyAsync(ws->h_x, c->xn, sizeof(float) * (size_t)T * E, cudaMemcpyDeviceToHost, st));
        QMC_CU(cudaMemcpyAsync(ws->h_ints, c->ids, sizeof(int) * (size_t)n_pairs, cudaMemcpyDeviceToHost, st));
        QMC_CU(cudaMemcpyAsync(ws->h_w, c->wts, sizeof(float) * (size_t)n_pairs, cudaMemcpyDeviceToHost, st));
        QMC_CU(cudaStreamSynchronize(st));
        if (f->cpu_moe(user, il, T, ws->h_x, ws->h_ints, ws->h_w, ws->h_y) != 0)
            return qmc_errf(err, cap, "layer %d: the CPU experts failed", il);
        QMC_CU(cudaMemcpyAsync(ws->d_y, ws->h_y, sizeof(float) * (size_t)T * E, cudaMemcpyHostToDevice, st));
        QMC_LAUNCH(qmc_k_add, qmc_blocks((size_t)T * E, 256), 256, st)(c->x, ws->d_y, (size_t)T * E);
        QMC_LAUNCHED("add");
        return 0;
    }
    qmc_plan pl;
    memset(&pl, 0, sizeof(pl));
    if (T < ws->gemm_min) { // the router wrote the plan: every pair a mat-vec group
        pl.n_mv = n_pairs;
    } else {
        QMC_CU(cudaMemcpyAsync(ws->h_ints, c->ids, sizeof(int) * (size_t)n_pairs, cudaMemcpyDeviceToHost, st));
        QMC_CU(cudaStreamSynchronize(st));
        // the plan's staging reuses h_ints, so the ids move to the plan's scratch first
        memcpy(ws->ids, ws->h_ints, sizeof(int) * (size_t)n_pairs);
        if (qmc_plan_upload(ws, T, ws->ids, err, cap)) return -1;
        pl = ws->plan;
    }
    return qmc_moe_exec(ws, L, T, &pl, c->xn, c->wts, c->x, 1, xg_ready, err, cap);
}

// One forward of T tokens at positions pos .. pos + T - 1 on the stream, up to the logits of
// the last n_out tokens in c->logits. No host synchronisation unless a layer needs the host
// (a layer with its experts on the CPU, or a prefill's expert plan).
static int qmc_forward(qmc_ctx *c, int T, int n_out, void *user, char *err, size_t cap) {
    const qmc_fwd *f = c->h->fwd;
    cudaStream_t st = c->ws.stream;
    const int E = f->E, hd = f->hd, kvd = f->n_head_kv * hd, f16 = !c->kv_f32;
    const dim3 warps(32, 4);
    if (qmc_launch_embed(c, T, err, cap)) return -1;
    for (int il = 0; il < f->n_layer; il++) {
        const qmc_fwd_layer *L = &f->layers[il];
        const size_t base = (size_t)il * c->n_ctx * kvd;
        // attention
        // q, k and v read the same input: the norm rounds it too, once for those of them whose
        // types round it alike (as q's)
        const int kq = qmc_act_kind(L->wq.type), rq = kq != QMC_ACT_F32;
        const int rk = rq && qmc_act_kind(L->wk.type) == kq, rv = rq && qmc_act_kind(L->wv.type) == kq;
        if (qmc_launch_rmsnorm(c, c->x, L->attn_norm, T, rq ? c->xq : NULL, kq, err, cap) ||
            qmc_dense(c, &L->wq, rq ? c->xq : c->xn, T, c->q, 0, rq, err, cap) ||
            qmc_dense(c, &L->wk, rk ? c->xq : c->xn, T, c->k, 0, rk, err, cap) ||
            qmc_dense(c, &L->wv, rv ? c->xq : c->xn, T, c->v, 0, rv, err, cap))
            return -1;
        QMC_LAUNCH(qmc_k_qkv_post, qmc_blocks((size_t)T * (f->n_head + 2 * f->n_head_kv), 4), warps, st)(
            c->q, c->k, c->v, T, f->n_head, f->n_head_kv, hd, L->q_norm, L->k_norm, f->eps, c->rope_cos, c->rope_sin,
            c->pos, c->k_cache, c->v_cache, base, f16);
        QMC_LAUNCHED("qkv_post");
        QMC_LAUNCH(qmc_k_attention, dim3((unsigned)f->n_head, (unsigned)T), dim3(32, QMC_ATT_WARPS), st)(
            c->q, c->k_cache, c->v_cache, base, f->n_head, f->n_head_kv, hd, c->pos, f16, c->att);
        QMC_LAUNCHED("attention");
        if (qmc_dense(c, &L->wo, c->att, T, c->x, 1, 0, err, cap)) return -1; // x += wo . att
        // feed-forward
        // the norm also rounds the input of the GPU experts' gate (the router reads it unrounded)
        const qmc_tensor *G = &c->h->layers[il].gate;
        const int kg = G->dev ? qmc_act_kind(G->type) : QMC_ACT_F32, xg_ready = kg != QMC_ACT_F32;
        if (qmc_launch_rmsnorm(c, c->x, L->ffn_norm, T, xg_ready ? c->ws.d_xqg : NULL, kg, err, cap)) return -1;
        if (!f->dense && qmc_dense(c, &L->router, c->xn, T, c->router, 0, 0, err, cap)) return -1;
        // few tokens on GPU experts: the router writes the mat-vec plan too (see qmc_ffn)
        const int dplan = c->h->layers[il].gate.dev && T < c->ws.gemm_min, np = T * f->K;
        int *di = c->ws.d_ints;
        QMC_LAUNCH(qmc_k_route, qmc_blocks((size_t)T, 4), warps, st)(
            c->router, T, f->n_expert, f->K, c->ids, c->wts, dplan ? di : (int *)NULL, dplan ? di + np : (int *)NULL,
            dplan ? reinterpret_cast<qmc_group *>(di + 2 * np) : (qmc_group *)NULL);
        QMC_LAUNCHED("route");
        if (qmc_ffn(c, il, T, user, xg_ready, err, cap)) return -1;
    }
    // final norm and LM head, for the rows whose logits are wanted
    const int ko = qmc_act_kind(f->output.type), ro = ko != QMC_ACT_F32;
    if (qmc_launch_rmsnorm(c, c->x + (size_t)(T - n_out) * E, f->output_norm, n_out, ro ? c->xq : NULL, ko, err, cap) ||
        qmc_dense(c, &f->output, ro ? c->xq : c->xn, n_out, c->logits, 0, ro, err, cap))
        return -1;
    QMC_CU(cudaMemcpyAsync(c->h_logits, c->logits, sizeof(float) * (size_t)n_out * f->n_vocab, cudaMemcpyDeviceToHost,
                           st));
    return 0;
}

// Decode as one CUDA graph: captured on the first one-token evaluation, replayed after it.
// The token and the position are read from pinned memory by the graph's first copies, so the
// same graph serves every step. Returns 1 when it ran, 0 when the graph could not be made
// (the caller then runs the kernels directly; the reason goes to the log once), -1 on error.
static int qmc_decode_graph(qmc_ctx *c, void *user, char *err, size_t cap) {
    cudaStream_t st = c->ws.stream;
    if (!c->graph) {
        cudaGraph_t g = NULL;
        char why[256] = "";
        if (cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal) != cudaSuccess) {
            cudaGetLastError();
            c->graph_failed = 1;
            return 0;
        }
        int r = 0;
        if (cudaMemcpyAsync(c->tokens, c->h_tokens, sizeof(int), cudaMemcpyHostToDevice, st) != cudaSuccess ||
            cudaMemcpyAsync(c->pos, c->h_pos, sizeof(int), cudaMemcpyHostToDevice, st) != cudaSuccess)
            r = -1;
        if (r == 0) r = qmc_forward(c, 1, 1, user, why, sizeof(why));
        cudaError_t e = cudaStreamEndCapture(st, &g);
        if (r == 0 && e == cudaSuccess) e = cudaGraphInstantiate(&c->graph, g, 0ULL);
        if (g) cudaGraphDestroy(g);
        if (r != 0 || e != cudaSuccess) {
            cudaGetLastError();
            if (c->graph) cudaGraphExecDestroy(c->graph);
            c->graph = NULL;
            c->graph_failed = 1;
            return 0;
        }
    }
    QMC_CU(cudaGraphLaunch(c->graph, st));
    return 1;
}

static int qmc_ctx_eval_impl(qmc_ctx *c, const int32_t *tokens, int T, int pos, int n_out, float *logits, void *user,
                             char *err, size_t cap) {
    const qmc_fwd *f = c->h->fwd;
    cudaStream_t st = c->ws.stream;
    if (T <= 0 || T > c->n_batch) return qmc_errf(err, cap, "%d tokens, expected 1..%d", T, c->n_batch);
    if (pos < 0 || pos + T > c->n_ctx)
        return qmc_errf(err, cap, "positions %d..%d are outside the context of %d", pos, pos + T - 1, c->n_ctx);
    if (n_out <= 0 || n_out > T || n_out > c->n_out_max)
        return qmc_errf(err, cap, "%d logits rows of %d tokens, expected 1..%d", n_out, T, T < c->n_out_max ? T : c->n_out_max);
    if (!tokens || !logits) return qmc_errf(err, cap, "NULL argument");
    for (int i = 0; i < T; i++)
        if (tokens[i] < 0 || tokens[i] >= f->n_vocab)
            return qmc_errf(err, cap, "token %d at index %d is outside the vocabulary (0..%d)", tokens[i], i,
                            f->n_vocab - 1);
    memcpy(c->h_tokens, tokens, sizeof(int) * (size_t)T);
    *c->h_pos = pos;
    int ran = 0;
    // (one token takes the mat-vec paths only, unless QWENMOE_CUDA_GEMM_MIN=1 asks for cuBLAS)
    if (T == 1 && n_out == 1 && c->graphs && !c->graph_failed && c->ws.gemm_min > 1) {
        ran = qmc_decode_graph(c, user, err, cap);
        if (ran < 0) return -1;
    }
    if (!ran) {
        QMC_CU(cudaMemcpyAsync(c->tokens, c->h_tokens, sizeof(int) * (size_t)T, cudaMemcpyHostToDevice, st));
        QMC_CU(cudaMemcpyAsync(c->pos, c->h_pos, sizeof(int), cudaMemcpyHostToDevice, st));
        if (qmc_forward(c, T, n_out, user, err, cap)) return -1;
    }
    QMC_CU(cudaStreamSynchronize(st));
    memcpy(logits, c->h_logits, sizeof(float) * (size_t)n_out * f->n_vocab);
    return 0;
}

static int qmc_ctx_eval(void *cv, const int32_t *tokens, int T, int pos, int n_out, float *logits, void *user,
                        char *err, size_t cap) {
    qmc_ctx *c = static_cast<qmc_ctx *>(cv);
    if (!c) return qmc_errf(err, cap, "no CUDA context");
    qmc_device_scope dev(c->h->device);
    if (!dev.ok) return qmc_errf(err, cap, "cannot select CUDA device %d", c->h->device);
    int r = qmc_ctx_eval_impl(c, tokens, T, pos, n_out, logits, user, err, cap);
    if (r != 0) cudaStreamSynchronize(c->ws.stream); // nothing in flight may still use the buffers
    return r;
}

static void *qmc_model_create(const qm_cuda_model_desc *d, char *err, size_t cap) {
    return qmc_new_handle(d, qmc_model_create_impl, err, cap);
}

static void qmc_free(void *p) { qmc_destroy(static_cast<qmc_handle *>(p)); }

static const qm_cuda_hooks qmc_hooks = {QM_CUDA_ABI_VERSION, "cuda",         qmc_probe,      qmc_moe_create,
                                        qmc_moe_eval,        qmc_free,       qmc_model_create, qmc_ctx_create,
                                        qmc_ctx_eval,        qmc_ctx_free};

extern "C" const qm_cuda_hooks *qm_cuda_hook(void) { return &qmc_hooks; }

// The anchor for static-archive builds: calling it forces this member to be linked.
extern "C" int qm_cuda_register(void) { return 1; }
