/* link_main - prints which backend a program built with one of qwenmoe_cuda.cu's link recipes
   gets: "backend=NAME hook=yes|no desc=REASON". tests/cuda/test_link.sh builds it once per
   recipe and checks the line. With -DQM_CALL_REGISTER it calls the static-archive anchor
   qm_cuda_register(), which pulls qwenmoe_cuda.o out of an archive. */
#include "qwenmoe.h"
#include <stdio.h>
#include <string.h>

#ifdef QM_CALL_REGISTER
int qm_cuda_register(void); /* defined only in qwenmoe_cuda.cu */
#endif

int main(int argc, char **argv) {
    char desc[256];
    const char *name;
    if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        printf("usage: %s\nPrints the backend qm_backend_name() reports, whether qm_cuda_hook() is\n"
               "non-NULL, and the device or the reason; a test of the CUDA link recipes.\n", argv[0]);
        return 0;
    }
#ifdef QM_CALL_REGISTER
    if (qm_cuda_register() != 1) return 2;
#endif
    name = qm_backend_name(desc, sizeof(desc));
    printf("backend=%s hook=%s desc=%s\n", name, qm_cuda_hook() ? "yes" : "no", desc);
    return 0;
}
