/* fuzz_chat.c - libFuzzer harness: chat template detection and rendering.

   Input: byte 0 selects the family (0..2, or 3 = an invalid family value), byte 1 the flags
   (bit 0 add_generation_prompt, bit 1 enable_thinking, bit 2 also pass messages with a NULL
   role or content), then messages separated by NUL bytes; the first byte of each message
   picks its role (system, user, assistant, tool, or an unknown role), the rest is the
   content. The whole input after byte 0 is also given to qm_chat_detect as a template text
   (exactly that many bytes: it is not NUL-terminated).
   Checks: qm_chat_detect's results are in range and stable; qm_chat_render refuses bad
   arguments; the length with cap 0, a full buffer, a buffer without room for the NUL and a
   half buffer agree, the text is NUL-terminated when it fits and nothing is written past
   cap; ChatML renders exactly "<|im_start|>ROLE\nCONTENT<|im_end|>\n" per message; in every
   family the user, system and tool contents appear verbatim and the generation prompt ends
   the text. */
#define QWENMOE_IMPLEMENTATION
#define QWENMOE_STATIC
#define QM_LOG(level, msg) ((void)(level), (void)(msg))
#include "qwenmoe.h"

#define FZ_NAME "fuzz_chat"
#include "fuzz.h"


#define FZ_MAX_MSGS 200
#define FZ_CANARY 0x5A

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const k_roles[5] = {"system", "user", "assistant", "tool", "narrator"};

