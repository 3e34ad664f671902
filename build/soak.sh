#!/usr/bin/env bash
# The fault soak (docs/reliability.md, "Fault soak"): runs tests/Tandem.Soak
# as built by `make build`, passing its arguments through (`--help` lists
# them). `make soak` and `make soak-short` call this.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
config="${CONFIG:-Release}"
driver="$root/tests/Tandem.Soak/bin/$config/net10.0/tandem-soak.dll"
if [[ ! -f "$driver" ]]; then
	echo "soak: $driver not found: run 'make build' first" >&2
	exit 2
fi
cd "$root"
exec dotnet "$driver" "$@"
