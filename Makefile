# microscale: the two commands a user needs are `make demo` and `make test`.
# Both install what is missing (scripts/install-deps.sh), then build.
JOBS ?= $(shell nproc)
BUILD ?= build
BUILD_SAN ?= build-san
CMAKE_FLAGS ?=

.PHONY: all deps build build-san test test-fast test-san demo bench clean

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

$(BUILD_SAN)/CMakeCache.txt:
	cmake -S . -B $(BUILD_SAN) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
	  -DMICROSCALE_SANITIZE=ON -DMICROSCALE_BENCH=OFF $(CMAKE_FLAGS)

build-san: deps $(BUILD_SAN)/CMakeCache.txt
	cmake --build $(BUILD_SAN) -j $(JOBS)

# Every test, then every test again under AddressSanitizer + UndefinedBehaviorSanitizer (built at -O1 with
# line tables only: sanitizer reports keep file:line, with less to compile than -O2 -g).
test: test-fast test-san

# Only the test binaries and the CLI (benchmarks are built by `make build` / `make bench`).
test-fast: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS) --target microscale_tests
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-san: deps $(BUILD_SAN)/CMakeCache.txt
	cmake --build $(BUILD_SAN) -j $(JOBS) --target microscale_tests
	cd $(BUILD_SAN) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS) -LE slow

demo: build
	bash scripts/demo.sh $(BUILD)/microscale

bench: build
	bash scripts/bench.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(BUILD_SAN)
