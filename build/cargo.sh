#!/usr/bin/env bash
# Runs rustup's cargo (never Debian's older one), even when ~/.cargo/bin is
# not on PATH. Usage: build/cargo.sh <cargo args>
set -euo pipefail
if [ -f "$HOME/.cargo/env" ]; then
  # shellcheck disable=SC1091
  . "$HOME/.cargo/env"
fi
if ! command -v cargo >/dev/null || ! cargo --version | grep -qE '^cargo 1\.(8[9-9]|9[0-9]|[1-9][0-9]{2})'; then
  echo "error: rustup's cargo (1.89 or newer) was not found; install rustup's stable toolchain" >&2
  exit 1
fi
exec cargo "$@"
