// simt.h - a host-side SIMT emulator: lets the real kernels and host code of a CUDA source
// (qwenmoe_cuda.cu) compile with a plain C++17 compiler and run on the CPU, for tests.
//
//   g++ -std=c++17 -O2 -ffp-contract=off -DQMC_EMU -include tests/cuda/simt.h -x c++ -c qwenmoe_cuda.cu
//
// It stands in for cuda_runtime.h, cuda_fp16.h and cublas_v2.h: the CUDA keywords, the vector
// types, the built-in variables, the warp and block intrinsics, a subset of the runtime API
// (memory, streams, stream capture and graphs, events, errors, device properties) and of
// cuBLAS (cublasGemmEx and friends), and QMC_LAUNCH(kernel, grid, block, stream)(args...) for
// kernel launches. __CUDA_ARCH__ stays undefined: __host__ __device__ code takes its host
// branches, and __global__ functions are ordinary host functions.
//
// EXECUTION MODEL
//   One emulated device. Work on a stream runs synchronously, at the call, on the calling host
//   thread, except while the stream is capturing: then it is recorded into the graph (kernel
//   arguments by value, memcpy pointers as pointers: the bytes are read at replay) and
//   cudaGraphLaunch replays the records in order.
//   A kernel's blocks run one after another (x fastest, then y, then z). Inside a block every
//   CUDA thread is a coroutine with its own stack (QMC_SIMT_STACK_KB, default 64 KiB; the stacks
//   are allocated once per host thread, with a guard page below each, and reused). Threads run
//   until they block at a barrier or exit; a "round" runs every runnable thread once, in the
//   configured order, each one switching directly to the next; then the barriers that can
//   complete are completed and the next round runs the threads they released.
//     __syncthreads() (and _count/_and/_or) completes when every thread of the block that has
//       not exited waits at a block barrier.
//     Warp operations (__shfl*_sync, __ballot/__any/__all_sync, __syncwarp): a warp is 32
//       consecutive linear thread ids (x + y*bx + z*bx*by). An operation completes when every
//       live lane named in its mask waits at a warp operation with that mask. Each lane deposits
//       its value when it arrives; at completion the scheduler reads every lane's source value
//       into that lane's result before any lane runs again (the two phases of the exchange), so
//       no lane can overwrite a deposit another lane has yet to read.
//     Launch errors (the launch fails with cudaErrorLaunchFailure: returned by the next
//       cudaGetLastError and by the next synchronization of the stream, and described on stderr
//       with the kernel, the block and the thread): a shuffle whose source lane has exited or is
//       not in the mask; a lane calling a warp operation with a mask that leaves it out; lanes of
//       a warp at different kinds of warp operation or with different masks; a deadlock (no
//       thread can run and no barrier can complete, e.g. lanes of one warp waiting at a block
//       and at a warp barrier). The failing block's other threads are abandoned (their frames
//       are not unwound) and the launch's remaining blocks do not run.
//   Race exposure: QMC_SIMT_ORDER=forward (default: ascending linear id), reverse, or shuffle (a
//   pseudo-random order, drawn again every round, deterministic per host thread from
//   QMC_SIMT_SEED, default 1, the launch number and the block). Read at every launch.
//   Context switch: hand-written x86-64 SysV assembly (rbx, rbp, r12-r15, rsp, MXCSR and the
//   x87 control word); elsewhere, or with -DQMC_SIMT_UCONTEXT, ucontext.
//   __shared__ is `static thread_local`: blocks run one at a time on a host thread, and host
//   threads running kernels at once have their own copies. Its contents carry over from one
//   block to the next (on a GPU they are undefined).
//
// DEVICE MEMORY
//   cudaMalloc maps every allocation separately (mmap), with a PROT_NONE guard page on each
//   side and the pointer placed so that the allocation ends on its last page (256-byte
//   aligned): reads past the end fault. With the guard on (default; QMC_SIMT_GUARD=0 turns it
//   off) device memory is PROT_NONE except while a device operation (kernel, memcpy, memset,
//   GEMM) uses it: the operation's first touch of an allocation faults, a SIGSEGV handler makes
//   that allocation readable and writable (counted per allocation, for host threads running
//   operations at once) and the operation's end closes it again; so host code that
//   dereferences a device pointer gets SIGSEGV (every fault that is not a device operation's
//   goes to the previous handler, by default the process's death). While one host thread's
//   operation has an allocation open, other host threads' host code can read it undetected. New
//   allocations are filled with 0xff bytes (float NaN, int -1; QMC_SIMT_POISON=0: zeros).
//   The device has QMC_SIMT_MEM_MB MiB (default 8192): cudaMemGetInfo reports that total and
//   free = total - allocated (page-rounded), and cudaMalloc beyond it fails with
//   cudaErrorMemoryAllocation. cudaMallocHost memory is ordinary host memory. cudaMemcpy checks
//   each pointer against the direction (a "device" side must lie inside one allocation, a
//   "host" side must not be device memory) and fails with cudaErrorInvalidValue and a message.
//   QMC_SIMT_NODEV=1: cudaGetDeviceCount fails with cudaErrorNoDevice; QMC_SIMT_NODRIVER=1:
//   with cudaErrorInsufficientDriver and driver version 0 (both read at every call).
//   QMC_SIMT_STATS=1 prints counters at exit (launches, blocks, threads, context switches,
//   copies, GEMMs, guard faults and mprotect calls); QMC_SIMT_TRACE=1 prints every launch.
//
// cuBLAS: cublasGemmEx / cublasGemmStridedBatchedEx / cublasSgemm compute the column-major BLAS
//   definition C = alpha op(A) op(B) + beta C, A and B in f16, bf16 or f32 (the same type), C in
//   f32 (or A's type), any 32F compute type. Products and sums are accumulated in double (every
//   product of two such inputs is exact in double), alpha and beta applied in double, and the
//   result rounded once to float (then to f16/bf16 for such a C). beta == 0 ignores C's old
//   contents. Calls on a capturing stream are recorded. Host (default) and device pointer modes.
//
// LIMITS: no dynamic (extern) shared memory, dynamic parallelism, cooperative groups, textures,
//   managed memory, multiple devices or peer copies. Kernels can read host memory undetected.
//   Threads of a block never run in parallel and are never preempted: a spin-wait on another
//   thread's write without a barrier hangs. Launch errors are not sticky for the whole context.
//   The coroutine stacks are not announced to AddressSanitizer or Valgrind (no fiber-switch
//   annotations): run the emulated build without them. The guard's SIGSEGV handler is installed
//   at the first cudaMalloc (and chains to the one before it).
#ifndef QMC_SIMT_H
#define QMC_SIMT_H
#if !defined(__cplusplus) || __cplusplus < 201703L
#error "simt.h needs C++17"
#endif

// Every standard header first: the keyword and intrinsic macros below must not reach them.
#include <math.h>
#include <cmath>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <set>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>
#if !defined(__x86_64__) || defined(QMC_SIMT_UCONTEXT)
#define QMC_SIMT_USE_UCONTEXT 1
#include <ucontext.h>
#endif

#define QMC_SIMT 1 /* for code that wants to know */

// =============================================================================================
// Keywords
// =============================================================================================
#define __host__
#define __device__
#define __global__
#define __constant__
#define __forceinline__ inline
#define __shared__ static thread_local
#define __launch_bounds__(...)

// =============================================================================================
// Vector types
// =============================================================================================
struct uint3 { unsigned int x, y, z; };
struct int3 { int x, y, z; };
struct float3 { float x, y, z; };
struct alignas(8) uint2 { unsigned int x, y; };
struct alignas(8) int2 { int x, y; };
struct alignas(8) float2 { float x, y; };
struct alignas(16) uint4 { unsigned int x, y, z, w; };
struct alignas(16) int4 { int x, y, z, w; };
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(16) double2 { double x, y; };
struct alignas(4) char4 { signed char x, y, z, w; };
struct alignas(4) uchar4 { unsigned char x, y, z, w; };
struct alignas(4) ushort2 { unsigned short x, y; };
struct dim3 {
    unsigned int x, y, z;
    constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1) : x(vx), y(vy), z(vz) {}
    constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
};
inline constexpr uint2 make_uint2(unsigned int x, unsigned int y) { return uint2{x, y}; }
inline constexpr int2 make_int2(int x, int y) { return int2{x, y}; }
inline constexpr float2 make_float2(float x, float y) { return float2{x, y}; }
inline constexpr uint3 make_uint3(unsigned int x, unsigned int y, unsigned int z) { return uint3{x, y, z}; }
inline constexpr int3 make_int3(int x, int y, int z) { return int3{x, y, z}; }
inline constexpr float3 make_float3(float x, float y, float z) { return float3{x, y, z}; }
inline constexpr uint4 make_uint4(unsigned int x, unsigned int y, unsigned int z, unsigned int w) { return uint4{x, y, z, w}; }
inline constexpr int4 make_int4(int x, int y, int z, int w) { return int4{x, y, z, w}; }
inline constexpr float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
inline constexpr double2 make_double2(double x, double y) { return double2{x, y}; }

static constexpr int warpSize = 32;

// =============================================================================================
// Runtime types and constants
// =============================================================================================
enum cudaError {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInitializationError = 3,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorInvalidDevicePointer = 17,
    cudaErrorInvalidMemcpyDirection = 21,
    cudaErrorInsufficientDriver = 35,
    cudaErrorInvalidDeviceFunction = 98,
    cudaErrorNoDevice = 100,
    cudaErrorInvalidDevice = 101,
    cudaErrorInvalidResourceHandle = 400,
    cudaErrorIllegalState = 401,
    cudaErrorNotReady = 600,
    cudaErrorIllegalAddress = 700,
    cudaErrorLaunchOutOfResources = 701,
    cudaErrorLaunchFailure = 719,
    cudaErrorNotSupported = 801,
    cudaErrorStreamCaptureUnsupported = 900,
    cudaErrorStreamCaptureInvalidated = 901,
    cudaErrorStreamCaptureMerge = 902,
    cudaErrorStreamCaptureUnmatched = 903,
    cudaErrorStreamCaptureUnjoined = 904,
    cudaErrorStreamCaptureIsolation = 905,
    cudaErrorStreamCaptureImplicit = 906,
    cudaErrorCapturedEvent = 907,
    cudaErrorStreamCaptureWrongThread = 908,
    cudaErrorUnknown = 999
};
typedef enum cudaError cudaError_t;

enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4
};
enum cudaStreamCaptureMode {
    cudaStreamCaptureModeGlobal = 0,
    cudaStreamCaptureModeThreadLocal = 1,
    cudaStreamCaptureModeRelaxed = 2
};
enum cudaStreamCaptureStatus {
    cudaStreamCaptureStatusNone = 0,
    cudaStreamCaptureStatusActive = 1,
    cudaStreamCaptureStatusInvalidated = 2
};
enum cudaDeviceAttr {
    cudaDevAttrMaxThreadsPerBlock = 1,
    cudaDevAttrMaxBlockDimX = 2,
    cudaDevAttrMaxBlockDimY = 3,
    cudaDevAttrMaxBlockDimZ = 4,
    cudaDevAttrMaxGridDimX = 5,
    cudaDevAttrMaxGridDimY = 6,
    cudaDevAttrMaxGridDimZ = 7,
    cudaDevAttrMaxSharedMemoryPerBlock = 8,
    cudaDevAttrTotalConstantMemory = 9,
    cudaDevAttrWarpSize = 10,
    cudaDevAttrMultiProcessorCount = 16,
    cudaDevAttrL2CacheSize = 38,
    cudaDevAttrMaxThreadsPerMultiProcessor = 39,
    cudaDevAttrComputeCapabilityMajor = 75,
    cudaDevAttrComputeCapabilityMinor = 76,
    cudaDevAttrMaxSharedMemoryPerBlockOptin = 97
};
enum cudaDataType_t {
    CUDA_R_32F = 0,
    CUDA_R_64F = 1,
    CUDA_R_16F = 2,
    CUDA_R_16BF = 14
};
typedef enum cudaDataType_t cudaDataType;

#define CUDART_VERSION 12080
#define cudaStreamDefault 0x00
#define cudaStreamNonBlocking 0x01
#define cudaEventDefault 0x00
#define cudaEventBlockingSync 0x01
#define cudaEventDisableTiming 0x02
#define cudaHostAllocDefault 0x00
#define cudaHostRegisterDefault 0x00

struct cudaDeviceProp {
    char name[256];
    size_t totalGlobalMem;
    size_t sharedMemPerBlock;
    int regsPerBlock;
    int warpSize;
    size_t memPitch;
    int maxThreadsPerBlock;
    int maxThreadsDim[3];
    int maxGridSize[3];
    int clockRate;
    size_t totalConstMem;
    int major;
    int minor;
    size_t textureAlignment;
    int multiProcessorCount;
    int integrated;
    int canMapHostMemory;
    int concurrentKernels;
    int pciBusID;
    int pciDeviceID;
    int pciDomainID;
    int asyncEngineCount;
    int unifiedAddressing;
    int memoryClockRate;
    int memoryBusWidth;
    int l2CacheSize;
    int maxThreadsPerMultiProcessor;
    size_t sharedMemPerMultiprocessor;
    int regsPerMultiprocessor;
    int managedMemory;
    int isMultiGpuBoard;
    size_t sharedMemPerBlockOptin;
    int computeMode;
};

