#!/usr/bin/env bash
# Pacing benchmark (not a test): an import that always has requests to make (batches of 10,
# 5 task slots, --rate far above the site's) against a sandbox limited to R requests a second
# (token bucket, burst 10), with and without Retry-After. From the sandbox's own request log:
# requests it accepted per second after the first 10 s (goal >= 0.9 x R) and the share of 429s
# among them (goal <= 5%), and the 429s of the first 10 s (while the pace is learned). Usage: bench/pacing.sh [R...]   (default: 1 4 20). Bounded: one sandbox per
# case, about 40 s of requests each; everything stops when the script ends.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=$PWD/target/release/csmport
work=$(mktemp -d)
sb_pid=
trap '[ -n "$sb_pid" ] && kill "$sb_pid" 2>/dev/null; [ -z "${KEEP:-}" ] && rm -rf "$work"; echo "$work" > /tmp/pacing-work' EXIT

printf '%-6s %-16s %6s %9s %12s %8s %7s %9s\n' R headers rows wall "accepted/s" "x R" "429s" "429s<10s"
for r in ${@:-1 4 20}; do
  for mode in retry-after reset-only; do
    extra=()
    [ "$mode" = reset-only ] && extra=(--no-retry-after)
    # About 40 s of demand at R: a submission and a poll per batch of 10 rows.
    rows=$(python3 -c "print(max(100, int(10 * $r * 40 / 2)))")
    python3 bench/gen_customers.py "$rows" "$work/c.csv" > /dev/null
    "$bin" sandbox --addr 127.0.0.1:0 --sample-data --task-latency-ms 0 --rate-limit "$r" \
      "${extra[@]}" > "$work/sandbox.out" &
    sb_pid=$!
    for _ in $(seq 50); do grep -q listening "$work/sandbox.out" && break; sleep 0.1; done
    url=$(sed -n 's/^listening on //p' "$work/sandbox.out")
    start=$(date +%s.%N)
    "$bin" --base-url "$url" --cloud-id bench --access-token sandbox-token import customers \
      "$work/c.csv" --out "$work/run-$r-$mode" --batch-size 10 --rate 1000 > /dev/null 2>&1 || true
    end=$(date +%s.%N)
    curl -s "$url/_sandbox/requests" > "$work/requests.json"
    kill "$sb_pid" 2>/dev/null || true
    wait "$sb_pid" 2>/dev/null || true
    sb_pid=
    python3 - "$r" "$mode" "$rows" "$start" "$end" "$work/requests.json" <<'PY'
import json, sys
from datetime import datetime
r, mode, rows = float(sys.argv[1]), sys.argv[2], int(sys.argv[3])
wall = float(sys.argv[5]) - float(sys.argv[4])
log = [q for q in json.load(open(sys.argv[6]))["requests"] if "/_sandbox/" not in q["path"]]
t = lambda q: datetime.fromisoformat(q["time"].replace("Z", "+00:00")).timestamp()
t0 = min(t(q) for q in log)
t1 = max(t(q) for q in log)
late = [q for q in log if t(q) >= t0 + 10]
ok = sum(1 for q in late if q["status"] != 429)
span = max(t1 - (t0 + 10), 1e-9)
throttled = sum(1 for q in late if q["status"] == 429) / max(len(late), 1)
first = sum(1 for q in log if q["status"] == 429 and t(q) < t0 + 10)
print(f"{r:<6g} {mode:<16} {rows:>6} {wall:>8.1f}s {ok / span:>12.2f} {ok / span / r:>7.2f}x {throttled:>6.1%} {first:>9}")
PY
  done
done
