/* server_tools.h - Qwen3-Coder tool calling for examples/server.c (qwenmoe-server).
   Include server_json.h first. Every function is static.

   qms_coder_render(): the whole Qwen3-Coder chat template (tools/templates/qwen3-coder.jinja)
   for OpenAI-style messages (role, content, tool_calls, tool results) and tool definitions,
   with the meaning Python's jinja2 gives it (as transformers and vLLM run it): `| string` and
   {{ x }} print str(x) (True, None, ['a', 'b'], {'k': 1}), `tojson` is json.dumps(x,
   ensure_ascii=False). tests/server/render_ref.mjs renders the same cases with jinja2 and
   tests/server/test_toolparse.c compares byte for byte.

   qms_toolstream: parses the model's output
       <tool_call>\n<function=NAME>\n<parameter=P>\nVALUE\n</parameter>\n</function>\n</tool_call>
   into tool calls (name + arguments as a JSON object text, each value converted by the tool's
   JSON schema type), incrementally: text that cannot be the start of "<tool_call>" is
   released as content at once, the rest is held until the call is complete. */
#ifndef QWENMOE_SERVER_TOOLS_H
#define QWENMOE_SERVER_TOOLS_H

#include "server_json.h"

/* ------------------------------------------------------------------------------------- */
/*  Rendering                                                                            */
/* ------------------------------------------------------------------------------------- */

static int qms__rfail(char *err, size_t cap, const char *fmt, ...) {
    va_list ap;
    if (err && cap) {
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return 0;
}

/* Python's str.strip() whitespace, for UTF-8 text. */
static int qms__py_space(const char *s, size_t n, size_t *len) {
    unsigned char c = (unsigned char)s[0];
    unsigned cp;
    int l;
    if (c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F)) { *len = 1; return 1; }
    if (c < 0x80) return 0;
    l = qms_utf8_next((const unsigned char *)s, n, &cp);
    if (!l) return 0;
    *len = (size_t)l;
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
           cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}
/* s.strip(): the span [*a, *a + *n) trimmed. */
QMS_FN void qms_py_strip(const char **a, size_t *n) {
    const char *s = *a;
    size_t len = *n, l;
    while (len && qms__py_space(s, len, &l)) { s += l; len -= l; }
    for (;;) {
        /* the last character: step back over continuation bytes */
        size_t k = len;
        if (!len) break;
        while (k > 0 && ((unsigned char)s[k - 1] & 0xC0) == 0x80) k--;
        if (k == 0) break;
        k--;
        if (qms__py_space(s + k, len - k, &l) && k + l == len) len = k;
        else break;
    }
    *a = s;
    *n = len;
}

/* (value | trim): str(value).strip(); an absent value is "". */
static void qms__put_trim(qms_buf *b, const qms_json *v) {
    qms_buf tmp = {0};
    const char *s;
    size_t n;
    if (!v) return;
    qms_py_str(&tmp, v);
    s = qms_buf_str(&tmp);
    n = tmp.len;
    qms_py_strip(&s, &n);
    qms_buf_put(b, s, n);
    qms_buf_free(&tmp);
}

/* The template's render_item_list macro: '\n<TAG>[`a`, 1]</TAG>' for a non-empty iterable
   (a list; a str iterates its characters, a dict its keys). */
static void qms__item_list(qms_buf *b, const qms_json *v, const char *tag) {
    int i, count = 0;
    if (!v) return;
    if (v->type == QMS_JARR || v->type == QMS_JOBJ) count = v->n;
    else if (v->type == QMS_JSTR) count = (int)v->len;
    if (count == 0) return;
    qms_buf_printf(b, "\n<%s>[", tag);
    if (v->type == QMS_JARR) {
        for (i = 0; i < v->n; i++) {
            if (i) qms_buf_puts(b, ", ");
            if (v->items[i].type == QMS_JSTR) {
                qms_buf_putc(b, '`');
                qms_buf_put(b, v->items[i].str, v->items[i].len);
                qms_buf_putc(b, '`');
            } else {
                qms_py_str(b, &v->items[i]);
            }
        }
    } else if (v->type == QMS_JOBJ) {
        for (i = 0; i < v->n; i++) {
            if (i) qms_buf_puts(b, ", ");
            qms_buf_putc(b, '`');
            qms_buf_put(b, v->keys[i], v->key_lens[i]);
            qms_buf_putc(b, '`');
        }
    } else {
        size_t k = 0;
        int first = 1;
        while (k < v->len) {
            unsigned cp;
            int l = qms_utf8_next((const unsigned char *)v->str + k, v->len - k, &cp);
            if (!l) l = 1;
            if (!first) qms_buf_puts(b, ", ");
            first = 0;
            qms_buf_putc(b, '`');
            qms_buf_put(b, v->str + k, (size_t)l);
            qms_buf_putc(b, '`');
            k += (size_t)l;
        }
    }
    qms_buf_printf(b, "]</%s>", tag);
}

