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
