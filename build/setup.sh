#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks, idempotently: a second run
# with everything present touches neither apt nor the network.
# Usage: build/setup.sh <debian package>...
# Debian's per-feature crate packages (librust-tokio+full-dev, ...) are often
# virtual, provided by the crate's own package, so "installed" means: a
# package of that name is installed, or an installed package provides it.
set -euo pipefail
installed=$(dpkg-query -W -f='${db:Status-Abbrev} ${Package} ${Provides}\n' 2>/dev/null \
  | awk '$1 == "ii" { print $2; for (i = 3; i <= NF; i++) { p = $i; gsub(/[,(].*/, "", p); if (p != "" && p !~ /^[=)0-9]/) print p } }' \
  | sort -u)
missing=()
for p in "$@"; do
  grep -qxF -- "$p" <<<"$installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=$([ "$(id -u)" -eq 0 ] || echo sudo)
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
command -v dotnet >/dev/null || { echo "setup: the .NET 10 SDK (dotnet) is required"; exit 1; }
"$(dirname "$0")/cargo.sh" --version >/dev/null
