#!/usr/bin/env bash
# Compiled-mode latency while the machine is busy: starts LOAD CPU-bound processes (default 2),
# runs `chronos2 bench` with the given arguments, then stops them.
#   bench/under-load.sh --modes compiled --cases A --runs 200 --warmup-calls 5
#   LOAD=2 bench/under-load.sh --model DIR --modes both --cases A
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${CHRONOS2_BIN:-target/release/chronos2}
pids=()
for _ in $(seq "${LOAD:-2}"); do
  sh -c 'while :; do :; done' &
  pids+=($!)
done
trap 'kill "${pids[@]}" 2>/dev/null' EXIT
sleep 1
"$bin" bench "$@"
