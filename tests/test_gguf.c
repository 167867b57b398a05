/* GGUF reader tests: well-formed files built byte by byte here (every value type, nested
   arrays, v2 and v3, custom alignment), and hostile ones: truncation at every offset of a
   real model's header and tensor table, flipped bytes, huge counts, misaligned and
   out-of-file offsets, unknown types, bad key types. Every bad case must fail cleanly. */
#define QWENMOE_IMPLEMENTATION
#include "qwenmoe.h"
#include "tests/qmtest.h"
#include <stdlib.h>
#include <string.h>

/* ---- a tiny GGUF builder ---- */
typedef struct buf { unsigned char *p; size_t n, cap; } buf;
static void put(buf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) { b->cap = (b->n + n) * 2 + 64; b->p = (unsigned char *)realloc(b->p, b->cap); }
    memcpy(b->p + b->n, d, n); b->n += n;
}
static void u8(buf *b, unsigned v) { unsigned char c = (unsigned char)v; put(b, &c, 1); }
static void u16(buf *b, unsigned v) { u8(b, v & 255); u8(b, v >> 8); }
static void u32(buf *b, uint32_t v) { u16(b, v & 0xffff); u16(b, v >> 16); }
static void u64(buf *b, uint64_t v) { u32(b, (uint32_t)v); u32(b, (uint32_t)(v >> 32)); }
static void f32(buf *b, float f) { uint32_t u; memcpy(&u, &f, 4); u32(b, u); }
static void f64(buf *b, double f) { uint64_t u; memcpy(&u, &f, 8); u64(b, u); }
static void str(buf *b, const char *s) { u64(b, strlen(s)); put(b, s, strlen(s)); }
static void pad(buf *b, size_t a) { while (b->n % a) u8(b, 0); }

/* header + kvs written by the caller; then one f32 tensor "t" [8] and its data */
static void header(buf *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    put(b, "GGUF", 4); u32(b, version); u64(b, n_tensors); u64(b, n_kv);
}

static qm_result parse(const buf *b, qm_gguf **g, qm_error *err) {
    return qm_gguf_open_memory(b->p, b->n, NULL, g, err);
}