namespace simt {
struct stream_t;
struct graph_t;
struct graph_exec_t;
struct event_t;
struct graph_node_t;
struct blas_t;
}
typedef simt::stream_t *cudaStream_t;
typedef simt::graph_t *cudaGraph_t;
typedef simt::graph_exec_t *cudaGraphExec_t;
typedef simt::graph_node_t *cudaGraphNode_t;
typedef simt::event_t *cudaEvent_t;
typedef void (*cudaHostFn_t)(void *userData);
#define cudaStreamLegacy ((cudaStream_t)0x1)
#define cudaStreamPerThread ((cudaStream_t)0x2)

// cuBLAS
enum cublasStatus_t {
    CUBLAS_STATUS_SUCCESS = 0,
    CUBLAS_STATUS_NOT_INITIALIZED = 1,
    CUBLAS_STATUS_ALLOC_FAILED = 3,
    CUBLAS_STATUS_INVALID_VALUE = 7,
    CUBLAS_STATUS_ARCH_MISMATCH = 8,
    CUBLAS_STATUS_MAPPING_ERROR = 11,
    CUBLAS_STATUS_EXECUTION_FAILED = 13,
    CUBLAS_STATUS_INTERNAL_ERROR = 14,
    CUBLAS_STATUS_NOT_SUPPORTED = 15,
    CUBLAS_STATUS_LICENSE_ERROR = 16
};
enum cublasOperation_t { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1, CUBLAS_OP_C = 2 };
enum cublasComputeType_t {
    CUBLAS_COMPUTE_16F = 64,
    CUBLAS_COMPUTE_32F = 68,
    CUBLAS_COMPUTE_32F_PEDANTIC = 69,
    CUBLAS_COMPUTE_32F_FAST_16F = 74,
    CUBLAS_COMPUTE_32F_FAST_16BF = 75,
    CUBLAS_COMPUTE_32F_FAST_TF32 = 77
};
enum cublasGemmAlgo_t { CUBLAS_GEMM_DEFAULT = -1, CUBLAS_GEMM_DEFAULT_TENSOR_OP = 99 };
enum cublasMath_t { CUBLAS_DEFAULT_MATH = 0, CUBLAS_TENSOR_OP_MATH = 1, CUBLAS_PEDANTIC_MATH = 2,
                    CUBLAS_TF32_TENSOR_OP_MATH = 3 };
enum cublasPointerMode_t { CUBLAS_POINTER_MODE_HOST = 0, CUBLAS_POINTER_MODE_DEVICE = 1 };
typedef simt::blas_t *cublasHandle_t;

// =============================================================================================
// Numbers: half and bfloat16, bit casts, math intrinsics (host semantics)
// =============================================================================================
namespace simt {
inline uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
inline float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

// IEEE binary16 -> float, exact (NaN payloads kept).
inline float half_to_float(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0x1fu) return u2f(sign | 0x7f800000u | (m << 13));
    if (e != 0) return u2f(sign | ((e + 112u) << 23) | (m << 13));
    const float sub = (float)m * 0x1p-24f; // subnormal (or zero): m units of 2^-24, exact
    return sign ? -sub : sub;
}
// float -> IEEE binary16, round to nearest even; overflow to inf, NaN stays NaN (quiet).
inline uint16_t float_to_half(float f) {
    const uint32_t x = f2u(f), sign = (x >> 16) & 0x8000u, a = x & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); // >= 65520 rounds to inf (and inf)
    if (a < 0x38800000u) {                                   // below 2^-14: subnormal half or zero
        const double units = (double)u2f(a) * 16777216.0;    // in units of 2^-24, exact
        double q = std::floor(units);
        const double rest = units - q;
        if (rest > 0.5 || (rest == 0.5 && std::fmod(q, 2.0) != 0.0)) q += 1.0;
        return (uint16_t)(sign | (uint32_t)q); // q == 1024 is the smallest normal, correctly
    }
    const uint32_t r = a - 0x38000000u; // rebias the exponent (127 -> 15)
    return (uint16_t)(sign | ((r + 0xfffu + ((r >> 13) & 1u)) >> 13));
}
inline float bf16_to_float(uint16_t b) { return u2f((uint32_t)b << 16); }
inline uint16_t float_to_bf16(float f) {
    const uint32_t x = f2u(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u);
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}
} // namespace simt

struct __half { unsigned short __x; };
struct __nv_bfloat16 { unsigned short __x; };
typedef __half half;
typedef __nv_bfloat16 nv_bfloat16;
inline __half __float2half(float f) { __half h; h.__x = simt::float_to_half(f); return h; }
inline __half __float2half_rn(float f) { return __float2half(f); }
inline float __half2float(__half h) { return simt::half_to_float(h.__x); }
inline unsigned short __half_as_ushort(__half h) { return h.__x; }
inline __half __ushort_as_half(unsigned short u) { __half h; h.__x = u; return h; }
inline __nv_bfloat16 __float2bfloat16(float f) { __nv_bfloat16 b; b.__x = simt::float_to_bf16(f); return b; }
inline __nv_bfloat16 __float2bfloat16_rn(float f) { return __float2bfloat16(f); }
inline float __bfloat162float(__nv_bfloat16 b) { return simt::bf16_to_float(b.__x); }

inline float __uint_as_float(unsigned int u) { return simt::u2f(u); }
inline unsigned int __float_as_uint(float f) { return simt::f2u(f); }
inline float __int_as_float(int i) { return simt::u2f((uint32_t)i); }
inline int __float_as_int(float f) { return (int)simt::f2u(f); }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline float __frcp_rn(float a) { return 1.0f / a; }
inline float __fsqrt_rn(float a) { return sqrtf(a); }
inline float __frsqrt_rn(float a) { return 1.0f / sqrtf(a); }
inline float __fdividef(float a, float b) { return a / b; }
inline float rsqrtf(float a) { return 1.0f / sqrtf(a); }
inline float __saturatef(float a) { return a < 0.0f ? 0.0f : a > 1.0f ? 1.0f : a; }
inline int __float2int_rn(float a) { return (int)std::nearbyint(a); }
inline int __float2int_rz(float a) { return (int)a; }
inline int __clz(int v) { return v ? __builtin_clz((unsigned)v) : 32; }
inline int __popc(unsigned int v) { return __builtin_popcount(v); }
inline int __ffs(int v) { return __builtin_ffs(v); }
inline unsigned int __brev(unsigned int v) {
    unsigned int r = 0;
    for (int i = 0; i < 32; i++) r |= ((v >> i) & 1u) << (31 - i);
    return r;
}
template <class T> inline T __ldg(const T *p) { return *p; }
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_block() { std::atomic_signal_fence(std::memory_order_seq_cst); }
// glibc declares __expf, __logf, ... itself (without defining them): macros, after <math.h>
namespace simt {
inline float fast_expf(float x) { return expf(x); }
inline float fast_logf(float x) { return logf(x); }
inline float fast_powf(float x, float y) { return powf(x, y); }
inline float fast_sinf(float x) { return sinf(x); }
inline float fast_cosf(float x) { return cosf(x); }
} // namespace simt
#define __expf(x) ::simt::fast_expf(x)
#define __logf(x) ::simt::fast_logf(x)
#define __powf(x, y) ::simt::fast_powf((x), (y))
#define __sinf(x) ::simt::fast_sinf(x)
#define __cosf(x) ::simt::fast_cosf(x)

