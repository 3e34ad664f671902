#!/usr/bin/env bash
# Coverage-guided fuzzing on stable rustc: the native/fuzz harnesses built
# with LLVM's sancov instrumentation (inline 8-bit counters, PC table,
# comparison tracing) and linked against the libFuzzer runtime of Debian's
# libclang-rt-14-dev. See docs/reliability.md, "Fuzzing".
#
# Usage:
#   build/fuzz.sh build                 instrumented build only
#   build/fuzz.sh smoke  [target...]    replay seeds + regressions, then fuzz
#                                       each target FUZZ_SMOKE_SECONDS (15)
#                                       from the committed seeds only
#   build/fuzz.sh run    [target...]    fuzz each target FUZZ_SECONDS (300),
#                                       growing native/fuzz/target/corpus/
#
# A crash stops the run; its input is written under native/fuzz/artifacts/
# <target>/. Fix the bug, then commit the input to native/fuzz/regressions/
# <target>/ so every smoke replays it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FUZZ="$ROOT/native/fuzz"
TRIPLE=x86_64-unknown-linux-gnu
LIBFUZZER=/usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.fuzzer-x86_64.a
ALL_TARGETS=(abi grpc_framing metadata requests)
BIN="$FUZZ/target/$TRIPLE/release"

if [ ! -f "$LIBFUZZER" ]; then
  echo "error: $LIBFUZZER is missing; install libclang-rt-14-dev (make setup)" >&2
  exit 1
fi

build() {
  # RUSTFLAGS reach only the target crates with an explicit --target, never
  # build scripts or proc macros, which must not be instrumented.
  local flags=(
    -Cpasses=sancov-module
    -Cllvm-args=-sanitizer-coverage-level=3
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters
    -Cllvm-args=-sanitizer-coverage-pc-table
    -Cllvm-args=-sanitizer-coverage-trace-compares
    --cfg=fuzzing
    "-Clink-arg=$LIBFUZZER"
    -Clink-arg=-lstdc++
  )
  # The fuzz crate's own target directory; the offline crate source comes
  # from native/.cargo/config.toml (cargo reads it from the working directory up).
  (cd "$FUZZ" && CARGO_TARGET_DIR="$FUZZ/target" RUSTFLAGS="${flags[*]}" \
    "$ROOT/build/cargo.sh" build --release --locked --features libfuzzer --target "$TRIPLE" --bins)
}

# The files under each directory given (none when it is missing or empty).
inputs_in() {
  local dir
  for dir in "$@"; do
    [ -d "$dir" ] && find "$dir" -type f ! -name '.*' | sort
  done
  return 0
}

# Runs every committed seed and regression input once; fails on a crash.
replay() {
  local target=$1
  local -a files
  mapfile -t files < <(inputs_in "$FUZZ/corpus/$target" "$FUZZ/regressions/$target")
  if [ "${#files[@]}" -eq 0 ]; then
    echo "error: $target has no seed corpus under native/fuzz/corpus/$target" >&2
    return 1
  fi
  "$BIN/$target" -rss_limit_mb=2048 -timeout=10 "${files[@]}" >"$LOG_DIR/$target.replay.log" 2>&1 || {
    tail -n 40 "$LOG_DIR/$target.replay.log" >&2
    echo "error: $target crashed on a committed input (log above)" >&2
    return 1
  }
  echo "fuzz $target: ${#files[@]} committed input(s) replayed"
}

# Fuzzes one target for $2 seconds with new units written to $3; fails on a
# crash or when coverage does not grow beyond what the seeds reach.
fuzz() {
  local target=$1 seconds=$2 work=$3 log="$LOG_DIR/$target.fuzz.log"
  mkdir -p "$work" "$FUZZ/artifacts/$target"
  local status=0
  "$BIN/$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
    -print_final_stats=1 -artifact_prefix="$FUZZ/artifacts/$target/" \
    "$work" "$FUZZ/corpus/$target" "$FUZZ/regressions/$target" >"$log" 2>&1 || status=$?
  if [ "$status" -ne 0 ]; then
    tail -n 60 "$log" >&2
    echo "error: fuzz $target failed (exit $status); the input is under native/fuzz/artifacts/$target/" >&2
    return 1
  fi
  local inited final
  inited=$(grep -m1 -oE 'INITED cov: [0-9]+ ft: [0-9]+' "$log" | grep -oE '[0-9]+' | tr '\n' ' ' || true)
  final=$(grep -oE '(NEW|REDUCE|pulse|DONE) +cov: [0-9]+ ft: [0-9]+' "$log" | tail -n1 | grep -oE '[0-9]+' | tr '\n' ' ' || true)
  read -r cov0 ft0 <<<"${inited:-0 0}"
  read -r cov1 ft1 <<<"${final:-$cov0 $ft0}"
  local runs
  runs=$(grep -oE 'stat::number_of_executed_units: [0-9]+' "$log" | grep -oE '[0-9]+' || echo '?')
  echo "fuzz $target: ${seconds}s, $runs runs, cov $cov0 -> $cov1, ft $ft0 -> $ft1"
  # An uninstrumented build reports no coverage at all.
  if [ "$cov0" -eq 0 ]; then
    echo "error: $target reports no coverage; the build is not instrumented" >&2
    return 1
  fi
}

command=${1:-smoke}
shift || true
targets=("$@")
[ "${#targets[@]}" -eq 0 ] && targets=("${ALL_TARGETS[@]}")
LOG_DIR="$FUZZ/target/logs"

case "$command" in
  build)
    build
    ;;
  smoke)
    build
    mkdir -p "$LOG_DIR"
    scratch=$(mktemp -d)
    trap 'rm -rf "$scratch"' EXIT
    for target in "${targets[@]}"; do
      replay "$target"
      fuzz "$target" "${FUZZ_SMOKE_SECONDS:-15}" "$scratch/$target"
    done
    ;;
  run)
    build
    mkdir -p "$LOG_DIR"
    for target in "${targets[@]}"; do
      replay "$target"
      fuzz "$target" "${FUZZ_SECONDS:-300}" "$FUZZ/target/corpus/$target"
    done
    ;;
  *)
    echo "usage: build/fuzz.sh build|smoke|run [target...]" >&2
    exit 2
    ;;
esac
