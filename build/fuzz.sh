#!/usr/bin/env bash
# Coverage-guided fuzzing (docs/reliability.md, "Fuzzing").
#
# Rust targets: the native/fuzz harnesses built on stable rustc with LLVM's
# sancov instrumentation (inline 8-bit counters, PC table, comparison
# tracing), linked against the libFuzzer runtime of Debian's
# libclang-rt-14-dev. C# targets: tests/Tandem.Fuzz under afl-fuzz (AFL++),
# with Tandem.dll and Tandem.Server.dll instrumented by SharpFuzz; the C#
# project must be built first (make build).
#
# Usage:
#   build/fuzz.sh build                 instrumented Rust build only
#   build/fuzz.sh smoke  [target...]    replay seeds + regressions, then fuzz
#                                       each target FUZZ_SMOKE_SECONDS (10)
#                                       from the committed seeds only
#   build/fuzz.sh run    [target...]    fuzz each target FUZZ_SECONDS (300),
#                                       growing the corpus under native/fuzz/target/
#
# A crash stops the run; its input is written under native/fuzz/artifacts/
# <target>/ (Rust) or tests/Tandem.Fuzz/artifacts/<target>/ (C#). Fix the
# bug, then commit the input to the target's regressions/ folder so every
# smoke replays it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FUZZ="$ROOT/native/fuzz"
TRIPLE=x86_64-unknown-linux-gnu
LIBFUZZER=/usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.fuzzer-x86_64.a
RUST_TARGETS=(abi grpc_framing metadata requests)
DOTNET_TARGETS=(descriptor npy raw)
BIN="$FUZZ/target/$TRIPLE/release"
CSHARP="$ROOT/tests/Tandem.Fuzz"
CSHARP_BIN="$CSHARP/bin/${CONFIG:-Release}/net10.0"
AFL_APP="$FUZZ/target/dotnet-afl/app"
SHARPFUZZ="$FUZZ/target/tools/sharpfuzz"

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

# A copy of the C# harness whose Tandem assemblies SharpFuzz instruments
# (the build output itself stays uninstrumented for the tests).
dotnet_prepare() {
  if [ ! -f "$CSHARP_BIN/Tandem.Fuzz.dll" ]; then
    echo "error: $CSHARP_BIN/Tandem.Fuzz.dll is missing; build the solution first (make build)" >&2
    return 1
  fi
  if ! command -v afl-fuzz >/dev/null; then
    echo "error: afl-fuzz is missing; install afl++ (make setup)" >&2
    return 1
  fi
  if [ ! -x "$SHARPFUZZ" ]; then
    dotnet tool install SharpFuzz.CommandLine --version 2.3.0 --tool-path "$FUZZ/target/tools" >/dev/null
  fi
  rm -rf "$AFL_APP"
  mkdir -p "$AFL_APP"
  cp -r "$CSHARP_BIN/." "$AFL_APP/"
  local dll
  for dll in Tandem.dll Tandem.Server.dll; do
    "$SHARPFUZZ" "$AFL_APP/$dll" >/dev/null
  done
}

dotnet_replay() {
  local target=$1
  dotnet "$CSHARP_BIN/Tandem.Fuzz.dll" replay 0 "$target" >"$LOG_DIR/$target.replay.log" 2>&1 || {
    cat "$LOG_DIR/$target.replay.log" >&2
    echo "error: $target fails on a committed input (log above)" >&2
    return 1
  }
  grep -h "^fuzz" "$LOG_DIR/$target.replay.log"
}

# afl-fuzz on one C# target for $2 seconds, state in $3; fails on a crash
# or when no edge is covered (the assemblies were not instrumented).
dotnet_fuzz() {
  local target=$1 seconds=$2 out=$3 log="$LOG_DIR/$target.fuzz.log"
  mkdir -p "$(dirname "$out")"
  local status=0
  AFL_SKIP_BIN_CHECK=1 AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 AFL_AUTORESUME=1 \
    AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 \
    afl-fuzz -i "$CSHARP/corpus/$target" -o "$out" -V "$seconds" -t 5000 -m none \
    -- "$(command -v dotnet)" "$AFL_APP/Tandem.Fuzz.dll" afl "$target" >"$log" 2>&1 || status=$?
  local stats="$out/default/fuzzer_stats"
  if [ "$status" -ne 0 ] || [ ! -f "$stats" ]; then
    tail -n 30 "$log" >&2
    echo "error: afl-fuzz failed on $target (exit $status)" >&2
    return 1
  fi
  local stat
  stat() { sed -n "s/^$1 *: //p" "$stats"; }
  local -a crashes
  mapfile -t crashes < <(find "$out/default/crashes" -type f ! -name README.txt 2>/dev/null)
  if [ "${#crashes[@]}" -gt 0 ]; then
    mkdir -p "$CSHARP/artifacts/$target"
    cp "${crashes[@]}" "$CSHARP/artifacts/$target/"
    echo "error: fuzz $target found ${#crashes[@]} crash(es); inputs copied to tests/Tandem.Fuzz/artifacts/$target/" >&2
    return 1
  fi
  echo "fuzz $target: ${seconds}s, $(stat execs_done) runs, corpus $(($(stat corpus_count) - $(stat corpus_found))) -> $(stat corpus_count), edges $(stat edges_found)"
  if [ "$(stat edges_found)" -eq 0 ]; then
    echo "error: $target covers no edges; the assemblies are not instrumented" >&2
    return 1
  fi
}

is_dotnet() {
  local t
  for t in "${DOTNET_TARGETS[@]}"; do [ "$t" = "$1" ] && return 0; done
  return 1
}

command=${1:-smoke}
shift || true
targets=("$@")
[ "${#targets[@]}" -eq 0 ] && targets=("${RUST_TARGETS[@]}" "${DOTNET_TARGETS[@]}")
LOG_DIR="$FUZZ/target/logs"
wants_dotnet=false
for target in "${targets[@]}"; do is_dotnet "$target" && wants_dotnet=true; done

case "$command" in
  build)
    build
    ;;
  smoke)
    build
    mkdir -p "$LOG_DIR"
    $wants_dotnet && dotnet_prepare
    scratch=$(mktemp -d)
    trap 'rm -rf "$scratch"' EXIT
    for target in "${targets[@]}"; do
      if is_dotnet "$target"; then
        dotnet_replay "$target"
        dotnet_fuzz "$target" "${FUZZ_SMOKE_SECONDS:-10}" "$scratch/$target"
      else
        replay "$target"
        fuzz "$target" "${FUZZ_SMOKE_SECONDS:-10}" "$scratch/$target"
      fi
    done
    ;;
  run)
    build
    mkdir -p "$LOG_DIR"
    $wants_dotnet && dotnet_prepare
    for target in "${targets[@]}"; do
      if is_dotnet "$target"; then
        dotnet_replay "$target"
        dotnet_fuzz "$target" "${FUZZ_SECONDS:-300}" "$FUZZ/target/dotnet-afl/findings/$target"
      else
        replay "$target"
        fuzz "$target" "${FUZZ_SECONDS:-300}" "$FUZZ/target/corpus/$target"
      fi
    done
    ;;
  *)
    echo "usage: build/fuzz.sh build|smoke|run [target...]" >&2
    exit 2
    ;;
esac