/* The text of a message content: a string, or an array of {"type":"text","text":...} parts
   (joined). *is_null is set for null or an absent content. Returns 0 with a message for
   anything else. */
QMS_FN int qms_content_text(const qms_json *c, qms_buf *out, int *is_null, const char *where, char *err, size_t cap) {
    int i;
    *is_null = 0;
    if (!c || c->type == QMS_JNULL) { *is_null = 1; return 1; }
    if (c->type == QMS_JSTR) { qms_buf_put(out, c->str, c->len); return 1; }
    if (c->type != QMS_JARR) return qms__rfail(err, cap, "%s.content must be a string, an array of text parts or null, not %s", where, qms_json_type_name(c));
    for (i = 0; i < c->n; i++) {
        const qms_json *part = &c->items[i], *ty = qms_json_get(part, "type"), *tx = qms_json_get(part, "text");
        if (part->type != QMS_JOBJ || !ty || ty->type != QMS_JSTR || strcmp(ty->str, "text") != 0 || !tx || tx->type != QMS_JSTR)
            return qms__rfail(err, cap, "%s.content[%d] must be {\"type\": \"text\", \"text\": string} (only text parts are supported)", where, i);
        qms_buf_put(out, tx->str, tx->len);
    }
    if (out->oom) return qms__rfail(err, cap, "out of memory");
    return 1;
}

/* One tool definition (the function object). */
static int qms__render_tool(qms_buf *b, const qms_json *tool, int idx, char *err, size_t cap) {
    const qms_json *fn = qms_json_get(tool, "function"), *params, *props = NULL, *ret;
    int i, k;
    static const char *const handled[] = {"type", "description", "enum", "required"};
    if (fn) tool = fn;
    qms_buf_puts(b, "\n<function>\n<name>");
    if (qms_json_get(tool, "name")) qms_py_str(b, qms_json_get(tool, "name"));
    qms_buf_puts(b, "</name>\n<description>");
    qms__put_trim(b, qms_json_get(tool, "description"));
    qms_buf_puts(b, "</description>\n<parameters>");
    params = qms_json_get(tool, "parameters");
    if (params && params->type == QMS_JOBJ) props = qms_json_get(params, "properties");
    if (props && props->type != QMS_JOBJ)
        return qms__rfail(err, cap, "tools[%d].function.parameters.properties must be an object, not %s", idx, qms_json_type_name(props));
    for (i = 0; props && i < props->n; i++) {
        const qms_json *pf = &props->items[i], *t;
        if (pf->type != QMS_JOBJ)
            return qms__rfail(err, cap, "tools[%d].function.parameters.properties.%s must be an object, not %s", idx, props->keys[i], qms_json_type_name(pf));
        qms_buf_puts(b, "\n<parameter>\n<name>");
        qms_buf_put(b, props->keys[i], props->key_lens[i]);
        qms_buf_puts(b, "</name>");
        if ((t = qms_json_get(pf, "type")) != NULL) {
            qms_buf_puts(b, "\n<type>");
            qms_py_str(b, t);
            qms_buf_puts(b, "</type>");
        }
        if ((t = qms_json_get(pf, "description")) != NULL) {
            qms_buf_puts(b, "\n<description>");
            qms__put_trim(b, t);
            qms_buf_puts(b, "</description>");
        }
        qms__item_list(b, qms_json_get(pf, "enum"), "enum");
        for (k = 0; k < pf->n; k++) {
            const char *key = pf->keys[k];
            size_t h, c;
            int skip = 0;
            for (h = 0; h < sizeof(handled) / sizeof(handled[0]); h++)
                if (strcmp(key, handled[h]) == 0 && pf->key_lens[k] == strlen(handled[h])) skip = 1;
            if (skip) continue;
            /* json_key | replace("-", "_") | replace(" ", "_") | replace("$", "") */
            {
                qms_buf nk = {0};
                for (c = 0; c < pf->key_lens[k]; c++) {
                    char ch = key[c];
                    if (ch == '-' || ch == ' ') qms_buf_putc(&nk, '_');
                    else if (ch != '$') qms_buf_putc(&nk, ch);
                }
                qms_buf_printf(b, "\n<%s>", qms_buf_str(&nk));
                if (pf->items[k].type == QMS_JOBJ) qms_py_json(b, &pf->items[k]);
                else qms_py_str(b, &pf->items[k]);
                qms_buf_printf(b, "</%s>", qms_buf_str(&nk));
                qms_buf_free(&nk);
            }
        }
        qms__item_list(b, qms_json_get(pf, "required"), "required");
        qms_buf_puts(b, "\n</parameter>");
    }
    if (params && params->type == QMS_JOBJ) qms__item_list(b, qms_json_get(params, "required"), "required");
    qms_buf_puts(b, "\n</parameters>");
    if ((ret = qms_json_get(tool, "return")) != NULL) {
        qms_buf_puts(b, "\n<return>");
        if (ret->type == QMS_JOBJ) qms_py_json(b, ret);
        else qms_py_str(b, ret);
        qms_buf_puts(b, "</return>");
    }
    qms_buf_puts(b, "\n</function>");
    return 1;
}

