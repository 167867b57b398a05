/* server.c - qwenmoe-server: an OpenAI-compatible HTTP server for Qwen3-MoE GGUF models.
   Run with --help for the flags and the endpoints.

   One thread accepts connections; each connection gets a thread that reads a request, checks
   it and renders the prompt, then waits for a free slot (a qm_context of its own on the one
   shared qm_model) in a bounded FIFO queue, generates, and writes the answer (JSON, or
   server-sent events for stream: true). Every request starts from an empty KV cache.
   HTTP/1.1 with Content-Length request bodies and keep-alive; streams use chunked encoding.
   JSON: examples/server_json.h; Qwen3-Coder tool calling: examples/server_tools.h. */
#define _GNU_SOURCE
#define QWENMOE_IMPLEMENTATION
#include "../qwenmoe.h"
#include "server_tools.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#include <poll.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#define MAX_HEADER_BYTES (16 * 1024)
#define DEFAULT_MAX_BODY (8u * 1024u * 1024u)
#define MAX_CONNECTIONS 512
#define MAX_STOP 16

static void usage(const char *argv0) {
    printf("usage: %s -m MODEL.gguf [options]\n"
           "\n"
           "An OpenAI-compatible HTTP server.\n"
           "\n"
           "  -m FILE            model (GGUF, arch qwen3moe or qwen3)\n"
           "  --host ADDR        address to listen on (default 127.0.0.1)\n"
           "  --port N           port (default 8080; 0 picks a free one, printed on stderr)\n"
           "  -t N               threads per slot (default: online CPUs / --parallel)\n"
           "  --ctx N            context size of each slot (default min(4096, trained))\n"
           "  --parallel N       slots: requests generated at the same time, each with its own\n"
           "                     context (KV cache) on the one model (default 2)\n"
           "  --queue N          requests that may wait for a slot; more get 503 (default 64)\n"
           "  --api-key KEY      require \"Authorization: Bearer KEY\" (not for /health)\n"
           "  --alias NAME       model id in responses and /v1/models (default: the file name)\n"
           "  --max-body N       largest request body in bytes (default 8388608; more: 413)\n"
           "  --debug            enable the debug helpers below\n"
           "  -h, --help         this help\n"
           "\n"
           "Endpoints:\n"
           "  POST /v1/chat/completions   messages, tools (Qwen3-Coder models), stream\n"
           "  POST /v1/completions        prompt (string, [string], token ids), stream\n"
           "  GET  /v1/models             the one model\n"
           "  GET  /health                {\"status\":\"ok\", slots and queue}; no API key needed\n"
           "  POST /debug/render          (--debug) the chat request's rendered prompt and its\n"
           "                              token count, nothing generated\n"
           "\n"
           "Request fields: messages, prompt, max_tokens / max_completion_tokens, temperature\n"
           "(default 1), top_p, top_k, min_p, seed, stop (string or array), stream,\n"
           "stream_options.include_usage, n (1 only), tools, tool_choice (\"none\" leaves the\n"
           "tools out), chat_template_kwargs.enable_thinking (Qwen3 thinking models).\n"
           "Extensions: return_tokens (true: each choice gets \"tokens\", the generated ids);\n"
           "debug_output (--debug only: a string that replaces the model's output, token by\n"
           "token, through the same streaming and tool-call parsing; stop strings do not apply);\n"
           "debug_delay_ms (--debug only: sleep this long after each token, for tests).\n"
           "Ignored: presence_penalty, frequency_penalty, logit_bias, user, parallel_tool_calls,\n"
           "response_format. Refused with 400: n != 1, logprobs, echo, suffix.\n"
           "\n"
           "Tool calls: with a Qwen3-Coder model the request's tools are rendered into the system\n"
           "prompt as its chat template does, and <tool_call> blocks in the output are returned\n"
           "as tool_calls (finish_reason \"tool_calls\").\n",
           argv0);
}

/* ===================================================================================== */
/*  Server state                                                                         */
/* ===================================================================================== */

static volatile sig_atomic_t g_stop = 0;
static int g_wake[2] = {-1, -1};

static void on_signal(int sig) {
    int saved = errno;
    ssize_t r;
    (void)sig;
    g_stop = 1;
    r = write(g_wake[1], "x", 1);
    (void)r;
    errno = saved;
}

typedef struct slot {
    qm_context *ctx;
    int busy;
} slot;

typedef struct waiter {
    struct waiter *next;
    slot *got;
} waiter;

struct conn;

typedef struct server {
    qm_model *model;
    const qm_tokenizer *tok;
    qm_chat_family fam;
    char model_id[256];
    int n_ctx, n_vocab;
    slot *slots;
    int n_slots;
    pthread_mutex_t mu;
    pthread_cond_t cv;        /* slot hand-over, connection count */
    waiter *q_head, *q_tail;
    int n_waiting, max_queue;
    struct conn *conns[MAX_CONNECTIONS];
    int n_conn;
    const char *api_key;
    int debug;
    size_t max_body;
    uint64_t rng;             /* ids and default seeds (under mu) */
    time_t started;
} server;

typedef struct conn {
    server *srv;
    int fd;
    char peer[64];
    char *buf;        /* bytes read and not consumed */
    size_t len, cap;
    int gone;         /* the peer closed or a send failed */
} conn;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static uint64_t srv_random(server *s) {
    uint64_t r;
    pthread_mutex_lock(&s->mu);
    r = splitmix(&s->rng);
    pthread_mutex_unlock(&s->mu);
    return r;
}
/* prefix + n random characters of [0-9a-zA-Z] */
static void random_id(server *s, char *out, size_t cap, const char *prefix, int n) {
    static const char al[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    size_t k;
    int i;
    uint64_t r = 0;
    snprintf(out, cap, "%s", prefix);
    k = strlen(out);
    for (i = 0; i < n && k + 1 < cap; i++) {
        if (i % 10 == 0) r = srv_random(s);
        out[k++] = al[r % 62];
        r /= 62;
    }
    out[k] = 0;
}

static void log_line(const char *fmt, ...) {
    char msg[1024], ts[32];
    va_list ap;
    time_t t = time(NULL);
    struct tm tmv;
    gmtime_r(&t, &tmv);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tmv);
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s %s\n", ts, msg);
}

/* ===================================================================================== */
/*  Sockets                                                                              */
/* ===================================================================================== */

static int send_all(conn *c, const char *p, size_t n) {
    while (n > 0 && !c->gone) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            c->gone = 1; /* EPIPE, ECONNRESET, or the send timeout */
            return 0;
        }
        p += w;
        n -= (size_t)w;
    }
    return !c->gone;
}

/* Whether the peer has closed its side (checked without blocking). */
static int peer_closed(conn *c) {
    struct pollfd pf;
    char b;
    if (c->gone) return 1;
    pf.fd = c->fd;
    pf.events = POLLIN;
    pf.revents = 0;
    if (poll(&pf, 1, 0) <= 0) return 0;
    if (pf.revents & (POLLERR | POLLHUP | POLLNVAL)) { c->gone = 1; return 1; }
    if (pf.revents & POLLIN) {
        ssize_t r = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) { c->gone = 1; return 1; }
    }
    return 0;
}

/* Read more bytes into c->buf, waiting at most timeout_ms (checking for shutdown). Returns
   >0 bytes read, 0 on end of stream or error, -1 on timeout or shutdown. */
static int read_more(conn *c, int timeout_ms) {
    int waited = 0;
    for (;;) {
        struct pollfd pf;
        int r;
        if (g_stop) return -1;
        pf.fd = c->fd;
        pf.events = POLLIN;
        pf.revents = 0;
        r = poll(&pf, 1, 200);
        if (r < 0 && errno != EINTR) return 0;
        if (r > 0) break;
        waited += 200;
        if (waited >= timeout_ms) return -1;
    }
    if (c->len + 4096 + 1 > c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 8192;
        char *nb;
        while (nc < c->len + 4096 + 1) nc *= 2;
        nb = (char *)realloc(c->buf, nc);
        if (!nb) return 0;
        c->buf = nb;
        c->cap = nc;
    }
    for (;;) {
        ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len - 1, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) { c->gone = 1; return 0; }
        c->len += (size_t)n;
        c->buf[c->len] = 0;
        return (int)n;
    }
}

/* ===================================================================================== */
/*  HTTP                                                                                 */
/* ===================================================================================== */

typedef struct request {
    char method[16];
    char path[512];
    int http_minor;
    long long content_length; /* -1: none */
    int chunked, expect_continue, want_close, want_keep;
    char auth[512];
    char *body;
    size_t body_len;
    /* for the log */
    int status;
    int n_prompt, n_completion;
    const char *note;
} request;

static const char *status_text(int s) {
    switch (s) {
    case 100: return "Continue";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
    }
}