static void test_all_types(void) {
    buf b = {0, 0, 0};
    qm_gguf *g = NULL;
    qm_error err;
    int64_t iv, i;
    uint64_t uv;
    double dv;
    qm_str s;
    int bv;
    const qm_gguf_tensor *t;
    header(&b, 3, 1, 15);
    str(&b, "k.u8"); u32(&b, QM_GGUF_UINT8); u8(&b, 200);
    str(&b, "k.i8"); u32(&b, QM_GGUF_INT8); u8(&b, 0x80);
    str(&b, "k.u16"); u32(&b, QM_GGUF_UINT16); u16(&b, 65535);
    str(&b, "k.i16"); u32(&b, QM_GGUF_INT16); u16(&b, 0xffff);
    str(&b, "k.u32"); u32(&b, QM_GGUF_UINT32); u32(&b, 4000000000u);
    str(&b, "k.i32"); u32(&b, QM_GGUF_INT32); u32(&b, (uint32_t)-5);
    str(&b, "k.f32"); u32(&b, QM_GGUF_FLOAT32); f32(&b, 1e-6f);
    str(&b, "k.bool"); u32(&b, QM_GGUF_BOOL); u8(&b, 1);
    str(&b, "k.str"); u32(&b, QM_GGUF_STRING); str(&b, "qwen3moe");
    str(&b, "k.u64"); u32(&b, QM_GGUF_UINT64); u64(&b, 18446744073709551615ull);
    str(&b, "k.i64"); u32(&b, QM_GGUF_INT64); u64(&b, (uint64_t)-123456789012ll);
    str(&b, "k.f64"); u32(&b, QM_GGUF_FLOAT64); f64(&b, 1e7);
    str(&b, "k.arr_i32"); u32(&b, QM_GGUF_ARRAY); u32(&b, QM_GGUF_INT32); u64(&b, 3); u32(&b, 1); u32(&b, (uint32_t)-2); u32(&b, 3);
    str(&b, "k.arr_str"); u32(&b, QM_GGUF_ARRAY); u32(&b, QM_GGUF_STRING); u64(&b, 3); str(&b, "a"); str(&b, ""); str(&b, "Ġworld");
    /* nested: array of 2 arrays of u8 */
    str(&b, "k.nested"); u32(&b, QM_GGUF_ARRAY); u32(&b, QM_GGUF_ARRAY); u64(&b, 2);
    u32(&b, QM_GGUF_UINT8); u64(&b, 2); u8(&b, 1); u8(&b, 2);
    u32(&b, QM_GGUF_UINT8); u64(&b, 1); u8(&b, 3);
    str(&b, "t"); u32(&b, 1); u64(&b, 8); u32(&b, QM_TYPE_F32); u64(&b, 0);
    pad(&b, 32);
    for (i = 0; i < 8; i++) f32(&b, (float)i);
    CHECK(parse(&b, &g, &err) == QM_OK, "%s", err.message);
    if (!g) return;
    CHECK(qm_gguf_n_kv(g) == 15 && qm_gguf_n_tensors(g) == 1, "counts");
    CHECK(qm_gguf_get_i64(g, "k.u8", &iv, NULL) == QM_OK && iv == 200, "u8");
    CHECK(qm_gguf_get_i64(g, "k.i8", &iv, NULL) == QM_OK && iv == -128, "i8");
    CHECK(qm_gguf_get_i64(g, "k.u16", &iv, NULL) == QM_OK && iv == 65535, "u16");
    CHECK(qm_gguf_get_i64(g, "k.i16", &iv, NULL) == QM_OK && iv == -1, "i16");
    CHECK(qm_gguf_get_i64(g, "k.u32", &iv, NULL) == QM_OK && iv == 4000000000ll, "u32");
    CHECK(qm_gguf_get_i64(g, "k.i32", &iv, NULL) == QM_OK && iv == -5, "i32");
    CHECK(qm_gguf_get_u64(g, "k.i32", &uv, &err) == QM_ERR_TYPE, "negative as u64 refused");
    CHECK(qm_gguf_get_u64(g, "k.u64", &uv, NULL) == QM_OK && uv == 18446744073709551615ull, "u64 max");
    CHECK(qm_gguf_get_i64(g, "k.u64", &iv, &err) == QM_ERR_TYPE, "u64 max does not fit i64");
    CHECK(qm_gguf_get_i64(g, "k.i64", &iv, NULL) == QM_OK && iv == -123456789012ll, "i64");
    CHECK(qm_gguf_get_f64(g, "k.f32", &dv, NULL) == QM_OK && (float)dv == 1e-6f, "f32");
    CHECK(qm_gguf_get_f64(g, "k.f64", &dv, NULL) == QM_OK && dv == 1e7, "f64");
    CHECK(qm_gguf_get_f64(g, "k.u32", &dv, NULL) == QM_OK && dv == 4e9, "int as float");
    CHECK(qm_gguf_get_i64(g, "k.f32", &iv, &err) == QM_ERR_TYPE && strstr(err.message, "k.f32") && strstr(err.message, "f32"),
          "float as int refused with key and type named: %s", err.message);
    CHECK(qm_gguf_get_bool(g, "k.bool", &bv, NULL) == QM_OK && bv == 1, "bool");
    CHECK(qm_gguf_get_str(g, "k.str", &s, NULL) == QM_OK && s.len == 8 && !memcmp(s.ptr, "qwen3moe", 8), "str");
    CHECK(qm_gguf_get_str(g, "k.u8", &s, &err) == QM_ERR_TYPE && strstr(err.message, "expected a string"), "%s", err.message);
    CHECK(qm_gguf_get_i64(g, "nope", &iv, &err) == QM_ERR_NOT_FOUND && strstr(err.message, "'nope'"), "%s", err.message);
    i = qm_gguf_find_key(g, "k.arr_i32");
    CHECK(qm_gguf_arr_type(g, i) == QM_GGUF_INT32 && qm_gguf_arr_count(g, i) == 3, "arr meta");
    CHECK(qm_gguf_arr_i64(g, i, 1, &iv) == QM_OK && iv == -2, "arr elem");
    CHECK(qm_gguf_arr_i64(g, i, 3, &iv) == QM_ERR_INVALID_ARG, "arr out of range");
    i = qm_gguf_find_key(g, "k.arr_str");
    CHECK(qm_gguf_arr_str(g, i, 2, &s) == QM_OK && s.len == 7 && !memcmp(s.ptr, "Ġworld", 7), "arr str");
    CHECK(qm_gguf_arr_str(g, i, 1, &s) == QM_OK && s.len == 0, "empty str elem");
    i = qm_gguf_find_key(g, "k.nested");
    CHECK(qm_gguf_arr_type(g, i) == QM_GGUF_ARRAY && qm_gguf_arr_count(g, i) == 2, "nested array");
    t = qm_gguf_find_tensor(g, "t");
    CHECK(t && t->type == QM_TYPE_F32 && t->ne[0] == 8 && t->nbytes == 32 && ((const float *)t->data)[7] == 7.0f, "tensor view");
    CHECK(qm_gguf_alignment(g) == 32, "default alignment");
    qm_gguf_close(g);
    free(b.p);
}

