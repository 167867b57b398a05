# Host SIMT emulation of the CUDA build (tests/cuda/simt.h): qwenmoe_cuda.cu's real kernels and
# host code compiled by g++ and run on the CPU, without a GPU, a driver or nvcc.
#   make test-simt   build/cuda/test_simt (the emulator's self-test) and build/cuda/test_cuda_simt
#                    (test_cuda_gpu.c linked with the emulated qwenmoe_cuda.cu); runs test_simt
# Run the comparison with the CPU:
#   build/cuda/test_cuda_simt --mkmodel build/qwenmoe-mkmodel --dir build/cuda/models [--types q4_k_m]
# Environment of the emulator: QMC_SIMT_ORDER=forward|reverse|shuffle, QMC_SIMT_SEED, QMC_SIMT_GUARD=0,
# QMC_SIMT_MEM_MB, QMC_SIMT_POISON=0, QMC_SIMT_NODEV=1, QMC_SIMT_NODRIVER=1, QMC_SIMT_STACK_KB,
# QMC_SIMT_TRACE=1 (see tests/cuda/simt.h).
# The Makefile includes mk/*.mk and mk/cuda.mk may include this file as well: the guard keeps
# a second inclusion from redefining the rules.
ifndef QMC_SIMT_MK
QMC_SIMT_MK := 1

CB        ?= $(B)/cuda
SIMT_CXX  ?= g++
# warnings are errors, as for the rest of the build; no FMA contraction (as the device code's _rn)
SIMT_FLAGS = -std=c++17 -O2 -g $(ARCH) -Wall -Wextra -Werror -ffp-contract=off -pthread
SIMT_HDR   = tests/cuda/simt.h

$(CB)/qwenmoe_cuda_simt.o: qwenmoe_cuda.cu $(SIMT_HDR) $(HDR)
	@mkdir -p $(@D)
	$(SIMT_CXX) $(SIMT_FLAGS) -DQMC_EMU -include $(SIMT_HDR) -I. -x c++ -c $< -o $@
$(CB)/test_simt: tests/cuda/test_simt.cu $(SIMT_HDR) tests/qmtest.h
	@mkdir -p $(@D)
	$(SIMT_CXX) $(SIMT_FLAGS) -I. -x c++ $< -o $@
$(CB)/test_cuda_simt: tests/cuda/test_cuda_gpu.c tests/qmtest.h $(CB)/qwenmoe_cuda_simt.o $(HDR)
	@mkdir -p $(@D)
	$(CC) $(WARN) $(CFLAGS) -DQM_CUDA_TEST_NAME='"cuda_simt"' -I. $< $(CB)/qwenmoe_cuda_simt.o -o $@ \
	    -lstdc++ $(LDLIBS) -lpthread -lm

test-simt: $(CB)/test_simt $(CB)/test_cuda_simt
	$(CB)/test_simt

.PHONY: test-simt
endif