static int send_response(conn *c, request *rq, int status, const char *ctype, const char *body, size_t n,
                         const char *extra, int keep) {
    qms_buf h = {0};
    int ok;
    rq->status = status;
    qms_buf_printf(&h, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %lu\r\nConnection: %s\r\n%s\r\n", status,
                   status_text(status), ctype, (unsigned long)n, keep ? "keep-alive" : "close", extra ? extra : "");
    qms_buf_put(&h, body, n);
    ok = !h.oom && send_all(c, qms_buf_str(&h), h.len);
    qms_buf_free(&h);
    return ok;
}

/* The OpenAI error object. param and code may be NULL. */
static void error_json(qms_buf *b, const char *msg, const char *type, const char *param, const char *code) {
    qms_buf_puts(b, "{\"error\":{\"message\":");
    qms_buf_json_cstr(b, msg);
    qms_buf_puts(b, ",\"type\":");
    qms_buf_json_cstr(b, type);
    qms_buf_puts(b, ",\"param\":");
    if (param) qms_buf_json_cstr(b, param);
    else qms_buf_puts(b, "null");
    qms_buf_puts(b, ",\"code\":");
    if (code) qms_buf_json_cstr(b, code);
    else qms_buf_puts(b, "null");
    qms_buf_puts(b, "}}");
}

static int send_error(conn *c, request *rq, int status, const char *param, const char *code, const char *extra,
                      int keep, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    qms_buf b = {0};
    int ok;
    const char *type = status == 401 ? "authentication_error" : status >= 500 ? "server_error" : "invalid_request_error";
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    error_json(&b, msg, type, param, code);
    ok = send_response(c, rq, status, "application/json", qms_buf_str(&b), b.len, extra, keep);
    qms_buf_free(&b);
    if (!rq->note) rq->note = "error";
    return ok;
}

static int ieq_prefix(const char *s, const char *prefix) {
    while (*prefix) {
        if (tolower((unsigned char)*s) != tolower((unsigned char)*prefix)) return 0;
        s++;
        prefix++;
    }
    return 1;
}

/* Read one request. Returns 1 with the request in rq (the body in c->buf, consumed by the
   caller); 0: the connection ended or idled out (no answer); an HTTP status (>= 400) for a
   request that must be refused (the connection is closed afterwards). */
static int read_request(conn *c, request *rq, const char **why) {
    size_t head_len = 0, i;
    char *line, *end, *p;
    int first_wait = 1;
    memset(rq, 0, sizeof(*rq));
    rq->content_length = -1;
    *why = "";
    for (;;) {
        char *e = NULL;
        if (c->len > 0) {
            /* the end of the head: an empty line */
            for (i = 0; i + 1 < c->len; i++) {
                if (c->buf[i] == '\n' && (c->buf[i + 1] == '\n' || (c->buf[i + 1] == '\r' && i + 2 < c->len && c->buf[i + 2] == '\n'))) {
                    e = c->buf + i + (c->buf[i + 1] == '\n' ? 2 : 3);
                    break;
                }
            }
        }
        if (e) { head_len = (size_t)(e - c->buf); break; }
        if (c->len > MAX_HEADER_BYTES) { *why = "the request head (request line and headers) is over 16 KiB"; return 413; }
        {
            int r = read_more(c, first_wait && c->len == 0 ? 10000 : 30000);
            if (r <= 0) return 0;
        }
        first_wait = 0;
    }
    if (head_len > MAX_HEADER_BYTES) { *why = "the request head (request line and headers) is over 16 KiB"; return 413; }
    /* request line */
    line = c->buf;
    end = (char *)memchr(line, '\n', head_len);
    *end = 0;
    if (end > line && end[-1] == '\r') end[-1] = 0;
    {
        char ver[16];
        if (sscanf(line, "%15s %511s %15s", rq->method, rq->path, ver) != 3 || strncmp(ver, "HTTP/1.", 7) != 0) {
            *why = "malformed request line";
            return 400;
        }
        rq->http_minor = ver[7] == '0' ? 0 : 1;
    }
    /* headers */
    p = end + 1;
    while (p < c->buf + head_len) {
        char *nl = (char *)memchr(p, '\n', (size_t)(c->buf + head_len - p)), *colon, *v;
        size_t l;
        if (!nl) break;
        *nl = 0;
        if (nl > p && nl[-1] == '\r') nl[-1] = 0;
        if (!*p) break;
        colon = strchr(p, ':');
        if (!colon) { *why = "malformed header line"; return 400; }
        *colon = 0;
        v = colon + 1;
        while (*v == ' ' || *v == '\t') v++;
        l = strlen(v);
        while (l && (v[l - 1] == ' ' || v[l - 1] == '\t')) v[--l] = 0;
        if (strcasecmp(p, "Content-Length") == 0) {
            char *ce;
            long long cl = strtoll(v, &ce, 10);
            if (ce == v || *ce || cl < 0) { *why = "bad Content-Length"; return 400; }
            rq->content_length = cl;
        } else if (strcasecmp(p, "Transfer-Encoding") == 0) {
            if (strcasecmp(v, "identity") != 0) rq->chunked = 1;
        } else if (strcasecmp(p, "Expect") == 0) {
            if (strcasecmp(v, "100-continue") == 0) rq->expect_continue = 1;
        } else if (strcasecmp(p, "Connection") == 0) {
            if (strstr(v, "close") || strstr(v, "Close")) rq->want_close = 1;
            if (ieq_prefix(v, "keep-alive")) rq->want_keep = 1;
        } else if (strcasecmp(p, "Authorization") == 0) {
            snprintf(rq->auth, sizeof(rq->auth), "%s", v);
        }
        p = nl + 1;
    }
    /* consume the head */
    memmove(c->buf, c->buf + head_len, c->len - head_len);
    c->len -= head_len;
    if (rq->chunked) { *why = "chunked request bodies are not supported: send a Content-Length"; return 411; }
    if (rq->content_length < 0) {
        if (strcmp(rq->method, "POST") == 0 || strcmp(rq->method, "PUT") == 0) { *why = "a POST needs a Content-Length"; return 411; }
        rq->content_length = 0;
    }
    if ((unsigned long long)rq->content_length > c->srv->max_body) { *why = "body"; return 413; }
    if (rq->expect_continue && rq->content_length > 0 && (size_t)rq->content_length > c->len) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        if (!send_all(c, cont, sizeof(cont) - 1)) return 0;
    }
    while (c->len < (size_t)rq->content_length) {
        int r = read_more(c, 30000);
        if (r <= 0) return 0;
    }
    rq->body = c->buf;
    rq->body_len = (size_t)rq->content_length;
    return 1;
}

/* After refusing a request whose body was not read: let the answer reach the client before
   the close (a close with unread data would send a reset), for at most two seconds. */
static void lingering_close(conn *c) {
    char junk[4096];
    double t0 = now_s();
    shutdown(c->fd, SHUT_WR);
    while (now_s() - t0 < 2.0) {
        struct pollfd pf;
        pf.fd = c->fd;
        pf.events = POLLIN;
        if (poll(&pf, 1, 100) > 0) {
            ssize_t r = recv(c->fd, junk, sizeof(junk), 0);
            if (r <= 0) break;
        }
    }
}

/* ===================================================================================== */
/*  Slots and the queue                                                                  */
/* ===================================================================================== */

/* Take a free slot, or wait for one in FIFO order. Returns the slot; NULL with *status 503
   (queue full, shutdown) or 0 (the client went away while waiting). */
static slot *slot_acquire(server *s, conn *c, int *status) {
    waiter w;
    int i;
    slot *got = NULL;
    pthread_mutex_lock(&s->mu);
    if (!s->q_head) {
        for (i = 0; i < s->n_slots; i++)
            if (!s->slots[i].busy) { s->slots[i].busy = 1; got = &s->slots[i]; break; }
    }
    if (got) { pthread_mutex_unlock(&s->mu); return got; }
    if (s->n_waiting >= s->max_queue || g_stop) {
        pthread_mutex_unlock(&s->mu);
        *status = 503;
        return NULL;
    }
    w.next = NULL;
    w.got = NULL;
    if (s->q_tail) s->q_tail->next = &w;
    else s->q_head = &w;
    s->q_tail = &w;
    s->n_waiting++;
    for (;;) {
        struct timespec ts;
        int gone;
        if (w.got) break;
        if (g_stop) break;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200000000L;
        if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
        pthread_cond_timedwait(&s->cv, &s->mu, &ts);
        if (w.got) break;
        pthread_mutex_unlock(&s->mu);
        gone = peer_closed(c);
        pthread_mutex_lock(&s->mu);
        if (gone) break;
    }
    if (!w.got) {
        /* leave the queue */
        waiter **pp = &s->q_head, *prev = NULL;
        while (*pp && *pp != &w) { prev = *pp; pp = &(*pp)->next; }
        if (*pp) {
            *pp = w.next;
            if (s->q_tail == &w) s->q_tail = prev;
            s->n_waiting--;
        }
        pthread_mutex_unlock(&s->mu);
        *status = g_stop ? 503 : 0;
        return NULL;
    }
    pthread_mutex_unlock(&s->mu);
    return w.got;
}

