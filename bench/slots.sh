#!/usr/bin/env bash
# Task-slot benchmark (not a test): 20,000 rows in 200 tasks against a sandbox whose tasks take
# 500 ms (exactly, and with its default jitter of up to +50%), 5 slots, client --rate 1000.
# Prints the wall time; slot use two ways: the ideal time (tasks x 500 ms / 5 slots) over the
# wall time, and the time tasks really ran (the sandbox's own start and end of each) over 5
# slots x the span; and polls per task. Goal: slot use >= 0.95 with exact tasks.
# Usage: bench/slots.sh [ROWS] [LATENCY_MS]   (default 20000 500); BIN=path to compare a build.
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-20000}
latency=${2:-500}
cargo build --release --quiet
bin=${BIN:-$PWD/target/release/csmport}
work=$(mktemp -d)
sb_pid=
trap '[ -n "$sb_pid" ] && kill "$sb_pid" 2>/dev/null; rm -rf "$work"' EXIT
python3 bench/gen_customers.py "$rows" "$work/c.csv" > /dev/null

printf '%-8s %8s %7s %12s %12s %10s\n' jitter wall tasks "use (ideal)" "use (tasks)" "polls/task"
for jitter in 0 0.5; do
  "$bin" sandbox --addr 127.0.0.1:0 --sample-data --task-latency-ms "$latency" --max-tasks 5 \
    --task-jitter "$jitter" > "$work/sandbox.out" 2>/dev/null &
  sb_pid=$!
  for _ in $(seq 50); do grep -q listening "$work/sandbox.out" && break; sleep 0.1; done
  url=$(sed -n 's/^listening on //p' "$work/sandbox.out")
  start=$(date +%s.%N)
  "$bin" --base-url "$url" --cloud-id bench --access-token sandbox-token import customers \
    "$work/c.csv" --out "$work/run-$jitter" --rate 1000 --max-tasks 5 > /dev/null 2>&1 || true
  end=$(date +%s.%N)
  curl -s "$url/_sandbox/state" > "$work/state.json"
  curl -s "$url/_sandbox/requests" > "$work/requests.json"
  kill "$sb_pid" 2>/dev/null || true
  wait "$sb_pid" 2>/dev/null || true
  sb_pid=
  python3 - "$jitter" "$latency" "$start" "$end" "$work/state.json" "$work/requests.json" <<'PY'
import json, sys
jitter, latency = sys.argv[1], float(sys.argv[2]) / 1000
wall = float(sys.argv[4]) - float(sys.argv[3])
tasks = [t for t in json.load(open(sys.argv[5]))["tasks"] if t.get("finishedMs")]
ran = sum((t["finishedMs"] - t["createdMs"]) / 1000 for t in tasks)
span = (max(t["finishedMs"] for t in tasks) - min(t["createdMs"] for t in tasks)) / 1000
polls = sum(1 for q in json.load(open(sys.argv[6]))["requests"]
            if q["method"] == "GET" and "/tasks/" in q["path"])
ideal = len(tasks) * latency / 5
print(f"{jitter:<8} {wall:>7.1f}s {len(tasks):>7} {ideal / wall:>12.2f} {ran / (5 * span):>12.2f} {polls / len(tasks):>10.2f}")
PY
done
