#!/usr/bin/env bash
# What /metrics costs with many functions: spurd -q builtin with FUNCTIONS (10000) declared
# functions takes N (2000000) background submits, 4 connections x 64 in flight, with and
# without a scrape of /metrics every second, ROUNDS (3) interleaved rounds, a fresh server for
# each run. Prints each run's rate and server CPU per job (spur-bench -pid; the scrapes' CPU is
# the server's too), and the scrape times seen.
#
#   make build && bench/metrics.sh
#
# Every run is bounded: spur-bench stops after N jobs, the scraper with its run.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-2000000}
FUNCTIONS=${FUNCTIONS:-10000}
ROUNDS=${ROUNDS:-3}
SPURD=${SPURD:-bin/spurd}
BENCH=${BENCH:-bin/spur-bench}
command -v curl >/dev/null || { echo "metrics.sh: curl is needed" >&2; exit 2; }
[ -x "$SPURD" ] && [ -x "$BENCH" ] || { echo "metrics.sh: run make build first" >&2; exit 2; }
times=$(mktemp)
trap 'rm -f "$times"' EXIT

# declare PORT: FUNCTIONS `create function` lines on one admin connection, each answered OK.
declare_functions() {
  exec 3<>"/dev/tcp/127.0.0.1/$1"
  for ((i = 0; i < FUNCTIONS; i++)); do printf 'create function fn%05d\n' "$i"; done >&3
  for ((i = 0; i < FUNCTIONS; i++)); do read -r _ <&3; done
  exec 3>&-
}

run() { # run none|scrape
  local port http pid scraper=""
  port=$("$BENCH" freeport)
  http=$("$BENCH" freeport)
  "$SPURD" -q builtin -p "$port" -L 127.0.0.1 --http-addr "127.0.0.1:$http" >/dev/null 2>&1 &
  pid=$!
  "$BENCH" waitport -addr "127.0.0.1:$port" >/dev/null
  declare_functions "$port"
  if [ "$1" = scrape ]; then
    (while kill -0 "$pid" 2>/dev/null; do
      curl -s -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$http/metrics" >>"$times" || true
      sleep 1
    done) &
    scraper=$!
  fi
  "$BENCH" submit-bg -addr "127.0.0.1:$port" -conns 4 -window 64 -n "$N" -pid "$pid" -perf "" 2>/dev/null |
    grep 'jobs/s' | sed "s/^/$1: /"
  [ -n "$scraper" ] && kill "$scraper" 2>/dev/null
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  [ -n "$scraper" ] && wait "$scraper" 2>/dev/null || true
}

for ((r = 1; r <= ROUNDS; r++)); do
  run none
  run scrape
done
echo "scrape times (s): $(sort -n "$times" | tr '\n' ' ')"