// Atomics: host atomics (blocks of one launch never run at once, host threads may).
template <class T> inline T simt_atomic_add_(T *p, T v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
inline int atomicAdd(int *p, int v) { return simt_atomic_add_(p, v); }
inline unsigned int atomicAdd(unsigned int *p, unsigned int v) { return simt_atomic_add_(p, v); }
inline unsigned long long atomicAdd(unsigned long long *p, unsigned long long v) { return simt_atomic_add_(p, v); }
inline float atomicAdd(float *p, float v) {
    float old;
    memcpy(&old, p, 4);
    for (;;) {
        const float nv = old + v;
        uint32_t o = simt::f2u(old), n = simt::f2u(nv);
        if (__atomic_compare_exchange_n(reinterpret_cast<uint32_t *>(p), &o, n, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
            return old;
        old = simt::u2f(o);
    }
}
inline int atomicSub(int *p, int v) { return __atomic_fetch_sub(p, v, __ATOMIC_SEQ_CST); }
inline unsigned int atomicSub(unsigned int *p, unsigned int v) { return __atomic_fetch_sub(p, v, __ATOMIC_SEQ_CST); }
inline int atomicExch(int *p, int v) { return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST); }
inline unsigned int atomicExch(unsigned int *p, unsigned int v) { return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST); }
inline int atomicCAS(int *p, int cmp, int v) {
    __atomic_compare_exchange_n(p, &cmp, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    return cmp;
}
inline unsigned int atomicCAS(unsigned int *p, unsigned int cmp, unsigned int v) {
    __atomic_compare_exchange_n(p, &cmp, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    return cmp;
}
inline unsigned long long atomicCAS(unsigned long long *p, unsigned long long cmp, unsigned long long v) {
    __atomic_compare_exchange_n(p, &cmp, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    return cmp;
}
template <class T> inline T simt_atomic_max_(T *p, T v) {
    T old = __atomic_load_n(p, __ATOMIC_SEQ_CST);
    while (old < v && !__atomic_compare_exchange_n(p, &old, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
    }
    return old;
}
template <class T> inline T simt_atomic_min_(T *p, T v) {
    T old = __atomic_load_n(p, __ATOMIC_SEQ_CST);
    while (old > v && !__atomic_compare_exchange_n(p, &old, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
    }
    return old;
}
inline int atomicMax(int *p, int v) { return simt_atomic_max_(p, v); }
inline unsigned int atomicMax(unsigned int *p, unsigned int v) { return simt_atomic_max_(p, v); }
inline int atomicMin(int *p, int v) { return simt_atomic_min_(p, v); }
inline unsigned int atomicMin(unsigned int *p, unsigned int v) { return simt_atomic_min_(p, v); }
inline int atomicOr(int *p, int v) { return __atomic_fetch_or(p, v, __ATOMIC_SEQ_CST); }
inline unsigned int atomicOr(unsigned int *p, unsigned int v) { return __atomic_fetch_or(p, v, __ATOMIC_SEQ_CST); }
inline int atomicAnd(int *p, int v) { return __atomic_fetch_and(p, v, __ATOMIC_SEQ_CST); }
inline unsigned int atomicAnd(unsigned int *p, unsigned int v) { return __atomic_fetch_and(p, v, __ATOMIC_SEQ_CST); }

// =============================================================================================
// Context switch
// =============================================================================================
#ifndef QMC_SIMT_USE_UCONTEXT
// qmc_simt_swap_(save, to): pushes the callee-saved registers, MXCSR and the x87 control word
// on the current stack, stores the stack pointer in *save, switches to `to` and pops the same
// from there. qmc_simt_tramp_: where a fresh stack "returns" to: calls r12(r13). Both symbols
// are local to each object that includes this header.
extern "C" void qmc_simt_swap_(void **save, void *to);
extern "C" void qmc_simt_tramp_(void);
asm(R"SIMTASM(
    .pushsection .text
    .p2align 4
    .type qmc_simt_swap_, @function
qmc_simt_swap_:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size qmc_simt_swap_, .-qmc_simt_swap_
    .p2align 4
    .type qmc_simt_tramp_, @function
qmc_simt_tramp_:
    .cfi_startproc
    .cfi_undefined rip
    movq %r13, %rdi
    call *%r12
    ud2
    .cfi_endproc
    .size qmc_simt_tramp_, .-qmc_simt_tramp_
    .popsection
)SIMTASM");
#endif

namespace simt {

#ifndef QMC_SIMT_USE_UCONTEXT
struct sw_t { void *sp; };
inline void sw_swap(sw_t *from, sw_t *to) { qmc_simt_swap_(&from->sp, to->sp); }
inline const char *switch_impl() { return "x86-64 assembly"; }
#else
struct sw_t { ucontext_t uc; };
inline void sw_swap(sw_t *from, sw_t *to) { swapcontext(&from->uc, &to->uc); }
inline const char *switch_impl() { return "ucontext"; }
#endif

// =============================================================================================
// Small helpers: environment, messages, per-thread last error
// =============================================================================================
inline const char *env(const char *name) {
    const char *v = getenv(name);
    return v && *v ? v : nullptr;
}
inline long long env_ll(const char *name, long long def) {
    const char *v = env(name);
    if (!v) return def;
    char *end;
    long long r = strtoll(v, &end, 10);
    return *end ? def : r;
}
__attribute__((format(printf, 1, 2))) inline void msg(const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    fprintf(stderr, "simt: %s\n", buf);
}
[[noreturn]] __attribute__((format(printf, 1, 2))) inline void fatal(const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    fprintf(stderr, "simt: fatal: %s\n", buf);
    abort();
}

inline thread_local cudaError_t t_last_error = cudaSuccess;
inline cudaError_t err(cudaError_t e) {
    if (e != cudaSuccess) t_last_error = e;
    return e;
}

// =============================================================================================
// Device memory
// =============================================================================================
struct dev_alloc {
    char *map;       // the whole mapping: guard page, data pages, guard page
    size_t map_len;
    char *data;      // the data pages
    size_t data_len;
    size_t size;     // bytes asked for; the pointer is data + data_len - round_up(size, 256)
    int open;        // device operations (host threads) that have it readable and writable now
};
struct mem_state {
    std::mutex mu;
    std::map<uintptr_t, dev_alloc> dev; // by the pointer handed out
    std::map<uintptr_t, size_t> pinned;
    size_t used = 0, total = 0, page = 4096;
    bool guard = true, poison = true, handler = false;
    struct sigaction old_segv;
    mem_state() {
        long long mb = env_ll("QMC_SIMT_MEM_MB", 8192);
        if (mb < 1) mb = 1;
        total = (size_t)mb << 20;
        guard = env_ll("QMC_SIMT_GUARD", 1) != 0;
        poison = env_ll("QMC_SIMT_POISON", 1) != 0;
        long p = sysconf(_SC_PAGESIZE);
        if (p > 0) page = (size_t)p;
    }
};
inline mem_state &mem() {
    static mem_state m;
    return m;
}

// Counters, printed at exit with QMC_SIMT_STATS=1.
struct stats_t {
    std::atomic<uint64_t> launches{0}, blocks{0}, threads{0}, switches{0}, copies{0}, gemms{0}, grants{0},
        protects{0}, faults{0}, allocs{0};
};
inline void print_stats();
inline stats_t &stats() {
    static stats_t st;
    static const bool reg = env_ll("QMC_SIMT_STATS", 0) != 0 && atexit(print_stats) == 0;
    (void)reg;
    return st;
}
inline void print_stats() {
    stats_t &st = stats();
    fprintf(stderr, "simt: stats: %llu launches, %llu blocks, %llu threads, %llu context switches, %llu copies/sets, "
            "%llu GEMMs, %llu cudaMallocs; guard: %llu device operations, %llu allocations opened on a fault, %llu "
            "mprotect calls\n", (unsigned long long)st.launches, (unsigned long long)st.blocks,
            (unsigned long long)st.threads, (unsigned long long)st.switches, (unsigned long long)st.copies,
            (unsigned long long)st.gemms, (unsigned long long)st.allocs, (unsigned long long)st.grants,
            (unsigned long long)st.faults, (unsigned long long)st.protects);
}

// The guard. Device memory is PROT_NONE. A device operation (kernel, copy, set, GEMM) brackets
// itself with access_begin/access_end; inside it, the first touch of an allocation faults and
// the SIGSEGV handler makes that allocation readable and writable (a count per allocation: host
// threads running operations at once), and access_end closes what this operation opened. A
// fault anywhere else (host code touching device memory, a guard page, ...) goes to the
// previous handler, by default the death of the process by SIGSEGV. mprotect is slow (per page,
// and more so in a VM), so opening only what an operation touches is much cheaper than opening
// everything. Caveat: a program that installs its own SIGSEGV handler after the first
// cudaMalloc without chaining to the previous one disables the lazy opening (its kernels fault).
inline thread_local int t_dev_depth = 0;           // device operations in progress on this thread
inline thread_local uintptr_t *t_open = nullptr;   // allocations (keys) this thread's operation opened
inline thread_local size_t t_open_n = 0, t_open_cap = 0;
struct open_reaper {
    ~open_reaper() {
        free(t_open);
        t_open = nullptr;
        t_open_cap = t_open_n = 0;
    }
};
inline thread_local open_reaper t_open_reaper;

inline void segv_chain(int sig, siginfo_t *si, void *uc) {
    mem_state &m = mem();
    if ((m.old_segv.sa_flags & SA_SIGINFO) && m.old_segv.sa_sigaction) {
        m.old_segv.sa_sigaction(sig, si, uc);
    } else if (m.old_segv.sa_handler == SIG_DFL || m.old_segv.sa_handler == SIG_IGN) {
        signal(SIGSEGV, SIG_DFL); // returning re-executes the access, which now kills the process
    } else {
        m.old_segv.sa_handler(sig);
    }
}
inline void segv_handler(int sig, siginfo_t *si, void *uc) {
    if (si->si_code == SEGV_ACCERR && t_dev_depth > 0) {
        mem_state &m = mem();
        const uintptr_t a = (uintptr_t)si->si_addr;
        m.mu.lock(); // never held by this thread where device memory is touched
        auto it = m.dev.upper_bound(a);
        dev_alloc *d = nullptr;
        if (it != m.dev.end() && a >= (uintptr_t)it->second.data) d = &it->second; // before the pointer
        else if (it != m.dev.begin()) {
            --it;
            if (a < (uintptr_t)it->second.data + it->second.data_len) d = &it->second;
        }
        if (d && a >= (uintptr_t)d->data) {
            if (t_open_n >= t_open_cap) {
                m.mu.unlock();
                static const char text[] = "simt: fatal: too many allocations opened by one device operation\n";
                if (write(2, text, sizeof(text) - 1) < 0) abort();
                abort();
            }
            if (d->open++ == 0) mprotect(d->data, d->data_len, PROT_READ | PROT_WRITE);
            t_open[t_open_n++] = it->first;
            stats().faults++;
            m.mu.unlock();
            return; // the access is executed again
        }
        m.mu.unlock();
    }
    segv_chain(sig, si, uc);
}
inline void install_handler_locked() {
    mem_state &m = mem();
    if (m.handler) return;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = segv_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, &m.old_segv) != 0) fatal("cannot install the SIGSEGV handler of the device guard");
    m.handler = true;
}
inline void access_begin() {
    mem_state &m = mem();
    if (!m.guard || t_dev_depth++ > 0) return;
    stats().grants++;
    size_t need;
    {
        std::lock_guard<std::mutex> lock(m.mu);
        need = m.dev.size() + 64;
    }
    if (t_open_cap < need) { // grown here, never in the handler
        free(t_open);
        (void)&t_open_reaper; // frees the list at thread exit
        t_open_cap = need * 2;
        t_open = static_cast<uintptr_t *>(malloc(sizeof(uintptr_t) * t_open_cap));
        if (!t_open) fatal("out of memory");
    }
    t_open_n = 0;
}
inline void access_end() {
    mem_state &m = mem();
    if (!m.guard || --t_dev_depth > 0) return;
    if (!t_open_n) return;
    std::lock_guard<std::mutex> lock(m.mu);
    for (size_t i = 0; i < t_open_n; i++) {
        auto it = m.dev.find(t_open[i]);
        if (it != m.dev.end() && --it->second.open == 0) {
            mprotect(it->second.data, it->second.data_len, PROT_NONE);
            stats().protects += 2;
        }
    }
    t_open_n = 0;
}
struct dev_access {
    dev_access() { access_begin(); }
    ~dev_access() { access_end(); }
    dev_access(const dev_access &) = delete;
    dev_access &operator=(const dev_access &) = delete;
};

enum { PTR_HOST = 0, PTR_DEV = 1, PTR_DEV_BAD = 2 };
// What [p, p + n) is: host memory, inside one device allocation, or partly device memory
// (past an allocation's end, in its guard pages, ...). *base: the allocation (PTR_DEV).
inline int classify_locked(const void *p, size_t n, uintptr_t *base = nullptr) {
    mem_state &m = mem();
    const uintptr_t a = (uintptr_t)p;
    auto next = m.dev.upper_bound(a);
    if (next != m.dev.end() && a >= (uintptr_t)next->second.map) return PTR_DEV_BAD; // before its start
    if (next == m.dev.begin()) return PTR_HOST;
    auto it = std::prev(next);
    const dev_alloc &d = it->second;
    if (a >= it->first + d.size) return a < (uintptr_t)d.map + d.map_len ? PTR_DEV_BAD : PTR_HOST;
    if (n > it->first + d.size - a) return PTR_DEV_BAD;
    if (base) *base = it->first;
    return PTR_DEV;
}
inline int classify(const void *p, size_t n) {
    std::lock_guard<std::mutex> lock(mem().mu);
    return classify_locked(p, n);
}
inline bool is_device_ptr(const void *p) { return classify(p, 1) == PTR_DEV; }
inline size_t device_bytes_used() {
    std::lock_guard<std::mutex> lock(mem().mu);
    return mem().used;
}

// =============================================================================================
// The block scheduler (per host thread)
// =============================================================================================
enum { ST_RUN = 0, ST_BAR = 1, ST_WARP = 2, ST_DONE = 3 };
enum { OP_SHFL = 1, OP_BALLOT = 2, OP_ANY = 3, OP_ALL = 4, OP_SYNCWARP = 5 };
enum { ORDER_FORWARD = 0, ORDER_REVERSE = 1, ORDER_SHUFFLE = 2 };

struct lane_t {
    sw_t sw;
    uint3 tid;
    int state;
    int kind;         // warp operation
    int src;          // shuffle source lane, -1: the lane's own value
    int pred;         // block barrier predicate
    unsigned int mask;
    uint64_t val, res;
    const char *what; // the intrinsic it waits in
};

struct host_ctx {
    std::vector<lane_t> th;
    std::vector<int> runlist, perm;
    std::vector<unsigned char> dirty;
    std::vector<int> dirty_list;
    char *stacks = nullptr;
    size_t slot = 0, stack_bytes = 0, map_len = 0;
    int n_slots = 0;
    sw_t sched;
    int n = 0, live = 0, at_bar = 0, cur = 0, run_n = 0, cursor = 0, n_dirty = 0;
    int bar_count = 0, bar_and = 0, bar_or = 0;
    bool in_kernel = false, failed = false;
    char fail_msg[768];
    const std::function<void()> *body = nullptr;
    const char *kname = "";
    dim3 grid, blk;
    uint64_t switches = 0, launches = 0, rng = 0, seed = 1;
    int order = ORDER_FORWARD;
    uint32_t fp_mxcsr = 0x1f80, fp_cw = 0x037f;
    ~host_ctx() {
        if (stacks) munmap(stacks, map_len);
        stats().switches += switches;
    }
};
inline thread_local host_ctx *t_ctx = nullptr;
struct ctx_reaper {
    ~ctx_reaper() {
        delete t_ctx;
        t_ctx = nullptr;
    }
};
inline thread_local ctx_reaper t_reaper;
inline host_ctx *ctx() {
    if (!t_ctx) {
        t_ctx = new host_ctx();
        (void)&t_reaper; // constructs this thread's reaper, which frees the context at thread exit
    }
    return t_ctx;
}
inline uint64_t switch_count() { return t_ctx ? t_ctx->switches : 0; }

// the built-in variables
inline thread_local uint3 t_tid = {0, 0, 0};
inline thread_local uint3 t_bid = {0, 0, 0};
inline thread_local dim3 t_bdim(1, 1, 1);
inline thread_local dim3 t_gdim(1, 1, 1);

inline uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

inline void ensure_stacks(host_ctx *c, int n) {
    if (n <= c->n_slots) return;
    if (c->stacks) munmap(c->stacks, c->map_len);
    c->stacks = nullptr;
    const size_t page = mem().page;
    long long kb = env_ll("QMC_SIMT_STACK_KB", 64);
    if (kb < 16) kb = 16;
    c->stack_bytes = ((size_t)kb * 1024 + page - 1) / page * page;
    c->slot = c->stack_bytes + page; // a guard page below each stack
    int want = 64;
    while (want < n) want *= 2;
    c->map_len = c->slot * (size_t)want;
    void *p = mmap(nullptr, c->map_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) fatal("cannot map %d thread stacks of %zu bytes", want, c->stack_bytes);
    c->stacks = static_cast<char *>(p);
    for (int i = 0; i < want; i++)
        if (mprotect(c->stacks + c->slot * i + page, c->stack_bytes, PROT_READ | PROT_WRITE) != 0)
            fatal("cannot make a thread stack writable");
    c->n_slots = want;
    c->th.resize(want);
    c->runlist.resize(want);
    c->perm.resize(want);
    c->dirty.assign((want + 31) / 32, 0);
    c->dirty_list.resize((want + 31) / 32);
}

inline void lane_entry();

inline void init_lane_stack(host_ctx *c, int i) {
    char *base = c->stacks + c->slot * i + (c->slot - c->stack_bytes);
#ifndef QMC_SIMT_USE_UCONTEXT
    uint64_t *top = reinterpret_cast<uint64_t *>(base + c->stack_bytes);
    uint64_t *sp = top - 10; // see qmc_simt_swap_: fp words, r15 r14 r13 r12 rbx rbp, return address
    sp[0] = (uint64_t)c->fp_mxcsr | ((uint64_t)c->fp_cw << 32);
    sp[1] = 0;                                    // r15
    sp[2] = 0;                                    // r14
    sp[3] = 0;                                    // r13: argument (unused)
    sp[4] = (uint64_t)(uintptr_t)&lane_entry;     // r12: called by the trampoline
    sp[5] = 0;                                    // rbx
    sp[6] = 0;                                    // rbp
    sp[7] = (uint64_t)(uintptr_t)&qmc_simt_tramp_; // "return" address; the trampoline starts with rsp = top - 16
    sp[8] = 0;
    sp[9] = 0;
    c->th[i].sw.sp = sp;
#else
    ucontext_t *uc = &c->th[i].sw.uc;
    getcontext(uc);
    uc->uc_stack.ss_sp = base;
    uc->uc_stack.ss_size = c->stack_bytes;
    uc->uc_link = nullptr;
    makecontext(uc, &lane_entry, 0);
#endif
}

__attribute__((format(printf, 3, 0))) inline void vset_fail(host_ctx *c, int i, const char *fmt, va_list ap) {
    int k = 0;
    if (i >= 0)
        k = snprintf(c->fail_msg, sizeof(c->fail_msg), "block (%u,%u,%u) thread (%u,%u,%u) [warp %d lane %d]: ", t_bid.x,
                     t_bid.y, t_bid.z, c->th[i].tid.x, c->th[i].tid.y, c->th[i].tid.z, i >> 5, i & 31);
    else
        k = snprintf(c->fail_msg, sizeof(c->fail_msg), "block (%u,%u,%u): ", t_bid.x, t_bid.y, t_bid.z);
    if (k < 0) k = 0;
    if ((size_t)k < sizeof(c->fail_msg)) vsnprintf(c->fail_msg + k, sizeof(c->fail_msg) - k, fmt, ap);
    c->failed = true;
}
// from the scheduler
__attribute__((format(printf, 3, 4))) inline void sched_fail(host_ctx *c, int i, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vset_fail(c, i, fmt, ap);
    va_end(ap);
}
// from inside a CUDA thread: never returns (the block is abandoned)
[[noreturn]] __attribute__((format(printf, 3, 4))) inline void lane_fail(host_ctx *c, int i, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vset_fail(c, i, fmt, ap);
    va_end(ap);
    c->switches++;
    sw_swap(&c->th[i].sw, &c->sched);
    abort();
}

// The current CUDA thread has set its state (blocked or done): switch to the next thread of
// this round's list, or back to the scheduler after the last. Returns when resumed.
inline void lane_switch(host_ctx *c, lane_t &me) {
    sw_t *to;
    if (++c->cursor < c->run_n) {
        c->cur = c->runlist[c->cursor];
        to = &c->th[c->cur].sw;
    } else {
        to = &c->sched;
    }
    c->switches++;
    sw_swap(&me.sw, to);
    t_tid = me.tid; // resumed: whoever switched here set c->cur to this thread
}

inline void lane_entry() {
    host_ctx *c = t_ctx;
    lane_t &me = c->th[c->cur];
    t_tid = me.tid;
    (*c->body)();
    me.state = ST_DONE;
    c->live--;
    const int w = c->cur >> 5;
    if (!c->dirty[w]) {
        c->dirty[w] = 1;
        c->dirty_list[c->n_dirty++] = w;
    }
    lane_switch(c, me);
    fatal("an exited CUDA thread was resumed");
}

inline host_ctx *kernel_ctx(const char *what) {
    host_ctx *c = t_ctx;
    if (!c || !c->in_kernel) fatal("%s called outside a kernel", what);
    return c;
}

// A block barrier; kind 0 plain, 1 count, 2 and, 3 or.
inline int block_barrier(int kind, int pred, const char *what) {
    host_ctx *c = kernel_ctx(what);
    lane_t &me = c->th[c->cur];
    me.state = ST_BAR;
    me.pred = pred != 0;
    me.what = what;
    c->at_bar++;
    lane_switch(c, me);
    return kind == 1 ? c->bar_count : kind == 2 ? c->bar_and : kind == 3 ? c->bar_or : 0;
}

enum { SH_IDX = 0, SH_UP = 1, SH_DOWN = 2, SH_XOR = 3 };
// A warp operation. For shuffles, mode/param/width give the source lane (CUDA's rules: a source
// outside the lane's width-segment, or past it for up/down, means the lane's own value).
inline uint64_t warp_op(int kind, unsigned int mask, uint64_t val, int mode, int param, int width,
                        const char *what) {
    host_ctx *c = kernel_ctx(what);
    const int i = c->cur, lane = i & 31;
    lane_t &me = c->th[i];
    if (!((mask >> lane) & 1u)) lane_fail(c, i, "%s: the calling lane %d is not in its mask 0x%08x", what, lane, mask);
    int src = -1;
    if (kind == OP_SHFL) {
        if (width < 1 || width > 32 || (width & (width - 1)))
            lane_fail(c, i, "%s: width %d is not a power of two in 1..32", what, width);
        const int seg = lane & ~(width - 1), in = lane & (width - 1);
        switch (mode) {
        case SH_IDX: src = seg + (param & (width - 1)); break;
        case SH_UP: src = (param < 0 || in - param < 0) ? -1 : lane - param; break;
        case SH_DOWN: src = (param < 0 || in + param >= width) ? -1 : lane + param; break;
        default: {
            const int x = lane ^ (param & 31);
            src = x >= seg + width ? -1 : x;
            break;
        }
        }
        if (src == lane) src = -1;
    }
    me.state = ST_WARP;
    me.kind = kind;
    me.mask = mask;
    me.val = val;
    me.src = src;
    me.what = what;
    const int w = i >> 5;
    if (!c->dirty[w]) {
        c->dirty[w] = 1;
        c->dirty_list[c->n_dirty++] = w;
    }
    lane_switch(c, me);
    return me.res;
}

inline const char *kind_group_name(int kind) {
    return kind == OP_SHFL ? "a shuffle" : kind == OP_SYNCWARP ? "__syncwarp" : "a vote";
}

// Completes what can complete in warp w; returns whether any lane was released.
inline bool complete_warp(host_ctx *c, int w) {
    const int base = w * 32, nl = std::min(32, c->n - base);
    unsigned int waiting = 0, live = 0;
    for (int l = 0; l < nl; l++) {
        const int st = c->th[base + l].state;
        if (st != ST_DONE) live |= 1u << l;
        if (st == ST_WARP) waiting |= 1u << l;
    }
    bool released = false;
    unsigned int pending = waiting;
    while (pending) {
        const int l0 = __builtin_ctz(pending);
        const unsigned int M = c->th[base + l0].mask, grp = M & live;
        if (grp & ~waiting) { // a live lane of the mask has not arrived (yet)
            pending &= ~(1u << l0);
            continue;
        }
        const int kind = c->th[base + l0].kind;
        for (unsigned int g = grp; g; g &= g - 1) {
            const lane_t &L = c->th[base + __builtin_ctz(g)];
            if (L.mask != M) {
                sched_fail(c, base + __builtin_ctz(g), "%s with mask 0x%08x while lane %d of the same warp waits in %s "
                           "with mask 0x%08x: lanes of a warp at warp operations with different masks",
                           L.what, L.mask, l0, c->th[base + l0].what, M);
                return false;
            }
            if ((L.kind == OP_SHFL || kind == OP_SHFL || L.kind == OP_SYNCWARP || kind == OP_SYNCWARP) &&
                L.kind != kind) {
                sched_fail(c, base + __builtin_ctz(g), "%s while lane %d of the same warp waits in %s (%s and %s): lanes "
                           "of a warp at different warp operations", L.what, l0, c->th[base + l0].what,
                           kind_group_name(L.kind), kind_group_name(kind));
                return false;
            }
        }
        if (kind == OP_SHFL) {
            for (unsigned int g = grp; g; g &= g - 1) {
                const int l = __builtin_ctz(g);
                lane_t &L = c->th[base + l];
                if (L.src < 0) {
                    L.res = L.val;
                    continue;
                }
                const int s = L.src;
                if (s >= nl) {
                    sched_fail(c, base + l, "%s: source lane %d does not exist (the warp has %d lanes)", L.what, s, nl);
                    return false;
                }
                if (c->th[base + s].state == ST_DONE) {
                    sched_fail(c, base + l, "%s: source lane %d has exited", L.what, s);
                    return false;
                }
                if (!((M >> s) & 1u)) {
                    sched_fail(c, base + l, "%s: source lane %d is not in the mask 0x%08x", L.what, s, M);
                    return false;
                }
                L.res = c->th[base + s].val;
            }
        } else if (kind != OP_SYNCWARP) {
            unsigned int ballot = 0;
            for (unsigned int g = grp; g; g &= g - 1) {
                const int l = __builtin_ctz(g);
                if (c->th[base + l].val) ballot |= 1u << l;
            }
            for (unsigned int g = grp; g; g &= g - 1) {
                lane_t &L = c->th[base + __builtin_ctz(g)];
                L.res = L.kind == OP_BALLOT ? ballot : L.kind == OP_ANY ? (ballot != 0) : (ballot == grp);
            }
        }
        for (unsigned int g = grp; g; g &= g - 1) c->th[base + __builtin_ctz(g)].state = ST_RUN;
        pending &= ~grp;
        waiting &= ~grp; // released: no longer at a warp operation for the groups still pending
        released = true;
    }
    return released;
}

inline void report_deadlock(host_ctx *c) {
    for (int i = 0; i < c->n; i++) {
        const lane_t &L = c->th[i];
        if (L.state != ST_WARP) continue;
        const int base = i & ~31, nl = std::min(32, c->n - base);
        for (int l = 0; l < nl; l++) {
            const lane_t &O = c->th[base + l];
            if (!((L.mask >> l) & 1u) || O.state == ST_DONE || O.state == ST_WARP) continue;
            sched_fail(c, i, "deadlock: waits in %s (mask 0x%08x) for lane %d, thread (%u,%u,%u), which waits in %s: "
                       "lanes of a warp at a block barrier and a warp barrier can never meet (%d of %d threads at "
                       "block barriers, %d exited)", L.what, L.mask, l, O.tid.x, O.tid.y, O.tid.z, O.what, c->at_bar,
                       c->n, c->n - c->live);
            return;
        }
        sched_fail(c, i, "deadlock: waits in %s (mask 0x%08x), which cannot complete", L.what, L.mask);
        return;
    }
    sched_fail(c, -1, "deadlock: no thread can run and no barrier can complete (%d threads at block barriers, %d "
               "live)", c->at_bar, c->live);
}

inline void fill_runlist(host_ctx *c) {
    const int n = c->n;
    int *perm = c->perm.data();
    if (c->order == ORDER_SHUFFLE) { // a fresh order every round
        for (int i = 0; i < n; i++) perm[i] = i;
        for (int i = n - 1; i > 0; i--) {
            const int j = (int)(splitmix(&c->rng) % (uint64_t)(i + 1));
            std::swap(perm[i], perm[j]);
        }
    }
    int k = 0;
    for (int i = 0; i < n; i++) {
        const int t = perm[i];
        if (c->th[t].state == ST_RUN) c->runlist[k++] = t;
    }
    c->run_n = k;
}

// Runs one block (t_bid set); false on a launch error (c->fail_msg).
inline bool run_block(host_ctx *c, uint64_t block_lin) {
    const dim3 b = c->blk;
    const int n = (int)(b.x * b.y * b.z);
    c->n = n;
    c->live = n;
    c->at_bar = 0;
    c->failed = false;
    c->n_dirty = 0;
    memset(c->dirty.data(), 0, (size_t)(n + 31) / 32);
    for (int i = 0; i < n; i++) {
        lane_t &L = c->th[i];
        L.tid.x = (unsigned)i % b.x;
        L.tid.y = ((unsigned)i / b.x) % b.y;
        L.tid.z = (unsigned)i / (b.x * b.y);
        L.state = ST_RUN;
        L.what = "";
        init_lane_stack(c, i);
    }
    if (c->order == ORDER_SHUFFLE) {
        c->rng = c->seed * 0x2545f4914f6cdd1dull ^ (c->launches << 32) ^ block_lin;
        splitmix(&c->rng);
    } else {
        for (int i = 0; i < n; i++) c->perm[i] = c->order == ORDER_REVERSE ? n - 1 - i : i;
    }
    fill_runlist(c);
    for (;;) {
        if (c->run_n > 0) {
            c->cursor = 0;
            c->cur = c->runlist[0];
            c->switches++;
            sw_swap(&c->sched, &c->th[c->cur].sw);
        }
        if (c->failed) return false;
        if (c->live == 0) return true;
        bool released = false;
        for (int k = 0; k < c->n_dirty; k++) {
            const int w = c->dirty_list[k];
            c->dirty[w] = 0;
            if (!c->failed && complete_warp(c, w)) released = true;
        }
        c->n_dirty = 0;
        if (c->failed) return false;
        if (!released && c->at_bar == c->live) {
            int cnt = 0, all = 1, any = 0;
            for (int i = 0; i < n; i++) {
                lane_t &L = c->th[i];
                if (L.state != ST_BAR) continue;
                cnt += L.pred;
                all &= L.pred;
                any |= L.pred;
                L.state = ST_RUN;
            }
            c->bar_count = cnt;
            c->bar_and = all;
            c->bar_or = any;
            c->at_bar = 0;
            released = true;
        }
        if (!released) {
            report_deadlock(c);
            return false;
        }
        fill_runlist(c);
    }
}

inline int read_order() {
    const char *o = env("QMC_SIMT_ORDER");
    if (!o || !strcmp(o, "forward")) return ORDER_FORWARD;
    if (!strcmp(o, "reverse")) return ORDER_REVERSE;
    if (!strcmp(o, "shuffle")) return ORDER_SHUFFLE;
    static std::atomic<bool> warned{false};
    if (!warned.exchange(true)) msg("QMC_SIMT_ORDER='%s': expected forward, reverse or shuffle; using forward", o);
    return ORDER_FORWARD;
}

inline bool valid_config(dim3 g, dim3 b) {
    const uint64_t threads = (uint64_t)b.x * b.y * b.z;
    return threads >= 1 && threads <= 1024 && b.x <= 1024 && b.y <= 1024 && b.z <= 64 && g.x >= 1 &&
           g.x <= 0x7fffffffu && g.y >= 1 && g.y <= 65535 && g.z >= 1 && g.z <= 65535;
}

// Runs a kernel now, on this host thread.
inline cudaError_t run_kernel(const std::function<void()> &body, dim3 g, dim3 b, const char *name) {
    host_ctx *c = ctx();
    if (c->in_kernel) fatal("kernel %s launched from inside kernel %s (no dynamic parallelism)", name, c->kname);
    static const bool trace = env_ll("QMC_SIMT_TRACE", 0) != 0;
    if (trace) msg("launch %s<<<(%u,%u,%u), (%u,%u,%u)>>>", name, g.x, g.y, g.z, b.x, b.y, b.z);
    const int n = (int)(b.x * b.y * b.z);
    ensure_stacks(c, n);
    c->order = read_order();
    c->seed = (uint64_t)env_ll("QMC_SIMT_SEED", 1);
    c->launches++;
    stats().launches++;
    stats().blocks += (uint64_t)g.x * g.y * g.z;
    stats().threads += (uint64_t)g.x * g.y * g.z * (uint64_t)n;
#ifndef QMC_SIMT_USE_UCONTEXT
    {
        uint32_t mx;
        uint16_t cw;
        asm volatile("stmxcsr %0" : "=m"(mx));
        asm volatile("fnstcw %0" : "=m"(cw));
        c->fp_mxcsr = mx;
        c->fp_cw = cw;
    }
#endif
    dev_access access;
    const uint3 saved_tid = t_tid, saved_bid = t_bid;
    const dim3 saved_bdim = t_bdim, saved_gdim = t_gdim;
    c->in_kernel = true;
    c->body = &body;
    c->kname = name;
    c->grid = g;
    c->blk = b;
    t_bdim = b;
    t_gdim = g;
    bool ok = true;
    uint64_t lin = 0;
    for (unsigned z = 0; z < g.z && ok; z++)
        for (unsigned y = 0; y < g.y && ok; y++)
            for (unsigned x = 0; x < g.x && ok; x++, lin++) {
                t_bid = uint3{x, y, z};
                ok = run_block(c, lin);
            }
    c->in_kernel = false;
    c->body = nullptr;
    t_tid = saved_tid;
    t_bid = saved_bid;
    t_bdim = saved_bdim;
    t_gdim = saved_gdim;
    if (!ok) {
        msg("launch failure: kernel %s<<<(%u,%u,%u), (%u,%u,%u)>>>: %s", name, g.x, g.y, g.z, b.x, b.y, b.z,
            c->fail_msg);
        return cudaErrorLaunchFailure;
    }
    return cudaSuccess;
}

// =============================================================================================
// Streams, capture, graphs, events
// =============================================================================================
typedef std::function<cudaError_t()> node_fn;
struct graph_t {
    std::vector<node_fn> nodes;
};
struct graph_exec_t {
    std::vector<node_fn> nodes;
};
struct stream_t {
    unsigned int flags = 0;
    bool capturing = false, invalidated = false;
    int mode = 0;
    std::thread::id owner;
    graph_t *graph = nullptr;
    cudaError_t pending = cudaSuccess; // a failed operation's error, for the next synchronization
};
struct event_t {
    double t = 0.0;
    bool recorded = false;
};
struct rt_state {
    std::mutex mu;
    std::set<stream_t *> streams;
    std::vector<stream_t *> captures; // capturing streams
    std::atomic<int> n_captures{0};
    stream_t legacy; // stream 0, cudaStreamLegacy, cudaStreamPerThread
};
inline rt_state &rt() {
    static rt_state r;
    return r;
}
inline thread_local int t_capture_mode = cudaStreamCaptureModeGlobal; // this thread's interaction mode

inline bool nodev() { return env_ll("QMC_SIMT_NODEV", 0) != 0 || env_ll("QMC_SIMT_NODRIVER", 0) != 0; }

inline void no_api_in_kernel(const char *api) {
    if (t_ctx && t_ctx->in_kernel) fatal("%s called inside kernel %s (device code cannot call the host API)", api,
                                         t_ctx->kname);
}

// The stream behind a handle; nullptr (and *e) for an unknown one. Work on the legacy stream
// while a blocking stream captures invalidates that capture (an implicit dependency).
inline stream_t *get_stream(cudaStream_t s, cudaError_t *e) {
    rt_state &r = rt();
    *e = cudaSuccess;
    if (s == nullptr || s == cudaStreamLegacy || s == cudaStreamPerThread) {
        if (r.n_captures.load() && s != cudaStreamPerThread) {
            std::lock_guard<std::mutex> lock(r.mu);
            for (stream_t *c : r.captures)
                if (!(c->flags & cudaStreamNonBlocking)) {
                    c->invalidated = true;
                    *e = cudaErrorStreamCaptureImplicit;
                }
            if (*e) return nullptr;
        }
        return &r.legacy;
    }
    std::lock_guard<std::mutex> lock(r.mu);
    if (!r.streams.count(s)) {
        *e = cudaErrorInvalidResourceHandle;
        return nullptr;
    }
    return s;
}

// "Potentially unsafe" calls (allocation, synchronous copies, device synchronization) during a
// capture: prohibited, as CUDA does, when this thread's mode is Global and any capture is
// Global or this thread's own non-relaxed capture, or when its mode is ThreadLocal and it owns a
// non-relaxed capture. The offending captures are invalidated.
inline cudaError_t unsafe_call(const char *api) {
    rt_state &r = rt();
    if (!r.n_captures.load() || t_capture_mode == cudaStreamCaptureModeRelaxed) return cudaSuccess;
    std::lock_guard<std::mutex> lock(r.mu);
    const std::thread::id me = std::this_thread::get_id();
    bool bad = false;
    for (stream_t *c : r.captures) {
        const bool mine = c->owner == me && c->mode != cudaStreamCaptureModeRelaxed;
        const bool global = c->mode == cudaStreamCaptureModeGlobal && t_capture_mode == cudaStreamCaptureModeGlobal;
        if (mine || global) {
            c->invalidated = true;
            bad = true;
        }
    }
    if (bad) msg("%s during stream capture: not permitted (the capture is invalidated)", api);
    return bad ? cudaErrorStreamCaptureUnsupported : cudaSuccess;
}

// Records node on a capturing stream: true when the stream captures (*e: the result).
inline bool capture(stream_t *st, node_fn &&node, cudaError_t *e) {
    if (!st->capturing) return false;
    if (st->invalidated) {
        *e = cudaErrorStreamCaptureInvalidated;
        return true;
    }
    st->graph->nodes.push_back(std::move(node));
    *e = cudaSuccess;
    return true;
}

// The result of a device operation executed now: failures go to the stream's pending error
// (returned by its next synchronization) and to the last error.
inline cudaError_t executed(stream_t *st, cudaError_t e) {
    if (e != cudaSuccess && st) st->pending = e;
    return err(e);
}

inline double now_ms() {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// =============================================================================================
// Copies
// =============================================================================================
inline const char *kind_name(cudaMemcpyKind k) {
    switch (k) {
    case cudaMemcpyHostToHost: return "HostToHost";
    case cudaMemcpyHostToDevice: return "HostToDevice";
    case cudaMemcpyDeviceToHost: return "DeviceToHost";
    case cudaMemcpyDeviceToDevice: return "DeviceToDevice";
    case cudaMemcpyDefault: return "Default";
    }
    return "?";
}
// Checks the pointers of a copy against its direction; *dev: whether device memory is involved.
inline cudaError_t check_copy(const char *api, void *dst, const void *src, size_t n, cudaMemcpyKind kind, bool *dev) {
    if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault) {
        msg("%s: invalid direction %d", api, (int)kind);
        return cudaErrorInvalidMemcpyDirection;
    }
    int dk, sk;
    {
        std::lock_guard<std::mutex> lock(mem().mu);
        dk = classify_locked(dst, n);
        sk = classify_locked(src, n);
    }
    const char *kn = kind_name(kind);
    if (dk == PTR_DEV_BAD || sk == PTR_DEV_BAD) {
        msg("%s(%s, %zu bytes): the %s %p lies partly outside its device allocation", api, kn, n,
            dk == PTR_DEV_BAD ? "destination" : "source", dk == PTR_DEV_BAD ? dst : src);
        return cudaErrorInvalidValue;
    }
    const int want_d = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice ? PTR_DEV
                       : kind == cudaMemcpyDefault ? dk : PTR_HOST;
    const int want_s = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice ? PTR_DEV
                       : kind == cudaMemcpyDefault ? sk : PTR_HOST;
    if (dk != want_d || sk != want_s) {
        const bool bad_d = dk != want_d;
        msg("%s(%s, %zu bytes): the %s %p is %s, expected %s", api, kn, n, bad_d ? "destination" : "source",
            bad_d ? dst : src, (bad_d ? dk : sk) == PTR_DEV ? "device memory" : "not device memory (of cudaMalloc)",
            (bad_d ? want_d : want_s) == PTR_DEV ? "device memory" : "host memory");
        return cudaErrorInvalidValue;
    }
    *dev = dk == PTR_DEV || sk == PTR_DEV;
    return cudaSuccess;
}
inline cudaError_t do_copy(const char *api, void *dst, const void *src, size_t n, cudaMemcpyKind kind) {
    if (n == 0) return cudaSuccess;
    stats().copies++;
    bool dev = false;
    const cudaError_t e = check_copy(api, dst, src, n, kind, &dev);
    if (e != cudaSuccess) return e;
    if (dev) {
        dev_access a;
        memmove(dst, src, n);
    } else {
        memmove(dst, src, n);
    }
    return cudaSuccess;
}
inline cudaError_t check_set(const char *api, void *dst, size_t n) {
    if (n == 0) return cudaSuccess;
    const int k = classify(dst, n);
    if (k != PTR_DEV) {
        msg("%s(%p, %zu bytes): %s", api, dst, n,
            k == PTR_HOST ? "not device memory (of cudaMalloc)" : "lies partly outside its device allocation");
        return cudaErrorInvalidValue;
    }
    return cudaSuccess;
}
inline cudaError_t do_set(const char *api, void *dst, int value, size_t n) {
    if (n == 0) return cudaSuccess;
    stats().copies++;
    const cudaError_t e = check_set(api, dst, n);
    if (e != cudaSuccess) return e;
    dev_access a;
    memset(dst, value, n);
    return cudaSuccess;
}

// =============================================================================================
// Kernel launches: QMC_LAUNCH(kernel, grid, block, stream)(args...)
// =============================================================================================
inline void launch(std::function<void()> &&body, dim3 g, dim3 b, cudaStream_t s, const char *name) {
    no_api_in_kernel("a kernel launch");
    if (!valid_config(g, b)) {
        msg("kernel %s<<<(%u,%u,%u), (%u,%u,%u)>>>: invalid configuration (threads per block 1..1024, block.z <= 64, "
            "grid.x 1..2^31-1, grid.y and grid.z 1..65535)", name, g.x, g.y, g.z, b.x, b.y, b.z);
        err(cudaErrorInvalidConfiguration);
        return;
    }
    cudaError_t e;
    stream_t *st = get_stream(s, &e);
    if (!st) {
        err(e);
        return;
    }
    if (st->capturing) {
        std::function<void()> f = std::move(body);
        if (capture(st, [f, g, b, name]() { return run_kernel(f, g, b, name); }, &e)) err(e);
        return;
    }
    executed(st, run_kernel(body, g, b, name));
}

template <class... P> struct launcher {
    void (*k)(P...);
    dim3 g, b;
    cudaStream_t s;
    const char *name;
    // The kernel's own parameter types: arguments convert as in a call (NULL, 0, int -> size_t).
    void operator()(P... args) const {
        static_assert(!(std::is_reference<P>::value || ...), "kernel parameters cannot be references");
        void (*kf)(P...) = k;
        launch(std::function<void()>([kf, t = std::tuple<P...>(args...)]() { std::apply(kf, t); }), g, b, s, name);
    }
};
template <class... P>
inline launcher<P...> make_launcher(void (*k)(P...), dim3 g, dim3 b, cudaStream_t s, const char *name) {
    return launcher<P...>{k, g, b, s, name};
}

// =============================================================================================
// cuBLAS
// =============================================================================================
struct blas_t {
    cudaStream_t stream = nullptr;
    int math = 0, ptr_mode = 0;
};
inline size_t type_size(cudaDataType t) { return t == CUDA_R_32F ? 4 : t == CUDA_R_64F ? 8 : 2; }
inline float load_val(const void *p, cudaDataType t, size_t i) {
    switch (t) {
    case CUDA_R_32F: return static_cast<const float *>(p)[i];
    case CUDA_R_16F: return half_to_float(static_cast<const uint16_t *>(p)[i]);
    case CUDA_R_16BF: return bf16_to_float(static_cast<const uint16_t *>(p)[i]);
    default: return 0.0f;
    }
}
struct gemm_args {
    int ta, tb, m, n, k, lda, ldb, ldc, batch;
    long long sa, sb, sc;
    const void *A, *B;
    void *C;
    cudaDataType at, bt, ct;
    float alpha, beta;          // host pointer mode
    const float *dalpha, *dbeta; // device pointer mode
    const char *api;
};
// Whether the elements a matrix [rows x cols], column-major with leading dimension ld, touches
// (for every batch) lie in one device allocation.
inline bool gemm_extent_ok(const gemm_args &a, const void *p, cudaDataType t, int rows, int cols, int ld, long long stride,
                           const char *which) {
    if (rows == 0 || cols == 0) return true;
    const size_t es = type_size(t);
    for (int i = 0; i < a.batch; i++) {
        const char *q = static_cast<const char *>(p) + (ptrdiff_t)(stride * i) * (ptrdiff_t)es;
        const size_t bytes = ((size_t)(cols - 1) * (size_t)ld + (size_t)rows) * es;
        const int k = classify(q, bytes);
        if (k != PTR_DEV) {
            msg("%s: %s (%p, %d x %d, ld %d%s) %s", a.api, which, (const void *)q, rows, cols, ld,
                a.batch > 1 ? ", a batch" : "",
                k == PTR_HOST ? "is not device memory (of cudaMalloc)" : "lies partly outside its device allocation");
            return false;
        }
    }
    return true;
}
inline cublasStatus_t gemm_run(const gemm_args &a) {
    if (a.m == 0 || a.n == 0 || a.batch == 0) return CUBLAS_STATUS_SUCCESS;
    stats().gemms++;
    const int ar = a.ta ? a.k : a.m, ac = a.ta ? a.m : a.k, br = a.tb ? a.n : a.k, bc = a.tb ? a.k : a.n;
    if (a.k > 0 && (!gemm_extent_ok(a, a.A, a.at, ar, ac, a.lda, a.sa, "A") ||
                    !gemm_extent_ok(a, a.B, a.bt, br, bc, a.ldb, a.sb, "B")))
        return CUBLAS_STATUS_EXECUTION_FAILED;
    if (!gemm_extent_ok(a, a.C, a.ct, a.m, a.n, a.ldc, a.sc, "C")) return CUBLAS_STATUS_EXECUTION_FAILED;
    if (a.dalpha && (classify(a.dalpha, 4) != PTR_DEV || classify(a.dbeta, 4) != PTR_DEV)) {
        msg("%s: alpha or beta is not device memory (pointer mode device)", a.api);
        return CUBLAS_STATUS_EXECUTION_FAILED;
    }
    dev_access access;
    const double alpha = a.dalpha ? *a.dalpha : a.alpha, beta = a.dalpha ? *a.dbeta : a.beta;
    const size_t es_a = type_size(a.at), es_b = type_size(a.bt), es_c = type_size(a.ct);
    std::vector<float> opa((size_t)a.m * a.k), opb((size_t)a.n * a.k); // op(A) by rows, op(B) by columns
    for (int bi = 0; bi < a.batch; bi++) {
        const char *A = static_cast<const char *>(a.A) + (ptrdiff_t)(a.sa * bi) * (ptrdiff_t)es_a;
        const char *B = static_cast<const char *>(a.B) + (ptrdiff_t)(a.sb * bi) * (ptrdiff_t)es_b;
        char *C = static_cast<char *>(a.C) + (ptrdiff_t)(a.sc * bi) * (ptrdiff_t)es_c;
        for (int i = 0; i < a.m; i++)
            for (int l = 0; l < a.k; l++)
                opa[(size_t)i * a.k + l] = load_val(A, a.at, a.ta ? (size_t)l + (size_t)i * a.lda : (size_t)i + (size_t)l * a.lda);
        for (int j = 0; j < a.n; j++)
            for (int l = 0; l < a.k; l++)
                opb[(size_t)j * a.k + l] = load_val(B, a.bt, a.tb ? (size_t)j + (size_t)l * a.ldb : (size_t)l + (size_t)j * a.ldb);
        for (int j = 0; j < a.n; j++)
            for (int i = 0; i < a.m; i++) {
                const float *x = &opa[(size_t)i * a.k], *y = &opb[(size_t)j * a.k];
                double s = 0.0;
                for (int l = 0; l < a.k; l++) s += (double)x[l] * (double)y[l];
                const size_t at = (size_t)i + (size_t)j * a.ldc;
                double r = alpha * s;
                if (beta != 0.0) r += beta * (double)load_val(C, a.ct, at);
                switch (a.ct) {
                case CUDA_R_32F: reinterpret_cast<float *>(C)[at] = (float)r; break;
                case CUDA_R_16F: reinterpret_cast<uint16_t *>(C)[at] = float_to_half((float)r); break;
                case CUDA_R_16BF: reinterpret_cast<uint16_t *>(C)[at] = float_to_bf16((float)r); break;
                default: break;
                }
            }
    }
    return CUBLAS_STATUS_SUCCESS;
}
inline bool compute_ok(cublasComputeType_t c) {
    return c == CUBLAS_COMPUTE_32F || c == CUBLAS_COMPUTE_32F_PEDANTIC || c == CUBLAS_COMPUTE_32F_FAST_16F ||
           c == CUBLAS_COMPUTE_32F_FAST_16BF || c == CUBLAS_COMPUTE_32F_FAST_TF32;
}
inline bool in_type_ok(cudaDataType t) { return t == CUDA_R_32F || t == CUDA_R_16F || t == CUDA_R_16BF; }
inline cublasStatus_t gemm(blas_t *h, gemm_args a, const void *alpha, const void *beta, cublasComputeType_t ct) {
    no_api_in_kernel(a.api);
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (a.ta < 0 || a.ta > 2 || a.tb < 0 || a.tb > 2 || a.m < 0 || a.n < 0 || a.k < 0 || a.batch < 0 ||
        a.lda < std::max(1, a.ta ? a.k : a.m) || a.ldb < std::max(1, a.tb ? a.n : a.k) || a.ldc < std::max(1, a.m) ||
        !alpha || !beta || (a.m && a.n && a.batch && !a.C)) {
        msg("%s: invalid value (m %d n %d k %d lda %d ldb %d ldc %d)", a.api, a.m, a.n, a.k, a.lda, a.ldb, a.ldc);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    a.ta = a.ta != 0; // CUBLAS_OP_C is CUBLAS_OP_T for real types
    a.tb = a.tb != 0;
    if (!in_type_ok(a.at) || a.at != a.bt || !(a.ct == CUDA_R_32F || a.ct == a.at) || !compute_ok(ct)) {
        msg("%s: unsupported types (A %d, B %d, C %d, compute %d)", a.api, (int)a.at, (int)a.bt, (int)a.ct, (int)ct);
        return CUBLAS_STATUS_NOT_SUPPORTED;
    }
    if (h->ptr_mode == CUBLAS_POINTER_MODE_HOST) {
        a.alpha = *static_cast<const float *>(alpha);
        a.beta = *static_cast<const float *>(beta);
        a.dalpha = a.dbeta = nullptr;
    } else {
        a.dalpha = static_cast<const float *>(alpha);
        a.dbeta = static_cast<const float *>(beta);
    }
    cudaError_t e;
    stream_t *st = get_stream(h->stream, &e);
    if (!st) {
        err(e);
        return CUBLAS_STATUS_EXECUTION_FAILED;
    }
    if (capture(st, [a]() { return gemm_run(a) == CUBLAS_STATUS_SUCCESS ? cudaSuccess : cudaErrorLaunchFailure; }, &e))
        return e == cudaSuccess ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
    const cublasStatus_t s = gemm_run(a);
    if (s != CUBLAS_STATUS_SUCCESS) executed(st, cudaErrorLaunchFailure);
    return s;
}

} // namespace simt

#define threadIdx (static_cast<const uint3 &>(::simt::t_tid))
#define blockIdx (static_cast<const uint3 &>(::simt::t_bid))
#define blockDim (static_cast<const dim3 &>(::simt::t_bdim))
#define gridDim (static_cast<const dim3 &>(::simt::t_gdim))

#define QMC_LAUNCH(kernel, grid, block, stream) ::simt::make_launcher((kernel), (grid), (block), (stream), #kernel)

// =============================================================================================
// Device intrinsics
// =============================================================================================
inline void __syncthreads() { simt::block_barrier(0, 0, "__syncthreads"); }
inline int __syncthreads_count(int p) { return simt::block_barrier(1, p, "__syncthreads_count"); }
inline int __syncthreads_and(int p) { return simt::block_barrier(2, p, "__syncthreads_and"); }
inline int __syncthreads_or(int p) { return simt::block_barrier(3, p, "__syncthreads_or"); }
inline void __syncwarp(unsigned int mask = 0xffffffffu) { simt::warp_op(simt::OP_SYNCWARP, mask, 0, 0, 0, 32, "__syncwarp"); }
inline unsigned int __ballot_sync(unsigned int mask, int p) {
    return (unsigned int)simt::warp_op(simt::OP_BALLOT, mask, p != 0, 0, 0, 32, "__ballot_sync");
}
inline int __any_sync(unsigned int mask, int p) { return (int)simt::warp_op(simt::OP_ANY, mask, p != 0, 0, 0, 32, "__any_sync"); }
inline int __all_sync(unsigned int mask, int p) { return (int)simt::warp_op(simt::OP_ALL, mask, p != 0, 0, 0, 32, "__all_sync"); }
// the live lanes of the calling thread's warp (lanes of a block are never "inactive" otherwise)
inline unsigned int __activemask() {
    simt::host_ctx *c = simt::kernel_ctx("__activemask");
    const int base = c->cur & ~31, nl = std::min(32, c->n - base);
    unsigned int m = 0;
    for (int l = 0; l < nl; l++)
        if (c->th[base + l].state != simt::ST_DONE) m |= 1u << l;
    return m;
}
namespace simt {
template <class T> inline T shfl(unsigned int mask, T v, int mode, int param, int width, const char *what) {
    static_assert(std::is_trivially_copyable<T>::value && sizeof(T) <= 8, "shuffles move values of up to 8 bytes");
    uint64_t bits = 0;
    memcpy(&bits, &v, sizeof(T));
    bits = warp_op(OP_SHFL, mask, bits, mode, param, width, what);
    T r;
    memcpy(&r, &bits, sizeof(T));
    return r;
}
} // namespace simt
template <class T> inline T __shfl_sync(unsigned int mask, T v, int src, int width = warpSize) {
    return simt::shfl(mask, v, simt::SH_IDX, src, width, "__shfl_sync");
}
template <class T> inline T __shfl_up_sync(unsigned int mask, T v, unsigned int delta, int width = warpSize) {
    return simt::shfl(mask, v, simt::SH_UP, (int)delta, width, "__shfl_up_sync");
}
template <class T> inline T __shfl_down_sync(unsigned int mask, T v, unsigned int delta, int width = warpSize) {
    return simt::shfl(mask, v, simt::SH_DOWN, (int)delta, width, "__shfl_down_sync");
}
template <class T> inline T __shfl_xor_sync(unsigned int mask, T v, int lane_mask, int width = warpSize) {
    return simt::shfl(mask, v, simt::SH_XOR, lane_mask, width, "__shfl_xor_sync");
}

// =============================================================================================
// Runtime API
// =============================================================================================
inline const char *cudaGetErrorName(cudaError_t e) {
    switch (e) {
#define SIMT_ERR(x) case x: return #x;
        SIMT_ERR(cudaSuccess) SIMT_ERR(cudaErrorInvalidValue) SIMT_ERR(cudaErrorMemoryAllocation)
        SIMT_ERR(cudaErrorInitializationError) SIMT_ERR(cudaErrorInvalidConfiguration)
        SIMT_ERR(cudaErrorInvalidDevicePointer) SIMT_ERR(cudaErrorInvalidMemcpyDirection)
        SIMT_ERR(cudaErrorInsufficientDriver) SIMT_ERR(cudaErrorInvalidDeviceFunction) SIMT_ERR(cudaErrorNoDevice)
        SIMT_ERR(cudaErrorInvalidDevice) SIMT_ERR(cudaErrorInvalidResourceHandle) SIMT_ERR(cudaErrorIllegalState)
        SIMT_ERR(cudaErrorNotReady) SIMT_ERR(cudaErrorIllegalAddress) SIMT_ERR(cudaErrorLaunchOutOfResources)
        SIMT_ERR(cudaErrorLaunchFailure) SIMT_ERR(cudaErrorNotSupported) SIMT_ERR(cudaErrorStreamCaptureUnsupported)
        SIMT_ERR(cudaErrorStreamCaptureInvalidated) SIMT_ERR(cudaErrorStreamCaptureMerge)
        SIMT_ERR(cudaErrorStreamCaptureUnmatched) SIMT_ERR(cudaErrorStreamCaptureUnjoined)
        SIMT_ERR(cudaErrorStreamCaptureIsolation) SIMT_ERR(cudaErrorStreamCaptureImplicit)
        SIMT_ERR(cudaErrorCapturedEvent) SIMT_ERR(cudaErrorStreamCaptureWrongThread) SIMT_ERR(cudaErrorUnknown)
#undef SIMT_ERR
    }
    return "cudaErrorUnknown";
}
inline const char *cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInitializationError: return "initialization error";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorInsufficientDriver: return "CUDA driver version is insufficient for CUDA runtime version";
    case cudaErrorInvalidDeviceFunction: return "invalid device function";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorIllegalState: return "the operation cannot be performed in the present state";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorNotSupported: return "operation not supported";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureMerge: return "operation would result in a merge of separate capture sequences";
    case cudaErrorStreamCaptureUnmatched: return "capture was not ended in the same stream as it began";
    case cudaErrorStreamCaptureUnjoined: return "capturing stream has unjoined work";
    case cudaErrorStreamCaptureIsolation: return "dependency created on uncaptured work in another stream";
    case cudaErrorStreamCaptureImplicit: return "operation would make the legacy stream depend on a capturing blocking stream";
    case cudaErrorCapturedEvent: return "operation not permitted on an event last recorded in a capturing stream";
    case cudaErrorStreamCaptureWrongThread: return "attempt to terminate a thread-local capture sequence from another thread";
    case cudaErrorUnknown: return "unknown error";
    }
    return "unrecognized error code";
}
inline cudaError_t cudaGetLastError() {
    const cudaError_t e = simt::t_last_error;
    simt::t_last_error = cudaSuccess;
    return e;
}
inline cudaError_t cudaPeekAtLastError() { return simt::t_last_error; }

inline cudaError_t cudaDriverGetVersion(int *v) {
    if (!v) return simt::err(cudaErrorInvalidValue);
    *v = simt::env_ll("QMC_SIMT_NODRIVER", 0) ? 0 : CUDART_VERSION;
    return cudaSuccess;
}
inline cudaError_t cudaRuntimeGetVersion(int *v) {
    if (!v) return simt::err(cudaErrorInvalidValue);
    *v = CUDART_VERSION;
    return cudaSuccess;
}
inline cudaError_t cudaGetDeviceCount(int *n) {
    if (!n) return simt::err(cudaErrorInvalidValue);
    *n = 0;
    if (simt::env_ll("QMC_SIMT_NODRIVER", 0)) return simt::err(cudaErrorInsufficientDriver);
    if (simt::env_ll("QMC_SIMT_NODEV", 0)) return simt::err(cudaErrorNoDevice);
    *n = 1;
    return cudaSuccess;
}
inline cudaError_t cudaGetDevice(int *d) {
    if (!d) return simt::err(cudaErrorInvalidValue);
    if (simt::nodev()) return simt::err(cudaErrorNoDevice);
    *d = 0;
    return cudaSuccess;
}
inline cudaError_t cudaSetDevice(int d) {
    if (simt::nodev()) return simt::err(cudaErrorNoDevice);
    return d == 0 ? cudaSuccess : simt::err(cudaErrorInvalidDevice);
}
inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int d) {
    if (!p) return simt::err(cudaErrorInvalidValue);
    if (simt::nodev()) return simt::err(cudaErrorNoDevice);
    if (d != 0) return simt::err(cudaErrorInvalidDevice);
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "qwenmoe SIMT emulator (host)");
    p->totalGlobalMem = simt::mem().total;
    p->sharedMemPerBlock = 48 * 1024;
    p->sharedMemPerBlockOptin = 48 * 1024;
    p->sharedMemPerMultiprocessor = 228 * 1024;
    p->regsPerBlock = 65536;
    p->regsPerMultiprocessor = 65536;
    p->warpSize = 32;
    p->memPitch = (size_t)1 << 31;
    p->maxThreadsPerBlock = 1024;
    p->maxThreadsDim[0] = 1024;
    p->maxThreadsDim[1] = 1024;
    p->maxThreadsDim[2] = 64;
    p->maxGridSize[0] = 0x7fffffff;
    p->maxGridSize[1] = 65535;
    p->maxGridSize[2] = 65535;
    p->clockRate = 1000000;
    p->totalConstMem = 65536;
    p->major = 9;
    p->minor = 0;
    p->textureAlignment = 512;
    p->multiProcessorCount = 132;
    p->concurrentKernels = 1;
    p->asyncEngineCount = 2;
    p->unifiedAddressing = 1;
    p->memoryClockRate = 1000000;
    p->memoryBusWidth = 5120;
    p->l2CacheSize = 50 * 1024 * 1024;
    p->maxThreadsPerMultiProcessor = 2048;
    p->canMapHostMemory = 1;
    return cudaSuccess;
}
inline cudaError_t cudaDeviceGetAttribute(int *v, cudaDeviceAttr attr, int d) {
    cudaDeviceProp p;
    const cudaError_t e = cudaGetDeviceProperties(&p, d);
    if (e != cudaSuccess) return e;
    if (!v) return simt::err(cudaErrorInvalidValue);
    switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *v = p.maxThreadsPerBlock; break;
    case cudaDevAttrMaxBlockDimX: *v = p.maxThreadsDim[0]; break;
    case cudaDevAttrMaxBlockDimY: *v = p.maxThreadsDim[1]; break;
    case cudaDevAttrMaxBlockDimZ: *v = p.maxThreadsDim[2]; break;
    case cudaDevAttrMaxGridDimX: *v = p.maxGridSize[0]; break;
    case cudaDevAttrMaxGridDimY: *v = p.maxGridSize[1]; break;
    case cudaDevAttrMaxGridDimZ: *v = p.maxGridSize[2]; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *v = (int)p.sharedMemPerBlock; break;
    case cudaDevAttrTotalConstantMemory: *v = (int)p.totalConstMem; break;
    case cudaDevAttrWarpSize: *v = 32; break;
    case cudaDevAttrMultiProcessorCount: *v = p.multiProcessorCount; break;
    case cudaDevAttrL2CacheSize: *v = p.l2CacheSize; break;
    case cudaDevAttrMaxThreadsPerMultiProcessor: *v = p.maxThreadsPerMultiProcessor; break;
    case cudaDevAttrComputeCapabilityMajor: *v = p.major; break;
    case cudaDevAttrComputeCapabilityMinor: *v = p.minor; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *v = (int)p.sharedMemPerBlockOptin; break;
    default: return simt::err(cudaErrorInvalidValue);
    }
    return cudaSuccess;
}
template <class F> inline cudaError_t cudaFuncSetAttribute(F *, int, int) { return cudaSuccess; }
inline cudaError_t cudaDeviceReset() { return cudaSuccess; }

