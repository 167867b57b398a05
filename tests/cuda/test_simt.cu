// test_simt.cu - the self-test of tests/cuda/simt.h, the host SIMT emulator. Compiled as C++
// by g++ (not nvcc): g++ -std=c++17 -I. -x c++ tests/cuda/test_simt.cu -lpthread.
// Checks barriers, shuffles and votes, race exposure by the thread order, launch errors,
// launch configurations, stream capture and graphs, cublasGemmEx, the device memory guard,
// memory accounting and copies, and concurrent host threads; then measures the context-switch
// rate. Prints "FAIL ..." lines and ends with "# simt: N passed, M failed".
#include "simt.h"
#include "../qmtest.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

#define FULL 0xffffffffu

static void set_order(const char *o) {
    if (o) setenv("QMC_SIMT_ORDER", o, 1);
    else unsetenv("QMC_SIMT_ORDER");
}

// ---------------------------------------------------------------------------------------------
// kernels
// ---------------------------------------------------------------------------------------------

// Tree reduction of 256 values per block in shared memory.
__global__ void __launch_bounds__(256) k_reduce(const float *in, float *out) {
    __shared__ float s[256];
    const int t = threadIdx.x;
    s[t] = in[blockIdx.x * 256 + t];
    __syncthreads();
    for (int h = 128; h > 0; h >>= 1) {
        if (t < h) s[t] += s[t + h];
        __syncthreads();
    }
    if (t == 0) out[blockIdx.x] = s[0];
}

// Each thread writes its slot, then reads its neighbour's: without the barrier the result
// depends on which thread ran first.
__global__ void k_neighbour(int *out, int fix) {
    __shared__ int s[128];
    const int t = threadIdx.x, n = blockDim.x;
    s[t] = (int)blockIdx.x * 1000 + t;
    if (fix) __syncthreads();
    out[blockIdx.x * n + t] = s[(t + 1) % n];
}

#define N_SHFL 18
__global__ void k_shuffles(int *out) {
    const int t = threadIdx.x, lane = t & 31;
    const int v = t * 7 + 3;
    const float f = (float)t * 0.5f;
    const unsigned u = 1000u + (unsigned)t;
    int *o = out + t * N_SHFL;
    o[0] = __shfl_xor_sync(FULL, v, 1);
    o[1] = __shfl_xor_sync(FULL, v, 19);
    o[2] = __shfl_sync(FULL, v, 5);
    o[3] = __shfl_sync(FULL, v, (lane * 3) & 31);
    o[4] = __shfl_down_sync(FULL, v, 3);
    o[5] = __shfl_up_sync(FULL, v, 2);
    o[6] = (int)(__shfl_xor_sync(FULL, f, 8) * 2.0f);
    o[7] = (int)__shfl_down_sync(FULL, u, 16);
    o[8] = __shfl_xor_sync(FULL, v, 2, 8);
    o[9] = __shfl_down_sync(FULL, v, 5, 8);
    o[10] = __shfl_sync(FULL, v, 3, 16);
    int sum = v;
    for (int m = 16; m > 0; m >>= 1) sum += __shfl_xor_sync(FULL, sum, m);
    o[11] = sum;
    o[12] = (int)__ballot_sync(FULL, lane % 3 == 0);
    o[13] = __any_sync(FULL, t == 40);
    o[14] = __all_sync(FULL, lane < 31);
    o[15] = lane < 16 ? __shfl_xor_sync(0x0000ffffu, v, 4) : -1;
    float fs = f;
    for (int m = 1; m < 32; m <<= 1) fs += __shfl_down_sync(FULL, fs, m);
    o[16] = lane == 0 ? (int)fs : 0;
    __syncwarp();
    o[17] = __syncthreads_count(t % 3 == 0);
}

// lanes 16..31 exit; the others read from them
__global__ void k_shfl_exited(int *out) {
    const int lane = threadIdx.x & 31;
    if (lane >= 16) return;
    out[threadIdx.x] = __shfl_xor_sync(FULL, (int)threadIdx.x, 16);
}
// lanes 0..15 shuffle among themselves but lane 8 reads lane 16, which is not in their mask
__global__ void k_shfl_not_in_mask(int *out) {
    const int lane = threadIdx.x & 31;
    if (lane < 16) out[lane] = __shfl_down_sync(0x0000ffffu, lane, 8);
    else __syncwarp(0xffff0000u);
}
// lane 0 waits at __syncthreads, the rest of its warp at a shuffle: never completes
__global__ void k_mixed_barriers(int *out) {
    const int t = threadIdx.x;
    int v = t;
    if (t == 0) {
        __syncthreads();
    } else {
        v = __shfl_xor_sync(FULL, v, 1);
        __syncthreads();
    }
    out[t] = v;
}
// a lane that leaves itself out of its mask
__global__ void k_bad_mask(int *out) { out[threadIdx.x] = __shfl_xor_sync(0x1u, (int)threadIdx.x, 1); }
// threads >= 100 exit before the barrier: it completes with the others
__global__ void k_exit_then_sync(int *out) {
    __shared__ int s[128];
    const int t = threadIdx.x;
    if (t >= 100) return;
    s[t] = t * 2;
    __syncthreads();
    out[t] = s[99 - t];
}

// every thread of a 3D grid of 3D blocks writes its coordinates
__global__ void k_coords(int *out) {
    const unsigned bl = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    const unsigned th = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    const unsigned g = bl * (blockDim.x * blockDim.y * blockDim.z) + th;
    out[g * 2] = (int)(blockIdx.x | blockIdx.y << 8 | blockIdx.z << 16);
    out[g * 2 + 1] = (int)(threadIdx.x | threadIdx.y << 8 | threadIdx.z << 16);
}

