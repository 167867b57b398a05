/* qwenmoe.h - v0.1 - run Qwen3-MoE (and dense Qwen3) GGUF models on a CPU, in one header.

   Do this:
       #define QWENMOE_IMPLEMENTATION
   before you include this file in *one* C or C++ file to create the implementation.

       // in exactly one .c file
       #define QWENMOE_IMPLEMENTATION
       #include "qwenmoe.h"

   Or build an example in one line, with no other flag:
       cc examples/example.c -DQWENMOE_IMPLEMENTATION -o example

   WHAT IT DOES
       - reads GGUF v2/v3 files (mmap, zero copy; plain read; or a caller's memory buffer)
       - dequantizes / quantizes F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q2_K Q3_K Q4_K Q5_K Q6_K
         IQ4_NL IQ4_XS, bit-exact with ggml's reference code
       - runs the Qwen3-MoE forward pass (arch "qwen3moe") and dense Qwen3 (arch "qwen3")
       - byte-level BPE tokenizer (Qwen2 pre-tokenizer, NFC), ChatML chat templates, sampling
       - optional CUDA: link qwenmoe_cuda.o and the forward runs on the GPU (section 7)

   CONFIGURATION (define before including the implementation)
       QWENMOE_STATIC         make every public function static (private copy in one file)
       QM_MALLOC/QM_REALLOC/QM_FREE   override allocation (define all three or none)
       QM_ASSERT(x)           override assert (default: assert from <assert.h>)
       QM_LOG(level, msg)     default log sink when no qm_log_fn is given (default: stderr)
       QWENMOE_NO_THREADS     single-threaded build, no pthreads
       QWENMOE_NO_MMAP        never mmap; files are read into memory
       QWENMOE_USE_LIBM       use <math.h> (link -lm) instead of the built-in float functions

   ERRORS
       Every fallible call returns a qm_result (QM_OK == 0, errors < 0). Calls that can fail
       for a reason worth explaining also take a qm_error*, which (when not NULL) receives a
       message naming the file, key or tensor, what was expected and what was found.
       The library never calls exit() or abort().

   THREADS
       There is no global mutable state. A qm_model is read-only after load and may be shared
       by several qm_contexts; a qm_context must be used by one thread at a time.

   LICENSE: MIT or public domain (Unlicense), your choice - see the end of the file.
*/
#ifndef QWENMOE_H_INCLUDED
#define QWENMOE_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#ifdef QWENMOE_STATIC
#if defined(__GNUC__) || defined(__clang__)
#define QMDEF static __attribute__((unused)) /* a private copy need not use every function */
#else
#define QMDEF static
#endif
#else
#define QMDEF extern
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ===================================================================================== */
/*  Results and errors                                                                   */
/* ===================================================================================== */

typedef enum qm_result {
    QM_OK = 0,
    QM_ERR_INVALID_ARG = -1,  /* a NULL pointer, a negative count, an option out of range   */
    QM_ERR_IO = -2,           /* open/read/mmap failed                                       */
    QM_ERR_FORMAT = -3,       /* the file is not valid GGUF, or a key/tensor is malformed    */
    QM_ERR_UNSUPPORTED = -4,  /* valid, but not something qwenmoe runs (arch, tensor type)   */
    QM_ERR_OOM = -5,          /* an allocation failed, or a size over the configured cap     */
    QM_ERR_NOT_FOUND = -6,    /* a key or tensor that was asked for is absent                */
    QM_ERR_TYPE = -7,         /* a key exists but holds another type than asked for          */
    QM_ERR_CONTEXT_FULL = -8, /* the context has no room for more tokens                     */
    QM_ERR_CANCELLED = -9,    /* a callback asked to stop                                    */
    QM_ERR_BUFFER_SMALL = -10,/* an output buffer is too small                                */
    QM_ERR_BACKEND = -11      /* the GPU backend failed (its message says where and why)      */
} qm_result;

typedef struct qm_error {
    qm_result code;
    char message[512];
} qm_error;

QMDEF const char *qm_result_string(qm_result r);

/* Log levels for qm_log_fn. */
enum { QM_LOG_ERROR = 0, QM_LOG_WARN = 1, QM_LOG_INFO = 2, QM_LOG_DEBUG = 3 };
typedef void (*qm_log_fn)(void *user, int level, const char *message);

/* ===================================================================================== */
/*  Tensor types (the GGML type ids, as stored in GGUF files)                            */
/* ===================================================================================== */

typedef enum qm_type {
    QM_TYPE_F32 = 0, QM_TYPE_F16 = 1, QM_TYPE_Q4_0 = 2, QM_TYPE_Q4_1 = 3,
    QM_TYPE_Q5_0 = 6, QM_TYPE_Q5_1 = 7, QM_TYPE_Q8_0 = 8, QM_TYPE_Q8_1 = 9,
    QM_TYPE_Q2_K = 10, QM_TYPE_Q3_K = 11, QM_TYPE_Q4_K = 12, QM_TYPE_Q5_K = 13,
    QM_TYPE_Q6_K = 14, QM_TYPE_Q8_K = 15, QM_TYPE_IQ2_XXS = 16, QM_TYPE_IQ2_XS = 17,
    QM_TYPE_IQ3_XXS = 18, QM_TYPE_IQ1_S = 19, QM_TYPE_IQ4_NL = 20, QM_TYPE_IQ3_S = 21,
    QM_TYPE_IQ2_S = 22, QM_TYPE_IQ4_XS = 23, QM_TYPE_I8 = 24, QM_TYPE_I16 = 25,
    QM_TYPE_I32 = 26, QM_TYPE_I64 = 27, QM_TYPE_F64 = 28, QM_TYPE_IQ1_M = 29,
    QM_TYPE_BF16 = 30, QM_TYPE_TQ1_0 = 34, QM_TYPE_TQ2_0 = 35, QM_TYPE_MXFP4 = 39,
    QM_TYPE_COUNT = 42
} qm_type;

/* Name ("q4_K"), or NULL for an id ggml does not define. Knows every ggml type, so that an
   unsupported tensor can be named in an error. */
QMDEF const char *qm_type_name(int type);
/* Elements per block and bytes per block; 0 for an unknown id. */
QMDEF int qm_type_block_elems(int type);
QMDEF int qm_type_block_bytes(int type);
/* 1 if qwenmoe can dequantize (and compute with) this type. */
QMDEF int qm_type_supported(int type);
/* Bytes of a row of n elements, or 0 if n is not a whole number of blocks. */
QMDEF size_t qm_type_row_bytes(int type, int64_t n);
/* Row conversions. n must be a multiple of the block size. Both are bit-exact with ggml's
   dequantize_row_* and quantize_row_*_ref. */
QMDEF qm_result qm_dequantize_row(int type, const void *src, float *dst, int64_t n);
QMDEF qm_result qm_quantize_row(int type, const float *src, void *dst, int64_t n);
/* IEEE half and bfloat16 conversions (round to nearest even, as ggml). */
QMDEF float qm_fp16_to_fp32(uint16_t h);
QMDEF uint16_t qm_fp32_to_fp16(float f);
QMDEF float qm_bf16_to_fp32(uint16_t h);
QMDEF uint16_t qm_fp32_to_bf16(float f);

/* ===================================================================================== */
/*  GGUF reader                                                                          */
/* ===================================================================================== */

typedef enum qm_gguf_type {
    QM_GGUF_UINT8 = 0, QM_GGUF_INT8 = 1, QM_GGUF_UINT16 = 2, QM_GGUF_INT16 = 3,
    QM_GGUF_UINT32 = 4, QM_GGUF_INT32 = 5, QM_GGUF_FLOAT32 = 6, QM_GGUF_BOOL = 7,
    QM_GGUF_STRING = 8, QM_GGUF_ARRAY = 9, QM_GGUF_UINT64 = 10, QM_GGUF_INT64 = 11,
    QM_GGUF_FLOAT64 = 12, QM_GGUF_TYPE_COUNT = 13
} qm_gguf_type;

typedef struct qm_gguf qm_gguf;

/* A string inside the file: NOT NUL-terminated. */
typedef struct qm_str {
    const char *ptr;
    uint64_t len;
} qm_str;

typedef struct qm_gguf_tensor {
    qm_str name;
    int type;           /* qm_type id */
    int n_dims;         /* 1..4 */
    int64_t ne[4];      /* ne[0] is the contiguous dimension; unused dims are 1 */
    uint64_t offset;    /* relative to the start of the data section */
    uint64_t nbytes;
    const void *data;   /* points into the mapped file / buffer (zero copy) */
} qm_gguf_tensor;

typedef struct qm_gguf_params {
    int no_mmap;              /* 1: read the file into memory instead of mmap */
    uint64_t max_alloc_bytes; /* cap on memory the reader allocates (0: default 4 GiB) */
} qm_gguf_params;

/* Open a GGUF file (mmap, zero copy; or plain read when mmap is unavailable or no_mmap). */
QMDEF qm_result qm_gguf_open(const char *path, const qm_gguf_params *params, qm_gguf **out,
                             qm_error *err);
/* Parse a GGUF image in the caller's memory. The buffer must be 8-byte aligned (as malloc's
   is) and outlive the qm_gguf. */
QMDEF qm_result qm_gguf_open_memory(const void *data, size_t size, const qm_gguf_params *params,
                                    qm_gguf **out, qm_error *err);
QMDEF void qm_gguf_close(qm_gguf *g);

QMDEF uint32_t qm_gguf_version(const qm_gguf *g);
QMDEF uint32_t qm_gguf_alignment(const qm_gguf *g);
QMDEF const char *qm_gguf_path(const qm_gguf *g); /* "<memory>" for a buffer */
QMDEF uint64_t qm_gguf_file_size(const qm_gguf *g);
QMDEF int qm_gguf_is_mmapped(const qm_gguf *g);

/* Metadata. Keys are looked up by exact name; index functions take 0..n_kv-1. */
QMDEF int64_t qm_gguf_n_kv(const qm_gguf *g);
QMDEF int64_t qm_gguf_find_key(const qm_gguf *g, const char *key); /* -1 if absent */
QMDEF qm_str qm_gguf_key(const qm_gguf *g, int64_t i);
QMDEF qm_gguf_type qm_gguf_kv_type(const qm_gguf *g, int64_t i);
/* For arrays: element type and count. */
QMDEF qm_gguf_type qm_gguf_arr_type(const qm_gguf *g, int64_t i);
QMDEF uint64_t qm_gguf_arr_count(const qm_gguf *g, int64_t i);

/* Typed look-ups by key. Integer getters accept any integer type (and bool) that fits;
   float getters accept f32 and f64. Return QM_ERR_NOT_FOUND / QM_ERR_TYPE with a message. */
QMDEF qm_result qm_gguf_get_i64(const qm_gguf *g, const char *key, int64_t *out, qm_error *err);
QMDEF qm_result qm_gguf_get_u64(const qm_gguf *g, const char *key, uint64_t *out, qm_error *err);
QMDEF qm_result qm_gguf_get_f64(const qm_gguf *g, const char *key, double *out, qm_error *err);
QMDEF qm_result qm_gguf_get_bool(const qm_gguf *g, const char *key, int *out, qm_error *err);
QMDEF qm_result qm_gguf_get_str(const qm_gguf *g, const char *key, qm_str *out, qm_error *err);
/* Value of kv i as integer / float / string (same conversion rules as above). */
QMDEF qm_result qm_gguf_kv_i64(const qm_gguf *g, int64_t i, int64_t *out);
QMDEF qm_result qm_gguf_kv_f64(const qm_gguf *g, int64_t i, double *out);
QMDEF qm_result qm_gguf_kv_str(const qm_gguf *g, int64_t i, qm_str *out);
/* Array elements of kv i: numbers (any numeric element type) and strings. */
QMDEF qm_result qm_gguf_arr_i64(const qm_gguf *g, int64_t i, uint64_t j, int64_t *out);
QMDEF qm_result qm_gguf_arr_f64(const qm_gguf *g, int64_t i, uint64_t j, double *out);
QMDEF qm_result qm_gguf_arr_str(const qm_gguf *g, int64_t i, uint64_t j, qm_str *out);
/* Raw element data of a numeric array (little-endian, packed), NULL otherwise. */
QMDEF const void *qm_gguf_arr_data(const qm_gguf *g, int64_t i);

/* Tensors. */
QMDEF int64_t qm_gguf_n_tensors(const qm_gguf *g);
QMDEF const qm_gguf_tensor *qm_gguf_tensor_at(const qm_gguf *g, int64_t i);
QMDEF const qm_gguf_tensor *qm_gguf_find_tensor(const qm_gguf *g, const char *name);

/* ===================================================================================== */
/*  Tokenizer                                                                            */
/* ===================================================================================== */

typedef struct qm_tokenizer qm_tokenizer;

enum {
    QM_TOKENIZE_SPECIAL = 1 /* match special/control tokens (<|im_start|>, ...) verbatim */
};
enum {
    QM_DETOK_SKIP_SPECIAL = 1 /* leave special/control tokens out of the text */
};
/* GGUF token types (tokenizer.ggml.token_type). */
enum {
    QM_TOKEN_NORMAL = 1, QM_TOKEN_UNKNOWN = 2, QM_TOKEN_CONTROL = 3, QM_TOKEN_USER_DEFINED = 4,
    QM_TOKEN_UNUSED = 5, QM_TOKEN_BYTE = 6
};

/* Load from the tokenizer.ggml.* keys of a GGUF (model "gpt2", pre "qwen2"). */
QMDEF qm_result qm_tokenizer_load(const qm_gguf *g, qm_tokenizer **out, qm_error *err);
QMDEF void qm_tokenizer_free(qm_tokenizer *t);
QMDEF int32_t qm_tokenizer_n_vocab(const qm_tokenizer *t);
/* Encode len bytes of UTF-8 (NFC-normalised first, as Hugging Face does). Returns the number
   of ids; if that is more than cap, nothing past cap is written and the full count is still
   returned, so call again with a bigger buffer. Negative: a qm_result. */
QMDEF int qm_tokenize(const qm_tokenizer *t, const char *text, size_t len, int32_t *ids, int cap,
                      int flags);
/* Raw bytes of one token (the byte-level symbols mapped back to bytes). Returns the length
   (possibly > cap, as above) or a negative qm_result for an id out of range. */
QMDEF int qm_token_to_bytes(const qm_tokenizer *t, int32_t id, char *buf, int cap);
/* Token text as stored in the vocab (byte-level form, e.g. "Ġworld"). */
QMDEF qm_str qm_token_text(const qm_tokenizer *t, int32_t id);
QMDEF int qm_token_type(const qm_tokenizer *t, int32_t id);
/* Id of a token by its vocab text, or -1. */
QMDEF int32_t qm_token_lookup(const qm_tokenizer *t, const char *text, size_t len);
/* Decode ids to UTF-8; invalid sequences become U+FFFD. Returns the byte length (possibly
   > cap; the output is NUL-terminated when it fits). */
QMDEF int64_t qm_detokenize(const qm_tokenizer *t, const int32_t *ids, int n, char *buf,
                            size_t cap, int flags);
/* End-of-generation: eos, eot, <|im_end|>, <|endoftext|>, the FIM end tokens. */
QMDEF int qm_token_is_eog(const qm_tokenizer *t, int32_t id);
QMDEF int32_t qm_token_eos(const qm_tokenizer *t);
QMDEF int32_t qm_token_bos(const qm_tokenizer *t); /* -1 when the model has none */

/* Streaming UTF-8: push token bytes, get only complete characters out; a character split
   across tokens is held back until it is complete. Zero-initialise before use. */
typedef struct qm_utf8_stream {
    unsigned char pending[4];
    int n_pending;
} qm_utf8_stream;
/* Writes at most 3n + 3 bytes to out (each invalid byte becomes a 3-byte U+FFFD); returns
   the count written. */
QMDEF size_t qm_utf8_stream_push(qm_utf8_stream *s, const char *in, size_t n, char *out);
/* Flush what is held back (an incomplete character becomes U+FFFD). Writes at most 3 bytes. */
QMDEF size_t qm_utf8_stream_flush(qm_utf8_stream *s, char *out);

/* ===================================================================================== */
/*  Chat template                                                                        */
/* ===================================================================================== */

typedef struct qm_chat_message {
    const char *role;    /* "system", "user", "assistant", "tool" */
    const char *content;
} qm_chat_message;

typedef enum qm_chat_family {
    QM_CHAT_CHATML = 0,      /* plain ChatML (also the fallback for unknown templates) */
    QM_CHAT_QWEN3 = 1,       /* Qwen3 thinking models: <think> blocks, enable_thinking */
    QM_CHAT_QWEN3_CODER = 2  /* Qwen3-Coder: ChatML, no <think>, XML tool calls */
} qm_chat_family;

/* Recognise a stored tokenizer.chat_template. *known is set to 0 when it was not recognised
   (the caller should warn; ChatML is returned). */
QMDEF qm_chat_family qm_chat_detect(const char *tmpl, size_t len, int *known);
/* Render messages. enable_thinking only matters for QM_CHAT_QWEN3 (0 adds the empty
   <think></think> block, as the template does). Returns the length of the text (possibly
   > cap; NUL-terminated when it fits) or a negative qm_result. */
QMDEF int64_t qm_chat_render(qm_chat_family fam, const qm_chat_message *msgs, int n_msgs,
                             int add_generation_prompt, int enable_thinking, char *buf,
                             size_t cap);

/* ===================================================================================== */
/*  Model, context, evaluation                                                           */
/* ===================================================================================== */

typedef struct qm_model qm_model;
typedef struct qm_context qm_context;

typedef struct qm_hparams {
    char arch[16];          /* "qwen3moe" or "qwen3" */
    int n_vocab;
    int n_ctx_train;
    int n_embd;
    int n_layer;
    int n_head;
    int n_head_kv;
    int head_dim;           /* attention.key_length (128 for 30B-A3B, not n_embd/n_head) */
    int n_rot;
    int n_ff;               /* dense FFN width (dense qwen3) */
    int n_expert;           /* 0 for dense */
    int n_expert_used;
    int n_ff_exp;
    float rope_freq_base;
    float rms_eps;
    int tied_output;        /* output.weight absent: the LM head is token_embd */
    int rope_base_defaulted;/* rope.freq_base absent: 1e6 was used (with a warning) */
} qm_hparams;

typedef struct qm_model_params {
    int no_mmap;              /* read the file instead of mapping it */
    qm_log_fn log;            /* NULL: QM_LOG to stderr for warnings and errors */
    void *log_user;
    int log_level;            /* messages above this level are dropped (0: QM_LOG_WARN) */
    float rope_freq_base;     /* nonzero: use this RoPE base instead of the file's */
    int no_cuda;              /* run on the CPU even when qwenmoe_cuda.o is linked in */
    int cuda_cpu_moe_layers;  /* with CUDA: keep the experts of the first N layers on the CPU
                                 (for models larger than the GPU's memory) */
    int cuda_experts_only;    /* with CUDA: only the routed experts on the GPU, the rest of the
                                 forward on the CPU (stage 1). 0: the whole forward on the GPU
                                 when the linked CUDA object supports it */
    uint64_t max_memory_bytes; /* 0: no cap. Refuse a model whose tensor data and tables would
                                  need more memory than this (mmapped weights count: they become
                                  resident as they are used); it also caps the reader's own
                                  allocations and, with no_mmap, the file that is read. */
} qm_model_params;

QMDEF qm_model_params qm_model_params_default(void);
QMDEF qm_result qm_model_load(const char *path, const qm_model_params *params, qm_model **out,
                              qm_error *err);
/* The buffer must be 8-byte aligned (as malloc's is) and outlive the model. */
QMDEF qm_result qm_model_load_memory(const void *data, size_t size, const qm_model_params *params,
                                     qm_model **out, qm_error *err);
QMDEF void qm_model_free(qm_model *m);
QMDEF const qm_hparams *qm_model_hparams(const qm_model *m);
QMDEF const qm_tokenizer *qm_model_tokenizer(const qm_model *m);
QMDEF const qm_gguf *qm_model_gguf(const qm_model *m);
QMDEF qm_chat_family qm_model_chat_family(const qm_model *m);
/* "cuda" when this model is on the GPU (its experts at least; some layers' experts may stay
   on the CPU), else "cpu". qm_context_backend says how much of a context's forward is there. */
QMDEF const char *qm_model_backend(const qm_model *m);

/* Observation of the one forward pass: called for each layer and stage with the activations
   of the n_tokens rows being evaluated (row-major, dim floats each). Stages: "attn_norm",
   "q_normed", "k_normed", "attn_out", "ffn_norm", "moe_out", "residual", "result_norm";
   "router" passes the chosen experts (ids) and their weights for each token (k per row). */
typedef struct qm_trace_event {
    int layer;              /* -1 for the final norm */
    const char *stage;
    int n_tokens;
    int dim;
    const float *data;      /* n_tokens * dim */
    const int32_t *experts; /* "router" only: n_tokens * k */
    const float *weights;   /* "router" only: n_tokens * k */
    int k;
} qm_trace_event;
typedef void (*qm_trace_fn)(void *user, const qm_trace_event *ev);

enum { QM_KV_F16 = 0, QM_KV_F32 = 1 };

typedef struct qm_context_params {
    int n_ctx;          /* 0: min(4096, n_ctx_train); must be <= n_ctx_train */
    int n_threads;      /* 0: number of online CPUs */
    int n_batch;        /* tokens per forward in prefill (0: 512) */
    int kv_type;        /* QM_KV_F16 (default) or QM_KV_F32 */
    int all_logits;     /* keep logits of every evaluated position, not only the last */
    uint64_t max_memory_bytes; /* 0: no cap. Refuse a context (KV cache and buffers) that would
                                  need more than this */
    qm_trace_fn trace;
    void *trace_user;
} qm_context_params;

QMDEF qm_result qm_context_create(qm_model *m, const qm_context_params *params, qm_context **out,
                                  qm_error *err);
QMDEF void qm_context_free(qm_context *c);
QMDEF int qm_context_n_ctx(const qm_context *c);
QMDEF int qm_context_pos(const qm_context *c);   /* tokens in the KV cache */
/* Where this context's forward runs: "cuda" (the whole forward and the KV cache on the GPU),
   "cuda-experts" (on the CPU, the routed experts on the GPU) or "cpu". */
QMDEF const char *qm_context_backend(const qm_context *c);
/* Forget everything from position pos on (0 clears the context). */
QMDEF qm_result qm_context_truncate(qm_context *c, int pos);
/* Append n tokens and run the forward. Afterwards qm_logits() gives the last token's logits
   (or, with all_logits, every position's). */
QMDEF qm_result qm_eval(qm_context *c, const int32_t *tokens, int n, qm_error *err);
/* Logits of the i-th token of the last qm_eval (i = -1: the last one); n_vocab floats. */
QMDEF const float *qm_logits(const qm_context *c, int i);

/* ===================================================================================== */
/*  Sampling and generation                                                              */
/* ===================================================================================== */

/* Zero-initialised means greedy. */
typedef struct qm_sampler_params {
    float temperature;  /* <= 0: greedy (argmax) */
    int top_k;          /* 0: off */
    float top_p;        /* 0 or >= 1: off */
    float min_p;        /* 0: off */
    uint64_t seed;
} qm_sampler_params;

typedef struct qm_sampler qm_sampler;
QMDEF qm_result qm_sampler_create(const qm_sampler_params *p, int n_vocab, qm_sampler **out);
QMDEF void qm_sampler_free(qm_sampler *s);
QMDEF int32_t qm_sampler_sample(qm_sampler *s, const float *logits);

/* Per-token callback: the token, and the complete UTF-8 text it releases (possibly empty while
   a character is incomplete or text might be the start of a stop string). After the last
   token, one call with token -1 releases any text still held back. Return nonzero to stop. */
typedef int (*qm_token_fn)(void *user, int32_t token, const char *text, size_t len);

typedef struct qm_generate_params {
    int max_tokens;             /* 0: until end-of-generation or a full context */
    qm_sampler_params sampling;
    const char *const *stop;    /* stop strings (not included in the output) */
    int n_stop;
    int ignore_eos;
    int skip_special;           /* do not pass special tokens' text to the callback */
    qm_token_fn on_token;
    void *user;
} qm_generate_params;

typedef enum qm_stop_reason {
    QM_STOP_EOG = 0, QM_STOP_LENGTH = 1, QM_STOP_STRING = 2, QM_STOP_CALLBACK = 3,
    QM_STOP_CONTEXT_FULL = 4
} qm_stop_reason;

typedef struct qm_generate_stats {
    int n_prompt;
    int n_generated;
    qm_stop_reason stop_reason;
    double prefill_seconds;
    double decode_seconds;
} qm_generate_stats;

/* Evaluate the prompt (appended to what the context holds), then sample until a stop. */
QMDEF qm_result qm_generate(qm_context *c, const int32_t *prompt, int n_prompt,
                            const qm_generate_params *p, qm_generate_stats *stats, qm_error *err);

/* ===================================================================================== */
/*  CUDA hook                                                                            */
/* ===================================================================================== */

/* qwenmoe_cuda.cu, when its object is linked in, supplies a strong definition of
   qm_cuda_hook(); this header carries a weak default that returns NULL ("no CUDA"), so the
   same program runs on the CPU without it. These two symbols have C linkage and are never
   static, even under QWENMOE_STATIC, so that the override works. Link recipes (object file,
   static archive with the qm_cuda_register() anchor, shared library) are in qwenmoe_cuda.cu. */
/* One stacked expert tensor as it lies in the file (host memory, usually the mmap):
   n_expert matrices of `rows` rows, each row `cols` values of GGML type `type` stored in
   row_bytes bytes. Expert e, row r starts at data + (e * rows + r) * row_bytes. */
typedef struct qm_cuda_tensor {
    int type;               /* qm_type, the GGML type id */
    int64_t cols, rows, n_expert;
    size_t row_bytes;
    const void *data;
} qm_cuda_tensor;

/* gate and up are [n_expert][n_ff_exp][n_embd]; down is [n_expert][n_embd][n_ff_exp]. A layer
   whose gate.data is NULL keeps its experts on the CPU (qm_model_params.cuda_cpu_moe_layers). */
typedef struct qm_cuda_moe_layer {
    qm_cuda_tensor gate, up, down;
} qm_cuda_moe_layer;

typedef struct qm_cuda_moe_desc {
    int n_layer;            /* entries in layers */
    int n_embd, n_ff_exp, n_expert, n_expert_used;
    int max_tokens;         /* the most tokens one moe_eval call passes (a context's n_batch
                               may be larger: the header splits such batches) */
    const qm_cuda_moe_layer *layers;
    void (*log)(void *user, int level, const char *msg); /* the model's logger */
    void *log_user;
} qm_cuda_moe_desc;

/* Stage 2, the whole forward on the GPU: one layer's tensors besides the experts. The f32
   vectors are host copies (n_embd, head_dim, head_dim, n_embd values). router is
   [n_expert][n_embd] (n_expert 1 as a tensor; absent, data NULL, in a dense model). */
typedef struct qm_cuda_layer {
    const float *attn_norm, *q_norm, *k_norm, *ffn_norm;
    qm_cuda_tensor wq, wk, wv, wo, router;
    qm_cuda_moe_layer experts; /* gate.data NULL: on the CPU, through cpu_moe. A dense model's
                                  ffn_gate/ffn_up/ffn_down, as one expert (n_expert 1). */
} qm_cuda_layer;

typedef struct qm_cuda_model_desc {
    int n_layer, n_embd, n_head, n_head_kv, head_dim, n_vocab;
    int n_expert, n_expert_used;  /* n_expert 0: a dense model (one "expert", weight 1) */
    int n_ff_exp;                 /* the experts' width (a dense model's n_ff) */
    float rms_eps;
    int max_tokens;               /* moe_eval's most tokens per call, as in qm_cuda_moe_desc */
    qm_cuda_tensor tok_embd, output; /* [n_vocab][n_embd]; the same data: a tied LM head */
    const float *output_norm;
    const qm_cuda_layer *layers;
    /* The experts of a layer kept on the CPU: x [T][n_embd], ids and w [T][n_expert_used],
       y [T][n_embd], all host memory; user is ctx_eval's. Returns 0 on success. */
    int (*cpu_moe)(void *user, int layer, int T, const float *x, const int32_t *ids,
                   const float *w, float *y);
    void (*log)(void *user, int level, const char *msg);
    void (*progress)(void *user, int done, int total); /* layers uploaded; may be NULL */
    void *log_user;
} qm_cuda_model_desc;

/* One context's device state: the KV cache (n_ctx positions, f16 or f32) and the buffers for
   n_batch tokens and n_out_max logits rows. rope_cos/rope_sin: the header's RoPE tables,
   [n_ctx][head_dim / 2], copied. */
typedef struct qm_cuda_ctx_desc {
    int n_ctx, n_batch, n_out_max, kv_f32;
    const float *rope_cos, *rope_sin;
} qm_cuda_ctx_desc;

typedef struct qm_cuda_hooks {
    int abi_version;        /* QM_CUDA_ABI_VERSION */
    const char *name;       /* "cuda" */
    /* Returns 1 and a description of the device when a usable GPU is present, 0 with the
       reason (no driver, no device) otherwise. */
    int (*probe)(char *desc, size_t cap);
    /* Uploads the experts of every layer that has them, once, kept in their file types.
       Returns a handle, or NULL with the reason in err. */
    void *(*moe_create)(const qm_cuda_moe_desc *d, char *err, size_t cap);
    /* The routed experts of one layer for T <= max_tokens tokens:
         y[t] = sum_k w[t][k] * down_e( silu(gate_e x[t]) * up_e x[t] ),  e = ids[t][k]
       x and y are host f32 [T][n_embd]; ids and w are [T][n_expert_used]. It may be called
       from several threads at once (one per context). Returns 0, or nonzero with the reason
       in err; the header then computes that call on the CPU. */
    int (*moe_eval)(void *h, int layer, int T, const float *x, const int32_t *ids, const float *w,
                    float *y, char *err, size_t cap);
    void (*moe_free)(void *h); /* frees a handle of moe_create or model_create */
    /* Stage 2 (NULL: not supported; the header then uses moe_create). Uploads the whole
       model; the handle also serves moe_eval (for contexts with a trace callback, which run
       on the CPU). NULL with the reason in err. */
    void *(*model_create)(const qm_cuda_model_desc *d, char *err, size_t cap);
    void *(*ctx_create)(void *h, const qm_cuda_ctx_desc *d, char *err, size_t cap);
    /* T <= n_batch tokens at positions pos..pos+T-1 (the cache holds 0..pos-1); logits of the
       last n_out tokens, [n_out][n_vocab], host memory. user goes to cpu_moe. Returns 0, or
       nonzero with the reason in err; the cache positions from pos on are then undefined. */
    int (*ctx_eval)(void *ctx, const int32_t *tokens, int T, int pos, int n_out, float *logits,
                    void *user, char *err, size_t cap);
    void (*ctx_free)(void *ctx);
} qm_cuda_hooks;
#define QM_CUDA_ABI_VERSION 3

const qm_cuda_hooks *qm_cuda_hook(void);
/* Defined only in qwenmoe_cuda.cu: a program that links the CUDA object from a static archive
   calls it once, so that the linker pulls the object in (a weak default already satisfies
   qm_cuda_hook, so nothing else would). Do not call it without the CUDA object. */
int qm_cuda_register(void);
/* Name of the backend the program will use: "cuda" when the CUDA object is linked in and a
   device is present, else "cpu". desc (optional) receives the device or the reason. */
QMDEF const char *qm_backend_name(char *desc, size_t cap);

#ifdef __cplusplus
}
#endif
#endif /* QWENMOE_H_INCLUDED */

/* ===================================================================================== */
/* ===================================================================================== */
/*                                  IMPLEMENTATION                                       */
/* ===================================================================================== */
/* ===================================================================================== */
#ifdef QWENMOE_IMPLEMENTATION
#ifndef QWENMOE_IMPLEMENTATION_DONE
#define QWENMOE_IMPLEMENTATION_DONE

/* No fused multiply-adds that the code does not ask for. GCC's default (gnu) modes let it fuse
   a * b + c, even across statements and intrinsics, and clang fuses within an expression:
   that changes the last bits of norms, RoPE, the softmax and the expert sums, and with them
   which near-tied token wins. Parity with llama.cpp is measured on the unfused code (a golden
   row failed when built with gcc's defaults), and the quantizers must give ggml's bytes; so
   the implementation turns fusing off for itself, whatever the flags. The kernels' own fmas
   are intrinsics and stay. tests/compile.sh compares the logits of gcc and clang builds, in
   -std=c99 and in their default modes, byte for byte. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#include <limits.h>
#include <errno.h>

#if !defined(_WIN32)
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#include <time.h>
#include <sys/time.h>
#ifndef QWENMOE_NO_MMAP
#include <sys/mman.h>
#if defined(__linux__) && !defined(MADV_HUGEPAGE) && (defined(__x86_64__) || defined(__i386__) || defined(__aarch64__))
/* strict -std=c99 hides madvise and its flags; the Linux value of MADV_HUGEPAGE is fixed */
extern int madvise(void *addr, size_t len, int advice);
#define QM__MADV_HUGEPAGE 14
#elif defined(MADV_HUGEPAGE)
#define QM__MADV_HUGEPAGE MADV_HUGEPAGE
#endif
#endif
#ifndef QWENMOE_NO_THREADS
#include <pthread.h>
#endif
#endif

#if defined(QM_MALLOC) && defined(QM_FREE) && defined(QM_REALLOC)
/* all three given */
#elif !defined(QM_MALLOC) && !defined(QM_FREE) && !defined(QM_REALLOC)
#define QM_MALLOC(sz) malloc(sz)
#define QM_REALLOC(p, sz) realloc(p, sz)
#define QM_FREE(p) free(p)
#else
#error "qwenmoe: define all of QM_MALLOC, QM_REALLOC and QM_FREE, or none"
#endif

#ifndef QM_ASSERT
#include <assert.h>
#define QM_ASSERT(x) assert(x)
#endif

#ifndef QM_LOG
#define QM_LOG(level, msg) fprintf(stderr, "qwenmoe: %s: %s\n", \
    (level) == QM_LOG_ERROR ? "error" : (level) == QM_LOG_WARN ? "warning" : "info", (msg))
#endif

#ifdef QWENMOE_USE_LIBM
#include <math.h>
#endif

#ifdef __cplusplus
#define QM__CAST(T, x) (static_cast<T>(x))
#else
#define QM__CAST(T, x) ((T)(x))
#endif
#define QM__ALLOC(T, n) QM__CAST(T *, QM_MALLOC(sizeof(T) * (size_t)(n)))
#define QM__MIN(a, b) ((a) < (b) ? (a) : (b))
#define QM__CUDA_MAX_TOKENS 512  /* the most tokens one CUDA expert call carries */
#define QM__MAX(a, b) ((a) > (b) ? (a) : (b))

/* ------------------------------------------------------------------------------------- */
/*  Common helpers: errors, checked arithmetic                                           */
/* ------------------------------------------------------------------------------------- */

QMDEF const char *qm_result_string(qm_result r) {
    switch (r) {
    case QM_OK: return "ok";
    case QM_ERR_INVALID_ARG: return "invalid argument";
    case QM_ERR_IO: return "i/o error";
    case QM_ERR_FORMAT: return "malformed file";
    case QM_ERR_UNSUPPORTED: return "unsupported";
    case QM_ERR_OOM: return "out of memory";
    case QM_ERR_NOT_FOUND: return "not found";
    case QM_ERR_TYPE: return "wrong type";
    case QM_ERR_CONTEXT_FULL: return "context full";
    case QM_ERR_CANCELLED: return "cancelled";
    case QM_ERR_BUFFER_SMALL: return "buffer too small";
    case QM_ERR_BACKEND: return "GPU backend failed";
    }
    return "unknown error";
}

#if defined(__GNUC__) || defined(__clang__)
#define QM__PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define QM__PRINTF(a, b)
#endif

/* Fill *err (if any) and return code, so that error paths read `return qm__err(...)`. */
static qm_result qm__err(qm_error *err, qm_result code, const char *fmt, ...) QM__PRINTF(3, 4);
static qm_result qm__err(qm_error *err, qm_result code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->message, sizeof(err->message), fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Overflow-checked size arithmetic: return 0 on overflow. */
static int qm__mul_u64(uint64_t a, uint64_t b, uint64_t *out) {
    if (a != 0 && b > UINT64_MAX / a) return 0;
    *out = a * b;
    return 1;
}
static int qm__add_u64(uint64_t a, uint64_t b, uint64_t *out) {
    if (b > UINT64_MAX - a) return 0;
    *out = a + b;
    return 1;
}

/* Print a possibly non-printable, non-NUL-terminated name safely into a short buffer. */
static const char *qm__safe_name(const char *p, uint64_t len, char *buf, size_t cap) {
    size_t o = 0;
    uint64_t i;
    for (i = 0; i < len && o + 5 < cap; i++) {
        unsigned char ch = QM__CAST(unsigned char, p[i]);
        if (ch >= 0x20 && ch < 0x7f) buf[o++] = QM__CAST(char, ch);
        else { snprintf(buf + o, cap - o, "\\x%02x", ch); o += 4; }
    }
    if (i < len && o + 4 < cap) { buf[o++] = '.'; buf[o++] = '.'; buf[o++] = '.'; }
    buf[o] = 0;
    return buf;
}


/* ------------------------------------------------------------------------------------- */
/*  Float functions without libm                                                         */
/*  The card's one-line build has no -lm, so exp/log/sqrt/sin/cos are computed here in   */
/*  double precision and rounded once: as accurate as glibc's float versions.            */
/* ------------------------------------------------------------------------------------- */

#ifdef QWENMOE_USE_LIBM
static float qm__fabsf(float x) { return fabsf(x); }
static float qm__sqrtf(float x) { return sqrtf(x); }
static double qm__exp(double x) { return exp(x); }
static double qm__log(double x) { return log(x); }
static double qm__sin(double x) { return sin(x); }
static double qm__cos(double x) { return cos(x); }
static float qm__roundf(float x) { return roundf(x); }
#else
static float qm__fabsf(float x) { return x < 0 ? -x : (x == 0 ? 0.0f : x); }

static double qm__pow2i(int k) { /* 2^k for k in [-1022, 1023] */
    union { double d; uint64_t u; } v;
    v.u = QM__CAST(uint64_t, k + 1023) << 52;
    return v.d;
}

static double qm__exp(double x) {
    double r, p, t;
    int k;
    if (x != x) return x;
    if (x > 709.0) return 1e308 * 10.0; /* inf */
    if (x < -745.0) return 0.0;
    /* x = k ln2 + r, |r| <= ln2/2; ln2 split in two so that k*ln2_hi is exact */
    t = x * 1.4426950408889634;
    k = QM__CAST(int, t < 0 ? t - 0.5 : t + 0.5);
    r = (x - k * 0.6931471803691238) - k * 1.9082149292705877e-10;
    /* Taylor series to r^13 with constant coefficients: error < 1e-16 on |r| <= 0.35 */
    p = 1.0 / 6227020800.0;
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    if (k < -1022) return p * qm__pow2i(k + 600) * qm__pow2i(-600);
    if (k > 1023) return p * qm__pow2i(k - 600) * qm__pow2i(600);
    return p * qm__pow2i(k);
}

static double qm__log(double x) {
    union { double d; uint64_t u; } v;
    int e;
    double m, s, s2, sum, term;
    int i;
    if (x != x || x < 0) return (x - x) / (x - x); /* NaN */
    if (x == 0) return -1e308 * 10.0;
    if (x > 1.7976931348623157e308) return x;
    v.d = x;
    e = QM__CAST(int, (v.u >> 52) & 0x7ff);
    if (e == 0) { /* subnormal */
        v.d = x * 18014398509481984.0; /* 2^54 */
        e = QM__CAST(int, (v.u >> 52) & 0x7ff) - 54;
    }
    e -= 1023;
    v.u = (v.u & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL; /* m in [1, 2) */
    m = v.d;
    if (m > 1.4142135623730951) { m *= 0.5; e++; }
    /* log(m) = 2 atanh(s), s = (m-1)/(m+1), |s| < 0.172 */
    s = (m - 1.0) / (m + 1.0);
    s2 = s * s;
    sum = 0.0;
    term = s;
    for (i = 1; i < 40; i += 2) { sum += term / i; term *= s2; }
    return 2.0 * sum + e * 0.6931471805599453;
}

/* sin/cos with reduction by pi/2 in three parts: exact enough for |x| up to ~1e9. */
static double qm__sincos_poly(double r, int cosine) {
    double r2 = r * r, p = 0.0, term;
    int i;
    if (!cosine) {
        term = r; /* r - r^3/3! + ... */
        for (i = 1; i < 24; i += 2) { p += term; term *= -r2 / ((i + 1) * (i + 2)); }
    } else {
        term = 1.0;
        for (i = 0; i < 24; i += 2) { p += term; term *= -r2 / ((i + 1) * (i + 2)); }
    }
    return p;
}
static double qm__sincos(double x, int cosine) {
    double k, r;
    int64_t q;
    if (x != x) return x;
    /* The reduction below (x - k pi/2, pi/2 in three parts) is exact enough while k pi/2 has
       few bits beyond x's; past 2^50 nothing of x mod pi/2 is left in it. Those arguments (and
       infinity) give NaN rather than a made-up value; RoPE angles stay below n_ctx <= 2^24.
       (Fuzz bug: an angle of 1e21 radians was converted to int64, which is undefined.) */
    if (!(x > -1125899906842624.0 && x < 1125899906842624.0)) return (x - x) / (x - x);
    k = x * 0.6366197723675814; /* 2/pi */
    k = k < 0 ? QM__CAST(double, QM__CAST(int64_t, k - 0.5)) : QM__CAST(double, QM__CAST(int64_t, k + 0.5));
    r = ((x - k * 1.5707963267341256) - k * 6.077100506506192e-11) - k * 2.0222662487959506e-21;
    q = QM__CAST(int64_t, k) + (cosine ? 1 : 0); /* cos(x) = sin(x + pi/2) */
    switch (QM__CAST(int, q & 3)) {
    case 0: return qm__sincos_poly(r, 0);
    case 1: return qm__sincos_poly(r, 1);
    case 2: return -qm__sincos_poly(r, 0);
    default: return -qm__sincos_poly(r, 1);
    }
}
static double qm__sin(double x) { return qm__sincos(x, 0); }
static double qm__cos(double x) { return qm__sincos(x, 1); }

static float qm__sqrtf(float xf) {
    double x = xf, y;
    union { double d; uint64_t u; } v;
    int i;
    if (!(xf > 0)) return xf == 0 ? xf : (xf - xf) / (xf - xf); /* 0, or NaN for x < 0 */
    if (xf > 3.4028234663852886e38f) return xf;                 /* +inf */
    v.d = x;
    v.u = (v.u >> 1) + (QM__CAST(uint64_t, 1023) << 51); /* first guess, then Newton */
    y = v.d;
    for (i = 0; i < 6; i++) y = 0.5 * (y + x / y);
    return QM__CAST(float, y);
}

/* roundf: half away from zero. */
static float qm__roundf(float x) {
    float a = qm__fabsf(x), t;
    if (!(a < 8388608.0f)) return x; /* already an integer, inf or NaN */
    t = QM__CAST(float, QM__CAST(int32_t, a));
    if (a - t >= 0.5f) t += 1.0f;
    return x < 0 ? -t : t;
}
#endif

static float qm__expf(float x) { return QM__CAST(float, qm__exp(x)); }
static float qm__logf(float x) { return QM__CAST(float, qm__log(x)); }
static float qm__powf(float a, float b) { return QM__CAST(float, qm__exp(QM__CAST(double, b) * qm__log(a))); }
static float qm__sinf(float x) { return QM__CAST(float, qm__sin(x)); }
static float qm__cosf(float x) { return QM__CAST(float, qm__cos(x)); }

/* ===================================================================================== */
/*  1. gguf                                                                              */
/* ===================================================================================== */

/* A GGUF file is: header (magic, version, counts), key/value metadata, a tensor table, then
   the tensor data, each tensor aligned. Everything here is parsed in place from one byte
   range (a mmap, a read buffer or the caller's memory), so strings and tensor data are
   views into the file. Every count read from the file is capped by the bytes that remain,
   so a hostile header can neither allocate without bound nor make us read past the end. */

#define QM__GGUF_MAGIC 0x46554747u /* "GGUF" read as a little-endian u32 */
#define QM__GGUF_DEFAULT_ALIGNMENT 32u
#define QM__GGUF_MAX_NAME 64u      /* ggml's GGML_MAX_NAME: names are shorter than this */
#define QM__GGUF_MAX_DEPTH 8       /* nesting of arrays in arrays */

typedef struct qm__gguf_kv {
    qm_str key;
    qm_gguf_type type;
    qm_gguf_type arr_type;   /* arrays only */
    uint64_t arr_count;      /* arrays only */
    const uint8_t *val;      /* the value; for arrays, the first element */
    uint64_t *str_offsets;   /* string arrays: offset of element j from val */
} qm__gguf_kv;

struct qm_gguf {
    const uint8_t *data;
    uint64_t size;
    void *map_base;          /* mmap'd region, or NULL */
    void *owned;             /* read() buffer, or NULL */
    char path[256];
    uint32_t version;
    uint32_t alignment;
    int64_t n_kv;
    int64_t n_tensors;
    qm__gguf_kv *kv;
    qm_gguf_tensor *tensors;
    uint64_t data_offset;    /* start of the tensor data section */
    uint64_t alloc_used;
    uint64_t alloc_cap;
};

typedef struct qm__cursor {
    const uint8_t *p;
    uint64_t size;
    uint64_t off;
    qm_gguf *g;
    qm_error *err;
} qm__cursor;

static uint16_t qm__rd16(const uint8_t *p) { return QM__CAST(uint16_t, p[0] | (p[1] << 8)); }
static uint32_t qm__rd32(const uint8_t *p) {
    return QM__CAST(uint32_t, p[0]) | (QM__CAST(uint32_t, p[1]) << 8) |
           (QM__CAST(uint32_t, p[2]) << 16) | (QM__CAST(uint32_t, p[3]) << 24);
}
static uint64_t qm__rd64(const uint8_t *p) {
    return QM__CAST(uint64_t, qm__rd32(p)) | (QM__CAST(uint64_t, qm__rd32(p + 4)) << 32);
}

static qm_result qm__cur_need(qm__cursor *c, uint64_t n, const char *what) {
    if (n > c->size - c->off)
        return qm__err(c->err, QM_ERR_FORMAT,
                       "%s: truncated file: %s needs %llu bytes at offset %llu, but the file "
                       "has only %llu bytes",
                       c->g->path, what, QM__CAST(unsigned long long, n),
                       QM__CAST(unsigned long long, c->off), QM__CAST(unsigned long long, c->size));
    return QM_OK;
}
static qm_result qm__cur_u32(qm__cursor *c, uint32_t *v, const char *what) {
    qm_result r = qm__cur_need(c, 4, what);
    if (r) return r;
    *v = qm__rd32(c->p + c->off);
    c->off += 4;
    return QM_OK;
}
static qm_result qm__cur_u64(qm__cursor *c, uint64_t *v, const char *what) {
    qm_result r = qm__cur_need(c, 8, what);
    if (r) return r;
    *v = qm__rd64(c->p + c->off);
    c->off += 8;
    return QM_OK;
}
static qm_result qm__cur_str(qm__cursor *c, qm_str *s, const char *what) {
    uint64_t len;
    qm_result r = qm__cur_u64(c, &len, what);
    if (r) return r;
    if (len > c->size - c->off)
        return qm__err(c->err, QM_ERR_FORMAT,
                       "%s: %s at offset %llu has length %llu, past the end of the file "
                       "(%llu bytes left)",
                       c->g->path, what, QM__CAST(unsigned long long, c->off - 8),
                       QM__CAST(unsigned long long, len),
                       QM__CAST(unsigned long long, c->size - c->off));
    s->ptr = QM__CAST(const char *, QM__CAST(const void *, c->p + c->off));
    s->len = len;
    c->off += len;
    return QM_OK;
}

static void *qm__gguf_alloc(qm_gguf *g, uint64_t n, uint64_t size, qm_error *err, const char *what) {
    uint64_t bytes;
    void *p;
    if (!qm__mul_u64(n, size, &bytes) || bytes > g->alloc_cap - g->alloc_used) {
        qm__err(err, QM_ERR_OOM,
                "%s: %s would need %llu x %llu bytes, over the reader's memory cap of %llu bytes",
                g->path, what, QM__CAST(unsigned long long, n), QM__CAST(unsigned long long, size),
                QM__CAST(unsigned long long, g->alloc_cap));
        return NULL;
    }
    p = QM_MALLOC(bytes ? QM__CAST(size_t, bytes) : 1);
    if (!p) {
        qm__err(err, QM_ERR_OOM, "%s: out of memory allocating %llu bytes for %s", g->path,
                QM__CAST(unsigned long long, bytes), what);
        return NULL;
    }
    g->alloc_used += bytes;
    return p;
}

static const char *qm__gguf_type_name(uint32_t t) {
    static const char *const names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool",
                                        "string", "array", "u64", "i64", "f64"};
    return t < QM_GGUF_TYPE_COUNT ? names[t] : "invalid";
}
static uint64_t qm__gguf_scalar_size(uint32_t t) {
    switch (t) {
    case QM_GGUF_UINT8: case QM_GGUF_INT8: case QM_GGUF_BOOL: return 1;
    case QM_GGUF_UINT16: case QM_GGUF_INT16: return 2;
    case QM_GGUF_UINT32: case QM_GGUF_INT32: case QM_GGUF_FLOAT32: return 4;
    case QM_GGUF_UINT64: case QM_GGUF_INT64: case QM_GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

/* Skip (and validate) one value of type t; for string arrays of the top level, remember where
   each element is. depth limits arrays of arrays. */
static qm_result qm__gguf_skip_value(qm__cursor *c, uint32_t t, int depth, const char *key) {
    uint64_t sz = qm__gguf_scalar_size(t);
    qm_result r;
    if (sz) {
        r = qm__cur_need(c, sz, key);
        if (r) return r;
        if (t == QM_GGUF_BOOL && c->p[c->off] > 1)
            return qm__err(c->err, QM_ERR_FORMAT, "%s: key '%s': bool value %u at offset %llu is not 0 or 1",
                           c->g->path, key, c->p[c->off], QM__CAST(unsigned long long, c->off));
        c->off += sz;
        return QM_OK;
    }
    if (t == QM_GGUF_STRING) {
        qm_str s;
        return qm__cur_str(c, &s, key);
    }
    if (t == QM_GGUF_ARRAY) {
        uint32_t et;
        uint64_t n, i, esz, bytes;
        if (depth >= QM__GGUF_MAX_DEPTH)
            return qm__err(c->err, QM_ERR_FORMAT, "%s: key '%s': arrays nested deeper than %d",
                           c->g->path, key, QM__GGUF_MAX_DEPTH);
        if ((r = qm__cur_u32(c, &et, key)) || (r = qm__cur_u64(c, &n, key))) return r;
        if (et >= QM_GGUF_TYPE_COUNT)
            return qm__err(c->err, QM_ERR_FORMAT, "%s: key '%s': array element type %u is not a GGUF type (0..12)",
                           c->g->path, key, et);
        esz = qm__gguf_scalar_size(et);
        if (esz) {
            if (!qm__mul_u64(n, esz, &bytes) || bytes > c->size - c->off)
                return qm__err(c->err, QM_ERR_FORMAT,
                               "%s: key '%s': array of %llu x %s runs past the end of the file",
                               c->g->path, key, QM__CAST(unsigned long long, n), qm__gguf_type_name(et));
            if (et == QM_GGUF_BOOL)
                for (i = 0; i < n; i++)
                    if (c->p[c->off + i] > 1)
                        return qm__err(c->err, QM_ERR_FORMAT, "%s: key '%s': bool element %llu is %u, not 0 or 1",
                                       c->g->path, key, QM__CAST(unsigned long long, i), c->p[c->off + i]);
            c->off += bytes;
            return QM_OK;
        }
        /* strings take >= 8 bytes and arrays >= 12, so n is capped by what is left */
        if (n > (c->size - c->off) / 8)
            return qm__err(c->err, QM_ERR_FORMAT,
                           "%s: key '%s': array count %llu cannot fit in the %llu bytes left",
                           c->g->path, key, QM__CAST(unsigned long long, n),
                           QM__CAST(unsigned long long, c->size - c->off));
        for (i = 0; i < n; i++)
            if ((r = qm__gguf_skip_value(c, et, depth + 1, key))) return r;
        return QM_OK;
    }
    return qm__err(c->err, QM_ERR_FORMAT, "%s: key '%s': value type %u is not a GGUF type (0..12)",
                   c->g->path, key, t);
}

/* Duplicate metadata keys (tensors 0) or tensor names (tensors 1): the names sorted, then
   neighbours compared, O(n log n) whatever the names are (a pairwise scan was O(n^2): a few
   MB of keys took minutes). */
static int qm__gguf_str_cmp(const void *a, const void *b) {
    const qm_str *x = QM__CAST(const qm_str *, a), *y = QM__CAST(const qm_str *, b);
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return x->len ? memcmp(x->ptr, y->ptr, (size_t)x->len) : 0;
}
static qm_result qm__gguf_check_dups(qm_gguf *g, int tensors, qm_error *err) {
    uint64_t n = QM__CAST(uint64_t, tensors ? g->n_tensors : g->n_kv), i;
    qm_str *v;
    char name[96];
    qm_result r = QM_OK;
    if (n < 2) return QM_OK;
    v = QM__CAST(qm_str *, qm__gguf_alloc(g, n, sizeof(qm_str), err, "the name index"));
    if (!v) return err ? err->code : QM_ERR_OOM;
    for (i = 0; i < n; i++) v[i] = tensors ? g->tensors[i].name : g->kv[i].key;
    qsort(v, (size_t)n, sizeof(qm_str), qm__gguf_str_cmp);
    for (i = 1; i < n && !r; i++)
        if (qm__gguf_str_cmp(&v[i - 1], &v[i]) == 0)
            r = qm__err(err, QM_ERR_FORMAT, "%s: duplicate %s '%s'", g->path, tensors ? "tensor name" : "metadata key",
                        qm__safe_name(v[i].ptr, v[i].len, name, sizeof(name)));
    QM_FREE(v);
    g->alloc_used -= n * sizeof(qm_str);
    return r;
}

static qm_result qm__gguf_parse(qm_gguf *g, qm_error *err) {
    qm__cursor c;
    uint32_t magic;
    uint64_t n_tensors, n_kv, i;
    char name[96];
    qm_result r;
    c.p = g->data; c.size = g->size; c.off = 0; c.g = g; c.err = err;

    if (g->size < 4 || (magic = qm__rd32(g->data)) != QM__GGUF_MAGIC) {
        char got[16];
        return qm__err(err, QM_ERR_FORMAT, "%s: not a GGUF file: expected magic \"GGUF\", found \"%s\"",
                       g->path, qm__safe_name(QM__CAST(const char *, QM__CAST(const void *, g->data)), g->size < 4 ? g->size : 4, got, sizeof(got)));
    }
    c.off = 4;
    if ((r = qm__cur_u32(&c, &g->version, "version"))) return r;
    if (g->version != 2 && g->version != 3)
        return qm__err(err, QM_ERR_UNSUPPORTED, "%s: GGUF version %u is not supported (expected 2 or 3)",
                       g->path, g->version);
    if ((r = qm__cur_u64(&c, &n_tensors, "tensor count")) || (r = qm__cur_u64(&c, &n_kv, "metadata count")))
        return r;
    /* smallest kv: 8 (key len) + 1 (key) + 4 (type) + 1 (u8); smallest tensor info: 8 + 1 + 4 + 8 + 4 + 8 */
    if (n_kv > (g->size - c.off) / 14)
        return qm__err(err, QM_ERR_FORMAT, "%s: metadata count %llu cannot fit in a file of %llu bytes",
                       g->path, QM__CAST(unsigned long long, n_kv), QM__CAST(unsigned long long, g->size));
    if (n_tensors > (g->size - c.off) / 33)
        return qm__err(err, QM_ERR_FORMAT, "%s: tensor count %llu cannot fit in a file of %llu bytes",
                       g->path, QM__CAST(unsigned long long, n_tensors), QM__CAST(unsigned long long, g->size));
    g->kv = QM__CAST(qm__gguf_kv *, qm__gguf_alloc(g, n_kv, sizeof(qm__gguf_kv), err, "the metadata table"));
    if (!g->kv) return err ? err->code : QM_ERR_OOM;
    memset(g->kv, 0, sizeof(qm__gguf_kv) * (size_t)n_kv);
    g->n_kv = QM__CAST(int64_t, n_kv);

    g->alignment = QM__GGUF_DEFAULT_ALIGNMENT;
    for (i = 0; i < n_kv; i++) {
        qm__gguf_kv *kv = &g->kv[i];
        uint32_t t;
        char what[64];
        snprintf(what, sizeof(what), "metadata key #%llu", QM__CAST(unsigned long long, i));
        if ((r = qm__cur_str(&c, &kv->key, what))) return r;
        qm__safe_name(kv->key.ptr, kv->key.len, name, sizeof(name));
        if ((r = qm__cur_u32(&c, &t, name))) return r;
        if (t >= QM_GGUF_TYPE_COUNT)
            return qm__err(err, QM_ERR_FORMAT, "%s: key '%s': value type %u is not a GGUF type (0..12)",
                           g->path, name, t);
        kv->type = QM__CAST(qm_gguf_type, t);
        if (t == QM_GGUF_ARRAY) {
            uint32_t et;
            uint64_t n, start;
            start = c.off;
            if ((r = qm__cur_u32(&c, &et, name)) || (r = qm__cur_u64(&c, &n, name))) return r;
            kv->arr_type = QM__CAST(qm_gguf_type, et < QM_GGUF_TYPE_COUNT ? et : 0);
            kv->arr_count = n;
            kv->val = c.p + c.off;
            if (et == QM_GGUF_STRING && n <= (c.size - c.off) / 8) {
                uint64_t k;
                kv->str_offsets = QM__CAST(uint64_t *, qm__gguf_alloc(g, n, sizeof(uint64_t), err, name));
                if (!kv->str_offsets) return err ? err->code : QM_ERR_OOM;
                for (k = 0; k < n; k++) {
                    qm_str s;
                    kv->str_offsets[k] = c.off - (uint64_t)(kv->val - c.p);
                    if ((r = qm__cur_str(&c, &s, name))) return r;
                }
                continue;
            }
            c.off = start;
        } else {
            kv->val = c.p + c.off;
        }
        if ((r = qm__gguf_skip_value(&c, t, 0, name))) return r;
        if (kv->key.len == 17 && memcmp(kv->key.ptr, "general.alignment", 17) == 0) {
            int64_t a;
            if (qm_gguf_kv_i64(g, QM__CAST(int64_t, i), &a) != QM_OK)
                return qm__err(err, QM_ERR_FORMAT, "%s: key 'general.alignment' must be an integer, found %s",
                               g->path, qm__gguf_type_name(t));
            /* GGUF requires a multiple of 8; smaller ones would leave f32/f16 tensor data
               misaligned for the kernels' typed loads */
            if (a < 8 || a > (1 << 30) || (a & (a - 1)) != 0)
                return qm__err(err, QM_ERR_FORMAT, "%s: key 'general.alignment' is %lld; expected a power of two >= 8",
                               g->path, QM__CAST(long long, a));
            g->alignment = QM__CAST(uint32_t, a);
        }
    }

    if ((r = qm__gguf_check_dups(g, 0, err))) return r;

    g->tensors = QM__CAST(qm_gguf_tensor *, qm__gguf_alloc(g, n_tensors, sizeof(qm_gguf_tensor), err, "the tensor table"));
    if (!g->tensors) return err ? err->code : QM_ERR_OOM;
    memset(g->tensors, 0, sizeof(qm_gguf_tensor) * (size_t)n_tensors);
    g->n_tensors = QM__CAST(int64_t, n_tensors);
    for (i = 0; i < n_tensors; i++) {
        qm_gguf_tensor *t = &g->tensors[i];
        uint32_t nd, type;
        uint64_t d, nel = 1, rows;
        char what[64];
        int k;
        snprintf(what, sizeof(what), "tensor #%llu name", QM__CAST(unsigned long long, i));
        if ((r = qm__cur_str(&c, &t->name, what))) return r;
        qm__safe_name(t->name.ptr, t->name.len, name, sizeof(name));
        if (t->name.len == 0 || t->name.len >= QM__GGUF_MAX_NAME)
            return qm__err(err, QM_ERR_FORMAT, "%s: tensor #%llu: name '%s' has %llu bytes; expected 1..%u",
                           g->path, QM__CAST(unsigned long long, i), name,
                           QM__CAST(unsigned long long, t->name.len), QM__GGUF_MAX_NAME - 1);
        if ((r = qm__cur_u32(&c, &nd, name))) return r;
        if (nd < 1 || nd > 4)
            return qm__err(err, QM_ERR_FORMAT, "%s: tensor '%s': %u dimensions; expected 1..4", g->path, name, nd);
        t->n_dims = QM__CAST(int, nd);
        for (k = 0; k < 4; k++) t->ne[k] = 1;
        for (k = 0; k < (int)nd; k++) {
            if ((r = qm__cur_u64(&c, &d, name))) return r;
            if (d < 1 || d > (uint64_t)INT64_MAX)
                return qm__err(err, QM_ERR_FORMAT, "%s: tensor '%s': dimension %d is %llu; expected >= 1",
                               g->path, name, k, QM__CAST(unsigned long long, d));
            if (!qm__mul_u64(nel, d, &nel) || nel > (uint64_t)INT64_MAX)
                return qm__err(err, QM_ERR_FORMAT, "%s: tensor '%s': element count overflows", g->path, name);
            t->ne[k] = QM__CAST(int64_t, d);
        }
        if ((r = qm__cur_u32(&c, &type, name))) return r;
        if (type >= QM_TYPE_COUNT || qm_type_block_elems(QM__CAST(int, type)) == 0)
            return qm__err(err, QM_ERR_FORMAT, "%s: tensor '%s': type id %u is not a ggml type",
                           g->path, name, type);
        t->type = QM__CAST(int, type);
        if (t->ne[0] % qm_type_block_elems(t->type) != 0)
            return qm__err(err, QM_ERR_FORMAT,
                           "%s: tensor '%s': row length %lld is not a multiple of %s's block of %d",
                           g->path, name, QM__CAST(long long, t->ne[0]), qm_type_name(t->type),
                           qm_type_block_elems(t->type));
        rows = nel / (uint64_t)t->ne[0];
        if (!qm__mul_u64(QM__CAST(uint64_t, qm_type_row_bytes(t->type, t->ne[0])), rows, &t->nbytes))
            return qm__err(err, QM_ERR_FORMAT, "%s: tensor '%s': byte size overflows", g->path, name);
        if ((r = qm__cur_u64(&c, &t->offset, name))) return r;
        if (t->offset % g->alignment != 0)
            return qm__err(err, QM_ERR_FORMAT, "%s: tensor '%s': offset %llu is not a multiple of the alignment %u",
                           g->path, name, QM__CAST(unsigned long long, t->offset), g->alignment);
    }
    if ((r = qm__gguf_check_dups(g, 1, err))) return r;
    /* the data section starts at the next aligned offset */
    g->data_offset = c.off + (g->alignment - c.off % g->alignment) % g->alignment;
    if (n_tensors > 0 && g->data_offset > g->size)
        return qm__err(err, QM_ERR_FORMAT, "%s: truncated file: the tensor data section would start at %llu, past the end (%llu)",
                       g->path, QM__CAST(unsigned long long, g->data_offset), QM__CAST(unsigned long long, g->size));
    for (i = 0; i < n_tensors; i++) {
        qm_gguf_tensor *t = &g->tensors[i];
        uint64_t end;
        if (!qm__add_u64(g->data_offset, t->offset, &end) || !qm__add_u64(end, t->nbytes, &end) || end > g->size) {
            qm__safe_name(t->name.ptr, t->name.len, name, sizeof(name));
            return qm__err(err, QM_ERR_FORMAT,
                           "%s: tensor '%s': data at offset %llu + %llu bytes ends past the end of the file (%llu bytes)",
                           g->path, name, QM__CAST(unsigned long long, t->offset),
                           QM__CAST(unsigned long long, t->nbytes), QM__CAST(unsigned long long, g->size));
        }
        t->data = g->data + g->data_offset + t->offset;
    }
    return QM_OK;
}

static qm_result qm__gguf_new(const qm_gguf_params *params, const char *path, qm_gguf **out, qm_error *err) {
    qm_gguf *g = QM__ALLOC(qm_gguf, 1);
    if (!g) return qm__err(err, QM_ERR_OOM, "%s: out of memory", path);
    memset(g, 0, sizeof(*g));
    snprintf(g->path, sizeof(g->path), "%s", path);
    g->alloc_cap = params && params->max_alloc_bytes ? params->max_alloc_bytes : (QM__CAST(uint64_t, 4) << 30);
    *out = g;
    return QM_OK;
}

QMDEF qm_result qm_gguf_open_memory(const void *data, size_t size, const qm_gguf_params *params,
                                    qm_gguf **out, qm_error *err) {
    qm_gguf *g;
    qm_result r;
    if (!out) return qm__err(err, QM_ERR_INVALID_ARG, "qm_gguf_open_memory: out is NULL");
    *out = NULL;
    if (!data && size) return qm__err(err, QM_ERR_INVALID_ARG, "qm_gguf_open_memory: data is NULL");
    /* tensor data is handed out in place and read with typed (f16, f32, block) loads; GGUF
       aligns it to a multiple of 8 from the start of the file, so the buffer must be too */
    if ((uintptr_t)data % 8 != 0) /* a C cast: C++ has no static_cast from a pointer */
        return qm__err(err, QM_ERR_INVALID_ARG, "qm_gguf_open_memory: the buffer at %p is not 8-byte aligned "
                       "(tensor data is used in place; copy the image into malloc'd memory)", data);
    if ((r = qm__gguf_new(params, "<memory>", &g, err))) return r;
    g->data = QM__CAST(const uint8_t *, data);
    g->size = size;
    if ((r = qm__gguf_parse(g, err))) { qm_gguf_close(g); return r; }
    *out = g;
    return QM_OK;
}

QMDEF qm_result qm_gguf_open(const char *path, const qm_gguf_params *params, qm_gguf **out,
                             qm_error *err) {
    qm_gguf *g;
    qm_result r;
    FILE *f;
    uint64_t size;
    if (!out || !path) return qm__err(err, QM_ERR_INVALID_ARG, "qm_gguf_open: path or out is NULL");
    *out = NULL;
    if ((r = qm__gguf_new(params, path, &g, err))) return r;
#if !defined(_WIN32)
    {
        int fd = open(path, O_RDONLY);
        struct stat st;
        if (fd < 0) {
            qm_gguf_close(g);
            return qm__err(err, QM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        }
        if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            close(fd);
            qm_gguf_close(g);
            return qm__err(err, QM_ERR_IO, "%s: not a regular file", path);
        }
        size = QM__CAST(uint64_t, st.st_size);
#ifndef QWENMOE_NO_MMAP
        if (!(params && params->no_mmap) && size > 0) {
            void *m = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
            if (m != MAP_FAILED) {
#if defined(QM__MADV_HUGEPAGE)
                /* Ask for 2 MiB page-cache folios, so that pages the file brings in through
                   this mapping are mapped with 2 MiB entries: a forward pass reads weights
                   from all over the file, and with 4 KiB pages the TLB misses cost more than
                   the reads (on a VM with shadow paging: decode 5 tok/s instead of 13 on
                   the 30B-A3B file). No effect where the kernel or file system can't; not
                   an error then. */
                (void)madvise(m, (size_t)size, QM__MADV_HUGEPAGE);
#endif
                g->map_base = m;
                g->data = QM__CAST(const uint8_t *, m);
                g->size = size;
            }
        }
#endif
        close(fd);
    }
#endif
    if (!g->data) { /* plain read fallback */
        size_t got;
        f = fopen(path, "rb");
        if (!f) { qm_gguf_close(g); return qm__err(err, QM_ERR_IO, "%s: cannot open: %s", path, strerror(errno)); }
        if (fseek(f, 0, SEEK_END) != 0 || ftell(f) < 0) {
            fclose(f); qm_gguf_close(g);
            return qm__err(err, QM_ERR_IO, "%s: cannot determine the file size", path);
        }
        size = QM__CAST(uint64_t, ftell(f));
        fseek(f, 0, SEEK_SET);
        if (params && params->max_alloc_bytes && size > params->max_alloc_bytes) {
            fclose(f); qm_gguf_close(g);
            return qm__err(err, QM_ERR_OOM, "%s: reading the file (%llu bytes) into memory exceeds the cap of %llu bytes", path,
                           QM__CAST(unsigned long long, size), QM__CAST(unsigned long long, params->max_alloc_bytes));
        }
        if (size > (uint64_t)(size_t)-1) { fclose(f); qm_gguf_close(g); return qm__err(err, QM_ERR_OOM, "%s: too large to read into memory", path); }
        g->owned = QM_MALLOC(size ? (size_t)size : 1);
        if (!g->owned) { fclose(f); qm_gguf_close(g); return qm__err(err, QM_ERR_OOM, "%s: out of memory reading %llu bytes", path, QM__CAST(unsigned long long, size)); }
        got = size ? fread(g->owned, 1, (size_t)size, f) : 0;
        fclose(f);
        if (got != size) { qm_gguf_close(g); return qm__err(err, QM_ERR_IO, "%s: short read (%llu of %llu bytes)", path, QM__CAST(unsigned long long, got), QM__CAST(unsigned long long, size)); }
        g->data = QM__CAST(const uint8_t *, g->owned);
        g->size = size;
    }
    if ((r = qm__gguf_parse(g, err))) { qm_gguf_close(g); return r; }
    *out = g;
    return QM_OK;
}

QMDEF void qm_gguf_close(qm_gguf *g) {
    int64_t i;
    if (!g) return;
    if (g->kv)
        for (i = 0; i < g->n_kv; i++) QM_FREE(g->kv[i].str_offsets);
    QM_FREE(g->kv);
    QM_FREE(g->tensors);
#if !defined(_WIN32) && !defined(QWENMOE_NO_MMAP)
    if (g->map_base) munmap(g->map_base, (size_t)g->size);
#endif
    QM_FREE(g->owned);
    QM_FREE(g);
}

QMDEF uint32_t qm_gguf_version(const qm_gguf *g) { return g->version; }
QMDEF uint32_t qm_gguf_alignment(const qm_gguf *g) { return g->alignment; }
QMDEF const char *qm_gguf_path(const qm_gguf *g) { return g->path; }
QMDEF uint64_t qm_gguf_file_size(const qm_gguf *g) { return g->size; }
QMDEF int qm_gguf_is_mmapped(const qm_gguf *g) { return g->map_base != NULL; }
QMDEF int64_t qm_gguf_n_kv(const qm_gguf *g) { return g->n_kv; }
QMDEF int64_t qm_gguf_n_tensors(const qm_gguf *g) { return g->n_tensors; }

QMDEF int64_t qm_gguf_find_key(const qm_gguf *g, const char *key) {
    size_t n = strlen(key);
    int64_t i;
    for (i = 0; i < g->n_kv; i++)
        if (g->kv[i].key.len == n && memcmp(g->kv[i].key.ptr, key, n) == 0) return i;
    return -1;
}
QMDEF qm_str qm_gguf_key(const qm_gguf *g, int64_t i) {
    qm_str s = {NULL, 0};
    if (i >= 0 && i < g->n_kv) s = g->kv[i].key;
    return s;
}
QMDEF qm_gguf_type qm_gguf_kv_type(const qm_gguf *g, int64_t i) {
    return i >= 0 && i < g->n_kv ? g->kv[i].type : QM_GGUF_TYPE_COUNT;
}
QMDEF qm_gguf_type qm_gguf_arr_type(const qm_gguf *g, int64_t i) {
    return i >= 0 && i < g->n_kv && g->kv[i].type == QM_GGUF_ARRAY ? g->kv[i].arr_type : QM_GGUF_TYPE_COUNT;
}
QMDEF uint64_t qm_gguf_arr_count(const qm_gguf *g, int64_t i) {
    return i >= 0 && i < g->n_kv && g->kv[i].type == QM_GGUF_ARRAY ? g->kv[i].arr_count : 0;
}

/* Read a scalar of type t at p as int64 (integers and bool) or double (any number). */
static int qm__gguf_num(uint32_t t, const uint8_t *p, int64_t *iv, double *fv, int *is_int) {
    uint64_t u;
    union { uint32_t u; float f; } f32;
    union { uint64_t u; double f; } f64;
    *is_int = 1;
    switch (t) {
    case QM_GGUF_UINT8: case QM_GGUF_BOOL: *iv = p[0]; break;
    case QM_GGUF_INT8: *iv = QM__CAST(int8_t, p[0]); break;
    case QM_GGUF_UINT16: *iv = qm__rd16(p); break;
    case QM_GGUF_INT16: *iv = QM__CAST(int16_t, qm__rd16(p)); break;
    case QM_GGUF_UINT32: *iv = qm__rd32(p); break;
    case QM_GGUF_INT32: *iv = QM__CAST(int32_t, qm__rd32(p)); break;
    case QM_GGUF_UINT64:
        u = qm__rd64(p);
        if (u > (uint64_t)INT64_MAX) { *is_int = 0; *fv = QM__CAST(double, u); *iv = 0; return 2; }
        *iv = QM__CAST(int64_t, u);
        break;
    case QM_GGUF_INT64: *iv = QM__CAST(int64_t, qm__rd64(p)); break;
    case QM_GGUF_FLOAT32: f32.u = qm__rd32(p); *fv = f32.f; *is_int = 0; return 1;
    case QM_GGUF_FLOAT64: f64.u = qm__rd64(p); *fv = f64.f; *is_int = 0; return 1;
    default: return 0;
    }
    *fv = QM__CAST(double, *iv);
    return 1;
}

QMDEF qm_result qm_gguf_kv_i64(const qm_gguf *g, int64_t i, int64_t *out) {
    int64_t iv; double fv; int is_int;
    if (i < 0 || i >= g->n_kv) return QM_ERR_NOT_FOUND;
    if (qm__gguf_num(g->kv[i].type, g->kv[i].val, &iv, &fv, &is_int) != 1 || !is_int) return QM_ERR_TYPE;
    *out = iv;
    return QM_OK;
}
QMDEF qm_result qm_gguf_kv_f64(const qm_gguf *g, int64_t i, double *out) {
    int64_t iv; double fv; int is_int;
    if (i < 0 || i >= g->n_kv) return QM_ERR_NOT_FOUND;
    if (!qm__gguf_num(g->kv[i].type, g->kv[i].val, &iv, &fv, &is_int) || g->kv[i].type == QM_GGUF_BOOL) return QM_ERR_TYPE;
    *out = fv;
    return QM_OK;
}
QMDEF qm_result qm_gguf_kv_str(const qm_gguf *g, int64_t i, qm_str *out) {
    if (i < 0 || i >= g->n_kv) return QM_ERR_NOT_FOUND;
    if (g->kv[i].type != QM_GGUF_STRING) return QM_ERR_TYPE;
    out->len = qm__rd64(g->kv[i].val);
    out->ptr = QM__CAST(const char *, QM__CAST(const void *, g->kv[i].val + 8));
    return QM_OK;
}

static qm_result qm__gguf_lookup(const qm_gguf *g, const char *key, int64_t *idx, qm_error *err) {
    *idx = qm_gguf_find_key(g, key);
    if (*idx < 0) return qm__err(err, QM_ERR_NOT_FOUND, "%s: key '%s' is missing", g->path, key);
    return QM_OK;
}
static qm_result qm__gguf_type_err(const qm_gguf *g, const char *key, int64_t i, const char *want, qm_error *err) {
    return qm__err(err, QM_ERR_TYPE, "%s: key '%s': expected %s, found %s", g->path, key, want,
                   qm__gguf_type_name(g->kv[i].type));
}
QMDEF qm_result qm_gguf_get_i64(const qm_gguf *g, const char *key, int64_t *out, qm_error *err) {
    int64_t i;
    qm_result r = qm__gguf_lookup(g, key, &i, err);
    if (r) return r;
    if (qm_gguf_kv_i64(g, i, out) != QM_OK) return qm__gguf_type_err(g, key, i, "an integer", err);
    return QM_OK;
}
QMDEF qm_result qm_gguf_get_u64(const qm_gguf *g, const char *key, uint64_t *out, qm_error *err) {
    int64_t i, v;
    qm_result r = qm__gguf_lookup(g, key, &i, err);
    if (r) return r;
    if (g->kv[i].type == QM_GGUF_UINT64) { *out = qm__rd64(g->kv[i].val); return QM_OK; }
    if (qm_gguf_kv_i64(g, i, &v) != QM_OK) return qm__gguf_type_err(g, key, i, "an unsigned integer", err);
    if (v < 0)
        return qm__err(err, QM_ERR_TYPE, "%s: key '%s': expected a non-negative integer, found %lld",
                       g->path, key, QM__CAST(long long, v));
    *out = QM__CAST(uint64_t, v);
    return QM_OK;
}
QMDEF qm_result qm_gguf_get_f64(const qm_gguf *g, const char *key, double *out, qm_error *err) {
    int64_t i;
    qm_result r = qm__gguf_lookup(g, key, &i, err);
    if (r) return r;
    if (qm_gguf_kv_f64(g, i, out) != QM_OK) return qm__gguf_type_err(g, key, i, "a number", err);
    return QM_OK;
}
QMDEF qm_result qm_gguf_get_bool(const qm_gguf *g, const char *key, int *out, qm_error *err) {
    int64_t i;
    qm_result r = qm__gguf_lookup(g, key, &i, err);
    if (r) return r;
    if (g->kv[i].type != QM_GGUF_BOOL) return qm__gguf_type_err(g, key, i, "a bool", err);
    *out = g->kv[i].val[0] != 0;
    return QM_OK;
}
QMDEF qm_result qm_gguf_get_str(const qm_gguf *g, const char *key, qm_str *out, qm_error *err) {
    int64_t i;
    qm_result r = qm__gguf_lookup(g, key, &i, err);
    if (r) return r;
    if (qm_gguf_kv_str(g, i, out) != QM_OK) return qm__gguf_type_err(g, key, i, "a string", err);
    return QM_OK;
}

QMDEF const void *qm_gguf_arr_data(const qm_gguf *g, int64_t i) {
    if (i < 0 || i >= g->n_kv || g->kv[i].type != QM_GGUF_ARRAY || !qm__gguf_scalar_size(g->kv[i].arr_type)) return NULL;
    return g->kv[i].val;
}
QMDEF qm_result qm_gguf_arr_i64(const qm_gguf *g, int64_t i, uint64_t j, int64_t *out) {
    int64_t iv; double fv; int is_int;
    const uint8_t *p = QM__CAST(const uint8_t *, qm_gguf_arr_data(g, i));
    if (!p) return QM_ERR_TYPE;
    if (j >= g->kv[i].arr_count) return QM_ERR_INVALID_ARG;
    if (qm__gguf_num(g->kv[i].arr_type, p + j * qm__gguf_scalar_size(g->kv[i].arr_type), &iv, &fv, &is_int) != 1 || !is_int)
        return QM_ERR_TYPE;
    *out = iv;
    return QM_OK;
}
QMDEF qm_result qm_gguf_arr_f64(const qm_gguf *g, int64_t i, uint64_t j, double *out) {
    int64_t iv; double fv; int is_int;
    const uint8_t *p = QM__CAST(const uint8_t *, qm_gguf_arr_data(g, i));
    if (!p) return QM_ERR_TYPE;
    if (j >= g->kv[i].arr_count) return QM_ERR_INVALID_ARG;
    if (!qm__gguf_num(g->kv[i].arr_type, p + j * qm__gguf_scalar_size(g->kv[i].arr_type), &iv, &fv, &is_int))
        return QM_ERR_TYPE;
    *out = fv;
    return QM_OK;
}
QMDEF qm_result qm_gguf_arr_str(const qm_gguf *g, int64_t i, uint64_t j, qm_str *out) {
    const uint8_t *p;
    if (i < 0 || i >= g->n_kv || g->kv[i].type != QM_GGUF_ARRAY || g->kv[i].arr_type != QM_GGUF_STRING) return QM_ERR_TYPE;
    if (j >= g->kv[i].arr_count) return QM_ERR_INVALID_ARG;
    p = g->kv[i].val + g->kv[i].str_offsets[j];
    out->len = qm__rd64(p);
    out->ptr = QM__CAST(const char *, QM__CAST(const void *, p + 8));
    return QM_OK;
}

QMDEF const qm_gguf_tensor *qm_gguf_tensor_at(const qm_gguf *g, int64_t i) {
    return i >= 0 && i < g->n_tensors ? &g->tensors[i] : NULL;
}
QMDEF const qm_gguf_tensor *qm_gguf_find_tensor(const qm_gguf *g, const char *name) {
    size_t n = strlen(name);
    int64_t i;
    for (i = 0; i < g->n_tensors; i++)
        if (g->tensors[i].name.len == n && memcmp(g->tensors[i].name.ptr, name, n) == 0) return &g->tensors[i];
    return NULL;
}

/* ===================================================================================== */
/*  2. quant                                                                             */
/* ===================================================================================== */

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
/*  a*b+c into fused multiply-adds (ggml's x86-64 reference build has none). The pragmas */
/*  at the top of the implementation turn contraction off for all of it: STDC            */
/*  FP_CONTRACT for clang; for gcc, which contracts in GNU modes on FMA targets          */
/*  (-march=native, aarch64), an optimize pragma. -ffast-math overrides this and loses   */
/*  exactness.                                                                           */
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

/* ===================================================================================== */
/*  3. kernels                                                                           */
/* ===================================================================================== */

/* ------------------------------------------------------------------------------------- */
/*  kernels: dot products of a quantized weight row with a quantized activation row      */
/*                                                                                       */
/*  As in ggml, weights are never expanded to f32 for a matrix product. The activation   */
/*  row is quantized once into the format paired with the weight type (qm__act_type):    */
/*      K-quants (Q2_K..Q6_K), IQ4_XS          -> Q8_K  (f32 d, 256 int8, 16 int16 sums)  */
/*      Q8_0, Q4_0, Q5_0, IQ4_NL               -> Q8_0  (fp16 d, 32 int8)                 */
/*      Q4_1, Q5_1                             -> Q8_0S (Q8_0 + the int16 sum of the q)    */
/*      F32, F16, BF16                         -> F32   (weights widened in registers)    */
/*  and every weight block is multiplied with its activation block in integers; the      */
/*  float scales are applied once per block (once per 256-element super-block for the   */
/*  K-quants, whose sub-block scales and mins are integers too: the min term is          */
/*  sum(min_j * bsum_j) with the Q8_K partial sums).                                     */
/*                                                                                       */
/*  Each type has a plain C kernel (qm__dot_<w>_<a>_scalar) that defines the result.      */
/*  SIMD kernels, for every type, are chosen at compile time from the compiler's          */
/*  predefined macros (no run-time dispatch: build with -march=native or the like):      */
/*      x86 AVX2+FMA+F16C: 256-bit kernels; with AVX-VNNI or AVX512-VNNI(+VL) the         */
/*           maddubs/madd pairs become dpbusd/dpwssd;                                     */
/*      x86 AVX-512 F+BW+VL: 512-bit kernels for F16 BF16 Q8_0 Q4_K Q5_K Q6_K (the other  */
/*           types keep the 256-bit ones; F32 too: streaming f32 weights is bound by      */
/*           memory, and 64-byte loads of 32-byte aligned rows split cache lines);        */
/*      aarch64 NEON: 128-bit kernels, sdot with the dot-product extension               */
/*           (-march=armv8.2-a+dotprod and later), an equivalent widening sequence else.  */
/*  They add the same integers and differ from the plain kernels only by float rounding. */
/*  On x86 the Q2_K/Q3_K/Q4_K/Q6_K kernels add their float terms in the order of          */
/*  llama.cpp's own x86 kernels (see qm__mm_q4_K_r16), so that near-ties resolve as there.*/
/*  Prefill on AVX-512 VNNI: Q4_K and Q6_K tiles of 16 weight rows in the vector lanes    */
/*  (qm__mm_q4_K_r16, qm__mm_q6_K_r16), decoded once per tile and used by up to 64 / 32   */
/*  tokens, with the same float order as the single-token kernels.                       */
/*  The activation quantizers give the same bytes on every path. QWENMOE_NO_SIMD forces   */
/*  the plain C code.                                                                    */
/*                                                                                       */
/*  Interface (all private):                                                             */
/*      qm__act_type(wtype)                  activation format for a weight type (-1: none)*/
/*      qm__act_row_bytes(wtype, n)          bytes of one quantized activation row        */
/*      qm__quantize_act(wtype, x, qx, n)    quantize an f32 activation row               */
/*      qm__vec_dot(wtype, n, wrow, qx)      one weight row . one activation row          */
/*      qm__vec_dot_multi(...)               consecutive weight rows . one activation row */
/*      qm__vec_dot_ntok(...)                one weight row . several activation rows     */
/*      qm__matmul_rows(...)                 rows r0..r1 x T tokens: the matmul inner loop */
/*      qm__matmul_rows_ng(..., ng, ...)     the same, the first ng tokens in a dense      */
/*                                           product's order (QM__DENSE_NG)               */
/*      qm__vec_dot_scalar, qm__quantize_act_scalar, qm__vec_dot_variant: the plain C and */
/*           the individual SIMD kernels, for tests and benchmarks                       */
/*  Rows of every quantized type hold whole blocks; F32/F16/BF16 rows may have any n.     */
/*  Weight rows need only the alignment of their block struct (2 bytes; 4 for F32) and    */
/*  activation rows that of theirs (4 bytes for Q8_K and F32): all loads are unaligned.   */
/*  Results are 0 for a weight type without kernels (qm__act_type < 0).                  */
/* ------------------------------------------------------------------------------------- */

#define QM__KERNELS_H 1

#if !defined(QWENMOE_NO_SIMD)
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define QM__X86 1
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#define QM__AVX512 1
#endif
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
#define QM__VNNI 1 /* 256-bit dpbusd/dpwssd through AVX512-VNNI (EVEX) */
#elif defined(__AVXVNNI__)
#define QM__VNNI 2 /* the same through AVX-VNNI (VEX) */
#endif
#if defined(__GNUC__) && !defined(__clang__) && defined(__cplusplus) && defined(QM__AVX512)
/* g++ 12's AVX-512 headers make "undefined" vectors by self-initialization, which -Wall
   reports inside those headers where the intrinsics are inlined (GCC PR 105593) */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#else
#include <immintrin.h>
#endif
#elif defined(__aarch64__) && defined(__ARM_NEON)
#define QM__NEON 1
#include <arm_neon.h>
#endif
#endif

#if defined(_MSC_VER) && !defined(__cplusplus)
#define QM__INLINE __inline
#else
#define QM__INLINE inline
#endif
/* for a helper that must not be a call in a kernel's loop, whatever the inliner's budget */
#if defined(__GNUC__)
#define QM__ALWAYS_INLINE inline __attribute__((always_inline))
#elif defined(_MSC_VER)
#define QM__ALWAYS_INLINE __forceinline
#else
#define QM__ALWAYS_INLINE QM__INLINE
#endif
/* for kernels that need every vector register to themselves */
#if defined(__GNUC__)
#define QM__NOINLINE __attribute__((noinline))
#elif defined(_MSC_VER)
#define QM__NOINLINE __declspec(noinline)
#else
#define QM__NOINLINE
#endif

/* A pointer cast that C++ accepts between unrelated object types. */
#define QM__PTR(T, p) QM__CAST(T, QM__CAST(const void *, (p)))

/* Q8_0S: the activation format of Q4_1/Q5_1, a Q8_0 block plus s = fp16(d * sum(qs)), which
   carries the weight offset term m * sum(a). This is ggml's Q8_1 (d and s in fp16, s from the
   unrounded d): an exact integer sum would be more precise, but the 11-bit rounding of s is
   large enough (5e-4 relative) to show as a gap to llama.cpp on every Q4_1/Q5_1 model. */
#define QM__TYPE_Q8_0S (QM_TYPE_COUNT + 1) /* private id, not a ggml type */
typedef struct qm__block_q8_0s {
    uint16_t d;  /* fp16, as Q8_0 */
    uint16_t s;  /* fp16(d * sum of qs), d before its fp16 rounding */
    int8_t qs[32];
} qm__block_q8_0s;
QM__STATIC_ASSERT(q8_0s, sizeof(qm__block_q8_0s) == 36);

/* Name of the kernel set compiled in (for tools and benchmarks). */
static QM__MAYBE_UNUSED const char *qm__simd_name(void) {
#if defined(QM__AVX512) && defined(QM__VNNI)
    return "avx512+vnni";
#elif defined(QM__AVX512)
    return "avx512";
#elif defined(QM__X86) && defined(QM__VNNI)
    return "avx2+vnni";
#elif defined(QM__X86)
    return "avx2";
#elif defined(QM__NEON) && defined(__ARM_FEATURE_DOTPROD)
    return "neon+dotprod";
#elif defined(QM__NEON)
    return "neon";
#else
    return "scalar";
#endif
}

/* ---- activation formats --------------------------------------------------------------- */

static int qm__act_type(int wtype) {
    switch (wtype) {
    case QM_TYPE_F32: case QM_TYPE_F16: case QM_TYPE_BF16:
        return QM_TYPE_F32;
    case QM_TYPE_Q8_0: case QM_TYPE_Q4_0: case QM_TYPE_Q5_0: case QM_TYPE_IQ4_NL:
        return QM_TYPE_Q8_0;
    case QM_TYPE_Q4_1: case QM_TYPE_Q5_1:
        return QM__TYPE_Q8_0S;
    case QM_TYPE_Q2_K: case QM_TYPE_Q3_K: case QM_TYPE_Q4_K: case QM_TYPE_Q5_K: case QM_TYPE_Q6_K:
    case QM_TYPE_IQ4_XS:
        return QM_TYPE_Q8_K;
    default:
        return -1;
    }
}

/* 0 for an unsupported weight type or an n that is not a whole number of activation blocks. */
static QM__MAYBE_UNUSED size_t qm__act_row_bytes(int wtype, int64_t n) {
    int blck, bytes;
    switch (qm__act_type(wtype)) {
    case QM_TYPE_F32: blck = 1; bytes = 4; break;
    case QM_TYPE_Q8_0: blck = 32; bytes = QM__CAST(int, sizeof(qm__block_q8_0)); break;
    case QM__TYPE_Q8_0S: blck = 32; bytes = QM__CAST(int, sizeof(qm__block_q8_0s)); break;
    case QM_TYPE_Q8_K: blck = QM__QK_K; bytes = QM__CAST(int, sizeof(qm__block_q8_K)); break;
    default: return 0;
    }
    if (n < 0 || n % blck != 0) return 0;
    return QM__CAST(size_t, n / blck) * QM__CAST(size_t, bytes);
}

/* Q8_0S: d and q exactly as qm__quantize_row_q8_0, and the sum of the q (the same float
   arithmetic: no contraction, see the top of the implementation). */
static QM__MAYBE_UNUSED void qm__quantize_row_q8_0s(const float *x, void *vy, int64_t n) {
    qm__block_q8_0s *y = QM__CAST(qm__block_q8_0s *, vy);
    int64_t i, nb = n / 32;
    int j;
    for (i = 0; i < nb; i++, x += 32) {
        float amax = 0.0f, d, id;
        int sum = 0;
        for (j = 0; j < 32; j++) {
            const float a = qm__fabsf(x[j]);
            amax = amax > a ? amax : a;
        }
        d = amax / 127.0f;
        id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = qm_fp32_to_fp16(d);
        for (j = 0; j < 32; j++) {
            y[i].qs[j] = QM__CAST(int8_t, qm__low_i8(qm__ftoi(qm__roundf(x[j] * id))));
            sum += y[i].qs[j];
        }
        y[i].s = qm_fp32_to_fp16(d * QM__CAST(float, sum));
    }
}

/* fp16 -> f32 for block scales, in one instruction where the target has one. */
static QM__INLINE float qm__h2f(uint16_t h) {
#if defined(QM__X86)
    return _cvtsh_ss(h);
#elif defined(QM__NEON)
    return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0);
#else
    return qm_fp16_to_fp32(h);
#endif
}

/* ---- plain C kernels ------------------------------------------------------------------ */

static float qm__dot_f32_f32_scalar(int64_t n, const void *vw, const void *vx) {
    const float *w = QM__CAST(const float *, vw), *x = QM__CAST(const float *, vx);
    float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i;
    int j;
    for (i = 0; i + 8 <= n; i += 8)
        for (j = 0; j < 8; j++) s[j] += w[i + j] * x[i + j];
    for (; i < n; i++) s[0] += w[i] * x[i];
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

static float qm__dot_f16_f32_scalar(int64_t n, const void *vw, const void *vx) {
    const uint16_t *w = QM__CAST(const uint16_t *, vw);
    const float *x = QM__CAST(const float *, vx);
    float s[4] = {0, 0, 0, 0};
    int64_t i;
    int j;
    for (i = 0; i + 4 <= n; i += 4)
        for (j = 0; j < 4; j++) s[j] += qm_fp16_to_fp32(w[i + j]) * x[i + j];
    for (; i < n; i++) s[0] += qm_fp16_to_fp32(w[i]) * x[i];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

static float qm__dot_bf16_f32_scalar(int64_t n, const void *vw, const void *vx) {
    const uint16_t *w = QM__CAST(const uint16_t *, vw);
    const float *x = QM__CAST(const float *, vx);
    float s[4] = {0, 0, 0, 0};
    int64_t i;
    int j;
    for (i = 0; i + 4 <= n; i += 4)
        for (j = 0; j < 4; j++) s[j] += qm_bf16_to_fp32(w[i + j]) * x[i + j];
    for (; i < n; i++) s[0] += qm_bf16_to_fp32(w[i]) * x[i];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

static float qm__dot_q8_0_q8_0_scalar(int64_t n, const void *vw, const void *vx) {
    const qm__block_q8_0 *w = QM__CAST(const qm__block_q8_0 *, vw);
    const qm__block_q8_0 *a = QM__CAST(const qm__block_q8_0 *, vx);
    int64_t i, nb = n / 32;
    float sumf = 0.0f;
    int j;
    for (i = 0; i < nb; i++) {
        int sumi = 0;
        for (j = 0; j < 32; j++) sumi += w[i].qs[j] * a[i].qs[j];
        sumf += QM__CAST(float, sumi) * (qm_fp16_to_fp32(w[i].d) * qm_fp16_to_fp32(a[i].d));
    }
    return sumf;
}

static float qm__dot_q4_0_q8_0_scalar(int64_t n, const void *vw, const void *vx) {
    const qm__block_q4_0 *w = QM__CAST(const qm__block_q4_0 *, vw);
    const qm__block_q8_0 *a = QM__CAST(const qm__block_q8_0 *, vx);
    int64_t i, nb = n / 32;
    float sumf = 0.0f;
    int j;
    for (i = 0; i < nb; i++) {
        int sumi = 0;
        for (j = 0; j < 16; j++) {
            sumi += ((w[i].qs[j] & 0x0f) - 8) * a[i].qs[j];
            sumi += ((w[i].qs[j] >> 4) - 8) * a[i].qs[j + 16];
        }
        sumf += QM__CAST(float, sumi) * (qm_fp16_to_fp32(w[i].d) * qm_fp16_to_fp32(a[i].d));
    }
    return sumf;
}

/* value = d*q + m: sum = d*da*sum(q*a) + m*da*sum(a). */
static float qm__dot_q4_1_q8_0s_scalar(int64_t n, const void *vw, const void *vx) {
    const qm__block_q4_1 *w = QM__CAST(const qm__block_q4_1 *, vw);
    const qm__block_q8_0s *a = QM__CAST(const qm__block_q8_0s *, vx);
    int64_t i, nb = n / 32;
    float sumf = 0.0f;
    int j;
    for (i = 0; i < nb; i++) {
        int sumi = 0;
        for (j = 0; j < 16; j++) {
            sumi += (w[i].qs[j] & 0x0f) * a[i].qs[j];
            sumi += (w[i].qs[j] >> 4) * a[i].qs[j + 16];
        }
        const float da = qm_fp16_to_fp32(a[i].d);
        sumf += (qm_fp16_to_fp32(w[i].d) * da) * QM__CAST(float, sumi) +
                qm_fp16_to_fp32(w[i].m) * qm_fp16_to_fp32(a[i].s);
    }
    return sumf;
}

static float qm__dot_q5_0_q8_0_scalar(int64_t n, const void *vw, const void *vx) {
    const qm__block_q5_0 *w = QM__CAST(const qm__block_q5_0 *, vw);
    const qm__block_q8_0 *a = QM__CAST(const qm__block_q8_0 *, vx);
    int64_t i, nb = n / 32;
    float sumf = 0.0f;
    int j;
    for (i = 0; i < nb; i++) {
        const uint32_t qh = qm__load_u32le(w[i].qh);
        int sumi = 0;
        for (j = 0; j < 16; j++) {
            const int h0 = QM__CAST(int, (qh >> j) & 1u) << 4;
            const int h1 = QM__CAST(int, (qh >> (j + 16)) & 1u) << 4;
            sumi += (((w[i].qs[j] & 0x0f) | h0) - 16) * a[i].qs[j];
            sumi += (((w[i].qs[j] >> 4) | h1) - 16) * a[i].qs[j + 16];
        }
        sumf += QM__CAST(float, sumi) * (qm_fp16_to_fp32(w[i].d) * qm_fp16_to_fp32(a[i].d));
    }
    return sumf;
}

static float qm__dot_q5_1_q8_0s_scalar(int64_t n, const void *vw, const void *vx) {
    const qm__block_q5_1 *w = QM__CAST(const qm__block_q5_1 *, vw);
    const qm__block_q8_0s *a = QM__CAST(const qm__block_q8_0s *, vx);
    int64_t i, nb = n / 32;
    float sumf = 0.0f;
    int j;
    for (i = 0; i < nb; i++) {
        const uint32_t qh = qm__load_u32le(w[i].qh);
        int sumi = 0;
        for (j = 0; j < 16; j++) {
            const int h0 = QM__CAST(int, (qh >> j) & 1u) << 4;
            const int h1 = QM__CAST(int, (qh >> (j + 16)) & 1u) << 4;
            sumi += ((w[i].qs[j] & 0x0f) | h0) * a[i].qs[j];
            sumi += ((w[i].qs[j] >> 4) | h1) * a[i].qs[j + 16];
        }
        const float da = qm_fp16_to_fp32(a[i].d);
        sumf += (qm_fp16_to_fp32(w[i].d) * da) * QM__CAST(float, sumi) +
                qm_fp16_to_fp32(w[i].m) * qm_fp16_to_fp32(a[i].s);
    }
    return sumf;
}

static float qm__dot_iq4_nl_q8_0_scalar(int64_t n, const void *vw, const void *vx) {
    const qm__block_iq4_nl *w = QM__CAST(const qm__block_iq4_nl *, vw);
    const qm__block_q8_0 *a = QM__CAST(const qm__block_q8_0 *, vx);
    int64_t i, nb = n / 32;
    float sumf = 0.0f;
    int j;
    for (i = 0; i < nb; i++) {
        int sumi = 0;
        for (j = 0; j < 16; j++) {
            sumi += qm__kvalues_iq4nl[w[i].qs[j] & 0x0f] * a[i].qs[j];
            sumi += qm__kvalues_iq4nl[w[i].qs[j] >> 4] * a[i].qs[j + 16];
        }
        sumf += QM__CAST(float, sumi) * (qm_fp16_to_fp32(w[i].d) * qm_fp16_to_fp32(a[i].d));
    }
    return sumf;
}

/* Q2_K: 16 groups of 16, x = d*sc*q - dmin*m with 4-bit sc, m. The min term needs only the
   group sums of the activations: sum(m_g * bsum_g). */
static float qm__dot_q2_K_q8_K_scalar(int64_t n, const void *vw, const void *vx) {
    const qm__block_q2_K *w = QM__CAST(const qm__block_q2_K *, vw);
    const qm__block_q8_K *a = QM__CAST(const qm__block_q8_K *, vx);
    int64_t i, nb = n / QM__QK_K;
    float sumf = 0.0f;
    int half, shift, g, l;
    for (i = 0; i < nb; i++) {
        const uint8_t *sc = w[i].scales;
        const int8_t *q8 = a[i].qs;
        int isum = 0, msum = 0;
        for (g = 0; g < 16; g++) msum += a[i].bsums[g] * (sc[g] >> 4);
        for (half = 0; half < 2; half++) {
            const uint8_t *q = w[i].qs + 32 * half;
            for (shift = 0; shift < 8; shift += 2) {
                for (g = 0; g < 2; g++, sc++, q8 += 16) {
                    int s = 0;
                    for (l = 0; l < 16; l++) s += ((q[16 * g + l] >> shift) & 3) * q8[l];
                    isum += (*sc & 0x0f) * s;
                }
            }
        }
        sumf += a[i].d * qm_fp16_to_fp32(w[i].d) * QM__CAST(float, isum) -
                a[i].d * qm_fp16_to_fp32(w[i].dmin) * QM__CAST(float, msum);
    }
    return sumf;
}

/* Q3_K: 16 groups of 16, q = low2 - (hmask bit ? 0 : 4), signed 6-bit group scales. */
static float qm__dot_q3_K_q8_K_scalar(int64_t n, const void *vw, const void *vx) {
    const qm__block_q3_K *w = QM__CAST(const qm__block_q3_K *, vw);
    const qm__block_q8_K *a = QM__CAST(const qm__block_q8_K *, vx);
    int64_t i, nb = n / QM__QK_K;
    float sumf = 0.0f;
    int half, shift, g, l, is;
    for (i = 0; i < nb; i++) {
        const int8_t *q8 = a[i].qs;
        unsigned m = 1;
        int isum = 0;
        is = 0;
        for (half = 0; half < 2; half++) {
            const uint8_t *q = w[i].qs + 32 * half;
            for (shift = 0; shift < 8; shift += 2, m <<= 1) {
                for (g = 0; g < 2; g++, is++, q8 += 16) {
                    int s = 0;
                    for (l = 0; l < 16; l++) {
                        const int v = ((q[16 * g + l] >> shift) & 3) - ((w[i].hmask[16 * g + l] & m) ? 0 : 4);
                        s += v * q8[l];
                    }
                    isum += qm__q3_K_scale(w[i].scales, is) * s;
                }
            }
        }
        sumf += a[i].d * qm_fp16_to_fp32(w[i].d) * QM__CAST(float, isum);
    }
    return sumf;
}

/* Q4_K: 8 sub-blocks of 32, x = d*sc*q - dmin*m with 6-bit sc, m. */
static float qm__dot_q4_K_q8_K_scalar(int64_t n, const void *vw, const void *vx) {
    const qm__block_q4_K *w = QM__CAST(const qm__block_q4_K *, vw);
    const qm__block_q8_K *a = QM__CAST(const qm__block_q8_K *, vx);
    int64_t i, nb = n / QM__QK_K;
    float sumf = 0.0f;
    int c, l, sc, m;
    for (i = 0; i < nb; i++) {
        const uint8_t *q = w[i].qs;
        const int8_t *q8 = a[i].qs;
        int isum = 0, msum = 0;
        for (c = 0; c < 4; c++, q += 32, q8 += 64) {
            int s1 = 0, s2 = 0;
            for (l = 0; l < 32; l++) {
                s1 += (q[l] & 0x0f) * q8[l];
                s2 += (q[l] >> 4) * q8[l + 32];
            }
            qm__k4_scale_min(2 * c, w[i].scales, &sc, &m);
            isum += sc * s1;
            msum += m * (a[i].bsums[4 * c] + a[i].bsums[4 * c + 1]);
            qm__k4_scale_min(2 * c + 1, w[i].scales, &sc, &m);
            isum += sc * s2;
            msum += m * (a[i].bsums[4 * c + 2] + a[i].bsums[4 * c + 3]);
        }
        sumf += a[i].d * qm_fp16_to_fp32(w[i].d) * QM__CAST(float, isum) -
                a[i].d * qm_fp16_to_fp32(w[i].dmin) * QM__CAST(float, msum);
    }
    return sumf;
}

/* Q5_K: Q4_K with a fifth bit from qh (chunk c: bit 2c for the low nibbles, 2c+1 high). */
static float qm__dot_q5_K_q8_K_scalar(int64_t n, const void *vw, const void *vx) {
    const qm__block_q5_K *w = QM__CAST(const qm__block_q5_K *, vw);
    const qm__block_q8_K *a = QM__CAST(const qm__block_q8_K *, vx);
    int64_t i, nb = n / QM__QK_K;
    float sumf = 0.0f;
    int c, l, sc, m;
    for (i = 0; i < nb; i++) {
        const uint8_t *q = w[i].qs, *qh = w[i].qh;
        const int8_t *q8 = a[i].qs;
        int isum = 0, msum = 0;
        for (c = 0; c < 4; c++, q += 32, q8 += 64) {
            const unsigned u1 = 1u << (2 * c), u2 = 2u << (2 * c);
            int s1 = 0, s2 = 0;
            for (l = 0; l < 32; l++) {
                s1 += ((q[l] & 0x0f) + ((qh[l] & u1) ? 16 : 0)) * q8[l];
                s2 += ((q[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) * q8[l + 32];
            }
            qm__k4_scale_min(2 * c, w[i].scales, &sc, &m);
            isum += sc * s1;
            msum += m * (a[i].bsums[4 * c] + a[i].bsums[4 * c + 1]);
            qm__k4_scale_min(2 * c + 1, w[i].scales, &sc, &m);
            isum += sc * s2;
            msum += m * (a[i].bsums[4 * c + 2] + a[i].bsums[4 * c + 3]);
        }
        sumf += a[i].d * qm_fp16_to_fp32(w[i].d) * QM__CAST(float, isum) -
                a[i].d * qm_fp16_to_fp32(w[i].dmin) * QM__CAST(float, msum);
    }
    return sumf;
}

/* Q6_K: 16 groups of 16, 6-bit q - 32, int8 group scales. The levels are unpacked first
   (layout: see qm__dequant_q6_K), then each group of 16 is summed. */
static float qm__dot_q6_K_q8_K_scalar(int64_t n, const void *vw, const void *vx) {
    const qm__block_q6_K *w = QM__CAST(const qm__block_q6_K *, vw);
    const qm__block_q8_K *a = QM__CAST(const qm__block_q8_K *, vx);
    int64_t i, nb = n / QM__QK_K;
    float sumf = 0.0f;
    int8_t L[QM__QK_K];
    int half, g, l;
    for (i = 0; i < nb; i++) {
        int isum = 0;
        for (half = 0; half < 2; half++) {
            const uint8_t *ql = w[i].ql + 64 * half, *qh = w[i].qh + 32 * half;
            int8_t *Lh = L + 128 * half;
            for (l = 0; l < 32; l++) {
                Lh[l] = QM__CAST(int8_t, ((ql[l] & 0x0f) | ((qh[l] & 3) << 4)) - 32);
                Lh[l + 32] = QM__CAST(int8_t, ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32);
                Lh[l + 64] = QM__CAST(int8_t, ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                Lh[l + 96] = QM__CAST(int8_t, ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
            }
        }
        for (g = 0; g < 16; g++) {
            int s = 0;
            for (l = 16 * g; l < 16 * g + 16; l++) s += L[l] * a[i].qs[l];
            isum += w[i].scales[g] * s;
        }
        sumf += a[i].d * qm_fp16_to_fp32(w[i].d) * QM__CAST(float, isum);
    }
    return sumf;
}

static float qm__dot_iq4_xs_q8_K_scalar(int64_t n, const void *vw, const void *vx) {
    const qm__block_iq4_xs *w = QM__CAST(const qm__block_iq4_xs *, vw);
    const qm__block_q8_K *a = QM__CAST(const qm__block_q8_K *, vx);
    int64_t i, nb = n / QM__QK_K;
    float sumf = 0.0f;
    int ib, j;
    for (i = 0; i < nb; i++) {
        const uint8_t *qs = w[i].qs;
        const int8_t *q8 = a[i].qs;
        int isum = 0;
        for (ib = 0; ib < 8; ib++, qs += 16, q8 += 32) {
            const int ls = ((w[i].scales_l[ib / 2] >> (4 * (ib % 2))) & 0x0f) |
                           (((w[i].scales_h >> (2 * ib)) & 3) << 4);
            int s = 0;
            for (j = 0; j < 16; j++) {
                s += qm__kvalues_iq4nl[qs[j] & 0x0f] * q8[j];
                s += qm__kvalues_iq4nl[qs[j] >> 4] * q8[j + 16];
            }
            isum += (ls - 32) * s;
        }
        sumf += a[i].d * qm_fp16_to_fp32(w[i].d) * QM__CAST(float, isum);
    }
    return sumf;
}

typedef float (*qm__vec_dot_fn)(int64_t n, const void *w, const void *qx);

static qm__vec_dot_fn qm__vec_dot_scalar_for(int wtype) {
    switch (wtype) {
    case QM_TYPE_F32: return qm__dot_f32_f32_scalar;
    case QM_TYPE_F16: return qm__dot_f16_f32_scalar;
    case QM_TYPE_BF16: return qm__dot_bf16_f32_scalar;
    case QM_TYPE_Q8_0: return qm__dot_q8_0_q8_0_scalar;
    case QM_TYPE_Q4_0: return qm__dot_q4_0_q8_0_scalar;
    case QM_TYPE_Q4_1: return qm__dot_q4_1_q8_0s_scalar;
    case QM_TYPE_Q5_0: return qm__dot_q5_0_q8_0_scalar;
    case QM_TYPE_Q5_1: return qm__dot_q5_1_q8_0s_scalar;
    case QM_TYPE_IQ4_NL: return qm__dot_iq4_nl_q8_0_scalar;
    case QM_TYPE_Q2_K: return qm__dot_q2_K_q8_K_scalar;
    case QM_TYPE_Q3_K: return qm__dot_q3_K_q8_K_scalar;
    case QM_TYPE_Q4_K: return qm__dot_q4_K_q8_K_scalar;
    case QM_TYPE_Q5_K: return qm__dot_q5_K_q8_K_scalar;
    case QM_TYPE_Q6_K: return qm__dot_q6_K_q8_K_scalar;
    case QM_TYPE_IQ4_XS: return qm__dot_iq4_xs_q8_K_scalar;
    default: return NULL;
    }
}

/* The plain C result (0 for an unsupported type). */
static QM__MAYBE_UNUSED float qm__vec_dot_scalar(int wtype, int64_t n, const void *wrow, const void *qx) {
    qm__vec_dot_fn f = qm__vec_dot_scalar_for(wtype);
    return f ? f(n, wrow, qx) : 0.0f;
}

/* Q4_K/Q5_K: the 8 scales (out[0..7]) and 8 mins (out[8..15]) from the 12 packed bytes,
   four at a time in 32-bit words (little-endian). */
static QM__MAYBE_UNUSED QM__INLINE void qm__k4_unpack(const uint8_t *s, uint8_t *out) {
    uint32_t u[3], r[4];
    memcpy(u, s, 12);
    r[0] = u[0] & 0x3f3f3f3fu;                                        /* scales 0-3 */
    r[1] = (u[2] & 0x0f0f0f0fu) | (((u[0] >> 6) & 0x03030303u) << 4); /* scales 4-7 */
    r[2] = u[1] & 0x3f3f3f3fu;                                        /* mins 0-3 */
    r[3] = ((u[2] >> 4) & 0x0f0f0f0fu) | (((u[1] >> 6) & 0x03030303u) << 4); /* mins 4-7 */
    memcpy(out, r, 16);
}

/* ====================================================================================== */
/*  x86: AVX2 + FMA + F16C (+ VNNI, + AVX-512)                                              */
/* ====================================================================================== */
#if defined(QM__X86)

#define QM__LD256(p) _mm256_loadu_si256(QM__PTR(const __m256i *, p))
#define QM__LD128(p) _mm_loadu_si128(QM__PTR(const __m128i *, p))

static QM__INLINE int qm__hsum_epi32_256(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

static QM__INLINE float qm__hsum_ps256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* acc + sums of 4 adjacent u8*s8 products (no saturation for the ranges used here:
   |u*s| pairs stay below 2^15 wherever the maddubs fallback is used). */
static QM__INLINE __m256i qm__dpbusd(__m256i acc, __m256i u, __m256i s) {
#if QM__VNNI == 1
    return _mm256_dpbusd_epi32(acc, u, s);
#elif QM__VNNI == 2
    return _mm256_dpbusd_avx_epi32(acc, u, s);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
#endif
}

/* acc + sums of 2 adjacent int16 products. */
static QM__INLINE __m256i qm__dpwssd(__m256i acc, __m256i a, __m256i b) {
#if QM__VNNI == 1
    return _mm256_dpwssd_epi32(acc, a, b);
#elif QM__VNNI == 2
    return _mm256_dpwssd_avx_epi32(acc, a, b);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
#endif
}

/* Byte shuffles for int16 scales of 16-element groups: with 8 int16 scales in each 128-bit
   lane, row k puts scale 2k in all 8 int16 of lane 0 and scale 2k+1 in those of lane 1.
   (maddubs turns 32 inputs into 16 int16: lane 0 holds inputs 0-15, lane 1 inputs 16-31.) */
static const uint8_t qm__shuf_pairs[4][32] = {
    {0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3},
    {4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7},
    {8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11},
    {12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15}};

static float qm__dot_f32_f32_avx2(int64_t n, const void *vw, const void *vx) {
    const float *w = QM__CAST(const float *, vw), *x = QM__CAST(const float *, vx);
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i;
    float sum;
    for (i = 0; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(x + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 16), _mm256_loadu_ps(x + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 24), _mm256_loadu_ps(x + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), s0);
    sum = qm__hsum_ps256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++) sum += w[i] * x[i];
    return sum;
}

static float qm__dot_f16_f32_avx2(int64_t n, const void *vw, const void *vx) {
    const uint16_t *w = QM__CAST(const uint16_t *, vw);
    const float *x = QM__CAST(const float *, vx);
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i;
    float sum;
    for (i = 0; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_cvtph_ps(QM__LD128(w + i)), _mm256_loadu_ps(x + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_cvtph_ps(QM__LD128(w + i + 8)), _mm256_loadu_ps(x + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_cvtph_ps(QM__LD128(w + i + 16)), _mm256_loadu_ps(x + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_cvtph_ps(QM__LD128(w + i + 24)), _mm256_loadu_ps(x + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_cvtph_ps(QM__LD128(w + i)), _mm256_loadu_ps(x + i), s0);
    sum = qm__hsum_ps256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++) sum += qm__h2f(w[i]) * x[i];
    return sum;
}

static QM__INLINE __m256 qm__bf16x8_to_ps(const uint16_t *p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(QM__LD128(p)), 16));
}

static float qm__dot_bf16_f32_avx2(int64_t n, const void *vw, const void *vx) {
    const uint16_t *w = QM__CAST(const uint16_t *, vw);
    const float *x = QM__CAST(const float *, vx);
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i;
    float sum;
    for (i = 0; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(qm__bf16x8_to_ps(w + i), _mm256_loadu_ps(x + i), s0);
        s1 = _mm256_fmadd_ps(qm__bf16x8_to_ps(w + i + 8), _mm256_loadu_ps(x + i + 8), s1);
        s2 = _mm256_fmadd_ps(qm__bf16x8_to_ps(w + i + 16), _mm256_loadu_ps(x + i + 16), s2);
        s3 = _mm256_fmadd_ps(qm__bf16x8_to_ps(w + i + 24), _mm256_loadu_ps(x + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(qm__bf16x8_to_ps(w + i), _mm256_loadu_ps(x + i), s0);
    sum = qm__hsum_ps256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++) sum += qm_bf16_to_fp32(w[i]) * x[i];
    return sum;
}

/* Q8_0 x Q8_0: |w| (unsigned) times a with the sign of w. */
static float qm__dot_q8_0_q8_0_avx2(int64_t n, const void *vw, const void *vx) {
    const qm__block_q8_0 *w = QM__CAST(const qm__block_q8_0 *, vw);
    const qm__block_q8_0 *a = QM__CAST(const qm__block_q8_0 *, vx);
    int64_t i, nb = n / 32;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    const __m256i zero = _mm256_setzero_si256();
    for (i = 0; i + 2 <= nb; i += 2) {
        const __m256i w0 = QM__LD256(w[i].qs), w1 = QM__LD256(w[i + 1].qs);
        const __m256i p0 = qm__dpbusd(zero, _mm256_sign_epi8(w0, w0), _mm256_sign_epi8(QM__LD256(a[i].qs), w0));
        const __m256i p1 = qm__dpbusd(zero, _mm256_sign_epi8(w1, w1), _mm256_sign_epi8(QM__LD256(a[i + 1].qs), w1));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(qm__h2f(w[i].d) * qm__h2f(a[i].d)), _mm256_cvtepi32_ps(p0), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(qm__h2f(w[i + 1].d) * qm__h2f(a[i + 1].d)), _mm256_cvtepi32_ps(p1), acc1);
    }
    for (; i < nb; i++) {
        const __m256i w0 = QM__LD256(w[i].qs);
        const __m256i p0 = qm__dpbusd(zero, _mm256_sign_epi8(w0, w0), _mm256_sign_epi8(QM__LD256(a[i].qs), w0));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(qm__h2f(w[i].d) * qm__h2f(a[i].d)), _mm256_cvtepi32_ps(p0), acc0);
    }
    return qm__hsum_ps256(_mm256_add_ps(acc0, acc1));
}

/* Q4_K: per 64 elements, low nibbles x a[0..31] and high nibbles x a[32..63] by maddubs
   (u8 x s8 -> s16 pairs), then times the sub-block scale into int32 (madd / dpwssd). */
static float qm__dot_q4_K_q8_K_avx2(int64_t n, const void *vw, const void *vx) {
    const qm__block_q4_K *w = QM__CAST(const qm__block_q4_K *, vw);
    const qm__block_q8_K *a = QM__CAST(const qm__block_q8_K *, vx);
    int64_t i, nb = n / QM__QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    int c;
    for (i = 0; i < nb; i++) {
        uint8_t sm[16];
        const float d = a[i].d * qm__h2f(w[i].d), dmin = a[i].d * qm__h2f(w[i].dmin);
        const uint8_t *q = w[i].qs;
        const int8_t *q8 = a[i].qs;
        __m256i s0 = _mm256_setzero_si256(), s1 = s0, mprod;
        __m128i smv;
        qm__k4_unpack(w[i].scales, sm);
        smv = QM__LD128(sm);
        /* mins: m_j paired with bsums 2j, 2j+1 */
        mprod = _mm256_madd_epi16(QM__LD256(a[i].bsums), _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(smv, smv)));
        accm = _mm256_fmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(mprod), accm);
        for (c = 0; c < 4; c++, q += 32, q8 += 64) {
            const __m256i qb = QM__LD256(q);
            const __m256i lo = _mm256_and_si256(qb, m4), hi = _mm256_and_si256(_mm256_srli_epi16(qb, 4), m4);
            const __m256i p0 = _mm256_maddubs_epi16(lo, QM__LD256(q8));
            const __m256i p1 = _mm256_maddubs_epi16(hi, QM__LD256(q8 + 32));
            s0 = qm__dpwssd(s0, p0, _mm256_set1_epi16(sm[2 * c]));
            s1 = qm__dpwssd(s1, p1, _mm256_set1_epi16(sm[2 * c + 1]));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(_mm256_add_epi32(s0, s1)), acc);
    }
    return qm__hsum_ps256(acc) - qm__hsum_ps256(accm);
}

/* Q5_K: as Q4_K, plus 16 where the chunk's bit of qh is set. */
static float qm__dot_q5_K_q8_K_avx2(int64_t n, const void *vw, const void *vx) {
    const qm__block_q5_K *w = QM__CAST(const qm__block_q5_K *, vw);
    const qm__block_q8_K *a = QM__CAST(const qm__block_q8_K *, vx);
    int64_t i, nb = n / QM__QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0f), b4 = _mm256_set1_epi8(0x10);
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    int c;
    for (i = 0; i < nb; i++) {
        uint8_t sm[16];
        const float d = a[i].d * qm__h2f(w[i].d), dmin = a[i].d * qm__h2f(w[i].dmin);
        const uint8_t *q = w[i].qs;
        const int8_t *q8 = a[i].qs;
        __m256i s0 = _mm256_setzero_si256(), s1 = s0, mprod, hb = QM__LD256(w[i].qh);
        __m128i smv;
        qm__k4_unpack(w[i].scales, sm);
        smv = QM__LD128(sm);
        mprod = _mm256_madd_epi16(QM__LD256(a[i].bsums), _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(smv, smv)));
        accm = _mm256_fmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(mprod), accm);
        for (c = 0; c < 4; c++, q += 32, q8 += 64, hb = _mm256_srli_epi16(hb, 2)) {
            /* bits 0 and 1 of each byte of hb are this chunk's: move them to bit 4 */
            const __m256i qb = QM__LD256(q);
            const __m256i lo = _mm256_or_si256(_mm256_and_si256(qb, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 4), b4));
            const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qb, 4), m4),
                                               _mm256_and_si256(_mm256_slli_epi16(hb, 3), b4));
            const __m256i p0 = _mm256_maddubs_epi16(lo, QM__LD256(q8));
            const __m256i p1 = _mm256_maddubs_epi16(hi, QM__LD256(q8 + 32));
            s0 = qm__dpwssd(s0, p0, _mm256_set1_epi16(sm[2 * c]));
            s1 = qm__dpwssd(s1, p1, _mm256_set1_epi16(sm[2 * c + 1]));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(_mm256_add_epi32(s0, s1)), acc);
    }
    return qm__hsum_ps256(acc) - qm__hsum_ps256(accm);
}

/* Q6_K: unsigned 6-bit q (0..63) by maddubs, group scales by madd; the -32 offset is
   32 * sum(scale_g * bsum_g), subtracted once per super-block. */
static float qm__dot_q6_K_q8_K_avx2(int64_t n, const void *vw, const void *vx) {
    const qm__block_q6_K *w = QM__CAST(const qm__block_q6_K *, vw);
    const qm__block_q8_K *a = QM__CAST(const qm__block_q8_K *, vx);
    int64_t i, nb = n / QM__QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0f), m2 = _mm256_set1_epi8(0x03);
    const __m256i sh0 = QM__LD256(qm__shuf_pairs[0]), sh1 = QM__LD256(qm__shuf_pairs[1]);
    const __m256i sh2 = QM__LD256(qm__shuf_pairs[2]), sh3 = QM__LD256(qm__shuf_pairs[3]);
    __m256 acc = _mm256_setzero_ps();
    int half;
    for (i = 0; i < nb; i++) {
        const float d = a[i].d * qm__h2f(w[i].d);
        const __m256i sc16 = _mm256_cvtepi8_epi16(QM__LD128(w[i].scales));
        const __m256i off = _mm256_slli_epi32(_mm256_madd_epi16(QM__LD256(a[i].bsums), sc16), 5);
        __m256i s0 = _mm256_setzero_si256(), s1 = s0;
        for (half = 0; half < 2; half++) {
            const uint8_t *ql = w[i].ql + 64 * half, *qh = w[i].qh + 32 * half;
            const int8_t *q8 = a[i].qs + 128 * half;
            const __m256i scv = half ? _mm256_permute2x128_si256(sc16, sc16, 0x11)
                                     : _mm256_permute2x128_si256(sc16, sc16, 0x00);
            const __m256i l0 = QM__LD256(ql), l1 = QM__LD256(ql + 32), h = QM__LD256(qh);
            const __m256i q1 = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(h, m2), 4));
            const __m256i q2 = _mm256_or_si256(_mm256_and_si256(l1, m4),
                                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), m2), 4));
            const __m256i q3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), m2), 4));
            const __m256i q4 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), m2), 4));
            s0 = qm__dpwssd(s0, _mm256_maddubs_epi16(q1, QM__LD256(q8)), _mm256_shuffle_epi8(scv, sh0));
            s1 = qm__dpwssd(s1, _mm256_maddubs_epi16(q2, QM__LD256(q8 + 32)), _mm256_shuffle_epi8(scv, sh1));
            s0 = qm__dpwssd(s0, _mm256_maddubs_epi16(q3, QM__LD256(q8 + 64)), _mm256_shuffle_epi8(scv, sh2));
            s1 = qm__dpwssd(s1, _mm256_maddubs_epi16(q4, QM__LD256(q8 + 96)), _mm256_shuffle_epi8(scv, sh3));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_add_epi32(s0, s1), off)), acc);
    }
    return qm__hsum_ps256(acc);
}

/* ---- the other block types (AVX2) ------------------------------------------------------ */

/* sum of u*s over each 4 bytes: u unsigned, s signed */
#define QM__USDOT(u, s) qm__dpbusd(_mm256_setzero_si256(), (u), (s))

/* 16 bytes of nibbles -> 32 bytes: the low nibbles (elements 0-15), then the high (16-31) */
static QM__INLINE __m256i qm__nibbles32(const uint8_t *p) {
    const __m128i b = QM__LD128(p);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(b, 4), b), _mm256_set1_epi8(0x0f));
}

/* the 32 fifth bits of Q5_0/Q5_1 (bit j of the little-endian u32 for element j) as 0 or 16 */
static QM__INLINE __m256i qm__bits32_x16(const uint8_t *qh) {
    const __m256i sel = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                         2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x(QM__CAST(long long, 0x8040201008040201ull));
    uint32_t u;
    __m256i v;
    memcpy(&u, qh, 4);
    v = _mm256_shuffle_epi8(_mm256_set1_epi32(QM__CAST(int, u)), sel); /* byte k = byte k/8 of qh */
    return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit), _mm256_set1_epi8(0x10));
}

/* Q4_0: sum((q - 8) * a) = sum(q * a) - 8 * sum(a), both u8 x s8 dot products */
static float qm__dot_q4_0_q8_0_avx2(int64_t n, const void *vw, const void *vx) {
    const qm__block_q4_0 *w = QM__CAST(const qm__block_q4_0 *, vw);
    const qm__block_q8_0 *a = QM__CAST(const qm__block_q8_0 *, vx);
    const __m256i eight = _mm256_set1_epi8(8);
    int64_t i, nb = n / 32;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    for (i = 0; i + 2 <= nb; i += 2) {
        const __m256i x0 = QM__LD256(a[i].qs), x1 = QM__LD256(a[i + 1].qs);
        const __m256i p0 = _mm256_sub_epi32(QM__USDOT(qm__nibbles32(w[i].qs), x0), QM__USDOT(eight, x0));
        const __m256i p1 = _mm256_sub_epi32(QM__USDOT(qm__nibbles32(w[i + 1].qs), x1), QM__USDOT(eight, x1));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(qm__h2f(w[i].d) * qm__h2f(a[i].d)), _mm256_cvtepi32_ps(p0), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(qm__h2f(w[i + 1].d) * qm__h2f(a[i + 1].d)), _mm256_cvtepi32_ps(p1), acc1);
    }
    for (; i < nb; i++) {
        const __m256i x0 = QM__LD256(a[i].qs);
        const __m256i p0 = _mm256_sub_epi32(QM__USDOT(qm__nibbles32(w[i].qs), x0), QM__USDOT(eight, x0));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(qm__h2f(w[i].d) * qm__h2f(a[i].d)), _mm256_cvtepi32_ps(p0), acc0);
    }
    return qm__hsum_ps256(_mm256_add_ps(acc0, acc1));
}

/* Q4_1: d*da*sum(q*a) + m*da*sum(a), sum(a) stored with the activations */
static float qm__dot_q4_1_q8_0s_avx2(int64_t n, const void *vw, const void *vx) {
    const qm__block_q4_1 *w = QM__CAST(const qm__block_q4_1 *, vw);
    const qm__block_q8_0s *a = QM__CAST(const qm__block_q8_0s *, vx);
    int64_t i, nb = n / 32;
    __m256 acc = _mm256_setzero_ps();
    float summ = 0.0f;
    for (i = 0; i < nb; i++) {
        const float da = qm__h2f(a[i].d);
        const __m256i p = QM__USDOT(qm__nibbles32(w[i].qs), QM__LD256(a[i].qs));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(qm__h2f(w[i].d) * da), _mm256_cvtepi32_ps(p), acc);
        summ += qm__h2f(w[i].m) * qm__h2f(a[i].s);
    }
    return qm__hsum_ps256(acc) + summ;
}

static float qm__dot_q5_0_q8_0_avx2(int64_t n, const void *vw, const void *vx) {
    const qm__block_q5_0 *w = QM__CAST(const qm__block_q5_0 *, vw);
    const qm__block_q8_0 *a = QM__CAST(const qm__block_q8_0 *, vx);
    const __m256i sixteen = _mm256_set1_epi8(16);
    int64_t i, nb = n / 32;
    __m256 acc = _mm256_setzero_ps();
    for (i = 0; i < nb; i++) {
        const __m256i x = QM__LD256(a[i].qs);
        const __m256i q = _mm256_or_si256(qm__nibbles32(w[i].qs), qm__bits32_x16(w[i].qh));
        const __m256i p = _mm256_sub_epi32(QM__USDOT(q, x), QM__USDOT(sixteen, x));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(qm__h2f(w[i].d) * qm__h2f(a[i].d)), _mm256_cvtepi32_ps(p), acc);
    }
    return qm__hsum_ps256(acc);
}

static float qm__dot_q5_1_q8_0s_avx2(int64_t n, const void *vw, const void *vx) {
    const qm__block_q5_1 *w = QM__CAST(const qm__block_q5_1 *, vw);
    const qm__block_q8_0s *a = QM__CAST(const qm__block_q8_0s *, vx);
    int64_t i, nb = n / 32;
    __m256 acc = _mm256_setzero_ps();
    float summ = 0.0f;
    for (i = 0; i < nb; i++) {
        const float da = qm__h2f(a[i].d);
        const __m256i q = _mm256_or_si256(qm__nibbles32(w[i].qs), qm__bits32_x16(w[i].qh));
        const __m256i p = QM__USDOT(q, QM__LD256(a[i].qs));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(qm__h2f(w[i].d) * da), _mm256_cvtepi32_ps(p), acc);
        summ += qm__h2f(w[i].m) * qm__h2f(a[i].s);
    }
    return qm__hsum_ps256(acc) + summ;
}

/* the IQ4 levels of 32 nibbles (signed int8) */
static QM__INLINE __m256i qm__iq4_levels(const uint8_t *qs) {
    const __m256i kv = _mm256_broadcastsi128_si256(QM__LD128(qm__kvalues_iq4nl));
    return _mm256_shuffle_epi8(kv, qm__nibbles32(qs));
}

static float qm__dot_iq4_nl_q8_0_avx2(int64_t n, const void *vw, const void *vx) {
    const qm__block_iq4_nl *w = QM__CAST(const qm__block_iq4_nl *, vw);
    const qm__block_q8_0 *a = QM__CAST(const qm__block_q8_0 *, vx);
    int64_t i, nb = n / 32;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    for (i = 0; i + 2 <= nb; i += 2) {
        const __m256i v0 = qm__iq4_levels(w[i].qs), v1 = qm__iq4_levels(w[i + 1].qs);
        const __m256i p0 = QM__USDOT(_mm256_sign_epi8(v0, v0), _mm256_sign_epi8(QM__LD256(a[i].qs), v0));
        const __m256i p1 = QM__USDOT(_mm256_sign_epi8(v1, v1), _mm256_sign_epi8(QM__LD256(a[i + 1].qs), v1));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(qm__h2f(w[i].d) * qm__h2f(a[i].d)), _mm256_cvtepi32_ps(p0), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(qm__h2f(w[i + 1].d) * qm__h2f(a[i + 1].d)), _mm256_cvtepi32_ps(p1), acc1);
    }
    for (; i < nb; i++) {
        const __m256i v0 = qm__iq4_levels(w[i].qs);
        const __m256i p0 = QM__USDOT(_mm256_sign_epi8(v0, v0), _mm256_sign_epi8(QM__LD256(a[i].qs), v0));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(qm__h2f(w[i].d) * qm__h2f(a[i].d)), _mm256_cvtepi32_ps(p0), acc0);
    }
    return qm__hsum_ps256(_mm256_add_ps(acc0, acc1));
}

/* IQ4_XS: |level| x (a with the level's sign) by maddubs (pairs stay below 2^15), then
   times the sub-block scale ls - 32 into int32. */
static float qm__dot_iq4_xs_q8_K_avx2(int64_t n, const void *vw, const void *vx) {
    const qm__block_iq4_xs *w = QM__CAST(const qm__block_iq4_xs *, vw);
    const qm__block_q8_K *a = QM__CAST(const qm__block_q8_K *, vx);
    int64_t i, nb = n / QM__QK_K;
    __m256 acc = _mm256_setzero_ps();
    int ib;
    for (i = 0; i < nb; i++) {
        __m256i s0 = _mm256_setzero_si256(), s1 = s0;
        for (ib = 0; ib < 8; ib += 2) {
            const int ls0 = ((w[i].scales_l[ib / 2] & 0x0f) | (((w[i].scales_h >> (2 * ib)) & 3) << 4)) - 32;
            const int ls1 = ((w[i].scales_l[ib / 2] >> 4) | (((w[i].scales_h >> (2 * ib + 2)) & 3) << 4)) - 32;
            const __m256i v0 = qm__iq4_levels(w[i].qs + 16 * ib), v1 = qm__iq4_levels(w[i].qs + 16 * ib + 16);
            const __m256i p0 = _mm256_maddubs_epi16(_mm256_sign_epi8(v0, v0), _mm256_sign_epi8(QM__LD256(a[i].qs + 32 * ib), v0));
            const __m256i p1 = _mm256_maddubs_epi16(_mm256_sign_epi8(v1, v1), _mm256_sign_epi8(QM__LD256(a[i].qs + 32 * ib + 32), v1));
            s0 = qm__dpwssd(s0, p0, _mm256_set1_epi16(QM__CAST(short, ls0)));
            s1 = qm__dpwssd(s1, p1, _mm256_set1_epi16(QM__CAST(short, ls1)));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(a[i].d * qm__h2f(w[i].d)), _mm256_cvtepi32_ps(_mm256_add_epi32(s0, s1)), acc);
    }
    return qm__hsum_ps256(acc);
}

/* For 16 int16 scales (one per group of 16 elements), pair k = 0..7: scale 2k for the
   first 16 elements of a 32-element step (int16 lanes 0-7 of a maddubs result), 2k+1 for
   the next 16 (lanes 8-15). */
static QM__INLINE __m256i qm__pair_scales(__m256i sc16, int k) {
    const __m256i half = (k < 4) ? _mm256_permute2x128_si256(sc16, sc16, 0x00) : _mm256_permute2x128_si256(sc16, sc16, 0x11);
    return _mm256_shuffle_epi8(half, QM__LD256(qm__shuf_pairs[k & 3]));
}

/* Q2_K: q (0..3) x a by maddubs, 4-bit group scales by madd, mins by the bsums. For half h
   and shift step k the 32 bytes (q >> 2k) & 3 are elements 128h + 32k .. +31: groups
   8h + 2k and 8h + 2k + 1. */
static float qm__dot_q2_K_q8_K_avx2(int64_t n, const void *vw, const void *vx) {
    const qm__block_q2_K *w = QM__CAST(const qm__block_q2_K *, vw);
    const qm__block_q8_K *a = QM__CAST(const qm__block_q8_K *, vx);
    int64_t i, nb = n / QM__QK_K;
    const __m256i m2 = _mm256_set1_epi8(3);
    const __m128i m4 = _mm_set1_epi8(0x0f);
    __m128 acc = _mm_setzero_ps(), accm = _mm_setzero_ps();
    int h, k;
    for (i = 0; i < nb; i++) {
        const __m128i sb = QM__LD128(w[i].scales);
        const __m256i sc16 = _mm256_cvtepu8_epi16(_mm_and_si128(sb, m4));
        const __m256i mn16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sb, 4), m4));
        __m256i s0 = _mm256_setzero_si256(), s1 = s0;
        const int imin = qm__hsum_epi32_256(_mm256_madd_epi16(QM__LD256(a[i].bsums), mn16));
        for (h = 0; h < 2; h++) {
            const __m256i q = QM__LD256(w[i].qs + 32 * h);
            const int8_t *q8 = a[i].qs + 128 * h;
            for (k = 0; k < 4; k += 2) {
                const __m256i v0 = _mm256_and_si256(_mm256_srli_epi16(q, 2 * k), m2);
                const __m256i v1 = _mm256_and_si256(_mm256_srli_epi16(q, 2 * k + 2), m2);
                s0 = qm__dpwssd(s0, _mm256_maddubs_epi16(v0, QM__LD256(q8 + 32 * k)), qm__pair_scales(sc16, 4 * h + k));
                s1 = qm__dpwssd(s1, _mm256_maddubs_epi16(v1, QM__LD256(q8 + 32 * k + 32)), qm__pair_scales(sc16, 4 * h + k + 1));
            }
        }
        /* llama.cpp's order (on AVX-512 it repacks Q2_K and runs this per row): the block's exact
           integer sums, one fma per block into each of two running sums */
        acc = _mm_fmadd_ss(_mm_set_ss(QM__CAST(float, qm__hsum_epi32_256(_mm256_add_epi32(s0, s1)))),
                           _mm_set_ss(qm__h2f(w[i].d) * a[i].d), acc);
        accm = _mm_fmadd_ss(_mm_set_ss(QM__CAST(float, imin)), _mm_set_ss(qm__h2f(w[i].dmin) * a[i].d), accm);
    }
    return _mm_cvtss_f32(_mm_sub_ss(acc, accm));
}

/* Q3_K: v = low2 | hbit << 2 (0..7) = q + 4, so q a = v a - 4 a, taken per pair in int16.
   Group scales are 6 bits - 32 (unpacked four at a time). */
static float qm__dot_q3_K_q8_K_avx2(int64_t n, const void *vw, const void *vx) {
    const qm__block_q3_K *w = QM__CAST(const qm__block_q3_K *, vw);
    const qm__block_q8_K *a = QM__CAST(const qm__block_q8_K *, vx);
    int64_t i, nb = n / QM__QK_K;
    const __m256i m2 = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1), four = _mm256_set1_epi8(4);
    __m256 acc = _mm256_setzero_ps();
    int h, k;
    for (i = 0; i < nb; i++) {
        uint32_t u[3], r[4];
        __m256i sc16, s0 = _mm256_setzero_si256(), s1 = s0, hm = QM__LD256(w[i].hmask);
        memcpy(u, w[i].scales, 12);
        /* scale j: low 4 bits from byte j (j < 8) or the high nibble of byte j-8; bits 4-5
           from byte 8 + j%4 at bit 2*(j/4) */
        r[0] = (u[0] & 0x0f0f0f0fu) | ((u[2] & 0x03030303u) << 4);
        r[1] = (u[1] & 0x0f0f0f0fu) | (((u[2] >> 2) & 0x03030303u) << 4);
        r[2] = ((u[0] >> 4) & 0x0f0f0f0fu) | (((u[2] >> 4) & 0x03030303u) << 4);
        r[3] = ((u[1] >> 4) & 0x0f0f0f0fu) | (((u[2] >> 6) & 0x03030303u) << 4);
        sc16 = _mm256_sub_epi16(_mm256_cvtepu8_epi16(_mm_setr_epi32(QM__CAST(int, r[0]), QM__CAST(int, r[1]),
                                                                    QM__CAST(int, r[2]), QM__CAST(int, r[3]))),
                                _mm256_set1_epi16(32));
        for (h = 0; h < 2; h++) {
            const __m256i q = QM__LD256(w[i].qs + 32 * h);
            const int8_t *q8 = a[i].qs + 128 * h;
            for (k = 0; k < 4; k += 2, hm = _mm256_srli_epi16(hm, 2)) {
                /* bit 0 of hm: step 4h + k; bit 1: step 4h + k + 1 */
                const __m256i v0 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 2 * k), m2),
                                                   _mm256_slli_epi16(_mm256_and_si256(hm, one), 2));
                const __m256i v1 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 2 * k + 2), m2),
                                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hm, 1), one), 2));
                const __m256i x0 = QM__LD256(q8 + 32 * k), x1 = QM__LD256(q8 + 32 * k + 32);
                /* (v - 4) a per pair in int16, so that each lane holds what llama.cpp's does */
                s0 = qm__dpwssd(s0, _mm256_sub_epi16(_mm256_maddubs_epi16(v0, x0), _mm256_maddubs_epi16(four, x0)),
                                qm__pair_scales(sc16, 4 * h + k));
                s1 = qm__dpwssd(s1, _mm256_sub_epi16(_mm256_maddubs_epi16(v1, x1), _mm256_maddubs_epi16(four, x1)),
                                qm__pair_scales(sc16, 4 * h + k + 1));
            }
        }
        /* llama.cpp's AVX2 order: 8 lanes (index mod 32 / 4) per block, acc8 += d * lanes */
        acc = _mm256_fmadd_ps(_mm256_set1_ps(a[i].d * qm__h2f(w[i].d)), _mm256_cvtepi32_ps(_mm256_add_epi32(s0, s1)), acc);
    }
    return qm__hsum_ps256(acc);
}


/* ---- 4 activation rows at once (prefill): weights decoded once, used 4 times ---------- */

static QM__INLINE const qm__block_q8_K *qm__act_row_k(const void *vx, size_t stride, int t) {
    return QM__PTR(const qm__block_q8_K *, QM__CAST(const uint8_t *, vx) + stride * QM__CAST(size_t, t));
}

static void qm__dot4_q4_K_q8_K_avx2(int64_t n, const void *vw, const void *vx, size_t qx_stride, float *out) {
    const qm__block_q4_K *w = QM__CAST(const qm__block_q4_K *, vw);
    const qm__block_q8_K *a[4];
    int64_t i, nb = n / QM__QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m256 acc[4], accm[4];
    int t, c;
    for (t = 0; t < 4; t++) {
        a[t] = qm__act_row_k(vx, qx_stride, t);
        acc[t] = accm[t] = _mm256_setzero_ps();
    }
    for (i = 0; i < nb; i++) {
        uint8_t sm[16];
        const float dw = qm__h2f(w[i].d), dminw = qm__h2f(w[i].dmin);
        const uint8_t *q = w[i].qs;
        __m256i s[4], mins16;
        __m128i smv;
        qm__k4_unpack(w[i].scales, sm);
        smv = QM__LD128(sm);
        mins16 = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(smv, smv));
        for (t = 0; t < 4; t++) {
            s[t] = _mm256_setzero_si256();
            accm[t] = _mm256_fmadd_ps(_mm256_set1_ps(a[t][i].d * dminw),
                                      _mm256_cvtepi32_ps(_mm256_madd_epi16(QM__LD256(a[t][i].bsums), mins16)), accm[t]);
        }
        for (c = 0; c < 4; c++, q += 32) {
            const __m256i qb = QM__LD256(q);
            const __m256i lo = _mm256_and_si256(qb, m4), hi = _mm256_and_si256(_mm256_srli_epi16(qb, 4), m4);
            const __m256i sc0 = _mm256_set1_epi16(sm[2 * c]), sc1 = _mm256_set1_epi16(sm[2 * c + 1]);
            for (t = 0; t < 4; t++) {
                const int8_t *q8 = a[t][i].qs + 64 * c;
                s[t] = qm__dpwssd(s[t], _mm256_maddubs_epi16(lo, QM__LD256(q8)), sc0);
                s[t] = qm__dpwssd(s[t], _mm256_maddubs_epi16(hi, QM__LD256(q8 + 32)), sc1);
            }
        }
        for (t = 0; t < 4; t++) acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(a[t][i].d * dw), _mm256_cvtepi32_ps(s[t]), acc[t]);
    }
    for (t = 0; t < 4; t++) out[t] = qm__hsum_ps256(acc[t]) - qm__hsum_ps256(accm[t]);
}

static void qm__dot4_q6_K_q8_K_avx2(int64_t n, const void *vw, const void *vx, size_t qx_stride, float *out) {
    const qm__block_q6_K *w = QM__CAST(const qm__block_q6_K *, vw);
    const qm__block_q8_K *a[4];
    int64_t i, nb = n / QM__QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0f), m2 = _mm256_set1_epi8(0x03);
    __m256 acc[4];
    int t, half, k;
    for (t = 0; t < 4; t++) {
        a[t] = qm__act_row_k(vx, qx_stride, t);
        acc[t] = _mm256_setzero_ps();
    }
    for (i = 0; i < nb; i++) {
        const float dw = qm__h2f(w[i].d);
        const __m256i sc16 = _mm256_cvtepi8_epi16(QM__LD128(w[i].scales));
        __m256i s[4];
        for (t = 0; t < 4; t++) /* the -32 offset, as in the one-row kernel */
            s[t] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(_mm256_madd_epi16(QM__LD256(a[t][i].bsums), sc16), 5));
        for (half = 0; half < 2; half++) {
            const uint8_t *ql = w[i].ql + 64 * half, *qh = w[i].qh + 32 * half;
            const __m256i l0 = QM__LD256(ql), l1 = QM__LD256(ql + 32), h = QM__LD256(qh);
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(h, m2), 4));
            q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), m2), 4));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), m2), 4));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), m2), 4));
            for (k = 0; k < 4; k++) {
                const __m256i sc = qm__pair_scales(sc16, 4 * half + k);
                for (t = 0; t < 4; t++)
                    s[t] = qm__dpwssd(s[t], _mm256_maddubs_epi16(q[k], QM__LD256(a[t][i].qs + 128 * half + 32 * k)), sc);
            }
        }
        for (t = 0; t < 4; t++) acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(a[t][i].d * dw), _mm256_cvtepi32_ps(s[t]), acc[t]);
    }
    for (t = 0; t < 4; t++) out[t] = qm__hsum_ps256(acc[t]);
}

/* ---- activation quantizers, byte for byte the same as the plain ones ------------------ */

/* max |x| over 8*k floats */
static QM__INLINE __m256 qm__absmax8(const float *x, int k) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 m = _mm256_andnot_ps(sign, _mm256_loadu_ps(x));
    int j;
    for (j = 1; j < k; j++) m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8 * j)));
    return m;
}

static QM__INLINE float qm__hmax_ps256(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* 4 x 8 int32 (each in -128..127) -> 32 int8 in order */
static QM__INLINE __m256i qm__pack32_i8(__m256i a, __m256i b, __m256i c, __m256i d) {
    const __m256i ab = _mm256_packs_epi32(a, b), cd = _mm256_packs_epi32(c, d);
    /* packs work per 128-bit lane: restore the element order */
    return _mm256_permutevar8x32_epi32(_mm256_packs_epi16(ab, cd), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* roundf (half away from zero) of 8 floats of magnitude < 2^23, as int32 */
static QM__INLINE __m256i qm__round_away(__m256 v) {
    const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 frac = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), _mm256_sub_ps(v, t)); /* exact */
    const __m256 one = _mm256_or_ps(_mm256_and_ps(v, _mm256_set1_ps(-0.0f)), _mm256_set1_ps(1.0f));
    const __m256 up = _mm256_and_ps(_mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ), one);
    return _mm256_cvttps_epi32(_mm256_add_ps(t, up));
}

/* Q8_0 block: d = amax/127, q = roundf(x * (1/d)). Returns the 32 quants; *dh the fp16 d. */
/* Blocks whose largest magnitude is below 1e-36 go through the plain code: there 1/d (or
   127/max) overflows to inf, and ggml's conversion of inf to int8 yields 0 where the saturating
   SIMD packs would give -128. */
#define QM__TINY_BLOCK 1e-36f

static QM__INLINE __m256i qm__q8_0_block_avx2(const float *x, uint16_t *dh, float *df) {
    const float amax = qm__hmax_ps256(qm__absmax8(x, 4)), d = amax / 127.0f;
    *df = d;
    if (amax < QM__TINY_BLOCK) {
        qm__block_q8_0 b;
        qm__quantize_row_q8_0(x, &b, 32);
        *dh = b.d;
        return QM__LD256(b.qs);
    }
    const __m256 id = _mm256_set1_ps(d != 0.0f ? 1.0f / d : 0.0f);
    *dh = QM__CAST(uint16_t, _mm_extract_epi16(_mm_cvtps_ph(_mm_set_ss(d), _MM_FROUND_TO_NEAREST_INT), 0));
    return qm__pack32_i8(qm__round_away(_mm256_mul_ps(_mm256_loadu_ps(x), id)),
                         qm__round_away(_mm256_mul_ps(_mm256_loadu_ps(x + 8), id)),
                         qm__round_away(_mm256_mul_ps(_mm256_loadu_ps(x + 16), id)),
                         qm__round_away(_mm256_mul_ps(_mm256_loadu_ps(x + 24), id)));
}

static void qm__quantize_row_q8_0_avx2(const float *x, void *vy, int64_t n) {
    qm__block_q8_0 *y = QM__CAST(qm__block_q8_0 *, vy);
    int64_t i, nb = n / 32;
    for (i = 0; i < nb; i++, x += 32) {
        uint16_t dh;
        float d;
        const __m256i q = qm__q8_0_block_avx2(x, &dh, &d);
        y[i].d = dh;
        _mm256_storeu_si256(QM__CAST(__m256i *, QM__CAST(void *, y[i].qs)), q);
    }
}

/* sum of 32 int8 */
static QM__INLINE int qm__sum_i8x32(__m256i q) {
    const __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), q), _mm256_set1_epi16(1));
    __m128i t = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4e));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xb1));
    return _mm_cvtsi128_si32(t);
}

static void qm__quantize_row_q8_0s_avx2(const float *x, void *vy, int64_t n) {
    qm__block_q8_0s *y = QM__CAST(qm__block_q8_0s *, vy);
    int64_t i, nb = n / 32;
    for (i = 0; i < nb; i++, x += 32) {
        uint16_t dh;
        float d;
        const __m256i q = qm__q8_0_block_avx2(x, &dh, &d);
        y[i].d = dh;
        y[i].s = qm_fp32_to_fp16(d * QM__CAST(float, qm__sum_i8x32(q)));
        _mm256_storeu_si256(QM__CAST(__m256i *, QM__CAST(void *, y[i].qs)), q);
    }
}

/* Q8_K block: max = the first value of largest magnitude, iscale = -127/max,
   q = min(127, nearest(iscale * x)) (cvtps rounds to nearest even, as nearest_int does),
   bsums over 16, d = 1/iscale. */
static void qm__quantize_row_q8_K_avx2(const float *x, void *vy, int64_t n) {
    qm__block_q8_K *y = QM__CAST(qm__block_q8_K *, vy);
    const __m256i c127 = _mm256_set1_epi32(127);
    int64_t i, nb = n / QM__QK_K;
    int j;
    for (i = 0; i < nb; i++, x += QM__QK_K) {
        const float amax = qm__hmax_ps256(qm__absmax8(x, 32));
        float max = 0.0f, iscale;
        __m256 is;
        if (amax < QM__TINY_BLOCK) { /* all zero or tiny: the plain code */
            qm__quantize_row_q8_K(x, &y[i], QM__QK_K);
            continue;
        }
        for (j = 0; j < QM__QK_K; j += 8) { /* the first element with |x| == amax */
            const __m256 v = _mm256_loadu_ps(x + j);
            const int m = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), v),
                                                           _mm256_set1_ps(amax), _CMP_EQ_OQ));
            if (m) {
                int k = 0;
                while (!(m & (1 << k))) k++;
                max = x[j + k];
                break;
            }
        }
        iscale = -127.0f / max;
        is = _mm256_set1_ps(iscale);
        for (j = 0; j < QM__QK_K; j += 32) {
            const __m256i q = qm__pack32_i8(
                _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(is, _mm256_loadu_ps(x + j))), c127),
                _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(is, _mm256_loadu_ps(x + j + 8))), c127),
                _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(is, _mm256_loadu_ps(x + j + 16))), c127),
                _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(is, _mm256_loadu_ps(x + j + 24))), c127));
            /* sums of 4, then of 16 per 128-bit lane */
            __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), q), _mm256_set1_epi16(1));
            s = _mm256_hadd_epi32(s, s);
            s = _mm256_hadd_epi32(s, s);
            _mm256_storeu_si256(QM__CAST(__m256i *, QM__CAST(void *, y[i].qs + j)), q);
            y[i].bsums[j / 16] = QM__CAST(int16_t, _mm256_extract_epi32(s, 0));
            y[i].bsums[j / 16 + 1] = QM__CAST(int16_t, _mm256_extract_epi32(s, 4));
        }
        y[i].d = 1.0f / iscale;
    }
}

/* ---- AVX-512 (F + BW + VL): 64 bytes per instruction ---------------------------------- */
#if defined(QM__AVX512)

static QM__INLINE __m512i qm__dpbusd512(__m512i acc, __m512i u, __m512i s) {
#if defined(__AVX512VNNI__)
    return _mm512_dpbusd_epi32(acc, u, s);
#else
    return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1)));
#endif
}

static QM__INLINE __m512i qm__dpwssd512(__m512i acc, __m512i a, __m512i b) {
#if defined(__AVX512VNNI__)
    return _mm512_dpwssd_epi32(acc, a, b);
#else
    return _mm512_add_epi32(acc, _mm512_madd_epi16(a, b));
#endif
}

/* 32 bytes from p into both 256-bit halves */
#define QM__BCAST256(p) _mm512_broadcast_i64x4(QM__LD256(p))

static float qm__dot_f16_f32_avx512(int64_t n, const void *vw, const void *vx) {
    const uint16_t *w = QM__CAST(const uint16_t *, vw);
    const float *x = QM__CAST(const float *, vx);
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i;
    for (i = 0; i + 64 <= n; i += 64) {
        s0 = _mm512_fmadd_ps(_mm512_cvtph_ps(QM__LD256(w + i)), _mm512_loadu_ps(x + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_cvtph_ps(QM__LD256(w + i + 16)), _mm512_loadu_ps(x + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_cvtph_ps(QM__LD256(w + i + 32)), _mm512_loadu_ps(x + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_cvtph_ps(QM__LD256(w + i + 48)), _mm512_loadu_ps(x + i + 48), s3);
    }
    for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(_mm512_cvtph_ps(QM__LD256(w + i)), _mm512_loadu_ps(x + i), s0);
    if (i < n) {
        const __mmask16 k = QM__CAST(__mmask16, (1u << (n - i)) - 1u);
        s1 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, w + i)), _mm512_maskz_loadu_ps(k, x + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

static QM__INLINE __m512 qm__bf16x16_to_ps(__m256i h) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

static float qm__dot_bf16_f32_avx512(int64_t n, const void *vw, const void *vx) {
    const uint16_t *w = QM__CAST(const uint16_t *, vw);
    const float *x = QM__CAST(const float *, vx);
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i;
    for (i = 0; i + 64 <= n; i += 64) {
        s0 = _mm512_fmadd_ps(qm__bf16x16_to_ps(QM__LD256(w + i)), _mm512_loadu_ps(x + i), s0);
        s1 = _mm512_fmadd_ps(qm__bf16x16_to_ps(QM__LD256(w + i + 16)), _mm512_loadu_ps(x + i + 16), s1);
        s2 = _mm512_fmadd_ps(qm__bf16x16_to_ps(QM__LD256(w + i + 32)), _mm512_loadu_ps(x + i + 32), s2);
        s3 = _mm512_fmadd_ps(qm__bf16x16_to_ps(QM__LD256(w + i + 48)), _mm512_loadu_ps(x + i + 48), s3);
    }
    for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(qm__bf16x16_to_ps(QM__LD256(w + i)), _mm512_loadu_ps(x + i), s0);
    if (i < n) {
        const __mmask16 k = QM__CAST(__mmask16, (1u << (n - i)) - 1u);
        s1 = _mm512_fmadd_ps(qm__bf16x16_to_ps(_mm256_maskz_loadu_epi16(k, w + i)), _mm512_maskz_loadu_ps(k, x + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

/* Q8_0: two blocks per register, |w| times a with w's sign (negated under a mask). */
static float qm__dot_q8_0_q8_0_avx512(int64_t n, const void *vw, const void *vx) {
    const qm__block_q8_0 *w = QM__CAST(const qm__block_q8_0 *, vw);
    const qm__block_q8_0 *a = QM__CAST(const qm__block_q8_0 *, vx);
    int64_t i, nb = n / 32;
    const __m512i zero = _mm512_setzero_si512();
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
    float sum;
    for (i = 0; i + 4 <= nb; i += 4) {
        const __m512i w0 = _mm512_inserti64x4(_mm512_castsi256_si512(QM__LD256(w[i].qs)), QM__LD256(w[i + 1].qs), 1);
        const __m512i w1 = _mm512_inserti64x4(_mm512_castsi256_si512(QM__LD256(w[i + 2].qs)), QM__LD256(w[i + 3].qs), 1);
        const __m512i a0 = _mm512_inserti64x4(_mm512_castsi256_si512(QM__LD256(a[i].qs)), QM__LD256(a[i + 1].qs), 1);
        const __m512i a1 = _mm512_inserti64x4(_mm512_castsi256_si512(QM__LD256(a[i + 2].qs)), QM__LD256(a[i + 3].qs), 1);
        const __m512i p0 = qm__dpbusd512(zero, _mm512_abs_epi8(w0), _mm512_mask_sub_epi8(a0, _mm512_movepi8_mask(w0), zero, a0));
        const __m512i p1 = qm__dpbusd512(zero, _mm512_abs_epi8(w1), _mm512_mask_sub_epi8(a1, _mm512_movepi8_mask(w1), zero, a1));
        /* the four block scales: lanes 0-7 block i, 8-15 block i+1 (and i+2, i+3) */
        const __m128 dw = _mm_cvtph_ps(_mm_setr_epi16(QM__CAST(short, w[i].d), QM__CAST(short, w[i + 1].d),
                                                      QM__CAST(short, w[i + 2].d), QM__CAST(short, w[i + 3].d), 0, 0, 0, 0));
        const __m128 da = _mm_cvtph_ps(_mm_setr_epi16(QM__CAST(short, a[i].d), QM__CAST(short, a[i + 1].d),
                                                      QM__CAST(short, a[i + 2].d), QM__CAST(short, a[i + 3].d), 0, 0, 0, 0));
        const __m512 dd = _mm512_castps128_ps512(_mm_mul_ps(dw, da));
        const __m512 d01 = _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1), dd);
        const __m512 d23 = _mm512_permutexvar_ps(_mm512_setr_epi32(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3), dd);
        acc0 = _mm512_fmadd_ps(d01, _mm512_cvtepi32_ps(p0), acc0);
        acc1 = _mm512_fmadd_ps(d23, _mm512_cvtepi32_ps(p1), acc1);
    }
    sum = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
    for (; i < nb; i++) { /* the last 1-3 blocks */
        const __m256i wq = QM__LD256(w[i].qs);
        const __m256i p = qm__dpbusd(_mm256_setzero_si256(), _mm256_sign_epi8(wq, wq), _mm256_sign_epi8(QM__LD256(a[i].qs), wq));
        sum += qm__hsum_ps256(_mm256_cvtepi32_ps(p)) * (qm__h2f(w[i].d) * qm__h2f(a[i].d));
    }
    return sum;
}

/* Q4_K: 64 weight bytes (two chunks) give [low nibbles c | low c+1] and [high c | high c+1];
   the activations are regrouped to match with 128-bit-lane shuffles. */
static float qm__dot_q4_K_q8_K_avx512(int64_t n, const void *vw, const void *vx) {
    const qm__block_q4_K *w = QM__CAST(const qm__block_q4_K *, vw);
    const qm__block_q8_K *a = QM__CAST(const qm__block_q8_K *, vx);
    int64_t i, nb = n / QM__QK_K;
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    /* int16 scale pickers: [sub-block j x16 | sub-block k x16] */
    const __m512i p02 = _mm512_inserti64x4(_mm512_set1_epi16(0), _mm256_set1_epi16(2), 1);
    const __m512i p13 = _mm512_inserti64x4(_mm512_set1_epi16(1), _mm256_set1_epi16(3), 1);
    const __m512i p46 = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(6), 1);
    const __m512i p57 = _mm512_inserti64x4(_mm512_set1_epi16(5), _mm256_set1_epi16(7), 1);
    __m128 acc = _mm_setzero_ps(), accm = _mm_setzero_ps();
    for (i = 0; i < nb; i++) {
        uint8_t sm[16];
        const float d = qm__h2f(w[i].d) * a[i].d, dmin = qm__h2f(w[i].dmin) * a[i].d;
        const int8_t *q8 = a[i].qs;
        __m128i smv;
        __m512i sc, z, lo, hi, x0, x1, s0, s1;
        __m256i imin;
        qm__k4_unpack(w[i].scales, sm);
        smv = QM__LD128(sm);
        imin = _mm256_madd_epi16(QM__LD256(a[i].bsums), _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(smv, smv)));
        sc = _mm512_castsi128_si512(_mm_cvtepu8_epi16(smv)); /* 8 int16 scales */
        /* chunks 0, 1 */
        z = _mm512_loadu_si512(w[i].qs);
        lo = _mm512_and_si512(z, m4);
        hi = _mm512_and_si512(_mm512_srli_epi16(z, 4), m4);
        x0 = _mm512_loadu_si512(q8);
        x1 = _mm512_loadu_si512(q8 + 64);
        s0 = _mm512_madd_epi16(_mm512_maddubs_epi16(lo, _mm512_shuffle_i64x2(x0, x1, 0x44)), _mm512_permutexvar_epi16(p02, sc));
        s1 = _mm512_madd_epi16(_mm512_maddubs_epi16(hi, _mm512_shuffle_i64x2(x0, x1, 0xee)), _mm512_permutexvar_epi16(p13, sc));
        /* chunks 2, 3 */
        z = _mm512_loadu_si512(w[i].qs + 64);
        lo = _mm512_and_si512(z, m4);
        hi = _mm512_and_si512(_mm512_srli_epi16(z, 4), m4);
        x0 = _mm512_loadu_si512(q8 + 128);
        x1 = _mm512_loadu_si512(q8 + 192);
        s0 = qm__dpwssd512(s0, _mm512_maddubs_epi16(lo, _mm512_shuffle_i64x2(x0, x1, 0x44)), _mm512_permutexvar_epi16(p46, sc));
        s1 = qm__dpwssd512(s1, _mm512_maddubs_epi16(hi, _mm512_shuffle_i64x2(x0, x1, 0xee)), _mm512_permutexvar_epi16(p57, sc));
        /* llama.cpp's order (its repacked Q4_K gemv, which it runs for every token of a
           MoE layer and for decode): the block's exact integer sums, then one fma per block
           into each of two running sums */
        acc = _mm_fmadd_ss(_mm_set_ss(QM__CAST(float, _mm512_reduce_add_epi32(_mm512_add_epi32(s0, s1)))), _mm_set_ss(d), acc);
        accm = _mm_fmadd_ss(_mm_set_ss(QM__CAST(float, qm__hsum_epi32_256(imin))), _mm_set_ss(dmin), accm);
    }
    return _mm_cvtss_f32(_mm_sub_ss(acc, accm));
}

/* Q5_K: Q4_K plus 16 under a byte mask from qh: for chunks c, c+1 the low nibbles take
   bits 2c and 2c+2, the high nibbles bits 2c+1 and 2c+3 of the same qh byte. */
static float qm__dot_q5_K_q8_K_avx512(int64_t n, const void *vw, const void *vx) {
    const qm__block_q5_K *w = QM__CAST(const qm__block_q5_K *, vw);
    const qm__block_q8_K *a = QM__CAST(const qm__block_q8_K *, vx);
    int64_t i, nb = n / QM__QK_K;
    const __m512i m4 = _mm512_set1_epi8(0x0f), b4 = _mm512_set1_epi8(0x10);
    const __m512i p02 = _mm512_inserti64x4(_mm512_set1_epi16(0), _mm256_set1_epi16(2), 1);
    const __m512i p13 = _mm512_inserti64x4(_mm512_set1_epi16(1), _mm256_set1_epi16(3), 1);
    const __m512i p46 = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(6), 1);
    const __m512i p57 = _mm512_inserti64x4(_mm512_set1_epi16(5), _mm256_set1_epi16(7), 1);
    const __m512i t02 = _mm512_inserti64x4(_mm512_set1_epi8(0x01), _mm256_set1_epi8(0x04), 1);
    const __m512i t13 = _mm512_inserti64x4(_mm512_set1_epi8(0x02), _mm256_set1_epi8(0x08), 1);
    const __m512i t46 = _mm512_inserti64x4(_mm512_set1_epi8(0x10), _mm256_set1_epi8(0x40), 1);
    const __m512i t57 = _mm512_inserti64x4(_mm512_set1_epi8(0x20), _mm256_set1_epi8(QM__CAST(char, 0x80)), 1);
    __m512 acc = _mm512_setzero_ps();
    __m256 accm = _mm256_setzero_ps();
    for (i = 0; i < nb; i++) {
        uint8_t sm[16];
        const float d = a[i].d * qm__h2f(w[i].d), dmin = a[i].d * qm__h2f(w[i].dmin);
        const int8_t *q8 = a[i].qs;
        const __m512i qh = QM__BCAST256(w[i].qh);
        __m128i smv;
        __m512i sc, z, lo, hi, x0, x1, s0, s1;
        qm__k4_unpack(w[i].scales, sm);
        smv = QM__LD128(sm);
        accm = _mm256_fmadd_ps(_mm256_set1_ps(dmin),
                               _mm256_cvtepi32_ps(_mm256_madd_epi16(QM__LD256(a[i].bsums),
                                                                    _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(smv, smv)))),
                               accm);
        sc = _mm512_castsi128_si512(_mm_cvtepu8_epi16(smv));
        z = _mm512_loadu_si512(w[i].qs);
        lo = _mm512_and_si512(z, m4);
        lo = _mm512_mask_add_epi8(lo, _mm512_test_epi8_mask(qh, t02), lo, b4);
        hi = _mm512_and_si512(_mm512_srli_epi16(z, 4), m4);
        hi = _mm512_mask_add_epi8(hi, _mm512_test_epi8_mask(qh, t13), hi, b4);
        x0 = _mm512_loadu_si512(q8);
        x1 = _mm512_loadu_si512(q8 + 64);
        s0 = _mm512_madd_epi16(_mm512_maddubs_epi16(lo, _mm512_shuffle_i64x2(x0, x1, 0x44)), _mm512_permutexvar_epi16(p02, sc));
        s1 = _mm512_madd_epi16(_mm512_maddubs_epi16(hi, _mm512_shuffle_i64x2(x0, x1, 0xee)), _mm512_permutexvar_epi16(p13, sc));
        z = _mm512_loadu_si512(w[i].qs + 64);
        lo = _mm512_and_si512(z, m4);
        lo = _mm512_mask_add_epi8(lo, _mm512_test_epi8_mask(qh, t46), lo, b4);
        hi = _mm512_and_si512(_mm512_srli_epi16(z, 4), m4);
        hi = _mm512_mask_add_epi8(hi, _mm512_test_epi8_mask(qh, t57), hi, b4);
        x0 = _mm512_loadu_si512(q8 + 128);
        x1 = _mm512_loadu_si512(q8 + 192);
        s0 = qm__dpwssd512(s0, _mm512_maddubs_epi16(lo, _mm512_shuffle_i64x2(x0, x1, 0x44)), _mm512_permutexvar_epi16(p46, sc));
        s1 = qm__dpwssd512(s1, _mm512_maddubs_epi16(hi, _mm512_shuffle_i64x2(x0, x1, 0xee)), _mm512_permutexvar_epi16(p57, sc));
        acc = _mm512_fmadd_ps(_mm512_set1_ps(d), _mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)), acc);
    }
    return _mm512_reduce_add_ps(acc) - qm__hsum_ps256(accm);
}

/* llama.cpp's Q6_K order (its AVX2 dot, which it runs on every x86 CPU): per block 8 int32
   lanes, lane k the sum over the elements whose index mod 32 is 4 k .. 4 k + 3, each as
   scale * (q - 32) * a; then acc8 += d * lanes, and the 8 lanes summed at the end as
   qm__hsum_ps256 does. Our 16 lanes cover 64-element spans, so lanes k and k + 8 fold. */
static QM__INLINE __m256i qm__q6k_lanes8(__m512i s) {
    return _mm256_add_epi32(_mm512_castsi512_si256(s), _mm512_extracti64x4_epi64(s, 1));
}

/* Q6_K: per 128-element half, ql (64 bytes) gives elements 0-63 (low nibbles) and 64-127
   (high nibbles); qh (32 bytes, in both register halves) their bits 4-5, shifted into
   place per 256-bit half. Scales: one per 8 int16 lanes. */
static float qm__dot_q6_K_q8_K_avx512(int64_t n, const void *vw, const void *vx) {
    const qm__block_q6_K *w = QM__CAST(const qm__block_q6_K *, vw);
    const qm__block_q8_K *a = QM__CAST(const qm__block_q8_K *, vx);
    int64_t i, nb = n / QM__QK_K;
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    /* elements 0-31: qh bits 0-1 -> 4-5 (<<4); 32-63: bits 2-3 (<<2); 64-95: bits 4-5 (as
       is); 96-127: bits 6-7 (>>2) */
    const __m512i hm_a = _mm512_inserti64x4(_mm512_set1_epi8(0x03), _mm256_set1_epi8(0x0c), 1);
    const __m512i hs_a = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
    const __m512i hm_b = _mm512_inserti64x4(_mm512_set1_epi8(0x30), _mm256_set1_epi8(QM__CAST(char, 0xc0)), 1);
    const __m512i hs_b = _mm512_inserti64x4(_mm512_set1_epi16(0), _mm256_set1_epi16(2), 1);
    const __m512i pk0 = _mm512_setr_epi64(0x0000000000000000ll, 0x0000000000000000ll, 0x0001000100010001ll, 0x0001000100010001ll,
                                          0x0002000200020002ll, 0x0002000200020002ll, 0x0003000300030003ll, 0x0003000300030003ll);
    const __m512i four = _mm512_set1_epi16(4), m32 = _mm512_set1_epi8(32);
    __m256 acc = _mm256_setzero_ps();
    int half;
    for (i = 0; i < nb; i++) {
        const float d = a[i].d * qm__h2f(w[i].d);
        const __m512i sc = _mm512_castsi256_si512(_mm256_cvtepi8_epi16(QM__LD128(w[i].scales)));
        __m512i s0 = _mm512_setzero_si512(), s1 = s0, pk = pk0;
        for (half = 0; half < 2; half++) {
            const __m512i l = _mm512_loadu_si512(w[i].ql + 64 * half), h = QM__BCAST256(w[i].qh + 32 * half);
            const int8_t *q8 = a[i].qs + 128 * half;
            const __m512i qa = _mm512_or_si512(_mm512_and_si512(l, m4), _mm512_sllv_epi16(_mm512_and_si512(h, hm_a), hs_a));
            const __m512i qb = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4),
                                               _mm512_srlv_epi16(_mm512_and_si512(h, hm_b), hs_b));
            const __m512i xa = _mm512_loadu_si512(q8), xb = _mm512_loadu_si512(q8 + 64);
            /* (q - 32) a per pair, in int16 */
            s0 = qm__dpwssd512(s0, _mm512_sub_epi16(_mm512_maddubs_epi16(qa, xa), _mm512_maddubs_epi16(m32, xa)),
                               _mm512_permutexvar_epi16(pk, sc));
            pk = _mm512_add_epi16(pk, four);
            s1 = qm__dpwssd512(s1, _mm512_sub_epi16(_mm512_maddubs_epi16(qb, xb), _mm512_maddubs_epi16(m32, xb)),
                               _mm512_permutexvar_epi16(pk, sc));
            pk = _mm512_add_epi16(pk, four);
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(qm__q6k_lanes8(_mm512_add_epi32(s0, s1))), acc);
    }
    return qm__hsum_ps256(acc);
}

/* Q4_K against 4 activation rows at once: the weights are decoded once per super-block
   and used 4 times. out[t] = row . act row t (rows qx_stride bytes apart). */
static void qm__dot4_q4_K_q8_K_avx512(int64_t n, const void *vw, const void *vx, size_t qx_stride, float *out) {
    const qm__block_q4_K *w = QM__CAST(const qm__block_q4_K *, vw);
    const qm__block_q8_K *a[4];
    int64_t i, nb = n / QM__QK_K;
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const __m512i p02 = _mm512_inserti64x4(_mm512_set1_epi16(0), _mm256_set1_epi16(2), 1);
    const __m512i p13 = _mm512_inserti64x4(_mm512_set1_epi16(1), _mm256_set1_epi16(3), 1);
    const __m512i p46 = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(6), 1);
    const __m512i p57 = _mm512_inserti64x4(_mm512_set1_epi16(5), _mm256_set1_epi16(7), 1);
    __m512 acc[4];
    __m256 accm[4];
    int t;
    for (t = 0; t < 4; t++) {
        a[t] = QM__PTR(const qm__block_q8_K *, QM__CAST(const uint8_t *, vx) + qx_stride * QM__CAST(size_t, t));
        acc[t] = _mm512_setzero_ps();
        accm[t] = _mm256_setzero_ps();
    }
    for (i = 0; i < nb; i++) {
        uint8_t sm[16];
        const float dw = qm__h2f(w[i].d), dminw = qm__h2f(w[i].dmin);
        __m128i smv;
        __m256i mins16;
        __m512i sc, z0, z1, lo0, hi0, lo1, hi1, c02, c13, c46, c57;
        qm__k4_unpack(w[i].scales, sm);
        smv = QM__LD128(sm);
        mins16 = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(smv, smv));
        sc = _mm512_castsi128_si512(_mm_cvtepu8_epi16(smv));
        c02 = _mm512_permutexvar_epi16(p02, sc);
        c13 = _mm512_permutexvar_epi16(p13, sc);
        c46 = _mm512_permutexvar_epi16(p46, sc);
        c57 = _mm512_permutexvar_epi16(p57, sc);
        z0 = _mm512_loadu_si512(w[i].qs);
        z1 = _mm512_loadu_si512(w[i].qs + 64);
        lo0 = _mm512_and_si512(z0, m4);
        hi0 = _mm512_and_si512(_mm512_srli_epi16(z0, 4), m4);
        lo1 = _mm512_and_si512(z1, m4);
        hi1 = _mm512_and_si512(_mm512_srli_epi16(z1, 4), m4);
        for (t = 0; t < 4; t++) {
            const int8_t *q8 = a[t][i].qs;
            const __m512i x0 = _mm512_loadu_si512(q8), x1 = _mm512_loadu_si512(q8 + 64);
            const __m512i x2 = _mm512_loadu_si512(q8 + 128), x3 = _mm512_loadu_si512(q8 + 192);
            __m512i s0 = _mm512_madd_epi16(_mm512_maddubs_epi16(lo0, _mm512_shuffle_i64x2(x0, x1, 0x44)), c02);
            __m512i s1 = _mm512_madd_epi16(_mm512_maddubs_epi16(hi0, _mm512_shuffle_i64x2(x0, x1, 0xee)), c13);
            s0 = qm__dpwssd512(s0, _mm512_maddubs_epi16(lo1, _mm512_shuffle_i64x2(x2, x3, 0x44)), c46);
            s1 = qm__dpwssd512(s1, _mm512_maddubs_epi16(hi1, _mm512_shuffle_i64x2(x2, x3, 0xee)), c57);
            accm[t] = _mm256_fmadd_ps(_mm256_set1_ps(a[t][i].d * dminw),
                                      _mm256_cvtepi32_ps(_mm256_madd_epi16(QM__LD256(a[t][i].bsums), mins16)), accm[t]);
            acc[t] = _mm512_fmadd_ps(_mm512_set1_ps(a[t][i].d * dw), _mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)), acc[t]);
        }
    }
    for (t = 0; t < 4; t++) out[t] = _mm512_reduce_add_ps(acc[t]) - qm__hsum_ps256(accm[t]);
}

#if defined(__AVX512VNNI__)
/* Q4_K prefill for T >= QM__Q4R_MIN_T tokens, with 16 weight rows in the vector lanes. A tile of
   16 rows x one 256-quant block is decoded once (gathers across the rows for the scales, a
   transpose for the quants) into 64 vectors: lane r of q[8 j + c] holds quants 32 j + 4 c ..
   + 3 of row r, as unsigned bytes. Each token then broadcasts 4 of its Q8_K bytes at a time
   against them (dpbusd), one instruction per 4 x 16 multiply-adds and nothing to decode per
   token, where the kernel below spends its shuffles and madds on every token. Per row:
   sum_j sc_j * (q . a over sub-block j), exact in int32; the mins' term sum_j m_j * (the
   token's sum over sub-block j) comes from the Q8_K bsums by dpwssd. The float sums that
   follow are llama.cpp's (qm__mm_q4_K_r16). */
#define QM__Q4R_TOK 64   /* tokens per pass over the decoded tiles of 16 rows */
#define QM__Q4R_MIN_T 2  /* from 2 tokens on it beats the 8-token kernel below (bench-kernels) */
typedef struct qm__q4r_tile {
    __m512i q[64];             /* sub-block j, 4-byte group c: q[8 j + c] */
    __m512i sc[8];             /* sub-block scales, int32 per row */
    __m512i mm[8];             /* sub-block mins, m | m << 16 (both int16 halves) */
    __m512 d, dmin;
    __m512i isum[QM__Q4R_TOK]; /* per token of the pass: sum_j sc_j (q . a)_j, this sub-block pair */
    __m512i iblk[QM__Q4R_TOK]; /* the same, this block */
    __m512 acc[QM__Q4R_TOK], accm[QM__Q4R_TOK]; /* per token: sum of d_t d isum, of d_t dmin imin */
} qm__q4r_tile;

/* v[i] lane j <- v[j] lane i, for 16 x 16 int32 */
static QM__ALWAYS_INLINE void qm__transpose16_epi32(__m512i *v) {
    __m512i t[16];
    int i, k;
    for (i = 0; i < 8; i++) { /* lane 4 L + k of t[2 i], t[2 i + 1]: rows 2 i, 2 i + 1 interleaved */
        t[2 * i] = _mm512_unpacklo_epi32(v[2 * i], v[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(v[2 * i], v[2 * i + 1]);
    }
    for (i = 0; i < 4; i++) { /* 128-bit lane L of v[4 i + k]: element 4 L + k of rows 4 i .. 4 i + 3 */
        v[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
        v[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
        v[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
        v[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
    for (k = 0; k < 4; k++) { /* gather the 128-bit lanes: element 4 L + k from the four row groups */
        const __m512i a0 = _mm512_shuffle_i32x4(v[k], v[4 + k], 0x88), a1 = _mm512_shuffle_i32x4(v[k], v[4 + k], 0xdd);
        const __m512i b0 = _mm512_shuffle_i32x4(v[8 + k], v[12 + k], 0x88), b1 = _mm512_shuffle_i32x4(v[8 + k], v[12 + k], 0xdd);
        t[k] = _mm512_shuffle_i32x4(a0, b0, 0x88);
        t[8 + k] = _mm512_shuffle_i32x4(a0, b0, 0xdd);
        t[4 + k] = _mm512_shuffle_i32x4(a1, b1, 0x88);
        t[12 + k] = _mm512_shuffle_i32x4(a1, b1, 0xdd);
    }
    for (i = 0; i < 16; i++) v[i] = t[i];
}

/* blk: block b of the tile's first row; the other 15 rows follow row_bytes apart */
static void qm__q4r_decode(const uint8_t *blk, size_t row_bytes, qm__q4r_tile *o) {
    const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                           _mm512_set1_epi32(QM__CAST(int, row_bytes)));
    const __m512i m4 = _mm512_set1_epi8(0x0f), m6 = _mm512_set1_epi8(0x3f), m2 = _mm512_set1_epi8(0x03);
    const __m512i ff = _mm512_set1_epi32(0xff);
    const __m512i dd = _mm512_i32gather_epi32(idx, blk, 1);          /* d | dmin << 16 */
    const __m512i u0 = _mm512_i32gather_epi32(idx, blk + 4, 1);      /* the 12 scale bytes */
    const __m512i u1 = _mm512_i32gather_epi32(idx, blk + 8, 1);
    const __m512i u2 = _mm512_i32gather_epi32(idx, blk + 12, 1);
    /* qm__k4_unpack, 16 rows at once: 4 scales or mins per int32 */
    const __m512i s03 = _mm512_and_si512(u0, m6), m03 = _mm512_and_si512(u1, m6);
    const __m512i s47 = _mm512_or_si512(_mm512_and_si512(u2, m4), _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(u0, 6), m2), 4));
    const __m512i m47 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(u2, 4), m4),
                                        _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(u1, 6), m2), 4));
    int j, g, h;
    for (j = 0; j < 4; j++) {
        const __m512i mlo = _mm512_and_si512(_mm512_srli_epi32(m03, 8 * j), ff);
        const __m512i mhi = _mm512_and_si512(_mm512_srli_epi32(m47, 8 * j), ff);
        o->sc[j] = _mm512_and_si512(_mm512_srli_epi32(s03, 8 * j), ff);
        o->sc[j + 4] = _mm512_and_si512(_mm512_srli_epi32(s47, 8 * j), ff);
        o->mm[j] = _mm512_or_si512(mlo, _mm512_slli_epi32(mlo, 16));
        o->mm[j + 4] = _mm512_or_si512(mhi, _mm512_slli_epi32(mhi, 16));
    }
    o->d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dd));
    o->dmin = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(dd, 16)));
    /* qs, 64 bytes of each row at a time, transposed: packed 4-byte group g = 16 h + c of
       every row; its low nibbles are sub-block 2 (g / 8), its high ones 2 (g / 8) + 1 */
    for (h = 0; h < 2; h++) {
        __m512i v[16];
        for (g = 0; g < 16; g++) v[g] = _mm512_loadu_si512(blk + row_bytes * QM__CAST(size_t, g) + 16 + 64 * h);
        qm__transpose16_epi32(v);
        for (g = 16 * h; g < 16 * h + 16; g++) {
            o->q[16 * (g / 8) + g % 8] = _mm512_and_si512(v[g - 16 * h], m4);
            o->q[16 * (g / 8) + 8 + g % 8] = _mm512_and_si512(_mm512_srli_epi32(v[g - 16 * h], 4), m4);
        }
    }
}

/* 4 bytes at p, in every lane (memcpy: p may point into int8 or int16 arrays) */
static QM__INLINE __m512i qm__bcast32(const void *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}
/* acc + dpbusd(w, the 4 signed bytes at p in every lane). With GCC and clang it is one
   instruction with an embedded broadcast: from the intrinsics GCC 12 makes a vpbroadcastd
   for every dpbusd, and those extra micro-ops held the kernel at the front end's limit. */
static QM__INLINE __m512i qm__dpbusd_bc(__m512i acc, __m512i w, const int8_t *p) {
#if defined(__GNUC__)
    __asm__("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*QM__PTR(const char (*)[4], p)));
    return acc;
#else
    return _mm512_dpbusd_epi32(acc, w, qm__bcast32(p));
#endif
}

/* GCC 12 reloads the tile's vectors from memory before every dpbusd rather than keep them
   in registers (there are enough); an empty asm that "changes" a value pins it to one. */
#if defined(__GNUC__)
#define QM__IN_REG(x) __asm__("" : "+v"(x))
#else
#define QM__IN_REG(x) ((void)0)
#endif

/* The 16-row kernels' prefetch: the tile two blocks after block b of rows r.. (past the last
   block: the next 16 rows' first blocks), every cache line of its 16 rows' blocks. 16 rows far
   apart defeat the hardware prefetcher, and a gather that misses waits for DRAM. */
static QM__ALWAYS_INLINE void qm__r16_prefetch(const uint8_t *wb, size_t row_bytes, size_t block_bytes, int64_t r, int64_t r1,
                                               int64_t b, int64_t nb) {
    const int64_t pb = b + 2 < nb ? b + 2 : b + 2 - nb, pr = b + 2 < nb ? r : r + 16;
    if (pr + 16 <= r1 && pb < nb) {
        const char *pf = QM__PTR(const char *, wb + row_bytes * QM__CAST(size_t, pr) + block_bytes * QM__CAST(size_t, pb));
        size_t o;
        int k;
        for (k = 0; k < 16; k++, pf += row_bytes) {
            for (o = 0; o < block_bytes; o += 64) _mm_prefetch(pf + o, _MM_HINT_T0);
            _mm_prefetch(pf + block_bytes - 1, _MM_HINT_T0); /* a block that starts late in a line ends a line further */
        }
    }
}

/* rows r0..r1-1 (a multiple of 16 of them) x T tokens. The sums go in llama.cpp's order,
   so that our results are its results bit for bit where the inputs are: tokens ng.. as its
   repacked Q4_K gemv does them (per block: the block's exact integer sum, one fma into a
   running sum, one into a running sum of the mins' terms, their difference at the end; its
   MoE layers and decode run this), tokens ..ng-1 as its gemm (which it runs on the rows of a
   dense product in groups of 4, the rest through the gemv): the same, per 64-quant sub-block
   pair instead of per block. */
static QM__NOINLINE void qm__mm_q4_K_r16(int64_t n, const uint8_t *wb, size_t row_bytes, int64_t r0, int64_t r1,
                                         const uint8_t *xb, size_t act_stride, int T, int ng, float *y, int64_t ldy) {
    const int64_t nb = n / QM__QK_K;
    qm__q4r_tile tl;
    int64_t r, b;
    int tc, t, j;
    for (r = r0; r + 16 <= r1; r += 16) {
        for (tc = 0; tc < T; tc += QM__Q4R_TOK) {
            const int nt = T - tc < QM__Q4R_TOK ? T - tc : QM__Q4R_TOK;
            const int ngc = ng - tc < 0 ? 0 : ng - tc < nt ? ng - tc : nt; /* gemm-order tokens of the pass */
            const uint8_t *a0 = xb + act_stride * QM__CAST(size_t, tc);
            for (b = 0; b < nb; b++) {
                const uint8_t *ab = a0 + sizeof(qm__block_q8_K) * QM__CAST(size_t, b);
                qm__r16_prefetch(wb, row_bytes, sizeof(qm__block_q4_K), r, r1, b, nb);
                qm__q4r_decode(wb + row_bytes * QM__CAST(size_t, r) + sizeof(qm__block_q4_K) * QM__CAST(size_t, b), row_bytes, &tl);
                for (j = 0; j < 8; j++) {
                    __m512i w0 = tl.q[8 * j], w1 = tl.q[8 * j + 1], w2 = tl.q[8 * j + 2], w3 = tl.q[8 * j + 3];
                    __m512i w4 = tl.q[8 * j + 4], w5 = tl.q[8 * j + 5], w6 = tl.q[8 * j + 6], w7 = tl.q[8 * j + 7];
                    const __m512i sc = tl.sc[j];
                    QM__IN_REG(w0); QM__IN_REG(w1); QM__IN_REG(w2); QM__IN_REG(w3);
                    QM__IN_REG(w4); QM__IN_REG(w5); QM__IN_REG(w6); QM__IN_REG(w7);
                    for (t = 0; t < nt; t++) {
                        const int8_t *q8 = QM__PTR(const qm__block_q8_K *, ab + act_stride * QM__CAST(size_t, t))->qs + 32 * j;
                        /* two chains of four, so that more tokens' sums are in flight at once */
                        __m512i p = qm__dpbusd_bc(_mm512_setzero_si512(), w0, q8);
                        __m512i p2 = qm__dpbusd_bc(_mm512_setzero_si512(), w1, q8 + 4);
                        p = qm__dpbusd_bc(p, w2, q8 + 8);
                        p2 = qm__dpbusd_bc(p2, w3, q8 + 12);
                        p = qm__dpbusd_bc(p, w4, q8 + 16);
                        p2 = qm__dpbusd_bc(p2, w5, q8 + 20);
                        p = qm__dpbusd_bc(p, w6, q8 + 24);
                        p2 = qm__dpbusd_bc(p2, w7, q8 + 28);
                        p = _mm512_mullo_epi32(_mm512_add_epi32(p, p2), sc);
                        if (!(j & 1)) {
                            tl.isum[t] = p;
                        } else if (t < ngc) { /* gemm order: one fma per sub-block pair */
                            const __m512 ds = _mm512_mul_ps(tl.d, _mm512_set1_ps(QM__PTR(const qm__block_q8_K *, ab + act_stride * QM__CAST(size_t, t))->d));
                            const __m512 pf = _mm512_cvtepi32_ps(_mm512_add_epi32(tl.isum[t], p));
                            tl.acc[t] = _mm512_fmadd_ps(pf, ds, b || j > 1 ? tl.acc[t] : _mm512_setzero_ps());
                        } else {
                            p = _mm512_add_epi32(tl.isum[t], p);
                            tl.iblk[t] = j > 1 ? _mm512_add_epi32(tl.iblk[t], p) : p;
                        }
                    }
                }
                {
                    const __m512i n0 = tl.mm[0], n1 = tl.mm[1], n2 = tl.mm[2], n3 = tl.mm[3];
                    const __m512i n4 = tl.mm[4], n5 = tl.mm[5], n6 = tl.mm[6], n7 = tl.mm[7];
                    for (t = 0; t < nt; t++) {
                        const qm__block_q8_K *a = QM__PTR(const qm__block_q8_K *, ab + act_stride * QM__CAST(size_t, t));
                        const __m512 dt = _mm512_set1_ps(a->d), dm = _mm512_mul_ps(tl.dmin, dt);
                        /* bsums hold 16-quant sums: m_j pairs with bsums 2 j and 2 j + 1 */
                        __m512i im0 = _mm512_dpwssd_epi32(_mm512_setzero_si512(), n0, qm__bcast32(a->bsums));
                        __m512i im1 = _mm512_dpwssd_epi32(_mm512_setzero_si512(), n2, qm__bcast32(a->bsums + 4));
                        __m512i im2 = _mm512_dpwssd_epi32(_mm512_setzero_si512(), n4, qm__bcast32(a->bsums + 8));
                        __m512i im3 = _mm512_dpwssd_epi32(_mm512_setzero_si512(), n6, qm__bcast32(a->bsums + 12));
                        __m512 fm = b ? tl.accm[t] : _mm512_setzero_ps();
                        im0 = _mm512_dpwssd_epi32(im0, n1, qm__bcast32(a->bsums + 2));
                        im1 = _mm512_dpwssd_epi32(im1, n3, qm__bcast32(a->bsums + 6));
                        im2 = _mm512_dpwssd_epi32(im2, n5, qm__bcast32(a->bsums + 10));
                        im3 = _mm512_dpwssd_epi32(im3, n7, qm__bcast32(a->bsums + 14));
                        if (t < ngc) { /* gemm order: per sub-block pair */
                            fm = _mm512_fmadd_ps(_mm512_cvtepi32_ps(im0), dm, fm);
                            fm = _mm512_fmadd_ps(_mm512_cvtepi32_ps(im1), dm, fm);
                            fm = _mm512_fmadd_ps(_mm512_cvtepi32_ps(im2), dm, fm);
                            fm = _mm512_fmadd_ps(_mm512_cvtepi32_ps(im3), dm, fm);
                        } else { /* gemv order: per block */
                            const __m512i im = _mm512_add_epi32(_mm512_add_epi32(im0, im1), _mm512_add_epi32(im2, im3));
                            fm = _mm512_fmadd_ps(_mm512_cvtepi32_ps(im), dm, fm);
                            tl.acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(tl.iblk[t]), _mm512_mul_ps(tl.d, dt), b ? tl.acc[t] : _mm512_setzero_ps());
                        }
                        tl.accm[t] = fm;
                    }
                }
            }
            for (t = 0; t < nt; t++) _mm512_storeu_ps(y + QM__CAST(int64_t, tc + t) * ldy + r, _mm512_sub_ps(tl.acc[t], tl.accm[t]));
        }
    }
}

/* Q6_K prefill for T >= QM__Q6R_MIN_T tokens, 16 weight rows in the lanes as for Q4_K above.
   The sums must be those of llama.cpp's Q6_K dot (it does not repack Q6_K): per block, 8
   exact int32 lanes, lane k the sum of sc * (q - 32) * a over the quants whose index mod 32
   is 4 k .. 4 k + 3; then acc_k += d_t d * lane k, block after block, and at the end
   ((acc0 + acc4) + (acc2 + acc6)) + ((acc1 + acc5) + (acc3 + acc7)). sc * (q - 32) needs
   16 bits (|sc| <= 128, |q - 32| <= 32), so the tile holds those products as int16 pairs and
   the tokens go in by dpwssd, two products per lane and instruction where Q4_K's dpbusd has
   four; that is still far less work per token than decoding the row for every 4 tokens. */
#define QM__Q6R_TOK 32   /* tokens per pass over a decoded tile */
#define QM__Q6R_MIN_T 5   /* below, the 4-token kernel wins (bench-kernels, 2048 x 768) */
typedef struct qm__q6r_tile {
    __m512i w[128];   /* w[16 k + 2 g + p]: lane r = row r's sc * (q - 32) of quants
                         32 g + 4 k + p and 32 g + 4 k + p + 2, as two int16 */
    __m512 d;
} qm__q6r_tile;

/* blk: block b of the tile's first row; the other 15 rows follow row_bytes apart */
static void qm__q6r_decode(const uint8_t *blk, size_t row_bytes, qm__q6r_tile *o) {
    const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                           _mm512_set1_epi32(QM__CAST(int, row_bytes)));
    const __m512i m4 = _mm512_set1_epi8(0x0f), lo8 = _mm512_set1_epi16(0x00ff), k32 = _mm512_set1_epi16(32);
    const __m512i lo16 = _mm512_set1_epi32(0xffff);
    /* the high bits as in qm__dot_q6_K_q8_K_avx512 */
    const __m512i hm_a = _mm512_inserti64x4(_mm512_set1_epi8(0x03), _mm256_set1_epi8(0x0c), 1);
    const __m512i hs_a = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
    const __m512i hm_b = _mm512_inserti64x4(_mm512_set1_epi8(0x30), _mm256_set1_epi8(QM__CAST(char, 0xc0)), 1);
    const __m512i hs_b = _mm512_inserti64x4(_mm512_set1_epi16(0), _mm256_set1_epi16(2), 1);
    /* d is the last 2 bytes of the 210: read 206..209, so as not to read past the row */
    const __m512i dd = _mm512_i32gather_epi32(idx, blk + 206, 1);
    __m512i u[4], sc[16];
    int s, z, c;
    for (s = 0; s < 4; s++) u[s] = _mm512_i32gather_epi32(idx, blk + 192 + 4 * s, 1);
    for (s = 0; s < 16; s++) { /* scale s, sign-extended, in both int16 halves */
        const __m512i x = _mm512_srai_epi32(_mm512_slli_epi32(u[s / 4], 24 - 8 * (s % 4)), 24);
        sc[s] = _mm512_or_si512(_mm512_and_si512(x, lo16), _mm512_slli_epi32(x, 16));
    }
    o->d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(dd, 16)));
    /* z: quants 64 z .. 64 z + 63 of every row, as bytes, transposed: dword c of row r is
       quants 64 z + 4 c .. + 3, i.e. g = 2 z + c / 8, k = c % 8, scale 2 g + k / 4 */
    for (z = 0; z < 4; z++) {
        const int h = z / 2;
        __m512i v[16];
        for (c = 0; c < 16; c++) {
            const uint8_t *p = blk + row_bytes * QM__CAST(size_t, c);
            const __m512i l = _mm512_loadu_si512(p + 64 * h), hb = QM__BCAST256(p + 128 + 32 * h);
            v[c] = z % 2 ? _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4), _mm512_srlv_epi16(_mm512_and_si512(hb, hm_b), hs_b))
                         : _mm512_or_si512(_mm512_and_si512(l, m4), _mm512_sllv_epi16(_mm512_and_si512(hb, hm_a), hs_a));
        }
        qm__transpose16_epi32(v);
        for (c = 0; c < 16; c++) {
            const int g = 2 * z + c / 8, k = c % 8;
            const __m512i scv = sc[2 * g + k / 4];
            o->w[16 * k + 2 * g] = _mm512_mullo_epi16(_mm512_sub_epi16(_mm512_and_si512(v[c], lo8), k32), scv);
            o->w[16 * k + 2 * g + 1] = _mm512_mullo_epi16(_mm512_sub_epi16(_mm512_srli_epi16(v[c], 8), k32), scv);
        }
    }
}

/* acc + dpwssd(w, the two int16 at p in every lane), one instruction as qm__dpbusd_bc */
static QM__INLINE __m512i qm__dpwssd_bc(__m512i acc, __m512i w, const int16_t *p) {
#if defined(__GNUC__)
    __asm__("vpdpwssd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*QM__PTR(const char (*)[4], p)));
    return acc;
#else
    return _mm512_dpwssd_epi32(acc, w, qm__bcast32(p));
#endif
}

/* rows r0..r1-1 (a multiple of 16 of them) x T tokens, in llama.cpp's order (see above) */
static QM__NOINLINE void qm__mm_q6_K_r16(int64_t n, const uint8_t *wb, size_t row_bytes, int64_t r0, int64_t r1,
                                         const uint8_t *xb, size_t act_stride, int T, float *y, int64_t ldy) {
    const int64_t nb = n / QM__QK_K;
    /* within each 4 quants a0 a1 a2 a3 the order a0 a2 a1 a3, to meet the tile's pairs */
    const __m512i perm = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 2, 1, 3, 4, 6, 5, 7, 8, 10, 9, 11, 12, 14, 13, 15));
    qm__q6r_tile tl;
    int16_t a16[QM__Q6R_TOK][QM__QK_K]; /* this block's quants of the pass's tokens, as int16 */
    __m512 acc[QM__Q6R_TOK][8], ds[QM__Q6R_TOK];
    int64_t r, b;
    int tc, t, k, q;
    for (r = r0; r + 16 <= r1; r += 16) {
        for (tc = 0; tc < T; tc += QM__Q6R_TOK) {
            const int nt = T - tc < QM__Q6R_TOK ? T - tc : QM__Q6R_TOK;
            const uint8_t *a0 = xb + act_stride * QM__CAST(size_t, tc);
            for (b = 0; b < nb; b++) {
                const uint8_t *ab = a0 + sizeof(qm__block_q8_K) * QM__CAST(size_t, b);
                qm__r16_prefetch(wb, row_bytes, sizeof(qm__block_q6_K), r, r1, b, nb);
                qm__q6r_decode(wb + row_bytes * QM__CAST(size_t, r) + sizeof(qm__block_q6_K) * QM__CAST(size_t, b), row_bytes, &tl);
                for (t = 0; t < nt; t++) {
                    const qm__block_q8_K *a = QM__PTR(const qm__block_q8_K *, ab + act_stride * QM__CAST(size_t, t));
                    for (q = 0; q < 4; q++) {
                        const __m512i x = _mm512_shuffle_epi8(_mm512_loadu_si512(a->qs + 64 * q), perm);
                        _mm512_storeu_si512(a16[t] + 64 * q, _mm512_cvtepi8_epi16(_mm512_castsi512_si256(x)));
                        _mm512_storeu_si512(a16[t] + 64 * q + 32, _mm512_cvtepi8_epi16(_mm512_extracti64x4_epi64(x, 1)));
                    }
                    ds[t] = _mm512_mul_ps(_mm512_set1_ps(a->d), tl.d);
                }
                for (k = 0; k < 8; k++) {
                    __m512i w0 = tl.w[16 * k], w1 = tl.w[16 * k + 1], w2 = tl.w[16 * k + 2], w3 = tl.w[16 * k + 3];
                    __m512i w4 = tl.w[16 * k + 4], w5 = tl.w[16 * k + 5], w6 = tl.w[16 * k + 6], w7 = tl.w[16 * k + 7];
                    __m512i w8 = tl.w[16 * k + 8], w9 = tl.w[16 * k + 9], w10 = tl.w[16 * k + 10], w11 = tl.w[16 * k + 11];
                    __m512i w12 = tl.w[16 * k + 12], w13 = tl.w[16 * k + 13], w14 = tl.w[16 * k + 14], w15 = tl.w[16 * k + 15];
                    QM__IN_REG(w0); QM__IN_REG(w1); QM__IN_REG(w2); QM__IN_REG(w3);
                    QM__IN_REG(w4); QM__IN_REG(w5); QM__IN_REG(w6); QM__IN_REG(w7);
                    QM__IN_REG(w8); QM__IN_REG(w9); QM__IN_REG(w10); QM__IN_REG(w11);
                    QM__IN_REG(w12); QM__IN_REG(w13); QM__IN_REG(w14); QM__IN_REG(w15);
                    for (t = 0; t < nt; t++) {
                        const int16_t *p = a16[t] + 4 * k; /* pair (g, p) of lane k at p + 32 g + 2 p */
                        __m512i s0 = qm__dpwssd_bc(_mm512_setzero_si512(), w0, p);
                        __m512i s1 = qm__dpwssd_bc(_mm512_setzero_si512(), w1, p + 2);
                        __m512i s2 = qm__dpwssd_bc(_mm512_setzero_si512(), w2, p + 32);
                        __m512i s3 = qm__dpwssd_bc(_mm512_setzero_si512(), w3, p + 34);
                        s0 = qm__dpwssd_bc(s0, w4, p + 64);
                        s1 = qm__dpwssd_bc(s1, w5, p + 66);
                        s2 = qm__dpwssd_bc(s2, w6, p + 96);
                        s3 = qm__dpwssd_bc(s3, w7, p + 98);
                        s0 = qm__dpwssd_bc(s0, w8, p + 128);
                        s1 = qm__dpwssd_bc(s1, w9, p + 130);
                        s2 = qm__dpwssd_bc(s2, w10, p + 160);
                        s3 = qm__dpwssd_bc(s3, w11, p + 162);
                        s0 = qm__dpwssd_bc(s0, w12, p + 192);
                        s1 = qm__dpwssd_bc(s1, w13, p + 194);
                        s2 = qm__dpwssd_bc(s2, w14, p + 224);
                        s3 = qm__dpwssd_bc(s3, w15, p + 226);
                        acc[t][k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(_mm512_add_epi32(s0, s1), _mm512_add_epi32(s2, s3))),
                                                    ds[t], b ? acc[t][k] : _mm512_setzero_ps());
                    }
                }
            }
            for (t = 0; t < nt; t++) {
                const __m512 *f = acc[t];
                const __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(f[0], f[4]), _mm512_add_ps(f[2], f[6])),
                                               _mm512_add_ps(_mm512_add_ps(f[1], f[5]), _mm512_add_ps(f[3], f[7])));
                _mm512_storeu_ps(y + QM__CAST(int64_t, tc + t) * ldy + r, s);
            }
        }
    }
}
#endif

/* Q4_K prefill: rows r0..r1-1 against T >= 2 activation rows, 8 tokens per decoded weight
   block. The 4-token kernel above decodes the nibbles and scales for every 4 tokens and keeps
   a second accumulator for the mins; here one decode serves 8 tokens, the scales go in with
   one madd and three dpwssd, and the mins' term  d_t * dmin * sum_j m_j * (bsums of sub-block
   j)  is a dot product of the row's dmin_b * m_b,j (kept as its blocks are decoded) with
   vectors built once per token chunk: bsf[t][8 b + j] = d_t,b * sub-block j's sum. The 8 (or 4) accumulators are named variables,
   not an array, so that they stay in registers. Returns 0 (nothing done) when the rows are
   longer than its buffers hold (over 16384 columns). */
#define QM__MMK_TOK 8
#define QM__MMK_MAXNB 64
typedef struct qm__q4k_dec { /* one weight block, decoded */
    __m512i lo0, hi0, lo1, hi1, c02, c13, c46, c57;
    float d;
} qm__q4k_dec;

static QM__INLINE void qm__q4k_decode(const qm__block_q4_K *w, qm__q4k_dec *o, float *mw) {
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const __m512i p02 = _mm512_inserti64x4(_mm512_set1_epi16(0), _mm256_set1_epi16(2), 1);
    const __m512i p13 = _mm512_inserti64x4(_mm512_set1_epi16(1), _mm256_set1_epi16(3), 1);
    const __m512i p46 = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(6), 1);
    const __m512i p57 = _mm512_inserti64x4(_mm512_set1_epi16(5), _mm256_set1_epi16(7), 1);
    uint8_t sm[16];
    __m128i smv;
    __m512i sc, z0, z1;
    qm__k4_unpack(w->scales, sm);
    smv = QM__LD128(sm);
    _mm256_storeu_ps(mw, _mm256_mul_ps(_mm256_set1_ps(qm__h2f(w->dmin)),
                                       _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(smv, 8)))));
    sc = _mm512_castsi128_si512(_mm_cvtepu8_epi16(smv));
    o->c02 = _mm512_permutexvar_epi16(p02, sc);
    o->c13 = _mm512_permutexvar_epi16(p13, sc);
    o->c46 = _mm512_permutexvar_epi16(p46, sc);
    o->c57 = _mm512_permutexvar_epi16(p57, sc);
    z0 = _mm512_loadu_si512(w->qs);
    z1 = _mm512_loadu_si512(w->qs + 64);
    o->lo0 = _mm512_and_si512(z0, m4);
    o->hi0 = _mm512_and_si512(_mm512_srli_epi16(z0, 4), m4);
    o->lo1 = _mm512_and_si512(z1, m4);
    o->hi1 = _mm512_and_si512(_mm512_srli_epi16(z1, 4), m4);
    o->d = qm__h2f(w->d);
}

/* acc + one token's block: d_t d (sum_j sc_j q.a over sub-block j); the mins come after */
static QM__INLINE __m512 qm__q4k_tok(__m512 acc, const qm__q4k_dec *w, const int8_t *q8, float dt) {
    const __m512i x0 = _mm512_loadu_si512(q8), x1 = _mm512_loadu_si512(q8 + 64);
    const __m512i x2 = _mm512_loadu_si512(q8 + 128), x3 = _mm512_loadu_si512(q8 + 192);
    __m512i s = _mm512_madd_epi16(_mm512_maddubs_epi16(w->lo0, _mm512_shuffle_i64x2(x0, x1, 0x44)), w->c02);
    s = qm__dpwssd512(s, _mm512_maddubs_epi16(w->hi0, _mm512_shuffle_i64x2(x0, x1, 0xee)), w->c13);
    s = qm__dpwssd512(s, _mm512_maddubs_epi16(w->lo1, _mm512_shuffle_i64x2(x2, x3, 0x44)), w->c46);
    s = qm__dpwssd512(s, _mm512_maddubs_epi16(w->hi1, _mm512_shuffle_i64x2(x2, x3, 0xee)), w->c57);
    return _mm512_fmadd_ps(_mm512_set1_ps(dt * w->d), _mm512_cvtepi32_ps(s), acc);
}

/* acc - the mins' term of a row: sum over its blocks b and sub-blocks j of mw[8 b + j] * bs[8 b + j] */
static QM__INLINE __m512 qm__q4k_mins(__m512 acc, const float *mw, const float *bs, int64_t nb) {
    int64_t k;
    for (k = 0; k + 2 <= nb; k += 2) acc = _mm512_fnmadd_ps(_mm512_loadu_ps(mw + 8 * k), _mm512_loadu_ps(bs + 8 * k), acc);
    if (k < nb) acc = _mm512_fnmadd_ps(_mm512_maskz_loadu_ps(0x00ff, mw + 8 * k), _mm512_maskz_loadu_ps(0x00ff, bs + 8 * k), acc);
    return acc;
}

static int qm__mm_q4_K_avx512(int64_t n, const uint8_t *wb, size_t row_bytes, int64_t r0, int64_t r1,
                              const uint8_t *xb, size_t act_stride, int T, int ng, float *y, int64_t ldy) {
    const int64_t nb = n / QM__QK_K;
    const __m256i ones16 = _mm256_set1_epi16(1);
    float bsf[QM__MMK_TOK][QM__MMK_MAXNB * 8];
    float da[QM__MMK_TOK][QM__MMK_MAXNB];
    float mwr[QM__MMK_MAXNB * 8]; /* the row's dmin_b * m_b,j */
    const qm__block_q8_K *a[QM__MMK_TOK];
    int64_t rb, r, i;
    int tc, t;
    if (nb > QM__MMK_MAXNB) return 0;
#if defined(__AVX512VNNI__)
    if (T >= QM__Q4R_MIN_T) {
        const int64_t r16 = r0 + (r1 - r0) / 16 * 16;
        qm__mm_q4_K_r16(n, wb, row_bytes, r0, r16, xb, act_stride, T, ng, y, ldy);
        r0 = r16; /* the last rows, fewer than 16, below */
    }
#else
    (void)ng;
#endif
    for (rb = r0; rb < r1; rb += 32) {
        const int64_t re = rb + 32 < r1 ? rb + 32 : r1;
        for (tc = 0; tc < T; tc += QM__MMK_TOK) {
            const int nt = T - tc < QM__MMK_TOK ? T - tc : QM__MMK_TOK;
            for (t = 0; t < nt; t++) {
                a[t] = QM__PTR(const qm__block_q8_K *, xb + act_stride * QM__CAST(size_t, tc + t));
                for (i = 0; i < nb; i++) {
                    /* madd pairs (0,1),(2,3),.. within 128-bit lanes: sub-blocks 0..3 | 4..7 */
                    const __m256 s8 = _mm256_cvtepi32_ps(_mm256_madd_epi16(QM__LD256(a[t][i].bsums), ones16));
                    _mm256_storeu_ps(&bsf[t][8 * i], _mm256_mul_ps(_mm256_set1_ps(a[t][i].d), s8));
                    da[t][i] = a[t][i].d;
                }
            }
            for (r = rb; r < re; r++) {
                const qm__block_q4_K *w = QM__PTR(const qm__block_q4_K *, wb + row_bytes * QM__CAST(size_t, r));
                float *yr = y + QM__CAST(int64_t, tc) * ldy + r;
                qm__q4k_dec dw;
                if (nt == 8) {
                    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0;
                    for (i = 0; i < nb; i++) {
                        qm__q4k_decode(&w[i], &dw, &mwr[8 * i]);
                        s0 = qm__q4k_tok(s0, &dw, a[0][i].qs, da[0][i]);
                        s1 = qm__q4k_tok(s1, &dw, a[1][i].qs, da[1][i]);
                        s2 = qm__q4k_tok(s2, &dw, a[2][i].qs, da[2][i]);
                        s3 = qm__q4k_tok(s3, &dw, a[3][i].qs, da[3][i]);
                        s4 = qm__q4k_tok(s4, &dw, a[4][i].qs, da[4][i]);
                        s5 = qm__q4k_tok(s5, &dw, a[5][i].qs, da[5][i]);
                        s6 = qm__q4k_tok(s6, &dw, a[6][i].qs, da[6][i]);
                        s7 = qm__q4k_tok(s7, &dw, a[7][i].qs, da[7][i]);
                    }
                    s0 = qm__q4k_mins(s0, mwr, bsf[0], nb); s1 = qm__q4k_mins(s1, mwr, bsf[1], nb);
                    s2 = qm__q4k_mins(s2, mwr, bsf[2], nb); s3 = qm__q4k_mins(s3, mwr, bsf[3], nb);
                    s4 = qm__q4k_mins(s4, mwr, bsf[4], nb); s5 = qm__q4k_mins(s5, mwr, bsf[5], nb);
                    s6 = qm__q4k_mins(s6, mwr, bsf[6], nb); s7 = qm__q4k_mins(s7, mwr, bsf[7], nb);
                    yr[0] = _mm512_reduce_add_ps(s0); yr[ldy] = _mm512_reduce_add_ps(s1);
                    yr[2 * ldy] = _mm512_reduce_add_ps(s2); yr[3 * ldy] = _mm512_reduce_add_ps(s3);
                    yr[4 * ldy] = _mm512_reduce_add_ps(s4); yr[5 * ldy] = _mm512_reduce_add_ps(s5);
                    yr[6 * ldy] = _mm512_reduce_add_ps(s6); yr[7 * ldy] = _mm512_reduce_add_ps(s7);
                } else {
                    int t0 = 0;
                    if (nt >= 4) {
                        __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
                        for (i = 0; i < nb; i++) {
                            qm__q4k_decode(&w[i], &dw, &mwr[8 * i]);
                            s0 = qm__q4k_tok(s0, &dw, a[0][i].qs, da[0][i]);
                            s1 = qm__q4k_tok(s1, &dw, a[1][i].qs, da[1][i]);
                            s2 = qm__q4k_tok(s2, &dw, a[2][i].qs, da[2][i]);
                            s3 = qm__q4k_tok(s3, &dw, a[3][i].qs, da[3][i]);
                        }
                        s0 = qm__q4k_mins(s0, mwr, bsf[0], nb); s1 = qm__q4k_mins(s1, mwr, bsf[1], nb);
                        s2 = qm__q4k_mins(s2, mwr, bsf[2], nb); s3 = qm__q4k_mins(s3, mwr, bsf[3], nb);
                        yr[0] = _mm512_reduce_add_ps(s0); yr[ldy] = _mm512_reduce_add_ps(s1);
                        yr[2 * ldy] = _mm512_reduce_add_ps(s2); yr[3 * ldy] = _mm512_reduce_add_ps(s3);
                        t0 = 4;
                    }
                    for (t = t0; t < nt; t++) {
                        __m512 s0 = _mm512_setzero_ps();
                        for (i = 0; i < nb; i++) {
                            qm__q4k_decode(&w[i], &dw, &mwr[8 * i]);
                            s0 = qm__q4k_tok(s0, &dw, a[t][i].qs, da[t][i]);
                        }
                        yr[t * ldy] = _mm512_reduce_add_ps(qm__q4k_mins(s0, mwr, bsf[t], nb));
                    }
                }
            }
        }
    }
    return 1;
}

/* Q8_0 prefill: rows r0..r1-1 against T >= 2 activation rows, 8 tokens per weight load.
   Each chunk of 8 tokens is first copied into one packed row of quants per token (two blocks
   per 64-byte load) and one vector of scales per block pair ([d_i x8, d_i+1 x8]); a weight
   block pair is loaded, its signs moved onto the activations and its magnitudes dotted
   unsigned x signed (dpbusd), for every token of the chunk. The sums go in the order of
   qm__dot_q8_0_q8_0_avx512 (blocks 4k, 4k+1 in one accumulator, 4k+2, 4k+3 in another, the last
   nb % 4 blocks one by one), so that prefill and decode give the same bits, as they did before
   this kernel (greedy parity with llama.cpp depends on it). Rows of more than 4096 columns
   return 0 (the caller's general loop does them). */
#define QM__MMQ8_MAXN 4096
static int qm__mm_q8_0_avx512(int64_t n, const uint8_t *wb, size_t row_bytes, int64_t r0, int64_t r1,
                              const uint8_t *xb, size_t act_stride, int T, float *y, int64_t ldy) {
    const int64_t nb = n / 32, n4 = nb / 4 * 4;
    const __m512i zero = _mm512_setzero_si512();
    const __m512i idx01 = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    int8_t qa[QM__MMK_TOK][QM__MMQ8_MAXN];
    __m512 dav[QM__MMK_TOK][QM__MMQ8_MAXN / 64];
    float da[QM__MMK_TOK][QM__MMQ8_MAXN / 32];
    int64_t rb, r, i;
    int tc, t;
    if (n > QM__MMQ8_MAXN) return 0;
    for (rb = r0; rb < r1; rb += 32) {
        const int64_t re = rb + 32 < r1 ? rb + 32 : r1;
        for (tc = 0; tc < T; tc += QM__MMK_TOK) {
            const int nt = T - tc < QM__MMK_TOK ? T - tc : QM__MMK_TOK;
            for (t = 0; t < QM__MMK_TOK; t++) {
                /* missing tokens of a short chunk repeat the last one; their sums are not stored */
                const qm__block_q8_0 *a = QM__PTR(const qm__block_q8_0 *, xb + act_stride * QM__CAST(size_t, tc + (t < nt ? t : nt - 1)));
                for (i = 0; i < nb; i++) {
                    memcpy(&qa[t][32 * i], a[i].qs, 32);
                    da[t][i] = qm__h2f(a[i].d);
                }
                for (i = 0; i + 2 <= n4; i += 2)
                    dav[t][i / 2] = _mm512_permutexvar_ps(idx01, _mm512_castps128_ps512(_mm_setr_ps(da[t][i], da[t][i + 1], 0.0f, 0.0f)));
            }
            for (r = rb; r < re; r++) {
                const qm__block_q8_0 *w = QM__PTR(const qm__block_q8_0 *, wb + row_bytes * QM__CAST(size_t, r));
                __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0;
                __m512 u0 = s0, u1 = s0, u2 = s0, u3 = s0, u4 = s0, u5 = s0, u6 = s0, u7 = s0;
                float out[QM__MMK_TOK];
                float *yr = y + QM__CAST(int64_t, tc) * ldy + r;
                for (i = 0; i < n4; i += 2) {
                    const __m512i wq = _mm512_inserti64x4(_mm512_castsi256_si512(QM__LD256(w[i].qs)), QM__LD256(w[i + 1].qs), 1);
                    const __m512i wa = _mm512_abs_epi8(wq);
                    const __mmask64 neg = _mm512_movepi8_mask(wq);
                    const __m512 dwv = _mm512_permutexvar_ps(idx01, _mm512_castps128_ps512(_mm_setr_ps(qm__h2f(w[i].d), qm__h2f(w[i + 1].d), 0.0f, 0.0f)));
#define QM__Q8T(S, t)                                                                                       \
    do {                                                                                                    \
        const __m512i x = _mm512_loadu_si512(&qa[t][32 * i]);                                               \
        const __m512i p = qm__dpbusd512(zero, wa, _mm512_mask_sub_epi8(x, neg, zero, x));                   \
        S = _mm512_fmadd_ps(_mm512_mul_ps(dwv, dav[t][i / 2]), _mm512_cvtepi32_ps(p), S);                   \
    } while (0)
                    if ((i & 2) == 0) { /* blocks 4k, 4k+1 */
                        QM__Q8T(s0, 0); QM__Q8T(s1, 1); QM__Q8T(s2, 2); QM__Q8T(s3, 3);
                        QM__Q8T(s4, 4); QM__Q8T(s5, 5); QM__Q8T(s6, 6); QM__Q8T(s7, 7);
                    } else {            /* blocks 4k+2, 4k+3 */
                        QM__Q8T(u0, 0); QM__Q8T(u1, 1); QM__Q8T(u2, 2); QM__Q8T(u3, 3);
                        QM__Q8T(u4, 4); QM__Q8T(u5, 5); QM__Q8T(u6, 6); QM__Q8T(u7, 7);
                    }
#undef QM__Q8T
                }
                out[0] = _mm512_reduce_add_ps(_mm512_add_ps(s0, u0)); out[1] = _mm512_reduce_add_ps(_mm512_add_ps(s1, u1));
                out[2] = _mm512_reduce_add_ps(_mm512_add_ps(s2, u2)); out[3] = _mm512_reduce_add_ps(_mm512_add_ps(s3, u3));
                out[4] = _mm512_reduce_add_ps(_mm512_add_ps(s4, u4)); out[5] = _mm512_reduce_add_ps(_mm512_add_ps(s5, u5));
                out[6] = _mm512_reduce_add_ps(_mm512_add_ps(s6, u6)); out[7] = _mm512_reduce_add_ps(_mm512_add_ps(s7, u7));
                for (; i < nb; i++) { /* the last 1-3 blocks: exact integer sums, one by one */
                    const __m256i wq = QM__LD256(w[i].qs);
                    const float dw = qm__h2f(w[i].d);
                    for (t = 0; t < nt; t++) {
                        const __m256i p = qm__dpbusd(_mm256_setzero_si256(), _mm256_sign_epi8(wq, wq),
                                                     _mm256_sign_epi8(QM__LD256(&qa[t][32 * i]), wq));
                        out[t] += qm__hsum_ps256(_mm256_cvtepi32_ps(p)) * (dw * da[t][i]);
                    }
                }
                for (t = 0; t < nt; t++) yr[t * ldy] = out[t];
            }
        }
    }
    return 1;
}

/* Q5_K against 4 activation rows at once (Q4_K's, plus the fifth bits as in
   qm__dot_q5_K_q8_K_avx512). */
static void qm__dot4_q5_K_q8_K_avx512(int64_t n, const void *vw, const void *vx, size_t qx_stride, float *out) {
    const qm__block_q5_K *w = QM__CAST(const qm__block_q5_K *, vw);
    const qm__block_q8_K *a[4];
    int64_t i, nb = n / QM__QK_K;
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const __m512i p02 = _mm512_inserti64x4(_mm512_set1_epi16(0), _mm256_set1_epi16(2), 1);
    const __m512i p13 = _mm512_inserti64x4(_mm512_set1_epi16(1), _mm256_set1_epi16(3), 1);
    const __m512i p46 = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(6), 1);
    const __m512i p57 = _mm512_inserti64x4(_mm512_set1_epi16(5), _mm256_set1_epi16(7), 1);
    const __m512i b4 = _mm512_set1_epi8(0x10);
    const __m512i t02 = _mm512_inserti64x4(_mm512_set1_epi8(0x01), _mm256_set1_epi8(0x04), 1);
    const __m512i t13 = _mm512_inserti64x4(_mm512_set1_epi8(0x02), _mm256_set1_epi8(0x08), 1);
    const __m512i t46 = _mm512_inserti64x4(_mm512_set1_epi8(0x10), _mm256_set1_epi8(0x40), 1);
    const __m512i t57 = _mm512_inserti64x4(_mm512_set1_epi8(0x20), _mm256_set1_epi8(QM__CAST(char, 0x80)), 1);
    __m512 acc[4];
    __m256 accm[4];
    int t;
    for (t = 0; t < 4; t++) {
        a[t] = QM__PTR(const qm__block_q8_K *, QM__CAST(const uint8_t *, vx) + qx_stride * QM__CAST(size_t, t));
        acc[t] = _mm512_setzero_ps();
        accm[t] = _mm256_setzero_ps();
    }
    for (i = 0; i < nb; i++) {
        uint8_t sm[16];
        const float dw = qm__h2f(w[i].d), dminw = qm__h2f(w[i].dmin);
        __m128i smv;
        __m256i mins16;
        __m512i sc, z0, z1, lo0, hi0, lo1, hi1, c02, c13, c46, c57, qh;
        qm__k4_unpack(w[i].scales, sm);
        smv = QM__LD128(sm);
        mins16 = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(smv, smv));
        sc = _mm512_castsi128_si512(_mm_cvtepu8_epi16(smv));
        c02 = _mm512_permutexvar_epi16(p02, sc);
        c13 = _mm512_permutexvar_epi16(p13, sc);
        c46 = _mm512_permutexvar_epi16(p46, sc);
        c57 = _mm512_permutexvar_epi16(p57, sc);
        z0 = _mm512_loadu_si512(w[i].qs);
        z1 = _mm512_loadu_si512(w[i].qs + 64);
        qh = QM__BCAST256(w[i].qh);
        lo0 = _mm512_and_si512(z0, m4);
        lo0 = _mm512_mask_add_epi8(lo0, _mm512_test_epi8_mask(qh, t02), lo0, b4);
        hi0 = _mm512_and_si512(_mm512_srli_epi16(z0, 4), m4);
        hi0 = _mm512_mask_add_epi8(hi0, _mm512_test_epi8_mask(qh, t13), hi0, b4);
        lo1 = _mm512_and_si512(z1, m4);
        lo1 = _mm512_mask_add_epi8(lo1, _mm512_test_epi8_mask(qh, t46), lo1, b4);
        hi1 = _mm512_and_si512(_mm512_srli_epi16(z1, 4), m4);
        hi1 = _mm512_mask_add_epi8(hi1, _mm512_test_epi8_mask(qh, t57), hi1, b4);
        for (t = 0; t < 4; t++) {
            const int8_t *q8 = a[t][i].qs;
            const __m512i x0 = _mm512_loadu_si512(q8), x1 = _mm512_loadu_si512(q8 + 64);
            const __m512i x2 = _mm512_loadu_si512(q8 + 128), x3 = _mm512_loadu_si512(q8 + 192);
            __m512i s0 = _mm512_madd_epi16(_mm512_maddubs_epi16(lo0, _mm512_shuffle_i64x2(x0, x1, 0x44)), c02);
            __m512i s1 = _mm512_madd_epi16(_mm512_maddubs_epi16(hi0, _mm512_shuffle_i64x2(x0, x1, 0xee)), c13);
            s0 = qm__dpwssd512(s0, _mm512_maddubs_epi16(lo1, _mm512_shuffle_i64x2(x2, x3, 0x44)), c46);
            s1 = qm__dpwssd512(s1, _mm512_maddubs_epi16(hi1, _mm512_shuffle_i64x2(x2, x3, 0xee)), c57);
            accm[t] = _mm256_fmadd_ps(_mm256_set1_ps(a[t][i].d * dminw),
                                      _mm256_cvtepi32_ps(_mm256_madd_epi16(QM__LD256(a[t][i].bsums), mins16)), accm[t]);
            acc[t] = _mm512_fmadd_ps(_mm512_set1_ps(a[t][i].d * dw), _mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)), acc[t]);
        }
    }
    for (t = 0; t < 4; t++) out[t] = _mm512_reduce_add_ps(acc[t]) - qm__hsum_ps256(accm[t]);
}

/* Q6_K against 4 activation rows at once (see qm__dot_q6_K_q8_K_avx512). */
static void qm__dot4_q6_K_q8_K_avx512(int64_t n, const void *vw, const void *vx, size_t qx_stride, float *out) {
    const qm__block_q6_K *w = QM__CAST(const qm__block_q6_K *, vw);
    const qm__block_q8_K *a[4];
    int64_t i, nb = n / QM__QK_K;
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const __m512i hm_a = _mm512_inserti64x4(_mm512_set1_epi8(0x03), _mm256_set1_epi8(0x0c), 1);
    const __m512i hs_a = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
    const __m512i hm_b = _mm512_inserti64x4(_mm512_set1_epi8(0x30), _mm256_set1_epi8(QM__CAST(char, 0xc0)), 1);
    const __m512i hs_b = _mm512_inserti64x4(_mm512_set1_epi16(0), _mm256_set1_epi16(2), 1);
    const __m512i pk0 = _mm512_setr_epi64(0x0000000000000000ll, 0x0000000000000000ll, 0x0001000100010001ll, 0x0001000100010001ll,
                                          0x0002000200020002ll, 0x0002000200020002ll, 0x0003000300030003ll, 0x0003000300030003ll);
    const __m512i four = _mm512_set1_epi16(4), m32 = _mm512_set1_epi8(32);
    __m256 acc[4];
    int t, half;
    for (t = 0; t < 4; t++) {
        a[t] = QM__PTR(const qm__block_q8_K *, QM__CAST(const uint8_t *, vx) + qx_stride * QM__CAST(size_t, t));
        acc[t] = _mm256_setzero_ps();
    }
    for (i = 0; i < nb; i++) {
        const float dw = qm__h2f(w[i].d);
        const __m512i sc = _mm512_castsi256_si512(_mm256_cvtepi8_epi16(QM__LD128(w[i].scales)));
        __m512i q[4], c[4], pk = pk0;
        for (half = 0; half < 2; half++) {
            const __m512i l = _mm512_loadu_si512(w[i].ql + 64 * half), h = QM__BCAST256(w[i].qh + 32 * half);
            q[2 * half] = _mm512_or_si512(_mm512_and_si512(l, m4), _mm512_sllv_epi16(_mm512_and_si512(h, hm_a), hs_a));
            q[2 * half + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4),
                                              _mm512_srlv_epi16(_mm512_and_si512(h, hm_b), hs_b));
            c[2 * half] = _mm512_permutexvar_epi16(pk, sc);
            pk = _mm512_add_epi16(pk, four);
            c[2 * half + 1] = _mm512_permutexvar_epi16(pk, sc);
            pk = _mm512_add_epi16(pk, four);
        }
        for (t = 0; t < 4; t++) {
            const int8_t *q8 = a[t][i].qs;
            const __m512i x0 = _mm512_loadu_si512(q8), x1 = _mm512_loadu_si512(q8 + 64);
            const __m512i x2 = _mm512_loadu_si512(q8 + 128), x3 = _mm512_loadu_si512(q8 + 192);
            __m512i s0 = _mm512_madd_epi16(_mm512_sub_epi16(_mm512_maddubs_epi16(q[0], x0), _mm512_maddubs_epi16(m32, x0)), c[0]);
            __m512i s1 = _mm512_madd_epi16(_mm512_sub_epi16(_mm512_maddubs_epi16(q[1], x1), _mm512_maddubs_epi16(m32, x1)), c[1]);
            s0 = qm__dpwssd512(s0, _mm512_sub_epi16(_mm512_maddubs_epi16(q[2], x2), _mm512_maddubs_epi16(m32, x2)), c[2]);
            s1 = qm__dpwssd512(s1, _mm512_sub_epi16(_mm512_maddubs_epi16(q[3], x3), _mm512_maddubs_epi16(m32, x3)), c[3]);
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(a[t][i].d * dw), _mm256_cvtepi32_ps(qm__q6k_lanes8(_mm512_add_epi32(s0, s1))), acc[t]);
        }
    }
    for (t = 0; t < 4; t++) out[t] = qm__hsum_ps256(acc[t]);
}

#endif /* QM__AVX512 */

#endif /* QM__X86 */

/* ====================================================================================== */
/*  aarch64: NEON, with the dot-product extension (sdot) when the target has it            */
/* ====================================================================================== */
#if defined(QM__NEON)

/* acc + sums of 4 adjacent int8 products. Without sdot the lane grouping differs (pairs
   from both halves), which is fine: every caller only uses the total of the four lanes. */
static QM__INLINE int32x4_t qm__vdot(int32x4_t acc, int8x16_t a, int8x16_t b) {
#if defined(__ARM_FEATURE_DOTPROD)
    return vdotq_s32(acc, a, b);
#else
    return vpadalq_s16(vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(b))), vmull_high_s8(a, b));
#endif
}

static float qm__dot_f32_f32_neon(int64_t n, const void *vw, const void *vx) {
    const float *w = QM__CAST(const float *, vw), *x = QM__CAST(const float *, vx);
    float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0, s2 = s0, s3 = s0;
    int64_t i;
    float sum;
    for (i = 0; i + 16 <= n; i += 16) {
        s0 = vfmaq_f32(s0, vld1q_f32(w + i), vld1q_f32(x + i));
        s1 = vfmaq_f32(s1, vld1q_f32(w + i + 4), vld1q_f32(x + i + 4));
        s2 = vfmaq_f32(s2, vld1q_f32(w + i + 8), vld1q_f32(x + i + 8));
        s3 = vfmaq_f32(s3, vld1q_f32(w + i + 12), vld1q_f32(x + i + 12));
    }
    for (; i + 4 <= n; i += 4) s0 = vfmaq_f32(s0, vld1q_f32(w + i), vld1q_f32(x + i));
    sum = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
    for (; i < n; i++) sum += w[i] * x[i];
    return sum;
}

static float qm__dot_f16_f32_neon(int64_t n, const void *vw, const void *vx) {
    const uint16_t *w = QM__CAST(const uint16_t *, vw);
    const float *x = QM__CAST(const float *, vx);
    float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0, s2 = s0, s3 = s0;
    int64_t i;
    float sum;
    for (i = 0; i + 16 <= n; i += 16) {
        const float16x8_t h0 = vreinterpretq_f16_u16(vld1q_u16(w + i)), h1 = vreinterpretq_f16_u16(vld1q_u16(w + i + 8));
        s0 = vfmaq_f32(s0, vcvt_f32_f16(vget_low_f16(h0)), vld1q_f32(x + i));
        s1 = vfmaq_f32(s1, vcvt_high_f32_f16(h0), vld1q_f32(x + i + 4));
        s2 = vfmaq_f32(s2, vcvt_f32_f16(vget_low_f16(h1)), vld1q_f32(x + i + 8));
        s3 = vfmaq_f32(s3, vcvt_high_f32_f16(h1), vld1q_f32(x + i + 12));
    }
    for (; i + 4 <= n; i += 4) s0 = vfmaq_f32(s0, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(w + i))), vld1q_f32(x + i));
    sum = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
    for (; i < n; i++) sum += qm__h2f(w[i]) * x[i];
    return sum;
}

static float qm__dot_bf16_f32_neon(int64_t n, const void *vw, const void *vx) {
    const uint16_t *w = QM__CAST(const uint16_t *, vw);
    const float *x = QM__CAST(const float *, vx);
    float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0, s2 = s0, s3 = s0;
    int64_t i;
    float sum;
    for (i = 0; i + 16 <= n; i += 16) {
        const uint16x8_t h0 = vld1q_u16(w + i), h1 = vld1q_u16(w + i + 8);
        s0 = vfmaq_f32(s0, vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h0), 16)), vld1q_f32(x + i));
        s1 = vfmaq_f32(s1, vreinterpretq_f32_u32(vshll_high_n_u16(h0, 16)), vld1q_f32(x + i + 4));
        s2 = vfmaq_f32(s2, vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h1), 16)), vld1q_f32(x + i + 8));
        s3 = vfmaq_f32(s3, vreinterpretq_f32_u32(vshll_high_n_u16(h1, 16)), vld1q_f32(x + i + 12));
    }
    for (; i + 4 <= n; i += 4) s0 = vfmaq_f32(s0, vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(w + i), 16)), vld1q_f32(x + i));
    sum = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
    for (; i < n; i++) sum += qm_bf16_to_fp32(w[i]) * x[i];
    return sum;
}

static float qm__dot_q8_0_q8_0_neon(int64_t n, const void *vw, const void *vx) {
    const qm__block_q8_0 *w = QM__CAST(const qm__block_q8_0 *, vw);
    const qm__block_q8_0 *a = QM__CAST(const qm__block_q8_0 *, vx);
    int64_t i, nb = n / 32;
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = acc0;
    const int32x4_t zero = vdupq_n_s32(0);
    for (i = 0; i + 2 <= nb; i += 2) {
        const int32x4_t p0 = qm__vdot(qm__vdot(zero, vld1q_s8(w[i].qs), vld1q_s8(a[i].qs)), vld1q_s8(w[i].qs + 16), vld1q_s8(a[i].qs + 16));
        const int32x4_t p1 = qm__vdot(qm__vdot(zero, vld1q_s8(w[i + 1].qs), vld1q_s8(a[i + 1].qs)), vld1q_s8(w[i + 1].qs + 16),
                                      vld1q_s8(a[i + 1].qs + 16));
        acc0 = vfmaq_n_f32(acc0, vcvtq_f32_s32(p0), qm__h2f(w[i].d) * qm__h2f(a[i].d));
        acc1 = vfmaq_n_f32(acc1, vcvtq_f32_s32(p1), qm__h2f(w[i + 1].d) * qm__h2f(a[i + 1].d));
    }
    for (; i < nb; i++) {
        const int32x4_t p0 = qm__vdot(qm__vdot(zero, vld1q_s8(w[i].qs), vld1q_s8(a[i].qs)), vld1q_s8(w[i].qs + 16), vld1q_s8(a[i].qs + 16));
        acc0 = vfmaq_n_f32(acc0, vcvtq_f32_s32(p0), qm__h2f(w[i].d) * qm__h2f(a[i].d));
    }
    return vaddvq_f32(vaddq_f32(acc0, acc1));
}

/* sum over sub-blocks j of m_j * (bsum_2j + bsum_2j+1), m_j in mins[0..7] */
static QM__INLINE int32_t qm__k4_minsum_neon(const int16_t *bsums, const uint8_t *mins) {
    const int16x8_t b = vpaddq_s16(vld1q_s16(bsums), vld1q_s16(bsums + 8));
    const int16x8_t m = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(mins)));
    return vaddvq_s32(vmlal_s16(vmull_s16(vget_low_s16(b), vget_low_s16(m)), vget_high_s16(b), vget_high_s16(m)));
}

static float qm__dot_q4_K_q8_K_neon(int64_t n, const void *vw, const void *vx) {
    const qm__block_q4_K *w = QM__CAST(const qm__block_q4_K *, vw);
    const qm__block_q8_K *a = QM__CAST(const qm__block_q8_K *, vx);
    int64_t i, nb = n / QM__QK_K;
    const uint8x16_t m4 = vdupq_n_u8(0x0f);
    const int32x4_t zero = vdupq_n_s32(0);
    float sumf = 0.0f;
    int c;
    for (i = 0; i < nb; i++) {
        uint8_t sm[16];
        const uint8_t *q = w[i].qs;
        const int8_t *q8 = a[i].qs;
        int32x4_t acc = zero;
        int32_t msum;
        qm__k4_unpack(w[i].scales, sm);
        msum = qm__k4_minsum_neon(a[i].bsums, sm + 8);
        for (c = 0; c < 4; c++, q += 32, q8 += 64) {
            const uint8x16_t b0 = vld1q_u8(q), b1 = vld1q_u8(q + 16);
            const int32x4_t plo = qm__vdot(qm__vdot(zero, vreinterpretq_s8_u8(vandq_u8(b0, m4)), vld1q_s8(q8)),
                                           vreinterpretq_s8_u8(vandq_u8(b1, m4)), vld1q_s8(q8 + 16));
            const int32x4_t phi = qm__vdot(qm__vdot(zero, vreinterpretq_s8_u8(vshrq_n_u8(b0, 4)), vld1q_s8(q8 + 32)),
                                           vreinterpretq_s8_u8(vshrq_n_u8(b1, 4)), vld1q_s8(q8 + 48));
            acc = vmlaq_n_s32(acc, plo, sm[2 * c]);
            acc = vmlaq_n_s32(acc, phi, sm[2 * c + 1]);
        }
        sumf += a[i].d * qm__h2f(w[i].d) * QM__CAST(float, vaddvq_s32(acc)) -
                a[i].d * qm__h2f(w[i].dmin) * QM__CAST(float, msum);
    }
    return sumf;
}

static float qm__dot_q5_K_q8_K_neon(int64_t n, const void *vw, const void *vx) {
    const qm__block_q5_K *w = QM__CAST(const qm__block_q5_K *, vw);
    const qm__block_q8_K *a = QM__CAST(const qm__block_q8_K *, vx);
    int64_t i, nb = n / QM__QK_K;
    const uint8x16_t m4 = vdupq_n_u8(0x0f), b4 = vdupq_n_u8(0x10);
    const int32x4_t zero = vdupq_n_s32(0);
    float sumf = 0.0f;
    int c;
    for (i = 0; i < nb; i++) {
        uint8_t sm[16];
        const uint8_t *q = w[i].qs;
        const int8_t *q8 = a[i].qs;
        uint8x16_t h0 = vld1q_u8(w[i].qh), h1 = vld1q_u8(w[i].qh + 16);
        int32x4_t acc = zero;
        int32_t msum;
        qm__k4_unpack(w[i].scales, sm);
        msum = qm__k4_minsum_neon(a[i].bsums, sm + 8);
        for (c = 0; c < 4; c++, q += 32, q8 += 64) {
            /* bit 0 of h (bit 2c of qh) belongs to the low nibbles, bit 1 to the high */
            const uint8x16_t b0 = vld1q_u8(q), b1 = vld1q_u8(q + 16);
            const uint8x16_t l0 = vorrq_u8(vandq_u8(b0, m4), vandq_u8(vshlq_n_u8(h0, 4), b4));
            const uint8x16_t l1 = vorrq_u8(vandq_u8(b1, m4), vandq_u8(vshlq_n_u8(h1, 4), b4));
            const uint8x16_t u0 = vorrq_u8(vshrq_n_u8(b0, 4), vandq_u8(vshlq_n_u8(h0, 3), b4));
            const uint8x16_t u1 = vorrq_u8(vshrq_n_u8(b1, 4), vandq_u8(vshlq_n_u8(h1, 3), b4));
            const int32x4_t plo = qm__vdot(qm__vdot(zero, vreinterpretq_s8_u8(l0), vld1q_s8(q8)), vreinterpretq_s8_u8(l1), vld1q_s8(q8 + 16));
            const int32x4_t phi = qm__vdot(qm__vdot(zero, vreinterpretq_s8_u8(u0), vld1q_s8(q8 + 32)), vreinterpretq_s8_u8(u1),
                                           vld1q_s8(q8 + 48));
            acc = vmlaq_n_s32(acc, plo, sm[2 * c]);
            acc = vmlaq_n_s32(acc, phi, sm[2 * c + 1]);
            h0 = vshrq_n_u8(h0, 2);
            h1 = vshrq_n_u8(h1, 2);
        }
        sumf += a[i].d * qm__h2f(w[i].d) * QM__CAST(float, vaddvq_s32(acc)) -
                a[i].d * qm__h2f(w[i].dmin) * QM__CAST(float, msum);
    }
    return sumf;
}

/* Q6_K: each 16-byte vector of levels is one scale group; q - 32 as int8. */
static float qm__dot_q6_K_q8_K_neon(int64_t n, const void *vw, const void *vx) {
    const qm__block_q6_K *w = QM__CAST(const qm__block_q6_K *, vw);
    const qm__block_q8_K *a = QM__CAST(const qm__block_q8_K *, vx);
    int64_t i, nb = n / QM__QK_K;
    const uint8x16_t m4 = vdupq_n_u8(0x0f), m2 = vdupq_n_u8(0x30);
    const int8x16_t o32 = vdupq_n_s8(32);
    const int32x4_t zero = vdupq_n_s32(0);
    float sumf = 0.0f;
    int half, k;
    for (i = 0; i < nb; i++) {
        int32x4_t acc = zero;
        for (half = 0; half < 2; half++) {
            const uint8_t *ql = w[i].ql + 64 * half, *qh = w[i].qh + 32 * half;
            const int8_t *sc = w[i].scales + 8 * half, *q8 = a[i].qs + 128 * half;
            for (k = 0; k < 2; k++) { /* l = 16k .. 16k+15: groups k, k+2, k+4, k+6 */
                const uint8x16_t la = vld1q_u8(ql + 16 * k), lb = vld1q_u8(ql + 32 + 16 * k), h = vld1q_u8(qh + 16 * k);
                const int8x16_t q1 = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vandq_u8(la, m4), vandq_u8(vshlq_n_u8(h, 4), m2))), o32);
                const int8x16_t q2 = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vandq_u8(lb, m4), vandq_u8(vshlq_n_u8(h, 2), m2))), o32);
                const int8x16_t q3 = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(la, 4), vandq_u8(h, m2))), o32);
                const int8x16_t q4 = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(lb, 4), vandq_u8(vshrq_n_u8(h, 2), m2))), o32);
                acc = vmlaq_n_s32(acc, qm__vdot(zero, q1, vld1q_s8(q8 + 16 * k)), sc[k]);
                acc = vmlaq_n_s32(acc, qm__vdot(zero, q2, vld1q_s8(q8 + 32 + 16 * k)), sc[k + 2]);
                acc = vmlaq_n_s32(acc, qm__vdot(zero, q3, vld1q_s8(q8 + 64 + 16 * k)), sc[k + 4]);
                acc = vmlaq_n_s32(acc, qm__vdot(zero, q4, vld1q_s8(q8 + 96 + 16 * k)), sc[k + 6]);
            }
        }
        sumf += a[i].d * qm__h2f(w[i].d) * QM__CAST(float, vaddvq_s32(acc));
    }
    return sumf;
}


/* ---- the other block types (NEON) ------------------------------------------------------ */

/* 16 bytes of nibbles: low nibbles (elements 0-15) and high nibbles (16-31) */
static QM__INLINE void qm__nibbles_neon(const uint8_t *p, uint8x16_t *lo, uint8x16_t *hi) {
    const uint8x16_t b = vld1q_u8(p);
    *lo = vandq_u8(b, vdupq_n_u8(0x0f));
    *hi = vshrq_n_u8(b, 4);
}

/* fifth bits of Q5_0/Q5_1 as 0 or 16: elements 0-15 (*lo) and 16-31 (*hi) */
static QM__INLINE void qm__bits32_x16_neon(const uint8_t *qh, uint8x16_t *lo, uint8x16_t *hi) {
    static const uint8_t bit[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    const uint8x16_t b = vld1q_u8(bit), s16 = vdupq_n_u8(16);
    *lo = vandq_u8(vtstq_u8(vcombine_u8(vdup_n_u8(qh[0]), vdup_n_u8(qh[1])), b), s16);
    *hi = vandq_u8(vtstq_u8(vcombine_u8(vdup_n_u8(qh[2]), vdup_n_u8(qh[3])), b), s16);
}

/* sum(w*a) over one 32-element block, w given as two int8x16 */
static QM__INLINE int32x4_t qm__dot32_neon(int8x16_t w0, int8x16_t w1, const int8_t *a) {
    return qm__vdot(qm__vdot(vdupq_n_s32(0), w0, vld1q_s8(a)), w1, vld1q_s8(a + 16));
}

static float qm__dot_q4_0_q8_0_neon(int64_t n, const void *vw, const void *vx) {
    const qm__block_q4_0 *w = QM__CAST(const qm__block_q4_0 *, vw);
    const qm__block_q8_0 *a = QM__CAST(const qm__block_q8_0 *, vx);
    const int8x16_t eight = vdupq_n_s8(8);
    int64_t i, nb = n / 32;
    float32x4_t acc = vdupq_n_f32(0.0f);
    for (i = 0; i < nb; i++) {
        uint8x16_t lo, hi;
        qm__nibbles_neon(w[i].qs, &lo, &hi);
        acc = vfmaq_n_f32(acc,
                          vcvtq_f32_s32(qm__dot32_neon(vsubq_s8(vreinterpretq_s8_u8(lo), eight),
                                                       vsubq_s8(vreinterpretq_s8_u8(hi), eight), a[i].qs)),
                          qm__h2f(w[i].d) * qm__h2f(a[i].d));
    }
    return vaddvq_f32(acc);
}

static float qm__dot_q4_1_q8_0s_neon(int64_t n, const void *vw, const void *vx) {
    const qm__block_q4_1 *w = QM__CAST(const qm__block_q4_1 *, vw);
    const qm__block_q8_0s *a = QM__CAST(const qm__block_q8_0s *, vx);
    int64_t i, nb = n / 32;
    float32x4_t acc = vdupq_n_f32(0.0f);
    float summ = 0.0f;
    for (i = 0; i < nb; i++) {
        const float da = qm__h2f(a[i].d);
        uint8x16_t lo, hi;
        qm__nibbles_neon(w[i].qs, &lo, &hi);
        acc = vfmaq_n_f32(acc, vcvtq_f32_s32(qm__dot32_neon(vreinterpretq_s8_u8(lo), vreinterpretq_s8_u8(hi), a[i].qs)),
                          qm__h2f(w[i].d) * da);
        summ += qm__h2f(w[i].m) * qm__h2f(a[i].s);
    }
    return vaddvq_f32(acc) + summ;
}

static float qm__dot_q5_0_q8_0_neon(int64_t n, const void *vw, const void *vx) {
    const qm__block_q5_0 *w = QM__CAST(const qm__block_q5_0 *, vw);
    const qm__block_q8_0 *a = QM__CAST(const qm__block_q8_0 *, vx);
    const int8x16_t sixteen = vdupq_n_s8(16);
    int64_t i, nb = n / 32;
    float32x4_t acc = vdupq_n_f32(0.0f);
    for (i = 0; i < nb; i++) {
        uint8x16_t lo, hi, hl, hh;
        qm__nibbles_neon(w[i].qs, &lo, &hi);
        qm__bits32_x16_neon(w[i].qh, &hl, &hh);
        acc = vfmaq_n_f32(acc,
                          vcvtq_f32_s32(qm__dot32_neon(vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(lo, hl)), sixteen),
                                                       vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(hi, hh)), sixteen), a[i].qs)),
                          qm__h2f(w[i].d) * qm__h2f(a[i].d));
    }
    return vaddvq_f32(acc);
}

static float qm__dot_q5_1_q8_0s_neon(int64_t n, const void *vw, const void *vx) {
    const qm__block_q5_1 *w = QM__CAST(const qm__block_q5_1 *, vw);
    const qm__block_q8_0s *a = QM__CAST(const qm__block_q8_0s *, vx);
    int64_t i, nb = n / 32;
    float32x4_t acc = vdupq_n_f32(0.0f);
    float summ = 0.0f;
    for (i = 0; i < nb; i++) {
        const float da = qm__h2f(a[i].d);
        uint8x16_t lo, hi, hl, hh;
        qm__nibbles_neon(w[i].qs, &lo, &hi);
        qm__bits32_x16_neon(w[i].qh, &hl, &hh);
        acc = vfmaq_n_f32(acc,
                          vcvtq_f32_s32(qm__dot32_neon(vreinterpretq_s8_u8(vorrq_u8(lo, hl)), vreinterpretq_s8_u8(vorrq_u8(hi, hh)),
                                                       a[i].qs)),
                          qm__h2f(w[i].d) * da);
        summ += qm__h2f(w[i].m) * qm__h2f(a[i].s);
    }
    return vaddvq_f32(acc) + summ;
}

static float qm__dot_iq4_nl_q8_0_neon(int64_t n, const void *vw, const void *vx) {
    const qm__block_iq4_nl *w = QM__CAST(const qm__block_iq4_nl *, vw);
    const qm__block_q8_0 *a = QM__CAST(const qm__block_q8_0 *, vx);
    const int8x16_t kv = vld1q_s8(qm__kvalues_iq4nl);
    int64_t i, nb = n / 32;
    float32x4_t acc = vdupq_n_f32(0.0f);
    for (i = 0; i < nb; i++) {
        uint8x16_t lo, hi;
        qm__nibbles_neon(w[i].qs, &lo, &hi);
        acc = vfmaq_n_f32(acc, vcvtq_f32_s32(qm__dot32_neon(vqtbl1q_s8(kv, lo), vqtbl1q_s8(kv, hi), a[i].qs)),
                          qm__h2f(w[i].d) * qm__h2f(a[i].d));
    }
    return vaddvq_f32(acc);
}

static float qm__dot_iq4_xs_q8_K_neon(int64_t n, const void *vw, const void *vx) {
    const qm__block_iq4_xs *w = QM__CAST(const qm__block_iq4_xs *, vw);
    const qm__block_q8_K *a = QM__CAST(const qm__block_q8_K *, vx);
    const int8x16_t kv = vld1q_s8(qm__kvalues_iq4nl);
    int64_t i, nb = n / QM__QK_K;
    float sumf = 0.0f;
    int ib;
    for (i = 0; i < nb; i++) {
        int32x4_t acc = vdupq_n_s32(0);
        for (ib = 0; ib < 8; ib++) {
            const int ls = (((w[i].scales_l[ib / 2] >> (4 * (ib % 2))) & 0x0f) | (((w[i].scales_h >> (2 * ib)) & 3) << 4)) - 32;
            uint8x16_t lo, hi;
            qm__nibbles_neon(w[i].qs + 16 * ib, &lo, &hi);
            acc = vmlaq_n_s32(acc, qm__dot32_neon(vqtbl1q_s8(kv, lo), vqtbl1q_s8(kv, hi), a[i].qs + 32 * ib), ls);
        }
        sumf += a[i].d * qm__h2f(w[i].d) * QM__CAST(float, vaddvq_s32(acc));
    }
    return sumf;
}

/* Q2_K: group g (16 elements) = 16 bytes of (q >> shift) & 3, scale low nibble of scales[g] */
static float qm__dot_q2_K_q8_K_neon(int64_t n, const void *vw, const void *vx) {
    const qm__block_q2_K *w = QM__CAST(const qm__block_q2_K *, vw);
    const qm__block_q8_K *a = QM__CAST(const qm__block_q8_K *, vx);
    const uint8x16_t m2 = vdupq_n_u8(3);
    int64_t i, nb = n / QM__QK_K;
    float sumf = 0.0f;
    int h, k, g;
    for (i = 0; i < nb; i++) {
        const uint8_t *sc = w[i].scales;
        const int8_t *q8 = a[i].qs;
        const uint8x16_t sb = vld1q_u8(sc);
        const int16x8_t m0 = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(vshrq_n_u8(sb, 4))));
        const int16x8_t m1 = vreinterpretq_s16_u16(vmovl_u8(vget_high_u8(vshrq_n_u8(sb, 4))));
        const int16x8_t b0 = vld1q_s16(a[i].bsums), b1 = vld1q_s16(a[i].bsums + 8);
        int32x4_t acc = vdupq_n_s32(0), macc;
        macc = vmull_s16(vget_low_s16(b0), vget_low_s16(m0));
        macc = vmlal_s16(macc, vget_high_s16(b0), vget_high_s16(m0));
        macc = vmlal_s16(macc, vget_low_s16(b1), vget_low_s16(m1));
        macc = vmlal_s16(macc, vget_high_s16(b1), vget_high_s16(m1));
        for (h = 0; h < 2; h++) {
            uint8x16_t q[2];
            q[0] = vld1q_u8(w[i].qs + 32 * h);
            q[1] = vld1q_u8(w[i].qs + 32 * h + 16);
            for (k = 0; k < 4; k++) {
                for (g = 0; g < 2; g++, sc++, q8 += 16) {
                    const int8x16_t v = vreinterpretq_s8_u8(vandq_u8(q[g], m2));
                    acc = vmlaq_n_s32(acc, qm__vdot(vdupq_n_s32(0), v, vld1q_s8(q8)), *sc & 0x0f);
                    q[g] = vshrq_n_u8(q[g], 2);
                }
            }
        }
        sumf += a[i].d * qm__h2f(w[i].d) * QM__CAST(float, vaddvq_s32(acc)) -
                a[i].d * qm__h2f(w[i].dmin) * QM__CAST(float, vaddvq_s32(macc));
    }
    return sumf;
}

/* Q3_K: q = low2 | hbit << 2, minus 4; signed 6-bit group scales unpacked 4 at a time */
static float qm__dot_q3_K_q8_K_neon(int64_t n, const void *vw, const void *vx) {
    const qm__block_q3_K *w = QM__CAST(const qm__block_q3_K *, vw);
    const qm__block_q8_K *a = QM__CAST(const qm__block_q8_K *, vx);
    const uint8x16_t m2 = vdupq_n_u8(3), one = vdupq_n_u8(1);
    const int8x16_t four = vdupq_n_s8(4);
    int64_t i, nb = n / QM__QK_K;
    float sumf = 0.0f;
    int h, k, g, j;
    for (i = 0; i < nb; i++) {
        uint32_t u[3], r[4];
        int8_t sc[16];
        const int8_t *q8 = a[i].qs;
        uint8x16_t hm[2];
        int32x4_t acc = vdupq_n_s32(0);
        memcpy(u, w[i].scales, 12);
        r[0] = (u[0] & 0x0f0f0f0fu) | ((u[2] & 0x03030303u) << 4);
        r[1] = (u[1] & 0x0f0f0f0fu) | (((u[2] >> 2) & 0x03030303u) << 4);
        r[2] = ((u[0] >> 4) & 0x0f0f0f0fu) | (((u[2] >> 4) & 0x03030303u) << 4);
        r[3] = ((u[1] >> 4) & 0x0f0f0f0fu) | (((u[2] >> 6) & 0x03030303u) << 4);
        memcpy(sc, r, 16);
        for (j = 0; j < 16; j++) sc[j] = QM__CAST(int8_t, sc[j] - 32);
        hm[0] = vld1q_u8(w[i].hmask);
        hm[1] = vld1q_u8(w[i].hmask + 16);
        j = 0;
        for (h = 0; h < 2; h++) {
            uint8x16_t q[2];
            q[0] = vld1q_u8(w[i].qs + 32 * h);
            q[1] = vld1q_u8(w[i].qs + 32 * h + 16);
            for (k = 0; k < 4; k++) {
                for (g = 0; g < 2; g++, j++, q8 += 16) {
                    const uint8x16_t v = vorrq_u8(vandq_u8(q[g], m2), vshlq_n_u8(vandq_u8(hm[g], one), 2));
                    acc = vmlaq_n_s32(acc, qm__vdot(vdupq_n_s32(0), vsubq_s8(vreinterpretq_s8_u8(v), four), vld1q_s8(q8)), sc[j]);
                    q[g] = vshrq_n_u8(q[g], 2);
                    hm[g] = vshrq_n_u8(hm[g], 1);
                }
            }
        }
        sumf += a[i].d * qm__h2f(w[i].d) * QM__CAST(float, vaddvq_s32(acc));
    }
    return sumf;
}

/* ---- activation quantizers (byte for byte the plain ones) ---- */

static QM__INLINE float qm__absmax_neon(const float *x, int n) {
    float32x4_t m = vabsq_f32(vld1q_f32(x));
    int j;
    for (j = 4; j < n; j += 4) m = vmaxq_f32(m, vabsq_f32(vld1q_f32(x + j)));
    return vmaxvq_f32(m);
}

/* 4 x 4 int32 in -128..127 -> 16 int8 */
static QM__INLINE int8x16_t qm__narrow16_neon(int32x4_t a, int32x4_t b, int32x4_t c, int32x4_t d) {
    return vcombine_s8(vqmovn_s16(vcombine_s16(vqmovn_s32(a), vqmovn_s32(b))),
                       vqmovn_s16(vcombine_s16(vqmovn_s32(c), vqmovn_s32(d))));
}

/* Q8_0 block; vcvtaq rounds half away from zero, as roundf */
static QM__INLINE float qm__q8_0_block_neon(const float *x, uint16_t *dh, int8_t *qs) {
    const float amax = qm__absmax_neon(x, 32), d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
    int j;
    if (amax < 1e-36f) { /* 1/d overflows: the plain code (ggml's inf -> int8 gives 0) */
        qm__block_q8_0 b;
        qm__quantize_row_q8_0(x, &b, 32);
        *dh = b.d;
        memcpy(qs, b.qs, 32);
        return d;
    }
    *dh = qm_fp32_to_fp16(d);
    for (j = 0; j < 32; j += 16)
        vst1q_s8(qs + j, qm__narrow16_neon(vcvtaq_s32_f32(vmulq_n_f32(vld1q_f32(x + j), id)),
                                            vcvtaq_s32_f32(vmulq_n_f32(vld1q_f32(x + j + 4), id)),
                                            vcvtaq_s32_f32(vmulq_n_f32(vld1q_f32(x + j + 8), id)),
                                            vcvtaq_s32_f32(vmulq_n_f32(vld1q_f32(x + j + 12), id))));
    return d;
}

static void qm__quantize_row_q8_0_neon(const float *x, void *vy, int64_t n) {
    qm__block_q8_0 *y = QM__CAST(qm__block_q8_0 *, vy);
    int64_t i, nb = n / 32;
    for (i = 0; i < nb; i++, x += 32) qm__q8_0_block_neon(x, &y[i].d, y[i].qs);
}

static void qm__quantize_row_q8_0s_neon(const float *x, void *vy, int64_t n) {
    qm__block_q8_0s *y = QM__CAST(qm__block_q8_0s *, vy);
    int64_t i, nb = n / 32;
    for (i = 0; i < nb; i++, x += 32) {
        const float d = qm__q8_0_block_neon(x, &y[i].d, y[i].qs);
        y[i].s = qm_fp32_to_fp16(d * QM__CAST(float, vaddlvq_s8(vld1q_s8(y[i].qs)) + vaddlvq_s8(vld1q_s8(y[i].qs + 16))));
    }
}

/* Q8_K block; vcvtnq rounds to nearest even, as nearest_int */
static void qm__quantize_row_q8_K_neon(const float *x, void *vy, int64_t n) {
    qm__block_q8_K *y = QM__CAST(qm__block_q8_K *, vy);
    const int32x4_t c127 = vdupq_n_s32(127);
    int64_t i, nb = n / QM__QK_K;
    int j;
    for (i = 0; i < nb; i++, x += QM__QK_K) {
        const float amax = qm__absmax_neon(x, QM__QK_K);
        float max = 0.0f, iscale;
        if (amax < 1e-36f) { /* all zero or tiny (127/max overflows): the plain code */
            qm__quantize_row_q8_K(x, &y[i], QM__QK_K);
            continue;
        }
        for (j = 0; j < QM__QK_K; j++)
            if (qm__fabsf(x[j]) == amax) { max = x[j]; break; }
        iscale = -127.0f / max;
        for (j = 0; j < QM__QK_K; j += 16) {
            const int8x16_t q = qm__narrow16_neon(vminq_s32(vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + j), iscale)), c127),
                                                  vminq_s32(vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + j + 4), iscale)), c127),
                                                  vminq_s32(vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + j + 8), iscale)), c127),
                                                  vminq_s32(vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + j + 12), iscale)), c127));
            vst1q_s8(y[i].qs + j, q);
            y[i].bsums[j / 16] = QM__CAST(int16_t, vaddlvq_s8(q));
        }
        y[i].d = 1.0f / iscale;
    }
}

#endif /* QM__NEON */

/* ---- dispatch ------------------------------------------------------------------------- */

/* The kernel sets compiled in, for tests and benchmarks: variant 0 is the plain C code,
   1 the 256-bit x86 (AVX2) or NEON kernels, 2 the AVX-512 kernels. NULL where a variant
   has no kernel of its own for the type (or was not compiled). */
static QM__MAYBE_UNUSED qm__vec_dot_fn qm__vec_dot_variant(int wtype, int variant) {
    if (variant == 0) return qm__vec_dot_scalar_for(wtype);
#if defined(QM__X86)
    if (variant == 1) {
        switch (wtype) {
        case QM_TYPE_F32: return qm__dot_f32_f32_avx2;
        case QM_TYPE_F16: return qm__dot_f16_f32_avx2;
        case QM_TYPE_BF16: return qm__dot_bf16_f32_avx2;
        case QM_TYPE_Q8_0: return qm__dot_q8_0_q8_0_avx2;
        case QM_TYPE_Q4_K: return qm__dot_q4_K_q8_K_avx2;
        case QM_TYPE_Q5_K: return qm__dot_q5_K_q8_K_avx2;
        case QM_TYPE_Q6_K: return qm__dot_q6_K_q8_K_avx2;
        case QM_TYPE_Q4_0: return qm__dot_q4_0_q8_0_avx2;
        case QM_TYPE_Q4_1: return qm__dot_q4_1_q8_0s_avx2;
        case QM_TYPE_Q5_0: return qm__dot_q5_0_q8_0_avx2;
        case QM_TYPE_Q5_1: return qm__dot_q5_1_q8_0s_avx2;
        case QM_TYPE_IQ4_NL: return qm__dot_iq4_nl_q8_0_avx2;
        case QM_TYPE_IQ4_XS: return qm__dot_iq4_xs_q8_K_avx2;
        case QM_TYPE_Q2_K: return qm__dot_q2_K_q8_K_avx2;
        case QM_TYPE_Q3_K: return qm__dot_q3_K_q8_K_avx2;
        default: return NULL;
        }
    }
#endif
#if defined(QM__NEON)
    if (variant == 1) {
        switch (wtype) {
        case QM_TYPE_F32: return qm__dot_f32_f32_neon;
        case QM_TYPE_F16: return qm__dot_f16_f32_neon;
        case QM_TYPE_BF16: return qm__dot_bf16_f32_neon;
        case QM_TYPE_Q8_0: return qm__dot_q8_0_q8_0_neon;
        case QM_TYPE_Q4_K: return qm__dot_q4_K_q8_K_neon;
        case QM_TYPE_Q5_K: return qm__dot_q5_K_q8_K_neon;
        case QM_TYPE_Q6_K: return qm__dot_q6_K_q8_K_neon;
        case QM_TYPE_Q4_0: return qm__dot_q4_0_q8_0_neon;
        case QM_TYPE_Q4_1: return qm__dot_q4_1_q8_0s_neon;
        case QM_TYPE_Q5_0: return qm__dot_q5_0_q8_0_neon;
        case QM_TYPE_Q5_1: return qm__dot_q5_1_q8_0s_neon;
        case QM_TYPE_IQ4_NL: return qm__dot_iq4_nl_q8_0_neon;
        case QM_TYPE_IQ4_XS: return qm__dot_iq4_xs_q8_K_neon;
        case QM_TYPE_Q2_K: return qm__dot_q2_K_q8_K_neon;
        case QM_TYPE_Q3_K: return qm__dot_q3_K_q8_K_neon;
        default: return NULL;
        }
    }
#endif
#if defined(QM__AVX512)
    if (variant == 2) {
        switch (wtype) {
        case QM_TYPE_F16: return qm__dot_f16_f32_avx512;
        case QM_TYPE_BF16: return qm__dot_bf16_f32_avx512;
        case QM_TYPE_Q8_0: return qm__dot_q8_0_q8_0_avx512;
        case QM_TYPE_Q4_K: return qm__dot_q4_K_q8_K_avx512;
        case QM_TYPE_Q5_K: return qm__dot_q5_K_q8_K_avx512;
        case QM_TYPE_Q6_K: return qm__dot_q6_K_q8_K_avx512;
        default: return NULL;
        }
    }
#endif
    return NULL;
}

/* The best compiled kernel for a weight type. */
static qm__vec_dot_fn qm__vec_dot_for(int wtype) {
    qm__vec_dot_fn f = qm__vec_dot_variant(wtype, 2);
    if (!f) f = qm__vec_dot_variant(wtype, 1);
    if (!f) f = qm__vec_dot_variant(wtype, 0);
    return f;
}

static QM__MAYBE_UNUSED void qm__quantize_act(int wtype, const float *x, void *qx, int64_t n) {
    switch (qm__act_type(wtype)) {
    case QM_TYPE_F32: memcpy(qx, x, QM__CAST(size_t, n) * sizeof(float)); break;
#if defined(QM__X86)
    case QM_TYPE_Q8_0: qm__quantize_row_q8_0_avx2(x, qx, n); break;
    case QM__TYPE_Q8_0S: qm__quantize_row_q8_0s_avx2(x, qx, n); break;
    case QM_TYPE_Q8_K: qm__quantize_row_q8_K_avx2(x, qx, n); break;
#elif defined(QM__NEON)
    case QM_TYPE_Q8_0: qm__quantize_row_q8_0_neon(x, qx, n); break;
    case QM__TYPE_Q8_0S: qm__quantize_row_q8_0s_neon(x, qx, n); break;
    case QM_TYPE_Q8_K: qm__quantize_row_q8_K_neon(x, qx, n); break;
#else
    case QM_TYPE_Q8_0: qm__quantize_row_q8_0(x, qx, n); break;
    case QM__TYPE_Q8_0S: qm__quantize_row_q8_0s(x, qx, n); break;
    case QM_TYPE_Q8_K: qm__quantize_row_q8_K(x, qx, n); break;
#endif
    default: break;
    }
}

/* The plain C activation quantizers (qm__quantize_act gives the same bytes). */
static QM__MAYBE_UNUSED void qm__quantize_act_scalar(int wtype, const float *x, void *qx, int64_t n) {
    switch (qm__act_type(wtype)) {
    case QM_TYPE_F32: memcpy(qx, x, QM__CAST(size_t, n) * sizeof(float)); break;
    case QM_TYPE_Q8_0: qm__quantize_row_q8_0(x, qx, n); break;
    case QM__TYPE_Q8_0S: qm__quantize_row_q8_0s(x, qx, n); break;
    case QM_TYPE_Q8_K: qm__quantize_row_q8_K(x, qx, n); break;
    default: break;
    }
}

/* One weight row . one quantized activation row (0 for an unsupported type). */
static QM__MAYBE_UNUSED float qm__vec_dot(int wtype, int64_t n, const void *wrow, const void *qx) {
    qm__vec_dot_fn f = qm__vec_dot_for(wtype);
    return f ? f(n, wrow, qx) : 0.0f;
}

/* 4-token kernels: one weight row against 4 activation rows (NULL: none for the type) */
typedef void (*qm__vec_dot4_fn)(int64_t n, const void *w, const void *qx, size_t qx_stride, float *out);

static QM__MAYBE_UNUSED qm__vec_dot4_fn qm__vec_dot4_variant(int wtype, int variant) {
#if defined(QM__X86)
    if (variant == 1) {
        switch (wtype) {
        case QM_TYPE_Q4_K: return qm__dot4_q4_K_q8_K_avx2;
        case QM_TYPE_Q6_K: return qm__dot4_q6_K_q8_K_avx2;
        default: return NULL;
        }
    }
#endif
#if defined(QM__AVX512)
    if (variant == 2) {
        switch (wtype) {
        case QM_TYPE_Q4_K: return qm__dot4_q4_K_q8_K_avx512;
        case QM_TYPE_Q5_K: return qm__dot4_q5_K_q8_K_avx512;
        case QM_TYPE_Q6_K: return qm__dot4_q6_K_q8_K_avx512;
        default: return NULL;
        }
    }
#endif
    (void)wtype;
    (void)variant;
    return NULL;
}

static qm__vec_dot4_fn qm__vec_dot4_for(int wtype) {
    qm__vec_dot4_fn f = qm__vec_dot4_variant(wtype, 2);
    return f ? f : qm__vec_dot4_variant(wtype, 1);
}

/* One weight row against ntok activation rows qx_stride bytes apart:
   out[t * out_stride] = row . act row t. */
static QM__MAYBE_UNUSED void qm__vec_dot_ntok(int wtype, int64_t n, const void *wrow, const void *qx, size_t qx_stride,
                                              int ntok, float *out, size_t out_stride) {
    qm__vec_dot_fn f = qm__vec_dot_for(wtype);
    qm__vec_dot4_fn f4 = qm__vec_dot4_for(wtype);
    const uint8_t *q = QM__CAST(const uint8_t *, qx);
    int t = 0;
    if (f4) {
        float o[4];
        for (; t + 4 <= ntok; t += 4) {
            f4(n, wrow, q + qx_stride * QM__CAST(size_t, t), qx_stride, o);
            out[out_stride * QM__CAST(size_t, t)] = o[0];
            out[out_stride * QM__CAST(size_t, t + 1)] = o[1];
            out[out_stride * QM__CAST(size_t, t + 2)] = o[2];
            out[out_stride * QM__CAST(size_t, t + 3)] = o[3];
        }
    }
    for (; t < ntok; t++) out[out_stride * QM__CAST(size_t, t)] = f ? f(n, wrow, q + qx_stride * QM__CAST(size_t, t)) : 0.0f;
}

/* The matrix product for rows r0..r1-1 of a weight matrix (rows row_bytes apart from w) and
   T quantized activation rows (act_stride bytes apart from qx, see qm__act_row_bytes):
   y[t * ldy + r] = row r . activation row t. For T > 1, Q4_K and Q8_0 on AVX-512 go to their
   prefill kernels (Q4_K: tiles of 16 rows; Q8_0: blocks of 32 rows, 8 tokens per weight
   load; ng: see qm__mm_q4_K_r16); the other types go
   in blocks of 16 rows and groups of 4 tokens (4-token kernels where there are some), so that
   a block of weight rows stays in cache while every token passes over it and each decoded
   weight block serves several tokens. Threads split [r0, r1) among themselves. */
static QM__MAYBE_UNUSED void qm__matmul_rows_ng(int wtype, int64_t n, const void *w, size_t row_bytes, int64_t r0, int64_t r1,
                                                const void *qx, size_t act_stride, int T, int ng, float *y, int64_t ldy) {
    qm__vec_dot_fn f = qm__vec_dot_for(wtype);
    qm__vec_dot4_fn f4 = qm__vec_dot4_for(wtype);
    const uint8_t *wb = QM__CAST(const uint8_t *, w), *xb = QM__CAST(const uint8_t *, qx);
    int64_t rb, r;
    int t;
    if (!f) return;
    if (T == 1) {
        for (r = r0; r < r1; r++) y[r] = f(n, wb + row_bytes * QM__CAST(size_t, r), qx);
        return;
    }
#if defined(QM__AVX512)
    if (wtype == QM_TYPE_Q4_K && qm__mm_q4_K_avx512(n, wb, row_bytes, r0, r1, xb, act_stride, T, ng, y, ldy)) return;
    if (wtype == QM_TYPE_Q8_0 && qm__mm_q8_0_avx512(n, wb, row_bytes, r0, r1, xb, act_stride, T, y, ldy)) return;
#if defined(__AVX512VNNI__)
    if (wtype == QM_TYPE_Q6_K && T >= QM__Q6R_MIN_T) { /* tiles of 16 rows; the last rows below */
        const int64_t r16 = r0 + (r1 - r0) / 16 * 16;
        qm__mm_q6_K_r16(n, wb, row_bytes, r0, r16, xb, act_stride, T, y, ldy);
        r0 = r16;
    }
#endif
#else
    (void)ng;
#endif
    for (rb = r0; rb < r1; rb += 16) {
        const int64_t re = rb + 16 < r1 ? rb + 16 : r1;
        t = 0;
        if (f4) {
            for (; t + 4 <= T; t += 4) {
                const uint8_t *xt = xb + act_stride * QM__CAST(size_t, t);
                for (r = rb; r < re; r++) {
                    float o[4];
                    f4(n, wb + row_bytes * QM__CAST(size_t, r), xt, act_stride, o);
                    y[t * ldy + r] = o[0];
                    y[(t + 1) * ldy + r] = o[1];
                    y[(t + 2) * ldy + r] = o[2];
                    y[(t + 3) * ldy + r] = o[3];
                }
            }
        }
        for (; t < T; t++) {
            const uint8_t *xt = xb + act_stride * QM__CAST(size_t, t);
            for (r = rb; r < re; r++) y[t * ldy + r] = f(n, wb + row_bytes * QM__CAST(size_t, r), xt);
        }
    }
}

/* qm__matmul_rows_ng with ng = 0: every token in the order of a single-row product */
static QM__MAYBE_UNUSED void qm__matmul_rows(int wtype, int64_t n, const void *w, size_t row_bytes, int64_t r0, int64_t r1,
                                             const void *qx, size_t act_stride, int T, float *y, int64_t ldy) {
    qm__matmul_rows_ng(wtype, n, w, row_bytes, r0, r1, qx, act_stride, T, 0, y, ldy);
}

/* nrows consecutive weight rows, row_stride bytes apart, each . the same activation row. */
static QM__MAYBE_UNUSED void qm__vec_dot_multi(int wtype, int64_t n, const void *wrow, size_t row_stride,
                                               int nrows, const void *qx, float *out) {
    qm__vec_dot_fn f = qm__vec_dot_for(wtype);
    const uint8_t *p = QM__CAST(const uint8_t *, wrow);
    int r;
    for (r = 0; r < nrows; r++, p += row_stride) out[r] = f ? f(n, p, qx) : 0.0f;
}

/* The compute primitives of the forward pass. The matrix product never dequantizes weights
   to f32: the activation rows are quantized once (below: Q8_K for K-quants, Q8_0
   for the 32-blocks, as llama.cpp pairs them) and each weight block is dotted in integers,
   several tokens per weight load in prefill. */

/* y[i] = x[i] / rms(x) * w[i]. The sum of squares is kept in double, as ggml does. */
static void qm__rmsnorm(float *y, const float *x, const float *w, int n, float eps) {
    double ss = 0.0;
    float scale;
    int i;
    /* each square rounded to float, the sum in double: ggml's order, so that the same x gives
       the same bits (the next matmul quantizes this row; one ulp can flip an int8) */
    for (i = 0; i < n; i++) ss += QM__CAST(double, x[i] * x[i]);
    scale = 1.0f / qm__sqrtf(QM__CAST(float, ss / n) + eps);
    for (i = 0; i < n; i++) y[i] = (x[i] * scale) * w[i];
}

static void qm__softmax(float *x, int n) {
    float mx = x[0], sum = 0.0f;
    int i;
    for (i = 1; i < n; i++) if (x[i] > mx) mx = x[i];
    for (i = 0; i < n; i++) { x[i] = qm__expf(x[i] - mx); sum += x[i]; }
    for (i = 0; i < n; i++) x[i] /= sum;
}

/* y[i] = expf(x[i] - sub): qm__exp's steps (k = x/ln2 rounded half away from zero, r = x - k ln2
   in two parts, the Taylor series to r^13, times 2^k) on 8 or 4 doubles at once, so that the
   result has the same bits as the scalar code (compiled without FMA contraction, as -std=c99
   does). Inputs are clamped to [-150, 100] first: expf is 0 below -103.98 and inf above 88.73
   either way; NaN stays NaN. The attention's softmax and SwiGLU spend their time here. */
#if defined(QM__AVX512)
/* qm__expf of 8 floats, the same bits */
static QM__INLINE __m256 qm__vexp8(__m256 xf) {
    const __m512d lo = _mm512_set1_pd(-150.0), hi = _mm512_set1_pd(100.0);
    const __m512d half = _mm512_set1_pd(0.5), sign = _mm512_set1_pd(-0.0);
    const __mmask8 nan = _mm256_cmp_ps_mask(xf, xf, _CMP_UNORD_Q);
    __m512d xd = _mm512_min_pd(_mm512_max_pd(_mm512_cvtps_pd(xf), lo), hi);
    __m512d t = _mm512_mul_pd(xd, _mm512_set1_pd(1.4426950408889634)), k, r, p;
    __m512i e;
    k = _mm512_roundscale_pd(_mm512_add_pd(t, _mm512_or_pd(half, _mm512_and_pd(t, sign))),
                             _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    r = _mm512_sub_pd(_mm512_sub_pd(xd, _mm512_mul_pd(k, _mm512_set1_pd(0.6931471803691238))),
                      _mm512_mul_pd(k, _mm512_set1_pd(1.9082149292705877e-10)));
#define QM__HORNER(c) p = _mm512_add_pd(_mm512_mul_pd(p, r), _mm512_set1_pd(c))
    p = _mm512_set1_pd(1.0 / 6227020800.0);
    QM__HORNER(1.0 / 479001600.0); QM__HORNER(1.0 / 39916800.0); QM__HORNER(1.0 / 3628800.0);
    QM__HORNER(1.0 / 362880.0); QM__HORNER(1.0 / 40320.0); QM__HORNER(1.0 / 5040.0);
    QM__HORNER(1.0 / 720.0); QM__HORNER(1.0 / 120.0); QM__HORNER(1.0 / 24.0);
    QM__HORNER(1.0 / 6.0); QM__HORNER(0.5); QM__HORNER(1.0); QM__HORNER(1.0);
#undef QM__HORNER
    e = _mm512_slli_epi64(_mm512_cvtepi32_epi64(_mm256_add_epi32(_mm512_cvttpd_epi32(k), _mm256_set1_epi32(1023))), 52);
    p = _mm512_mul_pd(p, _mm512_castsi512_pd(e));
    return _mm256_mask_mov_ps(_mm512_cvtpd_ps(p), nan, xf);
}
#endif

static void qm__vexpf(float *y, const float *x, float sub, int n) {
    int i = 0;
#if defined(QM__AVX512)
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, qm__vexp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), _mm256_set1_ps(sub))));
#elif defined(QM__X86)
    {
        const __m256d lo = _mm256_set1_pd(-150.0), hi = _mm256_set1_pd(100.0);
        const __m256d half = _mm256_set1_pd(0.5), sign = _mm256_set1_pd(-0.0);
        for (; i + 4 <= n; i += 4) {
            const __m128 xf = _mm_sub_ps(_mm_loadu_ps(x + i), _mm_set1_ps(sub));
            const __m128 nan = _mm_cmpunord_ps(xf, xf);
            __m256d xd = _mm256_min_pd(_mm256_max_pd(_mm256_cvtps_pd(xf), lo), hi);
            __m256d t = _mm256_mul_pd(xd, _mm256_set1_pd(1.4426950408889634)), k, r, p;
            __m128i e32;
            __m256i e;
            k = _mm256_round_pd(_mm256_add_pd(t, _mm256_or_pd(half, _mm256_and_pd(t, sign))),
                                _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
            r = _mm256_sub_pd(_mm256_sub_pd(xd, _mm256_mul_pd(k, _mm256_set1_pd(0.6931471803691238))),
                              _mm256_mul_pd(k, _mm256_set1_pd(1.9082149292705877e-10)));
#define QM__HORNER(c) p = _mm256_add_pd(_mm256_mul_pd(p, r), _mm256_set1_pd(c))
            p = _mm256_set1_pd(1.0 / 6227020800.0);
            QM__HORNER(1.0 / 479001600.0); QM__HORNER(1.0 / 39916800.0); QM__HORNER(1.0 / 3628800.0);
            QM__HORNER(1.0 / 362880.0); QM__HORNER(1.0 / 40320.0); QM__HORNER(1.0 / 5040.0);
            QM__HORNER(1.0 / 720.0); QM__HORNER(1.0 / 120.0); QM__HORNER(1.0 / 24.0);
            QM__HORNER(1.0 / 6.0); QM__HORNER(0.5); QM__HORNER(1.0); QM__HORNER(1.0);
#undef QM__HORNER
            e32 = _mm_add_epi32(_mm256_cvttpd_epi32(k), _mm_set1_epi32(1023));
            e = _mm256_slli_epi64(_mm256_cvtepi32_epi64(e32), 52);
            p = _mm256_mul_pd(p, _mm256_castsi256_pd(e));
            _mm_storeu_ps(y + i, _mm_blendv_ps(_mm256_cvtpd_ps(p), xf, nan));
        }
    }
#endif
    for (; i < n; i++) y[i] = qm__expf(x[i] - sub);
}

/* g[i] = silu(g[i]) * u[i] = g[i] / (1 + expf(-g[i])) * u[i] (the bits of the scalar formula) */
static void qm__swiglu(float *g, const float *u, size_t n) {
    float e[256];
    size_t i, j, m;
    for (i = 0; i < n; i += m) {
        m = n - i < 256 ? n - i : 256;
        for (j = 0; j < m; j++) e[j] = -g[i + j];
        qm__vexpf(e, e, 0.0f, QM__CAST(int, m));
        for (j = 0; j < m; j++) g[i + j] = g[i + j] / (1.0f + e[j]) * u[i + j];
    }
}

static float qm__dot_f32(const float *a, const float *b, int n) {
    /* eight independent partial sums: lets the CPU overlap the adds */
    float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int i, j;
    for (i = 0; i + 8 <= n; i += 8)
        for (j = 0; j < 8; j++) s[j] += a[i + j] * b[i + j];
    for (; i < n; i++) s[0] += a[i] * b[i];
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

/* out[i] += w * v[i] over an f16 row (the attention's P.V on the f16 cache) */
static void qm__axpy_f16(float *out, float w, const uint16_t *v, int n) {
    int i = 0;
#if defined(QM__X86)
    const __m256 wv = _mm256_set1_ps(w);
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_fmadd_ps(wv, _mm256_cvtph_ps(QM__LD128(v + i)), _mm256_loadu_ps(out + i)));
#elif defined(QM__NEON)
    for (; i + 4 <= n; i += 4)
        vst1q_f32(out + i, vfmaq_n_f32(vld1q_f32(out + i), vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(v + i))), w));
#endif
    for (; i < n; i++) out[i] += w * qm__h2f(v[i]);
}

/* out[i] = sum over p of w[p] * v_p[i] (v_p: n_kv f16 rows, stride apart), each element one fma
   after another in p order, as qm__axpy_f16 does it - so the bits are the same; with AVX-512
   16 elements at a time stay in a register over all the rows. */
static void qm__pv_f16(float *out, const float *w, const uint16_t *v, size_t stride, int n_kv, int hd) {
    int i, p;
#if defined(QM__AVX512)
    if (hd % 16 == 0) {
        /* 64 elements per pass over the rows: four independent fma chains */
        for (i = 0; i + 64 <= hd; i += 64) {
            const uint16_t *vp = v + i;
            __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            for (p = 0; p < n_kv; p++, vp += stride) {
                const __m512 wp = _mm512_set1_ps(w[p]);
                a0 = _mm512_fmadd_ps(wp, _mm512_cvtph_ps(QM__LD256(vp)), a0);
                a1 = _mm512_fmadd_ps(wp, _mm512_cvtph_ps(QM__LD256(vp + 16)), a1);
                a2 = _mm512_fmadd_ps(wp, _mm512_cvtph_ps(QM__LD256(vp + 32)), a2);
                a3 = _mm512_fmadd_ps(wp, _mm512_cvtph_ps(QM__LD256(vp + 48)), a3);
            }
            _mm512_storeu_ps(out + i, a0);
            _mm512_storeu_ps(out + i + 16, a1);
            _mm512_storeu_ps(out + i + 32, a2);
            _mm512_storeu_ps(out + i + 48, a3);
        }
        for (; i < hd; i += 16) {
            const uint16_t *vp = v + i;
            __m512 acc = _mm512_setzero_ps();
            for (p = 0; p < n_kv; p++, vp += stride) acc = _mm512_fmadd_ps(_mm512_set1_ps(w[p]), _mm512_cvtph_ps(QM__LD256(vp)), acc);
            _mm512_storeu_ps(out + i, acc);
        }
        return;
    }
#endif
    for (i = 0; i < hd; i++) out[i] = 0.0f;
    for (p = 0; p < n_kv; p++) qm__axpy_f16(out, w[p], v + stride * QM__CAST(size_t, p), hd);
}

/* ---- thread pool: one job at a time, every worker runs fn(arg, ith, nth) ---- */

typedef void (*qm__task_fn)(void *arg, int ith, int nth);

typedef struct qm__pool {
    int n_threads;
#ifndef QWENMOE_NO_THREADS
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t cv_work;
    pthread_cond_t cv_done;
    qm__task_fn fn;
    void *arg;
    uint64_t generation;   /* written under mu */
    int pending;           /* workers still running the current task */
    int quit;              /* written under mu */
    int sleeping;          /* workers in cv_work's wait (under mu) */
    int main_waiting;      /* the caller in cv_done's wait (under mu) */
#endif
} qm__pool;

/* A decode step is some 300 dispatches (6 per layer), each a few hundred microseconds of
   work. Waking a sleeping thread through the kernel takes tens of microseconds on a VM, so
   the threads first spin on the counters for a while (QM__SPIN_ITERS pauses, about 50 us)
   and only then sleep on the condition variables. Spinning needs atomics: the GCC/clang
   builtins; other compilers take the lock for every access and never spin. */
#if !defined(QWENMOE_NO_THREADS) && defined(__GNUC__)
#define QM__SPIN 1
#define QM__LOAD(p) __atomic_load_n(p, __ATOMIC_ACQUIRE)
#define QM__STORE(p, v) __atomic_store_n(p, v, __ATOMIC_RELEASE)
#define QM__SPIN_ITERS 2048
#if defined(QM__X86)
#define QM__PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define QM__PAUSE() __asm__ __volatile__("yield")
#else
#define QM__PAUSE() __asm__ __volatile__("" ::: "memory")
#endif
#else
#define QM__LOAD(p) (*(p))
#define QM__STORE(p, v) (*(p) = (v))
#endif

#ifndef QWENMOE_NO_THREADS
typedef struct qm__worker_arg {
    qm__pool *pool;
    int ith;
} qm__worker_arg;

static void *qm__worker_main(void *p) {
    qm__worker_arg *wa = QM__CAST(qm__worker_arg *, p);
    qm__pool *pool = wa->pool;
    int ith = wa->ith;
    uint64_t seen = 0;
    QM_FREE(wa);
    for (;;) {
        qm__task_fn fn;
        void *arg;
#if defined(QM__SPIN)
        int i;
        for (i = 0; i < QM__SPIN_ITERS && QM__LOAD(&pool->generation) == seen && !QM__LOAD(&pool->quit); i++) QM__PAUSE();
#endif
        pthread_mutex_lock(&pool->mu);
        pool->sleeping++;
        while (QM__LOAD(&pool->generation) == seen && !QM__LOAD(&pool->quit)) pthread_cond_wait(&pool->cv_work, &pool->mu);
        pool->sleeping--;
        if (pool->quit) { pthread_mutex_unlock(&pool->mu); break; }
        seen = pool->generation;
        fn = pool->fn;
        arg = pool->arg;
        pthread_mutex_unlock(&pool->mu);
        fn(arg, ith, pool->n_threads);
#if defined(QM__SPIN)
        if (__atomic_sub_fetch(&pool->pending, 1, __ATOMIC_ACQ_REL) == 0) {
            pthread_mutex_lock(&pool->mu);
            if (pool->main_waiting) pthread_cond_signal(&pool->cv_done);
            pthread_mutex_unlock(&pool->mu);
        }
#else
        pthread_mutex_lock(&pool->mu);
        if (--pool->pending == 0 && pool->main_waiting) pthread_cond_signal(&pool->cv_done);
        pthread_mutex_unlock(&pool->mu);
#endif
    }
    return NULL;
}
#endif

static int qm__pool_init(qm__pool *pool, int n_threads) {
    memset(pool, 0, sizeof(*pool));
    pool->n_threads = n_threads < 1 ? 1 : n_threads;
#ifdef QWENMOE_NO_THREADS
    pool->n_threads = 1;
    (void)n_threads;
    return 1;
#else
    {
        int i;
        pthread_mutex_init(&pool->mu, NULL);
        pthread_cond_init(&pool->cv_work, NULL);
        pthread_cond_init(&pool->cv_done, NULL);
        if (pool->n_threads == 1) return 1;
        pool->threads = QM__ALLOC(pthread_t, pool->n_threads);
        if (!pool->threads) return 0;
        for (i = 1; i < pool->n_threads; i++) {
            qm__worker_arg *wa = QM__ALLOC(qm__worker_arg, 1);
            if (wa) { wa->pool = pool; wa->ith = i; }
            if (!wa || pthread_create(&pool->threads[i], NULL, qm__worker_main, wa) != 0) {
                QM_FREE(wa);
                pool->n_threads = i; /* run with the threads we have */
                break;
            }
        }
        return 1;
    }
#endif
}

static void qm__pool_free(qm__pool *pool) {
#ifndef QWENMOE_NO_THREADS
    int i;
    pthread_mutex_lock(&pool->mu);
    QM__STORE(&pool->quit, 1);
    pthread_cond_broadcast(&pool->cv_work);
    pthread_mutex_unlock(&pool->mu);
    for (i = 1; i < pool->n_threads && pool->threads; i++) pthread_join(pool->threads[i], NULL);
    QM_FREE(pool->threads);
    pthread_cond_destroy(&pool->cv_work);
    pthread_cond_destroy(&pool->cv_done);
    pthread_mutex_destroy(&pool->mu);
#else
    (void)pool;
#endif
}

static void qm__pool_run(qm__pool *pool, qm__task_fn fn, void *arg) {
#ifndef QWENMOE_NO_THREADS
    if (pool->n_threads > 1) {
        pthread_mutex_lock(&pool->mu);
        pool->fn = fn;
        pool->arg = arg;
        QM__STORE(&pool->pending, pool->n_threads - 1);
        QM__STORE(&pool->generation, pool->generation + 1);
        if (pool->sleeping) pthread_cond_broadcast(&pool->cv_work);
        pthread_mutex_unlock(&pool->mu);
        fn(arg, 0, pool->n_threads);
#if defined(QM__SPIN)
        {
            int i;
            for (i = 0; i < QM__SPIN_ITERS && QM__LOAD(&pool->pending) > 0; i++) QM__PAUSE();
        }
#endif
        pthread_mutex_lock(&pool->mu);
        pool->main_waiting = 1;
        while (QM__LOAD(&pool->pending) > 0) pthread_cond_wait(&pool->cv_done, &pool->mu);
        pool->main_waiting = 0;
        pthread_mutex_unlock(&pool->mu);
        return;
    }
#else
    (void)pool;
#endif
    fn(arg, 0, 1);
}

/* ---- loops over tokens or rows, split among the threads ---- */

typedef void (*qm__range_fn)(void *arg, int i0, int i1);
typedef struct qm__range_job {
    qm__range_fn fn;
    void *arg;
    int n;
} qm__range_job;

static void qm__range_task(void *arg, int ith, int nth) {
    const qm__range_job *j = QM__CAST(const qm__range_job *, arg);
    const int i0 = QM__CAST(int, QM__CAST(int64_t, j->n) * ith / nth), i1 = QM__CAST(int, QM__CAST(int64_t, j->n) * (ith + 1) / nth);
    if (i1 > i0) j->fn(j->arg, i0, i1);
}

/* fn(arg, i0, i1) over [0, n) in equal parts, one per thread. The norms, quantizations and
   sums between the matrix products are a tenth of a prefill's work; done by one thread they
   left the others idle. Below QM__PAR_MIN items (decode) it runs here: a wake-up and a wait
   would cost more than the work. Each item's result is the same whoever computes it. */
#define QM__PAR_MIN 16
static void qm__pool_for(qm__pool *pool, int n, qm__range_fn fn, void *arg) {
    qm__range_job j;
    if (n < QM__PAR_MIN) {
        if (n > 0) fn(arg, 0, n);
        return;
    }
    j.fn = fn; j.arg = arg; j.n = n;
    qm__pool_run(pool, qm__range_task, &j);
}

/* ---- matrix product: Y[t][r] = dot(W row r, X[t]) for rows r0..r1 ---- */

typedef struct qm__weight {
    const uint8_t *data;    /* first row (of expert 0) */
    int type;
    int64_t ne0, ne1, ne2;  /* row length, rows, experts */
    size_t row_bytes;
    const char *name;       /* for messages */
} qm__weight;

/* A dense product's tokens (not an expert's) that llama.cpp runs through its batched kernel
   (groups of 4, the rest one by one): see qm__mm_q4_K_r16. */
#define QM__DENSE_NG(T) ((T) >= 4 ? (T) - (T) % 4 : 0)

typedef struct qm__matmul_job {
    const qm__weight *w;
    int expert;
    const void *qx;       /* T activation rows, quantized for w's type */
    size_t act_stride;
    float *y;             /* T rows, ldy apart; row r of W goes to column r */
    int64_t ldy;
    int T;
} qm__matmul_job;

static void qm__matmul_task(void *arg, int ith, int nth) {
    qm__matmul_job *j = QM__CAST(qm__matmul_job *, arg);
    const qm__weight *w = j->w;
    /* rows split in multiples of 16, the kernels' row block */
    int64_t rows = w->ne1, per = ((rows + nth - 1) / nth + 15) / 16 * 16, r0 = per * ith, r1 = r0 + per;
    const uint8_t *base = w->data + QM__CAST(size_t, j->expert) * QM__CAST(size_t, w->ne1) * w->row_bytes;
    if (r1 > rows) r1 = rows;
    if (r0 >= r1) return;
    qm__matmul_rows_ng(w->type, w->ne0, base, w->row_bytes, r0, r1, j->qx, j->act_stride, j->T, QM__DENSE_NG(j->T), j->y, j->ldy);
}

/* Y[t][r] = W[expert] row r . X[t] for T tokens. The activations are quantized once (to
   Q8_K / Q8_0 for quantized weights, as llama.cpp does), then the threads split the rows. */
/* The product on activations already quantized for w's type (qm__act_type), so that two
   weights of one type reading the same input (an expert's gate and up) quantize it once. */
static void qm__matmul_q(qm__pool *pool, const void *qbuf, const qm__weight *w, int expert,
                         float *y, int64_t ldy, int T) {
    qm__matmul_job j;
    j.w = w; j.expert = expert; j.qx = qbuf; j.act_stride = qm__act_row_bytes(w->type, w->ne0);
    j.y = y; j.ldy = ldy; j.T = T;
    qm__pool_run(pool, qm__matmul_task, &j);
}

typedef struct qm__quant_job {
    const qm__weight *w;
    const float *x;
    int64_t ldx;
    uint8_t *q;
    size_t stride;
} qm__quant_job;

static void qm__quant_range(void *arg, int t0, int t1) {
    const qm__quant_job *j = QM__CAST(const qm__quant_job *, arg);
    int t;
    for (t = t0; t < t1; t++) qm__quantize_act(j->w->type, j->x + t * j->ldx, j->q + j->stride * QM__CAST(size_t, t), j->w->ne0);
}

/* T rows of x (ldx apart), quantized for w's type */
static void qm__quantize_rows(qm__pool *pool, const qm__weight *w, const float *x, int64_t ldx, void *qbuf, int T) {
    qm__quant_job j;
    j.w = w; j.x = x; j.ldx = ldx; j.q = QM__CAST(uint8_t *, qbuf); j.stride = qm__act_row_bytes(w->type, w->ne0);
    qm__pool_for(pool, T, qm__quant_range, &j);
}

static void qm__matmul(qm__pool *pool, void *qbuf, const qm__weight *w, int expert,
                       const float *x, int64_t ldx, float *y, int64_t ldy, int T) {
    qm__quantize_rows(pool, w, x, ldx, qbuf, T);
    qm__matmul_q(pool, qbuf, w, expert, y, ldy, T);
}

/* Several products in one dispatch: the threads split the row blocks of all of them, so
   that q/k/v, or the gate and up (then the down) of every selected expert, cost one wake-up
   and one wait instead of one per matrix - for MoE decode that is 2 instead of 24 per layer,
   and small matrices (8 tokens x 768 rows) keep every thread busy. */
typedef struct qm__mm_item {
    const qm__weight *w;
    int expert;
    const void *qx;        /* T activation rows, quantized for w's type, stride bytes apart */
    size_t stride;
    int T;
    float *y;              /* row r of W goes to column r of T rows, ldy apart */
    int64_t ldy;
    int dense;             /* a dense product (q, k, v), not an expert's: QM__DENSE_NG */
} qm__mm_item;

typedef struct qm__mm_multi {
    const qm__mm_item *items;
    int n;
    uint64_t total;        /* sum of the blocks' costs */
} qm__mm_multi;

#define QM__MM_BLOCK 16 /* rows per work unit: the kernels' row block */

/* A unit's cost: bytes of weight it reads, times the work per byte (grows with the tokens). */
static uint64_t qm__mm_cost(const qm__mm_item *it, int64_t rows) {
    return QM__CAST(uint64_t, rows) * it->w->row_bytes * QM__CAST(uint64_t, it->T + 3);
}

static void qm__mm_multi_task(void *arg, int ith, int nth) {
    const qm__mm_multi *mm = QM__CAST(const qm__mm_multi *, arg);
    /* A unit belongs to the thread whose share of the total cost holds the unit's midpoint, so
       each thread's units are one contiguous run through the items. */
    uint64_t share = mm->total / QM__CAST(uint64_t, nth), at = 0;
    uint64_t lo = share * QM__CAST(uint64_t, ith), hi = ith == nth - 1 ? mm->total : share * QM__CAST(uint64_t, ith + 1);
    int i;
    for (i = 0; i < mm->n && at < hi; i++) {
        const qm__mm_item *it = &mm->items[i];
        const qm__weight *w = it->w;
        int64_t r0, r1, run0 = -1, run1 = -1;
        if (it->T <= 0) continue;
        for (r0 = 0; r0 < w->ne1; r0 = r1) {
            uint64_t cost, mid;
            r1 = QM__MIN(r0 + QM__MM_BLOCK, w->ne1);
            cost = qm__mm_cost(it, r1 - r0);
            mid = at + cost / 2;
            at += cost;
            if (mid >= lo && mid < hi) {
                if (run0 < 0) run0 = r0;
                run1 = r1;
            }
        }
        if (run0 >= 0)
            qm__matmul_rows_ng(w->type, w->ne0, w->data + QM__CAST(size_t, it->expert) * QM__CAST(size_t, w->ne1) * w->row_bytes,
                               w->row_bytes, run0, run1, it->qx, it->stride, it->T, it->dense ? QM__DENSE_NG(it->T) : 0, it->y, it->ldy);
    }
}

static void qm__matmul_multi(qm__pool *pool, const qm__mm_item *items, int n) {
    qm__mm_multi mm;
    int i;
    mm.items = items; mm.n = n; mm.total = 0;
    for (i = 0; i < n; i++)
        if (items[i].T > 0) mm.total += qm__mm_cost(&items[i], items[i].w->ne1);
    if (mm.total) qm__pool_run(pool, qm__mm_multi_task, &mm);
}

/* ===================================================================================== */
/*  4. model                                                                             */
/* ===================================================================================== */

/* Loading checks every hyperparameter and every tensor (presence, exact shape, a type we can
   compute with) before anything runs, so that a bad file fails here with a message that
   names the key or tensor, and never later with garbage. */

typedef struct qm__layer {
    float *attn_norm, *q_norm, *k_norm, *ffn_norm;   /* small vectors, converted to f32 */
    qm__weight wq, wk, wv, wo;
    qm__weight router;                              /* ffn_gate_inp [n_embd, n_expert] */
    qm__weight gate_exps, up_exps, down_exps;       /* [n_embd, n_ff_exp, n_expert] ... */
    qm__weight ffn_gate, ffn_up, ffn_down;          /* dense qwen3 */
} qm__layer;

struct qm_model {
    qm_gguf *gguf;
    qm_hparams hp;
    qm_tokenizer *tok;
    qm_chat_family chat;
    qm__weight tok_embd, output;
    float *output_norm;
    qm__layer *layers;
    qm_log_fn log;
    void *log_user;
    int log_level;
    float rope_override;
    /* CUDA expert dispatch (section 7), when qwenmoe_cuda.o is linked in and a GPU is there */
    const qm_cuda_hooks *cuda;
    void *cuda_moe;
    int cuda_first_layer;     /* layers below this keep their experts on the CPU */
    int cuda_warned;
    int cuda_full;            /* cuda_moe came from model_create: contexts run on the GPU */
};

static void qm__logmsg(const qm_model *m, int level, const char *fmt, ...) QM__PRINTF(3, 4);
static void qm__logmsg(const qm_model *m, int level, const char *fmt, ...) {
    char msg[1200];
    va_list ap;
    if (level > m->log_level) return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (m->log) m->log(m->log_user, level, msg);
    else QM_LOG(level, msg);
}

QMDEF qm_model_params qm_model_params_default(void) {
    qm_model_params p;
    memset(&p, 0, sizeof(p));
    p.log_level = QM_LOG_WARN;
    return p;
}

/* "{arch}.{suffix}" as an integer; def < 0 means required. */
static qm_result qm__hp_int(qm_model *m, const char *suffix, int64_t def, int64_t lo, int64_t hi,
                            int *out, qm_error *err) {
    char key[128];
    int64_t v;
    qm_result r;
    snprintf(key, sizeof(key), "%s.%s", m->hp.arch, suffix);
    if (qm_gguf_find_key(m->gguf, key) < 0) {
        if (def < 0) return qm__err(err, QM_ERR_FORMAT, "%s: required key '%s' is missing", qm_gguf_path(m->gguf), key);
        v = def;
    } else if ((r = qm_gguf_get_i64(m->gguf, key, &v, err)) != QM_OK) {
        return r;
    }
    if (v < lo || v > hi)
        return qm__err(err, QM_ERR_FORMAT, "%s: key '%s' is %lld; expected %lld..%lld", qm_gguf_path(m->gguf),
                       key, QM__CAST(long long, v), QM__CAST(long long, lo), QM__CAST(long long, hi));
    *out = QM__CAST(int, v);
    return QM_OK;
}

static qm_result qm__hp_float(qm_model *m, const char *suffix, float *out, int *present, qm_error *err) {
    char key[128];
    double v;
    qm_result r;
    snprintf(key, sizeof(key), "%s.%s", m->hp.arch, suffix);
    *present = qm_gguf_find_key(m->gguf, key) >= 0;
    if (!*present) return QM_OK;
    if ((r = qm_gguf_get_f64(m->gguf, key, &v, err)) != QM_OK) return r;
    if (!(v > 0) || v > 1e30)
        return qm__err(err, QM_ERR_FORMAT, "%s: key '%s' is %g; expected a positive number",
                       qm_gguf_path(m->gguf), key, v);
    *out = QM__CAST(float, v);
    return QM_OK;
}

/* Find a tensor, check its shape and type, and fill a weight view. Shapes are ggml order. */
static qm_result qm__get_weight(qm_model *m, const char *name, int optional, int64_t ne0, int64_t ne1,
                                int64_t ne2, qm__weight *w, qm_error *err) {
    const qm_gguf_tensor *t = qm_gguf_find_tensor(m->gguf, name);
    memset(w, 0, sizeof(*w));
    if (!t) {
        if (optional) return QM_OK;
        return qm__err(err, QM_ERR_FORMAT, "%s: tensor '%s' is missing", qm_gguf_path(m->gguf), name);
    }
    if (t->ne[0] != ne0 || t->ne[1] != ne1 || t->ne[2] != ne2 || t->ne[3] != 1)
        return qm__err(err, QM_ERR_FORMAT, "%s: tensor '%s': expected shape [%lld, %lld, %lld], found [%lld, %lld, %lld, %lld]",
                       qm_gguf_path(m->gguf), name, QM__CAST(long long, ne0), QM__CAST(long long, ne1),
                       QM__CAST(long long, ne2), QM__CAST(long long, t->ne[0]), QM__CAST(long long, t->ne[1]),
                       QM__CAST(long long, t->ne[2]), QM__CAST(long long, t->ne[3]));
    if (!qm_type_supported(t->type))
        return qm__err(err, QM_ERR_UNSUPPORTED, "%s: tensor '%s' has type %s (id %d), which qwenmoe does not support",
                       qm_gguf_path(m->gguf), name, qm_type_name(t->type) ? qm_type_name(t->type) : "unknown", t->type);
    w->data = QM__CAST(const uint8_t *, t->data);
    w->type = t->type;
    w->ne0 = ne0; w->ne1 = ne1; w->ne2 = ne2;
    w->row_bytes = qm_type_row_bytes(t->type, ne0);
    w->name = NULL;
    return QM_OK;
}

/* A 1-D weight (norms) converted to an owned f32 array. */
static qm_result qm__get_vector(qm_model *m, const char *name, int64_t n, float **out, qm_error *err) {
    qm__weight w;
    qm_result r = qm__get_weight(m, name, 0, n, 1, 1, &w, err);
    if (r) return r;
    *out = QM__ALLOC(float, n);
    if (!*out) return qm__err(err, QM_ERR_OOM, "out of memory loading '%s'", name);
    return qm_dequantize_row(w.type, w.data, *out, n);
}

static qm_result qm__model_init(qm_model *m, qm_error *err) {
    qm_hparams *hp = &m->hp;
    const qm_gguf *g = m->gguf;
    const char *path = qm_gguf_path(g);
    const qm_gguf_tensor *te;
    qm_str arch, s;
    qm_result r;
    int present, il, dense;
    int64_t n;
    char name[96];

    if ((r = qm_gguf_get_str(g, "general.architecture", &arch, err))) return r;
    if (!((arch.len == 8 && memcmp(arch.ptr, "qwen3moe", 8) == 0) || (arch.len == 5 && memcmp(arch.ptr, "qwen3", 5) == 0))) {
        char a[64];
        return qm__err(err, QM_ERR_UNSUPPORTED, "%s: architecture '%s' is not supported (expected 'qwen3moe' or 'qwen3')",
                       path, qm__safe_name(arch.ptr, arch.len, a, sizeof(a)));
    }
    memcpy(hp->arch, arch.ptr, (size_t)arch.len);
    hp->arch[arch.len] = 0;
    dense = arch.len == 5;

    if ((r = qm__hp_int(m, "block_count", -1, 1, 4096, &hp->n_layer, err)) ||
        (r = qm__hp_int(m, "embedding_length", -1, 1, 1 << 20, &hp->n_embd, err)) ||
        (r = qm__hp_int(m, "context_length", -1, 1, 1 << 24, &hp->n_ctx_train, err)) ||
        (r = qm__hp_int(m, "attention.head_count", -1, 1, 4096, &hp->n_head, err)) ||
        (r = qm__hp_int(m, "attention.head_count_kv", hp->n_head, 1, hp->n_head, &hp->n_head_kv, err)) ||
        (r = qm__hp_int(m, "attention.key_length", hp->n_embd / hp->n_head, 2, 4096, &hp->head_dim, err)))
        return r;
    if (hp->n_head % hp->n_head_kv != 0)
        return qm__err(err, QM_ERR_FORMAT, "%s: %d attention heads is not a multiple of %d KV heads", path, hp->n_head, hp->n_head_kv);
    {
        int vlen;
        if ((r = qm__hp_int(m, "attention.value_length", hp->head_dim, 1, 4096, &vlen, err))) return r;
        if (vlen != hp->head_dim)
            return qm__err(err, QM_ERR_UNSUPPORTED, "%s: key '%s.attention.value_length' is %d; expected it to equal key_length %d",
                           path, hp->arch, vlen, hp->head_dim);
    }
    if ((r = qm__hp_int(m, "rope.dimension_count", hp->head_dim, 2, 4096, &hp->n_rot, err))) return r;
    if (hp->n_rot != hp->head_dim || hp->head_dim % 2)
        return qm__err(err, QM_ERR_UNSUPPORTED, "%s: rope.dimension_count %d must equal the (even) head dimension %d",
                       path, hp->n_rot, hp->head_dim);
    if ((r = qm__hp_float(m, "attention.layer_norm_rms_epsilon", &hp->rms_eps, &present, err))) return r;
    if (!present) return qm__err(err, QM_ERR_FORMAT, "%s: required key '%s.attention.layer_norm_rms_epsilon' is missing", path, hp->arch);
    if ((r = qm__hp_float(m, "rope.freq_base", &hp->rope_freq_base, &present, err))) return r;
    if (m->rope_override > 0) {
        hp->rope_freq_base = m->rope_override;
    } else if (!present) {
        /* llama.cpp falls back to 1e4 here, but every Qwen3 model was trained with >= 1e6 */
        hp->rope_freq_base = 1e6f;
        hp->rope_base_defaulted = 1;
        qm__logmsg(m, QM_LOG_WARN, "%s: key '%s.rope.freq_base' is absent; using Qwen3's trained value 1e6 (llama.cpp would use 1e4)",
                path, hp->arch);
    }
    /* below 1 the rotation speeds grow with the dimension (angles of 1e21 radians at position 60
       for a base of 1e-34, found by fuzzing): no trained model has that */
    if (!(hp->rope_freq_base >= 1.0f))
        return qm__err(err, QM_ERR_FORMAT, "%s: RoPE base %g (%s): expected at least 1 (Qwen3 uses 1e6)", path,
                       QM__CAST(double, hp->rope_freq_base), m->rope_override > 0 ? "qm_model_params.rope_freq_base" : "key 'rope.freq_base'");
    {
        char key[128];
        snprintf(key, sizeof(key), "%s.rope.scaling.type", hp->arch);
        if (qm_gguf_get_str(g, key, &s, NULL) == QM_OK && !(s.len == 4 && memcmp(s.ptr, "none", 4) == 0) &&
            !(s.len == 6 && memcmp(s.ptr, "linear", 6) == 0)) {
            char v[64];
            return qm__err(err, QM_ERR_UNSUPPORTED, "%s: key '%s' is '%s'; rope scaling is not supported", path, key,
                           qm__safe_name(s.ptr, s.len, v, sizeof(v)));
        }
    }
    if (dense) {
        if ((r = qm__hp_int(m, "feed_forward_length", -1, 1, 1 << 20, &hp->n_ff, err))) return r;
    } else {
        if ((r = qm__hp_int(m, "feed_forward_length", 0, 0, 1 << 20, &hp->n_ff, err)) ||
            (r = qm__hp_int(m, "expert_count", -1, 1, 4096, &hp->n_expert, err)) ||
            (r = qm__hp_int(m, "expert_used_count", -1, 1, hp->n_expert, &hp->n_expert_used, err)) ||
            (r = qm__hp_int(m, "expert_feed_forward_length", hp->n_ff / hp->n_expert_used, 1, 1 << 20, &hp->n_ff_exp, err)))
            return r;
    }

    /* tensors */
    te = qm_gguf_find_tensor(g, "token_embd.weight");
    if (!te) return qm__err(err, QM_ERR_FORMAT, "%s: tensor 'token_embd.weight' is missing", path);
    if (te->ne[0] != hp->n_embd || te->n_dims != 2)
        return qm__err(err, QM_ERR_FORMAT, "%s: tensor 'token_embd.weight': expected shape [%d, n_vocab], found [%lld, %lld]",
                       path, hp->n_embd, QM__CAST(long long, te->ne[0]), QM__CAST(long long, te->ne[1]));
    if (te->ne[1] > INT32_MAX) return qm__err(err, QM_ERR_FORMAT, "%s: vocabulary of %lld tokens is too large", path, QM__CAST(long long, te->ne[1]));
    hp->n_vocab = QM__CAST(int, te->ne[1]);
    if ((r = qm__get_weight(m, "token_embd.weight", 0, hp->n_embd, hp->n_vocab, 1, &m->tok_embd, err))) return r;
    if ((r = qm__get_weight(m, "output.weight", 1, hp->n_embd, hp->n_vocab, 1, &m->output, err))) return r;
    if (!m->output.data) { m->output = m->tok_embd; hp->tied_output = 1; }
    if ((r = qm__get_vector(m, "output_norm.weight", hp->n_embd, &m->output_norm, err))) return r;

    n = hp->n_layer;
    m->layers = QM__ALLOC(qm__layer, n);
    if (!m->layers) return qm__err(err, QM_ERR_OOM, "out of memory");
    memset(m->layers, 0, sizeof(qm__layer) * (size_t)n);
    for (il = 0; il < hp->n_layer; il++) {
        qm__layer *L = &m->layers[il];
        int qd = hp->head_dim * hp->n_head, kvd = hp->head_dim * hp->n_head_kv;
#define QM__NAME(suffix) (snprintf(name, sizeof(name), "blk.%d.%s", il, suffix), name)
        if ((r = qm__get_vector(m, QM__NAME("attn_norm.weight"), hp->n_embd, &L->attn_norm, err)) ||
            (r = qm__get_vector(m, QM__NAME("attn_q_norm.weight"), hp->head_dim, &L->q_norm, err)) ||
            (r = qm__get_vector(m, QM__NAME("attn_k_norm.weight"), hp->head_dim, &L->k_norm, err)) ||
            (r = qm__get_vector(m, QM__NAME("ffn_norm.weight"), hp->n_embd, &L->ffn_norm, err)) ||
            (r = qm__get_weight(m, QM__NAME("attn_q.weight"), 0, hp->n_embd, qd, 1, &L->wq, err)) ||
            (r = qm__get_weight(m, QM__NAME("attn_k.weight"), 0, hp->n_embd, kvd, 1, &L->wk, err)) ||
            (r = qm__get_weight(m, QM__NAME("attn_v.weight"), 0, hp->n_embd, kvd, 1, &L->wv, err)) ||
            (r = qm__get_weight(m, QM__NAME("attn_output.weight"), 0, qd, hp->n_embd, 1, &L->wo, err)))
            return r;
        if (dense) {
            if ((r = qm__get_weight(m, QM__NAME("ffn_gate.weight"), 0, hp->n_embd, hp->n_ff, 1, &L->ffn_gate, err)) ||
                (r = qm__get_weight(m, QM__NAME("ffn_up.weight"), 0, hp->n_embd, hp->n_ff, 1, &L->ffn_up, err)) ||
                (r = qm__get_weight(m, QM__NAME("ffn_down.weight"), 0, hp->n_ff, hp->n_embd, 1, &L->ffn_down, err)))
                return r;
        } else {
            if ((r = qm__get_weight(m, QM__NAME("ffn_gate_inp.weight"), 0, hp->n_embd, hp->n_expert, 1, &L->router, err)) ||
                (r = qm__get_weight(m, QM__NAME("ffn_gate_exps.weight"), 0, hp->n_embd, hp->n_ff_exp, hp->n_expert, &L->gate_exps, err)) ||
                (r = qm__get_weight(m, QM__NAME("ffn_up_exps.weight"), 0, hp->n_embd, hp->n_ff_exp, hp->n_expert, &L->up_exps, err)) ||
                (r = qm__get_weight(m, QM__NAME("ffn_down_exps.weight"), 0, hp->n_ff_exp, hp->n_embd, hp->n_expert, &L->down_exps, err)))
                return r;
        }
#undef QM__NAME
    }

    if ((r = qm_tokenizer_load(g, &m->tok, err))) return r;
    if (qm_tokenizer_n_vocab(m->tok) > hp->n_vocab)
        return qm__err(err, QM_ERR_FORMAT, "%s: the tokenizer has %d tokens but token_embd.weight only %d rows",
                       path, qm_tokenizer_n_vocab(m->tok), hp->n_vocab);
    m->chat = QM_CHAT_CHATML;
    if (qm_gguf_get_str(g, "tokenizer.chat_template", &s, NULL) == QM_OK) {
        int known = 0;
        m->chat = qm_chat_detect(s.ptr, (size_t)s.len, &known);
        if (!known) qm__logmsg(m, QM_LOG_WARN, "%s: tokenizer.chat_template is not one qwenmoe recognises; using plain ChatML", path);
    } else {
        qm__logmsg(m, QM_LOG_WARN, "%s: no tokenizer.chat_template; using plain ChatML", path);
    }
    return QM_OK;
}

static void qm__cuda_setup(qm_model *m, const qm_model_params *params);
static void qm__cuda_ctx_setup(qm_context *c);

/* What the model will hold in memory: every tensor's data (mmapped pages become resident as
   the forward reads them) plus the reader's, the tokenizer's and the loader's own tables. The
   tokenizer's tables are allocated by now, but they are a bounded multiple of its arrays, which
   the reader's cap (the same max_memory_bytes) has already bounded. */
static uint64_t qm__tokenizer_mem_bytes(const qm_tokenizer *t); /* in section 5 */
static qm_result qm__model_check_memory(qm_model *m, uint64_t cap, qm_error *err) {
    uint64_t tensors = 0, tables = m->gguf->alloc_used + qm__tokenizer_mem_bytes(m->tok), total;
    int64_t i;
    for (i = 0; i < m->gguf->n_tensors; i++)
        if (!qm__add_u64(tensors, m->gguf->tensors[i].nbytes, &tensors)) tensors = (uint64_t)-1;
    tables += (uint64_t)m->hp.n_layer * (uint64_t)(2 * m->hp.n_embd + 2 * m->hp.head_dim) * 4;
    if (!qm__add_u64(tensors, tables, &total)) total = (uint64_t)-1;
    if (total > cap)
        return qm__err(err, QM_ERR_OOM, "%s: the model needs %llu MiB (tensor data %llu MiB, tables %llu MiB), more than the cap "
                       "max_memory_bytes = %llu MiB", m->gguf->path, QM__CAST(unsigned long long, total >> 20),
                       QM__CAST(unsigned long long, tensors >> 20), QM__CAST(unsigned long long, tables >> 20),
                       QM__CAST(unsigned long long, cap >> 20));
    return QM_OK;
}

static qm_result qm__model_load(qm_gguf *g, const qm_model_params *params, qm_model **out, qm_error *err) {
    qm_model *m = QM__ALLOC(qm_model, 1);
    qm_result r;
    if (!m) { qm_gguf_close(g); return qm__err(err, QM_ERR_OOM, "out of memory"); }
    memset(m, 0, sizeof(*m));
    m->gguf = g;
    m->log_level = QM_LOG_WARN;
    if (params) {
        m->log = params->log;
        m->log_user = params->log_user;
        if (params->log_level) m->log_level = params->log_level;
        m->rope_override = params->rope_freq_base;
    }
    if ((r = qm__model_init(m, err)) != QM_OK) { qm_model_free(m); return r; }
    if (params && params->max_memory_bytes && (r = qm__model_check_memory(m, params->max_memory_bytes, err)) != QM_OK) {
        qm_model_free(m);
        return r;
    }
    qm__cuda_setup(m, params);
    *out = m;
    return QM_OK;
}

QMDEF qm_result qm_model_load(const char *path, const qm_model_params *params, qm_model **out, qm_error *err) {
    qm_gguf_params gp;
    qm_gguf *g;
    qm_result r;
    if (!path || !out) return qm__err(err, QM_ERR_INVALID_ARG, "qm_model_load: path or out is NULL");
    *out = NULL;
    memset(&gp, 0, sizeof(gp));
    gp.no_mmap = params ? params->no_mmap : 0;
    gp.max_alloc_bytes = params ? params->max_memory_bytes : 0;
    if ((r = qm_gguf_open(path, &gp, &g, err))) return r;
    return qm__model_load(g, params, out, err);
}

QMDEF qm_result qm_model_load_memory(const void *data, size_t size, const qm_model_params *params,
                                     qm_model **out, qm_error *err) {
    qm_gguf *g;
    qm_result r;
    if (!out) return qm__err(err, QM_ERR_INVALID_ARG, "qm_model_load_memory: out is NULL");
    *out = NULL;
    /* the weights are read in place with typed (f32, f16, block) loads: with GGUF's alignment
       (a multiple of 8) they are aligned only when the buffer is */
    if ((uintptr_t)data % 8 != 0) /* a C cast: C++ has no static_cast from a pointer */
        return qm__err(err, QM_ERR_INVALID_ARG, "qm_model_load_memory: the buffer at %p is not 8-byte aligned "
                       "(the tensor data is used in place)", data);
    {
        qm_gguf_params gp;
        memset(&gp, 0, sizeof(gp));
        gp.max_alloc_bytes = params ? params->max_memory_bytes : 0;
        if ((r = qm_gguf_open_memory(data, size, &gp, &g, err))) return r;
    }
    return qm__model_load(g, params, out, err);
}

QMDEF void qm_model_free(qm_model *m) {
    int il;
    if (!m) return;
    if (m->cuda_moe && m->cuda->moe_free) m->cuda->moe_free(m->cuda_moe);
    if (m->layers)
        for (il = 0; il < m->hp.n_layer; il++) {
            QM_FREE(m->layers[il].attn_norm);
            QM_FREE(m->layers[il].q_norm);
            QM_FREE(m->layers[il].k_norm);
            QM_FREE(m->layers[il].ffn_norm);
        }
    QM_FREE(m->layers);
    QM_FREE(m->output_norm);
    qm_tokenizer_free(m->tok);
    qm_gguf_close(m->gguf);
    QM_FREE(m);
}

QMDEF const qm_hparams *qm_model_hparams(const qm_model *m) { return &m->hp; }
QMDEF const qm_tokenizer *qm_model_tokenizer(const qm_model *m) { return m->tok; }
QMDEF const qm_gguf *qm_model_gguf(const qm_model *m) { return m->gguf; }
QMDEF qm_chat_family qm_model_chat_family(const qm_model *m) { return m->chat; }
QMDEF const char *qm_model_backend(const qm_model *m) { return m && m->cuda_moe ? "cuda" : "cpu"; }

/* ---- context: KV cache, scratch buffers, threads ---- */

#define QM__ATT_G 8 /* q heads per kv head taken together (qm__attn_group_f16x128) */

struct qm_context {
    qm_model *m;
    qm_context_params p;
    int n_ctx, n_batch, pos;
    qm__pool pool;
    void *k_cache, *v_cache;  /* [n_layer][n_ctx][n_head_kv * head_dim], f16 or f32 */
    float *rope_cos, *rope_sin;  /* [n_ctx][head_dim / 2] */
    /* activations for up to n_batch tokens */
    float *x, *xn, *q, *k, *v, *att, *o, *moe, *router, *ff_gate, *ff_up, *ff_down;
    int32_t *sel;            /* [n_batch][n_expert_used] */
    float *sel_w;
    int32_t *exp_tokens;     /* [n_batch * k] (token, slot) pairs, grouped by expert */
    int32_t *pair_of;        /* [n_batch][k] the pair of (token, slot) */
    void *exp_q;             /* [n_batch * k] quantized expert input rows, in pair order */
    size_t exp_q_stride;     /* bytes per row of exp_q */
    qm__mm_item *mm_items;   /* [2 * n_expert + 3] products of one dispatch */
    int32_t *exp_first;      /* [n_expert + 1] first pair of each used expert */
    float *scores;           /* [n_threads][QM__ATT_G * n_ctx] */
    void *qact;              /* [n_batch] activation rows quantized for a matmul */
    float *logits;           /* [n_batch or 1][n_vocab] */
    int n_logits;            /* rows valid in logits */
    void *cuda_ctx;          /* the whole forward on the GPU (section 7), or NULL */
};

static void *qm__calloc_f(size_t n, size_t sz, int *ok) {
    size_t bytes = n * sz;
    void *p;
    if (bytes == 0) bytes = 1;
    p = QM_MALLOC(bytes);
    if (!p) *ok = 0;
    else memset(p, 0, bytes);
    return p;
}

QMDEF qm_result qm_context_create(qm_model *m, const qm_context_params *params, qm_context **out, qm_error *err) {
    qm_context *c;
    const qm_hparams *hp;
    int ok = 1, nt, i, p, maxrow, nb, kvd, K1, ffrow, ffw;
    size_t qact_row;
    uint64_t kv_bytes, elt;
    if (!m || !out) return qm__err(err, QM_ERR_INVALID_ARG, "qm_context_create: model or out is NULL");
    *out = NULL;
    hp = &m->hp;
    c = QM__ALLOC(qm_context, 1);
    if (!c) return qm__err(err, QM_ERR_OOM, "out of memory");
    memset(c, 0, sizeof(*c));
    c->m = m;
    if (params) c->p = *params;
    c->n_ctx = c->p.n_ctx ? c->p.n_ctx : QM__MIN(4096, hp->n_ctx_train);
    if (c->p.n_ctx < 0 || c->n_ctx > hp->n_ctx_train) {
        int want = c->p.n_ctx;
        QM_FREE(c);
        return qm__err(err, QM_ERR_INVALID_ARG, "context size %d is out of range: the model was trained for 1..%d tokens",
                       want, hp->n_ctx_train);
    }
    if (c->p.kv_type != QM_KV_F16 && c->p.kv_type != QM_KV_F32) {
        int want = c->p.kv_type;
        QM_FREE(c);
        return qm__err(err, QM_ERR_INVALID_ARG, "kv_type %d is not QM_KV_F16 (0) or QM_KV_F32 (1)", want);
    }
    nb = c->n_batch = c->p.n_batch > 0 ? c->p.n_batch : 512;
    if (c->n_batch > c->n_ctx) nb = c->n_batch = c->n_ctx;
    nt = c->p.n_threads;
#if !defined(_WIN32) && defined(_SC_NPROCESSORS_ONLN)
    if (nt <= 0) nt = QM__CAST(int, sysconf(_SC_NPROCESSORS_ONLN));
#endif
    if (nt <= 0) nt = 1;
    if (nt > 256) nt = 256;
    kvd = hp->n_head_kv * hp->head_dim;
    elt = c->p.kv_type == QM_KV_F32 ? 4 : 2;
    /* the FFN width the forward uses: n_ff for dense models, n_ff_exp for MoE (whose
       feed_forward_length is checked against no tensor, so it must not size anything) */
    ffw = hp->n_expert ? hp->n_ff_exp : hp->n_ff;
    maxrow = QM__MAX(QM__MAX(hp->n_embd, hp->head_dim * hp->n_head), ffw);
    K1 = QM__MAX(hp->n_expert_used, 1);
    ffrow = hp->n_expert ? K1 * hp->n_ff_exp : hp->n_ff;
    /* an expert input row (n_embd or n_ff_exp values) in any activation format: <= 4 bytes each */
    c->exp_q_stride = (size_t)4 * (size_t)QM__MAX(hp->n_embd, hp->n_expert ? hp->n_ff_exp : 0) + 64;
    /* qact: one matmul input row (<= 4 bytes per value in any format, plus a block's slack),
       or q/k/v's input in up to three formats */
    qact_row = QM__MAX((size_t)4 * (size_t)maxrow + 64, 3 * ((size_t)4 * (size_t)hp->n_embd + 64));
    /* Every size below is computed in checked 64-bit arithmetic first, so that hostile
       hyperparameters give an error here and never a wrapped allocation. */
    {
        uint64_t per_tok = 0, t1, total = 0, fixed = 0;
        int okc = qm__mul_u64(QM__CAST(uint64_t, hp->n_layer) * QM__CAST(uint64_t, c->n_ctx), QM__CAST(uint64_t, kvd) * elt, &kv_bytes);
        /* per batch row: x xn q k v att o moe router sel sel_w, qact, and for the k experts of
           each token ff_gate ff_up ff_down exp_tokens exp_q */
        per_tok = 4 * (5 * (uint64_t)hp->n_embd + 2 * (uint64_t)hp->n_head * hp->head_dim + 2 * (uint64_t)kvd +
                       (uint64_t)QM__MAX(hp->n_expert, 1) + 2 * (uint64_t)ffrow + (uint64_t)K1 * hp->n_embd +
                       2 * (uint64_t)K1 + 2 * (uint64_t)K1) + (uint64_t)qact_row + (uint64_t)K1 * c->exp_q_stride;
        okc = okc && qm__mul_u64(per_tok, QM__CAST(uint64_t, nb), &t1) && qm__add_u64(total, t1, &total);
        okc = okc && qm__mul_u64(kv_bytes, 2, &t1) && qm__add_u64(total, t1, &total);
        fixed = 4 * ((uint64_t)c->n_ctx * (uint64_t)hp->head_dim + (uint64_t)nt * (uint64_t)c->n_ctx);
        okc = okc && qm__add_u64(total, fixed, &total);
        okc = okc && qm__mul_u64(4 * (uint64_t)hp->n_vocab, QM__CAST(uint64_t, c->p.all_logits ? nb : 1), &t1) &&
              qm__add_u64(total, t1, &total);
        if (!okc || total > (uint64_t)(size_t)-1 / 2) {
            int want = c->n_ctx;
            QM_FREE(c);
            return qm__err(err, QM_ERR_OOM, "a context of %d tokens (batch %d) overflows the address space", want, nb);
        }
        if (c->p.max_memory_bytes && total > c->p.max_memory_bytes) {
            int want = c->n_ctx;
            uint64_t cap = c->p.max_memory_bytes;
            QM_FREE(c);
            return qm__err(err, QM_ERR_OOM, "a context of %d tokens (batch %d) needs %llu MiB (KV cache %llu MiB), more than the cap "
                           "max_memory_bytes = %llu MiB", want, nb, QM__CAST(unsigned long long, total >> 20),
                           QM__CAST(unsigned long long, (2 * kv_bytes) >> 20), QM__CAST(unsigned long long, cap >> 20));
        }
    }
    c->k_cache = qm__calloc_f((size_t)kv_bytes, 1, &ok);
    c->v_cache = qm__calloc_f((size_t)kv_bytes, 1, &ok);
    c->rope_cos = QM__CAST(float *, qm__calloc_f((size_t)c->n_ctx * (size_t)(hp->head_dim / 2), sizeof(float), &ok));
    c->rope_sin = QM__CAST(float *, qm__calloc_f((size_t)c->n_ctx * (size_t)(hp->head_dim / 2), sizeof(float), &ok));
#define QM__BUF(field, count, T) c->field = QM__CAST(T *, qm__calloc_f((size_t)(count), sizeof(T), &ok))
    QM__BUF(x, (size_t)nb * hp->n_embd, float);
    QM__BUF(xn, (size_t)nb * hp->n_embd, float);
    QM__BUF(q, (size_t)nb * hp->n_head * hp->head_dim, float);
    QM__BUF(k, (size_t)nb * kvd, float);
    QM__BUF(v, (size_t)nb * kvd, float);
    QM__BUF(att, (size_t)nb * hp->n_head * hp->head_dim, float);
    QM__BUF(o, (size_t)nb * hp->n_embd, float);
    QM__BUF(moe, (size_t)nb * hp->n_embd, float);
    QM__BUF(router, (size_t)nb * QM__MAX(hp->n_expert, 1), float);
    QM__BUF(ff_gate, (size_t)nb * ffrow, float);
    QM__BUF(ff_up, (size_t)nb * ffrow, float);
    QM__BUF(ff_down, (size_t)nb * K1 * hp->n_embd, float);
    QM__BUF(sel, (size_t)nb * QM__MAX(hp->n_expert_used, 1), int32_t);
    QM__BUF(sel_w, (size_t)nb * QM__MAX(hp->n_expert_used, 1), float);
    QM__BUF(exp_tokens, (size_t)nb * K1 * 2, int32_t);
    QM__BUF(pair_of, (size_t)nb * K1, int32_t);
    c->exp_q = qm__calloc_f((size_t)nb * K1, c->exp_q_stride, &ok);
    QM__BUF(mm_items, 2 * (size_t)hp->n_expert + 3, qm__mm_item);
    QM__BUF(exp_first, (size_t)hp->n_expert + 1, int32_t);
    QM__BUF(scores, (size_t)nt * QM__ATT_G * c->n_ctx, float);
    c->qact = qm__calloc_f((size_t)nb, qact_row, &ok);
    QM__BUF(logits, (size_t)(c->p.all_logits ? nb : 1) * hp->n_vocab, float);
#undef QM__BUF
    if (!ok || !qm__pool_init(&c->pool, nt)) {
        int want = c->n_ctx;
        qm_context_free(c);
        return qm__err(err, QM_ERR_OOM, "out of memory creating a context of %d tokens (KV cache %llu MiB)",
                       want, QM__CAST(unsigned long long, 2 * kv_bytes >> 20));
    }
    /* RoPE table, computed as ggml does: theta_i = pos * base^(-2i/n_rot), by repeated
       multiplication in float, so positions match llama.cpp bit for bit */
    {
        float theta_scale = qm__powf(hp->rope_freq_base, -2.0f / QM__CAST(float, hp->n_rot));
        int half = hp->head_dim / 2;
        for (p = 0; p < c->n_ctx; p++) {
            float theta = QM__CAST(float, p);
            for (i = 0; i < half; i++) {
                c->rope_cos[(size_t)p * half + i] = qm__cosf(theta);
                c->rope_sin[(size_t)p * half + i] = qm__sinf(theta);
                theta *= theta_scale;
            }
        }
    }
    qm__cuda_ctx_setup(c);
    *out = c;
    return QM_OK;
}

QMDEF const char *qm_context_backend(const qm_context *c) {
    if (!c) return "cpu";
    return c->cuda_ctx ? "cuda" : c->m->cuda_moe ? "cuda-experts" : "cpu";
}

QMDEF void qm_context_free(qm_context *c) {
    if (!c) return;
    if (c->cuda_ctx) c->m->cuda->ctx_free(c->cuda_ctx);
    if (c->pool.n_threads) qm__pool_free(&c->pool);
    QM_FREE(c->k_cache); QM_FREE(c->v_cache); QM_FREE(c->rope_cos); QM_FREE(c->rope_sin);
    QM_FREE(c->x); QM_FREE(c->xn); QM_FREE(c->q); QM_FREE(c->k); QM_FREE(c->v); QM_FREE(c->att);
    QM_FREE(c->o); QM_FREE(c->moe); QM_FREE(c->router); QM_FREE(c->ff_gate); QM_FREE(c->ff_up);
    QM_FREE(c->ff_down); QM_FREE(c->sel); QM_FREE(c->sel_w); QM_FREE(c->exp_tokens); QM_FREE(c->pair_of); QM_FREE(c->exp_q);
    QM_FREE(c->mm_items); QM_FREE(c->exp_first);
    QM_FREE(c->scores); QM_FREE(c->qact); QM_FREE(c->logits);
    QM_FREE(c);
}

QMDEF int qm_context_n_ctx(const qm_context *c) { return c->n_ctx; }
QMDEF int qm_context_pos(const qm_context *c) { return c->pos; }
QMDEF qm_result qm_context_truncate(qm_context *c, int pos) {
    if (!c || pos < 0 || pos > c->pos) return QM_ERR_INVALID_ARG;
    c->pos = pos;
    return QM_OK;
}

/* ---- the forward pass ---- */

static void qm__trace(qm_context *c, int layer, const char *stage, const float *data, int T, int dim) {
    qm_trace_event ev;
    if (!c->p.trace) return;
    memset(&ev, 0, sizeof(ev));
    ev.layer = layer; ev.stage = stage; ev.n_tokens = T; ev.dim = dim; ev.data = data;
    c->p.trace(c->p.trace_user, &ev);
}

/* Per-head RMSNorm of q and k, then NEOX RoPE: element i pairs with i + head_dim/2. */
static void qm__norm_rope(float *vec, int n_heads, int hd, const float *w, float eps, const float *cs, const float *sn) {
    int h, i, half = hd / 2;
    for (h = 0; h < n_heads; h++) {
        float *x = vec + (size_t)h * hd;
        qm__rmsnorm(x, x, w, hd, eps);
        for (i = 0; i < half; i++) {
            float x0 = x[i], x1 = x[i + half];
            x[i] = x0 * cs[i] - x1 * sn[i];
            x[i + half] = x0 * sn[i] + x1 * cs[i];
        }
    }
}

#if defined(QM__AVX512)
/* sc[p] = scale * (K row p . q) for n_kv f16 rows of 128, stride apart; returns the largest.
   Each dot takes exactly qm__dot_f16_f32_avx512's steps for n = 128 (four accumulators from
   zero, two fmas each, the same reduction), so the scores have the same bits. */
static float qm__qk_f16x128(const uint16_t *k, size_t stride, const float *q, int n_kv, float scale, float *sc) {
    const __m512 q0 = _mm512_loadu_ps(q), q1 = _mm512_loadu_ps(q + 16), q2 = _mm512_loadu_ps(q + 32), q3 = _mm512_loadu_ps(q + 48);
    const __m512 q4 = _mm512_loadu_ps(q + 64), q5 = _mm512_loadu_ps(q + 80), q6 = _mm512_loadu_ps(q + 96), q7 = _mm512_loadu_ps(q + 112);
    const __m512 z = _mm512_setzero_ps();
    float mx = -3.4e38f;
    int p;
    for (p = 0; p < n_kv; p++, k += stride) {
        __m512 s0 = _mm512_fmadd_ps(_mm512_cvtph_ps(QM__LD256(k)), q0, z);
        __m512 s1 = _mm512_fmadd_ps(_mm512_cvtph_ps(QM__LD256(k + 16)), q1, z);
        __m512 s2 = _mm512_fmadd_ps(_mm512_cvtph_ps(QM__LD256(k + 32)), q2, z);
        __m512 s3 = _mm512_fmadd_ps(_mm512_cvtph_ps(QM__LD256(k + 48)), q3, z);
        float s;
        s0 = _mm512_fmadd_ps(_mm512_cvtph_ps(QM__LD256(k + 64)), q4, s0);
        s1 = _mm512_fmadd_ps(_mm512_cvtph_ps(QM__LD256(k + 80)), q5, s1);
        s2 = _mm512_fmadd_ps(_mm512_cvtph_ps(QM__LD256(k + 96)), q6, s2);
        s3 = _mm512_fmadd_ps(_mm512_cvtph_ps(QM__LD256(k + 112)), q7, s3);
        s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3))) * scale;
        sc[p] = s;
        if (s > mx) mx = s;
    }
    return mx;
}

/* lane j of the result = _mm512_reduce_add_ps(v_j), for 8 vectors at once: the same adds in
   the same tree (GCC's: the 256-bit halves, then the 128-bit halves, then elements 2 apart,
   then 1 apart), with the shuffles shared, so the scores keep their bits. Written out without
   loops or arrays, which GCC would keep in memory. */
static QM__ALWAYS_INLINE __m256 qm__reduce8_ps(__m512 v0, __m512 v1, __m512 v2, __m512 v3, __m512 v4, __m512 v5, __m512 v6, __m512 v7) {
    /* lanes 0-7: v_2a[i] + v_2a[i + 8]; lanes 8-15: the same for v_2a+1 */
    const __m512 x0 = _mm512_add_ps(_mm512_shuffle_f32x4(v0, v1, 0xee), _mm512_shuffle_f32x4(v0, v1, 0x44));
    const __m512 x1 = _mm512_add_ps(_mm512_shuffle_f32x4(v2, v3, 0xee), _mm512_shuffle_f32x4(v2, v3, 0x44));
    const __m512 x2 = _mm512_add_ps(_mm512_shuffle_f32x4(v4, v5, 0xee), _mm512_shuffle_f32x4(v4, v5, 0x44));
    const __m512 x3 = _mm512_add_ps(_mm512_shuffle_f32x4(v6, v7, 0xee), _mm512_shuffle_f32x4(v6, v7, 0x44));
    /* 128-bit lane L of y_a: v_4a+L's four sums of elements 4 apart */
    const __m512 y0 = _mm512_add_ps(_mm512_shuffle_f32x4(x0, x1, 0xdd), _mm512_shuffle_f32x4(x0, x1, 0x88));
    const __m512 y1 = _mm512_add_ps(_mm512_shuffle_f32x4(x2, x3, 0xdd), _mm512_shuffle_f32x4(x2, x3, 0x88));
    /* lane L: v_L's two sums of elements 2 apart, then v_4+L's */
    __m512 z = _mm512_add_ps(_mm512_shuffle_ps(y0, y1, 0x44), _mm512_shuffle_ps(y0, y1, 0xee));
    z = _mm512_add_ps(z, _mm512_shuffle_ps(z, z, 0xb1)); /* elements 0 and 2 of lane L: v_L, v_4+L */
    return _mm512_castps512_ps256(_mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 2, 6, 10, 14, 0, 0, 0, 0, 0, 0, 0, 0), z));
}

/* one head's K row . q before the reduction: qm__qk_f16x128's steps, the row converted already */
static QM__ALWAYS_INLINE __m512 qm__qk_row(__m512 k0, __m512 k1, __m512 k2, __m512 k3, __m512 k4, __m512 k5, __m512 k6, __m512 k7, const float *q) {
    const __m512 z = _mm512_setzero_ps();
    __m512 s0 = _mm512_fmadd_ps(k0, _mm512_loadu_ps(q), z);
    __m512 s1 = _mm512_fmadd_ps(k1, _mm512_loadu_ps(q + 16), z);
    __m512 s2 = _mm512_fmadd_ps(k2, _mm512_loadu_ps(q + 32), z);
    __m512 s3 = _mm512_fmadd_ps(k3, _mm512_loadu_ps(q + 48), z);
    s0 = _mm512_fmadd_ps(k4, _mm512_loadu_ps(q + 64), s0);
    s1 = _mm512_fmadd_ps(k5, _mm512_loadu_ps(q + 80), s1);
    s2 = _mm512_fmadd_ps(k6, _mm512_loadu_ps(q + 96), s2);
    s3 = _mm512_fmadd_ps(k7, _mm512_loadu_ps(q + 112), s3);
    return _mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3));
}

/* Attention of up to QM__ATT_G (8) q heads that share one kv head, for one token: f16 cache,
   head_dim 128. Every step is the per-head path's (qm__qk_f16x128, qm__vexpf, the sum in key
   order, the f16 weights, qm__pv_f16), with the heads in the lanes of one vector where the
   per-head path had one head at a time: each K and V row is converted once for all of them,
   the 8 dot products share one reduction, and the softmax sums run as 8 independent chains
   instead of one. q: g rows of 128 (rounded to f16), out: g rows of 128; sc: 8 n_kv floats. */
static void qm__attn_group_f16x128(const float *q, int g, const uint16_t *k, const uint16_t *v, size_t stride,
                                   int n_kv, float scale, float *sc, float *out) {
    float qp[QM__ATT_G * 128]; /* q, the unused heads zero */
    const __m512 z = _mm512_setzero_ps();
    __m256 mx = _mm256_set1_ps(-3.4e38f), sum = _mm256_setzero_ps();
    int p, j, i;
    for (i = 0; i < 128 * g; i += 16) /* q rounded to f16, as the per-head path does it */
        _mm512_storeu_ps(qp + i, _mm512_cvtph_ps(_mm512_cvtps_ph(_mm512_loadu_ps(q + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
    memset(qp + 128 * g, 0, sizeof(float) * 128 * (size_t)(QM__ATT_G - g));
    for (p = 0; p < n_kv; p++) {
        const uint16_t *kp = k + stride * QM__CAST(size_t, p);
        const __m512 k0 = _mm512_cvtph_ps(QM__LD256(kp)), k1 = _mm512_cvtph_ps(QM__LD256(kp + 16));
        const __m512 k2 = _mm512_cvtph_ps(QM__LD256(kp + 32)), k3 = _mm512_cvtph_ps(QM__LD256(kp + 48));
        const __m512 k4 = _mm512_cvtph_ps(QM__LD256(kp + 64)), k5 = _mm512_cvtph_ps(QM__LD256(kp + 80));
        const __m512 k6 = _mm512_cvtph_ps(QM__LD256(kp + 96)), k7 = _mm512_cvtph_ps(QM__LD256(kp + 112));
        const __m256 s = _mm256_mul_ps(qm__reduce8_ps(qm__qk_row(k0, k1, k2, k3, k4, k5, k6, k7, qp),
                                                      qm__qk_row(k0, k1, k2, k3, k4, k5, k6, k7, qp + 128),
                                                      qm__qk_row(k0, k1, k2, k3, k4, k5, k6, k7, qp + 256),
                                                      qm__qk_row(k0, k1, k2, k3, k4, k5, k6, k7, qp + 384),
                                                      qm__qk_row(k0, k1, k2, k3, k4, k5, k6, k7, qp + 512),
                                                      qm__qk_row(k0, k1, k2, k3, k4, k5, k6, k7, qp + 640),
                                                      qm__qk_row(k0, k1, k2, k3, k4, k5, k6, k7, qp + 768),
                                                      qm__qk_row(k0, k1, k2, k3, k4, k5, k6, k7, qp + 896)),
                                       _mm256_set1_ps(scale));
        _mm256_storeu_ps(sc + 8 * p, s);
        mx = _mm256_max_ps(s, mx); /* a NaN score leaves the max alone, as "s > mx" does */
    }
    for (p = 0; p < n_kv; p++) {
        const __m256 e = qm__vexp8(_mm256_sub_ps(_mm256_loadu_ps(sc + 8 * p), mx));
        _mm256_storeu_ps(sc + 8 * p, e);
        sum = _mm256_add_ps(sum, e);
    }
    for (p = 0; p < n_kv; p++) /* F16C rounds to nearest even, as qm_fp32_to_fp16 */
        _mm256_storeu_ps(sc + 8 * p, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_div_ps(_mm256_loadu_ps(sc + 8 * p), sum),
                                                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
    /* P.V, 32 elements of every head per pass over the rows: 16 accumulators, named so
       that they stay in registers (as an array GCC keeps them in memory) */
    for (i = 0; i < 128; i += 32) {
        __m512 a0 = z, a1 = z, a2 = z, a3 = z, a4 = z, a5 = z, a6 = z, a7 = z;
        __m512 b0 = z, b1 = z, b2 = z, b3 = z, b4 = z, b5 = z, b6 = z, b7 = z;
        const uint16_t *vp = v + i;
        for (p = 0; p < n_kv; p++, vp += stride) {
            const __m512 v0 = _mm512_cvtph_ps(QM__LD256(vp)), v1 = _mm512_cvtph_ps(QM__LD256(vp + 16));
            const float *w = sc + 8 * p; /* head j's weight of row p */
            a0 = _mm512_fmadd_ps(_mm512_set1_ps(w[0]), v0, a0); b0 = _mm512_fmadd_ps(_mm512_set1_ps(w[0]), v1, b0);
            a1 = _mm512_fmadd_ps(_mm512_set1_ps(w[1]), v0, a1); b1 = _mm512_fmadd_ps(_mm512_set1_ps(w[1]), v1, b1);
            a2 = _mm512_fmadd_ps(_mm512_set1_ps(w[2]), v0, a2); b2 = _mm512_fmadd_ps(_mm512_set1_ps(w[2]), v1, b2);
            a3 = _mm512_fmadd_ps(_mm512_set1_ps(w[3]), v0, a3); b3 = _mm512_fmadd_ps(_mm512_set1_ps(w[3]), v1, b3);
            a4 = _mm512_fmadd_ps(_mm512_set1_ps(w[4]), v0, a4); b4 = _mm512_fmadd_ps(_mm512_set1_ps(w[4]), v1, b4);
            a5 = _mm512_fmadd_ps(_mm512_set1_ps(w[5]), v0, a5); b5 = _mm512_fmadd_ps(_mm512_set1_ps(w[5]), v1, b5);
            a6 = _mm512_fmadd_ps(_mm512_set1_ps(w[6]), v0, a6); b6 = _mm512_fmadd_ps(_mm512_set1_ps(w[6]), v1, b6);
            a7 = _mm512_fmadd_ps(_mm512_set1_ps(w[7]), v0, a7); b7 = _mm512_fmadd_ps(_mm512_set1_ps(w[7]), v1, b7);
        }
        {
            const __m512 acc[2 * QM__ATT_G] = {a0, b0, a1, b1, a2, b2, a3, b3, a4, b4, a5, b5, a6, b6, a7, b7};
            for (j = 0; j < g; j++) {
                _mm512_storeu_ps(out + 128 * j + i, acc[2 * j]);
                _mm512_storeu_ps(out + 128 * j + i + 16, acc[2 * j + 1]);
            }
        }
    }
}
#endif

typedef struct qm__attn_job {
    qm_context *c;
    int layer, T;
} qm__attn_job;

/* Causal GQA attention for every (token, head) pair; q head h reads kv head h / n_gqa.
   With the f16 cache, q is rounded to f16 before Q.K and the softmax weights are rounded to
   f16 before P.V: that is what ggml's attention does (its f16 matmuls convert the f32 operand
   to f16 first), and on the chaotic synthetic models the difference would otherwise show as a
   KLD gap to llama.cpp 20-100x larger than with it. The products stay exact in f32. */
static void qm__attn_task(void *arg, int ith, int nth) {
    qm__attn_job *j = QM__CAST(qm__attn_job *, arg);
    qm_context *c = j->c;
    const qm_hparams *hp = &c->m->hp;
    int hd = hp->head_dim, kvd = hp->n_head_kv * hd, n_gqa = hp->n_head / hp->n_head_kv;
    int total = j->T * hp->n_head, idx, f16 = c->p.kv_type == QM_KV_F16;
    float *sc = c->scores + (size_t)ith * QM__ATT_G * c->n_ctx;
    float qr[4096]; /* head_dim <= 4096, checked at load */
    float scale = 1.0f / qm__sqrtf(QM__CAST(float, hd));
    size_t layer_off = (size_t)j->layer * c->n_ctx * kvd;
    qm__vec_dot_fn dot_f16 = qm__vec_dot_for(QM_TYPE_F16);
#if defined(QM__AVX512)
    if (f16 && hd == 128) { /* Qwen3's head size: the q heads of one kv head together */
        const int nch = (n_gqa + QM__ATT_G - 1) / QM__ATT_G, per_t = hp->n_head_kv * nch;
        for (idx = ith; idx < j->T * per_t; idx += nth) {
            const int t = idx / per_t, kvh = idx % per_t / nch, h0 = kvh * n_gqa + idx % nch * QM__ATT_G;
            const size_t qo = (size_t)t * hp->n_head * hd + (size_t)h0 * hd, ko = layer_off + (size_t)kvh * hd;
            qm__attn_group_f16x128(c->q + qo, QM__MIN(QM__ATT_G, (kvh + 1) * n_gqa - h0), QM__CAST(const uint16_t *, c->k_cache) + ko,
                                   QM__CAST(const uint16_t *, c->v_cache) + ko, (size_t)kvd, c->pos + t + 1, scale, sc, c->att + qo);
        }
        return;
    }
#endif
    for (idx = ith; idx < total; idx += nth) {
        int t = idx / hp->n_head, h = idx % hp->n_head, kvh = h / n_gqa;
        int n_kv = c->pos + t + 1, p, i;
        const float *q = c->q + (size_t)t * hp->n_head * hd + (size_t)h * hd;
        float *out = c->att + (size_t)t * hp->n_head * hd + (size_t)h * hd;
        float mx = -3.4e38f, sum = 0.0f;
        if (f16) {
            for (i = 0; i < hd; i++) qr[i] = qm_fp16_to_fp32(qm_fp32_to_fp16(q[i]));
            q = qr;
        }
        p = 0;
#if defined(QM__AVX512)
        if (f16 && hd == 128) { /* Qwen3's head size: q in registers, no call per key */
            mx = qm__qk_f16x128(QM__CAST(const uint16_t *, c->k_cache) + layer_off + (size_t)kvh * hd, (size_t)kvd, q, n_kv, scale, sc);
            p = n_kv;
        }
#endif
        for (; p < n_kv; p++) {
            size_t off = layer_off + (size_t)p * kvd + (size_t)kvh * hd;
            float s = 0.0f;
            if (f16) {
                s = dot_f16(hd, QM__CAST(const uint16_t *, c->k_cache) + off, q);
            } else {
                s = qm__dot_f32(q, QM__CAST(const float *, c->k_cache) + off, hd);
            }
            s *= scale;
            sc[p] = s;
            if (s > mx) mx = s;
        }
        qm__vexpf(sc, sc, mx, n_kv);
        for (p = 0; p < n_kv; p++) sum += sc[p];
        p = 0;
#if defined(QM__X86)
        if (f16) /* the weights rounded to f16 as below, 8 at a time (F16C rounds to nearest even too) */
            for (; p + 8 <= n_kv; p += 8)
                _mm256_storeu_ps(sc + p, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_div_ps(_mm256_loadu_ps(sc + p), _mm256_set1_ps(sum)),
                                                                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
#endif
        for (; p < n_kv; p++) {
            sc[p] = sc[p] / sum;
            if (f16) sc[p] = qm_fp16_to_fp32(qm_fp32_to_fp16(sc[p]));
        }
        if (f16) {
            qm__pv_f16(out, sc, QM__CAST(const uint16_t *, c->v_cache) + layer_off + (size_t)kvh * hd, (size_t)kvd, n_kv, hd);
        } else {
            for (i = 0; i < hd; i++) out[i] = 0.0f;
            for (p = 0; p < n_kv; p++) {
                const float *vr = QM__CAST(const float *, c->v_cache) + layer_off + (size_t)p * kvd + (size_t)kvh * hd;
                float wgt = sc[p];
                for (i = 0; i < hd; i++) out[i] += wgt * vr[i];
            }
        }
    }
}

/* RMSNorm of T rows, split among the threads */
typedef struct qm__norm_job {
    float *dst;
    const float *src, *w;
    int n;
    float eps;
} qm__norm_job;

static void qm__norm_range(void *arg, int t0, int t1) {
    const qm__norm_job *j = QM__CAST(const qm__norm_job *, arg);
    int t;
    for (t = t0; t < t1; t++) qm__rmsnorm(j->dst + (size_t)t * j->n, j->src + (size_t)t * j->n, j->w, j->n, j->eps);
}

static void qm__rmsnorm_rows(qm_context *c, float *dst, const float *src, const float *w, int T) {
    qm__norm_job j;
    j.dst = dst; j.src = src; j.w = w; j.n = c->m->hp.n_embd; j.eps = c->m->hp.rms_eps;
    qm__pool_for(&c->pool, T, qm__norm_range, &j);
}

/* Router: softmax over all experts, top-k, renormalise (clamped as llama.cpp does). */
static void qm__route(qm_context *c, int T) {
    const qm_hparams *hp = &c->m->hp;
    int t, k, e, K = hp->n_expert_used;
    for (t = 0; t < T; t++) {
        float *pr = c->router + (size_t)t * hp->n_expert;
        int32_t *sel = c->sel + (size_t)t * K;
        float *w = c->sel_w + (size_t)t * K, sum = 0.0f;
        qm__softmax(pr, hp->n_expert);
        for (k = 0; k < K; k++) {
            int best = -1;
            for (e = 0; e < hp->n_expert; e++) {
                int taken = 0, kk;
                for (kk = 0; kk < k; kk++) if (sel[kk] == e) { taken = 1; break; }
                if (!taken && (best < 0 || pr[e] > pr[best])) best = e;
            }
            sel[k] = best;
            w[k] = pr[best];
            sum += w[k];
        }
        if (sum < 6.103515625e-5f) sum = 6.103515625e-5f;
        for (k = 0; k < K; k++) w[k] /= sum;
    }
}

static int qm__moe_cuda(qm_context *c, int il, int T);
static qm_result qm__forward_cuda(qm_context *c, const int32_t *tokens, int T, int out_rows, qm_error *err);

/* the parts of qm__moe between its products, over pairs or tokens (qm__pool_for) */
typedef struct qm__moe_job {
    qm_context *c;
    const qm__layer *L;
} qm__moe_job;

/* pairs i0..i1-1: their token's quantized input row, copied into the pair's place */
static void qm__moe_inputs(void *arg, int i0, int i1) {
    const qm__moe_job *j = QM__CAST(const qm__moe_job *, arg);
    const qm_context *c = j->c;
    const size_t qs = c->exp_q_stride, in_bytes = qm__act_row_bytes(j->L->gate_exps.type, c->m->hp.n_embd);
    int i;
    for (i = i0; i < i1; i++)
        memcpy(QM__CAST(uint8_t *, c->exp_q) + (size_t)i * qs, QM__CAST(const uint8_t *, c->qact) + (size_t)c->exp_tokens[2 * i] * in_bytes, in_bytes);
}

/* pairs i0..i1-1: SwiGLU of gate and up, quantized as the down product's input */
static void qm__moe_mid(void *arg, int i0, int i1) {
    const qm__moe_job *j = QM__CAST(const qm__moe_job *, arg);
    const qm_context *c = j->c;
    const int ff = c->m->hp.n_ff_exp;
    int i;
    qm__swiglu(c->ff_gate + (size_t)i0 * ff, c->ff_up + (size_t)i0 * ff, QM__CAST(size_t, i1 - i0) * QM__CAST(size_t, ff));
    for (i = i0; i < i1; i++)
        qm__quantize_act(j->L->down_exps.type, c->ff_gate + (size_t)i * ff, QM__CAST(uint8_t *, c->exp_q) + (size_t)i * c->exp_q_stride, ff);
}

/* tokens t0..t1-1: the weighted sum of their experts' outputs, in pair order (experts
   ascending), as one loop over all pairs would add them */
static void qm__moe_sum(void *arg, int t0, int t1) {
    const qm__moe_job *j = QM__CAST(const qm__moe_job *, arg);
    const qm_context *c = j->c;
    const int K = c->m->hp.n_expert_used, E = c->m->hp.n_embd;
    int t, k, kk, d;
    for (t = t0; t < t1; t++) {
        const int32_t *po = c->pair_of + (size_t)t * K;
        float *dst = c->moe + (size_t)t * E;
        int32_t last = -1;
        for (d = 0; d < E; d++) dst[d] = 0.0f;
        for (k = 0; k < K; k++) {
            int next = -1; /* the slot with the smallest pair after the last one (K is small) */
            const float *src;
            for (kk = 0; kk < K; kk++)
                if (po[kk] > last && (next < 0 || po[kk] < po[next])) next = kk;
            last = po[next];
            src = c->ff_down + (size_t)last * E;
            for (d = 0; d < E; d++) dst[d] += c->sel_w[t * K + next] * src[d];
        }
    }
}

/* SwiGLU experts for T tokens. The (token, slot) pairs are grouped by expert, so each
   expert's weights are read once per batch however many tokens chose it; then one dispatch
   runs the gate and up products of every selected expert, and one more their down products
   (the threads split expert x rows). */
static void qm__moe(qm_context *c, const qm__layer *L, int il, int T) {
    const qm_hparams *hp = &c->m->hp;
    int K = hp->n_expert_used, ff = hp->n_ff_exp, E = hp->n_embd, e, t, k, i, n = 0, n_items = 0;
    const size_t qs = c->exp_q_stride;
    const int same_act = qm__act_type(L->up_exps.type) == qm__act_type(L->gate_exps.type);
    uint8_t *xq = QM__CAST(uint8_t *, c->exp_q);
    qm__mm_item *items = c->mm_items;
    int32_t *first = c->exp_first;
    qm__moe_job job;
    if (c->m->cuda_moe && il >= c->m->cuda_first_layer && qm__moe_cuda(c, il, T)) return;
    job.c = c; job.L = L;
    /* group the pairs by expert: pair p = (token, slot), first[j] = first pair of used expert j */
    for (e = 0; e < hp->n_expert; e++) {
        const int start = n;
        for (t = 0; t < T; t++)
            for (k = 0; k < K; k++)
                if (c->sel[t * K + k] == e) {
                    c->exp_tokens[2 * n] = t;
                    c->exp_tokens[2 * n + 1] = k;
                    c->pair_of[t * K + k] = n;
                    n++;
                }
        if (n > start) {
            first[n_items / 2] = start;
            items[n_items].w = &L->gate_exps; items[n_items].expert = e;
            items[n_items].qx = xq + (size_t)start * qs; items[n_items].stride = qs; items[n_items].T = n - start;
            items[n_items].y = c->ff_gate + (size_t)start * ff; items[n_items].ldy = ff; items[n_items].dense = 0;
            items[n_items + 1] = items[n_items];
            items[n_items + 1].w = &L->up_exps;
            items[n_items + 1].y = c->ff_up + (size_t)start * ff;
            n_items += 2;
        }
    }
    first[n_items / 2] = n;
    /* the inputs: each token's row quantized once, then copied to its pairs */
    qm__quantize_rows(&c->pool, &L->gate_exps, c->xn, E, c->qact, T);
    qm__pool_for(&c->pool, n, qm__moe_inputs, &job);
    if (same_act) {
        qm__matmul_multi(&c->pool, items, n_items);
    } else {
        /* rare: gate and up differ in activation format; run them one after the other */
        for (i = 0; i < n_items; i += 2) qm__matmul_multi(&c->pool, &items[i], 1);
        for (i = 0; i < n; i++)
            qm__quantize_act(L->up_exps.type, c->xn + (size_t)c->exp_tokens[2 * i] * E, xq + (size_t)i * qs, E);
        for (i = 1; i < n_items; i += 2) qm__matmul_multi(&c->pool, &items[i], 1);
    }
    /* SwiGLU, then the down inputs */
    qm__pool_for(&c->pool, n, qm__moe_mid, &job);
    for (i = 0; i < n_items / 2; i++) {
        qm__mm_item *it = &items[i];
        it->w = &L->down_exps; it->expert = items[2 * i].expert;
        it->qx = xq + (size_t)first[i] * qs; it->stride = qs; it->T = first[i + 1] - first[i];
        it->y = c->ff_down + (size_t)first[i] * E; it->ldy = E;
    }
    qm__matmul_multi(&c->pool, items, n_items / 2);
    /* the weighted sum */
    qm__pool_for(&c->pool, T, qm__moe_sum, &job);
}

static void qm__ffn_dense(qm_context *c, const qm__layer *L, int T) {
    const qm_hparams *hp = &c->m->hp;
    qm__matmul(&c->pool, c->qact, &L->ffn_gate, 0, c->xn, hp->n_embd, c->ff_gate, hp->n_ff, T);
    qm__matmul(&c->pool, c->qact, &L->ffn_up, 0, c->xn, hp->n_embd, c->ff_up, hp->n_ff, T);
    qm__swiglu(c->ff_gate, c->ff_up, QM__CAST(size_t, T) * QM__CAST(size_t, hp->n_ff));
    qm__matmul(&c->pool, c->qact, &L->ffn_down, 0, c->ff_gate, hp->n_ff, c->moe, hp->n_embd, T);
}

/* q, k and v read the same input: quantize it once (per activation format, when the file
   mixes types, e.g. Q4_K_M's Q6_K attn_v) and run the three products in one dispatch. */
static void qm__qkv(qm_context *c, const qm__layer *L, int T) {
    const qm_hparams *hp = &c->m->hp;
    const qm__weight *ws[3];
    float *ys[3];
    int64_t lds[3];
    qm__mm_item it[3];
    uint8_t *q = QM__CAST(uint8_t *, c->qact);
    size_t off = 0, offs[3];
    int i, j;
    ws[0] = &L->wq; ws[1] = &L->wk; ws[2] = &L->wv;
    ys[0] = c->q; ys[1] = c->k; ys[2] = c->v;
    lds[0] = (int64_t)hp->n_head * hp->head_dim; lds[1] = lds[2] = (int64_t)hp->n_head_kv * hp->head_dim;
    for (i = 0; i < 3; i++) {
        for (j = 0; j < i; j++)
            if (qm__act_type(ws[j]->type) == qm__act_type(ws[i]->type)) break;
        if (j < i) offs[i] = offs[j];
        else {
            offs[i] = off;
            qm__quantize_rows(&c->pool, ws[i], c->xn, hp->n_embd, q + off, T);
            off += qm__act_row_bytes(ws[i]->type, hp->n_embd) * (size_t)T;
        }
        it[i].w = ws[i]; it[i].expert = 0; it[i].qx = q + offs[i];
        it[i].stride = qm__act_row_bytes(ws[i]->type, hp->n_embd); it[i].T = T;
        it[i].y = ys[i]; it[i].ldy = lds[i]; it[i].dense = 1;
    }
    qm__matmul_multi(&c->pool, it, 3);
}

/* One forward over T <= n_batch tokens at positions pos..pos+T-1. */
static qm_result qm__forward(qm_context *c, const int32_t *tokens, int T, qm_error *err) {
    const qm_model *m = c->m;
    const qm_hparams *hp = &m->hp;
    int E = hp->n_embd, hd = hp->head_dim, qd = hp->n_head * hd, kvd = hp->n_head_kv * hd, half = hd / 2;
    int il, t, i, f16 = c->p.kv_type == QM_KV_F16;
    int out_rows = c->p.all_logits ? T : 1;

    if (c->cuda_ctx) return qm__forward_cuda(c, tokens, T, out_rows, err);

    /* token embeddings */
    for (t = 0; t < T; t++)
        qm_dequantize_row(m->tok_embd.type, m->tok_embd.data + (size_t)tokens[t] * m->tok_embd.row_bytes,
                          c->x + (size_t)t * E, E);

    for (il = 0; il < hp->n_layer; il++) {
        const qm__layer *L = &m->layers[il];
        qm__attn_job aj;

        /* attention block */
        qm__rmsnorm_rows(c, c->xn, c->x, L->attn_norm, T);
        qm__trace(c, il, "attn_norm", c->xn, T, E);
        qm__qkv(c, L, T);
        for (t = 0; t < T; t++) {
            int pos = c->pos + t;
            const float *cs = c->rope_cos + (size_t)pos * half, *sn = c->rope_sin + (size_t)pos * half;
            size_t off = ((size_t)il * c->n_ctx + (size_t)pos) * kvd;
            qm__norm_rope(c->q + (size_t)t * qd, hp->n_head, hd, L->q_norm, hp->rms_eps, cs, sn);
            qm__norm_rope(c->k + (size_t)t * kvd, hp->n_head_kv, hd, L->k_norm, hp->rms_eps, cs, sn);
            if (f16) {
                uint16_t *kc = QM__CAST(uint16_t *, c->k_cache) + off, *vc = QM__CAST(uint16_t *, c->v_cache) + off;
                for (i = 0; i < kvd; i++) {
                    kc[i] = qm_fp32_to_fp16(c->k[(size_t)t * kvd + i]);
                    vc[i] = qm_fp32_to_fp16(c->v[(size_t)t * kvd + i]);
                }
            } else {
                memcpy(QM__CAST(float *, c->k_cache) + off, c->k + (size_t)t * kvd, sizeof(float) * kvd);
                memcpy(QM__CAST(float *, c->v_cache) + off, c->v + (size_t)t * kvd, sizeof(float) * kvd);
            }
        }
        qm__trace(c, il, "q_normed", c->q, T, qd);
        qm__trace(c, il, "k_normed", c->k, T, kvd);
        aj.c = c; aj.layer = il; aj.T = T;
        qm__pool_run(&c->pool, qm__attn_task, &aj);
        qm__matmul(&c->pool, c->qact, &L->wo, 0, c->att, qd, c->o, E, T);
        qm__trace(c, il, "attn_out", c->o, T, E);
        for (i = 0; i < T * E; i++) c->x[i] += c->o[i];

        /* feed-forward block */
        qm__rmsnorm_rows(c, c->xn, c->x, L->ffn_norm, T);
        qm__trace(c, il, "ffn_norm", c->xn, T, E);
        if (hp->n_expert) {
            qm__matmul(&c->pool, c->qact, &L->router, 0, c->xn, E, c->router, hp->n_expert, T);
            qm__route(c, T);
            if (c->p.trace) {
                qm_trace_event ev;
                memset(&ev, 0, sizeof(ev));
                ev.layer = il; ev.stage = "router"; ev.n_tokens = T; ev.k = hp->n_expert_used;
                ev.experts = c->sel; ev.weights = c->sel_w;
                c->p.trace(c->p.trace_user, &ev);
            }
            qm__moe(c, L, il, T);
        } else {
            qm__ffn_dense(c, L, T);
        }
        qm__trace(c, il, "moe_out", c->moe, T, E);
        for (i = 0; i < T * E; i++) c->x[i] += c->moe[i];
        qm__trace(c, il, "residual", c->x, T, E);
    }

    /* final norm and LM head, for the rows whose logits are wanted */
    {
        const float *src = c->x + (size_t)(T - out_rows) * E;
        qm__rmsnorm_rows(c, c->xn, src, m->output_norm, out_rows);
        qm__trace(c, -1, "result_norm", c->xn, out_rows, E);
        qm__matmul(&c->pool, c->qact, &m->output, 0, c->xn, E, c->logits, hp->n_vocab, out_rows);
        c->n_logits = out_rows;
    }
    c->pos += T;
    return QM_OK;
}

QMDEF qm_result qm_eval(qm_context *c, const int32_t *tokens, int n, qm_error *err) {
    int i, done;
    if (!c || (!tokens && n)) return qm__err(err, QM_ERR_INVALID_ARG, "qm_eval: context or tokens is NULL");
    if (n <= 0) return qm__err(err, QM_ERR_INVALID_ARG, "qm_eval: no tokens to evaluate (n = %d)", n);
    if (c->p.all_logits && n > c->n_batch)
        return qm__err(err, QM_ERR_INVALID_ARG, "qm_eval: with all_logits, at most n_batch = %d tokens per call (got %d)", c->n_batch, n);
    if (n > c->n_ctx - c->pos)
        return qm__err(err, QM_ERR_CONTEXT_FULL, "qm_eval: %d tokens do not fit: the context holds %d of %d tokens",
                       n, c->pos, c->n_ctx);
    for (i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= c->m->hp.n_vocab)
            return qm__err(err, QM_ERR_INVALID_ARG, "qm_eval: token %d at index %d is outside the vocabulary (0..%d)",
                           tokens[i], i, c->m->hp.n_vocab - 1);
    for (done = 0; done < n; done += c->n_batch) {
        qm_result r = qm__forward(c, tokens + done, QM__MIN(c->n_batch, n - done), err);
        if (r != QM_OK) return r;
    }
    return QM_OK;
}

QMDEF const float *qm_logits(const qm_context *c, int i) {
    if (!c || c->n_logits == 0) return NULL;
    if (i < 0) i = c->n_logits - 1;
    if (i >= c->n_logits) return NULL;
    return c->logits + (size_t)i * c->m->hp.n_vocab;
}

/* ===================================================================================== */
/*  5. tokenizer                                                                         */
/* ===================================================================================== */

/* -------------------------------------------------------------------------------------
   Tokenizer: byte-level BPE as Hugging Face `tokenizers` runs Qwen2/Qwen3's tokenizer.json

   Encoding, in HF's order:
     1. added tokens: with QM_TOKENIZE_SPECIAL, every token of type CONTROL or USER_DEFINED
        (Qwen3: the 26 added tokens) is cut out of the raw text verbatim, leftmost match
        first, the longest one at that position (HF matches these "normalized": false
        tokens before normalising, so "<|im_end|>" followed by U+0338 is still found);
     2. NFC of each remaining piece (with the Unicode 9.0 data of HF's normaliser);
     3. the Qwen2 pre-tokenizer regex, by hand (qm__pretok_next), with \p{L}, \p{N} and \s
        (Unicode White_Space) of HF's Oniguruma (Unicode 16.0);
     4. bytes -> GPT-2 byte-level symbols, then BPE with merge ranks, in HF's order: a heap
        of candidate merges ordered by (rank, position), O(n log n) in the word length.
   No BOS/EOS is ever added.

   Invalid UTF-8 in the input (HF never sees it: Rust strings are valid) is not an error:
   each byte that does not start a valid sequence (lone continuation bytes, overlongs,
   surrogates, truncated sequences, > U+10FFFF) is kept as a unit of its own, of class
   "other" (like punctuation) and is left alone by NFC; its byte goes to BPE unchanged, so
   detokenizing gives the same bytes back (which then decode as U+FFFD).

   Decoding: each token's byte-level text is mapped back to bytes (HF's ByteLevel decoder:
   a token with a character outside the byte map keeps its raw text), the bytes are
   concatenated and invalid UTF-8 becomes U+FFFD, one per maximal invalid subpart, as Rust's
   String::from_utf8_lossy does. An id out of range is an error (HF skips it). UNUSED tokens
   (the "[PAD151669]"... padding of a vocab, ids that HF's vocab does not have) decode to
   nothing. QM_DETOK_SKIP_SPECIAL drops the tokens of type CONTROL, the GGUF's notion of
   special. That is HF's skip_special_tokens except for the six FIM/repo tokens
   (<|fim_prefix|> .. <|file_sep|>): HF's tokenizer.json calls them non-special, GGUF
   converters type them CONTROL, so they are dropped here, as llama.cpp drops them.
   <think>, <tool_call> and the like are USER_DEFINED and always kept.

   qm_utf8_stream_push can write up to 3 * n + 3 bytes (each invalid byte is a 3-byte
   U+FFFD), not n + 3 as the API text says.
   ------------------------------------------------------------------------------------- */

/* BEGIN UNICODE TABLES: generated by tools/gen_unicode.mjs, which rewrites this region */
/* unicode_tables.h - generated by tools/gen_unicode.mjs; do not edit.
   Classes (\p{L}, \p{N}, White_Space): node 20.20.2 (Unicode 17.0), pinned to
   HF tokenizers' regex (Unicode 16.0): 4657 code points new in later versions are "other".
   NFC data: UCD 15.0.0 (UnicodeData, CompositionExclusions, DerivedNormalizationProps), limited to
   characters of Unicode <= 9.0 (what HF tokenizers' NFC knows); NFC_QC is UCD 15.0.0's. */

/* Class partition of the code space: entry = start << 2 | class (0 other, 1 letter,
   2 number, 3 white space); the class holds up to the next entry's start. */
static const uint32_t qm__uc_class[1610] = {
    0x0000000,0x0000027,0x0000038,0x0000083,0x0000084,0x00000C2,0x00000E8,0x0000105,
    0x000016C,0x0000185,0x00001EC,0x0000217,0x0000218,0x0000283,0x0000284,0x00002A9,
    0x00002AC,0x00002CA,0x00002D0,0x00002D5,0x00002D8,0x00002E6,0x00002E9,0x00002EC,
    0x00002F2,0x00002FC,0x0000301,0x000035C,0x0000361,0x00003DC,0x00003E1,0x0000B08,
    0x0000B19,0x0000B48,0x0000B81,0x0000B94,0x0000BB1,0x0000BB4,0x0000BB9,0x0000BBC,
    0x0000DC1,0x0000DD4,0x0000DD9,0x0000DE0,0x0000DE9,0x0000DF8,0x0000DFD,0x0000E00,
    0x0000E19,0x0000E1C,0x0000E21,0x0000E2C,0x0000E31,0x0000E34,0x0000E39,0x0000E88,
    0x0000E8D,0x0000FD8,0x0000FDD,0x0001208,0x0001229,0x00014C0,0x00014C5,0x000155C,
    0x0001565,0x0001568,0x0001581,0x0001624,0x0001741,0x00017AC,0x00017BD,0x00017CC,
    0x0001881,0x000192C,0x0001982,0x00019A8,0x00019B9,0x00019C0,0x00019C5,0x0001B50,
    0x0001B55,0x0001B58,0x0001B95,0x0001B9C,0x0001BB9,0x0001BC2,0x0001BE9,0x0001BF4,
    0x0001BFD,0x0001C00,0x0001C41,0x0001C44,0x0001C49,0x0001CC0,0x0001D35,0x0001E98,
    0x0001EC5,0x0001EC8,0x0001F02,0x0001F29,0x0001FAC,0x0001FD1,0x0001FD8,0x0001FE9,
    0x0001FEC,0x0002001,0x0002058,0x0002069,0x000206C,0x0002091,0x0002094,0x00020A1,
    0x00020A4,0x0002101,0x0002164,0x0002181,0x00021AC,0x00021C1,0x0002220,0x0002225,
    0x000223C,0x0002281,0x0002328,0x0002411,0x00024E8,0x00024F5,0x00024F8,0x0002541,
    0x0002544,0x0002561,0x0002588,0x000259A,0x00025C0,0x00025C5,0x0002604,0x0002615,
    0x0002634,0x000263D,0x0002644,0x000264D,0x00026A4,0x00026A9,0x00026C4,0x00026C9,
    0x00026CC,0x00026D9,0x00026E8,0x00026F5,0x00026F8,0x0002739,0x000273C,0x0002771,
    0x0002778,0x000277D,0x0002788,0x000279A,0x00027C1,0x00027C8,0x00027D2,0x00027E8,
    0x00027F1,0x00027F4,0x0002815,0x000282C,0x000283D,0x0002844,0x000284D,0x00028A4,
    0x00028A9,0x00028C4,0x00028C9,0x00028D0,0x00028D5,0x00028DC,0x00028E1,0x00028E8,
    0x0002965,0x0002974,0x0002979,0x000297C,0x000299A,0x00029C0,0x00029C9,0x00029D4,
    0x0002A15,0x0002A38,0x0002A3D,0x0002A48,0x0002A4D,0x0002AA4,0x0002AA9,0x0002AC4,
    0x0002AC9,0x0002AD0,0x0002AD5,0x0002AE8,0x0002AF5,0x0002AF8,0x0002B41,0x0002B44,
    0x0002B81,0x0002B88,0x0002B9A,0x0002BC0,0x0002BE5,0x0002BE8,0x0002C15,0x0002C34,
    0x0002C3D,0x0002C44,0x0002C4D,0x0002CA4,0x0002CA9,0x0002CC4,0x0002CC9,0x0002CD0,
    0x0002CD5,0x0002CE8,0x0002CF5,0x0002CF8,0x0002D71,0x0002D78,0x0002D7D,0x0002D88,
    0x0002D9A,0x0002DC0,0x0002DC5,0x0002DCA,0x0002DE0,0x0002E0D,0x0002E10,0x0002E15,
    0x0002E2C,0x0002E39,0x0002E44,0x0002E49,0x0002E58,0x0002E65,0x0002E6C,0x0002E71,
    0x0002E74,0x0002E79,0x0002E80,0x0002E8D,0x0002E94,0x0002EA1,0x0002EAC,0x0002EB9,
    0x0002EE8,0x0002F41,0x0002F44,0x0002F9A,0x0002FCC,0x0003015,0x0003034,0x0003039,
    0x0003044,0x0003049,0x00030A4,0x00030A9,0x00030E8,0x00030F5,0x00030F8,0x0003161,
    0x000316C,0x0003175,0x0003178,0x0003181,0x0003188,0x000319A,0x00031C0,0x00031E2,
    0x00031FC,0x0003201,0x0003204,0x0003215,0x0003234,0x0003239,0x0003244,0x0003249,
    0x00032A4,0x00032A9,0x00032D0,0x00032D5,0x00032E8,0x00032F5,0x00032F8,0x0003375,
    0x000337C,0x0003381,0x0003388,0x000339A,0x00033C0,0x00033C5,0x00033CC,0x0003411,
    0x0003434,0x0003439,0x0003444,0x0003449,0x00034EC,0x00034F5,0x00034F8,0x0003539,
    0x000353C,0x0003551,0x000355C,0x0003562,0x000357D,0x0003588,0x000359A,0x00035E4,
    0x00035E9,0x0003600,0x0003615,0x000365C,0x0003669,0x00036C8,0x00036CD,0x00036F0,
    0x00036F5,0x00036F8,0x0003701,0x000371C,0x000379A,0x00037C0,0x0003805,0x00038C4,
    0x00038C9,0x00038D0,0x0003901,0x000391C,0x0003942,0x0003968,0x0003A05,0x0003A0C,
    0x0003A11,0x0003A14,0x0003A19,0x0003A2C,0x0003A31,0x0003A90,0x0003A95,0x0003A98,
    0x0003A9D,0x0003AC4,0x0003AC9,0x0003AD0,0x0003AF5,0x0003AF8,0x0003B01,0x0003B14,
    0x0003B19,0x0003B1C,0x0003B42,0x0003B68,0x0003B71,0x0003B80,0x0003C01,0x0003C04,
    0x0003C82,0x0003CD0,0x0003D01,0x0003D20,0x0003D25,0x0003DB4,0x0003E21,0x0003E34,
    0x0004001,0x00040AC,0x00040FD,0x0004102,0x0004128,0x0004141,0x0004158,0x0004169,
    0x0004178,0x0004185,0x0004188,0x0004195,0x000419C,0x00041B9,0x00041C4,0x00041D5,
    0x0004208,0x0004239,0x000423C,0x0004242,0x0004268,0x0004281,0x0004318,0x000431D,
    0x0004320,0x0004335,0x0004338,0x0004341,0x00043EC,0x00043F1,0x0004924,0x0004929,
    0x0004938,0x0004941,0x000495C,0x0004961,0x0004964,0x0004969,0x0004978,0x0004981,
    0x0004A24,0x0004A29,0x0004A38,0x0004A41,0x0004AC4,0x0004AC9,0x0004AD8,0x0004AE1,
    0x0004AFC,0x0004B01,0x0004B04,0x0004B09,0x0004B18,0x0004B21,0x0004B5C,0x0004B61,
    0x0004C44,0x0004C49,0x0004C58,0x0004C61,0x0004D6C,0x0004DA6,0x0004DF4,0x0004E01,
    0x0004E40,0x0004E81,0x0004FD8,0x0004FE1,0x0004FF8,0x0005005,0x00059B4,0x00059BD,
    0x0005A03,0x0005A05,0x0005A6C,0x0005A81,0x0005BAC,0x0005BBA,0x0005BC5,0x0005BE4,
    0x0005C01,0x0005C48,0x0005C7D,0x0005CC8,0x0005D01,0x0005D48,0x0005D81,0x0005DB4,
    0x0005DB9,0x0005DC4,0x0005E01,0x0005ED0,0x0005F5D,0x0005F60,0x0005F71,0x0005F74,
    0x0005F82,0x0005FA8,0x0005FC2,0x0005FE8,0x0006042,0x0006068,0x0006081,0x00061E4,
    0x0006201,0x0006214,0x000621D,0x00062A4,0x00062A9,0x00062AC,0x00062C1,0x00063D8,
    0x0006401,0x000647C,0x000651A,0x0006541,0x00065B8,0x00065C1,0x00065D4,0x0006601,
    0x00066B0,0x00066C1,0x0006728,0x0006742,0x000676C,0x0006801,0x000685C,0x0006881,
    0x0006954,0x0006A02,0x0006A28,0x0006A42,0x0006A68,0x0006A9D,0x0006AA0,0x0006C15,
    0x0006CD0,0x0006D15,0x0006D34,0x0006D42,0x0006D68,0x0006E0D,0x0006E84,0x0006EB9,
    0x0006EC2,0x0006EE9,0x0006F98,0x0007001,0x0007090,0x0007102,0x0007128,0x0007135,
    0x0007142,0x0007169,0x00071F8,0x0007201,0x000722C,0x0007241,0x00072EC,0x00072F5,
    0x0007300,0x00073A5,0x00073B4,0x00073B9,0x00073D0,0x00073D5,0x00073DC,0x00073E9,
    0x00073EC,0x0007401,0x0007700,0x0007801,0x0007C58,0x0007C61,0x0007C78,0x0007C81,
    0x0007D18,0x0007D21,0x0007D38,0x0007D41,0x0007D60,0x0007D65,0x0007D68,0x0007D6D,
    0x0007D70,0x0007D75,0x0007D78,0x0007D7D,0x0007DF8,0x0007E01,0x0007ED4,0x0007ED9,
    0x0007EF4,0x0007EF9,0x0007EFC,0x0007F09,0x0007F14,0x0007F19,0x0007F34,0x0007F41,
    0x0007F50,0x0007F59,0x0007F70,0x0007F81,0x0007FB4,0x0007FC9,0x0007FD4,0x0007FD9,
    0x0007FF4,0x0008003,0x000802C,0x00080A3,0x00080A8,0x00080BF,0x00080C0,0x000817F,
    0x0008180,0x00081C2,0x00081C5,0x00081C8,0x00081D2,0x00081E8,0x00081FD,0x0008202,
    0x0008228,0x0008241,0x0008274,0x0008409,0x000840C,0x000841D,0x0008420,0x0008429,
    0x0008450,0x0008455,0x0008458,0x0008465,0x0008478,0x0008491,0x0008494,0x0008499,
    0x000849C,0x00084A1,0x00084A4,0x00084A9,0x00084B8,0x00084BD,0x00084E8,0x00084F1,
    0x0008500,0x0008515,0x0008528,0x0008539,0x000853C,0x0008542,0x000860D,0x0008616,
    0x0008628,0x0009182,0x0009270,0x00093AA,0x0009400,0x0009DDA,0x0009E50,0x000B001,
    0x000B394,0x000B3AD,0x000B3BC,0x000B3C9,0x000B3D0,0x000B3F6,0x000B3F8,0x000B401,
    0x000B498,0x000B49D,0x000B4A0,0x000B4B5,0x000B4B8,0x000B4C1,0x000B5A0,0x000B5BD,
    0x000B5C0,0x000B601,0x000B65C,0x000B681,0x000B69C,0x000B6A1,0x000B6BC,0x000B6C1,
    0x000B6DC,0x000B6E1,0x000B6FC,0x000B701,0x000B71C,0x000B721,0x000B73C,0x000B741,
    0x000B75C,0x000B761,0x000B77C,0x000B8BD,0x000B8C0,0x000C003,0x000C004,0x000C015,
    0x000C01E,0x000C020,0x000C086,0x000C0A8,0x000C0C5,0x000C0D8,0x000C0E2,0x000C0ED,
    0x000C0F4,0x000C105,0x000C25C,0x000C275,0x000C280,0x000C285,0x000C3EC,0x000C3F1,
    0x000C400,0x000C415,0x000C4C0,0x000C4C5,0x000C63C,0x000C64A,0x000C658,0x000C681,
    0x000C700,0x000C7C1,0x000C800,0x000C882,0x000C8A8,0x000C922,0x000C940,0x000C946,
    0x000C980,0x000CA02,0x000CA28,0x000CAC6,0x000CB00,0x000D001,0x0013700,0x0013801,
    0x0029234,0x0029341,0x00293F8,0x0029401,0x0029834,0x0029841,0x0029882,0x00298A9,
    0x00298B0,0x0029901,0x00299BC,0x00299FD,0x0029A78,0x0029A81,0x0029B9A,0x0029BC0,
    0x0029C5D,0x0029C80,0x0029C89,0x0029E24,0x0029E2D,0x0029F38,0x0029F41,0x0029F48,
    0x0029F4D,0x0029F50,0x0029F55,0x0029F74,0x0029FC9,0x002A008,0x002A00D,0x002A018,
    0x002A01D,0x002A02C,0x002A031,0x002A08C,0x002A0C2,0x002A0D8,0x002A101,0x002A1D0,
    0x002A209,0x002A2D0,0x002A342,0x002A368,0x002A3C9,0x002A3E0,0x002A3ED,0x002A3F0,
    0x002A3F5,0x002A3FC,0x002A402,0x002A429,0x002A498,0x002A4C1,0x002A51C,0x002A581,
    0x002A5F4,0x002A611,0x002A6CC,0x002A73D,0x002A742,0x002A768,0x002A781,0x002A794,
    0x002A799,0x002A7C2,0x002A7E9,0x002A7FC,0x002A801,0x002A8A4,0x002A901,0x002A90C,
    0x002A911,0x002A930,0x002A942,0x002A968,0x002A981,0x002A9DC,0x002A9E9,0x002A9EC,
    0x002A9F9,0x002AAC0,0x002AAC5,0x002AAC8,0x002AAD5,0x002AADC,0x002AAE5,0x002AAF8,
    0x002AB01,0x002AB04,0x002AB09,0x002AB0C,0x002AB6D,0x002AB78,0x002AB81,0x002ABAC,
    0x002ABC9,0x002ABD4,0x002AC05,0x002AC1C,0x002AC25,0x002AC3C,0x002AC45,0x002AC5C,
    0x002AC81,0x002AC9C,0x002ACA1,0x002ACBC,0x002ACC1,0x002AD6C,0x002AD71,0x002ADA8,
    0x002ADC1,0x002AF8C,0x002AFC2,0x002AFE8,0x002B001,0x0035E90,0x0035EC1,0x0035F1C,
    0x0035F2D,0x0035FF0,0x003E401,0x003E9B8,0x003E9C1,0x003EB68,0x003EC01,0x003EC1C,
    0x003EC4D,0x003EC60,0x003EC75,0x003EC78,0x003EC7D,0x003ECA4,0x003ECA9,0x003ECDC,
    0x003ECE1,0x003ECF4,0x003ECF9,0x003ECFC,0x003ED01,0x003ED08,0x003ED0D,0x003ED14,
    0x003ED19,0x003EEC8,0x003EF4D,0x003F4F8,0x003F541,0x003F640,0x003F649,0x003F720,
    0x003F7C1,0x003F7F0,0x003F9C1,0x003F9D4,0x003F9D9,0x003FBF4,0x003FC42,0x003FC68,
    0x003FC85,0x003FCEC,0x003FD05,0x003FD6C,0x003FD99,0x003FEFC,0x003FF09,0x003FF20,
    0x003FF29,0x003FF40,0x003FF49,0x003FF60,0x003FF69,0x003FF74,0x0040001,0x0040030,
    0x0040035,0x004009C,0x00400A1,0x00400EC,0x00400F1,0x00400F8,0x00400FD,0x0040138,
    0x0040141,0x0040178,0x0040201,0x00403EC,0x004041E,0x00404D0,0x0040502,0x00405E4,
    0x004062A,0x0040630,0x0040A01,0x0040A74,0x0040A81,0x0040B44,0x0040B86,0x0040BF0,
    0x0040C01,0x0040C82,0x0040C90,0x0040CB5,0x0040D06,0x0040D09,0x0040D2A,0x0040D2C,
    0x0040D41,0x0040DD8,0x0040E01,0x0040E78,0x0040E81,0x0040F10,0x0040F21,0x0040F40,
    0x0040F46,0x0040F58,0x0041001,0x0041278,0x0041282,0x00412A8,0x00412C1,0x0041350,
    0x0041361,0x00413F0,0x0041401,0x00414A0,0x00414C1,0x0041590,0x00415C1,0x00415EC,
    0x00415F1,0x004162C,0x0041631,0x004164C,0x0041651,0x0041658,0x004165D,0x0041688,
    0x004168D,0x00416C8,0x00416CD,0x00416E8,0x00416ED,0x00416F4,0x0041701,0x00417D0,
    0x0041801,0x0041CDC,0x0041D01,0x0041D58,0x0041D81,0x0041DA0,0x0041E01,0x0041E18,
    0x0041E1D,0x0041EC4,0x0041EC9,0x0041EEC,0x0042001,0x0042018,0x0042021,0x0042024,
    0x0042029,0x00420D8,0x00420DD,0x00420E4,0x00420F1,0x00420F4,0x00420FD,0x0042158,
    0x0042162,0x0042181,0x00421DC,0x00421E6,0x0042201,0x004227C,0x004229E,0x00422C0,
    0x0042381,0x00423CC,0x00423D1,0x00423D8,0x00423EE,0x0042401,0x004245A,0x0042470,
    0x0042481,0x00424E8,0x0042601,0x00426E0,0x00426F2,0x00426F9,0x0042702,0x0042740,
    0x004274A,0x0042801,0x0042804,0x0042841,0x0042850,0x0042855,0x0042860,0x0042865,
    0x00428D8,0x0042902,0x0042924,0x0042981,0x00429F6,0x00429FC,0x0042A01,0x0042A76,
    0x0042A80,0x0042B01,0x0042B20,0x0042B25,0x0042B94,0x0042BAE,0x0042BC0,0x0042C01,
    0x0042CD8,0x0042D01,0x0042D58,0x0042D62,0x0042D81,0x0042DCC,0x0042DE2,0x0042E01,
    0x0042E48,0x0042EA6,0x0042EC0,0x0043001,0x0043124,0x0043201,0x00432CC,0x0043301,
    0x00433CC,0x00433EA,0x0043401,0x0043490,0x00434C2,0x00434E8,0x0043502,0x0043529,
    0x0043598,0x00435BD,0x0043618,0x0043982,0x00439FC,0x0043A01,0x0043AA8,0x0043AC1,
    0x0043AC8,0x0043B09,0x0043B14,0x0043C01,0x0043C76,0x0043C9D,0x0043CA0,0x0043CC1,
    0x0043D18,0x0043D46,0x0043D54,0x0043DC1,0x0043E08,0x0043EC1,0x0043F16,0x0043F30,
    0x0043F81,0x0043FDC,0x004400D,0x00440E0,0x004414A,0x00441C0,0x00441C5,0x00441CC,
    0x00441D5,0x00441D8,0x004420D,0x00442C0,0x0044341,0x00443A4,0x00443C2,0x00443E8,
    0x004440D,0x004449C,0x00444DA,0x0044500,0x0044511,0x0044514,0x004451D,0x0044520,
    0x0044541,0x00445CC,0x00445D9,0x00445DC,0x004460D,0x00446CC,0x0044705,0x0044714,
    0x0044742,0x0044769,0x004476C,0x0044771,0x0044774,0x0044786,0x00447D4,0x0044801,
    0x0044848,0x004484D,0x00448B0,0x00448FD,0x0044904,0x0044A01,0x0044A1C,0x0044A21,
    0x0044A24,0x0044A29,0x0044A38,0x0044A3D,0x0044A78,0x0044A7D,0x0044AA4,0x0044AC1,
    0x0044B7C,0x0044BC2,0x0044BE8,0x0044C15,0x0044C34,0x0044C3D,0x0044C44,0x0044C4D,
    0x0044CA4,0x0044CA9,0x0044CC4,0x0044CC9,0x0044CD0,0x0044CD5,0x0044CE8,0x0044CF5,
    0x0044CF8,0x0044D41,0x0044D44,0x0044D75,0x0044D88,0x0044E01,0x0044E28,0x0044E2D,
    0x0044E30,0x0044E39,0x0044E3C,0x0044E41,0x0044ED8,0x0044EDD,0x0044EE0,0x0044F45,
    0x0044F48,0x0044F4D,0x0044F50,0x0045001,0x00450D4,0x004511D,0x004512C,0x0045142,
    0x0045168,0x004517D,0x0045188,0x0045201,0x00452C0,0x0045311,0x0045318,0x004531D,
    0x0045320,0x0045342,0x0045368,0x0045601,0x00456BC,0x0045761,0x0045770,0x0045801,
    0x00458C0,0x0045911,0x0045914,0x0045942,0x0045968,0x0045A01,0x0045AAC,0x0045AE1,
    0x0045AE4,0x0045B02,0x0045B28,0x0045B42,0x0045B90,0x0045C01,0x0045C6C,0x0045CC2,
    0x0045CF0,0x0045D01,0x0045D1C,0x0046001,0x00460B0,0x0046281,0x0046382,0x00463CC,
    0x00463FD,0x004641C,0x0046425,0x0046428,0x0046431,0x0046450,0x0046455,0x004645C,
    0x0046461,0x00464C0,0x00464FD,0x0046500,0x0046505,0x0046508,0x0046542,0x0046568,
    0x0046681,0x00466A0,0x00466A9,0x0046744,0x0046785,0x0046788,0x004678D,0x0046790,
    0x0046801,0x0046804,0x004682D,0x00468CC,0x00468E9,0x00468EC,0x0046941,0x0046944,
    0x0046971,0x0046A28,0x0046A75,0x0046A78,0x0046AC1,0x0046BE4,0x0046F01,0x0046F84,
    0x0046FC2,0x0046FE8,0x0047001,0x0047024,0x0047029,0x00470BC,0x0047101,0x0047104,
    0x0047142,0x00471B4,0x00471C9,0x0047240,0x0047401,0x004741C,0x0047421,0x0047428,
    0x004742D,0x00474C4,0x0047519,0x004751C,0x0047542,0x0047568,0x0047581,0x0047598,
    0x004759D,0x00475A4,0x00475A9,0x0047628,0x0047661,0x0047664,0x0047682,0x00476A8,
    0x0047B81,0x0047BCC,0x0047C09,0x0047C0C,0x0047C11,0x0047C44,0x0047C49,0x0047CD0,
    0x0047D42,0x0047D68,0x0047EC1,0x0047EC4,0x0047F02,0x0047F54,0x0048001,0x0048E68,
    0x0049002,0x00491BC,0x0049201,0x0049510,0x004BE41,0x004BFC4,0x004C001,0x004D0C0,
    0x004D105,0x004D11C,0x004D181,0x0050FEC,0x0051001,0x005191C,0x0058401,0x0058478,
    0x00584C2,0x00584E8,0x005A001,0x005A8E4,0x005A901,0x005A97C,0x005A982,0x005A9A8,
    0x005A9C1,0x005AAFC,0x005AB02,0x005AB28,0x005AB41,0x005ABB8,0x005AC01,0x005ACC0,
    0x005AD01,0x005AD10,0x005AD42,0x005AD68,0x005AD6E,0x005AD88,0x005AD8D,0x005ADE0,
    0x005ADF5,0x005AE40,0x005B501,0x005B5B4,0x005B5C2,0x005B5E8,0x005B901,0x005BA02,
    0x005BA5C,0x005BC01,0x005BD2C,0x005BD41,0x005BD44,0x005BE4D,0x005BE80,0x005BF81,
    0x005BF88,0x005BF8D,0x005BF90,0x005C001,0x0061FE0,0x0062001,0x0063358,0x00633FD,
    0x0063424,0x006BFC1,0x006BFD0,0x006BFD5,0x006BFF0,0x006BFF5,0x006BFFC,0x006C001,
    0x006C48C,0x006C4C9,0x006C4CC,0x006C541,0x006C54C,0x006C555,0x006C558,0x006C591,
    0x006C5A0,0x006C5C1,0x006CBF0,0x006F001,0x006F1AC,0x006F1C1,0x006F1F4,0x006F201,
    0x006F224,0x006F241,0x006F268,0x00733C2,0x00733E8,0x0074B02,0x0074B50,0x0074B82,
    0x0074BD0,0x0074D82,0x0074DE4,0x0075001,0x0075154,0x0075159,0x0075274,0x0075279,
    0x0075280,0x0075289,0x007528C,0x0075295,0x007529C,0x00752A5,0x00752B4,0x00752B9,
    0x00752E8,0x00752ED,0x00752F0,0x00752F5,0x0075310,0x0075315,0x0075418,0x007541D,
    0x007542C,0x0075435,0x0075454,0x0075459,0x0075474,0x0075479,0x00754E8,0x00754ED,
    0x00754FC,0x0075501,0x0075514,0x0075519,0x007551C,0x0075529,0x0075544,0x0075549,
    0x0075A98,0x0075AA1,0x0075B04,0x0075B09,0x0075B6C,0x0075B71,0x0075BEC,0x0075BF1,
    0x0075C54,0x0075C59,0x0075CD4,0x0075CD9,0x0075D3C,0x0075D41,0x0075DBC,0x0075DC1,
    0x0075E24,0x0075E29,0x0075EA4,0x0075EA9,0x0075F0C,0x0075F11,0x0075F30,0x0075F3A,
    0x0076000,0x0077C01,0x0077C7C,0x0077C95,0x0077CAC,0x00780C1,0x00781B8,0x0078401,
    0x00784B4,0x00784DD,0x00784F8,0x0078502,0x0078528,0x0078539,0x007853C,0x0078A41,
    0x0078AB8,0x0078B01,0x0078BB0,0x0078BC2,0x0078BE8,0x0079341,0x00793B0,0x00793C2,
    0x00793E8,0x0079741,0x00797B8,0x00797C1,0x00797C6,0x00797EC,0x0079F81,0x0079F9C,
    0x0079FA1,0x0079FB0,0x0079FB5,0x0079FBC,0x0079FC1,0x0079FFC,0x007A001,0x007A314,
    0x007A31E,0x007A340,0x007A401,0x007A510,0x007A52D,0x007A530,0x007A542,0x007A568,
    0x007B1C6,0x007B2B0,0x007B2B6,0x007B2C0,0x007B2C6,0x007B2D4,0x007B406,0x007B4B8,
    0x007B4BE,0x007B4F8,0x007B801,0x007B810,0x007B815,0x007B880,0x007B885,0x007B88C,
    0x007B891,0x007B894,0x007B89D,0x007B8A0,0x007B8A5,0x007B8CC,0x007B8D1,0x007B8E0,
    0x007B8E5,0x007B8E8,0x007B8ED,0x007B8F0,0x007B909,0x007B90C,0x007B91D,0x007B920,
    0x007B925,0x007B928,0x007B92D,0x007B930,0x007B935,0x007B940,0x007B945,0x007B94C,
    0x007B951,0x007B954,0x007B95D,0x007B960,0x007B965,0x007B968,0x007B96D,0x007B970,
    0x007B975,0x007B978,0x007B97D,0x007B980,0x007B985,0x007B98C,0x007B991,0x007B994,
    0x007B99D,0x007B9AC,0x007B9B1,0x007B9CC,0x007B9D1,0x007B9E0,0x007B9E5,0x007B9F4,
    0x007B9F9,0x007B9FC,0x007BA01,0x007BA28,0x007BA2D,0x007BA70,0x007BA85,0x007BA90,
    0x007BA95,0x007BAA8,0x007BAAD,0x007BAF0,0x007C402,0x007C434,0x007EFC2,0x007EFE8,
    0x0080001,0x00A9B80,0x00A9C01,0x00ADCE8,0x00ADD01,0x00AE078,0x00AE081,0x00B3A88,
    0x00B3AC1,0x00BAF84,0x00BAFC1,0x00BB978,0x00BE001,0x00BE878,0x00C0001,0x00C4D2C,
    0x00C4D41,0x00C8EC0,
};

/* NFC partition: entry = start << 9 | (NFC_QC is No or Maybe) << 8 | canonical combining class. */
static const uint32_t qm__uc_nfc[692] = {
    0x00000000,0x000601E6,0x00060AE6,0x00060DE6,0x00061AE6,0x00061FE6,0x000620E6,0x000623E6,
    0x000624E6,0x000627E6,0x00062AE8,0x00062CDC,0x000634E8,0x000637D8,0x000638DC,0x000642CA,
    0x000647DC,0x00064FCA,0x000652DC,0x00065BDC,0x00065EDC,0x000661DC,0x000664DC,0x00066801,
    0x00067101,0x000672DC,0x00067AE6,0x000681E6,0x00068BF0,0x00068CE6,0x00068EDC,0x000694E6,
    0x00069ADC,0x00069E00,0x0006A0E6,0x0006A6DC,0x0006AEE6,0x0006B0E8,0x0006B2DC,0x0006B6E6,
    0x0006B8E9,0x0006BAEA,0x0006BEE9,0x0006C0EA,0x0006C4E9,0x0006C6E6,0x0006E000,0x0006E900,
    0x0006EA00,0x0006FD00,0x0006FE00,0x00070F00,0x00071000,0x000906E6,0x00091000,0x000B22DC,
    0x000B24E6,0x000B2CDC,0x000B2EE6,0x000B34DE,0x000B36DC,0x000B38E6,0x000B44DC,0x000B50E6,
    0x000B54DC,0x000B56E6,0x000B5ADE,0x000B5CE4,0x000B5EE6,0x000B600A,0x000B620B,0x000B640C,
    0x000B660D,0x000B680E,0x000B6A0F,0x000B6C10,0x000B6E11,0x000B7012,0x000B7213,0x000B7614,
    0x000B7815,0x000B7A16,0x000B7C00,0x000B7E17,0x000B8000,0x000B8218,0x000B8419,0x000B8600,
    0x000B88E6,0x000B8ADC,0x000B8C00,0x000B8E12,0x000B9000,0x000C20E6,0x000C301E,0x000C321F,
    0x000C3420,0x000C3600,0x000C961B,0x000C981C,0x000C9A1D,0x000C9C1E,0x000C9E1F,0x000CA020,
    0x000CA221,0x000CA422,0x000CA7E6,0x000CABDC,0x000CACDC,0x000CAEE6,0x000CB8DC,0x000CBAE6,
    0x000CBEDC,0x000CC000,0x000CE023,0x000CE200,0x000DACE6,0x000DBA00,0x000DBEE6,0x000DC6DC,
    0x000DC8E6,0x000DCA00,0x000DCEE6,0x000DD200,0x000DD4DC,0x000DD6E6,0x000DDADC,0x000DDC00,
    0x000E2224,0x000E2400,0x000E60E6,0x000E62DC,0x000E64E6,0x000E68DC,0x000E6AE6,0x000E6EDC,
    0x000E74E6,0x000E76DC,0x000E7AE6,0x000E7CDC,0x000E7EE6,0x000E84DC,0x000E86E6,0x000E88DC,
    0x000E8AE6,0x000E8CDC,0x000E8EE6,0x000E90DC,0x000E92E6,0x000E9600,0x000FD6E6,0x000FE4DC,
    0x000FE6E6,0x000FE800,0x00102CE6,0x00103400,0x001036E6,0x00104800,0x00104AE6,0x00105000,
    0x001052E6,0x00105C00,0x0010B2DC,0x0010B800,0x0011A8E6,0x0011C400,0x0011C6DC,0x0011C8E6,
    0x0011CCDC,0x0011CEE6,0x0011D2DC,0x0011D4E6,0x0011DADC,0x0011E01B,0x0011E21C,0x0011E41D,
    0x0011E6E6,0x0011ECDC,0x0011EEE6,0x0011F2DC,0x0011F6E6,0x00120000,0x00127907,0x00127A00,
    0x00129A09,0x00129C00,0x0012A2E6,0x0012A4DC,0x0012A6E6,0x0012AA00,0x0012B100,0x0012C000,
    0x00137807,0x00137A00,0x00137D00,0x00137E00,0x00139A09,0x00139C00,0x0013AF00,0x0013B000,
    0x0013B900,0x0013BC00,0x0013BF00,0x0013C000,0x00146700,0x00146800,0x00146D00,0x00146E00,
    0x00147807,0x00147A00,0x00149A09,0x00149C00,0x0014B300,0x0014B800,0x0014BD00,0x0014BE00,
    0x00157807,0x00157A00,0x00159A09,0x00159C00,0x00167807,0x00167A00,0x00167D00,0x00167E00,
    0x00169A09,0x00169C00,0x0016AD00,0x0016B000,0x0016B900,0x0016BC00,0x00177D00,0x00177E00,
    0x00179A09,0x00179C00,0x0017AF00,0x0017B000,0x00189A09,0x00189C00,0x0018AA54,0x0018AD5B,
    0x0018AE00,0x00197807,0x00197A00,0x00198500,0x00198600,0x00199A09,0x00199C00,0x0019AB00,
    0x0019AE00,0x001A7D00,0x001A7E00,0x001A9A09,0x001A9C00,0x001AAF00,0x001AB000,0x001B9509,
    0x001B9600,0x001B9F00,0x001BA000,0x001BBF00,0x001BC000,0x001C7067,0x001C7409,0x001C7600,
    0x001C906B,0x001C9800,0x001D7076,0x001D7400,0x001D907A,0x001D9800,0x001E30DC,0x001E3400,
    0x001E6ADC,0x001E6C00,0x001E6EDC,0x001E7000,0x001E72D8,0x001E7400,0x001E8700,0x001E8800,
    0x001E9B00,0x001E9C00,0x001EA500,0x001EA600,0x001EAF00,0x001EB000,0x001EB900,0x001EBA00,
    0x001ED300,0x001ED400,0x001EE281,0x001EE482,0x001EE700,0x001EE884,0x001EEB00,0x001EEE00,
    0x001EF100,0x001EF200,0x001EF482,0x001EFC00,0x001F0082,0x001F0300,0x001F04E6,0x001F0809,
    0x001F0A00,0x001F0CE6,0x001F1000,0x001F2700,0x001F2800,0x001F3B00,0x001F3C00,0x001F4500,
    0x001F4600,0x001F4F00,0x001F5000,0x001F5900,0x001F5A00,0x001F7300,0x001F7400,0x001F8CDC,
    0x001F8E00,0x00205D00,0x00205E00,0x00206E07,0x00207000,0x00207209,0x00207600,0x00211ADC,
    0x00211C00,0x0022C300,0x0022EC00,0x00235100,0x00238600,0x0026BAE6,0x0026C000,0x002E2809,
    0x002E2A00,0x002E6809,0x002E6A00,0x002FA409,0x002FA600,0x002FBAE6,0x002FBC00,0x003152E4,
    0x00315400,0x003272DE,0x003274E6,0x003276DC,0x00327800,0x00342EE6,0x003430DC,0x00343200,
    0x0034C009,0x0034C200,0x0034EAE6,0x0034FA00,0x0034FEDC,0x00350000,0x003560E6,0x00356ADC,
    0x003576E6,0x00357ADC,0x00357C00,0x00366807,0x00366B00,0x00366C00,0x00368809,0x00368A00,
    0x0036D6E6,0x0036D8DC,0x0036DAE6,0x0036E800,0x00375409,0x00375800,0x0037CC07,0x0037CE00,
    0x0037E409,0x0037E800,0x00386E07,0x00387000,0x0039A0E6,0x0039A600,0x0039A801,0x0039AADC,
    0x0039B4E6,0x0039B8DC,0x0039C0E6,0x0039C200,0x0039C401,0x0039D200,0x0039DADC,0x0039DC00,
    0x0039E8E6,0x0039EA00,0x0039F0E6,0x0039F400,0x003B80E6,0x003B84DC,0x003B86E6,0x003B94DC,
    0x003B96E6,0x003B9AEA,0x003B9CD6,0x003B9EDC,0x003BA0CA,0x003BA2E6,0x003BEC00,0x003BF6E6,
    0x003BF8E9,0x003BFADC,0x003BFCE6,0x003BFEDC,0x003C0000,0x003EE300,0x003EE400,0x003EE700,
    0x003EE800,0x003EEB00,0x003EEC00,0x003EEF00,0x003EF000,0x003EF300,0x003EF400,0x003EF700,
    0x003EF800,0x003EFB00,0x003EFC00,0x003F7700,0x003F7800,0x003F7D00,0x003F7E00,0x003F9300,
    0x003F9400,0x003F9700,0x003F9800,0x003FA700,0x003FA800,0x003FB700,0x003FB800,0x003FC700,
    0x003FC800,0x003FD700,0x003FD800,0x003FDD00,0x003FE000,0x003FF300,0x003FF400,0x003FF700,
    0x003FF800,0x003FFB00,0x003FFC00,0x00400100,0x00400400,0x0041A0E6,0x0041A401,0x0041A8E6,
    0x0041B001,0x0041B6E6,0x0041BA00,0x0041C2E6,0x0041C400,0x0041CA01,0x0041CEE6,0x0041D0DC,
    0x0041D2E6,0x0041D401,0x0041D8DC,0x0041E0E6,0x0041E200,0x00424D00,0x00424E00,0x00425500,
    0x00425800,0x00465300,0x00465600,0x0055B900,0x0055BA00,0x0059DEE6,0x0059E400,0x005AFE09,
    0x005B0000,0x005BC0E6,0x005C0000,0x006054DA,0x006056E4,0x006058E8,0x00605ADE,0x00605CE0,
    0x00606000,0x00613308,0x00613600,0x014CDEE6,0x014CE000,0x014CE8E6,0x014CFC00,0x014D3CE6,
    0x014D4000,0x014DE0E6,0x014DE400,0x01500C09,0x01500E00,0x01518809,0x01518A00,0x0151C0E6,
    0x0151E400,0x015256DC,0x01525C00,0x0152A609,0x0152A800,0x01536607,0x01536800,0x01538009,
    0x01538200,0x015560E6,0x01556200,0x015564E6,0x015568DC,0x01556A00,0x01556EE6,0x01557200,
    0x01557CE6,0x01558000,0x015582E6,0x01558400,0x0155EC09,0x0155EE00,0x0157DA09,0x0157DC00,
    0x01F20100,0x01F41C00,0x01F42100,0x01F42200,0x01F42500,0x01F42600,0x01F42B00,0x01F43E00,
    0x01F44100,0x01F44200,0x01F44500,0x01F44600,0x01F44B00,0x01F44E00,0x01F45500,0x01F4DC00,
    0x01F4E100,0x01F5B400,0x01F63B00,0x01F63C1A,0x01F63F00,0x01F64000,0x01F65500,0x01F66E00,
    0x01F67100,0x01F67A00,0x01F67D00,0x01F67E00,0x01F68100,0x01F68400,0x01F68700,0x01F68A00,
    0x01F68D00,0x01F69E00,0x01FC40E6,0x01FC4EDC,0x01FC5CE6,0x01FC6000,0x0203FADC,0x0203FC00,
    0x0205C0DC,0x0205C200,0x0206ECE6,0x0206F600,0x02141ADC,0x02141C00,0x02141EE6,0x02142000,
    0x021470E6,0x02147201,0x021474DC,0x02147600,0x02147E09,0x02148000,0x0215CAE6,0x0215CCDC,
    0x0215CE00,0x02208C09,0x02208E00,0x0220FE09,0x02210000,0x02217209,0x02217507,0x02217600,
    0x022200E6,0x02220600,0x02224F00,0x02225000,0x02226609,0x02226A00,0x0222E607,0x0222E800,
    0x02238009,0x02238200,0x02239407,0x02239600,0x02246A09,0x02246C07,0x02246E00,0x0225D207,
    0x0225D409,0x0225D600,0x02267807,0x02267A00,0x02267D00,0x02267E00,0x02269A09,0x02269C00,
    0x0226AF00,0x0226B000,0x0226CCE6,0x0226DA00,0x0226E0E6,0x0226EA00,0x02288409,0x02288600,
    0x02288C07,0x02288E00,0x02296100,0x02296200,0x02297500,0x02297600,0x02297B00,0x02297C00,
    0x02298409,0x02298607,0x02298800,0x022B5F00,0x022B6000,0x022B7E09,0x022B8007,0x022B8200,
    0x022C7E09,0x022C8000,0x022D6C09,0x022D6E07,0x022D7000,0x022E5609,0x022E5800,0x02326100,
    0x02326200,0x02387E09,0x02388000,0x02D5E001,0x02D5EA00,0x02D660E6,0x02D66E00,0x03793C01,
    0x03793E00,0x03A2BD00,0x03A2CAD8,0x03A2CE01,0x03A2D400,0x03A2DAE2,0x03A2DCD8,0x03A2E600,
    0x03A2F6DC,0x03A30600,0x03A30AE6,0x03A314DC,0x03A31800,0x03A354E6,0x03A35C00,0x03A37700,
    0x03A38200,0x03A484E6,0x03A48A00,0x03C000E6,0x03C00E00,0x03C010E6,0x03C03200,0x03C036E6,
    0x03C04400,0x03C046E6,0x03C04A00,0x03C04CE6,0x03C05600,0x03D1A0DC,0x03D1AE00,0x03D288E6,
    0x03D29407,0x03D29600,0x05F00100,0x05F43C00,
};

/* Canonical decompositions (one level; apply recursively), Hangul excluded, sorted:
   entry = composes << 63 | cp << 42 | first << 21 | second (0 when the mapping is one code
   point); composes: cp is a primary composite (NFC composes first + second back to cp). */
static const uint64_t qm__uc_decomp[2060] = {
    0x8003000008200300,0x8003040008200301,0x8003080008200302,0x80030C0008200303,
    0x8003100008200308,0x800314000820030A,0x80031C0008600327,0x8003200008A00300,
    0x8003240008A00301,0x8003280008A00302,0x80032C0008A00308,0x8003300009200300,
    0x8003340009200301,0x8003380009200302,0x80033C0009200308,0x8003440009C00303,
    0x8003480009E00300,0x80034C0009E00301,0x8003500009E00302,0x8003540009E00303,
    0x8003580009E00308,0x800364000AA00300,0x800368000AA00301,0x80036C000AA00302,
    0x800370000AA00308,0x800374000B200301,0x800380000C200300,0x800384000C200301,
    0x800388000C200302,0x80038C000C200303,0x800390000C200308,0x800394000C20030A,
    0x80039C000C600327,0x8003A0000CA00300,0x8003A4000CA00301,0x8003A8000CA00302,
    0x8003AC000CA00308,0x8003B0000D200300,0x8003B4000D200301,0x8003B8000D200302,
    0x8003BC000D200308,0x8003C4000DC00303,0x8003C8000DE00300,0x8003CC000DE00301,
    0x8003D0000DE00302,0x8003D4000DE00303,0x8003D8000DE00308,0x8003E4000EA00300,
    0x8003E8000EA00301,0x8003EC000EA00302,0x8003F0000EA00308,0x8003F4000F200301,
    0x8003FC000F200308,0x8004000008200304,0x800404000C200304,0x8004080008200306,
    0x80040C000C200306,0x8004100008200328,0x800414000C200328,0x8004180008600301,
    0x80041C000C600301,0x8004200008600302,0x800424000C600302,0x8004280008600307,
    0x80042C000C600307,0x800430000860030C,0x800434000C60030C,0x800438000880030C,
    0x80043C000C80030C,0x8004480008A00304,0x80044C000CA00304,0x8004500008A00306,
    0x800454000CA00306,0x8004580008A00307,0x80045C000CA00307,0x8004600008A00328,
    0x800464000CA00328,0x8004680008A0030C,0x80046C000CA0030C,0x8004700008E00302,
    0x800474000CE00302,0x8004780008E00306,0x80047C000CE00306,0x8004800008E00307,
    0x800484000CE00307,0x8004880008E00327,0x80048C000CE00327,0x8004900009000302,
    0x800494000D000302,0x8004A00009200303,0x8004A4000D200303,0x8004A80009200304,
    0x8004AC000D200304,0x8004B00009200306,0x8004B4000D200306,0x8004B80009200328,
    0x8004BC000D200328,0x8004C00009200307,0x8004D00009400302,0x8004D4000D400302,
    0x8004D80009600327,0x8004DC000D600327,0x8004E40009800301,0x8004E8000D800301,
    0x8004EC0009800327,0x8004F0000D800327,0x8004F4000980030C,0x8004F8000D80030C,
    0x80050C0009C00301,0x800510000DC00301,0x8005140009C00327,0x800518000DC00327,
    0x80051C0009C0030C,0x800520000DC0030C,0x8005300009E00304,0x800534000DE00304,
    0x8005380009E00306,0x80053C000DE00306,0x8005400009E0030B,0x800544000DE0030B,
    0x800550000A400301,0x800554000E400301,0x800558000A400327,0x80055C000E400327,
    0x800560000A40030C,0x800564000E40030C,0x800568000A600301,0x80056C000E600301,
    0x800570000A600302,0x800574000E600302,0x800578000A600327,0x80057C000E600327,
    0x800580000A60030C,0x800584000E60030C,0x800588000A800327,0x80058C000E800327,
    0x800590000A80030C,0x800594000E80030C,0x8005A0000AA00303,0x8005A4000EA00303,
    0x8005A8000AA00304,0x8005AC000EA00304,0x8005B0000AA00306,0x8005B4000EA00306,
    0x8005B8000AA0030A,0x8005BC000EA0030A,0x8005C0000AA0030B,0x8005C4000EA0030B,
    0x8005C8000AA00328,0x8005CC000EA00328,0x8005D0000AE00302,0x8005D4000EE00302,
    0x8005D8000B200302,0x8005DC000F200302,0x8005E0000B200308,0x8005E4000B400301,
    0x8005E8000F400301,0x8005EC000B400307,0x8005F0000F400307,0x8005F4000B40030C,
    0x8005F8000F40030C,0x8006800009E0031B,0x800684000DE0031B,0x8006BC000AA0031B,
    0x8006C0000EA0031B,0x800734000820030C,0x800738000C20030C,0x80073C000920030C,
    0x800740000D20030C,0x8007440009E0030C,0x800748000DE0030C,0x80074C000AA0030C,
    0x800750000EA0030C,0x800754001B800304,0x800758001F800304,0x80075C001B800301,
    0x800760001F800301,0x800764001B80030C,0x800768001F80030C,0x80076C001B800300,
    0x800770001F800300,0x8007780018800304,0x80077C001C800304,0x8007800044C00304,
    0x8007840044E00304,0x8007880018C00304,0x80078C001CC00304,0x8007980008E0030C,
    0x80079C000CE0030C,0x8007A0000960030C,0x8007A4000D60030C,0x8007A80009E00328,
    0x8007AC000DE00328,0x8007B0003D400304,0x8007B4003D600304,0x8007B80036E0030C,
    0x8007BC005240030C,0x8007C0000D40030C,0x8007D00008E00301,0x8007D4000CE00301,
    0x8007E00009C00300,0x8007E4000DC00300,0x8007E80018A00301,0x8007EC001CA00301,
    0x8007F00018C00301,0x8007F4001CC00301,0x8007F8001B000301,0x8007FC001F000301,
    0x800800000820030F,0x800804000C20030F,0x8008080008200311,0x80080C000C200311,
    0x8008100008A0030F,0x800814000CA0030F,0x8008180008A00311,0x80081C000CA00311,
    0x800820000920030F,0x800824000D20030F,0x8008280009200311,0x80082C000D200311,
    0x8008300009E0030F,0x800834000DE0030F,0x8008380009E00311,0x80083C000DE00311,
    0x800840000A40030F,0x800844000E40030F,0x800848000A400311,0x80084C000E400311,
    0x800850000AA0030F,0x800854000EA0030F,0x800858000AA00311,0x80085C000EA00311,
    0x800860000A600326,0x800864000E600326,0x800868000A800326,0x80086C000E800326,
    0x800878000900030C,0x80087C000D00030C,0x8008980008200307,0x80089C000C200307,
    0x8008A00008A00327,0x8008A4000CA00327,0x8008A8001AC00304,0x8008AC001EC00304,
    0x8008B0001AA00304,0x8008B4001EA00304,0x8008B80009E00307,0x8008BC000DE00307,
    0x8008C00045C00304,0x8008C40045E00304,0x8008C8000B200304,0x8008CC000F200304,
    0xD000060000000,0xD040060200000,0xD0C0062600000,0xD100061000301,
    0xDD00057200000,0xDF80007600000,0x800E140015000301,0x800E180072200301,
    0xE1C0016E00000,0x800E200072A00301,0x800E240072E00301,0x800E280073200301,
    0x800E300073E00301,0x800E380074A00301,0x800E3C0075200301,0x800E400079400301,
    0x800EA80073200308,0x800EAC0074A00308,0x800EB00076200301,0x800EB40076A00301,
    0x800EB80076E00301,0x800EBC0077200301,0x800EC00079600301,0x800F280077200308,
    0x800F2C0078A00308,0x800F300077E00301,0x800F340078A00301,0x800F380079200301,
    0x800F4C007A400301,0x800F50007A400308,0x8010000082A00300,0x8010040082A00308,
    0x80100C0082600301,0x80101C0080C00308,0x8010300083400301,0x8010340083000300,
    0x8010380084600306,0x8010640083000306,0x8010E40087000306,0x8011400086A00300,
    0x8011440086A00308,0x80114C0086600301,0x80115C008AC00308,0x8011700087400301,
    0x8011740087000300,0x8011780088600306,0x8011D8008E80030F,0x8011DC008EA0030F,
    0x8013040082C00306,0x8013080086C00306,0x8013400082000306,0x8013440086000306,
    0x8013480082000308,0x80134C0086000308,0x8013580082A00306,0x80135C0086A00306,
    0x801368009B000308,0x80136C009B200308,0x8013700082C00308,0x8013740086C00308,
    0x8013780082E00308,0x80137C0086E00308,0x8013880083000304,0x80138C0087000304,
    0x8013900083000308,0x8013940087000308,0x8013980083C00308,0x80139C0087C00308,
    0x8013A8009D000308,0x8013AC009D200308,0x8013B00085A00308,0x8013B40089A00308,
    0x8013B80084600304,0x8013BC0088600304,0x8013C00084600308,0x8013C40088600308,
    0x8013C8008460030B,0x8013CC008860030B,0x8013D00084E00308,0x8013D40088E00308,
    0x8013E00085600308,0x8013E40089600308,0x80188800C4E00653,0x80188C00C4E00654,
    0x80189000C9000654,0x80189400C4E00655,0x80189800C9400654,0x801B0000DAA00654,
    0x801B0800D8200654,0x801B4C00DA400654,0x8024A4012500093C,0x8024C4012600093C,
    0x8024D0012660093C,0x25600122A0093C,0x25640122C0093C,0x25680122E0093C,
    0x256C012380093C,0x2570012420093C,0x2574012440093C,0x2578012560093C,
    0x257C0125E0093C,0x80272C0138E009BE,0x8027300138E009D7,0x277001342009BC,
    0x277401344009BC,0x277C0135E009BC,0x28CC0146400A3C,0x28D80147000A3C,
    0x29640142C00A3C,0x29680142E00A3C,0x296C0143800A3C,0x29780145600A3C,
    0x802D200168E00B56,0x802D2C0168E00B3E,0x802D300168E00B57,0x2D700164200B3C,
    0x2D740164400B3C,0x802E500172400BD7,0x802F280178C00BBE,0x802F2C0178E00BBE,
    0x802F300178C00BD7,0x8031200188C00C56,0x8033000197E00CD5,0x80331C0198C00CD5,
    0x8033200198C00CD6,0x8033280198C00CC2,0x80332C0199400CD5,0x80352801A8C00D3E,
    0x80352C01A8E00D3E,0x80353001A8C00D57,0x80376801BB200DCA,0x80377001BB200DCF,
    0x80377401BB800DCA,0x80377801BB200DDF,0x3D0C01E8400FB7,0x3D3401E9800FB7,
    0x3D4801EA200FB7,0x3D5C01EAC00FB7,0x3D7001EB600FB7,0x3DA401E8000FB5,
    0x3DCC01EE200F72,0x3DD401EE200F74,0x3DD801F6400F80,0x3DE001F6600F80,
    0x3E0401EE200F80,0x3E4C01F2400FB7,0x3E7401F3800FB7,0x3E8801F4200FB7,
    0x3E9C01F4C00FB7,0x3EB001F5600FB7,0x3EE401F2000FB5,0x8040980204A0102E,
    0x806C180360A01B35,0x806C200360E01B35,0x806C280361201B35,0x806C300361601B35,
    0x806C380361A01B35,0x806C480362201B35,0x806CEC0367401B35,0x806CF40367801B35,
    0x806D000367C01B35,0x806D040367E01B35,0x806D0C0368401B35,0x8078000008200325,
    0x807804000C200325,0x8078080008400307,0x80780C000C400307,0x8078100008400323,
    0x807814000C400323,0x8078180008400331,0x80781C000C400331,0x8078200018E00301,
    0x807824001CE00301,0x8078280008800307,0x80782C000C800307,0x8078300008800323,
    0x807834000C800323,0x8078380008800331,0x80783C000C800331,0x8078400008800327,
    0x807844000C800327,0x807848000880032D,0x80784C000C80032D,0x8078500022400300,
    0x8078540022600300,0x8078580022400301,0x80785C0022600301,0x8078600008A0032D,
    0x807864000CA0032D,0x8078680008A00330,0x80786C000CA00330,0x8078700045000306,
    0x8078740045200306,0x8078780008C00307,0x80787C000CC00307,0x8078800008E00304,
    0x807884000CE00304,0x8078880009000307,0x80788C000D000307,0x8078900009000323,
    0x807894000D000323,0x8078980009000308,0x80789C000D000308,0x8078A00009000327,
    0x8078A4000D000327,0x8078A8000900032E,0x8078AC000D00032E,0x8078B00009200330,
    0x8078B4000D200330,0x8078B80019E00301,0x8078BC001DE00301,0x8078C00009600301,
    0x8078C4000D600301,0x8078C80009600323,0x8078CC000D600323,0x8078D00009600331,
    0x8078D4000D600331,0x8078D80009800323,0x8078DC000D800323,0x8078E003C6C00304,
    0x8078E403C6E00304,0x8078E80009800331,0x8078EC000D800331,0x8078F0000980032D,
    0x8078F4000D80032D,0x8078F80009A00301,0x8078FC000DA00301,0x8079000009A00307,
    0x807904000DA00307,0x8079080009A00323,0x80790C000DA00323,0x8079100009C00307,
    0x807914000DC00307,0x8079180009C00323,0x80791C000DC00323,0x8079200009C00331,
    0x807924000DC00331,0x8079280009C0032D,0x80792C000DC0032D,0x807930001AA00301,
    0x807934001EA00301,0x807938001AA00308,0x80793C001EA00308,0x8079400029800300,
    0x8079440029A00300,0x8079480029800301,0x80794C0029A00301,0x807950000A000301,
    0x807954000E000301,0x807958000A000307,0x80795C000E000307,0x807960000A400307,
    0x807964000E400307,0x807968000A400323,0x80796C000E400323,0x80797003CB400304,
    0x80797403CB600304,0x807978000A400331,0x80797C000E400331,0x807980000A600307,
    0x807984000E600307,0x807988000A600323,0x80798C000E600323,0x807990002B400307,
    0x807994002B600307,0x807998002C000307,0x80799C002C200307,0x8079A003CC400307,
    0x8079A403CC600307,0x8079A8000A800307,0x8079AC000E800307,0x8079B0000A800323,
    0x8079B4000E800323,0x8079B8000A800331,0x8079BC000E800331,0x8079C0000A80032D,
    0x8079C4000E80032D,0x8079C8000AA00324,0x8079CC000EA00324,0x8079D0000AA00330,
    0x8079D4000EA00330,0x8079D8000AA0032D,0x8079DC000EA0032D,0x8079E0002D000301,
    0x8079E4002D200301,0x8079E8002D400308,0x8079EC002D600308,0x8079F0000AC00303,
    0x8079F4000EC00303,0x8079F8000AC00323,0x8079FC000EC00323,0x807A00000AE00300,
    0x807A04000EE00300,0x807A08000AE00301,0x807A0C000EE00301,0x807A10000AE00308,
    0x807A14000EE00308,0x807A18000AE00307,0x807A1C000EE00307,0x807A20000AE00323,
    0x807A24000EE00323,0x807A28000B000307,0x807A2C000F000307,0x807A30000B000308,
    0x807A34000F000308,0x807A38000B200307,0x807A3C000F200307,0x807A40000B400302,
    0x807A44000F400302,0x807A48000B400323,0x807A4C000F400323,0x807A50000B400331,
    0x807A54000F400331,0x807A58000D000331,0x807A5C000E800308,0x807A60000EE0030A,
    0x807A64000F20030A,0x807A6C002FE00307,0x807A800008200323,0x807A84000C200323,
    0x807A880008200309,0x807A8C000C200309,0x807A900018400301,0x807A94001C400301,
    0x807A980018400300,0x807A9C001C400300,0x807AA00018400309,0x807AA4001C400309,
    0x807AA80018400303,0x807AAC001C400303,0x807AB003D4000302,0x807AB403D4200302,
    0x807AB80020400301,0x807ABC0020600301,0x807AC00020400300,0x807AC40020600300,
    0x807AC80020400309,0x807ACC0020600309,0x807AD00020400303,0x807AD40020600303,
    0x807AD803D4000306,0x807ADC03D4200306,0x807AE00008A00323,0x807AE4000CA00323,
    0x807AE80008A00309,0x807AEC000CA00309,0x807AF00008A00303,0x807AF4000CA00303,
    0x807AF80019400301,0x807AFC001D400301,0x807B000019400300,0x807B04001D400300,
    0x807B080019400309,0x807B0C001D400309,0x807B100019400303,0x807B14001D400303,
    0x807B1803D7000302,0x807B1C03D7200302,0x807B200009200309,0x807B24000D200309,
    0x807B280009200323,0x807B2C000D200323,0x807B300009E00323,0x807B34000DE00323,
    0x807B380009E00309,0x807B3C000DE00309,0x807B40001A800301,0x807B44001E800301,
    0x807B48001A800300,0x807B4C001E800300,0x807B50001A800309,0x807B54001E800309,
    0x807B58001A800303,0x807B5C001E800303,0x807B6003D9800302,0x807B6403D9A00302,
    0x807B680034000301,0x807B6C0034200301,0x807B700034000300,0x807B740034200300,
    0x807B780034000309,0x807B7C0034200309,0x807B800034000303,0x807B840034200303,
    0x807B880034000323,0x807B8C0034200323,0x807B90000AA00323,0x807B94000EA00323,
    0x807B98000AA00309,0x807B9C000EA00309,0x807BA00035E00301,0x807BA40036000301,
    0x807BA80035E00300,0x807BAC0036000300,0x807BB00035E00309,0x807BB40036000309,
    0x807BB80035E00303,0x807BBC0036000303,0x807BC00035E00323,0x807BC40036000323,
    0x807BC8000B200300,0x807BCC000F200300,0x807BD0000B200323,0x807BD4000F200323,
    0x807BD8000B200309,0x807BDC000F200309,0x807BE0000B200303,0x807BE4000F200303,
    0x807C000076200313,0x807C040076200314,0x807C0803E0000300,0x807C0C03E0200300,
    0x807C1003E0000301,0x807C1403E0200301,0x807C1803E0000342,0x807C1C03E0200342,
    0x807C200072200313,0x807C240072200314,0x807C2803E1000300,0x807C2C03E1200300,
    0x807C3003E1000301,0x807C3403E1200301,0x807C3803E1000342,0x807C3C03E1200342,
    0x807C400076A00313,0x807C440076A00314,0x807C4803E2000300,0x807C4C03E2200300,
    0x807C5003E2000301,0x807C5403E2200301,0x807C600072A00313,0x807C640072A00314,
    0x807C6803E3000300,0x807C6C03E3200300,0x807C7003E3000301,0x807C7403E3200301,
    0x807C800076E00313,0x807C840076E00314,0x807C8803E4000300,0x807C8C03E4200300,
    0x807C9003E4000301,0x807C9403E4200301,0x807C9803E4000342,0x807C9C03E4200342,
    0x807CA00072E00313,0x807CA40072E00314,0x807CA803E5000300,0x807CAC03E5200300,
    0x807CB003E5000301,0x807CB403E5200301,0x807CB803E5000342,0x807CBC03E5200342,
    0x807CC00077200313,0x807CC40077200314,0x807CC803E6000300,0x807CCC03E6200300,
    0x807CD003E6000301,0x807CD403E6200301,0x807CD803E6000342,0x807CDC03E6200342,
    0x807CE00073200313,0x807CE40073200314,0x807CE803E7000300,0x807CEC03E7200300,
    0x807CF003E7000301,0x807CF403E7200301,0x807CF803E7000342,0x807CFC03E7200342,
    0x807D000077E00313,0x807D040077E00314,0x807D0803E8000300,0x807D0C03E8200300,
    0x807D1003E8000301,0x807D1403E8200301,0x807D200073E00313,0x807D240073E00314,
    0x807D2803E9000300,0x807D2C03E9200300,0x807D3003E9000301,0x807D3403E9200301,
    0x807D400078A00313,0x807D440078A00314,0x807D4803EA000300,0x807D4C03EA200300,
    0x807D5003EA000301,0x807D5403EA200301,0x807D5803EA000342,0x807D5C03EA200342,
    0x807D640074A00314,0x807D6C03EB200300,0x807D7403EB200301,0x807D7C03EB200342,
    0x807D800079200313,0x807D840079200314,0x807D8803EC000300,0x807D8C03EC200300,
    0x807D9003EC000301,0x807D9403EC200301,0x807D9803EC000342,0x807D9C03EC200342,
    0x807DA00075200313,0x807DA40075200314,0x807DA803ED000300,0x807DAC03ED200300,
    0x807DB003ED000301,0x807DB403ED200301,0x807DB803ED000342,0x807DBC03ED200342,
    0x807DC00076200300,0x7DC40075800000,0x807DC80076A00300,0x7DCC0075A00000,
    0x807DD00076E00300,0x7DD40075C00000,0x807DD80077200300,0x7DDC0075E00000,
    0x807DE00077E00300,0x7DE40079800000,0x807DE80078A00300,0x7DEC0079A00000,
    0x807DF00079200300,0x7DF40079C00000,0x807E0003E0000345,0x807E0403E0200345,
    0x807E0803E0400345,0x807E0C03E0600345,0x807E1003E0800345,0x807E1403E0A00345,
    0x807E1803E0C00345,0x807E1C03E0E00345,0x807E2003E1000345,0x807E2403E1200345,
    0x807E2803E1400345,0x807E2C03E1600345,0x807E3003E1800345,0x807E3403E1A00345,
    0x807E3803E1C00345,0x807E3C03E1E00345,0x807E4003E4000345,0x807E4403E4200345,
    0x807E4803E4400345,0x807E4C03E4600345,0x807E5003E4800345,0x807E5403E4A00345,
    0x807E5803E4C00345,0x807E5C03E4E00345,0x807E6003E5000345,0x807E6403E5200345,
    0x807E6803E5400345,0x807E6C03E5600345,0x807E7003E5800345,0x807E7403E5A00345,
    0x807E7803E5C00345,0x807E7C03E5E00345,0x807E8003EC000345,0x807E8403EC200345,
    0x807E8803EC400345,0x807E8C03EC600345,0x807E9003EC800345,0x807E9403ECA00345,
    0x807E9803ECC00345,0x807E9C03ECE00345,0x807EA003ED000345,0x807EA403ED200345,
    0x807EA803ED400345,0x807EAC03ED600345,0x807EB003ED800345,0x807EB403EDA00345,
    0x807EB803EDC00345,0x807EBC03EDE00345,0x807EC00076200306,0x807EC40076200304,
    0x807EC803EE000345,0x807ECC0076200345,0x807ED00075800345,0x807ED80076200342,
    0x807EDC03F6C00345,0x807EE00072200306,0x807EE40072200304,0x807EE80072200300,
    0x7EEC0070C00000,0x807EF00072200345,0x7EF80077200000,0x807F040015000342,
    0x807F0803EE800345,0x807F0C0076E00345,0x807F100075C00345,0x807F180076E00342,
    0x807F1C03F8C00345,0x807F200072A00300,0x7F240071000000,0x807F280072E00300,
    0x7F2C0071200000,0x807F300072E00345,0x807F3403F7E00300,0x807F3803F7E00301,
    0x807F3C03F7E00342,0x807F400077200306,0x807F440077200304,0x807F480079400300,
    0x7F4C0072000000,0x807F580077200342,0x807F5C0079400342,0x807F600073200306,
    0x807F640073200304,0x807F680073200300,0x7F6C0071400000,0x807F7403FFC00300,
    0x807F7803FFC00301,0x807F7C03FFC00342,0x807F800078A00306,0x807F840078A00304,
    0x807F880079600300,0x7F8C0076000000,0x807F900078200313,0x807F940078200314,
    0x807F980078A00342,0x807F9C0079600342,0x807FA00074A00306,0x807FA40074A00304,
    0x807FA80074A00300,0x7FAC0071C00000,0x807FB00074200314,0x807FB40015000300,
    0x7FB80070A00000,0x7FBC000C000000,0x807FC803EF800345,0x807FCC0079200345,
    0x807FD00079C00345,0x807FD80079200342,0x807FDC03FEC00345,0x807FE00073E00300,
    0x7FE40071800000,0x807FE80075200300,0x7FEC0071E00000,0x807FF00075200345,
    0x7FF40016800000,0x80000400400000,0x80040400600000,0x84980075200000,
    0x84A80009600000,0x84AC0018A00000,0x8086680432000338,0x80866C0432400338,
    0x8086B80432800338,0x808734043A000338,0x808738043A800338,0x80873C043A400338,
    0x8088100440600338,0x8088240441000338,0x8088300441600338,0x8088900444600338,
    0x8088980444A00338,0x8089040447800338,0x8089100448600338,0x80891C0448A00338,
    0x8089240449000338,0x8089800007A00338,0x808988044C200338,0x8089B40449A00338,
    0x8089B80007800338,0x8089BC0007C00338,0x8089C0044C800338,0x8089C4044CA00338,
    0x8089D0044E400338,0x8089D4044E600338,0x8089E0044EC00338,0x8089E4044EE00338,
    0x808A00044F400338,0x808A04044F600338,0x808A100450400338,0x808A140450600338,
    0x808A200450C00338,0x808A240450E00338,0x808AB00454400338,0x808AB40455000338,
    0x808AB80455200338,0x808ABC0455600338,0x808B80044F800338,0x808B84044FA00338,
    0x808B880452200338,0x808B8C0452400338,0x808BA80456400338,0x808BAC0456600338,
    0x808BB00456800338,0x808BB40456A00338,0x8CA40601000000,0x8CA80601200000,
    0xAB70055BA00338,0x80C1300609603099,0x80C1380609A03099,0x80C1400609E03099,
    0x80C148060A203099,0x80C150060A603099,0x80C158060AA03099,0x80C160060AE03099,
    0x80C168060B203099,0x80C170060B603099,0x80C178060BA03099,0x80C180060BE03099,
    0x80C188060C203099,0x80C194060C803099,0x80C19C060CC03099,0x80C1A4060D003099,
    0x80C1C0060DE03099,0x80C1C4060DE0309A,0x80C1CC060E403099,0x80C1D0060E40309A,
    0x80C1D8060EA03099,0x80C1DC060EA0309A,0x80C1E4060F003099,0x80C1E8060F00309A,
    0x80C1F0060F603099,0x80C1F4060F60309A,0x80C2500608C03099,0x80C2780613A03099,
    0x80C2B00615603099,0x80C2B80615A03099,0x80C2C00615E03099,0x80C2C80616203099,
    0x80C2D00616603099,0x80C2D80616A03099,0x80C2E00616E03099,0x80C2E80617203099,
    0x80C2F00617603099,0x80C2F80617A03099,0x80C3000617E03099,0x80C3080618203099,
    0x80C3140618803099,0x80C31C0618C03099,0x80C3240619003099,0x80C3400619E03099,
    0x80C3440619E0309A,0x80C34C061A403099,0x80C350061A40309A,0x80C358061AA03099,
    0x80C35C061AA0309A,0x80C364061B003099,0x80C368061B00309A,0x80C370061B603099,
    0x80C374061B60309A,0x80C3D00614C03099,0x80C3DC061DE03099,0x80C3E0061E003099,
    0x80C3E4061E203099,0x80C3E8061E403099,0x80C3F8061FA03099,0x3E4001189000000,
    0x3E4040CDE800000,0x3E40811D9400000,0x3E40C1199000000,0x3E4100DDA200000,
    0x3E41409C6400000,0x3E4180A7CA00000,0x3E41C13F3800000,0x3E42013F3800000,
    0x3E4240B2A200000,0x3E428123A200000,0x3E42C0AB0E00000,0x3E4300B29000000,
    0x3E4340C3EC00000,0x3E4380ECD200000,0x3E43C0FF0A00000,0x3E44010C7E00000,
    0x3E44410F7400000,0x3E448111F000000,0x3E44C1211E00000,0x3E4500D40400000,
    0x3E4540DA3600000,0x3E4580E1B200000,0x3E45C0E7BC00000,0x3E4601087A00000,
    0x3E464122D400000,0x3E468133E200000,0x3E46C09D0400000,0x3E4700A6EA00000,
    0x3E4740D60800000,0x3E4780E43600000,0x3E47C10C5A00000,0x3E48013C3C00000,
    0x3E4840BAA000000,0x3E4880DFD600000,0x3E48C10B9A00000,0x3E490112C800000,
    0x3E4940C59200000,0x3E498103B000000,0x3E49C1103E00000,0x3E4A00BD9400000,
    0x3E4A40CE2E00000,0x3E4A80DAD400000,0x3E4AC0E5F800000,0x3E4B01219C00000,
    0x3E4B409F0C00000,0x3E4B80A36E00000,0x3E4BC0A5BC00000,0x3E4C00C98800000,
    0x3E4C40D5A600000,0x3E4C80E42000000,0x3E4CC0EDCE00000,0x3E4D01000200000,
    0x3E4D410C0C00000,0x3E4D810CB800000,0x3E4DC11BDE00000,0x3E4E012E6400000,
    0x3E4E4136DE00000,0x3E4E813BF400000,0x3E4EC0F11800000,0x3E4F00F2FE00000,
    0x3E4F40FB4000000,0x3E4F81079200000,0x3E4FC1260800000,0x3E50013CFE00000,
    0x3E504115AC00000,0x3E5080B1BE00000,0x3E50C0BE0800000,0x3E5100F8C000000,
    0x3E514100FC00000,0x3E5180E4C400000,0x3E51C0F19400000,0x3E5201198400000,
    0x3E52412DEE00000,0x3E5280B1B000000,0x3E52C0B8C400000,0x3E5300D42600000,
    0x3E5340DBB400000,0x3E5380DE1E00000,0x3E53C0FA5E00000,0x3E5400FC6E00000,
    0x3E54412C9600000,0x3E5480A5A400000,0x3E54C1011600000,0x3E5500A3B800000,
    0x3E5540A39800000,0x3E5580F43800000,0x3E55C0FB7C00000,0x3E560107E200000,
    0x3E56412CEA00000,0x3E5681170000000,0x3E56C0C59E00000,0x3E5700D40400000,
    0x3E574115FC00000,0x3E57809C7200000,0x3E57C0B7CE00000,0x3E5800C02400000,
    0x3E5840E70E00000,0x3E5880EAE000000,0x3E58C0A62E00000,0x3E5900F1F600000,
    0x3E59409F7E00000,0x3E5980BF5200000,0x3E59C09C1A00000,0x3E5A00D99800000,
    0x3E5A40CAF000000,0x3E5A80FA4400000,0x3E5AC0A78600000,0x3E5B00B0BC00000,
    0x3E5B40EE0200000,0x3E5B81089200000,0x3E5BC1155400000,0x3E5C00D77400000,
    0x3E5C411F6000000,0x3E5C80D91000000,0x3E5CC0C5FC00000,0x3E5D0105CA00000,
    0x3E5D40C74000000,0x3E5D80EACA00000,0x3E5DC09D5C00000,0x3E5E00A2D200000,
    0x3E5E40A39200000,0x3E5E80D10200000,0x3E5EC0F9CE00000,0x3E5F0104DE00000,
    0x3E5F4115A400000,0x3E5F81239E00000,0x3E5FC0A5EA00000,0x3E6000A88400000,
    0x3E6040B2E600000,0x3E6080BDD800000,0x3E60C0CB8A00000,0x3E6100DFFC00000,
    0x3E6140F25400000,0x3E61812B5A00000,0x3E61C134D400000,0x3E62013D2E00000,
    0x3E62413D9C00000,0x3E6280A53600000,0x3E62C0CD8C00000,0x3E6300D6EE00000,
    0x3E63411EC400000,0x3E6380BCE800000,0x3E63C0C32000000,0x3E6400C40000000,
    0x3E6440C93400000,0x3E6480DE4600000,0x3E64C0E29200000,0x3E6500E91200000,
    0x3E6540F39400000,0x3E6580FBE800000,0x3E65C100DE00000,0x3E66011E4C00000,
    0x3E664109DC00000,0x3E6681204600000,0x3E66C1269400000,0x3E6700A42E00000,
    0x3E6740A54600000,0x3E6780A97A00000,0x3E67C0E19000000,0x3E6801118400000,
    0x3E6841155400000,0x3E6880BD9200000,0x3E68C0BFEA00000,0x3E6900C6F600000,
    0x3E6940D75C00000,0x3E6980F87C00000,0x3E69C0E6EA00000,0x3E6A009DC800000,
    0x3E6A40ADF200000,0x3E6A80B7CE00000,0x3E6AC0BB7400000,0x3E6B00C03800000,
    0x3E6B40E76400000,0x3E6B80E8D200000,0x3E6BC0FF3400000,0x3E6C01008C00000,
    0x3E6C41246800000,0x3E6C812DEC00000,0x3E6CC12E9000000,0x3E6D01303000000,
    0x3E6D409F1600000,0x3E6D80F35C00000,0x3E6DC1236800000,0x3E6E012D7000000,
    0x3E6E40C1C200000,0x3E6E809D0C00000,0x3E6EC0A1B400000,0x3E6F00B7DC00000,
    0x3E6F40B87E00000,0x3E6F80CB3200000,0x3E6FC0D40400000,0x3E7000E39C00000,
    0x3E7040EC8400000,0x3E708109F800000,0x3E70C120F800000,0x3E71013F1A00000,
    0x3E7140CD1000000,0x3E71812C5C00000,0x3E71C0A51200000,0x3E7200CEF600000,
    0x3E7240CFE600000,0x3E7280DA8200000,0x3E72C0DD3800000,0x3E7300E81200000,
    0x3E7340EAB200000,0x3E7380F0D600000,0x3E73C0FA2000000,0x3E740130BC00000,
    0x3E7440A2DA00000,0x3E7480C45C00000,0x3E74C12CF000000,0x3E7500A05600000,
    0x3E7540BA3200000,0x3E7580DBD400000,0x3E75C11E5400000,0x3E7600BF1600000,
    0x3E7640C28800000,0x3E7680D02E00000,0x3E76C0E70E00000,0x3E77012D0C00000,
    0x3E7740A45200000,0x3E7780A81E00000,0x3E77C0B8CA00000,0x3E7800CC2600000,
    0x3E7840CE9C00000,0x3E7880D15000000,0x3E78C0D9CA00000,0x3E7900E80C00000,
    0x3E7940EBC400000,0x3E7980FEF200000,0x3E79C1119E00000,0x3E7A0111C200000,
    0x3E7A41239800000,0x3E7A812DC400000,0x3E7AC0A67E00000,0x3E7B00DD7400000,
    0x3E7B40A83A00000,0x3E7B80E3A000000,0x3E7BC0E93000000,0x3E7C010BF400000,
    0x3E7C412D4600000,0x3E7C8138AE00000,0x3E7CC13D3E00000,0x3E7D00CF2E00000,
    0x3E7D40DB9600000,0x3E7D8103D000000,0x3E7DC0F59600000,0x3E7E00F64000000,
    0x3E7E40F92400000,0x3E7E80E58000000,0x3E7EC0E13200000,0x3E7F0116B000000,
    0x3E7F409D8000000,0x3E7F81066C00000,0x3E7FC0A47400000,0x3E8000A40E00000,
    0x3E8040BD4C00000,0x3E8080C5A600000,0x3E80C0F9AC00000,0x3E8100B70A00000,
    0x3E8140DA3C00000,0x3E8180CD6800000,0x3E81C11E7600000,0x3E8201109800000,
    0x3E82412C9A00000,0x3E8281131600000,0x3E82C0BDA600000,0x3E8300A28000000,
    0x3E8340AB8000000,0x3E8400B0B400000,0x3E8480CCE800000,0x3E8540A3BC00000,
    0x3E8580E65400000,0x3E85C0ED9400000,0x3E8600F27800000,0x3E8640F2BC00000,
    0x3E8680F2CA00000,0x3E86C0F31E00000,0x3E87012EAC00000,0x3E8740F97C00000,
    0x3E8780FF7A00000,0x3E88010C2400000,0x3E888115F000000,0x3E8941207000000,
    0x3E898121FA00000,0x3E8A8131DE00000,0x3E8AC131F800000,0x3E8B01325000000,
    0x3E8B413B6800000,0x3E8B8121BC00000,0x3E8BC12D6E00000,0x3E8C009F5C00000,
    0x3E8C40A1CE00000,0x3E8C80A29A00000,0x3E8CC0A59200000,0x3E8D00A5C800000,
    0x3E8D40A6A200000,0x3E8D80AB3A00000,0x3E8DC0AC0C00000,0x3E8E00ACD000000,
    0x3E8E40B08000000,0x3E8E80B15000000,0x3E8EC0B8C800000,0x3E8F00B8DC00000,
    0x3E8F40C12800000,0x3E8F80C2D000000,0x3E8FC0C31C00000,0x3E9000C3E400000,
    0x3E9040CA9E00000,0x3E9080CBC400000,0x3E90C0CD2200000,0x3E9100D10A00000,
    0x3E9140DAEE00000,0x3E9180DC3400000,0x3E91C0DE4400000,0x3E9200E2DC00000,
    0x3E9240E45600000,0x3E9280E84400000,0x3E92C0F12200000,0x3E9300F27C00000,
    0x3E9340F29200000,0x3E9380F29000000,0x3E93C0F2A000000,0x3E9400F2AC00000,
    0x3E9440F2BA00000,0x3E9480F31A00000,0x3E94C0F31C00000,0x3E9500F48000000,
    0x3E9540F50200000,0x3E9580F78000000,0x3E95C0FBE800000,0x3E9600FC1200000,
    0x3E9640FC8200000,0x3E9680FEE400000,0x3E96C1000A00000,0x3E970103DA00000,
    0x3E974104F200000,0x3E978104F200000,0x3E97C108AE00000,0x3E9801122000000,
    0x3E9841132C00000,0x3E9881160200000,0x3E98C1167200000,0x3E990119A600000,
    0x3E99411A1000000,0x3E99811F6C00000,0x3E99C1207000000,0x3E9A012DC600000,
    0x3E9A412FFE00000,0x3E9A81307600000,0x3E9AC0C0EA00000,0x3E9B0485DC00000,
    0x3E9B41043000000,0x3E9C009C4C00000,0x3E9C40A36A00000,0x3E9C80A2D000000,
    0x3E9CC09F0000000,0x3E9D00A28A00000,0x3E9D40A30000000,0x3E9D80A58E00000,
    0x3E9DC0A5F400000,0x3E9E00AB3A00000,0x3E9E40AAAA00000,0x3E9E80AB3200000,
    0x3E9EC0ABC400000,0x3E9F00B0B400000,0x3E9F40B16600000,0x3E9F80B28800000,
    0x3E9FC0B2A800000,0x3EA000B4C400000,0x3EA040B65000000,0x3EA080BDA400000,
    0x3EA0C0BDB200000,0x3EA100BED200000,0x3EA140BF5A00000,0x3EA180C1B000000,
    0x3EA1C0C29C00000,0x3EA200C21000000,0x3EA240C31C00000,0x3EA280C2C000000,
    0x3EA2C0C3E400000,0x3EA300C46800000,0x3EA340C78800000,0x3EA380C83800000,
    0x3EA3C0C8A400000,0x3EA400CAAC00000,0x3EA440CCE800000,0x3EA480CE2E00000,
    0x3EA4C0CE3600000,0x3EA500CEAC00000,0x3EA540D6F200000,0x3EA580D77400000,
    0x3EA5C0DA8200000,0x3EA600DDB600000,0x3EA640DD9600000,0x3EA680DE4400000,
    0x3EA6C0E03C00000,0x3EA700E2DC00000,0x3EA740EF4E00000,0x3EA780E46A00000,
    0x3EA7C0E55E00000,0x3EA800E65400000,0x3EA840E8E200000,0x3EA880EA0C00000,
    0x3EA8C0EA7600000,0x3EA900EC3A00000,0x3EA940EC3E00000,0x3EA980ED9400000,
    0x3EA9C0EDB600000,0x3EAA00EDE800000,0x3EAA40EE9400000,0x3EAA80EE8000000,
    0x3EAAC0F19800000,0x3EAB00F56200000,0x3EAB40F78000000,0x3EAB80F8F600000,
    0x3EABC0FAB600000,0x3EAC00FBE800000,0x3EAC40FE7C00000,0x3EAC81000A00000,
    0x3EACC106A400000,0x3EAD0107DE00000,0x3EAD410EF200000,0x3EAD81128200000,
    0x3EADC1130C00000,0x3EAE01132C00000,0x3EAE41157E00000,0x3EAE8115F000000,
    0x3EAEC1159600000,0x3EAF01160200000,0x3EAF4115FC00000,0x3EAF8115DA00000,
    0x3EAFC1167200000,0x3EB001171400000,0x3EB0411A1000000,0x3EB0811E7000000,
    0x3EB0C120E400000,0x3EB101233200000,0x3EB14124EC00000,0x3EB1812CF800000,
    0x3EB1C12DC600000,0x3EB2012EAC00000,0x3EB2412FB600000,0x3EB2812FFE00000,
    0x3EB2C1301600000,0x3EB301307600000,0x3EB341362400000,0x3EB3813F3800000,
    0x3EB3C4509400000,0x3EB404508800000,0x3EB44467AA00000,0x3EB480773A00000,
    0x3EB4C0803000000,0x3EB500807200000,0x3EB544A49200000,0x3EB584B9A000000,
    0x3EB5C4FDA600000,0x3EB6013E8600000,0x3EB6413F1C00000,0x3EC7400BB2005B4,
    0x3EC7C00BE4005B7,0x3ECA800BD2005C1,0x3ECAC00BD2005C2,0x3ECB01F692005C1,
    0x3ECB41F692005C2,0x3ECB800BA0005B7,0x3ECBC00BA0005B8,0x3ECC000BA0005BC,
    0x3ECC400BA2005BC,0x3ECC800BA4005BC,0x3ECCC00BA6005BC,0x3ECD000BA8005BC,
    0x3ECD400BAA005BC,0x3ECD800BAC005BC,0x3ECE000BB0005BC,0x3ECE400BB2005BC,
    0x3ECE800BB4005BC,0x3ECEC00BB6005BC,0x3ECF000BB8005BC,0x3ECF800BBC005BC,
    0x3ED0000BC0005BC,0x3ED0400BC2005BC,0x3ED0C00BC6005BC,0x3ED1000BC8005BC,
    0x3ED1800BCC005BC,0x3ED1C00BCE005BC,0x3ED2000BD0005BC,0x3ED2400BD2005BC,
    0x3ED2800BD4005BC,0x3ED2C00BAA005B9,0x3ED3000BA2005BF,0x3ED3400BB6005BF,
    0x3ED3800BC8005BF,0x84426822132110BA,0x84427022136110BA,0x8442AC2214A110BA,
    0x8444B82226211127,0x8444BC2226411127,0x844D2C2268E1133E,0x844D302268E11357,
    0x8452EC22972114BA,0x8452F022972114B0,0x8452F822972114BD,0x8456E822B70115AF,
    0x8456EC22B72115AF,0x745783A2AE1D165,0x7457C3A2B01D165,0x745803A2BE1D16E,
    0x745843A2BE1D16F,0x745883A2BE1D170,0x7458C3A2BE1D171,0x745903A2BE1D172,
    0x746EC3A3721D165,0x746F03A3741D165,0x746F43A3761D16E,0x746F83A3781D16E,
    0x746FC3A3761D16F,0x747003A3781D16F,0xBE00009C7A00000,0xBE00409C7000000,
    0xBE00809C8200000,0xBE00C4024400000,0xBE01009EC000000,0xBE01409F5C00000,
    0xBE01809F7600000,0xBE01C0A00400000,0xBE0200A0F400000,0xBE0240A13200000,
    0xBE0280A1CE00000,0xBE02C0A19E00000,0xBE0300693C00000,0xBE03440C7400000,
    0xBE0380A29A00000,0xBE03C0A2A800000,0xBE0400A2C800000,0xBE0440A2EE00000,
    0xBE04840A3800000,0xBE04C0697200000,0xBE0500A2CE00000,0xBE0540A31A00000,
    0xBE05840A9600000,0xBE05C0A32E00000,0xBE0600A34800000,0xBE06409D9800000,
    0xBE0680A35800000,0xBE06C0A36A00000,0xBE070523BE00000,0xBE0740A3EA00000,
    0xBE0780A40600000,0xBE07C069BE00000,0xBE0800A47600000,0xBE0840A48C00000,
    0xBE0880A4E400000,0xBE08C0A4EE00000,0xBE09006A2A00000,0xBE0940A58E00000,
    0xBE0980A59200000,0xBE09C0A5C800000,0xBE0A00A5F400000,0xBE0A40A60A00000,
    0xBE0A80A60C00000,0xBE0AC0A62E00000,0xBE0B00A69200000,0xBE0B40A6A200000,
    0xBE0B80A6B400000,0xBE0BC0A6E600000,0xBE0C00A6FA00000,0xBE0C40A6FE00000,
    0xBE0C80A6FE00000,0xBE0CC0A6FE00000,0xBE0D04145800000,0xBE0D40E0E000000,
    0xBE0D80A79400000,0xBE0DC0A7BE00000,0xBE0E0416C600000,0xBE0E40A7D600000,
    0xBE0E80A7E200000,0xBE0EC0A80C00000,0xBE0F00A93C00000,0xBE0F40A87000000,
    0xBE0F80A89000000,0xBE0FC0A8D000000,0xBE1000A94400000,0xBE1040A9EC00000,
    0xBE1080AA2000000,0xBE10C0AAA600000,0xBE1100AAC600000,0xBE1140AB0800000,
    0xBE1180AB0800000,0xBE11C0AB3200000,0xBE1200AB5600000,0xBE1240AB6600000,
    0xBE1280AB8400000,0xBE12C0AE2C00000,0xBE1300AC0C00000,0xBE1340AE2E00000,
    0xBE1380ACA200000,0xBE13C0ACE800000,0xBE1400A40E00000,0xBE1440B1DC00000,
    0xBE1480AF9C00000,0xBE14C0AFE800000,0xBE1500B01A00000,0xBE1540AF1600000,
    0xBE1580B06400000,0xBE15C0B06200000,0xBE1600B15800000,0xBE164429C800000,
    0xBE1680B1E400000,0xBE16C0B1EE00000,0xBE1700B20C00000,0xBE1740B23400000,
    0xBE1780B24400000,0xBE17C0B2C400000,0xBE18042D5000000,0xBE18442DD400000,
    0xBE1880B3D800000,0xBE18C0B43600000,0xBE1900B44E00000,0xBE1940B3B000000,
    0xBE1980B4CC00000,0xBE19C06DDC00000,0xBE1A006DF800000,0xBE1A40B61000000,
    0xBE1A80B67C00000,0xBE1AC0B67C00000,0xBE1B04339000000,0xBE1B40B78600000,
    0xBE1B80B7B000000,0xBE1BC0B7CE00000,0xBE1C00B7E600000,0xBE1C44363000000,
    0xBE1C80B7FE00000,0xBE1CC0B80C00000,0xBE1D00BEA600000,0xBE1D40B84400000,
    0xBE1D806F0200000,0xBE1DC0B8C000000,0xBE1E00B8DC00000,0xBE1E40B98000000,
    0xBE1E80B91A00000,0xBE1EC43BC800000,0xBE1F00BA8600000,0xBE1F443BCC00000,
    0xBE1F80BADC00000,0xBE1FC0BAD600000,0xBE2000BAF800000,0xBE2040BBC200000,
    0xBE2080BBC400000,0xBE20C0705E00000,0xBE2100BBFA00000,0xBE2140BC5000000,
    0xBE2180BC7A00000,0xBE21C0BCD200000,0xBE220070C400000,0xBE2244430600000,
    0xBE228070F800000,0xBE22C0BD6000000,0xBE2300BD6600000,0xBE2340BD6C00000,
    0xBE2380BD9400000,0xBE23C5472400000,0xBE2400BDFC00000,0xBE2444466200000,
    0xBE2484466200000,0xBE24C1040200000,0xBE2500BE4400000,0xBE2540BE4400000,
    0xBE2580718E00000,0xBE25C4657000000,0xBE2604C3B400000,0xBE2640BEC400000,
    0xBE2680BED600000,0xBE26C071C600000,0xBE2700BF3400000,0xBE2740BF9A00000,
    0xBE2780BFAE00000,0xBE27C0BFF200000,0xBE2800C10200000,0xBE2840727400000,
    0xBE2880723800000,0xBE28C0C12800000,0xBE29044DA800000,0xBE2940C18E00000,
    0xBE2980C29000000,0xBE29C0C29800000,0xBE2A00C29C00000,0xBE2A40C29800000,
    0xBE2A80C2F400000,0xBE2AC0C31C00000,0xBE2B00C36400000,0xBE2B40C34800000,
    0xBE2B80C35E00000,0xBE2BC0C3BC00000,0xBE2C00C3E400000,0xBE2C40C3EC00000,
    0xBE2C80C42000000,0xBE2CC0C43600000,0xBE2D00C4BA00000,0xBE2D40C56200000,
    0xBE2D80C5A800000,0xBE2DC0C6A000000,0xBE2E04561800000,0xBE2E40C67A00000,
    0xBE2E80C5F800000,0xBE2EC0C6D000000,0xBE2F00C70600000,0xBE2F40C7C800000,
    0xBE2F8457E200000,0xBE2FC0C84400000,0xBE3000C78A00000,0xBE3040C75200000,
    0xBE3080745C00000,0xBE30C0C8D200000,0xBE3100C8FC00000,0xBE3140C93A00000,
    0xBE3180C8EE00000,0xBE31C074D800000,0xBE3200CA9E00000,0xBE3240CAD800000,
    0xBE3284601400000,0xBE32C0CBC600000,0xBE3300CDF000000,0xBE3340CC9200000,
    0xBE3380763200000,0xBE33C0CD2200000,0xBE3400761000000,0xBE344075C800000,
    0xBE3480A32400000,0xBE34C0A32A00000,0xBE3500CE0000000,0xBE3540CD3800000,
    0xBE3581015A00000,0xBE35C087B200000,0xBE3600CE2E00000,0xBE3640CE3600000,
    0xBE3680CE4200000,0xBE36C0CEBC00000,0xBE3700CEA600000,0xBE3744678600000,
    0xBE3780769200000,0xBE37C0CFF400000,0xBE3800CF0A00000,0xBE3840D0A400000,
    0xBE3880D10A00000,0xBE38C468DA00000,0xBE3900D11C00000,0xBE3940D03E00000,
    0xBE3980D22800000,0xBE39C0773A00000,0xBE3A00D28400000,0xBE3A40D34600000,
    0xBE3A80D3D400000,0xBE3AC0D55000000,0xBE3B046D4600000,0xBE3B40D5B600000,
    0xBE3B80783000000,0xBE3BC0D64200000,0xBE3C04714E00000,0xBE3C40D6A800000,
    0xBE3C80789C00000,0xBE3CC0D6E400000,0xBE3D00D73E00000,0xBE3D40D77400000,
    0xBE3D80D77600000,0xBE3DC4751A00000,0xBE3E043A1600000,0xBE3E4475F400000,
    0xBE3E80D89C00000,0xBE3EC4797800000,0xBE3F00D97E00000,0xBE3F40D99A00000,
    0xBE3F80D8CE00000,0xBE3FC0DA2C00000,0xBE4000DA7C00000,0xBE4040DAEE00000,
    0xBE4080DA8200000,0xBE40C0DAD200000,0xBE4100DAF000000,0xBE4140DB0A00000,
    0xBE41847A3C00000,0xBE41C0DA6800000,0xBE4200DC5E00000,0xBE4240DCDC00000,
    0xBE42807A6600000,0xBE42C0DD9600000,0xBE4300DD8E00000,0xBE43447DA200000,
    0xBE4380DBF200000,0xBE43C0DEDC00000,0xBE44047EBC00000,0xBE44447F1C00000,
    0xBE4480DF8C00000,0xBE44C0E07200000,0xBE4500E03C00000,0xBE4540E03600000,
    0xBE45807B2C00000,0xBE45C0E09400000,0xBE4600E0FA00000,0xBE4640E0EE00000,
    0xBE4680E15A00000,0xBE46C40A4A00000,0xBE4700E28A00000,0xBE474484C600000,
    0xBE4780E33800000,0xBE47C4875600000,0xBE4800E45000000,0xBE4840E46A00000,
    0xBE4880E4A000000,0xBE48C48C1000000,0xBE4900E50000000,0xBE4940E52A00000,
    0xBE49848E6A00000,0xBE49C4902800000,0xBE4A00E6F400000,0xBE4A40E71600000,
    0xBE4A807D5800000,0xBE4AC0E74A00000,0xBE4B007D7000000,0xBE4B407D7000000,
    0xBE4B80E88E00000,0xBE4BC0E8B800000,0xBE4C00E8E200000,0xBE4C40E90A00000,
    0xBE4C80E99400000,0xBE4CC07E3600000,0xBE4D00EA4800000,0xBE4D44986C00000,
    0xBE4D80EA7C00000,0xBE4DC4992400000,0xBE4E00EAE000000,0xBE4E44433E00000,
    0xBE4E80EC2000000,0xBE4EC49F4200000,0xBE4F049F7000000,0xBE4F44A08800000,
    0xBE4F807FF800000,0xBE4FC0801000000,0xBE5000EDE800000,0xBE5044A1E600000,
    0xBE5084A1E400000,0xBE50C4A23200000,0xBE5104A26600000,0xBE5140EE3C00000,
    0xBE5180EE3E00000,0xBE51C0EE3E00000,0xBE5200EE9400000,0xBE5240807200000,
    0xBE5280EF1600000,0xBE52C0808C00000,0xBE5300812C00000,0xBE5344A83A00000,
    0xBE5380F09C00000,0xBE53C0F11800000,0xBE5400F19800000,0xBE544081C600000,
    0xBE5484AC4C00000,0xBE54C0F2AC00000,0xBE5504AD3400000,0xBE5544AD8A00000,
    0xBE5580F31E00000,0xBE55C0F3D600000,0xBE5600825E00000,0xBE5640F48000000,
    0xBE5680F49400000,0xBE56C0F49E00000,0xBE5704B2F800000,0xBE5744B54E00000,
    0xBE5784B54E00000,0xBE57C0F5DC00000,0xBE5800840400000,0xBE5844B75600000,
    0xBE5880F78C00000,0xBE58C0F79200000,0xBE5900844E00000,0xBE5944B90000000,
    0xBE5980F9A400000,0xBE59C0854000000,0xBE5A00F9D000000,0xBE5A40F9C600000,
    0xBE5A80FA0000000,0xBE5AC4BF0C00000,0xBE5B00FAC600000,0xBE5B40860200000,
    0xBE5B80FB8E00000,0xBE5BC0FC0400000,0xBE5C00FC8A00000,0xBE5C40866800000,
    0xBE5C84C45000000,0xBE5CC4C48E00000,0xBE5D0086B200000,0xBE5D44C5B200000,
    0xBE5D80FEF400000,0xBE5DC4C67C00000,0xBE5E00FF2A00000,0xBE5E40FFF400000,
    0xBE5E81000A00000,0xBE5EC4C9B400000,0xBE5F04CA4600000,0xBE5F4100C000000,
    0xBE5F84CB5000000,0xBE5FC100E000000,0xBE600466BE00000,0xBE604087AA00000,
    0xBE6081016400000,0xBE60C1020600000,0xBE6100881600000,0xBE6141027C00000,
    0xBE6180B56A00000,0xBE61C4CF4E00000,0xBE6204CF6A00000,0xBE6244672600000,
    0xBE6284673800000,0xBE62C1040200000,0xBE6301040800000,0xBE63411F3C00000,
    0xBE638088D600000,0xBE63C1052200000,0xBE6401051600000,0xBE6441053A00000,
    0xBE6480A56600000,0xBE64C1056200000,0xBE6501056600000,0xBE6541057A00000,
    0xBE658105CC00000,0xBE65C4D67800000,0xBE660105CA00000,0xBE6641063A00000,
    0xBE668106C600000,0xBE66C1075A00000,0xBE6701064600000,0xBE6741077A00000,
    0xBE678107CE00000,0xBE67C108AE00000,0xBE680106A600000,0xBE6841079400000,
    0xBE6881079800000,0xBE68C107B800000,0xBE6904D86C00000,0xBE6944DAD600000,
    0xBE6984D9AA00000,0xBE69C08A5600000,0xBE6A0109E200000,0xBE6A4109E600000,
    0xBE6A810A2C00000,0xBE6AC4E79400000,0xBE6B010AC800000,0xBE6B44DE5800000,
    0xBE6B808ABA00000,0xBE6BC08AC200000,0xBE6C04DF6200000,0xBE6C44E1A400000,
    0xBE6C808AD600000,0xBE6CC10CA000000,0xBE6D010CB800000,0xBE6D410CCE00000,
    0xBE6D810CD200000,0xBE6DC10D5200000,0xBE6E010D1000000,0xBE6E410E1C00000,
    0xBE6E810DC400000,0xBE6EC10EF200000,0xBE6F010E5000000,0xBE6F410ED600000,
    0xBE6F810F0C00000,0xBE6FC08BAE00000,0xBE70010FC200000,0xBE7041100200000,
    0xBE70808BF200000,0xBE70C110C000000,0xBE710110C600000,0xBE7144ECCE00000,
    0xBE718111AE00000,0xBE71C111BC00000,0xBE72008C6A00000,0xBE724111F400000,
    0xBE7280697600000,0xBE72C4F15C00000,0xBE7304F2CC00000,0xBE73408D7C00000,
    0xBE73808D8E00000,0xBE73C1154000000,0xBE740115DA00000,0xBE7441171400000,
    0xBE748118AA00000,0xBE74C4F95000000,0xBE7501195600000,0xBE7541198200000,
    0xBE75811A3600000,0xBE75C11AEE00000,0xBE7604FE5E00000,0xBE7644100800000,
    0xBE76811B9600000,0xBE76C11B7800000,0xBE77011BE000000,0xBE774411BC00000,
    0xBE77811DA800000,0xBE77C11E7000000,0xBE78050BA400000,0xBE78450BDA00000,
    0xBE7881212800000,0xBE78C121E200000,0xBE7901222200000,0xBE79450E5C00000,
    0xBE7981223600000,0xBE79C1247000000,0xBE7A0125AE00000,0xBE7A4125B000000,
    0xBE7A8124F800000,0xBE7AC127F200000,0xBE7B01282A00000,0xBE7B4517F400000,
    0xBE7B812B1600000,0xBE7BC0932A00000,0xBE7C012B6E00000,0xBE7C451AEE00000,
    0xBE7C8093CC00000,0xBE7CC12D8600000,0xBE7D00BB6400000,0xBE7D412E4600000,
    0xBE7D85228A00000,0xBE7DC5243400000,0xBE7E0094DC00000,0xBE7E4094EC00000,
    0xBE7E812FC000000,0xBE7EC5281400000,0xBE7F00956400000,0xBE7F45292C00000,
    0xBE7F81301600000,0xBE7FC1301600000,0xBE8001305200000,0xBE80452B6C00000,
    0xBE808131C400000,0xBE80C0966600000,0xBE8101325200000,0xBE8141334E00000,
    0xBE8181338400000,0xBE81C133FC00000,0xBE8200979C00000,0xBE8245366000000,
    0xBE8281362400000,0xBE82C1388000000,0xBE830139FA00000,0xBE8340999C00000,
    0xBE838099DA00000,0xBE83C13ACE00000,0xBE8405419C00000,0xBE844099F000000,
    0xBE8485420A00000,0xBE84C5441C00000,0xBE8505452200000,0xBE85413D7600000,
    0xBE85809AAC00000,0xBE85C13DF200000,0xBE86013DFC00000,0xBE86413E0A00000,
    0xBE86813E1E00000,0xBE86C13E2C00000,0xBE87013E7600000,0xBE87454C0000000,
};
/* END UNICODE TABLES */

/* ---- Unicode lookups ---------------------------------------------------------------- */

enum { QM__CLS_OTHER = 0, QM__CLS_L = 1, QM__CLS_N = 2, QM__CLS_W = 3 };
#define QM__BADBYTE 0x110000u /* unit for an invalid input byte b: QM__BADBYTE + b */

/* Index of the last entry whose start (entry >> shift) is <= cp. */
static size_t qm__uc_find32(const uint32_t *tab, size_t n, int shift, uint32_t cp) {
    size_t lo = 0, hi = n; /* tab[0] starts at 0, so the answer exists */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if ((tab[mid] >> shift) <= cp) lo = mid; else hi = mid;
    }
    return lo;
}

static int qm__uc_class_of(uint32_t cp) {
    if (cp < 0x80) {
        if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') return QM__CLS_L;
        if (cp >= '0' && cp <= '9') return QM__CLS_N;
        if (cp == ' ' || (cp >= 9 && cp <= 13)) return QM__CLS_W;
        return QM__CLS_OTHER;
    }
    if (cp >= QM__BADBYTE) return QM__CLS_OTHER;
    return QM__CAST(int, qm__uc_class[qm__uc_find32(qm__uc_class, sizeof(qm__uc_class) / sizeof(qm__uc_class[0]), 2, cp)] & 3u);
}

/* Canonical combining class (bits 0-7) and "NFC_QC is not Yes" (bit 8). */
static unsigned qm__uc_nfc_of(uint32_t cp) {
    if (cp < 0x300 || cp >= QM__BADBYTE) return 0;
    return qm__uc_nfc[qm__uc_find32(qm__uc_nfc, sizeof(qm__uc_nfc) / sizeof(qm__uc_nfc[0]), 9, cp)] & 0x1ffu;
}
static unsigned qm__uc_ccc(uint32_t cp) { return qm__uc_nfc_of(cp) & 0xffu; }

#define QM__HANGUL_S 0xAC00u
#define QM__HANGUL_L 0x1100u
#define QM__HANGUL_V 0x1161u
#define QM__HANGUL_T 0x11A7u
#define QM__HANGUL_LN 19u
#define QM__HANGUL_VN 21u
#define QM__HANGUL_TN 28u
#define QM__HANGUL_SN 11172u

/* Full canonical decomposition of cp into out (at most 4 code points). */
static size_t qm__uc_decompose(uint32_t cp, uint32_t *out) {
    size_t lo = 0, hi = sizeof(qm__uc_decomp) / sizeof(qm__uc_decomp[0]), n;
    if (cp < 0xC0 || cp >= QM__BADBYTE) { out[0] = cp; return 1; }
    if (cp - QM__HANGUL_S < QM__HANGUL_SN) {
        uint32_t si = cp - QM__HANGUL_S;
        out[0] = QM__HANGUL_L + si / (QM__HANGUL_VN * QM__HANGUL_TN);
        out[1] = QM__HANGUL_V + (si % (QM__HANGUL_VN * QM__HANGUL_TN)) / QM__HANGUL_TN;
        if (si % QM__HANGUL_TN == 0) return 2;
        out[2] = QM__HANGUL_T + si % QM__HANGUL_TN;
        return 3;
    }
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint32_t c = QM__CAST(uint32_t, (qm__uc_decomp[mid] >> 42) & 0x1fffffu);
        if (c == cp) {
            uint32_t a = QM__CAST(uint32_t, (qm__uc_decomp[mid] >> 21) & 0x1fffffu);
            uint32_t b = QM__CAST(uint32_t, qm__uc_decomp[mid] & 0x1fffffu);
            n = qm__uc_decompose(a, out);
            if (b) n += qm__uc_decompose(b, out + n);
            return n;
        }
        if (c < cp) lo = mid + 1; else hi = mid;
    }
    out[0] = cp;
    return 1;
}

/* Primary composite of (a, b), or 0. comp: the tokenizer's sorted pair table. */
static uint32_t qm__uc_compose(const uint64_t *comp, size_t n_comp, uint32_t a, uint32_t b) {
    uint64_t key;
    size_t lo = 0, hi = n_comp;
    if (a - QM__HANGUL_L < QM__HANGUL_LN && b - QM__HANGUL_V < QM__HANGUL_VN)
        return QM__HANGUL_S + ((a - QM__HANGUL_L) * QM__HANGUL_VN + (b - QM__HANGUL_V)) * QM__HANGUL_TN;
    if (a - QM__HANGUL_S < QM__HANGUL_SN && (a - QM__HANGUL_S) % QM__HANGUL_TN == 0 &&
        b - QM__HANGUL_T - 1 < QM__HANGUL_TN - 1)
        return a + (b - QM__HANGUL_T);
    if (a >= QM__BADBYTE || b >= QM__BADBYTE) return 0;
    key = (QM__CAST(uint64_t, a) << 21) | b;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint64_t k = comp[mid] >> 21;
        if (k == key) return QM__CAST(uint32_t, comp[mid] & 0x1fffffu);
        if (k < key) lo = mid + 1; else hi = mid;
    }
    return 0;
}

/* ---- UTF-8 ------------------------------------------------------------------------------ */

/* Number of bytes of the sequence led by b (0: b cannot lead one), and the valid range of
   the second byte (the rest are 80..BF): the Unicode "well-formed" table. */
static int qm__utf8_lead(unsigned b, unsigned *lo2, unsigned *hi2) {
    *lo2 = 0x80; *hi2 = 0xBF;
    if (b < 0x80) return 1;
    if (b < 0xC2) return 0;
    if (b < 0xE0) return 2;
    if (b < 0xF0) {
        if (b == 0xE0) *lo2 = 0xA0;
        if (b == 0xED) *hi2 = 0x9F;
        return 3;
    }
    if (b < 0xF5) {
        if (b == 0xF0) *lo2 = 0x90;
        if (b == 0xF4) *hi2 = 0x8F;
        return 4;
    }
    return 0;
}

/* Decode one unit at s[0..n): a code point, or QM__BADBYTE + s[0] (1 byte) when s does not
   start a complete well-formed sequence. Returns the bytes consumed. */
static size_t qm__utf8_next(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned lo2, hi2;
    int len = qm__utf8_lead(s[0], &lo2, &hi2), i;
    uint32_t c;
    if (len == 1) { *cp = s[0]; return 1; }
    if (len == 0 || n < QM__CAST(size_t, len) || s[1] < lo2 || s[1] > hi2) { *cp = QM__BADBYTE + s[0]; return 1; }
    c = s[0] & (0x7Fu >> len);
    for (i = 1; i < len; i++) {
        if (i > 1 && (s[i] & 0xC0) != 0x80) { *cp = QM__BADBYTE + s[0]; return 1; }
        c = (c << 6) | (s[i] & 0x3Fu);
    }
    *cp = c;
    return QM__CAST(size_t, len);
}

/* Encode a unit (code point or bad byte) as UTF-8; returns the byte count. */
static size_t qm__utf8_put(uint32_t cp, unsigned char *o) {
    if (cp >= QM__BADBYTE) { o[0] = QM__CAST(unsigned char, cp - QM__BADBYTE); return 1; }
    if (cp < 0x80) { o[0] = QM__CAST(unsigned char, cp); return 1; }
    if (cp < 0x800) {
        o[0] = QM__CAST(unsigned char, 0xC0 | (cp >> 6));
        o[1] = QM__CAST(unsigned char, 0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = QM__CAST(unsigned char, 0xE0 | (cp >> 12));
        o[1] = QM__CAST(unsigned char, 0x80 | ((cp >> 6) & 0x3F));
        o[2] = QM__CAST(unsigned char, 0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = QM__CAST(unsigned char, 0xF0 | (cp >> 18));
    o[1] = QM__CAST(unsigned char, 0x80 | ((cp >> 12) & 0x3F));
    o[2] = QM__CAST(unsigned char, 0x80 | ((cp >> 6) & 0x3F));
    o[3] = QM__CAST(unsigned char, 0x80 | (cp & 0x3F));
    return 4;
}

/* Output that counts everything and stores what fits. */
typedef struct qm__sink {
    char *buf;
    size_t cap;
    size_t len;
} qm__sink;
static void qm__sink_put(qm__sink *k, const void *p, size_t n) {
    if (k->len < k->cap) memcpy(k->buf + k->len, p, QM__MIN(n, k->cap - k->len));
    k->len += n;
}
static void qm__sink_fffd(qm__sink *k) { qm__sink_put(k, "\xEF\xBF\xBD", 3); }

/* Lossy UTF-8, one byte at a time: complete characters go out, a valid prefix waits in s,
   a broken one becomes one U+FFFD (the maximal subpart rule of from_utf8_lossy). */
static void qm__utf8_feed(qm_utf8_stream *s, unsigned char b, qm__sink *k) {
    unsigned lo2, hi2;
    int need;
    for (;;) {
        if (s->n_pending == 0) {
            need = qm__utf8_lead(b, &lo2, &hi2);
            if (need == 1) qm__sink_put(k, &b, 1);
            else if (need == 0) qm__sink_fffd(k);
            else { s->pending[0] = b; s->n_pending = 1; }
            return;
        }
        need = qm__utf8_lead(s->pending[0], &lo2, &hi2);
        if (s->n_pending > 1) { lo2 = 0x80; hi2 = 0xBF; }
        if (need < 2 || s->n_pending >= need || b < lo2 || b > hi2) {
            /* b cannot continue the pending prefix: that prefix is one U+FFFD, b starts over */
            qm__sink_fffd(k);
            s->n_pending = 0;
            continue;
        }
        s->pending[s->n_pending++] = b;
        if (s->n_pending == need) {
            qm__sink_put(k, s->pending, QM__CAST(size_t, need));
            s->n_pending = 0;
        }
        return;
    }
}

QMDEF size_t qm_utf8_stream_push(qm_utf8_stream *s, const char *in, size_t n, char *out) {
    qm__sink k;
    size_t i;
    if (!s || !out || (!in && n)) return 0;
    if (s->n_pending < 0 || s->n_pending > 3) s->n_pending = 0; /* not zero-initialised */
    k.buf = out;
    k.cap = ~QM__CAST(size_t, 0); /* the caller sized out: 3 * n + 3 bytes always suffice */
    k.len = 0;
    for (i = 0; i < n; i++) qm__utf8_feed(s, QM__CAST(unsigned char, in[i]), &k);
    return k.len;
}

QMDEF size_t qm_utf8_stream_flush(qm_utf8_stream *s, char *out) {
    if (!s) return 0;
    if (s->n_pending > 0 && s->n_pending <= 3) {
        s->n_pending = 0;
        if (out) { memcpy(out, "\xEF\xBF\xBD", 3); return 3; }
        return 0;
    }
    s->n_pending = 0;
    return 0;
}

/* ---- the tokenizer -------------------------------------------------------------------- */

typedef struct qm__tok_pair {
    uint64_t key;  /* left id << 32 | right id; QM__PAIR_EMPTY for a free slot */
    int32_t rank;  /* index in tokenizer.ggml.merges */
    int32_t id;    /* the merged token */
} qm__tok_pair;
#define QM__PAIR_EMPTY (~QM__CAST(uint64_t, 0))

struct qm_tokenizer {
    int32_t n_vocab;
    char *text;            /* token texts back to back (the vocab's byte-level form) */
    uint32_t *text_off;    /* n_vocab + 1 */
    unsigned char *bytes;  /* the tokens' decoded bytes back to back */
    uint32_t *bytes_off;   /* n_vocab + 1 */
    uint8_t *type;
    int32_t *hash;         /* text -> id, open addressing, -1 = free */
    uint32_t hash_mask;
    qm__tok_pair *pairs;   /* (left, right) -> (rank, merged id) */
    uint32_t pair_mask;
    int32_t byte_tok[256]; /* the token of each single byte, or -1 */
    int32_t *special;      /* CONTROL / USER_DEFINED ids, by first byte, then longest first */
    int32_t special_at[257];
    int32_t bos, eos, eot, eom, pad;
    int32_t eog[16];
    int n_eog;
    uint64_t *comp;        /* primary composites: first << 42 | second << 21 | composite */
    size_t n_comp;
    uint64_t mem_bytes;    /* what the tables above take (counted by the model's memory cap) */
};

static uint32_t qm__tok_hash_str(const char *p, size_t n) {
    uint32_t h = 2166136261u; /* FNV-1a */
    size_t i;
    for (i = 0; i < n; i++) { h ^= QM__CAST(unsigned char, p[i]); h *= 16777619u; }
    return h;
}
static uint32_t qm__tok_hash_pair(uint64_t key) {
    return QM__CAST(uint32_t, (key * 0x9E3779B97F4A7C15ull) >> 32);
}

QMDEF int32_t qm_token_lookup(const qm_tokenizer *t, const char *text, size_t len) {
    uint32_t i;
    if (!t || (!text && len)) return -1;
    i = qm__tok_hash_str(text, len) & t->hash_mask;
    for (;; i = (i + 1) & t->hash_mask) {
        int32_t id = t->hash[i];
        if (id < 0) return -1;
        if (t->text_off[id + 1] - t->text_off[id] == len && memcmp(t->text + t->text_off[id], text, len) == 0)
            return id;
    }
}

static const qm__tok_pair *qm__tok_pair_find(const qm_tokenizer *t, int32_t a, int32_t b) {
    uint64_t key = (QM__CAST(uint64_t, QM__CAST(uint32_t, a)) << 32) | QM__CAST(uint32_t, b);
    uint32_t i = qm__tok_hash_pair(key) & t->pair_mask;
    for (;; i = (i + 1) & t->pair_mask) {
        if (t->pairs[i].key == key) return &t->pairs[i];
        if (t->pairs[i].key == QM__PAIR_EMPTY) return NULL;
    }
}

/* GPT-2's bytes_to_unicode: printable bytes stand for themselves, the other 68 are moved to
   U+0100.. in byte order. */
static uint32_t qm__byte_char(unsigned b) {
    unsigned i, n = 0;
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) return b;
    for (i = 0; i < b; i++)
        if (!((i >= 33 && i <= 126) || (i >= 161 && i <= 172) || i >= 174)) n++;
    return 256 + n;
}

static uint64_t qm__tokenizer_mem_bytes(const qm_tokenizer *t) { return t ? t->mem_bytes : 0; }

QMDEF void qm_tokenizer_free(qm_tokenizer *t) {
    if (!t) return;
    QM_FREE(t->text);
    QM_FREE(t->text_off);
    QM_FREE(t->bytes);
    QM_FREE(t->bytes_off);
    QM_FREE(t->type);
    QM_FREE(t->hash);
    QM_FREE(t->pairs);
    QM_FREE(t->special);
    QM_FREE(t->comp);
    QM_FREE(t);
}

static qm_result qm__tok_fail(qm_tokenizer *t, qm_result r) {
    qm_tokenizer_free(t);
    return r;
}

/* Find a string array (or an integer array when want_str is 0) key. */
static qm_result qm__tok_array(const qm_gguf *g, const char *key, int want_str, int64_t *idx,
                               uint64_t *count, qm_error *err) {
    qm_gguf_type at;
    *idx = qm_gguf_find_key(g, key);
    if (*idx < 0) return qm__err(err, QM_ERR_NOT_FOUND, "%s: key '%s' is missing", qm_gguf_path(g), key);
    at = qm_gguf_arr_type(g, *idx); /* QM_GGUF_TYPE_COUNT when not an array */
    if (want_str ? at != QM_GGUF_STRING
                 : !(at <= QM_GGUF_INT32 || at == QM_GGUF_UINT64 || at == QM_GGUF_INT64) || at == QM_GGUF_FLOAT32)
        return qm__err(err, QM_ERR_TYPE, "%s: key '%s': expected an array of %s", qm_gguf_path(g), key,
                       want_str ? "strings" : "integers");
    *count = qm_gguf_arr_count(g, *idx);
    return QM_OK;
}

/* An optional token id key: -1 when absent; an error when present but not a valid id. */
static qm_result qm__tok_opt_id(const qm_gguf *g, const char *key, int32_t n_vocab, int32_t *out,
                                qm_error *err) {
    int64_t v = 0;
    qm_result r;
    *out = -1;
    if (qm_gguf_find_key(g, key) < 0) return QM_OK;
    if ((r = qm_gguf_get_i64(g, key, &v, err))) return r;
    if (v < 0 || v >= n_vocab)
        return qm__err(err, QM_ERR_FORMAT, "%s: key '%s' = %lld: not a token id (the vocab has %d tokens)",
                       qm_gguf_path(g), key, QM__CAST(long long, v), QM__CAST(int, n_vocab));
    *out = QM__CAST(int32_t, v);
    return QM_OK;
}

typedef struct qm__tok_special_sort {
    unsigned char first;
    uint32_t len;
    int32_t id;
} qm__tok_special_sort;
static int qm__tok_special_cmp(const void *a, const void *b) {
    const qm__tok_special_sort *x = QM__CAST(const qm__tok_special_sort *, a);
    const qm__tok_special_sort *y = QM__CAST(const qm__tok_special_sort *, b);
    if (x->first != y->first) return x->first < y->first ? -1 : 1;
    if (x->len != y->len) return x->len > y->len ? -1 : 1; /* longest first */
    return x->id < y->id ? -1 : x->id > y->id;
}
static int qm__u64_cmp(const void *a, const void *b) {
    uint64_t x = *QM__CAST(const uint64_t *, a), y = *QM__CAST(const uint64_t *, b);
    return x < y ? -1 : x > y;
}

static void qm__tok_add_eog(qm_tokenizer *t, int32_t id) {
    int i;
    if (id < 0 || t->n_eog >= QM__CAST(int, sizeof(t->eog) / sizeof(t->eog[0]))) return;
    for (i = 0; i < t->n_eog; i++)
        if (t->eog[i] == id) return;
    t->eog[t->n_eog++] = id;
}

QMDEF qm_result qm_tokenizer_load(const qm_gguf *g, qm_tokenizer **out, qm_error *err) {
    static const char *const eog_texts[] = {
        "<|im_end|>", "<|endoftext|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>",
        "<|eot_id|>", "<|eom_id|>", "<|end|>", "<end_of_turn>"};
    char nbuf[80];
    qm_tokenizer *t;
    qm_str s;
    qm_result r;
    int64_t ki_tok, ki_type, ki_merges;
    uint64_t n_tok, n_type, n_merges, total, j;
    uint32_t hsize, psize;
    size_t n_special = 0, maxlen = 0, i;
    char *cat = NULL;
    qm__tok_special_sort *ss;
    int16_t byte_of[324]; /* byte-level character -> byte */

    if (!out) return qm__err(err, QM_ERR_INVALID_ARG, "qm_tokenizer_load: out is NULL");
    *out = NULL;
    if (!g) return qm__err(err, QM_ERR_INVALID_ARG, "qm_tokenizer_load: gguf is NULL");

    if ((r = qm_gguf_get_str(g, "tokenizer.ggml.model", &s, err))) return r;
    if (!(s.len == 4 && memcmp(s.ptr, "gpt2", 4) == 0))
        return qm__err(err, QM_ERR_UNSUPPORTED,
                       "%s: key 'tokenizer.ggml.model' is '%s': only 'gpt2' (byte-level BPE) is supported",
                       qm_gguf_path(g), qm__safe_name(s.ptr, s.len, nbuf, sizeof(nbuf)));
    if (qm_gguf_find_key(g, "tokenizer.ggml.pre") < 0)
        return qm__err(err, QM_ERR_NOT_FOUND,
                       "%s: key 'tokenizer.ggml.pre' is missing: the pre-tokenizer must be 'qwen2'",
                       qm_gguf_path(g));
    if ((r = qm_gguf_get_str(g, "tokenizer.ggml.pre", &s, err))) return r;
    if (!(s.len == 5 && memcmp(s.ptr, "qwen2", 5) == 0))
        return qm__err(err, QM_ERR_UNSUPPORTED,
                       "%s: key 'tokenizer.ggml.pre' is '%s': only the 'qwen2' pre-tokenizer is supported",
                       qm_gguf_path(g), qm__safe_name(s.ptr, s.len, nbuf, sizeof(nbuf)));

    if ((r = qm__tok_array(g, "tokenizer.ggml.tokens", 1, &ki_tok, &n_tok, err))) return r;
    if ((r = qm__tok_array(g, "tokenizer.ggml.token_type", 0, &ki_type, &n_type, err))) return r;
    if ((r = qm__tok_array(g, "tokenizer.ggml.merges", 1, &ki_merges, &n_merges, err))) return r;
    if (n_tok == 0 || n_tok > 0x3fffffff)
        return qm__err(err, QM_ERR_FORMAT, "%s: key 'tokenizer.ggml.tokens' has %llu entries: expected 1 to 2^30",
                       qm_gguf_path(g), QM__CAST(unsigned long long, n_tok));
    if (n_type != n_tok)
        return qm__err(err, QM_ERR_FORMAT,
                       "%s: key 'tokenizer.ggml.token_type' has %llu entries, but 'tokenizer.ggml.tokens' has %llu",
                       qm_gguf_path(g), QM__CAST(unsigned long long, n_type), QM__CAST(unsigned long long, n_tok));
    if (n_merges > 0x3fffffff)
        return qm__err(err, QM_ERR_FORMAT, "%s: key 'tokenizer.ggml.merges' has %llu entries: too many",
                       qm_gguf_path(g), QM__CAST(unsigned long long, n_merges));

    t = QM__ALLOC(qm_tokenizer, 1);
    if (!t) return qm__err(err, QM_ERR_OOM, "qm_tokenizer_load: out of memory");
    memset(t, 0, sizeof(*t));
    t->n_vocab = QM__CAST(int32_t, n_tok);

    /* token texts and types */
    total = 0;
    for (j = 0; j < n_tok; j++) {
        if (qm_gguf_arr_str(g, ki_tok, j, &s) != QM_OK || s.len == 0)
            return qm__tok_fail(t, qm__err(err, QM_ERR_FORMAT, "%s: key 'tokenizer.ggml.tokens': token %llu is empty",
                                           qm_gguf_path(g), QM__CAST(unsigned long long, j)));
        total += s.len;
        if (total > 0xffffffffu)
            return qm__tok_fail(t, qm__err(err, QM_ERR_FORMAT, "%s: key 'tokenizer.ggml.tokens': over 4 GiB of text",
                                           qm_gguf_path(g)));
        if (s.len > maxlen) maxlen = QM__CAST(size_t, s.len);
    }
    t->text = QM__ALLOC(char, total + 1);
    t->text_off = QM__ALLOC(uint32_t, n_tok + 1);
    t->bytes = QM__ALLOC(unsigned char, total + 1);
    t->bytes_off = QM__ALLOC(uint32_t, n_tok + 1);
    t->type = QM__ALLOC(uint8_t, n_tok);
    for (hsize = 16; hsize < 2 * n_tok; hsize *= 2) {}
    t->hash = QM__ALLOC(int32_t, hsize);
    for (psize = 16; psize < 2 * n_merges; psize *= 2) {}
    t->pairs = QM__ALLOC(qm__tok_pair, psize);
    cat = QM__ALLOC(char, maxlen + 1);
    if (!t->text || !t->text_off || !t->bytes || !t->bytes_off || !t->type || !t->hash || !t->pairs || !cat) {
        QM_FREE(cat);
        return qm__tok_fail(t, qm__err(err, QM_ERR_OOM, "qm_tokenizer_load: out of memory for %llu tokens",
                                       QM__CAST(unsigned long long, n_tok)));
    }
    t->hash_mask = hsize - 1;
    t->pair_mask = psize - 1;
    memset(t->hash, 0xff, sizeof(int32_t) * hsize);
    for (i = 0; i < psize; i++) t->pairs[i].key = QM__PAIR_EMPTY;

    for (i = 0; i < 324; i++) byte_of[i] = -1;
    for (i = 0; i < 256; i++) byte_of[qm__byte_char(QM__CAST(unsigned, i))] = QM__CAST(int16_t, i);
    total = 0;
    t->text_off[0] = 0;
    t->bytes_off[0] = 0;
    for (j = 0; j < n_tok; j++) {
        int64_t ty = 0;
        uint32_t h;
        size_t p, nb = 0;
        int mapped = 1;
        unsigned char *bo = t->bytes + t->bytes_off[j];
        qm_gguf_arr_str(g, ki_tok, j, &s);
        memcpy(t->text + total, s.ptr, QM__CAST(size_t, s.len));
        total += s.len;
        t->text_off[j + 1] = QM__CAST(uint32_t, total);
        if (qm_gguf_arr_i64(g, ki_type, j, &ty) != QM_OK || ty < 0 || ty > QM_TOKEN_BYTE) {
            QM_FREE(cat);
            return qm__tok_fail(t, qm__err(err, QM_ERR_FORMAT,
                                           "%s: key 'tokenizer.ggml.token_type': entry %llu is %lld, expected 0..6",
                                           qm_gguf_path(g), QM__CAST(unsigned long long, j), QM__CAST(long long, ty)));
        }
        t->type[j] = QM__CAST(uint8_t, ty);
        if (ty == QM_TOKEN_CONTROL || ty == QM_TOKEN_USER_DEFINED) n_special++;
        /* bytes: the byte-level characters mapped back; raw text if one is not in the map */
        for (p = 0; p < s.len;) {
            uint32_t cp;
            p += qm__utf8_next(QM__CAST(const unsigned char *, QM__CAST(const void *, s.ptr)) + p,
                               QM__CAST(size_t, s.len) - p, &cp);
            if (cp >= 324 || byte_of[cp] < 0) { mapped = 0; break; }
            bo[nb++] = QM__CAST(unsigned char, byte_of[cp]);
        }
        if (!mapped) { memcpy(bo, s.ptr, QM__CAST(size_t, s.len)); nb = QM__CAST(size_t, s.len); }
        t->bytes_off[j + 1] = t->bytes_off[j] + QM__CAST(uint32_t, nb);
        /* text -> id; the first of duplicate texts wins */
        h = qm__tok_hash_str(s.ptr, QM__CAST(size_t, s.len)) & t->hash_mask;
        for (;; h = (h + 1) & t->hash_mask) {
            int32_t o = t->hash[h];
            if (o < 0) { t->hash[h] = QM__CAST(int32_t, j); break; }
            if (t->text_off[o + 1] - t->text_off[o] == s.len && memcmp(t->text + t->text_off[o], s.ptr, QM__CAST(size_t, s.len)) == 0)
                break;
        }
    }

    /* single bytes */
    for (i = 0; i < 256; i++) {
        unsigned char u[4];
        size_t nu = qm__utf8_put(qm__byte_char(QM__CAST(unsigned, i)), u);
        t->byte_tok[i] = qm_token_lookup(t, QM__CAST(const char *, QM__CAST(void *, u)), nu);
    }

    /* merges: "left right", rank = index; a later duplicate overrides (as HF's map does) */
    for (j = 0; j < n_merges; j++) {
        size_t sp;
        int32_t a, b, m;
        uint64_t key;
        uint32_t h;
        qm_gguf_arr_str(g, ki_merges, j, &s);
        for (sp = 1; sp < s.len && s.ptr[sp] != ' '; sp++) {}
        if (s.len < 3 || sp >= s.len - 1 || s.len - 1 > maxlen) {
            QM_FREE(cat);
            return qm__tok_fail(t, qm__err(err, QM_ERR_FORMAT,
                                           "%s: key 'tokenizer.ggml.merges': entry %llu ('%s') is not two tokens separated by a space"
                                           " (that make a token)",
                                           qm_gguf_path(g), QM__CAST(unsigned long long, j),
                                           qm__safe_name(s.ptr, s.len, nbuf, sizeof(nbuf))));
        }
        a = qm_token_lookup(t, s.ptr, sp);
        b = qm_token_lookup(t, s.ptr + sp + 1, QM__CAST(size_t, s.len) - sp - 1);
        memcpy(cat, s.ptr, sp);
        memcpy(cat + sp, s.ptr + sp + 1, QM__CAST(size_t, s.len) - sp - 1);
        m = qm_token_lookup(t, cat, QM__CAST(size_t, s.len) - 1);
        if (a < 0 || b < 0 || m < 0) {
            QM_FREE(cat);
            return qm__tok_fail(t, qm__err(err, QM_ERR_FORMAT,
                                           "%s: key 'tokenizer.ggml.merges': entry %llu ('%s'): %s is not in the vocabulary",
                                           qm_gguf_path(g), QM__CAST(unsigned long long, j),
                                           qm__safe_name(s.ptr, s.len, nbuf, sizeof(nbuf)),
                                           a < 0 ? "the left part" : b < 0 ? "the right part" : "the merged token"));
        }
        key = (QM__CAST(uint64_t, QM__CAST(uint32_t, a)) << 32) | QM__CAST(uint32_t, b);
        h = qm__tok_hash_pair(key) & t->pair_mask;
        while (t->pairs[h].key != QM__PAIR_EMPTY && t->pairs[h].key != key) h = (h + 1) & t->pair_mask;
        t->pairs[h].key = key;
        t->pairs[h].rank = QM__CAST(int32_t, j);
        t->pairs[h].id = m;
    }
    QM_FREE(cat);

    /* special tokens, bucketed by first byte, longest first */
    t->special = QM__ALLOC(int32_t, n_special + 1);
    ss = QM__ALLOC(qm__tok_special_sort, n_special + 1);
    if (!t->special || !ss) {
        QM_FREE(ss);
        return qm__tok_fail(t, qm__err(err, QM_ERR_OOM, "qm_tokenizer_load: out of memory"));
    }
    n_special = 0;
    for (j = 0; j < n_tok; j++) {
        if (t->type[j] != QM_TOKEN_CONTROL && t->type[j] != QM_TOKEN_USER_DEFINED) continue;
        ss[n_special].first = QM__CAST(unsigned char, t->text[t->text_off[j]]);
        ss[n_special].len = t->text_off[j + 1] - t->text_off[j];
        ss[n_special].id = QM__CAST(int32_t, j);
        n_special++;
    }
    qsort(ss, n_special, sizeof(*ss), qm__tok_special_cmp);
    memset(t->special_at, 0, sizeof(t->special_at));
    for (i = 0; i < n_special; i++) {
        t->special[i] = ss[i].id;
        t->special_at[ss[i].first + 1]++;
    }
    for (i = 0; i < 256; i++) t->special_at[i + 1] += t->special_at[i];
    QM_FREE(ss);

    /* NFC composition pairs */
    for (i = 0; i < sizeof(qm__uc_decomp) / sizeof(qm__uc_decomp[0]); i++)
        if (qm__uc_decomp[i] >> 63) t->n_comp++;
    t->comp = QM__ALLOC(uint64_t, t->n_comp + 1);
    if (!t->comp) return qm__tok_fail(t, qm__err(err, QM_ERR_OOM, "qm_tokenizer_load: out of memory"));
    t->n_comp = 0;
    for (i = 0; i < sizeof(qm__uc_decomp) / sizeof(qm__uc_decomp[0]); i++) {
        uint64_t e = qm__uc_decomp[i];
        if (e >> 63) t->comp[t->n_comp++] = ((e & 0x3ffffffffffull) << 21) | ((e >> 42) & 0x1fffffu);
    }
    qsort(t->comp, t->n_comp, sizeof(uint64_t), qm__u64_cmp);
    t->mem_bytes = sizeof(*t) + 2 * (total + 1) + 2 * sizeof(uint32_t) * (n_tok + 1) + n_tok +
                   sizeof(int32_t) * (uint64_t)hsize + sizeof(qm__tok_pair) * (uint64_t)psize +
                   sizeof(int32_t) * (n_special + 1) + sizeof(uint64_t) * (t->n_comp + 1);

    /* ids and the end-of-generation set */
    if ((r = qm__tok_opt_id(g, "tokenizer.ggml.bos_token_id", t->n_vocab, &t->bos, err)) ||
        (r = qm__tok_opt_id(g, "tokenizer.ggml.eos_token_id", t->n_vocab, &t->eos, err)) ||
        (r = qm__tok_opt_id(g, "tokenizer.ggml.eot_token_id", t->n_vocab, &t->eot, err)) ||
        (r = qm__tok_opt_id(g, "tokenizer.ggml.eom_token_id", t->n_vocab, &t->eom, err)) ||
        (r = qm__tok_opt_id(g, "tokenizer.ggml.padding_token_id", t->n_vocab, &t->pad, err)))
        return qm__tok_fail(t, r);
    qm__tok_add_eog(t, t->eos);
    qm__tok_add_eog(t, t->eot);
    qm__tok_add_eog(t, t->eom);
    for (i = 0; i < sizeof(eog_texts) / sizeof(eog_texts[0]); i++)
        qm__tok_add_eog(t, qm_token_lookup(t, eog_texts[i], strlen(eog_texts[i])));
    *out = t;
    return QM_OK;
}

QMDEF int32_t qm_tokenizer_n_vocab(const qm_tokenizer *t) { return t ? t->n_vocab : 0; }

QMDEF qm_str qm_token_text(const qm_tokenizer *t, int32_t id) {
    qm_str s;
    s.ptr = NULL;
    s.len = 0;
    if (t && id >= 0 && id < t->n_vocab) {
        s.ptr = t->text + t->text_off[id];
        s.len = t->text_off[id + 1] - t->text_off[id];
    }
    return s;
}

QMDEF int qm_token_type(const qm_tokenizer *t, int32_t id) {
    if (!t || id < 0 || id >= t->n_vocab) return QM_ERR_INVALID_ARG;
    return t->type[id];
}

QMDEF int qm_token_to_bytes(const qm_tokenizer *t, int32_t id, char *buf, int cap) {
    uint32_t n;
    if (!t || id < 0 || id >= t->n_vocab || cap < 0 || (!buf && cap > 0)) return QM_ERR_INVALID_ARG;
    n = t->bytes_off[id + 1] - t->bytes_off[id];
    if (n > INT_MAX) return QM_ERR_BUFFER_SMALL;
    if (cap > 0) memcpy(buf, t->bytes + t->bytes_off[id], QM__MIN(n, QM__CAST(uint32_t, cap)));
    return QM__CAST(int, n);
}

QMDEF int qm_token_is_eog(const qm_tokenizer *t, int32_t id) {
    int i;
    if (!t || id < 0) return 0;
    for (i = 0; i < t->n_eog; i++)
        if (t->eog[i] == id) return 1;
    return 0;
}

/* eos: tokenizer.ggml.eos_token_id, else eot, else "<|endoftext|>", else -1. */
QMDEF int32_t qm_token_eos(const qm_tokenizer *t) {
    if (!t) return -1;
    if (t->eos >= 0) return t->eos;
    if (t->eot >= 0) return t->eot;
    return qm_token_lookup(t, "<|endoftext|>", 13);
}
QMDEF int32_t qm_token_bos(const qm_tokenizer *t) { return t ? t->bos : -1; }

QMDEF int64_t qm_detokenize(const qm_tokenizer *t, const int32_t *ids, int n, char *buf, size_t cap,
                            int flags) {
    qm_utf8_stream st;
    qm__sink k;
    int i;
    if (!t || n < 0 || (!ids && n > 0) || (!buf && cap > 0)) return QM_ERR_INVALID_ARG;
    for (i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= t->n_vocab) return QM_ERR_INVALID_ARG;
    st.n_pending = 0;
    k.buf = buf;
    k.cap = cap;
    k.len = 0;
    for (i = 0; i < n; i++) {
        uint32_t p;
        int ty = t->type[ids[i]];
        if (ty == QM_TOKEN_UNUSED || (ty == QM_TOKEN_CONTROL && (flags & QM_DETOK_SKIP_SPECIAL))) continue;
        for (p = t->bytes_off[ids[i]]; p < t->bytes_off[ids[i] + 1]; p++) qm__utf8_feed(&st, t->bytes[p], &k);
    }
    if (st.n_pending) qm__sink_fffd(&k);
    if (k.len < cap) buf[k.len] = 0;
    return QM__CAST(int64_t, k.len);
}

/* ---- encoding ----------------------------------------------------------------------------- */

typedef struct qm__bpe_sym {
    int32_t id, prev, next, len;
} qm__bpe_sym;
typedef struct qm__bpe_cand {
    int32_t rank, pos, id;
} qm__bpe_cand;

/* Per-call buffers, grown as needed. */
typedef struct qm__tok_work {
    uint32_t *units;  size_t units_cap;
    uint32_t *nfc;    size_t nfc_cap;
    uint8_t *ccc;     size_t ccc_cap;
    unsigned char *bytes; size_t bytes_cap;
    qm__bpe_sym *sym; size_t sym_cap;
    qm__bpe_cand *heap; size_t heap_cap;
    int32_t *ids;
    int cap;
    int64_t count;
} qm__tok_work;

/* Grow the buffer *pp (any T *, passed by address) to hold need elements of elem bytes each.
   Returns 0 when out of memory (the old buffer is kept, so it is still freed). */
static int qm__grow(void *pp, size_t *cap, size_t elem, size_t need) {
    void *p, *q;
    size_t c = *cap ? *cap : 64;
    memcpy(&p, pp, sizeof(p));
    if (need <= *cap && p) return 1;
    while (c < need) {
        if (c > (~QM__CAST(size_t, 0)) / 2 / elem) return 0;
        c *= 2;
    }
    q = QM_REALLOC(p, c * elem);
    if (!q) return 0;
    memcpy(pp, &q, sizeof(q));
    *cap = c;
    return 1;
}

static void qm__tok_emit(qm__tok_work *w, int32_t id) {
    if (w->count < w->cap) w->ids[w->count] = id;
    w->count++;
}

/* Heap of merge candidates: smallest rank first, then leftmost. */
static int qm__cand_less(const qm__bpe_cand *a, const qm__bpe_cand *b) {
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}
static void qm__heap_push(qm__bpe_cand *h, size_t *n, qm__bpe_cand c) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!qm__cand_less(&c, &h[up])) break;
        h[i] = h[up];
        i = up;
    }
    h[i] = c;
}
static qm__bpe_cand qm__heap_pop(qm__bpe_cand *h, size_t *n) {
    qm__bpe_cand top = h[0], last = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && qm__cand_less(&h[c + 1], &h[c])) c++;
        if (!qm__cand_less(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (*n) h[i] = last;
    return top;
}

static void qm__bpe_try(const qm_tokenizer *t, qm__bpe_sym *sym, int32_t pos, qm__bpe_cand *heap, size_t *nh) {
    const qm__tok_pair *p;
    qm__bpe_cand c;
    if (pos < 0 || sym[pos].next < 0) return;
    p = qm__tok_pair_find(t, sym[pos].id, sym[sym[pos].next].id);
    if (!p) return;
    c.rank = p->rank;
    c.pos = pos;
    c.id = p->id;
    qm__heap_push(heap, nh, c);
}

/* BPE of one pre-token (its UTF-8 bytes), as HF's BPE::merge_word does it. */
static qm_result qm__bpe_word(const qm_tokenizer *t, qm__tok_work *w, const unsigned char *b, size_t n) {
    qm__bpe_sym *sym;
    size_t i, nh = 0;
    int32_t ns = 0, pos;
    if (n == 1) {
        if (t->byte_tok[b[0]] >= 0) qm__tok_emit(w, t->byte_tok[b[0]]);
        return QM_OK;
    }
    if (n > 0x7fffffff / 3) return QM_ERR_INVALID_ARG;
    if (!qm__grow(&w->sym, &w->sym_cap, sizeof(qm__bpe_sym), n) || !qm__grow(&w->heap, &w->heap_cap, sizeof(qm__bpe_cand), 3 * n))
        return QM_ERR_OOM;
    sym = w->sym;
    for (i = 0; i < n; i++) { /* a byte without a token is dropped, as HF drops unknown chars */
        if (t->byte_tok[b[i]] < 0) continue;
        sym[ns].id = t->byte_tok[b[i]];
        sym[ns].prev = ns - 1;
        sym[ns].next = -1;
        sym[ns].len = 1;
        if (ns > 0) sym[ns - 1].next = ns;
        ns++;
    }
    for (pos = 0; pos + 1 < ns; pos++) qm__bpe_try(t, sym, pos, w->heap, &nh);
    while (nh) {
        qm__bpe_cand top = qm__heap_pop(w->heap, &nh);
        int32_t right;
        const qm__tok_pair *p;
        if (sym[top.pos].len == 0 || sym[top.pos].next < 0) continue;
        right = sym[top.pos].next;
        p = qm__tok_pair_find(t, sym[top.pos].id, sym[right].id);
        if (!p || p->id != top.id) continue; /* stale: the pair here changed */
        sym[top.pos].id = top.id;
        sym[top.pos].len += sym[right].len;
        sym[top.pos].next = sym[right].next;
        sym[right].len = 0;
        if (sym[right].next >= 0) sym[sym[right].next].prev = top.pos;
        qm__bpe_try(t, sym, sym[top.pos].prev, w->heap, &nh);
        qm__bpe_try(t, sym, top.pos, w->heap, &nh);
    }
    for (pos = ns ? 0 : -1; pos >= 0; pos = sym[pos].next) qm__tok_emit(w, sym[pos].id);
    return QM_OK;
}

/* End of the pre-token that starts at u[i] (Qwen2's regex, alternatives in order):
   (?i:'s|'t|'re|'ve|'m|'ll|'d) | [^\r\n\p{L}\p{N}]?\p{L}+ | \p{N} | ' '?[^\s\p{L}\p{N}]+[\r\n]*
   | \s*[\r\n]+ | \s+(?!\S) | \s+ */
static size_t qm__pretok_next(const uint32_t *u, size_t n, size_t i) {
    uint32_t c = u[i];
    int cl = qm__uc_class_of(c);
    size_t j, k;
    if (c == '\'' && i + 1 < n) {
        /* case-insensitive as Oniguruma folds: ASCII, and U+017F (long s) folds to s */
        uint32_t a = u[i + 1] == 0x17F ? 's' : (u[i + 1] < 0x80 ? (u[i + 1] | 0x20) : 0);
        uint32_t b = i + 2 < n && u[i + 2] < 0x80 ? (u[i + 2] | 0x20) : 0;
        if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
    }
    if (cl == QM__CLS_L || (c != '\r' && c != '\n' && cl != QM__CLS_N && i + 1 < n && qm__uc_class_of(u[i + 1]) == QM__CLS_L)) {
        for (j = cl == QM__CLS_L ? i + 1 : i + 2; j < n && qm__uc_class_of(u[j]) == QM__CLS_L; j++) {}
        return j;
    }
    if (cl == QM__CLS_N) return i + 1;
    k = (c == ' ' && i + 1 < n) ? i + 1 : i;
    if (qm__uc_class_of(u[k]) == QM__CLS_OTHER) {
        for (j = k + 1; j < n && qm__uc_class_of(u[j]) == QM__CLS_OTHER; j++) {}
        while (j < n && (u[j] == '\r' || u[j] == '\n')) j++;
        return j;
    }
    /* c is white space */
    for (j = i + 1; j < n && qm__uc_class_of(u[j]) == QM__CLS_W; j++) {}
    for (k = j; k > i; k--)
        if (u[k - 1] == '\r' || u[k - 1] == '\n') return k;
    if (j == n || j - i == 1) return j;
    return j - 1;
}

/* NFC of u[0..n). *out is u itself when nothing can change. */
static qm_result qm__nfc(const qm_tokenizer *t, qm__tok_work *w, const uint32_t *u, size_t n,
                         const uint32_t **out, size_t *nout) {
    size_t i, nd = 0, o, starter;
    unsigned last;
    uint32_t *d;
    uint8_t *cc;
    for (i = 0; i < n; i++)
        if (qm__uc_nfc_of(u[i])) break;
    if (i == n) { *out = u; *nout = n; return QM_OK; }
    if (n > (~QM__CAST(size_t, 0)) / 16 || !qm__grow(&w->nfc, &w->nfc_cap, sizeof(uint32_t), 4 * n) ||
        !qm__grow(&w->ccc, &w->ccc_cap, sizeof(uint8_t), 4 * n))
        return QM_ERR_OOM;
    d = w->nfc;
    cc = w->ccc;
    for (i = 0; i < n; i++) nd += qm__uc_decompose(u[i], d + nd);
    for (i = 0; i < nd; i++) cc[i] = QM__CAST(uint8_t, qm__uc_ccc(d[i]));
    for (i = 1; i < nd; i++) { /* canonical order: stable sort of each run of non-starters */
        size_t j;
        for (j = i; j > 0 && cc[j] != 0 && cc[j - 1] > cc[j]; j--) {
            uint32_t x = d[j]; uint8_t y = cc[j];
            d[j] = d[j - 1]; cc[j] = cc[j - 1];
            d[j - 1] = x; cc[j - 1] = y;
        }
    }
    /* canonical composition, in place */
    o = 1;
    starter = 0;
    last = cc[0] ? 256u : 0u;
    for (i = 1; i < nd; i++) {
        uint32_t p = qm__uc_compose(t->comp, t->n_comp, d[starter], d[i]);
        if (p && (last < cc[i] || last == 0)) { d[starter] = p; continue; }
        if (cc[i] == 0) starter = o;
        last = cc[i];
        d[o++] = d[i];
    }
    *out = d;
    *nout = nd ? o : 0;
    return QM_OK;
}

/* Tokenize plain text (no added-token matching here). */
static qm_result qm__tok_text(const qm_tokenizer *t, qm__tok_work *w, const unsigned char *s, size_t len) {
    size_t n = 0, i, nn, p;
    const uint32_t *u;
    qm_result r;
    if (!len) return QM_OK;
    if (!qm__grow(&w->units, &w->units_cap, sizeof(uint32_t), len)) return QM_ERR_OOM;
    for (i = 0; i < len;) i += qm__utf8_next(s + i, len - i, &w->units[n++]);
    if ((r = qm__nfc(t, w, w->units, n, &u, &nn))) return r;
    for (p = 0; p < nn;) {
        size_t e = qm__pretok_next(u, nn, p), nb = 0;
        if (!qm__grow(&w->bytes, &w->bytes_cap, 1, 4 * (e - p))) return QM_ERR_OOM;
        for (i = p; i < e; i++) nb += qm__utf8_put(u[i], w->bytes + nb);
        if ((r = qm__bpe_word(t, w, w->bytes, nb))) return r;
        p = e;
    }
    return QM_OK;
}

/* Texts over INT_MAX / 4 bytes (512 MiB) are refused (QM_ERR_INVALID_ARG), so that the id
   count always fits the int result. */
QMDEF int qm_tokenize(const qm_tokenizer *t, const char *text, size_t len, int32_t *ids, int cap, int flags) {
    qm__tok_work w;
    const unsigned char *s = QM__CAST(const unsigned char *, QM__CAST(const void *, text));
    size_t start = 0, i;
    qm_result r = QM_OK;
    if (!t || (!text && len) || cap < 0 || (!ids && cap > 0)) return QM_ERR_INVALID_ARG;
    if (len > QM__CAST(size_t, INT_MAX / 4)) return QM_ERR_INVALID_ARG;
    if (len == 0) return 0;
    memset(&w, 0, sizeof(w));
    w.ids = ids;
    w.cap = cap;
    if (flags & QM_TOKENIZE_SPECIAL) {
        for (i = 0; i < len && !r; i++) {
            int32_t a = t->special_at[s[i]], b = t->special_at[s[i] + 1], m = -1;
            uint32_t ml = 0;
            for (; a < b; a++) { /* longest first */
                int32_t id = t->special[a];
                uint32_t l = t->text_off[id + 1] - t->text_off[id];
                if (l <= len - i && memcmp(t->text + t->text_off[id], s + i, l) == 0) { m = id; ml = l; break; }
            }
            if (m < 0) continue;
            r = qm__tok_text(t, &w, s + start, i - start);
            qm__tok_emit(&w, m);
            start = i + ml;
            i = start - 1;
        }
    }
    if (!r) r = qm__tok_text(t, &w, s + start, len - start);
    QM_FREE(w.units);
    QM_FREE(w.nfc);
    QM_FREE(w.ccc);
    QM_FREE(w.bytes);
    QM_FREE(w.sym);
    QM_FREE(w.heap);
    if (r) return r;
    if (w.count > INT_MAX) return QM_ERR_INVALID_ARG;
    return QM__CAST(int, w.count);
}

/* ===================================================================================== */
/*  6. generate                                                                          */
/* ===================================================================================== */

/* ------------------------------------------------------------------------------------- */
/*  Chat templates                                                                       */
/*  Hand-written renderers that give, byte for byte, what the real jinja templates give  */
/*  (with Python jinja2's semantics) for messages made of a role and a string content:   */
/*    QM_CHAT_QWEN3        the Qwen3 hybrid-thinking template (Qwen3-30B-A3B, ...)       */
/*    QM_CHAT_QWEN3_CODER  the Qwen3-Coder template                                      */
/*    QM_CHAT_CHATML       plain ChatML                                                  */
/*  Tool definitions and assistant tool_calls are not part of qm_chat_message, so the    */
/*  parts of the templates that render them are not here. tests/data/chat_renders.txt    */
/*  (made by tools/render_ref.mjs) holds the reference renders the tests compare with.   */
/* ------------------------------------------------------------------------------------- */

/* Find needle in the first len bytes of hay (hay need not be NUL-terminated). */
static const char *qm__chat_find(const char *hay, size_t len, const char *needle) {
    size_t n = strlen(needle), i;
    if (n == 0) return hay;
    if (len < n) return NULL;
    for (i = 0; i + n <= len; i++)
        if (hay[i] == needle[0] && memcmp(hay + i, needle, n) == 0) return hay + i;
    return NULL;
}

QMDEF qm_chat_family qm_chat_detect(const char *tmpl, size_t len, int *known) {
    int is_known = 1;
    qm_chat_family fam = QM_CHAT_CHATML;
    if (!tmpl || len == 0) {
        is_known = 0;
    } else if (qm__chat_find(tmpl, len, "<tool_call>") && qm__chat_find(tmpl, len, "<function=") &&
               qm__chat_find(tmpl, len, "<parameter=") && !qm__chat_find(tmpl, len, "<think>")) {
        /* Qwen3-Coder: XML tool calls (<tool_call><function=..><parameter=..>), no <think> */
        fam = QM_CHAT_QWEN3_CODER;
    } else if (qm__chat_find(tmpl, len, "<think>") && qm__chat_find(tmpl, len, "enable_thinking")) {
        /* Qwen3 hybrid thinking: <think> blocks and the enable_thinking switch */
        fam = QM_CHAT_QWEN3;
    } else if (!qm__chat_find(tmpl, len, "<|im_start|>")) {
        is_known = 0; /* not ChatML at all: fall back to it, and let the caller warn */
    }
    if (known) *known = is_known;
    return fam;
}

/* The output: bytes past cap are counted but not written. */
typedef struct qm__chat_out {
    char *buf;
    size_t cap;
    size_t len;
} qm__chat_out;

static void qm__chat_put(qm__chat_out *o, const char *s, size_t n) {
    if (o->len < o->cap) {
        size_t room = o->cap - o->len;
        memcpy(o->buf + o->len, s, n < room ? n : room);
    }
    o->len += n;
}
static void qm__chat_puts(qm__chat_out *o, const char *s) { qm__chat_put(o, s, strlen(s)); }

/* A view of a string: [p, p + n). */
typedef struct qm__chat_span {
    const char *p;
    size_t n;
} qm__chat_span;

static qm__chat_span qm__chat_span_of(const char *s) {
    qm__chat_span r;
    r.p = s;
    r.n = strlen(s);
    return r;
}
/* Python's s.lstrip('\n') / s.rstrip('\n'). */
static qm__chat_span qm__chat_lstrip_nl(qm__chat_span s) {
    while (s.n && s.p[0] == '\n') { s.p++; s.n--; }
    return s;
}
static qm__chat_span qm__chat_rstrip_nl(qm__chat_span s) {
    while (s.n && s.p[s.n - 1] == '\n') s.n--;
    return s;
}
/* Offset of the first / last occurrence of needle in s, or -1. */
static ptrdiff_t qm__chat_first(qm__chat_span s, const char *needle) {
    const char *f = qm__chat_find(s.p, s.n, needle);
    return f ? f - s.p : -1;
}
static ptrdiff_t qm__chat_last(qm__chat_span s, const char *needle) {
    size_t n = strlen(needle), i;
    if (s.n < n) return -1;
    for (i = s.n - n + 1; i-- > 0;)
        if (memcmp(s.p + i, needle, n) == 0) return QM__CAST(ptrdiff_t, i);
    return -1;
}
static int qm__chat_starts(const char *s, const char *prefix) {
    return strncmp(s, prefix, strlen(prefix)) == 0;
}
static int qm__chat_ends(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

enum { QM__CHAT_ROLE_SYSTEM = 0, QM__CHAT_ROLE_USER = 1, QM__CHAT_ROLE_ASSISTANT = 2, QM__CHAT_ROLE_TOOL = 3 };

static int qm__chat_role(const char *role) {
    if (strcmp(role, "system") == 0) return QM__CHAT_ROLE_SYSTEM;
    if (strcmp(role, "user") == 0) return QM__CHAT_ROLE_USER;
    if (strcmp(role, "assistant") == 0) return QM__CHAT_ROLE_ASSISTANT;
    if (strcmp(role, "tool") == 0) return QM__CHAT_ROLE_TOOL;
    return -1;
}

/* "<|im_start|>ROLE\nCONTENT<|im_end|>\n" */
static void qm__chat_block(qm__chat_out *o, const char *role, const char *content) {
    qm__chat_puts(o, "<|im_start|>");
    qm__chat_puts(o, role);
    qm__chat_puts(o, "\n");
    qm__chat_puts(o, content);
    qm__chat_puts(o, "<|im_end|>\n");
}

static void qm__chat_chatml(qm__chat_out *o, const qm_chat_message *m, int n, int add_gen) {
    int i;
    for (i = 0; i < n; i++) qm__chat_block(o, m[i].role, m[i].content);
    if (add_gen) qm__chat_puts(o, "<|im_start|>assistant\n");
}

/* Qwen3 (hybrid thinking). What the template does, for role + content messages:
   - a system message first is rendered first; later system messages like user ones;
   - last_query_index: the last user message that is not a wrapped tool response
     ("<tool_response>...</tool_response>"), else the last message;
   - an assistant message is split at "</think>": the reasoning is what is between the last
     "<think>" before the first "</think>" and that "</think>", the answer what follows the
     last "</think>" (newlines trimmed as below). Assistant turns up to last_query_index lose
     their reasoning; later ones keep it as "<think>\n...\n</think>\n\n", and the very last
     message always gets that block, empty or not;
   - consecutive tool messages share one user turn, each wrapped in <tool_response>;
   - enable_thinking == 0 adds an empty think block after the generation prompt. */
static void qm__chat_qwen3(qm__chat_out *o, const qm_chat_message *m, const int *roles, int n,
                           int add_gen, int enable_thinking) {
    int i, last_query = n - 1;
    if (n > 0 && roles[0] == QM__CHAT_ROLE_SYSTEM) qm__chat_block(o, "system", m[0].content);
    for (i = n - 1; i >= 0; i--) {
        if (roles[i] == QM__CHAT_ROLE_USER && !(qm__chat_starts(m[i].content, "<tool_response>") &&
                                            qm__chat_ends(m[i].content, "</tool_response>"))) {
            last_query = i;
            break;
        }
    }
    for (i = 0; i < n; i++) {
        int r = roles[i];
        if (r == QM__CHAT_ROLE_USER || (r == QM__CHAT_ROLE_SYSTEM && i > 0)) {
            qm__chat_block(o, m[i].role, m[i].content);
        } else if (r == QM__CHAT_ROLE_ASSISTANT) {
            qm__chat_span content = qm__chat_span_of(m[i].content), reasoning;
            ptrdiff_t close = qm__chat_first(content, "</think>");
            reasoning.p = content.p;
            reasoning.n = 0;
            if (close >= 0) {
                /* reasoning = content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') */
                ptrdiff_t open;
                reasoning.n = QM__CAST(size_t, close);
                reasoning = qm__chat_rstrip_nl(reasoning);
                open = qm__chat_last(reasoning, "<think>");
                if (open >= 0) {
                    reasoning.p += open + 7;
                    reasoning.n -= QM__CAST(size_t, open) + 7;
                }
                reasoning = qm__chat_lstrip_nl(reasoning);
                /* content = content.split('</think>')[-1].lstrip('\n') */
                {
                    ptrdiff_t last = qm__chat_last(content, "</think>");
                    content.p += last + 8;
                    content.n -= QM__CAST(size_t, last) + 8;
                    content = qm__chat_lstrip_nl(content);
                }
            }
            qm__chat_puts(o, "<|im_start|>assistant\n");
            if (i > last_query && (i == n - 1 || reasoning.n > 0)) {
                reasoning = qm__chat_rstrip_nl(qm__chat_lstrip_nl(reasoning));
                qm__chat_puts(o, "<think>\n");
                qm__chat_put(o, reasoning.p, reasoning.n);
                qm__chat_puts(o, "\n</think>\n\n");
                content = qm__chat_lstrip_nl(content);
            }
            qm__chat_put(o, content.p, content.n);
            qm__chat_puts(o, "<|im_end|>\n");
        } else if (r == QM__CHAT_ROLE_TOOL) {
            if (i == 0 || roles[i - 1] != QM__CHAT_ROLE_TOOL) qm__chat_puts(o, "<|im_start|>user");
            qm__chat_puts(o, "\n<tool_response>\n");
            qm__chat_puts(o, m[i].content);
            qm__chat_puts(o, "\n</tool_response>");
            if (i == n - 1 || roles[i + 1] != QM__CHAT_ROLE_TOOL) qm__chat_puts(o, "<|im_end|>\n");
        }
    }
    if (add_gen) {
        qm__chat_puts(o, "<|im_start|>assistant\n");
        if (!enable_thinking) qm__chat_puts(o, "<think>\n\n</think>\n\n");
    }
}

/* Qwen3-Coder. A system message first is rendered first; the others are rendered in order as
   ChatML blocks (assistant content verbatim: no <think> handling), except tool messages:
   a run of them shares one user turn, each as "<tool_response>\n...\n</tool_response>\n".
   As in the template, the user turn is opened only when the tool message has a predecessor
   among the messages after that first system message (a leading tool message has none). */
static void qm__chat_coder(qm__chat_out *o, const qm_chat_message *m, const int *roles, int n,
                           int add_gen) {
    int i, first = 0;
    if (n > 0 && roles[0] == QM__CHAT_ROLE_SYSTEM) {
        qm__chat_block(o, "system", m[0].content);
        first = 1;
    }
    for (i = first; i < n; i++) {
        if (roles[i] != QM__CHAT_ROLE_TOOL) {
            qm__chat_block(o, m[i].role, m[i].content);
            continue;
        }
        if (i > first && roles[i - 1] != QM__CHAT_ROLE_TOOL) qm__chat_puts(o, "<|im_start|>user\n");
        qm__chat_puts(o, "<tool_response>\n");
        qm__chat_puts(o, m[i].content);
        qm__chat_puts(o, "\n</tool_response>\n");
        if (i == n - 1 || roles[i + 1] != QM__CHAT_ROLE_TOOL) qm__chat_puts(o, "<|im_end|>\n");
    }
    if (add_gen) qm__chat_puts(o, "<|im_start|>assistant\n");
}

QMDEF int64_t qm_chat_render(qm_chat_family fam, const qm_chat_message *msgs, int n_msgs,
                             int add_generation_prompt, int enable_thinking, char *buf,
                             size_t cap) {
    qm__chat_out o;
    int roles_small[64];
    int *roles = roles_small;
    int i;
    if (n_msgs < 0 || (n_msgs > 0 && !msgs) || (cap > 0 && !buf)) return QM_ERR_INVALID_ARG;
    if (fam != QM_CHAT_CHATML && fam != QM_CHAT_QWEN3 && fam != QM_CHAT_QWEN3_CODER)
        return QM_ERR_INVALID_ARG;
    for (i = 0; i < n_msgs; i++) {
        if (!msgs[i].role || !msgs[i].content || qm__chat_role(msgs[i].role) < 0)
            return QM_ERR_INVALID_ARG;
    }
    if (n_msgs > QM__CAST(int, sizeof(roles_small) / sizeof(roles_small[0]))) {
        roles = QM__ALLOC(int, n_msgs);
        if (!roles) return QM_ERR_OOM;
    }
    for (i = 0; i < n_msgs; i++) roles[i] = qm__chat_role(msgs[i].role);
    o.buf = buf;
    o.cap = cap;
    o.len = 0;
    switch (fam) {
    case QM_CHAT_QWEN3:
        qm__chat_qwen3(&o, msgs, roles, n_msgs, add_generation_prompt, enable_thinking);
        break;
    case QM_CHAT_QWEN3_CODER: qm__chat_coder(&o, msgs, roles, n_msgs, add_generation_prompt); break;
    default: qm__chat_chatml(&o, msgs, n_msgs, add_generation_prompt); break;
    }
    if (roles != roles_small) QM_FREE(roles);
    if (o.len < cap) buf[o.len] = 0;
    return QM__CAST(int64_t, o.len);
}
/* ------------------------------------------------------------------------------------- */
/*  Sampler                                                                              */
/*  temperature <= 0: greedy (argmax, the lowest id on ties). Otherwise llama.cpp's      */
/*  order: top-k, top-p, min-p (all three on the logits at temperature 1; top-p's        */
/*  probabilities renormalised over what top-k kept), then temperature, softmax and a    */
/*  draw from a seeded xoshiro256** generator (same seed, same logits: same tokens).     */
/*  No sort: top-k keeps a k-entry heap in one pass over the logits (O(n) plus rare      */
/*  heap updates; O(n log k) at worst), top-p is a quickselect-style partition by        */
/*  probability mass (O(n) expected). The scratch is allocated once, in                  */
/*  qm_sampler_create. Ties between equal logits go to the lower token id, so the        */
/*  truncated sets are well defined. NaN logits are never drawn; +inf logits share all   */
/*  the probability; when every logit is -inf they are all equally likely.               */
/* ------------------------------------------------------------------------------------- */

typedef struct qm__smp_cand {
    float v;   /* logit */
    float w;   /* exp(v - max), at temperature 1 (top-p only) */
    int32_t i; /* token id */
} qm__smp_cand;

struct qm_sampler {
    qm_sampler_params p;
    int n_vocab;
    uint64_t rng[4]; /* xoshiro256** state */
    qm__smp_cand *cand; /* n_vocab entries; NULL for a greedy sampler */
};

static uint64_t qm__smp_splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static uint64_t qm__smp_rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
static uint64_t qm__smp_xoshiro(uint64_t *s) {
    uint64_t r = qm__smp_rotl64(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = qm__smp_rotl64(s[3], 45);
    return r;
}

QMDEF qm_result qm_sampler_create(const qm_sampler_params *p, int n_vocab, qm_sampler **out) {
    qm_sampler *s;
    qm_sampler_params zero;
    uint64_t sm;
    int k;
    if (!out) return QM_ERR_INVALID_ARG;
    *out = NULL;
    memset(&zero, 0, sizeof(zero));
    if (!p) p = &zero;
    if (n_vocab <= 0 || p->top_k < 0) return QM_ERR_INVALID_ARG;
    if (p->temperature != p->temperature || p->top_p != p->top_p || p->top_p < 0) return QM_ERR_INVALID_ARG;
    if (p->min_p != p->min_p || p->min_p < 0 || p->min_p > 1) return QM_ERR_INVALID_ARG;
    s = QM__ALLOC(qm_sampler, 1);
    if (!s) return QM_ERR_OOM;
    s->p = *p;
    s->n_vocab = n_vocab;
    s->cand = NULL;
    if (p->temperature > 0) {
        s->cand = QM__ALLOC(qm__smp_cand, n_vocab);
        if (!s->cand) { QM_FREE(s); return QM_ERR_OOM; }
    }
    sm = p->seed;
    for (k = 0; k < 4; k++) s->rng[k] = qm__smp_splitmix64(&sm);
    *out = s;
    return QM_OK;
}

QMDEF void qm_sampler_free(qm_sampler *s) {
    if (!s) return;
    QM_FREE(s->cand);
    QM_FREE(s);
}

/* a comes before b: a higher logit, or the same logit and a lower id. */
static int qm__smp_before(const qm__smp_cand *a, const qm__smp_cand *b) {
    return a->v > b->v || (a->v == b->v && a->i < b->i);
}

/* Partition c[lo, hi) (hi - lo >= 1) around a pseudo-random pivot: afterwards the entries
   before the returned position come before the pivot, the ones after it come after it. */
static int qm__smp_partition(qm__smp_cand *c, int lo, int hi, uint64_t *st) {
    qm__smp_cand piv, t;
    int j, store = lo, r;
    *st ^= *st << 13; /* xorshift64: pivots that no input can predict badly */
    *st ^= *st >> 7;
    *st ^= *st << 17;
    r = lo + QM__CAST(int, *st % QM__CAST(uint64_t, hi - lo));
    piv = c[r];
    c[r] = c[hi - 1];
    c[hi - 1] = piv;
    for (j = lo; j < hi - 1; j++) {
        if (qm__smp_before(&c[j], &piv)) {
            t = c[j];
            c[j] = c[store];
            c[store] = t;
            store++;
        }
    }
    c[hi - 1] = c[store];
    c[store] = piv;
    return store;
}

/* Top-k in one pass over the logits: a heap of the k best so far whose root is the worst of
   them. Ids come in increasing order, so a newcomer that ties the root comes after it and
   stays out: ties at the cut go to the lower id. Returns the count kept (< k only when fewer
   than k logits are not NaN); they end up in c[0, count), in no particular order. */
static int qm__smp_top_k(qm__smp_cand *c, const float *logits, int n, int k) {
    int i, m = 0;
    for (i = 0; i < n; i++) {
        float v = logits[i];
        int j, child;
        qm__smp_cand x;
        if (v != v) continue;
        x.v = v;
        x.w = 0;
        x.i = i;
        if (m < k) { /* sift up: a parent is never before its children */
            j = m++;
            while (j > 0 && qm__smp_before(&c[(j - 1) / 2], &x)) {
                c[j] = c[(j - 1) / 2];
                j = (j - 1) / 2;
            }
            c[j] = x;
            continue;
        }
        if (!(v > c[0].v)) continue; /* the common case: not better than the worst kept */
        j = 0; /* replace the root, sift down */
        for (;;) {
            child = 2 * j + 1;
            if (child >= m) break;
            if (child + 1 < m && qm__smp_before(&c[child], &c[child + 1])) child++;
            if (!qm__smp_before(&x, &c[child])) break;
            c[j] = c[child];
            j = child;
        }
        c[j] = x;
    }
    return m;
}

/* Top-p: the smallest count m such that the m best of c[0, n) weigh at least target; the
   m best end up in c[0, m). n when all of them together weigh less (rounding, min-p). */
static int qm__smp_nucleus(qm__smp_cand *c, int n, double target, uint64_t *st) {
    int lo = 0, hi = n, p, j;
    double acc = 0, upper; /* acc: weight of c[0, lo), always < target */
    while (lo < hi) {
        p = qm__smp_partition(c, lo, hi, st);
        upper = 0;
        for (j = lo; j < p; j++) upper += c[j].w;
        if (acc + upper >= target) { /* the answer is within c[lo, p] */
            hi = p;
            continue;
        }
        acc += upper + c[p].w;
        if (acc >= target) return p + 1;
        lo = p + 1;
    }
    return hi;
}

/* exp((v - vmax) * inv_t) for v <= vmax; the max itself (also +inf) weighs 1. */
static float qm__smp_weight(float v, float vmax, float inv_t) {
    float d;
    if (v >= vmax) return 1.0f;
    d = (v - vmax) * inv_t;
    if (!(d > -104.0f)) return 0.0f; /* below float's range (also -inf and NaN) */
    return qm__expf(d);
}

QMDEF int32_t qm_sampler_sample(qm_sampler *s, const float *logits) {
    qm__smp_cand *c;
    int m, i, top_k, use_top_p;
    float vmax = 0, inv_t;
    double sum, u, acc, z;
    uint64_t st = 0x2545f4914f6cdd1dULL; /* pivot choice: same input, same work */
    int32_t last = -1;
    if (!s || !logits) return QM_ERR_INVALID_ARG;

    if (!(s->p.temperature > 0)) { /* greedy */
        int32_t best = -1;
        float bv = 0;
        for (i = 0; i < s->n_vocab; i++) {
            float v = logits[i];
            if (v != v) continue;
            if (best < 0 || v > bv) { best = i; bv = v; }
        }
        return best < 0 ? 0 : best;
    }

    /* one draw per call, whatever the path, so that the sequence depends only on the seed */
    u = QM__CAST(double, qm__smp_xoshiro(s->rng) >> 11) * (1.0 / 9007199254740992.0);
    use_top_p = s->p.top_p > 0 && s->p.top_p < 1;
    top_k = s->p.top_k;
    c = s->cand;
    m = 0;
    if (top_k > 0 && top_k < s->n_vocab) {
        m = qm__smp_top_k(c, logits, s->n_vocab, top_k);
    } else {
        for (i = 0; i < s->n_vocab; i++) {
            float v = logits[i];
            if (v != v) continue;
            c[m].v = v;
            c[m].w = 0;
            c[m].i = i;
            m++;
        }
    }
    if (m == 0) return 0; /* every logit NaN */
    vmax = c[0].v;
    for (i = 1; i < m; i++)
        if (c[i].v > vmax) vmax = c[i].v;

    z = 0;
    if (use_top_p) { /* top-p's probabilities: over what top-k kept, at temperature 1 */
        for (i = 0; i < m; i++) {
            c[i].w = qm__smp_weight(c[i].v, vmax, 1.0f);
            z += c[i].w;
        }
    }
    if (s->p.min_p > 0) { /* p >= min_p * p_max; the max itself always stays */
        float thr = vmax + qm__logf(s->p.min_p);
        int k = 0;
        for (i = 0; i < m; i++)
            if (c[i].v >= thr || c[i].v == vmax) c[k++] = c[i];
        m = k;
    }
    /* min-p keeps a prefix of the order too, so doing it before top-p gives the same set
       (the shorter of the two prefixes) while top-p then partitions fewer entries */
    if (use_top_p) m = qm__smp_nucleus(c, m, s->p.top_p * z, &st);

    /* temperature, softmax (unnormalised), draw */
    inv_t = 1.0f / s->p.temperature;
    sum = 0;
    for (i = 0; i < m; i++) {
        if (!(use_top_p && inv_t == 1.0f)) c[i].w = qm__smp_weight(c[i].v, vmax, inv_t);
        sum += c[i].w;
    }
    u *= sum;
    acc = 0;
    for (i = 0; i < m; i++) {
        if (c[i].w <= 0) continue;
        acc += c[i].w;
        last = c[i].i;
        if (u < acc) return c[i].i;
    }
    return last >= 0 ? last : c[0].i; /* rounding at the very end of the range */
}

/* Generation: prefill the prompt, then sample one token at a time. Text reaches the caller
   through the UTF-8 stream (no half characters) and a hold-back buffer, so that text which
   might be the start of a stop string is only released once it cannot be. */

static double qm__now(void) {
#if !defined(_WIN32)
    /* gettimeofday, not clock_gettime: the latter is hidden under -std=c99 */
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return QM__CAST(double, tv.tv_sec) + QM__CAST(double, tv.tv_usec) * 1e-6;
#else
    return QM__CAST(double, clock()) / CLOCKS_PER_SEC;
#endif
}

/* Length of the longest suffix of text[0..n) that is a proper prefix of a stop string. */
static size_t qm__stop_holdback(const char *text, size_t n, const char *const *stop, int n_stop) {
    size_t best = 0, k;
    int s;
    for (s = 0; s < n_stop; s++) {
        size_t sl = strlen(stop[s]);
        for (k = QM__MIN(sl - 1, n); k > best; k--)
            if (memcmp(text + n - k, stop[s], k) == 0) { best = k; break; }
    }
    return best;
}

QMDEF qm_result qm_generate(qm_context *c, const int32_t *prompt, int n_prompt,
                            const qm_generate_params *p, qm_generate_stats *stats, qm_error *err) {
    qm_generate_params gp;
    qm_generate_stats st;
    qm_sampler *smp = NULL;
    qm_utf8_stream u8;
    const qm_tokenizer *tok;
    char *pend = NULL;          /* text not yet given to the callback */
    size_t pend_n = 0, pend_cap = 0, max_stop = 0;
    int32_t cur;
    int i, n_gen = 0;
    double t0, t1;
    qm_result r = QM_OK;

    memset(&st, 0, sizeof(st));
    if (!c) return qm__err(err, QM_ERR_INVALID_ARG, "qm_generate: context is NULL");
    if (p) gp = *p;
    else memset(&gp, 0, sizeof(gp));
    if (n_prompt <= 0 || !prompt)
        return qm__err(err, QM_ERR_INVALID_ARG, "qm_generate: the prompt is empty: give at least one token");
    if (n_prompt >= c->n_ctx - c->pos)
        return qm__err(err, QM_ERR_CONTEXT_FULL,
                       "qm_generate: a prompt of %d tokens does not fit: the context holds %d of %d tokens, and generation needs one more",
                       n_prompt, c->pos, c->n_ctx);
    if (gp.n_stop < 0 || (gp.n_stop > 0 && !gp.stop))
        return qm__err(err, QM_ERR_INVALID_ARG, "qm_generate: n_stop is %d but stop is NULL", gp.n_stop);
    for (i = 0; i < gp.n_stop; i++) {
        if (!gp.stop[i] || !gp.stop[i][0]) return qm__err(err, QM_ERR_INVALID_ARG, "qm_generate: stop string %d is empty", i);
        max_stop = QM__MAX(max_stop, strlen(gp.stop[i]));
    }
    tok = c->m->tok;
    if ((r = qm_sampler_create(&gp.sampling, c->m->hp.n_vocab, &smp)) != QM_OK)
        return qm__err(err, r, "qm_generate: cannot create the sampler");
    pend_cap = 256 + 2 * max_stop;
    pend = QM__CAST(char *, QM_MALLOC(pend_cap));
    if (!pend) { qm_sampler_free(smp); return qm__err(err, QM_ERR_OOM, "out of memory"); }
    memset(&u8, 0, sizeof(u8));
    st.n_prompt = n_prompt;
    st.stop_reason = QM_STOP_LENGTH;

    t0 = qm__now();
    if ((r = qm_eval(c, prompt, n_prompt, err)) != QM_OK) goto done;
    t1 = qm__now();
    st.prefill_seconds = t1 - t0;

    for (;;) {
        char text[3 * 256 + 3]; /* qm_utf8_stream_push writes up to 3n + 3 bytes for n in */
        static const unsigned char no_bytes[1] = {0};
        const unsigned char *pb = no_bytes;
        size_t pn = 0, off = 0, tlen, emit, hold;
        cur = qm_sampler_sample(smp, qm_logits(c, -1));
        if (!gp.ignore_eos && qm_token_is_eog(tok, cur)) { st.stop_reason = QM_STOP_EOG; break; }
        n_gen++;
        /* the token's bytes, however many (ids past the tokenizer's vocab have none), through
           the UTF-8 stream 256 at a time */
        /* the same tokens as qm_detokenize: UNUSED ones ([PADn]) have no text, CONTROL ones none
           with skip_special */
        if (cur >= 0 && cur < tok->n_vocab && qm_token_type(tok, cur) != QM_TOKEN_UNUSED &&
            !(gp.skip_special && qm_token_type(tok, cur) == QM_TOKEN_CONTROL)) {
            pb = tok->bytes + tok->bytes_off[cur];
            pn = tok->bytes_off[cur + 1] - tok->bytes_off[cur];
        }
        do {
            size_t chunk = QM__MIN(pn - off, 256);
            tlen = qm_utf8_stream_push(&u8, QM__CAST(const char *, QM__CAST(const void *, pb + off)), chunk, text);
            off += chunk;
            if (pend_n + tlen > pend_cap) {
                size_t nc = (pend_n + tlen) * 2;
                char *np = QM__CAST(char *, QM_REALLOC(pend, nc));
                if (!np) { r = qm__err(err, QM_ERR_OOM, "out of memory"); goto done; }
                pend = np; pend_cap = nc;
            }
            memcpy(pend + pend_n, text, tlen);
            pend_n += tlen;
        } while (off < pn);
        /* a stop string completed? */
        emit = pend_n;
        hold = 0;
        if (gp.n_stop) {
            size_t best = (size_t)-1;
            int s;
            for (s = 0; s < gp.n_stop; s++) {
                size_t sl = strlen(gp.stop[s]), k;
                for (k = 0; k + sl <= pend_n; k++)
                    if (memcmp(pend + k, gp.stop[s], sl) == 0) { if (k < best) best = k; break; }
            }
            if (best != (size_t)-1) {
                if (gp.on_token) gp.on_token(gp.user, cur, pend, best);
                pend_n = 0;
                st.stop_reason = QM_STOP_STRING;
                break;
            }
            hold = qm__stop_holdback(pend, pend_n, gp.stop, gp.n_stop);
            emit = pend_n - hold;
        }
        if (gp.on_token && gp.on_token(gp.user, cur, pend, emit)) { pend_n = 0; st.stop_reason = QM_STOP_CALLBACK; break; }
        memmove(pend, pend + emit, hold);
        pend_n = hold;
        if (gp.max_tokens > 0 && n_gen >= gp.max_tokens) { st.stop_reason = QM_STOP_LENGTH; break; }
        if (c->pos >= c->n_ctx) { st.stop_reason = QM_STOP_CONTEXT_FULL; break; }
        if ((r = qm_eval(c, &cur, 1, err)) != QM_OK) goto done;
    }
    /* release what was held back, and any incomplete character */
    if (gp.on_token && st.stop_reason != QM_STOP_CALLBACK) {
        char tail[8];
        size_t tl = qm_utf8_stream_flush(&u8, tail);
        if (st.stop_reason != QM_STOP_STRING && pend_n + tl > 0) {
            if (pend_n + tl <= pend_cap) memcpy(pend + pend_n, tail, tl);
            gp.on_token(gp.user, -1, pend, pend_n + (pend_n + tl <= pend_cap ? tl : 0));
        }
    }
done:
    st.n_generated = n_gen;
    st.decode_seconds = qm__now() - t0 - st.prefill_seconds;
    if (stats) *stats = st;
    QM_FREE(pend);
    qm_sampler_free(smp);
    return r;
}

/* ===================================================================================== */
/*  7. cuda hook                                                                         */
/* ===================================================================================== */

/* The weak default: no CUDA. A strong qm_cuda_hook() in qwenmoe_cuda.cu replaces it at link
   time. Weak symbols are an ELF/Mach-O feature; elsewhere the default is an ordinary
   definition and the CUDA object must not be linked. */
#ifdef __cplusplus
extern "C" {
#endif
#if defined(__GNUC__) || defined(__clang__)
__attribute__((weak))
#endif
const qm_cuda_hooks *qm_cuda_hook(void) { return NULL; }
#ifdef __cplusplus
}
#endif

static void qm__cuda_log(void *user, int level, const char *msg) {
    qm__logmsg(QM__CAST(const qm_model *, user), level, "%s", msg);
}

static void qm__cuda_tensor_of(qm_cuda_tensor *dst, const qm__weight *src) {
    dst->type = src->type;
    dst->cols = src->ne0; dst->rows = src->ne1; dst->n_expert = src->ne2;
    dst->row_bytes = src->row_bytes;
    dst->data = src->data;
}

static void qm__cuda_progress(void *user, int done, int total) {
    if (done == total || done % 8 == 0)
        qm__logmsg(QM__CAST(const qm_model *, user), QM_LOG_INFO, "CUDA: uploaded %d of %d layers", done, total);
}

static int qm__cuda_cpu_moe(void *user, int il, int T, const float *x, const int32_t *ids, const float *w, float *y);

/* Stage 2: the whole model to the GPU (model_create). Returns 1 when it took the model, 0 after
   a warning that says why not (the caller then tries the experts alone). */
static int qm__cuda_setup_full(qm_model *m, const qm_cuda_hooks *h, int first, const char *dev) {
    const qm_hparams *hp = &m->hp;
    qm_cuda_layer *ls;
    qm_cuda_model_desc d;
    char why[512];
    int il;
    ls = QM__ALLOC(qm_cuda_layer, hp->n_layer);
    if (!ls) { qm__logmsg(m, QM_LOG_WARN, "CUDA: out of memory"); return 0; }
    memset(ls, 0, sizeof(*ls) * (size_t)hp->n_layer);
    for (il = 0; il < hp->n_layer; il++) {
        const qm__layer *L = &m->layers[il];
        qm_cuda_layer *dl = &ls[il];
        dl->attn_norm = L->attn_norm; dl->q_norm = L->q_norm; dl->k_norm = L->k_norm; dl->ffn_norm = L->ffn_norm;
        qm__cuda_tensor_of(&dl->wq, &L->wq);
        qm__cuda_tensor_of(&dl->wk, &L->wk);
        qm__cuda_tensor_of(&dl->wv, &L->wv);
        qm__cuda_tensor_of(&dl->wo, &L->wo);
        if (hp->n_expert) qm__cuda_tensor_of(&dl->router, &L->router);
        if (il < first) continue; /* experts on the CPU: gate.data stays NULL */
        if (hp->n_expert) {
            qm__cuda_tensor_of(&dl->experts.gate, &L->gate_exps);
            qm__cuda_tensor_of(&dl->experts.up, &L->up_exps);
            qm__cuda_tensor_of(&dl->experts.down, &L->down_exps);
        } else {
            qm__cuda_tensor_of(&dl->experts.gate, &L->ffn_gate);
            qm__cuda_tensor_of(&dl->experts.up, &L->ffn_up);
            qm__cuda_tensor_of(&dl->experts.down, &L->ffn_down);
        }
    }
    memset(&d, 0, sizeof(d));
    d.n_layer = hp->n_layer; d.n_embd = hp->n_embd; d.n_head = hp->n_head; d.n_head_kv = hp->n_head_kv;
    d.head_dim = hp->head_dim; d.n_vocab = hp->n_vocab;
    d.n_expert = hp->n_expert; d.n_expert_used = hp->n_expert ? hp->n_expert_used : 1;
    d.n_ff_exp = hp->n_expert ? hp->n_ff_exp : hp->n_ff;
    d.rms_eps = hp->rms_eps;
    d.max_tokens = QM__CUDA_MAX_TOKENS;
    qm__cuda_tensor_of(&d.tok_embd, &m->tok_embd);
    qm__cuda_tensor_of(&d.output, &m->output);
    d.output_norm = m->output_norm;
    d.layers = ls;
    d.cpu_moe = qm__cuda_cpu_moe;
    d.log = qm__cuda_log; d.progress = qm__cuda_progress; d.log_user = m;
    why[0] = 0;
    m->cuda_moe = h->model_create(&d, why, sizeof(why));
    QM_FREE(ls);
    if (!m->cuda_moe) {
        qm__logmsg(m, QM_LOG_WARN, "CUDA: cannot upload the model to %s (%s): trying the experts alone", dev, why);
        return 0;
    }
    m->cuda = h;
    m->cuda_first_layer = first;
    m->cuda_full = 1;
    if (first > 0)
        qm__logmsg(m, QM_LOG_INFO, "CUDA: the forward on %s, the experts of layers 0..%d on the CPU", dev, first - 1);
    else
        qm__logmsg(m, QM_LOG_INFO, "CUDA: the whole forward on %s", dev);
    return 1;
}

/* At load: when the CUDA object is linked in, not disabled, and finds a device, hand it the
   model (stage 2), or failing that, or with cuda_experts_only, the experts (stage 1). Any
   failure leaves the model on the CPU, with a warning that says why. */
static void qm__cuda_setup(qm_model *m, const qm_model_params *params) {
    const qm_cuda_hooks *h = qm_cuda_hook();
    const qm_hparams *hp = &m->hp;
    qm_cuda_moe_layer *ls;
    qm_cuda_moe_desc d;
    char why[512];
    int il, first;
    if (!h) return;
    if (params && params->no_cuda) { qm__logmsg(m, QM_LOG_INFO, "CUDA disabled by no_cuda: running on the CPU"); return; }
    why[0] = 0;
    if (h->abi_version != QM_CUDA_ABI_VERSION || !h->probe || !h->moe_create || !h->moe_eval) {
        qm__logmsg(m, QM_LOG_WARN, "the linked CUDA object has ABI %d, this header expects %d: running on the CPU",
                   h->abi_version, QM_CUDA_ABI_VERSION);
        return;
    }
    if (!h->probe(why, sizeof(why))) {
        qm__logmsg(m, QM_LOG_WARN, "CUDA is linked in but unusable (%s): running on the CPU", why);
        return;
    }
    first = params ? params->cuda_cpu_moe_layers : 0;
    if (first < 0) first = 0;
    if (first > hp->n_layer) first = hp->n_layer;
    if (h->model_create && h->ctx_create && h->ctx_eval && h->ctx_free && !(params && params->cuda_experts_only)) {
        char dev[512];
        memcpy(dev, why, sizeof(dev));
        if (qm__cuda_setup_full(m, h, first, dev)) return;
    }
    if (!hp->n_expert) {
        qm__logmsg(m, QM_LOG_INFO, "CUDA: %s has no experts (dense model): running on the CPU", why);
        return;
    }
    if (first >= hp->n_layer) {
        qm__logmsg(m, QM_LOG_INFO, "CUDA: all %d layers keep their experts on the CPU (cuda_cpu_moe_layers)", hp->n_layer);
        return;
    }
    ls = QM__ALLOC(qm_cuda_moe_layer, hp->n_layer);
    if (!ls) { qm__logmsg(m, QM_LOG_WARN, "CUDA: out of memory: running on the CPU"); return; }
    memset(ls, 0, sizeof(*ls) * (size_t)hp->n_layer);
    for (il = first; il < hp->n_layer; il++) {
        qm__cuda_tensor_of(&ls[il].gate, &m->layers[il].gate_exps);
        qm__cuda_tensor_of(&ls[il].up, &m->layers[il].up_exps);
        qm__cuda_tensor_of(&ls[il].down, &m->layers[il].down_exps);
    }
    memset(&d, 0, sizeof(d));
    d.n_layer = hp->n_layer; d.n_embd = hp->n_embd; d.n_ff_exp = hp->n_ff_exp;
    d.n_expert = hp->n_expert; d.n_expert_used = hp->n_expert_used;
    d.max_tokens = QM__CUDA_MAX_TOKENS;
    d.layers = ls;
    d.log = qm__cuda_log; d.log_user = m;
    {
        char dev[512];
        memcpy(dev, why, sizeof(dev));
        why[0] = 0;
        m->cuda_moe = h->moe_create(&d, why, sizeof(why));
        QM_FREE(ls);
        if (!m->cuda_moe) {
            qm__logmsg(m, QM_LOG_WARN, "CUDA: cannot upload the experts to %s (%s): running on the CPU", dev, why);
            return;
        }
        m->cuda = h;
        m->cuda_first_layer = first;
        qm__logmsg(m, QM_LOG_INFO, "CUDA: experts of layers %d..%d on %s", first, hp->n_layer - 1, dev);
    }
}

/* A context of a model on the GPU gets its KV cache there too. A context with a trace
   callback stays on the CPU (the trace shows the CPU's activations), its experts on the GPU. */
static void qm__cuda_ctx_setup(qm_context *c) {
    qm_model *m = c->m;
    qm_cuda_ctx_desc d;
    char why[512];
    if (!m->cuda_full) return;
    if (c->p.trace) {
        qm__logmsg(m, QM_LOG_INFO, "CUDA: a context with a trace callback runs on the CPU, its experts on the GPU");
        return;
    }
    memset(&d, 0, sizeof(d));
    d.n_ctx = c->n_ctx; d.n_batch = c->n_batch; d.n_out_max = c->p.all_logits ? c->n_batch : 1;
    d.kv_f32 = c->p.kv_type == QM_KV_F32;
    d.rope_cos = c->rope_cos; d.rope_sin = c->rope_sin;
    why[0] = 0;
    c->cuda_ctx = m->cuda->ctx_create(m->cuda_moe, &d, why, sizeof(why));
    if (!c->cuda_ctx)
        qm__logmsg(m, QM_LOG_WARN, "CUDA: cannot make a context of %d tokens on the GPU (%s): it runs on the CPU, "
                   "its experts on the GPU", c->n_ctx, why);
}

/* qm__forward on the GPU. A failure is an error of qm_eval (the KV cache is on the GPU, so the
   CPU cannot take over from there); the context keeps its position. */
static qm_result qm__forward_cuda(qm_context *c, const int32_t *tokens, int T, int out_rows, qm_error *err) {
    char why[512];
    why[0] = 0;
    if (c->m->cuda->ctx_eval(c->cuda_ctx, tokens, T, c->pos, out_rows, c->logits, c, why, sizeof(why)) != 0)
        return qm__err(err, QM_ERR_BACKEND, "CUDA forward of %d tokens at position %d failed: %s", T, c->pos, why);
    c->n_logits = out_rows;
    c->pos += T;
    return QM_OK;
}

/* The GPU forward's callback for a layer whose experts stay on the CPU (cuda_cpu_moe_layers):
   the CPU's expert path on the context's buffers. */
static int qm__cuda_cpu_moe(void *user, int il, int T, const float *x, const int32_t *ids, const float *w, float *y) {
    qm_context *c = QM__CAST(qm_context *, user);
    const qm_hparams *hp;
    int E, K;
    if (!c) return -1;
    hp = &c->m->hp;
    E = hp->n_embd;
    K = hp->n_expert ? hp->n_expert_used : 1;
    if (il < 0 || il >= hp->n_layer || T <= 0 || T > c->n_batch) return -1;
    memcpy(c->xn, x, sizeof(float) * (size_t)T * E);
    if (hp->n_expert) {
        memcpy(c->sel, ids, sizeof(int32_t) * (size_t)T * K);
        memcpy(c->sel_w, w, sizeof(float) * (size_t)T * K);
        qm__moe(c, &c->m->layers[il], il, T);
    } else {
        qm__ffn_dense(c, &c->m->layers[il], T);
    }
    memcpy(y, c->moe, sizeof(float) * (size_t)T * E);
    return 0;
}

/* The routed experts of layer il on the GPU, in chunks of at most QM__CUDA_MAX_TOKENS tokens.
   Returns 0 when the GPU refused, after a warning (once per model); the caller then runs the
   CPU path for this layer, so a failing GPU never yields garbage. */
static int qm__moe_cuda(qm_context *c, int il, int T) {
    qm_model *m = c->m;
    const qm_hparams *hp = &m->hp;
    int done, K = hp->n_expert_used, E = hp->n_embd;
    char why[512];
    for (done = 0; done < T; done += QM__CUDA_MAX_TOKENS) {
        int n = QM__MIN(QM__CUDA_MAX_TOKENS, T - done);
        why[0] = 0;
        if (m->cuda->moe_eval(m->cuda_moe, il, n, c->xn + (size_t)done * E, c->sel + (size_t)done * K,
                              c->sel_w + (size_t)done * K, c->moe + (size_t)done * E, why, sizeof(why)) != 0) {
            if (!m->cuda_warned) qm__logmsg(m, QM_LOG_WARN, "CUDA expert dispatch failed at layer %d (%s): computing it on the CPU", il, why);
            m->cuda_warned = 1;
            return 0;
        }
    }
    return 1;
}

QMDEF const char *qm_backend_name(char *desc, size_t cap) {
    const qm_cuda_hooks *h = qm_cuda_hook();
    char tmp[256];
    if (!desc || !cap) { desc = tmp; cap = sizeof(tmp); }
    desc[0] = 0;
    if (!h) { snprintf(desc, cap, "the CUDA object is not linked in"); return "cpu"; }
    if (h->abi_version != QM_CUDA_ABI_VERSION) {
        snprintf(desc, cap, "the CUDA object has ABI %d, this header %d", h->abi_version, QM_CUDA_ABI_VERSION);
        return "cpu";
    }
    if (!h->probe || !h->probe(desc, cap)) return "cpu";
    return h->name ? h->name : "cuda";
}

#if defined(__clang__)
#pragma STDC FP_CONTRACT DEFAULT
#elif defined(__GNUC__)
#pragma GCC pop_options
#endif

#endif /* QWENMOE_IMPLEMENTATION_DONE */
#endif /* QWENMOE_IMPLEMENTATION */

/*
------------------------------------------------------------------------------
This software is available under 2 licenses -- choose whichever you prefer.
------------------------------------------------------------------------------
ALTERNATIVE A - MIT License
Copyright (c) 2026 the qwenmoe authors
Permission is hereby granted, free of charge, to any person obtaining a copy of
this software and associated documentation files (the "Software"), to deal in
the Software without restriction, including without limitation the rights to
use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies
of the Software, and to permit persons to whom the Software is furnished to do
so, subject to the following conditions:
The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.
THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
------------------------------------------------------------------------------
ALTERNATIVE B - Public Domain (www.unlicense.org)
This is free and unencumbered software released into the public domain.
Anyone is free to copy, modify, publish, use, compile, sell, or distribute this
software, either in source code form or as an executable binary, for any
purpose, commercial or non-commercial, and by any means.
------------------------------------------------------------------------------
*/
