# mk/fuzz.mk - libFuzzer harnesses (tests/fuzz/) and valgrind.
#   make fuzz [FUZZ_SECONDS=60]  run each harness for FUZZ_SECONDS; fails if any crashes
#   make fuzz-regress            every input of tests/fuzz/regress/ and tests/fuzz/seeds/ once
#   make fuzz-build              only build the harnesses into $(B)/fuzz/
#   make fuzz-seeds              (re)write the seed corpora $(B)/fuzz/corpus-*/
#   make valgrind                memcheck over a generation run and test_gguf/test_tokenizer
# Needs clang with libFuzzer (FUZZCC=clang-14 ...). FUZZ_INC=DIR builds against DIR/qwenmoe.h.
FUZZCC       ?= clang
FUZZ_SECONDS ?= 60
FUZZ_INC     ?= .
FUZZ_CFLAGS  = $(WARN) -g -O1 $(ARCH) -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
               -fno-omit-frame-pointer
FUZZERS      = $(B)/fuzz/fuzz_gguf $(B)/fuzz/fuzz_tokenizer $(B)/fuzz/fuzz_chat

# the harnesses are rebuilt when FUZZ_INC changes: $(B)/fuzz/.fuzz_inc holds the last one
ifneq ($(filter fuzz fuzz-build fuzz-regress $(B)/fuzz/%,$(MAKECMDGOALS)),)
$(shell mkdir -p $(B)/fuzz; echo '$(FUZZ_INC)' | cmp -s - $(B)/fuzz/.fuzz_inc || echo '$(FUZZ_INC)' > $(B)/fuzz/.fuzz_inc)
endif

$(B)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_INC)/qwenmoe.h $(B)/fuzz/.fuzz_inc | $(B)
	$(FUZZCC) $(FUZZ_CFLAGS) -I$(FUZZ_INC) $< -o $@ $(LDLIBS)

$(B)/fuzz/.seeds: tests/fuzz/mkseeds.sh $(B)/qwenmoe-mkmodel $(wildcard tests/fuzz/seeds/*/*) tests/data/tokenizer_vectors.txt
	bash tests/fuzz/mkseeds.sh $(B)
	@touch $@

fuzz-build: $(FUZZERS)
fuzz-seeds: $(B)/fuzz/.seeds

fuzz: $(FUZZERS) $(B)/fuzz/.seeds $(B)/models/tiny-tok.gguf
	@bash tests/fuzz/run.sh fuzz $(B) $(FUZZ_SECONDS)

fuzz-regress: $(FUZZERS) $(B)/models/tiny-tok.gguf
	@bash tests/fuzz/run.sh regress $(B)

# tests/valgrind.sh builds its own -O1 -g copies (no AVX-512: valgrind cannot run it) in $(B)/valgrind/
valgrind: $(B)/models/tiny.gguf $(B)/models/tiny-q8.gguf $(B)/models/tiny-tok.gguf
	@bash tests/valgrind.sh $(B)

.PHONY: fuzz fuzz-build fuzz-seeds fuzz-regress valgrind