__global__ void k_add(const float *in, float *out, int n, float add) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = in[i] + add;
}
__global__ void k_fill(int *p, int v) { p[threadIdx.x] = v; }

// argument conversions as in a call: int -> size_t, NULL -> pointer, long long, a struct
struct pair_arg {
    int a, b;
};
__global__ void k_args(size_t n, const float *maybe_null, float *out, long long m, pair_arg pr, uint2 u) {
    if (threadIdx.x == 0)
        out[0] = (float)n + (maybe_null ? 1000.0f : 0.0f) + (float)m * 10.0f + (float)(pr.a * 100 + pr.b) + (float)(u.x + u.y);
}

__constant__ float c_table[4] = {1.0f, 2.0f, 4.0f, 8.0f};
// intrinsics and math functions compile and compute on the host
__global__ void k_math(const float4 *in, float *out) {
    const float4 v = __ldg(in);
    out[0] = rsqrtf(v.x);
    out[1] = __expf(v.y);
    out[2] = __fdividef(v.z, v.w);
    out[3] = __frsqrt_rn(v.x);
    out[4] = fmaxf(v.x, v.y) + fminf(v.z, v.w) + fmaf(v.x, v.y, v.z);
    out[5] = c_table[2] + (float)warpSize;
    out[6] = sqrtf(v.x) + expf(0.0f);
    float4 w = make_float4(1, 2, 3, 4);
    out[7] = w.x + w.y + w.z + w.w;
}

__global__ void k_bench_syncwarp(int iters, int *out) {
    int x = 0;
    for (int i = 0; i < iters; i++) {
        __syncwarp();
        x++;
    }
    if (threadIdx.x == 0) out[0] = x;
}
__global__ void k_bench_syncthreads(int iters, int *out) {
    int x = 0;
    for (int i = 0; i < iters; i++) {
        __syncthreads();
        x++;
    }
    if (threadIdx.x == 0) out[0] = x;
}

// ---------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------
template <class T> static T *dev_alloc(size_t n) {
    void *p = nullptr;
    if (cudaMalloc(&p, n * sizeof(T)) != cudaSuccess) {
        printf("FAIL cudaMalloc of %zu bytes\n", n * sizeof(T));
        exit(1);
    }
    return static_cast<T *>(p);
}
template <class T> static void to_dev(T *d, const std::vector<T> &h) {
    cudaMemcpy(d, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice);
}
template <class T> static std::vector<T> from_dev(const T *d, size_t n) {
    std::vector<T> h(n);
    cudaMemcpy(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost);
    return h;
}

// ---------------------------------------------------------------------------------------------
// tests
// ---------------------------------------------------------------------------------------------
static void test_reduce() {
    const int nb = 6;
    std::vector<float> in(nb * 256);
    for (size_t i = 0; i < in.size(); i++) in[i] = (float)((i * 37) % 101);
    float *d_in = dev_alloc<float>(in.size()), *d_out = dev_alloc<float>(nb);
    to_dev(d_in, in);
    const char *orders[] = {"forward", "reverse", "shuffle"};
    for (const char *o : orders) {
        set_order(o);
        QMC_LAUNCH(k_reduce, nb, 256, 0)(d_in, d_out);
        CHECK(cudaGetLastError() == cudaSuccess, "reduce launch (%s)", o);
        std::vector<float> out = from_dev(d_out, nb);
        for (int b = 0; b < nb; b++) {
            float want = 0;
            for (int t = 0; t < 256; t++) want += in[b * 256 + t];
            CHECK(out[b] == want, "reduce (%s) block %d: %g, expected %g", o, b, out[b], want);
        }
    }
    set_order(nullptr);
    cudaFree(d_in);
    cudaFree(d_out);
}

static void test_shuffles() {
    const int n = 64;
    int *d = dev_alloc<int>(n * N_SHFL);
    QMC_LAUNCH(k_shuffles, 1, n, 0)(d);
    CHECK(cudaGetLastError() == cudaSuccess, "shuffle launch");
    std::vector<int> o = from_dev(d, n * N_SHFL);
    auto V = [](int t) { return t * 7 + 3; };
    int bad = 0;
    for (int t = 0; t < n; t++) {
        const int lane = t & 31, w = t & ~31;
        int e[N_SHFL];
        e[0] = V(w + (lane ^ 1));
        e[1] = V(w + (lane ^ 19));
        e[2] = V(w + 5);
        e[3] = V(w + ((lane * 3) & 31));
        e[4] = lane + 3 < 32 ? V(t + 3) : V(t);
        e[5] = lane >= 2 ? V(t - 2) : V(t);
        e[6] = w + (lane ^ 8); // (t' * 0.5) * 2
        e[7] = lane + 16 < 32 ? 1000 + t + 16 : 1000 + t;
        e[8] = V(w + (lane ^ 2));
        e[9] = (lane & 7) + 5 < 8 ? V(t + 5) : V(t);
        e[10] = V(w + (lane & ~15) + 3);
        int s = 0;
        for (int l = 0; l < 32; l++) s += V(w + l);
        e[11] = s;
        unsigned b = 0;
        for (int l = 0; l < 32; l++)
            if (l % 3 == 0) b |= 1u << l;
        e[12] = (int)b;
        e[13] = w == 32; // t == 40 is in warp 1
        e[14] = 0;       // lane 31 is not < 31
        e[15] = lane < 16 ? V(w + (lane ^ 4)) : -1;
        // shfl_down tree: lane 0 sums lanes 0..31 of f = t/2 (upper lanes add their own values,
        // which only lane 0's final sum does not see)
        float fs[32];
        for (int l = 0; l < 32; l++) fs[l] = (float)(w + l) * 0.5f;
        for (int m = 1; m < 32; m <<= 1) {
            float nx[32];
            for (int l = 0; l < 32; l++) nx[l] = fs[l] + (l + m < 32 ? fs[l + m] : fs[l]);
            memcpy(fs, nx, sizeof(fs));
        }
        e[16] = lane == 0 ? (int)fs[0] : 0;
        e[17] = (n + 2) / 3; // t % 3 == 0 for t in 0..63
        for (int k = 0; k < N_SHFL; k++)
            if (o[t * N_SHFL + k] != e[k] && bad++ < 10)
                printf("FAIL shuffles: thread %d result %d: %d, expected %d\n", t, k, o[t * N_SHFL + k], e[k]);
    }
    CHECK(bad == 0, "%d shuffle results differ", bad);
    // the same in reverse and shuffled order
    const char *orders[] = {"reverse", "shuffle"};
    for (const char *ord : orders) {
        set_order(ord);
        QMC_LAUNCH(k_shuffles, 1, n, 0)(d);
        CHECK(cudaGetLastError() == cudaSuccess, "shuffle launch (%s)", ord);
        CHECK(from_dev(d, n * N_SHFL) == o, "shuffle results differ in %s order", ord);
    }
    set_order(nullptr);
    cudaFree(d);
}