static const char qms__tool_instructions[] =
    "\n\nIf you choose to call a function ONLY reply in the following format with NO suffix:\n\n"
    "<tool_call>\n<function=example_function_name>\n<parameter=example_parameter_1>\nvalue_1\n</parameter>\n"
    "<parameter=example_parameter_2>\nThis is the value for the second parameter\nthat can span\nmultiple lines\n"
    "</parameter>\n</function>\n</tool_call>\n\n<IMPORTANT>\nReminder:\n"
    "- Function calls MUST follow the specified format: an inner <function=...></function> block must be nested within <tool_call></tool_call> XML tags\n"
    "- Required parameters MUST be specified\n"
    "- You may provide optional reasoning for your function call in natural language BEFORE the function call, but NOT after\n"
    "- If there is no function call available, answer the question like normal with your current knowledge and do not tell the user about function calls\n"
    "</IMPORTANT>";

/* The arguments of one assistant tool call: an object, or a string holding a JSON object
   (the OpenAI form); *owned receives a parsed tree to free. */
static const qms_json *qms__call_args(const qms_json *args, qms_json *owned, const char *where, char *err, size_t cap) {
    char jerr[128];
    if (args->type == QMS_JOBJ) return args;
    if (args->type != QMS_JSTR) {
        qms__rfail(err, cap, "%s.arguments must be a string holding a JSON object, not %s", where, qms_json_type_name(args));
        return NULL;
    }
    if (!qms_json_parse(args->str, args->len, owned, jerr, sizeof(jerr))) {
        qms__rfail(err, cap, "%s.arguments is not valid JSON: %s", where, jerr);
        return NULL;
    }
    if (owned->type != QMS_JOBJ) {
        qms__rfail(err, cap, "%s.arguments must hold a JSON object, not %s", where, qms_json_type_name(owned));
        qms_json_free(owned);
        return NULL;
    }
    return owned;
}

