# The two set-up commands of the README: `make demo` (the main job) and `make test`.
# Both install Mesa's software Vulkan driver first when the machine has no Vulkan driver.

CARGO ?= cargo
BIN := target/release/phaseflow

.PHONY: setup build demo test fuzz lint fmt clean wheel

setup:
	@./scripts/ensure-vulkan.sh
	@command -v $(CARGO) >/dev/null || { echo "phaseflow needs Rust: https://rustup.rs" >&2; exit 1; }

build: setup
	$(CARGO) build --release

# A Lorenz ensemble of 10^5 trajectories, rho swept over [0, 50], on the best adapter:
# fixed-step RK4, then adaptive Tsit5 (each trajectory its own step size).
demo: build
	$(BIN) info
	$(BIN) simulate lorenz -n 100000 --sweep rho=0:50 --tspan 0:10 --dt 0.001 --solver rk4
	$(BIN) simulate lorenz -n 100000 --sweep rho=0:50 --tspan 0:10 --solver tsit5 --rtol 1e-6 --atol 1e-6

# Release profile: the tests drive real GPU work, and it shares the demo's build. Then the
# Python package: built into .venv and its pytest suite run against the CLI just built.
test: setup
	$(CARGO) test --release
	./scripts/python-test.sh

# The long fuzz run: each fuzz target with PHASEFLOW_FUZZ_CASES generated inputs per property
# (make test runs a few thousand). FUZZ_CASES=... overrides.
FUZZ_CASES ?= 200000
FUZZ_TARGETS := $(patsubst tests/%.rs,--test %,$(wildcard tests/fuzz_*.rs))
fuzz: setup
	PHASEFLOW_FUZZ_CASES=$(FUZZ_CASES) $(CARGO) test --release $(FUZZ_TARGETS) -- --nocapture

# The second clippy checks the engine library alone (no clap, axum, indicatif, plotters):
# it type-checks only the library, so it adds little time. The third checks the Python
# bindings (python/).
lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --release --all-targets -- -D warnings
	$(CARGO) clippy --release --no-default-features -- -D warnings
	$(CARGO) clippy --release -p phaseflow-python -- -D warnings

# The manylinux2014 wheel of the Python package (zig as the linker, no container), checked
# in a fresh venv; about 4 minutes on two cores.
wheel: setup
	./scripts/build-wheel.sh

fmt:
	$(CARGO) fmt

clean:
	$(CARGO) clean
