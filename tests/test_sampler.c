/* test_sampler.c - qm_sampler: greedy, truncation (top-k, top-p, min-p), temperature, the
   drawn frequencies against probabilities computed here independently, seed determinism,
   extreme logits, and the time a call takes on a 151936-token vocabulary. */
#define QWENMOE_IMPLEMENTATION
#include "qwenmoe.h"
#include "tests/qmtest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <float.h>
#include <time.h>

#define LN2 0.69314718055994530942
#define NV_BIG 151936

/* ---- helpers independent of the library ------------------------------------------- */

static uint64_t g_rng = 12345;
static uint64_t rnd(void) { /* splitmix64 */
    uint64_t z = (g_rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static double rnd01(void) { return (double)(rnd() >> 11) / 9007199254740992.0; }
/* roughly normal (sum of 4 uniforms), mean 0, sd ~ scale */
static float rnd_logit(float scale) {
    double s = rnd01() + rnd01() + rnd01() + rnd01() - 2.0;
    return (float)(s * 1.732 * scale);
}
static double pow2i(int k) {
    double r = 1.0;
    while (k > 0) { r *= 2.0; k--; }
    while (k < 0) { r *= 0.5; k++; }
    return r;
}

static qm_sampler *make(float temp, int top_k, float top_p, float min_p, uint64_t seed, int n_vocab) {
    qm_sampler_params p;
    qm_sampler *s = NULL;
    qm_result r;
    memset(&p, 0, sizeof(p));
    p.temperature = temp;
    p.top_k = top_k;
    p.top_p = top_p;
    p.min_p = min_p;
    p.seed = seed;
    r = qm_sampler_create(&p, n_vocab, &s);
    CHECK(r == QM_OK && s != NULL, "qm_sampler_create(T=%g k=%d p=%g min_p=%g) = %d", temp, top_k, top_p, min_p, (int)r);
    return s;
}

static int naive_argmax(const float *l, int n) {
    int i, b = -1;
    for (i = 0; i < n; i++)
        if (l[i] == l[i] && (b < 0 || l[i] > l[b])) b = i;
    return b < 0 ? 0 : b;
}

/* ---- the small distribution: logits k*ln2, so that exp() of them are powers of two ---- */

#define NV 10
static const int K[NV] = {1, 4, -3, 5, 4, 0, 2, -8, 3, -1};
/* order by logit (desc), ties by id: 3(5) 1(4) 4(4) 8(3) 6(2) 0(1) 5(0) 9(-1) 2(-3) 7(-8) */

/* Reference: probabilities after top-k, top-p (over what top-k kept), min-p, temperature
   1/tinv (an integer), all done with sorting and exact powers of two. */
static void reference(int top_k, double top_p, double min_p, int tinv, double *prob) {
    int order[NV], i, j, m, kmax;
    double z = 0, cum = 0, total = 0;
    for (i = 0; i < NV; i++) order[i] = i;
    for (i = 1; i < NV; i++) { /* insertion sort: k desc, id asc */
        int x = order[i];
        for (j = i; j > 0 && (K[order[j - 1]] < K[x] || (K[order[j - 1]] == K[x] && order[j - 1] > x)); j--)
            order[j] = order[j - 1];
        order[j] = x;
    }
    m = NV;
    if (top_k > 0 && top_k < m) m = top_k;
    kmax = K[order[0]];
    if (top_p > 0 && top_p < 1) {
        for (i = 0; i < m; i++) z += pow2i(K[order[i]]);
        for (i = 0; i < m; i++) {
            double gap;
            cum += pow2i(K[order[i]]) / z;
            gap = cum - top_p;
            CHECK(gap > 1e-4 || gap < -1e-4, "test set-up: top-p %g too close to a cumulative sum", top_p);
            if (cum >= top_p) { m = i + 1; break; }
        }
    }
    if (min_p > 0) {
        for (i = 0; i < m; i++)
            if (pow2i(K[order[i]]) < min_p * pow2i(kmax)) { m = i; break; }
    }
    for (i = 0; i < NV; i++) prob[i] = 0;
    for (i = 0; i < m; i++) total += pow2i(K[order[i]] * tinv);
    for (i = 0; i < m; i++) prob[order[i]] = pow2i(K[order[i]] * tinv) / total;
}

static void test_distribution(const char *what, int top_k, float top_p, float min_p, int tinv, int n_expected) {
    enum { DRAWS = 200000 };
    float logits[NV];
    double prob[NV];
    long count[NV];
    int i, n_kept = 0, bad = 0;
    qm_sampler *s;
    for (i = 0; i < NV; i++) logits[i] = (float)(K[i] * LN2);
    reference(top_k, top_p, min_p, tinv, prob);
    for (i = 0; i < NV; i++) n_kept += prob[i] > 0;
    CHECK(n_kept == n_expected, "%s: the reference keeps %d tokens, expected %d", what, n_kept, n_expected);
    s = make(1.0f / (float)tinv, top_k, top_p, min_p, 1000 + (uint64_t)n_expected * 7 + (uint64_t)tinv, NV);
    if (!s) return;
    memset(count, 0, sizeof(count));
    for (i = 0; i < DRAWS; i++) {
        int32_t t = qm_sampler_sample(s, logits);
        if (t < 0 || t >= NV) { bad++; continue; }
        count[t]++;
    }
    CHECK(bad == 0, "%s: %d draws out of range", what, bad);
    for (i = 0; i < NV; i++) {
        double f = (double)count[i] / DRAWS, d = f - prob[i];
        if (prob[i] == 0) {
            CHECK(count[i] == 0, "%s: token %d is outside the truncated set but was drawn %ld times", what, i, count[i]);
        } else {
            /* within 5 standard deviations of the binomial */
            CHECK(d * d <= 25.0 * prob[i] * (1 - prob[i]) / DRAWS, "%s: token %d drawn %.5f, expected %.5f", what, i, f,
                  prob[i]);
        }
    }
    qm_sampler_free(s);
}

static void test_small_distributions(void) {
    test_distribution("T=1", 0, 0, 0, 1, 10);
    test_distribution("T=1 top_k=3", 3, 0, 0, 1, 3);
    test_distribution("T=0.5 top_k=2 (tie at the cut: lower id)", 2, 0, 0, 2, 2);
    test_distribution("T=1 top_p=0.8", 0, 0.8f, 0, 1, 3);
    test_distribution("T=1 top_p=0.9", 0, 0.9f, 0, 1, 4);
    test_distribution("T=1 top_k=4 top_p=0.85 (renormalised over top-k)", 4, 0.85f, 0, 1, 3);
    test_distribution("T=1 min_p=0.1", 0, 0, 0.1f, 1, 5);
    test_distribution("T=0.25 top_p=0.95 min_p=0.3", 0, 0.95f, 0.3f, 4, 3);
    test_distribution("T=0.5 top_k=5 top_p=0.7 min_p=0.2", 5, 0.7f, 0.2f, 2, 3);
    test_distribution("T=0.5 top_k=6 top_p=0.98 min_p=0.04", 6, 0.98f, 0.04f, 2, 6);
    test_distribution("T=1 top_p=0.3", 0, 0.3f, 0, 1, 1);
    test_distribution("T=1 min_p=1", 0, 0, 1.0f, 1, 1);
    test_distribution("T=1 top_k=1", 1, 0, 0, 1, 1);
    test_distribution("T=1 top_k=10 top_p=1 (both off)", 10, 1.0f, 0, 1, 10);
}

/* ---- greedy --------------------------------------------------------------------------- */

static void test_greedy(void) {
    qm_sampler *s;
    qm_sampler_params zero;
    float l[8] = {1, 3, 2, 3, -1, 3, 0, 2};
    float *big;
    int i, rep;
    memset(&zero, 0, sizeof(zero));
    CHECK(qm_sampler_create(&zero, 8, &s) == QM_OK, "zero params");
    CHECK(qm_sampler_sample(s, l) == 1, "argmax with ties: lowest id");
    l[1] = 2.9999998f;
    CHECK(qm_sampler_sample(s, l) == 3, "argmax: 3 > 2.9999998");
    l[0] = 0.0f / 0.0f;
    l[7] = 1.0f / 0.0f;
    CHECK(qm_sampler_sample(s, l) == 7, "argmax: +inf wins, NaN skipped");
    for (i = 0; i < 8; i++) l[i] = -1.0f / 0.0f;
    CHECK(qm_sampler_sample(s, l) == 0, "argmax of all -inf: id 0");
    for (i = 0; i < 8; i++) l[i] = 0.0f / 0.0f;
    l[6] = -5;
    CHECK(qm_sampler_sample(s, l) == 6, "argmax: the only non-NaN");
    qm_sampler_free(s);
    CHECK(qm_sampler_create(NULL, 8, &s) == QM_OK, "NULL params: greedy");
    l[6] = 1e30f;
    CHECK(qm_sampler_sample(s, l) == 6, "NULL params: argmax");
    qm_sampler_free(s);
    s = make(-1.0f, 5, 0.5f, 0.5f, 1, 8);
    l[2] = 1e30f;
    CHECK(qm_sampler_sample(s, l) == 2, "negative temperature: greedy (ties: lowest id)");
    qm_sampler_free(s);

    big = (float *)malloc(sizeof(float) * NV_BIG);
    if (!big) { CHECK(0, "out of memory"); return; }
    s = make(0, 0, 0, 0, 0, NV_BIG);
    for (rep = 0; rep < 8; rep++) {
        for (i = 0; i < NV_BIG; i++) big[i] = (float)(int)(rnd_logit(4.0f) * 4) / 4.0f; /* many ties */
        CHECK(qm_sampler_sample(s, big) == naive_argmax(big, NV_BIG), "big argmax, rep %d", rep);
    }
    qm_sampler_free(s);
    free(big);
}

/* ---- top_k = 1 is greedy at any temperature ------------------------------------------- */

static void test_top_k_1(void) {
    float *l = (float *)malloc(sizeof(float) * NV_BIG);
    const float temps[5] = {0.01f, 0.7f, 1.0f, 10.0f, 1e6f};
    int t, rep, i, ok = 1;
    if (!l) { CHECK(0, "out of memory"); return; }
    for (t = 0; t < 5; t++) {
        qm_sampler *s = make(temps[t], 1, 0.9f, 0.05f, 77 + (uint64_t)t, NV_BIG);
        if (!s) continue;
        for (rep = 0; rep < 4; rep++) {
            for (i = 0; i < NV_BIG; i++) l[i] = rnd_logit(3.0f);
            if (rep % 2) { /* a tie at the top, with the lower id later in memory order */
                int a = (int)(rnd() % NV_BIG), b = (int)(rnd() % NV_BIG);
                l[a] = l[b] = 100.0f;
            }
            if (qm_sampler_sample(s, l) != naive_argmax(l, NV_BIG)) ok = 0;
        }
        CHECK(ok, "top_k=1 at T=%g is not the argmax", temps[t]);
        qm_sampler_free(s);
    }
    free(l);
}

/* ---- the full vocabulary: draws stay inside the truncated set ------------------------- */

typedef struct vi { float v; int i; } vi;
static int cmp_vi(const void *a, const void *b) {
    const vi *x = (const vi *)a, *y = (const vi *)b;
    if (x->v != y->v) return x->v > y->v ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

static void test_big_truncation(void) {
    float *l = (float *)malloc(sizeof(float) * NV_BIG);
    vi *srt = (vi *)malloc(sizeof(vi) * NV_BIG);
    unsigned char *in = (unsigned char *)malloc(NV_BIG);
    int i, d, outside, m;
    double z, cum;
    qm_sampler *s;
    if (!l || !srt || !in) { CHECK(0, "out of memory"); free(l); free(srt); free(in); return; }
    for (i = 0; i < NV_BIG; i++) {
        l[i] = rnd_logit(2.5f);
        srt[i].v = l[i];
        srt[i].i = i;
    }
    for (i = 0; i < 30; i++) l[(int)(rnd() % NV_BIG)] = 9.0f + (float)(i % 7); /* a few strong ones */
    for (i = 0; i < NV_BIG; i++) srt[i].v = l[i];
    qsort(srt, NV_BIG, sizeof(vi), cmp_vi);

    /* top-k = 40 */
    memset(in, 0, NV_BIG);
    for (i = 0; i < 40; i++) in[srt[i].i] = 1;
    s = make(1.5f, 40, 0, 0, 5, NV_BIG);
    outside = 0;
    for (d = 0; d < 3000; d++) outside += !in[qm_sampler_sample(s, l)];
    CHECK(outside == 0, "top_k=40: %d draws outside the top 40", outside);
    qm_sampler_free(s);

    /* top-p = 0.9 over the whole vocabulary */
    z = 0;
    for (i = 0; i < NV_BIG; i++) z += qm__exp((double)srt[i].v - srt[0].v);
    cum = 0;
    memset(in, 0, NV_BIG);
    for (m = 0; m < NV_BIG; m++) {
        cum += qm__exp((double)srt[m].v - srt[0].v) / z;
        in[srt[m].i] = 1;
        if (cum >= 0.9) break;
    }
    CHECK(cum - 0.9 > 1e-7 && m > 30, "test set-up: nucleus of %d tokens, cum %.9f", m + 1, cum);
    s = make(1.0f, 0, 0.9f, 0, 6, NV_BIG);
    outside = 0;
    for (d = 0; d < 200; d++) outside += !in[qm_sampler_sample(s, l)];
    CHECK(outside == 0, "top_p=0.9: %d draws outside the nucleus of %d tokens", outside, m + 1);
    qm_sampler_free(s);

    /* min-p = 0.01: p >= 0.01 p_max, i.e. logit >= max + ln(0.01) */
    memset(in, 0, NV_BIG);
    for (i = 0; i < NV_BIG; i++) in[i] = (double)l[i] >= (double)srt[0].v - 4.605170186 + 1e-5;
    s = make(3.0f, 0, 0, 0.01f, 7, NV_BIG);
    outside = 0;
    for (d = 0; d < 600; d++) outside += !in[qm_sampler_sample(s, l)];
    CHECK(outside == 0, "min_p=0.01: %d draws outside", outside);
    qm_sampler_free(s);

    /* ascending logits (every one enters the top-k heap): the top 1000 are the last ids */
    for (i = 0; i < NV_BIG; i++) l[i] = (float)i * 1e-4f;
    s = make(1e-3f, 1000, 0, 0, 8, NV_BIG);
    outside = 0;
    for (d = 0; d < 200; d++) outside += qm_sampler_sample(s, l) < NV_BIG - 1000;
    CHECK(outside == 0, "ascending, top_k=1000: %d draws outside", outside);
    qm_sampler_free(s);

    /* all equal: ties go to the lower ids, for top-k and for top-p (half the mass: the
       first half of the ids) */
    for (i = 0; i < NV_BIG; i++) l[i] = 0.25f;
    s = make(1.0f, 100, 0, 0, 9, NV_BIG);
    outside = 0;
    for (d = 0; d < 500; d++) outside += qm_sampler_sample(s, l) >= 100;
    CHECK(outside == 0, "all equal, top_k=100: %d draws of ids >= 100", outside);
    qm_sampler_free(s);
    s = make(1.0f, 0, 0.5f, 0, 10, NV_BIG);
    outside = 0;
    m = 0; /* how many draws land in the second quarter: about half of them */
    for (d = 0; d < 200; d++) {
        int32_t x = qm_sampler_sample(s, l);
        outside += x >= NV_BIG / 2 + 1;
        m += x >= NV_BIG / 4;
    }
    CHECK(outside == 0 && m > 50 && m < 150, "all equal, top_p=0.5: %d draws of the upper half, %d of the 2nd quarter",
          outside, m);
    qm_sampler_free(s);
    free(l);
    free(srt);
    free(in);
}

/* A distribution on the full vocabulary: 6 tokens scattered over it and the rest far below,
   top-k = 8 (partial selection over 151936 entries). */
static void test_big_distribution(void) {
    enum { DRAWS = 12000 };
    static const int ids[6] = {151935, 7, 70000, 0, 123456, 99};
    static const int ks[6] = {3, 2, 2, 1, 0, -1}; /* weights 8 4 4 2 1 .5 = 19.5 */
    float *l = (float *)malloc(sizeof(float) * NV_BIG);
    long cnt[6] = {0, 0, 0, 0, 0, 0};
    int i, d, other = 0;
    qm_sampler *s;
    if (!l) { CHECK(0, "out of memory"); return; }
    for (i = 0; i < NV_BIG; i++) l[i] = -60.0f + rnd_logit(1.0f);
    for (i = 0; i < 6; i++) l[ids[i]] = (float)(ks[i] * LN2);
    s = make(1.0f, 8, 0, 0, 99, NV_BIG);
    for (d = 0; d < DRAWS; d++) {
        int32_t t = qm_sampler_sample(s, l);
        for (i = 0; i < 6 && ids[i] != t; i++) {}
        if (i < 6) cnt[i]++;
        else other++;
    }
    CHECK(other == 0, "big top_k=8: %d draws of the far tokens", other);
    for (i = 0; i < 6; i++) {
        double p = pow2i(ks[i]) / 19.5, f = (double)cnt[i] / DRAWS;
        CHECK((f - p) * (f - p) <= 25.0 * p * (1 - p) / DRAWS, "big: token %d drawn %.4f, expected %.4f", ids[i], f, p);
    }
    qm_sampler_free(s);
    free(l);
}

/* ---- determinism ----------------------------------------------------------------------- */

static void test_seed(void) {
    float l[NV];
    qm_sampler *a = make(1.0f, 0, 0.95f, 0, 42, NV), *b = make(1.0f, 0, 0.95f, 0, 42, NV);
    qm_sampler *c = make(1.0f, 0, 0.95f, 0, 43, NV);
    int i, same_ab = 1, same_ac = 1;
    float before[NV];
    for (i = 0; i < NV; i++) l[i] = (float)(K[i] * LN2) * 0.5f;
    memcpy(before, l, sizeof(l));
    if (!a || !b || !c) return;
    for (i = 0; i < 2000; i++) {
        int32_t x = qm_sampler_sample(a, l), y = qm_sampler_sample(b, l), z = qm_sampler_sample(c, l);
        if (x != y) same_ab = 0;
        if (x != z) same_ac = 0;
    }
    CHECK(same_ab, "same seed, different tokens");
    CHECK(!same_ac, "seeds 42 and 43 gave the same 2000 tokens");
    CHECK(memcmp(before, l, sizeof(l)) == 0, "the logits were modified");
    qm_sampler_free(a);
    qm_sampler_free(b);
    qm_sampler_free(c);
    /* seed 0 is a seed like any other */
    a = make(1.0f, 0, 0, 0, 0, NV);
    b = make(1.0f, 0, 0, 0, 0, NV);
    same_ab = 1;
    for (i = 0; i < 500; i++)
        if (qm_sampler_sample(a, l) != qm_sampler_sample(b, l)) same_ab = 0;
    CHECK(same_ab, "seed 0 not deterministic");
    qm_sampler_free(a);
    qm_sampler_free(b);
}

/* ---- extreme logits --------------------------------------------------------------------- */

static void test_extremes(void) {
    enum { N = 1000 };
    float l[N];
    const float inf = 1.0f / 0.0f, nan = 0.0f / 0.0f;
    const float temps[4] = {1e-30f, 0.01f, 1.0f, 1e20f};
    int t, i, d, cfg;
    for (cfg = 0; cfg < 4; cfg++)
        for (t = 0; t < 4; t++) {
            /* cfg: 0 none, 1 top-p, 2 min-p, 3 top-k + top-p + min-p */
            float tp = (cfg == 1 || cfg == 3) ? 0.9f : 0, mp = (cfg == 2 || cfg == 3) ? 0.05f : 0;
            int tk = cfg == 3 ? 50 : 0;
            qm_sampler *s = make(temps[t], tk, tp, mp, (uint64_t)(cfg * 10 + t), N);
            int ok1 = 1, ok2 = 1, ok3 = 1, ok4 = 1, ok5 = 1, ok6 = 1, seen5 = 0, seen9 = 0;
            if (!s) continue;
            /* one huge logit among huge negative ones */
            for (i = 0; i < N; i++) l[i] = -1e30f;
            l[777] = 1e30f;
            for (d = 0; d < 200; d++) ok1 &= qm_sampler_sample(s, l) == 777;
            /* two equal huge logits: both drawn, nothing else */
            l[777] = -1e30f;
            l[5] = l[9] = 1e30f;
            for (d = 0; d < 400; d++) {
                int32_t x = qm_sampler_sample(s, l);
                if (x == 5) seen5++;
                else if (x == 9) seen9++;
                else ok2 = 0;
            }
            /* -inf, NaN and +-FLT_MAX */
            for (i = 0; i < N; i++) l[i] = (i % 3 == 0) ? -inf : (i % 3 == 1) ? nan : -FLT_MAX;
            l[500] = FLT_MAX;
            for (d = 0; d < 100; d++) ok3 &= qm_sampler_sample(s, l) == 500;
            /* +inf takes it all */
            l[500] = 3.0f;
            l[123] = inf;
            for (d = 0; d < 100; d++) ok4 &= qm_sampler_sample(s, l) == 123;
            /* all -inf: any id, but a valid one; all NaN: 0 */
            for (i = 0; i < N; i++) l[i] = -inf;
            for (d = 0; d < 100; d++) {
                int32_t x = qm_sampler_sample(s, l);
                ok5 &= x >= 0 && x < N;
            }
            for (i = 0; i < N; i++) l[i] = nan;
            ok6 = qm_sampler_sample(s, l) == 0;
            CHECK(ok1, "cfg %d T=%g: 1e30 among -1e30 not always drawn", cfg, temps[t]);
            CHECK(ok2 && seen5 > 100 && seen9 > 100, "cfg %d T=%g: two equal maxima drawn %d/%d (other: %d)", cfg, temps[t],
                  seen5, seen9, !ok2);
            CHECK(ok3, "cfg %d T=%g: FLT_MAX among -inf/NaN/-FLT_MAX not always drawn", cfg, temps[t]);
            CHECK(ok4, "cfg %d T=%g: +inf not always drawn", cfg, temps[t]);
            CHECK(ok5, "cfg %d T=%g: all -inf gave an id out of range", cfg, temps[t]);
            CHECK(ok6, "cfg %d T=%g: all NaN did not give 0", cfg, temps[t]);
            qm_sampler_free(s);
        }
    /* NaN and -inf are never drawn, even at a high temperature with no truncation */
    {
        qm_sampler *s = make(1e30f, 0, 0, 0, 3, N);
        int bad = 0;
        for (i = 0; i < N; i++) l[i] = (i % 2) ? nan : (i % 4 == 0 ? -inf : (float)(i % 17));
        for (d = 0; d < 5000; d++) {
            int32_t x = qm_sampler_sample(s, l);
            if (x < 0 || x >= N || x % 2 || x % 4 == 0) bad++;
        }
        CHECK(bad == 0, "T=1e30: %d draws of NaN/-inf tokens", bad);
        qm_sampler_free(s);
    }
}

/* ---- arguments ---------------------------------------------------------------------------- */

static void test_args(void) {
    qm_sampler_params p;
    qm_sampler *s = (qm_sampler *)&p;
    float l[4] = {0, 1, 2, 3};
    memset(&p, 0, sizeof(p));
    CHECK(qm_sampler_create(&p, 10, NULL) == QM_ERR_INVALID_ARG, "out NULL");
    CHECK(qm_sampler_create(&p, 0, &s) == QM_ERR_INVALID_ARG && s == NULL, "n_vocab 0");
    CHECK(qm_sampler_create(&p, -5, &s) == QM_ERR_INVALID_ARG, "n_vocab < 0");
    p.top_k = -1;
    CHECK(qm_sampler_create(&p, 10, &s) == QM_ERR_INVALID_ARG, "top_k < 0");
    p.top_k = 0;
    p.top_p = -0.1f;
    CHECK(qm_sampler_create(&p, 10, &s) == QM_ERR_INVALID_ARG, "top_p < 0");
    p.top_p = 0.0f / 0.0f;
    CHECK(qm_sampler_create(&p, 10, &s) == QM_ERR_INVALID_ARG, "top_p NaN");
    p.top_p = 0;
    p.min_p = 1.5f;
    CHECK(qm_sampler_create(&p, 10, &s) == QM_ERR_INVALID_ARG, "min_p > 1");
    p.min_p = -0.5f;
    CHECK(qm_sampler_create(&p, 10, &s) == QM_ERR_INVALID_ARG, "min_p < 0");
    p.min_p = 0;
    p.temperature = 0.0f / 0.0f;
    CHECK(qm_sampler_create(&p, 10, &s) == QM_ERR_INVALID_ARG, "temperature NaN");
    p.temperature = 0.8f;
    p.top_p = 5.0f; /* >= 1: off */
    p.top_k = 1000; /* more than the vocabulary: off */
    CHECK(qm_sampler_create(&p, 4, &s) == QM_OK, "top_p 5, top_k 1000 are valid (off)");
    CHECK(qm_sampler_sample(s, NULL) < 0, "logits NULL");
    CHECK(qm_sampler_sample(NULL, l) < 0, "sampler NULL");
    qm_sampler_free(s);
    qm_sampler_free(NULL);
}

/* ---- timing (printed, not asserted) ------------------------------------------------------ */

static void bench(void) {
    float *l = (float *)malloc(sizeof(float) * NV_BIG);
    struct { const char *name; float t; int k; float p, mp; } cf[5] = {
        {"greedy", 0, 0, 0, 0},
        {"T=0.6 top_k=20 top_p=0.95 (Qwen3 thinking)", 0.6f, 20, 0.95f, 0},
        {"T=0.8 top_p=0.95", 0.8f, 0, 0.95f, 0},
        {"T=0.8 min_p=0.05", 0.8f, 0, 0, 0.05f},
        {"T=1 (no truncation)", 1.0f, 0, 0, 0},
    };
    int c, i, reps = 50;
    volatile int32_t sink = 0;
    if (!l) return;
    for (i = 0; i < NV_BIG; i++) l[i] = rnd_logit(3.0f);
    for (c = 0; c < 5; c++) {
        qm_sampler *s = make(cf[c].t, cf[c].k, cf[c].p, cf[c].mp, 1, NV_BIG);
        clock_t t0 = clock();
        for (i = 0; i < reps; i++) sink += qm_sampler_sample(s, l);
        printf("  sample, %d-token vocab, %-44s %.3f ms\n", NV_BIG, cf[c].name,
               1000.0 * (double)(clock() - t0) / CLOCKS_PER_SEC / reps);
        qm_sampler_free(s);
    }
    (void)sink;
    free(l);
}

int main(void) {
    test_args();
    test_greedy();
    test_top_k_1();
    test_small_distributions();
    test_big_truncation();
    test_big_distribution();
    test_seed();
    test_extremes();
    bench();
    return qmtest_summary("sampler");
}