static void test_v2_and_alignment(void) {
    buf b = {0, 0, 0};
    qm_gguf *g = NULL;
    qm_error err;
    header(&b, 2, 2, 1);
    str(&b, "general.alignment"); u32(&b, QM_GGUF_UINT32); u32(&b, 64);
    str(&b, "a"); u32(&b, 1); u64(&b, 32); u32(&b, QM_TYPE_Q8_0); u64(&b, 0);
    str(&b, "b"); u32(&b, 2); u64(&b, 4); u64(&b, 2); u32(&b, QM_TYPE_F16); u64(&b, 64);
    pad(&b, 64);
    { int i; for (i = 0; i < 64 + 16; i++) u8(&b, 0); } /* a at 0 (34 bytes), b at 64 (16 bytes) */
    CHECK(parse(&b, &g, &err) == QM_OK, "v2 file: %s", err.message);
    if (g) {
        CHECK(qm_gguf_version(g) == 2 && qm_gguf_alignment(g) == 64, "v2 alignment 64");
        CHECK(qm_gguf_find_tensor(g, "b") && qm_gguf_find_tensor(g, "b")->nbytes == 16, "f16 [4,2] is 16 bytes");
        qm_gguf_close(g);
    }
    free(b.p);
}

/* each builder makes a file with one defect; the message must contain `want` */
typedef void (*builder)(buf *b);
static void bad_magic(buf *b) { put(b, "GGUX", 4); u32(b, 3); u64(b, 0); u64(b, 0); }
static void bad_version(buf *b) { header(b, 1, 0, 0); }
static void huge_kv(buf *b) { header(b, 3, 0, 0xffffffffffffull); }
static void huge_tensors(buf *b) { header(b, 3, 1ull << 60, 0); }
static void bad_kv_type(buf *b) { header(b, 3, 0, 1); str(b, "x"); u32(b, 13); u32(b, 0); }
static void bad_bool(buf *b) { header(b, 3, 0, 1); str(b, "x"); u32(b, QM_GGUF_BOOL); u8(b, 2); }
static void long_string(buf *b) { header(b, 3, 0, 1); str(b, "x"); u32(b, QM_GGUF_STRING); u64(b, 1ull << 62); }
static void huge_array(buf *b) { header(b, 3, 0, 1); str(b, "x"); u32(b, QM_GGUF_ARRAY); u32(b, QM_GGUF_UINT64); u64(b, 1ull << 61); }
static void huge_str_array(buf *b) { header(b, 3, 0, 1); str(b, "x"); u32(b, QM_GGUF_ARRAY); u32(b, QM_GGUF_STRING); u64(b, 1ull << 40); }
static void bad_arr_type(buf *b) { header(b, 3, 0, 1); str(b, "x"); u32(b, QM_GGUF_ARRAY); u32(b, 77); u64(b, 1); }
static void deep_array(buf *b) {
    int i;
    header(b, 3, 0, 1); str(b, "x"); u32(b, QM_GGUF_ARRAY);
    for (i = 0; i < 20; i++) { u32(b, QM_GGUF_ARRAY); u64(b, 1); }
    u32(b, QM_GGUF_UINT8); u64(b, 0);
}
static void dup_key(buf *b) { header(b, 3, 0, 2); str(b, "x"); u32(b, QM_GGUF_UINT8); u8(b, 1); str(b, "x"); u32(b, QM_GGUF_UINT8); u8(b, 1); }
static void bad_alignment(buf *b) { header(b, 3, 0, 1); str(b, "general.alignment"); u32(b, QM_GGUF_UINT32); u32(b, 48); }
static void small_alignment(buf *b) { header(b, 3, 0, 1); str(b, "general.alignment"); u32(b, QM_GGUF_UINT32); u32(b, 4); }
static void float_alignment(buf *b) { header(b, 3, 0, 1); str(b, "general.alignment"); u32(b, QM_GGUF_FLOAT32); f32(b, 32); }
static void tensor_tail(buf *b, uint32_t nd, uint64_t d0, uint32_t type, uint64_t off) {
    header(b, 3, 1, 0); str(b, "w"); u32(b, nd); u64(b, d0); u32(b, type); u64(b, off);
    pad(b, 32);
    { int i; for (i = 0; i < 64; i++) u8(b, 0); }
}
static void five_dims(buf *b) { header(b, 3, 1, 0); str(b, "w"); u32(b, 5); u64(b, 1); u64(b, 1); u64(b, 1); u64(b, 1); u64(b, 1); u32(b, 0); u64(b, 0); }
static void zero_dim(buf *b) { tensor_tail(b, 1, 0, QM_TYPE_F32, 0); }
static void unknown_type(buf *b) { tensor_tail(b, 1, 32, 4, 0); }
static void huge_type(buf *b) { tensor_tail(b, 1, 32, 1000, 0); }
static void partial_block(buf *b) { tensor_tail(b, 1, 48, QM_TYPE_Q4_K, 0); }
static void misaligned(buf *b) { tensor_tail(b, 1, 4, QM_TYPE_F32, 8); }
static void out_of_file(buf *b) { tensor_tail(b, 1, 32, QM_TYPE_F32, 32); }
static void overflow_dims(buf *b) { header(b, 3, 1, 0); str(b, "w"); u32(b, 4); u64(b, 1ull << 20); u64(b, 1ull << 20); u64(b, 1ull << 20); u64(b, 1ull << 20); u32(b, 0); u64(b, 0); }
static void long_name(buf *b) {
    char nm[100]; memset(nm, 'a', 99); nm[99] = 0;
    header(b, 3, 1, 0); str(b, nm); u32(b, 1); u64(b, 1); u32(b, 0); u64(b, 0);
}
static void dup_tensor(buf *b) { header(b, 3, 2, 0); str(b, "w"); u32(b, 1); u64(b, 8); u32(b, 0); u64(b, 0); str(b, "w"); u32(b, 1); u64(b, 8); u32(b, 0); u64(b, 32); pad(b, 32); { int i; for (i = 0; i < 64; i++) u8(b, 0); } }