/* An assistant message with tool calls. */
static int qms__render_calls(qms_buf *b, const qms_json *msg, int mi, char *err, size_t cap) {
    const qms_json *content = qms_json_get(msg, "content"), *calls = qms_json_get(msg, "tool_calls");
    int i, k;
    qms_buf_puts(b, "<|im_start|>assistant");
    if (content && (content->type == QMS_JSTR || content->type == QMS_JARR)) {
        qms_buf text = {0};
        int is_null;
        char where[64];
        const char *s;
        size_t n;
        snprintf(where, sizeof(where), "messages[%d]", mi);
        if (!qms_content_text(content, &text, &is_null, where, err, cap)) { qms_buf_free(&text); return 0; }
        s = qms_buf_str(&text);
        n = text.len;
        qms_py_strip(&s, &n);
        if (n > 0) {
            qms_buf_putc(b, '\n');
            qms_buf_put(b, s, n);
            qms_buf_putc(b, '\n');
        }
        qms_buf_free(&text);
    }
    for (i = 0; i < calls->n; i++) {
        const qms_json *tc = &calls->items[i], *fn = qms_json_get(tc, "function"), *name, *args;
        char where[80];
        snprintf(where, sizeof(where), "messages[%d].tool_calls[%d]%s", mi, i, fn ? ".function" : "");
        if (tc->type != QMS_JOBJ) return qms__rfail(err, cap, "messages[%d].tool_calls[%d] must be an object", mi, i);
        if (fn) tc = fn;
        name = qms_json_get(tc, "name");
        if (!name || name->type != QMS_JSTR) return qms__rfail(err, cap, "%s.name must be a string", where);
        qms_buf_puts(b, "\n<tool_call>\n<function=");
        qms_buf_put(b, name->str, name->len);
        qms_buf_puts(b, ">\n");
        if ((args = qms_json_get(tc, "arguments")) != NULL) {
            qms_json owned;
            const qms_json *a;
            memset(&owned, 0, sizeof(owned));
            if (!(a = qms__call_args(args, &owned, where, err, cap))) return 0;
            for (k = 0; k < a->n; k++) {
                qms_buf_puts(b, "<parameter=");
                qms_buf_put(b, a->keys[k], a->key_lens[k]);
                qms_buf_puts(b, ">\n");
                qms_py_str(b, &a->items[k]);
                qms_buf_puts(b, "\n</parameter>\n");
            }
            qms_json_free(&owned);
        }
        qms_buf_puts(b, "</function>\n</tool_call>");
    }
    qms_buf_puts(b, "<|im_end|>\n");
    return 1;
}

static int qms__has_calls(const qms_json *msg) {
    const qms_json *role = qms_json_get(msg, "role"), *calls = qms_json_get(msg, "tool_calls");
    return role && role->type == QMS_JSTR && strcmp(role->str, "assistant") == 0 && calls && calls->type == QMS_JARR && calls->n > 0;
}

/* Render messages (a JSON array of message objects) and tools (NULL, or an array of tool
   objects) with the Qwen3-Coder template. Returns 1, or 0 with what is wrong in err. */
