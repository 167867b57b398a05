/* The header's implementation as a translation unit of its own, for the CUDA tests: the link
   recipes (tests/cuda/test_link.sh), the host test of the decoders and the GPU test link it
   next to qwenmoe_cuda.o, as a program that keeps its implementation in one file would. */
#define QWENMOE_IMPLEMENTATION
#include "qwenmoe.h"