static void test_hostile(void) {
    struct { const char *name; builder fn; qm_result code; const char *want; } cases[] = {
        {"bad magic", bad_magic, QM_ERR_FORMAT, "magic"},
        {"version 1", bad_version, QM_ERR_UNSUPPORTED, "version 1"},
        {"huge kv count", huge_kv, QM_ERR_FORMAT, "metadata count"},
        {"huge tensor count", huge_tensors, QM_ERR_FORMAT, "tensor count"},
        {"bad value type", bad_kv_type, QM_ERR_FORMAT, "value type 13"},
        {"bool 2", bad_bool, QM_ERR_FORMAT, "not 0 or 1"},
        {"string past end", long_string, QM_ERR_FORMAT, "past the end"},
        {"array past end", huge_array, QM_ERR_FORMAT, "past the end"},
        {"string array count", huge_str_array, QM_ERR_FORMAT, "cannot fit"},
        {"array elem type", bad_arr_type, QM_ERR_FORMAT, "element type 77"},
        {"deep nesting", deep_array, QM_ERR_FORMAT, "nested deeper"},
        {"duplicate key", dup_key, QM_ERR_FORMAT, "duplicate metadata key 'x'"},
        {"alignment 48", bad_alignment, QM_ERR_FORMAT, "power of two"},
        {"alignment 4", small_alignment, QM_ERR_FORMAT, "power of two >= 8"},
        {"float alignment", float_alignment, QM_ERR_FORMAT, "must be an integer"},
        {"5 dims", five_dims, QM_ERR_FORMAT, "5 dimensions"},
        {"zero dim", zero_dim, QM_ERR_FORMAT, "dimension 0 is 0"},
        {"removed type 4", unknown_type, QM_ERR_FORMAT, "type id 4"},
        {"type 1000", huge_type, QM_ERR_FORMAT, "type id 1000"},
        {"partial block", partial_block, QM_ERR_FORMAT, "not a multiple of q4_K"},
        {"misaligned offset", misaligned, QM_ERR_FORMAT, "not a multiple of the alignment"},
        {"data out of file", out_of_file, QM_ERR_FORMAT, "past the end of the file"},
        {"element overflow", overflow_dims, QM_ERR_FORMAT, "overflow"},
        {"name too long", long_name, QM_ERR_FORMAT, "expected 1..63"},
        {"duplicate tensor", dup_tensor, QM_ERR_FORMAT, "duplicate tensor name 'w'"},
    };
    size_t i;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        buf b = {0, 0, 0};
        qm_gguf *g = NULL;
        qm_error err;
        qm_result r;
        memset(&err, 0, sizeof(err));
        cases[i].fn(&b);
        r = parse(&b, &g, &err);
        CHECK(r == cases[i].code && g == NULL && strstr(err.message, cases[i].want) != NULL,
              "%s: got %d '%s', want %d containing '%s'", cases[i].name, r, err.message, cases[i].code, cases[i].want);
        CHECK(strncmp(err.message, "<memory>", 8) == 0, "%s: message names the source: %s", cases[i].name, err.message);
        qm_gguf_close(g);
        free(b.p);
    }
}

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    unsigned char *p;
    long sz;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END); sz = ftell(f); fseek(f, 0, SEEK_SET);
    p = (unsigned char *)malloc((size_t)sz);
    if (fread(p, 1, (size_t)sz, f) != (size_t)sz) { free(p); p = NULL; }
    fclose(f);
    *n = (size_t)sz;
    return p;
}

