#!/usr/bin/env bash
# One full side-by-side run with jetpull's default settings, in the shapes of the
# performance targets (BENCHMARKS.md "Targets"): each scenario one after the other on
# the same machine, nginx + nchan in the same run where the scenario has it. Every
# JSON line goes to bench/results/full-<date>.jsonl; progress to stderr.
#   bench/full-run.sh [extra options for every scenario, e.g. --nats-binary <path>]
set -uo pipefail
cd "$(dirname "$0")/.."
out=bench/results/full-$(date -u +%Y-%m-%dT%H%M).jsonl
runs=(
  "fanout"
  "unicast --clients 2000 --rate 3000"
  "unicast --clients 2000 --rate 1000"
  "replay --clients 1000 --messages-per-client 20"
  "replay"
  "idle --clients 10000"
  "longpoll --clients 1000 --rate 500"
  "publish"
)
for r in "${runs[@]}"; do
  echo "full-run: $r $*" >&2
  # shellcheck disable=SC2086
  line=$(npm run --silent bench -- $r "$@" | tail -1)
  if [ "${line:0:1}" = "{" ]; then echo "$line" >> "$out"; else echo "full-run: $r gave no JSON line" >&2; fi
done
echo "$out"