static void test_races() {
    const int nb = 3, n = 128;
    int *d = dev_alloc<int>(nb * n);
    std::vector<int> expect(nb * n);
    for (int b = 0; b < nb; b++)
        for (int t = 0; t < n; t++) expect[b * n + t] = b * 1000 + (t + 1) % n;
    std::vector<int> racy[2], fixed[2];
    const char *orders[2] = {"forward", "reverse"};
    for (int k = 0; k < 2; k++) {
        set_order(orders[k]);
        QMC_LAUNCH(k_neighbour, nb, n, 0)(d, 0);
        racy[k] = from_dev(d, nb * n);
        QMC_LAUNCH(k_neighbour, nb, n, 0)(d, 1);
        fixed[k] = from_dev(d, nb * n);
    }
    CHECK(racy[0] != racy[1], "the racy kernel (no __syncthreads) gives the same result in forward and reverse order");
    // forward: thread t reads slot t+1 before thread t+1 writes it (only the last thread, reading
    // slot 0, sees a new value); reverse: every thread but the last sees the new value
    int new_fwd = 0, new_rev = 0;
    for (int i = 0; i < nb * n; i++) {
        new_fwd += racy[0][i] == expect[i];
        new_rev += racy[1][i] == expect[i];
    }
    CHECK(new_fwd == nb, "forward order: %d threads read new values, expected %d", new_fwd, nb);
    CHECK(new_rev == nb * (n - 1), "reverse order: %d threads read new values, expected %d", new_rev, nb * (n - 1));
    CHECK(fixed[0] == fixed[1] && fixed[0] == expect, "the kernel with __syncthreads differs between orders");
    // shuffle: deterministic per seed; the correct kernel is right under every seed
    set_order("shuffle");
    bool all_right = true;
    std::vector<int> first;
    for (int seed = 1; seed <= 4; seed++) {
        char sbuf[16];
        snprintf(sbuf, sizeof(sbuf), "%d", seed);
        setenv("QMC_SIMT_SEED", sbuf, 1);
        QMC_LAUNCH(k_neighbour, nb, n, 0)(d, 1);
        all_right = all_right && from_dev(d, nb * n) == expect;
    }
    CHECK(all_right, "the kernel with __syncthreads is wrong in a shuffled order");
    unsetenv("QMC_SIMT_SEED");
    set_order(nullptr);
    cudaFree(d);
}

static void test_launch_errors() {
    int *d = dev_alloc<int>(128);
    cudaStream_t st;
    CHECK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking) == cudaSuccess, "stream");
    fprintf(stderr, "simt test: the next launch failures are expected\n");

    QMC_LAUNCH(k_shfl_exited, 1, 32, st)(d);
    CHECK(cudaGetLastError() == cudaErrorLaunchFailure, "a shuffle from an exited lane is not reported");
    CHECK(cudaGetLastError() == cudaSuccess, "cudaGetLastError does not reset the error");
    CHECK(cudaStreamSynchronize(st) == cudaErrorLaunchFailure, "the stream's next synchronization misses the failure");
    CHECK(cudaStreamSynchronize(st) == cudaSuccess, "the stream's failure is reported twice");
    cudaGetLastError();

    QMC_LAUNCH(k_shfl_not_in_mask, 1, 32, 0)(d);
    CHECK(cudaPeekAtLastError() == cudaErrorLaunchFailure, "a shuffle from a lane outside the mask is not reported");
    CHECK(cudaPeekAtLastError() == cudaErrorLaunchFailure, "cudaPeekAtLastError resets the error");
    cudaGetLastError();

    QMC_LAUNCH(k_mixed_barriers, 1, 64, 0)(d);
    CHECK(cudaGetLastError() == cudaErrorLaunchFailure, "lanes of a warp at a block and a warp barrier: no deadlock reported");

    QMC_LAUNCH(k_bad_mask, 1, 32, 0)(d);
    CHECK(cudaGetLastError() == cudaErrorLaunchFailure, "a lane outside its own mask is not reported");
    fprintf(stderr, "simt test: end of the expected launch failures\n");

    // after failures the emulator works again; exited threads do not hold a barrier
    QMC_LAUNCH(k_exit_then_sync, 1, 128, 0)(d);
    CHECK(cudaGetLastError() == cudaSuccess, "threads that exited before __syncthreads block it");
    std::vector<int> o = from_dev(d, 100);
    bool ok = true;
    for (int t = 0; t < 100; t++) ok = ok && o[t] == (99 - t) * 2;
    CHECK(ok, "exit-then-sync results");

    // invalid configurations: nothing runs, cudaErrorInvalidConfiguration
    fprintf(stderr, "simt test: the next invalid configurations are expected\n");
    QMC_LAUNCH(k_fill, 1, 1, 0)(d, 7);
    CHECK(cudaGetLastError() == cudaSuccess, "k_fill");
    const dim3 bad_blocks[] = {dim3(1025), dim3(32, 33), dim3(1, 1, 65), dim3(0)};
    for (const dim3 &b : bad_blocks) {
        QMC_LAUNCH(k_fill, 1, b, 0)(d, 9);
        CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration, "block (%u,%u,%u) accepted", b.x, b.y, b.z);
    }
    const dim3 bad_grids[] = {dim3(1, 70000), dim3(1, 1, 70000), dim3(0), dim3(0x80000000u)};
    for (const dim3 &g : bad_grids) {
        QMC_LAUNCH(k_fill, g, 1, 0)(d, 9);
        CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration, "grid (%u,%u,%u) accepted", g.x, g.y, g.z);
    }
    fprintf(stderr, "simt test: end of the expected invalid configurations\n");
    CHECK(from_dev(d, 1)[0] == 7, "a launch with an invalid configuration ran");
    QMC_LAUNCH(k_fill, dim3(1, 65535, 1), 1, 0)(d, 9);
    CHECK(cudaGetLastError() == cudaSuccess, "grid.y 65535 refused");
    int *d1024 = dev_alloc<int>(1024);
    QMC_LAUNCH(k_fill, 1, dim3(1024), 0)(d1024, 9);
    CHECK(cudaGetLastError() == cudaSuccess, "1024 threads refused");
    CHECK(from_dev(d1024, 1024)[1023] == 9, "1024 threads");
    cudaFree(d1024);
    cudaStreamDestroy(st);
    cudaFree(d);
}

