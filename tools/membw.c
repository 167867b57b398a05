/* qwenmoe-membw - how fast this machine reads memory, the ceiling of decode speed.

   Decode reads every active weight once per token, so tokens/s <= read GB/s / bytes per token
   (qwenmoe-bench prints the bytes per token). This reads a buffer much larger than the caches
   with T threads, each summing its own slice, and reports the best of R passes.

   Build:  make build/qwenmoe-membw
   Usage:  qwenmoe-membw [-t THREADS] [-s MIB] [-r REPS] */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct job {
    const uint64_t *p;
    size_t n;
    uint64_t sum;
} job;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* eight independent sums, so that the loop is bound by loads, not by one add chain */
static void *reader(void *arg) {
    job *j = (job *)arg;
    uint64_t s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t i, k;
    for (i = 0; i + 8 <= j->n; i += 8)
        for (k = 0; k < 8; k++) s[k] += j->p[i + k];
    for (k = 0; k < 8; k++) j->sum += s[k];
    return NULL;
}

static void usage(FILE *f, const char *prog) {
    fprintf(f,
            "usage: %s [-t THREADS] [-s MIB] [-r REPS]\n"
            "Reads a buffer of MIB MiB (default 2048) with THREADS threads (default 1), REPS times\n"
            "(default 5), and prints the best read bandwidth in GB/s (1e9 bytes/s): the ceiling of\n"
            "a decode that reads every active weight once per token.\n",
            prog);
}

int main(int argc, char **argv) {
    int threads = 1, reps = 5, r, t, i;
    long mib = 2048;
    size_t n, per;
    uint64_t *buf, total = 0;
    double best = 0.0;
    pthread_t th[64];
    job jobs[64];
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout, argv[0]); return 0; }
        if (i + 1 >= argc) { fprintf(stderr, "%s: %s needs a value\n", argv[0], a); usage(stderr, argv[0]); return 2; }
        if (!strcmp(a, "-t")) threads = atoi(argv[++i]);
        else if (!strcmp(a, "-s")) mib = atol(argv[++i]);
        else if (!strcmp(a, "-r")) reps = atoi(argv[++i]);
        else { fprintf(stderr, "%s: unknown option %s\n", argv[0], a); usage(stderr, argv[0]); return 2; }
    }
    if (threads < 1 || threads > 64 || mib < 16 || mib > 65536 || reps < 1 || reps > 1000) {
        fprintf(stderr, "%s: expected 1 <= THREADS <= 64, 16 <= MIB <= 65536, 1 <= REPS <= 1000\n", argv[0]);
        return 2;
    }
    n = (size_t)mib * 1024 * 1024 / sizeof(uint64_t);
    buf = (uint64_t *)malloc(n * sizeof(uint64_t));
    if (!buf) { fprintf(stderr, "%s: cannot allocate %ld MiB\n", argv[0], mib); return 1; }
    for (i = 0; (size_t)i < n; i++) buf[i] = (uint64_t)i * 2654435761u; /* touch every page */
    per = n / (size_t)threads / 8 * 8;
    for (r = 0; r < reps; r++) {
        double t0 = now(), dt, gbs;
        for (t = 0; t < threads; t++) {
            jobs[t].p = buf + (size_t)t * per;
            jobs[t].n = per;
            jobs[t].sum = 0;
            if (pthread_create(&th[t], NULL, reader, &jobs[t]) != 0) {
                fprintf(stderr, "%s: cannot start thread %d\n", argv[0], t);
                return 1;
            }
        }
        for (t = 0; t < threads; t++) {
            pthread_join(th[t], NULL);
            total += jobs[t].sum;
        }
        dt = now() - t0;
        gbs = (double)(per * (size_t)threads * sizeof(uint64_t)) / dt / 1e9;
        fprintf(stderr, "pass %d: %.2f GB/s\n", r + 1, gbs);
        if (gbs > best) best = gbs;
    }
    printf("read bandwidth, %d thread%s, %ld MiB: best %.2f GB/s (checksum %llu)\n", threads, threads == 1 ? "" : "s",
           mib, best, (unsigned long long)(total & 0xffff));
    free(buf);
    return 0;
}
