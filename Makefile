# Tandem: build, test, demo and benchmarks. `make demo` and `make test` work
# on a fresh Debian 12 machine: both run `setup` first.
SHELL := /bin/bash
.DEFAULT_GOAL := test

export DOTNET_CLI_TELEMETRY_OPTOUT := 1
export DOTNET_NOLOGO := 1
export DOTNET_SKIP_FIRST_TIME_EXPERIENCE := 1

CARGO := $(CURDIR)/build/cargo.sh
CONFIG ?= Release

# The C# contracts of the reference kernels, generated from libtandem.so
# (`make generate`); `make check-generated` fails when the committed ones drift.
GENERATE := env -u TANDEM_TEST_KERNELS dotnet src/Tandem.Generator/bin/$(CONFIG)/net10.0/tandem-generate.dll
REFERENCE_CONTRACTS := --library native/target/release/libtandem.so --namespace Tandem.Internal.Contracts --class ReferenceKernels --access internal
REFERENCE_CONTRACTS_DIR := src/Tandem/Internal/Contracts/Generated
# The fixture library's, generated as a user generates theirs (public facades).
FIXTURE_CONTRACTS := --library native/target/release/libtandem_fixture_kernels.so --namespace Tandem.Tests.Kernels --class FixtureKernels --access public
FIXTURE_CONTRACTS_DIR := tests/Tandem.Tests/Kernels/Generated

