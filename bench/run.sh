#!/usr/bin/env bash
# Runs the BenchmarkDotNet suite and the numpy/BLAS baseline in one go, on the
# same machine state, and keeps everything under bench/results/<time>-<mode>/.
#
# Usage: bench/run.sh [quick]
#   (none)  full measurement: the jobs declared in each benchmark class and
#           15 timed baseline runs. Takes about five minutes on two cores.
#   quick   smoke run: BenchmarkDotNet's dry job (one iteration, no warm-up)
#           and 2 baseline runs; its numbers prove only that everything runs.
#
# The Release build runs cargo through build/cargo.sh (build/native.targets).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mode="${1:-full}"
case "$mode" in
  full)
    dotnet_job_args=()
    baseline_args=()
    ;;
  quick)
    dotnet_job_args=(--job dry)
    baseline_args=(--repeats 2 --warmup 1)
    ;;
  *)
    echo "usage: bench/run.sh [quick]" >&2
    exit 2
    ;;
esac

python=/usr/bin/python3
if ! "$python" -c 'import numpy' 2>/dev/null; then
  echo "error: $python has no numpy; install Debian's python3-numpy (the pyenv python3 on PATH is not used)" >&2
  exit 1
fi

results="$repo/bench/results/$(date -u +%Y%m%dT%H%M%SZ)-$mode"
mkdir -p "$results"
cd "$repo"

{
  echo "command: bench/run.sh $*"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (uncommitted changes)')"
  echo "date (UTC): $(date -u '+%Y-%m-%d %H:%M:%S')"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores"
  echo "memory: $(free -g | awk '/^Mem:/ {print $2 " GiB"}')"
  echo "dotnet: $(dotnet --version)"
  echo "kernel: $(uname -r)"
} | tee "$results/environment.txt"

dotnet build bench/Tandem.Benchmarks -c Release --nologo -v quiet
# The latency floor's Rust echo process (native/worker/examples/uds_echo.rs).
(cd native && bash ../build/cargo.sh build --release --quiet -p tandem-worker --examples)

dotnet run -c Release --no-build --project bench/Tandem.Benchmarks -- \
  --filter '*' --artifacts "$results/dotnet" "${dotnet_job_args[@]}" \
  | tee "$results/dotnet.log"

if [ "$mode" = full ]; then
  dotnet run -c Release --no-build --project bench/Tandem.Benchmarks -- load | tee "$results/load.txt"
  dotnet run -c Release --no-build --project bench/Tandem.Benchmarks -- roundtrip | tee "$results/roundtrip.txt"
  dotnet run -c Release --no-build --project bench/Tandem.Benchmarks -- transfer | tee "$results/transfer.txt"
  dotnet run -c Release --no-build --project bench/Tandem.Benchmarks -- pool | tee "$results/pool.txt"
  dotnet run -c Release --no-build --project bench/Tandem.Benchmarks -- async | tee "$results/async.txt"
else
  dotnet run -c Release --no-build --project bench/Tandem.Benchmarks -- roundtrip 200 | tee "$results/roundtrip.txt"
  dotnet run -c Release --no-build --project bench/Tandem.Benchmarks -- transfer 16 1 | tee "$results/transfer.txt"
  dotnet run -c Release --no-build --project bench/Tandem.Benchmarks -- async 2000 1 | tee "$results/async.txt"
fi

# The OpenBLAS variables pin an old, slower kernel on some processors; they are
# unset for this command only (see the header of openblas_topk.py).
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$python" bench/baseline/openblas_topk.py \
  "${baseline_args[@]}" --json "$results/openblas_topk.json" \
  | tee "$results/openblas_topk.txt"

{
  echo "# Tandem benchmarks ($mode)"
  echo
  echo '```'
  cat "$results/environment.txt"
  echo '```'
  for report in "$results"/dotnet/results/*-report-github.md; do
    [ -e "$report" ] || continue
    echo
    echo "## $(basename "$report" -report-github.md)"
    echo
    cat "$report"
  done
  for part in load roundtrip transfer pool async; do
    [ -f "$results/$part.txt" ] || continue
    echo
    echo "## $part (dotnet run ... -- $part)"
    echo
    echo '```'
    cat "$results/$part.txt"
    echo '```'
  done
  echo
  echo "## numpy baseline (bench/baseline/openblas_topk.py)"
  echo
  echo '```'
  cat "$results/openblas_topk.txt"
  echo '```'
} > "$results/summary.md"

echo "results: $results/summary.md"