static void slot_release(server *s, slot *sl) {
    pthread_mutex_lock(&s->mu);
    if (s->q_head) {
        /* hand it straight to the first waiter */
        waiter *w = s->q_head;
        s->q_head = w->next;
        if (!s->q_head) s->q_tail = NULL;
        s->n_waiting--;
        w->got = sl;
        pthread_cond_broadcast(&s->cv);
    } else {
        sl->busy = 0;
    }
    pthread_mutex_unlock(&s->mu);
}

/* ===================================================================================== */
/*  Requests                                                                             */
/* ===================================================================================== */

typedef struct gen_request {
    int chat;
    int stream, include_usage, return_tokens;
    int max_tokens;               /* 0: until end of generation or a full context */
    qm_sampler_params sp;
    char *stops[MAX_STOP];
    int n_stop;
    int use_tools;                /* parse <tool_call> blocks out of the output */
    const qms_json *tools;
    const char *debug_output;
    size_t debug_len;
    int delay_ms;                 /* --debug: sleep after each token */
    int32_t *prompt;
    int n_prompt;
    char *prompt_text;            /* chat: the rendered prompt */
    size_t prompt_text_len;
} gen_request;

static void gen_request_free(gen_request *g) {
    int i;
    for (i = 0; i < g->n_stop; i++) free(g->stops[i]);
    free(g->prompt);
    free(g->prompt_text);
}

/* A parameter error: 400 with the field in param. */
typedef struct bad {
    char msg[512];
    const char *param;
    const char *code;
} bad;

static int badf(bad *b, const char *param, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->msg, sizeof(b->msg), fmt, ap);
    va_end(ap);
    b->param = param;
    return 0;
}

static int get_number(const qms_json *o, const char *key, double lo, double hi, double *out, int *given, bad *b) {
    const qms_json *v = qms_json_get(o, key);
    *given = 0;
    if (!v || v->type == QMS_JNULL) return 1;
    if (v->type != QMS_JNUM) return badf(b, key, "'%s' must be a number, not %s", key, qms_json_type_name(v));
    if (v->num < lo || v->num > hi) return badf(b, key, "'%s' must be between %g and %g, got %s", key, lo, hi, v->str);
    *out = v->num;
    *given = 1;
    return 1;
}
static int get_int(const qms_json *o, const char *key, double lo, double hi, long long *out, int *given, bad *b) {
    const qms_json *v = qms_json_get(o, key);
    *given = 0;
    if (!v || v->type == QMS_JNULL) return 1;
    if (v->type != QMS_JNUM || v->num != (double)(long long)v->num)
        return badf(b, key, "'%s' must be an integer, not %s", key, v->type == QMS_JNUM ? v->str : qms_json_type_name(v));
    if (v->num < lo || v->num > hi) return badf(b, key, "'%s' must be between %.0f and %.0f, got %s", key, lo, hi, v->str);
    *out = (long long)v->num;
    *given = 1;
    return 1;
}
static int get_bool(const qms_json *o, const char *key, int *out, bad *b) {
    const qms_json *v = qms_json_get(o, key);
    if (!v || v->type == QMS_JNULL) return 1;
    if (v->type != QMS_JTRUE && v->type != QMS_JFALSE) return badf(b, key, "'%s' must be a boolean, not %s", key, qms_json_type_name(v));
    *out = v->type == QMS_JTRUE;
    return 1;
}

/* Tokenize text (special tokens recognised) into g->prompt. */
static int tokenize_prompt(server *s, gen_request *g, const char *text, size_t len, bad *b, const char *param) {
    int n = qm_tokenize(s->tok, text, len, NULL, 0, QM_TOKENIZE_SPECIAL);
    if (n < 0) return badf(b, param, "the prompt cannot be tokenized: %s", qm_result_string((qm_result)n));
    g->prompt = (int32_t *)malloc(sizeof(int32_t) * (size_t)(n > 0 ? n : 1));
    if (!g->prompt) return badf(b, param, "out of memory");
    g->n_prompt = qm_tokenize(s->tok, text, len, g->prompt, n, QM_TOKENIZE_SPECIAL);
    return 1;
}

