#!/usr/bin/env bash
# Before/after: `softbus bench` of two commits, alternating on this machine, each
# ratio against the baseline measured in the same run. The other commit is built in
# a worktree of its own under /tmp.
# usage: tools/bench_ab.sh BEFORE_REV [ROUNDS] [SECONDS]
# Prints one JSON line per run: {"round", "side", "m", "r": softbus bench's JSON}.
set -euo pipefail
cd "$(dirname "$0")/.."
before=${1:?usage: tools/bench_ab.sh BEFORE_REV [ROUNDS] [SECONDS]}
rounds=${2:-8}
secs=${3:-4}
wt=/tmp/softbus-bench-$(git rev-parse --short "$before")
[ -d "$wt" ] || git worktree add -f "$wt" "$before" -q
(cd "$wt" && CARGO_TARGET_DIR="$wt/target" cargo build --release -q -p softbus-cli -p softbus-bench)
cargo build --release -q -p softbus-cli -p softbus-bench
B="$wt/target/release/softbus"
A=./target/release/softbus
run() { # side measure [extra args]
  local bin=$B; [ "$1" = after ] && bin=$A
  local out; out=$("$bin" bench --json "${@:3}" --only "$2" 2>/dev/null | tail -1)
  echo "{\"round\":$round,\"side\":\"$1\",\"m\":\"$2\",\"r\":$out}"
}
for round in $(seq 1 "$rounds"); do
  # Alternate which side goes first, so drift in the machine cancels.
  order="after before"; [ $((round % 2)) = 0 ] && order="before after"
  for m in stream throughput discovery datachannel relay; do
    for side in $order; do run "$side" "$m" --seconds "$secs"; done
  done
done
# Memory: 10,000 connections a run; wait out TIME_WAIT between runs.
for round in 1 2; do
  for side in before after; do sleep 65; run "$side" memory; done
done