QMS_FN int qms_coder_render(qms_buf *b, const qms_json *messages, const qms_json *tools, int add_gen, char *err, size_t cap) {
    int i, first = 0, has_tools = tools && tools->type == QMS_JARR && tools->n > 0;
    qms_buf text = {0};
    int is_null;
    if (!messages || messages->type != QMS_JARR) return qms__rfail(err, cap, "messages must be an array");
    for (i = 0; i < messages->n; i++) {
        const qms_json *m = &messages->items[i], *role = qms_json_get(m, "role");
        if (m->type != QMS_JOBJ) return qms__rfail(err, cap, "messages[%d] must be an object, not %s", i, qms_json_type_name(m));
        if (!role || role->type != QMS_JSTR) return qms__rfail(err, cap, "messages[%d].role must be a string, not %s", i, qms_json_type_name(role));
    }
    if (messages->n > 0 && strcmp(qms_json_get(&messages->items[0], "role")->str, "system") == 0) {
        if (!qms_content_text(qms_json_get(&messages->items[0], "content"), &text, &is_null, "messages[0]", err, cap)) goto fail;
        qms_buf_puts(b, "<|im_start|>system\n");
        qms_buf_put(b, qms_buf_str(&text), text.len);
        first = 1;
    } else if (has_tools) {
        qms_buf_puts(b, "<|im_start|>system\nYou are Qwen, a helpful AI assistant that can interact with a computer to solve tasks.");
    }
    if (has_tools) {
        qms_buf_puts(b, "\n\nYou have access to the following functions:\n\n<tools>");
        for (i = 0; i < tools->n; i++)
            if (!qms__render_tool(b, &tools->items[i], i, err, cap)) goto fail;
        qms_buf_puts(b, "\n</tools>");
        qms_buf_puts(b, qms__tool_instructions);
    }
    if (first || has_tools) qms_buf_puts(b, "<|im_end|>\n");
    for (i = first; i < messages->n; i++) {
        const qms_json *m = &messages->items[i];
        const char *role = qms_json_get(m, "role")->str;
        char where[32];
        snprintf(where, sizeof(where), "messages[%d]", i);
        text.len = 0;
        if (qms__has_calls(m)) {
            if (!qms__render_calls(b, m, i, err, cap)) goto fail;
        } else if (strcmp(role, "tool") == 0) {
            const qms_json *c = qms_json_get(m, "content");
            if (i > first && strcmp(qms_json_get(&messages->items[i - 1], "role")->str, "tool") != 0)
                qms_buf_puts(b, "<|im_start|>user\n");
            qms_buf_puts(b, "<tool_response>\n");
            if (!qms_content_text(c, &text, &is_null, where, err, cap)) goto fail;
            /* {{ message.content }}: None prints as "None" */
            if (is_null && c) qms_buf_puts(b, "None");
            else qms_buf_put(b, qms_buf_str(&text), text.len);
            qms_buf_puts(b, "\n</tool_response>\n");
            if (i == messages->n - 1 || strcmp(qms_json_get(&messages->items[i + 1], "role")->str, "tool") != 0)
                qms_buf_puts(b, "<|im_end|>\n");
        } else {
            /* user, system, assistant and any other role: a ChatML block. A null content
               (which jinja2 cannot concatenate) is rendered as empty. */
            if (!qms_content_text(qms_json_get(m, "content"), &text, &is_null, where, err, cap)) goto fail;
            qms_buf_printf(b, "<|im_start|>%s\n", role);
            qms_buf_put(b, qms_buf_str(&text), text.len);
            qms_buf_puts(b, "<|im_end|>\n");
        }
    }
    if (add_gen) qms_buf_puts(b, "<|im_start|>assistant\n");
    qms_buf_free(&text);
    if (b->oom) return qms__rfail(err, cap, "out of memory");
    return 1;
fail:
    qms_buf_free(&text);
    return 0;
}

/* ------------------------------------------------------------------------------------- */
/*  Parsing tool calls out of the model's text                                          */
/* ------------------------------------------------------------------------------------- */

typedef struct qms_toolcall {
    char *name;
    char *arguments; /* a JSON object, compact */
} qms_toolcall;

typedef struct qms_toolstream {
    const qms_json *tools; /* the request's tools (for the parameter types); may be NULL */
    qms_buf text;          /* everything fed so far */
    size_t done;           /* bytes of text released as content or parsed as calls */
    int in_call;           /* text[done..] starts with "<tool_call>" */
    qms_toolcall *calls;
    int n_calls, cap_calls;
} qms_toolstream;

static const char *qms__memstr(const char *h, size_t n, const char *needle) {
    size_t k = strlen(needle), i;
    if (k > n) return NULL;
    for (i = 0; i + k <= n; i++)
        if (h[i] == needle[0] && memcmp(h + i, needle, k) == 0) return h + i;
    return NULL;
}

/* The JSON schema "type" of parameter pname of tool fname, or NULL. */
static const qms_json *qms__param_type(const qms_json *tools, const char *fname, const char *pname) {
    int i;
    if (!tools || tools->type != QMS_JARR) return NULL;
    for (i = 0; i < tools->n; i++) {
        const qms_json *t = &tools->items[i], *fn = qms_json_get(t, "function"), *name;
        if (fn) t = fn;
        name = qms_json_get(t, "name");
        if (name && name->type == QMS_JSTR && strcmp(name->str, fname) == 0) {
            const qms_json *pr = qms_json_get(qms_json_get(t, "parameters"), "properties");
            return qms_json_get(qms_json_get(pr, pname), "type");
        }
    }
    return NULL;
}