/* A real model: open three ways; then truncate at every offset up to the data section and
   flip bytes; the reader must fail cleanly (or succeed, for harmless flips), never crash. */
static void test_model_file(const char *path) {
    qm_gguf *g = NULL, *g2 = NULL, *g3 = NULL;
    qm_gguf_params np;
    qm_error err;
    size_t n, cut, i, hdr_end;
    unsigned char *data = slurp(path, &n), *copy;
    int bad_trunc = 0, flips_ok = 0, flips_err = 0;
    uint64_t seed = 12345;
    CHECK(data != NULL, "read %s", path);
    if (!data) return;
    CHECK(qm_gguf_open(path, NULL, &g, &err) == QM_OK, "%s", err.message);
    memset(&np, 0, sizeof(np));
    np.no_mmap = 1;
    CHECK(qm_gguf_open(path, &np, &g2, &err) == QM_OK, "%s", err.message);
    CHECK(qm_gguf_open_memory(data, n, NULL, &g3, &err) == QM_OK, "%s", err.message);
    { /* the same image at an odd address is refused: its tensor data would be misaligned */
        unsigned char *odd = (unsigned char *)malloc(n + 8);
        qm_gguf *t = NULL;
        if (odd) {
            int k;
            for (k = 1; k < 8; k++) {
                memcpy(odd + k, data, n);
                CHECK(qm_gguf_open_memory(odd + k, n, NULL, &t, &err) == QM_ERR_INVALID_ARG && t == NULL &&
                      strstr(err.message, "not 8-byte aligned"), "buffer at +%d: %s", k, err.message);
            }
            free(odd);
        }
    }
    if (!g || !g2 || !g3) { free(data); return; }
    CHECK(qm_gguf_is_mmapped(g) && !qm_gguf_is_mmapped(g2), "mmap vs read");
    CHECK(qm_gguf_n_tensors(g) == qm_gguf_n_tensors(g2) && qm_gguf_n_kv(g) == qm_gguf_n_kv(g3), "same tables");
    for (i = 0; i < (size_t)qm_gguf_n_tensors(g); i++) {
        const qm_gguf_tensor *a = qm_gguf_tensor_at(g, (int64_t)i), *b = qm_gguf_tensor_at(g2, (int64_t)i);
        if (a->nbytes != b->nbytes || memcmp(a->data, b->data, a->nbytes) != 0) { CHECK(0, "tensor %zu differs between mmap and read", i); break; }
    }
    hdr_end = 0;
    for (i = 0; i < (size_t)qm_gguf_n_tensors(g3); i++) {
        size_t start = (size_t)((const unsigned char *)qm_gguf_tensor_at(g3, (int64_t)i)->data - data);
        if (i == 0 || start < hdr_end) hdr_end = start;
    }
    qm_gguf_close(g2);
    g2 = NULL;
    CHECK(qm_gguf_open("/nonexistent/x.gguf", NULL, &g2, &err) == QM_ERR_IO && strstr(err.message, "/nonexistent/x.gguf"), "missing file: %s", err.message);
    qm_gguf_close(g); qm_gguf_close(g3);
    np.no_mmap = 0;
    /* truncation at every offset of header + tables, and a stride through the data */
    copy = (unsigned char *)malloc(n);
    for (cut = 0; cut < n; cut += cut < hdr_end + 64 ? 1 : 97) {
        qm_gguf *t = NULL;
        qm_result r;
        memcpy(copy, data, cut);
        r = qm_gguf_open_memory(copy, cut, NULL, &t, &err);
        if (r == QM_OK || t != NULL || err.message[0] == 0) bad_trunc++;
        qm_gguf_close(t);
    }
    CHECK(bad_trunc == 0, "%d truncated files were accepted or gave no message", bad_trunc);
    /* random byte flips in the header and tables */
    for (i = 0; i < 20000; i++) {
        qm_gguf *t = NULL;
        size_t pos;
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        pos = (size_t)(seed >> 33) % (hdr_end ? hdr_end : 1);
        memcpy(copy, data, n);
        copy[pos] ^= (unsigned char)(1u << ((seed >> 20) & 7));
        if (qm_gguf_open_memory(copy, n, NULL, &t, &err) == QM_OK) {
            int64_t k;
            /* whatever was accepted must be internally consistent */
            for (k = 0; k < qm_gguf_n_tensors(t); k++) {
                const qm_gguf_tensor *tt = qm_gguf_tensor_at(t, k);
                if ((const unsigned char *)tt->data < copy || (const unsigned char *)tt->data + tt->nbytes > copy + n) flips_err++;
            }
            flips_ok++;
        }
        qm_gguf_close(t);
    }
    CHECK(flips_err == 0, "%d accepted flips had tensors outside the file", flips_err);
    printf("# gguf: %d/20000 single-bit flips were still valid files\n", flips_ok);
    free(copy);
    free(data);
}

