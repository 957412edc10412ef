# Thin wrapper over CMake. The two quick-start commands:
#   make demo   builds and runs the examples
#   make test   builds and runs the suite: ucontext, TSan, ASan+UBSan, then normal build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CTEST = ctest --output-on-failure -j$(JOBS)
B = build

.PHONY: all deps demo test test-normal test-asan test-tsan test-ucontext bench bench-quick install clean soak fuzz

all: deps
	cmake -S . -B $(B)/normal -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(B)/normal -j$(JOBS)

deps:
	@sh scripts/deps.sh

demo: all
	@sh scripts/demo.sh $(B)/normal

define cfg
	cmake -S . -B $(B)/$(1) $(2) >/dev/null
	cmake --build $(B)/$(1) -j$(JOBS)
endef

test-ucontext: deps
	$(call cfg,ucontext,-DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEFT_CONTEXT=ucontext -DWEFT_BUILD_BENCH=OFF)
	cd $(B)/ucontext && $(CTEST)

test-tsan: deps
	$(call cfg,tsan,-DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEFT_SANITIZE=thread -DWEFT_BUILD_BENCH=OFF)
	cd $(B)/tsan && $(CTEST)

test-asan: deps
	$(call cfg,asan,-DCMAKE_BUILD_TYPE=Debug -DWEFT_SANITIZE=address -DWEFT_BUILD_BENCH=OFF)
	cd $(B)/asan && $(CTEST)

test-normal: deps
	$(call cfg,normal,-DCMAKE_BUILD_TYPE=RelWithDebInfo)
	cd $(B)/normal && $(CTEST)

# the normal build runs last so the run ends with ctest's summary line
test: test-ucontext test-tsan test-asan test-normal

# Long randomized runs (docs/guarantees.md): the stress test (tasks across loops,
# timeouts, cancels, foreign submissions, shutdown at random moments, checked
# against invariants) for SOAK_SECONDS under ASan+UBSan, then under TSan, and the
# stream reader's seeded random driver for a fifth of that. Each prints its
# seed; WEFT_STRESS_SEED / WEFT_FUZZ_SEED replay one.
SOAK_SECONDS ?= 600
soak: deps
	$(call cfg,asan,-DCMAKE_BUILD_TYPE=Debug -DWEFT_SANITIZE=address -DWEFT_BUILD_BENCH=OFF)
	cd $(B)/asan && WEFT_STRESS_SECONDS=$(SOAK_SECONDS) ./tests/test_stress_random && \
	  WEFT_FUZZ_SECONDS=$$(( $(SOAK_SECONDS) / 5 )) ./tests/test_fuzz_stream
	$(call cfg,tsan,-DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEFT_SANITIZE=thread -DWEFT_BUILD_BENCH=OFF)
	cd $(B)/tsan && TSAN_OPTIONS="halt_on_error=1 suppressions=$(CURDIR)/tests/tsan.supp" \
	  WEFT_STRESS_SECONDS=$(SOAK_SECONDS) ./tests/test_stress_random && \
	  TSAN_OPTIONS="halt_on_error=1 suppressions=$(CURDIR)/tests/tsan.supp" \
	  WEFT_FUZZ_SECONDS=$$(( $(SOAK_SECONDS) / 5 )) ./tests/test_fuzz_stream

# libFuzzer over the stream reader (clang, ASan+UBSan): FUZZ_SECONDS of
# coverage-guided inputs, corpus kept in $(B)/fuzz/corpus.
FUZZ_SECONDS ?= 120
fuzz: deps
	CC=clang cmake -S . -B $(B)/fuzz -DCMAKE_BUILD_TYPE=Debug -DWEFT_SANITIZE=address -DWEFT_FUZZ=ON \
	  -DWEFT_BUILD_BENCH=OFF -DWEFT_BUILD_EXAMPLES=OFF >/dev/null
	cmake --build $(B)/fuzz -j$(JOBS) --target fuzz_stream
	mkdir -p $(B)/fuzz/corpus
	ASAN_OPTIONS=detect_leaks=1 $(B)/fuzz/tests/fuzz_stream -max_total_time=$(FUZZ_SECONDS) -max_len=20000 \
	  $(B)/fuzz/corpus

# Benchmarks (docs/benchmarks.md, bench/DEFINITIONS.md): Release build in $(B)/release; weft, Tokio and
# Go at 1, 2, 4, 8 workers, asyncio and uvloop; table + bench/results/results.{csv,json,md} +
# docs/img/*.{png,svg}. BENCH_ARGS passes options to bench/report.py (e.g. --workers 1,2 --only a,b).
bench:
	@sh scripts/deps.sh bench
	/usr/bin/python3 bench/report.py --build-dir $(B)/release $(BENCH_ARGS)

# every benchmark once at small size (a smoke run; the timings mean nothing)
bench-quick:
	@sh scripts/deps.sh bench
	/usr/bin/python3 bench/report.py --quick --build-dir $(B)/release --out $(B)/release/bench-quick --img $(B)/release/bench-quick/img $(BENCH_ARGS)

install: all
	cmake --install $(B)/normal $(if $(PREFIX),--prefix $(PREFIX),)

clean:
	rm -rf $(B)
