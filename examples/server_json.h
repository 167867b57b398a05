/* server_json.h - the small JSON reader and writer of examples/server.c (qwenmoe-server).
   Include it in one C file (every function is static). C99, no dependencies but libc.

   Reader: qms_json_parse() builds a tree of qms_json nodes (RFC 8259: strict grammar, UTF-8
   checked, \uXXXX escapes with surrogate pairs, a depth limit); object members keep their
   order, as Python's dict does (the chat template walks them in order).
   Writer: qms_buf, a growing byte buffer, and qms_buf_json_str() for escaped strings.
   Python's view of a JSON value, for the chat template: qms_py_str() is str(value) (what
   jinja2's `| string` and {{ value }} print), qms_py_json() is json.dumps(value,
   ensure_ascii=False) (transformers' `tojson`). */
#ifndef QWENMOE_SERVER_JSON_H
#define QWENMOE_SERVER_JSON_H

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>

#if defined(__GNUC__) || defined(__clang__)
#define QMS_FN static __attribute__((unused))
#else
#define QMS_FN static
#endif

/* ------------------------------------------------------------------------------------- */
/*  Byte buffer                                                                          */
/* ------------------------------------------------------------------------------------- */

typedef struct qms_buf {
    char *p;     /* always NUL-terminated when len > 0 or after any put */
    size_t len;
    size_t cap;
    int oom;     /* an allocation failed: the content is incomplete */
} qms_buf;

QMS_FN int qms_buf_reserve(qms_buf *b, size_t extra) {
    size_t need, nc;
    char *np;
    if (b->oom) return 0;
    need = b->len + extra + 1;
    if (need <= b->cap) return 1;
    nc = b->cap ? b->cap : 256;
    while (nc < need) nc *= 2;
    np = (char *)realloc(b->p, nc);
    if (!np) { b->oom = 1; return 0; }
    b->p = np;
    b->cap = nc;
    return 1;
}
QMS_FN void qms_buf_put(qms_buf *b, const char *s, size_t n) {
    if (!qms_buf_reserve(b, n)) return;
    if (n) memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}
QMS_FN void qms_buf_puts(qms_buf *b, const char *s) { qms_buf_put(b, s, strlen(s)); }
QMS_FN void qms_buf_putc(qms_buf *b, char c) { qms_buf_put(b, &c, 1); }
QMS_FN void qms_buf_printf(qms_buf *b, const char *fmt, ...) {
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !qms_buf_reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}
QMS_FN void qms_buf_free(qms_buf *b) {
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    b->oom = 0;
}
/* The content as a C string ("" for an empty buffer). */
QMS_FN const char *qms_buf_str(const qms_buf *b) { return b->p ? b->p : ""; }

/* A JSON string literal: quotes, \" \\ and control characters escaped; other bytes (UTF-8)
   are written as they are. */
QMS_FN void qms_buf_json_str(qms_buf *b, const char *s, size_t n) {
    size_t i, run = 0;
    qms_buf_putc(b, '"');
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char tmp[8];
        if (c == '"') esc = "\\\"";
        else if (c == '\\') esc = "\\\\";
        else if (c == '\n') esc = "\\n";
        else if (c == '\r') esc = "\\r";
        else if (c == '\t') esc = "\\t";
        else if (c == '\b') esc = "\\b";
        else if (c == '\f') esc = "\\f";
        else if (c < 0x20) { snprintf(tmp, sizeof(tmp), "\\u%04x", c); esc = tmp; }
        if (esc) {
            qms_buf_put(b, s + run, i - run);
            qms_buf_puts(b, esc);
            run = i + 1;
        }
    }
    qms_buf_put(b, s + run, n - run);
    qms_buf_putc(b, '"');
}
QMS_FN void qms_buf_json_cstr(qms_buf *b, const char *s) { qms_buf_json_str(b, s, strlen(s)); }

/* ------------------------------------------------------------------------------------- */
/*  Tree                                                                                 */
/* ------------------------------------------------------------------------------------- */

typedef enum qms_jtype {
    QMS_JNULL = 0, QMS_JFALSE, QMS_JTRUE, QMS_JNUM, QMS_JSTR, QMS_JARR, QMS_JOBJ
} qms_jtype;

