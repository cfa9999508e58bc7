#!/usr/bin/env bash
# Times whole `csmport import` runs against a standalone sandbox on 127.0.0.1, so the figures
# measure the client pipeline (read, validate, batch, send, poll, report), not a real site.
# Usage: bench/import_sandbox.sh [ROWS] [TASK_LATENCY_MS]   (defaults: 20000 rows, 0 ms)
# Bounded: one sandbox, one file, three runs; everything stops when the script ends.
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-20000}
latency=${2:-0}
cargo build --release --quiet
bin=target/release/csmport
work=$(mktemp -d)
trap 'kill "$sb_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
python3 bench/gen_customers.py "$rows" "$work/customers.csv"
"$bin" sandbox --addr 127.0.0.1:0 --sample-data --task-latency-ms "$latency" --max-tasks 5 > "$work/sandbox.out" &
sb_pid=$!
for _ in $(seq 50); do grep -q listening "$work/sandbox.out" && break; sleep 0.1; done
url=$(sed -n 's/^listening on //p' "$work/sandbox.out")
echo "rows=$rows task_latency_ms=$latency sandbox=$url"
for run in 1 2 3; do
  start=$(date +%s.%N)
  "$bin" --base-url "$url" --cloud-id bench --access-token sandbox-token \
    import customers "$work/customers.csv" --out "$work/run$run" --rate 100000 --json > "$work/summary$run.json"
  end=$(date +%s.%N)
  python3 - "$work/summary$run.json" "$start" "$end" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
wall = float(sys.argv[3]) - float(sys.argv[2])
print(f"run: {s['rows']} rows, {s['succeeded']} ok, {s['tasks']} tasks, wall {wall:.2f}s, {s['rows']/wall:,.0f} rows/s")
PY
done
