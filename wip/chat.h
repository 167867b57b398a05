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
