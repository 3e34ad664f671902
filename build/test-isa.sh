#!/usr/bin/env bash
# Runs the kernel test suites once per SIMD path (TANDEM_ISA=avx512, avx2,
# portable), skipping a path this CPU cannot run with the reason printed
# (docs/reliability.md, "SIMD paths"). The suites: tandem-kernels' unit and
# integration tests and tandem-ffi's tests (which check, through the C ABI,
# that the forced path is the one in use). With ISA_DOTNET=1, the .NET
# Native kernel contract suites too (off by default: about 4 minutes per path
# on a busy 2-core machine, beyond test-isa's 2-minute budget in `make test`).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
config=${CONFIG:-Release}
list=$(mktemp)
log=$(mktemp)
trap 'rm -f "$list" "$log"' EXIT
bash "$root/build/test-binaries.sh" >"$list"
suites=$(awk '$1 == "kernels" || $1 == "ffi" { print $1 "|" $3 }' "$list")
[ -n "$suites" ] || { echo "test-isa: no kernel test binaries found"; exit 1; }

for isa in avx512 avx2 portable; do
  support=$(TANDEM_ISA=$isa bash "$root/build/isa-support.sh")
  if [ "$support" != yes ]; then
    echo "test-isa: skipping $isa: $support"
    continue
  fi
  echo "test-isa: TANDEM_ISA=$isa"
  for suite in $suites; do
    crate=${suite%%|*} binary=${suite#*|}
    # From the crate's directory, as cargo test runs it.
    if ! (cd "$root/native/$crate" && TANDEM_ISA=$isa "$binary" -q) >"$log" 2>&1; then
      cat "$log"
      echo "test-isa: FAILED: $crate/$(basename "$binary") with TANDEM_ISA=$isa"
      exit 1
    fi
    echo "  $crate/$(basename "$binary"): $(grep -m1 '^test result' "$log")"
    grep '^skipping' "$log" || true
  done
  if [ "${ISA_DOTNET:-0}" = 1 ]; then
    TANDEM_ISA=$isa dotnet test "$root/tests/Tandem.Tests/Tandem.Tests.csproj" -c "$config" --no-build \
      --filter "FullyQualifiedName~NativeTopKContractTests|FullyQualifiedName~NativeMonteCarloContractTests|FullyQualifiedName~NativeBlake3ContractTests" \
      --verbosity quiet --nologo
  fi
done