inline cudaError_t cudaMemGetInfo(size_t *free_b, size_t *total_b) {
    if (simt::nodev()) return simt::err(cudaErrorNoDevice);
    simt::mem_state &m = simt::mem();
    std::lock_guard<std::mutex> lock(m.mu);
    if (free_b) *free_b = m.total - m.used;
    if (total_b) *total_b = m.total;
    return cudaSuccess;
}

inline cudaError_t cudaMalloc(void **p, size_t size) {
    simt::no_api_in_kernel("cudaMalloc");
    if (!p) return simt::err(cudaErrorInvalidValue);
    *p = nullptr;
    if (simt::nodev()) return simt::err(cudaErrorNoDevice);
    cudaError_t e = simt::unsafe_call("cudaMalloc");
    if (e != cudaSuccess) return simt::err(e);
    if (size == 0) return cudaSuccess;
    simt::mem_state &m = simt::mem();
    std::lock_guard<std::mutex> lock(m.mu);
    if (size > m.total) return simt::err(cudaErrorMemoryAllocation);
    const size_t data_len = (size + m.page - 1) / m.page * m.page;
    if (data_len > m.total - m.used) return simt::err(cudaErrorMemoryAllocation);
    const size_t map_len = data_len + 2 * m.page;
    void *mp = mmap(nullptr, map_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mp == MAP_FAILED) return simt::err(cudaErrorMemoryAllocation);
    simt::dev_alloc d;
    d.map = static_cast<char *>(mp);
    d.map_len = map_len;
    d.data = d.map + m.page;
    d.data_len = data_len;
    d.size = size;
    d.open = 0;
    if (m.guard) simt::install_handler_locked();
    if (m.poison || !m.guard) {
        if (mprotect(d.data, data_len, PROT_READ | PROT_WRITE) != 0) {
            munmap(mp, map_len);
            return simt::err(cudaErrorMemoryAllocation);
        }
        if (m.poison) memset(d.data, 0xff, data_len);
        if (m.guard) mprotect(d.data, data_len, PROT_NONE);
    }
    char *ptr = d.data + data_len - (size + 255) / 256 * 256;
    m.dev[(uintptr_t)ptr] = d;
    m.used += data_len;
    simt::stats().allocs++;
    *p = ptr;
    return cudaSuccess;
}
template <class T> inline cudaError_t cudaMalloc(T **p, size_t size) { return cudaMalloc(reinterpret_cast<void **>(p), size); }
inline cudaError_t cudaFree(void *p) {
    simt::no_api_in_kernel("cudaFree");
    if (!p) return cudaSuccess;
    cudaError_t e = simt::unsafe_call("cudaFree");
    if (e != cudaSuccess) return simt::err(e);
    simt::mem_state &m = simt::mem();
    std::lock_guard<std::mutex> lock(m.mu);
    auto it = m.dev.find((uintptr_t)p);
    if (it == m.dev.end()) {
        simt::msg("cudaFree(%p): not a pointer returned by cudaMalloc (or freed already)", p);
        return simt::err(cudaErrorInvalidValue);
    }
    munmap(it->second.map, it->second.map_len);
    m.used -= it->second.data_len;
    m.dev.erase(it);
    return cudaSuccess;
}
inline cudaError_t cudaMallocHost(void **p, size_t size) {
    simt::no_api_in_kernel("cudaMallocHost");
    if (!p) return simt::err(cudaErrorInvalidValue);
    *p = nullptr;
    cudaError_t e = simt::unsafe_call("cudaMallocHost");
    if (e != cudaSuccess) return simt::err(e);
    void *q = nullptr;
    if (posix_memalign(&q, 4096, size ? size : 1) != 0) return simt::err(cudaErrorMemoryAllocation);
    simt::mem_state &m = simt::mem();
    std::lock_guard<std::mutex> lock(m.mu);
    m.pinned[(uintptr_t)q] = size;
    *p = q;
    return cudaSuccess;
}
template <class T> inline cudaError_t cudaMallocHost(T **p, size_t size) {
    return cudaMallocHost(reinterpret_cast<void **>(p), size);
}
inline cudaError_t cudaHostAlloc(void **p, size_t size, unsigned int) { return cudaMallocHost(p, size); }
inline cudaError_t cudaFreeHost(void *p) {
    simt::no_api_in_kernel("cudaFreeHost");
    if (!p) return cudaSuccess;
    cudaError_t e = simt::unsafe_call("cudaFreeHost");
    if (e != cudaSuccess) return simt::err(e);
    simt::mem_state &m = simt::mem();
    {
        std::lock_guard<std::mutex> lock(m.mu);
        auto it = m.pinned.find((uintptr_t)p);
        if (it == m.pinned.end()) {
            simt::msg("cudaFreeHost(%p): not a pointer returned by cudaMallocHost", p);
            return simt::err(cudaErrorInvalidValue);
        }
        m.pinned.erase(it);
    }
    free(p);
    return cudaSuccess;
}
inline cudaError_t cudaHostRegister(void *, size_t, unsigned int) { return cudaSuccess; }
inline cudaError_t cudaHostUnregister(void *) { return cudaSuccess; }