/* Check the body and build the prompt. Returns 1, or 0 with the error in b. */
static int parse_gen_request(server *s, const qms_json *body, int chat, int render_only, gen_request *g, bad *b) {
    const qms_json *v;
    double d;
    long long ll;
    int given, enable_thinking = 1;
    memset(g, 0, sizeof(*g));
    g->chat = chat;
    g->sp.temperature = 1.0f;
    if (body->type != QMS_JOBJ) return badf(b, NULL, "the request body must be a JSON object, not %s", qms_json_type_name(body));
    if ((v = qms_json_get(body, "model")) && v->type != QMS_JSTR && v->type != QMS_JNULL)
        return badf(b, "model", "'model' must be a string, not %s", qms_json_type_name(v));
    if (!get_int(body, "n", 1, 1e9, &ll, &given, b)) return 0;
    if (given && ll != 1) return badf(b, "n", "only n = 1 is supported, got %lld", ll);
    if (!chat) g->max_tokens = 16; /* OpenAI's default for /v1/completions */
    if (!get_int(body, "max_tokens", 1, 1e9, &ll, &given, b)) return 0;
    if (given) g->max_tokens = (int)ll;
    if (!get_int(body, "max_completion_tokens", 1, 1e9, &ll, &given, b)) return 0;
    if (given) g->max_tokens = (int)ll;
    if (!get_number(body, "temperature", 0, 2, &d, &given, b)) return 0;
    if (given) g->sp.temperature = (float)d;
    if (!get_number(body, "top_p", 0, 1, &d, &given, b)) return 0;
    if (given) g->sp.top_p = d > 0 ? (float)d : 1e-6f; /* top_p 0: only the most likely token (0 is "off" for qm) */
    if (!get_number(body, "min_p", 0, 1, &d, &given, b)) return 0;
    if (given) g->sp.min_p = (float)d;
    if (!get_int(body, "top_k", 0, 1e9, &ll, &given, b)) return 0;
    if (given) g->sp.top_k = (int)ll;
    if (!get_int(body, "seed", -9.2e18, 1.8e19, &ll, &given, b)) return 0;
    g->sp.seed = given ? (uint64_t)ll : srv_random(s);
    if (!get_bool(body, "stream", &g->stream, b)) return 0;
    if ((v = qms_json_get(body, "stream_options")) && v->type != QMS_JNULL) {
        if (v->type != QMS_JOBJ) return badf(b, "stream_options", "'stream_options' must be an object, not %s", qms_json_type_name(v));
        if (!get_bool(v, "include_usage", &g->include_usage, b)) { b->param = "stream_options.include_usage"; return 0; }
    }
    if (!get_bool(body, "return_tokens", &g->return_tokens, b)) return 0;
    if ((v = qms_json_get(body, "stop")) && v->type != QMS_JNULL) {
        int i, n = v->type == QMS_JARR ? v->n : 1;
        if (v->type != QMS_JSTR && v->type != QMS_JARR) return badf(b, "stop", "'stop' must be a string or an array of strings, not %s", qms_json_type_name(v));
        if (n > MAX_STOP) return badf(b, "stop", "at most %d stop strings, got %d", MAX_STOP, n);
        for (i = 0; i < n; i++) {
            const qms_json *e = v->type == QMS_JARR ? &v->items[i] : v;
            if (e->type != QMS_JSTR) return badf(b, "stop", "'stop[%d]' must be a string, not %s", i, qms_json_type_name(e));
            if (e->len == 0) return badf(b, "stop", "'stop' strings must not be empty");
            if (strlen(e->str) != e->len) return badf(b, "stop", "'stop' strings must not contain NUL");
            g->stops[g->n_stop] = (char *)malloc(e->len + 1);
            if (!g->stops[g->n_stop]) return badf(b, "stop", "out of memory");
            memcpy(g->stops[g->n_stop++], e->str, e->len + 1);
        }
    }
    if ((v = qms_json_get(body, "logprobs")) && v->type != QMS_JNULL && v->type != QMS_JFALSE)
        return badf(b, "logprobs", "'logprobs' is not supported by this server");
    if ((v = qms_json_get(body, "top_logprobs")) && v->type != QMS_JNULL) return badf(b, "top_logprobs", "'top_logprobs' is not supported by this server");
    if ((v = qms_json_get(body, "debug_output")) && v->type != QMS_JNULL) {
        if (!s->debug) return badf(b, "debug_output", "'debug_output' needs the server to run with --debug");
        if (v->type != QMS_JSTR) return badf(b, "debug_output", "'debug_output' must be a string, not %s", qms_json_type_name(v));
        g->debug_output = v->str;
        g->debug_len = v->len;
    }
    if (!get_int(body, "debug_delay_ms", 0, 10000, &ll, &given, b)) return 0;
    if (given && !s->debug) return badf(b, "debug_delay_ms", "'debug_delay_ms' needs the server to run with --debug");
    if (given) g->delay_ms = (int)ll;
    if (chat) {
        const qms_json *msgs = qms_json_get(body, "messages"), *tools = qms_json_get(body, "tools"), *tc = qms_json_get(body, "tool_choice");
        const qms_json *kw = qms_json_get(body, "chat_template_kwargs");
        qms_buf text = {0};
        char err[512];
        int i, want_tools;
        if (!msgs) return badf(b, "messages", "'messages' is required");
        if (msgs->type != QMS_JARR) return badf(b, "messages", "'messages' must be an array, not %s", qms_json_type_name(msgs));
        if (msgs->n == 0) return badf(b, "messages", "'messages' must hold at least one message");
        for (i = 0; i < msgs->n; i++) {
            const qms_json *m = &msgs->items[i], *role;
            if (m->type != QMS_JOBJ) return badf(b, "messages", "'messages[%d]' must be an object, not %s", i, qms_json_type_name(m));
            role = qms_json_get(m, "role");
            if (!role || role->type != QMS_JSTR) return badf(b, "messages", "'messages[%d].role' must be a string, not %s", i, qms_json_type_name(role));
            if (strcmp(role->str, "system") && strcmp(role->str, "user") && strcmp(role->str, "assistant") && strcmp(role->str, "tool") &&
                strcmp(role->str, "developer"))
                return badf(b, "messages", "'messages[%d].role' must be system, developer, user, assistant or tool, not '%s'", i, role->str);
            if ((v = qms_json_get(m, "tool_calls")) && v->type != QMS_JNULL && v->type != QMS_JARR)
                return badf(b, "messages", "'messages[%d].tool_calls' must be an array, not %s", i, qms_json_type_name(v));
            if (!qms_json_get(m, "content") && !(strcmp(role->str, "assistant") == 0 && v && v->type == QMS_JARR))
                return badf(b, "messages", "'messages[%d].content' is required", i);
        }
        if (tools && tools->type != QMS_JNULL) {
            if (tools->type != QMS_JARR) return badf(b, "tools", "'tools' must be an array, not %s", qms_json_type_name(tools));
            for (i = 0; i < tools->n; i++) {
                const qms_json *t = &tools->items[i], *ty = qms_json_get(t, "type"), *fn = qms_json_get(t, "function"), *nm;
                /* OpenAI's {"type": "function", "function": {...}}, or the bare function object
                   (which the template accepts too) */
                if (t->type == QMS_JOBJ && !fn && !ty) fn = t;
                if (t->type != QMS_JOBJ || !fn || fn->type != QMS_JOBJ || (fn != t && (!ty || ty->type != QMS_JSTR || strcmp(ty->str, "function") != 0)))
                    return badf(b, "tools", "'tools[%d]' must be {\"type\": \"function\", \"function\": {\"name\": ..., \"parameters\": {...}}}", i);
                nm = qms_json_get(fn, "name");
                if (!nm || nm->type != QMS_JSTR || nm->len == 0) return badf(b, "tools", "'tools[%d].function.name' must be a non-empty string", i);
                if ((v = qms_json_get(fn, "parameters")) && v->type != QMS_JOBJ)
                    return badf(b, "tools", "'tools[%d].function.parameters' must be an object (a JSON schema), not %s", i, qms_json_type_name(v));
            }
        } else {
            tools = NULL;
        }
        want_tools = tools && tools->n > 0;
        if (tc && tc->type != QMS_JNULL) {
            if (tc->type == QMS_JSTR) {
                if (strcmp(tc->str, "none") == 0) want_tools = 0;
                else if (strcmp(tc->str, "auto") != 0 && strcmp(tc->str, "required") != 0)
                    return badf(b, "tool_choice", "'tool_choice' must be \"none\", \"auto\", \"required\" or an object, not \"%s\"", tc->str);
            } else if (tc->type != QMS_JOBJ) {
                return badf(b, "tool_choice", "'tool_choice' must be a string or an object, not %s", qms_json_type_name(tc));
            }
        }
        if (kw && kw->type == QMS_JOBJ && !get_bool(kw, "enable_thinking", &enable_thinking, b)) { b->param = "chat_template_kwargs"; return 0; }
        if (s->fam == QM_CHAT_QWEN3_CODER) {
            if (!qms_coder_render(&text, msgs, want_tools ? tools : NULL, 1, err, sizeof(err))) {
                qms_buf_free(&text);
                return badf(b, "messages", "%s", err);
            }
            g->use_tools = want_tools;
            g->tools = want_tools ? tools : NULL;
        } else {
            /* the other templates: role + content messages only */
            qm_chat_message *cm;
            qms_buf *parts;
            int64_t need;
            if (want_tools) return badf(b, "tools", "tools need a model with the Qwen3-Coder chat template (this model's template is %s)", s->fam == QM_CHAT_QWEN3 ? "Qwen3" : "ChatML");
            cm = (qm_chat_message *)calloc((size_t)msgs->n, sizeof(*cm));
            parts = (qms_buf *)calloc((size_t)msgs->n, sizeof(*parts));
            if (!cm || !parts) { free(cm); free(parts); return badf(b, NULL, "out of memory"); }
            for (i = 0; i < msgs->n; i++) {
                const qms_json *m = &msgs->items[i];
                char where[32];
                int is_null;
                const char *role = qms_json_get(m, "role")->str;
                snprintf(where, sizeof(where), "messages[%d]", i);
                if ((v = qms_json_get(m, "tool_calls")) && v->type == QMS_JARR && v->n > 0) { badf(b, "messages", "'%s.tool_calls' need a model with the Qwen3-Coder chat template", where); break; }
                if (!qms_content_text(qms_json_get(m, "content"), &parts[i], &is_null, where, err, sizeof(err))) { badf(b, "messages", "%s", err); break; }
                if (parts[i].len != strlen(qms_buf_str(&parts[i]))) { badf(b, "messages", "'%s.content' contains a NUL character", where); break; }
                cm[i].role = strcmp(role, "developer") == 0 ? "system" : role;
                cm[i].content = qms_buf_str(&parts[i]);
            }
            need = i == msgs->n ? qm_chat_render(s->fam, cm, msgs->n, 1, enable_thinking, NULL, 0) : -1;
            if (i == msgs->n && need < 0) badf(b, "messages", "the chat template refused the messages: %s", qm_result_string((qm_result)need));
            if (need >= 0 && qms_buf_reserve(&text, (size_t)need + 1)) {
                qm_chat_render(s->fam, cm, msgs->n, 1, enable_thinking, text.p, (size_t)need + 1);
                text.len = (size_t)need;
            }
            for (i = 0; i < msgs->n; i++) qms_buf_free(&parts[i]);
            free(parts);
            free(cm);
            if (need < 0) { qms_buf_free(&text); return 0; }
        }
        if (text.oom) { qms_buf_free(&text); return badf(b, NULL, "out of memory"); }
        g->prompt_text = text.p ? text.p : (char *)calloc(1, 1);
        g->prompt_text_len = text.len;
        if (!tokenize_prompt(s, g, g->prompt_text, g->prompt_text_len, b, "messages")) return 0;
    } else {
        const qms_json *pr = qms_json_get(body, "prompt");
        if ((v = qms_json_get(body, "echo")) && v->type == QMS_JTRUE) return badf(b, "echo", "'echo' is not supported by this server");
        if ((v = qms_json_get(body, "suffix")) && v->type != QMS_JNULL) return badf(b, "suffix", "'suffix' is not supported by this server");
        if ((v = qms_json_get(body, "best_of")) && v->type == QMS_JNUM && v->num != 1) return badf(b, "best_of", "only best_of = 1 is supported");
        if (!pr) return badf(b, "prompt", "'prompt' is required");
        if (pr->type == QMS_JARR && pr->n == 1 && (pr->items[0].type == QMS_JSTR || pr->items[0].type == QMS_JARR)) pr = &pr->items[0];
        if (pr->type == QMS_JSTR) {
            if (!tokenize_prompt(s, g, pr->str, pr->len, b, "prompt")) return 0;
        } else if (pr->type == QMS_JARR) {
            int i;
            g->prompt = (int32_t *)malloc(sizeof(int32_t) * (size_t)(pr->n + 1));
            if (!g->prompt) return badf(b, "prompt", "out of memory");
            for (i = 0; i < pr->n; i++) {
                const qms_json *e = &pr->items[i];
                if (e->type != QMS_JNUM || !e->is_int || e->num < 0 || e->num >= s->n_vocab)
                    return badf(b, "prompt", "'prompt' as an array must hold one string or token ids in [0, %d); item %d is %s", s->n_vocab, i,
                                e->type == QMS_JNUM ? e->str : qms_json_type_name(e));
                g->prompt[g->n_prompt++] = (int32_t)e->num;
            }
        } else {
            return badf(b, "prompt", "'prompt' must be a string, an array with one string, or an array of token ids, not %s", qms_json_type_name(pr));
        }
    }
    if (render_only) return 1;
    if (g->n_prompt == 0) return badf(b, chat ? "messages" : "prompt", "the prompt is empty (0 tokens)");
    if (g->n_prompt >= s->n_ctx) {
        b->code = "context_length_exceeded";
        return badf(b, chat ? "messages" : "prompt",
                    "This model's maximum context length is %d tokens. However, your %s resulted in %d tokens.", s->n_ctx,
                    chat ? "messages" : "prompt", g->n_prompt);
    }
    return 1;
}