typedef struct qms_json {
    qms_jtype type;
    char *str;               /* JSTR: the decoded UTF-8, NUL-terminated; JNUM: the number's text */
    size_t len;              /* bytes in str */
    double num;              /* JNUM */
    int is_int;              /* JNUM written without fraction or exponent */
    int n;                   /* JARR / JOBJ: number of items */
    struct qms_json *items;  /* JARR / JOBJ: the values */
    char **keys;             /* JOBJ: the keys (decoded, NUL-terminated) */
    size_t *key_lens;
} qms_json;

QMS_FN void qms_json_free(qms_json *v) {
    int i;
    if (!v) return;
    for (i = 0; i < v->n; i++) {
        qms_json_free(&v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->key_lens);
    free(v->str);
    memset(v, 0, sizeof(*v));
}

/* Member of an object by key, or NULL (also for a non-object). The last one wins when a key
   repeats, as in Python's json.loads. */
QMS_FN const qms_json *qms_json_get(const qms_json *o, const char *key) {
    int i;
    const qms_json *r = NULL;
    if (!o || o->type != QMS_JOBJ) return NULL;
    for (i = 0; i < o->n; i++)
        if (strcmp(o->keys[i], key) == 0 && strlen(key) == o->key_lens[i]) r = &o->items[i];
    return r;
}
QMS_FN const char *qms_json_type_name(const qms_json *v) {
    if (!v) return "missing";
    switch (v->type) {
    case QMS_JNULL: return "null";
    case QMS_JFALSE: case QMS_JTRUE: return "boolean";
    case QMS_JNUM: return "number";
    case QMS_JSTR: return "string";
    case QMS_JARR: return "array";
    default: return "object";
    }
}

/* ------------------------------------------------------------------------------------- */
/*  Parser                                                                               */
/* ------------------------------------------------------------------------------------- */

#define QMS_JSON_MAX_DEPTH 128

typedef struct qms_jparser {
    const char *s;
    size_t n, i;
    int depth;
    char *err;       /* message buffer */
    size_t err_cap;
} qms_jparser;

static int qms__jfail(qms_jparser *p, const char *what) {
    if (p->err && p->err_cap && !p->err[0])
        snprintf(p->err, p->err_cap, "%s at byte %lu", what, (unsigned long)p->i);
    return 0;
}
static void qms__jws(qms_jparser *p) {
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r')) p->i++;
}
static int qms__hex4(const char *s, unsigned *out) {
    unsigned v = 0;
    int k;
    for (k = 0; k < 4; k++) {
        char c = s[k];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return 0;
    }
    *out = v;
    return 1;
}
/* Append code point cp as UTF-8; returns the byte count (1..4). */
QMS_FN int qms_utf8_put(char *o, unsigned cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18)); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}
/* Length of the valid UTF-8 sequence at s (n bytes available), or 0 if invalid;
   *cp receives the code point. */
QMS_FN int qms_utf8_next(const unsigned char *s, size_t n, unsigned *cp) {
    unsigned c = s[0], v;
    int len, k;
    if (c < 0x80) { *cp = c; return 1; }
    if (c >= 0xC2 && c <= 0xDF) { len = 2; v = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; v = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; v = c & 0x07; }
    else return 0;
    if (n < (size_t)len) return 0;
    for (k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[k] & 0x3F);
    }
    if ((len == 3 && v < 0x800) || (len == 4 && (v < 0x10000 || v > 0x10FFFF)) || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return len;
}