static void test_coords_and_args() {
    const dim3 g(2, 3, 4), b(4, 2, 3);
    const int total = 2 * 3 * 4 * 4 * 2 * 3;
    int *d = dev_alloc<int>(total * 2);
    QMC_LAUNCH(k_coords, g, b, 0)(d);
    std::vector<int> o = from_dev(d, total * 2);
    int bad = 0, i = 0;
    for (unsigned bz = 0; bz < g.z; bz++)
        for (unsigned by = 0; by < g.y; by++)
            for (unsigned bx = 0; bx < g.x; bx++)
                for (unsigned tz = 0; tz < b.z; tz++)
                    for (unsigned ty = 0; ty < b.y; ty++)
                        for (unsigned tx = 0; tx < b.x; tx++, i++)
                            bad += o[i * 2] != (int)(bx | by << 8 | bz << 16) || o[i * 2 + 1] != (int)(tx | ty << 8 | tz << 16);
    CHECK(bad == 0, "3D grid/block coordinates: %d threads wrong", bad);
    cudaFree(d);

    float *f = dev_alloc<float>(8);
    const int n_int = 5; // int -> size_t
    QMC_LAUNCH(k_args, 1, 32, 0)(n_int, NULL, f, 3, pair_arg{4, 2}, make_uint2(1, 2));
    CHECK(from_dev(f, 1)[0] == 5.0f + 30.0f + 402.0f + 3.0f, "kernel arguments: %g", from_dev(f, 1)[0]);
    float4 *in = dev_alloc<float4>(1);
    const float4 v = make_float4(4.0f, 0.0f, 3.0f, 2.0f);
    cudaMemcpy(in, &v, sizeof(v), cudaMemcpyHostToDevice);
    QMC_LAUNCH(k_math, 1, 1, 0)(in, f);
    std::vector<float> m = from_dev(f, 8);
    CHECK(m[0] == 0.5f && m[1] == 1.0f && m[2] == 1.5f && m[3] == 0.5f && m[4] == 4.0f + 2.0f + 3.0f && m[5] == 36.0f &&
          m[6] == 3.0f && m[7] == 10.0f, "math: %g %g %g %g %g %g %g %g", m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7]);
    cudaFree(in);
    cudaFree(f);
}

static int g_host_calls = 0;
static void host_fn(void *p) { ++*static_cast<int *>(p); }