/* ------------------------------------------------------------------------------------- */
/*  Generation                                                                           */
/* ------------------------------------------------------------------------------------- */

typedef struct gen_state {
    server *srv;
    conn *c;
    gen_request *g;
    char id[64];
    long created;
    qms_buf content;      /* non-streaming: the answer so far */
    qms_toolstream ts;
    int n_calls_sent;     /* streaming: tool calls already sent */
    int32_t *toks;
    int n_toks, cap_toks;
    int send_failed, shutdown;
    int oom;
} gen_state;

/* One SSE event in one HTTP chunk. */
static int send_event(gen_state *st, const char *json, size_t n) {
    qms_buf b = {0};
    int ok;
    qms_buf_printf(&b, "%lx\r\ndata: ", (unsigned long)(n + 8));
    qms_buf_put(&b, json, n);
    qms_buf_puts(&b, "\n\n\r\n");
    ok = !b.oom && send_all(st->c, qms_buf_str(&b), b.len);
    qms_buf_free(&b);
    if (!ok) st->send_failed = 1;
    return ok;
}

static void chunk_head(gen_state *st, qms_buf *b) {
    qms_buf_puts(b, "{\"id\":");
    qms_buf_json_cstr(b, st->id);
    qms_buf_printf(b, ",\"object\":\"%s\",\"created\":%ld,\"model\":", st->g->chat ? "chat.completion.chunk" : "text_completion", st->created);
    qms_buf_json_cstr(b, st->srv->model_id);
    qms_buf_puts(b, ",\"system_fingerprint\":\"qwenmoe\",\"choices\":[");
}
static void chunk_tail(gen_state *st, qms_buf *b) {
    qms_buf_puts(b, "]");
    if (st->g->include_usage) qms_buf_puts(b, ",\"usage\":null");
    qms_buf_puts(b, "}");
}

static void write_call(gen_state *st, qms_buf *b, int k, int with_index) {
    char id[40];
    random_id(st->srv, id, sizeof(id), "call_", 24);
    qms_buf_puts(b, "{");
    if (with_index) qms_buf_printf(b, "\"index\":%d,", k);
    qms_buf_puts(b, "\"id\":");
    qms_buf_json_cstr(b, id);
    qms_buf_puts(b, ",\"type\":\"function\",\"function\":{\"name\":");
    qms_buf_json_cstr(b, st->ts.calls[k].name);
    qms_buf_puts(b, ",\"arguments\":");
    qms_buf_json_cstr(b, st->ts.calls[k].arguments);
    qms_buf_puts(b, "}}");
}

/* Stream out new content and new tool calls. */
static int emit(gen_state *st, const char *text, size_t n) {
    gen_request *g = st->g;
    if (!g->stream) {
        if (!g->use_tools) qms_buf_put(&st->content, text, n);
        return !st->content.oom;
    }
    if (n > 0) {
        qms_buf b = {0};
        int ok;
        chunk_head(st, &b);
        if (g->chat) {
            qms_buf_puts(&b, "{\"index\":0,\"delta\":{\"content\":");
            qms_buf_json_str(&b, text, n);
            qms_buf_puts(&b, "},\"logprobs\":null,\"finish_reason\":null}");
        } else {
            qms_buf_puts(&b, "{\"index\":0,\"text\":");
            qms_buf_json_str(&b, text, n);
            qms_buf_puts(&b, ",\"logprobs\":null,\"finish_reason\":null}");
        }
        chunk_tail(st, &b);
        ok = !b.oom && send_event(st, qms_buf_str(&b), b.len);
        qms_buf_free(&b);
        if (!ok) return 0;
    }
    while (st->n_calls_sent < st->ts.n_calls) {
        qms_buf b = {0};
        int ok;
        chunk_head(st, &b);
        qms_buf_puts(&b, "{\"index\":0,\"delta\":{\"tool_calls\":[");
        write_call(st, &b, st->n_calls_sent, 1);
        qms_buf_puts(&b, "]},\"logprobs\":null,\"finish_reason\":null}");
        chunk_tail(st, &b);
        ok = !b.oom && send_event(st, qms_buf_str(&b), b.len);
        qms_buf_free(&b);
        st->n_calls_sent++;
        if (!ok) return 0;
    }
    return 1;
}

/* Text from the model (or the final flush with final = 1). */
static int feed(gen_state *st, const char *text, size_t len, int final) {
    if (st->g->use_tools) {
        qms_buf out = {0};
        int ok;
        qms_toolstream_feed(&st->ts, text, len, final, &out);
        if (!st->g->stream) qms_buf_put(&st->content, qms_buf_str(&out), out.len);
        ok = !out.oom && emit(st, qms_buf_str(&out), out.len);
        qms_buf_free(&out);
        return ok;
    }
    return emit(st, text, len);
}

static int on_token(void *user, int32_t token, const char *text, size_t len) {
    gen_state *st = (gen_state *)user;
    if (token >= 0 && st->g->return_tokens) {
        if (st->n_toks == st->cap_toks) {
            int nc = st->cap_toks ? st->cap_toks * 2 : 64;
            int32_t *np = (int32_t *)realloc(st->toks, sizeof(int32_t) * (size_t)nc);
            if (!np) { st->oom = 1; return 1; }
            st->toks = np;
            st->cap_toks = nc;
        }
        st->toks[st->n_toks++] = token;
    }
    if (!feed(st, text, len, 0)) { if (!st->send_failed) st->oom = 1; return 1; }
    if (st->g->delay_ms > 0 && token >= 0) {
        struct timespec ts;
        ts.tv_sec = st->g->delay_ms / 1000;
        ts.tv_nsec = (long)(st->g->delay_ms % 1000) * 1000000L;
        nanosleep(&ts, NULL);
    }
    if (g_stop) { st->shutdown = 1; return 1; }
    if (peer_closed(st->c)) { st->send_failed = 1; return 1; }
    return 0;
}

/* --debug: play debug_output as if the model had generated it. */
static void fake_generate(server *s, gen_request *g, gen_state *st, qm_generate_stats *stats) {
    int32_t *ids;
    int n = qm_tokenize(s->tok, g->debug_output, g->debug_len, NULL, 0, QM_TOKENIZE_SPECIAL), i;
    qm_utf8_stream u8;
    char tail[8];
    size_t tl;
    memset(&u8, 0, sizeof(u8));
    memset(stats, 0, sizeof(*stats));
    stats->n_prompt = g->n_prompt;
    stats->stop_reason = QM_STOP_EOG;
    ids = (int32_t *)malloc(sizeof(int32_t) * (size_t)(n > 0 ? n : 1));
    if (!ids) { st->oom = 1; return; }
    n = qm_tokenize(s->tok, g->debug_output, g->debug_len, ids, n, QM_TOKENIZE_SPECIAL);
    for (i = 0; i < n; i++) {
        char piece[256], text[256 + 8];
        int pl = 0;
        size_t tlen;
        if (g->max_tokens > 0 && i >= g->max_tokens) { stats->stop_reason = QM_STOP_LENGTH; break; }
        if (qm_token_type(s->tok, ids[i]) != QM_TOKEN_CONTROL) {
            pl = qm_token_to_bytes(s->tok, ids[i], piece, (int)sizeof(piece));
            if (pl < 0 || pl > (int)sizeof(piece)) pl = 0;
        }
        tlen = qm_utf8_stream_push(&u8, piece, (size_t)pl, text);
        stats->n_generated++;
        if (on_token(st, ids[i], text, tlen)) { stats->stop_reason = QM_STOP_CALLBACK; break; }
    }
    if (stats->stop_reason != QM_STOP_CALLBACK) {
        tl = qm_utf8_stream_flush(&u8, tail);
        if (tl) on_token(st, -1, tail, tl);
    }
    free(ids);
}