/* Whether a parsed JSON value is of schema type t ("integer", "number", ...). */
static int qms__type_fits(const qms_json *v, const char *t) {
    if (strcmp(t, "integer") == 0) return v->type == QMS_JNUM && v->is_int;
    if (strcmp(t, "number") == 0) return v->type == QMS_JNUM;
    if (strcmp(t, "boolean") == 0) return v->type == QMS_JTRUE || v->type == QMS_JFALSE;
    if (strcmp(t, "object") == 0) return v->type == QMS_JOBJ;
    if (strcmp(t, "array") == 0) return v->type == QMS_JARR;
    if (strcmp(t, "null") == 0) return v->type == QMS_JNULL;
    return 0;
}

/* Write the value of one parameter as JSON: parsed when the schema type (or one of a list of
   types) is integer/number/boolean/object/array/null and the text is valid JSON of that
   type; otherwise (string, no schema, not valid) as a JSON string. */
QMS_FN void qms_param_value(qms_buf *b, const qms_json *type, const char *v, size_t n) {
    const char *s = v;
    size_t sn = n;
    qms_json parsed;
    int i, nt = 0;
    const char *types[16];
    if (type && type->type == QMS_JSTR) types[nt++] = type->str;
    else if (type && type->type == QMS_JARR)
        for (i = 0; i < type->n && nt < 16; i++)
            if (type->items[i].type == QMS_JSTR) types[nt++] = type->items[i].str;
    qms_py_strip(&s, &sn);
    if (nt > 0 && sn > 0 && qms_json_parse(s, sn, &parsed, NULL, 0)) {
        for (i = 0; i < nt; i++) {
            if (qms__type_fits(&parsed, types[i])) {
                qms_json_write(b, &parsed);
                qms_json_free(&parsed);
                return;
            }
        }
        qms_json_free(&parsed);
    }
    /* booleans written in Python's spelling */
    for (i = 0; i < nt; i++) {
        if (strcmp(types[i], "boolean") == 0 && (sn == 4 || sn == 5)) {
            if (sn == 4 && (memcmp(s, "True", 4) == 0 || memcmp(s, "TRUE", 4) == 0)) { qms_buf_puts(b, "true"); return; }
            if (sn == 5 && (memcmp(s, "False", 5) == 0 || memcmp(s, "FALSE", 5) == 0)) { qms_buf_puts(b, "false"); return; }
        }
    }
    qms_buf_json_str(b, v, n);
}

/* Parse the inside of one <tool_call>...</tool_call> (body, n bytes): every
   <function=NAME>...</function> in it becomes a call. Returns the number of calls added. */
static int qms__parse_block(qms_toolstream *ts, const char *body, size_t n) {
    int added = 0;
    const char *end = body + n;
    for (;;) {
        const char *f = qms__memstr(body, (size_t)(end - body), "<function="), *gt, *fend, *p;
        qms_buf name = {0}, args = {0};
        const char *ns;
        size_t nn;
        if (!f) break;
        f += 10;
        gt = (const char *)memchr(f, '>', (size_t)(end - f));
        if (!gt) break;
        ns = f;
        nn = (size_t)(gt - f);
        qms_py_strip(&ns, &nn);
        if (nn == 0) { body = gt + 1; continue; }
        qms_buf_put(&name, ns, nn);
        fend = qms__memstr(gt + 1, (size_t)(end - gt - 1), "</function>");
        if (!fend) fend = end;
        qms_buf_putc(&args, '{');
        p = gt + 1;
        for (;;) {
            const char *ps = qms__memstr(p, (size_t)(fend - p), "<parameter="), *pg, *vs, *ve, *next;
            const char *pn;
            size_t pl;
            char *pname;
            if (!ps) break;
            ps += 11;
            pg = (const char *)memchr(ps, '>', (size_t)(fend - ps));
            if (!pg) break;
            pn = ps;
            pl = (size_t)(pg - ps);
            qms_py_strip(&pn, &pl);
            vs = pg + 1;
            ve = qms__memstr(vs, (size_t)(fend - vs), "</parameter>");
            next = qms__memstr(vs, (size_t)(fend - vs), "<parameter=");
            if (!ve || (next && next < ve)) { ve = next ? next : fend; next = ve; }
            else next = ve + 12;
            /* the format puts the value on its own lines */
            if (ve > vs && vs[0] == '\n') vs++;
            if (ve > vs && ve[-1] == '\n') ve--;
            pname = (char *)malloc(pl + 1);
            if (pname) {
                memcpy(pname, pn, pl);
                pname[pl] = 0;
                if (args.len > 1) qms_buf_putc(&args, ',');
                qms_buf_json_str(&args, pn, pl);
                qms_buf_putc(&args, ':');
                qms_param_value(&args, qms__param_type(ts->tools, qms_buf_str(&name), pname), vs, (size_t)(ve - vs));
                free(pname);
            }
            p = next;
        }
        qms_buf_putc(&args, '}');
        if (ts->n_calls == ts->cap_calls) {
            int nc = ts->cap_calls ? ts->cap_calls * 2 : 4;
            qms_toolcall *np = (qms_toolcall *)realloc(ts->calls, sizeof(qms_toolcall) * (size_t)nc);
            if (!np) { qms_buf_free(&name); qms_buf_free(&args); return added; }
            ts->calls = np;
            ts->cap_calls = nc;
        }
        if (name.oom || args.oom) { qms_buf_free(&name); qms_buf_free(&args); return added; }
        ts->calls[ts->n_calls].name = name.p;
        ts->calls[ts->n_calls].arguments = args.p;
        ts->n_calls++;
        added++;
        body = fend < end ? fend + 11 : end;
    }
    return added;
}

