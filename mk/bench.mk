# bench.mk - speed against llama.cpp.
#   make bench-vs-llama MODEL=FILE [THREADS=2 PP=512 TG=128 REPS=3 WARM=1 DROP=1]
# runs build/qwenmoe-bench and llama.cpp (node-llama-cpp, tools/bench_llama.mjs) on the same file
# with the same threads, alternating (never both at once), REPS rounds, and prints a side-by-side
# table with the ratios (pp, tg, load, peak RSS). WARM=1 reads the whole file into the page cache
# before every run (tools/bench_vs_llama.mjs --warm); DROP=1 drops the page cache first (--drop-caches,
# root only). Needs npm ci.
THREADS ?= 2
PP      ?= 512
TG      ?= 128
REPS    ?= 3
WARM    ?=
DROP    ?=

bench-vs-llama: $(B)/qwenmoe-bench
	@test -n "$(MODEL)" || { echo "usage: make bench-vs-llama MODEL=FILE [THREADS=2 PP=512 TG=128 REPS=3 WARM=1 DROP=1]"; exit 1; }
	@test -d node_modules/node-llama-cpp || { echo "bench-vs-llama: node_modules/node-llama-cpp is missing: run npm ci"; exit 1; }
	node tools/bench_vs_llama.mjs -m "$(MODEL)" -t $(THREADS) -p $(PP) -n $(TG) -r $(REPS) $(if $(WARM),--warm) $(if $(DROP),--drop-caches) --bench $(B)/qwenmoe-bench

.PHONY: bench-vs-llama