static void test_graphs() {
    cudaStream_t st;
    CHECK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking) == cudaSuccess, "stream");
    float *h_in = nullptr, *h_out = nullptr;
    cudaMallocHost(&h_in, 64 * sizeof(float));
    cudaMallocHost(&h_out, 64 * sizeof(float));
    float *d_in = dev_alloc<float>(64), *d_out = dev_alloc<float>(64);
    for (int i = 0; i < 64; i++) h_in[i] = 1.0f, h_out[i] = -1.0f;
    cudaMemset(d_out, 0, 64 * sizeof(float));

    cublasHandle_t blas;
    CHECK(cublasCreate(&blas) == CUBLAS_STATUS_SUCCESS, "cublasCreate");
    cublasSetStream(blas, st);
    float *dA = dev_alloc<float>(4), *dB = dev_alloc<float>(2), *dC = dev_alloc<float>(2);
    const std::vector<float> A = {1, 2, 3, 4}, B = {5, 6};
    to_dev(dA, A);
    to_dev(dB, B);
    cudaMemset(dC, 0, 2 * sizeof(float));
    const float one = 1.0f, zero = 0.0f;

    g_host_calls = 0;
    CHECK(cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal) == cudaSuccess, "begin capture");
    cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
    CHECK(cudaStreamIsCapturing(st, &cs) == cudaSuccess && cs == cudaStreamCaptureStatusActive, "capturing status");
    CHECK(cudaMemcpyAsync(d_in, h_in, 64 * sizeof(float), cudaMemcpyHostToDevice, st) == cudaSuccess, "capture memcpy");
    QMC_LAUNCH(k_add, 1, 64, st)(d_in, d_out, 64, 1.0f);
    CHECK(cudaGetLastError() == cudaSuccess, "capture launch");
    CHECK(cudaMemcpyAsync(h_out, d_out, 64 * sizeof(float), cudaMemcpyDeviceToHost, st) == cudaSuccess, "capture memcpy back");
    CHECK(cudaLaunchHostFunc(st, host_fn, &g_host_calls) == cudaSuccess, "capture host function");
    CHECK(cublasGemmEx(blas, CUBLAS_OP_N, CUBLAS_OP_N, 2, 1, 2, &one, dA, CUDA_R_32F, 2, dB, CUDA_R_32F, 2, &zero, dC,
                       CUDA_R_32F, 2, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS, "capture GEMM");
    cudaGraph_t graph = nullptr;
    CHECK(cudaStreamEndCapture(st, &graph) == cudaSuccess && graph, "end capture");
    size_t n_nodes = 0;
    cudaGraphGetNodes(graph, nullptr, &n_nodes);
    CHECK(n_nodes == 5, "the graph has %zu nodes, expected 5", n_nodes);
    CHECK(h_out[0] == -1.0f && g_host_calls == 0 && from_dev(d_out, 1)[0] == 0.0f && from_dev(dC, 1)[0] == 0.0f,
          "work ran during capture");
    cudaGraphExec_t exec = nullptr;
    CHECK(cudaGraphInstantiate(&exec, graph, 0ULL) == cudaSuccess && exec, "instantiate");
    CHECK(cudaGraphLaunch(exec, st) == cudaSuccess, "graph launch 1");
    CHECK(cudaStreamSynchronize(st) == cudaSuccess, "sync 1");
    CHECK(h_out[0] == 2.0f && h_out[63] == 2.0f && g_host_calls == 1, "replay 1: %g, %d host calls", h_out[0], g_host_calls);
    std::vector<float> c = from_dev(dC, 2);
    CHECK(c[0] == 1 * 5 + 3 * 6 && c[1] == 2 * 5 + 4 * 6, "replayed GEMM: %g %g", c[0], c[1]);
    for (int i = 0; i < 64; i++) h_in[i] = 10.0f; // the memcpy node reads the pinned buffer at replay
    CHECK(cudaGraphLaunch(exec, st) == cudaSuccess, "graph launch 2");
    CHECK(cudaStreamSynchronize(st) == cudaSuccess, "sync 2");
    CHECK(h_out[0] == 11.0f && h_out[63] == 11.0f && g_host_calls == 2, "replay 2: %g (expected 11), %d host calls",
          h_out[0], g_host_calls);
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);

    // synchronous calls during a capture are refused and invalidate it
    fprintf(stderr, "simt test: the next capture errors are expected\n");
    CHECK(cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal) == cudaSuccess, "begin capture 2");
    CHECK(cudaStreamSynchronize(st) == cudaErrorStreamCaptureUnsupported, "cudaStreamSynchronize while capturing");
    CHECK(cudaStreamEndCapture(st, &graph) == cudaErrorStreamCaptureInvalidated && !graph, "invalidated capture");
    CHECK(cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal) == cudaSuccess, "begin capture 3");
    float tmp[4];
    CHECK(cudaMemcpy(tmp, d_out, sizeof(tmp), cudaMemcpyDeviceToHost) == cudaErrorStreamCaptureUnsupported,
          "cudaMemcpy during a global capture");
    void *p = nullptr;
    CHECK(cudaMalloc(&p, 64) == cudaErrorStreamCaptureUnsupported, "cudaMalloc during a global capture");
    CHECK(cudaStreamEndCapture(st, &graph) == cudaErrorStreamCaptureInvalidated && !graph, "invalidated capture 3");
    fprintf(stderr, "simt test: end of the expected capture errors\n");
    CHECK(cudaStreamBeginCapture(st, cudaStreamCaptureModeRelaxed) == cudaSuccess, "begin relaxed capture");
    CHECK(cudaMalloc(&p, 64) == cudaSuccess, "cudaMalloc during a relaxed capture");
    CHECK(cudaStreamEndCapture(st, &graph) == cudaSuccess && graph, "relaxed capture");
    cudaGraphGetNodes(graph, nullptr, &n_nodes);
    CHECK(n_nodes == 0, "empty graph: %zu nodes", n_nodes);
    cudaGraphDestroy(graph);
    cudaFree(p);
    cudaGetLastError();

    cublasDestroy(blas);
    cudaFree(dA);
    cudaFree(dB);
    cudaFree(dC);
    cudaFree(d_in);
    cudaFree(d_out);
    cudaFreeHost(h_in);
    cudaFreeHost(h_out);
    cudaStreamDestroy(st);
}

// values exact in f16 and bf16 (multiples of 1/8 in [-1, 1])
static float exact_val(int i, int salt) { return (float)((i * 7 + salt * 5) % 17 - 8) / 8.0f; }

static void test_conversions() {
    struct { float f; unsigned short h; } cases[] = {
        {1.0f, 0x3c00}, {-2.0f, 0xc000}, {0.5f, 0x3800}, {65504.0f, 0x7bff}, {65520.0f, 0x7c00}, {65519.0f, 0x7bff},
        {0x1p-24f, 0x0001}, {0x1p-25f, 0x0000}, {0x1.8p-25f, 0x0001}, {0x1p-14f, 0x0400}, {1.0f / 3.0f, 0x3555},
        {0.0f, 0x0000}, {-0.0f, 0x8000}, {1e9f, 0x7c00}, {0x1.002p0f, 0x3c00}, {0x1.006p0f, 0x3c02}};
    int bad = 0;
    for (auto &c : cases) {
        const unsigned short h = __half_as_ushort(__float2half(c.f));
        if (h != c.h && bad++ < 5) printf("FAIL f16: %a -> 0x%04x, expected 0x%04x\n", c.f, h, c.h);
    }
    for (unsigned u = 0; u < 0x7c00; u++) {
        const float f = __half2float(__ushort_as_half((unsigned short)u));
        if (__half_as_ushort(__float2half(f)) != u && bad++ < 5) printf("FAIL f16 round trip 0x%04x\n", u);
    }
    CHECK(bad == 0, "f16 conversions: %d wrong", bad);
    CHECK(__bfloat162float(__float2bfloat16(1.0f)) == 1.0f && __float2bfloat16(1.0f).__x == 0x3f80 &&
          __float2bfloat16(0x1.0101p0f).__x == 0x3f81, "bf16 conversions");
}

