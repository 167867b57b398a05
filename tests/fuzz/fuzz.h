/* tests/fuzz/fuzz.h - what every harness shares: the standard headers and FZ_CHECK, which
   aborts (so that libFuzzer records the input) with the harness name, file, line and the
   condition. A harness defines FZ_NAME before including it. */
#ifndef QM_FUZZ_H
#define QM_FUZZ_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FZ_CHECK(cond)                                                                        \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "%s: check failed at %s:%d: %s\n", FZ_NAME, __FILE__, __LINE__, #cond); \
            abort();                                                                          \
        }                                                                                     \
    } while (0)
#endif