static void test_memory_cap(const char *path) {
    qm_gguf *g = NULL;
    qm_gguf_params p;
    qm_error err;
    memset(&p, 0, sizeof(p));
    p.max_alloc_bytes = 64;
    CHECK(qm_gguf_open(path, &p, &g, &err) == QM_ERR_OOM && strstr(err.message, "cap"), "cap: %s", err.message);
    qm_gguf_close(g);
}

/* Many keys and tensors: the duplicate check sorts the names, so it must still find a pair
   that is far apart and differs from its neighbours only in the last bytes, and must accept
   names that share a length and a long prefix (regression of the fuzzing find: the pairwise
   check took 12.6 s on 80 k keys). */
static void test_many_names(void) {
    const int n = 50000;
    int dup, i;
    char name[32];
    for (dup = 0; dup < 2; dup++) {
        buf b = {0, 0, 0};
        qm_gguf *g = NULL;
        qm_error err;
        qm_result r;
        memset(&err, 0, sizeof(err));
        header(&b, 3, 0, (uint64_t)n);
        for (i = 0; i < n; i++) {
            /* with dup, the last key repeats key 3 */
            snprintf(name, sizeof(name), "key.prefix.%08d", dup && i == n - 1 ? 3 : i);
            str(&b, name); u32(&b, QM_GGUF_UINT8); u8(&b, (unsigned)i & 255);
        }
        r = parse(&b, &g, &err);
        if (!dup) {
            CHECK(r == QM_OK && g && qm_gguf_n_kv(g) == n, "%d distinct keys of one length: %s", n, r == QM_OK ? "" : err.message);
        } else {
            CHECK(r == QM_ERR_FORMAT && !g && strstr(err.message, "duplicate metadata key 'key.prefix.00000003'"),
                  "keys 3 and %d equal: got %d '%s'", n - 1, r, err.message);
        }
        qm_gguf_close(g);
        free(b.p);
    }
}

int main(int argc, char **argv) {
    test_all_types();
    test_many_names();
    test_v2_and_alignment();
    test_hostile();
    if (argc > 1) {
        test_model_file(argv[1]);
        test_memory_cap(argv[1]);
    } else {
        CHECK(0, "usage: test_gguf MODEL.gguf");
    }
    return qmtest_summary("gguf");
}
