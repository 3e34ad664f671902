#!/usr/bin/env bash
# Builds the workspace's Rust test binaries exactly as `make test-native`
# does (--release --workspace, so the artifacts are shared and nothing
# rebuilds) and prints one line per binary: "<crate dir under native/>
# <test target> <path>", e.g. "kernels topk /…/target/release/deps/topk-…".
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/native"
"$root/build/cargo.sh" test --release -q --workspace --no-run --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["manifest_path"].rsplit("/", 2)[-2], m["target"]["name"], m["executable"])
'