static const char *finish_reason(const qm_generate_stats *stats, const gen_state *st) {
    if (stats->stop_reason == QM_STOP_LENGTH || stats->stop_reason == QM_STOP_CONTEXT_FULL) return "length";
    if (st->ts.n_calls > 0) return "tool_calls";
    return "stop";
}

static void usage_json(qms_buf *b, const qm_generate_stats *stats) {
    qms_buf_printf(b, "{\"prompt_tokens\":%d,\"completion_tokens\":%d,\"total_tokens\":%d}", stats->n_prompt, stats->n_generated,
                   stats->n_prompt + stats->n_generated);
}

static void tokens_json(qms_buf *b, const gen_state *st) {
    int i;
    qms_buf_puts(b, ",\"tokens\":[");
    for (i = 0; i < st->n_toks; i++) qms_buf_printf(b, i ? ",%d" : "%d", st->toks[i]);
    qms_buf_puts(b, "]");
}

/* POST /v1/chat/completions, /v1/completions, /debug/render. Returns whether the
   connection may be kept. */
static int handle_generate(conn *c, request *rq, int chat, int render_only, int keep) {
    server *s = c->srv;
    qms_json body;
    char jerr[160];
    gen_request g;
    bad b;
    slot *sl;
    int status = 0, ok = 1;
    gen_state st;
    qm_generate_stats stats;
    qm_error err;

    memset(&b, 0, sizeof(b));
    if (!qms_json_parse(rq->body, rq->body_len, &body, jerr, sizeof(jerr))) {
        send_error(c, rq, 400, NULL, "invalid_json", NULL, keep, "We could not parse the JSON body of your request: %s", jerr);
        return keep;
    }
    if (!parse_gen_request(s, &body, chat, render_only, &g, &b)) {
        send_error(c, rq, 400, b.param, b.code, NULL, keep, "%s", b.msg);
        gen_request_free(&g);
        qms_json_free(&body);
        return keep;
    }
    rq->n_prompt = g.n_prompt;
    if (render_only) {
        qms_buf out = {0};
        int i;
        qms_buf_puts(&out, "{\"prompt\":");
        qms_buf_json_str(&out, g.prompt_text ? g.prompt_text : "", g.prompt_text_len);
        qms_buf_printf(&out, ",\"n_tokens\":%d,\"tokens\":[", g.n_prompt);
        for (i = 0; i < g.n_prompt; i++) qms_buf_printf(&out, i ? ",%d" : "%d", g.prompt[i]);
        qms_buf_printf(&out, "],\"tools\":%s}", g.use_tools ? "true" : "false");
        ok = send_response(c, rq, 200, "application/json", qms_buf_str(&out), out.len, NULL, keep);
        qms_buf_free(&out);
        gen_request_free(&g);
        qms_json_free(&body);
        return ok && keep;
    }

    sl = slot_acquire(s, c, &status);
    if (!sl) {
        if (status == 503)
            send_error(c, rq, 503, NULL, g_stop ? "shutting_down" : "server_busy", "Retry-After: 1\r\n", 0,
                       g_stop ? "The server is shutting down" : "The server is busy: %d requests are already waiting for a slot; try again later", s->max_queue);
        else
            rq->note = "client gone while queued";
        gen_request_free(&g);
        qms_json_free(&body);
        return 0;
    }

    memset(&st, 0, sizeof(st));
    st.srv = s;
    st.c = c;
    st.g = &g;
    st.created = (long)time(NULL);
    st.ts.tools = g.tools;
    random_id(s, st.id, sizeof(st.id), chat ? "chatcmpl-" : "cmpl-", 24);
    if (g.stream) {
        static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                                   "Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n";
        rq->status = 200;
        if (send_all(c, head, sizeof(head) - 1) && chat) {
            qms_buf e = {0};
            chunk_head(&st, &e);
            qms_buf_puts(&e, "{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}");
            chunk_tail(&st, &e);
            send_event(&st, qms_buf_str(&e), e.len);
            qms_buf_free(&e);
        }
    }
    memset(&stats, 0, sizeof(stats));
    memset(&err, 0, sizeof(err));
    if (!c->gone) {
        qm_context_truncate(sl->ctx, 0); /* every request starts from an empty cache */
        if (g.debug_output) {
            fake_generate(s, &g, &st, &stats);
        } else {
            qm_generate_params gp;
            memset(&gp, 0, sizeof(gp));
            gp.max_tokens = g.max_tokens;
            gp.sampling = g.sp;
            gp.stop = (const char *const *)g.stops;
            gp.n_stop = g.n_stop;
            gp.skip_special = 1;
            gp.on_token = on_token;
            gp.user = &st;
            if (qm_generate(sl->ctx, g.prompt, g.n_prompt, &gp, &stats, &err) != QM_OK) st.oom = st.oom ? 1 : 2;
        }
        qm_context_truncate(sl->ctx, 0);
    }
    slot_release(s, sl);
    rq->n_completion = stats.n_generated;
    if (!st.send_failed && !st.shutdown && !st.oom && !c->gone) feed(&st, NULL, 0, 1);

    if (st.send_failed || c->gone) {
        rq->note = "client disconnected";
        ok = 0;
    } else if (st.oom || st.shutdown) {
        const char *msg = st.shutdown ? "The server is shutting down" : st.oom == 2 ? err.message : "out of memory";
        if (g.stream) {
            qms_buf e = {0};
            error_json(&e, msg, "server_error", NULL, st.shutdown ? "shutting_down" : NULL);
            send_event(&st, qms_buf_str(&e), e.len);
            send_all(c, "0\r\n\r\n", 5);
            qms_buf_free(&e);
            rq->note = st.shutdown ? "cancelled: shutdown" : "error";
        } else {
            send_error(c, rq, st.shutdown ? 503 : 500, NULL, st.shutdown ? "shutting_down" : NULL, NULL, 0, "%s", msg);
        }
        ok = 0;
    } else if (g.stream) {
        qms_buf e = {0};
        const char *fr = finish_reason(&stats, &st);
        chunk_head(&st, &e);
        if (chat) qms_buf_printf(&e, "{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"%s\"", fr);
        else qms_buf_printf(&e, "{\"index\":0,\"text\":\"\",\"logprobs\":null,\"finish_reason\":\"%s\"", fr);
        if (g.return_tokens) tokens_json(&e, &st);
        qms_buf_puts(&e, "}");
        chunk_tail(&st, &e);
        ok = send_event(&st, qms_buf_str(&e), e.len);
        if (ok && g.include_usage) {
            e.len = 0;
            qms_buf_puts(&e, "{\"id\":");
            qms_buf_json_cstr(&e, st.id);
            qms_buf_printf(&e, ",\"object\":\"%s\",\"created\":%ld,\"model\":", chat ? "chat.completion.chunk" : "text_completion", st.created);
            qms_buf_json_cstr(&e, s->model_id);
            qms_buf_puts(&e, ",\"system_fingerprint\":\"qwenmoe\",\"choices\":[],\"usage\":");
            usage_json(&e, &stats);
            qms_buf_puts(&e, "}");
            ok = send_event(&st, qms_buf_str(&e), e.len);
        }
        if (ok) ok = send_event(&st, "[DONE]", 6);
        if (ok) ok = send_all(c, "0\r\n\r\n", 5);
        qms_buf_free(&e);
        if (!ok) rq->note = "client disconnected";
        ok = ok && keep;
    } else {
        qms_buf out = {0};
        int k;
        const char *fr = finish_reason(&stats, &st);
        qms_buf_puts(&out, "{\"id\":");
        qms_buf_json_cstr(&out, st.id);
        qms_buf_printf(&out, ",\"object\":\"%s\",\"created\":%ld,\"model\":", chat ? "chat.completion" : "text_completion", st.created);
        qms_buf_json_cstr(&out, s->model_id);
        qms_buf_puts(&out, ",\"system_fingerprint\":\"qwenmoe\",\"choices\":[{\"index\":0,");
        if (chat) {
            const char *cs = qms_buf_str(&st.content);
            size_t cn = st.content.len;
            qms_buf_puts(&out, "\"message\":{\"role\":\"assistant\",\"content\":");
            if (st.ts.n_calls > 0) qms_py_strip(&cs, &cn);
            if (st.ts.n_calls > 0 && cn == 0) qms_buf_puts(&out, "null");
            else qms_buf_json_str(&out, cs, cn);
            if (st.ts.n_calls > 0) {
                qms_buf_puts(&out, ",\"tool_calls\":[");
                for (k = 0; k < st.ts.n_calls; k++) {
                    if (k) qms_buf_putc(&out, ',');
                    write_call(&st, &out, k, 0);
                }
                qms_buf_puts(&out, "]");
            }
            qms_buf_puts(&out, ",\"refusal\":null}");
        } else {
            qms_buf_puts(&out, "\"text\":");
            qms_buf_json_str(&out, qms_buf_str(&st.content), st.content.len);
        }
        qms_buf_printf(&out, ",\"logprobs\":null,\"finish_reason\":\"%s\"", fr);
        if (g.return_tokens) tokens_json(&out, &st);
        qms_buf_puts(&out, "}],\"usage\":");
        usage_json(&out, &stats);
        qms_buf_puts(&out, "}");
        if (out.oom) {
            send_error(c, rq, 500, NULL, NULL, NULL, 0, "out of memory");
            ok = 0;
        } else ok = send_response(c, rq, 200, "application/json", qms_buf_str(&out), out.len, NULL, keep) && keep;
        qms_buf_free(&out);
    }
    if (g.stream) rq->note = rq->note ? rq->note : "stream";
    qms_toolstream_free(&st.ts);
    qms_buf_free(&st.content);
    free(st.toks);
    gen_request_free(&g);
    qms_json_free(&body);
    return ok;
}

