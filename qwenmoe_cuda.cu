// qwenmoe_cuda.cu - optional CUDA companion of qwenmoe.h.
//
// When this object is linked into a program that uses qwenmoe.h, its strong qm_cuda_hook()
// replaces the header's weak default, and qm_backend_name() reports "cuda" on a machine with
// a GPU. Without a GPU or driver, probe() says why and everything runs on the CPU.
//
// STATUS: this file holds the hook and the device probe. The expert dispatch kernels are the
// subject of their own issue ("qwenmoe_cuda.cu: CUDA expert dispatch ...") and are not here yet.
//
// Link recipes (Linux, gcc/clang + nvcc):
//   object file:   nvcc -c qwenmoe_cuda.cu -o qwenmoe_cuda.o
//                  cc app.c qwenmoe_cuda.o -lcudart -lstdc++ -lpthread -o app
//                  (the strong definition in the object wins over the weak default)
//   static archive: a weak default already satisfies the reference, so the linker never pulls
//                  the archive member in. Call qm_cuda_register() once from the program (it is a
//                  strong symbol only this file defines), or link with -Wl,--whole-archive.
//   shared library: the executable's own weak definition wins over one in a .so; build the
//                  program with qwenmoe.h's implementation inside the same .so as this object,
//                  or link the object into the executable.
#include <cuda_runtime.h>
#include <stdio.h>
#include <stddef.h>

typedef struct qm_cuda_hooks {
    int abi_version;
    const char *name;
    int (*probe)(char *desc, size_t cap);
} qm_cuda_hooks;
#define QM_CUDA_ABI_VERSION 1  // must match qwenmoe.h

static int qm_cuda_probe(char *desc, size_t cap) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        snprintf(desc, cap, "CUDA unavailable: %s", cudaGetErrorString(e));
        return 0;
    }
    if (n == 0) {
        snprintf(desc, cap, "no CUDA device");
        return 0;
    }
    cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, 0) != cudaSuccess) {
        snprintf(desc, cap, "cannot query CUDA device 0");
        return 0;
    }
    snprintf(desc, cap, "%s (sm_%d%d, %.1f GiB)", p.name, p.major, p.minor,
             (double)p.totalGlobalMem / (1024.0 * 1024.0 * 1024.0));
    return 1;
}

static const qm_cuda_hooks qm_cuda_hooks_impl = {QM_CUDA_ABI_VERSION, "cuda", qm_cuda_probe};

extern "C" const qm_cuda_hooks *qm_cuda_hook(void) { return &qm_cuda_hooks_impl; }

// The anchor for static-archive builds: calling it forces this member to be linked.
extern "C" int qm_cuda_register(void) { return 1; }