static int ends_with(const char *s, size_t n, const char *suffix) {
    size_t k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

static void check_detect(const uint8_t *p, size_t n) {
    int known = -1, known2 = -1;
    qm_chat_family f = qm_chat_detect((const char *)p, n, &known), f2;
    FZ_CHECK(f == QM_CHAT_CHATML || f == QM_CHAT_QWEN3 || f == QM_CHAT_QWEN3_CODER);
    FZ_CHECK(known == 0 || known == 1);
    if (!known) FZ_CHECK(f == QM_CHAT_CHATML);
    f2 = qm_chat_detect((const char *)p, n, NULL);
    FZ_CHECK(f2 == f);
    f2 = qm_chat_detect((const char *)p, n, &known2);
    FZ_CHECK(f2 == f && known2 == known);
    FZ_CHECK(qm_chat_detect(NULL, 0, &known2) == QM_CHAT_CHATML && known2 == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    qm_chat_message msgs[FZ_MAX_MSGS];
    char *text, *buf;
    int fam_sel, flags, n = 0, i, bad = 0, add_gen, think;
    qm_chat_family fam;
    size_t pos;
    int64_t len, len2;
    if (size < 2) return 0;
    check_detect(data + 1, size - 1);
    fam_sel = data[0] % 4;
    flags = data[1];
    add_gen = flags & 1;
    think = (flags >> 1) & 1;
    fam = fam_sel == 3 ? (qm_chat_family)(7 + (data[0] >> 2)) : (qm_chat_family)fam_sel;

    /* the messages: a NUL-terminated copy of the rest, cut at the NULs */
    text = (char *)malloc(size - 2 + 1);
    FZ_CHECK(text != NULL);
    memcpy(text, data + 2, size - 2);
    text[size - 2] = 0;
    for (pos = 0; pos <= size - 2 && n < FZ_MAX_MSGS;) {
        char *seg = text + pos;
        size_t sl = strlen(seg);
        int r = sl ? (unsigned char)seg[0] % 5 : 1;
        msgs[n].role = k_roles[r];
        msgs[n].content = sl ? seg + 1 : seg;
        if (r == 4) bad = 1;
        if ((flags & 4) && sl && (unsigned char)seg[0] >= 0xFE) { /* NULL role or content */
            if (seg[0] & 1) msgs[n].role = NULL;
            else msgs[n].content = NULL;
            bad = 1;
        }
        n++;
        pos += sl + 1;
    }
    if (fam_sel == 3) bad = 1;

    /* bad arguments */
    FZ_CHECK(qm_chat_render(QM_CHAT_CHATML, msgs, -1, 0, 0, NULL, 0) == QM_ERR_INVALID_ARG);
    FZ_CHECK(qm_chat_render(QM_CHAT_CHATML, NULL, 1, 0, 0, NULL, 0) == QM_ERR_INVALID_ARG);
    FZ_CHECK(qm_chat_render(QM_CHAT_CHATML, msgs, 0, 0, 0, NULL, 5) == QM_ERR_INVALID_ARG);

    len = qm_chat_render(fam, msgs, n, add_gen, think, NULL, 0);
    if (bad) {
        FZ_CHECK(len == QM_ERR_INVALID_ARG);
        free(text);
        return 0;
    }
    FZ_CHECK(len >= 0);
    buf = (char *)malloc((size_t)len + 2);
    FZ_CHECK(buf != NULL);
    /* full buffer */
    buf[len + 1] = FZ_CANARY;
    len2 = qm_chat_render(fam, msgs, n, add_gen, think, buf, (size_t)len + 1);
    FZ_CHECK(len2 == len && buf[len] == 0 && buf[len + 1] == FZ_CANARY);
    FZ_CHECK(strlen(buf) == (size_t)len); /* contents hold no NUL, so neither does the text */
    {
        /* no room for the NUL, and half a buffer: same length, a prefix, nothing past cap */
        char *part = (char *)malloc((size_t)len + 1);
        size_t caps[2];
        int c;
        FZ_CHECK(part != NULL);
        caps[0] = (size_t)len;
        caps[1] = (size_t)len / 2;
        for (c = 0; c < 2; c++) {
            part[caps[c]] = FZ_CANARY;
            FZ_CHECK(qm_chat_render(fam, msgs, n, add_gen, think, part, caps[c]) == len);
            FZ_CHECK(part[caps[c]] == FZ_CANARY && memcmp(part, buf, caps[c]) == 0);
        }
        free(part);
    }
    if (fam == QM_CHAT_CHATML) { /* exact: ChatML is a plain concatenation */
        size_t o = 0;
        for (i = 0; i < n; i++) {
            size_t rl = strlen(msgs[i].role), cl = strlen(msgs[i].content);
            FZ_CHECK(o + 12 + rl + 1 + cl + 11 <= (size_t)len);
            FZ_CHECK(memcmp(buf + o, "<|im_start|>", 12) == 0);
            o += 12;
            FZ_CHECK(memcmp(buf + o, msgs[i].role, rl) == 0 && buf[o + rl] == '\n');
            o += rl + 1;
            FZ_CHECK(memcmp(buf + o, msgs[i].content, cl) == 0);
            o += cl;
            FZ_CHECK(memcmp(buf + o, "<|im_end|>\n", 11) == 0);
            o += 11;
        }
        if (add_gen) {
            FZ_CHECK(strcmp(buf + o, "<|im_start|>assistant\n") == 0);
            o += 22;
        }
        FZ_CHECK(o == (size_t)len);
    } else {
        for (i = 0; i < n; i++)
            if (strcmp(msgs[i].role, "assistant") != 0) FZ_CHECK(strstr(buf, msgs[i].content) != NULL);
        if (add_gen) {
            if (fam == QM_CHAT_QWEN3 && !think)
                FZ_CHECK(ends_with(buf, (size_t)len, "<|im_start|>assistant\n<think>\n\n</think>\n\n"));
            else
                FZ_CHECK(ends_with(buf, (size_t)len, "<|im_start|>assistant\n"));
        }
    }
    /* the same again: no hidden state */
    {
        char *again = (char *)malloc((size_t)len + 1);
        FZ_CHECK(again != NULL);
        FZ_CHECK(qm_chat_render(fam, msgs, n, add_gen, think, again, (size_t)len + 1) == len);
        FZ_CHECK(memcmp(again, buf, (size_t)len + 1) == 0);
        free(again);
    }
    free(buf);
    free(text);
    return 0;
}