/* ------------------------------------------------------------------------------------- */
/*  Routing                                                                              */
/* ------------------------------------------------------------------------------------- */

/* Constant-time comparison of the Authorization header with "Bearer KEY". */
static int auth_ok(const server *s, const char *h) {
    size_t kl = strlen(s->api_key), hl, i;
    unsigned diff = 0;
    if (!ieq_prefix(h, "Bearer ")) return 0;
    h += 7;
    while (*h == ' ') h++;
    hl = strlen(h);
    diff = (unsigned)(hl ^ kl);
    for (i = 0; i < kl; i++) diff |= (unsigned)(unsigned char)s->api_key[i] ^ (unsigned)(unsigned char)(i < hl ? h[i] : 0);
    return diff == 0;
}

/* Handle one request; returns whether to keep the connection. */
static int route(conn *c, request *rq) {
    server *s = c->srv;
    char path[512], *q;
    int keep = !rq->want_close && (rq->http_minor == 1 || rq->want_keep) && !g_stop;
    snprintf(path, sizeof(path), "%s", rq->path);
    if ((q = strchr(path, '?')) != NULL) *q = 0;
    if (strcmp(path, "/health") == 0) {
        qms_buf b = {0};
        int i, busy = 0, waiting;
        if (strcmp(rq->method, "GET") != 0)
            return send_error(c, rq, 405, NULL, "method_not_allowed", "Allow: GET\r\n", keep, "%s %s: use GET", rq->method, path) && keep;
        pthread_mutex_lock(&s->mu);
        for (i = 0; i < s->n_slots; i++) busy += s->slots[i].busy;
        waiting = s->n_waiting;
        pthread_mutex_unlock(&s->mu);
        qms_buf_printf(&b, "{\"status\":\"%s\",\"slots_total\":%d,\"slots_busy\":%d,\"queued\":%d}", g_stop ? "shutting_down" : "ok",
                       s->n_slots, busy, waiting);
        i = send_response(c, rq, g_stop ? 503 : 200, "application/json", qms_buf_str(&b), b.len, NULL, keep);
        qms_buf_free(&b);
        return i && keep;
    }
    if (s->api_key && !auth_ok(s, rq->auth))
        return send_error(c, rq, 401, NULL, "invalid_api_key", "WWW-Authenticate: Bearer\r\n", keep,
                          rq->auth[0] ? "Incorrect API key provided" : "Missing API key: send \"Authorization: Bearer KEY\"") && keep;
    if (strcmp(path, "/v1/models") == 0) {
        qms_buf b = {0};
        int ok;
        if (strcmp(rq->method, "GET") != 0)
            return send_error(c, rq, 405, NULL, "method_not_allowed", "Allow: GET\r\n", keep, "%s %s: use GET", rq->method, path) && keep;
        qms_buf_puts(&b, "{\"object\":\"list\",\"data\":[{\"id\":");
        qms_buf_json_cstr(&b, s->model_id);
        qms_buf_printf(&b, ",\"object\":\"model\",\"created\":%ld,\"owned_by\":\"qwenmoe\",\"meta\":{\"n_ctx\":%d,\"n_vocab\":%d,\"backend\":\"%s\"}}]}",
                       (long)s->started, s->n_ctx, s->n_vocab, qm_model_backend(s->model));
        ok = send_response(c, rq, 200, "application/json", qms_buf_str(&b), b.len, NULL, keep);
        qms_buf_free(&b);
        return ok && keep;
    }
    if (strcmp(path, "/v1/chat/completions") == 0 || strcmp(path, "/v1/completions") == 0 ||
        (s->debug && strcmp(path, "/debug/render") == 0)) {
        int chat = strcmp(path, "/v1/completions") != 0, render = strcmp(path, "/debug/render") == 0;
        if (strcmp(rq->method, "POST") != 0)
            return send_error(c, rq, 405, NULL, "method_not_allowed", "Allow: POST\r\n", keep, "%s %s: use POST", rq->method, path) && keep;
        return handle_generate(c, rq, chat, render, keep);
    }
    return send_error(c, rq, 404, NULL, "not_found", NULL, keep, "Unknown path: %s %s", rq->method, path) && keep;
}

static void *conn_main(void *arg) {
    conn *c = (conn *)arg;
    server *s = c->srv;
    int i;
    for (;;) {
        request rq;
        const char *why;
        double t0;
        int r = read_request(c, &rq, &why), keep;
        t0 = now_s();
        if (r == 0) break;
        if (r != 1) {
            if (r == 413 && strcmp(why, "body") == 0)
                send_error(c, &rq, 413, NULL, "request_too_large", NULL, 0, "The request body (%lld bytes) is over the limit of %lu bytes",
                           rq.content_length, (unsigned long)s->max_body);
            else
                send_error(c, &rq, r, NULL, r == 413 ? "request_too_large" : r == 411 ? "length_required" : "bad_request", NULL, 0, "%s", why);
            log_line("%s %s %s %d %s", c->peer, rq.method[0] ? rq.method : "-", rq.path[0] ? rq.path : "-", rq.status, why);
            lingering_close(c);
            break;
        }
        keep = route(c, &rq);
        log_line("%s %s %s %d prompt=%d completion=%d %.3fs%s%s", c->peer, rq.method, rq.path, rq.status, rq.n_prompt, rq.n_completion,
                 now_s() - t0, rq.note ? " " : "", rq.note ? rq.note : "");
        /* drop the body */
        if (c->len >= rq.body_len) {
            memmove(c->buf, c->buf + rq.body_len, c->len - rq.body_len);
            c->len -= rq.body_len;
        }
        if (!keep || c->gone) break;
    }
    close(c->fd);
    free(c->buf);
    pthread_mutex_lock(&s->mu);
    for (i = 0; i < s->n_conn; i++)
        if (s->conns[i] == c) { s->conns[i] = s->conns[--s->n_conn]; break; }
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    free(c);
    return NULL;
}

/* ===================================================================================== */
/*  main                                                                                 */
/* ===================================================================================== */

static int parse_int_arg(const char *flag, const char *v, int lo, int hi, int *out) {
    char *e;
    long x = strtol(v, &e, 10);
    if (e == v || *e || x < lo || x > hi) {
        fprintf(stderr, "error: %s expects an integer in [%d, %d], got '%s'\n", flag, lo, hi, v);
        return 0;
    }
    *out = (int)x;
    return 1;
}

