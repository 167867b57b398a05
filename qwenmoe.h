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
       - optional CUDA expert dispatch: link qwenmoe_cuda.o and it is picked up (section 7)

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
    QM_ERR_BUFFER_SMALL = -10 /* an output buffer is too small                                */
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
/* Parse a GGUF image in the caller's memory. The buffer must outlive the qm_gguf. */
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
/* Writes at most n + 3 bytes to out; returns the count written. Invalid bytes -> U+FFFD. */
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
} qm_model_params;

QMDEF qm_model_params qm_model_params_default(void);
QMDEF qm_result qm_model_load(const char *path, const qm_model_params *params, qm_model **out,
                              qm_error *err);
QMDEF qm_result qm_model_load_memory(const void *data, size_t size, const qm_model_params *params,
                                     qm_model **out, qm_error *err);
QMDEF void qm_model_free(qm_model *m);
QMDEF const qm_hparams *qm_model_hparams(const qm_model *m);
QMDEF const qm_tokenizer *qm_model_tokenizer(const qm_model *m);
QMDEF const qm_gguf *qm_model_gguf(const qm_model *m);
QMDEF qm_chat_family qm_model_chat_family(const qm_model *m);

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
    qm_trace_fn trace;
    void *trace_user;
} qm_context_params;

QMDEF qm_result qm_context_create(qm_model *m, const qm_context_params *params, qm_context **out,
                                  qm_error *err);
QMDEF void qm_context_free(qm_context *c);
QMDEF int qm_context_n_ctx(const qm_context *c);
QMDEF int qm_context_pos(const qm_context *c);   /* tokens in the KV cache */
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
typedef struct qm_cuda_hooks {
    int abi_version;        /* QM_CUDA_ABI_VERSION */
    const char *name;       /* "cuda" */
    /* Returns 1 and a description of the device when a usable GPU is present, 0 with the
       reason (no driver, no device) otherwise. */
    int (*probe)(char *desc, size_t cap);
} qm_cuda_hooks;
#define QM_CUDA_ABI_VERSION 1

const qm_cuda_hooks *qm_cuda_hook(void);
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

static qm_result qm__gguf_parse(qm_gguf *g, qm_error *err) {
    qm__cursor c;
    uint32_t magic;
    uint64_t n_tensors, n_kv, i, j;
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
        for (j = 0; j < i; j++)
            if (g->kv[j].key.len == kv->key.len && memcmp(g->kv[j].key.ptr, kv->key.ptr, (size_t)kv->key.len) == 0)
                return qm__err(err, QM_ERR_FORMAT, "%s: duplicate metadata key '%s'", g->path, name);
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
            if (a <= 0 || a > (1 << 30) || (a & (a - 1)) != 0)
                return qm__err(err, QM_ERR_FORMAT, "%s: key 'general.alignment' is %lld; expected a power of two",
                               g->path, QM__CAST(long long, a));
            g->alignment = QM__CAST(uint32_t, a);
        }
    }

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
        for (j = 0; j < i; j++)
            if (g->tensors[j].name.len == t->name.len && memcmp(g->tensors[j].name.ptr, t->name.ptr, (size_t)t->name.len) == 0)
                return qm__err(err, QM_ERR_FORMAT, "%s: duplicate tensor name '%s'", g->path, name);
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

#include "wip/quant.h"

/* ===================================================================================== */
/*  3. kernels                                                                           */
/* ===================================================================================== */

#include "wip/kernels.h"

/* The compute primitives of the forward pass. The matrix product never dequantizes weights
   to f32: the activation rows are quantized once (wip/kernels.h: Q8_K for K-quants, Q8_0
   for the 32-blocks, as llama.cpp pairs them) and each weight block is dotted in integers,
   several tokens per weight load in prefill. */

