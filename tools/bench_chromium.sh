#!/usr/bin/env bash
# Median time from createOffer to an open data channel, headless Chromium against a
# softbus node, in a loopback-only network namespace this script creates and removes.
# usage: tools/bench_chromium.sh [RUNS]   (root; needs chromium and a built softbus)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-9}
bin=${SOFTBUS:-target/release/softbus}
ns=sbbench$$
dir=$(mktemp -d)
cleanup() { ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true; ip netns del "$ns" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
ip netns exec "$ns" "$bin" node --ip 127.0.0.1 --web 127.0.0.1:0 --web-origin http://127.0.0.1:18091 --pin bench --json --data-dir "$dir/n" > "$dir/out" 2> "$dir/err" &
for _ in $(seq 50); do [ -s "$dir/out" ] && break; sleep 0.1; done
web=$(head -1 "$dir/out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["web"])')
for i in $(seq "$runs"); do
  PAGE_PORT=18091 ip netns exec "$ns" python3 interop/chromium_datachannel.py "$web" echo | python3 -c 'import json,sys; r=json.load(sys.stdin); assert r["ok"], r; print(r["open_ms"])'
done > "$dir/times"
python3 - "$dir/times" <<'PY'
import statistics, sys
t = [int(x) for x in open(sys.argv[1])]
print(f"offer to open data channel with Chromium: median {statistics.median(t)} ms over {len(t)} runs (min {min(t)}, max {max(t)})")
PY