/* A string at p->i (the opening quote); the decoded bytes go to *out (malloc'd). */
static int qms__jstring(qms_jparser *p, char **out, size_t *out_len) {
    size_t start, cap, o = 0;
    char *buf;
    p->i++; /* the quote */
    start = p->i;
    /* the decoded string is never longer than the raw one */
    {
        size_t j = start;
        while (j < p->n && p->s[j] != '"') j += (p->s[j] == '\\' && j + 1 < p->n) ? 2 : 1;
        cap = j - start + 1;
    }
    buf = (char *)malloc(cap);
    if (!buf) return qms__jfail(p, "out of memory");
    for (;;) {
        unsigned char c;
        if (p->i >= p->n) { free(buf); return qms__jfail(p, "unterminated string"); }
        c = (unsigned char)p->s[p->i];
        if (c == '"') { p->i++; break; }
        if (c < 0x20) { free(buf); return qms__jfail(p, "control character in a string (escape it)"); }
        if (c == '\\') {
            char e;
            if (p->i + 1 >= p->n) { free(buf); return qms__jfail(p, "unterminated string"); }
            e = p->s[p->i + 1];
            p->i += 2;
            switch (e) {
            case '"': buf[o++] = '"'; break;
            case '\\': buf[o++] = '\\'; break;
            case '/': buf[o++] = '/'; break;
            case 'b': buf[o++] = '\b'; break;
            case 'f': buf[o++] = '\f'; break;
            case 'n': buf[o++] = '\n'; break;
            case 'r': buf[o++] = '\r'; break;
            case 't': buf[o++] = '\t'; break;
            case 'u': {
                unsigned cp, lo;
                if (p->i + 4 > p->n || !qms__hex4(p->s + p->i, &cp)) { free(buf); return qms__jfail(p, "bad \\u escape"); }
                p->i += 4;
                if (cp >= 0xD800 && cp <= 0xDBFF && p->i + 6 <= p->n && p->s[p->i] == '\\' && p->s[p->i + 1] == 'u' &&
                    qms__hex4(p->s + p->i + 2, &lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    p->i += 6;
                } else if (cp >= 0xD800 && cp <= 0xDFFF) {
                    cp = 0xFFFD; /* a lone surrogate cannot be UTF-8: U+FFFD */
                }
                /* 6 raw bytes (\uXXXX) always cover the <= 3 bytes of one BMP character, and
                   12 raw bytes the 4 of a pair */
                o += (size_t)qms_utf8_put(buf + o, cp);
                break;
            }
            default: free(buf); return qms__jfail(p, "bad escape in a string");
            }
        } else if (c < 0x80) {
            buf[o++] = (char)c;
            p->i++;
        } else {
            unsigned cp;
            int l = qms_utf8_next((const unsigned char *)p->s + p->i, p->n - p->i, &cp);
            if (!l) { free(buf); return qms__jfail(p, "invalid UTF-8 in a string"); }
            memcpy(buf + o, p->s + p->i, (size_t)l);
            o += (size_t)l;
            p->i += (size_t)l;
        }
    }
    buf[o] = 0;
    *out = buf;
    *out_len = o;
    return 1;
}

static int qms__jvalue(qms_jparser *p, qms_json *v);

static int qms__jnumber(qms_jparser *p, qms_json *v) {
    size_t st = p->i;
    int is_int = 1;
    if (p->i < p->n && p->s[p->i] == '-') p->i++;
    if (p->i >= p->n) return qms__jfail(p, "bad number");
    if (p->s[p->i] == '0') p->i++;
    else if (p->s[p->i] >= '1' && p->s[p->i] <= '9') { while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') p->i++; }
    else return qms__jfail(p, "bad number");
    if (p->i < p->n && p->s[p->i] == '.') {
        is_int = 0;
        p->i++;
        if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9') return qms__jfail(p, "bad number (no digit after '.')");
        while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') p->i++;
    }
    if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
        is_int = 0;
        p->i++;
        if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-')) p->i++;
        if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9') return qms__jfail(p, "bad number (no exponent digit)");
        while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') p->i++;
    }
    v->type = QMS_JNUM;
    v->len = p->i - st;
    v->str = (char *)malloc(v->len + 1);
    if (!v->str) return qms__jfail(p, "out of memory");
    memcpy(v->str, p->s + st, v->len);
    v->str[v->len] = 0;
    v->num = strtod(v->str, NULL);
    v->is_int = is_int;
    return 1;
}

/* Arrays and objects: items collected in a growing array. */
static int qms__jcontainer(qms_jparser *p, qms_json *v, int obj) {
    int cap = 0;
    char close = obj ? '}' : ']';
    if (++p->depth > QMS_JSON_MAX_DEPTH) return qms__jfail(p, "nested too deeply");
    v->type = obj ? QMS_JOBJ : QMS_JARR;
    p->i++;
    qms__jws(p);
    if (p->i < p->n && p->s[p->i] == close) { p->i++; p->depth--; return 1; }
    for (;;) {
        if (v->n == cap) {
            int nc = cap ? cap * 2 : 4;
            qms_json *ni = (qms_json *)realloc(v->items, sizeof(qms_json) * (size_t)nc);
            if (!ni) return qms__jfail(p, "out of memory");
            v->items = ni;
            if (obj) {
                char **nk = (char **)realloc(v->keys, sizeof(char *) * (size_t)nc);
                size_t *nl;
                if (!nk) return qms__jfail(p, "out of memory");
                v->keys = nk;
                nl = (size_t *)realloc(v->key_lens, sizeof(size_t) * (size_t)nc);
                if (!nl) return qms__jfail(p, "out of memory");
                v->key_lens = nl;
            }
            cap = nc;
        }
        memset(&v->items[v->n], 0, sizeof(qms_json));
        if (obj) {
            qms__jws(p);
            if (p->i >= p->n || p->s[p->i] != '"') return qms__jfail(p, "expected a string key");
            if (!qms__jstring(p, &v->keys[v->n], &v->key_lens[v->n])) return 0;
            qms__jws(p);
            if (p->i >= p->n || p->s[p->i] != ':') { free(v->keys[v->n]); return qms__jfail(p, "expected ':'"); }
            p->i++;
        }
        if (!qms__jvalue(p, &v->items[v->n])) {
            qms_json_free(&v->items[v->n]);
            if (obj) free(v->keys[v->n]);
            return 0;
        }
        v->n++;
        qms__jws(p);
        if (p->i < p->n && p->s[p->i] == ',') { p->i++; continue; }
        if (p->i < p->n && p->s[p->i] == close) { p->i++; break; }
        return qms__jfail(p, obj ? "expected ',' or '}'" : "expected ',' or ']'");
    }
    p->depth--;
    return 1;
}

static int qms__jvalue(qms_jparser *p, qms_json *v) {
    qms__jws(p);
    if (p->i >= p->n) return qms__jfail(p, "unexpected end of input");
    switch (p->s[p->i]) {
    case '{': return qms__jcontainer(p, v, 1);
    case '[': return qms__jcontainer(p, v, 0);
    case '"': v->type = QMS_JSTR; return qms__jstring(p, &v->str, &v->len);
    case 't':
        if (p->n - p->i >= 4 && memcmp(p->s + p->i, "true", 4) == 0) { p->i += 4; v->type = QMS_JTRUE; return 1; }
        break;
    case 'f':
        if (p->n - p->i >= 5 && memcmp(p->s + p->i, "false", 5) == 0) { p->i += 5; v->type = QMS_JFALSE; return 1; }
        break;
    case 'n':
        if (p->n - p->i >= 4 && memcmp(p->s + p->i, "null", 4) == 0) { p->i += 4; v->type = QMS_JNULL; return 1; }
        break;
    default:
        if (p->s[p->i] == '-' || (p->s[p->i] >= '0' && p->s[p->i] <= '9')) return qms__jnumber(p, v);
    }
    return qms__jfail(p, "unexpected character");
}

/* Parse n bytes of JSON text (one value, surrounded by optional whitespace). Returns 1, or
   0 with a message ("expected ':' at byte 12") in err. */
QMS_FN int qms_json_parse(const char *s, size_t n, qms_json *out, char *err, size_t err_cap) {
    qms_jparser p;
    memset(out, 0, sizeof(*out));
    memset(&p, 0, sizeof(p));
    p.s = s;
    p.n = n;
    p.err = err;
    p.err_cap = err_cap;
    if (err && err_cap) err[0] = 0;
    if (!qms__jvalue(&p, out)) { qms_json_free(out); return 0; }
    qms__jws(&p);
    if (p.i != n) { qms_json_free(out); return qms__jfail(&p, "trailing characters after the JSON value"); }
    return 1;
}

/* Compact JSON of a value (numbers as they were written). */
QMS_FN void qms_json_write(qms_buf *b, const qms_json *v) {
    int i;
    switch (v->type) {
    case QMS_JNULL: qms_buf_puts(b, "null"); break;
    case QMS_JFALSE: qms_buf_puts(b, "false"); break;
    case QMS_JTRUE: qms_buf_puts(b, "true"); break;
    case QMS_JNUM: qms_buf_put(b, v->str, v->len); break;
    case QMS_JSTR: qms_buf_json_str(b, v->str, v->len); break;
    case QMS_JARR:
        qms_buf_putc(b, '[');
        for (i = 0; i < v->n; i++) {
            if (i) qms_buf_putc(b, ',');
            qms_json_write(b, &v->items[i]);
        }
        qms_buf_putc(b, ']');
        break;
    case QMS_JOBJ:
        qms_buf_putc(b, '{');
        for (i = 0; i < v->n; i++) {
            if (i) qms_buf_putc(b, ',');
            qms_buf_json_str(b, v->keys[i], v->key_lens[i]);
            qms_buf_putc(b, ':');
            qms_json_write(b, &v->items[i]);
        }
        qms_buf_putc(b, '}');
        break;
    }
}

/* ------------------------------------------------------------------------------------- */
/*  Python's view of JSON values (json.loads gives int, float, str, list, dict, bool, None) */
/* ------------------------------------------------------------------------------------- */

/* repr() of a float: the shortest text that reads back as the same double, fixed notation
   for exponents -4..15 (with ".0" when integral), else d.ddde+XX. */
QMS_FN void qms_py_float(qms_buf *b, double x) {
    char tmp[40], digits[24];
    int prec, nd = 0, exp10, k, decpt;
    const char *q;
    if (x != x) { qms_buf_puts(b, "nan"); return; }
    if (x > 1.7976931348623157e308) { qms_buf_puts(b, "inf"); return; }
    if (x < -1.7976931348623157e308) { qms_buf_puts(b, "-inf"); return; }
    if (x == 0) { qms_buf_puts(b, (1.0 / x < 0) ? "-0.0" : "0.0"); return; }
    for (prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, x);
        if (strtod(tmp, NULL) == x) break;
    }
    /* tmp: [-]d[.ddd]e[+-]XX */
    q = tmp;
    if (*q == '-') { qms_buf_putc(b, '-'); q++; }
    for (; *q && *q != 'e'; q++) if (*q != '.') digits[nd++] = *q;
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = 0;
    exp10 = atoi(q + 1);
    if (exp10 < -4 || exp10 >= 16) {
        qms_buf_putc(b, digits[0]);
        if (nd > 1) { qms_buf_putc(b, '.'); qms_buf_put(b, digits + 1, (size_t)nd - 1); }
        qms_buf_printf(b, "e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
        return;
    }
    decpt = exp10 + 1; /* digits before the point */
    if (decpt <= 0) {
        qms_buf_puts(b, "0.");
        for (k = 0; k < -decpt; k++) qms_buf_putc(b, '0');
        qms_buf_put(b, digits, (size_t)nd);
    } else if (decpt >= nd) {
        qms_buf_put(b, digits, (size_t)nd);
        for (k = nd; k < decpt; k++) qms_buf_putc(b, '0');
        qms_buf_puts(b, ".0");
    } else {
        qms_buf_put(b, digits, (size_t)decpt);
        qms_buf_putc(b, '.');
        qms_buf_put(b, digits + decpt, (size_t)(nd - decpt));
    }
}

/* A JSON number as Python prints it: ints by their digits ("-0" is 0), floats by repr. */
QMS_FN void qms_py_number(qms_buf *b, const qms_json *v) {
    if (v->is_int) {
        if (strcmp(v->str, "-0") == 0) qms_buf_putc(b, '0');
        else qms_buf_put(b, v->str, v->len);
    } else {
        qms_py_float(b, v->num);
    }
}

/* Whether Python's str.isprintable() holds for code point cp (an approximation outside
   ASCII and Latin-1: the separators, format characters and private-use areas known to
   repr() as non-printable). */
static int qms__py_printable(unsigned cp) {
    if (cp < 0x20 || cp == 0x7F) return 0;
    if (cp >= 0x80 && cp <= 0xA0) return 0;
    if (cp == 0xAD || cp == 0x1680 || cp == 0x180E) return 0;
    if (cp >= 0x2000 && cp <= 0x200F) return 0;
    if (cp >= 0x2028 && cp <= 0x202F) return 0;
    if (cp >= 0x205F && cp <= 0x206F) return 0;
    if (cp == 0x3000 || cp == 0xFEFF || (cp >= 0xFFF9 && cp <= 0xFFFB)) return 0;
    if ((cp >= 0xE000 && cp <= 0xF8FF) || cp >= 0xF0000) return 0;
    return 1;
}

/* repr() of a str: single quotes unless the text has ' and no ", backslash escapes. */
QMS_FN void qms_py_repr_str(qms_buf *b, const char *s, size_t n) {
    char q = (memchr(s, '\'', n) && !memchr(s, '"', n)) ? '"' : '\'';
    size_t i = 0;
    qms_buf_putc(b, q);
    while (i < n) {
        unsigned cp;
        int l = qms_utf8_next((const unsigned char *)s + i, n - i, &cp);
        if (!l) { cp = 0xFFFD; l = 1; }
        if (cp == (unsigned)q || cp == '\\') { qms_buf_putc(b, '\\'); qms_buf_putc(b, (char)cp); }
        else if (cp == '\n') qms_buf_puts(b, "\\n");
        else if (cp == '\r') qms_buf_puts(b, "\\r");
        else if (cp == '\t') qms_buf_puts(b, "\\t");
        else if (!qms__py_printable(cp)) {
            if (cp < 0x100) qms_buf_printf(b, "\\x%02x", cp);
            else if (cp < 0x10000) qms_buf_printf(b, "\\u%04x", cp);
            else qms_buf_printf(b, "\\U%08x", cp);
        } else {
            qms_buf_put(b, s + i, (size_t)l);
        }
        i += (size_t)l;
    }
    qms_buf_putc(b, q);
}

QMS_FN void qms_py_repr(qms_buf *b, const qms_json *v);

/* str(value): a str as it is, everything else as repr. */
QMS_FN void qms_py_str(qms_buf *b, const qms_json *v) {
    if (v->type == QMS_JSTR) qms_buf_put(b, v->str, v->len);
    else qms_py_repr(b, v);
}

/* One walker for Python's two spellings of a value: repr (None/True, quoted by
   qms_py_repr_str) and json.dumps (null/true, JSON strings); numbers print alike. */
QMS_FN void qms_py_value(qms_buf *b, const qms_json *v, int json) {
    int i;
    switch (v->type) {
    case QMS_JNULL: qms_buf_puts(b, json ? "null" : "None"); break;
    case QMS_JFALSE: qms_buf_puts(b, json ? "false" : "False"); break;
    case QMS_JTRUE: qms_buf_puts(b, json ? "true" : "True"); break;
    case QMS_JNUM: qms_py_number(b, v); break;
    case QMS_JSTR:
        if (json) qms_buf_json_str(b, v->str, v->len);
        else qms_py_repr_str(b, v->str, v->len);
        break;
    case QMS_JARR:
        qms_buf_putc(b, '[');
        for (i = 0; i < v->n; i++) {
            if (i) qms_buf_puts(b, ", ");
            qms_py_value(b, &v->items[i], json);
        }
        qms_buf_putc(b, ']');
        break;
    case QMS_JOBJ:
        qms_buf_putc(b, '{');
        for (i = 0; i < v->n; i++) {
            if (i) qms_buf_puts(b, ", ");
            if (json) qms_buf_json_str(b, v->keys[i], v->key_lens[i]);
            else qms_py_repr_str(b, v->keys[i], v->key_lens[i]);
            qms_buf_puts(b, ": ");
            qms_py_value(b, &v->items[i], json);
        }
        qms_buf_putc(b, '}');
        break;
    }
}

QMS_FN void qms_py_repr(qms_buf *b, const qms_json *v) { qms_py_value(b, v, 0); }

/* json.dumps(value, ensure_ascii=False): ", " and ": " separators, floats by repr. */
QMS_FN void qms_py_json(qms_buf *b, const qms_json *v) { qms_py_value(b, v, 1); }

#endif /* QWENMOE_SERVER_JSON_H */