/* y[i] = x[i] / rms(x) * w[i]. The sum of squares is kept in double, as ggml does. */
static void qm__rmsnorm(float *y, const float *x, const float *w, int n, float eps) {
    double ss = 0.0;
    float scale;
    int i;
    for (i = 0; i < n; i++) ss += QM__CAST(double, x[i]) * x[i];
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

static float qm__silu(float x) { return x / (1.0f + qm__expf(-x)); }

static float qm__dot_f32(const float *a, const float *b, int n) {
    /* eight independent partial sums: lets the CPU overlap the adds */
    float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int i, j;
    for (i = 0; i + 8 <= n; i += 8)
        for (j = 0; j < 8; j++) s[j] += a[i + j] * b[i + j];
    for (; i < n; i++) s[0] += a[i] * b[i];
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
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
    uint64_t generation;
    int pending;
    int quit;
#endif
} qm__pool;

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
        pthread_mutex_lock(&pool->mu);
        while (pool->generation == seen && !pool->quit) pthread_cond_wait(&pool->cv_work, &pool->mu);
        if (pool->quit) { pthread_mutex_unlock(&pool->mu); break; }
        seen = pool->generation;
        fn = pool->fn;
        arg = pool->arg;
        pthread_mutex_unlock(&pool->mu);
        fn(arg, ith, pool->n_threads);
        pthread_mutex_lock(&pool->mu);
        if (--pool->pending == 0) pthread_cond_signal(&pool->cv_done);
        pthread_mutex_unlock(&pool->mu);
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
    pool->quit = 1;
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
        pool->pending = pool->n_threads - 1;
        pool->generation++;
        pthread_cond_broadcast(&pool->cv_work);
        pthread_mutex_unlock(&pool->mu);
        fn(arg, 0, pool->n_threads);
        pthread_mutex_lock(&pool->mu);
        while (pool->pending > 0) pthread_cond_wait(&pool->cv_done, &pool->mu);
        pthread_mutex_unlock(&pool->mu);
        return;
    }
#else
    (void)pool;
#endif
    fn(arg, 0, 1);
}

/* ---- matrix product: Y[t][r] = dot(W row r, X[t]) for rows r0..r1 ---- */

typedef struct qm__weight {
    const uint8_t *data;    /* first row (of expert 0) */
    int type;
    int64_t ne0, ne1, ne2;  /* row length, rows, experts */
    size_t row_bytes;
    const char *name;       /* for messages */
} qm__weight;

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
    qm__matmul_rows(w->type, w->ne0, base, w->row_bytes, r0, r1, j->qx, j->act_stride, j->T, j->y, j->ldy);
}

/* Y[t][r] = W[expert] row r . X[t] for T tokens. The activations are quantized once (to
   Q8_K / Q8_0 for quantized weights, as llama.cpp does), then the threads split the rows. */
static void qm__matmul(qm__pool *pool, void *qbuf, const qm__weight *w, int expert,
                       const float *x, int64_t ldx, float *y, int64_t ldy, int T) {
    qm__matmul_job j;
    size_t stride = qm__act_row_bytes(w->type, w->ne0);
    int t;
    for (t = 0; t < T; t++)
        qm__quantize_act(w->type, x + t * ldx, QM__CAST(uint8_t *, qbuf) + (size_t)t * stride, w->ne0);
    j.w = w; j.expert = expert; j.qx = qbuf; j.act_stride = stride; j.y = y; j.ldy = ldy; j.T = T;
    qm__pool_run(pool, qm__matmul_task, &j);
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
};

static void qm__logmsg(const qm_model *m, int level, const char *fmt, ...) QM__PRINTF(3, 4);
static void qm__logmsg(const qm_model *m, int level, const char *fmt, ...) {
    char msg[600];
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
    if ((r = qm_gguf_open(path, &gp, &g, err))) return r;
    return qm__model_load(g, params, out, err);
}

QMDEF qm_result qm_model_load_memory(const void *data, size_t size, const qm_model_params *params,
                                     qm_model **out, qm_error *err) {
    qm_gguf *g;
    qm_result r;
    if (!out) return qm__err(err, QM_ERR_INVALID_ARG, "qm_model_load_memory: out is NULL");
    *out = NULL;
    if ((r = qm_gguf_open_memory(data, size, NULL, &g, err))) return r;
    return qm__model_load(g, params, out, err);
}

