#!/usr/bin/env bash
# Data channel throughput node to node (softbus client -> softbus node, 16 KiB messages
# one way, at most 64 KiB unacknowledged) against the same transfer between two
# webrtc-rs peers on loopback, both measured here, three rounds alternating.
# webrtc-rs is also run at 1 MiB in flight, its better setting here.
# usage: tools/bench_webrtc.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-3}
cargo build --release -q -p softbus-cli -p softbus-bench
cargo build --release -q --manifest-path bench/webrtc-baseline/Cargo.toml
for round in 1 2 3; do
  ./target/release/softbus bench --only datachannel --seconds "$secs" --json 2>/dev/null
  bench/webrtc-baseline/target/release/webrtc-baseline "$secs" 65536 2>/dev/null
  bench/webrtc-baseline/target/release/webrtc-baseline "$secs" 1048576 2>/dev/null | sed 's/webrtc_rs_bytes_per_s/webrtc_rs_1mib_bytes_per_s/'
done | python3 -c '
import json, statistics, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
ours = statistics.median(r["datachannel"]["softbus_bytes_per_s"] for r in rows if "datachannel" in r)
rs = statistics.median(r["webrtc_rs_bytes_per_s"] for r in rows if "webrtc_rs_bytes_per_s" in r)
rs1 = statistics.median(r["webrtc_rs_1mib_bytes_per_s"] for r in rows if "webrtc_rs_1mib_bytes_per_s" in r)
print(f"softbus {ours/1e6:.1f} MB/s; webrtc-rs {rs/1e6:.1f} MB/s at the same 64 KiB bound (ratio {ours/rs:.2f}), {rs1/1e6:.1f} MB/s at 1 MiB (ratio {ours/rs1:.2f}); medians of 3 rounds")
'
