# CUDA build (optional): the expert dispatch of qwenmoe_cuda.cu, linked into CUDA variants of
# the programs, and its tests.
#   make cuda        build/qwenmoe_cuda.o, build/qwenmoe-generate-cuda, build/qwenmoe-chat-cuda,
#                    build/qwenmoe-bench-cuda
#   make test-cuda   link recipes, host test of the block decoders, -cuda programs vs the CPU
#                    ones, the whole CUDA file on the host SIMT emulation against the CPU (mk/simt.mk),
#                    and the GPU test (skips without a GPU); ends with "# cuda: N passed, M failed"
# Needs nvcc with cuBLAS (CUDA 12 or 13); builds and tests without a GPU or driver. The programs
# find libcudart/libcublas through an rpath to $(CUDA_HOME)/lib64 (or set LD_LIBRARY_PATH).
NVCC      ?= /usr/local/cuda/bin/nvcc
CUDA_HOME ?= /usr/local/cuda
NVCCFLAGS ?= -O2
CUDA_GENCODE = -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
               -gencode arch=compute_90,code=compute_90
# warnings are errors, as for the C code; make cuda CUDA_WERROR= to relax with another nvcc
CUDA_WERROR ?= -Xcompiler -Werror -Werror all-warnings
CUDA_NVCC  = $(NVCC) -std=c++17 $(NVCCFLAGS) -Xcompiler -Wall,-Wextra $(CUDA_WERROR) -I.
CUDA_LIBS  = -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcudart -lcublas -lstdc++
CUDA_NVLIBS = -L$(CUDA_HOME)/lib64 -Xlinker -rpath,$(CUDA_HOME)/lib64 -lcublas
CB         = $(B)/cuda
CUDA_PROGS = $(B)/qwenmoe-generate-cuda $(B)/qwenmoe-chat-cuda $(B)/qwenmoe-bench-cuda

cuda: $(B)/qwenmoe_cuda.o $(CUDA_PROGS)

$(CB):
	mkdir -p $(CB)

$(B)/qwenmoe_cuda.o: qwenmoe_cuda.cu $(HDR) | $(B)
	$(CUDA_NVCC) $(CUDA_GENCODE) -c $< -o $@
# the same, position-independent, for shared libraries
$(CB)/qwenmoe_cuda_pic.o: qwenmoe_cuda.cu $(HDR) | $(CB)
	$(CUDA_NVCC) $(CUDA_GENCODE) -Xcompiler -fPIC -c $< -o $@

$(B)/qwenmoe-generate-cuda: examples/generate.c $(B)/qwenmoe_cuda.o $(HDR) | $(B)
	$(CC) $(WARN) $(ARCH) $(CFLAGS) -I. $< $(B)/qwenmoe_cuda.o -o $@ $(CUDA_LIBS) $(LDLIBS)
$(B)/qwenmoe-chat-cuda: examples/chat.c $(B)/qwenmoe_cuda.o $(HDR) | $(B)
	$(CC) $(WARN) $(ARCH) $(CFLAGS) -I. $< $(B)/qwenmoe_cuda.o -o $@ $(CUDA_LIBS) $(LDLIBS)
$(B)/qwenmoe-bench-cuda: tools/bench.c $(B)/qwenmoe_cuda.o $(HDR) | $(B)
	$(CC) $(WARN) $(ARCH) $(CFLAGS) -I. $< $(B)/qwenmoe_cuda.o -o $@ $(CUDA_LIBS) $(LDLIBS)

# tests
$(CB)/impl.o: tests/cuda/impl.c $(HDR) | $(CB)
	$(CC) $(WARN) $(CFLAGS) -I. -c $< -o $@
$(CB)/impl_pic.o: tests/cuda/impl.c $(HDR) | $(CB)
	$(CC) $(WARN) $(CFLAGS) -fPIC -I. -c $< -o $@
# host test of the decoders: includes qwenmoe_cuda.cu, runs its __host__ __device__ code on the CPU
$(CB)/test_cuda_host: tests/cuda/test_cuda_host.cu qwenmoe_cuda.cu tests/qmtest.h $(CB)/impl.o $(HDR) | $(CB)
	$(CUDA_NVCC) -Xcompiler -ffp-contract=off -gencode arch=compute_80,code=sm_80 $< $(CB)/impl.o -o $@ \
	    $(CUDA_NVLIBS) -lpthread
$(CB)/test_cuda_gpu: tests/cuda/test_cuda_gpu.c tests/qmtest.h $(B)/qwenmoe_cuda.o $(HDR) | $(CB)
	$(CC) $(WARN) $(CFLAGS) -I. $< $(B)/qwenmoe_cuda.o -o $@ $(CUDA_LIBS) $(LDLIBS) -lm

# qwenmoe-logits on the SIMT emulation of qwenmoe_cuda.cu (mk/simt.mk): the same logits whatever
# the order in which the emulated threads run (tests/cuda/run.sh compares them)
$(CB)/qwenmoe-logits-simt: tools/logits.c $(CB)/qwenmoe_cuda_simt.o $(HDR) | $(CB)
	$(CC) $(WARN) $(ARCH) $(CFLAGS) -I. $< $(CB)/qwenmoe_cuda_simt.o -o $@ -lstdc++ $(LDLIBS) -lpthread -lm

CUDA_TESTS = $(CB)/test_cuda_host $(CB)/test_cuda_gpu $(CB)/impl.o $(CB)/impl_pic.o \
             $(CB)/qwenmoe_cuda_pic.o $(CB)/test_simt $(CB)/test_cuda_simt $(CB)/qwenmoe-logits-simt

test-cuda: cuda $(CUDA_TESTS) $(B)/qwenmoe-generate $(B)/qwenmoe-chat $(B)/qwenmoe-logits $(B)/qwenmoe-mkmodel \
           $(B)/models/tiny.gguf $(B)/models/tiny-q8.gguf
	@CC="$(CC)" CUDA_HOME="$(CUDA_HOME)" bash tests/cuda/run.sh $(B)

.PHONY: cuda test-cuda