QMDEF void qm_model_free(qm_model *m) {
    int il;
    if (!m) return;
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

/* ---- context: KV cache, scratch buffers, threads ---- */

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
    int32_t *exp_tokens;     /* tokens routed to one expert, and their slot */
    float *exp_x;            /* gathered inputs for one expert [n_batch][n_embd] */
    float *scores;           /* [n_threads][n_ctx] */
    void *qact;              /* [n_batch] activation rows quantized for a matmul */
    float *logits;           /* [n_batch or 1][n_vocab] */
    int n_logits;            /* rows valid in logits */
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
    int ok = 1, nt, i, p, maxrow, nb, kvd;
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
    if (!qm__mul_u64(QM__CAST(uint64_t, hp->n_layer) * QM__CAST(uint64_t, c->n_ctx), QM__CAST(uint64_t, kvd) * elt, &kv_bytes) ||
        kv_bytes > (uint64_t)(size_t)-1 / 2) {
        int want = c->n_ctx;
        QM_FREE(c);
        return qm__err(err, QM_ERR_OOM, "a KV cache of %d tokens overflows the address space", want);
    }
    c->k_cache = qm__calloc_f((size_t)kv_bytes, 1, &ok);
    c->v_cache = qm__calloc_f((size_t)kv_bytes, 1, &ok);
    c->rope_cos = QM__CAST(float *, qm__calloc_f((size_t)c->n_ctx * (size_t)(hp->head_dim / 2), sizeof(float), &ok));
    c->rope_sin = QM__CAST(float *, qm__calloc_f((size_t)c->n_ctx * (size_t)(hp->head_dim / 2), sizeof(float), &ok));
    maxrow = QM__MAX(QM__MAX(hp->n_embd, hp->head_dim * hp->n_head), QM__MAX(hp->n_ff, hp->n_ff_exp));
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
    QM__BUF(ff_gate, (size_t)nb * QM__MAX(hp->n_ff, hp->n_ff_exp), float);
    QM__BUF(ff_up, (size_t)nb * QM__MAX(hp->n_ff, hp->n_ff_exp), float);
    QM__BUF(ff_down, (size_t)nb * hp->n_embd, float);
    QM__BUF(sel, (size_t)nb * QM__MAX(hp->n_expert_used, 1), int32_t);
    QM__BUF(sel_w, (size_t)nb * QM__MAX(hp->n_expert_used, 1), float);
    QM__BUF(exp_tokens, (size_t)nb * 2, int32_t);
    QM__BUF(exp_x, (size_t)nb * hp->n_embd, float);
    QM__BUF(scores, (size_t)nt * c->n_ctx, float);
    c->qact = qm__calloc_f((size_t)nb * (size_t)maxrow * 5 + 4096, 1, &ok); /* <= 5 bytes per element in any format */
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
    *out = c;
    return QM_OK;
}

