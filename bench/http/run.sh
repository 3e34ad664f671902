#!/usr/bin/env bash
# End-to-end HTTP search throughput and latency: wrk at 64 connections against
# Tandem.Server with the Native backend and with a 2-worker Remote pool, side
# by side with the in-process baseline (the same dispatcher called from C# by
# 64 concurrent callers: Tandem.Benchmarks inprocess-search), and where the
# time goes (HTTP, queue, compute) from the server's /metrics histograms.
#
# Usage: bench/http/run.sh [rounds] [seconds] [warm-up seconds]
#   defaults 3 rounds of 20 s after 5 s of warm-up; `bench/http/run.sh 1 5 2`
#   is a smoke run whose numbers prove only that everything runs.
# Each round measures every configuration once, rotating which goes first, so
# drifting load from other work on the machine spreads over all of them; the
# summary reports medians over rounds. wrk runs on one thread (-t1) so the
# server keeps most of the two cores; on this machine the client, the server
# and its workers share the cores, which the figures include.
# Everything lands in bench/results/<UTC time>-http/ (summary.md at the end).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
rounds="${1:-3}"
seconds="${2:-20}"
warmup="${3:-5}"
connections=64
python=/usr/bin/python3
server_dll="$repo/src/Tandem.Server/bin/Release/net10.0/Tandem.Server.dll"
bench_dll="$repo/bench/Tandem.Benchmarks/bin/Release/net10.0/Tandem.Benchmarks.dll"
command -v wrk >/dev/null || { echo "error: wrk is missing; install Debian's wrk (make setup does)" >&2; exit 1; }

results="$repo/bench/results/$(date -u +%Y%m%dT%H%M%SZ)-http"
mkdir -p "$results"
cd "$repo"

{
  echo "command: bench/http/run.sh $*"
  echo "rounds: $rounds, measured ${seconds} s after ${warmup} s warm-up, $connections connections, wrk -t1"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (uncommitted changes)')"
  echo "date (UTC): $(date -u '+%Y-%m-%d %H:%M:%S')"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores"
  echo "memory: $(free -g | awk '/^Mem:/ {print $2 " GiB"}')"
  echo "dotnet: $(dotnet --version)"
  echo "wrk: $(wrk --version 2>&1 | head -1)"
  echo "kernel: $(uname -r)"
  echo "loadavg at start: $(cat /proc/loadavg)"
} | tee "$results/environment.txt"

dotnet build src/Tandem.Server -c Release --nologo -v quiet
dotnet build bench/Tandem.Benchmarks -c Release --nologo -v quiet

server_pid=""
workers=""
stop_server() {
  [ -n "$server_pid" ] || return 0
  # SIGTERM, not SIGINT: bash starts background jobs with SIGINT ignored.
  kill -TERM "$server_pid" 2>/dev/null || true
  for _ in $(seq 600); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$server_pid" 2>/dev/null; then
    echo "error: server $server_pid did not exit within 60 s; killing it" >&2
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  wait "$server_pid" 2>/dev/null || true
  for worker in $workers; do
    if kill -0 "$worker" 2>/dev/null; then
      echo "error: tandem-worker $worker outlived its server; killing it" >&2
      kill -KILL "$worker" 2>/dev/null || true
    fi
  done
  server_pid=""
  workers=""
}
trap stop_server EXIT

free_port() {
  "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

measure_server() {
  local config=$1 round=$2
  shift 2
  local port prefix="$results/$round-$config"
  port=$(free_port)
  dotnet "$server_dll" --port "$port" --Server:Demo:Enabled=true --Server:Demo:Load=false "$@" >"$prefix-server.log" 2>&1 &
  server_pid=$!
  local ready=""
  for _ in $(seq 1800); do
    kill -0 "$server_pid" 2>/dev/null || { echo "error: the $config server exited; see $prefix-server.log" >&2; exit 1; }
    if curl -sf -o /dev/null "http://127.0.0.1:$port/readyz"; then ready=1; break; fi
    sleep 0.1
  done
  [ -n "$ready" ] || { echo "error: the $config server was not ready within 180 s" >&2; exit 1; }
  workers=$(pgrep -P "$server_pid" -x tandem-worker | tr '\n' ' ' || true)
  echo "round $round, $config: server $server_pid on port $port, workers: ${workers:-none}"

  wrk -t1 -c"$connections" -d"${warmup}s" -s bench/http/search.lua "http://127.0.0.1:$port" >"$prefix-warmup.txt"
  curl -sf "http://127.0.0.1:$port/metrics" >"$prefix-metrics-before.txt"
  local load_before load_after
  load_before=$(cat /proc/loadavg)
  wrk -t1 -c"$connections" -d"${seconds}s" --latency -s bench/http/search.lua "http://127.0.0.1:$port" >"$prefix-wrk.txt"
  load_after=$(cat /proc/loadavg)
  curl -sf "http://127.0.0.1:$port/metrics" >"$prefix-metrics-after.txt"
  stop_server

  "$python" bench/http/breakdown.py run "$config" "$prefix-metrics-before.txt" "$prefix-metrics-after.txt" \
    "$prefix-wrk.txt" "$load_before" "$load_after" >"$results/run-$round-$config.json"
  grep -E 'Requests/sec|Non-2xx|Socket errors|^ +50%|^ +99%' "$prefix-wrk.txt" | sed 's/^/  /'
}

measure_inprocess() {
  local round=$1 prefix="$results/$1-inprocess"
  local load_before load_after
  # The warm-up runs inside the process, before its measured window; the
  # load average is read around the whole process.
  load_before=$(cat /proc/loadavg)
  dotnet "$bench_dll" inprocess-search "$seconds" "$warmup" "$prefix-metrics.txt" >"$prefix-client.txt"
  load_after=$(cat /proc/loadavg)
  "$python" bench/http/breakdown.py run inprocess /dev/null "$prefix-metrics.txt" \
    "$prefix-client.txt" "$load_before" "$load_after" >"$results/run-$round-inprocess.json"
  echo "round $round, inprocess:"
  sed 's/^/  /' "$prefix-client.txt"
}

configs=(native remote inprocess)
for round in $(seq "$rounds"); do
  for i in 0 1 2; do
    config=${configs[$(((round - 1 + i) % 3))]}
    case "$config" in
      native) measure_server native "$round" ;;
      remote) measure_server remote "$round" --workers 2 ;;
      inprocess) measure_inprocess "$round" ;;
    esac
  done
done

{
  echo "# HTTP search benchmark"
  echo
  echo '```'
  cat "$results/environment.txt"
  echo "loadavg at end: $(cat /proc/loadavg)"
  echo '```'
  echo
  "$python" bench/http/breakdown.py summary "$results"
} >"$results/summary.md"
cat "$results/summary.md"
echo "results: $results/summary.md"
