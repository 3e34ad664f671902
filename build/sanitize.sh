#!/usr/bin/env bash
# Memory-error checks without a nightly toolchain (docs/reliability.md,
# "Sanitizers"):
#  1. tests/sanitize/abi_test.c, the C ABI tests, built with clang
#     -fsanitize=address (ASan + LeakSanitizer) against libtandem.so; then
#     two self-checks that must be reported (a leaked and a double-freed
#     tandem_error_t), proving the sanitizer sees the library's heap;
#  2. the Rust test binaries of tandem-sdk, tandem-kernels, tandem-ffi and
#     the worker's unit tests under valgrind memcheck, with TANDEM_ISA=avx2
#     (valgrind 3.19 cannot execute AVX-512 instructions).
# Any report fails the run.
#
# Usage: build/sanitize.sh fast|full
#   fast  (in `make test`): the ABI harness and the self-checks, and valgrind
#         on every listed suite but tandem-kernels' montecarlo and the worker's
#         (the slowest under valgrind);
#   full  (`make test-sanitize`): the harness once per SIMD path this CPU
#         runs, and valgrind on every listed suite.
set -euo pipefail
mode=${1:-full}
case "$mode" in fast | full) ;; *) echo "usage: $0 fast|full" >&2; exit 2 ;; esac

root=$(cd "$(dirname "$0")/.." && pwd)
cargo="$root/build/cargo.sh"
release="$root/native/target/release"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
started=$SECONDS

# The panic kernel's backtraces would only add noise to the log.
export RUST_BACKTRACE=0

echo "sanitize: building libtandem.so and the Rust test binaries"
# The whole workspace, as `make build` and test-native build it, so nothing rebuilds.
(cd "$root/native" && "$cargo" build --release -q)
bash "$root/build/test-binaries.sh" >"$out/tests.txt"

# ---- 1. the C ABI under AddressSanitizer + LeakSanitizer ----------------
harness="$out/abi_test"
clang -std=c11 -D_POSIX_C_SOURCE=200809L -g -O1 -fsanitize=address -fno-omit-frame-pointer \
  -Wall -Wextra -Werror -I"$root/native/sdk/include" "$root/tests/sanitize/abi_test.c" \
  -L"$release" -ltandem -Wl,-rpath,"$release" -lpthread -lm -o "$harness"

# abort_on_error: any report kills the run with a non-zero status.
asan_options=detect_leaks=1:abort_on_error=1:halt_on_error=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1:detect_invalid_pointer_pairs=1

run_harness() { # $1 = TANDEM_ISA value
  echo "sanitize: abi_test under ASan+LSan, TANDEM_ISA=${1:-auto}"
  if ! TANDEM_ISA=$1 ASAN_OPTIONS=$asan_options "$harness" >"$out/abi.log" 2>&1; then
    grep -v '^{"ts"' "$out/abi.log" | tail -60
    echo "sanitize: FAILED: abi_test (TANDEM_ISA=${1:-auto})"
    exit 1
  fi
  grep '^abi_test:' "$out/abi.log"
}

expect_report() { # $1 = flag, $2 = what the sanitizer must say
  # In a subshell that waits, so the shell's "Aborted" notice lands in the log.
  if (ASAN_OPTIONS=$asan_options "$harness" "$1"; exit $?) >"$out/self.log" 2>&1; then
    echo "sanitize: FAILED: abi_test $1 exited 0; the sanitizer did not see the library's heap"
    exit 1
  fi
  if ! grep -q "$2" "$out/self.log"; then
    tail -30 "$out/self.log"
    echo "sanitize: FAILED: abi_test $1 did not report '$2'"
    exit 1
  fi
  echo "sanitize: self-check $1: reported '$2', as it must be"
}

if [ "$mode" = full ]; then
  for isa in avx512 avx2 portable; do
    if [ "$(TANDEM_ISA=$isa bash "$root/build/isa-support.sh")" = yes ]; then
      run_harness "$isa"
    else
      echo "sanitize: skipping abi_test with TANDEM_ISA=$isa: $(TANDEM_ISA=$isa bash "$root/build/isa-support.sh")"
    fi
  done
else
  run_harness ""
fi
expect_report --leak-on-purpose "LeakSanitizer: detected memory leaks"
expect_report --double-free-on-purpose "attempting double-free"

# ---- 2. the Rust suites under valgrind memcheck -------------------------
# Suites: "crate directory under native/, test target". The worker's integration tests are not run:
# they start tandem-worker processes and wait for them with deadlines that
# valgrind's slowdown (x20-50 under --trace-children) would trip, and
# without --trace-children valgrind would only check the test driver.
suites=("sdk tandem_sdk" "kernels tandem_kernels" "kernels topk" "kernels blake3" "kernels isa" "ffi isa")
if [ "$mode" = full ]; then
  suites+=("kernels montecarlo" "worker tandem_worker")
fi

valgrind_args=(--error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite
  --show-leak-kinds=definite --suppressions="$root/tests/sanitize/valgrind.supp" --gen-suppressions=all -q)
for suite in "${suites[@]}"; do
  read -r crate target <<<"$suite"
  binary=$(awk -v c="$crate" -v t="$target" '$1 == c && $2 == t { print $3 }' "$out/tests.txt")
  if [ -z "$binary" ]; then
    echo "sanitize: FAILED: no test binary for $crate/$target"
    exit 1
  fi
  echo "sanitize: valgrind memcheck: $crate/$target (TANDEM_ISA=avx2)"
  # Proptest's default 256 cases per property take minutes under valgrind;
  # 32 still walk every code path the properties reach. From the crate's
  # directory, as cargo test runs it.
  if ! (cd "$root/native/$crate" && TANDEM_ISA=avx2 PROPTEST_CASES=32 \
    valgrind "${valgrind_args[@]}" "$binary" --test-threads=2 -q) >"$out/valgrind.log" 2>&1; then
    grep -v '^{"ts"' "$out/valgrind.log" | tail -80
    echo "sanitize: FAILED: valgrind memcheck on $crate/$target"
    exit 1
  fi
done
echo "sanitize: $mode: no reports ($((SECONDS - started)) s)"