QMDEF void qm_context_free(qm_context *c) {
    if (!c) return;
    if (c->pool.n_threads) qm__pool_free(&c->pool);
    QM_FREE(c->k_cache); QM_FREE(c->v_cache); QM_FREE(c->rope_cos); QM_FREE(c->rope_sin);
    QM_FREE(c->x); QM_FREE(c->xn); QM_FREE(c->q); QM_FREE(c->k); QM_FREE(c->v); QM_FREE(c->att);
    QM_FREE(c->o); QM_FREE(c->moe); QM_FREE(c->router); QM_FREE(c->ff_gate); QM_FREE(c->ff_up);
    QM_FREE(c->ff_down); QM_FREE(c->sel); QM_FREE(c->sel_w); QM_FREE(c->exp_tokens); QM_FREE(c->exp_x);
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

typedef struct qm__attn_job {
    qm_context *c;
    int layer, T;
} qm__attn_job;

/* Causal GQA attention for every (token, head) pair; q head h reads kv head h / n_gqa. */
static void qm__attn_task(void *arg, int ith, int nth) {
    qm__attn_job *j = QM__CAST(qm__attn_job *, arg);
    qm_context *c = j->c;
    const qm_hparams *hp = &c->m->hp;
    int hd = hp->head_dim, kvd = hp->n_head_kv * hd, n_gqa = hp->n_head / hp->n_head_kv;
    int total = j->T * hp->n_head, idx, f16 = c->p.kv_type == QM_KV_F16;
    float *sc = c->scores + (size_t)ith * c->n_ctx;
    float scale = 1.0f / qm__sqrtf(QM__CAST(float, hd));
    size_t layer_off = (size_t)j->layer * c->n_ctx * kvd;
    for (idx = ith; idx < total; idx += nth) {
        int t = idx / hp->n_head, h = idx % hp->n_head, kvh = h / n_gqa;
        int n_kv = c->pos + t + 1, p, i;
        const float *q = c->q + (size_t)t * hp->n_head * hd + (size_t)h * hd;
        float *out = c->att + (size_t)t * hp->n_head * hd + (size_t)h * hd;
        float mx = -3.4e38f, sum = 0.0f;
        for (p = 0; p < n_kv; p++) {
            size_t off = layer_off + (size_t)p * kvd + (size_t)kvh * hd;
            float s = 0.0f;
            if (f16) {
                const uint16_t *kr = QM__CAST(const uint16_t *, c->k_cache) + off;
                for (i = 0; i < hd; i++) s += q[i] * qm_fp16_to_fp32(kr[i]);
            } else {
                s = qm__dot_f32(q, QM__CAST(const float *, c->k_cache) + off, hd);
            }
            s *= scale;
            sc[p] = s;
            if (s > mx) mx = s;
        }
        for (p = 0; p < n_kv; p++) { sc[p] = qm__expf(sc[p] - mx); sum += sc[p]; }
        for (i = 0; i < hd; i++) out[i] = 0.0f;
        for (p = 0; p < n_kv; p++) {
            size_t off = layer_off + (size_t)p * kvd + (size_t)kvh * hd;
            float wgt = sc[p] / sum;
            if (f16) {
                const uint16_t *vr = QM__CAST(const uint16_t *, c->v_cache) + off;
                for (i = 0; i < hd; i++) out[i] += wgt * qm_fp16_to_fp32(vr[i]);
            } else {
                const float *vr = QM__CAST(const float *, c->v_cache) + off;
                for (i = 0; i < hd; i++) out[i] += wgt * vr[i];
            }
        }
    }
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

/* SwiGLU experts for T tokens: tokens are grouped by expert, so each expert's weights are
   read once per batch however many tokens chose it. */
static void qm__moe(qm_context *c, const qm__layer *L, int T) {
    const qm_hparams *hp = &c->m->hp;
    int K = hp->n_expert_used, ff = hp->n_ff_exp, E = hp->n_embd, e, t, k, i, n;
    memset(c->moe, 0, sizeof(float) * (size_t)T * E);
    for (e = 0; e < hp->n_expert; e++) {
        n = 0;
        for (t = 0; t < T; t++)
            for (k = 0; k < K; k++)
                if (c->sel[t * K + k] == e) {
                    c->exp_tokens[2 * n] = t;
                    c->exp_tokens[2 * n + 1] = k;
                    memcpy(c->exp_x + (size_t)n * E, c->xn + (size_t)t * E, sizeof(float) * E);
                    n++;
                }
        if (!n) continue;
        qm__matmul(&c->pool, c->qact, &L->gate_exps, e, c->exp_x, E, c->ff_gate, ff, n);
        qm__matmul(&c->pool, c->qact, &L->up_exps, e, c->exp_x, E, c->ff_up, ff, n);
        for (i = 0; i < n * ff; i++) c->ff_gate[i] = qm__silu(c->ff_gate[i]) * c->ff_up[i];
        qm__matmul(&c->pool, c->qact, &L->down_exps, e, c->ff_gate, ff, c->ff_down, E, n);
        for (i = 0; i < n; i++) {
            int tt = c->exp_tokens[2 * i], kk = c->exp_tokens[2 * i + 1];
            float w = c->sel_w[tt * K + kk];
            float *dst = c->moe + (size_t)tt * E;
            const float *src = c->ff_down + (size_t)i * E;
            int d;
            for (d = 0; d < E; d++) dst[d] += w * src[d];
        }
    }
}

static void qm__ffn_dense(qm_context *c, const qm__layer *L, int T) {
    const qm_hparams *hp = &c->m->hp;
    int i;
    qm__matmul(&c->pool, c->qact, &L->ffn_gate, 0, c->xn, hp->n_embd, c->ff_gate, hp->n_ff, T);
    qm__matmul(&c->pool, c->qact, &L->ffn_up, 0, c->xn, hp->n_embd, c->ff_up, hp->n_ff, T);
    for (i = 0; i < T * hp->n_ff; i++) c->ff_gate[i] = qm__silu(c->ff_gate[i]) * c->ff_up[i];
    qm__matmul(&c->pool, c->qact, &L->ffn_down, 0, c->ff_gate, hp->n_ff, c->moe, hp->n_embd, T);
}

/* One forward over T <= n_batch tokens at positions pos..pos+T-1. */
static void qm__forward(qm_context *c, const int32_t *tokens, int T) {
    const qm_model *m = c->m;
    const qm_hparams *hp = &m->hp;
    int E = hp->n_embd, hd = hp->head_dim, qd = hp->n_head * hd, kvd = hp->n_head_kv * hd, half = hd / 2;
    int il, t, i, f16 = c->p.kv_type == QM_KV_F16;
    int out_rows = c->p.all_logits ? T : 1;

    /* token embeddings */
    for (t = 0; t < T; t++)
        qm_dequantize_row(m->tok_embd.type, m->tok_embd.data + (size_t)tokens[t] * m->tok_embd.row_bytes,
                          c->x + (size_t)t * E, E);

    for (il = 0; il < hp->n_layer; il++) {
        const qm__layer *L = &m->layers[il];
        qm__attn_job aj;

        /* attention block */
        for (t = 0; t < T; t++) qm__rmsnorm(c->xn + (size_t)t * E, c->x + (size_t)t * E, L->attn_norm, E, hp->rms_eps);
        qm__trace(c, il, "attn_norm", c->xn, T, E);
        qm__matmul(&c->pool, c->qact, &L->wq, 0, c->xn, E, c->q, qd, T);
        qm__matmul(&c->pool, c->qact, &L->wk, 0, c->xn, E, c->k, kvd, T);
        qm__matmul(&c->pool, c->qact, &L->wv, 0, c->xn, E, c->v, kvd, T);
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
        for (t = 0; t < T; t++) qm__rmsnorm(c->xn + (size_t)t * E, c->x + (size_t)t * E, L->ffn_norm, E, hp->rms_eps);
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
            qm__moe(c, L, T);
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
        for (t = 0; t < out_rows; t++) qm__rmsnorm(c->xn + (size_t)t * E, src + (size_t)t * E, m->output_norm, E, hp->rms_eps);
        qm__trace(c, -1, "result_norm", c->xn, out_rows, E);
        qm__matmul(&c->pool, c->qact, &m->output, 0, c->xn, E, c->logits, hp->n_vocab, out_rows);
        c->n_logits = out_rows;
    }
    c->pos += T;
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
    for (done = 0; done < n; done += c->n_batch)
        qm__forward(c, tokens + done, QM__MIN(c->n_batch, n - done));
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

#include "wip/tokenizer.h"

/* ===================================================================================== */
/*  6. generate                                                                          */
/* ===================================================================================== */

#include "wip/chat.h"
#include "wip/sampler.h"

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
        char piece[256], text[256 + 8];
        int plen;
        size_t tlen, emit, hold;
        cur = qm_sampler_sample(smp, qm_logits(c, -1));
        if (!gp.ignore_eos && qm_token_is_eog(tok, cur)) { st.stop_reason = QM_STOP_EOG; break; }
        n_gen++;
        /* the token's text */
        plen = 0;
        if (!(gp.skip_special && qm_token_type(tok, cur) == QM_TOKEN_CONTROL)) {
            plen = qm_token_to_bytes(tok, cur, piece, (int)sizeof(piece));
            if (plen < 0 || plen > (int)sizeof(piece)) plen = 0;
        }
        tlen = qm_utf8_stream_push(&u8, piece, (size_t)plen, text);
        if (pend_n + tlen > pend_cap) {
            size_t nc = (pend_n + tlen) * 2;
            char *np = QM__CAST(char *, QM_REALLOC(pend, nc));
            if (!np) { r = qm__err(err, QM_ERR_OOM, "out of memory"); goto done; }
            pend = np; pend_cap = nc;
        }
        memcpy(pend + pend_n, text, tlen);
        pend_n += tlen;
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