static void test_gemm() {
    cublasHandle_t h;
    CHECK(cublasCreate(&h) == CUBLAS_STATUS_SUCCESS, "cublasCreate");
    const int m = 5, n = 7, k = 9;
    const cudaDataType types[] = {CUDA_R_32F, CUDA_R_16F, CUDA_R_16BF};
    const char *tnames[] = {"f32", "f16", "bf16"};
    int cases = 0;
    for (int ti = 0; ti < 3; ti++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int bz = 0; bz < 2; bz++) {
                    const cudaDataType t = types[ti];
                    const int ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
                    const int lda = ar + 2, ldb = br + 1, ldc = m + 3;
                    std::vector<float> A((size_t)lda * ac), B((size_t)ldb * bc), C0((size_t)ldc * n);
                    for (size_t i = 0; i < A.size(); i++) A[i] = exact_val((int)i, 1);
                    for (size_t i = 0; i < B.size(); i++) B[i] = exact_val((int)i, 2);
                    for (size_t i = 0; i < C0.size(); i++) C0[i] = bz ? NAN : exact_val((int)i, 3);
                    const size_t es = t == CUDA_R_32F ? 4 : 2;
                    std::vector<unsigned char> Ab(A.size() * es), Bb(B.size() * es);
                    for (size_t i = 0; i < A.size(); i++) {
                        if (t == CUDA_R_32F) memcpy(&Ab[i * 4], &A[i], 4);
                        else {
                            const unsigned short v = t == CUDA_R_16F ? __float2half(A[i]).__x : __float2bfloat16(A[i]).__x;
                            memcpy(&Ab[i * 2], &v, 2);
                        }
                    }
                    for (size_t i = 0; i < B.size(); i++) {
                        if (t == CUDA_R_32F) memcpy(&Bb[i * 4], &B[i], 4);
                        else {
                            const unsigned short v = t == CUDA_R_16F ? __float2half(B[i]).__x : __float2bfloat16(B[i]).__x;
                            memcpy(&Bb[i * 2], &v, 2);
                        }
                    }
                    void *dA = dev_alloc<unsigned char>(Ab.size()), *dB = dev_alloc<unsigned char>(Bb.size());
                    float *dC = dev_alloc<float>(C0.size());
                    cudaMemcpy(dA, Ab.data(), Ab.size(), cudaMemcpyHostToDevice);
                    cudaMemcpy(dB, Bb.data(), Bb.size(), cudaMemcpyHostToDevice);
                    to_dev(dC, C0);
                    const float alpha = 1.5f, beta = bz ? 0.0f : 1.0f;
                    const cublasStatus_t s = cublasGemmEx(h, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                                                          m, n, k, &alpha, dA, t, lda, dB, t, ldb, &beta, dC, CUDA_R_32F,
                                                          ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
                    CHECK(s == CUBLAS_STATUS_SUCCESS, "gemm %s status %d", tnames[ti], (int)s);
                    std::vector<float> C = from_dev(dC, C0.size());
                    int bad = 0;
                    for (int j = 0; j < n; j++)
                        for (int i = 0; i < m; i++) {
                            double acc = 0;
                            for (int l = 0; l < k; l++) {
                                const float a = ta ? A[l + (size_t)i * lda] : A[i + (size_t)l * lda];
                                const float b = tb ? B[j + (size_t)l * ldb] : B[l + (size_t)j * ldb];
                                acc += (double)a * b;
                            }
                            double want = alpha * acc + (beta != 0.0f ? beta * C0[i + (size_t)j * ldc] : 0.0);
                            const float got = C[i + (size_t)j * ldc];
                            if (!(fabs(got - want) <= 1e-6 * (1.0 + fabs(want)))) bad++;
                        }
                    // the padding rows of C are untouched
                    for (int j = 0; j < n; j++)
                        for (int i = m; i < ldc; i++) {
                            const float got = C[i + (size_t)j * ldc], was = C0[i + (size_t)j * ldc];
                            if (!(got == was || (got != got && was != was))) bad++;
                        }
                    CHECK(bad == 0, "gemm %s op(%c,%c) beta %g: %d values differ from the naive loop", tnames[ti],
                          ta ? 'T' : 'N', tb ? 'T' : 'N', beta, bad);
                    cases++;
                    cudaFree(dA);
                    cudaFree(dB);
                    cudaFree(dC);
                }
    CHECK(cases == 24, "gemm cases %d", cases);
    fprintf(stderr, "simt test: the next cuBLAS errors are expected\n");
    float host_c[4];
    const float one = 1.0f;
    float *dX = dev_alloc<float>(4);
    CHECK(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &one, dX, CUDA_R_32F, 2, dX, CUDA_R_32F, 2, &one, host_c,
                       CUDA_R_32F, 2, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_EXECUTION_FAILED,
          "a GEMM into host memory");
    CHECK(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &one, dX, CUDA_R_32F, 1, dX, CUDA_R_32F, 2, &one, dX,
                       CUDA_R_32F, 2, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_INVALID_VALUE, "lda < m");
    CHECK(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &one, dX, CUDA_R_16F, 2, dX, CUDA_R_32F, 2, &one, dX,
                       CUDA_R_32F, 2, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_NOT_SUPPORTED, "mixed types");
    fprintf(stderr, "simt test: end of the expected cuBLAS errors\n");
    cudaGetLastError();
    cudaFree(dX);
    cublasDestroy(h);
}

static void test_guard(const char *self) {
    float *d = dev_alloc<float>(256);
    cudaMemset(d, 0, 256 * sizeof(float));
    float *h = nullptr;
    cudaMallocHost(&h, 16);
    h[0] = 1.0f; // pinned memory is host memory
    CHECK(h[0] == 1.0f, "pinned memory");
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        volatile float v = *(volatile float *)d; // host code reading device memory
        (void)v;
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    const bool guard_on = simt::mem().guard;
    if (guard_on)
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV,
              "host read of device memory: child status 0x%x, expected death by SIGSEGV", status);
    else
        printf("# simt: QMC_SIMT_GUARD=0: the guard test is skipped\n");
    // a kernel reading far past the end of an allocation faults too
    pid = fork();
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        fclose(stderr);
        QMC_LAUNCH(k_add, 1, 1, 0)(d + 256 + 64, d, 1, 0.0f);
        _exit(0);
    }
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV, "kernel read past an allocation: status 0x%x", status);
    // the guard can be turned off: the same read in a child started with QMC_SIMT_GUARD=0
    pid = fork();
    if (pid == 0) {
        setenv("QMC_SIMT_GUARD", "0", 1);
        execl("/proc/self/exe", self, "--guard-off-child", (char *)NULL);
        _exit(127);
    }
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "QMC_SIMT_GUARD=0: host read of device memory: status 0x%x",
          status);
    // device operations still reach it
    QMC_LAUNCH(k_add, 1, 256, 0)(d, d, 256, 2.0f);
    CHECK(from_dev(d, 256)[255] == 2.0f, "kernel on guarded memory");
    cudaFreeHost(h);
    cudaFree(d);
}