/* Feed n more bytes of the model's text (final = 1 with the last piece, possibly n = 0).
   Releasable content is appended to *content; new calls are appended to ts->calls (the
   return value is how many). */
QMS_FN int qms_toolstream_feed(qms_toolstream *ts, const char *s, size_t n, int final, qms_buf *content) {
    static const char open[] = "<tool_call>", close[] = "</tool_call>";
    int added = 0;
    qms_buf_put(&ts->text, s, n);
    for (;;) {
        const char *t = qms_buf_str(&ts->text);
        size_t len = ts->text.len;
        if (!ts->in_call) {
            const char *f;
            if (ts->n_calls > 0) /* whitespace between and after calls is not content */
                while (ts->done < len && (t[ts->done] == '\n' || t[ts->done] == ' ' || t[ts->done] == '\r' || t[ts->done] == '\t')) ts->done++;
            f = qms__memstr(t + ts->done, len - ts->done, open);
            if (f) {
                qms_buf_put(content, t + ts->done, (size_t)(f - t) - ts->done);
                ts->done = (size_t)(f - t);
                ts->in_call = 1;
                continue;
            }
            if (final) {
                qms_buf_put(content, t + ts->done, len - ts->done);
                ts->done = len;
            } else {
                /* hold back a tail that may be the start of "<tool_call>" */
                size_t hold = 0, k;
                for (k = sizeof(open) - 2; k >= 1; k--) {
                    if (len - ts->done >= k && memcmp(t + len - k, open, k) == 0) { hold = k; break; }
                }
                qms_buf_put(content, t + ts->done, len - ts->done - hold);
                ts->done = len - hold;
            }
            break;
        } else {
            size_t body = ts->done + sizeof(open) - 1;
            const char *c = qms__memstr(t + body, len - body, close);
            if (c) {
                added += qms__parse_block(ts, t + body, (size_t)(c - t) - body);
                ts->done = (size_t)(c - t) + sizeof(close) - 1;
                ts->in_call = 0;
                continue;
            }
            if (final) {
                /* cut off (length limit) or not closed: take the calls that can be read */
                int got = qms__parse_block(ts, t + body, len - body);
                if (!got) qms_buf_put(content, t + ts->done, len - ts->done);
                added += got;
                ts->done = len;
                ts->in_call = 0;
            }
            break;
        }
    }
    return added;
}

QMS_FN void qms_toolstream_free(qms_toolstream *ts) {
    int i;
    for (i = 0; i < ts->n_calls; i++) {
        free(ts->calls[i].name);
        free(ts->calls[i].arguments);
    }
    free(ts->calls);
    qms_buf_free(&ts->text);
    memset(ts, 0, sizeof(*ts));
}

#endif /* QWENMOE_SERVER_TOOLS_H */
