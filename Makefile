# The two commands of the quick start: `make run` and `make test`. Both install what is missing
# (Debian packages, via scripts/install-deps.sh), then build with CMake + Ninja (+ ccache).

BUILD ?= build
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo

.PHONY: all deps build run test bench clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS) >/dev/null
	@ninja -C $(BUILD)

# Runs examples/quickstart end to end on embedded defaults (SQLite, a local lake, local
# processes). A second `make run` shows the tasks as cached.
run: build
	@scripts/run-example.sh examples/quickstart

test: build
	@cd $(BUILD) && ctest --output-on-failure -j2

bench: build
	@scripts/install-deps.sh --bench
	@ninja -C build ferry data_bench train_bench drift_bench
	@bench/scheduler.sh
	@bench/data.sh
	@bench/train.sh
	@bench/serve.sh
	@bench/drift.sh

clean:
	rm -rf $(BUILD)