inline cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, cudaMemcpyKind kind) {
    simt::no_api_in_kernel("cudaMemcpy");
    cudaError_t e = simt::unsafe_call("cudaMemcpy");
    if (e != cudaSuccess) return simt::err(e);
    simt::stream_t *st = simt::get_stream(nullptr, &e);
    if (!st) return simt::err(e);
    return simt::err(simt::do_copy("cudaMemcpy", dst, src, n, kind));
}
inline cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, cudaMemcpyKind kind, cudaStream_t s = nullptr) {
    simt::no_api_in_kernel("cudaMemcpyAsync");
    cudaError_t e;
    simt::stream_t *st = simt::get_stream(s, &e);
    if (!st) return simt::err(e);
    if (st->capturing) {
        bool dev;
        if (n && (e = simt::check_copy("cudaMemcpyAsync", dst, src, n, kind, &dev)) != cudaSuccess) return simt::err(e);
        simt::capture(st, [dst, src, n, kind]() { return simt::do_copy("cudaMemcpyAsync (graph)", dst, src, n, kind); }, &e);
        return simt::err(e);
    }
    return simt::executed(st, simt::do_copy("cudaMemcpyAsync", dst, src, n, kind));
}
inline cudaError_t cudaMemset(void *dst, int value, size_t n) {
    simt::no_api_in_kernel("cudaMemset");
    cudaError_t e = simt::unsafe_call("cudaMemset");
    if (e != cudaSuccess) return simt::err(e);
    simt::stream_t *st = simt::get_stream(nullptr, &e);
    if (!st) return simt::err(e);
    return simt::err(simt::do_set("cudaMemset", dst, value, n));
}
inline cudaError_t cudaMemsetAsync(void *dst, int value, size_t n, cudaStream_t s = nullptr) {
    simt::no_api_in_kernel("cudaMemsetAsync");
    cudaError_t e;
    simt::stream_t *st = simt::get_stream(s, &e);
    if (!st) return simt::err(e);
    if (st->capturing) {
        if ((e = simt::check_set("cudaMemsetAsync", dst, n)) != cudaSuccess) return simt::err(e);
        simt::capture(st, [dst, value, n]() { return simt::do_set("cudaMemsetAsync (graph)", dst, value, n); }, &e);
        return simt::err(e);
    }
    return simt::executed(st, simt::do_set("cudaMemsetAsync", dst, value, n));
}
template <class T>
inline cudaError_t cudaMemcpyToSymbol(const T &symbol, const void *src, size_t n, size_t offset = 0,
                                      cudaMemcpyKind kind = cudaMemcpyHostToDevice) {
    if (offset + n > sizeof(T) || (kind != cudaMemcpyHostToDevice && kind != cudaMemcpyDefault))
        return simt::err(cudaErrorInvalidValue);
    memcpy(reinterpret_cast<char *>(const_cast<T *>(&symbol)) + offset, src, n);
    return cudaSuccess;
}
template <class T>
inline cudaError_t cudaMemcpyFromSymbol(void *dst, const T &symbol, size_t n, size_t offset = 0,
                                        cudaMemcpyKind kind = cudaMemcpyDeviceToHost) {
    if (offset + n > sizeof(T) || (kind != cudaMemcpyDeviceToHost && kind != cudaMemcpyDefault))
        return simt::err(cudaErrorInvalidValue);
    memcpy(dst, reinterpret_cast<const char *>(&symbol) + offset, n);
    return cudaSuccess;
}

inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned int flags) {
    simt::no_api_in_kernel("cudaStreamCreate");
    if (!s) return simt::err(cudaErrorInvalidValue);
    if (simt::nodev()) return simt::err(cudaErrorNoDevice);
    simt::stream_t *st = new simt::stream_t();
    st->flags = flags;
    std::lock_guard<std::mutex> lock(simt::rt().mu);
    simt::rt().streams.insert(st);
    *s = st;
    return cudaSuccess;
}
inline cudaError_t cudaStreamCreate(cudaStream_t *s) { return cudaStreamCreateWithFlags(s, cudaStreamDefault); }
inline cudaError_t cudaStreamCreateWithPriority(cudaStream_t *s, unsigned int flags, int) {
    return cudaStreamCreateWithFlags(s, flags);
}
inline cudaError_t cudaStreamDestroy(cudaStream_t s) {
    simt::no_api_in_kernel("cudaStreamDestroy");
    simt::rt_state &r = simt::rt();
    std::lock_guard<std::mutex> lock(r.mu);
    if (!r.streams.count(s)) return simt::err(cudaErrorInvalidResourceHandle);
    if (s->capturing) { // the capture ends with the stream
        r.captures.erase(std::find(r.captures.begin(), r.captures.end(), s));
        r.n_captures--;
        delete s->graph;
    }
    r.streams.erase(s);
    delete s;
    return cudaSuccess;
}
inline cudaError_t cudaStreamSynchronize(cudaStream_t s) {
    simt::no_api_in_kernel("cudaStreamSynchronize");
    cudaError_t e;
    simt::stream_t *st = simt::get_stream(s, &e);
    if (!st) return simt::err(e);
    if (st->capturing) {
        st->invalidated = true;
        simt::msg("cudaStreamSynchronize on a capturing stream: not permitted (the capture is invalidated)");
        return simt::err(cudaErrorStreamCaptureUnsupported);
    }
    e = st->pending;
    st->pending = cudaSuccess;
    return simt::err(e);
}
inline cudaError_t cudaStreamQuery(cudaStream_t s) {
    cudaError_t e;
    simt::stream_t *st = simt::get_stream(s, &e);
    if (!st) return simt::err(e);
    if (st->capturing) {
        st->invalidated = true;
        return simt::err(cudaErrorStreamCaptureUnsupported);
    }
    return cudaSuccess;
}
inline cudaError_t cudaDeviceSynchronize() {
    simt::no_api_in_kernel("cudaDeviceSynchronize");
    const cudaError_t e = simt::unsafe_call("cudaDeviceSynchronize");
    if (e != cudaSuccess) return simt::err(e);
    simt::rt_state &r = simt::rt();
    std::lock_guard<std::mutex> lock(r.mu);
    cudaError_t p = r.legacy.pending;
    r.legacy.pending = cudaSuccess;
    for (simt::stream_t *st : r.streams)
        if (st->pending != cudaSuccess) {
            if (p == cudaSuccess) p = st->pending;
            st->pending = cudaSuccess;
        }
    return simt::err(p);
}

