// emu_hook.cu - a qm_cuda_hook() whose moe_eval runs qwenmoe_cuda.cu's kernels emulated on the
// host (tests/cuda/emu.h), so that the whole dispatch - the header's side of the hook, the
// plan, the mat-vec and cuBLAS data flows, the f16 rounding of the GEMM path - can be checked
// inside the real forward pass on a machine without a GPU. test_cuda_gpu.c linked with this
// object instead of qwenmoe_cuda.o is build/cuda/test_cuda_emu (make test-cuda runs it).
// moe_create() checks the description with qwenmoe_cuda.cu's own checks; no device is used.
#define QMC_NO_HOOK
#include "../../qwenmoe_cuda.cu"
#include "emu.h"

struct emu_handle {
    std::mutex mu;
    int n_layer, E, ff, n_expert, K, max_tokens, gemm_min, gemm_f16;
    std::vector<qm_cuda_moe_layer> layers; // the tensors stay in the model's memory
};

static int emu_probe(char *desc, size_t cap) {
    snprintf(desc, cap, "host emulation of qwenmoe_cuda.cu's kernels (tests/cuda/emu_hook.cu, no GPU used)");
    return 1;
}

static void *emu_create(const qm_cuda_moe_desc *d, char *err, size_t cap) {
    emu_handle *h = new (std::nothrow) emu_handle();
    int on = 0;
    if (!h) {
        qmc_errf(err, cap, "out of host memory");
        return NULL;
    }
    h->n_layer = d->n_layer; h->E = d->n_embd; h->ff = d->n_ff_exp; h->n_expert = d->n_expert;
    h->K = d->n_expert_used; h->max_tokens = d->max_tokens;
    if (qmc_gemm_min(&h->gemm_min, err, cap) != 0 || qmc_gemm_type(&h->gemm_f16, err, cap) != 0) {
        delete h;
        return NULL;
    }
    if (h->E % 8 || h->ff % 8) {
        qmc_errf(err, cap, "n_embd %d and n_ff_exp %d must be multiples of 8", h->E, h->ff);
        delete h;
        return NULL;
    }
    h->layers.assign(d->layers, d->layers + d->n_layer);
    for (int il = 0; il < d->n_layer; il++) {
        const qm_cuda_moe_layer *L = &d->layers[il];
        if (!L->gate.data) continue;
        if (qmc_check_tensor(&L->gate, il, "ffn_gate_exps", h->E, h->ff, h->n_expert, err, cap) ||
            qmc_check_tensor(&L->up, il, "ffn_up_exps", h->E, h->ff, h->n_expert, err, cap) ||
            qmc_check_tensor(&L->down, il, "ffn_down_exps", h->ff, h->E, h->n_expert, err, cap)) {
            delete h;
            return NULL;
        }
        on++;
    }
    if (d->log) {
        char msg[160];
        snprintf(msg, sizeof(msg), "CUDA emulation: %d layers, cuBLAS (%s) from %d tokens per expert", on,
                 h->gemm_f16 ? "f16" : "f32", h->gemm_min);
        d->log(d->log_user, QM_LOG_INFO, msg);
    }
    return h;
}

static int emu_eval(void *hv, int il, int T, const float *x, const int32_t *ids, const float *w, float *y, char *err,
                    size_t cap) {
    emu_handle *h = static_cast<emu_handle *>(hv);
    std::lock_guard<std::mutex> lock(h->mu);
    if (il < 0 || il >= h->n_layer || !h->layers[il].gate.data) return qmc_errf(err, cap, "layer %d not here", il);
    if (T <= 0 || T > h->max_tokens) return qmc_errf(err, cap, "%d tokens, expected 1..%d", T, h->max_tokens);
    const qm_cuda_moe_layer &L = h->layers[il];
    const emu_mat g = {L.gate.type, static_cast<const uint8_t *>(L.gate.data), L.gate.row_bytes};
    const emu_mat u = {L.up.type, static_cast<const uint8_t *>(L.up.data), L.up.row_bytes};
    const emu_mat d = {L.down.type, static_cast<const uint8_t *>(L.down.data), L.down.row_bytes};
    int n_mv, n_gemm;
    return emu_moe(g, u, d, h->E, h->ff, h->n_expert, h->K, T, h->gemm_min, h->gemm_f16, x, ids, w, y, &n_mv, &n_gemm,
                   err, cap);
}

static void emu_free(void *h) { delete static_cast<emu_handle *>(h); }

// The real table's ABI and name, the emulated functions.
// (no model_create: the header runs the forward on the CPU and calls emu_eval for the experts)
static const qm_cuda_hooks emu_hooks = {qmc_hooks.abi_version, qmc_hooks.name, emu_probe, emu_create, emu_eval,
                                        emu_free, NULL, NULL, NULL, NULL};

extern "C" const qm_cuda_hooks *qm_cuda_hook(void) { return &emu_hooks; }
