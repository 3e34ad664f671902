#!/usr/bin/env bash
# make perf-report: tandem-perf's documented top-k sweep on Managed, Native,
# a 2-worker Remote pool and, over HTTP, Tandem.Server (Native backend) on a
# free loopback port; writes docs/perf (CSV, JSON, PNGs) and regenerates the
# tandem-perf block of docs/performance.md from the JSON.
#
# Usage: bench/Tandem.Perf/perf-report.sh [CONFIG]   (after `make build`)
# Every step is bounded by tandem-perf itself (2 s warm-up, 5 s measured,
# at most 10 s of drain); the server is stopped on exit, whatever happens.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
config="${1:-Release}"
tool="$repo/bench/Tandem.Perf/bin/$config/net10.0/tandem-perf.dll"
server_dll="$repo/src/Tandem.Server/bin/$config/net10.0/Tandem.Server.dll"
out="docs/perf"
args=(--kernel similarity.topk --shape n=100000,dim=128,batch=1 --concurrency 1:64:x4
      --warmup-seconds 2 --measurement-seconds 5 --progress plain)
for file in "$tool" "$server_dll"; do
  [ -f "$file" ] || { echo "error: $file is missing; run make build" >&2; exit 1; }
done

server_pid=""
stop_server() {
  [ -n "$server_pid" ] || return 0
  kill -TERM "$server_pid" 2>/dev/null || true
  for _ in $(seq 300); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$server_pid" 2>/dev/null; then
    echo "error: Tandem.Server $server_pid did not stop within 30 s; killing it" >&2
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}
trap stop_server EXIT

port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp /tmp/tandem-perf-server.XXXXXX.log)
dotnet "$server_dll" --port "$port" >"$log" 2>&1 &
server_pid=$!
ready=""
for _ in $(seq 600); do
  kill -0 "$server_pid" 2>/dev/null || { echo "error: Tandem.Server exited; its log:" >&2; cat "$log" >&2; exit 1; }
  if curl -sf -o /dev/null "http://127.0.0.1:$port/readyz"; then ready=1; break; fi
  sleep 0.1
done
[ -n "$ready" ] || { echo "error: Tandem.Server was not ready within 60 s" >&2; exit 1; }
rm -f "$log"

cd "$repo"
dotnet "$tool" "${args[@]}" --backend managed,native,remote,http --url "http://127.0.0.1:$port" --out "$out"
stop_server
dotnet "$tool" report "$out" --doc docs/performance.md --command "make perf-report"