# NuGet packages (`make pack`): the version is Directory.Build.props' unless
# VERSION is given (`make pack VERSION=1.2.3`).
PACKAGES_DIR := $(CURDIR)/artifacts/packages
PACKAGE_PROJECTS := src/Tandem/Tandem.csproj src/Tandem.Remote/Tandem.Remote.csproj src/Tandem.Generator/Tandem.Generator.csproj src/Tandem.Testing/Tandem.Testing.csproj
PACKAGE_VERSION = $(or $(VERSION),$(shell sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' Directory.Build.props))

# Debian packages the build and tests need: the Rust crates (used offline
# from /usr/share/cargo/registry, see native/.cargo/config.toml), protoc,
# cbindgen, b3sum (the BLAKE3 reference the tests compare with), openssl
# (the TLS tests' certificates), numpy
# on OpenBLAS for the benchmark baseline (without libopenblas0-pthread,
# numpy falls back to the slow reference BLAS), Chromium for the dashboard's
# browser test, wrk for the HTTP benchmark, clang with its AddressSanitizer
# runtime plus valgrind for `make test-sanitize`, and for the fuzz harnesses
# (build/fuzz.sh) the libFuzzer runtime the Rust targets link
# (libclang-rt-14-dev) and AFL++, which drives the C# targets.
APT_PACKAGES := \
	librust-rayon-dev \
	librust-blake3-dev \
	'librust-blake3+rayon-dev' \
	librust-prost-dev \
	librust-prost-build-dev \
	librust-proptest-dev \
	'librust-proptest+default-dev' \
	librust-tokio-dev \
	'librust-tokio+full-dev' \
	librust-hyper-dev \
	'librust-hyper+full-dev' \
	librust-h2-dev \
	librust-http-dev \
	librust-http-body-dev \
	librust-bytes-dev \
	librust-futures-util-dev \
	librust-memmap2-dev \
	librust-libc-dev \
	'librust-prometheus-dev' \
	librust-tracing-dev \
	librust-tracing-subscriber-dev \
	'librust-tracing-subscriber+json-dev' \
	'librust-tracing-subscriber+env-filter-dev' \
	librust-serde-json-dev \
	librust-rustls-dev \
	librust-tokio-rustls-dev \
	librust-rustls-pemfile-dev \
	librust-webpki-dev \
	librust-tempfile-dev \
	nodejs \
	npm \
	protobuf-compiler \
	openssl \
	cbindgen \
	b3sum \
	python3-numpy \
	libopenblas0-pthread \
	chromium \
	wrk \
	clang \
	libclang-rt-14-dev \
	valgrind \
	afl++

.PHONY: fuzz fuzz-smoke setup build native soak soak-short test test-native test-isa test-sanitize test-sanitize-fast test-dotnet test-interop test-dashboard test-deploy test-packages test-example test-perf-tool perf-report lint header check-header generate check-generated demo bench bench-http pack clean

## setup: install what a fresh Debian 12 machine lacks (idempotent, fast when done)
setup:
	@bash build/setup.sh $(APT_PACKAGES)

## build: the native library and every .NET project
build: setup
	cd native && $(CARGO) build --release
	dotnet build Tandem.slnx -c $(CONFIG)

## test: every Rust, .NET, interop and dashboard test, lints, and the header drift check
test: build soak-short check-header check-generated lint test-native test-isa test-sanitize-fast test-dotnet test-interop test-dashboard test-deploy test-packages test-example fuzz-smoke test-perf-tool

## soak: the fault soak (docs/reliability.md, "Fault soak"): SOAK_CALLS calls
## (1,000,000) over the three kernels on Remote and Native under seeded chaos;
## SOAK_SECONDS > 0 stops earlier, SOAK_SEED picks the schedule; report in artifacts/soak
SOAK_CALLS ?= 1000000
SOAK_SECONDS ?= 0
SOAK_SEED ?= 12
soak: build
	CONFIG=$(CONFIG) bash build/soak.sh --calls $(SOAK_CALLS) --seconds $(SOAK_SECONDS) --seed $(SOAK_SEED) --out artifacts/soak

## soak-short: the same soak for about 20 s (at least one fault of every kind), part of `make test`
soak-short: build
	CONFIG=$(CONFIG) bash build/soak.sh --calls 400000 --seconds 20 --seed $(SOAK_SEED) --out artifacts/soak-short

test-native:
	cd native && $(CARGO) test --release --workspace

## test-isa: the kernel tests once per SIMD path (TANDEM_ISA=avx512|avx2|portable), unavailable paths skipped with the reason;
## `make test-isa ISA_DOTNET=1` adds the .NET Native contract suites per path
ISA_DOTNET ?= 0
test-isa:
	CONFIG=$(CONFIG) ISA_DOTNET=$(ISA_DOTNET) bash build/test-isa.sh

## test-sanitize: the C ABI harness under clang ASan+LSan and the Rust suites under valgrind memcheck (zero reports)
test-sanitize:
	bash build/sanitize.sh full

## test-sanitize-fast: the subset of test-sanitize that `make test` runs
test-sanitize-fast:
	bash build/sanitize.sh fast

test-dotnet:
	dotnet test tests/Tandem.Tests/Tandem.Tests.csproj -c $(CONFIG) --no-build
	dotnet test tests/Tandem.Server.Tests/Tandem.Server.Tests.csproj -c $(CONFIG) --no-build
	dotnet test tests/Tandem.Testing.Tests/Tandem.Testing.Tests.csproj -c $(CONFIG) --no-build

# Fuzzing (docs/reliability.md, "Fuzzing"), coverage-guided: the Rust
# targets with sancov + libFuzzer, the C# decoders with SharpFuzz + AFL++.
FUZZ_SECONDS ?= 300
FUZZ_SMOKE_SECONDS ?= 10

## fuzz: every fuzz target for FUZZ_SECONDS (default 300) each; findings land in native/fuzz/artifacts and tests/Tandem.Fuzz/artifacts
fuzz: build
	CONFIG=$(CONFIG) FUZZ_SECONDS=$(FUZZ_SECONDS) bash build/fuzz.sh run

## fuzz-smoke: replay every committed seed and regression, then FUZZ_SMOKE_SECONDS (default 10) of fuzzing per target
fuzz-smoke: build
	CONFIG=$(CONFIG) FUZZ_SMOKE_SECONDS=$(FUZZ_SMOKE_SECONDS) bash build/fuzz.sh smoke

## test-dashboard: the dashboard's own unit tests (node --test); its browser test runs in test-dotnet
test-dashboard:
	cd src/Tandem.Server/Dashboard/client && npm test

## test-interop: drive tandem-worker with an independent gRPC client (@grpc/grpc-js)
test-interop:
	cd tests/interop && npm ci --no-audit --no-fund --loglevel=error && npm test

## test-deploy: deploy/ checked offline: Kubernetes manifests against the schemas and their rules, the worker image's entry point, the Dockerfiles' sources
test-deploy:
	cd deploy/test && npm ci --no-audit --no-fund --loglevel=error && npm test

## test-packages: a fresh consumer project restores the packages from the local folder, builds and runs on Native and Remote
test-packages: pack
	bash tests/packages/run.sh $(PACKAGE_VERSION) $(PACKAGES_DIR)

## test-example: examples/timeseries, a user's kernel in its own crate and solution, built and tested against the packages
test-example: pack
	bash examples/timeseries/run-tests.sh $(PACKAGE_VERSION) $(PACKAGES_DIR)

lint:
	cd native && $(CARGO) fmt --all --check
	cd native/fuzz && $(CARGO) fmt --check
	cd native && $(CARGO) clippy --release --workspace --all-targets -- -D warnings

## header: regenerate native/sdk/include/tandem.h with cbindgen
header:
	cd native/sdk && cbindgen --quiet --config cbindgen.toml --crate tandem-sdk --output include/tandem.h .

## check-header: fail when the committed header differs from the Rust source
check-header:
	@tmp=$$(mktemp); trap 'rm -f "$$tmp"' EXIT; \
	(cd native/sdk && cbindgen --quiet --config cbindgen.toml --crate tandem-sdk --output "$$tmp" .) && \
	if ! diff -u native/sdk/include/tandem.h "$$tmp"; then \
		echo "check-header: native/sdk/include/tandem.h is stale; run 'make header' and commit it"; exit 1; \
	fi

## generate: regenerate the reference kernels' C# contracts from libtandem.so
generate: build
	$(GENERATE) $(REFERENCE_CONTRACTS) --out $(REFERENCE_CONTRACTS_DIR)
	$(GENERATE) $(FIXTURE_CONTRACTS) --out $(FIXTURE_CONTRACTS_DIR)

## check-generated: fail when the committed C# contracts differ from what libtandem.so publishes
check-generated:
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	for pair in "$(REFERENCE_CONTRACTS_DIR)|$(REFERENCE_CONTRACTS)" "$(FIXTURE_CONTRACTS_DIR)|$(FIXTURE_CONTRACTS)"; do \
		dir=$${pair%%|*}; rm -rf "$$tmp/out"; \
		$(GENERATE) $${pair#*|} --out "$$tmp/out" || exit 1; \
		if ! diff -ru "$$dir" "$$tmp/out"; then \
			echo "check-generated: $$dir is stale; run 'make generate' and commit it"; exit 1; \
		fi; \
	done

## demo: the main job: Tandem.Server on 127.0.0.1 with the demo collection,
## live load and dashboard; `make demo WORKERS=2` runs kernels on worker processes
demo: build
	dotnet src/Tandem.Server/bin/$(CONFIG)/net10.0/Tandem.Server.dll --demo $(if $(WORKERS),--workers $(WORKERS)) $(ARGS)

## bench: benchmarks side by side with their baselines (see docs/performance.md)
bench: build
	bash bench/run.sh

## test-perf-tool: tandem-perf's unit tests and a smoke run of the tool (Managed + Native in process, two ~1 s steps; CSV, JSON and PNGs read back)
test-perf-tool:
	dotnet test tests/Tandem.Perf.Tests/Tandem.Perf.Tests.csproj -c $(CONFIG) --no-build

## perf-report: tandem-perf's top-k concurrency sweep on Managed, Native, a 2-worker Remote pool and Tandem.Server over HTTP
## (about 4 minutes); writes docs/perf/ (CSV, JSON, PNGs) and regenerates the tandem-perf block of docs/performance.md
perf-report: build
	bash bench/Tandem.Perf/perf-report.sh $(CONFIG)

## bench-http: wrk at 64 connections against Tandem.Server (Native, 2-worker Remote) and the in-process dispatcher
bench-http: build
	bash bench/http/run.sh

## pack: versioned NuGet packages (Tandem, Tandem.Remote, the Tandem.Generator tool) in artifacts/packages
pack: build
	@for project in $(PACKAGE_PROJECTS); do \
		dotnet pack "$$project" -c $(CONFIG) -o $(PACKAGES_DIR) -p:Version=$(PACKAGE_VERSION) -p:SkipNativeBuild=true || exit 1; \
	done
	@ls -1 $(PACKAGES_DIR)/*.$(PACKAGE_VERSION).nupkg

clean:
	cd native && $(CARGO) clean
	rm -rf native/fuzz/target
	dotnet clean Tandem.slnx -c $(CONFIG)
	rm -rf $(PACKAGES_DIR)