inline cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode) {
    simt::no_api_in_kernel("cudaStreamBeginCapture");
    if (s == nullptr || s == cudaStreamLegacy || s == cudaStreamPerThread) {
        simt::msg("cudaStreamBeginCapture: the legacy default stream cannot capture");
        return simt::err(cudaErrorStreamCaptureUnsupported);
    }
    if (mode < cudaStreamCaptureModeGlobal || mode > cudaStreamCaptureModeRelaxed) return simt::err(cudaErrorInvalidValue);
    cudaError_t e;
    simt::stream_t *st = simt::get_stream(s, &e);
    if (!st) return simt::err(e);
    simt::rt_state &r = simt::rt();
    std::lock_guard<std::mutex> lock(r.mu);
    if (st->capturing) return simt::err(cudaErrorIllegalState);
    st->capturing = true;
    st->invalidated = false;
    st->mode = mode;
    st->owner = std::this_thread::get_id();
    st->graph = new simt::graph_t();
    r.captures.push_back(st);
    r.n_captures++;
    return cudaSuccess;
}
inline cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *graph) {
    simt::no_api_in_kernel("cudaStreamEndCapture");
    if (!graph) return simt::err(cudaErrorInvalidValue);
    *graph = nullptr;
    cudaError_t e;
    simt::stream_t *st = simt::get_stream(s, &e);
    if (!st) return simt::err(e);
    simt::rt_state &r = simt::rt();
    std::lock_guard<std::mutex> lock(r.mu);
    if (!st->capturing) return simt::err(cudaErrorIllegalState);
    if (st->mode != cudaStreamCaptureModeRelaxed && st->owner != std::this_thread::get_id())
        return simt::err(cudaErrorStreamCaptureWrongThread);
    st->capturing = false;
    r.captures.erase(std::find(r.captures.begin(), r.captures.end(), st));
    r.n_captures--;
    simt::graph_t *g = st->graph;
    st->graph = nullptr;
    if (st->invalidated) {
        st->invalidated = false;
        delete g;
        return simt::err(cudaErrorStreamCaptureInvalidated);
    }
    *graph = g;
    return cudaSuccess;
}
inline cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus *status) {
    if (!status) return simt::err(cudaErrorInvalidValue);
    cudaError_t e;
    simt::stream_t *st = simt::get_stream(s, &e);
    if (!st) return simt::err(e);
    *status = !st->capturing ? cudaStreamCaptureStatusNone
              : st->invalidated ? cudaStreamCaptureStatusInvalidated : cudaStreamCaptureStatusActive;
    return cudaSuccess;
}
inline cudaError_t cudaThreadExchangeStreamCaptureMode(cudaStreamCaptureMode *mode) {
    if (!mode) return simt::err(cudaErrorInvalidValue);
    const int old = simt::t_capture_mode;
    simt::t_capture_mode = *mode;
    *mode = static_cast<cudaStreamCaptureMode>(old);
    return cudaSuccess;
}
inline cudaError_t cudaGraphCreate(cudaGraph_t *g, unsigned int) {
    if (!g) return simt::err(cudaErrorInvalidValue);
    *g = new simt::graph_t();
    return cudaSuccess;
}
inline cudaError_t cudaGraphDestroy(cudaGraph_t g) {
    delete g;
    return cudaSuccess;
}
// nodes must be NULL (only the count is reported)
inline cudaError_t cudaGraphGetNodes(cudaGraph_t g, cudaGraphNode_t *nodes, size_t *n) {
    if (!g || !n || nodes) return simt::err(cudaErrorInvalidValue);
    *n = g->nodes.size();
    return cudaSuccess;
}
inline cudaError_t cudaGraphInstantiate(cudaGraphExec_t *x, cudaGraph_t g, unsigned long long flags = 0) {
    (void)flags;
    if (!x || !g) return simt::err(cudaErrorInvalidValue);
    *x = new simt::graph_exec_t();
    (*x)->nodes = g->nodes;
    return cudaSuccess;
}
inline cudaError_t cudaGraphInstantiateWithFlags(cudaGraphExec_t *x, cudaGraph_t g, unsigned long long flags = 0) {
    return cudaGraphInstantiate(x, g, flags);
}
inline cudaError_t cudaGraphExecDestroy(cudaGraphExec_t x) {
    delete x;
    return cudaSuccess;
}
inline cudaError_t cudaGraphUpload(cudaGraphExec_t x, cudaStream_t) { return x ? cudaSuccess : simt::err(cudaErrorInvalidValue); }
inline cudaError_t cudaGraphLaunch(cudaGraphExec_t x, cudaStream_t s) {
    simt::no_api_in_kernel("cudaGraphLaunch");
    if (!x) return simt::err(cudaErrorInvalidValue);
    cudaError_t e;
    simt::stream_t *st = simt::get_stream(s, &e);
    if (!st) return simt::err(e);
    std::vector<simt::node_fn> nodes = x->nodes;
    auto replay = [nodes]() {
        for (const simt::node_fn &f : nodes) {
            const cudaError_t r = f();
            if (r != cudaSuccess) return r;
        }
        return cudaSuccess;
    };
    if (simt::capture(st, replay, &e)) return simt::err(e);
    return simt::executed(st, replay());
}
inline cudaError_t cudaLaunchHostFunc(cudaStream_t s, cudaHostFn_t fn, void *user) {
    simt::no_api_in_kernel("cudaLaunchHostFunc");
    if (!fn) return simt::err(cudaErrorInvalidValue);
    cudaError_t e;
    simt::stream_t *st = simt::get_stream(s, &e);
    if (!st) return simt::err(e);
    auto node = [fn, user]() {
        fn(user); // outside any device operation: a host function cannot touch device memory
        return cudaSuccess;
    };
    if (simt::capture(st, node, &e)) return simt::err(e);
    return node();
}

