#!/usr/bin/env bash
# Prints "yes" when this CPU can run the SIMD path TANDEM_ISA names, else the
# reason it cannot ("CPU lacks avx512dq"). The features are the ones
# native/sdk/src/simd.rs (Isa::missing_features) requires for each path;
# kernels/tests/isa.rs fails if a forced path is not the one in use, so a
# disagreement between the two cannot pass silently.
set -euo pipefail
case "${TANDEM_ISA:-}" in
  avx512) needed="avx512f avx512dq avx512vl" ;;
  avx2) needed="avx2 fma" ;;
  portable) needed="" ;;
  *) echo "unknown TANDEM_ISA='${TANDEM_ISA:-}'; use portable, avx2 or avx512"; exit 2 ;;
esac
flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
missing=()
for feature in $needed; do
  [[ "$flags" == *" $feature "* ]] || missing+=("$feature")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo yes
else
  echo "CPU lacks ${missing[*]}"
fi