int main(int argc, char **argv) {
    const char *model_path = NULL, *host = "127.0.0.1", *alias = NULL;
    int port = 8080, threads = 0, n_ctx = 0, parallel = 2, queue = 64, i, rc = 1, lfd = -1, max_body = (int)DEFAULT_MAX_BODY;
    server srv;
    qm_model_params mp = qm_model_params_default();
    qm_error err;
    struct addrinfo hints, *ai = NULL;
    char portstr[16];
    struct sigaction sa;

    memset(&srv, 0, sizeof(srv));
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(argv[0]); return 0; }
        if (!strcmp(a, "--debug")) { srv.debug = 1; continue; }
        if (!v) { fprintf(stderr, "error: unknown argument or missing value: '%s' (see --help)\n", a); return 1; }
        i++;
        if (!strcmp(a, "-m")) model_path = v;
        else if (!strcmp(a, "--host")) host = v;
        else if (!strcmp(a, "--port")) { if (!parse_int_arg(a, v, 0, 65535, &port)) return 1; }
        else if (!strcmp(a, "-t")) { if (!parse_int_arg(a, v, 1, 1024, &threads)) return 1; }
        else if (!strcmp(a, "--ctx")) { if (!parse_int_arg(a, v, 0, 1 << 24, &n_ctx)) return 1; }
        else if (!strcmp(a, "--parallel")) { if (!parse_int_arg(a, v, 1, 256, &parallel)) return 1; }
        else if (!strcmp(a, "--queue")) { if (!parse_int_arg(a, v, 0, MAX_CONNECTIONS, &queue)) return 1; }
        else if (!strcmp(a, "--api-key")) srv.api_key = v;
        else if (!strcmp(a, "--alias")) alias = v;
        else if (!strcmp(a, "--max-body")) { if (!parse_int_arg(a, v, 1024, 1 << 30, &max_body)) return 1; }
        else { fprintf(stderr, "error: unknown argument '%s' (see --help)\n", a); return 1; }
    }
    if (!model_path) { fprintf(stderr, "error: no model given (-m FILE); see --help\n"); return 1; }
    if (srv.api_key && !srv.api_key[0]) { fprintf(stderr, "error: --api-key is empty\n"); return 1; }
    srv.max_body = (size_t)max_body;
    srv.max_queue = queue;
    srv.started = time(NULL);
    if (threads == 0) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        threads = (int)(nc > 0 ? nc : 1) / parallel;
        if (threads < 1) threads = 1;
    }
    {
        uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
        int fd = open("/dev/urandom", O_RDONLY);
        if (fd >= 0) {
            uint64_t r;
            if (read(fd, &r, sizeof(r)) == (ssize_t)sizeof(r)) seed ^= r;
            close(fd);
        }
        srv.rng = seed;
    }
    pthread_mutex_init(&srv.mu, NULL);
    pthread_cond_init(&srv.cv, NULL);

    if (qm_model_load(model_path, &mp, &srv.model, &err) != QM_OK) { fprintf(stderr, "error: %s\n", err.message); goto out; }
    srv.tok = qm_model_tokenizer(srv.model);
    srv.fam = qm_model_chat_family(srv.model);
    srv.n_vocab = qm_tokenizer_n_vocab(srv.tok);
    if (alias) snprintf(srv.model_id, sizeof(srv.model_id), "%s", alias);
    else {
        const char *base = strrchr(model_path, '/');
        snprintf(srv.model_id, sizeof(srv.model_id), "%s", base ? base + 1 : model_path);
    }
    srv.slots = (slot *)calloc((size_t)parallel, sizeof(slot));
    if (!srv.slots) { fprintf(stderr, "error: out of memory\n"); goto out; }
    for (i = 0; i < parallel; i++) {
        qm_context_params cp;
        memset(&cp, 0, sizeof(cp));
        cp.n_ctx = n_ctx;
        cp.n_threads = threads;
        if (qm_context_create(srv.model, &cp, &srv.slots[i].ctx, &err) != QM_OK) {
            fprintf(stderr, "error: slot %d: %s\n", i, err.message);
            goto out;
        }
        srv.n_slots++;
    }
    srv.n_ctx = qm_context_n_ctx(srv.slots[0].ctx);

    /* listen */
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    snprintf(portstr, sizeof(portstr), "%d", port);
    if ((i = getaddrinfo(host, portstr, &hints, &ai)) != 0) { fprintf(stderr, "error: --host %s: %s\n", host, gai_strerror(i)); goto out; }
    lfd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (lfd < 0) { fprintf(stderr, "error: socket: %s\n", strerror(errno)); goto out; }
    {
        int one = 1;
        setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    }
    if (bind(lfd, ai->ai_addr, ai->ai_addrlen) != 0) { fprintf(stderr, "error: cannot listen on %s:%d: %s\n", host, port, strerror(errno)); goto out; }
    if (listen(lfd, 128) != 0) { fprintf(stderr, "error: listen: %s\n", strerror(errno)); goto out; }
    {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        if (getsockname(lfd, (struct sockaddr *)&ss, &sl) == 0)
            port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
    }
    if (pipe(g_wake) != 0) { fprintf(stderr, "error: pipe: %s\n", strerror(errno)); goto out; }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    {
        int known = 1;
        qm_str tmpl;
        if (qm_gguf_get_str(qm_model_gguf(srv.model), "tokenizer.chat_template", &tmpl, NULL) == QM_OK) qm_chat_detect(tmpl.ptr, (size_t)tmpl.len, &known);
        else known = 0;
        fprintf(stderr, "qwenmoe-server: model %s (%s, chat template %s%s), %d slots x %d threads, context %d, backend %s\n", srv.model_id,
                qm_model_hparams(srv.model)->arch, srv.fam == QM_CHAT_QWEN3_CODER ? "Qwen3-Coder" : srv.fam == QM_CHAT_QWEN3 ? "Qwen3" : "ChatML",
                known ? "" : ", not recognised: using ChatML", srv.n_slots, threads, srv.n_ctx, qm_model_backend(srv.model));
    }
    fprintf(stderr, "qwenmoe-server: listening on http://%s:%d\n", host, port);

    while (!g_stop) {
        struct pollfd pf[2];
        int r, fd;
        conn *c;
        pthread_t th;
        pthread_attr_t attr;
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        pf[0].fd = lfd;
        pf[0].events = POLLIN;
        pf[1].fd = g_wake[0];
        pf[1].events = POLLIN;
        pf[0].revents = pf[1].revents = 0;
        r = poll(pf, 2, -1);
        if (r < 0) {
            if (errno == EINTR) continue;
            fprintf(stderr, "error: poll: %s\n", strerror(errno));
            break;
        }
        if (g_stop || !(pf[0].revents & POLLIN)) continue;
        fd = accept(lfd, (struct sockaddr *)&ss, &sl);
        if (fd < 0) continue;
        {
            struct timeval tv;
            int one = 1;
            tv.tv_sec = 30;
            tv.tv_usec = 0;
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        }
        c = (conn *)calloc(1, sizeof(conn));
        if (!c) { close(fd); continue; }
        c->srv = &srv;
        c->fd = fd;
        {
            char h[INET6_ADDRSTRLEN] = "?";
            int p = 0;
            if (ss.ss_family == AF_INET) {
                inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, h, sizeof(h));
                p = ntohs(((struct sockaddr_in *)&ss)->sin_port);
            } else if (ss.ss_family == AF_INET6) {
                inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, h, sizeof(h));
                p = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
            }
            snprintf(c->peer, sizeof(c->peer), "%s:%d", h, p);
        }
        pthread_mutex_lock(&srv.mu);
        if (srv.n_conn >= MAX_CONNECTIONS) {
            char busy[256];
            static const char bj[] = "{\"error\":{\"message\":\"Too many connections\",\"type\":\"server_error\",\"param\":null,\"code\":\"server_busy\"}}";
            int bn = snprintf(busy, sizeof(busy), "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
                              "Content-Length: %lu\r\n\r\n%s", (unsigned long)(sizeof(bj) - 1), bj);
            pthread_mutex_unlock(&srv.mu);
            if (send(fd, busy, (size_t)bn, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) { /* nothing more to do */ }
            log_line("%s - - 503 too many connections", c->peer);
            close(fd);
            free(c);
            continue;
        }
        srv.conns[srv.n_conn++] = c;
        pthread_mutex_unlock(&srv.mu);
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&th, &attr, conn_main, c) != 0) {
            pthread_mutex_lock(&srv.mu);
            srv.conns[--srv.n_conn] = NULL;
            pthread_mutex_unlock(&srv.mu);
            close(fd);
            free(c);
        }
        pthread_attr_destroy(&attr);
    }
    /* shutdown: no new connections; in-flight generations stop at their next token, queued
       requests get 503, idle keep-alive connections close; then everything is freed */
    fprintf(stderr, "qwenmoe-server: shutting down\n");
    close(lfd);
    lfd = -1;
    {
        double t0 = now_s();
        pthread_mutex_lock(&srv.mu);
        pthread_cond_broadcast(&srv.cv);
        while (srv.n_conn > 0) {
            struct timespec ts;
            if (now_s() - t0 > 3.0) {
                /* a client that does not read: unblock its sends */
                for (i = 0; i < srv.n_conn; i++) shutdown(srv.conns[i]->fd, SHUT_RDWR);
            }
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 100000000L;
            if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
            pthread_cond_timedwait(&srv.cv, &srv.mu, &ts);
        }
        pthread_mutex_unlock(&srv.mu);
    }
    rc = 0;
out:
    if (ai) freeaddrinfo(ai);
    if (lfd >= 0) close(lfd);
    if (g_wake[0] >= 0) { close(g_wake[0]); close(g_wake[1]); }
    for (i = 0; i < srv.n_slots; i++) qm_context_free(srv.slots[i].ctx);
    free(srv.slots);
    qm_model_free(srv.model);
    pthread_cond_destroy(&srv.cv);
    pthread_mutex_destroy(&srv.mu);
    if (rc == 0) fprintf(stderr, "qwenmoe-server: stopped\n");
    return rc;
}