inline cudaError_t cudaEventCreateWithFlags(cudaEvent_t *ev, unsigned int) {
    if (!ev) return simt::err(cudaErrorInvalidValue);
    *ev = new simt::event_t();
    return cudaSuccess;
}
inline cudaError_t cudaEventCreate(cudaEvent_t *ev) { return cudaEventCreateWithFlags(ev, cudaEventDefault); }
inline cudaError_t cudaEventDestroy(cudaEvent_t ev) {
    delete ev;
    return cudaSuccess;
}
inline cudaError_t cudaEventRecord(cudaEvent_t ev, cudaStream_t s = nullptr) {
    if (!ev) return simt::err(cudaErrorInvalidResourceHandle);
    cudaError_t e;
    simt::stream_t *st = simt::get_stream(s, &e);
    if (!st) return simt::err(e);
    auto node = [ev]() {
        ev->t = simt::now_ms();
        ev->recorded = true;
        return cudaSuccess;
    };
    if (simt::capture(st, node, &e)) return simt::err(e);
    return node();
}
inline cudaError_t cudaEventSynchronize(cudaEvent_t ev) { return ev ? cudaSuccess : simt::err(cudaErrorInvalidResourceHandle); }
inline cudaError_t cudaEventQuery(cudaEvent_t ev) { return ev ? cudaSuccess : simt::err(cudaErrorInvalidResourceHandle); }
inline cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b) {
    if (!ms || !a || !b) return simt::err(cudaErrorInvalidValue);
    if (!a->recorded || !b->recorded) return simt::err(cudaErrorInvalidResourceHandle);
    *ms = (float)(b->t - a->t);
    return cudaSuccess;
}
inline cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t ev, unsigned int flags = 0) {
    (void)flags;
    if (!ev) return simt::err(cudaErrorInvalidResourceHandle);
    cudaError_t e;
    return simt::get_stream(s, &e) ? cudaSuccess : simt::err(e); // one device, in order: nothing to wait for
}

// =============================================================================================
// cuBLAS API
// =============================================================================================
inline cublasStatus_t cublasCreate(cublasHandle_t *h) {
    if (!h) return CUBLAS_STATUS_INVALID_VALUE;
    if (simt::nodev()) return CUBLAS_STATUS_NOT_INITIALIZED;
    *h = new simt::blas_t();
    return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasDestroy(cublasHandle_t h) {
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s) {
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    h->stream = s;
    return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasGetStream(cublasHandle_t h, cudaStream_t *s) {
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!s) return CUBLAS_STATUS_INVALID_VALUE;
    *s = h->stream;
    return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t m) {
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    h->math = m;
    return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasGetMathMode(cublasHandle_t h, cublasMath_t *m) {
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!m) return CUBLAS_STATUS_INVALID_VALUE;
    *m = static_cast<cublasMath_t>(h->math);
    return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasSetPointerMode(cublasHandle_t h, cublasPointerMode_t m) {
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    h->ptr_mode = m;
    return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasSetWorkspace(cublasHandle_t h, void *, size_t) {
    return h ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_INITIALIZED;
}
inline const char *cublasGetStatusName(cublasStatus_t s) {
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
    }
    return "CUBLAS_STATUS_UNKNOWN";
}
inline const char *cublasGetStatusString(cublasStatus_t s) {
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "the resource allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "an absent device architectural feature is required";
    case CUBLAS_STATUS_MAPPING_ERROR: return "an access to GPU memory space failed";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "an internal operation failed";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
    case CUBLAS_STATUS_LICENSE_ERROR: return "an error was detected when checking the current licensing";
    }
    return "unknown error";
}
inline cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                                 int k, const void *alpha, const void *A, cudaDataType at, int lda,
                                                 long long sa, const void *B, cudaDataType bt, int ldb, long long sb,
                                                 const void *beta, void *C, cudaDataType ct, int ldc, long long sc,
                                                 int batch, cublasComputeType_t compute, cublasGemmAlgo_t algo) {
    (void)algo;
    simt::gemm_args a = {(int)ta, (int)tb, m, n, k, lda, ldb, ldc, batch, sa, sb, sc, A, B, C, at, bt, ct,
                         0.0f, 0.0f, nullptr, nullptr, "cublasGemmStridedBatchedEx"};
    return simt::gemm(h, a, alpha, beta, compute);
}
inline cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                   const void *alpha, const void *A, cudaDataType at, int lda, const void *B,
                                   cudaDataType bt, int ldb, const void *beta, void *C, cudaDataType ct, int ldc,
                                   cublasComputeType_t compute, cublasGemmAlgo_t algo) {
    (void)algo;
    simt::gemm_args a = {(int)ta, (int)tb, m, n, k, lda, ldb, ldc, 1, 0, 0, 0, A, B, C, at, bt, ct,
                         0.0f, 0.0f, nullptr, nullptr, "cublasGemmEx"};
    return simt::gemm(h, a, alpha, beta, compute);
}
inline cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                  const float *alpha, const float *A, int lda, const float *B, int ldb, const float *beta,
                                  float *C, int ldc) {
    simt::gemm_args a = {(int)ta, (int)tb, m, n, k, lda, ldb, ldc, 1, 0, 0, 0, A, B, C, CUDA_R_32F, CUDA_R_32F,
                         CUDA_R_32F, 0.0f, 0.0f, nullptr, nullptr, "cublasSgemm"};
    return simt::gemm(h, a, alpha, beta, CUBLAS_COMPUTE_32F);
}

#endif // QMC_SIMT_H
