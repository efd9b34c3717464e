# Sluice: the two commands of the README, and a few helpers.
#   make run    install missing Debian packages, build, start the server on 127.0.0.1:5000
#   make test   install missing Debian packages, build, run every test (ASan+UBSan; TSan; fuzz)
BUILD ?= build
BUILD_ASAN ?= build-asan
BUILD_TSAN ?= build-tsan
BUILD_FUZZ ?= build-fuzz
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
RUN_ARGS ?=

PREFIX ?= /opt/sluice

.PHONY: all deps build sdk run test test-plain test-asan test-tsan test-fuzz bench format format-check clean

SOURCES = $(shell find core api sdk plugins tests samples bench fuzz \( -name '*.cpp' -o -name '*.hpp' -o -name '*.h' -o -name '*.c' \))

all: build

deps:
	@./.ci/install-deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

# For plugin authors: the engine, the bundled plugins and the SDK (no tests), installed to
# $(PREFIX) (default /opt/sluice) with the CMake package find_package(Sluice) finds.
sdk: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS) --target sluice noop ticker line_pipe exec http
	cmake --install $(BUILD) --prefix $(PREFIX)

run: build
	./$(BUILD)/bin/sluice $(RUN_ARGS)

test-plain: build
	cd $(BUILD) && ctest -j $(JOBS) --output-on-failure

# The ASan build is a unity build (16 sources per compiler run): on CI's two cores that halves
# its compile time (959 s -> 488 s of CPU). The TSan build (the engine, the API and their unit
# tests) compiles each source alone, so that a source missing an #include or a `using` still
# fails in `make test`, as it does in `make run`'s build.
UNITY = -DCMAKE_UNITY_BUILD=ON -DCMAKE_UNITY_BUILD_BATCH_SIZE=16

$(BUILD_ASAN)/CMakeCache.txt:
	cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug -DSLUICE_SANITIZE=ON -DSLUICE_WERROR=ON $(UNITY) $(CMAKE_FLAGS)

test-asan: deps $(BUILD_ASAN)/CMakeCache.txt
	cmake --build $(BUILD_ASAN) -j $(JOBS)
	cd $(BUILD_ASAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest -j $(JOBS) --output-on-failure

# ThreadSanitizer on the engine's concurrency tests (the in-process engine suite) and on the
# token cache and gate that the HTTP threads share, the change feed, the histograms and the
# four-byte mutex (it spins before it sleeps).
$(BUILD_TSAN)/CMakeCache.txt:
	cmake -S . -B $(BUILD_TSAN) -DCMAKE_BUILD_TYPE=Debug -DSLUICE_TSAN=ON $(CMAKE_FLAGS)

test-tsan: deps $(BUILD_TSAN)/CMakeCache.txt
	cmake --build $(BUILD_TSAN) -j $(JOBS) --target unit_tests api_unit_tests
	cd $(BUILD_TSAN) && TSAN_OPTIONS=halt_on_error=1 ctest -j $(JOBS) --output-on-failure -R '^(Engine|Restart|EngineRaces|ThreadPool|Timer|Strand|Pending|RestartBackoff|Runner|HostBinding|FlowStatus|FlowRuntime|FlowUpdate|FlowInstance|TokenBook|GateTest|FailureLimiter|ChangeFeed|Histogram|Scheduler|FlowLogs|RunRecorder|SqliteJournal|SmallMutex)'

# libFuzzer targets (docs/fuzzing.md), clang-built in a build of their own: each runs 20 s.
$(BUILD_FUZZ)/CMakeCache.txt:
	CC=clang CXX=clang++ cmake -S . -B $(BUILD_FUZZ) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_FUZZ=ON -DSLUICE_WERROR=ON $(CMAKE_FLAGS)

test-fuzz: deps $(BUILD_FUZZ)/CMakeCache.txt
	cmake --build $(BUILD_FUZZ) -j $(JOBS)
	cd $(BUILD_FUZZ) && ctest -j $(JOBS) --output-on-failure

# Every test runs once, in the ASan+UBSan build (Debug, asserts on, -Werror); the engine's
# concurrency tests also run under TSan, and the fuzzers for 20 s each. The plain (optimized)
# build is `make run`'s and `make bench`'s; `make test-plain` runs the suite on it. Building the
# tree a fourth time for a second full run took `make test` past its 25-minute budget on CI's
# two cores. The ASan run comes last so that ctest's summary closes the output.
test: format-check test-tsan test-fuzz test-asan

bench: deps
	cmake -S . -B $(BUILD) -DSLUICE_BUILD_BENCH=ON $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j $(JOBS)
	./bench/run.sh $(BUILD)

format:
	clang-format -i $(SOURCES)

format-check: deps
	@clang-format --dry-run -Werror $(SOURCES) && echo "clang-format: $(words $(SOURCES)) files formatted"

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_TSAN) $(BUILD_FUZZ)