static int guard_off_child() {
    float *d = nullptr;
    if (cudaMalloc(&d, 64) != cudaSuccess) return 2;
    cudaMemset(d, 0, 64);
    return *(volatile float *)d == 0.0f ? 0 : 3;
}

static void test_memory() {
    size_t f0 = 0, t0 = 0, f1 = 0, t1 = 0;
    CHECK(cudaMemGetInfo(&f0, &t0) == cudaSuccess, "cudaMemGetInfo");
    const long long mb = simt::env_ll("QMC_SIMT_MEM_MB", 8192);
    CHECK(t0 == (size_t)mb << 20, "total %zu, expected %lld MiB", t0, mb);
    void *p = nullptr;
    CHECK(cudaMalloc(&p, 64 << 20) == cudaSuccess, "cudaMalloc 64 MiB");
    CHECK(cudaMemGetInfo(&f1, &t1) == cudaSuccess && t1 == t0 && f1 <= f0 - (64u << 20), "free %zu -> %zu", f0, f1);
    void *q = nullptr;
    CHECK(cudaMalloc(&q, t0) == cudaErrorMemoryAllocation && !q, "cudaMalloc beyond the limit");
    CHECK(cudaGetLastError() == cudaErrorMemoryAllocation, "last error after a failed cudaMalloc");
    CHECK(cudaFree(p) == cudaSuccess, "cudaFree");
    CHECK(cudaMemGetInfo(&f1, &t1) == cudaSuccess && f1 == f0, "free after cudaFree: %zu, was %zu", f1, f0);
    cudaDeviceProp prop;
    CHECK(cudaGetDeviceProperties(&prop, 0) == cudaSuccess && prop.major == 9 && prop.minor == 0 &&
          prop.multiProcessorCount == 132 && prop.sharedMemPerBlock == 48 * 1024 && prop.maxThreadsPerBlock == 1024 &&
          prop.totalGlobalMem == t0 && !strcmp(prop.name, "qwenmoe SIMT emulator (host)"), "device properties");
    int count = -1, dev = -1;
    CHECK(cudaGetDeviceCount(&count) == cudaSuccess && count == 1, "device count");
    CHECK(cudaGetDevice(&dev) == cudaSuccess && dev == 0 && cudaSetDevice(0) == cudaSuccess, "device 0");
    CHECK(cudaSetDevice(1) == cudaErrorInvalidDevice, "device 1");
    setenv("QMC_SIMT_NODEV", "1", 1);
    CHECK(cudaGetDeviceCount(&count) == cudaErrorNoDevice && count == 0, "QMC_SIMT_NODEV=1");
    unsetenv("QMC_SIMT_NODEV");
    setenv("QMC_SIMT_NODRIVER", "1", 1);
    int drv = -1;
    CHECK(cudaGetDeviceCount(&count) == cudaErrorInsufficientDriver && cudaDriverGetVersion(&drv) == cudaSuccess &&
          drv == 0, "QMC_SIMT_NODRIVER=1");
    unsetenv("QMC_SIMT_NODRIVER");
    CHECK(cudaGetDeviceCount(&count) == cudaSuccess && count == 1, "device back");
    cudaGetLastError();

    // copies: directions are checked against the pointers
    fprintf(stderr, "simt test: the next copy errors are expected\n");
    float *d = dev_alloc<float>(16);
    float host[16] = {0};
    CHECK(cudaMemcpy(host, host + 8, 16, cudaMemcpyDeviceToHost) == cudaErrorInvalidValue, "D2H from host memory");
    CHECK(cudaMemcpy(d, d, 16, cudaMemcpyHostToDevice) == cudaErrorInvalidValue, "H2D from device memory");
    CHECK(cudaMemcpy(host, d, 17 * sizeof(float), cudaMemcpyDeviceToHost) == cudaErrorInvalidValue, "D2H past the end");
    CHECK(cudaMemset(host, 0, 4) == cudaErrorInvalidValue, "cudaMemset of host memory");
    CHECK(cudaFree(host) == cudaErrorInvalidValue, "cudaFree of host memory");
    CHECK(cudaFreeHost(host) == cudaErrorInvalidValue, "cudaFreeHost of unpinned memory");
    fprintf(stderr, "simt test: end of the expected copy errors\n");
    for (int i = 0; i < 16; i++) host[i] = (float)i;
    float *d2 = dev_alloc<float>(16);
    CHECK(cudaMemcpy(d, host, sizeof(host), cudaMemcpyHostToDevice) == cudaSuccess &&
          cudaMemcpy(d2, d, sizeof(host), cudaMemcpyDeviceToDevice) == cudaSuccess &&
          cudaMemcpyAsync(d2 + 8, d, 4 * sizeof(float), cudaMemcpyDefault, 0) == cudaSuccess, "copies");
    float back[16];
    CHECK(cudaMemcpy(back, d2, sizeof(back), cudaMemcpyDefault) == cudaSuccess && back[3] == 3.0f && back[8] == 0.0f &&
          back[11] == 3.0f && back[15] == 15.0f, "copied values");
    // fresh device memory is poisoned (0xff: NaN) unless QMC_SIMT_POISON=0
    float *fresh = dev_alloc<float>(4);
    const float v = from_dev(fresh, 1)[0];
    CHECK(simt::env_ll("QMC_SIMT_POISON", 1) ? v != v : v == 0.0f, "fresh device memory: %g", v);
    cudaFree(fresh);
    cudaFree(d);
    cudaFree(d2);
    cudaGetLastError();
}

