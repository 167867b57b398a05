/* qmtest.h - the smallest test harness: CHECK records a pass or a failure (with where and
   why), and qmtest_summary() prints "# N passed, N failed" and returns the exit status.
   The Makefile adds up those lines over every test program into the final line. */
#ifndef QMTEST_H
#define QMTEST_H
#include <stdio.h>

static int qmtest_pass_ = 0, qmtest_fail_ = 0;

#define CHECK(cond, ...)                                                               \
    do {                                                                               \
        if (cond) {                                                                    \
            qmtest_pass_++;                                                            \
        } else {                                                                       \
            qmtest_fail_++;                                                            \
            printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                    \
            printf(__VA_ARGS__);                                                       \
            printf("\n");                                                              \
        }                                                                              \
    } while (0)

static int qmtest_summary(const char *name) {
    printf("# %s: %d passed, %d failed\n", name, qmtest_pass_, qmtest_fail_);
    return qmtest_fail_ ? 1 : 0;
}
#endif