static void thread_job(int id, int *bad) {
    cudaStream_t st;
    cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking);
    const int nb = 4;
    std::vector<float> in(nb * 256);
    float *d_in = dev_alloc<float>(in.size()), *d_out = dev_alloc<float>(nb);
    int *d_sh = dev_alloc<int>(64 * N_SHFL);
    *bad = 0;
    for (int it = 0; it < 60; it++) {
        for (size_t i = 0; i < in.size(); i++) in[i] = (float)((i * 13 + it * 7 + id * 1000) % 97);
        cudaMemcpyAsync(d_in, in.data(), in.size() * sizeof(float), cudaMemcpyHostToDevice, st);
        QMC_LAUNCH(k_reduce, nb, 256, st)(d_in, d_out);
        QMC_LAUNCH(k_shuffles, 1, 64, st)(d_sh);
        float out[nb];
        cudaMemcpyAsync(out, d_out, sizeof(out), cudaMemcpyDeviceToHost, st);
        if (cudaStreamSynchronize(st) != cudaSuccess) (*bad)++;
        for (int b = 0; b < nb; b++) {
            float want = 0;
            for (int t = 0; t < 256; t++) want += in[b * 256 + t];
            if (out[b] != want) (*bad)++;
        }
        int s11;
        cudaMemcpy(&s11, d_sh + 11, sizeof(int), cudaMemcpyDeviceToHost);
        int want11 = 0;
        for (int l = 0; l < 32; l++) want11 += l * 7 + 3;
        if (s11 != want11) (*bad)++;
    }
    cudaFree(d_in);
    cudaFree(d_out);
    cudaFree(d_sh);
    cudaStreamDestroy(st);
}

static void test_threads() {
    int bad[2] = {0, 0};
    std::thread a(thread_job, 1, &bad[0]), b(thread_job, 2, &bad[1]);
    a.join();
    b.join();
    CHECK(bad[0] == 0 && bad[1] == 0, "two host threads running kernels at once: %d and %d wrong results", bad[0], bad[1]);
}

static void bench() {
    int *d = dev_alloc<int>(1);
    const int iters = 300, blocks = 4;
    double best_rate = 0, best_bar = 0;
    for (int rep = 0; rep < 3; rep++) {
        uint64_t s0 = simt::switch_count();
        auto t0 = std::chrono::steady_clock::now();
        QMC_LAUNCH(k_bench_syncwarp, blocks, 1024, 0)(iters, d);
        auto t1 = std::chrono::steady_clock::now();
        uint64_t s1 = simt::switch_count();
        QMC_LAUNCH(k_bench_syncthreads, blocks, 1024, 0)(iters, d);
        auto t2 = std::chrono::steady_clock::now();
        uint64_t s2 = simt::switch_count();
        const double r1 = (double)(s1 - s0) / std::chrono::duration<double>(t1 - t0).count();
        const double r2 = (double)(s2 - s1) / std::chrono::duration<double>(t2 - t1).count();
        best_rate = std::max(best_rate, r1);
        best_bar = std::max(best_bar, r2);
    }
    CHECK(from_dev(d, 1)[0] == iters, "bench result");
    printf("# simt: context switches (%s): %.1f M/s through __syncwarp, %.1f M/s through __syncthreads "
           "(%d blocks of 1024 threads, %d barriers each)\n", simt::switch_impl(), best_rate / 1e6, best_bar / 1e6,
           blocks, iters);
    cudaFree(d);
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--guard-off-child")) return guard_off_child();
    if (argc > 1 && !strcmp(argv[1], "--bench")) {
        bench();
        return 0;
    }
    setvbuf(stdout, nullptr, _IOLBF, 0);
    test_conversions();
    test_reduce();
    test_shuffles();
    test_races();
    test_launch_errors();
    test_coords_and_args();
    test_graphs();
    test_gemm();
    test_memory();
    test_guard(argv[0]);
    test_threads();
    bench();
    return qmtest_summary("simt");
}
